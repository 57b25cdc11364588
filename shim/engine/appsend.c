/*
 * appsend.c: the application thread that writes to a bridge and finds its
 * engine asleep sends the bytes itself (issue 33's per-request cost).
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
 * at most APPSEND_MAX bytes: a bulk writer gains nothing (the engine is
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
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"
#include "udpio.h"

#include "base/poison.h"

/* Writes of more bytes than this always go through the bridge. */
#define APPSEND_MAX 16384

/* Which engine (index + 1, 0: unknown) carries each slot's connection:
 * written by that engine in its turn, read without a lock (the bridge is
 * then checked under the engine's turn lock). */
static _Atomic uint8_t engine_of_slot[SHIM_MAX_SLOTS];

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
    e->tfd_type = W_TIMER;
    struct epoll_event ee = {.events = EPOLLIN, .data.ptr = &e->tfd_type};
    if (real_epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->tfd, &ee) < 0)
        return -errno;
    return 0;
}

void shim_appsend_renew(struct engine *e)
{
    pthread_mutex_init(&e->turn_mu, NULL);
}

void shim_appsend_index(bridge *b)
{
    struct engine *e = b->e;
    if (b->slot >= SHIM_MAX_SLOTS || !shim_cfg.app_send)
        return;
    if (!e->by_slot) {
        e->by_slot = shim_calloc(SHIM_MAX_SLOTS, sizeof *e->by_slot);
        if (!e->by_slot)
            return; /* the bridge's way only */
    }
    if (b->indexed != UINT32_MAX && b->indexed != b->slot)
        shim_appsend_forget(b);
    e->by_slot[b->slot] = b;
    b->indexed = b->slot;
    atomic_store_explicit(&engine_of_slot[b->slot], (uint8_t)(e - G.e + 1),
                          memory_order_release);
}

void shim_appsend_forget(bridge *b)
{
    struct engine *e = b->e;
    if (b->indexed != UINT32_MAX && e->by_slot && e->by_slot[b->indexed] == b)
        e->by_slot[b->indexed] = NULL;
    b->indexed = UINT32_MAX;
}

void shim_appsend_sleep(struct engine *e, rudp_time wake)
{
    /* Armed for earlier than the engine now needs: it would wake it for
     * nothing. Armed for later, it stays: it fires at most once, where
     * disarming would cost a system call on every turn of a ping-pong. */
    if (e->tfd_at && e->tfd_at < wake) {
        struct itimerspec off;
        memset(&off, 0, sizeof off);
        timerfd_settime(e->tfd, 0, &off, NULL);
        e->tfd_at = 0;
    }
    e->sleep_until = wake;
}

void shim_appsend_timer(struct engine *e)
{
    uint64_t ticks;
    ssize_t r = read(e->tfd, &ticks, sizeof ticks);
    (void)r;
    e->tfd_at = 0;
}

/* Whether b's connection can take n bytes from an app thread now; turn_mu
 * held. */
static int can_take(const bridge *b, uint32_t slot, uint64_t id, size_t n)
{
    if (!b || b->slot != slot || b->id != id || !b->established || !b->unix_up || b->hup ||
        b->app_eof || b->app_gone || b->draining || b->filler || b->fb || b->efd < 0 || !b->conn)
        return 0;
    if (rudp_conn_write_space(b->conn) < n)
        return 0;
    /* Everything before sent: a writer ahead of the network goes through
     * the bridge, where the engine gathers its writes into full datagrams
     * and the bridge's buffer bounds what it may queue, as SO_SNDBUF
     * bounds TCP's (the send buffer's own limit follows the congestion
     * window: taking every write while it has room let a peer that reads
     * nothing absorb 300 KiB and more, prog_writeq). */
    rudp_conn_info i;
    rudp_conn_get_info(b->conn, &i);
    return i.unsent_bytes == 0;
}

/* The bytes in, sent, the engine's timers kept right; turn_mu held. */
static void send_now(struct engine *e, bridge *b, const struct iovec *iov, int iovcnt,
                     rudp_time now)
{
    shim_slot *s = b->sp;
    if (s)
        atomic_fetch_add(&s->seq, 1); /* SIOCOUTQ: bytes on their way into `unacked` */
    for (int i = 0; i < iovcnt; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t left = iov[i].iov_len;
        while (left) {
            rudp_span sp[1];
            if (rudp_conn_reserve_spans(b->conn, sp, 1) <= 0)
                break; /* cannot be: the room was checked */
            size_t m = sp[0].len < left ? sp[0].len : left;
            memcpy(sp[0].p, p, m);
            rudp_conn_commit(b->conn, now, m);
            p += m;
            left -= m;
        }
    }
    if (s) {
        rudp_conn_info i;
        rudp_conn_get_info(b->conn, &i);
        atomic_store(&s->unacked, i.unacked_bytes);
        atomic_store(&s->unsent, i.unsent_bytes);
        atomic_fetch_add(&s->seq, 1);
    }
    rudp_time deadline = rudp_ctx_process(e->ctx, now);
    shim_udpio_flush(e->io);
    e->app_sends++;
    if (rudp_ctx_events_pending(e->ctx) || e->roam_due) {
        uint64_t one = 1;
        ssize_t w = real_write(e->evfd, &one, sizeof one);
        (void)w;
    } else if (deadline < e->sleep_until) {
        struct itimerspec at;
        memset(&at, 0, sizeof at);
        at.it_value.tv_sec = (time_t)(deadline / 1000000000ull);
        at.it_value.tv_nsec = (long)(deadline % 1000000000ull);
        if (at.it_value.tv_sec == 0 && at.it_value.tv_nsec == 0)
            at.it_value.tv_nsec = 1; /* 0 would disarm it */
        if (timerfd_settime(e->tfd, TFD_TIMER_ABSTIME, &at, NULL) == 0) {
            e->tfd_at = deadline;
            e->sleep_until = deadline;
        } else {
            uint64_t one = 1; /* cannot arm it: wake the engine instead */
            ssize_t w = real_write(e->evfd, &one, sizeof one);
            (void)w;
        }
    }
}

int shim_engine_app_send(const shim_fd *rec, const struct iovec *iov, int iovcnt, size_t n,
                         ssize_t *sent)
{
    if (!shim_cfg.app_send || n == 0 || n > APPSEND_MAX || rec->kind != SHIM_FD_BRIDGED ||
        rec->slot >= SHIM_MAX_SLOTS || rec->sndbuf_shown)
        return 0;
    unsigned k = atomic_load_explicit(&engine_of_slot[rec->slot], memory_order_acquire);
    int nrun = __atomic_load_n(&G.nrun, __ATOMIC_ACQUIRE);
    if (k == 0 || (int)k > nrun || __atomic_load_n(&G.pid, __ATOMIC_RELAXED) != getpid())
        return 0; /* not one of this process's engines' (a child's copy, an inherited fd) */
    struct engine *e = &G.e[k - 1];
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int done = 0;
    if (pthread_mutex_trylock(&e->turn_mu) != 0) {
        atomic_fetch_add_explicit(&e->app_busy, 1, memory_order_relaxed);
    } else {
        rudp_time now = shim_now();
        bridge *b = e->turn_open && e->by_slot && now < e->sleep_until ? e->by_slot[rec->slot]
                                                                      : NULL;
        int queued = -1;
        if (can_take(b, rec->slot, rec->id, n) && real_ioctl(b->efd, SIOCINQ, &queued) == 0 &&
            queued == 0) {
            send_now(e, b, iov, iovcnt, now);
            *sent = (ssize_t)n;
            done = 1;
        }
        pthread_mutex_unlock(&e->turn_mu);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return done;
}
