/*
 * prog_many: many concurrent connections in one process, held idle.
 *
 *   prog_many server N IDLE_S   listens on 127.0.0.1 (port printed as
 *                               "port P"), accepts N connections, answers
 *                               one byte on each, then holds them all IDLE_S
 *                               seconds and reports what they cost; exits
 *                               when every peer has closed.
 *   prog_many client PORT N     opens N connections at once (non-blocking,
 *                               epoll), sends one byte on each and reads the
 *                               answer ("client: N round trips in T ms", T
 *                               from the first connect to the last answer;
 *                               "client: CPU C ms and S context switches
 *                               over the round trips", every thread's);
 *                               then holds them until stdin closes.
 *   prog_many pairs N IDLE_S    both ends in this one process: N connections
 *                               to its own listener, all open at once, held
 *                               idle IDLE_S seconds, then one byte each way
 *                               on every pair ("pairs: N round trips after
 *                               IDLE_S s idle in T ms"); then exits without
 *                               closing any (the program's end closes them).
 *
 * The server prints
 *   answered N connections (all open at once)
 *   server: CPU C ms and S context switches from listen to the last answer
 *   (every thread's)
 *   idle: N connections, memory per connection B bytes (RSS +R KiB since
 *   before listen), CPU over IDLE_S s: C ms
 * Memory is the process's RSS growth from before listen() to after the
 * last answer, so under the shim it includes the engine's per-connection
 * state (connection, buffers held, bridge) and the kernel does not count.
 * Runs over kernel TCP too (RUDP_NO_SHIM=1 in the test), for comparison.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_many";

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

static double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* The process's context switches so far, every thread's, voluntary or not. */
static long switches(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_nvcsw + ru.ru_nivcsw;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    SYS(getrlimit(RLIMIT_NOFILE, &rl));
    rl.rlim_cur = rl.rlim_max;
    SYS(setrlimit(RLIMIT_NOFILE, &rl));
}

/* A non-blocking listener on 127.0.0.1, a free port; *ss its address. */
static int listener(struct sockaddr_storage *ss, socklen_t *sl)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    SYS(l);
    *sl = loopback(AF_INET, 0, ss);
    SYS(bind(l, (struct sockaddr *)ss, *sl));
    SYS(listen(l, 4096));
    *sl = sizeof *ss;
    SYS(getsockname(l, (struct sockaddr *)ss, sl));
    return l;
}

static int run_server(int n, int idle_s)
{
    long rss0 = rss_kb();
    struct sockaddr_storage ss;
    socklen_t sl;
    int l = listener(&ss, &sl);
    printf("port %u\n", port_of(&ss));
    int ep = epoll_create1(0);
    SYS(ep);
    struct epoll_event e = {.events = EPOLLIN, .data.fd = l};
    SYS(epoll_ctl(ep, EPOLL_CTL_ADD, l, &e));
    int *fds = calloc((size_t)n, sizeof *fds);
    CHECK(fds, "out of memory");
    int accepted = 0, answered = 0, closed = 0;
    struct epoll_event evs[256];
    double cpu0 = cpu_ms();
    long cs0 = switches();
    while (answered < n) {
        int k = epoll_wait(ep, evs, 256, 60000);
        CHECK(k > 0, "no progress for 60 s: %d accepted, %d answered", accepted, answered);
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            if (fd == l) {
                int c;
                while ((c = accept4(l, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    CHECK(accepted < n, "more than %d connections", n);
                    fds[accepted++] = c;
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
                    SYS(epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce));
                }
                CHECK(errno == EAGAIN || errno == ECONNABORTED, "accept4: %s", strerror(errno));
                continue;
            }
            char b;
            ssize_t r = read(fd, &b, 1);
            if (r < 0 && errno == EAGAIN)
                continue;
            CHECK(r == 1, "read: %zd (%s) before the answer", r, r < 0 ? strerror(errno) : "EOF");
            CHECK(write(fd, &b, 1) == 1, "write: %s", strerror(errno));
            SYS(epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL));
            answered++;
        }
    }
    printf("answered %d connections (all open at once)\n", answered);
    /* the process's CPU (every thread: the shim's engines too) for it */
    printf("server: CPU %.0f ms and %ld context switches from listen to the last answer\n",
           cpu_ms() - cpu0, switches() - cs0);
    long rss1 = rss_kb();
    double c0 = cpu_ms();
    sleep((unsigned)idle_s);
    double c1 = cpu_ms();
    printf("idle: %d connections, memory per connection %ld bytes (RSS +%ld KiB since before "
           "listen), CPU over %d s: %.0f ms\n",
           n, (rss1 - rss0) * 1024 / n, rss1 - rss0, idle_s, c1 - c0);
    /* Then until every peer closes. */
    for (int i = 0; i < n; i++) {
        struct epoll_event ce = {.events = EPOLLIN, .data.fd = fds[i]};
        SYS(epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ce));
    }
    while (closed < n) {
        int k = epoll_wait(ep, evs, 256, 120000);
        CHECK(k > 0, "peers did not close within 120 s: %d of %d closed", closed, n);
        for (int i = 0; i < k; i++) {
            char b;
            ssize_t r = read(evs[i].data.fd, &b, 1);
            CHECK(r <= 0, "unexpected data");
            if (r < 0 && errno == EAGAIN)
                continue;
            SYS(epoll_ctl(ep, EPOLL_CTL_DEL, evs[i].data.fd, NULL));
            close(evs[i].data.fd);
            closed++;
        }
    }
    printf("all %d peers closed\n", n);
    return 0;
}

static int run_client(unsigned port, int n)
{
    int ep = epoll_create1(0);
    SYS(ep);
    int *fds = calloc((size_t)n, sizeof *fds);
    char *state = calloc((size_t)n, 1); /* 0 connecting, 1 sent, 2 answered */
    CHECK(fds && state, "out of memory");
    struct sockaddr_storage ss;
    socklen_t sl = loopback(AF_INET, port, &ss);
    double t0 = now_s(), cpu0 = cpu_ms();
    long cs0 = switches();
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        SYS(fds[i]);
        int r = connect(fds[i], (struct sockaddr *)&ss, sl);
        CHECK(r == 0 || errno == EINPROGRESS, "connect %d: %s", i, strerror(errno));
        struct epoll_event e = {.events = EPOLLOUT | EPOLLIN, .data.u32 = (uint32_t)i};
        SYS(epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e));
    }
    double t_issued = now_s();
    int done = 0;
    struct epoll_event evs[256];
    while (done < n) {
        int k = epoll_wait(ep, evs, 256, 60000);
        CHECK(k > 0, "no progress for 60 s: %d of %d answered", done, n);
        for (int j = 0; j < k; j++) {
            int i = (int)evs[j].data.u32;
            if (state[i] == 0 && (evs[j].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
                int err = so_error(fds[i]);
                CHECK(err == 0, "connection %d: %s", i, strerror(err));
                CHECK(write(fds[i], "x", 1) == 1, "write: %s", strerror(errno));
                state[i] = 1;
                struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
                SYS(epoll_ctl(ep, EPOLL_CTL_MOD, fds[i], &e));
                continue;
            }
            if (state[i] == 1 && (evs[j].events & EPOLLIN)) {
                char b;
                ssize_t r = read(fds[i], &b, 1);
                if (r < 0 && errno == EAGAIN)
                    continue;
                CHECK(r == 1 && b == 'x', "connection %d: answer %zd", i, r);
                state[i] = 2;
                SYS(epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL));
                done++;
            }
        }
    }
    printf("client: %d round trips in %.0f ms\n", done, (now_s() - t0) * 1e3);
    /* how much of it the connect() calls took, one after another */
    printf("client: %d connects issued in %.0f ms\n", n, (t_issued - t0) * 1e3);
    /* the process's CPU (every thread: the shim's engines too) for it */
    printf("client: CPU %.0f ms and %ld context switches over the round trips\n",
           cpu_ms() - cpu0, switches() - cs0);
    /* Each connected socket's send buffer as the kernel holds it (a raw
     * system call, past any interposer), after the timed part: a normal
     * size once connected, as TCP's tcp_wmem start (16 KiB). Under the
     * shim the app's end is held small while connecting and given back
     * once the handshake is done (appfd.c): 3,500 times at once here. */
    for (int i = 0; i < n; i++) {
        int sb = 0;
        socklen_t sbl = sizeof sb;
        SYS(syscall(SYS_getsockopt, fds[i], SOL_SOCKET, SO_SNDBUF, &sb, &sbl));
        CHECK(sb >= 16384, "connection %d: send buffer %d bytes once connected, want >= 16384",
              i, sb);
    }
    char b;
    while (read(0, &b, 1) > 0)
        ;
    for (int i = 0; i < n; i++)
        close(fds[i]);
    return 0;
}

/* Both ends in one process: with the shim, one busy engine serves the N
 * clients and the N servers at once (issue 30: a busy engine's late
 * answers must not make its own clients move). */
static int run_pairs(int n, int idle_s)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int l = listener(&ss, &sl);
    int ep = epoll_create1(0);
    SYS(ep);
    /* data.u32: client i is i, server j is n + j, the listener 2n */
    struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)(2 * n)};
    SYS(epoll_ctl(ep, EPOLL_CTL_ADD, l, &e));
    int *fds = calloc((size_t)(2 * n), sizeof *fds);
    CHECK(fds, "out of memory");
    /* Opened 64 at a time, each batch answered before the next: every
     * connection starts with the round trip of a quiet engine (a small
     * probe timeout), as connections opened over time would. */
    int connected = 0, accepted = 0;
    struct epoll_event evs[256];
    for (int b0 = 0; b0 < n; b0 += 64) {
        int b1 = b0 + 64 < n ? b0 + 64 : n;
        for (int i = b0; i < b1; i++) {
            fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            SYS(fds[i]);
            int r = connect(fds[i], (struct sockaddr *)&ss, sl);
            CHECK(r == 0 || errno == EINPROGRESS, "connect %d: %s", i, strerror(errno));
            struct epoll_event ce = {.events = EPOLLOUT, .data.u32 = (uint32_t)i};
            SYS(epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ce));
        }
        while (connected < b1 || accepted < b1) {
            int k = epoll_wait(ep, evs, 256, 60000);
            CHECK(k > 0, "no progress for 60 s: %d connected, %d accepted", connected, accepted);
            for (int j = 0; j < k; j++) {
                int i = (int)evs[j].data.u32;
                if (i == 2 * n) {
                    int c;
                    while ((c = accept4(l, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                        CHECK(accepted < n, "more than %d connections", n);
                        fds[n + accepted++] = c;
                    }
                    CHECK(errno == EAGAIN || errno == ECONNABORTED, "accept4: %s",
                          strerror(errno));
                    continue;
                }
                int err = so_error(fds[i]);
                CHECK(err == 0, "connection %d: %s", i, strerror(err));
                SYS(epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL));
                connected++;
            }
        }
    }
    printf("pairs: %d connections open\n", n);
    sleep((unsigned)idle_s);
    double t0 = now_s();
    /* one byte each way: every client writes, every server answers what
     * it reads, every client reads the answer */
    for (int i = 0; i < n; i++) {
        CHECK(write(fds[i], "x", 1) == 1, "write %d: %s", i, strerror(errno));
        struct epoll_event ce = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        SYS(epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ce));
        ce.data.u32 = (uint32_t)(n + i);
        SYS(epoll_ctl(ep, EPOLL_CTL_ADD, fds[n + i], &ce));
    }
    int done = 0;
    while (done < n) {
        int k = epoll_wait(ep, evs, 256, 60000);
        CHECK(k > 0, "no progress for 60 s: %d of %d round trips", done, n);
        for (int j = 0; j < k; j++) {
            int i = (int)evs[j].data.u32;
            char b;
            ssize_t r = read(fds[i], &b, 1);
            if (r < 0 && errno == EAGAIN)
                continue;
            CHECK(r == 1 && b == 'x', "%s %d: read %zd (%s)", i < n ? "client" : "server",
                  i % n, r, r < 0 ? strerror(errno) : "EOF or wrong byte");
            SYS(epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL));
            if (i >= n)
                CHECK(write(fds[i], "x", 1) == 1, "write: %s", strerror(errno));
            else
                done++;
        }
    }
    printf("pairs: %d round trips after %d s idle in %.0f ms\n", done, idle_s,
           (now_s() - t0) * 1e3);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    watchdog(600);
    raise_nofile();
    if (argc == 4 && strcmp(argv[1], "server") == 0)
        return run_server(atoi(argv[2]), atoi(argv[3]));
    if (argc == 4 && strcmp(argv[1], "client") == 0)
        return run_client((unsigned)atoi(argv[2]), atoi(argv[3]));
    if (argc == 4 && strcmp(argv[1], "pairs") == 0)
        return run_pairs(atoi(argv[2]), atoi(argv[3]));
    fprintf(stderr, "usage: prog_many server N IDLE_S | client PORT N | pairs N IDLE_S\n");
    return 2;
}
