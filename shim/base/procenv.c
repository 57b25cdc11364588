/*
 * procenv.c: noticing a process that is not the one whose engines the
 * shim's memory describes. fork() runs our pthread_atfork handlers (sock.c),
 * which park the engines and leave the child a clean slate; a process made
 * by a raw clone() system call (SIGCHLD, no CLONE_VM: privilege-separated
 * servers do this) runs no handler. It has a copy of our memory, saying
 * engines run, and of the engines' fds, but not their threads: its
 * listeners would be announced to an engine that is not there (commands
 * queued in the child's memory, the eventfd waking the parent's engine
 * over an empty queue) and never served.
 *
 * The check is on every interposed entry (sock.c's init()), so it must cost
 * nothing there: no getpid(), a system call since glibc 2.25 dropped its
 * pid cache, and glibc's cached tid is stale in a raw clone's child, so it
 * tells nothing either. Instead, when an engine starts, a byte is set in a
 * page marked MADV_WIPEONFORK (Linux 4.14, man 2 madvise): the kernel gives
 * any child that gets a copy of the address space -- fork(), or clone()
 * without CLONE_VM -- that page zero-filled, while a thread or a CLONE_VM
 * child shares the page and sees the byte set. So the fast path is one load
 * and a compare; only a child takes the slow path, which checks the pid and
 * starts afresh as the fork handlers would have. Without MADV_WIPEONFORK
 * (an older kernel) the slow path, a getpid(), runs on every entry.
 *
 * A child that shares our memory but is not a thread -- vfork(), or
 * clone(CLONE_VM) without CLONE_THREAD -- sees the byte set, as a thread
 * does, and runs no handler either. Its memory is ours, so nothing may be
 * started afresh there; but without CLONE_FILES its fd numbers are its own
 * (a copy of ours at the clone), while the engines act on the fd table of
 * the process that owns them. shim_procenv_foreign() tells such a child,
 * and shim_procenv_table() names its table, for the calls that change the
 * per-fd records (fdtab.c and epollreg.c keep them per table) or hand an
 * fd to an engine (adopt.c copies it into the owner's table first): the
 * ones that are system calls and more already, never read or write.
 *
 * This file notices; lifetime/renew.c (shim_renew_process, called by
 * shim_procenv_check) starts such a process afresh.
 *
 * shim_procenv_self() is getpid() without the system call where it can
 * be: the pid is noted with the page's second byte set (at start-up, in a
 * fork's child, when a new process settles), so a copy of the address
 * space reads that byte 0 and asks the kernel until it notes its own. A
 * child sharing our memory would read the byte set and the parent's pid,
 * so while such a child may exist every call asks the kernel: from a
 * vfork() until its child execs or _exits through our calls
 * (interpose/clonevm.c counts it in, exec.c out: Python's subprocess,
 * Java's process launch vfork), and for the rest of the process's life
 * once clone() or syscall(SYS_clone...) made one with CLONE_VM and without
 * CLONE_THREAD (shim_procenv_vm_child). A CLONE_VM child made
 * past libc (inline system calls) is not seen: docs/limits.md. glibc's
 * posix_spawn() and system() make one too, but it runs none of our code.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <linux/kcmp.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base.h"

#include "poison.h"

/* The wipe-on-fork page's first byte: 1 from an engine's start on, 0 in a
 * child with a copy of the address space. NULL: no engine was started in
 * this process, nothing to check. */
volatile uint8_t *shim_procenv_mark;

static volatile uint8_t *page;  /* the wipe-on-fork page, once mapped */
static uint8_t always_zero;     /* mark without MADV_WIPEONFORK: always checked */
static _Atomic pid_t owner;     /* the process whose fds the shim's records name */
static _Atomic pid_t self_pid;  /* getpid(), while the page's second byte is 1 */
static _Atomic int vm_child;    /* a clone(CLONE_VM) child may exist: ask, always */
static _Atomic int vforks;      /* vfork() children not yet gone (exec, _exit): ask */

/* Notes this process's pid as the answer of shim_procenv_self (its page
 * byte wiped in any copy of the address space). Called with this process's
 * only thread, or before any other can ask (start-up). */
static void note_self(void)
{
    if (!page)
        return;
    __atomic_store_n(&self_pid, getpid(), __ATOMIC_RELAXED);
    __atomic_store_n(&page[1], 1, __ATOMIC_RELEASE);
}

pid_t shim_procenv_self(void)
{
#ifndef SHIM_SEES_VFORK
    return getpid();
#endif
    if (shim_procenv_noted())
        return __atomic_load_n(&self_pid, __ATOMIC_RELAXED);
    return getpid();
}

int shim_procenv_noted(void)
{
    return page && __atomic_load_n(&page[1], __ATOMIC_ACQUIRE) == 1 &&
           !__atomic_load_n(&vm_child, __ATOMIC_ACQUIRE) &&
           !__atomic_load_n(&vforks, __ATOMIC_ACQUIRE);
}

void shim_procenv_vm_child(void)
{
    __atomic_store_n(&vm_child, 1, __ATOMIC_RELEASE);
}

void shim_procenv_vfork_coming(void)
{
    __atomic_fetch_add(&vforks, 1, __ATOMIC_ACQ_REL);
}

int shim_procenv_vfork_leaving(void)
{
    int n = __atomic_load_n(&vforks, __ATOMIC_ACQUIRE);
    if (n <= 0 || !page || __atomic_load_n(&page[1], __ATOMIC_ACQUIRE) != 1 ||
        getpid() == __atomic_load_n(&self_pid, __ATOMIC_RELAXED))
        return 0; /* none under way; a copy of our memory; or us */
    /* a child sharing our memory, not made by clone (else vm_child says
     * ask for good and this count matters no more): one of the vforks */
    while (n > 0 && !__atomic_compare_exchange_n(&vforks, &n, n - 1, 0, __ATOMIC_ACQ_REL,
                                                 __ATOMIC_ACQUIRE)) {
    }
    return n > 0;
}

void shim_procenv_vfork_back(int left)
{
    if (left)
        shim_procenv_vfork_coming();
}

/* The wipe-on-fork page, mapped and set (0 if it cannot be). */
static int map_page(void)
{
    if (!page) {
        long ps = sysconf(_SC_PAGESIZE);
        size_t len = ps > 0 ? (size_t)ps : 4096;
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED && madvise(p, len, MADV_WIPEONFORK) < 0) {
            munmap(p, len);
            p = MAP_FAILED;
        }
        if (p == MAP_FAILED)
            return 0;
        page = p;
    }
    /* Set once per process (here at start-up, or by shim_procenv_forked in
     * a child): each engine's start comes here, while other threads read
     * the mark (shim_procenv_check), so it writes only a page found wiped. */
    if (*page != 1)
        *page = 1;
    return 1;
}

void shim_procenv_init(void)
{
    map_page(); /* not published as the mark: entries check nothing yet */
    note_self();
    __atomic_store_n(&owner, getpid(), __ATOMIC_RELEASE);
}

void shim_procenv_forked(void)
{
    if (page)
        *page = 1; /* ours now: a CLONE_VM child of this process sees it set */
    note_self();
    __atomic_store_n(&owner, getpid(), __ATOMIC_RELEASE);
}

int shim_procenv_shared(void)
{
    pid_t o = __atomic_load_n(&owner, __ATOMIC_ACQUIRE);
    return o != 0 && page && *page == 1 && shim_procenv_self() != o;
}

int shim_procenv_foreign(void)
{
    pid_t o = __atomic_load_n(&owner, __ATOMIC_ACQUIRE);
    if (o == 0)
        return 0;
    pid_t me = shim_procenv_self();
    if (me == o)
        return 0;
    /* Another process: is the memory ours? The page says it without a
     * permission (zero-filled in a copy); kcmp(KCMP_VM) without it. */
    int vm = page ? *page == 1 : syscall(SYS_kcmp, o, me, KCMP_VM, 0, 0) == 0;
    if (!vm) {
        /* A copy of our memory (a raw clone()'s child before any engine
         * ran, which renew() never saw): the records are its own. */
        __atomic_store_n(&owner, me, __ATOMIC_RELEASE);
        return 0;
    }
    /* kcmp(2) compares the fd tables; it needs ptrace access mode READ to
     * both processes (man 2 kcmp), which a child of the same user has
     * unless the parent made itself non-dumpable (PR_SET_DUMPABLE 0, a
     * set-uid program): then EPERM, and ENOSYS on a kernel without
     * CONFIG_KCMP. Not knowing, the child is taken to have its own fd
     * table: its sockets are then kernel TCP and it changes no record of
     * ours, which is right for a copy and only slower for a shared one. */
    long r = syscall(SYS_kcmp, o, me, KCMP_FILES, 0, 0);
    if (r == 0)
        return 0; /* CLONE_FILES: as a thread */
    if (r < 0) {
        static _Atomic int said;
        if (!__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
            SHIM_LOG(RUDP_LOG_INFO, "a child sharing %d's memory could not compare fd tables "
                                    "with it (kcmp: %s): it gets kernel TCP for its sockets",
                     (int)o, shim_strerror(errno));
    }
    return 1;
}

pid_t shim_procenv_owner(void)
{
    return __atomic_load_n(&owner, __ATOMIC_ACQUIRE);
}

pid_t shim_procenv_table(void)
{
    return shim_procenv_foreign() ? shim_procenv_self() : 0;
}

void shim_procenv_started(void)
{
    if (!map_page()) {
        __atomic_store_n(&shim_procenv_mark, &always_zero, __ATOMIC_RELEASE);
        return;
    }
    __atomic_store_n(&shim_procenv_mark, page, __ATOMIC_RELEASE);
}

void shim_procenv_own_page(void)
{
    if (page)
        *page = 1;
}

void shim_procenv_settled(pid_t me)
{
    note_self(); /* me is getpid(): renew.c */
    __atomic_store_n(&owner, me, __ATOMIC_RELEASE);
    if (page == shim_procenv_mark)
        shim_procenv_mark = NULL; /* nothing to check until an engine starts here */
}
