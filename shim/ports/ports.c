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
#include "ports.h"
#include "portmove.h"
#include "portwatch.h"

#include "base/poison.h"

/* do_listen, s listening: its member socket in a group of processes, its
 * name for another process of ours that may want the port, a watch for
 * another program binding it later, plain TCP on it. (No resets for a
 * while on a port handed over, r->quiet, is the engine's own step.) */
static void listener_open(esock *s, const shim_listen_req *r, rudp_time now)
{
    if (r->member_tag && r->xfd >= 0)
        shim_xgroup_attach(s, r->xfd, r->member_tag);
    shim_porthand_attach(s, r->phfd);
    shim_portwatch_arm(s, now);
    if (r->accept_tcp && s->reserve_fd >= 0)
        shim_tcpl_start(s);
}

/* The socket goes: its member socket and its name with it. */
static void listener_close(esock *s)
{
    shim_xgroup_detach(s);
    shim_porthand_close(s);
}

static const shim_listener_ops listener_ops = {
    .join = shim_xgroup_join,
    .member_name = shim_porthand_name,
    .open = listener_open,
    .stop = shim_tcpl_stop,
    .closing_first = shim_tw_mark,
    .keep_reserve = shim_tw_hold,
    .close = listener_close,
    .live_twin = shim_port_live_twin,
    .same_endpoint = shim_port_same_endpoint,
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

void shim_ports_init(void)
{
    shim_engine_set_listener_ops(&listener_ops);
    shim_engine_set_relay_ops(&relay_ops);
    shim_engine_set_client_ops(&client_ops);
    /* at each retry, in this order, as the engine ran them */
    shim_engine_on(SHIM_ON_TICK, shim_portwatch_run);
    shim_engine_on(SHIM_ON_TICK, shim_tw_expire);
    shim_engine_on(SHIM_ON_TICK, tcpl_retry);
    shim_engine_on(SHIM_ON_RETIRE, tw_leave);
    shim_engine_on_cmd(CMD_YIELD, shim_port_yield_cmd);
}
