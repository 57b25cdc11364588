/*
 * poll.c: a poll() or ppoll() that waits for one of our bridges to become
 * readable waits on that connection's UDP socket too, as a blocking read
 * does (RUDP_APP_RECV, engine/apprecv.c): the datagram wakes the polling
 * thread alone, which runs the engine's part and delivers into the bridge
 * before it answers, where the engine thread would have been woken to do
 * it and then woken the program through the bridge. curl, nc, ssh and
 * Python's sockets with a timeout wait in poll().
 *
 * The first bridge in the array that asks for POLLIN, whose connection is
 * on a fast path (its slot's smoothed RTT, as the read's rule), is the one:
 * its socket is added to a copy of the array for each wait, of at most
 * SHIM_APP_WAIT_MS; others are served by their engines as before. What the
 * program is told is what the kernel's poll says of its own fds: after a
 * wait the datagram ended, the array is asked again without waiting (the
 * delivery may have made a bridge readable); nothing for the program and
 * time left, it waits again; a wait that saw nothing for SHIM_APP_WAIT_MS
 * leaves the rest of the call to the kernel (an idle connection costs no
 * periodic wake-up). Signals: every one is held back from the wait's
 * start to its end (a handler then would run with the socket the thread's:
 * the shim's own for SIGTERM hands the engines to a keeper); a signalfd
 * for those the program's mask (ppoll's own, or the thread's) lets in ends
 * the wait, and once the socket is given back the signal is let in with
 * that mask: a handler that ran makes the call fail with EINTR, as poll()
 * always does (never restarted: man 7 signal); a signal that runs none
 * (ignored) lets the wait go on. The rest of a call that leaves the path
 * is libc's, with the program's mask.
 *
 * Anything else (no such bridge, a zero timeout, more than POLL_FAST_MAX
 * fds, the path off or not now) is libc's call, after one look at each
 * fd's hint (no system call).
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "interpose.h"

int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen);
int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *tmo, const sigset_t *mask,
                size_t fdslen);

/* Arrays longer than this are libc's alone: the copy is on the stack. */
#define POLL_FAST_MAX 64

/* The fd of the first entry that waits for one of our bridges to be
 * readable on a fast path, or -1. */
static int candidate(const struct pollfd *fds, nfds_t n)
{
    for (nfds_t i = 0; i < n; i++) {
        if (fds[i].fd < 0 || !(fds[i].events & (POLLIN | POLLRDNORM)))
            continue;
        shim_slot *h = shim_fd_hinted(fds[i].fd);
        if (h && atomic_load_explicit(&h->rtt_us, memory_order_relaxed) <= SHIM_APPRECV_RTT_US)
            return fds[i].fd;
    }
    return -1;
}

static int64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static struct timespec ts_of(int64_t ns)
{
    struct timespec t = {.tv_sec = (time_t)(ns / 1000000000LL), .tv_nsec = (long)(ns % 1000000000LL)};
    return t;
}

/* A signal the wait's mask lets in came (every one held back): let in
 * with that mask (its handler runs now, outside the engine's turn), then
 * held back again. 1: poll() says EINTR (a handler ran); 0: none did (a
 * default action that ignores, or the shim's stand-in, whose keeper
 * hand-over then ends the process): the wait goes on, as the kernel's. */
static int let_in(const sigset_t *mask)
{
    sigset_t pend, held;
    if (sigpending(&pend) < 0)
        return 0;
    int eintr = shim_signals_handled(&pend, mask);
    pthread_sigmask(SIG_SETMASK, mask, &held);
    pthread_sigmask(SIG_SETMASK, &held, NULL);
    return eintr;
}

/* With every signal held back; `mask` the program's for the wait. 1 with
 * *out the call's result (errno set); 0: the call is libc's, as asked
 * (nothing waited for yet). */
static int wait_held(int cand, struct pollfd *fds, nfds_t n, const struct timespec *tmo,
                     const sigset_t *mask, int *out)
{
    static const struct timespec zero;
    int64_t end = tmo ? mono_ns() + (int64_t)tmo->tv_sec * 1000000000LL + tmo->tv_nsec : 0;
    struct pollfd p[POLL_FAST_MAX + 2];
    for (int waits = 0;; waits++) {
        int64_t left = tmo ? end - mono_ns() : INT64_MAX;
        if (left < 0)
            left = 0;
        shim_app_wait w;
        if (left == 0 || !shim_engine_app_wait_begin(cand, mask, &w)) {
            if (waits == 0)
                return 0;
            break; /* the rest is the kernel's */
        }
        int64_t cap = (int64_t)SHIM_APP_WAIT_MS * 1000000LL;
        struct timespec wt = ts_of(left < cap ? left : cap);
        memcpy(p, fds, n * sizeof *p);
        p[n] = (struct pollfd){.fd = w.udp_fd, .events = POLLIN};
        p[n + 1] = (struct pollfd){.fd = w.sigfd, .events = POLLIN};
        int r = real_ppoll(p, n + 2, &wt, NULL); /* a cancellation point, as poll() */
        int err = errno;
        short udp = r > 0 ? p[n].revents : 0;
        short sig = r > 0 ? p[n + 1].revents : 0;
        shim_engine_app_wait_end(&w, udp, 1);
        if (r < 0) {
            errno = err;
            *out = -1;
            return 1;
        }
        if (sig && let_in(mask)) {
            *out = -1;
            errno = EINTR;
            return 1;
        }
        if (r > 0 && udp & (POLLIN | POLLERR)) {
            /* what came may have made a bridge readable: the program's
             * array as it stands now */
            memcpy(p, fds, n * sizeof *p);
            r = real_ppoll(p, n, &zero, NULL);
            if (r < 0) {
                *out = -1;
                return 1;
            }
        } else if (r > 0) {
            r -= (udp != 0) + (sig != 0); /* ours, not the program's */
        }
        if (r > 0) {
            for (nfds_t i = 0; i < n; i++)
                fds[i].revents = p[i].revents;
            *out = r;
            return 1;
        }
        if (!udp && !sig && wt.tv_sec * 1000000000LL + wt.tv_nsec >= cap)
            break; /* nothing came for a while: the rest is the kernel's */
    }
    /* with the program's mask: a signal now interrupts as the kernel's */
    int64_t left = tmo ? end - mono_ns() : -1;
    struct timespec lt = ts_of(left > 0 ? left : 0);
    *out = real_ppoll(fds, n, tmo ? &lt : NULL, mask);
    return 1;
}

/* 1 with *out the call's result (errno set); 0: make libc's call. */
static int app_poll(struct pollfd *fds, nfds_t n, const struct timespec *tmo, const sigset_t *mask,
                    int *out)
{
    if (!shim_cfg.app_recv || n == 0 || n > POLL_FAST_MAX ||
        (tmo && tmo->tv_sec == 0 && tmo->tv_nsec == 0))
        return 0;
    int cand = candidate(fds, n);
    if (cand < 0 || !shim_engine_app_recv_may())
        return 0;
    int saved = errno;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int done = wait_held(cand, fds, n, tmo, mask ? mask : &old, out);
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL); /* a pending signal's handler runs here */
    errno = done ? err : saved;
    return done;
}

SHIM_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    int r;
    struct timespec t = {.tv_sec = timeout / 1000, .tv_nsec = (long)(timeout % 1000) * 1000000L};
    if (app_poll(fds, n, timeout < 0 ? NULL : &t, NULL, &r))
        return r;
    return real_poll(fds, n, timeout);
}

SHIM_EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *tmo, const sigset_t *mask)
{
    int r;
    if ((!tmo || (tmo->tv_sec >= 0 && tmo->tv_nsec >= 0 && tmo->tv_nsec < 1000000000L)) &&
        app_poll(fds, n, tmo, mask, &r))
        return r;
    return real_ppoll(fds, n, tmo, mask);
}

/* _FORTIFY_SOURCE's forms: libc's check first (it ends the program). */
SHIM_EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
    int r;
    struct timespec t = {.tv_sec = timeout / 1000, .tv_nsec = (long)(timeout % 1000) * 1000000L};
    if (fdslen / sizeof *fds >= n && app_poll(fds, n, timeout < 0 ? NULL : &t, NULL, &r))
        return r;
    return real_poll_chk(fds, n, timeout, fdslen);
}

SHIM_EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *tmo,
                            const sigset_t *mask, size_t fdslen)
{
    int r;
    if (fdslen / sizeof *fds >= n &&
        (!tmo || (tmo->tv_sec >= 0 && tmo->tv_nsec >= 0 && tmo->tv_nsec < 1000000000L)) &&
        app_poll(fds, n, tmo, mask, &r))
        return r;
    return real_ppoll_chk(fds, n, tmo, mask, fdslen);
}
