/*
 * prog_outage CASE DROP UNDROP: a connection lives through a path dark for
 * a few seconds, as kernel TCP's does, whatever timeouts the program set
 * that TCP applies elsewhere. DROP and UNDROP are shell commands that cut
 * and restore the path (t_prog_outage.sh: an nftables table in a network
 * namespace of the run's own). CASE:
 *
 *   reader  TCP_USER_TIMEOUT 1000 on a reader with nothing to send: it
 *           reads 100 bytes, the path is dark for 3 s, and then the peer's
 *           next 100 bytes and its end arrive. TCP's user timeout bounds
 *           unacknowledged data, and a reader has none (the shim's side
 *           runs with RUDP_KEEPALIVE=1s, so its probes go into the dark;
 *           before 8000680 they ran the user timeout: ETIMEDOUT at 2 s).
 *   writer  SO_KEEPALIVE with TCP_KEEPIDLE 1, TCP_KEEPINTVL 1 and
 *           TCP_KEEPCNT 1 on a writer whose first 64 KiB go into a path
 *           dark for 4 s; then 1 MiB more and its end: the peer reads every
 *           byte. TCP's keepalive waits while data is unacknowledged, and
 *           its retransmissions find the path again (before 8000680 the
 *           shim's idle timeout of 2 s ended the writer).
 *
 * Prints "transport: KIND" and "ok: CASE ..."; exit 1 with a FAIL: line, 3
 * if the watchdog (40 s) fired.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_outage";

#define FIRST 65536
#define MORE (1 << 20)

static void run(const char *cmd)
{
    int rc = system(cmd);
    CHECK(rc == 0, "the command failed (%d): %s", rc, cmd);
}

/* The scenario's outage lasts this long (it is what the case is about,
 * not a wait for something to happen). */
static void sleep_s(unsigned secs)
{
    struct timespec ts = {secs, 0};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* The path cut for secs seconds, then restored. */
static void dark_for(const char *drop, const char *undrop, unsigned secs)
{
    run(drop);
    sleep_s(secs);
    run(undrop);
}

/* n bytes of the pattern from offset `from`, blocking. */
static void write_pattern(int fd, uint64_t from, size_t n, const char *what)
{
    static unsigned char buf[65536];
    while (n) {
        size_t k = n < sizeof buf ? n : sizeof buf;
        for (size_t i = 0; i < k; i++)
            buf[i] = pattern_byte(from + i);
        ssize_t w = write(fd, buf, k);
        CHECK(w > 0, "%s: write at byte %llu: %s", what, (unsigned long long)from,
              w < 0 ? strerror(errno) : "0");
        from += (uint64_t)w;
        n -= (size_t)w;
    }
}

static void read_pattern(int fd, uint64_t from, size_t n, const char *what)
{
    unsigned char buf[256];
    CHECK(n <= sizeof buf, "%s: %zu bytes", what, n);
    read_exact(fd, buf, n, 10000);
    for (size_t i = 0; i < n; i++)
        CHECK(buf[i] == pattern_byte(from + i), "%s: byte %llu differs", what,
              (unsigned long long)(from + i));
}

/* A peer process that accepts one connection and runs body(a, fd) on
 * it; returns the program's connection to it. */
static int start_peer(void (*body)(int a, int fd), int fd, pid_t *pid)
{
    int l = listener_lo(0, 1);
    unsigned port = port_of_fd(l);
    *pid = fork();
    SYS(*pid);
    if (*pid == 0) {
        int a = accept(l, NULL, NULL);
        if (a < 0)
            _exit(1);
        body(a, fd);
        _exit(0);
    }
    kill_on_fail(*pid);
    close(l);
    int c = connect_lo(port);
    printf("transport: %s\n", fd_transport(c));
    return c;
}

static void end_peer(int c, pid_t pid, const char *what)
{
    CHECK(so_error(c) == 0, "%s: SO_ERROR %s", what, strerror(so_error(c)));
    int st = reap_within(pid, 10000, "the peer");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the peer failed (status %d)", st);
}

/* reader's peer: 100 bytes, and 100 more once told to (fd) */
static void send_twice(int a, int go)
{
    char b;
    write_pattern(a, 0, 100, "peer");
    if (read(go, &b, 1) != 1)
        _exit(1);
    write_pattern(a, 100, 100, "peer");
    close(a);
}

static void reader(const char *drop, const char *undrop)
{
    int go[2];
    pid_t pid;
    SYS(pipe(go));
    int c = start_peer(send_twice, go[0], &pid);
    setsockopt_int(c, IPPROTO_TCP, TCP_USER_TIMEOUT, 1000);
    read_pattern(c, 0, 100, "reader, before");
    dark_for(drop, undrop, 3);
    SYS(write(go[1], "g", 1));
    read_pattern(c, 100, 100, "reader, after the outage");
    char rest[16];
    CHECK(read_to_eof(c, rest, sizeof rest, 10000) == 0, "reader: bytes after the 200");
    end_peer(c, pid, "reader");
    printf("ok: reader: a TCP_USER_TIMEOUT of 1 s and a path dark for 3 s: all 200 bytes and "
           "the end read\n");
}

/* writer's peer: reads to the end, tells how much came (fd) */
static void drain(int a, int got)
{
    uint64_t n = pattern_drain(a, FIRST + MORE, 15000, "peer");
    if (write(got, &n, sizeof n) != sizeof n)
        _exit(1);
}

static void writer(const char *drop, const char *undrop)
{
    int got[2];
    pid_t pid;
    SYS(pipe(got));
    int c = start_peer(drain, got[1], &pid);
    setsockopt_int(c, SOL_SOCKET, SO_KEEPALIVE, 1);
    setsockopt_int(c, IPPROTO_TCP, TCP_KEEPIDLE, 1);
    setsockopt_int(c, IPPROTO_TCP, TCP_KEEPINTVL, 1);
    setsockopt_int(c, IPPROTO_TCP, TCP_KEEPCNT, 1);
    run(drop);
    write_pattern(c, 0, FIRST, "writer, into the dark");
    sleep_s(4);
    run(undrop);
    write_pattern(c, FIRST, MORE, "writer, after the outage");
    SYS(shutdown(c, SHUT_WR));
    uint64_t n = 0;
    CHECK(poll_for(got[0], POLLIN, 20000) & POLLIN, "writer: the peer read nothing in 20 s");
    CHECK(read(got[0], &n, sizeof n) == sizeof n, "writer: the peer failed");
    CHECK(n == FIRST + MORE, "writer: the peer read %llu of %d bytes", (unsigned long long)n,
          FIRST + MORE);
    end_peer(c, pid, "writer");
    printf("ok: writer: keepalive 1 + 1 x 1 s and 64 KiB sent into a path dark for 4 s: the "
           "peer read all %d bytes\n", FIRST + MORE);
}

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[1], "reader") && strcmp(argv[1], "writer"))) {
        fprintf(stderr, "usage: prog_outage reader|writer DROP UNDROP\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    watchdog(40);
    if (!strcmp(argv[1], "reader"))
        reader(argv[2], argv[3]);
    else
        writer(argv[2], argv[3]);
    return 0;
}
