/* linkemu: the link model of one direction: the seeded PRNG, the
 * packet pool and the heap of packets by due time, loss (random and
 * Gilbert-Elliott), duplication, the bottleneck queue (a rate or a mahimahi
 * trace), delay, jitter and reordering. No I/O: linkemu_io.c reads packets
 * in and writes them out when due. */

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linkemu.h"

#define POOL_CHUNK 256

/* ---- PRNG: splitmix64 seeds xoshiro256** (Blackman & Vigna) ------------- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Each (direction, impairment) pair has its own stream, so enabling jitter
 * does not change which packets the loss stream drops. */
void rng_seed(rng *r, uint64_t seed, unsigned id)
{
    uint64_t x = seed ^ (0xd1b54a32d192ed03ULL * (id + 1));
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

/* Uniform in [0, 1). */
static double rng_unit(rng *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

static int rng_percent(rng *r, double pct)
{
    return pct > 0 && rng_unit(r) * 100.0 < pct;
}

/* Standard normal by Box-Muller; one draw per call keeps the stream simple. */
static double rng_normal(rng *r)
{
    double u1 = 1.0 - rng_unit(r); /* (0, 1], log() safe */
    double u2 = rng_unit(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

int pool_init(struct dir *d, size_t bufsz, size_t cap)
{
    d->bufsz = bufsz;
    d->cap = cap;
    d->freelist = calloc(cap, sizeof(*d->freelist));
    d->heap = calloc(cap, sizeof(*d->heap));
    d->ring = calloc(cap, sizeof(*d->ring));
    d->chunks = calloc(cap / POOL_CHUNK + 1, sizeof(*d->chunks));
    if (!d->freelist || !d->heap || !d->ring || !d->chunks)
        return -ENOMEM;
    return 0;
}

void pool_fini(struct dir *d)
{
    for (size_t i = 0; i < d->nchunks; i++)
        free(d->chunks[i]);
    free(d->chunks);
    free(d->freelist);
    free(d->heap);
    free(d->ring);
    free(d->tr_ms);
}

static size_t slot_size(const struct dir *d)
{
    size_t sz = sizeof(struct pkt) + d->bufsz;
    return (sz + 63) & ~(size_t)63;
}

/* NULL when the pool is at its cap or memory is short. */
struct pkt *pkt_get(struct dir *d)
{
    if (!d->nfree && d->nalloc < d->cap) {
        size_t n = d->cap - d->nalloc < POOL_CHUNK ? d->cap - d->nalloc : POOL_CHUNK;
        unsigned char *chunk = malloc(n * slot_size(d));
        if (!chunk)
            return NULL;
        d->chunks[d->nchunks++] = chunk;
        for (size_t i = 0; i < n; i++)
            d->freelist[d->nfree++] = (struct pkt *)(void *)(chunk + i * slot_size(d));
        d->nalloc += n;
    }
    return d->nfree ? d->freelist[--d->nfree] : NULL;
}

void pkt_put(struct dir *d, struct pkt *p)
{
    d->freelist[d->nfree++] = p;
}

static int pkt_before(const struct pkt *a, const struct pkt *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void heap_push(struct dir *d, struct pkt *p)
{
    size_t i = d->nheap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!pkt_before(p, d->heap[parent]))
            break;
        d->heap[i] = d->heap[parent];
        i = parent;
    }
    d->heap[i] = p;
}

struct pkt *heap_pop(struct dir *d)
{
    struct pkt *top = d->heap[0];
    struct pkt *last = d->heap[--d->nheap];
    size_t i = 0, n = d->nheap;
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        const struct pkt *best = last;
        if (l < n && pkt_before(d->heap[l], best))
            m = l, best = d->heap[l];
        if (l + 1 < n && pkt_before(d->heap[l + 1], best))
            m = l + 1;
        if (m == i)
            break;
        d->heap[i] = d->heap[m];
        i = m;
    }
    if (n)
        d->heap[i] = last;
    return top;
}

int link_down(struct dir *d, uint64_t now)
{
    return now < atomic_load_explicit(&d->down_until, memory_order_relaxed);
}

/* Drop from the bottleneck ring every packet whose serialization ended. */
static void queue_drain(struct dir *d, uint64_t now)
{
    while (d->rcount && d->ring[d->rhead].end <= now) {
        d->backlog -= d->ring[d->rhead].len;
        d->rhead = (d->rhead + 1) % d->cap;
        d->rcount--;
    }
}

/* ---- trace-driven bottleneck (mahimahi's format) ----
 *
 * A file of integers, one per line: the ms from the trace's start at which
 * one delivery opportunity of TRACE_OPP_BYTES occurs (a time repeats for
 * several in one ms); the trace repeats after its last time, as mahimahi's
 * LinkQueue does. An opportunity serves the head of the queue byte by byte:
 * several small packets can share one, a large one can take several, and it
 * leaves at the opportunity that carries its last byte. One that finds the
 * queue empty is wasted. The queue is the same drop-tail ring as the rate's,
 * so queue=500p bounds it, and departures are computed on arrival (in
 * virtual time, from the trace's epoch), so a late wake-up never loses an
 * opportunity. */
#define TRACE_OPP_BYTES 1500u

/* Loads FILE into d. Returns 0, or -1 with a message. */
int trace_load(struct dir *d, const char *file)
{
    FILE *f = fopen(file, "r");
    size_t cap = 0;
    char line[64];
    if (!f) {
        fprintf(stderr, "linkemu: trace %s: %s\n", file, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(line, &end, 10);
        while (*end == ' ' || *end == '\r' || *end == '\n')
            end++;
        if (end == line)
            continue; /* a blank line */
        if (errno || *end || v > UINT32_MAX || (d->tr_n && v < d->tr_ms[d->tr_n - 1])) {
            fprintf(stderr, "linkemu: trace %s: line %zu: not a time in ms, or earlier than "
                    "the one before\n", file, d->tr_n + 1);
            fclose(f);
            return -1;
        }
        if (d->tr_n == cap) {
            cap = cap ? 2 * cap : 4096;
            uint32_t *ms = realloc(d->tr_ms, cap * sizeof(*ms));
            if (!ms) {
                fclose(f);
                return -1;
            }
            d->tr_ms = ms;
        }
        d->tr_ms[d->tr_n++] = (uint32_t)v;
    }
    fclose(f);
    if (!d->tr_n || !d->tr_ms[d->tr_n - 1]) {
        fprintf(stderr, "linkemu: trace %s: empty, or all at 0 ms\n", file);
        return -1;
    }
    d->tr_period_ns = (uint64_t)d->tr_ms[d->tr_n - 1] * 1000000u;
    return 0;
}

static uint64_t trace_opp_time(const struct dir *d)
{
    return d->tr_t0 + d->tr_loop * d->tr_period_ns + (uint64_t)d->tr_ms[d->tr_k] * 1000000u;
}

static void trace_next(struct dir *d)
{
    if (++d->tr_k == d->tr_n) {
        d->tr_k = 0;
        d->tr_loop++;
    }
}

/* The departure time of a packet of BYTES that joins the queue at NOW. */
static uint64_t trace_depart(struct dir *d, uint64_t now, uint64_t bytes)
{
    if (trace_opp_time(d) < now) {
        /* The queue is empty: what is left of the cursor's opportunity, and
         * every one since, was wasted. Find the first at or after now. */
        uint64_t rel = now - d->tr_t0, off = rel % d->tr_period_ns;
        size_t lo = 0, hi = d->tr_n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if ((uint64_t)d->tr_ms[mid] * 1000000u < off)
                lo = mid + 1;
            else
                hi = mid;
        }
        d->tr_loop = rel / d->tr_period_ns;
        d->tr_k = lo;
        if (lo == d->tr_n) {
            d->tr_k = 0;
            d->tr_loop++;
        }
        d->tr_used = 0;
    }
    while (bytes > TRACE_OPP_BYTES - d->tr_used) {
        bytes -= TRACE_OPP_BYTES - d->tr_used;
        trace_next(d);
        d->tr_used = 0;
    }
    d->tr_used += (uint32_t)bytes;
    return trace_opp_time(d);
}

/* The bytes the trace offered from its start to NOW (its capacity so far,
 * used or wasted): what a transfer's bytes are set against. Reads only what
 * trace_load set, so the main thread may call it. */
uint64_t trace_offered(const struct dir *d, uint64_t now)
{
    uint64_t rel = now > d->tr_t0 ? now - d->tr_t0 : 0, off = rel % d->tr_period_ns;
    size_t lo = 0, hi = d->tr_n; /* the opportunities at or before off */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((uint64_t)d->tr_ms[mid] * 1000000u <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return ((rel / d->tr_period_ns) * d->tr_n + lo) * TRACE_OPP_BYTES;
}

/* Counts one jitter draw of EXTRA_MS (see struct counters). */
static void jitter_record(struct dir *d, double extra_ms)
{
    const double j = d->im.jitter_ms;
    int64_t ns = (int64_t)llround(extra_ms * NS_PER_MS);
    ctr_add(&d->c.jitter_n, 1);
    if (ctr_get(&d->c.jitter_n) == 1 || ns < (int64_t)ctr_get(&d->c.jitter_min_ns))
        ctr_set(&d->c.jitter_min_ns, (uint64_t)ns);
    if (ctr_get(&d->c.jitter_n) == 1 || ns > (int64_t)ctr_get(&d->c.jitter_max_ns))
        ctr_set(&d->c.jitter_max_ns, (uint64_t)ns);
    int bin = (int)floor((extra_ms + j) / (2.0 * j) * JITTER_BINS);
    bin = bin < 0 ? 0 : bin >= JITTER_BINS ? JITTER_BINS - 1 : bin;
    ctr_add(&d->c.jitter_hist[bin], 1);
}

/* Pass p through the bottleneck and the delay line, or drop it.
 * Takes ownership of p. */
static void link_enqueue(struct dir *d, struct pkt *p, uint64_t now)
{
    const struct impair *im = &d->im;
    uint64_t tx_end = now;

    if (d->rate_bps || d->tr_n) {
        queue_drain(d, now);
        /* An empty queue always takes a packet, whatever its limit; the ring
         * holds at most --limit records, so a full ring is a full queue. */
        if (d->rcount == d->cap ||
            (d->rcount && ((im->queue_pkts && d->rcount >= im->queue_pkts) ||
                           (im->queue_bytes && d->backlog + p->len > im->queue_bytes)))) {
            ctr_add(&d->c.drop_queue, 1);
            pkt_put(d, p);
            return;
        }
        if (d->tr_n) {
            tx_end = trace_depart(d, now, (uint64_t)p->len + im->overhead);
        } else {
            uint64_t start = d->last_tx_end > now ? d->last_tx_end : now;
            /* ns = bits * 1e9 / rate, remainder carried so long runs are exact */
            uint64_t num = (uint64_t)(p->len + im->overhead) * 8 * NS_PER_S + d->tx_rem;
            tx_end = start + num / d->rate_bps;
            d->tx_rem = num % d->rate_bps;
        }
        d->last_tx_end = tx_end;
        d->ring[(d->rhead + d->rcount) % d->cap] = (struct txrec){tx_end, p->len};
        d->rcount++;
        d->backlog += p->len;
        if (d->backlog > ctr_get(&d->c.queue_peak_bytes))
            ctr_set(&d->c.queue_peak_bytes, d->backlog);
    }

    if (rng_percent(&d->r[ST_REORDER], im->reorder_pct)) {
        /* Reordered: skips the propagation delay and jitter, so it overtakes
         * every packet still in flight. It does not raise the FIFO floor. */
        ctr_add(&d->c.reorder, 1);
        p->due = tx_end;
        /* It leaves ahead of the newest delayed packet, hence of at least
         * one that came in before it, iff that one is still held and due
         * later (an equal due time leaves in arrival order). */
        if (d->last_held && d->last_due > p->due)
            ctr_add(&d->c.reorder_ahead, 1);
    } else {
        double extra = 0;
        if (im->jitter_ms > 0) {
            extra = im->jitter_normal ? rng_normal(&d->r[ST_JITTER]) * im->jitter_ms
                                      : (2.0 * rng_unit(&d->r[ST_JITTER]) - 1.0) * im->jitter_ms;
            jitter_record(d, extra);
        }
        double delay = (double)d->delay_ns + extra * NS_PER_MS;
        uint64_t due = tx_end + (delay > 0 ? (uint64_t)delay : 0);
        /* Jitter alone never reorders (like netem with a rate): FIFO floor. */
        if (due < d->last_due)
            due = d->last_due;
        d->last_due = due;
        p->due = due;
        d->last_held = 1;
        d->last_seq = d->seq;
        ctr_add(&d->c.delay_n, 1);
        ctr_minmax(&d->c.delay_n, &d->c.delay_min_ns, &d->c.delay_max_ns, due - tx_end);
    }
    p->seq = d->seq++;
    heap_push(d, p);
}

/* Loss, then duplication, for a packet just read. Takes ownership of p. */
void on_packet(struct dir *d, struct pkt *p, uint64_t now)
{
    const struct impair *im = &d->im;
    ctr_add(&d->c.in_pkts, 1);
    ctr_add(&d->c.in_bytes, p->len);

    /* A link that is down takes nothing in. Before the random draws: a
     * blackout does not shift the loss streams, the n-th packet that does
     * get in meets the decisions it would meet without one. */
    if (link_down(d, now)) {
        ctr_add(&d->c.drop_down, 1);
        pkt_put(d, p);
        return;
    }

    /* Both loss processes see every packet, so each keeps its own
     * statistics when combined: P(lost) = 1 - (1 - loss)(1 - burst). */
    int lost = rng_percent(&d->r[ST_LOSS], im->loss_pct), burst = 0;
    if (im->ge_on) {
        /* Gilbert-Elliott: change state first, then lose with the new
         * state's probability (h in Bad, k in Good). */
        if (d->ge_bad) {
            if (rng_percent(&d->r[ST_GE], im->ge_r))
                d->ge_bad = 0;
        } else if (rng_percent(&d->r[ST_GE], im->ge_p)) {
            d->ge_bad = 1;
        }
        burst = rng_percent(&d->r[ST_GE], d->ge_bad ? im->ge_h : im->ge_k);
    }
    if (lost || burst) {
        ctr_add(lost ? &d->c.drop_loss : &d->c.drop_burst, 1);
        pkt_put(d, p);
        return;
    }
    if (rng_percent(&d->r[ST_DUP], im->dup_pct)) {
        struct pkt *copy = pkt_get(d);
        if (copy) {
            copy->len = p->len;
            memcpy(copy->data, p->data, p->len);
            ctr_add(&d->c.dup, 1);
            link_enqueue(d, p, now);
            link_enqueue(d, copy, now);
            return;
        }
        ctr_add(&d->c.drop_limit, 1); /* the copy could not be made */
    }
    link_enqueue(d, p, now);
}
