/*
 * prog_emfile: a server out of fds gets its connections once it frees some,
 * as over TCP.
 *
 * The server listens, lowers its soft RLIMIT_NOFILE to 64 and fills its fd
 * table. A client process makes 20 connections, one blocking connect()
 * after another, and writes a byte on each. For a second the server's
 * accept() says EMFILE (TCP keeps the connections queued); then it closes
 * 16 fds and serves: accept(), read the byte, answer, close, backing off
 * 100 ms after each EMFILE. Every client must get its answer.
 *
 * Under the shim the engine shares the program's fd table: before
 * 2026-11-29 it made a bridge for every waiting connection in the fds the
 * server freed, and accept() said EMFILE for good (0-4 of 20 served in
 * 15 s; a helper's hunt).
 *
 * Prints "ok:" lines and "transport: KIND"; exit 1 with a "FAIL:" line,
 * 3 if the watchdog (60 s) fired.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_emfile";

#define CLIENTS 20
#define FREED 16

static int client(unsigned port, int ready_fd)
{
    int c[CLIENTS];
    struct sockaddr_in to = ipv4_addr("127.0.0.1", port);
    char b;
    if (read(ready_fd, &b, 1) != 1) /* the server is out of fds */
        return 2;
    /* one blocking connect after another, each writing at once: TCP
     * completes them all while the server cannot accept */
    for (int i = 0; i < CLIENTS; i++) {
        c[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (c[i] < 0 || connect(c[i], (struct sockaddr *)&to, sizeof to) < 0) {
            fprintf(stderr, "client %d: connect: %s\n", i, strerror(errno));
            return 3;
        }
        if (write(c[i], "m", 1) != 1)
            return 4;
    }
    printf("transport: %s\n", fd_transport(c[0]));
    int answered = 0;
    for (int i = 0; i < CLIENTS; i++) {
        char k = 0;
        if ((poll_for(c[i], POLLIN, 30000) & POLLIN) && read(c[i], &k, 1) == 1 && k == 'k')
            answered++;
        else
            fprintf(stderr, "client %d: no answer\n", i);
        close(c[i]);
    }
    printf("client: %d of %d answered\n", answered, CLIENTS);
    fflush(stdout);
    return answered == CLIENTS ? 0 : 1;
}

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, 60);
    int l = listener_lo(0, 128);
    unsigned port = port_of_fd(l);
    int ready[2];
    SYS(pipe(ready));
    fflush(stdout);
    pid_t pid = fork();
    SYS(pid);
    if (pid == 0) {
        close(ready[1]);
        close(l);
        _exit(client(port, ready[0]));
    }
    close(ready[0]);
    struct rlimit rl;
    SYS(getrlimit(RLIMIT_NOFILE, &rl));
    rl.rlim_cur = 64;
    SYS(setrlimit(RLIMIT_NOFILE, &rl));
    static int fill[64];
    int nf = 0;
    for (; nf < 64; nf++) {
        fill[nf] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fill[nf] < 0)
            break;
    }
    CHECK(nf > FREED && errno == EMFILE, "filling the fd table: %d fds, then %s", nf,
          strerror(errno));
    SYS(fcntl(l, F_SETFL, O_NONBLOCK));
    SYS(write(ready[1], "r", 1));
    /* out of fds for a second: accept() says EMFILE (or EAGAIN before the
     * first connection is there), as TCP's */
    int emfile = 0;
    for (double until = now_s() + 1; now_s() < until;) {
        int c = accept(l, NULL, NULL);
        CHECK(c < 0, "accept() with no fd free returned %d", c);
        CHECK(errno == EMFILE || errno == EAGAIN, "accept() with no fd free: %s", strerror(errno));
        emfile += errno == EMFILE;
        usleep(20000);
    }
    for (int i = 0; i < FREED; i++)
        close(fill[--nf]);
    int served = 0;
    for (double until = now_s() + 30; served < CLIENTS && now_s() < until;) {
        int c = accept(l, NULL, NULL);
        if (c < 0) {
            CHECK(errno == EMFILE || errno == EAGAIN, "accept(): %s", strerror(errno));
            usleep(errno == EMFILE ? 100000 : 5000); /* a server backing off */
            continue;
        }
        char b = 0;
        CHECK((poll_for(c, POLLIN, 10000) & POLLIN) && read(c, &b, 1) == 1 && b == 'm',
              "connection %d: no byte from its client", served);
        CHECK(write(c, "k", 1) == 1, "answer: %s", strerror(errno));
        close(c);
        served++;
    }
    int st;
    SYS(waitpid(pid, &st, 0));
    CHECK(served == CLIENTS, "served %d of %d clients within 30 s of freeing %d fds", served, CLIENTS,
          FREED);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the client exited %#x", st);
    printf("ok: out of fds (%d EMFILE), then %d freed: %d of %d clients served\n", emfile, FREED,
           served, CLIENTS);
    return 0;
}
