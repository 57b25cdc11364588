/*
 * relay.c: the keeper after an exit, relaying.
 *
 * After an exit (or an exec whose image did not take the socket) the
 * app's end of the bridge may still be held: by a forked child, by the
 * new image. Kernel TCP would carry the connection on for them; here the
 * keeper does, copying between the bridge's end and the TCP socket, one
 * thread each way: EOF becomes a half-close on the other side (FIN, or EOF
 * to the app), an error a shutdown of both. Nobody holding the app's end
 * (the usual exit) means EOF at once, and a FIN: kernel TCP closed with
 * the process abandons its connect the same way. The keeper waits for
 * every relay before it ends (shim_relays_wait).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lifetime.h"

#include "base/poison.h"

typedef struct relay {
    int efd, tfd;
    uint32_t slot; /* retired at the end, UINT32_MAX: none (a keeper keeps its slots) */
    _Atomic int refs;
} relay;

static pthread_mutex_t relay_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t relay_cv = PTHREAD_COND_INITIALIZER;
static int relays;

static void relay_put(relay *r)
{
    if (atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    shim_close_owned(r->efd);
    shim_close_owned(r->tfd);
    if (r->slot != UINT32_MAX)
        shim_slot_retire(r->slot);
    shim_free(r);
    pthread_mutex_lock(&relay_mu);
    relays--;
    pthread_cond_broadcast(&relay_cv);
    pthread_mutex_unlock(&relay_mu);
}

static void copy_one_way(relay *r, int from, int to)
{
    char buf[65536];
    for (;;) {
        ssize_t n = real_read(from, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0) {
            real_shutdown(to, SHUT_WR);
            break;
        }
        if (n < 0)
            goto broken;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = real_send(to, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                goto broken;
            off += w;
        }
    }
    relay_put(r);
    return;
broken:
    real_shutdown(r->efd, SHUT_RDWR);
    real_shutdown(r->tfd, SHUT_RDWR);
    relay_put(r);
}

static void *app_to_tcp(void *arg)
{
    relay *r = arg;
    copy_one_way(r, r->efd, r->tfd);
    return NULL;
}

static void *tcp_to_app(void *arg)
{
    relay *r = arg;
    copy_one_way(r, r->tfd, r->efd);
    return NULL;
}

int shim_relay_start(int efd, int tfd, uint32_t slot)
{
    relay *r = shim_calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    /* blocking both: one thread each way waits in read() or send() */
    int fl = real_fcntl(efd, F_GETFL), tl = real_fcntl(tfd, F_GETFL);
    if (fl < 0 || tl < 0 || real_fcntl(efd, F_SETFL, fl & ~O_NONBLOCK) < 0 ||
        real_fcntl(tfd, F_SETFL, tl & ~O_NONBLOCK) < 0) {
        shim_free(r);
        return -errno;
    }
    r->efd = efd;
    r->tfd = tfd;
    r->slot = slot;
    atomic_store(&r->refs, 2);
    pthread_mutex_lock(&relay_mu);
    relays++;
    pthread_mutex_unlock(&relay_mu);
    pthread_t t;
    if (shim_thread_start(&t, app_to_tcp, r) < 0) {
        r->efd = r->tfd = -1; /* still the caller's, as said */
        r->slot = UINT32_MAX;
        atomic_store(&r->refs, 1);
        relay_put(r);
        return -EAGAIN;
    }
    if (shim_thread_start(&t, tcp_to_app, r) < 0) {
        real_shutdown(efd, SHUT_RDWR); /* the other thread ends and frees */
        real_shutdown(tfd, SHUT_RDWR);
        relay_put(r);
        return 0;
    }
    return 0;
}

void shim_relays_wait(void)
{
    pthread_mutex_lock(&relay_mu);
    while (relays)
        pthread_cond_wait(&relay_cv, &relay_mu);
    pthread_mutex_unlock(&relay_mu);
}
