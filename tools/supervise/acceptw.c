/*
 * acceptw.c: the blocking accept() calls that wait, all in one thread
 * (supervise.h). A worker per waiting accept cost a thread each (200
 * waiting accepts of a prefork server: 200 threads, each looking at its
 * call every second). Now a blocking accept on a listener we placed with
 * nothing to take is parked here: one thread polls every parked call's
 * copy of its listener and its acceptq eventfd (acceptq.c), and checks
 * each call's notification every second (a call a signal interrupted, or
 * whose thread is gone, is dropped: its answer would go nowhere). When a
 * listener becomes readable one of its parked calls (the oldest) goes to a
 * worker, which accepts as before (on_accept); the others of that
 * listener stay parked, and are not polled, until that worker is done:
 * the connection is one, and a second worker would wait in accept4 for
 * the next (the thundering herd a prefork server's workers would make).
 *
 * A parked call holds its listener as TCP's blocking accept() does, no
 * longer. It is watched through an epoll set of the call's own, which
 * takes no reference to the file (the kernel drops it from the set when
 * the file's last holder closes it, eventpoll_release). TCP's accept()
 * holds a reference (fdget) only where the fd table is shared, another
 * thread being able to close the fd meanwhile: then the call keeps a copy
 * too, until it ends. So the listener dies with the program's last holder,
 * as TCP's does: a prefork server's children killed in their blocking
 * accept, a connect right after is refused (prog_prefork); a copy held
 * by every parked call kept it alive, and accepting, until the call's
 * next check, a second later. The calling thread's pidfd is polled too: a
 * call whose thread is gone is dropped at once, its copy with it. The
 * worker the call goes to takes its own copy (on_accept).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "supervise.h"

struct parked {
    struct job *j;
    int ep, pidfd;   /* an epoll set watching the program's listener; the
                      * calling thread's pidfd (readable once it is gone) */
    int hold;        /* a copy of the listener held (a shared fd table), or -1 */
    int ev;          /* the listener's acceptq eventfd */
    uint64_t lino;
    struct parked *next;
};

/* A listener with a call at a worker: its other calls wait unpolled. */
#define INFLIGHT_MAX 64

static struct {
    pthread_mutex_t mu;
    struct parked *head;
    unsigned n;
    int wake; /* an eventfd: a call parked, a worker done */
    int started;
    uint64_t inflight[INFLIGHT_MAX]; /* 0: a free entry */
} w = {.mu = PTHREAD_MUTEX_INITIALIZER, .wake = -1};

static int inflight_has(uint64_t lino)
{
    for (int i = 0; i < INFLIGHT_MAX; i++)
        if (w.inflight[i] == lino)
            return 1;
    return 0;
}

/* Notes lino at a worker: 0, or -1 when the table is full (the call then
 * goes as before, without the guard). w.mu held. */
static int inflight_add(uint64_t lino)
{
    for (int i = 0; i < INFLIGHT_MAX; i++)
        if (!w.inflight[i]) {
            w.inflight[i] = lino;
            return 0;
        }
    return -1;
}

static void wake(void)
{
    uint64_t one = 1;
    if (write(w.wake, &one, sizeof one) < 0) {
        /* full: the thread is awake already */
    }
}

static void unpark(struct sup *s, struct parked *p)
{
    acceptq_wait_end(s, p->lino);
    close(p->ep);
    if (p->hold >= 0)
        close(p->hold);
    close(p->pidfd);
    free(p);
}

static void *waiter(void *arg)
{
    struct sup *s = arg;
    signals_block_thread();
    size_t cap = 129; /* grown with the calls parked */
    struct pollfd *pf = malloc(cap * sizeof *pf);
    struct parked **who = malloc(cap * sizeof *who);
    if (!pf || !who)
        abort(); /* at start, a few KB: the machine is out of memory */
    time_t checked = 0;
    for (;;) {
        pthread_mutex_lock(&w.mu);
        size_t need = 3 * (size_t)w.n + 1;
        if (need > cap) {
            struct pollfd *npf = realloc(pf, need * sizeof *pf);
            if (npf)
                pf = npf;
            struct parked **nwho = npf ? realloc(who, need * sizeof *who) : NULL;
            if (nwho)
                who = nwho;
            if (npf && nwho)
                cap = need; /* else the first ones only, until memory comes */
        }
        size_t k = 0;
        pf[k++] = (struct pollfd){.fd = w.wake, .events = POLLIN};
        for (struct parked *p = w.head; p && k + 3 <= cap; p = p->next) {
            who[k] = p;
            pf[k++] = (struct pollfd){.fd = p->pidfd, .events = POLLIN};
            if (inflight_has(p->lino))
                continue;
            who[k] = p;
            pf[k++] = (struct pollfd){.fd = p->ep, .events = POLLIN};
            who[k] = p;
            pf[k++] = (struct pollfd){.fd = p->ev, .events = POLLIN};
        }
        pthread_mutex_unlock(&w.mu);
        int n = poll(pf, (nfds_t)k, 1000);
        if (n < 0 && errno != EINTR)
            continue;
        uint64_t v;
        if (n > 0 && (pf[0].revents & POLLIN) && read(w.wake, &v, sizeof v) < 0) {
            /* taken by nobody else: never */
        }
        /* the ready listeners: the oldest parked call of each to a worker */
        struct job *go[64];
        int ngo = 0;
        pthread_mutex_lock(&w.mu);
        for (size_t i = 1; n > 0 && i < k && ngo < 64; i++) {
            if (!(pf[i].revents & (POLLIN | POLLERR | POLLHUP)))
                continue;
            /* still parked? (its other fd's entry may have sent it: who[i]
             * is then freed, and nothing is allocated meanwhile, w.mu held) */
            struct parked *p = who[i], **pp = &w.head;
            while (*pp && *pp != p)
                pp = &(*pp)->next;
            if (!*pp)
                continue;
            if (pf[i].fd == p->pidfd) {
                /* its thread is gone: the call and its copy go now */
                *pp = p->next;
                w.n--;
                free(p->j->req);
                free(p->j);
                unpark(s, p);
                continue;
            }
            if (inflight_has(p->lino))
                continue;
            *pp = p->next;
            w.n--;
            if (!notif_valid(s->lfd, p->j->req->id)) {
                /* interrupted (its restart is parked after it): not sent,
                 * the next round sends the next one */
                free(p->j->req);
                free(p->j);
                unpark(s, p);
                continue;
            }
            if (inflight_add(p->lino) == 0)
                p->j->inflight = p->lino;
            p->j->held = p->hold; /* the worker accepts on it */
            p->hold = -1;
            go[ngo++] = p->j;
            p->j = NULL;
            unpark(s, p);
        }
        /* every second: the calls gone (interrupted, their thread ended) */
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int check = now.tv_sec != checked;
        checked = now.tv_sec;
        for (struct parked **pp = check ? &w.head : NULL; pp && *pp;) {
            struct parked *p = *pp;
            if (notif_valid(s->lfd, p->j->req->id)) {
                pp = &p->next;
                continue;
            }
            *pp = p->next;
            w.n--;
            free(p->j->req);
            free(p->j);
            unpark(s, p);
        }
        pthread_mutex_unlock(&w.mu);
        for (int i = 0; i < ngo; i++)
            pool_submit(s, go[i]);
    }
    return NULL;
}

int acceptw_park(struct sup *s, struct job *j)
{
    const struct seccomp_notif *req = j->req;
    if (req->data.nr == __NR_accept4 &&
        (req->data.args[3] & ~(uint64_t)(SOCK_NONBLOCK | SOCK_CLOEXEC)))
        return -1; /* EINVAL: on_accept's */
    int pidfd;
    uint64_t lino = 0;
    int copy = take_fd(s, req, (int)req->data.args[0], &pidfd, &lino);
    if (copy < 0 || placed_bridge(s, lino) < 0 || (fcntl(copy, F_GETFL) & O_NONBLOCK))
        goto now;
    struct pollfd p = {.fd = copy, .events = POLLIN};
    if (poll(&p, 1, 0) != 0)
        goto now; /* a connection (or an error) to take at once */
    int ev = acceptq_wait_begin(s, lino);
    struct pollfd q = {.fd = ev, .events = POLLIN};
    if (ev < 0 || poll(&q, 1, 0) != 0) {
        if (ev >= 0)
            acceptq_wait_end(s, lino);
        goto now; /* no entry free (as before), or one held for it */
    }
    /* the listener watched without a reference to it (above) */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event eev = {.events = EPOLLIN};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, copy, &eev) < 0) {
        if (ep >= 0)
            close(ep);
        acceptq_wait_end(s, lino);
        goto now;
    }
    int hold = -1;
    if (fd_table_shared((pid_t)req->pid)) {
        hold = copy; /* as TCP's accept() holds it (above) */
    } else {
        close(copy);
    }
    copy = -1;
    struct parked *pk = malloc(sizeof *pk);
    pthread_mutex_lock(&w.mu);
    if (w.wake < 0)
        w.wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_t t;
    if (pk && w.wake >= 0 && !w.started && pthread_create(&t, NULL, waiter, s) == 0) {
        pthread_detach(t);
        w.started = 1;
    }
    if (!pk || !w.started) {
        pthread_mutex_unlock(&w.mu);
        free(pk);
        close(ep);
        if (hold >= 0)
            close(hold);
        acceptq_wait_end(s, lino);
        goto now;
    }
    *pk = (struct parked){.j = j, .ep = ep, .pidfd = pidfd, .hold = hold, .ev = ev,
                          .lino = lino, .next = NULL};
    struct parked **pp = &w.head;
    while (*pp)
        pp = &(*pp)->next; /* the oldest first */
    *pp = pk;
    w.n++;
    pthread_mutex_unlock(&w.mu);
    wake();
    return 0;
now:
    if (copy >= 0)
        close(copy);
    if (pidfd >= 0)
        close(pidfd);
    return -1;
}

void acceptw_done(uint64_t lino)
{
    pthread_mutex_lock(&w.mu);
    for (int i = 0; i < INFLIGHT_MAX; i++)
        if (w.inflight[i] == lino) {
            w.inflight[i] = 0;
            break;
        }
    pthread_mutex_unlock(&w.mu);
    wake();
}
