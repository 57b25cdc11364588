/*
 * tcpaccept.c: dual listeners (RUDP_ACCEPT_TCP). A listening socket under the
 * shim also takes plain kernel TCP on its port, so clients that do not run
 * the shim (curl, nc, health checks) keep working, and accept() returns them
 * as real kernel TCP sockets: every later call on them is the kernel's own.
 *
 * The port is already held by the app's own TCP socket (the listener's
 * reserve_fd, listen.c): listen() listens on it too, and the engine that holds
 * it (engine 0 alone, engines.c) watches it. For each connection in its
 * accept queue the engine
 *   1. makes a unix socket named SHIM_NAME_TCP and connects it to the app's
 *      unix listener, checking as for a rudp handoff that the listener is
 *      our application's (shim_ident_listener);
 *   2. only then accept4()s the TCP connection, and
 *   3. passes its fd over the unix connection (SCM_RIGHTS, with the peer
 *      address accept4 gave as the data), closing its own copies: the fd
 *      in flight keeps the socket.
 * Connecting first is the back-pressure: a full unix backlog (EAGAIN) stops
 * the engine before it takes a TCP connection, so the rest wait in the
 * kernel's TCP accept queue, bounded by the app's own backlog, nothing held
 * by us, as with no shim at all; the engine tries again at ACCEPT_RETRY.
 *
 * accept() (listen.c) sees the SHIM_NAME_TCP peer, receives the fd
 * (shim_tcpl_receive), gives it the flags accept4 asked for and puts it in
 * place of the unix socket's fd number. The socket was accepted from the
 * app's own listening socket, so it carries the options the app set there.
 *
 * Why fd passing and not a bridge: a bridged plain connection would answer
 * getpeername, SO_ERROR, TCP_INFO and resets through our emulation, and
 * cost a copy; a passed socket is simply TCP. Why through the listener and
 * not a side channel: prefork servers, children accepting, keepers and an
 * exec'd image all already get their connections there, with the same
 * identity checks.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ports.h"
#include "portpriv.h"

#include "base/poison.h"

/* Connections handed over per wake-up: the rest wait for the next turn
 * (the socket is level-triggered), so UDP and bridges are not starved. */
#define TCPL_BATCH 16

static const shim_watch_ops tcpl_ops;

void shim_tcpl_start(esock *s)
{
    tcpl *t = &port_of_sock(s)->tcp;
    int rfd = shim_esock_reserve_fd(s);
    shim_watch_set(&t->w, &tcpl_ops);
    t->s = s;
    /* Never block the engine: a wake-up with an empty queue is possible.
     * The status flags belong to the file the app's fd held before listen()
     * gave it the unix listener (listen.c saved and restored its own). */
    int fl = real_fcntl(rfd, F_GETFL);
    if (fl < 0 || real_fcntl(rfd, F_SETFL, fl | O_NONBLOCK) < 0)
        goto fail;
    int err = shim_engine_watch(shim_esock_engine(s), rfd, EPOLLIN, &t->w);
    if (err < 0) {
        errno = -err;
        goto fail;
    }
    t->on = 1;
    return;
fail:
    SHIM_LOG(RUDP_LOG_WARN, "plain TCP on a rudp listener's port: %s; rudp only",
             shim_strerror(errno));
    shim_tcpl_stop(s);
}

void shim_tcp_unlisten(int fd)
{
    struct sockaddr sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_family = AF_UNSPEC;
    real_connect(fd, &sa, sizeof sa);
}

void shim_tcpl_stop(esock *s)
{
    int gfd = shim_esock_group_tcp_fd(s), rfd = shim_esock_reserve_fd(s);
    tcpl *t = &port_of_sock(s)->tcp;
    if (gfd >= 0)
        shim_tcp_unlisten(gfd); /* from any member, at once */
    if (rfd < 0 || !shim_watch_on(&t->w))
        return; /* never listened */
    if (t->on) /* deferred ones too: registered with no events */
        shim_engine_unwatch(shim_esock_engine(s), rfd);
    t->on = 0;
    t->deferred = 0;
    t->w.type = 0;
    shim_tcp_unlisten(rfd);
}

/* The app's backlog is full: stop watching until the next retry. */
static void defer(esock *s, rudp_time now)
{
    struct engine *e = shim_esock_engine(s);
    tcpl *t = &port_of_sock(s)->tcp;
    shim_engine_rewatch(e, shim_esock_reserve_fd(s), 0, &t->w);
    t->deferred = 1;
    shim_engine_tick_by(e, now + ACCEPT_RETRY);
}

void shim_tcpl_retry(struct engine *e)
{
    for (uint32_t i = 0; i < shim_engine_nsocks(e); i++) {
        esock *s = shim_engine_sock(e, i);
        tcpl *t = s ? &port_of_sock(s)->tcp : NULL;
        if (!t || !t->on || !t->deferred)
            continue;
        shim_engine_rewatch(e, shim_esock_reserve_fd(s), EPOLLIN, &t->w);
        t->deferred = 0;
    }
}

/* What a plain connection's unix socket carries, with the fd: the address
 * the kernel's accept gave, as accept() must report it. */
typedef struct tcpl_msg {
    uint32_t len;
    struct sockaddr_storage peer;
} tcpl_msg;

/* Passes tfd and its peer address over efd. Returns 0 or -errno. */
static int send_fd(int efd, int tfd, const tcpl_msg *msg)
{
    struct iovec iov = {.iov_base = (void *)msg, .iov_len = sizeof *msg};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &tfd, sizeof tfd);
    /* a new connection's empty buffer takes it whole */
    return real_sendmsg(efd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)sizeof *msg ? 0 : -EIO;
}

/* A connected unix socket to s's app listener, named SHIM_NAME_TCP, and
 * checked to reach our application: >= 0; -EAGAIN: its backlog is full;
 * -EPIPE: the listener is gone or squatted; other -errno: try later. */
static int connect_listener(esock *s)
{
    int efd = real_socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (efd < 0)
        return -errno;
    /* Owned while it lives: a program closing every fd must spare it. */
    shim_own_fd(efd, 1);
    const shim_name *ln = shim_esock_lname(s);
    const struct sockaddr_un *lun;
    socklen_t lun_len = shim_esock_lun(s, &lun);
    shim_name n;
    memset(&n, 0, sizeof n);
    n.kind = SHIM_NAME_TCP;
    n.family = ln->family;
    n.local = ln->local;
    n.slot = UINT32_MAX;
    n.id = shim_engine_new_id();
    n.pid = shim_slot_owner();
    int proof = shim_bridge_proof_wanted(s);
    if (proof)
        n.flags |= SHIM_NAME_F_PROOF;
    int err = shim_name_bind(efd, &n);
    if (err < 0)
        goto fail;
    if (real_connect(efd, (const struct sockaddr *)lun, lun_len) < 0) {
        err = errno == EAGAIN ? -EAGAIN : -EPIPE;
        if (err == -EPIPE)
            SHIM_LOG(RUDP_LOG_INFO, "plain TCP: the listener vanished (%s); no more plain "
                                    "TCP on its port", shim_strerror(errno));
        goto fail;
    }
    if (!shim_ident_listener(efd, ln->pid, shim_esock_listener_uid(s))) {
        /* As try_accept: the name is held by a socket our application did
         * not make; no connection may reach it. */
        SHIM_LOG(RUDP_LOG_WARN, "plain TCP: the listener's name is held by another "
                                "process; no more plain TCP on its port");
        shim_engine_count_squatted(shim_esock_engine(s));
        err = -EPIPE;
        goto fail;
    }
    if (proof && (err = shim_bridge_send_proof(s, efd)) < 0)
        goto fail;
    shim_acceptq_handed(s);
    return efd;
fail:
    shim_close_owned(efd);
    return err;
}

int shim_tcpl_event(esock *s, rudp_time now)
{
    int rfd = shim_esock_reserve_fd(s);
    for (int i = 0; i < TCPL_BATCH; i++) {
        /* Only with a connection waiting: no unix connection is made for
         * nothing (accept() would have to drop it). */
        struct pollfd p = {.fd = rfd, .events = POLLIN};
        if (real_poll(&p, 1, 0) != 1)
            return 0;
        if (!(p.revents & POLLIN)) {
            /* A listening socket never hangs up: another member of the
             * group took it out of LISTEN (shim_tcpl_stop). */
            if (p.revents & (POLLHUP | POLLERR))
                shim_tcpl_stop(s);
            return 0;
        }
        int efd = connect_listener(s);
        if (efd == -EPIPE)
            return -1;
        if (efd < 0) {
            /* a full backlog, or no fd or memory for the unix socket */
            defer(s, now);
            return 0;
        }
        tcpl_msg msg;
        memset(&msg, 0, sizeof msg);
        socklen_t pl = sizeof msg.peer;
        int tfd = real_accept4(rfd, (struct sockaddr *)&msg.peer, &pl,
                               SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (tfd < 0) {
            int err = errno;
            /* accept() drops a unix connection that brings no socket */
            shim_close_owned(efd);
            if (err == EAGAIN || err == EWOULDBLOCK)
                return 0;
            if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
                defer(s, now); /* the connection stays queued: later */
                return 0;
            }
            continue; /* ECONNABORTED and the like: that one is gone */
        }
        shim_own_fd(tfd, 1);
        msg.len = pl;
        if (shim_cfg.log_level >= RUDP_LOG_DEBUG) {
            rudp_addr ra;
            char a[64];
            shim_to_rudp_addr((struct sockaddr *)&msg.peer, &ra);
            rudp_addr_format(&ra, a, sizeof a);
            shim_log(RUDP_LOG_DEBUG, "plain TCP connection from %s handed to the listener", a);
        }
        if (send_fd(efd, tfd, &msg) == 0)
            port_of_engine(shim_esock_engine(s))->tcp_accepted++;
        /* Ours closed; the one in flight stays the app's. Unsent: the
         * client sees the connection close, accept() drops the unix one. */
        shim_close_owned(tfd);
        shim_close_owned(efd);
    }
    return 0;
}

/* ---- application side ---- */

int shim_tcpl_receive(int ufd, struct sockaddr_storage *peer, socklen_t *plen)
{
    for (;;) {
        tcpl_msg msg;
        struct iovec iov = {.iov_base = &msg, .iov_len = sizeof msg};
        union {
            struct cmsghdr h;
            char buf[CMSG_SPACE(sizeof(int))];
        } u;
        struct msghdr m = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
        ssize_t r = real_recvmsg(ufd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            /* The engine connects, then sends in the same turn: the fd
             * comes at once, or EOF if the engine gave up. */
            struct pollfd p = {.fd = ufd, .events = POLLIN};
            if (real_poll(&p, 1, -1) < 0 && errno != EINTR)
                return -ECONNABORTED;
            continue;
        }
        if (r <= 0)
            return -ECONNABORTED;
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        int fd = -1;
        if (!(m.msg_flags & MSG_CTRUNC) && c && c->cmsg_level == SOL_SOCKET &&
            c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)) &&
            !CMSG_NXTHDR(&m, c))
            memcpy(&fd, CMSG_DATA(c), sizeof fd);
        if (fd < 0 || r != (ssize_t)sizeof msg || msg.len > sizeof msg.peer) {
            shim_cmsg_take_fds(&m, NULL, 0);
            return -ECONNABORTED;
        }
        *peer = msg.peer;
        *plen = msg.len;
        return fd;
    }
}

/* The reserve socket's epoll event (the engine's dispatch, hooks.h). When
 * the app's listener looks gone, the TCP side stops at once and the
 * engine's check_alive, right after this turn's events, asks the kernel
 * whether it is and stops the rest: stopping here could free the esock
 * while this batch still holds events for it. */
static void tcpl_event(void *obj, uint32_t events, rudp_time now)
{
    (void)events;
    tcpl *t = obj;
    esock *s = t->s;
    if (!t->on || shim_tcpl_event(s, now) == 0)
        return;
    shim_tcpl_stop(s);
    shim_esock_check_soon(s, now);
}

static const shim_watch_ops tcpl_ops = {.event = tcpl_event};
