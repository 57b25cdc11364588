/*
 * ifmtu.c: the largest UDP payload the device behind a local address
 * sends unfragmented (its MTU less the IP and UDP headers): the ceiling
 * of a connection's path MTU search (core/pmtu.h). The device, not the
 * route's cached path MTU (IP_MTU), which any ICMP matching the addresses
 * can lower to 552 for everyone; a smaller MTU further on is for the
 * search to find.
 */
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "base.h"

#include "poison.h"

static int same_addr(const struct sockaddr *a, const struct sockaddr_storage *b)
{
    if (a->sa_family == AF_INET && b->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (a->sa_family == AF_INET6 && b->ss_family == AF_INET6)
        return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                       &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr));
    return 0;
}

uint32_t shim_ifmtu_payload(int udp)
{
    struct sockaddr_storage local;
    socklen_t len = sizeof local;
    if (real_getsockname(udp, (struct sockaddr *)&local, &len) < 0)
        return 0;
    /* an IPv4 peer of a v6 socket: the v4 address's device */
    int hdrs = 48;
    if (local.ss_family == AF_INET6 &&
        IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&local)->sin6_addr)) {
        struct sockaddr_in v4 = {.sin_family = AF_INET};
        memcpy(&v4.sin_addr, &((struct sockaddr_in6 *)&local)->sin6_addr.s6_addr[12], 4);
        memset(&local, 0, sizeof local);
        memcpy(&local, &v4, sizeof v4);
    }
    if (local.ss_family == AF_INET)
        hdrs = 28;
    struct ifaddrs *all;
    if (getifaddrs(&all) < 0)
        return 0;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    for (struct ifaddrs *i = all; i; i = i->ifa_next)
        if (i->ifa_addr && same_addr(i->ifa_addr, &local)) {
            strncpy(ifr.ifr_name, i->ifa_name, IFNAMSIZ - 1);
            break;
        }
    freeifaddrs(all);
    if (!ifr.ifr_name[0] || real_ioctl(udp, SIOCGIFMTU, &ifr) < 0 || ifr.ifr_mtu <= hdrs)
        return 0;
    return (uint32_t)(ifr.ifr_mtu - hdrs);
}
