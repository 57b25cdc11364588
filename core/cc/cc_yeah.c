/*
 * cc_yeah.c: YeAH-TCP (Baiocchi, Castellani and Vacirca, "YeAH-TCP: Yet
 * Another Highspeed TCP", PFLDnet 2007) as Linux runs it
 * (net/ipv4/tcp_yeah.c): Scalable TCP's fast growth while a Vegas-style
 * estimate says the bottleneck queue is small, Reno's while it is not,
 * draining the queue it finds rather than waiting for a loss.
 *
 * Once a round (Vegas's round and samples: the least RTT of the round,
 * base the least ever, both +1), with queue = cwnd x (rtt - base) / rtt
 * segments: while queue <= alpha (80) and rtt - base <= base / phy (1/8),
 * the "fast" mode grows as Scalable (one segment per min(cwnd, 100)
 * acknowledged); otherwise "slow" mode grows as Reno, and a queue over
 * alpha is drained at once (cwnd less min(queue / gamma, cwnd / 2), not
 * below reno_count, ssthresh set to it). reno_count, the least window
 * kept against Reno flows, is set to half the window when slow mode
 * begins, grows one a slow round, halves at a loss and goes back to 2
 * after zeta (50) fast rounds. A loss takes off the last queue estimate
 * (between an eighth and half the window) unless slow mode has lasted rho
 * (16) rounds, when it halves, as against Reno flows. Slow start is
 * Reno's.
 *
 * Our terms: windows in bytes, a segment one MSS (the arithmetic in
 * segments, as Linux's); RTTs in ns; rounds end as Vegas's here
 * (cc_vegas.c, the delivery counters); samples are taken in recovery too
 * (pkts_acked runs on every ACK) and a round starts afresh on return to
 * TCP_CA_Open (tcp_vegas_state); one reduction per recovery period;
 * nothing while app-limited (tcp_is_cwnd_limited comes first in Linux's
 * cong_avoid, rounds included). Linux restarts the Vegas state when an
 * idle connection starts sending again (tcp_vegas_cwnd_event); the ops
 * here see no such event, so base_rtt is kept across idle periods.
 */
#include <string.h>

#include "cc.h"

#define YEAH_ALPHA 80   /* segments queued at the bottleneck */
#define YEAH_GAMMA 1    /* fraction of the queue drained per RTT */
#define YEAH_DELTA 3    /* log2 of the least share taken off at a loss */
#define YEAH_EPSILON 1  /* log2 of the largest share drained at once */
#define YEAH_PHY 8      /* queueing delay over base / phy: slow mode */
#define YEAH_RHO 16     /* slow rounds before a loss halves */
#define YEAH_ZETA 50    /* fast rounds before reno_count goes back to 2 */
#define SCALABLE_AI_CNT 100u

typedef struct yeah_state {
    rudp_cc_vround v;    /* Vegas's RTT samples and rounds */
    uint64_t last_q;     /* queue estimate of the last round judged, segments */
    uint64_t doing_reno; /* consecutive slow rounds */
    uint64_t reno_count; /* segments */
    uint64_t fast_count; /* fast rounds since reno_count was reset */
    uint64_t ca_acc;     /* bytes acked toward the next increase */
    int open;            /* TCP_CA_Open */
} yeah_state;

_Static_assert(sizeof(yeah_state) <= sizeof(((rudp_cc *)0)->st), "yeah state fits in st");

static void load(const rudp_cc *cc, yeah_state *s) { memcpy(s, cc->st, sizeof *s); }
static void store(rudp_cc *cc, const yeah_state *s) { memcpy(cc->st, s, sizeof *s); }

static void yeah_init(rudp_cc *cc, rudp_time now)
{
    (void)now;
    yeah_state s;
    memset(&s, 0, sizeof s);
    rudp__cc_vround_init(&s.v);
    s.reno_count = 2;
    s.open = 1;
    store(cc, &s);
}

/* The once-a-round judgement of tcp_yeah_cong_avoid. */
static void judge(rudp_cc *cc, yeah_state *s)
{
    uint64_t mss = cc->mss, w = cc->cwnd / mss;
    rudp_time rtt = s->v.min_rtt, base = s->v.base_rtt;
    uint64_t queue = w * (rtt - base) / rtt;
    if (queue > YEAH_ALPHA || rtt - base > base / YEAH_PHY) {
        if (queue > YEAH_ALPHA && w > s->reno_count) {
            /* drain the queue now */
            uint64_t cut = queue / YEAH_GAMMA, half = w >> YEAH_EPSILON;
            w -= cut < half ? cut : half;
            if (w < s->reno_count)
                w = s->reno_count;
            cc->cwnd = cc->ssthresh = w * mss;
        }
        if (s->reno_count <= 2)
            s->reno_count = w >> 1 > 2 ? w >> 1 : 2;
        else
            s->reno_count++;
        if (s->doing_reno < 0xffffff)
            s->doing_reno++;
    } else {
        if (++s->fast_count > YEAH_ZETA) {
            s->reno_count = 2;
            s->fast_count = 0;
        }
        s->doing_reno = 0;
    }
    s->last_q = queue;
}

static void yeah_on_ack(rudp_cc *cc, const rudp_cc_ack *a)
{
    yeah_state s;
    load(cc, &s);
    cc->recovering = cc->recovering && rudp__cc_in_recovery(cc, a->largest_sent_time);
    if (a->acked_bytes)
        rudp__cc_vround_sample(&s.v, a);
    if (!s.open && !cc->recovering) {
        s.open = 1; /* back to Open: tcp_vegas_state, vegas_enable */
        rudp__cc_vround_restart(&s.v, a->delivered);
    }
    if (rudp__cc_in_recovery(cc, a->largest_sent_time) || !a->acked_bytes || cc->app_limited)
        goto out;
    uint64_t acked = rudp__cc_slow_start(cc, a->acked_bytes);
    if (acked) {
        uint64_t segs = cc->cwnd / cc->mss;
        if (!s.doing_reno) /* Scalable */
            segs = segs < SCALABLE_AI_CNT ? segs : SCALABLE_AI_CNT;
        rudp__cc_avoid_ai(cc, &s.ca_acc, segs * cc->mss, acked);
    }
    if (rudp__cc_vround_ended(&s.v, a)) {
        /* Three samples a round at least: not only delayed ACKs. */
        if (s.v.cnt_rtt > 2)
            judge(cc, &s);
        rudp__cc_vround_restart(&s.v, a->delivered);
    }
out:
    store(cc, &s);
}

static void yeah_on_loss(rudp_cc *cc, rudp_time now, rudp_time sent_time, uint64_t lost_bytes,
                         uint64_t in_flight)
{
    (void)lost_bytes, (void)in_flight;
    if (rudp__cc_in_recovery(cc, sent_time))
        return;
    yeah_state s;
    load(cc, &s);
    /* tcp_yeah_ssthresh */
    uint64_t w = cc->cwnd / cc->mss, half = w >> 1 > 2 ? w >> 1 : 2, cut;
    if (s.doing_reno < YEAH_RHO) {
        cut = s.last_q < half ? s.last_q : half;
        if (cut < w >> YEAH_DELTA)
            cut = w >> YEAH_DELTA;
    } else {
        cut = half;
    }
    s.fast_count = 0;
    s.reno_count = s.reno_count >> 1 > 2 ? s.reno_count >> 1 : 2;
    rudp__cc_cut_to(cc, now, (w > cut + 2 ? w - cut : 2) * cc->mss);
    s.ca_acc = 0;
    s.open = 0; /* TCP_CA_Recovery: vegas_disable */
    store(cc, &s);
}

static void yeah_on_persistent_congestion(rudp_cc *cc, rudp_time now)
{
    (void)now;
    yeah_state s;
    load(cc, &s);
    rudp__cc_collapse(cc);
    s.ca_acc = 0;
    s.open = 0; /* TCP_CA_Loss; a fresh round with the next ACK (Open) */
    store(cc, &s);
}

void rudp__cc_yeah_get_info(const rudp_cc *cc, rudp_cc_yeah_info *out)
{
    yeah_state s;
    load(cc, &s);
    out->base_rtt = s.v.base_rtt;
    out->last_q = s.last_q;
    out->doing_reno = s.doing_reno;
    out->reno_count = s.reno_count;
    out->fast_count = s.fast_count;
}

const rudp_cc_ops rudp__cc_yeah = {
    .name = "yeah",
    .init = yeah_init,
    .on_sent = rudp__cc_on_sent_none,
    .on_ack = yeah_on_ack,
    .on_loss = yeah_on_loss,
    .on_persistent_congestion = yeah_on_persistent_congestion,
    .phase = rudp__cc_loss_phase,
};
