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
#include "portpriv.h"

#include "base/poison.h"

/* A new UDP socket like s's, bound to s's address on an ephemeral port;
 * *port its port. Returns the fd (owned, high, close-on-exec) or -1. */
static int twin_socket(const esock *s, unsigned *port)
{
    int sfd = shim_esock_fd(s), family = shim_esock_family(s);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (real_getsockname(sfd, (struct sockaddr *)&ss, &sl) < 0)
        return -1;
    int fd = real_socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int on = 1;
    if (family == AF_INET6) {
        int v6 = 0;
        socklen_t vl = sizeof v6;
        if (real_getsockopt(sfd, IPPROTO_IPV6, IPV6_V6ONLY, &v6, &vl) == 0)
            real_setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof v6);
        ((struct sockaddr_in6 *)&ss)->sin6_port = 0;
    } else {
        ((struct sockaddr_in *)&ss)->sin_port = 0;
    }
    if (shim_esock_pktinfo(s)) { /* a wildcard: each datagram's destination, as s's */
        if (family == AF_INET6)
            real_setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on);
        real_setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on);
    }
    shim_marks_copy(sfd, fd, family);
    sl = sizeof ss;
    if (real_bind(fd, (struct sockaddr *)&ss, family == AF_INET6 ? sizeof(struct sockaddr_in6)
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
    unsigned sport = shim_ss_port(&port_of_sock(s)->endpoint);
    int n = shim_esock_movable(s);
    if (n == 0)
        return 0;
    unsigned port = 0;
    int fd = twin_socket(s, &port);
    esock *ns = fd >= 0 ? shim_esock_new(e, fd, shim_esock_family(s)) : NULL;
    if (!ns) {
        if (fd >= 0)
            shim_close_owned(fd);
        SHIM_LOG(RUDP_LOG_WARN, "UDP port %u: no new socket for the %d connection(s) accepted "
                 "there: %s; they end", sport, n, shim_strerror(errno));
        return 0;
    }
    shim_esock_set_pktinfo(ns, shim_esock_pktinfo(s));
    int moved = shim_esock_move_accepted(s, ns, port, now);
    if (!moved) {
        shim_esock_unref(ns); /* refs 0: closed */
        return 0;
    }
    SHIM_LOG(RUDP_LOG_INFO, "UDP port %u: %d accepted connection(s) move to port %u", sport,
             moved, port);
    return moved;
}

void shim_portmove_follow(bridge *b)
{
    esock *s = shim_bridge_sock(b);
    rudp_conn *c = shim_bridge_conn(b);
    rudp_addr to;
    if (!s || !c || rudp_conn_server_addr(c, &to) < 0 ||
        (shim_esock_connected(s) && memcmp(&to, shim_esock_peer(s), sizeof to) == 0))
        return;
    unsigned long long id = (unsigned long long)shim_bridge_id(b);
    struct sockaddr_storage ss;
    socklen_t sl = shim_from_rudp_addr(&to, &ss);
    /* Connecting a UDP socket again keeps its local port (man 2 connect:
     * a connectionless socket may change its association). */
    if (real_connect(shim_esock_fd(s), (struct sockaddr *)&ss, sl) < 0) {
        SHIM_LOG(RUDP_LOG_WARN, "connection %llu: cannot follow the server to its new port: %s",
                 id, shim_strerror(errno));
        return;
    }
    char x[64], y[64];
    rudp_addr_format(shim_esock_peer(s), x, sizeof x);
    rudp_addr_format(&to, y, sizeof y);
    SHIM_LOG(RUDP_LOG_DEBUG, "connection %llu: socket follows the server: %s -> %s", id, x, y);
    /* What this process remembers of the old address (rudp answered there:
     * fallback.c) stays. The port may still run rudp (a SO_REUSEPORT
     * member that left its group: the others serve it, and its new clients'
     * SYNs wait out its leave, 3bf75ba); forgetting it raced kernel TCP at
     * the probe delay and moved them to TCP (prog_xgroup, a loaded run).
     * Where another program took the port, a connect waits until
     * RUDP_SLOW_CONNECT (3 s) before TCP, once: TCP is remembered then. */
    shim_esock_set_peer(s, &to);
}
