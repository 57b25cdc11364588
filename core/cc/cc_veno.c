/*
 * cc_veno.c: TCP Veno (Fu and Liew, "TCP Veno: TCP Enhancement for
 * Transmission over Wireless Access Networks", IEEE JSAC 21(2), 2003) as
 * Linux runs it (net/ipv4/tcp_veno.c): Reno whose increase and decrease
 * depend on an estimate of the segments it has queued in the network, so
 * that a random loss on an empty path costs less than a congestion loss.
 *
 * On each ACK: diff = cwnd - cwnd x base_rtt / rtt segments (in halves,
 * V_PARAM_SHIFT 1), base_rtt the least RTT seen, rtt this ACK's (the
 * least since the last ACK; both +1 so never zero). Below beta (3
 * segments: "non-congestive") the window grows as Reno's, one segment a
 * round trip; at or above it ("congestive") one every other round trip.
 * A loss takes a fifth off in the non-congestive state and half in the
 * congestive one (at least two segments). Until three RTT samples have
 * been taken, and while in recovery or after persistent congestion (Veno
 * is off outside TCP_CA_Open), growth is Reno's. Slow start is Reno's.
 *
 * Our terms: windows in bytes, a segment one MSS; RTTs in ns (Linux's in
 * us); one reduction per recovery period; no growth while app-limited.
 * Linux restarts Veno's state when an idle connection starts sending
 * again (CA_EVENT_TX_START); the ops here see no such event, so base_rtt
 * is kept across idle periods.
 */
#include <string.h>

#include "cc.h"

#define V_PARAM_SHIFT 1
#define VENO_BETA (3u << V_PARAM_SHIFT)

typedef struct veno_state {
    rudp_time base_rtt; /* least RTT seen (+1); RUDP_TIME_NEVER before one */
    uint64_t cnt_rtt;   /* RTT samples (Linux never clears it) */
    uint64_t diff;      /* backlog, segments << V_PARAM_SHIFT */
    uint64_t ca_acc;    /* bytes acked toward the next increase */
    int doing;          /* Veno is on (TCP_CA_Open) */
    int inc;            /* congestive state: increase at the next full window */
} veno_state;

_Static_assert(sizeof(veno_state) <= sizeof(((rudp_cc *)0)->st), "veno state fits in st");

static void load(const rudp_cc *cc, veno_state *s) { memcpy(s, cc->st, sizeof *s); }
static void store(rudp_cc *cc, const veno_state *s) { memcpy(cc->st, s, sizeof *s); }

static void veno_init(rudp_cc *cc, rudp_time now)
{
    (void)now;
    veno_state s;
    memset(&s, 0, sizeof s);
    s.base_rtt = RUDP_TIME_NEVER;
    s.inc = 1;
    s.doing = 1;
    store(cc, &s);
}

static void veno_on_ack(rudp_cc *cc, const rudp_cc_ack *a)
{
    veno_state s;
    load(cc, &s);
    cc->recovering = cc->recovering && rudp__cc_in_recovery(cc, a->largest_sent_time);
    if (!cc->recovering)
        s.doing = 1; /* back to TCP_CA_Open: veno_enable */
    if (rudp__cc_in_recovery(cc, a->largest_sent_time) || !a->acked_bytes)
        goto out;
    rudp_time rtt = RUDP_TIME_NEVER;
    if (a->rtt && a->rtt->has_sample) {
        /* tcp_veno_pkts_acked */
        rtt = a->rtt->latest + 1;
        if (rtt < s.base_rtt)
            s.base_rtt = rtt;
        s.cnt_rtt++;
    }
    if (!s.doing || s.cnt_rtt <= 2 || rtt == RUDP_TIME_NEVER) {
        rudp__cc_reno_increase(cc, &s.ca_acc, a->acked_bytes);
        goto out;
    }
    if (cc->app_limited)
        goto out;
    uint64_t w = cc->cwnd / cc->mss;
    uint64_t target = (w * s.base_rtt << V_PARAM_SHIFT) / rtt;
    s.diff = (w << V_PARAM_SHIFT) - target;
    uint64_t acked = rudp__cc_slow_start(cc, a->acked_bytes);
    if (!acked)
        goto out;
    if (s.diff < VENO_BETA) {
        /* non-congestive: tcp_cong_avoid_ai(tp, cwnd, acked) */
        rudp__cc_avoid_ai(cc, &s.ca_acc, cc->cwnd, acked);
    } else if (s.ca_acc >= cc->cwnd) {
        /* congestive: a full window acknowledged, every other time */
        if (s.inc)
            cc->cwnd += cc->mss;
        s.inc = !s.inc;
        s.ca_acc = 0;
    } else {
        s.ca_acc += acked;
    }
out:
    store(cc, &s);
}

static void veno_on_loss(rudp_cc *cc, rudp_time now, rudp_time sent_time, uint64_t lost_bytes,
                         uint64_t in_flight)
{
    (void)lost_bytes, (void)in_flight;
    if (rudp__cc_in_recovery(cc, sent_time))
        return;
    veno_state s;
    load(cc, &s);
    /* tcp_veno_ssthresh */
    uint64_t w = cc->cwnd / cc->mss;
    rudp__cc_cut_to(cc, now, (s.diff < VENO_BETA ? w * 4 / 5 : w / 2) * cc->mss);
    s.ca_acc = 0;
    s.doing = 0; /* TCP_CA_Recovery: veno_disable */
    store(cc, &s);
}

static void veno_on_persistent_congestion(rudp_cc *cc, rudp_time now)
{
    (void)now;
    veno_state s;
    load(cc, &s);
    rudp__cc_collapse(cc);
    s.ca_acc = 0;
    s.doing = 0; /* TCP_CA_Loss; on again with the next ACK (Open) */
    store(cc, &s);
}

void rudp__cc_veno_get_info(const rudp_cc *cc, rudp_cc_veno_info *out)
{
    veno_state s;
    load(cc, &s);
    out->base_rtt = s.base_rtt;
    out->diff = s.diff;
    out->enabled = s.doing;
}

const rudp_cc_ops rudp__cc_veno = {
    .name = "veno",
    .init = veno_init,
    .on_sent = rudp__cc_on_sent_none,
    .on_ack = veno_on_ack,
    .on_loss = veno_on_loss,
    .on_persistent_congestion = veno_on_persistent_congestion,
    .phase = rudp__cc_loss_phase,
};
