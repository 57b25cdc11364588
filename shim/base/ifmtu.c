/*
 * ifmtu.c: the largest UDP payload a connected UDP socket's path may
 * carry unfragmented as far as this host knows: the ceiling of its path
 * MTU search (core/pmtu.h). It runs in every connect() to a remote peer,
 * on the application's thread (any thread: a raw clone()'s child too), so
 * it takes no lock and no memory, and costs about a microsecond for IPv4.
 *
 * IPv4: the MTU of the device that holds the socket's local address
 * (SIOCGIFCONF, SIOCGIFMTU), not the route's (IP_MTU), which includes the
 * kernel's learned path MTU: any ICMP "fragmentation needed" matching the
 * addresses lowers it, to 552 bytes at worst, below rudp's 1200. IPv6:
 * the route's MTU (IPV6_MTU), whose learned value never goes below
 * IPv6's minimum of 1280 (1232 of payload: above rudp's base), where a
 * lookup by address would need a netlink dump or /proc (20-60 us). A
 * smaller MTU further along is for the search to find.
 */
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "base.h"

#include "poison.h"

#define IFCONF_MAX 32 /* interfaces with an IPv4 address looked at: 1.3 KB of stack */

static uint32_t v4_device(int udp, const struct in_addr *local)
{
    struct ifreq all[IFCONF_MAX];
    struct ifconf conf = {.ifc_len = sizeof all, .ifc_req = all};
    if (real_ioctl(udp, SIOCGIFCONF, &conf) < 0)
        return 0;
    int n = conf.ifc_len / (int)sizeof all[0];
    for (int i = 0; i < n; i++) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&all[i].ifr_addr;
        if (a->sin_family != AF_INET || a->sin_addr.s_addr != local->s_addr)
            continue;
        struct ifreq r = all[i];
        if (real_ioctl(udp, SIOCGIFMTU, &r) < 0 || r.ifr_mtu <= 28)
            return 0;
        return (uint32_t)r.ifr_mtu - 28;
    }
    return 0; /* past IFCONF_MAX interfaces: unknown */
}

uint32_t shim_ifmtu_payload(int udp)
{
    struct sockaddr_storage local;
    socklen_t len = sizeof local;
    if (real_getsockname(udp, (struct sockaddr *)&local, &len) < 0)
        return 0;
    if (local.ss_family == AF_INET)
        return v4_device(udp, &((struct sockaddr_in *)&local)->sin_addr);
    const struct in6_addr *a6 = &((struct sockaddr_in6 *)&local)->sin6_addr;
    if (local.ss_family != AF_INET6)
        return 0;
    if (IN6_IS_ADDR_V4MAPPED(a6)) { /* an IPv4 peer of a v6 socket */
        struct in_addr v4;
        memcpy(&v4, &a6->s6_addr[12], 4);
        return v4_device(udp, &v4);
    }
    int mtu = 0;
    socklen_t ml = sizeof mtu;
    if (real_getsockopt(udp, IPPROTO_IPV6, IPV6_MTU, &mtu, &ml) < 0 || mtu <= 48)
        return 0;
    return (uint32_t)mtu - 48;
}
