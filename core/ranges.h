/*
 * ranges.h: a set of disjoint half-open intervals [lo, hi) of uint64_t, kept
 * sorted and merged. Used for received packet numbers (ACK generation),
 * received stream ranges (reassembly), acknowledged stream ranges and the
 * retransmission queue.
 *
 * The number of intervals is bounded by `limit`: an insertion that would
 * exceed it fails with -ENOBUFS and changes nothing, so a peer that sends
 * pathological gaps costs bounded memory.
 */
#ifndef RUDP_RANGES_H
#define RUDP_RANGES_H

#include <stddef.h>
#include <stdint.h>

#include "rudp.h"

typedef struct rudp_range {
    uint64_t lo, hi; /* [lo, hi) */
} rudp_range;

typedef struct rudp_ranges {
    rudp_range *r;
    uint32_t n, cap, limit;
    const rudp_mem *mem; /* where r comes from (alloc.h) */
} rudp_ranges;

/* An empty set; its array comes from mem (NULL: libc's), which must
 * outlive it. */
void rudp__ranges_init(rudp_ranges *s, const rudp_mem *mem, uint32_t limit);
void rudp__ranges_free(rudp_ranges *s);
static inline void rudp__ranges_clear(rudp_ranges *s) { s->n = 0; }
static inline int rudp__ranges_empty(const rudp_ranges *s) { return s->n == 0; }

/* Adds [lo, hi), merging with neighbours. Returns 0, -ENOBUFS (limit) or -ENOMEM. */
int rudp__ranges_add(rudp_ranges *s, uint64_t lo, uint64_t hi);

/* Removes [lo, hi) from the set. Returns 0, -ENOBUFS (a split over the limit) or -ENOMEM. */
int rudp__ranges_remove(rudp_ranges *s, uint64_t lo, uint64_t hi);

/* Removes everything below x. */
void rudp__ranges_trim_below(rudp_ranges *s, uint64_t x);

/* Removes the lowest intervals until at most `keep` remain. */
void rudp__ranges_keep_highest(rudp_ranges *s, uint32_t keep);

int rudp__ranges_contains(const rudp_ranges *s, uint64_t x);

/* Whether every value of [lo, hi) is in the set. */
int rudp__ranges_covers(const rudp_ranges *s, uint64_t lo, uint64_t hi);

/* End of the interval containing x, or x when x is not in the set. */
uint64_t rudp__ranges_contiguous_end(const rudp_ranges *s, uint64_t x);

/* Sum of interval lengths. */
uint64_t rudp__ranges_total(const rudp_ranges *s);

#endif
