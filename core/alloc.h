/*
 * alloc.h: the core's allocation calls, through the allocator the embedder
 * set (rudp_set_allocator in rudp.h; libc's by default). Every allocation in
 * core/ and in uthash (table.h) goes through these.
 */
#ifndef RUDP_ALLOC_H
#define RUDP_ALLOC_H

#include <stddef.h>

#include "rudp.h"

extern rudp_allocator rudp__alloc;

static inline void *rudp__malloc(size_t n) { return rudp__alloc.malloc(n); }
static inline void *rudp__calloc(size_t c, size_t n) { return rudp__alloc.calloc(c, n); }
static inline void *rudp__realloc(void *p, size_t n) { return rudp__alloc.realloc(p, n); }
static inline void rudp__free(void *p) { rudp__alloc.free(p); }

#endif
