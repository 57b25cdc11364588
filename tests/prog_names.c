/*
 * prog_names: socket addresses and identity options, as TCP answers them.
 *
 *   prog_names [SECTION...]   run the checks below (all, or the sections
 *                             named: v4 v6 wildcard dual v6only mapped
 *                             scope);
 *                             exit 0 iff all hold
 *
 * For IPv4 and IPv6 on loopback:
 *   - a fresh socket: getsockname() gives the wildcard address, port 0, the
 *     family's full length; getpeername() says ENOTCONN; SO_TYPE SOCK_STREAM,
 *     SO_DOMAIN the family, SO_PROTOCOL IPPROTO_TCP, SO_ACCEPTCONN 0.
 *   - a listener bound to loopback port 0: getsockname() gives loopback and
 *     the port the kernel chose, getpeername() ENOTCONN, SO_ACCEPTCONN 1.
 *   - an unbound client: after connect() getsockname() gives loopback and
 *     an ephemeral port, getpeername() the listener's address; the accepted
 *     socket mirrors them exactly (and matches accept()'s address); both say
 *     SO_ACCEPTCONN 0 and the family's SO_DOMAIN.
 *   - a client bound to loopback port 0 first keeps the port bind() gave it.
 *   - a short address buffer is filled as far as it goes and the length
 *     returned is the full one.
 *   - (wildcard) a listener on 0.0.0.0 / [::] (v6only): it names itself
 *     with the wildcard, but the accepted socket is named by the address
 *     the client reached (127.0.0.1 / ::1).
 * Across families:
 *   - dual-stack listener ([::], IPV6_V6ONLY 0, read back): an IPv4 client
 *     is accepted as ::ffff:127.0.0.1 with its own port, the accepted
 *     socket's name is ::ffff:127.0.0.1 and the listener's port, and the
 *     client sees 127.0.0.1; an IPv6 client to ::1 works too; an IPv4 bind
 *     to 0.0.0.0 on that port fails with EADDRINUSE.
 *   - IPV6_V6ONLY 1 (read back): the same IPv4 connect is refused
 *     (ECONNREFUSED), ::1 still connects, and an IPv4 socket can bind
 *     127.0.0.1 on that port.
 *   - an IPv6 client to ::ffff:127.0.0.1 reaches an IPv4 listener, names
 *     itself ::ffff:127.0.0.1, and is seen as 127.0.0.1 by the server.
 *   - (scope) ::1 with sin6_scope_id 99 connects (the scope ignored off
 *     link-local), and getpeername() names the peer with scope 0.
 *
 * Prints one "ok:" line per check and "transport: KIND" for the connected
 * fds (tcp = a kernel TCP socket).  Exit 0 iff every check held; 1 with a
 * "FAIL:" line otherwise; 3 if the watchdog (60 s) fired.
 */
#include <arpa/inet.h>
#include <errno.h>
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

const char *prog_name = "prog_names";

/* --- the checks ---------------------------------------------------------- */

/* family + text address + port -> sockaddr; returns its length. */
static socklen_t make_addr(int family, const char *text, unsigned port,
                           struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        CHECK(inet_pton(AF_INET, text, &sin->sin_addr) == 1, "bad address %s", text);
        return sizeof *sin;
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    CHECK(inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1, "bad address %s", text);
    return sizeof *sin6;
}

/* "127.0.0.1:80", "[::1]:80", or "family N" for anything else. */
static const char *fmt_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, host, sizeof host);
        snprintf(buf, len, "%s:%u", host, port_of(ss));
    } else if (ss->ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, host, sizeof host);
        snprintf(buf, len, "[%s]:%u", host, port_of(ss));
    } else {
        snprintf(buf, len, "family %d", ss->ss_family);
    }
    return buf;
}

enum { SOCK_NAME, PEER_NAME };

#define ANY_PORT (-1) /* any non-zero port */

/* Checks getsockname/getpeername(fd): family, its full length, text address
 * host, and port (exact, or ANY_PORT); returns the port. */
static unsigned expect_name(int fd, int which, int family, const char *host, int port,
                            const char *what)
{
    struct sockaddr_storage got, want;
    char gbuf[80], wbuf[80];
    memset(&got, 0x5a, sizeof got);
    socklen_t len = sizeof got;
    const char *call = which == SOCK_NAME ? "getsockname" : "getpeername";
    int r = which == SOCK_NAME ? getsockname(fd, (struct sockaddr *)&got, &len)
                               : getpeername(fd, (struct sockaddr *)&got, &len);
    CHECK(r == 0, "%s: %s: %s", what, call, strerror(errno));
    socklen_t wlen = make_addr(family, host, port >= 0 ? (unsigned)port : port_of(&got), &want);
    CHECK(got.ss_family == family && len == wlen,
          "%s: %s gives family %d length %u, want %s length %u", what, call, got.ss_family,
          (unsigned)len, fam_name(family), (unsigned)wlen);
    fmt_addr(&got, gbuf, sizeof gbuf);
    fmt_addr(&want, wbuf, sizeof wbuf);
    CHECK(strcmp(gbuf, wbuf) == 0 && (port >= 0 || port_of(&got) != 0),
          "%s: %s gives %s, want %s%s", what, call, gbuf, port >= 0 ? wbuf : host,
          port >= 0 ? "" : " with a non-zero port");
    if (family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&got;
        CHECK(s6->sin6_flowinfo == 0 && s6->sin6_scope_id == 0,
              "%s: %s: flowinfo %u scope %u, want 0 0", what, call, s6->sin6_flowinfo,
              s6->sin6_scope_id);
    }
    printf("ok: %s: %s -> %s\n", what, call, gbuf);
    return port_of(&got);
}

static void expect_enotconn(int fd, const char *what)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int r = getpeername(fd, (struct sockaddr *)&ss, &len);
    CHECK(r == -1 && errno == ENOTCONN, "%s: getpeername: %s, want ENOTCONN", what,
          r == 0 ? "succeeded" : strerror(errno));
    printf("ok: %s: getpeername -> ENOTCONN\n", what);
}

static int get_int_opt(int fd, int level, int opt, const char *name)
{
    int v = -1;
    socklen_t len = sizeof v;
    CHECK(getsockopt(fd, level, opt, &v, &len) == 0, "getsockopt(%s): %s", name,
          strerror(errno));
    CHECK(len == sizeof v, "getsockopt(%s): length %u", name, (unsigned)len);
    return v;
}

static void expect_identity(int fd, int family, int acceptconn, const char *what)
{
    int type = get_int_opt(fd, SOL_SOCKET, SO_TYPE, "SO_TYPE");
    int dom = get_int_opt(fd, SOL_SOCKET, SO_DOMAIN, "SO_DOMAIN");
    int proto = get_int_opt(fd, SOL_SOCKET, SO_PROTOCOL, "SO_PROTOCOL");
    int acc = get_int_opt(fd, SOL_SOCKET, SO_ACCEPTCONN, "SO_ACCEPTCONN");
    CHECK(type == SOCK_STREAM, "%s: SO_TYPE %d, want SOCK_STREAM", what, type);
    CHECK(dom == family, "%s: SO_DOMAIN %d, want %d (%s)", what, dom, family, fam_name(family));
    CHECK(proto == IPPROTO_TCP, "%s: SO_PROTOCOL %d, want IPPROTO_TCP", what, proto);
    CHECK(acc == acceptconn, "%s: SO_ACCEPTCONN %d, want %d", what, acc, acceptconn);
    printf("ok: %s: SO_TYPE SOCK_STREAM, SO_DOMAIN %s, SO_PROTOCOL IPPROTO_TCP, "
           "SO_ACCEPTCONN %d\n", what, fam_name(family), acc);
}

static int accept_within(int lfd, struct sockaddr_storage *peer, socklen_t *plen)
{
    struct pollfd p = { .fd = lfd, .events = POLLIN };
    int n = poll(&p, 1, EVENT_MS);
    SYS(n);
    CHECK(n == 1, "listener not readable within %d ms", EVENT_MS);
    *plen = sizeof *peer;
    int fd = accept(lfd, (struct sockaddr *)peer, plen);
    SYS(fd);
    return fd;
}

/* Listener of family on host:port (0 = kernel's choice); returns its port. */
static int listen_on(int family, const char *host, unsigned *port, int v6only)
{
    struct sockaddr_storage ss;
    int fd = socket(family, SOCK_STREAM, 0);
    SYS(fd);
    if (v6only >= 0) {
        SYS(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only));
        int back = get_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY");
        CHECK(back == v6only, "IPV6_V6ONLY reads back %d, want %d", back, v6only);
    }
    socklen_t len = make_addr(family, host, *port, &ss);
    SYS(bind(fd, (struct sockaddr *)&ss, len));
    SYS(listen(fd, 16));
    socklen_t got = sizeof ss;
    SYS(getsockname(fd, (struct sockaddr *)&ss, &got));
    *port = port_of(&ss);
    return fd;
}

static int connect_to(int family, const char *host, unsigned port)
{
    struct sockaddr_storage ss;
    socklen_t len = make_addr(family, host, port, &ss);
    int fd = socket(family, SOCK_STREAM, 0);
    SYS(fd);
    CHECK(connect(fd, (struct sockaddr *)&ss, len) == 0, "connect to %s port %u: %s", host,
          port, strerror(errno));
    return fd;
}

/* The accepted socket must see the client's name as its peer, and accept()'s
 * address must say the same. */
static void check_pair(int c, int a, const struct sockaddr_storage *acc_addr, socklen_t acc_len,
                       int cfam, const char *chost, int sfam, const char *shost, unsigned sport,
                       const char *as_seen, const char *what)
{
    char w[128], b1[80], b2[80];
    snprintf(w, sizeof w, "%s client", what);
    unsigned cport = expect_name(c, SOCK_NAME, cfam, chost, ANY_PORT, w);
    CHECK(cport != sport, "%s: client port %u equals the listener's", what, cport);
    expect_name(c, PEER_NAME, cfam, shost, sport, w);
    snprintf(w, sizeof w, "%s accepted", what);
    expect_name(a, SOCK_NAME, sfam, as_seen ? as_seen : shost, sport, w);
    expect_name(a, PEER_NAME, sfam, as_seen ? as_seen : chost, cport, w);
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    SYS(getpeername(a, (struct sockaddr *)&peer, &plen));
    CHECK(acc_len == plen && strcmp(fmt_addr(acc_addr, b1, sizeof b1),
                                    fmt_addr(&peer, b2, sizeof b2)) == 0,
          "%s: accept() gave %s (len %u), getpeername %s (len %u)", what, b1,
          (unsigned)acc_len, b2, (unsigned)plen);
    printf("ok: %s: accept()'s address = getpeername()\n", what);
}

static void check_family(int family)
{
    const char *lo = family == AF_INET ? "127.0.0.1" : "::1";
    const char *any = family == AF_INET ? "0.0.0.0" : "::";
    char what[64];

    int s = socket(family, SOCK_STREAM, 0);
    SYS(s);
    snprintf(what, sizeof what, "%s fresh socket", fam_name(family));
    expect_name(s, SOCK_NAME, family, any, 0, what);
    expect_enotconn(s, what);
    expect_identity(s, family, 0, what);
    close(s);

    unsigned port = 0;
    int l = listen_on(family, lo, &port, -1);
    snprintf(what, sizeof what, "%s listener", fam_name(family));
    expect_name(l, SOCK_NAME, family, lo, port, what);
    expect_enotconn(l, what);
    expect_identity(l, family, 1, what);

    /* Unbound client. */
    struct sockaddr_storage acc;
    socklen_t acc_len;
    int c = connect_to(family, lo, port);
    int a = accept_within(l, &acc, &acc_len);
    snprintf(what, sizeof what, "%s unbound", fam_name(family));
    check_pair(c, a, &acc, acc_len, family, lo, family, lo, port, NULL, what);
    snprintf(what, sizeof what, "%s client", fam_name(family));
    expect_identity(c, family, 0, what);
    snprintf(what, sizeof what, "%s accepted", fam_name(family));
    expect_identity(a, family, 0, what);
    printf("transport: %s (client), %s (accepted)\n", fd_transport(c), fd_transport(a));

    /* A short buffer: truncated, full length reported. */
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len = 4;
    SYS(getsockname(a, (struct sockaddr *)&ss, &len));
    socklen_t full = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    CHECK(len == full && ss.ss_family == family && port_of(&ss) == port,
          "%s: getsockname into 4 bytes: length %u family %d port %u, want %u %d %u",
          fam_name(family), (unsigned)len, ss.ss_family, port_of(&ss), (unsigned)full, family,
          port);
    printf("ok: %s: getsockname into a 4-byte buffer: truncated, length %u\n",
           fam_name(family), (unsigned)len);
    close(a);
    close(c);

    /* Client bound first: keeps its port. */
    c = socket(family, SOCK_STREAM, 0);
    SYS(c);
    len = make_addr(family, lo, 0, &ss);
    SYS(bind(c, (struct sockaddr *)&ss, len));
    snprintf(what, sizeof what, "%s bound client before connect", fam_name(family));
    unsigned bport = expect_name(c, SOCK_NAME, family, lo, ANY_PORT, what);
    expect_enotconn(c, what);
    len = make_addr(family, lo, port, &ss);
    SYS(connect(c, (struct sockaddr *)&ss, len));
    a = accept_within(l, &acc, &acc_len);
    snprintf(what, sizeof what, "%s bound client", fam_name(family));
    expect_name(c, SOCK_NAME, family, lo, bport, what);
    expect_name(a, PEER_NAME, family, lo, bport, "its accepted socket");
    close(a);
    close(c);
    close(l);
}

static void check_v4(void) { check_family(AF_INET); }
static void check_v6(void)
{
    if (family_usable(AF_INET6, "section v6"))
        check_family(AF_INET6);
}

static void check_wildcard(int family);
static void check_wildcards(void)
{
    check_wildcard(AF_INET);
    if (family_usable(AF_INET6, "the IPv6 wildcard listener"))
        check_wildcard(AF_INET6);
}

static void check_dual_stack(void)
{
    unsigned port = 0;
    int l = listen_on(AF_INET6, "::", &port, 0);
    printf("ok: dual-stack listener: IPV6_V6ONLY 0 reads back, port %u\n", port);
    expect_name(l, SOCK_NAME, AF_INET6, "::", port, "dual-stack listener");

    struct sockaddr_storage acc;
    socklen_t acc_len;
    int c = connect_to(AF_INET, "127.0.0.1", port);
    int a = accept_within(l, &acc, &acc_len);
    check_pair(c, a, &acc, acc_len, AF_INET, "127.0.0.1", AF_INET6, "127.0.0.1", port,
               "::ffff:127.0.0.1", "IPv4 to dual-stack");
    printf("transport: %s (client), %s (accepted)\n", fd_transport(c), fd_transport(a));
    close(a);
    close(c);

    if (family_usable(AF_INET6, "IPv6 to the dual-stack listener")) {
        c = connect_to(AF_INET6, "::1", port);
        a = accept_within(l, &acc, &acc_len);
        check_pair(c, a, &acc, acc_len, AF_INET6, "::1", AF_INET6, "::1", port, NULL,
                   "IPv6 to dual-stack");
        close(a);
        close(c);
    }

    struct sockaddr_storage ss;
    int b = socket(AF_INET, SOCK_STREAM, 0);
    SYS(b);
    socklen_t len = make_addr(AF_INET, "0.0.0.0", port, &ss);
    int r = bind(b, (struct sockaddr *)&ss, len);
    CHECK(r == -1 && errno == EADDRINUSE, "IPv4 bind 0.0.0.0:%u beside a dual-stack listener: "
          "%s, want EADDRINUSE", port, r == 0 ? "succeeded" : strerror(errno));
    printf("ok: IPv4 bind to the dual-stack listener's port -> EADDRINUSE\n");
    close(b);
    close(l);
}

static void check_v6only(void)
{
    /* A port free for IPv4 too: the kernel's own choice for a v6only
     * socket may be one that an IPv4 TIME_WAIT holds (an earlier test's
     * server that closed first), where the IPv4 bind below fails, over
     * TCP as under the shim. */
    struct sockaddr_storage ts;
    socklen_t tl = make_addr(AF_INET, "127.0.0.1", 0, &ts);
    int t = socket(AF_INET, SOCK_STREAM, 0);
    SYS(t);
    SYS(bind(t, (struct sockaddr *)&ts, tl));
    tl = sizeof ts;
    SYS(getsockname(t, (struct sockaddr *)&ts, &tl));
    unsigned port = port_of(&ts);
    close(t);
    int l = listen_on(AF_INET6, "::", &port, 1);
    printf("ok: v6only listener: IPV6_V6ONLY 1 reads back, port %u\n", port);

    struct sockaddr_storage ss;
    socklen_t len = make_addr(AF_INET, "127.0.0.1", port, &ss);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    SYS(c);
    int r = connect(c, (struct sockaddr *)&ss, len);
    CHECK(r == -1 && errno == ECONNREFUSED, "IPv4 connect to a v6only listener's port: %s, "
          "want ECONNREFUSED", r == 0 ? "connected" : strerror(errno));
    printf("ok: IPv4 connect to the v6only listener's port -> ECONNREFUSED\n");
    close(c);

    struct sockaddr_storage acc;
    socklen_t acc_len;
    if (family_usable(AF_INET6, "IPv6 to the v6only listener")) {
        c = connect_to(AF_INET6, "::1", port);
        int a = accept_within(l, &acc, &acc_len);
        check_pair(c, a, &acc, acc_len, AF_INET6, "::1", AF_INET6, "::1", port, NULL,
                   "IPv6 to v6only");
        close(a);
        close(c);
    }

    int b = socket(AF_INET, SOCK_STREAM, 0);
    SYS(b);
    len = make_addr(AF_INET, "127.0.0.1", port, &ss);
    CHECK(bind(b, (struct sockaddr *)&ss, len) == 0, "IPv4 bind 127.0.0.1:%u beside a v6only "
          "listener: %s", port, strerror(errno));
    printf("ok: IPv4 bind to the v6only listener's port succeeds\n");
    close(b);
    close(l);
}

static void check_mapped_client(void)
{
    unsigned port = 0;
    int l = listen_on(AF_INET, "127.0.0.1", &port, -1);
    struct sockaddr_storage acc;
    socklen_t acc_len;
    int c = connect_to(AF_INET6, "::ffff:127.0.0.1", port);
    int a = accept_within(l, &acc, &acc_len);
    const char *what = "IPv6 client to ::ffff:127.0.0.1";
    unsigned cport = expect_name(c, SOCK_NAME, AF_INET6, "::ffff:127.0.0.1", ANY_PORT, what);
    expect_name(c, PEER_NAME, AF_INET6, "::ffff:127.0.0.1", port, what);
    expect_name(a, SOCK_NAME, AF_INET, "127.0.0.1", port, "its accepted IPv4 socket");
    expect_name(a, PEER_NAME, AF_INET, "127.0.0.1", cport, "its accepted IPv4 socket");
    expect_identity(c, AF_INET6, 0, what);
    close(a);
    close(c);
    close(l);
}

static void check_wildcard(int family)
{
    const char *lo = family == AF_INET ? "127.0.0.1" : "::1";
    const char *any = family == AF_INET ? "0.0.0.0" : "::";
    char what[64];
    unsigned port = 0;
    /* v6only for IPv6, so this is about the wildcard, not dual-stack. */
    int l = listen_on(family, any, &port, family == AF_INET6 ? 1 : -1);
    snprintf(what, sizeof what, "%s wildcard listener", fam_name(family));
    expect_name(l, SOCK_NAME, family, any, port, what);
    struct sockaddr_storage acc;
    socklen_t acc_len;
    int c = connect_to(family, lo, port);
    int a = accept_within(l, &acc, &acc_len);
    snprintf(what, sizeof what, "%s to a wildcard listener", fam_name(family));
    /* The accepted socket is named by the address the client reached. */
    check_pair(c, a, &acc, acc_len, family, lo, family, lo, port, NULL, what);
    close(a);
    close(c);
    close(l);
}

/* An IPv6 client to ::1 naming a scope (99): the kernel ignores a scope
 * on an address that is not link-local, connects at once, and names the
 * peer with scope 0. Under the shim the scope once made the server's
 * answer from ::1 (scope 0) another address: the connect fell back to
 * TCP after 250 ms (a "tcp" transport below), or timed out. */
static void check_scope(void)
{
    if (!family_usable(AF_INET6, "section scope"))
        return;
    unsigned port = 0;
    int l = listen_on(AF_INET6, "::1", &port, -1);
    struct sockaddr_storage ss;
    socklen_t len = make_addr(AF_INET6, "::1", port, &ss);
    ((struct sockaddr_in6 *)&ss)->sin6_scope_id = 99;
    int c = socket(AF_INET6, SOCK_STREAM, 0);
    SYS(c);
    CHECK(connect(c, (struct sockaddr *)&ss, len) == 0, "connect to ::1 with scope 99: %s",
          strerror(errno));
    struct sockaddr_storage acc;
    socklen_t acc_len;
    int a = accept_within(l, &acc, &acc_len);
    printf("transport: %s (client), %s (accepted)\n", fd_transport(c), fd_transport(a));
    struct sockaddr_in6 peer;
    socklen_t plen = sizeof peer;
    SYS(getpeername(c, (struct sockaddr *)&peer, &plen));
    CHECK(peer.sin6_scope_id == 0, "getpeername after a connect with scope 99: scope %u, not 0",
          (unsigned)peer.sin6_scope_id);
    printf("ok: ::1 with scope 99: connected, the peer named with scope 0\n");
    close(a);
    close(c);
    close(l);
}

static const struct {
    const char *name;
    void (*run)(void);
} sections[] = {
    { "v4", check_v4 },             { "v6", check_v6 },
    { "wildcard", check_wildcards }, { "dual", check_dual_stack },
    { "v6only", check_v6only },     { "mapped", check_mapped_client },
    { "scope", check_scope },
};
enum { N_SECTIONS = sizeof sections / sizeof sections[0] };

static void usage(void)
{
    fprintf(stderr, "usage: %s [SECTION...]   sections:", prog_name);
    for (int i = 0; i < N_SECTIONS; i++)
        fprintf(stderr, " %s", sections[i].name);
    fprintf(stderr, " (default: all)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        int found = 0;
        for (int j = 0; j < N_SECTIONS; j++)
            found |= strcmp(argv[i], sections[j].name) == 0;
        if (!found)
            usage();
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    watchdog(WATCHDOG_S);
    for (int j = 0; j < N_SECTIONS; j++) {
        int run = argc == 1;
        for (int i = 1; i < argc; i++)
            run |= strcmp(argv[i], sections[j].name) == 0;
        if (run) {
            printf("== %s\n", sections[j].name);
            sections[j].run();
        }
    }
    printf("PASS: %s\n", prog_name);
    return 0;
}
