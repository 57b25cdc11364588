/*
 * cc_illinois.c: TCP Illinois (Liu, Basar and Srikant, "TCP-Illinois: a
 * loss and delay-based congestion control algorithm for high-speed
 * networks", VALUETOOLS 2006) as Linux runs it (net/ipv4/tcp_illinois.c):
 * loss decides when the window shrinks, queueing delay how fast it grows
 * and how much a loss takes off.
 *
 * Every RTT sample updates base_rtt (least) and max_rtt (largest) and the
 * round's sum. Once a round (an ACK of a packet sent after the last
 * update), with da the round's average delay over base and dm = max_rtt -
 * base_rtt: alpha (the increase, segments a round trip, << 7) is 10 while
 * da <= dm/100, falling as 1/(dm + da x k) towards 0.3 as da nears dm;
 * once the delay has risen, alpha returns to 10 only after theta (5)
 * rounds of low delay. beta (the share a loss takes off, << 6) is 1/8
 * while da <= dm/10, 1/2 from da >= 8/10 dm, linear between. Below
 * win_thresh (15 segments) alpha is 1 and beta 1/2: Reno. Slow start is
 * Reno's; after persistent congestion (TCP_CA_Loss) alpha and beta go back
 * to Reno's and the delay history is forgotten.
 *
 * Our terms: windows in bytes, a segment one MSS (beta's cut is worked in
 * segments, as Linux does); RTTs in ns (Linux's in us, capped at
 * U32_MAX / alpha_max us; the same cap here); a round ends as Vegas's
 * does here (the delivery counters, cc_vegas.c); one reduction per
 * recovery period; no growth while app-limited (tcp_is_cwnd_limited).
 * Samples are taken during recovery too (Linux's pkts_acked runs on every
 * ACK), the once-a-round update only outside it (cong_avoid).
 */
#include <string.h>

#include "cc.h"

#define ALPHA_SHIFT 7
#define ALPHA_SCALE (1u << ALPHA_SHIFT)
#define ALPHA_MIN ((3 * ALPHA_SCALE) / 10) /* 0.3 */
#define ALPHA_MAX (10 * ALPHA_SCALE)       /* 10.0 */
#define ALPHA_BASE ALPHA_SCALE             /* 1.0: Reno */
#define RTT_MAX (RUDP_US(UINT32_MAX / ALPHA_MAX))

#define BETA_SHIFT 6
#define BETA_SCALE (1u << BETA_SHIFT)
#define BETA_MIN (BETA_SCALE / 8) /* 0.125 */
#define BETA_MAX (BETA_SCALE / 2) /* 0.5 */
#define BETA_BASE BETA_MAX

#define WIN_THRESH 15 /* module parameter win_thresh, segments */
#define THETA 5       /* module parameter theta: low-delay rounds before full growth */

typedef struct illinois_state {
    rudp_time sum_rtt;   /* this round's samples */
    uint64_t cnt_rtt;
    rudp_time base_rtt;  /* least sample; RUDP_TIME_NEVER before one */
    rudp_time max_rtt;   /* largest sample */
    uint64_t round_end;  /* delivered count that ends the round (Linux's end_seq) */
    uint64_t alpha;      /* << ALPHA_SHIFT */
    uint64_t beta;       /* << BETA_SHIFT */
    uint64_t ca_acc;     /* bytes acked toward the next increase (snd_cwnd_cnt) */
    uint32_t rtt_low;    /* rounds of low delay since it was high */
    int rtt_above;       /* the delay has been above dm/100 */
} illinois_state;

_Static_assert(sizeof(illinois_state) <= sizeof(((rudp_cc *)0)->st),
               "illinois state fits in st");

static void load(const rudp_cc *cc, illinois_state *s) { memcpy(s, cc->st, sizeof *s); }
static void store(rudp_cc *cc, const illinois_state *s) { memcpy(cc->st, s, sizeof *s); }

static void rtt_reset(illinois_state *s, uint64_t delivered)
{
    s->round_end = delivered;
    s->cnt_rtt = 0;
    s->sum_rtt = 0;
}

static void illinois_init(rudp_cc *cc, rudp_time now)
{
    (void)now;
    illinois_state s;
    memset(&s, 0, sizeof s);
    s.alpha = ALPHA_MAX;
    s.beta = BETA_BASE;
    s.base_rtt = RUDP_TIME_NEVER;
    rtt_reset(&s, 0);
    store(cc, &s);
}

/* alpha(da, dm): the increase for average delay da, maximum dm */
static uint64_t alpha_for(illinois_state *s, uint64_t da, uint64_t dm)
{
    uint64_t d1 = dm / 100;
    if (da <= d1) {
        if (!s->rtt_above)
            return ALPHA_MAX;
        /* the delay was high: full growth only after theta low rounds */
        if (++s->rtt_low < THETA)
            return s->alpha;
        s->rtt_low = 0;
        s->rtt_above = 0;
        return ALPHA_MAX;
    }
    s->rtt_above = 1;
    /* alpha_max x dm' / (dm' + da' x (alpha_max - alpha_min) / alpha_min),
     * dm' and da' over d1: alpha_max at da = d1, alpha_min at da = dm */
    dm -= d1;
    da -= d1;
    return dm * ALPHA_MAX / (dm + da * (ALPHA_MAX - ALPHA_MIN) / ALPHA_MIN);
}

/* beta(da, dm): the share a loss takes off */
static uint64_t beta_for(uint64_t da, uint64_t dm)
{
    uint64_t d2 = dm / 10, d3 = 8 * dm / 10;
    if (da <= d2)
        return BETA_MIN;
    if (da >= d3 || d3 <= d2)
        return BETA_MAX;
    return (BETA_MIN * d3 - BETA_MAX * d2 + (BETA_MAX - BETA_MIN) * da) / (d3 - d2);
}

/* update_params: once a round */
static void update_params(rudp_cc *cc, illinois_state *s, uint64_t delivered)
{
    if (cc->cwnd / cc->mss < WIN_THRESH) {
        s->alpha = ALPHA_BASE;
        s->beta = BETA_BASE;
    } else if (s->cnt_rtt > 0) {
        uint64_t dm = s->max_rtt - s->base_rtt;
        uint64_t da = s->sum_rtt / s->cnt_rtt - s->base_rtt;
        s->alpha = alpha_for(s, da, dm);
        s->beta = beta_for(da, dm);
    }
    rtt_reset(s, delivered);
}

static void illinois_on_ack(rudp_cc *cc, const rudp_cc_ack *a)
{
    illinois_state s;
    load(cc, &s);
    cc->recovering = cc->recovering && rudp__cc_in_recovery(cc, a->largest_sent_time);
    if (s.round_end == UINT64_MAX)
        rtt_reset(&s, a->delivered);
    if (a->acked_bytes && a->rtt && a->rtt->has_sample) {
        /* tcp_illinois_acked */
        rudp_time r = a->rtt->latest < RTT_MAX ? a->rtt->latest : RTT_MAX;
        if (r < s.base_rtt)
            s.base_rtt = r;
        if (r > s.max_rtt)
            s.max_rtt = r;
        s.cnt_rtt++;
        s.sum_rtt += r;
    }
    if (rudp__cc_in_recovery(cc, a->largest_sent_time) || !a->acked_bytes)
        goto out;
    if (a->delivered - a->rs_delivered >= s.round_end)
        update_params(cc, &s, a->delivered);
    if (cc->app_limited)
        goto out;
    if (cc->cwnd < cc->ssthresh) {
        rudp__cc_slow_start(cc, a->acked_bytes); /* what passes ssthresh is dropped, as Linux */
        goto out;
    }
    /* alpha segments per window acknowledged */
    s.ca_acc += a->acked_bytes;
    uint64_t delta = (s.ca_acc * s.alpha) >> ALPHA_SHIFT;
    if (delta >= cc->cwnd) {
        cc->cwnd += delta / cc->cwnd * cc->mss;
        s.ca_acc = 0;
    }
out:
    store(cc, &s);
}

static void illinois_on_loss(rudp_cc *cc, rudp_time now, rudp_time sent_time,
                             uint64_t lost_bytes, uint64_t in_flight)
{
    (void)lost_bytes, (void)in_flight;
    if (rudp__cc_in_recovery(cc, sent_time))
        return;
    illinois_state s;
    load(cc, &s);
    /* tcp_illinois_ssthresh: beta of the window off, at least 2 segments */
    uint64_t w = cc->cwnd / cc->mss;
    uint64_t decr = (w * s.beta) >> BETA_SHIFT;
    rudp__cc_cut_to(cc, now, (w - decr) * cc->mss);
    s.ca_acc = 0;
    store(cc, &s);
}

static void illinois_on_persistent_congestion(rudp_cc *cc, rudp_time now)
{
    (void)now;
    illinois_state s;
    load(cc, &s);
    rudp__cc_collapse(cc);
    /* tcp_illinois_state(TCP_CA_Loss) */
    s.alpha = ALPHA_BASE;
    s.beta = BETA_BASE;
    s.rtt_low = 0;
    s.rtt_above = 0;
    s.ca_acc = 0;
    rtt_reset(&s, UINT64_MAX); /* the next ACK starts the round (snd_nxt here) */
    store(cc, &s);
}

void rudp__cc_illinois_get_info(const rudp_cc *cc, rudp_cc_illinois_info *out)
{
    illinois_state s;
    load(cc, &s);
    out->alpha = s.alpha;
    out->beta = s.beta;
    out->base_rtt = s.base_rtt;
    out->max_rtt = s.max_rtt;
}

const rudp_cc_ops rudp__cc_illinois = {
    .name = "illinois",
    .init = illinois_init,
    .on_sent = rudp__cc_on_sent_none,
    .on_ack = illinois_on_ack,
    .on_loss = illinois_on_loss,
    .on_persistent_congestion = illinois_on_persistent_congestion,
    .phase = rudp__cc_loss_phase,
};
