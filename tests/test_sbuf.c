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

/* A buffer of 8 MiB from base whose first bytes may take a small block
 * (small_ok, as a connection's), its chunks from pool (NULL: none). */
static void small_ok_buf(rudp_sbuf *b, rudp_chunk_pool *pool, uint64_t base)
{
    rudp__sbuf_init(b, NULL, base, 8u << 20);
    b->pool = pool;
    b->small_ok = 1;
}

/* An emptied send buffer's first bytes go to a small block when the pool
 * has no chunk (four share a page, where a fresh chunk costs a page fault
 * per connection); a write past it widens it to a whole chunk, keeping
 * every byte, and the memory count follows. */
Test(sbuf, first_bytes_take_a_small_block_widened_by_a_write_past_it)
{
    rudp_chunk_pool pool = {.max = 4};
    rudp_sbuf b;
    uint64_t acct = 0, base = 3 * RUDP_SBUF_CHUNK + 500;
    small_ok_buf(&b, &pool, base);
    b.acct = &acct;
    static uint8_t pat[3 * RUDP_SBUF_CHUNK];
    for (size_t i = 0; i < sizeof pat; i++)
        pat[i] = (uint8_t)(i * 11 + 1);
    cr_assert(eq(int, rudp__sbuf_write(&b, base, pat, 10), 0));
    cr_assert(eq(u8, b.small, 1));
    cr_assert(eq(u64, acct, RUDP_SBUF_SMALL + RUDP_SBUF_SLOTS_MIN * sizeof(void *)));
    size_t len;
    uint8_t *p = rudp__sbuf_span(&b, base + 10, RUDP_SBUF_ALLOC, &len);
    cr_assert_not_null(p);
    cr_assert(eq(sz, len, RUDP_SBUF_SMALL - 10), "the span ends with the small block");
    memcpy(p, pat + 10, len);
    /* past the block: widened, its bytes copied */
    size_t more = RUDP_SBUF_CHUNK + 3000;
    cr_assert(eq(int, rudp__sbuf_write(&b, base + RUDP_SBUF_SMALL, pat + RUDP_SBUF_SMALL, more), 0));
    cr_assert(eq(u8, b.small, 0));
    cr_assert(eq(u32, b.nchunks, 2));
    cr_assert(eq(u64, acct, rudp__sbuf_memory(&b)));
    cr_assert(eq(u64, acct, 2 * RUDP_SBUF_CHUNK + RUDP_SBUF_SLOTS_MIN * sizeof(void *)));
    static uint8_t got[sizeof pat];
    rudp__sbuf_read(&b, base, got, RUDP_SBUF_SMALL + more);
    cr_assert(eq(int, memcmp(got, pat, RUDP_SBUF_SMALL + more), 0));
    /* emptied: the whole chunks go to the pool, and the next first bytes
     * take one of them, not a small block */
    rudp__sbuf_advance(&b, base + RUDP_SBUF_SMALL + more, 1);
    cr_assert(eq(u32, pool.n, 2));
    cr_assert(eq(u64, acct, 0));
    cr_assert(eq(int, rudp__sbuf_write(&b, b.base, pat, 1), 0));
    cr_assert(eq(u8, b.small, 0));
    cr_assert(eq(u32, pool.n, 1));
    rudp__sbuf_free(&b);
    cr_assert(eq(u32, pool.n, 2));
    rudp__chunk_pool_drain(&pool);
}

/* A small block goes back to the pool's small blocks, never among its
 * whole chunks, and the next emptied buffer takes it again (a request's
 * buffers empty at every answer: no allocator call in that loop);
 * RUDP_SBUF_WHOLE widens it first; a buffer without small_ok never takes
 * one. */
Test(sbuf, small_blocks_come_back_from_the_pool_and_whole_spans_widen_them)
{
    rudp_chunk_pool pool = {.max = 4};
    rudp_sbuf b;
    small_ok_buf(&b, &pool, 0);
    uint8_t x[100];
    memset(x, 9, sizeof x);
    cr_assert(eq(int, rudp__sbuf_write(&b, 0, x, sizeof x), 0));
    cr_assert(eq(u8, b.small, 1));
    size_t len;
    uint8_t *first = rudp__sbuf_span(&b, 0, RUDP_SBUF_HELD, &len);
    rudp__sbuf_advance(&b, sizeof x, 1);
    cr_assert(eq(u32, pool.n, 0), "no whole chunk in the pool");
    cr_assert(eq(u32, pool.small_n, 1));
    cr_assert(eq(u8, b.small, 0));
    cr_assert(eq(int, rudp__sbuf_write(&b, 100, x, sizeof x), 0));
    cr_assert(eq(u8, b.small, 1));
    cr_assert(eq(u32, pool.small_n, 0));
    cr_assert(eq(ptr, rudp__sbuf_span(&b, 100, RUDP_SBUF_HELD, &len), first), "the same block");
    uint8_t *p = rudp__sbuf_span(&b, 200, RUDP_SBUF_WHOLE, &len);
    cr_assert_not_null(p);
    cr_assert(eq(u8, b.small, 0));
    cr_assert(eq(u32, pool.small_n, 1), "widened: the block back in the pool");
    cr_assert(eq(sz, len, RUDP_SBUF_CHUNK - 200));
    uint8_t got[100];
    rudp__sbuf_read(&b, 100, got, sizeof got);
    cr_assert(eq(int, memcmp(got, x, sizeof x), 0));
    rudp__sbuf_free(&b);
    cr_assert(eq(u32, pool.n, 1));
    cr_assert(eq(u32, pool.small_n, 1));

    rudp_sbuf r;
    rudp__sbuf_init(&r, NULL, 0, 8u << 20);
    r.pool = &pool; /* holds a chunk and a small block now: empty it first */
    rudp__chunk_pool_drain(&pool);
    cr_assert(eq(u32, pool.small_n, 0));
    cr_assert(eq(ptr, pool.small_head, NULL));
    cr_assert(eq(int, rudp__sbuf_write(&r, 0, x, 1), 0));
    cr_assert(eq(u8, r.small, 0));
    cr_assert(eq(u64, rudp__sbuf_memory(&r), RUDP_SBUF_CHUNK + RUDP_SBUF_SLOTS_MIN * sizeof(void *)));
    rudp__sbuf_free(&r);
    rudp__chunk_pool_drain(&pool);
}

/* The first bytes near a chunk's end: the small block ends with the
 * chunk, the next chunk is a whole one, and a read across both finds
 * every byte. */
Test(sbuf, a_small_block_near_a_chunk_end_ends_with_the_chunk)
{
    rudp_sbuf b;
    uint64_t base = RUDP_SBUF_CHUNK - 100;
    small_ok_buf(&b, NULL, base);
    uint8_t x[300];
    for (size_t i = 0; i < sizeof x; i++)
        x[i] = (uint8_t)(i + 1);
    size_t len;
    cr_assert_not_null(rudp__sbuf_span(&b, base, RUDP_SBUF_ALLOC, &len));
    cr_assert(eq(sz, len, 100));
    cr_assert(eq(u32, b.small_hi, RUDP_SBUF_CHUNK));
    cr_assert(eq(int, rudp__sbuf_write(&b, base, x, sizeof x), 0));
    cr_assert(eq(u8, b.small, 1), "the next chunk is a whole one; this one still small");
    cr_assert(eq(u32, b.nchunks, 2));
    uint8_t got[300];
    rudp__sbuf_read(&b, base, got, sizeof got);
    cr_assert(eq(int, memcmp(got, x, sizeof x), 0));
    rudp__sbuf_advance(&b, RUDP_SBUF_CHUNK, 0);
    cr_assert(eq(u8, b.small, 0));
    cr_assert(eq(u32, b.nchunks, 1));
    rudp__sbuf_read(&b, RUDP_SBUF_CHUNK, got, 200);
    cr_assert(eq(int, memcmp(got, x + 100, 200), 0));
    rudp__sbuf_free(&b);
}

/* A write the small block cannot hold takes a whole chunk at once; a
 * range that leaves a small block counts the chunk its widening takes. */
Test(sbuf, a_first_write_larger_than_a_small_block_takes_a_whole_chunk)
{
    rudp_sbuf b;
    small_ok_buf(&b, NULL, 0);
    static uint8_t x[RUDP_SBUF_SMALL + 1];
    for (size_t i = 0; i < sizeof x; i++)
        x[i] = (uint8_t)(i * 3 + 1);
    cr_assert(eq(int, rudp__sbuf_write(&b, 0, x, sizeof x), 0));
    cr_assert(eq(u8, b.small, 0));
    rudp__sbuf_advance(&b, sizeof x, 1);
    cr_assert(eq(int, rudp__sbuf_write(&b, sizeof x + 10, x, 20), 0), "out of order: past base");
    cr_assert(eq(u8, b.small, 1));
    cr_assert(eq(u32, rudp__sbuf_missing(&b, sizeof x + 10, 20), 0), "held");
    cr_assert(eq(u32, rudp__sbuf_missing(&b, sizeof x, 10), 1), "below it: widened");
    cr_assert(eq(u32, rudp__sbuf_missing(&b, sizeof x + 30, RUDP_SBUF_SMALL), 1), "past it");
    cr_assert(eq(u32, rudp__sbuf_missing(&b, RUDP_SBUF_CHUNK, 10), 1), "the next chunk");
    /* the gap below it filled: widened, both parts where they belong */
    uint8_t y[10];
    memset(y, 5, sizeof y);
    cr_assert(eq(int, rudp__sbuf_write(&b, sizeof x, y, sizeof y), 0));
    cr_assert(eq(u8, b.small, 0));
    cr_assert(eq(u32, b.nchunks, 1));
    cr_assert(eq(u32, rudp__sbuf_missing(&b, sizeof x + 30, RUDP_SBUF_SMALL), 0), "whole now");
    uint8_t got[30];
    rudp__sbuf_read(&b, sizeof x, got, sizeof got);
    cr_assert(eq(int, memcmp(got, y, sizeof y), 0));
    cr_assert(eq(int, memcmp(got + 10, x, 20), 0), "the block's bytes moved with it");
    rudp__sbuf_free(&b);
}

/* A base moved past more chunks than the ring holds frees each by its own
 * index: the small block goes back to the pool's small list, never among
 * its whole chunks (where the next whole chunk taken would be 1 KiB, not 16). */
Test(sbuf, an_advance_past_the_ring_returns_a_small_block_as_small)
{
    rudp_chunk_pool pool = {.max = 4};
    rudp_sbuf b;
    small_ok_buf(&b, &pool, 0);
    uint8_t x[10] = {1, 2, 3};
    cr_assert(eq(int, rudp__sbuf_write(&b, 0, x, sizeof x), 0));
    cr_assert(eq(u8, b.small, 1));
    cr_assert(eq(u32, b.nslots, RUDP_SBUF_SLOTS_MIN));
    rudp__sbuf_advance(&b, 100u * RUDP_SBUF_CHUNK, 0);
    cr_assert(eq(u8, b.small, 0));
    cr_assert(eq(u32, b.nchunks, 0));
    cr_assert(eq(u32, pool.small_n, 1));
    cr_assert(eq(u32, pool.n, 0), "no small block among the whole chunks");
    rudp__sbuf_free(&b);
    rudp__chunk_pool_drain(&pool);
}
