/*
 * CDG (Linux's tcp_cdg) driven through the ops table (lib_ccdrv): Reno
 * that backs off to 0.7071 at random with probability 1 - e^(-g x 42e-6)
 * for a gradient sum g (us) of the RTT over 8 rounds, never when the delay
 * is flat, at most 5 times while backing off does not make it fall; a
 * loss then takes half the shadow window (the window before backoffs);
 * HyStart's delay exit; the draws come from the controller's keyed
 * generator; then a whole transfer over the simulated network (lib_sim).
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "lib_ccdrv.h"

#define T0 RUDP_SEC(1000)
#define MSS 1400u
#define BASE RUDP_MS(100)

static rudp_cc_cdg_info info(const ccdrv *d)
{
    rudp_cc_cdg_info i;
    rudp__cc_cdg_get_info(&d->cc, &i);
    return i;
}

/* Avoidance at w MSS after two flat rounds at BASE. */
static void in_avoidance(ccdrv *d, uint64_t w)
{
    ccdrv_init(d, &rudp__cc_cdg, MSS, T0);
    d->cc.cwnd = d->cc.ssthresh = w * MSS;
    ccdrv_round(d, BASE, MSS);
    ccdrv_round(d, BASE, MSS);
    d->cc.cwnd = w * MSS;
}

Test(cdg, nexp_is_e_to_the_minus_x)
{
    cr_assert(eq(u32, rudp__cc_cdg_nexp(0), UINT32_MAX));
    double e1 = rudp__cc_cdg_nexp(1000000) / 4294967295.0; /* e^-1 */
    cr_assert(ge(dbl, e1, 0.367879), "%f", e1);
    cr_assert(le(dbl, e1, 0.367880), "%f", e1);
    double e5 = rudp__cc_cdg_nexp(5000000) / 4294967295.0;
    cr_assert(ge(dbl, e5, 0.0067379), "%f", e5);
    cr_assert(le(dbl, e5, 0.0067380), "%f", e5);
    cr_assert(eq(u32, rudp__cc_cdg_nexp(1u << 24), 0));
    uint32_t prev = UINT32_MAX;
    for (uint32_t ux = 1000; ux < 1u << 24; ux += 99991) {
        cr_assert(le(u32, rudp__cc_cdg_nexp(ux), prev));
        prev = rudp__cc_cdg_nexp(ux);
    }
}

Test(cdg, flat_delay_never_backs_off, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 100);
    uint64_t w = d.cc.cwnd;
    for (int r = 0; r < 30; r++)
        ccdrv_round(&d, BASE, MSS);
    cr_assert(eq(u32, info(&d).backoffs, 0));
    cr_assert(eq(u64, d.cc.cwnd, w + 30 * MSS), "Reno");
}

/* Rounds whose RTT rises 5 ms each until the first backoff; returns the
 * window (segments) before the round that backed off. */
static uint64_t rise_until_backoff(ccdrv *d, rudp_time *rtt)
{
    uint64_t w = 0;
    for (int r = 0; r < 40 && info(d).backoffs == 0; r++) {
        w = d->cc.cwnd / MSS;
        *rtt += RUDP_MS(5);
        ccdrv_round(d, *rtt, MSS);
    }
    cr_assert(eq(u32, info(d).backoffs, 1), "a rising delay backs off");
    return w;
}

Test(cdg, rising_delay_backs_off_to_0_7071, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 100);
    rudp_time rtt = BASE;
    uint64_t w = rise_until_backoff(&d, &rtt);
    cr_assert(eq(u64, d.cc.cwnd, (w * 724 >> 10) * MSS), "w %llu", (unsigned long long)w);
    cr_assert(eq(u64, d.cc.ssthresh, d.cc.cwnd));
    cr_assert(ge(u64, info(&d).shadow_wnd, w * MSS), "the shadow keeps the window");
}

Test(cdg, at_most_five_ineffectual_backoffs, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 100);
    rudp_time rtt = BASE;
    for (int r = 0; r < 60; r++) {
        rtt += RUDP_MS(5);
        ccdrv_round(&d, rtt, MSS);
    }
    cr_assert(eq(u32, info(&d).backoffs, 5), "%u", info(&d).backoffs);
    cr_assert(gt(u32, info(&d).backoff_cnt, 5));
    uint64_t w = d.cc.cwnd;
    for (int r = 0; r < 5; r++) {
        rtt += RUDP_MS(5);
        ccdrv_round(&d, rtt, MSS);
    }
    cr_assert(eq(u32, info(&d).backoffs, 5), "the delay is not ours: no more");
    cr_assert(eq(u64, d.cc.cwnd, w + 5 * MSS), "Reno meanwhile");
}

Test(cdg, a_falling_delay_makes_backoff_effectual_again, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 100);
    rudp_time rtt = BASE;
    rise_until_backoff(&d, &rtt);
    cr_assert(eq(u32, info(&d).backoff_cnt, 1));
    ccdrv_round(&d, rtt, MSS);
    /* the queue drains, and more: the minimum's gradient sum falls past
     * -32 us, which resets the count (a backoff the same round, the
     * maximum's sum being still positive, may count one again) */
    int r = 0;
    while (info(&d).backoff_cnt != 0 && r++ < 8)
        ccdrv_round(&d, BASE - RUDP_MS(10), MSS);
    cr_assert(eq(u32, info(&d).backoff_cnt, 0), "after %d rounds", r);
}

Test(cdg, a_loss_after_backoff_takes_half_the_shadow_window, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 100);
    rudp_time rtt = BASE;
    rise_until_backoff(&d, &rtt);
    ccdrv_round(&d, rtt, MSS); /* the backoff's reduction ends */
    uint64_t w = d.cc.cwnd / MSS, sh = info(&d).shadow_wnd / MSS;
    cr_assert(gt(u64, sh / 2, w / 2));
    ccdrv_loss(&d, d.now - 1);
    cr_assert(eq(u64, d.cc.cwnd, (sh / 2 < w ? sh / 2 : w) * MSS),
              "w %llu shadow %llu: not Reno's half of w", (unsigned long long)w,
              (unsigned long long)sh);
}

Test(cdg, a_loss_without_backoffs_halves, .timeout = 10)
{
    ccdrv d;
    in_avoidance(&d, 100);
    ccdrv_loss(&d, d.now - 1);
    cr_assert(eq(u64, d.cc.cwnd, 50 * MSS));
    ccdrv_loss(&d, d.now - 2);
    cr_assert(eq(u64, d.cc.cwnd, 50 * MSS), "the same congestion event");
}

Test(cdg, slow_start_ends_when_the_round_minimum_rises_an_eighth, .timeout = 10)
{
    ccdrv d;
    ccdrv_init(&d, &rudp__cc_cdg, MSS, T0);
    ccdrv_round(&d, BASE, MSS);
    ccdrv_round(&d, BASE, MSS);
    cr_assert(eq(u64, d.cc.ssthresh, UINT64_MAX), "flat: slow start goes on");
    cr_assert(eq(int, info(&d).delay_min_us, 100000));
    ccdrv_round(&d, RUDP_MS(120), MSS); /* over 112.5 ms */
    cr_assert(ne(u64, d.cc.ssthresh, UINT64_MAX));
    cr_assert(le(u64, d.cc.cwnd, d.cc.ssthresh + 40 * MSS));
}

Test(cdg, draws_follow_the_key, .timeout = 10)
{
    /* Two keys: the same rising delay backs off in different rounds for
     * some key pair (the draws are the controller's, no clock). */
    int first[6];
    for (int k = 0; k < 6; k++) {
        ccdrv d;
        ccdrv_init(&d, &rudp__cc_cdg, MSS, T0);
        rudp__cc_seed(&d.cc, 1000 + (uint64_t)k, 42);
        d.cc.cwnd = d.cc.ssthresh = 100 * MSS;
        ccdrv_round(&d, BASE, MSS);
        ccdrv_round(&d, BASE, MSS);
        rudp_time rtt = BASE;
        first[k] = -1;
        for (int r = 0; r < 40 && first[k] < 0; r++) {
            rtt += RUDP_US(300); /* a gentle rise: backoff by chance */
            ccdrv_round(&d, rtt, MSS);
            if (info(&d).backoffs)
                first[k] = r;
        }
    }
    int differ = 0;
    for (int k = 1; k < 6; k++)
        differ |= first[k] != first[0];
    cr_assert(differ, "first backoffs %d %d %d %d %d %d", first[0], first[1], first[2], first[3],
              first[4], first[5]);
}

Test(cdg, is_found_by_name)
{
    cr_assert(eq(ptr, (void *)rudp_cc_find("cdg"), (void *)&rudp__cc_cdg));
    cr_assert(eq(str, (char *)rudp__cc_cdg.name, "cdg"));
}

Test(cdg, sim_transfer_over_a_lossy_link_completes, .timeout = 30)
{
    sim_bulk_result r;
    ccdrv_sim_flow(&rudp__cc_cdg, 0.01, &r);
    cr_assert(eq(int, r.error, 0));
    cr_assert(gt(dbl, r.mbps, 0.5), "%.2f Mbit/s", r.mbps);
    cr_assert(le(dbl, r.retx_pct, 2.0), "%.2f%%", r.retx_pct);
}
