/*
 * prog_fdreuse: a connection's fd number closed or replaced by a call that
 * does not go through close(), then given to another file, names that
 * file, as the kernel says.
 *
 * For each way, a connection c (to an accepted end a in this process)
 * first carries a few bytes each way, then a dup() of it is kept (so the
 * connection lives on), then c's number is closed or replaced:
 *   fclose    fdopen(c) then fclose(): stdio closes the number inside libc
 *   dup2      dup2() of a unix socket over c
 *   dup3      syscall(SYS_dup3) of a unix socket over c
 *   sysclose  syscall(SYS_close, c)
 *   range     close_range(c, c, 0)
 * and, where it was closed, the lowest free number, c, is taken by a unix
 * socket pair's end (socketpair(), which the shim does not see). Then
 * write(c, "X") must reach the pair's other end, a read of c must find
 * the pair empty (EAGAIN), and the connection's peer a must get nothing.
 *
 * Under the shim, a record proved once was trusted until a call the shim
 * sees says the number may have changed (state/fdtab.c's epochs): without
 * the fclose and dup2 cases' proofs, "X" went into the connection and a
 * read it.
 *
 * Prints "ok:" lines and "transport: KIND"; exit 1 with a "FAIL:" line,
 * 3 if the watchdog (60 s) fired.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_fdreuse";

#define IO_MS 10000

/* c carries a byte each way, a few times, so that its record is in use */
static void warm(int c, int a)
{
    for (int i = 0; i < 4; i++) {
        char b;
        write_exact(c, "w", 1);
        read_exact(a, &b, 1, IO_MS);
        write_exact(a, "r", 1);
        read_exact(c, &b, 1, IO_MS);
    }
}

/* The unix pair's end at number c (socketpair() gives the lowest free
 * numbers, c first; else moved there with F_DUPFD), its other end in
 * *other. */
static int pair_at(int c, int *other)
{
    int sp[2];
    SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sp));
    if (sp[0] != c) {
        int m = fcntl(sp[0], F_DUPFD, c);
        SYS(m);
        CHECK(m == c, "the lowest free number from %d is %d", c, m);
        close(sp[0]);
    }
    *other = sp[1];
    return c;
}

static void one(const char *how)
{
    int c, a;
    loopback_pair(AF_INET, &c, &a);
    if (strcmp(how, "fclose") == 0)
        printf("transport: %s\n", fd_transport(c));
    warm(c, a);
    write_exact(a, "Y", 1); /* for c's read to find, if it read the connection */
    usleep(20000);
    int keep = dup(c);
    SYS(keep);
    int other = -1;
    if (strcmp(how, "fclose") == 0) {
        FILE *f = fdopen(c, "w");
        CHECK(f != NULL, "fdopen: %s", strerror(errno));
        CHECK(fclose(f) == 0, "fclose: %s", strerror(errno));
        pair_at(c, &other);
    } else if (strcmp(how, "dup2") == 0) {
        int sp[2];
        SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sp));
        SYS(dup2(sp[0], c));
        close(sp[0]);
        other = sp[1];
    } else if (strcmp(how, "dup3") == 0) {
        int sp[2];
        SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sp));
        SYS(syscall(SYS_dup3, sp[0], c, 0));
        close(sp[0]);
        other = sp[1];
    } else if (strcmp(how, "sysclose") == 0) {
        SYS(syscall(SYS_close, c));
        pair_at(c, &other);
    } else {
        SYS(syscall(SYS_close_range, c, c, 0));
        pair_at(c, &other);
    }
    ssize_t w = write(c, "X", 1);
    CHECK(w == 1, "%s: write to the new file at %d: %zd (%s)", how, c, w,
          w < 0 ? strerror(errno) : "short");
    char b = 0;
    CHECK(poll_for(other, POLLIN, IO_MS) & POLLIN, "%s: the pair's other end got nothing", how);
    CHECK(read(other, &b, 1) == 1 && b == 'X', "%s: the pair's other end read '%c', not X", how,
          b);
    SYS(fcntl(c, F_SETFL, O_NONBLOCK));
    ssize_t r = read(c, &b, 1);
    CHECK(r < 0 && errno == EAGAIN, "%s: a read of the new file at %d gave %zd ('%c'), not EAGAIN",
          how, c, r, r == 1 ? b : ' ');
    short ev = poll_for(a, POLLIN, 200);
    if (ev & POLLIN) {
        r = read(a, &b, 1);
        CHECK(r != 1, "%s: the connection's peer read '%c', written to the new file", how, b);
    }
    close(c);
    close(other);
    close(keep);
    close(a);
    printf("ok: %s: the number names the new file: its write and read are that file's\n", how);
}

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, 60);
    one("fclose");
    one("dup2");
    one("dup3");
    one("sysclose");
    one("range");
    return 0;
}
