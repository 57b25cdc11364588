/*
 * sandbox.c: whether the application's threads may make the calls of their
 * own paths (engine/appsend.c, apprecv.c, interpose/poll.c, select.c,
 * epoll.c, sockopt.c's peeks), or must leave that work to the engines: not
 * where a seccomp filter may refuse those calls or kill the process for
 * one of them.
 *
 * A filter the program installs (prctl(PR_SET_SECCOMP), seccomp():
 * interpose/syscalls.c) binds the thread that installs it and the threads
 * that thread starts later, not the engines started before it (vsftpd's
 * seccomp_sandbox, sshd's privilege-separated child): from then on the app
 * threads leave their paths to the engines (shim_sandbox_set).
 *
 * A filter the process had before this image (inherited over exec) binds
 * every thread, the engines' too; /proc's "Seccomp:" says 2 then (1: strict
 * mode, where nothing of ours could run). Such a filter may allow every
 * call the paths make, as Docker's and Podman's default profiles do, where
 * every process of a container has one; or kill the process for one of
 * them, as a systemd unit's SystemCallFilter= does by default for a call
 * outside its list (its @system-service group lacks process_vm_readv). So
 * the first time the paths ask, a child process makes each of those calls
 * as the paths make them (calls_ok); the paths are on only if it answers
 * that each was answered as it should be. The child is a copy of this
 * process (a clone() without CLONE_VM: a filter's kill or trap, a stuck
 * call, touch nothing of ours; no atfork handlers; CLONE_UNTRACED: no
 * tracer's), made with every signal blocked (the program's handlers are
 * not for it; a trap's SIGSYS is forced on it all the same). It answers
 * through a pipe, so that the answer does not hang on who reaps it (a
 * reaper of the program's with __WALL may), and is killed (through its
 * pidfd: no pid reused) and reaped once it answered, or after
 * PROBE_WAIT_MS (a call held by a supervisor: SECCOMP_RET_USER_NOTIF). A
 * question that could not be put (EAGAIN, EMFILE) is put again next time.
 * Only the paths' own checks ask (shim_sandboxed); sockopt.c, on every
 * fcntl(F_SETFL), takes the answer so far (shim_sandboxed_known).
 *
 * The risk left: a filter that allows the engines' threads but kills a
 * process for making a child at all would kill it at this question. No
 * call tells a process what its filter allows; such a program turns the
 * paths off (RUDP_APP_RECV=0 RUDP_APP_SEND=0) and is never asked.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base.h"

#include "poison.h"

#define PROBE_WAIT_MS 2000

enum { FREE, SANDBOXED, INHERITED, PROBING };
static _Atomic int state = FREE;

void shim_sandbox_set(void)
{
    atomic_store(&state, SANDBOXED);
}

void shim_sandbox_start(void)
{
    char buf[4096];
    if (shim_read_text("/proc/self/status", buf, sizeof buf) <= 0)
        return;
    /* read, not asked with prctl(PR_GET_SECCOMP), which a filter may refuse */
    const char *p = strstr(buf, "\nSeccomp:");
    if (!p)
        return;
    p += strlen("\nSeccomp:");
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '1')
        shim_sandbox_set();
    else if (*p == '2') {
        int was = FREE;
        atomic_compare_exchange_strong(&state, &was, INHERITED);
    }
}

/* The calls of the app threads' paths that the engines' own do not make,
 * with the arguments those paths pass, in the order tried. */
static const char *const call_names[] = {
    "socketpair", "write", "ppoll", "pselect6", "recvfrom (MSG_PEEK)", "getpeername",
    "signalfd4", "rt_sigpending", "process_vm_readv", "process_vm_writev", "epoll_create1",
    "epoll_ctl",
};
enum { N_CALLS = sizeof call_names / sizeof call_names[0] };

/* In the child: 0 if every call was answered as it should be, else the
 * number (1-based, call_names) of the first that was not. System calls
 * alone, no libc state: the child is a copy made behind libc's back. */
#define TRY(ok)                                                                                    \
    do {                                                                                           \
        k++;                                                                                       \
        if (!(ok))                                                                                 \
            return k;                                                                              \
    } while (0)

static int calls_ok(void)
{
    int k = 0, sv[2], sfd, ep;
    char b = 'x', got = 0;
    struct timespec zero = {0, 0};
    uint64_t all = ~0ull, usr1 = 1ull << (SIGUSR1 - 1), usr2 = 1ull << (SIGUSR2 - 1), pending;
    TRY(syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    TRY(syscall(SYS_write, sv[0], &b, (size_t)1) == 1);
    /* as poll.c's and epoll.c's waits: with a mask (here one that lets no
     * signal in: the program's handlers are not for this copy), or none */
    struct pollfd p = {.fd = sv[1], .events = POLLIN};
    TRY(syscall(SYS_ppoll, &p, 1UL, &zero, &all, (size_t)8) == 1 &&
        syscall(SYS_ppoll, &p, 1UL, &zero, NULL, (size_t)8) == 1);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(sv[1], &r);
    TRY(syscall(SYS_pselect6, sv[1] + 1, &r, NULL, NULL, &zero, NULL) == 1);
    TRY(syscall(SYS_recvfrom, sv[1], &got, (size_t)1, MSG_PEEK | MSG_DONTWAIT, NULL, NULL) == 1);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    TRY(syscall(SYS_getpeername, sv[1], &ss, &sl) == 0);
    /* apprecv.c's signal_fd: made, then its mask changed */
    TRY((sfd = (int)syscall(SYS_signalfd4, -1, &usr1, (size_t)8, SFD_NONBLOCK | SFD_CLOEXEC)) >= 0 &&
        syscall(SYS_signalfd4, sfd, &usr2, (size_t)8, 0) == sfd);
    TRY(syscall(SYS_rt_sigpending, &pending, (size_t)8) == 0);
    long me = syscall(SYS_getpid);
    struct iovec here = {.iov_base = &got, .iov_len = 1}, there = {.iov_base = &b, .iov_len = 1};
    TRY(syscall(SYS_process_vm_readv, me, &here, 1UL, &there, 1UL, 0UL) == 1);
    TRY(syscall(SYS_process_vm_writev, me, &there, 1UL, &here, 1UL, 0UL) == 1);
    TRY((ep = (int)syscall(SYS_epoll_create1, EPOLL_CLOEXEC)) >= 0);
    struct epoll_event ev = {.events = EPOLLIN};
    TRY(syscall(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, sv[1], &ev) == 0 &&
        (ev.events = 0, syscall(SYS_epoll_ctl, ep, EPOLL_CTL_MOD, sv[1], &ev) == 0));
    return 0;
}

/* The child: answers through the pipe (its one byte, calls_ok's), so that
 * the answer does not depend on who reaps it (a reaper of the program's
 * with __WALL may). */
static void child(int wfd)
{
    unsigned char k = (unsigned char)calls_ok();
    syscall(SYS_write, wfd, &k, (size_t)1);
    syscall(SYS_exit_group, 0);
}

/* Ends the child (whatever it is doing: stopped, held in a call) and
 * reaps it if nobody has; how it ended into *st (-1: reaped elsewhere). */
static void end_child(long pid, int pidfd, int *st)
{
    if (pidfd >= 0) {
        syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0U);
    } else {
        long r0 = syscall(SYS_wait4, pid, st, __WCLONE | WNOHANG, NULL);
        if (r0 == pid)
            return; /* it had ended: reaped, its status in *st */
        if (r0 == 0)
            kill((pid_t)pid, SIGKILL); /* still ours: its pid not reused */
    }
    *st = -1;
    long r;
    while ((r = syscall(SYS_wait4, pid, st, __WCLONE, NULL)) < 0 && errno == EINTR)
        ;
    if (r != pid)
        *st = -1;
}

/* 1 if the calls are allowed here, 0 if not (why in why), -1 if the
 * question could not be put for a passing reason (EAGAIN, EMFILE...). */
static int probe(char *why, size_t n)
{
    int pfd[2], pidfd = -1;
    if (pipe2(pfd, O_CLOEXEC | O_NONBLOCK) != 0) {
        snprintf(why, n, "pipe: %s", shim_strerror(errno));
        return -1;
    }
    /* Every signal blocked from before the clone until the child is gone:
     * the program's handlers are not for that copy (Ctrl-C to the process
     * group), and the child starts with them blocked (a trap's SIGSYS is
     * forced on it all the same). A fork without the program's atfork
     * handlers, no signal at its end, no tracer's (gdb would take it for a
     * thread), and a pidfd where the kernel gives one (5.2). */
    uint64_t all = ~0ull, old = 0;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, (size_t)8);
    long c = syscall(SYS_clone, (unsigned long)(CLONE_UNTRACED | CLONE_PIDFD), 0UL, &pidfd, NULL,
                     0UL);
    if (c < 0 && errno == EINVAL) {
        pidfd = -1;
        c = syscall(SYS_clone, (unsigned long)CLONE_UNTRACED, 0UL, NULL, NULL, 0UL);
    }
    if (c == 0)
        child(pfd[1]);
    int err = errno;
    real_close(pfd[1]);
    int ok = -1;
    if (c < 0) {
        snprintf(why, n, "clone: %s", shim_strerror(err));
        ok = err == EAGAIN || err == ENOMEM ? -1 : 0;
    } else {
        struct timespec until, now;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += PROBE_WAIT_MS / 1000;
        unsigned char k = 0xff;
        ssize_t got = -1;
        /* read and nap, not ppoll: the filter may refuse ppoll (this is
         * what it asks), not a read or a sleep, which every program makes */
        for (;;) {
            got = (ssize_t)syscall(SYS_read, pfd[0], &k, (size_t)1);
            if (got >= 0 || (errno != EAGAIN && errno != EINTR))
                break;
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec > until.tv_sec ||
                (now.tv_sec == until.tv_sec && now.tv_nsec >= until.tv_nsec))
                break;
            struct timespec nap = {0, 100000L};
            nanosleep(&nap, NULL);
        }
        int st;
        end_child(c, pidfd, &st);
        ok = got == 1 && k == 0;
        if (got == 1 && k >= 1 && k <= N_CALLS)
            snprintf(why, n, "%s refused", call_names[k - 1]);
        else if (got < 0)
            snprintf(why, n, "no answer within %d ms", PROBE_WAIT_MS);
        else if (got == 0 && st != -1 && WIFSIGNALED(st))
            snprintf(why, n, "killed by signal %d", WTERMSIG(st));
        else if (!ok)
            snprintf(why, n, "the child ended without an answer");
    }
    if (pidfd >= 0)
        real_close(pidfd);
    real_close(pfd[0]);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, (size_t)8);
    return ok;
}

int shim_sandboxed(void)
{
    int s = atomic_load_explicit(&state, memory_order_acquire);
    if (s == INHERITED && atomic_compare_exchange_strong(&state, &s, PROBING)) {
        int saved = errno, cancel;
        /* a cancellation in the probe's waits would leave PROBING for good */
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel);
        char why[96] = "";
        int ok = probe(why, sizeof why);
        int was = PROBING; /* a filter the program installed meanwhile wins */
        if (atomic_compare_exchange_strong(&state, &was,
                                           ok > 0 ? FREE : ok < 0 ? INHERITED : SANDBOXED)) {
            if (ok > 0)
                SHIM_LOG(RUDP_LOG_INFO, "seccomp: the filter this process started under allows "
                                        "the calls of the app threads' own paths: they are on");
            else if (ok == 0)
                SHIM_LOG(RUDP_LOG_INFO, "seccomp: the filter this process started under may not "
                                        "allow the app threads' own paths (%s): the engines do "
                                        "their work", why);
        }
        pthread_setcancelstate(cancel, NULL);
        errno = saved;
        s = atomic_load_explicit(&state, memory_order_acquire);
    }
    return s != FREE; /* while a thread asks, or to be asked again: off */
}

int shim_sandboxed_known(void)
{
    return atomic_load_explicit(&state, memory_order_acquire) != FREE;
}

void shim_sandbox_atfork_child(void)
{
    int was = PROBING; /* the asking thread is not in this copy */
    atomic_compare_exchange_strong(&state, &was, INHERITED);
}

int shim_sandbox_probe_calls(char *why, size_t n)
{
    return probe(why, n) > 0;
}
