/*
 * portwatch.h: another program's UDP socket bound on a listener's port
 * after listen() (portwatch.c). Internal to the shim.
 */
#ifndef SHIM_PORTWATCH_H
#define SHIM_PORTWATCH_H

#include "rudp.h"

struct engine;
struct esock;

/* How often an engine looks. */
#define SHIM_PORTWATCH_PERIOD RUDP_SEC(1)

/* Listener socket s, just made (its endpoint set): watched from a period
 * on. On its engine's thread. */
void shim_portwatch_arm(struct esock *s, rudp_time now);
/* Due at e->retry_at: one look at every watched socket of e, once a
 * period; a socket whose port another program has taken gives it up
 * (shim_port_stranger). */
void shim_portwatch_run(struct engine *e, rudp_time now);

#endif
