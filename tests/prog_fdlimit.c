/*
 * prog_fdlimit: connect() with every fd number the soft RLIMIT_NOFILE
 * allows in use succeeds, as over TCP, whose connect needs no new fd; the
 * connection carries bytes both ways, and getrlimit() still says the limit
 * the program set (the first connect excepted: the shim raises the soft
 * limit when its first engine starts, as its README says). Blocking and non-blocking connects, the first one the
 * process makes (under the shim its engine starts then) and a later one.
 *
 * Under the shim before nofile.c, connect() failed with EMFILE: its UDP
 * socket and its bridge's ends need new fds.
 *
 * The server is a child process (its accept() needs an fd); it echoes one
 * byte on each connection. Needs a hard limit above the soft one we set
 * (else prints "skip:" and exits 77).
 *
 * "prog_fdlimit hard" sets the hard limit to 128 as well, where nothing
 * can be raised: TCP connects all the same; the shim has no fd for its
 * socket and leaves the connect to kernel TCP, said at warn (its line
 * says "transport at the hard limit: KIND"), or with a key fails it with
 * ENOBUFS (prints "refused: ...", exit 4).
 *
 * Prints "ok:" lines and "transport: KIND"; exit 1 with a "FAIL:" line,
 * 3 if the watchdog (60 s) fired.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_fdlimit";

#define LIMIT 128

static pid_t server_pid;
static int hard_mode; /* "hard": the hard limit is LIMIT too */

static void end_server(void)
{
    if (server_pid > 0)
        kill(server_pid, SIGKILL);
}

static unsigned start_server(void)
{
    int pp[2];
    SYS(pipe(pp));
    server_pid = fork();
    SYS(server_pid);
    if (server_pid == 0) {
        int l = socket(AF_INET, SOCK_STREAM, 0);
        SYS(l);
        unsigned port = bind_lo(l, 0);
        SYS(listen(l, 16));
        if (write(pp[1], &port, sizeof port) != (ssize_t)sizeof port)
            _exit(1);
        for (;;) {
            int a = accept(l, NULL, NULL);
            if (a < 0)
                _exit(1);
            char x;
            if (read(a, &x, 1) == 1 && write(a, &x, 1) != 1)
                _exit(1);
            close(a);
        }
    }
    prog_on_fail = end_server;
    close(pp[1]);
    unsigned port = 0;
    CHECK(read(pp[0], &port, sizeof port) == (ssize_t)sizeof port, "no port from the server");
    close(pp[0]);
    return port;
}

/* Opens fds until EMFILE; returns how many. */
static int fill_fds(int *fds, int max)
{
    int n = 0;
    for (; n < max; n++) {
        fds[n] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fds[n] < 0) {
            CHECK(errno == EMFILE, "open: %s, not EMFILE", strerror(errno));
            break;
        }
    }
    CHECK(n < max, "no EMFILE after %d fds", n);
    return n;
}

static void at_limit(unsigned port, int nonblock, int first, const char *what)
{
    int c = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
    SYS(c);
    int fds[LIMIT];
    int n = fill_fds(fds, LIMIT);
    CHECK(fcntl(0, F_DUPFD, 0) < 0 && errno == EMFILE, "a free fd left");
    struct sockaddr_storage ss;
    socklen_t sl = loopback(AF_INET, port, &ss);
    int r = connect(c, (struct sockaddr *)&ss, sl);
    int err = errno;
    if (nonblock && r < 0 && err == EINPROGRESS) {
        struct pollfd p = {.fd = c, .events = POLLOUT};
        CHECK(poll(&p, 1, 10000) == 1, "non-blocking connect at the fd limit: not done in 10 s");
        err = so_error(c);
        r = err ? -1 : 0;
    }
    if (r < 0 && hard_mode && err == ENOBUFS) {
        /* under the shim with a key: rudp or nothing, said (fallback.c) */
        printf("refused: %s connect at the hard limit: ENOBUFS\n", what);
        end_server(); /* its child: left running, it outlived the test */
        exit(4);
    }
    CHECK(r == 0, "%s connect with every fd in use: %s (TCP needs no new fd)", what,
          strerror(err));
    struct rlimit rl;
    SYS(getrlimit(RLIMIT_NOFILE, &rl));
    /* The shim raises the soft limit when its first engine starts (README,
     * "fds per connection"): the first connect may leave it higher. */
    CHECK(first && !hard_mode ? rl.rlim_cur >= LIMIT : rl.rlim_cur == LIMIT,
          "getrlimit after connect: %llu, not the %d set", (unsigned long long)rl.rlim_cur, LIMIT);
    if (rl.rlim_cur == LIMIT)
        CHECK(open("/dev/null", O_RDONLY) < 0 && errno == EMFILE,
              "after connect an fd under the limit is free: connect took or gave an fd number");
    if (nonblock) {
        int fl = fcntl(c, F_GETFL);
        SYS(fcntl(c, F_SETFL, fl & ~O_NONBLOCK));
    }
    CHECK(write(c, "e", 1) == 1, "write: %s", strerror(errno));
    char x;
    read_exact(c, &x, 1, 10000);
    CHECK(x == 'e', "echo: %c", x);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    SYS(setrlimit(RLIMIT_NOFILE, &(struct rlimit){LIMIT, rl.rlim_max}));
    /* at the hard limit the shim may leave it to kernel TCP (said) */
    printf("%s: %s\n", hard_mode ? "transport at the hard limit" : "transport", fd_transport(c));
    close(c);
    printf("ok: %s connect with all %d fds in use: connected, echo\n", what, LIMIT);
}

int main(int argc, char **argv)
{
    hard_mode = argc == 2 && !strcmp(argv[1], "hard");
    prog_begin(hard_mode ? 1 : argc, 60);
    struct rlimit rl;
    SYS(getrlimit(RLIMIT_NOFILE, &rl));
    if (hard_mode) { /* the hard limit too: nothing can be raised */
        unsigned port = start_server();
        rl.rlim_cur = rl.rlim_max = LIMIT;
        SYS(setrlimit(RLIMIT_NOFILE, &rl));
        at_limit(port, 0, 1, "first (blocking)");
        at_limit(port, 1, 0, "non-blocking");
        end_server();
        waitpid(server_pid, NULL, 0);
        return 0;
    }
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max <= LIMIT + 64) {
        printf("skip: hard RLIMIT_NOFILE %llu leaves no room above %d\n",
               (unsigned long long)rl.rlim_max, LIMIT);
        return 77;
    }
    unsigned port = start_server();
    rl.rlim_cur = LIMIT;
    SYS(setrlimit(RLIMIT_NOFILE, &rl));
    at_limit(port, 0, 1, "first (blocking)");
    at_limit(port, 0, 0, "second (blocking)");
    at_limit(port, 1, 0, "non-blocking");
    end_server();
    waitpid(server_pid, NULL, 0);
    return 0;
}
