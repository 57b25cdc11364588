/*
 * engines.c: the process's engines seen from application threads: which
 * engine takes a new connection, a listener's SO_REUSEPORT group (one
 * socket per engine), the command queues, starting the first engine, and
 * the counters of all of them at exit. The threads themselves, their loop,
 * sockets and bridges are engine.c's; pausing them and keepers, keeper.c's.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine.h"

#include "poison.h"

void shim_lgroup_drop(lgroup *g)
{
    if (!g)
        return;
    atomic_fetch_sub(&g->live, 1);
    if (atomic_fetch_sub(&g->members, 1) == 1)
        free(g);
}

/* Queues c for engine e; G.mu held. */
static int push_locked(struct engine *e, cmd *c)
{
    if (G.broken || e->broken) {
        free(c);
        return -EIO;
    }
    c->next = NULL;
    if (e->q_tail)
        e->q_tail->next = c;
    else
        e->q_head = c;
    e->q_tail = c;
    uint64_t one = 1;
    ssize_t w = write(e->evfd, &one, sizeof one);
    (void)w;
    return 0;
}

int shim_engine_push_locked(struct engine *e, cmd *c)
{
    return push_locked(e, c);
}

int shim_engine_retire(struct engine *e)
{
    pthread_mutex_lock(&G.mu);
    int done = e->q_head == NULL;
    if (done)
        e->broken = 1;
    pthread_mutex_unlock(&G.mu);
    return done;
}

/* Connections an engine holds before a new one goes to another engine
 * (started if need be): a small program keeps one engine thread. */
#define SPREAD_AT 32

/* The engine for a new connection: the least busy one running. G.mu held. */
static struct engine *pick_locked(void)
{
    struct engine *best = &G.e[0];
    for (int k = 1; k < G.nrun; k++)
        if (atomic_load(&G.e[k].nbridges) < atomic_load(&best->nbridges))
            best = &G.e[k];
    if (atomic_load(&best->nbridges) >= SPREAD_AT && G.nrun < shim_cfg.engines &&
        shim_engine_start_locked(&G.e[G.nrun]) == 0)
        best = &G.e[G.nrun - 1];
    return best;
}

int shim_engine_connect(const shim_connect_req *r)
{
    cmd *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->type = CMD_CONNECT;
    c->u.c = *r;
    shim_own_fd(r->udp_fd, 1);
    shim_own_fd(r->efd, 1);
    pthread_mutex_lock(&G.mu);
    int err = G.nrun ? push_locked(pick_locked(), c) : (free(c), -EIO);
    pthread_mutex_unlock(&G.mu);
    return err;
}

/* Another member for the group of the listener socket `first`: the same
 * family, options and address, its own receive buffer. */
static int listener_member(int first, int family)
{
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
    /* the buffer sizes sock.c gave the first (the kernel reports them
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
    if (real_bind(fd, (struct sockaddr *)&a, alen) < 0) {
        real_close(fd);
        return -1;
    }
    return shim_fd_move_high(fd);
}

int shim_engine_listen(const shim_listen_req *r)
{
    /* A listener calls in every engine, each with a socket in the
     * listener's SO_REUSEPORT group (sock.c set the option on the first
     * when more than one engine may run); if a member cannot be made,
     * the engines made so far serve it. */
    int fds[SHIM_ENGINES_MAX];
    int n = 1;
    fds[0] = r->udp_fd;
    int reuseport = 0;
    socklen_t rl = sizeof reuseport;
    if (real_getsockopt(r->udp_fd, SOL_SOCKET, SO_REUSEPORT, &reuseport, &rl) < 0)
        reuseport = 0;
    pthread_mutex_lock(&G.mu);
    while (reuseport && n < shim_cfg.engines) {
        if (G.nrun <= n && shim_engine_start_locked(&G.e[G.nrun]) < 0)
            break;
        int fd = listener_member(r->udp_fd, r->lname.family);
        if (fd < 0)
            break;
        fds[n++] = fd;
    }
    lgroup *g = NULL;
    if (n > 1 && !(g = calloc(1, sizeof *g))) {
        for (int k = 1; k < n; k++)
            real_close(fds[k]);
        n = 1;
    }
    if (g) {
        g->n = n;
        atomic_store(&g->live, n);
        atomic_store(&g->members, n);
    }
    int err = 0;
    for (int k = 0; k < n; k++) {
        cmd *c = calloc(1, sizeof *c);
        if (!c) {
            /* a member that never was: its fd closes, the group forgets it */
            real_close(fds[k]);
            if (k == 0) {
                real_close(r->reserve_fd);
                err = -ENOMEM;
            }
            shim_lgroup_drop(g);
            continue;
        }
        c->type = CMD_LISTEN;
        c->u.l = *r;
        c->u.l.udp_fd = fds[k];
        c->u.l.reserve_fd = k == 0 ? r->reserve_fd : -1;
        c->group = g;
        shim_own_fd(fds[k], 1);
        if (k == 0)
            shim_own_fd(r->reserve_fd, 1);
        int e2 = push_locked(&G.e[k], c);
        if (k == 0)
            err = e2;
    }
    pthread_mutex_unlock(&G.mu);
    return err;
}

void shim_engine_listener_closed(uint64_t id)
{
    pthread_mutex_lock(&G.mu);
    for (int k = 0; k < G.nrun; k++) {
        cmd *c = calloc(1, sizeof *c);
        if (!c)
            break;
        c->type = CMD_LISTEN_CLOSED;
        c->u.id = id;
        push_locked(&G.e[k], c);
    }
    pthread_mutex_unlock(&G.mu);
}


int shim_engine_start(void)
{
    pthread_mutex_lock(&G.mu);
    int err = 0;
    if (G.broken)
        err = -EIO;
    else if (!G.nrun)
        err = shim_engine_start_locked(&G.e[0]);
    if (err && err != -EIO)
        G.broken = 1;
    pthread_mutex_unlock(&G.mu);
    return err;
}

pid_t shim_engine_pid(void);
pid_t shim_engine_pid(void)
{
    return G.pid;
}

/* Both counter structs hold nothing but uint64_t counters (said where they
 * are defined), so the engines' figures add up field by field. */
_Static_assert(sizeof(rudp_stats) % sizeof(uint64_t) == 0, "rudp_stats: uint64_t counters only");
_Static_assert(sizeof(shim_udpio_stats) % sizeof(uint64_t) == 0,
               "shim_udpio_stats: uint64_t counters only");

static void add_counters(uint64_t *sum, const void *one, size_t size)
{
    const uint64_t *a = one;
    for (size_t i = 0; i < size / sizeof *a; i++)
        sum[i] += a[i];
}

void shim_engine_add_totals(struct engine *e, shim_engine_totals *t)
{
    if (!e->ctx || !e->io || t->n >= SHIM_ENGINES_MAX)
        return;
    const rudp_stats *es = rudp_ctx_stats(e->ctx);
    t->conns[t->n++] = es->conns_opened + es->conns_accepted;
    add_counters((uint64_t *)&t->u, shim_udpio_stats_get(e->io), sizeof t->u);
    add_counters((uint64_t *)&t->s, es, sizeof t->s);
    t->gso |= shim_udpio_gso_on(e->io);
    t->wakeups += e->wakeups;
    t->timed += e->timed_wakeups;
    t->late += e->late_ns;
    t->squatted += e->squatted;
    t->memory += rudp_ctx_memory(e->ctx);
    if (e->longest_turn > t->longest)
        t->longest = e->longest_turn;
}

void shim_engine_print_stats(void)
{
    if (shim_ident_refused())
        shim_log(0, "foreign connections to our listeners refused %llu",
                 (unsigned long long)shim_ident_refused());
    if (!G.nrun || G.pid != getpid())
        return;
    /* The engines' figures, summed. */
    shim_engine_totals t;
    memset(&t, 0, sizeof t);
    for (int k = 0; k < G.nrun; k++)
        shim_engine_add_totals(&G.e[k], &t);
    char per[SHIM_ENGINES_MAX * 24] = "";
    size_t pl = 0;
    for (int k = 0; k < t.n; k++) {
        int w = snprintf(per + pl, sizeof per - pl, "%s%llu", k ? "/" : "",
                         (unsigned long long)t.conns[k]);
        if (w > 0 && (size_t)w < sizeof per - pl)
            pl += (size_t)w;
    }
    const shim_udpio_stats u = t.u;
    const rudp_stats s = t.s;
    uint64_t wakeups = t.wakeups, timed = t.timed, late = t.late, longest = t.longest;
    uint64_t squatted = t.squatted, memory = t.memory;
    int gso = t.gso;
    shim_log(0, "engine: threads %d (connections each %s); wake-ups %llu (%llu by a deadline, "
                "late by %.1f us on average, longest turn %.1f ms); "
                "datagrams sent %llu in %llu calls, %llu GSO trains (GSO %s, refused %llu), "
                "%llu not taken; received %llu in %llu reads, %llu coalesced by GRO, "
                "%llu dropped by a full receive buffer",
             G.nrun, per, (unsigned long long)wakeups, (unsigned long long)timed,
             timed ? (double)late / (double)timed / 1000 : 0.0, (double)longest / 1e6,
             (unsigned long long)u.datagrams_out, (unsigned long long)u.send_calls,
             (unsigned long long)u.trains, gso ? "on" : "off", (unsigned long long)u.gso_failed,
             (unsigned long long)u.send_dropped, (unsigned long long)u.datagrams_in,
             (unsigned long long)u.reads, (unsigned long long)u.coalesced,
             (unsigned long long)u.rx_dropped);
    if (squatted)
        shim_log(0, "handoffs refused (listener name held by another process) %llu",
                 (unsigned long long)squatted);
    shim_log(0,
             "datagrams out %llu in %llu, bytes out %llu in %llu, stream bytes sent "
             "%llu, retransmitted packets %llu (%llu bytes), probe timeouts %llu, duplicates "
             "%llu, malformed %llu, unknown connection %llu, connections opened %llu accepted "
             "%llu closed %llu, resets sent %llu received %llu, icmp ignored %llu acted on %llu, "
             "handshakes dropped %llu (source limit %llu) refused for memory %llu, data dropped "
             "%llu, memory held %llu",
             (unsigned long long)s.dgrams_out, (unsigned long long)s.dgrams_in,
             (unsigned long long)s.bytes_out, (unsigned long long)s.bytes_in,
             (unsigned long long)s.stream_bytes_sent, (unsigned long long)s.pkts_retransmitted,
             (unsigned long long)s.bytes_retransmitted, (unsigned long long)s.pto_count,
             (unsigned long long)s.dup_pkts, (unsigned long long)s.malformed,
             (unsigned long long)s.unknown_conn, (unsigned long long)s.conns_opened,
             (unsigned long long)s.conns_accepted, (unsigned long long)s.conns_closed,
             (unsigned long long)s.resets_sent, (unsigned long long)s.resets_received,
             (unsigned long long)s.icmp_ignored, (unsigned long long)s.icmp_soft,
             (unsigned long long)s.handshakes_dropped, (unsigned long long)s.source_limited,
             (unsigned long long)s.memory_refused, (unsigned long long)s.rx_dropped,
             (unsigned long long)memory);
}
