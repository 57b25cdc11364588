/*
 * fdtab.c: what the shim knows about an application fd beyond what the
 * kernel and the socket names tell: options recorded at the TCP level and
 * whether connect() already reported its result. A record carries the
 * socket's inode, so a record left behind when an fd number was reused
 * without our knowledge (dup2 over it, close_range) is noticed and dropped.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "shim.h"
#include "table.h"

#include "poison.h"

typedef struct rec {
    shim_fd r;
    UT_hash_handle hh;
} rec;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static rec *table;

static uint64_t inode_of(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

int shim_fd_get(int fd, shim_fd *out)
{
    rec *e = NULL;
    pthread_mutex_lock(&mu);
    HASH_FIND_INT(table, &fd, e);
    if (e)
        *out = e->r;
    pthread_mutex_unlock(&mu);
    if (!e)
        return 0;
    if (out->ino != inode_of(fd)) {
        if (!shim_procenv_foreign()) /* not in a child whose numbers are its own */
            shim_fd_del(fd); /* the number now names something else */
        return 0;
    }
    return 1;
}

void shim_fd_put(const shim_fd *r)
{
    rec *e = NULL;
    uint64_t ino = inode_of(r->fd);
    pthread_mutex_lock(&mu);
    HASH_FIND_INT(table, &r->fd, e);
    if (!e) {
        e = shim_calloc(1, sizeof *e);
        if (e) {
            e->r.fd = r->fd;
            HASH_ADD_INT(table, r.fd, e);
            if (!e->hh.tbl) {
                shim_free(e); /* out of memory: we merely forget options */
                e = NULL;
            }
        }
    }
    if (e) {
        e->r = *r;
        e->r.ino = ino;
    }
    pthread_mutex_unlock(&mu);
}

void shim_fd_del(int fd)
{
    rec *e = NULL;
    pthread_mutex_lock(&mu);
    HASH_FIND_INT(table, &fd, e);
    if (e) {
        HASH_DEL(table, e);
        shim_free(e);
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
    pthread_mutex_unlock(&mu); /* locked by the prepare handler, in this thread */
}

int shim_fd_list_fallback(int *out, int max)
{
    int n = 0;
    rec *e, *tmp;
    pthread_mutex_lock(&mu);
    HASH_ITER(hh, table, e, tmp) {
        if (n < max && e->r.kind == SHIM_FD_BRIDGED && e->r.fallback)
            out[n++] = e->r.fd;
    }
    pthread_mutex_unlock(&mu);
    return n;
}
