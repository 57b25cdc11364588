/*
 * front.c: the front end in use (state.h says what a front end is), and
 * the record calls of the layers above, passed on to it.
 *
 * The choice is one atomic word: the ops' address, and in its low bit
 * whether a record was put through them (ops tables are aligned, so the
 * bit is free). A put sets the bit; a change of front end succeeds only
 * while it is clear, in the same compare-and-swap, so a record can never
 * be put through one front end and looked up through another, whatever
 * threads race. Read without a lock by every call: one atomic load.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

#include "state.h"

#include "base/poison.h"

#define FROZEN ((uintptr_t)1)

static _Atomic uintptr_t word = (uintptr_t)&shim_front_local;

const shim_front_ops *shim_front(void)
{
    return (const shim_front_ops *)(atomic_load_explicit(&word, memory_order_acquire) & ~FROZEN);
}

int shim_front_set(const shim_front_ops *ops)
{
    if (!ops)
        ops = &shim_front_local;
    uintptr_t w = atomic_load(&word);
    do {
        if (w & FROZEN)
            return (w & ~FROZEN) == (uintptr_t)ops ? 0 : -EBUSY;
    } while (!atomic_compare_exchange_weak(&word, &w, (uintptr_t)ops));
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
    uintptr_t w = atomic_load_explicit(&word, memory_order_acquire);
    /* no change of front end from now on: frozen on the one put through */
    while (!(w & FROZEN) && !atomic_compare_exchange_weak(&word, &w, w | FROZEN))
        ;
    ((const shim_front_ops *)(w & ~FROZEN))->put(r);
}

void shim_fd_update(const shim_fd *r)
{
    const shim_front_ops *f = shim_front();
    if (r->ino && f->update)
        f->update(r);
    else
        shim_fd_put(r);
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

/* The front end's own lock, if it has one the fork handlers do not take
 * already (the local one's is fdtab.c's, in its own place). */
void shim_front_atfork_prepare(void)
{
    if (shim_front()->fork_prepare)
        shim_front()->fork_prepare();
}

void shim_front_atfork_parent(void)
{
    if (shim_front()->fork_release)
        shim_front()->fork_release();
}

void shim_front_atfork_child(void)
{
    if (shim_front()->fork_release)
        shim_front()->fork_release();
}

void shim_front_lock_renew(void)
{
    if (shim_front()->lock_renew)
        shim_front()->lock_renew();
}
