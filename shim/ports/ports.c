/*
 * ports.c: a listener's port, plugged into the engine (hooks.h). The port's
 * features live beside this file: a listener's group of processes
 * (xgroup.c), its name for another process of ours (porthand.c), a watch
 * for another program binding it (portwatch.c), plain TCP on it
 * (tcpaccept.c), TIME_WAIT (portshare.c, timewait.c), ports shared and
 * given up (portshare.c, portmove.c), datagrams for another engine
 * (forward.c). The engine calls none of them by name: shim_ports_init,
 * from the shim's init, registers what it calls.
 */
#include <string.h>

#include "ports.h"
#include "portmove.h"
#include "portpriv.h"
#include "portwatch.h"

#include "base/poison.h"

/* do_listen, s listening: its member socket in a group of processes, its
 * name for another process of ours that may want the port, a watch for
 * another program binding it later, plain TCP on it. (No resets for a
 * while on a port handed over, r->quiet, is the engine's own step.) */
static void listener_open(esock *s, const shim_listen_req *r, rudp_time now)
{
    port_sock *ps = port_of_sock(s);
    socklen_t el = sizeof ps->endpoint;
    if (real_getsockname(shim_esock_fd(s), (struct sockaddr *)&ps->endpoint, &el) < 0)
        memset(&ps->endpoint, 0, sizeof ps->endpoint);
    ps->app_reuseport = r->app_reuseport != 0;
    if (r->member_tag && r->xfd >= 0)
        shim_xgroup_attach(s, r->xfd, r->member_tag);
    shim_porthand_attach(s, r->phfd);
    shim_portwatch_arm(s, now);
    if (r->accept_tcp && shim_esock_reserve_fd(s) >= 0)
        shim_tcpl_start(s);
}

/* The socket goes (freed once the engine's batch of events is done):
 * its member socket and its name with it, and its reserve TCP listener's
 * events still in the batch go to nobody. */
static void listener_close(esock *s)
{
    port_of_sock(s)->tcp.w.type = 0;
    shim_xgroup_detach(s);
    shim_porthand_close(s);
}

/* s's listener stops: its plain TCP, and its place in a SO_REUSEPORT
 * group that other processes may share (shim_port_leave_group). */
static void listener_stop(esock *s)
{
    shim_tcpl_stop(s);
    shim_port_leave_group(shim_esock_engine(s), s);
}

static int plain_tcp(const esock *s)
{
    return port_of_sock(s)->tcp.on;
}

static const shim_listener_ops listener_ops = {
    .join = shim_xgroup_join,
    .member_name = shim_porthand_name,
    .open = listener_open,
    .stop = listener_stop,
    .closing_first = shim_tw_mark,
    .keep_reserve = shim_tw_hold,
    .close = listener_close,
    .live_twin = shim_port_live_twin,
    .conn_ended = shim_port_conn_ended,
    .same_endpoint = shim_port_same_endpoint,
    .plain_tcp = plain_tcp,
};

static const shim_relay_ops relay_ops = {
    .tag_bits = shim_forward_tag_bits,
    .to_engine = shim_forward,
    .take = shim_forward_take,
    .to_member = shim_xgroup_forward,
    .flush = shim_xgroup_flush,
};

static const shim_client_ops client_ops = {
    .server_moved = shim_portmove_follow,
};

/* The reserve sockets set aside for a full backlog: watched again. */
static void tcpl_retry(struct engine *e, rudp_time now)
{
    (void)now;
    shim_tcpl_retry(e);
}

static void tw_leave(struct engine *e, rudp_time now)
{
    (void)now;
    shim_tw_leave(e);
}

/* e's figures, printed with the engine's (hooks.h). */
static void figures(struct engine *e, uint64_t *fig)
{
    const port_engine *pe = port_of_engine(e);
    fig[SHIM_FIG_TCP_ACCEPTED] += pe->tcp_accepted;
    fig[SHIM_FIG_HANDED_OUT] += pe->handed_out;
    fig[SHIM_FIG_HANDED_IN] += pe->handed_in;
    fig[SHIM_FIG_HANDED_DROPPED] += pe->handed_dropped;
    fig[SHIM_FIG_XG_OUT] += pe->xg_out;
    fig[SHIM_FIG_XG_IN] += pe->xg_in;
    fig[SHIM_FIG_XG_DROPPED] += pe->xg_dropped;
    fig[SHIM_FIG_XG_ORPHANS] += pe->xg_orphans;
    fig[SHIM_FIG_XG_UNKNOWN] += pe->xg_unknown;
}

void shim_ports_init(void)
{
    /* our state in the engine's objects (portpriv.h) */
    shim_engine_set_ext(&(shim_ext_sizes){.engine = sizeof(port_engine),
                                          .sock = sizeof(port_sock),
                                          .group = sizeof(port_group)});
    shim_engine_set_figures(figures);
    shim_engine_set_listener_ops(&listener_ops);
    shim_engine_set_relay_ops(&relay_ops);
    shim_engine_set_client_ops(&client_ops);
    /* at each retry, in this order, as the engine ran them */
    shim_engine_on(SHIM_ON_TICK, shim_portwatch_run);
    shim_engine_on(SHIM_ON_TICK, shim_tw_expire);
    shim_engine_on(SHIM_ON_TICK, shim_xgroup_linger_expire);
    shim_engine_on(SHIM_ON_TICK, shim_port_leave_due);
    shim_engine_on(SHIM_ON_TICK, tcpl_retry);
    shim_engine_on(SHIM_ON_RETIRE, tw_leave);
    shim_engine_on_cmd(CMD_YIELD, shim_port_yield_cmd);
}
