/* bind(), listen(), accept() and accept4() of the program (supervise.h). */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "supervise.h"

/* fd is a UDP socket (IPv4 or IPv6). */
static int is_udp(int fd)
{
    int d = sock_int(fd, SO_DOMAIN);
    return (d == AF_INET || d == AF_INET6) && sock_int(fd, SO_TYPE) == SOCK_DGRAM &&
           sock_int(fd, SO_PROTOCOL) == IPPROTO_UDP;
}

/* bind(fd, addr, len) of a TCP socket: the shim's (a port free for UDP
 * too when the program asks for port 0; the ports its listeners hold).
 * Of a UDP socket to a port (not 0): the shim's too, on our copy (the
 * same file), as under the preload: the serving process's listeners on
 * that port give their UDP socket up first (shim_port_yield: a listener
 * then takes plain TCP only), and the program's socket gets the port, as
 * it would without rudp, where TCP's and UDP's ports are apart
 * (prog_keeperhand exit, prog_reuseport). Left to the kernel, the bind met
 * the listener's UDP socket: EADDRINUSE. Port 0 stays the kernel's: it
 * never picks a port in use. */
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
    if (copy < 0 || !(is_tcp(copy) || (port != 0 && is_udp(copy))) || !same_netns(tid, copy))
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

/* listen() on the program's TCP socket copy (inode ino, fd at the
 * program) that listens already: another process of the program listened
 * on this very socket before (shared across fork or SCM_RIGHTS before
 * listen()), and the shim made a unix listener of it, which that process
 * holds. TCP's processes then share one queue: the same unix listener
 * goes to this fd too, as the preload's listen_shared does with the
 * listener's process (there another process: here the engine is ours and
 * holds no copy, the program does). 0 answered (res: the result), or -1:
 * none such, the shim's listen decides. */
static int listen_same_socket(struct sup *s, struct seccomp_notif *req, uint64_t ino, int *err)
{
    int fd = (int)req->data.args[0];
    /* by the record, not SO_ACCEPTCONN: with RUDP_ACCEPT_TCP=0 the shim
     * keeps the socket unlistened */
    uint64_t lino = placed_listener_of(s, ino);
    int lc = lino ? reach_app_end(lino) : -1;
    if (lc < 0)
        return -1;
    /* the shim's answer (its records follow the file): a listener it made,
     * not a bridge a connect() on the shared socket made */
    if (sock_int(lc, SO_ACCEPTCONN) != 1) {
        close(lc);
        return -1;
    }
    /* No listen() on it (TCP's second listen() sets a new backlog): the
     * queue is the unix listener's, made by the first. */
    int e = add_fd_keep_epoll(s, req, lc, fd, ino);
    close(lc);
    if (e < 0 && e != -ESTALE && e != -ENOENT)
        return -1; /* the number cannot be placed: the shim's listen, as before */
    /* -ESTALE: another file at the number meanwhile (review 5); -ENOENT:
     * interrupted, the answer goes nowhere */
    *err = e == -ENOENT ? EINTR : 0;
    return 0;
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
    int same_err;
    if (!placed && listen_same_socket(s, req, ino, &same_err) == 0) {
        finish(s, req, copy, pidfd, 0, same_err);
        return;
    }
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

/* Our copy *copyp of the program's listener (inode lino), which a blocking
 * accept() of a single-threaded caller waits on: put in an epoll set, which
 * keeps no reference to the file, and closed (*copyp -1), as TCP's accept()
 * holds none there (acceptw.c says why). Returns the set, or -1: the copy
 * is kept. */
static int wait_unheld(const struct seccomp_notif *req, int *copyp)
{
    if (fd_table_shared((pid_t)req->pid))
        return -1;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event eev = {.events = EPOLLIN};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, *copyp, &eev) < 0) {
        if (ep >= 0)
            close(ep);
        return -1;
    }
    close(*copyp);
    *copyp = -1;
    return ep;
}

/* The next connection for an accept() on our copy *copyp of listener
 * lino: one held for it (acceptq.c) first, else the shim's accept4 (it
 * takes only what the engine hands over, and plain TCP clients of the dual
 * listener). A blocking listener is polled, beside the entry's eventfd,
 * and the call's notification checked every second: a call a signal
 * interrupted (or whose thread is gone) takes nothing more. While it
 * waits the copy may be let go (wait_unheld) and taken again from the
 * program once the listener is readable: *copyp is then the new copy, or
 * -1. Returns the new socket (close-on-exec) or -errno. */
static int next_connection(struct sup *s, const struct seccomp_notif *req, int *copyp,
                           uint64_t lino, struct sockaddr_storage *ss, socklen_t *len)
{
    int nb = (fcntl(*copyp, F_GETFL) & O_NONBLOCK) != 0;
    int ev = nb ? -1 : acceptq_wait_begin(s, lino);
    int ep = -1, let_go = nb;
    int nfd;
    for (;;) {
        if ((nfd = acceptq_take(s, lino, ss, len)) >= 0)
            break;
        if (!let_go) {
            /* only when about to wait: a connection there is taken at once */
            struct pollfd q = {.fd = *copyp, .events = POLLIN};
            if (poll(&q, 1, 0) == 0) {
                ep = wait_unheld(req, copyp);
                let_go = 1;
            }
        }
        if (!nb) {
            struct pollfd p[2] = {{.fd = ep >= 0 ? ep : *copyp, .events = POLLIN},
                                  {.fd = ev, .events = POLLIN}};
            if (poll(p, ev >= 0 ? 2 : 1, 1000) < 0 && errno != EINTR) {
                nfd = -errno;
                break;
            }
            if (!notif_valid(s->lfd, req->id)) {
                nfd = -EINTR; /* the answer goes nowhere */
                break;
            }
            if (!(p[0].revents & (POLLIN | POLLERR | POLLHUP)))
                continue;
            if (*copyp < 0) {
                /* the listener again, from the program: the number may name
                 * another file now only if the caller's table is shared,
                 * which it was not when we let go */
                int pidfd;
                uint64_t ino = 0;
                *copyp = take_fd(s, req, (int)req->data.args[0], &pidfd, &ino);
                if (pidfd >= 0)
                    close(pidfd);
                if (*copyp < 0 || ino != lino) {
                    nfd = *copyp < 0 ? -EINTR : -EBADF;
                    break;
                }
            }
        }
        *len = sizeof *ss;
        /* may still wait, if another took the connection first: one that
         * comes while the call is no longer there is held (on_accept) */
        nfd = accept4(*copyp, (struct sockaddr *)ss, len, SOCK_CLOEXEC);
        if (nfd >= 0 || nb || errno != EAGAIN) {
            nfd = nfd >= 0 ? nfd : -errno;
            break;
        }
    }
    if (ep >= 0)
        close(ep);
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
    on_accept_held(s, req, -1);
}

void on_accept_held(struct sup *s, struct seccomp_notif *req, int held)
{
    pid_t tid = (pid_t)req->pid;
    int fd = (int)req->data.args[0];
    int flags = req->data.nr == __NR_accept4 ? (int)req->data.args[3] : 0;
    uint64_t uaddr = req->data.args[1], ulen = req->data.args[2];
    int pidfd = -1;
    uint64_t ino = 0;
    int copy = held;
    struct stat hst;
    if (held >= 0 && (fstat(held, &hst) < 0 || !notif_valid(s->lfd, req->id))) {
        finish(s, req, held, -1, 0, EINTR); /* gone: the answer goes nowhere */
        return;
    }
    if (held >= 0)
        ino = (uint64_t)hst.st_ino;
    else
        copy = take_fd(s, req, fd, &pidfd, &ino);
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
    int nfd = next_connection(s, req, &copy, ino, &ss, &len);
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
        /* the ioctl answers the program: our copy of its listener goes
         * first, or a close() and connect() right after could find the
         * listener alive (prog_sysclose) */
        close(copy);
        copy = -1;
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
