/*
 * Copa's default mode (cc_copa.c) driven through the ops table with
 * synthetic ACKs (lib_ccdrv), then whole transfers over the simulated
 * network (lib_sim). The rule: rate cwnd / RTTstanding up toward
 * 1 / (delta * dq), dq = RTTstanding - RTTmin, delta = 0.1, so about ten
 * packets wait at the bottleneck at equilibrium; the window moves by
 * v / delta = 10 v MSS a round trip.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "lib_ccdrv.h"

#define T0 RUDP_SEC(1000)
#define MSS 1400u
#define BASE RUDP_MS(40)

static rudp_cc_copa_info info(const ccdrv *d)
{
    rudp_cc_copa_info i;
    rudp__cc_copa_get_info(&d->cc, &i);
    return i;
}

/* Out of slow start (a queue seen once), then the window set to w MSS. */
static void in_avoidance(ccdrv *d, uint64_t w)
{
    ccdrv_init(d, &rudp__cc_copa, MSS, T0);
    ccdrv_round(d, BASE, MSS);
    for (int r = 0; r < 10 && info(d).slow_start; r++)
        ccdrv_round(d, BASE + RUDP_MS(30), MSS);
    cr_assert(eq(int, info(d).slow_start, 0));
    d->cc.cwnd = w * MSS;
}

Test(copa, is_found_by_name)
{
    cr_assert(eq(ptr, (void *)rudp_cc_find("copa"), (void *)&rudp__cc_copa));
    cr_assert(eq(str, (char *)rudp__cc_copa.name, "copa"));
}

Test(copa, slow_start_doubles_per_round_while_no_queue_builds, .timeout = 10)
{
    ccdrv d;
    ccdrv_init(&d, &rudp__cc_copa, MSS, T0);
    uint64_t w = d.cc.cwnd;
    for (int r = 0; r < 4; r++) {
        ccdrv_round(&d, BASE, MSS); /* every sample the base: dq = 0 */
        cr_assert(eq(u64, d.cc.cwnd, 2 * w), "round %d", r);
        w = d.cc.cwnd;
    }
    cr_assert(eq(int, info(&d).slow_start, 1));
    cr_assert(eq(u64, info(&d).min_rtt, BASE));
    cr_assert(eq(str, (char *)d.cc.ops->phase(&d.cc), "slow start"));
    /* paced at twice the window over the standing RTT */
    cr_assert(eq(u64, d.cc.pacing_rate, 2 * d.cc.cwnd * RUDP_SEC(1) / BASE));
}

Test(copa, a_standing_queue_ends_slow_start_and_shrinks_the_window, .timeout = 10)
{
    ccdrv d;
    ccdrv_init(&d, &rudp__cc_copa, MSS, T0);
    ccdrv_round(&d, BASE, MSS);
    ccdrv_round(&d, BASE, MSS);
    /* Every sample 20 ms above the base: once the standing minimum (over
     * srtt) forgets the base, the target rate is MSS / (0.1 * 20 ms) =
     * 500 MSS/s, below the window's (40+ MSS / 60 ms), so down. */
    int r = 0;
    while (info(&d).slow_start && r++ < 3)
        ccdrv_round(&d, BASE + RUDP_MS(20), MSS);
    cr_assert(eq(int, info(&d).slow_start, 0), "slow start ends within 3 rounds");
    cr_assert(eq(str, (char *)d.cc.ops->phase(&d.cc), "avoidance"));
    for (r = 0; r < 3; r++) {
        uint64_t w = d.cc.cwnd;
        ccdrv_round(&d, BASE + RUDP_MS(20), MSS);
        cr_assert(lt(u64, d.cc.cwnd, w), "round %d: %llu >= %llu", r,
                  (unsigned long long)d.cc.cwnd, (unsigned long long)w);
    }
    cr_assert(eq(u64, info(&d).standing_rtt, BASE + RUDP_MS(20)));
    cr_assert(eq(u64, info(&d).min_rtt, BASE), "RTTmin keeps the base for 10 s");
    cr_assert(eq(int, info(&d).direction, RUDP_COPA_DOWN));
}

Test(copa, one_direction_for_three_rounds_doubles_the_velocity, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 1000);
    /* A queue that stays: the window falls round after round. */
    uint64_t v = 1, prev = d.cc.cwnd;
    int doubled = 0;
    for (int r = 0; r < 12 && info(&d).velocity < 16; r++) {
        ccdrv_round(&d, BASE + RUDP_MS(30), 2 * MSS);
        cr_assert(lt(u64, d.cc.cwnd, prev), "round %d: the window falls", r);
        prev = d.cc.cwnd;
        uint64_t nv = info(&d).velocity;
        cr_assert(nv == v || nv == 2 * v, "velocity %llu -> %llu", (unsigned long long)v,
                  (unsigned long long)nv);
        doubled += nv == 2 * v;
        v = nv;
    }
    cr_assert(eq(int, doubled, 4), "velocity doubled %d times (1 -> 16)", doubled);
    /* The direction changes: back to 1. */
    for (int r = 0; r < 3; r++)
        ccdrv_round(&d, BASE, MSS);
    cr_assert(eq(int, info(&d).direction, RUDP_COPA_UP));
    cr_assert(le(u64, info(&d).velocity, 2), "velocity %llu", (unsigned long long)info(&d).velocity);
}

Test(copa, converges_near_the_bdp_with_a_queue_of_about_ten_packets, .timeout = 10)
{
    ccdrv d;
    ccdrv_init(&d, &rudp__cc_copa, MSS, T0);
    /* 1000 MSS/s (11.2 Mbit/s) behind 40 ms: BDP 40 MSS. */
    ccdrv_link(&d, d.now + RUDP_SEC(30), 1000, BASE);
    uint64_t lo = UINT64_MAX, hi = 0;
    rudp_time end = d.now + RUDP_SEC(10);
    while (d.now < end) {
        ccdrv_link(&d, d.now + RUDP_MS(50), 1000, BASE);
        lo = d.cc.cwnd < lo ? d.cc.cwnd : lo;
        hi = d.cc.cwnd > hi ? d.cc.cwnd : hi;
    }
    /* Equilibrium: 1 / delta = 10 packets queued (this link model's RTT
     * grows only past the BDP); Copa oscillates around it. Never below the
     * BDP for long (full rate), never far above it (low delay). */
    cr_assert(ge(u64, hi, 45 * MSS), "reaches the BDP: max %llu MSS", (unsigned long long)(hi / MSS));
    cr_assert(le(u64, hi, 60 * MSS), "queue under 20 packets: max %llu MSS",
              (unsigned long long)(hi / MSS));
    cr_assert(ge(u64, lo, 25 * MSS), "min %llu MSS (a drain halves it every 5 s)",
              (unsigned long long)(lo / MSS));
}

Test(copa, follows_a_rate_drop_down_within_a_few_round_trips, .timeout = 10)
{
    ccdrv d;
    ccdrv_init(&d, &rudp__cc_copa, MSS, T0);
    ccdrv_link(&d, d.now + RUDP_SEC(20), 1000, BASE); /* BDP 40 MSS */
    /* The link falls to a quarter: BDP 10 MSS, and the ~50 MSS window a
     * 200 ms queue. Copa must come down to the new equilibrium (10 + 10
     * queued) within 1.5 s, not keep the queue. */
    ccdrv_link(&d, d.now + RUDP_MS(1500), 250, BASE);
    cr_assert(le(u64, d.cc.cwnd, 24 * MSS), "after 1.5 s: %llu MSS",
              (unsigned long long)(d.cc.cwnd / MSS));
    ccdrv_link(&d, d.now + RUDP_SEC(5), 250, BASE);
    cr_assert(ge(u64, d.cc.cwnd, 10 * MSS), "still fills the link: %llu MSS",
              (unsigned long long)(d.cc.cwnd / MSS));
}

Test(copa, no_growth_while_app_limited, .timeout = 10)
{
    ccdrv d;
    ccdrv_init(&d, &rudp__cc_copa, MSS, T0);
    d.app_limited = 1;
    uint64_t w = d.cc.cwnd;
    for (int r = 0; r < 5; r++)
        ccdrv_round(&d, BASE, MSS);
    cr_assert(eq(u64, d.cc.cwnd, w));
}

Test(copa, random_loss_keeps_the_window_persistent_congestion_collapses_it, .timeout = 10)
{
    ccdrv d;
    ccdrv_init(&d, &rudp__cc_copa, MSS, T0);
    for (int r = 0; r < 3; r++)
        ccdrv_round(&d, BASE, MSS);
    uint64_t w = d.cc.cwnd;
    ccdrv_loss(&d, d.now - 1);
    cr_assert(eq(u64, d.cc.cwnd, w), "a loss with no queue says nothing of it");
    cr_assert(eq(int, info(&d).slow_start, 1));
    d.cc.ops->on_persistent_congestion(&d.cc, d.now);
    cr_assert(eq(u64, d.cc.cwnd, 2 * MSS));
    cr_assert(eq(u64, info(&d).velocity, 1));
    ccdrv_round(&d, BASE, MSS);
    cr_assert(gt(u64, d.cc.cwnd, 2 * MSS), "grows again");
}

Test(copa, a_loss_with_a_queue_cuts_once_a_round_never_below_the_minimum, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 100);
    ccdrv_round(&d, BASE + RUDP_MS(30), MSS); /* a standing queue */
    uint64_t w = d.cc.cwnd;
    ccdrv_loss(&d, d.now - 1);
    cr_assert(eq(u64, d.cc.cwnd, w / 10 * 7), "0.7x: %llu of %llu", (unsigned long long)d.cc.cwnd,
              (unsigned long long)w);
    w = d.cc.cwnd;
    ccdrv_loss(&d, d.now - 2); /* sent before the cut: the same episode */
    cr_assert(eq(u64, d.cc.cwnd, w));
    /* One a round trip, each sent after the last cut: down to the minimum,
     * never below. */
    for (int r = 0; r < 20; r++) {
        d.now += RUDP_MS(70);
        ccdrv_loss(&d, d.now - 1);
        cr_assert(ge(u64, d.cc.cwnd, 2 * MSS), "round %d", r);
    }
    cr_assert(eq(u64, d.cc.cwnd, 2 * MSS));
}

Test(copa, a_queue_that_stands_for_5_s_halves_the_window_once, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 40);
    /* The rule's floor is 1/delta packets whatever the queue, so a queue
     * that never empties is drained by hand: 5 s without a sample near
     * RTTmin halve the window once. */
    int halved = 0;
    rudp_time end = d.now + RUDP_SEC(6);
    while (d.now < end) { /* one ACK at a time, RTT 60 ms: equilibrium 30 MSS */
        uint64_t prev = d.cc.cwnd;
        d.now += BASE / 40;
        ccdrv_ack(&d, MSS, BASE + RUDP_MS(20), d.delivered);
        if (d.cc.cwnd <= prev * 6 / 10)
            halved++;
    }
    cr_assert(eq(int, halved, 1), "halved %d times", halved);
}

/* ---- whole transfers over the simulated network ---- */

Test(copa, sim_fills_a_clean_link, .timeout = 30)
{
    sim_bulk_result r;
    ccdrv_sim_flow(&rudp__cc_copa, 0, &r);
    cr_assert(eq(int, r.error, 0));
    cr_assert(gt(dbl, r.mbps, 70.0), "%.2f Mbit/s", r.mbps);
    /* slow start's overshoot into the 1-BDP buffer, then the cut: measured
     * 4.0 % */
    cr_assert(le(dbl, r.retx_pct, 6.0), "%.2f%% retransmitted", r.retx_pct);
}

Test(copa, sim_random_loss_does_not_starve_it, .timeout = 30)
{
    sim_bulk_result r;
    ccdrv_sim_flow(&rudp__cc_copa, 0.01, &r);
    cr_assert(eq(int, r.error, 0));
    /* loss is not its signal: far above a loss-based controller's ~3 */
    cr_assert(gt(dbl, r.mbps, 20.0), "%.2f Mbit/s", r.mbps);
}
