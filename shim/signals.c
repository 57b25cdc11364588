/*
 * signals.c: what the shim does when SIGTERM, SIGINT or SIGHUP ends the
 * program. Where the program leaves such a signal's default action, the
 * shim stands in for it: its handler hands the engines to a keeper (as
 * _exit does: kernel TCP delivers what the sockets hold after the process
 * is gone, and so must the engines), with RUDP_STATS=1 has the engines
 * print their figures first (each engine taking its own on its thread,
 * engines.c), then resets the default action and raises the signal again,
 * so the process dies of it as it would have.
 *
 * The program never sees the stand-in: sigaction() and signal() report
 * SIG_DFL where it is, and the program's own handler or SIG_IGN replaces
 * it. Then the program's handler runs as written, and if it calls exit()
 * the destructor hands over and prints the figures as at any normal exit.
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

#include "shim.h"

#include "poison.h"

static const int watched[] = {SIGHUP, SIGINT, SIGTERM};
static _Atomic int enabled;

static int is_watched(int sig)
{
    for (size_t i = 0; i < sizeof watched / sizeof watched[0]; i++)
        if (watched[i] == sig)
            return 1;
    return 0;
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
 * sigaction (ours, preloaded first) before anything of ours may run. */
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
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof watched / sizeof watched[0]; i++)
        sigaddset(&sa.sa_mask, watched[i]);
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
    atomic_store(&enabled, 1);
    for (size_t i = 0; i < sizeof watched / sizeof watched[0]; i++) {
        struct sigaction old;
        if (pass(watched[i], NULL, &old) == 0 && is_default(&old))
            install(watched[i], NULL);
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

SHIM_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *oact)
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
 * answer to SIG_ERR) except where the stand-in is concerned. */
SHIM_EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
    sighandler_t (*real)(int, sighandler_t) = real_signal ? real_signal : bsd_signal;
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
