/*
 * table.h: the one place uthash is configured. Out-of-memory inside a hash
 * operation is reported to the caller (HASH_NONFATAL_OOM), never an exit of
 * the host program: after HASH_ADD, an element whose hh.tbl is NULL was not
 * added.
 */
#ifndef RUDP_TABLE_H
#define RUDP_TABLE_H

#define HASH_NONFATAL_OOM 1

/* uthash's memory from the core's allocator (alloc.h), as all of ours. */
#include "alloc.h"
#define uthash_malloc(sz) rudp__malloc(sz)
#define uthash_free(ptr, sz) rudp__free(ptr)

/* uthash's macros mix int widths; keep -Wconversion for our own code. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#include <uthash.h>
#pragma GCC diagnostic pop

#endif
