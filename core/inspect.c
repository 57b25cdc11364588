/*
 * inspect.c: read-only views of a context for diagnostics (rudp-stat):
 * walking its connections, a connection's age and its controller's phase.
 * Nothing here changes state; like the rest of the core, it runs on the
 * thread that owns the context.
 */
#include "conn.h"

const rudp_conn *rudp_ctx_conn_next(const rudp_ctx *ctx, const rudp_conn *prev)
{
    return prev ? prev->all_next : ctx->all;
}

rudp_time rudp_conn_start_time(const rudp_conn *c)
{
    return c->hs_start;
}

void rudp_conn_cc_state(const rudp_conn *c, const char **name, const char **phase)
{
    *name = c->cc.ops->name;
    *phase = c->cc.ops->phase ? c->cc.ops->phase(&c->cc) : "";
}
