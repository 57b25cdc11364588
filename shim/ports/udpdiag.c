/*
 * udpdiag.c: whether another process has a UDP socket on a port, asked of
 * the kernel (sock_diag's inet_diag, as ss -uan does: no permission is
 * checked, every socket of our network namespace is listed).
 *
 * A listener's UDP socket copies the app's SO_REUSEADDR from its TCP
 * socket. Another process's UDP socket bound first with SO_REUSEADDR then
 * lets ours bind too, and the kernel gives each datagram to the socket
 * bound last (udp_lib_lport_inuse lets both in; __udp4_lib_lookup's
 * scoring ties and the later socket is first in the hash chain): ours
 * would take that process's datagrams, which without the shim it gets
 * all of. So listen() asks here first, when a probe bind found the port
 * taken and no socket of the program's own holds it (portshare.c). A
 * socket found that is a listener's of ours in another process (a keeper
 * finishing a restarted server's old connections) is asked for instead
 * (porthand.c). With SO_REUSEPORT, such sockets are the group's other
 * members (xgroup.c), told from a stranger's by their names (porthand.c),
 * and so are those portwatch.c finds after listen().
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "porthand.h"
#include "portshare.h"
#include "ports.h"

#include "base/poison.h"

#define MAX_SEEN 32

typedef struct seen {
    uint32_t ino[MAX_SEEN];
    uint32_t uid[MAX_SEEN];
    int n;
    int overflow;
} seen;

typedef struct dump_req {
    const struct sockaddr_storage *local;
    int v6only;
    seen *out;
} dump_req;

/* One socket of the dump: unconnected, on an address overlapping local's. */
static int dump_one(const struct nlmsghdr *h, void *ctx)
{
    dump_req *q = ctx;
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
        return -1;
    const struct inet_diag_msg *m = NLMSG_DATA(h);
    if (m->id.idiag_dport != 0)
        return 0; /* connected: takes only its peer's datagrams */
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    int v6 = 0;
    if (m->idiag_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        in->sin_port = m->id.idiag_sport;
        memcpy(&in->sin_addr, m->id.idiag_src, 4);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = m->id.idiag_sport;
        memcpy(&in6->sin6_addr, m->id.idiag_src, 16);
        size_t vl;
        const uint8_t *v = shim_nla_get(m + 1, h->nlmsg_len - NLMSG_LENGTH(sizeof *m),
                                        INET_DIAG_SKV6ONLY, &vl);
        v6 = v && vl > 0 && *v != 0;
    }
    if (!shim_port_overlap(&ss, v6, q->local, q->v6only))
        return 0;
    seen *out = q->out;
    if (out->n < MAX_SEEN) {
        out->uid[out->n] = m->idiag_uid;
        out->ino[out->n++] = m->idiag_inode;
    } else
        out->overflow = 1;
    return 0;
}

/* The UDP sockets of `family`, each to fn (sock_diag). 0, or -1. */
static int dump_udp(int family, int (*fn)(const struct nlmsghdr *, void *), void *ctx)
{
    struct {
        struct nlmsghdr nh;
        struct inet_diag_req_v2 req;
    } rq = {
        .nh = {.nlmsg_len = sizeof rq, .nlmsg_type = SOCK_DIAG_BY_FAMILY,
               .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP},
        .req = {.sdiag_family = (uint8_t)family, .sdiag_protocol = IPPROTO_UDP,
                .idiag_states = ~0u},
    };
    return shim_diag_dump(&rq, sizeof rq, fn, ctx);
}

/* One dump of the UDP sockets of `family`; those unconnected on an address
 * overlapping local's go into *out. 0, or -1: cannot tell. */
static int dump(int family, const struct sockaddr_storage *local, int v6only, seen *out)
{
    dump_req q = {.local = local, .v6only = v6only, .out = out};
    return dump_udp(family, dump_one, &q);
}

/* Drops from s the sockets engine e holds in a table of its own
 * (RUDP_FD_TABLE): its thread's fd directory, by inode. */
static void drop_engine(seen *s, const struct engine *e)
{
    pid_t tid = shim_engine_table_tid(e);
    char path[64];
    if (!tid)
        return;
    snprintf(path, sizeof path, "/proc/self/task/%d/fd", (int)tid);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *de;
    while (s->n > 0 && (de = readdir(d)) != NULL) {
        char target[64];
        unsigned long long ino;
        ssize_t l = readlinkat(dirfd(d), de->d_name, target, sizeof target - 1);
        if (l <= 0)
            continue;
        target[l] = 0;
        if (sscanf(target, "socket:[%llu]", &ino) != 1)
            continue;
        for (int i = 0; i < s->n; i++)
            if (s->ino[i] == (uint32_t)ino) {
                s->n--;
                s->ino[i] = s->ino[s->n];
                s->uid[i] = s->uid[s->n];
                break;
            }
    }
    closedir(d);
}

/* Drops from s the sockets this process holds (the program's own, our
 * engines'). */
static void drop_ours(seen *s)
{
    for (int k = 0, n = shim_engines_nrun(); k < n; k++)
        drop_engine(s, shim_engine_nth(k));
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    int self = dirfd(d);
    struct dirent *de;
    while (s->n > 0 && (de = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(de->d_name, &end, 10);
        struct stat st;
        if (*end || end == de->d_name || fd == self || fstat((int)fd, &st) < 0 ||
            !S_ISSOCK(st.st_mode))
            continue;
        for (int i = 0; i < s->n; i++)
            if (s->ino[i] == (uint32_t)st.st_ino) {
                s->n--;
                s->ino[i] = s->ino[s->n];
                s->uid[i] = s->uid[s->n];
                break;
            }
    }
    closedir(d);
}

/* Whether the socket of inode ino is still bound on local (1), or gone
 * (0). The dump, the look at our fds (drop_ours) and at the names are not
 * one snapshot: an old listener's socket of ours, kept for the
 * connections it accepted and closed by its engine's thread when their
 * TIME_WAIT ends, could be in the dump, then in none of our fds, then
 * have no name (it goes after the socket: engine.c's shim_esock_close),
 * and pass for a stranger's (t_prog_relisten, RUDP_ENGINES=2, under
 * load). Asked after those looks: a socket of ours still bound now had
 * its name then; one gone holds no port. Cannot tell: bound. */
static int still_bound(const struct sockaddr_storage *local, int v6only, uint32_t ino)
{
    seen now;
    memset(&now, 0, sizeof now);
    if (dump(AF_INET, local, v6only, &now) < 0 || dump(AF_INET6, local, v6only, &now) < 0 ||
        now.overflow)
        return 1;
    for (int i = 0; i < now.n; i++)
        if (now.ino[i] == ino)
            return 1;
    return 0;
}

/* Whether any socket in s (other processes') is a stranger's: not a
 * listener's of ours of uid `uid`, whose name (porthand.c) that uid holds,
 * and still bound on local once the names were read (still_bound).
 * The kernel lets only one euid into a SO_REUSEPORT group, so a member of
 * ours has the listener's uid; another user's socket bound with
 * SO_REUSEADDR is a stranger's whatever name its user made. 1, 0, or -1:
 * cannot tell. */
static int strangers(const seen *s, uid_t uid, const struct sockaddr_storage *local, int v6only)
{
    if (s->overflow)
        return 1;
    if (s->n == 0)
        return 0;
    for (int i = 0; i < s->n; i++)
        if (s->uid[i] != (uint32_t)uid)
            return 1;
    uint8_t named[MAX_SEEN];
    if (shim_porthand_named(s->ino, s->uid, s->n, named) < 0)
        return -1;
    for (int i = 0; i < s->n; i++)
        if (!named[i] && still_bound(local, v6only, s->ino[i]))
            return 1;
    return 0;
}

int shim_udp_others(const struct sockaddr_storage *local, int v6only, const uint64_t *mine,
                    int nmine, uid_t uid)
{
    seen s;
    memset(&s, 0, sizeof s);
    if (dump(AF_INET, local, v6only, &s) < 0 || dump(AF_INET6, local, v6only, &s) < 0)
        return -1;
    for (int i = 0; i < s.n;) {
        int ours = 0;
        for (int k = 0; k < nmine && !ours; k++)
            ours = mine[k] == s.ino[i];
        if (ours) {
            s.n--;
            s.ino[i] = s.ino[s.n];
            s.uid[i] = s.uid[s.n];
        } else
            i++;
    }
    return strangers(&s, uid, local, v6only);
}

int shim_port_stranger_udp(const struct sockaddr_storage *local, int v6only)
{
    seen s;
    memset(&s, 0, sizeof s);
    if (dump(AF_INET, local, v6only, &s) < 0 || dump(AF_INET6, local, v6only, &s) < 0)
        return -1;
    drop_ours(&s);
    return strangers(&s, geteuid(), local, v6only);
}

/* Whether s's socket i was found before (an IPv6 one in both dumps). */
static int seen_before(const seen *s, int i)
{
    for (int j = 0; j < i; j++)
        if (s->ino[j] == s->ino[i])
            return 1;
    return 0;
}

int shim_port_foreign_udp(int family, const struct sockaddr_storage *local, int v6only,
                          unsigned *moved)
{
    seen s;
    memset(&s, 0, sizeof s);
    *moved = 0;
    /* an IPv6 wildcard meets IPv4 sockets, and an IPv4 one dual-stack IPv6 */
    if (dump(AF_INET, local, v6only, &s) < 0 || dump(AF_INET6, local, v6only, &s) < 0)
        return -1;
    (void)family;
    drop_ours(&s);
    if (s.overflow)
        return 1;
    /* Another process's: a listener's of ours gives it up, or says it is
     * live; anything else is a stranger's. A stranger's named first
     * (nobody asked) keeps the port for it before any of ours moves its
     * connections for nothing. A socket found twice (an IPv6 one in both
     * dumps) is asked once: given up, the second ask finds no name. A
     * socket gone since the dump (still_bound) is nobody's. */
    uint8_t named[MAX_SEEN];
    if (shim_porthand_named(s.ino, s.uid, s.n, named) == 0)
        for (int i = 0; i < s.n; i++)
            if (!named[i] && still_bound(local, v6only, s.ino[i]))
                return 1;
    int busy = 0;
    for (int i = 0; i < s.n; i++) {
        if (seen_before(&s, i))
            continue;
        unsigned m = 0;
        int r = shim_porthand_ask(s.ino[i], (uid_t)s.uid[i], &m);
        if (r < 0 && still_bound(local, v6only, s.ino[i]))
            return 1;
        /* A live listener of another user: it would hold the TCP port
         * too, which listen() met first; so it is a stranger that
         * answers as ours (the port is its UDP socket's, no more). */
        if (r == EADDRINUSE && (uid_t)s.uid[i] != geteuid())
            return 1;
        if (r == EADDRINUSE)
            busy = 1;
        *moved += m;
    }
    return busy ? 2 : 0;
}

int shim_port_share_listener(const struct sockaddr_storage *local, int v6only, int tcp_fd,
                             int *same)
{
    *same = 0;
    seen s;
    memset(&s, 0, sizeof s);
    if (dump(AF_INET, local, v6only, &s) < 0 || dump(AF_INET6, local, v6only, &s) < 0)
        return -1;
    drop_ours(&s);
    for (int i = 0; i < s.n; i++) {
        if (seen_before(&s, i))
            continue;
        int one = 0;
        int lfd = shim_porthand_share(s.ino[i], (uid_t)s.uid[i], tcp_fd, &one);
        *same |= one;
        if (lfd >= 0)
            return lfd;
    }
    return -1;
}

/* ---- a client's UDP port when the ephemeral range has none free ---- */

typedef struct share_scan {
    unsigned lo, hi;       /* the ephemeral range */
    uint8_t *bad;          /* a byte per port of the range: 1 no, 2 a candidate */
    const struct sockaddr_storage *peer;
    uid_t uid;
    unsigned want_port;    /* count_peer: sockets on want_port connected to peer */
    int count;
} share_scan;

/* Whether the dump's socket m is connected to peer (v4 also as v4-mapped). */
static int to_peer(const struct inet_diag_msg *m, const struct sockaddr_storage *peer)
{
    uint8_t a[16];
    memset(a, 0, sizeof a);
    uint16_t port;
    if (peer->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)peer;
        a[10] = a[11] = 0xff;
        memcpy(a + 12, &in->sin_addr, 4);
        port = in->sin_port;
    } else {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)peer;
        memcpy(a, &in6->sin6_addr, 16);
        port = in6->sin6_port;
    }
    if (m->id.idiag_dport != port)
        return 0;
    if (m->idiag_family == AF_INET)
        return a[10] == 0xff && a[11] == 0xff && memcmp(a + 12, m->id.idiag_dst, 4) == 0 &&
               memcmp(a, "\0\0\0\0\0\0\0\0\0\0", 10) == 0;
    return memcmp(a, m->id.idiag_dst, 16) == 0;
}

static int scan_one(const struct nlmsghdr *h, void *ctx)
{
    share_scan *q = ctx;
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
        return -1;
    const struct inet_diag_msg *m = NLMSG_DATA(h);
    unsigned sport = ntohs(m->id.idiag_sport);
    if (q->want_port) {
        if (sport == q->want_port && to_peer(m, q->peer))
            q->count++;
        return 0;
    }
    if (sport < q->lo || sport > q->hi)
        return 0;
    uint8_t *b = &q->bad[sport - q->lo];
    /* Shared only with connected sockets of this user: each then takes
     * only its own peer's datagrams (the kernel's UDP lookup prefers a
     * connected socket that matches; a SO_REUSEPORT group is never
     * consulted for one). An unconnected socket (a listener's, a
     * program's) would take what is not theirs to take. */
    if (m->id.idiag_dport == 0 || m->idiag_uid != (uint32_t)q->uid || to_peer(m, q->peer))
        *b = 1;
    else if (*b == 0)
        *b = 2;
    return 0;
}

static int scan(share_scan *q)
{
    return dump_udp(AF_INET, scan_one, q) < 0 || dump_udp(AF_INET6, scan_one, q) < 0 ? -1 : 0;
}

/* The ephemeral range (net.ipv4.ip_local_port_range, which IPv6 uses too). */
static int port_range(unsigned *lo, unsigned *hi)
{
    int fd = open("/proc/sys/net/ipv4/ip_local_port_range", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[64];
    ssize_t n = real_read(fd, buf, sizeof buf - 1);
    real_close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *end;
    unsigned long a = strtoul(buf, &end, 10), b = strtoul(end, NULL, 10);
    if (a == 0 || b < a || b > 65535)
        return -1;
    *lo = (unsigned)a;
    *hi = (unsigned)b;
    return 0;
}

int shim_udp_connect_shared(int udp, const struct sockaddr_storage *bind_to,
                            const struct sockaddr_storage *peer, socklen_t len)
{
    static shim_mutex mu = SHIM_MUTEX_INITIALIZER; /* this process's pickers */
    share_scan q;
    memset(&q, 0, sizeof q);
    if (port_range(&q.lo, &q.hi) < 0)
        return -EADDRNOTAVAIL;
    q.peer = peer;
    q.uid = geteuid();
    q.bad = shim_calloc(q.hi - q.lo + 1, 1);
    if (!q.bad)
        return -ENOMEM;
    int err = -EADDRNOTAVAIL, one = 1;
    shim_mutex_lock(&mu);
    if (scan(&q) < 0 ||
        real_setsockopt(udp, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
        goto out;
    unsigned n = q.hi - q.lo + 1, start = 0;
    if (getrandom(&start, sizeof start, GRND_NONBLOCK) != (ssize_t)sizeof start)
        start = (unsigned)getpid();
    start %= n;
    for (unsigned i = 0; i < n; i++) {
        unsigned port = q.lo + (start + i) % n;
        /* 2: shareable; 0: no socket has it now (the one the kernel saw
         * left since): a plain bind takes it */
        if (q.bad[port - q.lo] == 1)
            continue;
        struct sockaddr_storage a = *bind_to;
        if (a.ss_family == AF_INET)
            ((struct sockaddr_in *)&a)->sin_port = htons((uint16_t)port);
        else
            ((struct sockaddr_in6 *)&a)->sin6_port = htons((uint16_t)port);
        if (real_bind(udp, (struct sockaddr *)&a, len) < 0)
            continue; /* a holder that shares with nobody, or changed since */
        if (real_connect(udp, (const struct sockaddr *)peer, len) < 0) {
            err = -errno;
            goto out;
        }
        /* Another process may have picked the same port for the same
         * peer meanwhile: then neither keeps it. */
        q.want_port = port;
        q.count = 0;
        err = scan(&q) == 0 && q.count == 1 ? 0 : -EAGAIN;
        goto out;
    }
out:
    shim_mutex_unlock(&mu);
    shim_free(q.bad);
    return err;
}
