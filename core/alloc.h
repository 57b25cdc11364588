/*
 * alloc.h: the core's allocation calls, through a context's table
 * (rudp_mem in rudp.h, given to rudp_ctx_new; libc's when none was). Every
 * allocation in core/ and in uthash (table.h) goes through these, with the
 * table of the context that owns the memory: a connection reaches it as
 * &c->ctx->allocator, a module's struct (ranges, recovery, send buffers,
 * the strike register, the AEAD table) keeps the pointer it was set up
 * with. Nothing here is process-wide but the read-only libc table.
 */
#ifndef RUDP_ALLOC_H
#define RUDP_ALLOC_H

#include <stddef.h>

#include "rudp.h"

/* libc's malloc, calloc, realloc and free: what NULL stands for. */
extern const rudp_mem rudp__mem_libc;

static inline const rudp_mem *rudp__mem_or_libc(const rudp_mem *m)
{
    return m ? m : &rudp__mem_libc;
}

static inline void *rudp__malloc(const rudp_mem *m, size_t n)
{
    return m->malloc(n, m->user);
}

static inline void *rudp__calloc(const rudp_mem *m, size_t c, size_t n)
{
    return m->calloc(c, n, m->user);
}

static inline void *rudp__realloc(const rudp_mem *m, void *p, size_t n)
{
    return m->realloc(p, n, m->user);
}

static inline void rudp__free(const rudp_mem *m, void *p)
{
    m->free(p, m->user);
}

#endif
