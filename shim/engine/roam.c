/*
 * roam.c: a client connection moves to a new UDP socket when its own
 * stops working, and the server follows it (core/path.h says how, and how
 * it resists an attacker). A socket stops working when its sends fail
 * (the address it sent from went away: EADDRNOTAVAIL; the route changed
 * or vanished: ENETDOWN, EINVAL, and ENETUNREACH or EHOSTUNREACH when
 * routing now picks another source, since a router's ICMP error reads the
 * same on a connected socket), or when nothing is heard for a few probe
 * timeouts (RUDP_EV_SILENT: a middlebox lost the flow), or at once when
 * the kernel says (rtnetlink)
 * that its address went away (RTM_DELADDR), or shortly after it says that
 * routing changed (RTM_NEWADDR, RTM_NEWROUTE, RTM_DELROUTE) so that another
 * source address is chosen now: a laptop whose Wi-Fi gave way to cellular
 * resumes within a round trip of the new network's arrival, not at its
 * next probe. Route news is taken 50 ms after it came, once for a burst,
 * and moves a connection at most every 250 ms: router advertisements from
 * anyone on the LAN can make prefixes come and go, and each look costs a
 * socket per connection. Only the kernel's news is taken. The
 * new socket is connected to the same server, never bound to the old
 * address, so the kernel picks today's route, source address and a fresh
 * port. The socket the server last answered on stays open and read until
 * a later move is answered or the connection ends: what was in flight to
 * it still arrives, and no ICMP port unreachable tells the server its
 * peer is gone.
 *
 * A send this host refuses is no path failure: a rule of the local
 * firewall (EPERM: netfilter's DROP or REJECT on the output hook, a cgroup
 * egress filter), a full queue (ENOBUFS, EAGAIN) or memory (ENOMEM) meet a
 * new socket the same way. Moving then only made a new UDP flow through
 * every NAT on the way, every 250 ms while the rule stayed (25 in 9 s).
 * The connection stays on its socket, its datagrams count as
 * lost, loss recovery backs off and sends again, as kernel TCP does when
 * its output is dropped, and the user timeout ends it if the refusal
 * stays. A silence while this host refused the sends is no sign of a lost
 * flow either: RUDP_EV_SILENT moves the connection only if no send of its
 * socket was refused during that silence (RUDP_SILENT_MIN, its shortest:
 * a full buffer long before, routine for a bulk sender, says nothing).
 */
#include <errno.h>
#include <stdatomic.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

#include "base/poison.h"

/* No new socket more often than this per connection: a host with no
 * network at all fails every send, and each move costs a socket. */
#define ROAM_MIN_INTERVAL RUDP_MS(250)

/* News that routes changed is taken this long after it came, once for
 * everything that came meanwhile. */
#define ROAM_COALESCE RUDP_MS(50)

/* This process may not open rtnetlink (a sandbox): not asked again at
 * every connect. */
static atomic_int nl_denied;

static int same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    rudp_addr x, y;
    shim_to_rudp_addr((const struct sockaddr *)a, &x);
    shim_to_rudp_addr((const struct sockaddr *)b, &y);
    return x.family == y.family && memcmp(x.ip, y.ip, sizeof x.ip) == 0;
}

/* The new socket of a silent connection (open): bound to the old one's
 * port on the wildcard address, not connected, so that it hears its server
 * from any address (SO_REUSEADDR on both for that bind: the old one,
 * still connected, keeps what its server's old address sends). 0, or -1 with errno. */
static int reopen_port(int old, int fd, int family)
{
    struct sockaddr_storage ss;
    socklen_t l = sizeof ss;
    int on = 1;
    if (real_getsockname(old, (struct sockaddr *)&ss, &l) < 0)
        return -1;
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_addr = in6addr_any;
        a->sin6_flowinfo = 0;
        a->sin6_scope_id = 0;
    } else {
        ((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_ANY);
    }
    int off = 0, rc = -1;
    if (real_setsockopt(old, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == 0 &&
        real_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == 0)
        rc = real_bind(fd, (struct sockaddr *)&ss, l);
    /* Only for that bind: the kernel looks at it when another socket
     * binds, so with it off again no other socket (another user's) can
     * bind our port and take what the server sends there. */
    int err = errno;
    real_setsockopt(old, SOL_SOCKET, SO_REUSEADDR, &off, sizeof off);
    real_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &off, sizeof off);
    errno = err;
    return rc;
}

static void rebind(bridge *b, rudp_time now, const char *why, int force, int open);

int shim_udp_like(const esock *old)
{
    int fd = real_socket(old->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (old->family == AF_INET6) {
        int v6 = 0;
        socklen_t vl = sizeof v6;
        if (real_getsockopt(old->fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6, &vl) == 0)
            real_setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof v6);
    }
    shim_marks_copy(old->fd, fd, old->family); /* the app's IP_TOS and the like */
    return fd;
}

/* force: the kernel said the connection's own address went away
 * (RTM_DELADDR): not limited by ROAM_MIN_INTERVAL, whose purpose is a host
 * failing every send or news of routes coming often; the old socket has
 * nothing left to send from. open: the connection went silent: the new
 * socket keeps the old one's port and hears every address (reopen_port),
 * since a server whose address was replaced sends from its new one to the
 * port it knows. */
static void rebind(bridge *b, rudp_time now, const char *why, int force, int open)
{
    esock *old = b->sock;
    if (!b->conn || !b->owns_sock || !old || (!force && now < b->roam_next))
        return;
    b->roam_next = now + ROAM_MIN_INTERVAL;
    struct engine *e = b->e;
    struct sockaddr_storage peer, was, is;
    socklen_t plen = shim_from_rudp_addr(&old->peer, &peer), l1 = sizeof was, l2 = sizeof is;
    if (!old->connected) /* a reopened port: the address it had */
        shim_from_rudp_addr(&old->opened_at, &was);
    else if (real_getsockname(old->fd, (struct sockaddr *)&was, &l1) < 0)
        memset(&was, 0, sizeof was);
    int fd = shim_udp_like(old);
    if (fd < 0)
        return;
    if ((open ? reopen_port(old->fd, fd, old->family)
              : real_connect(fd, (struct sockaddr *)&peer, plen)) < 0 ||
        real_getsockname(fd, (struct sockaddr *)&is, &l2) < 0) {
        /* no route yet: the next failure or silence tries again */
        SHIM_LOG(RUDP_LOG_DEBUG, "connection %llu: no new socket (%s): %s",
                 (unsigned long long)b->id, why, shim_strerror(errno));
        real_close(fd);
        return;
    }
    shim_udp_grow_buffers(fd, 0);
    fd = shim_fd_move_high(fd);
    shim_own_fd(fd, 1);
    esock *s = shim_esock_new(e, fd, old->family);
    if (!s) {
        shim_close_owned(fd);
        return;
    }
    s->peer = old->peer;
    s->connected = !open;
    if (open) /* its own address is the wildcard: this one may still go (is_gone) */
        shim_to_rudp_addr((struct sockaddr *)&was, &s->opened_at);
    s->refs = 2; /* as do_connect's: the connection's and the bridge's */
    s->owner = b;
    int new_ip = !open && !same_ip(&was, &is); /* open: the same port, today's route */
    if (rudp_conn_rebind(b->conn, now, s->idx, new_ip) < 0) {
        s->refs = 0;
        shim_esock_unref(s);
        return;
    }
    rudp_addr local;
    shim_to_rudp_addr((struct sockaddr *)&is, &local);
    if (!open) /* open: the wildcard address says less than the old name */
        rudp_conn_set_name_local(b->conn, &local);
    if (shim_cfg.log_level >= RUDP_LOG_INFO) {
        rudp_addr a;
        char from[64], to[64];
        shim_to_rudp_addr((struct sockaddr *)&was, &a);
        rudp_addr_format(&a, from, sizeof from);
        rudp_addr_format(&local, to, sizeof to);
        char name[160];
        rudp_conn_name(b->conn, name, sizeof name);
        shim_log(RUDP_LOG_INFO, "%s: moved to a new socket (%s): %s -> %s", name, why, from, to);
    }
    /* The connection's reference moves to s. The bridge keeps its own on
     * the socket the server knows: the one it left if the server ever
     * answered there, else the one kept from before (a socket never heard
     * from goes: closing the one the server still sends to would earn an
     * ICMP port unreachable, and a reset, at the end of a blackout). */
    old->owner = NULL;
    old->send_failed = 0;
    shim_esock_unref(old);
    if (b->old_sock && !old->heard) {
        shim_esock_unref(old);
    } else {
        if (b->old_sock)
            shim_esock_unref(b->old_sock);
        b->old_sock = old;
    }
    b->sock = s;
    /* the standby went with the old socket (rudp_conn_rebind): another,
     * from today's interfaces */
    shim_standby_close(b);
    shim_standby_open(b, now);
}

/* Whether routing now sends to s's peer from another source address than
 * s's own (or cannot reach it): a connected UDP socket's getsockname is
 * the kernel's choice, as in do_connect. 0 when it still picks the same
 * one, or when s has no address to compare. */
static int source_changed(const esock *s)
{
    if (!s->connected)
        return 0; /* routing picks each datagram's source: nothing to move */
    struct sockaddr_storage peer, was, is;
    socklen_t plen = shim_from_rudp_addr(&s->peer, &peer), l1 = sizeof was, l2 = sizeof is;
    if (real_getsockname(s->fd, (struct sockaddr *)&was, &l1) < 0)
        return 0;
    int fd = real_socket(s->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int changed = real_connect(fd, (struct sockaddr *)&peer, plen) < 0 ||
                  real_getsockname(fd, (struct sockaddr *)&is, &l2) < 0 || !same_ip(&was, &is);
    real_close(fd);
    return changed;
}

/* Whether err, from a send, says this host refused it (see the top). */
static int refused_here(int err)
{
    return err == EPERM || err == EACCES || err == ENOBUFS || err == EAGAIN ||
           err == EWOULDBLOCK || err == ENOMEM;
}

void shim_roam_send_error(void *user, int fd, int err)
{
    struct engine *e = user;
    int refused = refused_here(err);
    if (!refused && err != EADDRNOTAVAIL && err != ENETUNREACH && err != EHOSTUNREACH &&
        err != ENETDOWN && err != EINVAL)
        return; /* anything else: the path itself may be there */
    for (uint32_t i = 0; i < e->nsocks; i++) {
        esock *s = e->socks[i];
        if (s && s->fd == fd && s->owner) {
            if (refused) {
                s->refused_at = shim_now(); /* stays on its socket, as for loss */
                return;
            }
            s->send_failed = err;
            e->roam_due = 1;
            return;
        }
    }
}

void shim_roam_silent(bridge *b, rudp_time now)
{
    rudp_time at = b->sock ? b->sock->refused_at : 0;
    if (b->sock)
        b->sock->refused_at = 0;
    if (at && now >= at && now - at <= RUDP_SILENT_MIN)
        return; /* our own host dropped what we sent during this silence:
                   the next silence decides, unless it refuses those too */
    /* Silences alternate: the port reopened to every address (a server
     * that moved answers there), then, if that brought nothing, a fresh
     * socket and port connected to the server (a 5-tuple that some box on
     * the way keeps dropping), and so on. */
    int open = !b->sock || b->sock->connected;
    rebind(b, now, open ? "nothing heard for several probe timeouts"
                        : "nothing heard on the reopened port either", 0, open);
}

void shim_roam_due(struct engine *e, rudp_time now)
{
    for (uint32_t i = 0; i < e->nsocks; i++) {
        esock *s = e->socks[i];
        if (!s || !s->send_failed || !s->owner)
            continue;
        int err = s->send_failed;
        s->send_failed = 0;
        /* EHOSTUNREACH (and ENETUNREACH) may be a router's ICMP error
         * reported on a send, not our address or route gone: move then
         * only if routing now picks another source. */
        if ((err == EHOSTUNREACH || err == ENETUNREACH) && !source_changed(s))
            continue;
        char why[96];
        snprintf(why, sizeof why, "its sends fail: %s", shim_strerror(err));
        rebind(s->owner, now, why, 0, 0);
    }
}

static const shim_watch_ops netlink_ops;

/* ---- rtnetlink: the kernel tells of addresses and routes ---- */

int shim_roam_watch(struct engine *e)
{
    if (e->nl_fd > 0)
        return 0;
    if (atomic_load(&nl_denied))
        return -EPERM;
    int fd = real_socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) {
        /* no rtnetlink (a sandbox): sends and silence still tell; a lack
         * of fds or memory may pass, a refusal stays */
        int err = errno;
        if (err == EACCES || err == EPERM || err == EAFNOSUPPORT || err == EPROTONOSUPPORT ||
            err == EINVAL)
            atomic_store(&nl_denied, 1);
        return -err;
    }
    struct sockaddr_nl sa;
    memset(&sa, 0, sizeof sa);
    sa.nl_family = AF_NETLINK;
    sa.nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE;
    if (real_bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int err = -errno;
        if (err == -EACCES || err == -EPERM)
            atomic_store(&nl_denied, 1);
        real_close(fd);
        return err;
    }
    fd = shim_fd_move_high(fd);
    shim_own_fd(fd, 1);
    shim_watch_set(&e->nl_w, &netlink_ops);
    struct epoll_event ee = {.events = EPOLLIN, .data.ptr = &e->nl_w};
    if (real_epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ee) < 0) {
        int err = -errno;
        shim_close_owned(fd);
        return err;
    }
    e->nl_fd = fd;
    return 0;
}

/* The addresses one RTM_DELADDR names (IFA_LOCAL, IFA_ADDRESS) into gone[];
 * *full set when one more did not fit. */
static uint32_t deleted_addr(struct nlmsghdr *h, rudp_addr *gone, uint32_t n, uint32_t max,
                             int *full)
{
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifaddrmsg)))
        return n; /* malformed: nothing read past it */
    struct ifaddrmsg *ifa = NLMSG_DATA(h);
    size_t alen = ifa->ifa_family == AF_INET ? 4 : ifa->ifa_family == AF_INET6 ? 16 : 0;
    if (!alen)
        return n;
    /* the attributes by hand: RTA_NEXT's int arithmetic trips -Wconversion */
    size_t left = h->nlmsg_len - NLMSG_LENGTH(sizeof *ifa);
    const uint8_t *p = (const uint8_t *)IFA_RTA(ifa);
    for (; left >= sizeof(struct rtattr);) {
        const struct rtattr *a = (const struct rtattr *)p;
        if (a->rta_len < sizeof *a || a->rta_len > left)
            break;
        size_t step = RTA_ALIGN((size_t)a->rta_len);
        p += step;
        left = step < left ? left - step : 0;
        if ((a->rta_type != IFA_LOCAL && a->rta_type != IFA_ADDRESS) ||
            (size_t)a->rta_len < RTA_LENGTH(alen))
            continue;
        if (n == max) {
            *full = 1;
            break;
        }
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof ss);
        if (alen == 4) {
            struct sockaddr_in *in = (struct sockaddr_in *)&ss;
            in->sin_family = AF_INET;
            memcpy(&in->sin_addr, RTA_DATA(a), 4);
        } else {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
            in6->sin6_family = AF_INET6;
            memcpy(&in6->sin6_addr, RTA_DATA(a), 16);
        }
        shim_to_rudp_addr((struct sockaddr *)&ss, &gone[n++]);
    }
    return n;
}

static int among(const rudp_addr *a, const rudp_addr *gone, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (shim_addr_same_ip(a, &gone[i]))
            return 1;
    return 0;
}

/* Whether this host still has address a (a UDP socket binds to it); the
 * last answer is kept for one look at the connections (most share their
 * address). */
typedef struct ours_memo {
    int valid, ours;
    rudp_addr a;
} ours_memo;

static int still_ours(const esock *s, const rudp_addr *a, ours_memo *m)
{
    if (m->valid && among(a, &m->a, 1))
        return m->ours;
    struct sockaddr_storage ss;
    socklen_t l = shim_from_rudp_addr(a, &ss);
    if (ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&ss)->sin_port = 0;
    else
        ((struct sockaddr_in6 *)&ss)->sin6_port = 0;
    int fd = real_socket(s->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 1;
    int ours = real_bind(fd, (struct sockaddr *)&ss, l) == 0 || errno != EADDRNOTAVAIL;
    real_close(fd);
    *m = (ours_memo){.valid = 1, .ours = ours, .a = *a};
    return ours;
}

/* Server side: an accepted connection of e that sent from an address that
 * went away (in gone[], or, n = 0, no longer this host's) sends from the
 * one routing picks toward its client now (asked of the kernel by
 * connecting a UDP socket), on its listener's socket; the client validates
 * it and follows (core/path.h). A listener bound to that very address has
 * nothing else to send from: its connections end as kernel TCP's would.
 * Routing may have no answer yet (the prefix route goes with the primary
 * address, and comes back with the promoted one): 1 then, for a look at
 * the next news of routes. */
static int server_address_gone(bridge *b, rudp_time now, const rudp_addr *gone, uint32_t n,
                               ours_memo *m, ours_memo *fresh)
{
    if (!b->conn || b->owns_sock || !b->sock || !b->sock->pktinfo)
        return 0; /* a client's, or bound to the address that went */
    const rudp_addr *was = rudp_conn_local(b->conn);
    if (!was || (n ? !among(was, gone, n) : still_ours(b->sock, was, m)))
        return 0;
    rudp_addr to;
    int ok = shim_route_source(b->sock->family, rudp_conn_peer(b->conn), &to) == 0;
    if (ok)
        to.port = was->port;
    if (!ok || (n && among(&to, gone, n)) || !still_ours(b->sock, &to, fresh)) {
        SHIM_LOG(RUDP_LOG_DEBUG, "connection %llu: its address went away, and no other reaches "
                                 "the client yet", (unsigned long long)b->id);
        /* meanwhile the client's kernel may refuse what leaves from
         * another address: no verdict */
        rudp_conn_move_local(b->conn, now, NULL);
        return 1;
    }
    if (rudp_conn_move_local(b->conn, now, &to) < 0)
        return 0; /* closing (TIME_WAIT): nothing to move */
    rudp_conn_set_name_local(b->conn, &to);
    return 0;
}

static int servers_addresses_gone(struct engine *e, rudp_time now, const rudp_addr *gone,
                                  uint32_t n)
{
    int again = 0;
    ours_memo m = {0}, fresh = {0}; /* the address gone, the one routing picks */
    for (bridge *b = e->bridges; b; b = b->next)
        again |= server_address_gone(b, now, gone, n, &m, &fresh);
    return again;
}

static int is_gone(const esock *s, const rudp_addr *gone, uint32_t n)
{
    struct sockaddr_storage ss;
    socklen_t l = sizeof ss;
    if (!n)
        return 0;
    rudp_addr mine;
    if (!s->connected) {
        mine = s->opened_at; /* a reopened port sends from what routing picks;
                                the address it had going means a move now */
    } else {
        if (real_getsockname(s->fd, (struct sockaddr *)&ss, &l) < 0)
            return 0;
        shim_to_rudp_addr((struct sockaddr *)&ss, &mine);
    }
    for (uint32_t i = 0; i < n; i++)
        if (gone[i].family == mine.family && memcmp(gone[i].ip, mine.ip, sizeof mine.ip) == 0)
            return 1;
    return 0;
}

/* e->nl_fd is readable (the engine's epoll, hooks.h): a client connection
 * whose source address went away moves to a new socket at once; news that
 * routing changed sets e->roam_at, a short while later, so that a burst
 * is looked at once. */
static void netlink_event(void *obj, uint32_t events, rudp_time now)
{
    (void)events;
    struct engine *e = SHIM_CONTAINER(obj, struct engine, nl_w);
    rudp_addr gone[16];
    uint32_t ngone = 0;
    int routes = 0, full = 0, lost = 0;
    /* Read everything queued: one look at the connections for a burst of
     * news (an interface going brings many messages). */
    for (int rounds = 0; rounds < 64; rounds++) {
        union {
            struct nlmsghdr h;
            uint8_t b[8192];
        } buf;
        struct sockaddr_nl from;
        socklen_t fl = sizeof from;
        memset(&from, 0, sizeof from);
        ssize_t r = real_recvfrom(e->nl_fd, buf.b, sizeof buf.b, 0, (struct sockaddr *)&from, &fl);
        if (r < 0) {
            if (errno == ENOBUFS)
                routes = lost = 1; /* news was lost: look at every connection */
            if (errno == EINTR || errno == ENOBUFS)
                continue;
            break;
        }
        if (fl < sizeof from || from.nl_family != AF_NETLINK || from.nl_pid != 0) {
            /* not the kernel's: another process of this host may send to
             * our netlink port, and its news is not to be believed */
            e->nl_foreign++;
            SHIM_LOG(RUDP_LOG_DEBUG, "rtnetlink message from port %u dropped (not the kernel)",
                     (unsigned)from.nl_pid);
            continue;
        }
        size_t left = (size_t)r;
        for (const uint8_t *p = buf.b; left >= sizeof(struct nlmsghdr);) {
            struct nlmsghdr *h = (struct nlmsghdr *)(uintptr_t)p;
            if (h->nlmsg_len < sizeof *h || h->nlmsg_len > left)
                break;
            if (h->nlmsg_type == RTM_DELADDR)
                ngone = deleted_addr(h, gone, ngone, 16, &full);
            else if (h->nlmsg_type == RTM_NEWADDR || h->nlmsg_type == RTM_NEWROUTE ||
                     h->nlmsg_type == RTM_DELROUTE)
                routes = 1;
            size_t step = NLMSG_ALIGN((size_t)h->nlmsg_len);
            p += step;
            left = step < left ? left - step : 0;
        }
    }
    if (full)
        routes = 1; /* more addresses went than we keep: every connection is looked at */
    if (routes && (full || lost))
        e->roam_servers = 1; /* which addresses went is not known: servers look too */
    if (routes && e->roam_at == RUDP_TIME_NEVER)
        e->roam_at = now + ROAM_COALESCE;
    if (!ngone)
        return;
    /* A connection whose own address went has nothing to send from: it
     * moves now, whatever the interval. */
    for (uint32_t i = 0; i < e->nsocks; i++) {
        esock *s = e->socks[i];
        if (s && s->owner && s->owner->sock == s && is_gone(s, gone, ngone))
            rebind(s->owner, now, "its address went away", 1, 0);
    }
    if (servers_addresses_gone(e, now, gone, ngone)) {
        e->roam_servers = 1;
        if (e->roam_at == RUDP_TIME_NEVER)
            e->roam_at = now + ROAM_COALESCE;
    }
}

static const shim_watch_ops netlink_ops = {.event = netlink_event};

void shim_roam_timer(struct engine *e, rudp_time now)
{
    rudp_time next = RUDP_TIME_NEVER;
    /* a server's connection whose address went while routing had no
     * other (or news was lost): until each has moved */
    if (e->roam_servers) {
        e->roam_servers = servers_addresses_gone(e, now, NULL, 0);
        if (e->roam_servers)
            next = now + ROAM_MIN_INTERVAL;
    }
    for (uint32_t i = 0; i < e->nsocks; i++) {
        esock *s = e->socks[i];
        if (!s || !s->owner || s->owner->sock != s)
            continue;
        bridge *b = s->owner;
        if (b->conn && b->owns_sock && now < b->roam_next) {
            /* moved a moment ago: looked at again once it may move */
            if (b->roam_next < next)
                next = b->roam_next;
            continue;
        }
        if (source_changed(s))
            rebind(b, now, "routing now picks another source address", 0, 0);
    }
    e->roam_at = next;
}
