/*
 * linkemu's private header: the types its files share (one direction of the
 * link, its impairments and counters) and the functions they call across
 * files. See linkemu.c for the model and the program's modes.
 *
 *   linkemu.c        main: the modes, usage, the emulator's setup, signals, --ctl
 *   linkemu_spec.c   the impairment SPEC and number parsing
 *   linkemu_link.c   the link model: PRNG, packet pool, loss, duplication,
 *                    bottleneck queue (rate or trace), delay, jitter, reordering
 *   linkemu_io.c     clocks, SCHED_FIFO, the per-direction forwarding loop, TUN devices
 *   linkemu_stats.c  the counters' names, the stats table and file
 *   linkemu_probe.c  the helper modes: echo and probe
 */
#ifndef LINKEMU_H
#define LINKEMU_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define NS_PER_MS 1000000.0
#define NS_PER_S 1000000000ULL

/* ---- PRNG: splitmix64 seeds xoshiro256** (Blackman & Vigna) ------------- */

typedef struct {
    uint64_t s[4];
} rng;

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
    _Atomic uint64_t nat_mapped; /* mappings the NAT made for packets leaving this way */
    _Atomic uint64_t drop_nat;   /* no NAT mapping (or no port left for a new one) */
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
static inline void ctr_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline uint64_t ctr_get(_Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static inline void ctr_set(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, v, memory_order_relaxed);
}

/* Running min and max of unsigned V over N samples (N counted elsewhere,
 * before this call: the first sample sets both). */
static inline void ctr_minmax(_Atomic uint64_t *n, _Atomic uint64_t *mn, _Atomic uint64_t *mx, uint64_t v)
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

/* The --ctl file and what became of the commands read from it (the main
 * thread's alone). */
struct ctl {
    const char *file;
    uint64_t applied, rejected;
};

/* ---- linkemu_spec.c ---- */

/* The defaults: no impairment, ge_h=100, queue=1000p. */
void impair_default(struct impair *im);
/* SPEC is "key=value,key=value"; see usage(). Applies on top of *im.
 * Returns 0, -EINVAL (with a message) or -ENOMEM. */
int parse_spec(const char *spec, struct impair *im);
/* One line that says what *im applies, into BUF of LEN bytes. */
void impair_describe(const struct impair *im, char *buf, size_t len);
/* S as a number in [LO, HI] into *OUT: 0, or -EINVAL (*OUT unchanged). */
int parse_double(const char *s, double lo, double hi, double *out);
int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);

/* ---- linkemu_nat.c ---- */

/* The NAT on packet P (LEN bytes) of direction K (0 a2b, 1 b2a), as it is
 * read (DELIVERING 0) or delivered (1): translated in place; 1 to carry
 * it on, 0 to drop it (counted in c->drop_nat). */
int nat_packet(int k, int delivering, unsigned char *p, size_t len, struct counters *c);
/* --ctl's "nat a|b BLOCK [BASE]" and "nat off": 0 or -EINVAL. */
int nat_command(const char *side, const char *block, const char *base);

/* ---- linkemu_link.c ---- */

/* Seeds stream R from SEED for the (direction, impairment) number ID. */
void rng_seed(rng *r, uint64_t seed, unsigned id);
/* The packet pool of D: CAP packets of BUFSZ bytes at most, and the heap
 * and ring of as many. 0 or -ENOMEM; pool_fini frees it (and the trace). */
int pool_init(struct dir *d, size_t bufsz, size_t cap);
void pool_fini(struct dir *d);
/* A free packet, NULL when the pool is at its cap or memory is short;
 * pkt_put gives it back. */
struct pkt *pkt_get(struct dir *d);
void pkt_put(struct dir *d, struct pkt *p);
/* The packet due first, taken from the heap (which must not be empty). */
struct pkt *heap_pop(struct dir *d);
/* Whether D is in a blackout at NOW. */
int link_down(struct dir *d, uint64_t now);
/* Loss, then duplication, queue and delay for a packet just read at NOW:
 * it is dropped (counted) or put in the heap. Takes ownership of p. */
void on_packet(struct dir *d, struct pkt *p, uint64_t now);
/* Loads the trace FILE into d. Returns 0, or -1 with a message. */
int trace_load(struct dir *d, const char *file);
/* The bytes the trace offered from its start to NOW. Reads only what
 * trace_load set, so the main thread may call it. */
uint64_t trace_offered(const struct dir *d, uint64_t now);

/* ---- linkemu_io.c ---- */

/* CLOCK_MONOTONIC and CLOCK_REALTIME in ns. */
uint64_t now_ns(void);
uint64_t realtime_ns(void);
/* SCHED_FIFO at PRIO for thread TH (0: leave it alone); failure only warns. */
void set_rt(pthread_t th, int prio, const char *who);
/* The forwarding thread of one direction (ARG: its struct dir), until
 * d->stop_fd is readable or the TUN goes away. */
void *dir_run(void *arg);
/* Creates TUN device NAME with MTU in network namespace NS (a name under
 * /var/run/netns, a path, or NULL for the current one). Returns the fd or
 * -errno (with a message). */
int tun_open_in(const char *ns, const char *name, int mtu);

/* ---- linkemu_stats.c ---- */

/* The counters of the NDIRS DIRS since T0 as a table on stderr and, if FILE
 * is not NULL, as key=value lines to FILE (replaced whole); FINAL marks the
 * last. */
void stats_dump(struct dir *dirs, int ndirs, uint64_t t0, const char *file, int final,
                const struct ctl *ctl);

/* ---- linkemu_probe.c, linkemu.c ---- */

/* The helper modes (argv[0] is the mode's name): exit codes. */
int echo_main(int argc, char **argv);
int probe_main(int argc, char **argv);
/* The usage text of every mode, to F. */
void usage(FILE *f);

#endif
