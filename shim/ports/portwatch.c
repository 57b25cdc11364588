/*
 * portwatch.c: another program's UDP socket bound on a listener's port
 * after listen().
 *
 * A listener's UDP socket copies the app's SO_REUSEADDR, and so lets
 * another program's UDP socket with SO_REUSEADDR bind the port after it;
 * the kernel then gives every datagram to the socket bound last
 * (udpdiag.c), so that program would get the listener's rudp datagrams,
 * and its connections would starve, for good. The kernel tells no other
 * process of a bind (no netlink event, no inotify for sockets), so each
 * engine looks, once a SHIM_PORTWATCH_PERIOD, at the UDP sockets of the
 * host on its watched listeners' ports (sock_diag: one dump per family
 * and listener, about 90 us each for the 27 UDP sockets of this machine,
 * growing with their number). A socket there that is not the listener's
 * own (nor a member of its group with RUDP_ENGINES > 1) is a stranger's,
 * unless it is a listener's of ours in another process: the app's
 * SO_REUSEPORT group may span processes (xgroup.c). sock_diag cannot tell
 * those apart by options, so each such socket's name tells
 * (porthand.c: "rudp-udp <inode>", held by the listener's uid; udpdiag.c
 * lists the names only when other processes' sockets are on the port).
 * A stranger's makes the listener give the port up as for the
 * application's own UDP (portshare.c: its connections move to another
 * port, NEW_PORT; it takes plain TCP only), said in the log. Until the
 * look, for up to a period, that program gets what is sent to the port
 * (with SO_REUSEPORT on both, what the kernel's hash sends it).
 *
 * Other processes of ours without SO_REUSEPORT never share the port: one
 * that listens there asks for it first (porthand.c), and the
 * application's own UDP bind gives the port up before it happens
 * (shim_port_yield).
 */
#include <netinet/in.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>

#include "ports.h"
#include "portpriv.h"
#include "portshare.h"
#include "portwatch.h"

#include "base/poison.h"

/* Armed (ph.ino) and still on its port (give_up clears the endpoint). */
static int watched(const esock *s)
{
    const port_sock *ps = port_of_sock(s);
    return ps->ph.ino != 0 && ps->endpoint.ss_family != 0;
}

void shim_portwatch_arm(esock *s, rudp_time now)
{
    port_sock *ps = port_of_sock(s);
    port_group *pg = port_of_group(s);
    struct engine *e = shim_esock_engine(s);
    struct stat st;
    if (ps->endpoint.ss_family == 0 || fstat(shim_esock_fd(s), &st) < 0)
        return;
    ps->ph.ino = (uint64_t)st.st_ino;
    ps->ph.uid = st.st_uid;
    if (pg)
        atomic_store(&pg->member_ino[shim_engine_index(e)], ps->ph.ino);
    port_engine *pe = port_of_engine(e);
    rudp_time at = now + SHIM_PORTWATCH_PERIOD;
    if (pe->watch_at == 0 || pe->watch_at > at)
        pe->watch_at = at;
    shim_engine_tick_by(e, pe->watch_at);
}

static void look(struct engine *e, esock *s)
{
    port_sock *ps = port_of_sock(s);
    port_group *pg = port_of_group(s);
    uint64_t mine[1 + SHIM_ENGINES_MAX];
    int n = 0;
    mine[n++] = ps->ph.ino;
    for (int k = 0; pg && k < SHIM_ENGINES_MAX; k++) {
        uint64_t ino = atomic_load(&pg->member_ino[k]);
        if (ino)
            mine[n++] = ino;
    }
    int v6only = 0;
    socklen_t l = sizeof v6only;
    if (shim_esock_family(s) == AF_INET6)
        real_getsockopt(shim_esock_fd(s), IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &l);
    if (shim_udp_others(&ps->endpoint, v6only, mine, n, ps->ph.uid) == 1)
        shim_port_stranger(e, s);
}

void shim_portwatch_run(struct engine *e, rudp_time now)
{
    port_engine *pe = port_of_engine(e);
    if (pe->watch_at == 0)
        return;
    if (now < pe->watch_at) {
        shim_engine_tick_by(e, pe->watch_at);
        return;
    }
    int any = 0;
    for (uint32_t i = 0; i < shim_engine_nsocks(e); i++) {
        esock *s = shim_engine_sock(e, i);
        if (!s || !watched(s))
            continue;
        look(e, s);
        any |= watched(s);
    }
    pe->watch_at = any ? now + SHIM_PORTWATCH_PERIOD : 0;
    if (any)
        shim_engine_tick_by(e, pe->watch_at);
}
