/*
 * recv.c: how a connection that ended abnormally is told to the program.
 *
 * TCP ends a connection that timed out (the user timeout, keepalive) or
 * was reset with tcp_done(): sk_err holds the cause, and the next read,
 * write or getsockopt(SO_ERROR) takes it (sock_error(): once), after the
 * bytes already received. A reader that never writes learns ETIMEDOUT or
 * ECONNRESET from read(), never a clean end of file.
 *
 * A bridge can raise one error: ECONNRESET, when its engine end closes
 * holding bytes unread (unix_release_sock()); engine/bridge.c closes it so
 * on every abnormal end, having recorded the cause in the slot (end_error,
 * and so_error until something takes it). So every reader sees an error:
 * the calls no LD_PRELOAD reaches (stdio's internal reads, sendfile,
 * splice, a supervised program's reads) ECONNRESET, and the calls here the
 * cause itself. Writes (appsend.c, msgaddr.c) answer the cause first too.
 *
 * read(), readv() and recv() and their _FORTIFY_SOURCE forms are
 * interposed for that alone: each is libc's call, and only a failure with
 * ECONNRESET costs a look at the fd (recvfrom, recvmsg and recvmmsg,
 * interposed for their addresses, do the same: msgaddr.c, mmsg.c).
 */
#include <errno.h>
#include <stdatomic.h>
#include <sys/uio.h>

#include "interpose.h"

/* The slot of fd's connection, if fd is an app's end of one of our
 * bridges and the slot can be had without waiting: read() is
 * async-signal-safe, and a handler's read of a reset socket must not wait
 * for a lock the thread it interrupted holds (connect, close, dup2). The
 * peer's name carries slot and id (no lock); the fd's hint has the slot
 * where the number is the engines' own, else the slot table is tried. */
static shim_slot *ended_slot(int fd)
{
    shim_name n;
    if (shim_name_get(fd, 1, &n) != 1 || n.kind != SHIM_NAME_ENGINE || n.slot == UINT32_MAX)
        return NULL;
    shim_slot *s = shim_fd_hinted(fd);
    if (!s || atomic_load(&s->id) != n.id)
        s = shim_slot_tryget_pid(n.slot, n.id, n.pid);
    if (!s)
        return NULL;
    int st = atomic_load(&s->state);
    return (st == SHIM_SLOT_CLOSED || st == SHIM_SLOT_FAILED) && atomic_load(&s->end_error) > 0
               ? s
               : NULL;
}

/* What a receive call that failed with ECONNRESET, or read EOF, on fd
 * says instead (errno kept): the connection's cause, taken once as TCP's
 * sock_error() takes sk_err (>0); 0 once it was taken (by SO_ERROR or a
 * send), as TCP's reads say then; -1: as the kernel said (not ours, or
 * the slot not to be had). eof: for an EOF, which is the cause only
 * where the peer's FIN never came (SHIM_SLOT_F_EOF_ERR). */
static int cause_of(int fd, int eof)
{
    int saved = errno;
    shim_slot *s = ended_slot(fd);
    int cause = -1;
    if (s && (!eof || (atomic_load(&s->flags) & SHIM_SLOT_F_EOF_ERR))) {
        cause = atomic_exchange(&s->so_error, 0);
        if (cause < 0)
            cause = 0;
    }
    errno = saved;
    return cause;
}

int shim_recv_errno(int fd, int err)
{
    if (err != ECONNRESET)
        return err;
    int cause = cause_of(fd, 0);
    return cause > 0 ? cause : err;
}

int shim_send_ended(int fd, shim_slot *hint)
{
    /* A slot's state is one load: the look at the fd (system calls) only
     * for a connection already over, with its cause untaken. */
    int st = atomic_load_explicit(&hint->state, memory_order_relaxed);
    if ((st != SHIM_SLOT_CLOSED && st != SHIM_SLOT_FAILED) ||
        atomic_load_explicit(&hint->so_error, memory_order_relaxed) == 0)
        return 0;
    int cause = cause_of(fd, 0);
    return cause > 0 ? cause : 0;
}

/* glibc's _FORTIFY_SOURCE entry points (bits/unistd.h, bits/socket2.h
 * call them; no header declares them). */
ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                       struct sockaddr *addr, socklen_t *alen);

/* r, with errno the connection's cause where the bridge said ECONNRESET
 * (0 if the cause was taken already, as TCP's read then); or for an EOF
 * (asked for n > 0 bytes) that is none: an abnormal end whose ECONNRESET
 * could not be made (the app had shut down writing) or was taken by a
 * short read (engine/bridge.c, SHIM_SLOT_F_EOF_ERR). That needs the fd's
 * hint (no system call for the EOFs of everything else), then the fd
 * itself is checked. */
ssize_t shim_recv_told(int fd, ssize_t r, size_t n)
{
    if (r < 0 && errno == ECONNRESET) {
        int cause = cause_of(fd, 0);
        if (cause == 0)
            return 0; /* taken already: TCP's read says 0 then */
        if (cause > 0)
            errno = cause;
    } else if (r == 0 && n > 0) {
        /* the fd's hint first: no system call for the EOFs of the rest */
        shim_slot *h = shim_fd_hinted(fd);
        int cause = h && (atomic_load_explicit(&h->flags, memory_order_relaxed) &
                          SHIM_SLOT_F_EOF_ERR)
                        ? cause_of(fd, 1)
                        : 0;
        if (cause > 0) {
            errno = cause;
            return -1;
        }
    }
    return r;
}
#define told shim_recv_told

size_t shim_iov_bytes(const struct iovec *iov, int cnt)
{
    size_t n = 0;
    for (int i = 0; iov && i < cnt; i++)
        n += iov[i].iov_len;
    return n;
}

SHIM_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
    return told(fd, real_read(fd, buf, n), n);
}

SHIM_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
    ssize_t r = real_readv(fd, iov, cnt);
    return told(fd, r, r == 0 ? shim_iov_bytes(iov, cnt) : 1); /* iov proved valid */
}

SHIM_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    return told(fd, real_recv(fd, buf, n, flags), n);
}

SHIM_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    return told(fd, real_read_chk(fd, buf, n, buflen), n);
}

SHIM_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
    return told(fd, real_recv_chk(fd, buf, n, buflen, flags), n);
}

SHIM_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                                   struct sockaddr *addr, socklen_t *alen)
{
    socklen_t cap = addr && alen ? *alen : 0;
    ssize_t r = real_recvfrom_chk(fd, buf, n, buflen, flags, addr, alen);
    if (r >= 0 && cap && shim_name_is_engine(addr, *alen, cap))
        *alen = 0; /* as recvfrom() (msgaddr.c) */
    return told(fd, r, n);
}
