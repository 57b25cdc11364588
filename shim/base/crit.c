/*
 * crit.c: the shim's short critical sections on an application's thread (a
 * read taken from memory, a write put into an engine's ring, an epoll wait
 * told from memory), inside which no handler of the program may run: one
 * that called in again would find the engine's turn held by its own
 * thread, and one that left by siglongjmp would leave it held for ever.
 *
 * Holding every signal costs two rt_sigprocmask per section, 0.3 us on
 * this VM: four of the eight system calls redis-server made per GET, and
 * removing them alone gave B24 about 9 % more requests per second (eight
 * alternated pairs). So where lifetime/signals.c has every handler that an
 * asynchronous signal can reach go through its trampoline, a section only
 * counts itself in thread-local memory, and a signal that arrives inside
 * one is deferred, as OpenOnload defers the handlers of signals that come
 * while its stack lock is held: the trampoline queues it again to its own
 * thread with its siginfo (rt_tgsigqueueinfo; the kernel keeps what it
 * carries) and adds it to the interrupted context's mask, so that it stays
 * pending; the section's end lets it in with one rt_sigprocmask, and the
 * program's handler runs then, outside. The signal is held first (with
 * SA_NODEFER the copy would come back at once, inside the section). A
 * realtime queue at RLIMIT_SIGPENDING takes the copy as kill()'s (SI_USER,
 * let past the limit, its siginfo kept where the kernel finds room); a
 * process under a seccomp filter holds every signal in its sections
 * instead; a signal that still cannot be queued again runs its handler at
 * once (counted). A copy of the same signal that came in the fraction of
 * a microsecond before the trampoline queued it goes first (realtime) or
 * merges with it (standard): docs/limits.md.
 *
 * Until signals.c has taken the handlers there at start (and after a
 * keeper took over), sections hold every signal as before. A handler
 * installed by a raw rt_sigaction, which the shim does not see, is not
 * deferred (docs/limits.md).
 *
 * The guarded copies (fault.c) need SIGSEGV and SIGBUS let in: a thread
 * that holds either takes no section, as before. Without a system call
 * the thread's mask is remembered: asked of the kernel at its first
 * section, and again after anything the shim sees change it (the
 * program's pthread_sigmask, sigprocmask, sighold, sigrelse, sigblock,
 * sigsetmask, sigset, syscall(), a handler; lifetime/signals.c). SIGSEGV
 * and SIGBUS are never deferred.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "base.h"

#include "poison.h"

/* 32 bytes of static TLS. */
static __thread struct {
    int depth;         /* sections entered and not left */
    int faults;        /* 0 not known, 1 SIGSEGV and SIGBUS let in, -1 one held */
    uint64_t deferred; /* signals held in an interrupted context (bit sig - 1) */
    uint64_t mask;     /* the thread's mask when faults was asked (bit sig - 1) */
    int handlers;      /* the program's handlers running on the thread */
} t;

static _Atomic int deferring;
static _Atomic uint64_t n_deferred, n_at_once; /* RUDP_STATS */

void shim_crit_counts(uint64_t *deferred, uint64_t *at_once)
{
    *deferred = atomic_load_explicit(&n_deferred, memory_order_relaxed);
    *at_once = atomic_load_explicit(&n_at_once, memory_order_relaxed);
}

void shim_crit_deferring(int on)
{
    atomic_store_explicit(&deferring, on, memory_order_release);
}

void shim_crit_mask_changed(void)
{
    t.faults = 0;
}

void shim_crit_handler_runs(int delta)
{
    t.handlers += delta;
}

int shim_crit_in_handler(void)
{
    return t.handlers > 0;
}

/* -1: the thread holds SIGSEGV or SIGBUS; 2: it holds every other signal
 * (the shim's own threads, shim_thread_start; a program's thread that
 * takes its signals with sigwait or a signalfd), so no handler can run on
 * it; 1: otherwise. */
static int faults_let_in(void)
{
    sigset_t cur, all;
    if (pthread_sigmask(SIG_BLOCK, NULL, &cur) != 0)
        return -1;
    uint64_t m;
    memcpy(&m, &cur, sizeof m); /* the kernel's 64 bits begin glibc's sigset_t */
    t.mask = m & ~t.deferred;   /* the program's: a deferral's own held apart */
    if (sigismember(&cur, SIGSEGV) == 1 || sigismember(&cur, SIGBUS) == 1)
        return -1;
    shim_sigfill_but_faults(&all);
    for (int sig = 1; sig < NSIG; sig++)
        if (sigismember(&all, sig) == 1 && sigismember(&cur, sig) != 1)
            return 1;
    return 2;
}

int shim_crit_enter(shim_crit *c)
{
    /* not in a sandbox: a filter may refuse the queueing a deferral needs */
    if (atomic_load_explicit(&deferring, memory_order_relaxed) && !shim_sandboxed()) {
        if (t.faults == 0)
            t.faults = faults_let_in();
        c->masked = 0;
        if (t.faults < 0)
            return 0;
        t.depth++;
        atomic_signal_fence(memory_order_seq_cst);
        return 1;
    }
    c->masked = 1;
    return shim_hold_but_faults(&c->old);
}

static void depth_leave(void);

void shim_crit_mask_hint(const shim_crit *c, sigset_t *old)
{
    if (c->masked) {
        *old = c->old;
        return;
    }
    sigemptyset(old);
    memcpy(old, &t.mask, sizeof t.mask);
}

void shim_crit_mask_ask(shim_crit *c, sigset_t *old)
{
    if (!c->masked)
        t.faults = faults_let_in(); /* t.mask asked again */
    shim_crit_mask_hint(c, old);
}

uint64_t shim_crit_deferred(void)
{
    atomic_signal_fence(memory_order_seq_cst);
    return t.deferred;
}

int shim_crit_deferred_set(sigset_t *set)
{
    uint64_t d = shim_crit_deferred();
    sigemptyset(set);
    memcpy(set, &d, sizeof d); /* the kernel's 64 bits begin glibc's sigset_t */
    return d != 0;
}

int shim_crit_enter_wait(shim_crit *c)
{
    if (t.depth > 0) { /* inside another: its end, not ours, would let them in */
        c->masked = 1;
        return shim_hold_but_faults(&c->old);
    }
    return shim_crit_enter(c);
}

int shim_crit_cycle(shim_crit *c)
{
    if (c->masked)
        return 1;
    depth_leave(); /* the deferred handlers run here (the outermost section) */
    return shim_crit_enter(c);
}

#if defined(__SANITIZE_ADDRESS__)
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#endif

void shim_cancel_unwound(void)
{
#if defined(__SANITIZE_ADDRESS__)
    /* glibc reaches a cleanup handler by its own longjmp, which ASan does
     * not see: the frames it left below keep their redzones' poison, and
     * the handler's calls, on that stack, read as overflows (prog_apprecv
     * cancelmask). Those frames are dead: the 16 KiB below this one made
     * usable, as ASan does at a longjmp it sees (its own
     * __asan_handle_no_return needs a frame there itself). */
    char *here = __builtin_frame_address(0);
    __asan_unpoison_memory_region(here - 16384, 16384);
#endif
}

void shim_crit_leave_cancelled(shim_crit *c, const sigset_t *mask)
{
    if (!c->masked) {
        /* A cancellation in a ppoll whose own mask held every signal:
         * glibc's unwinding from its cancellation handler puts no mask
         * back, so the cleanup handlers would run with every signal held
         * (one sent to the thread then never ran: a review's find,
         * 2026-12-01). The program's, as the section knows it, with what
         * was deferred still held for depth_leave to let in. */
        uint64_t m = 0;
        memcpy(&m, mask, sizeof m); /* the kernel's 64 bits begin glibc's sigset_t */
        m |= t.deferred;
        int saved = errno;
        syscall(SYS_rt_sigprocmask, SIG_SETMASK, &m, NULL, sizeof m);
        errno = saved;
    }
    shim_crit_leave(c);
}

void shim_crit_leave(shim_crit *c)
{
    if (c->masked) {
        pthread_sigmask(SIG_SETMASK, &c->old, NULL); /* a pending signal's handler runs here */
        return;
    }
    depth_leave();
}

static void depth_leave(void)
{
    atomic_signal_fence(memory_order_seq_cst);
    if (--t.depth > 0)
        return;
    atomic_signal_fence(memory_order_seq_cst);
    uint64_t d = t.deferred;
    if (!d)
        return;
    /* one that comes now finds no section: its handler runs at once */
    t.deferred = 0;
    atomic_signal_fence(memory_order_seq_cst);
    int saved = errno;
    syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &d, NULL, sizeof d); /* their handlers run here */
    errno = saved;
}

/* The faults the kernel raises for an instruction: queued again, they
 * would come back at once (and a handler must see the context itself). */
static int synchronous(int sig, const siginfo_t *si)
{
    return si->si_code > 0 &&
           (sig == SIGFPE || sig == SIGILL || sig == SIGTRAP || sig == SIGSYS);
}

int shim_crit_defer(int sig, siginfo_t *si, void *uc)
{
    /* never SIGSEGV or SIGBUS, even sent: held, the section's own guarded
     * copy of a bad buffer would end the process (fault.c's handler runs
     * the program's where it is, as before) */
    if (t.depth <= 0 || sig < 1 || sig > 64 || !si || !uc || sig == SIGSEGV || sig == SIGBUS ||
        synchronous(sig, si))
        return 0;
    int saved = errno;
    /* held first: with SA_NODEFER the copy would come back at once, inside
     * the section still, and again (a system call only when deferring) */
    uint64_t one = (uint64_t)1 << (sig - 1), before = 0;
    syscall(SYS_rt_sigprocmask, SIG_BLOCK, &one, &before, sizeof one);
    long r = syscall(SYS_rt_tgsigqueueinfo, (long)getpid(), (long)gettid(), (long)sig, si);
    if (r != 0 && errno == EAGAIN) {
        /* a realtime queue at RLIMIT_SIGPENDING: as kill() then, the
         * signal pending all the same, its siginfo the kernel's to keep or
         * lose (SI_USER, which the kernel lets overflow the limit) */
        siginfo_t u = *si;
        u.si_code = SI_USER;
        r = syscall(SYS_rt_tgsigqueueinfo, (long)getpid(), (long)gettid(), (long)sig, &u);
    }
    errno = saved;
    if (r != 0) {
        /* the handler runs inside the section: the mask as it came */
        syscall(SYS_rt_sigprocmask, SIG_SETMASK, &before, NULL, sizeof before);
        errno = saved;
        atomic_fetch_add_explicit(&n_at_once, 1, memory_order_relaxed);
        return 0; /* the handler now, as without the shim */
    }
    atomic_fetch_add_explicit(&n_deferred, 1, memory_order_relaxed);
    /* held where the section runs, so the copy stays pending until its end */
    sigaddset(&((ucontext_t *)uc)->uc_sigmask, sig);
    t.deferred |= (uint64_t)1 << (sig - 1);
    return 1;
}

/*
 * The shim's locks an application's thread takes (the fd records, the
 * slots, the allocator...). A handler of the program that runs on a
 * thread holding one and calls back into the shim (close(), dup2(), a
 * write to its self-pipe: each looks up the fd's record) would wait for
 * ever on it: a SIGPROF every 20 us closing a pipe over a getsockopt()
 * loop hung within seconds. So each is held inside a section: a signal
 * that comes meanwhile is deferred to the lock's release as above (a
 * counter in thread-local memory, no system call), or, where sections
 * cannot defer (a sandbox, or before signals.c took the handlers), held
 * by the mask, two system calls a lock. A thread that holds every signal
 * (the engines') needs neither. Where the program installs a handler by
 * a raw rt_sigaction the shim does not see, its handler is not deferred
 * (docs/limits.md).
 */
/* How the lock is held: 0 in a section that defers, 1 with the mask
 * (*old to put back), 2 nothing needed. */
static int lock_enter(sigset_t *old)
{
    if (t.faults == 0)
        t.faults = faults_let_in();
    if (t.faults == 2)
        return 2; /* no handler can run on this thread */
    if (t.faults == 1 && atomic_load_explicit(&deferring, memory_order_relaxed) &&
        !shim_sandboxed_known()) {
        t.depth++;
        atomic_signal_fence(memory_order_seq_cst);
        return 0;
    }
    sigset_t all;
    shim_sigfill_but_faults(&all);
    return pthread_sigmask(SIG_BLOCK, &all, old) == 0 ? 1 : 2;
}

/* By the mask: what this lock's section held is let in again, not the
 * mask before it put back, so that locks released out of the order they
 * were taken in (a fork's handlers) end with the program's mask. */
static void lock_leave(int how, const sigset_t *old)
{
    if (how == 0) {
        depth_leave();
    } else if (how == 1) {
        sigset_t held;
        shim_sigfill_but_faults(&held);
        for (int sig = 1; sig < NSIG; sig++)
            if (sigismember(old, sig) == 1)
                sigdelset(&held, sig);
        pthread_sigmask(SIG_UNBLOCK, &held, NULL); /* a pending signal's handler runs here */
    }
}

void shim_mutex_lock(shim_mutex *m)
{
    sigset_t old;
    int how = lock_enter(&old);
    pthread_mutex_lock(&m->m);
    m->how = how;
    if (how == 1)
        m->old = old;
}

int shim_mutex_trylock(shim_mutex *m)
{
    sigset_t old;
    int how = lock_enter(&old);
    int r = pthread_mutex_trylock(&m->m);
    if (r != 0) {
        lock_leave(how, &old);
        return r;
    }
    m->how = how;
    if (how == 1)
        m->old = old;
    return 0;
}

void shim_mutex_unlock(shim_mutex *m)
{
    int how = m->how;
    sigset_t old;
    if (how == 1)
        old = m->old;
    pthread_mutex_unlock(&m->m);
    lock_leave(how, &old);
}

void shim_mutex_init(shim_mutex *m)
{
    pthread_mutex_init(&m->m, NULL);
}
