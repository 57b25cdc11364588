/*
 * adopt.c: serving a child that shares our memory but has an fd table of
 * its own (vfork(), clone(CLONE_VM) without CLONE_FILES: procenv.c).
 *
 * Such a child has no engine thread of its own and can start none: a thread
 * belongs to the process whose thread makes it, and glibc's pthread_create()
 * in a child that runs on its parent's thread descriptor corrupts the
 * thread list they share. The engines of the process that owns them serve
 * it instead; their threads act on that process's fd table, so the sockets
 * the child's connect() hands to an engine (the UDP socket, the engine's
 * end of the bridge, the TCP socket the fallback races) are copied there
 * first: an engine takes each with pidfd_getfd(2) (Linux 5.6) while the
 * child waits, checks that it is the socket the child named (its inode),
 * and then the child closes its own copies. The app's end stays the child's.
 * A listen() hands over the UDP socket, the TCP socket holding the port and
 * the names other processes find the listener by (engines.c).
 *
 * Waking an engine from the child: the engine sleeps in epoll_wait() on its
 * eventfd, a file of the owner's table. A child cloned after the engine
 * started has a copy of it at the same number (checked by inode); one
 * cloned before takes a copy from the owner with pidfd_getfd.
 *
 * pidfd_getfd needs ptrace access (PTRACE_MODE_ATTACH_REALCREDS, man 2
 * pidfd_getfd) to the process it takes from. The owner has it to its child
 * unless Yama's ptrace_scope is 2 or more or the shared memory was made
 * non-dumpable; the child to the owner only where Yama allows tracing a
 * parent (ptrace_scope 0). Where it is refused, or no engine runs yet, the
 * child's sockets are kernel TCP, as the kernel gives them (logged once).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "lifetime.h"

#include "base/poison.h"

#define ADOPT_MAX 4
#define ADOPT_WAIT_NS 10000000000LL /* an engine answers within a turn; 10 s is a stuck one */

enum { A_PENDING, A_DONE, A_FAILED, A_ABANDONED };

typedef struct shim_adopt_req {
    _Atomic uint32_t state; /* A_*: the child waits on it (a futex word) */
    _Atomic int refs;       /* the child's and the engine's */
    pid_t pid;              /* the child (the asking process) */
    pid_t tid;              /* its asking thread */
    int n;
    unsigned char held[ADOPT_MAX]; /* out[i] was the engine's already (held_already) */
    int fds[ADOPT_MAX];     /* the child's numbers ... */
    uint64_t inos[ADOPT_MAX]; /* ... their sockets ... */
    int out[ADOPT_MAX];     /* ... and the owner's copies */
    int err;                /* A_FAILED: -errno */
} adopt_req;

static void put(adopt_req *a)
{
    if (atomic_fetch_sub(&a->refs, 1) == 1)
        shim_free(a);
}

/* fd of process pfd's table, copied into ours if it is still the file
 * with inode ino; -errno otherwise. */
static int take(int pfd, int fd, uint64_t ino)
{
    int nfd = (int)syscall(SYS_pidfd_getfd, pfd, fd, 0); /* close-on-exec */
    if (nfd < 0)
        return -errno;
    if (shim_fd_ino(nfd) != ino) {
        real_close(nfd);
        return -EBADF; /* the number names another file now */
    }
    return nfd;
}

static void say_refused(const char *what, int err)
{
    static _Atomic int said;
    if (atomic_exchange(&said, 1))
        return;
    if (shim_procenv_table() == 0) /* the engine's own table (enginestart.c) */
        SHIM_LOG(RUDP_LOG_INFO, "the engine cannot take this process's sockets into its fd "
                                "table (%s: %s)", what, shim_strerror(-err));
    else
        SHIM_LOG(RUDP_LOG_INFO, "a child sharing %d's memory cannot hand its sockets to the "
                                "engines (%s: %s): it gets kernel TCP for them",
                 (int)shim_procenv_owner(), what, shim_strerror(-err));
}

int shim_adopt_wake_fd(struct engine *e, int *own)
{
    *own = 0;
    uint64_t ino;
    int evfd = shim_engine_evfd(e, &ino);
    if (evfd >= 0 && ino && shim_fd_ino(evfd) == ino)
        return evfd; /* cloned after the engine started: our copy */
    int pfd = (int)syscall(SYS_pidfd_open, shim_procenv_owner(), 0);
    if (pfd < 0)
        return -errno;
    int fd = take(pfd, evfd, ino);
    real_close(pfd);
    if (fd < 0)
        return fd;
    *own = 1;
    return fd;
}

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL /* Linux 6.9 */
#endif

/* A pidfd of the asking thread, whose fd table is the one to take from
 * (it waits for the answer, so it lives): that works when the process's
 * first thread has ended (pthread_exit from main), which a pidfd of the
 * process cannot (pidfd_getfd says ESRCH). Before Linux 6.9 (EINVAL), the
 * process's. */
static int asker_pidfd(const adopt_req *a)
{
    int pfd = (int)syscall(SYS_pidfd_open, a->tid, PIDFD_THREAD);
    if (pfd < 0 && errno == EINVAL)
        pfd = (int)syscall(SYS_pidfd_open, a->pid, 0);
    return pfd;
}

/* The number an engine whose table began as a copy of the program's
 * (engine 0, enginestart.c) holds already for fd, the same socket: taking
 * another copy would leave that one open for the engine's life (a port's
 * name, porthand.c, still bound after its listener closed). -1 if none. */
static int held_already(int fd, uint64_t ino)
{
    if (!shim_fds_in_engines() || !ino || !shim_ownfds_has(fd) || shim_fd_ino(fd) != ino)
        return -1;
    return fd;
}

void shim_adopt_run(adopt_req *a)
{
    int got = 0, err = 0;
    int pfd = -1; /* opened at the first fd not held already */
    for (; !err && got < a->n; got++) {
        int same = held_already(a->fds[got], a->inos[got]);
        if (same >= 0) {
            a->out[got] = same;
            a->held[got] = 1;
            continue;
        }
        if (pfd < 0 && (pfd = asker_pidfd(a)) < 0) {
            err = -errno;
            break;
        }
        int fd = take(pfd, a->fds[got], a->inos[got]);
        if (fd < 0) {
            err = fd;
            break;
        }
        a->out[got] = shim_fd_move_high(fd);
    }
    if (pfd >= 0)
        real_close(pfd);
    if (err)
        a->err = err;
    uint32_t want = A_PENDING;
    if (!atomic_compare_exchange_strong(&a->state, &want, err ? A_FAILED : A_DONE) || err) {
        for (int i = 0; i < got; i++) /* the child gave up, or not all could be taken */
            if (!a->held[i])
                real_close(a->out[i]);
    } else {
        for (int i = 0; i < got; i++)
            shim_own_fd(a->out[i], 1);
    }
    syscall(SYS_futex, (uint32_t *)&a->state, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    put(a);
}

/* Waits until a is no longer pending or the deadline passes. */
static uint32_t wait_answer(adopt_req *a)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        uint32_t s = atomic_load(&a->state);
        if (s != A_PENDING)
            return s;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long left = ADOPT_WAIT_NS - ((long long)(now.tv_sec - t0.tv_sec) * 1000000000LL +
                                          (now.tv_nsec - t0.tv_nsec));
        if (left <= 0)
            return A_PENDING;
        /* The shared memory is one mm: a private futex reaches the engine's
         * wake in the owner. */
        struct timespec ts = {.tv_sec = left / 1000000000LL, .tv_nsec = left % 1000000000LL};
        syscall(SYS_futex, (uint32_t *)&a->state, FUTEX_WAIT_PRIVATE, A_PENDING, &ts, NULL, 0);
    }
}

int shim_adopt_fds(struct engine *e, int *fds, int n)
{
    if (n > ADOPT_MAX)
        return -EINVAL;
    adopt_req *a = shim_calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    a->pid = getpid();
    a->tid = (pid_t)syscall(SYS_gettid);
    shim_fds_program_thread(); /* a live one, for the engines' own copies */
    a->n = n;
    for (int i = 0; i < n; i++) {
        a->fds[i] = fds[i];
        a->inos[i] = shim_fd_ino(fds[i]);
    }
    atomic_store(&a->refs, 2);
    int err = shim_engine_post_to(e, CMD_ADOPT, a);
    if (err < 0) {
        shim_free(a);
        say_refused("waking an engine", err);
        return err;
    }
    uint32_t s = wait_answer(a);
    if (s == A_PENDING) {
        uint32_t want = A_PENDING;
        if (atomic_compare_exchange_strong(&a->state, &want, A_ABANDONED)) {
            put(a); /* the engine, when it comes, closes what it took */
            SHIM_LOG(RUDP_LOG_WARN, "no engine took a child's sockets within 10 s: "
                                    "it gets kernel TCP for them");
            return -ETIMEDOUT;
        }
        s = want; /* answered meanwhile */
    }
    if (s == A_FAILED) {
        err = a->err;
        put(a);
        say_refused("pidfd_getfd", err);
        return err;
    }
    for (int i = 0; i < n; i++) {
        shim_close_owned(fds[i]); /* ours: the engine holds its copy */
        fds[i] = a->out[i];
    }
    put(a);
    return 0;
}
