/*
 * portmove.h: connections that outlive their listener's UDP port
 * (portmove.c). Internal to the shim.
 */
#ifndef SHIM_PORTMOVE_H
#define SHIM_PORTMOVE_H

#include "rudp.h"

struct engine;
struct esock;
struct bridge;

/* Before s, a listener's socket, is given up: every connection accepted
 * on it moves to a new socket of e on the same address (an ephemeral
 * port) and tells its client, from s (the caller flushes e's output
 * before giving s up). Returns how many moved. */
int shim_portmove_conns(struct engine *e, struct esock *s, rudp_time now);

/* A client connection's RUDP_EV_SERVER_MOVED: its socket is connected to
 * where the server now is (rudp_conn_server_addr). */
void shim_portmove_follow(struct bridge *b);

#endif
