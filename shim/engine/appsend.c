/*
 * appsend.c: the application thread that writes to a bridge and finds its
 * engine asleep sends the bytes itself (a cost per request saved).
 *
 * Through the bridge, a request costs a wake-up of the engine: the app's
 * write() makes the engine's end readable, epoll wakes the engine thread
 * (a context switch), which reads the bytes and sends the datagram. Here
 * the writing thread does the engine's part while the engine sleeps: it
 * takes the engine's turn lock (turn_mu: the engine holds it for each
 * turn, all but its epoll wait), puts the bytes in the connection's send
 * buffer, runs the context's output (rudp_ctx_process: the datagram
 * leaves now, batched by udpio) and lets go. The engine wakes only when
 * something comes for it (the answer), as with kernel TCP.
 *
 * Taken only when nothing can tell the difference: the fd is an
 * established bridge of an engine of this process (not a child's copy, not
 * a keeper's), with nothing of the app's still unread in the bridge (so the
 * bytes cannot pass ones written before them: SIOCINQ of the engine's end
 * is 0), nothing of the connection's unsent (a writer ahead of the network
 * keeps the bridge's batching and bound), room for all of them in the send
 * buffer (a write is never cut short here; the kernel's call blocks or cuts
 * as TCP's would), no handover
 * to kernel TCP under way (the bridge's fallback; once the fd holds a
 * kernel socket its record no longer matches it), no TCP_NOTSENT_LOWAT shrinking the app's end, and
 * at most SHIM_APPSEND_MAX bytes: a bulk writer gains nothing (the engine is
 * busy) and would hold the lock long. Otherwise the kernel's call runs,
 * as before. The engine in its turn (trylock fails) is never waited for:
 * it is awake and reads the bridge before it sleeps, so the write through
 * the bridge costs no wake-up then. Counted: "app-thread sends" in the
 * stats.
 *
 * Timers: the send may make the context's next deadline (the probe timeout
 * of the bytes just sent) earlier than the one the engine sleeps to; then
 * the thread arms the engine's timerfd for it; the engine disarms it at
 * its next sleep if it is then armed for earlier than needed. Events the
 * context queued meanwhile (rarely: a timer that came due) wake the engine
 * through its eventfd.
 *
 * Signals are blocked while the lock is held: a handler that called into
 * the shim (a close() waiting for the engine) would otherwise wait for a
 * lock its own thread holds.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <linux/sockios.h>
#include <linux/unix_diag.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"
#include "udpio.h"

#include "base/poison.h"


/* Which engine (index + 1, 0: unknown) carries each slot's connection:
 * written by that engine in its turn, read without a lock (the bridge is
 * then checked under the engine's turn lock). */
static _Atomic uint8_t engine_of_slot[SHIM_MAX_SLOTS];
/* ... and the id of the connection indexed there (0: none): after an exec
 * an inherited connection's slot index is also a slot of the new image's
 * engines, whose connection there is another (txring.c checks it). Set
 * after engine_of_slot, so that a reader that finds its id finds its
 * engine. */
static _Atomic uint64_t conn_of_slot[SHIM_MAX_SLOTS];

static const shim_watch_ops timer_ops;

int shim_appsend_start(struct engine *e)
{
    pthread_mutex_init(&e->turn_mu, NULL);
    e->tfd = -1;
    e->sleep_until = RUDP_TIME_NEVER;
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    e->tfd = shim_fd_move_high(fd);
    shim_own_fd(e->tfd, 1);
    shim_watch_set(&e->tfd_w, &timer_ops);
    struct epoll_event ee = {.events = EPOLLIN, .data.ptr = &e->tfd_w};
    if (real_epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->tfd, &ee) < 0) {
        int err = -errno;
        shim_close_owned(e->tfd); /* a timerfd the engine does not watch must not be armed */
        e->tfd = -1;
        return err;
    }
    return 0;
}

void shim_appsend_renew(struct engine *e)
{
    pthread_mutex_init(&e->turn_mu, NULL);
}

void shim_appsend_index(bridge *b)
{
    struct engine *e = b->e;
    if (b->slot >= SHIM_MAX_SLOTS ||
        (!shim_cfg.app_send && !shim_cfg.app_recv && !shim_cfg.send_ring))
        return;
    if (!e->by_slot) {
        e->by_slot = shim_calloc(SHIM_MAX_SLOTS, sizeof *e->by_slot);
        if (!e->by_slot) {
            /* the bridge's way only: no app thread may take the slot for
             * the engine of a connection that had it before */
            atomic_store_explicit(&engine_of_slot[b->slot], 0, memory_order_release);
            atomic_store_explicit(&conn_of_slot[b->slot], 0, memory_order_release);
            return;
        }
    }
    if (b->indexed != UINT32_MAX && b->indexed != b->slot)
        shim_appsend_forget(b);
    e->by_slot[b->slot] = b;
    b->indexed = b->slot;
    if (b->sp) /* for the program's epoll sets (interpose/epoll.c) */
        atomic_store_explicit(&b->sp->engine, (uint32_t)(e - G.e + 1), memory_order_relaxed);
    atomic_store_explicit(&engine_of_slot[b->slot], (uint8_t)(e - G.e + 1),
                          memory_order_release);
    atomic_store_explicit(&conn_of_slot[b->slot], b->id, memory_order_release);
}

void shim_appsend_forget(bridge *b)
{
    struct engine *e = b->e;
    if (b->indexed != UINT32_MAX && e->by_slot && e->by_slot[b->indexed] == b) {
        e->by_slot[b->indexed] = NULL;
        /* unless another engine's connection has the slot since */
        uint8_t mine = (uint8_t)(e - G.e + 1);
        uint64_t id = b->id;
        atomic_compare_exchange_strong(&conn_of_slot[b->indexed], &id, 0);
        atomic_compare_exchange_strong(&engine_of_slot[b->indexed], &mine, 0);
    }
    b->indexed = UINT32_MAX;
}

/* Arms e's timerfd for `at`, or disarms it for never (turn_mu held): 1, or
 * 0 if it cannot be. */
static int arm(struct engine *e, rudp_time at)
{
    struct itimerspec t;
    memset(&t, 0, sizeof t);
    if (at == RUDP_TIME_NEVER) {
        if (timerfd_settime(e->tfd, 0, &t, NULL) < 0)
            return 0;
        e->tfd_at = 0;
        e->sleep_until = RUDP_TIME_NEVER;
        return 1;
    }
    t.it_value = shim_timespec(at);
    if (t.it_value.tv_sec == 0 && t.it_value.tv_nsec == 0)
        t.it_value.tv_nsec = 1; /* 0 would disarm it */
    if (timerfd_settime(e->tfd, TFD_TIMER_ABSTIME, &t, NULL) < 0)
        return 0;
    e->tfd_arms++;
    e->tfd_at = at;
    e->sleep_until = at;
    return 1;
}

int shim_appsend_sleep(struct engine *e, rudp_time wake)
{
    /* No app thread took a turn since the last sleep (a bulk sender, whose
     * writes wait in the bridge behind bytes the network has not taken; a
     * receiver whose reads found bytes): the wait's own timeout, as with
     * many connections. The timerfd cost its pacer an arm and a read each
     * wake-up (16,000 of its 80,000 system calls per 100 MB on B1). A turn that then
     * wants the engine earlier arms the timerfd (shim_appsend_wake_by) and
     * the next sleep is the timerfd's again; one that pushes the deadline
     * later costs one wake-up for nothing. Only where the wait keeps
     * nanoseconds: epoll_pwait's milliseconds would make a pacer's 1 ms
     * bursts late by up to as much. The wait's timeout carries the
     * thread's timer slack (50 us by default), as with many connections:
     * B23's sender woke 90 us past its deadlines on average, 47 with the
     * timerfd, at the same goodput. */
    uint64_t turns = e->app_sends + e->app_turns + e->app_core_passes;
    int quiet = turns == e->turns_at_sleep && !e->tfd_at && shim_real_epoll_ns();
    e->turns_at_sleep = turns;
    if (e->tfd < 0 || !e->turn_open || !shim_appsend_few() || quiet) {
        /* no app thread takes a turn with more connections than that:
         * the wait's own timeout costs no system call of its own */
        e->sleep_until = wake;
        return 0;
    }
    /* The timerfd is the engine's only timer while app threads may take
     * its turn: they move it later as well as earlier (keep_timers), so
     * that a deadline a ping-pong's app thread keeps pushing on (the probe
     * timeout of the request before, acknowledged since) wakes nobody.
     * Armed for earlier than `wake`, it stays: it fires at most once, and
     * the engine then arms it for what it needs, where arming it on every
     * turn would cost a system call each. */
    if (e->tfd_at && e->tfd_at <= wake) {
        e->sleep_until = e->tfd_at;
        return 1;
    }
    if (wake == RUDP_TIME_NEVER) {
        e->sleep_until = RUDP_TIME_NEVER;
        return 1;
    }
    if (arm(e, wake))
        return 1;
    e->sleep_until = wake; /* cannot arm it: the wait's own timeout */
    return 0;
}

/* The timerfd an app thread armed fired (the engine's epoll, hooks.h):
 * the engine is awake for its deadline. */
static void timer_event(void *obj, uint32_t events, rudp_time now)
{
    (void)events;
    struct engine *e = SHIM_CONTAINER(obj, struct engine, tfd_w);
    uint64_t ticks;
    /* none: an app thread armed it again meanwhile (keep_timers) */
    if (real_read(e->tfd, &ticks, sizeof ticks) != (ssize_t)sizeof ticks)
        return;
    if (now >= e->tfd_at) {
        e->timed_wakeups++;
        e->late_ns += now - e->tfd_at;
    }
    e->tfd_at = 0;
}

static const shim_watch_ops timer_ops = {.event = timer_event};

/* The inode of the app's end of b's bridge, asked of the kernel once
 * (unix_diag: the peer of b's end): the record's slot and id name a bridge
 * of this image's engines, but an fd inherited over exec may carry the same
 * pair for another connection (a new image numbers both afresh). 0: not
 * known (no unix_diag here): the app thread never sends for b. */
uint64_t shim_appsend_app_ino(bridge *b)
{
    if (!b->app_peer_ino) {
        struct stat st;
        uint32_t peer = 0;
        b->app_peer_ino = UINT64_MAX;
        if (fstat(b->efd, &st) == 0 &&
            shim_unix_diag_u32((uint64_t)st.st_ino, UDIAG_SHOW_PEER, UNIX_DIAG_PEER, &peer) == 1 &&
            peer)
            b->app_peer_ino = peer;
    }
    return b->app_peer_ino == UINT64_MAX ? 0 : b->app_peer_ino;
}

/* Whether b, found for rec, can take n bytes from an app thread now;
 * turn_mu held. */
static int can_take(bridge *b, const shim_fd *rec, size_t n)
{
    if (!b || b->slot != rec->slot || b->id != rec->id || !b->established || !b->unix_up ||
        b->hup || b->app_eof || b->app_gone || b->draining || b->filler || b->fb ||
        b->efd < 0 || !b->conn || !b->sp || b->txo_len)
        return 0;
    if (rudp_conn_write_space(b->conn) < n)
        return 0;
    /* Everything before sent: a writer ahead of the network goes through
     * the bridge, where the engine gathers its writes into full datagrams
     * and the bridge's buffer bounds what it may queue, as SO_SNDBUF
     * bounds TCP's (the send buffer's own limit follows the congestion
     * window: taking every write while it has room let a peer that reads
     * nothing absorb 300 KiB and more, prog_writeq). */
    if (rudp_conn_unsent(b->conn) != 0)
        return 0;
    if (shim_appsend_app_ino(b) != rec->ino)
        return 0; /* the fd is another connection's app end */
    /* Nothing of the app's waits in the bridge, and it did not shut
     * writing down: its bytes and its EOF go first (a peek answers both:
     * 0 at EOF, >0 with bytes, EAGAIN with neither). */
    char c;
    ssize_t r = real_recvfrom(b->efd, &c, 1, MSG_PEEK | MSG_DONTWAIT, NULL, NULL);
    return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* Copies the app's n bytes (iov) into the connection's send buffer and
 * commits them, or nothing: a guarded copy (fault.c; else the kernel's,
 * process_vm_readv on ourselves), so a bad pointer is an error here,
 * EFAULT from libc's call after, as TCP's, not a fault. 1 done; 0 not
 * (-errno in *err). */
static int take_bytes(bridge *b, pid_t me, const struct iovec *iov, int iovcnt, size_t n,
                      rudp_time now, int *err)
{
    rudp_span sp[4];
    struct iovec to[4];
    int k = rudp_conn_reserve_spans(b->conn, sp, 4);
    size_t room = 0;
    for (int i = 0; i < k && room < n; i++) {
        to[i].iov_base = sp[i].p;
        to[i].iov_len = sp[i].len < n - room ? sp[i].len : n - room;
        room += to[i].iov_len;
        k = i + 1;
    }
    if (k <= 0 || room < n) {
        *err = -ENOBUFS;
        return 0;
    }
    ssize_t got = shim_app_copyv(me, to, k, iov, iovcnt, 0);
    if (got != (ssize_t)n) {
        *err = got < 0 ? -errno : -EFAULT;
        return 0;
    }
    shim_slot *s = b->sp;
    atomic_fetch_add(&s->seq, 1); /* SIOCOUTQ: bytes on their way into `unacked` */
    rudp_conn_commit(b->conn, now, n);
    shim_bridge_publish(b);
    atomic_fetch_add(&s->seq, 1);
    return 1;
}

/* The engine wakes by `at` (turn_mu held): the timerfd armed earlier if
 * it would sleep past it, or the engine woken now. Not while a socket is
 * the app's (apprecv.c's linger, whose end the engine is due by) and `at`
 * is at most SHIM_APP_LINGER before the engine's wake-up: moving a timer
 * costs a system call and, in a VM, the hardware timer's (3.5 us here,
 * against the 30 us round trip it is paid on), while what it is for is
 * then a ping-pong's ACK that the next request carries (RUDP_ACK_SOON or
 * less): sent at most SHIM_APP_LINGER late, should none come, where Linux
 * TCP's delayed ACK waits 40 ms. */
void shim_appsend_wake_by(struct engine *e, rudp_time at)
{
    if (at >= e->sleep_until ||
        (atomic_load_explicit(&e->app_lingering, memory_order_relaxed) > 0 &&
         e->sleep_until - at <= SHIM_APP_LINGER))
        return;
    if (!arm(e, at)) {
        uint64_t one = 1; /* cannot arm it: wake the engine instead */
        ssize_t w = real_write(e->evfd, &one, sizeof one);
        (void)w;
    }
}

/* After an app thread's turn, with the core's next deadline: the engine
 * wakes by the time it now needs (computed as its loop does, next_wake),
 * earlier if its timer is set for later, later if it is set for a time
 * the turn made needless and that is near (at most one system call in
 * several turns: not before half the time to the new one has passed). */
void shim_appsend_keep_timers(struct engine *e, rudp_time deadline)
{
    if (rudp_ctx_events_pending(e->ctx) || e->roam_due) {
        uint64_t one = 1;
        ssize_t w = real_write(e->evfd, &one, sizeof one);
        (void)w;
        return;
    }
    rudp_time wake = deadline;
    if (e->kept_at < wake)
        wake = e->kept_at; /* apprecv.c: bytes kept for a poll's reader */
    if (e->retry_at < wake)
        wake = e->retry_at;
    if (e->fallback_at < wake)
        wake = e->fallback_at;
    if (e->roam_at < wake)
        wake = e->roam_at;
    if (e->ctl_at < wake)
        wake = e->ctl_at;
    if (e->mod_at < wake)
        wake = e->mod_at; /* rxmod.c: its unwatched sockets */
    if (wake < e->sleep_until) {
        shim_appsend_wake_by(e, wake);
        return;
    }
    if (!e->tfd_at || e->tfd_at != e->sleep_until || e->tfd_at >= wake)
        return;
    rudp_time lease = shim_apprecv_lease_min(e); /* lease_at only ever moves earlier */
    if (lease < wake)
        wake = lease;
    rudp_time now = shim_now();
    if (wake <= e->tfd_at || (e->tfd_at > now && (e->tfd_at - now) * 2 > wake - now))
        return; /* still needed, or not near yet */
    arm(e, wake); /* left as it was if it cannot be: it wakes the engine */
}

/* More connections than this on the process's engines and the path is not
 * taken: each engine then wakes for the others anyway, so saving a wake-up
 * saves little, while the writing thread, often a single-threaded server's
 * only one (redis), does the engine's work on top of its own. Measured
 * (B13, redis-benchmark -c 50, kernel TCP in the same run): taken there, it
 * cost 20% of the requests per second (5 more system calls per request on
 * redis's thread); on one connection's ping-pong (B6) it cut the round
 * trip by 20%. */
#define APPSEND_CONNS 16

int shim_appsend_few(void)
{
    int nrun = __atomic_load_n(&G.nrun, __ATOMIC_ACQUIRE);
    unsigned conns = 0;
    for (int k = 0; k < nrun; k++)
        conns += atomic_load_explicit(&G.e[k].nbridges, memory_order_relaxed);
    return conns <= APPSEND_CONNS;
}

int shim_engine_app_send_may(void)
{
    if (!shim_cfg.app_send || shim_sandboxed() || shim_fds_apart())
        return 0; /* apart: a turn would act on the program's table (enginestart.c) */
    int nrun = __atomic_load_n(&G.nrun, __ATOMIC_ACQUIRE), asleep = 0;
    unsigned conns = 0;
    for (int k = 0; k < nrun; k++) {
        conns += atomic_load_explicit(&G.e[k].nbridges, memory_order_relaxed);
        asleep |= atomic_load_explicit(&G.e[k].asleep, memory_order_relaxed);
    }
    return asleep && conns <= APPSEND_CONNS;
}

/* process_vm_readv refused (a sandbox without it): never tried again. */
static _Atomic int copy_refused;

struct engine *shim_appsend_engine_of_conn(uint32_t slot, uint64_t id)
{
    if (slot >= SHIM_MAX_SLOTS ||
        atomic_load_explicit(&conn_of_slot[slot], memory_order_acquire) != id)
        return NULL;
    return shim_appsend_engine_of(slot);
}

struct engine *shim_appsend_engine_of(uint32_t slot)
{
    if (slot >= SHIM_MAX_SLOTS)
        return NULL;
    unsigned k = atomic_load_explicit(&engine_of_slot[slot], memory_order_acquire);
    int nrun = __atomic_load_n(&G.nrun, __ATOMIC_ACQUIRE);
    return k == 0 || (int)k > nrun ? NULL : &G.e[k - 1];
}

int shim_engine_app_send(int fd, const struct iovec *iov, int iovcnt, size_t n, ssize_t *sent)
{
    if (!shim_cfg.app_send || n == 0 || n > SHIM_APPSEND_MAX || shim_cfg.qlog_dirfd >= 0 ||
        shim_sandboxed() ||
        atomic_load_explicit(&copy_refused, memory_order_relaxed))
        return 0; /* with qlog on, the trace's lock is the engine's alone */
    shim_fd rec;
    if (shim_fd_tryget(fd, &rec) != 1 || rec.kind != SHIM_FD_BRIDGED ||
        rec.slot >= SHIM_MAX_SLOTS || rec.sndbuf_shown)
        return 0;
    unsigned k = atomic_load_explicit(&engine_of_slot[rec.slot], memory_order_acquire);
    int nrun = __atomic_load_n(&G.nrun, __ATOMIC_ACQUIRE);
    if (k == 0 || (int)k > nrun)
        return 0;
    struct engine *e = &G.e[k - 1];
    if (!atomic_load_explicit(&e->asleep, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&e->app_busy, 1, memory_order_relaxed);
        return 0; /* awake: it reads the bridge before it sleeps */
    }
    pid_t me = shim_procenv_self();
    if (__atomic_load_n(&G.pid, __ATOMIC_RELAXED) != me || shim_alloc_held())
        return 0; /* a child's copy; or a handler that interrupted the allocator */
    shim_crit crit;
    if (!shim_crit_enter(&crit)) /* fault.c's guarded copies take the faults */
        return 0;
    /* and no cancellation while the turn is held: sendmmsg is a
     * cancellation point, and a thread cancelled there would keep it */
    int cancel;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel);
    int done = 0, err = 0;
    if (pthread_mutex_trylock(&e->turn_mu) != 0) {
        atomic_fetch_add_explicit(&e->app_busy, 1, memory_order_relaxed);
    } else {
        rudp_time now = shim_now();
        bridge *b = e->turn_open && e->by_slot && now < e->sleep_until &&
                            !atomic_load(&e->cmd_queued) /* TCP_CORK and the like first */
                        ? e->by_slot[rec.slot]
                        : NULL;
        /* what the app wrote in memory before (txring.c) goes first: taken
         * now, and this write through the bridge if some still waits */
        if (b)
            shim_txring_take(e, now);
        if (can_take(b, &rec, n) && take_bytes(b, me, iov, iovcnt, n, now, &err)) {
            rudp_time deadline = rudp_ctx_process(e->ctx, now);
            e->app_core_passes++;
            shim_udpio_flush(e->io);
            e->app_sends++;
            shim_appsend_keep_timers(e, deadline);
            *sent = (ssize_t)n;
            done = 1;
        }
        pthread_mutex_unlock(&e->turn_mu);
    }
    pthread_setcancelstate(cancel, NULL);
    shim_crit_leave(&crit);
    if (err == -EPERM || err == -ENOSYS)
        atomic_store(&copy_refused, 1);
    return done;
}
