/*
 * Illinois (Linux's tcp_illinois) driven through the ops table
 * (lib_ccdrv): the round's average queueing delay da against the largest
 * dm sets alpha (10 segments a round with no delay, down to 0.3 as da
 * nears dm) and beta (an eighth off at a loss with no delay, half near
 * dm); Reno below 15 segments; then a whole transfer over the simulated
 * network (lib_sim).
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "lib_ccdrv.h"

#define T0 RUDP_SEC(1000)
#define MSS 1400u
#define BASE RUDP_MS(100)

#define A_MAX (10u << 7)
#define A_MIN (3u * 128 / 10)
#define B_MIN (64u / 8)
#define B_MAX (64u / 2)

static rudp_cc_illinois_info info(const ccdrv *d)
{
    rudp_cc_illinois_info i;
    rudp__cc_illinois_get_info(&d->cc, &i);
    return i;
}

/* Congestion avoidance at w MSS; two rounds at `rtt` after a round at
 * BASE (and, if rtt is not BASE, one at 200 ms: dm 100 ms), so the last
 * update judged a round of `rtt` samples; the window put back to w. */
static void in_avoidance(ccdrv *d, uint64_t w, rudp_time rtt)
{
    ccdrv_init(d, &rudp__cc_illinois, MSS, T0);
    d->cc.cwnd = d->cc.ssthresh = w * MSS;
    ccdrv_round(d, BASE, MSS);
    if (rtt != BASE)
        ccdrv_round(d, RUDP_MS(200), MSS);
    for (int r = 0; r < 3; r++) {
        d->cc.cwnd = w * MSS;
        ccdrv_round(d, rtt, MSS);
    }
    d->cc.cwnd = w * MSS;
}

Test(illinois, no_queueing_delay_grows_ten_segments_a_round, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 100, BASE);
    cr_assert(eq(u64, info(&d).alpha, A_MAX));
    cr_assert(eq(u64, info(&d).beta, B_MIN));
    uint64_t w = d.cc.cwnd;
    ccdrv_round(&d, BASE, MSS);
    uint64_t grown = (d.cc.cwnd - w) / MSS;
    cr_assert(ge(u64, grown, 8), "%llu", (unsigned long long)grown);
    cr_assert(le(u64, grown, 10), "%llu", (unsigned long long)grown);
}

Test(illinois, a_loss_without_delay_takes_an_eighth, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 100, BASE);
    ccdrv_loss(&d, d.now - 1);
    cr_assert(eq(u64, d.cc.cwnd, (100 - 100 * B_MIN / 64) * MSS), "100 - 12 segments");
    cr_assert(eq(u64, d.cc.ssthresh, d.cc.cwnd));
    ccdrv_loss(&d, d.now - 2);
    cr_assert(eq(u64, d.cc.cwnd, 88 * MSS), "the same congestion event");
}

Test(illinois, delay_near_the_maximum_slows_growth_and_halves, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 100, RUDP_MS(200)); /* da = dm = 100 ms */
    cr_assert(eq(u64, info(&d).base_rtt, BASE));
    cr_assert(eq(u64, info(&d).max_rtt, RUDP_MS(200)));
    cr_assert(eq(u64, info(&d).alpha, A_MIN));
    cr_assert(eq(u64, info(&d).beta, B_MAX));
    uint64_t w = d.cc.cwnd;
    for (int r = 0; r < 10; r++)
        ccdrv_round(&d, RUDP_MS(200), MSS);
    /* 38/128 segments a round: one every 3.4 windows */
    uint64_t grown = (d.cc.cwnd - w) / MSS;
    cr_assert(ge(u64, grown, 2), "%llu in 10 rounds", (unsigned long long)grown);
    cr_assert(le(u64, grown, 3), "%llu in 10 rounds", (unsigned long long)grown);
    uint64_t n = d.cc.cwnd / MSS;
    ccdrv_loss(&d, d.now - 1);
    cr_assert(eq(u64, d.cc.cwnd, (n - n / 2) * MSS), "half");
}

Test(illinois, intermediate_delay_by_the_formulas, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 100, RUDP_MS(150)); /* da 50 ms of dm 100 */
    /* alpha: 1280 x 99 / (99 + 49 x 1242 / 38) = 74.5; beta: (8 x 80 -
     * 32 x 10 + 24 x 50) / (80 - 10) = 21.7 */
    cr_assert(eq(u64, info(&d).alpha, 74));
    cr_assert(eq(u64, info(&d).beta, 21));
    ccdrv_loss(&d, d.now - 1);
    cr_assert(eq(u64, d.cc.cwnd, (100 - 100 * 21 / 64) * MSS));
}

Test(illinois, full_growth_returns_after_theta_rounds_of_low_delay, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 100, RUDP_MS(200));
    cr_assert(eq(u64, info(&d).alpha, A_MIN));
    /* A round's update comes with the next round's first ACK: the first
     * round at BASE judges the last one at 200 ms, the next five are low. */
    for (int r = 0; r < 5; r++) {
        ccdrv_round(&d, BASE, MSS);
        cr_assert(eq(u64, info(&d).alpha, A_MIN), "round %d: alpha kept", r);
    }
    ccdrv_round(&d, BASE, MSS);
    cr_assert(eq(u64, info(&d).alpha, A_MAX), "theta (5) low rounds");
}

Test(illinois, below_fifteen_segments_is_reno, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 10, RUDP_MS(200));
    cr_assert(eq(u64, info(&d).alpha, 128));
    cr_assert(eq(u64, info(&d).beta, B_MAX));
    uint64_t w = d.cc.cwnd;
    for (int r = 0; r < 4; r++)
        ccdrv_round(&d, RUDP_MS(200), MSS);
    /* one segment a window acknowledged */
    cr_assert(ge(u64, d.cc.cwnd, w + 3 * MSS));
    cr_assert(le(u64, d.cc.cwnd, w + 4 * MSS));
    uint64_t n = d.cc.cwnd / MSS;
    ccdrv_loss(&d, d.now - 1);
    cr_assert(eq(u64, d.cc.cwnd, (n - n / 2) * MSS), "half");
}

Test(illinois, persistent_congestion_goes_back_to_reno, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 100, RUDP_MS(200));
    d.cc.ops->on_persistent_congestion(&d.cc, d.now);
    cr_assert(eq(u64, d.cc.cwnd, 2 * MSS));
    cr_assert(eq(u64, info(&d).alpha, 128));
    cr_assert(eq(u64, info(&d).beta, B_MAX));
}

Test(illinois, is_found_by_name)
{
    cr_assert(eq(ptr, (void *)rudp_cc_find("illinois"), (void *)&rudp__cc_illinois));
    cr_assert(eq(str, (char *)rudp__cc_illinois.name, "illinois"));
}

Test(illinois, sim_transfer_over_a_lossy_link_completes, .timeout = 30)
{
    sim_bulk_result r;
    ccdrv_sim_flow(&rudp__cc_illinois, 0.01, &r);
    cr_assert(eq(int, r.error, 0));
    cr_assert(gt(dbl, r.mbps, 0.5), "%.2f Mbit/s", r.mbps);
    cr_assert(le(dbl, r.retx_pct, 2.0), "%.2f%%", r.retx_pct);
}
