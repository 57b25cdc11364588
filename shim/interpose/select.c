/*
 * select.c: select() and pselect() as poll() (poll.c): a wait whose read
 * set holds one of our bridges on a fast path waits on its connection's UDP
 * socket too (RUDP_APP_RECV, engine/apprecv.c). The sets become a poll
 * array (at most SHIM_WAIT_FDS_MAX fds set; more, and the call is libc's),
 * and the answer the sets again by the kernel's own rules (fs/select.c):
 * readable on POLLIN, POLLRDNORM, POLLRDBAND, POLLHUP or POLLERR, writable
 * on POLLOUT, POLLWRNORM, POLLWRBAND or POLLERR, exceptional on POLLPRI, an
 * fd that is not open EBADF; select() leaves in *timeout the time not
 * slept, as Linux's does. Signals and the rest as poll.c's.
 */
#include <errno.h>
#include <sys/select.h>

#include "interpose.h"

/* The sets' fds below nfds as poll entries into p: their count, or -1
 * when there are more than SHIM_WAIT_FDS_MAX or nfds is out of range. */
static int to_poll(int nfds, const fd_set *r, const fd_set *w, const fd_set *x, struct pollfd *p)
{
    if (nfds <= 0 || nfds > FD_SETSIZE)
        return -1;
    int k = 0;
    for (int fd = 0; fd < nfds; fd++) {
        short ev = (short)((r && FD_ISSET(fd, r) ? POLLIN : 0) | (w && FD_ISSET(fd, w) ? POLLOUT : 0) |
                           (x && FD_ISSET(fd, x) ? POLLPRI : 0));
        if (!ev)
            continue;
        if (k == SHIM_WAIT_FDS_MAX)
            return -1;
        p[k++] = (struct pollfd){.fd = fd, .events = ev};
    }
    return k;
}

/* The poll entries' answer into the sets (as fs/select.c: POLLIN_SET,
 * POLLOUT_SET, POLLEX_SET): the count of bits set, or -1 with EBADF. */
static int from_poll(fd_set *r, fd_set *w, fd_set *x, const struct pollfd *p, int k)
{
    for (int i = 0; i < k; i++)
        if (p[i].revents & POLLNVAL) {
            errno = EBADF;
            return -1;
        }
    int n = 0;
    for (int i = 0; i < k; i++) {
        int fd = p[i].fd;
        short ev = p[i].events, re = p[i].revents;
        if (ev & POLLIN) {
            FD_CLR(fd, r);
            if (re & (POLLIN | POLLRDNORM | POLLRDBAND | POLLHUP | POLLERR)) {
                FD_SET(fd, r);
                n++;
            }
        }
        if (ev & POLLOUT) {
            FD_CLR(fd, w);
            if (re & (POLLOUT | POLLWRNORM | POLLWRBAND | POLLERR)) {
                FD_SET(fd, w);
                n++;
            }
        }
        if (ev & POLLPRI) {
            FD_CLR(fd, x);
            if (re & POLLPRI) {
                FD_SET(fd, x);
                n++;
            }
        }
    }
    return n;
}

/* 1 with *out the call's result (errno set); 0: make libc's call. */
static int app_select(int nfds, fd_set *r, fd_set *w, fd_set *x, const struct timespec *tmo,
                      const sigset_t *mask, int *out)
{
    if (!shim_cfg.app_recv || !r)
        return 0;
    struct pollfd p[SHIM_WAIT_FDS_MAX];
    int k = to_poll(nfds, r, w, x, p);
    if (k <= 0)
        return 0;
    int got;
    if (!shim_app_poll(p, (nfds_t)k, tmo, mask, 3, &got))
        return 0;
    *out = got < 0 ? -1 : from_poll(r, w, x, p, k);
    return 1;
}

SHIM_EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *x, struct timeval *tv)
{
    shim_kept_flush(); /* libc's select too (more than 64 fds): the kernel's answer */
    if (tv && (tv->tv_sec < 0 || tv->tv_usec < 0))
        return real_select(nfds, r, w, x, tv); /* EINVAL: the kernel's word */
    struct timespec t, *tp = NULL;
    rudp_time end = RUDP_TIME_NEVER;
    if (tv) {
        t.tv_sec = tv->tv_sec + tv->tv_usec / 1000000;
        t.tv_nsec = (long)(tv->tv_usec % 1000000) * 1000L;
        tp = &t;
        if (t.tv_sec < 1000000000) /* longer: as good as for ever (poll.c) */
            end = shim_now() + (rudp_time)t.tv_sec * 1000000000ull + (rudp_time)t.tv_nsec;
    }
    int res;
    if (!app_select(nfds, r, w, x, tp, NULL, &res))
        return real_select(nfds, r, w, x, tv);
    if (tv && end != RUDP_TIME_NEVER) { /* Linux's: the time not slept */
        int saved = errno;
        rudp_time now = shim_now(), left = end > now ? end - now : 0;
        tv->tv_sec = (time_t)(left / 1000000000ull);
        tv->tv_usec = (suseconds_t)(left % 1000000000ull / 1000);
        errno = saved;
    }
    return res;
}

SHIM_EXPORT int pselect(int nfds, fd_set *r, fd_set *w, fd_set *x, const struct timespec *ts,
                        const sigset_t *mask)
{
    shim_kept_flush();
    int res;
    if ((!ts || (ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000L)) &&
        app_select(nfds, r, w, x, ts, mask, &res))
        return res;
    return real_pselect(nfds, r, w, x, ts, mask);
}
