/*
 * appwhole.c: an event loop's epoll wait for many connections (more than
 * APPSEND_CONNS in the process: redis, a node or Python event loop) takes
 * every engine's whole set of UDP sockets and bridges at once, and runs
 * the engines' turns on its own thread; the per-connection waits of few
 * connections are apprecv.c's, whose turn and lease rules this follows.
 *
 * Each engine watches its UDP sockets and bridges in an epoll set of
 * their own (iofd), itself in the engine's set; the process's appfd holds
 * every engine's iofd. The waiting thread takes each engine's turn (only
 * tried: one it cannot have and it takes none), stops the engine watching
 * its iofd (one epoll_ctl, however many connections) and waits in ppoll on
 * the program's set, appfd and the signalfd (interpose/poll.c's wait).
 * Whatever comes for any connection wakes it alone; it runs each engine's
 * turn (iofd's events dispatched as the engine's loop does them, the
 * moderated sockets, the core's timers, the accept order's turn) and the
 * program's set then says what the program is told. After a fast wait the
 * sets linger with the app (SHIM_APP_LINGER), and a write in memory then
 * rings no doorbell (txring.c): the app's next wait takes the arena before
 * it sleeps, or the engine when the linger ends. A waiter that never
 * comes back (cancelled without its cleanup, a siglongjmp) holds a lease,
 * as apprecv.c's: the engine takes its set back when it runs out.
 *
 * Measured (docs/benchmarks.md, the run at e46a734): redis GET's shape
 * (B24) 0.32x to 0.42x kernel TCP, the engines' wake-ups 0.30 to 0.08 per
 * request; redis GET +15 % in alternated pairs.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>

#include "internal.h"

#include "base/poison.h"

/* The app thread waits on iofd itself; the engine stops watching it: one
 * epoll_ctl, however many connections (turn_mu held). */
static void io_unwatch(struct engine *e, rudp_time now)
{
    if (e->io_unwatched && !e->io_waiters) {
        atomic_fetch_sub(&e->app_lingering, 1); /* its linger ends: waited on */
        atomic_store(&e->io_linger, 0);
    }
    e->io_waiters = 1;
    if (!e->io_unwatched) {
        struct epoll_event ee = {.events = 0, .data.ptr = &e->io_w};
        real_epoll_ctl(e->epfd, EPOLL_CTL_MOD, e->iofd, &ee);
        e->io_unwatched = 1;
    }
    e->io_lease = now + SHIM_APP_LEASE;
    if (e->io_lease < e->lease_at)
        e->lease_at = e->io_lease;
    shim_appsend_wake_by(e, e->io_lease);
}

/* The engine watches iofd again (turn_mu held): what came meanwhile is
 * its to read (level-triggered); a waiter still away finds io_gen changed.
 * Writes in memory that rang no doorbell while the set lingered ring it
 * now: the engine takes them at its eventfd's event and sends them (a
 * take here would leave them unsent where the caller pumps nothing: an
 * app thread's take_back, apprecv.c's declined). */
static void io_rewatch(struct engine *e)
{
    if (e->io_unwatched && !e->io_waiters) {
        atomic_fetch_sub(&e->app_lingering, 1);
        atomic_store(&e->io_linger, 0);
        if (atomic_load(&e->tx.any))
            shim_txring_ring(e);
    }
    struct epoll_event ee = {.events = EPOLLIN, .data.ptr = &e->io_w};
    real_epoll_ctl(e->epfd, EPOLL_CTL_MOD, e->iofd, &ee);
    e->io_unwatched = 0;
    e->io_waiters = 0;
    e->io_gen++;
}

int shim_appwhole_lease(struct engine *e, rudp_time now)
{
    if (!e->io_unwatched)
        return 0;
    if (now < e->io_lease) {
        if (e->io_lease < e->lease_at)
            e->lease_at = e->io_lease;
        return 0;
    }
    if (e->io_waiters)
        e->app_lapsed++; /* its waiter never came back */
    else
        e->app_io_ranout++; /* its linger ran out: nobody came back to wait */
    io_rewatch(e);
    return 1;
}

int shim_appwhole_take_back(struct engine *e)
{
    if (!e->io_unwatched || e->io_waiters)
        return 0;
    io_rewatch(e);
    return 1;
}

int shim_engine_app_io_may(void)
{
    return shim_apprecv_turn_may() && !shim_appsend_few() && atomic_load(&G.appfd1) > 0;
}

void shim_appwhole_engine_started(struct engine *e)
{
    int fd = atomic_load(&G.appfd1) - 1;
    if (fd < 0 && e == &G.e[0]) {
        fd = epoll_create1(EPOLL_CLOEXEC);
        if (fd < 0)
            return; /* app threads wait as before: through the bridge */
        fd = shim_fd_move_high(fd);
        shim_own_fd(fd, 1);
        atomic_store(&G.appfd1, fd + 1);
    }
    if (fd < 0)
        return;
    struct epoll_event ee = {.events = EPOLLIN, .data.ptr = e};
    real_epoll_ctl(fd, EPOLL_CTL_ADD, e->iofd, &ee);
}

/* iofd's waiter is back (turn_mu held): as give_back; `back`, its wait
 * returned (whether or not the sets had something: it is back to wait
 * again soon), 0 for a waiter that gives up or was cancelled. */
static void io_give_back(struct engine *e, uint32_t gen, rudp_time since, int back)
{
    if (e->io_gen != gen || !e->io_waiters)
        return;
    rudp_time now = shim_now();
    if (back && now - since < SHIM_APP_LINGER) {
        e->io_waiters = 0;
        atomic_fetch_add(&e->app_lingering, 1);
        atomic_store(&e->io_linger, 1);
        e->io_lease = now + SHIM_APP_LINGER;
        if (e->io_lease < e->lease_at)
            e->lease_at = e->io_lease;
        shim_appsend_wake_by(e, e->io_lease);
    } else {
        io_rewatch(e);
    }
}

/* One event loop's thread per engine, not several: where two threads
 * wait on sets holding connections of one engine (memcached's workers,
 * given connections by its listener's thread), the one that waits would
 * run every connection's receive while the other's datagrams sat in the
 * sockets it lingers with (B14's wrk when its threads' connections shared
 * the engines: 0.44x kernel TCP with it, 0.52x without). A wait by another
 * thread than an engine's last within IO_ONE_THREAD of that one's wait
 * turns the path off for that engine for IO_SHARED_OFF. Threads whose
 * sets hold connections of engines of their own (a client's threads each
 * connecting its own: engines.c gives each its engine) each take theirs. */
#define IO_ONE_THREAD RUDP_MS(100)
#define IO_SHARED_OFF RUDP_MS(1000)
static _Atomic uintptr_t io_thread[SHIM_ENGINES_MAX];   /* the last thread whose wait took
                                                         * the engine's set */
static _Atomic rudp_time io_thread_at[SHIM_ENGINES_MAX]; /* ... when */
static _Atomic rudp_time io_off_until[SHIM_ENGINES_MAX];

/* Whether this thread's wait may take the sets of the engines in want
 * (bit k: G.e[k]), each of them now its own. */
static int io_one_thread(uint32_t want, rudp_time now)
{
    uintptr_t me = (uintptr_t)pthread_self();
    for (int k = 0; k < SHIM_ENGINES_MAX; k++) {
        if (!(want & (1u << k)))
            continue;
        if (now < atomic_load_explicit(&io_off_until[k], memory_order_relaxed))
            return 0;
        uintptr_t was = atomic_load(&io_thread[k]);
        if (was && was != me && now - atomic_load(&io_thread_at[k]) < IO_ONE_THREAD) {
            atomic_store(&io_off_until[k], now + IO_SHARED_OFF);
            atomic_store(&io_thread[k], 0);
            atomic_fetch_add_explicit(&G.e[k].app_shared_off, 1, memory_order_relaxed);
            shim_engine_app_nowait(); /* sets lingering with the other thread go back */
            return 0;
        }
    }
    for (int k = 0; k < SHIM_ENGINES_MAX; k++) {
        if (want & (1u << k)) {
            atomic_store(&io_thread[k], me);
            atomic_store(&io_thread_at[k], now);
        }
    }
    return 1;
}

/* An epoll wait for fd's connection (its engine's turn held, let go
 * here), one of many: the whole sets of the engines its set holds
 * connections of (w->engs: one engine's, waited on at its own iofd;
 * else every engine's, at appfd) are taken (each turn only tried), or
 * none (an engine's set the app waits on but cannot read would wake it
 * while that engine reads it). */
int shim_appwhole_begin(struct engine *e, const shim_fd *rec, pid_t me, int sigfd, int cancel,
                        shim_app_wait *w)
{
    bridge *b = shim_apprecv_waitable(e, rec, 1);
    int fd = atomic_load(&G.appfd1) - 1;
    int nrun = __atomic_load_n(&G.nrun, __ATOMIC_ACQUIRE), all = 1, held;
    uint32_t want = w->engs & ((1u << nrun) - 1);
    if (want && !(want & (want - 1)) && nrun > 1) {
        struct engine *x = &G.e[__builtin_ctz(want)];
        fd = x->iofd != x->epfd ? x->iofd : -1; /* one engine's: its own set */
    } else {
        want = (1u << nrun) - 1; /* every engine's, at appfd */
    }
    shim_apprecv_turn_unlock(e, cancel);
    if (!b || fd < 0 || !io_one_thread(want, shim_now())) {
        /* a waiter that will not take the sets: those lingering with
         * this thread go back now, not at their lease (apprecv.c's rule) */
        shim_engine_app_nowait();
        return 0;
    }
    memset(w, 0, sizeof *w);
    w->pid = me;
    w->whole = 1;
    w->udp_fd = fd;
    w->sigfd = sigfd;
    w->slot = rec->slot;
    w->id = rec->id;
    w->since = shim_now();
    /* no cancellation point while some sets are taken and no cleanup
     * handler is pushed yet (declined() writes an eventfd) */
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &held);
    for (int k = 0; k < nrun && all; k++) {
        if (!(want & (1u << k)))
            continue;
        struct engine *x = &G.e[k];
        if (!shim_apprecv_turn_try(x, &cancel)) {
            shim_apprecv_declined(x, 0); /* in its turn: it reads what lingers with us */
            all = 0;
            break;
        }
        if (!x->turn_open || x->io_waiters || x->iofd == x->epfd) {
            /* another thread waits: it reads for us; or no set of its own */
            all = 0;
        } else {
            w->io_gen[k] = x->io_gen;
            w->io_taken |= 1u << k;
            io_unwatch(x, w->since);
            if (atomic_load(&x->tx.any)) {
                /* what the app wrote while iofd lingered with it (no
                 * doorbell); an engine woken meanwhile asks epoll again
                 * (app_turns): the pump may free what its events name */
                x->app_turns++;
                shim_txring_take(x, w->since);
                shim_appsend_keep_timers(x, shim_engine_pump(x, w->since));
            }
        }
        shim_apprecv_turn_unlock(x, cancel);
    }
    if (all) {
        pthread_setcancelstate(held, NULL);
        w->e = e;
        return 1;
    }
    for (int k = 0; k < nrun; k++) {
        if (!(w->io_taken & (1u << k)))
            continue;
        struct engine *x = &G.e[k];
        shim_apprecv_turn_lock(x, &cancel);
        io_give_back(x, w->io_gen[k], w->since, 0);
        shim_apprecv_turn_unlock(x, cancel);
    }
    shim_engine_app_nowait(); /* the engines past the one refused: theirs back too */
    pthread_setcancelstate(held, NULL);
    return 0;
}

/* The whole sets' wait ends: what each holds read and dispatched, as the
 * engine's turn does, unless its engine took it back. */
void shim_appwhole_end(shim_app_wait *w, uint32_t events, int in_poll)
{
    for (int k = 0; k < SHIM_ENGINES_MAX; k++) {
        if (!(w->io_taken & (1u << k)))
            continue;
        struct engine *e = &G.e[k];
        int cancel;
        shim_apprecv_turn_lock(e, &cancel);
        if (!events || !e->turn_open || e->io_gen != w->io_gen[k] || !e->io_waiters) {
            /* Nothing came on the sets: the program's own fds (or bytes
             * kept for its reads) ended the wait. A wait that returned
             * soon lingers all the same: the thread that ran it is busy
             * with its connections and waits again soon, and the engine
             * taking the sets back would answer each of its writes with
             * a doorbell and a wake-up. wrk -t2 -c50 against nginx: half
             * its waits ended so, its engines woke 0.28 times a request
             * and took 10.5 us of its 36 a request; lingering, 0.03
             * times, and 13 % more requests a second. */
            io_give_back(e, w->io_gen[k], w->since, w->returned && e->turn_open);
            shim_apprecv_turn_unlock(e, cancel);
            continue;
        }
        rudp_time now = shim_now();
        /* an engine woken meanwhile asks epoll again: what this turn reads
         * or pumps may free objects its events name (engine.c) */
        e->app_turns++;
        e->keep_ep = w->keep_ep; /* the set's bridges keep what comes (bridgepump.c) */
        e->dispatching = 1;
        shim_rxmod_read(e, now); /* the sockets iofd does not watch (rxmod.c) */
        int n = shim_engine_io_turn(e, now);
        e->dispatching = 0;
        shim_engine_graves_empty(e);
        if (n > 0) {
            e->app_io_turns++;
            e->app_recvs++;
            if (in_poll == 2)
                e->app_epolls++;
        }
        rudp_time deadline = shim_engine_pump(e, now);
        /* accepted connections whose turn came (fifo.c), as the engine's
         * turn lets them go */
        if ((e->fifo_dirty || e->fifo_held || e->fwd_taken) && shim_fifo_turn(e, shim_now()))
            deadline = shim_engine_pump(e, shim_now());
        e->keep_ep = 0;
        if (atomic_load_explicit(&e->nkept, memory_order_relaxed))
            w->kept = 1; /* the caller asks which are the set's (shim_engine_app_kept_ep) */
        io_give_back(e, w->io_gen[k], w->since, 1);
        shim_appsend_keep_timers(e, deadline);
        shim_apprecv_turn_unlock(e, cancel);
    }
}

