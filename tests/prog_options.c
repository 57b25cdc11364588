/*
 * prog_options: the IP-, IPv6- and TCP-level options TCP keeps and
 * reports, as Linux TCP answers them, over IPv4 and IPv6.
 *
 *   prog_options          run every check below; exit 0 iff all hold
 *   prog_options hold PORT
 *                         listen on 127.0.0.1:PORT and connect once
 *                         (listener TCP_CONGESTION "cubic" and IP_TOS 0x28,
 *                         client "reno" and IP_TOS 0xb9, both set before
 *                         listen/connect), print "ready listener-cc
 *                         NAME" (cubic, or the controller it took where
 *                         this process may not set cubic), then for each
 *                         line on stdin: "cc NAME" sets TCP_CONGESTION NAME
 *                         on the connected client ("client cc NAME");
 *                         "listener-cc NAME" sets it on the listener and
 *                         connects a second client ("second connection");
 *                         "tos N" sets IP_TOS N on the connected client
 *                         ("client tos N"); "listener-tos N" on the
 *                         listener ("listener tos N");
 *                         any other line the client sends ("sent N
 *                         bytes"); EOF ends it
 *                         (integration/tests/api/t_prog_options.sh reads
 *                         rudp-stat and a capture meanwhile)
 *   prog_options cc-ok NAME...
 *                         print each NAME the shim takes for
 *                         TCP_CONGESTION here, the others with why not
 *                         ("refused NAME: ...")
 *
 *   - a listener with TCP_CONGESTION "cubic" (where this process may not
 *     set it, bbr or reno: below), IP_TOS / IPV6_TCLASS and
 *     TCP_MAXSEG set before listen() reports them after it; IP_MTU says
 *     ENOTCONN; TCP_MAXSEG the value set; SO_ACCEPTCONN 1;
 *   - IP_TTL / IPV6_UNICAST_HOPS set on the listener after listen() and
 *     TCP_CONGESTION reach the socket accept() returns;
 *   - a client with TCP_CONGESTION "reno" and IP_TOS 0xb9 set before
 *     connect() reports "reno" and 0xb8 after it (TCP clears the ECN bits);
 *   - the defaults of a connected socket: IP_TTL the kernel's
 *     net.ipv4.ip_default_ttl, TCP_NOTSENT_LOWAT 0, IP_MTU (and IPV6_MTU)
 *     the loopback's MTU (IPv4: at most 65535), TCP_MAXSEG between 88 and
 *     IP_MTU; SO_PROTOCOL, SO_DOMAIN, SO_TYPE, SO_ACCEPTCONN;
 *   - values set on a connected socket are read back as the kernel keeps
 *     them (IP_TTL 7, then -1 for the default; IPV6_TCLASS 0x2b as 0x28;
 *     IPV6_UNICAST_HOPS 9; TCP_NOTSENT_LOWAT 12345; TCP_CONGESTION "cubic")
 *     and refused with its errno (IP_TTL 0 and 256, IPV6_TCLASS 256,
 *     TCP_MAXSEG 10: EINVAL; TCP_CONGESTION "nosuchcc": ENOENT, length 0:
 *     EINVAL); a short TCP_CONGESTION buffer gets the name's first bytes;
 *   - unknown option numbers at the TCP, IP and IPv6 levels: ENOPROTOOPT
 *     from getsockopt and setsockopt;
 *   - TCP_CONGESTION "vegas" and "htcp" (IPv4; set on a listener before
 *     listen(), a client before connect(), both connected sockets after)
 *     and "scalable", "westwood", "highspeed", "bic", "veno", "dctcp",
 *     "hybla", "illinois", "yeah", "lp", "nv", "cdg", "copa" (on the connected
 *     client; dctcp reads back "dctcp-reno", no ECN):
 *     over kernel TCP the kernel's answer, checked against its
 *     tcp_available_congestion_control (ENOENT on a kernel without the
 *     modules, as this machine's) and its policy (EPERM for one it has
 *     outside tcp_allowed_congestion_control, to a process without
 *     CAP_NET_ADMIN: a container's root); under the shim rudp's
 *     controllers, taken and read back whatever the kernel has (every
 *     controller of a stock kernel), but for the kernel's EPERM where it
 *     has one. "bpf_cubic" (a kernel may have it from a BPF program, rudp
 *     does not): the same answer on a connected socket as on a fresh one,
 *     which is the kernel's both ways;
 *   - and the connection carries bytes both ways.
 *
 * Prints one "ok:" line per check and "transport: KIND" for the connected
 * fds (tcp = a kernel TCP socket). Exit 0 iff every check held; 1 with a
 * "FAIL:" line otherwise; 3 if the watchdog (60 s) fired.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 60
#define EVENT_MS 5000

const char *prog_name = "prog_options";

/* The errno of a getsockopt (get) or setsockopt of an int, 0 if it worked. */
static int get_err(int fd, int level, int opt)
{
    int v;
    socklen_t l = sizeof v;
    return getsockopt(fd, level, opt, &v, &l) < 0 ? errno : 0;
}

static int set_err(int fd, int level, int opt, int v)
{
    return setsockopt(fd, level, opt, &v, sizeof v) < 0 ? errno : 0;
}

static void set_cc(int fd, const char *name)
{
    SYS(setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, (socklen_t)strlen(name)));
}

static void check_cc(int fd, const char *want, const char *what)
{
    char name[32];
    memset(name, 'X', sizeof name);
    socklen_t l = sizeof name;
    SYS(getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, &l));
    CHECK(l == 16, "%s: TCP_CONGESTION length %u, want 16 (TCP_CA_NAME_MAX)", what, (unsigned)l);
    CHECK(strcmp(name, want) == 0, "%s: TCP_CONGESTION \"%.16s\", want \"%s\"", what, name, want);
}

/* Is name a word of /proc/sys/net/ipv4/<file>? */
static int listed(const char *file, const char *name)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/sys/net/ipv4/%s", file);
    FILE *f = fopen(path, "r");
    CHECK(f, "%s: %s", path, strerror(errno));
    char w[32];
    int found = 0;
    while (fscanf(f, "%31s", w) == 1)
        found |= strcmp(w, name) == 0;
    fclose(f);
    return found;
}

/* Is name in net.ipv4.tcp_available_congestion_control (loaded or built in)? */
static int kernel_has(const char *name) { return listed("tcp_available_congestion_control", name); }

/* Linux lets a process without CAP_NET_ADMIN over the socket's network
 * namespace (a container's root, as a rule) set only the controllers of
 * net.ipv4.tcp_allowed_congestion_control: EPERM for the others it has
 * (tcp_set_congestion_control, net/ipv4/tcp_cong.c). May this one set any?
 * Asked of the kernel once, with a controller it has outside that list, if
 * there is one (the shim's answer for it is the kernel's). */
static int may_set_any_cc(void)
{
    static int may = -1;
    if (may >= 0)
        return may;
    may = 1;
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_congestion_control", "r");
    CHECK(f, "tcp_available_congestion_control: %s", strerror(errno));
    char w[32];
    while (fscanf(f, "%31s", w) == 1) {
        if (listed("tcp_allowed_congestion_control", w))
            continue;
        int s = socket(AF_INET, SOCK_STREAM, 0);
        SYS(s);
        int r = setsockopt(s, IPPROTO_TCP, TCP_CONGESTION, w, (socklen_t)strlen(w));
        may = !(r < 0 && errno == EPERM);
        close(s);
        break;
    }
    fclose(f);
    return may;
}

/* What setsockopt(TCP_CONGESTION name) answers (0: taken) over kernel TCP:
 * ENOENT for a controller the kernel has not got, EPERM for one it may not
 * set (asked after the call: a module loaded for a CAP_NET_ADMIN caller is
 * listed then) ... */
static int cc_kernel_want(const char *name)
{
    if (!kernel_has(name))
        return ENOENT;
    return listed("tcp_allowed_congestion_control", name) || may_set_any_cc() ? 0 : EPERM;
}

/* ... and under the shim for one of rudp's controllers: the kernel's
 * policy holds for a controller it has, rudp runs the others. */
static int cc_shim_want(const char *name)
{
    int e = cc_kernel_want(name);
    return e == ENOENT ? 0 : e;
}

/* The listener's controller, which the socket it accepts inherits: cubic,
 * or where this process may not set it over kernel TCP (no CAP_NET_ADMIN,
 * cubic not in the allowed list, as in a container on a host whose default
 * is bbr) bbr, else reno, which every process may set. */
static const char *listener_cc(void)
{
    static const char *const pref[] = {"cubic", "bbr"};
    for (size_t i = 0; i < sizeof pref / sizeof pref[0]; i++)
        if (cc_kernel_want(pref[i]) == 0)
            return pref[i];
    return "reno";
}

static int read_file_int(const char *path)
{
    FILE *f = fopen(path, "r");
    CHECK(f, "%s: %s", path, strerror(errno));
    int v = -1;
    CHECK(fscanf(f, "%d", &v) == 1, "%s: no number", path);
    fclose(f);
    return v;
}

static int loopback_mtu(void)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    SYS(s);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    SYS(ioctl(s, SIOCGIFMTU, &ifr));
    close(s);
    return ifr.ifr_mtu;
}

/* The class-of-service option of family: IP_TOS or IPV6_TCLASS. */
static int tos_level(int family) { return family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6; }
static int tos_opt(int family) { return family == AF_INET ? IP_TOS : IPV6_TCLASS; }
static int hops_opt(int family) { return family == AF_INET ? IP_TTL : IPV6_UNICAST_HOPS; }
static int mtu_opt(int family) { return family == AF_INET ? IP_MTU : IPV6_MTU; }

/* A listener on port (0: the kernel's choice) with options set before
 * listen(): listener_cc() (cubic), TOS 0x28, MSS 1000. */
static int make_listener(int family, unsigned port, struct sockaddr_storage *sa, socklen_t *sl)
{
    int l = socket(family, SOCK_STREAM, 0);
    SYS(l);
    set_cc(l, listener_cc());
    setsockopt_int(l, tos_level(family), tos_opt(family), 0x28);
    setsockopt_int(l, IPPROTO_TCP, TCP_MAXSEG, 1000);
    *sl = loopback(family, port, sa);
    SYS(bind(l, (struct sockaddr *)sa, *sl));
    SYS(getsockname(l, (struct sockaddr *)sa, sl));
    SYS(listen(l, 4));
    return l;
}

static void check_listener(int l, int family)
{
    const char *fam = fam_name(family);
    check_cc(l, listener_cc(), "listener");
    CHECK(getsockopt_int(l, tos_level(family), tos_opt(family)) == 0x28,
          "listener: class of service %d, want 0x28", getsockopt_int(l, tos_level(family), tos_opt(family)));
    CHECK(getsockopt_int(l, IPPROTO_TCP, TCP_MAXSEG) == 1000, "listener: TCP_MAXSEG %d, want 1000",
          getsockopt_int(l, IPPROTO_TCP, TCP_MAXSEG));
    int e = get_err(l, tos_level(family), mtu_opt(family));
    CHECK(e == ENOTCONN, "listener: MTU option: %s, want ENOTCONN", strerror(e));
    CHECK(getsockopt_int(l, SOL_SOCKET, SO_ACCEPTCONN) == 1, "listener: SO_ACCEPTCONN not 1");
    printf("ok: %s listener reports TCP_CONGESTION, class of service, TCP_MAXSEG set before "
           "listen(); MTU ENOTCONN\n", fam);
}

static void check_identity(int fd, int family, const char *what)
{
    CHECK(getsockopt_int(fd, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_TCP, "%s: SO_PROTOCOL", what);
    CHECK(getsockopt_int(fd, SOL_SOCKET, SO_DOMAIN) == family, "%s: SO_DOMAIN", what);
    CHECK(getsockopt_int(fd, SOL_SOCKET, SO_TYPE) == SOCK_STREAM, "%s: SO_TYPE", what);
    CHECK(getsockopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN) == 0, "%s: SO_ACCEPTCONN", what);
}

/* Defaults of connected socket fd (client or accepted); IP_TTL is ttl, or
 * the kernel's default if ttl is 0. */
static void check_connected_defaults(int fd, int family, int ttl, const char *what)
{
    if (!ttl)
        ttl = read_file_int("/proc/sys/net/ipv4/ip_default_ttl");
    CHECK(getsockopt_int(fd, IPPROTO_IP, IP_TTL) == ttl, "%s: IP_TTL %d, want %d", what,
          getsockopt_int(fd, IPPROTO_IP, IP_TTL), ttl);
    CHECK(getsockopt_int(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT) == 0, "%s: TCP_NOTSENT_LOWAT %d", what,
          getsockopt_int(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT));
    int lo = loopback_mtu();
    int want = family == AF_INET && lo > 65535 ? 65535 : lo; /* IP_MAX_MTU */
    int mtu = getsockopt_int(fd, IPPROTO_IP, IP_MTU);
    CHECK(mtu == want, "%s: IP_MTU %d, want %d (loopback MTU %d)", what, mtu, want, lo);
    if (family == AF_INET6)
        CHECK(getsockopt_int(fd, IPPROTO_IPV6, IPV6_MTU) == want, "%s: IPV6_MTU %d, want %d", what,
              getsockopt_int(fd, IPPROTO_IPV6, IPV6_MTU), want);
    int mss = getsockopt_int(fd, IPPROTO_TCP, TCP_MAXSEG);
    CHECK(mss >= 88 && mss <= mtu, "%s: TCP_MAXSEG %d, want 88..%d", what, mss, mtu);
    check_identity(fd, family, what);
}

static void check_connected_sets(int c, int family)
{
    const char *fam = fam_name(family);
    int ttl = read_file_int("/proc/sys/net/ipv4/ip_default_ttl");
    setsockopt_int(c, IPPROTO_IP, IP_TTL, 7);
    CHECK(getsockopt_int(c, IPPROTO_IP, IP_TTL) == 7, "IP_TTL 7 not kept");
    CHECK(set_err(c, IPPROTO_IP, IP_TTL, 0) == EINVAL, "IP_TTL 0 not EINVAL");
    CHECK(set_err(c, IPPROTO_IP, IP_TTL, 256) == EINVAL, "IP_TTL 256 not EINVAL");
    setsockopt_int(c, IPPROTO_IP, IP_TTL, -1);
    CHECK(getsockopt_int(c, IPPROTO_IP, IP_TTL) == ttl, "IP_TTL -1: %d, want the default %d",
          getsockopt_int(c, IPPROTO_IP, IP_TTL), ttl);
    if (family == AF_INET6) {
        setsockopt_int(c, IPPROTO_IPV6, IPV6_TCLASS, 0x2b);
        CHECK(getsockopt_int(c, IPPROTO_IPV6, IPV6_TCLASS) == 0x28, "IPV6_TCLASS 0x2b read as %#x",
              getsockopt_int(c, IPPROTO_IPV6, IPV6_TCLASS));
        CHECK(set_err(c, IPPROTO_IPV6, IPV6_TCLASS, 256) == EINVAL, "IPV6_TCLASS 256 not EINVAL");
        setsockopt_int(c, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 9);
        CHECK(getsockopt_int(c, IPPROTO_IPV6, IPV6_UNICAST_HOPS) == 9, "IPV6_UNICAST_HOPS 9 not kept");
    }
    setsockopt_int(c, IPPROTO_TCP, TCP_NOTSENT_LOWAT, 12345);
    CHECK(getsockopt_int(c, IPPROTO_TCP, TCP_NOTSENT_LOWAT) == 12345, "TCP_NOTSENT_LOWAT not kept");
    CHECK(set_err(c, IPPROTO_TCP, TCP_MAXSEG, 10) == EINVAL, "TCP_MAXSEG 10 not EINVAL");
    printf("ok: %s connected socket keeps IP_TTL, class of service, hop limit, "
           "TCP_NOTSENT_LOWAT and refuses bad values with EINVAL\n", fam);

    int r = setsockopt(c, IPPROTO_TCP, TCP_CONGESTION, "nosuchcc", 8);
    CHECK(r < 0 && errno == ENOENT, "TCP_CONGESTION nosuchcc: %s, want ENOENT",
          r < 0 ? strerror(errno) : "ok");
    r = setsockopt(c, IPPROTO_TCP, TCP_CONGESTION, "reno", 0);
    CHECK(r < 0 && errno == EINVAL, "TCP_CONGESTION length 0: %s, want EINVAL",
          r < 0 ? strerror(errno) : "ok");
    char b[4] = "XXX";
    socklen_t bl = 3;
    SYS(getsockopt(c, IPPROTO_TCP, TCP_CONGESTION, b, &bl));
    CHECK(bl == 3 && memcmp(b, "ren", 3) == 0, "TCP_CONGESTION in 3 bytes: %u \"%.3s\"",
          (unsigned)bl, b);
    set_cc(c, listener_cc());
    check_cc(c, listener_cc(), "client after setting the listener's controller");
    printf("ok: %s TCP_CONGESTION: unknown name ENOENT, length 0 EINVAL, short buffer "
           "truncated, a new name read back\n", fam);

    static const int levels[] = {IPPROTO_TCP, IPPROTO_IP, IPPROTO_IPV6};
    static const int unknown[] = {99, 199, 199};
    for (int i = 0; i < 3; i++) {
        if (levels[i] == IPPROTO_IPV6 && family == AF_INET)
            continue; /* Linux: EOPNOTSUPP / ENOPROTOOPT, checked by the scratch socket too */
        int e = get_err(c, levels[i], unknown[i]);
        CHECK(e == ENOPROTOOPT, "getsockopt level %d option %d: %s, want ENOPROTOOPT", levels[i],
              unknown[i], strerror(e));
        e = set_err(c, levels[i], unknown[i], 1);
        CHECK(e == ENOPROTOOPT, "setsockopt level %d option %d: %s, want ENOPROTOOPT", levels[i],
              unknown[i], strerror(e));
    }
    if (family == AF_INET) {
        int e = get_err(c, IPPROTO_IPV6, IPV6_TCLASS);
        CHECK(e == EOPNOTSUPP, "IPv4: getsockopt IPV6_TCLASS: %s, want EOPNOTSUPP", strerror(e));
        e = set_err(c, IPPROTO_IPV6, IPV6_TCLASS, 1);
        CHECK(e == ENOPROTOOPT, "IPv4: setsockopt IPV6_TCLASS: %s, want ENOPROTOOPT", strerror(e));
    }
    printf("ok: %s unknown option numbers: ENOPROTOOPT%s\n", fam,
           family == AF_INET ? "; IPv6 options on IPv4: EOPNOTSUPP / ENOPROTOOPT" : "");
}

static void exchange(int c, int a)
{
    char buf[8];
    SYS(write(c, "ping", 4));
    read_exact(a, buf, 4, EVENT_MS);
    CHECK(memcmp(buf, "ping", 4) == 0, "bytes changed on the way");
    SYS(write(a, "pong", 4));
    read_exact(c, buf, 4, EVENT_MS);
    CHECK(memcmp(buf, "pong", 4) == 0, "bytes changed on the way back");
}

/* A client with TCP_CONGESTION reno and IP_TOS 0xb9 set before connect()
 * to listener l at sa; *a gets the accepted end. Returns the client. */
static int connect_pair(int l, int family, const struct sockaddr_storage *sa, socklen_t sl, int *a)
{
    int c = socket(family, SOCK_STREAM, 0);
    SYS(c);
    set_cc(c, "reno");
    setsockopt_int(c, IPPROTO_IP, IP_TOS, 0xb9);
    SYS(connect(c, (const struct sockaddr *)sa, sl));
    *a = accept_ready(l, EVENT_MS);
    printf("transport: %s (client), %s (accepted)\n", fd_transport(c), fd_transport(*a));
    exchange(c, *a);
    return c;
}

static void check_family(int family)
{
    const char *fam = fam_name(family);
    struct sockaddr_storage sa;
    socklen_t sl;
    int l = make_listener(family, 0, &sa, &sl);
    check_listener(l, family);
    setsockopt_int(l, hops_opt(family) == IP_TTL ? IPPROTO_IP : IPPROTO_IPV6, hops_opt(family), 33);

    int a, c = connect_pair(l, family, &sa, sl, &a);

    check_cc(c, "reno", "client");
    CHECK(getsockopt_int(c, IPPROTO_IP, IP_TOS) == 0xb8, "client: IP_TOS %#x, want 0xb8",
          getsockopt_int(c, IPPROTO_IP, IP_TOS));
    printf("ok: %s client keeps TCP_CONGESTION reno and IP_TOS (ECN bits cleared) set before "
           "connect()\n", fam);

    check_cc(a, listener_cc(), "accepted");
    CHECK(getsockopt_int(a, tos_level(family), tos_opt(family)) == 0x28,
          "accepted: class of service %#x, want 0x28", getsockopt_int(a, tos_level(family), tos_opt(family)));
    int hl = family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6;
    CHECK(getsockopt_int(a, hl, hops_opt(family)) == 33, "accepted: hop limit %d, want 33 (set on "
          "the listener after listen())", getsockopt_int(a, hl, hops_opt(family)));
    printf("ok: %s accepted socket inherits the listener's TCP_CONGESTION, class of service and "
           "hop limit (set after listen())\n", fam);

    check_connected_defaults(c, family, 0, "client");
    check_connected_defaults(a, family, family == AF_INET ? 33 : 0, "accepted");
    printf("ok: %s connected defaults: IP_TTL, TCP_NOTSENT_LOWAT, IP_MTU%s = loopback MTU, "
           "TCP_MAXSEG within it, SO_PROTOCOL/DOMAIN/TYPE/ACCEPTCONN\n", fam,
           family == AF_INET6 ? "/IPV6_MTU" : "");
    check_connected_sets(c, family);
    exchange(c, a);
    close(c);
    close(a);
    close(l);
}

/* ---- controllers by name: the kernel's answer, rudp's two ---- */

/* Controllers a kernel may have that rudp has no match for. rudp runs
 * every one of a stock kernel's (bbr, cubic, reno, vegas, htcp, scalable,
 * westwood, highspeed, bic, veno, dctcp as dctcp-reno, hybla, illinois,
 * yeah, lp, nv and cdg); a kernel can have others from a BPF program
 * (struct_ops, as tools/testing/selftests/bpf/progs/bpf_cubic.c registers
 * "bpf_cubic") or an out-of-tree module. */
static const char *const other_ccs[] = {"bpf_cubic"};
#define N_OTHER_CCS (sizeof other_ccs / sizeof other_ccs[0])

/* The errno of setsockopt(TCP_CONGESTION name) on fd, 0 if it took it. */
static int cc_err(int fd, const char *name)
{
    return setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, (socklen_t)strlen(name)) < 0 ? errno
                                                                                          : 0;
}

/* Over kernel TCP, what the kernel answered for name (errno e) must be
 * what its list says (tcp_set_congestion_control, net/ipv4/tcp_cong.c):
 * taken (then it is listed: a module may just have been loaded for a
 * CAP_NET_ADMIN caller), ENOENT for a controller it has not got, EPERM for
 * one outside net.ipv4.tcp_allowed_congestion_control without
 * CAP_NET_ADMIN. */
static void kernel_answer_holds(int e, const char *name, const char *what)
{
    int want = cc_kernel_want(name);
    CHECK(e == want, "%s: TCP_CONGESTION %s: %s, want %s (the kernel %s it%s)", what, name,
          e ? strerror(e) : "taken", want ? strerror(want) : "taken",
          kernel_has(name) ? "lists" : "does not list",
          want == EPERM ? ", not allowed without CAP_NET_ADMIN" : "");
}

/* vegas and htcp (and scalable, westwood, highspeed on the client): over
 * kernel TCP, whatever the kernel answers (ENOENT on a kernel without the
 * modules, as here, the name otherwise); under the shim, rudp's
 * controller, whether the kernel has the module or not, set before
 * listen()/connect() or on the live connection, and read back. A controller
 * rudp lacks (other_ccs): the same answer on a connected socket as on a
 * fresh one (the kernel's, under the shim too). */
static void check_cc_names(void)
{
    struct sockaddr_storage sa;
    socklen_t sl = loopback(AF_INET, 0, &sa);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    SYS(l);
    int el = cc_err(l, "htcp");
    SYS(bind(l, (struct sockaddr *)&sa, sl));
    SYS(getsockname(l, (struct sockaddr *)&sa, &sl));
    SYS(listen(l, 4));
    int c = socket(AF_INET, SOCK_STREAM, 0);
    SYS(c);
    int ec = cc_err(c, "vegas");
    SYS(connect(c, (struct sockaddr *)&sa, sl));
    int a = accept_ready(l, EVENT_MS);
    const char *tr = fd_transport(c);
    printf("transport: %s (client), %s (accepted)\n", tr, fd_transport(a));
    int shim = strcmp(tr, "unix") == 0;
    if (shim)
        CHECK(el == cc_shim_want("htcp") && ec == cc_shim_want("vegas"),
              "TCP_CONGESTION before listen/connect: htcp %s, vegas %s", strerror(el),
              strerror(ec));
    if (!el) {
        check_cc(l, "htcp", "listener set htcp before listen()");
        check_cc(a, "htcp", "accepted from the htcp listener");
    }
    if (!ec)
        check_cc(c, "vegas", "client set vegas before connect()");
    int e2 = cc_err(c, "htcp"), e3 = cc_err(a, "vegas");
    if (shim) {
        CHECK(e2 == cc_shim_want("htcp") && e3 == cc_shim_want("vegas"),
              "TCP_CONGESTION on connected sockets: htcp %s, vegas %s", strerror(e2),
              strerror(e3));
        if (!e2)
            check_cc(c, "htcp", "client set htcp after connect()");
        if (!e3)
            check_cc(a, "vegas", "accepted set vegas");
        printf("ok: rudp runs vegas and htcp: set before listen()/connect() and on connected "
               "sockets, read back (the kernel has %s, %s)%s\n",
               kernel_has("vegas") ? "vegas" : "no vegas", kernel_has("htcp") ? "htcp" : "no htcp",
               e2 || e3 ? "; the kernel's EPERM where it has one and may not set it" : "");
    } else {
        kernel_answer_holds(el, "htcp", "listener");
        kernel_answer_holds(ec, "vegas", "client before connect()");
        kernel_answer_holds(e2, "htcp", "connected client");
        kernel_answer_holds(e3, "vegas", "accepted");
        if (!e2)
            check_cc(c, "htcp", "client set htcp after connect()");
        if (!e3)
            check_cc(a, "vegas", "accepted set vegas");
        printf("ok: kernel TCP answers vegas: %s, htcp: %s, as its list of controllers says\n",
               ec ? strerror(ec) : "taken", el ? strerror(el) : "taken");
    }
    int fresh = socket(AF_INET, SOCK_STREAM, 0);
    SYS(fresh);
    char runs[16] = {0}; /* the client's controller now: htcp, set above, where it may be set */
    socklen_t rl = sizeof runs - 1;
    SYS(getsockopt(c, IPPROTO_TCP, TCP_CONGESTION, runs, &rl));
    for (size_t i = 0; i < N_OTHER_CCS; i++) {
        const char *n = other_ccs[i];
        int ef = cc_err(fresh, n), en = cc_err(c, n);
        CHECK(en == ef, "TCP_CONGESTION %s: connected %s, a fresh socket %s", n,
              en ? strerror(en) : "taken", ef ? strerror(ef) : "taken");
        if (!shim)
            kernel_answer_holds(en, n, "connected client");
        /* A name only the kernel has leaves rudp's controller (htcp, set
         * above) running (docs/limits.md): it reads back that one. */
        if (!en)
            check_cc(c, shim ? runs : n, "after a controller only the kernel has");
    }
    printf("ok: controllers rudp lacks (%s%s%s) get the kernel's "
           "answer on a connected socket (%s here)\n",
           other_ccs[0], N_OTHER_CCS > 1 ? " ... " : "",
           N_OTHER_CCS > 1 ? other_ccs[N_OTHER_CCS - 1] : "",
           cc_err(fresh, other_ccs[0]) ? strerror(cc_err(fresh, other_ccs[0])) : "taken");
    /* The rest of rudp's (more[]): as vegas and htcp. dctcp on a
     * connection without ECN reads back "dctcp-reno": dctcp_init
     * (net/ipv4/tcp_dctcp.c) falls back to its dctcp_reno ops unless ECN
     * was negotiated, and this connection did not negotiate it (it did not
     * start with dctcp) */
    static const char *const more[] = {"scalable", "westwood", "highspeed", "bic", "veno", "dctcp",
                                       "hybla",    "illinois", "yeah",      "lp",  "nv",   "cdg",
                                       "copa"};
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
        int es = cc_err(c, more[i]);
        if (shim)
            CHECK(es == cc_shim_want(more[i]), "TCP_CONGESTION %s on the connected client: %s",
                  more[i], strerror(es));
        else
            kernel_answer_holds(es, more[i], "connected client");
        if (!es)
            check_cc(c, strcmp(more[i], "dctcp") == 0 ? "dctcp-reno" : more[i],
                     "client set after connect()");
        printf("ok: %s: %s\n", more[i],
               shim ? (es ? "the kernel's policy: EPERM" : "rudp's, taken and read back")
                    : es ? strerror(es) : "taken by the kernel");
    }
    exchange(c, a);
    close(fresh);
    close(c);
    close(a);
    close(l);
}

/* hold: one IPv4 connection whose controllers and TOS rudp-stat and a
 * capture can see, driven by lines on stdin. */
static int hold(unsigned port)
{
    struct sockaddr_storage sa;
    socklen_t sl;
    int l = make_listener(AF_INET, port, &sa, &sl);
    int a, c = connect_pair(l, AF_INET, &sa, sl, &a);
    int a2 = -1, c2 = -1;
    printf("ready listener-cc %s\n", listener_cc());
    char line[256], name[32];
    int tos;
    while (fgets(line, sizeof line, stdin)) {
        size_t n = strlen(line);
        if (sscanf(line, "cc %31s", name) == 1) {
            set_cc(c, name);
            check_cc(c, name, "client");
            printf("client cc %s\n", name);
        } else if (sscanf(line, "listener-tos %d", &tos) == 1) {
            setsockopt_int(l, IPPROTO_IP, IP_TOS, tos);
            printf("listener tos %d\n", tos);
        } else if (sscanf(line, "tos %d", &tos) == 1) {
            setsockopt_int(c, IPPROTO_IP, IP_TOS, tos);
            printf("client tos %d\n", tos);
        } else if (sscanf(line, "listener-cc %31s", name) == 1 && c2 < 0) {
            set_cc(l, name);
            c2 = socket(AF_INET, SOCK_STREAM, 0);
            SYS(c2);
            SYS(connect(c2, (struct sockaddr *)&sa, sl));
            a2 = accept_ready(l, EVENT_MS);
            exchange(c2, a2);
            check_cc(a2, name, "second accepted");
            printf("second connection\n");
        } else {
            SYS(write(c, line, n));
            char got[256];
            read_exact(a, got, n, EVENT_MS);
            printf("sent %zu bytes\n", n);
        }
    }
    printf("ok: held a connection until stdin ended\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "cc-ok") == 0) {
        for (int i = 2; i < argc; i++) {
            int e = cc_shim_want(argv[i]);
            if (e)
                printf("refused %s: %s (the kernel has it; this process may not set it: no "
                       "CAP_NET_ADMIN, not in net.ipv4.tcp_allowed_congestion_control)\n",
                       argv[i], strerror(e));
            else
                printf("%s\n", argv[i]);
        }
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "hold") == 0) {
        prog_begin(1, WATCHDOG_S);
        return hold((unsigned)atoi(argv[2]));
    }
    prog_begin(argc, WATCHDOG_S);
    check_family(AF_INET);
    if (family_usable(AF_INET6, "the IPv6 checks"))
        check_family(AF_INET6);
    check_cc_names();
    printf("ok: all option checks held\n");
    return 0;
}
