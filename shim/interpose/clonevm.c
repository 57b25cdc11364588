/*
 * clonevm.c: vfork() and clone() interposed, only to see a child that
 * shares our memory without being a thread come (base/procenv.c): from
 * then on shim_procenv_self() asks the kernel for the pid on every call,
 * since that child reads our memory, the noted pid included. Until then
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
}

#ifdef SHIM_SEES_VFORK
/* Called by the stub below: notes the child to come and returns libc's
 * vfork (base/real.c). */
__attribute__((used)) void *shim_vfork_prepare(void);
__attribute__((used)) void *shim_vfork_prepare(void)
{
    shim_procenv_vm_child();
    shim_real_init();
    return real_vfork;
}

#if defined(__x86_64__)
__asm__(".text\n"
        ".globl vfork\n"
        ".type vfork, @function\n"
        "vfork:\n"
        "    endbr64\n"
        "    sub $8, %rsp\n" /* the call below on a 16-byte boundary */
        "    call shim_vfork_prepare\n"
        "    add $8, %rsp\n"
        "    jmp *%rax\n"
        ".size vfork, .-vfork\n");
#elif defined(__aarch64__)
__asm__(".text\n"
        ".globl vfork\n"
        ".type vfork, %function\n"
        "vfork:\n"
        "    stp x29, x30, [sp, #-16]!\n"
        "    mov x29, sp\n"
        "    bl shim_vfork_prepare\n"
        "    ldp x29, x30, [sp], #16\n"
        "    br x0\n"
        ".size vfork, .-vfork\n");
#endif
#endif

/* glibc's clone(fn, stack, flags, arg, parent_tid, tls, child_tid): the
 * last three are read only where flags ask for them, so passing on what
 * the registers and stack hold is what libc's own wrapper reads too. */
__attribute__((no_sanitize_address)) SHIM_EXPORT int clone(int (*fn)(void *), void *stack,
                                                           int flags, void *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    void *ptid = va_arg(ap, void *);
    void *tls = va_arg(ap, void *);
    void *ctid = va_arg(ap, void *);
    va_end(ap);
    shim_clonevm_flags((unsigned long)(unsigned)flags);
    shim_real_init();
    return real_clone(fn, stack, flags, arg, ptid, tls, ctid);
}
