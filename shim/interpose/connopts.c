/*
 * connopts.c: the options that size a live connection, through the engine
 * (rudp_conn_set_buffers / rudp_listener_set_buffers, as options.c passes
 * TCP_CONGESTION on):
 *
 * - SO_SNDBUF, SO_RCVBUF: the value TCP reads back is the double of what
 *   was asked, clamped to net.core.wmem_max/rmem_max (socket(7)); the unix
 *   socket applies the same rule, so the read-back stays its. Half of it,
 *   what the app asked for, becomes rudp's send buffer and receive window
 *   (as TCP keeps about half its buffer memory for payload), set before
 *   connect()/listen() (noted on the candidate) or on the live socket; a
 *   listener gives them to what it accepts, as TCP's children inherit them.
 * - TCP_WINDOW_CLAMP bounds that receive window; on a connected socket it
 *   reads back the app's clamp (as the kernel normalises it) or the
 *   largest window the connection advertises, never the 0 of an
 *   unconnected socket.
 * - TCP_NOTSENT_LOWAT: the core holds the bytes not yet sent to the limit
 *   (rudp__lowat_space), and the app sees it through the writability of
 *   its end of the bridge, which is the kernel's unix_writable(): writable
 *   while the bytes queued there take at most a quarter of its send
 *   buffer. So that end's send buffer becomes the lowat (set as lowat / 2,
 *   which the kernel doubles): the engine stops taking bytes once half the
 *   lowat waits unsent in rudp, the bridge fills a little, and POLLOUT goes;
 *   when rudp sends and the engine takes them, it comes back. Not exact:
 *   the app's unsent bytes are rudp's plus the bridge's, so POLLOUT goes
 *   with between lowat / 2 and about twice lowat unsent (Linux: lowat / 2,
 *   tcp_poll), and comes back with up to a quarter of lowat still in the
 *   bridge. getsockopt(SO_SNDBUF) meanwhile shows what the app had.
 * - SO_KEEPALIVE with TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT: TCP finds
 *   a silent peer dead idle + intvl x cnt seconds after its last segment;
 *   where that is sooner than rudp's idle timeout (RUDP_IDLE_TIMEOUT, 15 min)
 *   it becomes the connection's idle timeout, and the keepalive probe goes
 *   after the idle time (rudp_conn_set_timeouts); TCP_USER_TIMEOUT becomes
 *   its user timeout. Set before connect(), on the live socket, or on the
 *   listener (its children take them, as TCP's). Later than rudp's own
 *   (Linux's defaults: 2 h 11 min) changes nothing: rudp keeps its own
 *   liveness, which TCP has no counterpart of without SO_KEEPALIVE.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "interpose.h"

#include "base/poison.h"

static int sock_int(int fd, int opt)
{
    int v = 0;
    socklen_t l = sizeof v;
    return real_getsockopt(fd, SOL_SOCKET, opt, &v, &l) == 0 ? v : 0;
}

static void set_sndbuf(int fd, int v)
{
    real_setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
}

/*
 * The send buffer a TCP connection has before the app sets one: Linux
 * sizes it from the first congestion window (tcp_sndbuf_expand), which on
 * loopback's 64 KiB segments is already net.ipv4.tcp_wmem's maximum (4 MiB
 * by default): getsockopt(SO_SNDBUF) says 4194304 on both ends, where the
 * unix socket under the app said net.core.wmem_default (212992). With 20
 * times less room, a 10 MB non-blocking write ended, one time in three,
 * with the unix socket charged past its limit by the write's last buffer
 * (a unix socket takes each write as buffers of up to ~36 KiB, where TCP
 * appends a small write to its last segment): the 1-byte write right after
 * it would block, which libuv's tcp_write_in_a_row fails on. tcp_wmem's
 * third field, read once; 0 where /proc has no such file or denies it
 * (a chroot), kept; a passing failure (EMFILE) is not kept.
 */
int shim_tcp_sndbuf_default(void)
{
    static _Atomic int cached = -1;
    int v = atomic_load(&cached);
    if (v >= 0)
        return v;
    v = 0;
    int fd = open("/proc/sys/net/ipv4/tcp_wmem", O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno != ENOENT && errno != EACCES && errno != EPERM)
        return 0; /* EMFILE and the like pass: asked again next time */
    if (fd >= 0) {
        char t[96];
        ssize_t k = real_read(fd, t, sizeof t - 1);
        real_close(fd);
        if (k > 0) {
            t[k] = '\0';
            const char *q = t;
            for (int field = 0; field < 2 && *q; field++) {
                while (*q >= '0' && *q <= '9')
                    q++;
                while (*q == ' ' || *q == '\t')
                    q++;
            }
            long m = 0;
            while (*q >= '0' && *q <= '9' && m < (1L << 30))
                m = m * 10 + (*q++ - '0');
            v = m >= 4096 && m < (1L << 30) ? (int)m : 0;
        }
    }
    atomic_store(&cached, v);
    return v;
}

static unsigned buf_bit(int opt)
{
    return opt == SO_SNDBUF || opt == SO_SNDBUFFORCE ? SHIM_BUF_SND : SHIM_BUF_RCV;
}

/* The app end's send buffer (as set, the kernel doubles it) under lowat. */
static int lowat_sndbuf(uint32_t lowat)
{
    return lowat / 2 > 1 ? (int)(lowat / 2) : 1;
}

/* What rec asks of its connection: send buffer and receive window (0: as
 * configured) and TCP_NOTSENT_LOWAT (0: none). */
static void wanted(const shim_fd *rec, uint32_t *snd, uint32_t *rcv, uint32_t *lowat)
{
    *snd = rec->sndbuf_req;
    *rcv = rec->rcvbuf_req;
    int clamp, lw;
    if (shim_opts_kernel_int(rec, IPPROTO_TCP, TCP_WINDOW_CLAMP, &clamp) && clamp > 0) {
        uint32_t base = *rcv ? *rcv : shim_cfg.rudp.recv_window;
        *rcv = base < (uint32_t)clamp ? base : (uint32_t)clamp;
    }
    /* 0 means net.ipv4.tcp_notsent_lowat (tcp_notsent_lowat()), UINT_MAX
     * by default: no limit either */
    *lowat = shim_opts_kernel_int(rec, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lw) && lw > 0
                 ? (uint32_t)lw : 0;
}

void shim_connopts_candidate(int fd, int opt)
{
    shim_fd rec;
    if (!shim_opts_candidate_rec(fd, &rec))
        return;
    rec.bufs_set |= buf_bit(opt);
    shim_fd_update(&rec);
}

void shim_connopts_config(int fd, shim_fd *rec, rudp_config *cfg)
{
    if (rec->bufs_set & SHIM_BUF_SND)
        rec->sndbuf_req = (uint32_t)sock_int(fd, SO_SNDBUF) / 2;
    if (rec->bufs_set & SHIM_BUF_RCV)
        rec->rcvbuf_req = (uint32_t)sock_int(fd, SO_RCVBUF) / 2;
    uint32_t snd, rcv, lowat;
    wanted(rec, &snd, &rcv, &lowat);
    /* within rudp_config_check()'s bounds */
    if (snd)
        cfg->send_buffer = snd < 4096 ? 4096 : snd > (1u << 30) ? 1u << 30 : snd;
    if (rcv) {
        uint32_t min = 2 * cfg->max_datagram;
        cfg->recv_window = rcv < min ? min : rcv > (1u << 30) ? 1u << 30 : rcv;
    }
    cfg->notsent_lowat = lowat;
}

int shim_connopts_app_sndbuf(int fd, shim_fd *rec, const rudp_config *cfg, int dflt)
{
    int v = rec->sndbuf_req ? (int)rec->sndbuf_req : dflt;
    if (!cfg->notsent_lowat)
        return v;
    rec->sndbuf_shown = rec->sndbuf_req ? sock_int(fd, SO_SNDBUF) : 2 * dflt;
    int small = lowat_sndbuf(cfg->notsent_lowat);
    return small < v ? small : v;
}

/* The app end's send buffer under lowat (0: none): shrunk, or given back. */
static void fit_app_end(shim_fd *rec, uint32_t lowat)
{
    if (rec->kind != SHIM_FD_BRIDGED)
        return;
    if (lowat) {
        if (!rec->sndbuf_shown)
            rec->sndbuf_shown = sock_int(rec->fd, SO_SNDBUF);
        int small = lowat_sndbuf(lowat);
        set_sndbuf(rec->fd, small < rec->sndbuf_shown / 2 ? small : rec->sndbuf_shown / 2);
    } else if (rec->sndbuf_shown) {
        set_sndbuf(rec->fd, rec->sndbuf_shown / 2);
        rec->sndbuf_shown = 0;
    }
}

void shim_connopts_accepted(shim_fd *rec)
{
    if (rec->cork)
        shim_engine_set_cork(rec->id, 1); /* as TCP's child, corked like its listener */
    rec->sndbuf_shown = 0;
    uint32_t snd, rcv, lowat;
    wanted(rec, &snd, &rcv, &lowat);
    fit_app_end(rec, lowat);
}

void shim_connopts_changed(shim_fd *rec)
{
    uint32_t snd, rcv, lowat;
    wanted(rec, &snd, &rcv, &lowat);
    shim_engine_set_buffers(rec->id, rec->kind == SHIM_FD_LISTENER, snd, rcv, lowat);
    fit_app_end(rec, lowat);
}

void shim_connopts_sockbuf(shim_fd *rec, int opt, int shown)
{
    unsigned bit = buf_bit(opt);
    /* shown: the size the app's end will get, not yet set (appfd.c) */
    int v = shown > 0 ? shown : sock_int(rec->fd, bit == SHIM_BUF_SND ? SO_SNDBUF : SO_RCVBUF);
    rec->bufs_set |= bit;
    if (bit == SHIM_BUF_SND) {
        rec->sndbuf_req = (uint32_t)v / 2;
        if (rec->sndbuf_shown)
            rec->sndbuf_shown = v; /* shown; the bridge stays at the lowat's */
    } else {
        rec->rcvbuf_req = (uint32_t)v / 2;
    }
    shim_connopts_changed(rec);
}

int shim_connopts_sndbuf_shown(const shim_fd *rec, int *v)
{
    if (!rec->sndbuf_shown)
        return 0;
    *v = rec->sndbuf_shown;
    return 1;
}

int shim_connopts_window_clamp(const shim_fd *rec)
{
    int clamp;
    if (shim_opts_kernel_int(rec, IPPROTO_TCP, TCP_WINDOW_CLAMP, &clamp) && clamp > 0)
        return clamp;
    uint32_t w = rec->rcvbuf_req ? rec->rcvbuf_req : shim_cfg.rudp.recv_window;
    return w > INT32_MAX ? INT32_MAX : (int)w;
}

/* ---- keepalive and timeouts ---- */

int shim_connopts_timeouts(int so_keepalive, const shim_fd *rec, rudp_time *keepalive,
                           rudp_time *idle, rudp_time *user)
{
    const rudp_config *base = &shim_cfg.rudp;
    *keepalive = base->keepalive;
    *idle = base->idle_timeout;
    *user = rec->user_timeout_ms > 0 ? RUDP_MS((unsigned)rec->user_timeout_ms) : base->user_timeout;
    int changed = *user != base->user_timeout;
    if (so_keepalive && rec->keepidle > 0 && rec->keepintvl > 0 && rec->keepcnt > 0) {
        rudp_time dead = RUDP_SEC((unsigned)rec->keepidle + (rudp_time)(unsigned)rec->keepintvl *
                                                               (unsigned)rec->keepcnt);
        if (!*idle || dead < *idle) {
            *idle = dead;
            rudp_time first = RUDP_SEC((unsigned)rec->keepidle);
            if (!*keepalive || first < *keepalive)
                *keepalive = first;
            if (*keepalive >= *idle)
                *keepalive = *idle / 2; /* rudp_config_check's rule */
            changed = 1;
        }
    }
    return changed;
}

void shim_connopts_timeouts_changed(int fd, const shim_fd *rec)
{
    int on = sock_int(fd, SO_KEEPALIVE) > 0; /* the bridge's, as the app set it */
    rudp_time ka, idle, user;
    shim_connopts_timeouts(on, rec, &ka, &idle, &user);
    shim_engine_set_timeouts(rec->id, ka, idle, user);
}

void shim_connopts_timeouts_accepted(int lfd, const shim_fd *rec)
{
    rudp_time ka, idle, user;
    /* the listener's numbers first: the common case asks nothing */
    if (!shim_connopts_timeouts(1, rec, &ka, &idle, &user))
        return;
    if (!shim_connopts_timeouts(sock_int(lfd, SO_KEEPALIVE) > 0, rec, &ka, &idle, &user))
        return;
    shim_engine_set_timeouts(rec->id, ka, idle, user);
}
