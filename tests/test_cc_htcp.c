/*
 * H-TCP (Linux's tcp_htcp) driven through the ops table (lib_ccdrv): the
 * increase alpha grows with the time since the last congestion event, the
 * decrease beta adapts to minRTT / maxRTT; then whole transfers over the
 * simulated network (lib_sim).
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "lib_ccdrv.h"

#define T0 RUDP_SEC(1000)
#define MSS 1400u

static rudp_cc_htcp_info info(const ccdrv *d)
{
    rudp_cc_htcp_info i;
    rudp__cc_htcp_get_info(&d->cc, &i);
    return i;
}

/* Linux's factor for D us since the event (HZ = 1e6), before RTT scaling. */
static uint64_t factor(uint64_t d)
{
    if (d <= 1000000)
        return 1;
    d -= 1000000;
    return 1 + (10 * d + (d / 2) * (d / 2) / 1000000) / 1000000;
}

/* A loss at w MSS (RTT samples of `rtt`), then recovery ended: the
 * congestion epoch starts at the returned time. */
static rudp_time cut_from(ccdrv *d, uint64_t w, rudp_time rtt)
{
    ccdrv_init(d, &rudp__cc_htcp, MSS, T0);
    d->cc.cwnd = w * MSS;
    d->cc.ssthresh = w * MSS;
    d->now += rtt;
    ccdrv_ack(d, MSS, rtt, d->delivered);
    ccdrv_loss(d, d->now - 1);
    d->now += rtt;
    ccdrv_ack(d, MSS, rtt - 1, d->delivered); /* sent after the loss: recovery ends */
    return d->now;
}

Test(htcp, first_loss_halves_the_window)
{
    ccdrv d;
    cut_from(&d, 100, RUDP_MS(100));
    cr_assert(eq(u64, d.cc.cwnd, 50 * MSS));
    cr_assert(eq(u64, d.cc.ssthresh, 50 * MSS));
    cr_assert(eq(u32, info(&d).beta, 64), "beta 0.5 until an event has been seen");
}

Test(htcp, increase_grows_with_the_time_since_the_last_congestion_event, .timeout = 10)
{
    /* 100 ms RTT: RTT scaling is 1, so alpha = 2 * factor * (1 - 0.5)
     * = factor segments per RTT: 1 for the first second, then
     * 1 + 10 D + (D/2)^2 for D seconds past it. */
    ccdrv d;
    rudp_time e = cut_from(&d, 100, RUDP_MS(100));
    uint64_t w[6];
    w[0] = d.cc.cwnd;
    for (int s = 1; s <= 5; s++) {
        while (d.now < e + RUDP_SEC(s))
            ccdrv_round(&d, RUDP_MS(100), MSS);
        w[s] = d.cc.cwnd;
        /* alpha is recomputed at each increase, the last within 2 RTTs */
        uint64_t hi = factor((d.now - e) / 1000), lo = factor((d.now - e) / 1000 - 200000);
        cr_assert(ge(u64, info(&d).alpha, 128 * lo), "at %d s alpha %llu < %llu << 7", s,
                  (unsigned long long)info(&d).alpha, (unsigned long long)lo);
        cr_assert(le(u64, info(&d).alpha, 128 * hi), "at %d s alpha %llu > %llu << 7", s,
                  (unsigned long long)info(&d).alpha, (unsigned long long)hi);
    }
    /* The first second: Reno's one MSS per RTT, ten RTTs. */
    cr_assert(ge(u64, w[1] - w[0], 9 * MSS));
    cr_assert(le(u64, w[1] - w[0], 11 * MSS), "%llu MSS in the first second",
              (unsigned long long)((w[1] - w[0]) / MSS));
    /* Then each second adds more than the one before. */
    for (int s = 2; s <= 5; s++)
        cr_assert(gt(u64, w[s] - w[s - 1], w[s - 1] - w[s - 2] + 5 * MSS),
                  "second %d added %llu MSS, the one before %llu", s,
                  (unsigned long long)((w[s] - w[s - 1]) / MSS),
                  (unsigned long long)((w[s - 1] - w[s - 2]) / MSS));
}

Test(htcp, increase_is_scaled_to_the_rtt_so_short_paths_grow_less_per_rtt, .timeout = 10)
{
    /* 20 ms: scale = 100 / 20 = 5, factor * 8 / 40 per RTT; at 2 s past
     * the event factor 11 gives 2 segments per RTT (alpha 2 * 2 * 64). */
    ccdrv d;
    rudp_time e = cut_from(&d, 100, RUDP_MS(20));
    while (d.now < e + RUDP_SEC(2))
        ccdrv_round(&d, RUDP_MS(20), MSS);
    uint64_t f = factor((d.now - e) / 1000) * 8 / 40;
    cr_assert(eq(u64, info(&d).alpha, 2 * f * 64), "alpha %llu",
              (unsigned long long)info(&d).alpha);
}

Test(htcp, app_limited_acks_do_not_grow_the_window, .timeout = 10)
{
    ccdrv d;
    cut_from(&d, 100, RUDP_MS(100));
    uint64_t w = d.cc.cwnd;
    d.app_limited = 1;
    for (int r = 0; r < 20; r++)
        ccdrv_round(&d, RUDP_MS(100), MSS);
    cr_assert(eq(u64, d.cc.cwnd, w));
}

/* A 1000 segments/s bottleneck behind a `base` path: the window grows into
 * the queue until the test declares a loss; returns the window lost at. */
static uint64_t grow_and_lose(ccdrv *d, rudp_time base, uint64_t rate, uint64_t at_w)
{
    while (d->cc.cwnd < at_w * MSS) {
        rudp_time until = d->now + base;
        ccdrv_link(d, until, rate, base);
    }
    uint64_t w = d->cc.cwnd;
    ccdrv_loss(d, d->now - 1);
    ccdrv_link(d, d->now + base, rate, base); /* recovery ends */
    return w;
}

Test(htcp, beta_adapts_to_min_over_max_rtt_once_throughput_is_steady, .timeout = 10)
{
    /* 100 ms path, 1000 segments/s: BDP 100; a window of 150 queues 50 ms. */
    ccdrv d;
    ccdrv_init(&d, &rudp__cc_htcp, MSS, T0);
    d.cc.cwnd = d.cc.ssthresh = 100 * MSS;
    uint64_t w1 = grow_and_lose(&d, RUDP_MS(100), 1000, 150);
    cr_assert(eq(u64, d.cc.cwnd, w1 / MSS * 64 / 128 * MSS), "the first event takes 0.5");
    uint64_t max1 = info(&d).max_rtt_us;
    cr_assert(gt(u64, max1, 140000), "maxRTT follows the queue: %llu us",
              (unsigned long long)max1);
    /* As Linux's (use_bandwidth_switch): the second event finds the
     * throughput steady and allows the adaptive beta (modeswitch), still
     * at 0.5; the third adapts it. */
    grow_and_lose(&d, RUDP_MS(100), 1000, 150);
    cr_assert(eq(u32, info(&d).beta, 64), "the second event still takes 0.5");
    uint64_t w2 = grow_and_lose(&d, RUDP_MS(100), 1000, 150);
    rudp_cc_htcp_info i = info(&d);
    cr_assert(eq(u64, i.min_rtt_us, 100000));
    /* beta = minRTT / maxRTT from before the fading of maxRTT: ~0.67 */
    cr_assert(gt(u32, i.beta, 64), "beta %u adapted above 0.5", i.beta);
    cr_assert(lt(u32, i.beta, 102), "beta %u below 0.8", i.beta);
    cr_assert(eq(u64, d.cc.cwnd, w2 / MSS * i.beta / 128 * MSS), "cwnd %llu MSS, beta %u",
              (unsigned long long)(d.cc.cwnd / MSS), i.beta);
    cr_assert(ge(u64, i.max_rtt_us, 140000), "%llu", (unsigned long long)i.max_rtt_us);
    cr_assert(lt(u64, i.max_rtt_us, 150000), "maxRTT fades toward minRTT at each event: %llu",
              (unsigned long long)i.max_rtt_us);
}

Test(htcp, beta_stays_one_half_on_paths_of_10ms_or_less, .timeout = 10)
{
    ccdrv d;
    ccdrv_init(&d, &rudp__cc_htcp, MSS, T0);
    d.cc.cwnd = d.cc.ssthresh = 100 * MSS;
    /* three events: the third is where a longer path's beta adapts */
    grow_and_lose(&d, RUDP_MS(5), 20000, 150);
    grow_and_lose(&d, RUDP_MS(5), 20000, 150);
    uint64_t w2 = grow_and_lose(&d, RUDP_MS(5), 20000, 150);
    cr_assert(eq(u32, info(&d).beta, 64));
    cr_assert(eq(u64, d.cc.cwnd, w2 / MSS / 2 * MSS));
}

Test(htcp, is_found_by_name)
{
    cr_assert(eq(ptr, (void *)rudp_cc_find("htcp"), (void *)&rudp__cc_htcp));
    cr_assert(eq(str, (char *)rudp__cc_htcp.name, "htcp"));
}

/* ---- whole transfers over the simulated network ---- */

Test(htcp, sim_fills_a_clean_40ms_link, .timeout = 30)
{
    sim_bulk_result r;
    ccdrv_sim_flow(&rudp__cc_htcp, 0, &r);
    cr_assert(eq(int, r.error, 0));
    cr_assert(ge(dbl, r.mbps, 90.0), "%.2f Mbit/s", r.mbps);
    cr_assert(le(dbl, r.retx_pct, 2.0), "%.2f%% retransmitted", r.retx_pct);
}

Test(htcp, sim_transfer_over_a_lossy_link_completes, .timeout = 30)
{
    sim_bulk_result r;
    ccdrv_sim_flow(&rudp__cc_htcp, 0.01, &r);
    cr_assert(eq(int, r.error, 0));
    cr_assert(gt(dbl, r.mbps, 0.5), "%.2f Mbit/s", r.mbps);
    cr_assert(le(dbl, r.retx_pct, 2.0), "%.2f%%", r.retx_pct);
}
