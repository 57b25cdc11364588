/*
 * state/table.h: uthash for the shim's own tables (fdtab.c), private to
 * state/. Configured as core/table.h configures it for the core, but on
 * the shim's allocator (base/alloc.c) named directly: core's allocator
 * hook is core's internal, and the engines give the core the same
 * allocator anyway (shim_alloc_core). Out-of-memory inside a hash operation is
 * reported to the caller (HASH_NONFATAL_OOM), never an exit of the host
 * program: after HASH_ADD, an element whose hh.tbl is NULL was not added.
 */
#ifndef SHIM_STATE_TABLE_H
#define SHIM_STATE_TABLE_H

#include "base/base.h"

#define HASH_NONFATAL_OOM 1
#define uthash_malloc(sz) shim_malloc(sz)
#define uthash_free(ptr, sz) shim_free(ptr)

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
