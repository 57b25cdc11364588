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
#include <sys/uio.h>

#include "interpose.h"

/* The flags under which the app thread may send: those that change nothing
 * for a send that neither blocks nor fails. */
#define APPSEND_FLAGS (MSG_NOSIGNAL | MSG_DONTWAIT)

int shim_appsend_try(int fd, const struct iovec *iov, int iovcnt, int flags, ssize_t *sent)
{
    if (!shim_fd_hinted(fd) || (flags & ~APPSEND_FLAGS) || iovcnt <= 0 || iovcnt > IOV_MAX)
        return 0;
    size_t n = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > SSIZE_MAX - n)
            return 0; /* the kernel's EINVAL */
        n += iov[i].iov_len;
    }
    int saved = errno;
    shim_fd rec;
    int done = shim_fd_get(fd, &rec) && shim_engine_app_send(&rec, iov, iovcnt, n, sent);
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
