/*
 * fallback.c: RUDP_FALLBACK=tcp. A connect whose rudp handshake is refused
 * (an ICMP port unreachable: nothing listens for UDP there) or unanswered
 * within the probe delay goes over kernel TCP instead, so that a program
 * under the shim still reaches every server that does not run it.
 *
 * The race is happy eyeballs' (RFC 8305): rudp starts at once; kernel TCP
 * starts when rudp is refused, or when the probe delay (PROBE_DELAY plus
 * the smoothed RTT last seen to that destination) passes without an
 * answer; the first to complete wins, and rudp wins a tie (it completing
 * first stops the TCP attempt). The TCP attempt uses the app's own socket,
 * kept by connect() with every option and the address the app bound it
 * to; when it connects, the front end's place (state.h; locally
 * shim_fd_swap_in, appfd.c) puts it at the app's fd number in place of the
 * bridge, carrying over the fd's flags and the app's epoll registrations
 * (epollreg.c). The app sees one connect: a
 * blocking one returns 0, a non-blocking one reports EPOLLOUT/POLLOUT, and
 * from then on the fd is a plain kernel TCP socket, the shim out of its
 * way. A destination reached this way is remembered for REMEMBER: connects
 * to it meanwhile go straight to kernel TCP (connect.c).
 *
 * The connect timeout (RUDP_CONNECT_TIMEOUT) bounds the whole race, as
 * SO_SNDTIMEO-less TCP's SYN retries bound a kernel connect: kernel TCP,
 * started late, gets what is left of the budget, and at its end the
 * engine closes the TCP socket and fails the connect with ETIMEDOUT. The
 * engine's deadline, not TCP_USER_TIMEOUT or TCP_SYNCNT on the socket:
 * those are the app's options on the app's own socket, which is its
 * connection if TCP wins (a value of ours would outlive the connect, or
 * overwrite one the app chose), and SYN retries come at 1, 3, 7, 15 s,
 * so no count ends a 5 s budget within a second of it.
 *
 * What this gives up, by design: a peer that runs the shim but whose UDP is
 * blocked is reached over TCP (said at warn once per destination, as for
 * a plain TCP server: the user asked for rudp; every one at info); with a
 * key the fallback is off unless asked (RUDP_FALLBACK=tcp), since anyone
 * who can drop UDP could otherwise force plaintext TCP (README).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "base/poison.h"

#define PROBE_DELAY RUDP_MS(250)
#define REMEMBER RUDP_SEC(120)
#define SWAP_RETRY RUDP_MS(1) /* connect() is between two lines: see shim_fd_swap_in */

typedef struct fallback {
    shim_watch w;             /* first, for epoll dispatch */
    bridge *b;
    int tfd;                  /* the app's TCP socket, -1 once closed */
    int watching;             /* tfd is in the engine's epoll */
    int app_fd;               /* where it goes: this fd number ... */
    uint64_t app_ino;         /* ... while it holds the app end */
    struct sockaddr_storage to;
    socklen_t to_len;
    rudp_addr peer;           /* the same, for the memo and the log */
    rudp_time begun;          /* when connect() was called (about) */
    rudp_time deadline;       /* ... plus the connect timeout: the race ends then */
    rudp_time ended;          /* when the deadline ended it (0: it did not) */
    rudp_time probe_at;       /* start TCP then, unless rudp answered; or NEVER */
    rudp_time probe_wait;     /* ... that long after begun */
    rudp_time tcp_begun;      /* when TCP started, 0: not started */
    rudp_time retry_at;       /* TCP connected: swap (again) then, or NEVER */
    int graced;               /* ... after rudp had its grace */
    int rudp_err;             /* the rudp attempt ended with this (-errno), 0 if not */
    int tcp_err;              /* the TCP attempt ended with this (errno), 0 if not */
    int tcp_up;               /* the TCP attempt connected: the deadline is met */
    int waited;               /* the probe delay passed, TCP not tried: the peer runs rudp */
    int handed;               /* in a keeper: TCP won, sent to the new image (exechand.c) */
    int relay;                /* the app's fd is another table's: TCP is relayed (adopt.c) */
    rudp_time hand_wait;      /* ... asked for its answer again after this long */
    rudp_time hand_until;     /* ... which must come by then */
    const char *why;          /* why TCP was tried, for the log ... */
    int key_why;              /* ... a key mistake, not a plain server */
    rudp_cause rudp_cause;    /* why rudp failed, once it did ... */
    char rudp_name[160];      /* ... and its connection's name (rudp_conn_name) */
    struct fallback *next;    /* the engine's list */
} fallback;

/* ---- figures: process-wide, printed with the engines' ---- */

_Atomic unsigned shim_fallback_racing;

static _Atomic uint64_t n_refused, n_unanswered, n_remembered, n_tcp, n_rudp_won, n_both;
/* connects rudp could not carry for want of an fd: over kernel TCP, failed */
static _Atomic uint64_t n_nofd_tcp, n_nofd_failed;

/* ---- the memo: which transport worked, per destination ---- */

enum { MEMOS = 256 };
typedef struct memo {
    rudp_addr to;
    int tcp;            /* kernel TCP worked (1) or rudp did (0) */
    uint32_t srtt_us;   /* rudp's smoothed RTT at its handshake */
    rudp_time until;    /* 0: unused */
} memo;
static memo memos[MEMOS];
static shim_mutex memo_mu = SHIM_MUTEX_INITIALIZER;

static int same(const rudp_addr *a, const rudp_addr *b)
{
    return a->family == b->family && a->port == b->port && memcmp(a->ip, b->ip, 16) == 0;
}

/* The memo for `to`, live or not; NULL if none. memo_mu held. */
static memo *memo_find(const rudp_addr *to)
{
    for (int i = 0; i < MEMOS; i++)
        if (memos[i].until && same(&memos[i].to, to))
            return &memos[i];
    return NULL;
}

/* Destinations whose kernel TCP was said at warn (a fallback to it, or a
 * plain TCP server a connect without fallback refused: bridge.c): the
 * last TOLD of them, so that a program that connects to one again and
 * again says it once (then at info, with the rest). memo_mu guards it. */
enum { TOLD = 64 };
static rudp_addr told[TOLD];
static unsigned told_next;

static int told_locked(const rudp_addr *to)
{
    for (int i = 0; i < TOLD; i++)
        if (same(&told[i], to))
            return 1;
    return 0;
}

int shim_fallback_first_telling(const rudp_addr *to)
{
    shim_mutex_lock(&memo_mu);
    int first = !told_locked(to);
    if (first)
        told[told_next++ % TOLD] = *to;
    shim_mutex_unlock(&memo_mu);
    return first;
}

int shim_fallback_told(const rudp_addr *to)
{
    shim_mutex_lock(&memo_mu);
    int was = told_locked(to);
    shim_mutex_unlock(&memo_mu);
    return was;
}

static void remember(const rudp_addr *to, int tcp, uint32_t srtt_us, rudp_time now)
{
    shim_mutex_lock(&memo_mu);
    memo *m = memo_find(to);
    for (int i = 0; !m && i < MEMOS; i++)
        if (!m || memos[i].until < m->until)
            m = &memos[i]; /* else an unused one (until 0), or the oldest */
    *m = (memo){.to = *to, .tcp = tcp, .srtt_us = srtt_us, .until = now + REMEMBER};
    shim_mutex_unlock(&memo_mu);
}

int shim_fallback_remembered(const struct sockaddr *sa)
{
    rudp_addr to;
    shim_to_rudp_addr(sa, &to);
    rudp_time now = shim_now();
    shim_mutex_lock(&memo_mu);
    memo *m = memo_find(&to);
    int tcp = m && m->tcp && m->until > now;
    shim_mutex_unlock(&memo_mu);
    if (tcp) {
        atomic_fetch_add(&n_remembered, 1);
        char peer[64];
        rudp_addr_format(&to, peer, sizeof peer);
        SHIM_LOG(RUDP_LOG_INFO, "connect to %s: over kernel TCP, as a moment ago (no rudp there)",
                 peer);
    }
    return tcp;
}

int shim_fallback_no_fd(const struct sockaddr *sa, const char *where)
{
    rudp_addr to;
    shim_to_rudp_addr(sa, &to);
    char peer[64];
    rudp_addr_format(&to, peer, sizeof peer);
    if (!shim_cfg.fallback) { /* a key's default, or RUDP_FALLBACK=none (config.c) */
        atomic_fetch_add(&n_nofd_failed, 1);
        SHIM_LOG(RUDP_LOG_WARN,
                 "connect to %s: failed (ENOBUFS): no file descriptor left in %s for rudp's "
                 "socket (EMFILE at RLIMIT_NOFILE's hard limit), and %s forbids kernel TCP%s",
                 peer, where, shim_key() ? "the key" : "RUDP_FALLBACK=none",
                 shim_key() ? " (RUDP_FALLBACK=tcp would allow it)" : "");
        return 0;
    }
    atomic_fetch_add(&n_nofd_tcp, 1);
    int first = shim_fallback_first_telling(&to);
    SHIM_LOG(first ? RUDP_LOG_WARN : RUDP_LOG_INFO,
             "connect to %s: over kernel TCP, not rudp: no file descriptor left in %s for "
             "rudp's socket (EMFILE at RLIMIT_NOFILE's hard limit; raise it, ulimit -Hn)%s",
             peer, where,
             first ? ". Said once per destination; RUDP_FALLBACK=none fails such connects instead"
                   : "");
    return 1;
}

void shim_fallback_print(void (*line)(void *, const char *), void *arg)
{
    uint64_t tcp = atomic_load(&n_tcp), rem = atomic_load(&n_remembered);
    uint64_t won = atomic_load(&n_rudp_won), both = atomic_load(&n_both);
    uint64_t nofd_tcp = atomic_load(&n_nofd_tcp), nofd_failed = atomic_load(&n_nofd_failed);
    char text[256];
    if (nofd_tcp || nofd_failed) {
        snprintf(text, sizeof text,
                 "no file descriptor for rudp: connects over kernel TCP %llu, failed %llu",
                 (unsigned long long)nofd_tcp, (unsigned long long)nofd_failed);
        line(arg, text);
    }
    if (!shim_cfg.fallback && !tcp && !rem)
        return;
    snprintf(text, sizeof text,
             "fallback to kernel TCP: connects %llu (rudp refused %llu, unanswered %llu), "
             "remembered %llu; rudp first after TCP was tried %llu; failed both ways %llu",
             (unsigned long long)tcp, (unsigned long long)atomic_load(&n_refused),
             (unsigned long long)atomic_load(&n_unanswered), (unsigned long long)rem,
             (unsigned long long)won, (unsigned long long)both);
    line(arg, text);
    /* where connects go straight to kernel TCP now, at most a few */
    rudp_time now = shim_now();
    size_t n = (size_t)snprintf(text, sizeof text, "kernel TCP remembered for:");
    int listed = 0;
    shim_mutex_lock(&memo_mu);
    for (int i = 0; i < MEMOS && listed < 6; i++) {
        if (!memos[i].tcp || memos[i].until <= now)
            continue;
        char peer[64];
        rudp_addr_format(&memos[i].to, peer, sizeof peer);
        int w = snprintf(text + n, sizeof text - n, " %s (%.0f s)", peer,
                         (double)(memos[i].until - now) / 1e9);
        if (w < 0 || (size_t)w >= sizeof text - n)
            break;
        n += (size_t)w;
        listed++;
    }
    shim_mutex_unlock(&memo_mu);
    if (listed)
        line(arg, text);
}

/* Whether rudp answered this process from `to` within the last REMEMBER;
 * then *srtt_us is the smoothed RTT it had. */
static int rudp_known(const rudp_addr *to, rudp_time now, uint32_t *srtt_us)
{
    shim_mutex_lock(&memo_mu);
    memo *m = memo_find(to);
    int known = m && !m->tcp && m->until > now;
    *srtt_us = known ? m->srtt_us : 0;
    shim_mutex_unlock(&memo_mu);
    return known;
}

static rudp_time probe_delay(const rudp_addr *to, rudp_time now)
{
    uint32_t srtt_us;
    rudp_known(to, now, &srtt_us);
    return PROBE_DELAY + RUDP_US(srtt_us);
}

/* ---- one connect's race ---- */

static void log_fb(int level, const fallback *f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void log_fb(int level, const fallback *f, const char *fmt, ...)
{
    if (shim_cfg.log_level < level)
        return;
    char peer[64], text[256];
    rudp_addr_format(&f->peer, peer, sizeof peer);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    shim_log(level, "connect to %s: %s", peer, text);
}

/* A connect that went over kernel TCP: a user who asked for rudp wants to
 * know, once per destination, at warn (the default level); every one at
 * info. Counted in n_tcp (--stats, rudp-stat). */
static void said_tcp(const fallback *f, rudp_time now, const char *how)
{
    int first = shim_fallback_first_telling(&f->peer);
    log_fb(first ? RUDP_LOG_WARN : RUDP_LOG_INFO, f,
           "connected over kernel TCP, not rudp, in %.1f ms (%s%s)%s%s",
           (double)(now - f->begun) / 1e6, f->why,
           f->key_why ? "" : ": a plain TCP server, not under the shim, or UDP blocked?", how,
           first ? ". Said once per destination; RUDP_FALLBACK=none fails such connects instead"
                 : "");
}

static void schedule(struct engine *e, rudp_time at)
{
    if (at < e->fallback_at)
        e->fallback_at = at;
}

static void close_tcp(fallback *f)
{
    if (f->tfd < 0)
        return;
    if (f->watching)
        real_epoll_ctl(f->b->e->epfd, EPOLL_CTL_DEL, f->tfd, NULL);
    f->watching = 0;
    shim_close_owned(f->tfd);
    f->tfd = -1;
}

void shim_fallback_cancel(const shim_connect_req *r)
{
    if (r->tcp_fd < 0)
        return;
    shim_close_owned(r->tcp_fd);
    atomic_fetch_sub(&shim_fallback_racing, 1);
}

static const shim_watch_ops fallback_ops;

void shim_fallback_start(bridge *b, const shim_connect_req *r, rudp_time now)
{
    fallback *f = shim_calloc(1, sizeof *f);
    if (!f) {
        shim_fallback_cancel(r); /* rudp alone, as with RUDP_FALLBACK=none */
        return;
    }
    shim_watch_set(&f->w, &fallback_ops);
    f->b = b;
    f->tfd = r->tcp_fd;
    f->app_fd = r->swap_fd;
    f->app_ino = r->swap_ino;
    f->relay = r->relay;
    f->to = r->tcp_to;
    f->to_len = r->tcp_to_len;
    f->peer = r->peer;
    f->begun = now;
    f->deadline = now + r->cfg.connect_timeout;
    f->probe_wait = probe_delay(&r->peer, now);
    f->probe_at = now + f->probe_wait;
    f->retry_at = RUDP_TIME_NEVER;
    f->next = b->e->fallbacks;
    b->e->fallbacks = f;
    b->fb = f;
    schedule(b->e, f->probe_at < f->deadline ? f->probe_at : f->deadline);
}

static void tcp_failed(fallback *f, int err, rudp_time now);
static void tcp_connected(fallback *f, rudp_time now);

static void start_tcp(fallback *f, const char *why, rudp_time now)
{
    f->probe_at = RUDP_TIME_NEVER;
    f->tcp_begun = now;
    f->why = why;
    log_fb(RUDP_LOG_INFO, f, "%s; trying kernel TCP (%.2f s left of the connect timeout)", why,
           (double)(f->deadline - now) / 1e9);
    schedule(f->b->e, f->deadline);
    int fl = real_fcntl(f->tfd, F_GETFL);
    if (fl < 0 || real_fcntl(f->tfd, F_SETFL, fl | O_NONBLOCK) < 0) {
        tcp_failed(f, errno, now);
        return;
    }
    if (real_connect(f->tfd, (struct sockaddr *)&f->to, f->to_len) == 0) {
        tcp_connected(f, now);
        return;
    }
    if (errno != EINPROGRESS) {
        tcp_failed(f, errno, now);
        return;
    }
    struct epoll_event ee = {.events = EPOLLOUT, .data.ptr = f};
    if (real_epoll_ctl(f->b->e->epfd, EPOLL_CTL_ADD, f->tfd, &ee) < 0) {
        tcp_failed(f, errno, now);
        return;
    }
    f->watching = 1;
}

/* Kernel TCP connected while rudp, which sent a SYN with TCP's, still
 * tries: rudp wins a tie, so its answer, which the same path brings about
 * as fast, gets twice the time TCP took (and 1 ms) before TCP is taken,
 * but no more than the connect timeout leaves. */
static void give_rudp_grace(fallback *f, rudp_time now)
{
    f->graced = 1;
    f->retry_at = now + 2 * (now - f->tcp_begun) + RUDP_MS(1);
    if (f->retry_at > f->deadline)
        f->retry_at = f->deadline > now ? f->deadline : now;
    schedule(f->b->e, f->retry_at);
}

/* The connect timeout ran out with neither rudp nor kernel TCP connected:
 * the TCP attempt goes (its SYNs would go on for two minutes: tcp_syn_retries)
 * and the connect fails with ETIMEDOUT, as a kernel connect whose SYNs
 * went unanswered; or with what kernel TCP said, if it failed already and
 * rudp was only being waited for. */
static void out_of_time(fallback *f, rudp_time now)
{
    f->probe_at = f->retry_at = RUDP_TIME_NEVER;
    f->ended = now;
    close_tcp(f);
    if (!f->tcp_err)
        f->tcp_err = ETIMEDOUT;
    atomic_fetch_add(&n_both, 1);
    log_fb(RUDP_LOG_DEBUG, f, "the connect timeout ran out after %.2f s",
           (double)(now - f->begun) / 1e9);
    shim_bridge_fail(f->b, -ETIMEDOUT);
}

/* Kernel TCP failed. The connect fails with TCP's errno, what the app would
 * have had without the shim, unless rudp may still make it: a peer that
 * answered rudp gets the rest of its handshake; one that has not gets until
 * RUDP_SLOW_CONNECT (3 s) after connect() to answer (a lossy path loses
 * SYNs; a shim server may take no plain TCP: RUDP_ACCEPT_TCP=0, keyed).
 * Longer would be the whole handshake budget (RUDP_CONNECT_TIMEOUT, 30 s)
 * for an app that, without the shim, had its ECONNREFUSED at once. */
static void tcp_failed(fallback *f, int err, rudp_time now)
{
    close_tcp(f);
    f->tcp_err = err ? err : ECONNREFUSED;
    bridge *b = f->b;
    if (b->conn && !f->rudp_err &&
        (rudp_conn_answered(b->conn) || now < f->begun + RUDP_SLOW_CONNECT)) {
        f->retry_at = rudp_conn_answered(b->conn) ? RUDP_TIME_NEVER : f->begun + RUDP_SLOW_CONNECT;
        schedule(b->e, f->retry_at);
        log_fb(RUDP_LOG_DEBUG, f, "kernel TCP failed (%s); waiting for rudp a while",
               shim_strerror(f->tcp_err));
        return; /* rudp ends it: established, or failed */
    }
    atomic_fetch_add(&n_both, 1);
    log_fb(RUDP_LOG_INFO, f, "kernel TCP failed too: %s", shim_strerror(f->tcp_err));
    shim_bridge_fail(b, -f->tcp_err);
}

/* The new image answers within milliseconds once its shim runs; it may
 * still be loading when TCP wins. Asked at growing intervals, at most
 * HAND_WAIT after the send. */
#define HAND_FIRST RUDP_MS(1)
#define HAND_EVERY_MAX RUDP_MS(100)
#define HAND_WAIT RUDP_SEC(10)

/* What exechand.c does for a keeper's connect that kernel TCP won, through
 * the hooks the lifetime layer registered (hooks.h). */
static int tcp_relay(int efd, int tfd, uint32_t slot)
{
    const shim_lifetime_ops *lt = shim_hook.lifetime;
    return lt && lt->tcp_relay ? lt->tcp_relay(efd, tfd, slot) : -ENOSYS;
}

static int image_live(void)
{
    const shim_lifetime_ops *lt = shim_hook.lifetime;
    return lt && lt->image_live && lt->image_live();
}

static int image_send(int tfd, int app_fd, uint64_t app_ino, uint32_t slot, uint64_t id)
{
    const shim_lifetime_ops *lt = shim_hook.lifetime;
    return lt && lt->image_send ? lt->image_send(tfd, app_fd, app_ino, slot, id) : -ENOSYS;
}

static int image_answer(uint64_t id, int *result)
{
    const shim_lifetime_ops *lt = shim_hook.lifetime;
    return lt && lt->image_answer ? lt->image_answer(id, result) : -1;
}

/* TCP won in a keeper with no new image to take the socket (an exit), or
 * one that did not take it: the keeper carries the connection on between
 * the bridge's end, which a forked child or the image may hold, and the
 * TCP socket (exechand.c). The same for a connect of a child with an fd
 * table of its own (adopt.c), whose fd no engine can put a socket at. The
 * app's end becomes writable as when rudp connects: the filler goes. */
static void keeper_relays(fallback *f, int tfd, rudp_time now)
{
    bridge *b = f->b;
    while (b->filler) {
        uint8_t buf[4096];
        ssize_t r = real_read(b->efd, buf, b->filler < sizeof buf ? b->filler : sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        b->filler -= (size_t)r;
    }
    shim_slot *s = b->slot != UINT32_MAX ? shim_slot_get(b->slot, b->id) : NULL;
    uint32_t kept = UINT32_MAX; /* a live process's relay retires it when it ends */
    if (s) {
        atomic_fetch_and(&s->flags, ~(SHIM_SLOT_F_SWAP | SHIM_SLOT_F_FILLER));
        atomic_store(&s->so_error, 0);
        atomic_store(&s->state, SHIM_SLOT_ESTABLISHED);
        kept = G.keeper_mode ? UINT32_MAX : b->slot;
        b->slot = UINT32_MAX; /* it stays the holders' for SO_ERROR: not retired now */
    }
    /* a limit below SHIM_FD_BASE: lower (the relay failed there, and the
     * connection with it) */
    int efd = shim_fd_dup_high(b->efd);
    if (efd >= 0)
        shim_own_fd(efd, 1);
    if (efd < 0 || tcp_relay(efd, tfd, kept) < 0) {
        log_fb(RUDP_LOG_WARN, f, "cannot relay the kernel TCP connection");
        if (efd >= 0)
            shim_close_owned(efd);
        shim_close_owned(tfd);
    } else {
        if (!f->handed) { /* else counted and said when handed */
            atomic_fetch_add(&n_tcp, 1);
            said_tcp(f, now, G.keeper_mode ? "; the keeper carries it on"
                                           : "; relayed to the app's fd in another table");
        }
    }
    shim_bridge_end(b, now); /* its end lives on in the relay */
}

/* Takes the TCP socket out of f (the caller's now, still engine-owned). */
static int take_tcp(fallback *f)
{
    int tfd = f->tfd;
    if (f->watching)
        real_epoll_ctl(f->b->e->epfd, EPOLL_CTL_DEL, tfd, NULL);
    f->watching = 0;
    f->tfd = -1;
    return tfd;
}

/* TCP won in a keeper after exec: send the socket to the new image, then
 * wait for its answer; the bridge ends only after the swap, so that a
 * poller of the old end wakes to find the TCP socket. Returns 1 if this
 * handled the connect (for now or for good). */
static int keeper_hands(fallback *f, rudp_time now)
{
    bridge *b = f->b;
    if (!G.keeper_mode)
        return 0;
    if (!image_live() && !f->handed) {
        keeper_relays(f, take_tcp(f), now);
        return 1;
    }
    if (!f->handed) {
        int r = image_send(f->tfd, f->app_fd, f->app_ino, b->slot, b->id);
        if (r < 0) {
            log_fb(RUDP_LOG_INFO, f, "cannot hand kernel TCP to the new image: %s", shim_strerror(-r));
            keeper_relays(f, take_tcp(f), now);
            return 1;
        }
        /* Ours stays until the answer: relayed if the image does not take it. */
        atomic_fetch_add(&n_tcp, 1);
        said_tcp(f, now, "; handed to the new image");
        f->handed = 1;
        f->hand_wait = HAND_FIRST;
        f->hand_until = now + HAND_WAIT;
    }
    int result = 0;
    int got = image_answer(b->id, &result);
    if (got == 0 && now < f->hand_until) {
        f->retry_at = now + f->hand_wait;
        f->hand_wait = f->hand_wait * 2 < HAND_EVERY_MAX ? f->hand_wait * 2 : HAND_EVERY_MAX;
        schedule(b->e, f->retry_at);
        return 1;
    }
    f->retry_at = RUDP_TIME_NEVER;
    if (got != 1) { /* no shim took it: the new image runs none, or no longer */
        log_fb(RUDP_LOG_INFO, f, "the new image did not take the kernel TCP socket");
        keeper_relays(f, take_tcp(f), now);
        return 1;
    }
    if (result != 1)
        log_fb(RUDP_LOG_DEBUG, f, "the app closed its socket meanwhile");
    shim_bridge_end(b, now);
    return 1;
}

static void tcp_connected(fallback *f, rudp_time now)
{
    bridge *b = f->b;
    f->tcp_up = 1;
    if (b->conn && !f->rudp_err && !f->graced) {
        give_rudp_grace(f, now); /* rudp wins a tie; then the swap, by the same timer */
        return;
    }
    if (keeper_hands(f, now))
        return;
    if (f->relay) {
        remember(&f->peer, 1, 0, now);
        keeper_relays(f, take_tcp(f), now);
        return;
    }
    shim_slot *s = b->slot != UINT32_MAX ? shim_slot_get(b->slot, b->id) : NULL;
    int (*place)(shim_slot *, int, uint64_t, int) = shim_front()->place; /* set: not relayed */
    int r = s && place ? place(s, f->app_fd, f->app_ino, f->tfd) : -1;
    if (r == 0) {
        f->retry_at = now + SWAP_RETRY;
        schedule(b->e, f->retry_at);
        return;
    }
    f->retry_at = RUDP_TIME_NEVER;
    if (r < 0) {
        log_fb(RUDP_LOG_DEBUG, f, "the app closed its socket meanwhile");
        shim_bridge_end(b, now);
        return;
    }
    atomic_fetch_add(&n_tcp, 1);
    remember(&f->peer, 1, 0, now);
    said_tcp(f, now, "");
    shim_bridge_end(b, now); /* closes the bridge: anyone polling the old end wakes */
}

int shim_fallback_rudp_failed(bridge *b, int *err, rudp_time now)
{
    fallback *f = b->fb;
    if (f->tcp_err) {
        /* what kernel TCP said is what the app expects, unless the peer
         * answered rudp: then rudp's own failure is the truer one */
        if (!(b->conn && rudp_conn_answered(b->conn)))
            *err = -f->tcp_err;
        return 0;
    }
    f->rudp_err = *err;
    rudp_cause cause = b->conn ? rudp_conn_cause(b->conn) : RUDP_CAUSE_NONE;
    f->rudp_cause = cause;
    if (b->conn) /* the connect-failed line names it still (bridge.c) */
        rudp_conn_name(b->conn, f->rudp_name, sizeof f->rudp_name);
    if (b->conn) {
        rudp_conn_set_user(b->conn, NULL);
        rudp_conn_release(b->conn, now);
        b->conn = NULL;
    }
    if (f->tcp_up) { /* connected, rudp's grace running: TCP now */
        f->retry_at = now;
        schedule(b->e, now);
        return 1;
    }
    /* rudp's handshake timeout is the connect timeout, begun with this race */
    int spent = now >= f->deadline || cause == RUDP_CAUSE_HANDSHAKE_TIMEOUT ||
                cause == RUDP_CAUSE_NO_AUTH_ANSWER;
    if (f->tcp_begun && !spent)
        return 1; /* TCP is on its way already, with what is left of the budget */
    if (spent) { /* nothing left for TCP, started or not */
        f->ended = now;
        close_tcp(f);
        f->tcp_err = ETIMEDOUT;
        atomic_fetch_add(&n_both, 1);
        *err = -ETIMEDOUT;
        return 0;
    }
    if (cause == RUDP_CAUSE_ICMP || cause == RUDP_CAUSE_REFUSED ||
        cause == RUDP_CAUSE_KEY_REQUIRED) {
        atomic_fetch_add(&n_refused, 1);
        f->key_why = cause == RUDP_CAUSE_KEY_REQUIRED;
        start_tcp(f,
                  cause == RUDP_CAUSE_ICMP    ? "no rudp listener (ICMP port unreachable)"
                  : cause == RUDP_CAUSE_REFUSED ? "its shim has no rudp listener there (refused)"
                                                : "its rudp listener requires a key "
                                                  "(RUDP_KEY_FILE), and this end has none",
                  now);
    } else {
        atomic_fetch_add(&n_unanswered, 1);
        start_tcp(f, "rudp failed", now);
    }
    return 1;
}

static void unlink_fb(fallback *f)
{
    struct engine *e = f->b->e;
    for (fallback **pp = &e->fallbacks; *pp; pp = &(*pp)->next) {
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    }
}

const char *shim_fallback_rudp_said(const bridge *b, rudp_cause *cause)
{
    const fallback *f = b->fb;
    if (!f || !f->rudp_name[0])
        return NULL;
    *cause = f->rudp_cause;
    return f->rudp_name;
}

int shim_fallback_timeout_said(const bridge *b, int err, char *text, size_t n)
{
    const fallback *f = b->fb;
    if (!f || !f->ended || err != -ETIMEDOUT)
        return 0;
    char peer[64], rudp_part[160] = "";
    rudp_addr_format(&f->peer, peer, sizeof peer);
    double spent = (double)(f->ended - f->begun) / 1e9;
    if (f->rudp_err && f->rudp_cause != RUDP_CAUSE_HANDSHAKE_TIMEOUT &&
        f->rudp_cause != RUDP_CAUSE_NO_AUTH_ANSWER && f->rudp_cause != RUDP_CAUSE_NONE)
        snprintf(rudp_part, sizeof rudp_part, " (rudp: %s)", rudp_cause_text(f->rudp_cause));
    if (f->tcp_begun)
        snprintf(text, n,
                 "Connection timed out: no answer from %s in %.1f s (the connect timeout), "
                 "neither over rudp%s nor over kernel TCP (tried for the last %.1f s): is the "
                 "host down, or everything to it dropped?",
                 peer, spent, rudp_part, (double)(f->ended - f->tcp_begun) / 1e9);
    else if (f->waited)
        snprintf(text, n,
                 "Connection timed out: no rudp handshake completed with %s in %.1f s (the "
                 "connect timeout)%s; kernel TCP was not tried, %s runs rudp (it answered, in "
                 "this connect or another lately)",
                 peer, spent, rudp_part, peer);
    else
        snprintf(text, n,
                 "Connection timed out: no answer from %s in %.1f s (the connect timeout) "
                 "over rudp%s, and no time left for kernel TCP (tried only after %.2f s without "
                 "an answer): UDP blocked, or the peer does not run the shim?",
                 peer, spent, rudp_part, (double)f->probe_wait / 1e9);
    return 1;
}

void shim_fallback_free(bridge *b)
{
    fallback *f = b->fb;
    close_tcp(f);
    unlink_fb(f);
    b->fb = NULL;
    /* buried, not freed: an event of its TCP socket may still be due in
     * the batch being dispatched (rudp won in the same one) */
    shim_engine_bury(b->e, f, &f->w.type);
    atomic_fetch_sub(&shim_fallback_racing, 1);
    if (shim_hook.lifetime && shim_hook.lifetime->race_ended)
        shim_hook.lifetime->race_ended(); /* exechand.c */
}

void shim_fallback_rudp_won(bridge *b, rudp_time now)
{
    fallback *f = b->fb;
    if (f->tcp_begun) {
        atomic_fetch_add(&n_rudp_won, 1);
        log_fb(RUDP_LOG_INFO, f, "rudp answered first; kernel TCP attempt dropped");
    }
    uint32_t srtt = 0;
    if (b->conn) {
        rudp_conn_info i;
        rudp_conn_get_info(b->conn, &i);
        srtt = (uint32_t)i.rtt_us;
    }
    remember(&f->peer, 0, srtt, now);
    shim_slot *s = b->slot != UINT32_MAX ? shim_slot_get(b->slot, b->id) : NULL;
    if (s) /* no swap: the app's fd stays ours, its epoll_ctl unnoted (the engine is
            * the only one to act on the flag: no lock needed to clear it) */
        atomic_fetch_and(&s->flags, ~SHIM_SLOT_F_SWAP);
    shim_fallback_free(b);
}

/* Epoll reported the TCP socket of fallback obj (the engine's epoll,
 * hooks.h). */
static void fallback_event(void *obj, uint32_t events, rudp_time now)
{
    fallback *f = obj;
    int err = 0;
    socklen_t el = sizeof err;
    if (real_getsockopt(f->tfd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
        err = errno;
    if (!err && !(events & EPOLLOUT))
        return;
    real_epoll_ctl(f->b->e->epfd, EPOLL_CTL_DEL, f->tfd, NULL);
    f->watching = 0;
    if (err)
        tcp_failed(f, err, now);
    else
        tcp_connected(f, now);
}

static const shim_watch_ops fallback_ops = {.event = fallback_event};

/* The probe delay ran out with no SYNACK. A peer that answered this
 * connect at all (a RETRY) runs rudp and is only slow (a burst of
 * connects, a busy server, a lost datagram): racing TCP there would move a
 * shim peer's connections to TCP the moment it is loaded, so this connect
 * waits for rudp alone (and tries TCP only if rudp is refused). One that
 * answered another connect of ours lately but not this one is given until
 * RUDP_SLOW_CONNECT (3 s) after connect(), when the core says it is
 * unanswered, before TCP starts: its UDP may have been blocked since, and
 * TCP must still have some of the connect timeout left. Otherwise TCP
 * starts, and rudp sends its SYN again at the same moment, so that a SYN
 * lost on a lossy path does not hand the race to TCP. */
static void probe_due(fallback *f, rudp_time now)
{
    bridge *b = f->b;
    f->probe_at = RUDP_TIME_NEVER;
    uint32_t srtt_us;
    if (b->conn && rudp_conn_answered(b->conn)) {
        log_fb(RUDP_LOG_DEBUG, f, "no rudp answer yet, but the peer runs rudp: waiting for it");
        f->waited = 1;
        return;
    }
    if (b->conn && rudp_known(&f->peer, now, &srtt_us) && now < f->begun + RUDP_SLOW_CONNECT) {
        log_fb(RUDP_LOG_DEBUG, f, "no rudp answer yet from a peer that answered rudp lately: "
                                  "kernel TCP only if none comes by %.0f s",
               (double)RUDP_SLOW_CONNECT / 1e9);
        f->waited = 1;
        f->probe_at = f->begun + RUDP_SLOW_CONNECT;
        schedule(b->e, f->probe_at);
        return;
    }
    atomic_fetch_add(&n_unanswered, 1);
    int unauth = b->conn && rudp_conn_unauth_answers(b->conn);
    if (b->conn)
        rudp_conn_handshake_again(b->conn, now);
    f->key_why = unauth;
    start_tcp(f,
              unauth     ? "only rudp answers without this end's key: a server with another key or "
                           "none (RUDP_KEY_FILE)"
              : f->waited ? "no rudp answer in 3 s from a peer that answered rudp lately"
                          : "no rudp answer within the probe delay",
              now);
}

void shim_fallback_timer(struct engine *e, rudp_time now)
{
    e->fallback_at = RUDP_TIME_NEVER;
    fallback *f = e->fallbacks;
    while (f) {
        fallback *next = f->next; /* f may be freed */
        if (!f->tcp_up)
            schedule(e, f->deadline); /* if f lives on; a spare run else */
        if (!f->tcp_up && f->deadline <= now) {
            out_of_time(f, now);
        } else if (f->probe_at <= now) {
            probe_due(f, now);
        } else if (f->retry_at <= now) {
            f->retry_at = RUDP_TIME_NEVER;
            if (f->tcp_err)
                tcp_failed(f, f->tcp_err, now);
            else
                tcp_connected(f, now);
        } else {
            schedule(e, f->probe_at < f->retry_at ? f->probe_at : f->retry_at);
        }
        f = next;
    }
}
