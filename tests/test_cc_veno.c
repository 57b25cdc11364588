/*
 * Veno (Linux's tcp_veno) driven through the ops table (lib_ccdrv): the
 * backlog diff = cwnd - cwnd x base / rtt segments decides both growth
 * (Reno's below 3 segments, every other round trip at or above) and the
 * cut at a loss (a fifth below 3 segments, half at or above); then a
 * whole transfer over the simulated network (lib_sim).
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "lib_ccdrv.h"

#define T0 RUDP_SEC(1000)
#define MSS 1400u
#define BASE RUDP_MS(100)

static rudp_cc_veno_info info(const ccdrv *d)
{
    rudp_cc_veno_info i;
    rudp__cc_veno_get_info(&d->cc, &i);
    return i;
}

/* Congestion avoidance at w MSS, the base RTT learnt. */
static void in_avoidance(ccdrv *d, uint64_t w)
{
    ccdrv_init(d, &rudp__cc_veno, MSS, T0);
    d->cc.cwnd = d->cc.ssthresh = w * MSS;
    ccdrv_round(d, BASE, MSS);
    d->cc.cwnd = w * MSS;
}

Test(veno, grows_one_segment_per_rtt_without_a_queue, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 40);
    for (int r = 0; r < 5; r++) {
        uint64_t w = d.cc.cwnd;
        ccdrv_round(&d, BASE, MSS);
        cr_assert(eq(u64, d.cc.cwnd, w + MSS), "round %d", r);
    }
    cr_assert(eq(u64, info(&d).diff, 0));
    cr_assert(eq(u64, info(&d).base_rtt, BASE + 1));
}

Test(veno, grows_every_other_rtt_with_a_queue_of_beta_or_more, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 40);
    /* 125 ms over 100: a fifth of the window queued, 8 segments >= 3 */
    uint64_t w0 = d.cc.cwnd;
    for (int r = 0; r < 8; r++)
        ccdrv_round(&d, RUDP_MS(125), MSS);
    cr_assert(ge(u64, info(&d).diff, 6), "diff %llu", (unsigned long long)info(&d).diff);
    uint64_t grown = (d.cc.cwnd - w0) / MSS;
    cr_assert(ge(u64, grown, 3), "%llu segments in 8 rounds", (unsigned long long)grown);
    cr_assert(le(u64, grown, 4), "%llu segments in 8 rounds", (unsigned long long)grown);
}

Test(veno, random_loss_on_an_empty_path_takes_a_fifth_off, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 100);
    ccdrv_round(&d, BASE, MSS);
    uint64_t w = d.cc.cwnd / MSS;
    ccdrv_loss(&d, d.now - 1);
    cr_assert(eq(u64, d.cc.cwnd, w * 4 / 5 * MSS));
    cr_assert(eq(u64, d.cc.ssthresh, d.cc.cwnd));
    cr_assert(eq(int, info(&d).enabled, 0), "Veno stands aside in recovery");
    ccdrv_loss(&d, d.now - 2); /* sent before recovery began: the same event */
    cr_assert(eq(u64, d.cc.cwnd, w * 4 / 5 * MSS));
}

Test(veno, congestion_loss_with_a_queue_halves_the_window, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 100);
    ccdrv_round(&d, RUDP_MS(150), MSS);
    uint64_t w = d.cc.cwnd / MSS;
    ccdrv_loss(&d, d.now - 1);
    cr_assert(eq(u64, d.cc.cwnd, w / 2 * MSS));
    d.now += RUDP_MS(1);
    ccdrv_ack(&d, MSS, RUDP_MS(1) - 1, d.delivered); /* sent after: recovery ends */
    cr_assert(eq(int, info(&d).enabled, 1));
}

Test(veno, persistent_congestion_collapses_the_window, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 40);
    d.cc.ops->on_persistent_congestion(&d.cc, d.now);
    cr_assert(eq(u64, d.cc.cwnd, 2 * MSS));
    ccdrv_round(&d, BASE, MSS);
    cr_assert(gt(u64, d.cc.cwnd, 2 * MSS), "slow start again");
}

Test(veno, is_found_by_name)
{
    cr_assert(eq(ptr, (void *)rudp_cc_find("veno"), (void *)&rudp__cc_veno));
    cr_assert(eq(str, (char *)rudp__cc_veno.name, "veno"));
}

Test(veno, sim_transfer_over_a_lossy_link_completes, .timeout = 30)
{
    sim_bulk_result r;
    ccdrv_sim_flow(&rudp__cc_veno, 0.01, &r);
    cr_assert(eq(int, r.error, 0));
    cr_assert(gt(dbl, r.mbps, 0.5), "%.2f Mbit/s", r.mbps);
    cr_assert(le(dbl, r.retx_pct, 2.0), "%.2f%%", r.retx_pct);
}
