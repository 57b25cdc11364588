/*
 * prog_closeunread: a close() with the peer's bytes unread, as the other
 * end of a TCP connection sees it.
 *
 * Linux's close() of a socket with received bytes unread sends a reset,
 * not a FIN (tcp_close()); after a shutdown(SHUT_WR) or SHUT_RDWR its FIN
 * left at the shutdown, so the peer gets the FIN, then the reset. A peer
 * in CLOSE_WAIT when a reset comes (the FIN in first) reads EOF after the
 * bytes, and SO_ERROR says EPIPE (tcp_reset(); tcp_recvmsg() says EOF once
 * SOCK_DONE is set). Java's Socket.close() is that shutdown and close. A
 * peer that got no FIN first reads ECONNRESET, and its writes fail with
 * ECONNRESET, never EPIPE (nor SIGPIPE, which kills a server that left it
 * at its default):
 *
 *   shutclose SIZE GAP: A, a forked child, writes SIZE bytes, then
 *             shutdown(SHUT_WR) and, GAP ms later, close() with B's 6
 *             bytes unread; B reads 300 ms later: every byte, then EOF,
 *             SO_ERROR EPIPE (0, 20 ms; 1,000 and 100,000 bytes);
 *   echo      20 times: B echoes all it reads, writing without blocking;
 *             A writes up to 1 MB, reads 10,000 bytes of the echo and
 *             close()s: B's reads or writes end with ECONNRESET, never
 *             EPIPE or EOF (SIGPIPE ignored here, to see the errno).
 *
 * Under the shim before 2026-11-29: shutclose's B read ECONNRESET after
 * the bytes (no gap) or SO_ERROR 0 (a gap: no reset was sent at all), and
 * echo's B saw EPIPE, or EOF, in about 1 connection in 10.
 *
 * Prints "ok:" lines and "transport: KIND"; exit 1 with a "FAIL:" line,
 * 3 if the watchdog (60 s) fired.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_closeunread";

#define IO_MS 10000

static void shutclose(size_t size, int gap_ms)
{
    int l = listener_lo(0, 4);
    unsigned port = port_of_fd(l);
    int go[2];
    SYS(pipe(go));
    pid_t k = fork();
    SYS(k);
    if (k == 0) {
        close(l);
        close(go[1]);
        int a = connect_lo(port);
        char b;
        if (read(go[0], &b, 1) != 1) /* B's bytes are in */
            _exit(2);
        static char buf[100000];
        memset(buf, 'a', sizeof buf);
        write_exact(a, buf, size);
        SYS(shutdown(a, SHUT_WR));
        if (gap_ms)
            usleep((useconds_t)gap_ms * 1000);
        SYS(close(a));
        _exit(0);
    }
    close(go[0]);
    kill_on_fail(k);
    int b = accept_ready(l, IO_MS);
    printf("transport: %s\n", fd_transport(b));
    write_exact(b, "unread", 6);
    usleep(50000);
    SYS(write(go[1], "g", 1) == 1 ? 0 : -1);
    int st = reap_within(k, IO_MS, "A");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "A ended with status %d", st);
    usleep(300000);
    static char rb[65536];
    size_t n = 0;
    ssize_t r;
    while ((r = read(b, rb, sizeof rb)) > 0)
        n += (size_t)r;
    int e = errno;
    CHECK(n == size, "shutclose %zu, gap %d ms: read %zu bytes, then %s", size, gap_ms, n,
          r == 0 ? "EOF" : strerror(e));
    CHECK(r == 0, "shutclose %zu, gap %d ms: after the %zu bytes read said %s, not EOF", size,
          gap_ms, n, strerror(e));
    int soerr = so_error(b);
    CHECK(soerr == EPIPE, "shutclose %zu, gap %d ms: SO_ERROR after the EOF %s, not EPIPE", size,
          gap_ms, soerr ? strerror(soerr) : "0");
    close(b);
    close(l);
    close(go[1]);
    printf("ok: shutclose %zu bytes, gap %d ms: the peer read them all, then EOF; SO_ERROR EPIPE\n",
           size, gap_ms);
}

/* B's side of one echo connection: what its reads and writes ended with
 * ("read:ECONNRESET", "write:EPIPE", "EOF", ...). */
static void echo_end(int b, char *out, size_t cap)
{
    static char buf[65536];
    size_t held = 0;
    SYS(fcntl(b, F_SETFL, O_NONBLOCK));
    for (;;) {
        struct pollfd p = {.fd = b, .events = POLLIN | (held ? POLLOUT : 0)};
        int r = poll(&p, 1, IO_MS);
        SYS(r);
        CHECK(r == 1, "echo: nothing for %d ms", IO_MS);
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t g = held < sizeof buf ? read(b, buf + held, sizeof buf - held) : 0;
            if (held < sizeof buf && g == 0) {
                snprintf(out, cap, "EOF");
                return;
            }
            if (g < 0 && errno != EAGAIN) {
                snprintf(out, cap, "read:%s", strerror(errno));
                return;
            }
            if (g > 0)
                held += (size_t)g;
        }
        if (held && (p.revents & POLLOUT)) {
            ssize_t w = write(b, buf, held);
            if (w < 0 && errno != EAGAIN) {
                snprintf(out, cap, "write:%s", strerror(errno));
                return;
            }
            if (w > 0) {
                memmove(buf, buf + w, held - (size_t)w);
                held -= (size_t)w;
            }
        }
    }
}

static void echo(void)
{
    enum { ROUNDS = 20, MB = 1000 * 1000, KEPT = 10000 };
    int l = listener_lo(0, 4);
    unsigned port = port_of_fd(l);
    int bad = 0;
    char first_bad[64] = "";
    for (int i = 0; i < ROUNDS; i++) {
        int a = connect_lo(port);
        int b = accept_ready(l, IO_MS);
        if (i == 0)
            printf("transport: %s\n", fd_transport(b));
        pid_t k = fork();
        SYS(k);
        if (k == 0) { /* A: the client */
            close(b);
            close(l);
            static char buf[65536];
            memset(buf, 'x', sizeof buf);
            SYS(fcntl(a, F_SETFL, O_NONBLOCK));
            for (size_t sent = 0; sent < MB;) {
                ssize_t w = write(a, buf, sizeof buf);
                if (w <= 0)
                    break;
                sent += (size_t)w;
            }
            SYS(fcntl(a, F_SETFL, 0));
            size_t got = 0;
            while (got < KEPT) {
                ssize_t r = read(a, buf, KEPT - got);
                if (r <= 0)
                    _exit(2);
                got += (size_t)r;
            }
            close(a); /* with the rest of the echo unread */
            _exit(0);
        }
        close(a);
        kill_on_fail(k);
        char end[64];
        echo_end(b, end, sizeof end);
        int st = reap_within(k, IO_MS, "A");
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "echo %d: A ended with status %d", i, st);
        if (strcmp(end, "read:Connection reset by peer") != 0 &&
            strcmp(end, "write:Connection reset by peer") != 0) {
            if (!bad)
                snprintf(first_bad, sizeof first_bad, "%s", end);
            bad++;
        }
        close(b);
    }
    close(l);
    CHECK(bad == 0, "echo: %d of %d connections ended otherwise than ECONNRESET (first: %s)", bad,
          ROUNDS, first_bad);
    printf("ok: echo: %d of %d closes with the echo unread ended the echo with ECONNRESET\n",
           ROUNDS, ROUNDS);
}

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, 60);
    signal(SIGPIPE, SIG_IGN);
    shutclose(1000, 0);
    shutclose(100000, 0);
    shutclose(1000, 20);
    shutclose(100000, 20);
    echo();
    return 0;
}
