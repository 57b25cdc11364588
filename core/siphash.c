/*
 * siphash.c: SipHash-2-4, 64-bit output. See siphash.h.
 *
 * Bytes are assembled into words explicitly so the result does not depend
 * on host endianness or on the alignment of the caller's buffer.
 */
#include "siphash.h"

static uint64_t rotl(uint64_t x, unsigned b)
{
    return (x << b) | (x >> (64u - b));
}

/* Little-endian load of n (<= 8) bytes; missing high bytes are zero. */
static uint64_t load_le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8u * i);
    return v;
}

static void sipround(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = rotl(v[1], 13);
    v[1] ^= v[0];
    v[0] = rotl(v[0], 32);
    v[2] += v[3];
    v[3] = rotl(v[3], 16);
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = rotl(v[3], 21);
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = rotl(v[1], 17);
    v[1] ^= v[2];
    v[2] = rotl(v[2], 32);
}

uint64_t rudp__siphash(const uint8_t key[16], const void *data, size_t len)
{
    const uint8_t *in = data;
    uint64_t k0 = load_le(key, 8);
    uint64_t k1 = load_le(key + 8, 8);
    /* The constants spell "somepseudorandomlygeneratedbytes". */
    uint64_t v[4] = {
        k0 ^ 0x736f6d6570736575ull,
        k1 ^ 0x646f72616e646f6dull,
        k0 ^ 0x6c7967656e657261ull,
        k1 ^ 0x7465646279746573ull,
    };
    size_t full = len - len % 8;
    uint64_t m;

    for (size_t i = 0; i < full; i += 8) {
        m = load_le(in + i, 8);
        v[3] ^= m;
        sipround(v);
        sipround(v);
        v[0] ^= m;
    }

    /* Last block: the leftover bytes, with len mod 256 in the top byte. */
    m = ((uint64_t)(len & 0xff) << 56);
    if (len > full)
        m |= load_le(in + full, len - full);
    v[3] ^= m;
    sipround(v);
    sipround(v);
    v[0] ^= m;

    v[2] ^= 0xff;
    sipround(v);
    sipround(v);
    sipround(v);
    sipround(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}
