/*
 * cc_htcp.c: H-TCP (Shorten and Leith, "H-TCP: TCP for high-speed and
 * long-distance networks", PFLDnet 2004) as Linux runs it
 * (net/ipv4/tcp_htcp.c, with its defaults use_rtt_scaling and
 * use_bandwidth_switch on).
 *
 * The additive increase grows with the time since the last congestion
 * event: alpha = 2 * factor * (1 - beta) segments per RTT, factor 1 for
 * the first second, then 1 + 10 D + (D/2)^2 for D seconds past it, scaled
 * by the RTT (minRTT / 100 ms, clamped to [0.5, 10]) so that flows of
 * different RTTs grow alike in time. The decrease beta adapts to the path:
 * minRTT / maxRTT (clamped to [0.5, 0.8]) when the minimum RTT exceeds
 * 10 ms and the achieved throughput held steady (within a fifth) since the
 * last event, else 0.5; the first event always takes 0.5.
 *
 * Fixed point as Linux's (alpha and beta << 7); time in microseconds where
 * Linux counts jiffies (the formulas take HZ = 1,000,000). Our terms: RTT
 * samples are the ACKs' latest ones, packet counts are acknowledged bytes
 * over the MSS, a congestion event is a loss (one per recovery period), and
 * the event's clock restarts when recovery ends (Linux's htcp_state on the
 * return to TCP_CA_Open). No growth while the application leaves the window
 * unused (tcp_is_cwnd_limited).
 */
#include <string.h>

#include "cc.h"

#define ALPHA_BASE (1u << 7) /* 1.0 */
#define BETA_MIN (1u << 6)   /* 0.5 */
#define BETA_MAX 102u        /* 0.8 */
#define HZ 1000000u          /* time below is in microseconds */

typedef struct htcp_state {
    uint64_t alpha;        /* << 7: segments per RTT */
    uint32_t beta;         /* << 7 */
    int modeswitch;        /* adaptive beta allowed (after one event) */
    uint64_t min_rtt;      /* us; 0 before a sample */
    uint64_t max_rtt;      /* us */
    rudp_time last_cong;   /* start of the current congestion epoch */
    uint64_t ca_acc;       /* bytes acked toward the next increase */
    uint64_t pkts_acked;   /* segments in the last ACK (Open only) */
    /* achieved throughput, segments per second */
    uint64_t packetcount;
    rudp_time lasttime;
    uint64_t min_b, max_b, old_max_b, bi;
} htcp_state;

_Static_assert(sizeof(htcp_state) <= sizeof(((rudp_cc *)0)->st), "htcp state fits in st");

static void load(const rudp_cc *cc, htcp_state *s) { memcpy(s, cc->st, sizeof *s); }
static void store(rudp_cc *cc, const htcp_state *s) { memcpy(cc->st, s, sizeof *s); }

static uint64_t us(rudp_time t) { return t / 1000; }

static uint64_t cong_time(const htcp_state *s, rudp_time now)
{
    return now > s->last_cong ? us(now - s->last_cong) : 0;
}

static void htcp_init(rudp_cc *cc, rudp_time now)
{
    htcp_state s;
    memset(&s, 0, sizeof s);
    s.alpha = ALPHA_BASE;
    s.beta = BETA_MIN;
    s.pkts_acked = 1;
    s.last_cong = now;
    s.lasttime = now;
    store(cc, &s);
}

/* measure_rtt: the least RTT, and the largest that is at most 20 ms above
 * the previous largest (outside recovery) */
static void measure_rtt(const rudp_cc *cc, htcp_state *s, uint64_t rtt)
{
    if (s->min_rtt > rtt || !s->min_rtt)
        s->min_rtt = rtt;
    if (!cc->recovering) {
        if (s->max_rtt < s->min_rtt)
            s->max_rtt = s->min_rtt;
        if (s->max_rtt < rtt && rtt <= s->max_rtt + 20000)
            s->max_rtt = rtt;
    }
}

/* measure_achieved_throughput: a sample of the rate once a window's worth
 * of segments has been acknowledged and at least minRTT has passed */
static void measure_throughput(const rudp_cc *cc, htcp_state *s, const rudp_cc_ack *a,
                               uint64_t pkts)
{
    if (cc->recovering) {
        s->packetcount = 0;
        s->lasttime = a->now;
        return;
    }
    s->packetcount += pkts;
    uint64_t w = cc->cwnd / cc->mss, step = s->alpha >> 7 ? s->alpha >> 7 : 1;
    uint64_t elapsed = a->now > s->lasttime ? us(a->now - s->lasttime) : 0;
    if (s->packetcount + step >= w && elapsed >= s->min_rtt && s->min_rtt > 0 && elapsed) {
        uint64_t cur = s->packetcount * HZ / elapsed;
        if (cong_time(s, a->now) / s->min_rtt <= 3) {
            s->min_b = s->max_b = s->bi = cur; /* just after a back-off */
        } else {
            s->bi = (3 * s->bi + cur) / 4;
            if (s->bi > s->max_b)
                s->max_b = s->bi;
            if (s->min_b > s->max_b)
                s->min_b = s->max_b;
        }
        s->packetcount = 0;
        s->lasttime = a->now;
    }
}

static void beta_update(htcp_state *s)
{
    uint64_t max_b = s->max_b, old = s->old_max_b;
    s->old_max_b = s->max_b;
    if (!(5 * max_b >= 4 * old && 5 * max_b <= 6 * old)) {
        /* the throughput moved by more than a fifth: a new path share */
        s->beta = BETA_MIN;
        s->modeswitch = 0;
        return;
    }
    if (s->modeswitch && s->min_rtt > 10000 && s->max_rtt) {
        uint64_t b = (s->min_rtt << 7) / s->max_rtt;
        s->beta = (uint32_t)(b < BETA_MIN ? BETA_MIN : b > BETA_MAX ? BETA_MAX : b);
    } else {
        s->beta = BETA_MIN;
        s->modeswitch = 1;
    }
}

static void alpha_update(htcp_state *s, rudp_time now)
{
    uint64_t factor = 1, diff = cong_time(s, now);
    if (diff > HZ) {
        diff -= HZ;
        factor = 1 + (10 * diff + ((diff / 2) * (diff / 2) / HZ)) / HZ;
    }
    if (s->min_rtt) {
        /* RTT scaling: the ratio 100 ms / minRTT, clamped to [0.5, 10] << 3 */
        uint64_t scale = ((uint64_t)HZ << 3) / (10 * s->min_rtt);
        if (scale < 1u << 2)
            scale = 1u << 2;
        if (scale > 10u << 3)
            scale = 10u << 3;
        factor = (factor << 3) / scale;
        if (!factor)
            factor = 1;
    }
    s->alpha = 2 * factor * ((1u << 7) - s->beta);
    if (!s->alpha)
        s->alpha = ALPHA_BASE;
}

static void htcp_on_ack(rudp_cc *cc, const rudp_cc_ack *a)
{
    htcp_state s;
    load(cc, &s);
    int was_recovering = cc->recovering;
    cc->recovering = cc->recovering && rudp__cc_in_recovery(cc, a->largest_sent_time);
    if (was_recovering && !cc->recovering)
        s.last_cong = a->now; /* back to Open: the epoch starts now */
    if (!a->acked_bytes)
        goto out;
    uint64_t pkts = a->acked_bytes / cc->mss ? a->acked_bytes / cc->mss : 1;
    if (!cc->recovering)
        s.pkts_acked = pkts;
    if (a->rtt && a->rtt->has_sample)
        measure_rtt(cc, &s, us(a->rtt->latest) ? us(a->rtt->latest) : 1);
    measure_throughput(cc, &s, a, pkts);
    if (rudp__cc_in_recovery(cc, a->largest_sent_time) || cc->app_limited)
        goto out;
    if (cc->cwnd < cc->ssthresh) {
        cc->cwnd += a->acked_bytes;
        goto out;
    }
    /* cwnd += alpha / cwnd per segment acknowledged, in bytes: one MSS
     * each time alpha/128 windows' worth of bytes have been acked */
    s.ca_acc += a->acked_bytes;
    while ((s.ca_acc * s.alpha) >> 7 >= cc->cwnd) {
        s.ca_acc -= (cc->cwnd << 7) / s.alpha;
        cc->cwnd += cc->mss;
        alpha_update(&s, a->now);
    }
out:
    store(cc, &s);
}

static void htcp_on_loss(rudp_cc *cc, rudp_time now, rudp_time sent_time, uint64_t lost_bytes,
                         uint64_t in_flight)
{
    (void)lost_bytes, (void)in_flight;
    if (rudp__cc_in_recovery(cc, sent_time))
        return;
    htcp_state s;
    load(cc, &s);
    /* htcp_recalc_ssthresh: beta and alpha from the epoch that ends here,
     * then the slowly fading memory of maxRTT */
    beta_update(&s);
    alpha_update(&s, now);
    if (s.min_rtt > 0 && s.max_rtt > s.min_rtt)
        s.max_rtt = s.min_rtt + (s.max_rtt - s.min_rtt) * 95 / 100;
    rudp__cc_cut_to(cc, now, (cc->cwnd / cc->mss * s.beta >> 7) * cc->mss);
    s.last_cong = now; /* htcp_reset */
    s.ca_acc = 0;
    s.packetcount = 0;
    s.lasttime = now;
    store(cc, &s);
}

static void htcp_on_persistent_congestion(rudp_cc *cc, rudp_time now)
{
    htcp_state s;
    load(cc, &s);
    rudp__cc_collapse(cc);
    s.last_cong = now;
    s.ca_acc = 0;
    store(cc, &s);
}

void rudp__cc_htcp_get_info(const rudp_cc *cc, rudp_cc_htcp_info *out)
{
    htcp_state s;
    load(cc, &s);
    out->alpha = s.alpha;
    out->beta = s.beta;
    out->min_rtt_us = s.min_rtt;
    out->max_rtt_us = s.max_rtt;
    out->last_cong = s.last_cong;
}

const rudp_cc_ops rudp__cc_htcp = {
    .name = "htcp",
    .init = htcp_init,
    .on_sent = rudp__cc_on_sent_none,
    .on_ack = htcp_on_ack,
    .on_loss = htcp_on_loss,
    .on_persistent_congestion = htcp_on_persistent_congestion,
    .phase = rudp__cc_loss_phase,
};
