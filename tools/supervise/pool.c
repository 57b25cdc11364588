/*
 * pool.c: the worker threads of the calls that may wait (supervise.h).
 * A thread per connect cost more than the notification itself (~670 us
 * against ~36 us per --pass connect, docs/reach.md); workers are kept and
 * reused. The pool grows whenever no worker is idle, never queueing a
 * call behind one that waits (a blocking connect to a dead peer waits for
 * its timeout), and shrinks back to POOL_KEEP idle workers.
 */
#include <errno.h>
#include <time.h>

#include "supervise.h"

#define IDLE_SECONDS 30 /* an idle worker past POOL_KEEP ends after that */

static void *worker(void *arg)
{
    struct sup *s = arg;
    struct pool *p = &s->pool;
    signals_block_thread();
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += IDLE_SECONDS;
            p->idle++;
            int r = pthread_cond_timedwait(&p->cv, &p->mu, &until);
            p->idle--;
            if (r == ETIMEDOUT && !p->head && p->idle >= POOL_KEEP) {
                p->threads--;
                pthread_mutex_unlock(&p->mu);
                return NULL;
            }
        }
        struct job *j = p->head;
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        p->queued--;
        pthread_mutex_unlock(&p->mu);
        job_run(j);
        pthread_mutex_lock(&p->mu);
    }
}

void pool_init(struct sup *s)
{
    pthread_mutex_init(&s->pool.mu, NULL);
    pthread_cond_init(&s->pool.cv, NULL);
}

void pool_submit(struct sup *s, struct job *j)
{
    struct pool *p = &s->pool;
    j->next = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    p->queued++;
    /* an idle worker for each job queued, or one more worker */
    int run_here = 0;
    if (p->idle >= p->queued) {
        pthread_cond_signal(&p->cv);
    } else {
        pthread_attr_t attr;
        pthread_t t;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, worker, s) == 0)
            p->threads++;
        else if (p->threads == 0)
            run_here = 1; /* nobody would ever take it: here, as before */
        else
            pthread_cond_signal(&p->cv); /* queued for the first worker
                                          * free: never in the loop, where a
                                          * waiting accept would stop every
                                          * other call (review 15) */
        pthread_attr_destroy(&attr);
    }
    if (run_here) {
        /* take it back out: it is the last one queued */
        struct job **pp = &p->head;
        while (*pp != j)
            pp = &(*pp)->next;
        *pp = NULL;
        p->tail = NULL;
        for (struct job *k = p->head; k; k = k->next)
            p->tail = k;
        p->queued--;
    }
    pthread_mutex_unlock(&p->mu);
    if (run_here)
        job_run(j);
}
