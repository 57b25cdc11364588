/* getsockname(), getpeername(), getsockopt(), setsockopt() and the
 * ioctl()s the shim answers, of the program (supervise.h). */
#include <errno.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "supervise.h"

/* getsockname/getpeername(fd, addr, addrlen) on a bridge we placed: the
 * shim's answer (the TCP addresses; ENOTCONN while connecting, which Go's
 * connect loop relies on after a spurious wake-up), written into the
 * program as the kernel writes it (the address cut to *addrlen, the full
 * length back in *addrlen). Anything else continues. */
void on_name(struct sup *s, struct seccomp_notif *req)
{
    pid_t tid = (pid_t)req->pid;
    int fd = (int)req->data.args[0];
    uint64_t uaddr = req->data.args[1], ulen = req->data.args[2];
    int pidfd;
    uint64_t ino = 0;
    int copy = take_fd(s, req, fd, &pidfd, &ino);
    socklen_t ulen_v;
    struct iovec l1 = {.iov_base = &ulen_v, .iov_len = sizeof ulen_v};
    struct iovec r1 = {.iov_base = (void *)(uintptr_t)ulen, .iov_len = sizeof ulen_v};
    if (copy < 0 || placed_state(s, ino, 0) < 0 ||
        process_vm_readv(tid, &l1, 1, &r1, 1, 0) != sizeof ulen_v || (int)ulen_v < 0 ||
        !notif_valid(s->lfd, req->id))
        goto cont;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int r = req->data.nr == __NR_getpeername ? getpeername(copy, (struct sockaddr *)&ss, &len)
                                              : getsockname(copy, (struct sockaddr *)&ss, &len);
    int err = r < 0 ? errno : 0;
    if (!err)
        err = write_back(s, req, &ss, len < ulen_v ? len : ulen_v, uaddr, len, ulen);
    finish(s, req, copy, pidfd, 0, err);
    return;
cont:
    finish(s, req, copy, pidfd, 1, 0);
}

/* Whether an option call on a TCP socket the program has not yet
 * connected or listened on (not placed) is the shim's to answer too, as
 * under the preload, where every setsockopt goes through the shim: one it
 * notes for the connect() or listen() that may make the socket a bridge
 * or a listener of ours (shim_opts_candidate, shim_connopts_candidate:
 * IP_TOS, TCP_CONGESTION, TCP_MAXSEG, TCP_WINDOW_CLAMP, SO_SNDBUF...), or
 * refuses (SO_ZEROCOPY), and TCP_CONGESTION read back (a controller rudp
 * runs and this kernel lacks). The other socket-level ones stay the
 * kernel's: the shim's connect carries them over from the socket itself
 * (shim_sock_copy_options). Without this they went to the kernel socket
 * alone and the connection ran without them: IP_TOS set before connect
 * read 0 after it. */
static int setup_option(int set, int level, int name)
{
    if (!set)
        return level == IPPROTO_TCP && name == TCP_CONGESTION;
    return level != SOL_SOCKET || name == SO_SNDBUF || name == SO_RCVBUF ||
           name == SO_SNDBUFFORCE || name == SO_RCVBUFFORCE || name == SO_ZEROCOPY;
}

/* fd (our copy) is a TCP socket neither connected nor listening, nor
 * connecting: TCP_CLOSE, where the kernel's TCP_INFO starts (a kernel TCP
 * connection, one the shim left to the kernel, keeps the kernel's
 * answers, and no record). */
static int setup_time_tcp(int fd)
{
    struct tcp_info ti;
    socklen_t l = sizeof ti;
    return is_tcp(fd) && getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) == 0 &&
           ti.tcpi_state == TCP_CLOSE;
}

/* getsockopt/setsockopt(fd, level, name, optval, optlen) on a bridge we
 * placed, or one of setup_option() on a TCP socket not yet placed: the
 * shim's answer (TCP's options and errors: SO_ERROR after a refused
 * connect, TCP_NODELAY, TCP_INFO...), the values copied in and out of the
 * program as the kernel copies them. A setsockopt is made with no more
 * capability than the program's (caps_narrow). Anything else continues. */
#define OPT_MAX 512
void on_sockopt(struct sup *s, struct seccomp_notif *req)
{
    pid_t tid = (pid_t)req->pid;
    int fd = (int)req->data.args[0], level = (int)req->data.args[1];
    int name = (int)req->data.args[2], set = req->data.nr == __NR_setsockopt;
    uint64_t uval = req->data.args[3], ulen = req->data.args[4];
    int pidfd;
    uint64_t ino = 0;
    int copy = take_fd(s, req, fd, &pidfd, &ino);
    unsigned char val[OPT_MAX];
    socklen_t len = 0;
    if (copy < 0 || (placed_state(s, ino, 0) < 0 &&
                     !(setup_option(set, level, name) && setup_time_tcp(copy))))
        goto cont;
    if (set) {
        len = (socklen_t)ulen;
        if ((int)len < 0 || len > sizeof val)
            goto cont;
    } else {
        struct iovec l1 = {.iov_base = &len, .iov_len = sizeof len};
        struct iovec r1 = {.iov_base = (void *)(uintptr_t)ulen, .iov_len = sizeof len};
        if (process_vm_readv(tid, &l1, 1, &r1, 1, 0) != sizeof len || (int)len < 0) {
            /* TCP's answer, which the bridge's own (EOPNOTSUPP at the TCP
             * level, before it reads the length) is not */
            int e = (int)len < 0 ? EINVAL : EFAULT;
            if (!notif_valid(s->lfd, req->id))
                goto cont;
            finish(s, req, copy, pidfd, 0, e);
            return;
        }
        if (len > sizeof val)
            len = sizeof val;
    }
    struct iovec lv = {.iov_base = val, .iov_len = len};
    struct iovec rv = {.iov_base = (void *)(uintptr_t)uval, .iov_len = len};
    if (len && process_vm_readv(tid, &lv, 1, &rv, 1, 0) != (ssize_t)len) {
        /* EFAULT, TCP's answer to a bad value pointer; the bridge's own at
         * the TCP level would be EOPNOTSUPP */
        if (!notif_valid(s->lfd, req->id))
            goto cont;
        finish(s, req, copy, pidfd, 0, EFAULT);
        return;
    }
    /* what needs CAP_NET_ADMIN, which the program may lack though we
     * have it (review 3): EPERM, as the kernel's */
    int admin = set && level == SOL_SOCKET &&
                (name == SO_MARK || name == SO_RCVBUFFORCE || name == SO_SNDBUFFORCE);
    int denied = admin && !caller_capable(tid, CAP_NET_ADMIN);
    /* Values that point into the program or name its fds (review 12): the
     * classic filter copied in, the BPF program's fd taken over. */
    struct sock_filter *insns = NULL;
    int bpf = -1, perr = 0;
    if (set && level == SOL_SOCKET && len >= sizeof(struct sock_fprog) &&
        (name == SO_ATTACH_FILTER || name == SO_ATTACH_REUSEPORT_CBPF)) {
        struct sock_fprog fp;
        memcpy(&fp, val, sizeof fp);
        size_t n = fp.len <= BPF_MAXINSNS ? fp.len * sizeof *insns : 0; /* 0: EINVAL */
        struct iovec li = {.iov_base = insns = malloc(n ? n : 1), .iov_len = n};
        struct iovec ri = {.iov_base = fp.filter, .iov_len = n};
        if (!insns)
            perr = ENOMEM;
        else if (n && process_vm_readv(tid, &li, 1, &ri, 1, 0) != (ssize_t)n)
            perr = EFAULT;
        fp.filter = insns;
        memcpy(val, &fp, sizeof fp);
    } else if (set && level == SOL_SOCKET && len >= sizeof(int) &&
               (name == SO_ATTACH_BPF || name == SO_ATTACH_REUSEPORT_EBPF)) {
        int pfd;
        memcpy(&pfd, val, sizeof pfd);
        bpf = (int)syscall(SYS_pidfd_getfd, pidfd, pfd, 0);
        if (bpf < 0)
            perr = EBADF;
        memcpy(val, &bpf, sizeof bpf);
    }
    if (!notif_valid(s->lfd, req->id)) {
        free(insns);
        if (bpf >= 0)
            close(bpf);
        goto cont;
    }
    if (denied || perr) {
        free(insns);
        if (bpf >= 0)
            close(bpf);
        finish(s, req, copy, pidfd, 0, denied ? EPERM : perr);
        return;
    }
    struct caps_saved caps;
    int narrowed = set ? caps_narrow(tid, &caps) : 0;
    int r = -1, err = EPERM; /* cannot narrow: refused, not made with ours */
    if (narrowed >= 0) {
        r = set ? setsockopt(copy, level, name, val, len) : getsockopt(copy, level, name, val, &len);
        err = r < 0 ? errno : 0;
    }
    if (narrowed > 0)
        caps_restore(&caps);
    free(insns);
    if (bpf >= 0)
        close(bpf);
    if (!err && !set)
        err = write_back(s, req, val, len, uval, len, ulen);
    finish(s, req, copy, pidfd, 0, err);
    return;
cont:
    finish(s, req, copy, pidfd, 1, 0);
}

/* ioctl(fd, SIOCOUTQ or SIOCOUTQNSD, int *) on a bridge we placed: the
 * shim's answer (the bytes not yet acknowledged, not yet sent: the unix
 * socket's queue and the engine's counts; AF_UNIX alone knows no
 * SIOCOUTQNSD), written into the program. Anything else continues: a
 * TCP socket's (a listener's EINVAL), a tty's TIOCOUTQ (the same
 * number). */
void on_ioctl(struct sup *s, struct seccomp_notif *req)
{
    int fd = (int)req->data.args[0];
    unsigned long what = (unsigned int)req->data.args[1];
    int pidfd;
    uint64_t ino = 0;
    int copy = take_fd(s, req, fd, &pidfd, &ino);
    if (copy < 0 || placed_state(s, ino, 0) < 0 || !notif_valid(s->lfd, req->id)) {
        finish(s, req, copy, pidfd, 1, 0);
        return;
    }
    int v = 0;
    int err = ioctl(copy, what, &v) < 0 ? errno : 0;
    struct iovec l1 = {.iov_base = &v, .iov_len = sizeof v};
    struct iovec r1 = {.iov_base = (void *)(uintptr_t)req->data.args[2], .iov_len = sizeof v};
    if (!err && process_vm_writev((pid_t)req->pid, &l1, 1, &r1, 1, 0) != sizeof v)
        err = EFAULT;
    finish(s, req, copy, pidfd, 0, err);
}
