/*
 * fuzz.h: what a libFuzzer target of tests/fuzz_*.c shares: CHECK, which
 * aborts so that libFuzzer keeps the input, and a reader of the input
 * that gives 0 once it is used up. Header-only: the Makefile builds each
 * target from its one file and core/ (fuzz_conn and fuzz_keyed with
 * tests/lib_fuzzconn.c too).
 */
#ifndef TESTS_FUZZ_H
#define TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                   \
        }                                                                              \
    } while (0)

typedef struct rd {
    const uint8_t *p;
    size_t n;
} rd;

static inline uint8_t u8(rd *r)
{
    if (!r->n)
        return 0;
    r->n--;
    return *r->p++;
}

/* ... and the next 2, 4 or 8 bytes, most significant first */
static inline uint16_t u16(rd *r)
{
    uint16_t hi = u8(r);
    return (uint16_t)(hi << 8 | u8(r));
}

static inline uint32_t u32(rd *r)
{
    uint32_t hi = u16(r);
    return hi << 16 | u16(r);
}

static inline uint64_t u64(rd *r)
{
    uint64_t hi = u32(r);
    return hi << 32 | u32(r);
}

#endif
