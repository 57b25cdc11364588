/* RTT estimator against RFC 9002 §5 arithmetic, worked by hand. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "rtt.h"

Test(rtt, initial_values_before_any_sample)
{
    rudp_rtt r;
    rudp__rtt_init(&r, RUDP_MS(333));
    cr_assert(eq(u64, r.smoothed, RUDP_MS(333)));
    cr_assert(eq(u64, r.var, RUDP_US(166500)));
    /* PTO = 333 + 4 * 166.5 + 25 = 1024 ms */
    cr_assert(eq(u64, rudp__rtt_pto(&r, RUDP_MS(25)), RUDP_MS(1024)));
}

Test(rtt, first_sample_sets_smoothed_var_and_min)
{
    rudp_rtt r;
    rudp__rtt_init(&r, RUDP_MS(333));
    rudp__rtt_update(&r, RUDP_MS(100), RUDP_MS(10), RUDP_MS(25));
    cr_assert(eq(u64, r.smoothed, RUDP_MS(100))); /* ack delay ignored on first */
    cr_assert(eq(u64, r.var, RUDP_MS(50)));
    cr_assert(eq(u64, r.min, RUDP_MS(100)));
}

Test(rtt, later_samples_follow_the_ewma_with_ack_delay_adjustment)
{
    rudp_rtt r;
    rudp__rtt_init(&r, RUDP_MS(333));
    rudp__rtt_update(&r, RUDP_MS(100), 0, RUDP_MS(25));
    /* latest 120, ack_delay 10: adjusted 110; var = 3/4*50 + 1/4*10 = 40;
     * smoothed = 7/8*100 + 1/8*110 = 101.25 */
    rudp__rtt_update(&r, RUDP_MS(120), RUDP_MS(10), RUDP_MS(25));
    cr_assert(eq(u64, r.var, RUDP_MS(40)));
    cr_assert(eq(u64, r.smoothed, RUDP_US(101250)));
    /* latest 90 < min: min = 90; 90 < 90 + 20 so no adjustment;
     * var = 3/4*40 + 1/4*11.25 = 32.8125; smoothed = 7/8*101.25 + 90/8 = 99.84375 */
    rudp__rtt_update(&r, RUDP_MS(90), RUDP_MS(20), RUDP_MS(25));
    cr_assert(eq(u64, r.min, RUDP_MS(90)));
    cr_assert(eq(u64, r.var, 32812500));
    cr_assert(eq(u64, r.smoothed, 99843750));
}

Test(rtt, ack_delay_is_capped_at_max_ack_delay)
{
    rudp_rtt r;
    rudp__rtt_init(&r, RUDP_MS(333));
    rudp__rtt_update(&r, RUDP_MS(50), 0, RUDP_MS(25));
    /* latest 200, peer claims 150 ms delay: only 25 counts -> adjusted 175 */
    rudp__rtt_update(&r, RUDP_MS(200), RUDP_MS(150), RUDP_MS(25));
    cr_assert(eq(u64, r.smoothed, (7 * RUDP_MS(50) + RUDP_MS(175)) / 8));
}

Test(rtt, pto_has_granularity_floor_and_loss_delay_is_nine_eighths)
{
    rudp_rtt r;
    rudp__rtt_init(&r, RUDP_MS(333));
    rudp__rtt_update(&r, RUDP_US(100), 0, 0);
    for (int i = 0; i < 50; i++)
        rudp__rtt_update(&r, RUDP_US(100), 0, 0);
    /* var decays to ~0: the 1 ms granularity dominates */
    cr_assert(eq(u64, rudp__rtt_pto(&r, 0), r.smoothed + RUDP_GRANULARITY));
    cr_assert(eq(u64, rudp__rtt_loss_delay(&r), RUDP_GRANULARITY));
    rudp__rtt_init(&r, RUDP_MS(333));
    rudp__rtt_update(&r, RUDP_MS(80), 0, 0);
    cr_assert(eq(u64, rudp__rtt_loss_delay(&r), RUDP_MS(90)));
}
