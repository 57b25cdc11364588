/* tests/cr_gt.h: gt() is strict, as its name says, for every tag. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

Test(criterion, gt_is_strict)
{
    int i5 = 5, i4 = 4;
    uint64_t u5 = 5, u6 = 6;
    size_t z5 = 5;
    double d5 = 5.0;
    cr_assert(not(gt(int, i5, 5)), "gt(int, 5, 5)");
    cr_assert(not(gt(int, i4, 5)), "gt(int, 4, 5)");
    cr_assert(gt(int, i5, 4), "gt(int, 5, 4)");
    cr_assert(not(gt(u64, u5, 5)), "gt(u64, 5, 5)");
    cr_assert(gt(u64, u6, 5), "gt(u64, 6, 5)");
    cr_assert(not(gt(sz, z5, 5)), "gt(sz, 5, 5)");
    cr_assert(not(gt(dbl, d5, 5.0)), "gt(dbl, 5, 5)");
    double nan = NAN;
    cr_assert(not(gt(dbl, nan, 5.0)), "gt(dbl, NaN, 5)");
    cr_assert(not(gt(dbl, d5, nan)), "gt(dbl, 5, NaN)");
    /* and its neighbours as they were */
    cr_assert(ge(int, i5, 5), "ge(int, 5, 5)");
    cr_assert(not(ge(int, i4, 5)), "ge(int, 4, 5)");
    cr_assert(not(lt(int, i5, 5)), "lt(int, 5, 5)");
    cr_assert(lt(int, i4, 5), "lt(int, 4, 5)");
    cr_assert(le(int, i5, 5), "le(int, 5, 5)");
    cr_assert(not(le(u64, u6, 5)), "le(u64, 6, 5)");
}
