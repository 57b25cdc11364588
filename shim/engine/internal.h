/*
 * engine/internal.h: what the engine's files share and no layer above uses
 * (roaming, datagram marks, figures, the bridge's and fallback's inner
 * steps). Private to engine/: files elsewhere include engine.h.
 */
#ifndef SHIM_ENGINE_INTERNAL_H
#define SHIM_ENGINE_INTERNAL_H

#include <stddef.h>

#include "engine.h"

/* The engines of this process: their own, reached from outside engine/
 * only through the functions of engine.h (enginectl.c). */
extern struct engines G;

/* Queues c for engine e and wakes it; G.mu held. Frees c and returns -EIO
 * if e cannot take commands (broken, or a keeper's engine that finished). */
int shim_engine_push_locked(struct engine *e, cmd *c);
/* Queues c for engine 0 (G.mu taken here); -ENOSYS when no engine runs,
 * and in a CLONE_VM child -errno when it cannot wake engine 0 (adopt.c).
 * c is freed on failure. */
int shim_engine_push_any(cmd *c);

/* Where a feature's area (hooks.h: shim_engine_set_ext) begins in an
 * object of n bytes allocated with it: past the object, aligned for any
 * type. */
#define SHIM_EXT_AT(n) \
    (((n) + _Alignof(max_align_t) - 1) / _Alignof(max_align_t) * _Alignof(max_align_t))

/* Sets up engine e (the next not running) and starts its thread; G.mu
 * held (engines.c starts them, engine.c knows how). */
int shim_engine_start_locked(struct engine *e);

/* A member of g that will never be, or was never used: the others need
 * not wait for it; the last one frees g. NULL: nothing. */
void shim_lgroup_drop(lgroup *g);
/* The group's last member is gone: closes its tcp_fd and frees it. */
void shim_lgroup_free(lgroup *g);

/* ---- roam.c: a client connection moves to a new socket ---- */

/* b's connection heard nothing for several probe timeouts (RUDP_EV_SILENT):
 * unless this host refused its sends meanwhile, it goes on from a new UDP
 * socket connected to its server, at most every 250 ms; the old socket
 * stays open and read until the next move or the bridge's end. */
void shim_roam_silent(bridge *b, rudp_time now);
/* After a flush: moves the connections whose sockets' sends failed. */
void shim_roam_due(struct engine *e, rudp_time now);
/* udpio's error callback (user: the engine). */
void shim_roam_send_error(void *user, int fd, int err);
/* e listens to rtnetlink's news of addresses and routes (once; at its
 * first client connection): 0, or a negative errno (no rtnetlink here,
 * e.g. a sandbox: send errors and silence still make connections move). */
int shim_roam_watch(struct engine *e);
/* e->nl_fd is readable: a client connection whose source address went
 * away moves to a new socket at once; news that routing changed sets
 * e->roam_at, a short while later, so that a burst is looked at once. */
void shim_roam_netlink(struct engine *e, rudp_time now);
/* e->roam_at has come: the connections for which routing now picks another
 * source address move, each at most every 250 ms. */
void shim_roam_timer(struct engine *e, rudp_time now);

/* pktctl.c: the source address and marks of accepted connections'
 * datagrams on their listener's shared socket. */
/* a's IP address in *ip, a v4-mapped IPv6 one as IPv4: its length, 4 or 16. */
size_t shim_addr_ip(const rudp_addr *a, const uint8_t **ip);
/* Whether a and b are one IP address (v4-mapped or not). */
int shim_addr_same_ip(const rudp_addr *a, const rudp_addr *b);
/* The source address routing picks toward peer from a socket of family
 * bound to the wildcard address (asked by connecting a UDP socket), in
 * *src: 0, or -1 (no route). */
int shim_route_source(int family, const rudp_addr *peer, rudp_addr *src);
/* b was accepted (its conn and sock set): its datagrams' source. */
void shim_pktctl_accepted(bridge *b);
/* The control a datagram on s to peer needs, from its connection's send
 * tag and the address its peer reached (local, NULL: unknown), built in
 * *ctl; NULL: none. */
const shim_udpio_ctl *shim_pktctl_for(const esock *s, const rudp_addr *peer,
                                      const rudp_addr *local, uint64_t tag,
                                      shim_udpio_ctl *ctl);
/* An option set on b's accepted socket (CMD_SET_MARK; value as the
 * kernel reads it back): from now on b's datagrams carry it. */
void shim_pktctl_set_mark(bridge *b, int level, int opt, int value);
/* Before a mark of listener socket s changes: s's connections that have
 * none of their own keep its present value. */
void shim_pktctl_listener_mark(esock *s, int level, int opt);

/* ---- appsend.c: an application thread's own send on a bridge ---- */

/* At e's start: its turn lock and timerfd (0, or -errno: app threads then
 * always write through the bridge); in a keeper, the lock made anew. */
int shim_appsend_start(struct engine *e);
void shim_appsend_renew(struct engine *e);
/* b has its slot: app threads find it by that (turn_mu held); b ends. */
void shim_appsend_index(bridge *b);
void shim_appsend_forget(bridge *b);
/* e's loop, turn_mu held: about to sleep until `wake` (the timerfd an app
 * thread armed is disarmed); the timerfd fired. */
void shim_appsend_sleep(struct engine *e, rudp_time wake);
void shim_appsend_timer(struct engine *e);
/* bridge.c: b's connection's state to its slot (TCP_INFO, SIOCOUTQ). */
void shim_bridge_publish(bridge *b);

/* Takes e's figures (on e's thread, or with e paused). */
void shim_engine_figures(struct engine *e, engine_figures *f);

/* On e's thread, when a signal asked for RUDP_STATS: records e's figures;
 * the last engine to do so prints them all. */
void shim_engine_stats_answer(struct engine *e);

/* CMD_LISTEN_CLOSED, on the engine thread, after the command: tells the
 * closer waiting on w (may be NULL) that this engine is done with it, and
 * drops the engine's reference. */
void shim_engine_lclose_done(struct shim_lclose_wait *w);

/* At the end of each turn of e, on its thread: the turn took `turn` ns
 * and ended at now; every LOAD_WINDOW e publishes the share of it spent in
 * turns (engines.c). */
void shim_engine_load(struct engine *e, rudp_time now, rudp_time turn);

/* A keeper's engine whose work is done may leave, unless a command came
 * meanwhile: then (1) it takes no more (it counts as broken). 0: run on. */
int shim_engine_retire(struct engine *e);

/* The figures of engines fig[0..n), summed, one subject per line, as
 * RUDP_STATS prints them and rudp-stat shows them: each line goes to
 * line(arg, text). */
void shim_engine_print_figures(const engine_figures *fig, int n, shim_line_fn line, void *arg);

/* Hands b's accepted connection to the app's unix listener. A full backlog
 * puts b on e->pending and sets e->retry_at (ACCEPT_RETRY), or, if b was
 * held for its group's accept order (fifo.c), leaves it to shim_fifo_turn
 * to hold again and returns 0; a listener gone or squatted resets the
 * connection, stops listening and frees b. Returns 1 but in that case. */
int shim_bridge_try_accept(bridge *b, rudp_time now);
/* Client socket s (a connect's) counts in G.clients by its port until
 * shim_bridge_client_gone (from shim_esock_close): a loopback SYN from
 * that port is this process's own connect, whose server end is handed to
 * the app only once the client's end is writable (bridge.c). */
void shim_bridge_client_sock(esock *s);
void shim_bridge_client_gone(esock *s);
/* The accepted connections held for want of an fd for their bridge
 * (e->unbridged), tried again: bridged, held again, or reset if their
 * listener closed or they ended meanwhile. At e->retry_at. */
void shim_bridge_accept_held(struct engine *e, rudp_time now);
/* A connecting bridge ends (fallback.c; engine.c when rudp_connect fails).
 * _fail: with err (-errno) for the app, as a failed handshake, and b is
 * freed, unless shim_fallback_rudp_failed says kernel TCP carries on; _end:
 * quietly, its connection aborted, its slot kept readable (retired) for
 * connect(), and b freed. */
void shim_bridge_fail(bridge *b, int err);
void shim_bridge_end(bridge *b, rudp_time now);

/* ---- fallback.c: RUDP_FALLBACK=tcp, the engine's part ---- */

/* do_connect: a connect that may fall back (r->tcp_fd >= 0) gets its
 * fallback state; the TCP socket is the engine's from now on. */
void shim_fallback_start(bridge *b, const shim_connect_req *r, rudp_time now);
/* A connect that never started: its TCP socket (if any) is closed. */
void shim_fallback_cancel(const shim_connect_req *r);
/* The rudp handshake failed with *err (-errno): returns 1 if kernel TCP
 * goes on with the connection (the bridge lives on without b->conn), 0 if
 * the bridge fails (with *err, which TCP's own failure may have replaced). */
int shim_fallback_rudp_failed(bridge *b, int *err, rudp_time now);
/* The rudp handshake completed: kernel TCP is not needed. */
void shim_fallback_rudp_won(bridge *b, rudp_time now);
/* Once rudp failed and kernel TCP was tried: the rudp connection's name
 * (rudp_conn_name; NULL if it had none) and *cause, why it failed, for
 * the connect-failed line. */
const char *shim_fallback_rudp_said(const bridge *b, rudp_cause *cause);
/* Whether kernel TCP at `to` is said for the first time (and now marked
 * as said): a warn line once per destination, the rest at info. */
int shim_fallback_first_telling(const rudp_addr *to);
/* Whether it was said already (nothing marked). */
int shim_fallback_told(const rudp_addr *to);
/* The connect failed with err at its connect timeout (RUDP_CONNECT_TIMEOUT
 * bounds the whole race): the words for its connect-failed line, what was
 * tried and for how long, in text (n bytes). Returns 1 if so, else 0 and
 * text is untouched. */
int shim_fallback_timeout_said(const bridge *b, int err, char *text, size_t n);
/* The bridge is freed: its fallback state goes with it. */
void shim_fallback_free(bridge *b);
/* Epoll reported the TCP socket of fallback obj. */
void shim_fallback_event(struct engine *e, void *obj, uint32_t events, rudp_time now);
/* Due at e->fallback_at: probe delays that ran out, swaps to retry. */
void shim_fallback_timer(struct engine *e, rudp_time now);

#endif
