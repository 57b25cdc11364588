/*
 * table.h: the one place uthash is configured. Out-of-memory inside a hash
 * operation is reported to the caller (HASH_NONFATAL_OOM), never an exit of
 * the host program: after HASH_ADD, an element whose hh.tbl is NULL was not
 * added.
 */
#ifndef RUDP_TABLE_H
#define RUDP_TABLE_H

#define HASH_NONFATAL_OOM 1

/* uthash's memory from the owning context's allocator (alloc.h), as all
 * of ours. uthash's hooks take no table, so a function that adds to or
 * deletes from a table (HASH_ADD, HASH_DELETE: they allocate and free the
 * table's buckets) first names the context's as table_mem:
 *     const rudp_mem *table_mem = &ctx->allocator;
 * (a lookup or iteration allocates nothing and needs none). */
#include "alloc.h"
#define uthash_malloc(sz) rudp__malloc(table_mem, sz)
#define uthash_free(ptr, sz) rudp__free(table_mem, ptr)

/* uthash's macros mix int widths; keep -Wconversion for our own code. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#include <uthash.h>
#pragma GCC diagnostic pop

/* Buckets grow once one holds 6 entries, not uthash's 10: a lookup then
 * walks 1.3-1.4 entries on average instead of 2.2-2.7 (1,750 to 20,000
 * random keys), each a cache miss into a connection's record, for 1.2-1.6
 * 16-byte buckets per entry instead of one per 2.4-3.4. Lower, the first
 * chance collisions of a small table double it again and again: at 5, up
 * to 2.3 buckets per entry; at 4, 5-7. Redefined after the include:
 * uthash.h defines it unconditionally, and its macros read it where they
 * expand. */
#undef HASH_BKT_CAPACITY_THRESH
#define HASH_BKT_CAPACITY_THRESH 6U

#endif
