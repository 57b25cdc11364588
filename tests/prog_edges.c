/*
 * prog_edges: four edges of the socket calls, as Linux TCP gives them
 * (checked over kernel TCP on Linux 6.x).
 *
 *   prog_edges                run every check below; exit 0 iff all hold
 *
 *   accept    a blocking accept() waits until there is a connection to
 *             return (inet_csk_accept -> inet_csk_wait_for_connect). Under
 *             the shim the listener is an AF_UNIX socket whose name anyone
 *             may connect to; such a foreign connection is refused (closed
 *             unseen), and accept() must go on waiting, not fail with
 *             ECONNABORTED: the program connects to the listener's real
 *             name (syscall(SYS_getsockname), past the shim) while a thread
 *             waits in accept(), sees that connection closed, then connects
 *             a real client, which the waiting accept() must return. Over
 *             kernel TCP there is no such name and the step is skipped;
 *             the rest is the same. A non-blocking accept() after a
 *             foreign connection says EAGAIN.
 *   name      getsockname() after a failed connect, IPv4 and IPv6: Linux
 *             keeps the attempt's port (inet_sport) and resets the address
 *             to the wildcard (tcp_disconnect, inet_reset_saddr) unless the
 *             socket was bound to one: after a blocking refusal 0.0.0.0:P
 *             (P not 0); a non-blocking one shows ADDR:P while pending and
 *             after SO_ERROR, and 0.0.0.0:P (same P) once connect() reported
 *             the failure; connect(AF_UNSPEC) on a connected socket leaves
 *             0.0.0.0:P (its port); a socket bound to the loopback address
 *             keeps ADDR:P after a refusal. A fresh socket says port 0.
 *   mmsg      sendmmsg() with an address on each message of a connected
 *             socket: the addresses are ignored (tcp_sendmsg reads no
 *             msg_name), every message is sent; recvmmsg() asking for
 *             addresses reports length 0 for each (TCP fills none); one
 *             urgent byte by sendmmsg(MSG_OOB) with an address, read by
 *             recvmmsg(MSG_OOB) after POLLPRI, the byte before it inline.
 *   epollhigh an epoll registration made before a non-blocking connect()
 *             on a socket whose number is above 2^20 (fs.nr_open raised:
 *             t_prog_edges.sh raises it, as root; the program raises its
 *             RLIMIT_NOFILE and fills the lower numbers with copies of one
 *             fd) reports EPOLLOUT with its data when the connect ends, and
 *             EPOLL_CTL_MOD then finds it. Without CAP_SYS_RESOURCE the
 *             limit cannot be raised: a "skip:" line says so.
 *
 * Every wait is a poll() for the event with a bound. Prints one "ok:" line
 * per check and "transport: KIND" for the connected fds (tcp = a kernel TCP
 * socket). Exit 0 iff every check held; 1 with a "FAIL:" line otherwise; 3
 * if the watchdog (60 s) fired.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 60
#define EVENT_MS 5000

const char *prog_name = "prog_edges";

/* The address of ss (no port) as text. */
static const char *host_of(const struct sockaddr_storage *ss, char *buf, size_t n)
{
    const void *a = ss->ss_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (!inet_ntop(ss->ss_family, a, buf, (socklen_t)n))
        snprintf(buf, n, "family-%d", ss->ss_family);
    return buf;
}

static const char *show(const struct sockaddr_storage *ss, char *buf, size_t n)
{
    char a[INET6_ADDRSTRLEN + 16];
    snprintf(buf, n, ss->ss_family == AF_INET ? "%s:%u" : "[%s]:%u", host_of(ss, a, sizeof a),
             port_of(ss));
    return buf;
}

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    char x[INET6_ADDRSTRLEN + 16], y[INET6_ADDRSTRLEN + 16];
    return a->ss_family == b->ss_family &&
           strcmp(host_of(a, x, sizeof x), host_of(b, y, sizeof y)) == 0;
}

static int is_wildcard(const struct sockaddr_storage *ss)
{
    struct sockaddr_storage any;
    memset(&any, 0, sizeof any);
    any.ss_family = ss->ss_family;
    return same_addr(ss, &any);
}

/* getsockname(), checked for the family's length. */
static void name_of(int fd, int family, struct sockaddr_storage *ss)
{
    socklen_t l = sizeof *ss;
    memset(ss, 0, sizeof *ss);
    SYS(getsockname(fd, (struct sockaddr *)ss, &l));
    socklen_t want = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    CHECK(ss->ss_family == family && l == want, "getsockname: family %d length %u", ss->ss_family,
          (unsigned)l);
}

/* A port of family that nothing listens on: one the kernel chose for a
 * bound socket, closed again. */
static socklen_t free_port(int family, struct sockaddr_storage *to)
{
    socklen_t len;
    close(bound_loopback(family, to, &len));
    return len;
}

static int listener(int family, struct sockaddr_storage *at, socklen_t *len)
{
    int l = bound_loopback(family, at, len);
    SYS(listen(l, 8));
    return l;
}

static void wait_for(int fd, short events, const char *what)
{
    struct pollfd p = {.fd = fd, .events = events};
    int n = poll(&p, 1, EVENT_MS);
    SYS(n);
    CHECK(n == 1 && (p.revents & (events | POLLHUP | POLLERR)), "%s: nothing within %d ms", what,
          EVENT_MS);
}

/* ---- accept ---- */

struct acceptor {
    int l, fd, err;
    struct sockaddr_storage peer;
    socklen_t plen;
};

static void *accept_thread(void *arg)
{
    struct acceptor *a = arg;
    a->plen = sizeof a->peer;
    a->fd = accept(a->l, (struct sockaddr *)&a->peer, &a->plen);
    a->err = a->fd < 0 ? errno : 0;
    return NULL;
}

/* Connects an AF_UNIX socket to the listener's real name (past any
 * interposer): a connection from nobody the shim knows. Returns that
 * socket, or -1 when l is not an AF_UNIX socket (kernel TCP). */
static int foreign_connect(int l)
{
    struct sockaddr_un un;
    socklen_t ul = sizeof un;
    memset(&un, 0, sizeof un);
    SYS(syscall(SYS_getsockname, l, (struct sockaddr *)&un, &ul));
    if (un.sun_family != AF_UNIX)
        return -1;
    int f = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    SYS(f);
    SYS(connect(f, (struct sockaddr *)&un, ul));
    return f;
}

/* The foreign connection f is refused: the listener's side closes it. */
static void wait_refused(int f)
{
    wait_for(f, POLLIN | POLLRDHUP, "the foreign connection's close");
    char b;
    ssize_t r = recv(f, &b, 1, MSG_DONTWAIT);
    CHECK(r == 0 || (r < 0 && errno == ECONNRESET), "foreign connection: read %zd (%s), "
          "not EOF", r, r < 0 ? strerror(errno) : "");
    close(f);
}

static void check_accept(void)
{
    struct sockaddr_storage at;
    socklen_t alen;
    int l = listener(AF_INET, &at, &alen);
    struct acceptor a = {.l = l, .fd = -1};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, accept_thread, &a) == 0, "pthread_create");
    int f = foreign_connect(l);
    if (f >= 0) {
        wait_refused(f);
        printf("ok: accept: a foreign connection to the listener's unix name is refused\n");
    } else {
        printf("ok: accept: kernel TCP, no unix name to connect to (step skipped)\n");
    }
    /* The accept() of the thread must still be waiting: the client it
     * returns is made only now. */
    int c = socket(AF_INET, SOCK_STREAM, 0);
    SYS(c);
    SYS(connect(c, (struct sockaddr *)&at, alen));
    CHECK(pthread_join(t, NULL) == 0, "pthread_join");
    CHECK(a.fd >= 0, "blocking accept: %s, where Linux waits for a connection", strerror(a.err));
    struct sockaddr_storage me;
    name_of(c, AF_INET, &me);
    CHECK(port_of(&a.peer) == port_of(&me), "blocking accept returned peer port %u, not the "
          "client's %u", port_of(&a.peer), port_of(&me));
    printf("transport: %s (client), %s (accepted)\n", fd_transport(c), fd_transport(a.fd));
    printf("ok: accept: a blocking accept() waits on and returns the next real client\n");
    close(a.fd);
    close(c);

    SYS(fcntl(l, F_SETFL, fcntl(l, F_GETFL) | O_NONBLOCK));
    f = foreign_connect(l);
    int r = accept(l, NULL, NULL);
    CHECK(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK), "non-blocking accept: %d (%s), "
          "not EAGAIN", r, r < 0 ? strerror(errno) : "an fd");
    if (f >= 0)
        wait_refused(f);
    printf("ok: accept: a non-blocking accept() with nothing else queued says EAGAIN%s\n",
           f >= 0 ? " (after refusing a foreign connection)" : "");
    close(l);
}

/* ---- name ---- */

static int try_connect(int fd, const struct sockaddr_storage *to, socklen_t len)
{
    return connect(fd, (const struct sockaddr *)to, len) == 0 ? 0 : errno;
}

static void check_name(int family)
{
    const char *f = fam_name(family);
    char b1[80], b2[80];
    struct sockaddr_storage to, me, before;
    socklen_t len = free_port(family, &to);

    int c = socket(family, SOCK_STREAM, 0);
    SYS(c);
    name_of(c, family, &me);
    CHECK(is_wildcard(&me) && port_of(&me) == 0, "%s fresh socket: %s", f,
          show(&me, b1, sizeof b1));
    int e = try_connect(c, &to, len);
    CHECK(e == ECONNREFUSED, "%s blocking connect: %s, not ECONNREFUSED", f, strerror(e));
    name_of(c, family, &me);
    CHECK(is_wildcard(&me) && port_of(&me) != 0, "%s after a blocking refusal: %s, not the "
          "wildcard with the attempt's port", f, show(&me, b1, sizeof b1));
    printf("ok: name: %s after a blocking refusal getsockname() says %s\n", f,
           show(&me, b1, sizeof b1));
    close(c);

    c = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    SYS(c);
    e = try_connect(c, &to, len);
    CHECK(e == EINPROGRESS, "%s non-blocking connect: %s, not EINPROGRESS", f, strerror(e));
    name_of(c, family, &before);
    CHECK(!is_wildcard(&before) && port_of(&before) != 0, "%s pending: %s", f,
          show(&before, b1, sizeof b1));
    wait_for(c, POLLOUT, "the refusal");
    CHECK(so_error(c) == ECONNREFUSED, "%s SO_ERROR not ECONNREFUSED", f);
    name_of(c, family, &me);
    CHECK(same_addr(&me, &before) && port_of(&me) == port_of(&before), "%s after SO_ERROR: %s, "
          "was %s", f, show(&me, b1, sizeof b1), show(&before, b2, sizeof b2));
    e = try_connect(c, &to, len);
    CHECK(e == ECONNABORTED, "%s connect after SO_ERROR: %s, not ECONNABORTED", f, strerror(e));
    name_of(c, family, &me);
    CHECK(is_wildcard(&me) && port_of(&me) == port_of(&before), "%s after the failure was "
          "reported: %s, not the wildcard with port %u", f, show(&me, b1, sizeof b1),
          port_of(&before));
    printf("ok: name: %s non-blocking: %s while it failed, %s once connect() reported it\n", f,
           show(&before, b2, sizeof b2), show(&me, b1, sizeof b1));
    close(c);

    struct sockaddr_storage at;
    socklen_t alen;
    int l = listener(family, &at, &alen);
    c = socket(family, SOCK_STREAM, 0);
    SYS(c);
    SYS(connect(c, (struct sockaddr *)&at, alen));
    int a = accept_ready(l, EVENT_MS);
    printf("transport: %s (%s client), %s (accepted)\n", fd_transport(c), f, fd_transport(a));
    name_of(c, family, &before);
    struct sockaddr unspec = {.sa_family = AF_UNSPEC};
    SYS(connect(c, &unspec, sizeof unspec));
    name_of(c, family, &me);
    CHECK(is_wildcard(&me) && port_of(&me) == port_of(&before), "%s after connect(AF_UNSPEC): "
          "%s, not the wildcard with port %u", f, show(&me, b1, sizeof b1), port_of(&before));
    printf("ok: name: %s connect(AF_UNSPEC) on a connected socket (%s): %s\n", f,
           show(&before, b2, sizeof b2), show(&me, b1, sizeof b1));
    close(c);
    close(a);
    close(l);

    c = bound_loopback(family, &before, &alen);
    e = try_connect(c, &to, len);
    CHECK(e == ECONNREFUSED, "%s bound: connect: %s, not ECONNREFUSED", f, strerror(e));
    name_of(c, family, &me);
    CHECK(same_addr(&me, &before) && port_of(&me) == port_of(&before), "%s bound: after the "
          "refusal %s, was %s", f, show(&me, b1, sizeof b1), show(&before, b2, sizeof b2));
    printf("ok: name: %s bound to %s: the same after a refusal\n", f, show(&me, b1, sizeof b1));
    close(c);
}

/* ---- mmsg ---- */

static void check_mmsg(int family)
{
    const char *f = fam_name(family);
    int c, a;
    loopback_pair(family, &c, &a);
    printf("transport: %s (%s client), %s (accepted)\n", fd_transport(c), f, fd_transport(a));

    /* An address on each message: another port of the peer's host. */
    struct sockaddr_storage other;
    socklen_t olen = loopback(family, 9, &other);
    char m1[] = "abc", m2[] = "defg";
    struct iovec v[2] = {{m1, 3}, {m2, 4}};
    struct mmsghdr out[2];
    memset(out, 0, sizeof out);
    for (int i = 0; i < 2; i++) {
        out[i].msg_hdr.msg_iov = &v[i];
        out[i].msg_hdr.msg_iovlen = 1;
        out[i].msg_hdr.msg_name = &other;
        out[i].msg_hdr.msg_namelen = olen;
    }
    int r = sendmmsg(c, out, 2, 0);
    CHECK(r == 2, "%s sendmmsg with addresses: %d (%s), not 2", f, r,
          r < 0 ? strerror(errno) : "");
    CHECK(out[0].msg_len == 3 && out[1].msg_len == 4, "%s sendmmsg: msg_len %u, %u", f,
          out[0].msg_len, out[1].msg_len);
    printf("ok: mmsg: %s sendmmsg() with an address on each message sends both (3, 4 bytes)\n",
           f);

    char in[2][8];
    struct iovec iv[2] = {{in[0], 3}, {in[1], 4}};
    struct sockaddr_storage from[2];
    struct mmsghdr inm[2];
    char got[8];
    size_t have = 0;
    while (have < 7) {
        wait_for(a, POLLIN, "the sendmmsg bytes");
        memset(inm, 0, sizeof inm);
        for (int i = 0; i < 2; i++) {
            iv[i].iov_len = i == 0 ? 3 : 4;
            inm[i].msg_hdr.msg_iov = &iv[i];
            inm[i].msg_hdr.msg_iovlen = 1;
            inm[i].msg_hdr.msg_name = &from[i];
            inm[i].msg_hdr.msg_namelen = sizeof from[i];
        }
        r = recvmmsg(a, inm, 2, MSG_DONTWAIT, NULL);
        CHECK(r >= 1, "%s recvmmsg: %d (%s)", f, r, r < 0 ? strerror(errno) : "");
        for (int i = 0; i < r; i++) {
            CHECK(inm[i].msg_hdr.msg_namelen == 0, "%s recvmmsg message %d: address length %u, "
                  "not 0", f, i, (unsigned)inm[i].msg_hdr.msg_namelen);
            CHECK(have + inm[i].msg_len <= 7, "%s recvmmsg: too many bytes", f);
            memcpy(got + have, in[i], inm[i].msg_len);
            have += inm[i].msg_len;
        }
    }
    CHECK(memcmp(got, "abcdefg", 7) == 0, "%s recvmmsg: bytes %.7s", f, got);
    printf("ok: mmsg: %s recvmmsg() gets the bytes in order, address length 0 for each\n", f);

    /* One urgent byte: "uv" with MSG_OOB makes 'v' urgent (man 7 tcp). */
    char m3[] = "uv";
    struct iovec v3 = {m3, 2};
    memset(out, 0, sizeof out);
    out[0].msg_hdr.msg_iov = &v3;
    out[0].msg_hdr.msg_iovlen = 1;
    out[0].msg_hdr.msg_name = &other;
    out[0].msg_hdr.msg_namelen = olen;
    r = sendmmsg(c, out, 1, MSG_OOB);
    CHECK(r == 1 && out[0].msg_len == 2, "%s sendmmsg(MSG_OOB) with an address: %d (%s)", f, r,
          r < 0 ? strerror(errno) : "");
    wait_for(a, POLLPRI, "POLLPRI");
    char ob = 0;
    struct iovec ov = {&ob, 1};
    memset(inm, 0, sizeof inm);
    inm[0].msg_hdr.msg_iov = &ov;
    inm[0].msg_hdr.msg_iovlen = 1;
    inm[0].msg_hdr.msg_name = &from[0];
    inm[0].msg_hdr.msg_namelen = sizeof from[0];
    r = recvmmsg(a, inm, 1, MSG_OOB, NULL);
    CHECK(r == 1 && inm[0].msg_len == 1 && ob == 'v', "%s recvmmsg(MSG_OOB): %d (%s) '%c'", f, r,
          r < 0 ? strerror(errno) : "", ob);
    CHECK(inm[0].msg_hdr.msg_namelen == 0, "%s recvmmsg(MSG_OOB): address length %u", f,
          (unsigned)inm[0].msg_hdr.msg_namelen);
    char ib = 0;
    read_exact(a, &ib, 1, EVENT_MS);
    CHECK(ib == 'u', "%s the byte before the urgent one: '%c', not 'u'", f, ib);
    printf("ok: mmsg: %s sendmmsg(MSG_OOB) with an address: 'u' inline, 'v' by "
           "recvmmsg(MSG_OOB) after POLLPRI, address length 0\n", f);
    close(c);
    close(a);
}

/* ---- epollhigh ---- */

#define HIGH_FD ((1 << 20) + 8)

static void check_epoll_high(void)
{
    struct rlimit rl = {.rlim_cur = HIGH_FD + 64, .rlim_max = HIGH_FD + 64};
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0 && errno == EPERM) {
        /* Raising the hard limit needs CAP_SYS_RESOURCE, and past
         * fs.nr_open nobody may (kernel/sys.c do_prlimit). */
        printf("skip: epollhigh: RLIMIT_NOFILE cannot reach %d here (%s: no CAP_SYS_RESOURCE, "
               "or fs.nr_open below it)\n", HIGH_FD + 64, strerror(errno));
        return;
    }
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur >= HIGH_FD + 64,
          "setrlimit(RLIMIT_NOFILE, %d): %s", HIGH_FD + 64, strerror(errno));
    struct sockaddr_storage at;
    socklen_t alen;
    int l = listener(AF_INET, &at, &alen);
    /* Copies of l take every free number below HIGH_FD (never one in use:
     * F_DUPFD takes the lowest free one), so the next socket is above. */
    int first = -1, d;
    while ((d = fcntl(l, F_DUPFD_CLOEXEC, 0)) >= 0 && d < HIGH_FD)
        if (first < 0)
            first = d;
    SYS(d);
    close(d);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    SYS(c);
    CHECK(c >= 1 << 20, "the socket got fd %d, not one above 2^20", c);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    SYS(ep);
    struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = 0xedcafe};
    SYS(epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev));
    int e = try_connect(c, &at, alen);
    CHECK(e == 0 || e == EINPROGRESS, "connect: %s", strerror(e));
    struct epoll_event got;
    int n = epoll_wait(ep, &got, 1, EVENT_MS);
    SYS(n);
    CHECK(n == 1 && (got.events & EPOLLOUT) && got.data.u64 == 0xedcafe, "fd %d: no EPOLLOUT "
          "with its data within %d ms of connect(): the registration was lost", c, EVENT_MS);
    CHECK(so_error(c) == 0, "SO_ERROR after the connect");
    ev.events = EPOLLIN;
    SYS(epoll_ctl(ep, EPOLL_CTL_MOD, c, &ev));
    int a = accept_ready(l, EVENT_MS);
    printf("transport: %s (client fd %d), %s (accepted)\n", fd_transport(c), c,
           fd_transport(a));
    printf("ok: epollhigh: fd %d registered before connect(): EPOLLOUT with its data, then "
           "EPOLL_CTL_MOD finds it\n", c);
    close(a);
    close(ep);
    close(c);
    SYS(close_range((unsigned)first, HIGH_FD, 0));
    close(l);
}

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, WATCHDOG_S);
    check_accept();
    check_name(AF_INET);
    check_mmsg(AF_INET);
    if (family_usable(AF_INET6, "the IPv6 cases")) {
        check_name(AF_INET6);
        check_mmsg(AF_INET6);
    }
    check_epoll_high();
    printf("ok: all edges checks passed\n");
    return 0;
}
