/*
 * control.c: the control socket that rudp-stat reads (a view like ss -ti of
 * this process's rudp connections, listeners and engine counters).
 *
 * Why a control socket, and why this one:
 *  - A shared-memory segment would need its own permissions, a consistent
 *    snapshot of structures that only the engine threads may touch, and a
 *    life of its own after a crash. A socket answered by the engine gives
 *    a consistent report, built by the threads that own the data, and
 *    vanishes with the process.
 *  - An AF_UNIX stream socket with an abstract name (no file to clean up,
 *    nothing in a directory that must exist and be writable), listening,
 *    named "\0rudp-ctl/<pid>/<16 hex digits>". Abstract names have no owner
 *    and no permissions (see ident.c): anyone may list, bind or connect to
 *    them. The 64 random bits (getrandom) make the name unguessable, so no
 *    one can bind it before we do and pose as this process; the pid lets
 *    rudp-stat find it in /proc/net/unix.
 *  - Who may read is decided by the kernel's word, not a name: the engine
 *    checks SO_PEERCRED of each connection; only root and this process's
 *    effective uid get a report (a process of that uid could ptrace us
 *    anyway). Anyone else gets one refusal line and the connection closes.
 *    rudp-stat checks the other direction: the listening socket's
 *    SO_PEERCRED pid must be the pid it asked about, so a socket bound by
 *    someone else under a lookalike name is never believed.
 *
 * Engine 0 owns the socket (a W_CONTROL object in its epoll loop). It
 * accepts, checks the credentials, and writes the header and its own part;
 * the other engines' connections belong to their threads, so the request
 * is passed along the engines' command queues (CMD_CONTROL), each engine
 * appending its connections, listeners and counters on its own thread,
 * and comes back to engine 0, which adds the totals and sends. Nothing
 * blocks an engine on a slow reader: the report is buffered and written
 * without blocking, the rest on EPOLLOUT; at most CTL_CLIENTS requests are
 * served at once. The socket is an engine fd (high, close-on-exec, spared
 * by close_range/closefrom); a forked child closes it with the engine's
 * other fds and opens its own with its own engine; a keeper (a new pid)
 * closes its parent's and opens one of its own.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/un.h>
#include <unistd.h>

#include "engine.h"

#include "poison.h"

#define CTL_CLIENTS 8              /* requests served at once */
#define CTL_MAX_REPORT (64u << 20) /* a report longer than this is cut */
#define CTL_SNDBUF (1 << 20)

enum { CTL_LISTENER = 1, CTL_CLIENT };

typedef struct ctl_req {
    int type;            /* W_CONTROL: first, for epoll dispatch */
    int kind;            /* CTL_CLIENT */
    int fd;
    pid_t pid;           /* the process that accepted it: a keeper drops its parent's */
    int gathered;        /* every engine added its part: engine 0 sends it */
    char *buf;
    size_t len, cap, off;
    int truncated;
    shim_engine_totals tot;
    struct ctl_req *next; /* being written (engine 0) */
} ctl_req;

/* Engine 0's: the listener and the requests being written. */
static struct {
    int type; /* W_CONTROL */
    int kind; /* CTL_LISTENER */
    int fd;
    rudp_time opened;
    ctl_req *writing;
} L = {.fd = -1};

static _Atomic int nclients; /* accepted, not yet closed */

static void put(ctl_req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(ctl_req *r, const char *fmt, ...)
{
    if (r->truncated)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(r->buf + r->len, r->cap - r->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < r->cap - r->len) {
            r->len += (size_t)n;
            return;
        }
        size_t want = r->cap ? r->cap * 2 : 16384;
        while (want <= r->len + (size_t)n)
            want *= 2;
        char *b = want <= CTL_MAX_REPORT ? realloc(r->buf, want) : NULL;
        if (!b) {
            r->truncated = 1;
            return;
        }
        r->buf = b;
        r->cap = want;
    }
}

static const char *state_name(rudp_state s)
{
    /* ss's names */
    switch (s) {
    case RUDP_CLOSED: return "CLOSED";
    case RUDP_SYN_SENT: return "SYN-SENT";
    case RUDP_SYN_RCVD: return "SYN-RECV";
    case RUDP_ESTABLISHED: return "ESTAB";
    case RUDP_FIN_WAIT_1: return "FIN-WAIT-1";
    case RUDP_FIN_WAIT_2: return "FIN-WAIT-2";
    case RUDP_CLOSING: return "CLOSING";
    case RUDP_TIME_WAIT: return "TIME-WAIT";
    case RUDP_CLOSE_WAIT: return "CLOSE-WAIT";
    case RUDP_LAST_ACK: return "LAST-ACK";
    case RUDP_STATE_COUNT: break;
    }
    return "?";
}

static void addr_str(const rudp_addr *a, char *out, size_t n)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    inet_ntop(a->family == AF_INET ? AF_INET : AF_INET6, a->ip, ip, sizeof ip);
    snprintf(out, n, a->family == AF_INET ? "%s:%u" : "[%s]:%u", ip, (unsigned)a->port);
}

static void rate_str(uint64_t bytes_per_s, char *out, size_t n)
{
    double b = (double)bytes_per_s * 8;
    if (b >= 1e9)
        snprintf(out, n, "%.1fGbit/s", b / 1e9);
    else if (b >= 1e6)
        snprintf(out, n, "%.1fMbit/s", b / 1e6);
    else
        snprintf(out, n, "%.1fKbit/s", b / 1e3);
}

static double ms(uint64_t us)
{
    return (double)us / 1000;
}

/* The local address of connection c: its UDP socket's, with the address a
 * wildcard-bound listener's client reached. */
static void local_of(struct engine *e, const rudp_conn *c, rudp_addr *out)
{
    memset(out, 0, sizeof *out);
    uint32_t si = rudp_conn_sock(c);
    if (si < e->nsocks && e->socks[si]) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (real_getsockname(e->socks[si]->fd, (struct sockaddr *)&ss, &sl) == 0)
            shim_to_rudp_addr((struct sockaddr *)&ss, out);
    }
    const rudp_addr *dst = rudp_conn_local(c);
    if (dst) {
        uint16_t port = out->port;
        *out = *dst;
        out->port = port;
    }
}

static void put_conn(ctl_req *r, struct engine *e, int k, const rudp_conn *c, rudp_time now)
{
    rudp_conn_info i;
    rudp_conn_get_info(c, &i);
    const char *cc, *phase;
    rudp_conn_cc_state(c, &cc, &phase);
    rudp_addr la;
    local_of(e, c, &la);
    char l[64], p[64], pacing[32], delivery[32];
    addr_str(&la, l, sizeof l);
    addr_str(rudp_conn_peer(c), p, sizeof p);
    rate_str(i.pacing_rate, pacing, sizeof pacing);
    rate_str(i.delivery_rate, delivery, sizeof delivery);
    rudp_time t0 = rudp_conn_start_time(c);
    double age = now > t0 ? (double)(now - t0) / 1e9 : 0;
    char minrtt[32] = "-";
    if (i.min_rtt_us < 1000000000ull) /* none yet: the filter's "never" */
        snprintf(minrtt, sizeof minrtt, "%.2f", ms(i.min_rtt_us));
    put(r, "%s %s > %s id %016llx age %.1fs engine %d%s\n", state_name(i.state), l, p,
        (unsigned long long)i.local_cid, age, k,
        rudp_conn_user(c) ? "" : " orphan (closed by the app, finishing)");
    put(r,
        "  %s%s%s rtt %.2f/%.2f ms min %s cwnd %llu inflight %llu pacing %s delivery %s%s "
        "sent %llu recv %llu unacked %llu retrans %llu pto %llu\n",
        cc, *phase ? " " : "", phase, ms(i.rtt_us), ms(i.rttvar_us), minrtt,
        (unsigned long long)i.cwnd_bytes, (unsigned long long)i.bytes_in_flight, pacing,
        delivery, i.delivery_app_limited ? " (app-limited)" : "",
        (unsigned long long)i.bytes_sent, (unsigned long long)i.bytes_received,
        (unsigned long long)i.unacked_bytes, (unsigned long long)i.retransmits,
        (unsigned long long)i.pto_count);
}

/* Engine e's part, on its own thread: connections, listeners, counters. */
static void put_engine(ctl_req *r, struct engine *e)
{
    int k = (int)(e - G.e);
    rudp_time now = shim_now();
    if (!e->ctx)
        return;
    for (const rudp_conn *c = rudp_ctx_conn_next(e->ctx, NULL); c;
         c = rudp_ctx_conn_next(e->ctx, c))
        put_conn(r, e, k, c, now);
    for (uint32_t i = 0; i < e->nsocks; i++) {
        esock *s = e->socks[i];
        if (!s || !s->listener)
            continue;
        rudp_addr a;
        shim_to_rudp_addr((struct sockaddr *)&s->lname.local, &a);
        char l[64];
        addr_str(&a, l, sizeof l);
        put(r, "LISTEN %s engine %d backlog %d\n", l, k, s->backlog);
    }
    shim_engine_add_totals(e, &r->tot);
}

static void put_header(ctl_req *r)
{
    char comm[64] = "?";
    int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, comm, sizeof comm - 1);
        comm[n > 0 ? n : 0] = 0;
        comm[strcspn(comm, "\n")] = 0;
        real_close(fd);
    }
    pthread_mutex_lock(&G.mu);
    int nrun = G.nrun;
    pthread_mutex_unlock(&G.mu);
    put(r, "pid %d (%s) engines %d up %.1fs", (int)getpid(), comm, nrun,
        (double)(shim_now() - L.opened) / 1e9);
    if (G.keeper_mode)
        put(r, " keeper of pid %d", (int)shim_slot_owner());
    put(r, "\n");
}

static void put_totals(ctl_req *r)
{
    const shim_engine_totals *t = &r->tot;
    const rudp_stats *s = &t->f.s;
    const shim_udpio_stats *u = &t->f.u;
    put(r, "engine: threads %d, connections each", t->n);
    for (int k = 0; k < t->n; k++)
        put(r, "%s%llu", k ? "/" : " ", (unsigned long long)t->conns[k]);
    put(r, "; wake-ups %llu (%llu by a deadline, late by %.1f us on average), longest turn "
           "%.1f ms\n",
        (unsigned long long)t->f.wakeups, (unsigned long long)t->f.timed_wakeups,
        t->f.timed_wakeups ? (double)t->f.late_ns / (double)t->f.timed_wakeups / 1000 : 0.0, (double)t->f.longest_turn / 1e6);
    put(r, "  udp: datagrams sent %llu in %llu calls, %llu GSO trains (GSO %s, refused %llu), "
           "%llu not taken; received %llu in %llu reads, %llu coalesced by GRO, %llu dropped "
           "by a full receive buffer\n",
        (unsigned long long)u->datagrams_out, (unsigned long long)u->send_calls,
        (unsigned long long)u->trains, t->f.gso_on ? "on" : "off", (unsigned long long)u->gso_failed,
        (unsigned long long)u->send_dropped, (unsigned long long)u->datagrams_in,
        (unsigned long long)u->reads, (unsigned long long)u->coalesced,
        (unsigned long long)u->rx_dropped);
    put(r, "  rudp: datagrams out %llu in %llu, bytes out %llu in %llu, stream bytes sent %llu, "
           "retransmitted packets %llu (%llu bytes), probe timeouts %llu, duplicates %llu\n",
        (unsigned long long)s->dgrams_out, (unsigned long long)s->dgrams_in,
        (unsigned long long)s->bytes_out, (unsigned long long)s->bytes_in,
        (unsigned long long)s->stream_bytes_sent, (unsigned long long)s->pkts_retransmitted,
        (unsigned long long)s->bytes_retransmitted, (unsigned long long)s->pto_count,
        (unsigned long long)s->dup_pkts);
    put(r, "  connections opened %llu accepted %llu closed %llu, resets sent %llu received "
           "%llu; dropped: malformed %llu, unknown connection %llu, handshakes %llu (source "
           "limit %llu), refused for memory %llu, data %llu; icmp ignored %llu acted on %llu\n",
        (unsigned long long)s->conns_opened, (unsigned long long)s->conns_accepted,
        (unsigned long long)s->conns_closed, (unsigned long long)s->resets_sent,
        (unsigned long long)s->resets_received, (unsigned long long)s->malformed,
        (unsigned long long)s->unknown_conn, (unsigned long long)s->handshakes_dropped,
        (unsigned long long)s->source_limited, (unsigned long long)s->memory_refused,
        (unsigned long long)s->rx_dropped, (unsigned long long)s->icmp_ignored,
        (unsigned long long)s->icmp_soft);
    put(r, "  memory held %llu; handoffs refused (listener name held by another) %llu; "
           "foreign connections to our listeners refused %llu\n",
        (unsigned long long)t->f.memory, (unsigned long long)t->f.squatted,
        (unsigned long long)shim_ident_refused());
}

static void req_free(ctl_req *r, int counted)
{
    shim_close_owned(r->fd);
    free(r->buf);
    free(r);
    if (counted)
        atomic_fetch_sub(&nclients, 1);
}

/* Writes what the socket takes now; 1 when the request is finished (sent
 * or failed), 0 to wait for EPOLLOUT. */
static int flush(ctl_req *r)
{
    while (r->off < r->len) {
        ssize_t w = send(r->fd, r->buf + r->off, r->len - r->off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) {
            r->off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        return !(w < 0 && errno == EAGAIN);
    }
    return 1;
}

/* Engine 0, every part gathered: the totals, then send. */
static void finish(struct engine *e, ctl_req *r)
{
    put_totals(r);
    if (r->truncated)
        put(r, "(report cut: out of memory)\n");
    if (flush(r)) {
        req_free(r, 1);
        return;
    }
    struct epoll_event ee = {.events = EPOLLOUT, .data.ptr = r};
    if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, r->fd, &ee) < 0) {
        req_free(r, 1);
        return;
    }
    r->next = L.writing;
    L.writing = r;
}

/* After engine e's part: on to the next engine that takes commands, or
 * back to engine 0 to send. */
static void forward(struct engine *e, ctl_req *r)
{
    int k = (int)(e - G.e);
    pthread_mutex_lock(&G.mu);
    for (int j = k + 1; j < G.nrun; j++) {
        cmd *c = calloc(1, sizeof *c);
        if (!c)
            break;
        c->type = CMD_CONTROL;
        c->u.ctl = r;
        if (shim_engine_push_locked(&G.e[j], c) == 0) {
            pthread_mutex_unlock(&G.mu);
            return;
        }
    }
    r->gathered = 1;
    if (k == 0) {
        pthread_mutex_unlock(&G.mu);
        finish(e, r);
        return;
    }
    cmd *c = calloc(1, sizeof *c);
    int err = -ENOMEM;
    if (c) {
        c->type = CMD_CONTROL;
        c->u.ctl = r;
        err = shim_engine_push_locked(&G.e[0], c);
    }
    pthread_mutex_unlock(&G.mu);
    if (err)
        req_free(r, 1);
}

void shim_control_cmd(struct engine *e, void *req)
{
    ctl_req *r = req;
    if (r->pid != getpid()) {
        /* queued before this keeper was forked: its reader asked the parent */
        req_free(r, 0);
        return;
    }
    if (r->gathered) {
        finish(e, r);
        return;
    }
    put_engine(r, e);
    forward(e, r);
}

static void refuse(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void refuse(int fd, const char *fmt, ...)
{
    char line[160];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0) {
        ssize_t w = send(fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)w;
    }
    shim_close_owned(fd);
}

static void on_accept(struct engine *e)
{
    for (;;) {
        int fd = real_accept4(L.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return;
        }
        fd = shim_fd_move_high(fd);
        shim_own_fd(fd, 1);
        struct ucred cr;
        socklen_t cl = sizeof cr;
        uid_t me = geteuid();
        if (real_getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 || cl != sizeof cr) {
            shim_close_owned(fd);
            continue;
        }
        if (cr.uid != me && cr.uid != 0) {
            refuse(fd, "rudp-stat: permission denied: process %d belongs to uid %u\n",
                   (int)getpid(), (unsigned)me);
            continue;
        }
        if (atomic_load(&nclients) >= CTL_CLIENTS) {
            refuse(fd, "rudp-stat: process %d is busy with other requests, try again\n",
                   (int)getpid());
            continue;
        }
        ctl_req *r = calloc(1, sizeof *r);
        if (!r) {
            shim_close_owned(fd);
            continue;
        }
        atomic_fetch_add(&nclients, 1);
        r->type = W_CONTROL;
        r->kind = CTL_CLIENT;
        r->fd = fd;
        r->pid = getpid();
        int sz = CTL_SNDBUF;
        real_setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        put_header(r);
        put_engine(r, e);
        forward(e, r);
    }
}

void shim_control_event(struct engine *e, void *obj, uint32_t events)
{
    ctl_req *r = obj;
    if (r->kind == CTL_LISTENER) {
        on_accept(e);
        return;
    }
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) || !flush(r))
        return;
    epoll_ctl(e->epfd, EPOLL_CTL_DEL, r->fd, NULL);
    for (ctl_req **pp = &L.writing; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    req_free(r, 1);
}

void shim_control_open(struct engine *e)
{
    struct sockaddr_un un;
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    uint64_t nonce;
    int fd = -1;
    const char *what = "getrandom";
    if (getrandom(&nonce, sizeof nonce, 0) != (ssize_t)sizeof nonce)
        goto fail;
    /* abstract: sun_path[0] = 0, the name's length is in the address length */
    int n = snprintf(un.sun_path + 1, sizeof un.sun_path - 1, "rudp-ctl/%d/%016llx",
                     (int)getpid(), (unsigned long long)nonce);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
    what = "socket";
    fd = real_socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    what = "bind";
    if (real_bind(fd, (struct sockaddr *)&un, len) < 0)
        goto fail;
    what = "listen";
    if (real_listen(fd, 16) < 0)
        goto fail;
    fd = shim_fd_move_high(fd);
    shim_own_fd(fd, 1);
    L.type = W_CONTROL;
    L.kind = CTL_LISTENER;
    L.fd = fd;
    L.opened = shim_now();
    L.writing = NULL;
    struct epoll_event ee = {.events = EPOLLIN, .data.ptr = &L};
    what = "epoll_ctl";
    if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ee) < 0) {
        shim_close_owned(fd);
        L.fd = fd = -1;
        goto fail;
    }
    return;
fail:
    SHIM_LOG(RUDP_LOG_INFO, "no control socket for rudp-stat: %s: %s", what, strerror(errno));
    if (fd >= 0)
        real_close(fd);
}

void shim_control_reopen(struct engine *e)
{
    /* The keeper's copies: the parent's listener and the reports it was
     * writing (their readers asked the parent, which is gone). The epoll
     * instance is shared with the parent: take them out of it first. */
    if (L.fd >= 0) {
        epoll_ctl(e->epfd, EPOLL_CTL_DEL, L.fd, NULL);
        shim_close_owned(L.fd);
        L.fd = -1;
    }
    while (L.writing) {
        ctl_req *r = L.writing;
        L.writing = r->next;
        epoll_ctl(e->epfd, EPOLL_CTL_DEL, r->fd, NULL);
        req_free(r, 0);
    }
    atomic_store(&nclients, 0);
    shim_control_open(e);
}

void shim_control_forget(void)
{
    /* Its fds went with the parent's engine (shim_close_all_owned); what
     * they pointed to belongs to the parent's threads, as the engines do. */
    L.fd = -1;
    L.writing = NULL;
    atomic_store(&nclients, 0);
}
