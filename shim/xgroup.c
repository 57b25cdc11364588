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
 *   1..63 by binding an abstract AF_UNIX datagram socket named
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
 *   on, to that member's abstract socket, which engine 0 of the member's
 *   process reads and injects as read from its own UDP socket of that
 *   endpoint (rudp_ctx_input_member, then forward.c to its engine): the
 *   member answers from its own socket, bound to the same address and
 *   port, so the client sees no change.
 * - The same user only. The kernel lets only sockets of one effective uid
 *   into a group (net/ipv4/udp.c, udp_lib_lport_inuse(): a reuseport
 *   socket shares a port only if uid_eq(uid, sock_i_uid(sk2)); TCP's
 *   inet_bind_conflict() in net/ipv4/inet_connection_sock.c the same), so
 *   the receiver takes a forwarded datagram only with SCM_CREDENTIALS
 *   (SO_PASSCRED) naming its own euid (a sender may state its euid, and the
 *   kernel checks it: __scm_creds()), and the sender hands datagrams only
 *   to a socket of its euid: it connects a datagram socket to the name
 *   (which pins that very socket: a later holder of the name is never
 *   reached by it) and asks sock_diag for its peer's inode
 *   (UNIX_DIAG_PEER) and that socket's owner (UNIX_DIAG_UID). A name held
 *   by another uid (a squatter) is a member unknown: nothing is forwarded
 *   to it (asked again after a second), nor reset.
 * - A member gone. A tag whose name nobody holds (connect() says
 *   ECONNREFUSED, or the connected socket's sends do: its process died,
 *   with its connections) makes the datagram an orphan
 *   (rudp_ctx_input_member, gone): answered here as an unknown connection, and
 *   keyed, with the stateless reset, whose token is bound to the address
 *   and port (or the reset ID) every member shares. A tag's ID that a
 *   member does not know either is its own connection gone: reset too.
 * - Bounded. Sends never block (MSG_DONTWAIT): a member's socket that is
 *   full (its receive buffer, or net.unix.max_dgram_qlen datagrams,
 *   10 by default) drops, as a full UDP buffer does.
 *
 * Limits: with RUDP_ENGINES > 1 the member socket is engine 0's (its
 * listener socket lives while any engine's does, engines.c's lgroup). A
 * forked child that keeps the process's fds does not keep this one (an
 * engine-owned fd): the tag is freed with its listener.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/unix_diag.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "engine.h"

#include "poison.h"

#define XG_TAGS ((1u << SHIM_XG_BITS) - 1)
/* Other members a process's engine talks to, at most. */
#define XPEERS_MAX 64
/* A squatted name is looked at again after this. */
#define SQUAT_RETRY RUDP_SEC(1)
/* Datagrams read from the member socket per event. */
#define XG_BATCH 64

#define XG_MAGIC 0x72786731u /* "rxg1" */

typedef struct xg_hdr {
    uint32_t magic;
    uint32_t has_local;
    rudp_addr local, peer;
} xg_hdr;

typedef struct xpeer {
    struct sockaddr_storage ep; /* the group's endpoint */
    unsigned tag;
    int fd;                     /* connected to the member's socket, -1: none */
    rudp_time squat_until;      /* its name is held by another uid until then */
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
    int fd = real_socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int on = 1;
    if (real_setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) < 0) {
        real_close(fd);
        return 0;
    }
    for (unsigned tag = 1; tag <= XG_TAGS; tag++) {
        struct sockaddr_un un;
        socklen_t ul = xg_name(&ep, tag, &un);
        if (real_bind(fd, (struct sockaddr *)&un, ul) == 0) {
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

void shim_xgroup_attach(esock *s, int xfd, unsigned tag)
{
    struct engine *e = s->e;
    s->xg.type = W_XGROUP;
    s->xg.fd = xfd;
    s->xg.s = s;
    s->xg.tag = tag;
    struct epoll_event ee = {.events = EPOLLIN, .data.ptr = &s->xg};
    if (real_epoll_ctl(e->epfd, EPOLL_CTL_ADD, xfd, &ee) < 0) {
        shim_close_owned(xfd);
        s->xg.type = 0;
        s->xg.fd = -1;
    }
}

void shim_xgroup_detach(esock *s)
{
    if (s->xg.type != W_XGROUP)
        return;
    real_epoll_ctl(s->e->epfd, EPOLL_CTL_DEL, s->xg.fd, NULL);
    shim_close_owned(s->xg.fd); /* the tag is free again */
    s->xg.fd = -1;
    s->xg.type = 0;
}

void shim_xgroup_event(xgsock *x, rudp_time now)
{
    esock *s = x->s;
    struct engine *e = s->e;
    uid_t me = geteuid();
    for (int i = 0; i < XG_BATCH && x->type == W_XGROUP; i++) {
        xg_hdr h;
        static _Thread_local uint8_t buf[65536];
        struct iovec iov[2] = {{&h, sizeof h}, {buf, sizeof buf}};
        union {
            struct cmsghdr c;
            char b[CMSG_SPACE(sizeof(struct ucred))];
        } cm;
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2, .msg_control = &cm,
                           .msg_controllen = sizeof cm};
        ssize_t n = real_recvmsg(x->fd, &m, MSG_DONTWAIT);
        if (n < 0)
            return; /* EAGAIN: all read */
        int ok = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
                c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
                struct ucred uc;
                memcpy(&uc, CMSG_DATA(c), sizeof uc);
                ok = uc.uid == me; /* only a member of the group's uid */
            }
        if (!ok || (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || n <= (ssize_t)sizeof h ||
            h.magic != XG_MAGIC) {
            e->xg_dropped++;
            continue;
        }
        size_t len = (size_t)n - sizeof h;
        const rudp_addr *local = h.has_local ? &h.local : NULL;
        e->xg_in++;
        int owner = rudp_ctx_input_member(e->ctx, now, s->idx, local, &h.peer, buf, len, 0);
        if (owner) /* another engine's of this process (forward.c) */
            shim_forward(s, (unsigned)(owner - RUDP_INPUT_FOREIGN), local, &h.peer, buf, len, now);
    }
}

static xpeer *peer_of(struct engine *e, const struct sockaddr_storage *ep, unsigned tag)
{
    for (unsigned i = 0; i < e->nxpeers; i++)
        if (e->xpeers[i].tag == tag && memcmp(&e->xpeers[i].ep, ep, sizeof *ep) == 0)
            return &e->xpeers[i];
    if (!e->xpeers && !(e->xpeers = shim_calloc(XPEERS_MAX, sizeof *e->xpeers)))
        return NULL;
    xpeer *p = NULL;
    if (e->nxpeers < XPEERS_MAX) {
        p = &e->xpeers[e->nxpeers++];
    } else { /* full: one that has no socket, or the first */
        p = &e->xpeers[0];
        for (unsigned i = 0; i < XPEERS_MAX; i++)
            if (e->xpeers[i].fd < 0) {
                p = &e->xpeers[i];
                break;
            }
        if (p->fd >= 0)
            shim_close_owned(p->fd);
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
    int fd = real_socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (real_connect(fd, (struct sockaddr *)&un, ul) < 0) {
        int gone = errno == ECONNREFUSED || errno == ENOENT;
        real_close(fd);
        return gone ? 0 : -1;
    }
    struct stat st;
    uint32_t peer_ino = 0, uid = 0;
    if (fstat(fd, &st) < 0 ||
        shim_unix_diag_u32((uint64_t)st.st_ino, UDIAG_SHOW_PEER, UNIX_DIAG_PEER, &peer_ino) != 1 ||
        shim_unix_diag_u32(peer_ino, UDIAG_SHOW_UID, UNIX_DIAG_UID, &uid) != 1 ||
        uid != (uint32_t)geteuid()) {
        real_close(fd);
        p->squat_until = now + SQUAT_RETRY;
        return -1;
    }
    p->fd = shim_fd_move_high(fd);
    shim_own_fd(p->fd, 1);
    return 1;
}

void shim_xgroup_forward(esock *s, unsigned tag, const rudp_addr *local, const rudp_addr *peer,
                         const uint8_t *buf, size_t len, rudp_time now)
{
    struct engine *e = s->e;
    xpeer *p = s->endpoint.ss_family ? peer_of(e, &s->endpoint, tag) : NULL;
    if (!p) {
        e->xg_dropped++;
        return;
    }
    xg_hdr h;
    memset(&h, 0, sizeof h);
    h.magic = XG_MAGIC;
    h.has_local = local != NULL;
    if (local)
        h.local = *local;
    h.peer = *peer;
    struct ucred uc = {.pid = getpid(), .uid = geteuid(), .gid = getegid()};
    for (int attempt = 0; attempt < 2; attempt++) {
        if (p->fd < 0) {
            int r = resolve(p, now);
            if (r == 0) { /* its member is gone, and its connections */
                e->xg_orphans++;
                rudp_ctx_input_member(e->ctx, now, s->idx, local, peer, buf, len, 1);
                return;
            }
            if (r < 0)
                break;
        }
        struct iovec iov[2] = {{&h, sizeof h}, {(void *)buf, len}};
        union {
            struct cmsghdr c;
            char b[CMSG_SPACE(sizeof uc)];
        } cm;
        memset(&cm, 0, sizeof cm);
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2, .msg_control = &cm,
                           .msg_controllen = sizeof cm};
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_CREDENTIALS;
        c->cmsg_len = CMSG_LEN(sizeof uc);
        memcpy(CMSG_DATA(c), &uc, sizeof uc);
        if (real_sendmsg(p->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) {
            e->xg_out++;
            return;
        }
        if (errno == EAGAIN || errno == ENOBUFS || errno == EMSGSIZE)
            break; /* full: dropped, as by a full UDP buffer */
        /* its socket is gone (ECONNREFUSED): its name again, once */
        shim_close_owned(p->fd);
        p->fd = -1;
    }
    e->xg_dropped++;
}
