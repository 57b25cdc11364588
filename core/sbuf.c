/* sbuf.c: chunked ring addressed by absolute offset; see sbuf.h. */
#include "sbuf.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

void rudp_sbuf_init(rudp_sbuf *b, uint64_t base, uint32_t cap)
{
    memset(b, 0, sizeof *b);
    b->base = base;
    b->cap = cap;
    /* A window of cap bytes starting anywhere touches at most
     * cap / CHUNK + 2 chunks; that many slots never alias. */
    b->nslots = cap / RUDP_SBUF_CHUNK + 2;
}

void rudp_sbuf_free(rudp_sbuf *b)
{
    if (b->slots) {
        for (uint32_t i = 0; i < b->nslots; i++)
            free(b->slots[i]);
        free(b->slots);
    }
    b->slots = NULL;
    b->nchunks = 0;
}

static uint8_t **slot_of(const rudp_sbuf *b, uint64_t off)
{
    return &b->slots[(off / RUDP_SBUF_CHUNK) % b->nslots];
}

int rudp_sbuf_write(rudp_sbuf *b, uint64_t off, const void *src, size_t len)
{
    if (off < b->base || off + len > b->base + b->cap)
        return -EINVAL;
    if (len && !b->slots) {
        b->slots = calloc(b->nslots, sizeof *b->slots);
        if (!b->slots)
            return -ENOMEM;
    }
    const uint8_t *p = src;
    while (len) {
        uint8_t **slot = slot_of(b, off);
        if (!*slot) {
            *slot = malloc(RUDP_SBUF_CHUNK);
            if (!*slot)
                return -ENOMEM;
            b->nchunks++;
        }
        size_t in = (size_t)(off % RUDP_SBUF_CHUNK);
        size_t n = RUDP_SBUF_CHUNK - in;
        if (n > len)
            n = len;
        memcpy(*slot + in, p, n);
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

uint8_t *rudp_sbuf_span(rudp_sbuf *b, uint64_t off, int alloc, size_t *len)
{
    *len = 0;
    if (off < b->base || off >= b->base + b->cap)
        return NULL;
    if (!b->slots) {
        if (!alloc)
            return NULL;
        b->slots = calloc(b->nslots, sizeof *b->slots);
        if (!b->slots)
            return NULL;
    }
    uint8_t **slot = slot_of(b, off);
    if (!*slot) {
        if (!alloc)
            return NULL;
        *slot = malloc(RUDP_SBUF_CHUNK);
        if (!*slot)
            return NULL;
        b->nchunks++;
    }
    size_t in = (size_t)(off % RUDP_SBUF_CHUNK);
    size_t n = RUDP_SBUF_CHUNK - in;
    uint64_t end = b->base + b->cap;
    if (off + n > end)
        n = (size_t)(end - off);
    *len = n;
    return *slot + in;
}

void rudp_sbuf_read(const rudp_sbuf *b, uint64_t off, void *dst, size_t len)
{
    assert(off >= b->base && off + len <= b->base + b->cap);
    uint8_t *p = dst;
    while (len) {
        const uint8_t *chunk = *slot_of(b, off);
        size_t in = (size_t)(off % RUDP_SBUF_CHUNK);
        size_t n = RUDP_SBUF_CHUNK - in;
        if (n > len)
            n = len;
        assert(chunk);
        memcpy(p, chunk + in, n);
        p += n;
        off += n;
        len -= n;
    }
}

void rudp_sbuf_advance(rudp_sbuf *b, uint64_t new_base, int empty)
{
    if (new_base < b->base)
        return;
    if (b->slots && empty) {
        rudp_sbuf_free(b);
    } else if (b->slots) {
        /* Free chunks wholly below new_base; the one holding it stays. */
        uint64_t first = b->base / RUDP_SBUF_CHUNK;
        uint64_t last = new_base / RUDP_SBUF_CHUNK;
        if (last - first > b->nslots)
            first = last - b->nslots;
        for (uint64_t k = first; k < last; k++) {
            uint8_t **slot = &b->slots[k % b->nslots];
            if (*slot) {
                free(*slot);
                *slot = NULL;
                b->nchunks--;
            }
        }
    }
    b->base = new_base;
}
