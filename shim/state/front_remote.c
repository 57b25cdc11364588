/*
 * front_remote.c: the remote front end (state.h), rudp-supervise's
 * (front.h, tools/supervise/): the program's fds live in another process,
 * and the supervisor calls the shim on a copy of the program's fd
 * (pidfd_getfd), new at each call and closed after it. A record then
 * follows the file, keyed by its inode alone, and outlives the copy:
 * TCP_NODELAY set through one copy reads back through the next
 * (docs/reach.md). Nobody sees the program's close, so a record of a
 * connection goes when its slot does (the engine saw the end), the others
 * when there are too many. Hints nothing (shim_fd_hinted): the numbers are
 * the copies', of no use to a later call.
 *
 * The supervisor gives what only it can do (shim_front_remote): reach the
 * program's end of a bridge, and its own counters.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "state.h"
#include "table.h"

#include "base/poison.h"

/* The records by inode, oldest first (uthash keeps the order of
 * insertion). */
typedef struct filerec {
    uint64_t ino;
    shim_fd r;
    UT_hash_handle hh;
} filerec;

static shim_mutex mu = SHIM_MUTEX_INITIALIZER;
static filerec *files;
static unsigned files_n, files_puts;
#define FILES_MAX 65536u  /* more: the oldest go (files_tidy) */
#define FILES_SWEEP 1024u /* every so many new ones, the ended connections' go */

static const shim_front_remote *remote;

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
 * live connection's (the oldest was once the listener's, whose accepts
 * then went to the kernel): those the program holds, and they go when it
 * closes them. mu held. */
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

/* The record of fd's file, numbered fd. */
static int file_get(int fd, shim_fd *out, int try)
{
    uint64_t ino = shim_fd_ino(fd);
    filerec *e = NULL;
    if (!ino)
        return 0;
    if (!try)
        shim_mutex_lock(&mu);
    else if (shim_mutex_trylock(&mu) != 0)
        return -1;
    HASH_FIND(hh, files, &ino, sizeof ino, e);
    if (e) {
        *out = e->r;
        out->fd = fd;
    }
    shim_mutex_unlock(&mu);
    return e != NULL;
}

static void file_put(const shim_fd *r)
{
    uint64_t ino = shim_fd_ino(r->fd);
    filerec *e = NULL;
    if (!ino)
        return;
    shim_mutex_lock(&mu);
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
    shim_mutex_unlock(&mu);
    /* A connection's app end: its slot keeps its inode for the engine's
     * reset byte (shim_appfd_reset_mark), which reaches the program's end
     * through app_end below; the number is our short-lived copy's, of no
     * use later (-1). */
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
    shim_mutex_lock(&mu);
    HASH_FIND(hh, files, &ino, sizeof ino, e);
    if (e)
        file_drop(e);
    shim_mutex_unlock(&mu);
}

static void file_replaced(uint64_t ino)
{
    filerec *e = NULL;
    shim_mutex_lock(&mu);
    HASH_FIND(hh, files, &ino, sizeof ino, e);
    if (e && e->r.kind == SHIM_FD_CANDIDATE)
        file_drop(e);
    shim_mutex_unlock(&mu);
}

/* The copies' numbers are of no use to a walk of numbers: a fallback's
 * connection is relayed (connect.c, without SHIM_FRONT_OWNS_NUMBERS), and
 * the program's close_range() is not ours to see. */
static int file_list_fallback(int *out, int max)
{
    (void)out;
    (void)max;
    return 0;
}

static int file_list_range(int *out, int max, unsigned first, unsigned last)
{
    (void)out;
    (void)max;
    (void)first;
    (void)last;
    return 0;
}

static int remote_app_end(uint64_t ino)
{
    return remote->app_end ? remote->app_end(ino) : -1;
}

static void remote_stats(void (*line)(void *, const char *), void *arg)
{
    if (remote->stats)
        remote->stats(line, arg);
}

/* fork() in the serving process (a keeper at its exit), a raw clone's
 * child: the child's copy of the lock must not be held by a thread it does
 * not have. Taken after appfd's lock and before the slots' (files_tidy
 * looks slots up under it), where the fork handlers call these
 * (interpose/sock.c, lifetime/renew.c). */
static void fork_prepare(void)
{
    shim_mutex_lock(&mu);
}

static void fork_release(void)
{
    shim_mutex_unlock(&mu);
}

static void lock_renew(void)
{
    shim_mutex_init(&mu);
    shim_mutex_lock(&mu);
}

static const shim_front_ops front_remote = {
    .name = "remote",
    .caps = 0,
    .get = file_get,
    .put = file_put,
    .del = file_del,
    .replaced = file_replaced,
    .list_fallback = file_list_fallback,
    .list_range = file_list_range,
    .app_end = remote_app_end,
    .stats = remote_stats,
    .fork_prepare = fork_prepare,
    .fork_release = fork_release,
    .lock_renew = lock_renew,
};

int shim_front_remote_set(const shim_front_remote *r)
{
    static atomic_int taken;
    if (!r || atomic_exchange(&taken, 1))
        return -EBUSY; /* once: the ops keep r, read by engine threads */
    remote = r;
    return shim_front_set(&front_remote);
}
