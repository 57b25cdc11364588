/*
 * fault.c: copies between the shim's memory and the application's that say
 * EFAULT where the kernel's copy_to_user/copy_from_user would, at the cost
 * of a memcpy: the shim's own handler for SIGSEGV and SIGBUS turns a fault
 * inside such a copy into EFAULT, and hands every other fault to the
 * program's disposition.
 *
 * Why: a bad buffer passed to read() or send() is EFAULT over kernel TCP,
 * and must be under the shim (the house rule: the errno TCP would give).
 * The copies that the app thread's fast path makes (apprecv.c's straight
 * into the reader's buffer, appsend.c's into the send buffer) used
 * process_vm_readv/writev on ourselves: the kernel checks the pointer, but
 * pins the pages for it (get_user_pages): 1.4-1.8 us for one byte on this
 * VM, against 0.003 us for memcpy, and 21 % of a one-CPU ping-pong's time
 * (perf, issue 46). A guarded memcpy costs a sigsetjmp (no system call:
 * the mask is not saved) and a thread-local store.
 *
 * The handler stands in for the program's, as signals.c's stand-in does
 * for the default action of the ending signals: sigaction() and signal()
 * (interposed there) report and set the program's disposition, remembered
 * here, and the kernel keeps ours. A fault that is not a guarded copy's
 * gets what the program asked for: its handler, called as the kernel would
 * (SA_SIGINFO or not, its sa_mask and the signal itself blocked unless
 * SA_NODEFER, SA_RESETHAND honoured), or the default action (the default
 * put back and the faulting instruction run again, so the process dies of
 * the fault itself, with its core dump; a kill() sent one is raised again),
 * or nothing for a sent one that the program ignores. Ours runs with
 * SA_ONSTACK, so a program that catches stack overflow on its sigaltstack
 * still gets there, and SA_NODEFER, so a copy's fault leaves the signal
 * unblocked for the next.
 *
 * Limits: a program that installs its handler by a way we do not see (a
 * raw rt_sigaction, sigset(), a sanitizer's runtime) replaces ours in the
 * kernel; a guarded copy's fault then reaches that handler, as a plain
 * copy's would (the next sigaction() query notices and turns the guard
 * off: the copies go back to process_vm). The copy must run with SIGSEGV
 * and SIGBUS unblocked (shim_sigfill_but_faults): a synchronous fault
 * that is blocked ends the process (force_sig_info_to_task). Under the
 * sanitizers (make asan, tsan), whose runtimes own these signals, the
 * guard is off.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base.h"

#include "poison.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FAULT_GUARD 0
#else
#define FAULT_GUARD 1
#endif

/* glibc's own entry: real.c may not have bound real_sigaction yet (a
 * sanitizer runtime's start-up calls sigaction before anything of ours
 * runs) */
extern int __sigaction(int, const struct sigaction *, struct sigaction *);

int shim_kernel_sigaction(int sig, const struct sigaction *act, struct sigaction *oact)
{
    return real_sigaction ? real_sigaction(sig, act, oact) : __sigaction(sig, act, oact);
}

/* The guarded copy in progress on this thread, or NULL: 8 bytes of static
 * TLS. */
static __thread sigjmp_buf *guard;

static _Atomic int guarding; /* our handler is the kernel's for both signals */
static shim_mutex app_mu = SHIM_MUTEX_INITIALIZER;
/* The program's dispositions (index 0 SIGSEGV, 1 SIGBUS), written under
 * app_mu, read by the handler: a seqlock, so a handler that interrupts a
 * sigaction() reads a whole one. */
static struct sigaction app_act[2];
static _Atomic unsigned app_seq;

static int slot_of(int sig)
{
    return sig == SIGSEGV ? 0 : sig == SIGBUS ? 1 : -1;
}

int shim_fault_owned(int sig)
{
    return FAULT_GUARD && slot_of(sig) >= 0 && atomic_load(&guarding);
}

void shim_sigfill_but_faults(sigset_t *set)
{
    sigfillset(set);
    sigdelset(set, SIGSEGV);
    sigdelset(set, SIGBUS);
}

static void app_read(int slot, struct sigaction *out)
{
    unsigned s0, s1;
    do {
        s0 = atomic_load_explicit(&app_seq, memory_order_acquire);
        memcpy(out, &app_act[slot], sizeof *out);
        atomic_thread_fence(memory_order_acquire);
        s1 = atomic_load_explicit(&app_seq, memory_order_relaxed);
    } while ((s0 & 1u) || s0 != s1);
}

static void app_write(int slot, const struct sigaction *in)
{
    atomic_fetch_add_explicit(&app_seq, 1, memory_order_acq_rel);
    atomic_thread_fence(memory_order_release);
    memcpy(&app_act[slot], in, sizeof *in);
    atomic_fetch_add_explicit(&app_seq, 1, memory_order_release);
}

static void to_default(int sig)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    atomic_store(&guarding, 0);
    shim_kernel_sigaction(sig, &dfl, NULL);
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    sigjmp_buf *g = guard;
    if (g && si->si_code > 0) { /* the kernel's, inside a guarded copy */
        guard = NULL;
        siglongjmp(*g, 1);
    }
    int slot = slot_of(sig);
    struct sigaction a;
    app_read(slot, &a);
    int sent = si->si_code <= 0; /* kill(), tgkill(), sigqueue() */
    if (!(a.sa_flags & SA_SIGINFO) && (a.sa_handler == SIG_IGN || a.sa_handler == SIG_DFL)) {
        if (sent && a.sa_handler == SIG_IGN)
            return;
        /* the default: a fault happens again when we return, now with it;
         * a sent one is raised again (pending until we return) */
        int saved = errno;
        to_default(sig);
        if (sent)
            raise(sig);
        errno = saved;
        return;
    }
    if ((unsigned)a.sa_flags & (unsigned)SA_RESETHAND) {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        app_write(slot, &dfl);
    }
    sigset_t m = a.sa_mask;
    if (!(a.sa_flags & SA_NODEFER))
        sigaddset(&m, sig);
    pthread_sigmask(SIG_BLOCK, &m, NULL); /* the kernel puts the mask back at our return */
    shim_crit_mask_changed(); /* and the program's handler may leave by siglongjmp */
    shim_crit_handler_runs(1);
    if (a.sa_flags & SA_SIGINFO)
        a.sa_sigaction(sig, si, uc);
    else
        a.sa_handler(sig);
    shim_crit_handler_runs(-1);
}

static int install(int sig, int restart)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER | (restart ? SA_RESTART : 0);
    return shim_kernel_sigaction(sig, &sa, NULL);
}

static int ours(const struct sigaction *k)
{
    return (k->sa_flags & SA_SIGINFO) && k->sa_sigaction == on_fault;
}

void shim_fault_init(void)
{
    if (!FAULT_GUARD)
        return;
    shim_mutex_lock(&app_mu);
    struct sigaction cur[2];
    int ok = shim_kernel_sigaction(SIGSEGV, NULL, &cur[0]) == 0 &&
             shim_kernel_sigaction(SIGBUS, NULL, &cur[1]) == 0;
    if (ok && !ours(&cur[0]) && !ours(&cur[1])) {
        app_write(0, &cur[0]);
        app_write(1, &cur[1]);
        if (install(SIGSEGV, cur[0].sa_flags & SA_RESTART) == 0 &&
            install(SIGBUS, cur[1].sa_flags & SA_RESTART) == 0) {
            atomic_store(&guarding, 1);
        } else {
            shim_kernel_sigaction(SIGSEGV, &cur[0], NULL);
            shim_kernel_sigaction(SIGBUS, &cur[1], NULL);
        }
    }
    shim_mutex_unlock(&app_mu);
}

int shim_fault_sigaction(int sig, const struct sigaction *act, struct sigaction *oact)
{
    int slot = slot_of(sig);
    struct sigaction a;
    if (act && shim_user_read(&a, act, sizeof a) < 0)
        return -1; /* EFAULT, as the kernel's */
    /* A sent SIGSEGV in this thread must not find the remembered one half
     * written (the handler would wait for it for ever): held off around
     * it; the memory touched meanwhile is ours alone. */
    sigset_t both, held;
    sigemptyset(&both);
    sigaddset(&both, SIGSEGV);
    sigaddset(&both, SIGBUS);
    pthread_sigmask(SIG_BLOCK, &both, &held);
    shim_mutex_lock(&app_mu);
    struct sigaction k, old;
    int r = shim_kernel_sigaction(sig, NULL, &k);
    int passed = r == 0 && !ours(&k);
    if (passed) {
        /* replaced by a way we do not see: the kernel's is the truth, and
         * the guard is off for good */
        atomic_store(&guarding, 0);
        r = shim_kernel_sigaction(sig, act ? &a : NULL, oact ? &old : NULL);
    } else {
        app_read(slot, &old);
        /* ours stays, with the program's SA_RESTART for a sent signal
         * that interrupts a call */
        if (r == 0 && act && (r = install(sig, a.sa_flags & SA_RESTART)) == 0) {
            sigdelset(&a.sa_mask, SIGKILL);
            sigdelset(&a.sa_mask, SIGSTOP);
            app_write(slot, &a);
        }
    }
    int err = errno;
    shim_mutex_unlock(&app_mu);
    pthread_sigmask(SIG_SETMASK, &held, NULL);
    if (r == 0 && oact && shim_user_write(oact, &old, sizeof old) < 0)
        return -1;
    if (r < 0)
        errno = err;
    return r;
}

/* exec() resets a caught signal to its default but keeps an ignored one:
 * a program's SIG_IGN must be the kernel's across it, or the new image
 * would start at SIG_DFL. Returns what to put back if the exec fails. */
int shim_fault_exec_leaving(void)
{
    if (!FAULT_GUARD || !atomic_load(&guarding))
        return 0;
    int changed = 0;
    for (int slot = 0; slot < 2; slot++) {
        struct sigaction a;
        app_read(slot, &a);
        if (!(a.sa_flags & SA_SIGINFO) && a.sa_handler == SIG_IGN &&
            shim_kernel_sigaction(slot ? SIGBUS : SIGSEGV, &a, NULL) == 0)
            changed |= 1 << slot;
    }
    return changed;
}

void shim_fault_exec_back(int changed)
{
    for (int slot = 0; slot < 2; slot++)
        if (changed & (1 << slot))
            install(slot ? SIGBUS : SIGSEGV, 0);
}

/* Copies what src describes into dst, as much as the shorter holds, or
 * stops at a fault: the count, or -EFAULT. The iovec arrays are read
 * under the guard too: they may be the program's. The guard before is put
 * back on both ways out: a handler of a sent SIGSEGV (which a span lets
 * in, the faults being unblocked) may make a copy of its own amid one. */
static ssize_t copy_iov(const struct iovec *dst, int dn, const struct iovec *src, int sn)
{
    sigjmp_buf env;
    sigjmp_buf *volatile outer = guard;
    if (sigsetjmp(env, 0)) {
        guard = outer;
        return -EFAULT;
    }
    guard = &env;
    atomic_signal_fence(memory_order_seq_cst);
    size_t total = 0;
    int i = 0, j = 0;
    size_t io = 0, jo = 0;
    while (i < dn && j < sn) {
        size_t a = dst[i].iov_len - io, b = src[j].iov_len - jo;
        size_t k = a < b ? a : b;
        if (k)
            memcpy((char *)dst[i].iov_base + io, (const char *)src[j].iov_base + jo, k);
        total += k;
        io += k;
        jo += k;
        if (io == dst[i].iov_len) {
            i++;
            io = 0;
        }
        if (jo == src[j].iov_len) {
            j++;
            jo = 0;
        }
    }
    atomic_signal_fence(memory_order_seq_cst);
    guard = outer;
    return (ssize_t)total;
}

int shim_hold_but_faults(sigset_t *old)
{
    /* SIG_BLOCK, not SETMASK: a fault signal the thread holds stays held
     * (a SIGSEGV sent to it and pending must not be let in here, where
     * the kernel would keep it pending) */
    sigset_t all;
    shim_sigfill_but_faults(&all);
    if (pthread_sigmask(SIG_BLOCK, &all, old) != 0)
        return 0;
    if (sigismember(old, SIGSEGV) == 1 || sigismember(old, SIGBUS) == 1) {
        pthread_sigmask(SIG_SETMASK, old, NULL);
        return 0;
    }
    return 1;
}

/* A section rather than the mask: two rt_sigprocmask fewer for every
 * getsockopt(), getsockname(), getpeername() or accept() that writes to
 * the program's memory (t_prog_pristine counts them). */
int shim_fault_hold(shim_crit *c)
{
    if (!FAULT_GUARD || !atomic_load_explicit(&guarding, memory_order_relaxed))
        return 0;
    return shim_crit_enter(c);
}

void shim_fault_release(shim_crit *c)
{
    shim_crit_leave(c);
}

int shim_fault_copy(void *dst, const void *src, size_t n)
{
    struct iovec d = {dst, n}, s = {(void *)(uintptr_t)src, n};
    return copy_iov(&d, 1, &s, 1) == (ssize_t)n ? 0 : -EFAULT;
}

ssize_t shim_app_copyv(pid_t me, const struct iovec *dst, int dn, const struct iovec *src, int sn,
                       int to_app)
{
    if (FAULT_GUARD && atomic_load_explicit(&guarding, memory_order_relaxed)) {
        ssize_t r = copy_iov(dst, dn, src, sn);
        if (r < 0)
            errno = (int)-r;
        return r < 0 ? -1 : r;
    }
    /* the kernel's copy checks the program's side (ours is local) */
    return to_app ? process_vm_writev(me, src, (unsigned long)sn, dst, (unsigned long)dn, 0)
                  : process_vm_readv(me, dst, (unsigned long)dn, src, (unsigned long)sn, 0);
}
