/*
 * mmsg.c: sendmmsg() and recvmmsg(), the batched sendmsg()/recvmsg(), with
 * msgaddr.c's rules applied to each message: on a bridge an address given
 * with a message is ignored and a received message reports none (length
 * 0), as TCP does; everything else (MSG_OOB, MSG_DONTWAIT, MSG_WAITFORONE,
 * the timeout) is libc's and the kernel's own on the bridge. A call on any
 * other fd costs one indirect call more, and sendmmsg() looks further only
 * where libc stopped at a message that carries an address.
 *
 * The kernel's loop (net/socket.c, __sys_sendmmsg and do_recvmmsg): at most
 * UIO_MAXIOV messages; each is one sendmsg()/recvmsg() whose count goes in
 * msg_len; the first failure ends the call, which then returns the number
 * of messages done, or -1 and the error if none was.
 */
#include <errno.h>
#include <limits.h>
#include <sys/uio.h>

#include "interpose.h"

#ifndef UIO_MAXIOV
#define UIO_MAXIOV 1024 /* include/uapi/linux/uio.h */
#endif

SHIM_EXPORT int sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
    shim_real_init();
    int r = real_sendmmsg(fd, vec, vlen, flags);
    /* what the kernel read (vec proved valid): fds passed (SCM_RIGHTS) */
    for (int k = 0; k < r; k++)
        if (vec[k].msg_hdr.msg_controllen)
            shim_rx_passed(&vec[k].msg_hdr);
    unsigned n = vlen < UIO_MAXIOV ? vlen : UIO_MAXIOV;
    unsigned i = r < 0 ? 0 : (unsigned)r;
    /* AF_UNIX says EISCONN to a message with an address: that one (the
     * first, when r is -1) and the rest go as sendmsg() sends them. */
    if (r < 0 ? errno != EISCONN || !vec : i >= n || !vec[i].msg_hdr.msg_namelen)
        return r;
    for (; i < n; i++) {
        ssize_t s = shim_msgaddr_sendmsg(fd, &vec[i].msg_hdr, flags);
        if (s < 0)
            return i ? (int)i : -1;
        vec[i].msg_len = (unsigned)s;
    }
    return (int)n;
}

SHIM_EXPORT int recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags,
                         struct timespec *timeout)
{
    shim_real_init();
    shim_kept_flush();
    if (!vec)
        return real_recvmmsg(fd, vec, vlen, flags, timeout);
    unsigned n = vlen < UIO_MAXIOV ? vlen : UIO_MAXIOV;
    socklen_t cap[UIO_MAXIOV];
    for (unsigned i = 0; i < n; i++)
        cap[i] = vec[i].msg_hdr.msg_name ? vec[i].msg_hdr.msg_namelen : 0;
    int r = real_recvmmsg(fd, vec, vlen, flags, timeout);
    if (r < 0)
        errno = shim_recv_errno(fd, errno); /* an abnormal end's cause (recv.c) */
    for (int i = 0; i < r; i++)
        shim_msgaddr_received(&vec[i].msg_hdr, cap[i]);
    return r;
}
