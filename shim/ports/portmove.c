/*
 * portmove.c: the rudp connections a listener accepted outlive its UDP
 * port. When the application binds its own UDP socket on the listener's
 * port (portshare.c: shim_port_yield), the listener's socket is given up;
 * each connection accepted on it first moves to a new UDP socket of the
 * engine, bound to the same local address on an ephemeral port, and the
 * core tells its client (NEW_PORT, core/path.h), from the old socket while
 * it is still ours and then from the new one. A client follows: its
 * socket, connected to the server, is connected again to the server's
 * new port (or, unkeyed, to the port being validated, and back if the
 * validation fails).
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ports.h"
#include "portmove.h"

#include "base/poison.h"

/* A new UDP socket like s's, bound to s's address on an ephemeral port;
 * *port its port. Returns the fd (owned, high, close-on-exec) or -1. */
static int twin_socket(const esock *s, unsigned *port)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (real_getsockname(s->fd, (struct sockaddr *)&ss, &sl) < 0)
        return -1;
    int fd = real_socket(s->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int on = 1;
    if (s->family == AF_INET6) {
        int v6 = 0;
        socklen_t vl = sizeof v6;
        if (real_getsockopt(s->fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6, &vl) == 0)
            real_setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof v6);
        ((struct sockaddr_in6 *)&ss)->sin6_port = 0;
    } else {
        ((struct sockaddr_in *)&ss)->sin_port = 0;
    }
    if (s->pktinfo) { /* a wildcard: each datagram's destination, as s's */
        if (s->family == AF_INET6)
            real_setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on);
        real_setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on);
    }
    shim_marks_copy(s->fd, fd, s->family);
    sl = sizeof ss;
    if (real_bind(fd, (struct sockaddr *)&ss, s->family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                                    : sizeof(struct sockaddr_in)) < 0 ||
        real_getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
        real_close(fd);
        return -1;
    }
    *port = shim_ss_port(&ss);
    shim_udp_grow_buffers(fd, 0);
    fd = shim_fd_move_high(fd);
    shim_own_fd(fd, 1);
    return fd;
}

int shim_portmove_conns(struct engine *e, esock *s, rudp_time now)
{
    int n = 0;
    for (bridge *b = e->bridges; b; b = b->next)
        if (b->sock == s && b->conn && !b->owns_sock)
            n++;
    if (n == 0)
        return 0;
    unsigned port = 0;
    int fd = twin_socket(s, &port);
    esock *ns = fd >= 0 ? shim_esock_new(e, fd, s->family) : NULL;
    if (!ns) {
        if (fd >= 0)
            shim_close_owned(fd);
        SHIM_LOG(RUDP_LOG_WARN, "UDP port %u: no new socket for the %d connection(s) accepted "
                 "there: %s; they end", shim_ss_port(&s->endpoint), n, shim_strerror(errno));
        return 0;
    }
    ns->pktinfo = s->pktinfo;
    int moved = 0;
    for (bridge *b = e->bridges; b; b = b->next) {
        if (b->sock != s || !b->conn || b->owns_sock)
            continue;
        if (rudp_conn_move_port(b->conn, now, ns->idx, port) < 0)
            continue;
        /* the connection's reference (conn_freed) goes with it */
        b->sock = ns;
        ns->refs++;
        s->refs--;
        moved++;
    }
    if (!moved) {
        shim_esock_unref(ns); /* refs 0: closed */
        return 0;
    }
    SHIM_LOG(RUDP_LOG_INFO, "UDP port %u: %d accepted connection(s) move to port %u",
             shim_ss_port(&s->endpoint), moved, port);
    return moved;
}

void shim_portmove_follow(bridge *b)
{
    esock *s = b->sock;
    rudp_addr to;
    if (!s || !b->conn || rudp_conn_server_addr(b->conn, &to) < 0 ||
        (s->connected && memcmp(&to, &s->peer, sizeof to) == 0))
        return;
    struct sockaddr_storage ss;
    socklen_t sl = shim_from_rudp_addr(&to, &ss);
    /* Connecting a UDP socket again keeps its local port (man 2 connect:
     * a connectionless socket may change its association). */
    if (real_connect(s->fd, (struct sockaddr *)&ss, sl) < 0) {
        SHIM_LOG(RUDP_LOG_WARN, "connection %llu: cannot follow the server to its new port: %s",
                 (unsigned long long)b->id, shim_strerror(errno));
        return;
    }
    char x[64], y[64];
    rudp_addr_format(&s->peer, x, sizeof x);
    rudp_addr_format(&to, y, sizeof y);
    SHIM_LOG(RUDP_LOG_DEBUG, "connection %llu: socket follows the server: %s -> %s",
             (unsigned long long)b->id, x, y);
    shim_fallback_forget(&s->peer);
    s->peer = to;
    s->connected = 1; /* a silent connection's open socket (roam.c) hears its server again */
}
