/* connect() of the program (supervise.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "supervise.h"

/* CONNECT_ANEW from connect_again(): the bridge failed or ended; the
 * shim's own connect() on the copy answers (connect_anew). */
#define CONNECT_ANEW (-1)

/* connect() again on a bridge we placed (copy): Linux's answers
 * (__inet_stream_connect). Established: 0 the first time connect()
 * returns (a restart), EISCONN after; connecting: EALREADY when
 * non-blocking, else wait for the handshake, at most SO_SNDTIMEO, then
 * EALREADY (inet_wait_for_connect timed out; the handshake goes on);
 * failed or ended: CONNECT_ANEW. A bridge is writable once the engine
 * drained the filler, i.e. established (shim/interpose/connect.c). The
 * wait looks every second whether the call is still there (a signal may
 * have ended it). Returns 0, the errno or CONNECT_ANEW. */
static int connect_again(struct sup *s, uint64_t id, int copy, uint64_t ino)
{
    int nb = (fcntl(copy, F_GETFL) & O_NONBLOCK) != 0;
    int limit = nb ? 0 : sndtimeo_ms(copy);
    long long deadline = limit < 0 ? 0 : mono_ms() + limit;
    for (;;) {
        int ms = 1000;
        if (limit >= 0) {
            long long left = deadline - mono_ms();
            ms = left <= 0 ? 0 : left < ms ? (int)left : ms;
        }
        struct pollfd p = {.fd = copy, .events = POLLOUT};
        if (poll(&p, 1, ms) < 0 && errno != EINTR)
            return errno;
        if (p.revents & (POLLERR | POLLHUP))
            return CONNECT_ANEW;
        if (p.revents & POLLOUT)
            return placed_state(s, ino, 1) == 1 ? EISCONN : 0;
        if (limit >= 0 && mono_ms() >= deadline)
            return EALREADY;
        if (!notif_valid(s->lfd, id))
            return EINTR; /* gone: the answer goes nowhere */
    }
}

int place_bridge(struct sup *s, const struct seccomp_notif *req, int bridge, uint64_t bino,
                 int fd, uint64_t tcp_ino, int fresh)
{
    int e = add_fd_keep_epoll(s, req, bridge, fd, tcp_ino);
    if (e == -ENOENT) {
        placed_add(s, bino, tcp_ino, bridge); /* held for the restart */
    } else if (e == 0) {
        if (fresh)
            placed_add(s, bino, tcp_ino, -1);
        placed_at(s, bino, (pid_t)req->pid, fd);
    }
    return e;
}

int place_held(struct sup *s, const struct seccomp_notif *req, int fd, int *copy,
               struct stat *st)
{
    int held = placed_take_held(s, (uint64_t)st->st_ino);
    if (held < 0)
        return 0;
    uint64_t tcp_ino = (uint64_t)st->st_ino;
    close(*copy);
    *copy = held;
    int e = fstat(held, st) < 0 ? -errno
                                : place_bridge(s, req, held, (uint64_t)st->st_ino, fd, tcp_ino, 0);
    if (e == -ENOENT)
        *copy = -1; /* held again: the record's */
    return e < 0 ? e : 1;
}

/* The fresh kernel socket the shim put at copy in place of the program's
 * socket ino (a bridge, or its kernel socket after a failed blocking
 * connect) goes to the program's fd, its epoll registrations kept, noted
 * PLACED_LEFT (its names and options stay the shim's). */
static void place_left(struct sup *s, const struct seccomp_notif *req, int copy, int fd,
                       uint64_t ino)
{
    struct stat now;
    if (fstat(copy, &now) < 0 || (uint64_t)now.st_ino == ino)
        return; /* the shim left the socket as it was */
    int e = add_fd_keep_epoll(s, req, copy, fd, ino);
    if (e == 0) {
        placed_add(s, (uint64_t)now.st_ino, ino, -1);
        placed_at(s, (uint64_t)now.st_ino, (pid_t)req->pid, fd);
        placed_left(s, (uint64_t)now.st_ino);
    } else if (e != -ENOENT && e != -ESTALE) {
        warn("connect: the unconnected socket cannot go to fd %d (%s): the failed connection "
             "stays there", fd, strerror(-e));
    }
}

/* connect(addr) of the program on the bridge ino at its fd, answered by
 * the shim's own connect() on our copy (shim/interpose/reconnect.c), for
 * what changes the socket as Linux's connect does: connect(AF_UNSPEC)
 * disconnects, and a connect() after a failed handshake reports the
 * failure (the pending SO_ERROR, or ECONNABORTED once the program read it)
 * and leaves the socket unconnected, so that the one after makes a fresh
 * connection (review 18). The shim then puts a fresh kernel socket (the
 * options carried over) at the copy's number: it goes to the program's fd
 * too, its epoll registrations kept. Returns 0 or the errno. */
static int connect_anew(struct sup *s, const struct seccomp_notif *req, int copy, int fd,
                        const struct sockaddr_storage *ss, socklen_t len, uint64_t ino)
{
    int r = connect(copy, (const struct sockaddr *)ss, len);
    int err = r < 0 ? errno : 0;
    place_left(s, req, copy, fd, ino);
    return err;
}

/* The program's file at fd, copied (pidfd_getfd), tried again while our
 * fds run short (short_again); -1 with *gerr its errno. */
static int copy_of(struct sup *s, const struct seccomp_notif *req, int pidfd, int fd,
                   long long *until, int *gerr)
{
    int copy = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
    *gerr = copy < 0 ? errno : 0;
    while (copy < 0 && short_again(*gerr, until, s, req->id)) {
        copy = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
        *gerr = copy < 0 ? errno : 0;
    }
    return copy;
}

/* A held bridge (copy, inode ino) whose restarted connect() found another
 * file at the program's number when it came to put it there (the program
 * closed or dup2'd it meanwhile): the call is the socket's it was made on,
 * which the program can no longer reach, as TCP's restarted call goes on
 * with the file it looked up. Answered as connect_again() says (its
 * handshake waited for as a blocking connect waits; a failed one's
 * SO_ERROR), then the bridge goes, ending its connection as the kernel's
 * socket would end once the call let go of it. Never the kernel's to
 * answer: it would look the number up again and connect the other file
 * over kernel TCP, counted nowhere. */
static void connect_orphan(struct sup *s, const struct seccomp_notif *req, int copy, uint64_t ino)
{
    int e = connect_again(s, req->id, copy, ino);
    if (e == CONNECT_ANEW) {
        socklen_t el = sizeof e;
        if (getsockopt(copy, SOL_SOCKET, SO_ERROR, &e, &el) < 0 || e == 0)
            e = ECONNABORTED;
    }
    close(copy);
    respond(s, req->id, 0, 0, e);
}

/* A call on a number that names no file in the caller's table (its own:
 * pidfd_for): EBADF, as Linux says, which looks the number up once, at the
 * call. Not the kernel's to answer (CONTINUE): it looks the number up
 * again when the thread runs, under load milliseconds later, and another
 * thread's fresh socket put there meanwhile would connect over kernel TCP,
 * counted nowhere (t_supervise_dialstorm, once in a loaded make test: 2
 * such SYNs) and unkeyed where a key says rudp only. fastopen.c too. */
void no_file(struct sup *s, const struct seccomp_notif *req, int pidfd)
{
    if (pidfd >= 0)
        close(pidfd);
    respond(s, req->id, 0, 0, EBADF);
}

/* connect(fd, addr, len) of the program, answered as the shim answers it. */
void on_connect(struct sup *s, struct seccomp_notif *req)
{
    pid_t tid = (pid_t)req->pid;
    int fd = (int)req->data.args[0];
    uint64_t uaddr = req->data.args[1];
    socklen_t len = (socklen_t)req->data.args[2];
    struct sockaddr_storage ss;
    int pidfd = -1, copy = -1;

    /* What the kernel would refuse, the kernel refuses. */
    if (s->pass || (int)req->data.args[2] < 0 || len > sizeof ss || len < sizeof(sa_family_t))
        goto cont;
    struct iovec local = {.iov_base = &ss, .iov_len = len};
    struct iovec remote = {.iov_base = (void *)(uintptr_t)uaddr, .iov_len = len};
    if (process_vm_readv(tid, &local, 1, &remote, 1, 0) != (ssize_t)len)
        goto cont; /* EFAULT: the kernel's answer */
    /* Our fds (a pidfd, the copy, the shim's) may run short: the reserve
     * is given up and the call tried again; short still, the connect
     * goes as escape() says, never silently over kernel TCP (escape.c). */
    const char *what = NULL;
    int short_err = 0;
    long long until = 0;
    pidfd = pidfd_for(tid);
    while (pidfd < 0 && short_again(errno, &until, s, req->id))
        pidfd = pidfd_for(tid);
    if (pidfd < 0 && (what = short_of(errno))) {
        short_err = errno;
        goto escaped;
    }
    if (pidfd < 0 || !notif_valid(s->lfd, req->id))
        goto cont;
    int gerr;
    copy = copy_of(s, req, pidfd, fd, &until, &gerr);
    if (copy < 0 && (what = short_of(gerr))) {
        short_err = gerr;
        goto escaped;
    }
    if (copy < 0 && gerr == EBADF) {
        no_file(s, req, pidfd);
        return;
    }
    struct stat before, after;
    if (copy < 0 || fstat(copy, &before) < 0)
        goto cont;
    /* restarted before its bridge was in place: put it there now */
    int held = place_held(s, req, fd, &copy, &before);
    if (held == -ENOENT || held == -ESTALE) {
        if (held == -ESTALE)
            connect_orphan(s, req, copy, (uint64_t)before.st_ino);
        close(pidfd);
        return;
    }
    if (held < 0) {
        short_err = -held;
        goto unplaceable;
    }
    if (placed_bridge(s, before.st_ino) >= 0) {
        int e = ss.ss_family == AF_UNSPEC ? CONNECT_ANEW
                                          : connect_again(s, req->id, copy, before.st_ino);
        if (e == CONNECT_ANEW)
            e = connect_anew(s, req, copy, fd, &ss, len, (uint64_t)before.st_ino);
        close(copy);
        close(pidfd);
        respond(s, req->id, 0, 0, e);
        return;
    }
    if (!redirectable(tid, copy, fd))
        goto cont; /* ENOTSOCK, unix and UDP sockets: the kernel's; reviews 1, 4 */
    after.st_ino = before.st_ino;
    int r = connect(copy, (struct sockaddr *)&ss, len);
    int err = r < 0 ? errno : 0;
    /* The shim's connect failed for want of fds (or memory, or a slot)
     * before it touched the socket: again while short_again() says so,
     * then escape() (its errno is ours, not an answer TCP would give). */
    while (r < 0 && fstat(copy, &after) == 0 && after.st_ino == before.st_ino &&
           short_again(err, &until, s, req->id)) {
        r = connect(copy, (struct sockaddr *)&ss, len);
        err = r < 0 ? errno : 0;
    }
    if (r < 0 && (what = short_of(err)) && fstat(copy, &after) == 0 &&
        after.st_ino == before.st_ino) {
        short_err = err;
        goto escaped;
    }
    after.st_ino = before.st_ino;
    /* The shim put a bridge at copy (its number, here) unless it left the
     * connect to the kernel (an address not redirected): the kernel's
     * result then, on the program's own socket (copy shares its file).
     * Told by the inode: the shim's getsockopt says TCP on a bridge. */
    if ((r == 0 || err == EINPROGRESS) && fstat(copy, &after) == 0 &&
        after.st_ino != before.st_ino) {
        int e = place_bridge(s, req, copy, (uint64_t)after.st_ino, fd, (uint64_t)before.st_ino,
                             1);
        if (e == -ENOENT) {
            /* interrupted (a restart comes with the same socket) or gone */
            close(pidfd);
            return;
        }
        if (e == -ESTALE) {
            /* the program put another file at the number meanwhile: its
             * socket, connected as the kernel's would be, is no longer
             * reachable by it, so the bridge goes; the connect's answer */
            close(copy);
            close(pidfd);
            respond(s, req->id, 0, 0, err);
            return;
        }
        if (e < 0) {
            short_err = -e;
            goto unplaceable;
        }
    } else if (r < 0 && err != EINPROGRESS) {
        /* A blocking connect that failed: the shim left a fresh kernel
         * socket at copy (its port let go, as Linux's failed connect lets
         * it go: a socket bound first may bind again elsewhere); the
         * program's socket, bound maybe, goes for it (review 18). */
        place_left(s, req, copy, fd, (uint64_t)before.st_ino);
    }
    /* Our copy goes: the program's close is then the last one, which the
     * engine sees as the application's close. */
    close(copy);
    close(pidfd);
    if (respond(s, req->id, 0, 0, err) == 0 && err == 0 && after.st_ino != before.st_ino)
        placed_state(s, (uint64_t)after.st_ino, 1);
    reserve_refill();
    return;
unplaceable:
    /* The bridge cannot go to the program's number (review 4: EBADF, the
     * number at or past its RLIMIT_NOFILE, which TCP's connect does not
     * mind): it goes (closing our only copy ends it in the engine), and the
     * program's socket, still its unconnected kernel socket, connects as
     * escape() says (add_fd said why, at warn). */
    what = "the program's fd cannot take the bridge";
escaped:
    if (copy >= 0)
        close(copy);
    if (pidfd >= 0)
        close(pidfd);
    escape_answer(s, req, &ss, len, short_err, what);
    return;
cont:
    if (copy >= 0)
        close(copy);
    if (pidfd >= 0)
        close(pidfd);
    respond(s, req->id, 1, 0, 0);
}
