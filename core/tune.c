/*
 * tune.c: settings the application changes on a live connection or a
 * listener through its socket's options (the shim's setsockopt): the
 * congestion controller; and the caller's send tag, which tells its
 * send_from how to send the connection's datagrams. Like the rest of the core, it runs on the thread
 * that owns the context.
 */
#include "conn.h"

void rudp_conn_set_cc(rudp_conn *c, const rudp_cc_ops *ops, rudp_time now)
{
    c->cfg.cc = ops;
    rudp_cc_switch(&c->cc, ops, now);
}

void rudp_listener_set_cc(rudp_listener *l, const rudp_cc_ops *ops)
{
    l->cfg.cc = ops;
}

void rudp_conn_set_send_tag(rudp_conn *c, uint64_t tag)
{
    c->send_tag = tag;
}

uint64_t rudp_conn_send_tag(const rudp_conn *c)
{
    return c->send_tag;
}
