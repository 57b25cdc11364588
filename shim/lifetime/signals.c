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
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

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

static void stand_in(int sig)
{
    int saved = errno;
    static const struct timespec tick = {0, 10 * 1000 * 1000};
    if (shim_cfg.stats && shim_engine_stats_request())
        for (int i = 0; i < STATS_TICKS && !shim_engine_stats_printed(); i++)
            nanosleep(&tick, NULL);
    if (shim_engine_signal_handoff())
        for (int i = 0; i < KEEPER_TICKS && !shim_engine_signal_handed(); i++)
            nanosleep(&tick, NULL);
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
    return pass(sig, NULL, &cur) == 0 && !(cur.sa_flags & SA_SIGINFO) &&
           cur.sa_handler == stand_in;
}

/* The stand-in, with the other watched signals held off while it waits
 * for the engines: a second one would otherwise end the process by its
 * own number. */
static int install(int sig, struct sigaction *oact)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = stand_in;
    sa.sa_mask = watched;
    sa.sa_flags = SA_RESTART;
    return pass(sig, &sa, oact);
}

static int is_default(const struct sigaction *a)
{
    return !(a->sa_flags & SA_SIGINFO) && a->sa_handler == SIG_DFL;
}

void shim_signals_init(void)
{
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
        if (!(a.sa_flags & SA_SIGINFO) &&
            (a.sa_handler == SIG_DFL || a.sa_handler == SIG_IGN || a.sa_handler == stand_in))
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

SHIM_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *oact)
{
    if (shim_fault_owned(sig))
        return shim_fault_sigaction(sig, act, oact); /* SIGSEGV, SIGBUS: base/fault.c */
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
 * answer to SIG_ERR) except where the stand-in is concerned. */
SHIM_EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
    sighandler_t (*real)(int, sighandler_t) = real_signal ? real_signal : bsd_signal;
    if (shim_fault_owned(sig) && handler != SIG_ERR) {
        /* glibc's signal(): BSD semantics, the signal held in its handler */
        struct sigaction a, o;
        memset(&a, 0, sizeof a);
        a.sa_handler = handler;
        sigemptyset(&a.sa_mask);
        sigaddset(&a.sa_mask, sig);
        a.sa_flags = SA_RESTART;
        return shim_fault_sigaction(sig, &a, &o) < 0 ? SIG_ERR : o.sa_handler;
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
