/*
 * rxstamp.c: the caller's stamps of the SYN a server connection was made
 * from and of the datagram that completed its handshake (rudp.h,
 * rudp_ctx_set_rx_stamp). The shim gives the kernel's receive time of each
 * datagram, and hands a listener's connections to the application in an
 * order they give across its engines (shim/engine/fifo.c); the core only
 * keeps the numbers.
 */
#include "conn.h"

void rudp_ctx_set_rx_stamp(rudp_ctx *ctx, uint64_t stamp)
{
    ctx->rx_stamp = stamp;
}

uint64_t rudp_conn_accept_stamp(const rudp_conn *c)
{
    return c->accept_stamp;
}

uint64_t rudp_conn_syn_stamp(const rudp_conn *c)
{
    return c->syn_stamp;
}
