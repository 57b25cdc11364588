/*
 * TCP-LP (Linux's tcp_lp) driven through the ops table (lib_ccdrv): Reno
 * while the smoothed delay stays within min + 15% of (max - min); past it
 * the window halves before any loss, or drops to the minimum within an
 * inference time (3 RTTs) of the last cut, and growth waits that long;
 * then a whole transfer over the simulated network (lib_sim).
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "lib_ccdrv.h"

#define T0 RUDP_SEC(1000)
#define MSS 1400u
#define BASE RUDP_MS(100)

static rudp_cc_lp_info info(const ccdrv *d)
{
    rudp_cc_lp_info i;
    rudp__cc_lp_get_info(&d->cc, &i);
    return i;
}

/* Avoidance at 100 MSS (ssthresh 40); the first sample (BASE) sets the
 * band [BASE, 2 BASE] and halves the window, as Linux's first valid delay
 * does (an early cut keeps ssthresh). */
static void start(ccdrv *d)
{
    ccdrv_init(d, &rudp__cc_lp, MSS, T0);
    d->cc.cwnd = 100 * MSS;
    d->cc.ssthresh = 40 * MSS;
    d->now += BASE;
    ccdrv_ack(d, MSS, BASE, 0);
}

/* ACKs of one MSS every ms with RTT samples of `rtt`, `n` of them. */
static void acks(ccdrv *d, int n, rudp_time rtt)
{
    for (int i = 0; i < n; i++) {
        d->now += RUDP_MS(1);
        ccdrv_ack(d, MSS, rtt, d->delivered);
    }
}

Test(lp, the_first_sample_sets_the_band_and_halves, .timeout = 10)
{
    ccdrv d;
    start(&d);
    cr_assert(eq(u64, d.cc.cwnd, 50 * MSS));
    cr_assert(eq(u64, info(&d).owd_min, BASE));
    cr_assert(eq(u64, info(&d).owd_max, 2 * BASE));
    cr_assert(eq(u64, info(&d).last_drop, d.now));
}

Test(lp, no_growth_within_the_inference_then_reno, .timeout = 10)
{
    ccdrv d;
    start(&d);
    ccdrv_round(&d, BASE, MSS);
    cr_assert(eq(u64, d.cc.cwnd, 50 * MSS), "within 3 RTTs of the cut");
    cr_assert(eq(int, info(&d).within_inference, 1));
    for (int r = 0; r < 3; r++)
        ccdrv_round(&d, BASE, MSS);
    cr_assert(eq(int, info(&d).within_inference, 0));
    uint64_t w = d.cc.cwnd;
    for (int r = 0; r < 3; r++)
        ccdrv_round(&d, BASE, MSS);
    cr_assert(eq(u64, d.cc.cwnd, w + 3 * MSS), "Reno: one a round, delay steady");
}

Test(lp, rising_delay_halves_before_any_loss, .timeout = 10)
{
    ccdrv d;
    start(&d);
    for (int r = 0; r < 5; r++)
        ccdrv_round(&d, BASE, MSS);
    rudp_time drop0 = info(&d).last_drop;
    /* 130 ms: the smoothed delay passes 100 + 15% of 100 within a few
     * samples; the new band [115, 230] then holds 130 */
    int cuts = 0;
    for (int i = 0; i < 200; i++) {
        uint64_t w = d.cc.cwnd;
        acks(&d, 1, RUDP_MS(130));
        if (info(&d).last_drop != drop0) {
            drop0 = info(&d).last_drop;
            cuts++;
            cr_assert(ge(u64, d.cc.cwnd, w / MSS / 2 * MSS));
            cr_assert(le(u64, d.cc.cwnd, w / MSS / 2 * MSS + MSS), "half (and this ACK's Reno)");
            cr_assert(ge(u64, info(&d).sowd, RUDP_MS(115)));
        }
    }
    cr_assert(eq(int, cuts, 1));
    cr_assert(eq(u64, d.cc.ssthresh, 40 * MSS), "not a loss: ssthresh kept");
}

Test(lp, a_second_indication_within_the_inference_drops_to_the_minimum, .timeout = 10)
{
    ccdrv d;
    start(&d);
    for (int r = 0; r < 5; r++)
        ccdrv_round(&d, BASE, MSS);
    acks(&d, 10, RUDP_MS(130)); /* the first cut */
    cr_assert(eq(int, info(&d).within_inference, 1));
    cr_assert(gt(u64, d.cc.cwnd, 2 * MSS));
    acks(&d, 10, RUDP_MS(300)); /* within 3 x 300 ms of it */
    cr_assert(eq(u64, d.cc.cwnd, 2 * MSS), "the minimum window");
    cr_assert(eq(int, info(&d).within_inference, 1));
}

Test(lp, a_loss_halves_as_reno, .timeout = 10)
{
    ccdrv d;
    start(&d);
    ccdrv_loss(&d, d.now - 1);
    cr_assert(eq(u64, d.cc.cwnd, 25 * MSS));
    cr_assert(eq(u64, d.cc.ssthresh, 25 * MSS));
    ccdrv_loss(&d, d.now - 2);
    cr_assert(eq(u64, d.cc.cwnd, 25 * MSS), "the same congestion event");
}

Test(lp, persistent_congestion_collapses_the_window, .timeout = 10)
{
    ccdrv d;
    start(&d);
    d.cc.ops->on_persistent_congestion(&d.cc, d.now);
    cr_assert(eq(u64, d.cc.cwnd, 2 * MSS));
}

Test(lp, is_found_by_name)
{
    cr_assert(eq(ptr, (void *)rudp_cc_find("lp"), (void *)&rudp__cc_lp));
    cr_assert(eq(str, (char *)rudp__cc_lp.name, "lp"));
}

Test(lp, sim_transfer_over_a_lossy_link_completes, .timeout = 30)
{
    sim_bulk_result r;
    ccdrv_sim_flow(&rudp__cc_lp, 0.01, &r);
    cr_assert(eq(int, r.error, 0));
    cr_assert(gt(dbl, r.mbps, 0.5), "%.2f Mbit/s", r.mbps);
    cr_assert(le(dbl, r.retx_pct, 2.0), "%.2f%%", r.retx_pct);
}
