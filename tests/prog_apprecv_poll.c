/*
 * prog_apprecv_poll.c: prog_apprecv's checks of the readiness calls (what
 * each checks: prog_apprecv.c): pollpong and polleintr (poll() and
 * ppoll()), epollpong (epoll_wait() and epoll_pwait2()) and selectpong
 * (select() and pselect()), each a reader's wait before its read, a
 * signal in a blocked wait and a timeout with nothing coming; and
 * cancelmask (read(), poll() and epoll_wait()).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "progutil.h"
#include "prog_apprecv.h"

/* ---- poll() and ppoll() ---- */

/* 2,000 echoes, each waited for in poll() (the socket and an empty pipe),
 * then 200 in ppoll() with an empty mask */
void check_pollpong(int fd)
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

void check_polleintr(int fd)
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

void check_epollpong(int fd)
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

void check_selectpong(int fd)
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

/* ---- cancelmask ---- */

/* A thread cancelled while it waits in read(), poll() or epoll_wait() on
 * the connection, early (the shim's own wait, in its first 50 ms) and late
 * (the kernel's call for the rest): its cleanup handler runs with the
 * mask it had (SIGUSR1 let in), and a SIGUSR1 it sends itself there runs
 * its handler there. Under the shim the wait's ppoll held every signal by
 * its own mask, which the cancellation's unwinding does not put back. */
struct canceller {
    int fd, how; /* 0 read, 1 poll, 2 epoll_wait */
    int ep;
    _Atomic pid_t tid;
    _Atomic int blocked_usr1; /* in the cleanup: -1 not run */
    _Atomic int ran;          /* ... the handler's runs there */
};

static void cancel_cleanup(void *arg)
{
    struct canceller *c = arg;
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    c->blocked_usr1 = sigismember(&cur, SIGUSR1);
    int before = handled;
    pthread_kill(pthread_self(), SIGUSR1);
    for (int i = 0; i < 100 && handled == before; i++)
        usleep(1000); /* a cancellation point no more: cleanup runs disabled */
    c->ran = handled - before;
}

static void *cancel_waiter(void *arg)
{
    struct canceller *c = arg;
    c->tid = (pid_t)syscall(SYS_gettid);
    pthread_cleanup_push(cancel_cleanup, c);
    char b;
    if (c->how == 0) {
        (void)!read(c->fd, &b, 1);
    } else if (c->how == 1) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        (void)poll(&p, 1, -1);
    } else {
        struct epoll_event ev;
        (void)epoll_wait(c->ep, &ev, 1, -1);
    }
    pthread_cleanup_pop(0);
    return NULL;
}

void check_cancelmask(int fd)
{
    static const char *const what[] = {"read", "poll", "epoll_wait"};
    set_handler(on_usr1, SA_RESTART);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    SYS(ep);
    struct epoll_event e = {.events = EPOLLIN, .data.u64 = 1};
    SYS(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e));
    const char *pre = getenv("LD_PRELOAD");
    int shim = pre && strstr(pre, "rudp_shim");
    int missed = 0;
    for (int how = 0; how < 3; how++) {
        for (int late = 0; late < 2; late++) {
            struct canceller c;
            pthread_t t;
            /* Under the shim the early cancel is meant to find the waiter in
             * the shim's own wait (ppoll); one that found the engine's turn
             * taken waits in the kernel's call: a byte ends it, and another
             * starts (as start_in_path) */
            for (int tries = 0;; tries++) {
                memset(&c, 0, sizeof c);
                c.fd = fd;
                c.how = how;
                c.ep = ep;
                c.blocked_usr1 = -1;
                CHECK(pthread_create(&t, NULL, cancel_waiter, &c) == 0, "pthread_create");
                double end = now_s() + 10;
                while (!c.tid || thread_state(c.tid) != 'S') {
                    CHECK(now_s() < end, "%s: the waiter never blocked", what[how]);
                    usleep(200);
                }
                usleep(late ? 300000 : 3000);
                if (!shim || late || current_syscall(c.tid) == SYS_ppoll || tries == 50)
                    break;
                char x = 'x', r = 0;
                write_exact(fd, &x, 1);
                pthread_join(t, NULL);
                if (how != 0)
                    CHECK(read(fd, &r, 1) == 1 && r == 'x', "%s: the byte after", what[how]);
                missed++;
            }
            CHECK(pthread_cancel(t) == 0, "pthread_cancel");
            void *ret = NULL;
            pthread_join(t, &ret);
            CHECK(ret == PTHREAD_CANCELED, "%s: the waiter was not cancelled", what[how]);
            CHECK(c.blocked_usr1 == 0 && c.ran == 1,
                  "%s cancelled %s: in its cleanup SIGUSR1 blocked %d, its handler ran %d times",
                  what[how], late ? "late" : "early", (int)c.blocked_usr1, (int)c.ran);
        }
    }
    if (missed)
        printf("cancelmask: %d waits missed the shim's own wait and were tried again\n", missed);
    close(ep);
    printf("ok: cancelmask\n");
}
