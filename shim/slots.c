/*
 * slots.c: per-connection state the engine publishes for the application
 * threads (SO_ERROR, TCP_INFO, SIOCOUTQ, the linger flag), in memory mapped
 * MAP_SHARED so that a forked child reading an inherited connection sees the
 * parent engine's live values. A child allocates from a slab of its own; the
 * slabs it inherited stay readable, found by their owner's pid.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim.h"

#include "poison.h"

typedef struct slab {
    pid_t owner;
    shim_slot *slots;
} slab;

#define MAX_SLABS 8 /* ours plus inherited ones, through a few forks */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static slab slabs[MAX_SLABS];
static int nslabs;
static int keeper;             /* a keeper goes on with its parent's slab */
static uint32_t fresh;         /* slots never used yet start here */
static uint32_t *freelist;     /* process-private stack of free indexes */
static uint32_t nfree;
/* Slots of failed connections stay readable (SO_ERROR after EOF) and are
 * reused oldest first, only when nothing else is left. */
static uint32_t *retired;      /* ring */
static uint32_t ret_head, ret_count;

static shim_slot *map_slab(void)
{
    void *p = mmap(NULL, (size_t)SHIM_MAX_SLOTS * sizeof(shim_slot), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Our own slab, mapped on first use; caller holds mu. */
static shim_slot *own(void)
{
    pid_t me = getpid();
    if (nslabs && (slabs[nslabs - 1].owner == me || keeper))
        return slabs[nslabs - 1].slots;
    shim_slot *s = map_slab();
    if (!s)
        return NULL;
    if (nslabs == MAX_SLABS) {
        /* forget the oldest inherited slab */
        munmap(slabs[0].slots, (size_t)SHIM_MAX_SLOTS * sizeof(shim_slot));
        memmove(&slabs[0], &slabs[1], (MAX_SLABS - 1) * sizeof slabs[0]);
        nslabs--;
    }
    slabs[nslabs].owner = me;
    slabs[nslabs].slots = s;
    nslabs++;
    fresh = 0;
    nfree = 0;
    ret_head = ret_count = 0;
    if (!freelist)
        freelist = mmap(NULL, SHIM_MAX_SLOTS * sizeof *freelist, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (!retired)
        retired = mmap(NULL, SHIM_MAX_SLOTS * sizeof *retired, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (freelist == MAP_FAILED || retired == MAP_FAILED)
        return NULL;
    return s;
}

uint32_t shim_slot_alloc(uint64_t id)
{
    pthread_mutex_lock(&mu);
    shim_slot *s = own();
    uint32_t idx = UINT32_MAX;
    if (s) {
        if (nfree)
            idx = freelist[--nfree];
        else if (fresh < SHIM_MAX_SLOTS)
            idx = fresh++;
    }
    if (idx == UINT32_MAX && ret_count) {
        idx = retired[ret_head];
        ret_head = (ret_head + 1) % SHIM_MAX_SLOTS;
        ret_count--;
    }
    if (idx != UINT32_MAX) {
        shim_slot *x = &s[idx];
        atomic_store(&x->id, 0); /* invalid while being set up */
        atomic_store(&x->state, SHIM_SLOT_CONNECTING);
        atomic_store(&x->so_error, 0);
        atomic_store(&x->end_error, 0);
        atomic_store(&x->flags, 0);
        atomic_store(&x->unacked, 0);
        atomic_store(&x->unsent, 0);
        atomic_store(&x->tcp_state, 0);
        atomic_store(&x->efd_ino, 0);
        atomic_store(&x->efd, -1);
        atomic_store(&x->id, id);
    }
    pthread_mutex_unlock(&mu);
    return idx;
}

shim_slot *shim_slot_get_pid(uint32_t index, uint64_t id, pid_t owner)
{
    if (index >= SHIM_MAX_SLOTS)
        return NULL;
    shim_slot *found = NULL;
    pthread_mutex_lock(&mu);
    for (int i = nslabs; i-- > 0;) {
        if (slabs[i].owner == owner) {
            found = &slabs[i].slots[index];
            break;
        }
    }
    pthread_mutex_unlock(&mu);
    if (found && atomic_load(&found->id) != id)
        return NULL;
    return found;
}

pid_t shim_slot_owner(void)
{
    pthread_mutex_lock(&mu);
    own();
    pid_t p = nslabs ? slabs[nslabs - 1].owner : getpid();
    pthread_mutex_unlock(&mu);
    return p;
}

shim_slot *shim_slot_get(uint32_t index, uint64_t id)
{
    return shim_slot_get_pid(index, id, shim_slot_owner());
}

void shim_slots_keeper(void)
{
    /* Called in a keeper forked from an engine: the slab stays the one the
     * application's other processes know, under its creator's pid. */
    keeper = 1;
}

void shim_slot_retire(uint32_t index)
{
    pthread_mutex_lock(&mu);
    if (retired && index < fresh && ret_count < SHIM_MAX_SLOTS) {
        retired[(ret_head + ret_count) % SHIM_MAX_SLOTS] = index;
        ret_count++;
    }
    pthread_mutex_unlock(&mu);
}

void shim_slot_free(uint32_t index)
{
    pthread_mutex_lock(&mu);
    if (nslabs && (slabs[nslabs - 1].owner == getpid() || keeper) && index < fresh && freelist) {
        atomic_store(&slabs[nslabs - 1].slots[index].id, 0);
        atomic_store(&slabs[nslabs - 1].slots[index].state, SHIM_SLOT_FREE);
        freelist[nfree++] = index;
    }
    pthread_mutex_unlock(&mu);
}

void shim_slots_lock_renew(void)
{
    pthread_mutex_init(&mu, NULL);
    pthread_mutex_lock(&mu);
}

void shim_slots_atfork_prepare(void)
{
    pthread_mutex_lock(&mu);
}

void shim_slots_atfork_parent(void)
{
    pthread_mutex_unlock(&mu);
}

void shim_slots_atfork_child(void)
{
    /* The parent's slabs stay mapped (shared) for reading; own() maps a
     * fresh one for what this child creates. */
    pthread_mutex_unlock(&mu); /* locked by the prepare handler, in this thread */
}

int shim_slot_app_queued(shim_slot *s, int fd, int *q)
{
    int efd = atomic_load(&s->efd);
    uint64_t ino = atomic_load(&s->efd_ino);
    struct stat st;
    /* The inode tells a number the engine closed (and the kernel gave to
     * something else), or one a forked child or an exec'd image does not
     * share, from the engine's end itself. */
    if (efd >= 0 && ino && fstat(efd, &st) == 0 && (uint64_t)st.st_ino == ino &&
        real_ioctl(efd, SIOCINQ, q) == 0)
        return 0;
    return real_ioctl(fd, SIOCOUTQ, q);
}
