/* bind(), listen(), accept() and accept4() of the program (supervise.h). */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "supervise.h"

/* bind(fd, addr, len) of a TCP socket: the shim's (a port free for UDP
 * too when the program asks for port 0; the ports its listeners hold). */
void on_bind(struct sup *s, struct seccomp_notif *req)
{
    pid_t tid = (pid_t)req->pid;
    socklen_t len = (socklen_t)req->data.args[2];
    struct sockaddr_storage ss;
    int pidfd = -1, copy = -1;
    uint64_t ino = 0;
    if ((int)req->data.args[2] < 0 || len > sizeof ss || len < sizeof(sa_family_t))
        goto cont;
    struct iovec l1 = {.iov_base = &ss, .iov_len = len};
    struct iovec r1 = {.iov_base = (void *)(uintptr_t)req->data.args[1], .iov_len = len};
    if (process_vm_readv(tid, &l1, 1, &r1, 1, 0) != (ssize_t)len)
        goto cont;
    /* a port the program may not bind, though we may (review 3); read
     * before take_fd's NOTIF_ID_VALID */
    int port = ss.ss_family == AF_INET && len >= sizeof(struct sockaddr_in)
                   ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
               : ss.ss_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)
                   ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                   : 0;
    int denied = !unprivileged_port(port) && !caller_capable(tid, CAP_NET_BIND_SERVICE);
    copy = take_fd(s, req, (int)req->data.args[0], &pidfd, &ino);
    if (copy < 0 || !is_tcp(copy) || !same_netns(tid, copy))
        goto cont;
    if (denied) {
        finish(s, req, copy, pidfd, 0, EACCES);
        return;
    }
    int r = bind(copy, (struct sockaddr *)&ss, len);
    finish(s, req, copy, pidfd, 0, r < 0 ? errno : 0);
    return;
cont:
    finish(s, req, copy, pidfd, 1, 0);
}

/* listen(fd, backlog) of a TCP socket: the shim's listen on our copy makes
 * it the shim's unix listener (the engine's UDP socket on the port, the
 * kernel TCP socket kept for plain clients); that listener goes to the
 * program's fd number, as a connect's bridge does. */
void on_listen(struct sup *s, struct seccomp_notif *req)
{
    int fd = (int)req->data.args[0];
    int pidfd;
    uint64_t ino = 0;
    int copy = take_fd(s, req, fd, &pidfd, &ino);
    struct stat after;
    if (copy < 0)
        goto cont;
    int placed = placed_bridge(s, ino) >= 0;
    if (!placed && !redirectable((pid_t)req->pid, copy, fd))
        goto cont;
    int r = listen(copy, (int)req->data.args[1]);
    int err = r < 0 ? errno : 0;
    if (!err && !placed && fstat(copy, &after) == 0 && (uint64_t)after.st_ino != ino) {
        /* Not placed (review 4): our copy, the only holder of the shim's
         * listener, goes, which the engine hears (its close of a copy,
         * sock.c) and checks, freeing the port. Interrupted (ENOENT), the
         * answer goes nowhere; else the number cannot be placed (EBADF:
         * past the program's RLIMIT_NOFILE) and the kernel listens on the
         * program's own socket, as TCP would. */
        int e = add_fd_keep_epoll(s, req, copy, fd, ino);
        if (e == -ESTALE) { /* another file at the number meanwhile (review 5) */
            finish(s, req, copy, pidfd, 0, 0);
            return;
        }
        if (e < 0) {
            finish(s, req, copy, pidfd, e != -ENOENT, e == -ENOENT ? EINTR : 0);
            return;
        }
        placed_add(s, (uint64_t)after.st_ino, ino, -1);
        placed_state(s, (uint64_t)after.st_ino, 1);
        placed_at(s, (uint64_t)after.st_ino, (pid_t)req->pid, fd);
    }
    finish(s, req, copy, pidfd, 0, err);
    return;
cont:
    finish(s, req, copy, pidfd, 1, 0);
}

/* The next connection for an accept() on our copy of listener lino:
 * one held for it (acceptq.c) first, else the shim's accept4 (it takes
 * only what the engine hands over, and plain TCP clients of the dual
 * listener). A blocking listener is polled, beside the entry's eventfd,
 * and the call's notification checked every second: a call a signal
 * interrupted (or whose thread is gone) takes nothing more. Returns the
 * new socket (close-on-exec) or -errno. */
static int next_connection(struct sup *s, uint64_t id, int copy, uint64_t lino,
                           struct sockaddr_storage *ss, socklen_t *len)
{
    int nb = (fcntl(copy, F_GETFL) & O_NONBLOCK) != 0;
    int ev = nb ? -1 : acceptq_wait_begin(s, lino);
    int nfd;
    for (;;) {
        if ((nfd = acceptq_take(s, lino, ss, len)) >= 0)
            break;
        if (!nb) {
            struct pollfd p[2] = {{.fd = copy, .events = POLLIN}, {.fd = ev, .events = POLLIN}};
            if (poll(p, ev >= 0 ? 2 : 1, 1000) < 0 && errno != EINTR) {
                nfd = -errno;
                break;
            }
            if (!notif_valid(s->lfd, id)) {
                nfd = -EINTR; /* the answer goes nowhere */
                break;
            }
            if (!(p[0].revents & (POLLIN | POLLERR | POLLHUP)))
                continue;
        }
        *len = sizeof *ss;
        /* may still wait, if another took the connection first: one that
         * comes while the call is no longer there is held (on_accept) */
        nfd = accept4(copy, (struct sockaddr *)ss, len, SOCK_CLOEXEC);
        if (nfd >= 0 || nb || errno != EAGAIN) {
            nfd = nfd >= 0 ? nfd : -errno;
            break;
        }
    }
    if (ev >= 0)
        acceptq_wait_end(s, lino);
    return nfd;
}

/* accept/accept4(fd, addr, addrlen[, flags]) on a listener we placed: the
 * next connection (next_connection), the peer's address written into the
 * program, the new socket installed and returned in one step
 * (SECCOMP_ADDFD_FLAG_SEND: the new fd number is accept's result). One the
 * program's call could not take (a signal interrupted it) is held for the
 * listener's next accept(). */
void on_accept(struct sup *s, struct seccomp_notif *req)
{
    pid_t tid = (pid_t)req->pid;
    int fd = (int)req->data.args[0];
    int flags = req->data.nr == __NR_accept4 ? (int)req->data.args[3] : 0;
    uint64_t uaddr = req->data.args[1], ulen = req->data.args[2];
    int pidfd;
    uint64_t ino = 0;
    int copy = take_fd(s, req, fd, &pidfd, &ino);
    socklen_t ulen_v = 0;
    if (copy < 0 || placed_bridge(s, ino) < 0 || (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)))
        goto cont;
    if (uaddr) {
        struct iovec l1 = {.iov_base = &ulen_v, .iov_len = sizeof ulen_v};
        struct iovec r1 = {.iov_base = (void *)(uintptr_t)ulen, .iov_len = sizeof ulen_v};
        if (process_vm_readv(tid, &l1, 1, &r1, 1, 0) != sizeof ulen_v || (int)ulen_v < 0)
            goto cont; /* EFAULT, EINVAL: the kernel's */
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int nfd = next_connection(s, req->id, copy, ino, &ss, &len);
    if (nfd < 0) {
        finish(s, req, copy, pidfd, 0, -nfd);
        return;
    }
    /* this call's SOCK_NONBLOCK, on the file (a held one was taken bare) */
    int fl = fcntl(nfd, F_GETFL);
    if (fl >= 0)
        fcntl(nfd, F_SETFL, (flags & SOCK_NONBLOCK) ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
    int err = uaddr ? write_back(s, req, &ss, len < ulen_v ? len : ulen_v, uaddr, len, ulen) : 0;
    struct stat nst;
    if (!err && fstat(nfd, &nst) == 0) {
        struct seccomp_notif_addfd add = {
            .id = req->id,
            .flags = SECCOMP_ADDFD_FLAG_SEND,
            .srcfd = (uint32_t)nfd,
            .newfd_flags = (flags & SOCK_CLOEXEC) ? O_CLOEXEC : 0,
        };
        placed_add(s, (uint64_t)nst.st_ino, 0, -1);
        placed_state(s, (uint64_t)nst.st_ino, 1);
        placed_at(s, (uint64_t)nst.st_ino, (pid_t)req->pid, PLACED_PENDING);
        int at = ioctl(s->lfd, SECCOMP_IOCTL_NOTIF_ADDFD, &add);
        if (at < 0) {
            int e = errno;
            placed_at(s, (uint64_t)nst.st_ino, (pid_t)req->pid, -1);
            errno = e;
        }
        if (at >= 0) {
            placed_at(s, (uint64_t)nst.st_ino, (pid_t)req->pid, at);
            if (s->debug)
                fprintf(stderr, "%s: %016llx: accepted, installed and answered\n", me,
                        (unsigned long long)req->id);
            close(nfd); /* answered by the ioctl */
            finish(s, req, copy, pidfd, -1, 0);
            return;
        }
        if (errno == ENOENT) {
            /* interrupted: held for the restarted (or next) accept() */
            if (s->debug)
                fprintf(stderr, "%s: %016llx: interrupted; the connection is held\n", me,
                        (unsigned long long)req->id);
            acceptq_hold(s, ino, nfd, &ss, len);
            finish(s, req, copy, pidfd, -1, 0);
            return;
        }
        err = errno;
        if (err == EMFILE || err == ENFILE) {
            /* no number free in the program: TCP's accept says so and the
             * connection waits in the queue for a later one (review 10) */
            acceptq_hold(s, ino, nfd, &ss, len);
            finish(s, req, copy, pidfd, 0, err);
            return;
        }
    }
    close(nfd);
    finish(s, req, copy, pidfd, 0, err);
    return;
cont:
    finish(s, req, copy, pidfd, 1, 0);
}
