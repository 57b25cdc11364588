/*
 * prog_acceptorder: a listener's connections reach accept() in the order
 * their clients' connect()s returned, as Linux TCP queues them.
 *
 *   prog_acceptorder          run every check below; exit 0 iff all hold
 *   prog_acceptorder full     only the full backlog's check (below)
 *   prog_acceptorder busy     the same with a server slow to accept (below)
 *   prog_acceptorder concurrent  only the concurrent clients' check
 *
 * A forked child connects CLIENTS clients one after another to a listener
 * on the loopback address (blocking connect(): each returns before the next
 * starts) and writes each client's index on it; the parent accepts only
 * once all are connected, and each accept() must return the next index.
 * Linux appends a connection to the listener's accept queue when the
 * handshake's last ACK is processed (tcp_check_req() ->
 * inet_csk_reqsk_queue_add(), a tail insert), before the client's
 * connect() can have returned, so the order is the connects' (measured over
 * kernel TCP on Linux 6.x: always).
 *
 *   ipv4, ipv6   CLIENTS connections accepted in connect() order, in each
 *                of ROUNDS rounds
 *
 * Under the shim with RUDP_ENGINES=2 or 4 the listener's handshakes land on
 * any of its engines (a SO_REUSEPORT group, hashed by the client's port):
 * each engine used to hand its own over as soon as it had them, and a
 * slower engine's earlier connection came after a quicker one's later one
 * (shim/engine/fifo.c).
 *
 * concurrent: CONC_THREADS threads of the child connect CONC_PER clients
 *   each at once, all against one listener. Each client takes a tick of
 *   a counter the threads share before its connect() starts and another
 *   once it has returned, and writes its index and both ticks. Clients
 *   whose connects overlapped may be queued either way (Linux: the order
 *   their final ACKs are processed, on whichever CPUs); one whose
 *   connect() returned before another's started must be accepted first.
 *   The parent accepts all once all are connected and checks every pair.
 *
 * full: a listener with backlog 1 (it holds 2 completed connections), a
 *   child connecting FULL_CLIENTS: the first two with blocking connect()s,
 *   the others at once, non-blocking, each writing its index when it
 *   connects; the parent accepts once the first two are connected. Over
 *   kernel TCP (Linux 6.18, measured) the others' connect()s do not return
 *   while the queue is full: their SYNs are dropped (tcp_conn_request():
 *   sk_acceptq_is_full()) and a final ACK that finds it full is dropped too
 *   (tcp_check_req(), "listen overflow"); each completes at a
 *   retransmission after accept() made room, so their order is that of
 *   their retransmissions, which Linux does not define (timers, per
 *   connection). What it guarantees, and what is checked: the two queued
 *   are accepted first, in connect() order, and every client is accepted
 *   once. Each accepted connection's transport is printed.
 *
 * busy: the same, but the parent waits FULL_BUSY_MS before it accepts:
 *   longer than RUDP_FALLBACK's probe delay (250 ms) and than the 3 s a
 *   client that reached the server lately gives rudp before it tries
 *   kernel TCP. The server's RETRY told every waiting client that it runs
 *   rudp, so each must still be rudp (before 2026-11-29 the handshake
 *   timer forgot the RETRY when it sent the SYN again, and they raced
 *   kernel TCP: a full accept queue moved a shim server's clients to TCP). (Under the shim with several engines, a connection that finds
 *   the app's backlog full stays in the group's accept order, shim/engine/fifo.c.)
 *
 * Every wait is a poll() with a bound. Prints one "ok:" line per check and
 * "transport: KIND" for a connected pair of each family. Exit 0 iff every
 * check held; 1 with a "FAIL:" line otherwise; 3 if the watchdog (60 s)
 * fired.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 60
#define CLIENTS 64
/* rounds of CLIENTS per family: on main with RUDP_ENGINES=2 one round of
 * 48 went out of order in about 70% of runs (two families) */
#define ROUNDS 3
#define EVENT_MS 10000
#define CONC_THREADS 8
#define CONC_PER 12
#define CONC_CLIENTS (CONC_THREADS * CONC_PER)
#define FULL_BACKLOG 1
#define FULL_CLIENTS 6
/* busy: the wait before the first accept, past RUDP_SLOW_CONNECT (3 s) */
#define FULL_BUSY_MS 3500

const char *prog_name = "prog_acceptorder";

/* The child (the parent's listener closed in it, start()): CLIENTS
 * blocking connects in turn, each writing its index; a byte on pipe
 * `ready` once all are connected, then waits for pipe `done` to close
 * before it exits (the connections stay up meanwhile). */
static __attribute__((noreturn)) void clients(int family, const struct sockaddr_storage *at,
                                              socklen_t len, int ready, int done)
{
    int fds[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        SYS(fds[i] = socket(family, SOCK_STREAM, 0));
        SYS(connect(fds[i], (const struct sockaddr *)at, len));
        uint32_t v = (uint32_t)i;
        CHECK(write(fds[i], &v, sizeof v) == (ssize_t)sizeof v, "client %d: write: %s", i,
              strerror(errno));
    }
    printf("transport: %s (%s client 0)\n", fd_transport(fds[0]), fam_name(family));
    char c = 1;
    CHECK(write(ready, &c, 1) == 1, "ready: %s", strerror(errno));
    struct pollfd p = {.fd = done, .events = POLLIN};
    CHECK(poll(&p, 1, EVENT_MS * 3) == 1, "the parent never finished");
    for (int i = 0; i < CLIENTS; i++)
        close(fds[i]);
    _exit(0);
}

typedef void (*child_fn)(int family, const struct sockaddr_storage *at, socklen_t len, int ready,
                         int done);

/* A listener of family with backlog on the loopback address (*l), and a
 * child running fn against it; returns once the child said it is ready
 * (*ready, *done: the parent's ends of the pipes), the child's pid. */
static pid_t start(int family, int backlog, child_fn fn, int *l, int *ready, int *done)
{
    struct sockaddr_storage at;
    socklen_t len = loopback(family, 0, &at);
    SYS(*l = socket(family, SOCK_STREAM, 0));
    setsockopt_int(*l, SOL_SOCKET, SO_REUSEADDR, 1);
    SYS(bind(*l, (struct sockaddr *)&at, len));
    SYS(listen(*l, backlog));
    SYS(getsockname(*l, (struct sockaddr *)&at, &len));
    int rp[2], dp[2];
    SYS(pipe(rp));
    SYS(pipe(dp));
    fflush(stdout);
    pid_t pid = fork();
    SYS(pid);
    if (pid == 0) {
        close(*l);
        close(rp[0]);
        close(dp[1]);
        fn(family, &at, len, rp[1], dp[0]);
    }
    kill_on_fail(pid);
    close(rp[1]);
    close(dp[0]);
    *ready = rp[0];
    *done = dp[1];
    struct pollfd p = {.fd = *ready, .events = POLLIN};
    CHECK(poll(&p, 1, EVENT_MS * 3) == 1, "%s: the clients did not connect", fam_name(family));
    char c;
    CHECK(read(*ready, &c, 1) == 1, "%s: the clients failed", fam_name(family));
    return pid;
}

/* The child told to finish and reaped, the rest closed. */
static void finish(pid_t pid, int l, int ready, int done)
{
    close(done);
    reap_within(pid, EVENT_MS, "the clients");
    kill_on_fail(-1);
    close(ready);
    close(l);
}

static void check_order(int family)
{
    int l, ready, done;
    pid_t pid = start(family, CLIENTS + 16, clients, &l, &ready, &done);
    int order[CLIENTS], out_of_order = 0;
    for (int k = 0; k < CLIENTS; k++) {
        int a = accept_ready(l, EVENT_MS);
        uint32_t v;
        read_exact(a, &v, sizeof v, EVENT_MS);
        CHECK(v < CLIENTS, "%s: accepted connection %d carries %u", fam_name(family), k, v);
        order[k] = (int)v;
        out_of_order += order[k] != k;
        if (k == 0)
            printf("transport: %s (%s accepted 0)\n", fd_transport(a), fam_name(family));
        close(a);
    }
    if (out_of_order) {
        char seen[CLIENTS * 4 + 1] = "";
        size_t n = 0;
        for (int k = 0; k < CLIENTS && n + 5 < sizeof seen; k++)
            n += (size_t)snprintf(seen + n, sizeof seen - n, " %d", order[k]);
        failf(__LINE__, "%s: %d of %d connections accepted out of connect() order:%s",
              fam_name(family), out_of_order, CLIENTS, seen);
    }
    finish(pid, l, ready, done);
    printf("ok: %s: %d connections accepted in connect() order\n", fam_name(family), CLIENTS);
}

/* concurrent's child: see the top of this file. */
typedef struct conc_rec {
    uint32_t index, start, end;
} conc_rec;

static struct {
    int family;
    const struct sockaddr_storage *at;
    socklen_t len;
    atomic_uint tick;
    int fds[CONC_CLIENTS];
} conc;

static void *conc_thread(void *arg)
{
    int t = (int)(intptr_t)arg;
    for (int i = 0; i < CONC_PER; i++) {
        int k = t * CONC_PER + i;
        conc_rec r = {.index = (uint32_t)k};
        SYS(conc.fds[k] = socket(conc.family, SOCK_STREAM, 0));
        r.start = atomic_fetch_add(&conc.tick, 1);
        SYS(connect(conc.fds[k], (const struct sockaddr *)conc.at, conc.len));
        r.end = atomic_fetch_add(&conc.tick, 1);
        CHECK(write(conc.fds[k], &r, sizeof r) == (ssize_t)sizeof r, "client %d: write: %s", k,
              strerror(errno));
    }
    return NULL;
}

static __attribute__((noreturn)) void conc_clients(int family, const struct sockaddr_storage *at,
                                                   socklen_t len, int ready, int done)
{
    conc.family = family;
    conc.at = at;
    conc.len = len;
    pthread_t th[CONC_THREADS];
    for (int t = 0; t < CONC_THREADS; t++)
        CHECK(pthread_create(&th[t], NULL, conc_thread, (void *)(intptr_t)t) == 0,
              "pthread_create failed");
    for (int t = 0; t < CONC_THREADS; t++)
        pthread_join(th[t], NULL);
    printf("transport: %s (%s client 0)\n", fd_transport(conc.fds[0]), fam_name(family));
    fflush(stdout);
    char c = 1;
    CHECK(write(ready, &c, 1) == 1, "ready: %s", strerror(errno));
    struct pollfd p = {.fd = done, .events = POLLIN};
    CHECK(poll(&p, 1, EVENT_MS * 3) == 1, "the parent never finished");
    for (int i = 0; i < CONC_CLIENTS; i++)
        close(conc.fds[i]);
    _exit(0);
}

static void check_concurrent(int family)
{
    int l, ready, done;
    pid_t pid = start(family, CONC_CLIENTS + 16, conc_clients, &l, &ready, &done);
    static conc_rec got[CONC_CLIENTS];
    int seen[CONC_CLIENTS] = {0};
    for (int k = 0; k < CONC_CLIENTS; k++) {
        int a = accept_ready(l, EVENT_MS);
        read_exact(a, &got[k], sizeof got[k], EVENT_MS);
        CHECK(got[k].index < CONC_CLIENTS && !seen[got[k].index],
              "%s: accepted connection %d carries %u", fam_name(family), k, got[k].index);
        seen[got[k].index] = 1;
        if (k == 0)
            printf("transport: %s (%s accepted 0)\n", fd_transport(a), fam_name(family));
        close(a);
    }
    int inverted = 0, ordered = 0, fj = 0, fk = 0;
    for (int k = 0; k < CONC_CLIENTS; k++) {
        for (int j = 0; j < k; j++) {
            /* j accepted first: k's connect() must not have returned
             * before j's began */
            if (got[k].end < got[j].start && !inverted++) {
                fj = j;
                fk = k;
            }
            ordered += got[j].end < got[k].start;
        }
    }
    if (inverted)
        failf(__LINE__, "%s: %d pairs of %d concurrent connections accepted against connect() "
                        "order, first: client %u (connect() ticks %u-%u) accepted after client "
                        "%u (ticks %u-%u), which began after it returned",
              fam_name(family), inverted, CONC_CLIENTS, got[fk].index, got[fk].start,
              got[fk].end, got[fj].index, got[fj].start, got[fj].end);
    finish(pid, l, ready, done);
    printf("ok: %s: %d connections from %d threads at once, accepted in connect() order "
           "(%d ordered pairs checked)\n",
           fam_name(family), CONC_CLIENTS, CONC_THREADS, ordered);
}

/* full's child: see the top of this file. */
static __attribute__((noreturn)) void full_clients(int family, const struct sockaddr_storage *at,
                                                   socklen_t len, int ready, int done)
{
    struct pollfd p[FULL_CLIENTS];
    for (int i = 0; i < FULL_CLIENTS; i++) {
        int queued = i <= FULL_BACKLOG;
        SYS(p[i].fd = socket(family, SOCK_STREAM | (queued ? 0 : SOCK_NONBLOCK), 0));
        p[i].events = POLLOUT;
        int r = connect(p[i].fd, (const struct sockaddr *)at, len);
        CHECK(r == 0 || (!queued && errno == EINPROGRESS), "client %d: connect: %s", i,
              strerror(errno));
        if (queued) {
            uint32_t v = (uint32_t)i;
            CHECK(write(p[i].fd, &v, sizeof v) == (ssize_t)sizeof v, "client %d: write: %s", i,
                  strerror(errno));
            p[i].events = 0;
        }
        if (i == FULL_BACKLOG) {
            printf("transport: %s (IPv4 client 0)\n", fd_transport(p[0].fd));
            fflush(stdout);
            char c = 1;
            CHECK(write(ready, &c, 1) == 1, "ready: %s", strerror(errno));
        }
    }
    /* the others: each writes its index once connected */
    for (int left = FULL_CLIENTS - FULL_BACKLOG - 1; left > 0;) {
        int n = poll(p, FULL_CLIENTS, EVENT_MS * 2);
        CHECK(n > 0, "%d clients never connected", left);
        for (int i = 0; i < FULL_CLIENTS; i++) {
            if (!p[i].revents)
                continue;
            CHECK(so_error(p[i].fd) == 0, "client %d: connect: %s", i,
                  strerror(so_error(p[i].fd)));
            uint32_t v = (uint32_t)i;
            CHECK(write(p[i].fd, &v, sizeof v) == (ssize_t)sizeof v, "client %d: write: %s", i,
                  strerror(errno));
            p[i].events = 0;
            left--;
        }
    }
    struct pollfd d = {.fd = done, .events = POLLIN};
    CHECK(poll(&d, 1, EVENT_MS * 3) == 1, "the parent never finished");
    for (int i = 0; i < FULL_CLIENTS; i++)
        close(p[i].fd);
    _exit(0);
}

static void check_full(int busy_ms)
{
    int l, ready, done;
    pid_t pid = start(AF_INET, FULL_BACKLOG, full_clients, &l, &ready, &done);
    struct timespec busy = {busy_ms / 1000, (long)(busy_ms % 1000) * 1000 * 1000};
    nanosleep(&busy, NULL);
    int seen[FULL_CLIENTS] = {0};
    for (int k = 0; k < FULL_CLIENTS; k++) {
        int a = accept_ready(l, EVENT_MS * 2);
        uint32_t v;
        read_exact(a, &v, sizeof v, EVENT_MS * 2);
        CHECK(v < FULL_CLIENTS && !seen[v], "full: accepted connection %d carries %u", k, v);
        seen[v] = 1;
        CHECK(k > FULL_BACKLOG || v == (uint32_t)k,
              "full: accepted connection %d is client %u, not %d (queued in connect() order)",
              k, v, k);
        printf("transport: %s (IPv4 accepted %d)\n", fd_transport(a), k);
        close(a);
    }
    finish(pid, l, ready, done);
    printf("ok: full backlog: the %d queued accepted first in connect() order, all %d accepted "
           "once\n",
           FULL_BACKLOG + 1, FULL_CLIENTS);
}

int main(int argc, char **argv)
{
    int full = argc == 2 && !strcmp(argv[1], "full");
    int busy = argc == 2 && !strcmp(argv[1], "busy");
    int concurrent = argc == 2 && !strcmp(argv[1], "concurrent");
    prog_begin(full || busy || concurrent ? 1 : argc, WATCHDOG_S);
    if (full || busy) {
        check_full(busy ? FULL_BUSY_MS : 0);
        return 0;
    }
    int v6 = family_usable(AF_INET6, "the IPv6 rounds");
    for (int r = 0; r < ROUNDS && !concurrent; r++) {
        check_order(AF_INET);
        if (v6)
            check_order(AF_INET6);
    }
    for (int r = 0; r < ROUNDS; r++) {
        check_concurrent(AF_INET);
        if (v6)
            check_concurrent(AF_INET6);
    }
    return 0;
}
