/*
 * portshare.c: a listener's UDP port and the application's own UDP.
 *
 * A rudp listener binds the UDP port of its TCP port's number. Many servers
 * use one number for TCP and for UDP (DNS, syslog, Kerberos, SIP,
 * memcached): without the shim the two never meet, the kernel's TCP and UDP
 * ports being apart. The application's UDP sockets must get exactly what
 * they would get without the shim, so rudp gives the port up whenever the
 * application wants it:
 *   - UDP bound first: listen() finds the application's socket on the port
 *     (shim_port_app_udp) and the listener stays a plain kernel TCP
 *     listener, said in the log;
 *   - TCP listening first: the application's bind() of a UDP socket asks
 *     every engine to give up the overlapping listener sockets
 *     (shim_port_yield: each is replaced, at its fd number, by an unbound
 *     socket) before the kernel binds it; the listener then takes plain
 *     TCP only (tcpaccept.c), said in the log.
 * Sharing the port instead (a SO_REUSEPORT group steered by a classic BPF
 * program reading the rudp magic) would need SO_REUSEPORT on the
 * application's socket before its bind, which the application did not ask
 * for and which would let other processes of the same user into its port.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ports.h"
#include "porthand.h"
#include "portmove.h"
#include "portpriv.h"
#include "portshare.h"

#include "base/poison.h"

/* How long bind() waits for the engines to give a port up: they answer
 * within a turn; a paused engine (a keeper being forked) may take longer,
 * and then the bind goes on and gets the kernel's answer. */
#define YIELD_WAIT_MS 2000

/* A question to every engine about the listener sockets on addr: give
 * the port up (yield), or say whether one of them is a live listener that
 * a new one there would conflict with (conflict set). */
typedef struct yield_req {
    struct sockaddr_storage addr;
    int v6only;
    int probe;     /* only ask: a listen() on addr, SO_REUSEPORT = reuseport */
    int reuseport;
    int conflict;  /* answer to a probe (the engines' lock) */
    int stopped;   /* a probe stopped a listener nobody held (the engines' lock) */
    int pending;   /* engines yet to answer (the engines' lock) */
    int refs;      /* the caller's and each pending engine's (the same) */
} yield_req;

static socklen_t addr_len(int family)
{
    return family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

/* An address as the kernel's bind conflict check sees it: IPv4 (a
 * v4-mapped IPv6 address is one) or IPv6, wildcard or not, and whether an
 * IPv6 wildcard takes IPv4 too. */
typedef struct norm_addr {
    int v4, any, dual;
    uint8_t a[16];
} norm_addr;

static void normalize(const struct sockaddr_storage *s, int v6only, norm_addr *n)
{
    memset(n, 0, sizeof *n);
    if (s->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)s;
        n->v4 = 1;
        memcpy(n->a, &in->sin_addr, 4);
        n->any = in->sin_addr.s_addr == htonl(INADDR_ANY);
        return;
    }
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)s;
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
        n->v4 = 1;
        memcpy(n->a, &in6->sin6_addr.s6_addr[12], 4);
        n->any = memcmp(n->a, "\0\0\0\0", 4) == 0;
        return;
    }
    memcpy(n->a, &in6->sin6_addr, 16);
    n->any = IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
    n->dual = n->any && !v6only;
}

int shim_port_overlap(const struct sockaddr_storage *a, int a_v6only,
                      const struct sockaddr_storage *b, int b_v6only)
{
    unsigned pa = shim_ss_port(a), pb = shim_ss_port(b);
    if (pa == 0 || pa != pb)
        return 0;
    norm_addr x, y;
    normalize(a, a_v6only, &x);
    normalize(b, b_v6only, &y);
    if (x.v4 == y.v4)
        return x.any || y.any || memcmp(x.a, y.a, x.v4 ? 4 : 16) == 0;
    return x.v4 ? y.dual : x.dual; /* IPv4 meets IPv6 only in a dual-stack wildcard */
}

/* The bound address of fd if it is an IPv4/IPv6 UDP socket: 1, else 0. */
static int udp_bound(int fd, struct sockaddr_storage *ss, int *v6only)
{
    if (!shim_inet_family(fd, SOCK_DGRAM, IPPROTO_UDP))
        return 0;
    socklen_t sl = sizeof *ss;
    memset(ss, 0, sizeof *ss);
    if (real_getsockname(fd, (struct sockaddr *)ss, &sl) < 0 ||
        (ss->ss_family != AF_INET && ss->ss_family != AF_INET6))
        return 0;
    *v6only = 0;
    socklen_t l = sizeof *v6only;
    if (ss->ss_family == AF_INET6)
        real_getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only, &l);
    return 1;
}

/* fd is the application's UDP socket on an address overlapping want. */
static int app_udp_on(int fd, const struct sockaddr_storage *want, int v6only)
{
    struct sockaddr_storage ss;
    int v6;
    return !shim_ownfds_has(fd) && udp_bound(fd, &ss, &v6) &&
           shim_port_overlap(&ss, v6, want, v6only);
}

int shim_port_app_udp(int family, const struct sockaddr_storage *local, int v6only,
                      int reuseport, int *quiet)
{
    *quiet = 0;
    /* Most ports have no UDP socket at all: a bind with no reuse option
     * succeeds then, and nothing needs a look. */
    int u = real_socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (u < 0)
        return -1;
    if (family == AF_INET6)
        real_setsockopt(u, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    int r = real_bind(u, (const struct sockaddr *)local, addr_len(family));
    int err = errno;
    real_close(u);
    if (r == 0 || err != EADDRINUSE)
        return -1;
    /* Someone has it: this process's own sockets, or another's (which
     * the listener's own bind then meets, see listen.c). */
    int found = -1;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        int self = dirfd(d);
        struct dirent *de;
        while (found < 0 && (de = readdir(d)) != NULL) {
            char *end;
            long fd = strtol(de->d_name, &end, 10);
            if (*end || end == de->d_name || fd == self)
                continue;
            if (app_udp_on((int)fd, local, v6only))
                found = (int)fd;
        }
        closedir(d);
        if (found >= 0)
            return found;
        if (reuseport) /* a group: ours join it, a stranger's is left alone */
            return shim_port_stranger_udp(local, v6only) == 1 ? SHIM_PORT_FOREIGN : -1;
        unsigned moved = 0;
        int f = shim_port_foreign_udp(family, local, v6only, &moved);
        if (f == 1)
            return SHIM_PORT_FOREIGN;
        if (f == 2)
            return SHIM_PORT_BUSY;
        *quiet = moved > 0 || shim_porthand_recent(local);
        return -1;
    }
    for (int fd = 0; fd < SHIM_FD_BASE && found < 0; fd++) /* no /proc (a chroot) */
        if (real_fcntl(fd, F_GETFD) >= 0 && app_udp_on(fd, local, v6only))
            found = fd;
    return found;
}

static void req_put_locked(yield_req *y)
{
    if (--y->refs == 0)
        shim_free(y);
}

/* Puts y to every engine of this process and waits (bounded) for their
 * answers; returns y->conflict, and y->stopped into stopped (if not
 * NULL). Consumes y. */
static int ask_engines(yield_req *y, int *stopped)
{
    y->refs = 1;
    shim_engines_lock();
    for (int k = 0, n = shim_engines_here_locked(); k < n; k++) {
        int err = shim_engine_post_locked(shim_engine_nth(k), CMD_YIELD, y);
        if (err == -ENOMEM)
            break;
        if (err == 0) {
            y->pending++;
            y->refs++;
        }
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += YIELD_WAIT_MS / 1000;
    until.tv_nsec += (long)(YIELD_WAIT_MS % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (y->pending > 0 && shim_engines_wait(&until) != ETIMEDOUT)
        ;
    int conflict = y->conflict;
    if (stopped)
        *stopped = y->stopped;
    req_put_locked(y);
    shim_engines_unlock();
    return conflict;
}

void shim_port_yield(int fd, const struct sockaddr *addr, socklen_t len)
{
    if (len < sizeof(sa_family_t) || (addr->sa_family != AF_INET && addr->sa_family != AF_INET6) ||
        len < addr_len(addr->sa_family))
        return;
    struct sockaddr_storage ss;
    int v6only;
    if (!shim_engines_here() || !udp_bound(fd, &ss, &v6only))
        return; /* no engine here, or not a UDP socket */
    yield_req *y = shim_calloc(1, sizeof *y);
    if (!y)
        return;
    memcpy(&y->addr, addr, addr_len(addr->sa_family));
    y->v6only = v6only;
    if (shim_ss_port(&y->addr) == 0) {
        shim_free(y);
        return;
    }
    ask_engines(y, NULL);
}

/* A probe of the listeners on local (shim_port_yield_cmd): 1 if a live
 * one conflicts; *stopped (if not NULL): one nobody held was stopped. */
static int probe(const struct sockaddr_storage *local, int v6only, int reuseport, int *stopped)
{
    if (stopped)
        *stopped = 0;
    if (!shim_engines_here())
        return 0;
    yield_req *y = shim_calloc(1, sizeof *y);
    if (!y)
        return 0;
    y->addr = *local;
    y->v6only = v6only;
    y->probe = 1;
    y->reuseport = reuseport;
    return ask_engines(y, stopped);
}

int shim_port_listening(const struct sockaddr_storage *local, int v6only, int reuseport)
{
    return probe(local, v6only, reuseport, NULL);
}

/* A probe for a bind() of the TCP socket fd to addr: 1 a live listener
 * conflicts, 0 none, -1 not a port to ask about; *stopped as probe(). */
static int bind_probe(int fd, const struct sockaddr *addr, socklen_t len, int *stopped)
{
    *stopped = 0;
    if ((addr->sa_family != AF_INET && addr->sa_family != AF_INET6) ||
        len < addr_len(addr->sa_family))
        return -1;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    memcpy(&ss, addr, addr_len(addr->sa_family));
    if (shim_ss_port(&ss) == 0 || !shim_engines_here())
        return -1;
    int v6only = 0, rp = 0;
    socklen_t l = sizeof v6only;
    if (addr->sa_family == AF_INET6)
        real_getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &l);
    l = sizeof rp;
    real_getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &rp, &l);
    return probe(&ss, v6only, rp, stopped);
}

int shim_port_bind_conflict(int fd, const struct sockaddr *addr, socklen_t len)
{
    int stopped;
    return !shim_cfg.accept_tcp && bind_probe(fd, addr, len, &stopped) == 1;
}

int shim_port_stop_unheld(int fd, const struct sockaddr *addr, socklen_t len)
{
    int stopped;
    return bind_probe(fd, addr, len, &stopped) >= 0 && stopped;
}

/* s gives its port up: an unbound UDP socket takes its fd number (so the
 * core's socket index and the fd's ownership stay), out of epoll; what
 * rudp accepted on it moves to a new port first (portmove.c). Returns
 * how many connections move, or -1: it keeps the port. */
static int give_up(struct engine *e, esock *s, unsigned port)
{
    int nu = real_socket(shim_esock_family(s), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (nu < 0) {
        SHIM_LOG(RUDP_LOG_WARN, "UDP port %u: cannot give it up: %s", port, shim_strerror(errno));
        return -1;
    }
    int moved = shim_portmove_conns(e, s, shim_now());
    shim_engine_flush_output(e); /* NEW_PORT from s, while it is still ours */
    shim_engine_unwatch_sock(s);
    memset(&port_of_sock(s)->endpoint, 0, sizeof port_of_sock(s)->endpoint);
    shim_porthand_close(s);
    int r = real_dup3(nu, shim_esock_fd(s), O_CLOEXEC);
    real_close(nu);
    if (r < 0) {
        SHIM_LOG(RUDP_LOG_WARN, "UDP port %u: cannot give it up: %s", port, shim_strerror(errno));
        return -1;
    }
    return moved;
}

/* Another UDP socket takes s's port (`who` binds it, for the log): s
 * gives it up, and a listener goes on with plain TCP on its reserve
 * socket. */
static void leave_port(struct engine *e, esock *s, unsigned port, const char *who)
{
    if (give_up(e, s, port) < 0)
        return;
    /* the group's other members (RUDP_ENGINES > 1) have no reserve socket:
     * engine 0's takes the plain TCP and says so */
    int rfd = shim_esock_reserve_fd(s);
    if (!shim_esock_listening(s) || (shim_esock_group_ext(s) && rfd < 0))
        return;
    if (rfd >= 0 && !port_of_sock(s)->tcp.on && real_listen(rfd, shim_esock_backlog(s)) == 0)
        shim_tcpl_start(s);
    SHIM_LOG(RUDP_LOG_WARN, "UDP port %u: %s binds its own UDP socket there: the TCP listener "
             "on port %u leaves rudp and takes plain kernel TCP only", port, who, port);
}

void shim_port_stranger(struct engine *e, esock *s)
{
    leave_port(e, s, shim_ss_port(&port_of_sock(s)->endpoint), "another program");
}

int shim_port_hand_over(struct engine *e, esock *s, int pid)
{
    unsigned port = shim_ss_port(&port_of_sock(s)->endpoint);
    int moved = give_up(e, s, port);
    if (moved < 0)
        return 0;
    SHIM_LOG(RUDP_LOG_INFO, "UDP port %u: handed over to process %d, which listens there "
             "(%d connection(s) moving)", port, pid, moved);
    return moved;
}

/* How long connections that cannot move may keep a stopped member in its
 * group (its new clients unanswered meanwhile, shim_port_live_twin): a
 * FIN or a reset is acknowledged within a few round trips; a client that
 * never closes after our FIN (FIN_WAIT_2) must not hold the port. */
#define LEAVE_WAIT RUDP_SEC(1)

/* ending: a connection being freed, still counted by s; forced: the wait
 * is over, those that cannot move stay behind (their packets leave by a
 * socket their clients do not hear: they end by their timeouts) */
static void leave_group(struct engine *e, esock *s, int ending, int forced)
{
    port_sock *ps = port_of_sock(s);
    unsigned port = shim_ss_port(&ps->endpoint);
    if (!ps->app_reuseport || port == 0)
        return; /* no group others may share, or the port already given up */
    /* A connection that cannot move (its program closed it: a FIN or a
     * reset still to be acknowledged) needs the port until it ends, soon
     * (shim_port_conn_ended asks again then, LEAVE_WAIT at most); with
     * none left that moves, s closes then, and leaves the group, as
     * before (nc -l closes its listener after its connection). */
    int stay = forced ? 0 : shim_esock_unmovable(s) - ending;
    if (ending && (stay || shim_esock_movable(s) == 0))
        return;
    if (stay) {
        SHIM_LOG(RUDP_LOG_DEBUG, "UDP port %u: its listener closed; %d connection(s) that "
                 "cannot move keep it in its SO_REUSEPORT group until they end", port, stay);
        if (!ps->leave_at) {
            rudp_time now = shim_now();
            ps->leave_at = now + LEAVE_WAIT;
            port_of_engine(e)->nleaving++;
            shim_engine_tick_by(e, ps->leave_at);
        }
        return;
    }
    ps->leave_at = 0;
    shim_xgroup_linger(s, shim_now());
    int moved = give_up(e, s, port);
    if (moved > 0)
        SHIM_LOG(RUDP_LOG_INFO, "UDP port %u: its listener closed: it leaves its SO_REUSEPORT "
                 "group, whose other members take every new client", port);
}

void shim_port_leave_group(struct engine *e, esock *s)
{
    leave_group(e, s, 0, 0);
}

void shim_port_conn_ended(struct engine *e, esock *s)
{
    leave_group(e, s, 1, 0);
}

void shim_port_leave_due(struct engine *e, rudp_time now)
{
    port_engine *pe = port_of_engine(e);
    if (!pe->nleaving)
        return; /* every tick of every engine: no walk over its sockets */
    unsigned waiting = 0;
    for (uint32_t i = 0; i < shim_engine_nsocks(e); i++) {
        esock *s = shim_engine_sock(e, i);
        port_sock *ps = s ? port_of_sock(s) : NULL;
        if (!ps || !ps->leave_at)
            continue;
        if (now >= ps->leave_at) {
            ps->leave_at = 0; /* forced: it does not wait again */
            leave_group(e, s, 0, 1);
        }
        if (ps->leave_at) {
            shim_engine_tick_by(e, ps->leave_at);
            waiting++;
        }
    }
    pe->nleaving = waiting;
}

void shim_port_yield_cmd(struct engine *e, void *req)
{
    yield_req *y = req;
    int conflict = 0, stopped = 0;
    for (uint32_t i = 0; i < shim_engine_nsocks(e); i++) {
        esock *s = shim_engine_sock(e, i);
        struct sockaddr_storage ss;
        int v6only;
        /* a listener's (a client's socket, connected or reopened on its
         * own port unconnected by roam.c, is no listener's) */
        if (!s || shim_esock_is_client(s) || !udp_bound(shim_esock_fd(s), &ss, &v6only) ||
            !shim_port_overlap(&ss, v6only, &y->addr, y->v6only))
            continue;
        if (!y->probe) {
            leave_port(e, s, shim_ss_port(&ss), "the application");
            continue;
        }
        /* A listener closed here that no process holds any more is
         * stopped now (its port free, as TCP's is once the last holder
         * closed it), not at its next check: the close may not have been
         * ours to see (rudp-supervise's program closes its own fd). */
        if (shim_esock_listening(s) && !shim_engine_listener_live(s, shim_now())) {
            stopped = 1;
            continue;
        }
        /* A live listener conflicts unless both are in a SO_REUSEPORT
         * group: the app's own option, on its TCP socket (reserve_fd,
         * held by one member of a group). */
        int rp = 0, rfd = shim_esock_reserve_fd(s);
        socklen_t l = sizeof rp;
        if (shim_esock_listening(s) && rfd >= 0 &&
            (real_getsockopt(rfd, SOL_SOCKET, SO_REUSEPORT, &rp, &l) < 0 || !rp ||
             !y->reuseport))
            conflict = 1;
    }
    shim_engines_lock();
    if (conflict)
        y->conflict = 1;
    if (stopped)
        y->stopped = 1;
    y->pending--;
    req_put_locked(y);
    shim_engines_wake();
    shim_engines_unlock();
}

/* Whether endpoints x and y (a listener's, family 0: none) are one. */
static int endpoint_equal(const struct sockaddr_storage *x, const struct sockaddr_storage *y)
{
    if (x->ss_family != y->ss_family || shim_ss_port(x) == 0 || shim_ss_port(x) != shim_ss_port(y))
        return 0;
    if (x->ss_family == AF_INET)
        return ((const struct sockaddr_in *)x)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)y)->sin_addr.s_addr;
    return memcmp(&((const struct sockaddr_in6 *)x)->sin6_addr,
                  &((const struct sockaddr_in6 *)y)->sin6_addr, sizeof(struct in6_addr)) == 0;
}

/* The endpoint of e's socket i, or NULL: none there. */
static const struct sockaddr_storage *endpoint_of(struct engine *e, uint32_t i)
{
    esock *s = i < shim_engine_nsocks(e) ? shim_engine_sock(e, i) : NULL;
    return s ? &port_of_sock(s)->endpoint : NULL;
}

int shim_port_same_endpoint(void *user, uint32_t a, uint32_t b)
{
    const struct sockaddr_storage *x = endpoint_of(user, a), *y = endpoint_of(user, b);
    return x && y && endpoint_equal(x, y);
}

uint32_t shim_port_endpoint_sock(struct engine *e, const struct sockaddr_storage *ep)
{
    port_engine *pe = port_of_engine(e);
    const struct sockaddr_storage *h = endpoint_of(e, pe->ep_hint);
    if (h && endpoint_equal(h, ep))
        return pe->ep_hint;
    for (uint32_t i = 0; i < shim_engine_nsocks(e); i++)
        if ((h = endpoint_of(e, i)) && endpoint_equal(h, ep))
            return pe->ep_hint = i;
    return UINT32_MAX;
}

uint32_t shim_port_live_twin(struct engine *e, const esock *s)
{
    if (shim_esock_listening(s))
        return shim_esock_index(s);
    for (uint32_t i = 0; i < shim_engine_nsocks(e); i++) {
        esock *t = shim_engine_sock(e, i);
        if (t && shim_esock_listening(t) &&
            endpoint_equal(&port_of_sock(t)->endpoint, &port_of_sock(s)->endpoint))
            return i;
    }
    /* A member of a SO_REUSEPORT group that other processes may share,
     * its listener stopped, still on the port for connections that cannot
     * move yet (leave_group): the client gets no refusal, which TCP's
     * would never get from the group; it asks again (the handshake's
     * retransmission, 0.1-1 s), by when this socket has left, most often,
     * and another member answers. */
    if (port_of_sock(s)->app_reuseport && port_of_sock(s)->endpoint.ss_family)
        return UINT32_MAX;
    return shim_esock_index(s);
}

/* TCP_TIMEWAIT_LEN, include/net/tcp.h */
#define TW_LEN RUDP_SEC(60)

void shim_tw_mark(esock *s, rudp_time now)
{
    port_sock *ps = port_of_sock(s);
    port_group *pg = port_of_group(s);
    ps->tw_until = now + TW_LEN;
    if (pg) {
        uint64_t was = atomic_load(&pg->tw_until);
        while (was < ps->tw_until && !atomic_compare_exchange_weak(&pg->tw_until, &was, ps->tw_until))
            ;
    }
}

int shim_tw_hold(esock *s)
{
    struct engine *e = shim_esock_engine(s);
    port_engine *pe = port_of_engine(e);
    port_group *pg = port_of_group(s);
    rudp_time until = port_of_sock(s)->tw_until, now = shim_now();
    if (pg && atomic_load(&pg->tw_until) > until)
        until = atomic_load(&pg->tw_until);
    int rfd = shim_esock_reserve_fd(s);
    if (rfd < 0 || until <= now || pe->ntw >= SHIM_TW_HELD)
        return 0;
    pe->tw_fd[pe->ntw] = rfd;
    pe->tw_at[pe->ntw++] = until;
    shim_engine_tick_by(e, until);
    return 1;
}

void shim_tw_expire(struct engine *e, rudp_time now)
{
    port_engine *pe = port_of_engine(e);
    for (int i = 0; i < pe->ntw;) {
        if (pe->tw_at[i] <= now) {
            shim_close_owned(pe->tw_fd[i]);
            pe->tw_fd[i] = pe->tw_fd[--pe->ntw];
            pe->tw_at[i] = pe->tw_at[pe->ntw];
            continue;
        }
        shim_engine_tick_by(e, pe->tw_at[i]);
        i++;
    }
}
