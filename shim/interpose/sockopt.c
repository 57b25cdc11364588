/*
 * sockopt.c: getsockopt(), setsockopt() and ioctl() interposed. On one of
 * ours (a bridge or a listener: an AF_UNIX socket) the TCP-level options
 * are kept in its record and answered as TCP answers them, TCP_INFO and
 * SIOCOUTQ come from the connection's slot, and the others go to options.c
 * and connopts.c; on any other fd every call is the kernel's.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "sock.h"

/* ---- a read's mode ---- */

/* The slot of the bridge whose app end is fd, by the socket's peer name
 * (an engine end of ours), without waiting for a lock (a handler may
 * call): NULL if none. */
static shim_slot *named_slot(int fd)
{
    shim_name n;
    if (shim_name_of(fd, &n, 0) != 1 || n.kind != SHIM_NAME_ENGINE || n.slot == UINT32_MAX)
        return NULL;
    return shim_slot_tryget_pid(n.slot, n.id, n.pid);
}

/* fd's O_NONBLOCK, SO_RCVTIMEO or SO_RCVLOWAT changed, or may have (foreign:
 * fd goes where such changes are not seen): if fd is a bridge, the
 * app-thread read asks the kernel again (recv.c; state.h: rxmode). By the
 * hint, the slot this table's reads look at; without one (a number the
 * shim was not told of: dup(), F_DUPFD) or in a CLONE_VM child's own
 * table, by the socket's peer name too. */
static void rx_changed(int fd, int foreign)
{
    int saved = errno;
    shim_recv_rx_changing(); /* before the marks: a new bridge's note waits for both */
    shim_slot *h = shim_fd_hinted(fd), *s = NULL;
    /* the hint's slot alone where the program's own seccomp filter may
     * refuse getpeername (vsftpd's allows a list) */
    if ((!h || shim_procenv_table() != 0) && !shim_sandboxed_known())
        s = named_slot(fd);
    for (int k = 0; k < 2; k++) {
        shim_slot *x = k ? s : h;
        if (x && (k == 0 || x != h))
            foreign ? shim_slot_rx_foreign(x) : shim_slot_rx_changed(x);
    }
    errno = saved;
}

void shim_rx_setfl(int fd)
{
    rx_changed(fd, 0);
}

static void passed_fd(int fd, void *arg)
{
    (void)arg;
    rx_changed(fd, 1);
}

void shim_rx_passed(const struct msghdr *msg)
{
    if (!msg || !msg->msg_control || msg->msg_controllen < CMSG_LEN(sizeof(int)))
        return;
    /* the program's memory, read as the kernel will (a bad pointer is
     * its EFAULT to give, not a fault here) */
    union {
        char b[1024]; /* SCM_MAX_FD (253) fds and their header */
        struct cmsghdr align;
    } c;
    if (msg->msg_controllen > sizeof c.b || shim_sandboxed_known()) {
        /* more than one message of fds, or a sandbox that may refuse the
         * copy's process_vm_readv: every bridge, with no system call */
        shim_fd_hints_foreign();
        return;
    }
    size_t len = msg->msg_controllen;
    if (shim_user_read(c.b, msg->msg_control, len) < 0)
        return;
    struct msghdr m = {.msg_control = c.b, .msg_controllen = len};
    shim_cmsg_each_fd(&m, passed_fd, NULL);
}

/* ---- options ---- */

/* As TCP answers an int option: the length read first (EFAULT for none,
 * EINVAL for a negative one, as sk_getsockopt and do_tcp_getsockopt say
 * before they look at the option), then what fits of the int (some
 * callers pass a char, or nothing at all), EFAULT for a missing buffer.
 * `take`: SO_ERROR's, consumed only once the length passed, as the
 * kernel's sock_error() comes after that check. */
/* The length a getsockopt() caller passed, read in span s: 0, EFAULT
 * (unreadable) or EINVAL (negative), as the kernel checks it first. */
static int opt_len(const shim_user_span *s, socklen_t *len, int *want)
{
    if (shim_user_copy(s, want, len, sizeof *want, 0) < 0)
        return EFAULT;
    return *want < 0 ? EINVAL : 0;
}

static int put_int_of(void *val, socklen_t *len, int v, _Atomic int *take)
{
    if (!len)
        return fail(EFAULT);
    shim_user_span s;
    shim_user_begin(&s);
    int want, err = opt_len(&s, len, &want);
    if (!err && take)
        v = atomic_exchange(take, 0);
    socklen_t l = !err && (size_t)want < sizeof v ? (socklen_t)want : sizeof v;
    if (!err && l && (!val || shim_user_copy(&s, val, &v, l, 1) < 0))
        err = EFAULT;
    if (!err && shim_user_copy(&s, len, &l, sizeof l, 1) < 0)
        err = EFAULT;
    shim_user_end(&s);
    return err ? fail(err) : 0;
}

static int put_int(void *val, socklen_t *len, int v)
{
    return put_int_of(val, len, v, NULL);
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
    /* as do_tcp_getsockopt: the length read (EFAULT), a negative one
     * EINVAL, the length cut to the struct written back, then the struct
     * (a NULL buffer with length 0 is fine) */
    if (!len)
        return fail(EFAULT);
    shim_user_span u;
    shim_user_begin(&u);
    int want, err = opt_len(&u, len, &want);
    socklen_t n_ = !err && (size_t)want < sizeof ti ? (socklen_t)want : sizeof ti;
    if (!err && shim_user_copy(&u, len, &n_, sizeof n_, 1) < 0)
        err = EFAULT;
    if (!err && n_ && (!val || shim_user_copy(&u, val, &ti, n_, 1) < 0))
        err = EFAULT;
    shim_user_end(&u);
    return err ? fail(err) : 0;
}

/* Options of a unix socket that a TCP one has not, or does nothing with:
 * set on the bridge they change what it gives (SO_PASSCRED attached
 * SCM_CREDENTIALS to every recvmsg, which TCP never does). */
static int unix_only(int opt)
{
    return opt == SO_PASSCRED || opt == SO_PASSSEC
#ifdef SO_PASSPIDFD
           || opt == SO_PASSPIDFD
#endif
        ;
}

/* Such an option asked of a TCP socket of this kernel, made for it (newer
 * kernels refuse them with EOPNOTSUPP, older ones keep a bit that TCP
 * never reads): its answer is the program's. 1 with *ret the answer; 0 if
 * no socket could be made, or not in a program with a seccomp filter of
 * its own, which may kill it for a socket() its TCP call never makes (the
 * bridge's own answer then). */
static int as_tcp(int get, int opt, void *val, socklen_t *len, int *ret)
{
    if (shim_sandboxed())
        return 0;
    int t = real_socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (t < 0)
        return 0;
    *ret = get ? real_getsockopt(t, SOL_SOCKET, opt, val, len)
               : real_setsockopt(t, SOL_SOCKET, opt, val, *len);
    int e = errno;
    real_close(t);
    errno = e;
    return 1;
}

SHIM_EXPORT int getsockopt(int fd, int level, int opt, void *val, socklen_t *len)
{
    if (!shim_init())
        return real_getsockopt(fd, level, opt, val, len);
    shim_kept_flush(); /* the queue an answer may count (TCP_INFO, SO_RCVLOWAT's) */
    int special = level != SOL_SOCKET || opt == SO_ERROR || opt == SO_DOMAIN || opt == SO_PROTOCOL ||
                  opt == SO_PEERCRED || opt == SO_PEERGROUPS || opt == SO_PEERPIDFD ||
                  opt == SO_REUSEPORT || opt == SO_SNDBUF || unix_only(opt);
    int saved = errno;
    shim_fd rec;
    shim_name n;
    /* These read of the name only the connection's slot: a bridge's record
     * has it (SO_ERROR after every non-blocking connect: no getpeername) */
    int slot_only = (level == SOL_SOCKET && (opt == SO_ERROR || opt == SO_SNDBUF ||
                                             opt == SO_PROTOCOL || opt == SO_REUSEPORT)) ||
                    (level == IPPROTO_TCP && (opt == TCP_INFO || opt == TCP_NODELAY ||
                                              opt == TCP_CORK || opt == TCP_QUICKACK ||
                                              opt == TCP_KEEPIDLE || opt == TCP_KEEPINTVL ||
                                              opt == TCP_KEEPCNT || opt == TCP_USER_TIMEOUT));
    if (!special || !(slot_only ? shim_sock_ours_slot(fd, &rec, &n) : shim_sock_ours(fd, &rec, &n))) {
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
    if (level == SOL_SOCKET && unix_only(opt) && as_tcp(1, opt, val, len, &ret))
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
        if (!s)
            return put_int(val, len, 0);
        int had = atomic_load(&s->so_error);
        int r = put_int_of(val, len, 0, &s->so_error);
        if (r == 0 && had > 0)
            shim_recv_error_taken(fd); /* recv.c */
        return r;
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
         * connections whose options are non-empty: source routing); the
         * length checked first, as do_ip_getsockopt */
        if (!len)
            return fail(EFAULT);
        shim_user_span u;
        shim_user_begin(&u);
        int want, err = opt_len(&u, len, &want);
        socklen_t none = 0;
        if (!err && shim_user_copy(&u, len, &none, sizeof none, 1) < 0)
            err = EFAULT;
        shim_user_end(&u);
        return err ? fail(err) : 0;
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

/* SO_ZEROCOPY on a socket whose bytes go through a bridge: one of ours,
 * or a kernel TCP socket not yet connected or listening, which connect()
 * or listen() may make one. The bridge copies every byte and its error
 * queue never holds a completion, so a program granted SO_ZEROCOPY would
 * wait for ever for the notice that its buffer is free. 1 is refused with
 * EOPNOTSUPP, the kernel's answer on a socket without zero-copy sends
 * (sk_setsockopt), on which msg_zerocopy.rst has programs fall back to
 * plain sends; 0 is accepted; TCP's own checks first (a length under an
 * int EINVAL, a bad pointer EFAULT, a value past 1 EINVAL). 1 when this
 * answered, with *r the result. */
static int zerocopy_refused(int fd, int ours, const void *val, socklen_t len, int *r)
{
    if (!ours) {
        struct tcp_info ti;
        socklen_t tl = sizeof ti;
        if (!tcp_family(fd) || real_getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) < 0 ||
            ti.tcpi_state != TCPS_CLOSE)
            return 0; /* kernel TCP's to answer: a connection or listener of its own */
    }
    int v = 0;
    *r = -1;
    if (len < sizeof(int))
        errno = EINVAL;
    else if (shim_user_read(&v, val, sizeof v) < 0)
        errno = EFAULT;
    else if (v == 1)
        errno = EOPNOTSUPP;
    else if (v != 0)
        errno = EINVAL;
    else if (ours)
        *r = 0; /* off, as it is */
    else
        *r = real_setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, val, len);
    return 1;
}

SHIM_EXPORT int setsockopt(int fd, int level, int opt, const void *val, socklen_t len)
{
    if (!shim_init()) /* in a CLONE_VM child too: its records are its own (fdtab.c) */
        return real_setsockopt(fd, level, opt, val, len);
    shim_kept_flush(); /* SO_RCVLOWAT and the like: the kernel's from here */
    int saved = errno;
    shim_fd rec;
    int ours = shim_sock_ours(fd, &rec, NULL), zr;
    errno = saved;
    if (level == SOL_SOCKET && opt == SO_ZEROCOPY && zerocopy_refused(fd, ours, val, len, &zr))
        return zr;
    if (!ours) {
        shim_pristine_touched(); /* fd, or a dup of it, may be a pristine one */
        int r = real_setsockopt(fd, level, opt, val, len);
        int family, e = errno;
        if (r < 0 && e == ENOENT && level == IPPROTO_TCP && opt == TCP_CONGESTION &&
            (family = tcp_family(fd)) && shim_opts_candidate_cc(fd, family, val, len)) {
            errno = saved; /* a controller rudp has and this kernel lacks (options.c) */
            return 0;
        }
        errno = e;
        if (r == 0 && (level != SOL_SOCKET || shim_opts_binds(level, opt)) &&
            (family = tcp_family(fd))) {
            shim_opts_candidate(fd, family, level, opt, val, len); /* for connect/listen */
            errno = saved;
        } else if (r == 0 && is_sockbuf(level, opt) && tcp_family(fd)) {
            shim_connopts_candidate(fd, opt); /* sizes the connection (connopts.c) */
            errno = saved;
        }
        return r;
    }
    int tr;
    if (level == SOL_SOCKET && unix_only(opt) && as_tcp(0, opt, (void *)val, &len, &tr))
        return tr;
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
            if (shim_user_read(&v, val, sizeof v) == 0) {
                rec.reuseport = v != 0;
                shim_fd_update(&rec);
            }
        }
        if (r == 0 && is_sockbuf(level, opt)) {
            shim_connopts_sockbuf(&rec, opt, shown); /* rudp's buffers follow */
            shim_fd_update(&rec);
        }
        if (r == 0 && rec.kind == SHIM_FD_LISTENER && rec.sockopts_default) {
            rec.sockopts_default = 0; /* accept() now passes them on */
            shim_fd_update(&rec);
        }
        if (r == 0 && rec.kind == SHIM_FD_BRIDGED)
            rx_changed(fd, 0); /* SO_RCVTIMEO, SO_RCVLOWAT... */
        if (r == 0 && rec.kind == SHIM_FD_BRIDGED && opt == SO_KEEPALIVE)
            shim_connopts_timeouts_changed(fd, &rec);
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
            shim_fd_update(&rec);
            return 0;
        }
        if (len < sizeof(int))
            return fail(EINVAL);
        if (!val)
            return fail(EFAULT);
        int v;
        if (shim_user_read(&v, val, sizeof v) < 0)
            return -1;
        if (opt == TCP_NODELAY || opt == TCP_CORK || opt == TCP_QUICKACK)
            v = v != 0;
        else if (v < lo || v > hi)
            return fail(EINVAL);
        *field = v;
        if (opt == TCP_CORK && rec.kind == SHIM_FD_BRIDGED)
            shim_engine_set_cork(rec.id, v); /* holds partial datagrams (core/tune.c) */
        if (opt != TCP_NODELAY && opt != TCP_CORK && opt != TCP_QUICKACK &&
            rec.kind == SHIM_FD_BRIDGED)
            shim_connopts_timeouts_changed(fd, &rec); /* the keepalive's, the user timeout */
    } else if (level == IPPROTO_IPV6 && opt == IPV6_V6ONLY && rec.family == AF_INET6) {
        return fail(EINVAL); /* TCP refuses it once connected or listening */
    } else {
        if (shim_opts_set(&rec, level, opt, val, len) < 0)
            return -1;
    }
    shim_fd_update(&rec);
    return 0;
}

/* fcntl and fcntl64 (glibc 2.28's name under _FILE_OFFSET_BITS=64): libc's
 * own call; after an F_SETFL (O_NONBLOCK), rx_changed. The argument taken
 * as glibc's fcntl takes it (one word, whatever the command). */
static int fcntl_as_libc(int fd, int cmd, void *arg)
{
    shim_real_init();
    if (shim_fcntl_sets_owner(cmd))
        shim_pristine_touched();
    int r = real_fcntl(fd, cmd, arg);
    if (r >= 0 && cmd == F_SETFL)
        rx_changed(fd, 0);
    return r;
}

SHIM_EXPORT int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    shim_kept_flush(); /* F_DUPFD's copy reads by the kernel */
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
        shim_epoll_dup_seen(fd); /* a copy's registrations are not followed (epoll.c) */
    return fcntl_as_libc(fd, cmd, arg);
}

/* the same function under glibc 2.28's name, as libc's own is */
SHIM_EXPORT int fcntl64(int fd, int cmd, ...) __attribute__((alias("fcntl")));

/* ---- ioctl ---- */

SHIM_EXPORT int ioctl(int fd, unsigned long req, ...)
{
    int on = shim_init();
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (on)
        shim_kept_flush(); /* FIONREAD counts them in the bridge */
    if (req != FIONBIO && req != FIONREAD && req != SIOCOUTQ && req != SIOCOUTQNSD &&
        req != SIOCATMARK)
        shim_pristine_touched(); /* an owner (FIOSETOWN, SIOCSPGRP) or the like */
    if (on && req == FIONBIO) {
        int r = real_ioctl(fd, req, arg);
        if (r == 0)
            rx_changed(fd, 0);
        return r;
    }
    if (!on || (req != SIOCOUTQ && req != SIOCOUTQNSD))
        return real_ioctl(fd, req, arg);
    int saved = errno;
    shim_fd rec;
    shim_name n;
    if (!shim_sock_ours(fd, &rec, &n)) {
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
        return shim_user_write(arg, &zero, sizeof zero);
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
    return shim_user_write(arg, &v, sizeof v);
}
