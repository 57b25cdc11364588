/*
 * signals.c: what the shim does when a signal ends the program. Where the
 * program leaves the default action of a catchable signal that ends the
 * process, the shim stands in for it: its handler hands the engines to a
 * keeper (as _exit does: kernel TCP delivers what the sockets hold after
 * the process is gone, and so must the engines), with RUDP_STATS=1 has the
 * engines print their figures first (each engine taking its own on its
 * thread, enginestats.c), then resets the default action and raises the signal
 * again, so the process dies of it as it would have: the same WTERMSIG,
 * and a core dumped where the kernel dumps one (SIGQUIT, SIGABRT, SIGXCPU,
 * SIGXFSZ: the re-raised signal takes the kernel's own default action).
 *
 * Which signals (man 7 signal, "Standard signals"): those whose default
 * action is Term or Core and that a handler can catch, sent by someone
 * else or by a call the program made with its memory intact: SIGHUP,
 * SIGINT, SIGQUIT, SIGABRT, SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM,
 * SIGSTKFLT, SIGIO (SIGPOLL), SIGVTALRM, SIGPROF, SIGXCPU, SIGXFSZ, SIGPWR
 * and the realtime signals SIGRTMIN..SIGRTMAX (glibc keeps the two below
 * SIGRTMIN for itself). SIGPIPE is raised by write() to a closed pipe or
 * socket; the call has failed cleanly, and kernel TCP still delivers the
 * process's other connections. abort() (SIGABRT) runs the handler and, as
 * glibc does when a handler returns, the default action follows; an
 * abort() from malloc's consistency checks may hold the allocator's lock,
 * which the keeper's fork() takes: then the wait below runs out and the
 * process dies as before, 5 s later.
 *
 * Left alone (by this file: base/fault.c stands in for the program's
 * SIGSEGV and SIGBUS handlers, to turn a fault in its guarded copies into
 * EFAULT, and gives every other fault the program's disposition): the
 * synchronous faults SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGTRAP, raised
 * by the instruction that faulted, with the process's memory (the
 * engines' included) possibly broken: a keeper would carry on
 * from state nobody can trust, and a debugger or a sanitizer expects the
 * fault itself. SIGSYS likewise: seccomp raises it for a call the sandbox
 * refuses, and the fork() a keeper needs is then likely refused too.
 * SIGKILL and SIGSTOP cannot be caught; the others stop the process or
 * are ignored by default.
 *
 * The program never sees the stand-in: sigaction() and signal() report
 * SIG_DFL where it is, and the program's own handler or SIG_IGN replaces
 * it. Then the program's handler runs as written, and if it calls exit()
 * the destructor hands over and prints the figures as at any normal exit.
 * The signal mask is the program's: a signal it blocks stays pending
 * (sigwait(), sigwaitinfo() and signalfd take it, as with SIG_DFL), and
 * the disposition does not change what is queued. Only /proc/PID/status
 * (SigCgt) shows the handler.
 *
 * The handler only does what a handler may (write, nanosleep, sigaction,
 * raise): it asks, and waits a bounded time for the engines to answer (a
 * thread it interrupted may hold what they need: then the process dies
 * as before, its connections with it).
 *
 * The program's own handlers go through a trampoline, so that a signal
 * that comes while its thread is inside one of the shim's short critical
 * sections waits for the section's end (base/crit.c) without the section
 * holding every signal by two system calls. The kernel's handler is then
 * the trampoline, with the program's flags (SA_SIGINFO added) and mask;
 * the program's function is kept here, and sigaction() and signal()
 * report it as installed. Those that signal(), bsd_signal(), ssignal(),
 * sysv_signal(), __sysv_signal(), sigset() and siginterrupt() install are
 * taken the same way, and those
 * already there at start. SA_RESETHAND is the trampoline's to do, not the
 * kernel's (a deferred copy would find the default). Not taken: the
 * synchronous faults (SIGFPE, SIGILL, SIGTRAP, SIGSYS; SIGSEGV and SIGBUS
 * are base/fault.c's), which the kernel raises for the instruction that
 * faulted, never inside a section; and a handler installed by a raw
 * rt_sigaction, which the shim does not see (docs/limits.md).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "lifetime.h"

#include "base/poison.h"

static const int standard[] = {SIGHUP,    SIGINT,  SIGQUIT, SIGABRT, SIGUSR1, SIGUSR2,
                                SIGPIPE,   SIGALRM, SIGTERM, SIGSTKFLT, SIGIO, SIGVTALRM,
                                SIGPROF,   SIGXCPU, SIGXFSZ, SIGPWR};
static sigset_t watched; /* the above and SIGRTMIN..SIGRTMAX, set once at init */
static _Atomic int enabled;

static int is_watched(int sig)
{
    return sigismember(&watched, sig) == 1;
}

/* How long the stand-in waits for the figures, and for a keeper, in 10 ms
 * ticks: a keeper is a fork of the process, longer for a large one. */
#define STATS_TICKS 100
#define KEEPER_TICKS 500

void shim_signals_hand_over(void)
{
    static const struct timespec tick = {0, 10 * 1000 * 1000};
    if (shim_engine_signal_handoff())
        for (int i = 0; i < KEEPER_TICKS && !shim_engine_signal_handed(); i++)
            nanosleep(&tick, NULL);
}

static void stand_in(int sig, siginfo_t *si, void *uc)
{
    if (shim_crit_defer(sig, si, uc))
        return; /* its thread holds an engine's turn: at the section's end */
    int saved = errno;
    static const struct timespec tick = {0, 10 * 1000 * 1000};
    if (shim_cfg.stats && shim_engine_stats_request())
        for (int i = 0; i < STATS_TICKS && !shim_engine_stats_printed(); i++)
            nanosleep(&tick, NULL);
    shim_signals_hand_over();
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    real_sigaction(sig, &dfl, NULL);
    raise(sig); /* pending until this handler returns: then the default action */
    errno = saved;
}

/* glibc's own entries, for calls that come before real.c has bound
 * real_sigaction and real_signal: a sanitizer runtime's start-up calls
 * sigaction (ours, preloaded first) before anything of ours may run.
 * Not base/fault.c's shim_kernel_sigaction, which is the same call: this
 * file alone is built without ThreadSanitizer's instrumentation (Makefile),
 * and an instrumented function called from TSan's own start-up faults. */
extern int __sigaction(int, const struct sigaction *, struct sigaction *);
extern sighandler_t bsd_signal(int, sighandler_t); /* glibc's signal() */

static int pass(int sig, const struct sigaction *act, struct sigaction *oact)
{
    return real_sigaction ? real_sigaction(sig, act, oact) : __sigaction(sig, act, oact);
}

/* Whether the stand-in is installed for sig now: asked of the kernel, not
 * remembered, since a program may also change its handlers by ways we do
 * not see (sysv_signal, sigset, a raw rt_sigaction). */
static int ours_now(int sig)
{
    struct sigaction cur;
    return pass(sig, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
           cur.sa_sigaction == stand_in;
}

/* The stand-in, with the other watched signals held off while it waits
 * for the engines: a second one would otherwise end the process by its
 * own number. */
static int install(int sig, struct sigaction *oact)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = stand_in;
    sa.sa_mask = watched;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    return pass(sig, &sa, oact);
}

static int is_default(const struct sigaction *a)
{
    return !(a->sa_flags & SA_SIGINFO) && a->sa_handler == SIG_DFL;
}

static void wrap_init(void);

void shim_signals_init(void)
{
    wrap_init();
    /* Not in a PID namespace's init: the kernel ignores a default-action
     * signal it sends itself, so raising it again would not end it. */
    if (getpid() == 1)
        return;
    sigset_t w;
    sigemptyset(&w);
    for (size_t i = 0; i < sizeof standard / sizeof standard[0]; i++)
        sigaddset(&w, standard[i]);
    for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
        sigaddset(&w, sig);
    watched = w;
    atomic_store(&enabled, 1);
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction old;
        if (is_watched(sig) && pass(sig, NULL, &old) == 0 && is_default(&old))
            install(sig, NULL);
    }
}

void shim_signals_off(void)
{
    atomic_store(&enabled, 0);
    shim_crit_deferring(0);
}

static int ours_to_mind(int sig)
{
    return atomic_load(&enabled) && sig > 0 && sig < NSIG && is_watched(sig);
}

/* Whether the kernel's read() that the signals pending (not blocked by
 * `blocked`) interrupt would say EINTR rather than restart: one of them
 * has a handler without SA_RESTART (engine/apprecv.c's wait asks, with the
 * signals still held back; the stand-in restarts). Signals left at their
 * default or ignored interrupt nothing: they end or stop the process, or
 * are not delivered at all. */
/* 1 when a signal in pending and not in blocked has a handler of the
 * program's: any (restarts 0), or one without SA_RESTART (restarts 1). */
static int handler_pending(const sigset_t *pending, const sigset_t *blocked, int restarts)
{
    for (int sig = 1; sig < NSIG; sig++) {
        if (sigismember(pending, sig) != 1 || sigismember(blocked, sig) == 1)
            continue;
        struct sigaction a;
        if (pass(sig, NULL, &a) != 0)
            continue;
        if (!(a.sa_flags & SA_SIGINFO) && (a.sa_handler == SIG_DFL || a.sa_handler == SIG_IGN))
            continue;
        if ((a.sa_flags & SA_SIGINFO) && a.sa_sigaction == stand_in)
            continue;
        if (!restarts || !(a.sa_flags & SA_RESTART))
            return 1;
    }
    return 0;
}

int shim_signals_interrupt(const sigset_t *pending, const sigset_t *blocked)
{
    return handler_pending(pending, blocked, 1);
}

int shim_signals_handled(const sigset_t *pending, const sigset_t *blocked)
{
    return handler_pending(pending, blocked, 0);
}

void shim_signals_let_in(const sigset_t *pending, const sigset_t *blocked)
{
    sigset_t let, held;
    sigfillset(&let);
    for (int sig = 1; sig < NSIG; sig++)
        if (sigismember(pending, sig) == 1 && sigismember(blocked, sig) != 1)
            sigdelset(&let, sig);
    pthread_sigmask(SIG_SETMASK, &let, &held);
    pthread_sigmask(SIG_SETMASK, &held, NULL);
}

/* ---- the program's handlers, through the trampoline ---- */

/* The program's function for each signal whose kernel handler is the
 * trampoline, as its struct sigaction holds it (SA_SIGINFO says which):
 * written under reg_mu with every signal held, read by the trampoline (a
 * seqlock, as base/fault.c's). */
typedef struct app_fn {
    int info;
    int oneshot; /* SA_RESETHAND: the trampoline puts the default back */
    void (*h)(int);
    void (*a)(int, siginfo_t *, void *);
} app_fn;
static app_fn reg[NSIG];
static _Atomic unsigned reg_seq;
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int wrap_on;
static _Atomic uint64_t intr; /* siginterrupt(sig, 1): signal() without SA_RESTART */

static uint64_t bit(int sig)
{
    return (uint64_t)1 << (sig - 1);
}

/* The signals the trampoline takes: every one a handler may catch but the
 * synchronous faults and glibc's own two. */
static int wrappable(int sig)
{
    return sig > 0 && sig < NSIG && sig <= 64 && sig != SIGKILL && sig != SIGSTOP &&
           sig != SIGSEGV && sig != SIGBUS && sig != SIGFPE && sig != SIGILL &&
           sig != SIGTRAP && sig != SIGSYS && (sig < 32 || sig >= SIGRTMIN);
}

/* Whether sig's handlers go through the trampoline here: not in a child
 * that shares our memory but not our handlers (vfork, clone(CLONE_VM)),
 * whose sigaction() would write the registry the parent's trampoline
 * reads; such a child takes no section (its reads and writes are the
 * parent's engines'). */
static int wrapping(int sig)
{
    return atomic_load(&wrap_on) && wrappable(sig) && shim_procenv_table() == 0;
}

static void reg_read(int sig, app_fn *out)
{
    unsigned s0, s1;
    do {
        s0 = atomic_load_explicit(&reg_seq, memory_order_acquire);
        memcpy(out, &reg[sig], sizeof *out);
        atomic_thread_fence(memory_order_acquire);
        s1 = atomic_load_explicit(&reg_seq, memory_order_relaxed);
    } while ((s0 & 1u) || s0 != s1);
}

static void reg_write(int sig, const struct sigaction *act)
{
    app_fn f = {.info = (act->sa_flags & SA_SIGINFO) != 0,
                .oneshot = ((unsigned)act->sa_flags & (unsigned)SA_RESETHAND) != 0};
    if (f.info)
        f.a = act->sa_sigaction;
    else
        f.h = act->sa_handler;
    atomic_fetch_add_explicit(&reg_seq, 1, memory_order_acq_rel);
    atomic_thread_fence(memory_order_release);
    memcpy(&reg[sig], &f, sizeof f);
    atomic_fetch_add_explicit(&reg_seq, 1, memory_order_release);
}

/* Set on the forking thread between our prepare and parent/child
 * handlers, which hold reg_mu for it: a library's fork handler that runs
 * between them (registered before ours) and sets a handler must not wait
 * for the lock its own thread holds. 4 bytes of TLS. */
static __thread int fork_holding;

/* Every signal held but the faults (a bad pointer read under the lock
 * still reaches the program's SIGSEGV handler) */
static void reg_lock(sigset_t *held)
{
    sigset_t all;
    shim_sigfill_but_faults(&all);
    pthread_sigmask(SIG_BLOCK, &all, held);
    shim_crit_mask_changed();
    if (!fork_holding)
        pthread_mutex_lock(&reg_mu);
}

static sigset_t fork_held; /* the forking thread's mask, under reg_mu */

static void reg_unlock(const sigset_t *held)
{
    if (!fork_holding)
        pthread_mutex_unlock(&reg_mu);
    pthread_sigmask(SIG_SETMASK, held, NULL);
    shim_crit_mask_changed();
}

static void trampoline(int sig, siginfo_t *si, void *uc);
static void app_view(int sig, struct sigaction *k);

/* SA_RESETHAND's reset, at the delivery the handler runs for, in the
 * handler (sigaction is async-signal-safe; reg_mu is never held by a
 * thread that takes a signal). 1: this delivery reset it, and runs the
 * handler; 0: another thread's did first, and this one is the default's. */
static int reset_oneshot(int sig, const app_fn *f)
{
    sigset_t held;
    reg_lock(&held);
    struct sigaction k;
    int won = pass(sig, NULL, &k) == 0 && (k.sa_flags & SA_SIGINFO) && k.sa_sigaction == trampoline;
    app_fn now;
    reg_read(sig, &now);
    if (won && memcmp(&now, f, sizeof now) != 0) {
        /* a handler set since this one came, as if set after the kernel's
         * reset: it stays, and this delivery runs the one it came for */
        reg_unlock(&held);
        return 1;
    }
    if (won) {
        if (ours_to_mind(sig)) {
            install(sig, NULL);
        } else {
            /* as the kernel's reset: the handler alone, flags and mask kept */
            app_view(sig, &k);
            k.sa_handler = SIG_DFL;
            pass(sig, &k, NULL);
        }
    }
    reg_unlock(&held);
    return won;
}

static void trampoline(int sig, siginfo_t *si, void *uc)
{
    if (shim_crit_defer(sig, si, uc))
        return; /* its thread holds an engine's turn: at the section's end */
    app_fn f;
    reg_read(sig, &f);
    if (f.info ? !f.a : (f.h == SIG_DFL || f.h == SIG_IGN))
        return; /* never: the kernel's handler is ours only after reg_write */
    int saved = errno; /* the handler's errno is the program's to keep; ours is not */
    if (f.oneshot && !reset_oneshot(sig, &f)) {
        /* as the kernel's: the second of two that came at once finds the
         * default, which a copy queued again now takes */
        syscall(SYS_rt_tgsigqueueinfo, (long)getpid(), (long)gettid(), (long)sig, si);
        errno = saved;
        return;
    }
    shim_crit_mask_changed(); /* the handler's mask, or its siglongjmp's */
    errno = saved;
    shim_crit_handler_runs(1); /* an _exit() in it hands over as the stand-in does */
    if (f.info)
        f.a(sig, si, uc);
    else
        f.h(sig);
    saved = errno;
    shim_crit_handler_runs(-1);
    shim_crit_mask_changed();
    errno = saved;
}

/* A handler of the program's, not SIG_DFL or SIG_IGN (the kernel reads the
 * union's value alone). */
static int is_handler(const struct sigaction *a)
{
    return a->sa_handler != SIG_DFL && a->sa_handler != SIG_IGN;
}

static int is_ours(const struct sigaction *k)
{
    return (k->sa_flags & SA_SIGINFO) && (k->sa_sigaction == trampoline || k->sa_sigaction == stand_in);
}

/* The program's view of the kernel's disposition k of sig: the stand-in
 * reads as SIG_DFL, the trampoline as the program's function. */
static void app_view(int sig, struct sigaction *k)
{
    if (!(k->sa_flags & SA_SIGINFO))
        return;
    if (k->sa_sigaction == stand_in) {
        memset(k, 0, sizeof *k);
        k->sa_handler = SIG_DFL;
        sigemptyset(&k->sa_mask);
    } else if (k->sa_sigaction == trampoline) {
        app_fn f;
        reg_read(sig, &f);
        if (f.oneshot)
            k->sa_flags = (int)((unsigned)k->sa_flags | (unsigned)SA_RESETHAND);
        if (f.info) {
            k->sa_sigaction = f.a;
        } else {
            k->sa_handler = f.h;
            k->sa_flags &= ~SA_SIGINFO;
        }
    }
}

/* act, a handler of the program's, made sig's through the trampoline;
 * SA_RESETHAND is the trampoline's to do (the kernel's would leave a
 * deferred copy the default action). reg_mu held, every signal held. */
static int install_app(int sig, const struct sigaction *act)
{
    reg_write(sig, act);
    struct sigaction k = *act;
    k.sa_sigaction = trampoline;
    k.sa_flags = (int)(((unsigned)k.sa_flags | (unsigned)SA_SIGINFO) & ~(unsigned)SA_RESETHAND);
    return pass(sig, &k, NULL);
}

/* What the kernel holds for sig taken as the program's: a handler
 * installed where we did not see it (sigset(), one there before us) goes
 * through the trampoline too. reg_mu held, every
 * signal held. */
static void resync(int sig)
{
    struct sigaction k;
    if (pass(sig, NULL, &k) != 0)
        return;
    if (is_handler(&k) && !is_ours(&k))
        install_app(sig, &k);
}

static int plain_sigaction(int sig, const struct sigaction *act, struct sigaction *oact);

static int wrap_sigaction(int sig, const struct sigaction *act, struct sigaction *oact)
{
    if (!wrapping(sig))
        return plain_sigaction(sig, act, oact);
    sigset_t held;
    reg_lock(&held);
    struct sigaction prev;
    int r = pass(sig, NULL, &prev);
    if (r == 0)
        app_view(sig, &prev); /* before the registry holds the new one */
    if (r == 0 && act) {
        if (is_handler(act))
            r = install_app(sig, act);
        else if (act->sa_handler == SIG_DFL && ours_to_mind(sig))
            r = install(sig, NULL); /* the program's SIG_DFL: the stand-in again */
        else
            r = pass(sig, act, NULL);
    }
    reg_unlock(&held);
    if (r == 0 && oact)
        *oact = prev;
    return r;
}

/* At start: the handlers already there (another preloaded library's)
 * taken through the trampoline, and sections left to defer where all are. */
static void wrap_init(void)
{
    sigset_t held;
    reg_lock(&held);
    atomic_store(&wrap_on, 1);
    for (int sig = 1; sig < NSIG; sig++)
        if (wrappable(sig))
            resync(sig);
    shim_crit_deferring(1);
    reg_unlock(&held);
}

/* Every way in: SIGSEGV and SIGBUS are base/fault.c's. */
static int any_sigaction(int sig, const struct sigaction *act, struct sigaction *oact)
{
    if (shim_fault_owned(sig))
        return shim_fault_sigaction(sig, act, oact);
    return wrap_sigaction(sig, act, oact);
}

SHIM_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *oact)
{
    return any_sigaction(sig, act, oact);
}

void shim_signals_atfork_prepare(void)
{
    /* no child born with the registry's lock held by another thread */
    sigset_t held;
    reg_lock(&held);
    fork_held = held;
    fork_holding = 1;
}

static void fork_done(void)
{
    fork_holding = 0;
    sigset_t held = fork_held;
    reg_unlock(&held);
}

void shim_signals_atfork_parent(void)
{
    fork_done();
}

void shim_signals_atfork_child(void)
{
    fork_done();
}

static int plain_sigaction(int sig, const struct sigaction *act, struct sigaction *oact)
{
    if (!ours_to_mind(sig))
        return pass(sig, act, oact);
    int mine = ours_now(sig);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    if (act && is_default(act)) {
        if (!mine)
            return install(sig, oact); /* the program's SIG_DFL: the stand-in again */
    } else if (!mine) {
        return pass(sig, act, oact);
    } else if (act && pass(sig, act, NULL) < 0) {
        return -1; /* the program's own handler replaces the stand-in */
    }
    if (oact)
        *oact = dfl; /* the stand-in reads as the default it stands for */
    return 0;
}

/* signal() is glibc's own (its SA_RESTART and siginterrupt() rules, its
 * answer to SIG_ERR) except where the stand-in or the trampoline is
 * concerned. */
static sighandler_t bsd(int sig, sighandler_t handler)
{
    sighandler_t (*real)(int, sighandler_t) = real_signal ? real_signal : bsd_signal;
    if (handler != SIG_ERR && (shim_fault_owned(sig) || wrapping(sig))) {
        /* glibc's signal(): BSD semantics, the signal held in its handler,
         * restarting unless siginterrupt() said otherwise */
        struct sigaction a, o;
        memset(&a, 0, sizeof a);
        a.sa_handler = handler;
        sigemptyset(&a.sa_mask);
        sigaddset(&a.sa_mask, sig);
        a.sa_flags = atomic_load(&intr) & bit(sig) ? 0 : SA_RESTART;
        return any_sigaction(sig, &a, &o) < 0 ? SIG_ERR : o.sa_handler;
    }
    if (!ours_to_mind(sig) || handler == SIG_ERR)
        return real(sig, handler);
    int mine = ours_now(sig);
    if (handler == SIG_DFL) {
        struct sigaction old;
        if (mine)
            return SIG_DFL;
        return install(sig, &old) < 0 ? SIG_ERR : old.sa_handler;
    }
    sighandler_t prev = real(sig, handler);
    return prev != SIG_ERR && mine ? SIG_DFL : prev;
}

SHIM_EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
    return bsd(sig, handler);
}

SHIM_EXPORT sighandler_t bsd_signal(int sig, sighandler_t handler)
{
    return bsd(sig, handler);
}

/* glibc's: reset at delivery, not held in its handler, no restart */
static sighandler_t sysv(int sig, sighandler_t handler)
{
    if (handler == SIG_ERR || sig < 1 || sig >= NSIG) {
        errno = EINVAL;
        return SIG_ERR;
    }
    struct sigaction a, o;
    memset(&a, 0, sizeof a);
    a.sa_handler = handler;
    sigemptyset(&a.sa_mask);
    a.sa_flags = (int)((unsigned)SA_RESETHAND | (unsigned)SA_NODEFER);
    return any_sigaction(sig, &a, &o) < 0 ? SIG_ERR : o.sa_handler;
}

SHIM_EXPORT sighandler_t sysv_signal(int sig, sighandler_t handler)
{
    return sysv(sig, handler);
}

/* what signal() is in a program built for strict ISO C (no _DEFAULT_SOURCE) */
SHIM_EXPORT sighandler_t __sysv_signal(int sig, sighandler_t handler)
{
    return sysv(sig, handler);
}

SHIM_EXPORT sighandler_t ssignal(int sig, sighandler_t handler)
{
    return bsd(sig, handler);
}

/* glibc's sigset() (X/Open), through our sigaction: SIG_HOLD holds the
 * signal; any other disposition is set and the signal let in; the answer
 * SIG_HOLD where it was held before. */
SHIM_EXPORT sighandler_t sigset(int sig, sighandler_t disp)
{
    struct sigaction a, o;
    sigset_t one, old;
    sigemptyset(&one);
    if (sigaddset(&one, sig) < 0)
        return SIG_ERR; /* EINVAL */
    if (disp == SIG_HOLD) {
        int e = shim_sigmask(SIG_BLOCK, &one, &old);
        shim_crit_mask_changed();
        if (e) {
            errno = e;
            return SIG_ERR;
        }
        if (sigismember(&old, sig) == 1)
            return SIG_HOLD;
        return any_sigaction(sig, NULL, &o) < 0 ? SIG_ERR : o.sa_handler;
    }
    memset(&a, 0, sizeof a);
    a.sa_handler = disp;
    sigemptyset(&a.sa_mask);
    if (any_sigaction(sig, &a, &o) < 0)
        return SIG_ERR;
    int e = shim_sigmask(SIG_UNBLOCK, &one, &old);
    shim_crit_mask_changed();
    if (e) {
        errno = e;
        return SIG_ERR;
    }
    return sigismember(&old, sig) == 1 ? SIG_HOLD : o.sa_handler;
}

SHIM_EXPORT int siginterrupt(int sig, int flag)
{
    struct sigaction a;
    if (sig < 1 || sig >= NSIG) {
        errno = EINVAL;
        return -1;
    }
    if (sigaction(sig, NULL, &a) < 0)
        return -1;
    if (sig <= 64) {
        if (flag)
            atomic_fetch_or(&intr, bit(sig));
        else
            atomic_fetch_and(&intr, ~bit(sig));
    }
    if (flag)
        a.sa_flags &= ~SA_RESTART;
    else
        a.sa_flags |= SA_RESTART;
    return sigaction(sig, &a, NULL);
}

/* The program's mask changes: base/crit.c asks the kernel again whether
 * the thread lets SIGSEGV and SIGBUS in. */
#undef pthread_sigmask
SHIM_EXPORT int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
    int r = shim_sigmask(how, set, old);
    if (set)
        shim_crit_mask_changed();
    return r;
}

/* The System V and BSD ways to change the mask, as glibc's (through our
 * pthread_sigmask's record of the change). */
static int one_sig(int how, int sig)
{
    sigset_t one;
    sigemptyset(&one);
    if (sigaddset(&one, sig) < 0)
        return -1; /* EINVAL: out of range, or one of glibc's own two */
    int e = shim_sigmask(how, &one, NULL);
    shim_crit_mask_changed();
    if (e) {
        errno = e;
        return -1;
    }
    return 0;
}

SHIM_EXPORT int sighold(int sig)
{
    return one_sig(SIG_BLOCK, sig);
}

SHIM_EXPORT int sigrelse(int sig)
{
    return one_sig(SIG_UNBLOCK, sig);
}

/* sigblock/sigsetmask: the first 32 signals as an int (bit sig - 1) */
static int bsd_mask(int how, int mask)
{
    sigset_t set, old;
    int saved = errno;
    sigemptyset(&set);
    for (int sig = 1; sig <= 32 && sig < NSIG; sig++)
        if ((unsigned)mask & (1u << (sig - 1)))
            sigaddset(&set, sig); /* glibc's own 32 refused, as its sigblock */
    errno = saved;
    int e = shim_sigmask(how, &set, &old);
    shim_crit_mask_changed();
    if (e) {
        errno = e;
        return -1;
    }
    unsigned r = 0;
    for (int sig = 1; sig <= 32 && sig < NSIG; sig++)
        if (sigismember(&old, sig) == 1)
            r |= 1u << (sig - 1);
    return (int)r;
}

SHIM_EXPORT int sigblock(int mask)
{
    return bsd_mask(SIG_BLOCK, mask);
}

SHIM_EXPORT int sigsetmask(int mask)
{
    return bsd_mask(SIG_SETMASK, mask);
}

SHIM_EXPORT int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
    int r;
    if (real_sigprocmask) {
        r = real_sigprocmask(how, set, old);
    } else {
        int e = shim_sigmask(how, set, old);
        if (e)
            errno = e;
        r = e ? -1 : 0;
    }
    if (set)
        shim_crit_mask_changed();
    return r;
}
