/*
 * prog_pktinfo: a wildcard listener's connections, as Linux TCP has them:
 * each accepted socket is named by the address the client connected to,
 * and its segments leave from that address.
 *
 *   prog_pktinfo          run every check below; exit 0 iff all hold
 *   prog_pktinfo marked PORT
 *                         listen on 0.0.0.0:PORT, connect once to
 *                         127.0.0.2:PORT, set IP_TOS 0x28 and IP_TTL 9 on
 *                         the accepted socket (the listener has neither),
 *                         carry 64 KiB and close
 *                         (integration/tests/api/t_prog_pktinfo.sh
 *                         captures the port meanwhile)
 *
 *   - an IPv4 listener bound to 0.0.0.0, reached at 127.0.0.1 and at
 *     127.0.0.2 (both local on lo: 127.0.0.0/8 is one route whose
 *     preferred source is 127.0.0.1): getsockname() of each accepted
 *     socket says the address the client connected to, its getpeername()
 *     the client's own name, the client's getpeername() the address it
 *     chose; and the connection carries bytes both ways (64 KiB from the
 *     server: many datagrams, which the client accepts only from the
 *     address it connected to);
 *   - an IPv6 listener bound to :: (dual stack), reached at ::1 and at
 *     127.0.0.2 (a v4-mapped ::ffff:127.0.0.2 for the accepted socket);
 *   - IP_TOS / IPV6_TCLASS and IP_TTL / IPV6_UNICAST_HOPS set on an
 *     accepted socket are read back as set (the ECN bits cleared).
 *
 * Prints one "ok:" line per check and "transport: KIND" for the connected
 * fds (tcp = a kernel TCP socket). Exit 0 iff every check held; 1 with a
 * "FAIL:" line otherwise; 3 if the watchdog (60 s) fired.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 60
#define EVENT_MS 5000
#define BULK (64 * 1024)

const char *prog_name = "prog_pktinfo";

/* A listener of family bound to the wildcard address, on port (0: the
 * kernel's choice); returns it and the port in *port. */
static int wildcard_listener(int family, unsigned *port)
{
    int l = socket(family, SOCK_STREAM, 0);
    SYS(l);
    int on = 1, off = 0;
    SYS(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on));
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    if (family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_addr.s_addr = htonl(INADDR_ANY);
        s4->sin_port = htons((uint16_t)*port);
        sl = sizeof *s4;
    } else {
        SYS(setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off));
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_addr = in6addr_any;
        s6->sin6_port = htons((uint16_t)*port);
        sl = sizeof *s6;
    }
    SYS(bind(l, (struct sockaddr *)&ss, sl));
    SYS(listen(l, 8));
    sl = sizeof ss;
    SYS(getsockname(l, (struct sockaddr *)&ss, &sl));
    *port = port_of(&ss);
    return l;
}

/* "ADDR:PORT" of a socket address, into buf. */
static const char *fmt(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, ip, sizeof ip);
    else if (ss->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, ip, sizeof ip);
    snprintf(buf, len, "%s%s%s:%u", ss->ss_family == AF_INET6 ? "[" : "", ip,
             ss->ss_family == AF_INET6 ? "]" : "", port_of(ss));
    return buf;
}

/* The address text ip with port as a sockaddr of its own family. */
static socklen_t addr_of(const char *ip, unsigned port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        return sizeof *s4;
    }
    CHECK(inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1, "bad address %s", ip);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    return sizeof *s6;
}

/* Whether two names are the same address and port. */
static int same_name(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    char x[80], y[80];
    return strcmp(fmt(a, x, sizeof x), fmt(b, y, sizeof y)) == 0;
}

/* Connects to ip:port and accepts it on l: *a the accepted socket. */
static int connect_to(int l, const char *ip, unsigned port, int *a)
{
    struct sockaddr_storage to;
    socklen_t tl = addr_of(ip, port, &to);
    int c = socket(to.ss_family, SOCK_STREAM, 0);
    SYS(c);
    SYS(connect(c, (struct sockaddr *)&to, tl));
    *a = accept_ready(l, EVENT_MS);
    return c;
}

/* Bytes both ways: a short line from the client, BULK bytes back. */
static void exchange(int c, int a)
{
    static char big[BULK], got[BULK];
    SYS(write(c, "ping\n", 5));
    read_exact(a, got, 5, EVENT_MS);
    CHECK(memcmp(got, "ping\n", 5) == 0, "server read the wrong bytes");
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)(i * 7);
    size_t off = 0;
    while (off < sizeof big) {
        ssize_t n = write(a, big + off, sizeof big - off);
        SYS(n);
        off += (size_t)n;
    }
    read_exact(c, got, sizeof got, EVENT_MS);
    CHECK(memcmp(got, big, sizeof big) == 0, "client read the wrong bytes");
}

/* One client of the wildcard listener l (family lfam) to ip: the names of
 * both ends, bytes both ways. want: the accepted socket's getsockname
 * address (ip itself, or its v4-mapped form on an IPv6 listener). */
static void check_reach(int l, int lfam, unsigned port, const char *ip, const char *want)
{
    int a, c = connect_to(l, ip, port, &a);
    printf("transport: %s\n", fd_transport(c));
    printf("transport: %s\n", fd_transport(a));
    struct sockaddr_storage al, ap, cl, cp, w;
    socklen_t len = sizeof al;
    SYS(getsockname(a, (struct sockaddr *)&al, &len));
    len = sizeof ap;
    SYS(getpeername(a, (struct sockaddr *)&ap, &len));
    len = sizeof cl;
    SYS(getsockname(c, (struct sockaddr *)&cl, &len));
    len = sizeof cp;
    SYS(getpeername(c, (struct sockaddr *)&cp, &len));
    addr_of(want, port, &w);
    char b1[80], b2[80];
    CHECK(al.ss_family == lfam, "accepted socket's family %d", al.ss_family);
    CHECK(same_name(&al, &w), "accepted socket (listener on the wildcard, client to %s): "
          "getsockname says %s, want %s", ip, fmt(&al, b1, sizeof b1), fmt(&w, b2, sizeof b2));
    addr_of(ip, port, &w);
    CHECK(same_name(&cp, &w), "client to %s: getpeername says %s", ip, fmt(&cp, b1, sizeof b1));
    if (lfam == cl.ss_family)
        CHECK(same_name(&ap, &cl), "accepted socket's getpeername %s, the client is %s",
              fmt(&ap, b1, sizeof b1), fmt(&cl, b2, sizeof b2));
    exchange(c, a);
    printf("ok: %s listener on the wildcard reached at %s: accepted socket named %s, peer %s; "
           "64 KiB carried\n", fam_name(lfam), ip, fmt(&al, b1, sizeof b1),
           fmt(&ap, b2, sizeof b2));
    close(c);
    close(a);
}

/* Marks set on an accepted socket are read back as set. */
static void check_marks(int l, int lfam, unsigned port, const char *ip)
{
    int a, c = connect_to(l, ip, port, &a);
    printf("transport: %s\n", fd_transport(c));
    printf("transport: %s\n", fd_transport(a));
    if (lfam == AF_INET) {
        setsockopt_int(a, IPPROTO_IP, IP_TOS, 0x29);
        setsockopt_int(a, IPPROTO_IP, IP_TTL, 9);
        CHECK(getsockopt_int(a, IPPROTO_IP, IP_TOS) == 0x28, "IP_TOS 0x29 read back as %#x",
              getsockopt_int(a, IPPROTO_IP, IP_TOS));
        CHECK(getsockopt_int(a, IPPROTO_IP, IP_TTL) == 9, "IP_TTL 9 read back as %d",
              getsockopt_int(a, IPPROTO_IP, IP_TTL));
    } else {
        setsockopt_int(a, IPPROTO_IPV6, IPV6_TCLASS, 0x49);
        setsockopt_int(a, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 9);
        CHECK(getsockopt_int(a, IPPROTO_IPV6, IPV6_TCLASS) == 0x48,
              "IPV6_TCLASS 0x49 read back as %#x", getsockopt_int(a, IPPROTO_IPV6, IPV6_TCLASS));
        CHECK(getsockopt_int(a, IPPROTO_IPV6, IPV6_UNICAST_HOPS) == 9,
              "IPV6_UNICAST_HOPS 9 read back as %d",
              getsockopt_int(a, IPPROTO_IPV6, IPV6_UNICAST_HOPS));
    }
    exchange(c, a);
    printf("ok: %s accepted socket (client to %s): %s and hop limit set on it read back; "
           "64 KiB carried after\n", fam_name(lfam), ip,
           lfam == AF_INET ? "IP_TOS" : "IPV6_TCLASS");
    close(c);
    close(a);
}

/* marked: one connection to 127.0.0.2 whose accepted socket has marks of
 * its own, for a capture. */
static int marked(unsigned port)
{
    int l = wildcard_listener(AF_INET, &port);
    int a, c = connect_to(l, "127.0.0.2", port, &a);
    printf("transport: %s\n", fd_transport(c));
    printf("transport: %s\n", fd_transport(a));
    setsockopt_int(a, IPPROTO_IP, IP_TOS, 0x28);
    setsockopt_int(a, IPPROTO_IP, IP_TTL, 9);
    exchange(c, a);
    close(c);
    close(a);
    close(l);
    printf("ok: a connection to 127.0.0.2 with IP_TOS 0x28 and IP_TTL 9 on the accepted "
           "socket carried 64 KiB\n");
    return 0;
}

static int check_all(void)
{
    unsigned port = 0;
    int l = wildcard_listener(AF_INET, &port);
    check_reach(l, AF_INET, port, "127.0.0.1", "127.0.0.1");
    check_reach(l, AF_INET, port, "127.0.0.2", "127.0.0.2");
    check_marks(l, AF_INET, port, "127.0.0.2");
    close(l);
    port = 0;
    l = wildcard_listener(AF_INET6, &port);
    if (family_usable(AF_INET6, "the IPv6 client of the dual-stack listener"))
        check_reach(l, AF_INET6, port, "::1", "::1");
    check_reach(l, AF_INET6, port, "127.0.0.2", "::ffff:127.0.0.2");
    if (family_usable(AF_INET6, "the IPv6 marks"))
        check_marks(l, AF_INET6, port, "::1");
    close(l);
    printf("ok: all wildcard listener checks held\n");
    return 0;
}

int main(int argc, char **argv)
{
    int one = argc == 3 && strcmp(argv[1], "marked") == 0;
    prog_begin(one ? 1 : argc, WATCHDOG_S);
    return one ? marked((unsigned)atoi(argv[2])) : check_all();
}
