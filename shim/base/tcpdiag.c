/*
 * tcpdiag.c: whether a kernel TCP listener of this host takes connections
 * to an address, asked of the kernel (sock_diag's inet_diag, as ss -tln
 * does: every socket of our network namespace, no permission checked).
 * A connect that does not fall back to kernel TCP (a key's default,
 * RUDP_FALLBACK=none) and finds no rudp listener can then say that the
 * server is there but plain TCP, not under the shim, without sending it
 * anything: a probe SYN would be the kernel TCP connection that a key
 * promises never to make, and an accept() the server did not ask for.
 */
#include <errno.h>
#include <string.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "base.h"

#include "poison.h"

typedef struct listen_req {
    const rudp_addr *to; /* v4-mapped taken as v4 */
    int found;
} listen_req;

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Whether the listener m, bound to m's address and port, takes q->to. */
static int takes(const struct inet_diag_msg *m, int v6only, const rudp_addr *to)
{
    static const uint8_t any[16];
    if (ntohs(m->id.idiag_sport) != to->port)
        return 0;
    const uint8_t *src = (const uint8_t *)m->id.idiag_src;
    if (m->idiag_family == AF_INET)
        return to->family == AF_INET && (!memcmp(src, any, 4) || !memcmp(src, to->ip, 4));
    if (to->family == AF_INET6)
        return !memcmp(src, any, 16) || !memcmp(src, to->ip, 16);
    /* a v4 peer: an AF_INET6 listener takes it unless IPV6_V6ONLY */
    return !v6only && (!memcmp(src, any, 16) ||
                       (!memcmp(src, v4mapped, 12) && !memcmp(src + 12, to->ip, 4)));
}

static int listen_one(const struct nlmsghdr *h, void *ctx)
{
    listen_req *q = ctx;
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
        return -1;
    const struct inet_diag_msg *m = NLMSG_DATA(h);
    int v6only = 0;
    if (m->idiag_family == AF_INET6) {
        size_t vl;
        const uint8_t *v = shim_nla_get(m + 1, h->nlmsg_len - NLMSG_LENGTH(sizeof *m),
                                        INET_DIAG_SKV6ONLY, &vl);
        v6only = v && vl > 0 && *v != 0;
    }
    if (takes(m, v6only, q->to))
        q->found = 1;
    return 0;
}

static int dump_listeners(int family, listen_req *q)
{
    struct {
        struct nlmsghdr nh;
        struct inet_diag_req_v2 req;
    } rq;
    memset(&rq, 0, sizeof rq);
    rq.nh.nlmsg_len = sizeof rq;
    rq.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    rq.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    rq.req.sdiag_family = (uint8_t)family;
    rq.req.sdiag_protocol = IPPROTO_TCP;
    rq.req.idiag_states = 1u << TCP_LISTEN;
    return shim_diag_dump(&rq, sizeof rq, listen_one, q);
}

int shim_tcp_listener_for(const rudp_addr *to)
{
    rudp_addr a = *to;
    if (a.family == AF_INET6 && !memcmp(a.ip, v4mapped, 12)) {
        a.family = AF_INET;
        memmove(a.ip, a.ip + 12, 4);
        memset(a.ip + 4, 0, 12);
    }
    listen_req q = {.to = &a, .found = 0};
    if (a.family == AF_INET && dump_listeners(AF_INET, &q) < 0)
        return -1;
    if (!q.found && dump_listeners(AF_INET6, &q) < 0)
        return -1;
    return q.found;
}
