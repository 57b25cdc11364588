/*
 * pktctl.c: the source address and marks of an accepted connection's
 * datagrams, which leave by its listener's UDP socket, shared by all the
 * listener's connections (udpio.c sends them as control messages).
 *
 * Kernel TCP gives each accepted connection a socket of its own: its
 * segments leave from the address the client connected to (the request's
 * destination, tcp_v4_init_req(); a wildcard listener's included, where
 * routing alone might pick another source on a host with several
 * addresses on one route), and with the IP_TOS / IPV6_TCLASS and IP_TTL /
 * IPV6_UNICAST_HOPS it had from its listener at accept time or that the
 * application set on it since. Here:
 *
 *   - the source: a wildcard listener's socket learns each datagram's
 *     destination (IP_PKTINFO / IPV6_RECVPKTINFO, engine.c) and the core
 *     keeps it with the connection. Handshake packets (the connection has
 *     no bridge yet) carry it always; an accepted connection's only where
 *     routing to its peer would pick another source (asked of the kernel
 *     once, by connecting a UDP socket to the peer), so that a host whose
 *     clients use the address routing picks anyway (the usual case: one
 *     address per route) pays nothing per datagram;
 *   - the marks: set on an accepted socket (CMD_SET_MARK), or changed on
 *     its listener after the connection was accepted (the connection keeps
 *     the listener's old value, as a TCP socket keeps what it inherited),
 *     they go with each datagram of that connection alone.
 *
 * All of it is kept in the connection's send tag (the core hands it back
 * with each datagram, also after the bridge is gone, during the closing
 * handshake), so a connection with none of these costs a test per
 * datagram and sends without control messages.
 */
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"

#include "base/poison.h"

const shim_mark_opt shim_marks[SHIM_MARKS] = {
    {IPPROTO_IP, IP_TOS},
    {IPPROTO_IP, IP_TTL},
    {IPPROTO_IPV6, IPV6_TCLASS},
    {IPPROTO_IPV6, IPV6_UNICAST_HOPS},
};

void shim_marks_copy(int from, int to, int family)
{
    for (size_t i = 0; i < SHIM_MARKS; i++) {
        int v;
        socklen_t l = sizeof v;
        if ((shim_marks[i].level == IPPROTO_IPV6 && family != AF_INET6) ||
            real_getsockopt(from, shim_marks[i].level, shim_marks[i].opt, &v, &l) < 0)
            continue;
        real_setsockopt(to, shim_marks[i].level, shim_marks[i].opt, &v, sizeof v);
    }
}

/* The send tag: TAG_SET once the connection was accepted (before, its
 * handshake packets leave from the address the client reached, always);
 * then what its datagrams carry. */
#define TAG_SET 1u
#define TAG_SRC 2u       /* from the address the client reached */
#define TAG_TOS 4u       /* IP_TOS / IPV6_TCLASS, bits 8..15 */
#define TAG_TTL 8u       /* IP_TTL / IPV6_HOPLIMIT, bits 16..23 */
#define TOS_SHIFT 8
#define TTL_SHIFT 16

size_t shim_addr_ip(const rudp_addr *a, const uint8_t **ip)
{
    if (a->family == AF_INET) {
        *ip = a->ip;
        return 4;
    }
    if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)a->ip)) {
        *ip = a->ip + 12;
        return 4;
    }
    *ip = a->ip;
    return 16;
}

int shim_addr_same_ip(const rudp_addr *a, const rudp_addr *b)
{
    const uint8_t *x, *y;
    size_t n = shim_addr_ip(a, &x);
    return shim_addr_ip(b, &y) == n && memcmp(x, y, n) == 0;
}

int shim_route_source(int family, const rudp_addr *peer, rudp_addr *src)
{
    int u = real_socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (u < 0)
        return -1;
    struct sockaddr_storage ss;
    socklen_t sl = shim_from_rudp_addr(peer, &ss);
    int rc = real_connect(u, (struct sockaddr *)&ss, sl);
    if (rc == 0) {
        sl = sizeof ss;
        rc = real_getsockname(u, (struct sockaddr *)&ss, &sl);
        if (rc == 0)
            shim_to_rudp_addr((struct sockaddr *)&ss, src);
    }
    real_close(u);
    return rc < 0 ? -1 : 0;
}

/* Whether an address is IPv4 (or v4-mapped IPv6); *ip its 4 or 16 bytes. */
static int ip_of(const rudp_addr *a, const uint8_t **ip)
{
    return shim_addr_ip(a, ip) == 4;
}

/* A connection to peer sends from local (the address its client reached). */
static void set_src(shim_udpio_ctl *x, const rudp_addr *peer, const rudp_addr *local)
{
    const uint8_t *ip;
    x->v4 = (uint8_t)ip_of(peer, &ip);
    int lv4 = ip_of(local, &ip);
    if (lv4 != x->v4)
        return; /* cannot be: a datagram's source and destination share a family */
    memset(x->src, 0, sizeof x->src);
    memcpy(x->src, ip, lv4 ? 4 : 16);
    /* a link-local address names its interface; another needs none (and
     * naming the receiving one would force the route through it) */
    x->ifindex = !lv4 && IN6_IS_ADDR_LINKLOCAL((const struct in6_addr *)ip) ? local->scope_id : 0;
    x->has_src = 1;
}

/* Whether the kernel's routing to peer, from a socket of family bound to
 * the wildcard address, picks local as the source: 1 yes, 0 no or
 * cannot tell. */
static int route_picks(int family, const rudp_addr *peer, const rudp_addr *local)
{
    rudp_addr src;
    return shim_route_source(family, peer, &src) == 0 && shim_addr_same_ip(&src, local);
}

void shim_pktctl_accepted(bridge *b)
{
    const rudp_addr *local = rudp_conn_local(b->conn);
    uint64_t tag = TAG_SET;
    if (b->sock->pktinfo && local &&
        !route_picks(b->sock->family, rudp_conn_peer(b->conn), local)) {
        tag |= TAG_SRC;
        char buf[64];
        rudp_addr_format(local, buf, sizeof buf);
        SHIM_LOG(RUDP_LOG_DEBUG, "connection %llu: routing to its peer picks another source: "
                 "sending from %s (IP_PKTINFO)", (unsigned long long)b->id, buf);
    }
    rudp_conn_set_send_tag(b->conn, tag);
}

const shim_udpio_ctl *shim_pktctl_for(const esock *s, const rudp_addr *peer,
                                      const rudp_addr *local, uint64_t tag,
                                      shim_udpio_ctl *ctl)
{
    if (tag == TAG_SET)
        return NULL; /* the common case: nothing of its own */
    if (tag == 0 && (!local || !s->pktinfo))
        return NULL;
    const uint8_t *ip;
    memset(ctl, 0, sizeof *ctl);
    ctl->v4 = (uint8_t)ip_of(peer, &ip);
    /* not yet accepted (a handshake) or a stateless answer: rare, so
     * always from the address the peer reached */
    if (local && s->pktinfo && (tag == 0 || (tag & TAG_SRC)))
        set_src(ctl, peer, local);
    if (tag & TAG_TOS) {
        ctl->has_tos = 1;
        ctl->tos = (int)((tag >> TOS_SHIFT) & 0xff);
    }
    if (tag & TAG_TTL) {
        ctl->has_ttl = 1;
        ctl->ttl = (int)((tag >> TTL_SHIFT) & 0xff);
    }
    return shim_udpio_ctl_any(ctl) ? ctl : NULL;
}

/* The tag bit an option sets for a connection to peer, and its field's
 * shift; 0: none (IPv4 options mean nothing to an IPv6 peer, and back,
 * as for TCP). */
static uint64_t mark_bit(const rudp_addr *peer, int level, int opt, int *shift)
{
    const uint8_t *ip;
    int v4 = ip_of(peer, &ip);
    int tos = v4 ? level == IPPROTO_IP && opt == IP_TOS
                 : level == IPPROTO_IPV6 && opt == IPV6_TCLASS;
    int ttl = v4 ? level == IPPROTO_IP && opt == IP_TTL
                 : level == IPPROTO_IPV6 && opt == IPV6_UNICAST_HOPS;
    *shift = tos ? TOS_SHIFT : TTL_SHIFT;
    return tos ? TAG_TOS : ttl ? TAG_TTL : 0;
}

static void tag_mark(rudp_conn *c, uint64_t bit, int shift, int value)
{
    uint64_t tag = rudp_conn_send_tag(c);
    tag &= ~((uint64_t)0xff << shift);
    tag |= bit | ((uint64_t)(value & 0xff) << shift);
    rudp_conn_set_send_tag(c, tag);
}

void shim_pktctl_set_mark(bridge *b, int level, int opt, int value)
{
    int shift;
    uint64_t bit = mark_bit(rudp_conn_peer(b->conn), level, opt, &shift);
    if (bit)
        tag_mark(b->conn, bit, shift, value);
}

void shim_pktctl_listener_mark(esock *s, int level, int opt)
{
    int old;
    socklen_t l = sizeof old;
    if (real_getsockopt(s->fd, level, opt, &old, &l) < 0)
        return;
    for (bridge *b = s->e->bridges; b; b = b->next) {
        if (b->sock != s || b->owns_sock || !b->conn)
            continue;
        int shift;
        uint64_t bit = mark_bit(rudp_conn_peer(b->conn), level, opt, &shift);
        if (bit && !(rudp_conn_send_tag(b->conn) & bit))
            tag_mark(b->conn, bit, shift, old);
    }
}
