/*
 * fdtab.c: what the shim knows about an application fd beyond what the
 * kernel and the socket names tell: options recorded at the TCP level and
 * whether connect() already reported its result. A record carries the
 * socket's inode, so a record left behind when an fd number was reused
 * without our knowledge (dup2 over it, close_range) is noticed and dropped.
 *
 * Records are kept per fd table. The shim's memory may be shared by a child
 * with an fd table of its own (vfork(), clone(CLONE_VM) without
 * CLONE_FILES: procenv.c), whose fd numbers name other files than ours. So
 * a number may carry several records, one per table that holds a socket
 * there, each tagged with its table (shim_procenv_table(): 0 for the
 * process that owns the engines, a child's pid otherwise) and told apart
 * by the socket's inode: a child's copy of one of our sockets (inherited
 * at the clone) is the same socket and shares its record, as it shares its
 * options. A table replaces or drops only its own records; a child's that
 * outlive it are dropped once its pid no longer shares our memory.
 *
 * This is the local front end (state.h): the preload's, where the fds the
 * shim is called on are the application's own. The remote one (state.h) is
 * rudp-supervise's, whose records follow files instead.
 */
#include <linux/kcmp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "state.h"
#include "table.h"

#include "base/poison.h"

/* One table's record at a number. */
typedef struct var {
    pid_t table;
    shim_fd r;
    struct var *next;
    uint64_t proved; /* the table's epoch (below) when the number last held r.ino */
} var;

typedef struct rec {
    int fd;
    var *vars; /* usually one */
    UT_hash_handle hh;
} rec;

static shim_mutex mu = SHIM_MUTEX_INITIALIZER;
static rec *table;
/* The same records by number, below SHIM_FD_HINTS: every interposed call
 * on any fd looks its number up, and uthash's hash and chain cost ~60 ns
 * a lookup (perf: redis-benchmark's client under the shim, 2.6 % of its
 * CPU in the lookup alone); the hash keeps the rest, and the order to
 * walk them in. mu held. */
static rec *direct[SHIM_FD_HINTS];

static rec *rec_find(int fd)
{
    if ((unsigned)fd < SHIM_FD_HINTS)
        return direct[fd];
    rec *e = NULL;
    HASH_FIND_INT(table, &fd, e);
    return e;
}

/*
 * Proofs. A lookup proved the number still names the record's socket by
 * asking its inode (fstat): each read and each write of a connection paid
 * a system call for it (redis-server: two of its four per GET, 150,000 a
 * second). A number changes file behind the records' back only by a
 * call the shim does not see or does not follow, and the ones it sees
 * count an epoch instead: dup2()/dup3() over a number, close_range(),
 * closefrom(), any libc syscall() (shim_fd_unseen). A record proved in
 * the current epoch is taken without asking again. Still proved at every
 * lookup: fds 0-2 (daemon(), login_tty() and freopen() dup over them
 * inside libc), a number stdio ever had (fdopen(): its fclose() and
 * freopen() close it inside libc, whatever record the
 * number holds by then; shim_fd_prove_always marks the number, not a
 * record, without a lock, since a signal handler's close() may come
 * meanwhile), a child's table sharing our memory (vfork), and every
 * number once a close may come from where the shim cannot see it at all
 * (`paranoid`: an io_uring, whose closes complete on their own time;
 * liburing, whose calls are system calls of its own; another process or
 * thread with our fd table or its own). What is left is a close made
 * without libc (inline system calls) followed by the number's reuse by a
 * file the shim never sees opened, before the next call the epoch
 * counts: docs/limits.md.
 */
static _Atomic uint64_t epoch = 1;
static _Atomic int paranoid;
static _Atomic uint8_t stdio_nums[SHIM_FD_HINTS / 8]; /* bit fd: stdio had it */

void shim_fd_unseen(void)
{
    atomic_fetch_add(&epoch, 1);
}

void shim_fd_unseen_always(void)
{
    atomic_store(&paranoid, 1);
    atomic_fetch_add(&epoch, 1);
}

/* Per number below SHIM_FD_HINTS (the only ones ever trusted: may_trust),
 * raised by shim_fd_reprove: a lookup reads it with the epoch, before it
 * asks the inode, and stamps its proof only if neither moved meanwhile, so
 * an inode asked before the number changed file proves nothing after. */
static _Atomic uint32_t regen[SHIM_FD_HINTS];

static uint32_t regen_of(int fd)
{
    return (unsigned)fd < SHIM_FD_HINTS ? atomic_load(&regen[fd]) : 0;
}

/* ep, or 0 (no proof to stamp) where fd was reproved since gen was read. */
static uint64_t still(int fd, uint64_t ep, uint32_t gen)
{
    return regen_of(fd) == gen ? ep : 0;
}

void shim_fd_reprove(int fd)
{
    if ((unsigned)fd >= SHIM_FD_HINTS)
        return; /* never taken on a proof (may_trust) */
    atomic_fetch_add(&regen[fd], 1);
    shim_mutex_lock(&mu);
    rec *e = rec_find(fd);
    for (var *v = e ? e->vars : NULL; v; v = v->next)
        v->proved = 0;
    shim_mutex_unlock(&mu);
}

void shim_fd_prove_always(int fd)
{
    if ((unsigned)fd < SHIM_FD_HINTS)
        atomic_fetch_or(&stdio_nums[fd / 8], (uint8_t)(1u << (fd % 8)));
    else if (fd >= 0)
        shim_fd_unseen_always(); /* past the map: rare enough to prove all */
}

/* Whether a lookup of fd by table t may take a record proved in the
 * current epoch without asking the kernel. */
static int may_trust(int fd, pid_t t)
{
    return fd > 2 && t == 0 && !atomic_load_explicit(&paranoid, memory_order_relaxed) &&
           (unsigned)fd < SHIM_FD_HINTS &&
           !(atomic_load_explicit(&stdio_nums[fd / 8], memory_order_relaxed) & (1u << (fd % 8)));
}

/* fd's record of table 0 proved in epoch ep, into *out; mu held. */
static int trusted_locked(int fd, uint64_t ep, shim_fd *out)
{
    rec *e = rec_find(fd);
    for (var *v = e ? e->vars : NULL; v; v = v->next) {
        if (v->table == 0 && v->proved == ep) {
            *out = v->r;
            return 1;
        }
    }
    return 0;
}

/* Which numbers may hold a bridged record of the engines' own table, and
 * its connection's slot (shim_fd_hinted): set by shim_fd_put of one,
 * cleared by any other put of that table, by shim_fd_del and when a lookup
 * finds the record stale. Read without the lock by every write() of the
 * program: a hint set wrongly costs a lookup, one missing only the app
 * thread's own send. The slot is read as a hint too (its slab stays mapped
 * where it is). */
static _Atomic(shim_slot *) hints[SHIM_FD_HINTS];

static void hint(int fd, shim_slot *s)
{
    if ((unsigned)fd < SHIM_FD_HINTS)
        atomic_store_explicit(&hints[fd], s, memory_order_relaxed);
}

shim_slot *shim_fd_hinted(int fd)
{
    return (unsigned)fd < SHIM_FD_HINTS ? atomic_load_explicit(&hints[fd], memory_order_relaxed)
                                        : NULL;
}

void shim_fd_hints_each(void (*fn)(shim_slot *s, void *arg), void *arg)
{
    for (int fd = 0; fd < SHIM_FD_HINTS; fd++) {
        shim_slot *s = atomic_load_explicit(&hints[fd], memory_order_relaxed);
        if (s)
            fn(s, arg);
    }
}

void shim_fd_hints_foreign(void)
{
    for (int fd = 0; fd < SHIM_FD_HINTS; fd++) {
        shim_slot *s = atomic_load_explicit(&hints[fd], memory_order_relaxed);
        if (s)
            shim_slot_rx_foreign(s);
    }
}

/* A child's table whose pid no longer shares our memory: it ended (or the
 * pid is another process's now). */
static int table_gone(pid_t t)
{
    return t != 0 && syscall(SYS_kcmp, getpid(), t, KCMP_VM, 0, 0) != 0;
}

/* Unlinks and frees *pp; mu held. */
static void var_drop(var **pp)
{
    var *v = *pp;
    *pp = v->next;
    shim_free(v);
}

/* Drops e from the table if it holds no record; mu held. */
static void rec_tidy(rec *e)
{
    if (!e->vars) {
        if ((unsigned)e->fd < SHIM_FD_HINTS)
            direct[e->fd] = NULL;
        HASH_DEL(table, e);
        shim_free(e);
    }
}

/* Drops, at e, the records of table t other than the socket ino (a number
 * t reused) and those of children that ended; mu held. */
static void drop_stale(rec *e, pid_t t, uint64_t ino)
{
    for (var **pp = &e->vars; *pp;) {
        var *v = *pp;
        if ((v->table == t && v->r.ino != ino) || (v->table != t && table_gone(v->table)))
            var_drop(pp);
        else
            pp = &v->next;
    }
}

/* The record of fd for the socket ino into *out (1), or 0; *stale: fd
 * holds records of other sockets. A record of table 0 found is stamped
 * proved in epoch ep (read before ino was asked; 0 where the asker is a
 * child with a table of its own, whose number proves nothing of ours).
 * mu held. */
static int find_locked(int fd, uint64_t ino, uint64_t ep, shim_fd *out, int *stale)
{
    rec *e = rec_find(fd);
    *stale = 0;
    for (var *v = e ? e->vars : NULL; v; v = v->next) {
        if (v->r.ino == ino) {
            *out = v->r;
            if (ep && v->table == 0 && ino)
                v->proved = ep;
            return 1;
        }
        *stale = 1;
    }
    return 0;
}

/* Whether the table holds anything at fd; mu held. Where it holds nothing
 * the fd's inode need not be asked (a system call on every interposed call
 * on a file not ours: B12's connects made three). */
static int any_at(int fd)
{
    return rec_find(fd) != NULL;
}

static int local_tryget(int fd, shim_fd *out)
{
    pid_t t = shim_procenv_table();
    int trust = may_trust(fd, t);
    uint64_t ep = t == 0 ? atomic_load(&epoch) : 0;
    uint32_t gen = regen_of(fd);
    if (shim_mutex_trylock(&mu) != 0)
        return -1;
    if (trust && trusted_locked(fd, ep, out)) {
        shim_mutex_unlock(&mu);
        return 1;
    }
    int any = any_at(fd);
    shim_mutex_unlock(&mu);
    if (!any)
        return 0;
    uint64_t ino = shim_fd_ino(fd);
    int stale;
    if (shim_mutex_trylock(&mu) != 0)
        return -1;
    int found = find_locked(fd, ino, still(fd, ep, gen), out, &stale);
    shim_mutex_unlock(&mu);
    if (!found && stale && t == 0)
        hint(fd, NULL); /* the number names another file now (a dup2 over it) */
    return found;
}

static int local_get(int fd, shim_fd *out, int try)
{
    if (try)
        return local_tryget(fd, out);
    pid_t t = shim_procenv_table();
    int trust = may_trust(fd, t);
    uint64_t ep = t == 0 ? atomic_load(&epoch) : 0;
    uint32_t gen = regen_of(fd);
    shim_mutex_lock(&mu);
    if (trust && trusted_locked(fd, ep, out)) {
        shim_mutex_unlock(&mu);
        return 1;
    }
    int any = any_at(fd);
    shim_mutex_unlock(&mu);
    if (!any)
        return 0;
    uint64_t ino = shim_fd_ino(fd);
    int stale;
    shim_mutex_lock(&mu);
    int found = find_locked(fd, ino, still(fd, ep, gen), out, &stale);
    shim_mutex_unlock(&mu);
    if (!found && stale) {
        /* The number now names something else: in this table, the record
         * is stale; another table's is left as it is. */
        if (t == 0)
            hint(fd, NULL);
        shim_mutex_lock(&mu);
        rec *e = rec_find(fd);
        if (e) {
            drop_stale(e, t, ino);
            rec_tidy(e);
        }
        shim_mutex_unlock(&mu);
    }
    return found;
}

static void local_put(const shim_fd *r)
{
    uint64_t ep = atomic_load(&epoch);
    uint32_t gen = regen_of(r->fd);
    uint64_t ino = shim_fd_ino(r->fd);
    pid_t t = shim_procenv_table();
    rec *e = NULL;
    shim_mutex_lock(&mu);
    ep = still(r->fd, ep, gen);
    e = rec_find(r->fd);
    if (!e) {
        e = shim_calloc(1, sizeof *e);
        if (e) {
            e->fd = r->fd;
            HASH_ADD_INT(table, fd, e);
            if (!e->hh.tbl) {
                shim_free(e); /* out of memory: we merely forget options */
                e = NULL;
            } else if ((unsigned)e->fd < SHIM_FD_HINTS) {
                direct[e->fd] = e;
            }
        }
    }
    if (e) {
        var *v = e->vars;
        while (v && v->r.ino != ino)
            v = v->next;
        if (!v) {
            drop_stale(e, t, ino);
            v = shim_calloc(1, sizeof *v);
            if (v) {
                v->table = t;
                v->next = e->vars;
                e->vars = v;
            }
        }
        if (v) {
            v->r = *r;
            v->r.ino = ino;
            v->proved = t == 0 && ino ? ep : 0;
        }
        rec_tidy(e);
    }
    shim_mutex_unlock(&mu);
    /* A connection's app end in the engines' own table: its slot keeps
     * where it is, for the engine's reset byte (shim_appfd_reset_mark),
     * which must not walk every record on each of a storm of resets. */
    shim_slot *s = NULL;
    if (r->kind == SHIM_FD_BRIDGED && t == 0 && ino && (s = shim_slot_get(r->slot, r->id))) {
        atomic_store(&s->app_ino, ino);
        atomic_store(&s->app_fd, r->fd);
    }
    if (t == 0) /* a child's put leaves the engines' table's hint alone */
        hint(r->fd, s);
}

static void local_update(const shim_fd *r)
{
    pid_t t = shim_procenv_table();
    shim_mutex_lock(&mu);
    rec *e = rec_find(r->fd);
    for (var *v = e ? e->vars : NULL; v; v = v->next) {
        if (v->table == t && v->r.ino == r->ino) {
            v->r = *r; /* its proof stands: the same file */
            break;
        }
    }
    shim_mutex_unlock(&mu);
}

static void local_del(int fd)
{
    pid_t t = shim_procenv_table();
    if (t == 0)
        hint(fd, NULL);
    shim_mutex_lock(&mu);
    rec *e = rec_find(fd);
    if (e) {
        /* This table's records only: a child closing its copy of one of
         * our sockets leaves ours. */
        for (var **pp = &e->vars; *pp;) {
            if ((*pp)->table == t)
                var_drop(pp);
            else
                pp = &(*pp)->next;
        }
        rec_tidy(e);
    }
    shim_mutex_unlock(&mu);
}

void shim_fdtab_lock_renew(void)
{
    shim_mutex_init(&mu);
    shim_mutex_lock(&mu);
}

void shim_fdtab_atfork_prepare(void)
{
    shim_mutex_lock(&mu);
}

void shim_fdtab_atfork_parent(void)
{
    shim_mutex_unlock(&mu);
}

void shim_fdtab_atfork_child(void)
{
    /* A copy of our memory: the children that shared it are not this
     * process's, and their records name no fd here. */
    rec *e, *tmp;
    HASH_ITER(hh, table, e, tmp) {
        for (var **pp = &e->vars; *pp;) {
            if ((*pp)->table != 0)
                var_drop(pp);
            else
                pp = &(*pp)->next;
        }
        rec_tidy(e);
    }
    shim_mutex_unlock(&mu); /* locked by the prepare handler, in this thread */
}

static int local_list_fallback(int *out, int max)
{
    pid_t t = shim_procenv_table();
    int n = 0;
    rec *e, *tmp;
    shim_mutex_lock(&mu);
    HASH_ITER(hh, table, e, tmp) {
        for (var *v = e->vars; v; v = v->next)
            if (n < max && v->table == t && v->r.kind == SHIM_FD_BRIDGED && v->r.fallback)
                out[n++] = v->r.fd;
    }
    shim_mutex_unlock(&mu);
    return n;
}

static int local_list_range(int *out, int max, unsigned first, unsigned last)
{
    pid_t t = shim_procenv_table();
    int n = 0;
    rec *e, *tmp;
    shim_mutex_lock(&mu);
    HASH_ITER(hh, table, e, tmp) {
        if (e->fd < 0 || (unsigned)e->fd < first || (unsigned)e->fd > last)
            continue;
        for (var *v = e->vars; v; v = v->next)
            if (n < max && v->table == t) {
                out[n++] = e->fd;
                break;
            }
    }
    shim_mutex_unlock(&mu);
    return n;
}

/* A number's record is replaced by the next put at that number: nothing
 * to drop here. */
static void local_replaced(uint64_t ino)
{
    (void)ino;
}

const shim_front_ops shim_front_local = {
    .name = "local",
    .caps = SHIM_FRONT_OWNS_NUMBERS | SHIM_FRONT_SEES_CLOSE,
    .get = local_get,
    .put = local_put,
    .update = local_update,
    .del = local_del,
    .replaced = local_replaced,
    .list_fallback = local_list_fallback,
    .list_range = local_list_range,
    .place = shim_fd_swap_in, /* appfd.c: dup3, epoll interest from epollreg.c */
};
