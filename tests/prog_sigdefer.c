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
 *   queued    24 connections echoed by a server thread's epoll loop while
 *             the client's epoll loop sends and checks every byte; a third
 *             thread queues realtime signals to both loops' threads as
 *             fast as they are taken (pthread_sigqueue, a number each):
 *             every one sent runs its handler exactly once, on the thread
 *             it was sent to, with its value, si_code SI_QUEUE and our pid
 *   mask      after it, neither thread holds the signal (a deferred one
 *             left held would be lost to the program): one sent by a
 *             thread to itself runs
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
            int e = pthread_sigqueue(__atomic_load_n(&tid[who], __ATOMIC_ACQUIRE), SIGRTMIN, sv);
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
    CHECK(sigismember(&cur, SIGRTMIN) != 1, "%s thread holds SIGRTMIN after the run",
          who == CLIENT ? "the client" : "the server");
    unsigned before = atomic_load(&got[who]);
    union sigval sv = {.sival_int = (int)((unsigned)who << 30 | (MAX_SIGS - 1 - (unsigned)who))};
    CHECK(pthread_sigqueue(pthread_self(), SIGRTMIN, sv) == 0, "pthread_sigqueue to itself");
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
    close(l);
    return 0;
}
