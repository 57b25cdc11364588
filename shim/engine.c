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
 * A bridge joins the engine end `efd` of an AF_UNIX stream socket pair to
 * one rudp connection. Bytes the application writes are read from efd
 * straight into the connection's send buffer (reserve/commit); bytes that
 * arrive are written from the receive buffer (peek/consume), so nothing
 * is copied twice and the window only opens as the application reads.
 *
 * Application threads talk to the engine through a locked command queue
 * (connect, listen, listener closed, exit) and read per-connection state
 * from shared slots (slots.c). What happens to the engine at fork, exec
 * and exit is keeper.c's; the state both share is in engine.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <linux/errqueue.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/tcp.h>
#include <sodium.h>

#include "engine.h"
#include "udpio.h"

#include "poison.h"

struct engines G = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .cv = PTHREAD_COND_INITIALIZER,
};

#define RX_BATCH 32
#define RX_SIZE 65536

static _Atomic uint64_t next_id = 1;

uint64_t shim_engine_new_id(void)
{
    return atomic_fetch_add(&next_id, 1);
}

/* ---- epoll interest ---- */

/* b->ev is the registered interest; W_REG marks "registered" so that an
 * empty interest still hears EPOLLHUP. */
#define W_REG 0x80000000u

static void watch_bridge(bridge *b, uint32_t ev)
{
    struct engine *e = b->e;
    if (b->efd < 0)
        return;
    ev |= W_REG;
    if (ev == b->ev)
        return;
    struct epoll_event ee = {.events = ev & ~W_REG, .data.ptr = b};
    int op = b->ev ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (real_epoll_ctl(e->epfd, op, b->efd, &ee) == 0)
        b->ev = ev;
}

static void unwatch_bridge(bridge *b)
{
    if (b->efd >= 0 && b->ev)
        real_epoll_ctl(b->e->epfd, EPOLL_CTL_DEL, b->efd, NULL);
    b->ev = 0;
}

/* ---- slots ---- */

/* Resolved once per bridge: the slab stays mapped at the same address in
 * this process and in a keeper forked from it. */
static shim_slot *slot_of(bridge *b)
{
    if (!b->sp && b->slot != UINT32_MAX)
        b->sp = shim_slot_get(b->slot, b->id);
    return b->slot == UINT32_MAX ? NULL : b->sp;
}

static uint32_t tcp_state_of(rudp_state s)
{
    switch (s) {
    case RUDP_SYN_SENT: return TCP_SYN_SENT;
    case RUDP_SYN_RCVD: return TCP_SYN_RECV;
    case RUDP_ESTABLISHED: return TCP_ESTABLISHED;
    case RUDP_FIN_WAIT_1: return TCP_FIN_WAIT1;
    case RUDP_FIN_WAIT_2: return TCP_FIN_WAIT2;
    case RUDP_CLOSING: return TCP_CLOSING;
    case RUDP_TIME_WAIT: return TCP_TIME_WAIT;
    case RUDP_CLOSE_WAIT: return TCP_CLOSE_WAIT;
    case RUDP_LAST_ACK: return TCP_LAST_ACK;
    case RUDP_CLOSED:
    case RUDP_STATE_COUNT:
        break;
    }
    return TCP_CLOSE;
}

static void publish(bridge *b)
{
    shim_slot *s = slot_of(b);
    if (!s || !b->conn)
        return;
    rudp_conn_info i;
    rudp_conn_get_info(b->conn, &i);
    atomic_store(&s->unacked, i.unacked_bytes);
    atomic_store(&s->tcp_state, tcp_state_of(i.state));
    atomic_store(&s->rtt_us, (uint32_t)i.rtt_us);
    atomic_store(&s->rttvar_us, (uint32_t)i.rttvar_us);
    atomic_store(&s->min_rtt_us, (uint32_t)i.min_rtt_us);
    atomic_store(&s->mss, i.mss);
    atomic_store(&s->cwnd, i.cwnd_bytes);
    atomic_store(&s->ssthresh, i.ssthresh_bytes);
    atomic_store(&s->retrans, i.retransmits);
    atomic_store(&s->bytes_acked, i.bytes_acked);
    atomic_store(&s->bytes_received, i.bytes_received);
    atomic_store(&s->pacing_rate, i.pacing_rate);
    atomic_store(&s->in_flight, i.bytes_in_flight);
    atomic_store(&s->delivery_rate, i.delivery_rate);
    atomic_store(&s->delivery_app_limited, (uint32_t)i.delivery_app_limited);
    atomic_store(&s->peer_window, i.peer_window);
}

/* TCP_INFO's state follows every transition (a FIN sent or received),
 * not only the events that publish the rest. */
static void publish_state(bridge *b)
{
    shim_slot *s = slot_of(b);
    if (s && b->conn)
        atomic_store(&s->tcp_state, tcp_state_of(rudp_conn_state(b->conn)));
}

/* ---- sockets ---- */

static esock *sock_new(struct engine *e, int fd, int family)
{
    esock *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    uint32_t idx = 0;
    while (idx < e->nsocks && e->socks[idx])
        idx++;
    if (idx == e->nsocks) {
        uint32_t n = e->nsocks ? e->nsocks * 2 : 64;
        esock **v = realloc(e->socks, n * sizeof *v);
        if (!v) {
            free(s);
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
        free(s);
        return NULL;
    }
    e->socks[idx] = s;
    return s;
}

#define ALIVE_PERIOD RUDP_SEC(1)

static void sock_close(esock *s)
{
    struct engine *e = s->e;
    /* What is queued for this socket (the RESET of the connection whose
     * end freed it) leaves before the fd is closed and maybe reused. */
    shim_udpio_flush(e->io);
    real_epoll_ctl(e->epfd, EPOLL_CTL_DEL, s->fd, NULL);
    shim_close_owned(s->fd);
    shim_close_owned(s->reserve_fd);
    e->socks[s->idx] = NULL;
    if (s->group && atomic_fetch_sub(&s->group->members, 1) == 1)
        shim_lgroup_free(s->group);
    free(s);
}

static void sock_unref(esock *s)
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
    sock_close(s);
}

static void on_conn_freed(void *user, uint32_t sock)
{
    struct engine *e = user;
    if (sock < e->nsocks && e->socks[sock])
        sock_unref(e->socks[sock]);
}

static void on_send(void *user, uint32_t sock, const rudp_addr *peer, const uint8_t *buf,
                    size_t len)
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
    if (!s->connected)
        sl = shim_from_rudp_addr(peer, &ss);
    shim_udpio_send(e->io, s->fd, s->connected, &ss, sl, buf, len);
}

static void on_log(void *user, int level, const char *msg)
{
    (void)user;
    shim_log(level, "%s", msg);
}

/* ---- bridges ---- */

/* A log line about bridge b, led by its connection's name (rudp_conn_name)
 * or, before it has a connection, its number. */
static void bridge_log(int level, const bridge *b, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void bridge_log(int level, const bridge *b, const char *fmt, ...)
{
    if (shim_cfg.log_level < level)
        return;
    char name[160], msg[384];
    if (b->conn)
        rudp_conn_name(b->conn, name, sizeof name);
    else
        snprintf(name, sizeof name, "connection %llu", (unsigned long long)b->id);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    shim_log(level, "%s: %s", name, msg);
}

/* A connect that failed, at warn, in words that say what to check. */
static void report_connect_failed(const bridge *b, int err)
{
    char peer[64];
    rudp_addr_format(&b->sock->peer, peer, sizeof peer);
    rudp_cause cause = b->conn ? rudp_conn_cause(b->conn) : RUDP_CAUSE_NONE;
    if (cause == RUDP_CAUSE_ICMP && err == -ECONNREFUSED)
        bridge_log(RUDP_LOG_WARN, b,
                   "connect failed: no rudp listener at %s: ICMP port unreachable; is the "
                   "server running under the shim?",
                   peer);
    else if (cause == RUDP_CAUSE_ICMP)
        bridge_log(RUDP_LOG_WARN, b, "connect failed: ICMP error from the path to %s: %s", peer,
                   strerror(-err));
    else if (cause == RUDP_CAUSE_REFUSED)
        bridge_log(RUDP_LOG_WARN, b,
                   "connect failed: %s runs the shim, but nothing listens on that port "
                   "(refused)",
                   peer);
    else if (cause == RUDP_CAUSE_NO_AUTH_ANSWER)
        bridge_log(RUDP_LOG_WARN, b,
                   "connect failed: no authenticated answer from %s in %.1f s: is RUDP_KEY_FILE "
                   "the same on both ends?",
                   peer, (double)shim_cfg.rudp.connect_timeout / 1e9);
    else if (cause == RUDP_CAUSE_HANDSHAKE_TIMEOUT)
        bridge_log(RUDP_LOG_WARN, b,
                   "connect failed: no answer from %s in %.1f s: UDP blocked, or the peer "
                   "does not run the shim? (A keyed peer answers only a key holder: "
                   "RUDP_KEY_FILE.)",
                   peer, (double)shim_cfg.rudp.connect_timeout / 1e9);
    else
        bridge_log(RUDP_LOG_WARN, b, "connect failed: %s%s%s", strerror(-err), cause ? ": " : "",
                   cause ? rudp_cause_text(cause) : "");
}

static bridge *bridge_new(struct engine *e)
{
    bridge *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->type = W_BRIDGE;
    b->e = e;
    atomic_fetch_add(&e->nbridges, 1);
    b->efd = -1;
    b->app_fd = -1;
    b->slot = UINT32_MAX;
    b->next = e->bridges;
    if (e->bridges)
        e->bridges->prev = b;
    e->bridges = b;
    return b;
}

static void bridge_free(bridge *b)
{
    struct engine *e = b->e;
    atomic_fetch_sub(&e->nbridges, 1);
    /* A bridge waiting for room in the app's accept queue may fail (a
     * reset, a timeout) before its turn: it must leave the list first. */
    for (bridge **pp = &e->pending; *pp; pp = &(*pp)->pending_next) {
        if (*pp == b) {
            *pp = b->pending_next;
            break;
        }
    }
    if (b->fb)
        shim_fallback_free(b);
    if (b->efd >= 0) {
        unwatch_bridge(b);
        shim_close_owned(b->efd);
        b->efd = -1;
    }
    if (b->conn) {
        rudp_conn_set_user(b->conn, NULL);
        rudp_conn_release(b->conn, shim_now());
        b->conn = NULL;
    }
    if (b->prev)
        b->prev->next = b->next;
    else
        e->bridges = b->next;
    if (b->next)
        b->next->prev = b->prev;
    free(b);
}

/* Interest in efd follows what can move: EPOLLIN while the app may send
 * and the connection has room (EOF shows up as readable too), EPOLLOUT
 * while received bytes wait for room in the socket. EPOLLHUP needs no
 * interest: it comes when neither direction can carry anything more. */
static void update_interest(bridge *b)
{
    if (b->efd < 0 || !b->unix_up || b->hup)
        return;
    uint32_t ev = 0;
    if (b->established && b->conn && !b->app_eof && rudp_conn_write_space(b->conn) > 0)
        ev |= EPOLLIN;
    if (b->conn && !b->app_gone) {
        const uint8_t *p;
        if (rudp_conn_peek(b->conn, &p) > 0)
            ev |= EPOLLOUT;
    }
    watch_bridge(b, ev);
}

/* The connection ended badly: tell the app through SO_ERROR and end its
 * stream. Closing efd while it holds bytes the app wrote gives the app's
 * reader ECONNRESET, as TCP does; otherwise the app reads EOF and
 * SO_ERROR tells the rest (see README, limits). */
static void bridge_failed(bridge *b, int err)
{
    if (b->fb && !b->established && shim_fallback_rudp_failed(b, &err, shim_now()))
        return; /* kernel TCP carries on (fallback.c) */
    shim_slot *s = slot_of(b);
    if (s) {
        atomic_store(&s->so_error, -err);
        atomic_store(&s->end_error, -err);
        atomic_store(&s->tcp_state, TCP_CLOSE);
        atomic_store(&s->state, b->established ? SHIM_SLOT_CLOSED : SHIM_SLOT_FAILED);
    }
    /* An established connection's end is told by the core's info line
     * ("closed (reset by the peer) after ..."); a connect that never got
     * there is worth a warning that says what to check. */
    if (!b->established && b->sock && b->sock->connected)
        report_connect_failed(b, err);
    else
        bridge_log(RUDP_LOG_DEBUG, b, "failed: %s", strerror(-err));
    /* The slot stays for SO_ERROR after EOF; it is reused only when the
     * table runs out (names carry the id, so a reused slot is not misread). */
    if (b->slot != UINT32_MAX)
        shim_slot_retire(b->slot);
    b->slot = UINT32_MAX;
    b->sp = NULL;
    bridge_free(b);
}

void shim_bridge_fail(bridge *b, int err)
{
    bridge_failed(b, err);
}

void shim_bridge_end(bridge *b, rudp_time now)
{
    if (b->conn) {
        rudp_conn_set_user(b->conn, NULL);
        rudp_conn_abort(b->conn, now);
    }
    if (b->slot != UINT32_MAX)
        shim_slot_retire(b->slot);
    b->slot = UINT32_MAX;
    b->sp = NULL;
    bridge_free(b);
}

/* Buffer chunks (16 KiB each) one bridge read or write may span. */
#define BRIDGE_SPANS 4

/* Application -> connection. While bytes leave the unix socket and before
 * `unacked` counts them, the slot's seq is odd, so SIOCOUTQ (unix queue +
 * unacked) never reads low in between. */
static void pump_in(bridge *b, rudp_time now)
{
    shim_slot *s = slot_of(b);
    while (b->conn && b->established && !b->app_eof) {
        rudp_span sp[BRIDGE_SPANS];
        struct iovec iov[BRIDGE_SPANS];
        /* Several chunks only while the app keeps them full: a chunk
         * reserved is a chunk allocated. */
        int k = rudp_conn_reserve_spans(b->conn, sp, b->bulk_in ? BRIDGE_SPANS : 1);
        if (k <= 0)
            break; /* full: WRITABLE will resume */
        ssize_t room = 0;
        for (int i = 0; i < k; i++) {
            iov[i].iov_base = sp[i].p;
            iov[i].iov_len = sp[i].len;
            room += (ssize_t)sp[i].len;
        }
        /* Odd seq only while bytes are between the unix queue and
         * `unacked`: one read, not the whole loop, so an engine
         * descheduled meanwhile (a loaded machine) keeps SIOCOUTQ readers
         * waiting only briefly. */
        if (s)
            atomic_fetch_add(&s->seq, 1);
        ssize_t r = readv(b->efd, iov, k);
        b->bulk_in = r == room;
        if (r > 0) {
            rudp_conn_commit(b->conn, now, (size_t)r);
            if (s) {
                rudp_conn_info i;
                rudp_conn_get_info(b->conn, &i);
                atomic_store(&s->unacked, i.unacked_bytes);
            }
        }
        if (s)
            atomic_fetch_add(&s->seq, 1);
        if (r > 0) {
            if (r < room && !b->hup)
                break; /* drained: epoll tells us when more comes */
            continue;
        }
        if (r == 0) {
            b->app_eof = 1;
            rudp_conn_shutdown(b->conn, now);
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno == ECONNRESET) {
            /* The app closed with bytes we sent it unread: TCP resets. */
            b->app_eof = b->app_gone = 1;
            rudp_conn_abort(b->conn, now);
        }
        break;
    }
    publish(b);
}

/* Connection -> application. */
static void pump_out(bridge *b, rudp_time now)
{
    while (b->conn && !b->app_gone && b->unix_up) {
        rudp_span sp[BRIDGE_SPANS];
        int k = rudp_conn_peek_spans(b->conn, sp, BRIDGE_SPANS);
        if (k == 0) {
            uint8_t x;
            ssize_t r = rudp_conn_read(b->conn, now, &x, 0);
            if (r == 0 && !b->peer_eof) {
                b->peer_eof = 1;
                real_shutdown(b->efd, SHUT_WR); /* the peer's FIN: app reads EOF */
            }
            break;
        }
        struct iovec iov[BRIDGE_SPANS];
        for (int i = 0; i < k; i++) {
            iov[i].iov_base = sp[i].p;
            iov[i].iov_len = sp[i].len;
        }
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)k};
        ssize_t w = sendmsg(b->efd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) {
            rudp_conn_consume(b->conn, now, (size_t)w);
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EPIPE) {
            /* The app shut its reading side or closed: data has no reader.
             * TCP resets when data arrives for a closed socket. */
            b->app_gone = 1;
        }
        break;
    }
}

/* Nothing can move through the unix pair any more: the app closed its end,
 * or both directions are shut down. Finish as TCP's close() would: a FIN
 * after what the app wrote, or a reset if the app closed with SO_LINGER 0
 * or received data arrives for nobody (rudp_conn_release decides). */
static void bridge_app_closed(bridge *b, rudp_time now)
{
    shim_slot *s = slot_of(b);
    int linger0 = s && (atomic_load(&s->flags) & SHIM_SLOT_F_LINGER0);
    if (b->conn) {
        rudp_conn_set_user(b->conn, NULL);
        if (linger0)
            rudp_conn_abort(b->conn, now);
        rudp_conn_release(b->conn, now); /* FIN after queued data, or RST if unread */
        b->conn = NULL;
    }
    if (b->slot != UINT32_MAX) {
        shim_slot_free(b->slot);
        b->slot = UINT32_MAX;
        b->sp = NULL;
    }
    bridge_free(b);
}

static void bridge_event(bridge *b, uint32_t ev, rudp_time now)
{
    bridge_log(RUDP_LOG_DEBUG, b, "bridge events %#x", ev);
    if (!b->unix_up)
        return;
    if (!b->established) {
        /* Before the handshake completes the app end only holds filler;
         * HUP means the app gave up on the connection. */
        if (ev & (EPOLLHUP | EPOLLERR)) {
            b->app_gone = 1;
            bridge_app_closed(b, now);
        }
        return;
    }
    if (ev & (EPOLLHUP | EPOLLERR))
        b->hup = 1; /* pump_in now reads through to EOF */
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
        pump_in(b, now);
    if (ev & EPOLLOUT)
        pump_out(b, now);
    if (b->hup) {
        /* Read what is left of the app's bytes first; if the connection
         * cannot take them all now, wait for its WRITABLE outside epoll
         * (EPOLLHUP cannot be masked: it would wake us again at once). */
        if (b->app_eof || b->app_gone) {
            b->app_gone = 1;
            bridge_app_closed(b, now);
            return;
        }
        unwatch_bridge(b);
        return;
    }
    update_interest(b);
}

/* ---- server side: hand an accepted connection to the app's listener ---- */

static void stop_listening(esock *s);

/* The app's listener is gone: reset the connection being handed over and
 * stop listening. */
static void listener_gone(bridge *b, rudp_time now)
{
    if (b->conn)
        rudp_conn_abort(b->conn, now);
    if (b->sock->listener)
        stop_listening(b->sock);
    b->app_gone = 1;
    bridge_app_closed(b, now);
}

static void try_accept(bridge *b, rudp_time now)
{
    struct engine *e = b->e;
    if (real_connect(b->efd, (struct sockaddr *)&b->sock->lun, b->sock->lun_len) < 0) {
        if (errno == EAGAIN) {
            /* The app's backlog is full: like TCP, hold the peer (flow
             * control keeps its data in the connection) and retry; while
             * it waits the listener takes no new handshake. */
            if (b->conn)
                rudp_conn_set_waiting(b->conn, 1);
            b->pending_next = e->pending;
            e->pending = b;
            if (e->retry_at == RUDP_TIME_NEVER)
                e->retry_at = now + ACCEPT_RETRY;
            e->accept_retries++;
            return;
        }
        bridge_log(RUDP_LOG_INFO, b, "the listener vanished; resetting the connection");
        listener_gone(b, now);
        return;
    }
    if (!shim_ident_listener(b->efd, b->sock->lname.pid, b->sock->listener_uid)) {
        /* The name is held by a socket our application did not make: its
         * listener is gone and someone bound the name since. Nothing may
         * reach them. */
        bridge_log(RUDP_LOG_WARN, b,
                   "the listener's name is held by another process: resetting the "
                   "connection, listener closed");
        e->squatted++;
        listener_gone(b, now);
        return;
    }
    b->unix_up = 1;
    if (b->conn)
        rudp_conn_set_waiting(b->conn, 0);
    publish(b);
    pump_out(b, now);
    pump_in(b, now);
    update_interest(b);
}

static void check_alive(struct engine *e, rudp_time now);

static void retry_pending(struct engine *e, rudp_time now)
{
    bridge *list = e->pending;
    e->pending = NULL;
    e->retry_at = RUDP_TIME_NEVER;
    check_alive(e, now);
    shim_tcpl_retry(e);
    while (list) {
        bridge *b = list;
        list = b->pending_next;
        try_accept(b, now);
    }
}

static void on_accept(struct engine *e, rudp_conn *c, rudp_time now)
{
    uint32_t si = rudp_conn_sock(c);
    esock *s = si < e->nsocks ? e->socks[si] : NULL;
    /* The connection is ours now: it holds its socket until conn_freed,
     * which comes for it whatever happens next. */
    if (s)
        s->refs++;
    bridge *b = s ? bridge_new(e) : NULL;
    int fd = b ? real_socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) : -1;
    if (fd < 0) {
        rudp_conn_abort(c, now);
        rudp_conn_release(c, now);
        if (b)
            bridge_free(b);
        return;
    }
    fd = shim_fd_move_high(fd);
    shim_own_fd(fd, 1);
    b->efd = fd;
    b->conn = c;
    b->sock = s;
    b->established = 1;
    b->id = shim_engine_new_id();
    b->slot = shim_slot_alloc(b->id);
    shim_slot *sl = slot_of(b);
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
            uint8_t v4[4];
            memcpy(v4, l.ip, 4);
            memset(l.ip, 0, 16);
            l.ip[10] = l.ip[11] = 0xff;
            memcpy(l.ip + 12, v4, 4);
            l.family = AF_INET6;
            l.scope_id = 0;
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
        uint8_t v4[4];
        memcpy(v4, peer.ip, 4);
        memset(peer.ip, 0, 16);
        peer.ip[10] = peer.ip[11] = 0xff;
        memcpy(peer.ip + 12, v4, 4);
        peer.family = AF_INET6;
    }
    shim_from_rudp_addr(&peer, &n.peer);
    n.slot = b->slot;
    n.id = b->id;
    n.pid = shim_slot_owner();
    if (shim_name_bind(fd, &n) < 0) {
        rudp_conn_abort(c, now);
        bridge_free(b);
        return;
    }
    try_accept(b, now);
}

/* ---- client side ---- */

static void on_established(bridge *b, rudp_time now)
{
    /* Our answer to the handshake leaves before the app learns of it, so
     * a connection it opens next cannot overtake it on the wire (a server
     * accepts in the order handshakes complete, as TCP does). */
    shim_udpio_flush(b->e->io);
    /* Publish first: the moment the filler is gone the app sees EPOLLOUT
     * and may ask connect()/SO_ERROR/getpeername at once. */
    b->established = 1;
    if (b->fb)
        shim_fallback_rudp_won(b, now);
    shim_slot *s = slot_of(b);
    if (s)
        atomic_store(&s->state, SHIM_SLOT_ESTABLISHED);
    publish(b);
    /* Drop the filler that held the app's end unwritable: now it can write. */
    while (b->filler) {
        uint8_t buf[4096];
        size_t want = b->filler < sizeof buf ? b->filler : sizeof buf;
        ssize_t r = read(b->efd, buf, want);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            break;
        }
        b->filler -= (size_t)r;
    }
    if (s && !b->filler)
        atomic_fetch_and(&s->flags, ~SHIM_SLOT_F_FILLER);
    if (b->app_fd >= 0) {
        /* The app's end gets its send buffer back (see the filler in
         * sock.c), if the fd still holds it; after the drain, so EPOLLOUT
         * still follows publish(). */
        if (s && !b->filler)
            shim_sndbuf_restore(s, b->app_fd, b->app_ino, b->app_sndbuf);
        b->app_fd = -1;
    }
    pump_in(b, now);
    pump_out(b, now);
    update_interest(b);
}

static void conn_event(struct engine *e, rudp_conn *c, unsigned ev, rudp_time now)
{
    if (ev & RUDP_EV_ACCEPT) {
        on_accept(e, c, now);
        return;
    }
    bridge *b = rudp_conn_user(c);
    if (!b)
        return;
    publish_state(b); /* before the app can see what caused it (an EOF) */
    /* An acknowledgement too: a reply often carries the ACK of what the
     * app sent, and once the app reads the reply SIOCOUTQ must not count
     * that data as unacknowledged (TCP has processed the ACK by then). */
    if (ev & RUDP_EV_ACKED)
        publish(b);
    if (ev & RUDP_EV_ESTABLISHED)
        on_established(b, now);
    if ((ev & RUDP_EV_READABLE) && b->unix_up)
        pump_out(b, now);
    if (ev & RUDP_EV_ERROR) {
        bridge_failed(b, rudp_conn_error(c));
        return;
    }
    if ((ev & RUDP_EV_WRITABLE) && b->unix_up) {
        pump_in(b, now);
        if (b->hup) {
            /* the app is gone: finish once its last bytes are in */
            if (b->app_eof || b->app_gone) {
                b->app_gone = 1;
                bridge_app_closed(b, now);
                return;
            }
        }
    }
    if (ev & RUDP_EV_CLOSED)
        publish(b);
    if (ev & RUDP_EV_CLOSED) {
        /* Both directions finished cleanly. Keep efd until the app closes
         * it (it may still read, and ask SO_ERROR) but let the core go once
         * everything it holds reached the app. */
        const uint8_t *p;
        if (rudp_conn_peek(c, &p) == 0) {
            shim_slot *s = slot_of(b);
            if (s)
                atomic_store(&s->tcp_state, TCP_CLOSE);
            pump_out(b, now); /* passes EOF on */
            rudp_conn_set_user(c, NULL);
            rudp_conn_release(c, now);
            b->conn = NULL;
        }
    }
    publish_state(b);
    update_interest(b);
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
    esock *s = sock_new(e, r->udp_fd, r->peer.family);
    bridge *b = s ? bridge_new(e) : NULL;
    if (!b) {
        if (s)
            sock_unref(s);
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
    s->refs = 1;
    b->efd = r->efd;
    b->sock = s;
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
        sock_unref(s);
        bridge_failed(b, err);
        return;
    }
    rudp_conn_set_user(b->conn, b);
    name_local(s->fd, b->conn, NULL);
    watch_bridge(b, 0); /* only EPOLLHUP until established */
    if (r->tcp_fd >= 0)
        shim_fallback_start(b, r, now);
}

static void do_listen(struct engine *e, const shim_listen_req *r, lgroup *g, rudp_time now)
{
    (void)now;
    esock *s = sock_new(e, r->udp_fd, r->lname.family);
    if (!s) {
        shim_close_owned(r->udp_fd);
        shim_close_owned(r->reserve_fd);
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
        sock_unref(s);
        return;
    }
    name_local(s->fd, NULL, s->listener);
    if (r->accept_tcp && s->reserve_fd >= 0)
        shim_tcpl_start(s);
}

/* Whether a unix socket with this inode still exists in any process:
 * 1 yes, 0 no, -1 cannot tell (sock_diag unavailable). */
static int unix_alive(uint64_t ino)
{
    int fd = real_socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0)
        return -1;
    struct {
        struct nlmsghdr nlh;
        struct unix_diag_req r;
    } req;
    memset(&req, 0, sizeof req);
    req.nlh.nlmsg_len = sizeof req;
    req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.nlh.nlmsg_flags = NLM_F_REQUEST;
    req.r.sdiag_family = AF_UNIX;
    req.r.udiag_states = ~0u;
    req.r.udiag_ino = (uint32_t)ino;
    req.r.udiag_cookie[0] = req.r.udiag_cookie[1] = ~0u; /* no cookie: by inode */
    int alive = -1;
    if (send(fd, &req, sizeof req, 0) == (ssize_t)sizeof req) {
        union {
            struct nlmsghdr h;
            uint8_t buf[1024];
        } resp;
        ssize_t n = recv(fd, &resp, sizeof resp, 0);
        if (n >= (ssize_t)sizeof(struct nlmsghdr)) {
            if (resp.h.nlmsg_type == SOCK_DIAG_BY_FAMILY)
                alive = 1;
            else if (resp.h.nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr e;
                memcpy(&e, NLMSG_DATA(&resp.h), sizeof e);
                alive = e.error == -ENOENT ? 0 : -1;
            }
        }
    }
    real_close(fd);
    return alive;
}

static void stop_listening(esock *s)
{
    shim_tcpl_stop(s);
    rudp_listener_close(s->listener);
    s->listener = NULL;
    s->alive_check = 0;
    sock_unref(s);
}

/* The app closed a listener here. A forked child may still hold it (a
 * prefork server): keep accepting until no process does. */
static void do_listen_closed(struct engine *e, uint64_t id, rudp_time now)
{
    for (uint32_t i = 0; i < e->nsocks; i++) {
        esock *s = e->socks[i];
        if (s && s->listener && s->listener_id == id) {
            if (unix_alive(s->listener_ino) == 1) {
                s->alive_check = now + ALIVE_PERIOD;
                if (e->retry_at > s->alive_check)
                    e->retry_at = s->alive_check;
            } else {
                stop_listening(s);
            }
            return;
        }
    }
}

static void check_alive(struct engine *e, rudp_time now)
{
    for (uint32_t i = 0; i < e->nsocks; i++) {
        esock *s = e->socks[i];
        if (s && s->idle) {
            if (atomic_load(&s->group->live) == 0) {
                sock_close(s);
            } else if (e->retry_at > now + ALIVE_PERIOD) {
                e->retry_at = now + ALIVE_PERIOD;
            }
            continue;
        }
        if (!s || !s->listener || !s->alive_check)
            continue;
        if (now >= s->alive_check) {
            if (unix_alive(s->listener_ino) == 0) {
                stop_listening(s);
                continue;
            }
            s->alive_check = now + ALIVE_PERIOD;
        }
        if (e->retry_at > s->alive_check)
            e->retry_at = s->alive_check;
    }
}

static void run_commands(struct engine *e, rudp_time now)
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
            do_listen_closed(e, c->u.id, now);
            break;
        case CMD_CONTROL:
            shim_control_cmd(e, c->u.ctl);
            break;
        }
        free(c);
    }
}

/* ---- the loop ---- */

static int unix_alive(uint64_t ino);
static void stop_listening(esock *s);

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
        ssize_t n = recvmsg(s->fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT);
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

static void read_udp(esock *s, uint32_t events, rudp_time now)
{
    struct engine *e = s->e;
    if (events & EPOLLERR)
        read_errqueue(s, now);
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
        int m = recvmmsg(s->fd, e->msgs, RX_BATCH, MSG_DONTWAIT, NULL);
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
            return;
        }
        for (int i = 0; i < m; i++) {
            SHIM_LOG(RUDP_LOG_DEBUG, "udp %u: received %u bytes %s", s->idx, e->msgs[i].msg_len,
                     rudp_packet_name(e->iovs[i].iov_base, e->msgs[i].msg_len));
            if (s->alive_check && rudp_is_syn(e->iovs[i].iov_base, e->msgs[i].msg_len) &&
                unix_alive(s->listener_ino) == 0) {
                /* the last process holding the listener is gone: refuse
                 * this client now, as TCP would, not after a handshake */
                stop_listening(s);
            }
            rudp_addr a, local;
            shim_to_rudp_addr((struct sockaddr *)&e->addrs[i], &a);
            int has_local = s->pktinfo && pktinfo_local(&e->msgs[i].msg_hdr, &local);
            /* GRO: one buffer may hold several datagrams of seg bytes
             * (the last one shorter), each its own packet to the core. */
            const uint8_t *p = e->iovs[i].iov_base;
            size_t left = e->msgs[i].msg_len;
            uint32_t seg = shim_udpio_rx_meta(e->io, &e->msgs[i].msg_hdr, &s->drops_seen);
            if (!seg || seg > left)
                seg = (uint32_t)left;
            uint32_t count = 0;
            do {
                size_t l = left < seg ? left : seg;
                rudp_ctx_input(e->ctx, now, s->idx, has_local ? &local : NULL, &a, p, l);
                p += l;
                left -= l;
                count++;
            } while (left > 0);
            shim_udpio_received(e->io, 1, count);
        }
        if (m < RX_BATCH)
            return;
    }
}

/* Plain TCP on a listener's port (tcpaccept.c). When the app's listener
 * looks gone, the TCP side stops at once and check_alive, right after this
 * turn's events, asks the kernel whether it is and stops the rest: stopping
 * here could free the esock while this batch still holds events for it. */
static void tcpl_event(tcpl *t, rudp_time now)
{
    esock *s = t->s;
    if (!t->on || shim_tcpl_event(s, now) == 0)
        return;
    shim_tcpl_stop(s);
    if (s->listener) {
        s->alive_check = now;
        if (s->e->retry_at > now)
            s->e->retry_at = now;
    }
}

/* epoll events taken per call, and further calls without sleeping before
 * the turn's timers run (see shim_engine_loop). */
#define EV_MAX 128
#define EV_ROUNDS 31

static rudp_time pump(struct engine *e, rudp_time now)
{
    rudp_time deadline = RUDP_TIME_NEVER;
    for (int round = 0; round < 8; round++) {
        deadline = rudp_ctx_process(e->ctx, now);
        rudp_conn *c;
        unsigned ev;
        int any = 0;
        while (rudp_ctx_next_event(e->ctx, &c, &ev)) {
            any = 1;
            conn_event(e, c, ev, now);
        }
        if (!any)
            break;
    }
    shim_udpio_flush(e->io);
    return deadline;
}


/* Whether engine e carries anything a process's death would cut off. */
static int engine_busy(struct engine *e)
{
    /* commands not yet run: a new connection or listener; a rudp-stat
     * request (CMD_CONTROL) is no reason to live on */
    for (const cmd *c = e->q_head; c; c = c->next)
        if (c->type != CMD_CONTROL)
            return 1;
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
        free(c);
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
        if (n < 0 && errno != EINTR) {
            /* Our epoll fd was closed under us (a program closing every
             * fd): the engine cannot go on, nor can new connections. */
            SHIM_LOG(RUDP_LOG_ERROR, "engine epoll failed: %s; rudp connections stop",
                     strerror(errno));
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
            for (int i = 0; i < n; i++) {
                int type = *(int *)evs[i].data.ptr;
                if (type == W_EVENT)
                    run_commands(e, now);
                else if (type == W_UDP)
                    read_udp(evs[i].data.ptr, evs[i].events, now);
                else if (type == W_BRIDGE)
                    bridge_event(evs[i].data.ptr, evs[i].events, now);
                else if (type == W_CONTROL)
                    shim_control_event(e, evs[i].data.ptr, evs[i].events);
                else if (type == W_FALLBACK)
                    shim_fallback_event(e, evs[i].data.ptr, evs[i].events, now);
                else if (type == W_TCPL)
                    tcpl_event(evs[i].data.ptr, now);
            }
            if (n < EV_MAX || more == EV_ROUNDS)
                break;
            static const struct timespec zero;
            n = epoll_pwait2(e->epfd, evs, EV_MAX, &zero, NULL);
            if (n <= 0)
                break;
            now = shim_now();
        }
        if (now >= e->retry_at)
            retry_pending(e, now);
        if (now >= e->fallback_at)
            shim_fallback_timer(e, now);
        /* What is sent now is timed now, not at the wake-up. */
        deadline = pump(e, shim_now());
        rudp_time turn = shim_now() - turn_start;
        if (turn > e->longest_turn)
            e->longest_turn = turn;
        if (G.keeper_mode && !engine_busy(e) && rudp_ctx_conn_count(e->ctx) == 0 &&
            shim_engine_retire(e)) {
            stop_control(e);
            return NULL; /* a keeper's work is done */
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
    if (err < 0) /* connect() and listen() fail with err: say why */
        SHIM_LOG(RUDP_LOG_ERROR, "RUDP_KEY_FILE: keyed mode cannot start: %s",
                 err == -ENOSYS ? "libsodium failed to initialise" : strerror(-err));
    return err;
}

int shim_engine_start_locked(struct engine *e)
{
    static const rudp_ctx_ops ops = {.send = on_send, .log = on_log, .conn_freed = on_conn_freed};
    uint8_t seed[32];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, seed, sizeof seed) != (ssize_t)sizeof seed) {
        if (fd >= 0)
            real_close(fd);
        return -EIO;
    }
    real_close(fd);
    memset(e, 0, sizeof *e);
    e->epfd = e->evfd = -1;
    e->retry_at = RUDP_TIME_NEVER;
    e->fallback_at = RUDP_TIME_NEVER;
    if (rudp_ctx_new(&ops, e, seed, &shim_cfg.rudp, &e->ctx) < 0)
        return -ENOMEM;
    int kerr = key_ctx(e->ctx);
    if (kerr < 0) {
        rudp_ctx_free(e->ctx);
        e->ctx = NULL;
        return kerr;
    }
    /* RUDP_MEMORY bounds the process: each engine may hold its share. */
    rudp_ctx_set_memory_limit(e->ctx, shim_cfg.memory / (uint64_t)shim_cfg.engines);
    rudp_ctx_set_log_level(e->ctx, shim_cfg.log_level);
    shim_qlog_attach(e->ctx);
    e->io = shim_udpio_new(shim_cfg.offload);
    e->msgs = calloc(RX_BATCH, sizeof *e->msgs);
    e->iovs = calloc(RX_BATCH, sizeof *e->iovs);
    e->addrs = calloc(RX_BATCH, sizeof *e->addrs);
    e->ctrls = calloc(RX_BATCH, sizeof *e->ctrls);
    e->rxbuf = malloc((size_t)RX_BATCH * RX_SIZE);
    e->epfd = epoll_create1(EPOLL_CLOEXEC);
    e->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!e->io || !e->msgs || !e->iovs || !e->addrs || !e->ctrls || !e->rxbuf || e->epfd < 0 ||
        e->evfd < 0)
        return -ENOMEM;
    e->epfd = shim_fd_move_high(e->epfd);
    e->evfd = shim_fd_move_high(e->evfd);
    shim_own_fd(e->epfd, 1);
    shim_own_fd(e->evfd, 1);
    e->event_type = W_EVENT;
    struct epoll_event ee = {.events = EPOLLIN, .data.ptr = &e->event_type};
    if (real_epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->evfd, &ee) < 0)
        return -errno;

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

    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int err = pthread_create(&e->thread, &attr, shim_engine_loop, e);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        if (G.nrun == 0)
            shim_control_close(e); /* no engine to serve it */
        return -err;
    }
    /* read without the lock by a signal's stand-in (engines.c) */
    __atomic_store_n(&G.nrun, G.nrun + 1, __ATOMIC_RELEASE);
    G.pid = getpid();
    return 0;
}
