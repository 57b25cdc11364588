/*
 * linkemu: a userspace link emulator for tests and benchmarks.
 *
 * This kernel has no netem, so two network namespaces are joined by a TUN
 * device in each (IFF_TUN | IFF_NO_PI) and this program forwards IP packets
 * between them, applying per direction: one-way delay, jitter, random loss,
 * Gilbert-Elliott burst loss, reordering, duplication and a rate limit with
 * a bounded drop-tail queue. Every random decision comes from a seeded
 * xoshiro256** stream, so a run is reproducible for a given packet sequence.
 *
 * Model of one direction (a packet read from the sending TUN at time t):
 *
 *   loss (random, then Gilbert-Elliott) -> duplication -> bottleneck queue
 *   (drop-tail, serialization (len+overhead)*8/rate) -> propagation delay
 *   + jitter (FIFO kept) or, if picked for reordering, no propagation delay
 *   -> written to the receiving TUN at its due time.
 *
 * One thread per direction reads its input TUN, keeps its packets in a
 * min-heap keyed by due time, and sleeps in ppoll() with a nanosecond
 * timeout until the next due time or the next arrival (timer slack is set
 * to 1 ns so the kernel does not round the sleep). Nothing busy-waits.
 * Departure times are computed in virtual time (each packet's serialization
 * starts when the previous one ends), so a late wake-up delays a packet by
 * the wake-up latency but never lowers the long-run rate.
 *
 * The main thread only waits for signals: SIGUSR1 prints the counters,
 * SIGUSR2 applies the command in the --ctl file (a blackout: the link
 * carries nothing, either way or one way, for a while or until told),
 * SIGINT/SIGTERM prints them and exits. Counters are written by one worker
 * each and read by the main thread, hence relaxed atomics; the blackout's
 * end is written by the main thread and read by the workers.
 *
 * Besides the emulator ("run", the default mode) the program has two small
 * helper modes used by the tests: "echo" (a UDP echo server) and "probe"
 * (sends a fixed numbered sequence of UDP datagrams to an echo server and
 * reports loss, RTT, duplicates, reordering and a hash of the loss pattern).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_tun.h>

#define NS_PER_MS 1000000.0
#define NS_PER_S 1000000000ULL
/* Default --slack: packets due this close to now are sent now, since a
 * sleep and wake-up costs more than this. */
#define SLACK_NS_DEFAULT 5000ULL
/* Packets read per wake-up before due packets are delivered again. */
#define READ_BATCH 64
#define POOL_CHUNK 256

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static uint64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* SCHED_FIFO at PRIO for thread TH (0: leave it alone). A link is hardware:
 * it should not wait for the CPU behind the endpoints it carries, and the
 * kernel's RT throttling (95% by default) keeps a runaway from freezing the
 * machine. Failure only warns. */
static void set_rt(pthread_t th, int prio, const char *who)
{
    if (prio <= 0)
        return;
    struct sched_param sp = {.sched_priority = prio};
    int e = pthread_setschedparam(th, SCHED_FIFO, &sp);
    if (e)
        fprintf(stderr, "linkemu: %s: SCHED_FIFO %d: %s (running without)\n", who, prio,
                strerror(e));
}

/* ---- PRNG: splitmix64 seeds xoshiro256** (Blackman & Vigna) ------------- */

typedef struct {
    uint64_t s[4];
} rng;

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
static void rng_seed(rng *r, uint64_t seed, unsigned id)
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

/* ---- configuration ------------------------------------------------------ */

enum { ST_LOSS, ST_GE, ST_DUP, ST_REORDER, ST_JITTER, ST_COUNT };

struct impair {
    double delay_ms;
    double jitter_ms;
    int jitter_normal; /* 0 uniform in [-j, +j], 1 normal with sigma j */
    double loss_pct;
    int ge_on;
    double ge_p, ge_r, ge_h, ge_k; /* percent */
    double reorder_pct;
    double dup_pct;
    double rate_mbit; /* 0 = unlimited */
    uint64_t queue_bytes;
    uint64_t queue_pkts;
    uint32_t overhead;
    const char *trace; /* mahimahi trace file: the bottleneck's delivery
                          opportunities instead of a rate; NULL: none */
};

static void impair_default(struct impair *im)
{
    memset(im, 0, sizeof(*im));
    im->ge_h = 100.0;
    im->queue_pkts = 1000;
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return -EINVAL;
    *out = v;
    return 0;
}

/* "500000", "500k", "1.5m" bytes or "300p" packets. */
static int parse_queue(const char *s, struct impair *im)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0)
        return -EINVAL;
    double mult = 1;
    int pkts = 0;
    if (*end == 'k' || *end == 'K')
        mult = 1e3, end++;
    else if (*end == 'm' || *end == 'M')
        mult = 1e6, end++;
    else if (*end == 'p')
        pkts = 1, end++;
    if (*end)
        return -EINVAL;
    if (pkts) {
        im->queue_pkts = (uint64_t)v;
        im->queue_bytes = 0;
    } else {
        im->queue_bytes = (uint64_t)(v * mult);
        im->queue_pkts = 0;
    }
    return 0;
}

/* SPEC is "key=value,key=value"; see usage(). Applies on top of *im. */
static int parse_spec(const char *spec, struct impair *im)
{
    char *copy = strdup(spec), *save = NULL;
    int rc = 0;
    if (!copy)
        return -ENOMEM;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *val = strchr(tok, '=');
        if (!val) {
            rc = -EINVAL;
            break;
        }
        *val++ = 0;
        double v = 0;
        if (!strcmp(tok, "delay"))
            rc = parse_double(val, 0, 1e6, &im->delay_ms);
        else if (!strcmp(tok, "jitter"))
            rc = parse_double(val, 0, 1e6, &im->jitter_ms);
        else if (!strcmp(tok, "dist")) {
            if (!strcmp(val, "uniform"))
                im->jitter_normal = 0;
            else if (!strcmp(val, "normal"))
                im->jitter_normal = 1;
            else
                rc = -EINVAL;
        } else if (!strcmp(tok, "loss"))
            rc = parse_double(val, 0, 100, &im->loss_pct);
        else if (!strcmp(tok, "ge_p"))
            rc = parse_double(val, 0, 100, &im->ge_p), im->ge_on = 1;
        else if (!strcmp(tok, "ge_r"))
            rc = parse_double(val, 0, 100, &im->ge_r), im->ge_on = 1;
        else if (!strcmp(tok, "ge_h"))
            rc = parse_double(val, 0, 100, &im->ge_h);
        else if (!strcmp(tok, "ge_k"))
            rc = parse_double(val, 0, 100, &im->ge_k);
        else if (!strcmp(tok, "reorder"))
            rc = parse_double(val, 0, 100, &im->reorder_pct);
        else if (!strcmp(tok, "dup"))
            rc = parse_double(val, 0, 100, &im->dup_pct);
        else if (!strcmp(tok, "rate"))
            rc = parse_double(val, 0, 1e6, &im->rate_mbit);
        else if (!strcmp(tok, "queue"))
            rc = parse_queue(val, im);
        else if (!strcmp(tok, "trace"))
            rc = (im->trace = strdup(val)) ? 0 : -ENOMEM;
        else if (!strcmp(tok, "overhead")) {
            rc = parse_double(val, 0, 65535, &v);
            im->overhead = (uint32_t)v;
        } else
            rc = -EINVAL;
        if (rc) {
            fprintf(stderr, "linkemu: bad spec item '%s=%s'\n", tok, val);
            break;
        }
    }
    free(copy);
    return rc;
}

static void impair_describe(const struct impair *im, char *buf, size_t len)
{
    char q[32], r[300];
    if (im->trace)
        snprintf(r, sizeof(r), "trace:%s", im->trace);
    else
        snprintf(r, sizeof(r), "%gMbit/s", im->rate_mbit);
    if (im->queue_pkts)
        snprintf(q, sizeof(q), "%" PRIu64 "p", im->queue_pkts);
    else
        snprintf(q, sizeof(q), "%" PRIu64 "B", im->queue_bytes);
    snprintf(buf, len,
             "delay=%gms jitter=%gms(%s) loss=%g%% ge=%s(p=%g r=%g h=%g k=%g) "
             "reorder=%g%% dup=%g%% rate=%s queue=%s overhead=%" PRIu32 "B",
             im->delay_ms, im->jitter_ms, im->jitter_normal ? "normal" : "uniform",
             im->loss_pct, im->ge_on ? "on" : "off", im->ge_p, im->ge_r, im->ge_h, im->ge_k,
             im->reorder_pct, im->dup_pct, r, q, im->overhead);
}

/* ---- one direction ------------------------------------------------------ */

#define JITTER_BINS 10

struct counters {
    _Atomic uint64_t in_pkts, in_bytes;
    _Atomic uint64_t out_pkts, out_bytes;
    _Atomic uint64_t drop_loss;  /* random loss */
    _Atomic uint64_t drop_burst; /* Gilbert-Elliott loss */
    _Atomic uint64_t drop_queue; /* bottleneck queue full (drop-tail) */
    _Atomic uint64_t drop_limit; /* packet pool exhausted (--limit) */
    _Atomic uint64_t drop_down;  /* read or due while the link was down (blackout) */
    _Atomic uint64_t tx_err;     /* write to the receiving TUN failed */
    _Atomic uint64_t dup, reorder;
    _Atomic uint64_t reorder_ahead; /* reordered packets that left before a packet
                                     * that came in ahead of them */
    _Atomic uint64_t queue_peak_bytes;
    _Atomic uint64_t wakeups; /* returns from ppoll: the cost driver when pacing */

    /* What the link applied, so a test can tell the emulator's doing from
     * the machine's (a loaded host delays packets after linkemu wrote them,
     * or wakes linkemu late).  For packets through the delay line (not
     * picked for reordering): the propagation delay applied, jitter and FIFO
     * floor included (due time - end of serialization). */
    _Atomic uint64_t delay_n, delay_min_ns, delay_max_ns;
    /* Jitter as drawn, before the FIFO floor and the clamp at 0: signed ns
     * stored as two's complement, and a histogram of JITTER_BINS equal bins
     * over [-jitter, +jitter] (normal draws beyond it count in the end bins). */
    _Atomic uint64_t jitter_n, jitter_min_ns, jitter_max_ns;
    _Atomic uint64_t jitter_hist[JITTER_BINS];
    /* Lateness: time a packet was written to the receiving TUN minus its due
     * time (0 when sent early, within --slack): the largest, and how many
     * packets were written more than 1 ms late. */
    _Atomic uint64_t late_max_ns, late_1ms;
};

/* Only the owning worker writes a counter: a relaxed load+store is enough
 * and avoids a locked instruction per packet. */
static void ctr_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static uint64_t ctr_get(_Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static void ctr_set(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, v, memory_order_relaxed);
}

/* Running min and max of unsigned V over N samples (N counted elsewhere,
 * before this call: the first sample sets both). */
static void ctr_minmax(_Atomic uint64_t *n, _Atomic uint64_t *mn, _Atomic uint64_t *mx, uint64_t v)
{
    if (ctr_get(n) == 1 || v < ctr_get(mn))
        ctr_set(mn, v);
    if (ctr_get(n) == 1 || v > ctr_get(mx))
        ctr_set(mx, v);
}

struct pkt {
    uint64_t due;
    uint64_t seq; /* tie-break: equal due times leave in arrival order */
    uint32_t len;
    unsigned char data[];
};

struct txrec {
    uint64_t end; /* serialization of this packet ends at */
    uint32_t len;
};

struct dir {
    const char *name;
    struct impair im;
    struct counters c;
    int in_fd, out_fd, stop_fd;
    rng r[ST_COUNT];
    int ge_bad;
    uint64_t delay_ns, rate_bps;
    uint64_t slack_ns;

    /* packet pool: slots allocated in chunks, up to cap */
    size_t bufsz, cap, nalloc;
    struct pkt **freelist;
    size_t nfree;
    void **chunks;
    size_t nchunks;

    /* min-heap on (due, seq) */
    struct pkt **heap;
    size_t nheap;
    uint64_t seq;
    uint64_t last_due; /* FIFO floor for packets that are not reordered */
    uint64_t last_seq; /* seq of the packet that set last_due */
    int last_held;     /* ... and it is still in the heap */

    /* bottleneck queue: a ring of packets whose serialization has not ended */
    struct txrec *ring;
    size_t rhead, rcount;
    uint64_t backlog;
    uint64_t last_tx_end, tx_rem;

    /* Trace-driven bottleneck (im.trace): tr_n opportunities at tr_ms[] ms
     * from the trace's start, repeating every tr_period_ns from tr_t0. The
     * cursor is opportunity tr_k of repetition tr_loop, of which tr_used
     * bytes are taken. */
    uint32_t *tr_ms;
    size_t tr_n, tr_k;
    uint64_t tr_period_ns, tr_t0, tr_loop;
    uint32_t tr_used;

    /* Blackout: the link is down while CLOCK_MONOTONIC < down_until (0: up,
     * UINT64_MAX: until an "up" command). Set by the main thread (ctl_apply). */
    _Atomic uint64_t down_until;

    pthread_t th;
};

static int pool_init(struct dir *d, size_t bufsz, size_t cap)
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

static void pool_fini(struct dir *d)
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
static struct pkt *pkt_get(struct dir *d)
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

static void pkt_put(struct dir *d, struct pkt *p)
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

static struct pkt *heap_pop(struct dir *d)
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

static int link_down(struct dir *d, uint64_t now)
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
static int trace_load(struct dir *d, const char *file)
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
static uint64_t trace_offered(const struct dir *d, uint64_t now)
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
static void on_packet(struct dir *d, struct pkt *p, uint64_t now)
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

/* Reads up to READ_BATCH packets. Returns 1 if the batch was full (more may
 * be waiting), 0 if the TUN is drained, -errno on a hard error. */
static int read_batch(struct dir *d)
{
    static __thread unsigned char scratch[65536];
    for (int i = 0; i < READ_BATCH; i++) {
        struct pkt *p = pkt_get(d);
        unsigned char *buf = p ? p->data : scratch;
        size_t cap = p ? d->bufsz : sizeof(scratch);
        ssize_t n = read(d->in_fd, buf, cap);
        if (n <= 0) {
            if (p)
                pkt_put(d, p);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && errno == EAGAIN)
                return 0;
            return n < 0 ? -errno : -EIO;
        }
        if (!p) {
            ctr_add(&d->c.in_pkts, 1);
            ctr_add(&d->c.in_bytes, (uint64_t)n);
            ctr_add(&d->c.drop_limit, 1);
            continue;
        }
        p->len = (uint32_t)n;
        on_packet(d, p, now_ns());
    }
    return 1;
}

static void deliver_due(struct dir *d, uint64_t now)
{
    while (d->nheap && d->heap[0]->due <= now + d->slack_ns) {
        struct pkt *p = heap_pop(d);
        if (d->last_held && p->seq == d->last_seq)
            d->last_held = 0;
        uint64_t at = now_ns();
        /* ... and lets nothing out: what was in flight when it went down
         * and falls due before it comes back is lost too, so the receiver
         * sees nothing at all for the whole blackout. */
        if (link_down(d, at)) {
            ctr_add(&d->c.drop_down, 1);
            pkt_put(d, p);
            continue;
        }
        if (at > p->due && at - p->due > ctr_get(&d->c.late_max_ns))
            ctr_set(&d->c.late_max_ns, at - p->due);
        if (at > p->due + 1000000)
            ctr_add(&d->c.late_1ms, 1);
        ssize_t n;
        do
            n = write(d->out_fd, p->data, p->len);
        while (n < 0 && errno == EINTR);
        if (n == (ssize_t)p->len) {
            ctr_add(&d->c.out_pkts, 1);
            ctr_add(&d->c.out_bytes, p->len);
        } else {
            /* Typically EIO: the receiving TUN is not up yet. Say it once. */
            if (!ctr_get(&d->c.tx_err))
                fprintf(stderr, "linkemu: %s: write: %s (counted in tx_err)\n", d->name,
                        n < 0 ? strerror(errno) : "short write");
            ctr_add(&d->c.tx_err, 1);
        }
        pkt_put(d, p);
    }
}

static void *dir_run(void *arg)
{
    struct dir *d = arg;
    struct pollfd pfd[2] = {{.fd = d->in_fd, .events = POLLIN}, {.fd = d->stop_fd, .events = POLLIN}};
    int readable = 1;

    for (;;) {
        int more = 0;
        if (readable) {
            more = read_batch(d);
            if (more < 0) {
                fprintf(stderr, "linkemu: %s: read: %s\n", d->name, strerror(-more));
                more = 0;
            }
        }
        deliver_due(d, now_ns());

        struct timespec ts, *tsp = NULL;
        if (more) {
            ts = (struct timespec){0, 0};
            tsp = &ts;
        } else if (d->nheap) {
            uint64_t now = now_ns(), due = d->heap[0]->due;
            /* Sleep until the first packet is due, then send with it every
             * packet due within the slack (deliver_due). */
            uint64_t wait = due > now ? due - now : 0;
            ts = (struct timespec){(time_t)(wait / NS_PER_S), (long)(wait % NS_PER_S)};
            tsp = &ts;
        }
        int n = ppoll(pfd, 2, tsp, NULL);
        ctr_add(&d->c.wakeups, 1);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "linkemu: %s: ppoll: %s\n", d->name, strerror(errno));
            break;
        }
        if (n > 0 && pfd[1].revents)
            break;
        readable = more || (n > 0 && (pfd[0].revents & POLLIN));
        if (n > 0 && (pfd[0].revents & (POLLERR | POLLHUP))) {
            fprintf(stderr, "linkemu: %s: TUN device went away\n", d->name);
            break;
        }
    }
    return NULL;
}

/* ---- TUN devices in namespaces ------------------------------------------ */

/* Creates TUN device NAME with MTU in network namespace NS (a name under
 * /var/run/netns, a path, or NULL for the current one). The fd stays bound
 * to that namespace after we return to ours. Returns the fd or -errno. */
static int tun_open_in(const char *ns, const char *name, int mtu)
{
    int self = -1, target = -1, fd = -1, sock = -1, rc;
    char path[512];

    if (ns) {
        if (strchr(ns, '/'))
            snprintf(path, sizeof(path), "%s", ns);
        else
            snprintf(path, sizeof(path), "/var/run/netns/%s", ns);
        self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        target = open(path, O_RDONLY | O_CLOEXEC);
        if (self < 0 || target < 0) {
            rc = -errno;
            fprintf(stderr, "linkemu: open %s: %s\n", self < 0 ? "/proc/self/ns/net" : path,
                    strerror(errno));
            goto fail;
        }
        if (setns(target, CLONE_NEWNET) < 0) {
            rc = -errno;
            fprintf(stderr, "linkemu: setns %s: %s\n", path, strerror(errno));
            goto fail;
        }
    }

    fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        rc = -errno;
        fprintf(stderr, "linkemu: open /dev/net/tun: %s\n", strerror(errno));
        goto fail;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        rc = -errno;
        fprintf(stderr, "linkemu: TUNSETIFF %s: %s\n", name, strerror(errno));
        goto fail;
    }
    sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifr.ifr_mtu = mtu;
    if (sock < 0 || ioctl(sock, SIOCSIFMTU, &ifr) < 0) {
        rc = -errno;
        fprintf(stderr, "linkemu: set MTU %d on %s: %s\n", mtu, name, strerror(errno));
        goto fail;
    }
    close(sock);
    sock = -1;
    if (ns && setns(self, CLONE_NEWNET) < 0) {
        rc = -errno;
        fprintf(stderr, "linkemu: setns back: %s\n", strerror(errno));
        goto fail;
    }
    if (self >= 0)
        close(self);
    if (target >= 0)
        close(target);
    return fd;

fail:
    if (sock >= 0)
        close(sock);
    if (fd >= 0)
        close(fd);
    if (self >= 0) {
        if (setns(self, CLONE_NEWNET) < 0)
            rc = -errno;
        close(self);
    }
    if (target >= 0)
        close(target);
    return rc;
}

/* ---- counters ----------------------------------------------------------- */

struct ctr_field {
    const char *key;
    size_t off;
    int is_signed; /* two's complement int64 */
};

static const struct ctr_field ctr_fields[] = {
    {"in_pkts", offsetof(struct counters, in_pkts), 0},
    {"in_bytes", offsetof(struct counters, in_bytes), 0},
    {"out_pkts", offsetof(struct counters, out_pkts), 0},
    {"out_bytes", offsetof(struct counters, out_bytes), 0},
    {"drop_loss", offsetof(struct counters, drop_loss), 0},
    {"drop_burst", offsetof(struct counters, drop_burst), 0},
    {"drop_queue", offsetof(struct counters, drop_queue), 0},
    {"drop_limit", offsetof(struct counters, drop_limit), 0},
    {"drop_down", offsetof(struct counters, drop_down), 0},
    {"tx_err", offsetof(struct counters, tx_err), 0},
    {"dup", offsetof(struct counters, dup), 0},
    {"reorder", offsetof(struct counters, reorder), 0},
    {"reorder_ahead", offsetof(struct counters, reorder_ahead), 0},
    {"queue_peak_bytes", offsetof(struct counters, queue_peak_bytes), 0},
    {"wakeups", offsetof(struct counters, wakeups), 0},
    {"delay_n", offsetof(struct counters, delay_n), 0},
    {"delay_min_ns", offsetof(struct counters, delay_min_ns), 0},
    {"delay_max_ns", offsetof(struct counters, delay_max_ns), 0},
    {"jitter_n", offsetof(struct counters, jitter_n), 0},
    {"jitter_min_ns", offsetof(struct counters, jitter_min_ns), 1},
    {"jitter_max_ns", offsetof(struct counters, jitter_max_ns), 1},
#define HIST(i) {"jitter_hist_" #i, offsetof(struct counters, jitter_hist[i]), 0}
    HIST(0), HIST(1), HIST(2), HIST(3), HIST(4), HIST(5), HIST(6), HIST(7), HIST(8), HIST(9),
#undef HIST
    {"late_max_ns", offsetof(struct counters, late_max_ns), 0},
    {"late_1ms", offsetof(struct counters, late_1ms), 0},
};
_Static_assert(JITTER_BINS == 10, "ctr_fields lists 10 jitter_hist bins");
#define NFIELDS (sizeof(ctr_fields) / sizeof(ctr_fields[0]))

static uint64_t ctr_field_get(struct dir *d, size_t i)
{
    return ctr_get((_Atomic uint64_t *)(void *)((char *)&d->c + ctr_fields[i].off));
}

/* The --ctl file and what became of the commands read from it (the main
 * thread's alone). */
struct ctl {
    const char *file;
    uint64_t applied, rejected;
};

/* Human table on stderr; key=value lines to FILE (written to FILE.tmp and
 * renamed, so a reader never sees half a file). */
static void stats_dump(struct dir *dirs, int ndirs, uint64_t t0, const char *file, int final,
                       const struct ctl *ctl)
{
    uint64_t snap[2][NFIELDS];
    uint64_t now = now_ns(), real = realtime_ns();
    for (int k = 0; k < ndirs; k++)
        for (size_t i = 0; i < NFIELDS; i++)
            snap[k][i] = ctr_field_get(&dirs[k], i);

    fprintf(stderr, "linkemu: counters after %.3f s%s\n", (double)(now - t0) / 1e9,
            final ? " (final)" : "");
    fprintf(stderr, "  %-3s %10s %12s %10s %12s %9s %10s %10s %10s %9s %6s %8s %8s\n", "dir",
            "in_pkts", "in_bytes", "out_pkts", "out_bytes", "drop_loss", "drop_burst",
            "drop_queue", "drop_limit", "drop_down", "tx_err", "dup", "reorder");
    for (int k = 0; k < ndirs; k++) {
        fprintf(stderr,
                "  %-3s %10" PRIu64 " %12" PRIu64 " %10" PRIu64 " %12" PRIu64 " %9" PRIu64
                " %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %9" PRIu64 " %6" PRIu64 " %8" PRIu64
                " %8" PRIu64 "\n",
                dirs[k].name, snap[k][0], snap[k][1], snap[k][2], snap[k][3], snap[k][4],
                snap[k][5], snap[k][6], snap[k][7], snap[k][8], snap[k][9], snap[k][10],
                snap[k][11]);
    }
    if (!file)
        return;
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", file);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "linkemu: %s: %s\n", tmp, strerror(errno));
        return;
    }
    fprintf(f, "time_ns=%" PRIu64 "\nrealtime_ns=%" PRIu64 "\nelapsed_ns=%" PRIu64 "\nfinal=%d\n",
            now, real, now - t0, final);
    fprintf(f, "ctl_applied=%" PRIu64 "\nctl_rejected=%" PRIu64 "\n", ctl->applied, ctl->rejected);
    for (int k = 0; k < ndirs; k++)
        fprintf(f, "%s_down_until_ns=%" PRIu64 "\n", dirs[k].name,
                atomic_load_explicit(&dirs[k].down_until, memory_order_relaxed));
    for (int k = 0; k < ndirs; k++)
        for (size_t i = 0; i < NFIELDS; i++)
            if (ctr_fields[i].is_signed)
                fprintf(f, "%s_%s=%" PRId64 "\n", dirs[k].name, ctr_fields[i].key,
                        (int64_t)snap[k][i]);
            else
                fprintf(f, "%s_%s=%" PRIu64 "\n", dirs[k].name, ctr_fields[i].key, snap[k][i]);
    for (int k = 0; k < ndirs; k++)
        if (dirs[k].tr_n)
            fprintf(f, "%s_trace_offered_bytes=%" PRIu64 "\n", dirs[k].name,
                    trace_offered(&dirs[k], now));
    if (fclose(f) != 0 || rename(tmp, file) != 0)
        fprintf(stderr, "linkemu: writing %s: %s\n", file, strerror(errno));
}

/* ---- emulator main ------------------------------------------------------ */

static void usage(FILE *f)
{
    fputs(
        "usage: linkemu [run] --ns-a NS --ns-b NS [options]\n"
        "       linkemu echo --port PORT [--bind ADDR] [--rt PRIO]\n"
        "       linkemu probe --to ADDR --port PORT [--count N] [--interval MS]\n"
        "                     [--size BYTES] [--wait MS] [--rt PRIO]\n"
        "\n"
        "run: create TUN device DEV-A in namespace A and DEV-B in namespace B\n"
        "(IFF_TUN|IFF_NO_PI, MTU set by --mtu; namespaces are names under\n"
        "/var/run/netns as made by 'ip netns add', or paths) and forward IP\n"
        "packets between them with impairments. The devices vanish when linkemu\n"
        "exits; addresses and 'link up' are the caller's job (see netns.sh).\n"
        "  --ns-a NS, --ns-b NS     namespaces (default: the current one)\n"
        "  --dev-a NAME, --dev-b NAME  TUN names (default emua, emub)\n"
        "  --both SPEC              impairments for both directions\n"
        "  --a2b SPEC, --b2a SPEC   per direction, applied on top of --both\n"
        "  --seed N                 PRNG seed (default 1)\n"
        "  --mtu N                  TUN MTU (default 1500)\n"
        "  --limit N                max packets held per direction (default 65536);\n"
        "                           beyond it packets count as drop_limit\n"
        "  --stats FILE             also write counters as key=value lines to FILE\n"
        "  --rt PRIO                run the forwarding threads SCHED_FIFO at PRIO\n"
        "                           (default 10; 0 = normal scheduling), so a loaded\n"
        "                           machine does not add delay the link was not asked\n"
        "                           for. Kernel RT throttling still leaves others 5%\n"
        "  --slack US               send packets up to US microseconds before they are\n"
        "                           due when that saves a wake-up (default 5). Each\n"
        "                           wake-up costs ~15-20 us of CPU on a VM, i.e. ~25%\n"
        "                           of a core at 100 Mbit/s paced with --rt; --slack\n"
        "                           250 sends in bursts of ~2 packets there for half.\n"
        "                           Long-run rates stay exact either way\n"
        "  --ctl FILE               on SIGUSR2, apply the command in FILE (one line):\n"
        "                           'down [MS] [a2b|b2a]': a blackout, the link carries\n"
        "                           nothing for MS ms from now (without MS: until 'up');\n"
        "                           every packet read, and every packet falling due, while\n"
        "                           it is down is dropped silently (drop_down), so the\n"
        "                           endpoints' sends still succeed;\n"
        "                           'up [a2b|b2a]': ends a blackout now. No direction\n"
        "                           means both. The stats file is rewritten as the\n"
        "                           answer (ctl_applied or ctl_rejected moves)\n"
        "\n"
        "SPEC is comma-separated key=value (all optional, default off/0):\n"
        "  delay=MS      one-way propagation delay, fractional allowed\n"
        "  jitter=MS     added to the delay: uniform in [-MS,+MS] (dist=uniform, the\n"
        "                default) or normal with sigma MS (dist=normal); the total\n"
        "                is clamped at 0 and packets stay FIFO (a packet never\n"
        "                leaves before the previous one), like netem with a rate\n"
        "  dist=uniform|normal\n"
        "  loss=PCT      independent random loss\n"
        "  ge_p=PCT      Gilbert-Elliott burst loss: P(Good->Bad) per packet\n"
        "  ge_r=PCT      P(Bad->Good) per packet (mean burst length 100/ge_r)\n"
        "  ge_h=PCT      loss in Bad state (default 100)\n"
        "  ge_k=PCT      loss in Good state (default 0)\n"
        "                per packet: state transition first, then loss with the new\n"
        "                state's probability; mean loss = (p*h + r*k)/(p+r).\n"
        "                Random and burst loss both see every packet; one lost\n"
        "                to both counts as drop_loss\n"
        "  dup=PCT       duplicate the packet (the copy also uses the bottleneck)\n"
        "  reorder=PCT   send the packet without the propagation delay and jitter,\n"
        "                so it overtakes every packet in flight (needs delay>0)\n"
        "  rate=MBIT     bottleneck rate in Mbit/s (10^6 bit/s); 0 = unlimited.\n"
        "                Serialization time = (IP length + overhead) * 8 / rate\n"
        "  queue=LIMIT   bottleneck queue, drop-tail: bytes (500000, 500k, 1.5m;\n"
        "                k=10^3, m=10^6) or packets (300p); default 1000p.\n"
        "                The packet being serialized counts; an empty queue\n"
        "                always accepts one packet\n"
        "  overhead=B    bytes added per packet for serialization only\n"
        "  trace=FILE    instead of rate: mahimahi's trace format, one integer a\n"
        "                line, the ms from the trace's start of one 1500-byte\n"
        "                delivery opportunity (repeated for several in one ms);\n"
        "                the trace repeats after its last time and starts when\n"
        "                linkemu does. Packets take the opportunities' bytes in\n"
        "                order (IP length + overhead); one that finds the queue\n"
        "                empty is wasted. queue= bounds the queue as with rate\n"
        "Order per packet: loss, burst loss, duplication, queue/rate, delay.\n"
        "Each impairment of each direction draws from its own xoshiro256**\n"
        "stream seeded from --seed, so a given packet sequence always meets the\n"
        "same decisions, and enabling one impairment does not shift another's.\n"
        "\n"
        "linkemu exits (as on SIGTERM) when its parent process dies.\n"
        "Prints 'linkemu: ready' on stderr once both TUNs are open. SIGUSR1\n"
        "prints the counters (and rewrites --stats FILE); SIGINT/SIGTERM print\n"
        "them and exit. Per direction (a2b = read from DEV-A, written to DEV-B):\n"
        "in_pkts in_bytes out_pkts out_bytes drop_loss drop_burst drop_queue\n"
        "drop_limit drop_down tx_err dup reorder queue_peak_bytes wakeups. When\n"
        "idle: in_pkts + dup = out_pkts + drop_loss + drop_burst + drop_queue +\n"
        "drop_limit + drop_down + tx_err.\n"
        "down_until_ns: the CLOCK_MONOTONIC time (as time_ns) a blackout of that\n"
        "direction ends (0: never down; 18446744073709551615: until 'up'); the\n"
        "file's realtime_ns is CLOCK_REALTIME at the same moment as time_ns.\n"
        "reorder_ahead: reordered packets that did leave ahead of one that came\n"
        "in before them. What the link applied, for telling its doing from a\n"
        "loaded host's:\n"
        "delay_n delay_min_ns delay_max_ns (propagation delay given to packets\n"
        "not reordered, jitter and FIFO floor included), jitter_n jitter_min_ns\n"
        "jitter_max_ns (jitter as drawn, signed) jitter_hist_0..9 (draws in ten\n"
        "equal bins over [-jitter, +jitter]), late_max_ns late_1ms (how late\n"
        "packets were written: the largest, and how many by more than 1 ms).\n"
        "\n"
        "echo: UDP echo server on PORT (IPv4 and IPv6), until killed.\n"
        "  --rt PRIO (echo and probe): run SCHED_FIFO at PRIO\n"
        "probe: send COUNT numbered datagrams (default 100, SIZE bytes, default\n"
        "64) every MS ms (default 10) to an echo server, wait up to --wait MS\n"
        "(default 1000) after the last one (or the last echo, if later), print\n"
        "one line of key=value:\n"
        "sent recv lost loss_pct dup overtakers (packets that arrived before a\n"
        "lower-numbered one) loss_runs (stretches of consecutive lost numbers)\n"
        "send_err rtt_min_ms rtt_avg_ms rtt_max_ms rtt_mdev_ms rtt_p1_ms rtt_p50_ms\n"
        "rtt_p95_ms rtt_p99_ms (percentiles, nearest rank: a few packets the host delayed\n"
        "do not move them)\n"
        "pattern (64-bit hash of which sequence numbers came back). RTTs use the\n"
        "kernel's receive timestamps (SO_TIMESTAMPNS), not the probe's wake-up.\n",
        f);
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

/* Applies the command in ctl->file (read whole, at most one line):
 *   down [MS] [a2b|b2a]   the link carries nothing for MS milliseconds from
 *                         now (fractions allowed), or until "up" without MS
 *   up [a2b|b2a]          ends a blackout now
 * Without a direction both are meant. Returns 0 or -EINVAL (bad command,
 * no --ctl file or unreadable: nothing changed). */
static int ctl_apply(struct dir *dirs, const struct ctl *ctl)
{
    char line[256], *save = NULL;
    if (!ctl->file) {
        fprintf(stderr, "linkemu: SIGUSR2 without --ctl FILE: ignored\n");
        return -EINVAL;
    }
    FILE *f = fopen(ctl->file, "r");
    if (!f) {
        fprintf(stderr, "linkemu: %s: %s\n", ctl->file, strerror(errno));
        return -EINVAL;
    }
    if (!fgets(line, sizeof(line), f))
        line[0] = 0;
    fclose(f);

    const char *verb = strtok_r(line, " \t\n", &save);
    const char *arg = strtok_r(NULL, " \t\n", &save);
    double ms = -1;
    if (verb && !strcmp(verb, "down") && arg && !parse_double(arg, 0, 1e9, &ms))
        arg = strtok_r(NULL, " \t\n", &save);
    int which = -1; /* both */
    if (arg && !strcmp(arg, "a2b"))
        which = 0;
    else if (arg && !strcmp(arg, "b2a"))
        which = 1;
    else if (arg)
        verb = NULL;
    if (!verb || (strcmp(verb, "down") && strcmp(verb, "up")) || strtok_r(NULL, " \t\n", &save)) {
        fprintf(stderr, "linkemu: %s: not 'down [MS] [a2b|b2a]' or 'up [a2b|b2a]'\n", ctl->file);
        return -EINVAL;
    }
    uint64_t now = now_ns(), until = 0;
    if (!strcmp(verb, "down"))
        until = ms < 0 ? UINT64_MAX : now + (uint64_t)llround(ms * NS_PER_MS);
    for (int k = 0; k < 2; k++)
        if (which < 0 || which == k)
            atomic_store_explicit(&dirs[k].down_until, until, memory_order_relaxed);
    const char *name = which < 0 ? "a2b+b2a" : dirs[which].name;
    if (until == 0)
        fprintf(stderr, "linkemu: %s up\n", name);
    else if (until == UINT64_MAX)
        fprintf(stderr, "linkemu: %s down until told 'up'\n", name);
    else
        fprintf(stderr, "linkemu: %s down for %g ms (until time_ns=%" PRIu64 ")\n", name, ms,
                until);
    return 0;
}

static int run_main(int argc, char **argv)
{
    enum {
        O_NSA = 1, O_NSB, O_DEVA, O_DEVB, O_BOTH, O_A2B, O_B2A, O_SEED, O_MTU, O_LIMIT, O_STATS,
        O_SLACK, O_RT, O_CTL
    };
    static const struct option opts[] = {
        {"ns-a", required_argument, NULL, O_NSA},   {"ns-b", required_argument, NULL, O_NSB},
        {"dev-a", required_argument, NULL, O_DEVA}, {"dev-b", required_argument, NULL, O_DEVB},
        {"both", required_argument, NULL, O_BOTH},  {"a2b", required_argument, NULL, O_A2B},
        {"b2a", required_argument, NULL, O_B2A},    {"seed", required_argument, NULL, O_SEED},
        {"mtu", required_argument, NULL, O_MTU},    {"limit", required_argument, NULL, O_LIMIT},
        {"stats", required_argument, NULL, O_STATS}, {"slack", required_argument, NULL, O_SLACK},
        {"rt", required_argument, NULL, O_RT},      {"ctl", required_argument, NULL, O_CTL},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *ns[2] = {NULL, NULL}, *dev[2] = {"emua", "emub"};
    const char *both = NULL, *spec[2] = {NULL, NULL}, *stats_file = NULL;
    struct ctl ctl = {NULL, 0, 0};
    uint64_t seed = 1, mtu = 1500, limit = 65536, slack_ns = SLACK_NS_DEFAULT, rt = 10;
    double slack_us;
    static struct dir dirs[2];
    int fds[2] = {-1, -1}, stop_fd = -1, started = 0, rc = 1, c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case O_NSA: ns[0] = optarg; break;
        case O_NSB: ns[1] = optarg; break;
        case O_DEVA: dev[0] = optarg; break;
        case O_DEVB: dev[1] = optarg; break;
        case O_BOTH: both = optarg; break;
        case O_A2B: spec[0] = optarg; break;
        case O_B2A: spec[1] = optarg; break;
        case O_SEED: bad = parse_u64(optarg, 0, UINT64_MAX, &seed); break;
        case O_MTU: bad = parse_u64(optarg, 68, 65535, &mtu); break;
        case O_LIMIT: bad = parse_u64(optarg, 16, 1u << 24, &limit); break;
        case O_STATS: stats_file = optarg; break;
        case O_CTL: ctl.file = optarg; break;
        case O_RT: bad = parse_u64(optarg, 0, 99, &rt); break;
        case O_SLACK:
            bad = parse_double(optarg, 0, 1e6, &slack_us);
            slack_ns = (uint64_t)(slack_us * 1000);
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (bad) {
            fprintf(stderr, "linkemu: bad value '%s'\n", optarg);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    for (int k = 0; k < 2; k++) {
        struct dir *d = &dirs[k];
        d->name = k == 0 ? "a2b" : "b2a";
        impair_default(&d->im);
        if ((both && parse_spec(both, &d->im)) || (spec[k] && parse_spec(spec[k], &d->im)))
            return 2;
        d->delay_ns = (uint64_t)llround(d->im.delay_ms * NS_PER_MS);
        d->slack_ns = slack_ns;
        d->rate_bps = (uint64_t)llround(d->im.rate_mbit * 1e6);
        if (d->im.trace) {
            if (d->rate_bps) {
                fprintf(stderr, "linkemu: %s: rate and trace exclude each other\n", d->name);
                return 2;
            }
            if (trace_load(d, d->im.trace))
                return 2;
        }
        for (unsigned s = 0; s < ST_COUNT; s++)
            rng_seed(&d->r[s], seed, (unsigned)k * ST_COUNT + s);
        if (pool_init(d, (size_t)mtu, (size_t)limit)) {
            fprintf(stderr, "linkemu: out of memory\n");
            goto out;
        }
    }

    /* If the script that started us is killed outright (SIGKILL, no trap),
     * do not live on holding its namespaces' devices. */
    prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);

    for (int k = 0; k < 2; k++) {
        fds[k] = tun_open_in(ns[k], dev[k], (int)mtu);
        if (fds[k] < 0)
            goto out;
    }
    stop_fd = eventfd(0, EFD_CLOEXEC);
    if (stop_fd < 0) {
        perror("linkemu: eventfd");
        goto out;
    }
    dirs[0].in_fd = fds[0], dirs[0].out_fd = fds[1];
    dirs[1].in_fd = fds[1], dirs[1].out_fd = fds[0];

    /* Workers inherit the blocked mask: only sigwaitinfo() below sees them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    /* The default 50 us timer slack would blur pacing (120 us per packet at
     * 100 Mbit/s); the slack is per thread and inherited. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

    uint64_t t0 = now_ns();
    for (int k = 0; k < 2; k++) /* both traces start now */
        dirs[k].tr_t0 = t0;
    for (int k = 0; k < 2; k++) {
        char desc[768];
        dirs[k].stop_fd = stop_fd;
        impair_describe(&dirs[k].im, desc, sizeof(desc));
        fprintf(stderr, "linkemu: %s %s\n", dirs[k].name, desc);
        int e = pthread_create(&dirs[k].th, NULL, dir_run, &dirs[k]);
        if (e) {
            fprintf(stderr, "linkemu: pthread_create: %s\n", strerror(e));
            goto stop;
        }
        pthread_setname_np(dirs[k].th, k == 0 ? "linkemu-a2b" : "linkemu-b2a");
        set_rt(dirs[k].th, (int)rt, dirs[k].name);
        started++;
    }
    fprintf(stderr,
            "linkemu: ready a=%s/%s b=%s/%s seed=%" PRIu64 " mtu=%" PRIu64 " rt=%" PRIu64
            " slack=%" PRIu64 "ns\n",
            ns[0] ? ns[0] : "-", dev[0], ns[1] ? ns[1] : "-", dev[1], seed, mtu, rt, slack_ns);
    if (stats_file)
        stats_dump(dirs, 2, t0, stats_file, 0, &ctl);

    for (;;) {
        int sig = sigwaitinfo(&set, NULL);
        if (sig < 0) {
            if (errno == EINTR)
                continue;
            perror("linkemu: sigwaitinfo");
            break;
        }
        if (sig == SIGUSR1) {
            stats_dump(dirs, 2, t0, stats_file, 0, &ctl);
            continue;
        }
        if (sig == SIGUSR2) {
            /* The rewritten stats file is the answer: ctl_applied or
             * ctl_rejected has moved, and *_down_until_ns says until when. */
            if (ctl_apply(dirs, &ctl) == 0)
                ctl.applied++;
            else
                ctl.rejected++;
            stats_dump(dirs, 2, t0, stats_file, 0, &ctl);
            continue;
        }
        break;
    }
    rc = 0;
stop:
    if (eventfd_write(stop_fd, 1) < 0)
        perror("linkemu: eventfd_write");
    for (int k = 0; k < started; k++)
        pthread_join(dirs[k].th, NULL);
    stats_dump(dirs, 2, t0, stats_file, 1, &ctl);
out:
    for (int k = 0; k < 2; k++) {
        if (fds[k] >= 0)
            close(fds[k]);
        pool_fini(&dirs[k]);
    }
    if (stop_fd >= 0)
        close(stop_fd);
    return rc;
}

/* ---- helper modes: echo and probe --------------------------------------- */

/* Options for the helper modes are "--key value" pairs. */
static const char *opt_get(int argc, char **argv, const char *key, const char *dflt)
{
    for (int i = 1; i + 1 < argc; i++)
        if (!strncmp(argv[i], "--", 2) && !strcmp(argv[i] + 2, key))
            return argv[i + 1];
    return dflt;
}

static int udp_socket_for(const char *host, const char *port, int passive,
                          struct sockaddr_storage *addr, socklen_t *alen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_flags = passive ? AI_PASSIVE : 0};
    struct addrinfo *res = NULL;
    hints.ai_family = passive && !host ? AF_INET6 : AF_UNSPEC;
    int e = getaddrinfo(host, port, &hints, &res);
    if (e) {
        fprintf(stderr, "linkemu: %s: %s\n", host ? host : "*", gai_strerror(e));
        return -EINVAL;
    }
    int fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int err = -errno;
        freeaddrinfo(res);
        return err;
    }
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *alen = res->ai_addrlen;
    if (passive) {
        int zero = 0, one = 1;
        if (res->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, res->ai_addr, res->ai_addrlen) < 0) {
            int err = -errno;
            fprintf(stderr, "linkemu: bind port %s: %s\n", port, strerror(errno));
            close(fd);
            freeaddrinfo(res);
            return err;
        }
    }
    /* 4 MB each way, past net.core.[rw]mem_max when root (the *FORCE
     * options): at 10,000 packets/s a stall of the host must not overflow
     * the socket before the probe or echo server runs again, or a loss the
     * link never made shows at the endpoints. */
    int buf = 4 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf)) < 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    freeaddrinfo(res);
    return fd;
}

static int echo_main(int argc, char **argv)
{
    const char *port = opt_get(argc, argv, "port", NULL);
    struct sockaddr_storage addr;
    socklen_t alen;
    if (!port) {
        usage(stderr);
        return 2;
    }
    int fd = udp_socket_for(opt_get(argc, argv, "bind", NULL), port, 1, &addr, &alen);
    if (fd < 0)
        return 1;
    set_rt(pthread_self(), atoi(opt_get(argc, argv, "rt", "0")), "echo");
    fprintf(stderr, "linkemu echo: listening on port %s\n", port);
    static unsigned char buf[65536];
    for (;;) {
        struct sockaddr_storage from;
        socklen_t flen = sizeof(from);
        ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("linkemu echo: recvfrom");
            close(fd);
            return 1;
        }
        if (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, flen) < 0 && errno != ENOBUFS &&
            errno != EAGAIN)
            perror("linkemu echo: sendto");
    }
}

#define PROBE_MAGIC 0x4c454d55u /* "LEMU" */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The P-th percentile of the N sorted values V, nearest rank (0 if N = 0). */
static double pctile(const double *v, uint64_t n, unsigned p)
{
    if (!n)
        return 0;
    uint64_t rank = (n * p + 99) / 100; /* ceil(n * p / 100), 1-based */
    return v[rank ? rank - 1 : 0];
}

struct probe_hdr {
    uint32_t magic;
    uint32_t seq;
    uint64_t sent_ns;
};

static int probe_main(int argc, char **argv)
{
    const char *host = opt_get(argc, argv, "to", NULL);
    const char *port = opt_get(argc, argv, "port", NULL);
    uint64_t count, size, wait_ms;
    double interval_ms;
    if (!host || !port || parse_u64(opt_get(argc, argv, "count", "100"), 1, 10000000, &count) ||
        parse_u64(opt_get(argc, argv, "size", "64"), sizeof(struct probe_hdr), 65000, &size) ||
        parse_u64(opt_get(argc, argv, "wait", "1000"), 0, 3600000, &wait_ms) ||
        parse_double(opt_get(argc, argv, "interval", "10"), 0, 1e6, &interval_ms)) {
        usage(stderr);
        return 2;
    }
    struct sockaddr_storage addr;
    socklen_t alen;
    int fd = udp_socket_for(host, port, 0, &addr, &alen);
    if (fd < 0)
        return 1;
    set_rt(pthread_self(), atoi(opt_get(argc, argv, "rt", "0")), "probe");
    /* RTT = kernel receive timestamp - send time, both CLOCK_REALTIME, so
     * the probe's own wake-up latency does not count. */
    int on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)) < 0)
        perror("linkemu probe: SO_TIMESTAMPNS");

    uint16_t *seen = calloc(count, sizeof(*seen));
    uint32_t *order = calloc(count, sizeof(*order)); /* first arrivals, in order */
    double *rtts = calloc(count, sizeof(*rtts));     /* of first arrivals */
    unsigned char *buf = calloc(1, 65536);
    if (!seen || !order || !rtts || !buf) {
        fprintf(stderr, "linkemu probe: out of memory\n");
        return 1;
    }
    uint64_t sent = 0, uniq = 0, dups = 0, send_err = 0;
    double rtt_min = 1e300, rtt_max = 0, rtt_sum = 0, rtt_sq = 0;
    uint64_t interval_ns = (uint64_t)(interval_ms * NS_PER_MS);
    /* The wait runs from the last send or the last arrival, whichever is
     * later: echoes still trickling in (a loaded machine) are not cut off. */
    uint64_t t0 = now_ns(), last_send = t0, last_rx = t0;

    for (;;) {
        uint64_t now = now_ns();
        while (sent < count && now >= t0 + sent * interval_ns) {
            struct probe_hdr h = {PROBE_MAGIC, (uint32_t)sent, realtime_ns()};
            memset(buf, 0, size);
            memcpy(buf, &h, sizeof(h));
            if (sendto(fd, buf, size, 0, (struct sockaddr *)&addr, alen) < 0)
                send_err++;
            sent++;
            last_send = now;
        }
        for (;;) {
            union {
                char raw[CMSG_SPACE(sizeof(struct timespec))];
                struct cmsghdr align;
            } ctl;
            struct iovec iov = {.iov_base = buf, .iov_len = 65536};
            struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.raw,
                                 .msg_controllen = sizeof(ctl.raw)};
            ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
            if (n < 0)
                break;
            uint64_t rx_ns = 0;
            for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
                    struct timespec ts;
                    memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
                    rx_ns = (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
                }
            }
            if (!rx_ns)
                rx_ns = realtime_ns();
            struct probe_hdr h;
            if ((size_t)n < sizeof(h))
                continue;
            memcpy(&h, buf, sizeof(h));
            if (h.magic != PROBE_MAGIC || h.seq >= count)
                continue;
            last_rx = now_ns();
            if (seen[h.seq]++) {
                dups++;
                continue;
            }
            double rtt = (double)(int64_t)(rx_ns - h.sent_ns) / NS_PER_MS;
            rtt_min = rtt < rtt_min ? rtt : rtt_min;
            rtt_max = rtt > rtt_max ? rtt : rtt_max;
            rtt_sum += rtt;
            rtt_sq += rtt * rtt;
            rtts[uniq] = rtt;
            order[uniq++] = h.seq;
        }
        now = now_ns();
        uint64_t deadline;
        if (sent < count)
            deadline = t0 + sent * interval_ns;
        else if (uniq == count ||
                 now >= (last_rx > last_send ? last_rx : last_send) + wait_ms * 1000000ULL)
            break;
        else
            deadline = (last_rx > last_send ? last_rx : last_send) + wait_ms * 1000000ULL;
        uint64_t w = deadline > now ? deadline - now : 0;
        struct timespec ts = {(time_t)(w / NS_PER_S), (long)(w % NS_PER_S)};
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ppoll(&pfd, 1, &ts, NULL);
    }

    /* overtakers: arrived while some lower sequence number was still to come */
    uint64_t overtakers = 0;
    uint32_t suffix_min = UINT32_MAX;
    for (uint64_t i = uniq; i-- > 0;) {
        if (suffix_min < order[i])
            overtakers++;
        if (order[i] < suffix_min)
            suffix_min = order[i];
    }
    /* loss runs: maximal stretches of consecutive lost sequence numbers */
    uint64_t runs = 0;
    for (uint64_t i = 0; i < count; i++)
        if (!seen[i] && (i == 0 || seen[i - 1]))
            runs++;
    /* FNV-1a over the received bitmap */
    uint64_t hash = 0xcbf29ce484222325ULL;
    for (uint64_t i = 0; i < count; i += 8) {
        unsigned char byte = 0;
        for (uint64_t j = i; j < i + 8 && j < count; j++)
            byte = (unsigned char)(byte | (seen[j] ? 1u << (j - i) : 0u));
        hash = (hash ^ byte) * 0x100000001b3ULL;
    }
    double avg = uniq ? rtt_sum / (double)uniq : 0;
    double mdev = uniq ? sqrt(fmax(0, rtt_sq / (double)uniq - avg * avg)) : 0;
    /* Percentiles (nearest rank): unlike min, max and mean, a few packets
     * the machine delayed (a loaded host) do not move them. */
    qsort(rtts, uniq, sizeof(*rtts), cmp_double);
    double p1 = pctile(rtts, uniq, 1), p50 = pctile(rtts, uniq, 50), p99 = pctile(rtts, uniq, 99);
    double p95 = pctile(rtts, uniq, 95);
    printf("sent=%" PRIu64 " recv=%" PRIu64 " lost=%" PRIu64 " loss_pct=%.3f dup=%" PRIu64
           " overtakers=%" PRIu64 " loss_runs=%" PRIu64 " send_err=%" PRIu64
           " rtt_min_ms=%.3f rtt_avg_ms=%.3f rtt_max_ms=%.3f rtt_mdev_ms=%.3f"
           " rtt_p1_ms=%.3f rtt_p50_ms=%.3f rtt_p95_ms=%.3f rtt_p99_ms=%.3f"
           " pattern=%016" PRIx64 "\n",
           sent, uniq, sent - uniq, 100.0 * (double)(sent - uniq) / (double)sent, dups, overtakers,
           runs, send_err, uniq ? rtt_min : 0, avg, rtt_max, mdev, p1, p50, p95, p99, hash);
    free(rtts);
    free(seen);
    free(order);
    free(buf);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "echo"))
        return echo_main(argc - 1, argv + 1);
    if (argc > 1 && !strcmp(argv[1], "probe"))
        return probe_main(argc - 1, argv + 1);
    if (argc > 1 && !strcmp(argv[1], "run"))
        return run_main(argc - 1, argv + 1);
    return run_main(argc, argv);
}
