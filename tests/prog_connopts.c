/*
 * prog_connopts: the options whose effect depends on a live connection, as
 * Linux TCP gives them.
 *
 *   prog_connopts             run every check below; exit 0 iff all hold
 *
 *   - many options at once (13 IP- and TCP-level ones, as servers set a
 *     handful each) set on a connected socket, and before connect(), all
 *     read back as the kernel normalises them;
 *   - TCP_WINDOW_CLAMP on a connected socket: a window (not 0, the answer
 *     of an unconnected one), 0 refused with EINVAL, a small value raised
 *     to the kernel's floor, others read back;
 *   - SO_SNDBUF/SO_RCVBUF read back doubled, clamped to wmem_max/rmem_max;
 *     and they bound the connection: with 16 KiB each (the receiver's set
 *     on its listener, the sender's before connect) a sender to a peer that
 *     reads nothing gets no more than 512 KiB in before its socket stops
 *     being writable (Linux: ~100 KiB; rudp's own windows would take ~1 MiB);
 *   - TCP_NOTSENT_LOWAT 16 KiB (SO_SNDBUF 1 MiB): a sender to a peer that
 *     reads nothing loses POLLOUT once half of 16 KiB are unsent (tcp_poll()
 *     asks __sk_stream_is_writeable(sk, 1): notsent * 2 < lowat) and far
 *     below a full send buffer (SIOCOUTQNSD 8 KiB up to 80 KiB), and gets it
 *     back once the peer read everything (SIOCOUTQNSD 0 then);
 *   - TCP_CORK (set live, and before connect()): 100 bytes written wait for
 *     Linux's 200 ms ceiling (the peer gets them no sooner than 150 ms
 *     after the write: a lower bound, which a slow machine only lengthens),
 *     and uncorking sends what waits.
 *
 * Prints one "ok:" line per check and "transport: KIND" for the connected
 * fds. Exit 0 iff every check held; 1 with a "FAIL:" line otherwise; 3 if
 * the watchdog (90 s) fired.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 90
#define EVENT_MS 5000
/* no POLLOUT for this long: the sender is held (not a timing assertion:
 * the loop keeps writing whenever POLLOUT comes back) */
#define QUIET_MS 1000
#define CHUNK 4096
#define LOWAT 16384
#define SMALLBUF 16384

const char *prog_name = "prog_connopts";

/* ---- many options ---- */

static const struct many {
    int level, opt, val;
    const char *name;
} many[] = {
    {IPPROTO_IP, IP_TOS, 0x10, "IP_TOS"},
    {IPPROTO_IP, IP_TTL, 33, "IP_TTL"},
    {IPPROTO_IP, IP_RECVERR, 1, "IP_RECVERR"},
    {IPPROTO_IP, IP_FREEBIND, 1, "IP_FREEBIND"},
    {IPPROTO_IP, IP_RECVTOS, 1, "IP_RECVTOS"},
    {IPPROTO_IP, IP_RECVTTL, 1, "IP_RECVTTL"},
    {IPPROTO_IP, IP_PKTINFO, 1, "IP_PKTINFO"},
    {IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO, "IP_MTU_DISCOVER"},
    {IPPROTO_TCP, TCP_SYNCNT, 3, "TCP_SYNCNT"},
    {IPPROTO_TCP, TCP_LINGER2, 10, "TCP_LINGER2"},
    {IPPROTO_TCP, TCP_THIN_LINEAR_TIMEOUTS, 1, "TCP_THIN_LINEAR_TIMEOUTS"},
    {IPPROTO_TCP, TCP_NOTSENT_LOWAT, 100000, "TCP_NOTSENT_LOWAT"},
    {IPPROTO_TCP, TCP_WINDOW_CLAMP, 50000, "TCP_WINDOW_CLAMP"},
};
#define NMANY (sizeof many / sizeof many[0])

static void set_many(int fd)
{
    for (size_t i = 0; i < NMANY; i++)
        setsockopt_int(fd, many[i].level, many[i].opt, many[i].val);
}

static void check_many(int fd, const char *when)
{
    for (size_t i = 0; i < NMANY; i++) {
        int v = getsockopt_int(fd, many[i].level, many[i].opt);
        CHECK(v == many[i].val, "%s %s: %s reads %d, want %d", when, fd_transport(fd),
              many[i].name, v, many[i].val);
    }
}

static void check_many_options(void)
{
    int c, a;
    loopback_pair(AF_INET, &c, &a);
    printf("transport: %s (client), %s (accepted)\n", fd_transport(c), fd_transport(a));
    set_many(c);
    check_many(c, "set on a connected socket:");
    printf("ok: %zu options set on a connected socket all read back\n", NMANY);
    close(c);
    close(a);

    struct sockaddr_storage sa;
    socklen_t sl;
    int l = bound_loopback(AF_INET, &sa, &sl);
    SYS(listen(l, 4));
    c = socket(AF_INET, SOCK_STREAM, 0);
    SYS(c);
    set_many(c);
    SYS(connect(c, (struct sockaddr *)&sa, sl));
    a = accept_ready(l, EVENT_MS);
    printf("transport: %s (client), %s (accepted)\n", fd_transport(c), fd_transport(a));
    check_many(c, "set before connect():");
    printf("ok: ... and set before connect(), after it\n");
    close(c);
    close(a);
    close(l);
}

/* ---- TCP_WINDOW_CLAMP ---- */

static void check_window_clamp(void)
{
    int c, a;
    loopback_pair(AF_INET, &c, &a);
    printf("transport: %s (client), %s (accepted)\n", fd_transport(c), fd_transport(a));
    int w = getsockopt_int(c, IPPROTO_TCP, TCP_WINDOW_CLAMP);
    CHECK(w > 0, "TCP_WINDOW_CLAMP on a connected socket reads %d, want a window", w);
    int zero = 0;
    errno = 0;
    int r = setsockopt(c, IPPROTO_TCP, TCP_WINDOW_CLAMP, &zero, sizeof zero);
    CHECK(r < 0 && errno == EINVAL, "TCP_WINDOW_CLAMP 0 on a connected socket: %d (%s), "
          "want EINVAL (tcp_set_window_clamp)", r, strerror(errno));
    setsockopt_int(c, IPPROTO_TCP, TCP_WINDOW_CLAMP, 100);
    int small = getsockopt_int(c, IPPROTO_TCP, TCP_WINDOW_CLAMP);
    CHECK(small > 100 && small < 4096, "TCP_WINDOW_CLAMP 100 reads %d, want the kernel's "
          "floor (SOCK_MIN_RCVBUF / 2)", small);
    setsockopt_int(c, IPPROTO_TCP, TCP_WINDOW_CLAMP, 40000);
    int v = getsockopt_int(c, IPPROTO_TCP, TCP_WINDOW_CLAMP);
    CHECK(v == 40000, "TCP_WINDOW_CLAMP 40000 reads %d", v);
    printf("ok: TCP_WINDOW_CLAMP on a connected socket: %d, 0 refused (EINVAL), 100 reads %d, "
           "40000 reads 40000\n", w, small);
    close(c);
    close(a);
}

/* ---- SO_SNDBUF / SO_RCVBUF ---- */

static int sysctl_int(const char *path)
{
    FILE *f = fopen(path, "r");
    CHECK(f, "%s: %s", path, strerror(errno));
    int v = 0;
    CHECK(fscanf(f, "%d", &v) == 1, "%s: no number", path);
    fclose(f);
    return v;
}

/* Writes CHUNK-byte pieces to non-blocking c while it polls writable,
 * until it stays unwritable for QUIET_MS and done(c) agrees (NULL: no
 * condition); returns the bytes written. At most max bytes. */
static size_t fill(int c, size_t max, int (*done)(int))
{
    static char buf[CHUNK];
    size_t total = 0;
    for (;;) {
        struct pollfd p = {.fd = c, .events = POLLOUT};
        int n = poll(&p, 1, QUIET_MS);
        SYS(n);
        if (n == 0) {
            if (!done || done(c))
                return total;
            continue;
        }
        ssize_t w = send(c, buf, sizeof buf, MSG_DONTWAIT | MSG_NOSIGNAL);
        CHECK(w > 0 || errno == EAGAIN, "write to a held peer: %s", strerror(errno));
        if (w > 0)
            total += (size_t)w;
        CHECK(total <= max, "more than %zu bytes written and the socket still writable", max);
    }
}

/* The receiver reads exactly n bytes. */
static void drain(int a, size_t n)
{
    static char buf[65536];
    size_t got = 0;
    while (got < n) {
        size_t want = n - got < sizeof buf ? n - got : sizeof buf;
        read_exact(a, buf, want, EVENT_MS);
        got += want;
    }
}

static void check_buffers(void)
{
    int wmax = sysctl_int("/proc/sys/net/core/wmem_max");
    int rmax = sysctl_int("/proc/sys/net/core/rmem_max");
    int c, a;
    loopback_pair(AF_INET, &c, &a);
    printf("transport: %s (client), %s (accepted)\n", fd_transport(c), fd_transport(a));
    setsockopt_int(c, SOL_SOCKET, SO_SNDBUF, 65536);
    setsockopt_int(c, SOL_SOCKET, SO_RCVBUF, 65536);
    int s = getsockopt_int(c, SOL_SOCKET, SO_SNDBUF), r = getsockopt_int(c, SOL_SOCKET, SO_RCVBUF);
    CHECK(s == 131072 && r == 131072, "SO_SNDBUF/SO_RCVBUF 65536 read %d/%d, want 131072 "
          "(socket(7): the kernel doubles)", s, r);
    setsockopt_int(c, SOL_SOCKET, SO_SNDBUF, 1 << 30);
    setsockopt_int(c, SOL_SOCKET, SO_RCVBUF, 1 << 30);
    s = getsockopt_int(c, SOL_SOCKET, SO_SNDBUF);
    r = getsockopt_int(c, SOL_SOCKET, SO_RCVBUF);
    CHECK(s == 2 * wmax && r == 2 * rmax, "SO_SNDBUF/SO_RCVBUF 1 GiB read %d/%d, want %d/%d "
          "(twice wmem_max/rmem_max)", s, r, 2 * wmax, 2 * rmax);
    printf("ok: SO_SNDBUF/SO_RCVBUF read back doubled, clamped to wmem_max/rmem_max\n");
    close(c);
    close(a);

    /* A peer that reads nothing, both buffers small. */
    struct sockaddr_storage sa;
    socklen_t sl;
    int l = bound_loopback(AF_INET, &sa, &sl);
    setsockopt_int(l, SOL_SOCKET, SO_RCVBUF, SMALLBUF);
    SYS(listen(l, 4));
    c = socket(AF_INET, SOCK_STREAM, 0);
    SYS(c);
    setsockopt_int(c, SOL_SOCKET, SO_SNDBUF, SMALLBUF);
    SYS(connect(c, (struct sockaddr *)&sa, sl));
    a = accept_ready(l, EVENT_MS);
    printf("transport: %s (client), %s (accepted)\n", fd_transport(c), fd_transport(a));
    size_t in = fill(c, 8u << 20, NULL);
    CHECK(in <= 512 * 1024, "%zu bytes went in with SO_SNDBUF and the peer's SO_RCVBUF at %d "
          "before the socket stopped being writable, want at most 512 KiB", in, SMALLBUF);
    drain(a, in);
    printf("ok: with SO_SNDBUF/SO_RCVBUF %d a held peer takes %zu KiB (at most 512), all "
           "delivered once read\n", SMALLBUF, in / 1024);
    close(c);
    close(a);
    close(l);
}

/* ---- TCP_NOTSENT_LOWAT ---- */

static int notsent(int fd)
{
    int v = -1;
    SYS(ioctl(fd, SIOCOUTQNSD, &v));
    return v;
}

static int lowat_reached(int fd)
{
    return notsent(fd) >= LOWAT / 2;
}

static void check_notsent_lowat(void)
{
    int c, a;
    loopback_pair(AF_INET, &c, &a);
    printf("transport: %s (client), %s (accepted)\n", fd_transport(c), fd_transport(a));
    setsockopt_int(c, SOL_SOCKET, SO_SNDBUF, 1 << 20); /* the send buffer is not the limit */
    setsockopt_int(c, IPPROTO_TCP, TCP_NOTSENT_LOWAT, LOWAT);
    int v = getsockopt_int(c, IPPROTO_TCP, TCP_NOTSENT_LOWAT);
    CHECK(v == LOWAT, "TCP_NOTSENT_LOWAT reads %d, want %d", v, LOWAT);
    size_t in = fill(c, 64u << 20, lowat_reached);
    int ns = notsent(c);
    CHECK(ns >= LOWAT / 2 && ns < LOWAT + 64 * 1024, "no POLLOUT with %d bytes unsent "
          "(SIOCOUTQNSD), want %d..%d (tcp_poll: writable while fewer than half of "
          "TCP_NOTSENT_LOWAT are unsent)", ns, LOWAT / 2, LOWAT + 64 * 1024);
    printf("ok: TCP_NOTSENT_LOWAT %d: POLLOUT gone with %d unsent (%zu KiB written)\n", LOWAT,
           ns, in / 1024);
    drain(a, in);
    struct pollfd p = {.fd = c, .events = POLLOUT};
    int n = poll(&p, 1, EVENT_MS);
    SYS(n);
    CHECK(n == 1 && (p.revents & POLLOUT), "no POLLOUT within %d ms once the peer read "
          "everything", EVENT_MS);
    ns = notsent(c);
    CHECK(ns == 0, "SIOCOUTQNSD %d once the peer read everything, want 0", ns);
    printf("ok: ... POLLOUT back once the peer read everything (SIOCOUTQNSD 0)\n");
    close(c);
    close(a);
}

/* ---- TCP_CORK ---- */

/* 100 bytes written on corked c reach a no sooner than the ceiling allows. */
static void check_corked_write(int c, int a, const char *how)
{
    char buf[100] = {0};
    double t0 = now_s();
    CHECK(write(c, buf, sizeof buf) == (ssize_t)sizeof buf, "write: %s", strerror(errno));
    read_exact(a, buf, sizeof buf, EVENT_MS);
    double ms = (now_s() - t0) * 1000;
    CHECK(ms >= 150, "%s: 100 corked bytes arrived after %.0f ms, want the 200 ms ceiling "
          "(tcp(7))", how, ms);
    printf("ok: TCP_CORK %s: 100 bytes held until the ceiling\n", how);
}

static void check_cork(void)
{
    int c, a;
    loopback_pair(AF_INET, &c, &a);
    printf("transport: %s (client), %s (accepted)\n", fd_transport(c), fd_transport(a));
    setsockopt_int(c, IPPROTO_TCP, TCP_CORK, 1);
    CHECK(getsockopt_int(c, IPPROTO_TCP, TCP_CORK) == 1, "TCP_CORK does not read 1");
    check_corked_write(c, a, "set on a connected socket");
    char buf[100] = {0};
    CHECK(write(c, buf, sizeof buf) == (ssize_t)sizeof buf, "write: %s", strerror(errno));
    setsockopt_int(c, IPPROTO_TCP, TCP_CORK, 0);
    CHECK(getsockopt_int(c, IPPROTO_TCP, TCP_CORK) == 0, "TCP_CORK does not read 0");
    read_exact(a, buf, sizeof buf, EVENT_MS);
    printf("ok: ... uncorking sends what waits\n");
    close(c);
    close(a);

    struct sockaddr_storage sa;
    socklen_t sl;
    int l = bound_loopback(AF_INET, &sa, &sl);
    SYS(listen(l, 4));
    c = socket(AF_INET, SOCK_STREAM, 0);
    SYS(c);
    setsockopt_int(c, IPPROTO_TCP, TCP_CORK, 1);
    SYS(connect(c, (struct sockaddr *)&sa, sl));
    a = accept_ready(l, EVENT_MS);
    printf("transport: %s (client), %s (accepted)\n", fd_transport(c), fd_transport(a));
    check_corked_write(c, a, "set before connect()");
    close(c);
    close(a);
    close(l);
}

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, WATCHDOG_S);
    check_many_options();
    check_window_clamp();
    check_buffers();
    check_notsent_lowat();
    check_cork();
    printf("all connopts checks passed\n");
    return 0;
}
