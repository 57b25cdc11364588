/*
 * TCP-NV (Linux's tcp_nv) driven through the ops table (lib_ccdrv) over a
 * bottleneck: the window the delivery rate fills at the least RTT, plus 10
 * packets, is where NV stops; past it 30% of the excess comes off before
 * any loss; a loss takes 20% and stops growth until a clean round; a
 * timeout slows growth below one segment a round; the least RTT is renewed
 * every 5 s x a random 3/4..5/4 drawn from the controller's generator;
 * then a whole transfer over the simulated network (lib_sim).
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <string.h>

#include "lib_ccdrv.h"

#define T0 RUDP_SEC(1000)
#define MSS 1400u
#define BASE RUDP_MS(100)
#define RATE 1000u /* segments/s: a BDP of 100 segments at BASE */

static rudp_cc_nv_info info(const ccdrv *d)
{
    rudp_cc_nv_info i;
    rudp__cc_nv_get_info(&d->cc, &i);
    return i;
}

/* One-segment ACKs over a RATE bottleneck behind BASE: the RTT is
 * max(BASE, cwnd / RATE), ACKs come at min(RATE, cwnd / BASE) a second,
 * and each reports a window's worth delivered over its interval. */
static void link_acks(ccdrv *d, int n)
{
    for (int i = 0; i < n; i++) {
        uint64_t w = d->cc.cwnd / MSS;
        rudp_time q = (rudp_time)(w * RUDP_SEC(1) / RATE);
        rudp_time rtt = q > BASE ? q : BASE;
        uint64_t per_s = w * RUDP_SEC(1) / BASE < RATE ? w * RUDP_SEC(1) / BASE : RATE;
        d->now += RUDP_SEC(1) / per_s;
        uint64_t prior = d->delivered >= d->cc.cwnd ? d->delivered + MSS - d->cc.cwnd : 0;
        ccdrv_ack(d, MSS, rtt, prior);
    }
}

/* Avoidance at 50 segments over the link long enough to learn BASE. */
static void warm(ccdrv *d)
{
    ccdrv_init(d, &rudp__cc_nv, MSS, T0);
    d->cc.cwnd = d->cc.ssthresh = 50 * MSS;
    link_acks(d, 300);
    d->cc.cwnd = 50 * MSS;
}

Test(nv, learns_the_least_averaged_rtt, .timeout = 10)
{
    ccdrv d;
    warm(&d);
    cr_assert(eq(u64, info(&d).min_rtt, BASE));
    cr_assert(eq(int, info(&d).allow_growth, 1));
}

Test(nv, congestion_takes_thirty_percent_of_the_excess, .timeout = 10)
{
    ccdrv d;
    warm(&d);
    d.cc.cwnd = 200 * MSS; /* twice the path's BDP: a queue of 100 */
    uint64_t ss0 = d.cc.ssthresh, w = 0;
    for (int i = 0; i < 2000 && d.cc.ssthresh == ss0; i++) {
        w = d.cc.cwnd / MSS;
        link_acks(&d, 1);
    }
    cr_assert(ne(u64, d.cc.ssthresh, ss0), "no congestion seen");
    uint64_t max_win = d.cc.ssthresh / MSS; /* ssthresh = max_win */
    cr_assert(ge(u64, max_win, 110), "rate x least RTT + pad: %llu", (unsigned long long)max_win);
    cr_assert(le(u64, max_win, 150), "%llu", (unsigned long long)max_win);
    uint64_t dec = (w - max_win) * 38 / 128;
    cr_assert(eq(u64, d.cc.cwnd, (w - (dec > 2 ? dec : 2)) * MSS), "w %llu max_win %llu",
              (unsigned long long)w, (unsigned long long)max_win);
    cr_assert(eq(int, info(&d).allow_growth, 0));
}

Test(nv, settles_a_few_packets_over_the_bdp_without_loss, .timeout = 10)
{
    ccdrv d;
    warm(&d);
    d.cc.cwnd = 200 * MSS;
    /* until the least RTT is next renewed (it was at 2 s: 100 ms); later
     * periods see only the queue NV keeps, and max_win creeps up with it,
     * as Linux's does */
    while (d.now < T0 + RUDP_SEC(6))
        link_acks(&d, 1);
    uint64_t w = d.cc.cwnd / MSS;
    /* the BDP is 100; NV keeps nv_pad (10) queued, cutting 30% of any
     * excess over that */
    cr_assert(ge(u64, w, 100), "%llu", (unsigned long long)w);
    cr_assert(le(u64, w, 115), "%llu", (unsigned long long)w);
    cr_assert(eq(u64, info(&d).min_rtt, BASE));
}

Test(nv, a_loss_takes_a_fifth_and_stops_growth, .timeout = 10)
{
    ccdrv d;
    warm(&d);
    ccdrv_loss(&d, d.now - 1);
    cr_assert(eq(u64, d.cc.cwnd, 50 * 819 / 1024 * MSS));
    cr_assert(eq(u64, d.cc.ssthresh, d.cc.cwnd));
    cr_assert(eq(int, info(&d).allow_growth, 0));
    uint64_t w = d.cc.cwnd;
    link_acks(&d, 45); /* 100 ms of recovery, then Open */
    cr_assert(eq(u64, d.cc.cwnd, w), "growth waits for a round without congestion");
    link_acks(&d, 200);
    cr_assert(eq(int, info(&d).allow_growth, 1));
    cr_assert(gt(u64, d.cc.cwnd, w));
}

Test(nv, a_timeout_slows_growth_below_one_segment_a_round, .timeout = 10)
{
    ccdrv d;
    warm(&d);
    d.cc.ops->on_persistent_congestion(&d.cc, d.now);
    cr_assert(eq(u64, d.cc.cwnd, 2 * MSS));
    cr_assert(eq(int, info(&d).growth_factor, -1));
    d.cc.ops->on_persistent_congestion(&d.cc, d.now);
    cr_assert(eq(int, info(&d).growth_factor, -2));
    /* avoidance at 40 with factor -1: one segment per 80 acknowledged */
    ccdrv_init(&d, &rudp__cc_nv, MSS, T0);
    d.cc.ops->on_persistent_congestion(&d.cc, d.now);
    d.cc.cwnd = d.cc.ssthresh = 40 * MSS;
    link_acks(&d, 100); /* Open, a clean round: growth allowed */
    cr_assert(eq(int, info(&d).allow_growth, 1));
    uint64_t w = d.cc.cwnd;
    link_acks(&d, 160);
    cr_assert(ge(u64, d.cc.cwnd, w + MSS));
    cr_assert(le(u64, d.cc.cwnd, w + 2 * MSS), "2 segments per 160 acked, not 4");
}

Test(nv, the_least_rtt_is_renewed_at_random_periods, .timeout = 10)
{
    rudp_time period[4];
    for (int k = 0; k < 4; k++) {
        ccdrv d;
        ccdrv_init(&d, &rudp__cc_nv, MSS, T0);
        rudp__cc_seed(&d.cc, 0x1234 + (uint64_t)k, 0x5678);
        d.cc.cwnd = d.cc.ssthresh = 50 * MSS;
        link_acks(&d, 30); /* before the first reset: 2 s after init */
        cr_assert(eq(u64, info(&d).reset_at, T0 + RUDP_SEC(2)));
        while (d.now < T0 + RUDP_SEC(2))
            link_acks(&d, 1);
        period[k] = info(&d).reset_at - d.now;
        cr_assert(ge(u64, period[k], RUDP_MS(3750)), "%llu", (unsigned long long)period[k]);
        cr_assert(lt(u64, period[k], RUDP_MS(6250)), "%llu", (unsigned long long)period[k]);
    }
    cr_assert(period[0] != period[1] || period[1] != period[2] || period[2] != period[3],
              "the draws differ with the key");
    /* the same key draws the same numbers: no clock, no libc rand */
    rudp_cc a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    rudp__cc_seed(&a, 7, 8);
    rudp__cc_seed(&b, 7, 8);
    cr_assert(eq(u64, rudp__cc_random(&a), rudp__cc_random(&b)));
    cr_assert(ne(u64, rudp__cc_random(&a), rudp__cc_random(&a)));
}

Test(nv, is_found_by_name)
{
    cr_assert(eq(ptr, (void *)rudp_cc_find("nv"), (void *)&rudp__cc_nv));
    cr_assert(eq(str, (char *)rudp__cc_nv.name, "nv"));
}

Test(nv, sim_transfer_over_a_lossy_link_completes, .timeout = 30)
{
    sim_bulk_result r;
    ccdrv_sim_flow(&rudp__cc_nv, 0.01, &r);
    cr_assert(eq(int, r.error, 0));
    cr_assert(gt(dbl, r.mbps, 0.5), "%.2f Mbit/s", r.mbps);
    cr_assert(le(dbl, r.retx_pct, 2.0), "%.2f%%", r.retx_pct);
}
