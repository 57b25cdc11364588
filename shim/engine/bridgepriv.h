/*
 * bridgepriv.h: what bridge.c (a bridge's end, its events, the client's
 * handshake), bridgepump.c (a bridge's pumps) and bridgeaccept.c (an
 * accepted connection handed to the application's listener) share.
 * Internal to those three files; the rest of engine/ has internal.h.
 */
#ifndef SHIM_BRIDGEPRIV_H
#define SHIM_BRIDGEPRIV_H

#include "internal.h"

/* ---- bridge.c ---- */

/* A log line about bridge b, led by its connection's name, or its peer and
 * number before it had one. */
void shim_bridge_log(int level, const bridge *b, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* b's slot, or NULL (none, or the table's was reused). */
shim_slot *shim_bridge_slot(bridge *b);
/* Frees b: its efd closed, its connection let go of. */
void shim_bridge_free(bridge *b);
/* Sets efd's epoll interest from b's state. */
void shim_bridge_update_interest(bridge *b);
/* The application closed its end (EOF, or a reset it asked for). */
void shim_bridge_app_closed(bridge *b, rudp_time now);

/* ---- bridgepump.c ---- */

/* Application -> connection (mark: look for urgent data's mark first). */
void shim_bridge_pump_in(bridge *b, rudp_time now, int mark);
/* The app closed with bytes we passed it unread: its connection resets
 * after what the app wrote, and after a FIN if the app had shut down
 * writing first (bridgepump.c). */
void shim_bridge_close_unread(bridge *b, rudp_time now);
/* Connection -> application. */
void shim_bridge_pump_out(bridge *b, rudp_time now);

/* ---- bridgeaccept.c ---- */

/* A new connection accepted by the core (RUDP_EV_ACCEPT): its bridge is
 * made and handed to the listener, or held until it can be. */
void shim_bridge_on_accept(struct engine *e, rudp_conn *c, rudp_time now);
/* Bridge b of connection c goes to the application's listener now. */
void shim_bridge_hand_over(bridge *b, rudp_conn *c, rudp_time now);
/* Client bridge cb of this process is complete: its server's end, held
 * for it, is queued now. */
void shim_bridge_local_client_done(bridge *cb, rudp_time now);

#endif
