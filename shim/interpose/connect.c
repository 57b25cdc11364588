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

/* redirect_connect's set-up: -1 (errno), 0 (a kernel connect's success),
 * CONNECT_PLACED (our end is at fd: EINPROGRESS, or wait). *widened: the fd
 * limit was raised meanwhile (shim_nofile_widen), to be set back. */
#define CONNECT_PLACED 2
/* Set in *out_status by connect_setup: the connection goes with a token
 * (0-RTT): connect() returns 0 at once, as with TCP_FASTOPEN_CONNECT. */
#define CONNECT_EARLY 0x40000000
static int connect_setup(int fd, int family, const struct sockaddr *addr, socklen_t len, int tfo,
                         int *widened, shim_fd *out_rec, shim_name *out_n, int *out_status);

/* tfo: MSG_FASTOPEN asked for it (msgaddr.c). */
static int redirect_connect(int fd, int family, const struct sockaddr *addr, socklen_t len,
                            int tfo)
{
    int widened = 0, status = 0;
    shim_fd rec;
    shim_name n;
    int r = connect_setup(fd, family, addr, len, tfo, &widened, &rec, &n, &status);
    if (widened) {
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
        return shim_fallback_no_fd(addr, "this process")
                   ? shim_sock_kernel_kept(fd, real_connect(fd, addr, len))
                   : fail(ENOBUFS);
    if (r != CONNECT_PLACED)
        return r;
    if (status & CONNECT_EARLY)
        return 0; /* the SYN leaves with the first write (or soon without it) */
    if (status & O_NONBLOCK)
        return fail(EINPROGRESS);
    return shim_connect_wait(fd, &rec, &n, 0);
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
static size_t take_token(int fd, const struct sockaddr_storage *peer, int tfo,
                         shim_connect_req *req, int *asked)
{
    *asked = tfo || get_int(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT) > 0;
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

static int connect_setup(int fd, int family, const struct sockaddr *addr, socklen_t len, int tfo,
                         int *widened, shim_fd *out_rec, shim_name *out_n, int *out_status)
{
    if (addr->sa_family != family)
        return fail(EAFNOSUPPORT);
    if (len < sa_len(family))
        return fail(EINVAL);
    struct sockaddr_storage peer;
    memset(&peer, 0, sizeof peer);
    memcpy(&peer, addr, sa_len(family));
    if (port_of(&peer) == 0)
        return fail(ECONNREFUSED);
    int unreachable = tcp_destination(&peer);
    if (unreachable)
        return fail(unreachable);
    if (family == AF_INET6 &&
        IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&peer)->sin6_addr) &&
        get_int(fd, IPPROTO_IPV6, IPV6_V6ONLY))
        return fail(ENETUNREACH);

    int status = fcntl(fd, F_GETFL), fdflags = fcntl(fd, F_GETFD);
    shim_fd rec;
    memset(&rec, 0, sizeof rec);
    rudp_config cfg;
    shim_sock_config_from_socket(fd, &cfg, &rec);
    rec.v6only = family == AF_INET6 ? get_int(fd, IPPROTO_IPV6, IPV6_V6ONLY) : 0;
    if (!shim_cfg.datagram_set && is_loopback(&peer))
        loopback_datagram(&cfg);

    struct sockaddr_storage local;
    socklen_t llen = sizeof local;
    memset(&local, 0, sizeof local);
    if (real_getsockname(fd, (struct sockaddr *)&local, &llen) < 0)
        return -1;
    rec.bound_addr = !is_any(&local); /* kept after a failure, as Linux (reconnect.c) */

    int err = 0, udp = -1, sv[2] = {-1, -1};
    for (int tries = 0;; tries++) {
        udp = real_socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (udp < 0 && at_fd_limit(widened))
            udp = real_socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (udp < 0)
            return -1;
        if (family == AF_INET6) {
            int v6 = rec.v6only;
            real_setsockopt(udp, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof v6);
        }
        shim_opts_to_udp(udp, &rec); /* IP_TOS and the like on the datagrams */
        int bound = port_of(&local) != 0 || !is_any(&local);
        if (bound && real_bind(udp, (struct sockaddr *)&local, sa_len(family)) < 0)
            goto fail_errno;
        if (real_connect(udp, (struct sockaddr *)&peer, sa_len(family)) == 0)
            break;
        /* EAGAIN: no free ephemeral UDP port; TCP would still find one
         * (it shares a port among peers), and a blocking connect must not
         * say EAGAIN: share one too (udpdiag.c), or say what TCP says when
         * out of ports. */
        if (errno != EAGAIN || bound)
            goto fail_errno;
        err = shim_udp_connect_shared(udp, &local, &peer, sa_len(family));
        if (err == 0)
            break;
        real_close(udp);
        udp = -1;
        /* -EADDRNOTAVAIL too: the range may have freed a port since the
         * kernel's own search (a process that just ended) */
        if ((err != -EAGAIN && err != -EADDRNOTAVAIL) || tries >= 3)
            return fail(err == -EAGAIN ? EADDRNOTAVAIL : -err);
    }
    /* A later client socket of ours may share this one's port, for another
     * peer, when the ephemeral range has no free port (above): a port the
     * kernel chose only. A port the app bound stays its own, as TCP's: a
     * later bind to it with SO_REUSEPORT says EADDRINUSE. */
    if (port_of(&local) == 0) {
        int one = 1;
        real_setsockopt(udp, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    }
    llen = sizeof local;
    if (real_getsockname(udp, (struct sockaddr *)&local, &llen) < 0)
        goto fail_errno;
    shim_udp_grow_buffers(udp, 0);
    if (!is_loopback(&peer))
        path_datagram(&cfg, udp);

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0 &&
        (!at_fd_limit(widened) ||
         socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0))
        goto fail_errno;
    err = shim_engine_start();
    if (err)
        goto fail_err;

    shim_name n;
    memset(&n, 0, sizeof n);
    n.family = family;
    n.local = local;
    n.peer = peer;
    n.id = shim_engine_new_id();
    n.slot = shim_slot_alloc(n.id);
    n.pid = shim_slot_owner();
    if (n.slot == UINT32_MAX) {
        err = -ENOBUFS;
        goto fail_err;
    }
    n.kind = SHIM_NAME_APP;
    if ((err = shim_name_bind(sv[0], &n)) < 0)
        goto fail_slot;
    n.kind = SHIM_NAME_ENGINE;
    if ((err = shim_name_bind(sv[1], &n)) < 0)
        goto fail_slot;

    shim_connect_req req;
    memset(&req, 0, sizeof req);
    req.tcp_fd = -1;
    int tfo_asked = 0;
    int early = take_token(fd, &peer, tfo, &req, &tfo_asked) > 0;
    /* Fill the app's end so it is not writable until the handshake is
     * done: the engine drains the filler then, and EPOLLOUT fires
     * exactly as for a TCP connect. SIOCOUTQ must not count it. Not with
     * a token: the app writes at once, and its first bytes ride with the
     * SYN. */
    shim_slot *sl = shim_slot_get(n.slot, n.id);
    if (sl && !early)
        atomic_fetch_or(&sl->flags, SHIM_SLOT_F_FILLER);
    /* With the smallest send buffer a few KiB of filler are enough; the
     * default (~208 KiB) made every connect copy that much twice, and
     * 3,500 connects at once held 730 MB in the kernel. Once established
     * the engine sets the buffer back on the app's fd, if that fd number
     * still holds this socket (same inode): no dup of our own, which would
     * keep the socket open and hide the app's close (a HUP while
     * connecting abandons the connection). shim_sndbuf_restore. */
    static const uint8_t zeros[65536];
    int tcp_sndbuf = shim_tcp_sndbuf_default();
    int app_sndbuf = shim_connopts_app_sndbuf(fd, &rec, &cfg, /* the kernel doubles */
                                              (tcp_sndbuf ? tcp_sndbuf
                                                          : get_int(sv[0], SOL_SOCKET,
                                                                    SO_SNDBUF)) / 2);
    uint64_t app_ino = shim_fd_ino(sv[0]);
    if (!sl)
        app_ino = 0; /* nowhere to keep the flag: keep the buffer instead */
    /* A child with an fd table of its own (adopt.c): the engine cannot
     * reach the fd, so the buffer is kept, and kernel TCP, should it win
     * the fallback's race, is relayed rather than put at the fd. */
    int foreign = shim_procenv_table() != 0;
    int shrink = app_sndbuf > 0 && app_ino && !foreign && !early;
    if (shrink) {
        int tiny = 1; /* the kernel's minimum */
        real_setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &tiny, sizeof tiny);
        atomic_fetch_or(&sl->flags, SHIM_SLOT_F_SNDBUF);
    }
    size_t filler = 0;
    while (!early) {
        ssize_t w = real_send(sv[0], zeros, sizeof zeros, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w <= 0)
            break;
        filler += (size_t)w;
    }

    /* No fallback with a token: the server answered rudp a moment ago, and
     * bytes the app wrote into a 0-RTT SYN could not be handed to TCP. */
    if (shim_cfg.fallback && sl && app_ino && !early) {
        /* RUDP_FALLBACK=tcp: the app's own socket (its options, its bound
         * address) waits in the engine, in case rudp gets no answer and
         * kernel TCP must carry the connection (fallback.c). */
        req.tcp_fd = fcntl(fd, F_DUPFD_CLOEXEC, SHIM_FD_BASE);
        if (req.tcp_fd >= 0) {
            atomic_fetch_add(&shim_fallback_racing, 1);
            req.swap_fd = fd;
            req.swap_ino = app_ino;
            /* rudp-supervise: the app's fd is the program's, in its own
             * table, which no engine reaches with dup3 (a seccomp ADDFD
             * needs the program's call still waiting): relayed too */
            req.relay = foreign || !shim_front_can(SHIM_FRONT_OWNS_NUMBERS);
            memcpy(&req.tcp_to, &peer, sa_len(family));
            req.tcp_to_len = sa_len(family);
            if (!req.relay)
                atomic_fetch_or(&sl->flags, SHIM_SLOT_F_SWAP);
            rec.fallback = 1;
        }
    }
    req.udp_fd = shim_fd_move_high(udp);
    req.efd = shim_fd_move_high(sv[1]);
    udp = sv[1] = -1;
    shim_to_rudp_addr((struct sockaddr *)&peer, &req.peer);
    req.id = n.id;
    req.slot = n.slot;
    req.filler = filler;
    req.app_fd = shrink ? fd : -1; /* the number sv[0] gets below */
    req.app_ino = app_ino;
    req.app_sndbuf = app_sndbuf;
    req.cfg = cfg;
    if ((err = shim_engine_connect(&req)) == -EXDEV) {
        /* A child with an fd table of its own whose sockets no engine could
         * take (adopt.c, logged there): fd is still the app's TCP socket,
         * so the kernel's connect, as without the shim. */
        real_close(req.udp_fd);
        real_close(req.efd);
        if (req.tcp_fd >= 0) {
            real_close(req.tcp_fd);
            atomic_fetch_sub(&shim_fallback_racing, 1);
        }
        real_close(sv[0]);
        shim_slot_free(n.slot);
        return shim_sock_kernel_kept(fd, real_connect(fd, addr, len));
    }
    if (err < 0) {
        if (req.tcp_fd >= 0) /* never reached an engine */
            atomic_fetch_sub(&shim_fallback_racing, 1);
        real_close(sv[0]);
        return fail(-err);
    }
    shim_appfd_lock(); /* the engine may be looking at fd */
    /* Until the handshake is settled the bridge may give way again: to
     * kernel TCP (fallback.c), or to a fresh TCP socket when the app
     * connects again after a failure (reconnect.c). So the registrations
     * stay noted, and epoll_ctl notes those made meanwhile (below). */
    if (foreign)
        shim_epollreg_discover(fd); /* its registrations: no marks in its table */
    uint64_t tcp_ino = shim_fd_ino(fd);
    err = shim_replace_fd(fd, sv[0], status, fdflags, !foreign);
    if (err >= 0 && sl)
        atomic_fetch_or(&sl->flags, SHIM_SLOT_F_PLACED);
    shim_appfd_unlock();
    if (err < 0) {
        real_close(sv[0]);
        return fail(-err);
    }
    /* A peer on this host can answer before fd held our end: the engine
     * then found another inode there and left the buffer small. So once
     * the filler is drained, set it back here. If it is not drained yet,
     * the engine's turn comes after this point and finds our end. */
    if (shrink && !(atomic_load(&sl->flags) & SHIM_SLOT_F_FILLER))
        shim_sndbuf_restore(sl, fd, app_ino, app_sndbuf);
    rec.fd = fd;
    rec.kind = SHIM_FD_BRIDGED;
    rec.connect_done = early; /* connect() says 0 now: another says EISCONN, as Linux's */
    rec.id = n.id;
    rec.slot = n.slot;
    /* In rudp-supervise fd is the supervisor's copy, closed once connect()
     * returns: the engine's restore finds it gone. The program's next call
     * on the bridge that the supervisor answers gives the buffer back
     * (shim_sock_ours). */
    rec.sndbuf_restore = shrink && !shim_front_can(SHIM_FRONT_OWNS_NUMBERS) ? app_sndbuf : 0;
    shim_fd_put(&rec);
    shim_fd_replaced(tcp_ino); /* its options are the bridge's record's now */
    if (rec.cork)
        shim_engine_set_cork(n.id, 1); /* set before connect() (core/tune.c) */
    SHIM_LOG(RUDP_LOG_DEBUG, "fd %d: connecting over rudp (connection %llu%s)", fd,
             (unsigned long long)n.id, early ? ", with a token: 0-RTT" : "");
    *out_rec = rec;
    *out_n = n;
    *out_status = status | (early ? CONNECT_EARLY : 0);
    return CONNECT_PLACED;

fail_slot:
    shim_slot_free(n.slot);
fail_err:
    errno = -err;
fail_errno:
    err = errno;
    if (udp >= 0)
        real_close(udp);
    if (sv[0] >= 0)
        real_close(sv[0]);
    if (sv[1] >= 0)
        real_close(sv[1]);
    return fail(err);
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
    if (shim_sock_ours(fd, &rec, &n)) {
        errno = saved;
        return shim_reconnect(fd, &rec, &n, addr, len);
    }
    shim_reconnect_forget(fd); /* a new attempt clears what a disconnect left (reconnect.c) */
    errno = saved;
    if (!addr || len < sizeof(sa_family_t) || addr->sa_family == AF_UNSPEC)
        return real_connect(fd, addr, len);
    int family = tcp_family(fd);
    errno = saved;
    if (!family || !shim_redirect(addr))
        return shim_sock_kernel_kept(fd, real_connect(fd, addr, len));
    if (shim_cfg.fallback && shim_fallback_remembered(addr))
        return shim_sock_kernel_kept(fd, real_connect(fd, addr, len)); /* no rudp there a moment ago */
    return redirect_connect(fd, family, addr, len, 0);
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
    return redirect_connect(fd, family, addr, len, 1);
}
