/*
 * HighSpeed TCP (RFC 3649, Linux's tcp_highspeed) driven through the ops
 * table (lib_ccdrv): Reno up to 38 segments, then a(w) segments per RTT
 * and b(w) off at a loss from RFC 3649's table; then whole transfers over
 * the simulated network (lib_sim).
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "lib_ccdrv.h"

#define T0 RUDP_SEC(1000)
#define MSS 1400u
#define RTT RUDP_MS(100)

static void in_avoidance(ccdrv *d, uint64_t w)
{
    ccdrv_init(d, &rudp__cc_highspeed, MSS, T0);
    d->cc.cwnd = d->cc.ssthresh = w * MSS;
}

/* One round at w segments: the growth in segments. */
static uint64_t growth(uint64_t w)
{
    ccdrv d;
    in_avoidance(&d, w);
    ccdrv_round(&d, RTT, MSS);
    return (d.cc.cwnd - w * MSS) / MSS;
}

/* A loss at w segments after a round there: the window left, segments. */
static uint64_t cut(uint64_t w)
{
    ccdrv d;
    in_avoidance(&d, w);
    d.now += RTT;
    ccdrv_ack(&d, MSS, RTT, d.delivered); /* places the window in the table */
    d.cc.cwnd = w * MSS;
    ccdrv_loss(&d, d.now - 1);
    return d.cc.cwnd / MSS;
}

Test(highspeed, is_reno_up_to_38_segments, .timeout = 10)
{
    cr_assert(eq(u64, growth(30), 1));
    cr_assert(eq(u64, cut(30), 15));
}

Test(highspeed, adds_more_per_rtt_the_larger_the_window, .timeout = 10)
{
    /* a(w) is the row: 1000 segments fall in row 8 (851 < w <= 1058),
     * 10,000 in row 30 (9991 < w <= 10661); the window grows as the round
     * goes, so a round adds a(w) or one less. */
    uint64_t g1 = growth(1000), g2 = growth(10000);
    cr_assert(ge(u64, g1, 7));
    cr_assert(le(u64, g1, 8), "%llu", (unsigned long long)g1);
    cr_assert(ge(u64, g2, 29));
    cr_assert(le(u64, g2, 30), "%llu", (unsigned long long)g2);
}

Test(highspeed, takes_less_off_the_larger_the_window, .timeout = 10)
{
    /* b(w) x 256: 83 at 1000 segments, 52 at 10,000 */
    cr_assert(eq(u64, cut(1000), 1000 - (1000 * 83 >> 8)));
    cr_assert(eq(u64, cut(10000), 10000 - (10000 * 52 >> 8)));
}

Test(highspeed, one_reduction_per_recovery_period, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 30);
    ccdrv_loss(&d, d.now - 1);
    ccdrv_loss(&d, d.now - 2);
    cr_assert(eq(u64, d.cc.cwnd, 15 * MSS));
    cr_assert(eq(str, (char *)d.cc.ops->phase(&d.cc), "recovery"));
}

Test(highspeed, is_found_by_name)
{
    cr_assert(eq(ptr, (void *)rudp_cc_find("highspeed"), (void *)&rudp__cc_highspeed));
    cr_assert(eq(str, (char *)rudp__cc_highspeed.name, "highspeed"));
}

Test(highspeed, sim_fills_a_clean_40ms_link, .timeout = 30)
{
    sim_bulk_result r;
    ccdrv_sim_flow(&rudp__cc_highspeed, 0, &r);
    cr_assert(eq(int, r.error, 0));
    cr_assert(ge(dbl, r.mbps, 90.0), "%.2f Mbit/s", r.mbps);
    cr_assert(le(dbl, r.retx_pct, 2.0), "%.2f%% retransmitted", r.retx_pct);
}

Test(highspeed, sim_transfer_over_a_lossy_link_completes, .timeout = 30)
{
    sim_bulk_result r;
    ccdrv_sim_flow(&rudp__cc_highspeed, 0.01, &r);
    cr_assert(eq(int, r.error, 0));
    cr_assert(gt(dbl, r.mbps, 0.5), "%.2f Mbit/s", r.mbps);
    cr_assert(le(dbl, r.retx_pct, 2.0), "%.2f%%", r.retx_pct);
}
