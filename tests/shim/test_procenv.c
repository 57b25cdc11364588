/*
 * procenv: shim/base/procenv.c's answer to "which process is this" without
 * a system call: the pid noted at start-up, the kernel's own answer in a
 * copy of the address space (fork, or a raw clone, before it notes its
 * own), and the kernel's answer always once a child sharing our memory may
 * exist (shim_procenv_vm_child, told by interpose/clonevm.c).
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shimtest.h"

TestSuite(procenv, .init = shimtest_setup);

/* A child made by the fork system call itself (no handler of ours runs, as
 * after a raw clone()): exits 0 iff shim_procenv_self() is its own pid,
 * before and after it notes its own (shim_procenv_forked, what the fork
 * handler calls). */
static int child_answers(pid_t parent)
{
    pid_t me = (pid_t)syscall(SYS_getpid);
    if (me == parent || shim_procenv_self() != me)
        return 1;
    shim_procenv_forked();
    return shim_procenv_self() == me ? 0 : 2;
}

static int in_raw_child(void)
{
    pid_t parent = getpid();
    long pid = syscall(SYS_fork);
    cr_assert(pid >= 0);
    if (pid == 0)
        _exit(child_answers(parent));
    int st;
    cr_assert(eq(int, waitpid((pid_t)pid, &st, 0), (int)pid));
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(procenv, self_is_this_process)
{
    cr_assert(eq(int, shim_procenv_self(), getpid()));
}

Test(procenv, a_copy_answers_its_own_pid)
{
    cr_assert(eq(int, in_raw_child(), 0), "a child of the fork system call read its parent's pid");
    cr_assert(eq(int, shim_procenv_self(), getpid()));
}

/* A clone(CLONE_VM) child, which is no thread: shim_procenv_self() in it,
 * and its own pid, as the kernel says them. */
static pid_t vm_seen, vm_real;

static int vm_child(void *arg)
{
    (void)arg;
    vm_seen = shim_procenv_self();
    vm_real = (pid_t)syscall(SYS_getpid);
    return 0;
}

static void run_vm_child(void)
{
    static char stack[64 * 1024] __attribute__((aligned(16)));
    vm_seen = vm_real = 0;
    int pid = clone(vm_child, stack + sizeof stack, CLONE_VM | SIGCHLD, NULL);
    cr_assert(pid > 0);
    int st;
    cr_assert(eq(int, waitpid(pid, &st, 0), pid));
    cr_assert(eq(int, vm_real, pid));
}

/* Why interpose/clonevm.c tells us: the child reads our memory, the noted
 * pid in it, and would pass for us. */
Test(procenv, an_unseen_vm_child_reads_our_pid)
{
    run_vm_child();
    cr_assert(eq(int, vm_seen, getpid()));
}

Test(procenv, a_vm_child_seen_coming_gets_the_kernels_answer)
{
    shim_procenv_vm_child();
    run_vm_child();
    cr_assert(eq(int, vm_seen, vm_real));
    cr_assert(eq(int, shim_procenv_self(), getpid()));
}

/* A vfork's child counts while it lives: every answer is the kernel's from
 * the vfork (interpose/clonevm.c counts it in) until the child counts
 * itself out at its exec or _exit (interpose/exec.c); then the parent's
 * answers come from memory again. */
Test(procenv, a_vfork_child_counts_until_it_leaves)
{
    cr_assert(eq(int, shim_procenv_noted(), 1));
    cr_assert(eq(int, shim_procenv_vfork_leaving(), 0), "the parent is no vfork child");
    shim_procenv_vfork_coming();
    cr_assert(eq(int, shim_procenv_noted(), 0));
    static volatile pid_t seen, real;
    static volatile int left;
    pid_t pid = vfork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        seen = shim_procenv_self();
        real = (pid_t)syscall(SYS_getpid);
        left = shim_procenv_vfork_leaving();
        _exit(0);
    }
    int st;
    cr_assert(eq(int, waitpid(pid, &st, 0), pid));
    cr_assert(eq(int, real, pid));
    cr_assert(eq(int, seen, real), "the vfork child passed for its parent");
    cr_assert(eq(int, left, 1));
    cr_assert(eq(int, shim_procenv_noted(), 1), "the answer stayed the kernel's after the child left");
    cr_assert(eq(int, shim_procenv_self(), getpid()));
}

/* An exec that failed leaves the child there: counted back in. */
Test(procenv, a_failed_exec_counts_the_child_back)
{
    shim_procenv_vfork_coming();
    static volatile int noted_after;
    pid_t pid = vfork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int left = shim_procenv_vfork_leaving();
        shim_procenv_vfork_back(left); /* as exec.c after an exec that failed */
        noted_after = shim_procenv_noted();
        _exit(shim_procenv_vfork_leaving() == 1 ? 0 : 1);
    }
    int st;
    cr_assert(eq(int, waitpid(pid, &st, 0), pid));
    cr_assert(eq(int, WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0));
    cr_assert(eq(int, noted_after, 0));
    cr_assert(eq(int, shim_procenv_noted(), 1));
}
