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
 *     passes, and a flow it opens to the NATed side (a listener there) is
 *     remembered: its replies leave untranslated, as conntrack left them.
 *   ICMP errors the NATed side sends about a packet that came through a
 *     mapping have the quoted packet's destination port translated out.
 *
 * Not modelled: TCP or UDP behind an IPv6 extension or fragment header
 * passes untranslated; mappings expire only at a rebind (NAT_MAX at once,
 * a new flow past them is dropped); one side at a time.
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
#define NAT_PASS 256      /* flows from the far side remembered */

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
    /* flows the far side opened to the NATed side (NAT_PASS, a ring) */
    size_t npass, pass_next;
    struct nat_pass {
        uint8_t proto, family;
        uint8_t inside[16], far[16];
        uint16_t inside_port, far_port;
    } pass[NAT_PASS];
} nat = {.mu = PTHREAD_MUTEX_INITIALIZER, .side = -1, .base = NAT_BASE, .lo = NAT_BASE,
         .rnd = 0x9e3779b97f4a7c15ULL};

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

/* Where a TCP or UDP header's checksum is, and whether it is in use. */
static unsigned char *l4_csum(unsigned char *l4, uint8_t proto)
{
    if (proto == 6)
        return l4 + 16;
    return get16(l4 + 6) ? l4 + 6 : NULL; /* UDP over IPv4 may have none */
}

/* A TCP or UDP header's port at PORT (its header at L4) rewritten to V,
 * the checksum updated: a UDP one that comes out 0 is sent as 0xffff
 * (RFC 768: 0 would say "none", and IPv6 drops it). */
static void set_port(unsigned char *l4, uint8_t proto, unsigned char *port, uint16_t v)
{
    unsigned char *cs = l4_csum(l4, proto);
    if (cs) {
        csum_fix(cs, get16(port), v);
        if (proto == 17 && get16(cs) == 0)
            put16(cs, 0xffff);
    }
    put16(port, v);
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

/* The mapping of the NATed side's address ADDR (the NAT keeps addresses)
 * whose own port (OUTSIDE 0) or outside port (OUTSIDE 1) is PORT. */
static struct nat_map *find(uint8_t proto, int family, const unsigned char *addr, uint16_t port,
                            int outside)
{
    for (size_t i = 0; i < nat.n; i++) {
        struct nat_map *m = &nat.map[i];
        if (m->proto == proto && m->family == family && (outside ? m->outside : m->port) == port &&
            !memcmp(m->addr, addr, addr_len(family)))
            return m;
    }
    return NULL;
}

/* Whether a packet from the NATed side (SRC, SPORT to DST, DPORT) belongs
 * to a flow the far side opened; REMEMBER: a packet to the NATed side
 * (the same with the ends swapped) opens or finds one. */
static int passing(uint8_t proto, int family, const unsigned char *inside, uint16_t iport,
                   const unsigned char *far, uint16_t fport, int remember)
{
    size_t al = addr_len(family);
    for (size_t i = 0; i < nat.npass; i++) {
        struct nat_pass *f = &nat.pass[i];
        if (f->proto == proto && f->family == family && f->inside_port == iport &&
            f->far_port == fport && !memcmp(f->inside, inside, al) && !memcmp(f->far, far, al))
            return 1;
    }
    if (!remember)
        return 0;
    struct nat_pass *f = &nat.pass[nat.pass_next];
    nat.pass_next = (nat.pass_next + 1) % NAT_PASS;
    if (nat.npass < NAT_PASS)
        nat.npass++;
    f->proto = proto;
    f->family = (uint8_t)family;
    memcpy(f->inside, inside, al);
    memcpy(f->far, far, al);
    f->inside_port = iport;
    f->far_port = fport;
    return 1;
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

/* An ICMP or ICMPv6 error at ip->l4 (8 bytes at least) and the packet it
 * quotes, as far as it is there; 0: not an error quoting TCP or UDP. */
static int icmp_quote(struct ippkt *ip, struct ippkt *q)
{
    int err = ip->family == 4 ? (ip->l4[0] == 3 || ip->l4[0] == 11 || ip->l4[0] == 12)
                              : (ip->l4[0] >= 1 && ip->l4[0] <= 4);
    return err && parse(ip->l4 + 8, ip->l4len - 8, q) == 0 && q->l4 &&
           (q->proto == 6 || q->proto == 17) && q->l4len >= 4;
}

static int is_icmp(const struct ippkt *ip)
{
    return ip->l4 && ip->l4len >= 8 &&
           ((ip->family == 4 && ip->proto == 1) || (ip->family == 6 && ip->proto == 58));
}

/* The quoted packet's port at PORT rewritten to V; the ICMP checksum,
 * which covers it (at an even offset: headers are whole 32-bit words),
 * updated. Its own checksum is left: nobody checks a quote's. */
static void quote_port(struct ippkt *ip, unsigned char *port, uint16_t v)
{
    csum_fix(ip->l4 + 2, get16(port), v);
    put16(port, v);
}

/* A packet leaving the NATed side: 1 to forward, 0 to drop (no port free). */
static int out_locked(struct ippkt *ip, struct counters *c)
{
    struct ippkt q;
    if (is_icmp(ip) && icmp_quote(ip, &q)) {
        /* about a packet that came in through a mapping: its destination
         * was the mapping's own port, the far side knows the outside one */
        struct nat_map *m = find(q.proto, q.family, q.dst, get16(q.l4 + 2), 0);
        if (m)
            quote_port(ip, q.l4 + 2, m->outside);
        return 1;
    }
    if (!is_port_proto(ip))
        return 1;
    uint16_t port = get16(ip->l4);
    if (passing(ip->proto, ip->family, ip->src, port, ip->dst, get16(ip->l4 + 2), 0))
        return 1; /* a reply in a flow the far side opened */
    struct nat_map *m = find(ip->proto, ip->family, ip->src, port, 0);
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
    set_port(ip->l4, ip->proto, ip->l4, m->outside);
    return 1;
}

/* A packet reaching the NATed side: 1 to deliver, 0 to drop. */
static int in_locked(struct ippkt *ip)
{
    struct ippkt q;
    if (is_icmp(ip)) {
        /* an error about a packet the NATed side sent through a mapping:
         * the quote's source is the outside port */
        if (!icmp_quote(ip, &q) || !nat_range(get16(q.l4)))
            return 1;
        struct nat_map *m = find(q.proto, q.family, q.src, get16(q.l4), 1);
        if (!m)
            return 0;
        quote_port(ip, q.l4, m->port);
        return 1;
    }
    if (!is_port_proto(ip))
        return 1;
    uint16_t port = get16(ip->l4 + 2);
    if (!nat_range(port)) {
        /* the far side opens a flow to the NATed side (or goes on in one) */
        passing(ip->proto, ip->family, ip->dst, port, ip->src, get16(ip->l4), 1);
        return 1;
    }
    struct nat_map *m = find(ip->proto, ip->family, ip->dst, port, 1);
    if (!m)
        return 0;
    set_port(ip->l4, ip->proto, ip->l4 + 2, m->port);
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
    nat.npass = nat.pass_next = 0;
    pthread_mutex_unlock(&nat.mu);
    if (s < 0)
        fprintf(stderr, "linkemu: nat off\n");
    else
        fprintf(stderr, "linkemu: nat in front of %s, ports %u-%u, no mapping yet\n", side,
                nat.lo, nat.lo + NAT_BLOCK - 1);
    return 0;
}
