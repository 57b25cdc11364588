/*
 * alloc.c: the shim's own allocator, for every allocation of the shim and of
 * the core (the rudp_mem table every engine gives rudp_ctx_new,
 * shim_alloc_core) on every thread: the engine threads never call libc's
 * malloc().
 *
 * Why: a child made by a raw clone() system call (no fork(), procenv.c)
 * inherits every lock as it was at the clone. glibc resets its allocator's
 * locks only in its own fork(); if an engine thread was inside malloc() at
 * the clone, the arena lock it held stays taken in the child, which has no
 * such thread, and the child's first malloc() on that arena (its shim
 * starting an engine, pthread_create's thread-local storage, the program's
 * own) waits for ever. The engines only ever take this allocator's lock,
 * which the child makes anew (shim_alloc_lock_renew, from procenv.c's
 * renew()) as it makes the shim's other locks anew. Threads of the program
 * may still hold libc's locks at a clone, as they may without the shim.
 *
 * Shape: size classes from 16 bytes to 64 KiB at half-power-of-two steps
 * (16, 32, 48, 64, 96, 128, 192...: above 32 bytes at most a third of a
 * block goes unused, where power-of-two classes had the core's
 * connection, 2,968 bytes, take 4 KiB; B12's processes 13 % smaller at
 * each end, and on the VM that measured it each fresh page costs 8-16
 * us), each a free
 * list over blocks carved from mmap'd slabs (never returned: a freed block
 * waits for the next allocation of its class, as the core's chunk pool
 * already keeps its 16 KiB chunks); anything larger is an mmap of its own,
 * unmapped at free. Every block has a 16-byte header naming its class (or
 * its mapping's length), so any thread frees any block: commands made by
 * the program's threads and freed by an engine, datagrams handed from one
 * engine to another (forward.c). One mutex guards it all: the shim
 * allocates per connection and per command, not per datagram (the core's
 * buffers come from its chunk pool), so it is held briefly: a few loads and
 * stores. A fresh block's header is written after the lock is released, as
 * that first write into a new page is its page fault (a microsecond or
 * more), which under the lock made the program's connecting thread and the
 * engines queue on it (B12's 3,500 connects at once: a futex wait or wake
 * in every other connect). The lock is adaptive (spins a little before it
 * sleeps), for the same reason.
 *
 * fork(): the lock is taken in the prepare handler (registered before the
 * shim's others, so it is taken last, after the engines are parked) and
 * released in parent and child, as glibc does for its own arenas.
 *
 * Under AddressSanitizer and ThreadSanitizer (make asan, make tsan) the
 * functions are libc's, which those tools replace with their own: ASan
 * then still finds overflows, use after free and leaks in shim and core
 * memory, and TSan sees every allocation. A raw clone's child may hang
 * there as before; the sanitizers are for finding bugs, not for that.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

/* No poison.h: under the sanitizers these are libc's malloc and free. */

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)

void *shim_malloc(size_t n) { return malloc(n); }
void *shim_calloc(size_t c, size_t n) { return calloc(c, n); }
void *shim_realloc(void *p, size_t n) { return realloc(p, n); }
void shim_free(void *p) { free(p); }
void shim_alloc_init(void) {}
void shim_alloc_lock_renew(void) {}
int shim_alloc_held(void) { return 0; } /* libc's: not ours to know */

#else

#define HDR 16u                  /* header before each block; keeps 16-byte alignment */
#define MIN_SHIFT 4u             /* the smallest class: 16 bytes */
#define NCLASS 24u               /* 16 B, then 32, 48, 64, 96 ... 64 KiB */
#define SLAB_MIN (256u * 1024u)  /* a slab holds at least this many bytes ... */
#define SLAB_BLOCKS 8u           /* ... and at least this many blocks */
#define LARGE UINT32_MAX         /* the class of a block mapped on its own */
#define FILL_MAX 4096u           /* classes whose later slabs are faulted in at once */

typedef struct hdr {
    uint32_t cls;   /* size class, or LARGE */
    uint32_t pad;
    size_t maplen;  /* LARGE: the whole mapping's length, header included */
} hdr;

_Static_assert(sizeof(hdr) == HDR, "the header keeps blocks 16-byte aligned");

static shim_mutex mu = SHIM_MUTEX_INIT(PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP);
/* The thread holding mu (0: none), for shim_alloc_held(): a signal handler
 * that interrupted the allocator must not wait for it (engine/appsend.c). */
static _Atomic unsigned long holder;

static void take(void)
{
    shim_mutex_lock(&mu);
    atomic_store_explicit(&holder, (unsigned long)pthread_self(), memory_order_relaxed);
}

static void give(void)
{
    atomic_store_explicit(&holder, 0, memory_order_relaxed);
    shim_mutex_unlock(&mu);
}

int shim_alloc_held(void)
{
    return atomic_load_explicit(&holder, memory_order_relaxed) == (unsigned long)pthread_self();
}

static struct {
    void *head;           /* freed blocks, linked through their first bytes */
    char *next, *end;     /* the current slab's part not yet carved */
    unsigned slabs;       /* how many it has had */
} cls[NCLASS];

/* 16, then 2^k and 1.5 * 2^k in turn from 32: every class a multiple of
 * 16, so blocks keep 16-byte alignment. */
static size_t class_size(uint32_t c)
{
    if (c == 0)
        return (size_t)1 << MIN_SHIFT;
    size_t base = (size_t)1 << (MIN_SHIFT + (c + 1) / 2);
    return c % 2 ? base : base + base / 2;
}

/* The smallest class that holds n bytes, or NCLASS if none does. */
static uint32_t class_of(size_t n)
{
    uint32_t c = 0;
    while (c < NCLASS && class_size(c) < n)
        c++;
    return c;
}

static void *map(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void *large(size_t n)
{
    size_t page = 4096;
    if (n > SIZE_MAX - HDR - page) {
        errno = ENOMEM;
        return NULL;
    }
    size_t len = (n + HDR + page - 1) & ~(page - 1);
    hdr *h = map(len);
    if (!h) {
        errno = ENOMEM;
        return NULL;
    }
    h->cls = LARGE;
    h->maplen = len;
    return (char *)h + HDR;
}

/* A block of class c, under mu; *fresh: carved from a slab, its header
 * not yet written (the caller writes it once mu is released); *fill: a
 * new slab the caller faults in once mu is released (its length in
 * *fill_len), or NULL. */
static void *carve(uint32_t c, int *fresh, char **fill, size_t *fill_len)
{
    size_t stride = class_size(c) + HDR;
    *fresh = 0;
    *fill = NULL;
    if (cls[c].head) {
        void *b = cls[c].head;
        memcpy(&cls[c].head, b, sizeof(void *));
        return b;
    }
    if ((size_t)(cls[c].end - cls[c].next) < stride) {
        size_t len = stride * SLAB_BLOCKS > SLAB_MIN ? stride * SLAB_BLOCKS : SLAB_MIN;
        char *s = map(len);
        if (!s)
            return NULL;
        cls[c].next = s; /* the old slab's tail (< one block) is left unused */
        cls[c].end = s + len;
        if (cls[c].slabs++ > 0 && class_size(c) <= FILL_MAX) {
            *fill = s;
            *fill_len = len;
        }
    }
    hdr *h = (hdr *)cls[c].next;
    cls[c].next += stride;
    *fresh = 1;
    return (char *)h + HDR;
}

/* n bytes; *zero: they are zero already (a mapping's, never written) */
static void *alloc(size_t n, int *zero)
{
    uint32_t c = class_of(n ? n : 1);
    *zero = 1;
    if (c == NCLASS)
        return large(n);
    int fresh;
    char *fill;
    size_t fill_len = 0;
    take();
    void *b = carve(c, &fresh, &fill, &fill_len);
    give();
    /* A class's second slab and those after it are faulted in at once, in
     * one call, outside the lock: a class that filled one slab is carving
     * many blocks (B12's 3,500 connections: 3.7 page faults each at the
     * client, 13,000 in all, at several microseconds each in a VM), while
     * the first slab of each class stays touched only as far as it is
     * used (a process with one connection does not hold 24 classes' whole
     * slabs). Not where the kernel lacks MADV_POPULATE_WRITE (before
     * 5.14: the pages fault in as they are touched, as before), nor under
     * a seccomp filter, which may kill for a call it does not expect. */
    if (fill && !shim_sandboxed_known())
        (void)madvise(fill, fill_len, MADV_POPULATE_WRITE);
    *zero = fresh;
    if (!b)
        errno = ENOMEM;
    else if (fresh) /* the block is ours alone: its first touch outside the lock */
        ((hdr *)((char *)b - HDR))->cls = c;
    return b;
}

void *shim_malloc(size_t n)
{
    int zero;
    return alloc(n, &zero);
}

void *shim_calloc(size_t count, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(count, size, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    /* A block carved from a slab for the first time is zero, as a fresh
     * mapping is: the memset would only fault its pages in (a connection's
     * core state, B12's 3,500 at once); a reused block is not. */
    int zero;
    void *p = alloc(n, &zero);
    if (p && !zero)
        memset(p, 0, n);
    return p;
}

static size_t usable(const void *p)
{
    const hdr *h = (const hdr *)((const char *)p - HDR);
    return h->cls == LARGE ? h->maplen - HDR : class_size(h->cls);
}

void shim_free(void *p)
{
    if (!p)
        return;
    hdr *h = (hdr *)((char *)p - HDR);
    if (h->cls == LARGE) {
        munmap(h, h->maplen);
        return;
    }
    uint32_t c = h->cls;
    take();
    memcpy(p, &cls[c].head, sizeof(void *));
    cls[c].head = p;
    give();
}

void *shim_realloc(void *p, size_t n)
{
    if (!p)
        return shim_malloc(n);
    size_t have = usable(p);
    if (n <= have && (n > have / 2 || have <= class_size(0)))
        return p; /* fits, and not far too big */
    void *q = shim_malloc(n);
    if (!q)
        return NULL; /* p stays as it was, as realloc() leaves it */
    memcpy(q, p, n < have ? n : have);
    shim_free(p);
    return q;
}

static void lock(void)
{
    take();
}

static void unlock(void)
{
    give();
}

void shim_alloc_init(void)
{
    pthread_atfork(lock, unlock, unlock);
}

/* A raw clone's child (procenv.c): the lock may have been held at the
 * clone by a thread this process does not have, in the middle of changing
 * a list. The lists are dropped (what they kept is lost to this process)
 * and the lock made anew; blocks in use stay valid, and freeing one later
 * puts it on the new lists. */
void shim_alloc_lock_renew(void)
{
    memset(cls, 0, sizeof cls);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(&mu.m, &a);
    pthread_mutexattr_destroy(&a);
    atomic_store(&holder, 0);
}

#endif

/* The core's view of the functions above: rudp_mem's take a user pointer,
 * which the shim's one allocator does not need. */
static void *core_malloc(size_t n, void *user)
{
    (void)user;
    return shim_malloc(n);
}

static void *core_calloc(size_t count, size_t size, void *user)
{
    (void)user;
    return shim_calloc(count, size);
}

static void *core_realloc(void *p, size_t n, void *user)
{
    (void)user;
    return shim_realloc(p, n);
}

static void core_free(void *p, void *user)
{
    (void)user;
    shim_free(p);
}

const rudp_mem *shim_alloc_core(void)
{
    static const rudp_mem mem = {NULL, core_malloc, core_calloc, core_realloc, core_free};
    return &mem;
}
