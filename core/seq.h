/*
 * seq.h: packet-number arithmetic.
 *
 * Packet numbers are 62-bit counters that are never reused; the wire carries
 * their low 32 bits and the receiver expands them against the largest it has
 * seen (RFC 9000 §17.1, Appendix A.3). Stream offsets are plain 62-bit
 * byte counts. Comparisons go through these helpers only, so that a change
 * of representation is one edit.
 */
#ifndef RUDP_SEQ_H
#define RUDP_SEQ_H

#include <stdint.h>

#define RUDP_PN_BITS 32
#define RUDP_PN_MAX ((1ull << 62) - 1)

static inline int rudp__seq_lt(uint64_t a, uint64_t b) { return a < b; }
static inline int rudp__seq_le(uint64_t a, uint64_t b) { return a <= b; }
static inline uint64_t rudp__seq_max(uint64_t a, uint64_t b) { return a > b ? a : b; }
static inline uint64_t rudp__seq_min(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* The low bits of pn as sent on the wire. */
static inline uint32_t rudp__pn_truncate(uint64_t pn) { return (uint32_t)pn; }

/*
 * Recovers a full packet number from its low 32 bits: the candidate closest
 * to `expected` (the largest packet number received so far plus one, or 0
 * before any). Correct while the sender keeps fewer than 2^31 packets
 * outstanding, which the send window guarantees by far.
 */
uint64_t rudp__pn_expand(uint64_t expected, uint32_t truncated);

#endif
