/*
 * prog_threadloops: two threads, each an event loop of its own over its
 * own connections (wrk -t2's shape), at once. Under the shim each
 * thread's connects get an engine of their own (shim/engine/engines.c)
 * and each thread's epoll wait runs the turns of the engines its set holds
 * connections of (shim/engine/appwhole.c), so both loops keep their bytes
 * in memory at once; what a program sees must stay kernel TCP's. Run over
 * kernel TCP first, every check holds both ways
 * (integration/tests/api/t_prog_threadloops.sh).
 *
 *   prog_threadloops own     each thread connects its 24 connections
 *                            itself, then 300 rounds of a message on each
 *                            and its echo read back through its own
 *                            level-triggered set, every byte checked
 *   prog_threadloops given   the main thread connects all 48 and gives
 *                            each thread 24: the threads' sets share an
 *                            engine (the shim's path then holds back for
 *                            the one that waits second); the same rounds
 *
 * Prints "ok:" lines and "transport: KIND"; exit 1 with a "FAIL:" line,
 * 3 if the watchdog (120 s) fired.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_threadloops";

#define THREADS 2
#define PER 24
#define ROUNDS 300
#define MSG 200
#define WAIT_MS 10000

static pid_t server_pid;
static unsigned port;
static int conns[THREADS * PER];
static int given;

static void kill_server(void)
{
    if (server_pid > 0)
        kill(server_pid, SIGKILL);
}

static unsigned char pat(int round, int i, size_t k)
{
    return (unsigned char)(round * 31 + i * 13 + (int)k * 5);
}

static size_t len_of(int round, int i)
{
    return 1 + (size_t)(round * 41 + i * 19) % MSG;
}

/* Thread t's loop over connections [t * PER, t * PER + PER). */
static void *loop(void *arg)
{
    int t = (int)(intptr_t)arg, from = t * PER;
    if (!given)
        for (int i = from; i < from + PER; i++) {
            conns[i] = connect_lo(port);
            CHECK(conns[i] >= 0, "thread %d: connect %d: %s", t, i, strerror(errno));
        }
    int ep = epoll_set_of(conns, from, PER, EPOLLIN);
    static unsigned char in[THREADS * PER][MSG];
    for (int r = 0; r < ROUNDS; r++) {
        unsigned char out[MSG];
        size_t got[THREADS * PER] = {0};
        for (int i = from; i < from + PER; i++) {
            size_t len = len_of(r, i);
            for (size_t k = 0; k < len; k++)
                out[k] = pat(r, i, k);
            write_exact(conns[i], out, len);
        }
        for (int due = PER; due > 0;) {
            struct epoll_event evs[PER];
            int m = epoll_wait(ep, evs, PER, WAIT_MS);
            if (m < 0 && errno == EINTR)
                continue;
            CHECK(m > 0, "thread %d round %d: epoll_wait gave %d (%s)", t, r, m,
                  m < 0 ? strerror(errno) : "nothing in 10 s");
            for (int e = 0; e < m; e++) {
                int i = (int)evs[e].data.u32;
                CHECK(i >= from && i < from + PER, "thread %d: an event for %d", t, i);
                size_t want = len_of(r, i);
                CHECK(got[i] < want, "thread %d round %d: connection %d told after its echo", t,
                      r, i);
                ssize_t k = read(conns[i], in[i] + got[i], want - got[i]);
                CHECK(k > 0, "thread %d round %d: connection %d told readable, read gave %zd (%s)",
                      t, r, i, k, k < 0 ? strerror(errno) : "EOF");
                got[i] += (size_t)k;
                if (got[i] == want)
                    due--;
            }
        }
        for (int i = from; i < from + PER; i++)
            for (size_t k = 0; k < len_of(r, i); k++)
                CHECK(in[i][k] == pat(r, i, k), "thread %d round %d: connection %d byte %zu differs",
                      t, r, i, k);
    }
    close(ep);
    return NULL;
}

int main(int argc, char **argv)
{
    given = argc == 2 && strcmp(argv[1], "given") == 0;
    prog_begin(argc == 2 && (given || strcmp(argv[1], "own") == 0) ? 1 : argc, 120);
    prog_on_fail = kill_server;
    server_pid = fork_listener(&port, serve_echo_threads);
    if (given)
        for (int i = 0; i < THREADS * PER; i++) {
            conns[i] = connect_lo(port);
            CHECK(conns[i] >= 0, "connect %d: %s", i, strerror(errno));
        }
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        CHECK(pthread_create(&th[t], NULL, loop, (void *)(intptr_t)t) == 0, "pthread_create");
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    printf("transport: %s (client)\n", fd_transport(conns[0]));
    printf("ok: %s (%d threads, %d connections each, %d rounds, every byte checked)\n",
           given ? "given" : "own", THREADS, PER, ROUNDS);
    for (int i = 0; i < THREADS * PER; i++)
        close(conns[i]);
    kill_server();
    waitpid(server_pid, NULL, 0);
    return 0;
}
