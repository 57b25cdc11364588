/*
 * timewait.c: a listener's TIME_WAIT handed to the kernel when the process
 * that holds it ends.
 *
 * While the process runs, its engine holds a listener's TCP socket through
 * the 60 s of TIME_WAIT after the listener closed (shim_tw_hold,
 * portshare.c): a bind() to the port needs SO_REUSEADDR meanwhile, as
 * under TCP. Kernel TCP's TIME_WAIT outlives the process, but no process
 * carries it: the kernel does. A keeper kept alive for it alone showed in
 * ps as the program itself for a minute after the program was gone, and a
 * supervisor took the service for still running. So when a
 * process ends without a keeper, and when a keeper's engine is done, every
 * held socket becomes a kernel TIME_WAIT: still bound to the listener's
 * address and port, with the application's SO_REUSEADDR, it connects to a
 * listener of our own on loopback (an ephemeral port), sends its FIN
 * first, and the FIN that answers puts it in TIME_WAIT. The kernel keeps
 * that for TCP_TIMEWAIT_LEN with the bind rules of a server's own
 * (inet_csk_bind_conflict(): a TIME_WAIT socket keeps its sk_reuse), and
 * ss lists it. It starts now, so the port stays held up to 60 s longer
 * than the connection's own TIME_WAIT would have held it; the cost is one
 * loopback TCP connection (7 segments) per listener port. Where the kernel
 * refuses the held socket's connect (it listened: 6.18), a fresh socket
 * bound to the same port makes it (fresh_bound).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ports.h"
#include "portpriv.h"
#include "portshare.h"

#include "base/poison.h"

/* Each step is loopback's: done before the call returns, unless a firewall
 * drops loopback TCP; then the port is given up after this, not held. */
#define MEET_WAIT_MS 500

/* Where the meeting listener stands for a socket bound to IPv4 loopback
 * or a wildcard: an address of 127/8 that no program uses, so that the
 * hand-off's segments can be told from a program's own (the real-program
 * battery counts kernel TCP segments and prints these apart). */
#define TW_MEET_ADDR 0x7f525457u /* 127.82.84.87 */

/* A listener of ours that a socket bound to `bound` can connect to: on
 * its own address, at TW_MEET_ADDR for IPv4 loopback or a wildcard (v4-mapped
 * through an IPv6 socket; for a dual-stack IPv6 wildcard try 1 is ::1,
 * where IPv4 is off). Its address in *at (length *len); the fd, or -errno. */
static int meeting_listener(const struct sockaddr_storage *bound, int v6only, int try,
                            struct sockaddr_storage *at, socklen_t *len)
{
    memset(at, 0, sizeof *at);
    if (bound->ss_family == AF_INET) {
        if (try)
            return -EADDRNOTAVAIL;
        struct sockaddr_in *a = (struct sockaddr_in *)at;
        *a = *(const struct sockaddr_in *)bound;
        uint32_t ip = ntohl(a->sin_addr.s_addr);
        if (ip == INADDR_ANY || ip >> 24 == 127)
            a->sin_addr.s_addr = htonl(TW_MEET_ADDR);
        a->sin_port = 0;
        *len = sizeof *a;
    } else if (bound->ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)at;
        *a = *(const struct sockaddr_in6 *)bound;
        a->sin6_port = 0;
        a->sin6_flowinfo = 0;
        static const uint8_t mapped_meet[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 82, 84, 87};
        if (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr)) {
            /* a v6only socket cannot reach a v4-mapped address */
            if (try == 0 && !v6only)
                memcpy(&a->sin6_addr, mapped_meet, sizeof mapped_meet);
            else if (try == (v6only ? 0 : 1))
                a->sin6_addr = in6addr_loopback;
            else
                return -EADDRNOTAVAIL;
        } else if (try) {
            return -EADDRNOTAVAIL;
        } else if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && a->sin6_addr.s6_addr[12] == 127) {
            /* IPv4 loopback through an IPv6 socket (Java's, for one) */
            memcpy(&a->sin6_addr.s6_addr[12], &mapped_meet[12], 4);
        }
        *len = sizeof *a;
    } else {
        return -EAFNOSUPPORT;
    }
    int l = real_socket(at->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l < 0)
        return -errno;
    int off = 0;
    if (at->ss_family == AF_INET6)
        real_setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    if (real_bind(l, (struct sockaddr *)at, *len) < 0 || real_listen(l, 1) < 0 ||
        real_getsockname(l, (struct sockaddr *)at, len) < 0) {
        int err = -errno;
        real_close(l);
        return err;
    }
    return l;
}

static int wait_for(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    int n;
    do
        n = real_poll(&p, 1, MEET_WAIT_MS);
    while (n < 0 && errno == EINTR);
    return n == 1 ? 0 : n == 0 ? -ETIMEDOUT : -errno;
}

/* Whether a and b are one address and port. */
static int same_end(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    return 0;
}

/* A socket of fd's family and options bound where fd is (len bytes of
 * bound), for a kernel on which a socket that listened cannot connect:
 * 6.18's connect() after connect(AF_UNSPEC) unlistened it says EINVAL.
 * Both take SO_REUSEADDR for the bind (fd no longer listens, so the kernel
 * lets two such sockets share the port), then the new one is given back
 * the application's own, which its TIME_WAIT keeps (sk_reuse: a later
 * bind() without SO_REUSEADDR still fails there, as under TCP). The new
 * fd, or -errno. */
static int fresh_bound(int fd, const struct sockaddr_storage *bound, socklen_t len)
{
    int reuse = 0, rport = 0, v6only = 0, on = 1;
    socklen_t ol = sizeof reuse;
    if (real_getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, &ol) < 0)
        return -errno;
    ol = sizeof rport;
    if (real_getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &rport, &ol) < 0)
        rport = 0;
    ol = sizeof v6only;
    if (bound->ss_family == AF_INET6 &&
        real_getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &ol) < 0)
        v6only = 0;
    int n = real_socket(bound->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (n < 0)
        return -errno;
    if ((bound->ss_family == AF_INET6 &&
         real_setsockopt(n, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) < 0) ||
        (rport && real_setsockopt(n, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) < 0) ||
        real_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0 ||
        real_setsockopt(n, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0 ||
        real_bind(n, (const struct sockaddr *)bound, len) < 0 ||
        real_setsockopt(n, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse) < 0) {
        int err = -errno;
        real_close(n);
        return err;
    }
    return n;
}

/* Puts the port that fd, a listener's TCP socket (bound, not listening),
 * is bound to in a kernel TIME_WAIT. fd is the caller's to close after,
 * as is *made: the fresh socket used instead of fd (fresh_bound), or -1.
 * 0 or -errno (the port is then free once both are closed). */
static int time_wait_on(int fd, int *made)
{
    struct sockaddr_storage bound, at;
    socklen_t bl = sizeof bound, al = 0;
    if (real_getsockname(fd, (struct sockaddr *)&bound, &bl) < 0)
        return -errno;
    int l = -EADDRNOTAVAIL, a = -1, err, v6only = 0;
    socklen_t vl = sizeof v6only;
    if (bound.ss_family == AF_INET6 &&
        real_getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &vl) < 0)
        v6only = 0;
    for (int try = 0; try < 2 && l < 0; try++)
        l = meeting_listener(&bound, v6only, try, &at, &al);
    if (l < 0)
        return l;
    shim_tcp_unlisten(fd); /* in case it still listens: a connect needs it closed */
    int fl = real_fcntl(fd, F_GETFL);
    if (fl < 0 || real_fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        goto fail_errno;
    int r = real_connect(fd, (struct sockaddr *)&at, al);
    if (r < 0 && errno == EINVAL) {
        if ((*made = fresh_bound(fd, &bound, bl)) < 0) {
            err = *made;
            *made = -1;
            goto fail;
        }
        fd = *made;
        r = real_connect(fd, (struct sockaddr *)&at, al);
    }
    if (r < 0 && errno != EINPROGRESS)
        goto fail_errno;
    if ((err = wait_for(fd, POLLOUT)) < 0)
        goto fail;
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (real_getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        goto fail_errno;
    if (soerr) {
        err = -soerr;
        goto fail;
    }
    /* Ours, not whatever came first: for a listener on a specific address
     * the meeting listener is on that real address, where anyone who can
     * reach it may connect to its port meanwhile. Others are closed. */
    struct sockaddr_storage me;
    socklen_t ml = sizeof me;
    if (real_getsockname(fd, (struct sockaddr *)&me, &ml) < 0)
        goto fail_errno;
    for (int n = 0; a < 0; n++) {
        if (n == 16) {
            err = -ETIMEDOUT;
            goto fail;
        }
        if ((err = wait_for(l, POLLIN)) < 0)
            goto fail;
        struct sockaddr_storage from;
        socklen_t fl2 = sizeof from;
        int x = real_accept4(l, (struct sockaddr *)&from, &fl2, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (x < 0) {
            if (errno == EAGAIN || errno == ECONNABORTED || errno == EINTR)
                continue;
            goto fail_errno;
        }
        if (same_end(&from, &me))
            a = x;
        else
            real_close(x);
    }
    /* Our FIN first: shutdown(), not close(), which sends nothing while
     * the process that handed over still holds the file. Then theirs,
     * once ours arrived (else both would close at once, and the TIME_WAIT
     * would be on both sides). */
    if (real_shutdown(fd, SHUT_WR) < 0)
        goto fail_errno;
    if ((err = wait_for(a, POLLIN)) < 0)
        goto fail;
    real_close(a);
    a = -1;
    err = wait_for(fd, POLLIN); /* their FIN: TIME_WAIT */
    real_close(l);
    return err;
fail_errno:
    err = -errno;
fail:
    if (a >= 0)
        real_close(a);
    real_close(l);
    return err;
}

static int kernel_time_wait(int fd)
{
    int n = -1;
    int err = time_wait_on(fd, &n);
    if (n >= 0)
        real_close(n); /* in TIME_WAIT now, or given up */
    return err;
}

void shim_tw_leave(struct engine *e)
{
    /* A closed listener whose socket its last connections still use (in
     * rudp's own TIME_WAIT, say) has not reached shim_tw_hold yet. */
    for (uint32_t i = 0; i < shim_engine_nsocks(e); i++) {
        esock *s = shim_engine_sock(e, i);
        if (s && !shim_esock_listening(s) && shim_esock_reserve_fd(s) >= 0 && shim_tw_hold(s))
            shim_esock_reserve_taken(s); /* the hold has it now */
    }
    port_engine *pe = port_of_engine(e);
    for (int i = 0; i < pe->ntw; i++) {
        int err = kernel_time_wait(pe->tw_fd[i]);
        if (err < 0)
            SHIM_LOG(RUDP_LOG_WARN, "a listener's port left without its TIME_WAIT: %s",
                     shim_strerror(-err));
        shim_close_owned(pe->tw_fd[i]);
    }
    pe->ntw = 0;
}
