/* ranges.c: sorted interval set on a growable array; see ranges.h. */
#include "ranges.h"
#include "alloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void rudp__ranges_init(rudp_ranges *s, const rudp_mem *mem, uint32_t limit)
{
    memset(s, 0, sizeof *s);
    s->limit = limit;
    s->mem = rudp__mem_or_libc(mem);
}

void rudp__ranges_free(rudp_ranges *s)
{
    rudp__free(s->mem, s->r);
    s->r = NULL;
    s->n = s->cap = 0;
}

/* Index of the first interval whose hi >= x (may be n). */
static uint32_t lower_bound(const rudp_ranges *s, uint64_t x)
{
    uint32_t lo = 0, hi = s->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->r[mid].hi < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int reserve(rudp_ranges *s, uint32_t need)
{
    if (need > s->limit)
        return -ENOBUFS;
    if (need <= s->cap)
        return 0;
    uint32_t cap = s->cap ? s->cap * 2 : 8;
    while (cap < need)
        cap *= 2;
    if (cap > s->limit)
        cap = s->limit;
    rudp_range *r = rudp__realloc(s->mem, s->r, (size_t)cap * sizeof *r);
    if (!r)
        return -ENOMEM;
    s->r = r;
    s->cap = cap;
    return 0;
}

int rudp__ranges_add(rudp_ranges *s, uint64_t lo, uint64_t hi)
{
    if (lo >= hi)
        return 0;
    /* First interval that touches or follows [lo, hi): hi >= lo. */
    uint32_t i = lower_bound(s, lo);
    uint32_t j = i;
    while (j < s->n && s->r[j].lo <= hi)
        j++;
    /* Intervals i..j-1 overlap or touch [lo, hi): merge them into one. */
    if (j > i) {
        uint64_t nlo = s->r[i].lo < lo ? s->r[i].lo : lo;
        uint64_t nhi = s->r[j - 1].hi > hi ? s->r[j - 1].hi : hi;
        s->r[i].lo = nlo;
        s->r[i].hi = nhi;
        memmove(&s->r[i + 1], &s->r[j], (size_t)(s->n - j) * sizeof *s->r);
        s->n -= j - i - 1;
        return 0;
    }
    int err = reserve(s, s->n + 1);
    if (err)
        return err;
    memmove(&s->r[i + 1], &s->r[i], (size_t)(s->n - i) * sizeof *s->r);
    s->r[i].lo = lo;
    s->r[i].hi = hi;
    s->n++;
    return 0;
}

int rudp__ranges_remove(rudp_ranges *s, uint64_t lo, uint64_t hi)
{
    if (lo >= hi || s->n == 0)
        return 0;
    uint32_t i = lower_bound(s, lo + 1); /* first interval with hi > lo */
    if (i < s->n && s->r[i].lo < lo && s->r[i].hi > hi) {
        /* [lo, hi) is strictly inside one interval: split it. */
        int err = reserve(s, s->n + 1);
        if (err)
            return err;
        memmove(&s->r[i + 1], &s->r[i], (size_t)(s->n - i) * sizeof *s->r);
        s->n++;
        s->r[i].hi = lo;
        s->r[i + 1].lo = hi;
        return 0;
    }
    if (i < s->n && s->r[i].lo < lo) {
        s->r[i].hi = lo; /* keep the part below lo */
        i++;
    }
    uint32_t j = i;
    while (j < s->n && s->r[j].hi <= hi)
        j++; /* wholly inside [lo, hi) */
    if (j < s->n && s->r[j].lo < hi)
        s->r[j].lo = hi; /* keep the part above hi */
    memmove(&s->r[i], &s->r[j], (size_t)(s->n - j) * sizeof *s->r);
    s->n -= j - i;
    return 0;
}

void rudp__ranges_trim_below(rudp_ranges *s, uint64_t x)
{
    uint32_t i = 0;
    while (i < s->n && s->r[i].hi <= x)
        i++;
    if (i) {
        memmove(&s->r[0], &s->r[i], (size_t)(s->n - i) * sizeof *s->r);
        s->n -= i;
    }
    if (s->n && s->r[0].lo < x)
        s->r[0].lo = x;
}

void rudp__ranges_keep_highest(rudp_ranges *s, uint32_t keep)
{
    if (s->n <= keep)
        return;
    uint32_t drop = s->n - keep;
    memmove(&s->r[0], &s->r[drop], (size_t)keep * sizeof *s->r);
    s->n = keep;
}

int rudp__ranges_contains(const rudp_ranges *s, uint64_t x)
{
    uint32_t i = lower_bound(s, x + 1);
    return i < s->n && s->r[i].lo <= x;
}

int rudp__ranges_covers(const rudp_ranges *s, uint64_t lo, uint64_t hi)
{
    if (lo >= hi)
        return 1;
    uint32_t i = lower_bound(s, lo + 1);
    return i < s->n && s->r[i].lo <= lo && s->r[i].hi >= hi;
}

uint64_t rudp__ranges_contiguous_end(const rudp_ranges *s, uint64_t x)
{
    uint32_t i = lower_bound(s, x + 1);
    if (i < s->n && s->r[i].lo <= x)
        return s->r[i].hi;
    return x;
}

uint64_t rudp__ranges_total(const rudp_ranges *s)
{
    uint64_t t = 0;
    for (uint32_t i = 0; i < s->n; i++)
        t += s->r[i].hi - s->r[i].lo;
    return t;
}
