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
#include <signal.h>
#include <stdatomic.h>
#include <sys/uio.h>

#include "interpose.h"

/* The flags under which the app thread may send: those that change nothing
 * for a send that neither blocks nor fails. */
#define APPSEND_FLAGS (MSG_NOSIGNAL | MSG_DONTWAIT)

/*
 * A write to a bridge that fails with EPIPE raises SIGPIPE, unless
 * MSG_NOSIGNAL, as TCP's does (sk_stream_error()). A unix socket's write
 * can say EPIPE without it: one that races the engine's shutdown of its
 * end (a reset, bridge.c) passes the first SEND_SHUTDOWN check and then
 * fails in sock_alloc_send_pskb(), which sends no signal (1 failing write
 * in 1,000 of tests/prog_writeclosed.c). So the kernel's call is made with
 * MSG_NOSIGNAL and the signal raised here, for the calling thread as the
 * kernel's is. A stale hint (the number now names no socket: ENOTSOCK)
 * takes the plain call.
 */
static ssize_t pipe_signal(ssize_t r, int flags)
{
    if (r < 0 && errno == EPIPE && !(flags & MSG_NOSIGNAL)) {
        raise(SIGPIPE);
        errno = EPIPE;
    }
    return r;
}

int shim_appsend_try(int fd, const struct iovec *iov, int iovcnt, int flags, ssize_t *sent)
{
    shim_slot *s = shim_fd_hinted(fd);
    if (!s)
        return 0;
    /* A connection that ended abnormally: its cause, once, as TCP's first
     * write after tcp_done() (recv.c), with SIGPIPE only if the cause is
     * EPIPE (a reset after the peer's FIN), as sk_stream_error() has it. */
    int cause = shim_send_ended(fd, s);
    if (cause) {
        errno = cause;
        *sent = pipe_signal(-1, flags);
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
    if (n == 0 || atomic_load_explicit(&s->unsent, memory_order_relaxed) != 0)
        return 0;
    int saved = errno;
    /* the engine asleep with few connections: this thread sends; else the
     * bytes go to the engine in memory (engine/txring.c) */
    int done = (shim_engine_app_send_may() && shim_engine_app_send(fd, iov, iovcnt, n, sent)) ||
               shim_engine_ring_write(fd, iov, iovcnt, n, sent);
    errno = saved;
    return done;
}

ssize_t shim_appsend_kernel(int fd, const struct iovec *iov, int iovcnt, int flags)
{
    struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
    return pipe_signal(real_sendmsg(fd, &m, flags | MSG_NOSIGNAL), flags);
}

SHIM_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
    struct iovec v = {.iov_base = (void *)buf, .iov_len = n};
    ssize_t r;
    if (!shim_fd_hinted(fd))
        return real_write(fd, buf, n);
    if (shim_appsend_try(fd, &v, 1, 0, &r))
        return r;
    r = pipe_signal(real_send(fd, buf, n, MSG_NOSIGNAL), 0);
    return r < 0 && errno == ENOTSOCK ? real_write(fd, buf, n) : r;
}

SHIM_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
    struct iovec v = {.iov_base = (void *)buf, .iov_len = n};
    ssize_t r;
    if (!shim_fd_hinted(fd))
        return real_send(fd, buf, n, flags);
    if (shim_appsend_try(fd, &v, 1, flags, &r))
        return r;
    return pipe_signal(real_send(fd, buf, n, flags | MSG_NOSIGNAL), flags);
}

SHIM_EXPORT ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    ssize_t r;
    if (!shim_fd_hinted(fd) || iovcnt < 0 || iovcnt > IOV_MAX)
        return real_writev(fd, iov, iovcnt);
    if (shim_appsend_try(fd, iov, iovcnt, 0, &r))
        return r;
    r = shim_appsend_kernel(fd, iov, iovcnt, 0);
    return r < 0 && errno == ENOTSOCK ? real_writev(fd, iov, iovcnt) : r;
}
