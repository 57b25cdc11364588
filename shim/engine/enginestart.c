/*
 * enginestart.c: an engine's start: its core context, with the callbacks
 * the core calls (a datagram to send, a connection freed, a log line),
 * keyed mode, the receive buffers, epoll and the command eventfd, then
 * the thread. A start that fails says why and undoes itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>
#include <sodium.h>

#include "internal.h"
#include "enginepriv.h"
#include "udpio.h"

#include "base/poison.h"

static void on_conn_freed(void *user, uint32_t sock)
{
    struct engine *e = user;
    if (sock >= e->nsocks || !e->socks[sock])
        return;
    esock *s = e->socks[sock];
    /* a stopped listener's socket that this connection kept (its
     * features may let the rest go now: ports' SO_REUSEPORT group) */
    const shim_listener_ops *lo = shim_hook.listener;
    if (!s->listener && s->listener_id && s->refs > 1 && lo && lo->conn_ended)
        lo->conn_ended(e, s);
    shim_esock_unref(s);
}

static void on_send(void *user, uint32_t sock, const rudp_addr *peer, const rudp_addr *local,
                    uint64_t tag, const uint8_t *buf, size_t len)
{
    struct engine *e = user;
    if (sock >= e->nsocks || !e->socks[sock])
        return;
    esock *s = e->socks[sock];
    SHIM_LOG(RUDP_LOG_DEBUG, "udp %u: send %zu bytes %s", sock, len, rudp_packet_name(buf, len));
    /* Queued, and sent at the end of this engine turn (udpio.c): a
     * listener's socket serves many peers, even after the listener itself
     * is closed, so unconnected sockets name the peer. */
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    shim_udpio_ctl tmp;
    const shim_udpio_ctl *ctl = NULL;
    int connected = s->connected && memcmp(peer, &s->peer, sizeof *peer) == 0;
    if (!connected) { /* a client's too, to another address than its socket's (portmove.c) */
        sl = shim_from_rudp_addr(peer, &ss);
        ctl = shim_pktctl_for(s, peer, local, tag, &tmp); /* an accepted connection's own */
    }
    shim_udpio_send(e->io, s->fd, connected, &ss, sl, ctl, buf, len);
}

/* The core builds a DATA packet where it will be sent from (udpio.c). */
static uint8_t *on_tx_room(void *user, size_t len)
{
    struct engine *e = user;
    return shim_udpio_room(e->io, len);
}

static uint64_t on_unread(void *user, rudp_conn *c)
{
    (void)user;
    return shim_bridge_unread(c);
}

static void on_log(void *user, int level, const char *msg)
{
    (void)user;
    shim_log(level, "%s", msg);
}

/* Keyed mode (RUDP_KEY_FILE): the context's ephemeral X25519 keys come
 * from a generator of their own, seeded apart from the context's seed so
 * that nothing learnt of one tells of the other. 0 without a key. */
static int key_ctx(rudp_ctx *ctx)
{
    const uint8_t *key = shim_key();
    if (!key)
        return 0;
    uint8_t seed[32];
    int err = getrandom(seed, sizeof seed, 0) == (ssize_t)sizeof seed
                  ? rudp_ctx_set_key(ctx, key, seed)
                  : -EIO;
    sodium_memzero(seed, sizeof seed);
    /* Several engines share a listener's port (SO_REUSEPORT) but each
     * resets only IDs tagged with its own index (forward.c hands it the
     * others'), so none gives away the token of a connection another has. */
    if (err == 0 && shim_cfg.reset_id[0])
        err = rudp_ctx_set_reset_id(ctx, shim_cfg.reset_id, strlen(shim_cfg.reset_id));
    if (err < 0) /* connect() and listen() fail with err: say why */
        SHIM_LOG(RUDP_LOG_ERROR, "RUDP_KEY_FILE: keyed mode cannot start: %s",
                 err == -ENOSYS ? "libsodium failed to initialise" : shim_strerror(-err));
    /* Without OpenSSL's AES-256-GCM every datagram is libsodium's, about
     * half as fast on full datagrams: said once, so an operator need not
     * find it by measuring. */
    static atomic_int said;
    const char *why = err == 0 ? shim_aead_openssl_unavailable() : NULL;
    if (why && !atomic_exchange(&said, 1))
        SHIM_LOG(RUDP_LOG_INFO, "keyed mode: OpenSSL's AES-256-GCM unavailable (%s); "
                                "libsodium's ciphers for every datagram",
                 why);
    return err;
}

/* 32 bytes from the kernel's generator. getrandom(2), not /dev/urandom:
 * a process may chroot or leave for an empty mount namespace before its
 * first socket starts the engine, and after start-up the shim opens
 * nothing by path. It blocks only until the kernel's pool is first
 * initialised at boot (man 2 getrandom); at most 256 bytes are never cut
 * short by a signal once it is. */
static int random_seed(uint8_t seed[32])
{
    ssize_t n;
    do
        n = getrandom(seed, 32, 0);
    while (n < 0 && errno == EINTR);
    if (n == 32)
        return 0;
    return n < 0 ? -errno : -EIO;
}

/* The application sees only its connect() or listen() fail: the reason
 * (the step, named, and its errno) is said here, once per attempt. */
static void start_failed(const struct engine *e, const char *what, int err)
{
    SHIM_LOG(RUDP_LOG_ERROR, "engine %d cannot start: %s: %s; connect() and listen() fail",
             (int)(e - G.e), what, shim_strerror(-err));
}

/* What a failed start leaves behind, undone: e can start again. */
static void start_undo(struct engine *e)
{
    if (e->evfd >= 0)
        shim_close_owned(e->evfd);
    if (e->tfd >= 0)
        shim_close_owned(e->tfd);
    shim_free(e->by_slot);
    if (e->epfd >= 0)
        shim_close_owned(e->epfd);
    if (e->iofd >= 0 && e->iofd != e->epfd)
        shim_close_owned(e->iofd);
    shim_free(e->ioevs);
    if (e->ctx)
        rudp_ctx_free(e->ctx);
    shim_udpio_free(e->io);
    shim_free(e->msgs);
    shim_free(e->iovs);
    shim_free(e->addrs);
    shim_free(e->ctrls);
    shim_free(e->rxbuf);
    shim_free(e->ext);
    shim_engine_graves_empty(e);
    shim_free(e->graves);
    shim_txring_free_arena(e);
    memset(e, 0, sizeof *e);
    e->epfd = e->iofd = e->evfd = e->tfd = -1;
}

/* The eventfd is readable (the engine's epoll, hooks.h): e runs the
 * commands queued for it. */
static void cmd_event(void *obj, uint32_t events, rudp_time now)
{
    (void)events;
    shim_engine_run_commands(SHIM_CONTAINER(obj, struct engine, event_w), now);
}

static const shim_watch_ops cmd_ops = {.event = cmd_event};

/* ---- the engines' own fd table (RUDP_FD_TABLE) ----
 *
 * Over TCP a connection costs the program one fd; here it costs the
 * engine one or two more (its end of the bridge, a client's UDP socket).
 * In the program's table they count against its RLIMIT_NOFILE: a program
 * that holds N connections could open fewer other files than over TCP,
 * or none. Where the hard limit leaves no room to raise the soft one far
 * (below SHIM_FD_TABLE_AUTO_BELOW), or RUDP_FD_TABLE=own, each engine's
 * thread leaves the program's table (unshare(CLONE_FILES)): its copy of
 * the table keeps the engine's own fds at the same numbers, the rest of
 * the copy is closed, and the program's table then closes the engine's,
 * but for the eventfd by which the program's threads wake it. Every later
 * fd of the engine is made in its table, or copied there from the
 * program's (adopt.c, as for a child with a table of its own), and the
 * limit bounds each table apart: the program keeps its whole limit for
 * its own files, and each engine as much for its own; engines.c starts
 * another when one's table is full. The app threads' own sends and
 * receives, which run an engine's turn on the program's table, are off. */

static int want_apart(void)
{
    /* rudp-supervise's (the remote front end): the program's table is in
     * another process already, and this one's holds the engine's alone */
    if (shim_procenv_table() != 0 || shim_cfg.fd_table == SHIM_FD_TABLE_SHARED ||
        !shim_front_can(SHIM_FRONT_OWNS_NUMBERS))
        return 0;
    if (shim_cfg.fd_table == SHIM_FD_TABLE_OWN)
        return 1;
    struct rlimit rl;
    return getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
           rl.rlim_max < SHIM_FD_TABLE_AUTO_BELOW;
}

/* Whether an engine's UDP sockets and bridges get an epoll set of their
 * own (iofd, in its set): what an app thread's wait for many connections
 * takes from it at once (appwhole.c). One fd more per engine, and the app
 * threads' set: only where app threads may take engines' turns (not apart)
 * and fds are not scarce (a hard limit of SHIM_NEST_NOFILE or more; the
 * soft limit is raised to it, raise_soft_limit). Else iofd is epfd. */
#define SHIM_NEST_NOFILE 1024
static int want_nest(int apart)
{
    struct rlimit rl;
    return shim_cfg.app_recv && !apart && getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
           rl.rlim_max >= SHIM_NEST_NOFILE;
}

/* e's set of sockets and bridges (want_nest), or epfd itself: also where
 * the kernel refuses the set (EMFILE before the soft limit is raised), an
 * engine without it being one whose app threads wait as before. */
static void make_io_set(struct engine *e)
{
    e->iofd = e->epfd;
    if (!want_nest(G.nrun == 0 ? want_apart() : shim_fds_apart()))
        return;
    if (!e->ioevs)
        e->ioevs = shim_calloc(SHIM_IO_EVENTS, sizeof *e->ioevs); /* its batch */
    int fd = e->ioevs ? epoll_create1(EPOLL_CLOEXEC) : -1;
    if (fd < 0)
        return;
    fd = shim_fd_move_high(fd);
    shim_watch_set(&e->io_w, &shim_engine_io_ops);
    struct epoll_event io = {.events = EPOLLIN, .data.ptr = &e->io_w};
    if (real_epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &io) < 0) {
        real_close(fd);
        return;
    }
    shim_own_fd(fd, 1);
    e->iofd = fd;
}

static void sort_ints(int *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            int t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
}

/* In the engine's new table: every fd closed but the n of keep (sorted),
 * with close_range(2) over the gaps (Linux 5.9), else one by one. */
static void close_all_but(const int *keep, int n)
{
    unsigned from = 0;
    for (int i = 0; i <= n; i++) {
        unsigned to = i < n ? (unsigned)keep[i] : ~0u;
        if (to > from) {
            if (syscall(SYS_close_range, from, to - 1, 0) < 0) {
                struct rlimit rl;
                unsigned lim = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (1u << 20)
                                   ? (unsigned)rl.rlim_cur
                                   : 1u << 20;
                for (unsigned fd = from; fd < to && fd < lim; fd++)
                    real_close((int)fd);
            }
        }
        if (i < n)
            from = (unsigned)keep[i] + 1;
    }
}

/* The fds an engine other than the first keeps of the program's table:
 * its own (made there by its starter), the log file, the qlog directory,
 * fd 2 (log lines); in keep, the count returned. */
static int own_fds(const struct engine *e, int *keep)
{
    int n = 0;
    int fds[7] = {e->epfd, e->iofd, e->evfd, e->tfd, shim_cfg.log_fd, shim_cfg.qlog_dirfd, 2};
    for (int i = 0; i < 7; i++) {
        int dup = 0;
        for (int j = 0; j < n; j++)
            dup |= keep[j] == fds[i];
        if (fds[i] >= 0 && !dup)
            keep[n++] = fds[i];
    }
    return n;
}

/* The thread of an engine that leaves the program's table: 1 in
 * apart_state once it has (then its loop), -1 if the kernel refused
 * (a seccomp profile without unshare): the first engine stays in the
 * program's table, a later one ends (its start fails). */
/* Whether this thread may copy the program's fds once it has left its
 * table: pidfd_getfd(2) (Linux 5.6), which a container's seccomp profile
 * may refuse without CAP_SYS_PTRACE; tried on the eventfd. */
static int can_take(const struct engine *e)
{
    int c = shim_fds_probe_take(e->evfd);
    int err = errno;
    if (c >= 0)
        real_close(c);
    if (c < 0)
        SHIM_LOG(RUDP_LOG_INFO, "engine %d stays in the program's fd table: pidfd_getfd: %s",
                 (int)(e - G.e), shim_strerror(err));
    return c >= 0;
}

/* Places for the other engines' eventfds in this table (types.h: spare),
 * taken while it has room. */
static void keep_spares(struct engine *e)
{
    for (int i = 0; i < SHIM_ENGINES_MAX; i++) {
        /* high at once (a low number, even for a moment, is one the
         * program's table has too: TSan, which knows fds by number, took
         * that for a race) */
        int d = i == (int)(e - G.e) ? -1 : real_fcntl(e->evfd, F_DUPFD_CLOEXEC, SHIM_FD_BASE);
        if (d < 0 && i != (int)(e - G.e))
            d = shim_fd_move_high(real_fcntl(e->evfd, F_DUPFD_CLOEXEC, 3));
        if (d >= 0)
            shim_own_fd(d, 1);
        atomic_store(&e->spare[i], d);
    }
}

static void *engine_apart_main(void *arg)
{
    struct engine *e = arg;
    int k = (int)(e - G.e);
    int st = -1;
    /* CLOSE_RANGE_UNSHARE where unshare itself is refused: the range is
     * one number nobody holds */
    if (can_take(e) && (syscall(SYS_unshare, CLONE_FILES) == 0 || /* not our unshare() */
                        syscall(SYS_close_range, ~0u >> 1, ~0u >> 1, CLOSE_RANGE_UNSHARE) == 0)) {
        /* the first engine: the program's set at this moment (the engine's
         * fds, the log file, the qlog directory); a later one its own; and
         * fd 2, where log lines go */
        int keep[256];
        int n = k == 0 ? shim_ownfds_list(keep, 255) : own_fds(e, keep);
        int have2 = 0;
        for (int i = 0; i < n; i++)
            have2 |= keep[i] == 2;
        if (!have2)
            keep[n++] = 2;
        sort_ints(keep, n); /* no libc allocator on an engine thread */
        close_all_but(keep, n);
        shim_fds_enter_engines(k);
        e->apart_tid = (pid_t)syscall(SYS_gettid);
        atomic_store(&e->evfd_in[k + 1], e->evfd); /* the same number here */
        for (int i = 0; i < n; i++)
            if (keep[i] != 2 || shim_cfg.log_fd == 2)
                shim_own_fd(keep[i], 1);
        keep_spares(e);
        st = 1;
    }
    atomic_store(&e->apart_state, st);
    syscall(SYS_futex, (uint32_t *)&e->apart_state, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    if (st < 0 && k > 0)
        return NULL; /* its starter undoes the start */
    return shim_engine_loop(e);
}

/* The starter's wait for engine_apart_main's verdict: 1 apart, -1 not. */
static int wait_apart(struct engine *e)
{
    int st;
    while ((st = atomic_load(&e->apart_state)) == 0)
        syscall(SYS_futex, (uint32_t *)&e->apart_state, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    if (st < 0)
        SHIM_LOG(RUDP_LOG_INFO, "engine %d does not keep its fds apart (RUDP_FD_TABLE): the "
                                "kernel refused", (int)(e - G.e));
    return st;
}

/* Each redirected connection costs the engine one or two fds next to the
 * app's one where they share a table: raise the soft limit where the hard
 * limit allows (as at 49ed96f, before the control socket is made). */
static void raise_soft_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 && rl.rlim_max > rl.rlim_cur) {
        rl.rlim_cur = rl.rlim_max < 65536 ? rl.rlim_max : 65536;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* The engine left: the program's table closes the engine's fds but the
 * eventfd (the program's threads wake it by it). */
static void left_program_table(struct engine *e)
{
    int fds[4] = {e->epfd, e->iofd != e->epfd ? e->iofd : -1, e->tfd,
                  e == &G.e[0] ? shim_control_fd() : -1};
    for (int i = 0; i < 4; i++)
        if (fds[i] >= 0)
            shim_close_owned(fds[i]);
    shim_fds_set_apart(1);
    SHIM_LOG(RUDP_LOG_INFO, "engine %d keeps its fds in a table of its own (RUDP_FD_TABLE)",
             (int)(e - G.e));
}

int shim_engine_start_locked(struct engine *e)
{
    rudp_ctx_ops ops = {
        .send_from = on_send, .log = on_log, .conn_freed = on_conn_freed, .tx_room = on_tx_room,
        .unread = on_unread};
    if (shim_hook.listener)
        ops.same_endpoint = shim_hook.listener->same_endpoint; /* portshare.c */
    memset(e, 0, sizeof *e);
    e->epfd = e->iofd = e->evfd = e->tfd = -1;
    shim_txring_init(e);
    e->retry_at = RUDP_TIME_NEVER;
    e->fallback_at = RUDP_TIME_NEVER;
    e->roam_at = RUDP_TIME_NEVER;
    e->lease_at = RUDP_TIME_NEVER;
    e->kept_at = RUDP_TIME_NEVER;
    e->mod_at = RUDP_TIME_NEVER;
    e->ctl_at = RUDP_TIME_NEVER;
    uint8_t seed[32];
    int err = random_seed(seed);
    if (err < 0) {
        start_failed(e, "getrandom", err);
        return -EIO; /* nothing to undo; a later connect() or listen() tries again */
    }
    const char *what = "rudp_ctx_new";
    err = rudp_ctx_new(&ops, e, seed, &shim_cfg.rudp, shim_alloc_core(), &e->ctx);
    sodium_memzero(seed, sizeof seed);
    if (err < 0)
        goto fail;
    /* OpenSSL's AES-256-GCM where it measures faster (base/aead_openssl.c);
     * started only if the context is keyed, so an unkeyed program never
     * loads libcrypto */
    what = "AEAD backend";
    if ((err = rudp_ctx_set_aead(e->ctx, shim_aead_openssl())) < 0)
        goto fail;
    what = "connection-ID tag";
    /* the engine's index in its connection IDs (forward.c) */
    unsigned tag_bits = shim_hook.relay && shim_hook.relay->tag_bits ? shim_hook.relay->tag_bits()
                                                                      : 0;
    if ((err = rudp_ctx_set_cid_tag(e->ctx, tag_bits, (unsigned)(e - G.e))) < 0)
        goto fail;
    /* above it, the member tag of a listener's group of processes
     * (xgroup.c): every process's IDs the same layout */
    if ((err = rudp_ctx_set_member_bits(e->ctx, SHIM_XG_BITS)) < 0)
        goto fail;
    what = "keyed mode";
    if ((err = key_ctx(e->ctx)) < 0)
        goto fail;
    /* RUDP_MEMORY bounds the process: each engine may hold its share.
     * RUDP_ENGINES=N starts all N: an equal share each. Started by load
     * (the default), the k-th engine takes 1/k of it when it starts, so a
     * program that keeps one engine, most of them, has the whole budget,
     * as with one engine before; one that grows to k engines may hold up
     * to 1 + 1/2 + ... + 1/k of it (2.08x at 4), the price of not
     * re-dividing a running engine's budget from another thread. */
    uint64_t share = shim_cfg.engines_auto ? (uint64_t)(e - G.e) + 1 : (uint64_t)shim_cfg.engines;
    rudp_ctx_set_memory_limit(e->ctx, shim_cfg.memory / share);
    rudp_ctx_set_log_level(e->ctx, shim_cfg.log_level);
    shim_qlog_attach(e->ctx);
    what = "memory";
    err = -ENOMEM;
    e->io = shim_udpio_new(shim_cfg.offload);
    if (e->io)
        shim_udpio_on_error(e->io, shim_roam_send_error, e);
    e->msgs = shim_calloc(RX_BATCH, sizeof *e->msgs);
    e->iovs = shim_calloc(RX_BATCH, sizeof *e->iovs);
    e->addrs = shim_calloc(RX_BATCH, sizeof *e->addrs);
    e->ctrls = shim_calloc(RX_BATCH, sizeof *e->ctrls);
    e->rxbuf = shim_malloc((size_t)RX_BATCH * RX_SIZE);
    /* a feature's area (hooks.h), zeroed */
    e->ext = shim_hook.ext.engine ? shim_calloc(1, shim_hook.ext.engine) : NULL;
    if (!e->io || !e->msgs || !e->iovs || !e->addrs || !e->ctrls || !e->rxbuf ||
        (shim_hook.ext.engine && !e->ext))
        goto fail;
    what = "epoll_create1";
    if ((e->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
        goto fail_errno;
    e->epfd = shim_fd_move_high(e->epfd);
    shim_own_fd(e->epfd, 1);
    make_io_set(e);
    what = "eventfd";
    if ((e->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
        goto fail_errno;
    e->evfd = shim_fd_move_high(e->evfd);
    shim_own_fd(e->evfd, 1);
    e->evfd_ino = shim_fd_ino(e->evfd);
    for (int t = 0; t <= SHIM_ENGINES_MAX; t++)
        atomic_store(&e->evfd_in[t], t == 0 ? e->evfd : -1);
    shim_watch_set(&e->event_w, &cmd_ops);
    struct epoll_event ee = {.events = EPOLLIN, .data.ptr = &e->event_w};
    what = "epoll_ctl";
    if (real_epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->evfd, &ee) < 0)
        goto fail_errno;
    /* app threads' own sends (appsend.c); without a timerfd they write
     * through the bridge, as before */
    if ((err = shim_appsend_start(e)) < 0)
        SHIM_LOG(RUDP_LOG_DEBUG, "engine %d: timerfd: %s; app threads write through the bridge",
                 (int)(e - G.e), shim_strerror(-err));

    /* The first engine of a process whose fds are few keeps its own in a
     * table of their own (RUDP_FD_TABLE): its thread leaves the program's
     * table before its loop, and the program's table keeps only the
     * eventfd that wakes it. Every engine of a process whose first one
     * did (engines.c starts more for room). */
    e->apart = G.nrun == 0 ? want_apart() : shim_fds_apart();
    shim_fds_program_thread(); /* the starter: a thread to take from */
    if (G.nrun == 0 && !e->apart)
        raise_soft_limit(); /* before the control socket: it goes high */
    if (G.nrun == 0)
        shim_control_open(e); /* engine 0 serves rudp-stat (control.c) */
    atomic_store(&e->apart_state, 0);
    err = shim_thread_start(&e->thread, e->apart ? engine_apart_main : shim_engine_loop, e);
    if (err) {
        if (G.nrun == 0)
            shim_control_close(e); /* no engine to serve it */
        what = "pthread_create";
        goto fail;
    }
    if (e->apart && wait_apart(e) > 0) {
        left_program_table(e);
    } else if (G.nrun > 0 && e->apart) {
        what = "unshare";
        err = -EPERM;
        goto fail; /* its thread has ended (engine_apart_main) */
    } else if (G.nrun == 0 && e->apart) {
        e->apart = 0; /* refused: engine 0 stays in the program's table */
        raise_soft_limit();
    }
    if (!e->apart && e->iofd != e->epfd)
        shim_appwhole_engine_started(e); /* its iofd in the app threads' set */
    /* read without the lock by a signal's stand-in (engines.c) */
    __atomic_store_n(&G.nrun, G.nrun + 1, __ATOMIC_RELEASE);
    __atomic_store_n(&G.pid, getpid(), __ATOMIC_RELAXED); /* read without the lock (txring.c) */
    if (shim_hook.lifetime && shim_hook.lifetime->started)
        shim_hook.lifetime->started(); /* procenv.c's mark */
    return 0;

fail_errno:
    err = -errno;
fail:
    start_failed(e, what, err);
    start_undo(e);
    return err;
}
