/*
 * epollreg.c: the app's epoll interest in a connecting fd that may become a
 * kernel TCP socket (RUDP_FALLBACK=tcp, fallback.c).
 *
 * epoll registers a (file, fd) pair, and a registration goes away with its
 * file: when fallback.c puts the kernel TCP socket at the app's fd, every
 * epoll set watching the app end forgets it, and an event loop that waits
 * for EPOLLOUT after EINPROGRESS would wait for ever. So epoll_ctl on such
 * an fd (and only on such: shim_fd.fallback) is noted here, and the swap
 * takes the registrations out of their sets before it and puts them back,
 * for the new file, after it. The kernel then reports the connected socket
 * as writable at once, as it reports any socket that is ready when added.
 *
 * Few fds are ever connecting at once; a small array under one lock does.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "shim.h"
#include "poison.h"

typedef struct reg {
    int epfd, fd;
    struct epoll_event ev;
} reg;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static reg *regs;
static size_t nregs, cap;
static _Atomic size_t count; /* nregs, read without the lock by forget() */

/* Index of (epfd, fd), or nregs. mu held. */
static size_t find(int epfd, int fd)
{
    size_t i = 0;
    while (i < nregs && !(regs[i].epfd == epfd && regs[i].fd == fd))
        i++;
    return i;
}

static void drop_at(size_t i)
{
    regs[i] = regs[--nregs];
    atomic_store(&count, nregs);
}

void shim_epollreg_note(int epfd, int op, int fd, const struct epoll_event *ev)
{
    pthread_mutex_lock(&mu);
    size_t i = find(epfd, fd);
    if (op == EPOLL_CTL_DEL) {
        if (i < nregs)
            drop_at(i);
    } else if (ev && (op == EPOLL_CTL_ADD || op == EPOLL_CTL_MOD)) {
        if (i == nregs && nregs == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            reg *n = realloc(regs, ncap * sizeof *n);
            if (!n) {
                pthread_mutex_unlock(&mu);
                return; /* unnoted: a fallback then leaves this epoll set blind */
            }
            regs = n;
            cap = ncap;
        }
        if (i == nregs) {
            nregs++;
            atomic_store(&count, nregs);
        }
        regs[i] = (reg){.epfd = epfd, .fd = fd, .ev = *ev};
    }
    pthread_mutex_unlock(&mu);
}

void shim_epollreg_forget(int fd)
{
    if (atomic_load(&count) == 0)
        return; /* every close() of a program passes here */
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < nregs;) {
        if (regs[i].fd == fd || regs[i].epfd == fd)
            drop_at(i);
        else
            i++;
    }
    pthread_mutex_unlock(&mu);
}

void shim_epollreg_detach(int fd)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < nregs; i++)
        if (regs[i].fd == fd)
            real_epoll_ctl(regs[i].epfd, EPOLL_CTL_DEL, fd, NULL);
    pthread_mutex_unlock(&mu);
}

void shim_epollreg_attach(int fd)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < nregs;) {
        if (regs[i].fd != fd) {
            i++;
            continue;
        }
        struct epoll_event ev = regs[i].ev;
        if (real_epoll_ctl(regs[i].epfd, EPOLL_CTL_ADD, fd, &ev) < 0 && errno == EEXIST)
            real_epoll_ctl(regs[i].epfd, EPOLL_CTL_MOD, fd, &ev);
        drop_at(i);
    }
    pthread_mutex_unlock(&mu);
}
