/*
 * tests/cr_gt.h: Criterion's gt() made strict. Every Criterion test file
 * gets it first (the Makefile's -include).
 *
 * Criterion 2.4.1 (Debian 12's libcriterion-dev) defines, for C, gt(Tag,
 * a, b) as !(a < b): a >= b, so cr_assert(gt(u64, n, 0)) passed with n 0
 * and gt(x, y) never failed on equal values. This redefines it as b < a,
 * by the same per-tag comparison (false with a NaN, as gt should be), before any test
 * file expands it. Only the header of the operators is taken here (the
 * files that use the old cr_assert(expr) must not get new/assert.h); its
 * include guard keeps the later include by new/assert.h from putting the
 * old one back. tests/test_crgt.c checks it.
 */
#ifndef TESTS_CR_GT_H
#define TESTS_CR_GT_H

#include <criterion/internal/assert/op.h>

#ifndef __cplusplus
#undef CRI_BINOP_T_GT
#define CRI_BINOP_T_GT(Tag, Actual, Ref) (CRI_BINOP_LT_TAG(Tag, , Ref, Actual))
#endif

#endif
