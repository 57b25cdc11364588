/*
 * prog_apprecv's private header: what its files share, the blocked reader
 * and the echo the checks use across files, and the checks main runs. The
 * program and what each check asserts: prog_apprecv.c.
 *
 *   prog_apprecv.c        main, the echo server, a thread blocked in read();
 *                         the pingpong, restart, eintr, longjmp, cancel,
 *                         stopped, fork and seccomp checks
 *   prog_apprecv_poll.c   pollpong, polleintr, epollpong, selectpong,
 *                         cancelmask
 *   prog_apprecv_reads.c  direct, lowat, rxmode
 *   prog_apprecv_kept.c   kept
 *
 * Each function is documented where it is defined.
 */
#ifndef PROG_APPRECV_H
#define PROG_APPRECV_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#define WATCHDOG_S 120
#define SHOWN_MS 5000

extern unsigned port; /* the echo server's */
extern _Atomic int handled;

struct blocked {
    int fd;
    pthread_t t;
    _Atomic pid_t tid;
    _Atomic int started;
    _Atomic int done; /* lowat_read returned */
    ssize_t got;
    int err;
    char byte;
};

void echo(int fd, int rounds);
void wait_blocked(struct blocked *b);
void on_usr1(int sig);
void set_handler(void (*h)(int), int flags);

/* prog_apprecv_poll.c */
void check_pollpong(int fd);
void check_polleintr(int fd);
void check_epollpong(int fd);
void check_selectpong(int fd);
void check_cancelmask(int fd);
/* prog_apprecv_reads.c */
void check_direct(int fd);
void check_lowat(int fd);
void check_rxmode(int fd, int forks);
int lowat_helper(int fd);
int lowat_recv_helper(int sp);
/* prog_apprecv_kept.c */
void check_kept(int fd, int forks);

#endif
