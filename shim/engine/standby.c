/*
 * standby.c: a client connection's standby path (RUDP_MULTIPATH=handover,
 * the default): a second UDP socket to the same server through another
 * interface of this host, which core/standby.c keeps validated and moves
 * the connection to when the path in use goes silent (the Wi-Fi that
 * stays associated with nothing behind it, a dead cellular bearer, an
 * upstream router that blackholes: no route or address changes, so
 * roam.c has nothing to act on).
 *
 * Opened once the connection is established (RUDP_PATHS names the
 * interfaces it may use, in order of preference; else any), where:
 *   - the server is not this host (loopback, or one of our addresses);
 *   - the primary's interface (the one holding the address routing chose
 *     at connect) is not a tunnel (point-to-point, or no link layer: tun,
 *     wireguard, ppp). The routing table sends the server's traffic into
 *     a VPN there, and a standby beside it would leave around the VPN;
 *   - another interface, up and running, not loopback, holds an address
 *     of the server's family (a global one, unless the server's is
 *     link-local) and has a route to the server. The socket is bound to
 *     that device (SO_BINDTODEVICE, no privilege since Linux 5.7) and to
 *     that address, so it leaves there with or without source routing
 *     rules; connect() fails on a device with no route to the server,
 *     and the next candidate is tried.
 * The first such address is taken; the interfaces are read from
 * rtnetlink (RTM_GETADDR, ioctl for names and flags): getifaddrs()
 * would take libc's malloc lock on an engine thread.
 *
 * A roam.c move (the primary's address went, sends fail, routing
 * changed) gives the connection a fresh socket: the standby goes with the
 * old one and a new one is looked for.
 */
#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

#include "base/poison.h"

#define STANDBY_CANDIDATES 16

typedef struct cand {
    int ifindex;
    rudp_addr addr;
} cand;

static int is_loopback_ip(const rudp_addr *a)
{
    const uint8_t *ip;
    size_t n = shim_addr_ip(a, &ip);
    if (n == 4)
        return ip[0] == 127;
    static const uint8_t one[16] = {[15] = 1};
    return n == 16 && memcmp(ip, one, 16) == 0;
}

static int is_link_local(const rudp_addr *a)
{
    const uint8_t *ip;
    size_t n = shim_addr_ip(a, &ip);
    if (n == 4)
        return ip[0] == 169 && ip[1] == 254;
    return n == 16 && ip[0] == 0xfe && (ip[1] & 0xc0) == 0x80;
}

/* This host's addresses of one family, as rtnetlink's dump gives them. */
typedef struct addrs_req {
    int family, n;
    cand v[STANDBY_CANDIDATES];
} addrs_req;

static int addr_one(const struct nlmsghdr *h, void *arg)
{
    addrs_req *q = arg;
    if (h->nlmsg_type != RTM_NEWADDR || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifaddrmsg)) ||
        q->n == STANDBY_CANDIDATES)
        return 0;
    const struct ifaddrmsg *ifa = NLMSG_DATA(h);
    if (ifa->ifa_family != q->family ||
        (ifa->ifa_flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED | IFA_F_DEPRECATED)))
        return 0;
    size_t alen = q->family == AF_INET ? 4 : 16, len;
    size_t attrs = h->nlmsg_len - NLMSG_LENGTH(sizeof *ifa);
    /* IFA_LOCAL on a point-to-point link, else IFA_ADDRESS */
    const uint8_t *ip = shim_nla_get(IFA_RTA(ifa), attrs, IFA_LOCAL, &len);
    if (!ip || len < alen)
        ip = shim_nla_get(IFA_RTA(ifa), attrs, IFA_ADDRESS, &len);
    if (!ip || len < alen)
        return 0;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (q->family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        memcpy(&in->sin_addr, ip, 4);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        memcpy(&in6->sin6_addr, ip, 16);
        if (ifa->ifa_scope == RT_SCOPE_LINK)
            in6->sin6_scope_id = ifa->ifa_index;
    }
    q->v[q->n].ifindex = (int)ifa->ifa_index;
    shim_to_rudp_addr((struct sockaddr *)&ss, &q->v[q->n].addr);
    q->n++;
    return 0;
}

/* This host's addresses of q->family into q (at most STANDBY_CANDIDATES);
 * 0, or -1. */
static int host_addrs(addrs_req *q)
{
    struct {
        struct nlmsghdr h;
        struct ifaddrmsg a;
    } req;
    memset(&req, 0, sizeof req);
    req.h.nlmsg_len = sizeof req;
    req.h.nlmsg_type = RTM_GETADDR;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.a.ifa_family = (uint8_t)q->family;
    q->n = 0;
    return shim_netlink_dump(NETLINK_ROUTE, &req, sizeof req, addr_one, q);
}

/* Interface ifindex's name and flags, and whether it is a tunnel
 * (point-to-point, or no link layer). -1 if gone. */
static int if_info(int ifindex, char name[IF_NAMESIZE], short *flags, int *tunnel)
{
    int u = real_socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (u < 0)
        return -1;
    struct ifreq r;
    memset(&r, 0, sizeof r);
    r.ifr_ifindex = ifindex;
    int rc = -1;
    if (real_ioctl(u, SIOCGIFNAME, &r) == 0) {
        memcpy(name, r.ifr_name, IF_NAMESIZE);
        name[IF_NAMESIZE - 1] = 0;
        if (real_ioctl(u, SIOCGIFFLAGS, &r) == 0) {
            *flags = r.ifr_flags;
            *tunnel = (r.ifr_flags & IFF_POINTOPOINT) != 0;
            if (real_ioctl(u, SIOCGIFHWADDR, &r) == 0 &&
                (r.ifr_hwaddr.sa_family == ARPHRD_NONE || r.ifr_hwaddr.sa_family == ARPHRD_PPP ||
                 r.ifr_hwaddr.sa_family == ARPHRD_TUNNEL ||
                 r.ifr_hwaddr.sa_family == ARPHRD_TUNNEL6))
                *tunnel = 1;
            rc = 0;
        }
    }
    real_close(u);
    return rc;
}

/* A UDP socket as the primary p's (its IPV6_V6ONLY, the app's marks),
 * bound to device `name` and address `a` when given (no device: routing
 * picks), connected to `to`; or -1. */
static int open_like(const esock *p, const char *name, const rudp_addr *a, const rudp_addr *to)
{
    int fd = shim_udp_like(p);
    if (fd < 0)
        return -1;
    struct sockaddr_storage src, dst;
    socklen_t dl = shim_from_rudp_addr(to, &dst);
    int bad = 0;
    if (name) {
        socklen_t sl = shim_from_rudp_addr(a, &src);
        bad = real_setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, (socklen_t)strlen(name) + 1) <
                  0 ||
              real_bind(fd, (struct sockaddr *)&src, sl) < 0;
    }
    if (bad || real_connect(fd, (struct sockaddr *)&dst, dl) < 0) {
        real_close(fd); /* no route to the server from there */
        return -1;
    }
    return fd;
}

/* fd (open_like's) becomes b's standby socket, to `to` (NULL: the
 * connection's server address). 0, or -1 (fd is closed). */
static int adopt(bridge *b, rudp_time now, int fd, const rudp_addr *to, const char *how)
{
    esock *p = b->sock;
    shim_udp_grow_buffers(fd, 0);
    fd = shim_fd_move_high(fd);
    shim_own_fd(fd, 1);
    esock *s = shim_esock_new(b->e, fd, p->family);
    if (!s) {
        shim_close_owned(fd);
        return -1;
    }
    s->peer = to ? *to : p->peer;
    s->connected = 1;
    s->refs = 1; /* the bridge's; the connection's moves with rudp_conn_sock */
    if (rudp_conn_standby(b->conn, now, s->idx, to) < 0) {
        shim_esock_unref(s);
        return -1;
    }
    b->standby = s;
    if (shim_cfg.log_level >= RUDP_LOG_INFO) {
        char cname[160];
        rudp_conn_name(b->conn, cname, sizeof cname);
        shim_log(RUDP_LOG_INFO, "%s: a standby path %s", cname, how);
    }
    return 0;
}

void shim_standby_open(bridge *b, rudp_time now)
{
    if (!shim_cfg.multipath || !b->conn || !b->owns_sock || !b->sock || b->standby ||
        !b->sock->connected)
        return;
    esock *p = b->sock;
    const rudp_addr *peer = &p->peer;
    if (is_loopback_ip(peer))
        return;
    rudp_addr mine;
    if (shim_to_rudp_local(p->fd, &mine) < 0)
        return;
    addrs_req q = {.family = p->family};
    if (host_addrs(&q) < 0)
        return; /* no rtnetlink here (a sandbox) */
    int n = q.n, primary = -1;
    const cand *v = q.v;
    for (int i = 0; i < n; i++) {
        if (shim_addr_same_ip(&v[i].addr, peer))
            return; /* the server is this host */
        if (shim_addr_same_ip(&v[i].addr, &mine))
            primary = v[i].ifindex;
    }
    char name[IF_NAMESIZE];
    short flags;
    int tunnel;
    if (primary < 0 || if_info(primary, name, &flags, &tunnel) < 0 || tunnel ||
        (flags & IFF_LOOPBACK))
        return; /* not known, loopback, or a VPN's tunnel: none beside it */
    int ll = is_link_local(peer);
    /* RUDP_PATHS: only the interfaces named, in their order; else any */
    int ranks = shim_cfg.npaths ? shim_cfg.npaths : 1;
    for (int r = 0; r < ranks; r++) {
        for (int i = 0; i < n; i++) {
            if (v[i].ifindex == primary || is_link_local(&v[i].addr) != ll ||
                is_loopback_ip(&v[i].addr) || if_info(v[i].ifindex, name, &flags, &tunnel) < 0 ||
                (flags & IFF_LOOPBACK) || !(flags & IFF_UP) || !(flags & IFF_RUNNING) ||
                (shim_cfg.npaths && strcmp(name, shim_cfg.paths[r]) != 0))
                continue;
            int fd = open_like(p, name, &v[i].addr, peer);
            if (fd < 0)
                continue;
            char how[96], a[64];
            rudp_addr_format(&v[i].addr, a, sizeof a);
            snprintf(how, sizeof how, "from %s on %s", a, name);
            adopt(b, now, fd, NULL, how);
            return;
        }
    }
}

void shim_standby_offered(bridge *b, rudp_time now)
{
    rudp_addr to;
    if (!shim_cfg.multipath || !b->conn || !b->owns_sock || !b->sock || b->standby ||
        !b->sock->connected || !rudp_conn_server_offer(b->conn, &to))
        return; /* one standby: another interface's, when there is one */
    int fd = open_like(b->sock, NULL, NULL, &to);
    if (fd < 0)
        return;
    char how[96], a[64];
    rudp_addr_format(&to, a, sizeof a);
    snprintf(how, sizeof how, "to %s, the server's other address", a);
    adopt(b, now, fd, &to, how);
}

void shim_standby_offer(bridge *b, rudp_time now)
{
    const rudp_addr *dst = b->conn ? rudp_conn_local(b->conn) : NULL;
    if (!shim_cfg.multipath || !shim_cfg.offer.family || !dst || !b->sock || !b->sock->pktinfo ||
        dst->family != shim_cfg.offer.family || shim_addr_same_ip(dst, &shim_cfg.offer))
        return; /* a listener bound to one address hears no other */
    struct sockaddr_storage ss;
    socklen_t l = sizeof ss;
    if (real_getsockname(b->sock->fd, (struct sockaddr *)&ss, &l) < 0)
        return;
    rudp_addr a = shim_cfg.offer;
    a.port = (uint16_t)shim_ss_port(&ss); /* the listener's port, at the other address */
    rudp_conn_offer_addr(b->conn, now, &a);
}

void shim_standby_moved(bridge *b)
{
    esock *s = b->standby;
    if (!s || !b->conn || rudp_conn_sock(b->conn) != s->idx)
        return;
    /* the connection's reference (conn_freed) and the roles trade */
    esock *was = b->sock;
    s->refs++;
    was->refs--;
    s->owner = b;
    was->owner = NULL;
    s->send_failed = was->send_failed = 0;
    b->sock = s;
    b->standby = was;
}

void shim_standby_close(bridge *b)
{
    esock *s = b->standby;
    if (!s)
        return;
    if (b->conn)
        rudp_conn_standby_clear(b->conn);
    b->standby = NULL;
    shim_esock_unref(s);
}
