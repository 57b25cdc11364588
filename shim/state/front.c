/*
 * front.c: the front end in use (state.h says what a front end is), and
 * the record calls of the layers above, passed on to it.
 *
 * The pointer is set once, before any record exists (the supervisor
 * registers at its start, a unit test at its own), and read without a lock
 * by every call after: an atomic load, so that a thread started before the
 * setting sees one front end or the other, never a torn pointer.
 */
#include <errno.h>
#include <stdatomic.h>

#include "state.h"

#include "base/poison.h"

static _Atomic(const shim_front_ops *) front = &shim_front_local;
/* a record was put through the front end in use: it stays */
static atomic_int used;

const shim_front_ops *shim_front(void)
{
    return atomic_load_explicit(&front, memory_order_acquire);
}

int shim_front_set(const shim_front_ops *ops)
{
    if (!ops)
        ops = &shim_front_local;
    if (atomic_load(&used) && ops != shim_front()) {
        errno = EBUSY;
        return -1;
    }
    atomic_store_explicit(&front, ops, memory_order_release);
    SHIM_LOG(RUDP_LOG_DEBUG, "front end: %s", ops->name);
    return 0;
}

int shim_front_can(unsigned cap)
{
    return (shim_front()->caps & cap) == cap;
}

int shim_fd_get(int fd, shim_fd *out)
{
    return shim_front()->get(fd, out, 0);
}

int shim_fd_tryget(int fd, shim_fd *out)
{
    return shim_front()->get(fd, out, 1);
}

void shim_fd_put(const shim_fd *r)
{
    if (!atomic_load_explicit(&used, memory_order_relaxed))
        atomic_store(&used, 1);
    shim_front()->put(r);
}

void shim_fd_del(int fd)
{
    shim_front()->del(fd);
}

void shim_fd_replaced(uint64_t ino)
{
    if (ino)
        shim_front()->replaced(ino);
}

int shim_fd_list_fallback(int *out, int max)
{
    return shim_front()->list_fallback(out, max);
}

int shim_fd_list_range(int *out, int max, unsigned first, unsigned last)
{
    return shim_front()->list_range(out, max, first, last);
}
