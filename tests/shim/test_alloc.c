/*
 * alloc: shim/base/alloc.c, the allocator of the shim and the core. A
 * block holds what was asked for and stays the caller's alone until freed;
 * a freed block of a class is the next one that class gives; realloc keeps
 * the contents; and threads allocating and freeing at once never get the
 * same block (each fills its blocks with its own pattern and finds it
 * intact at free). Under ASan and TSan the functions are libc's (alloc.c
 * says why): the tests then check libc's, which is still the contract.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "base/base.h"
#include "shimtest.h"

TestSuite(alloc, .init = shimtest_setup, .timeout = 60);

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
Test(alloc, a_freed_block_is_the_next_its_class_gives)
{
    for (size_t n = 1; n <= 65536; n *= 2) {
        unsigned char *a = shim_malloc(n);
        cr_assert(a != NULL, "malloc(%zu)", n);
        memset(a, 0xa5, n);
        shim_free(a);
        unsigned char *b = shim_malloc(n);
        cr_expect(eq(ptr, b, a), "malloc(%zu) after a free of its class", n);
        shim_free(b);
    }
}
#endif

Test(alloc, calloc_zeroes_a_reused_block_and_realloc_keeps_the_bytes)
{
    unsigned char *a = shim_malloc(200);
    cr_assert(a != NULL);
    memset(a, 0xff, 200);
    shim_free(a);
    unsigned char *z = shim_calloc(25, 8);
    cr_assert(z != NULL);
    for (int i = 0; i < 200; i++)
        cr_assert(eq(u8, z[i], 0), "byte %d", i);
    for (int i = 0; i < 200; i++)
        z[i] = (unsigned char)i;
    unsigned char *g = shim_realloc(z, 70000); /* past the largest class: a mapping */
    cr_assert(g != NULL);
    for (int i = 0; i < 200; i++)
        cr_assert(eq(u8, g[i], (unsigned char)i), "byte %d after growing", i);
    g[69999] = 7;
    unsigned char *s = shim_realloc(g, 100);
    cr_assert(s != NULL);
    for (int i = 0; i < 100; i++)
        cr_assert(eq(u8, s[i], (unsigned char)i), "byte %d after shrinking", i);
    shim_free(s);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    /* (ASan's calloc aborts on it instead) */
    cr_expect(eq(ptr, shim_calloc(SIZE_MAX / 2, 4), NULL), "an overflowing calloc fails");
#endif
}

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
/* Pages of [p, p + n) the process has in memory (mincore). */
static size_t resident(const void *p, size_t n)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p & ~(pg - 1);
    size_t len = (uintptr_t)p + n - a, count = (len + pg - 1) / pg, in = 0;
    unsigned char vec[64];
    cr_assert(count <= sizeof vec);
    cr_assert(eq(int, mincore((void *)a, len, vec), 0));
    for (size_t i = 0; i < count; i++)
        in += vec[i] & 1;
    return in;
}

/* A block the largest class carves for the first time is a fresh
 * mapping's, zero already: calloc() leaves its pages untouched (but the
 * header's), where a memset faulted in all 16 (B12: every connection's
 * core state); the same block freed, dirtied and given again is zeroed. */
Test(alloc, calloc_of_a_fresh_block_leaves_its_pages_alone)
{
    /* no huge or multi-size page for this process (its own: Criterion
     * runs each test in a process of its own), whose first fault would
     * bring the whole folio in where the kernel's THP setting is "always" */
    cr_assert(eq(int, prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0), 0), "PR_SET_THP_DISABLE (Linux 3.15)");
    const size_t n = 60000; /* the 64 KiB class, which no other test here uses */
    unsigned char *p = shim_calloc(1, n);
    cr_assert(p != NULL);
    size_t in = resident(p, n);
    cr_expect(in <= 1, "%zu of its pages in memory after calloc, want the header's alone", in);
    for (size_t i = 0; i < n; i += 997)
        cr_assert(eq(u8, p[i], 0), "byte %zu", i);
    memset(p, 0xaa, n);
    shim_free(p);
    unsigned char *q = shim_calloc(1, n);
    cr_assert(eq(ptr, q, p), "the freed block is the next one its class gives");
    for (size_t i = 0; i < n; i++)
        cr_assert(eq(u8, q[i], 0), "byte %zu of the reused block", i);
    shim_free(q);
}

/* A class that filled its first slab is carving many blocks: its next
 * slab is faulted in at once, in one call (B12's 3,500 connections took
 * 3.7 page faults each at the client); its first slab only where used, and
 * a class above a page never (a connection's buffers are touched a page at
 * a time). */
Test(alloc, a_small_class_s_second_slab_is_in_memory_at_once)
{
    cr_assert(eq(int, prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0), 0), "PR_SET_THP_DISABLE (Linux 3.15)");
    enum { N = 400, SZ = 2000 }; /* the 2 KiB class: 127 blocks a 256 KiB slab */
    static unsigned char *b[N];
    const size_t stride = 2048 + 16;
    int n = 0, jump = -1;
    /* until a new slab begins, and 4 blocks into it */
    while (n < N && (jump < 0 || n < jump + 4)) {
        b[n] = shim_malloc(SZ);
        cr_assert(b[n] != NULL);
        b[n][0] = 1; /* touched as a caller would, its first page alone */
        if (n > 0 && jump < 0 && b[n] != b[n - 1] + stride)
            jump = n;
        n++;
    }
    cr_assert(jump > 0 && n == jump + 4, "no second slab in %d blocks", N);
    for (int i = jump + 1; i < n; i++)
        cr_assert(eq(ptr, b[i], b[i - 1] + stride), "block %d of the new slab", i - jump);
    /* the new slab's blocks not carved yet: untouched, and in memory */
    size_t in = resident(b[n - 1] + stride, 16 * 4096);
    cr_expect(eq(sz, in, 17), "%zu of the slab's next 17 pages in memory", in);
    /* the 16 KiB class (a connection's buffer chunks): never */
    unsigned char *big[40];
    for (int i = 0; i < 40; i++) {
        big[i] = shim_malloc(16000);
        cr_assert(big[i] != NULL);
        big[i][0] = 1;
    }
    in = resident(big[39] + 4096, 8192);
    cr_expect(eq(sz, in, 0), "%zu of a fresh 16 KiB block's last pages in memory", in);
    for (int i = 0; i < 40; i++)
        shim_free(big[i]);
    for (int i = 0; i < n; i++)
        shim_free(b[i]);
}

/* Classes step by half a power of two: a block takes the smallest that
 * holds it, so the core's connection (2,968 bytes) takes 3 KiB of a slab
 * and not 4, and a 1,144-byte one 1.5 KiB and not 2 (B12: 13 % less
 * memory a connection at each end). Seen through realloc(), which keeps a
 * block in place up to its class's size and moves it one byte past. */
Test(alloc, a_block_takes_the_smallest_class_at_half_power_steps)
{
    static const size_t ask[][2] = {{2968, 3072}, {1144, 1536}, {700, 768},
                                    {72, 96},     {3100, 4096}, {40000, 49152}};
    for (size_t i = 0; i < sizeof ask / sizeof ask[0]; i++) {
        size_t n = ask[i][0], cls = ask[i][1];
        unsigned char *a = shim_malloc(n);
        cr_assert(a != NULL);
        memset(a, 0x5a, n);
        unsigned char *b = shim_realloc(a, cls);
        cr_expect(eq(ptr, b, a), "malloc(%zu) holds %zu in place", n, cls);
        unsigned char *c = shim_realloc(b, cls + 1);
        cr_assert(c != NULL);
        cr_expect(ne(ptr, c, b), "malloc(%zu) does not hold %zu: its class is %zu", n, cls + 1, cls);
        cr_expect(eq(u8, c[n - 1], 0x5a), "the bytes moved with it");
        shim_free(c);
    }
}
#endif

enum { THREADS = 4, ROUNDS = 20000, LIVE = 64 };

typedef struct worker {
    unsigned id;
    uint32_t seed;
    int bad; /* blocks found changed by someone else */
    int oom;
} worker;

static uint32_t next_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void *work(void *arg)
{
    worker *w = arg;
    unsigned char *live[LIVE] = {0};
    size_t len[LIVE] = {0};
    for (int r = 0; r < ROUNDS; r++) {
        unsigned i = next_rand(&w->seed) % LIVE;
        if (live[i]) {
            for (size_t k = 0; k < len[i]; k++)
                if (live[i][k] != (unsigned char)(w->id + k)) {
                    w->bad++;
                    break;
                }
            shim_free(live[i]);
            live[i] = NULL;
        }
        /* every class, the fresh ones (a page's first touch) as well */
        size_t n = 1 + next_rand(&w->seed) % (1u << (next_rand(&w->seed) % 17));
        live[i] = shim_malloc(n);
        if (!live[i]) {
            w->oom++;
            continue;
        }
        len[i] = n;
        for (size_t k = 0; k < n; k++)
            live[i][k] = (unsigned char)(w->id + k);
    }
    for (unsigned i = 0; i < LIVE; i++)
        shim_free(live[i]);
    return NULL;
}

Test(alloc, threads_at_once_never_share_a_block)
{
    pthread_t t[THREADS];
    worker w[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        w[i] = (worker){.id = i * 61 + 1, .seed = 2463534242u + i};
        cr_assert(eq(int, pthread_create(&t[i], NULL, work, &w[i]), 0));
    }
    for (unsigned i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        cr_expect(eq(int, w[i].bad, 0), "thread %u found its blocks changed", i);
        cr_expect(eq(int, w[i].oom, 0), "thread %u ran out of memory", i);
    }
}
