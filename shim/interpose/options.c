/*
 * options.c: the IP-, IPv6- and TCP-level options of a redirected socket.
 *
 * The app's fd is a unix socket, which holds none of them. So the record
 * keeps what the app set, raw and in order, and every question the engine
 * cannot answer better is put to the kernel itself: a scratch TCP socket
 * of the same family, made for the call, with the kept options replayed
 * onto it. setsockopt then fails with the kernel's errno (EINVAL for
 * IP_TTL 0, ENOPROTOOPT for an unknown number, ...) and getsockopt answers
 * with the kernel's defaults (IP_TTL 64 from net.ipv4.ip_default_ttl), its
 * normalisation (IP_TOS without the ECN bits, man 7 ip) and its truncation
 * rules, exactly as on a TCP socket that is not connected.
 *
 * What depends on the connection comes from where rudp knows it:
 * TCP_MAXSEG from rudp's datagram size; IP_MTU and IPV6_MTU from the route
 * to the peer (a UDP socket connected to it, as rudp's own is); and
 * TCP_CONGESTION names rudp's controller, which the app chooses with it.
 *
 * Options set before connect()/listen() are on the kernel TCP socket that
 * the bridge replaces: setsockopt() notes them in a SHIM_FD_CANDIDATE
 * record (shim_opts_candidate), which connect()/listen() take over.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "interpose.h"

#include "base/poison.h"

/* TCP_CA_NAME_MAX (include/net/tcp.h) */
#define CA_NAME_MAX 16

static int fail(int err)
{
    errno = err;
    return -1;
}

/* ---- TCP_CONGESTION ---- */

/* A TCP_CONGESTION name (state/tcpopts.c knows rudp's controllers under
 * the names Linux gives its own) is first put to the kernel (a scratch TCP socket), so that its
 * policy holds: tcp_set_congestion_control answers EPERM to a process
 * without CAP_NET_ADMIN for a controller outside
 * net.ipv4.tcp_allowed_congestion_control, and ENOENT for one it has not
 * got (not built, or a module only CAP_NET_ADMIN may load). rudp takes a
 * name of its own table whatever the kernel has (ENOENT: rudp runs it, the
 * kernel need not); a name rudp lacks gets the kernel's answer, and where
 * the kernel takes it (a module rudp has no counterpart for) the
 * connection keeps its controller, logged at info. */
/* The name in an optval as do_tcp_setsockopt reads it: at most 15 bytes,
 * up to a NUL. Returns 0 or the errno. */
static int cc_read(const void *val, socklen_t len, char name[CA_NAME_MAX])
{
    if ((int)len < 1)
        return EINVAL;
    if (!val)
        return EFAULT;
    size_t l = len < CA_NAME_MAX - 1 ? len : CA_NAME_MAX - 1;
    memset(name, 0, CA_NAME_MAX);
    memcpy(name, val, l);
    name[strnlen(name, l)] = 0;
    return 0;
}

/* getsockopt(TCP_CONGESTION) as do_tcp_getsockopt answers it:
 * min(len, TCP_CA_NAME_MAX) bytes of the name, NUL-padded. */
static int put_cc_name(const char *name, void *val, socklen_t *len)
{
    if (!len)
        return fail(EFAULT);
    if ((int)*len < 0)
        return fail(EINVAL);
    char buf[CA_NAME_MAX] = {0};
    memcpy(buf, name, strlen(name));
    socklen_t l = *len < CA_NAME_MAX ? *len : CA_NAME_MAX;
    if (l && !val)
        return fail(EFAULT);
    if (l)
        memcpy(val, buf, l);
    *len = l;
    return 0;
}

int shim_opts_candidate_cc(int fd, int family, const void *val, socklen_t len)
{
    char name[CA_NAME_MAX];
    if (cc_read(val, len, name) != 0 || !shim_cc_by_tcp_name(name))
        return 0;
    shim_fd rec;
    if (!shim_opts_candidate_rec(fd, &rec))
        return 0;
    rec.family = family;
    rec.cc = shim_cc_by_tcp_name(name);
    shim_fd_update(&rec);
    SHIM_LOG(RUDP_LOG_DEBUG, "fd %d: TCP_CONGESTION %s: not in this kernel; rudp runs it", fd,
             name);
    return 1;
}

int shim_opts_candidate_cc_get(int fd, void *val, socklen_t *len, int *ret)
{
    shim_fd rec;
    if (!shim_fd_get(fd, &rec) || rec.kind != SHIM_FD_CANDIDATE || !rec.cc)
        return 0;
    *ret = put_cc_name(shim_cc_tcp_name(&rec), val, len);
    return 1;
}

/* ---- the kept options ---- */

/* The options that mark the datagrams: shim_marks (pktctl.c). */
static const shim_mark_opt *const marks = shim_marks;

static int is_mark(int level, int opt)
{
    for (size_t i = 0; i < SHIM_MARKS; i++)
        if (marks[i].level == level && marks[i].opt == opt)
            return 1;
    return 0;
}

/* Options with a field of their own in shim_fd (sockopt.c keeps them). */
static int has_field(int level, int opt)
{
    if (level == IPPROTO_IPV6)
        return opt == IPV6_V6ONLY;
    if (level != IPPROTO_TCP)
        return 0;
    switch (opt) {
    case TCP_NODELAY: case TCP_CORK: case TCP_QUICKACK: case TCP_KEEPIDLE:
    case TCP_KEEPINTVL: case TCP_KEEPCNT: case TCP_USER_TIMEOUT: case TCP_CONGESTION:
        return 1;
    default:
        return 0;
    }
}

static void keep(shim_kept_opts *k, int level, int opt, const void *val, socklen_t len)
{
    if (len > SHIM_KEPT_LEN || (len && !val) || has_field(level, opt))
        return;
    uint8_t i = 0;
    while (i < k->n && !(k->o[i].level == level && k->o[i].opt == opt))
        i++;
    if (i == SHIM_KEPT_MAX) {
        SHIM_LOG(RUDP_LOG_DEBUG, "option %d/%d: more than %d options set, not kept", level,
                 opt, SHIM_KEPT_MAX);
        return;
    }
    shim_kept_opt *o = &k->o[i];
    o->level = (int16_t)level;
    o->opt = (int16_t)opt;
    o->len = (uint8_t)len;
    memset(o->val, 0, sizeof o->val);
    if (len)
        memcpy(o->val, val, len);
    if (i == k->n)
        k->n++;
}

static const shim_kept_opt *kept(const shim_fd *rec, int level, int opt)
{
    for (uint8_t i = 0; i < rec->kept.n; i++)
        if (rec->kept.o[i].level == level && rec->kept.o[i].opt == opt)
            return &rec->kept.o[i];
    return NULL;
}

/* A kernel TCP socket of rec's family, unconnected, with rec's options.
 * Returns it or -1 (errno). */
static int scratch(const shim_fd *rec)
{
    int family = rec->family ? rec->family : AF_INET;
    int t = real_socket(family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
    if (t < 0)
        return -1;
    if (family == AF_INET6)
        real_setsockopt(t, IPPROTO_IPV6, IPV6_V6ONLY, &rec->v6only, sizeof rec->v6only);
    for (uint8_t i = 0; i < rec->kept.n; i++) {
        const shim_kept_opt *o = &rec->kept.o[i];
        real_setsockopt(t, o->level, o->opt, o->val, o->len);
    }
    return t;
}

/* The kernel's answer on a scratch socket with rec's options: setsockopt
 * of (sval, slen) when glen is NULL, else getsockopt into (gval, glen).
 * Returns 0 or -1 with the kernel's errno. */
static int ask_kernel(const shim_fd *rec, int level, int opt, const void *sval, socklen_t slen,
                      void *gval, socklen_t *glen)
{
    int t = scratch(rec);
    if (t < 0)
        return -1;
    int r = glen ? real_getsockopt(t, level, opt, gval, glen)
                 : real_setsockopt(t, level, opt, sval, slen);
    int e = errno;
    real_close(t);
    errno = e;
    return r;
}

/* The path MTU to n's peer as the kernel's route has it: what IP_MTU says
 * on a connected TCP socket (dst_mtu of its route, man 7 ip), read from a
 * UDP socket connected to the same peer. */
static int route_mtu(const shim_name *n, int level, int opt, void *val, socklen_t *len)
{
    int u = real_socket(n->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (u < 0)
        return -1;
    socklen_t pl = n->family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    int r = real_connect(u, (const struct sockaddr *)&n->peer, pl);
    if (r == 0)
        r = real_getsockopt(u, level, opt, val, len);
    int e = errno;
    real_close(u);
    errno = e;
    return r;
}

/* An int answer as do_tcp_getsockopt gives it: min(len, 4) bytes. */
static int put_opt_int(int v, void *val, socklen_t *len)
{
    if (!len)
        return fail(EFAULT);
    if ((int)*len < 0)
        return fail(EINVAL);
    socklen_t l = *len < sizeof v ? *len : sizeof v;
    if (l && !val)
        return fail(EFAULT);
    if (l)
        memcpy(val, &v, l);
    *len = l;
    return 0;
}

int shim_opts_kernel_int(const shim_fd *rec, int level, int opt, int *v)
{
    if (!kept(rec, level, opt))
        return 0;
    socklen_t l = sizeof *v;
    return ask_kernel(rec, level, opt, NULL, 0, v, &l) == 0;
}

int shim_opts_get(const shim_fd *rec, const shim_name *n, shim_slot *s, int level, int opt,
                  void *val, socklen_t *len)
{
    int connected = n->kind != SHIM_NAME_LISTENER;
    if (level == IPPROTO_TCP && opt == TCP_CONGESTION)
        return put_cc_name(shim_cc_tcp_name(rec), val, len);
    if (connected && level == IPPROTO_TCP && opt == TCP_MAXSEG) {
        /* the segment the connection sends: rudp's datagram (tcp(7): "the
         * maximum segment size for outgoing TCP packets") */
        uint32_t mss = s ? atomic_load(&s->mss) : 0;
        return put_opt_int(mss ? (int)mss : (int)shim_cfg.rudp.max_datagram, val, len);
    }
    if (connected && level == IPPROTO_TCP && opt == TCP_WINDOW_CLAMP)
        return put_opt_int(shim_connopts_window_clamp(rec), val, len);
    if (connected && ((level == IPPROTO_IP && opt == IP_MTU) ||
                      (level == IPPROTO_IPV6 && opt == IPV6_MTU && n->family == AF_INET6)))
        return route_mtu(n, level, opt, val, len);
    return ask_kernel(rec, level, opt, NULL, 0, val, len);
}

int shim_opts_set(shim_fd *rec, int level, int opt, const void *val, socklen_t len)
{
    if (level == IPPROTO_TCP && opt == TCP_CONGESTION) {
        char name[CA_NAME_MAX];
        int err = cc_read(val, len, name);
        if (err)
            return fail(err);
        const rudp_cc_ops *cc = shim_cc_by_tcp_name(name);
        int r = ask_kernel(rec, level, opt, val, len, NULL, NULL), e = errno;
        if (cc ? r < 0 && e == EPERM : r < 0)
            return fail(e); /* the kernel's policy, or a name neither has */
        if (!cc) {
            SHIM_LOG(RUDP_LOG_INFO, "fd %d: TCP_CONGESTION %s: rudp has no such controller; "
                                    "the connection keeps %s", rec->fd, name, shim_cc_tcp_name(rec));
            return 0;
        }
        rec->cc = cc;
        /* a live connection switches at once, as Linux's does; a listener
         * passes it to what it accepts from now on */
        shim_engine_set_cc(rec->id, rec->kind == SHIM_FD_LISTENER, cc);
        return 0;
    }
    int zero = 0;
    if (level == IPPROTO_TCP && opt == TCP_WINDOW_CLAMP && len >= sizeof zero && val &&
        memcmp(val, &zero, sizeof zero) == 0)
        return fail(EINVAL); /* tcp_set_window_clamp: 0 only on a closed socket */
    if (ask_kernel(rec, level, opt, val, len, NULL, NULL) < 0)
        return -1;
    keep(&rec->kept, level, opt, val, len);
    if (level == IPPROTO_TCP && (opt == TCP_WINDOW_CLAMP || opt == TCP_NOTSENT_LOWAT))
        shim_connopts_changed(rec); /* the engine sizes the connection (connopts.c) */
    int v;
    socklen_t vl = sizeof v;
    if (is_mark(level, opt) && ask_kernel(rec, level, opt, NULL, 0, &v, &vl) == 0)
        shim_engine_set_mark(rec->id, rec->kind == SHIM_FD_LISTENER, level, opt, v);
    return 0;
}

int shim_opts_candidate_rec(int fd, shim_fd *rec)
{
    if (!shim_fd_get(fd, rec)) {
        memset(rec, 0, sizeof *rec);
        rec->fd = fd;
        rec->kind = SHIM_FD_CANDIDATE;
    }
    return rec->kind == SHIM_FD_CANDIDATE;
}

void shim_opts_candidate(int fd, int family, int level, int opt, const void *val, socklen_t len)
{
    shim_fd rec;
    if (!shim_opts_candidate_rec(fd, &rec))
        return;
    rec.family = family;
    if (level == IPPROTO_TCP && opt == TCP_CONGESTION) {
        char name[CA_NAME_MAX];
        if (cc_read(val, len, name) == 0) {
            rec.cc = shim_cc_by_tcp_name(name);
            if (!rec.cc)
                SHIM_LOG(RUDP_LOG_INFO, "fd %d: TCP_CONGESTION %s: rudp has no such controller; "
                                        "a rudp connection will use %s", fd, name, shim_cc_tcp_name(&rec));
        }
    } else {
        keep(&rec.kept, level, opt, val, len);
    }
    shim_fd_update(&rec);
}

void shim_opts_inherit(int fd, shim_fd *rec, rudp_config *cfg)
{
    shim_fd c;
    if (shim_fd_get(fd, &c) && c.kind == SHIM_FD_CANDIDATE) {
        rec->kept = c.kept;
        rec->cc = c.cc;
        rec->bufs_set = c.bufs_set;
    }
    if (rec->cc)
        cfg->cc = rec->cc;
}

int shim_opts_binds(int level, int opt)
{
    switch (level) {
    case SOL_SOCKET:
        return opt == SO_BINDTODEVICE || opt == SO_BINDTOIFINDEX || opt == SO_MARK;
    case IPPROTO_IP:
        return opt == IP_FREEBIND || opt == IP_TRANSPARENT;
    case IPPROTO_IPV6:
        return opt == IPV6_FREEBIND || opt == IPV6_TRANSPARENT;
    default:
        return 0;
    }
}

void shim_opts_to_udp(int udp, const shim_fd *rec)
{
    /* What decides where the socket's packets go or which address it may
     * bind (shim_opts_binds), as the app set it: on the UDP socket before
     * its bind and connect, as on the TCP socket. Without it a client bound
     * to a device or marked for a routing table went by the main table's
     * route, and a listener with IP_FREEBIND on an address not yet there
     * failed at listen() (a helper's hunt, 2026-11-29). */
    for (uint8_t i = 0; i < rec->kept.n; i++) {
        const shim_kept_opt *o = &rec->kept.o[i];
        if (shim_opts_binds(o->level, o->opt))
            real_setsockopt(udp, o->level, o->opt, o->val, o->len);
    }
    int t = -1;
    for (size_t i = 0; i < SHIM_MARKS; i++) {
        if (!kept(rec, marks[i].level, marks[i].opt))
            continue;
        if (t < 0 && (t = scratch(rec)) < 0)
            return;
        int v;
        socklen_t l = sizeof v;
        if (real_getsockopt(t, marks[i].level, marks[i].opt, &v, &l) == 0)
            real_setsockopt(udp, marks[i].level, marks[i].opt, &v, sizeof v);
    }
    if (t >= 0)
        real_close(t);
}
