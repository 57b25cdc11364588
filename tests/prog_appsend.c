/*
 * prog_appsend: the app-thread send path (shim/engine/appsend.c) under
 * concurrency, checked by content and order; over kernel TCP the same
 * program must pass unchanged.
 *
 * Three kinds of connection to an echo/check server (a thread of this
 * process, or with -f a forked child: an engine per process):
 *   - ping-pong: 4 threads, a connection each, 400 requests of 1-64 bytes
 *     through write, send, writev, sendto and sendmsg in turn, each echoed
 *     and compared; now and then a pause, so the engine is asleep when the
 *     next request is written (the path's case);
 *   - shared: 6 threads write 400 records of 32 bytes each, at once, to one
 *     connection; the server checks every record whole (one write is one
 *     record: never interleaved with another's) and each thread's records
 *     in order;
 *   - mixed: one thread writes a numbered byte stream in small (1-100
 *     bytes, app-thread-sized) and large (20-40 KB, through the bridge)
 *     pieces in turn; the server checks every byte in order: a small write
 *     never passes a large one written before it.
 * Then, on one more connection, the edges TCP has (found by a review):
 * a write from a bad pointer fails with EFAULT (not a fault); a SIGALRM
 * handler that send()s on the connection while the main thread keeps
 * calling setsockopt() neither hangs nor loses a byte; after
 * shutdown(SHUT_WR) a send fails with EPIPE, and the peer reads exactly
 * what was written before, then EOF.
 * Prints "transport:" for each connection (the test checks none is kernel
 * TCP under the shim) and "ok".
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_appsend";

#define PP_THREADS 4
#define PP_ROUNDS 400
#define SH_THREADS 6
#define SH_RECORDS 400
#define REC 32
#define MIX_ROUNDS 120
#define NCONN (PP_THREADS + 3)

enum { K_PINGPONG = 'P', K_SHARED = 'S', K_MIXED = 'M', K_EDGE = 'E' };

static unsigned port;

static uint8_t stream_byte(uint64_t i)
{
    return (uint8_t)(i * 2654435761u >> 13);
}

/* One send of len bytes by the call numbered `how` (0-4); all of it. */
static void send_by(int fd, const uint8_t *p, size_t len, unsigned how)
{
    while (len) {
        ssize_t w;
        switch (how % 5) {
        case 0: w = write(fd, p, len); break;
        case 1: w = send(fd, p, len, MSG_NOSIGNAL); break;
        case 2: {
            size_t h = len / 2;
            struct iovec v[2] = {{(void *)p, h}, {(void *)(p + h), len - h}};
            w = writev(fd, v, 2);
            break;
        }
        case 3: w = sendto(fd, p, len, 0, NULL, 0); break;
        default: {
            struct iovec v = {(void *)p, len};
            struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1};
            w = sendmsg(fd, &m, MSG_NOSIGNAL);
            break;
        }
        }
        if (w < 0 && errno == EINTR)
            continue;
        CHECK(w > 0, "send (call %u) of %zu bytes: %s", how % 5, len, strerror(errno));
        p += w;
        len -= (size_t)w;
    }
}

/* ---- server ---- */

static void *serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    uint8_t kind;
    read_exact(fd, &kind, 1, 20000);
    if (kind == K_PINGPONG) {
        for (int r = 0; r < PP_ROUNDS; r++) {
            uint8_t len, buf[64];
            read_exact(fd, &len, 1, 20000);
            CHECK(len >= 1 && len <= 64, "ping-pong: request length %u", len);
            read_exact(fd, buf, len, 20000);
            write_exact(fd, buf, len);
        }
    } else if (kind == K_SHARED) {
        uint32_t next[SH_THREADS] = {0};
        for (int i = 0; i < SH_THREADS * SH_RECORDS; i++) {
            uint8_t rec[REC];
            read_exact(fd, rec, REC, 20000);
            uint32_t t, seq;
            memcpy(&t, rec, 4);
            memcpy(&seq, rec + 4, 4);
            CHECK(t < SH_THREADS, "shared: record %d names thread %u: records interleaved", i, t);
            CHECK(seq == next[t], "shared: thread %u's record %u where %u was next", t, seq,
                  next[t]);
            for (int k = 8; k < REC; k++)
                CHECK(rec[k] == (uint8_t)(t * 31 + seq + (unsigned)k),
                      "shared: record %u of thread %u damaged at byte %d: interleaved", seq, t, k);
            next[t]++;
        }
        write_exact(fd, "ok", 2);
    } else if (kind == K_MIXED) {
        uint64_t total, at = 0;
        read_exact(fd, &total, sizeof total, 20000);
        uint8_t buf[65536];
        while (at < total) {
            size_t want = total - at < sizeof buf ? (size_t)(total - at) : sizeof buf;
            ssize_t r = read(fd, buf, want);
            if (r < 0 && errno == EINTR)
                continue;
            CHECK(r > 0, "mixed: read at byte %llu of %llu: %s", (unsigned long long)at,
                  (unsigned long long)total, r == 0 ? "EOF" : strerror(errno));
            for (ssize_t k = 0; k < r; k++)
                CHECK(buf[k] == stream_byte(at + (uint64_t)k),
                      "mixed: byte %llu out of order", (unsigned long long)(at + (uint64_t)k));
            at += (uint64_t)r;
        }
        write_exact(fd, &at, sizeof at);
    } else if (kind == K_EDGE) {
        uint64_t at = 0;
        uint8_t buf[4096];
        for (;;) {
            ssize_t r = read(fd, buf, sizeof buf);
            if (r < 0 && errno == EINTR)
                continue;
            CHECK(r >= 0, "edge: read: %s", strerror(errno));
            if (r == 0)
                break;
            at += (uint64_t)r;
        }
        write_exact(fd, &at, sizeof at);
    } else {
        CHECK(0, "unknown connection kind %u", kind);
    }
    close(fd);
    return NULL;
}

static void server(int lfd)
{
    pthread_t th[NCONN];
    for (int i = 0; i < NCONN; i++) {
        int fd = accept(lfd, NULL, NULL);
        SYS(fd);
        CHECK(pthread_create(&th[i], NULL, serve, (void *)(intptr_t)fd) == 0, "pthread_create");
    }
    for (int i = 0; i < NCONN; i++)
        pthread_join(th[i], NULL);
    close(lfd);
}

static void *server_thread(void *arg)
{
    /* edges()' SIGALRM is the main thread's: delivered to this thread (or
     * the serve threads it starts, which inherit the mask), its handler
     * would race with the main thread's on edge_sent (TSan saw it) */
    sigset_t alrm;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &alrm, NULL);
    server((int)(intptr_t)arg);
    return NULL;
}

/* ---- clients ---- */

static int dial(uint8_t kind)
{
    int fd = connect_lo(port);
    int one = 1;
    SYS(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
    printf("transport: %s\n", fd_transport(fd));
    write_exact(fd, &kind, 1);
    return fd;
}

static void *pingpong(void *arg)
{
    unsigned id = (unsigned)(intptr_t)arg;
    int fd = dial(K_PINGPONG);
    for (unsigned r = 0; r < PP_ROUNDS; r++) {
        uint8_t msg[65], back[64];
        uint8_t len = (uint8_t)(1 + (r * 7 + id) % 64);
        msg[0] = len;
        for (unsigned k = 0; k < len; k++)
            msg[1 + k] = (uint8_t)(id * 41 + r + k);
        if (r % 16 == 15)
            usleep(500); /* the engines asleep: the next request is the thread's own */
        send_by(fd, msg, 1u + len, r + id);
        read_exact(fd, back, len, 20000);
        CHECK(memcmp(back, msg + 1, len) == 0, "ping-pong %u: echo %u differs", id, r);
    }
    close(fd);
    return NULL;
}

static int shared_fd;

static void *shared_writer(void *arg)
{
    uint32_t t = (uint32_t)(intptr_t)arg;
    for (uint32_t seq = 0; seq < SH_RECORDS; seq++) {
        uint8_t rec[REC];
        memcpy(rec, &t, 4);
        memcpy(rec + 4, &seq, 4);
        for (int k = 8; k < REC; k++)
            rec[k] = (uint8_t)(t * 31 + seq + (unsigned)k);
        /* one call per record: a record is never split (writev's two
         * halves are one call too) */
        ssize_t w;
        do
            w = t % 2 ? send(shared_fd, rec, REC, MSG_NOSIGNAL) : write(shared_fd, rec, REC);
        while (w < 0 && errno == EINTR);
        CHECK(w == REC, "shared: thread %u wrote %zd of %d bytes: %s", t, w, REC,
              strerror(errno));
        if (seq % 50 == 49)
            usleep(300);
    }
    return NULL;
}

static void *shared(void *arg)
{
    (void)arg;
    shared_fd = dial(K_SHARED);
    pthread_t th[SH_THREADS];
    for (int t = 0; t < SH_THREADS; t++)
        CHECK(pthread_create(&th[t], NULL, shared_writer, (void *)(intptr_t)t) == 0,
              "pthread_create");
    for (int t = 0; t < SH_THREADS; t++)
        pthread_join(th[t], NULL);
    char ok[2];
    read_exact(shared_fd, ok, 2, 20000);
    CHECK(memcmp(ok, "ok", 2) == 0, "shared: server's answer");
    close(shared_fd);
    return NULL;
}

static void *mixed(void *arg)
{
    (void)arg;
    int fd = dial(K_MIXED);
    uint64_t total = 0;
    for (unsigned r = 0; r < MIX_ROUNDS; r++)
        total += 1 + (r * 13) % 100 + 20000 + (r * 7919) % 20000;
    write_exact(fd, &total, sizeof total);
    static uint8_t buf[40001];
    uint64_t at = 0;
    for (unsigned r = 0; r < MIX_ROUNDS; r++) {
        size_t small = 1 + (r * 13) % 100, big = 20000 + (r * 7919) % 20000;
        for (size_t k = 0; k < big; k++)
            buf[k] = stream_byte(at + k);
        send_by(fd, buf, big, r); /* through the bridge: more than the path takes */
        at += big;
        for (size_t k = 0; k < small; k++)
            buf[k] = stream_byte(at + k);
        send_by(fd, buf, small, r + 1); /* the thread's own, if the engine sleeps */
        at += small;
        if (r % 8 == 7)
            usleep(500);
    }
    uint64_t got;
    read_exact(fd, &got, sizeof got, 30000);
    CHECK(got == total, "mixed: the server read %llu of %llu bytes", (unsigned long long)got,
          (unsigned long long)total);
    close(fd);
    return NULL;
}

static int edge_fd;
static volatile sig_atomic_t edge_sent;

static void on_alarm(int sig)
{
    (void)sig;
    int saved = errno;
    if (send(edge_fd, "s", 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1)
        edge_sent++;
    errno = saved;
}

static void edges(void)
{
    edge_fd = dial(K_EDGE); /* its kind byte is not counted by the server */
    uint64_t wrote = 0;
    write_exact(edge_fd, "hello", 5);
    wrote += 5;
    usleep(100000); /* the engines asleep */
    static volatile uintptr_t bad = 16; /* unmapped, unknown to the compiler */
    ssize_t w = write(edge_fd, (const void *)bad, 100);
    CHECK(w < 0 && errno == EFAULT, "write from a bad pointer: %zd (%s), want EFAULT", w,
          w < 0 ? strerror(errno) : "no error");

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    SYS(sigaction(SIGALRM, &sa, NULL));
    struct itimerval it = {{0, 1000}, {0, 1000}};
    SYS(setitimer(ITIMER_REAL, &it, NULL));
    double until = now_s() + 0.3;
    int one = 1;
    while (now_s() < until) /* shim calls under its locks, interrupted */
        setsockopt(edge_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct itimerval off = {{0, 0}, {0, 0}};
    SYS(setitimer(ITIMER_REAL, &off, NULL));
    sa.sa_handler = SIG_IGN;
    SYS(sigaction(SIGALRM, &sa, NULL));
    wrote += (uint64_t)edge_sent;

    SYS(shutdown(edge_fd, SHUT_WR));
    w = send(edge_fd, "after", 5, MSG_NOSIGNAL);
    CHECK(w < 0 && errno == EPIPE, "send after shutdown(SHUT_WR): %zd (%s), want EPIPE", w,
          w < 0 ? strerror(errno) : "no error");
    uint64_t got;
    read_exact(edge_fd, &got, sizeof got, 20000);
    CHECK(got == wrote, "edge: the peer read %llu bytes, %llu were written before the shutdown",
          (unsigned long long)got, (unsigned long long)wrote);
    printf("edges: EFAULT, %d sends from a signal handler, EPIPE after shutdown\n",
           (int)edge_sent);
    close(edge_fd);
}

/* The listener on a port of the kernel's choice. */
static int listen_lo(void)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    SYS(lfd);
    int one = 1;
    SYS(setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
    port = bind_lo(lfd, 0);
    SYS(listen(lfd, 64));
    return lfd;
}

int main(int argc, char **argv)
{
    int forked = argc > 1 && strcmp(argv[1], "-f") == 0;
    prog_begin(forked ? 1 : argc, 120);
    pid_t child = -1;
    pthread_t srv;
    if (forked) {
        /* The fork comes first, before any thread (ThreadSanitizer cannot
         * follow a multi-threaded fork): the child listens and says where. */
        int p[2];
        SYS(pipe(p));
        child = fork();
        SYS(child);
        if (child == 0) {
            close(p[0]);
            int lfd = listen_lo();
            write_exact(p[1], &port, sizeof port);
            close(p[1]);
            server(lfd);
            _exit(0);
        }
        close(p[1]);
        read_exact(p[0], &port, sizeof port, 20000);
        close(p[0]);
    } else {
        int lfd = listen_lo();
        CHECK(pthread_create(&srv, NULL, server_thread, (void *)(intptr_t)lfd) == 0,
              "pthread_create");
    }
    pthread_t th[NCONN];
    for (int i = 0; i < PP_THREADS; i++)
        CHECK(pthread_create(&th[i], NULL, pingpong, (void *)(intptr_t)i) == 0, "pthread_create");
    CHECK(pthread_create(&th[PP_THREADS], NULL, shared, NULL) == 0, "pthread_create");
    CHECK(pthread_create(&th[PP_THREADS + 1], NULL, mixed, NULL) == 0, "pthread_create");
    for (int i = 0; i < NCONN - 1; i++)
        pthread_join(th[i], NULL);
    edges();
    if (forked) {
        int st;
        SYS(waitpid(child, &st, 0));
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "server child: status %#x", st);
    } else {
        pthread_join(srv, NULL);
    }
    printf("ok\n");
    return 0;
}
