/*
 * prog_writeq: a send buffer set while connecting is the one the
 * connection has once connected, and bounds what the app may queue: the
 * pattern of libuv's tcp_write_queue_order test (uv_tcp_connect, then
 * uv_send_buffer_size(16 KiB) while the handshake is under way; once
 * connected, 1 KiB writes until one would block, to a peer that reads
 * nothing: some must stay queued, so that closing cancels them).
 *
 * Many fresh connections in a row (no sleeps), each: non-blocking connect,
 * SO_SNDBUF 16 KiB at once, poll for POLLOUT, SO_ERROR 0; then
 * getsockopt(SO_SNDBUF) must be what TCP says (32 KiB: the kernel
 * doubles). On the first two connections, each side in turn writes 1 KiB
 * at a time to the other, which reads nothing, waiting for POLLOUT, until
 * no POLLOUT comes for 0.5 s: what went must be at most the writer's
 * SO_SNDBUF + the reader's SO_RCVBUF (TCP here: 160 KiB of 160 KiB; the
 * shim 124-150 KiB of 240 KiB). The shim took all it was given (capped
 * at 304 KiB here; 8 MiB and more): the peer engine's unix end had the
 * default send buffer (208 KiB) and the window started at 256 KiB. On the
 * other connections, 1 KiB writes until one would block: how far they went
 * is printed ("info:"), not checked (it depends on how fast the engines
 * run).
 *
 * Under the shim the engine gave the app's end of the bridge its send
 * buffer back once established (shim_sndbuf_restore) with the size read
 * at connect(): an SO_SNDBUF the app set meanwhile was overwritten, and
 * the writes ran on into a buffer ten times larger, whenever the app's
 * setsockopt came before the engine's restore.
 *
 * Then libuv's tcp_write_in_a_row on M more fresh connections (in_a_row
 * above): under the shim the 1-byte write after the 10 MB one would block
 * on 6 to 8 of 20 connections (TCP: 0 of 300), as the app's unix socket
 * had net.core.wmem_default (212992) where TCP has 4 MiB here
 * (shim_tcp_sndbuf_default); 0 of 1,000 since.
 *
 *   prog_writeq [N [M]]    N connections (default 200), M (default 30)
 *
 * Prints "ok:" lines and "transport: KIND"; exit 1 with a "FAIL:" line,
 * 3 if the watchdog (120 s) fired.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_writeq";

/*
 * What a peer that reads nothing absorbs from `w` before it stops taking
 * more: 1 KiB non-blocking writes, waiting for POLLOUT (up to `quiet_ms`)
 * whenever one would block, until none comes or `cap` bytes went. TCP
 * stops at the receiver's queue (its SO_RCVBUF bounds it; the window is
 * half of it) plus the writer's SO_SNDBUF: libuv's tcp_write_queue_order
 * counts on it (the writes after the first that queued must stay queued
 * until close, so that closing cancels some).
 */
static long absorbed(int w, long cap, int quiet_ms, long *first)
{
    char buf[1024];
    memset(buf, 'a', sizeof buf);
    long total = 0;
    *first = -1;
    while (total <= cap) {
        ssize_t n = write(w, buf, sizeof buf);
        if (n > 0) {
            total += n;
            continue;
        }
        CHECK(n < 0 && errno == EAGAIN, "write: %s", n < 0 ? strerror(errno) : "0");
        if (*first < 0)
            *first = total;
        struct pollfd p = {.fd = w, .events = POLLOUT};
        int r = poll(&p, 1, quiet_ms);
        SYS(r);
        if (r == 0)
            break;
    }
    return total;
}

/* Both ways on one fresh connection (c connected, a accepted; both
 * non-blocking): each side writes to the other, which reads nothing. */
static void check_absorb(int round, int c, int a)
{
    int fds[2] = {c, a};
    const char *name[2] = {"connecting side", "accepting side"};
    for (int k = 0; k < 2; k++) {
        int w = fds[k], r = fds[1 - k];
        if (k == 1) /* as the connecting side had it (libuv's 16 KiB) */
            SYS(setsockopt(w, SOL_SOCKET, SO_SNDBUF, &(int){16 * 1024}, sizeof(int)));
        long bound = (long)getsockopt_int(w, SOL_SOCKET, SO_SNDBUF) +
                     getsockopt_int(r, SOL_SOCKET, SO_RCVBUF);
        long first;
        long got = absorbed(w, bound + 65536, 500, &first);
        /* TCP here takes exactly the bound (collapsing what waits unread
         * into full buffers): 16 KiB of slack for another kernel's rounding */
        CHECK(got <= bound + 16384, "round %d: a peer that reads nothing took %ld bytes from the %s, "
              "more than the writer's SO_SNDBUF + the reader's SO_RCVBUF (%ld): TCP's window "
              "stops it there, and libuv's writes that queued must stay queued", round, got,
              name[k], bound);
        printf("ok: round %d, %s: a peer that reads nothing took %ld bytes (<= %ld); "
               "the first write that would block came after %ld\n", round, name[k], got, bound,
               first);
    }
}

/*
 * libuv's tcp_write_in_a_row, on a fresh connection c whose peer a reads
 * 1 KiB at a time: a 10 MB write that cannot all go at once, then a 1-byte
 * write queued behind it; when a write() takes the big one's last bytes,
 * the 1-byte write that follows at once must go too (libuv writes the next
 * request in the same pass and asserts, in the big one's callback, that
 * nothing is left queued). Returns 1 if it went, 0 if it would block.
 */
static int in_a_row(int c, int a)
{
    static char big[10 * 1024 * 1024];
    size_t off = 0, want = sizeof big + 1, got = 0;
    while (got < want) {
        if (off < sizeof big) {
            ssize_t w = write(c, big + off, sizeof big - off);
            CHECK(w > 0 || errno == EAGAIN, "write: %s", strerror(errno));
            if (w > 0 && (off += (size_t)w) == sizeof big) {
                w = write(c, "A", 1);
                CHECK(w == 1 || errno == EAGAIN, "write: %s", strerror(errno));
                if (w != 1)
                    return 0;
            }
        }
        struct pollfd p[2] = {{.fd = a, .events = POLLIN},
                              {.fd = c, .events = off < sizeof big ? POLLOUT : 0}};
        CHECK(poll(p, 2, 10000) > 0, "nothing moved in 10 s (%zu of %zu read)", got, want);
        for (int k = 0; k < 32 && (p[0].revents & POLLIN); k++) {
            char buf[1024];
            ssize_t r = read(a, buf, sizeof buf);
            if (r < 0 && errno == EAGAIN)
                break;
            CHECK(r > 0, "read: %s", r < 0 ? strerror(errno) : "EOF");
            got += (size_t)r;
        }
    }
    return 1;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    watchdog(120);
    int rounds = argc > 1 ? atoi(argv[1]) : 200;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    SYS(l);
    unsigned port = bind_lo(l, 0);
    SYS(listen(l, 128));
    struct sockaddr_storage ss;
    socklen_t sl = loopback(AF_INET, port, &ss);
    int want = 16 * 1024, maxw = 0;
    int shown_tcp = -1, over = 0, first_over = -1;
    int in_a_row_rounds = argc > 2 ? atoi(argv[2]) : 30;
    for (int i = 0; i < rounds; i++) {
        int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        SYS(c);
        int r = connect(c, (struct sockaddr *)&ss, sl);
        CHECK(r == 0 || errno == EINPROGRESS, "connect: %s", strerror(errno));
        SYS(setsockopt(c, SOL_SOCKET, SO_SNDBUF, &want, sizeof want));
        if (shown_tcp < 0)
            shown_tcp = getsockopt_int(c, SOL_SOCKET, SO_SNDBUF);
        struct pollfd p = {.fd = c, .events = POLLOUT};
        CHECK(poll(&p, 1, 10000) == 1, "round %d: connect not done in 10 s", i);
        CHECK(so_error(c) == 0, "round %d: SO_ERROR %d", i, so_error(c));
        int a = accept_ready(l, 10000);
        if (i == 0)
            printf("transport: %s\n", fd_transport(c));
        int got = getsockopt_int(c, SOL_SOCKET, SO_SNDBUF);
        CHECK(got == 2 * want, "round %d: SO_SNDBUF %d once connected, not the %d set while "
              "connecting (%d right after the set)", i, got, 2 * want, shown_tcp);
        char buf[1024];
        memset(buf, 'w', sizeof buf);
        int n = 0;
        if (i < 2) {
            SYS(fcntl(a, F_SETFL, O_NONBLOCK));
            check_absorb(i, c, a);
            n = -1; /* not the 100 writes below: what they measure is checked */
        }
        for (; n >= 0 && n < 100; n++) {
            ssize_t w = write(c, buf, sizeof buf);
            if (w < (ssize_t)sizeof buf) {
                CHECK(w >= 0 || errno == EAGAIN, "round %d: write: %s", i, strerror(errno));
                break;
            }
        }
        if (n == 100 && !over++)
            first_over = i;
        if (n > maxw)
            maxw = n;
        close(c);
        close(a);
    }
    for (int i = 0; i < in_a_row_rounds; i++) {
        int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        SYS(c);
        int r = connect(c, (struct sockaddr *)&ss, sl);
        CHECK(r == 0 || errno == EINPROGRESS, "connect: %s", strerror(errno));
        struct pollfd p = {.fd = c, .events = POLLOUT};
        CHECK(poll(&p, 1, 10000) == 1, "in a row %d: connect not done in 10 s", i);
        CHECK(so_error(c) == 0, "in a row %d: SO_ERROR %d", i, so_error(c));
        int a = accept_ready(l, 10000);
        SYS(fcntl(a, F_SETFL, O_NONBLOCK));
        CHECK(in_a_row(c, a) == 1, "in a row %d: the 1-byte write right after the write that "
              "took a 10 MB buffer's last bytes would block (TCP takes it: libuv's "
              "tcp_write_in_a_row asserts it)", i);
        close(c);
        close(a);
    }
    printf("ok: %d connections: a 1-byte write right after a 10 MB one went\n", in_a_row_rounds);
    printf("ok: %d connections: SO_SNDBUF set while connecting kept (%d)\n", rounds, 2 * want);
    printf("info: 1 KiB writes blocked after at most %d KiB; %d of %d connections took 100 "
           "without blocking (the first: %d)\n", maxw, over, rounds, first_over);
    return 0;
}
