/* Stream buffer: round trips across chunk edges, window bounds, memory release. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sbuf.h"

Test(sbuf, write_read_roundtrip_across_chunk_boundaries)
{
    rudp_sbuf b;
    rudp__sbuf_init(&b, NULL, 1000, 5 * RUDP_SBUF_CHUNK);
    size_t n = 3 * RUDP_SBUF_CHUNK + 123;
    uint8_t *src = malloc(n), *dst = malloc(n);
    for (size_t i = 0; i < n; i++)
        src[i] = (uint8_t)(i * 7 + 3);
    cr_assert(eq(int, rudp__sbuf_write(&b, 1000, src, n), 0));
    rudp__sbuf_read(&b, 1000, dst, n);
    cr_assert(eq(int, memcmp(src, dst, n), 0));
    rudp__sbuf_read(&b, 1000 + RUDP_SBUF_CHUNK - 5, dst, 10);
    cr_assert(eq(int, memcmp(src + RUDP_SBUF_CHUNK - 5, dst, 10), 0));
    free(src);
    free(dst);
    rudp__sbuf_free(&b);
}

Test(sbuf, rejects_writes_outside_the_window)
{
    rudp_sbuf b;
    rudp__sbuf_init(&b, NULL, 100, 1000);
    uint8_t x[10] = {0};
    cr_assert(eq(int, rudp__sbuf_write(&b, 99, x, 1), -EINVAL));
    cr_assert(eq(int, rudp__sbuf_write(&b, 1095, x, 6), -EINVAL));
    cr_assert(eq(int, rudp__sbuf_write(&b, 1090, x, 10), 0));
    rudp__sbuf_free(&b);
}

Test(sbuf, advance_frees_consumed_chunks_and_empty_frees_all)
{
    rudp_sbuf b;
    rudp__sbuf_init(&b, NULL, 0, 8 * RUDP_SBUF_CHUNK);
    static uint8_t data[4 * RUDP_SBUF_CHUNK];
    rudp__sbuf_write(&b, 0, data, sizeof data);
    cr_assert(eq(u32, b.nchunks, 4));
    rudp__sbuf_advance(&b, 2 * RUDP_SBUF_CHUNK + 1, 0);
    cr_assert(eq(u32, b.nchunks, 2));
    rudp__sbuf_advance(&b, 4 * RUDP_SBUF_CHUNK, 1);
    cr_assert(eq(u32, b.nchunks, 0));
    cr_assert(eq(ptr, b.slots, NULL));
    /* the window moved with base */
    cr_assert(
        eq(int, rudp__sbuf_write(&b, 4 * RUDP_SBUF_CHUNK + 8 * RUDP_SBUF_CHUNK - 1, data, 1), 0));
    rudp__sbuf_free(&b);
}

Test(sbuf, free_returns_every_chunk_across_the_ring_wrap)
{
    rudp_chunk_pool pool = {.max = 8};
    rudp_sbuf b;
    /* 10 slots; offsets from chunk 9 on sit in slots 9, 0, 1: the walk
     * from base's slot must wrap to find them all. */
    rudp__sbuf_init(&b, NULL, 9 * (uint64_t)RUDP_SBUF_CHUNK + 5, 8 * RUDP_SBUF_CHUNK);
    b.pool = &pool;
    static uint8_t data[2 * RUDP_SBUF_CHUNK + 100];
    cr_assert(
        eq(int, rudp__sbuf_write(&b, 9 * (uint64_t)RUDP_SBUF_CHUNK + 5, data, sizeof data), 0));
    cr_assert(eq(u32, b.nchunks, 3));
    rudp__sbuf_free(&b);
    cr_assert(eq(u32, pool.n, 3), "every chunk back in the pool");
    cr_assert(eq(u32, b.nchunks, 0));
    cr_assert(eq(ptr, b.slots, NULL));
    rudp__chunk_pool_drain(&pool);
}

Test(sbuf, sliding_window_never_aliases, .timeout = 30)
{
    /* Write a long stream through a small window, reading it back behind. */
    rudp_sbuf b;
    uint32_t cap = 3 * RUDP_SBUF_CHUNK + 777;
    rudp__sbuf_init(&b, NULL, 0, cap);
    uint64_t wr = 0, rd = 0, seed = 12345;
    uint8_t buf[5000], out[5000];
    while (rd < 50ull * RUDP_SBUF_CHUNK) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        size_t n = (size_t)(seed >> 33) % sizeof buf;
        if (wr + n > rd + cap)
            n = (size_t)(rd + cap - wr);
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)((wr + i) * 31 >> 3);
        cr_assert(eq(int, rudp__sbuf_write(&b, wr, buf, n), 0));
        wr += n;
        size_t m = (size_t)(seed >> 45) % sizeof out;
        if (m > wr - rd)
            m = (size_t)(wr - rd);
        rudp__sbuf_read(&b, rd, out, m);
        for (size_t i = 0; i < m; i++)
            cr_assert(eq(u8, out[i], (uint8_t)((rd + i) * 31 >> 3)));
        rd += m;
        rudp__sbuf_advance(&b, rd, rd == wr);
        cr_assert(le(u32, b.nchunks, cap / RUDP_SBUF_CHUNK + 2));
    }
    rudp__sbuf_free(&b);
}

Test(sbuf, freed_chunks_are_reused_from_the_pool_up_to_its_bound)
{
    rudp_chunk_pool pool = {.max = 2};
    rudp_sbuf b;
    rudp__sbuf_init(&b, NULL, 0, 8 * RUDP_SBUF_CHUNK);
    b.pool = &pool;
    uint8_t data[RUDP_SBUF_CHUNK];
    memset(data, 7, sizeof data);
    /* Three chunks written, all three freed: two kept, one to malloc. */
    for (int i = 0; i < 3; i++)
        cr_assert(
            eq(int, rudp__sbuf_write(&b, (uint64_t)i * RUDP_SBUF_CHUNK, data, sizeof data), 0));
    uint8_t *held[3];
    for (int i = 0; i < 3; i++) {
        size_t len;
        held[i] = rudp__sbuf_span(&b, (uint64_t)i * RUDP_SBUF_CHUNK, 0, &len);
        cr_assert(not(eq(ptr, held[i], NULL)));
    }
    rudp__sbuf_advance(&b, 3 * RUDP_SBUF_CHUNK, 1);
    cr_assert(eq(u32, pool.n, 2), "the pool keeps at most max chunks");
    cr_assert(eq(u32, b.nchunks, 0));
    /* The next two chunks come from the pool: pointers freed above. */
    for (int i = 3; i < 5; i++) {
        cr_assert(
            eq(int, rudp__sbuf_write(&b, (uint64_t)i * RUDP_SBUF_CHUNK, data, sizeof data), 0));
        size_t len;
        uint8_t *p = rudp__sbuf_span(&b, (uint64_t)i * RUDP_SBUF_CHUNK, 0, &len);
        cr_assert(p == held[1] || p == held[2] || p == held[0], "chunk %d reused", i);
        uint8_t out[16];
        rudp__sbuf_read(&b, (uint64_t)i * RUDP_SBUF_CHUNK, out, sizeof out);
        cr_assert(eq(u8, out[0], 7));
    }
    cr_assert(eq(u32, pool.n, 0));
    rudp__sbuf_free(&b);
    cr_assert(eq(u32, pool.n, 2), "freeing the buffer returns its chunks");
    rudp__chunk_pool_drain(&pool);
    cr_assert(eq(u32, pool.n, 0));
    cr_assert(eq(ptr, pool.head, NULL));
}

/* The ring of chunk pointers starts small and doubles as the data held
 * spans more chunks, keeping every byte where it was: a connection that
 * exchanges small messages holds 4 slots, not an 8 MiB window's 514. */
Test(sbuf, the_ring_grows_with_the_span_held_and_keeps_the_bytes)
{
    rudp_sbuf b;
    uint64_t base = 7 * RUDP_SBUF_CHUNK + 100; /* not at a chunk's start */
    rudp__sbuf_init(&b, NULL, base, 8u << 20);
    cr_assert(eq(u32, b.maxslots, 514));
    uint8_t one = 42;
    cr_assert(eq(int, rudp__sbuf_write(&b, base, &one, 1), 0));
    cr_assert(eq(u32, b.nslots, RUDP_SBUF_SLOTS_MIN));
    cr_assert(eq(u64, rudp__sbuf_memory(&b),
                 RUDP_SBUF_CHUNK + RUDP_SBUF_SLOTS_MIN * sizeof(void *)));
    /* out of order, as reassembly writes: far ahead first, then between */
    static uint8_t pat[3 * RUDP_SBUF_CHUNK];
    for (size_t i = 0; i < sizeof pat; i++)
        pat[i] = (uint8_t)(i * 13 + 5);
    uint64_t far = base + (5u << 20);
    cr_assert(eq(int, rudp__sbuf_write(&b, far, pat, sizeof pat), 0));
    cr_assert(ge(u32, b.nslots, (5u << 20) / RUDP_SBUF_CHUNK + 4));
    cr_assert(le(u32, b.nslots, b.maxslots));
    cr_assert(eq(u32, rudp__sbuf_missing(&b, base + RUDP_SBUF_CHUNK, 1), 1));
    cr_assert(eq(int, rudp__sbuf_write(&b, base + 1, pat, 100), 0));
    uint8_t got[sizeof pat];
    rudp__sbuf_read(&b, base, got, 1);
    cr_assert(eq(u8, got[0], 42));
    rudp__sbuf_read(&b, base + 1, got, 100);
    cr_assert(eq(int, memcmp(got, pat, 100), 0));
    rudp__sbuf_read(&b, far, got, sizeof pat);
    cr_assert(eq(int, memcmp(got, pat, sizeof pat), 0));
    /* the last byte of the window, after moving base on: still addressable */
    rudp__sbuf_advance(&b, base + (4u << 20), 0);
    uint64_t last = b.base + b.cap - 1;
    cr_assert(eq(int, rudp__sbuf_write(&b, last, &one, 1), 0));
    rudp__sbuf_read(&b, far, got, sizeof pat);
    cr_assert(eq(int, memcmp(got, pat, sizeof pat), 0));
    rudp__sbuf_read(&b, last, got, 1);
    cr_assert(eq(u8, got[0], 42));
    /* emptied, then a small write again: the small ring again */
    rudp__sbuf_advance(&b, last + 1, 1);
    cr_assert(eq(int, rudp__sbuf_write(&b, last + 1, &one, 1), 0));
    cr_assert(eq(u32, b.nslots, RUDP_SBUF_SLOTS_MIN));
    rudp__sbuf_free(&b);
}

/* The owner's memory count follows a span that makes and grows the ring:
 * each byte of ring and chunk counted once. */
Test(sbuf, span_counts_a_new_and_a_grown_ring_once)
{
    rudp_sbuf b;
    uint64_t acct = 0;
    rudp__sbuf_init(&b, NULL, 0, 8u << 20);
    b.acct = &acct;
    size_t len;
    cr_assert_not_null(rudp__sbuf_span(&b, 0, 1, &len));
    cr_assert(eq(u64, acct, rudp__sbuf_memory(&b)));
    cr_assert_not_null(rudp__sbuf_span(&b, 20u * RUDP_SBUF_CHUNK, 1, &len));
    cr_assert(gt(u32, b.nslots, RUDP_SBUF_SLOTS_MIN));
    cr_assert(eq(u64, acct, rudp__sbuf_memory(&b)));
    rudp__sbuf_free(&b);
    cr_assert(eq(u64, acct, 0));
}
