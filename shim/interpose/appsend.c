/*
 * appsend.c: write(), send() and writev(), interposed so that an
 * application thread that writes a small request to a bridge whose engine
 * sleeps sends it itself (engine/appsend.c says when, and why it cannot be
 * told from the bridge's way). Every other call, on any other fd, is
 * libc's after one bit is read (shim_fd_hinted: no lock, no system call).
 * sendto() and sendmsg() without an address come here from msgaddr.c.
 */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <sys/uio.h>

#include "interpose.h"

/* The flags under which the app thread may send: those that change nothing
 * for a send that neither blocks nor fails. */
#define APPSEND_FLAGS (MSG_NOSIGNAL | MSG_DONTWAIT)

int shim_appsend_try(int fd, const struct iovec *iov, int iovcnt, int flags, ssize_t *sent)
{
    shim_slot *s = shim_fd_hinted(fd);
    if (!s)
        return 0;
    /* A connection that ended abnormally: its cause, once, as TCP's first
     * write after tcp_done() (recv.c); the bridge would say EPIPE, with
     * SIGPIPE. */
    int cause = shim_send_ended(fd, s);
    if (cause) {
        errno = cause;
        *sent = -1;
        return 1;
    }
    if ((flags & ~APPSEND_FLAGS) || iovcnt <= 0 || iovcnt > IOV_MAX)
        return 0;
    size_t n = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > SHIM_APPSEND_MAX - n)
            return 0; /* more than the path takes (or the kernel's EINVAL) */
        n += iov[i].iov_len;
    }
    /* Bytes still unsent: a writer ahead of the network keeps the bridge
     * (engine/appsend.c), known here without a system call. */
    if (n == 0 || atomic_load_explicit(&s->unsent, memory_order_relaxed) != 0 ||
        !shim_engine_app_send_may())
        return 0;
    int saved = errno;
    int done = shim_engine_app_send(fd, iov, iovcnt, n, sent);
    errno = saved;
    return done;
}

SHIM_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
    struct iovec v = {.iov_base = (void *)buf, .iov_len = n};
    ssize_t r;
    if (shim_fd_hinted(fd) && shim_appsend_try(fd, &v, 1, 0, &r))
        return r;
    return real_write(fd, buf, n);
}

SHIM_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
    struct iovec v = {.iov_base = (void *)buf, .iov_len = n};
    ssize_t r;
    if (shim_fd_hinted(fd) && shim_appsend_try(fd, &v, 1, flags, &r))
        return r;
    return real_send(fd, buf, n, flags);
}

SHIM_EXPORT ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    ssize_t r;
    if (shim_fd_hinted(fd) && shim_appsend_try(fd, iov, iovcnt, 0, &r))
        return r;
    return real_writev(fd, iov, iovcnt);
}
