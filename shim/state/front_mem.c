/*
 * front_mem.c: the memory front end (state.h): the application's sockets
 * as a table in memory, a record per number, with no system call and no
 * inode check, so that the shim's unit tests (tests/shim/) drive the
 * layers above it with fd numbers of their own making. Numbers past
 * MEM_FDS are not recorded. The tests run one at a time: a lock keeps the
 * table whole should an engine thread read it meanwhile.
 */
#include <pthread.h>
#include <string.h>

#include "state.h"

#include "base/poison.h"

#define MEM_FDS 1024

static shim_mutex mu = SHIM_MUTEX_INITIALIZER;
static shim_fd recs[MEM_FDS];
static unsigned char held[MEM_FDS];

static int mem_get(int fd, shim_fd *out, int try)
{
    if (fd < 0 || fd >= MEM_FDS)
        return 0;
    if (!try)
        shim_mutex_lock(&mu);
    else if (shim_mutex_trylock(&mu) != 0)
        return -1;
    int found = held[fd];
    if (found)
        *out = recs[fd];
    shim_mutex_unlock(&mu);
    return found;
}

static void mem_put(const shim_fd *r)
{
    if (r->fd < 0 || r->fd >= MEM_FDS)
        return;
    shim_mutex_lock(&mu);
    recs[r->fd] = *r;
    held[r->fd] = 1;
    shim_mutex_unlock(&mu);
}

static void mem_del(int fd)
{
    if (fd < 0 || fd >= MEM_FDS)
        return;
    shim_mutex_lock(&mu);
    held[fd] = 0;
    shim_mutex_unlock(&mu);
}

/* A number's record is replaced by the next put at it, as locally. */
static void mem_replaced(uint64_t ino)
{
    (void)ino;
}

/* The numbers in [first, last] holding a record (only fallbacks' if
 * fallback_only), in order, at most max. */
static int mem_list(int *out, int max, int fallback_only, unsigned first, unsigned last)
{
    int n = 0;
    shim_mutex_lock(&mu);
    for (int fd = 0; fd < MEM_FDS && n < max; fd++) {
        if (!held[fd] || (unsigned)fd < first || (unsigned)fd > last)
            continue;
        if (fallback_only && !(recs[fd].kind == SHIM_FD_BRIDGED && recs[fd].fallback))
            continue;
        out[n++] = fd;
    }
    shim_mutex_unlock(&mu);
    return n;
}

static int mem_list_fallback(int *out, int max)
{
    return mem_list(out, max, 1, 0, MEM_FDS);
}

static int mem_list_range(int *out, int max, unsigned first, unsigned last)
{
    return mem_list(out, max, 0, first, last);
}

const shim_front_ops shim_front_memory = {
    .name = "memory",
    .caps = SHIM_FRONT_OWNS_NUMBERS | SHIM_FRONT_SEES_CLOSE,
    .get = mem_get,
    .put = mem_put,
    .del = mem_del,
    .replaced = mem_replaced,
    .list_fallback = mem_list_fallback,
    .list_range = mem_list_range,
    .place = shim_fd_swap_in, /* the tests' numbers are real fds of theirs */
};
