/*
 * prog_keeper: what is left of a process's TCP after it is gone, as Linux
 * leaves it.
 *
 *   prog_keeper            run every check below; exit 0 iff all hold
 *   prog_keeper CHECK      only one: listener, timewait or sigterm
 *
 * Each check forks a child that plays the process which ends; the parent
 * looks at what it left.
 *
 *   - listener: a child listens on a port the kernel chose and ends with
 *     _exit(0), exit(0), or the default action of SIGTERM, the listener
 *     still open. Its port must then be free: a bind() and listen() to it
 *     succeed (kernel TCP: at once; the process's sockets die with it).
 *     The parent tries until they do, at most FREE_S seconds; four rounds
 *     of each.
 *   - timewait: a child server accepts a connection, closes it first (so
 *     its end goes to TIME_WAIT, 60 s on Linux, TCP_TIMEWAIT_LEN in
 *     include/net/tcp.h), and ends with its listener open. The TIME_WAIT
 *     outlives the process: a bind() to the port fails with EADDRINUSE
 *     unless both the old listener and the new socket have SO_REUSEADDR
 *     (inet_csk_bind_conflict(): a TIME_WAIT socket keeps its sk_reuse);
 *     with both, bind() and listen() succeed. Checked once nothing listens
 *     on the port any more (/proc/net/tcp), at most FREE_S seconds, and
 *     again TW_AGAIN_MS later.
 *   - sigterm: a child connects to the parent, puts up to 4 MB in with
 *     non-blocking write()s while the parent reads nothing, reports how
 *     many bytes write() accepted through a pipe, and is killed with
 *     SIGTERM (left at its default action). Kernel TCP goes on sending what
 *     the socket holds after the process is gone: the parent must read
 *     every accepted byte, in order, then EOF.
 *
 * Prints one "ok:" line per check, "transport: KIND" for the connected fds
 * (tcp = a kernel TCP socket), and "pid: PID" for itself and each child (a
 * script may end what is left of them: a keeper holding TIME_WAIT, which
 * rudp-stat names "keeper of pid PID"). Exit 0 iff every check held; 1
 * with a "FAIL:" line otherwise; 3 if the watchdog (120 s) fired.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 120
#define FREE_S 20          /* a port must be free again within this */
#define EVENT_MS 10000     /* any single expected event */
#define SIGTERM_BYTES (4 * 1024 * 1024)
#define LISTENER_ROUNDS 4
#define TW_AGAIN_MS 3000   /* TIME_WAIT checked again this much later */

const char *prog_name = "prog_keeper";

/* The child of the check running, ended if the check fails. */
static pid_t child = -1;
static void end_child(void)
{
    if (child > 0 && kill(child, SIGKILL) == 0)
        child = -1;
}

/* A pipe and a child: the child writes into *p and the parent reads
 * (each closes the other's end). Returns fork()'s answer. */
static pid_t fork_telling(int p[2])
{
    SYS(pipe(p));
    child = fork();
    SYS(child);
    close(child == 0 ? p[0] : p[1]);
    if (child > 0)
        printf("pid: %d\n", (int)child);
    return child;
}

static void pipe_read(int fd, void *buf, size_t len, const char *what)
{
    (void)what;
    read_exact(fd, buf, len, EVENT_MS);
}

static int reap(pid_t pid, const char *what)
{
    int st = reap_within(pid, EVENT_MS, what);
    child = -1;
    return st;
}

/* A bind() of a new TCP socket to 127.0.0.1:port, with SO_REUSEADDR if
 * reuse; listen() too if bind worked and listen_too. Returns 0 or errno. */
/* A TCP socket of AF_INET, with SO_REUSEADDR if reuse. */
static int tcp_socket(int reuse)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    SYS(s);
    if (reuse)
        setsockopt_int(s, SOL_SOCKET, SO_REUSEADDR, 1);
    return s;
}

static int try_bind(unsigned port, int reuse, int listen_too)
{
    int s = tcp_socket(reuse);
    struct sockaddr_storage ss;
    socklen_t len = loopback(AF_INET, port, &ss);
    int err = 0;
    if (bind(s, (struct sockaddr *)&ss, len) < 0)
        err = errno;
    else if (listen_too && listen(s, 4) < 0)
        err = errno;
    close(s);
    return err;
}

/* A listener on 127.0.0.1, port chosen by the kernel; *port gets it. */
static int listener(int reuse, unsigned *port)
{
    int l = tcp_socket(reuse);
    struct sockaddr_storage ss;
    socklen_t len = loopback(AF_INET, 0, &ss);
    SYS(bind(l, (struct sockaddr *)&ss, len));
    SYS(listen(l, 16));
    len = sizeof ss;
    SYS(getsockname(l, (struct sockaddr *)&ss, &len));
    *port = port_of(&ss);
    return l;
}

static int connect_to(unsigned port)
{
    int c = tcp_socket(0);
    struct sockaddr_storage ss;
    socklen_t len = loopback(AF_INET, port, &ss);
    SYS(connect(c, (struct sockaddr *)&ss, len));
    return c;
}

/* --- listener: its port free once its process is gone ------------------ */

enum ending { BY__EXIT, BY_EXIT, BY_SIGTERM };
static const char *const ending_name[] = {"_exit(0)", "exit(0)", "SIGTERM"};

static void listener_freed_once(enum ending how)
{
    const char *what = ending_name[how];
    int p[2];
    if (fork_telling(p) == 0) {
        /* The port is told before listen(), so that the process ends
         * right after it (a listener its engine may not have set up yet). */
        int l = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_storage ss;
        socklen_t len = loopback(AF_INET, 0, &ss);
        if (l < 0 || bind(l, (struct sockaddr *)&ss, len) < 0 ||
            getsockname(l, (struct sockaddr *)&ss, &len) < 0)
            _exit(10);
        unsigned port = port_of(&ss);
        if (write(p[1], &port, sizeof port) != sizeof port || listen(l, 16) < 0)
            _exit(11);
        if (how == BY__EXIT)
            _exit(0); /* the listener left open */
        if (how == BY_EXIT)
            exit(0);
        if (write(p[1], "L", 1) != 1)
            _exit(12);
        for (;;)
            pause(); /* until SIGTERM */
    }
    unsigned port;
    pipe_read(p[0], &port, sizeof port, what);
    if (how == BY_SIGTERM) {
        char c;
        pipe_read(p[0], &c, 1, what); /* listening */
        SYS(kill(child, SIGTERM));
    }
    close(p[0]);
    int st = reap(child, what);
    if (how == BY_SIGTERM)
        CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "%s: child status %#x", what, st);
    else
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: child status %#x", what, st);
    double t0 = now_s();
    int err;
    while ((err = try_bind(port, 0, 1)) != 0) {
        CHECK(err == EADDRINUSE, "%s: bind/listen to the old port: %s", what, strerror(err));
        CHECK(now_s() - t0 < FREE_S,
              "%s: port %u still in use %d s after its listener's process ended", what, port,
              FREE_S);
        poll(NULL, 0, 20);
    }
}

/* Several rounds: under the shim the end may race the engine. */
static void check_listener_freed(enum ending how)
{
    for (int round = 0; round < LISTENER_ROUNDS; round++)
        listener_freed_once(how);
    printf("ok: a listener's port is free once its process ended by %s (bind and listen "
           "succeed; %d rounds)\n", ending_name[how], LISTENER_ROUNDS);
}

/* --- timewait: TIME_WAIT outlives the process --------------------------- */

/* Whether a TCP socket listens on port (any IPv4 address): /proc/net/tcp,
 * state 0A (TCP_LISTEN), as `ss -tln` shows it. */
static int tcp_listening(unsigned port)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    CHECK(f, "/proc/net/tcp: %s", strerror(errno));
    char line[512];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        unsigned lport, st;
        if (sscanf(line, " %*u: %*x:%x %*x:%*x %x", &lport, &st) == 2)
            found = lport == port && st == 0x0A;
    }
    fclose(f);
    return found;
}

/* The server's listener is gone (its process is), within FREE_S: the
 * bind() checks must not meet it. */
static void wait_not_listening(unsigned port)
{
    double t0 = now_s();
    while (tcp_listening(port)) {
        CHECK(now_s() - t0 < FREE_S, "timewait: port %u still listening %d s after its "
              "process ended", port, FREE_S);
        poll(NULL, 0, 20);
    }
}

/* A child server that accepts a connection, closes it first and ends with
 * its listener open (with SO_REUSEADDR or not); returns its port once
 * nothing listens there any more. */
static unsigned time_wait_left(int old_reuse)
{
    int p[2], go[2];
    SYS(pipe(go));
    if (fork_telling(p) == 0) {
        close(go[1]);
        unsigned port;
        int l = listener(old_reuse, &port);
        if (write(p[1], &port, sizeof port) != sizeof port)
            _exit(10);
        int a = accept_ready(l, EVENT_MS);
        if (write(a, "x", 1) != 1)
            _exit(11);
        close(a); /* first: this end goes to TIME_WAIT */
        char c;
        if (read(go[0], &c, 1) != 1) /* the peer has closed too */
            _exit(12);
        if (old_reuse)
            _exit(0); /* the listener still open */
        exit(0);
    }
    close(go[0]);
    unsigned port;
    pipe_read(p[0], &port, sizeof port, "timewait");
    close(p[0]);
    int c = connect_to(port);
    printf("transport: %s\n", fd_transport(c));
    char b[2];
    read_exact(c, b, 1, EVENT_MS);
    struct pollfd pf = {.fd = c, .events = POLLIN};
    CHECK(poll(&pf, 1, EVENT_MS) == 1, "timewait: no EOF after the server's close");
    CHECK(read(c, b, 1) == 0, "timewait: read after the server's close is not EOF");
    close(c);
    CHECK(write(go[1], "g", 1) == 1, "timewait: write to the child: %s", strerror(errno));
    close(go[1]);
    int st = reap(child, "timewait");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "timewait: child status %#x", st);
    wait_not_listening(port);
    return port;
}

/* The binds TIME_WAIT on port allows, ms after the first check. */
static void check_binds(unsigned port, int old_reuse, int ms)
{
    int plain = try_bind(port, 0, 0);
    CHECK(plain == EADDRINUSE, "timewait (%d ms on): bind without SO_REUSEADDR after the "
          "server ended: %s, want EADDRINUSE", ms, plain ? strerror(plain) : "success");
    int reuse = try_bind(port, 1, 1);
    if (old_reuse)
        CHECK(reuse == 0, "timewait (%d ms on): bind+listen with SO_REUSEADDR on both: %s", ms,
              strerror(reuse));
    else
        CHECK(reuse == EADDRINUSE, "timewait (%d ms on): bind with SO_REUSEADDR (the old "
              "listener had none): %s, want EADDRINUSE", ms, reuse ? strerror(reuse) : "success");
}

/* Both servers, the one without SO_REUSEADDR that ends with exit() and the
 * one with it that ends with _exit(): each port checked at once, and again
 * later: TIME_WAIT lasts 60 s, past rudp's own (a few probe timeouts), whose
 * end must not free the port. One wait serves both: each is checked again
 * at least TW_AGAIN_MS after its first check. */
static void check_time_wait(void)
{
    unsigned port[2];
    for (int reuse = 0; reuse < 2; reuse++) {
        port[reuse] = time_wait_left(reuse);
        check_binds(port[reuse], reuse, 0);
    }
    poll(NULL, 0, TW_AGAIN_MS);
    for (int reuse = 0; reuse < 2; reuse++)
        check_binds(port[reuse], reuse, TW_AGAIN_MS);
    printf("ok: TIME_WAIT outlives the server's exit() (at once and %d ms on): bind says "
           "EADDRINUSE, with SO_REUSEADDR on the new socket only too\n", TW_AGAIN_MS);
    printf("ok: TIME_WAIT outlives the server's _exit() (at once and %d ms on): bind needs "
           "SO_REUSEADDR, and with it on both, bind and listen succeed\n", TW_AGAIN_MS);
}

/* --- sigterm: what write() accepted is delivered after the kill --------- */

static void check_sigterm_delivers(void)
{
    unsigned port;
    int l = listener(0, &port);
    int p[2];
    if (fork_telling(p) == 0) {
        close(l);
        int c = connect_to(port);
        if (fcntl(c, F_SETFL, O_NONBLOCK) < 0)
            _exit(10);
        long long n = pattern_fill(c, SIGTERM_BYTES);
        if (n < 0)
            _exit(11);
        uint64_t sent = (uint64_t)n;
        if (write(p[1], &sent, sizeof sent) != sizeof sent)
            _exit(12);
        for (;;)
            pause(); /* until SIGTERM */
    }
    int a = accept_ready(l, EVENT_MS);
    close(l);
    printf("transport: %s\n", fd_transport(a));
    uint64_t sent;
    pipe_read(p[0], &sent, sizeof sent, "sigterm");
    close(p[0]);
    CHECK(sent > 0, "sigterm: the writer's write() accepted nothing");
    printf("info: the writer's write() accepted %llu bytes before SIGTERM\n",
           (unsigned long long)sent);
    SYS(kill(child, SIGTERM));
    int st = reap(child, "sigterm");
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "sigterm: child status %#x", st);
    uint64_t got = pattern_drain(a, sent, EVENT_MS, "sigterm");
    CHECK(got == sent, "sigterm: EOF after %llu of the %llu bytes write() accepted",
          (unsigned long long)got, (unsigned long long)sent);
    close(a);
    printf("ok: a writer killed by SIGTERM: every byte its write() accepted arrives, then "
           "EOF\n");
}

int main(int argc, char **argv)
{
    const char *only = argc == 2 ? argv[1] : NULL;
    if (argc > 2 || (only && strcmp(only, "listener") && strcmp(only, "timewait") &&
                     strcmp(only, "sigterm"))) {
        fprintf(stderr, "usage: %s [listener|timewait|sigterm]\n", prog_name);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    prog_on_fail = end_child;
    watchdog(WATCHDOG_S);
    printf("pid: %d\n", (int)getpid());
    /* what carries a connection here (the checks' children make theirs) */
    int c, a;
    loopback_pair(AF_INET, &c, &a);
    printf("transport: %s\ntransport: %s\n", fd_transport(c), fd_transport(a));
    close(c);
    close(a);
    if (!only || !strcmp(only, "listener")) {
        check_listener_freed(BY__EXIT);
        check_listener_freed(BY_EXIT);
        check_listener_freed(BY_SIGTERM);
    }
    if (!only || !strcmp(only, "timewait"))
        check_time_wait();
    if (!only || !strcmp(only, "sigterm"))
        check_sigterm_delivers();
    return 0;
}
