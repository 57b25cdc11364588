/*
 * apprecv.c: the application thread that waits to read a bridge waits on
 * the connection's UDP socket itself (RUDP_APP_RECV), so that a datagram
 * wakes one thread, not two.
 *
 * Through the bridge, an answer costs two wake-ups: the datagram wakes the
 * engine thread, which writes the bytes into the bridge, which wakes the
 * reader. Kernel TCP wakes the reader alone. Here a reader that finds its
 * bridge empty takes the engine's turn (turn_mu, as appsend.c's writer),
 * stops the engine watching the connection's UDP socket, lets the turn go
 * and waits in ppoll() on both its bridge and that socket. A datagram wakes
 * it alone: it takes the turn again, runs the engine's part (reads the
 * socket, the core, delivers into the bridges, sends what is due: the same
 * code as the engine's turn), leaves the socket to the app a moment longer
 * after a fast wait (APP_LINGER: the next read of a ping-pong comes soon)
 * or has the engine watch it again, and lets go; then the caller reads the
 * bridge, as before. A read() whose bridge was empty when its wait ended
 * gets the bytes straight into its buffer instead (bridgepump.c's pump_direct:
 * one copy, by the kernel, where the bridge costs two and a write and a
 * read); what does not fit follows through the bridge. The engine stays the safety net: its timers run on
 * its own thread, and it reads the socket whenever no reader waits on it
 * (a reader that cannot wait gives a lingering socket back at once).
 * Taken only for few connections on a fast path (APP_RTT_MAX).
 *
 * Many connections (more than APPSEND_CONNS): an event loop's epoll wait
 * takes every engine's whole set instead (appwhole.c).
 *
 * Signals: the caller blocks them all before it calls here (as appsend.c
 * does while it holds the turn), or is inside a section that defers the
 * program's handlers (base/crit.c) and has ppoll() hold them for its wait
 * alone (its sigmask argument: no system call of its own). ppoll() waits
 * with them blocked, and a signalfd for those the caller had let in wakes
 * it when one comes: it returns with the signal pending (or, in a
 * section, deferred at ppoll's return), so that the caller
 * (interpose/recv.c) can tell which it is before letting it in, and so
 * whether the kernel's read would have restarted (SA_RESTART) or said
 * EINTR.
 *
 * A waiter that never comes back (cancelled in ppoll(), or leaving it by
 * siglongjmp from a handler) cannot be cleaned up after: it holds a lease,
 * not the socket. Each wait renews the socket's lease (APP_LEASE ahead);
 * the engine wakes by the earliest lease and watches again every socket
 * whose lease ran out (its generation bumped, so a late waiter changes
 * nothing). A waiter's ppoll() lasts at most APP_WAIT, well inside its
 * lease; a reader that waited that long with nothing coming goes back to
 * the bridge's own blocking read (an idle connection costs the engine
 * nothing, and the reader no wake-ups).
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#include "base/poison.h"

/* Only on a fast path: the hand-off it saves (a wake-up, ~30 us) is
 * nothing beside a longer round trip, where the wait's own calls cost more
 * CPU than they save (B5, 40 ms: +19 % CPU per echo with it) */
#define APP_RTT_MAX RUDP_US(SHIM_APPRECV_RTT_US)
#define APP_WAIT_MS SHIM_APP_WAIT_MS
/* a waiter's lease: past its longest wait, should it never come back */
#define APP_LEASE SHIM_APP_LEASE
/* how long a socket stays the app's after its waiter got its datagram
 * within that time itself: a reader that comes back within it (a fast
 * request/response exchange) costs the engine no epoll_ctl() and no
 * wake-up; what comes meanwhile for a reader that does not is read by the
 * engine at the latest then */
#define APP_LINGER SHIM_APP_LINGER

/* s's lease runs to `until`: the engine wakes by then (turn_mu held). */
static void lease(struct engine *e, esock *s, rudp_time until)
{
    s->app_lease = until;
    if (until < e->lease_at)
        e->lease_at = until;
    shim_appsend_wake_by(e, until); /* an engine asleep past it */
}

/* The app thread waits on s itself; the engine stops watching it (turn_mu
 * held). One waiter at a time: it reads for every connection on s. */
static void unwatch(struct engine *e, esock *s, rudp_time now)
{
    if (s->app_unwatched && !s->app_waiters)
        atomic_fetch_sub(&e->app_lingering, 1); /* its linger ends: waited on */
    s->app_waiters = 1;
    if (!s->app_unwatched) {
        struct epoll_event ee = {.events = 0, .data.ptr = s};
        real_epoll_ctl(e->iofd, EPOLL_CTL_MOD, s->fd, &ee);
        s->app_unwatched = 1;
    }
    lease(e, s, now + APP_LEASE);
}

/* The engine watches s again (turn_mu held); a waiter still away finds
 * its generation changed and gives nothing back. */
static void rewatch(struct engine *e, esock *s)
{
    if (s->app_unwatched && !s->app_waiters)
        atomic_fetch_sub(&e->app_lingering, 1);
    struct epoll_event ee = {.events = EPOLLIN, .data.ptr = s};
    real_epoll_ctl(e->iofd, EPOLL_CTL_MOD, s->fd, &ee);
    s->app_unwatched = 0;
    s->app_waiters = 0;
    s->app_gen++;
}

int shim_apprecv_leases(struct engine *e, rudp_time now)
{
    int back = 0;
    e->lease_at = RUDP_TIME_NEVER;
    back += shim_appwhole_lease(e, now);
    for (uint32_t i = 0; i < e->nsocks; i++) {
        esock *s = e->socks[i];
        if (!s || !s->app_unwatched)
            continue;
        if (now >= s->app_lease) {
            if (s->app_waiters)
                e->app_lapsed++; /* its waiter never came back */
            rewatch(e, s);
            back++;
        } else if (s->app_lease < e->lease_at) {
            e->lease_at = s->app_lease;
        }
    }
    return back;
}

rudp_time shim_apprecv_lease_min(struct engine *e)
{
    rudp_time m = e->io_unwatched ? e->io_lease : RUDP_TIME_NEVER; /* appwhole.c's */
    for (uint32_t i = 0; i < e->nsocks; i++) {
        esock *s = e->socks[i];
        if (s && s->app_unwatched && s->app_lease < m)
            m = s->app_lease;
    }
    e->lease_at = m;
    return m;
}

void shim_apprecv_sock_closed(esock *s)
{
    if (s->app_unwatched && !s->app_waiters)
        atomic_fetch_sub(&s->e->app_lingering, 1);
    s->app_unwatched = 0;
}

int shim_apprecv_take_back_sockets(struct engine *e)
{
    int back = 0;
    for (uint32_t i = 0; i < e->nsocks; i++) {
        esock *s = e->socks[i];
        if (s && s->app_unwatched && !s->app_waiters) {
            rewatch(e, s);
            back++;
        }
    }
    return back;
}

int shim_apprecv_take_back(struct engine *e)
{
    return shim_appwhole_take_back(e) + shim_apprecv_take_back_sockets(e);
}

/* A reader that will not wait on fd's socket: whatever comes on a socket
 * left to the app (the linger after a wait) would sit there until the
 * lease ends, while the reader blocks in the kernel's read of its bridge
 * (2 ms, the B6 ping-pong's p99 on two CPUs). The engine takes it back:
 * at once with the turn held, else before its next sleep (woken for it). */
void shim_apprecv_declined(struct engine *e, int have_turn)
{
    if (have_turn) {
        shim_apprecv_take_back(e);
        return;
    }
    atomic_store_explicit(&e->app_declined, 1, memory_order_release);
    uint64_t one = 1;
    ssize_t w = real_write(e->evfd, &one, sizeof one);
    (void)w;
}

/* The bridge of fd's connection, if an app thread may wait for it now;
 * turn_mu held. */
bridge *shim_apprecv_waitable(struct engine *e, const shim_fd *rec, int whole)
{
    bridge *b = e->turn_open && e->by_slot ? e->by_slot[rec->slot] : NULL;
    if (!b || b->slot != rec->slot || b->id != rec->id || !b->established || !b->unix_up ||
        b->hup || b->app_gone || b->fb || b->efd < 0 || !b->conn || !b->sock ||
        b->sock->fd < 0 || b->sock->idle)
        return NULL;
    /* A member of a listener's group across engines: the accept order
     * (fifo.c) waits for every member's reading to pass a connection's
     * time, which a socket left to an app thread does only when a datagram
     * comes: accepted connections on the other members were held until
     * its lease ran out (chatd, backlog 511: handshakes of 70 and 250 ms,
     * a client's kernel TCP fallback, t_chat_cap_rudp). A wait on every
     * engine's whole set (whole) reads every member's socket. */
    if (!whole && shim_fifo_on(b->sock))
        return NULL;
    rudp_conn_info i;
    rudp_conn_get_info(b->conn, &i);
    if (i.rtt_us * 1000 > APP_RTT_MAX)
        return NULL;
    return shim_appsend_app_ino(b) == rec->ino ? b : NULL;
}

/* s's waiter is back (turn_mu held). A reply that came fast comes again
 * soon: the socket lingers. One that took longer (a round trip of a real
 * path) would only cost the engine a wake-up when the linger ends, and a
 * wait that something else ended (another fd of a poll(), a signal) says
 * nothing of the next: the engine watches it at once. */
static void give_back(struct engine *e, esock *s, uint32_t gen, rudp_time since, int took)
{
    if (s->app_gen != gen || !s->app_waiters)
        return; /* the engine took it back already */
    rudp_time now = shim_now();
    if (took && now - since < APP_LINGER) {
        s->app_waiters = 0;
        atomic_fetch_add(&e->app_lingering, 1);
        lease(e, s, now + APP_LINGER);
    } else {
        rewatch(e, s);
    }
}

/* The wait ends: what the socket holds is read and delivered, and the
 * socket stays the app's for APP_LINGER (unless the engine took it back
 * already: gen). turn_mu held. */
static void end_wait(struct engine *e, uint32_t idx, uint64_t sid, uint32_t gen, uint32_t events,
                     rudp_time since)
{
    esock *s = idx < e->nsocks ? e->socks[idx] : NULL;
    if (!s || s->sid != sid)
        return; /* closed meanwhile: nothing to give back */
    if (events && e->turn_open) {
        /* as the engine's loop dispatches: what the datagrams end (a reset
         * closing a client's socket, s itself) is buried until after; and
         * an engine woken meanwhile asks epoll again (app_turns), its
         * events may name what this frees */
        rudp_time now = shim_now();
        e->app_turns++;
        e->dispatching = 1;
        shim_engine_udp_event(s, events, now);
        e->dispatching = 0;
        shim_engine_graves_empty(e);
        rudp_time deadline = shim_engine_pump(e, now);
        e->app_recvs++;
        s = idx < e->nsocks ? e->socks[idx] : NULL;
        if (s && s->sid == sid)
            give_back(e, s, gen, since, 1);
        /* after the linger's lease: the engine's timer is set for both */
        shim_appsend_keep_timers(e, deadline);
        return;
    }
    give_back(e, s, gen, since, 0);
}

/* The process's signalfd (made on first use, one for every thread: its
 * readiness is the polling thread's own pending signals), set to watch
 * the signals a caller with mask `old` lets in: -1 if there is none. */
static _Atomic int sfd = -1;
static _Atomic uint64_t sfd_let; /* the signals it watches, bit sig - 1 */
static _Atomic int sfd_setting;  /* a thread sets its mask (the others pass) */
static _Atomic pid_t sfd_pid;    /* the process that made it: a fork's child
                                  * closed its copy (shim_close_all_owned) */

static int signal_fd(const sigset_t *old, pid_t me)
{
    /* as the kernel's 64 bits, which glibc's larger sigset_t begins with
     * (bit sig - 1 of its first word), and all pthread_sigmask() fills: a
     * word, not 64 sigismember() calls in each wait */
    _Static_assert(sizeof(sigset_t) >= sizeof(uint64_t), "sigset_t holds the kernel's mask");
    uint64_t blocked;
    memcpy(&blocked, old, sizeof blocked);
    uint64_t let = ~blocked;
    sigset_t want;
    sigfillset(&want); /* not glibc's own 32 and 33, which it leaves out */
    uint64_t fill;
    memcpy(&fill, &want, sizeof fill);
    fill &= let;
    memcpy(&want, &fill, sizeof fill);
    /* No lock waited for (a fork in another thread must not leave the
     * child one held): the first to make it keeps it; threads whose masks
     * differ set it in turn, one at a time (sfd_setting: the others pass),
     * and one that finds it set for another's at worst hears of its signal
     * when its wait ends (APP_WAIT_MS), then by sigpending() */
    int fd = atomic_load(&sfd);
    if (fd >= 0 && atomic_load(&sfd_pid) != me) {
        /* a child's: the number is closed, or another file's now */
        atomic_store(&sfd_setting, 0); /* a parent's thread may have held it */
        if (atomic_compare_exchange_strong(&sfd, &fd, -1))
            fd = -1;
        else
            fd = atomic_load(&sfd);
    }
    if (fd < 0) {
        int n = signalfd(-1, &want, SFD_NONBLOCK | SFD_CLOEXEC);
        if (n < 0)
            return -1;
        n = shim_fd_move_high(n);
        if (atomic_compare_exchange_strong(&sfd, &fd, n)) {
            shim_own_fd(n, 1);
            atomic_store(&sfd_let, let);
            atomic_store(&sfd_pid, me);
            return n;
        }
        real_close(n); /* another thread's came first */
        fd = atomic_load(&sfd);
    }
    if (atomic_load_explicit(&sfd_let, memory_order_relaxed) != let &&
        !atomic_exchange_explicit(&sfd_setting, 1, memory_order_acquire)) {
        if (signalfd(fd, &want, 0) >= 0)
            atomic_store(&sfd_let, let);
        atomic_store_explicit(&sfd_setting, 0, memory_order_release);
    }
    return fd;
}

void shim_engine_app_nowait(void)
{
    int nrun = __atomic_load_n(&G.nrun, __ATOMIC_ACQUIRE);
    for (int k = 0; k < nrun; k++)
        if (atomic_load_explicit(&G.e[k].app_lingering, memory_order_relaxed) > 0 &&
            !atomic_load_explicit(&G.e[k].app_declined, memory_order_relaxed))
            shim_apprecv_declined(&G.e[k], 0);
}

/* The turn's lock, with cancellation held off while it is held (the
 * engine's calls under it are cancellation points: recvmmsg, sendmmsg,
 * write): a thread cancelled there would leave it taken for good. */
int shim_apprecv_turn_try(struct engine *e, int *cancel)
{
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, cancel);
    if (pthread_mutex_trylock(&e->turn_mu) == 0)
        return 1;
    pthread_setcancelstate(*cancel, NULL);
    return 0;
}

void shim_apprecv_turn_lock(struct engine *e, int *cancel)
{
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, cancel);
    pthread_mutex_lock(&e->turn_mu);
}

void shim_apprecv_turn_unlock(struct engine *e, int cancel)
{
    pthread_mutex_unlock(&e->turn_mu);
    pthread_setcancelstate(cancel, NULL);
}

/* not where the engines keep their fds apart: a turn would act on the
 * program's table (enginestart.c) */
int shim_apprecv_turn_may(void)
{
    return shim_cfg.app_recv && shim_cfg.qlog_dirfd < 0 && !shim_sandboxed() &&
           !shim_fds_apart();
}

int shim_engine_app_recv_may(void)
{
    return shim_apprecv_turn_may() && shim_appsend_few();
}

/* The engine of bridged fd (its record in *rec), if this thread may take
 * its turn: not a child's copy (*me: this process), nor a handler that
 * interrupted the allocator. */
static struct engine *app_engine_of(int fd, shim_fd *rec, pid_t *me)
{
    if (shim_fd_tryget(fd, rec) != 1 || rec->kind != SHIM_FD_BRIDGED)
        return NULL;
    struct engine *e = shim_appsend_engine_of(rec->slot);
    *me = shim_procenv_self();
    if (!e || __atomic_load_n(&G.pid, __ATOMIC_RELAXED) != *me || shim_alloc_held())
        return NULL;
    return e;
}

int shim_engine_app_wait_begin(int fd, const sigset_t *let, int in, shim_app_wait *w)
{
    /* With qlog on, the trace's lock is the engine's alone. A thread
     * waiting for one of many connections would do the work of all
     * (appsend.c's APPSEND_CONNS): an event loop's epoll wait does it for
     * all of them (appwhole.c), any other wait leaves it to the engines. */
    int many = 0;
    if (!shim_engine_app_recv_may()) {
        if (in != 2 || !shim_engine_app_io_may())
            return 0;
        many = 1;
    }
    shim_fd rec;
    pid_t me;
    struct engine *e = app_engine_of(fd, &rec, &me);
    if (!e)
        return 0;
    int sigfd = signal_fd(let, me), cancel;
    if (sigfd < 0 || !shim_apprecv_turn_try(e, &cancel)) {
        shim_apprecv_declined(e, 0); /* the engine is in its turn: it reads the socket */
        return 0;
    }
    if (many)
        return shim_appwhole_begin(e, &rec, me, sigfd, cancel, w);
    bridge *b = shim_apprecv_waitable(e, &rec, 0);
    if (!b || b->sock->app_waiters) { /* another thread waits on it: it reads for us */
        if (!b)
            shim_apprecv_declined(e, 1);
        shim_apprecv_turn_unlock(e, cancel);
        return 0;
    }
    esock *s = b->sock;
    w->e = e;
    w->pid = me;
    w->idx = s->idx;
    w->gen = s->app_gen;
    w->sid = s->sid;
    w->udp_fd = s->fd;
    w->sigfd = sigfd;
    w->slot = rec.slot;
    w->id = rec.id;
    w->out_gen = b->out_gen;
    w->direct = NULL;
    w->keep = 0;
    w->kept = 0;
    w->whole = 0;
    w->since = shim_now();
    unwatch(e, s, w->since);
    shim_apprecv_turn_unlock(e, cancel);
    return 1;
}

void shim_engine_app_wait_end(shim_app_wait *w, short revents, int in_poll)
{
    uint32_t ev = (revents & POLLIN ? EPOLLIN : 0) | (revents & POLLERR ? EPOLLERR : 0);
    if (w->whole) {
        shim_appwhole_end(w, ev, in_poll);
        return;
    }
    int cancel;
    shim_apprecv_turn_lock(w->e, &cancel);
    if (ev && in_poll == 1)
        w->e->app_polls++;
    else if (ev && in_poll == 2)
        w->e->app_epolls++;
    else if (ev && in_poll == 3)
        w->e->app_selects++;
    if (w->direct && (ev & EPOLLIN)) {
        /* The reader's bridge was empty when its wait ended (the caller
         * saw it so) and nothing has been written into it since _begin:
         * what comes now goes straight into the reader's buffer
         * (bridgepump.c's pump_direct), in order, since nothing waits before
         * it. */
        bridge *b = w->e->turn_open && w->e->by_slot ? w->e->by_slot[w->slot] : NULL;
        if (b && b->slot == w->slot && b->id == w->id && b->out_gen == w->out_gen) {
            w->e->direct = w->direct;
            w->e->direct_b = b;
        }
    }
    int asked = 0;
    if (w->keep && (ev & EPOLLIN)) {
        /* A poll's bridge was empty when its wait ended (the caller saw it
         * so) and nothing has been written into it since _begin: what
         * comes stays in the connection for the read the poll announces
         * (bridgepump.c: keep), unless a keep ran out unread before on
         * this bridge (a reader we do not see: stdio's, another process's) */
        bridge *b = w->e->turn_open && w->e->by_slot ? w->e->by_slot[w->slot] : NULL;
        if (b && b->slot == w->slot && b->id == w->id && b->out_gen == w->out_gen &&
            !(b->keep_off_until && shim_bridge_keep_off(b, shim_now()))) {
            w->e->keep_b = b; /* until a write into its efd (bridgepump.c) */
            asked = 1;
        }
    }
    end_wait(w->e, w->idx, w->sid, w->gen, ev, w->since);
    w->e->keep_b = NULL;
    if (asked) {
        bridge *b = w->e->by_slot[w->slot]; /* the turn may have ended it */
        w->kept = b && b->id == w->id && b->kept;
    }
    w->e->direct = NULL;
    w->e->direct_b = NULL;
    shim_apprecv_turn_unlock(w->e, cancel);
}

/* ---- kept bytes (bridgepump.c: keep) ---- */

int shim_engine_app_kept_any(void)
{
    return shim_bridge_kept_any();
}

void shim_apprecv_pass_kept(struct engine *e, rudp_time now, int unread)
{
    bridge *snap[SHIM_KEEP_BRIDGES];
    uint32_t n = atomic_load_explicit(&e->nkept, memory_order_relaxed);
    memcpy(snap, e->kept, n * sizeof *snap);
    rudp_time next = RUDP_TIME_NEVER;
    for (uint32_t i = 0; i < n; i++) {
        bridge *b = snap[i];
        if (!b->kept)
            continue; /* passed on by another's pump meanwhile */
        /* by their time (unread): only those whose own time ran out, the
         * others keep theirs (a keep 0.1 ms old passed on with the oldest
         * counted as unread, toward keeping no more) */
        if (unread && now < b->kept_since + SHIM_KEEP_FOR) {
            if (b->kept_since + SHIM_KEEP_FOR < next)
                next = b->kept_since + SHIM_KEEP_FOR;
            continue;
        }
        shim_bridge_pass_kept(b, now, unread);
    }
    if (atomic_load_explicit(&e->nkept, memory_order_relaxed) > 0)
        e->kept_at = next; /* the youngest's, or NEVER: none left kept by time */
}

/* Every signal held back while an app thread holds a turn (a handler
 * could call in again); cancellation is turn_lock's. */
static void hold_all(sigset_t *old)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, old);
}

/* The turn's lock for a flush or a take, which any interposed call may
 * make, a signal handler's too: one that interrupted its thread holding a
 * lock the engine's turn waits for (G.mu) would wait for ever. Tried for
 * at most `wait` (a turn takes microseconds: SHIM_KEEP_LOCK_WAIT); 0 if
 * not had, or (marked) once the engine counts no bridge kept nor being
 * passed on (nmarked: their bytes are in efd, the kernel's to tell), or
 * past SHIM_KEEP_LOCK_WAIT while a pause is asked for: an engine parked
 * for a fork or a keeper's hand-off holds its turn until it ends, which
 * may be the process's (a review's find, 2026-12-02). */
static int turn_lock_bounded(struct engine *e, int *cancel, rudp_time wait, int marked)
{
    rudp_time start = shim_now(), until = start + wait;
    for (;;) {
        if (shim_apprecv_turn_try(e, cancel))
            return 1;
        rudp_time now = shim_now();
        if (now >= until ||
            (marked && atomic_load_explicit(&e->nmarked, memory_order_relaxed) == 0) ||
            (now >= start + SHIM_KEEP_LOCK_WAIT && __atomic_load_n(&G.pause_req, __ATOMIC_ACQUIRE)))
            return 0;
        /* the system call, not libc's nanosleep(): no cancellation point
         * inside a section, and no call ThreadSanitizer intercepts, whose
         * runtime runs pending handlers in a blocking call's entry until
         * none is left, and a section's deferral queues its signal again
         * (base/crit.c): make tsan's prog_sigdefer spun there for ever.
         * libc's syscall() itself (real.c), not our exported one, which
         * takes a number it does not know for one that may close an fd
         * (shim_fd_unseen: every fd lookup after it asks the kernel) */
        struct timespec ts = {.tv_nsec = 20000};
        shim_sys_call(SYS_nanosleep, (const long[6]){(long)&ts, 0, 0, 0, 0, 0});
    }
}

/* An app thread's part of a turn done: what it made due sent, the
 * engine's timer kept right (turn_mu). */
static void app_turn_done(struct engine *e, rudp_time now)
{
    rudp_time deadline = rudp_ctx_process(e->ctx, now);
    e->app_core_passes++;
    shim_udpio_flush(e->io);
    if (e->turn_open)
        shim_appsend_keep_timers(e, deadline);
}

/* Whether data is among the events a caller told already. */
static int told_already(const shim_kept_ask *a, uint64_t data)
{
    for (int i = 0; i < a->nskip; i++)
        if (a->skip[i].data.u64 == data)
            return 1;
    return 0;
}

/* Every engine's kept bridges, each turn taken (bounded: the engine
 * passes them on by their time if not had): those registered alone in the
 * set a asks about (NULL: none) told as it says (shim_engine_app_kept_ep);
 * the others passed on into their bridges (unread: counted as keeps
 * passed on unread). held: the caller holds every signal already. The
 * number told. */
static int kept_walk(shim_kept_ask *a, int held, int unread)
{
    uint64_t key = a ? a->key : 0;
    uint32_t engs = a ? a->engs : 0;
    if (!shim_bridge_kept_any() || __atomic_load_n(&G.pid, __ATOMIC_RELAXED) != shim_procenv_self() ||
        shim_alloc_held())
        return 0; /* a child's copy: the parent's engines pass them on; or a handler that
                   * interrupted the allocator (the turn allocates): the engine's, by their time */
    int nrun = __atomic_load_n(&G.nrun, __ATOMIC_ACQUIRE), saved = errno, n = 0;
    sigset_t old;
    if (!held)
        hold_all(&old);
    for (int k = 0; k < nrun; k++) {
        struct engine *e = &G.e[k];
        int cancel;
        /* none kept there, nor passed on and not yet all in efd: its turn
         * not waited for (one held paused for a hand-off or a fork has
         * mostly passed its own on before: turn_lock_bounded); or not an
         * engine of the set's (another thread's loop waits for its own) */
        if ((engs && !(engs & (1u << k))) ||
            atomic_load_explicit(&e->nmarked, memory_order_relaxed) == 0 ||
            !turn_lock_bounded(e, &cancel, key ? SHIM_KEEP_TELL_WAIT : SHIM_KEEP_LOCK_WAIT, 1))
            continue;
        bridge *snap[SHIM_KEEP_BRIDGES];
        uint32_t nk = atomic_load_explicit(&e->nkept, memory_order_relaxed);
        memcpy(snap, e->kept, nk * sizeof *snap);
        rudp_time now = shim_now();
        int passed = 0, told = n;
        /* from a place that moves on by one each walk that tells: with
         * more kept than maxevents, each told in turn, as the kernel's
         * ready list moves what it returned to its tail (an answer of
         * maxevents 1 told the first kept one until its bytes were all
         * read) */
        uint32_t first = nk ? e->told_next % nk : 0;
        for (uint32_t i = 0; i < nk; i++) {
            bridge *b = snap[(first + i) % nk];
            uint32_t ev;
            uint64_t data;
            if (!b->kept)
                continue; /* passed on by another's pump meanwhile */
            if (key && b->sp && shim_slot_ep_one(b->sp, key, &ev, &data)) {
                if ((ev & EPOLLET) && !b->kept_edge)
                    continue; /* edge-triggered: told of these already */
                if (told_already(a, data))
                    continue; /* in the caller's answer: its mark left as it is */
                if (n < a->max) {
                    b->kept_edge = 0;
                    a->out[n].events = EPOLLIN | (ev & EPOLLRDNORM);
                    a->out[n].data.u64 = data;
                    n++;
                    e->app_told_ep++;
                } else {
                    a->more = 1; /* told at the next wait (level-triggered), or
                                  * in the room the kernel's answer leaves */
                }
            } else {
                shim_bridge_pass_kept(b, now, unread); /* the kernel tells of them */
                passed = 1;
            }
        }
        if (n > told)
            e->told_next = first + 1;
        if (passed)
            app_turn_done(e, now);
        shim_apprecv_turn_unlock(e, cancel);
    }
    if (!held)
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved; /* the caller's own call's to set */
    return n;
}

void shim_engine_app_unkeep_all(int unread)
{
    kept_walk(NULL, 0, unread);
}

int shim_engine_app_kept_ep(shim_kept_ask *a, int held)
{
    a->more = 0;
    return kept_walk(a, held, 0);
}

void shim_engine_app_closing(int fd)
{
    if (!shim_engine_app_recv_may())
        return;
    shim_fd rec;
    pid_t me;
    struct engine *e = app_engine_of(fd, &rec, &me);
    if (!e)
        return;
    int saved = errno, cancel;
    /* no handler while the turn is held, none to leave it held: a
     * section (base/crit.c), two system calls fewer a close than the
     * mask, which stays for a thread that holds SIGSEGV or SIGBUS */
    shim_crit crit;
    sigset_t old;
    int in_section = shim_crit_enter(&crit);
    if (!in_section)
        hold_all(&old);
    if (turn_lock_bounded(e, &cancel, SHIM_KEEP_LOCK_WAIT, 0)) { /* the engine's turn may be another's */
        bridge *b = e->turn_open && e->by_slot ? e->by_slot[rec.slot] : NULL;
        if (b && b->slot == rec.slot && b->id == rec.id && b->established && b->unix_up &&
            !b->hup && !b->app_gone && !b->fb && b->efd >= 0 && b->conn && b->sock &&
            b->sock->fd >= 0 && !b->sock->idle && !shim_fifo_on(b->sock) &&
            shim_appsend_app_ino(b) == rec.ino) {
            esock *s = b->sock;
            uint32_t idx = s->idx;
            uint64_t sid = s->sid, in0 = rudp_ctx_stats(e->ctx)->dgrams_in;
            rudp_time now = shim_now();
            e->app_turns++;
            e->dispatching = 1; /* as end_wait: what the datagrams end is buried after */
            shim_engine_udp_event(s, EPOLLIN, now);
            e->dispatching = 0;
            shim_engine_graves_empty(e);
            rudp_time deadline = shim_engine_pump(e, now);
            e->app_closing++;
            if (rudp_ctx_stats(e->ctx)->dgrams_in != in0)
                e->app_closing_in++;
            s = idx < e->nsocks ? e->socks[idx] : NULL;
            if (s && s->sid == sid && s->app_unwatched && !s->app_waiters)
                rewatch(e, s); /* its reader is closing: the engine's again */
            shim_appsend_keep_timers(e, deadline);
        }
        shim_apprecv_turn_unlock(e, cancel);
    }
    if (in_section)
        shim_crit_leave(&crit);
    else
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved;
}

#define TAKE_FLAGS (MSG_PEEK | MSG_DONTWAIT | MSG_NOSIGNAL | MSG_CMSG_CLOEXEC)

int shim_engine_app_take(int fd, struct msghdr *m, int flags, ssize_t *out)
{
    if ((flags & ~TAKE_FLAGS) || m->msg_controllen || m->msg_iovlen > IOV_MAX)
        return 0;
    shim_fd rec;
    pid_t me;
    struct engine *e = app_engine_of(fd, &rec, &me);
    if (!e)
        return 0;
    shim_crit crit;
    if (!shim_crit_enter(&crit)) /* fault.c's guarded copy takes the faults */
        return 0;
    int cancel;
    ssize_t got = 0;
    if (!turn_lock_bounded(e, &cancel, SHIM_KEEP_LOCK_WAIT, 0)) {
        shim_crit_leave(&crit);
        return 0;
    }
    bridge *b = e->by_slot ? e->by_slot[rec.slot] : NULL;
    if (b && b->slot == rec.slot && b->id == rec.id && b->kept &&
        shim_appsend_app_ino(b) == rec.ino) {
        rudp_time now = shim_now();
        got = shim_bridge_take(b, me, m->msg_iov, (int)m->msg_iovlen, flags & MSG_PEEK, now);
        app_turn_done(e, now); /* the window the read opened, or the bytes passed on */
    }
    shim_apprecv_turn_unlock(e, cancel);
    shim_crit_leave(&crit);
    if (got == 0)
        return 0;
    m->msg_flags = 0;
    m->msg_namelen = 0; /* TCP's says no address */
    *out = got > 0 ? got : -1;
    if (got < 0)
        errno = (int)-got;
    return 1;
}

int shim_engine_app_recv_wait(int fd, const sigset_t *old, const sigset_t *hold,
                              shim_app_direct *d)
{
    shim_app_wait w;
    if (d)
        d->got = 0;
    if (!shim_engine_app_wait_begin(fd, old, 0, &w))
        return 0;
    struct pollfd p[3] = {{.fd = fd, .events = POLLIN},
                          {.fd = w.udp_fd, .events = POLLIN},
                          {.fd = w.sigfd, .events = POLLIN}};
    struct timespec tmo = {.tv_sec = 0, .tv_nsec = APP_WAIT_MS * 1000000L};
    /* a cancellation point, as read(); with hold, the signals a section
     * defers held for the wait, pending for the signalfd to tell of, and
     * delivered (deferred) when it ends */
    int n = real_ppoll(p, 3, &tmo, hold);
    short udp = n > 0 ? p[1].revents : 0;
    if (d && n > 0 && !p[0].revents) {
        d->pid = w.pid;
        w.direct = d; /* the bridge was empty: bytes may come straight */
    }
    shim_engine_app_wait_end(&w, udp, 0);
    if (n > 0 && (p[0].revents || (udp & (POLLIN | POLLERR))))
        return 1;
    /* a signal the caller lets in is pending (or came as the wait ended) */
    sigset_t pend;
    if (sigpending(&pend) == 0)
        for (int sig = 1; sig < NSIG; sig++)
            if (sigismember(&pend, sig) == 1 && sigismember(old, sig) != 1)
                return -EINTR;
    return n == 0 ? -ETIMEDOUT : 1;
}
