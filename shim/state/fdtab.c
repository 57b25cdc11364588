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
 * In rudp-supervise (RUDP_SUPERVISOR, shim_fd_by_file) the application's
 * fds live in another process: the supervisor calls the shim on a copy of
 * the program's fd (pidfd_getfd), new at each call and closed after it. A
 * record then follows the file, keyed by its inode alone, and outlives the
 * copy: TCP_NODELAY set through one copy reads back through the next
 * (docs/reach.md). Nobody sees the program's close, so a record of a
 * connection goes when its slot does (the engine saw the end), the others
 * when there are too many.
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
} var;

typedef struct rec {
    int fd;
    var *vars; /* usually one */
    UT_hash_handle hh;
} rec;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static rec *table;

/* shim_fd_by_file: the records by inode, oldest first (uthash keeps the
 * order of insertion). */
typedef struct filerec {
    uint64_t ino;
    shim_fd r;
    UT_hash_handle hh;
} filerec;
static filerec *files;
static unsigned files_n, files_puts;
#define FILES_MAX 65536u  /* more: the oldest go (files_tidy) */
#define FILES_SWEEP 1024u /* every so many new ones, the ended connections' go */

int shim_fd_by_file(void)
{
    return shim_cfg.supervisor;
}

/* Whether e's file has surely gone: a connection whose slot is free or
 * reused (the engine saw both ends close). mu held. */
static int file_gone(const filerec *e)
{
    return e->r.kind == SHIM_FD_BRIDGED && !shim_slot_get(e->r.slot, e->r.id);
}

static void file_drop(filerec *e)
{
    HASH_DEL(files, e);
    shim_free(e);
    files_n--;
}

/* Every FILES_SWEEP new records, those of ended connections go; past
 * FILES_MAX then, the oldest of the others, but never a listener's or a
 * live connection's (review 2: the oldest was the listener's, whose
 * accepts then went to the kernel): those the program holds, and they go
 * when it closes them. mu held. */
static void files_tidy(void)
{
    filerec *e, *tmp;
    if (++files_puts % FILES_SWEEP != 0)
        return;
    HASH_ITER(hh, files, e, tmp) {
        if (file_gone(e))
            file_drop(e);
    }
    HASH_ITER(hh, files, e, tmp) {
        if (files_n <= FILES_MAX)
            break;
        if (e->r.kind != SHIM_FD_LISTENER && e->r.kind != SHIM_FD_BRIDGED)
            file_drop(e);
    }
}

/* shim_fd_get/_tryget by file: the record of fd's file, numbered fd. */
static int file_get(int fd, shim_fd *out, int try)
{
    uint64_t ino = shim_fd_ino(fd);
    filerec *e = NULL;
    if (!ino)
        return 0;
    if (!try)
        pthread_mutex_lock(&mu);
    else if (pthread_mutex_trylock(&mu) != 0)
        return -1;
    HASH_FIND(hh, files, &ino, sizeof ino, e);
    if (e) {
        *out = e->r;
        out->fd = fd;
    }
    pthread_mutex_unlock(&mu);
    return e != NULL;
}

static void file_put(const shim_fd *r)
{
    uint64_t ino = shim_fd_ino(r->fd);
    filerec *e = NULL;
    if (!ino)
        return;
    pthread_mutex_lock(&mu);
    HASH_FIND(hh, files, &ino, sizeof ino, e);
    if (!e && (e = shim_calloc(1, sizeof *e))) {
        e->ino = ino;
        HASH_ADD(hh, files, ino, sizeof e->ino, e);
        if (!e->hh.tbl) {
            shim_free(e); /* out of memory: we merely forget options */
            e = NULL;
        } else {
            files_n++;
            files_tidy();
        }
    }
    if (e) {
        e->r = *r;
        e->r.ino = ino;
    }
    pthread_mutex_unlock(&mu);
    /* A connection's app end: its slot keeps its inode for the engine's
     * reset byte (shim_appfd_reset_mark), which reaches the program's end
     * through the front end (shim_appfd_set_reach); the number is our
     * short-lived copy's, of no use later (-1). */
    shim_slot *s;
    if (r->kind == SHIM_FD_BRIDGED && (s = shim_slot_get(r->slot, r->id))) {
        atomic_store(&s->app_fd, -1);
        atomic_store(&s->app_ino, ino);
    }
}

static void file_del(int fd)
{
    uint64_t ino = shim_fd_ino(fd);
    filerec *e = NULL;
    pthread_mutex_lock(&mu);
    HASH_FIND(hh, files, &ino, sizeof ino, e);
    if (e)
        file_drop(e);
    pthread_mutex_unlock(&mu);
}

void shim_fd_replaced(uint64_t ino)
{
    filerec *e = NULL;
    if (!shim_fd_by_file() || !ino)
        return;
    pthread_mutex_lock(&mu);
    HASH_FIND(hh, files, &ino, sizeof ino, e);
    if (e && e->r.kind == SHIM_FD_CANDIDATE)
        file_drop(e);
    pthread_mutex_unlock(&mu);
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
 * holds records of other sockets. mu held. */
static int find_locked(int fd, uint64_t ino, shim_fd *out, int *stale)
{
    rec *e = NULL;
    *stale = 0;
    HASH_FIND_INT(table, &fd, e);
    for (var *v = e ? e->vars : NULL; v; v = v->next) {
        if (v->r.ino == ino) {
            *out = v->r;
            return 1;
        }
        *stale = 1;
    }
    return 0;
}

int shim_fd_tryget(int fd, shim_fd *out)
{
    if (shim_fd_by_file())
        return file_get(fd, out, 1);
    uint64_t ino = shim_fd_ino(fd);
    int stale;
    if (pthread_mutex_trylock(&mu) != 0)
        return -1;
    int found = find_locked(fd, ino, out, &stale);
    pthread_mutex_unlock(&mu);
    if (!found && stale && shim_procenv_table() == 0)
        hint(fd, NULL); /* the number names another file now (a dup2 over it) */
    return found;
}

int shim_fd_get(int fd, shim_fd *out)
{
    if (shim_fd_by_file())
        return file_get(fd, out, 0);
    uint64_t ino = shim_fd_ino(fd);
    int stale;
    rec *e = NULL;
    pthread_mutex_lock(&mu);
    int found = find_locked(fd, ino, out, &stale);
    pthread_mutex_unlock(&mu);
    if (!found && stale) {
        /* The number now names something else: in this table, the record
         * is stale; another table's is left as it is. */
        pid_t t = shim_procenv_table();
        if (t == 0)
            hint(fd, NULL);
        pthread_mutex_lock(&mu);
        HASH_FIND_INT(table, &fd, e);
        if (e) {
            drop_stale(e, t, ino);
            rec_tidy(e);
        }
        pthread_mutex_unlock(&mu);
    }
    return found;
}

void shim_fd_put(const shim_fd *r)
{
    if (shim_fd_by_file()) {
        file_put(r);
        return;
    }
    uint64_t ino = shim_fd_ino(r->fd);
    pid_t t = shim_procenv_table();
    rec *e = NULL;
    pthread_mutex_lock(&mu);
    HASH_FIND_INT(table, &r->fd, e);
    if (!e) {
        e = shim_calloc(1, sizeof *e);
        if (e) {
            e->fd = r->fd;
            HASH_ADD_INT(table, fd, e);
            if (!e->hh.tbl) {
                shim_free(e); /* out of memory: we merely forget options */
                e = NULL;
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
        }
        rec_tidy(e);
    }
    pthread_mutex_unlock(&mu);
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

void shim_fd_del(int fd)
{
    if (shim_fd_by_file()) {
        file_del(fd);
        return;
    }
    pid_t t = shim_procenv_table();
    rec *e = NULL;
    if (t == 0)
        hint(fd, NULL);
    pthread_mutex_lock(&mu);
    HASH_FIND_INT(table, &fd, e);
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
    pthread_mutex_unlock(&mu);
}

void shim_fdtab_lock_renew(void)
{
    pthread_mutex_init(&mu, NULL);
    pthread_mutex_lock(&mu);
}

void shim_fdtab_atfork_prepare(void)
{
    pthread_mutex_lock(&mu);
}

void shim_fdtab_atfork_parent(void)
{
    pthread_mutex_unlock(&mu);
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
    pthread_mutex_unlock(&mu); /* locked by the prepare handler, in this thread */
}

int shim_fd_list_fallback(int *out, int max)
{
    pid_t t = shim_procenv_table();
    int n = 0;
    rec *e, *tmp;
    pthread_mutex_lock(&mu);
    HASH_ITER(hh, table, e, tmp) {
        for (var *v = e->vars; v; v = v->next)
            if (n < max && v->table == t && v->r.kind == SHIM_FD_BRIDGED && v->r.fallback)
                out[n++] = v->r.fd;
    }
    pthread_mutex_unlock(&mu);
    return n;
}

int shim_fd_list_range(int *out, int max, unsigned first, unsigned last)
{
    pid_t t = shim_procenv_table();
    int n = 0;
    rec *e, *tmp;
    pthread_mutex_lock(&mu);
    HASH_ITER(hh, table, e, tmp) {
        if (e->fd < 0 || (unsigned)e->fd < first || (unsigned)e->fd > last)
            continue;
        for (var *v = e->vars; v; v = v->next)
            if (n < max && v->table == t) {
                out[n++] = e->fd;
                break;
            }
    }
    pthread_mutex_unlock(&mu);
    return n;
}
