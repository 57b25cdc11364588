/*
 * prog_reuseport: listeners sharing a port, bind/listen conflicts, and the
 * program's own UDP on its TCP port, as Linux TCP gives them.
 *
 *   prog_reuseport            run every check below; exit 0 iff all hold
 *   PROG_REUSEPORT_ONLY=survive prog_reuseport
 *                             only the last one (connections accepted before
 *                             the UDP bind)
 *
 *   - SO_REUSEPORT group: two listeners in this process and one in a forked
 *     child, all bound to one port with SO_REUSEPORT, all listen; 30
 *     connections are spread over them (each takes at least one) and each
 *     is answered by the listener that took it; getsockopt(SO_REUSEPORT)
 *     says 1 after listen();
 *   - two sockets bound to one port with SO_REUSEPORT, neither listening,
 *     both listen;
 *   - 20 connections made to one listener all carry data after a second
 *     listener (same process) joined its group;
 *   - without the option: a bind to the group's port, with or without
 *     SO_REUSEADDR, and a SO_REUSEPORT bind to a listener that lacks it,
 *     fail with EADDRINUSE;
 *   - SO_REUSEADDR: a port bound (not listening) without it refuses a
 *     second bind with or without it (EADDRINUSE); two sockets bound with
 *     it may both bind, the first listen() wins and the second says
 *     EADDRINUSE, as does a bind to the listening port;
 *   - TIME_WAIT: 1 s after a server closed its connection first and then
 *     its listener, a bind to the port without SO_REUSEADDR on both the
 *     old listener and the new socket says EADDRINUSE; with it on both,
 *     bind and listen succeed;
 *   - the program's own UDP on its TCP listener's port, UDP bound first and
 *     TCP first, with and without SO_REUSEADDR on both: every one of 20
 *     UDP queries is answered by the program's UDP socket, and the TCP
 *     listener still answers a connection;
 *   - a connection accepted before the program binds its own UDP socket on
 *     the listener's port (with and without SO_REUSEADDR) carries data both
 *     ways afterwards (64 KiB each way, then 20 round trips), and that UDP
 *     socket receives its 20 queries and nothing else (under the shim the
 *     connection moves to another UDP port: no rudp datagram may reach it);
 *   - another process's UDP socket bound first with SO_REUSEADDR, then
 *     this process's TCP listener on that port with SO_REUSEADDR: the other
 *     process's socket answers every one of 20 queries, and the listener
 *     answers a connection;
 *   - the same the other way round: this process's TCP listener first
 *     (SO_REUSEADDR), with a connection accepted, then another process's
 *     UDP socket on the port (SO_REUSEADDR): it answers every one of 20
 *     queries, the connection carries data both ways afterwards (64 KiB
 *     each way, then 20 round trips; under the shim it moves to another
 *     UDP port once the engine sees the other socket, within a second),
 *     and the listener answers a new connection;
 *   - with SO_REUSEPORT: another process's UDP socket (SO_REUSEPORT) bound
 *     first, then this process's TCP listener (SO_REUSEPORT): 20 queries,
 *     each from a new source port, all answered by the other process;
 *   - and bound after listen(), on one of two ports where this process and
 *     a child listen in one SO_REUSEPORT group: the other process ends up
 *     answering all of 20 queries sent at once from new source ports (a
 *     batch every 2 s, at most 15: under the shim every member of ours
 *     gives that port up once its engine sees the stranger), the group's TCP
 *     listeners there answer a connection, and on the other port the
 *     group still spreads 30 connections over both processes (under the
 *     shim the engines that saw the stranger took the other process's
 *     members for ours).
 *
 * Prints one "ok:" line per check and "transport: KIND" for connected fds
 * (tcp = a kernel TCP socket). The UDP checks print their TCP connection as
 * "note: ... carried by KIND": a listener that gives its port to the
 * program's UDP is served by kernel TCP under the shim (see README). Exit 0
 * iff every check held; 1 with a "FAIL:" line otherwise; 3 if the watchdog
 * (60 s) fired.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 60
#define EVENT_MS 5000
#define GROUP_CONNS 30
#define UDP_QUERIES 20
#define JOIN_CONNS 20

const char *prog_name = "prog_reuseport";

static pid_t child = -1, member = -1; /* member: a group's, beside child */

static void kill_child(void)
{
    if (child > 0)
        kill(child, SIGKILL);
    if (member > 0)
        kill(member, SIGKILL);
}

/* Forks `child` with two pipes: it says `ready` and waits for `stop`.
 * Returns 1 in the child (its ends: ready[1], stop[0]), 0 in the parent. */
static int fork_child(int ready[2], int stop[2])
{
    SYS(pipe(ready));
    SYS(pipe(stop));
    child = fork();
    SYS(child);
    if (child != 0)
        return 0;
    close(ready[0]);
    close(stop[1]);
    return 1;
}

static int get_int_opt(int fd, int level, int opt)
{
    int v = -1;
    socklen_t l = sizeof v;
    SYS(getsockopt(fd, level, opt, &v, &l));
    return v;
}

/* A TCP socket with SO_REUSEADDR / SO_REUSEPORT as asked. */
static int tcp_socket(int reuseaddr, int reuseport)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    SYS(s);
    if (reuseaddr)
        SYS(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &reuseaddr, sizeof reuseaddr));
    if (reuseport)
        SYS(setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &reuseport, sizeof reuseport));
    return s;
}

/* bind() to 127.0.0.1:port must fail with want. */
static void bind_fails(int s, unsigned port, int want, const char *what)
{
    struct sockaddr_storage ss;
    socklen_t sl = loopback(AF_INET, port, &ss);
    int r = bind(s, (struct sockaddr *)&ss, sl);
    CHECK(r < 0 && errno == want, "%s: bind gave %d (%s), want %s", what, r,
          r < 0 ? strerror(errno) : "success", strerror(want));
}

/* A socket bound (and listening if `listening`) with SO_REUSEADDR a_ra
 * and SO_REUSEPORT a_rp, then a second with b_ra, b_rp: its bind to the
 * same port must say EADDRINUSE. */
static void second_bind_refused(int a_ra, int a_rp, int listening, int b_ra, int b_rp,
                                const char *what)
{
    int a = tcp_socket(a_ra, a_rp);
    unsigned port = bind_lo(a, 0);
    if (listening)
        SYS(listen(a, 4));
    int b = tcp_socket(b_ra, b_rp);
    bind_fails(b, port, EADDRINUSE, what);
    close(b);
    close(a);
}

/* Accepts one connection on l, reads a byte and answers with tag. */
static void serve_one(int l, char tag, int print_transport)
{
    int a = accept(l, NULL, NULL);
    SYS(a);
    if (print_transport)
        printf("transport: %s (accepted)\n", fd_transport(a));
    char b;
    read_exact(a, &b, 1, EVENT_MS);
    CHECK(b == 'q', "listener %c read %d", tag, b);
    CHECK(write(a, &tag, 1) == 1, "listener %c: write: %s", tag, strerror(errno));
    close(a);
}

/* The forked member of a group: listens with SO_REUSEPORT on port, and on
 * port2 unless 0, says so on ready, then answers every connection with
 * 'c' until stop closes (printing the transport of the first on port if
 * print_transport). */
static void group_child(unsigned port, unsigned port2, int print_transport, int ready, int stop)
{
    int l[2] = {-1, -1}, n = port2 ? 2 : 1, first[2] = {1, 0};
    for (int i = 0; i < n; i++) {
        l[i] = tcp_socket(0, 1);
        bind_lo(l[i], i ? port2 : port);
        SYS(listen(l[i], 64));
        CHECK(get_int_opt(l[i], SOL_SOCKET, SO_REUSEPORT) == 1,
              "child: SO_REUSEPORT after listen");
    }
    CHECK(write(ready, "r", 1) == 1, "child: ready: %s", strerror(errno));
    for (;;) {
        struct pollfd p[3] = {{.fd = stop, .events = POLLIN},
                              {.fd = l[0], .events = POLLIN},
                              {.fd = l[1], .events = POLLIN}};
        SYS(poll(p, (nfds_t)(1 + n), -1));
        if (p[0].revents)
            break;
        for (int i = 0; i < n; i++)
            if (p[1 + i].revents & POLLIN) {
                serve_one(l[i], 'c', print_transport && first[i]);
                first[i] = 0;
            }
    }
    for (int i = 0; i < n; i++)
        close(l[i]);
    _exit(0);
}

static void check_group(void)
{
    int la = tcp_socket(0, 1), lb = tcp_socket(0, 1);
    unsigned port = bind_lo(la, 0);
    bind_lo(lb, port);
    SYS(listen(la, 64));
    SYS(listen(lb, 64));
    CHECK(get_int_opt(la, SOL_SOCKET, SO_REUSEPORT) == 1 &&
              get_int_opt(lb, SOL_SOCKET, SO_REUSEPORT) == 1,
          "SO_REUSEPORT after listen: %d, %d", get_int_opt(la, SOL_SOCKET, SO_REUSEPORT),
          get_int_opt(lb, SOL_SOCKET, SO_REUSEPORT));
    int ready[2], stop[2];
    if (fork_child(ready, stop)) {
        close(la);
        close(lb);
        group_child(port, 0, 0, ready[1], stop[0]);
    }
    close(ready[1]);
    close(stop[0]);
    char r;
    read_exact(ready[0], &r, 1, EVENT_MS);
    printf("ok: three listeners (two here, one in a child) on port %u with SO_REUSEPORT; "
           "SO_REUSEPORT says 1 after listen\n", port);

    int got[3] = {0, 0, 0};
    for (int i = 0; i < GROUP_CONNS; i++) {
        int c = connect_lo(port);
        if (i == 0)
            printf("transport: %s (client)\n", fd_transport(c));
        CHECK(write(c, "q", 1) == 1, "client write: %s", strerror(errno));
        for (;;) {
            struct pollfd p[3] = {{.fd = la, .events = POLLIN},
                                  {.fd = lb, .events = POLLIN},
                                  {.fd = c, .events = POLLIN}};
            int n = poll(p, 3, EVENT_MS);
            SYS(n);
            CHECK(n > 0, "connection %d: no listener answered within %d ms", i, EVENT_MS);
            if (p[0].revents & POLLIN)
                serve_one(la, 'a', got[0] == 0);
            if (p[1].revents & POLLIN)
                serve_one(lb, 'b', got[1] == 0);
            if (p[2].revents) {
                char t = 0;
                read_exact(c, &t, 1, EVENT_MS);
                CHECK(t >= 'a' && t <= 'c', "connection %d answered %d", i, t);
                got[t - 'a']++;
                break;
            }
        }
        close(c);
    }
    CHECK(got[0] > 0 && got[1] > 0 && got[2] > 0,
          "connections not spread over the group: %d, %d, %d", got[0], got[1], got[2]);
    printf("ok: %d connections spread over the group (%d, %d, %d)\n", GROUP_CONNS, got[0],
           got[1], got[2]);

    /* Without SO_REUSEPORT, no way into the group. */
    int d = tcp_socket(0, 0);
    bind_fails(d, port, EADDRINUSE, "no SO_REUSEPORT, group's port");
    close(d);
    d = tcp_socket(1, 0);
    bind_fails(d, port, EADDRINUSE, "SO_REUSEADDR only, group's port");
    close(d);
    printf("ok: without SO_REUSEPORT a bind to the group's port says EADDRINUSE\n");

    close(stop[1]);
    int st;
    SYS(waitpid(child, &st, 0));
    child = -1;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "group child status %#x", st);
    close(ready[0]);
    close(la);
    close(lb);

    /* A SO_REUSEPORT socket cannot join a listener that lacks it. */
    second_bind_refused(0, 0, 1, 0, 1, "SO_REUSEPORT to a listener without it");
    printf("ok: a SO_REUSEPORT bind to a listener without it says EADDRINUSE\n");

    /* Both bound before either listens: both listen. */
    la = tcp_socket(0, 1);
    lb = tcp_socket(0, 1);
    port = bind_lo(la, 0);
    bind_lo(lb, port);
    SYS(listen(lb, 4));
    SYS(listen(la, 4));
    close(la);
    close(lb);
    printf("ok: two SO_REUSEPORT sockets bound before listening both listen\n");
}

/* Connections made to one listener keep working when a second joins its
 * group: the kernel's hash now sends some of their datagrams to the new
 * member's socket. */
static void check_join(void)
{
    int la = tcp_socket(0, 1);
    unsigned port = bind_lo(la, 0);
    SYS(listen(la, 64));
    int c[JOIN_CONNS], a[JOIN_CONNS];
    for (int i = 0; i < JOIN_CONNS; i++) {
        c[i] = connect_lo(port);
        struct pollfd p = {.fd = la, .events = POLLIN};
        CHECK(poll(&p, 1, EVENT_MS) == 1, "connection %d not accepted", i);
        a[i] = accept(la, NULL, NULL);
        SYS(a[i]);
    }
    printf("transport: %s (client), %s (accepted)\n", fd_transport(c[0]), fd_transport(a[0]));
    int lb = tcp_socket(0, 1);
    bind_lo(lb, port);
    SYS(listen(lb, 64));
    for (int i = 0; i < JOIN_CONNS; i++) {
        char b;
        CHECK(write(c[i], "x", 1) == 1, "write %d: %s", i, strerror(errno));
        read_exact(a[i], &b, 1, EVENT_MS);
        CHECK(write(a[i], "y", 1) == 1, "answer %d: %s", i, strerror(errno));
        read_exact(c[i], &b, 1, EVENT_MS);
        close(c[i]);
        close(a[i]);
    }
    close(la);
    close(lb);
    printf("ok: %d connections to a listener all carry data after a second listener joined "
           "its SO_REUSEPORT group\n", JOIN_CONNS);
}

static void check_reuseaddr(void)
{
    second_bind_refused(0, 0, 0, 0, 0, "bound port, no SO_REUSEADDR");
    second_bind_refused(0, 0, 0, 1, 0, "bound without SO_REUSEADDR, bind with it");
    printf("ok: a port bound without SO_REUSEADDR refuses a second bind (EADDRINUSE)\n");

    int a = tcp_socket(1, 0);
    unsigned port = bind_lo(a, 0);
    int b = tcp_socket(1, 0);
    bind_lo(b, port);
    SYS(listen(a, 4));
    int r = listen(b, 4);
    CHECK(r < 0 && errno == EADDRINUSE, "second listen on a SO_REUSEADDR port: %d (%s)", r,
          r < 0 ? strerror(errno) : "success");
    int c = tcp_socket(1, 0);
    bind_fails(c, port, EADDRINUSE, "SO_REUSEADDR bind to a listening port");
    close(c);
    /* the first listener still works */
    c = connect_lo(port);
    printf("transport: %s (client of the first listener)\n", fd_transport(c));
    CHECK(write(c, "q", 1) == 1, "write: %s", strerror(errno));
    struct pollfd p = {.fd = a, .events = POLLIN};
    CHECK(poll(&p, 1, EVENT_MS) == 1, "first listener: no connection");
    serve_one(a, 'a', 1);
    char t;
    read_exact(c, &t, 1, EVENT_MS);
    close(c);
    close(a);
    close(b);
    printf("ok: two sockets bound with SO_REUSEADDR: the first listen() wins, the second "
           "and a new bind say EADDRINUSE\n");
}

/* TIME_WAIT: a server that closed its connection first leaves the port in
 * TIME_WAIT (60 s on Linux, TCP_TIMEWAIT_LEN): once its listener is closed
 * too, a bind to the port needs SO_REUSEADDR on the old listener and on
 * the new socket. Checked 1 s after the close, past rudp's own TIME_WAIT
 * (a few probe timeouts) and well inside Linux's. */
static void check_time_wait(void)
{
    unsigned port[4];
    for (int k = 0; k < 4; k++) {
        int l = tcp_socket(k >> 1, 0);
        port[k] = bind_lo(l, 0);
        SYS(listen(l, 4));
        int c = connect_lo(port[k]);
        struct pollfd p = {.fd = l, .events = POLLIN};
        CHECK(poll(&p, 1, EVENT_MS) == 1, "TIME_WAIT %d: no connection", k);
        int a = accept(l, NULL, NULL);
        SYS(a);
        if (k == 0)
            printf("transport: %s (client), %s (accepted)\n", fd_transport(c), fd_transport(a));
        close(a); /* the server closes first */
        p.fd = c;
        CHECK(poll(&p, 1, EVENT_MS) == 1, "TIME_WAIT %d: no EOF", k);
        char b;
        CHECK(read(c, &b, 1) == 0, "TIME_WAIT %d: read after the server's close", k);
        close(c);
        close(l);
    }
    sleep(1);
    for (int k = 0; k < 4; k++) {
        int old_ra = k >> 1, new_ra = k & 1;
        int n = tcp_socket(new_ra, 0);
        struct sockaddr_storage ss;
        socklen_t sl = loopback(AF_INET, port[k], &ss);
        int r = bind(n, (struct sockaddr *)&ss, sl);
        if (old_ra && new_ra) {
            CHECK(r == 0, "TIME_WAIT, SO_REUSEADDR on both: bind: %s", strerror(errno));
            SYS(listen(n, 4));
        } else {
            CHECK(r < 0 && errno == EADDRINUSE,
                  "TIME_WAIT, SO_REUSEADDR old %d new %d: bind gave %d (%s), want EADDRINUSE",
                  old_ra, new_ra, r, r < 0 ? strerror(errno) : "success");
        }
        close(n);
    }
    printf("ok: TIME_WAIT after the server closed first: a bind to the port 1 s later needs "
           "SO_REUSEADDR on the old listener and the new socket (EADDRINUSE otherwise)\n");
}

static int udp_socket(int reuseaddr)
{
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    SYS(u);
    if (reuseaddr)
        SYS(setsockopt(u, SOL_SOCKET, SO_REUSEADDR, &reuseaddr, sizeof reuseaddr));
    return u;
}

/* A UDP socket with SO_REUSEADDR (reuse 1) or SO_REUSEPORT (reuse 2). */
static int udp_reuse(int reuse)
{
    int u = udp_socket(reuse == 1), one = 1;
    if (reuse == 2)
        SYS(setsockopt(u, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one));
    return u;
}

/* The listener l on port (beside `what` on the UDP port) answers a
 * connection: a byte each way. */
static void tcp_answers(int l, unsigned port, const char *what)
{
    int c = connect_lo(port);
    CHECK(write(c, "q", 1) == 1, "write: %s", strerror(errno));
    struct pollfd p = {.fd = l, .events = POLLIN};
    CHECK(poll(&p, 1, EVENT_MS) == 1, "TCP listener beside %s: no connection", what);
    int a = accept(l, NULL, NULL);
    SYS(a);
    printf("note: TCP beside %s carried by %s (client), %s (accepted)\n", what, fd_transport(c),
           fd_transport(a));
    char b;
    read_exact(a, &b, 1, EVENT_MS);
    CHECK(write(a, "x", 1) == 1, "write: %s", strerror(errno));
    read_exact(c, &b, 1, EVENT_MS);
    close(a);
    close(c);
}

/* The program's own UDP server on its TCP listener's port: each query is
 * answered by u (the program), never lost to anything else on the port. */
static void check_own_udp(int udp_first, int reuseaddr)
{
    /* The first socket's port may be taken for the other protocol (other
     * programs' ephemeral ports): then both start again. */
    int u = -1, l = -1;
    unsigned port = 0;
    for (int tries = 0; tries < 50; tries++) {
        u = udp_socket(reuseaddr);
        l = tcp_socket(reuseaddr, 0);
        int first = udp_first ? u : l, second = udp_first ? l : u;
        port = bind_lo(first, 0);
        if (!udp_first)
            SYS(listen(l, 8));
        struct sockaddr_storage ss;
        socklen_t sl = loopback(AF_INET, port, &ss);
        if (bind(second, (struct sockaddr *)&ss, sl) == 0)
            break;
        CHECK(errno == EADDRINUSE, "bind beside the first: %s", strerror(errno));
        close(u);
        close(l);
        u = l = -1;
    }
    CHECK(u >= 0, "no port free for both UDP and TCP in 50 tries");
    if (udp_first)
        SYS(listen(l, 8));
    int q = udp_socket(0);
    struct sockaddr_storage to;
    socklen_t tl = loopback(AF_INET, port, &to);
    int answered = 0;
    for (int i = 0; i < UDP_QUERIES; i++) {
        char msg[32], got[64];
        int ml = snprintf(msg, sizeof msg, "query %d", i);
        CHECK(sendto(q, msg, (size_t)ml, 0, (struct sockaddr *)&to, tl) == ml, "sendto: %s",
              strerror(errno));
        struct pollfd p = {.fd = u, .events = POLLIN};
        int n = poll(&p, 1, EVENT_MS);
        SYS(n);
        CHECK(n == 1, "UDP query %d (%s, SO_REUSEADDR %d): the program's UDP socket got "
              "nothing within %d ms (%d answered before)", i, udp_first ? "UDP first" : "TCP first",
              reuseaddr, EVENT_MS, answered);
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        ssize_t r = recvfrom(u, got, sizeof got, 0, (struct sockaddr *)&from, &fl);
        CHECK(r == ml && memcmp(got, msg, (size_t)ml) == 0, "UDP query %d: got %zd bytes", i, r);
        CHECK(sendto(u, got, (size_t)r, 0, (struct sockaddr *)&from, fl) == r, "answer: %s",
              strerror(errno));
        p.fd = q;
        CHECK(poll(&p, 1, EVENT_MS) == 1, "UDP answer %d not back", i);
        CHECK(recv(q, got, sizeof got, 0) == ml, "UDP answer %d", i);
        answered++;
    }
    tcp_answers(l, port, "the program's UDP");
    close(q);
    close(l);
    close(u);
    printf("ok: own UDP on the TCP port (%s, SO_REUSEADDR %d): %d of %d UDP queries answered, "
           "TCP answers\n", udp_first ? "UDP bound first" : "TCP bound first", reuseaddr,
           answered, UDP_QUERIES);
}

static int outq(int fd)
{
    int n = 0;
    SYS(ioctl(fd, SIOCOUTQ, &n));
    return n;
}

/* Sends len bytes of pattern `seed` on w while reading them on r. */
static void pump(int w, int r, size_t len, unsigned seed)
{
    static char out[65536], in[65536];
    for (size_t i = 0; i < len; i++)
        out[i] = (char)(seed + i * 7);
    size_t sent = 0, got = 0;
    while (got < len) {
        struct pollfd p[2] = {{.fd = r, .events = POLLIN},
                              {.fd = w, .events = sent < len ? POLLOUT : 0}};
        int n = poll(p, 2, EVENT_MS);
        SYS(n);
        CHECK(n > 0, "stream after the UDP bind: %zu of %zu bytes arrived within %d ms", got, len,
              EVENT_MS);
        if (p[1].revents & POLLOUT) {
            ssize_t k = write(w, out + sent, len - sent);
            SYS(k);
            sent += (size_t)k;
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t k = read(r, in + got, len - got);
            SYS(k);
            CHECK(k > 0, "stream after the UDP bind: EOF after %zu of %zu bytes", got, len);
            got += (size_t)k;
        }
    }
    CHECK(memcmp(in, out, len) == 0, "stream after the UDP bind: bytes differ");
}

/* A listener (SO_REUSEADDR reuseaddr) on a port of the kernel's choice,
 * *port, with one connection: *c the client, *a the accepted end, each
 * printed as "transport: KIND (client|accepted before WHEN)". Returns the
 * listener. */
static int listener_with_conn(int reuseaddr, const char *when, unsigned *port, int *c, int *a)
{
    int l = tcp_socket(reuseaddr, 0);
    *port = bind_lo(l, 0);
    SYS(listen(l, 8));
    *c = connect_lo(*port);
    *a = accept(l, NULL, NULL);
    SYS(*a);
    printf("transport: %s (client before %s)\n", fd_transport(*c), when);
    printf("transport: %s (accepted before %s)\n", fd_transport(*a), when);
    return l;
}

/* 64 KiB each way on the connection c-a, then 20 round trips. */
static void stream_both_ways(int c, int a)
{
    pump(c, a, 65536, 3);
    pump(a, c, 65536, 4);
    for (int i = 0; i < 20; i++) {
        pump(c, a, 100, (unsigned)i);
        pump(a, c, 100, (unsigned)i + 1);
    }
}

/* A connection accepted before the program's UDP socket takes the
 * listener's port outlives it, and that socket gets only its own queries. */
static void check_accepted_survive(int reuseaddr)
{
    unsigned port;
    int c, a;
    int l = listener_with_conn(reuseaddr, "the UDP bind", &port, &c, &a);
    pump(c, a, 1000, 1);
    pump(a, c, 1000, 2);
    /* Nothing in flight: what is on its way to the port when the program
     * takes it is the program's (docs/limits.md). */
    for (int i = 0; i < EVENT_MS && (outq(a) > 0 || outq(c) > 0); i++)
        poll(NULL, 0, 1);
    CHECK(outq(a) == 0 && outq(c) == 0, "data still unacknowledged after %d ms", EVENT_MS);
    int u = udp_socket(reuseaddr);
    struct sockaddr_storage ss;
    socklen_t sl = loopback(AF_INET, port, &ss);
    if (bind(u, (struct sockaddr *)&ss, sl) < 0) {
        /* another program holds the UDP port: nothing to check there */
        printf("note: UDP port %u taken by someone else: %s\n", port, strerror(errno));
        close(u);
        close(a);
        close(c);
        close(l);
        return;
    }
    stream_both_ways(c, a);
    int q = udp_socket(0);
    int queries = 0, foreign = 0;
    for (int i = 0; i < UDP_QUERIES; i++) {
        char msg[32], got[2048];
        int ml = snprintf(msg, sizeof msg, "query %d", i);
        CHECK(sendto(q, msg, (size_t)ml, 0, (struct sockaddr *)&ss, sl) == ml, "sendto: %s",
              strerror(errno));
        for (;;) {
            struct pollfd p = {.fd = u, .events = POLLIN};
            int n = poll(&p, 1, EVENT_MS);
            SYS(n);
            CHECK(n == 1, "UDP query %d not received within %d ms", i, EVENT_MS);
            ssize_t r = recv(u, got, sizeof got, 0);
            SYS(r);
            if (r == ml && memcmp(got, msg, (size_t)ml) == 0)
                break;
            foreign++;
        }
        queries++;
    }
    /* and what else may be queued behind the last query */
    char got[2048];
    while (recv(u, got, sizeof got, MSG_DONTWAIT) >= 0)
        foreign++;
    CHECK(foreign == 0, "the program's UDP socket received %d datagrams it did not send for "
          "(with its %d queries)", foreign, queries);
    close(q);
    close(u);
    close(a);
    close(c);
    close(l);
    printf("ok: connection accepted before the UDP bind (SO_REUSEADDR %d) carries data both "
           "ways after it; the program's UDP socket got %d queries and %d other datagrams\n",
           reuseaddr, queries, foreign);
}

/* The other process of check_foreign_udp: a UDP socket with
 * SO_REUSEADDR (reuse 1) or SO_REUSEPORT (2) on port (0: the kernel's
 * choice); says the port on `ready`, answers each datagram ("child:" and
 * the query) until `stop` is closed. */
static void foreign_child(unsigned want, int reuse, int ready, int stop)
{
    int u = udp_reuse(reuse);
    unsigned port = bind_lo(u, want);
    if (write(ready, &port, sizeof port) != (ssize_t)sizeof port)
        _exit(1);
    for (;;) {
        struct pollfd p[2] = {{.fd = u, .events = POLLIN}, {.fd = stop, .events = POLLIN}};
        if (poll(p, 2, 20000) <= 0 || p[1].revents)
            _exit(0);
        char got[256], out[300];
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        ssize_t r = recvfrom(u, got, sizeof got, 0, (struct sockaddr *)&from, &fl);
        if (r < 0)
            _exit(1);
        int n = snprintf(out, sizeof out, "child:%.*s", (int)r, got);
        sendto(u, out, (size_t)n, 0, (struct sockaddr *)&from, fl);
    }
}

/* Query i to port from socket q: whether the other process answered it
 * within ms. */
static int other_answer(int q, unsigned port, int i, int ms)
{
    struct sockaddr_storage ss;
    socklen_t sl = loopback(AF_INET, port, &ss);
    char msg[32], want[64], got[300];
    int ml = snprintf(msg, sizeof msg, "query %d", i);
    int wl = snprintf(want, sizeof want, "child:%s", msg);
    CHECK(sendto(q, msg, (size_t)ml, 0, (struct sockaddr *)&ss, sl) == ml, "sendto: %s",
          strerror(errno));
    struct pollfd p = {.fd = q, .events = POLLIN};
    return poll(&p, 1, ms) == 1 && recv(q, got, sizeof got, 0) == wl &&
           memcmp(got, want, (size_t)wl) == 0;
}

/* 20 queries to port from one socket, each answered by the other process. */
static int other_answers(unsigned port)
{
    int q = udp_socket(0);
    int answered = 0;
    for (int i = 0; i < UDP_QUERIES; i++) {
        CHECK(other_answer(q, port, i, EVENT_MS), "UDP query %d: the other process did not "
              "answer within %d ms (%d answered before)", i, EVENT_MS, answered);
        answered++;
    }
    close(q);
    return answered;
}

/* UDP_QUERIES queries to port at once, numbered from base, each from a
 * socket of its own: how many the other process answered within ms. */
static int other_answers_batch(unsigned port, int base, int ms)
{
    struct sockaddr_storage ss;
    socklen_t sl = loopback(AF_INET, port, &ss);
    struct pollfd p[UDP_QUERIES];
    for (int i = 0; i < UDP_QUERIES; i++) {
        char msg[32];
        int ml = snprintf(msg, sizeof msg, "query %d", base + i);
        p[i] = (struct pollfd){.fd = udp_socket(0), .events = POLLIN};
        CHECK(sendto(p[i].fd, msg, (size_t)ml, 0, (struct sockaddr *)&ss, sl) == ml,
              "sendto: %s", strerror(errno));
    }
    int answered = 0;
    double until = now_s() + ms / 1000.0;
    while (answered < UDP_QUERIES && now_s() < until) {
        int k = poll(p, UDP_QUERIES, (int)((until - now_s()) * 1000) + 1);
        SYS(k);
        for (int i = 0; i < UDP_QUERIES && k > 0; i++) {
            if (!(p[i].revents & POLLIN))
                continue;
            char want[64], got[300];
            int wl = snprintf(want, sizeof want, "child:query %d", base + i);
            ssize_t r = recv(p[i].fd, got, sizeof got, 0);
            CHECK(r == wl && memcmp(got, want, (size_t)wl) == 0, "query %d: answer %zd bytes",
                  base + i, r);
            p[i].fd = -p[i].fd - 1; /* answered: poll skips it, the fd kept */
            answered++;
        }
    }
    for (int i = 0; i < UDP_QUERIES; i++)
        close(p[i].fd < 0 ? -p[i].fd - 1 : p[i].fd);
    return answered;
}

/* The other process (foreign_child) is told to stop, and must end well. */
static void end_other(int ready, int stop)
{
    close(stop);
    close(ready);
    int st;
    SYS(waitpid(child, &st, 0));
    child = -1;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the other process: status %d", st);
}

/* Forks the other process (foreign_child) on port want (0: the kernel's
 * choice) with reuse as there; *ready and *stop are this side's ends for
 * end_other. Returns the port it bound. */
static unsigned start_other(unsigned want, int reuse, int *ready, int *stop)
{
    int rd[2], st[2];
    if (fork_child(rd, st))
        foreign_child(want, reuse, rd[1], st[0]);
    close(rd[1]);
    close(st[0]);
    unsigned port = 0;
    struct pollfd rp = {.fd = rd[0], .events = POLLIN};
    CHECK(poll(&rp, 1, EVENT_MS) == 1 && read(rd[0], &port, sizeof port) == sizeof port,
          "the other process did not bind UDP port %u (%s)", want,
          reuse == 2 ? "SO_REUSEPORT" : "SO_REUSEADDR");
    CHECK(want == 0 || port == want, "the other process bound port %u, not %u", port, want);
    *ready = rd[0];
    *stop = st[1];
    return port;
}

/* Another process's UDP socket keeps its port's datagrams when this
 * process listens on TCP there, both with SO_REUSEADDR (reuse 1) or both
 * with SO_REUSEPORT (reuse 2: each query from a new source port, which
 * the kernel would spread over a group). */
static void check_foreign_udp(int reuse)
{
    const char *opt = reuse == 2 ? "SO_REUSEPORT" : "SO_REUSEADDR";
    int ready, stop, l = -1;
    unsigned port = 0;
    /* The other process's port is the kernel's choice: on a busy host its
     * TCP twin may be someone else's (an ephemeral port of a connection),
     * and then another is tried, so that the check always runs (the
     * supervisor's battery compares the "ok:" lines of two runs). */
    for (int tries = 0; l < 0; tries++) {
        port = start_other(0, reuse, &ready, &stop);
        l = tcp_socket(reuse == 1, reuse == 2);
        struct sockaddr_storage ss;
        socklen_t sl = loopback(AF_INET, port, &ss);
        if (bind(l, (struct sockaddr *)&ss, sl) == 0)
            break;
        CHECK(errno == EADDRINUSE && tries < 20, "bind to the other process's port %u: %s", port,
              strerror(errno));
        printf("note: TCP port %u taken: %s; another\n", port, strerror(errno));
        close(l);
        l = -1;
        end_other(ready, stop);
    }
    {
        SYS(listen(l, 8));
        int answered = reuse == 1 ? other_answers(port) : other_answers_batch(port, 0, EVENT_MS);
        CHECK(answered == UDP_QUERIES, "%s UDP bound first: %d of %d queries from new source "
              "ports answered by the other process within %d ms", opt, answered, UDP_QUERIES,
              EVENT_MS);
        char what[64];
        snprintf(what, sizeof what, "another process's UDP (%s)", opt);
        tcp_answers(l, port, what);
        close(l);
        printf("ok: another process's UDP socket (%s) bound first: %d of %d queries%s answered "
               "by it after a TCP listener (%s) took the port\n", opt, answered, UDP_QUERIES,
               reuse == 2 ? " from new source ports" : "", opt);
    }
    end_other(ready, stop);
}

/* Another process's UDP socket bound on the listener's port after
 * listen(), both with SO_REUSEADDR: it gets its queries, and the
 * connection accepted before carries on. */
static void check_foreign_udp_later(void)
{
    unsigned port;
    int c, a;
    int l = listener_with_conn(1, "the other process's UDP bind", &port, &c, &a);
    pump(c, a, 1000, 5);
    int ready, stop;
    start_other(port, 1, &ready, &stop);
    int answered = other_answers(port);
    stream_both_ways(c, a);
    tcp_answers(l, port, "another process's UDP bound later");
    close(a);
    close(c);
    close(l);
    end_other(ready, stop);
    printf("ok: another process's UDP socket (SO_REUSEADDR) bound after a TCP listener "
           "(SO_REUSEADDR): %d of %d queries answered by it; the connection accepted before "
           "carries data both ways after it\n", answered, UDP_QUERIES);
}

/* Connection i to the group on port (listener l here, a child's there),
 * served until its byte comes back: counted in n[0] if l took it, n[2] if
 * the child did. With print, the first client's transport and that of the
 * first l accepts are printed. */
static void group_round(int l, unsigned port, int i, int print, int n[3])
{
    int c = connect_lo(port);
    if (print && i == 0)
        printf("transport: %s (client)\n", fd_transport(c));
    CHECK(write(c, "q", 1) == 1, "client write: %s", strerror(errno));
    for (;;) {
        struct pollfd p[2] = {{.fd = l, .events = POLLIN}, {.fd = c, .events = POLLIN}};
        int k = poll(p, 2, EVENT_MS);
        SYS(k);
        CHECK(k > 0, "connection %d to port %u: no listener answered within %d ms", i, port,
              EVENT_MS);
        if (p[0].revents & POLLIN)
            serve_one(l, 'a', print && n[0] == 0);
        if (p[1].revents) {
            char t = 0;
            read_exact(c, &t, 1, EVENT_MS);
            CHECK(t == 'a' || t == 'c', "connection %d answered %d", i, t);
            close(c);
            n[t - 'a']++;
            return;
        }
    }
}

/* A SO_REUSEPORT group of listeners in two processes (this one and a
 * child) on two ports; another process's UDP socket with SO_REUSEPORT
 * joins the second port after listen(). It gets its queries: 20 in a row
 * from new source ports, answered within a bounded wait (under the shim
 * every member of ours gives that port up once its engine sees the
 * stranger, within a second), and the first port's group still spreads 30
 * connections over both processes (under the shim: the engines that saw
 * the stranger saw the other process's members on the first port too,
 * and took them for no stranger's). */
static void check_reuseport_stranger_later(void)
{
    int l1 = tcp_socket(0, 1), l2 = tcp_socket(0, 1);
    unsigned p1 = bind_lo(l1, 0), p2 = bind_lo(l2, 0);
    SYS(listen(l1, 64));
    SYS(listen(l2, 64));
    int ready[2], stop[2];
    if (fork_child(ready, stop)) {
        close(l1);
        close(l2);
        group_child(p1, p2, 1, ready[1], stop[0]);
    }
    member = child;
    child = -1;
    close(ready[1]);
    close(stop[0]);
    char r;
    read_exact(ready[0], &r, 1, EVENT_MS);

    int sready, sstop;
    start_other(p2, 2, &sready, &sstop);
    /* 20 queries at once, each from a new source port, all answered: if a
     * member of ours still held the port, each query would reach it with
     * even odds at least, and not be answered. Batches until one is (the
     * shim's members leave within a second of the bind), bounded. */
    int batches = 0, answered = 0;
    const int max_batches = 15, wait_ms = 2000;
    while (answered < UDP_QUERIES && batches < max_batches)
        answered = other_answers_batch(p2, UDP_QUERIES * batches++, wait_ms);
    CHECK(answered == UDP_QUERIES, "another process's SO_REUSEPORT UDP socket on the group's "
          "port: no batch of %d queries from new source ports all answered by it in %d "
          "batches (%d ms each; the last: %d)", UDP_QUERIES, max_batches, wait_ms, answered);
    printf("ok: another process's UDP socket (SO_REUSEPORT) bound on a SO_REUSEPORT group's "
           "port after listen(): %d of %d queries from new source ports answered by it (batch "
           "%d)\n", answered, UDP_QUERIES, batches);
    end_other(sready, sstop);

    int n[3] = {0, 0, 0}, m[3] = {0, 0, 0};
    group_round(l2, p2, 0, 0, m); /* plain TCP there under the shim: not printed */
    printf("ok: the group's TCP listeners on the stranger's port answer a connection\n");
    for (int i = 0; i < GROUP_CONNS; i++)
        group_round(l1, p1, i, 1, n);
    CHECK(n[0] > 0 && n[2] > 0, "the other port's group after the stranger: connections not "
          "spread over both processes: %d here, %d in the child", n[0], n[2]);
    printf("ok: the group on the other port still spreads %d connections over both "
           "processes (%d here, %d in the child)\n", GROUP_CONNS, n[0], n[2]);

    child = member;
    member = -1;
    end_other(ready[0], stop[1]);
    close(l1);
    close(l2);
}

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, WATCHDOG_S);
    prog_on_fail = kill_child;
    const char *only = getenv("PROG_REUSEPORT_ONLY");
    if (only && strcmp(only, "survive") == 0) { /* t_prog_reuseport.sh's keyed run */
        for (int ra = 0; ra < 2; ra++)
            check_accepted_survive(ra);
        return 0;
    }
    check_group();
    check_join();
    check_reuseaddr();
    check_time_wait();
    for (int first = 0; first < 2; first++)
        for (int ra = 0; ra < 2; ra++)
            check_own_udp(first, ra);
    for (int ra = 0; ra < 2; ra++)
        check_accepted_survive(ra);
    check_foreign_udp(1);
    check_foreign_udp_later();
    check_foreign_udp(2);
    check_reuseport_stranger_later();
    return 0;
}
