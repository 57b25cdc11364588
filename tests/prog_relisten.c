/*
 * prog_relisten: a listener closed and made again on its port at once, and
 * a listening socket shared by two processes that both call listen(), as
 * Linux TCP answers them.
 *
 *   - listen, close, listen again (a new socket bound to the same port
 *     right after the close, no wait), three times in a row, with
 *     SO_REUSEADDR on neither, the first, the others or all sockets: each
 *     bind and listen succeeds, and a connection made to the last listener
 *     is accepted by it and echoes;
 *   - iperf3 -s (SO_REUSEADDR): 4 listeners in a row on one port, each
 *     serving a connection (64 KiB, then an echo) that the server closes
 *     first, then closed and made again at once;
 *   - the same with a connection accepted from the old listener still open:
 *     with SO_REUSEADDR on both sockets bind and listen succeed, the old
 *     connection carries 64 KiB each way afterwards, and a new connection
 *     is accepted by the new listener; without it on either, bind() fails
 *     with EADDRINUSE (the accepted socket holds the port, as in TCP);
 *   - listen() twice on one listener: 0 (a new backlog);
 *   - a bound socket shared by two processes, inherited across fork() or
 *     passed over a unix socket (SCM_RIGHTS) before either listens: both
 *     call listen() and get 0, in either order, and each then accepts a
 *     connection from it that echoes.
 *
 * Prints one "ok:" line per check and "transport: KIND" for connected fds.
 * Exit 0 iff every check held; 1 with a "FAIL:" line otherwise; 3 if the
 * watchdog (60 s) fired.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 60
#define EVENT_MS 5000
#define BULK (64 * 1024)

const char *prog_name = "prog_relisten";

static pid_t child = -1;

static void kill_child(void)
{
    if (child > 0)
        kill(child, SIGKILL);
}

/* A TCP socket (SO_REUSEADDR as asked) bound to 127.0.0.1:port; -1 with
 * errno if the bind fails. */
static int bound(int reuse, unsigned port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    SYS(s);
    if (reuse)
        setsockopt_int(s, SOL_SOCKET, SO_REUSEADDR, 1);
    struct sockaddr_storage ss;
    socklen_t len = loopback(AF_INET, port, &ss);
    if (bind(s, (struct sockaddr *)&ss, len) < 0) {
        int e = errno;
        close(s);
        errno = e;
        return -1;
    }
    return s;
}

/* One byte each way between a client and what l accepts for it. */
static void echo_once(int c, int a, const char *what)
{
    char b = 'q';
    CHECK(write(c, &b, 1) == 1, "%s: write: %s", what, strerror(errno));
    read_exact(a, &b, 1, EVENT_MS);
    b = 'r';
    CHECK(write(a, &b, 1) == 1, "%s: write back: %s", what, strerror(errno));
    read_exact(c, &b, 1, EVENT_MS);
    CHECK(b == 'r', "%s: echoed %c", what, b);
}

/* A new connection to l's port, accepted by l, echoes. */
static void new_conn(int l, unsigned port, const char *what)
{
    int c = connect_lo(port);
    int a = accept_ready(l, EVENT_MS);
    echo_once(c, a, what);
    printf("transport: %s\n", fd_transport(c));
    close(c);
    close(a);
}

/* BULK bytes of the pattern from w to r, read back and checked. */
static void bulk(int w, int r, const char *what)
{
    static unsigned char buf[BULK];
    for (size_t i = 0; i < BULK; i++)
        buf[i] = pattern_byte(i);
    pid_t p = fork();
    SYS(p);
    if (p == 0) {
        size_t off = 0;
        while (off < BULK) {
            ssize_t n = write(w, buf + off, BULK - off);
            if (n <= 0)
                _exit(1);
            off += (size_t)n;
        }
        _exit(0);
    }
    static unsigned char got[BULK];
    read_exact(r, got, BULK, EVENT_MS);
    CHECK(memcmp(got, buf, BULK) == 0, "%s: the bytes differ", what);
    int st = reap_within(p, EVENT_MS, what);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: the writer failed", what);
}

/* Listen, close, listen again at once, three times, no connection made
 * until the last listener: SO_REUSEADDR r1 on the first socket, r2 on the
 * others. */
static void relisten_idle(int r1, int r2)
{
    int l = bound(r1, 0);
    SYS(l);
    unsigned port = port_of_fd(l);
    SYS(listen(l, 8));
    for (int round = 0; round < 3; round++) {
        SYS(close(l));
        l = bound(r2, port);
        CHECK(l >= 0, "SO_REUSEADDR %d then %d, round %d: bind again: %s", r1, r2, round,
              strerror(errno));
        CHECK(listen(l, 8) == 0, "SO_REUSEADDR %d then %d, round %d: listen again: %s", r1, r2,
              round, strerror(errno));
    }
    new_conn(l, port, "listener made again");
    SYS(close(l));
    printf("ok: SO_REUSEADDR %d then %d: listen, close, listen again at once, 3 times, the last "
           "listener accepts\n", r1, r2);
}

/* iperf3 -s: each listener (SO_REUSEADDR) serves a connection, which the
 * server closes first (TIME_WAIT on its side), then the listener is closed
 * and made again on its port at once; 4 listeners in a row. */
static void relisten_served(void)
{
    int l = bound(1, 0);
    SYS(l);
    unsigned port = port_of_fd(l);
    for (int round = 0; round < 4; round++) {
        if (round) {
            l = bound(1, port);
            CHECK(l >= 0, "round %d: bind again after a served connection: %s", round,
                  strerror(errno));
        }
        CHECK(listen(l, 8) == 0, "round %d: listen again after a served connection: %s", round,
              strerror(errno));
        int c = connect_lo(port);
        int a = accept_ready(l, EVENT_MS);
        bulk(c, a, "served connection");
        echo_once(c, a, "served connection");
        printf("transport: %s\n", fd_transport(c));
        close(a);
        close(c);
        SYS(close(l));
    }
    printf("ok: SO_REUSEADDR: 4 listeners in a row on one port, each serving a connection the "
           "server closes first\n");
}

static void relisten_busy(void)
{
    for (int r1 = 0; r1 < 2; r1++)
        for (int r2 = 0; r2 < 2; r2++) {
            int l = bound(r1, 0);
            SYS(l);
            unsigned port = port_of_fd(l);
            SYS(listen(l, 8));
            int c = connect_lo(port);
            int a = accept_ready(l, EVENT_MS);
            SYS(close(l));
            int l2 = bound(r2, port);
            if (!(r1 && r2)) {
                CHECK(l2 < 0 && errno == EADDRINUSE,
                      "SO_REUSEADDR %d then %d, a connection open: bind gave %s, not EADDRINUSE",
                      r1, r2, l2 < 0 ? strerror(errno) : "success");
                echo_once(c, a, "old connection, no new listener");
                printf("ok: SO_REUSEADDR %d then %d, a connection open: bind says EADDRINUSE\n",
                       r1, r2);
            } else {
                CHECK(l2 >= 0, "SO_REUSEADDR on both, a connection open: bind: %s",
                      strerror(errno));
                CHECK(listen(l2, 8) == 0, "SO_REUSEADDR on both, a connection open: listen: %s",
                      strerror(errno));
                bulk(c, a, "old connection, client to server");
                bulk(a, c, "old connection, server to client");
                echo_once(c, a, "old connection");
                new_conn(l2, port, "new listener beside an old connection");
                bulk(a, c, "old connection after a new one");
                SYS(close(l2));
                printf("ok: SO_REUSEADDR on both, a connection open: listen again succeeds, the "
                       "old connection carries 64 KiB each way, the new listener accepts\n");
            }
            printf("transport: %s\n", fd_transport(c));
            close(c);
            close(a);
        }
    int l = bound(1, 0);
    SYS(l);
    SYS(listen(l, 8));
    CHECK(listen(l, 16) == 0, "listen() again on a listener: %s", strerror(errno));
    new_conn(l, port_of_fd(l), "listener after a second listen()");
    close(l);
    printf("ok: listen() twice on one listener: 0, and it accepts\n");
}

static void say(int u, char b)
{
    CHECK(write(u, &b, 1) == 1, "tell the other process: %s", strerror(errno));
}

static char hear(int u)
{
    struct pollfd p = {.fd = u, .events = POLLIN};
    CHECK(poll(&p, 1, EVENT_MS) == 1, "the other process said nothing");
    char b = 0;
    CHECK(read(u, &b, 1) == 1, "the other process is gone");
    return b;
}

/* A bound socket shared before listen(): by fork (passed 0) or SCM_RIGHTS
 * (passed 1); the child listens first (child_first) or second. Each
 * process then accepts one connection, the child first. */
static void shared(int passed, int child_first)
{
    const char *how = passed ? "passed over a unix socket" : "inherited across fork";
    int sv[2];
    SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    int l = passed ? -1 : bound(1, 0);
    child = fork();
    SYS(child);
    if (child == 0) {
        close(sv[0]);
        int fd = l;
        if (passed) {
            fd = recv_fd(sv[1]);
            CHECK(fd >= 0, "%s: no fd came", how);
        }
        if (!child_first)
            CHECK(hear(sv[1]) == 'l', "%s: parent did not listen", how);
        CHECK(listen(fd, 8) == 0, "%s: the child's listen() (%s): %s", how,
              child_first ? "first" : "second", strerror(errno));
        say(sv[1], 'l');
        if (child_first)
            CHECK(hear(sv[1]) == 'l', "%s: parent did not listen", how);
        int a = accept_ready(fd, EVENT_MS);
        char b;
        read_exact(a, &b, 1, EVENT_MS);
        b = 'c';
        CHECK(write(a, &b, 1) == 1, "%s: child's write: %s", how, strerror(errno));
        say(sv[1], 'a');
        close(a);
        _exit(0);
    }
    close(sv[1]);
    if (passed) {
        l = bound(1, 0);
        SYS(l);
        CHECK(send_fd(sv[0], l) == 0, "%s: sendmsg: %s", how, strerror(errno));
    }
    unsigned port = port_of_fd(l);
    if (child_first)
        CHECK(hear(sv[0]) == 'l', "%s: child did not listen", how);
    CHECK(listen(l, 8) == 0, "%s: the parent's listen() (%s): %s", how,
          child_first ? "second" : "first", strerror(errno));
    say(sv[0], 'l');
    if (!child_first)
        CHECK(hear(sv[0]) == 'l', "%s: child did not listen", how);
    /* The child accepts this one (the parent is not accepting yet). */
    int c = connect_lo(port);
    char b = 'p';
    CHECK(write(c, &b, 1) == 1, "%s: write: %s", how, strerror(errno));
    CHECK(hear(sv[0]) == 'a', "%s: the child accepted nothing", how);
    read_exact(c, &b, 1, EVENT_MS);
    CHECK(b == 'c', "%s: the child's connection echoed %c", how, b);
    printf("transport: %s\n", fd_transport(c));
    close(c);
    int st = reap_within(child, EVENT_MS, how);
    child = -1;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: the child failed", how);
    new_conn(l, port, how);
    close(l);
    close(sv[0]);
    printf("ok: a bound socket %s, both processes listen (the child %s): 0 for both, and each "
           "accepts a connection\n", how, child_first ? "first" : "second");
}

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, WATCHDOG_S);
    prog_on_fail = kill_child;
    for (int r1 = 0; r1 < 2; r1++)
        for (int r2 = 0; r2 < 2; r2++)
            relisten_idle(r1, r2);
    relisten_served();
    relisten_busy();
    for (int passed = 0; passed < 2; passed++)
        for (int first = 0; first < 2; first++)
            shared(passed, first);
    return 0;
}
