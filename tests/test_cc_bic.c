/*
 * BIC (Linux's tcp_bic) driven through the ops table (lib_ccdrv): after a
 * loss, a binary search back to the window of the loss (Wmax), then a
 * probe past it; beta = 819/1024 off at a loss, fast convergence; then a
 * whole transfer over the simulated network (lib_sim). ACKs of 2 MSS keep
 * the packets-per-ACK ratio at its initial 2 (<< 4: 32), so the window
 * grows one segment per bictcp_update's cnt segments acknowledged.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "lib_ccdrv.h"

#define T0 RUDP_SEC(1000)
#define MSS 1400u
#define RTT RUDP_MS(100)

static rudp_cc_bic_info info(const ccdrv *d)
{
    rudp_cc_bic_info i;
    rudp__cc_bic_get_info(&d->cc, &i);
    return i;
}

/* A loss at w MSS, then out of recovery: avoidance at ssthresh. */
static void after_loss_at(ccdrv *d, uint64_t w)
{
    ccdrv_init(d, &rudp__cc_bic, MSS, T0);
    d->cc.cwnd = d->cc.ssthresh = w * MSS;
    ccdrv_loss(d, d->now - 1);
}

Test(bic, loss_takes_beta_off_and_remembers_wmax, .timeout = 10)
{
    ccdrv d;
    after_loss_at(&d, 100);
    cr_assert(eq(u64, d.cc.cwnd, 79 * MSS), "100 x 819 / 1024 = 79");
    cr_assert(eq(u64, d.cc.ssthresh, 79 * MSS));
    cr_assert(eq(u64, info(&d).last_max_cwnd, 100));
    cr_assert(eq(str, (char *)d.cc.ops->phase(&d.cc), "recovery"));
    ccdrv_loss(&d, d.now - 2); /* sent before recovery began: the same event */
    cr_assert(eq(u64, d.cc.cwnd, 79 * MSS));
}

Test(bic, fast_convergence_sets_wmax_below_a_loss_under_the_last_one, .timeout = 10)
{
    ccdrv d;
    after_loss_at(&d, 100);
    d.now += RTT;
    d.cc.cwnd = 90 * MSS;
    ccdrv_loss(&d, d.now - 1);
    cr_assert(eq(u64, info(&d).last_max_cwnd, 90 * 1843 / 2048), "(1 + beta) / 2 of 90");
    cr_assert(eq(u64, d.cc.cwnd, 90 * 819 / 1024 * MSS));
}

/* cnt (segments acknowledged per segment of increase) at w MSS: one ACK
 * of `ack` bytes. bictcp_update's value is divided by the packets-per-ACK
 * ratio (<< 4 over 2 << 4 here: halved). */
static uint64_t cnt_at(ccdrv *d, uint64_t w, uint64_t ack)
{
    d->cc.cwnd = w * MSS;
    d->now += RTT / 10;
    ccdrv_ack(d, ack, RTT, d->delivered);
    return info(d).cnt;
}

Test(bic, binary_search_adds_a_quarter_of_the_distance_to_wmax_per_cnt, .timeout = 10)
{
    ccdrv d;
    after_loss_at(&d, 100);
    d.now += RTT;
    /* 79 below Wmax 100: dist = 21 / 4 = 5, cnt = 79 / 5 = 15, halved */
    cr_assert(eq(u64, cnt_at(&d, 79, 2 * MSS), 15 / 2));
    cr_assert(eq(u64, info(&d).delayed_ack, 32), "2 packets per ACK");
    /* far below (dist 20 > 16): cwnd / max_increment, 20 / 16 = 1, halved
     * to 0, and cnt is at least 1 (avoidance: ssthresh below) */
    d.cc.ssthresh = 2 * MSS;
    cr_assert(eq(u64, cnt_at(&d, 20, 2 * MSS), 1));
    /* close to Wmax the steps shrink: dist 0 at 97, cwnd x 20 / 4 */
    cr_assert(eq(u64, cnt_at(&d, 97, 2 * MSS), 97 * 20 / 4 / 2));
    /* a round trip from 79 takes it most of the way, not past Wmax */
    d.cc.cwnd = 79 * MSS;
    ccdrv_round(&d, RTT, 2 * MSS);
    uint64_t w = d.cc.cwnd / MSS;
    cr_assert(ge(u64, w, 84), "%llu", (unsigned long long)w);
    cr_assert(lt(u64, w, 100), "%llu", (unsigned long long)w);
}

Test(bic, probes_past_wmax_slowly_then_linearly_at_16_per_window, .timeout = 10)
{
    ccdrv d;
    after_loss_at(&d, 100);
    d.now += RTT;
    cr_assert(eq(u64, cnt_at(&d, 102, 2 * MSS), 102 * 20 / 4 / 2), "within B of Wmax: slow");
    cr_assert(eq(u64, cnt_at(&d, 110, 2 * MSS), 110 * 3 / 10 / 2), "cwnd x (B - 1) / (cwnd - Wmax)");
    cr_assert(eq(u64, cnt_at(&d, 400, 2 * MSS), 400 / 16 / 2), "linear: cwnd / 16");
}

Test(bic, reno_up_to_low_window_and_at_most_cnt_20_before_a_loss, .timeout = 10)
{
    ccdrv d;
    ccdrv_init(&d, &rudp__cc_bic, MSS, T0);
    d.cc.cwnd = d.cc.ssthresh = 12 * MSS;
    ccdrv_round(&d, RTT, 2 * MSS);
    cr_assert(eq(u64, d.cc.cwnd, 13 * MSS), "Reno: one a round trip at 12");
    cr_assert(eq(u64, info(&d).cnt, 12), "cnt = cwnd (at the increase), not scaled");
    cr_assert(eq(u64, cnt_at(&d, 200, 2 * MSS), 200 / 16 / 2));
    cr_assert(eq(u64, cnt_at(&d, 1000, 2 * MSS), 20 / 2), "no Wmax yet: cnt at most 20");
}

Test(bic, one_packet_per_ack_moves_the_ratio_to_31, .timeout = 10)
{
    ccdrv d;
    after_loss_at(&d, 100);
    d.now += RTT;
    ccdrv_round(&d, RTT, MSS);
    /* 2 x 16, a packet an ACK: 32 + 1 - 2 = 31, where Linux's integer
     * filter stops (31 + 1 - 31 / 16 = 31) */
    cr_assert(eq(u64, info(&d).delayed_ack, 31));
    cr_assert(eq(u64, cnt_at(&d, 400, MSS), 25 * 16 / 31));
}

Test(bic, persistent_congestion_forgets_wmax, .timeout = 10)
{
    ccdrv d;
    after_loss_at(&d, 100);
    d.cc.ops->on_persistent_congestion(&d.cc, d.now);
    cr_assert(eq(u64, d.cc.cwnd, 2 * MSS));
    cr_assert(eq(u64, info(&d).last_max_cwnd, 0));
}

Test(bic, app_limited_acks_do_not_grow_the_window, .timeout = 10)
{
    ccdrv d;
    after_loss_at(&d, 100);
    d.now += RTT;
    d.app_limited = 1;
    ccdrv_round(&d, RTT, 2 * MSS);
    cr_assert(eq(u64, d.cc.cwnd, 79 * MSS));
}

Test(bic, is_found_by_name)
{
    cr_assert(eq(ptr, (void *)rudp_cc_find("bic"), (void *)&rudp__cc_bic));
    cr_assert(eq(str, (char *)rudp__cc_bic.name, "bic"));
}

Test(bic, sim_transfer_over_a_lossy_link_completes, .timeout = 30)
{
    sim_bulk_result r;
    ccdrv_sim_flow(&rudp__cc_bic, 0.01, &r);
    cr_assert(eq(int, r.error, 0));
    cr_assert(gt(dbl, r.mbps, 0.5), "%.2f Mbit/s", r.mbps);
    cr_assert(le(dbl, r.retx_pct, 2.0), "%.2f%%", r.retx_pct);
}
