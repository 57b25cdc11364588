/*
 * trace.h: the connection's trace hooks (trace.c), for conn*.c and ctx.c.
 *
 * Each hook is called behind a test of c->trace (or, for the first state
 * change, of ctx->trace_ops.open), so tracing costs one pointer test per
 * event when it is off. trace.c describes packets from their bytes and
 * reads the connection's state; it changes nothing in the connection but
 * its own trace fields.
 */
#ifndef RUDP_TRACE_H
#define RUDP_TRACE_H

#include "conn.h"

/* The work behind the hooks below, out of line. */
void rudp__trace_do_state(rudp_conn *c, rudp_state to, const char *why);
void rudp__trace_do_packet(rudp_conn *c, int kind, const uint8_t *buf, size_t len);
void rudp__trace_do_lost(rudp_conn *c, const rudp_sent *s);
void rudp__trace_do_metrics(rudp_conn *c);
void rudp__trace_do_close(rudp_conn *c);
void rudp__trace_do_mtu(rudp_conn *c, uint32_t old, uint32_t now_size, int done);
void rudp__trace_do_path(rudp_conn *c, const char *why, rudp_time rtt);

/* A state change about to happen (c->state is still the old one): opens
 * the trace at the first one, then reports it. */
static inline void rudp__trace_state(rudp_conn *c, rudp_state to, const char *why)
{
    if (c->ctx->trace_ops.open)
        rudp__trace_do_state(c, to, why);
}

/* A datagram of c's received (RUDP_TRACE_PACKET_RECEIVED) or sent (_SENT,
 * before recovery records it). */
static inline void rudp__trace_packet(rudp_conn *c, int kind, const uint8_t *buf, size_t len)
{
    if (c->trace)
        rudp__trace_do_packet(c, kind, buf, len);
}

/* A packet of c's declared lost. */
static inline void rudp__trace_lost(rudp_conn *c, const rudp_sent *s)
{
    if (c->trace)
        rudp__trace_do_lost(c, s);
}

/* The recovery and congestion values now (after input, after sending). */
static inline void rudp__trace_metrics(rudp_conn *c)
{
    if (c->trace)
        rudp__trace_do_metrics(c);
}

/* c's datagram size changed from `old` to c->mss (pmtu.c). */
static inline void rudp__trace_mtu(rudp_conn *c, uint32_t old, int done)
{
    if (c->trace && old != c->mss)
        rudp__trace_do_mtu(c, old, c->mss, done);
}

/* c moved to another path (why: in words), its RTT estimate from rtt. */
static inline void rudp__trace_path(rudp_conn *c, const char *why, rudp_time rtt)
{
    if (c->trace)
        rudp__trace_do_path(c, why, rtt);
}

/* c is being freed: the trace's end. */
static inline void rudp__trace_close(rudp_conn *c)
{
    if (c->trace)
        rudp__trace_do_close(c);
}

/* Sends a datagram of c's to its peer, tracing it. */
static inline void rudp__conn_send(rudp_conn *c, const uint8_t *buf, size_t len)
{
    rudp__trace_packet(c, RUDP_TRACE_PACKET_SENT, buf, len);
    rudp__send(c->ctx, c->sock, &c->pkey.addr, c->has_local ? &c->local : NULL, c->send_tag,
               buf, len);
}

#endif
