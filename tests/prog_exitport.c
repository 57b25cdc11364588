/*
 * prog_exitport: a listener's port is free once the last process holding
 * it is gone. Kernel TCP closes the listener when its process exits,
 * before the parent's waitpid() returns, so a server restarted at once
 * binds its port. Under the shim a keeper used to take the listener on and
 * stop it only once it had seen the process gone (a restart right after
 * failed with EADDRINUSE); now the exiting process stops each listener no
 * other process holds itself (shim/lifetime/keeper.c).
 *
 *   exit      a child listens on P, connects to the parent's other port,
 *             writes 200 KB there and calls exit(); at once after
 *             waitpid(), a program without the shim binds P (SO_REUSEADDR)
 *             and listens, then so does the parent, which then reads the
 *             200 KB to EOF: 10 times (under the shim a keeper carries the
 *             connection on, not the listener)
 *   _exit     the same with _exit()
 *   sigterm   the same with the child killed by SIGTERM (default action)
 *   takeover  a child accepts the parent's connection on P, writes 200 KB
 *             and exits; at once the parent binds P (SO_REUSEADDR) and
 *             listens, as a restarted server, then reads the 200 KB and
 *             the end: 10 times (under the shim the keeper hands the port
 *             over and the closing connection moves to a port of its own;
 *             left behind, its client lost the rest)
 *   many      as exit, with the child listening on MANY ports (more than
 *             the keeper's table of listeners, LIS_MAX): each is free
 *             right after waitpid()
 *   held      the child forks a grandchild (which inherits the listener)
 *             and exits: P is still in use (a bind without the shim says
 *             EADDRINUSE) while
 *             the grandchild holds it; once the grandchild has exited too,
 *             P is free (within 3 s: under the shim a keeper checks the
 *             listener once a second, docs/limits.md)
 *
 * `prog_exitport WAY` runs one way (`bind PORT`: the plain bind's helper).
 * Run over kernel TCP first, then under the shim
 * (integration/tests/lifetime/t_prog_exitport.sh).
 */
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

#define ROUNDS 10

const char *prog_name = "prog_exitport";

/* bind(P) with SO_REUSEADDR and listen: 0, or the errno */
static int bind_listen(unsigned port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    SYS(s);
    int one = 1;
    SYS(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
    struct sockaddr_in a = ipv4_addr("127.0.0.1", port);
    int err = 0;
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 8) < 0)
        err = errno;
    close(s);
    return err;
}

/* bind_listen(port) in a program without the shim (this one, exec'd
 * without LD_PRELOAD): what a server restarted outside the shim gets */
static int bind_listen_plain(unsigned port)
{
    pid_t c = fork();
    SYS(c);
    if (c == 0) {
        char ps[16];
        snprintf(ps, sizeof ps, "%u", port);
        char *argv[] = {(char *)"prog_exitport", (char *)"bind", ps, NULL};
        execve("/proc/self/exe", argv, env_without_preload());
        _exit(127);
    }
    int st = reap_within(c, 10000, "bind without the shim");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) != 127, "exec of the plain bind: status %#x",
          (unsigned)st);
    return WEXITSTATUS(st);
}

/* A child listening on port (0: any; SO_REUSEADDR, as servers do), which
 * says its port on w; returns the listener. */
static int child_listens(unsigned port, int w)
{
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    SYS(l);
    SYS(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
    SYS(listen_lo_at(l, port, 8));
    unsigned p = port_of_fd(l);
    CHECK(write(w, &p, sizeof p) == (ssize_t)sizeof p, "write the port");
    return l;
}

#define REPLY (200 * 1024)

static unsigned read_port(int r)
{
    unsigned p = 0;
    CHECK(read(r, &p, sizeof p) == (ssize_t)sizeof p, "the child said no port");
    return p;
}

/* What conn gives until its end: the bytes read. */
static size_t read_reply(int conn, const char *how)
{
    size_t total = 0;
    for (;;) {
        char buf[65536];
        CHECK(poll_for(conn, POLLIN, 10000) & (POLLIN | POLLHUP), "%s: the reply stopped at %zu",
              how, total);
        ssize_t r = read(conn, buf, sizeof buf);
        CHECK(r >= 0, "%s: read: %s", how, strerror(errno));
        if (r == 0)
            return total;
        total += (size_t)r;
    }
}

/* A port for the rounds of one way, below the kernel's ephemeral range
 * and free now: P stays free between two rounds (the parent's bind and
 * close, then the next child's listen), and a connect() of another test
 * running beside this one may take a free ephemeral port as its own
 * (make test runs two lanes: the kernel TCP run failed so once, loaded,
 * "listen_lo_at(l, port, 8): Address already in use"). 0 (the kernel's
 * pick, as before) if none is found. */
static unsigned quiet_port(void)
{
    unsigned low = 32768, high = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%u %u", &low, &high) != 2)
            low = 32768;
        fclose(f);
    }
    if (low <= 2048)
        return 0;
    unsigned span = low - 1025 < 8000 ? low - 1025 : 8000;
    unsigned start = (unsigned)getpid() * 7919u;
    for (unsigned i = 0; i < 64; i++) {
        unsigned port = low - 1 - (start + i * 131u) % span;
        if (bind_listen(port) == 0)
            return port;
    }
    return 0;
}

static unsigned one_exit(const char *how, unsigned port)
{
    int p[2];
    SYS(pipe(p));
    int q = listener_lo(0, 8); /* the parent's, which the child's connection reaches */
    unsigned qport = port_of_fd(q);
    pid_t c = fork();
    SYS(c);
    if (c == 0) {
        close(p[0]);
        signal(SIGTERM, SIG_DFL);
        close(q);
        (void)child_listens(port, p[1]);
        /* a connection of its own (to the parent's other port) whose bytes
         * are still on their way at the end: the engine is busy, so a
         * keeper carries it on */
        int a = connect_lo(qport);
        SYS(a);
        static char reply[REPLY];
        memset(reply, 'r', sizeof reply);
        write_exact(a, reply, sizeof reply);
        if (strcmp(how, "exit") == 0)
            exit(0);
        if (strcmp(how, "_exit") == 0)
            _exit(0);
        for (;;)
            pause(); /* SIGTERM's default action ends it */
    }
    kill_on_fail(c);
    close(p[1]);
    port = read_port(p[0]);
    close(p[0]);
    int conn = accept(q, NULL, NULL);
    CHECK(conn >= 0, "%s: accept: %s", how, strerror(errno));
    close(q);
    if (strcmp(how, "sigterm") == 0) {
        char b;
        read_exact(conn, &b, 1, 10000); /* the child is past its accept and write */
        SYS(kill(c, SIGTERM));
    }
    int st = reap_within(c, 10000, how);
    kill_on_fail(-1);
    if (strcmp(how, "sigterm") == 0)
        CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "%s: the child's status %#x", how,
              (unsigned)st);
    else
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: the child's status %#x", how,
              (unsigned)st);
    int err = bind_listen_plain(port);
    CHECK(err == 0, "%s: port %u right after its listener's process was reaped, bound by a "
                    "program without the shim: %s", how, port, strerror(err));
    err = bind_listen(port);
    CHECK(err == 0, "%s: port %u right after its listener's process was reaped: %s", how, port,
          strerror(err));
    /* and the reply, carried on, arrives whole */
    size_t total = read_reply(conn, how);
    if (strcmp(how, "sigterm") == 0)
        total++; /* the byte read before the signal */
    CHECK(total == REPLY, "%s: %zu bytes of the %d the child wrote before its end", how, total,
          REPLY);
    close(conn);
    return port;
}

/* many: the child listens on MANY ports, then ends as in one_exit's exit
 * with its connection's bytes on their way; every port is free at once. */
#define MANY 70

static void many_exit(void)
{
    int p[2];
    SYS(pipe(p));
    int q = listener_lo(0, 8);
    unsigned qport = port_of_fd(q);
    pid_t c = fork();
    SYS(c);
    if (c == 0) {
        close(p[0]);
        close(q);
        for (int i = 0; i < MANY; i++)
            (void)child_listens(0, p[1]);
        int a = connect_lo(qport);
        SYS(a);
        static char reply[REPLY];
        memset(reply, 'r', sizeof reply);
        write_exact(a, reply, sizeof reply);
        exit(0);
    }
    kill_on_fail(c);
    close(p[1]);
    unsigned ports[MANY];
    for (int i = 0; i < MANY; i++)
        ports[i] = read_port(p[0]);
    close(p[0]);
    int conn = accept(q, NULL, NULL);
    CHECK(conn >= 0, "many: accept: %s", strerror(errno));
    close(q);
    int st = reap_within(c, 10000, "many");
    kill_on_fail(-1);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "many: the child's status %#x", (unsigned)st);
    for (int i = 0; i < MANY; i++) {
        int err = bind_listen(ports[i]);
        CHECK(err == 0, "many: port %u (%d of %d) right after its listener's process was "
                        "reaped: %s", ports[i], i + 1, MANY, strerror(err));
    }
    int err = bind_listen_plain(ports[MANY - 1]);
    CHECK(err == 0, "many: port %u, bound by a program without the shim: %s", ports[MANY - 1],
          strerror(err));
    size_t total = read_reply(conn, "many");
    CHECK(total == REPLY, "many: %zu bytes of the %d the child wrote before its end", total,
          REPLY);
    close(conn);
    printf("ok: many: %d ports free right after their listeners' process was reaped\n", MANY);
}

/* takeover: a server writes 200 KB on a connection it accepted and exits;
 * at once this process, a restarted server, binds and listens on its port
 * (SO_REUSEADDR) and closes that listener again; the client reads every
 * byte and the end. Under the shim the old server's keeper hands the port
 * over and its connections move to a port of their own (NEW_PORT),
 * those it was still closing with bytes on their way too. */
static void write_reply_and_exit(int l)
{
    int a = accept(l, NULL, NULL);
    SYS(a);
    static char reply[REPLY];
    memset(reply, 'r', sizeof reply);
    write_exact(a, reply, sizeof reply);
    exit(0);
}

static void takeover(void)
{
    for (int i = 0; i < ROUNDS; i++) {
        unsigned port;
        pid_t c = fork_listener(&port, write_reply_and_exit);
        kill_on_fail(c);
        int conn = connect_lo(port);
        CHECK(conn >= 0, "takeover: connect: %s", strerror(errno));
        int st = reap_within(c, 10000, "takeover");
        kill_on_fail(-1);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "takeover: the child's status %#x",
              (unsigned)st);
        int err = bind_listen(port);
        CHECK(err == 0, "takeover: port %u right after the server was reaped: %s", port,
              strerror(err));
        size_t total = 0;
        for (;;) {
            char buf[65536];
            CHECK(poll_for(conn, POLLIN, 10000) & (POLLIN | POLLHUP),
                  "takeover: the reply stopped at %zu", total);
            ssize_t r = read(conn, buf, sizeof buf);
            CHECK(r >= 0, "takeover, round %d: read after %zu bytes: %s", i, total,
                  strerror(errno));
            if (r == 0)
                break;
            total += (size_t)r;
        }
        CHECK(total == REPLY, "takeover: %zu bytes of the %d the server wrote before its end",
              total, REPLY);
        close(conn);
    }
    printf("ok: takeover: %d times a server's last reply arrived whole though a new server "
           "took its port at once\n", ROUNDS);
}

static void held(void)
{
    int p[2], g[2];
    SYS(pipe(p));
    SYS(pipe(g)); /* the grandchild leaves at EOF on g */
    pid_t c = fork();
    SYS(c);
    if (c == 0) {
        close(p[0]);
        close(g[1]);
        (void)child_listens(0, p[1]);
        pid_t gc = fork();
        SYS(gc);
        if (gc == 0) {
            char b;
            while (read(g[0], &b, 1) > 0)
                ;
            _exit(0); /* its copy of the listener goes with it */
        }
        exit(0);
    }
    close(p[1]);
    close(g[0]);
    unsigned port = read_port(p[0]);
    close(p[0]);
    int st = reap_within(c, 10000, "held");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "held: the child's status %#x", (unsigned)st);
    int err = bind_listen_plain(port);
    CHECK(err == EADDRINUSE, "held: port %u while a grandchild holds its listener: %s", port,
          err ? strerror(err) : "bound");
    close(g[1]); /* the grandchild (not ours to reap) leaves */
    double t0 = now_s();
    while ((err = bind_listen_plain(port)) == EADDRINUSE && now_s() - t0 < 3)
        usleep(10000);
    CHECK(err == 0, "held: port %u 3 s after the grandchild was told to leave: %s", port,
          strerror(err));
    printf("ok: held: the port in use while a grandchild held the listener, free after it left "
           "(%.0f ms)\n", (now_s() - t0) * 1000);
}

int main(int argc, char **argv)
{
    static const char *const ways[] = {"exit", "_exit", "sigterm"};
    if (argc == 3 && strcmp(argv[1], "bind") == 0)
        return bind_listen((unsigned)atoi(argv[2])); /* the errno, 0 */
    prog_begin(1, 120);
    int first = 1;
    for (size_t w = 0; w < sizeof ways / sizeof ways[0]; w++) {
        if (argc >= 2 && strcmp(argv[1], ways[w]) != 0)
            continue;
        unsigned port = quiet_port();
        for (int i = 0; i < ROUNDS; i++)
            port = one_exit(ways[w], port);
        if (first) {
            /* the transport of what the children made: this process's own */
            int c, a;
            loopback_pair(AF_INET, &c, &a);
            printf("transport: %s\n", fd_transport(c));
            close(c);
            close(a);
            first = 0;
        }
        printf("ok: %s: %d times the port was free right after its listener's process was "
               "reaped\n", ways[w], ROUNDS);
    }
    if (argc < 2 || strcmp(argv[1], "many") == 0)
        many_exit();
    if (argc < 2 || strcmp(argv[1], "takeover") == 0)
        takeover();
    if (argc < 2 || strcmp(argv[1], "held") == 0)
        held();
    return 0;
}
