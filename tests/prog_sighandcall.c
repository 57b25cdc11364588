/*
 * prog_sighandcall: a signal handler that calls the socket functions POSIX
 * lets it call (close(), dup2(), write(), socket(): async-signal-safe)
 * while the thread it interrupted is itself in one of them on a
 * connection. Under the shim that thread may hold one of the shim's
 * locks (the fd records', the slots', the allocator's); a handler that
 * waited on it would wait for ever (shim/base/crit.c: the locks are held
 * inside sections that defer the program's handlers to their release).
 *
 * Each way runs in a forked child for 1.5 s: its main thread loops over
 * getsockopt(), setsockopt(), fcntl() and a write and read of one byte on
 * a loopback connection, while a second thread sends it SIGUSR1 as fast as
 * it can (pthread_kill); the handler does:
 *
 *   close     pipe() and close() of both ends
 *   dup2      dup2() of a pipe's end over another fd of its own, close()
 *   selfpipe  write() of a byte to a pipe the main thread drains
 *   socket    socket(AF_INET, SOCK_STREAM) and its close()
 *   sandboxed close's, in a process under a seccomp filter (one that
 *             allows every call): the shim's sections hold signals by
 *             the mask there instead of deferring them
 *
 * The child must end within 30 s, with the connection's bytes all echoed
 * and the handler run.
 *
 *   exit      _exit() (async-signal-safe) from a SIGALRM handler, in a
 *             child whose accepted connection holds up to 1 MiB its peer
 *             (a checker process) has not read, its listener open: once
 *             while the thread sleeps in pause(), and once while it loops
 *             over malloc_trim() of a heap with 1,000 holes (which holds
 *             glibc's arena lock, a lock fork() takes, for all but a
 *             sliver of the loop; up to five tries, until the signal comes
 *             inside the call). The child must end within 20 s with status
 *             7; where the handler interrupted pause(), every byte write()
 *             accepted must come, in order, then EOF (kernel TCP goes on
 *             delivering after the process is gone, and so must the
 *             shim's keeper). Inside malloc_trim() the shim hands over as
 *             for a fatal signal (shim/lifetime/signals.c), which waits 5 s
 *             at most for a fork the held lock stops, and must never hang.
 *             Under make tsan (PROG_TSAN=1) the pause() case alone: TSan
 *             runs a handler only at an intercepted call.
 *
 * Run over kernel TCP first, then under the shim
 * (integration/tests/api/t_prog_sighandcall.sh). `prog_sighandcall WAY`
 * runs one way.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

#define RUN_S 1.5
#define REAP_MS 30000

const char *prog_name = "prog_sighandcall";

static const char *const ways[] = {"close", "dup2", "selfpipe", "socket", "sandboxed", "exit"};
enum { W_CLOSE, W_DUP2, W_SELFPIPE, W_SOCKET, W_SANDBOXED, W_EXIT, N_WAYS };

static int way;
static int selfpipe[2], spare = -1;
static atomic_int stop;
static atomic_uint handled, failed;
static pthread_t main_thread;

static void on_usr1(int sig)
{
    (void)sig;
    int saved = errno, p[2], s;
    switch (way) {
    case W_CLOSE:
    case W_SANDBOXED:
        if (pipe(p) != 0 || close(p[0]) != 0 || close(p[1]) != 0)
            atomic_fetch_add(&failed, 1);
        break;
    case W_DUP2:
        if (pipe(p) != 0 || dup2(p[0], spare) != spare || close(p[0]) != 0 || close(p[1]) != 0)
            atomic_fetch_add(&failed, 1);
        break;
    case W_SELFPIPE:
        /* a full pipe (EAGAIN) is as good: the call came and went */
        if (write(selfpipe[1], "s", 1) != 1 && errno != EAGAIN)
            atomic_fetch_add(&failed, 1);
        break;
    case W_SOCKET:
        if ((s = socket(AF_INET, SOCK_STREAM, 0)) < 0 || close(s) != 0)
            atomic_fetch_add(&failed, 1);
        break;
    }
    atomic_fetch_add(&handled, 1);
    errno = saved;
}

/* One signal at a time, the next as soon as the handler has run (and a
 * few microseconds later: back to back, the handler alone would run) */
static void *sender(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        unsigned before = atomic_load(&handled);
        pthread_kill(main_thread, SIGUSR1);
        double t0 = now_s();
        while (atomic_load(&handled) == before && !atomic_load(&stop) && now_s() - t0 < 0.1)
            ;
        for (double t1 = now_s(); now_s() - t1 < 5e-6;)
            ;
    }
    return NULL;
}

/* One byte of a non-blocking fd, through the handler's EINTRs (a
 * poll() is never restarted), 10 s at most. */
static char read_one(int fd)
{
    double t0 = now_s();
    for (;;) {
        char b;
        ssize_t r = read(fd, &b, 1);
        if (r == 1)
            return b;
        CHECK(r < 0 && (errno == EAGAIN || errno == EINTR), "read: %s",
              r == 0 ? "EOF" : strerror(errno));
        CHECK(now_s() - t0 < 10, "no byte within 10 s");
        if (errno == EAGAIN)
            (void)poll(&(struct pollfd){.fd = fd, .events = POLLIN}, 1, 100); /* EINTR: again */
    }
}

/* The child: loops over calls on c (whose peer a echoes nothing: the
 * main thread reads a's bytes itself) with the handler coming. */
static void child(void)
{
    int c, a;
    loopback_pair(AF_INET, &c, &a);
    if (way == 0)
        printf("transport: %s\n", fd_transport(c));
    SYS(fcntl(a, F_SETFL, O_NONBLOCK));
    SYS(pipe2(selfpipe, O_NONBLOCK));
    SYS(spare = dup(2));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    SYS(sigaction(SIGUSR1, &sa, NULL));
    if (way == W_SANDBOXED) {
        struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
        struct sock_fprog prog = {.len = 1, .filter = &allow};
        SYS(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
        SYS(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0));
    }
    main_thread = pthread_self();
    pthread_t t;
    CHECK(pthread_create(&t, NULL, sender, NULL) == 0, "pthread_create");
    double t0 = now_s();
    long n = 0;
    char b;
    while (now_s() - t0 < RUN_S) {
        int v = (int)(n & 1);
        SYS(setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v));
        CHECK(getsockopt_int(c, IPPROTO_TCP, TCP_NODELAY) == v, "TCP_NODELAY reads back");
        int fl = fcntl(c, F_GETFL);
        CHECK(fl >= 0, "fcntl(F_GETFL): %s", strerror(errno));
        b = (char)('a' + n % 26);
        write_exact(c, &b, 1);
        char got = read_one(a);
        CHECK(got == b, "byte %ld: %c came for %c", n, got, b);
        if (way == W_SELFPIPE)
            while (read(selfpipe[0], &got, 1) == 1)
                ;
        n++;
    }
    atomic_store(&stop, 1);
    pthread_join(t, NULL);
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    CHECK(sigismember(&cur, SIGUSR1) != 1 && sigismember(&cur, SIGINT) != 1,
          "the thread's mask holds signals it did not hold before");
    signal(SIGUSR1, SIG_IGN);
    CHECK(atomic_load(&failed) == 0, "%u of the handler's calls failed", atomic_load(&failed));
    CHECK(atomic_load(&handled) > 0, "the handler never ran");
    printf("ok: %s (%ld rounds, the handler ran %u times)\n", ways[way], n,
           atomic_load(&handled));
    close(c);
    close(a);
    _exit(0);
}

/* ---- exit: _exit() from a handler ---- */

#define EXIT_BYTES (1024 * 1024)
#define EXIT_REAP_MS 20000
#define EXIT_STATUS 7
#define EXIT_BLOCK (8 * 1024) /* past tcache and fastbins: the arena's */
#define EXIT_HOLES 1000

static volatile sig_atomic_t in_malloc;
static int where_fd = -1;

static void on_alarm(int sig)
{
    (void)sig;
    char w = in_malloc ? 'm' : 'o';
    ssize_t r = write(where_fd, &w, 1);
    (void)r;
    _exit(EXIT_STATUS);
}

/* The child: listens, tells the checker its port (on report), takes
 * its connection and fills it, tells how much went, then takes SIGALRM in
 * pause() or in its malloc_trim() loop. */
static void exit_child(int report, int where, int in_trim)
{
    int l = listener_lo(0, 4); /* open at the exit: the keeper's listeners' path */
    unsigned port = port_of_fd(l);
    write_exact(report, &port, sizeof port);
    int c = accept_ready(l, 10000);
    SYS(fcntl(c, F_SETFL, O_NONBLOCK));
    long long n = pattern_fill(c, EXIT_BYTES);
    CHECK(n > 0, "the connection took no byte");
    /* a heap of EXIT_HOLES free blocks between blocks in use, which
     * malloc_trim() walks with the arena's lock held, a madvise() each;
     * made before the timer, which may only come in the loop or pause() */
    static char *blocks[2 * EXIT_HOLES];
    for (int i = 0; in_trim && i < 2 * EXIT_HOLES; i++)
        CHECK((blocks[i] = malloc(EXIT_BLOCK)) != NULL, "malloc");
    for (int i = 0; in_trim && i < 2 * EXIT_HOLES; i += 2)
        free(blocks[i]);
    write_exact(report, &n, sizeof n);
    where_fd = where;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    SYS(sigaction(SIGALRM, &sa, NULL));
    struct itimerval it = {.it_value = {0, 30 * 1000}};
    SYS(setitimer(ITIMER_REAL, &it, NULL));
    if (!in_trim)
        for (;;)
            pause();
    for (;;) {
        in_malloc = 1;
        malloc_trim(0);
        in_malloc = 0;
    }
}

/* The checker, a process of its own (forked before it has a socket, so
 * that ThreadSanitizer's runtime sees no thread started after a fork of
 * a process with threads): forks the child, connects to it, and ends 10
 * ('o') or 11 ('m'), where the child's handler came. */
static void exit_checker(int in_trim)
{
    int report[2], where[2];
    SYS(pipe(report));
    SYS(pipe(where));
    pid_t p = fork();
    CHECK(p >= 0, "fork: %s", strerror(errno));
    if (p == 0) {
        close(report[0]);
        close(where[0]);
        exit_child(report[1], where[1], in_trim);
    }
    kill_on_fail(p);
    close(report[1]);
    close(where[1]);
    unsigned port = 0;
    read_exact(report[0], &port, sizeof port, 10000);
    int a = connect_lo(port);
    long long n = 0;
    read_exact(report[0], &n, sizeof n, 10000);
    const char *what = in_trim ? "exit in malloc_trim()" : "exit in pause()";
    int st = reap_within(p, EXIT_REAP_MS, what);
    kill_on_fail(-1);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == EXIT_STATUS, "%s: the child ended with status %#x",
          what, (unsigned)st);
    char w = 0;
    CHECK(read(where[0], &w, 1) == 1 && (w == 'm' || w == 'o'), "%s: the handler never ran", what);
    if (w == 'o') {
        uint64_t got = pattern_drain(a, (uint64_t)n, 10000, what);
        CHECK(got == (uint64_t)n, "%s: %llu of the %lld bytes written came before EOF", what,
              (unsigned long long)got, n);
        printf("ok: exit: _exit() in a handler that interrupted %s: the %lld bytes, then EOF\n",
               in_trim ? "the loop outside malloc_trim()" : "pause()", n);
    } else {
        printf("ok: exit: _exit() in a handler that interrupted malloc_trim(): the child "
               "ended with status %d\n", EXIT_STATUS);
    }
    close(a);
    fflush(stdout);
    _exit(w == 'o' ? 10 : 11);
}

/* One checker: 'o' or 'm'. */
static char exit_once(int in_trim)
{
    pid_t p = fork();
    CHECK(p >= 0, "fork: %s", strerror(errno));
    if (p == 0)
        exit_checker(in_trim);
    kill_on_fail(p);
    int st = reap_within(p, EXIT_REAP_MS + 30000, "the exit way's checker");
    kill_on_fail(-1);
    CHECK(WIFEXITED(st) && (WEXITSTATUS(st) == 10 || WEXITSTATUS(st) == 11),
          "exit: the checker ended with status %#x", (unsigned)st);
    return WEXITSTATUS(st) == 10 ? 'o' : 'm';
}

static void run_exit(void)
{
    exit_once(0);
    if (getenv("PROG_TSAN")) {
        /* TSan's runtime runs a handler at the thread's next intercepted
         * call, which the loop never makes, and its allocator is not
         * glibc's: the pause() case above is TSan's */
        printf("skip: exit in malloc_trim(): not under ThreadSanitizer's runtime (PROG_TSAN=1)\n");
        return;
    }
    int tries = 0;
    while (tries++ < 5 && exit_once(1) != 'm')
        ;
    if (tries > 5)
        printf("skip: exit: SIGALRM came outside malloc_trim() five times out of five\n");
}

static void run_way(int w)
{
    if (w == W_EXIT) {
        run_exit();
        return;
    }
    way = w;
    pid_t p = fork();
    CHECK(p >= 0, "fork: %s", strerror(errno));
    if (p == 0)
        child();
    kill_on_fail(p);
    char what[64];
    snprintf(what, sizeof what, "%s: a handler's calls over the thread's own", ways[w]);
    int st = reap_within(p, REAP_MS, what);
    kill_on_fail(-1);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: the child ended with status %#x", ways[w],
          (unsigned)st);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    watchdog(240);
    for (int w = 0; w < N_WAYS; w++) {
        if (argc > 1 && strcmp(argv[1], ways[w]) != 0)
            continue;
        run_way(w);
    }
    return 0;
}
