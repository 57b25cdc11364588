/*
 * real.c: libc's entry points for the names we interpose, bound once with
 * dlsym(RTLD_NEXT). pthread_once makes it safe from any thread and before
 * the constructor (a program may create sockets from its own constructors).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base.h"
#include "poison.h"

#undef syscall

int (*real_socket)(int, int, int);
int (*real_bind)(int, const struct sockaddr *, socklen_t);
int (*real_listen)(int, int);
int (*real_accept)(int, struct sockaddr *, socklen_t *);
int (*real_accept4)(int, struct sockaddr *, socklen_t *, int);
int (*real_connect)(int, const struct sockaddr *, socklen_t);
int (*real_getsockname)(int, struct sockaddr *, socklen_t *);
int (*real_getpeername)(int, struct sockaddr *, socklen_t *);
int (*real_getsockopt)(int, int, int, void *, socklen_t *);
int (*real_setsockopt)(int, int, int, const void *, socklen_t);
int (*real_shutdown)(int, int);
int (*real_close)(int);
int (*real_dup)(int);
int (*real_dup2)(int, int);
int (*real_dup3)(int, int, int);
int (*real_ioctl)(int, unsigned long, ...);
/* The kernel's own until libc's is bound: the shim's calls may come first
 * (rudp-supervise's, which binds nothing; a constructor's) */
static int fcntl_raw(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    long arg = va_arg(ap, long);
    va_end(ap);
    return (int)shim_sys(SYS_fcntl, (long)fd, (long)cmd, arg);
}
int (*real_fcntl)(int, int, ...) = fcntl_raw;
int (*real_epoll_ctl)(int, int, int, struct epoll_event *);
int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);
sighandler_t (*real_signal)(int, sighandler_t);
int (*real_pthread_sigmask)(int, const sigset_t *, sigset_t *);
int (*real_sigprocmask)(int, const sigset_t *, sigset_t *);
ssize_t (*real_sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
ssize_t (*real_recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
ssize_t (*real_recvmsg)(int, struct msghdr *, int);
int (*real_sendmmsg)(int, struct mmsghdr *, unsigned int, int);
int (*real_recvmmsg)(int, struct mmsghdr *, unsigned int, int, struct timespec *);
long (*real_syscall)(long, ...);
int (*real_clone)(int (*)(void *), void *, int, void *, ...);
void *real_vfork;
struct _IO_FILE *(*real_fdopen)(int, const char *);

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void bind_reads(void);

static void *must(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    if (!p) {
        /* Without libc's own symbol nothing can work; say so and stop. */
        static const char msg[] = "librudp_shim: cannot find libc symbol\n";
        if (shim_sys(SYS_write, 2L, (long)msg, (long)(sizeof msg - 1)) < 0) {
            /* nothing more to do */
        }
        abort();
    }
    return p;
}

static void bind_all(void)
{
    /* dlsym returns void *; converting to function pointers is what POSIX
     * requires to work. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
    real_socket = (int (*)(int, int, int))must("socket");
    real_bind = (int (*)(int, const struct sockaddr *, socklen_t))must("bind");
    real_listen = (int (*)(int, int))must("listen");
    real_accept = (int (*)(int, struct sockaddr *, socklen_t *))must("accept");
    real_accept4 = (int (*)(int, struct sockaddr *, socklen_t *, int))must("accept4");
    real_connect = (int (*)(int, const struct sockaddr *, socklen_t))must("connect");
    real_getsockname = (int (*)(int, struct sockaddr *, socklen_t *))must("getsockname");
    real_getpeername = (int (*)(int, struct sockaddr *, socklen_t *))must("getpeername");
    real_getsockopt = (int (*)(int, int, int, void *, socklen_t *))must("getsockopt");
    real_setsockopt = (int (*)(int, int, int, const void *, socklen_t))must("setsockopt");
    real_shutdown = (int (*)(int, int))must("shutdown");
    real_close = (int (*)(int))must("close");
    real_dup = (int (*)(int))must("dup");
    real_dup2 = (int (*)(int, int))must("dup2");
    real_dup3 = (int (*)(int, int, int))must("dup3");
    real_ioctl = (int (*)(int, unsigned long, ...))must("ioctl");
    real_fcntl = (int (*)(int, int, ...))dlsym(RTLD_NEXT, "fcntl64"); /* glibc 2.28 on */
    if (!real_fcntl)
        real_fcntl = (int (*)(int, int, ...))must("fcntl");
    real_epoll_ctl = (int (*)(int, int, int, struct epoll_event *))must("epoll_ctl");
    real_sigaction =
        (int (*)(int, const struct sigaction *, struct sigaction *))must("sigaction");
    real_signal = (sighandler_t(*)(int, sighandler_t))must("signal");
    real_pthread_sigmask =
        (int (*)(int, const sigset_t *, sigset_t *))must("pthread_sigmask");
    real_sigprocmask = (int (*)(int, const sigset_t *, sigset_t *))must("sigprocmask");
    real_sendto = (ssize_t(*)(int, const void *, size_t, int, const struct sockaddr *,
                              socklen_t))must("sendto");
    real_sendmsg = (ssize_t(*)(int, const struct msghdr *, int))must("sendmsg");
    real_recvfrom =
        (ssize_t(*)(int, void *, size_t, int, struct sockaddr *, socklen_t *))must("recvfrom");
    real_recvmsg = (ssize_t(*)(int, struct msghdr *, int))must("recvmsg");
    real_sendmmsg = (int (*)(int, struct mmsghdr *, unsigned int, int))must("sendmmsg");
    real_recvmmsg =
        (int (*)(int, struct mmsghdr *, unsigned int, int, struct timespec *))must("recvmmsg");
    real_syscall = (long (*)(long, ...))must("syscall");
    real_clone = (int (*)(int (*)(void *), void *, int, void *, ...))must("clone");
    real_fdopen = (struct _IO_FILE * (*)(int, const char *)) must("fdopen");
    real_vfork = dlsym(RTLD_NEXT, "vfork"); /* a stub jumps there: interpose/clonevm.c */
    if (!real_vfork)
        real_vfork = must("fork"); /* POSIX lets vfork be fork */
#pragma GCC diagnostic pop
    bind_reads();
}

void shim_real_init(void)
{
    pthread_once(&once, bind_all);
}

/* ---- the shim's own pthread_sigmask() (base.h's macro) ---- */

#undef pthread_sigmask
int shim_sigmask(int how, const sigset_t *set, sigset_t *old)
{
    if (real_pthread_sigmask)
        return real_pthread_sigmask(how, set, old);
    /* before the binding (a sanitizer's start-up): the kernel's, without
     * the two signals glibc keeps for itself (32 and 33), as glibc does */
    uint64_t k = 0, o = 0;
    if (set) {
        memcpy(&k, set, sizeof k);
        k &= ~((uint64_t)3 << 31);
    }
    long r = shim_sys(SYS_rt_sigprocmask, (long)how, set ? (long)&k : 0L, (long)&o, 8L);
    if (r < 0)
        return (int)-r;
    if (old) {
        sigemptyset(old);
        memcpy(old, &o, sizeof o);
    }
    return 0;
}

/* ---- the shim's own syscall() (base.h's macro) ---- */

/* The system call itself, without libc: for a call that comes while libc's
 * syscall() is being looked up. Returns as libc's syscall() does. */
static long raw(long nr, const long a[6])
{
    long r;
#if defined(__x86_64__)
    register long r10 __asm__("r10") = a[3];
    register long r8 __asm__("r8") = a[4];
    register long r9 __asm__("r9") = a[5];
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "a"(nr), "D"(a[0]), "S"(a[1]), "d"(a[2]), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = nr;
    register long x0 __asm__("x0") = a[0];
    register long x1 __asm__("x1") = a[1];
    register long x2 __asm__("x2") = a[2];
    register long x3 __asm__("x3") = a[3];
    register long x4 __asm__("x4") = a[4];
    register long x5 __asm__("x5") = a[5];
    __asm__ volatile("svc 0"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                     : "memory");
    r = x0;
#else
    (void)nr;
    (void)a;
    r = -ENOSYS;
#endif
    if (r < 0 && r > -4096) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

/* libc's syscall(), bound here alone rather than through shim_real_init():
 * an allocator may call syscall() while dlsym runs (tcmalloc's spinlock
 * does), and a call back into shim_real_init's pthread_once from inside it
 * would wait for itself. A call that comes while the lookup runs (in this
 * thread or another) is made directly. */
long shim_sys_call(long nr, const long a[6])
{
    static _Atomic(long (*)(long, ...)) next;
    static atomic_int looking;
    long (*f)(long, ...) = atomic_load(&next);
    if (!f && !atomic_exchange(&looking, 1)) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
        f = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
#pragma GCC diagnostic pop
        atomic_store(&next, f);
        atomic_store(&looking, 0);
    }
#if defined(__x86_64__) || defined(__aarch64__)
    if (!f)
        return raw(nr, a);
#else
    if (!f) {
        shim_real_init(); /* no direct call here: as before */
        f = real_syscall;
    }
#endif
    return f(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* libc's write(), send() and writev(), which the shim interposes for the
 * application's sends on bridges (interpose/appsend.c). Bound apart from
 * shim_real_init(), as syscall() is above: write() is what an allocator,
 * a logger or dlsym itself may call while the lookup runs, and that call,
 * if it waited for shim_real_init's pthread_once, would wait for itself.
 * Until bound, the system call is made directly. */
typedef struct lazy {
    const char *name;
    _Atomic(void *) fn;
    atomic_int looking;
} lazy;

static void *lazy_get(lazy *l)
{
    void *f = atomic_load_explicit(&l->fn, memory_order_acquire);
    if (!f && !atomic_exchange(&l->looking, 1)) {
        f = dlsym(RTLD_NEXT, l->name);
        atomic_store_explicit(&l->fn, f, memory_order_release);
        atomic_store(&l->looking, 0);
    }
    return f;
}

static lazy lz_write = {.name = "write"}, lz_send = {.name = "send"},
            lz_writev = {.name = "writev"}, lz_read = {.name = "read"},
            lz_readv = {.name = "readv"}, lz_recv = {.name = "recv"},
            lz_read_chk = {.name = "__read_chk"}, lz_recv_chk = {.name = "__recv_chk"},
            lz_recvfrom_chk = {.name = "__recvfrom_chk"}, lz_poll = {.name = "poll"},
            lz_ppoll = {.name = "ppoll"}, lz_poll_chk = {.name = "__poll_chk"},
            lz_ppoll_chk = {.name = "__ppoll_chk"}, lz_epoll_wait = {.name = "epoll_wait"},
            lz_epoll_pwait = {.name = "epoll_pwait"}, lz_epoll_pwait2 = {.name = "epoll_pwait2"},
            lz_select = {.name = "select"}, lz_pselect = {.name = "pselect"};

/* The reads bound with the rest (shim_real_init, from the constructor):
 * a program's first read() may be a signal handler's, where dlsym is no
 * call to make. */
static void bind_reads(void)
{
    lazy *all[] = {&lz_read,         &lz_readv,       &lz_recv,        &lz_read_chk,
                   &lz_recv_chk,     &lz_recvfrom_chk, &lz_poll,        &lz_ppoll,
                   &lz_poll_chk,     &lz_ppoll_chk,    &lz_epoll_wait,  &lz_epoll_pwait,
                   &lz_epoll_pwait2, &lz_select,       &lz_pselect};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        lazy_get(all[i]);
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
ssize_t real_write(int fd, const void *buf, size_t n)
{
    ssize_t (*f)(int, const void *, size_t) = (ssize_t(*)(int, const void *, size_t))lazy_get(&lz_write);
    if (f)
        return f(fd, buf, n);
    return shim_sys(SYS_write, (long)fd, (long)buf, (long)n);
}

ssize_t real_send(int fd, const void *buf, size_t n, int flags)
{
    ssize_t (*f)(int, const void *, size_t, int) =
        (ssize_t(*)(int, const void *, size_t, int))lazy_get(&lz_send);
    if (f)
        return f(fd, buf, n, flags);
    return shim_sys(SYS_sendto, (long)fd, (long)buf, (long)n, (long)flags, 0L, 0L);
}

ssize_t real_writev(int fd, const struct iovec *iov, int cnt)
{
    ssize_t (*f)(int, const struct iovec *, int) =
        (ssize_t(*)(int, const struct iovec *, int))lazy_get(&lz_writev);
    if (f)
        return f(fd, iov, cnt);
    return shim_sys(SYS_writev, (long)fd, (long)iov, (long)cnt);
}

/* The receive calls interpose/recv.c takes for an abnormal end's errno,
 * bound the same way: read() is what a logger or the allocator may call
 * while the lookup runs. */
ssize_t real_read(int fd, void *buf, size_t n)
{
    ssize_t (*f)(int, void *, size_t) = (ssize_t(*)(int, void *, size_t))lazy_get(&lz_read);
    if (f)
        return f(fd, buf, n);
    return shim_sys(SYS_read, (long)fd, (long)buf, (long)n);
}

ssize_t real_readv(int fd, const struct iovec *iov, int cnt)
{
    ssize_t (*f)(int, const struct iovec *, int) =
        (ssize_t(*)(int, const struct iovec *, int))lazy_get(&lz_readv);
    if (f)
        return f(fd, iov, cnt);
    return shim_sys(SYS_readv, (long)fd, (long)iov, (long)cnt);
}

ssize_t real_recv(int fd, void *buf, size_t n, int flags)
{
    ssize_t (*f)(int, void *, size_t, int) = (ssize_t(*)(int, void *, size_t, int))lazy_get(&lz_recv);
    if (f)
        return f(fd, buf, n, flags);
    return shim_sys(SYS_recvfrom, (long)fd, (long)buf, (long)n, (long)flags, 0L, 0L);
}

/* _FORTIFY_SOURCE's checked forms: libc's own, whose check fails the
 * program as it would without us. Unbound (only while the lookup runs,
 * which no fortified read is part of), the call goes unchecked. */
ssize_t real_read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    ssize_t (*f)(int, void *, size_t, size_t) =
        (ssize_t(*)(int, void *, size_t, size_t))lazy_get(&lz_read_chk);
    if (f)
        return f(fd, buf, n, buflen);
    return real_read(fd, buf, n);
}

ssize_t real_recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
    ssize_t (*f)(int, void *, size_t, size_t, int) =
        (ssize_t(*)(int, void *, size_t, size_t, int))lazy_get(&lz_recv_chk);
    if (f)
        return f(fd, buf, n, buflen, flags);
    return real_recv(fd, buf, n, flags);
}

ssize_t real_recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                          struct sockaddr *addr, socklen_t *alen)
{
    ssize_t (*f)(int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *) =
        (ssize_t(*)(int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *))lazy_get(
            &lz_recvfrom_chk);
    if (f)
        return f(fd, buf, n, buflen, flags, addr, alen);
    return shim_sys(SYS_recvfrom, (long)fd, (long)buf, (long)n, (long)flags, (long)addr, (long)alen);
}

/* poll() and ppoll() and their _FORTIFY_SOURCE forms (interpose/poll.c
 * interposes them for the app thread's receive), bound as the reads. */
int real_poll(struct pollfd *fds, nfds_t n, int timeout)
{
    int (*f)(struct pollfd *, nfds_t, int) = (int (*)(struct pollfd *, nfds_t, int))lazy_get(&lz_poll);
    if (f)
        return f(fds, n, timeout);
    struct timespec t = {.tv_sec = timeout / 1000, .tv_nsec = (long)(timeout % 1000) * 1000000L};
    return (int)shim_sys(SYS_ppoll, (long)fds, (long)n, timeout < 0 ? 0L : (long)&t, 0L, 8L);
}

int real_ppoll(struct pollfd *fds, nfds_t n, const struct timespec *tmo, const sigset_t *mask)
{
    int (*f)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *) =
        (int (*)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *))lazy_get(
            &lz_ppoll);
    if (f)
        return f(fds, n, tmo, mask);
    return (int)shim_sys(SYS_ppoll, (long)fds, (long)n, (long)tmo, (long)mask, 8L);
}

int real_poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
    int (*f)(struct pollfd *, nfds_t, int, size_t) =
        (int (*)(struct pollfd *, nfds_t, int, size_t))lazy_get(&lz_poll_chk);
    if (f)
        return f(fds, n, timeout, fdslen);
    return real_poll(fds, n, timeout);
}

int real_ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *tmo, const sigset_t *mask,
                   size_t fdslen)
{
    int (*f)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *, size_t) =
        (int (*)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *,
                 size_t))lazy_get(&lz_ppoll_chk);
    if (f)
        return f(fds, n, tmo, mask, fdslen);
    return real_ppoll(fds, n, tmo, mask);
}

/* epoll_wait(), epoll_pwait() and epoll_pwait2() (interpose/epoll.c, and
 * the engine's own loop), bound as the reads. */
int real_epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout)
{
    int (*f)(int, struct epoll_event *, int, int) =
        (int (*)(int, struct epoll_event *, int, int))lazy_get(&lz_epoll_wait);
    if (f)
        return f(epfd, ev, max, timeout);
    return (int)shim_sys(SYS_epoll_pwait, (long)epfd, (long)ev, (long)max, (long)timeout, 0L, 8L);
}

int real_epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout, const sigset_t *mask)
{
    int (*f)(int, struct epoll_event *, int, int, const sigset_t *) =
        (int (*)(int, struct epoll_event *, int, int, const sigset_t *))lazy_get(&lz_epoll_pwait);
    if (f)
        return f(epfd, ev, max, timeout, mask);
    return (int)shim_sys(SYS_epoll_pwait, (long)epfd, (long)ev, (long)max, (long)timeout,
                         (long)mask, 8L);
}

int real_epoll_pwait2(int epfd, struct epoll_event *ev, int max, const struct timespec *tmo,
                      const sigset_t *mask)
{
    int (*f)(int, struct epoll_event *, int, const struct timespec *, const sigset_t *) =
        (int (*)(int, struct epoll_event *, int, const struct timespec *,
                 const sigset_t *))lazy_get(&lz_epoll_pwait2);
    if (f)
        return f(epfd, ev, max, tmo, mask);
    return (int)shim_sys(SYS_epoll_pwait2, (long)epfd, (long)ev, (long)max, (long)tmo, (long)mask,
                         8L);
}

/* The kernel has no epoll_pwait2 (before Linux 5.11: ENOSYS), or a
 * seccomp profile older than the call refuses it (EPERM): asked until it
 * fails so once, for the whole process. */
static _Atomic int no_pwait2;

int shim_real_epoll_ns(void)
{
    return !atomic_load_explicit(&no_pwait2, memory_order_relaxed);
}

int shim_real_epoll_wait_ts(int epfd, struct epoll_event *ev, int max,
                            const struct timespec *tmo, const sigset_t *mask)
{
    if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        int n = real_epoll_pwait2(epfd, ev, max, tmo, mask);
        if (n >= 0 || (errno != ENOSYS && errno != EPERM))
            return n;
        atomic_store_explicit(&no_pwait2, 1, memory_order_relaxed);
    }
    int ms = -1;
    if (tmo) {
        uint64_t t = (uint64_t)tmo->tv_sec * 1000 + ((uint64_t)tmo->tv_nsec + 999999) / 1000000;
        ms = t > INT32_MAX ? INT32_MAX : (int)t;
    }
    return real_epoll_pwait(epfd, ev, max, ms, mask);
}

/* select() and pselect() (interpose/select.c), bound as the reads. */
int real_select(int nfds, fd_set *r, fd_set *w, fd_set *x, struct timeval *tv)
{
    int (*f)(int, fd_set *, fd_set *, fd_set *, struct timeval *) =
        (int (*)(int, fd_set *, fd_set *, fd_set *, struct timeval *))lazy_get(&lz_select);
    if (f)
        return f(nfds, r, w, x, tv);
#ifdef SYS_select
    return (int)shim_sys(SYS_select, (long)nfds, (long)r, (long)w, (long)x, (long)tv);
#else
    /* aarch64 has pselect6 alone: the timeout as a timespec, and what is
     * left of it back in tv, as Linux's select() leaves it */
    struct timespec ts, *tp = NULL;
    if (tv) {
        /* as Linux's select: a negative time is EINVAL, microseconds past
         * a second carry into the seconds (poll_select_set_timeout) */
        if (tv->tv_sec < 0 || tv->tv_usec < 0) {
            errno = EINVAL;
            return -1;
        }
        ts.tv_sec = tv->tv_sec + tv->tv_usec / 1000000;
        ts.tv_nsec = (tv->tv_usec % 1000000) * 1000;
        tp = &ts;
    }
    int n = (int)shim_sys(SYS_pselect6, (long)nfds, (long)r, (long)w, (long)x, (long)tp, 0L);
    if (tv) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return n;
#endif
}

int real_pselect(int nfds, fd_set *r, fd_set *w, fd_set *x, const struct timespec *ts,
                 const sigset_t *mask)
{
    int (*f)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *) =
        (int (*)(int, fd_set *, fd_set *, fd_set *, const struct timespec *,
                 const sigset_t *))lazy_get(&lz_pselect);
    if (f)
        return f(nfds, r, w, x, ts, mask);
    struct {
        const sigset_t *ss;
        size_t len;
    } m = {mask, 8};
    return (int)shim_sys(SYS_pselect6, (long)nfds, (long)r, (long)w, (long)x, (long)ts,
                         mask ? (long)&m : 0L);
}
#pragma GCC diagnostic pop

int shim_prctl(int option, ...)
{
    long a[6] = {option, 0, 0, 0, 0, 0};
    va_list ap;
    va_start(ap, option);
    for (int i = 1; i < 5; i++)
        a[i] = (long)va_arg(ap, unsigned long);
    va_end(ap);
    return (int)shim_sys_call(SYS_prctl, a);
}

long shim_sys(long nr, ...)
{
    long a[6];
    va_list ap;
    va_start(ap, nr);
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long); /* as libc's: the six argument registers, passed or not */
    va_end(ap);
    return shim_sys_call(nr, a);
}
