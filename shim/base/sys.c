/*
 * sys.c: libc's syscall() for the shim's own calls (shim_sys; base.h makes
 * every syscall() in the shim one of these). The exported syscall(), which
 * sends the numbers the shim interposes to its interposers, is
 * interpose/syscalls.c; what it does not take comes here too.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base.h"

#include "poison.h"

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
static long forward(long nr, const long a[6])
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

long shim_sys(long nr, ...)
{
    long a[6];
    va_list ap;
    va_start(ap, nr);
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long); /* as libc's: the six argument registers, passed or not */
    va_end(ap);
    return forward(nr, a);
}
