/*
 * appfd.c: the engine acting on an application's fd number, which the app
 * may close or replace at any moment: connect()'s small send buffer given
 * back once the handshake is done, and RUDP_FALLBACK's swap of a connected
 * kernel TCP socket into the fd (fallback.c). Both run under one lock that
 * close() (through shim_sndbuf_forget) and connect() (placing the app end)
 * take too, and check the fd still holds the app end by its inode.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim.h"
#include "poison.h"

/* ---- connect's small send buffer, given back ----
 *
 * The engine (once the handshake drained the filler) and connect() (when
 * the handshake beat dup3) set the app's fd back to its send buffer, once;
 * close() of that fd forgets it. All under one lock, so nobody looks at an
 * fd number while the app closes or replaces it (TSan saw the engine's
 * fstat race an app's close with RUDP_ENGINES=2). */
static pthread_mutex_t sndbuf_mu = PTHREAD_MUTEX_INITIALIZER;

void shim_appfd_lock(void)
{
    pthread_mutex_lock(&sndbuf_mu);
}

void shim_appfd_unlock(void)
{
    pthread_mutex_unlock(&sndbuf_mu);
}

void shim_sndbuf_restore(shim_slot *s, int fd, uint64_t ino, int size)
{
    pthread_mutex_lock(&sndbuf_mu);
    if (atomic_load(&s->flags) & SHIM_SLOT_F_SNDBUF) {
        struct stat st;
        if (fstat(fd, &st) == 0 && (uint64_t)st.st_ino == ino) {
            real_setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
            atomic_fetch_and(&s->flags, ~SHIM_SLOT_F_SNDBUF);
        }
    }
    pthread_mutex_unlock(&sndbuf_mu);
}

void shim_sndbuf_forget(shim_slot *s)
{
    const uint32_t f = SHIM_SLOT_F_SNDBUF | SHIM_SLOT_F_SWAP;
    if (!(atomic_load(&s->flags) & f))
        return;
    pthread_mutex_lock(&sndbuf_mu);
    atomic_fetch_and(&s->flags, ~f);
    pthread_mutex_unlock(&sndbuf_mu);
}

int shim_fd_swap_in(shim_slot *s, int fd, uint64_t ino, int tfd)
{
    pthread_mutex_lock(&sndbuf_mu); /* close() of fd waits for us (shim_sndbuf_forget) */
    uint32_t f = atomic_load(&s->flags);
    int r = -1;
    struct stat st;
    if (!(f & SHIM_SLOT_F_SWAP)) {
        r = -1; /* closed by the app */
    } else if (!(f & SHIM_SLOT_F_PLACED)) {
        r = 0; /* connect() has not put the app end at fd yet */
    } else if (fstat(fd, &st) == 0 && (uint64_t)st.st_ino == ino) {
        int status = fcntl(fd, F_GETFL), fdflags = fcntl(fd, F_GETFD);
        shim_fd rec;
        int have = shim_fd_get(fd, &rec);
        fcntl(tfd, F_SETFL, status & (O_NONBLOCK | O_ASYNC));
        if (have)
            shim_put_tcp_options(tfd, &rec);
        shim_epollreg_detach(fd);
        if (dup3(tfd, fd, (fdflags & FD_CLOEXEC) ? O_CLOEXEC : 0) == fd) {
            shim_fd_del(fd);
            atomic_fetch_and(&s->flags, ~(SHIM_SLOT_F_SWAP | SHIM_SLOT_F_SNDBUF));
            atomic_store(&s->state, SHIM_SLOT_TCP);
            r = 1;
        }
        shim_epollreg_attach(fd); /* the new file, or the old one back */
    }
    pthread_mutex_unlock(&sndbuf_mu);
    return r;
}
