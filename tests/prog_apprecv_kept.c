/*
 * prog_apprecv_kept.c: prog_apprecv's checks of what a read after poll()
 * sees (what each checks: prog_apprecv.c). Under the shim the bytes a
 * poll() told of wait in the connection for that read (engine/apprecv.c's
 * keep); whatever else the program does next must find them where TCP
 * has them: kept, a peek, a short read, FIONREAD, another readiness call,
 * a forked child's read, stdio's own read, and the peer's FIN after them.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"
#include "prog_apprecv.h"

/* Writes s to the echo server and waits in poll() for its echo. */
static void ask_and_poll(int fd, const char *s, const char *what)
{
    write_exact(fd, s, strlen(s));
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n = poll(&p, 1, SHOWN_MS);
    CHECK(n == 1 && p.revents == POLLIN, "%s: poll gave %d (%s), revents %#x", what, n,
          n < 0 ? strerror(errno) : "-", (unsigned)p.revents);
}

/* Reads n bytes with read() alone (no poll between: a poll would pass
 * kept bytes on into the bridge). */
static void read_plain(int fd, char *buf, size_t n, const char *what, int i)
{
    for (size_t have = 0; have < n;) {
        ssize_t r = read(fd, buf + have, n - have);
        CHECK(r > 0, "%s %d: read gave %zd (%s) after %zu bytes", what, i, r,
              r < 0 ? strerror(errno) : "EOF", have);
        have += (size_t)r;
    }
}

/* 200 times: a peek after the poll sees the echo's first bytes, and the
 * read after it (no poll between) gets them all the same. */
static void kept_peek(int fd)
{
    for (int i = 0; i < 200; i++) {
        char in[3] = {0}, seen[3] = {0};
        ask_and_poll(fd, "abc", "peek");
        ssize_t n = recv(fd, seen, sizeof seen, MSG_PEEK);
        CHECK(n >= 1 && memcmp(seen, "abc", (size_t)n) == 0, "peek %d: %zd bytes '%.3s'", i, n,
              seen);
        read_plain(fd, in, sizeof in, "peek", i);
        CHECK(memcmp(in, "abc", 3) == 0, "peek %d: read '%.3s' after the peek", i, in);
    }
}

/* With SO_PEEK_OFF 0 (TCP has it since Linux 6.9), 50 times: two 1-byte
 * peeks after the poll see the echo's first byte, then its second (the
 * offset moves on), and the read after them gets both. */
static void kept_peek_off(int fd)
{
    int zero = 0, off = -1;
    if (setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof zero) < 0) {
        printf("skip: kept: SO_PEEK_OFF: %s on this socket here\n", strerror(errno));
        return;
    }
    for (int i = 0; i < 50; i++) {
        char a = 0, b = 0, in[2] = {0};
        ask_and_poll(fd, "pq", "peek offset");
        CHECK(recv(fd, &a, 1, MSG_PEEK) == 1 && recv(fd, &b, 1, MSG_PEEK) == 1 && a == 'p' &&
                  b == 'q',
              "peek offset %d: peeks gave '%c' then '%c', not 'p' then 'q'", i, a, b);
        read_plain(fd, in, sizeof in, "peek offset", i);
        CHECK(memcmp(in, "pq", 2) == 0, "peek offset %d: read '%.2s'", i, in);
    }
    SYS(setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof off));
}

/* 200 times: a read of 1 byte takes the first, and a poll that does not
 * wait then says the other 4 are there, which the reads after it take. */
static void kept_short(int fd)
{
    for (int i = 0; i < 200; i++) {
        char c = 0, rest[4] = {0};
        ask_and_poll(fd, "12345", "short read");
        CHECK(read(fd, &c, 1) == 1 && c == '1', "short %d: first byte %d", i, c);
        short ev = poll_for(fd, POLLIN, 0);
        CHECK(ev == POLLIN, "short %d: poll(0) after a short read gave %#x", i, (unsigned)ev);
        read_exact(fd, rest, sizeof rest, SHOWN_MS);
        CHECK(memcmp(rest, "2345", 4) == 0, "short %d: the rest '%.4s'", i, rest);
    }
}

/* 200 times: after the poll, FIONREAD counts the echo; then select(),
 * epoll and a second poll() without waiting all say readable. */
static void kept_seen(int fd)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    SYS(ep);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    SYS(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
    for (int i = 0; i < 200; i++) {
        char in[4];
        ask_and_poll(fd, "wxyz", "seen");
        int q = -1;
        if (i % 4 == 0) {
            SYS(ioctl(fd, FIONREAD, &q));
            CHECK(q >= 1 && q <= 4, "seen %d: FIONREAD %d after POLLIN", i, q);
        } else if (i % 4 == 1) {
            fd_set r;
            FD_ZERO(&r);
            FD_SET(fd, &r);
            struct timeval tv = {0, 0};
            int n = select(fd + 1, &r, NULL, NULL, &tv);
            CHECK(n == 1 && FD_ISSET(fd, &r), "seen %d: select gave %d after POLLIN", i, n);
        } else if (i % 4 == 2) {
            struct epoll_event out;
            int n = epoll_wait(ep, &out, 1, 0);
            CHECK(n == 1 && (out.events & EPOLLIN), "seen %d: epoll_wait gave %d after POLLIN",
                  i, n);
        } else {
            short r = poll_for(fd, POLLIN, 0);
            CHECK(r == POLLIN, "seen %d: a second poll gave %#x", i, (unsigned)r);
        }
        read_exact(fd, in, sizeof in, SHOWN_MS);
        CHECK(memcmp(in, "wxyz", 4) == 0, "seen %d: read '%.4s'", i, in);
    }
    close(ep);
}

/* 20 times: after the poll a forked child reads the echo without waiting
 * (it is there: the poll said so); the parent then finds nothing left
 * (EAGAIN), as two processes sharing a TCP socket. */
static void kept_fork(int fd)
{
    for (int i = 0; i < 20; i++) {
        ask_and_poll(fd, "F", "fork");
        pid_t c = fork();
        SYS(c);
        if (c == 0) {
            alarm(10);
            char b = 0;
            _exit(recv(fd, &b, 1, MSG_DONTWAIT) == 1 && b == 'F' ? 0 : 1);
        }
        int st = 0;
        SYS(waitpid(c, &st, 0));
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "fork %d: the child found no echo where the poll said POLLIN", i);
        char b;
        ssize_t n = recv(fd, &b, 1, MSG_DONTWAIT);
        CHECK(n < 0 && errno == EAGAIN, "fork %d: the parent read %zd after the child", i, n);
    }
}

/* On a connection of its own, after 20 echoes read by read(), 10 times:
 * after the poll, stdio reads the line through a copy of the socket
 * (libc's own read, which no LD_PRELOAD sees): it gets the line, whole. */
static void kept_stdio(void)
{
    int fd = connect_lo(port);
    CHECK(fd >= 0, "stdio: connect: %s", strerror(errno));
    echo(fd, 20); /* reads of ours first: the socket's mode known to the shim */
    int copy = dup(fd);
    SYS(copy);
    FILE *f = fdopen(copy, "r");
    CHECK(f != NULL, "fdopen: %s", strerror(errno));
    for (int i = 0; i < 10; i++) {
        char want[32], got[32] = "";
        snprintf(want, sizeof want, "line %d\n", i);
        ask_and_poll(fd, want, "stdio");
        CHECK(fgets(got, sizeof got, f) && strcmp(got, want) == 0, "stdio %d: fgets gave '%s'",
              i, got);
    }
    fclose(f);
    close(fd);
}

/* On a connection of its own, after 20 echoes: 3 bytes and our FIN; the
 * echo and the server's FIN come back: polls and reads give the 3 bytes,
 * then 0. */
static void kept_eof(void)
{
    int fd = connect_lo(port);
    CHECK(fd >= 0, "eof: connect: %s", strerror(errno));
    echo(fd, 20); /* reads of ours first: the socket's mode known to the shim */
    write_exact(fd, "xyz", 3);
    SYS(shutdown(fd, SHUT_WR));
    char got[8];
    size_t have = 0;
    for (;;) {
        short ev = poll_for(fd, POLLIN, SHOWN_MS);
        CHECK(ev & POLLIN, "eof: after %zu bytes poll gave %#x", have, (unsigned)ev);
        ssize_t n = read(fd, got + have, sizeof got - have);
        CHECK(n >= 0, "eof: read: %s", strerror(errno));
        if (n == 0)
            break;
        have += (size_t)n;
        CHECK(have <= 3, "eof: %zu bytes echoed for 3", have);
    }
    CHECK(have == 3 && memcmp(got, "xyz", 3) == 0, "eof: %zu bytes before the end", have);
    close(fd);
}

/* 20 times: after the poll, a select() over more than 64 fds (libc's own
 * call under the shim) without waiting says the socket is readable. */
static void kept_select_many(int fd)
{
    int pp[40][2];
    int top = fd;
    for (int k = 0; k < 40; k++) {
        SYS(pipe(pp[k]));
        top = pp[k][1] > top ? pp[k][1] : top;
    }
    CHECK(top < FD_SETSIZE, "fd %d past FD_SETSIZE", top);
    for (int i = 0; i < 20; i++) {
        char in[2];
        ask_and_poll(fd, "mm", "select of many");
        fd_set r;
        FD_ZERO(&r);
        FD_SET(fd, &r);
        for (int k = 0; k < 40; k++) {
            FD_SET(pp[k][0], &r);
            FD_SET(pp[k][1], &r);
        }
        struct timeval tv = {0, 0};
        int n = select(top + 1, &r, NULL, NULL, &tv);
        CHECK(n >= 1 && FD_ISSET(fd, &r), "select of 81 fds %d: gave %d, socket %s", i, n,
              FD_ISSET(fd, &r) ? "set" : "not set");
        read_exact(fd, in, sizeof in, SHOWN_MS);
    }
    for (int k = 0; k < 40; k++) {
        close(pp[k][0]);
        close(pp[k][1]);
    }
}

void check_kept(int fd, int forks)
{
    kept_peek(fd);
    kept_peek_off(fd);
    kept_short(fd);
    kept_seen(fd);
    kept_select_many(fd);
    if (forks)
        kept_fork(fd);
    else
        printf("skip: kept: fork: not under this runtime (PROG_APPRECV_NOFORK=1)\n");
    kept_stdio();
    kept_eof();
    printf("ok: kept\n");
}
