/*
 * exec.c: the calls that end a process image. close_range() and closefrom()
 * spare the engine's fds; exec and _exit hand the engine's connections to a
 * keeper (keeper.c) that carries them on, and an exec that fails takes them
 * back.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <linux/close_range.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "interpose.h"
#include "base/poison.h"

/* ---- programs that close every fd ---- */

static int (*real_close_range_fn)(unsigned, unsigned, int);

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Closes [first, last] except the engine's fds and the slabs' memfds, in as few calls as may be. */
static int close_range_sparing(unsigned first, unsigned last, int flags)
{
    /* The kernel's checks first (close_range() in fs/file.c): a call it
     * rejects closes nothing, ours neither. */
    if ((flags & ~(int)(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC)) || first > last) {
        errno = EINVAL;
        return -1;
    }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
    if (!real_close_range_fn)
        real_close_range_fn = (int (*)(unsigned, unsigned, int))dlsym(RTLD_NEXT, "close_range");
#pragma GCC diagnostic pop
    if (!real_close_range_fn)
        {
        errno = ENOSYS;
        return -1;
    }
    if (flags & (int)CLOSE_RANGE_CLOEXEC)
        return real_close_range_fn(first, last, flags); /* engine fds are cloexec already */
    /* Our sockets in the range first, one by one as close() closes them: a
     * listener's engine must learn of it at once (shim_engine_listener_closed),
     * a SO_LINGER {1,0} connection resets.
     * Not with CLOSE_RANGE_UNSHARE: the calling thread gets a private copy
     * of the fd table and the range is closed in that copy only; the table
     * the engines (and the other threads) share keeps every fd, so its
     * records stay, and its epoll registrations too. */
    if (!(flags & (int)CLOSE_RANGE_UNSHARE)) {
        int ours[256];
        for (int pass = 0; pass < 64; pass++) {
            int m = shim_fd_list_range(ours, 256, first, last);
            for (int i = 0; i < m; i++)
                close(ours[i]);
            if (m < 256)
                break;
        }
        shim_epollreg_forget_range(first, last); /* the caller's fd table's (epollreg.c) */
    }
    int keep[1024 + SHIM_SLABS_MAX];
    int n = shim_ownfds_list(keep, 1024);
    n += shim_slots_fds(keep + n, SHIM_SLABS_MAX);
    qsort(keep, (size_t)n, sizeof keep[0], cmp_int);
    unsigned lo = first;
    for (int i = 0; i < n; i++) {
        unsigned fd = (unsigned)keep[i];
        if (fd < lo || fd > last)
            continue;
        if (fd > lo && real_close_range_fn(lo, fd - 1, flags) < 0)
            return -1;
        lo = fd + 1;
    }
    if (lo <= last && real_close_range_fn(lo, last, flags) < 0)
        return -1;
    return 0;
}

SHIM_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
    shim_init();
    shim_kept_flush();
    if (!((unsigned)flags & CLOSE_RANGE_CLOEXEC))
        shim_epoll_forget_range(first, last);
    /* a thread with a table of its own (UNSHARE): its numbers are not the
     * others', which no record tells apart (fdtab.c proves every lookup) */
    if ((unsigned)flags & CLOSE_RANGE_UNSHARE)
        shim_fd_unseen_always();
    int r = close_range_sparing(first, last, flags);
    shim_fd_unseen(); /* what it closed is proved again (fdtab.c) */
    return r;
}

SHIM_EXPORT void closefrom(int lowfd)
{
    shim_init();
    int saved = errno;
    shim_kept_flush();
    shim_epoll_forget_range(lowfd < 0 ? 0u : (unsigned)lowfd, ~0u);
    close_range_sparing(lowfd < 0 ? 0u : (unsigned)lowfd, ~0u, 0);
    shim_fd_unseen();
    errno = saved;
}

/* ---- exec and _exit: the engine's work goes on in a keeper ---- */

static int (*real_execve_fn)(const char *, char *const[], char *const[]);
static int (*real_execvpe_fn)(const char *, char *const[], char *const[]);
static int (*real_fexecve_fn)(int, char *const[], char *const[]);
static void (*real_exit_fn)(int);

static void *next(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    return p;
}

/* One of our listeners open across an exec into an image that will not
 * run the shim (its environment lost LD_PRELOAD, as nginx's binary
 * upgrade keeps only TZ; a static or set-uid binary): the image gets a
 * unix socket where it expects its TCP listener, and clients under the
 * shim cannot reach what it serves (nginx's new master opened a kernel
 * TCP listener of its own, silently: a helper's hunt, 2026-11-29). Said by
 * name, once per such fd. No lock and no allocation: it may run between
 * vfork() and exec. */
static int warn_listener(int d, const char *name, long fd, void *ctx)
{
    (void)d;
    (void)name;
    int fl = real_fcntl((int)fd, F_GETFD);
    shim_name n;
    if (fl >= 0 && !(fl & FD_CLOEXEC) && shim_name_get((int)fd, 0, &n) == 1 &&
        n.kind == SHIM_NAME_LISTENER)
        SHIM_LOG(RUDP_LOG_WARN,
                 "exec of %s: the new image will not run the shim (LD_PRELOAD is not in its "
                 "environment, or it is static or set-uid) and inherits listener fd %ld, which "
                 "it gets as a unix socket: clients under the shim cannot reach what it serves. "
                 "Keep LD_PRELOAD in its environment (nginx: env LD_PRELOAD; in nginx.conf)",
                 (const char *)ctx, fd);
    return 0;
}

static void warn_listeners(const char *what)
{
    int saved = errno;
    shim_dir_each_num("/proc/self/fd", warn_listener, (void *)(uintptr_t)(what ? what : "?"));
    errno = saved;
}

/* Hands the engine over, passes the slabs on to an image that runs the
 * shim (through the keeper, or a holder, execpass.c; env_ in place of
 * envp: the call uses it; newimage.c), runs the exec, and takes it all
 * back if it failed. The keeper serves the inherited connections
 * whichever image comes. */
#define HANDOFF_EXEC(envp, image, what, call)                                                \
    do {                                                                                     \
        int abort_fd_;                                                                       \
        shim_exec_env x_ = {.nfds = 0, .env = NULL, .hand = -1};                             \
        int image_ = (image);                                                                \
        shim_kept_flush(); /* the new image reads the bridges */                             \
        if (!image_) { /* it may change a bridge's O_NONBLOCK unseen (recv.c) */           \
            shim_fd_hints_foreign();                                                         \
            warn_listeners(what);                                                            \
        }                                                                                    \
        if (image_) { /* an image without the shim takes nothing: the keeper relays at once */ \
            shim_exechand_prepare(&x_);                                                      \
            shim_execpass_prepare(&x_);                                                      \
        }                                                                                    \
        pid_t k_ = shim_keeper_handoff(1, &abort_fd_);                                       \
        char *const *env_ = image_ ? shim_execpass_env(&x_, k_ > 0, envp) : (envp);          \
        int v_ = shim_procenv_vfork_leaving();                                               \
        int f_ = shim_fault_exec_leaving(); /* a SIG_IGN for SIGSEGV/SIGBUS kept */         \
        int r_ = (call);                                                                     \
        int e_ = errno;                                                                      \
        shim_fault_exec_back(f_);                                                            \
        shim_procenv_vfork_back(v_); /* failed: the vfork child goes on */                   \
        shim_execpass_failed(&x_);                                                           \
        shim_slots_exec_failed(&x_);                                                         \
        shim_exechand_failed(&x_);                                                           \
        if (k_ > 0) {                                                                        \
            char ab_[SHIM_ENGINES_MAX]; /* a byte for each keeper (keeper.c) */               \
            memset(ab_, 'x', sizeof ab_);                                                    \
            ssize_t w_ = real_write(abort_fd_, ab_, sizeof ab_);                             \
            (void)w_;                                                                        \
            real_close(abort_fd_);                                                           \
            shim_relays_unpark();                                                            \
            shim_engine_resume();                                                            \
        }                                                                                    \
        errno = e_;                                                                          \
        return r_;                                                                           \
    } while (0)

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
SHIM_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    shim_init();
    if (!real_execve_fn)
        real_execve_fn = (int (*)(const char *, char *const[], char *const[]))next("execve");
    HANDOFF_EXEC(envp, shim_newimage_runs_shim(path, -1, 0, envp, 0), path,
                 real_execve_fn(path, argv, env_));
}

SHIM_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    shim_init();
    if (!real_execvpe_fn)
        real_execvpe_fn = (int (*)(const char *, char *const[], char *const[]))next("execvpe");
    HANDOFF_EXEC(envp, shim_newimage_runs_shim(file, -1, 1, envp, 0), file,
                 real_execvpe_fn(file, argv, env_));
}

SHIM_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
    shim_init();
    if (!real_fexecve_fn)
        real_fexecve_fn = (int (*)(int, char *const[], char *const[]))next("fexecve");
    HANDOFF_EXEC(envp, shim_newimage_runs_shim(NULL, fd, 0, envp, 0), "an fd (fexecve)",
                 real_fexecve_fn(fd, argv, env_));
}
#pragma GCC diagnostic pop

extern char **environ;

SHIM_EXPORT int execv(const char *path, char *const argv[])
{
    return execve(path, argv, environ);
}

SHIM_EXPORT int execvp(const char *file, char *const argv[])
{
    return execvpe(file, argv, environ);
}

/* execl* gather their arguments into an argv (at most 4096, as ARG_MAX
 * allows far more but no caller of the variadic forms passes that many). */
#define COLLECT_ARGS(arg0, ap, argv, extra)                                                  \
    char *argv[4096];                                                                        \
    size_t argc_ = 0;                                                                        \
    argv[argc_++] = (char *)(arg0);                                                          \
    while (argv[argc_ - 1] && argc_ < 4095)                                                  \
        argv[argc_++] = va_arg(ap, char *);                                                  \
    argv[argc_ - 1 < 4095 ? argc_ - 1 : 4095] = NULL;                                        \
    extra

SHIM_EXPORT int execl(const char *path, const char *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    COLLECT_ARGS(arg, ap, argv, ;);
    va_end(ap);
    return execve(path, argv, environ);
}

SHIM_EXPORT int execlp(const char *file, const char *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    COLLECT_ARGS(arg, ap, argv, ;);
    va_end(ap);
    return execvpe(file, argv, environ);
}

SHIM_EXPORT int execle(const char *path, const char *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    COLLECT_ARGS(arg, ap, argv, char *const *envp = va_arg(ap, char *const *););
    va_end(ap);
    return execve(path, argv, envp);
}

static void exit_now(int status) __attribute__((noreturn));
static void exit_now(int status)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
    int in_handler = shim_crit_in_handler();
    if (!real_exit_fn && !in_handler) /* dlsym() is not a handler's to call */
        real_exit_fn = (void (*)(int))next("_exit");
#pragma GCC diagnostic pop
    int fd;
    if (in_handler) {
        /* _exit() is async-signal-safe, and a handler calls it: what
         * follows would free, fork and take the engines' locks on a
         * thread that may be inside malloc() (prog_sighandcall's exit) */
        shim_signals_hand_over();
    } else {
        shim_kept_flush();
        shim_keeper_handoff(0, &fd); /* _exit skips destructors: hand over here */
    }
    shim_procenv_vfork_leaving();
    if (real_exit_fn)
        real_exit_fn(status);
    syscall(SYS_exit_group, status);
    __builtin_unreachable();
}

SHIM_EXPORT void _exit(int status)
{
    exit_now(status);
}

SHIM_EXPORT void _Exit(int status)
{
    exit_now(status);
}
