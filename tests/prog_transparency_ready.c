/*
 * prog_transparency_ready.c: prog_transparency's readiness cases (the list
 * and what each checks: prog_transparency.c): epoll's level-triggered,
 * edge-triggered and EPOLLONESHOT reports and EPOLLEXCLUSIVE on a listener
 * ("epoll"), and every readiness call woken while it already waits
 * ("wake"), io_uring's poll by raw system calls among them.
 */
#include <errno.h>
#include <linux/io_uring.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "progutil.h"
#include "prog_transparency.h"

#ifndef SYS_epoll_pwait2
#define SYS_epoll_pwait2 441 /* one number on every architecture (5.11) */
#endif

/* glibc's _FORTIFY_SOURCE form of poll(), called here by name. */
extern int __poll_chk(struct pollfd *fds, nfds_t nfds, int timeout, size_t fdslen);

/* ---- epoll ---- */

static int ep_wait(int ep, int ms)
{
    struct epoll_event ev;
    int n = epoll_wait(ep, &ev, 1, ms);
    SYS(n);
    return n;
}

/* 10 bytes written on c and queued on a, ep reports a, 3 of them read. */
static void ten_take_three(int ep, int c, int a, const char *what)
{
    char buf[3];
    write_exact(c, "0123456789", 10);
    wait_queued(a, 10, what);
    CHECK(ep_wait(ep, IO_MS) == 1, "%s: no event for 10 bytes", what);
    CHECK(read(a, buf, 3) == 3, "%s: read: %s", what, strerror(errno));
}

void case_epoll_modes(void)
{
    int c, a;
    pair(&c, &a);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    SYS(ep);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = a};
    SYS(epoll_ctl(ep, EPOLL_CTL_ADD, a, &ev));
    ten_take_three(ep, c, a, "epoll LT");
    CHECK(ep_wait(ep, 0) == 1, "epoll LT: no second event with 7 bytes unread");
    drain(a, 7);
    CHECK(ep_wait(ep, 0) == 0, "epoll LT: an event with nothing unread");
    printf("ok: epoll: level-triggered reports again while bytes remain, not once all are "
           "read\n");

    ev.events = EPOLLIN | EPOLLET;
    SYS(epoll_ctl(ep, EPOLL_CTL_MOD, a, &ev));
    ten_take_three(ep, c, a, "epoll ET");
    CHECK(ep_wait(ep, 0) == 0, "epoll ET: a second event after a partial read, nothing new");
    write_exact(c, "abcde", 5);
    wait_queued(a, 12, "epoll ET");
    CHECK(ep_wait(ep, IO_MS) == 1, "epoll ET: no event for 5 new bytes");
    CHECK(ep_wait(ep, 0) == 0, "epoll ET: two events for one arrival");
    drain(a, 12);
    printf("ok: epoll: edge-triggered reports once per arrival, none after a partial read\n");

    ev.events = EPOLLIN | EPOLLONESHOT;
    SYS(epoll_ctl(ep, EPOLL_CTL_MOD, a, &ev));
    write_exact(c, "0123456789", 10);
    wait_queued(a, 10, "EPOLLONESHOT");
    CHECK(ep_wait(ep, IO_MS) == 1, "EPOLLONESHOT: no event for 10 bytes");
    CHECK(ep_wait(ep, 0) == 0, "EPOLLONESHOT: a second event before re-arming");
    write_exact(c, "abcde", 5);
    wait_queued(a, 15, "EPOLLONESHOT");
    CHECK(ep_wait(ep, 0) == 0, "EPOLLONESHOT: an event for new bytes before re-arming");
    SYS(epoll_ctl(ep, EPOLL_CTL_MOD, a, &ev));
    CHECK(ep_wait(ep, 0) == 1, "EPOLLONESHOT: no event after EPOLL_CTL_MOD re-armed it");
    CHECK(ep_wait(ep, 0) == 0, "EPOLLONESHOT: a second event after re-arming");
    drain(a, 15);
    printf("ok: epoll: EPOLLONESHOT reports once, then nothing until EPOLL_CTL_MOD re-arms it\n");
    close(ep);
    close(c);
    close(a);
}

struct excl {
    pthread_t t;
    int ep, l, stop;
    atomic_int *accepted, *woken;
    int fd, timed_out;
    _Atomic pid_t tid;
};

/* Waits in its own epoll instance until the stop eventfd: a wake for the
 * listener tries one accept4(). */
static void *excl_run(void *arg)
{
    struct excl *x = arg;
    atomic_store(&x->tid, gettid());
    for (;;) {
        struct epoll_event evs[2];
        int n = epoll_wait(x->ep, evs, 2, WAKE_S * 1000);
        CHECK(n >= 0, "EPOLLEXCLUSIVE: epoll_wait: %s", strerror(errno));
        if (n == 0) {
            x->timed_out = 1;
            return NULL;
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.fd == x->stop)
                return NULL;
            atomic_fetch_add(x->woken, 1);
            int fd = accept4(x->l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            CHECK(fd >= 0 || errno == EAGAIN, "EPOLLEXCLUSIVE: accept4: %s", strerror(errno));
            if (fd >= 0) {
                x->fd = fd;
                atomic_fetch_add(x->accepted, 1);
            }
        }
    }
}

void case_epoll_exclusive(void)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    SYS(l);
    unsigned port = bind_lo(l, 0);
    SYS(listen(l, 16));
    int stop = eventfd(0, EFD_CLOEXEC);
    SYS(stop);
    atomic_int accepted = 0, woken = 0;
    struct excl x[2];
    for (int i = 0; i < 2; i++) {
        x[i] = (struct excl){.l = l, .stop = stop, .accepted = &accepted, .woken = &woken,
                             .fd = -1};
        x[i].ep = epoll_create1(EPOLL_CLOEXEC);
        SYS(x[i].ep);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = l};
        SYS(epoll_ctl(x[i].ep, EPOLL_CTL_ADD, l, &ev));
        ev = (struct epoll_event){.events = EPOLLIN, .data.fd = stop};
        SYS(epoll_ctl(x[i].ep, EPOLL_CTL_ADD, stop, &ev));
        int e = pthread_create(&x[i].t, NULL, excl_run, &x[i]);
        CHECK(e == 0, "pthread_create: %s", strerror(e));
    }
    for (int i = 0; i < 2; i++) {
        for (int k = 0; k < IO_MS && !atomic_load(&x[i].tid); k++)
            nap_ms(1);
        wait_sleeping(atomic_load(&x[i].tid), -1, "EPOLLEXCLUSIVE");
    }
    int c = connect_lo(port);
    for (int k = 0; k < IO_MS && !atomic_load(&accepted); k++)
        nap_ms(1);
    int woke = atomic_load(&woken);
    SYS(eventfd_write(stop, 1));
    for (int i = 0; i < 2; i++) {
        int e = pthread_join(x[i].t, NULL);
        CHECK(e == 0, "pthread_join: %s", strerror(e));
        CHECK(!x[i].timed_out, "EPOLLEXCLUSIVE: thread %d saw neither the connection nor the "
              "stop within %d s", i, WAKE_S);
    }
    CHECK(woke >= 1, "EPOLLEXCLUSIVE: no waiter woke for the connection within %d ms", IO_MS);
    CHECK(atomic_load(&accepted) == 1, "EPOLLEXCLUSIVE: %d accepts succeeded, want 1",
          atomic_load(&accepted));
    CHECK(accept4(l, NULL, NULL, SOCK_NONBLOCK) < 0 && errno == EAGAIN,
          "EPOLLEXCLUSIVE: a second accept: %s", strerror(errno));
    int a = x[0].fd >= 0 ? x[0].fd : x[1].fd;
    carry(c, a, "exclusive", "EPOLLEXCLUSIVE's accepted connection");
    printf("ok: epoll: EPOLLEXCLUSIVE on a listener in two instances: %d waiter(s) woke for "
           "one connect, accept() succeeded once\n", woke);
    close(a);
    close(c);
    close(x[0].ep);
    close(x[1].ep);
    close(stop);
    close(l);
}

/* ---- readiness calls woken while they wait ---- */

struct uring {
    int fd;
    void *sq, *cq;
    size_t sq_len, cq_len, sqes_len;
    struct io_uring_sqe *sqes;
    unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
    struct io_uring_cqe *cqes;
};

static void uring_close(struct uring *u)
{
    if (u->sqes && u->sqes != MAP_FAILED)
        munmap(u->sqes, u->sqes_len);
    if (u->cq && u->cq != MAP_FAILED && u->cq != u->sq)
        munmap(u->cq, u->cq_len);
    if (u->sq && u->sq != MAP_FAILED)
        munmap(u->sq, u->sq_len);
    close(u->fd);
}

/* A ring of 4 entries by io_uring_setup() and mmap(); 0, or the negative
 * errno of io_uring_setup() (a failure after it dies). */
static int uring_open(struct uring *u)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    memset(u, 0, sizeof *u);
    u->fd = (int)syscall(__NR_io_uring_setup, 4, &p);
    if (u->fd < 0)
        return -errno;
    u->sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    u->cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    int single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
    if (single && u->cq_len > u->sq_len)
        u->sq_len = u->cq_len;
    u->sq = mmap(NULL, u->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd,
                 IORING_OFF_SQ_RING);
    CHECK(u->sq != MAP_FAILED, "io_uring: mmap SQ ring: %s", strerror(errno));
    u->cq = single ? u->sq
                   : mmap(NULL, u->cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                          u->fd, IORING_OFF_CQ_RING);
    CHECK(u->cq != MAP_FAILED, "io_uring: mmap CQ ring: %s", strerror(errno));
    u->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
    u->sqes = mmap(NULL, u->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd,
                   IORING_OFF_SQES);
    CHECK(u->sqes != MAP_FAILED, "io_uring: mmap SQEs: %s", strerror(errno));
    char *sq = u->sq, *cq = u->cq;
    u->sq_tail = (unsigned *)(sq + p.sq_off.tail);
    u->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
    u->sq_array = (unsigned *)(sq + p.sq_off.array);
    u->cq_head = (unsigned *)(cq + p.cq_off.head);
    u->cq_tail = (unsigned *)(cq + p.cq_off.tail);
    u->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
    u->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
    return 0;
}

static struct io_uring_sqe *uring_sqe(struct uring *u, unsigned *tail)
{
    unsigned i = *tail & *u->sq_mask;
    struct io_uring_sqe *sqe = &u->sqes[i];
    memset(sqe, 0, sizeof *sqe);
    u->sq_array[i] = i;
    ++*tail;
    return sqe;
}

/* IORING_OP_POLL_ADD for POLLIN on w->fd with a 10 s IORING_OP_TIMEOUT
 * beside it, submitted and waited for in one io_uring_enter(): 1 when the
 * poll completed with POLLIN, 0 when the timeout came first. */
static int call_uring(struct waiter *w)
{
    static struct __kernel_timespec ts = {.tv_sec = WAKE_S};
    struct uring *u = w->ring;
    unsigned tail = *u->sq_tail;
    struct io_uring_sqe *sqe = uring_sqe(u, &tail);
    sqe->opcode = IORING_OP_POLL_ADD;
    sqe->fd = w->fd;
    sqe->poll32_events = POLLIN;
    sqe->user_data = 1;
    sqe = uring_sqe(u, &tail);
    sqe->opcode = IORING_OP_TIMEOUT;
    sqe->fd = -1;
    sqe->addr = (uintptr_t)&ts;
    sqe->len = 1;
    sqe->user_data = 2;
    __atomic_store_n(u->sq_tail, tail, __ATOMIC_RELEASE);
    long r = syscall(__NR_io_uring_enter, u->fd, 2, 1, IORING_ENTER_GETEVENTS, NULL, 0);
    if (r < 0)
        return -1;
    int got = 0;
    unsigned head = *u->cq_head, end = __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE);
    for (; head != end; head++) {
        struct io_uring_cqe *cqe = &u->cqes[head & *u->cq_mask];
        if (cqe->user_data != 1)
            continue;
        if (cqe->res < 0) {
            errno = -cqe->res;
            return -1;
        }
        got = (cqe->res & POLLIN) != 0;
    }
    __atomic_store_n(u->cq_head, head, __ATOMIC_RELEASE);
    return got;
}

static int call_poll(struct waiter *w)
{
    struct pollfd p = {.fd = w->fd, .events = POLLIN};
    int n = poll(&p, 1, WAKE_S * 1000);
    return n < 0 ? -1 : n == 1 && (p.revents & POLLIN);
}

static int call_ppoll(struct waiter *w)
{
    struct pollfd p = {.fd = w->fd, .events = POLLIN};
    struct timespec ts = {WAKE_S, 0};
    int n = ppoll(&p, 1, &ts, NULL);
    return n < 0 ? -1 : n == 1 && (p.revents & POLLIN);
}

static int call_poll_chk(struct waiter *w)
{
    struct pollfd p = {.fd = w->fd, .events = POLLIN};
    int n = __poll_chk(&p, 1, WAKE_S * 1000, sizeof p);
    return n < 0 ? -1 : n == 1 && (p.revents & POLLIN);
}

static int call_select(struct waiter *w)
{
    fd_set r;
    FD_ZERO(&r);
    FD_SET(w->fd, &r);
    struct timeval tv = {WAKE_S, 0};
    int n = select(w->fd + 1, &r, NULL, NULL, &tv);
    return n < 0 ? -1 : n == 1 && FD_ISSET(w->fd, &r);
}

static int call_pselect(struct waiter *w)
{
    fd_set r;
    FD_ZERO(&r);
    FD_SET(w->fd, &r);
    struct timespec ts = {WAKE_S, 0};
    int n = pselect(w->fd + 1, &r, NULL, NULL, &ts, NULL);
    return n < 0 ? -1 : n == 1 && FD_ISSET(w->fd, &r);
}

static int call_epoll_wait(struct waiter *w)
{
    struct epoll_event ev;
    int n = epoll_wait(w->ep, &ev, 1, WAKE_S * 1000);
    return n < 0 ? -1 : n == 1 && ev.data.fd == w->fd && (ev.events & EPOLLIN);
}

static int call_epoll_pwait(struct waiter *w)
{
    struct epoll_event ev;
    int n = epoll_pwait(w->ep, &ev, 1, WAKE_S * 1000, NULL);
    return n < 0 ? -1 : n == 1 && ev.data.fd == w->fd && (ev.events & EPOLLIN);
}

static int epoll_pwait2_raw(int ep, struct epoll_event *ev, int max, const struct timespec *ts)
{
    return (int)syscall(SYS_epoll_pwait2, ep, ev, max, ts, NULL, (size_t)0);
}

static int call_epoll_pwait2(struct waiter *w)
{
    struct epoll_event ev;
    struct timespec ts = {WAKE_S, 0};
    int n = epoll_pwait2_raw(w->ep, &ev, 1, &ts);
    return n < 0 ? -1 : n == 1 && ev.data.fd == w->fd && (ev.events & EPOLLIN);
}

/* One call: waits on a in a thread, woken by a byte written on c once it
 * sleeps; the byte then read. */
static void wake_one(const char *name, waiter_call *call, int c, int a, int ep,
                     struct uring *ring)
{
    struct waiter w;
    w.ep = ep;
    w.ring = ring;
    waiter_start(&w, call, a);
    waiter_asleep(&w, name);
    CHECK(!atomic_load(&w.done), "%s: returned %d before any byte came", name, w.result);
    write_exact(c, "w", 1);
    waiter_join(&w); /* bounded: the call's own 10 s */
    CHECK(w.result != 0, "%s: not woken within %d s by bytes that arrived while it waited",
          name, WAKE_S);
    CHECK(w.result == 1, "%s: %s", name, strerror(w.err));
    drain(a, 1);
    printf("ok: wake: %s, already waiting, wakes when the peer writes\n", name);
}

void case_wake(void)
{
    int c, a;
    pair(&c, &a);
    CHECK(a < FD_SETSIZE, "fd %d too high for select()", a);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    SYS(ep);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = a};
    SYS(epoll_ctl(ep, EPOLL_CTL_ADD, a, &ev));
    static const struct {
        const char *name;
        waiter_call *call;
    } calls[] = {
        {"poll()", call_poll},
        {"ppoll()", call_ppoll},
        {"select()", call_select},
        {"pselect()", call_pselect},
        {"epoll_wait()", call_epoll_wait},
        {"epoll_pwait()", call_epoll_pwait},
        {"__poll_chk()", call_poll_chk},
    };
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++)
        wake_one(calls[i].name, calls[i].call, c, a, ep, NULL);

    struct timespec zero = {0, 0};
    if (epoll_pwait2_raw(ep, &ev, 1, &zero) < 0 && errno == ENOSYS)
        printf("skip: epoll_pwait2: the kernel says ENOSYS\n");
    else
        wake_one("epoll_pwait2()", call_epoll_pwait2, c, a, ep, NULL);

    struct uring ring;
    int r = uring_open(&ring);
    if (r == -ENOSYS || r == -EPERM) {
        printf("skip: io_uring: io_uring_setup: %s (disabled here)\n", strerror(-r));
    } else {
        CHECK(r == 0, "io_uring_setup: %s", strerror(-r));
        wake_one("io_uring IORING_OP_POLL_ADD", call_uring, c, a, ep, &ring);
        uring_close(&ring);
    }
    close(ep);
    close(c);
    close(a);
}
