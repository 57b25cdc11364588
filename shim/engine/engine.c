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
 * Here: the loop and the UDP sockets (esock: a listener's socket held
 * while its SO_REUSEPORT group lives); reading them is udprx.c's. The
 * commands, and whether a closed listener lives on in another process,
 * are enginecmd.c's;
 * the core's context with its callbacks (the core's output to the sockets)
 * and an engine's start, enginestart.c's. The bridges, each joining an
 * application's unix socket to one rudp connection, are bridge.c's: the
 * loop hands them their epoll events and the core's events for their
 * connections.
 *
 * Application threads talk to the engine through a locked command queue
 * (connect, listen, listener closed, exit) and read per-connection state
 * from shared slots (slots.c). What happens to the engine at fork, exec
 * and exit is enginectl.c's and keeper.c's; the state they share is in
 * types.h. The features above the engine (a listener's port, a process's
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
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "enginepriv.h"
#include "udpio.h"

#include "base/poison.h"

struct engines G = {
    .mu = SHIM_MUTEX_INITIALIZER,
    .cv = PTHREAD_COND_INITIALIZER,
};

/* Ids of connections, listeners and sockets. A connection is found by its
 * slot index and id (state.h), and the slab of slots by its owner's pid: a
 * forked worker's own slab counts its indexes from 0 again, and an exec'd
 * image's from 0 beside the adopted one of the same pid. So each process
 * image draws where its ids start (and a forked child again,
 * shim_engine_ids_anew): with a counter inherited at fork, a prefork
 * worker's own upstream connection and a client connection its parent's
 * engine had accepted could have the same index and id, and the worker's
 * writes in memory to the client went to the upstream (a helper's hunt:
 * nginx proxy_pass with upstream keepalive, 1 round in 8). */
static _Atomic uint64_t next_id;

static uint64_t ids_start(void)
{
    uint64_t r = 0;
    /* all six arguments given: shim_sys reads six (a va_arg past those
     * passed reads the caller's frame, which ASan calls an underflow) */
    long a[6] = {(long)(uintptr_t)&r, (long)sizeof r, 0x1 /* GRND_NONBLOCK */, 0, 0, 0};
    if (shim_sys_call(SYS_getrandom, a) != (long)sizeof r)
        r = (uint64_t)getpid() << 32 ^ (uint64_t)shim_now(); /* no getrandom: apart enough */
    return (r >> 2) | 1; /* 62 bits, never 0 */
}

void shim_engine_ids_anew(void)
{
    atomic_store(&next_id, ids_start());
}

uint64_t shim_engine_new_id(void)
{
    if (atomic_load_explicit(&next_id, memory_order_relaxed) == 0) {
        uint64_t none = 0;
        atomic_compare_exchange_strong(&next_id, &none, ids_start());
    }
    return atomic_fetch_add(&next_id, 1);
}

/* ---- sockets ---- */

static const shim_watch_ops udp_ops;

esock *shim_esock_new(struct engine *e, int fd, int family)
{
    esock *s = shim_calloc(1, SHIM_EXT_AT(sizeof *s) + shim_hook.ext.sock);
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
    shim_watch_set(&s->w, &udp_ops);
    s->e = e;
    s->fd = fd;
    s->idx = idx;
    s->sid = shim_engine_new_id();
    s->family = family;
    s->reserve_fd = -1;
    /* ICMP errors come with the datagram they quote (read_errqueue), so
     * the core can tell ours from forged ones. */
    int on = 1;
    if (family == AF_INET6)
        real_setsockopt(fd, SOL_IPV6, IPV6_RECVERR, &on, sizeof on);
    real_setsockopt(fd, SOL_IP, IP_RECVERR, &on, sizeof on);
    /* Don't fragment, and don't let the kernel's path MTU cache (which any
     * ICMP matching the addresses lowers) refuse or cut our datagrams: a
     * datagram too big for the device fails with EMSGSIZE, one too big for
     * the path is lost or earns an ICMP, and core/pmtu.c decides. */
    int probe = IP_PMTUDISC_PROBE;
    real_setsockopt(fd, SOL_IP, IP_MTU_DISCOVER, &probe, sizeof probe);
    if (family == AF_INET6) {
        probe = IPV6_PMTUDISC_PROBE;
        real_setsockopt(fd, SOL_IPV6, IPV6_MTU_DISCOVER, &probe, sizeof probe);
    }
    shim_udpio_setup(e->io, fd);
    struct epoll_event ee = {.events = EPOLLIN, .data.ptr = s};
    if (real_epoll_ctl(e->iofd, EPOLL_CTL_ADD, fd, &ee) < 0) {
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
    shim_acceptq_release(s); /* before its group, which holds the queue, goes */
    /* What is queued for this socket (the RESET of the connection whose
     * end freed it) leaves before the fd is closed and maybe reused; the
     * rest waits for the turn's end (a client's answer to its handshake
     * must not leave before its end turns writable: on_established). */
    shim_udpio_flush_fd(e->io, s->fd);
    shim_bridge_client_gone(s);
    shim_apprecv_sock_closed(s); /* a socket left with the app no more */
    real_epoll_ctl(e->iofd, EPOLL_CTL_DEL, s->fd, NULL);
    shim_fifo_sock_closed(s);
    shim_close_owned(s->fd);
    const shim_listener_ops *lo = shim_hook.listener;
    if (!lo || !lo->keep_reserve || !lo->keep_reserve(s))
        shim_close_owned(s->reserve_fd);
    e->socks[s->idx] = NULL;
    if (s->group && atomic_fetch_sub(&s->group->members, 1) == 1)
        shim_lgroup_free(s->group);
    if (lo && lo->close)
        lo->close(s); /* its member socket, its name, its plain TCP's events */
    shim_engine_bury(e, s, &s->w.type);
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

/* ---- the loop ---- */

static const shim_watch_ops udp_ops = {.event = shim_engine_udp_event};

/* epoll events taken per call, and further calls without sleeping before
 * the turn's timers run (see shim_engine_loop). */
#define EV_MAX 128
#define EV_ROUNDS 31

int shim_engine_io_turn(struct engine *e, rudp_time now)
{
    int total = 0;
    for (int more = 0; more <= EV_ROUNDS; more++) {
        int n = real_epoll_wait(e->iofd, e->ioevs, SHIM_IO_EVENTS, 0);
        e->polls++;
        if (n <= 0)
            break;
        for (int i = 0; i < n; i++) {
            /* one buried earlier in this batch has type 0 */
            shim_watch *w = e->ioevs[i].data.ptr;
            if (w->type == SHIM_WATCHED)
                w->ops->event(w, e->ioevs[i].events, now);
        }
        total += n;
        if (n < SHIM_IO_EVENTS)
            break;
        now = shim_now();
    }
    return total;
}

/* iofd readable, in the engine's own set (engine watches it: io_w). */
static void io_event(void *obj, uint32_t events, rudp_time now)
{
    (void)events;
    shim_engine_io_turn(SHIM_CONTAINER(obj, struct engine, io_w), now);
}

const shim_watch_ops shim_engine_io_ops = {.event = io_event};

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
    shim_engine_answered(e); /* the answers of on_established are out */
    return deadline;
}

rudp_time shim_engine_pump(struct engine *e, rudp_time now)
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


/* A keeper's engine that retires reads its sockets no more, and closes
 * every one of them: a socket left open there takes the datagrams sent to
 * it and nobody answers, where a closed one makes the kernel answer with
 * a port unreachable (icmp.c: a peer's connection then resets, as TCP's
 * RST from a closed socket makes it). A connection this engine left in
 * FIN_WAIT_2 (its FIN acknowledged, the peer's not yet come) kept its
 * client socket open while another engine of the keeper lived on: the
 * peer's FIN, or the data it wrote later, went unanswered, and the peer
 * probed until its linger (60 s) or user timeout (15 min) ended it. When
 * that peer was in the keeper's other engine (a program connected to its
 * own listener) the keeper lived on as long, holding the listener's port
 * (CI, t_supervise_gaps churn, 2026-11-29).
 *
 * A member of a listener's SO_REUSEPORT group (idle, or used by a
 * connection that ended: shim_esock_unref keeps it while another engine's
 * connections live on the group) would still take every datagram the
 * kernel hashes to it: a peer of those connections whose NAT re-mapped its
 * port would land there and be heard by nobody, until it happened to move
 * again. Closed, it leaves the group: the kernel picks among the members
 * still read, whose engines hand over what is not theirs (forward.c).
 * Reserve TCP sockets (engine 0's member holds the port's) stay open, as
 * before, until the keeper ends: the port is still in use by the other
 * engines' connections, as a TCP connection's keeps it. */
static void close_socks(struct engine *e)
{
    for (uint32_t i = 0; i < e->nsocks; i++) {
        esock *s = e->socks[i];
        if (!s)
            continue;
        if (s->group && !s->idle) {
            s->idle = 1;
            atomic_fetch_sub(&s->group->live, 1);
        }
        s->reserve_fd = -1; /* owned: closed with the keeper */
        shim_esock_close(s);
    }
}

/* Whether engine e carries anything a process's death would cut off. */
static int engine_busy(struct engine *e)
{
    /* commands not yet run: a new connection or listener; a rudp-stat
     * request (CMD_CONTROL) or a controller change is no reason to live on */
    for (const cmd *c = e->q_head; c; c = c->next)
        if (c->type != CMD_CONTROL && c->type != CMD_SET_CC && c->type != CMD_SET_MARK &&
            c->type != CMD_SET_BUF && c->type != CMD_SET_CORK && c->type != CMD_SET_TIMEOUTS)
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

/* Whether a keeper's engine may retire: nothing left of its own, nor of
 * any other engine of the keeper. A connection's two ends may be this
 * process's own (a program talking to itself) on two engines: one that
 * retired with its end in TIME_WAIT would close the port its peer's FIN,
 * sent again, still needs an ACK from, and the peer would end on the ICMP
 * error (t_many_pairs, 140 of 7,000 under load). */
static int keeper_may_retire(struct engine *e)
{
    int idle = !engine_busy(e);
    atomic_store_explicit(&e->keeper_idle, idle, memory_order_release);
    if (!idle)
        return 0;
    for (int k = 0; k < G.nrun; k++) {
        struct engine *o = &G.e[k];
        if (o != e && !__atomic_load_n(&o->broken, __ATOMIC_ACQUIRE) &&
            !atomic_load_explicit(&o->keeper_idle, memory_order_acquire))
            return 0;
    }
    return 1;
}

int shim_engine_busy_one(struct engine *e)
{
    return engine_busy(e);
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
    shim_mutex_lock(&G.mu);
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
    shim_mutex_unlock(&G.mu);
    while (mine) {
        cmd *c = mine;
        mine = c->next;
        shim_control_pass(e, c->u.ctl);
        shim_free(c);
    }
    if (e == &G.e[0])
        shim_control_close(e);
}

/* A handoff to a keeper pauses every engine here, between iterations of
 * its loop, where every structure is consistent and queued commands are
 * still in q_head for whoever runs next. */
static void pause_for_handoff(struct engine *e)
{
    /* Read first without G.mu, as every turn passes here: a request set
     * just after is seen at the next turn, which its doorbell brings
     * (enginectl.c). */
    if (!__atomic_load_n(&G.pause_req, __ATOMIC_ACQUIRE))
        return;
    /* writes in memory taken, and none more until the pause ends: a
     * keeper forked meanwhile has them (txring.c) */
    shim_txring_close(e, 1);
    shim_mutex_lock(&G.mu);
    if (G.pause_req && !G.keeper_mode) {
        e->paused = 1;
        pthread_cond_broadcast(&G.cv);
        while (G.pause_req) {
            if (e->park_fn) {
                /* shim_engines_run_parked: on this thread, the lock free
                 * (the work may fork, whose handlers take it) */
                void (*fn)(void *) = e->park_fn;
                void *arg = e->park_arg;
                shim_mutex_unlock(&G.mu);
                fn(arg);
                shim_mutex_lock(&G.mu);
                e->park_fn = NULL;
                pthread_cond_broadcast(&G.cv);
                continue;
            }
            pthread_cond_wait(&G.cv, &G.mu.m);
        }
        e->paused = 0;
        pthread_cond_broadcast(&G.cv); /* resume_locked() waits for this */
    }
    shim_mutex_unlock(&G.mu);
    shim_txring_close(e, 0);
}

/* What the app threads' paths leave the engine at a wake-up; how many
 * sockets it watches again. Bytes kept for a read (apprecv.c, appwhole.c)
 * go on into the bridge by their time (kept_at, SHIM_KEEP_FOR), not at
 * every wake-up: the reader an event loop's wait told takes them in
 * microseconds, and a wake-up for a timer or a doorbell that passed them
 * on counted a keep passed on unread, three of which end keeping (B24:
 * 15-30 % of one end's answers kept, against all of them by their time).
 * Awake anyway, a socket's linger ends (apprecv.c); an event loop's whole
 * set lingers to its lease (appwhole.c): taken back at every wake-up, its
 * messages went through the bridges until the next wait took it again
 * (B24: 85,000 against 125,000 requests/s, 0.09 against 0.02 context
 * switches per request). */
static int app_chores(struct engine *e, rudp_time now)
{
    if (atomic_load_explicit(&e->nkept, memory_order_relaxed) > 0 && now >= e->kept_at)
        shim_apprecv_pass_kept(e, now, 1);
    if (e->grow_b)
        shim_bridge_grow_due(e);
    int back = now >= e->lease_at ? shim_apprecv_leases(e, now) : 0;
    if (atomic_load_explicit(&e->app_lingering, memory_order_relaxed) > 0)
        back += shim_apprecv_take_back_sockets(e);
    return back;
}

/* When the loop must wake at the latest: the connections' deadline
 * (pump's), the engine's own timers, and on the first engine the control
 * socket's. */
/* How often a keeper's engine with nothing left of its own looks whether
 * the others have finished theirs. */
#define KEEPER_LOOK RUDP_MS(10)

static rudp_time next_wake(struct engine *e, rudp_time deadline, rudp_time now)
{
    rudp_time wake = deadline < e->retry_at ? deadline : e->retry_at;
    if (atomic_load_explicit(&e->keeper_idle, memory_order_relaxed) && now + KEEPER_LOOK < wake)
        wake = now + KEEPER_LOOK;
    if (e->fallback_at < wake)
        wake = e->fallback_at;
    if (e->roam_at < wake)
        wake = e->roam_at;
    if (e->lease_at < wake)
        wake = e->lease_at;
    if (e->kept_at < wake)
        wake = e->kept_at;
    if (e->mod_at < wake)
        wake = e->mod_at;
    if (e == &G.e[0]) {
        e->ctl_at = shim_control_timer(e, now); /* for app threads' turns */
        if (e->ctl_at < wake)
            wake = e->ctl_at;
    }
    return wake;
}

/* The engine's wait: epoll_pwait2 (nanoseconds), or epoll_pwait where the
 * kernel has none (before Linux 5.11), a seccomp profile refuses it, or
 * Debian 12's qemu-user does not emulate it (make aarch64): the timeout
 * rounded up to a millisecond, so a deadline is never met early, only up
 * to 1 ms late. Asked until it fails so once. */
static int engine_wait(struct engine *e, struct epoll_event *evs, const struct timespec *tmo)
{
    return shim_real_epoll_wait_ts(e->epfd, evs, EV_MAX, tmo, NULL);
}

/* An engine about to sleep with no deadline at all while a connection of
 * its still waits for its SYN's answer (whose retransmission and give-up
 * are timers): said once, with what the wait's terms were. Twice in loaded
 * make test runs an engine slept so, its SYN lost, and never sent it again
 * (the notes of issue 46); this says what the core held then. */
static void no_deadline_check(struct engine *e, rudp_time wake, rudp_time now)
{
    static _Atomic int said;
    if (atomic_load_explicit(&said, memory_order_relaxed) || rudp_ctx_conn_count(e->ctx) > 64)
        return; /* a look at each bridge, kept cheap: the case seen had one */
    for (bridge *b = e->bridges; b; b = b->next) {
        if (!b->conn || rudp_conn_state(b->conn) != RUDP_SYN_SENT)
            continue;
        if (atomic_exchange(&said, 1))
            return;
        SHIM_LOG(RUDP_LOG_WARN, "engine %d: no deadline at %lld with a connection in SYN_SENT "
                                "(wake %lld; connections %zu, tfd_at %lld, sleep_until %lld, "
                                "turn_open %d, events pending %d)",
                 (int)(e - G.e), (long long)now, (long long)wake,
                 rudp_ctx_conn_count(e->ctx), (long long)e->tfd_at, (long long)e->sleep_until,
                 e->turn_open, rudp_ctx_events_pending(e->ctx));
        return;
    }
}

rudp_time shim_engine_wait_end(rudp_time at, rudp_time now)
{
    return at == RUDP_TIME_NEVER || at > now + SHIM_WAIT_MAX ? now + SHIM_WAIT_MAX : at;
}

/* The wait's timeout for a sleep to `wake` (ts filled). */
static struct timespec *sleep_timeout(struct engine *e, rudp_time wake, rudp_time now,
                                      struct timespec *ts)
{
    rudp_time at = wake;
    if (shim_appsend_sleep(e, wake)) {
        e->tfd_sleeps++;
        /* The timerfd is the timer (appsend.c); should it not fire, the
         * wait ends SHIM_TIMER_SLACK past it all the same. Once, in a
         * loaded make test, an engine slept 60 s past its connection's SYN
         * timer and never sent the SYN again (cause not found: the notes
         * of issue 46). A deadline an app thread moved later costs at most
         * this one wake-up a second. */
        at = e->sleep_until;
        if (at != RUDP_TIME_NEVER)
            at += SHIM_TIMER_SLACK;
    }
    if (at == RUDP_TIME_NEVER)
        no_deadline_check(e, wake, now);
    /* Never longer than SHIM_WAIT_MAX: twice, in loaded make test runs,
     * an engine slept 60-90 s past its connection's SYN timer (the notes
     * of issue 46), with no deadline it knew of; a wait that long now ends
     * anyway, its turn runs the timers due, and overslept() says what it
     * had slept to. An idle engine wakes once each SHIM_WAIT_MAX. */
    at = shim_engine_wait_end(at, now);
    e->wait_until = at;
    *ts = shim_timespec(at > now ? at - now : 0);
    return ts;
}

/* A wait that ran to its end with the core's deadline (`deadline`, the
 * last turn's) more than SHIM_TIMER_SLACK past: what the engine had slept
 * to, said once. */
static void overslept(struct engine *e, rudp_time deadline, rudp_time wake, rudp_time now)
{
    static _Atomic int said;
    if (deadline == RUDP_TIME_NEVER || now < deadline + SHIM_TIMER_SLACK)
        return;
    e->overslept++;
    if (atomic_exchange(&said, 1))
        return;
    SHIM_LOG(RUDP_LOG_WARN, "engine %d: woke %lld ms past its deadline (wake %lld, sleep_until "
                            "%lld, tfd_at %lld, wait to %lld, now %lld); its timers run now",
             (int)(e - G.e), (long long)((now - deadline) / 1000000), (long long)wake,
             (long long)e->sleep_until, (long long)e->tfd_at, (long long)e->wait_until,
             (long long)now);
}

/* A wait that nothing ended (the deadline `wake`, or the slack past the
 * timerfd's time): counted; a timerfd that has not fired a second past its
 * time is armed afresh at the next sleep, and said once. */
static void timed_out(struct engine *e, rudp_time wake, rudp_time now)
{
    if (wake != RUDP_TIME_NEVER && now >= wake) {
        e->timed_wakeups++;
        e->late_ns += now - wake;
    }
    if (e->tfd_at && now >= e->tfd_at + SHIM_TIMER_SLACK) {
        if (e->timer_missed++ == 0)
            SHIM_LOG(RUDP_LOG_WARN, "engine %d: its timer did not fire %d ms past its time; "
                                    "armed again",
                     (int)(e - G.e), (int)(SHIM_TIMER_SLACK / 1000000));
        e->tfd_at = 0;
    }
}

/* The n events of evs dispatched, then what epoll has ready besides, up to
 * EV_ROUNDS more calls: everything readable is read before timers fire.
 * With thousands of sockets ready at once, timers run after the first
 * EV_MAX would fire probes for connections whose ACKs sit unread in
 * theirs. Returns the time of the last read. turn_mu held. */
static rudp_time read_ready(struct engine *e, struct epoll_event *evs, int n, rudp_time now)
{
    for (int more = 0;; more++) {
        e->dispatching = 1;
        if (more == 0)
            shim_rxmod_read(e, now); /* the sockets not watched (rxmod.c) */
        for (int i = 0; i < n; i++) {
            /* the engine's objects and the features' alike (hooks.h);
             * one buried earlier in this batch has type 0 */
            shim_watch *w = evs[i].data.ptr;
            if (w->type == SHIM_WATCHED)
                w->ops->event(w, evs[i].events, now);
        }
        e->dispatching = 0;
        shim_engine_graves_empty(e);
        if (n < EV_MAX || more == EV_ROUNDS)
            return now;
        static const struct timespec zero;
        n = engine_wait(e, evs, &zero);
        e->polls++;
        if (n <= 0)
            return now;
        now = shim_now();
    }
}

void *shim_engine_loop(void *arg)
{
    struct engine *e = arg;
    struct epoll_event evs[EV_MAX];
    /* held but while asleep: an app thread sends then (appsend.c) */
    pthread_mutex_lock(&e->turn_mu);
    /* an engine with a table of its own takes no app thread's turn: its
     * numbers are not the program's (enginestart.c) */
    e->turn_open = e->tfd >= 0 && (shim_cfg.app_send || shim_cfg.app_recv) &&
                   !shim_fds_in_engines();
    /* Read before the first timers run: a keeper's engines start here,
     * their deadlines passed in the hand-over (~100 ms) while the ACKs and
     * refusals answering them sat unread (3,500 closing: ~400 in vain). */
    static const struct timespec at_once;
    int n0 = engine_wait(e, evs, &at_once);
    e->polls++;
    if (n0 > 0)
        read_ready(e, evs, n0, shim_now());
    rudp_time deadline = shim_engine_pump(e, shim_now());
    for (;;) {
        if (e == &G.e[0] && atomic_load(&G.sig_handoff) == 1 && shim_hook.lifetime &&
            shim_hook.lifetime->take_signal)
            shim_hook.lifetime->take_signal(e); /* keeper.c */
        pause_for_handoff(e);
        rudp_time now = shim_now();
        rudp_time wake = next_wake(e, deadline, now);
        struct timespec ts, *tsp;
        shim_acceptq_release_all(e); /* places no handshake used (acceptq.c) */
        if (atomic_exchange_explicit(&e->app_declined, 0, memory_order_acq_rel))
            shim_apprecv_take_back(e); /* a reader found the turn taken */
        tsp = sleep_timeout(e, wake, now, &ts);
        atomic_store_explicit(&e->asleep, 1, memory_order_relaxed);
        uint64_t app_turns = e->app_turns, passes = e->app_core_passes;
        pthread_mutex_unlock(&e->turn_mu);
        int n = engine_wait(e, evs, tsp);
        int wait_errno = errno;
        atomic_store_explicit(&e->asleep, 0, memory_order_relaxed);
        pthread_mutex_lock(&e->turn_mu);
        e->polls++;
        if (n > 0 && e->app_turns != app_turns) {
            /* An app thread's turn came between the wait and the lock
             * (apprecv.c): what it read may have freed objects these
             * events name. Asked again (level-triggered: nothing lost). */
            static const struct timespec none;
            n = engine_wait(e, evs, &none);
            wait_errno = errno;
            e->polls++;
        }
        if (n < 0 && wait_errno != EINTR) {
            /* Our epoll fd was closed under us (a program closing every
             * fd): the engine cannot go on, nor can new connections. */
            SHIM_LOG(RUDP_LOG_ERROR, "engine epoll failed: %s; rudp connections stop",
                     shim_strerror(wait_errno));
            shim_mutex_lock(&G.mu);
            G.broken = 1;
            e->broken = 1;
            e->paused = 1; /* nobody waits for a pause that cannot come */
            pthread_cond_broadcast(&G.cv);
            shim_mutex_unlock(&G.mu);
            e->turn_open = 0;
            pthread_mutex_unlock(&e->turn_mu);
            stop_control(e);
            return NULL;
        }
        now = shim_now();
        rudp_time turn_start = now;
        e->wakeups++;
        if (n == 0) {
            timed_out(e, wake, now);
            if (e->app_core_passes == passes) /* else `deadline` may be one they met */
                overslept(e, deadline, wake, now);
        }
        if (app_chores(e, now) > 0) {
            /* Sockets the app had, watched again: what came for them
             * meanwhile is read with the rest, before any timer fires (a
             * delayed ACK sent to a server whose NEW_PORT sits unread
             * would land on the UDP socket the program bound there:
             * t_prog_reuseport). Level-triggered: nothing asked is lost. */
            static const struct timespec none;
            n = engine_wait(e, evs, &none);
            e->polls++;
        }
        now = read_ready(e, evs, n, now);
        if (now >= e->retry_at)
            shim_engine_retry_pending(e, now);
        if (now >= e->fallback_at)
            shim_fallback_timer(e, now);
        if (now >= e->roam_at)
            shim_roam_timer(e, now);
        /* What is sent now is timed now, not at the wake-up. */
        deadline = shim_engine_pump(e, shim_now());
        /* accepted connections whose turn came (fifo.c), after the
         * handshakes this turn completed were counted */
        if ((e->fifo_dirty || e->fifo_held || e->fwd_taken) && shim_fifo_turn(e, shim_now()))
            deadline = shim_engine_pump(e, shim_now());
        rudp_time turn_end = shim_now();
        shim_rxmod_decide(e, turn_end);
        rudp_time turn = turn_end - turn_start;
        if (turn > e->longest_turn)
            e->longest_turn = turn;
        shim_engine_load(e, turn_end, turn);
        /* A keeper's work is done when a process's exit would need no
         * keeper (nothing to deliver, no listener, no bridge): those of
         * its connections still closing with everything acknowledged end
         * here, as at the program's own exit (shim_keeper_exit). A peer
         * that has not closed yet gets our FIN and the data; what it sends
         * later meets a closed port (close_socks) and resets it, as an
         * orphaned TCP socket's RST does. */
        if (G.keeper_mode && keeper_may_retire(e) && shim_engine_retire(e)) {
            shim_hooks_run(SHIM_ON_RETIRE, e, now); /* TIME_WAIT to the kernel */
            close_socks(e);
            if (e->ctx)
                rudp_ctx_report_remaining(e->ctx);
            e->turn_open = 0;
            pthread_mutex_unlock(&e->turn_mu);
            stop_control(e);
            return NULL;
        }
    }
    return NULL;
}
