/*
 * cc_lp.c: TCP Low Priority (Kuzmanovic and Knightly, "TCP-LP: a
 * distributed algorithm for low priority data transfer", INFOCOM 2003) as
 * Linux runs it (net/ipv4/tcp_lp.c): Reno that yields to other traffic,
 * using only the capacity left over, by backing off as soon as delay
 * rises, before any loss.
 *
 * Every ACK with a delay sample updates the least and largest delay seen
 * (the largest one step behind a reserve, so a single peak is forgotten)
 * and a smoothed delay (7/8 old + 1/8 new). While the smoothed delay stays
 * under min + 15% of (max - min), growth is Reno's. Past it (an early
 * congestion indication) the window halves, or drops to the minimum if
 * the last indication was less than an inference time (3 x the RTT) ago;
 * the band restarts at [smoothed, 2 x smoothed]; and no growth happens
 * until the inference time has passed. A loss is Reno's (halve).
 *
 * Our terms: Linux measures a one-way delay from the peer's TCP timestamps
 * (tsval against tsecr, with the peer's clock rate estimated); rudp's ACKs
 * carry no timestamp of the peer's, so the delay here is the RTT sample,
 * which adds the reverse path's queueing to the forward one's (Linux's
 * module notes the two have "a similar meaning"; the band is relative, so
 * a constant offset changes nothing). The inference time is Linux's:
 * 3 x (now - the echoed send time), the RTT of the ACKed packet. Windows
 * in bytes, a segment one MSS; the minimum window is RFC 9002's two
 * segments where Linux drops to one. As Linux's, the first delay sample
 * sets the band and counts as an indication (the window halves once, early
 * in slow start). No growth while app-limited; the early cut applies in
 * recovery too (Linux's pkts_acked runs on every ACK).
 */
#include <string.h>

#include "cc.h"

typedef struct lp_state {
    rudp_time sowd;      /* smoothed delay << 3; 0 before a sample */
    rudp_time owd_min;   /* RUDP_TIME_NEVER before a sample */
    rudp_time owd_max;
    rudp_time owd_max_rsv;
    rudp_time last_drop; /* time of the last early cut; 0: none */
    rudp_time inference; /* 3 x RTT */
    uint64_t ca_acc;     /* Reno avoidance */
    int within_inf;      /* LP_WITHIN_INF */
} lp_state;

_Static_assert(sizeof(lp_state) <= sizeof(((rudp_cc *)0)->st), "lp state fits in st");

static void load(const rudp_cc *cc, lp_state *s) { memcpy(s, cc->st, sizeof *s); }
static void store(rudp_cc *cc, const lp_state *s) { memcpy(cc->st, s, sizeof *s); }

static void lp_init(rudp_cc *cc, rudp_time now)
{
    (void)now;
    lp_state s;
    memset(&s, 0, sizeof s);
    s.owd_min = RUDP_TIME_NEVER;
    store(cc, &s);
}

/* tcp_lp_rtt_sample */
static void sample(lp_state *s, rudp_time m)
{
    if (m < s->owd_min)
        s->owd_min = m;
    /* the largest is one step behind its reserve: a lone peak is forgotten */
    if (m > s->owd_max) {
        if (m > s->owd_max_rsv) {
            s->owd_max = s->owd_max_rsv == 0 ? m : s->owd_max_rsv;
            s->owd_max_rsv = m;
        } else {
            s->owd_max = m;
        }
    }
    if (s->sowd)
        s->sowd = s->sowd - (s->sowd >> 3) + m;
    else
        s->sowd = m << 3;
}

static void lp_on_ack(rudp_cc *cc, const rudp_cc_ack *a)
{
    lp_state s;
    load(cc, &s);
    cc->recovering = cc->recovering && rudp__cc_in_recovery(cc, a->largest_sent_time);
    if (!a->acked_bytes)
        goto out;
    /* tcp_lp_pkts_acked */
    if (a->rtt && a->rtt->has_sample)
        sample(&s, a->rtt->latest);
    if (a->now > a->largest_sent_time)
        s.inference = 3 * (a->now - a->largest_sent_time);
    s.within_inf = s.last_drop && a->now - s.last_drop < s.inference;
    int within_thr = s.owd_min == RUDP_TIME_NEVER ||
                     s.sowd >> 3 < s.owd_min + 15 * (s.owd_max - s.owd_min) / 100;
    if (!within_thr) {
        /* early congestion indication: a new band, and back off */
        s.owd_min = s.sowd >> 3;
        s.owd_max = s.owd_max_rsv = s.sowd >> 2;
        uint64_t minw = rudp__cc_min_window(cc->mss);
        if (s.within_inf || cc->cwnd / 2 < minw)
            cc->cwnd = minw;
        else
            cc->cwnd = cc->cwnd / cc->mss / 2 * cc->mss;
        s.last_drop = a->now;
    }
    /* tcp_lp_cong_avoid: Reno's, away from an inference */
    if (!s.within_inf && !rudp__cc_in_recovery(cc, a->largest_sent_time))
        rudp__cc_reno_increase(cc, &s.ca_acc, a->acked_bytes);
out:
    store(cc, &s);
}

static void lp_on_loss(rudp_cc *cc, rudp_time now, rudp_time sent_time, uint64_t lost_bytes,
                       uint64_t in_flight)
{
    (void)lost_bytes, (void)in_flight;
    if (rudp__cc_in_recovery(cc, sent_time))
        return;
    lp_state s;
    load(cc, &s);
    rudp__cc_reno_cut(cc, now); /* tcp_reno_ssthresh */
    s.ca_acc = 0;
    store(cc, &s);
}

static void lp_on_persistent_congestion(rudp_cc *cc, rudp_time now)
{
    (void)now;
    lp_state s;
    load(cc, &s);
    rudp__cc_collapse(cc);
    s.ca_acc = 0;
    store(cc, &s);
}

void rudp__cc_lp_get_info(const rudp_cc *cc, rudp_cc_lp_info *out)
{
    lp_state s;
    load(cc, &s);
    out->owd_min = s.owd_min;
    out->owd_max = s.owd_max;
    out->sowd = s.sowd >> 3;
    out->last_drop = s.last_drop;
    out->within_inference = s.within_inf;
}

const rudp_cc_ops rudp__cc_lp = {
    .name = "lp",
    .init = lp_init,
    .on_sent = rudp__cc_on_sent_none,
    .on_ack = lp_on_ack,
    .on_loss = lp_on_loss,
    .on_persistent_congestion = lp_on_persistent_congestion,
    .phase = rudp__cc_loss_phase,
};
