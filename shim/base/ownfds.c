/*
 * ownfds.c: the fds the shim owns (UDP sockets, the engine's ends of the
 * bridges, epoll, the eventfd, the log file and the qlog directory), as a
 * bitmap per fd table under a mutex. The application's close()/
 * close_range()/closefrom() spare them, a forked child closes them (but the
 * log file and the qlog directory), and a keeper keeps only them.
 *
 * Which table: the program's, unless the engines keep their fds in a table
 * of their own (RUDP_FD_TABLE, engine/enginestart.c: "apart"). Then each
 * engine's thread (and a keeper forked from one) has a set of its own,
 * and the program's set holds only what the shim keeps in the program's
 * table (each engine's eventfd, the log file...). Every call acts on the
 * set of the calling thread's table: a thread says which engine's table it
 * is in with shim_fds_enter_engines(), kept in one byte of thread-local
 * storage, which a thread started by shim_thread_start() and a fork()
 * inherit.
 *
 * The numbers are the owner's fd table's. A child that shares our memory
 * but has an fd table of its own (vfork(), clone(CLONE_VM): procenv.c)
 * neither adds to the set nor takes from it, and none of its own fds are
 * the engine's: the engine holds copies in the owner's table (adopt.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base.h"

#include "poison.h"

typedef struct fdset {
    uint8_t *bits;
    int cap; /* bits */
} fdset;

static shim_mutex mu = SHIM_MUTEX_INITIALIZER;
/* [0] the program's table; [k + 1] engine k's own (RUDP_FD_TABLE) */
#define NTABLES (SHIM_ENGINES_MAX + 1)
static fdset sets[NTABLES];
static _Atomic int apart;
static __thread unsigned char in_engines; /* the calling thread's table: 0, or k + 1 */

int shim_fds_apart(void)
{
    return atomic_load_explicit(&apart, memory_order_acquire);
}

void shim_fds_set_apart(int on)
{
    atomic_store_explicit(&apart, on, memory_order_release);
}

/* A pidfd of this process in each engine's table (its number in that
 * table's set), opened when its thread enters it; and the pid it was
 * opened for: a keeper forked from an engine thread is another process,
 * whose "program" has no table left to copy from. Read without mu (a
 * copy may be taken under a caller's lock: appfd.c's), set once. */
static _Atomic int self_pidfd[NTABLES] = {-1, -1, -1, -1, -1, -1, -1, -1, -1};
static _Atomic pid_t self_pid[NTABLES];
/* each engine table's first thread (shim_fds_enter_engines), 0 none */
static _Atomic pid_t table_tid[NTABLES];

void shim_fds_enter_engines(int k)
{
    unsigned t = (unsigned)k + 1;
    in_engines = (unsigned char)t;
    pid_t me = getpid();
    /* once per table and process: a thread the engine starts (a relay)
     * shares its table, and with it the pidfd; a number an earlier
     * process left here names nothing of this one's */
    if (atomic_load(&self_pid[t]) == me && atomic_load(&self_pidfd[t]) >= 0)
        return;
    int p = (int)syscall(SYS_pidfd_open, me, 0);
    if (p >= 0) {
        p = shim_fd_move_high(p);
        shim_own_fd(p, 1);
    }
    atomic_store(&self_pidfd[t], p);
    atomic_store(&table_tid[t], (pid_t)syscall(SYS_gettid));
    atomic_store(&self_pid[t], me);
}

int shim_fds_in_engines(void)
{
    return in_engines;
}

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL /* Linux 6.9 */
#endif

/* A program thread seen last (shim_fds_program_thread), 0 none. */
static _Atomic pid_t program_tid;

void shim_fds_program_thread(void)
{
    /* not a CLONE_VM child's (it shares our memory, not our process) */
    if (!in_engines && shim_procenv_table() == 0)
        atomic_store_explicit(&program_tid, (pid_t)syscall(SYS_gettid), memory_order_relaxed);
}

/* A pidfd of thread tid if it is a live thread of this process whose fd
 * table is no engine's (the program's), else -1. The pidfd pins the
 * thread: tgkill then answers for that one (a tid reused by another
 * process's thread fails it). */
static int program_thread_pidfd(pid_t tid)
{
    pid_t me = getpid();
    int p = (int)syscall(SYS_pidfd_open, tid, PIDFD_THREAD);
    if (p < 0)
        return -1;
    int ok = syscall(SYS_tgkill, me, tid, 0) == 0;
    for (int t = 1; ok && t < NTABLES; t++) {
        pid_t e = atomic_load(&table_tid[t]);
        ok = !e || atomic_load(&self_pid[t]) != me ||
             (e != tid && syscall(SYS_kcmp, e, tid, KCMP_FILES, 0, 0) != 0);
    }
    if (!ok) {
        real_close(p);
        return -1;
    }
    return p;
}

typedef struct task_scan {
    pid_t tid;
    int p;
} task_scan;

static int try_task(int d, const char *name, long n, void *ctx)
{
    (void)d;
    (void)name;
    task_scan *t = ctx;
    if ((pid_t)n == getpid() || (t->p = program_thread_pidfd((pid_t)n)) < 0)
        return 0;
    t->tid = (pid_t)n;
    return 1;
}

/* A live program thread: the one seen last, or another found in
 * /proc/self/task (the first, whose table a pidfd of the process names,
 * has ended). Its pidfd, its tid in *tid; -1 if none. No libc allocator
 * (an engine thread). */
static int find_program_thread(pid_t *tid)
{
    pid_t t = atomic_load_explicit(&program_tid, memory_order_relaxed);
    int p = t > 0 ? program_thread_pidfd(t) : -1;
    if (p >= 0) {
        *tid = t;
        return p;
    }
    task_scan ts = {.tid = 0, .p = -1};
    if (shim_dir_each_num("/proc/self/task", try_task, &ts) <= 0)
        return -1;
    atomic_store_explicit(&program_tid, ts.tid, memory_order_relaxed);
    *tid = ts.tid;
    return ts.p;
}

pid_t shim_fds_program_tid(void)
{
    pid_t tid = 0;
    int p = find_program_thread(&tid);
    if (p < 0)
        return 0;
    real_close(p);
    return tid;
}

void shim_fds_program_fd_dir(char *path)
{
    memcpy(path, "/proc/self/fd", sizeof "/proc/self/fd");
    if (!shim_fds_apart())
        return; /* as before the engines' own tables (RUDP_FD_TABLE) */
    pid_t tid = shim_fds_program_tid();
    if (tid <= 0)
        return;
    char dig[12];
    int nd = 0;
    for (pid_t v = tid; v > 0 && nd < 11; v /= 10)
        dig[nd++] = (char)('0' + v % 10);
    char *w = path + strlen("/proc/self/");
    memcpy(w, "task/", 5);
    w += 5;
    while (nd > 0)
        *w++ = dig[--nd];
    memcpy(w, "/fd", 4);
}

/* fd of the program's table through a pidfd of a live program thread:
 * where the first thread has ended (pthread_exit from main), whose table
 * a pidfd of the process names (ESRCH). Linux 6.9 (PIDFD_THREAD). */
static int take_by_thread(int fd)
{
    pid_t tid;
    int p = find_program_thread(&tid);
    if (p < 0) {
        errno = ESRCH;
        return -1;
    }
    int c = (int)syscall(SYS_pidfd_getfd, p, fd, 0);
    int err = errno;
    real_close(p);
    errno = err;
    return c;
}

int shim_fds_take_program(int fd)
{
    unsigned t = in_engines;
    if (!t)
        return real_fcntl(fd, F_DUPFD_CLOEXEC, 0);
    int p = atomic_load(&self_pidfd[t]);
    if (p < 0 || atomic_load(&self_pid[t]) != getpid()) {
        errno = ESRCH;
        return -1;
    }
    /* The leader's table, the program's (the engines' threads have their
     * own); the ptrace check passes within one thread group. */
    int c = (int)syscall(SYS_pidfd_getfd, p, fd, 0);
    if (c < 0 && errno == ESRCH)
        c = take_by_thread(fd);
    return c;
}

int shim_fds_probe_take(int fd)
{
    int p = (int)syscall(SYS_pidfd_open, getpid(), 0);
    int c = p >= 0 ? (int)syscall(SYS_pidfd_getfd, p, fd, 0) : -1;
    if (c < 0 && errno == ESRCH)
        c = take_by_thread(fd);
    int err = errno;
    if (p >= 0)
        real_close(p);
    errno = err;
    return c;
}

/* The calling thread's set. */
static fdset *mine(void)
{
    return &sets[in_engines];
}

static int has(const fdset *s, int fd)
{
    return fd >= 0 && fd < s->cap && (s->bits[fd / 8] & (1u << (fd % 8)));
}

static void set_bit(fdset *s, int fd, int on)
{
    if (fd >= s->cap && on) {
        int n = s->cap ? s->cap : 4096;
        while (n <= fd)
            n *= 2;
        uint8_t *b = shim_realloc(s->bits, (size_t)n / 8);
        if (b) {
            memset(b + s->cap / 8, 0, (size_t)(n - s->cap) / 8);
            s->bits = b;
            s->cap = n;
        }
    }
    if (fd < s->cap) {
        if (on)
            s->bits[fd / 8] |= (uint8_t)(1u << (fd % 8));
        else
            s->bits[fd / 8] &= (uint8_t)~(1u << (fd % 8));
    }
}

void shim_own_fd(int fd, int on)
{
    if (fd < 0 || shim_procenv_table() != 0)
        return;
    shim_mutex_lock(&mu);
    set_bit(mine(), fd, on);
    shim_mutex_unlock(&mu);
}

void shim_ownfds_add(int fd)
{
    shim_own_fd(fd, 1);
}

int shim_ownfds_has(int fd)
{
    shim_mutex_lock(&mu);
    int r = has(mine(), fd);
    shim_mutex_unlock(&mu);
    return r;
}

int shim_ownfds_list(int *out, int max)
{
    if (shim_procenv_table() != 0)
        return 0; /* a CLONE_VM child's numbers: none is the engine's */
    int n = 0;
    shim_mutex_lock(&mu);
    const fdset *s = mine();
    for (int fd = 0; fd < s->cap && n < max; fd++)
        if (has(s, fd))
            out[n++] = fd;
    shim_mutex_unlock(&mu);
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
    shim_mutex_lock(&mu);
    fdset *s = mine();
    for (int fd = 0; fd < s->cap; fd++)
        if (has(s, fd) && !spared(fd, keep, n))
            real_close(fd);
    if (s->bits)
        memset(s->bits, 0, (size_t)s->cap / 8);
    /* The other tables' sets named other tables' numbers: a forked
     * child's engines start afresh, in whichever table they choose. */
    for (int t = 0; t < NTABLES; t++)
        if (t != in_engines && sets[t].bits)
            memset(sets[t].bits, 0, (size_t)sets[t].cap / 8);
    shim_mutex_unlock(&mu);
    for (int i = 0; i < n; i++)
        if (keep[i] >= 0)
            shim_own_fd(keep[i], 1);
}

void shim_ownfds_lock_renew(void)
{
    shim_mutex_init(&mu);
    shim_mutex_lock(&mu);
}

void shim_ownfds_lock(void)
{
    shim_mutex_lock(&mu);
}

void shim_ownfds_unlock(void)
{
    shim_mutex_unlock(&mu);
}
