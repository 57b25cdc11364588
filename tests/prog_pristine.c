/*
 * prog_pristine: a client socket's options reach its connection however
 * they were set before connect(), also where the shim reads none back
 * (shim/state/pristine.c: a socket no option was set on since socket()).
 *
 *   prog_pristine          run every case below; exit 0 iff all hold
 *   prog_pristine plain N  N connects of sockets nobody set an option on,
 *                          each exchanging a byte (t_prog_pristine.sh counts
 *                          the shim's reads of their options under strace)
 *   prog_pristine opts N   one connection, N rounds of getsockopt(SO_ERROR),
 *                          getsockname and getpeername (t_prog_pristine.sh
 *                          counts the shim's signal mask changes)
 *
 * Each case makes a client socket, sets options one way, connects it to a
 * listener of this program over IPv4 loopback, and checks the connected
 * socket's options and that a byte goes each way:
 *   - none set: TCP_NODELAY 0, SO_KEEPALIVE 0, SO_RCVTIMEO 0, no owner;
 *   - set through a dup() of the socket, closed before connect();
 *   - set through syscall(SYS_setsockopt) on a dup;
 *   - F_SETOWN through fcntl() on a dup, and FIOSETOWN through ioctl();
 *   - a socket made before another, options set on it, then dup2()ed over
 *     the later one (whose number the program then connects);
 *   - bound through a dup to 127.0.0.1, port chosen by the kernel: the
 *     connected socket's own address is that port;
 *   - SO_RCVTIMEO set through a dup: a read with nothing to read ends
 *     with EAGAIN after about that long (0.2 s), not never.
 * The same checks hold over kernel TCP (t_prog_pristine.sh runs both).
 * Prints "ok:" lines and "transport: KIND"; exit 1 with "FAIL:" otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_pristine";

static int lst;
static unsigned port;

static void do_connect(int s)
{
    struct sockaddr_in a = ipv4_addr("127.0.0.1", port);
    SYS(connect(s, (struct sockaddr *)&a, sizeof a));
}

/* One byte each way between connected s and the listener's next client. */
static int exchange(int s)
{
    int a = accept_ready(lst, 10000);
    CHECK(a >= 0, "accept: %s", strerror(errno));
    char c = 'x';
    write_exact(s, &c, 1);
    read_exact(a, &c, 1, 10000);
    write_exact(a, &c, 1);
    read_exact(s, &c, 1, 10000);
    return a;
}

static long rcvtimeo_us(int s)
{
    struct timeval tv;
    socklen_t l = sizeof tv;
    SYS(getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, &l));
    return tv.tv_sec * 1000000L + tv.tv_usec;
}

static void set_rcvtimeo(int s, long us)
{
    struct timeval tv = {us / 1000000L, us % 1000000L};
    SYS(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
}

/* s's options as the case set them (1) or as a new socket has them (0). */
static void check_opts(int s, int set, const char *what)
{
    CHECK(getsockopt_int(s, IPPROTO_TCP, TCP_NODELAY) == set, "%s: TCP_NODELAY %d, want %d", what,
          getsockopt_int(s, IPPROTO_TCP, TCP_NODELAY), set);
    CHECK(getsockopt_int(s, SOL_SOCKET, SO_KEEPALIVE) == set, "%s: SO_KEEPALIVE %d, want %d",
          what, getsockopt_int(s, SOL_SOCKET, SO_KEEPALIVE), set);
    CHECK(rcvtimeo_us(s) == (set ? 200000 : 0), "%s: SO_RCVTIMEO %ld us", what, rcvtimeo_us(s));
    printf("ok: %s: TCP_NODELAY, SO_KEEPALIVE and SO_RCVTIMEO as %s\n", what,
           set ? "set" : "a new socket's");
}

static void set_opts(int d)
{
    setsockopt_int(d, IPPROTO_TCP, TCP_NODELAY, 1);
    setsockopt_int(d, SOL_SOCKET, SO_KEEPALIVE, 1);
    set_rcvtimeo(d, 200000);
}

/* A read with nothing to read: EAGAIN after the 0.2 s timeout. */
static void check_timeout(int s, const char *what)
{
    char c;
    double t0 = now_s();
    ssize_t r = read(s, &c, 1);
    double took = now_s() - t0;
    CHECK(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK), "%s: read gave %zd (%s)", what, r,
          r < 0 ? strerror(errno) : "data");
    CHECK(took >= 0.15 && took < 5, "%s: the read ended after %.3f s", what, took);
    printf("ok: %s: a read with nothing to read ended with EAGAIN (SO_RCVTIMEO)\n", what);
}

static void finish(int s, int a, const char *what)
{
    printf("transport: %s\n", fd_transport(s));
    close(a);
    close(s);
    printf("ok: %s: a byte each way\n", what);
}

static void case_none(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    SYS(s);
    do_connect(s);
    int a = exchange(s);
    check_opts(s, 0, "none set");
    int own = fcntl(s, F_GETOWN);
    CHECK(own == 0, "none set: F_GETOWN %d", own);
    finish(s, a, "none set");
}

static void case_dup(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    SYS(s);
    int d = dup(s);
    SYS(d);
    set_opts(d);
    close(d);
    do_connect(s);
    int a = exchange(s);
    check_opts(s, 1, "set on a dup");
    check_timeout(s, "set on a dup");
    finish(s, a, "set on a dup");
}

static void case_syscall(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    SYS(s);
    int d = dup(s);
    SYS(d);
    int one = 1;
    SYS((int)syscall(SYS_setsockopt, d, IPPROTO_TCP, TCP_NODELAY, &one, (socklen_t)sizeof one));
    SYS((int)syscall(SYS_setsockopt, d, SOL_SOCKET, SO_KEEPALIVE, &one, (socklen_t)sizeof one));
    struct timeval tv = {0, 200000};
    SYS((int)syscall(SYS_setsockopt, d, SOL_SOCKET, SO_RCVTIMEO, &tv, (socklen_t)sizeof tv));
    close(d);
    do_connect(s);
    int a = exchange(s);
    check_opts(s, 1, "set by syscall() on a dup");
    finish(s, a, "set by syscall() on a dup");
}

static void case_owner(int by_ioctl)
{
    const char *what = by_ioctl ? "owner by ioctl(FIOSETOWN) on a dup" : "owner by F_SETOWN on a dup";
    int s = socket(AF_INET, SOCK_STREAM, 0);
    SYS(s);
    int d = dup(s);
    SYS(d);
    int me = getpid();
    if (by_ioctl)
        SYS(ioctl(d, FIOSETOWN, &me));
    else
        SYS(fcntl(d, F_SETOWN, me));
    close(d);
    do_connect(s);
    int a = exchange(s);
    int own = fcntl(s, F_GETOWN);
    CHECK(own == me, "%s: F_GETOWN %d, want %d", what, own, me);
    printf("ok: %s: F_GETOWN is this process\n", what);
    finish(s, a, what);
}

static void case_dup2(void)
{
    int t = socket(AF_INET, SOCK_STREAM, 0);
    SYS(t);
    set_opts(t);
    int s = socket(AF_INET, SOCK_STREAM, 0); /* made after the options were set */
    SYS(s);
    SYS(dup2(t, s));
    close(t);
    do_connect(s);
    int a = exchange(s);
    check_opts(s, 1, "an earlier socket dup2()ed over");
    finish(s, a, "an earlier socket dup2()ed over");
}

static void case_bound(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    SYS(s);
    int d = dup(s);
    SYS(d);
    unsigned bound = bind_lo(d, 0);
    close(d);
    do_connect(s);
    int a = exchange(s);
    struct sockaddr_in me;
    socklen_t ml = sizeof me;
    SYS(getsockname(s, (struct sockaddr *)&me, &ml));
    CHECK(ntohs(me.sin_port) == bound, "bound through a dup: own port %u, bound %u",
          ntohs(me.sin_port), bound);
    printf("ok: bound through a dup: the connection's own port is the one bound\n");
    finish(s, a, "bound through a dup");
}

static int plain(int n)
{
    for (int i = 0; i < n; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        SYS(s);
        do_connect(s);
        int a = exchange(s);
        printf("transport: %s\n", fd_transport(s));
        close(a);
        close(s);
    }
    printf("ok: %d connects of untouched sockets, a byte each way\n", n);
    return 0;
}

/* One connection, n rounds of calls that write to this program's memory
 * (getsockopt, getsockname, getpeername): t_prog_pristine.sh counts the
 * shim's signal mask changes around them. */
static int opts(int n)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    SYS(s);
    do_connect(s);
    int a = exchange(s);
    printf("transport: %s\n", fd_transport(s));
    for (int i = 0; i < n; i++) {
        struct sockaddr_in me, peer;
        socklen_t ml = sizeof me, pl = sizeof peer;
        CHECK(so_error(s) == 0, "SO_ERROR of a connected socket");
        SYS(getsockname(s, (struct sockaddr *)&me, &ml));
        SYS(getpeername(s, (struct sockaddr *)&peer, &pl));
        CHECK(me.sin_port != 0 && peer.sin_port != 0, "the connection's ports");
    }
    close(a);
    close(s);
    printf("ok: %d rounds of getsockopt, getsockname and getpeername on a connection\n", n);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    watchdog(60);
    lst = listener_lo(0, 16);
    struct sockaddr_in la;
    socklen_t ll = sizeof la;
    SYS(getsockname(lst, (struct sockaddr *)&la, &ll));
    port = ntohs(la.sin_port);
    if (argc == 3 && strcmp(argv[1], "plain") == 0)
        return plain(atoi(argv[2]));
    if (argc == 3 && strcmp(argv[1], "opts") == 0)
        return opts(atoi(argv[2]));
    CHECK(argc == 1, "usage: prog_pristine [plain N | opts N]");
    case_none();
    case_dup();
    case_syscall();
    case_owner(0);
    case_owner(1);
    case_dup2();
    case_bound();
    case_none(); /* after all that, a socket nobody touched again */
    printf("ok: all cases\n");
    return 0;
}
