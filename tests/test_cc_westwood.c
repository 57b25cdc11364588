/*
 * Westwood+ (Linux's tcp_westwood) driven through the ops table
 * (lib_ccdrv): the bandwidth the ACKs measure, and after a congestion
 * event the window set to that bandwidth times the least RTT instead of
 * halved; then whole transfers over the simulated network (lib_sim).
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "lib_ccdrv.h"

#define T0 RUDP_SEC(1000)
#define MSS 1400u
#define BASE RUDP_MS(100)
#define RATE 1000u /* segments/s: a 100-segment BDP over BASE */

static rudp_cc_westwood_info info(const ccdrv *d)
{
    rudp_cc_westwood_info i;
    rudp__cc_westwood_get_info(&d->cc, &i);
    return i;
}

/* Avoidance at w MSS over the RATE x BASE link for `secs` seconds. */
static void run(ccdrv *d, uint64_t w, int secs)
{
    ccdrv_init(d, &rudp__cc_westwood, MSS, T0);
    d->cc.cwnd = d->cc.ssthresh = w * MSS;
    ccdrv_link(d, T0 + RUDP_SEC(secs), RATE, BASE);
}

Test(westwood, estimates_the_bottleneck_rate_and_the_least_rtt, .timeout = 10)
{
    ccdrv d;
    run(&d, 100, 2);
    d.cc.cwnd = 150 * MSS; /* 50 segments queued: RTT 150 ms, rate the link's */
    ccdrv_link(&d, d.now + RUDP_SEC(3), RATE, BASE);
    double bw = (double)info(&d).bw_est, want = (double)RATE * MSS;
    cr_assert(bw > want * 0.97 && bw < want * 1.03, "bw_est %.0f B/s, link %.0f", bw, want);
    cr_assert(eq(u64, info(&d).rtt_min, BASE), "rtt_min %llu",
              (unsigned long long)info(&d).rtt_min);
}

Test(westwood, recovery_ends_at_the_estimated_bdp_not_half_the_window, .timeout = 10)
{
    ccdrv d;
    run(&d, 100, 3);
    /* Raise the window into the queue: the least RTT stays the base. */
    d.cc.cwnd = 160 * MSS;
    ccdrv_link(&d, d.now + RUDP_SEC(1), RATE, BASE);
    uint64_t w = d.cc.cwnd;
    ccdrv_loss(&d, d.now - 1);
    cr_assert(eq(u64, d.cc.cwnd, w / 2), "Reno's half for the recovery period");
    d.now += BASE;
    ccdrv_ack(&d, MSS, BASE - 1, d.delivered); /* sent after the loss: recovery ends */
    uint64_t bdp = (uint64_t)((double)info(&d).bw_est * (double)info(&d).rtt_min / 1e9);
    cr_assert(eq(u64, d.cc.cwnd, bdp), "cwnd %llu, bw_est x rtt_min %llu",
              (unsigned long long)d.cc.cwnd, (unsigned long long)bdp);
    cr_assert(eq(u64, d.cc.ssthresh, bdp));
    cr_assert(gt(u64, d.cc.cwnd, 95 * MSS), "about the 100-segment BDP: %llu MSS",
              (unsigned long long)(d.cc.cwnd / MSS));
    cr_assert(gt(u64, d.cc.cwnd, w / 2 + 10 * MSS), "more than Reno's half (%llu MSS)",
              (unsigned long long)(w / 2 / MSS));
}

Test(westwood, without_an_estimate_a_loss_leaves_the_minimum_window, .timeout = 10)
{
    ccdrv d;
    ccdrv_init(&d, &rudp__cc_westwood, MSS, T0);
    d.now += RUDP_MS(10);
    ccdrv_ack(&d, MSS, RUDP_MS(10), d.delivered);
    ccdrv_loss(&d, d.now - 1);
    d.now += RUDP_MS(10);
    ccdrv_ack(&d, MSS, RUDP_MS(10) - 1, d.delivered);
    cr_assert(eq(u64, d.cc.cwnd, 2 * MSS), "Linux: max(bw_est x rtt_min, 2) with bw_est 0");
}

Test(westwood, persistent_congestion_takes_ssthresh_from_the_estimate, .timeout = 10)
{
    ccdrv d;
    run(&d, 100, 3);
    d.cc.ops->on_persistent_congestion(&d.cc, d.now);
    uint64_t bdp = (uint64_t)((double)info(&d).bw_est * (double)info(&d).rtt_min / 1e9);
    cr_assert(eq(u64, d.cc.cwnd, 2 * MSS));
    cr_assert(eq(u64, d.cc.ssthresh, bdp));
}

Test(westwood, is_found_by_name)
{
    cr_assert(eq(ptr, (void *)rudp_cc_find("westwood"), (void *)&rudp__cc_westwood));
    cr_assert(eq(str, (char *)rudp__cc_westwood.name, "westwood"));
}

/* Slow start's overshoot ends in a loss while the filtered estimate still
 * lags the rate (two 7/8 filters over 50 ms windows: ~0.4 s each), so the
 * window restarts below the BDP and regains it at Reno's pace: Westwood+
 * leaves part of a clean link unused in a 20 s flow. */
Test(westwood, sim_carries_most_of_a_clean_40ms_link, .timeout = 30)
{
    sim_bulk_result r;
    ccdrv_sim_flow(&rudp__cc_westwood, 0, &r);
    cr_assert(eq(int, r.error, 0));
    cr_assert(ge(dbl, r.mbps, 60.0), "%.2f Mbit/s", r.mbps);
    cr_assert(le(dbl, r.retx_pct, 2.0), "%.2f%% retransmitted", r.retx_pct);
}

Test(westwood, sim_transfer_over_a_lossy_link_completes, .timeout = 30)
{
    sim_bulk_result r;
    ccdrv_sim_flow(&rudp__cc_westwood, 0.01, &r);
    cr_assert(eq(int, r.error, 0));
    cr_assert(gt(dbl, r.mbps, 0.5), "%.2f Mbit/s", r.mbps);
    cr_assert(le(dbl, r.retx_pct, 2.0), "%.2f%%", r.retx_pct);
}
