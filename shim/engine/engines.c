/*
 * engines.c: the process's engines seen from application threads: which
 * engine takes a new connection, a listener's SO_REUSEPORT group (one
 * socket per engine), the command queues and starting the first engine.
 * The counters of all of them (RUDP_STATS) are enginestats.c's. The
 * threads themselves, their loop and sockets are engine.c's, their bridges
 * bridge.c's; pausing them, enginectl.c's; keepers, keeper.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#include "base/poison.h"

void shim_lgroup_drop(lgroup *g)
{
    if (!g)
        return;
    atomic_fetch_sub(&g->live, 1);
    if (atomic_fetch_sub(&g->members, 1) == 1)
        shim_lgroup_free(g);
}

void shim_lgroup_free(lgroup *g)
{
    if (g->tcp_fd >= 0)
        shim_close_owned(g->tcp_fd);
    shim_free(g);
}

/* Whether the calling thread's fds are of a table the engines do not
 * share: a child with an fd table of its own (adopt.c), or any thread of
 * a process whose engines keep their fds in tables of their own
 * (enginestart.c). Then the fds of a request are copied into the table
 * of the engine that takes it first (adopt_fds), and a listener has one
 * engine. */
static int table_apart(void)
{
    return shim_procenv_table() != 0 || (shim_fds_apart() && !shim_fds_in_engines());
}

/* The caller's fds fds[0..n) (of a table the engines do not share)
 * copied into the engines' table by engine 0, and a number of its own
 * table that wakes engine e. */
static int adopt_fds(struct engine *e, int *fds, int n)
{
    const shim_lifetime_ops *lt = shim_hook.lifetime;
    return lt && lt->adopt_fds ? lt->adopt_fds(e, fds, n) : -ENOSYS;
}

static int wake_fd(struct engine *e, int *own)
{
    const shim_lifetime_ops *lt = shim_hook.lifetime;
    return lt && lt->wake_fd ? lt->wake_fd(e, own) : -ENOSYS;
}

/* Queues c for engine e and wakes it; G.mu held. A child with an fd table
 * of its own wakes it through a number of its own table that names the
 * eventfd (adopt.c); where it has none, the command waits for the engine's
 * next turn, or, with must_wake, is refused (-errno). */
static int push_wake_locked(struct engine *e, cmd *c, int must_wake)
{
    if (G.broken || e->broken) {
        shim_free(c);
        return -EIO;
    }
    int wfd = shim_engine_doorbell(e), own = 0, child = shim_procenv_table() != 0;
    if (child) {
        wfd = wake_fd(e, &own);
        if (wfd < 0 && must_wake) {
            shim_free(c);
            return wfd;
        }
    }
    c->next = NULL;
    if (e->q_tail)
        e->q_tail->next = c;
    else
        e->q_head = c;
    e->q_tail = c;
    atomic_store(&e->cmd_queued, 1); /* before this, no app thread sends for it (appsend.c) */
    /* Once per batch: the engine reads its doorbell before it takes the
     * queue, so a command queued behind one that rang is taken with it
     * (B12's connecting thread: one write per connect before). Only the
     * engine's own number counts as rung: a copy in another table (a
     * child's, another engine's) is checked by its inode, which every
     * eventfd shares, so a write there rings each time as before. */
    uint64_t one = 1;
    int mine = !child && wfd == e->evfd;
    if (wfd >= 0 && (!mine || !e->rung)) {
        ssize_t w = real_write(wfd, &one, sizeof one);
        if (w == (ssize_t)sizeof one && mine)
            e->rung = 1;
    }
    if (own)
        real_close(wfd);
    return 0;
}

static int push_locked(struct engine *e, cmd *c)
{
    return push_wake_locked(e, c, 0);
}

int shim_engine_running(void)
{
    shim_mutex_lock(&G.mu);
    int on = G.nrun > 0 && !G.broken;
    shim_mutex_unlock(&G.mu);
    return on;
}

int shim_engine_push_any(cmd *c)
{
    shim_mutex_lock(&G.mu);
    /* the caller waits on it: it must wake engine 0 now */
    int err = G.nrun ? push_wake_locked(&G.e[0], c, 1) : (shim_free(c), -ENOSYS);
    shim_mutex_unlock(&G.mu);
    return err;
}

int shim_engine_push_locked(struct engine *e, cmd *c)
{
    return push_locked(e, c);
}

/* A feature's command of type with request req: NULL when out of memory. */
static cmd *feature_cmd(int type, void *req)
{
    cmd *c = shim_calloc(1, sizeof *c);
    if (c) {
        c->type = type;
        c->u.ctl = req;
    }
    return c;
}

int shim_engine_post_locked(struct engine *e, int type, void *req)
{
    cmd *c = feature_cmd(type, req);
    return c ? push_locked(e, c) : -ENOMEM;
}

int shim_engine_post_any(int type, void *req)
{
    cmd *c = feature_cmd(type, req);
    return c ? shim_engine_push_any(c) : -ENOMEM;
}

int shim_engine_post_to(struct engine *e, int type, void *req)
{
    cmd *c = feature_cmd(type, req);
    if (!c)
        return -ENOMEM;
    shim_mutex_lock(&G.mu);
    int err = G.nrun ? push_wake_locked(e, c, 1) : (shim_free(c), -ENOSYS);
    shim_mutex_unlock(&G.mu);
    return err;
}

int shim_engine_doorbell(struct engine *e)
{
    int t = shim_fds_in_engines();
    if (t == 0 || !shim_fds_apart())
        return e->evfd; /* the program's table, or the only one */
    int fd = atomic_load(&e->evfd_in[t]);
    if (fd >= 0)
        return fd;
    /* another engine's table: a copy of the program's, kept, in a place
     * its engine kept for it (enginestart.c) */
    struct engine *mine = &G.e[t - 1];
    int c = shim_fds_take_program(e->evfd);
    for (int i = 0; c < 0 && errno == EMFILE && i < SHIM_ENGINES_MAX; i++) {
        int sp = atomic_exchange(&mine->spare[i], -1);
        if (sp >= 0) {
            shim_close_owned(sp);
            c = shim_fds_take_program(e->evfd);
        }
    }
    if (c < 0 || shim_fd_ino(c) != e->evfd_ino) {
        if (c >= 0)
            real_close(c);
        return -1;
    }
    c = shim_fd_move_high(c);
    int want = -1;
    if (!atomic_compare_exchange_strong(&e->evfd_in[t], &want, c)) {
        real_close(c); /* another thread of this table took one meanwhile */
        return want;
    }
    shim_own_fd(c, 1);
    return c;
}

int shim_engine_evfd(const struct engine *e, uint64_t *ino)
{
    *ino = e->evfd_ino;
    return e->evfd;
}

int shim_engine_retire(struct engine *e)
{
    shim_mutex_lock(&G.mu);
    int done = e->q_head == NULL;
    if (done)
        e->broken = 1;
    shim_mutex_unlock(&G.mu);
    return done;
}

/* An engine's load (shim_engine_load): measured over this long, and an
 * engine busier than SATURATED percent of it is full, whatever its number
 * of connections: a new one goes to another (started if need be). */
#define LOAD_WINDOW RUDP_MS(100)
#define SATURATED 80

void shim_engine_load(struct engine *e, rudp_time now, rudp_time turn)
{
    e->load_busy += turn;
    if (!e->load_since)
        e->load_since = now;
    rudp_time span = now - e->load_since;
    if (span < LOAD_WINDOW)
        return;
    uint64_t pct = e->load_busy * 100 / span;
    atomic_store_explicit(&e->load_pct, (unsigned)(pct > 100 ? 100 : pct),
                          memory_order_relaxed);
    atomic_store_explicit(&e->load_at, now, memory_order_relaxed);
    e->load_since = now;
    e->load_busy = 0;
}

/* Whether e was busy for most of its last window, measured lately (an
 * engine asleep since publishes nothing: it is idle). */
static int saturated(struct engine *e, rudp_time now)
{
    uint64_t at = atomic_load_explicit(&e->load_at, memory_order_relaxed);
    return at && now - at < 2 * LOAD_WINDOW &&
           atomic_load_explicit(&e->load_pct, memory_order_relaxed) >= SATURATED;
}

/* Whether e is full: it carries SHIM_SPREAD_AT connections, or it is
 * saturated. */
static int full(struct engine *e, rudp_time now)
{
    return atomic_load(&e->nbridges) >= SHIM_SPREAD_AT || saturated(e, now);
}

/* Whether a is less busy than b: not saturated where b is, else fewer
 * connections. */
static int less_busy(struct engine *a, struct engine *b, rudp_time now)
{
    int sa = saturated(a, now), sb = saturated(b, now);
    if (sa != sb)
        return sb;
    return atomic_load(&a->nbridges) < atomic_load(&b->nbridges);
}

/* Where the engines keep their fds in tables of their own
 * (enginestart.c): the first engine whose table has room for a client
 * connection's two fds, by its connections, with ROOM_SPARE left for
 * its sockets, roaming and copies in passing; another started (its own
 * table, whatever RUDP_ENGINES says: the limit bounds each table) when
 * none has; engine 0 when none can be (the copy then says EMFILE). Each
 * carries its own connections to the end, so one that had room keeps
 * them. The first engine holds the listeners and their accepted
 * connections (one fd each). G.mu held. */
#define ROOM_SPARE 64
static struct engine *pick_room_locked(void)
{
    struct rlimit rl;
    uint64_t lim = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
    for (int k = 0; k < G.nrun; k++) {
        struct engine *e = &G.e[k];
        uint64_t need = 2 * (uint64_t)atomic_load(&e->nbridges) + 2 + ROOM_SPARE;
        if (!e->broken && need <= lim)
            return e;
    }
    if (G.nrun < SHIM_ENGINES_MAX && shim_engine_start_locked(&G.e[G.nrun]) == 0)
        return &G.e[G.nrun - 1];
    return &G.e[0];
}

/* The engine for a new connection: the least busy one running; another
 * started when that one is full. G.mu held. */
static struct engine *pick_locked(void)
{
    struct engine *best = &G.e[0];
    /* A child with an fd table of its own starts no thread for the owner,
     * and wakes engine 0 as it did to hand its fds over (adopt.c): another
     * engine's eventfd may be missing from its table. */
    if (shim_procenv_table() != 0)
        return best;
    if (shim_fds_apart())
        return pick_room_locked();
    rudp_time now = shim_now();
    for (int k = 1; k < G.nrun; k++)
        if (less_busy(&G.e[k], best, now))
            best = &G.e[k];
    if (full(best, now) && G.nrun < shim_cfg.engines &&
        shim_engine_start_locked(&G.e[G.nrun]) == 0)
        best = &G.e[G.nrun - 1];
    return best;
}

/* The engine for a thread's client connection (G.mu held): the one its
 * connects used last while it has room; a thread's first, or past its
 * engine's room, one no other thread's connects claimed; for a thread's
 * first, one started if the limit allows (one for each connecting
 * thread), else the one whose thread connected least lately (wrk's main
 * thread connects once before its threads start); else the least busy.
 * An event loop's epoll wait runs the turns of the engines its set holds
 * connections of (appwhole.c): two threads each looping over its own
 * connections (wrk -t2) then each take their own engine's, where with
 * both threads' connections on both engines neither could. */
static __thread uint8_t thread_engine; /* the index + 1 this thread's connects used last */

static struct engine *pick_for_thread_locked(void)
{
    if (shim_procenv_table() != 0 || shim_fds_apart())
        return pick_locked();
    uintptr_t me = (uintptr_t)pthread_self();
    rudp_time now = shim_now();
    int k = thread_engine - 1;
    struct engine *e = NULL;
    if (k >= 0 && k < G.nrun && !G.e[k].broken && !full(&G.e[k], now))
        e = &G.e[k];
    for (int j = 0; !e && j < G.nrun; j++) {
        uintptr_t owner = atomic_load_explicit(&G.e[j].conn_thread, memory_order_relaxed);
        if ((owner == 0 || owner == me) && !G.e[j].broken && !full(&G.e[j], now))
            e = &G.e[j];
    }
    if (!e && k < 0 && G.nrun > 0 && G.nrun < shim_cfg.engines &&
        shim_engine_start_locked(&G.e[G.nrun]) == 0)
        e = &G.e[G.nrun - 1];
    struct engine *stale = NULL;
    for (int j = 0; !e && k < 0 && j < G.nrun; j++) {
        struct engine *x = &G.e[j];
        if (!x->broken && !full(x, now) && (!stale || x->conn_thread_at < stale->conn_thread_at))
            stale = x;
    }
    if (!e)
        e = stale;
    if (!e)
        e = pick_locked();
    e->conn_thread_at = now;
    atomic_store_explicit(&e->conn_thread, me, memory_order_relaxed);
    thread_engine = (uint8_t)(e - G.e + 1);
    return e;
}

int shim_engine_listen_width(int backlog, int zero_rtt)
{
    if (shim_cfg.engines <= 1 || table_apart() || shim_fds_apart())
        return 1;
    if (!shim_cfg.engines_auto)
        return shim_cfg.engines; /* RUDP_ENGINES=N: all of them */
    /* Tokens and their strike register are an engine's own (core/zrtt.c):
     * a returning client whose SYN the hash gave to another engine would
     * lose its 0-RTT. */
    if (zero_rtt)
        return 1;
    /* listen()'s backlog is what the program says of the clients it
     * expects at once: one engine's share (SHIM_SPREAD_AT) or more, or a
     * process already carrying that many, gets a group; a small server
     * (nc, socat, python's http.server: 1-5) keeps one engine and pays
     * nothing for the group's accept order (fifo.c). */
    if (backlog >= SHIM_SPREAD_AT || backlog < 0)
        return shim_cfg.engines;
    /* listen.c asks without G.mu: engine 0's figures are read only once it
     * runs (nrun is stored with release after its start's memset) */
    if (__atomic_load_n(&G.nrun, __ATOMIC_ACQUIRE) > 0 && full(&G.e[0], shim_now()))
        return shim_cfg.engines;
    return 1;
}

/* Whether an engine other than `to` is between making a client's end
 * writable and sending its answer (after G.answering was read). */
static int others_answering(const struct engine *to)
{
    int nrun = __atomic_load_n(&G.nrun, __ATOMIC_ACQUIRE);
    for (int k = 0; k < nrun; k++)
        if (&G.e[k] != to && atomic_load_explicit(&G.e[k].answering, memory_order_relaxed))
            return 1;
    return 0;
}

/* Until no engine of this process but `to`, the one that will carry the
 * connect, is between making a client's end writable and sending its
 * answer to the handshake (on_established in bridge.c): a connect the app
 * starts once it saw its last one complete then leaves after that one's
 * answer. `to`'s own answers need no wait: they leave at the flush of
 * the turn that made the end writable (pump_once), and `to` takes this
 * connect's command only after that turn (B12's client, whose connects
 * all go to its thread's engine: 7 % of its time waited here for
 * nothing). Asleep on G.answering (a futex word; each answer wakes the
 * waiters): a loop of sched_yield() made 23 calls per connect of B12's
 * 3,500 and took the CPU the engines needed for the answers. Bounded: an
 * engine stopped there (a debugger) must not hang the app's connects. */
static void wait_answers(const struct engine *to)
{
    int n = atomic_load(&G.answering);
    if (!n || !others_answering(to))
        return;
    atomic_fetch_add_explicit(&G.answer_waits, 1, memory_order_relaxed);
    rudp_time now = shim_now(), until = now + RUDP_MS(50);
    /* counted before answering is read again: the engine that answers
     * reads the count after (both sequentially consistent), so it sees
     * this waiter or this waiter sees its answer */
    atomic_fetch_add(&G.answer_waiters, 1);
    while ((n = atomic_load(&G.answering)) != 0 && others_answering(to) && now < until) {
        struct timespec ts = shim_timespec(until - now);
        /* returns at once if it changed meanwhile (EAGAIN): asked again */
        syscall(SYS_futex, (uint32_t *)&G.answering, FUTEX_WAIT_PRIVATE, n, &ts, NULL, 0);
        now = shim_now();
    }
    atomic_fetch_sub(&G.answer_waiters, 1);
}

void shim_engine_answered(struct engine *e)
{
    if (!atomic_load_explicit(&e->answering, memory_order_relaxed))
        return;
    atomic_store_explicit(&e->answering, 0, memory_order_relaxed);
    /* every answer wakes the waiters: one may wait for this engine while
     * another (its own) still answers */
    atomic_fetch_sub(&G.answering, 1);
    if (atomic_load(&G.answer_waiters) > 0)
        syscall(SYS_futex, (uint32_t *)&G.answering, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

int shim_engine_connect(const shim_connect_req *req)
{
    cmd *c = shim_calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->type = CMD_CONNECT;
    c->u.c = *req;
    shim_connect_req *r = &c->u.c;
    int apart = table_apart();
    struct engine *to = NULL;
    if (apart) {
        /* A caller whose table the engines do not share hands its fds
         * over first (adopt.c), as a listener does below, to the engine
         * that will carry the connection: the copies are that engine's
         * (counted in its set), the caller's closed. */
        shim_mutex_lock(&G.mu);
        to = G.nrun && !G.broken ? pick_locked() : NULL;
        shim_mutex_unlock(&G.mu);
        if (!to) {
            shim_free(c);
            return -EXDEV;
        }
        int fds[3] = {r->udp_fd, r->efd, r->tcp_fd};
        int err = adopt_fds(to, fds, r->tcp_fd >= 0 ? 3 : 2);
        if (err < 0) {
            shim_free(c);
            /* the engine's own table (full, or the program's table out of
             * its reach): as when this process is out of fds */
            return shim_procenv_table() == 0 ? -EMFILE : -EXDEV;
        }
        r->udp_fd = fds[0];
        r->efd = fds[1];
        r->tcp_fd = r->tcp_fd >= 0 ? fds[2] : -1;
    } else {
        shim_own_fd(r->udp_fd, 1);
        shim_own_fd(r->efd, 1);
        if (r->tcp_fd >= 0)
            shim_own_fd(r->tcp_fd, 1);
    }
    if (!to && atomic_load(&G.answering)) {
        /* the engine first, for whose answers not to wait; with none
         * pending (the usual case) it is picked below, under one lock */
        shim_mutex_lock(&G.mu);
        to = G.nrun ? pick_for_thread_locked() : NULL;
        shim_mutex_unlock(&G.mu);
    }
    wait_answers(to);
    shim_mutex_lock(&G.mu);
    int err = -EIO;
    if (G.nrun) {
        /* none picked yet, or gone meanwhile: one now (not where the fds
         * were copied into that engine's own table: the push then fails,
         * as before) */
        if (!apart && (!to || to - G.e >= G.nrun || to->broken))
            to = pick_for_thread_locked();
        shim_slot *sp = shim_slot_get(r->slot, r->id);
        if (sp) /* known before the program's epoll_ctl (appsend.c's index comes later) */
            atomic_store_explicit(&sp->engine, (uint32_t)(to - G.e + 1), memory_order_relaxed);
        err = push_locked(to, c);
    } else {
        shim_free(c);
    }
    shim_mutex_unlock(&G.mu);
    return err;
}

/* Another member for the group of the listener socket `first`: the same
 * family, options and address, its own receive buffer; *phfd its name
 * (porthand.c), made before the bind, or -1. */
static int listener_member(int first, int family, int *phfd)
{
    *phfd = -1;
    struct sockaddr_storage a;
    socklen_t alen = sizeof a;
    if (real_getsockname(first, (struct sockaddr *)&a, &alen) < 0)
        return -1;
    int fd = real_socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    static const int copied[][2] = {
        {IPPROTO_IPV6, IPV6_V6ONLY}, {SOL_SOCKET, SO_REUSEADDR}, {SOL_SOCKET, SO_REUSEPORT},
    };
    for (size_t i = 0; i < sizeof copied / sizeof copied[0]; i++) {
        int v;
        socklen_t vl = sizeof v;
        if (copied[i][0] == IPPROTO_IPV6 && family != AF_INET6)
            continue;
        if (real_getsockopt(first, copied[i][0], copied[i][1], &v, &vl) == 0)
            real_setsockopt(fd, copied[i][0], copied[i][1], &v, sizeof v);
    }
    shim_marks_copy(first, fd, family); /* the app's IP_TOS and the like */
    /* the buffer sizes listen.c gave the first (the kernel reports them
     * doubled) */
    static const int bufs[][2] = {{SO_RCVBUF, SO_RCVBUFFORCE}, {SO_SNDBUF, SO_SNDBUFFORCE}};
    for (size_t i = 0; i < 2; i++) {
        int v;
        socklen_t vl = sizeof v;
        if (real_getsockopt(first, SOL_SOCKET, bufs[i][0], &v, &vl) == 0) {
            v /= 2;
            if (real_setsockopt(fd, SOL_SOCKET, bufs[i][1], &v, sizeof v) < 0)
                real_setsockopt(fd, SOL_SOCKET, bufs[i][0], &v, sizeof v);
        }
    }
    const shim_listener_ops *lo = shim_hook.listener;
    *phfd = lo && lo->member_name ? lo->member_name(fd) : -1;
    if (real_bind(fd, (struct sockaddr *)&a, alen) < 0) {
        real_close(fd);
        if (*phfd >= 0)
            shim_close_owned(*phfd);
        *phfd = -1;
        return -1;
    }
    return shim_fd_move_high(fd);
}

/* A child with an fd table of its own (adopt.c): the listener's fds,
 * made in its table, copied into ours. Returns 0 with q's numbers ours, or
 * -EXDEV with every fd as it was (the caller's still). */
static int adopt_listener(shim_listen_req *q, int *xfd)
{
    int fds[4], n = 0;
    fds[n++] = q->udp_fd;
    fds[n++] = q->reserve_fd;
    if (q->phfd >= 0)
        fds[n++] = q->phfd;
    if (*xfd >= 0)
        fds[n++] = *xfd;
    if (adopt_fds(&G.e[0], fds, n) < 0)
        return -EXDEV;
    n = 0;
    q->udp_fd = fds[n++];
    q->reserve_fd = fds[n++];
    if (q->phfd >= 0)
        q->phfd = fds[n++];
    if (*xfd >= 0)
        *xfd = fds[n++];
    return 0;
}

int shim_engine_listen(const shim_listen_req *req)
{
    /* A listener calls in every engine, each with a socket in the
     * listener's SO_REUSEPORT group (listen.c set the option on the first
     * when more than one engine may run); if a member cannot be made,
     * the engines made so far serve it. */
    shim_listen_req q = *req;
    const shim_listen_req *r = &q;
    int fds[SHIM_ENGINES_MAX], phfds[SHIM_ENGINES_MAX];
    int n = 1;
    int reuseport = 0;
    socklen_t rl = sizeof reuseport;
    if (real_getsockopt(r->udp_fd, SOL_SOCKET, SO_REUSEPORT, &reuseport, &rl) < 0)
        reuseport = 0;
    /* a group other processes may join: its member tag (xgroup.c) */
    int xfd = -1;
    const shim_listener_ops *lo = shim_hook.listener;
    unsigned tag = r->app_reuseport && lo && lo->join ? lo->join(r->udp_fd, &xfd) : 0;
    /* A child with an fd table of its own hands its fds over, and makes no
     * members: their sockets would be its table's too, and it starts no
     * engine (adopt.c). Engine 0 serves the listener. So for any thread
     * whose table the engines do not share (table_apart). */
    int foreign = table_apart();
    if (foreign && adopt_listener(&q, &xfd) < 0) {
        if (xfd >= 0)
            real_close(xfd);
        return shim_procenv_table() == 0 ? -EMFILE : -EXDEV; /* as shim_engine_connect */
    }
    if (foreign)
        reuseport = 0;
    fds[0] = r->udp_fd;
    phfds[0] = r->phfd;
    if (xfd >= 0 && !foreign)
        shim_own_fd(xfd, 1);
    shim_mutex_lock(&G.mu);
    int width = shim_engine_listen_width(r->backlog, r->zero_rtt);
    while (reuseport && n < width) {
        if (G.nrun <= n && shim_engine_start_locked(&G.e[G.nrun]) < 0)
            break;
        int fd = listener_member(r->udp_fd, r->lname.family, &phfds[n]);
        if (fd < 0)
            break;
        fds[n++] = fd;
    }
    lgroup *g = NULL;
    if (n > 1 && !(g = shim_calloc(1, SHIM_EXT_AT(sizeof *g) + shim_hook.ext.group))) {
        for (int k = 1; k < n; k++) {
            real_close(fds[k]);
            if (phfds[k] >= 0)
                shim_close_owned(phfds[k]);
        }
        n = 1;
    }
    if (g) {
        g->n = n;
        g->tcp_fd = -1;
        if (r->accept_tcp && r->reserve_fd >= 0 &&
            (g->tcp_fd = real_fcntl(r->reserve_fd, F_DUPFD_CLOEXEC, 0)) >= 0)
            shim_own_fd(g->tcp_fd, 1);
        atomic_store(&g->live, n);
        atomic_store(&g->members, n);
        shim_fifo_group_init(g, fds, n);
    }
    int err = 0;
    for (int k = 0; k < n; k++) {
        cmd *c = shim_calloc(1, sizeof *c);
        /* each member's name, for a process that finds its socket on the
         * port (porthand.c) */
        int phfd = phfds[k];
        if (!c) {
            /* a member that never was: its fd closes, the group forgets it;
             * adopted ones (foreign) are numbers of an engine's own table,
             * not this thread's to close: left there */
            if (!foreign || k > 0) {
                real_close(fds[k]);
                if (phfd >= 0)
                    shim_close_owned(phfd);
            }
            if (k == 0) {
                if (!foreign) {
                    real_close(r->reserve_fd);
                    if (xfd >= 0)
                        shim_close_owned(xfd);
                }
                err = -ENOMEM;
            }
            shim_lgroup_drop(g);
            continue;
        }
        c->type = CMD_LISTEN;
        c->u.l = *r;
        c->u.l.udp_fd = fds[k];
        c->u.l.reserve_fd = k == 0 ? r->reserve_fd : -1;
        c->u.l.member_tag = tag;
        c->u.l.xfd = k == 0 ? xfd : -1; /* engine 0 reads it */
        c->u.l.phfd = phfd;
        c->group = g;
        if (!foreign) { /* adopted: counted by the engine that took them */
            shim_own_fd(fds[k], 1);
            if (k == 0)
                shim_own_fd(r->reserve_fd, 1);
        }
        int e2 = push_locked(&G.e[k], c);
        if (k == 0)
            err = e2;
    }
    shim_mutex_unlock(&G.mu);
    return err;
}

/* A copy of *proto to every running engine. */
static void push_all(const cmd *proto)
{
    shim_mutex_lock(&G.mu);
    for (int k = 0; k < G.nrun; k++) {
        cmd *c = shim_malloc(sizeof *c);
        if (!c)
            break;
        *c = *proto;
        push_locked(&G.e[k], c);
    }
    shim_mutex_unlock(&G.mu);
}

/* A closer waiting for the engines (CMD_LISTEN_CLOSED): left counts the
 * engines still to answer (a futex word), refs the closer's reference and
 * one per engine holding the command. */
struct shim_lclose_wait {
    _Atomic uint32_t left;
    _Atomic int refs;
};

/* How long close() waits for the engines to let a listener's port go: an
 * engine paused (a fork, an exec's hand-over) answers after. */
#define LCLOSE_WAIT_NS 1000000000LL

static void lclose_put(struct shim_lclose_wait *w)
{
    if (atomic_fetch_sub(&w->refs, 1) == 1)
        shim_free(w);
}

void shim_engine_lclose_done(struct shim_lclose_wait *w)
{
    if (!w)
        return;
    if (atomic_fetch_sub(&w->left, 1) == 1)
        syscall(SYS_futex, (uint32_t *)&w->left, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    lclose_put(w);
}

/* One round: CMD_LISTEN_CLOSED to every running engine, and wait (a
 * bound) until each has handled it. */
static void lclose_round(uint64_t id)
{
    struct shim_lclose_wait *w = shim_calloc(1, sizeof *w);
    if (!w)
        return;
    atomic_store(&w->refs, 1);
    shim_mutex_lock(&G.mu);
    for (int k = 0; k < G.nrun; k++) {
        cmd *c = shim_calloc(1, sizeof *c);
        if (!c)
            break;
        c->type = CMD_LISTEN_CLOSED;
        c->u.lc.id = id;
        c->u.lc.wait = w;
        atomic_fetch_add(&w->left, 1);
        atomic_fetch_add(&w->refs, 1);
        if (push_locked(&G.e[k], c) < 0) { /* freed c: nobody answers */
            atomic_fetch_sub(&w->left, 1);
            atomic_fetch_sub(&w->refs, 1);
        }
    }
    shim_mutex_unlock(&G.mu);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        uint32_t left = atomic_load(&w->left);
        if (left == 0)
            break;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long ns = LCLOSE_WAIT_NS - ((long long)(now.tv_sec - t0.tv_sec) * 1000000000LL +
                                         (now.tv_nsec - t0.tv_nsec));
        if (ns <= 0)
            break;
        struct timespec ts = {.tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL};
        syscall(SYS_futex, (uint32_t *)&w->left, FUTEX_WAIT_PRIVATE, left, &ts, NULL, 0);
    }
    lclose_put(w);
}

void shim_engine_listener_closed(uint64_t id)
{
    /* TCP frees a listener's port in close(): a listen() on it right after
     * must not meet our copy of its TCP socket, or its UDP socket, still
     * held. So close() waits for the engines. A second round closes the
     * members of its group that the first left idle (enginecmd.c,
     * do_listen_closed). */
    lclose_round(id);
    shim_mutex_lock(&G.mu);
    int groups = G.nrun > 1;
    shim_mutex_unlock(&G.mu);
    if (groups)
        lclose_round(id);
}

/* A command setting an option of connection or listener id. */
static void set_cmd(cmd *c, int type, uint64_t id, int listener)
{
    memset(c, 0, sizeof *c);
    c->type = type;
    c->u.set.id = id;
    c->u.set.listener = listener;
}

static void push_set(int type, uint64_t id, int listener, const rudp_cc_ops *cc, int level,
                     int opt, int value)
{
    cmd c;
    set_cmd(&c, type, id, listener);
    c.u.set.cc = cc;
    c.u.set.level = level;
    c.u.set.opt = opt;
    c.u.set.value = value;
    push_all(&c);
}

void shim_engine_set_cc(uint64_t id, int listener, const rudp_cc_ops *cc)
{
    push_set(CMD_SET_CC, id, listener, cc, 0, 0, 0);
}

void shim_engine_set_mark(uint64_t id, int listener, int level, int opt, int value)
{
    push_set(CMD_SET_MARK, id, listener, NULL, level, opt, value);
}

void shim_engine_set_cork(uint64_t id, int on)
{
    push_set(CMD_SET_CORK, id, 0, NULL, 0, 0, on);
}

void shim_engine_set_buffers(uint64_t id, int listener, uint32_t sndbuf, uint32_t rcvwnd,
                             uint32_t lowat)
{
    cmd c;
    set_cmd(&c, CMD_SET_BUF, id, listener);
    c.u.set.sndbuf = sndbuf;
    c.u.set.rcvwnd = rcvwnd;
    c.u.set.lowat = lowat;
    push_all(&c);
}

void shim_engine_set_timeouts(uint64_t id, rudp_time keepalive, rudp_time idle, rudp_time user)
{
    cmd c;
    set_cmd(&c, CMD_SET_TIMEOUTS, id, 0);
    c.u.set.keepalive = keepalive;
    c.u.set.idle = idle;
    c.u.set.user = user;
    push_all(&c);
}

int shim_engine_start(void)
{
    shim_mutex_lock(&G.mu);
    int err = 0;
    if (G.broken)
        err = -EIO;
    else if (!G.nrun && shim_procenv_table() != 0)
        err = -ENOSYS; /* a child with an fd table of its own starts none (adopt.c) */
    else if (!G.nrun)
        err = shim_engine_start_locked(&G.e[0]);
    if (err && err != -EIO && err != -ENOSYS)
        G.broken = 1;
    shim_mutex_unlock(&G.mu);
    return err;
}

pid_t shim_engine_pid(void);
pid_t shim_engine_pid(void)
{
    return G.pid;
}
