/*
 * linkemu: a NAT on the link, in front of one side (the "NATed" one).
 *
 * It sits where a home router or a carrier's NAT sits: on the path, seeing
 * each packet as it crosses, one by one. The kernel's own NAT (conntrack,
 * nftables) could only be put in a namespace's hooks, where it sees the
 * sending host's own packets before the device splits them: a UDP GSO
 * train (UDP_SEGMENT, as the shim sends) whose port it rewrites there
 * reaches the far end with every datagram's checksum wrong on Linux 6.18
 * (measured: UdpInCsumErrors, one per datagram of each train, whether
 * SNAT in postrouting or DNAT in output; a NAT on a forwarding namespace
 * gets them right). The emulator's NAT translated replies on the far
 * side's output that way, so a server's GSO trains to a NATed client were
 * lost there and nowhere else (t_roam_keeper's keepers repeated their FIN
 * and a PING as a train of two, once a second, for 50 s, while the single
 * datagrams that answered the client's keepalives arrived).
 *
 * The model is an endpoint-independent mapping (RFC 4787's recommendation
 * for UDP, and what "snat to :PORTS random" gave for one peer), ports only:
 *
 *   out (a packet from the NATed side, as it leaves it): TCP and UDP get
 *     a port of the current block for their (protocol, source address,
 *     source port), picked at random among the free ones, the first time;
 *     the source port is rewritten, the checksum updated (RFC 1624).
 *   in (a packet to the NATed side, as it reaches it): TCP and UDP to a
 *     port of the NAT's range (all blocks) go to the mapping's own port,
 *     or are dropped (drop_nat) when there is none: a NAT forgets, it does
 *     not answer. ICMP errors about such a packet are translated inside
 *     (the quoted packet's source port) or dropped alike. Anything else
 *     passes, as before (the NATed side's own listeners stay reachable).
 *
 * "nat a|b BLOCK [BASE]" (--ctl) turns it on in front of that side with
 * block BLOCK (ports BASE + (BLOCK % 10) * 1000 and the 999 above; BASE
 * 10000 unless said: the range is BASE..BASE+9999), forgetting
 * every mapping: emu_nat_rebind's new block. "nat off" turns it off. The
 * main thread writes, the two directions read and add, under one mutex.
 */

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linkemu.h"

#define NAT_BASE 10000
#define NAT_BLOCK 1000
#define NAT_BLOCKS 10
#define NAT_MAX NAT_BLOCK /* mappings at once: one block's ports */

struct nat_map {
    uint8_t proto;
    uint8_t family; /* 4 or 6 */
    uint8_t addr[16];
    uint16_t port, outside;
};

static struct {
    pthread_mutex_t mu;
    int side;      /* -1: off; 0: a is NATed, 1: b */
    unsigned base; /* the first port of the range of NAT_BLOCKS blocks */
    unsigned lo;   /* the current block's first port */
    uint64_t rnd;
    size_t n;
    struct nat_map map[NAT_MAX];
} nat = {PTHREAD_MUTEX_INITIALIZER, -1, NAT_BASE, NAT_BASE, 0x9e3779b97f4a7c15ULL, 0, {{0}}};

static uint16_t get16(const unsigned char *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

/* RFC 1624 eqn. 3: the checksum at *c after a 16-bit word went from m to m2. */
static void csum_fix(unsigned char *c, uint16_t m, uint16_t m2)
{
    uint32_t s = (uint16_t)~get16(c) + (uint32_t)(uint16_t)~m + m2;
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    put16(c, (uint16_t)~s);
}

static uint32_t sum16(const unsigned char *p, size_t len, uint32_t s)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        s += get16(p + i);
    if (len & 1)
        s += (uint32_t)p[len - 1] << 8;
    return s;
}

static uint16_t fold(uint32_t s)
{
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

/* Where a TCP or UDP header's checksum is, and whether it is in use. */
static unsigned char *l4_csum(unsigned char *l4, uint8_t proto)
{
    if (proto == 6)
        return l4 + 16;
    return get16(l4 + 6) ? l4 + 6 : NULL; /* UDP over IPv4 may have none */
}

/* The IP packet P of LEN bytes parsed: its family, protocol and transport
 * header (NULL: none we translate: a later fragment, an extension header,
 * too short). */
struct ippkt {
    int family;
    uint8_t proto;
    unsigned char *src, *dst, *l4;
    size_t l4len;
};

static int parse(unsigned char *p, size_t len, struct ippkt *ip)
{
    memset(ip, 0, sizeof *ip);
    if (len >= 20 && p[0] >> 4 == 4) {
        size_t hl = (size_t)(p[0] & 15) * 4;
        if (hl < 20 || hl > len)
            return -1;
        ip->family = 4;
        ip->proto = p[9];
        ip->src = p + 12;
        ip->dst = p + 16;
        if ((get16(p + 6) & 0x1fff) == 0) { /* the first fragment, or whole */
            ip->l4 = p + hl;
            ip->l4len = len - hl;
        }
        return 0;
    }
    if (len >= 40 && p[0] >> 4 == 6) {
        ip->family = 6;
        ip->proto = p[6];
        ip->src = p + 8;
        ip->dst = p + 24;
        ip->l4 = p + 40;
        ip->l4len = len - 40;
        return 0;
    }
    return -1;
}

static int is_port_proto(const struct ippkt *ip)
{
    return ip->l4 && (ip->proto == 6 || ip->proto == 17) &&
           ip->l4len >= (ip->proto == 6 ? 20u : 8u);
}

static size_t addr_len(int family)
{
    return family == 4 ? 4 : 16;
}

static struct nat_map *find_inside(uint8_t proto, int family, const unsigned char *addr,
                                   uint16_t port)
{
    for (size_t i = 0; i < nat.n; i++) {
        struct nat_map *m = &nat.map[i];
        if (m->proto == proto && m->family == family && m->port == port &&
            !memcmp(m->addr, addr, addr_len(family)))
            return m;
    }
    return NULL;
}

static struct nat_map *find_outside(uint8_t proto, uint16_t outside)
{
    for (size_t i = 0; i < nat.n; i++)
        if (nat.map[i].proto == proto && nat.map[i].outside == outside)
            return &nat.map[i];
    return NULL;
}

static int outside_used(uint16_t port)
{
    for (size_t i = 0; i < nat.n; i++)
        if (nat.map[i].outside == port)
            return 1;
    return 0;
}

/* A free port of the current block, at random (xorshift64), 0: none. */
static uint16_t pick_port(void)
{
    for (int tries = 0; tries < 4 * NAT_BLOCK; tries++) {
        nat.rnd ^= nat.rnd << 13;
        nat.rnd ^= nat.rnd >> 7;
        nat.rnd ^= nat.rnd << 17;
        uint16_t p = (uint16_t)(nat.lo + nat.rnd % NAT_BLOCK);
        if (!outside_used(p))
            return p;
    }
    return 0;
}

static int nat_range(uint16_t port)
{
    return port >= nat.base && port < nat.base + NAT_BLOCK * NAT_BLOCKS;
}

/* A packet leaving the NATed side: 1 to forward, 0 to drop (no port free). */
static int out_locked(struct ippkt *ip, struct counters *c)
{
    if (!is_port_proto(ip))
        return 1;
    uint16_t port = get16(ip->l4);
    struct nat_map *m = find_inside(ip->proto, ip->family, ip->src, port);
    if (!m) {
        uint16_t o = nat.n < NAT_MAX ? pick_port() : 0;
        if (!o)
            return 0;
        m = &nat.map[nat.n++];
        m->proto = ip->proto;
        m->family = (uint8_t)ip->family;
        memcpy(m->addr, ip->src, addr_len(ip->family));
        m->port = port;
        m->outside = o;
        ctr_add(&c->nat_mapped, 1);
    }
    unsigned char *cs = l4_csum(ip->l4, ip->proto);
    if (cs)
        csum_fix(cs, port, m->outside);
    put16(ip->l4, m->outside);
    return 1;
}

/* The ICMP or ICMPv6 checksum of the message at ip->l4, computed again
 * (after its quoted packet changed). */
static void icmp_csum(struct ippkt *ip)
{
    unsigned char *ck = ip->l4 + 2;
    put16(ck, 0);
    uint32_t s = sum16(ip->l4, ip->l4len, 0);
    if (ip->family == 6) { /* RFC 4443 2.3: the IPv6 pseudo-header */
        s = sum16(ip->src, 16, s);
        s = sum16(ip->dst, 16, s);
        s += (uint32_t)(ip->l4len >> 16) + (uint32_t)(ip->l4len & 0xffff);
        s += 58;
    }
    put16(ck, fold(s));
}

/* An ICMP error to the NATed side about a packet it sent (as the far side
 * saw it: from a NAT port): 1 forwarded (translated, or not about one of
 * our ports), 0 dropped. */
static int icmp_in_locked(struct ippkt *ip)
{
    int err = ip->family == 4 ? (ip->l4[0] == 3 || ip->l4[0] == 11 || ip->l4[0] == 12)
                              : (ip->l4[0] >= 1 && ip->l4[0] <= 4);
    if (!err || ip->l4len < 8)
        return 1;
    struct ippkt in;
    if (parse(ip->l4 + 8, ip->l4len - 8, &in) < 0 || !in.l4 || (in.proto != 6 && in.proto != 17) ||
        in.l4len < 4)
        return 1;
    uint16_t sport = get16(in.l4);
    if (!nat_range(sport))
        return 1;
    struct nat_map *m = find_outside(in.proto, sport);
    if (!m)
        return 0;
    put16(in.l4, m->port);
    icmp_csum(ip);
    return 1;
}

/* A packet reaching the NATed side: 1 to deliver, 0 to drop. */
static int in_locked(struct ippkt *ip)
{
    if (ip->l4 && ip->l4len >= 8 &&
        ((ip->family == 4 && ip->proto == 1) || (ip->family == 6 && ip->proto == 58)))
        return icmp_in_locked(ip);
    if (!is_port_proto(ip))
        return 1;
    uint16_t port = get16(ip->l4 + 2);
    if (!nat_range(port))
        return 1;
    struct nat_map *m = find_outside(ip->proto, port);
    if (!m)
        return 0;
    unsigned char *cs = l4_csum(ip->l4, ip->proto);
    if (cs)
        csum_fix(cs, port, m->port);
    put16(ip->l4 + 2, m->port);
    return 1;
}

int nat_packet(int k, int delivering, unsigned char *p, size_t len, struct counters *c)
{
    pthread_mutex_lock(&nat.mu);
    int keep = 1;
    struct ippkt ip;
    /* direction k is a2b (0) or b2a (1): it leaves side k. The NAT is at
     * the NATed side's edge: what leaves it is translated as it is read,
     * before the link; what comes to it as it is delivered, after. */
    if (nat.side >= 0 && (k == nat.side) != delivering && parse(p, len, &ip) == 0)
        keep = k == nat.side ? out_locked(&ip, c) : in_locked(&ip);
    pthread_mutex_unlock(&nat.mu);
    if (!keep)
        ctr_add(&c->drop_nat, 1);
    return keep;
}

int nat_command(const char *side, const char *block, const char *base)
{
    int s = -1;
    long b = 0, first = NAT_BASE;
    if (!strcmp(side, "a") || !strcmp(side, "b")) {
        s = side[0] - 'a';
        char *end = NULL;
        errno = 0;
        b = block ? strtol(block, &end, 10) : -1;
        if (!block || errno || *end || b < 0)
            return -EINVAL;
        if (base) {
            errno = 0;
            first = strtol(base, &end, 10);
            if (errno || *end || first < 1 || first > 65535 - NAT_BLOCK * NAT_BLOCKS)
                return -EINVAL;
        }
    } else if (strcmp(side, "off") || block) {
        return -EINVAL;
    }
    pthread_mutex_lock(&nat.mu);
    nat.side = s;
    nat.base = (unsigned)first;
    nat.lo = (unsigned)(first + (b % NAT_BLOCKS) * NAT_BLOCK);
    nat.n = 0;
    pthread_mutex_unlock(&nat.mu);
    if (s < 0)
        fprintf(stderr, "linkemu: nat off\n");
    else
        fprintf(stderr, "linkemu: nat in front of %s, ports %u-%u, no mapping yet\n", side,
                nat.lo, nat.lo + NAT_BLOCK - 1);
    return 0;
}
