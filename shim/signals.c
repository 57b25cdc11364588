/*
 * signals.c: RUDP_STATS also when the program is ended by SIGTERM, SIGINT
 * or SIGHUP. Where the program leaves such a signal's default action, the
 * shim stands in for it (only with RUDP_STATS=1): its handler has the
 * engines print their figures, each engine taking its own on its thread
 * (engines.c), then resets the default action and raises the signal again,
 * so the process dies of it as it would have.
 *
 * The program never sees the stand-in: sigaction() and signal() report
 * SIG_DFL where it is, and the program's own handler or SIG_IGN replaces
 * it. Then the program's handler runs as written, and if it calls exit()
 * the destructor prints the figures as at any normal exit.
 *
 * The handler only does what a handler may (write, nanosleep, sigaction,
 * raise): it asks, and waits at most a second for the engines to answer.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "shim.h"

#include "poison.h"

static const int watched[] = {SIGHUP, SIGINT, SIGTERM};
static _Atomic int ours[NSIG];  /* the stand-in is installed for this signal */
static _Atomic int enabled;

static int is_watched(int sig)
{
    for (size_t i = 0; i < sizeof watched / sizeof watched[0]; i++)
        if (watched[i] == sig)
            return 1;
    return 0;
}

static void stand_in(int sig)
{
    int saved = errno;
    if (shim_engine_stats_request()) {
        static const struct timespec tick = {0, 10 * 1000 * 1000};
        for (int i = 0; i < 100 && !shim_engine_stats_printed(); i++)
            nanosleep(&tick, NULL);
    }
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    real_sigaction(sig, &dfl, NULL);
    atomic_store(&ours[sig], 0);
    raise(sig); /* pending until this handler returns: then the default action */
    errno = saved;
}

static int install(int sig, struct sigaction *oact)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = stand_in;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    int r = real_sigaction(sig, &sa, oact);
    if (r == 0)
        atomic_store(&ours[sig], 1);
    return r;
}

static int is_default(const struct sigaction *a)
{
    return !(a->sa_flags & SA_SIGINFO) && a->sa_handler == SIG_DFL;
}

void shim_signals_init(void)
{
    if (!shim_cfg.stats)
        return;
    atomic_store(&enabled, 1);
    for (size_t i = 0; i < sizeof watched / sizeof watched[0]; i++) {
        struct sigaction old;
        if (real_sigaction(watched[i], NULL, &old) == 0 && is_default(&old))
            install(watched[i], NULL);
    }
}

void shim_signals_off(void)
{
    atomic_store(&enabled, 0);
}

/* glibc's own entry, for calls that come before real.c has bound
 * real_sigaction: a sanitizer runtime's start-up calls sigaction (ours,
 * preloaded first) before anything of ours may run. */
extern int __sigaction(int, const struct sigaction *, struct sigaction *);

static int do_sigaction(int sig, const struct sigaction *act, struct sigaction *oact)
{
    if (!atomic_load(&enabled) || sig <= 0 || sig >= NSIG || !is_watched(sig))
        return real_sigaction ? real_sigaction(sig, act, oact) : __sigaction(sig, act, oact);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    if (atomic_load(&ours[sig])) {
        int r = 0;
        if (act && !is_default(act)) {
            r = real_sigaction(sig, act, NULL);
            if (r == 0)
                atomic_store(&ours[sig], 0);
        }
        if (r == 0 && oact)
            *oact = dfl; /* what the program set, or the default it had */
        return r;
    }
    if (act && is_default(act))
        return install(sig, oact);
    return real_sigaction(sig, act, oact);
}

SHIM_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *oact)
{
    return do_sigaction(sig, act, oact);
}

/* glibc's signal(): BSD semantics (the handler stays, calls restart, the
 * signal is blocked while its handler runs). */
SHIM_EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    if (sig > 0 && sig < NSIG)
        sigaddset(&sa.sa_mask, sig);
    sa.sa_flags = SA_RESTART;
    if (do_sigaction(sig, &sa, &old) < 0)
        return SIG_ERR;
    return old.sa_handler;
}
