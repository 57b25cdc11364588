/*
 * epoll.c: an epoll_wait(), epoll_pwait() or epoll_pwait2() on a set that
 * holds one of our bridges for reading waits on that connection's UDP
 * socket too, as poll() does (poll.c, RUDP_APP_RECV, engine/apprecv.c):
 * the datagram wakes the waiting thread alone, which runs the engine's part
 * and delivers into the bridge, and the kernel's epoll then reports it as
 * it would have. Python's asyncio, libuv (node) and libevent wait there.
 * Where the process carries more connections than that path takes, the
 * wait is on every engine's whole set of sockets and bridges instead
 * (appwhole.c): redis, node, a Python event loop.
 *
 * Which bridge: epoll_ctl (sock.c) notes, per epoll fd below EP_CANDS, the
 * last bridge added or modified with EPOLLIN (its number; one per set);
 * deleting it, or modifying it without EPOLLIN, forgets it. A note left
 * behind (the bridge closed, the number reused) costs at most a wait that
 * the epoll fd itself ends, never an event: what the program is told is
 * always the kernel's epoll_wait on its own set. The wait is a ppoll() on
 * the epoll fd (readable while its ready list holds anything), the UDP
 * socket and the signalfd; then, when the set or the socket had anything,
 * the kernel's epoll_wait without waiting; nothing for the program and time
 * left, it waits again; a wait that saw nothing for SHIM_APP_WAIT_MS
 * leaves the rest of the call to the kernel. Signals as poll.c's: held
 * back for the whole wait, let in with the program's mask once the socket
 * is given back, EINTR if a handler ran (epoll_wait is never restarted,
 * man 7 signal).
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>

#include "interpose.h"

/* Epoll fds at or above this are libc's alone. */
#define EP_CANDS SHIM_EP_FDS

/* Per epoll fd: the bridge noted for reading, its number + 1 (0: none). */
static _Atomic int cand[EP_CANDS];

void shim_epoll_cand_note(int epfd, int op, int fd, const struct epoll_event *ev)
{
    if (epfd < 0 || epfd >= EP_CANDS || fd < 0)
        return;
    int was = atomic_load_explicit(&cand[epfd], memory_order_relaxed);
    if (op == EPOLL_CTL_DEL || (op == EPOLL_CTL_MOD && ev && !(ev->events & EPOLLIN))) {
        if (was == fd + 1)
            atomic_compare_exchange_strong(&cand[epfd], &was, 0);
        return;
    }
    if ((op == EPOLL_CTL_ADD || op == EPOLL_CTL_MOD) && ev && (ev->events & EPOLLIN) &&
        shim_fd_hinted(fd))
        atomic_store_explicit(&cand[epfd], fd + 1, memory_order_relaxed);
}

/* Numbers that were a set in a registration's note, and whether an fd
 * of such a number was ever copied (the set may then live on under
 * another number when this one closes). */
static _Atomic unsigned char ep_used[EP_CANDS];
static _Atomic int ep_copied;

void shim_epoll_forked(void)
{
    atomic_store_explicit(&ep_copied, 1, memory_order_relaxed);
}

static void set_gone(shim_slot *h, void *arg)
{
    shim_slot_ep_gone(h, *(uint64_t *)arg);
}

/* Per epoll fd: the engines its set holds connections of (bit k: engine
 * k, as the slots' hints say; EP_ENGS_ANY: one whose engine was not known
 * when it was registered), grown by every registration, emptied with the
 * set. A whole-set wait takes those engines' turns alone (appwhole.c). */
#define EP_ENGS_ANY 0x80000000u
static _Atomic uint32_t ep_engs[EP_CANDS];

static uint32_t set_engines(int epfd)
{
    uint32_t m = atomic_load_explicit(&ep_engs[epfd], memory_order_relaxed);
    return (m & EP_ENGS_ANY) ? 0 : m; /* 0: every engine */
}

void shim_epoll_cand_forget(int epfd)
{
    if (epfd < 0 || epfd >= EP_CANDS)
        return;
    atomic_store_explicit(&cand[epfd], 0, memory_order_relaxed);
    atomic_store_explicit(&ep_engs[epfd], 0, memory_order_relaxed);
    if (atomic_load_explicit(&ep_used[epfd], memory_order_relaxed)) {
        /* the set goes with its last fd: the registrations noted in it
         * too, unless a copy of the number may hold it, or the notes are
         * another process's (a forked child's close of its copy) */
        atomic_store_explicit(&ep_used[epfd], 0, memory_order_relaxed);
        if (!atomic_load_explicit(&ep_copied, memory_order_relaxed)) {
            uint64_t key = SHIM_EP_KEY(shim_procenv_self(), epfd, shim_ep_gen(epfd));
            shim_fd_hints_each(set_gone, &key);
        }
    }
    shim_ep_gen_bump(epfd); /* another set at the number is another set */
}

void shim_epoll_forget_range(unsigned first, unsigned last)
{
    for (unsigned fd = first; fd <= last && fd < EP_CANDS; fd++)
        shim_epoll_cand_forget((int)fd);
}

shim_slot *shim_epoll_hint(int fd)
{
    shim_slot *h = shim_fd_hinted(fd);
    /* the slot is fd's connection's still: a slot freed while the program
     * holds the fd (a half-closed connection the peer ended) goes to the
     * next connection, whose app end has another number (a helper's
     * probe: a closed fd's data told 160,000 times for another's bytes) */
    if (h && atomic_load_explicit(&h->app_fd, memory_order_relaxed) != fd)
        return NULL;
    return h;
}

void shim_epoll_reg_note(shim_slot *h, int epfd, int op, int fd, const struct epoll_event *ev)
{
    if (epfd < 0 || epfd >= SHIM_EP_FDS || shim_procenv_table() != 0) {
        /* a set we do not number, or a CLONE_VM child's (its own table) */
        shim_slot_ep_poison(h);
        return;
    }
    uint32_t events = ev ? ev->events : 0;
    if ((op == EPOLL_CTL_ADD || op == EPOLL_CTL_MOD) && (events & EPOLLIN) &&
        !(events & (EPOLLONESHOT | EPOLLEXCLUSIVE)))
        shim_recv_rx_learn(fd, h); /* whether its read takes kept bytes: asked once */
    uint64_t key = SHIM_EP_KEY(shim_procenv_self(), epfd, shim_ep_gen(epfd));
    atomic_store_explicit(&ep_used[epfd], 1, memory_order_relaxed);
    if (op != EPOLL_CTL_DEL) {
        uint32_t k = atomic_load_explicit(&h->engine, memory_order_relaxed);
        atomic_fetch_or_explicit(&ep_engs[epfd],
                                 k > 0 && k <= SHIM_ENGINES_MAX ? 1u << (k - 1) : EP_ENGS_ANY,
                                 memory_order_relaxed);
    }
    shim_slot_ep_note(h, key, op, events, ev ? ev->data.u64 : 0);
}

void shim_epoll_dup_seen(int fd)
{
    shim_slot *h = shim_epoll_hint(fd);
    if (h)
        shim_slot_ep_poison(h); /* the copy's registrations would go uncounted */
    if (fd >= 0 && fd < EP_CANDS && atomic_load_explicit(&ep_used[fd], memory_order_relaxed))
        atomic_store_explicit(&ep_copied, 1, memory_order_relaxed);
}

typedef struct epoll_call {
    int epfd;
    struct epoll_event *evs;
    int max;
    int two; /* the program called epoll_pwait2 */
    uint64_t key; /* the set's (state.h: SHIM_EP_KEY) */
    uint32_t engs; /* the engines its set holds connections of (0: every one) */
} epoll_call;

/* Events told from memory at once, at most: the rest at the next call
 * (level-triggered, as the kernel's ready list past maxevents). */
#define EP_TOLD 128

/* Whether data is one of the n events at e (the kernel's, in the program's
 * buffer: ours to read). */
static int has_data(const struct epoll_event *e, int n, uint64_t data)
{
    for (int i = 0; i < n; i++)
        if (e[i].data.u64 == data)
            return 1;
    return 0;
}

/* The kernel's answer asked again after its k first events (into the
 * program's buffer, where the kernel writes), with the room the m told
 * from memory leave (one already among the kernel's takes none: the
 * engine passed its bytes on into its bridge meanwhile), each event of the
 * same data as one before merged into it; again while the kernel filled
 * the room and events merged left some, at most EP_AGAIN times (a
 * level-triggered event comes back at the end of its ready list). The
 * count now, at least k. */
#define EP_AGAIN 4
static int kernel_again(epoll_call *c, int k, const struct epoll_event *told, int m)
{
    for (int round = 0; round < EP_AGAIN; round++) {
        int left = c->max - k;
        for (int i = 0; i < m; i++)
            left -= !has_data(c->evs, k, told[i].data.u64);
        if (left <= 0)
            break;
        int k2 = real_epoll_wait(c->epfd, c->evs + k, left, 0);
        if (k2 <= 0)
            break;
        int n = k;
        for (int j = k; j < k + k2; j++) {
            int i = 0;
            while (i < k && c->evs[i].data.u64 != c->evs[j].data.u64)
                i++;
            if (i < k)
                c->evs[i].events |= c->evs[j].events; /* written by the kernel: ours to touch */
            else
                c->evs[n++] = c->evs[j];
        }
        k = n;
        if (k2 < left)
            break; /* the kernel had no more */
    }
    return k;
}

/* The program's answer: the kernel's epoll_wait on its set without
 * waiting, and the events of the m bridges whose bytes wait in memory
 * for the read (told: shim_engine_app_kept_ep), merged into an entry of
 * the same data (the kernel's EPOLLOUT for it) or after them, by a
 * guarded copy (a bad buffer is EFAULT, as the kernel's). The kernel is
 * asked for the room they leave, at least one (told_now): neither the
 * kernel's events nor the kept ones can keep the other out for good;
 * more: the first ask left one untold (below). */
static int answer(epoll_call *c, struct epoll_event *told, int m, int more)
{
    int k = c->max > m ? real_epoll_wait(c->epfd, c->evs, c->max - m, 0) : 0;
    if (k < 0)
        return k;
    int room = c->max - k < EP_TOLD ? c->max - k : EP_TOLD;
    if (more && m < room) {
        /* The first ask left the kernel room for one event; where the
         * kernel had fewer, kept ones past that ask's count fill the room,
         * as the kernel's ready list fills maxevents (prog_epollkept's
         * pair: with both of two connections kept, a wait of maxevents 2
         * told one and left the other's bytes untold, for as long as the
         * first had bytes). Those told already are left out, their marks
         * as they are (an edge-triggered one's edge). */
        shim_kept_ask a = {.key = c->key, .engs = c->engs, .out = told + m, .max = room - m,
                           .skip = told, .nskip = m};
        m += shim_engine_app_kept_ep(&a, 1);
        /* ... and one the engine passed on into its bridge between the
         * kernel's look and this ask (its time ran out) is the kernel's
         * now: asked again for the room left, those it told before left
         * out by their data (an edge-triggered one it told then is not
         * told again; a level-triggered one would be twice), and one told
         * from memory that the kernel now has too leaves its room to
         * another. Under ThreadSanitizer and two busy loops, 11 of 20 runs
         * of the pair missed one so before. */
        k = kernel_again(c, k, told, m);
    }
    struct epoll_event add[EP_TOLD];
    int na = 0;
    for (int i = 0; i < m; i++) {
        int j = 0;
        while (j < k && c->evs[j].data.u64 != told[i].data.u64)
            j++;
        if (j < k)
            c->evs[j].events |= told[i].events; /* written by the kernel: ours to touch */
        else if (k + na < c->max)
            add[na++] = told[i];
    }
    if (na == 0)
        return k;
    struct iovec dst = {.iov_base = c->evs + k, .iov_len = (size_t)na * sizeof *add};
    struct iovec src = {.iov_base = add, .iov_len = dst.iov_len};
    if (shim_app_copyv(shim_procenv_self(), &dst, 1, &src, 1, 1) < 0) {
        errno = EFAULT; /* the kept bytes stay kept: told again at the next call */
        return -1;
    }
    return k + na;
}

/* Every other call with maxevents 1: the kernel's event first. */
static _Atomic unsigned one_flip;

/* Bytes kept for the read of bridges registered in c's set (appwhole.c's
 * turn kept them): told, with the kernel's events; others' passed on. 0
 * if none (nothing kept, or none of this set's). Every signal but the
 * faults held (the guarded copy's and the engines' turns' rule). */
static int told_now(epoll_call *c)
{
    struct epoll_event told[EP_TOLD];
    int cap = c->max > 1 ? c->max - 1 : 1;
    if (c->max == 1 && (atomic_fetch_add_explicit(&one_flip, 1, memory_order_relaxed) & 1)) {
        int k = real_epoll_wait(c->epfd, c->evs, 1, 0);
        if (k != 0)
            return k;
    }
    if (cap > EP_TOLD)
        cap = EP_TOLD;
    shim_kept_ask a = {.key = c->key, .engs = c->engs, .out = told, .max = cap};
    int m = shim_engine_app_kept_ep(&a, 1);
    return m > 0 ? answer(c, told, m, a.more) : 0;
}

static uint64_t epoll_key(void *arg)
{
    return ((epoll_call *)arg)->key;
}

static uint32_t epoll_engines(void *arg)
{
    return ((epoll_call *)arg)->engs;
}

static nfds_t epoll_fill(void *arg, struct pollfd *p)
{
    epoll_call *c = arg;
    p[0] = (struct pollfd){.fd = c->epfd, .events = POLLIN};
    return 1;
}

static int epoll_ask(void *arg, struct pollfd *p, int r, short udp, short sig, int kept)
{
    (void)r;
    (void)sig;
    epoll_call *c = arg;
    if (p[0].revents & POLLNVAL) {
        errno = EBADF; /* the set was closed: the kernel's word */
        return -1;
    }
    if (!p[0].revents && !(udp & (POLLIN | POLLERR)) && kept < 0)
        return 0;
    if (kept >= 0) { /* the turn kept bytes (appwhole.c): this set's told from memory */
        int n = told_now(c);
        if (n != 0)
            return n;
    }
    return real_epoll_wait(c->epfd, c->evs, c->max, 0);
}

/* The rest of the program's call, with the time left: its own
 * epoll_pwait2 gets the kernel's answer; an epoll_wait or epoll_pwait
 * waits as the engines do (shim_real_epoll_wait_ts: epoll_pwait where the
 * kernel or a profile lacks epoll_pwait2), so that the program never gets
 * the answer to a call it did not make. */
static int epoll_rest(void *arg, const struct timespec *left, const sigset_t *mask)
{
    epoll_call *c = arg;
    if (c->two)
        return real_epoll_pwait2(c->epfd, c->evs, c->max, left, mask);
    return shim_real_epoll_wait_ts(c->epfd, c->evs, c->max, left, mask);
}

static const shim_wait_ops epoll_ops = {.fill = epoll_fill,
                                        .ask = epoll_ask,
                                        .rest = epoll_rest,
                                        .key = epoll_key,
                                        .engines = epoll_engines};

/* 1 with *out the call's result (errno set); 0: make libc's call. */
static int app_epoll(int epfd, struct epoll_event *evs, int max, const struct timespec *tmo,
                     const sigset_t *mask, int two, int *out)
{
    epoll_call call = {.epfd = epfd, .evs = evs, .max = max, .two = two};
    if (shim_engine_app_kept_any()) {
        /* bytes kept for bridges of this set are its events now (a read
         * took part of them: level-triggered, still ready); those kept
         * for others go into their bridges, where the kernel tells */
        int k = 0;
        shim_crit crit;
        if (epfd >= 0 && epfd < EP_CANDS && max > 0 && shim_crit_enter(&crit)) {
            call.key = SHIM_EP_KEY(shim_procenv_self(), epfd, shim_ep_gen(epfd));
            call.engs = set_engines(epfd);
            k = told_now(&call);
            int err = errno;
            shim_crit_leave(&crit); /* a pending signal's handler runs here */
            errno = err;
        } else {
            shim_kept_flush();
        }
        if (k != 0) {
            *out = k;
            return 1;
        }
    }
    if (!shim_cfg.app_recv || epfd < 0 || epfd >= EP_CANDS || max <= 0)
        return 0;
    int c = atomic_load_explicit(&cand[epfd], memory_order_relaxed) - 1;
    if (c < 0)
        return 0;
    if (tmo && tmo->tv_sec == 0 && tmo->tv_nsec == 0) {
        shim_engine_app_nowait(); /* poll.c's reason */
        return 0;
    }
    shim_slot *h = shim_fd_hinted(c);
    if (!shim_app_recv_slot(h) || !(shim_engine_app_recv_may() || shim_engine_app_io_may())) {
        shim_engine_app_nowait(); /* the kernel's wait: poll.c's reason */
        return 0;
    }
    call.key = SHIM_EP_KEY(shim_procenv_self(), epfd, shim_ep_gen(epfd));
    call.engs = set_engines(epfd);
    return shim_app_wait_call(c, 2, tmo, mask, &epoll_ops, &call, out);
}

SHIM_EXPORT int epoll_wait(int epfd, struct epoll_event *evs, int max, int timeout)
{
    int r;
    struct timespec t = {.tv_sec = timeout / 1000, .tv_nsec = (long)(timeout % 1000) * 1000000L};
    if (app_epoll(epfd, evs, max, timeout < 0 ? NULL : &t, NULL, 0, &r))
        return r;
    return real_epoll_wait(epfd, evs, max, timeout);
}

SHIM_EXPORT int epoll_pwait(int epfd, struct epoll_event *evs, int max, int timeout,
                            const sigset_t *mask)
{
    int r;
    struct timespec t = {.tv_sec = timeout / 1000, .tv_nsec = (long)(timeout % 1000) * 1000000L};
    if (app_epoll(epfd, evs, max, timeout < 0 ? NULL : &t, mask, 0, &r))
        return r;
    return real_epoll_pwait(epfd, evs, max, timeout, mask);
}

SHIM_EXPORT int epoll_pwait2(int epfd, struct epoll_event *evs, int max, const struct timespec *tmo,
                             const sigset_t *mask)
{
    int r;
    if ((!tmo || (tmo->tv_sec >= 0 && tmo->tv_nsec >= 0 && tmo->tv_nsec < 1000000000L)) &&
        app_epoll(epfd, evs, max, tmo, mask, 1, &r))
        return r;
    return real_epoll_pwait2(epfd, evs, max, tmo, mask);
}
