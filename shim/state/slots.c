/*
 * slots.c: per-connection state the engine publishes for the application
 * threads (SO_ERROR, TCP_INFO, SIOCOUTQ, the linger flag), in memory mapped
 * MAP_SHARED so that a forked child reading an inherited connection sees the
 * parent engine's live values. A child allocates from a slab of its own; the
 * slabs it inherited stay readable, found by their owner's pid.
 *
 * A slab is a memfd, so that it outlives exec too: the engine goes on in a
 * keeper (keeper.c), and the new image, which inherits the connections,
 * maps the same memory. The memfd is close-on-exec; to an image that
 * runs the shim (newimage.c) our exec has the keeper pass copies
 * (execpass.c), and posix_spawn passes copies whose flag its child clears
 * (spawn.c), their numbers in RUDP_EXEC_SLABS; the new image's shim maps
 * them at start-up, makes them close-on-exec again and removes the
 * variable. No other process can
 * open it: a memfd has no path, and /proc/PID/fd/N of a holder is open
 * only to those who may ptrace it (proc_fd_access_allowed(),
 * PTRACE_MODE_READ), who could read its memory anyway. The first page
 * holds a magic and the owner's pid; the size is sealed (F_SEAL_SHRINK,
 * F_SEAL_GROW: no SIGBUS under a mapping) and the seals too.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state.h"

#include "base/poison.h"

#define SLAB_MAGIC 0x72756470736c6162ull /* "rudpslab" */
#define SLAB_HEAD 4096u                  /* the header page, before the slots */
#define SLAB_BYTES ((size_t)SLAB_HEAD + (size_t)SHIM_MAX_SLOTS * sizeof(shim_slot))
#define SLAB_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
#define EXEC_VAR "RUDP_EXEC_SLABS"

/* keepers: the pids of the keepers that serve this slab's connections and
 * listeners (0: a free entry). Only our processes can write it (the memfd
 * has no path), so a connection to a listener from a pid found here comes
 * from our engine: the proof a keeper shows where it could not call
 * listen() on the listener (ident.c). */
#define SLAB_KEEPERS 32
typedef struct slab_head {
    uint64_t magic;
    int32_t owner;
    _Atomic int32_t keepers[SLAB_KEEPERS];
} slab_head;

typedef struct slab {
    pid_t owner;
    int fd;          /* its memfd (close-on-exec, high), -1 if none */
    uint64_t ino;    /* the memfd's inode: a dup2() over fd is told by it */
    shim_slot *slots;
} slab;

#define MAX_SLABS SHIM_SLABS_MAX

static shim_mutex mu = SHIM_MUTEX_INITIALIZER;
static slab slabs[MAX_SLABS];
static int nslabs;
static int keeper;             /* a keeper goes on with its parent's slab */
static shim_slot *mine;        /* the slab own() allocates from, NULL before */
static pid_t mine_pid;         /* ... made by this process (names carry it) */
static uint32_t fresh;         /* slots never used yet start here */
static uint32_t *freelist;     /* process-private stack of free indexes */
static uint32_t nfree;
/* Slots of failed connections stay readable (SO_ERROR after EOF) and are
 * reused oldest first, only when nothing else is left. */
static uint32_t *retired;      /* ring */
static uint32_t ret_head, ret_count;

/* A new slab for owner: a sealed memfd, or without memfd_create (an old
 * kernel, a seccomp filter) anonymous shared memory, which exec drops. */
static void *map_slab(pid_t owner, int *fdp)
{
    int fd = memfd_create("rudp-slots", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    void *p = MAP_FAILED;
    if (fd >= 0 && ftruncate(fd, (off_t)SLAB_BYTES) == 0 &&
        real_fcntl(fd, F_ADD_SEALS, SLAB_SEALS) == 0)
        p = mmap(NULL, SLAB_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    if (p == MAP_FAILED) {
        if (fd >= 0)
            real_close(fd);
        fd = -1;
        p = mmap(NULL, SLAB_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
        if (p == MAP_FAILED)
            return NULL;
    }
    slab_head *h = p;
    h->owner = (int32_t)owner;
    h->magic = SLAB_MAGIC;
    *fdp = fd >= 0 ? shim_fd_move_high(fd) : -1;
    return p;
}

static void forget_slab(int i)
{
    munmap((char *)slabs[i].slots - SLAB_HEAD, SLAB_BYTES);
    if (slabs[i].fd >= 0 && shim_fd_ino(slabs[i].fd) == slabs[i].ino)
        real_close(slabs[i].fd);
    memmove(&slabs[i], &slabs[i + 1], (size_t)(nslabs - i - 1) * sizeof slabs[0]);
    nslabs--;
}

/* Adds a slab (caller holds mu), forgetting the oldest one if full. */
static void add_slab(pid_t owner, void *base, int fd)
{
    if (nslabs == MAX_SLABS)
        forget_slab(0);
    slabs[nslabs].owner = owner;
    slabs[nslabs].slots = (shim_slot *)((char *)base + SLAB_HEAD);
    slabs[nslabs].fd = fd;
    slabs[nslabs].ino = shim_fd_ino(fd);
    nslabs++;
}

/* Our own slab, mapped on first use; caller holds mu. A keeper goes on
 * with the slab of the process it was forked from. An exec keeps the pid,
 * so a slab adopted from the image before has our pid and is still not
 * ours: its keeper allocates from it. */
static shim_slot *own(void)
{
    pid_t me = shim_procenv_self();
    if (mine && (mine_pid == me || keeper || shim_procenv_shared()))
        return mine; /* a CLONE_VM child's memory is its parent's: so is the slab */
    int fd;
    void *base = map_slab(me, &fd);
    if (!base)
        return NULL;
    add_slab(me, base, fd);
    shim_slot *s = slabs[nslabs - 1].slots;
    mine = s;
    mine_pid = me;
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
    shim_mutex_lock(&mu);
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
        atomic_store(&x->sndbuf_want, 0);
        atomic_store(&x->app_fd, -1);
        atomic_store(&x->app_ino, 0);
        atomic_store(&x->out_gen, 0);
        atomic_store(&x->seen_empty, 0);
        atomic_store(&x->rxmode, 0);
        atomic_store(&x->kept, 0);
        atomic_store(&x->kept_unread, 0);
        atomic_store(&x->ep_note, 0);
        atomic_store(&x->ep_key, 0);
        atomic_store(&x->ring_len, 0); /* a record of the slot's last connection may
                                        * have been dropped without it */
        atomic_store(&x->id, id);
    }
    shim_mutex_unlock(&mu);
    return idx;
}

shim_slot *shim_slot_get_pid(uint32_t index, uint64_t id, pid_t owner)
{
    if (index >= SHIM_MAX_SLOTS)
        return NULL;
    shim_slot *found = NULL;
    shim_mutex_lock(&mu);
    /* After an exec two slabs may have our pid (the adopted one, whose
     * keeper serves the inherited connections, and our own): the id
     * tells which holds the connection. */
    for (int i = nslabs; i-- > 0;) {
        if (slabs[i].owner == owner && atomic_load(&slabs[i].slots[index].id) == id) {
            found = &slabs[i].slots[index];
            break;
        }
    }
    shim_mutex_unlock(&mu);
    return found;
}

int shim_slot_slab_known(pid_t owner)
{
    int known = 0;
    shim_mutex_lock(&mu);
    for (int i = 0; i < nslabs && !known; i++)
        known = slabs[i].owner == owner;
    shim_mutex_unlock(&mu);
    return known;
}

pid_t shim_slot_owner(void)
{
    shim_mutex_lock(&mu);
    own();
    pid_t p = mine ? mine_pid : shim_procenv_self();
    shim_mutex_unlock(&mu);
    return p;
}

shim_slot *shim_slot_tryget_pid(uint32_t index, uint64_t id, pid_t owner)
{
    if (index >= SHIM_MAX_SLOTS || shim_mutex_trylock(&mu) != 0)
        return NULL;
    shim_slot *found = NULL;
    for (int i = nslabs; i-- > 0 && !found;)
        if (slabs[i].owner == owner && atomic_load(&slabs[i].slots[index].id) == id)
            found = &slabs[i].slots[index];
    shim_mutex_unlock(&mu);
    return found;
}

shim_slot *shim_slot_get(uint32_t index, uint64_t id)
{
    return shim_slot_get_pid(index, id, shim_slot_owner());
}

void shim_slots_keeper(void)
{
    /* Called in a keeper forked from an engine: the slab stays the one the
     * application's other processes know, under its creator's pid. The
     * keeper closed the memfds (it keeps only the engine's fds); the
     * mappings stay. */
    keeper = 1;
    int32_t me = (int32_t)getpid();
    for (int i = 0; i < nslabs; i++) {
        slabs[i].fd = -1;
        /* Enter this keeper in a free entry, or one whose keeper is gone. */
        slab_head *h = (slab_head *)(void *)((char *)slabs[i].slots - SLAB_HEAD);
        for (int k = 0; k < SLAB_KEEPERS; k++) {
            int32_t was = atomic_load(&h->keepers[k]);
            if ((was == 0 || (kill(was, 0) < 0 && errno == ESRCH)) &&
                atomic_compare_exchange_strong(&h->keepers[k], &was, me))
                break;
        }
    }
}

void shim_slots_keeper_done(void)
{
    int32_t me = (int32_t)getpid();
    shim_mutex_lock(&mu);
    for (int i = 0; i < nslabs; i++) {
        slab_head *h = (slab_head *)(void *)((char *)slabs[i].slots - SLAB_HEAD);
        for (int k = 0; k < SLAB_KEEPERS; k++) {
            int32_t was = me;
            atomic_compare_exchange_strong(&h->keepers[k], &was, 0);
        }
    }
    shim_mutex_unlock(&mu);
}

int shim_slots_is_keeper(pid_t owner, pid_t pid)
{
    int r = 0;
    if (pid <= 0)
        return 0;
    shim_mutex_lock(&mu);
    for (int i = 0; i < nslabs && !r; i++) {
        if (slabs[i].owner != owner)
            continue;
        const slab_head *h = (const slab_head *)(const void *)((const char *)slabs[i].slots - SLAB_HEAD);
        for (int k = 0; k < SLAB_KEEPERS && !r; k++)
            r = atomic_load(&h->keepers[k]) == (int32_t)pid;
    }
    shim_mutex_unlock(&mu);
    return r;
}

void shim_slot_retire(uint32_t index)
{
    shim_mutex_lock(&mu);
    if (retired && index < fresh && ret_count < SHIM_MAX_SLOTS) {
        retired[(ret_head + ret_count) % SHIM_MAX_SLOTS] = index;
        ret_count++;
    }
    shim_mutex_unlock(&mu);
}

int shim_slot_rx_mode(shim_slot *s, uint32_t *m)
{
    uint32_t v = atomic_load_explicit(&s->rxmode, memory_order_acquire);
    *m = v;
    if ((v & (SHIM_RX_KNOWN | SHIM_RX_FOREIGN)) == SHIM_RX_KNOWN)
        return (v & SHIM_RX_PLAIN) != 0;
    return -1;
}

void shim_slot_rx_note(shim_slot *s, uint32_t m, int plain, int low1)
{
    if (m & (SHIM_RX_KNOWN | SHIM_RX_FOREIGN))
        return;
    /* only if nothing changed since m was read (the kernel's answer may
     * be from before the change) */
    uint32_t v = m | SHIM_RX_KNOWN | (plain ? SHIM_RX_PLAIN : 0) | (low1 ? SHIM_RX_LOW1 : 0);
    atomic_compare_exchange_strong_explicit(&s->rxmode, &m, v, memory_order_release,
                                            memory_order_relaxed);
}

int shim_slot_keepable(shim_slot *s)
{
    uint32_t v = atomic_load_explicit(&s->rxmode, memory_order_acquire);
    return (v & (SHIM_RX_KNOWN | SHIM_RX_FOREIGN | SHIM_RX_LOW1)) == (SHIM_RX_KNOWN | SHIM_RX_LOW1);
}

/* ep_note: registrations (bits 0-11), a writer's mark (12), poisoned (13),
 * a count of changes (14-63); ep_key, ep_data and ep_events are written
 * under the mark and read under the count (a sequence lock). */
#define EP_REGS 0xfffull
#define EP_BUSY (1ull << 12)
#define EP_POISON (1ull << 13)
#define EP_SEQ1 (1ull << 14)

void shim_slot_ep_poison(shim_slot *s)
{
    atomic_fetch_or_explicit(&s->ep_note, EP_POISON, memory_order_release);
}

void shim_slot_ep_note(shim_slot *s, uint64_t key, int op, uint32_t events, uint64_t data)
{
    uint64_t n = atomic_load_explicit(&s->ep_note, memory_order_acquire);
    for (unsigned spins = 0;; spins++) {
        if (n & EP_POISON)
            return;
        if (n & EP_BUSY) {
            /* another thread's epoll_ctl, a few stores long; one that never
             * ends them (this thread's, interrupted by the handler we run
             * in; a process sharing the slot, killed) is not waited for */
            if (spins > (1u << 16)) {
                shim_slot_ep_poison(s);
                return;
            }
            n = atomic_load_explicit(&s->ep_note, memory_order_acquire);
            continue;
        }
        uint64_t regs = n & EP_REGS, seq = (n | (EP_SEQ1 - 1)) + 1; /* the count up, low bits 0 */
        int same = regs == 1 && atomic_load_explicit(&s->ep_key, memory_order_relaxed) == key;
        int fill = 0;
        uint64_t to;
        if (op == EPOLL_CTL_ADD) {
            fill = regs == 0;
            to = regs + 1 >= EP_REGS ? EP_POISON : seq | (regs + 1);
        } else if (op == EPOLL_CTL_MOD) {
            if (!same)
                return; /* another set's, or one of several: nothing to follow */
            fill = 1;
            to = seq | regs;
        } else if (op == EPOLL_CTL_DEL) {
            to = same ? seq : EP_POISON; /* which of several went is not known */
        } else {
            return;
        }
        if (!fill) {
            if (atomic_compare_exchange_weak_explicit(&s->ep_note, &n, to, memory_order_acq_rel,
                                                      memory_order_acquire))
                return;
            continue;
        }
        if (!atomic_compare_exchange_weak_explicit(&s->ep_note, &n, n | EP_BUSY,
                                                   memory_order_acq_rel, memory_order_acquire))
            continue;
        /* the mark before the fields, for a reader that reads them (a
         * sequence lock's writer: write_seqcount_begin's smp_wmb) */
        atomic_thread_fence(memory_order_release);
        atomic_store_explicit(&s->ep_key, key, memory_order_relaxed);
        atomic_store_explicit(&s->ep_data, data, memory_order_relaxed);
        atomic_store_explicit(&s->ep_events, events, memory_order_relaxed);
        uint64_t busy = n | EP_BUSY;
        if (!atomic_compare_exchange_strong_explicit(&s->ep_note, &busy, to, memory_order_release,
                                                     memory_order_relaxed))
            atomic_store_explicit(&s->ep_note, to | EP_POISON, memory_order_release); /* poisoned meanwhile */
        return;
    }
}

void shim_slot_ep_gone(shim_slot *s, uint64_t key)
{
    uint64_t n = atomic_load_explicit(&s->ep_note, memory_order_acquire);
    while ((n & (EP_REGS | EP_BUSY | EP_POISON)) == 1 &&
           atomic_load_explicit(&s->ep_key, memory_order_relaxed) == key) {
        uint64_t to = (n | (EP_SEQ1 - 1)) + 1; /* no registration, the count up */
        if (atomic_compare_exchange_weak_explicit(&s->ep_note, &n, to, memory_order_acq_rel,
                                                  memory_order_acquire))
            return;
    }
}

int shim_slot_ep_one(shim_slot *s, uint64_t key, uint32_t *events, uint64_t *data)
{
    uint64_t n = atomic_load_explicit(&s->ep_note, memory_order_acquire);
    if ((n & (EP_REGS | EP_BUSY | EP_POISON)) != 1)
        return 0;
    uint64_t k = atomic_load_explicit(&s->ep_key, memory_order_relaxed);
    uint64_t d = atomic_load_explicit(&s->ep_data, memory_order_relaxed);
    uint32_t ev = atomic_load_explicit(&s->ep_events, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&s->ep_note, memory_order_relaxed) != n || k != key)
        return 0; /* changed meanwhile, or another set's */
    if (!(ev & EPOLLIN) || (ev & (EPOLLONESHOT | EPOLLEXCLUSIVE)))
        return 0;
    if (events)
        *events = ev;
    if (data)
        *data = d;
    return 1;
}

void shim_slot_rx_changed(shim_slot *s)
{
    uint32_t m = atomic_load_explicit(&s->rxmode, memory_order_relaxed), v;
    do
        v = ((m & ~(SHIM_RX_GEN - 1)) + SHIM_RX_GEN) | (m & SHIM_RX_FOREIGN);
    while (!atomic_compare_exchange_weak_explicit(&s->rxmode, &m, v, memory_order_release,
                                                  memory_order_relaxed));
}

void shim_slot_rx_foreign(shim_slot *s)
{
    atomic_fetch_or_explicit(&s->rxmode, SHIM_RX_FOREIGN, memory_order_release);
}

void shim_slot_free(uint32_t index)
{
    shim_mutex_lock(&mu);
    if (mine && (mine_pid == shim_procenv_self() || keeper || shim_procenv_shared()) && index < fresh &&
        freelist) {
        atomic_store(&mine[index].id, 0);
        atomic_store(&mine[index].state, SHIM_SLOT_FREE);
        freelist[nfree++] = index;
    }
    shim_mutex_unlock(&mu);
}

void shim_slots_lock_renew(void)
{
    shim_mutex_init(&mu);
    shim_mutex_lock(&mu);
}

void shim_slots_atfork_prepare(void)
{
    shim_mutex_lock(&mu);
}

void shim_slots_atfork_parent(void)
{
    shim_mutex_unlock(&mu);
}

void shim_slots_atfork_child(void)
{
    /* The parent's slabs stay mapped (shared) for reading; own() maps a
     * fresh one for what this child creates. */
    shim_mutex_unlock(&mu); /* locked by the prepare handler, in this thread */
}

static int app_queued(shim_slot *s, int fd, int *q);

int shim_slot_app_queued(shim_slot *s, int fd, int *q)
{
    if (app_queued(s, fd, q) < 0)
        return -1;
    uint64_t total = (uint64_t)*q + atomic_load(&s->ring_len);
    *q = total > INT32_MAX ? INT32_MAX : (int)total;
    return 0;
}

static int app_queued(shim_slot *s, int fd, int *q)
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
    /* Held by another process (a keeper after our exec, the parent of a
     * forked child): the kernel tells its bytes by inode. */
    if (ino && shim_unix_diag(ino, q) == 1 && *q >= 0)
        return 0;
    return real_ioctl(fd, SIOCOUTQ, q);
}

/* ---- exec ---- */

void shim_slots_exec_copies(shim_exec_env *x)
{
    x->nfds = 0;
    size_t at = (size_t)snprintf(x->val, sizeof x->val, "%s=", EXEC_VAR);
    shim_mutex_lock(&mu);
    for (int i = 0; i < nslabs; i++) {
        if (slabs[i].fd < 0 || shim_fd_ino(slabs[i].fd) != slabs[i].ino)
            continue; /* anonymous memory, or the app put something else there */
        /* Without FD_CLOEXEC only where nobody else can fork meanwhile
         * (execpass.c); with it for posix_spawn, whose child clears it by
         * the file actions (spawn.c), and for the keeper to pass. */
        int cmd = x->cloexec ? F_DUPFD_CLOEXEC : F_DUPFD;
        int c = real_fcntl(slabs[i].fd, cmd, SHIM_FD_BASE);
        if (c < 0 && errno == EINVAL) /* an fd limit below SHIM_FD_BASE */
            c = real_fcntl(slabs[i].fd, cmd, 0);
        if (c < 0)
            continue;
        x->fds[x->nfds++] = c;
        at += (size_t)snprintf(x->val + at, sizeof x->val - at, "%s%d", x->nfds > 1 ? "," : "", c);
    }
    shim_mutex_unlock(&mu);
}

char *const *shim_slots_exec_env(shim_exec_env *x, char *const envp[])
{
    x->env = NULL;
    if (!x->pass_val[0] && !x->nfds)
        shim_slots_exec_copies(x);
    int list = x->nfds && !x->pass_val[0]; /* passed by the keeper: not named here */
    if (!list && !x->pass_val[0])
        return envp;
    size_t n = 0;
    while (envp && envp[n])
        n++;
    /* On the stack when it fits: after vfork() an allocation here would be
     * the parent's, leaked once the exec succeeds. */
    x->env = n + 3 <= sizeof x->stack / sizeof x->stack[0] ? x->stack : shim_malloc((n + 3) * sizeof *x->env);
    if (!x->env) {
        shim_slots_exec_failed(x);
        return envp;
    }
    /* The program's environment, less a stale copy of ours, plus ours. */
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(envp[i], EXEC_VAR "=", sizeof EXEC_VAR) != 0 &&
            strncmp(envp[i], SHIM_EXECPASS_VAR "=", sizeof SHIM_EXECPASS_VAR) != 0)
            x->env[k++] = envp[i];
    if (list)
        x->env[k++] = x->val;
    if (x->pass_val[0])
        x->env[k++] = x->pass_val;
    x->env[k] = NULL;
    return x->env;
}

void shim_slots_exec_failed(shim_exec_env *x)
{
    for (int i = 0; i < x->nfds; i++)
        real_close(x->fds[i]);
    x->nfds = 0;
    if (x->env && x->env != x->stack)
        shim_free(x->env);
    x->env = NULL;
}

/* Maps the slab at fd (caller holds mu); 0, or -1 if fd is none of ours
 * (then it is left as it is). */
static int adopt_locked(long fd)
{
    /* Only a sealed memfd of our size with our magic: the variable may be
     * stale (inherited past an exec we did not see) and its number
     * anything of the program's. */
    struct stat st;
    if (fd < 0 || fd > INT32_MAX || real_fcntl((int)fd, F_GET_SEALS) != SLAB_SEALS ||
        fstat((int)fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size != SLAB_BYTES)
        return -1;
    void *p = mmap(NULL, SLAB_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, (int)fd, 0);
    if (p == MAP_FAILED)
        return -1;
    const slab_head *h = p;
    if (h->magic != SLAB_MAGIC) {
        munmap(p, SLAB_BYTES);
        return -1;
    }
    add_slab((pid_t)h->owner, p, shim_fd_move_high((int)fd));
    return 0;
}

int shim_slots_adopt_fd(int fd)
{
    shim_mutex_lock(&mu);
    int r = adopt_locked(fd);
    shim_mutex_unlock(&mu);
    return r;
}

void shim_slots_adopt(void)
{
    const char *v = getenv(EXEC_VAR);
    if (!v)
        return;
    shim_mutex_lock(&mu);
    while (*v) {
        char *end;
        long fd = strtol(v, &end, 10);
        if (end == v)
            break;
        v = *end == ',' ? end + 1 : end;
        adopt_locked(fd);
    }
    shim_mutex_unlock(&mu);
    unsetenv(EXEC_VAR);
}

int shim_slots_fd(int fd)
{
    int r = 0;
    shim_mutex_lock(&mu);
    for (int i = 0; i < nslabs && !r; i++)
        r = slabs[i].fd == fd && fd >= 0;
    shim_mutex_unlock(&mu);
    return r;
}

int shim_slots_fds(int *out, int max)
{
    int n = 0;
    shim_mutex_lock(&mu);
    for (int i = 0; i < nslabs && n < max; i++)
        if (slabs[i].fd >= 0)
            out[n++] = slabs[i].fd;
    shim_mutex_unlock(&mu);
    return n;
}
