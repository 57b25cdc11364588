/* sendto()/sendmsg() with MSG_FASTOPEN of the program: TCP Fast Open's
 * connect without connect() (supervise.h). Left to the kernel it would be
 * a kernel TCP connection; here it is the shim's, as under the preload:
 * the shim's sendto() on our copy connects (MSG_FASTOPEN is the
 * program's opt-in to 0-RTT, shim/interpose/msgaddr.c), the bridge is put
 * at the program's fd as connect() puts it (connect.c), and then the data
 * is sent on it from the program's memory. In that order, so that a call
 * interrupted before its bridge was in place and restarted by the kernel
 * finds the bridge held (placed_take_held) and sends its data once. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "supervise.h"

#define CHUNK 65536
#define IOV_MAX_READ 64

/* The call's destination, data and flags, read from the program. */
struct fo_call {
    struct sockaddr_storage ss;
    socklen_t alen;
    struct iovec iov[IOV_MAX_READ]; /* in the program */
    int niov;
    int flags;
};

/* Reads sendto's or sendmsg's arguments; 0, or -1: let the kernel answer
 * (no address, a bad one, what we do not carry: ancillary data, more
 * iovecs than IOV_MAX_READ). */
static int read_call(const struct seccomp_notif *req, struct fo_call *c)
{
    pid_t tid = (pid_t)req->pid;
    uint64_t uaddr;
    if (req->data.nr == __NR_sendto) {
        c->iov[0] = (struct iovec){.iov_base = (void *)(uintptr_t)req->data.args[1],
                                   .iov_len = (size_t)req->data.args[2]};
        c->niov = 1;
        c->flags = (int)req->data.args[3];
        uaddr = req->data.args[4];
        c->alen = (socklen_t)req->data.args[5];
    } else {
        struct msghdr m;
        struct iovec l1 = {.iov_base = &m, .iov_len = sizeof m};
        struct iovec r1 = {.iov_base = (void *)(uintptr_t)req->data.args[1], .iov_len = sizeof m};
        if (process_vm_readv(tid, &l1, 1, &r1, 1, 0) != sizeof m || m.msg_controllen ||
            m.msg_iovlen > IOV_MAX_READ)
            return -1;
        c->niov = (int)m.msg_iovlen;
        struct iovec l2 = {.iov_base = c->iov, .iov_len = (size_t)c->niov * sizeof c->iov[0]};
        struct iovec r2 = {.iov_base = m.msg_iov, .iov_len = l2.iov_len};
        if (c->niov && process_vm_readv(tid, &l2, 1, &r2, 1, 0) != (ssize_t)l2.iov_len)
            return -1;
        c->flags = (int)req->data.args[2];
        uaddr = (uint64_t)(uintptr_t)m.msg_name;
        c->alen = m.msg_namelen;
    }
    if (!uaddr || (int)c->alen < (int)sizeof(sa_family_t) || c->alen > sizeof c->ss)
        return -1;
    struct iovec l3 = {.iov_base = &c->ss, .iov_len = c->alen};
    struct iovec r3 = {.iov_base = (void *)(uintptr_t)uaddr, .iov_len = c->alen};
    return process_vm_readv(tid, &l3, 1, &r3, 1, 0) == (ssize_t)c->alen ? 0 : -1;
}

/* Sends the call's data on the bridge copy, chunk by chunk out of the
 * program, as TCP sends it: all of it when blocking, what fits when not
 * (EAGAIN before any). Returns the count, or -errno (-EPIPE: the caller
 * sends the program's thread the kernel's SIGPIPE, after its answer). */
static ssize_t send_data(const struct seccomp_notif *req, int copy, const struct fo_call *c)
{
    char *buf = malloc(CHUNK);
    if (!buf)
        return -ENOMEM;
    int flags = (c->flags & ~MSG_FASTOPEN) | MSG_NOSIGNAL;
    ssize_t total = 0, err = 0;
    for (int i = 0; i < c->niov && !err; i++) {
        size_t off = 0;
        while (off < c->iov[i].iov_len) {
            size_t n = c->iov[i].iov_len - off < CHUNK ? c->iov[i].iov_len - off : CHUNK;
            struct iovec l = {.iov_base = buf, .iov_len = n};
            struct iovec r = {.iov_base = (char *)c->iov[i].iov_base + off, .iov_len = n};
            ssize_t got = process_vm_readv((pid_t)req->pid, &l, 1, &r, 1, 0);
            if (got <= 0) {
                err = EFAULT;
                break;
            }
            ssize_t w = send(copy, buf, (size_t)got, flags);
            if (w < 0 && errno == EINTR)
                continue; /* a signal of ours, not the program's */
            if (w < 0) {
                err = errno;
                break;
            }
            total += w;
            off += (size_t)w;
            if (w < got)
                break; /* non-blocking: what fitted */
        }
        if (off < c->iov[i].iov_len && !err)
            break;
    }
    free(buf);
    if (total > 0)
        return total;
    return err ? -err : 0;
}

void on_fastopen(struct sup *s, struct seccomp_notif *req)
{
    int fd = (int)req->data.args[0];
    struct fo_call c;
    int pidfd = -1, copy = -1;
    struct stat before, after;
    if (read_call(req, &c) < 0)
        goto cont;
    uint64_t ino = 0;
    /* short of fds: as connect() (connect.c, escape.c) */
    const char *what = NULL;
    int short_err = 0;
    long long until = 0;
    copy = take_fd(s, req, fd, &pidfd, &ino);
    int gerr = copy < 0 ? errno : 0;
    while (copy < 0 && short_again(gerr, &until, s, req->id)) {
        if (pidfd >= 0)
            close(pidfd);
        copy = take_fd(s, req, fd, &pidfd, &ino);
        gerr = copy < 0 ? errno : 0;
    }
    if (copy < 0 && (what = short_of(gerr))) {
        short_err = gerr;
        goto escaped;
    }
    if (copy < 0 && gerr == EBADF && pidfd >= 0) {
        no_file(s, req, pidfd); /* connect.c */
        return;
    }
    if (copy < 0 || fstat(copy, &before) < 0)
        goto cont;
    /* restarted before its bridge was in place: put it there, then the
     * data (the connect was made); not placeable: as below */
    int held = place_held(s, req, fd, &copy, &before);
    if (held == -ENOENT) {
        close(pidfd);
        return;
    }
    if (held == -ESTALE)
        goto data; /* the number another file's meanwhile: below */
    if (held < 0) {
        short_err = -held;
        goto unplaceable;
    }
    if (held > 0)
        goto data;
    int st = placed_bridge(s, before.st_ino);
    if (st == 0)
        goto data; /* placed, the call restarted after: its data */
    if (st > 0 || !redirectable((pid_t)req->pid, copy, fd))
        goto cont; /* TCP says EISCONN, AF_UNIX too; not TCP: the kernel's */
    /* The connect: the shim's sendto() with no data (its MSG_FASTOPEN
     * path connects, then sends nothing). */
    int r = (int)sendto(copy, NULL, 0, c.flags | MSG_NOSIGNAL, (struct sockaddr *)&c.ss, c.alen);
    int err = r < 0 ? errno : 0;
    while (r < 0 && fstat(copy, &after) == 0 && after.st_ino == before.st_ino &&
           short_again(err, &until, s, req->id)) {
        r = (int)sendto(copy, NULL, 0, c.flags | MSG_NOSIGNAL, (struct sockaddr *)&c.ss, c.alen);
        err = r < 0 ? errno : 0;
    }
    if (r < 0 && (what = short_of(err)) && fstat(copy, &after) == 0 &&
        after.st_ino == before.st_ino) {
        short_err = err;
        goto escaped;
    }
    if ((r == 0 || err == EINPROGRESS) && fstat(copy, &after) == 0 &&
        after.st_ino != before.st_ino) {
        int e = place_bridge(s, req, copy, (uint64_t)after.st_ino, fd, (uint64_t)before.st_ino,
                             1);
        if (e == -ENOENT) {
            close(pidfd); /* held for the restart */
            return;
        }
        if (e == -ESTALE && !err)
            goto data; /* the number another file's meanwhile: below */
        if (e < 0 && e != -ESTALE) {
            short_err = -e;
            goto unplaceable;
        }
    }
    /* else left to the kernel (an address not redirected): our call made
     * its connect on the program's own socket (copy shares its file), the
     * data goes on it below; continuing would say EISCONN */
    if (err) {
        /* EINPROGRESS: non-blocking, no data taken, as TCP without a
         * cookie; or the connect's error */
        finish(s, req, copy, pidfd, 0, err);
        return;
    }
data:;
    /* Also where the program put another file at the number while the
     * call waited (ESTALE: it closed or dup2'd it): the call is the
     * socket's it was made on, as TCP's, which looks the number up once;
     * its bytes go on the connection made for it (a held one for a
     * restarted call), which ends once closed below, as that socket would
     * once the call let go of it. Never the kernel's to make again on the
     * other file: a kernel TCP connection, counted nowhere
     * (t_supervise_calls' tforace).
     * Interrupted already: the restarted call sends the data, not this
     * one. Else noted as answered before any byte leaves, so that a
     * restart of a call interrupted while sending (a blocking one, held
     * by a full buffer) says EISCONN (continued: AF_UNIX's) rather than
     * send the data twice; a later connect() says EISCONN too. */
    uint64_t bino = fstat(copy, &after) == 0 ? (uint64_t)after.st_ino : 0;
    if (!notif_valid(s->lfd, req->id)) {
        finish(s, req, copy, pidfd, -1, 0);
        return;
    }
    if (bino)
        placed_state(s, bino, 1);
    ssize_t n = send_data(req, copy, &c);
    close(copy);
    close(pidfd);
    if (respond(s, req->id, 0, n < 0 ? 0 : n, n < 0 ? (int)-n : 0) == 0 && n == -EPIPE &&
        !(c.flags & MSG_NOSIGNAL))
        syscall(SYS_tkill, (pid_t)req->pid, SIGPIPE); /* after the answer: sent while the
                                                        * call waits it would interrupt it
                                                        * (sendaddr.c) */
    return;
unplaceable:
    /* Not placed: the number cannot take it (EBADF): the bridge goes
     * (closing our only copy ends it), and the call goes on the program's
     * own socket as escape() says, as connect()'s does (connect.c, review
     * 4). */
    what = "the program's fd cannot take the bridge";
escaped:
    finish(s, req, copy, pidfd, -1, 0);
    escape_answer(s, req, &c.ss, c.alen, short_err, what);
    return;
cont:
    finish(s, req, copy, pidfd, 1, 0);
}
