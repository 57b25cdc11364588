/*
 * cc_westwood.c: TCP Westwood+ (Mascolo, Grieco et al., "Performance
 * evaluation and comparison of Westwood+, New Reno, and Vegas TCP
 * congestion control", CCR 34(2), 2004) as Linux runs it
 * (net/ipv4/tcp_westwood.c): Reno, except that after a congestion event
 * the window is set to the bandwidth estimate times the least RTT (the
 * path's BDP as the ACKs measure it) instead of being halved, so random
 * loss on an uncongested path costs little.
 *
 * The estimate: bytes acknowledged over windows of at least an RTT (and
 * at least 50 ms), each window's rate through two 7/8 low-pass filters
 * (the first sample fills both). A loss halves the window as Reno's does
 * for the recovery period; when recovery ends, cwnd = ssthresh =
 * max(bw_est * rtt_min, 2 segments) (CA_EVENT_COMPLETE_CWR). Persistent
 * congestion (Linux's RTO, CA_EVENT_LOSS): the minimum window, ssthresh
 * from the estimate, and rtt_min taken afresh from the next sample.
 *
 * Our terms: the rate in bytes per second, RTT samples the ACKs' latest,
 * acknowledged bytes counted as the ACK frame reports them (no dupack
 * accounting: rudp's ACKs carry ranges); no growth while app-limited.
 */
#include <string.h>

#include "cc.h"

#define WW_RTT_MIN RUDP_MS(50)  /* TCP_WESTWOOD_RTT_MIN */
#define WW_INIT_RTT RUDP_SEC(20) /* TCP_WESTWOOD_INIT_RTT */

typedef struct ww_state {
    uint64_t bw_ns_est;   /* bytes/s, first filter */
    uint64_t bw_est;      /* bytes/s, second filter */
    rudp_time win_start;  /* the sampling window began */
    uint64_t bk;          /* bytes acked in this window */
    rudp_time rtt;        /* latest RTT sample */
    rudp_time rtt_min;
    int reset_rtt_min;    /* the next sample replaces rtt_min */
    uint64_t ca_acc;      /* Reno avoidance: bytes acked toward one MSS */
} ww_state;

_Static_assert(sizeof(ww_state) <= sizeof(((rudp_cc *)0)->st), "westwood state fits in st");

static void load(const rudp_cc *cc, ww_state *s) { memcpy(s, cc->st, sizeof *s); }
static void store(rudp_cc *cc, const ww_state *s) { memcpy(cc->st, s, sizeof *s); }

static void ww_init(rudp_cc *cc, rudp_time now)
{
    ww_state s;
    memset(&s, 0, sizeof s);
    s.rtt = s.rtt_min = WW_INIT_RTT;
    s.reset_rtt_min = 1;
    s.win_start = now;
    store(cc, &s);
}

static uint64_t lowpass(uint64_t a, uint64_t b) { return (7 * a + b) >> 3; }

/* westwood_update_window: a window of max(RTT, 50 ms) closes into the
 * filters */
static void update_window(ww_state *s, rudp_time now)
{
    rudp_time delta = now - s->win_start;
    rudp_time span = s->rtt > WW_RTT_MIN ? s->rtt : WW_RTT_MIN;
    if (!s->rtt || delta <= span)
        return;
    uint64_t sample = (uint64_t)((double)s->bk * 1e9 / (double)delta);
    if (!s->bw_ns_est && !s->bw_est) {
        s->bw_ns_est = s->bw_est = sample;
    } else {
        s->bw_ns_est = lowpass(s->bw_ns_est, sample);
        s->bw_est = lowpass(s->bw_est, s->bw_ns_est);
    }
    s->bk = 0;
    s->win_start = now;
}

/* tcp_westwood_bw_rttmin: the estimated BDP, at least the minimum window */
static uint64_t bw_rttmin(const rudp_cc *cc, const ww_state *s)
{
    uint64_t w = (uint64_t)((double)s->bw_est * (double)s->rtt_min / 1e9);
    uint64_t minw = rudp__cc_min_window(cc->mss);
    return w > minw ? w : minw;
}

static void ww_on_ack(rudp_cc *cc, const rudp_cc_ack *a)
{
    ww_state s;
    load(cc, &s);
    int was_recovering = cc->recovering;
    cc->recovering = cc->recovering && rudp__cc_in_recovery(cc, a->largest_sent_time);
    if (a->acked_bytes && a->rtt && a->rtt->has_sample)
        s.rtt = a->rtt->latest; /* tcp_westwood_pkts_acked */
    update_window(&s, a->now);
    s.bk += a->acked_bytes;
    if (s.reset_rtt_min) {
        s.rtt_min = s.rtt;
        s.reset_rtt_min = 0;
    } else if (s.rtt < s.rtt_min) {
        s.rtt_min = s.rtt;
    }
    if (was_recovering && !cc->recovering) {
        /* CA_EVENT_COMPLETE_CWR: to the estimated BDP */
        cc->ssthresh = cc->cwnd = bw_rttmin(cc, &s);
        s.ca_acc = 0;
    }
    if (!rudp__cc_in_recovery(cc, a->largest_sent_time))
        rudp__cc_reno_increase(cc, &s.ca_acc, a->acked_bytes);
    store(cc, &s);
}

static void ww_on_loss(rudp_cc *cc, rudp_time now, rudp_time sent_time, uint64_t lost_bytes,
                       uint64_t in_flight)
{
    (void)lost_bytes, (void)in_flight;
    if (rudp__cc_in_recovery(cc, sent_time))
        return;
    ww_state s;
    load(cc, &s);
    rudp__cc_reno_cut(cc, now); /* tcp_reno_ssthresh for the recovery period */
    s.ca_acc = 0;
    store(cc, &s);
}

static void ww_on_persistent_congestion(rudp_cc *cc, rudp_time now)
{
    (void)now;
    ww_state s;
    load(cc, &s);
    cc->ssthresh = bw_rttmin(cc, &s); /* CA_EVENT_LOSS */
    rudp__cc_collapse(cc);
    s.reset_rtt_min = 1;
    s.ca_acc = 0;
    store(cc, &s);
}

void rudp__cc_westwood_get_info(const rudp_cc *cc, rudp_cc_westwood_info *out)
{
    ww_state s;
    load(cc, &s);
    out->bw_est = s.bw_est;
    out->rtt_min = s.rtt_min;
}

const rudp_cc_ops rudp__cc_westwood = {
    .name = "westwood",
    .init = ww_init,
    .on_sent = rudp__cc_on_sent_none,
    .on_ack = ww_on_ack,
    .on_loss = ww_on_loss,
    .on_persistent_congestion = ww_on_persistent_congestion,
    .phase = rudp__cc_loss_phase,
};
