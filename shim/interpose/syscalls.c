/*
 * syscalls.c: libc's syscall() interposed. Programs that make their system
 * calls through it (libuv closes fds with syscall(SYS_close), and so does
 * every program built on it, node.js included) must reach the shim as
 * through libc's named calls: a listener closed that way would otherwise
 * stay alive in the engine, which would go on completing handshakes. The
 * numbers of the calls the shim interposes go to its interposers (the same
 * result: -1 and errno on failure, as libc's syscall() returns); every
 * other number goes to libc's syscall() with the six argument registers as
 * they came. rt_sigaction is not taken: the kernel's struct is not libc's,
 * and a handler set that way is the program's own business
 * (docs/limits.md). rt_sigprocmask is passed on and noted (base/crit.c
 * asks the thread's mask again).
 *
 * The shim's own calls go to libc's (shim_sys in base/real.c, through the macro
 * in base/base.h).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "interpose.h"

#undef syscall
#undef prctl

int close_range(unsigned first, unsigned last, int flags);

#define I(k) ((int)a[k])
#define U(k) ((unsigned)a[k])
#define P(k) ((void *)(uintptr_t)a[k])

/* The calls that make a task sharing our memory or our fd table, or a
 * table of the caller's own, or an io_uring (whose closes complete when
 * they do, unseen): procenv.c and state/fdtab.c's proofs are told. */
static long tables(long nr, const long *a)
{
    switch (nr) {
    case SYS_unshare:
        return unshare(I(0)); /* clonevm.c */
    case SYS_clone: /* flags first on x86-64 and arm64 */
        shim_clonevm_flags((unsigned long)a[0]);
        break;
#ifdef SYS_clone3
    case SYS_clone3: /* its flags behind a pointer the kernel checks: taken as
                      * CLONE_VM and CLONE_FILES (clonevm.c) */
        shim_procenv_vm_child();
        shim_fd_unseen_always();
        break;
#endif
#ifdef SYS_vfork
    case SYS_vfork:
        shim_procenv_vm_child();
        break;
#endif
    default: /* io_uring_setup */
        shim_fd_unseen_always();
        break;
    }
    return shim_sys_call(nr, a);
}

/* A number the shim does not follow, made as it is: it may close or
 * replace an fd (state/fdtab.c's proofs), unless it is one of those that
 * touch no fd and that programs make through syscall() in their loops (a
 * futex-based lock's waits, gettid, getrandom), which would otherwise
 * have every lookup after them ask the kernel again. */
static long passed(long nr, const long *a)
{
    long r = shim_sys_call(nr, a);
    switch (nr) {
    case SYS_futex:
    case SYS_gettid:
    case SYS_getpid:
    case SYS_getrandom:
    case SYS_clock_gettime:
    case SYS_sched_yield:
        break;
    default:
        shim_fd_unseen();
    }
    return r;
}

/* The sixth argument is read whether the caller passed it or not, as
 * libc's syscall() reads its register (x86-64: a word of the caller's
 * stack): the number alone says how many there are. ASan would call that
 * word's read an underflow where it lies in a redzone of the caller's
 * frame (syscall(SYS_gettid) beside an instrumented local). */
__attribute__((no_sanitize_address)) SHIM_EXPORT long syscall(long nr, ...)
{
    long a[6];
    va_list ap;
    va_start(ap, nr);
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    switch (nr) {
    case SYS_close:
        return close(I(0));
#ifdef SYS_close_range
    case SYS_close_range:
        return close_range(U(0), U(1), I(2));
#endif
    case SYS_socket:
        return socket(I(0), I(1), I(2));
    case SYS_bind:
        return bind(I(0), P(1), (socklen_t)a[2]);
    case SYS_connect:
        return connect(I(0), P(1), (socklen_t)a[2]);
    case SYS_listen:
        return listen(I(0), I(1));
#ifdef SYS_accept
    case SYS_accept:
        return accept(I(0), P(1), P(2));
#endif
    case SYS_accept4:
        return accept4(I(0), P(1), P(2), I(3));
    case SYS_getsockname:
        return getsockname(I(0), P(1), P(2));
    case SYS_getpeername:
        return getpeername(I(0), P(1), P(2));
    case SYS_getsockopt:
        return getsockopt(I(0), I(1), I(2), P(3), P(4));
    case SYS_setsockopt:
        return setsockopt(I(0), I(1), I(2), P(3), (socklen_t)a[4]);
    case SYS_shutdown:
        return shutdown(I(0), I(1));
    case SYS_ioctl:
        return ioctl(I(0), (unsigned long)a[1], P(2));
    case SYS_epoll_ctl:
        return epoll_ctl(I(0), I(1), I(2), P(3));
    case SYS_sendto:
        return sendto(I(0), P(1), (size_t)a[2], I(3), P(4), (socklen_t)a[5]);
    case SYS_recvfrom:
        return recvfrom(I(0), P(1), (size_t)a[2], I(3), P(4), P(5));
    case SYS_sendmsg:
        return sendmsg(I(0), P(1), I(2));
    case SYS_recvmsg:
        return recvmsg(I(0), P(1), I(2));
    case SYS_sendmmsg:
        return sendmmsg(I(0), P(1), U(2), I(3));
#if defined(SYS_recvmmsg) && UINTPTR_MAX > 0xffffffffu
    case SYS_recvmmsg: /* a 64-bit kernel timespec is libc's */
        return recvmmsg(I(0), P(1), U(2), I(3), P(4));
#endif
    case SYS_execve:
        return execve(P(0), P(1), P(2));
#ifdef SYS_execveat
    case SYS_execveat: /* fexecve's own call; other forms have no libc interposer */
        if (P(1) && *(const char *)P(1) == '\0' && I(4) == AT_EMPTY_PATH)
            return fexecve(I(0), P(2), P(3));
        return shim_sys_call(nr, a);
#endif
    case SYS_exit_group:
        _exit(I(0));
    case SYS_fcntl: { /* the kernel's own answers (F_GETOWN...), as it was */
        if (shim_fcntl_sets_owner(I(1)))
            shim_pristine_touched();
        if (I(1) == F_DUPFD || I(1) == F_DUPFD_CLOEXEC) {
            shim_kept_flush();
            shim_epoll_dup_seen(I(0)); /* as fcntl()'s (sockopt.c) */
        }
        long r = shim_sys_call(nr, a);
        if (r >= 0 && I(1) == F_SETFL)
            shim_rx_setfl(I(0));
        return r;
    }
    case SYS_prctl:
        if (I(0) == PR_SET_SECCOMP)
            shim_sandbox_set();
        return shim_sys_call(nr, a);
#ifdef SYS_seccomp
    case SYS_seccomp:
        if (U(0) == SECCOMP_SET_MODE_STRICT || U(0) == SECCOMP_SET_MODE_FILTER)
            shim_sandbox_set();
        return shim_sys_call(nr, a);
#endif
    case SYS_unshare:
    case SYS_clone:
#ifdef SYS_io_uring_setup
    case SYS_io_uring_setup:
#endif
#ifdef SYS_clone3
    case SYS_clone3:
#endif
#ifdef SYS_vfork
    case SYS_vfork:
#endif
        return tables(nr, a);
    /* a read, a readiness call or a copy of an fd, made of the kernel's
     * own: bytes kept for a read after a poll go into their bridge first
     * (interpose.h); only these, so that the program's other calls (a
     * futex-based lock's waits) never wait for an engine's turn */
#ifdef SYS_dup2
    case SYS_dup2:
        shim_kept_flush();
        return shim_dup_over((int)a[0], (int)a[1], 0, 0);
#endif
    case SYS_dup3:
        shim_kept_flush();
        return shim_dup_over((int)a[0], (int)a[1], (int)a[2], 1);
    case SYS_read:
    case SYS_readv:
    case SYS_poll:
    case SYS_ppoll:
    case SYS_select:
    case SYS_pselect6:
    case SYS_epoll_wait:
    case SYS_epoll_pwait:
#ifdef SYS_epoll_pwait2
    case SYS_epoll_pwait2:
#endif
    case SYS_dup:
        shim_kept_flush();
        shim_epoll_dup_seen(I(0)); /* as dup()'s (sock.c) */
        return shim_sys_call(nr, a);
    case SYS_splice:
    case SYS_sendfile:
#ifdef SYS_io_uring_enter
    case SYS_io_uring_enter:
#endif
        shim_kept_flush();
        return passed(nr, a); /* io_uring's IORING_OP_CLOSE too */
    case SYS_rt_sigprocmask: {
        long r = shim_sys_call(nr, a);
        shim_crit_mask_changed(); /* base/crit.c asks the mask again */
        return r;
    }
    default:
        return passed(nr, a);
    }
}

/* prctl(), for PR_SET_SECCOMP alone: a program that sandboxes itself
 * (vsftpd's seccomp_sandbox, sshd's privilege-separated child; libseccomp
 * comes through syscall() above) may refuse the calls the app-thread paths
 * make (engine/appsend.c, engine/apprecv.c: ppoll, epoll_ctl,
 * process_vm_readv...), with SIGSYS or EPERM. From then on this process
 * leaves that work to its engine threads, as before those paths existed:
 * a filter binds the thread that installs it and those it starts after
 * (or all of them with SECCOMP_FILTER_FLAG_TSYNC, where nothing of ours
 * can help). Every other option is libc's. */
SHIM_EXPORT int prctl(int option, ...)
{
    unsigned long a[4];
    va_list ap;
    va_start(ap, option);
    for (int i = 0; i < 4; i++)
        a[i] = va_arg(ap, unsigned long);
    va_end(ap);
    if (option == PR_SET_SECCOMP)
        shim_sandbox_set();
    long r[6] = {option, (long)a[0], (long)a[1], (long)a[2], (long)a[3], 0};
    return (int)shim_sys_call(SYS_prctl, r);
}
