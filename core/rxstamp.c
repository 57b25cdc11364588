/*
 * rxstamp.c: the caller's stamp of the datagram that completed a server
 * connection's handshake (rudp.h, rudp_ctx_set_rx_stamp). The shim gives
 * the kernel's receive time of each datagram, and hands a listener's
 * connections to the application in that order across its engines
 * (shim/fifo.c); the core only keeps the number.
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
