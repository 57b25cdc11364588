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
 * the first time the question is asked, a child process makes each of
 * those calls as the paths make them (calls_ok); the paths are on only if
 * every call was answered as it should be and the child ended on its own.
 * The child is a copy of this process (a clone() without CLONE_VM: a
 * filter's kill or trap, a stuck call, touch nothing of ours), asks for no
 * signal at its end, and is waited for with __WCLONE, which the program's
 * own wait() and waitpid(-1) never reap; one that has not ended within
 * PROBE_WAIT_MS (a call held by a supervisor: SECCOMP_RET_USER_NOTIF) is
 * killed, and the paths stay off.
 */
#include <errno.h>
#include <poll.h>
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
    "signalfd4", "process_vm_readv", "process_vm_writev", "epoll_create1", "epoll_ctl",
    "epoll_pwait2",
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
    int k = 0, sv[2], ep;
    char b = 'x', got = 0;
    struct timespec zero = {0, 0};
    sigset_t all, one;
    sigfillset(&all);
    sigemptyset(&one);
    sigaddset(&one, SIGUSR1);
    /* the program's handlers are not for this copy (a trap's SIGSYS still
     * comes: the kernel forces it) */
    syscall(SYS_rt_sigprocmask, SIG_BLOCK, &all, NULL, (size_t)8);
    TRY(syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    TRY(syscall(SYS_write, sv[0], &b, (size_t)1) == 1);
    struct pollfd p = {.fd = sv[1], .events = POLLIN};
    TRY(syscall(SYS_ppoll, &p, 1UL, &zero, NULL, (size_t)8) == 1);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(sv[1], &r);
    TRY(syscall(SYS_pselect6, sv[1] + 1, &r, NULL, NULL, &zero, NULL) == 1);
    TRY(syscall(SYS_recvfrom, sv[1], &got, (size_t)1, MSG_PEEK | MSG_DONTWAIT, NULL, NULL) == 1);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    TRY(syscall(SYS_getpeername, sv[1], &ss, &sl) == 0);
    TRY(syscall(SYS_signalfd4, -1, &one, (size_t)8, SFD_NONBLOCK | SFD_CLOEXEC) >= 0);
    long me = syscall(SYS_getpid);
    struct iovec here = {.iov_base = &got, .iov_len = 1}, there = {.iov_base = &b, .iov_len = 1};
    TRY(syscall(SYS_process_vm_readv, me, &here, 1UL, &there, 1UL, 0UL) == 1);
    TRY(syscall(SYS_process_vm_writev, me, &there, 1UL, &here, 1UL, 0UL) == 1);
    TRY((ep = (int)syscall(SYS_epoll_create1, EPOLL_CLOEXEC)) >= 0);
    struct epoll_event ev = {.events = EPOLLIN};
    TRY(syscall(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, sv[1], &ev) == 0 &&
        (ev.events = 0, syscall(SYS_epoll_ctl, ep, EPOLL_CTL_MOD, sv[1], &ev) == 0));
    TRY(syscall(SYS_epoll_pwait2, ep, &ev, 1, &zero, NULL, (size_t)8) >= 0);
    return 0;
}

/* 1 if the calls are allowed here, else 0 and why (a call's name, or how
 * the child ended) in why. */
static int probe(char *why, size_t n)
{
    int saved = errno;
    /* a fork without the program's atfork handlers, nor SIGCHLD at its end */
    long c = syscall(SYS_clone, 0UL, 0UL, NULL, NULL, 0UL);
    if (c == 0)
        syscall(SYS_exit_group, calls_ok());
    if (c < 0) {
        snprintf(why, n, "clone: %s", shim_strerror(errno));
        errno = saved;
        return 0;
    }
    int st = 0, waited = 0;
    long r;
    while ((r = syscall(SYS_wait4, c, &st, __WCLONE | WNOHANG, NULL)) == 0 &&
           waited < PROBE_WAIT_MS) {
        struct timespec ms = {0, 1000000L};
        nanosleep(&ms, NULL);
        waited++;
    }
    if (r == 0) { /* held: a supervisor that does not answer */
        kill((pid_t)c, SIGKILL);
        while (syscall(SYS_wait4, c, &st, __WCLONE, NULL) < 0 && errno == EINTR)
            ;
        snprintf(why, n, "the calls did not return within %d ms", PROBE_WAIT_MS);
    } else if (r < 0) {
        snprintf(why, n, "wait4: %s", shim_strerror(errno));
    } else if (WIFSIGNALED(st)) {
        snprintf(why, n, "killed by signal %d", WTERMSIG(st));
    } else if (WIFEXITED(st) && WEXITSTATUS(st) >= 1 && WEXITSTATUS(st) <= N_CALLS) {
        snprintf(why, n, "%s refused", call_names[WEXITSTATUS(st) - 1]);
    } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        snprintf(why, n, "the child ended with status 0x%x", st);
    }
    errno = saved;
    return r > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int shim_sandboxed(void)
{
    int s = atomic_load_explicit(&state, memory_order_acquire);
    if (s == INHERITED && atomic_compare_exchange_strong(&state, &s, PROBING)) {
        char why[96] = "";
        int ok = probe(why, sizeof why);
        int was = PROBING; /* a filter the program installed meanwhile wins */
        atomic_compare_exchange_strong(&state, &was, ok ? FREE : SANDBOXED);
        if (ok)
            SHIM_LOG(RUDP_LOG_INFO, "seccomp: the filter this process started under allows the "
                                    "calls of the app threads' own paths: they are on");
        else
            SHIM_LOG(RUDP_LOG_INFO, "seccomp: the filter this process started under may not allow "
                                    "the app threads' own paths (%s): the engines do their work",
                     why);
        s = atomic_load_explicit(&state, memory_order_acquire);
    }
    return s != FREE; /* while another thread probes: off */
}

int shim_sandbox_probe_calls(char *why, size_t n)
{
    return probe(why, n);
}
