/* Packet-number expansion, RFC 9000 Appendix A.3 with 32-bit truncation. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "seq.h"

Test(seq, expands_first_packets_from_zero)
{
    cr_assert(eq(u64, rudp__pn_expand(0, 0), 0));
    cr_assert(eq(u64, rudp__pn_expand(0, 5), 5));
}

Test(seq, expands_across_the_32_bit_wrap)
{
    uint64_t expected = (1ull << 32) - 2; /* largest seen 2^32 - 3 */
    cr_assert(eq(u64, rudp__pn_expand(expected, 0x00000001u), (1ull << 32) + 1));
    cr_assert(eq(u64, rudp__pn_expand(expected, 0xfffffff0u), 0xfffffff0ull));
}

Test(seq, late_packet_from_before_the_wrap_expands_below)
{
    uint64_t expected = (1ull << 32) + 10;
    cr_assert(eq(u64, rudp__pn_expand(expected, 0xfffffffeu), 0xfffffffeull));
}

Test(seq, roundtrips_any_pn_within_half_window_of_expected)
{
    uint64_t bases[] = {0, 1000, (1ull << 31), (1ull << 32) - 1, (1ull << 40) + 12345, (1ull << 61)};
    int64_t deltas[] = {0, 1, -1, 1000, -1000, (1ll << 31) - 1, -(1ll << 31) + 1};
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
        for (size_t j = 0; j < sizeof deltas / sizeof deltas[0]; j++) {
            if (deltas[j] < 0 && (uint64_t)(-deltas[j]) > bases[i])
                continue;
            uint64_t pn = (uint64_t)((int64_t)bases[i] + deltas[j]);
            cr_assert(eq(u64, rudp__pn_expand(bases[i], rudp__pn_truncate(pn)), pn),
                      "base %llu delta %lld", (unsigned long long)bases[i], (long long)deltas[j]);
        }
    }
}

Test(seq, rfc9000_example_with_16_bits_scaled)
{
    /* RFC 9000 A.3's example: largest 0xa82f30ea, truncated 0x9b32 (16 bits)
     * decodes to 0xa82f9b32. With 32 bits the same full number round-trips. */
    cr_assert(eq(u64, rudp__pn_expand(0xa82f30ebull, 0xa82f9b32u), 0xa82f9b32ull));
}
