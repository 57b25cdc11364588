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
 * periodic wake-up). Signals: no handler of the program runs from the
 * wait's start to its end (one then would run with the socket the
 * thread's: the shim's own for SIGTERM hands the engines to a keeper),
 * deferred to the end of a section or held by the mask (wait_held says
 * which, and how a signal then ends the call: EINTR after its handler,
 * as poll() always does, never restarted: man 7 signal; one that runs
 * none lets the wait go on).
 *
 * Anything else (no such bridge, a zero timeout, more than POLL_FAST_MAX
 * fds, the path off or not now) is libc's call, after one look at each
 * fd's hint (no system call).
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include "interpose.h"

int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen);
int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *tmo, const sigset_t *mask,
                size_t fdslen);

/* Arrays longer than this are libc's alone: the copy is on the stack. */
#define POLL_FAST_MAX SHIM_WAIT_FDS_MAX

/* The fd of the first entry that waits for one of our bridges to be
 * readable on a fast path, or -1. */
static int candidate(const struct pollfd *fds, nfds_t n)
{
    for (nfds_t i = 0; i < n; i++) {
        if (fds[i].fd < 0 || !(fds[i].events & (POLLIN | POLLRDNORM)))
            continue;
        if (shim_app_recv_slot(shim_fd_hinted(fds[i].fd)))
            return fds[i].fd;
    }
    return -1;
}

/* A thread cancelled in its wait (ppoll() is a cancellation point): the
 * socket given back at once, rather than a lease left to run out; the
 * section is left by shim_app_wait_call's own cleanup, which runs next. */
typedef struct wait_cleanup {
    shim_app_wait *w;
    int in;
} wait_cleanup;

static void cancelled(void *arg)
{
    wait_cleanup *c = arg;
    shim_cancel_unwound();
    shim_engine_app_wait_end(c->w, 0, c->in);
}

/* The wait itself: ppoll() on p's k entries with hold as its mask (NULL:
 * the thread's, which holds every signal then), cancellation handled. */
static int wait_once(shim_app_wait *w, int in, const sigset_t *hold, struct pollfd *p,
                     nfds_t k, const struct timespec *wt)
{
    wait_cleanup wc = {.w = w, .in = in};
    int r;
    pthread_cleanup_push(cancelled, &wc);
    r = real_ppoll(p, k, wt, hold); /* a cancellation point, as the call */
    pthread_cleanup_pop(0);
    return r;
}

/* Whether no entry of p's n for fd saw anything. */
static int quiet(const struct pollfd *p, nfds_t n, int fd)
{
    for (nfds_t i = 0; i < n; i++)
        if (p[i].fd == fd && p[i].revents)
            return 0;
    return 1;
}

/* The kernel's call for what is left of the call's time (end; tmo NULL:
 * none), with mask. */
static int rest_until(const shim_wait_ops *ops, void *arg, const struct timespec *tmo,
                      rudp_time end, const sigset_t *mask)
{
    rudp_time now = shim_now();
    struct timespec lt = shim_timespec(end > now ? end - now : 0);
    return ops->rest(arg, tmo ? &lt : NULL, mask);
}

/* What wait_held leaves to its caller. */
enum { WAIT_NOT_TAKEN, WAIT_DONE, WAIT_DONE_LEFT /* ... and crit is over */ };

/*
 * shim_app_wait_call inside crit, a section (base/crit.c) that either
 * holds every signal by the thread's mask (crit->masked; old: the mask
 * before, mask: the call's) or, for a call that brings no mask of its own
 * (poll, epoll_wait: mask NULL), defers the program's handlers to its end.
 * Deferring, the wait in the kernel takes the held mask itself, as ppoll()
 * does: no rt_sigprocmask around the call (two of a poll round trip's
 * system calls, as a blocked read's were, interpose/recv.c). A signal
 * that comes outside the wait is deferred; one that comes in it stays
 * pending, the signalfd ends the wait, and the section defers it as the
 * wait returns. Either is one the program lets in: a handler to run ends
 * the call with EINTR (poll() is never restarted: man 7 signal) and runs
 * at the section's end, before the call returns; one that runs none (the
 * shim's stand-in) runs at once and the wait goes on. A call with a mask
 * of its own (ppoll, epoll_pwait, epoll_pwait2) holds them by the mask,
 * as before: a signal its mask lets in and the thread's holds must run its
 * handler during the call, which a deferral (let in at the section's end,
 * past the thread's mask) cannot give.
 */
static int wait_held(int cand, int in, const struct timespec *tmo, const sigset_t *mask,
                     shim_crit *crit, sigset_t *old, int *in_section, const shim_wait_ops *ops,
                     void *arg, int *out)
{
    rudp_time end = RUDP_TIME_NEVER;
    if (tmo && tmo->tv_sec < 1000000000) /* longer: as good as for ever */
        end = shim_now() + (rudp_time)tmo->tv_sec * 1000000000ull + (rudp_time)tmo->tv_nsec;
    const rudp_time cap = RUDP_MS(SHIM_APP_WAIT_MS);
    struct pollfd p[POLL_FAST_MAX + 2];
    sigset_t hold_all; /* each call's own: no set another thread is filling */
    shim_sigfill_but_faults(&hold_all);
    const sigset_t *hold = crit->masked ? NULL : &hold_all;
    const sigset_t *let = mask ? mask : old; /* what the call lets in */
    for (int waits = 0;; waits++) {
        sigset_t pend, none;
        if (hold && shim_crit_deferred_set(&pend)) {
            sigemptyset(&none);
            if (shim_signals_handled(&pend, &none)) {
                *out = -1; /* their handlers run as the section ends */
                errno = EINTR;
                return WAIT_DONE;
            }
            if (!shim_crit_cycle(crit)) { /* their stand-ins run, then wait again */
                /* a handler left SIGSEGV or SIGBUS held: no section, the
                 * kernel's call for the rest */
                *in_section = 0;
                *out = rest_until(ops, arg, tmo, end, mask);
                return WAIT_DONE_LEFT;
            }
            /* entered again by the mask where deferring stopped meanwhile
             * (a keeper's hand-over): then as that */
            hold = crit->masked ? NULL : &hold_all;
            shim_crit_mask_hint(crit, old);
        }
        rudp_time now = shim_now();
        rudp_time left = end > now ? end - now : 0;
        shim_app_wait w;
        w.engs = ops->engines ? ops->engines(arg) : 0;
        if (left == 0 || !shim_engine_app_wait_begin(cand, let, in, &w)) {
            if (waits == 0)
                return WAIT_NOT_TAKEN;
            break; /* the rest is the kernel's */
        }
        struct timespec wt = shim_timespec(left < cap ? left : cap);
        nfds_t n = ops->fill(arg, p);
        p[n] = (struct pollfd){.fd = w.udp_fd, .events = POLLIN};
        p[n + 1] = (struct pollfd){.fd = w.sigfd, .events = POLLIN};
        int r = wait_once(&w, in, hold, p, n + 2, &wt);
        int err = errno;
        short udp = r > 0 ? p[n].revents : 0;
        short sig = r > 0 ? p[n + 1].revents : 0;
        /* poll's and select's bridge still empty (its entries quiet): what
         * the datagram brings may wait for the read instead of going
         * through it (engine/apprecv.c's keep) */
        shim_slot *h = shim_fd_hinted(cand);
        w.keep = (in == 1 || in == 3) && (udp & POLLIN) && h && quiet(p, n, cand) &&
                 shim_slot_keepable(h);
        if (w.whole && ops->key)
            w.keep_ep = ops->key(arg); /* an event loop's set: told from memory (epoll.c) */
        w.returned = r >= 0 || err == EINTR; /* not our own EINVAL (below) */
        shim_engine_app_wait_end(&w, udp, in);
        if (r < 0) {
            if (err == EINVAL) { /* our 2 more fds past RLIMIT_NOFILE */
                if (waits == 0)
                    return WAIT_NOT_TAKEN;
                break;
            }
            if (err == EINTR && hold)
                continue; /* a signal deferred as the wait returned: above */
            errno = err;
            *out = -1;
            return WAIT_DONE;
        }
        /* what is ready comes first: the kernel's call returns it and runs
         * a handler after */
        if (r > 0 && (*out = ops->ask(arg, p, r, udp, sig, w.kept ? cand : -1)) != 0)
            return WAIT_DONE;
        if (sig && hold) {
            /* deferred as the wait returned: above; else the signalfd
             * told of one the thread holds (its mask changed unseen: a
             * stale hint), which the mask asked and the next wait leaves
             * out */
            if (!shim_crit_deferred())
                shim_crit_mask_ask(crit, old);
            continue;
        }
        if (sig) {
            /* a signal the call's mask lets in: let in those pending now
             * (their handlers run, outside the engine's turn); one that
             * ran makes the call say EINTR (never restarted, man 7
             * signal); one that runs none (ignored, the shim's stand-in)
             * lets the wait go on, as the kernel's */
            if (sigpending(&pend) == 0) {
                int eintr = shim_signals_handled(&pend, let);
                shim_signals_let_in(&pend, let);
                if (eintr) {
                    *out = -1;
                    errno = EINTR;
                    return WAIT_DONE;
                }
            }
        }
        if (r == 0 && left >= cap)
            break; /* nothing came for a while: the rest is the kernel's */
    }
    /* The kernel's call for the rest, with the call's mask, inside the
     * section still: a signal deferred since the last look is pending and
     * let in by that mask, so the call says EINTR for it at once, and
     * one that comes during it is deferred as the call returns EINTR; its
     * handler runs as the section ends. Deferring, the thread's mask is
     * asked first (once per call that gets here: a wait that saw nothing
     * for a while), so that a stale hint never lets in what the program
     * holds. */
    if (hold && !mask)
        shim_crit_mask_ask(crit, old);
    *out = rest_until(ops, arg, tmo, end, let);
    return WAIT_DONE;
}

/* A thread cancelled in the call (its waits, the kernel's call for the
 * rest, the asks after a wait) leaves its section for its cleanup
 * handlers, with the program's mask: ppoll's own, holding every signal,
 * is not put back by the unwinding (a review's find, 2026-12-01). */
typedef struct call_cleanup {
    shim_crit *crit;
    const sigset_t *old;
    int in; /* the section still entered */
} call_cleanup;

static void call_cancelled(void *arg)
{
    call_cleanup *c = arg;
    shim_cancel_unwound();
    if (c->in)
        shim_crit_leave_cancelled(c->crit, c->old);
}

/* wait_held with call_cancelled as its cleanup (a function of its own:
 * pthread_cleanup_push's jump buffer clobbers its caller's locals) */
static int wait_cancellable(int cand, int in, const struct timespec *tmo, const sigset_t *mask,
                            call_cleanup *cc, sigset_t *old, const shim_wait_ops *ops, void *arg,
                            int *out)
{
    int done;
    pthread_cleanup_push(call_cancelled, cc);
    done = wait_held(cand, in, tmo, mask, cc->crit, old, &cc->in, ops, arg, out);
    pthread_cleanup_pop(0);
    return done;
}

int shim_app_wait_call(int cand, int in, const struct timespec *tmo, const sigset_t *mask,
                       const shim_wait_ops *ops, void *arg, int *out)
{
    int saved = errno;
    shim_crit crit;
    /* fault.c's guarded copies take the faults. Under TSan every wait
     * holds signals by the mask, as before ae0a35fb: TSan's runtime runs
     * a handler that comes outside its interceptors only at the end of
     * its next one, and its ppoll interceptor (the wait's ppoll there)
     * runs pending handlers and sets the mask around the call itself. A
     * deferral inside the wait did not survive that: prog_sigdefer spun
     * in the wait, and polleintr saw EINTR before the handler ran. */
#if defined(__SANITIZE_THREAD__)
    if (1) {
#else
    if (mask) {
#endif
        crit.masked = 1; /* a mask of the call's own: held by the thread's (wait_held) */
        if (!shim_hold_but_faults(&crit.old))
            return 0;
    } else if (!shim_crit_enter_wait(&crit)) {
        return 0;
    }
    sigset_t old;
    shim_crit_mask_hint(&crit, &old);
    call_cleanup cc = {.crit = &crit, .old = &old, .in = 1};
    int done = wait_cancellable(cand, in, tmo, mask, &cc, &old, ops, arg, out);
    int err = errno;
    if (cc.in)
        shim_crit_leave(&crit); /* a pending or deferred signal's handler runs here */
    errno = done != WAIT_NOT_TAKEN ? err : saved;
    return done != WAIT_NOT_TAKEN;
}

/* ---- poll() and ppoll() ---- */

typedef struct poll_call {
    struct pollfd *fds;
    nfds_t n;
} poll_call;

static nfds_t poll_fill(void *arg, struct pollfd *p)
{
    poll_call *c = arg;
    memcpy(p, c->fds, c->n * sizeof *p);
    return c->n;
}

/* What the kept bytes make of fd's entries in c's array: POLLIN as asked. */
static void kept_in(poll_call *c, int fd)
{
    for (nfds_t i = 0; i < c->n; i++)
        if (c->fds[i].fd == fd)
            c->fds[i].revents |= (short)(c->fds[i].events & (POLLIN | POLLRDNORM));
}

static int poll_ask(void *arg, struct pollfd *p, int r, short udp, short sig, int kept)
{
    static const struct timespec zero;
    poll_call *c = arg;
    if (kept >= 0 && c->n == 1 && !(c->fds[0].events & ~(POLLIN | POLLRDNORM))) {
        /* one entry, which asks for nothing a look could add: what is
         * kept for it is the answer */
        c->fds[0].revents = 0;
        kept_in(c, kept);
        return 1;
    }
    if (!(udp & (POLLIN | POLLERR))) {
        r -= (udp != 0) + (sig != 0); /* ours, not the program's */
        if (r <= 0)
            return 0;
        for (nfds_t i = 0; i < c->n; i++)
            c->fds[i].revents = p[i].revents;
        return r;
    }
    /* What came may have made a bridge readable: the program's array as
     * it stands now, with what the wait saw kept (a file that clears its
     * event when polled, /proc/self/mounts, shows it once). */
    for (nfds_t i = 0; i < c->n; i++)
        c->fds[i].revents = p[i].revents;
    memcpy(p, c->fds, c->n * sizeof *p);
    if (real_ppoll(p, c->n, &zero, NULL) < 0)
        return -1;
    for (nfds_t i = 0; i < c->n; i++)
        c->fds[i].revents |= p[i].revents;
    if (kept >= 0)
        kept_in(c, kept);
    r = 0;
    for (nfds_t i = 0; i < c->n; i++)
        r += c->fds[i].revents != 0;
    return r;
}

static int poll_rest(void *arg, const struct timespec *left, const sigset_t *mask)
{
    poll_call *c = arg;
    return real_ppoll(c->fds, c->n, left, mask);
}

static const shim_wait_ops poll_ops = {.fill = poll_fill, .ask = poll_ask, .rest = poll_rest};

int shim_app_poll(struct pollfd *fds, nfds_t n, const struct timespec *tmo, const sigset_t *mask,
                  int in, int *out)
{
    /* the kernel's answer for those from here on; bytes still kept from the
     * poll before, with no read of ours since, count toward keeping no more */
    if (shim_engine_app_kept_any())
        shim_engine_app_unkeep_all(1);
    if (!shim_cfg.app_recv || n == 0 || n > POLL_FAST_MAX)
        return 0;
    int cand = candidate(fds, n);
    if (cand < 0)
        return 0;
    if (tmo && tmo->tv_sec == 0 && tmo->tv_nsec == 0) {
        /* a look that does not wait: a socket lingering with the app (a
         * fast wait's) goes back to its engine, which reads what came */
        shim_engine_app_nowait();
        return 0;
    }
    if (!shim_engine_app_recv_may()) {
        /* the kernel's wait: sets lingering with the app (an epoll
         * wait's, appwhole.c) go back first, as for a read that blocks
         * (recv.c) */
        shim_engine_app_nowait();
        return 0;
    }
    poll_call c = {.fds = fds, .n = n};
    return shim_app_wait_call(cand, in, tmo, mask, &poll_ops, &c, out);
}

/* A bridge's end that hung up reports POLLOUT too, as TCP's does
 * (tcp_poll(): a socket shut down for sending, or closed, is writable):
 * a refused connect reports POLLOUT|POLLERR|POLLHUP at once in TCP. A
 * unix socket turns writable only once the close of its peer (the engine's
 * end) has freed what it wrote there (connect's filler, bytes the engine
 * had not read), a moment after it hangs up: a poll() in that moment saw
 * POLLERR|POLLHUP without POLLOUT, which a program waiting for POLLOUT, as
 * connect(2) says, takes for no answer (prog_nbconnect's spin check: 17
 * times in 20). And unix_poll() reads sk_shutdown before sk_err, while
 * the peer's close sets them in the other order: a poll() between the two
 * saw POLLERR alone (CI, once in ~20 spins). The app's end gets sk_err
 * from that close alone (ECONNRESET, unix_release_sock()), so an error
 * on it means the hang-up is in: the mended answer is the one a poll() a
 * moment later gives (POLLHUP, and POLLIN|POLLRDHUP for the read side's
 * shutdown). Looked up only for those patterns; a record that cannot be
 * had without waiting for the table's lock (a signal handler's poll())
 * leaves the answer as the kernel gave it. */
static void hup_writable(struct pollfd *fds, nfds_t n)
{
    for (nfds_t i = 0; i < n; i++) {
        struct pollfd *p = &fds[i];
        int err_only = (p->revents & (POLLERR | POLLHUP)) == POLLERR;
        int hup_unwritable = (p->revents & (POLLHUP | POLLOUT)) == POLLHUP &&
                             (p->events & (POLLOUT | POLLWRNORM));
        if (!err_only && !hup_unwritable)
            continue;
        shim_fd rec;
        if (shim_fd_tryget(p->fd, &rec) != 1 || rec.kind != SHIM_FD_BRIDGED)
            continue;
        if (err_only)
            p->revents |= (short)(POLLHUP | (p->events & (POLLIN | POLLRDNORM | POLLRDHUP)));
        p->revents |= (short)(p->events & (POLLOUT | POLLWRNORM));
    }
}

/* The call's result r for fds, mended (hup_writable). */
static int mended(struct pollfd *fds, nfds_t n, int r)
{
    if (r > 0) {
        int saved = errno;
        hup_writable(fds, n);
        errno = saved;
    }
    return r;
}

/* 1 with *out the call's result (errno set); 0: make libc's call. */
static int app_poll(struct pollfd *fds, nfds_t n, const struct timespec *tmo, const sigset_t *mask,
                    int *out)
{
    return shim_app_poll(fds, n, tmo, mask, 1, out);
}

SHIM_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    int r;
    struct timespec t = {.tv_sec = timeout / 1000, .tv_nsec = (long)(timeout % 1000) * 1000000L};
    if (app_poll(fds, n, timeout < 0 ? NULL : &t, NULL, &r))
        return mended(fds, n, r);
    return mended(fds, n, real_poll(fds, n, timeout));
}

SHIM_EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *tmo, const sigset_t *mask)
{
    int r;
    if ((!tmo || (tmo->tv_sec >= 0 && tmo->tv_nsec >= 0 && tmo->tv_nsec < 1000000000L)) &&
        app_poll(fds, n, tmo, mask, &r))
        return mended(fds, n, r);
    return mended(fds, n, real_ppoll(fds, n, tmo, mask));
}

/* _FORTIFY_SOURCE's forms: libc's check first (it ends the program). */
SHIM_EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
    int r;
    struct timespec t = {.tv_sec = timeout / 1000, .tv_nsec = (long)(timeout % 1000) * 1000000L};
    if (fdslen / sizeof *fds >= n && app_poll(fds, n, timeout < 0 ? NULL : &t, NULL, &r))
        return mended(fds, n, r);
    return mended(fds, n, real_poll_chk(fds, n, timeout, fdslen));
}

SHIM_EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *tmo,
                            const sigset_t *mask, size_t fdslen)
{
    int r;
    if (fdslen / sizeof *fds >= n &&
        (!tmo || (tmo->tv_sec >= 0 && tmo->tv_nsec >= 0 && tmo->tv_nsec < 1000000000L)) &&
        app_poll(fds, n, tmo, mask, &r))
        return mended(fds, n, r);
    return mended(fds, n, real_ppoll_chk(fds, n, tmo, mask, fdslen));
}
