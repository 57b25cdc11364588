/*
 * prog_sigdeath: a writer that dies of a signal it left at its default
 * action, as Linux leaves its connection.
 *
 *   prog_sigdeath          run every check below; exit 0 iff all hold
 *
 * For each of SIGPIPE (a write() to a pipe whose reader is gone), SIGUSR1
 * (kill() by the parent), SIGALRM (alarm()), SIGABRT (abort()) and
 * SIGQUIT (kill()): a
 * child connects to the parent, puts up to 2 MB in with non-blocking
 * write()s while the parent reads nothing, tells through a pipe how many
 * bytes write() accepted, and dies of the signal. Kernel TCP goes on
 * sending what the socket holds after the process is gone: the parent
 * must read every accepted byte, in order, then EOF; waitpid() must say
 * the signal (WTERMSIG), and for SIGABRT and SIGQUIT the core dump flag
 * must be the one a child that aborts without any connection gets (both dump into a
 * directory of their own under /tmp, removed after; RLIMIT_CORE and
 * core_pattern decide whether the kernel dumps).
 *
 * And the dispositions as the program sees them: sigaction() and signal()
 * report SIG_DFL for signals left at their default, the program's own
 * handler reads back as itself and runs; a blocked signal raised stays
 * pending and sigwait() takes it.
 *
 * Prints one "ok:" line per check and "transport: KIND" for each connected
 * fd. Exit 0 iff every check held; 1 with a "FAIL:" line otherwise; 3 if
 * the watchdog (90 s) fired.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 90
#define EVENT_MS 10000
#define MAX_BYTES (2 * 1024 * 1024)

const char *prog_name = "prog_sigdeath";

static pid_t child = -1;
static void end_child(void)
{
    if (child > 0 && kill(child, SIGKILL) == 0)
        child = -1;
}

static char coredir[64];

static int reap(pid_t pid, const char *what)
{
    int st = reap_within(pid, EVENT_MS, what);
    child = -1;
    return st;
}

/* Every signal a child may die of here, back at its default action (the
 * watchdog's SIGALRM, prog_begin's ignored SIGPIPE), and cores allowed
 * into coredir. */
static void child_defaults(void)
{
    static const int sigs[] = {SIGPIPE, SIGALRM, SIGUSR1, SIGQUIT, SIGABRT};
    alarm(0);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (signal(sigs[i], SIG_DFL) == SIG_ERR)
            _exit(20);
    struct rlimit rl;
    if (getrlimit(RLIMIT_CORE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_CORE, &rl);
    }
    if (chdir(coredir) < 0)
        _exit(21);
}

static void die_of(int sig)
{
    if (sig == SIGPIPE) {
        int q[2];
        if (pipe(q) < 0)
            _exit(13);
        close(q[0]);
        ssize_t w = write(q[1], "x", 1); /* SIGPIPE */
        (void)w;
        _exit(14);
    }
    if (sig == SIGALRM) {
        alarm(1);
        for (;;)
            pause();
    }
    if (sig == SIGABRT)
        abort();
    for (;;)
        pause(); /* until the parent's kill() */
}

static void writer(unsigned port, int tell, int sig)
{
    child_defaults();
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_storage ss;
    socklen_t len = loopback(AF_INET, port, &ss);
    if (c < 0 || connect(c, (struct sockaddr *)&ss, len) < 0 || fcntl(c, F_SETFL, O_NONBLOCK) < 0)
        _exit(10);
    long long n = pattern_fill(c, MAX_BYTES);
    if (n < 0)
        _exit(11);
    uint64_t sent = (uint64_t)n;
    if (write(tell, &sent, sizeof sent) != sizeof sent)
        _exit(12);
    die_of(sig);
}

/* Removes what the children dumped into coredir. */
static void clear_cores(void)
{
    DIR *d = opendir(coredir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
}

/* The core flag of a child that aborts with no connection. */
static int control_core_flag(void)
{
    child = fork();
    SYS(child);
    if (child == 0) {
        child_defaults();
        abort();
    }
    int st = reap(child, "control abort()");
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "control abort(): status %#x", st);
    clear_cores();
    return WCOREDUMP(st) != 0;
}

static void check_death(int sig, int want_core)
{
    const char *name = sigabbrev_np(sig);
    struct sockaddr_storage ss;
    socklen_t len;
    int l = bound_loopback(AF_INET, &ss, &len);
    SYS(listen(l, 4));
    int p[2];
    SYS(pipe(p));
    child = fork();
    SYS(child);
    if (child == 0) {
        close(p[0]);
        close(l);
        writer(port_of(&ss), p[1], sig);
    }
    close(p[1]);
    int a = accept_ready(l, EVENT_MS);
    close(l);
    printf("transport: %s\n", fd_transport(a));
    uint64_t sent;
    read_exact(p[0], &sent, sizeof sent, EVENT_MS);
    close(p[0]);
    CHECK(sent > 0, "SIG%s: the writer's write() accepted nothing", name);
    if (sig == SIGUSR1 || sig == SIGQUIT)
        SYS(kill(child, sig));
    int st = reap(child, name);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == sig, "SIG%s: child status %#x", name, st);
    if (want_core >= 0)
        CHECK((WCOREDUMP(st) != 0) == want_core, "SIG%s: core dump flag %d, a child without "
              "connections gets %d", name, WCOREDUMP(st) != 0, want_core);
    clear_cores();
    char what[16];
    snprintf(what, sizeof what, "SIG%s", name);
    uint64_t got = pattern_drain(a, sent, EVENT_MS, what);
    CHECK(got == sent, "SIG%s: EOF after %llu of the %llu bytes write() accepted", name,
          (unsigned long long)got, (unsigned long long)sent);
    close(a);
    printf("ok: a writer that died of SIG%s (WTERMSIG %d%s): all %llu bytes its write() "
           "accepted arrive, then EOF\n", name, WTERMSIG(st),
           want_core < 0 ? "" : WCOREDUMP(st) ? ", core dumped" : ", no core",
           (unsigned long long)sent);
}

static volatile sig_atomic_t ran;
static void own_handler(int sig)
{
    ran = sig;
}

static void check_dispositions(void)
{
    struct sigaction old;
    SYS(sigaction(SIGUSR1, NULL, &old));
    CHECK(!(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL,
          "sigaction(SIGUSR1) reads %p, not SIG_DFL", (void *)old.sa_handler);
    SYS(sigaction(SIGRTMIN + 1, NULL, &old));
    CHECK(old.sa_handler == SIG_DFL, "sigaction(SIGRTMIN+1) reads %p, not SIG_DFL",
          (void *)old.sa_handler);
    CHECK(signal(SIGQUIT, own_handler) == SIG_DFL, "signal(SIGQUIT) did not return SIG_DFL");
    CHECK(signal(SIGQUIT, SIG_DFL) == own_handler, "signal(SIGQUIT) did not return our handler");
    CHECK(signal(SIGQUIT, SIG_DFL) == SIG_DFL, "signal(SIGQUIT) after SIG_DFL is not SIG_DFL");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = own_handler;
    sigemptyset(&sa.sa_mask);
    SYS(sigaction(SIGUSR2, &sa, &old));
    CHECK(old.sa_handler == SIG_DFL, "sigaction(SIGUSR2) replaced %p, not SIG_DFL",
          (void *)old.sa_handler);
    SYS(raise(SIGUSR2));
    CHECK(ran == SIGUSR2, "the program's own SIGUSR2 handler did not run");
    sa.sa_handler = SIG_DFL;
    SYS(sigaction(SIGUSR2, &sa, &old));
    CHECK(old.sa_handler == own_handler, "sigaction(SIGUSR2) replaced %p, not our handler",
          (void *)old.sa_handler);
    printf("ok: sigaction() and signal() read SIG_DFL where it was left, the program's "
           "handler as itself, and it runs\n");
    sigset_t set, pend;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGPIPE);
    SYS(sigprocmask(SIG_BLOCK, &set, NULL));
    SYS(raise(SIGUSR2));
    SYS(sigpending(&pend));
    CHECK(sigismember(&pend, SIGUSR2) == 1, "SIGUSR2 blocked and raised is not pending");
    int got = 0;
    CHECK(sigwait(&set, &got) == 0 && got == SIGUSR2, "sigwait gave %d, not SIGUSR2", got);
    SYS(sigpending(&pend));
    CHECK(sigismember(&pend, SIGUSR2) == 0, "SIGUSR2 still pending after sigwait");
    SYS(sigprocmask(SIG_UNBLOCK, &set, NULL));
    printf("ok: SIGUSR2 left at its default, blocked and raised: pending, and sigwait() "
           "takes it\n");
}

static pid_t main_pid;
static void remove_coredir(void)
{
    if (getpid() != main_pid)
        return;
    clear_cores();
    rmdir(coredir);
}

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, WATCHDOG_S);
    prog_on_fail = end_child;
    /* what carries a connection here (the children make theirs) */
    int c, a;
    loopback_pair(AF_INET, &c, &a);
    printf("transport: %s\ntransport: %s\n", fd_transport(c), fd_transport(a));
    close(c);
    close(a);
    snprintf(coredir, sizeof coredir, "/tmp/prog_sigdeath.XXXXXX");
    CHECK(mkdtemp(coredir), "mkdtemp: %s", strerror(errno));
    main_pid = getpid();
    atexit(remove_coredir); /* a failure's exit() too */
    check_dispositions();
    check_death(SIGPIPE, -1);
    check_death(SIGUSR1, -1);
    check_death(SIGALRM, -1);
    int core = control_core_flag();
    check_death(SIGABRT, core);
    check_death(SIGQUIT, core);
    return 0;
}
