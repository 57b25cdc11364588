/*
 * enginecmd.c: the commands application threads queue for an engine
 * (engines.c), run on the engine's thread: a connection's UDP socket and
 * bridge made, a listener's socket made or closed, an option set on a live
 * socket; and what waits for e->retry_at: listeners closed here but
 * perhaps held by another process, hand-offs that found a backlog full.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "enginepriv.h"

#include "base/poison.h"

/* ---- commands ---- */

/* Gives the core the UDP socket's address for the names of its
 * connections in log lines. */
static void name_local(const rudp_addr *a, rudp_conn *c, rudp_listener *l)
{
    if (!a->family)
        return;
    if (c)
        rudp_conn_set_name_local(c, a);
    if (l)
        rudp_listener_set_name_local(l, a);
}

static void do_connect(struct engine *e, const shim_connect_req *r, rudp_time now)
{
    esock *s = shim_esock_new(e, r->udp_fd, r->peer.family);
    bridge *b = s ? shim_bridge_new(e) : NULL;
    if (!b) {
        if (s)
            shim_esock_unref(s);
        else
            shim_close_owned(r->udp_fd);
        shim_close_owned(r->efd);
        shim_fallback_cancel(r);
        shim_slot *sl = shim_slot_get(r->slot, r->id);
        if (sl) {
            atomic_store(&sl->so_error, ENOMEM);
            atomic_store(&sl->state, SHIM_SLOT_FAILED);
        }
        return;
    }
    s->peer = r->peer;
    s->connected = 1;
    s->refs = 2; /* the connection's (conn_freed) and the bridge's (bridge_free) */
    s->owner = b;
    b->efd = r->efd;
    shim_bridge_oob_init(b->efd);
    shim_bridge_efd_size(b->efd);
    b->sock = s;
    b->owns_sock = 1;
    b->id = r->id;
    b->slot = r->slot;
    shim_appsend_index(b);
    b->filler = r->filler;
    b->app_fd = r->app_fd;
    b->app_ino = r->app_ino;
    b->app_sndbuf = r->app_sndbuf;
    b->unix_up = 1;
    b->early = r->hold > 0; /* a token, and data to ride with the SYN */
    b->want_token = r->want_token != 0;
    /* the connecting thread read the address (asked here if it did not) */
    rudp_addr local = r->local;
    if (!local.family && shim_to_rudp_local(s->fd, &local) < 0)
        memset(&local, 0, sizeof local);
    shim_bridge_client_sock(s, &local); /* before its SYN leaves */
    int err = r->token_len ? rudp_connect_token(e->ctx, now, s->idx, &r->peer, &r->cfg, r->token,
                                                r->token_len, r->hold, &b->conn)
                           : rudp_connect(e->ctx, now, s->idx, &r->peer, &r->cfg, &b->conn);
    if (err) {
        shim_fallback_cancel(r);
        shim_esock_unref(s);
        shim_bridge_fail(b, err);
        return;
    }
    rudp_conn_set_user(b->conn, b);
    name_local(&local, b->conn, NULL);
    /* only EPOLLHUP until established; with a token, the app's first
     * bytes too (they release the SYN: core/zrtt.c) */
    shim_bridge_watch(b, b->early ? EPOLLIN | EPOLLPRI : 0);
    shim_roam_watch(e); /* its address may go: rtnetlink says when */
    if (r->tcp_fd >= 0)
        shim_fallback_start(b, r, now);
}

static void do_listen(struct engine *e, const shim_listen_req *r, lgroup *g, rudp_time now)
{
    esock *s = shim_esock_new(e, r->udp_fd, r->lname.family);
    if (!s) {
        shim_close_owned(r->udp_fd);
        shim_close_owned(r->reserve_fd);
        if (r->member_tag && r->xfd >= 0)
            shim_close_owned(r->xfd);
        if (r->phfd >= 0)
            shim_close_owned(r->phfd);
        shim_fifo_closed(g, e);
        shim_lgroup_drop(g); /* the others must not wait for it */
        return;
    }
    s->group = g;
    int on = 1;
    s->listener_ino = r->lino;
    s->listener_uid = r->luid;
    s->backlog = r->backlog;
    s->pktinfo = r->wildcard;
    if (r->wildcard) {
        if (r->lname.family == AF_INET6)
            real_setsockopt(s->fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on);
        real_setsockopt(s->fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on);
    }
    s->reserve_fd = r->reserve_fd;
    s->lname = r->lname;
    s->lun = r->lun;
    s->lun_len = r->lun_len;
    s->listener_id = r->id;
    s->refs = 1;
    /* The group's engines share the backlog of half-open connections. */
    int share = g ? (int)(((long long)r->backlog + g->n - 1) / g->n) : r->backlog;
    if (rudp_listen(e->ctx, s->idx, &r->cfg, (unsigned)(share > 0 ? share : 1), &s->listener) < 0) {
        if (r->member_tag && r->xfd >= 0)
            shim_close_owned(r->xfd);
        if (r->phfd >= 0)
            shim_close_owned(r->phfd);
        shim_esock_unref(s);
        return;
    }
    /* An app's SO_REUSEPORT group may hold other processes, and the kernel
     * steers by address and port, not connection ID: with a member tag the
     * IDs say whose a connection is (xgroup.c), and a member resets only
     * its own and those of members gone; without one, a member that lacks
     * a connection cannot tell whether another has it, so none resets. */
    if (r->member_tag)
        rudp_listener_set_member_tag(s->listener, r->member_tag);
    if (r->app_reuseport && !r->member_tag)
        rudp_listener_set_keyed_reset(s->listener, 0);
    rudp_addr lname;
    if (shim_to_rudp_local(s->fd, &lname) == 0)
        name_local(&lname, NULL, s->listener);
    if (r->wildcard)
        shim_roam_watch(e); /* an address its connections use may go (roam.c) */
    shim_acceptq_attach(s);
    if (G.keeper_mode) {
        /* The process that asked for it is gone, or going: its end of the
         * listener may be held by nobody else. */
        s->alive_check = now;
        if (e->retry_at > now)
            e->retry_at = now;
    }
    /* The port's features: its member socket in a group of processes
     * (r->xfd), its name for another process of ours (r->phfd), a watch
     * for another program binding it later, plain TCP on it. */
    if (r->quiet)
        rudp_listener_quiet_resets(s->listener, now + SHIM_QUIET_AFTER_MOVE);
    if (r->zero_rtt)
        rudp_listener_set_zero_rtt(s->listener, 1);
    /* A loopback client's connection is in the app's accept queue before
     * our SYNACK leaves (on_accept connects it to the app's listener in
     * this turn, the SYNACK goes at its end), so before its connect()
     * returns, as Linux TCP queues it (prog_acceptnow). */
    rudp_listener_set_early_accept(s->listener, 1);
    const shim_listener_ops *lo = shim_hook.listener;
    if (lo && lo->open) {
        lo->open(s, r, now);
    } else {
        if (r->member_tag && r->xfd >= 0)
            shim_close_owned(r->xfd);
        if (r->phfd >= 0)
            shim_close_owned(r->phfd);
    }
}

/* In a keeper: whether the process that handed over may still be exiting
 * (keeper.c). */
static int handing_over(rudp_time now)
{
    const shim_lifetime_ops *lt = shim_hook.lifetime;
    return lt && lt->handing_over && lt->handing_over(now);
}

void shim_engine_stop_listening(esock *s)
{
    if (shim_hook.listener && shim_hook.listener->stop)
        shim_hook.listener->stop(s); /* its plain TCP (tcpaccept.c) */
    shim_acceptq_release(s);
    rudp_listener_close(s->listener);
    s->listener = NULL;
    s->alive_check = 0;
    shim_esock_unref(s);
}

int shim_engine_listener_live(esock *s, rudp_time now)
{
    if (!s->listener)
        return 0;
    if (!s->alive_check)
        return 1; /* the app holds it */
    if ((G.keeper_mode && handing_over(now)) || unix_alive(s->listener_ino) != 0)
        return 1;
    shim_engine_stop_listening(s);
    return 0;
}

/* The app closed a listener here. A forked child may still hold it (a
 * prefork server): keep accepting until no process does. Otherwise the
 * port goes now, as TCP's does at close(): the app may listen on it again
 * at once (iperf3 -s does after each test). A member of a group that went
 * idle here while another engine's was still live (shim_esock_unref)
 * closes too once none is: the closer sends this command a second time
 * for that (engines.c). What the listener accepted keeps its socket. */
static void do_listen_closed(struct engine *e, uint64_t id, rudp_time now)
{
    for (uint32_t i = 0; i < e->nsocks; i++) {
        esock *s = e->socks[i];
        if (s && s->idle && s->listener_id == id && atomic_load(&s->group->live) == 0) {
            shim_esock_close(s);
            continue;
        }
        if (s && s->listener && s->listener_id == id) {
            /* -1, cannot tell (no fd for sock_diag's socket: EMFILE),
             * counts as held: asked again at the next check; taken as
             * gone, a supervisor short of fds closing its copy of a
             * listener stopped it while the program listened on. */
            if (unix_alive(s->listener_ino) != 0) {
                s->alive_check = now + ALIVE_PERIOD;
                if (e->retry_at > s->alive_check)
                    e->retry_at = s->alive_check;
            } else {
                shim_engine_stop_listening(s);
            }
            return;
        }
    }
}

/* An option set on a live socket (CMD_SET_CC, CMD_SET_MARK, CMD_SET_BUF,
 * CMD_SET_CORK and CMD_SET_TIMEOUTS, which a listener does not take: accept()
 * passes them on): a listener's
 * socket in each engine (SO_REUSEPORT group), a connection's bridge in one.
 * A mark goes on the UDP socket only where it carries that connection
 * alone (a client's, and the one it left while roaming); an accepted
 * connection's goes with each of its datagrams (pktctl.c). */
static void do_set(struct engine *e, const cmd *c, rudp_time now)
{
    int value = c->u.set.value;
    if (c->u.set.listener) {
        for (uint32_t i = 0; i < e->nsocks; i++) {
            esock *s = e->socks[i];
            if (!s || !s->listener || s->listener_id != c->u.set.id)
                continue;
            if (c->type == CMD_SET_CC) {
                rudp_listener_set_cc(s->listener, c->u.set.cc);
            } else if (c->type == CMD_SET_BUF) {
                rudp_listener_set_buffers(s->listener, c->u.set.sndbuf, c->u.set.rcvwnd,
                                          c->u.set.lowat);
            } else if (c->type == CMD_SET_CORK || c->type == CMD_SET_TIMEOUTS) {
                continue;
            } else {
                /* what it accepted keeps the old value, as TCP's do */
                shim_pktctl_listener_mark(s, c->u.set.level, c->u.set.opt);
                real_setsockopt(s->fd, c->u.set.level, c->u.set.opt, &value, sizeof value);
            }
        }
        return;
    }
    for (bridge *b = e->bridges; b; b = b->next) {
        if (b->id != c->u.set.id || !b->conn)
            continue;
        if (c->type == CMD_SET_CC) {
            rudp_conn_set_cc(b->conn, c->u.set.cc, now);
        } else if (c->type == CMD_SET_BUF) {
            rudp_conn_set_buffers(b->conn, c->u.set.sndbuf, c->u.set.rcvwnd, c->u.set.lowat);
        } else if (c->type == CMD_SET_CORK) {
            rudp_conn_set_cork(b->conn, value);
        } else if (c->type == CMD_SET_TIMEOUTS) {
            rudp_conn_set_timeouts(b->conn, now, c->u.set.keepalive, c->u.set.idle, c->u.set.user);
        } else if (b->owns_sock) {
            real_setsockopt(b->sock->fd, c->u.set.level, c->u.set.opt, &value, sizeof value);
            if (b->old_sock)
                real_setsockopt(b->old_sock->fd, c->u.set.level, c->u.set.opt, &value,
                                sizeof value);
        } else {
            /* an accepted connection: its listener's socket is shared */
            shim_pktctl_set_mark(b, c->u.set.level, c->u.set.opt, value);
        }
        return;
    }
}

static void check_alive(struct engine *e, rudp_time now)
{
    for (uint32_t i = 0; i < e->nsocks; i++) {
        esock *s = e->socks[i];
        if (s && s->idle) {
            if (atomic_load(&s->group->live) == 0) {
                shim_esock_close(s);
            } else if (e->retry_at > now + ALIVE_PERIOD) {
                e->retry_at = now + ALIVE_PERIOD;
            }
            continue;
        }
        if (!s || !s->listener || !s->alive_check)
            continue;
        if (now >= s->alive_check) {
            if (G.keeper_mode && handing_over(now)) {
                s->alive_check = now + HANDED_POLL; /* its copies must not count */
            } else if (unix_alive(s->listener_ino) == 0) {
                shim_engine_stop_listening(s);
                continue;
            } else {
                s->alive_check = now + ALIVE_PERIOD;
            }
        }
        if (e->retry_at > s->alive_check)
            e->retry_at = s->alive_check;
    }
}

/* At exit, the program's copies of its listeners closed (keeper.c): each
 * listener of e that no other process holds stops here and now (e paused).
 * What the program's ends of its bridges say is read first: a connection
 * it closed just before its exit (nc -l: close() of its connection, then
 * exit with the listener open) must be seen closing, or the listener's
 * stop counts it live and moves it to a port of its own (portshare.c's
 * leave_group), and its peer names it anew (t_messages under a loaded
 * make test: "peer moved", once in five runs). */
static void stop_unheld(void *arg)
{
    struct engine *e = arg;
    /* not in a process under a seccomp filter of its own: this is the
     * exiting thread, which the filter may forbid the turn's calls
     * (prog_apprecv's sandboxed image died of SIGSYS) */
    if (e->iofd >= 0 && e->iofd != e->epfd && !shim_sandboxed()) {
        rudp_time now = shim_now();
        e->dispatching = 1; /* as the engine's turn: what ends is buried after */
        shim_engine_io_turn(e, now);
        e->dispatching = 0;
        shim_engine_graves_empty(e);
        shim_engine_pump(e, now);
    }
    for (uint32_t i = 0; i < e->nsocks; i++) {
        esock *s = e->socks[i];
        if (s && s->listener && unix_alive(s->listener_ino) == 0)
            shim_engine_stop_listening(s);
    }
}

void shim_engines_stop_unheld_listeners(void)
{
    int n = shim_engines_nrun();
    for (int k = 0; k < n; k++)
        shim_engines_run_parked(shim_engine_nth(k), stop_unheld, shim_engine_nth(k));
}

/* Due at e->retry_at: listeners closed here but perhaps held elsewhere
 * (check_alive), the features' timers (SHIM_ON_TICK: a port watched,
 * TIME_WAIT ending, plain TCP that found the app's backlog full), then the
 * accepted connections waiting in e->pending (bridge.c). */
void shim_engine_retry_pending(struct engine *e, rudp_time now)
{
    bridge *list = e->pending;
    e->pending = NULL;
    e->retry_at = RUDP_TIME_NEVER;
    check_alive(e, now);
    shim_hooks_run(SHIM_ON_TICK, e, now);
    while (list) {
        bridge *b = list;
        list = b->pending_next;
        (void)shim_bridge_try_accept(b, now);
    }
    shim_bridge_accept_held(e, now); /* no fd for their bridge before */
}

void shim_engine_run_commands(struct engine *e, rudp_time now)
{
    uint64_t v;
    ssize_t r = real_read(e->evfd, &v, sizeof v);
    (void)r;
    if (atomic_load(&G.stats_asked))
        shim_engine_stats_answer(e);
    shim_mutex_lock(&G.mu);
    cmd *list = e->q_head;
    e->q_head = e->q_tail = NULL;
    e->rung = 0; /* the doorbell was read above: the next command rings */
    atomic_store(&e->cmd_queued, 0); /* run in this turn, under turn_mu */
    shim_mutex_unlock(&G.mu);
    while (list) {
        cmd *c = list;
        list = c->next;
        switch (c->type) {
        case CMD_CONNECT:
            do_connect(e, &c->u.c, now);
            break;
        case CMD_LISTEN:
            do_listen(e, &c->u.l, c->group, now);
            break;
        case CMD_LISTEN_CLOSED:
            do_listen_closed(e, c->u.lc.id, now);
            shim_engine_lclose_done(c->u.lc.wait);
            break;
        case CMD_CONTROL:
            shim_control_cmd(e, c->u.ctl);
            break;
        case CMD_SET_CC:
        case CMD_SET_MARK:
        case CMD_SET_BUF:
        case CMD_SET_CORK:
        case CMD_SET_TIMEOUTS:
            do_set(e, c, now);
            break;
        default: /* a feature's: CMD_YIELD (portshare.c), CMD_ADOPT (adopt.c) */
            if (c->type > 0 && c->type < SHIM_CMD_MAX && shim_hook.cmd[c->type])
                shim_hook.cmd[c->type](e, c->u.ctl);
            else /* a feature that forgot to register: its asker would wait out a timeout */
                shim_log(RUDP_LOG_ERROR, "engine: command %d has no handler (shim_engine_on_cmd)",
                         c->type);
            break;
        }
        shim_free(c);
    }
    /* after a CMD_LISTEN: its socket is there (forward.c) */
    if (shim_hook.relay && shim_hook.relay->take)
        shim_hook.relay->take(e, now);
    /* the eventfd is also the arena's doorbell; after the commands, which
     * came before the writes (TCP_CORK and the like) */
    shim_txring_take(e, now);
}
