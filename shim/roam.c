/*
 * roam.c: a client connection moves to a new UDP socket when its own
 * stops working, and the server follows it (core/path.h says how, and how
 * it resists an attacker). A socket stops working when its sends fail
 * (the address it sent from went away: EADDRNOTAVAIL; the route changed
 * or vanished: ENETUNREACH, ENETDOWN, EINVAL; a firewall refuses it: EPERM),
 * or when nothing is heard for a few probe timeouts (RUDP_EV_SILENT: a
 * middlebox lost the flow). The new socket is connected to the same
 * server, so the kernel picks today's route, source address and a fresh
 * port. The socket the server last answered on stays open and read until
 * a later move is answered or the connection ends: what was in flight to
 * it still arrives, and no ICMP port unreachable tells the server its
 * peer is gone.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine.h"

#include "poison.h"

/* No new socket more often than this per connection: a host with no
 * network at all fails every send, and each move costs a socket. */
#define ROAM_MIN_INTERVAL RUDP_MS(250)

static int same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    rudp_addr x, y;
    shim_to_rudp_addr((const struct sockaddr *)a, &x);
    shim_to_rudp_addr((const struct sockaddr *)b, &y);
    return x.family == y.family && memcmp(x.ip, y.ip, sizeof x.ip) == 0;
}

void shim_roam_rebind(bridge *b, rudp_time now, const char *why)
{
    esock *old = b->sock;
    if (!b->conn || !b->owns_sock || !old || now < b->roam_next)
        return;
    b->roam_next = now + ROAM_MIN_INTERVAL;
    struct engine *e = b->e;
    struct sockaddr_storage peer, was, is;
    socklen_t plen = shim_from_rudp_addr(&old->peer, &peer), l1 = sizeof was, l2 = sizeof is;
    if (real_getsockname(old->fd, (struct sockaddr *)&was, &l1) < 0)
        memset(&was, 0, sizeof was);
    int fd = real_socket(old->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    if (old->family == AF_INET6) {
        int v6 = 0;
        socklen_t vl = sizeof v6;
        if (real_getsockopt(old->fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6, &vl) == 0)
            real_setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof v6);
    }
    shim_opts_copy_marks(old->fd, fd, old->family); /* the app's IP_TOS and the like */
    if (real_connect(fd, (struct sockaddr *)&peer, plen) < 0 ||
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
    s->connected = 1;
    s->refs = 2; /* as do_connect's: the connection's and the bridge's */
    s->owner = b;
    int new_ip = !same_ip(&was, &is);
    if (rudp_conn_rebind(b->conn, now, s->idx, new_ip) < 0) {
        s->refs = 0;
        shim_esock_unref(s);
        return;
    }
    rudp_addr local;
    shim_to_rudp_addr((struct sockaddr *)&is, &local);
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
}

void shim_roam_send_error(void *user, int fd, int err)
{
    struct engine *e = user;
    if (err != EADDRNOTAVAIL && err != ENETUNREACH && err != ENETDOWN && err != EPERM &&
        err != EINVAL)
        return; /* a full buffer, an ICMP error: the path itself is there */
    for (uint32_t i = 0; i < e->nsocks; i++) {
        esock *s = e->socks[i];
        if (s && s->fd == fd && s->owner) {
            s->send_failed = err;
            e->roam_due = 1;
            return;
        }
    }
}

void shim_roam_due(struct engine *e, rudp_time now)
{
    for (uint32_t i = 0; i < e->nsocks; i++) {
        esock *s = e->socks[i];
        if (!s || !s->send_failed || !s->owner)
            continue;
        char why[96];
        snprintf(why, sizeof why, "its sends fail: %s", shim_strerror(s->send_failed));
        s->send_failed = 0;
        shim_roam_rebind(s->owner, now, why);
    }
}
