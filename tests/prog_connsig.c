/*
 * prog_connsig: a blocking connect() and signals, as TCP answers them.
 *
 *   - restart: a handler with SA_RESTART (setitimer's SIGALRM every
 *     200 us) during 300 blocking connects: none fails with EINTR, as
 *     TCP's connect() restarts and waits on (inet_stream_connect()).
 *   - eintr: a handler without SA_RESTART, the connect blocked (the
 *     listener's queue full): connect() says EINTR.
 *
 * Under the shim the connect waited in poll(), which is never restarted:
 * before 2026-11-29 the first case failed 119 to 284 connects in 1,000.
 *
 * Prints "ok:" lines and "transport: KIND"; exit 1 with a "FAIL:" line,
 * 3 if the watchdog (60 s) fired.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_connsig";

#define ROUNDS 300

static volatile sig_atomic_t hits;
static void on_alarm(int sig)
{
    (void)sig;
    hits++;
}

static void handler(int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    SYS(sigaction(SIGALRM, &sa, NULL));
}

static void timer_every(long us)
{
    struct itimerval it = {.it_interval = {0, us}, .it_value = {0, us}};
    SYS(setitimer(ITIMER_REAL, &it, NULL));
}

static int lfd;
static void *acceptor(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        int a;
        do
            a = accept(lfd, NULL, NULL);
        while (a < 0 && errno == EINTR);
        if (a < 0)
            failf(__LINE__, "accept: %s", strerror(errno));
        close(a);
    }
    return NULL;
}

static void restart_case(void)
{
    unsigned port = 0;
    lfd = listener_lo(0, 64);
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    SYS(getsockname(lfd, (struct sockaddr *)&a, &al));
    port = ntohs(a.sin_port);
    /* the signal for this thread only: the acceptor's mask blocks it */
    sigset_t alrm;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &alrm, NULL);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, acceptor, NULL) == 0, "pthread_create");
    pthread_sigmask(SIG_UNBLOCK, &alrm, NULL);
    handler(SA_RESTART);
    hits = 0;
    timer_every(200);
    int eintr = 0;
    for (int i = 0; i < ROUNDS; i++) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        SYS(c);
        struct sockaddr_in to = ipv4_addr("127.0.0.1", port);
        if (connect(c, (struct sockaddr *)&to, sizeof to) < 0) {
            CHECK(errno == EINTR, "connect: %s", strerror(errno));
            eintr++;
            /* the handshake goes on, as TCP's: wait for it to finish */
            CHECK(poll_for(c, POLLOUT, 10000) & POLLOUT, "no POLLOUT after EINTR");
        }
        if (i == 0)
            printf("transport: %s\n", fd_transport(c));
        close(c);
    }
    timer_every(0);
    CHECK(pthread_join(t, NULL) == 0, "pthread_join");
    close(lfd);
    CHECK(hits > 0, "no SIGALRM came during the connects");
    CHECK(eintr == 0, "%d blocking connects of %d said EINTR under an SA_RESTART handler", eintr,
          ROUNDS);
    printf("ok: SA_RESTART: %d blocking connects, none EINTR, with signals arriving\n", ROUNDS);
}

static void eintr_case(void)
{
    /* a listener nobody accepts from, its queue filled: the next connect
     * waits (its SYN unanswered) until the signal */
    int l = listener_lo(0, 0);
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    SYS(getsockname(l, (struct sockaddr *)&a, &al));
    unsigned port = ntohs(a.sin_port);
    int held[8], nh = 0;
    for (; nh < 8; nh++) {
        held[nh] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        SYS(held[nh]);
        struct sockaddr_in to = ipv4_addr("127.0.0.1", port);
        int r = connect(held[nh], (struct sockaddr *)&to, sizeof to);
        CHECK(r == 0 || errno == EINPROGRESS, "filling the queue: %s", strerror(errno));
    }
    /* one of them is in the queue (connected) before the one to block */
    struct pollfd pf[8];
    for (int i = 0; i < nh; i++)
        pf[i] = (struct pollfd){.fd = held[i], .events = POLLOUT};
    CHECK(poll(pf, (nfds_t)nh, 5000) > 0, "none of the connects to fill the queue completed");
    handler(0);
    hits = 0;
    struct itimerval it = {.it_value = {0, 300000}};
    SYS(setitimer(ITIMER_REAL, &it, NULL));
    int c = socket(AF_INET, SOCK_STREAM, 0);
    SYS(c);
    struct sockaddr_in to = ipv4_addr("127.0.0.1", port);
    errno = 0;
    int r = connect(c, (struct sockaddr *)&to, sizeof to);
    int err = errno;
    if (r == 0) { /* queued after all (a queue longer than asked): nothing to check */
        printf("skip: eintr: the listener took the connect (its queue held more than 8)\n");
    } else {
        CHECK(err == EINTR, "connect interrupted by a handler without SA_RESTART: %s, not EINTR",
              strerror(err));
        CHECK(hits == 1, "the handler ran %d times", (int)hits);
        printf("ok: no SA_RESTART: the blocked connect says EINTR\n");
    }
    close(c);
    for (int i = 0; i < nh; i++)
        close(held[i]);
    close(l);
}

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, 60);
    restart_case();
    eintr_case();
    return 0;
}
