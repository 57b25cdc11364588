/*
 * bridgeaccept.c: an accepted connection handed to the application's unix
 * listener: its bridge made, proven ours to the accept() that takes it (a
 * keeper's secret), held while the app's queue is full or its process has
 * no fd for it, and, for a client of this very process, queued only once
 * that client is complete. Split from bridge.c, whose pumps it
 * uses (bridgepriv.h); everything runs on the thread of the engine that
 * owns the bridge.
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <netinet/tcp.h>

#include "bridgepriv.h"
#include "udpio.h"

#include "base/poison.h"

/* ---- server side: hand an accepted connection to the app's listener ---- */

/* A keeper is no credential to a process that was passed the listener
 * (SCM_RIGHTS), or listens on a socket shared before listen(), and so never
 * saw our slab, when no copy was left to listen() on (keeper.c): such a
 * process is shown the listener's secret (names.c, ident.c). Our own
 * engine needs none. */
int shim_bridge_proof_wanted(const esock *s)
{
    static const uint8_t none[SHIM_NAME_SECRET];
    return shim_engines_keeper() && memcmp(s->lname.secret, none, sizeof none) != 0;
}

int shim_bridge_send_proof(const esock *s, int efd)
{
    /* the first bytes on an empty socket: this never finds it full */
    return real_send(efd, s->lname.secret, SHIM_NAME_SECRET, MSG_DONTWAIT | MSG_NOSIGNAL) ==
                   SHIM_NAME_SECRET
               ? 0
               : -EIO;
}

/* The app's listener is gone: reset the connection being handed over and
 * stop listening. */
static void listener_gone(bridge *b, rudp_time now)
{
    if (b->conn)
        rudp_conn_abort(b->conn, now);
    if (b->sock->listener)
        shim_engine_stop_listening(b->sock);
    b->app_gone = 1;
    shim_bridge_app_closed(b, now);
}

int shim_bridge_try_accept(bridge *b, rudp_time now)
{
    struct engine *e = b->e;
    if (real_connect(b->efd, (struct sockaddr *)&b->sock->lun, b->sock->lun_len) < 0) {
        if (errno == EAGAIN) {
            /* The app's backlog is full: like TCP, hold the peer (flow
             * control keeps its data in the connection) and retry; while
             * it waits the listener takes no new handshake. */
            if (b->conn)
                rudp_conn_set_waiting(b->conn, 1);
            e->accept_retries++;
            /* in its group's accept order: held again, in its place
             * (fifo.c), so room is given in stamp order across engines */
            if (b->stamp && shim_fifo_on(b->sock))
                return 0;
            b->pending_next = e->pending;
            e->pending = b;
            /* the earliest of the engine's retries: retry_at may already
             * hold a later one (a TIME_WAIT hold's end, portshare.c) */
            if (e->retry_at > now + ACCEPT_RETRY)
                e->retry_at = now + ACCEPT_RETRY;
            return 1;
        }
        shim_bridge_log(RUDP_LOG_INFO, b, "the listener vanished; resetting the connection");
        listener_gone(b, now);
        return 1;
    }
    if (!shim_ident_listener(b->efd, b->sock->lname.pid, b->sock->listener_uid)) {
        /* The name is held by a socket our application did not make: its
         * listener is gone and someone bound the name since. Nothing may
         * reach them. */
        shim_bridge_log(RUDP_LOG_WARN, b,
                   "the listener's name is held by another process: resetting the "
                   "connection, listener closed");
        e->squatted++;
        listener_gone(b, now);
        return 1;
    }
    if (b->proof && shim_bridge_send_proof(b->sock, b->efd) < 0) {
        shim_bridge_log(RUDP_LOG_WARN, b, "could not write the listener's proof; resetting");
        if (b->conn)
            rudp_conn_abort(b->conn, now);
        b->app_gone = 1;
        shim_bridge_app_closed(b, now);
        return 1;
    }
    b->unix_up = 1;
    shim_acceptq_handed(b->sock); /* counted there before it stops being held */
    if (b->conn) {
        rudp_conn_set_waiting(b->conn, 0);
        rudp_conn_accepted(b->conn, now); /* a loopback client's SYNACK goes now */
    }
    shim_bridge_publish(b);
    shim_bridge_pump_out(b, now);
    /* No read of our end yet: the app has not accepted it, so nothing is
     * there but what it writes from now on, and the watch below is
     * level-triggered: epoll says so (with EPOLLPRI for an urgent byte).
     * A read here found nothing and cost a send buffer chunk, an ioctl
     * and a readv per accept; so did the one at the connection's first
     * room (RUDP_EV_WRITABLE, bridge.c), which in_drained spares. */
    b->in_drained = 1;
    shim_bridge_update_interest(b);
    return 1;
}

/* An IPv4 address as an AF_INET6 socket names it: ::ffff:a.b.c.d. */
static void v4_mapped(rudp_addr *a)
{
    uint8_t v4[4];
    memcpy(v4, a->ip, 4);
    memset(a->ip, 0, 16);
    a->ip[10] = a->ip[11] = 0xff;
    memcpy(a->ip + 12, v4, 4);
    a->family = AF_INET6;
    a->scope_id = 0;
}

/* No fd for an accepted connection's bridge (EMFILE and the like): TCP's
 * accept queue would hold it, and this connection is established at the
 * client, which may have written already. So it is held, waiting (its
 * listener takes no new handshake meanwhile: their clients retry, as at a
 * full accept queue), and tried again at retry_at (shim_bridge_accept_held).
 * 1: held; 0: no room, or not for want of something. */
static int hold_unbridged(struct engine *e, rudp_conn *c, int err, rudp_time now)
{
    if ((err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) ||
        e->n_unbridged >= SHIM_UNBRIDGED)
        return 0;
    rudp_conn_set_waiting(c, 1);
    e->unbridged[e->n_unbridged++] = c;
    e->accept_retries++;
    if (e->retry_at > now + ACCEPT_RETRY)
        e->retry_at = now + ACCEPT_RETRY;
    return 1;
}

static void accept_bridge(struct engine *e, rudp_conn *c, esock *s, rudp_time now);

/* How long after a listener's bridge found no fd its hand-overs go one at
 * a time (shim_bridge_accept_held) */
#define SCARCE_FOR RUDP_SEC(1)

/* Accepted connection b goes to the app's unix listener: with a group of
 * engines, in the order handshakes completed (fifo.c). b may be freed. */
void shim_bridge_hand_over(bridge *b, rudp_conn *c, rudp_time now)
{
    if (!shim_fifo_hold(b, rudp_conn_accept_stamp(c), rudp_conn_syn_stamp(c)))
        (void)shim_bridge_try_accept(b, now);
}

/* ---- a connection whose client is this process's own ----
 *
 * A loopback client's connection is reported at its SYN and handed to the
 * app's accept queue before its SYNACK leaves (early accept,
 * rudp_listener_set_early_accept), so a client in another process finds
 * it queued once its connect() returns (prog_acceptnow). TCP has a second
 * order, which matters where one process holds both ends: when accept()
 * returns the connection, the client's connect() is complete (libuv's
 * tcp_try_write_error closes the accepted end in its accept callback and
 * writes on the client at once; prog_writeclosed). Linux keeps both
 * because one sendmsg on loopback completes the client and queues the
 * server's child; ours are two kernel objects made visible by engine
 * threads, one after the other. So for a client of this process
 * (G.clients has its port) the order is the client first: the SYNACK goes
 * at once, and the server's bridge is handed over right after the
 * client's end turned writable, in the same engine step when both are on
 * one engine (local_client_done, from on_established); when they
 * are on two, at the client's first datagram after the SYNACK, which
 * leaves after its end turned writable (on_established): then a thread
 * of the app that saw the connect complete may call accept() for the
 * time that datagram takes to reach the server's engine. */

static int local_client(const rudp_addr *peer)
{
    return peer && peer->port && atomic_load(&G.clients[peer->port]) != 0;
}

void shim_bridge_client_sock(esock *s, const rudp_addr *local)
{
    uint16_t port = local->port;
    if (!port || atomic_load(&G.clients[port]) == UINT8_MAX)
        return;
    atomic_fetch_add(&G.clients[port], 1);
    s->client_port = port;
}

void shim_bridge_client_gone(esock *s)
{
    if (s->client_port)
        atomic_fetch_sub(&G.clients[s->client_port], 1);
    s->client_port = 0;
}

/* Client bridge cb's end has just turned writable: the server's bridges
 * on this engine waiting for it go to the app's accept queue now. */
void shim_bridge_local_client_done(bridge *cb, rudp_time now)
{
    struct engine *e = cb->e;
    uint16_t port = cb->sock ? cb->sock->client_port : 0;
    if (!e->n_awaiting || !port)
        return;
    for (bridge *b = e->bridges, *next; b && e->n_awaiting; b = next) {
        next = b->next;
        if (!b->await_client || !b->conn || rudp_conn_peer(b->conn)->port != port)
            continue;
        b->await_client = 0;
        e->n_awaiting--;
        shim_bridge_hand_over(b, b->conn, now);
    }
}

void shim_bridge_on_accept(struct engine *e, rudp_conn *c, rudp_time now)
{
    uint32_t si = rudp_conn_sock(c);
    esock *s = si < e->nsocks ? e->socks[si] : NULL;
    /* The connection is ours now: it holds its socket until conn_freed,
     * which comes for it whatever happens next. */
    if (s)
        s->refs++;
    /* Out of fds lately: after those held, one at a time
     * (shim_bridge_accept_held) */
    if (s && s->listener && now < s->scarce_until && hold_unbridged(e, c, EMFILE, now))
        return;
    accept_bridge(e, c, s, now);
}

/* Whether the app's listener of s has accepted every connection handed to
 * it: its unix accept queue is empty (1), or the kernel cannot tell (1). */
static int app_caught_up(const esock *s)
{
    int queued = -1;
    return shim_unix_diag_queue(s->listener_ino, &queued, NULL) != 1 || queued <= 0;
}

void shim_bridge_accept_held(struct engine *e, rudp_time now)
{
    unsigned n = e->n_unbridged;
    rudp_conn *held[SHIM_UNBRIDGED];
    memcpy(held, e->unbridged, n * sizeof *held);
    e->n_unbridged = 0;
    const esock *made = NULL;
    for (unsigned i = 0; i < n; i++) {
        rudp_conn *c = held[i];
        uint32_t si = rudp_conn_sock(c);
        esock *s = si < e->nsocks ? e->socks[si] : NULL;
        if (!s || !s->listener || rudp_conn_error(c) || rudp_conn_state(c) == RUDP_CLOSED) {
            /* its listener closed, or it ended while held: as before */
            rudp_conn_abort(c, now);
            rudp_conn_release(c, now);
            continue;
        }
        /* Out of fds, the process shares one table with its program: a
         * bridge made now would take an fd the program freed to accept()
         * with. One at a time, once the program took the last one handed
         * over, for a second after the last EMFILE (scarce_until, new
         * connections too): each fd it frees then goes half to a bridge,
         * half to its accept(). Bridging all at once, a server at its
         * RLIMIT_NOFILE that closed 16 fds accepted 0-4 of 20 clients in
         * 15 s (kernel TCP: 20; tests/prog_emfile.c): the bridges took
         * every fd it freed. */
        if (made == s || !app_caught_up(s)) {
            e->unbridged[e->n_unbridged++] = c;
            if (e->retry_at > now + ACCEPT_RETRY)
                e->retry_at = now + ACCEPT_RETRY;
            continue;
        }
        made = s;
        accept_bridge(e, c, s, now);
    }
}

/* The bridge for accepted connection c, on the listener's socket s. */
static void accept_bridge(struct engine *e, rudp_conn *c, esock *s, rudp_time now)
{
    bridge *b = s ? shim_bridge_new(e) : NULL;
    int fd = b ? real_socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) : -1;
    if (fd < 0) {
        int err = b ? errno : ENOMEM;
        if (b)
            shim_bridge_free(b);
        if (s && (err == EMFILE || err == ENFILE))
            s->scarce_until = now + SCARCE_FOR;
        if (s && s->listener && hold_unbridged(e, c, err, now))
            return;
        rudp_conn_abort(c, now);
        rudp_conn_release(c, now);
        return;
    }
    fd = shim_fd_move_high_cloexec(fd); /* SOCK_CLOEXEC */
    shim_own_fd(fd, 1);
    shim_bridge_oob_init(fd);
    shim_bridge_efd_size(fd);
    b->efd = fd;
    b->conn = c;
    b->sock = s;
    b->established = 1;
    b->id = shim_engine_new_id();
    shim_pktctl_accepted(b);
    shim_standby_offer(b, now);
    b->slot = shim_slot_alloc(b->id);
    shim_appsend_index(b);
    shim_slot *sl = shim_bridge_slot(b);
    if (sl) /* established before the app can accept() it */
        atomic_store(&sl->state, SHIM_SLOT_ESTABLISHED);
    rudp_conn_set_user(c, b);
    /* Our end's name carries both TCP-level addresses for the app. */
    shim_name n;
    memset(&n, 0, sizeof n);
    n.kind = SHIM_NAME_ENGINE;
    n.family = s->lname.family;
    n.local = s->lname.local;
    const rudp_addr *dst = rudp_conn_local(c);
    if (dst) {
        /* a wildcard listener: the accepted socket is named by the address
         * the client reached, as TCP names it */
        rudp_addr l = *dst;
        uint16_t port = s->lname.family == AF_INET
                            ? ntohs(((struct sockaddr_in *)&s->lname.local)->sin_port)
                            : ntohs(((struct sockaddr_in6 *)&s->lname.local)->sin6_port);
        l.port = port;
        if (n.family == AF_INET6 && l.family == AF_INET) {
            v4_mapped(&l);
        } else if (n.family == AF_INET6) {
            l.scope_id = IN6_IS_ADDR_LINKLOCAL((struct in6_addr *)l.ip) ? l.scope_id : 0;
        }
        shim_from_rudp_addr(&l, &n.local);
    }
    rudp_addr peer = *rudp_conn_peer(c);
    if (n.family == AF_INET && peer.family == AF_INET6) {
        /* v4-mapped source on a dual-stack UDP socket, app is AF_INET */
        memmove(peer.ip, peer.ip + 12, 4);
        memset(peer.ip + 4, 0, 12);
        peer.family = AF_INET;
    } else if (n.family == AF_INET6 && peer.family == AF_INET) {
        v4_mapped(&peer);
    }
    shim_from_rudp_addr(&peer, &n.peer);
    n.slot = b->slot;
    n.id = b->id;
    n.pid = shim_slot_owner();
    if (shim_bridge_proof_wanted(s)) {
        n.flags |= SHIM_NAME_F_PROOF;
        b->proof = 1;
    }
    if (shim_name_bind(fd, &n) < 0) {
        rudp_conn_abort(c, now);
        shim_bridge_free(b);
        return;
    }
    if (rudp_conn_state(c) == RUDP_SYN_RCVD && local_client(rudp_conn_peer(c))) {
        /* Our own connect (one process holding both ends, as an event
         * loop's test suite does): see local_client. */
        b->await_client = 1;
        e->n_awaiting++;
        rudp_conn_accepted(c, now); /* the SYNACK goes at this turn's flush */
        return;
    }
    shim_bridge_hand_over(b, c, now);
}

