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
#include <stdlib.h>
#include <string.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "porthand.h"
#include "portshare.h"
#include "shim.h"

#include "poison.h"

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

/* One dump of the UDP sockets of `family`; those unconnected on an address
 * overlapping local's go into *out. 0, or -1: cannot tell. */
static int dump(int family, const struct sockaddr_storage *local, int v6only, seen *out)
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
    dump_req q = {.local = local, .v6only = v6only, .out = out};
    return shim_diag_dump(&rq, sizeof rq, dump_one, &q);
}

/* Drops from s the sockets this process holds (the program's own, our
 * engines'). */
static void drop_ours(seen *s)
{
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

/* Whether any socket in s (other processes') is a stranger's: not a
 * listener's of ours of uid `uid`, whose name (porthand.c) that uid holds.
 * The kernel lets only one euid into a SO_REUSEPORT group, so a member of
 * ours has the listener's uid; another user's socket bound with
 * SO_REUSEADDR is a stranger's whatever name its user made. 1, 0, or -1:
 * cannot tell. */
static int strangers(const seen *s, uid_t uid)
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
        if (!named[i])
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
    return strangers(&s, uid);
}

int shim_port_stranger_udp(const struct sockaddr_storage *local, int v6only)
{
    seen s;
    memset(&s, 0, sizeof s);
    if (dump(AF_INET, local, v6only, &s) < 0 || dump(AF_INET6, local, v6only, &s) < 0)
        return -1;
    drop_ours(&s);
    return strangers(&s, geteuid());
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
     * dumps) is asked once: given up, the second ask finds no name. */
    uint8_t named[MAX_SEEN];
    if (shim_porthand_named(s.ino, s.uid, s.n, named) == 0)
        for (int i = 0; i < s.n; i++)
            if (!named[i])
                return 1;
    int busy = 0;
    for (int i = 0; i < s.n; i++) {
        int dup = 0;
        for (int j = 0; j < i; j++)
            dup |= s.ino[j] == s.ino[i];
        if (dup)
            continue;
        unsigned m = 0;
        int r = shim_porthand_ask(s.ino[i], (uid_t)s.uid[i], &m);
        if (r < 0)
            return 1;
        if (r == EADDRINUSE)
            busy = 1;
        *moved += m;
    }
    return busy ? 2 : 0;
}
