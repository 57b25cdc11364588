/*
 * prog_restart: a server restarted on its port while its old self's last
 * connection is still being delivered, as Linux TCP allows it.
 *
 *   prog_restart           exit 0 iff every step below holds
 *
 *   1. A child (the old server) listens with SO_REUSEADDR on a loopback
 *      port the kernel chose, accepts the parent's connection, writes into
 *      it until the kernel refuses more (the parent reads nothing), says
 *      how many bytes write() took, and exits with the connection open.
 *      Kernel TCP goes on delivering them after the process is gone (the
 *      shim: a keeper process carries the connection).
 *   2. At once (as a supervisor restarts a server it reaped), a second
 *      child (the restarted server) binds that port with
 *      SO_REUSEADDR and listens: both succeed (the old connection holds
 *      no listener's port against SO_REUSEADDR). It accepts a new
 *      connection from the parent and writes a greeting.
 *   3. The parent reads the greeting on the new connection, then every
 *      byte of the old one, in order, then EOF.
 *
 * Prints one "ok:" line per step and "transport: KIND" for each connected
 * fd (tcp = a kernel TCP socket: under the shim, a listener left on plain
 * kernel TCP shows as tcp on the new connection). Exit 0 iff all held; 1
 * with a "FAIL:" line otherwise; 3 if the watchdog (60 s) fired.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 60
#define EVENT_MS 10000 /* any single expected event */
#define HELLO "hello from the restarted server\n"

const char *prog_name = "prog_restart";

static pid_t kids[2] = {-1, -1};
static void end_kids(void)
{
    for (int i = 0; i < 2; i++)
        if (kids[i] > 0)
            kill(kids[i], SIGKILL);
}

static void read_pipe(int fd, void *buf, size_t len, const char *what)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        CHECK(n > 0, "%s: the child said nothing (%s)", what, n < 0 ? strerror(errno) : "EOF");
        got += (size_t)n;
    }
}

static int reuse_socket(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    SYS(s);
    setsockopt_int(s, SOL_SOCKET, SO_REUSEADDR, 1);
    return s;
}

/* Writes the pattern into non-blocking fd until the kernel refuses
 * (EAGAIN), and again each time it says it has room within 500 ms (a
 * shim's engine may still move bytes on), at most 20 times; returns the
 * bytes written. */
static long fill_pattern(int fd)
{
    static unsigned char buf[65536];
    long total = 0;
    for (int rounds_left = 20; rounds_left > 0; rounds_left--) {
        for (;;) {
            for (size_t i = 0; i < sizeof buf; i++)
                buf[i] = pattern_byte((uint64_t)total + i);
            ssize_t w = write(fd, buf, sizeof buf);
            if (w <= 0)
                break;
            total += w;
        }
        CHECK(errno == EAGAIN || errno == EINTR, "write: %s", strerror(errno));
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        if (poll(&pf, 1, 500) == 0)
            break;
    }
    return total;
}

/* The old server: the port it listens on, then the bytes write() took. */
static void old_server(int out)
{
    int l = reuse_socket();
    unsigned port = bind_lo(l, 0);
    SYS(listen(l, 4));
    SYS(write(out, &port, sizeof port));
    int a = accept_ready(l, EVENT_MS);
    SYS(fcntl(a, F_SETFL, O_NONBLOCK));
    long sent = fill_pattern(a);
    SYS(write(out, &sent, sizeof sent));
    exit(0); /* the listener and the connection still open */
}

/* The restarted server: 0 or bind()'s errno, listen()'s; then greets one
 * client and waits for its EOF. */
static void new_server(unsigned port, int out)
{
    int l = reuse_socket();
    struct sockaddr_storage ss;
    socklen_t len = loopback(AF_INET, port, &ss);
    int err[2] = {0, 0};
    if (bind(l, (struct sockaddr *)&ss, len) < 0)
        err[0] = errno;
    else if (listen(l, 4) < 0)
        err[1] = errno;
    SYS(write(out, err, sizeof err));
    if (err[0] || err[1])
        _exit(1);
    int a = accept_ready(l, EVENT_MS);
    SYS(write(a, HELLO, strlen(HELLO)));
    char c;
    while (read(a, &c, 1) > 0)
        ;
    exit(0);
}

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, WATCHDOG_S);
    prog_on_fail = end_kids;

    int p[2];
    SYS(pipe(p));
    SYS(kids[0] = fork());
    if (kids[0] == 0) {
        close(p[0]);
        old_server(p[1]);
    }
    printf("pid: %d\n", (int)kids[0]);
    close(p[1]);
    unsigned port;
    read_pipe(p[0], &port, sizeof port, "the old server's port");
    int old = connect_lo(port);
    long sent;
    read_pipe(p[0], &sent, sizeof sent, "the old server's byte count");
    close(p[0]);
    int st = reap_within(kids[0], EVENT_MS, "the old server");
    kids[0] = -1;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the old server ended with status %#x", st);
    CHECK(sent > 0, "the old server wrote nothing");
    printf("ok: the old server exited with %ld bytes written and not yet read\n", sent);

    SYS(pipe(p));
    SYS(kids[1] = fork());
    if (kids[1] == 0) {
        close(p[0]);
        new_server(port, p[1]);
    }
    printf("pid: %d\n", (int)kids[1]);
    close(p[1]);
    int err[2];
    read_pipe(p[0], err, sizeof err, "the restarted server's bind and listen");
    close(p[0]);
    CHECK(err[0] == 0, "the restarted server's bind: %s", strerror(err[0]));
    CHECK(err[1] == 0, "the restarted server's listen: %s", strerror(err[1]));
    printf("ok: the restarted server binds and listens on the port (SO_REUSEADDR)\n");

    int c = connect_lo(port);
    char hello[sizeof HELLO - 1];
    read_exact(c, hello, sizeof hello, EVENT_MS);
    CHECK(memcmp(hello, HELLO, sizeof hello) == 0, "the new connection read %.*s",
          (int)sizeof hello, hello);
    printf("transport: %s\n", fd_transport(c));
    close(c);
    st = reap_within(kids[1], EVENT_MS, "the restarted server");
    kids[1] = -1;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the restarted server ended with status %#x",
          st);
    printf("ok: the restarted server answers a new connection\n");

    printf("transport: %s\n", fd_transport(old));
    uint64_t got = pattern_drain(old, (uint64_t)sent, EVENT_MS, "the old connection");
    CHECK(got == (uint64_t)sent, "the old connection delivered %llu of %ld bytes",
          (unsigned long long)got, sent);
    printf("ok: the old connection delivers all %ld bytes in order, then EOF\n", sent);
    return 0;
}
