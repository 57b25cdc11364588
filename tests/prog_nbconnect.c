/*
 * prog_nbconnect: non-blocking connect() as event loops (curl, libuv,
 * asyncio, nginx) use it.
 *
 *   prog_nbconnect            run every check below; exit 0 iff all hold
 *
 * For IPv4 and IPv6 on loopback:
 *   live     a non-blocking connect() to a listener returns 0 or EINPROGRESS
 *            at once; a second connect() says EALREADY while the handshake
 *            is pending (Linux answers 0 once when it has completed, then
 *            EISCONN, and so may we); epoll reports EPOLLOUT (no EPOLLERR)
 *            within 5 s; SO_ERROR is 0; connect() afterwards says EISCONN;
 *            bytes go both ways.
 *   dead     to a port nothing is bound to: EINPROGRESS (or ECONNREFUSED at
 *            once), then EPOLLOUT/EPOLLERR within 5 s and SO_ERROR
 *            ECONNREFUSED, read once (a second SO_ERROR is 0); a blocking
 *            connect() there fails with ECONNREFUSED within 2 s (or, given
 *            that very port as its own, connects to itself, as Linux
 *            allows: tried again on another port, 3 times at most).
 *   bound    to a port a socket is bound to but not listening on: refused
 *            the same way (nothing may sit on the SYN until a timeout).
 *   spin     a refused connect() watched by poll() with no timeout, in a
 *            loop (20 rounds, IPv4): the first events it reports have
 *            POLLOUT (TCP's come as POLLOUT|POLLERR|POLLHUP at once), then
 *            all three, and SO_ERROR ECONNREFUSED. A unix stream socket
 *            of the program's own, full, its peer shut down: POLLHUP
 *            without POLLOUT, as the kernel says (the shim adds POLLOUT to
 *            its bridges' POLLHUP alone).
 *   first    the first send() of 8 KiB once a non-blocking connect() turned
 *            writable (poll POLLOUT) takes all 8 KiB, as a fresh TCP
 *            socket's send buffer does; 50 connections.
 * IPv4 only:
 *   slow     a listener whose accept queue is full (listen backlog 0, one
 *            connection not yet accepted): the handshake of a second client
 *            stays pending on kernel TCP (the SYN is dropped and retried
 *            after 1 s); while it is pending connect() says EALREADY and
 *            write() says EAGAIN; once the first connection is accepted the
 *            client becomes writable (EPOLLET) within 5 s.  A transport that
 *            completes the handshake early passes too: every answer is
 *            checked against the state the socket reports at that moment.
 *
 * Prints one "ok:" line per check and "transport: KIND" for the connected
 * fds (tcp = a kernel TCP socket; the integration scripts require something
 * else under the shim).  Exit 0 iff every check held; 1 with a "FAIL:" line
 * otherwise; 3 if the watchdog (60 s) fired.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 60
#define EVENT_MS 5000 /* bound on every readiness wait */

const char *prog_name = "prog_nbconnect";

/* A socket bound to loopback port 0 (listening if backlog >= 0); *addr gets
 * the address it was given. */
static int bound_socket(int family, int backlog, struct sockaddr_storage *addr, socklen_t *len)
{
    int fd = socket(family, SOCK_STREAM, 0);
    SYS(fd);
    *len = loopback(family, 0, addr);
    SYS(bind(fd, (struct sockaddr *)addr, *len));
    if (backlog >= 0)
        SYS(listen(fd, backlog));
    socklen_t got = sizeof *addr;
    SYS(getsockname(fd, (struct sockaddr *)addr, &got));
    CHECK(got == *len && port_of(addr) != 0, "getsockname after bind: len %u port %u",
          (unsigned)got, port_of(addr));
    return fd;
}

static void write_all(int fd, const void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, (const char *)buf + done, len - done);
        if (w < 0 && errno == EAGAIN) {
            struct pollfd p = { .fd = fd, .events = POLLOUT };
            int n = poll(&p, 1, EVENT_MS);
            SYS(n);
            CHECK(n == 1, "socket not writable within %d ms", EVENT_MS);
            continue;
        }
        CHECK(w > 0, "write: %s", strerror(errno));
        done += (size_t)w;
    }
}

/* --- the checks ---------------------------------------------------------- */

static bool writable_now(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    int n = poll(&p, 1, 0);
    SYS(n);
    return n == 1 && (p.revents & POLLOUT);
}

/* Waits (bounded) for the events of one fd through epoll; returns them. */
static uint32_t epoll_once(int fd, uint32_t events, int ms, double *took)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    SYS(ep);
    struct epoll_event ev = { .events = events, .data.fd = fd }, out;
    SYS(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
    double t0 = now_s();
    int n = epoll_wait(ep, &out, 1, ms);
    SYS(n);
    *took = now_s() - t0;
    close(ep);
    return n == 1 ? out.events : 0;
}

/* After success, connect() says EISCONN (Linux first answers 0 once). */
static void check_isconn(int fd, const struct sockaddr_storage *to, socklen_t len)
{
    int r = connect(fd, (const struct sockaddr *)to, len);
    if (r == 0)
        r = connect(fd, (const struct sockaddr *)to, len);
    CHECK(r == -1 && errno == EISCONN, "connect() on a connected socket: %s, want EISCONN",
          r == 0 ? "0" : strerror(errno));
}

static void ping_pong(int c, int a)
{
    char buf[16];
    write_all(c, "ping", 4);
    read_exact(a, buf, 4, EVENT_MS);
    CHECK(memcmp(buf, "ping", 4) == 0, "server got %.4s, want ping", buf);
    write_all(a, "pong", 4);
    read_exact(c, buf, 4, EVENT_MS);
    CHECK(memcmp(buf, "pong", 4) == 0, "client got %.4s, want pong", buf);
}

/* The first send() once a non-blocking connect() turned writable takes a
 * small request whole, as a fresh TCP socket's send buffer does (16 KiB
 * at least, tcp_wmem[1]): programs send a request once and wait for the
 * answer (CPython's test_asyncio test_start_server_1). Each round is a new
 * connection whose send comes the moment poll() says POLLOUT. */
#define FIRST_LEN 8192
#define FIRST_ROUNDS 50
static void check_first_send(int family)
{
    struct sockaddr_storage addr;
    socklen_t len;
    int l = bound_socket(family, 64, &addr, &len);
    static char req[FIRST_LEN];
    memset(req, 'r', sizeof req);
    for (int i = 0; i < FIRST_ROUNDS; i++) {
        int c = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
        SYS(c);
        int r = connect(c, (struct sockaddr *)&addr, len);
        CHECK(r == 0 || errno == EINPROGRESS, "connect: %s", strerror(errno));
        struct pollfd p = { .fd = c, .events = POLLOUT };
        int n = poll(&p, 1, EVENT_MS);
        SYS(n);
        CHECK(n == 1 && so_error(c) == 0, "round %d: not connected within %d ms", i, EVENT_MS);
        ssize_t w = send(c, req, sizeof req, MSG_NOSIGNAL);
        CHECK(w == FIRST_LEN, "%s round %d: the first send() of %d bytes after connect: %s",
              fam_name(family), i, FIRST_LEN, w < 0 ? strerror(errno) : "short");
        int a = accept_ready(l, EVENT_MS);
        static char got[FIRST_LEN];
        read_exact(a, got, sizeof got, EVENT_MS);
        close(a);
        close(c);
    }
    close(l);
    printf("ok: %s: the first send() of %d bytes right after a non-blocking connect() was "
           "whole, %d times\n", fam_name(family), FIRST_LEN, FIRST_ROUNDS);
}

static void check_live(int family)
{
    struct sockaddr_storage la;
    socklen_t llen;
    int l = bound_socket(family, 16, &la, &llen);
    int c = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    SYS(c);

    double t0 = now_s();
    int r = connect(c, (struct sockaddr *)&la, llen);
    int e = errno;
    double took = now_s() - t0;
    CHECK(r == 0 || e == EINPROGRESS, "%s live: non-blocking connect: %s, want 0 or EINPROGRESS",
          fam_name(family), strerror(e));
    CHECK(took < 0.5, "%s live: non-blocking connect() blocked for %.3f s", fam_name(family), took);
    printf("ok: %s live: non-blocking connect() -> %s in %.1f ms\n", fam_name(family),
           r == 0 ? "0" : "EINPROGRESS", took * 1e3);

    if (r != 0) {
        int r2 = connect(c, (struct sockaddr *)&la, llen);
        int e2 = errno;
        if (r2 == -1 && e2 == EALREADY) {
            printf("ok: %s live: second connect() while pending -> EALREADY\n", fam_name(family));
        } else {
            CHECK(r2 == 0 || e2 == EISCONN,
                  "%s live: second connect(): %s, want EALREADY (pending) or 0/EISCONN (done)",
                  fam_name(family), r2 == 0 ? "0" : strerror(e2));
            CHECK(writable_now(c), "%s live: second connect() says connected (%s) but the "
                  "socket is not writable", fam_name(family), r2 == 0 ? "0" : "EISCONN");
            printf("ok: %s live: second connect() -> %s: handshake already complete, socket "
                   "writable\n", fam_name(family), r2 == 0 ? "0" : "EISCONN");
        }
    }

    uint32_t ev = epoll_once(c, EPOLLOUT, EVENT_MS, &took);
    CHECK(ev & EPOLLOUT, "%s live: no EPOLLOUT within %d ms (events 0x%x)", fam_name(family),
          EVENT_MS, ev);
    CHECK(!(ev & (EPOLLERR | EPOLLHUP)), "%s live: EPOLLOUT came with EPOLLERR/EPOLLHUP (0x%x)",
          fam_name(family), ev);
    int err = so_error(c);
    CHECK(err == 0, "%s live: SO_ERROR %s after EPOLLOUT, want 0", fam_name(family),
          strerror(err));
    printf("ok: %s live: EPOLLOUT after %.1f ms, SO_ERROR 0\n", fam_name(family), took * 1e3);
    check_isconn(c, &la, llen);
    printf("ok: %s live: connect() on the connected socket -> EISCONN\n", fam_name(family));

    int a = accept_ready(l, EVENT_MS);
    printf("transport: %s (client), %s (accepted)\n", fd_transport(c), fd_transport(a));
    ping_pong(c, a);
    printf("ok: %s live: ping/pong both ways\n", fam_name(family));
    /* The kernel's own view of the fd's send buffer (a raw syscall, past any
     * interposer): a normal size once connected. Under the shim the bridge
     * end is filled behind the smallest buffer while connecting (~4.6 KB)
     * and gets its buffer back as the engine completes the handshake, just
     * after the fd turns writable (so read after a round trip, not at
     * EPOLLOUT); TCP starts at tcp_wmem's 16 KB. */
    int sndbuf = 0;
    socklen_t sblen = sizeof sndbuf;
    CHECK(syscall(SYS_getsockopt, c, SOL_SOCKET, SO_SNDBUF, &sndbuf, &sblen) == 0,
          "getsockopt(SO_SNDBUF): %s", strerror(errno));
    CHECK(sndbuf >= 16384, "%s live: send buffer %d bytes once connected, want >= 16384",
          fam_name(family), sndbuf);
    printf("ok: %s live: send buffer %d bytes once connected\n", fam_name(family), sndbuf);
    close(a);
    close(c);
    close(l);
}

/* Non-blocking then blocking connect() to addr must be refused. */
/* Whether connected socket c is connected to itself: TCP's simultaneous
 * open, when the kernel gave a connect() to a port nothing holds that very
 * port as its own (Linux allows it; kernel TCP and the shim's fallback to
 * it alike). */
static bool self_connected(int c)
{
    struct sockaddr_storage me, peer;
    socklen_t ml = sizeof me, pl = sizeof peer;
    return getsockname(c, (struct sockaddr *)&me, &ml) == 0 &&
           getpeername(c, (struct sockaddr *)&peer, &pl) == 0 && ml == pl &&
           memcmp(&me, &peer, ml) == 0;
}

/* 1 if the blocking connect found the socket connected to itself (the
 * caller tries another port), else 0 with every check held. */
static int check_refused(int family, const char *what, const struct sockaddr_storage *to,
                         socklen_t len, bool use_poll)
{
    int c = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    SYS(c);
    int r = connect(c, (const struct sockaddr *)to, len);
    int e = errno;
    CHECK(r == -1 && (e == EINPROGRESS || e == ECONNREFUSED),
          "%s %s: non-blocking connect: %s, want EINPROGRESS or ECONNREFUSED", fam_name(family),
          what, r == 0 ? "0" : strerror(e));
    if (e == EINPROGRESS) {
        double took;
        unsigned ev;
        if (use_poll) {
            struct pollfd p = { .fd = c, .events = POLLOUT };
            double t0 = now_s();
            int n = poll(&p, 1, EVENT_MS);
            SYS(n);
            took = now_s() - t0;
            ev = n ? (unsigned)p.revents : 0;
            CHECK(ev & (POLLOUT | POLLERR | POLLHUP),
                  "%s %s: no POLLOUT/POLLERR within %d ms", fam_name(family), what, EVENT_MS);
        } else {
            ev = epoll_once(c, EPOLLOUT, EVENT_MS, &took);
            CHECK(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP),
                  "%s %s: no EPOLLOUT/EPOLLERR within %d ms", fam_name(family), what, EVENT_MS);
        }
        int err = so_error(c);
        CHECK(err == ECONNREFUSED, "%s %s: SO_ERROR %s (%d), want ECONNREFUSED",
              fam_name(family), what, err ? strerror(err) : "0", err);
        printf("ok: %s %s: EINPROGRESS, then %s 0x%x after %.1f ms, SO_ERROR ECONNREFUSED\n",
               fam_name(family), what, use_poll ? "poll" : "epoll", ev, took * 1e3);
        err = so_error(c);
        CHECK(err == 0, "%s %s: a second SO_ERROR gives %s, want 0 (read clears it)",
              fam_name(family), what, strerror(err));
        printf("ok: %s %s: a second SO_ERROR gives 0\n", fam_name(family), what);
    } else {
        printf("ok: %s %s: non-blocking connect() -> ECONNREFUSED at once\n", fam_name(family),
               what);
    }
    close(c);

    c = socket(family, SOCK_STREAM, 0);
    SYS(c);
    double t0 = now_s();
    r = connect(c, (const struct sockaddr *)to, len);
    e = errno;
    double took = now_s() - t0;
    if (r == 0 && self_connected(c)) {
        printf("ok: %s %s: the blocking connect() was given the port itself and connected to "
               "itself (TCP's simultaneous open, as the kernel allows): another port\n",
               fam_name(family), what);
        close(c);
        return 1;
    }
    CHECK(r == -1 && e == ECONNREFUSED, "%s %s: blocking connect: %s, want ECONNREFUSED (%s)",
          fam_name(family), what, r == 0 ? "0" : strerror(e),
          r == 0 ? fd_transport(c) : "-");
    CHECK(took < 2.0, "%s %s: blocking connect took %.3f s to be refused", fam_name(family), what,
          took);
    printf("ok: %s %s: blocking connect() -> ECONNREFUSED in %.1f ms\n", fam_name(family), what,
           took * 1e3);
    close(c);
    return 0;
}

static void check_dead(int family)
{
    struct sockaddr_storage a;
    socklen_t len;
    /* A port the kernel handed out and nothing holds any more (a few
     * times at most: a connect() may be given that port as its own). */
    int fd, tries = 0;
    do {
        fd = bound_socket(family, -1, &a, &len);
        close(fd);
    } while (check_refused(family, "dead port", &a, len, family == AF_INET6) && ++tries < 3);
    CHECK(tries < 3, "%s dead port: connected to itself 3 times", fam_name(family));

    /* Bound, never listening: also refused (the port held, so never the
     * connect's own). */
    fd = bound_socket(family, -1, &a, &len);
    CHECK(check_refused(family, "bound, not listening", &a, len, family == AF_INET) == 0,
          "%s bound, not listening: connected to itself on a port held", fam_name(family));
    close(fd);
}

/* A refused non-blocking connect() watched by a poll() that never sleeps:
 * TCP's reports POLLOUT with POLLERR and POLLHUP at once (tcp_done()), so
 * the first poll() that reports anything reports POLLOUT; POLLERR and
 * POLLHUP follow (at once over TCP), and SO_ERROR says ECONNREFUSED.
 * Repeated: what it catches (an end that hangs up before it turns
 * writable) is a moment a sleeping poll() seldom lands in. */
#define SPIN_ROUNDS 20
static void check_refused_spin(void)
{
    struct sockaddr_storage a;
    socklen_t len;
    int fd = bound_socket(AF_INET, -1, &a, &len);
    close(fd);
    unsigned last = 0;
    for (int i = 0; i < SPIN_ROUNDS; i++) {
        int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        SYS(c);
        int r = connect(c, (const struct sockaddr *)&a, len);
        int e = errno;
        CHECK(r == -1 && (e == EINPROGRESS || e == ECONNREFUSED),
              "spin round %d: non-blocking connect: %s, want EINPROGRESS or ECONNREFUSED", i,
              r == 0 ? "0" : strerror(e));
        if (e == ECONNREFUSED) {
            close(c);
            continue;
        }
        struct pollfd p = {.fd = c, .events = POLLOUT};
        double until = now_s() + EVENT_MS / 1e3;
        unsigned first = 0;
        do {
            p.revents = 0;
            SYS(poll(&p, 1, 0));
            first = (unsigned)p.revents;
        } while (!first && now_s() < until);
        CHECK(first & POLLOUT,
              "spin round %d: the first events of a refused connect are 0x%x, without POLLOUT "
              "(TCP reports POLLOUT|POLLERR|POLLHUP at once)", i, first);
        unsigned all = POLLOUT | POLLERR | POLLHUP;
        unsigned ev = first;
        while ((ev & all) != all && now_s() < until) {
            p.revents = 0;
            SYS(poll(&p, 1, 10));
            ev = (unsigned)p.revents;
        }
        CHECK((ev & all) == all, "spin round %d: events 0x%x within %d ms, want "
              "POLLOUT|POLLERR|POLLHUP", i, ev, EVENT_MS);
        int err = so_error(c);
        CHECK(err == ECONNREFUSED, "spin round %d: SO_ERROR %s (%d), want ECONNREFUSED", i,
              err ? strerror(err) : "0", err);
        last = ev;
        close(c);
    }
    printf("ok: refused, watched by a poll() that never sleeps (%d rounds): POLLOUT in the first "
           "events every time, then POLLOUT|POLLERR|POLLHUP (0x%x), SO_ERROR ECONNREFUSED\n",
           SPIN_ROUNDS, last & (POLLOUT | POLLERR | POLLHUP));
}

/* The other side of spin: a socket that is not a TCP connection keeps
 * the kernel's answer. A unix stream socket of the program's own, full,
 * its peer shut down both ways (not closed: what it holds is not freed):
 * POLLHUP without POLLOUT, with the shim as without (its POLLHUP ->
 * POLLOUT is for the bridges it made). */
static void check_unix_hup(void)
{
    int sv[2];
    SYS(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv));
    char buf[4096] = {0};
    while (write(sv[0], buf, sizeof buf) > 0)
        ;
    SYS(shutdown(sv[1], SHUT_RDWR));
    struct pollfd p = {.fd = sv[0], .events = POLLOUT};
    SYS(poll(&p, 1, EVENT_MS));
    CHECK((p.revents & POLLHUP) && !(p.revents & POLLOUT),
          "a full unix socket whose peer shut down: events 0x%x, want POLLHUP without POLLOUT "
          "(the kernel's)", (unsigned)p.revents);
    printf("ok: a program's own full unix socket, its peer shut down: POLLHUP without POLLOUT, "
           "as the kernel says\n");
    close(sv[0]);
    close(sv[1]);
}

static void check_slow(void)
{
    struct sockaddr_storage la;
    socklen_t llen;
    int l = bound_socket(AF_INET, 0, &la, &llen);
    int c1 = socket(AF_INET, SOCK_STREAM, 0);
    SYS(c1);
    SYS(connect(c1, (struct sockaddr *)&la, llen));

    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    SYS(c);
    int r = connect(c, (struct sockaddr *)&la, llen);
    int e = errno;
    CHECK(r == 0 || e == EINPROGRESS, "slow: non-blocking connect: %s", strerror(e));
    bool early_x = false; /* a byte written while we thought it pending */
    if (r != 0) {
        int r2 = connect(c, (struct sockaddr *)&la, llen);
        int e2 = errno;
        if (r2 == -1 && e2 == EALREADY) {
            printf("ok: slow: handshake pending, second connect() -> EALREADY\n");
            if (!writable_now(c)) {
                ssize_t w = write(c, "x", 1);
                int ew = errno;
                if (w == 1) {
                    /* Completed between poll and write: fine, and then it
                     * must say so. */
                    CHECK(writable_now(c), "slow: write() succeeded on an unwritable socket");
                    early_x = true;
                    printf("ok: slow: handshake completed meanwhile (write accepted)\n");
                } else {
                    CHECK(w == -1 && ew == EAGAIN,
                          "slow: write() during the handshake: %s, want EAGAIN", strerror(ew));
                    printf("ok: slow: write() during the handshake -> EAGAIN\n");
                }
            }
        } else {
            CHECK(r2 == 0 || e2 == EISCONN, "slow: second connect(): %s, want EALREADY, 0 "
                  "or EISCONN", strerror(e2));
            CHECK(writable_now(c), "slow: second connect() says done but not writable");
            printf("note: slow: this transport completed the handshake despite the full "
                   "accept queue\n");
        }
    }
    int a1 = accept_ready(l, EVENT_MS); /* frees the queue */
    double took;
    uint32_t ev = epoll_once(c, EPOLLOUT | EPOLLET, EVENT_MS, &took);
    CHECK((ev & EPOLLOUT) && !(ev & (EPOLLERR | EPOLLHUP)),
          "slow: no clean EPOLLOUT (edge) within %d ms after the queue freed (0x%x)", EVENT_MS,
          ev);
    int err = so_error(c);
    CHECK(err == 0, "slow: SO_ERROR %s, want 0", strerror(err));
    printf("ok: slow: EPOLLOUT (edge-triggered) %.1f ms after the queue freed, SO_ERROR 0\n",
           took * 1e3);
    check_isconn(c, &la, llen);
    int a = accept_ready(l, EVENT_MS);
    if (early_x) {
        char x;
        read_exact(a, &x, 1, EVENT_MS);
        CHECK(x == 'x', "slow: early byte %c, want x", x);
    }
    ping_pong(c, a);
    ping_pong(c1, a1);
    printf("ok: slow: both connections carry data\n");
    close(a);
    close(a1);
    close(c);
    close(c1);
    close(l);
}

int main(int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: %s\n", prog_name);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    watchdog(WATCHDOG_S);
    int v6 = family_usable(AF_INET6, "the IPv6 cases");
    check_live(AF_INET);
    if (v6)
        check_live(AF_INET6);
    check_first_send(AF_INET);
    if (v6)
        check_first_send(AF_INET6);
    check_dead(AF_INET);
    if (v6)
        check_dead(AF_INET6);
    check_refused_spin();
    check_unix_hup();
    check_slow();
    printf("PASS: %s\n", prog_name);
    return 0;
}
