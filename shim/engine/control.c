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
 * Engine 0 owns the socket (an object in its epoll, hooks.h). It
 * accepts, checks the credentials, and writes the header and its own part;
 * the other engines' connections belong to their threads, so the request
 * is passed along the engines' command queues (CMD_CONTROL), each engine
 * appending its connections, listeners and counters on its own thread,
 * and comes back to engine 0, which adds the counters (the lines
 * RUDP_STATS prints, enginestats.c) and sends. An engine that cannot take
 * commands is skipped, and one that stops passes on what was queued for
 * it. Nothing blocks an engine on a slow reader: the report is buffered
 * and written without blocking, the rest on EPOLLOUT; at most CTL_CLIENTS
 * requests are served at once, a reader that has not taken its report
 * CTL_STALE after it connected is dropped, and at most CTL_ACCEPTS
 * connections are taken per wake-up. The socket is an engine fd (high,
 * close-on-exec, spared by close_range/closefrom); a forked child closes it
 * with the engine's other fds and opens its own with its own engine; a
 * keeper (a new pid) closes its parent's and opens one of its own; engine
 * 0 closes it when it stops (broken, or a keeper's that is done), so no
 * name stays bound that nobody serves.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

#include "base/poison.h"

#define CTL_CLIENTS 8              /* requests served at once */
#define CTL_ACCEPTS 8              /* connections taken per wake-up (the rest: next turn) */
#define CTL_MAX_REPORT (64u << 20) /* a report longer than this is cut */
#define CTL_FIRST_BUF 16384        /* a report's first buffer: room for the cut notice */
#define CTL_SNDBUF (1 << 20)
#define CTL_STALE RUDP_SEC(10)     /* a reader that has not taken its report by then */
#define CTL_REARM RUDP_SEC(1)      /* accepting again after accept4 failed (EMFILE, ...) */

enum { CTL_LISTENER = 1, CTL_CLIENT };

/* What engine 0's epoll points to: its watch first (the engine dispatches
 * on it, hooks.h), then which of the two it is. */
typedef struct ctl_obj {
    shim_watch w;
    int kind; /* CTL_LISTENER, CTL_CLIENT */
} ctl_obj;

static const shim_watch_ops ctl_ops;

typedef struct ctl_req {
    ctl_obj obj;         /* first: epoll's pointer is to it */
    int fd;
    rudp_time born;      /* accepted: a reader that has not taken it CTL_STALE later is dropped */
    char *buf;           /* never NULL: allocated at accept */
    size_t len, cap, off;
    int truncated;       /* cut: nothing more is added */
    int nfig;            /* engines [0, nfig) took their figures */
    engine_figures fig[SHIM_ENGINES_MAX];
    struct ctl_req *next; /* being written (engine 0) */
} ctl_req;

/* Engine 0's: the listener and the requests being written. */
static struct {
    ctl_obj obj;
    int fd;
    rudp_time opened;
    rudp_time rearm_at; /* accepting paused until then (0: not paused) */
    ctl_req *writing;
} L = {.fd = -1};

static _Atomic int nclients; /* accepted, not yet closed */

/* Ends the report at its last complete line that leaves room for a notice
 * of why it is cut (the first buffer always has that room); nothing more is
 * added after. */
static void cut(ctl_req *r, const char *why)
{
    size_t wl = strlen(why);
    size_t end = r->len < r->cap - wl ? r->len : r->cap - wl;
    while (end > 0 && r->buf[end - 1] != '\n')
        end--;
    memcpy(r->buf + end, why, wl);
    r->len = end + wl;
    r->truncated = 1;
}

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
        size_t want = r->cap * 2;
        while (want <= r->len + (size_t)n)
            want *= 2;
        if (want > CTL_MAX_REPORT) {
            cut(r, "(report cut: longer than the 64 MiB a report may have)\n");
            return;
        }
        char *b = shim_realloc(r->buf, want);
        if (!b) {
            cut(r, "(report cut: out of memory)\n");
            return;
        }
        r->buf = b;
        r->cap = want;
    }
}

/* The sink of shim_engine_print_figures: a line of the report, under
 * the "counters:" line that rudp-stat shows only with --verbose. */
static void put_line(void *arg, const char *text)
{
    put(arg, "  %s\n", text);
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

static void put_conn(ctl_req *r, int k, const rudp_conn *c, rudp_time now)
{
    rudp_conn_info i;
    rudp_conn_get_info(c, &i);
    const char *cc, *phase;
    rudp_conn_cc_state(c, &cc, &phase);
    char name[200], pacing[32], delivery[32];
    rudp_conn_name(c, name, sizeof name); /* as log lines name it */
    rate_str(i.pacing_rate, pacing, sizeof pacing);
    rate_str(i.delivery_rate, delivery, sizeof delivery);
    rudp_time t0 = rudp_conn_start_time(c);
    double age = now > t0 ? (double)(now - t0) / 1e9 : 0;
    char minrtt[32] = "-";
    if (i.min_rtt_us < 1000000000ull) /* none yet: the filter's "never" */
        snprintf(minrtt, sizeof minrtt, "%.2f", ms(i.min_rtt_us));
    /* the AEAD once a keyed handshake has chosen it; "keyed" before */
    const char *cipher = rudp_conn_cipher(c);
    if (!cipher)
        cipher = shim_key() ? "keyed" : "plain";
    put(r, "%s %s age %.1fs engine %d %s%s\n", state_name(i.state), name, age, k, cipher,
        rudp_conn_user(c) ? "" : " orphan (closed by the app, finishing)");
    /* One line of keys, as ss -ti's. Bytes written wait in two places:
     * sent and not yet acknowledged (unacked), or not sent yet (unsent:
     * the window, the peer's or ours, holds them). What limits the rate
     * is said once: the peer's window (its reader is slower), else an
     * app-limited delivery sample (the app gave too little to fill cwnd). */
    uint64_t unacked = i.unacked_bytes - i.unsent_bytes;
    put(r,
        "  %s%s%s rtt %.2f/%.2f ms min %s cwnd %llu inflight %llu pacing %s delivery %s%s "
        "sent %llu recv %llu unacked %llu unsent %llu lost %llu pto %llu mtu %u\n",
        cc, *phase ? " " : "", phase, ms(i.rtt_us), ms(i.rttvar_us), minrtt,
        (unsigned long long)i.cwnd_bytes, (unsigned long long)i.bytes_in_flight, pacing,
        delivery,
        i.receiver_limited ? " (receiver-limited)" : i.delivery_app_limited ? " (app-limited)" : "",
        (unsigned long long)i.bytes_sent, (unsigned long long)i.bytes_received,
        (unsigned long long)unacked, (unsigned long long)i.unsent_bytes,
        (unsigned long long)i.retransmits, (unsigned long long)i.pto_count, i.mss);
    /* path MTU discovery (core/pmtu.h): once it probed */
    if (i.pmtu_probes || i.pmtu_fallbacks)
        put(r, "  pmtu: size %u, probes %u (lost or too big %u), black-hole fallbacks %u\n",
            i.mss, i.pmtu_probes, i.pmtu_probes_lost, i.pmtu_fallbacks);
    /* roaming (core/path.h): shown once the path changed, or while the
     * peer is silent with bytes of ours unacknowledged (an idle peer, or
     * one whose window is closed, is silent for good reason) */
    double silent = now > i.last_rx ? (double)(now - i.last_rx) / 1e9 : 0;
    if (i.path_moves || i.rebinds || i.path_failed || (silent >= 1 && unacked))
        put(r, "  path: peer moved %u, moved ourselves %u, unanswered challenges %u; heard %.1fs "
               "ago, longest silence %.1fs\n",
            i.path_moves, i.rebinds, i.path_failed, silent, (double)i.longest_silence / 1e9);
    /* handover (core/standby.c): once a standby was found or used */
    if (i.standby || i.handovers || i.handbacks)
        put(r, "  %s %s, rtt %.1fms, challenges %u (unanswered now %u); handovers %u, back %u, "
               "datagrams %u\n",
            i.on_standby ? "on its standby path; the primary:" : "standby path:",
            !i.standby ? "none" : i.standby == 2 ? "answering" : "not answering",
            (double)i.standby_rtt_us / 1000, i.standby_challenges, i.standby_unanswered,
            i.handovers, i.handbacks, i.standby_pkts);
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
        put_conn(r, k, c, now);
    for (uint32_t i = 0; i < e->nsocks; i++) {
        esock *s = e->socks[i];
        if (!s || !s->listener)
            continue;
        rudp_addr a;
        shim_to_rudp_addr((struct sockaddr *)&s->lname.local, &a);
        char l[64];
        rudp_addr_format(&a, l, sizeof l);
        const shim_listener_ops *lo = shim_hook.listener;
        put(r, "LISTEN %s engine %d backlog %d%s\n", l, k, s->backlog,
            lo && lo->plain_tcp && lo->plain_tcp(s) ? " +plain-tcp" : "");
    }
    shim_engine_figures(e, &r->fig[k]);
    if (r->nfig < k + 1)
        r->nfig = k + 1;
}

static void put_header(ctl_req *r)
{
    /* This thread's name, inherited from the thread that started the
     * engine: no file to open (an fd of ours low among the app's). */
    char comm[17] = "?";
    if (prctl(PR_GET_NAME, comm) != 0)
        snprintf(comm, sizeof comm, "?");
    comm[16] = 0;
    shim_mutex_lock(&G.mu);
    int nrun = G.nrun;
    shim_mutex_unlock(&G.mu);
    put(r, "pid %d (%s) engines %d up %.1fs", (int)getpid(), comm, nrun,
        (double)(shim_now() - L.opened) / 1e9);
    if (G.keeper_mode)
        put(r, " keeper of pid %d", (int)shim_slot_owner());
    put(r, "\n");
}

static void req_free(ctl_req *r)
{
    shim_close_owned(r->fd);
    shim_free(r->buf);
    shim_free(r);
    atomic_fetch_sub(&nclients, 1);
}

/* req_free for a request engine 0 watches for EPOLLOUT (L.writing), freed
 * by another object's event: the batch being dispatched may still hold its
 * own event, so it is buried (shim_engine_bury), not freed at once, or that
 * event would reach freed memory, or a new request in its place. */
static void req_drop(struct engine *e, ctl_req *r)
{
    shim_close_owned(r->fd);
    shim_free(r->buf);
    atomic_fetch_sub(&nclients, 1);
    shim_engine_bury(e, r, &r->obj.w.type);
}

/* Writes what the socket takes now; 1 when the request is finished (sent
 * or failed), 0 to wait for EPOLLOUT. */
static int flush(ctl_req *r)
{
    while (r->off < r->len) {
        ssize_t w = real_send(r->fd, r->buf + r->off, r->len - r->off, MSG_DONTWAIT | MSG_NOSIGNAL);
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

static void unlink_writing(struct engine *e, ctl_req *r)
{
    real_epoll_ctl(e->epfd, EPOLL_CTL_DEL, r->fd, NULL);
    for (ctl_req **pp = &L.writing; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
}

/* Readers that have not taken their report CTL_STALE after they connected
 * (one that never reads would hold its slot for good); returns when the
 * next one would be due. */
static rudp_time drop_stale(struct engine *e, rudp_time now)
{
    rudp_time next = RUDP_TIME_NEVER;
    for (ctl_req *r = L.writing, *after; r; r = after) {
        after = r->next;
        if (now - r->born >= CTL_STALE) {
            unlink_writing(e, r);
            req_drop(e, r);
        } else if (r->born + CTL_STALE < next) {
            next = r->born + CTL_STALE;
        }
    }
    return next;
}

/* Engine 0, every part gathered: the counters, then send. */
static void finish(struct engine *e, ctl_req *r)
{
    /* tools/rudp-stat.c stops at this line unless --verbose */
    put(r, "counters:\n");
    shim_engine_print_figures(r->fig, r->nfig, put_line, r);
    if (flush(r)) {
        req_free(r);
        return;
    }
    struct epoll_event ee = {.events = EPOLLOUT, .data.ptr = &r->obj};
    if (real_epoll_ctl(e->epfd, EPOLL_CTL_ADD, r->fd, &ee) < 0) {
        req_free(r);
        return;
    }
    r->next = L.writing;
    L.writing = r;
}

/* After engine e's part (or, e stopping, instead of it): on to the next
 * engine that takes commands, or back to engine 0 to send. An engine that
 * cannot take commands (broken, or a keeper's that retired) is skipped;
 * with engine 0 gone too the request ends here. */
static void forward(struct engine *e, ctl_req *r)
{
    int k = (int)(e - G.e);
    shim_mutex_lock(&G.mu);
    for (int j = k + 1; j < G.nrun; j++) {
        if (G.e[j].broken)
            continue;
        cmd *c = shim_calloc(1, sizeof *c);
        if (!c)
            break;
        c->type = CMD_CONTROL;
        c->u.ctl = r;
        if (shim_engine_push_locked(&G.e[j], c) == 0) {
            shim_mutex_unlock(&G.mu);
            return;
        }
    }
    if (k == 0) {
        shim_mutex_unlock(&G.mu);
        finish(e, r);
        return;
    }
    cmd *c = shim_calloc(1, sizeof *c);
    int err = -ENOMEM;
    if (c) {
        c->type = CMD_CONTROL;
        c->u.ctl = r;
        err = shim_engine_push_locked(&G.e[0], c);
    }
    shim_mutex_unlock(&G.mu);
    if (err && shim_fds_apart()) {
        /* r->fd is a number of engine 0's own table, not this one's
         * (enginestart.c): left to engine 0, which no longer takes
         * commands (broken, or a keeper's that retired) */
        shim_free(r->buf);
        shim_free(r);
        atomic_fetch_sub(&nclients, 1);
    } else if (err) {
        req_free(r);
    }
}

void shim_control_cmd(struct engine *e, void *req)
{
    ctl_req *r = req;
    if (e == &G.e[0]) {
        /* engine 0 adds its part at accept: this is the way back */
        finish(e, r);
        return;
    }
    put_engine(r, e);
    forward(e, r);
}

void shim_control_pass(struct engine *e, void *req)
{
    if (e == &G.e[0])
        req_free(req); /* nobody left to send it */
    else
        forward(e, req);
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
        ssize_t w = real_send(fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)w;
    }
    shim_close_owned(fd);
}

/* accept4 failed for want of something (EMFILE, ENFILE, ENOBUFS, ENOMEM):
 * the listener, level-triggered, would wake engine 0 at once, again and
 * again. Out of epoll's interest for CTL_REARM (shim_control_timer). */
static void pause_accepting(struct engine *e, rudp_time now, int err)
{
    struct epoll_event ee = {.events = 0, .data.ptr = &L.obj};
    real_epoll_ctl(e->epfd, EPOLL_CTL_MOD, L.fd, &ee);
    L.rearm_at = now + CTL_REARM;
    SHIM_LOG(RUDP_LOG_INFO, "control socket for rudp-stat: accept: %s; again in 1 s",
             shim_strerror(err));
}

static void on_accept(struct engine *e)
{
    rudp_time now = shim_now();
    /* At most CTL_ACCEPTS a turn: the listener is level-triggered, the rest
     * come back next turn, and a flood of connects cannot hold the engine. */
    for (int i = 0; i < CTL_ACCEPTS; i++) {
        int fd = real_accept4(L.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                pause_accepting(e, now, errno);
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
        if (atomic_load(&nclients) >= CTL_CLIENTS)
            drop_stale(e, now);
        if (atomic_load(&nclients) >= CTL_CLIENTS) {
            refuse(fd, "rudp-stat: process %d is busy with other requests, try again\n",
                   (int)getpid());
            continue;
        }
        ctl_req *r = shim_calloc(1, sizeof *r);
        char *buf = shim_malloc(CTL_FIRST_BUF);
        if (!r || !buf) {
            shim_free(r);
            shim_free(buf);
            shim_close_owned(fd);
            continue;
        }
        atomic_fetch_add(&nclients, 1);
        shim_watch_set(&r->obj.w, &ctl_ops);
        r->obj.kind = CTL_CLIENT;
        r->fd = fd;
        r->born = now;
        r->buf = buf;
        r->cap = CTL_FIRST_BUF;
        int sz = CTL_SNDBUF;
        real_setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        put_header(r);
        put_engine(r, e);
        forward(e, r);
    }
}

/* Engine 0's epoll reported an event on the control socket or a request
 * (hooks.h). */
static void ctl_event(void *obj, uint32_t events, rudp_time now)
{
    (void)now;
    struct engine *e = &G.e[0];
    ctl_obj *o = obj;
    if (o->kind == CTL_LISTENER) {
        on_accept(e);
        return;
    }
    ctl_req *r = (ctl_req *)o; /* its first member */
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) || !flush(r))
        return;
    unlink_writing(e, r);
    req_free(r);
}

static const shim_watch_ops ctl_ops = {.event = ctl_event};

rudp_time shim_control_timer(struct engine *e, rudp_time now)
{
    rudp_time next = RUDP_TIME_NEVER;
    if (L.rearm_at && L.fd >= 0) {
        if (now >= L.rearm_at) {
            struct epoll_event ee = {.events = EPOLLIN, .data.ptr = &L.obj};
            real_epoll_ctl(e->epfd, EPOLL_CTL_MOD, L.fd, &ee);
            L.rearm_at = 0;
        } else {
            next = L.rearm_at;
        }
    }
    if (L.writing) {
        rudp_time t = drop_stale(e, now);
        if (t < next)
            next = t;
    }
    return next;
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
    shim_watch_set(&L.obj.w, &ctl_ops);
    L.obj.kind = CTL_LISTENER;
    L.fd = fd;
    L.opened = shim_now();
    L.rearm_at = 0;
    L.writing = NULL;
    struct epoll_event ee = {.events = EPOLLIN, .data.ptr = &L.obj};
    what = "epoll_ctl";
    if (real_epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ee) < 0) {
        shim_close_owned(fd);
        L.fd = fd = -1;
        goto fail;
    }
    return;
fail:
    SHIM_LOG(RUDP_LOG_INFO, "no control socket for rudp-stat: %s: %s", what, shim_strerror(errno));
    if (fd >= 0)
        real_close(fd);
}

int shim_control_fd(void)
{
    return L.fd;
}

void shim_control_close(struct engine *e)
{
    if (L.fd >= 0) {
        real_epoll_ctl(e->epfd, EPOLL_CTL_DEL, L.fd, NULL);
        shim_close_owned(L.fd);
        L.fd = -1;
    }
    L.rearm_at = 0;
    while (L.writing) {
        ctl_req *r = L.writing;
        L.writing = r->next;
        real_epoll_ctl(e->epfd, EPOLL_CTL_DEL, r->fd, NULL);
        req_free(r);
    }
}

void shim_control_reopen(struct engine *e)
{
    /* The keeper's copies: the parent's listener and the reports it was
     * writing or passing along the engines' queues (their readers asked the
     * parent, which is gone). The epoll instance is shared with the
     * parent: take them out of it first (shim_control_close). The engines
     * are still: nothing else runs yet. */
    shim_control_close(e);
    shim_mutex_lock(&G.mu);
    for (int k = 0; k < G.nrun; k++) {
        struct engine *x = &G.e[k];
        cmd **pp = &x->q_head;
        x->q_tail = NULL;
        while (*pp) {
            cmd *c = *pp;
            if (c->type == CMD_CONTROL) {
                *pp = c->next;
                req_free(c->u.ctl);
                shim_free(c);
            } else {
                x->q_tail = c;
                pp = &c->next;
            }
        }
    }
    shim_mutex_unlock(&G.mu);
    atomic_store(&nclients, 0);
    if (!e->broken)
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
