/* seq.c: packet-number expansion, RFC 9000 Appendix A.3 with 32-bit numbers. */
#include "seq.h"

uint64_t rudp__pn_expand(uint64_t expected, uint32_t truncated)
{
    const uint64_t win = 1ull << RUDP_PN_BITS;
    const uint64_t hwin = win / 2;
    const uint64_t mask = win - 1;
    uint64_t candidate = (expected & ~mask) | truncated;

    /* Written to avoid unsigned underflow: candidate + hwin <= expected is
     * RFC's candidate <= expected - hwin. */
    if (candidate + hwin <= expected && candidate < (1ull << 62) - win)
        return candidate + win;
    if (candidate > expected + hwin && candidate >= win)
        return candidate - win;
    return candidate;
}
