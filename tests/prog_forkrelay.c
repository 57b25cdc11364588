/*
 * prog_forkrelay: a pre-forked worker's bytes go on the connection they
 * were written to.
 *
 * The pre-fork model with upstream connections (nginx's proxy_pass with an
 * upstream keepalive pool, gunicorn workers holding database connections):
 * a process listens and forks a worker; the worker opens a pool of
 * connections to an upstream echo server of its own, then accepts
 * clients, and for each request of each client asks the upstream by a
 * pooled connection and writes the answer to the client. Every client
 * must read its own answer, and the upstream must never read a client's.
 * ROUNDS rounds, each with a new worker, so that the parent's engine and
 * each worker's count their connections from many starting points.
 *
 * Under the shim before 2026-11-29 a forked worker inherited the counter
 * that numbers connections while its own slab of connection slots started
 * at 0 again: a client connection the parent's engine accepted could have
 * the index and id of one of the worker's upstream connections, and the
 * worker's writes in memory to the client went to the upstream (a
 * helper's hunt: 4 runs in 20 of a Python relay, 1 round in 8 of nginx).
 *
 * Prints "ok:" lines and "transport: KIND"; exit 1 with a "FAIL:" line,
 * 3 if the watchdog (120 s) fired.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_forkrelay";

#define ROUNDS 12
#define POOL 6
#define CLIENTS 6
#define REQS 2

/* A message of at most 63 bytes, read whole (they are small and each
 * waits for its answer); "" at EOF or after 5 s. */
static void get_msg(int fd, char *buf, size_t cap)
{
    buf[0] = 0;
    if (!(poll_for(fd, POLLIN, 5000) & (POLLIN | POLLHUP | POLLERR)))
        return;
    ssize_t r = read(fd, buf, cap - 1);
    buf[r > 0 ? r : 0] = 0;
}

/* The upstream: echoes "UP[" msg "]" for each message starting with 'q'
 * (a relayed request); anything else is a client's answer gone astray:
 * exit 1. One process per connection. */
static void upstream(int l)
{
    signal(SIGCHLD, SIG_IGN);
    for (;;) {
        int c = accept(l, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR)
                continue;
            _exit(2);
        }
        pid_t p = fork();
        if (p != 0) {
            close(c);
            continue;
        }
        close(l);
        for (;;) {
            char m[64], out[80];
            get_msg(c, m, sizeof m);
            if (!m[0])
                _exit(0);
            if (m[0] != 'q') {
                fprintf(stderr, "FAIL: upstream got a client's bytes: \"%s\"\n", m);
                _exit(1);
            }
            int n = snprintf(out, sizeof out, "UP[%s]", m);
            if (write(c, out, (size_t)n) != n)
                _exit(0);
        }
    }
}

static void worker(int l, unsigned up_port, int round)
{
    int pool[POOL];
    for (int i = 0; i < POOL; i++)
        pool[i] = connect_lo(up_port);
    for (int i = 0; i < CLIENTS; i++) {
        int c = accept(l, NULL, NULL);
        if (c < 0)
            _exit(2);
        int u = pool[(i + round) % POOL];
        for (int k = 0; k < REQS; k++) {
            char req[64], rep[64], out[160];
            get_msg(c, req, sizeof req);
            if (!req[0])
                break;
            if (write(u, req, strlen(req)) != (ssize_t)strlen(req))
                _exit(3);
            get_msg(u, rep, sizeof rep);
            int n = snprintf(out, sizeof out, "RESP(%s)", rep);
            if (write(c, out, (size_t)n) != n)
                _exit(4);
        }
        close(c);
    }
    /* the clients read their last answers before the pool goes */
    usleep(200000);
    _exit(0);
}

static int client_round(unsigned port, int round)
{
    int bad = 0;
    for (int i = 0; i < CLIENTS; i++) {
        int s = connect_lo(port);
        if (round == 0 && i == 0)
            printf("transport: %s\n", fd_transport(s));
        for (int k = 0; k < REQS; k++) {
            char msg[48], want[80], got[64];
            snprintf(msg, sizeof msg, "q%d-%d-%d", round, i, k);
            snprintf(want, sizeof want, "RESP(UP[%s])", msg);
            write_exact(s, msg, strlen(msg));
            get_msg(s, got, sizeof got);
            if (strcmp(got, want) != 0) {
                fprintf(stderr, "round %d client %d request %d: read \"%s\", not \"%s\"\n", round, i,
                        k, got, want);
                bad++;
                break;
            }
        }
        close(s);
    }
    return bad;
}

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, 120);
    int ul = listener_lo(0, 64);
    unsigned up_port = port_of_fd(ul);
    fflush(stdout);
    pid_t up = fork();
    SYS(up);
    if (up == 0)
        upstream(ul);
    close(ul);
    int l = listener_lo(0, 64);
    unsigned port = port_of_fd(l);
    int bad = 0;
    for (int r = 0; r < ROUNDS; r++) {
        fflush(stdout);
        pid_t w = fork();
        SYS(w);
        if (w == 0)
            worker(l, up_port, r);
        bad += client_round(port, r);
        int st;
        SYS(waitpid(w, &st, 0));
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "round %d: the worker ended %#x", r, st);
    }
    kill(up, SIGTERM);
    int st;
    waitpid(up, &st, 0);
    CHECK(bad == 0, "%d of %d clients did not read their own answer", bad, ROUNDS * CLIENTS);
    printf("ok: %d rounds of a forked worker relaying %d clients by a pool of %d upstream "
           "connections: every answer on its own connection\n",
           ROUNDS, CLIENTS, POOL);
    return 0;
}
