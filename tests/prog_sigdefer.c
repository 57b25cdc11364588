/*
 * prog_sigdefer: signals that come while an event loop's bytes are read and
 * written in memory. Under the shim a signal that comes inside one of its
 * short sections (a read taken from memory, a write put into the engine's
 * ring, an epoll wait told from memory) is deferred to the section's end
 * (shim/base/crit.c, shim/lifetime/signals.c's trampoline); everything a
 * program can see must stay as the kernel's. Run over kernel TCP first,
 * every check holds both ways (integration/tests/api/t_prog_sigdefer.sh).
 *
 *   report    sigaction() and signal() report the program's own handler,
 *             flags and form (SA_SIGINFO or not), as glibc does
 *   oneshot   a handler with SA_RESETHAND runs once, then the default is
 *             back (sigaction() says SIG_DFL, the next signal is ignored)
 *   chain     a second handler set over a first: sigaction() and signal()
 *             answer the first (a handler that calls the one before it)
 *   sysv      __sysv_signal() (signal() of a program built for strict ISO
 *             C), sysv_signal(), sigset() and SIG_HOLD report and act as
 *             glibc's
 *   fork      a thread setting a handler over and over while another
 *             forks: each child sets its own at once
 *   queued    24 connections echoed by a server thread's epoll loop while
 *             the client's epoll loop sends and checks every byte; a third
 *             thread queues realtime signals to both loops' threads as
 *             fast as they are taken (pthread_sigqueue, a number each;
 *             the server's handler with SA_NODEFER): every one sent runs
 *             its handler exactly once, on the thread it was sent to, with
 *             its value, si_code SI_QUEUE and our pid
 *   mask      after it, neither thread holds the signal (a deferred one
 *             left held would be lost to the program): one sent by a
 *             thread to itself runs
 *   held      SIGSEGV held by sighold() (not pthread_sigmask): a read and
 *             a write of a bad address on a connection fail with EFAULT,
 *             as the kernel's, the process alive
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

#define CONNS 24
#define ROUNDS 3000
#define MSG 32
#define MAX_SIGS 200000 /* per thread */

const char *prog_name = "prog_sigdefer";

enum { CLIENT, SERVER };

static pthread_t tid[2]; /* __atomic: read by handlers on other threads */
static unsigned char seen[2][MAX_SIGS];
static atomic_uint got[2], wrong;
static atomic_int done;

static void on_rt(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    int who = si->si_value.sival_int >> 30 & 1;
    unsigned v = (unsigned)si->si_value.sival_int & 0x3fffffffu;
    if (si->si_code != SI_QUEUE || si->si_pid != getpid() || v >= MAX_SIGS ||
        !pthread_equal(pthread_self(), __atomic_load_n(&tid[who], __ATOMIC_ACQUIRE)) ||
        seen[who][v]++) {
        atomic_fetch_add(&wrong, 1);
        return;
    }
    atomic_fetch_add(&got[who], 1);
}

static volatile sig_atomic_t plain_hits, once_hits;
static void on_plain(int sig)
{
    (void)sig;
    plain_hits++;
}
static void on_once(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)si;
    (void)uc;
    once_hits++;
}

static void check_report(void)
{
    struct sigaction a, o;
    CHECK(signal(SIGUSR2, on_plain) != SIG_ERR, "signal(SIGUSR2)");
    CHECK(sigaction(SIGUSR2, NULL, &o) == 0, "sigaction query");
    CHECK(o.sa_handler == on_plain && !(o.sa_flags & SA_SIGINFO) && (o.sa_flags & SA_RESTART),
          "signal()'s handler reads back as set: handler %s, flags %#x",
          o.sa_handler == on_plain ? "ours" : "another", (unsigned)o.sa_flags);
    raise(SIGUSR2);
    CHECK(plain_hits == 1, "the plain handler ran %d times", (int)plain_hits);

    memset(&a, 0, sizeof a);
    a.sa_sigaction = on_rt;
    a.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&a.sa_mask);
    sigaddset(&a.sa_mask, SIGUSR2);
    CHECK(sigaction(SIGRTMIN, &a, &o) == 0, "sigaction(SIGRTMIN)");
    CHECK(!(o.sa_flags & SA_SIGINFO) && o.sa_handler == SIG_DFL, "SIGRTMIN was SIG_DFL");
    CHECK(sigaction(SIGRTMIN, NULL, &o) == 0, "sigaction query");
    CHECK(o.sa_sigaction == on_rt && (o.sa_flags & SA_SIGINFO) && (o.sa_flags & SA_RESTART) &&
              !(o.sa_flags & SA_RESETHAND) && sigismember(&o.sa_mask, SIGUSR2) == 1 &&
              sigismember(&o.sa_mask, SIGUSR1) != 1,
          "sigaction()'s handler reads back as set (flags %#x)", (unsigned)o.sa_flags);
    printf("ok: report\n");
}

static volatile sig_atomic_t h1_hits, h2_hits;
static struct sigaction before_h2;
static void h1(int sig)
{
    (void)sig;
    h1_hits++;
}
static void h2(int sig)
{
    h2_hits++;
    if (h2_hits < 3 && !(before_h2.sa_flags & SA_SIGINFO) && before_h2.sa_handler != SIG_DFL &&
        before_h2.sa_handler != SIG_IGN)
        before_h2.sa_handler(sig); /* the one before it, as handlers chain */
}

static void check_chain(void)
{
    struct sigaction a;
    memset(&a, 0, sizeof a);
    a.sa_handler = h1;
    sigemptyset(&a.sa_mask);
    CHECK(sigaction(SIGUSR1, &a, NULL) == 0, "sigaction(SIGUSR1, h1)");
    a.sa_handler = h2;
    CHECK(sigaction(SIGUSR1, &a, &before_h2) == 0, "sigaction(SIGUSR1, h2)");
    CHECK(before_h2.sa_handler == h1, "sigaction() answered %s for the handler before h2",
          before_h2.sa_handler == h2 ? "h2 itself" : "another");
    raise(SIGUSR1);
    CHECK(h2_hits == 1 && h1_hits == 1, "h2 ran %d times, h1 %d", (int)h2_hits, (int)h1_hits);
    CHECK(signal(SIGUSR1, h1) == h2, "signal() answers the handler before it");
    CHECK(signal(SIGUSR1, SIG_IGN) == h1, "signal() answers the handler before it");
    printf("ok: chain\n");
}

extern void (*__sysv_signal(int, void (*)(int)))(int);
extern void (*sysv_signal(int, void (*)(int)))(int);

static void check_sysv(void)
{
    struct sigaction o;
    plain_hits = 0;
    CHECK(__sysv_signal(SIGURG, on_plain) == SIG_DFL, "__sysv_signal answers SIG_DFL");
    CHECK(sigaction(SIGURG, NULL, &o) == 0 && o.sa_handler == on_plain &&
              (o.sa_flags & SA_RESETHAND) && (o.sa_flags & SA_NODEFER) &&
              !(o.sa_flags & SA_RESTART),
          "__sysv_signal's handler reads back with its flags (%#x)", (unsigned)o.sa_flags);
    raise(SIGURG);
    raise(SIGURG); /* the default then: ignored */
    CHECK(plain_hits == 1, "the System V handler ran %d times", (int)plain_hits);
    CHECK(sysv_signal(SIGURG, on_plain) == SIG_DFL, "sysv_signal answers SIG_DFL after the reset");
    /* sigset(): SIG_HOLD holds it; setting a handler lets it in */
    sigset_t cur;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    CHECK(sigset(SIGURG, SIG_HOLD) == on_plain, "sigset(SIG_HOLD) answers the handler");
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    CHECK(sigismember(&cur, SIGURG) == 1, "sigset(SIG_HOLD) holds the signal");
    CHECK(sigset(SIGURG, h1) == SIG_HOLD, "sigset() answers SIG_HOLD where it was held");
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    CHECK(sigismember(&cur, SIGURG) != 1, "sigset() lets the signal in");
    CHECK(sigaction(SIGURG, NULL, &o) == 0 && o.sa_handler == h1, "sigset()'s handler reads back");
    h1_hits = 0;
    raise(SIGURG);
    CHECK(h1_hits == 1, "sigset()'s handler ran %d times", (int)h1_hits);
    CHECK(sigset(SIGURG, SIG_DFL) == h1, "sigset(SIG_DFL) answers the handler");
#pragma GCC diagnostic pop
    printf("ok: sysv\n");
}

static atomic_int setting;
static void *set_over_and_over(void *arg)
{
    (void)arg;
    while (atomic_load(&setting))
        signal(SIGUSR2, on_plain);
    return NULL;
}

static void check_fork(void)
{
    pthread_t t;
    atomic_store(&setting, 1);
    CHECK(pthread_create(&t, NULL, set_over_and_over, NULL) == 0, "pthread_create");
    for (int i = 0; i < 40; i++) {
        pid_t c = fork();
        CHECK(c >= 0, "fork: %s", strerror(errno));
        if (c == 0) {
            signal(SIGUSR2, SIG_DFL);
            _exit(0);
        }
        int st = 0, waited = 0;
        pid_t w;
        while ((w = waitpid(c, &st, WNOHANG)) == 0 && waited < 5000) {
            usleep(1000);
            waited++;
        }
        if (w == 0) {
            kill(c, SIGKILL);
            waitpid(c, &st, 0);
        }
        CHECK(w == c && WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "fork %d: the child's signal() did not return within 5 s", i);
    }
    atomic_store(&setting, 0);
    pthread_join(t, NULL);
    printf("ok: fork\n");
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static void check_held(int l, unsigned port)
{
    int c = connect_lo(port), a = accept(l, NULL, NULL);
    CHECK(c >= 0 && a >= 0, "connect/accept: %s", strerror(errno));
    CHECK(write(a, "xy", 2) == 2, "write");
    char b;
    read_exact(c, &b, 1, 5000); /* the connection's first byte came */
    CHECK(sighold(SIGSEGV) == 0, "sighold(SIGSEGV)");
    void *volatile bad = (void *)8; /* hidden from the compiler's bounds checks */
    errno = 0;
    ssize_t r = read(c, bad, 1);
    int re = errno;
    errno = 0;
    ssize_t w = write(c, bad, 1);
    int we = errno;
    CHECK(sigrelse(SIGSEGV) == 0, "sigrelse(SIGSEGV)");
    CHECK(r < 0 && re == EFAULT, "a read into a bad address: %zd (%s), not EFAULT", r,
          strerror(re));
    CHECK(w < 0 && we == EFAULT, "a write from a bad address: %zd (%s), not EFAULT", w,
          strerror(we));
    close(c);
    close(a);
    printf("ok: held\n");
}
#pragma GCC diagnostic pop

static void check_oneshot(void)
{
    struct sigaction a, o;
    memset(&a, 0, sizeof a);
    a.sa_sigaction = on_once;
    a.sa_flags = SA_SIGINFO | (int)SA_RESETHAND;
    sigemptyset(&a.sa_mask);
    CHECK(sigaction(SIGWINCH, &a, NULL) == 0, "sigaction(SIGWINCH)");
    CHECK(sigaction(SIGWINCH, NULL, &o) == 0 && o.sa_sigaction == on_once &&
              (o.sa_flags & SA_RESETHAND) && (o.sa_flags & SA_SIGINFO),
          "SA_RESETHAND reads back (flags %#x)", (unsigned)o.sa_flags);
    raise(SIGWINCH);
    CHECK(once_hits == 1, "the one-shot handler ran %d times", (int)once_hits);
    /* the kernel puts SIG_DFL back and leaves the flags */
    CHECK(sigaction(SIGWINCH, NULL, &o) == 0 && o.sa_handler == SIG_DFL,
          "after it ran, SIGWINCH reads as SIG_DFL");
    raise(SIGWINCH); /* the default: ignored */
    CHECK(once_hits == 1, "the one-shot handler ran again (%d)", (int)once_hits);
    printf("ok: oneshot\n");
}

static int epoll_of(const int *fds)
{
    int ep = epoll_create1(0);
    CHECK(ep >= 0, "epoll_create1: %s", strerror(errno));
    for (int i = 0; i < CONNS; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) == 0, "epoll_ctl: %s", strerror(errno));
    }
    return ep;
}

static int srv_fds[CONNS];

static void *server(void *arg)
{
    (void)arg;
    int ep = epoll_of(srv_fds), open_n = CONNS;
    char buf[4096];
    while (open_n > 0) {
        struct epoll_event ev[CONNS];
        int n = epoll_wait(ep, ev, CONNS, 20000);
        if (n < 0 && errno == EINTR)
            continue;
        CHECK(n > 0, "server: epoll_wait %d (%s)", n, n < 0 ? strerror(errno) : "nothing for 20 s");
        for (int i = 0; i < n; i++) {
            int fd = srv_fds[ev[i].data.u32];
            ssize_t r = read(fd, buf, sizeof buf);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            CHECK(r >= 0, "server: read: %s", strerror(errno));
            if (r == 0) {
                epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                close(fd);
                open_n--;
                continue;
            }
            for (ssize_t off = 0; off < r;) {
                ssize_t w = write(fd, buf + off, (size_t)(r - off));
                CHECK(w > 0 || errno == EAGAIN || errno == EINTR, "server: write: %s",
                      strerror(errno));
                if (w > 0)
                    off += w;
            }
        }
    }
    close(ep);
    return NULL;
}

static unsigned sent[2];

static void *signaller(void *arg)
{
    (void)arg;
    unsigned v = 0;
    while (!atomic_load(&done) && v < MAX_SIGS - 2) { /* the last two: check_mask's */
        for (int who = 0; who < 2; who++) {
            union sigval sv = {.sival_int = (int)((unsigned)who << 30 | v)};
            /* at most 128 in flight to a thread: the server's handler has
             * SA_NODEFER, and a thread off the CPU would take thousands
             * nested at once, past its stack */
            for (int i = 0; i < 2000 && sent[who] - atomic_load(&got[who]) > 128; i++)
                usleep(100);
            int e = pthread_sigqueue(__atomic_load_n(&tid[who], __ATOMIC_ACQUIRE),
                                     who == SERVER ? SIGRTMIN + 1 : SIGRTMIN, sv);
            if (e == 0)
                sent[who]++;
            else
                CHECK(e == EAGAIN, "pthread_sigqueue: %s", strerror(e));
            if (e == EAGAIN) /* the queue full: let the thread take them */
                usleep(200);
        }
        v++;
        if (v % 8 == 0)
            usleep(20);
    }
    return NULL;
}

static void client(const int *fds)
{
    int ep = epoll_of(fds);
    char msg[MSG], buf[MSG];
    for (int round = 0; round < ROUNDS; round++) {
        size_t want[CONNS];
        int left = CONNS;
        for (int i = 0; i < CONNS; i++) {
            for (int k = 0; k < MSG; k++)
                msg[k] = (char)(round * 7 + i * 3 + k);
            ssize_t w;
            while ((w = write(fds[i], msg, MSG)) < 0 && errno == EINTR)
                ;
            CHECK(w == MSG, "client: write %zd: %s", w, strerror(errno));
            want[i] = 0;
        }
        while (left > 0) {
            struct epoll_event ev[CONNS];
            int n = epoll_wait(ep, ev, CONNS, 20000);
            if (n < 0 && errno == EINTR)
                continue;
            CHECK(n > 0, "client: epoll_wait %d in round %d (%s)", n, round,
                  n < 0 ? strerror(errno) : "nothing for 20 s");
            for (int j = 0; j < n; j++) {
                int i = (int)ev[j].data.u32;
                ssize_t r = read(fds[i], buf, MSG - want[i]);
                if (r < 0 && (errno == EAGAIN || errno == EINTR))
                    continue;
                CHECK(r > 0, "client: read %zd in round %d: %s", r, round, strerror(errno));
                for (ssize_t k = 0; k < r; k++)
                    CHECK(buf[k] == (char)(round * 7 + i * 3 + (int)want[i] + (int)k),
                          "client: byte %zu of round %d on connection %d differs",
                          want[i] + (size_t)k, round, i);
                want[i] += (size_t)r;
                if (want[i] == MSG)
                    left--;
                CHECK(want[i] <= MSG, "client: more than the echo");
            }
        }
    }
    close(ep);
}

/* A signal the thread sends itself runs before the call returns, unless
 * the thread holds it. */
static void check_mask(int who)
{
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    int sig = who == SERVER ? SIGRTMIN + 1 : SIGRTMIN;
    CHECK(sigismember(&cur, sig) != 1, "%s thread holds its signal after the run",
          who == CLIENT ? "the client" : "the server");
    unsigned before = atomic_load(&got[who]);
    union sigval sv = {.sival_int = (int)((unsigned)who << 30 | (MAX_SIGS - 1 - (unsigned)who))};
    CHECK(pthread_sigqueue(pthread_self(), sig, sv) == 0, "pthread_sigqueue to itself");
    /* the kernel runs it before the call returns; ThreadSanitizer's
     * runtime at the next call it intercepts */
    for (int i = 0; i < 1000 && atomic_load(&got[who]) == before; i++)
        usleep(1000);
    CHECK(atomic_load(&got[who]) == before + 1, "a signal sent to itself did not run");
}

static void *server_then_mask(void *arg)
{
    server(arg);
    check_mask(SERVER);
    return NULL;
}

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, 240);
    setvbuf(stdout, NULL, _IOLBF, 0);
    check_report();
    check_oneshot();
    check_chain();
    check_sysv();
    check_fork();
    struct sigaction nd;
    memset(&nd, 0, sizeof nd);
    nd.sa_sigaction = on_rt;
    nd.sa_flags = SA_SIGINFO | SA_RESTART | SA_NODEFER;
    sigemptyset(&nd.sa_mask);
    CHECK(sigaction(SIGRTMIN + 1, &nd, NULL) == 0, "sigaction(SIGRTMIN + 1, SA_NODEFER)");

    int l = listener_lo(0, CONNS);
    unsigned port = port_of_fd(l);
    int fds[CONNS];
    for (int i = 0; i < CONNS; i++) {
        fds[i] = connect_lo(port);
        CHECK(fds[i] >= 0, "connect %d: %s", i, strerror(errno));
        srv_fds[i] = accept(l, NULL, NULL);
        CHECK(srv_fds[i] >= 0, "accept %d: %s", i, strerror(errno));
    }
    printf("transport: %s (client)\n", fd_transport(fds[0]));
    __atomic_store_n(&tid[CLIENT], pthread_self(), __ATOMIC_RELEASE);
    pthread_t st, sg;
    CHECK(pthread_create(&st, NULL, server_then_mask, NULL) == 0, "pthread_create");
    __atomic_store_n(&tid[SERVER], st, __ATOMIC_RELEASE);
    CHECK(pthread_create(&sg, NULL, signaller, NULL) == 0, "pthread_create");
    client(fds);
    atomic_store(&done, 1);
    pthread_join(sg, NULL);
    /* what was queued to this thread runs at its next return from the
     * kernel: a few more calls */
    for (int i = 0; i < 64 && atomic_load(&got[CLIENT]) < sent[CLIENT]; i++)
        usleep(1000);
    for (int i = 0; i < CONNS; i++)
        close(fds[i]);
    pthread_join(st, NULL);
    CHECK(atomic_load(&wrong) == 0, "%u signals came wrong (a value twice, the wrong thread, "
                                    "si_code or pid)",
          atomic_load(&wrong));
#if defined(__SANITIZE_THREAD__)
    /* ThreadSanitizer's runtime keeps one pending signal per number for a
     * thread it delivers to later (in its own code or a blocking call):
     * queued copies of one realtime signal merge there */
    CHECK(got[CLIENT] > 0 && got[CLIENT] <= sent[CLIENT] && got[SERVER] > 0 &&
              got[SERVER] <= sent[SERVER] + 1,
          "%u and %u signals sent, %u and %u handled", sent[CLIENT], sent[SERVER],
          atomic_load(&got[CLIENT]), atomic_load(&got[SERVER]));
    printf("skip: queued: each signal handled once (ThreadSanitizer's runtime merges queued "
           "copies of a signal: %u of %u and %u of %u handled, each once with its value)\n",
           atomic_load(&got[CLIENT]), sent[CLIENT], atomic_load(&got[SERVER]), sent[SERVER]);
#else
    CHECK(got[CLIENT] == sent[CLIENT], "client: %u signals sent, %u handled", sent[CLIENT],
          atomic_load(&got[CLIENT]));
    CHECK(got[SERVER] == sent[SERVER] + 1, "server: %u signals sent, %u handled (with its own)",
          sent[SERVER], atomic_load(&got[SERVER]));
    printf("ok: queued (%u and %u signals, each handled once with its value)\n", sent[CLIENT],
           sent[SERVER]);
#endif
    check_mask(CLIENT);
    printf("ok: mask\n");
    check_held(l, port);
    close(l);
    return 0;
}
