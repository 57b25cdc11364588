/*
 * Hybla (Linux's tcp_hybla) driven through the ops table (lib_ccdrv):
 * rho = srtt / 25 ms scales growth so a long path gains window in time as
 * a 25 ms one does: 2^rho - 1 segments per segment acknowledged in slow
 * start, rho^2 per round trip in avoidance; Reno at rho 1; then a whole
 * transfer over the simulated network (lib_sim).
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "lib_ccdrv.h"

#define T0 RUDP_SEC(1000)
#define MSS 1400u

static rudp_cc_hybla_info info(const ccdrv *d)
{
    rudp_cc_hybla_info i;
    rudp__cc_hybla_get_info(&d->cc, &i);
    return i;
}

/* Congestion avoidance at w MSS over a path of `rtt`, rho learnt. */
static void in_avoidance(ccdrv *d, uint64_t w, rudp_time rtt)
{
    ccdrv_init(d, &rudp__cc_hybla, MSS, T0);
    d->cc.cwnd = d->cc.ssthresh = w * MSS;
    ccdrv_round(d, rtt, MSS);
    d->cc.cwnd = w * MSS;
}

Test(hybla, slow_start_adds_two_to_the_rho_minus_one_per_segment, .timeout = 10)
{
    ccdrv d;
    ccdrv_init(&d, &rudp__cc_hybla, MSS, T0);
    uint64_t w = d.cc.cwnd;
    d.now += RUDP_MS(200);
    ccdrv_ack(&d, MSS, RUDP_MS(200), 0); /* srtt 200 ms: rho 8 */
    cr_assert(eq(u64, info(&d).rho_3ls, 64));
    cr_assert(eq(u64, d.cc.cwnd, w + 255 * MSS), "2^8 - 1 segments for one");
}

Test(hybla, fractional_rho_from_the_table, .timeout = 10)
{
    ccdrv d;
    ccdrv_init(&d, &rudp__cc_hybla, MSS, T0);
    uint64_t w = d.cc.cwnd;
    /* 37.5 ms: rho 1.5, rho_3ls 12; 2 x 181/128 - 1 = 234/128 */
    d.now += RUDP_US(37500);
    ccdrv_ack(&d, MSS, RUDP_US(37500), 0);
    cr_assert(eq(u64, info(&d).rho_3ls, 12));
    cr_assert(eq(u64, d.cc.cwnd, w + 234 * MSS / 128));
}

Test(hybla, slow_start_stops_at_ssthresh, .timeout = 10)
{
    ccdrv d;
    ccdrv_init(&d, &rudp__cc_hybla, MSS, T0);
    d.cc.ssthresh = 40 * MSS;
    d.now += RUDP_MS(200);
    ccdrv_ack(&d, MSS, RUDP_MS(200), 0);
    cr_assert(eq(u64, d.cc.cwnd, 40 * MSS));
}

Test(hybla, avoidance_adds_rho_squared_segments_per_round, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 200, RUDP_MS(100)); /* rho 4: 16 segments a round */
    cr_assert(eq(u64, info(&d).rho_3ls, 32));
    for (int r = 0; r < 3; r++) {
        uint64_t w = d.cc.cwnd;
        ccdrv_round(&d, RUDP_MS(100), MSS);
        uint64_t grown = (d.cc.cwnd - w) / MSS;
        /* the window grows through the round: rho^2 x ln(1 + 16/w) x w */
        cr_assert(ge(u64, grown, 15), "round %d: %llu", r, (unsigned long long)grown);
        cr_assert(le(u64, grown, 16), "round %d: %llu", r, (unsigned long long)grown);
    }
}

Test(hybla, short_paths_are_reno, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 40, RUDP_MS(20)); /* under 25 ms: rho 1 */
    cr_assert(eq(u64, info(&d).rho_3ls, 8));
    uint64_t w = d.cc.cwnd;
    for (int r = 0; r < 4; r++)
        ccdrv_round(&d, RUDP_MS(20), MSS);
    /* 1/cwnd segment per segment acked, the window growing as it goes:
     * just under one segment a round, as Reno's */
    cr_assert(le(u64, d.cc.cwnd, w + 4 * MSS));
    cr_assert(ge(u64, d.cc.cwnd, w + 4 * MSS - MSS / 5));
}

Test(hybla, rho_follows_only_a_smaller_smoothed_rtt, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 100, RUDP_MS(100));
    cr_assert(eq(u64, info(&d).rho_3ls, 32));
    for (int r = 0; r < 6; r++)
        ccdrv_round(&d, RUDP_MS(200), MSS);
    cr_assert(eq(u64, info(&d).rho_3ls, 32), "srtt rose: rho kept");
    for (int r = 0; r < 12; r++)
        ccdrv_round(&d, RUDP_MS(50), MSS);
    cr_assert(eq(u64, info(&d).rho_3ls, 16), "srtt fell to 50 ms: rho 2");
}

Test(hybla, a_long_path_starts_at_rho_segments, .timeout = 10)
{
    ccdrv d;
    ccdrv_init(&d, &rudp__cc_hybla, MSS, T0);
    d.app_limited = 1; /* no growth: only hybla_init's window */
    d.now += RUDP_MS(600);
    ccdrv_ack(&d, MSS, RUDP_MS(600), 0); /* rho 24 */
    cr_assert(eq(u64, d.cc.cwnd, 24 * MSS));
}

Test(hybla, a_loss_halves_once_per_recovery, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 100, RUDP_MS(100));
    ccdrv_loss(&d, d.now - 1);
    cr_assert(eq(u64, d.cc.cwnd, 50 * MSS));
    cr_assert(eq(u64, d.cc.ssthresh, 50 * MSS));
    ccdrv_loss(&d, d.now - 2);
    cr_assert(eq(u64, d.cc.cwnd, 50 * MSS), "the same congestion event");
    d.now += RUDP_MS(10);
    ccdrv_ack(&d, MSS, RUDP_MS(100), d.delivered); /* sent before: still recovering */
    cr_assert(eq(u64, d.cc.cwnd, 50 * MSS));
}

Test(hybla, reno_after_persistent_congestion_until_open, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 100, RUDP_MS(200)); /* rho 8 */
    d.cc.ops->on_persistent_congestion(&d.cc, d.now);
    cr_assert(eq(u64, d.cc.cwnd, 2 * MSS));
    cr_assert(eq(int, info(&d).enabled, 0));
    d.now += RUDP_MS(1);
    ccdrv_ack(&d, MSS, RUDP_MS(200), d.delivered); /* sent before it: Loss */
    cr_assert(eq(u64, d.cc.cwnd, 3 * MSS), "Reno's slow start");
    d.now += RUDP_MS(200);
    ccdrv_ack(&d, MSS, RUDP_MS(200), d.delivered); /* sent after: Open */
    cr_assert(eq(int, info(&d).enabled, 1));
    cr_assert(eq(u64, d.cc.cwnd, 100 * MSS), "2^8 - 1 segments, capped at ssthresh");
}

Test(hybla, is_found_by_name)
{
    cr_assert(eq(ptr, (void *)rudp_cc_find("hybla"), (void *)&rudp__cc_hybla));
    cr_assert(eq(str, (char *)rudp__cc_hybla.name, "hybla"));
}

Test(hybla, sim_transfer_over_a_lossy_link_completes, .timeout = 30)
{
    sim_bulk_result r;
    ccdrv_sim_flow(&rudp__cc_hybla, 0.01, &r);
    cr_assert(eq(int, r.error, 0));
    cr_assert(gt(dbl, r.mbps, 0.5), "%.2f Mbit/s", r.mbps);
    cr_assert(le(dbl, r.retx_pct, 2.0), "%.2f%%", r.retx_pct);
}
