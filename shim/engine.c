/*
 * engine.c: the engine threads. The first starts on the first redirected
 * socket; with RUDP_ENGINES > 1 a listener starts the others (each serves
 * its own socket of the listener's SO_REUSEPORT group) and a busy client
 * spreads its connections over them. All signals blocked. Each engine's
 * epoll loop watches its UDP sockets, its ends of the bridges and an
 * eventfd for commands; its timeout is the core's next deadline
 * (epoll_pwait2: nanoseconds), so an idle process sleeps. Engines share
 * nothing but the command lock (G.mu) and the slots.
 *
 * Here: the loop, the UDP sockets (esock: reading them, the core's output
 * to them, a listener's socket held while its SO_REUSEPORT group lives),
 * the commands, and whether a closed listener lives on in another process.
 * The bridges, each joining an application's unix socket to one rudp
 * connection, are bridge.c's: the loop hands them their epoll events and
 * the core's events for their connections.
 *
 * Application threads talk to the engine through a locked command queue
 * (connect, listen, listener closed, exit) and read per-connection state
 * from shared slots (slots.c). What happens to the engine at fork, exec
 * and exit is enginectl.c's and keeper.c's; the state they share is in
 * engine.h. The features above the engine (a listener's port, a process's
 * lifetime) are reached only through what they registered (hooks.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <linux/errqueue.h>
#include <sodium.h>

#include "engine.h"
#include "enginepriv.h"
#include "hooks.h"
#include "udpio.h"

#include "poison.h"

struct engines G = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .cv = PTHREAD_COND_INITIALIZER,
};

static _Atomic uint64_t next_id = 1;

uint64_t shim_engine_new_id(void)
{
    return atomic_fetch_add(&next_id, 1);
}

/* ---- sockets ---- */

esock *shim_esock_new(struct engine *e, int fd, int family)
{
    esock *s = shim_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    uint32_t idx = 0;
    while (idx < e->nsocks && e->socks[idx])
        idx++;
    if (idx == e->nsocks) {
        uint32_t n = e->nsocks ? e->nsocks * 2 : 64;
        esock **v = shim_realloc(e->socks, n * sizeof *v);
        if (!v) {
            shim_free(s);
            return NULL;
        }
        memset(v + e->nsocks, 0, (n - e->nsocks) * sizeof *v);
        e->socks = v;
        e->nsocks = n;
    }
    s->type = W_UDP;
    s->e = e;
    s->fd = fd;
    s->idx = idx;
    s->family = family;
    s->reserve_fd = -1;
    /* ICMP errors come with the datagram they quote (read_errqueue), so
     * the core can tell ours from forged ones. */
    int on = 1;
    if (family == AF_INET6)
        real_setsockopt(fd, SOL_IPV6, IPV6_RECVERR, &on, sizeof on);
    real_setsockopt(fd, SOL_IP, IP_RECVERR, &on, sizeof on);
    shim_udpio_setup(e->io, fd);
    struct epoll_event ee = {.events = EPOLLIN, .data.ptr = s};
    if (real_epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ee) < 0) {
        shim_free(s);
        return NULL;
    }
    e->socks[idx] = s;
    return s;
}

void shim_engine_bury(struct engine *e, void *p, int *type)
{
    *type = 0; /* dispatched to nobody */
    if (e->dispatching) {
        if (e->ngraves == e->graves_cap) {
            uint32_t n = e->graves_cap ? 2 * e->graves_cap : 16;
            void **v = shim_realloc(e->graves, n * sizeof *v);
            if (v) {
                e->graves = v;
                e->graves_cap = n;
            }
        }
        if (e->ngraves < e->graves_cap) {
            e->graves[e->ngraves++] = p;
            return;
        }
    }
    shim_free(p); /* no room to wait: as before this existed */
}

void shim_engine_graves_empty(struct engine *e)
{
    for (uint32_t i = 0; i < e->ngraves; i++)
        shim_free(e->graves[i]);
    e->ngraves = 0;
}

void shim_esock_close(esock *s)
{
    struct engine *e = s->e;
    /* What is queued for this socket (the RESET of the connection whose
     * end freed it) leaves before the fd is closed and maybe reused. */
    shim_udpio_flush(e->io);
    real_epoll_ctl(e->epfd, EPOLL_CTL_DEL, s->fd, NULL);
    shim_fifo_sock_closed(s);
    shim_close_owned(s->fd);
    const shim_listener_ops *lo = shim_hook.listener;
    if (!lo || !lo->keep_reserve || !lo->keep_reserve(s))
        shim_close_owned(s->reserve_fd);
    e->socks[s->idx] = NULL;
    if (s->group && atomic_fetch_sub(&s->group->members, 1) == 1)
        shim_lgroup_free(s->group);
    s->tcp.w.type = 0; /* its reserve TCP listener's events too */
    if (lo && lo->close)
        lo->close(s); /* its member socket, its name for other processes */
    shim_engine_bury(e, s, &s->type);
}

void shim_esock_unref(esock *s)
{
    if (--s->refs > 0)
        return;
    if (s->group && !s->idle) {
        /* A member of a listener's group stays open, and read, until no
         * member is in use (check_alive closes it then): closing it now
         * would move other engines' connections (see lgroup). */
        s->idle = 1;
        if (atomic_fetch_sub(&s->group->live, 1) > 1) {
            struct engine *e = s->e;
            rudp_time at = shim_now() + ALIVE_PERIOD;
            if (e->retry_at > at)
                e->retry_at = at;
            return;
        }
    }
    shim_esock_close(s);
}

static void on_conn_freed(void *user, uint32_t sock)
{
    struct engine *e = user;
    if (sock < e->nsocks && e->socks[sock])
        shim_esock_unref(e->socks[sock]);
}

static void on_send(void *user, uint32_t sock, const rudp_addr *peer, const rudp_addr *local,
                    uint64_t tag, const uint8_t *buf, size_t len)
{
    struct engine *e = user;
    if (sock >= e->nsocks || !e->socks[sock])
        return;
    esock *s = e->socks[sock];
    SHIM_LOG(RUDP_LOG_DEBUG, "udp %u: send %zu bytes %s", sock, len, rudp_packet_name(buf, len));
    /* Queued, and sent at the end of this engine turn (udpio.c): a
     * listener's socket serves many peers, even after the listener itself
     * is closed, so unconnected sockets name the peer. */
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    shim_udpio_ctl tmp;
    const shim_udpio_ctl *ctl = NULL;
    int connected = s->connected && memcmp(peer, &s->peer, sizeof *peer) == 0;
    if (!connected) { /* a client's too, to another address than its socket's (portmove.c) */
        sl = shim_from_rudp_addr(peer, &ss);
        ctl = shim_pktctl_for(s, peer, local, tag, &tmp); /* an accepted connection's own */
    }
    shim_udpio_send(e->io, s->fd, connected, &ss, sl, ctl, buf, len);
}

static void on_log(void *user, int level, const char *msg)
{
    (void)user;
    shim_log(level, "%s", msg);
}

/* ---- commands ---- */

/* Gives the core the UDP socket's address for the names of its
 * connections in log lines. */
static void name_local(int fd, rudp_conn *c, rudp_listener *l)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (real_getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return;
    rudp_addr a;
    shim_to_rudp_addr((struct sockaddr *)&ss, &a);
    if (c)
        rudp_conn_set_name_local(c, &a);
    if (l)
        rudp_listener_set_name_local(l, &a);
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
    b->filler = r->filler;
    b->app_fd = r->app_fd;
    b->app_ino = r->app_ino;
    b->app_sndbuf = r->app_sndbuf;
    b->unix_up = 1;
    int err = rudp_connect(e->ctx, now, s->idx, &r->peer, &r->cfg, &b->conn);
    if (err) {
        shim_fallback_cancel(r);
        shim_esock_unref(s);
        shim_bridge_fail(b, err);
        return;
    }
    rudp_conn_set_user(b->conn, b);
    name_local(s->fd, b->conn, NULL);
    shim_bridge_watch(b, 0); /* only EPOLLHUP until established */
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
    int share = g ? (r->backlog + g->n - 1) / g->n : r->backlog;
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
    name_local(s->fd, NULL, s->listener);
    shim_acceptq_attach(s);
    if (G.keeper_mode) {
        /* The process that asked for it is gone, or going: its end of the
         * listener may be held by nobody else. */
        s->alive_check = now;
        if (e->retry_at > now)
            e->retry_at = now;
    }
    socklen_t el = sizeof s->endpoint;
    if (real_getsockname(s->fd, (struct sockaddr *)&s->endpoint, &el) < 0)
        memset(&s->endpoint, 0, sizeof s->endpoint);
    /* The port's features: its member socket in a group of processes
     * (r->xfd), its name for another process of ours (r->phfd), a watch
     * for another program binding it later, plain TCP on it. */
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
            if (unix_alive(s->listener_ino) == 1) {
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
 * CMD_SET_CORK, which a listener does not take: accept() passes it on): a listener's
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
            } else if (c->type == CMD_SET_CORK) {
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
}

void shim_engine_run_commands(struct engine *e, rudp_time now)
{
    uint64_t v;
    ssize_t r = read(e->evfd, &v, sizeof v);
    (void)r;
    if (atomic_load(&G.stats_asked))
        shim_engine_stats_answer(e);
    pthread_mutex_lock(&G.mu);
    cmd *list = e->q_head;
    e->q_head = e->q_tail = NULL;
    pthread_mutex_unlock(&G.mu);
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
            do_set(e, c, now);
            break;
        default: /* a feature's: CMD_YIELD (portshare.c), CMD_ADOPT (adopt.c) */
            if (c->type > 0 && c->type < SHIM_CMD_MAX && shim_hook.cmd[c->type])
                shim_hook.cmd[c->type](e, c->u.ctl);
            break;
        }
        shim_free(c);
    }
    /* after a CMD_LISTEN: its socket is there (forward.c) */
    if (shim_hook.relay && shim_hook.relay->take)
        shim_hook.relay->take(e, now);
}

/* ---- the loop ---- */

/* The destination of a datagram received on a wildcard-bound socket. */
static int pktinfo_local(struct msghdr *m, rudp_addr *out)
{
    memset(out, 0, sizeof *out);
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof pi);
            out->family = AF_INET;
            memcpy(out->ip, &pi.ipi_addr, 4);
            return 1;
        }
        if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof pi);
            out->family = AF_INET6;
            memcpy(out->ip, &pi.ipi6_addr, 16);
            out->scope_id = pi.ipi6_ifindex;
            return 1;
        }
    }
    return 0;
}

/* ICMP errors about datagrams a socket sent (IP_RECVERR): each comes with
 * the address it was sent to and what the ICMP message quoted of it, which
 * the core matches against its connections (core/icmp.c). */
static void read_errqueue(esock *s, rudp_time now)
{
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage off;
        char ctrl[512];
        uint8_t data[64];
        struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
        struct msghdr m = {.msg_name = &off, .msg_namelen = sizeof off, .msg_iov = &iov,
                           .msg_iovlen = 1, .msg_control = ctrl, .msg_controllen = sizeof ctrl};
        ssize_t n = real_recvmsg(s->fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT);
        if (n < 0)
            return;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
            if (!((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
                  (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR)))
                continue;
            struct sock_extended_err ee;
            memcpy(&ee, CMSG_DATA(c), sizeof ee);
            /* Unreachability only: a "fragmentation needed" (EMSGSIZE) is
             * no news about the peer. */
            if ((ee.ee_origin == SO_EE_ORIGIN_ICMP || ee.ee_origin == SO_EE_ORIGIN_ICMP6) &&
                ee.ee_errno != EMSGSIZE && m.msg_namelen) {
                rudp_addr a;
                shim_to_rudp_addr((struct sockaddr *)&off, &a);
                rudp_ctx_icmp(s->e->ctx, now, s->idx, &a, data, (size_t)n, -(int)ee.ee_errno);
            }
        }
    }
}

/* A datagram whose connection another process's member (xgroup.c) or
 * another engine (forward.c) has; without them, nobody's. */
static void relay_member(esock *s, unsigned tag, const rudp_addr *local, const rudp_addr *peer,
                         const uint8_t *buf, size_t len, rudp_time now)
{
    const shim_relay_ops *r = shim_hook.relay;
    if (r && r->to_member)
        r->to_member(s, tag, local, peer, buf, len, now);
}

static void relay_engine(esock *s, unsigned owner, const rudp_addr *local,
                         const rudp_addr *peer, const uint8_t *buf, size_t len, rudp_time now)
{
    const shim_relay_ops *r = shim_hook.relay;
    if (r && r->to_engine)
        r->to_engine(s, owner, local, peer, buf, len, now);
}

static void read_udp(esock *s, uint32_t events, rudp_time now)
{
    struct engine *e = s->e;
    if (events & EPOLLERR)
        read_errqueue(s, now);
    /* a listener's group of engines: accept order (fifo.c) */
    int fifo = shim_fifo_on(s);
    uint64_t t0 = 0, last = 0;
    for (int rounds = 0; rounds < 8; rounds++) {
        for (int i = 0; i < RX_BATCH; i++) {
            e->iovs[i].iov_base = e->rxbuf + (size_t)i * RX_SIZE;
            e->iovs[i].iov_len = RX_SIZE;
            memset(&e->msgs[i].msg_hdr, 0, sizeof e->msgs[i].msg_hdr);
            e->msgs[i].msg_hdr.msg_iov = &e->iovs[i];
            e->msgs[i].msg_hdr.msg_iovlen = 1;
            e->msgs[i].msg_hdr.msg_name = &e->addrs[i];
            e->msgs[i].msg_hdr.msg_namelen = sizeof e->addrs[i];
            /* pktinfo and GRO's segment size */
            e->msgs[i].msg_hdr.msg_control = e->ctrls[i];
            e->msgs[i].msg_hdr.msg_controllen = sizeof e->ctrls[i];
        }
        if (fifo)
            t0 = shim_fifo_reading(s);
        int m = real_recvmmsg(s->fd, e->msgs, RX_BATCH, MSG_DONTWAIT, NULL);
        /* Each batch is timed when it is read: an ACK that arrived while
         * earlier batches were processed, timed at the wake-up, would
         * give an RTT sample short by that long (and BBR a false minimum
         * RTT: the flood benchmark saw 3.9 ms on a 10 ms link). */
        now = shim_now();
        if (m < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH ||
                errno == EHOSTDOWN || errno == ENONET || errno == EPROTO) {
                /* The socket's pending ICMP error, reported once: the
                 * error queue has it with its quote, which decides. */
                read_errqueue(s, now);
                continue;
            }
            if (fifo)
                shim_fifo_read(s, t0, last, 1); /* EAGAIN: empty */
            return;
        }
        if (m > 0)
            s->heard = 1; /* roam.c: the peer knows this socket */
        for (int i = 0; i < m; i++) {
            SHIM_LOG(RUDP_LOG_DEBUG, "udp %u: received %u bytes %s", s->idx, e->msgs[i].msg_len,
                     rudp_packet_name(e->iovs[i].iov_base, e->msgs[i].msg_len));
            if (s->alive_check && rudp_is_syn(e->iovs[i].iov_base, e->msgs[i].msg_len) &&
                unix_alive(s->listener_ino) == 0) {
                /* the last process holding the listener is gone: refuse
                 * this client now, as TCP would, not after a handshake */
                shim_engine_stop_listening(s);
            }
            /* A new client on the port of a listener closed and made
             * again: the live one's (portshare.c) */
            uint32_t sidx = s->idx;
            if (!s->listener && s->listener_id && shim_hook.listener &&
                shim_hook.listener->live_twin &&
                rudp_is_syn(e->iovs[i].iov_base, e->msgs[i].msg_len))
                sidx = shim_hook.listener->live_twin(e, s);
            rudp_addr a, local;
            shim_to_rudp_addr((struct sockaddr *)&e->addrs[i], &a);
            int has_local = s->pktinfo && pktinfo_local(&e->msgs[i].msg_hdr, &local);
            /* GRO: one buffer may hold several datagrams of seg bytes
             * (the last one shorter), each its own packet to the core. */
            const uint8_t *p = e->iovs[i].iov_base;
            size_t left = e->msgs[i].msg_len;
            uint64_t stamp;
            uint32_t seg =
                shim_udpio_rx_meta(e->io, &e->msgs[i].msg_hdr, &s->drops_seen, &stamp);
            if (stamp > last)
                last = stamp;
            e->rx_stamp = stamp;
            rudp_ctx_set_rx_stamp(e->ctx, stamp);
            if (!seg || seg > left)
                seg = (uint32_t)left;
            uint32_t count = 0;
            do {
                size_t l = left < seg ? left : seg;
                int owner = rudp_ctx_input(e->ctx, now, sidx, has_local ? &local : NULL, &a,
                                           p, l);
                if (owner >= RUDP_INPUT_MEMBER) /* another process's (xgroup.c) */
                    relay_member(s, (unsigned)(owner - RUDP_INPUT_MEMBER),
                                 has_local ? &local : NULL, &a, p, l, now);
                else if (owner) /* another engine's connection (forward.c) */
                    relay_engine(s, (unsigned)(owner - RUDP_INPUT_FOREIGN),
                                 has_local ? &local : NULL, &a, p, l, now);
                p += l;
                left -= l;
                count++;
            } while (left > 0);
            shim_udpio_received(e->io, 1, count);
        }
        if (fifo)
            shim_fifo_read(s, t0, last, m < RX_BATCH);
        if (m < RX_BATCH)
            return;
    }
}

/* epoll events taken per call, and further calls without sleeping before
 * the turn's timers run (see shim_engine_loop). */
#define EV_MAX 128
#define EV_ROUNDS 31

static rudp_time pump_once(struct engine *e, rudp_time now)
{
    rudp_time deadline = RUDP_TIME_NEVER;
    for (int round = 0; round < 8; round++) {
        deadline = rudp_ctx_process(e->ctx, now);
        rudp_conn *c;
        unsigned ev;
        int any = 0;
        while (rudp_ctx_next_event(e->ctx, &c, &ev)) {
            any = 1;
            shim_bridge_conn_event(e, c, ev, now);
        }
        if (!any)
            break;
    }
    shim_udpio_flush(e->io);
    return deadline;
}

static rudp_time pump(struct engine *e, rudp_time now)
{
    rudp_time deadline = pump_once(e, now);
    if (e->roam_due) {
        /* a client socket lost its address or route: move, send again */
        e->roam_due = 0;
        shim_roam_due(e, now);
        deadline = pump_once(e, now);
    }
    return deadline;
}


/* Whether engine e carries anything a process's death would cut off. */
static int engine_busy(struct engine *e)
{
    /* commands not yet run: a new connection or listener; a rudp-stat
     * request (CMD_CONTROL) or a controller change is no reason to live on */
    for (const cmd *c = e->q_head; c; c = c->next)
        if (c->type != CMD_CONTROL && c->type != CMD_SET_CC && c->type != CMD_SET_MARK &&
            c->type != CMD_SET_BUF && c->type != CMD_SET_CORK)
            return 1;
    /* Not a listener's port held through TIME_WAIT: when the process ends
     * the kernel takes it over (shim_tw_leave), as it keeps TCP's. */
    if (e->bridges || !e->ctx)
        return e->bridges != NULL;
    for (uint32_t i = 0; i < e->nsocks; i++)
        if (e->socks[i] && e->socks[i]->listener)
            return 1;
    return rudp_ctx_unfinished(e->ctx) > 0;
}

int shim_engine_busy(void)
{
    for (int k = 0; k < G.nrun; k++)
        if (engine_busy(&G.e[k]))
            return 1;
    return 0;
}

/* Engine e stops (broken, or a keeper's with nothing left): the rudp-stat
 * requests queued for it go on without its part, and engine 0 closes the
 * control socket, which nobody would serve. e->broken is set: nothing more
 * is queued for it. */
static void stop_control(struct engine *e)
{
    pthread_mutex_lock(&G.mu);
    cmd *mine = NULL, **pp = &e->q_head;
    e->q_tail = NULL;
    while (*pp) {
        cmd *c = *pp;
        if (c->type == CMD_CONTROL) {
            *pp = c->next;
            c->next = mine;
            mine = c;
        } else {
            e->q_tail = c;
            pp = &c->next;
        }
    }
    pthread_mutex_unlock(&G.mu);
    while (mine) {
        cmd *c = mine;
        mine = c->next;
        shim_control_pass(e, c->u.ctl);
        shim_free(c);
    }
    if (e == &G.e[0])
        shim_control_close(e);
}

void *shim_engine_loop(void *arg)
{
    struct engine *e = arg;
    struct epoll_event evs[EV_MAX];
    rudp_time deadline = pump(e, shim_now());
    for (;;) {
        if (e == &G.e[0] && atomic_load(&G.sig_handoff) == 1 && shim_hook.lifetime &&
            shim_hook.lifetime->take_signal)
            shim_hook.lifetime->take_signal(e); /* keeper.c */
        /* A handoff to a keeper pauses every engine here, between
         * iterations, where every structure is consistent and queued
         * commands are still in q_head for whoever runs next. */
        pthread_mutex_lock(&G.mu);
        if (G.pause_req && !G.keeper_mode) {
            e->paused = 1;
            pthread_cond_broadcast(&G.cv);
            while (G.pause_req)
                pthread_cond_wait(&G.cv, &G.mu);
            e->paused = 0;
            pthread_cond_broadcast(&G.cv); /* resume_locked() waits for this */
        }
        pthread_mutex_unlock(&G.mu);
        rudp_time now = shim_now();
        rudp_time wake = deadline < e->retry_at ? deadline : e->retry_at;
        if (e->fallback_at < wake)
            wake = e->fallback_at;
        if (e->roam_at < wake)
            wake = e->roam_at;
        if (e == &G.e[0]) {
            rudp_time ctl = shim_control_timer(e, now);
            if (ctl < wake)
                wake = ctl;
        }
        struct timespec ts, *tsp = NULL;
        if (wake != RUDP_TIME_NEVER) {
            rudp_time d = wake > now ? wake - now : 0;
            ts.tv_sec = (time_t)(d / 1000000000ull);
            ts.tv_nsec = (long)(d % 1000000000ull);
            tsp = &ts;
        }
        int n = epoll_pwait2(e->epfd, evs, EV_MAX, tsp, NULL);
        e->polls++;
        if (n < 0 && errno != EINTR) {
            /* Our epoll fd was closed under us (a program closing every
             * fd): the engine cannot go on, nor can new connections. */
            SHIM_LOG(RUDP_LOG_ERROR, "engine epoll failed: %s; rudp connections stop",
                     shim_strerror(errno));
            pthread_mutex_lock(&G.mu);
            G.broken = 1;
            e->broken = 1;
            e->paused = 1; /* nobody waits for a pause that cannot come */
            pthread_cond_broadcast(&G.cv);
            pthread_mutex_unlock(&G.mu);
            stop_control(e);
            return NULL;
        }
        now = shim_now();
        rudp_time turn_start = now;
        e->wakeups++;
        if (n == 0 && wake != RUDP_TIME_NEVER && now >= wake) {
            e->timed_wakeups++;
            e->late_ns += now - wake;
        }
        /* Everything readable is read before timers fire: with thousands of
         * sockets ready at once, timers run after the first EV_MAX would
         * fire probes for connections whose ACKs sit unread in theirs. */
        for (int more = 0;; more++) {
            e->dispatching = 1;
            for (int i = 0; i < n; i++) {
                int type = *(int *)evs[i].data.ptr;
                if (type == W_EVENT)
                    shim_engine_run_commands(e, now);
                else if (type == W_UDP) {
                    read_udp(evs[i].data.ptr, evs[i].events, now);
                    /* before any socket closes (xgroup.c) */
                    if (shim_hook.relay && shim_hook.relay->flush)
                        shim_hook.relay->flush(e, now);
                }
                else if (type == W_BRIDGE)
                    shim_bridge_event(evs[i].data.ptr, evs[i].events, now);
                else if (type == W_CONTROL)
                    shim_control_event(e, evs[i].data.ptr, evs[i].events);
                else if (type == W_FALLBACK)
                    shim_fallback_event(e, evs[i].data.ptr, evs[i].events, now);
                else if (type == W_HOOK) /* a feature's (hooks.h) */
                    ((shim_watch *)evs[i].data.ptr)
                        ->ops->event(evs[i].data.ptr, evs[i].events, now);
                else if (type == W_NETLINK)
                    shim_roam_netlink(e, now);
            }
            e->dispatching = 0;
            shim_engine_graves_empty(e);
            if (n < EV_MAX || more == EV_ROUNDS)
                break;
            static const struct timespec zero;
            n = epoll_pwait2(e->epfd, evs, EV_MAX, &zero, NULL);
            e->polls++;
            if (n <= 0)
                break;
            now = shim_now();
        }
        if (now >= e->retry_at)
            shim_engine_retry_pending(e, now);
        if (now >= e->fallback_at)
            shim_fallback_timer(e, now);
        if (now >= e->roam_at)
            shim_roam_timer(e, now);
        /* What is sent now is timed now, not at the wake-up. */
        deadline = pump(e, shim_now());
        /* accepted connections whose turn came (fifo.c), after the
         * handshakes this turn completed were counted */
        if ((e->fifo_dirty || e->fifo_held || e->fwd_taken) && shim_fifo_turn(e, shim_now()))
            deadline = pump(e, shim_now());
        rudp_time turn = shim_now() - turn_start;
        if (turn > e->longest_turn)
            e->longest_turn = turn;
        /* A keeper's work is done when a process's exit would need no
         * keeper (nothing to deliver, no listener, no bridge): those of
         * its connections still closing with everything acknowledged end
         * here, as at the program's own exit (shim_engine_exit). A peer
         * that has not closed yet gets our FIN and the data; what it sends
         * later goes unanswered, as to an orphaned TCP socket after its
         * FIN_WAIT2 timeout. */
        if (G.keeper_mode && !engine_busy(e) && shim_engine_retire(e)) {
            shim_hooks_run(SHIM_ON_RETIRE, e, now); /* TIME_WAIT to the kernel */
            if (e->ctx)
                rudp_ctx_report_remaining(e->ctx);
            stop_control(e);
            return NULL;
        }
    }
    return NULL;
}

/* Keyed mode (RUDP_KEY_FILE): the context's ephemeral X25519 keys come
 * from a generator of their own, seeded apart from the context's seed so
 * that nothing learnt of one tells of the other. 0 without a key. */
static int key_ctx(rudp_ctx *ctx)
{
    const uint8_t *key = shim_key();
    if (!key)
        return 0;
    uint8_t seed[32];
    int err = getrandom(seed, sizeof seed, 0) == (ssize_t)sizeof seed
                  ? rudp_ctx_set_key(ctx, key, seed)
                  : -EIO;
    sodium_memzero(seed, sizeof seed);
    /* Several engines share a listener's port (SO_REUSEPORT) but each
     * resets only IDs tagged with its own index (forward.c hands it the
     * others'), so none gives away the token of a connection another has. */
    if (err == 0 && shim_cfg.reset_id[0])
        err = rudp_ctx_set_reset_id(ctx, shim_cfg.reset_id, strlen(shim_cfg.reset_id));
    if (err < 0) /* connect() and listen() fail with err: say why */
        SHIM_LOG(RUDP_LOG_ERROR, "RUDP_KEY_FILE: keyed mode cannot start: %s",
                 err == -ENOSYS ? "libsodium failed to initialise" : shim_strerror(-err));
    return err;
}

/* 32 bytes from the kernel's generator. getrandom(2), not /dev/urandom:
 * a process may chroot or leave for an empty mount namespace before its
 * first socket starts the engine, and after start-up the shim opens
 * nothing by path. It blocks only until the kernel's pool is first
 * initialised at boot (man 2 getrandom); at most 256 bytes are never cut
 * short by a signal once it is. */
static int random_seed(uint8_t seed[32])
{
    ssize_t n;
    do
        n = getrandom(seed, 32, 0);
    while (n < 0 && errno == EINTR);
    if (n == 32)
        return 0;
    return n < 0 ? -errno : -EIO;
}

/* The application sees only its connect() or listen() fail: the reason
 * (the step, named, and its errno) is said here, once per attempt. */
static void start_failed(const struct engine *e, const char *what, int err)
{
    SHIM_LOG(RUDP_LOG_ERROR, "engine %d cannot start: %s: %s; connect() and listen() fail",
             (int)(e - G.e), what, shim_strerror(-err));
}

/* What a failed start leaves behind, undone: e can start again. */
static void start_undo(struct engine *e)
{
    if (e->evfd >= 0)
        shim_close_owned(e->evfd);
    if (e->epfd >= 0)
        shim_close_owned(e->epfd);
    if (e->ctx)
        rudp_ctx_free(e->ctx);
    shim_udpio_free(e->io);
    shim_free(e->msgs);
    shim_free(e->iovs);
    shim_free(e->addrs);
    shim_free(e->ctrls);
    shim_free(e->rxbuf);
    shim_engine_graves_empty(e);
    shim_free(e->graves);
    memset(e, 0, sizeof *e);
    e->epfd = e->evfd = -1;
}

int shim_engine_start_locked(struct engine *e)
{
    rudp_ctx_ops ops = {.send_from = on_send, .log = on_log, .conn_freed = on_conn_freed};
    if (shim_hook.listener)
        ops.same_endpoint = shim_hook.listener->same_endpoint; /* portshare.c */
    memset(e, 0, sizeof *e);
    e->epfd = e->evfd = -1;
    e->retry_at = RUDP_TIME_NEVER;
    e->fallback_at = RUDP_TIME_NEVER;
    e->roam_at = RUDP_TIME_NEVER;
    uint8_t seed[32];
    int err = random_seed(seed);
    if (err < 0) {
        start_failed(e, "getrandom", err);
        return -EIO; /* nothing to undo; a later connect() or listen() tries again */
    }
    const char *what = "rudp_ctx_new";
    err = rudp_ctx_new(&ops, e, seed, &shim_cfg.rudp, &e->ctx);
    sodium_memzero(seed, sizeof seed);
    if (err < 0)
        goto fail;
    what = "connection-ID tag";
    /* the engine's index in its connection IDs (forward.c) */
    unsigned tag_bits = shim_hook.relay && shim_hook.relay->tag_bits ? shim_hook.relay->tag_bits()
                                                                      : 0;
    if ((err = rudp_ctx_set_cid_tag(e->ctx, tag_bits, (unsigned)(e - G.e))) < 0)
        goto fail;
    /* above it, the member tag of a listener's group of processes
     * (xgroup.c): every process's IDs the same layout */
    if ((err = rudp_ctx_set_member_bits(e->ctx, SHIM_XG_BITS)) < 0)
        goto fail;
    what = "keyed mode";
    if ((err = key_ctx(e->ctx)) < 0)
        goto fail;
    /* RUDP_MEMORY bounds the process: each engine may hold its share. */
    rudp_ctx_set_memory_limit(e->ctx, shim_cfg.memory / (uint64_t)shim_cfg.engines);
    rudp_ctx_set_log_level(e->ctx, shim_cfg.log_level);
    shim_qlog_attach(e->ctx);
    what = "memory";
    err = -ENOMEM;
    e->io = shim_udpio_new(shim_cfg.offload);
    if (e->io)
        shim_udpio_on_error(e->io, shim_roam_send_error, e);
    e->msgs = shim_calloc(RX_BATCH, sizeof *e->msgs);
    e->iovs = shim_calloc(RX_BATCH, sizeof *e->iovs);
    e->addrs = shim_calloc(RX_BATCH, sizeof *e->addrs);
    e->ctrls = shim_calloc(RX_BATCH, sizeof *e->ctrls);
    e->rxbuf = shim_malloc((size_t)RX_BATCH * RX_SIZE);
    if (!e->io || !e->msgs || !e->iovs || !e->addrs || !e->ctrls || !e->rxbuf)
        goto fail;
    what = "epoll_create1";
    if ((e->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
        goto fail_errno;
    e->epfd = shim_fd_move_high(e->epfd);
    shim_own_fd(e->epfd, 1);
    what = "eventfd";
    if ((e->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
        goto fail_errno;
    e->evfd = shim_fd_move_high(e->evfd);
    shim_own_fd(e->evfd, 1);
    e->evfd_ino = shim_fd_ino(e->evfd);
    e->event_type = W_EVENT;
    struct epoll_event ee = {.events = EPOLLIN, .data.ptr = &e->event_type};
    what = "epoll_ctl";
    if (real_epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->evfd, &ee) < 0)
        goto fail_errno;

    if (G.nrun == 0) {
        /* Each redirected connection costs the engine one or two fds next
         * to the app's one; raise the soft limit where the hard limit
         * allows. */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 &&
            rl.rlim_max > rl.rlim_cur) {
            rl.rlim_cur = rl.rlim_max < 65536 ? rl.rlim_max : 65536;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
        shim_control_open(e); /* engine 0 serves rudp-stat (control.c) */
    }

    err = shim_thread_start(&e->thread, shim_engine_loop, e);
    if (err) {
        if (G.nrun == 0)
            shim_control_close(e); /* no engine to serve it */
        what = "pthread_create";
        goto fail;
    }
    /* read without the lock by a signal's stand-in (engines.c) */
    __atomic_store_n(&G.nrun, G.nrun + 1, __ATOMIC_RELEASE);
    G.pid = getpid();
    if (shim_hook.lifetime && shim_hook.lifetime->started)
        shim_hook.lifetime->started(); /* procenv.c's mark */
    return 0;

fail_errno:
    err = -errno;
fail:
    start_failed(e, what, err);
    start_undo(e);
    return err;
}
