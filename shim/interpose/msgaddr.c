/*
 * msgaddr.c: the interposers of the send and receive calls that carry an
 * address (sendto, sendmsg, recvfrom, recvmsg). Everything else on the data
 * path (read, recv, MSG_OOB, MSG_PEEK...) is the kernel's own on the
 * bridge, but for small writes an app thread sends itself (appsend.c), and
 * these four stay on it too: each calls libc first and
 * looks at the result only where an AF_UNIX bridge and TCP answer
 * differently. A call on any other fd costs one indirect call more.
 *
 *   - sendto()/sendmsg() with an address on a connected socket: TCP ignores
 *     the address (tcp_sendmsg never reads msg_name), AF_UNIX says EISCONN
 *     (unix_stream_sendmsg). Only after EISCONN do we ask whether the fd is
 *     a bridge, and send again without the address.
 *   - recvfrom()/recvmsg() asking for the sender's address: TCP fills none
 *     and reports length 0 (tcp_recvmsg leaves msg_namelen 0); AF_UNIX
 *     gives the engine end's abstract name. A name of that form is turned
 *     into length 0 (the form alone: no system call on the data path).
 *
 * sendmmsg()/recvmmsg() (mmsg.c) are these rules applied per message.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "interpose.h"

/* 1 if fd is an application's end of one of our bridges. */
static int bridged(int fd)
{
    shim_name n;
    return shim_name_peer(fd, &n, 0) == 1;
}

/* MSG_FASTOPEN (TCP Fast Open without connect()): connect through the
 * shim with the program's opt-in, then send on the bridge. 1: not ours,
 * the kernel's call does it all; else the call's result. */
static int fastopen(int fd, int flags, const struct sockaddr *addr, socklen_t alen)
{
    if (!(flags & MSG_FASTOPEN) || !addr)
        return 1;
    return shim_connect_fastopen(fd, addr, alen);
}

SHIM_EXPORT ssize_t sendto(int fd, const void *buf, size_t len, int flags,
                           const struct sockaddr *addr, socklen_t alen)
{
    shim_real_init();
    if (!addr) {
        struct iovec v = {.iov_base = (void *)buf, .iov_len = len};
        ssize_t sent;
        if (shim_appsend_try(fd, &v, 1, flags, &sent))
            return sent;
        if (shim_fd_hinted(fd) && !(flags & MSG_FASTOPEN))
            return shim_appsend_kernel(fd, &v, 1, flags);
    }
    int fo = fastopen(fd, flags, addr, alen);
    if (fo <= 0)
        return fo < 0 ? -1 : real_sendto(fd, buf, len, flags & ~MSG_FASTOPEN, NULL, 0);
    ssize_t r = real_sendto(fd, buf, len, flags, addr, alen);
    if (r >= 0 || errno != EISCONN || !addr)
        return r;
    if (!bridged(fd)) {
        errno = EISCONN;
        return -1;
    }
    return real_sendto(fd, buf, len, flags, NULL, 0);
}

ssize_t shim_msgaddr_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    ssize_t sent;
    if (msg && !msg->msg_name && !msg->msg_controllen && msg->msg_iovlen <= INT_MAX &&
        shim_appsend_try(fd, msg->msg_iov, (int)msg->msg_iovlen, flags, &sent))
        return sent;
    if (msg && !msg->msg_name && !msg->msg_controllen && msg->msg_iovlen <= IOV_MAX &&
        !(flags & MSG_FASTOPEN) && shim_fd_hinted(fd))
        return shim_appsend_kernel(fd, msg->msg_iov, (int)msg->msg_iovlen, flags);
    if (msg && msg->msg_controllen)
        shim_rx_passed(msg);
    int fo = msg ? fastopen(fd, flags, msg->msg_name, msg->msg_namelen) : 1;
    if (fo < 0)
        return -1;
    if (fo == 0) {
        struct msghdr m = *msg;
        m.msg_name = NULL;
        m.msg_namelen = 0;
        return real_sendmsg(fd, &m, flags & ~MSG_FASTOPEN);
    }
    ssize_t r = real_sendmsg(fd, msg, flags);
    if (r >= 0 || errno != EISCONN || !msg || !msg->msg_namelen)
        return r;
    if (!bridged(fd)) {
        errno = EISCONN;
        return -1;
    }
    struct msghdr m = *msg;
    m.msg_name = NULL;
    m.msg_namelen = 0;
    return real_sendmsg(fd, &m, flags);
}

SHIM_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    shim_real_init();
    return shim_msgaddr_sendmsg(fd, msg, flags);
}

/* The sender's name the kernel gave into ss (sl bytes) for a program's
 * buffer addr of cap bytes: for a bridge's engine end none, as TCP's,
 * the program's buffer left as it was (the kernel wrote it before, when
 * given it: the unix name's family at least); for anything else (a hint
 * gone stale) what the kernel would have written. */
static void name_back(struct sockaddr *addr, socklen_t *alen, socklen_t cap,
                      const struct sockaddr_storage *ss, socklen_t sl)
{
    if (shim_name_is_engine((const struct sockaddr *)ss, sl, sizeof *ss)) {
        *alen = 0;
        return;
    }
    memcpy(addr, ss, sl < cap ? sl : cap);
    *alen = sl;
}

/* recvfrom() asking for the sender's name on an fd the hints say is a
 * bridge: the kernel's name into a buffer of ours (name_back). */
static ssize_t recvfrom_hinted(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
                               socklen_t *alen, socklen_t cap)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    ssize_t r = real_recvfrom(fd, buf, len, flags, (struct sockaddr *)&ss, &sl);
    if (r >= 0)
        name_back(addr, alen, cap, &ss, sl);
    return r;
}

ssize_t shim_msgaddr_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
                              socklen_t *alen)
{
    socklen_t cap = addr && alen ? *alen : 0;
    if (cap && shim_fd_hinted(fd))
        return recvfrom_hinted(fd, buf, len, flags, addr, alen, cap);
    ssize_t r = real_recvfrom(fd, buf, len, flags, addr, alen);
    if (r >= 0 && cap && shim_name_is_engine(addr, *alen, cap))
        *alen = 0;
    return r;
}

SHIM_EXPORT ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
                             socklen_t *alen)
{
    shim_real_init();
    socklen_t cap = addr && alen ? *alen : 0;
    struct iovec v = {.iov_base = buf, .iov_len = len};
    struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1};
    ssize_t r;
    if (shim_recv_odd(fd, len, flags, &r)) { /* MSG_TRUNC, MSG_ERRQUEUE (recv.c) */
        if (r >= 0 && cap)
            *alen = 0;
        return shim_recv_told(fd, r, len);
    }
    if (len > 0 && shim_recv_kept(fd, &m, flags, &r)) {
        if (r >= 0 && cap)
            *alen = 0; /* TCP's: no address */
        return r;
    }
    r = shim_msgaddr_recvfrom(fd, buf, len, flags, addr, alen);
    return shim_recv_told(fd, r, len); /* an abnormal end's cause (recv.c) */
}

void shim_msgaddr_received(struct msghdr *msg, socklen_t cap)
{
    if (cap && shim_name_is_engine(msg->msg_name, msg->msg_namelen, cap))
        msg->msg_namelen = 0;
}

/* recvmsg() with MSG_TRUNC or MSG_ERRQUEUE on a bridge (recv.c's
 * shim_recv_odd): the bytes the iovec array asks for discarded, its
 * buffers untouched; no address, no control data, no flags, as TCP's. The
 * program's msghdr and iovec array read and written by guarded copies (a
 * bad one: EFAULT, as the kernel says). 1 with *out the answer. */
static int recvmsg_odd(int fd, struct msghdr *msg, int flags, ssize_t *out)
{
    struct msghdr mh;
    if (shim_user_read(&mh, msg, sizeof mh) < 0) {
        errno = EFAULT;
        *out = -1;
        return 1;
    }
    if (mh.msg_iovlen > IOV_MAX) {
        errno = EMSGSIZE;
        *out = -1;
        return 1;
    }
    size_t n = 0;
    struct iovec v[16];
    for (size_t i = 0; i < mh.msg_iovlen; i += 16) {
        size_t k = mh.msg_iovlen - i < 16 ? mh.msg_iovlen - i : 16;
        if (shim_user_read(v, mh.msg_iov + i, k * sizeof *v) < 0) {
            errno = EFAULT;
            *out = -1;
            return 1;
        }
        for (size_t j = 0; j < k; j++)
            n += v[j].iov_len;
    }
    if (!shim_recv_odd(fd, n, flags, out))
        return 0;
    if (*out >= 0) {
        mh.msg_namelen = 0;
        mh.msg_controllen = 0;
        mh.msg_flags = 0;
        if (shim_user_write(msg, &mh, sizeof mh) < 0) {
            errno = EFAULT;
            *out = -1;
        }
    }
    *out = shim_recv_told(fd, *out, n);
    return 1;
}

SHIM_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    shim_real_init();
    socklen_t cap = msg && msg->msg_name ? msg->msg_namelen : 0;
    ssize_t odd;
    if ((flags & (MSG_TRUNC | MSG_ERRQUEUE)) && shim_fd_hinted(fd) && recvmsg_odd(fd, msg, flags, &odd))
        return odd;
    /* kept bytes passed on: the program's iovec array is the kernel's to
     * read (a bad one is EFAULT there) */
    shim_kept_flush();
    ssize_t r;
    if (cap && shim_fd_hinted(fd)) {
        /* the sender's name into a buffer of ours (name_back); what else
         * the kernel writes in the msghdr, copied back */
        struct msghdr mine = *msg;
        struct sockaddr_storage ss;
        mine.msg_name = &ss;
        mine.msg_namelen = sizeof ss;
        r = real_recvmsg(fd, &mine, flags);
        if (r >= 0) {
            msg->msg_controllen = mine.msg_controllen;
            msg->msg_flags = mine.msg_flags;
            name_back(msg->msg_name, &msg->msg_namelen, cap, &ss, mine.msg_namelen);
        }
    } else {
        r = real_recvmsg(fd, msg, flags);
        if (r >= 0)
            shim_msgaddr_received(msg, cap);
    }
    /* the bytes asked for matter only after an EOF, when msg proved valid */
    return shim_recv_told(fd, r, r == 0 ? shim_iov_bytes(msg->msg_iov, (int)msg->msg_iovlen) : 1);
}

/*
 * The peer's credentials: a TCP socket has none (sk_peer_pid and
 * sk_peer_cred are set by AF_UNIX only), so SO_PEERCRED gives what
 * cred_to_ucred() makes of nothing, pid 0 and uid/gid -1, and
 * SO_PEERGROUPS and SO_PEERPIDFD say ENODATA (net/core/sock.c); the
 * bridge's own answer would name the engine. Returns 1 with the answer
 * made (0 or -1 and errno), 0 for any other option.
 */
int shim_peercred_getsockopt(int opt, void *val, socklen_t *len, int *ret)
{
    switch (opt) {
    case SO_PEERCRED: {
        struct ucred u = {.pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1};
        socklen_t n;
        if (!len || !val || shim_user_read(&n, len, sizeof n) < 0) {
            errno = EFAULT;
            *ret = -1;
            return 1;
        }
        n = n < sizeof u ? n : sizeof u;
        *ret = shim_user_write(val, &u, n) < 0 || shim_user_write(len, &n, sizeof n) < 0 ? -1 : 0;
        return 1;
    }
    case SO_PEERGROUPS:
    case SO_PEERPIDFD:
        errno = ENODATA;
        *ret = -1;
        return 1;
    default:
        return 0;
    }
}
