/*
 * prog_threads: many threads opening many connections at once.
 *
 *   prog_threads [-f] [-t THREADS] [-n CONNS] [-s BYTES]
 *
 *   -f   the echo server runs in a forked child process, which makes its own
 *        listener after the fork (default: a thread of this process, so one
 *        engine serves both ends under the shim)
 *   -t   client threads (16)          -n   connections in all (200)
 *   -s   bytes each connection sends and gets back (8192)
 *
 * The server is one thread with an epoll loop: it accepts non-blocking
 * sockets and echoes every byte.  The client threads wait at a barrier,
 * then each opens its share of the connections (blocking connect(), all
 * threads at the same moment), waits at a second barrier so every
 * connection is open at once, writes a payload unique to the connection
 * on every one of its connections, reads each echo back (poll-bounded) and
 * compares it byte for byte, waits at a third barrier, and closes.
 * Checks: every connect succeeds, every echo is exact, the server accepted
 * exactly CONNS connections and had all CONNS open at the same time, and
 * each served connection ended with a clean EOF.  Built with
 * -fsanitize=thread by `make tsan`; it must run TSan-clean.
 *
 * Raises RLIMIT_NOFILE's soft limit (an engine may hold fds per
 * connection).  Prints "ok:" lines and "transport: KIND" for one client fd
 * (tcp = a kernel TCP socket).  Exit 0 iff every check held; 1 with a
 * "FAIL:" line otherwise; 3 if the watchdog (120 s) fired.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 120
#define IO_MS 20000 /* bound on every wait for data */
#define SRV_BUF 65536

const char *prog_name = "prog_threads";
static pid_t child_pid; /* the forked server, killed if the client fails */

static void kill_child(void)
{
    if (child_pid > 0)
        kill(child_pid, SIGKILL);
}

/* --- the server ------------------------------------------------------------ */

struct srv_conn {
    int fd;
    size_t off, len; /* pending echo bytes in buf[off, len) */
    bool want_out;
    uint64_t echoed;
    char buf[SRV_BUF];
};

struct server {
    int lfd, stop_fd, ep;
    int expect;
    /* Results, read by the main thread after join. */
    int accepted, open_now, max_open, clean_eofs;
    uint64_t bytes;
};

static void srv_close(struct server *s, struct srv_conn *sc)
{
    SYS(epoll_ctl(s->ep, EPOLL_CTL_DEL, sc->fd, NULL));
    close(sc->fd);
    s->bytes += sc->echoed;
    s->open_now--;
    free(sc);
}

/* Echoes what is pending, then reads more while there is room; false when
 * the connection ended (closed here). */
static bool srv_service(struct server *s, struct srv_conn *sc)
{
    for (;;) {
        while (sc->off < sc->len) {
            ssize_t w = write(sc->fd, sc->buf + sc->off, sc->len - sc->off);
            if (w < 0 && errno == EAGAIN) {
                if (!sc->want_out) {
                    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = sc };
                    SYS(epoll_ctl(s->ep, EPOLL_CTL_MOD, sc->fd, &ev));
                    sc->want_out = true;
                }
                return true;
            }
            CHECK(w > 0, "server: write: %s", strerror(errno));
            sc->off += (size_t)w;
            sc->echoed += (uint64_t)w;
        }
        if (sc->want_out) {
            struct epoll_event ev = { .events = EPOLLIN, .data.ptr = sc };
            SYS(epoll_ctl(s->ep, EPOLL_CTL_MOD, sc->fd, &ev));
            sc->want_out = false;
        }
        ssize_t r = read(sc->fd, sc->buf, sizeof sc->buf);
        if (r < 0 && errno == EAGAIN)
            return true;
        CHECK(r >= 0, "server: read: %s", strerror(errno));
        if (r == 0) {
            s->clean_eofs++;
            srv_close(s, sc);
            return false;
        }
        sc->off = 0;
        sc->len = (size_t)r;
    }
}

static void *server_main(void *arg)
{
    struct server *s = arg;
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    SYS(epoll_ctl(s->ep, EPOLL_CTL_ADD, s->lfd, &ev));
    ev.data.ptr = &s->stop_fd;
    SYS(epoll_ctl(s->ep, EPOLL_CTL_ADD, s->stop_fd, &ev));
    bool stopping = false;
    while (!stopping || s->open_now > 0) {
        struct epoll_event evs[64];
        int n = epoll_wait(s->ep, evs, 64, IO_MS);
        if (n < 0 && errno == EINTR)
            continue;
        SYS(n);
        CHECK(n > 0, "server: nothing happened for %d ms (%d open, %d accepted)", IO_MS,
              s->open_now, s->accepted);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                for (;;) {
                    int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0 && (errno == EAGAIN || errno == EINTR))
                        break;
                    CHECK(fd >= 0, "server: accept4: %s", strerror(errno));
                    struct srv_conn *sc = calloc(1, sizeof *sc);
                    CHECK(sc, "server: out of memory");
                    sc->fd = fd;
                    struct epoll_event cev = { .events = EPOLLIN, .data.ptr = sc };
                    SYS(epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &cev));
                    s->accepted++;
                    if (++s->open_now > s->max_open)
                        s->max_open = s->open_now;
                }
            } else if (evs[i].data.ptr == &s->stop_fd) {
                stopping = true;
                SYS(epoll_ctl(s->ep, EPOLL_CTL_DEL, s->stop_fd, NULL));
            } else {
                srv_service(s, evs[i].data.ptr);
            }
        }
    }
    return NULL;
}

static void server_check(const struct server *s)
{
    printf("server: accepted %d, at most %d open at once, %d clean EOFs, %llu bytes echoed\n",
           s->accepted, s->max_open, s->clean_eofs, (unsigned long long)s->bytes);
    CHECK(s->accepted == s->expect, "server accepted %d connections, want %d", s->accepted,
          s->expect);
    CHECK(s->max_open == s->expect, "server had at most %d connections open at once, want %d",
          s->max_open, s->expect);
    CHECK(s->clean_eofs == s->expect, "server saw %d clean EOFs, want %d", s->clean_eofs,
          s->expect);
    printf("ok: server: all %d connections accepted, open at once, ended cleanly\n", s->expect);
}

/* --- the clients ----------------------------------------------------------- */

static struct {
    int threads, conns;
    size_t bytes;
    struct sockaddr_in addr;
    pthread_barrier_t start, opened, done;
    atomic_int connected, verified;
    atomic_int transport_shown;
    _Atomic double max_connect_s;
} cl;

struct client_thread {
    pthread_t tid;
    int index, first, count; /* connections [first, first + count) */
};

/* The payload of connection id: its id in text, then a pattern. */
static void payload(char *buf, size_t len, int id)
{
    int n = snprintf(buf, len, "conn %d of %d|", id, cl.conns);
    for (size_t i = (size_t)n; i < len; i++)
        buf[i] = (char)((unsigned)id * 131u + (unsigned)i * 17u);
}

static void *client_main(void *arg)
{
    struct client_thread *ct = arg;
    int *fds = calloc((size_t)ct->count, sizeof *fds);
    char *want = malloc(cl.bytes), *got = malloc(cl.bytes);
    CHECK(fds && want && got, "out of memory");

    pthread_barrier_wait(&cl.start);
    for (int i = 0; i < ct->count; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(fds[i] >= 0, "thread %d: socket: %s", ct->index, strerror(errno));
        double t0 = now_s();
        CHECK(connect(fds[i], (struct sockaddr *)&cl.addr, sizeof cl.addr) == 0,
              "thread %d: connect %d: %s", ct->index, ct->first + i, strerror(errno));
        double took = now_s() - t0, prev = atomic_load(&cl.max_connect_s);
        while (took > prev && !atomic_compare_exchange_weak(&cl.max_connect_s, &prev, took)) {
        }
        atomic_fetch_add(&cl.connected, 1);
    }
    pthread_barrier_wait(&cl.opened);
    if (atomic_exchange(&cl.transport_shown, 1) == 0)
        printf("transport: %s (client)\n", fd_transport(fds[0]));

    for (int i = 0; i < ct->count; i++) {
        payload(want, cl.bytes, ct->first + i);
        size_t done = 0;
        while (done < cl.bytes) {
            ssize_t w = write(fds[i], want + done, cl.bytes - done);
            CHECK(w > 0, "thread %d: write: %s", ct->index, strerror(errno));
            done += (size_t)w;
        }
    }
    for (int i = 0; i < ct->count; i++) {
        int id = ct->first + i;
        payload(want, cl.bytes, id);
        size_t have = 0;
        while (have < cl.bytes) {
            struct pollfd p = { .fd = fds[i], .events = POLLIN };
            int n = poll(&p, 1, IO_MS);
            CHECK(n == 1, "thread %d: conn %d: no echo within %d ms (%zu of %zu bytes)",
                  ct->index, id, IO_MS, have, cl.bytes);
            ssize_t r = read(fds[i], got + have, cl.bytes - have);
            CHECK(r > 0, "thread %d: conn %d: read: %s", ct->index, id,
                  r == 0 ? "EOF" : strerror(errno));
            have += (size_t)r;
        }
        CHECK(memcmp(got, want, cl.bytes) == 0, "thread %d: conn %d: echo differs (got "
              "\"%.20s\")", ct->index, id, got);
        atomic_fetch_add(&cl.verified, 1);
    }
    pthread_barrier_wait(&cl.done);
    for (int i = 0; i < ct->count; i++)
        close(fds[i]);
    free(fds);
    free(want);
    free(got);
    return NULL;
}

static int make_listener(struct sockaddr_in *addr)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    SYS(l);
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    SYS(bind(l, (struct sockaddr *)addr, sizeof *addr));
    SYS(listen(l, 1024));
    socklen_t len = sizeof *addr;
    SYS(getsockname(l, (struct sockaddr *)addr, &len));
    return l;
}

static void usage(void)
{
    fprintf(stderr, "usage: prog_threads [-f] [-t THREADS] [-n CONNS] [-s BYTES]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    bool fork_server = false;
    int opt;
    cl.threads = 16;
    cl.conns = 200;
    cl.bytes = 8192;
    while ((opt = getopt(argc, argv, "ft:n:s:")) != -1) {
        switch (opt) {
        case 'f': fork_server = true; break;
        case 't': cl.threads = atoi(optarg); break;
        case 'n': cl.conns = atoi(optarg); break;
        case 's': cl.bytes = (size_t)atol(optarg); break;
        default: usage();
        }
    }
    if (optind != argc || cl.threads < 1 || cl.conns < cl.threads || cl.bytes < 32)
        usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    watchdog(WATCHDOG_S);
    printf("RLIMIT_NOFILE soft limit %lu\n", raise_fd_limit());

    struct server srv = { .expect = cl.conns };
    /* The stop signal: an eventfd in-process, a pipe's EOF across fork.
     * A forked server makes its own listener (its own engine under the
     * shim) and tells us the port through a pipe. */
    int stop_pipe[2] = { -1, -1 }, port_pipe[2] = { -1, -1 };
    pthread_t srv_tid;
    if (fork_server) {
        SYS(pipe2(stop_pipe, O_CLOEXEC));
        SYS(pipe2(port_pipe, O_CLOEXEC));
        fflush(stdout);
        pid_t pid = fork();
        SYS(pid);
        if (pid == 0) {
            prog_name = "prog_threads(server)";
            watchdog(WATCHDOG_S); /* alarms do not survive fork */
            close(stop_pipe[1]);
            close(port_pipe[0]);
            srv.lfd = make_listener(&cl.addr);
            srv.stop_fd = stop_pipe[0];
            srv.ep = epoll_create1(EPOLL_CLOEXEC);
            SYS(srv.ep);
            CHECK(write(port_pipe[1], &cl.addr, sizeof cl.addr) == (ssize_t)sizeof cl.addr,
                  "port pipe: %s", strerror(errno));
            close(port_pipe[1]);
            server_main(&srv);
            server_check(&srv);
            exit(0);
        }
        prog_on_fail = kill_child;
        child_pid = pid;
        close(stop_pipe[0]);
        close(port_pipe[1]);
        CHECK(read(port_pipe[0], &cl.addr, sizeof cl.addr) == (ssize_t)sizeof cl.addr,
              "the server process did not say its port");
        close(port_pipe[0]);
    } else {
        srv.lfd = make_listener(&cl.addr);
        srv.stop_fd = eventfd(0, EFD_CLOEXEC);
        SYS(srv.stop_fd);
        srv.ep = epoll_create1(EPOLL_CLOEXEC);
        SYS(srv.ep);
        CHECK(pthread_create(&srv_tid, NULL, server_main, &srv) == 0, "pthread_create");
    }
    printf("server %s on 127.0.0.1:%u; %d threads, %d connections, %zu bytes each\n",
           fork_server ? "in a child process" : "in a thread", ntohs(cl.addr.sin_port),
           cl.threads, cl.conns, cl.bytes);

    pthread_barrier_init(&cl.start, NULL, (unsigned)cl.threads);
    pthread_barrier_init(&cl.opened, NULL, (unsigned)cl.threads);
    pthread_barrier_init(&cl.done, NULL, (unsigned)cl.threads);
    struct client_thread *cts = calloc((size_t)cl.threads, sizeof *cts);
    CHECK(cts, "out of memory");
    double t0 = now_s();
    for (int i = 0, first = 0; i < cl.threads; i++) {
        cts[i].index = i;
        cts[i].first = first;
        cts[i].count = cl.conns / cl.threads + (i < cl.conns % cl.threads);
        first += cts[i].count;
        CHECK(pthread_create(&cts[i].tid, NULL, client_main, &cts[i]) == 0, "pthread_create");
    }
    for (int i = 0; i < cl.threads; i++)
        pthread_join(cts[i].tid, NULL);
    double took = now_s() - t0;
    CHECK(atomic_load(&cl.connected) == cl.conns, "%d connected, want %d",
          atomic_load(&cl.connected), cl.conns);
    CHECK(atomic_load(&cl.verified) == cl.conns, "%d echoes verified, want %d",
          atomic_load(&cl.verified), cl.conns);
    printf("ok: %d threads opened %d connections at once (slowest connect %.1f ms), every "
           "echo exact, in %.2f s\n", cl.threads, cl.conns, atomic_load(&cl.max_connect_s) * 1e3,
           took);

    if (fork_server) {
        close(stop_pipe[1]);
        int st;
        CHECK(waitpid(child_pid, &st, 0) == child_pid, "waitpid: %s", strerror(errno));
        child_pid = 0;
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the server process failed (0x%x)", st);
    } else {
        uint64_t one = 1;
        CHECK(write(srv.stop_fd, &one, sizeof one) == (ssize_t)sizeof one, "eventfd write");
        pthread_join(srv_tid, NULL);
        server_check(&srv);
        close(srv.lfd);
        close(srv.ep);
        close(srv.stop_fd);
    }
    pthread_barrier_destroy(&cl.start);
    pthread_barrier_destroy(&cl.opened);
    pthread_barrier_destroy(&cl.done);
    free(cts);
    printf("PASS: %s\n", prog_name);
    return 0;
}
