/*
 * sock.c: the exported interposers. Each is a thin trampoline: bind the real
 * symbols, decide whether the fd is (or becomes) one of ours, and otherwise
 * pass straight through. errno is set only on failure, as libc does.
 *
 * A TCP socket stays a kernel TCP socket until connect() or listen() to a
 * redirected address; then it is replaced, under the same fd number, by an
 * AF_UNIX socket bridged to the engine (dup3 inside the call, before the
 * application can have registered the new socket anywhere).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
/* the kernel's tcp_info has the fields TCP_INFO users read today */
#include <linux/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/close_range.h>
#include <linux/sockios.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "porthand.h"
#include "portshare.h"
#include "shim.h"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int active; /* set once by init_all, read-only afterwards */

/*
 * Secure execution (AT_SECURE: set-uid, set-gid, file capabilities) means
 * the process has privileges its invoker lacks, and the invoker chose its
 * environment. With LD_PRELOAD glibc then loads nothing from the
 * environment; /etc/ld.so.preload still loads us. We stay out of the way
 * entirely: no environment read, no file opened, no socket redirected, every
 * call passed to libc. Reading the environment would let an unprivileged
 * user steer a privileged program (RUDP_LOG_FILE creating root-owned files,
 * RUDP_REDIRECT moving its connections); running on built-in defaults alone
 * would change a privileged program's transport with no configuration an
 * administrator meant for it. Kernel TCP is the safe answer for both.
 */
static void init_all(void)
{
    shim_real_init();
    if (getauxval(AT_SECURE))
        return;
    if (shim_config_load() < 0)
        syscall(SYS_exit_group, 2); /* a configuration mistake is fatal, not a silent fallback to TCP */
    active = 1;
    shim_ports_init(); /* what the engine calls of them (hooks.h) */
    shim_lifetime_init();
    shim_procenv_init();
    shim_execpass_adopt(); /* what the keeper of the image before passes */
    shim_slots_adopt(); /* connections inherited over exec: their state */
    shim_newimage_init();
    shim_exechand_adopt(); /* ... and those still racing kernel TCP */
    shim_signals_init();
}

/* Binds libc's symbols and reads the configuration once; returns whether
 * the shim is active (0 in secure execution: pass everything through). */
static int init(void)
{
    pthread_once(&init_once, init_all);
    shim_procenv_check(); /* a raw clone()'s child: start afresh (procenv.c) */
    return active;
}

/* init(), and 0 in a child that shares our memory but not our fd table
 * (procenv.c): there the call is the kernel's, as without the shim. Only
 * for calls that are system calls already: this adds one (getpid). */
static int init_own(void)
{
    return init() && !shim_procenv_foreign();
}

/* In a child with an fd table of its own: whether the owner's engines can
 * serve its connect() or listen() (adopt.c). Told once when not. */
static int foreign_served(void)
{
    if (shim_engine_running())
        return 1;
    static _Atomic int said;
    if (!atomic_exchange(&said, 1))
        SHIM_LOG(RUDP_LOG_INFO, "a child sharing %d's memory connects or listens before any "
                                "engine of that process runs, and cannot start one: it gets "
                                "kernel TCP",
                 (int)shim_procenv_owner());
    return 0;
}

int shim_init(void)
{
    return init();
}

static void atfork_prepare(void)
{
    shim_engine_atfork_prepare();
    shim_appfd_atfork_prepare();
    shim_slots_atfork_prepare();
    shim_fdtab_atfork_prepare();
    shim_epollreg_atfork_prepare();
}

static void atfork_parent(void)
{
    shim_epollreg_atfork_parent();
    shim_fdtab_atfork_parent();
    shim_slots_atfork_parent();
    shim_appfd_atfork_parent();
    shim_engine_atfork_parent();
}

static void atfork_child(void)
{
    shim_procenv_forked();
    shim_epollreg_atfork_child();
    shim_fdtab_atfork_child();
    shim_appfd_atfork_child();
    shim_slots_atfork_child();
    shim_engine_atfork_child();
}

__attribute__((constructor)) static void shim_constructor(void)
{
    shim_alloc_init(); /* first: its fork handler takes its lock last */
    init();
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

__attribute__((destructor)) static void shim_destructor(void)
{
    int saved = errno;
    shim_engine_exit();
    if (shim_cfg.stats)
        shim_engine_print_stats();
    errno = saved;
}

/* TCP states as TCP_INFO reports them (include/net/tcp_states.h). */
enum { TCPS_CLOSE = 7, TCPS_LISTEN = 10 };

static int fail(int err)
{
    errno = err;
    return -1;
}

/* ---- what an fd is ---- */

/* A kernel TCP socket of family AF_INET or AF_INET6: returns the family. */
static int tcp_family(int fd)
{
    return shim_inet_family(fd, SOCK_STREAM, IPPROTO_TCP);
}

/* One of ours? Record first (no syscall beyond fstat), then the name; an
 * fd without a record (inherited over exec) counts only if its peer is one
 * of our engines by the kernel's credentials, never by its name alone. */
static int ours(int fd, shim_fd *rec, shim_name *n)
{
    if (shim_fd_get(fd, rec) && rec->kind != SHIM_FD_CANDIDATE) {
        if (!n || shim_name_of(fd, n, 0) == 1)
            return 1;
    }
    shim_name tmp;
    if (shim_name_of(fd, n ? n : &tmp, 1) == 1) {
        memset(rec, 0, sizeof *rec);
        rec->fd = fd;
        rec->kind = (n ? n : &tmp)->kind == SHIM_NAME_LISTENER ? SHIM_FD_LISTENER : SHIM_FD_BRIDGED;
        rec->id = (n ? n : &tmp)->id;
        rec->slot = (n ? n : &tmp)->slot;
        rec->family = (n ? n : &tmp)->family;
        return 1;
    }
    return 0;
}

static shim_slot *slot_for(const shim_name *n)
{
    if (n->slot == UINT32_MAX)
        return NULL;
    return shim_slot_get_pid(n->slot, n->id, n->pid);
}

static socklen_t sa_len(int family)
{
    return family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

/* Copies an address out with getsockname()'s truncation rules. */
static void copy_out(const struct sockaddr_storage *ss, int family, struct sockaddr *addr,
                     socklen_t *len)
{
    socklen_t full = sa_len(family);
    if (addr && len) {
        memcpy(addr, ss, *len < full ? *len : full);
    }
    if (len)
        *len = full;
}

static int is_any(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
    return IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET ? ntohs(((const struct sockaddr_in *)ss)->sin_port)
                                    : ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static int get_int(int fd, int level, int opt)
{
    int v = 0;
    socklen_t l = sizeof v;
    if (real_getsockopt(fd, level, opt, &v, &l) < 0)
        return 0;
    return v;
}

/* Per-connection settings taken from what the app set on the TCP socket. */
static void config_from_socket(int fd, rudp_config *cfg, shim_fd *rec)
{
    *cfg = shim_cfg.rudp;
    rec->nodelay = get_int(fd, IPPROTO_TCP, TCP_NODELAY);
    rec->keepalive = get_int(fd, SOL_SOCKET, SO_KEEPALIVE);
    rec->user_timeout_ms = get_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT);
    rec->keepidle = get_int(fd, IPPROTO_TCP, TCP_KEEPIDLE);
    rec->keepintvl = get_int(fd, IPPROTO_TCP, TCP_KEEPINTVL);
    rec->keepcnt = get_int(fd, IPPROTO_TCP, TCP_KEEPCNT);
    rec->cork = get_int(fd, IPPROTO_TCP, TCP_CORK);
    rec->reuseport = get_int(fd, SOL_SOCKET, SO_REUSEPORT);
    rec->family = get_int(fd, SOL_SOCKET, SO_DOMAIN);
    if (rec->user_timeout_ms > 0)
        cfg->user_timeout = RUDP_MS((unsigned)rec->user_timeout_ms);
    shim_opts_inherit(fd, rec, cfg); /* IP_TOS, TCP_CONGESTION, ... (options.c) */
    shim_connopts_config(fd, rec, cfg); /* SO_SNDBUF, TCP_NOTSENT_LOWAT, ... */
}

/* Loopback's MTU is 64 KiB: a connection to a loopback address (or a
 * listener, which takes the smaller of the two offers) uses large
 * datagrams, as TCP uses large segments there, unless RUDP_DATAGRAM says
 * otherwise. Per-datagram cost dominates on loopback. */
#define LOOPBACK_DATAGRAM 65000u

/* The loopback datagram, as far as the receive window holds two of them
 * (rudp_config_check): RUDP_BUFFER may be as small as 64K. */
static void loopback_datagram(rudp_config *cfg)
{
    cfg->max_datagram = cfg->recv_window / 2 < LOOPBACK_DATAGRAM ? cfg->recv_window / 2
                                                                  : LOOPBACK_DATAGRAM;
}

static int is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a))
        return a->s6_addr[12] == 127;
    return IN6_IS_ADDR_LOOPBACK(a);
}

/* Socket-level options that mean the same on the AF_UNIX socket that
 * stands in for a TCP one, and that TCP carries from a socket to the one
 * replacing it here (and from a listener to what it accepts): timeouts,
 * linger, keepalive, OOB inline, address reuse, priority, low-water mark. */
static const int inherited_opts[] = {
    SO_RCVTIMEO, SO_SNDTIMEO, SO_LINGER, SO_KEEPALIVE, SO_OOBINLINE,
    SO_REUSEADDR, SO_PRIORITY, SO_RCVLOWAT,
};

/* Gives `to` those of `from`'s options that differ; returns how many. */
static int copy_socket_options(int from, int to)
{
    int saved = errno, n = 0;
    for (size_t i = 0; i < sizeof inherited_opts / sizeof inherited_opts[0]; i++) {
        uint8_t want[32], have[32];
        socklen_t wl = sizeof want, hl = sizeof have;
        if (real_getsockopt(from, SOL_SOCKET, inherited_opts[i], want, &wl) == 0 &&
            (real_getsockopt(to, SOL_SOCKET, inherited_opts[i], have, &hl) < 0 || wl != hl ||
             memcmp(want, have, wl) != 0) &&
            real_setsockopt(to, SOL_SOCKET, inherited_opts[i], want, wl) == 0)
            n++;
    }
    errno = saved;
    return n;
}

int shim_replace_fd(int fd, int nfd, int status_flags, int fd_flags, int keep_regs)
{
    int copied = copy_socket_options(fd, nfd);
    int err = shim_fdswap(fd, nfd, status_flags, fd_flags, keep_regs);
    if (err < 0)
        return err;
    real_close(nfd);
    return copied;
}

/* ---- socket ---- */

SHIM_EXPORT int socket(int domain, int type, int protocol)
{
    int on = init_own();
    /* Every TCP socket starts as a real one: options, bind and a
     * non-redirected connect behave exactly as the kernel's. Its epoll
     * registrations are noted until connect()/listen() (epollreg.c). */
    int fd = real_socket(domain, type, protocol);
    if (fd >= 0 && on && (domain == AF_INET || domain == AF_INET6) &&
        (type & 0xf) == SOCK_STREAM && (protocol == 0 || protocol == IPPROTO_TCP))
        shim_epollreg_mark(fd);
    return fd;
}

/* connect() or listen() left to the kernel: the socket is never swapped
 * once it connects or listens (a failed connect may be tried again). */
static int kernel_kept(int fd, int r)
{
    if (r == 0 || errno == EINPROGRESS) {
        int saved = errno;
        shim_epollreg_unmark(fd);
        shim_epollreg_forget(fd);
        errno = saved;
    }
    return r;
}

/* A TCP socket bound to port 0 gets a port the kernel found free for TCP;
 * should it listen, its rudp listener needs the UDP port of the same number
 * too, and under TCP listen() never fails for a port the kernel chose. So
 * choose one free for both: let the kernel pick a free UDP port, then take
 * that port for TCP, trying again if TCP has it in use. Returns 1 if
 * bound, 0 to leave the choice to the kernel, -1 on a bind error. */
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
    for (int tries = 0; tries < 16; tries++) {
        int u = real_socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (u < 0)
            return 0;
        if (family == AF_INET6)
            real_setsockopt(u, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
        struct sockaddr_storage got;
        socklen_t gl = sizeof got;
        if (real_bind(u, (struct sockaddr *)&want, sa_len(family)) < 0 ||
            real_getsockname(u, (struct sockaddr *)&got, &gl) < 0) {
            real_close(u);
            return 0; /* the kernel's own bind gives the error, if any */
        }
        int r = real_bind(fd, (struct sockaddr *)&got, sa_len(family));
        int e = errno;
        real_close(u);
        if (r == 0)
            return 1;
        if (e != EADDRINUSE) {
            errno = e;
            return -1;
        }
    }
    return 0;
}

SHIM_EXPORT int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    if (!init() || !addr)
        return real_bind(fd, addr, len);
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

/* The TCP-level options recorded for a bridged fd or a listener (a unix
 * socket cannot hold them) onto a kernel TCP socket: a connect's own socket
 * that falls back (those set before connect() are on it already), or a
 * plain client's accepted on a listener. */
void shim_put_tcp_options(int tfd, const shim_fd *rec)
{
    static const struct {
        int level, opt;
        size_t off;
    } opts[] = {
        {IPPROTO_TCP, TCP_NODELAY, offsetof(shim_fd, nodelay)},
        {SOL_SOCKET, SO_KEEPALIVE, offsetof(shim_fd, keepalive)},
        {IPPROTO_TCP, TCP_KEEPIDLE, offsetof(shim_fd, keepidle)},
        {IPPROTO_TCP, TCP_KEEPINTVL, offsetof(shim_fd, keepintvl)},
        {IPPROTO_TCP, TCP_KEEPCNT, offsetof(shim_fd, keepcnt)},
        {IPPROTO_TCP, TCP_USER_TIMEOUT, offsetof(shim_fd, user_timeout_ms)},
        {IPPROTO_TCP, TCP_CORK, offsetof(shim_fd, cork)},
    };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        int v;
        memcpy(&v, (const char *)rec + opts[i].off, sizeof v);
        if (v > 0 && get_int(tfd, opts[i].level, opts[i].opt) != v)
            real_setsockopt(tfd, opts[i].level, opts[i].opt, &v, sizeof v);
    }
    shim_opts_to_tcp(tfd, rec);
}

/* redirect_connect's set-up: -1 (errno), 0 (a kernel connect's success),
 * CONNECT_PLACED (our end is at fd: EINPROGRESS, or wait). *widened: the fd
 * limit was raised meanwhile (shim_nofile_widen), to be set back. */
#define CONNECT_PLACED 2
static int connect_setup(int fd, int family, const struct sockaddr *addr, socklen_t len,
                         int *widened, shim_fd *out_rec, shim_name *out_n, int *out_status);

static int redirect_connect(int fd, int family, const struct sockaddr *addr, socklen_t len)
{
    int widened = 0, status = 0;
    shim_fd rec;
    shim_name n;
    int r = connect_setup(fd, family, addr, len, &widened, &rec, &n, &status);
    if (widened) {
        int saved = errno;
        shim_nofile_restore();
        errno = saved;
    }
    if (r != CONNECT_PLACED)
        return r;
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

static int connect_setup(int fd, int family, const struct sockaddr *addr, socklen_t len,
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
    config_from_socket(fd, &cfg, &rec);
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

    /* Fill the app's end so it is not writable until the handshake is
     * done: the engine drains the filler then, and EPOLLOUT fires
     * exactly as for a TCP connect. SIOCOUTQ must not count it. */
    shim_slot *sl = shim_slot_get(n.slot, n.id);
    if (sl)
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
    int shrink = app_sndbuf > 0 && app_ino && !foreign;
    if (shrink) {
        int tiny = 1; /* the kernel's minimum */
        real_setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &tiny, sizeof tiny);
        atomic_fetch_or(&sl->flags, SHIM_SLOT_F_SNDBUF);
    }
    size_t filler = 0;
    for (;;) {
        ssize_t w = send(sv[0], zeros, sizeof zeros, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w <= 0)
            break;
        filler += (size_t)w;
    }

    shim_connect_req req;
    memset(&req, 0, sizeof req);
    req.tcp_fd = -1;
    if (shim_cfg.fallback && sl && app_ino) {
        /* RUDP_FALLBACK=tcp: the app's own socket (its options, its bound
         * address) waits in the engine, in case rudp gets no answer and
         * kernel TCP must carry the connection (fallback.c). */
        req.tcp_fd = fcntl(fd, F_DUPFD_CLOEXEC, SHIM_FD_BASE);
        if (req.tcp_fd >= 0) {
            atomic_fetch_add(&shim_fallback_racing, 1);
            req.swap_fd = fd;
            req.swap_ino = app_ino;
            req.relay = foreign;
            memcpy(&req.tcp_to, &peer, sa_len(family));
            req.tcp_to_len = sa_len(family);
            if (!foreign)
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
        return kernel_kept(fd, real_connect(fd, addr, len));
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
    rec.id = n.id;
    rec.slot = n.slot;
    shim_fd_put(&rec);
    if (rec.cork)
        shim_engine_set_cork(n.id, 1); /* set before connect() (core/tune.c) */
    SHIM_LOG(RUDP_LOG_DEBUG, "fd %d: connecting over rudp (connection %llu)", fd,
             (unsigned long long)n.id);
    *out_rec = rec;
    *out_n = n;
    *out_status = status;
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
    if (!init())
        return real_connect(fd, addr, len);
    int saved = errno;
    /* A child with an fd table of its own is served by the owner's engines
     * (adopt.c), if one runs: it can start none. */
    if (shim_procenv_foreign() && !foreign_served()) {
        errno = saved;
        return real_connect(fd, addr, len);
    }
    shim_fd rec;
    shim_name n;
    if (ours(fd, &rec, &n)) {
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
        return kernel_kept(fd, real_connect(fd, addr, len));
    if (shim_cfg.fallback && shim_fallback_remembered(addr))
        return kernel_kept(fd, real_connect(fd, addr, len)); /* no rudp there a moment ago */
    return redirect_connect(fd, family, addr, len);
}

/* ---- listen ---- */

/* The listener on local cannot have its UDP port: the app's own UDP socket
 * own has it, or (own < 0) another process's. It stays the app's kernel TCP
 * socket, listening, and says so. */
static int listen_plain(int fd, int backlog, const struct sockaddr_storage *local, int own)
{
    if (real_listen(fd, backlog) < 0)
        return -1;
    if (own >= 0)
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

static int redirect_listen(int fd, int family, const struct sockaddr_storage *local, int backlog)
{
    int status = fcntl(fd, F_GETFL), fdflags = fcntl(fd, F_GETFD);
    shim_fd rec;
    memset(&rec, 0, sizeof rec);
    rudp_config cfg;
    config_from_socket(fd, &cfg, &rec);
    rec.v6only = family == AF_INET6 ? get_int(fd, IPPROTO_IPV6, IPV6_V6ONLY) : 0;
    if (!shim_cfg.datagram_set)
        loopback_datagram(&cfg); /* an offer: remote clients offer less */

    /* listen()'s conflicts are the TCP socket's, decided by the kernel:
     * another listener on the port, SO_REUSEADDR and SO_REUSEPORT rules
     * (inet_csk_get_port at listen, net/ipv4/inet_connection_sock.c). */
    /* Listening already, and not ours (ours(): the app's listener is a
     * unix socket): another process listens on this very socket. */
    int was_listening = get_int(fd, SOL_SOCKET, SO_ACCEPTCONN) == 1;
    if (real_listen(fd, backlog) < 0)
        return -1;
    int quiet, same = 0;
    int own = shim_port_app_udp(family, local, rec.v6only, rec.reuseport, &quiet);
    if (own >= 0 || own == SHIM_PORT_FOREIGN)
        return listen_plain(fd, backlog, local, own);
    if (own == SHIM_PORT_BUSY) { /* another process's live rudp listener */
        if (listen_shared(fd, local, status, fdflags, &rec, &same) == 0)
            return 0; /* made of this socket: ours to share */
        if (same || was_listening)
            return listen_same_unshared(fd, backlog, local);
        shim_tcp_unlisten(fd);
        return fail(EADDRINUSE);
    }
    if (!shim_cfg.accept_tcp) {
        shim_tcp_unlisten(fd); /* rudp only: no plain TCP queue */
        if (shim_port_listening(local, rec.v6only, rec.reuseport)) {
            if (listen_shared(fd, local, status, fdflags, &rec, &same) == 0)
                return 0;
            if (same)
                return listen_same_unshared(fd, backlog, local);
            return fail(EADDRINUSE); /* as the kernel says with TCP listening */
        }
    }

    int err, udp = -1, lfd = -1, reserve = -1, phfd = -1;
    udp = real_socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (udp < 0)
        goto fail_errno;
    /* Named before it is bound: another process of ours that finds it on
     * the port finds it named (porthand.c, udpdiag.c). */
    phfd = shim_porthand_name(udp);
    if (family == AF_INET6) {
        int v6 = rec.v6only;
        real_setsockopt(udp, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof v6);
    }
    shim_opts_to_udp(udp, &rec); /* IP_TOS and the like on the datagrams */
    int reuse = get_int(fd, SOL_SOCKET, SO_REUSEADDR);
    real_setsockopt(udp, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse);
    /* With more than one engine, each gets a socket of this listener's
     * SO_REUSEPORT group (engine.c); every member must ask before bind.
     * The app's TCP socket, bound, still holds the port against others.
     * An app's SO_REUSEPORT group of listeners (threads, processes) is one
     * group of UDP sockets too: the kernel spreads clients over it by a
     * hash of their addresses, as it spreads TCP connections. */
    int one = 1;
    if (shim_cfg.engines > 1 || rec.reuseport)
        real_setsockopt(udp, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (real_bind(udp, (const struct sockaddr *)local, sa_len(family)) < 0) {
        if (errno != EADDRINUSE)
            goto fail_errno;
        /* TCP allowed the port, UDP has it taken: another process's UDP */
        real_close(udp);
        if (phfd >= 0)
            shim_close_owned(phfd);
        return listen_plain(fd, backlog, local, -1);
    }
    shim_udp_grow_buffers(udp, 1);

    lfd = real_socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        goto fail_errno;
    err = shim_engine_start();
    if (err) {
        errno = -err;
        goto fail_errno;
    }
    shim_name n;
    memset(&n, 0, sizeof n);
    n.kind = SHIM_NAME_LISTENER;
    n.family = family;
    n.local = *local;
    n.slot = UINT32_MAX;
    n.id = shim_engine_new_id();
    n.pid = shim_slot_owner(); /* getpid(), with our slab made: a keeper enters itself there */
    if ((err = shim_name_bind(lfd, &n)) < 0) {
        errno = -err;
        goto fail_errno;
    }
    if (real_listen(lfd, backlog) < 0)
        goto fail_errno;
    /* The kernel TCP socket keeps holding the port, so a second bind to it
     * fails with EADDRINUSE as it would under TCP. */
    reserve = fcntl(fd, F_DUPFD_CLOEXEC, SHIM_FD_BASE);
    if (reserve < 0)
        reserve = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (reserve < 0)
        goto fail_errno;

    shim_listen_req req;
    memset(&req, 0, sizeof req);
    req.lname = n;
    req.lun_len = sizeof req.lun;
    if (real_getsockname(lfd, (struct sockaddr *)&req.lun, &req.lun_len) < 0)
        goto fail_errno;
    req.lino = shim_fd_ino(lfd);
    pid_t lpid;
    if (shim_ident_listener_cred(lfd, &lpid, &req.luid) < 0)
        req.luid = geteuid();
    req.wildcard = is_any(local);
    req.udp_fd = shim_fd_move_high(udp);
    req.reserve_fd = reserve;
    req.backlog = backlog;
    req.app_reuseport = rec.reuseport;
    req.quiet = quiet;
    req.phfd = phfd;
    /* Dual listener: the reserve socket, the app's own TCP socket, listens
     * too, with the app's backlog, and the engine hands what it accepts to
     * the unix listener (tcpaccept.c). Listening last, so nothing failed
     * after it but the hand-over; TCP's own errors (EADDRINUSE: another
     * socket listens on the port) are listen()'s, as without the shim. */
    req.accept_tcp = shim_cfg.accept_tcp;
    if (req.accept_tcp && real_listen(reserve, backlog) < 0)
        goto fail_errno;
    req.id = n.id;
    req.cfg = cfg;
    udp = reserve = phfd = -1;
    if ((err = shim_engine_listen(&req)) == -EXDEV) {
        /* A child with an fd table of its own whose sockets no engine
         * could take (adopt.c, logged there): the TCP socket listens, as
         * without the shim. */
        real_close(req.udp_fd);
        real_close(req.reserve_fd);
        if (req.phfd >= 0)
            real_close(req.phfd);
        real_close(lfd);
        return req.accept_tcp ? 0 : real_listen(fd, backlog);
    }
    if (err < 0) {
        real_close(lfd);
        if (req.accept_tcp)
            shim_tcp_unlisten(fd); /* fd stays the app's TCP socket: not listening */
        return fail(-err);
    }
    if (shim_procenv_table() != 0)
        shim_epollreg_discover(fd); /* its registrations: no marks in its table */
    if ((err = shim_replace_fd(fd, lfd, status, fdflags, 0)) < 0) {
        real_close(lfd);
        return fail(-err);
    }
    rec.fd = fd;
    rec.kind = SHIM_FD_LISTENER;
    rec.id = n.id;
    rec.slot = UINT32_MAX;
    rec.sockopts_default = err == 0;
    shim_fd_put(&rec);
    if (req.accept_tcp)
        SHIM_LOG(RUDP_LOG_INFO, "fd %d: listening over rudp on UDP port %u, and for plain TCP "
                                "clients on TCP port %u", fd, port_of(local), port_of(local));
    else
        SHIM_LOG(RUDP_LOG_INFO, "fd %d: listening over rudp on UDP port %u", fd, port_of(local));
    return 0;

fail_errno:
    err = errno;
    shim_tcp_unlisten(fd); /* listen() failed: not listening, as before the call */
    if (udp >= 0)
        real_close(udp);
    if (lfd >= 0)
        real_close(lfd);
    if (reserve >= 0)
        real_close(reserve);
    if (phfd >= 0)
        shim_close_owned(phfd);
    return fail(err);
}

SHIM_EXPORT int listen(int fd, int backlog)
{
    if (!init())
        return real_listen(fd, backlog);
    int saved = errno;
    /* A child with an fd table of its own: the owner's engines serve its
     * listener too (adopt.c), if one runs. */
    if (shim_procenv_foreign() && !foreign_served()) {
        errno = saved;
        return real_listen(fd, backlog);
    }
    shim_fd rec;
    if (ours(fd, &rec, NULL)) {
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
        return kernel_kept(fd, real_listen(fd, backlog));
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
        copy_socket_options(lfd, tfd);
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
    int fl = fcntl(tfd, F_GETFL);
    if (fl >= 0)
        fcntl(tfd, F_SETFL, (flags & SOCK_NONBLOCK) ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
    plain_tcp_options(lfd, l, tfd);
    if (dup3(tfd, nfd, (flags & SOCK_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
        real_close(tfd);
        return -1;
    }
    real_close(tfd);
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

static int do_accept(int fd, struct sockaddr *addr, socklen_t *len, int flags, int four)
{
    int on = init();
    int saved = errno;
    shim_fd rec;
    shim_name ln;
    if (!on || !ours(fd, &rec, &ln) || rec.kind != SHIM_FD_LISTENER) {
        errno = saved;
        return four ? real_accept4(fd, addr, len, flags) : real_accept(fd, addr, len);
    }
    errno = saved;
    int nfd;
    shim_name n;
    for (;;) {
        struct sockaddr_un un;
        socklen_t ulen = sizeof un;
        nfd = four ? real_accept4(fd, (struct sockaddr *)&un, &ulen, flags)
                   : real_accept(fd, (struct sockaddr *)&un, &ulen);
        if (nfd < 0)
            return nfd;
        /* Only our engine may hand us a connection: anyone else's is
         * closed unseen, and accept goes on as if it had never come: the
         * next one queued is taken; with none, a non-blocking accept says
         * EAGAIN and a blocking one waits (both the kernel's own, asked
         * again). Linux's blocking accept waits until a connection is
         * there to return (inet_csk_accept -> inet_csk_wait_for_connect). */
        saved = errno;
        if (shim_ident_accepted(fd, nfd, ln.pid) && shim_name_get(nfd, 1, &n) == 1) {
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
    copy_out(&n.peer, n.family, addr, len);
    /* As TCP's accept, the new socket starts with the listener's
     * options: the TCP-level ones we keep, and the socket-level ones. */
    shim_fd r = rec;
    r.fd = nfd;
    r.kind = SHIM_FD_BRIDGED;
    r.id = n.id;
    r.slot = n.slot;
    r.connect_done = 1;
    r.sockopts_default = 0;
    int tcp_sndbuf = shim_tcp_sndbuf_default();
    if (tcp_sndbuf) /* TCP's default; a listener's own SO_SNDBUF is copied below */
        shim_app_end_sndbuf(nfd, tcp_sndbuf / 2);
    shim_connopts_accepted(&r); /* TCP_NOTSENT_LOWAT, TCP_CORK on the new end */
    shim_fd_put(&r);
    if (!rec.sockopts_default)
        copy_socket_options(fd, nfd); /* syscalls saved when all are defaults */
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

/* ---- names ---- */

static int name_call(int fd, struct sockaddr *addr, socklen_t *len, int peer)
{
    if (!init())
        return peer ? real_getpeername(fd, addr, len) : real_getsockname(fd, addr, len);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int r = peer ? real_getpeername(fd, (struct sockaddr *)&ss, &sl)
                 : real_getsockname(fd, (struct sockaddr *)&ss, &sl);
    if (r < 0)
        return r;
    if (ss.ss_family == AF_UNIX) {
        shim_name n;
        shim_fd rec;
        int saved = errno;
        /* Addresses come only from an engine end of ours (ours(): a peer we
         * hold no record of is checked by its credentials). An engine end's
         * name carries both addresses and is what ours() decodes when there
         * is one: an accepted socket's own name is only its listener's
         * (maybe a wildcard), so it must not answer getsockname. */
        if (ours(fd, &rec, &n)) {
            errno = saved;
            if (!peer) {
                copy_out(&n.local, n.family, addr, len);
                return 0;
            }
            if (n.kind == SHIM_NAME_ENGINE) {
                shim_slot *s = slot_for(&n);
                int st = s ? atomic_load(&s->state) : SHIM_SLOT_CLOSED;
                if (st == SHIM_SLOT_CONNECTING || st == SHIM_SLOT_FAILED)
                    return fail(ENOTCONN); /* as TCP until the handshake ends, or after it failed */
                /* After a reset, a timeout, or both FINs, TCP's socket is
                 * in CLOSE (tcp_done(); TIME_WAIT lives in another sock)
                 * and inet_getname() answers ENOTCONN, though unread bytes
                 * may wait: CPython's ssl tells "closed before the TLS
                 * handshake with data" so. The slot says CLOSE, or is
                 * gone from a slab we see (the bridge finished once both
                 * directions were shut); without the slab (an image that
                 * could not map it) the name, as before. */
                if (s ? atomic_load(&s->tcp_state) == TCPS_CLOSE
                      : n.slot != UINT32_MAX && shim_slot_slab_known(n.pid))
                    return fail(ENOTCONN);
                copy_out(&n.peer, n.family, addr, len);
                return 0;
            }
        }
        errno = saved;
    } else if (!peer) {
        shim_reconnect_name(fd, &ss, &sl); /* the fresh socket of a failed connect */
    }
    if (addr && len)
        memcpy(addr, &ss, *len < sl ? *len : sl);
    if (len)
        *len = sl;
    return 0;
}

SHIM_EXPORT int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
    return name_call(fd, addr, len, 0);
}

SHIM_EXPORT int getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
    return name_call(fd, addr, len, 1);
}

/* ---- options ---- */

/* As TCP answers an int option: what fits of the int (some callers pass a
 * char, or nothing at all), EFAULT for a missing buffer, EINVAL for a
 * negative length. */
static int put_int(void *val, socklen_t *len, int v)
{
    if (!len)
        return fail(EFAULT);
    if ((int)*len < 0)
        return fail(EINVAL);
    socklen_t l = *len < sizeof v ? *len : sizeof v;
    if (l) {
        if (!val)
            return fail(EFAULT);
        memcpy(val, &v, l);
    }
    *len = l;
    return 0;
}

static int tcp_info_of(int fd, const shim_name *n, void *val, socklen_t *len)
{
    struct tcp_info ti;
    memset(&ti, 0, sizeof ti);
    shim_slot *s = slot_for(n);
    if (s) {
        ti.tcpi_state = shim_halfclose_state(fd, (uint8_t)atomic_load(&s->tcp_state));
        ti.tcpi_rtt = atomic_load(&s->rtt_us);
        ti.tcpi_rttvar = atomic_load(&s->rttvar_us);
        uint32_t mss = atomic_load(&s->mss);
        ti.tcpi_snd_mss = ti.tcpi_rcv_mss = ti.tcpi_advmss = mss;
        ti.tcpi_pmtu = mss;
        if (mss) {
            ti.tcpi_snd_cwnd = (uint32_t)(atomic_load(&s->cwnd) / mss);
            uint64_t ss = atomic_load(&s->ssthresh);
            ti.tcpi_snd_ssthresh = ss == UINT64_MAX ? 0x7fffffff : (uint32_t)(ss / mss);
            /* as the kernel: packets in flight (SIOCOUTQ has the bytes) */
            ti.tcpi_unacked = (uint32_t)((atomic_load(&s->in_flight) + mss - 1) / mss);
        }
        ti.tcpi_total_retrans = (uint32_t)atomic_load(&s->retrans);
        ti.tcpi_min_rtt = atomic_load(&s->min_rtt_us);
        ti.tcpi_bytes_acked = atomic_load(&s->bytes_acked);
        ti.tcpi_bytes_received = atomic_load(&s->bytes_received);
        ti.tcpi_pacing_rate = atomic_load(&s->pacing_rate);
        ti.tcpi_delivery_rate = atomic_load(&s->delivery_rate);
        ti.tcpi_delivery_rate_app_limited = atomic_load(&s->delivery_app_limited) != 0;
        uint64_t w = atomic_load(&s->peer_window);
        ti.tcpi_snd_wnd = w > UINT32_MAX ? UINT32_MAX : (uint32_t)w;
        /* an outage shows as TCP's does: unanswered probes, and the time
         * since the peer was last heard */
        uint32_t probes = atomic_load(&s->probes);
        ti.tcpi_probes = ti.tcpi_backoff = (uint8_t)(probes > 255 ? 255 : probes);
        uint64_t heard = atomic_load(&s->last_rx), now = shim_now();
        if (heard && now > heard)
            ti.tcpi_last_data_recv = (uint32_t)((now - heard) / 1000000);
    } else {
        ti.tcpi_state = n->kind == SHIM_NAME_LISTENER ? TCPS_LISTEN : TCPS_CLOSE;
    }
    if (!val || !len)
        return fail(EFAULT);
    socklen_t n_ = *len < sizeof ti ? *len : sizeof ti;
    memcpy(val, &ti, n_);
    *len = n_;
    return 0;
}

SHIM_EXPORT int getsockopt(int fd, int level, int opt, void *val, socklen_t *len)
{
    if (!init())
        return real_getsockopt(fd, level, opt, val, len);
    int special = level != SOL_SOCKET || opt == SO_ERROR || opt == SO_DOMAIN || opt == SO_PROTOCOL ||
                  opt == SO_PEERCRED || opt == SO_PEERGROUPS || opt == SO_PEERPIDFD ||
                  opt == SO_REUSEPORT || opt == SO_SNDBUF;
    int saved = errno;
    shim_fd rec;
    shim_name n;
    if (!special || !ours(fd, &rec, &n)) {
        int left = special && level == SOL_SOCKET && opt == SO_ERROR ? shim_reconnect_so_error(fd) : 0;
        errno = saved;
        int ret;
        if (level == IPPROTO_TCP && opt == TCP_CONGESTION &&
            shim_opts_candidate_cc_get(fd, val, len, &ret)) /* rudp's, not the kernel's (options.c) */
            return ret;
        if (left) /* connect(AF_UNSPEC) left it (reconnect.c) */
            return put_int(val, len, left);
        return real_getsockopt(fd, level, opt, val, len);
    }
    errno = saved;
    int ret;
    if (level == SOL_SOCKET && shim_peercred_getsockopt(opt, val, len, &ret))
        return ret;
    if (level == SOL_SOCKET) {
        if (opt == SO_DOMAIN)
            return put_int(val, len, n.family);
        if (opt == SO_PROTOCOL)
            return put_int(val, len, IPPROTO_TCP);
        if (opt == SO_REUSEPORT) /* a unix socket has none: ours, recorded */
            return put_int(val, len, rec.reuseport);
        int shown;
        shim_slot *s = slot_for(&n);
        if (opt == SO_SNDBUF && s && shim_sndbuf_pending_shown(s, &shown))
            return put_int(val, len, shown); /* set while connecting (appfd.c) */
        if (opt == SO_SNDBUF) /* TCP_NOTSENT_LOWAT may have shrunk it (connopts.c) */
            return shim_connopts_sndbuf_shown(&rec, &shown) ? put_int(val, len, shown)
                                                            : real_getsockopt(fd, level, opt, val, len);
        return put_int(val, len, s ? atomic_exchange(&s->so_error, 0) : 0);
    }
    if (level == IPPROTO_TCP) {
        switch (opt) {
        case TCP_INFO:
            return tcp_info_of(fd, &n, val, len);
        case TCP_NODELAY: return put_int(val, len, rec.nodelay);
        case TCP_CORK: return put_int(val, len, rec.cork);
        case TCP_QUICKACK: return put_int(val, len, rec.quickack);
        case TCP_KEEPIDLE: return put_int(val, len, rec.keepidle ? rec.keepidle : 7200);
        case TCP_KEEPINTVL: return put_int(val, len, rec.keepintvl ? rec.keepintvl : 75);
        case TCP_KEEPCNT: return put_int(val, len, rec.keepcnt ? rec.keepcnt : 9);
        case TCP_USER_TIMEOUT: return put_int(val, len, rec.user_timeout_ms);
        default: break;
        }
    }
    if (level == IPPROTO_IP && opt == IP_OPTIONS) {
        /* no IP options on the connection: an empty buffer (sshd drops
         * connections whose options are non-empty: source routing) */
        if (len)
            *len = 0;
        return 0;
    }
    if (level == IPPROTO_IPV6 && opt == IPV6_V6ONLY && n.family == AF_INET6)
        return put_int(val, len, rec.v6only);
    return shim_opts_get(&rec, &n, slot_for(&n), level, opt, val, len);
}

static int is_sockbuf(int level, int opt)
{
    return level == SOL_SOCKET && (opt == SO_SNDBUF || opt == SO_RCVBUF ||
                                   opt == SO_SNDBUFFORCE || opt == SO_RCVBUFFORCE);
}

SHIM_EXPORT int setsockopt(int fd, int level, int opt, const void *val, socklen_t len)
{
    if (!init()) /* in a CLONE_VM child too: its records are its own (fdtab.c) */
        return real_setsockopt(fd, level, opt, val, len);
    int saved = errno;
    shim_fd rec;
    if (!ours(fd, &rec, NULL)) {
        errno = saved;
        int r = real_setsockopt(fd, level, opt, val, len);
        int family, e = errno;
        if (r < 0 && e == ENOENT && level == IPPROTO_TCP && opt == TCP_CONGESTION &&
            (family = tcp_family(fd)) && shim_opts_candidate_cc(fd, family, val, len)) {
            errno = saved; /* a controller rudp has and this kernel lacks (options.c) */
            return 0;
        }
        errno = e;
        if (r == 0 && level != SOL_SOCKET && (family = tcp_family(fd))) {
            shim_opts_candidate(fd, family, level, opt, val, len); /* for connect/listen */
            errno = saved;
        } else if (r == 0 && is_sockbuf(level, opt) && tcp_family(fd)) {
            shim_connopts_candidate(fd, opt); /* sizes the connection (connopts.c) */
            errno = saved;
        }
        return r;
    }
    errno = saved;
    if (level == SOL_SOCKET) {
        int r, shown = 0;
        shim_slot *hs = NULL;
        if ((opt == SO_SNDBUF || opt == SO_SNDBUFFORCE) && rec.kind == SHIM_FD_BRIDGED)
            hs = shim_slot_get(rec.slot, rec.id);
        if (hs && shim_sndbuf_pending_set(hs, opt, val, len, &r)) {
            /* connect()'s small buffer holds until the handshake is done:
             * the app's size is given then (appfd.c) */
            saved = errno;
            if (r == 0 && !shim_sndbuf_pending_shown(hs, &shown))
                shown = 0;
            errno = saved;
        } else {
            r = real_setsockopt(fd, level, opt, val, len);
        }
        if (opt == SO_REUSEPORT && (r == 0 || errno == EOPNOTSUPP)) {
            /* TCP reports it back (its use is at bind); a unix socket
             * refuses 1 once the kernel checked the length and buffer */
            int v;
            memcpy(&v, val, sizeof v);
            rec.reuseport = v != 0;
            shim_fd_put(&rec);
        }
        if (r == 0 && is_sockbuf(level, opt)) {
            shim_connopts_sockbuf(&rec, opt, shown); /* rudp's buffers follow */
            shim_fd_put(&rec);
        }
        if (r == 0 && rec.kind == SHIM_FD_LISTENER && rec.sockopts_default) {
            rec.sockopts_default = 0; /* accept() now passes them on */
            shim_fd_put(&rec);
        }
        if (r < 0 && (errno == ENOPROTOOPT || errno == EOPNOTSUPP)) {
            errno = saved; /* meaningful for TCP only (SO_REUSEPORT...): accept */
            return 0;
        }
        return r;
    }
    if (level == IPPROTO_TCP) {
        /* The int options we keep, checked as TCP checks them: length,
         * buffer, range (MAX_TCP_KEEPIDLE/KEEPINTVL 32767, KEEPCNT 127). */
        int *field = NULL, lo = 0, hi = INT32_MAX;
        switch (opt) {
        case TCP_NODELAY: field = &rec.nodelay; break;
        case TCP_CORK: field = &rec.cork; break;
        case TCP_QUICKACK: field = &rec.quickack; break;
        case TCP_KEEPIDLE:
            field = &rec.keepidle;
            lo = 1;
            hi = 32767;
            break;
        case TCP_KEEPINTVL:
            field = &rec.keepintvl;
            lo = 1;
            hi = 32767;
            break;
        case TCP_KEEPCNT:
            field = &rec.keepcnt;
            lo = 1;
            hi = 127;
            break;
        case TCP_USER_TIMEOUT: field = &rec.user_timeout_ms; break;
        default: field = NULL; break;
        }
        if (!field) {
            /* the kernel's checks and errno; kept for getsockopt (options.c) */
            if (shim_opts_set(&rec, level, opt, val, len) < 0)
                return -1;
            shim_fd_put(&rec);
            return 0;
        }
        if (len < sizeof(int))
            return fail(EINVAL);
        if (!val)
            return fail(EFAULT);
        int v;
        memcpy(&v, val, sizeof v);
        if (opt == TCP_NODELAY || opt == TCP_CORK || opt == TCP_QUICKACK)
            v = v != 0;
        else if (v < lo || v > hi)
            return fail(EINVAL);
        *field = v;
        if (opt == TCP_CORK && rec.kind == SHIM_FD_BRIDGED)
            shim_engine_set_cork(rec.id, v); /* holds partial datagrams (core/tune.c) */
    } else if (level == IPPROTO_IPV6 && opt == IPV6_V6ONLY && rec.family == AF_INET6) {
        return fail(EINVAL); /* TCP refuses it once connected or listening */
    } else {
        if (shim_opts_set(&rec, level, opt, val, len) < 0)
            return -1;
    }
    shim_fd_put(&rec);
    return 0;
}

/* ---- epoll ---- */

/* fd holds a bridge whose handshake is over and which stays: rudp carries
 * the connection (no fallback swap pending), or the fallback already put
 * kernel TCP there. A connecting or failed one may still be swapped. */
static int bridge_settled(int fd)
{
    shim_fd rec;
    if (!shim_fd_get(fd, &rec) || rec.kind != SHIM_FD_BRIDGED)
        return 0;
    shim_slot *s = shim_slot_get(rec.slot, rec.id);
    if (!s)
        return 0;
    int st = atomic_load(&s->state);
    return st == SHIM_SLOT_TCP ||
           (st == SHIM_SLOT_ESTABLISHED && !(atomic_load(&s->flags) & SHIM_SLOT_F_SWAP));
}

/* Passed to the kernel; a TCP socket not yet connected or listening, and a
 * connecting fd (marked by its swap, shim_fdswap) until its handshake is
 * settled, have their registrations noted, to carry them over their next
 * swap (epollreg.c). */
SHIM_EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    int on = init();
    int r = real_epoll_ctl(epfd, op, fd, ev);
    if (r == 0 && on && shim_epollreg_marked(fd)) {
        int saved = errno;
        if (bridge_settled(fd)) {
            shim_epollreg_unmark(fd); /* the fd stays ours: nothing to carry */
            shim_epollreg_forget(fd);
        } else {
            shim_epollreg_note(epfd, op, fd, ev);
        }
        errno = saved;
    }
    return r;
}

/* ---- shutdown, close, ioctl ---- */

SHIM_EXPORT int shutdown(int fd, int how)
{
    init();
    /* On a bridged socket the unix shutdown is the TCP one: the engine sees
     * EOF and sends a FIN after the queued data. */
    return real_shutdown(fd, how);
}

SHIM_EXPORT int close(int fd)
{
    if (!init())
        return real_close(fd);
    int saved = errno;
    if ((shim_engine_owns(fd) || shim_slots_fd(fd)) && !shim_procenv_foreign())
        return 0; /* a program closing every fd must not take the engine's */
    shim_fd rec;
    uint64_t closed_listener = 0;
    /* In a child with an fd table of its own the records are that table's
     * (fdtab.c, epollreg.c): a copy of one of ours keeps ours. */
    int found = shim_fd_get(fd, &rec);
    if (found) {
        shim_name n;
        if (rec.kind == SHIM_FD_BRIDGED && shim_name_get(fd, 1, &n) == 1) {
            /* Our engine must not look at this fd number once it is
             * closed (shim_sndbuf_restore). */
            shim_slot *fs = n.pid == getpid() ? slot_for(&n) : NULL;
            if (fs)
                shim_sndbuf_forget(fs);
            struct linger l;
            socklen_t ll = sizeof l;
            if (real_getsockopt(fd, SOL_SOCKET, SO_LINGER, &l, &ll) == 0 && l.l_onoff &&
                l.l_linger == 0) {
                shim_slot *s = slot_for(&n);
                if (s)
                    atomic_fetch_or(&s->flags, SHIM_SLOT_F_LINGER0); /* reset, not FIN */
            }
        } else if (rec.kind == SHIM_FD_LISTENER && shim_name_get(fd, 0, &n) == 1 &&
                   n.pid == shim_procenv_owner()) { /* our engines' (or, in a CLONE_VM
                                                     * child, its parent's) */
            closed_listener = rec.id;
        }
        shim_fd_del(fd);
    }
    shim_epollreg_unmark(fd);
    shim_epollreg_forget(fd);
    errno = saved;
    /* The engine may send through a bridged fd's number on a reset
     * (shim_appfd_reset_mark): not while it is closed and reused. */
    int bridged = found && rec.kind == SHIM_FD_BRIDGED;
    if (bridged)
        shim_appfd_lock();
    int r = real_close(fd);
    if (bridged) {
        saved = errno;
        shim_appfd_unlock();
        errno = saved;
    }
    if (closed_listener) {
        /* After the close: the engine then finds the listener gone (no
         * other process holding it) and frees the port at once, as TCP
         * does, rather than checking again a second later. */
        saved = errno;
        shim_engine_listener_closed(closed_listener);
        errno = saved;
    }
    return r;
}

SHIM_EXPORT int ioctl(int fd, unsigned long req, ...)
{
    init();
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (!active || (req != SIOCOUTQ && req != SIOCOUTQNSD))
        return real_ioctl(fd, req, arg);
    int saved = errno;
    shim_fd rec;
    shim_name n;
    if (!ours(fd, &rec, &n)) {
        errno = saved;
        return real_ioctl(fd, req, arg);
    }
    if (rec.kind != SHIM_FD_BRIDGED)
        return fail(EINVAL); /* a listener, as TCP says */
    errno = saved;
    shim_slot *s = slot_for(&n);
    if (s && (atomic_load(&s->state) == SHIM_SLOT_CONNECTING ||
              (atomic_load(&s->flags) & SHIM_SLOT_F_FILLER))) {
        /* TCP in SYN_SENT, or established a moment before the engine
         * drained the filler: the unix end holds nothing of the app's */
        int zero = 0;
        if (arg)
            memcpy(arg, &zero, sizeof zero);
        return 0;
    }
    /* Not yet acknowledged by the peer = still in the unix socket + sent
     * by the engine but unacknowledged; not yet sent (SIOCOUTQNSD) = still
     * in the unix socket + taken by the engine but not sent. Read both between two equal even
     * values of seq, so bytes in transit between them are never missed.
     * The engine holds seq odd for one read; if it is descheduled there,
     * wait for it (yield, then sleep), as TCP never fails SIOCOUTQ. Only
     * an engine gone for good (its process killed mid-read) makes the wait
     * end, after a second, with what the two counts say then. */
    enum { SPINS = 1000, NAPS = 10000 }; /* 100 us naps: a second or so */
    int q = 0;
    uint64_t un = 0;
    for (int tries = 0;; tries++) {
        uint32_t seq = s ? atomic_load(&s->seq) : 0;
        int last = tries >= SPINS + NAPS;
        if (!(seq & 1) || last) {
            if ((s ? shim_slot_app_queued(s, fd, &q) : real_ioctl(fd, SIOCOUTQ, &q)) < 0)
                return -1;
            un = !s ? 0 : atomic_load(req == SIOCOUTQ ? &s->unacked : &s->unsent);
            if (!s || atomic_load(&s->seq) == seq || last)
                break;
        }
        if (tries < SPINS) {
            sched_yield();
        } else {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
    }
    uint64_t total = (uint64_t)q + un;
    int v = total > INT32_MAX ? INT32_MAX : (int)total;
    if (arg)
        memcpy(arg, &v, sizeof v);
    return 0;
}
