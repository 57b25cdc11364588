/*
 * prog_accept4: fd flags on sockets made by socket() and accept4().
 *
 *   prog_accept4              run every check below; exit 0 iff all hold
 *
 * For IPv4 and IPv6 on loopback:
 *   - socket() with SOCK_NONBLOCK|SOCK_CLOEXEC gives O_NONBLOCK (F_GETFL) and
 *     FD_CLOEXEC (F_GETFD); without flags, neither; each alone, only itself.
 *   - on the non-blocking listener accept4() with nothing pending says
 *     EAGAIN, and poll() reports POLLIN once a client has connected.
 *   - accept4(SOCK_NONBLOCK|SOCK_CLOEXEC), accept4(SOCK_NONBLOCK),
 *     accept4(SOCK_CLOEXEC), accept4(0) and accept() give exactly the flags
 *     asked for, none inherited from the non-blocking listener; an unknown
 *     flag is EINVAL.
 *   - each accepted fd reports the connecting client's address (family,
 *     length, address and port = the client's getsockname()), or none when
 *     asked for none, and carries that client's bytes; a non-blocking
 *     accepted fd with nothing to read says EAGAIN.
 *
 * Prints one "ok:" line per check and "transport: KIND" for the accepted
 * fds (tcp = a kernel TCP socket).  Exit 0 iff every check held; 1 with a
 * "FAIL:" line otherwise; 3 if the watchdog (60 s) fired.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 60
#define EVENT_MS 5000 /* bound on every readiness wait */

const char *prog_name = "prog_accept4";

/* --- the checks ---------------------------------------------------------- */

/* "nonblock=N cloexec=N" of fd, and checks them against want. */
static void check_flags(int fd, bool nonblock, bool cloexec, const char *what)
{
    int fl = fcntl(fd, F_GETFL);
    int fdf = fcntl(fd, F_GETFD);
    SYS(fl);
    SYS(fdf);
    bool nb = (fl & O_NONBLOCK) != 0, ce = (fdf & FD_CLOEXEC) != 0;
    CHECK(nb == nonblock && ce == cloexec,
          "%s: O_NONBLOCK %d FD_CLOEXEC %d, want O_NONBLOCK %d FD_CLOEXEC %d", what, nb, ce,
          nonblock, cloexec);
    printf("ok: %s: O_NONBLOCK %d, FD_CLOEXEC %d\n", what, nb, ce);
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family || port_of(a) != port_of(b))
        return false;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
}

static void check_socket_flags(int family)
{
    char what[64];
    static const struct { int flags; const char *name; } cases[] = {
        { 0, "socket()" },
        { SOCK_NONBLOCK, "socket(SOCK_NONBLOCK)" },
        { SOCK_CLOEXEC, "socket(SOCK_CLOEXEC)" },
        { SOCK_NONBLOCK | SOCK_CLOEXEC, "socket(SOCK_NONBLOCK|SOCK_CLOEXEC)" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int fd = socket(family, SOCK_STREAM | cases[i].flags, 0);
        SYS(fd);
        snprintf(what, sizeof what, "%s %s", fam_name(family), cases[i].name);
        check_flags(fd, cases[i].flags & SOCK_NONBLOCK, cases[i].flags & SOCK_CLOEXEC, what);
        close(fd);
    }
}

enum { N_CASES = 6 };

static void check_accept(int family)
{
    static const struct { int flags; bool use_accept, want_addr; const char *name; } cases[N_CASES] = {
        { SOCK_NONBLOCK | SOCK_CLOEXEC, false, true, "accept4(SOCK_NONBLOCK|SOCK_CLOEXEC)" },
        { SOCK_NONBLOCK, false, true, "accept4(SOCK_NONBLOCK)" },
        { SOCK_CLOEXEC, false, false, "accept4(SOCK_CLOEXEC), no address" },
        { 0, false, true, "accept4(0)" },
        { 0, true, true, "accept()" },
        { 0, true, false, "accept(), no address" },
    };
    struct sockaddr_storage la, ca[N_CASES];
    socklen_t llen = loopback(family, 0, &la);
    int l = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    SYS(l);
    SYS(bind(l, (struct sockaddr *)&la, llen));
    SYS(listen(l, 16));
    socklen_t got = sizeof la;
    SYS(getsockname(l, (struct sockaddr *)&la, &got));

    int r = accept4(l, NULL, NULL, SOCK_NONBLOCK);
    CHECK(r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK),
          "%s: accept4 on an idle non-blocking listener: %s, want EAGAIN", fam_name(family),
          r >= 0 ? "an fd" : strerror(errno));
    printf("ok: %s: accept4() on the idle non-blocking listener -> EAGAIN\n", fam_name(family));
    r = accept4(l, NULL, NULL, 0x4000000);
    CHECK(r == -1 && errno == EINVAL, "%s: accept4 with an unknown flag: %s, want EINVAL",
          fam_name(family), r >= 0 ? "an fd" : strerror(errno));
    printf("ok: %s: accept4() with an unknown flag -> EINVAL\n", fam_name(family));

    for (int i = 0; i < N_CASES; i++) {
        int c = socket(family, SOCK_STREAM, 0);
        SYS(c);
        SYS(connect(c, (struct sockaddr *)&la, llen));
        got = sizeof ca[i];
        SYS(getsockname(c, (struct sockaddr *)&ca[i], &got));
        char tag = (char)('A' + i);
        CHECK(write(c, &tag, 1) == 1, "write: %s", strerror(errno));

        struct pollfd p = { .fd = l, .events = POLLIN };
        int n = poll(&p, 1, EVENT_MS);
        SYS(n);
        CHECK(n == 1 && (p.revents & POLLIN), "%s: listener not readable within %d ms of a "
              "connect", fam_name(family), EVENT_MS);

        struct sockaddr_storage peer;
        memset(&peer, 0xa5, sizeof peer);
        socklen_t plen = sizeof peer;
        struct sockaddr *pa = cases[i].want_addr ? (struct sockaddr *)&peer : NULL;
        socklen_t *pl = cases[i].want_addr ? &plen : NULL;
        int a = cases[i].use_accept ? accept(l, pa, pl) : accept4(l, pa, pl, cases[i].flags);
        SYS(a);
        char what[96];
        snprintf(what, sizeof what, "%s %s", fam_name(family), cases[i].name);
        check_flags(a, cases[i].flags & SOCK_NONBLOCK, cases[i].flags & SOCK_CLOEXEC, what);
        if (cases[i].want_addr) {
            CHECK(plen == llen, "%s: address length %u, want %u", what, (unsigned)plen,
                  (unsigned)llen);
            CHECK(same_addr(&peer, &ca[i]), "%s: peer address (family %d port %u) is not the "
                  "client's (family %d port %u)", what, peer.ss_family, port_of(&peer),
                  ca[i].ss_family, port_of(&ca[i]));
            printf("ok: %s: peer address = client's getsockname() (port %u)\n", what,
                   port_of(&peer));
        }
        char buf;
        read_exact(a, &buf, 1, EVENT_MS);
        CHECK(buf == tag, "%s: got byte %c, want %c (accepted the wrong connection?)", what, buf,
              tag);
        if (cases[i].flags & SOCK_NONBLOCK) {
            ssize_t rr = read(a, &buf, 1);
            CHECK(rr == -1 && (errno == EAGAIN || errno == EWOULDBLOCK),
                  "%s: read with nothing pending: %s, want EAGAIN", what,
                  rr >= 0 ? "data/EOF" : strerror(errno));
            printf("ok: %s: read() with nothing pending -> EAGAIN\n", what);
        }
        if (i == 0)
            printf("transport: %s (client), %s (accepted)\n", fd_transport(c), fd_transport(a));
        close(a);
        close(c);
    }
    close(l);
}

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, WATCHDOG_S);
    check_socket_flags(AF_INET);
    check_accept(AF_INET);
    if (family_usable(AF_INET6, "the IPv6 cases")) {
        check_socket_flags(AF_INET6);
        check_accept(AF_INET6);
    }
    printf("PASS: %s\n", prog_name);
    return 0;
}
