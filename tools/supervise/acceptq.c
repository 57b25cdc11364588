/*
 * acceptq.c: connections accepted for an accept() that a signal
 * interrupted (supervise.h). The supervisor's accept4 on its copy of the
 * listener takes the connection out of the listener's queue; if the
 * program's call is interrupted before NOTIF_ADDFD hands it over (its
 * thread took a signal: the kernel restarts the call with SA_RESTART, or
 * the program calls again), the connection is held here for the
 * listener's next accept(), as TCP keeps it queued, rather than closed
 * (its peer then saw the connection end). A call waiting on a blocking
 * listener polls the entry's eventfd beside the listener, so a connection
 * held while it waits reaches it at once.
 */
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "supervise.h"

/* lino's entry, made if make (NULL: none, or none free); mu held. */
static struct acceptq *entry(struct sup *s, uint64_t lino, int make)
{
    struct acceptq *free_one = NULL;
    for (int i = 0; i < ACCEPTQ_LISTENERS; i++) {
        struct acceptq *q = &s->acceptq[i];
        if (q->lino == lino)
            return q;
        if (!q->lino && !free_one)
            free_one = q;
    }
    if (!make || !free_one)
        return NULL;
    int ev = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ev < 0)
        return NULL;
    memset(free_one, 0, sizeof *free_one);
    free_one->lino = lino;
    free_one->ev = ev;
    return free_one;
}

/* Frees q once nobody waits on it and it holds nothing; mu held. */
static void tidy(struct acceptq *q)
{
    if (q->waiters == 0 && q->n == 0) {
        close(q->ev);
        q->lino = 0;
    }
}

int acceptq_wait_begin(struct sup *s, uint64_t lino)
{
    pthread_mutex_lock(&s->mu);
    struct acceptq *q = entry(s, lino, 1);
    int ev = -1;
    if (q) {
        q->waiters++;
        ev = q->ev;
    }
    pthread_mutex_unlock(&s->mu);
    return ev;
}

void acceptq_wait_end(struct sup *s, uint64_t lino)
{
    pthread_mutex_lock(&s->mu);
    struct acceptq *q = entry(s, lino, 0);
    if (q && q->waiters > 0) {
        q->waiters--;
        tidy(q);
    }
    pthread_mutex_unlock(&s->mu);
}

void acceptq_hold(struct sup *s, uint64_t lino, int fd, const struct sockaddr_storage *ss,
                  socklen_t len)
{
    pthread_mutex_lock(&s->mu);
    struct acceptq *q = entry(s, lino, 1);
    if (!q) {
        pthread_mutex_unlock(&s->mu);
        close(fd); /* nowhere to hold it: lost, as before */
        return;
    }
    if (q->n == ACCEPTQ_HELD) {
        close(q->held[0].fd); /* its program never came back for it */
        memmove(&q->held[0], &q->held[1], sizeof q->held[0] * (ACCEPTQ_HELD - 1));
        q->n--;
    }
    q->held[q->n].fd = fd;
    q->held[q->n].ss = *ss;
    q->held[q->n].len = len;
    q->n++;
    uint64_t one = 1;
    if (write(q->ev, &one, sizeof one) < 0) {
        /* the counter is far from full: never */
    }
    pthread_mutex_unlock(&s->mu);
}

int acceptq_take(struct sup *s, uint64_t lino, struct sockaddr_storage *ss, socklen_t *len)
{
    int fd = -1;
    pthread_mutex_lock(&s->mu);
    struct acceptq *q = entry(s, lino, 0);
    if (q && q->n > 0) {
        fd = q->held[0].fd;
        *ss = q->held[0].ss;
        *len = q->held[0].len;
        memmove(&q->held[0], &q->held[1], sizeof q->held[0] * (size_t)(q->n - 1));
        if (--q->n == 0) {
            uint64_t v;
            if (read(q->ev, &v, sizeof v) < 0) {
                /* not readable: nothing to drain */
            }
            tidy(q);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return fd;
}
