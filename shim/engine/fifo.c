/*
 * fifo.c: a listener's accepted connections reach accept() in the order
 * their handshakes completed, across its engines.
 *
 * Linux queues a listener's completed connections in the order their final
 * ACKs are processed on the one listening socket (tcp_check_req() ->
 * inet_csk_complete_hashdance() -> inet_csk_reqsk_queue_add(), a tail
 * insert), so clients whose connect()s returned one after the other are
 * accepted in that order. With RUDP_ENGINES above 1 a listener has one UDP
 * socket per engine (a SO_REUSEPORT group, engines.c) and each engine
 * hands over what it accepted on its own: a slow engine's earlier
 * connection could reach accept() after a quick one's later one.
 *
 * So each member socket of a group asks the kernel for receive timestamps
 * (SO_TIMESTAMPNS: one cmsg per message of a recvmmsg), and a connection
 * carries the stamp t of the datagram that completed its handshake
 * (rudp_conn_accept_stamp) and s of the SYN it was made from
 * (rudp_conn_syn_stamp). Its engine holds it (e->fifo_held, by t) until
 * every other member has read its socket past s and holds no handshake
 * completed before s, then hands it to the app's unix listener
 * (shim_bridge_try_accept).
 *
 * Why s and not t (as it once was): what an application can tell apart
 * is the order of connects that follow one another. A client's connect()
 * returns after its confirming datagram left (bridge.c, on_established),
 * so when connect() A returned before connect() B began, A's confirming
 * datagram was queued before B's SYN: t(A) < s(B). Once every member has
 * read past s(B), A is completed, and held (so counted in `oldest`, t(A)
 * < s(B): B waits) or handed over already; on B's own engine A comes
 * first by t. Handshakes that overlap may be accepted in either order, as
 * Linux's are when their final ACKs are processed on different CPUs. The
 * wait is short, as the others have usually read past a SYN by the time
 * its handshake completes; with t instead of s every accept in a burst of
 * handshakes waited for another engine's turn to end: 1.6-3 ms on average
 * in B12's 3,500 at once with two engines. (Ordering by s alone is no
 * better: an engine's completions then interleave with the other's one
 * by one, each hand-over waking the other engine.) Without a SYN stamp s
 * is t.
 *
 * The kernel stamps received skbs with
 * ktime_get_real() (net_timestamp_set(), __net_timestamp() in
 * include/linux/skbuff.h), the clock of CLOCK_REALTIME, so every time
 * here is clock_gettime(CLOCK_REALTIME) in ns.
 *
 * Each member publishes (shim_fifo_member, atomics) its horizon: the time
 * up to which its engine has read and handled its socket. An engine takes
 * a clock reading before each read; a read that leaves the socket empty
 * reached that time (anything stamped before it was queued, so it was
 * read), one that does not reached its last datagram's stamp. It is
 * published at the end of the engine's turn, after the core's events, so
 * a handshake it completed is counted in `oldest` before the horizon
 * passes it. Around a read `seq` is odd; it turns even when a read found
 * the socket empty.
 *
 * An idle engine sleeps in epoll_wait with an empty socket and a horizon
 * that does not move. It holds nobody up: an engine deciding sees its
 * member's `seq` even, takes the clock, peeks at the socket's first
 * datagram (MSG_PEEK with no bytes still gives its timestamp cmsg), and
 * reads `seq` again. Unchanged: the idle engine has started no read since
 * it found the socket empty, so it has handled everything that arrived
 * before what is queued now: its horizon is that clock reading if nothing
 * is, else the first datagram's stamp (a queue is in arrival order). A
 * handshake stamped later waits until the idle engine, woken by its
 * level-triggered EPOLLIN, reads and publishes: publishing wakes the
 * engines waiting (`waiters`, through their eventfds). A peek may clear
 * the socket's pending ICMP error (sk_err, as any recvmsg does); the
 * error queue it came with stays, and EPOLLERR with it, which is what
 * the engine reads (engine.c, read_errqueue). A client that never
 * confirms holds nothing: only completed handshakes are ordered.
 *
 * A connection whose confirming datagram reached another engine (a client
 * that moved during its handshake) is completed by the engine that owns
 * its ID, handed the datagram with its stamp (forward.c; the core takes it
 * as rudp_ctx_set_rx_stamp's; the SYN's stamp is its owner's own). Between the hand-over and the owner's
 * counting it in `oldest`, the handing engine's horizon may already be
 * past it: so a stamped datagram handed over counts as unread
 * (fwd_unsettled on its new engine, raised before the handing engine
 * publishes) until the end of the owner's turn that took it (lowered,
 * fwd_settled raised, after its events), and a decision is made only if
 * no engine had one unsettled and none settled while the others were
 * read (Linux: one socket, one queue, nothing to hand over).
 *
 * A full backlog: Linux drops a final ACK that finds the accept queue
 * full (tcp_check_req(), "listen overflow") and the client's
 * retransmission completes the connection later, so the queue stays in
 * the order of the completions it took. Here a connection whose turn
 * came while the app's listener is full stays held, first of its engine
 * (shim_bridge_try_accept returns 0): the other engines' later ones wait
 * behind it, and room goes to the oldest stamp of the group.
 *
 * Not covered: a datagram the kernel stamped but has not yet put in the
 * socket's queue when the peek is made (microseconds, inside the softirq
 * that received it: on loopback the sender's own sendmsg() normally). A
 * clock step between a stamp and a reading shifts both the same way.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#include "base/poison.h"

/* Something is held and no news came: asked again after this, in case a
 * wake-up was missed (none should be). */
#define RECHECK RUDP_MS(50)

static uint64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int index_of(const struct engine *e)
{
    return (int)(e - G.e);
}

void shim_fifo_group_init(lgroup *g, const int *fds, int n)
{
    int on = 1;
    for (int k = 0; k < SHIM_ENGINES_MAX; k++)
        atomic_store(&g->fifo.m[k].fd, k < n ? fds[k] : -1);
    for (int k = 0; k < n; k++)
        real_setsockopt(fds[k], SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
}

int shim_fifo_on(const esock *s)
{
    return s->group && s->group->n > 1;
}

uint64_t shim_fifo_reading(esock *s)
{
    shim_fifo_member *m = &s->group->fifo.m[index_of(s->e)];
    if (!(atomic_load_explicit(&m->seq, memory_order_relaxed) & 1))
        atomic_fetch_add(&m->seq, 1); /* before the read takes anything */
    return realtime_ns();
}

void shim_fifo_read(esock *s, uint64_t t0, uint64_t last, int drained)
{
    uint64_t h = drained && t0 > last ? t0 : last;
    if (h > s->fifo_pend)
        s->fifo_pend = h;
    s->fifo_drained = drained;
    if (!s->fifo_dirty) {
        s->fifo_dirty = 1;
        s->fifo_next = s->e->fifo_dirty;
        s->e->fifo_dirty = s;
    }
}

/* Wakes the engines of g waiting for news, other than me. */
static void wake(lgroup *g, int me)
{
    unsigned mine = 1u << me;
    if (!(atomic_load(&g->fifo.waiters) & ~mine))
        return;
    unsigned w = atomic_fetch_and(&g->fifo.waiters, mine) & ~mine;
    for (int k = 0; k < g->n; k++) {
        if (w & (1u << k)) {
            uint64_t one = 1;
            ssize_t r = real_write(shim_engine_doorbell(&G.e[k]), &one, sizeof one);
            (void)r;
        }
    }
}

/* The oldest stamp e holds for g, 0: none. */
static uint64_t oldest_held(struct engine *e, const lgroup *g)
{
    for (bridge *b = e->fifo_held; b; b = b->held_next)
        if (b->sock->group == g)
            return b->stamp;
    return 0;
}

int shim_fifo_hold(bridge *b, uint64_t stamp, uint64_t syn)
{
    esock *s = b->sock;
    if (!stamp || !shim_fifo_on(s))
        return 0;
    struct engine *e = b->e;
    b->stamp = stamp;
    b->after = syn && syn < stamp ? syn : stamp;
    b->held_at = shim_now();
    b->held = 1;
    bridge **pp = &e->fifo_held;
    while (*pp && (*pp)->stamp <= stamp)
        pp = &(*pp)->held_next;
    b->held_next = *pp;
    *pp = b;
    shim_fifo_member *m = &s->group->fifo.m[index_of(e)];
    atomic_store(&m->oldest, oldest_held(e, s->group));
    return 1;
}

void shim_fifo_forget(bridge *b)
{
    if (!b->held)
        return;
    struct engine *e = b->e;
    for (bridge **pp = &e->fifo_held; *pp; pp = &(*pp)->held_next) {
        if (*pp == b) {
            *pp = b->held_next;
            break;
        }
    }
    b->held = 0;
    lgroup *g = b->sock->group;
    if (g) {
        atomic_store(&g->fifo.m[index_of(e)].oldest, oldest_held(e, g));
        wake(g, index_of(e));
    }
}

void shim_fifo_sock_closed(esock *s)
{
    if (s->fifo_dirty) {
        for (esock **pp = &s->e->fifo_dirty; *pp; pp = &(*pp)->fifo_next) {
            if (*pp == s) {
                *pp = s->fifo_next;
                break;
            }
        }
        s->fifo_dirty = 0;
    }
    shim_fifo_closed(s->group, s->e);
}

void shim_fifo_closed(lgroup *g, struct engine *e)
{
    if (!g)
        return;
    atomic_store(&g->fifo.m[index_of(e)].fd, -1);
    wake(g, index_of(e));
}

/* The kernel receive time of the next datagram queued on fd, read
 * without taking it (MSG_PEEK, no bytes: the control messages still come):
 * UINT64_MAX if none is queued, 0 if it cannot be told. */
static uint64_t head_stamp(int fd)
{
    union {
        char buf[256];
        struct cmsghdr align;
    } ctl;
    char byte;
    struct iovec iov = {.iov_base = &byte, .iov_len = 0};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                        .msg_controllen = sizeof ctl.buf};
    if (real_recvmsg(fd, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC) < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? UINT64_MAX : 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(c), sizeof ts);
            return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        }
    }
    return 0;
}

/* How far member m has read and handled its socket, as far as can be
 * told now (see the top of this file). */
static uint64_t horizon_of(shim_fifo_member *m)
{
    int fd = atomic_load(&m->fd);
    if (fd < 0)
        return UINT64_MAX;
    uint32_t s1 = atomic_load(&m->seq);
    uint64_t h = atomic_load(&m->horizon);
    if (s1 & 1)
        return h; /* reading: what it published */
    uint64_t t1 = realtime_ns();
    uint64_t head = head_stamp(fd);
    if (atomic_load(&m->seq) != s1 || !head)
        return h;
    /* empty: read up to the clock reading; else up to its first datagram
     * (the queue is in arrival order) */
    uint64_t r = head == UINT64_MAX ? t1 : head - 1;
    return r > h ? r : h;
}

void shim_fifo_fwd_out(struct engine *to, uint64_t stamp)
{
    if (stamp)
        atomic_fetch_add(&to->fwd_unsettled, 1);
}

void shim_fifo_fwd_in(struct engine *e, uint64_t stamp)
{
    if (stamp)
        e->fwd_taken++;
}

/* At the end of e's turn, its events handled: what it took is settled;
 * the engines holding connections for their turn hear of it. */
static void settle(struct engine *e)
{
    if (!e->fwd_taken)
        return;
    atomic_fetch_sub(&e->fwd_unsettled, e->fwd_taken);
    atomic_fetch_add(&e->fwd_settled, e->fwd_taken);
    e->fwd_taken = 0;
    int nrun = __atomic_load_n(&G.nrun, __ATOMIC_ACQUIRE);
    for (int k = 0; k < nrun; k++) {
        if (&G.e[k] != e && atomic_load(&G.e[k].fifo_waits)) {
            uint64_t one = 1;
            ssize_t w = real_write(shim_engine_doorbell(&G.e[k]), &one, sizeof one);
            (void)w;
        }
    }
}

/* The hand-overs settled so far, all engines; UINT64_MAX if one is not. */
static uint64_t settled(void)
{
    int nrun = __atomic_load_n(&G.nrun, __ATOMIC_ACQUIRE);
    uint64_t sum = 0;
    for (int k = 0; k < nrun; k++) {
        if (atomic_load(&G.e[k].fwd_unsettled))
            return UINT64_MAX;
        sum += atomic_load(&G.e[k].fwd_settled);
    }
    return sum;
}

/* What one call of shim_fifo_turn learnt of a group's members' horizons:
 * a horizon only grows, so one read earlier in the turn is a lower bound
 * that still lets a handshake stamped at or before it go. Its held
 * connections go in stamp order, so in a burst one peek at each other
 * member serves many (B12's 3,500 accepts: 1.7 peeks each before). */
typedef struct horizons {
    lgroup *g;
    uint64_t h[SHIM_ENGINES_MAX];
} horizons;

/* Whether the handshake of engine `me` made from a SYN stamped t may go:
 * every other member has read past t and holds none completed before it
 * (a tie goes to the lower engine index). The horizon is read before
 * `oldest`: a member counts a handshake in `oldest` before its horizon
 * passes it. hz: the horizons this turn read already (one read earlier in
 * the turn is still read before the `oldest` read here). */
static int turn_of(lgroup *g, int me, uint64_t t, horizons *hz)
{
    /* a datagram handed over and not yet counted by its new engine: read
     * by its first (whose horizon may be past it), unread for the order */
    uint64_t before = settled();
    if (before == UINT64_MAX)
        return 0;
    if (hz && hz->g != g) {
        hz->g = g;
        memset(hz->h, 0, sizeof hz->h);
    }
    for (int k = 0; k < g->n; k++) {
        if (k == me)
            continue;
        shim_fifo_member *m = &g->fifo.m[k];
        if (hz && k < SHIM_ENGINES_MAX && hz->h[k] >= t)
            ; /* read past t earlier in this turn */
        else {
            uint64_t h = horizon_of(m);
            if (hz && k < SHIM_ENGINES_MAX)
                hz->h[k] = h;
            if (h < t)
                return 0;
        }
        uint64_t o = atomic_load(&m->oldest);
        if (o && (o < t || (o == t && k < me)))
            return 0;
    }
    /* none settled meanwhile: one that did may be counted in a member read
     * before it was */
    return settled() == before;
}

int shim_fifo_turn(struct engine *e, rudp_time now)
{
    int me = index_of(e);
    settle(e);
    /* what this turn read, after its handshakes were counted (pump) */
    for (esock *s = e->fifo_dirty; s; s = s->fifo_next) {
        s->fifo_dirty = 0;
        if (!s->group)
            continue;
        shim_fifo_member *m = &s->group->fifo.m[me];
        if (s->fifo_pend > atomic_load_explicit(&m->horizon, memory_order_relaxed))
            atomic_store(&m->horizon, s->fifo_pend);
        if (s->fifo_drained && (atomic_load_explicit(&m->seq, memory_order_relaxed) & 1))
            atomic_fetch_add(&m->seq, 1);
        wake(s->group, me);
    }
    e->fifo_dirty = NULL;
    atomic_store(&e->fifo_waits, e->fifo_held != NULL);
    if (!e->fifo_held)
        return 0;
    /* Hand over in stamp order; a group's first that must wait stops its
     * later ones (completed after it, they go after it). */
    lgroup *blocked[SHIM_ENGINES_MAX * 2];
    int nblocked = 0, handed = 0;
    horizons hz = {.g = NULL};
    bridge **pp = &e->fifo_held;
    while (*pp) {
        bridge *b = *pp;
        lgroup *g = b->sock->group;
        int skip = 0;
        for (int i = 0; i < nblocked; i++)
            skip |= blocked[i] == g;
        if (!skip) {
            /* asked for news first: what is published after the check
             * below then wakes this engine */
            atomic_fetch_or(&g->fifo.waiters, 1u << me);
            if (turn_of(g, me, b->after, &hz)) {
                *pp = b->held_next;
                b->held = 0;
                rudp_time held_at = b->held_at;
                if (!shim_bridge_try_accept(b, now)) { /* may free b */
                    /* the app's backlog is full: still first, held again
                     * (the others' later ones wait behind it) */
                    b->held_next = *pp;
                    *pp = b;
                    b->held = 1;
                    if (e->retry_at > now + ACCEPT_RETRY)
                        e->retry_at = now + ACCEPT_RETRY;
                    if (nblocked < (int)(sizeof blocked / sizeof blocked[0]))
                        blocked[nblocked++] = g;
                    pp = &b->held_next;
                    continue;
                }
                handed++;
                e->fifo_held_n++;
                e->fifo_held_ns += now - held_at;
                /* in the app's listener now: the others may follow */
                uint64_t o = oldest_held(e, g);
                atomic_store(&g->fifo.m[me].oldest, o);
                if (!o)
                    atomic_fetch_and(&g->fifo.waiters, ~(1u << me));
                wake(g, me);
                continue;
            }
            if (nblocked < (int)(sizeof blocked / sizeof blocked[0]))
                blocked[nblocked++] = g;
        }
        pp = &b->held_next;
    }
    if (e->fifo_held && e->retry_at > now + RECHECK)
        e->retry_at = now + RECHECK;
    return handed;
}
