/*
 * Vegas (Linux's tcp_vegas) driven through the ops table with synthetic
 * ACK rounds (lib_ccdrv), then whole transfers over the simulated network
 * (lib_sim). diff = cwnd * (rtt - base) / base segments, judged once per
 * round: grow below alpha (2), hold up to beta (4), shrink above it.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "lib_ccdrv.h"

#define T0 RUDP_SEC(1000)
#define MSS 1400u
#define BASE RUDP_MS(100)

static rudp_cc_vegas_info info(const ccdrv *d)
{
    rudp_cc_vegas_info i;
    rudp__cc_vegas_get_info(&d->cc, &i);
    return i;
}

/* Congestion avoidance at w MSS, the base RTT learnt over two rounds. */
static void in_avoidance(ccdrv *d, uint64_t w)
{
    ccdrv_init(d, &rudp__cc_vegas, MSS, T0);
    d->cc.cwnd = d->cc.ssthresh = w * MSS;
    ccdrv_round(d, BASE, MSS);
    ccdrv_round(d, BASE, MSS);
    d->cc.cwnd = w * MSS; /* whatever those did, start the test from w */
}

Test(vegas, grows_one_mss_per_round_while_diff_is_below_alpha, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 20);
    for (int r = 0; r < 10; r++) {
        uint64_t w = d.cc.cwnd;
        ccdrv_round(&d, BASE, MSS); /* no queue: diff 0 */
        cr_assert(eq(u64, d.cc.cwnd, w + MSS), "round %d: %llu -> %llu", r,
                  (unsigned long long)w, (unsigned long long)d.cc.cwnd);
    }
    cr_assert(eq(u64, d.cc.cwnd, 30 * MSS));
    cr_assert(eq(int, info(&d).enabled, 1));
    cr_assert(eq(u64, info(&d).base_rtt, BASE + 1), "base RTT is the least sample (+1)");
}

Test(vegas, holds_while_diff_is_between_alpha_and_beta, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 30);
    /* 111 ms over a 100 ms base at 30 MSS: diff = 30 * 11 / 100 = 3. The
     * first round's decision still sees the last 100 ms samples (+1). */
    ccdrv_round(&d, RUDP_MS(111), MSS);
    cr_assert(eq(u64, d.cc.cwnd, 31 * MSS));
    d.cc.cwnd = 30 * MSS;
    for (int r = 0; r < 10; r++) {
        ccdrv_round(&d, RUDP_MS(111), MSS);
        cr_assert(eq(u64, d.cc.cwnd, 30 * MSS), "round %d", r);
    }
}

Test(vegas, shrinks_one_mss_per_round_while_diff_exceeds_beta, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 30);
    /* 120 ms over 100 ms: diff = w * 20 / 100, truncated (the +1 ns on both
     * makes it just under w / 5): above 4 down to 25 MSS; the first round's
     * decision still sees the base RTT (diff 0: +1). */
    ccdrv_round(&d, RUDP_MS(120), MSS);
    cr_assert(eq(u64, d.cc.cwnd, 31 * MSS));
    uint64_t expect = 31;
    for (int r = 0; r < 10; r++) {
        ccdrv_round(&d, RUDP_MS(120), MSS);
        if (expect * RUDP_MS(20) / (BASE + 1) > 4)
            expect--;
        cr_assert(eq(u64, d.cc.cwnd, expect * MSS), "round %d: %llu MSS", r,
                  (unsigned long long)(d.cc.cwnd / MSS));
        cr_assert(eq(u64, d.cc.ssthresh, d.cc.cwnd), "ssthresh follows the window down");
    }
    cr_assert(eq(u64, d.cc.cwnd, 25 * MSS), "settles where diff is beta");
}

Test(vegas, decides_once_per_round_not_per_ack, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 20);
    ccdrv_round(&d, BASE, MSS);
    uint64_t w = d.cc.cwnd;
    /* the first ACK of the next round decides (+1); the rest of it do not */
    for (uint64_t j = 1; j <= w / MSS; j++) {
        d.now += BASE / 20;
        ccdrv_ack(&d, MSS, BASE, d.prev_start + ((j - 1) * d.prev_n / (w / MSS) + 1) * MSS);
        cr_assert(eq(u64, d.cc.cwnd, w + MSS), "ACK %llu of the round", (unsigned long long)j);
    }
}

Test(vegas, slow_start_ends_when_diff_exceeds_gamma_at_the_window_the_rate_fills, .timeout = 10)
{
    ccdrv d;
    ccdrv_init(&d, &rudp__cc_vegas, MSS, T0);
    ccdrv_round(&d, BASE, MSS);
    ccdrv_round(&d, BASE, MSS);
    ccdrv_round(&d, BASE, MSS);
    cr_assert(eq(u64, d.cc.cwnd, 80 * MSS), "slow start doubles per round");
    cr_assert(eq(str, (char *)d.cc.ops->phase(&d.cc), "slow start"));
    ccdrv_round(&d, RUDP_MS(150), MSS); /* a queue: diff = w / 2 > gamma */
    uint64_t w = d.cc.cwnd / MSS;
    ccdrv_ack(&d, MSS, RUDP_MS(150), d.delivered); /* the next round's first ACK decides */
    uint64_t target = w * (BASE + 1) / (RUDP_MS(150) + 1);
    cr_assert(eq(u64, d.cc.cwnd, (target + 1) * MSS), "w %llu target %llu cwnd %llu MSS",
              (unsigned long long)w, (unsigned long long)target,
              (unsigned long long)(d.cc.cwnd / MSS));
    cr_assert(eq(u64, d.cc.ssthresh, d.cc.cwnd));
    cr_assert(eq(str, (char *)d.cc.ops->phase(&d.cc), "avoidance"));
}

Test(vegas, two_rtt_samples_a_round_are_too_few_to_judge_so_it_grows_as_reno, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 20);
    /* ACKs of 10 MSS: two per round. 200 ms would be diff 20 > beta, but
     * the round's decision falls to Reno's avoidance with that ACK's bytes
     * (tcp_reno_cong_avoid): half an MSS a round at 20 MSS. */
    uint64_t w = d.cc.cwnd;
    for (int r = 0; r < 6; r++)
        ccdrv_round(&d, RUDP_MS(200), 10 * MSS);
    cr_assert(eq(u64, d.cc.cwnd, w + 3 * MSS), "%llu MSS", (unsigned long long)(d.cc.cwnd / MSS));
}

Test(vegas, loss_halves_the_window_and_vegas_resumes_after_recovery, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 40);
    ccdrv_loss(&d, d.now - 1);
    cr_assert(eq(u64, d.cc.cwnd, 20 * MSS));
    cr_assert(eq(u64, d.cc.ssthresh, 20 * MSS));
    cr_assert(eq(int, info(&d).enabled, 0), "Vegas stands aside in recovery");
    cr_assert(eq(str, (char *)d.cc.ops->phase(&d.cc), "recovery"));
    ccdrv_loss(&d, d.now - 2); /* sent before recovery began: the same event */
    cr_assert(eq(u64, d.cc.cwnd, 20 * MSS));
    d.now += RUDP_MS(1);
    ccdrv_ack(&d, MSS, RUDP_MS(1) - 1, d.delivered); /* sent after: recovery ends */
    cr_assert(eq(int, info(&d).enabled, 1));
    cr_assert(eq(u64, info(&d).cnt_rtt, 1), "a fresh round's first sample");
    cr_assert(eq(u64, d.cc.cwnd, 20 * MSS));
}

Test(vegas, persistent_congestion_collapses_the_window, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 40);
    ccdrv_loss(&d, d.now - 1);
    d.cc.ops->on_persistent_congestion(&d.cc, d.now);
    cr_assert(eq(u64, d.cc.cwnd, 2 * MSS));
    cr_assert(eq(u64, d.cc.ssthresh, 20 * MSS));
    ccdrv_round(&d, BASE, MSS);
    cr_assert(eq(int, info(&d).enabled, 1));
    cr_assert(gt(u64, d.cc.cwnd, 2 * MSS), "slow start again");
}

Test(vegas, is_found_by_name)
{
    cr_assert(eq(ptr, (void *)rudp_cc_find("vegas"), (void *)&rudp__cc_vegas));
    cr_assert(eq(str, (char *)rudp__cc_vegas.name, "vegas"));
}

/* ---- whole transfers over the simulated network ---- */

Test(vegas, sim_keeps_the_queue_short_on_a_clean_link, .timeout = 30)
{
    sim_bulk_result r;
    ccdrv_sim_flow(&rudp__cc_vegas, 0, &r);
    cr_assert(eq(int, r.error, 0));
    cr_assert(gt(dbl, r.mbps, 50.0), "%.2f Mbit/s", r.mbps);
    cr_assert(le(dbl, r.retx_pct, 0.1), "no queue overflow: %.2f%% retransmitted", r.retx_pct);
}

Test(vegas, sim_transfer_over_a_lossy_link_completes, .timeout = 30)
{
    sim_bulk_result r;
    ccdrv_sim_flow(&rudp__cc_vegas, 0.01, &r);
    cr_assert(eq(int, r.error, 0));
    cr_assert(gt(dbl, r.mbps, 0.5), "%.2f Mbit/s", r.mbps);
    cr_assert(le(dbl, r.retx_pct, 2.0), "%.2f%%", r.retx_pct);
}
