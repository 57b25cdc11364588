/*
 * ownfds.c: the set of fds the engine owns (UDP sockets, its ends of the
 * bridges, epoll, the eventfd, the log file and the qlog directory), as a
 * bitmap under a mutex. The application's close()/close_range()/closefrom()
 * spare them, a forked child closes them (but the log file and the qlog
 * directory), and a keeper keeps only them.
 *
 * The numbers are the owner's fd table's. A child that shares our memory
 * but has an fd table of its own (vfork(), clone(CLONE_VM): procenv.c)
 * neither adds to the set nor takes from it, and none of its own fds are
 * the engine's: the engine holds copies in the owner's table (adopt.c).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"

#include "poison.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *bits;
static int cap; /* bits */

static int has(int fd)
{
    return fd >= 0 && fd < cap && (bits[fd / 8] & (1u << (fd % 8)));
}

void shim_own_fd(int fd, int on)
{
    if (fd < 0 || shim_procenv_table() != 0)
        return;
    pthread_mutex_lock(&mu);
    if (fd >= cap && on) {
        int n = cap ? cap : 4096;
        while (n <= fd)
            n *= 2;
        uint8_t *b = shim_realloc(bits, (size_t)n / 8);
        if (b) {
            memset(b + cap / 8, 0, (size_t)(n - cap) / 8);
            bits = b;
            cap = n;
        }
    }
    if (fd < cap) {
        if (on)
            bits[fd / 8] |= (uint8_t)(1u << (fd % 8));
        else
            bits[fd / 8] &= (uint8_t)~(1u << (fd % 8));
    }
    pthread_mutex_unlock(&mu);
}

void shim_ownfds_add(int fd)
{
    shim_own_fd(fd, 1);
}

int shim_ownfds_has(int fd)
{
    pthread_mutex_lock(&mu);
    int r = has(fd);
    pthread_mutex_unlock(&mu);
    return r;
}

int shim_ownfds_list(int *out, int max)
{
    if (shim_procenv_table() != 0)
        return 0; /* a CLONE_VM child's numbers: none is the engine's */
    int n = 0;
    pthread_mutex_lock(&mu);
    for (int fd = 0; fd < cap && n < max; fd++)
        if (has(fd))
            out[n++] = fd;
    pthread_mutex_unlock(&mu);
    return n;
}

void shim_close_owned(int fd)
{
    if (fd < 0)
        return;
    shim_own_fd(fd, 0);
    real_close(fd);
}

static int spared(int fd, const int *keep, int n)
{
    for (int i = 0; i < n; i++)
        if (keep[i] == fd)
            return 1;
    return 0;
}

void shim_close_all_owned(const int *keep, int n)
{
    pthread_mutex_lock(&mu);
    for (int fd = 0; fd < cap; fd++)
        if (has(fd) && !spared(fd, keep, n))
            real_close(fd);
    if (bits)
        memset(bits, 0, (size_t)cap / 8);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < n; i++)
        if (keep[i] >= 0)
            shim_own_fd(keep[i], 1);
}

void shim_ownfds_lock_renew(void)
{
    pthread_mutex_init(&mu, NULL);
    pthread_mutex_lock(&mu);
}

void shim_ownfds_lock(void)
{
    pthread_mutex_lock(&mu);
}

void shim_ownfds_unlock(void)
{
    pthread_mutex_unlock(&mu);
}
