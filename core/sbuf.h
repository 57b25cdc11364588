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

/* Free chunks kept for reuse, shared by the buffers of one context: a bulk
 * flow frees a chunk and allocates one per 16 KiB, and returning each to
 * malloc cost the receiver a quarter of its CPU in page faults and
 * madvise (perf, 2.7 Gbit/s over veth). At most `max` are kept. */
#define RUDP_CHUNK_POOL_MAX 128

typedef struct rudp_chunk_pool {
    void *head;   /* singly linked through each chunk's first bytes */
    uint32_t n, max;
    const rudp_mem *mem; /* its buffers' (alloc.h), the chunks' allocator;
                            NULL: libc's */
} rudp_chunk_pool;

/* Frees every chunk the pool keeps. */
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
    const rudp_mem *mem;   /* where the ring and chunks come from (alloc.h) */
} rudp_sbuf;

/* Sets up an empty buffer whose memory comes from mem (NULL: libc's),
 * which must outlive it; allocates nothing yet. */
void rudp__sbuf_init(rudp_sbuf *b, const rudp_mem *mem, uint64_t base, uint32_t cap);

void rudp__sbuf_free(rudp_sbuf *b);

/* Bytes of memory the buffer holds (chunks and their ring). */
uint64_t rudp__sbuf_memory(const rudp_sbuf *b);

/* How many chunks writing [off, off+len) would allocate (the range must lie
 * within the window). */
uint32_t rudp__sbuf_missing(const rudp_sbuf *b, uint64_t off, size_t len);

/*
 * Copies len bytes to [off, off+len), which must lie within [base, base+cap).
 * Returns 0, -EINVAL (outside the window) or -ENOMEM.
 */
int rudp__sbuf_write(rudp_sbuf *b, uint64_t off, const void *src, size_t len);

/*
 * A pointer to the contiguous memory holding offset `off` (allocating its
 * chunk when `alloc` is set) and, in *len, how many bytes from there lie in
 * that chunk and the window. Returns NULL if off is outside the window or
 * (without alloc) not allocated, or on allocation failure.
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
