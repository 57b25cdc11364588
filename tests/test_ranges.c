/* Interval set: unit behaviour and random operations against a bitmap. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <string.h>

#include "ranges.h"

Test(ranges, add_merges_touching_and_overlapping)
{
    rudp_ranges s;
    rudp__ranges_init(&s, NULL, 100);
    cr_assert(eq(int, rudp__ranges_add(&s, 10, 20), 0));
    cr_assert(eq(int, rudp__ranges_add(&s, 30, 40), 0));
    cr_assert(eq(u32, s.n, 2));
    cr_assert(eq(int, rudp__ranges_add(&s, 20, 30), 0)); /* touches both */
    cr_assert(eq(u32, s.n, 1));
    cr_assert(eq(u64, s.r[0].lo, 10));
    cr_assert(eq(u64, s.r[0].hi, 40));
    cr_assert(eq(int, rudp__ranges_add(&s, 5, 50), 0));
    cr_assert(eq(u32, s.n, 1));
    cr_assert(eq(u64, rudp__ranges_total(&s), 45));
    rudp__ranges_free(&s);
}

Test(ranges, remove_splits_and_trims)
{
    rudp_ranges s;
    rudp__ranges_init(&s, NULL, 100);
    rudp__ranges_add(&s, 0, 100);
    cr_assert(eq(int, rudp__ranges_remove(&s, 40, 60), 0));
    cr_assert(eq(u32, s.n, 2));
    cr_assert(rudp__ranges_covers(&s, 0, 40));
    cr_assert(rudp__ranges_covers(&s, 60, 100));
    cr_assert(not(rudp__ranges_contains(&s, 50)));
    rudp__ranges_remove(&s, 30, 70);
    cr_assert(eq(u64, rudp__ranges_total(&s), 60));
    rudp__ranges_remove(&s, 0, 1000);
    cr_assert(rudp__ranges_empty(&s));
    rudp__ranges_free(&s);
}

Test(ranges, limit_refuses_new_interval_and_changes_nothing)
{
    rudp_ranges s;
    rudp__ranges_init(&s, NULL, 2);
    rudp__ranges_add(&s, 0, 1);
    rudp__ranges_add(&s, 2, 3);
    cr_assert(eq(int, rudp__ranges_add(&s, 4, 5), -ENOBUFS));
    cr_assert(eq(u32, s.n, 2));
    cr_assert(eq(int, rudp__ranges_add(&s, 1, 2), 0)); /* merging is always allowed */
    cr_assert(eq(u32, s.n, 1));
    rudp__ranges_free(&s);
}

Test(ranges, contiguous_end_trim_and_keep_highest)
{
    rudp_ranges s;
    rudp__ranges_init(&s, NULL, 100);
    rudp__ranges_add(&s, 0, 10);
    rudp__ranges_add(&s, 20, 30);
    rudp__ranges_add(&s, 40, 50);
    cr_assert(eq(u64, rudp__ranges_contiguous_end(&s, 5), 10));
    cr_assert(eq(u64, rudp__ranges_contiguous_end(&s, 15), 15));
    rudp__ranges_trim_below(&s, 25);
    cr_assert(eq(u64, s.r[0].lo, 25));
    rudp__ranges_keep_highest(&s, 1);
    cr_assert(eq(u32, s.n, 1));
    cr_assert(eq(u64, s.r[0].lo, 40));
    rudp__ranges_free(&s);
}

#define U 300
static uint64_t st;
static uint64_t rnd(void)
{
    uint64_t z = (st += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

Test(ranges, random_operations_match_a_bitmap, .timeout = 30)
{
    for (uint64_t seed = 1; seed <= 200; seed++) {
        st = seed;
        unsigned char bits[U];
        memset(bits, 0, sizeof bits);
        rudp_ranges s;
        rudp__ranges_init(&s, NULL, 1000);
        for (int step = 0; step < 400; step++) {
            uint64_t lo = rnd() % U, hi = lo + rnd() % 40;
            if (hi > U)
                hi = U;
            int op = (int)(rnd() % 3);
            if (op == 0) {
                cr_assert(eq(int, rudp__ranges_add(&s, lo, hi), 0));
                memset(bits + lo, 1, hi - lo);
            } else if (op == 1) {
                cr_assert(eq(int, rudp__ranges_remove(&s, lo, hi), 0));
                memset(bits + lo, 0, hi - lo);
            } else {
                rudp__ranges_trim_below(&s, lo);
                memset(bits, 0, lo);
            }
            /* sorted, disjoint, non-touching, non-empty */
            for (uint32_t i = 0; i < s.n; i++) {
                cr_assert(lt(u64, s.r[i].lo, s.r[i].hi));
                if (i)
                    cr_assert(lt(u64, s.r[i - 1].hi, s.r[i].lo));
            }
            for (uint64_t x = 0; x < U; x++)
                cr_assert(eq(int, rudp__ranges_contains(&s, x), bits[x]), "seed %llu x %llu",
                          (unsigned long long)seed, (unsigned long long)x);
        }
        rudp__ranges_free(&s);
    }
}
