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
 *
 * A relay crosses the keeper's fork. Where the engines keep their fds in a
 * table of their own (RUDP_FD_TABLE=own) every connection that won over
 * kernel TCP is relayed in the program itself, and when the program exits
 * (or execs) with one still carried, a forked child holding the app's end,
 * the relay must go on in the keeper. Threads do not cross a fork: the
 * keeper used to inherit the count of relays without their threads and
 * waited for them for ever (a keeper of rudp-supervise's still there after
 * 37 minutes), and the connection died with the program. Now each
 * direction keeps its bytes in flight in the relay (read, not yet sent),
 * polls with its relay's stop fd (an eventfd in the relay's fd table, which
 * is an engine's where the engines keep their own: written from each
 * engine's thread), and parks at a safe point when the keeper is about to
 * be forked (shim_relays_park): the keeper finds every relay's state
 * whole in its copy of the memory and starts a thread for each direction
 * still running (shim_relays_adopt), and the program's parked threads end
 * with it. An exec that fails lets them go on (shim_relays_unpark). A
 * child of an ordinary fork() has the relays' memory and none of their
 * threads: they are its parent's, and it forgets them (atfork).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lifetime.h"

#include "base/poison.h"

/* One direction: bytes read from `from` and not yet sent to `to` wait in
 * buf[off, len), where a keeper forked meanwhile finds them. */
typedef struct way {
    struct relay *r;
    int from, to;
    int done; /* its thread ended (EOF or a failure); relay_mu */
    size_t len, off;
    char buf[65536];
} way;

typedef struct relay {
    struct relay *next; /* relay_list; relay_mu */
    int efd, tfd;
    int sfd;             /* its stop fd: readable while parking (wakes the polls) */
    uint64_t eino, tino, sino; /* their inodes: the keeper's table may hold other files at
                                  those numbers */
    uint32_t slot;       /* retired at the end, UINT32_MAX: none (a keeper keeps its slots) */
    _Atomic int refs;    /* directions whose thread has not let go of it */
    way way[2];          /* app to TCP, TCP to app */
} relay;

static pthread_mutex_t relay_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t relay_cv = PTHREAD_COND_INITIALIZER;
static relay *relay_list;
static int relays;          /* in relay_list */
static int running, parked; /* directions whose thread runs; of them parked */
static int parking;         /* shim_relays_park asked them to */
static _Atomic int parking_flag; /* the same, read between two calls */

/* Off the list and freed, its fds closed: the last direction's end. */
static void relay_free(relay *r)
{
    pthread_mutex_lock(&relay_mu);
    for (relay **p = &relay_list; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            relays--;
            break;
        }
    pthread_cond_broadcast(&relay_cv);
    pthread_mutex_unlock(&relay_mu);
    shim_close_owned(r->efd);
    shim_close_owned(r->tfd);
    shim_close_owned(r->sfd);
    if (r->slot != UINT32_MAX)
        shim_slot_retire(r->slot);
    shim_free(r);
}

static void relay_put(relay *r)
{
    if (atomic_fetch_sub(&r->refs, 1) == 1)
        relay_free(r);
}

/* Parked while shim_relays_park holds them; relay_mu not held. */
static void park(void)
{
    pthread_mutex_lock(&relay_mu);
    if (parking) {
        parked++;
        pthread_cond_broadcast(&relay_cv);
        while (parking)
            pthread_cond_wait(&relay_cv, &relay_mu);
        parked--;
    }
    pthread_mutex_unlock(&relay_mu);
}

/* Until fd is ready for ev, or a park is asked for (then parked first). */
static void wait_for(relay *r, int fd, short ev)
{
    struct pollfd p[2] = {{.fd = fd, .events = ev}, {.fd = r->sfd, .events = POLLIN}};
    int n = real_poll(p, 2, -1);
    if (n > 0 && (p[1].revents & POLLIN)) {
        park();
        uint64_t v; /* parked and let go: the stop fd read empty again */
        ssize_t k = real_read(r->sfd, &v, sizeof v);
        (void)k;
    }
}

/* Copies until EOF (0: half-closed on) or a failure (1). */
static int copy(way *w)
{
    for (;;) {
        if (atomic_load_explicit(&parking_flag, memory_order_acquire))
            park();
        if (w->off < w->len) {
            ssize_t n = real_send(w->to, w->buf + w->off, w->len - w->off,
                                  MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0)
                w->off += (size_t)n;
            else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                wait_for(w->r, w->to, POLLOUT);
            else if (n == 0 || errno != EINTR)
                return 1;
            continue;
        }
        ssize_t n = real_recv(w->from, w->buf, sizeof w->buf, MSG_DONTWAIT);
        if (n > 0) {
            w->off = 0;
            w->len = (size_t)n;
        } else if (n == 0) {
            real_shutdown(w->to, SHUT_WR);
            return 0;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            wait_for(w->r, w->from, POLLIN);
        } else if (errno != EINTR) {
            return 1;
        }
    }
}

static void *run_way(void *arg)
{
    way *w = arg;
    relay *r = w->r;
    int broken = copy(w);
    pthread_mutex_lock(&relay_mu);
    w->done = 1;
    running--;
    pthread_cond_broadcast(&relay_cv);
    pthread_mutex_unlock(&relay_mu);
    if (broken) {
        real_shutdown(r->efd, SHUT_RDWR);
        real_shutdown(r->tfd, SHUT_RDWR);
    }
    relay_put(r);
    return NULL;
}

/* A thread for direction w of a relay on the list; relay_mu held. The
 * caller counted it in r->refs; on failure the direction is done, and its
 * count given back (then both ends are shut, as for a failure). */
static int start_way(way *w)
{
    pthread_t t;
    running++;
    if (shim_thread_start(&t, run_way, w) == 0)
        return 0;
    running--;
    w->done = 1;
    real_shutdown(w->r->efd, SHUT_RDWR);
    real_shutdown(w->r->tfd, SHUT_RDWR);
    return -1;
}

int shim_relay_start(int efd, int tfd, uint32_t slot)
{
    relay *r = shim_calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->sfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->sfd >= 0)
        r->sfd = shim_fd_move_high_cloexec(r->sfd); /* among the engines' numbers */
    if (r->sfd < 0) {
        int e = errno;
        shim_free(r);
        return -e;
    }
    shim_own_fd(r->sfd, 1);
    r->efd = efd;
    r->tfd = tfd;
    r->eino = shim_fd_ino(efd);
    r->tino = shim_fd_ino(tfd);
    r->sino = shim_fd_ino(r->sfd);
    r->slot = slot;
    for (int i = 0; i < 2; i++) {
        r->way[i].r = r;
        r->way[i].from = i ? tfd : efd;
        r->way[i].to = i ? efd : tfd;
    }
    pthread_mutex_lock(&relay_mu);
    atomic_store(&r->refs, 2);
    r->next = relay_list;
    relay_list = r;
    relays++;
    if (start_way(&r->way[0]) < 0) {
        /* no thread at all: off the list, both fds still the caller's */
        relay_list = r->next;
        relays--;
        pthread_mutex_unlock(&relay_mu);
        shim_close_owned(r->sfd);
        shim_free(r);
        return -EAGAIN;
    }
    int second = start_way(&r->way[1]);
    pthread_mutex_unlock(&relay_mu);
    if (second < 0)
        relay_put(r); /* the first thread ends (both shut) and frees */
    return 0;
}

void shim_relays_wait(void)
{
    pthread_mutex_lock(&relay_mu);
    while (relays)
        pthread_cond_wait(&relay_cv, &relay_mu);
    pthread_mutex_unlock(&relay_mu);
}

int shim_relays_live(void)
{
    pthread_mutex_lock(&relay_mu);
    int n = relays;
    pthread_mutex_unlock(&relay_mu);
    return n;
}

/* The stop fds to poke (shim_relays_park): numbers in their relay's table,
 * which this thread's may not be (poke runs on each engine's thread too). */
typedef struct pokes {
    int n;
    int fd[];
} pokes;

static void poke(void *arg)
{
    pokes *p = arg;
    for (int i = 0; i < p->n; i++) {
        uint64_t one = 1;
        /* a number closed since, or another file's here: a write to an
         * eventfd wakes a poll for nothing; any other fails */
        ssize_t w = real_write(p->fd[i], &one, sizeof one);
        (void)w;
    }
}

void shim_relays_park(void)
{
    pthread_mutex_lock(&relay_mu);
    if (!running) {
        pthread_mutex_unlock(&relay_mu);
        return;
    }
    parking = 1;
    atomic_store_explicit(&parking_flag, 1, memory_order_release);
    pokes *p = shim_calloc(1, sizeof *p + (size_t)relays * sizeof p->fd[0]);
    for (relay *r = relay_list; p && r; r = r->next)
        p->fd[p->n++] = r->sfd;
    /* Not under relay_mu: the engines' pause takes G.mu, which a fork's
     * handlers take before relay_mu. A relay started meanwhile sees
     * parking_flag before its first wait. */
    pthread_mutex_unlock(&relay_mu);
    if (p) {
        /* in this thread's table, and in each engine's (their own where
         * RUDP_FD_TABLE=own): the engines are paused and run it */
        poke(p);
        for (int k = 0; k < shim_engines_nrun(); k++)
            shim_engines_run_parked(shim_engine_nth(k), poke, p);
        shim_free(p);
    }
    pthread_mutex_lock(&relay_mu);
    while (parked < running)
        pthread_cond_wait(&relay_cv, &relay_mu);
    pthread_mutex_unlock(&relay_mu);
}

void shim_relays_unpark(void)
{
    pthread_mutex_lock(&relay_mu);
    if (parking) {
        /* each thread reads its stop fd empty as it goes on (wait_for) */
        parking = 0;
        atomic_store_explicit(&parking_flag, 0, memory_order_release);
        pthread_cond_broadcast(&relay_cv);
    }
    pthread_mutex_unlock(&relay_mu);
}

/* Whether r's fds are in this table (a keeper forked from another
 * engine's thread holds other files at those numbers). */
static int in_table(const relay *r)
{
    return shim_fd_ino(r->efd) == r->eino && shim_fd_ino(r->tfd) == r->tino && shim_fd_ino(r->sfd) == r->sino;
}

/* run on an engine's thread (shim_engines_run_parked): *arg gets how many
 * relays have their fds in its table */
void shim_relays_count_here(void *arg)
{
    int n = 0;
    pthread_mutex_lock(&relay_mu);
    for (relay *r = relay_list; r; r = r->next)
        n += in_table(r);
    pthread_mutex_unlock(&relay_mu);
    *(int *)arg = n;
}

void shim_relays_adopt(void)
{
    pthread_mutex_lock(&relay_mu);
    /* the program's threads were parked (or are gone): none runs here */
    running = parked = parking = 0;
    atomic_store(&parking_flag, 0);
    relay *next;
    for (relay *r = relay_list; r; r = next) {
        next = r->next;
        int live = !r->way[0].done + !r->way[1].done;
        if (!live || !in_table(r)) {
            /* Over already, or not in this table: let go of it, its fds
             * closed only if they are its. */
            if (!in_table(r))
                r->efd = r->tfd = r->sfd = -1; /* shim_close_owned(-1) does nothing */
            r->slot = UINT32_MAX; /* a keeper keeps its slots */
            pthread_mutex_unlock(&relay_mu);
            relay_free(r);
            pthread_mutex_lock(&relay_mu);
            continue;
        }
        uint64_t v;
        ssize_t k = real_read(r->sfd, &v, sizeof v); /* poked before the fork */
        (void)k;
        r->slot = UINT32_MAX; /* a keeper keeps its slots (fallback.c) */
        atomic_store(&r->refs, live);
        for (int i = 0; i < 2; i++)
            if (!r->way[i].done && start_way(&r->way[i]) < 0 && atomic_fetch_sub(&r->refs, 1) == 1) {
                pthread_mutex_unlock(&relay_mu);
                relay_free(r);
                pthread_mutex_lock(&relay_mu);
                break;
            }
    }
    int n = relays;
    pthread_mutex_unlock(&relay_mu);
    SHIM_LOG(RUDP_LOG_DEBUG, "keeper: %d relay(s) carried on", n);
}

void shim_relays_atfork_prepare(void)
{
    pthread_mutex_lock(&relay_mu);
}

void shim_relays_atfork_parent(void)
{
    pthread_mutex_unlock(&relay_mu);
}

/* The relays of a process this one is a copy of: its threads carry them,
 * none is here. Their fds were the engines', closed in this child already
 * (shim_engine_atfork_child). relay_mu held. */
static void forget_all(void)
{
    relay *next;
    for (relay *r = relay_list; r; r = next) {
        next = r->next;
        shim_free(r);
    }
    relay_list = NULL;
    relays = running = parked = parking = 0;
    atomic_store(&parking_flag, 0);
}

void shim_relays_atfork_child(int keeper)
{
    /* the parent's threads waiting on it (parked, or in shim_relays_wait)
     * are not here: a broadcast would wait for them for ever */
    pthread_cond_init(&relay_cv, NULL);
    if (!keeper) /* else taken over with the engines (shim_relays_adopt) */
        forget_all();
    pthread_mutex_unlock(&relay_mu);
}

void shim_relays_renew(void)
{
    /* a raw clone's child: the lock may have been held by a thread it
     * does not have */
    pthread_mutex_init(&relay_mu, NULL);
    pthread_cond_init(&relay_cv, NULL);
    forget_all();
}
