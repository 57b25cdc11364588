/*
 * listen.c: the server side interposed: bind(), listen(), accept() and
 * accept4(). A TCP socket that listens on a redirected address is replaced,
 * under the same fd number, by an AF_UNIX listener to which the engine
 * hands the connections it accepts over rudp; the kernel TCP socket keeps
 * holding the port (and, with RUDP_ACCEPT_TCP, accepts plain TCP clients:
 * tcpaccept.c). bind() to port 0 takes a port free for TCP and UDP alike,
 * and accept() takes only what our engine hands over.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/tcp.h>
#include <limits.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sock.h"

/* ---- bind ---- */

/* A TCP socket bound to port 0 gets a port the kernel found free for TCP;
 * should it listen, its rudp listener needs the UDP port of the same number
 * too, and under TCP listen() never fails for a port the kernel chose. So
 * choose one free for both: let the kernel pick a free UDP port, then take
 * that port for TCP, trying again if TCP has it in use. Each UDP socket is
 * kept open until the end, so that every try is a port not tried yet.
 *
 * The kernel's own search (inet_csk_find_open_port) first looks for a port
 * no socket holds at all, even where SO_REUSEADDR would let it share one
 * with a TIME_WAIT, and relaxes only when there is none. So do we: the
 * first pass binds with SO_REUSEADDR off, which passes over a port that a
 * TIME_WAIT holds (the shim hands a listener's port to one at exit:
 * timewait.c); the second binds the ports tried with the application's
 * setting. Without the first pass a bind(0) with SO_REUSEADDR could land on
 * such a port, and a later bind of that port without SO_REUSEADDR failed
 * where TCP's would not (t_prog_relisten failed so, rarely; t_bind0_reuse).
 * Returns 1 if bound, 0 to leave the choice to the kernel, -1 on a bind
 * error. */
#define BIND0_TRIES 16

static int bind_free_for_both(int fd, int family, const struct sockaddr *addr, socklen_t len)
{
    if (len < sa_len(family) || addr->sa_family != family ||
        get_int(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT))
        return 0; /* the kernel's errors, or the port is chosen at connect() */
    struct sockaddr_storage want;
    memset(&want, 0, sizeof want);
    memcpy(&want, addr, sa_len(family));
    if (port_of(&want) != 0)
        return 0;
    int v6only = family == AF_INET6 ? get_int(fd, IPPROTO_IPV6, IPV6_V6ONLY) : 0;
    int reuse = get_int(fd, SOL_SOCKET, SO_REUSEADDR), off = 0;
    int held[BIND0_TRIES], n = 0, r = 0, e = 0;
    struct sockaddr_in6 tried[BIND0_TRIES]; /* an IPv4 address fits too */
    /* pass 1: distinct ports free for UDP, TCP bound without sharing */
    if (reuse)
        real_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &off, sizeof off);
    while (n < BIND0_TRIES && !r) {
        int u = real_socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (u < 0)
            break;
        if (family == AF_INET6)
            real_setsockopt(u, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
        socklen_t gl = sizeof tried[n];
        if (real_bind(u, (struct sockaddr *)&want, sa_len(family)) < 0 ||
            real_getsockname(u, (struct sockaddr *)&tried[n], &gl) < 0) {
            real_close(u);
            break; /* no UDP port left to try: the kernel's own bind decides */
        }
        held[n] = u;
        if (real_bind(fd, (struct sockaddr *)&tried[n++], sa_len(family)) == 0)
            r = 1;
        else if ((e = errno) != EADDRINUSE)
            r = -1;
    }
    if (reuse)
        real_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse);
    /* pass 2: the same ports, sharing as the application allows */
    for (int i = 0; reuse && !r && i < n; i++) {
        if (real_bind(fd, (struct sockaddr *)&tried[i], sa_len(family)) == 0)
            r = 1;
        else if ((e = errno) != EADDRINUSE)
            r = -1;
    }
    for (int i = 0; i < n; i++)
        real_close(held[i]);
    if (r < 0)
        errno = e;
    return r;
}

SHIM_EXPORT int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    if (!shim_init() || !addr)
        return real_bind(fd, addr, len);
    shim_pristine_touched(); /* connect() must read the address back (pristine.c) */
    int saved = errno;
    int family = tcp_family(fd);
    if (family && shim_port_bind_conflict(fd, addr, len))
        return fail(EADDRINUSE); /* a listener there, not listening on TCP */
    int r = family ? bind_free_for_both(fd, family, addr, len) : 0;
    if (r < 0)
        return -1;
    if (!family)
        shim_port_yield(fd, addr, len); /* the app's UDP: our listeners give way */
    errno = saved;
    if (r)
        return 0;
    r = real_bind(fd, addr, len);
    /* Only where the program's close() is not ours to see (rudp-supervise:
     * records by file); under the preload close() stopped such a listener
     * already, and a program hunting a free port would pay a round trip
     * to every engine per refused bind. */
    if (r < 0 && errno == EADDRINUSE && family && !shim_front_can(SHIM_FRONT_SEES_CLOSE) &&
        shim_port_stop_unheld(fd, addr, len)) {
        errno = saved;
        r = real_bind(fd, addr, len); /* a listener of ours that nobody held had it */
    }
    if (r < 0 && errno == EADDRINUSE && family) {
        if (shim_porthand_reclaim(fd, addr, len)) {
            errno = saved;
            r = real_bind(fd, addr, len); /* a listener of ours that nobody held had it */
        } else {
            errno = EADDRINUSE;
        }
    }
    return r;
}

/* ---- listen ---- */

/* The backlog as the kernel keeps it (__sys_listen): one above somaxconn,
 * or negative, is somaxconn. iperf3 asks INT_MAX; the engine's share of it
 * per engine overflowed (UBSan, enginecmd.c). */
static int capped_backlog(int backlog)
{
    char buf[32];
    long max = 4096; /* the default since Linux 5.4, should /proc not say */
    if (shim_read_text("/proc/sys/net/core/somaxconn", buf, sizeof buf) > 0)
        max = strtol(buf, NULL, 10);
    if (max < 0 || max > INT_MAX)
        max = 4096;
    return (unsigned)backlog > (unsigned long)max ? (int)max : backlog;
}

/* The listener on local cannot have its UDP port: the app's own UDP socket
 * own has it, or (own < 0) another process's. It stays the app's kernel TCP
 * socket, listening, and says so. */
/* listen_plain's `own` when the UDP port may not be bound by this
 * process now (open_udp: EACCES) */
#define PLAIN_DENIED (-1000)

static int listen_plain(int fd, int backlog, const struct sockaddr_storage *local, int own)
{
    if (real_listen(fd, backlog) < 0)
        return -1;
    if (own == PLAIN_DENIED)
        SHIM_LOG(RUDP_LOG_WARN, "fd %d: UDP port %u may not be bound by this process now "
                 "(EACCES: a port below net.ipv4.ip_unprivileged_port_start, the privilege "
                 "given up after bind()): listening on plain kernel TCP, not rudp; listen() "
                 "before giving it up", fd, port_of(local));
    else if (own >= 0)
        SHIM_LOG(RUDP_LOG_WARN, "fd %d: UDP port %u is the application's own (fd %d): "
                 "listening on plain kernel TCP, not rudp", fd, port_of(local), own);
    else
        SHIM_LOG(RUDP_LOG_WARN, "fd %d: UDP port %u is taken by another %s: "
                 "listening on plain kernel TCP, not rudp", fd, port_of(local),
                 own == SHIM_PORT_FOREIGN ? "process's UDP socket" : "socket");
    return 0;
}

/* fd, a socket shared with another process before listen(), has a rudp
 * listener made of it there (shim_port_share_listener): fd becomes that
 * listener too, one queue for both, as the TCP socket they share would
 * be. 0, or -1 if there is none; then *same is 1 if fd is that other
 * process's socket all the same (it could not give its listener). */
static int listen_shared(int fd, const struct sockaddr_storage *local, int status, int fdflags,
                         shim_fd *rec, int *same)
{
    int ufd = shim_port_share_listener(local, rec->v6only, fd, same);
    if (ufd < 0)
        return -1;
    shim_name n;
    if (shim_name_get(ufd, 0, &n) != 1 || n.kind != SHIM_NAME_LISTENER) {
        real_close(ufd);
        return -1;
    }
    int err = shim_replace_fd(fd, ufd, status, fdflags, 0);
    if (err < 0) {
        real_close(ufd);
        return -1;
    }
    /* No listen() on it here (TCP's second listen() sets the backlog):
     * that would make this process the listener's credential (ident.c),
     * and the engine serving it is the other's. */
    rec->fd = fd;
    rec->kind = SHIM_FD_LISTENER;
    rec->id = n.id;
    rec->slot = UINT32_MAX;
    rec->sockopts_default = err == 0;
    shim_fd_put(rec);
    SHIM_LOG(RUDP_LOG_INFO, "fd %d: listening over rudp on UDP port %u with process %d, which "
             "listened on the same socket first", fd, port_of(local), (int)n.pid);
    return 0;
}

/* listen() on fd, a TCP socket another process listens on over rudp (the
 * same open file: fork or SCM_RIGHTS before listen()), when its listener
 * cannot be shared (the holder dropped privileges, ran out of fds, did not
 * answer in time...). Unlistening fd would stop the other's TCP socket,
 * its plain TCP clients and queue included. Least bad: listen() returns 0
 * as Linux does, and fd stays the kernel TCP socket, listening: this
 * process accepts plain TCP clients (sharing the queue with the other's
 * engine if that accepts plain TCP too), rudp clients go to the other. */
static int listen_same_unshared(int fd, int backlog, const struct sockaddr_storage *local)
{
    if (real_listen(fd, backlog) < 0)
        return -1;
    SHIM_LOG(RUDP_LOG_WARN, "fd %d: another process listens over rudp on this very socket "
             "(port %u) and cannot share its listener: this process accepts plain kernel "
             "TCP clients only", fd, port_of(local));
    return 0;
}

/* A listen() on its way over rudp: what the app asked, then what the
 * stages of redirect_listen make of it, in their order. The fds they open
 * (udp, phfd, lfd, reserve) are -1 until opened and again once closed or
 * handed to the engine, so that one clean-up closes what a failure
 * leaves. */
typedef struct listening {
    int fd, family, backlog;
    const struct sockaddr_storage *local; /* the TCP socket's bound address */
    shim_takeover tk;             /* the app's TCP socket: flags, options, settings */
    int quiet;                    /* the port came with connections moving off it */
    int zero_rtt;                 /* tokens and 0-RTT for clients */
    int udp;                      /* the listener's UDP socket */
    int phfd;                     /* its name for a process wanting the port, or -1 */
    int lfd;                      /* the unix listener the app gets */
    int reserve;                  /* the app's TCP socket, holding the port */
    shim_name n;                  /* the unix listener's name */
    shim_listen_req req;          /* what the engine is given */
} listening;

/* Whether this listen() goes over rudp, as who holds the port decides:
 * LISTEN_RUDP if it does, else what listen() returns (0, or -1 with
 * errno), fd then listening on kernel TCP, sharing another process's rudp
 * listener, or not listening. Sets l->quiet (shim_port_app_udp). */
#define LISTEN_RUDP 1
static int take_port(listening *l)
{
    int fd = l->fd, backlog = l->backlog;
    const struct sockaddr_storage *local = l->local;
    shim_fd *rec = &l->tk.rec;
    /* listen()'s conflicts are the TCP socket's, decided by the kernel:
     * another listener on the port, SO_REUSEADDR and SO_REUSEPORT rules
     * (inet_csk_get_port at listen, net/ipv4/inet_connection_sock.c). */
    /* Listening already, and not ours (shim_sock_ours(): the app's listener is a
     * unix socket): another process listens on this very socket. */
    int was_listening = get_int(fd, SOL_SOCKET, SO_ACCEPTCONN) == 1;
    if (real_listen(fd, backlog) < 0)
        return -1;
    int same = 0;
    int own = shim_port_app_udp(l->family, local, rec->v6only, rec->reuseport, &l->quiet);
    if (own >= 0 || own == SHIM_PORT_FOREIGN)
        return listen_plain(fd, backlog, local, own);
    if (own == SHIM_PORT_BUSY) { /* another process's live rudp listener */
        if (listen_shared(fd, local, l->tk.status, l->tk.fdflags, rec, &same) == 0)
            return 0; /* made of this socket: ours to share */
        if (same || was_listening)
            return listen_same_unshared(fd, backlog, local);
        shim_tcp_unlisten(fd);
        return fail(EADDRINUSE);
    }
    if (!shim_cfg.accept_tcp) {
        shim_tcp_unlisten(fd); /* rudp only: no plain TCP queue */
        if (shim_port_listening(local, rec->v6only, rec->reuseport)) {
            if (listen_shared(fd, local, l->tk.status, l->tk.fdflags, rec, &same) == 0)
                return 0;
            if (same)
                return listen_same_unshared(fd, backlog, local);
            return fail(EADDRINUSE); /* as the kernel says with TCP listening */
        }
    }
    return LISTEN_RUDP;
}

/* The listener's UDP socket, named and bound to the TCP socket's address,
 * into l->udp (and its name l->phfd). 0, -errno, 1: another process's
 * UDP socket has the port, or 2: this process may not bind it now
 * (nothing left open either way). */
static int open_udp(listening *l)
{
    int fd = l->fd;
    l->udp = real_socket(l->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->udp < 0)
        return -errno;
    /* Named before it is bound: another process of ours that finds it on
     * the port finds it named (porthand.c, udpdiag.c). */
    l->phfd = shim_porthand_name(l->udp);
    if (l->family == AF_INET6) {
        int v6 = l->tk.rec.v6only;
        real_setsockopt(l->udp, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof v6);
    }
    shim_opts_to_udp(l->udp, &l->tk.rec); /* IP_TOS and the like on the datagrams */
    int reuse = get_int(fd, SOL_SOCKET, SO_REUSEADDR);
    real_setsockopt(l->udp, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse);
    /* A listener with a group of engines (shim_engine_listen_width: by
     * default one with a backlog of SHIM_SPREAD_AT or more, on a machine
     * with more than one CPU) gives each a socket of its SO_REUSEPORT
     * group (engines.c); every member must ask before bind.
     * The app's TCP socket, bound, still holds the port against others.
     * An app's SO_REUSEPORT group of listeners (threads, processes) is one
     * group of UDP sockets too: the kernel spreads clients over it by a
     * hash of their addresses, as it spreads TCP connections. */
    int one = 1;
    l->zero_rtt = shim_cfg.zero_rtt || get_int(fd, IPPROTO_TCP, TCP_FASTOPEN) > 0;
    if (shim_engine_listen_width(l->backlog, l->zero_rtt) > 1 || l->tk.rec.reuseport)
        real_setsockopt(l->udp, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (real_bind(l->udp, (const struct sockaddr *)l->local, sa_len(l->family)) < 0) {
        /* TCP allowed the port, UDP has it taken: another process's UDP.
         * Or UDP may not have it: a port below ip_unprivileged_port_start
         * that TCP's bind() took while the process could, the privilege
         * given up before listen() (a server dropping root after bind:
         * kernel TCP serves it, so does its plain listener; listen()
         * failing with EACCES, which TCP's never says, stopped it). */
        int denied = errno == EACCES || errno == EPERM;
        if (errno != EADDRINUSE && !denied)
            return -errno;
        real_close(l->udp);
        l->udp = -1;
        if (l->phfd >= 0)
            shim_close_owned(l->phfd);
        l->phfd = -1;
        return denied ? 2 : 1;
    }
    shim_udp_grow_buffers(l->udp, 1);
    return 0;
}

/* The unix listener the app gets, named and listening, in l->lfd (its
 * name l->n), and a duplicate of the app's TCP socket in l->reserve, with
 * the engine running to take them. 0 or -errno. */
static int open_listener(listening *l)
{
    l->lfd = real_socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l->lfd < 0)
        return -errno;
    int err = shim_engine_start();
    if (err)
        return err;
    shim_name *n = &l->n;
    n->kind = SHIM_NAME_LISTENER;
    n->family = l->family;
    n->local = *l->local;
    n->slot = UINT32_MAX;
    n->id = shim_engine_new_id();
    n->pid = shim_slot_owner(); /* getpid(), with our slab made: a keeper enters itself there */
    if ((err = shim_name_listener_secret(n)) < 0 || (err = shim_name_bind(l->lfd, n)) < 0)
        return err;
    if (real_listen(l->lfd, l->backlog) < 0)
        return -errno;
    /* The kernel TCP socket keeps holding the port, so a second bind to it
     * fails with EADDRINUSE as it would under TCP. */
    l->reserve = shim_fd_dup_high(l->fd);
    if (l->reserve < 0)
        return -errno;
    return 0;
}

/* The request for the engine, l->req; its sockets are the engine's from
 * here on (l->udp, l->reserve and l->phfd -1). 0, or -errno with them
 * still ours: the reserve's listen() failed. */
static int make_request(listening *l)
{
    shim_listen_req *req = &l->req;
    req->lname = l->n;
    req->lun_len = sizeof req->lun;
    if (real_getsockname(l->lfd, (struct sockaddr *)&req->lun, &req->lun_len) < 0)
        return -errno;
    req->lino = shim_fd_ino(l->lfd);
    pid_t lpid;
    if (shim_ident_listener_cred(l->lfd, &lpid, &req->luid) < 0)
        req->luid = geteuid();
    /* ::ffff:0.0.0.0 too: every IPv4 address (the accepted socket is
     * named by the one the client reached, as TCP names it) */
    const struct sockaddr_in6 *l6 = (const struct sockaddr_in6 *)l->local;
    req->wildcard = is_any(l->local) ||
                    (l->local->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&l6->sin6_addr) &&
                     l6->sin6_addr.s6_addr32[3] == htonl(INADDR_ANY));
    /* Moved to a number of ours (the old one closed and free for any
     * thread to reuse): a failure below closes it under the new one. */
    req->udp_fd = l->udp = shim_fds_apart() ? l->udp : shim_fd_move_high(l->udp);
    req->reserve_fd = l->reserve;
    req->backlog = capped_backlog(l->backlog);
    req->app_reuseport = l->tk.rec.reuseport;
    req->quiet = l->quiet;
    req->phfd = l->phfd;
    /* Dual listener: the reserve socket, the app's own TCP socket, listens
     * too, with the app's backlog, and the engine hands what it accepts to
     * the unix listener (tcpaccept.c). Listening last, so nothing failed
     * after it but the hand-over; TCP's own errors (EADDRINUSE: another
     * socket listens on the port) are listen()'s, as without the shim. */
    req->accept_tcp = shim_cfg.accept_tcp;
    if (req->accept_tcp && real_listen(l->reserve, l->backlog) < 0)
        return -errno;
    req->id = l->n.id;
    req->cfg = l->tk.cfg;
    /* TCP Fast Open's server side (setsockopt TCP_FASTOPEN, a queue length
     * > 0) or RUDP_0RTT=1: tokens for clients, 0-RTT data taken (core/zrtt.c) */
    req->zero_rtt = l->zero_rtt;
    l->udp = l->reserve = l->phfd = -1;
    return 0;
}

/* Gives the engine the request. 0, or -errno with the unix listener
 * closed: -EXDEV when no engine could take the sockets (a child with an fd
 * table of its own, adopt.c, logged there), closed too; the app's TCP
 * socket is not listening then unless it accepts plain TCP clients. */
static int hand_to_engine(listening *l)
{
    shim_listen_req *req = &l->req;
    int err = shim_engine_listen(req);
    if (err == -EXDEV || err == -EMFILE) {
        /* marked the shim's where made (porthand's name among them): a
         * plain close would leave the number marked, and the program's
         * own socket there later could not be closed */
        shim_close_owned(req->udp_fd);
        shim_close_owned(req->reserve_fd);
        shim_close_owned(req->phfd);
        real_close(l->lfd);
    } else if (err < 0) {
        real_close(l->lfd);
        if (req->accept_tcp)
            shim_tcp_unlisten(l->fd); /* fd stays the app's TCP socket: not listening */
    }
    return err < 0 ? err : 0;
}

/* Puts the unix listener at the app's fd number, in place of its TCP
 * socket, and records it. 0 or -errno (the unix listener closed). */
static int place_listener(listening *l)
{
    int fd = l->fd;
    if (shim_procenv_table() != 0)
        shim_epollreg_discover(fd); /* its registrations: no marks in its table */
    uint64_t tcp_ino = shim_fd_ino(fd);
    int err = shim_replace_fd(fd, l->lfd, l->tk.status, l->tk.fdflags, 0);
    if (err < 0) {
        real_close(l->lfd);
        return err;
    }
    shim_fd *rec = &l->tk.rec;
    rec->fd = fd;
    rec->kind = SHIM_FD_LISTENER;
    rec->id = l->n.id;
    rec->slot = UINT32_MAX;
    rec->sockopts_default = err == 0;
    shim_fd_put(rec);
    shim_fd_replaced(tcp_ino); /* its options are the listener's record's now */
    return 0;
}

/* listen() that rudp cannot carry for want of an fd in the engine's own
 * table: as a connect then (shim_fallback_no_fd), a plain TCP listener,
 * said at warn, or with a key (or RUDP_FALLBACK=none) ENOBUFS, said. The
 * reserve already listens when it takes plain clients (accept_tcp). */
static int listen_no_fd(int fd, int backlog, const struct sockaddr_storage *local,
                             int accept_tcp)
{
    if (!shim_cfg.fallback) {
        SHIM_LOG(RUDP_LOG_WARN, "listen on port %u: failed (ENOBUFS): no file descriptor left "
                                "in the engine's own fd table for rudp's socket, and %s forbids "
                                "kernel TCP", port_of(local),
                 shim_key() ? "the key" : "RUDP_FALLBACK=none");
        if (accept_tcp)
            shim_tcp_unlisten(fd);
        return fail(ENOBUFS);
    }
    SHIM_LOG(RUDP_LOG_WARN, "listen on port %u: kernel TCP only, not rudp: no file descriptor "
                            "left in the engine's own fd table for rudp's socket",
             port_of(local));
    return accept_tcp ? 0 : shim_sock_kernel_kept(fd, real_listen(fd, backlog));
}

static int redirect_listen(int fd, int family, const struct sockaddr_storage *local, int backlog)
{
    listening l;
    memset(&l, 0, sizeof l);
    l.fd = fd;
    l.family = family;
    l.backlog = backlog;
    l.local = local;
    l.udp = l.lfd = l.reserve = l.phfd = -1;
    shim_sock_takeover(fd, family, 0, &l.tk);
    if (!shim_cfg.datagram_set)
        loopback_datagram(&l.tk.cfg); /* an offer: remote clients offer less */
    int err = take_port(&l);
    if (err != LISTEN_RUDP)
        return err;
    err = open_udp(&l);
    if (err > 0)
        return listen_plain(fd, backlog, local, err == 2 ? PLAIN_DENIED : -1);
    if (err == 0)
        err = open_listener(&l);
    if (err == 0)
        err = make_request(&l);
    if (err < 0) {
        shim_tcp_unlisten(fd); /* listen() failed: not listening, as before the call */
        if (l.udp >= 0)
            real_close(l.udp);
        if (l.lfd >= 0)
            real_close(l.lfd);
        if (l.reserve >= 0)
            real_close(l.reserve);
        if (l.phfd >= 0)
            shim_close_owned(l.phfd);
        return fail(-err);
    }
    err = hand_to_engine(&l);
    if (err == -EXDEV) /* the TCP socket listens, as without the shim */
        return l.req.accept_tcp ? 0 : real_listen(fd, backlog);
    if (err == -EMFILE) /* the engine's own fd table is full (enginestart.c) */
        return listen_no_fd(fd, backlog, local, l.req.accept_tcp);
    if (err == 0)
        err = place_listener(&l);
    if (err < 0)
        return fail(-err);
    if (l.req.accept_tcp)
        SHIM_LOG(RUDP_LOG_INFO, "fd %d: listening over rudp on UDP port %u, and for plain TCP "
                                "clients on TCP port %u", fd, port_of(local), port_of(local));
    else
        SHIM_LOG(RUDP_LOG_INFO, "fd %d: listening over rudp on UDP port %u", fd, port_of(local));
    return 0;
}

SHIM_EXPORT int listen(int fd, int backlog)
{
    if (!shim_init())
        return real_listen(fd, backlog);
    int saved = errno;
    /* A child with an fd table of its own: the owner's engines serve its
     * listener too (adopt.c), if one runs. */
    if (shim_procenv_foreign() && !shim_sock_foreign_served()) {
        errno = saved;
        return real_listen(fd, backlog);
    }
    shim_fd rec;
    if (shim_sock_ours(fd, &rec, NULL)) {
        errno = saved;
        if (rec.kind != SHIM_FD_LISTENER)
            return fail(EINVAL);
        /* A new backlog, as TCP allows. But listen() also makes the caller
         * the listener's credential (ident.c): if another process's engine
         * (the parent that made it, a keeper) serves it, keep that one and
         * the old backlog, or its connections would be refused. */
        pid_t lp;
        uid_t lu;
        if (shim_ident_listener_cred(fd, &lp, &lu) == 0 && lp != getpid())
            return 0;
        return real_listen(fd, backlog);
    }
    int family = tcp_family(fd);
    errno = saved;
    if (!family)
        return real_listen(fd, backlog);
    struct sockaddr_storage local;
    socklen_t llen = sizeof local;
    memset(&local, 0, sizeof local);
    if (real_getsockname(fd, (struct sockaddr *)&local, &llen) < 0)
        return -1;
    if (shim_reconnect_listen(fd, family, &local) < 0)
        return -1;
    llen = sizeof local;
    if (port_of(&local) == 0 && real_getsockname(fd, (struct sockaddr *)&local, &llen) < 0)
        return -1;
    if (port_of(&local) == 0) {
        /* TCP binds an unbound listener to an ephemeral port; so do we,
         * on the kernel socket, so the port is reserved for TCP too. */
        struct sockaddr_storage any;
        memset(&any, 0, sizeof any);
        any.ss_family = (sa_family_t)family;
        int r = bind_free_for_both(fd, family, (struct sockaddr *)&any, sa_len(family));
        if (r < 0 || (r == 0 && real_bind(fd, (struct sockaddr *)&any, sa_len(family)) < 0))
            return -1;
        llen = sizeof local;
        if (real_getsockname(fd, (struct sockaddr *)&local, &llen) < 0)
            return -1;
    }
    if (!shim_redirect((struct sockaddr *)&local))
        return shim_sock_kernel_kept(fd, real_listen(fd, backlog));
    errno = saved;
    return redirect_listen(fd, family, &local, backlog);
}

/* ---- accept ---- */

/* Options set on the listener after listen() reach a plain TCP connection
 * here (those set before, the kernel carried from the app's own socket):
 * socket-level ones as for a bridge; the TCP-level ones we recorded. */
static void plain_tcp_options(int lfd, const shim_fd *l, int tfd)
{
    if (!l->sockopts_default)
        shim_sock_copy_options(lfd, tfd);
    shim_put_tcp_options(tfd, l);
}

/* nfd, accepted from our listener lfd (record l), carries a plain kernel TCP
 * connection (tcpaccept.c): the TCP socket takes nfd's number, with the
 * flags accept4 was given (the passed file has status flags of its own), and
 * no record, so every later call is the kernel's. Returns 0; -1: the engine
 * sent none, nfd is still the unix socket and is to be dropped. */
static int plain_tcp(int lfd, const shim_fd *l, int nfd, int flags, struct sockaddr *addr,
                     socklen_t *len)
{
    struct sockaddr_storage peer;
    socklen_t pl;
    int tfd = shim_tcpl_receive(nfd, &peer, &pl);
    if (tfd < 0)
        return -1;
    int fl = real_fcntl(tfd, F_GETFL);
    if (fl >= 0)
        real_fcntl(tfd, F_SETFL, (flags & SOCK_NONBLOCK) ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
    plain_tcp_options(lfd, l, tfd);
    if (real_dup3(tfd, nfd, (flags & SOCK_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
        real_close(tfd);
        return -1;
    }
    real_close(tfd);
    shim_fd_unseen();
    shim_fd_del(nfd);
    if (addr && len)
        memcpy(addr, &peer, *len < pl ? *len : pl);
    if (len)
        *len = pl;
    if (shim_cfg.log_level >= RUDP_LOG_INFO) {
        rudp_addr ra;
        char a[64];
        shim_to_rudp_addr((struct sockaddr *)&peer, &ra);
        rudp_addr_format(&ra, a, sizeof a);
        shim_log(RUDP_LOG_INFO, "fd %d: plain TCP connection from %s (kernel TCP, not rudp)",
                 nfd, a);
    }
    return 0;
}

/* An engine end named with SHIM_NAME_F_PROOF writes the listener's secret
 * before anything else (names.c), right after its connect(): taken off the
 * stream here, waiting for it at most PROOF_WAIT_MS (the engine writes it
 * at once; only a connector of a uid we take is waited for, so a stranger
 * that promises a proof and sends none costs accept() no wait). 1: the
 * secret of listener ln; -1: anything else, and the
 * connection is refused whoever made it (what follows cannot be told
 * for the connection's bytes). */
#define PROOF_WAIT_MS 1000

static int take_proof(int nfd, const shim_name *ln)
{
    uint8_t proof[SHIM_NAME_SECRET];
    for (;;) {
        ssize_t r = real_recvfrom(nfd, proof, sizeof proof, MSG_DONTWAIT | MSG_PEEK, NULL, NULL);
        if (r == (ssize_t)sizeof proof)
            break;
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
            return -1;
        struct pollfd p = {.fd = nfd, .events = POLLIN};
        int n = real_poll(&p, 1, PROOF_WAIT_MS);
        if (n == 0 || (n < 0 && errno != EINTR))
            return -1;
    }
    if (real_recvfrom(nfd, proof, sizeof proof, MSG_DONTWAIT, NULL, NULL) != (ssize_t)sizeof proof)
        return -1;
    return shim_name_proof_ok(ln, proof) ? 1 : -1;
}

/* The name of our listener fd into *ln, read once per accept (*have: -1
 * not yet, then 1 or 0). 1 iff it is a listener's name of ours. */
static int listener_name(int fd, shim_name *ln, int *have)
{
    if (*have < 0)
        *have = shim_name_of(fd, ln, 0) == 1;
    return *have;
}

/* Whether fd, our unix listener, was shut down (POLLRDHUP: a listening
 * unix socket reports it only then, unix_poll) */
static int shut_listener(int fd)
{
    int saved = errno;
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    int shut = real_poll(&p, 1, 0) == 1 && (p.revents & POLLRDHUP);
    errno = saved;
    return shut;
}

static int do_accept(int fd, struct sockaddr *addr, socklen_t *len, int flags, int four)
{
    int on = shim_init();
    int saved = errno;
    shim_fd rec;
    shim_name ln;
    int have_ln = -1; /* ln not read yet (1: read, 0: unreadable) */
    if (!on || !shim_sock_ours(fd, &rec, NULL) || rec.kind != SHIM_FD_LISTENER) {
        errno = saved;
        return four ? real_accept4(fd, addr, len, flags) : real_accept(fd, addr, len);
    }
    errno = saved;
    int nfd;
    shim_name n;
    uint64_t changes0 = 0;
    for (;;) {
        struct sockaddr_un un;
        socklen_t ulen = sizeof un;
        changes0 = shim_recv_rx_changes(); /* before nfd is there to change */
        nfd = four ? real_accept4(fd, (struct sockaddr *)&un, &ulen, flags)
                   : real_accept(fd, (struct sockaddr *)&un, &ulen);
        if (nfd < 0) {
            /* a listener another process stopped (shim_unlisten): TCP's
             * accept on it says EINVAL; the shut unix one's, once its
             * queue is empty, EAGAIN (a blocking one EINVAL already) */
            if (errno == EAGAIN && shut_listener(fd))
                errno = EINVAL;
            return nfd;
        }
        /* Only our engine may hand us a connection: anyone else's is
         * closed unseen, and accept goes on as if it had never come: the
         * next one queued is taken; with none, a non-blocking accept says
         * EAGAIN and a blocking one waits (both the kernel's own, asked
         * again). Linux's blocking accept waits until a connection is
         * there to return (inet_csk_accept -> inet_csk_wait_for_connect). */
        saved = errno;
        /* the maker's name: accept's address is nfd's peer's name, as
         * getpeername would say it */
        int named = shim_name_decode(&un, ulen, &n) == 1;
        /* The listener's own name (two system calls) only where it is
         * needed: a proof to check, or a maker other than this process. */
        int proven = 0;
        if (named && (n.kind == SHIM_NAME_ENGINE || n.kind == SHIM_NAME_TCP) &&
            (n.flags & SHIM_NAME_F_PROOF))
            proven = shim_ident_may_prove(fd, nfd) && listener_name(fd, &ln, &have_ln)
                         ? take_proof(nfd, &ln)
                         : -1;
        /* the stranger is counted and told whether or not it named itself */
        if ((shim_ident_accepted_here(nfd, proven) ||
             shim_ident_accepted(fd, nfd, listener_name(fd, &ln, &have_ln) ? ln.pid : -1,
                                 proven)) &&
            named) {
            if (n.kind == SHIM_NAME_ENGINE)
                break;
            if (n.kind == SHIM_NAME_TCP && plain_tcp(fd, &rec, nfd, flags, addr, len) == 0) {
                errno = saved;
                return nfd;
            }
        }
        real_close(nfd);
        errno = saved;
    }
    if (addr && copy_out(&n.peer, n.family, addr, len) < 0) {
        saved = errno; /* as the kernel's accept: the connection is dropped */
        real_close(nfd);
        errno = saved;
        return -1;
    }
    /* As TCP's accept, the new socket starts with the listener's
     * options: the TCP-level ones we keep, and the socket-level ones. */
    shim_fd r = rec;
    r.fd = nfd;
    r.kind = SHIM_FD_BRIDGED;
    r.id = n.id;
    r.slot = n.slot;
    r.name_pid = n.pid;
    r.connect_done = 1;
    r.sockopts_default = 0;
    int tcp_sndbuf = shim_tcp_sndbuf_default();
    if (tcp_sndbuf) /* TCP's default; a listener's own SO_SNDBUF is copied below */
        shim_app_end_sndbuf(nfd, tcp_sndbuf / 2);
    shim_connopts_accepted(&r); /* TCP_NOTSENT_LOWAT, TCP_CORK on the new end */
    shim_connopts_timeouts_accepted(fd, &r); /* SO_KEEPALIVE's times, TCP_USER_TIMEOUT */
    shim_fd_put(&r);
    shim_slot *h;
    if (!rec.sockopts_default)
        shim_sock_copy_options(fd, nfd); /* syscalls saved when all are defaults */
    else if ((h = shim_fd_hinted(nfd)) && atomic_load(&h->id) == n.id)
        /* a new unix socket's receive options, accept4's status flags */
        shim_recv_rx_fresh(h, atomic_load(&h->rxmode), flags & SOCK_NONBLOCK ? O_NONBLOCK : 0,
                           changes0);
    errno = saved;
    return nfd;
}

SHIM_EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    return do_accept(fd, addr, len, 0, 0);
}

SHIM_EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    return do_accept(fd, addr, len, flags, 1);
}
