/*
 * sock.c: the shim's start (configuration, fork handlers, constructor) and
 * the interposers of a socket as a whole: socket(), getsockname(),
 * getpeername(), epoll_ctl(), shutdown() and close(). The others are in
 * connect.c, listen.c (bind, listen, accept) and sockopt.c (getsockopt,
 * setsockopt, ioctl); what they share, in sock.h. Each is a thin
 * trampoline: bind the real symbols, decide whether the fd is (or becomes)
 * one of ours, and otherwise pass straight through. errno is set only on
 * failure, as libc does.
 *
 * A TCP socket stays a kernel TCP socket until connect() or listen() to a
 * redirected address; then it is replaced, under the same fd number, by an
 * AF_UNIX socket bridged to the engine (dup3 inside the call, before the
 * application can have registered the new socket anywhere).
 */
#include <mqueue.h>
#include <errno.h>
#include <fcntl.h>
/* the kernel's tcp_info has the fields TCP_INFO users read today */
#include <linux/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sock.h"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int active; /* set once by init_all, read-only afterwards */
static int refused; /* a bad setting: TCP sockets fail (config.c); likewise */

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

/* Whether fd (an AF_UNIX socket) is the program's end of a connection of
 * ours, whatever its number (a dup2() onto stderr keeps no record): its
 * peer is an engine's end, by its name. For the log (base/log.c). */
static int is_bridge(int fd)
{
    shim_name n;
    return shim_name_get(fd, 1, &n) == 1 && n.kind == SHIM_NAME_ENGINE;
}

static void init_all(void)
{
    shim_real_init();
    if (getauxval(AT_SECURE))
        return;
    /* rudp-run's check of the settings before it starts the program: the
     * answer is the exit status, before main() */
    if (getenv("RUDP_CONFIG_CHECK")) {
        int bad = shim_config_load(1) < 0;
        if (bad)
            shim_config_tell(2);
        syscall(SYS_exit_group, bad ? 2 : 0);
    }
    /* A bad setting: no silent fallback to kernel TCP or to defaults, and
     * no exit either (ls, sh, make run as they would): the shim stays out
     * of the way, and the first TCP socket fails saying why. */
    if (shim_config_load(0) < 0) {
        refused = 1;
        return;
    }
    active = 1;
    shim_log_set_conn_check(is_bridge); /* no log line into a connection */
    shim_ports_init(); /* what the engine calls of them (hooks.h) */
    shim_lifetime_init();
    shim_procenv_init();
    shim_execpass_adopt(); /* what the keeper of the image before passes */
    shim_slots_adopt(); /* connections inherited over exec: their state */
    shim_newimage_init();
    shim_exechand_adopt(); /* ... and those still racing kernel TCP */
    shim_signals_init();
    shim_fault_init(); /* the guarded copies' handler (base/fault.c) */
    shim_sandbox_start(); /* a seccomp filter inherited over exec */
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

int shim_sock_foreign_served(void)
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
    shim_kept_flush(); /* the child's reads of them are the kernel's */
    shim_epoll_forked(); /* a set closed later may live on in the child */
    shim_engine_atfork_prepare();
    shim_appfd_atfork_prepare();
    shim_front_atfork_prepare();
    shim_slots_atfork_prepare();
    shim_fdtab_atfork_prepare();
    shim_epollreg_atfork_prepare();
    shim_relays_atfork_prepare(); /* the engine starts relays under its lock */
    shim_signals_atfork_prepare(); /* last: a leaf lock, taken with every signal held */
}

static void atfork_parent(void)
{
    shim_signals_atfork_parent();
    shim_relays_atfork_parent();
    shim_epollreg_atfork_parent();
    shim_fdtab_atfork_parent();
    shim_slots_atfork_parent();
    shim_front_atfork_parent();
    shim_appfd_atfork_parent();
    shim_engine_atfork_parent();
}

static void atfork_child(void)
{
    shim_signals_atfork_child();
    /* first, as the parent's: relay_mu was taken last (the engine's
     * handler closes fds under ownfds' lock) */
    shim_relays_atfork_child(shim_engines_in_handoff());
    shim_procenv_forked();
    shim_sandbox_atfork_child();
    shim_epollreg_atfork_child();
    shim_fdtab_atfork_child();
    shim_appfd_atfork_child();
    shim_front_atfork_child();
    shim_slots_atfork_child();
    shim_names_atfork_child();
    shim_engine_atfork_child();
}

__attribute__((constructor)) static void shim_constructor(void)
{
    shim_alloc_init(); /* first: its fork handler takes its lock last */
    init();
    /* liburing makes its system calls itself (no syscall() of libc's since
     * 2.2): an IORING_OP_CLOSE is a close the shim never sees, so every
     * lookup asks the kernel (state/fdtab.c's proofs). A liburing opened
     * later with dlopen() is not seen: docs/limits.md. */
    if (shim_lib_loaded("liburing"))
        shim_fd_unseen_always();
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

__attribute__((destructor)) static void shim_destructor(void)
{
    int saved = errno;
    shim_kept_flush(); /* unread at the exit: TCP's reset for them, as before */
    shim_keeper_exit();
    if (shim_cfg.stats)
        shim_engine_print_stats();
    errno = saved;
}

/* ---- what an fd is ---- */

/* A remote front end (rudp-supervise, state.h): a non-blocking connect
 * returned with the app end's buffer small, and the engine's restore, once
 * established, found the supervisor's copy gone (connect.c). The program's next call the
 * supervisor answers on a copy of it (SO_ERROR, getpeername, a connect
 * again: what follows EPOLLOUT) gives it back, once the filler is gone.
 * No copy of our own is kept meanwhile: it would hide the program's close
 * of a connecting socket from the engine. */
static void supervised_sndbuf(shim_fd *rec)
{
    shim_slot *s = shim_slot_get(rec->slot, rec->id);
    uint32_t f = s ? atomic_load(&s->flags) : 0;
    if ((f & SHIM_SLOT_F_SNDBUF) && !(f & SHIM_SLOT_F_FILLER))
        shim_sndbuf_restore(s, rec->fd, rec->ino, rec->sndbuf_restore);
    if (!s || !(atomic_load(&s->flags) & SHIM_SLOT_F_SNDBUF)) {
        rec->sndbuf_restore = 0; /* done (or gone): not asked again */
        shim_fd_put(rec);
    }
}

int shim_sock_ours(int fd, shim_fd *rec, shim_name *n)
{
    if (shim_fd_get(fd, rec) && rec->kind != SHIM_FD_CANDIDATE) {
        if (rec->sndbuf_restore)
            supervised_sndbuf(rec);
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
        if (rec->kind == SHIM_FD_BRIDGED)
            rec->name_pid = (n ? n : &tmp)->pid;
        return 1;
    }
    return 0;
}

int shim_name_of_rec(const shim_fd *rec, shim_name *n)
{
    if (rec->kind != SHIM_FD_BRIDGED || !rec->name_pid)
        return 0;
    n->kind = SHIM_NAME_ENGINE;
    n->slot = rec->slot;
    n->id = rec->id;
    n->pid = rec->name_pid;
    return 1;
}

int shim_sock_ours_slot(int fd, shim_fd *rec, shim_name *n)
{
    if (shim_fd_get(fd, rec) && rec->kind == SHIM_FD_BRIDGED && rec->name_pid) {
        if (rec->sndbuf_restore)
            supervised_sndbuf(rec);
        return shim_name_of_rec(rec, n);
    }
    return shim_sock_ours(fd, rec, n);
}

/* What a TCP socket nobody set an option on reads for the options
 * config_from_socket takes (TCP_KEEPIDLE and the like are the namespace's
 * sysctls): learned from the first such socket connected here, valid once
 * dflt_state is DFLT_KNOWN; one thread at a time learns. */
enum { DFLT_UNKNOWN, DFLT_LEARNING, DFLT_KNOWN };
static struct {
    int nodelay, keepalive, user_timeout_ms, keepidle, keepintvl, keepcnt, cork, reuseport;
} dflt;
static _Atomic int dflt_state;

static void learn_defaults(const shim_fd *rec)
{
    int expect = DFLT_UNKNOWN;
    if (!atomic_compare_exchange_strong(&dflt_state, &expect, DFLT_LEARNING))
        return;
    dflt.nodelay = rec->nodelay;
    dflt.keepalive = rec->keepalive;
    dflt.user_timeout_ms = rec->user_timeout_ms;
    dflt.keepidle = rec->keepidle;
    dflt.keepintvl = rec->keepintvl;
    dflt.keepcnt = rec->keepcnt;
    dflt.cork = rec->cork;
    dflt.reuseport = rec->reuseport;
    atomic_store_explicit(&dflt_state, DFLT_KNOWN, memory_order_release);
}

/* Per-connection settings taken from what the app set on the TCP socket
 * fd: *cfg from the configuration and those, the options into *rec.
 * pristine: nobody set an option on fd (pristine.c), whose options are
 * then those of every such socket, read once. */
static void config_from_socket(int fd, int family, int pristine, rudp_config *cfg, shim_fd *rec)
{
    *cfg = shim_cfg.rudp;
    if (pristine && atomic_load_explicit(&dflt_state, memory_order_acquire) == DFLT_KNOWN) {
        rec->nodelay = dflt.nodelay;
        rec->keepalive = dflt.keepalive;
        rec->user_timeout_ms = dflt.user_timeout_ms;
        rec->keepidle = dflt.keepidle;
        rec->keepintvl = dflt.keepintvl;
        rec->keepcnt = dflt.keepcnt;
        rec->cork = dflt.cork;
        rec->reuseport = dflt.reuseport;
        rec->family = family;
    } else {
        rec->nodelay = get_int(fd, IPPROTO_TCP, TCP_NODELAY);
        rec->keepalive = get_int(fd, SOL_SOCKET, SO_KEEPALIVE);
        rec->user_timeout_ms = get_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT);
        rec->keepidle = get_int(fd, IPPROTO_TCP, TCP_KEEPIDLE);
        rec->keepintvl = get_int(fd, IPPROTO_TCP, TCP_KEEPINTVL);
        rec->keepcnt = get_int(fd, IPPROTO_TCP, TCP_KEEPCNT);
        rec->cork = get_int(fd, IPPROTO_TCP, TCP_CORK);
        rec->reuseport = get_int(fd, SOL_SOCKET, SO_REUSEPORT);
        rec->family = get_int(fd, SOL_SOCKET, SO_DOMAIN);
        if (pristine)
            learn_defaults(rec);
    }
    rudp_time ka, idle, user; /* SO_KEEPALIVE's times, TCP_USER_TIMEOUT (connopts.c) */
    if (shim_connopts_timeouts(rec->keepalive, rec, &ka, &idle, &user)) {
        cfg->keepalive = ka;
        cfg->idle_timeout = idle;
        cfg->user_timeout = user;
    }
    shim_opts_inherit(fd, rec, cfg); /* IP_TOS, TCP_CONGESTION, ... (options.c) */
    shim_connopts_config(fd, rec, cfg); /* SO_SNDBUF, TCP_NOTSENT_LOWAT, ... */
}

void shim_sock_takeover(int fd, int family, int pristine, shim_takeover *t)
{
    t->status = real_fcntl(fd, F_GETFL);
    t->fdflags = real_fcntl(fd, F_GETFD);
    memset(&t->rec, 0, sizeof t->rec);
    config_from_socket(fd, family, pristine, &t->cfg, &t->rec);
    t->rec.v6only = family == AF_INET6 ? get_int(fd, IPPROTO_IPV6, IPV6_V6ONLY) : 0;
}

/* Socket-level options that mean the same on the AF_UNIX socket that
 * stands in for a TCP one, and that TCP carries from a socket to the one
 * replacing it here (and from a listener to what it accepts): timeouts,
 * linger, keepalive, OOB inline, address reuse, priority, low-water mark. */
static const int inherited_opts[] = {
    SO_RCVTIMEO, SO_SNDTIMEO, SO_LINGER, SO_KEEPALIVE, SO_OOBINLINE,
    SO_REUSEADDR, SO_PRIORITY, SO_RCVLOWAT,
};

/* What a new AF_UNIX stream socket reads for each of inherited_opts,
 * learned from the first one made here (the kernel's defaults: no
 * timeouts, no linger, low-water mark 1...): valid once fresh_state is
 * FRESH_KNOWN; one thread at a time learns (FRESH_LEARNING). */
#define N_INHERITED (sizeof inherited_opts / sizeof inherited_opts[0])
enum { FRESH_UNKNOWN, FRESH_LEARNING, FRESH_KNOWN };
static uint8_t fresh_val[N_INHERITED][32];
static socklen_t fresh_len[N_INHERITED];
static _Atomic int fresh_state;

/* Whether a pristine TCP socket (pristine.c) holds each of inherited_opts
 * at a fresh AF_UNIX socket's value, as sock_init_data() gives every new
 * socket the same: 0 not known yet, 1 yes (nothing to copy from one), -1
 * no (this kernel differs: copied as any). */
static _Atomic int pristine_same;

/* Copies from -> to; `to` new since its socket() (fresh): an option `from`
 * holds at the new socket's own value is neither read on `to` nor set, which
 * saves two system calls per option on every connect (prog_many: 29
 * getsockopt per connect before). `from` pristine too: nothing is read, once
 * the first such copy found nothing to copy. */
static int copy_options(int from, int to, int fresh, int pristine)
{
    int saved = errno, n = 0;
    if (fresh && pristine && atomic_load_explicit(&pristine_same, memory_order_acquire) == 1)
        return 0;
    int known = fresh && atomic_load_explicit(&fresh_state, memory_order_acquire) == FRESH_KNOWN;
    int differs = 0;
    uint8_t have[N_INHERITED][32];
    socklen_t hlen[N_INHERITED]; /* 0: `to` not read */
    for (size_t i = 0; i < N_INHERITED; i++) {
        uint8_t want[32];
        socklen_t wl = sizeof want;
        hlen[i] = 0;
        if (real_getsockopt(from, SOL_SOCKET, inherited_opts[i], want, &wl) < 0)
            continue;
        if (known && wl == fresh_len[i] && memcmp(want, fresh_val[i], wl) == 0)
            continue; /* what `to` holds already */
        differs = 1;
        socklen_t hl = sizeof have[i];
        if (real_getsockopt(to, SOL_SOCKET, inherited_opts[i], have[i], &hl) == 0)
            hlen[i] = hl;
        if ((hlen[i] == 0 || wl != hl || memcmp(want, have[i], wl) != 0) &&
            real_setsockopt(to, SOL_SOCKET, inherited_opts[i], want, wl) == 0)
            n++;
    }
    /* The first fresh socket read in full (each option read before any was
     * set on it) gives the defaults. */
    int whole = fresh && !known;
    for (size_t i = 0; whole && i < N_INHERITED; i++)
        whole = hlen[i] > 0;
    int expect = FRESH_UNKNOWN;
    if (whole && atomic_compare_exchange_strong(&fresh_state, &expect, FRESH_LEARNING)) {
        for (size_t i = 0; i < N_INHERITED; i++) {
            memcpy(fresh_val[i], have[i], hlen[i]);
            fresh_len[i] = hlen[i];
        }
        atomic_store_explicit(&fresh_state, FRESH_KNOWN, memory_order_release);
    }
    if (known && pristine) {
        expect = 0;
        atomic_compare_exchange_strong(&pristine_same, &expect, differs ? -1 : 1);
    }
    errno = saved;
    return n;
}

int shim_sock_copy_options(int from, int to)
{
    return copy_options(from, to, 0, 0);
}

static int replace(int fd, int nfd, int status_flags, int fd_flags, int keep_regs, int fresh,
                   int pristine)
{
    int copied = copy_options(fd, nfd, fresh, pristine);
    /* pristine: no owner, which only fcntl and ioctl set (pristine.c) */
    int err = shim_fdswap(fd, nfd, status_flags, fd_flags, keep_regs, pristine);
    if (err < 0)
        return err;
    real_close(nfd);
    return copied;
}

int shim_replace_fd(int fd, int nfd, int status_flags, int fd_flags, int keep_regs)
{
    return replace(fd, nfd, status_flags, fd_flags, keep_regs, 0, 0);
}

int shim_replace_fd_fresh(int fd, int nfd, int status_flags, int fd_flags, int keep_regs,
                          int pristine)
{
    return replace(fd, nfd, status_flags, fd_flags, keep_regs, 1, pristine);
}

/* ---- socket ---- */

SHIM_EXPORT int socket(int domain, int type, int protocol)
{
    int on = init_own();
    int tcp = (domain == AF_INET || domain == AF_INET6) && (type & 0xf) == SOCK_STREAM &&
              (protocol == 0 || protocol == IPPROTO_TCP);
    if (tcp && refused)
        return fail(-shim_config_refuse());
    /* Every TCP socket starts as a real one: options, bind and a
     * non-redirected connect behave exactly as the kernel's. Its epoll
     * registrations are noted until connect()/listen() (epollreg.c). */
    int fd = real_socket(domain, type, protocol);
    if (fd >= 0 && on && tcp) {
        int saved = errno;
        shim_epollreg_mark(fd);
        shim_pristine_mark(fd, shim_fd_ino(fd), domain); /* connect() need not read its options */
        errno = saved;
    }
    return fd;
}

int shim_sock_kernel_kept(int fd, int r)
{
    if (r == 0 || errno == EINPROGRESS) {
        int saved = errno;
        shim_epollreg_unmark(fd);
        shim_epollreg_forget(fd);
        errno = saved;
    }
    return r;
}

/* ---- names ---- */

static int name_call(int fd, struct sockaddr *addr, socklen_t *len, int peer)
{
    if (!shim_init())
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
        /* Addresses come only from an engine end of ours (shim_sock_ours(): a peer we
         * hold no record of is checked by its credentials). An engine end's
         * name carries both addresses and is what shim_sock_ours() decodes when there
         * is one: an accepted socket's own name is only its listener's
         * (maybe a wildcard), so it must not answer getsockname. */
        if (shim_sock_ours(fd, &rec, &n)) {
            errno = saved;
            if (!peer)
                return copy_out(&n.local, n.family, addr, len);
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
                return copy_out(&n.peer, n.family, addr, len);
            }
        }
        errno = saved;
    } else if (!peer) {
        shim_reconnect_name(fd, &ss, &sl); /* the fresh socket of a failed connect */
    }
    return shim_addr_out(&ss, sl, addr, len);
}

SHIM_EXPORT int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
    return name_call(fd, addr, len, 0);
}

SHIM_EXPORT int getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
    return name_call(fd, addr, len, 1);
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
    shim_slot *h = on ? shim_epoll_hint(fd) : NULL;
    /* the kernel's answer for an fd added: bytes kept for it (or for a
     * number we cannot place, which may be a copy of one) passed on */
    if (on && (!h || atomic_load_explicit(&h->kept, memory_order_acquire)))
        shim_kept_flush();
    int r = real_epoll_ctl(epfd, op, fd, ev);
    if (r == 0 && on)
        shim_epoll_cand_note(epfd, op, fd, ev); /* epoll.c: the app thread's wait */
    if (r == 0 && h) {
        int saved = errno;
        shim_epoll_reg_note(h, epfd, op, fd, ev); /* epoll.c: what a wait may tell from memory */
        errno = saved;
    }
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

/* ---- shutdown, close ---- */

SHIM_EXPORT int shutdown(int fd, int how)
{
    init();
    shim_kept_flush(); /* a shutdown of reading leaves them readable, as TCP's */
    shim_slot *s = how != SHUT_RD ? shim_fd_hinted(fd) : NULL;
    if (s) /* before it: a write after it must not be taken in memory */
        atomic_fetch_or(&s->flags, SHIM_SLOT_F_WR_SHUT);
    shim_fd rec;
    if (!s && (how == SHUT_RD || how == SHUT_WR || how == SHUT_RDWR) &&
        shim_sock_ours(fd, &rec, NULL) && rec.kind == SHIM_FD_LISTENER) {
        /* TCP's listener ignores SHUT_WR and stops at SHUT_RD (inet_shutdown) */
        return how == SHUT_WR ? 0 : shim_unlisten(fd, &rec);
    }
    /* On a bridged socket the unix shutdown is the TCP one: the engine sees
     * EOF and sends a FIN after the queued data. */
    return real_shutdown(fd, how);
}

SHIM_EXPORT int close(int fd)
{
    if (!init())
        return real_close(fd);
    int saved = errno;
    if ((shim_ownfds_has(fd) || shim_slots_fd(fd)) && !shim_procenv_foreign())
        return 0; /* a program closing every fd must not take the engine's */
    if (shim_engine_app_kept_any()) {
        /* unread at the close: TCP's reset for them, as before; only a
         * kept connection's own number (a file's close leaves them) */
        shim_slot *kh = shim_fd_hinted(fd);
        if (kh && atomic_load_explicit(&kh->kept, memory_order_acquire))
            shim_engine_app_unkeep_all(0);
    }
    shim_epoll_cand_forget(fd); /* as an epoll set (epoll.c): its number's generation too */
    shim_fd rec;
    uint64_t closed_listener = 0;
    /* In a child with an fd table of its own the records are that table's
     * (fdtab.c, epollreg.c): a copy of one of ours keeps ours. */
    int found = shim_fd_get(fd, &rec);
    /* A front end that does not see the program's close (rudp-supervise
     * closing its copy of the program's socket): the program's own close,
     * which we never see, is the one that counts. The record stays with
     * the file (the remote front end, state.h), the engine may still give the
     * buffer back (shim_sndbuf_restore checks the inode); only a SO_LINGER
     * {1, 0} set meanwhile is noted for the program's close. A listener's
     * engine is told, as for a listener a forked child still holds: it
     * then checks that the program holds it still (at each new client and
     * every second), so that once the program closed it a new client is
     * refused, as by TCP, not reset after its handshake. */
    int copy = found && !shim_front_can(SHIM_FRONT_SEES_CLOSE);
    /* what came before the close and waits in the connection's socket:
     * into the bridge first, where the close finds it unread (TCP's reset
     * for bytes in its receive queue, not a FIN then a reset) */
    if (found && !copy && rec.kind == SHIM_FD_BRIDGED)
        shim_engine_app_closing(fd);
    if (found) {
        shim_name n;
        if (rec.kind == SHIM_FD_BRIDGED &&
            (shim_name_of_rec(&rec, &n) || shim_name_get(fd, 1, &n) == 1)) {
            /* Our engine must not look at this fd number once it is
             * closed (shim_sndbuf_restore). */
            shim_slot *fs = n.pid == shim_procenv_self() && !copy ? slot_for(&n) : NULL;
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
        if (copy)
            found = 0; /* nothing of the number to forget or lock */
        else
            shim_fd_del(fd);
    }
    shim_epollreg_unmark(fd);
    shim_epollreg_forget(fd);
    shim_pristine_forget(fd);
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

/* dup2()/dup3() over a listener's number close that listener, as close()
 * would, and its engine must learn of it: else it went on taking clients
 * after their handshake and reset them at the hand-over, 2 of every 10
 * connects in the 0.4 s after (a helper's hunt). Java closes a
 * ServerSocket this way when a thread waits in accept(): a shut socket
 * dup2()'d over the number wakes it, and the number is closed once the
 * accept() returned (the engine then finds the listener gone: a blocked
 * accept() holds its file, as TCP's holds its socket, so it is asked
 * again at each new client). Other numbers are the kernel's business. */
int shim_dup_over(int oldfd, int newfd, int flags, int three)
{
    if (!init() || oldfd == newfd)
        return three ? real_dup3(oldfd, newfd, flags) : real_dup2(oldfd, newfd);
    /* before the call too: a lookup racing it finds no old proof */
    shim_fd_unseen();
    int saved = errno;
    shim_fd rec;
    shim_name n;
    uint64_t listener = 0;
    if (shim_front_can(SHIM_FRONT_SEES_CLOSE) && shim_fd_get(newfd, &rec) &&
        rec.kind == SHIM_FD_LISTENER && shim_name_get(newfd, 0, &n) == 1 &&
        n.pid == shim_procenv_owner())
        listener = rec.id;
    errno = saved;
    shim_kept_flush(); /* the copy reads by the kernel, as F_DUPFD's */
    shim_epoll_dup_seen(oldfd); /* a copy's registrations are not followed (epoll.c) */
    int r = three ? real_dup3(oldfd, newfd, flags) : real_dup2(oldfd, newfd);
    if (r >= 0) {
        shim_epoll_cand_forget(newfd); /* an epoll set at newfd is gone */
        shim_fd_unseen();              /* newfd's record is proved again (fdtab.c) */
    }
    if (r < 0 || !listener)
        return r;
    saved = errno;
    shim_fd_del(newfd);
    shim_epollreg_unmark(newfd);
    shim_epollreg_forget(newfd);
    shim_pristine_forget(newfd);
    shim_engine_listener_closed(listener);
    errno = saved;
    return r;
}

SHIM_EXPORT int dup(int fd)
{
    if (init()) {
        shim_kept_flush(); /* the copy reads by the kernel, as F_DUPFD's */
        shim_epoll_dup_seen(fd);
    }
    return real_dup(fd);
}

SHIM_EXPORT int dup2(int oldfd, int newfd)
{
    return shim_dup_over(oldfd, newfd, 0, 0);
}

SHIM_EXPORT int dup3(int oldfd, int newfd, int flags)
{
    return shim_dup_over(oldfd, newfd, flags, 1);
}

/* glibc exports these names of close and dup2 too: a program calling
 * them closes or replaces a number as surely (state/fdtab.c's proofs);
 * mq_close is a close() of the number it is given, whatever file it is */
int __close(int fd);
int __dup2(int oldfd, int newfd);

SHIM_EXPORT int mq_close(mqd_t d)
{
    return close(d);
}

SHIM_EXPORT int __close(int fd)
{
    return close(fd);
}

SHIM_EXPORT int __dup2(int oldfd, int newfd)
{
    return shim_dup_over(oldfd, newfd, 0, 0);
}
