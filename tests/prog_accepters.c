/*
 * prog_accepters: listeners under every readiness mechanism servers use.
 *
 * For each of epoll level-triggered, epoll edge-triggered (accepting until
 * EAGAIN), poll and select, a non-blocking listener serves 30 clients that
 * connect at once from a forked process; each client sends one byte and
 * must get it back. Then two forked processes wait on one listener with
 * EPOLLEXCLUSIVE and accept 40 clients between them: every client served,
 * none twice. Over kernel TCP and under the shim alike.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define N 30

static void die(const char *what)
{
    fprintf(stderr, "FAIL: prog_accepters: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int make_listener(struct sockaddr_in *a)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (l < 0)
        die("socket");
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(l, (struct sockaddr *)a, sizeof *a) < 0 || listen(l, 128) < 0)
        die("bind/listen");
    socklen_t len = sizeof *a;
    getsockname(l, (struct sockaddr *)a, &len);
    return l;
}

/* Forked clients: n connections at once, one byte each, echo checked. */
static pid_t clients(const struct sockaddr_in *a, int n)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    alarm(20);
    int fds[64];
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || connect(fds[i], (const struct sockaddr *)a, sizeof *a) < 0)
            die("client connect");
    }
    for (int i = 0; i < n; i++) {
        char c = (char)('a' + i % 26), r = 0;
        if (write(fds[i], &c, 1) != 1 || read(fds[i], &r, 1) != 1 || r != c)
            die("client echo");
        close(fds[i]);
    }
    _exit(0);
}

static void serve_one(int fd)
{
    char c;
    /* the client writes right after connecting: wait for the byte */
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 10000) != 1 || read(fd, &c, 1) != 1 || write(fd, &c, 1) != 1)
        die("server echo");
    close(fd);
}

static int wait_ok(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) < 0)
        return 0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void run(const char *mode)
{
    struct sockaddr_in a;
    int l = make_listener(&a);
    pid_t c = clients(&a, N);
    int served = 0;
    int et = !strcmp(mode, "epoll-et");
    int ep = epoll_create1(0);
    if (!strcmp(mode, "epoll-lt") || et) {
        struct epoll_event e = {.events = EPOLLIN | (et ? EPOLLET : 0u), .data.fd = l};
        epoll_ctl(ep, EPOLL_CTL_ADD, l, &e);
    }
    while (served < N) {
        int ready = 0;
        if (!strncmp(mode, "epoll", 5)) {
            struct epoll_event ev;
            ready = epoll_wait(ep, &ev, 1, 10000);
        } else if (!strcmp(mode, "poll")) {
            struct pollfd p = {.fd = l, .events = POLLIN};
            ready = poll(&p, 1, 10000);
        } else {
            fd_set r;
            FD_ZERO(&r);
            FD_SET(l, &r);
            struct timeval tv = {.tv_sec = 10};
            ready = select(l + 1, &r, NULL, NULL, &tv);
        }
        if (ready <= 0) {
            fprintf(stderr, "FAIL: prog_accepters: %s: no readiness after 10 s (%d served)\n",
                    mode, served);
            exit(1);
        }
        /* edge-triggered must drain; the others take what is there too */
        for (;;) {
            int fd = accept(l, NULL, NULL);
            if (fd < 0) {
                if (errno == EAGAIN)
                    break;
                die("accept");
            }
            serve_one(fd);
            served++;
            if (!et)
                break;
        }
    }
    if (!wait_ok(c)) {
        fprintf(stderr, "FAIL: prog_accepters: %s: a client failed\n", mode);
        exit(1);
    }
    close(ep);
    close(l);
    printf("ok: %s: %d clients accepted and echoed\n", mode, served);
}

static void exclusive(void)
{
    struct sockaddr_in a;
    int l = make_listener(&a);
    int pipes[2][2];
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        if (pipe(pipes[k]) < 0)
            die("pipe");
        kids[k] = fork();
        if (kids[k] == 0) {
            alarm(20);
            close(pipes[k][0]);
            int ep = epoll_create1(0);
            struct epoll_event e = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = l};
            if (epoll_ctl(ep, EPOLL_CTL_ADD, l, &e) < 0)
                die("EPOLLEXCLUSIVE");
            int served = 0;
            for (;;) {
                struct epoll_event ev;
                int n = epoll_wait(ep, &ev, 1, 1500);
                if (n == 0)
                    break; /* quiet for 1.5 s: the clients are done */
                int fd = accept(l, NULL, NULL);
                if (fd < 0)
                    continue; /* the other process took it */
                serve_one(fd);
                served++;
            }
            if (write(pipes[k][1], &served, sizeof served) != sizeof served)
                die("report");
            _exit(0);
        }
        close(pipes[k][1]);
    }
    pid_t c = clients(&a, 40);
    int ok = wait_ok(c), total = 0, each[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        if (read(pipes[k][0], &each[k], sizeof each[k]) != sizeof each[k] || !wait_ok(kids[k]))
            ok = 0;
        total += each[k];
    }
    if (!ok || total != 40) {
        fprintf(stderr, "FAIL: prog_accepters: EPOLLEXCLUSIVE: %d + %d served, want 40\n", each[0],
                each[1]);
        exit(1);
    }
    printf("ok: EPOLLEXCLUSIVE, two processes on one listener: %d + %d = 40 clients\n", each[0],
           each[1]);
}

int main(void)
{
    alarm(60);
    signal(SIGPIPE, SIG_IGN);
    run("epoll-lt");
    run("epoll-et");
    run("poll");
    run("select");
    exclusive();
    printf("PASS: prog_accepters\n");
    return 0;
}
