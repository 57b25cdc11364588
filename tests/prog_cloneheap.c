/*
 * prog_cloneheap: children made by a raw clone() system call while the
 * process's connections keep its engine busy each start afresh: they
 * listen, connect and exit, none hangs.
 *
 *   prog_cloneheap            run the check below; exit 0 iff it holds
 *
 * A worker thread makes connections to a listener of the process in a loop
 * (connect, accept, 64 KiB each way in 16 KiB pieces, close), so that under
 * the shim the engine thread is always setting up, moving and tearing down
 * connections, which allocates and frees memory. Meanwhile the main thread
 * calls syscall(SYS_clone, SIGCHLD, 0, ...) up to ROUNDS times (at most
 * ROUNDS_S seconds): a child with a copy of the memory and one thread, made
 * without fork(), so neither glibc's own fork handling (which resets its
 * allocator's locks) nor any pthread_atfork handler runs. Each child makes
 * a listener, closes it and exits 0; under the shim listen() starts an
 * engine of its own, which allocates. A lock held at
 * the clone by a thread the child does not have stays held in the child for
 * ever: if the engine thread was inside libc's malloc(), the child's first
 * malloc() hangs. Each child must exit within CHILD_MS.
 *
 * mallopt(M_ARENA_MAX, 1) at the start, as MALLOC_ARENA_MAX=1 (a common
 * setting to bound a server's memory) does, makes every thread allocate
 * from glibc's one main arena, under one lock, so that the engine's hold of
 * it is seen within a few rounds; with more arenas the child hangs only
 * when it needs the arena the engine held (freeing into it, or all arenas
 * in use), which is rarer, not impossible. The worker and the children
 * call nothing that allocates with libc's malloc() (no stdio): only the
 * engine thread may hold that lock at a clone.
 *
 * Prints one "ok:" line per check and "transport: KIND" for a worker's
 * connection (tcp = a kernel TCP socket). Exit 0 iff every check held; 1
 * with a "FAIL:" line otherwise; 3 if the watchdog (60 s) fired.
 */
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 60
#define ROUNDS 200
#define ROUNDS_S 8.0     /* the clone loop's time, whatever the rounds done */
#define CHILD_MS 10000   /* a child's whole life */
#define EVENT_MS 10000   /* any single awaited event in the worker */
#define PIECE (16 * 1024)
#define PIECES 4

const char *prog_name = "prog_cloneheap";

static atomic_int stop;
static atomic_long made;           /* the worker's connections, done */
static const char *_Atomic kind;   /* the first one's transport */
static char wbuf[PIECE], rbuf[PIECE];

static int listen_loopback(struct sockaddr_storage *ss, socklen_t *len)
{
    int l = bound_loopback(AF_INET, ss, len);
    SYS(listen(l, 64));
    return l;
}

/* One connection to l: PIECES pieces each way, then both ends closed. */
static void one_connection(int l, const struct sockaddr_storage *ss, socklen_t len)
{
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    SYS(c);
    SYS(connect(c, (const struct sockaddr *)ss, len));
    int a = accept_ready(l, EVENT_MS);
    if (!atomic_load(&kind))
        atomic_store(&kind, fd_transport(c));
    for (int i = 0; i < PIECES; i++) {
        write_exact(c, wbuf, PIECE);
        read_exact(a, rbuf, PIECE, EVENT_MS);
        write_exact(a, wbuf, PIECE);
        read_exact(c, rbuf, PIECE, EVENT_MS);
    }
    /* The client closes first and the accepted end waits for its EOF, so
     * the listener's side is never the one to close first: no TIME_WAIT
     * for its port (under the shim a keeper would hold it for 60 s). */
    close(c);
    struct pollfd p = {.fd = a, .events = POLLIN};
    CHECK(poll(&p, 1, EVENT_MS) == 1 && read(a, rbuf, 1) == 0, "no EOF after the client's close");
    close(a);
}

static void *worker(void *arg)
{
    (void)arg;
    struct sockaddr_storage ss;
    socklen_t len;
    int l = listen_loopback(&ss, &len);
    while (!atomic_load(&stop)) {
        one_connection(l, &ss, len);
        atomic_fetch_add(&made, 1);
    }
    close(l);
    return NULL;
}

/* The child: a listener, closed again. No stdio, no malloc of its own:
 * what it calls is what the shim interposes (under the shim, listen()
 * starts the child's own engine). No connection, so no TIME_WAIT is left
 * behind it (a keeper would hold the port for 60 s). Exit status 0 iff
 * each call succeeded. */
static void child(void)
{
    struct sockaddr_storage ss;
    socklen_t len = loopback(AF_INET, 0, &ss);
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l < 0 || bind(l, (struct sockaddr *)&ss, len) < 0 || listen(l, 4) < 0)
        _exit(10);
    len = sizeof ss;
    if (getsockname(l, (struct sockaddr *)&ss, &len) < 0)
        _exit(11);
    close(l);
    _exit(0);
}

/* Waits for pid to exit within ms: its exit status, or -1 if it did not. */
static int reap_or_timeout(pid_t pid, int ms)
{
    double end = now_s() + ms / 1000.0;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        SYS(r);
        if (r == pid)
            return st;
        if (now_s() > end)
            return -1;
        poll(NULL, 0, 5); /* a bounded wait for the child's end */
    }
}

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, WATCHDOG_S);
    CHECK(mallopt(M_ARENA_MAX, 1) == 1, "mallopt(M_ARENA_MAX, 1) failed");
    memset(wbuf, 'x', sizeof wbuf);

    pthread_t t;
    CHECK(pthread_create(&t, NULL, worker, NULL) == 0, "pthread_create failed");
    while (atomic_load(&made) < 1) /* the engine runs from here on */
        poll(NULL, 0, 1);
    fflush(stdout);

    int rounds = 0;
    double end = now_s() + ROUNDS_S;
    while (rounds < ROUNDS && now_s() < end) {
        /* x86_64 and aarch64 order: flags, stack, parent_tid, child_tid,
         * tls. A null stack: the child goes on with a copy of ours. */
        long pid = syscall(SYS_clone, (unsigned long)SIGCHLD, NULL, NULL, NULL, 0UL);
        SYS(pid);
        if (pid == 0)
            child();
        kill_on_fail((pid_t)pid);
        int st = reap_or_timeout((pid_t)pid, CHILD_MS);
        CHECK(st != -1, "round %d: the child made by clone() did not exit within %d ms "
                        "(hung; after %ld connections of the worker)",
              rounds, CHILD_MS, atomic_load(&made));
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "round %d: the child ended with status 0x%x",
              rounds, st);
        kill_on_fail(-1);
        rounds++;
    }
    long before = atomic_load(&made);
    atomic_store(&stop, 1);
    CHECK(pthread_join(t, NULL) == 0, "pthread_join failed");
    printf("transport: %s (a worker's connection)\n", atomic_load(&kind));
    printf("ok: %d children made by clone() while the engine was busy listened, connected "
           "and exited\n", rounds);
    CHECK(rounds >= 20, "only %d rounds in %.0f s", rounds, ROUNDS_S);
    printf("ok: the worker made %ld connections meanwhile\n", before);
    return 0;
}
