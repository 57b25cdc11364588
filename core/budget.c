/*
 * budget.c: what a remote sender can make us hold, and the bounds on it.
 *
 * A peer that completes a handshake can open connections and send data;
 * each costs memory here. Whatever it sends, what it makes us hold must be
 * in proportion to what it sent and within stated bounds (README,
 * Security):
 *
 *  - a SYN without a cookie makes a connection at once (one round trip)
 *    unless the listener is under pressure (rudp__must_retry), when it
 *    earns a stateless RETRY and only a SYN with a valid cookie may make
 *    one, as SYN cookies start when the SYN queue overflows. Pressure is
 *    half the backlog in the handshake (or a full accept queue: a RETRY
 *    answers where a drop would leave the client guessing), or half a
 *    source's source_limit, or half the memory limit in use. Half, not
 *    all, because a SYN with a cookie takes its place in the same SYN_RCVD
 *    queue (Linux's cookie ACK goes straight to the accept queue instead),
 *    so spoofed SYNs, which never get past the RETRY, can hold at most the
 *    half of the backlog (or of a source's share) that was open to them,
 *    and honest clients still find the other half. Until its address is
 *    validated, such a connection sends at most 3x the bytes it received
 *    (conn.c);
 *  - connections in the handshake (SYN_RCVD) are bounded by the listener's
 *    backlog, and while an accepted connection waits for the application
 *    (the shim could not hand it over: the application's own accept queue
 *    is full) no new handshake is taken: TCP drops SYNs when its accept
 *    queue is full, and so do we;
 *  - one source address may hold at most source_limit connections in the
 *    handshake or waiting, so one host cannot take the whole backlog.
 *    Loopback sources are exempt: every local client shares the address,
 *    and a local user's reach is not limited by kernel TCP either;
 *  - data out of order costs memory in proportion to the bytes held:
 *    receive memory comes in 16 KiB chunks, and one byte per chunk would
 *    cost 16 KiB per byte, so a write that would take the buffer past
 *    RX_SPARSE_K times the bytes it holds (plus RX_SPARSE_SLACK chunks) is
 *    dropped unacknowledged. Not 2x: a drop-tail queue overflowing in slow
 *    start loses every other segment or worse, and at 2x the simulated
 *    bench links dropped up to 7,124 honest segments (newreno and cubic,
 *    tests/test_budget.c); at 4x plus 4 chunks none;
 *  - the receive window grows only when the peer is blocked at a limit we
 *    advertised for the current window (our newer MAX_DATA may be on its
 *    way) and the application has read half a window since the window last
 *    grew: a bare DATA_BLOCKED grows nothing;
 *  - process-wide, connections plus receive buffers stay under the memory
 *    limit: past it handshakes are refused, windows stop growing, and data
 *    needing new memory is dropped (the peer sends it again).
 */
#include <errno.h>
#include <string.h>

#include "conn.h"
#include "alloc.h"

#define RX_SPARSE_K 4     /* receive memory per byte held, at most */
#define RX_SPARSE_SLACK 4 /* ... plus this many chunks */

struct rudp_source {
    struct {
        uint16_t family;
        uint8_t ip[16];
    } key;
    unsigned n;
    UT_hash_handle hh;
};

void rudp_ctx_set_memory_limit(rudp_ctx *ctx, uint64_t bytes)
{
    ctx->mem_limit = bytes;
}

uint64_t rudp_ctx_memory(const rudp_ctx *ctx)
{
    return ctx->mem;
}

static int over_budget(const rudp_ctx *ctx, uint64_t more)
{
    return ctx->mem_limit && ctx->mem + more > ctx->mem_limit;
}

static rudp_source *source_of(rudp_listener *l, const rudp_addr *peer, int create)
{
    rudp_source k, *s = NULL;
    memset(&k.key, 0, sizeof k.key);
    k.key.family = peer->family;
    memcpy(k.key.ip, peer->ip, sizeof k.key.ip);
    HASH_FIND(hh, l->sources, &k.key, sizeof k.key, s);
    if (s || !create)
        return s;
    const rudp_mem *table_mem = &l->ctx->allocator;
    s = rudp__calloc(table_mem, 1, sizeof *s);
    if (!s)
        return NULL;
    s->key = k.key;
    HASH_ADD(hh, l->sources, key, sizeof s->key, s);
    if (!s->hh.tbl) {
        rudp__free(table_mem, s);
        return NULL;
    }
    return s;
}

int rudp__addr_loopback(const rudp_addr *a)
{
    static const uint8_t v6[16] = {[15] = 1}, mapped[12] = {[10] = 0xff, [11] = 0xff};
    if (a->family == 2)
        return a->ip[0] == 127;
    return memcmp(a->ip, v6, 16) == 0 || (memcmp(a->ip, mapped, 12) == 0 && a->ip[12] == 127);
}

/* Half of n, rounded up: a pressure threshold (1 for a bound of 1). */
static unsigned half(unsigned n)
{
    return n / 2 + (n & 1);
}

int rudp__must_retry(rudp_listener *l, const rudp_addr *peer)
{
    rudp_ctx *ctx = l->ctx;
    if (l->cfg.retry == RUDP_RETRY_ALWAYS)
        return 1;
    /* Half the backlog, or a full accept queue (rudp__admit would drop
     * the SYN): a RETRY answers at no cost, so the client knows a server
     * runs rudp (a connect that hears nothing may race kernel TCP, the
     * shim's RUDP_FALLBACK) and comes back with its cookie. */
    if (l->syn_rcvd >= half(l->backlog) || l->waiting || (l->aq.room && !l->aq.room(l->aq_arg))) {
        ctx->stats.retries_halfopen++;
        return 1;
    }
    if (l->cfg.source_limit && !rudp__addr_loopback(peer)) {
        rudp_source *s = source_of(l, peer, 0);
        if (s && s->n >= half(l->cfg.source_limit)) {
            ctx->stats.retries_source++;
            return 1;
        }
    }
    if (ctx->mem_limit && ctx->mem + sizeof(rudp_conn) > ctx->mem_limit / 2) {
        ctx->stats.retries_memory++;
        return 1;
    }
    return 0;
}

int rudp__admit(rudp_listener *l, const rudp_addr *peer)
{
    rudp_ctx *ctx = l->ctx;
    if (l->syn_rcvd >= l->backlog || l->waiting) {
        ctx->stats.handshakes_dropped++;
        return -EAGAIN;
    }
    if (l->cfg.source_limit && !rudp__addr_loopback(peer)) {
        rudp_source *s = source_of(l, peer, 0);
        if (s && s->n >= l->cfg.source_limit) {
            ctx->stats.source_limited++;
            return -EAGAIN;
        }
    }
    if (over_budget(ctx, sizeof(rudp_conn))) {
        ctx->stats.memory_refused++;
        return -ENOMEM;
    }
    if (l->aq.room && !l->aq.room(l->aq_arg)) {
        ctx->stats.handshakes_dropped++;
        return -EAGAIN;
    }
    return 0;
}

void rudp_listener_set_acceptq(rudp_listener *l, const rudp_acceptq_ops *ops, void *arg)
{
    if (ops)
        l->aq = *ops;
    else
        memset(&l->aq, 0, sizeof l->aq);
    l->aq_arg = arg;
}

/* Whether a connection in queue q counts under its source address: in the
 * handshake or waiting, what one host could hold us with. */
static int sourced(int q)
{
    return q == RUDP_Q_SYN || q == RUDP_Q_WAIT;
}

void rudp__queue(rudp_conn *c, int q)
{
    rudp_listener *l = c->listener;
    if (!l) {
        c->queued = RUDP_Q_NONE;
        return;
    }
    if ((int)c->queued == q)
        return;
    if (c->queued == RUDP_Q_SYN)
        l->syn_rcvd--;
    else if (c->queued == RUDP_Q_WAIT)
        l->waiting--;
    else if (c->queued == RUDP_Q_HAND)
        l->handing--;
    if (q == RUDP_Q_SYN)
        l->syn_rcvd++;
    else if (q == RUDP_Q_WAIT)
        l->waiting++;
    else if (q == RUDP_Q_HAND)
        l->handing++;
    /* The caller's accept queue holds whatever is in ours at all. */
    int held = (q != RUDP_Q_NONE) - (c->queued != RUDP_Q_NONE);
    if (held && l->aq.moved)
        l->aq.moved(l->aq_arg, held);
    if (sourced((int)c->queued) != sourced(q)) {
        rudp_source *s = source_of(l, &c->pkey.addr, sourced(q));
        if (s && sourced(q)) {
            s->n++;
        } else if (s && --s->n == 0) {
            const rudp_mem *table_mem = &l->ctx->allocator;
            HASH_DELETE(hh, l->sources, s);
            rudp__free(table_mem, s);
        }
    }
    c->queued = (unsigned)q & 3u;
}

void rudp__sources_free(rudp_listener *l)
{
    const rudp_mem *table_mem = &l->ctx->allocator;
    rudp_source *s, *tmp;
    HASH_ITER(hh, l->sources, s, tmp) {
        HASH_DELETE(hh, l->sources, s);
        rudp__free(table_mem, s);
    }
}

void rudp_conn_set_waiting(rudp_conn *c, int waiting)
{
    if (c->queued == RUDP_Q_NONE && !waiting)
        return;
    if (c->state == RUDP_CLOSED || c->released)
        waiting = 0;
    rudp__queue(c, waiting ? RUDP_Q_WAIT : RUDP_Q_NONE);
}

int rudp__rx_may_store(rudp_conn *c, uint64_t lo, uint64_t end)
{
    uint32_t missing = rudp__sbuf_missing(&c->rbuf, lo, (size_t)(end - lo));
    if (!missing)
        return 1;
    rudp_ctx *ctx = c->ctx;
    if (over_budget(ctx, (uint64_t)missing * RUDP_SBUF_CHUNK)) {
        ctx->stats.rx_dropped++;
        return 0;
    }
    if (lo == c->rcv_contig)
        return 1; /* in order: chunks fill up */
    uint64_t held = (c->rcv_contig - c->rcv_read) + rudp__ranges_total(&c->rcv) + (end - lo);
    uint64_t chunks = (uint64_t)c->rbuf.nchunks + missing;
    if (chunks * RUDP_SBUF_CHUNK <= RX_SPARSE_K * held + RX_SPARSE_SLACK * (uint64_t)RUDP_SBUF_CHUNK)
        return 1;
    ctx->stats.rx_dropped++;
    return 0;
}

int rudp__window_may_grow(const rudp_conn *c, uint64_t limit, uint64_t taken)
{
    if (limit > c->max_data_sent || limit + c->rwnd < c->max_data_sent)
        return 0; /* not a limit of this window: invented, or stale */
    if (taken < c->rwnd_read || taken - c->rwnd_read < c->rwnd / 2)
        return 0; /* the application has not read half a window since */
    return !over_budget(c->ctx, c->rwnd);
}
