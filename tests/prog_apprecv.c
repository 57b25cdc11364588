/*
 * prog_apprecv: a blocking reader as Linux TCP serves it, whatever leaves
 * its read: the cases the app thread's receive (RUDP_APP_RECV,
 * shim/engine/apprecv.c) must survive, where the reading thread itself
 * waits on the connection's UDP socket instead of the engine.
 *
 *   prog_apprecv             run every check below; exit 0 iff all hold
 *
 * An echo server runs in a forked child (a thread per connection). Then:
 *   - pingpong: 2,000 one-byte echoes with blocking write() and read();
 *   - restart: a signal whose handler has SA_RESTART, sent while a thread
 *     is blocked in read(): the read goes on and returns the byte echoed
 *     after the handler ran;
 *   - lowat: SO_RCVLOWAT 4 with one byte queued: a blocking read() does
 *     not return it alone, and returns at least 4 once 8 more came;
 *   - rxmode: the same mark set, after reads that waited, by this process,
 *     a forked child, an image without the shim that inherited the
 *     socket and one that got it by SCM_RIGHTS; each time a reader blocked
 *     with nothing queued keeps it: one byte echoed stays queued;
 *   - eintr: the same handler without SA_RESTART: read() fails with EINTR;
 *   - longjmp: a handler that siglongjmp()s out of a blocked read(); then
 *     100 bytes echoed to nobody reading are delivered all the same:
 *     FIONREAD shows them (no call of ours reads) within 5 s;
 *   - cancel: pthread_cancel() of a thread blocked in read(), then the
 *     same;
 *   - fork: while a thread runs 3,000 echoes, 30 fork()s; each child makes
 *     a connection of its own and runs 20 echoes (not with
 *     PROG_APPRECV_NOFORK=1: make tsan, whose runtime cannot follow such
 *     children);
 *   - pollpong: 2,000 echoes, each read after poll() on the socket and a
 *     pipe that stays empty (curl's and nc's shape): poll says 1, POLLIN
 *     on the socket alone; and 200 more through ppoll() with a mask;
 *   - polleintr: a thread blocked in poll() on the socket gets a signal
 *     whose handler has SA_RESTART: poll() fails with EINTR all the same
 *     (it is never restarted, man 7 signal); ppoll() whose mask holds the
 *     signal back is not interrupted and returns the byte's POLLIN; a
 *     poll() of 100 ms with nothing coming returns 0, not before 100 ms;
 *   - epollpong: 2,000 echoes, each read after epoll_wait() on a set of
 *     the socket and an empty pipe (an event loop's shape): one event,
 *     EPOLLIN with the socket's data; 200 more through epoll_pwait2() with
 *     a mask; then a thread blocked in epoll_wait() gets the SA_RESTART
 *     signal: EINTR; and epoll_wait(100 ms) with nothing says 0, not
 *     before 100 ms;
 *   - selectpong: 1,000 echoes, each read after select() on the socket
 *     and an empty pipe (1, the socket's bit alone, the time left in the
 *     timeval below what it held), 200 after pselect() with a mask; a
 *     select() of 100 ms with nothing says 0, not before 100 ms, and a
 *     closed fd in the set EBADF;
 *   - direct: what a blocked read gets straight from the connection
 *     (no bridge between) is what TCP's gives: 300 echoes of 1-200 bytes
 *     read through a 7-byte buffer, and 100 through readv() into three
 *     small pieces, come whole and in order; a read into a bad buffer
 *     fails with EFAULT and loses nothing (the next read has the bytes); a
 *     blocking MSG_PEEK leaves what it saw for the read after it; an
 *     urgent byte and two more, to a blocked reader with SO_OOBINLINE,
 *     read in their order, 40 times;
 *   - seccomp: a new image (exec) that connects, then installs a seccomp
 *     filter killing the process on ppoll, epoll_ctl, epoll_pwait2 and
 *     process_vm_readv (calls kernel TCP's read and write never make),
 *     then runs 200 echoes: it must not die of it. Skipped (a "skip:"
 *     line) where seccomp filters cannot be installed.
 *
 * Prints "ok: NAME" per check and "transport: KIND" for the connections.
 * Exit 0 iff every check held; 1 with a "FAIL:" line otherwise.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/select.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_apprecv";

#define WATCHDOG_S 120
#define SHOWN_MS 5000

static pid_t server_pid;
static unsigned port;

static void kill_server(void)
{
    if (server_pid > 0)
        kill(server_pid, SIGKILL);
}

static void *echo_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            break;
        write_exact(fd, buf, (size_t)n);
    }
    close(fd);
    return NULL;
}

static void serve(int l)
{
    for (;;) {
        int fd = accept(l, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            _exit(1);
        }
        pthread_t t;
        if (pthread_create(&t, NULL, echo_conn, (void *)(intptr_t)fd) != 0)
            _exit(1);
        pthread_detach(t);
    }
}

static void echo(int fd, int rounds)
{
    for (int i = 0; i < rounds; i++) {
        char c = (char)('a' + i % 26), r = 0;
        CHECK(write(fd, &c, 1) == 1, "echo write: %s", strerror(errno));
        ssize_t n = read(fd, &r, 1);
        CHECK(n == 1 && r == c, "echo %d: read %zd (%s), byte %d for %d", i, n,
              n < 0 ? strerror(errno) : "-", r, c);
    }
}

/* ---- a thread blocked in read() ---- */

struct blocked {
    int fd;
    pthread_t t;
    _Atomic pid_t tid;
    _Atomic int started;
    _Atomic int done; /* lowat_read returned */
    ssize_t got;
    int err;
    char byte;
};

static void *blocked_read(void *arg)
{
    struct blocked *b = arg;
    b->tid = (pid_t)syscall(SYS_gettid);
    b->started = 1;
    b->got = read(b->fd, &b->byte, 1);
    b->err = errno;
    return NULL;
}

static char lowat_buf[16];

static void *lowat_read(void *arg)
{
    struct blocked *b = arg;
    b->tid = (pid_t)syscall(SYS_gettid);
    b->started = 1;
    b->got = read(b->fd, lowat_buf, sizeof lowat_buf);
    b->err = errno;
    b->done = 1;
    return NULL;
}

static void wait_blocked(struct blocked *b)
{
    double end = now_s() + 10;
    while (!b->started || thread_state(b->tid) != 'S') {
        CHECK(now_s() < end, "the reader never blocked");
        usleep(1000);
    }
    usleep(20000); /* asleep in the read itself, not on its way there: a
                      signal earlier only delays it (either way correct) */
}

static void start_blocked(struct blocked *b, int fd)
{
    memset(b, 0, sizeof *b);
    b->fd = fd;
    CHECK(pthread_create(&b->t, NULL, blocked_read, b) == 0, "pthread_create");
    wait_blocked(b);
}

static _Atomic int handled; /* lock-free: a handler may touch it */

static void on_usr1(int sig)
{
    (void)sig;
    handled++;
}

static void set_handler(void (*h)(int), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    SYS(sigaction(SIGUSR1, &sa, NULL));
}

/* The system call tid is in (/proc/self/task/TID/syscall), or -1. */
static long current_syscall(pid_t tid)
{
    char path[64], buf[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long nr = -1;
    if (!fgets(buf, sizeof buf, f) || sscanf(buf, "%ld", &nr) != 1)
        nr = -1;
    fclose(f);
    return nr;
}

/* A reader blocked in read(fd): under the shim, one in the path's own
 * wait (ppoll on the connection's UDP socket and its bridge). A reader
 * that found the engine's turn taken, or the path's RTT bound passed on a
 * loaded machine, blocks in the kernel's read instead: it is given a byte
 * (the server echoes it) and another started, at most 50 times. What the
 * path does with a signal is then what is checked; ThreadSanitizer's
 * runtime, which runs a handler only once the thread is back in an
 * intercepted call, never runs one for a thread in the kernel's read
 * (make tsan failed check_restart 2 runs in 4 that way). */
static void start_in_path(struct blocked *b, int fd)
{
    const char *pre = getenv("LD_PRELOAD");
    int shim = pre && strstr(pre, "rudp_shim");
    for (int tries = 0;; tries++) {
        start_blocked(b, fd);
        if (!shim || current_syscall(b->tid) == SYS_ppoll || tries == 50)
            return;
        char c = 'x';
        write_exact(fd, &c, 1);
        pthread_join(b->t, NULL);
        CHECK(b->got == 1 && b->byte == 'x', "a reader missing the path read %zd", b->got);
    }
}

static void check_restart(int fd)
{
    set_handler(on_usr1, SA_RESTART);
    struct blocked b;
    start_in_path(&b, fd);
    handled = 0;
    pthread_kill(b.t, SIGUSR1);
    for (int i = 0; i < 5000 && !handled; i++)
        usleep(1000);
    CHECK(handled, "the handler never ran");
    char c = 'R';
    write_exact(fd, &c, 1);
    pthread_join(b.t, NULL);
    CHECK(b.got == 1 && b.byte == 'R', "SA_RESTART: read gave %zd (%s)", b.got,
          b.got < 0 ? strerror(b.err) : "-");
    printf("ok: restart\n");
}

/* ---- poll() and ppoll() ---- */

/* 2,000 echoes, each waited for in poll() (the socket and an empty pipe),
 * then 200 in ppoll() with an empty mask */
static void check_pollpong(int fd)
{
    int pp[2];
    SYS(pipe(pp));
    for (int i = 0; i < 2200; i++) {
        char c = (char)('a' + i % 26), r = 0;
        CHECK(write(fd, &c, 1) == 1, "pollpong write: %s", strerror(errno));
        struct pollfd p[2] = {{.fd = pp[0], .events = POLLIN}, {.fd = fd, .events = POLLIN}};
        int n;
        if (i < 2000) {
            n = poll(p, 2, 5000);
        } else {
            sigset_t none;
            sigemptyset(&none);
            struct timespec t = {.tv_sec = 5};
            n = ppoll(p, 2, &t, &none);
        }
        CHECK(n == 1 && p[1].revents == POLLIN && p[0].revents == 0,
              "pollpong %d: poll gave %d (%s), revents %#x %#x", i, n, n < 0 ? strerror(errno) : "-",
              (unsigned)p[0].revents, (unsigned)p[1].revents);
        ssize_t got = read(fd, &r, 1);
        CHECK(got == 1 && r == c, "pollpong %d: read %zd, byte %d for %d", i, got, r, c);
    }
    close(pp[0]);
    close(pp[1]);
    printf("ok: pollpong\n");
}

struct poller {
    int fd;
    pthread_t t;
    _Atomic pid_t tid;
    _Atomic int started;
    int masked; /* ppoll() holding SIGUSR1 back */
    int got, err;
    short revents;
};

static void *blocked_poll(void *arg)
{
    struct poller *b = arg;
    b->tid = (pid_t)syscall(SYS_gettid);
    b->started = 1;
    struct pollfd p = {.fd = b->fd, .events = POLLIN};
    if (b->masked) {
        sigset_t m;
        sigemptyset(&m);
        sigaddset(&m, SIGUSR1);
        b->got = ppoll(&p, 1, NULL, &m);
    } else {
        b->got = poll(&p, 1, -1);
    }
    b->err = errno;
    b->revents = p.revents;
    return NULL;
}

static void start_poller(struct poller *b, int fd, int masked)
{
    memset(b, 0, sizeof *b);
    b->fd = fd;
    b->masked = masked;
    CHECK(pthread_create(&b->t, NULL, blocked_poll, b) == 0, "pthread_create");
    double end = now_s() + 10;
    while (!b->started || thread_state(b->tid) != 'S') {
        CHECK(now_s() < end, "the poller never blocked");
        usleep(1000);
    }
    usleep(20000);
}

static void check_polleintr(int fd)
{
    set_handler(on_usr1, SA_RESTART);
    struct poller b;
    start_poller(&b, fd, 0);
    handled = 0;
    pthread_kill(b.t, SIGUSR1);
    pthread_join(b.t, NULL);
    CHECK(handled && b.got == -1 && b.err == EINTR, "poll with SA_RESTART gave %d (%s)", b.got,
          b.got < 0 ? strerror(b.err) : "-");
    /* ppoll() holding SIGUSR1 back: the signal waits, the byte ends it */
    start_poller(&b, fd, 1);
    handled = 0;
    pthread_kill(b.t, SIGUSR1);
    usleep(50000);
    CHECK(!handled, "ppoll's mask let SIGUSR1 in");
    char c = 'P', r = 0;
    write_exact(fd, &c, 1);
    pthread_join(b.t, NULL);
    CHECK(b.got == 1 && b.revents == POLLIN, "ppoll with the signal held back gave %d (%s) %#x",
          b.got, b.got < 0 ? strerror(b.err) : "-", (unsigned)b.revents);
    CHECK(handled, "the held signal's handler never ran");
    CHECK(read(fd, &r, 1) == 1 && r == 'P', "the byte after ppoll");
    /* a timeout with nothing coming */
    struct pollfd p = {.fd = fd, .events = POLLIN};
    double t0 = now_s();
    int n = poll(&p, 1, 100);
    double took = now_s() - t0;
    CHECK(n == 0 && p.revents == 0 && took >= 0.099, "poll(100 ms) gave %d after %.3f s", n,
          took);
    printf("ok: polleintr\n");
}

/* ---- epoll ---- */

struct epoller {
    int ep;
    pthread_t t;
    _Atomic pid_t tid;
    _Atomic int started;
    int got, err;
};

static void *blocked_epoll(void *arg)
{
    struct epoller *b = arg;
    b->tid = (pid_t)syscall(SYS_gettid);
    b->started = 1;
    struct epoll_event ev;
    b->got = epoll_wait(b->ep, &ev, 1, -1);
    b->err = errno;
    return NULL;
}

static void check_epollpong(int fd)
{
    int pp[2];
    SYS(pipe(pp));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    SYS(ep);
    struct epoll_event e = {.events = EPOLLIN, .data.u64 = 7};
    SYS(epoll_ctl(ep, EPOLL_CTL_ADD, pp[0], &e));
    e.data.u64 = 42;
    SYS(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e));
    for (int i = 0; i < 2200; i++) {
        char c = (char)('a' + i % 26), r = 0;
        CHECK(write(fd, &c, 1) == 1, "epollpong write: %s", strerror(errno));
        struct epoll_event got[4];
        memset(got, 0, sizeof got);
        int n;
        if (i < 2000) {
            n = epoll_wait(ep, got, 4, 5000);
        } else {
            sigset_t none;
            sigemptyset(&none);
            struct timespec t = {.tv_sec = 5};
            n = epoll_pwait2(ep, got, 4, &t, &none);
        }
        CHECK(n == 1 && got[0].data.u64 == 42 && (got[0].events & EPOLLIN),
              "epollpong %d: epoll_wait gave %d (%s), event %#x data %llu", i, n,
              n < 0 ? strerror(errno) : "-", (unsigned)got[0].events,
              (unsigned long long)got[0].data.u64);
        ssize_t k = read(fd, &r, 1);
        CHECK(k == 1 && r == c, "epollpong %d: read %zd, byte %d for %d", i, k, r, c);
    }
    /* a signal whose handler has SA_RESTART: EINTR all the same */
    set_handler(on_usr1, SA_RESTART);
    struct epoller b;
    memset(&b, 0, sizeof b);
    b.ep = ep;
    CHECK(pthread_create(&b.t, NULL, blocked_epoll, &b) == 0, "pthread_create");
    double end = now_s() + 10;
    while (!b.started || thread_state(b.tid) != 'S') {
        CHECK(now_s() < end, "the epoll waiter never blocked");
        usleep(1000);
    }
    usleep(20000);
    handled = 0;
    pthread_kill(b.t, SIGUSR1);
    pthread_join(b.t, NULL);
    CHECK(handled && b.got == -1 && b.err == EINTR, "epoll_wait with SA_RESTART gave %d (%s)",
          b.got, b.got < 0 ? strerror(b.err) : "-");
    /* a timeout with nothing coming */
    struct epoll_event got;
    double t0 = now_s();
    int n = epoll_wait(ep, &got, 1, 100);
    double took = now_s() - t0;
    CHECK(n == 0 && took >= 0.099, "epoll_wait(100 ms) gave %d after %.3f s", n, took);
    close(ep);
    close(pp[0]);
    close(pp[1]);
    printf("ok: epollpong\n");
}

/* ---- select ---- */

static void check_selectpong(int fd)
{
    int pp[2];
    SYS(pipe(pp));
    CHECK(fd < FD_SETSIZE && pp[0] < FD_SETSIZE, "fds past FD_SETSIZE");
    int nfds = (fd > pp[0] ? fd : pp[0]) + 1;
    for (int i = 0; i < 1200; i++) {
        char c = (char)('a' + i % 26), r = 0;
        CHECK(write(fd, &c, 1) == 1, "selectpong write: %s", strerror(errno));
        fd_set rs;
        FD_ZERO(&rs);
        FD_SET(fd, &rs);
        FD_SET(pp[0], &rs);
        int n;
        if (i < 1000) {
            struct timeval tv = {.tv_sec = 5};
            n = select(nfds, &rs, NULL, NULL, &tv);
            /* Linux's select leaves the time not slept: under 5 s, above 4 */
            CHECK(n != 1 || (tv.tv_sec == 4 && tv.tv_usec > 0) || (tv.tv_sec == 5 && tv.tv_usec == 0),
                  "selectpong %d: timeval left %ld.%06ld", i, (long)tv.tv_sec, (long)tv.tv_usec);
        } else {
            sigset_t none;
            sigemptyset(&none);
            struct timespec t = {.tv_sec = 5};
            n = pselect(nfds, &rs, NULL, NULL, &t, &none);
        }
        CHECK(n == 1 && FD_ISSET(fd, &rs) && !FD_ISSET(pp[0], &rs),
              "selectpong %d: select gave %d (%s), socket %d pipe %d", i, n,
              n < 0 ? strerror(errno) : "-", FD_ISSET(fd, &rs), FD_ISSET(pp[0], &rs));
        ssize_t k = read(fd, &r, 1);
        CHECK(k == 1 && r == c, "selectpong %d: read %zd, byte %d for %d", i, k, r, c);
    }
    /* a timeout with nothing coming: 0, the set emptied, the time used */
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(fd, &rs);
    struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};
    double t0 = now_s();
    int n = select(fd + 1, &rs, NULL, NULL, &tv);
    double took = now_s() - t0;
    CHECK(n == 0 && !FD_ISSET(fd, &rs) && took >= 0.099 && tv.tv_sec == 0 && tv.tv_usec == 0,
          "select(100 ms) gave %d after %.3f s, %ld.%06ld left", n, took, (long)tv.tv_sec,
          (long)tv.tv_usec);
    /* a closed fd in the set */
    int dead = pp[1];
    close(pp[1]);
    FD_ZERO(&rs);
    FD_SET(fd, &rs);
    FD_SET(dead, &rs);
    struct timeval t1 = {.tv_sec = 1};
    n = select((fd > dead ? fd : dead) + 1, &rs, NULL, NULL, &t1);
    CHECK(n == -1 && errno == EBADF, "select with a closed fd gave %d (%s)", n,
          n < 0 ? strerror(errno) : "-");
    close(pp[0]);
    printf("ok: selectpong\n");
}

/* SO_RCVLOWAT 4 with 1 byte queued: a blocking read does not return it
 * alone (the reader is seen asleep); once 8 more come it returns at least
 * 4, 'L' first. (Kernel TCP wakes it only when the bytes not yet copied
 * reach the mark, hence 8: more than 4 after the one it holds.) */
/* n bytes of a pattern that tells their order (i: the exchange) */
static void pattern(char *b, size_t n, int i)
{
    for (size_t k = 0; k < n; k++)
        b[k] = (char)('!' + (int)((k * 7 + (size_t)i) % 90));
}

static char urgent_buf[4];

static void *urgent_read(void *arg)
{
    struct blocked *b = arg;
    b->tid = (pid_t)syscall(SYS_gettid);
    b->started = 1;
    size_t have = 0;
    while (have < 3) { /* a read stops at the urgent mark */
        ssize_t r = read(b->fd, urgent_buf + have, 3 - have);
        if (r <= 0) {
            b->got = r;
            b->err = errno;
            return NULL;
        }
        have += (size_t)r;
    }
    b->got = (ssize_t)have;
    return NULL;
}

/* An urgent byte, then two more, to a reader blocked in read() with
 * SO_OOBINLINE, on a connection to ourselves: the urgent byte comes first
 * (a review found "cdX" in 28 of 40 rounds with the bytes after it put
 * straight into the buffer while it went into the bridge). */
static void check_direct_urgent(void)
{
    int l = listener_lo(0, 4);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    SYS(getsockname(l, (struct sockaddr *)&ss, &sl));
    int c = connect_lo(port_of(&ss));
    CHECK(c >= 0, "connect to ourselves: %s", strerror(errno));
    int a = accept(l, NULL, NULL);
    CHECK(a >= 0, "accept: %s", strerror(errno));
    setsockopt_int(c, SOL_SOCKET, SO_OOBINLINE, 1);
    for (int i = 0; i < 40; i++) {
        struct blocked b;
        memset(&b, 0, sizeof b);
        b.fd = c;
        CHECK(pthread_create(&b.t, NULL, urgent_read, &b) == 0, "pthread_create");
        wait_blocked(&b);
        CHECK(send(a, "X", 1, MSG_OOB) == 1, "send MSG_OOB: %s", strerror(errno));
        write_exact(a, "cd", 2);
        pthread_join(b.t, NULL);
        CHECK(b.got == 3 && memcmp(urgent_buf, "Xcd", 3) == 0,
              "urgent %d: read %zd (%s), bytes '%.3s' for 'Xcd'", i, b.got,
              b.got < 0 ? strerror(b.err) : "-", urgent_buf);
    }
    close(a);
    close(c);
    close(l);
}

static void check_direct(int fd)
{
    char want[256], got[256];
    for (int i = 0; i < 300; i++) {
        size_t n = 1 + (size_t)(i * 37) % 200;
        pattern(want, n, i);
        write_exact(fd, want, n);
        size_t have = 0;
        while (have < n) { /* the first read blocks before the echo is back */
            size_t ask = n - have < 7 ? n - have : 7;
            ssize_t r = read(fd, got + have, ask);
            CHECK(r > 0, "direct %d: read %zd (%s) after %zu of %zu bytes", i, r,
                  r < 0 ? strerror(errno) : "EOF", have, n);
            have += (size_t)r;
        }
        CHECK(memcmp(got, want, n) == 0, "direct %d: %zu bytes read out of order", i, n);
    }
    for (int i = 0; i < 100; i++) {
        size_t n = 3 + (size_t)i % 40;
        pattern(want, n, i + 1000);
        write_exact(fd, want, n);
        size_t have = 0;
        while (have < n) {
            size_t left = n - have, a = left < 2 ? left : 2, b = left - a < 3 ? left - a : 3;
            struct iovec v[3] = {{got + have, a}, {got + have + a, b},
                                 {got + have + a + b, left - a - b}};
            ssize_t r = readv(fd, v, 3);
            CHECK(r > 0, "direct readv %d: %zd (%s)", i, r, r < 0 ? strerror(errno) : "EOF");
            have += (size_t)r;
        }
        CHECK(memcmp(got, want, n) == 0, "direct readv %d: bytes out of order", i);
    }
    /* a bad buffer: EFAULT, and the bytes wait for the next read */
    static volatile uintptr_t bad = 16; /* unmapped, unknown to the compiler */
    for (int i = 0; i < 20; i++) {
        pattern(want, 20, i + 2000);
        write_exact(fd, want, 20);
        ssize_t r = read(fd, (void *)bad, 20);
        CHECK(r < 0 && errno == EFAULT, "read into a bad buffer: %zd (%s), want EFAULT", r,
              r < 0 ? strerror(errno) : "no error");
        read_exact(fd, got, 20, SHOWN_MS);
        CHECK(memcmp(got, want, 20) == 0, "the bytes a bad read left: other bytes");
    }
    /* a blocking peek: what it saw is still there */
    for (int i = 0; i < 50; i++) {
        pattern(want, 10, i + 3000);
        write_exact(fd, want, 10);
        char p[10];
        ssize_t r = recv(fd, p, sizeof p, MSG_PEEK);
        CHECK(r > 0 && memcmp(p, want, (size_t)r) == 0, "a blocking peek: %zd (%s)", r,
              r < 0 ? strerror(errno) : "bytes");
        read_exact(fd, got, 10, SHOWN_MS);
        CHECK(memcmp(got, want, 10) == 0, "after a peek: other bytes");
    }
    check_direct_urgent();
    printf("ok: direct\n");
}

static void check_lowat(int fd)
{
    setsockopt_int(fd, SOL_SOCKET, SO_RCVLOWAT, 4);
    char c = 'L';
    write_exact(fd, &c, 1);
    int q = 0;
    for (int i = 0; i < 5000 && q < 1; i++) { /* the echo is back, unread */
        SYS(ioctl(fd, FIONREAD, &q));
        if (q < 1)
            usleep(1000);
    }
    CHECK(q == 1, "lowat: the echoed byte never came");
    struct blocked b;
    memset(&b, 0, sizeof b);
    b.fd = fd;
    CHECK(pthread_create(&b.t, NULL, lowat_read, &b) == 0, "pthread_create");
    wait_blocked(&b); /* fails if the read returned the one byte */
    write_exact(fd, "MNOPQRST", 8);
    pthread_join(b.t, NULL);
    CHECK(b.got >= 4 && lowat_buf[0] == 'L', "SO_RCVLOWAT 4: read gave %zd (%s)", b.got,
          b.got < 0 ? strerror(b.err) : "bytes");
    setsockopt_int(fd, SOL_SOCKET, SO_RCVLOWAT, 1);
    char rest[16];
    read_exact(fd, rest, (size_t)(9 - b.got), SHOWN_MS);
    memcpy(lowat_buf + b.got, rest, (size_t)(9 - b.got));
    CHECK(memcmp(lowat_buf, "LMNOPQRST", 9) == 0, "SO_RCVLOWAT: other bytes");
    printf("ok: lowat\n");
}

/* A reader blocked on fd with nothing queued, after someone set
 * SO_RCVLOWAT 4 (a process of ours or not, unseen by this one): one byte
 * echoed back does not end its read, 8 more do, 'L' first. Once the
 * connection has the byte (TCP_INFO's bytes received: it may be queued,
 * or copied by a unix socket's read that waits on for the rest), the
 * reader is still in its read 20 ms later. Under the
 * shim the read's mode is kept between reads (engine/apprecv.c,
 * interpose/recv.c): kept past the change, the wait gave the one byte
 * straight to the reader, which returned. */
static uint64_t bytes_received(int fd)
{
    struct tcp_info ti;
    socklen_t l = sizeof ti;
    memset(&ti, 0, sizeof ti);
    SYS(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l));
    return ti.tcpi_bytes_received;
}

static void lowat_unseen(int fd, const char *who)
{
    struct blocked b;
    memset(&b, 0, sizeof b);
    b.fd = fd;
    CHECK(pthread_create(&b.t, NULL, lowat_read, &b) == 0, "pthread_create");
    wait_blocked(&b);
    uint64_t before = bytes_received(fd), now = before;
    write_exact(fd, "L", 1);
    for (int i = 0; i < 5000 && now == before && !b.done; i++) {
        now = bytes_received(fd);
        if (now == before && !b.done)
            usleep(1000);
    }
    if (!b.done)
        usleep(20000); /* a read that had it all returns now */
    CHECK(!b.done, "SO_RCVLOWAT 4 set by %s: a read returned %zd (%s) with one byte", who,
          b.got, b.got < 0 ? strerror(b.err) : "bytes");
    CHECK(now == before + 1, "lowat by %s: the echoed byte never came (%llu bytes)", who,
          (unsigned long long)(now - before));
    write_exact(fd, "MNOPQRST", 8);
    pthread_join(b.t, NULL);
    CHECK(b.got >= 4 && lowat_buf[0] == 'L', "SO_RCVLOWAT 4 set by %s: read gave %zd (%s)", who,
          b.got, b.got < 0 ? strerror(b.err) : "bytes");
    setsockopt_int(fd, SOL_SOCKET, SO_RCVLOWAT, 1);
    char rest[16];
    read_exact(fd, rest, (size_t)(9 - b.got), SHOWN_MS);
    memcpy(lowat_buf + b.got, rest, (size_t)(9 - b.got));
    CHECK(memcmp(lowat_buf, "LMNOPQRST", 9) == 0, "lowat by %s: other bytes", who);
}

/* The environment without LD_PRELOAD: an image that does not run the shim */
extern char **environ;
static char **env_bare(void)
{
    static char *e[256];
    int n = 0;
    for (char **p = environ; *p && n < 255; p++)
        if (strncmp(*p, "LD_PRELOAD=", 11) != 0)
            e[n++] = *p;
    e[n] = NULL;
    return e;
}

/* --lowat FD: SO_RCVLOWAT 4 on FD, inherited, in an image without the shim */
static int lowat_helper(int fd)
{
    int v = 4;
    return setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v) == 0 ? 0 : 2;
}

/* --lowat-recv FD: the same on a socket passed over FD (SCM_RIGHTS); one
 * byte back says done */
static int lowat_recv_helper(int sp)
{
    char x, ctl[CMSG_SPACE(sizeof(int))];
    struct iovec v = {&x, 1};
    struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = ctl,
                       .msg_controllen = sizeof ctl};
    if (recvmsg(sp, &m, 0) != 1)
        return 2;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    if (!c || c->cmsg_type != SCM_RIGHTS)
        return 3;
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    if (lowat_helper(fd) != 0 || write(sp, "k", 1) != 1)
        return 4;
    return 0;
}

static pid_t spawn_bare(const char *mode, int fd)
{
    pid_t p = fork();
    SYS(p);
    if (p == 0) {
        char fs[16];
        snprintf(fs, sizeof fs, "%d", fd);
        char *argv[] = {"prog_apprecv", (char *)mode, fs, NULL};
        execve("/proc/self/exe", argv, env_bare());
        _exit(5);
    }
    return p;
}

static void reap_ok(pid_t p, const char *who)
{
    int st = 0;
    SYS(waitpid(p, &st, 0));
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s exited %d", who, st);
}

/* - rxmode: SO_RCVLOWAT set, after reads that waited, by this process, by a
 *   forked child, by an image without the shim that inherited the socket,
 *   and by one that got it over a unix socket (SCM_RIGHTS): each time a
 *   blocked read keeps the mark (lowat_unseen). */
static void check_rxmode(int fd, int forks)
{
    echo(fd, 20);
    setsockopt_int(fd, SOL_SOCKET, SO_RCVLOWAT, 4);
    lowat_unseen(fd, "this process");
    if (!forks) {
        printf("skip: rxmode: the children's parts, not under this runtime "
               "(PROG_APPRECV_NOFORK=1)\n");
        printf("ok: rxmode\n");
        return;
    }
    echo(fd, 20);
    pid_t p = fork();
    SYS(p);
    if (p == 0) {
        int v = 4;
        _exit(setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v) == 0 ? 0 : 2);
    }
    reap_ok(p, "the forked child");
    lowat_unseen(fd, "a forked child");
    echo(fd, 20);
    reap_ok(spawn_bare("--lowat", fd), "the image without the shim");
    lowat_unseen(fd, "an image without the shim");
    /* the helper first (an exec marks every bridge there is), then the
     * connection it gets */
    int sp[2];
    SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sp));
    p = spawn_bare("--lowat-recv", sp[1]);
    close(sp[1]);
    int c = connect_lo(port);
    CHECK(c >= 0, "connect: %s", strerror(errno));
    echo(c, 20);
    char x = 'p', ctl[CMSG_SPACE(sizeof(int))];
    memset(ctl, 0, sizeof ctl);
    struct iovec v = {&x, 1};
    struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = ctl,
                       .msg_controllen = sizeof ctl};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &c, sizeof c);
    CHECK(sendmsg(sp[0], &m, 0) == 1, "sendmsg SCM_RIGHTS: %s", strerror(errno));
    CHECK(read(sp[0], &x, 1) == 1 && x == 'k', "the receiving image said nothing");
    reap_ok(p, "the receiving image");
    close(sp[0]);
    lowat_unseen(c, "an image without the shim, over SCM_RIGHTS");
    close(c);
    printf("ok: rxmode\n");
}

static void check_eintr(int fd)
{
    set_handler(on_usr1, 0);
    struct blocked b;
    start_blocked(&b, fd);
    pthread_kill(b.t, SIGUSR1);
    pthread_join(b.t, NULL);
    CHECK(b.got == -1 && b.err == EINTR, "no SA_RESTART: read gave %zd (%s), not EINTR", b.got,
          b.got < 0 ? strerror(b.err) : "-");
    set_handler(on_usr1, SA_RESTART);
    printf("ok: eintr\n");
}

/* 100 bytes echoed while nobody reads are shown by FIONREAD, then read. */
static void delivered_unread(int fd, const char *what)
{
    char out[100], in[100];
    memset(out, 'D', sizeof out);
    write_exact(fd, out, sizeof out);
    double end = now_s() + SHOWN_MS / 1000.0;
    int q = 0;
    while (ioctl(fd, FIONREAD, &q) == 0 && q < (int)sizeof out) {
        CHECK(now_s() < end, "%s: %d of 100 bytes delivered while nobody read", what, q);
        usleep(2000);
    }
    read_exact(fd, in, sizeof in, SHOWN_MS);
    CHECK(memcmp(in, out, sizeof in) == 0, "%s: bytes differ", what);
}

static __thread sigjmp_buf jump;
static __thread volatile sig_atomic_t jump_armed;
static _Atomic int jumped;

static void on_usr1_jump(int sig)
{
    (void)sig;
    if (jump_armed) {
        jump_armed = 0;
        jumped = 1;
        siglongjmp(jump, 1);
    }
}

static void *jump_read(void *arg)
{
    struct blocked *b = arg;
    b->tid = (pid_t)syscall(SYS_gettid);
    if (sigsetjmp(jump, 1) == 0) {
        jump_armed = 1;
        b->started = 1;
        b->got = read(b->fd, &b->byte, 1);
        jump_armed = 0;
    }
    return NULL;
}

static void check_longjmp(int fd)
{
    set_handler(on_usr1_jump, SA_RESTART);
    struct blocked b;
    memset(&b, 0, sizeof b);
    b.fd = fd;
    jumped = 0;
    CHECK(pthread_create(&b.t, NULL, jump_read, &b) == 0, "pthread_create");
    wait_blocked(&b);
    pthread_kill(b.t, SIGUSR1);
    pthread_join(b.t, NULL);
    CHECK(jumped && b.got == 0, "the reader did not jump out (read gave %zd)", b.got);
    delivered_unread(fd, "after a siglongjmp out of read()");
    set_handler(on_usr1, SA_RESTART);
    printf("ok: longjmp\n");
}

static void check_cancel(int fd)
{
    /* Under the shim the cancel is meant to find the reader in the path's
     * own wait (ppoll on the connection's UDP socket and its bridge), whose
     * lease the engine must then take back (the script checks the count).
     * A reader that found the engine's turn taken, or the path's RTT bound
     * passed on a loaded machine, blocks in the kernel's read instead, and
     * its cancel says nothing of the lease: start_in_path ends it with a
     * byte and starts another (a loaded run missed the path 1 in 4). */
    struct blocked b;
    start_in_path(&b, fd);
    CHECK(pthread_cancel(b.t) == 0, "pthread_cancel");
    void *ret = NULL;
    pthread_join(b.t, &ret);
    CHECK(ret == PTHREAD_CANCELED, "the reader was not cancelled");
    delivered_unread(fd, "after pthread_cancel() in read()");
    printf("ok: cancel\n");
}

static void *echo_thread(void *arg)
{
    echo((int)(intptr_t)arg, 3000);
    return NULL;
}

static void check_fork(int fd)
{
    pthread_t t;
    CHECK(pthread_create(&t, NULL, echo_thread, (void *)(intptr_t)fd) == 0, "pthread_create");
    for (int i = 0; i < 30; i++) {
        pid_t p = fork();
        SYS(p);
        if (p == 0) {
            int c = connect_lo(port);
            if (c < 0)
                _exit(2);
            for (int k = 0; k < 20; k++) {
                char x = 'f', r = 0;
                if (write(c, &x, 1) != 1 || read(c, &r, 1) != 1 || r != x)
                    _exit(3);
            }
            _exit(0);
        }
        int st = 0;
        SYS(waitpid(p, &st, 0));
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fork %d: the child's connection failed (%d)",
              i, st);
    }
    pthread_join(t, NULL);
    printf("ok: fork\n");
}

/* ---- seccomp, in a new image ---- */

#define KILL_IF(nr)                                                  \
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1),                 \
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS)

static int sandboxed_echo(void)
{
    int c = connect_lo(port);
    if (c < 0)
        return 2;
    echo(c, 1); /* established before the filter */
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        KILL_IF(SYS_ppoll),
        KILL_IF(SYS_epoll_ctl),
        KILL_IF(SYS_epoll_pwait2),
        KILL_IF(SYS_process_vm_readv),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = (unsigned short)(sizeof f / sizeof f[0]), .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
        printf("skip: seccomp: no filter here (%s)\n", strerror(errno));
        return 77;
    }
    echo(c, 200);
    close(c);
    return 0;
}

static void check_seccomp(void)
{
    pid_t p = fork();
    SYS(p);
    if (p == 0) {
        char ps[16];
        snprintf(ps, sizeof ps, "%u", port);
        execl("/proc/self/exe", "prog_apprecv", "--seccomp", ps, (char *)NULL);
        _exit(4);
    }
    int st = 0;
    SYS(waitpid(p, &st, 0));
    CHECK(!WIFSIGNALED(st), "the sandboxed image died of signal %d", WTERMSIG(st));
    CHECK(WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 77),
          "the sandboxed image exited %d", WEXITSTATUS(st));
    if (WEXITSTATUS(st) == 0)
        printf("ok: seccomp\n");
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--lowat") == 0)
        return lowat_helper(atoi(argv[2]));
    if (argc == 3 && strcmp(argv[1], "--lowat-recv") == 0)
        return lowat_recv_helper(atoi(argv[2]));
    if (argc == 3 && strcmp(argv[1], "--seccomp") == 0) {
        port = (unsigned)atoi(argv[2]);
        return sandboxed_echo();
    }
    prog_begin(argc, WATCHDOG_S);
    /* the server forked first, while this process has no thread (under
     * the shim the first socket starts one): it listens and says where */
    int pp[2];
    SYS(pipe(pp));
    server_pid = fork();
    SYS(server_pid);
    if (server_pid == 0) {
        close(pp[0]);
        int l = listener_lo(0, 64);
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getsockname(l, (struct sockaddr *)&ss, &sl) < 0)
            _exit(1);
        unsigned p = port_of(&ss);
        if (write(pp[1], &p, sizeof p) != (ssize_t)sizeof p)
            _exit(1);
        close(pp[1]);
        serve(l);
    }
    close(pp[1]);
    prog_on_fail = kill_server;
    CHECK(read(pp[0], &port, sizeof port) == (ssize_t)sizeof port, "the server said no port");
    close(pp[0]);

    int fd = connect_lo(port);
    CHECK(fd >= 0, "connect: %s", strerror(errno));
    printf("transport: %s (client)\n", fd_transport(fd));
    echo(fd, 2000);
    printf("ok: pingpong\n");
    check_pollpong(fd);
    check_polleintr(fd);
    check_epollpong(fd);
    check_selectpong(fd);
    check_direct(fd);
    check_restart(fd);
    check_lowat(fd);
    /* PROG_APPRECV_NOFORK=1 (make tsan): TSan's runtime cannot follow
     * children that start threads after a multi-threaded fork */
    const char *nf = getenv("PROG_APPRECV_NOFORK");
    check_rxmode(fd, !(nf && strcmp(nf, "1") == 0));
    check_eintr(fd);
    check_longjmp(fd);
    check_cancel(fd);
    if (nf && strcmp(nf, "1") == 0)
        printf("skip: fork: not under this runtime (PROG_APPRECV_NOFORK=1)\n");
    else
        check_fork(fd);
    check_seccomp();
    close(fd);
    kill_server();
    waitpid(server_pid, NULL, 0);
    return 0;
}
