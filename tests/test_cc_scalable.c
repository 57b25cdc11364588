/*
 * Scalable TCP (Linux's tcp_scalable) driven through the ops table
 * (lib_ccdrv): 1% more window per RTT past 100 segments, Reno's one
 * segment below, an eighth off at a loss; then whole transfers over the
 * simulated network (lib_sim).
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "lib_ccdrv.h"

#define T0 RUDP_SEC(1000)
#define MSS 1400u
#define RTT RUDP_MS(100)

/* Congestion avoidance at w MSS. */
static void in_avoidance(ccdrv *d, uint64_t w)
{
    ccdrv_init(d, &rudp__cc_scalable, MSS, T0);
    d->cc.cwnd = d->cc.ssthresh = w * MSS;
}

Test(scalable, grows_one_percent_per_rtt_past_100_segments, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 1000);
    ccdrv_round(&d, RTT, MSS); /* 1000 segments acked: one per 100 */
    cr_assert(eq(u64, d.cc.cwnd, 1010 * MSS));
    in_avoidance(&d, 5000);
    ccdrv_round(&d, RTT, MSS);
    cr_assert(eq(u64, d.cc.cwnd, 5050 * MSS), "%llu MSS", (unsigned long long)(d.cc.cwnd / MSS));
}

Test(scalable, grows_like_reno_below_100_segments, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 40);
    for (int r = 0; r < 5; r++) {
        uint64_t w = d.cc.cwnd;
        ccdrv_round(&d, RTT, MSS);
        cr_assert(eq(u64, d.cc.cwnd, w + MSS), "round %d", r);
    }
}

Test(scalable, loss_takes_an_eighth_off_once_per_recovery, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 1000);
    ccdrv_loss(&d, d.now - 1);
    cr_assert(eq(u64, d.cc.cwnd, 875 * MSS));
    cr_assert(eq(u64, d.cc.ssthresh, 875 * MSS));
    ccdrv_loss(&d, d.now - 2); /* sent before recovery began: the same event */
    cr_assert(eq(u64, d.cc.cwnd, 875 * MSS));
    cr_assert(eq(str, (char *)d.cc.ops->phase(&d.cc), "recovery"));
}

Test(scalable, slow_start_carries_what_is_past_ssthresh_into_avoidance, .timeout = 10)
{
    ccdrv d;
    ccdrv_init(&d, &rudp__cc_scalable, MSS, T0);
    d.cc.cwnd = 10 * MSS;
    d.cc.ssthresh = 12 * MSS;
    d.now += RTT;
    ccdrv_ack(&d, 14 * MSS, RTT, d.delivered); /* 2 to ssthresh, 12 past it */
    cr_assert(eq(u64, d.cc.cwnd, 13 * MSS), "one segment per 12 acked at 12");
}

Test(scalable, app_limited_acks_do_not_grow_the_window, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 1000);
    d.app_limited = 1;
    ccdrv_round(&d, RTT, MSS);
    cr_assert(eq(u64, d.cc.cwnd, 1000 * MSS));
}

Test(scalable, is_found_by_name)
{
    cr_assert(eq(ptr, (void *)rudp_cc_find("scalable"), (void *)&rudp__cc_scalable));
    cr_assert(eq(str, (char *)rudp__cc_scalable.name, "scalable"));
}

Test(scalable, sim_fills_a_clean_40ms_link, .timeout = 30)
{
    sim_bulk_result r;
    ccdrv_sim_flow(&rudp__cc_scalable, 0, &r);
    cr_assert(eq(int, r.error, 0));
    cr_assert(ge(dbl, r.mbps, 90.0), "%.2f Mbit/s", r.mbps);
    cr_assert(le(dbl, r.retx_pct, 2.0), "%.2f%% retransmitted", r.retx_pct);
}

Test(scalable, sim_transfer_over_a_lossy_link_completes, .timeout = 30)
{
    sim_bulk_result r;
    ccdrv_sim_flow(&rudp__cc_scalable, 0.01, &r);
    cr_assert(eq(int, r.error, 0));
    cr_assert(gt(dbl, r.mbps, 0.5), "%.2f Mbit/s", r.mbps);
    cr_assert(le(dbl, r.retx_pct, 2.0), "%.2f%%", r.retx_pct);
}
