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
#include "portshare.h"
#include "portwatch.h"

#include "base/poison.h"

/* Armed (ph.ino) and still on its port (give_up clears the endpoint). */
static int watched(const esock *s)
{
    return s->ph.ino != 0 && s->endpoint.ss_family != 0;
}

void shim_portwatch_arm(esock *s, rudp_time now)
{
    struct stat st;
    if (s->endpoint.ss_family == 0 || fstat(s->fd, &st) < 0)
        return;
    s->ph.ino = (uint64_t)st.st_ino;
    s->ph.uid = st.st_uid;
    if (s->group)
        atomic_store(&s->group->member_ino[shim_engine_index(s->e)], s->ph.ino);
    struct engine *e = s->e;
    rudp_time at = now + SHIM_PORTWATCH_PERIOD;
    if (e->watch_at == 0 || e->watch_at > at)
        e->watch_at = at;
    if (e->retry_at > e->watch_at)
        e->retry_at = e->watch_at;
}

static void look(struct engine *e, esock *s)
{
    uint64_t mine[1 + SHIM_ENGINES_MAX];
    int n = 0;
    mine[n++] = s->ph.ino;
    for (int k = 0; s->group && k < SHIM_ENGINES_MAX; k++) {
        uint64_t ino = atomic_load(&s->group->member_ino[k]);
        if (ino)
            mine[n++] = ino;
    }
    int v6only = 0;
    socklen_t l = sizeof v6only;
    if (s->family == AF_INET6)
        real_getsockopt(s->fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &l);
    if (shim_udp_others(&s->endpoint, v6only, mine, n, s->ph.uid) == 1)
        shim_port_stranger(e, s);
}

void shim_portwatch_run(struct engine *e, rudp_time now)
{
    if (e->watch_at == 0)
        return;
    if (now < e->watch_at) {
        if (e->retry_at > e->watch_at)
            e->retry_at = e->watch_at;
        return;
    }
    int any = 0;
    for (uint32_t i = 0; i < e->nsocks; i++) {
        esock *s = e->socks[i];
        if (!s || !watched(s))
            continue;
        look(e, s);
        any |= watched(s);
    }
    e->watch_at = any ? now + SHIM_PORTWATCH_PERIOD : 0;
    if (any && e->retry_at > e->watch_at)
        e->retry_at = e->watch_at;
}
