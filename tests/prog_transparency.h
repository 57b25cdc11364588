/*
 * prog_transparency's private header: what its files share, the limits of
 * its waits, the helpers its cases call across files and the cases main
 * runs. The program and the cases it checks: prog_transparency.c.
 *
 *   prog_transparency.c          main; pairs of connections, waits, a thread
 *                                blocked in one call (struct waiter); the
 *                                stdio, sendfile, dup, signals, peek,
 *                                fionread and handler cases
 *   prog_transparency_ready.c    the epoll and wake cases
 *   prog_transparency_threads.c  the threads case
 *
 * Each function is documented where it is defined.
 */
#ifndef PROG_TRANSPARENCY_H
#define PROG_TRANSPARENCY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/types.h>

#define WATCHDOG_S 60
#define IO_MS 10000   /* bound on every wait for bytes or a connection */
#define WAKE_S 10     /* a waiter not woken by then missed the wake-up */
#define THREADS 1000
#define THREAD_STACK (64 * 1024)

struct waiter;
typedef int waiter_call(struct waiter *w);

/* One call made by a thread of its own: run by waiter_start(), announced
 * (tid) just before the call, its result and errno kept, done set after. */
struct waiter {
    pthread_t t;
    waiter_call *call;
    int fd, ep;
    struct uring *ring;
    char buf[4096];
    ssize_t n;
    int result, err;
    _Atomic pid_t tid;
    atomic_int done;
};

void pair(int *c, int *a);
void carry(int fd, int peer, const char *s, const char *what);
void nap_ms(long ms);
void wait_queued(int fd, int n, const char *what);
void drain(int a, size_t n);
long wait_sleeping(pid_t tid, long after, const char *what);
void waiter_start(struct waiter *w, waiter_call *call, int fd);
long waiter_asleep(struct waiter *w, const char *what);
void waiter_join(struct waiter *w);

/* prog_transparency_ready.c */
void case_epoll_modes(void);
void case_epoll_exclusive(void);
void case_wake(void);
/* prog_transparency_threads.c */
void case_threads(int count);

#endif
