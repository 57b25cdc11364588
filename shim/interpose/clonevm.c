/*
 * clonevm.c: vfork() and clone() interposed, only to see a child that
 * shares our memory without being a thread come (base/procenv.c): while it
 * may exist shim_procenv_self() asks the kernel for the pid on every call,
 * since that child reads our memory, the noted pid included (a vfork's
 * child until its exec or _exit, exec.c; a clone's for good). Otherwise
 * the checks on every call (is this the process that owns the engines?)
 * cost no system call. syscall(SYS_clone, SYS_clone3, SYS_vfork) is seen
 * by syscalls.c, which calls shim_clonevm_flags.
 *
 * vfork() cannot be a C function: its child returns from it on the
 * parent's stack, into a frame the parent returns through later. The stub
 * calls a C helper first (a normal call and return, in the parent), then
 * jumps to libc's vfork with the stack as the caller left it, so libc's
 * vfork returns to the program's own code in both processes. Elsewhere
 * than x86-64 and arm64 there is no stub, and shim_procenv_self always
 * asks (procenv.c, SHIM_SEES_VFORK).
 */
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "interpose.h"

#include "base/poison.h"

void shim_clonevm_flags(unsigned long flags)
{
    if ((flags & CLONE_VM) && !(flags & CLONE_THREAD))
        shim_procenv_vm_child();
    /* a process sharing our fd table closes numbers we never see close */
    if ((flags & CLONE_FILES) && !(flags & CLONE_THREAD))
        shim_fd_unseen_always();
}

#ifdef SHIM_SEES_VFORK
/* Called by the stub below: notes the child to come and returns libc's
 * vfork (base/real.c). */
__attribute__((used)) void *shim_vfork_prepare(void);
__attribute__((used)) void *shim_vfork_prepare(void)
{
    shim_procenv_vfork_coming(); /* counted out at its exec or _exit (exec.c) */
    shim_real_init();
    return real_vfork;
}

/* vfork and __vfork, glibc's two names for one function (a program or a
 * library may call either). */
#if defined(__x86_64__)
__asm__(".pushsection .text\n"
        ".globl vfork\n"
        ".type vfork, @function\n"
        ".globl __vfork\n"
        ".type __vfork, @function\n"
        "vfork:\n"
        "__vfork:\n"
        "    endbr64\n"
        "    sub $8, %rsp\n" /* the call below on a 16-byte boundary */
        "    call shim_vfork_prepare\n"
        "    add $8, %rsp\n"
        "    jmp *%rax\n"
        ".size vfork, .-vfork\n"
        ".size __vfork, .-__vfork\n"
        ".popsection\n");
#elif defined(__aarch64__)
/* hint #34 is BTI c (a no-op without branch protection): the PLT reaches
 * the stub by br x17; the jump on is by x16, which a BTI c landing pad
 * in libc accepts from a guarded page. */
__asm__(".pushsection .text\n"
        ".globl vfork\n"
        ".type vfork, %function\n"
        ".globl __vfork\n"
        ".type __vfork, %function\n"
        "vfork:\n"
        "__vfork:\n"
        "    hint #34\n"
        "    stp x29, x30, [sp, #-16]!\n"
        "    mov x29, sp\n"
        "    bl shim_vfork_prepare\n"
        "    ldp x29, x30, [sp], #16\n"
        "    mov x16, x0\n"
        "    br x16\n"
        ".size vfork, .-vfork\n"
        ".size __vfork, .-__vfork\n"
        ".popsection\n");
#endif
#endif

/* glibc's clone(fn, stack, flags, arg, parent_tid, tls, child_tid): the
 * last three are read only where flags ask for them, so passing on what
 * the registers and stack hold is what libc's own wrapper reads too. */
__attribute__((no_sanitize_address)) static int clone_on(int (*fn)(void *), void *stack,
                                                        int flags, void *arg, va_list ap)
{
    void *ptid = va_arg(ap, void *);
    void *tls = va_arg(ap, void *);
    void *ctid = va_arg(ap, void *);
    shim_clonevm_flags((unsigned long)(unsigned)flags);
    shim_real_init();
    return real_clone(fn, stack, flags, arg, ptid, tls, ctid);
}

/* clone and __clone, glibc's two names for one function */
int __clone(int (*fn)(void *), void *stack, int flags, void *arg, ...);
#define CLONE_ENTRY(name)                                                                    \
    __attribute__((no_sanitize_address)) SHIM_EXPORT int name(int (*fn)(void *), void *stack, \
                                                              int flags, void *arg, ...)     \
    {                                                                                        \
        va_list ap;                                                                          \
        va_start(ap, arg);                                                                   \
        int r = clone_on(fn, stack, flags, arg, ap);                                         \
        va_end(ap);                                                                          \
        return r;                                                                            \
    }
CLONE_ENTRY(clone)
CLONE_ENTRY(__clone)

/* unshare(CLONE_FILES): the calling thread's fd table becomes its own, so
 * a number no longer names one file for every thread, which no record
 * tells apart: every lookup asks the kernel from then on (state/fdtab.c).
 * The call itself is the kernel's (no libc state to keep). */
SHIM_EXPORT int unshare(int flags)
{
    if (flags & CLONE_FILES)
        shim_fd_unseen_always();
    long a[6] = {flags, 0, 0, 0, 0, 0};
    return (int)shim_sys_call(SYS_unshare, a);
}
