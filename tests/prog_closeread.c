/*
 * prog_closeread: a read blocked on a socket whose number is closed (or
 * has another socket dup2()ed over it) never returns the bytes of the
 * connection that takes the number.
 *
 * A thread blocks in read(C1); the main thread closes C1 and connects C2,
 * which gets the same number (case close), or dup2()s C2 over C1 (case
 * dup2); C2's peer writes "TWO", then C1's peer writes "ONE". Linux's
 * blocked read holds C1's file and returns "ONE"; C2 reads "TWO". Under the
 * shim the reader's wait holds only the number: it says EBADF
 * (docs/limits.md). Before 2026-11-29 it returned C2's "TWO" (a helper's
 * hunt, 10 runs of 10), and C2's reader never saw them.
 *
 * Asserted, both ways: the blocked read returns "ONE" or fails with EBADF,
 * never "TWO", and C2 reads "TWO". Prints "ok:" lines and "transport:
 * KIND"; exit 1 with a "FAIL:" line, 3 if the watchdog (60 s) fired.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_closeread";

static int rfd;
static char rbuf[16];
static ssize_t rn;
static int rerr;

static void *reader(void *arg)
{
    (void)arg;
    rn = read(rfd, rbuf, sizeof rbuf - 1);
    rerr = errno;
    return NULL;
}

static void one_case(int dup)
{
    int l = listener_lo(0, 16);
    unsigned port = port_of_fd(l);
    int c1 = connect_lo(port), s1 = accept_ready(l, 5000);
    /* a first exchange: the reader's wait below is the fast path's */
    char b[8];
    write_exact(s1, "warm", 4);
    read_exact(c1, b, 4, 5000);
    if (!dup)
        printf("transport: %s\n", fd_transport(c1));
    rfd = c1;
    rn = -2;
    memset(rbuf, 0, sizeof rbuf);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, reader, NULL) == 0, "pthread_create");
    usleep(20000); /* in its read by now */
    int c2, s2;
    if (!dup) {
        close(c1);
        c2 = connect_lo(port);
        s2 = accept_ready(l, 5000);
    } else {
        int c = connect_lo(port);
        s2 = accept_ready(l, 5000);
        SYS(dup2(c, c1));
        close(c);
        c2 = c1;
    }
    usleep(20000);
    write_exact(s2, "TWO", 3);
    usleep(20000);
    write_exact(s1, "ONE", 3);
    CHECK(pthread_join(t, NULL) == 0, "pthread_join");
    const char *how = dup ? "dup2" : "close";
    CHECK(!(rn == 3 && !memcmp(rbuf, "TWO", 3)),
          "%s: the read blocked on the old socket returned the new connection's bytes", how);
    CHECK((rn == 3 && !memcmp(rbuf, "ONE", 3)) || (rn == -1 && rerr == EBADF),
          "%s: the blocked read returned %zd (%s)", how, rn, rn < 0 ? strerror(rerr) : rbuf);
    read_exact(c2, b, 3, 5000);
    CHECK(!memcmp(b, "TWO", 3), "%s: the new connection read %.3s, not its TWO", how, b);
    printf("ok: %s: the blocked read said %s, the new connection read its own bytes\n", how,
           rn == 3 ? "the old connection's ONE" : "EBADF");
    close(c2);
    close(s2);
    close(s1);
    close(l);
}

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, 60);
    one_case(0);
    one_case(1);
    return 0;
}
