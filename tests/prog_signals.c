/*
 * prog_signals: signal() and sigaction() behave as glibc's own, with and
 * without the shim (and with RUDP_STATS=1, where the shim stands in for the
 * default action of SIGTERM, SIGINT and SIGHUP: shim/lifetime/signals.c).
 *
 *   prog_signals     run every check below; exit 0 iff all hold
 *
 *   - siginterrupt(SIGALRM, 1) then signal(SIGALRM, h): a read() that the
 *     alarm interrupts fails with EINTR (the flag is kept, not replaced by
 *     SA_RESTART);
 *   - signal(SIGUSR1, SIG_ERR) fails with EINVAL;
 *   - SIGTERM reads as SIG_DFL before the program sets anything;
 *   - a handler set with sysv_signal() (not through signal()/sigaction())
 *     is what sigaction() then reports, and sigaction(SIG_DFL) after it
 *     takes effect: the handler no longer runs;
 *   - signal(SIGHUP, h) returns SIG_DFL, and the handler runs on SIGHUP.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void (*sysv_signal(int, void (*)(int)))(int);

static volatile sig_atomic_t hits;
static void h(int sig)
{
    (void)sig;
    hits++;
}

static void check(int ok, const char *what)
{
    if (!ok) {
        printf("FAIL: %s\n", what);
        exit(1);
    }
    printf("ok: %s\n", what);
}

int main(void)
{
    int p[2];
    if (pipe(p) < 0)
        return 2;
    /* what programs that time out a blocking read with alarm() still do */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    siginterrupt(SIGALRM, 1);
#pragma GCC diagnostic pop
    signal(SIGALRM, h);
    alarm(1);
    char c;
    ssize_t r = read(p[0], &c, 1);
    check(r < 0 && errno == EINTR, "siginterrupt() survives signal(): the alarm interrupts read()");

    errno = 0;
    check(signal(SIGUSR1, SIG_ERR) == SIG_ERR && errno == EINVAL,
          "signal(SIGUSR1, SIG_ERR) fails with EINVAL");

    struct sigaction cur;
    check(sigaction(SIGTERM, NULL, &cur) == 0 && cur.sa_handler == SIG_DFL,
          "SIGTERM reads as SIG_DFL");

    sysv_signal(SIGTERM, h);
    check(sigaction(SIGTERM, NULL, &cur) == 0 && cur.sa_handler == h,
          "a handler set by sysv_signal() is what sigaction() reports");
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    check(sigaction(SIGTERM, &dfl, NULL) == 0, "sigaction(SIGTERM, SIG_DFL)");
    /* with SIGTERM blocked, the default action would not end us yet:
     * what matters is that h is gone */
    check(sigaction(SIGTERM, NULL, &cur) == 0 && cur.sa_handler == SIG_DFL,
          "SIG_DFL after sysv_signal() took effect");

    hits = 0;
    check(signal(SIGHUP, h) == SIG_DFL, "signal(SIGHUP, h) returns SIG_DFL");
    raise(SIGHUP);
    check(hits == 1, "the program's SIGHUP handler runs");
    return 0;
}
