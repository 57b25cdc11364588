/*
 * prog_reconnect: connecting again on the same socket, connect(AF_UNSPEC)
 * and SO_SNDTIMEO on a blocking connect, as Linux TCP gives them (checked
 * over kernel TCP on Linux 6.x; the code is net/ipv4/af_inet.c,
 * __inet_stream_connect, and tcp_disconnect in net/ipv4/tcp.c).
 *
 *   prog_reconnect [CHECK...] run every check below (or those named);
 *                             exit 0 iff all hold. prog_reconnect_static is
 *                             the same linked statically, for rudp-supervise
 *                             (integration/tests/reach/t_supervise_reconnect.sh)
 *
 *   refused   (IPv4 and IPv6, blocking) connect() to a port nobody listens
 *             on: ECONNREFUSED, getpeername() ENOTCONN, SO_ERROR 0; again
 *             ECONNREFUSED (a new attempt); the program then listens on the
 *             port, and connect() on the same socket succeeds: bytes both
 *             ways, then EISCONN.
 *   bound     the same with a socket bound to a port first: the refusal
 *             frees the port (another socket may bind it), and the socket
 *             connects again.
 *   nonblock  EINPROGRESS; POLLOUT; SO_ERROR ECONNREFUSED, then 0; connect()
 *             then says ECONNABORTED (the error was read) and leaves the
 *             socket unconnected; the next EINPROGRESS, failing unread:
 *             connect() says ECONNREFUSED; with the listener up, EINPROGRESS,
 *             POLLOUT, SO_ERROR 0, connect() 0 once (Linux), then EISCONN.
 *   unspec    connect(AF_UNSPEC) on a connected socket: 0; getpeername()
 *             ENOTCONN; SO_ERROR ECONNRESET; the peer is reset (ECONNRESET,
 *             or EOF with SO_ERROR ECONNRESET under the shim: docs/limits.md);
 *             the socket connects again, and EPOLLIN registered while it
 *             was connected reports the new connection's bytes (the same
 *             file). On a fresh socket: 0; with a
 *             length of 1: EINVAL.
 *   connecting connect(AF_UNSPEC) while the handshake is pending (a listener
 *             whose accept queue is full and a handshake held behind it): 0;
 *             SO_ERROR ECONNRESET; the socket then connects elsewhere.
 *   sndtimeo  a blocking connect() with SO_SNDTIMEO to that full listener:
 *             EINPROGRESS when the time is up (the handshake goes on); a
 *             second blocking connect() waits again and says EALREADY; as the
 *             program accepts what queues, the socket becomes writable,
 *             connect() says 0, then EISCONN.
 *
 * The listener that "appears" is started by this program between the
 * attempts; every wait is a poll() for the event with a bound. Prints one
 * "ok:" line per check and "transport: KIND" for the connected fds (tcp =
 * a kernel TCP socket). Exit 0 iff every check held; 1 with a "FAIL:" line
 * otherwise; 3 if the watchdog (60 s) fired.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 60
#define EVENT_MS 5000
/* Kernel TCP resends a dropped SYN after 1, 3, 7 s: with room made in the
 * queue, the held handshakes get in at their next resends. */
#define SYN_RETRY_MS 20000
#define SNDTIMEO_MS 200

const char *prog_name = "prog_reconnect";

/* connect() and its errno (0 when it succeeded). */
static int try_connect(int fd, const struct sockaddr_storage *to, socklen_t len)
{
    errno = 0;
    return connect(fd, (const struct sockaddr *)to, len) == 0 ? 0 : errno;
}

static int unspec(int fd, socklen_t len)
{
    struct sockaddr_storage un;
    memset(&un, 0, sizeof un);
    un.ss_family = AF_UNSPEC;
    errno = 0;
    return connect(fd, (struct sockaddr *)&un, len) == 0 ? 0 : errno;
}

static const char *err_name(int e)
{
    return e ? strerror(e) : "0";
}

#define EXPECT(got_, want, what) \
    do { int got = (got_); \
    CHECK(got == (want), "%s: %s, want %s", what, err_name(got), err_name(want)); \
    } while (0)

/* A port of family that nothing listens on (under the shim: neither its TCP
 * nor its UDP port), found by binding port 0; *held keeps it bound (no
 * SO_REUSEADDR, not listening: connects to it are refused, and no other
 * process binds it) until the caller closes it, just before it listens
 * there itself. Closed at once, another test's server running beside this
 * one (make test) once took the port and answered a connect meant to be
 * refused. */
static socklen_t free_port_held(int family, struct sockaddr_storage *to, int *held)
{
    int s = socket(family, SOCK_STREAM, 0);
    SYS(s);
    socklen_t len = loopback(family, 0, to);
    SYS(bind(s, (struct sockaddr *)to, len));
    SYS(getsockname(s, (struct sockaddr *)to, &len));
    *held = s;
    return len;
}

static socklen_t free_port(int family, struct sockaddr_storage *to)
{
    int s;
    socklen_t len = free_port_held(family, to, &s);
    close(s);
    return len;
}

static int listen_on(const struct sockaddr_storage *at, socklen_t len, int backlog)
{
    int l = socket(at->ss_family, SOCK_STREAM, 0);
    SYS(l);
    int one = 1;
    SYS(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
    SYS(bind(l, (const struct sockaddr *)at, len));
    SYS(listen(l, backlog));
    return l;
}

static short wait_for(int fd, short events, int ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    int n = poll(&p, 1, ms);
    SYS(n);
    CHECK(n == 1, "no event 0x%x on fd %d within %d ms", (unsigned)events, fd, ms);
    return p.revents;
}

static int accept_within(int l, int ms)
{
    wait_for(l, POLLIN, ms);
    int a = accept(l, NULL, NULL);
    SYS(a);
    return a;
}

static int peer_err(int fd)
{
    struct sockaddr_storage ss;
    socklen_t l = sizeof ss;
    return getpeername(fd, (struct sockaddr *)&ss, &l) == 0 ? 0 : errno;
}

/* The connection c (ours) and a (accepted) carry bytes both ways. */
static void both_ways(const char *what, int c, int a)
{
    char buf[4];
    printf("transport: %s (%s client), %s (accepted)\n", fd_transport(c), what, fd_transport(a));
    CHECK(write(c, "ping", 4) == 4, "%s: write: %s", what, strerror(errno));
    read_exact(a, buf, 4, EVENT_MS);
    CHECK(memcmp(buf, "ping", 4) == 0, "%s: server read %.4s", what, buf);
    CHECK(write(a, "pong", 4) == 4, "%s: write back: %s", what, strerror(errno));
    read_exact(c, buf, 4, EVENT_MS);
    CHECK(memcmp(buf, "pong", 4) == 0, "%s: client read %.4s", what, buf);
}

static void check_refused_then_listening(int family)
{
    const char *f = fam_name(family);
    struct sockaddr_storage to;
    int held;
    socklen_t len = free_port_held(family, &to, &held);
    int c = socket(family, SOCK_STREAM, 0);
    SYS(c);
    EXPECT(try_connect(c, &to, len), ECONNREFUSED, "refused: first connect");
    EXPECT(peer_err(c), ENOTCONN, "refused: getpeername");
    EXPECT(so_error(c), 0, "refused: SO_ERROR after a blocking connect reported it");
    EXPECT(try_connect(c, &to, len), ECONNREFUSED, "refused: second connect");
    printf("ok: %s refused: ECONNREFUSED twice on one socket, getpeername ENOTCONN, SO_ERROR 0\n",
           f);
    close(held);
    int l = listen_on(&to, len, 4);
    EXPECT(try_connect(c, &to, len), 0, "refused: connect once the listener is up");
    EXPECT(peer_err(c), 0, "refused: getpeername after connecting");
    int a = accept_within(l, EVENT_MS);
    both_ways("refused", c, a);
    EXPECT(try_connect(c, &to, len), EISCONN, "refused: connect on the connected socket");
    printf("ok: %s refused: the same socket connects once the listener is up, then EISCONN\n", f);
    close(a);
    close(c);
    close(l);
}

static void check_bound(void)
{
    struct sockaddr_storage to, me;
    int held;
    socklen_t len = free_port_held(AF_INET, &to, &held);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    SYS(c);
    socklen_t ml = loopback(AF_INET, 0, &me);
    SYS(bind(c, (struct sockaddr *)&me, ml));
    SYS(getsockname(c, (struct sockaddr *)&me, &ml));
    EXPECT(try_connect(c, &to, len), ECONNREFUSED, "bound: first connect");
    /* Linux lets the port go with the failed attempt (tcp_set_state(CLOSE)
     * after the refusal puts the bind bucket): another socket may take it. */
    int o = socket(AF_INET, SOCK_STREAM, 0);
    SYS(o);
    CHECK(bind(o, (struct sockaddr *)&me, ml) == 0, "bound: port %u still taken after the "
          "refusal: %s", port_of(&me), strerror(errno));
    close(o);
    close(held);
    int l = listen_on(&to, len, 4);
    EXPECT(try_connect(c, &to, len), 0, "bound: connect once the listener is up");
    int a = accept_within(l, EVENT_MS);
    both_ways("bound", c, a);
    printf("ok: bound: a refusal frees the socket's port %u, and the socket connects again\n",
           port_of(&me));
    close(a);
    close(c);
    close(l);
}

static void check_nonblocking(void)
{
    struct sockaddr_storage to;
    int held;
    socklen_t len = free_port_held(AF_INET, &to, &held);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    SYS(c);
    EXPECT(try_connect(c, &to, len), EINPROGRESS, "nonblock: first connect");
    wait_for(c, POLLOUT, EVENT_MS);
    EXPECT(so_error(c), ECONNREFUSED, "nonblock: SO_ERROR after the refusal");
    EXPECT(so_error(c), 0, "nonblock: SO_ERROR read a second time");
    EXPECT(peer_err(c), ENOTCONN, "nonblock: getpeername after the refusal");
    EXPECT(try_connect(c, &to, len), ECONNABORTED, "nonblock: connect after SO_ERROR was read");
    printf("ok: nonblock: EINPROGRESS, POLLOUT, SO_ERROR ECONNREFUSED then 0, connect() "
           "ECONNABORTED\n");
    EXPECT(try_connect(c, &to, len), EINPROGRESS, "nonblock: a new attempt");
    wait_for(c, POLLOUT, EVENT_MS);
    EXPECT(try_connect(c, &to, len), ECONNREFUSED, "nonblock: connect with SO_ERROR unread");
    printf("ok: nonblock: again EINPROGRESS, then connect() reports ECONNREFUSED itself\n");
    close(held);
    int l = listen_on(&to, len, 4);
    EXPECT(try_connect(c, &to, len), EINPROGRESS, "nonblock: connect once the listener is up");
    short ev = wait_for(c, POLLOUT, EVENT_MS);
    CHECK(!(ev & (POLLERR | POLLHUP)), "nonblock: POLLOUT came with 0x%x", (unsigned)ev);
    EXPECT(so_error(c), 0, "nonblock: SO_ERROR once connected");
    EXPECT(try_connect(c, &to, len), 0, "nonblock: connect after the handshake (Linux: 0 once)");
    EXPECT(try_connect(c, &to, len), EISCONN, "nonblock: connect again");
    int a = accept_within(l, EVENT_MS);
    both_ways("nonblock", c, a);
    printf("ok: nonblock: the same socket connects once the listener is up: connect() 0 "
           "once, then EISCONN\n");
    close(a);
    close(c);
    close(l);
}

/* The accepted end of a connection its peer reset: ECONNRESET from read(),
 * or (under the shim, when it had nothing unread: docs/limits.md) EOF with
 * SO_ERROR ECONNRESET. */
static void check_was_reset(int a)
{
    char b;
    wait_for(a, POLLIN, EVENT_MS);
    ssize_t r = read(a, &b, 1);
    int e = r < 0 ? errno : 0;
    CHECK((r < 0 && e == ECONNRESET) || (r == 0 && so_error(a) == ECONNRESET),
          "unspec: the peer read %zd (%s), want ECONNRESET", r, err_name(e));
}

static void check_unspec(void)
{
    struct sockaddr_storage to;
    socklen_t len = free_port(AF_INET, &to);
    int l = listen_on(&to, len, 4);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    SYS(c);
    EXPECT(try_connect(c, &to, len), 0, "unspec: connect");
    int a = accept_within(l, EVENT_MS);
    both_ways("unspec", c, a);
    /* registered while connected: TCP's disconnect keeps the file, so the
     * registration reports the next connection's bytes */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    SYS(ep);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x5eed};
    SYS(epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev));
    EXPECT(unspec(c, sizeof(struct sockaddr)), 0, "unspec: connect(AF_UNSPEC) when connected");
    EXPECT(peer_err(c), ENOTCONN, "unspec: getpeername after it");
    EXPECT(so_error(c), ECONNRESET, "unspec: SO_ERROR after it");
    check_was_reset(a);
    close(a);
    printf("ok: unspec: connected: 0, getpeername ENOTCONN, SO_ERROR ECONNRESET, the peer reset\n");
    EXPECT(try_connect(c, &to, len), 0, "unspec: connect again");
    a = accept_within(l, EVENT_MS);
    SYS(write(a, "e", 1));
    int n = epoll_wait(ep, &ev, 1, EVENT_MS);
    CHECK(n == 1 && (ev.events & EPOLLIN) && ev.data.u64 == 0x5eed,
          "unspec: EPOLLIN registered while connected, after connect(AF_UNSPEC) and connect "
          "again: %d events (%#x, data %#llx), want EPOLLIN with its data", n,
          n == 1 ? ev.events : 0u, n == 1 ? (unsigned long long)ev.data.u64 : 0ull);
    char e;
    CHECK(read(c, &e, 1) == 1 && e == 'e', "unspec: the byte the registration reported");
    close(ep);
    both_ways("unspec again", c, a);
    EXPECT(try_connect(c, &to, len), EISCONN, "unspec: connect on the connected socket");
    printf("ok: unspec: the socket connects again after it; an epoll registration made while "
           "connected reports the new connection's bytes\n");
    close(a);
    close(c);
    close(l);

    c = socket(AF_INET, SOCK_STREAM, 0);
    SYS(c);
    EXPECT(unspec(c, sizeof(struct sockaddr)), 0, "unspec: on a fresh socket");
    EXPECT(unspec(c, 1), EINVAL, "unspec: with a length of 1");
    close(c);
    printf("ok: unspec: fresh socket: 0; length 1: EINVAL\n");
}

/* A listener whose accept queue is full, with a handshake held behind it:
 * backlog 0 holds one connection (q[0], not accepted) and the second
 * client's handshake (q[1]) stays pending (kernel TCP drops its SYN and
 * resends it; the shim may complete it, but then takes no new handshake
 * for that listener until there is room). A third client's handshake stays
 * pending either way. */
static int full_listener(struct sockaddr_storage *to, socklen_t *len, int q[2])
{
    *len = free_port(AF_INET, to);
    int l = listen_on(to, *len, 0);
    q[0] = socket(AF_INET, SOCK_STREAM, 0);
    SYS(q[0]);
    EXPECT(try_connect(q[0], to, *len), 0, "full listener: first client");
    wait_for(l, POLLIN, EVENT_MS);
    q[1] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    SYS(q[1]);
    int e = try_connect(q[1], to, *len);
    CHECK(e == 0 || e == EINPROGRESS, "full listener: second client: %s", err_name(e));
    return l;
}

/* Accepts from the full listener l whatever comes, until c's handshake
 * completes and its connection is accepted; returns that one (the others
 * go to *others, closed by the caller). */
static int drain_until(int l, int c, int *others, int *nothers, int ms)
{
    struct sockaddr_storage mine;
    socklen_t ml = sizeof mine;
    int writable = 0;
    double end = now_s() + ms / 1e3;
    for (;;) {
        int left = (int)((end - now_s()) * 1e3);
        CHECK(left > 0, "sndtimeo: the connection was not accepted within %d ms", ms);
        struct pollfd p[2] = {{.fd = l, .events = POLLIN}, {.fd = c, .events = POLLOUT}};
        int n = poll(p, writable ? 1 : 2, left);
        SYS(n);
        if (!writable && (p[1].revents & POLLOUT)) {
            CHECK(!(p[1].revents & (POLLERR | POLLHUP)), "sndtimeo: POLLOUT came with 0x%x",
                  (unsigned)p[1].revents);
            writable = 1;
            SYS(getsockname(c, (struct sockaddr *)&mine, &ml));
        }
        if (!(p[0].revents & POLLIN))
            continue;
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        int a = accept(l, (struct sockaddr *)&from, &fl);
        SYS(a);
        if (writable && port_of(&from) == port_of(&mine))
            return a;
        if (!writable) {
            /* c may have been accepted before it saw its own POLLOUT */
            SYS(getsockname(c, (struct sockaddr *)&mine, &ml));
            if (port_of(&mine) == port_of(&from)) {
                wait_for(c, POLLOUT, ms);
                writable = 1;
                return a;
            }
        }
        CHECK(*nothers < 4, "sndtimeo: more connections than clients");
        others[(*nothers)++] = a;
    }
}

static void check_unspec_connecting(void)
{
    struct sockaddr_storage full, to;
    socklen_t flen, len = free_port(AF_INET, &to);
    int q[2], fl = full_listener(&full, &flen, q);
    int l = listen_on(&to, len, 4);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    SYS(c);
    EXPECT(try_connect(c, &full, flen), EINPROGRESS, "connecting: connect to the full listener");
    EXPECT(try_connect(c, &full, flen), EALREADY, "connecting: connect again while pending");
    EXPECT(unspec(c, sizeof(struct sockaddr)), 0, "connecting: connect(AF_UNSPEC)");
    EXPECT(peer_err(c), ENOTCONN, "connecting: getpeername after it");
    EXPECT(so_error(c), ECONNRESET, "connecting: SO_ERROR after it");
    printf("ok: connecting: EALREADY while pending; connect(AF_UNSPEC) 0, SO_ERROR ECONNRESET\n");
    EXPECT(try_connect(c, &to, len), EINPROGRESS, "connecting: connect elsewhere after it");
    wait_for(c, POLLOUT, EVENT_MS);
    EXPECT(so_error(c), 0, "connecting: SO_ERROR once connected elsewhere");
    EXPECT(try_connect(c, &to, len), 0, "connecting: connect after the handshake");
    int a = accept_within(l, EVENT_MS);
    both_ways("after AF_UNSPEC while connecting", c, a);
    printf("ok: connecting: the socket connects elsewhere after it\n");
    close(a);
    close(c);
    close(l);
    close(q[0]);
    close(q[1]);
    close(fl);
}

static void check_sndtimeo(void)
{
    struct sockaddr_storage full;
    socklen_t flen;
    int q[2], fl = full_listener(&full, &flen, q);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    SYS(c);
    struct timeval tv = {.tv_sec = 0, .tv_usec = SNDTIMEO_MS * 1000};
    SYS(setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv));
    double t0 = now_s();
    EXPECT(try_connect(c, &full, flen), EINPROGRESS, "sndtimeo: blocking connect");
    double took = now_s() - t0;
    EXPECT(peer_err(c), ENOTCONN, "sndtimeo: getpeername while pending");
    EXPECT(try_connect(c, &full, flen), EALREADY, "sndtimeo: blocking connect again");
    printf("ok: sndtimeo: a blocking connect() gives up after SO_SNDTIMEO (%d ms) with "
           "EINPROGRESS (took %.0f ms); again: EALREADY\n", SNDTIMEO_MS, took * 1e3);
    int others[4], nothers = 0;
    int a = drain_until(fl, c, others, &nothers, SYN_RETRY_MS);
    EXPECT(so_error(c), 0, "sndtimeo: SO_ERROR once connected");
    EXPECT(try_connect(c, &full, flen), 0, "sndtimeo: connect after the handshake");
    EXPECT(try_connect(c, &full, flen), EISCONN, "sndtimeo: connect again");
    both_ways("sndtimeo", c, a);
    printf("ok: sndtimeo: the handshake went on: writable, connect() 0, then EISCONN\n");
    close(a);
    for (int i = 0; i < nothers; i++)
        close(others[i]);
    close(c);
    close(q[0]);
    close(q[1]);
    close(fl);
}

/* Whether check name runs: every one without names on the command line. */
static int wanted(int argc, char **argv, const char *name)
{
    if (argc == 1)
        return 1;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    static const char *const names[] = {"refused", "bound",      "nonblock",
                                        "unspec",  "connecting", "sndtimeo"};
    for (int i = 1; i < argc; i++) {
        size_t k = 0;
        while (k < sizeof names / sizeof names[0] && strcmp(argv[i], names[k]) != 0)
            k++;
        if (k == sizeof names / sizeof names[0]) {
            fprintf(stderr, "usage: prog_reconnect [refused|bound|nonblock|unspec|connecting|"
                            "sndtimeo]...\n");
            return 2;
        }
    }
    prog_begin(1, WATCHDOG_S);
    if (wanted(argc, argv, "refused")) {
        check_refused_then_listening(AF_INET);
        if (family_usable(AF_INET6, "the IPv6 case"))
            check_refused_then_listening(AF_INET6);
    }
    if (wanted(argc, argv, "bound"))
        check_bound();
    if (wanted(argc, argv, "nonblock"))
        check_nonblocking();
    if (wanted(argc, argv, "unspec"))
        check_unspec();
    if (wanted(argc, argv, "connecting"))
        check_unspec_connecting();
    if (wanted(argc, argv, "sndtimeo"))
        check_sndtimeo();
    printf("all checks passed\n");
    return 0;
}
