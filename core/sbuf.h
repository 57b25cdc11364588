/*
 * sbuf.h: a bounded byte buffer addressed by absolute stream offset.
 *
 * Holds bytes of [base, base + cap). Memory comes in RUDP_SBUF_CHUNK-byte
 * chunks allocated when first written and freed when `base` moves past them,
 * so an idle connection holds no buffer memory and a busy one holds what is
 * in flight. Used as the send buffer (append at the end, read any range for
 * retransmission, advance on cumulative ACK) and as the receive reassembly
 * buffer (write at any offset, read from base, advance as the app reads).
 * Which bytes are valid is the owner's business (see ranges.h).
 */
#ifndef RUDP_SBUF_H
#define RUDP_SBUF_H

#include <stddef.h>
#include <stdint.h>

#include "rudp.h"

#define RUDP_SBUF_CHUNK (16u * 1024u)
#define RUDP_SBUF_SLOTS_MIN 4u /* the ring's first size (sbuf.c: grow_to) */
/* An emptied buffer's first chunk when the pool has none: a block this
 * size (see rudp_sbuf.small_ok) */
#define RUDP_SBUF_SMALL 1024u

/* Free chunks kept for reuse, shared by the buffers of one context: a bulk
 * flow frees a chunk and allocates one per 16 KiB, and returning each to
 * malloc cost the receiver a quarter of its CPU in page faults and
 * madvise (perf, 2.7 Gbit/s over veth). At most `max` are kept. */
#define RUDP_CHUNK_POOL_MAX 128

typedef struct rudp_chunk_pool {
    void *head;   /* singly linked through each chunk's first bytes */
    uint32_t n, max;
    void *small_head; /* the same for small blocks (RUDP_SBUF_SMALL): a buffer */
    uint32_t small_n; /* emptied at every request takes one each time */
    const rudp_mem *mem; /* its buffers' (alloc.h), the chunks' allocator;
                            NULL: libc's */
} rudp_chunk_pool;

/* Frees every chunk and small block the pool keeps. */
void rudp__chunk_pool_drain(rudp_chunk_pool *p);

typedef struct rudp_sbuf {
    uint64_t base;    /* lowest offset still held */
    uint32_t cap;     /* bytes addressable from base */
    uint32_t nslots;  /* ring size now: grows by doubling as far as maxslots */
    uint32_t maxslots; /* cap / CHUNK + 2: a window's most chunks */
    uint8_t **slots;  /* ring of chunk pointers, by (offset / CHUNK) % nslots */
    uint32_t nchunks; /* chunks allocated now */
    uint64_t *acct;   /* if set: bytes this buffer holds are added here */
    rudp_chunk_pool *pool; /* if set: chunks come from and go back here (its
                              mem must be this buffer's) */
    /* small_ok, set by the owner: no pointer into a chunk is held across a
     * write (a connection's spans last until its next call). An emptied
     * buffer's first chunk is then a block of RUDP_SBUF_SMALL bytes when
     * the pool has no chunk to give and the first write fits, and is
     * widened to a whole chunk (its bytes copied) by the first write it
     * does not hold: a fresh 16 KiB chunk costs a page fault for the first
     * bytes of every connection (B12's 3,500 at once: a fault each at each
     * end, each buffer), four small ones share a page. small: the chunk of
     * index small_k is such a block, holding that chunk's offsets
     * [small_lo, small_hi). */
    uint8_t small_ok, small;
    uint32_t small_lo, small_hi;
    uint64_t small_k;
    const rudp_mem *mem;   /* where the ring and chunks come from (alloc.h) */
} rudp_sbuf;

/* Sets up an empty buffer whose memory comes from mem (NULL: libc's),
 * which must outlive it; allocates nothing yet. */
void rudp__sbuf_init(rudp_sbuf *b, const rudp_mem *mem, uint64_t base, uint32_t cap);

void rudp__sbuf_free(rudp_sbuf *b);

/* Bytes of memory the buffer holds (chunks and their ring). */
uint64_t rudp__sbuf_memory(const rudp_sbuf *b);

/* How many chunks writing [off, off+len) would allocate, a small one
 * widened among them (the range must lie within the window). */
uint32_t rudp__sbuf_missing(const rudp_sbuf *b, uint64_t off, size_t len);

/*
 * Copies len bytes to [off, off+len), which must lie within [base, base+cap).
 * Returns 0, -EINVAL (outside the window) or -ENOMEM.
 */
int rudp__sbuf_write(rudp_sbuf *b, uint64_t off, const void *src, size_t len);

/* rudp__sbuf_span's alloc */
enum {
    RUDP_SBUF_HELD = 0,  /* nothing allocated: NULL where no byte is held */
    RUDP_SBUF_ALLOC = 1, /* the chunk allocated if missing, perhaps a small one */
    RUDP_SBUF_WHOLE = 2  /* a whole chunk: a small one is widened first */
};

/*
 * A pointer to the contiguous memory holding offset `off` (allocating its
 * chunk as `alloc` says) and, in *len, how many bytes from there lie in
 * that chunk and the window. A small chunk's span ends with the small
 * block, and a later span past it (or RUDP_SBUF_WHOLE) moves its bytes:
 * a caller taking several spans for one copy asks RUDP_SBUF_WHOLE. Returns
 * NULL if off is outside the window or (RUDP_SBUF_HELD) not allocated, or
 * on allocation failure.
 */
uint8_t *rudp__sbuf_span(rudp_sbuf *b, uint64_t off, int alloc, size_t *len);

/* Copies [off, off+len) out; the range must be within the window and written. */
void rudp__sbuf_read(const rudp_sbuf *b, uint64_t off, void *dst, size_t len);

/*
 * Moves base forward to new_base (never back) and frees chunks wholly below
 * it. With `empty` set the caller asserts that no byte at or above new_base
 * is held, so every chunk can go.
 */
void rudp__sbuf_advance(rudp_sbuf *b, uint64_t new_base, int empty);

#endif
