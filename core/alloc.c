/* alloc.c: the allocator the core uses; see rudp.h and alloc.h. */
#include "alloc.h"

#include <stdlib.h>

rudp_allocator rudp__alloc = {malloc, calloc, realloc, free};

void rudp_set_allocator(const rudp_allocator *a)
{
    static const rudp_allocator libc = {malloc, calloc, realloc, free};
    rudp__alloc = a ? *a : libc;
}
