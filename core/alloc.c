/* alloc.c: libc's allocator as a rudp_mem table, for contexts given none
 * (rudp.h, alloc.h). Read-only: it holds no state of the process. */
#include "alloc.h"

#include <stdlib.h>

static void *libc_malloc(size_t n, void *user)
{
    (void)user;
    return malloc(n);
}

static void *libc_calloc(size_t count, size_t size, void *user)
{
    (void)user;
    return calloc(count, size);
}

static void *libc_realloc(void *p, size_t n, void *user)
{
    (void)user;
    return realloc(p, n);
}

static void libc_free(void *p, void *user)
{
    (void)user;
    free(p);
}

const rudp_mem rudp__mem_libc = {NULL, libc_malloc, libc_calloc, libc_realloc, libc_free};
