/*
 * YeAH (Linux's tcp_yeah) driven through the ops table (lib_ccdrv): a
 * Vegas-style queue estimate picks Scalable growth (fast mode: little
 * queue, delay within base/8) or Reno's (slow mode), drains a queue of
 * more than 80 segments at once, and decides what a loss takes off (the
 * queue, between an eighth and half, or half after 16 slow rounds); then
 * a whole transfer over the simulated network (lib_sim).
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "lib_ccdrv.h"

#define T0 RUDP_SEC(1000)
#define MSS 1400u
#define BASE RUDP_MS(100)
#define SLOW RUDP_MS(125) /* 25 ms over base: more than base / 8 */

static rudp_cc_yeah_info info(const ccdrv *d)
{
    rudp_cc_yeah_info i;
    rudp__cc_yeah_get_info(&d->cc, &i);
    return i;
}

/* Congestion avoidance at w MSS after a round at BASE and two at `rtt`
 * (so the last round judged had `rtt` samples); the window put back to w. */
static void in_avoidance(ccdrv *d, uint64_t w, rudp_time rtt)
{
    ccdrv_init(d, &rudp__cc_yeah, MSS, T0);
    d->cc.cwnd = d->cc.ssthresh = w * MSS;
    ccdrv_round(d, BASE, MSS);
    for (int r = 0; r < 2; r++) {
        d->cc.cwnd = w * MSS;
        ccdrv_round(d, rtt, MSS);
    }
    d->cc.cwnd = d->cc.ssthresh = w * MSS;
}

Test(yeah, fast_mode_grows_as_scalable, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 300, BASE);
    cr_assert(eq(u64, info(&d).doing_reno, 0));
    cr_assert(eq(u64, info(&d).base_rtt, BASE + 1));
    uint64_t w = d.cc.cwnd;
    ccdrv_round(&d, BASE, MSS);
    cr_assert(eq(u64, d.cc.cwnd, w + 3 * MSS), "one segment per 100 acknowledged");
}

Test(yeah, delay_over_an_eighth_of_base_grows_as_reno, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 300, SLOW); /* queue 300 x 25 / 125: 59, under 80 */
    cr_assert(ge(u64, info(&d).doing_reno, 1));
    cr_assert(ge(u64, info(&d).last_q, 59), "%llu", (unsigned long long)info(&d).last_q);
    cr_assert(le(u64, info(&d).last_q, 60), "%llu", (unsigned long long)info(&d).last_q);
    cr_assert(eq(u64, info(&d).reno_count, 150), "half the window when slow mode began");
    uint64_t w = d.cc.cwnd;
    for (int r = 0; r < 3; r++)
        ccdrv_round(&d, SLOW, MSS);
    cr_assert(ge(u64, d.cc.cwnd, w + 2 * MSS), "Reno: about one a round");
    cr_assert(le(u64, d.cc.cwnd, w + 3 * MSS), "not Scalable's 9");
    cr_assert(eq(u64, d.cc.ssthresh, w), "no drain under 80 segments");
    cr_assert(eq(u64, info(&d).reno_count, 153), "one more each slow round");
}

Test(yeah, a_queue_over_alpha_is_drained_at_once, .timeout = 10)
{
    ccdrv d;
    ccdrv_init(&d, &rudp__cc_yeah, MSS, T0);
    d.cc.cwnd = d.cc.ssthresh = 500 * MSS;
    ccdrv_round(&d, BASE, MSS);
    ccdrv_round(&d, SLOW, MSS); /* judges the BASE round: fast */
    cr_assert(eq(u64, info(&d).doing_reno, 0));
    d.cc.cwnd = 500 * MSS;
    d.now += RUDP_MS(1);
    ccdrv_ack(&d, MSS, SLOW, d.delivered); /* judges the SLOW round */
    /* queue = w x 25 / 125 (w 500 or 501 with this ACK's increase): 99 or
     * 100 segments drained, min(queue, w / 2) */
    cr_assert(eq(u64, d.cc.cwnd, 401 * MSS));
    cr_assert(eq(u64, d.cc.ssthresh, d.cc.cwnd));
    cr_assert(eq(u64, info(&d).doing_reno, 1));
    cr_assert(eq(u64, info(&d).reno_count, 200), "half the drained window");
}

Test(yeah, a_loss_in_fast_mode_takes_an_eighth_with_no_queue, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 200, BASE);
    cr_assert(eq(u64, info(&d).last_q, 0));
    ccdrv_loss(&d, d.now - 1);
    cr_assert(eq(u64, d.cc.cwnd, 175 * MSS), "200 - 200/8");
    ccdrv_loss(&d, d.now - 2);
    cr_assert(eq(u64, d.cc.cwnd, 175 * MSS), "the same congestion event");
}

Test(yeah, a_loss_early_in_slow_mode_takes_the_queue, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 300, SLOW);
    uint64_t q = info(&d).last_q, rc = info(&d).reno_count;
    cr_assert(lt(u64, info(&d).doing_reno, 16));
    ccdrv_loss(&d, d.now - 1);
    cr_assert(eq(u64, d.cc.cwnd, (300 - q) * MSS), "queue %llu", (unsigned long long)q);
    cr_assert(eq(u64, info(&d).reno_count, rc / 2));
}

Test(yeah, a_loss_after_rho_slow_rounds_halves, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 300, SLOW);
    for (int r = 0; r < 16; r++)
        ccdrv_round(&d, SLOW, MSS);
    cr_assert(ge(u64, info(&d).doing_reno, 16));
    uint64_t w = d.cc.cwnd / MSS;
    ccdrv_loss(&d, d.now - 1);
    cr_assert(eq(u64, d.cc.cwnd, (w - w / 2) * MSS));
}

Test(yeah, zeta_fast_rounds_reset_reno_count, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 300, SLOW);
    cr_assert(eq(u64, info(&d).reno_count, 150));
    uint64_t fc = info(&d).fast_count; /* slow rounds leave it */
    uint64_t r = 0;
    while (info(&d).reno_count != 2 && r < 60) {
        ccdrv_round(&d, BASE, MSS);
        r++;
    }
    /* each round at BASE is judged fast (its first ACK's sample is the
     * round's least); the 51st fast round resets */
    cr_assert(eq(u64, r, 51 - fc), "reset after %llu rounds from %llu", (unsigned long long)r,
              (unsigned long long)fc);
    cr_assert(eq(u64, info(&d).fast_count, 0));
}

Test(yeah, persistent_congestion_collapses_the_window, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 100, BASE);
    d.cc.ops->on_persistent_congestion(&d.cc, d.now);
    cr_assert(eq(u64, d.cc.cwnd, 2 * MSS));
    ccdrv_round(&d, BASE, MSS);
    cr_assert(gt(u64, d.cc.cwnd, 2 * MSS), "slow start again");
}

Test(yeah, is_found_by_name)
{
    cr_assert(eq(ptr, (void *)rudp_cc_find("yeah"), (void *)&rudp__cc_yeah));
    cr_assert(eq(str, (char *)rudp__cc_yeah.name, "yeah"));
}

Test(yeah, sim_transfer_over_a_lossy_link_completes, .timeout = 30)
{
    sim_bulk_result r;
    ccdrv_sim_flow(&rudp__cc_yeah, 0.01, &r);
    cr_assert(eq(int, r.error, 0));
    cr_assert(gt(dbl, r.mbps, 0.5), "%.2f Mbit/s", r.mbps);
    cr_assert(le(dbl, r.retx_pct, 2.0), "%.2f%%", r.retx_pct);
}
