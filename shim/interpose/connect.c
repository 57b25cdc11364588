/*
 * connect.c: connect() interposed. A TCP socket that connects to a
 * redirected address is replaced, under the same fd number, by an AF_UNIX
 * socket bridged to the engine (shim_replace_fd, sock.c), once the engine
 * holds the connection's UDP socket and its settings; any other connect is
 * the kernel's. A connect() again on one of ours is reconnect.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/tcp.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "sock.h"

/* ---- connect ---- */

/* An IPv4 destination (host order) as the kernel's TCP takes it: the any
 * address reaches this host's loopback; multicast and broadcast are
 * unreachable. Returns 0 or the errno. */
static int v4_destination(uint32_t *a)
{
    if (*a == INADDR_ANY)
        *a = INADDR_LOOPBACK;
    else if (IN_MULTICAST(*a) || *a == INADDR_BROADCAST)
        return ENETUNREACH;
    return 0;
}

/* The same for any destination (v4, v6, v4-mapped; :: reaches ::1).
 * Rewrites *ss; returns 0 or the errno. */
static int tcp_destination(struct sockaddr_storage *ss)
{
    uint8_t *v4 = NULL;
    if (ss->ss_family == AF_INET) {
        v4 = (uint8_t *)&((struct sockaddr_in *)ss)->sin_addr;
    } else {
        struct in6_addr *a6 = &((struct sockaddr_in6 *)ss)->sin6_addr;
        if (IN6_IS_ADDR_UNSPECIFIED(a6))
            *a6 = in6addr_loopback;
        else if (IN6_IS_ADDR_MULTICAST(a6))
            return ENETUNREACH;
        else if (IN6_IS_ADDR_V4MAPPED(a6))
            v4 = &a6->s6_addr[12];
    }
    if (!v4)
        return 0;
    uint32_t a;
    memcpy(&a, v4, sizeof a);
    a = ntohl(a);
    int err = v4_destination(&a);
    a = htonl(a);
    memcpy(v4, &a, sizeof a);
    return err;
}

/* A connect() on its way over rudp: what the app asked, then what the
 * stages of connect_setup make of it, in their order. The fds they open
 * (udp, sv) are -1 until opened and again once closed or handed to the
 * engine, so that one clean-up closes what a failure leaves. */
typedef struct connecting {
    int fd, family;
    const struct sockaddr *addr;
    socklen_t len;
    int tfo;                       /* MSG_FASTOPEN asked for it (msgaddr.c) */
    uint64_t pristine_ino;         /* the app's TCP socket's inode, if no option
                                    * was set on it since its socket() (pristine.c);
                                    * else 0 */
    int widened;                   /* the fd limit was raised meanwhile
                                    * (shim_nofile_widen), to be set back */
    struct sockaddr_storage peer;  /* the destination as TCP would take it */
    struct sockaddr_storage local; /* the app's bound address, then the UDP socket's */
    shim_takeover tk;              /* the app's TCP socket: flags, options, settings */
    int udp;                       /* the connected UDP socket */
    int sv[2];                     /* the bridge: the app's end, the engine's */
    shim_name n;                   /* the bridge's name */
    shim_slot *sl;                 /* its slot, or NULL (nowhere to keep flags) */
    int early;                     /* with a token: connect() returns 0 at once */
    int foreign;                   /* a child with an fd table of its own (adopt.c) */
    int shrink;                    /* the app's end has the smallest send buffer */
    const char *no_fd_where;       /* EMFILE: whose fds ran out ("this process") */
    uint64_t app_ino;              /* the app's end's inode, 0: no restore */
    int app_sndbuf;                /* the send buffer it gets back */
    shim_connect_req req;          /* what the engine is given */
} connecting;

/* redirect_connect's set-up: -1 (errno), 0 (a kernel connect's success),
 * CONNECT_PLACED (our end is at fd: EINPROGRESS, 0 at once with a token,
 * or wait). */
#define CONNECT_PLACED 2
static int connect_setup(connecting *d);

/* tfo: MSG_FASTOPEN asked for it (msgaddr.c); pristine_ino: connecting's. */
static int redirect_connect(int fd, int family, const struct sockaddr *addr, socklen_t len,
                            int tfo, uint64_t pristine_ino)
{
    connecting d;
    memset(&d, 0, sizeof d);
    d.fd = fd;
    d.family = family;
    d.addr = addr;
    d.len = len;
    d.tfo = tfo;
    d.pristine_ino = pristine_ino;
    d.udp = d.sv[0] = d.sv[1] = -1;
    int r = connect_setup(&d);
    if (d.widened) {
        int saved = errno;
        shim_nofile_restore();
        errno = saved;
    }
    /* Out of fds even with the soft limit at the hard one: TCP's connect
     * needs none, so it is not ours to refuse; kernel TCP carries it where
     * rudp may be left (said and counted), else ENOBUFS, said. The app's
     * fd is still its kernel TCP socket (nothing was placed). Not in
     * rudp-supervise (fds that are copies of the program's): its reserve
     * and its own word take an EMFILE there (tools/supervise/escape.c). */
    if (r < 0 && errno == EMFILE && shim_front_can(SHIM_FRONT_OWNS_NUMBERS))
        return shim_fallback_no_fd(addr, d.no_fd_where ? d.no_fd_where : "this process")
                   ? shim_sock_kernel_kept(fd, real_connect(fd, addr, len))
                   : fail(ENOBUFS);
    if (r != CONNECT_PLACED)
        return r;
    if (d.early)
        return 0; /* the SYN leaves with the first write (or soon without it) */
    if (d.tk.status & O_NONBLOCK)
        return fail(EINPROGRESS);
    return shim_connect_wait(fd, &d.tk.rec, &d.n, 0);
}

/* At the fd limit TCP's connect needs no new fd, ours three: on EMFILE the
 * limit is raised while we make them (shim_nofile_widen), and the call
 * tried again. */
static int at_fd_limit(int *widened)
{
    if (errno != EMFILE || *widened)
        return 0;
    *widened = shim_nofile_widen();
    if (!*widened)
        errno = EMFILE;
    return *widened;
}

/* Zero round trips (core/token.h, state/tokens.c), opt-in as TCP Fast
 * Open: RUDP_0RTT=1, TCP_FASTOPEN_CONNECT on the socket, or MSG_FASTOPEN.
 * With a token stored for the server, connect() returns 0 at once and the
 * SYN waits for the first write, as Linux's TCP_FASTOPEN_CONNECT has it,
 * but for a bounded time: the program's own opt-in, long enough for any
 * program that writes first; RUDP_0RTT alone, briefly, so that a program
 * whose server speaks first loses little. Without a token the connect is
 * an ordinary one (Linux's, too, is one without a cookie; the program
 * cannot tell it from TFO being off). */
#define TFO_HOLD RUDP_MS(200)
#define ZRTT_HOLD RUDP_MS(10)

/* Takes the token for peer into req if the program opted in; returns its
 * length if the connection goes early (0-RTT: no filler, connect() returns
 * at once), else 0. */
static size_t take_token(int fd, int pristine, const struct sockaddr_storage *peer, int tfo,
                         shim_connect_req *req, int *asked)
{
    *asked = tfo || (!pristine && get_int(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT) > 0);
    if (!*asked && !shim_cfg.zero_rtt)
        return 0;
    rudp_addr a;
    shim_to_rudp_addr((const struct sockaddr *)peer, &a);
    req->want_token = 1;
    req->token_len = (uint8_t)shim_tokens_take(&a, shim_key() != NULL, req->token,
                                               sizeof req->token);
    if (!req->token_len)
        return 0;
    req->hold = *asked ? TFO_HOLD : ZRTT_HOLD;
    return req->token_len;
}

/* The destination as the kernel's TCP would take it, into d->peer. 0, or
 * -1 with errno: TCP's answer to an address it would not connect to. */
static int take_destination(connecting *d)
{
    if (d->addr->sa_family != d->family)
        return fail(EAFNOSUPPORT);
    if (d->len < sa_len(d->family))
        return fail(EINVAL);
    memcpy(&d->peer, d->addr, sa_len(d->family));
    if (d->family == AF_INET6) {
        /* a scope for a link-local address only, as the kernel keeps it
         * (getpeername says 0 for ::1 connected with scope 99) */
        struct sockaddr_in6 *p6 = (struct sockaddr_in6 *)&d->peer;
        if (!IN6_IS_ADDR_LINKLOCAL(&p6->sin6_addr) && !IN6_IS_ADDR_MC_LINKLOCAL(&p6->sin6_addr))
            p6->sin6_scope_id = 0;
    }
    if (port_of(&d->peer) == 0)
        return fail(ECONNREFUSED);
    int unreachable = tcp_destination(&d->peer);
    if (unreachable)
        return fail(unreachable);
    if (d->family == AF_INET6 &&
        IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&d->peer)->sin6_addr) &&
        get_int(d->fd, IPPROTO_IPV6, IPV6_V6ONLY))
        return fail(ENETUNREACH);
    return 0;
}

/* The address the app bound its TCP socket to, if any, into d->local.
 * 0, or -1 with errno. */
static int take_local(connecting *d)
{
    if (d->pristine_ino) {
        /* bound by nobody: a bind() would have ended it (pristine.c) */
        memset(&d->local, 0, sizeof d->local);
        d->local.ss_family = (sa_family_t)d->family;
        d->tk.rec.bound_addr = 0;
        return 0;
    }
    socklen_t llen = sizeof d->local;
    if (real_getsockname(d->fd, (struct sockaddr *)&d->local, &llen) < 0)
        return -1;
    d->tk.rec.bound_addr = !is_any(&d->local); /* kept after a failure, as Linux (reconnect.c) */
    return 0;
}

/* The connection's UDP socket, bound where the app bound its TCP socket
 * and connected to the peer, into d->udp; d->local becomes its address.
 * 0 or -errno. */
static int open_udp(connecting *d)
{
    int family = d->family;
    for (int tries = 0;; tries++) {
        d->udp = real_socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (d->udp < 0 && at_fd_limit(&d->widened))
            d->udp = real_socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (d->udp < 0)
            return -errno;
        if (family == AF_INET6) {
            int v6 = d->tk.rec.v6only;
            real_setsockopt(d->udp, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof v6);
        }
        shim_opts_to_udp(d->udp, &d->tk.rec); /* IP_TOS and the like on the datagrams */
        int bound = port_of(&d->local) != 0 || !is_any(&d->local);
        if (bound && real_bind(d->udp, (struct sockaddr *)&d->local, sa_len(family)) < 0)
            return -errno;
        if (real_connect(d->udp, (struct sockaddr *)&d->peer, sa_len(family)) == 0)
            break;
        /* a broadcast route: UDP says EACCES (no SO_BROADCAST), TCP's
         * connect ENETUNREACH (tcp_v4_connect: RTCF_BROADCAST) */
        if (errno == EACCES)
            return -ENETUNREACH;
        /* EAGAIN: no free ephemeral UDP port; TCP would still find one
         * (it shares a port among peers), and a blocking connect must not
         * say EAGAIN: share one too (udpdiag.c), or say what TCP says when
         * out of ports. */
        if (errno != EAGAIN || bound)
            return -errno;
        int err = shim_udp_connect_shared(d->udp, &d->local, &d->peer, sa_len(family));
        if (err == 0)
            break;
        real_close(d->udp);
        d->udp = -1;
        /* -EADDRNOTAVAIL too: the range may have freed a port since the
         * kernel's own search (a process that just ended) */
        if ((err != -EAGAIN && err != -EADDRNOTAVAIL) || tries >= 3)
            return err == -EAGAIN ? -EADDRNOTAVAIL : err;
    }
    /* A later client socket of ours may share this one's port, for another
     * peer, when the ephemeral range has no free port (above): a port the
     * kernel chose only. A port the app bound stays its own, as TCP's: a
     * later bind to it with SO_REUSEPORT says EADDRINUSE. */
    if (port_of(&d->local) == 0) {
        int one = 1;
        real_setsockopt(d->udp, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    }
    socklen_t llen = sizeof d->local;
    if (real_getsockname(d->udp, (struct sockaddr *)&d->local, &llen) < 0)
        return -errno;
    shim_udp_grow_buffers(d->udp, 0);
    if (!is_loopback(&d->peer))
        path_datagram(&d->tk.cfg, d->udp);
    return 0;
}

/* The bridge, d->sv, its two ends named after the connection (a new id
 * and slot, in d->n), with the engine running to take its end. 0 or
 * -errno; the slot is given back on failure. */
static int open_bridge(connecting *d)
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, d->sv) < 0 &&
        (!at_fd_limit(&d->widened) ||
         socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, d->sv) < 0))
        return -errno;
    int err = shim_engine_start();
    if (err)
        return err;

    shim_name *n = &d->n;
    n->family = d->family;
    n->local = d->local;
    n->peer = d->peer;
    n->id = shim_engine_new_id();
    n->slot = shim_slot_alloc(n->id);
    n->pid = shim_slot_owner();
    if (n->slot == UINT32_MAX)
        return -ENOBUFS;
    /* The engine's end alone is named: the app's end finds it as its
     * peer (getpeername), which is how every call and a process after
     * fork or exec tells a bridge (names.c). A name for the app's end too
     * cost a bind, whose lookup walks the namespace's hash chain of
     * abstract names, and 16 random bytes per connection (B12: 3.6 % of
     * the fan-in's CPU in that walk, with both names). */
    n->kind = SHIM_NAME_ENGINE;
    err = shim_name_bind(d->sv[1], n);
    if (err < 0) {
        shim_slot_free(n->slot);
        return err;
    }
    return 0;
}

/* The app's end of the bridge until the handshake is done: with a token
 * for the server (d->early) it is writable at once; otherwise it is filled
 * (d->req.filler bytes), its send buffer made the smallest first where it
 * can be given back (d->shrink). */
static void hold_writability(connecting *d)
{
    static const uint8_t zeros[65536];
    shim_connect_req *req = &d->req;
    req->tcp_fd = -1;
    int tfo_asked = 0;
    d->early = take_token(d->fd, d->pristine_ino != 0, &d->peer, d->tfo, req, &tfo_asked) > 0;
    /* Fill the app's end so it is not writable until the handshake is
     * done: the engine drains the filler then, and EPOLLOUT fires
     * exactly as for a TCP connect. SIOCOUTQ must not count it. Not with
     * a token: the app writes at once, and its first bytes ride with the
     * SYN. */
    d->sl = shim_slot_get(d->n.slot, d->n.id);
    if (d->sl && !d->early)
        atomic_fetch_or(&d->sl->flags, SHIM_SLOT_F_FILLER);
    /* With the smallest send buffer a few KiB of filler are enough; the
     * default (~208 KiB) made every connect copy that much twice, and
     * 3,500 connects at once held 730 MB in the kernel. Once established
     * the engine sets the buffer back on the app's fd, if that fd number
     * still holds this socket (same inode): no dup of our own, which would
     * keep the socket open and hide the app's close (a HUP while
     * connecting abandons the connection). shim_sndbuf_restore. */
    int tcp_sndbuf = shim_tcp_sndbuf_default();
    d->app_sndbuf = shim_connopts_app_sndbuf(d->fd, &d->tk.rec, &d->tk.cfg, /* the kernel doubles */
                                             (tcp_sndbuf ? tcp_sndbuf
                                                         : get_int(d->sv[0], SOL_SOCKET,
                                                                   SO_SNDBUF)) / 2);
    d->app_ino = shim_fd_ino(d->sv[0]);
    if (!d->sl)
        d->app_ino = 0; /* nowhere to keep the flag: keep the buffer instead */
    /* A child with an fd table of its own (adopt.c): the engine cannot
     * reach the fd, so the buffer is kept, and kernel TCP, should it win
     * the fallback's race, is relayed rather than put at the fd. */
    d->foreign = shim_procenv_table() != 0;
    d->shrink = d->app_sndbuf > 0 && d->app_ino && !d->foreign && !d->early;
    if (d->shrink) {
        int tiny = 1; /* the kernel's minimum */
        real_setsockopt(d->sv[0], SOL_SOCKET, SO_SNDBUF, &tiny, sizeof tiny);
        atomic_fetch_or(&d->sl->flags, SHIM_SLOT_F_SNDBUF);
    }
    while (!d->early) {
        ssize_t w = real_send(d->sv[0], zeros, sizeof zeros, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w <= 0)
            break;
        req->filler += (size_t)w;
        if ((size_t)w < sizeof zeros)
            break; /* a short write: the buffer is full (nothing reads it yet) */
    }
}

/* RUDP_FALLBACK=tcp: the app's own socket (its options, its bound
 * address) waits in the engine, in case rudp gets no answer and kernel
 * TCP must carry the connection (fallback.c). No fallback with a token:
 * the server answered rudp a moment ago, and bytes the app wrote into a
 * 0-RTT SYN could not be handed to TCP. */
static void arm_fallback(connecting *d)
{
    shim_connect_req *req = &d->req;
    if (!shim_cfg.fallback || !d->sl || !d->app_ino || d->early)
        return;
    /* below SHIM_FD_BASE where the fd limit is (a copy refused there left
     * the connect with no fallback: a plain TCP server was not reached) */
    req->tcp_fd = shim_fds_apart() ? real_fcntl(d->fd, F_DUPFD_CLOEXEC, 0) : shim_fd_dup_high(d->fd);
    if (req->tcp_fd < 0)
        return;
    atomic_fetch_add(&shim_fallback_racing, 1);
    req->swap_fd = d->fd;
    req->swap_ino = d->app_ino;
    /* A front end that cannot put a file at the app's number later (the
     * remote one: the fd is the program's, in its own table, which no
     * engine reaches with dup3, and a seccomp ADDFD needs the program's
     * call still waiting): relayed too */
    int can_place = !d->foreign && shim_front()->place;
    /* An engine with a table of its own (enginestart.c) cannot put a file
     * at the app's number either: relayed in this process. The flag stays:
     * after an exec the keeper hands the socket to the new image, whose
     * thread puts it there (exechand.c). */
    req->relay = !can_place || shim_fds_apart();
    memcpy(&req->tcp_to, &d->peer, sa_len(d->family));
    req->tcp_to_len = sa_len(d->family);
    if (can_place)
        atomic_fetch_or(&d->sl->flags, SHIM_SLOT_F_SWAP);
    d->tk.rec.fallback = 1;
}

/* Gives the engine the UDP socket and its end of the bridge (both now the
 * engine's, d->udp and d->sv[1] -1) with the request. 0, or -errno with
 * what the engine did not take closed: -EXDEV when no engine could take
 * them (fd is still the app's TCP socket, to connect as without us). */
static int hand_to_engine(connecting *d)
{
    shim_connect_req *req = &d->req;
    /* out of the program's way, where they stay; an engine with a table of
     * its own copies them into it at once (enginestart.c) */
    int apart = shim_fds_apart();
    req->udp_fd = apart ? d->udp : shim_fd_move_high_cloexec(d->udp); /* both SOCK_CLOEXEC */
    req->efd = apart ? d->sv[1] : shim_fd_move_high_cloexec(d->sv[1]);
    d->udp = d->sv[1] = -1;
    shim_to_rudp_addr((struct sockaddr *)&d->peer, &req->peer);
    shim_to_rudp_addr((struct sockaddr *)&d->local, &req->local); /* open_udp's getsockname */
    req->id = d->n.id;
    req->slot = d->n.slot;
    req->app_fd = d->shrink ? d->fd : -1; /* the number sv[0] gets (place_bridge) */
    req->app_ino = d->app_ino;
    req->app_sndbuf = d->app_sndbuf;
    req->cfg = d->tk.cfg;
    int err = shim_engine_connect(req);
    if (err == -EXDEV || err == -EMFILE) {
        /* -EMFILE: the engines' own table is full (enginestart.c): as when
         * this process is out of fds (redirect_connect) */
        /* A child with an fd table of its own whose sockets no engine could
         * take (adopt.c, logged there). */
        real_close(req->udp_fd);
        real_close(req->efd);
        if (req->tcp_fd >= 0) {
            real_close(req->tcp_fd);
            atomic_fetch_sub(&shim_fallback_racing, 1);
        }
        real_close(d->sv[0]);
        d->sv[0] = -1;
        shim_slot_free(d->n.slot);
    } else if (err < 0) {
        if (req->tcp_fd >= 0) /* never reached an engine */
            atomic_fetch_sub(&shim_fallback_racing, 1);
        real_close(d->sv[0]);
        d->sv[0] = -1;
    }
    return err < 0 ? err : 0;
}

/* Puts the app's end of the bridge at the app's fd number, in place of
 * its TCP socket, and records it. 0 or -errno (the app's end closed). */
static int place_bridge(connecting *d)
{
    int fd = d->fd;
    shim_appfd_lock(); /* the engine may be looking at fd */
    /* Until the handshake is settled the bridge may give way again: to
     * kernel TCP (fallback.c), or to a fresh TCP socket when the app
     * connects again after a failure (reconnect.c). So the registrations
     * stay noted, and epoll_ctl notes those made meanwhile (below). */
    if (d->foreign)
        shim_epollreg_discover(fd); /* its registrations: no marks in its table */
    /* registrations carried over the swap are not the program's epoll_ctl
     * calls: the slot cannot count them (shim_slot_ep_note) */
    if (d->sl && (d->foreign || shim_epollreg_has(fd)))
        shim_slot_ep_poison(d->sl);
    uint64_t tcp_ino = d->pristine_ino ? d->pristine_ino : shim_fd_ino(fd);
    uint32_t rx0 = d->sl ? atomic_load(&d->sl->rxmode) : 0;
    uint64_t changes0 = shim_recv_rx_changes();
    int err = shim_replace_fd_fresh(fd, d->sv[0], d->tk.status, d->tk.fdflags, !d->foreign,
                                    d->pristine_ino != 0);
    int copied = err; /* options copied onto the bridge */
    if (err >= 0 && d->sl)
        atomic_fetch_or(&d->sl->flags, SHIM_SLOT_F_PLACED);
    shim_appfd_unlock();
    if (err < 0) {
        real_close(d->sv[0]);
        return err;
    }
    /* A peer on this host can answer before fd held our end: the engine
     * then found another inode there and left the buffer small. So once
     * the filler is drained, set it back here. If it is not drained yet,
     * the engine's turn comes after this point and finds our end. */
    if (d->shrink)
        shim_sndbuf_placed(d->sl, fd, d->app_ino, d->app_sndbuf);
    shim_fd *rec = &d->tk.rec;
    rec->fd = fd;
    rec->kind = SHIM_FD_BRIDGED;
    rec->connect_done = d->early; /* connect() says 0 now: another says EISCONN, as Linux's */
    rec->id = d->n.id;
    rec->slot = d->n.slot;
    rec->name_pid = d->n.pid;
    /* In rudp-supervise fd is the supervisor's copy, closed once connect()
     * returns: the engine's restore finds it gone. The program's next call
     * on the bridge that the supervisor answers gives the buffer back
     * (shim_sock_ours). */
    rec->sndbuf_restore = d->shrink && !shim_front_can(SHIM_FRONT_OWNS_NUMBERS) ? d->app_sndbuf : 0;
    shim_fd_put(rec); /* its inode asked: see shim_fd_put */
    /* none copied: the bridge reads as a new unix socket, with the TCP
     * socket's status flags; noted now that the hint names its slot */
    if (copied == 0 && !d->foreign && d->sl && shim_fd_hinted(fd) == d->sl)
        shim_recv_rx_fresh(d->sl, rx0, d->tk.status, changes0);
    shim_fd_replaced(tcp_ino); /* its options are the bridge's record's now */
    if (rec->cork)
        shim_engine_set_cork(d->n.id, 1); /* set before connect() (core/tune.c) */
    return 0;
}

static int connect_setup(connecting *d)
{
    if (take_destination(d) < 0)
        return -1;
    shim_sock_takeover(d->fd, d->family, d->pristine_ino != 0, &d->tk);
    if (!shim_cfg.datagram_set && is_loopback(&d->peer))
        loopback_datagram(&d->tk.cfg);
    if (take_local(d) < 0)
        return -1;
    int err = open_udp(d);
    if (err == 0)
        err = open_bridge(d);
    if (err < 0) {
        if (d->udp >= 0)
            real_close(d->udp);
        if (d->sv[0] >= 0)
            real_close(d->sv[0]);
        if (d->sv[1] >= 0)
            real_close(d->sv[1]);
        return fail(-err);
    }
    hold_writability(d);
    arm_fallback(d);
    err = hand_to_engine(d);
    if (err == -EXDEV)
        return shim_sock_kernel_kept(d->fd, real_connect(d->fd, d->addr, d->len));
    if (err == -EMFILE) {
        d->no_fd_where = "the engine's own fd table";
        return fail(EMFILE);
    }
    if (err == 0)
        err = place_bridge(d);
    if (err < 0)
        return fail(-err);
    SHIM_LOG(RUDP_LOG_DEBUG, "fd %d: connecting over rudp (connection %llu%s)", d->fd,
             (unsigned long long)d->n.id, d->early ? ", with a token: 0-RTT" : "");
    return CONNECT_PLACED;
}

SHIM_EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    if (!shim_init())
        return real_connect(fd, addr, len);
    int saved = errno;
    /* A child with an fd table of its own is served by the owner's engines
     * (adopt.c), if one runs: it can start none. */
    if (shim_procenv_foreign() && !shim_sock_foreign_served()) {
        errno = saved;
        return real_connect(fd, addr, len);
    }
    shim_fd rec;
    shim_name n;
    /* A TCP socket socket() made here, no option set on it since: neither
     * ours (a bridge) nor anything but TCP of its family (pristine.c) */
    uint64_t pristine_ino;
    int family = shim_pristine_take(fd, &pristine_ino);
    if (!family)
        pristine_ino = 0;
    if (!family && shim_sock_ours(fd, &rec, &n)) {
        errno = saved;
        return shim_reconnect(fd, &rec, &n, addr, len);
    }
    shim_reconnect_forget(fd); /* a new attempt clears what a disconnect left (reconnect.c) */
    errno = saved;
    if (!addr || len < sizeof(sa_family_t) || addr->sa_family == AF_UNSPEC)
        return real_connect(fd, addr, len);
    if (!family)
        family = tcp_family(fd);
    errno = saved;
    if (!family || !shim_redirect(addr))
        return shim_sock_kernel_kept(fd, real_connect(fd, addr, len));
    if (shim_cfg.fallback && shim_fallback_remembered(addr))
        return shim_sock_kernel_kept(fd, real_connect(fd, addr, len)); /* no rudp there a moment ago */
    return redirect_connect(fd, family, addr, len, 0, pristine_ino);
}

int shim_connect_fastopen(int fd, const struct sockaddr *addr, socklen_t len)
{
    if (!shim_init() || (shim_procenv_foreign() && !shim_sock_foreign_served()))
        return 1;
    shim_fd rec;
    shim_name n;
    if (shim_sock_ours(fd, &rec, &n))
        return fail(EISCONN); /* tcp_sendmsg_fastopen on a connected socket */
    if (!addr || len < sizeof(sa_family_t) || addr->sa_family == AF_UNSPEC)
        return 1;
    int family = tcp_family(fd);
    if (!family || !shim_redirect(addr))
        return 1;
    shim_reconnect_forget(fd);
    return redirect_connect(fd, family, addr, len, 1, 0);
}
