/*
 * xgroup.c: a SO_REUSEPORT group whose members are in several processes.
 *
 * Listeners of several processes on one port with SO_REUSEPORT share one
 * group of UDP sockets, and the kernel gives each datagram to a member by
 * a hash of the peer's address and port modulo the group's size
 * (reuseport_select_sock()). When a member joins or leaves, the datagrams
 * of existing connections move to a member that does not know them; kernel
 * TCP does not care (an established connection has a socket of its own),
 * rudp did: 8 to 10 of 20 connections ended at a join. Steering by
 * connection ID in the kernel needs an eBPF program (CAP_BPF); without
 * one, the member that gets a datagram forwards it to the one that made
 * its connection ID:
 *
 * - Member tags. A listener whose application set SO_REUSEPORT takes a tag
 *   1..63 by binding (and listening on) an abstract AF_UNIX SOCK_SEQPACKET
 *   socket named
 *   "rudp-xgroup <address> <port> <tag>": a name is unique in a network
 *   namespace, as the group is (the port belongs to it), so the bind is
 *   the allocator; the first tag free is taken, and one that none is free
 *   for gets 0 (no tag: as before, its connections may end when the group
 *   changes, and it sends no keyed reset). The tag goes in the top
 *   SHIM_XG_BITS bits of the connection IDs of its connections
 *   (rudp_ctx_set_member_bits, rudp_listener_set_member_tag); the engine
 *   index (forward.c) follows. Every process's engines use this layout
 *   (whatever its RUDP_ENGINES), so any member reads any member's IDs.
 *   Random bits left: unkeyed IDs 64 - 6 - 3 = 55 (58 with one engine);
 *   keyed IDs keep their 32-bit MAC (keyreset.c) and the token bit, so
 *   32 - 6 - 3 - 1 = 22 (25 with one engine), against 28 before: only
 *   ever compared within one process's table, and guessing one earns a
 *   stranger nothing the MAC did not already refuse.
 * - Forwarding. A DATA packet for an unknown ID tagged with another
 *   member's tag comes back from the core unanswered (RUDP_INPUT_MEMBER);
 *   it is sent, with the peer's address and the local address it arrived
 *   on, over a connection to that member's abstract socket (one a pair of
 *   members and direction, made at the first datagram), which engine 0 of
 *   the member's process accepts, reads and injects as read from its own UDP socket of that
 *   endpoint (rudp_ctx_input_member, then forward.c to its engine): the
 *   member answers from its own socket, bound to the same address and
 *   port, so the client sees no change.
 * - The same user only. The kernel lets only sockets of one effective uid
 *   into a group (net/ipv4/udp.c, udp_lib_lport_inuse(): a reuseport
 *   socket shares a port only if uid_eq(uid, sock_i_uid(sk2)); TCP's
 *   inet_bind_conflict() in net/ipv4/inet_connection_sock.c the same), so
 *   both ends check SO_PEERCRED (man 7 unix: the credentials of the peer
 *   as of its connect(), or of the listener's listen()): the receiver
 *   accepts only connections of its own euid, and the sender hands
 *   datagrams only to a listener of its euid; a connection pins the
 *   socket it reached (a later holder of the name is never reached by
 *   it). A name held by another uid (a squatter) is a member unknown:
 *   nothing is forwarded to it (asked again after a second), nor reset.
 * - A member gone. A tag whose name nobody holds (connect() says
 *   ECONNREFUSED; a connection's sends say EPIPE or ECONNRESET when its
 *   member closed, and the name is asked again: its process died, with
 *   its connections) makes the datagram an orphan
 *   (rudp_ctx_input_member, gone): answered here as an unknown connection, and
 *   keyed, with the stateless reset, whose token is bound to the address
 *   and port (or the reset ID) every member shares. A tag's ID that a
 *   member does not know either is its own connection gone: reset too.
 * - Connected, not datagram. A bound AF_UNIX datagram socket that is not
 *   connected back to its sender takes at most net.unix.max_dgram_qlen
 *   messages (10 by default): unix_dgram_sendmsg() refuses more when
 *   unix_peer(other) != sk && unix_recvq_full_lockless(other)
 *   (net/unix/af_unix.c, 6.x), however small they are; that dropped 41
 *   to 45% of the forwarded datagrams one a message, 3 to 30% batched. A
 *   SOCK_SEQPACKET connection's sends go through unix_dgram_sendmsg()
 *   too (unix_seqpacket_sendmsg()), but its peer, the accepted socket, is
 *   connected back to the sender, so that test never applies: what may
 *   wait is bounded only by the sender's SO_SNDBUF (sock_alloc_send_pskb()),
 *   raised to 4 MiB (SO_SNDBUFFORCE; without CAP_NET_ADMIN at most
 *   net.core.wmem_max). Still batched: the datagrams one read of a UDP
 *   socket forwards to a member go as one message of up to 64 KiB
 *   (records: a header with the addresses and the length, then the
 *   datagram), sent after the read (shim_xgroup_flush). Sends never block
 *   (MSG_DONTWAIT): a full socket drops the message, counted, as a full
 *   UDP buffer drops datagrams, and loss recovery sends them again.
 *   Measured (integration/bench/xgjoin.py: 80 MB over 10 loopback
 *   connections after a member joined): the datagram socket dropped 5 to
 *   10% (65 to 169 of 1,076 to 1,792, 5 runs) and took 0.37 to 0.68 s; the
 *   connection dropped none of 690 to 1,296 in 5 runs, 0.44 to 0.74 s
 *   (0.34 to 0.51 s with no join; a shared 2-core machine, noisy).
 *
 * Limits: with RUDP_ENGINES > 1 the member socket is engine 0's (its
 * listener socket lives while any engine's does, engines.c's lgroup). A
 * forked child that keeps the process's fds does not keep this one (an
 * engine-owned fd): the tag is freed with its listener.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ports.h"
#include "portpriv.h"

#include "base/poison.h"

#define XG_TAGS ((1u << SHIM_XG_BITS) - 1)
/* Other members a process's engine talks to, at most. */
#define XPEERS_MAX 64
/* A squatted name is looked at again after this. */
#define SQUAT_RETRY RUDP_SEC(1)
/* Messages read from a member connection (connections accepted) per event. */
#define XG_BATCH 64
/* A message's size at most: the datagrams a turn forwards to one member
 * go in as few messages as this allows (one sendto() each). */
#define XG_MSG_MAX 65536
#define XG_SNDBUF (64 * XG_MSG_MAX)

#define XG_MAGIC 0x72786732u /* "rxg2" */

/* One forwarded datagram in a message: this header, then its bytes. */
typedef struct xg_rec {
    uint32_t magic;
    uint32_t len;       /* the datagram's bytes after this header */
    uint32_t has_local;
    uint32_t sock;      /* the sender's socket that read it (its own use) */
    rudp_addr local, peer;
} xg_rec;

typedef struct xpeer {
    struct sockaddr_storage ep; /* the group's endpoint */
    unsigned tag;
    int fd;                     /* connected to the member's socket, -1: none */
    rudp_time squat_until;      /* its name is held by another uid until then */
    uint8_t *out;               /* records waiting for this turn's flush */
    size_t used;
    unsigned nrec;
} xpeer;

/* The abstract name of member `tag` of the group on endpoint ep. */
static socklen_t xg_name(const struct sockaddr_storage *ep, unsigned tag, struct sockaddr_un *un)
{
    char a[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ep->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ep;
        inet_ntop(AF_INET, &in->sin_addr, a, sizeof a);
        port = ntohs(in->sin_port);
    } else if (ep->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ep;
        inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof a);
        port = ntohs(in6->sin6_port);
    }
    memset(un, 0, sizeof *un);
    un->sun_family = AF_UNIX;
    int n = snprintf(un->sun_path + 1, sizeof un->sun_path - 1, "rudp-xgroup %s %u %u", a, port,
                     tag);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

unsigned shim_xgroup_join(int udp_fd, int *xfd)
{
    *xfd = -1;
    struct sockaddr_storage ep;
    socklen_t el = sizeof ep;
    if (real_getsockname(udp_fd, (struct sockaddr *)&ep, &el) < 0 ||
        (ep.ss_family != AF_INET && ep.ss_family != AF_INET6))
        return 0;
    int fd = real_socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    for (unsigned tag = 1; tag <= XG_TAGS; tag++) {
        struct sockaddr_un un;
        socklen_t ul = xg_name(&ep, tag, &un);
        if (real_bind(fd, (struct sockaddr *)&un, ul) == 0) {
            if (real_listen(fd, XPEERS_MAX) < 0)
                break;
            *xfd = shim_fd_move_high(fd);
            return tag;
        }
        if (errno != EADDRINUSE)
            break;
    }
    real_close(fd);
    SHIM_LOG(RUDP_LOG_WARN, "listener: no member tag for its SO_REUSEPORT group (%d taken): "
                            "its connections may end when the group changes", XG_TAGS);
    return 0;
}

static const shim_watch_ops xg_ops;

void shim_xgroup_attach(esock *s, int xfd, unsigned tag)
{
    xgsock *x = &port_of_sock(s)->xg;
    shim_watch_set(&x->w, &xg_ops);
    x->fd = xfd;
    x->s = s;
    x->tag = tag;
    x->lst = 1;
    x->next = NULL;
    if (shim_engine_watch(shim_esock_engine(s), xfd, EPOLLIN, &x->w) < 0) {
        shim_close_owned(xfd);
        x->w.type = 0;
        x->fd = -1;
    }
}

/* Closes one accepted connection; its events still in this batch (the
 * engine's) go to nobody. */
static void conn_close(struct engine *e, xgsock *c)
{
    shim_engine_unwatch(e, c->fd);
    shim_close_owned(c->fd);
    c->fd = -1;
    shim_engine_bury(e, c, &c->w.type);
}

/* Member socket x stops being read: the connections other members made
 * to it close (their next send fails, and they connect again), and it
 * leaves the engine's epoll. */
static void unwatch_member(struct engine *e, xgsock *x)
{
    for (xgsock *c = x->next, *nx; c; c = nx) {
        nx = c->next;
        conn_close(e, c);
    }
    x->next = NULL;
    shim_engine_unwatch(e, x->fd);
}

void shim_xgroup_detach(esock *s)
{
    xgsock *x = &port_of_sock(s)->xg;
    struct engine *e = shim_esock_engine(s);
    if (!shim_watch_on(&x->w))
        return;
    unwatch_member(e, x);
    shim_close_owned(x->fd); /* the tag is free again */
    x->fd = -1;
    x->w.type = 0;
}

void shim_xgroup_linger(esock *s, rudp_time now)
{
    xgsock *x = &port_of_sock(s)->xg;
    struct engine *e = shim_esock_engine(s);
    port_engine *pe = port_of_engine(e);
    if (!shim_watch_on(&x->w))
        return;
    unwatch_member(e, x); /* other members connect again, to the name still held */
    if (pe->nlinger == SHIM_XG_LINGER) { /* full: the oldest goes now */
        shim_close_owned(pe->xg_linger_fd[0]);
        memmove(pe->xg_linger_fd, pe->xg_linger_fd + 1, (SHIM_XG_LINGER - 1) * sizeof(int));
        memmove(pe->xg_linger_at, pe->xg_linger_at + 1, (SHIM_XG_LINGER - 1) * sizeof(rudp_time));
        pe->nlinger--;
    }
    pe->xg_linger_fd[pe->nlinger] = x->fd;
    pe->xg_linger_at[pe->nlinger++] = now + SHIM_QUIET_AFTER_MOVE;
    shim_engine_tick_by(e, now + SHIM_QUIET_AFTER_MOVE);
    x->fd = -1;
    x->w.type = 0;
}

void shim_xgroup_linger_expire(struct engine *e, rudp_time now)
{
    port_engine *pe = port_of_engine(e);
    int k = 0;
    for (int i = 0; i < pe->nlinger; i++) {
        if (pe->xg_linger_at[i] <= now) {
            shim_close_owned(pe->xg_linger_fd[i]); /* the tag is free again */
            continue;
        }
        shim_engine_tick_by(e, pe->xg_linger_at[i]);
        pe->xg_linger_fd[k] = pe->xg_linger_fd[i];
        pe->xg_linger_at[k++] = pe->xg_linger_at[i];
    }
    pe->nlinger = k;
}

/* Injects the records of one message from another member. */
static void take_records(esock *s, const uint8_t *msg, size_t n, rudp_time now)
{
    struct engine *e = shim_esock_engine(s);
    port_engine *pe = port_of_engine(e);
    rudp_ctx *ctx = shim_engine_ctx(e);
    while (n > 0) {
        xg_rec r;
        if (n < sizeof r) {
            pe->xg_dropped++;
            return;
        }
        memcpy(&r, msg, sizeof r);
        if (r.magic != XG_MAGIC || r.len == 0 || r.len > n - sizeof r) {
            pe->xg_dropped++;
            return;
        }
        const uint8_t *buf = msg + sizeof r;
        const rudp_addr *local = r.has_local ? &r.local : NULL;
        pe->xg_in++;
        /* Read in another process, with no stamp of ours: a handshake it
         * completes is handed over at once, not ordered (fifo.c). */
        shim_engine_clear_rx_stamp(e);
        int owner = rudp_ctx_input_member(ctx, now, shim_esock_index(s), local, &r.peer, buf,
                                          r.len, 0);
        if (owner) /* another engine's of this process (forward.c) */
            shim_forward(s, (unsigned)(owner - RUDP_INPUT_FOREIGN), local, &r.peer, buf, r.len,
                         now);
        msg += sizeof r + r.len;
        n -= sizeof r + r.len;
    }
}

/* The listener: takes the connections of other members of its uid. */
static void accept_members(xgsock *x)
{
    esock *s = x->s;
    struct engine *e = shim_esock_engine(s);
    port_engine *pe = port_of_engine(e);
    for (int i = 0; i < XG_BATCH; i++) {
        int fd = real_accept4(x->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN: all taken */
        /* only a member of the group's uid: the connector's credentials
         * as of its connect() (SO_PEERCRED, man 7 unix) */
        struct ucred uc;
        socklen_t ul = sizeof uc;
        xgsock *c = NULL;
        /* the engine's buffer for their messages (shim_xgroup_event),
         * made with its first member connection: on the heap, not in
         * thread-local storage, which every thread of the program pays */
        if (!pe->xg_msg)
            pe->xg_msg = shim_malloc(XG_MSG_MAX);
        if (real_getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) < 0 || uc.uid != geteuid() ||
            !pe->xg_msg || !(c = shim_calloc(1, sizeof *c))) {
            real_close(fd);
            continue;
        }
        c->fd = shim_fd_move_high(fd);
        shim_own_fd(c->fd, 1);
        shim_watch_set(&c->w, &xg_ops);
        c->s = s;
        c->tag = x->tag;
        if (shim_engine_watch(e, c->fd, EPOLLIN, &c->w) < 0) {
            shim_close_owned(c->fd);
            shim_free(c);
            continue;
        }
        c->next = x->next;
        x->next = c;
    }
}

/* A connection ended: out of its listener's list, and closed. */
static void conn_end(xgsock *c)
{
    esock *s = c->s;
    for (xgsock **pp = &port_of_sock(s)->xg.next; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    conn_close(shim_esock_engine(s), c);
}

void shim_xgroup_event(xgsock *x, rudp_time now)
{
    if (x->lst) {
        accept_members(x);
        return;
    }
    esock *s = x->s;
    port_engine *pe = port_of_engine(shim_esock_engine(s));
    uint8_t *msg = pe->xg_msg; /* made before x was accepted; if not, now */
    if (!msg && !(msg = pe->xg_msg = shim_malloc(XG_MSG_MAX))) {
        pe->xg_dropped++;
        conn_end(x); /* cannot read it: as if its member had closed it */
        return;
    }
    for (int i = 0; i < XG_BATCH && shim_watch_on(&x->w); i++) {
        struct iovec iov = {msg, XG_MSG_MAX};
        union {
            struct cmsghdr c;
            char b[CMSG_SPACE(sizeof(int))];
        } cm;
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &cm,
                           .msg_controllen = sizeof cm};
        ssize_t n = real_recvmsg(x->fd, &m, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            conn_end(x); /* its member closed it, or is gone */
            return;
        }
        if (n < 0)
            return; /* EAGAIN: all read */
        /* nobody sends us fds; the buffer has no room for them
         * (MSG_CTRUNC: the kernel drops them), closed if any came */
        shim_cmsg_take_fds(&m, NULL, 0);
        if (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
            pe->xg_dropped++;
            continue;
        }
        take_records(s, msg, (size_t)n, now);
    }
}

static xpeer *peer_of(port_engine *pe, const struct sockaddr_storage *ep, unsigned tag)
{
    for (unsigned i = 0; i < pe->nxpeers; i++)
        if (pe->xpeers[i].tag == tag && memcmp(&pe->xpeers[i].ep, ep, sizeof *ep) == 0)
            return &pe->xpeers[i];
    if (!pe->xpeers && !(pe->xpeers = shim_calloc(XPEERS_MAX, sizeof *pe->xpeers)))
        return NULL;
    xpeer *p = NULL;
    if (pe->nxpeers < XPEERS_MAX) {
        p = &pe->xpeers[pe->nxpeers++];
    } else { /* full: one that has no socket, or the first */
        p = &pe->xpeers[0];
        for (unsigned i = 0; i < XPEERS_MAX; i++)
            if (pe->xpeers[i].fd < 0) {
                p = &pe->xpeers[i];
                break;
            }
        if (p->fd >= 0)
            shim_close_owned(p->fd);
        pe->xg_dropped += p->nrec; /* flushed each turn: none, usually */
        shim_free(p->out);
    }
    memset(p, 0, sizeof *p);
    p->ep = *ep;
    p->tag = tag;
    p->fd = -1;
    return p;
}

/* Connects p to its member's socket and checks its owner: 1 connected,
 * 0 nobody holds the name (the member is gone), -1 not usable now (held
 * by another uid, or cannot tell). */
static int resolve(xpeer *p, rudp_time now)
{
    if (p->squat_until > now)
        return -1;
    struct sockaddr_un un;
    socklen_t ul = xg_name(&p->ep, p->tag, &un);
    int fd = real_socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* A unix connect() with O_NONBLOCK completes at once or fails
     * (EAGAIN: the member's backlog is full; unix_stream_connect()). */
    if (real_connect(fd, (struct sockaddr *)&un, ul) < 0) {
        int gone = errno == ECONNREFUSED || errno == ENOENT;
        real_close(fd);
        return gone ? 0 : -1;
    }
    /* the owner of the listener that holds the name, as of its listen()
     * (SO_PEERCRED on a connected unix socket, man 7 unix) */
    struct ucred uc;
    socklen_t ucl = sizeof uc;
    if (real_getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ucl) < 0 || uc.uid != geteuid()) {
        real_close(fd);
        p->squat_until = now + SQUAT_RETRY;
        return -1;
    }
    /* what a connection's receiver may have unread is bounded by its
     * sender's SO_SNDBUF alone (sock_alloc_send_pskb() in
     * unix_dgram_sendmsg()): 64 messages of the largest */
    int sb = XG_SNDBUF;
    if (real_setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sb, sizeof sb) < 0)
        real_setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb);
    p->fd = shim_fd_move_high(fd);
    shim_own_fd(p->fd, 1);
    return 1;
}

/* Every record waiting for p answered here: its member is gone. */
static void orphan_all(struct engine *e, xpeer *p, rudp_time now)
{
    for (size_t off = 0; off < p->used;) {
        xg_rec r;
        memcpy(&r, p->out + off, sizeof r);
        port_of_engine(e)->xg_orphans++;
        rudp_ctx_input_member(shim_engine_ctx(e), now, r.sock, r.has_local ? &r.local : NULL, &r.peer,
                              p->out + off + sizeof r, r.len, 1);
        off += sizeof r + r.len;
    }
}

/* Sends what waits for p as one message; a member found gone meanwhile
 * gets its records answered here. */
static void flush_peer(struct engine *e, xpeer *p, rudp_time now)
{
    if (!p->used)
        return;
    int sent = 0, unknown = 0;
    for (int attempt = 0; attempt < 2 && !sent; attempt++) {
        if (p->fd < 0) {
            int r = resolve(p, now);
            if (r == 0) { /* its member is gone, and its connections */
                orphan_all(e, p, now);
                p->used = p->nrec = 0;
                return;
            }
            if (r < 0) {
                unknown = 1;
                break;
            }
        }
        if (real_sendto(p->fd, p->out, p->used, MSG_DONTWAIT | MSG_NOSIGNAL, NULL, 0) >= 0) {
            sent = 1;
        } else if (errno == EAGAIN || errno == ENOBUFS || errno == EMSGSIZE) {
            break; /* full: dropped, as by a full UDP buffer */
        } else { /* its connection is gone (EPIPE, ECONNRESET): its name
                  * again, once: ECONNREFUSED there is the member gone */
            shim_close_owned(p->fd);
            p->fd = -1;
        }
    }
    port_engine *pe = port_of_engine(e);
    if (sent)
        pe->xg_out += p->nrec;
    else if (unknown)
        pe->xg_unknown += p->nrec;
    else
        pe->xg_dropped += p->nrec;
    p->used = p->nrec = 0;
}

void shim_xgroup_forward(esock *s, unsigned tag, const rudp_addr *local, const rudp_addr *peer,
                         const uint8_t *buf, size_t len, rudp_time now)
{
    struct engine *e = shim_esock_engine(s);
    port_engine *pe = port_of_engine(e);
    const struct sockaddr_storage *ep = &port_of_sock(s)->endpoint;
    xpeer *p = ep->ss_family ? peer_of(pe, ep, tag) : NULL;
    if (p && p->fd < 0 && !p->used) {
        int r = resolve(p, now);
        if (r == 0) { /* its member is gone, and its connections */
            pe->xg_orphans++;
            rudp_ctx_input_member(shim_engine_ctx(e), now, shim_esock_index(s), local, peer, buf,
                                  len, 1);
            return;
        }
        if (r < 0) { /* a squatter's, or cannot tell: nothing forwarded */
            pe->xg_unknown++;
            return;
        }
    }
    xg_rec r;
    if (!p || sizeof r + len > XG_MSG_MAX || (!p->out && !(p->out = shim_malloc(XG_MSG_MAX)))) {
        pe->xg_dropped++;
        return;
    }
    if (p->used + sizeof r + len > XG_MSG_MAX)
        flush_peer(e, p, now);
    memset(&r, 0, sizeof r);
    r.magic = XG_MAGIC;
    r.len = (uint32_t)len;
    r.has_local = local != NULL;
    r.sock = shim_esock_index(s);
    if (local)
        r.local = *local;
    r.peer = *peer;
    memcpy(p->out + p->used, &r, sizeof r);
    memcpy(p->out + p->used + sizeof r, buf, len);
    p->used += sizeof r + len;
    p->nrec++;
    shim_engine_relay_pending(e);
}

void shim_xgroup_flush(struct engine *e, rudp_time now)
{
    port_engine *pe = port_of_engine(e);
    for (unsigned i = 0; i < pe->nxpeers; i++)
        flush_peer(e, &pe->xpeers[i], now);
}

/* A member socket's epoll event (the engine's dispatch, hooks.h). */
static void xg_event(void *obj, uint32_t events, rudp_time now)
{
    (void)events;
    shim_xgroup_event(obj, now);
}

static const shim_watch_ops xg_ops = {.event = xg_event};
