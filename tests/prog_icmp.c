/*
 * prog_icmp: forged ICMP port unreachable messages, as an off-path attacker
 * sends them (issue "harden", finding 4). Needs root (a raw socket).
 *
 *   prog_icmp ORIG_SRC SPORT ORIG_DST DPORT COUNT [MTU]
 *
 * Sends COUNT ICMP (or ICMPv6) "port unreachable" messages to ORIG_SRC, each
 * quoting a UDP datagram ORIG_SRC:SPORT -> ORIG_DST:DPORT, as if ORIG_DST
 * had refused it. The kernel hands such an error to the UDP socket that
 * sent to that 4-tuple. The quoted payload is what an attacker who knows
 * the 4-tuple but not the connection IDs can write: random bytes, and
 * rudp-looking DATA and SYN headers with guessed IDs, in turn. With MTU:
 * "fragmentation needed" (ICMPv6 "packet too big") naming that MTU
 * instead (path MTU discovery's input, core/pmtu.h). Prints "icmp: sent N".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_icmp";

static uint16_t csum(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        s += (uint32_t)(b[i] << 8 | b[i + 1]);
    if (n & 1)
        s += (uint32_t)b[n - 1] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return htons((uint16_t)~s);
}

/* The quoted UDP payload, kind i % 3: random; a DATA header with a guessed
 * destination ID; a SYN header with a guessed source ID. */
static void payload(uint8_t *p, size_t n, int i)
{
    CHECK(getrandom(p, n, 0) == (ssize_t)n, "getrandom");
    if (i % 3 == 0)
        return;
    p[0] = 0x72; /* "ru", version 1 */
    p[1] = 0x75;
    p[2] = 1;
    p[3] = i % 3 == 1 ? 4 : 1; /* DATA or SYN */
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    watchdog(60);
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: prog_icmp ORIG_SRC SPORT ORIG_DST DPORT COUNT [MTU]\n");
        return 2;
    }
    int count = atoi(argv[5]);
    uint32_t mtu = argc == 7 ? (uint32_t)atoi(argv[6]) : 0; /* 0: port unreachable */
    uint16_t sport = htons((uint16_t)atoi(argv[2])), dport = htons((uint16_t)atoi(argv[4]));
    struct in6_addr s6, d6;
    struct in_addr s4, d4;
    int v6 = inet_pton(AF_INET6, argv[1], &s6) == 1;
    CHECK(v6 ? inet_pton(AF_INET6, argv[3], &d6) == 1
             : inet_pton(AF_INET, argv[1], &s4) == 1 && inet_pton(AF_INET, argv[3], &d4) == 1,
          "bad addresses");
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_RAW, v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP);
    SYS(fd);
    int sent = 0;
    for (int i = 0; i < count; i++) {
        uint8_t pkt[256];
        memset(pkt, 0, sizeof pkt);
        size_t plen = 32, n;
        if (!v6) {
            struct icmphdr *ic = (void *)pkt;
            struct iphdr *ip = (void *)(pkt + 8);
            struct udphdr *u = (void *)(pkt + 8 + 20);
            ic->type = ICMP_DEST_UNREACH;
            ic->code = mtu ? ICMP_FRAG_NEEDED : ICMP_PORT_UNREACH;
            ic->un.frag.mtu = htons((uint16_t)mtu);
            ip->version = 4;
            ip->ihl = 5;
            ip->tot_len = htons((uint16_t)(20 + 8 + plen));
            ip->ttl = 64;
            ip->protocol = IPPROTO_UDP;
            ip->saddr = s4.s_addr;
            ip->daddr = d4.s_addr;
            ip->check = csum(ip, 20);
            u->source = sport;
            u->dest = dport;
            u->len = htons((uint16_t)(8 + plen));
            payload(pkt + 8 + 20 + 8, plen, i);
            n = 8 + 20 + 8 + plen;
            ic->checksum = csum(pkt, n);
            struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr = s4};
            if (sendto(fd, pkt, n, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)n)
                sent++;
        } else {
            struct icmp6_hdr *ic = (void *)pkt;
            uint8_t *ip6 = pkt + 8;
            struct udphdr *u = (void *)(pkt + 8 + 40);
            ic->icmp6_type = mtu ? ICMP6_PACKET_TOO_BIG : ICMP6_DST_UNREACH;
            ic->icmp6_code = mtu ? 0 : ICMP6_DST_UNREACH_NOPORT;
            ic->icmp6_mtu = htonl(mtu);
            ip6[0] = 0x60;
            uint16_t pl = htons((uint16_t)(8 + plen));
            memcpy(ip6 + 4, &pl, 2);
            ip6[6] = IPPROTO_UDP;
            ip6[7] = 64;
            memcpy(ip6 + 8, &s6, 16);
            memcpy(ip6 + 24, &d6, 16);
            u->source = sport;
            u->dest = dport;
            u->len = pl;
            payload(pkt + 8 + 40 + 8, plen, i);
            n = 8 + 40 + 8 + plen; /* the kernel fills the ICMPv6 checksum */
            struct sockaddr_in6 to = {.sin6_family = AF_INET6, .sin6_addr = s6};
            if (sendto(fd, pkt, n, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)n)
                sent++;
        }
    }
    printf("icmp: sent %d\n", sent);
    return sent == count ? 0 : 1;
}
