/* sbuf.c: chunked ring addressed by absolute offset; see sbuf.h. */
#include "sbuf.h"
#include "alloc.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

void rudp__sbuf_init(rudp_sbuf *b, const rudp_mem *mem, uint64_t base, uint32_t cap)
{
    memset(b, 0, sizeof *b);
    b->mem = rudp__mem_or_libc(mem);
    b->base = base;
    b->cap = cap;
    /* A window of cap bytes starting anywhere touches at most
     * cap / CHUNK + 2 chunks; that many slots never alias. The ring starts
     * at a few and doubles as the data held spans more (grow_to): a
     * connection exchanging small messages holds a 32-byte ring, not the
     * 4 KiB (514 slots) an 8 MiB window's full ring takes, zeroed at every
     * first write after the buffer emptied (memory and CPU per connection
     * and per request). */
    b->maxslots = cap / RUDP_SBUF_CHUNK + 2;
    b->nslots = b->maxslots < RUDP_SBUF_SLOTS_MIN ? b->maxslots : RUDP_SBUF_SLOTS_MIN;
}

/* Makes the ring hold chunk index k (k >= base's): doubles it, keeping each
 * chunk at its index's new slot, until k is within nslots of base's. All
 * held chunks lie in [base's index, base's + nslots). Returns 0 or -ENOMEM. */
static int grow_to(rudp_sbuf *b, uint64_t k)
{
    uint64_t first = b->base / RUDP_SBUF_CHUNK;
    if (k - first < b->nslots)
        return 0;
    uint32_t n = b->nslots;
    while (k - first >= n && n < b->maxslots)
        n = n * 2 < b->maxslots ? n * 2 : b->maxslots;
    uint8_t **slots = rudp__calloc(b->mem, n, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    for (uint64_t i = first; i < first + b->nslots; i++)
        slots[i % n] = b->slots[i % b->nslots];
    rudp__free(b->mem, b->slots);
    b->slots = slots;
    b->nslots = n;
    return 0;
}

/* The ring for a first write: the smallest size again. */
static int ring_new(rudp_sbuf *b)
{
    b->nslots = b->maxslots < RUDP_SBUF_SLOTS_MIN ? b->maxslots : RUDP_SBUF_SLOTS_MIN;
    b->slots = rudp__calloc(b->mem, b->nslots, sizeof *b->slots);
    return b->slots ? 0 : -ENOMEM;
}

uint64_t rudp__sbuf_memory(const rudp_sbuf *b)
{
    if (!b->slots)
        return 0;
    return (uint64_t)(b->nchunks - b->small) * RUDP_SBUF_CHUNK +
           (b->small ? RUDP_SBUF_SMALL : 0) + (uint64_t)b->nslots * sizeof *b->slots;
}

static uint8_t **slot_of(const rudp_sbuf *b, uint64_t off)
{
    return &b->slots[(off / RUDP_SBUF_CHUNK) % b->nslots];
}

/* A whole chunk, or a small block (small): from the pool's list of them
 * if it keeps one, else from the allocator. */
static uint8_t *take(rudp_sbuf *b, int small)
{
    rudp_chunk_pool *p = b->pool;
    void **head = !p ? NULL : small ? &p->small_head : &p->head;
    if (head && *head) {
        uint8_t *c = *head;
        memcpy(head, c, sizeof *head);
        (*(small ? &p->small_n : &p->n))--;
        return c;
    }
    return rudp__malloc(b->mem, small ? RUDP_SBUF_SMALL : RUDP_SBUF_CHUNK);
}

/* Block c (small: a small one) onto the pool's list of them if it has
 * room, else freed. */
static void give(rudp_sbuf *b, int small, uint8_t *c)
{
    rudp_chunk_pool *p = b->pool;
    uint32_t *n = !p ? NULL : small ? &p->small_n : &p->n;
    if (!n || *n >= p->max) {
        rudp__free(b->mem, c);
        return;
    }
    void **head = small ? &p->small_head : &p->head;
    memcpy(c, head, sizeof *head);
    *head = c;
    (*n)++;
}

static int in_small(const rudp_sbuf *b, uint64_t off)
{
    return b->small && off / RUDP_SBUF_CHUNK == b->small_k;
}

/* Whether off's chunk is the small block and off lies outside it. */
static int past_small(const rudp_sbuf *b, uint64_t off)
{
    uint32_t in = (uint32_t)(off % RUDP_SBUF_CHUNK);
    return in_small(b, off) && (in < b->small_lo || in >= b->small_hi);
}

/* Gives back the chunk of index k held in *slot. */
static void drop(rudp_sbuf *b, uint64_t k, uint8_t **slot)
{
    int small = b->small && k == b->small_k;
    give(b, small, *slot);
    if (small)
        b->small = 0;
    *slot = NULL;
}

/* The chunk that holds offset off for a write of len bytes from there:
 * allocated if missing (a small one for an emptied buffer's first when the
 * pool has none and the small one holds them all, unless whole), a small
 * one widened to a whole chunk if off lies outside it or whole is set.
 * The caller counts the memory (account()). NULL if out of memory. */
static uint8_t *hold(rudp_sbuf *b, uint64_t off, size_t len, int whole)
{
    uint8_t **slot = slot_of(b, off);
    uint64_t k = off / RUDP_SBUF_CHUNK;
    uint32_t in = (uint32_t)(off % RUDP_SBUF_CHUNK);
    if (!*slot) {
        if (b->small_ok && !whole && len <= RUDP_SBUF_SMALL && !b->nchunks &&
            !(b->pool && b->pool->head)) {
            *slot = take(b, 1);
            if (*slot) {
                b->small = 1;
                b->small_k = k;
                b->small_lo = in;
                b->small_hi = RUDP_SBUF_CHUNK - in < RUDP_SBUF_SMALL ? RUDP_SBUF_CHUNK
                                                                       : in + RUDP_SBUF_SMALL;
            }
        } else {
            *slot = take(b, 0);
        }
        if (*slot)
            b->nchunks++;
        return *slot;
    }
    if (in_small(b, off) && (whole || past_small(b, off))) {
        uint8_t *c = take(b, 0);
        if (!c)
            return NULL;
        memcpy(c + b->small_lo, *slot, b->small_hi - b->small_lo);
        drop(b, k, slot);
        *slot = c;
    }
    return *slot;
}

/* Where offset off's byte is, its chunk allocated (and, if small, holding
 * it), and in *room how many bytes from there the chunk holds. */
static uint8_t *locate(const rudp_sbuf *b, uint64_t off, size_t *room)
{
    uint8_t *c = *slot_of(b, off);
    uint32_t in = (uint32_t)(off % RUDP_SBUF_CHUNK);
    if (in_small(b, off)) {
        assert(in >= b->small_lo && in < b->small_hi);
        *room = b->small_hi - in;
        return c + (in - b->small_lo);
    }
    *room = RUDP_SBUF_CHUNK - in;
    return c + in;
}

void rudp__chunk_pool_drain(rudp_chunk_pool *p)
{
    while (p->head) {
        void *c = p->head;
        memcpy(&p->head, c, sizeof p->head);
        rudp__free(rudp__mem_or_libc(p->mem), c);
    }
    while (p->small_head) {
        void *c = p->small_head;
        memcpy(&p->small_head, c, sizeof p->small_head);
        rudp__free(rudp__mem_or_libc(p->mem), c);
    }
    p->n = p->small_n = 0;
}

/* Keeps *acct equal to the sum of its buffers' rudp__sbuf_memory(): called
 * with the memory before a change. */
static void account(rudp_sbuf *b, uint64_t before)
{
    if (b->acct)
        *b->acct = *b->acct - before + rudp__sbuf_memory(b);
}

void rudp__sbuf_free(rudp_sbuf *b)
{
    uint64_t before = rudp__sbuf_memory(b);
    if (b->slots) {
        /* Every chunk lies at or above base's slot (advance freed those
         * below): walk the ring from there and stop at the last one. A
         * connection's buffer empties at every request it answers, and
         * visiting all of an 8 MiB buffer's 514 slots each time was 4% of
         * an engine's cycles under redis-benchmark (perf). */
        uint32_t left = b->nchunks;
        uint64_t k = b->base / RUDP_SBUF_CHUNK;
        for (uint32_t i = 0; i < b->nslots && left; i++, k++) {
            uint8_t **slot = &b->slots[k % b->nslots];
            if (*slot) {
                drop(b, k, slot);
                left--;
            }
        }
        rudp__free(b->mem, b->slots);
    }
    b->slots = NULL;
    b->nchunks = 0;
    account(b, before);
}

int rudp__sbuf_write(rudp_sbuf *b, uint64_t off, const void *src, size_t len)
{
    if (off < b->base || off + len > b->base + b->cap)
        return -EINVAL;
    uint64_t before = rudp__sbuf_memory(b);
    int err = 0;
    if (len && !b->slots && ring_new(b) < 0)
        return -ENOMEM;
    const uint8_t *p = src;
    while (len) {
        if (grow_to(b, off / RUDP_SBUF_CHUNK) < 0) {
            err = -ENOMEM;
            break;
        }
        if (!hold(b, off, len, 0)) {
            err = -ENOMEM;
            break;
        }
        size_t n;
        uint8_t *q = locate(b, off, &n);
        if (n > len)
            n = len;
        memcpy(q, p, n);
        p += n;
        off += n;
        len -= n;
    }
    account(b, before);
    return err;
}

uint32_t rudp__sbuf_missing(const rudp_sbuf *b, uint64_t off, size_t len)
{
    if (!len)
        return 0;
    uint32_t n = 0;
    uint64_t first = b->base / RUDP_SBUF_CHUNK;
    for (uint64_t k = off / RUDP_SBUF_CHUNK; k <= (off + len - 1) / RUDP_SBUF_CHUNK; k++)
        if (!b->slots || k - first >= b->nslots || !b->slots[k % b->nslots])
            n++;
    if (b->small) { /* a small chunk the range leaves is widened: a chunk */
        uint64_t ks = b->small_k * RUDP_SBUF_CHUNK, ke = ks + RUDP_SBUF_CHUNK;
        uint64_t a = off > ks ? off : ks, z = off + len < ke ? off + len : ke;
        if (a < z && (a < ks + b->small_lo || z > ks + b->small_hi))
            n++;
    }
    return n;
}

uint8_t *rudp__sbuf_span(rudp_sbuf *b, uint64_t off, int alloc, size_t *len)
{
    *len = 0;
    if (off < b->base || off >= b->base + b->cap)
        return NULL;
    uint64_t before = rudp__sbuf_memory(b);
    if (!b->slots) {
        if (!alloc)
            return NULL;
        if (ring_new(b) < 0)
            return NULL;
        account(b, before);
        before = rudp__sbuf_memory(b); /* counted: the next account() adds only its own */
    }
    if (off / RUDP_SBUF_CHUNK - b->base / RUDP_SBUF_CHUNK >= b->nslots) {
        if (!alloc)
            return NULL; /* beyond the ring: nothing is held there */
        int err = grow_to(b, off / RUDP_SBUF_CHUNK);
        account(b, before);
        before = rudp__sbuf_memory(b);
        if (err < 0)
            return NULL;
    }
    if (alloc == RUDP_SBUF_HELD && (!*slot_of(b, off) || past_small(b, off)))
        return NULL; /* nothing held there */
    if (alloc != RUDP_SBUF_HELD) {
        uint8_t *c = hold(b, off, 1, alloc == RUDP_SBUF_WHOLE);
        account(b, before);
        if (!c)
            return NULL;
    }
    size_t n;
    uint8_t *q = locate(b, off, &n);
    uint64_t end = b->base + b->cap;
    if (off + n > end)
        n = (size_t)(end - off);
    *len = n;
    return q;
}

void rudp__sbuf_read(const rudp_sbuf *b, uint64_t off, void *dst, size_t len)
{
    assert(off >= b->base && off + len <= b->base + b->cap);
    uint8_t *p = dst;
    while (len) {
        assert(*slot_of(b, off));
        size_t n;
        const uint8_t *q = locate(b, off, &n);
        if (n > len)
            n = len;
        memcpy(p, q, n);
        p += n;
        off += n;
        len -= n;
    }
}

void rudp__sbuf_advance(rudp_sbuf *b, uint64_t new_base, int empty)
{
    if (new_base < b->base)
        return;
    if (b->slots && empty) {
        rudp__sbuf_free(b); /* accounts for itself */
        b->base = new_base;
        return;
    }
    uint64_t before = rudp__sbuf_memory(b);
    if (b->slots) {
        /* Free chunks wholly below new_base; the one holding it stays.
         * Every chunk held lies in [first, first + nslots): past that an
         * index names no chunk, and each k is a held chunk's own index (a
         * small one's is how drop() knows it). */
        uint64_t first = b->base / RUDP_SBUF_CHUNK;
        uint64_t last = new_base / RUDP_SBUF_CHUNK;
        if (last - first > b->nslots)
            last = first + b->nslots;
        for (uint64_t k = first; k < last; k++) {
            uint8_t **slot = &b->slots[k % b->nslots];
            if (*slot) {
                drop(b, k, slot);
                b->nchunks--;
            }
        }
    }
    b->base = new_base;
    account(b, before);
}
