/*
 * reconnect.c: connect() on a socket that is already one of our bridges,
 * and the wait of a blocking connect(), as Linux TCP answers them.
 *
 * The kernel's rules (net/ipv4/af_inet.c, __inet_stream_connect; checked by
 * tests/prog_reconnect.c over kernel TCP):
 *   - connect(AF_UNSPEC) disconnects (tcp_disconnect): a connected socket
 *     resets its peer, a connecting one gives up; either says 0 and is left
 *     unconnected with SO_ERROR ECONNRESET, and may connect again;
 *   - while the handshake is pending a non-blocking connect() says EALREADY;
 *     a blocking one waits again, at most SO_SNDTIMEO, and says EALREADY
 *     if the time runs out (EINPROGRESS the first time);
 *   - once the handshake failed, the next connect() reports the failure
 *     (the pending SO_ERROR, or ECONNABORTED if the app read it) and leaves
 *     the socket unconnected, with the port of the failed attempt let go; the
 *     one after starts a new attempt. A blocking connect() that failed left
 *     it so already;
 *   - once the handshake completed, the first connect() after a
 *     non-blocking one says 0, every later one EISCONN.
 *
 * "Unconnected" here is what it is for the kernel: the bridge at the app's
 * fd number is replaced (dup3, under the lock close() takes) by a fresh
 * kernel TCP socket of the same family with the fd's flags and options, so
 * the next connect() goes the way of any new socket (connect.c). The
 * ECONNRESET a disconnect leaves in SO_ERROR is kept here for that fd (by
 * inode) until read or until the next connect().
 *
 * The name is kept too. Linux's socket keeps the failed attempt's port in
 * its name though the port is let go (tcp_set_state(TCP_CLOSE) puts the
 * bind bucket, but inet_sport stays and inet_getname() reports it), and
 * its address becomes the wildcard unless the app had bound one
 * (tcp_disconnect: inet_reset_saddr() without SOCK_BINDADDR_LOCK). So
 * getsockname() on the fresh socket, whose own answer has port 0, says
 * 0.0.0.0:P / [::]:P (or the bound address with P), until a bind(),
 * connect() or listen() gives the socket a port of its own (checked over
 * kernel TCP by tests/prog_edges.c, IPv4 and IPv6).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "interpose.h"
#include "base/poison.h"

static int fail(int err)
{
    errno = err;
    return -1;
}

static shim_slot *slot_of(const shim_name *n)
{
    if (n->slot == UINT32_MAX)
        return NULL;
    return shim_slot_get_pid(n->slot, n->id, n->pid);
}

/* ---- what a failure leaves on the fresh socket: SO_ERROR and the name ---- */

/* Few sockets are ever unconnected again: a small table, by fd and inode
 * (by inode alone where the front end does not own the numbers, as
 * rudp-supervise's: each call comes on a copy of the program's fd, at a
 * number of its own; state.h). err: the
 * SO_ERROR a disconnect left, until read; name: what getsockname says,
 * while the socket has no port of its own. */
#define LEFT_MAX 32

static shim_mutex left_mu = SHIM_MUTEX_INITIALIZER;
static struct {
    int fd, err;
    uint64_t ino;
    struct sockaddr_storage name;
    int lst; /* name is a stopped listener's port, which listen() takes again */
} kept[LEFT_MAX];
static _Atomic int nleft;

/* Entry i is fd's (the socket ino's, where the front end does not own the
 * numbers). left_mu held. */
static int kept_is(int i, int fd, uint64_t ino)
{
    return shim_front_can(SHIM_FRONT_OWNS_NUMBERS) ? kept[i].fd == fd : ino && kept[i].ino == ino;
}

/* fd's entry, made if there is none (the oldest goes when the table is
 * full), stamped with the inode ino. left_mu held. */
static int left_entry(int fd, uint64_t ino)
{
    int i = 0, n = atomic_load(&nleft);
    while (i < n && !kept_is(i, fd, ino))
        i++;
    if (i == n) {
        if (n == LEFT_MAX)
            i = 0;
        else
            atomic_store(&nleft, ++n);
        memset(&kept[i], 0, sizeof kept[i]);
    } else if (kept[i].ino != ino) {
        memset(&kept[i], 0, sizeof kept[i]); /* another socket had that number */
    }
    kept[i].fd = fd;
    kept[i].ino = ino;
    return i;
}

static void left_drop(int i)
{
    int n = atomic_load(&nleft) - 1;
    kept[i] = kept[n];
    atomic_store(&nleft, n);
}

static void pending_set(int fd, int err)
{
    uint64_t ino = shim_fd_ino(fd);
    shim_mutex_lock(&left_mu);
    kept[left_entry(fd, ino)].err = err;
    shim_mutex_unlock(&left_mu);
}

/* The unconnected socket's name, Linux's way (see the top). */
static void name_set(int fd, const shim_fd *rec, const shim_name *n)
{
    struct sockaddr_storage ss = n->local;
    if (!rec->bound_addr) { /* the wildcard, with the attempt's port */
        if (ss.ss_family == AF_INET) {
            ((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_ANY);
        } else {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            s6->sin6_addr = in6addr_any;
            s6->sin6_flowinfo = 0;
            s6->sin6_scope_id = 0;
        }
    }
    uint64_t ino = shim_fd_ino(fd);
    shim_mutex_lock(&left_mu);
    kept[left_entry(fd, ino)].name = ss;
    shim_mutex_unlock(&left_mu);
}

/* SO_ERROR left on fd (0: none), taken. check_ino: only if fd still holds
 * that socket; without, the entry goes whatever it held (a new connect()). */
static int pending_take(int fd, int check_ino)
{
    if (atomic_load(&nleft) == 0)
        return 0;
    uint64_t ino = check_ino || !shim_front_can(SHIM_FRONT_OWNS_NUMBERS) ? shim_fd_ino(fd) : 0;
    int err = 0;
    shim_mutex_lock(&left_mu);
    int n = atomic_load(&nleft);
    for (int i = 0; i < n; i++) {
        if (!kept_is(i, fd, ino))
            continue;
        if (check_ino && kept[i].ino == ino) {
            err = kept[i].err;
            kept[i].err = 0;
            if (!kept[i].name.ss_family)
                left_drop(i);
        } else {
            left_drop(i);
        }
        break;
    }
    shim_mutex_unlock(&left_mu);
    return err;
}

int shim_reconnect_so_error(int fd)
{
    return pending_take(fd, 1);
}

void shim_reconnect_forget(int fd)
{
    pending_take(fd, 0);
}

int shim_reconnect_name(int fd, struct sockaddr_storage *ss, socklen_t *sl)
{
    if (atomic_load(&nleft) == 0)
        return 0;
    if (ss->ss_family == AF_INET ? ((struct sockaddr_in *)ss)->sin_port != 0
                                 : ss->ss_family != AF_INET6 ||
                                       ((struct sockaddr_in6 *)ss)->sin6_port != 0)
        return 0; /* a port of its own since: the kernel's answer */
    uint64_t ino = shim_fd_ino(fd);
    int found = 0;
    shim_mutex_lock(&left_mu);
    int n = atomic_load(&nleft);
    for (int i = 0; i < n; i++) {
        if (!kept_is(i, fd, ino) || kept[i].ino != ino)
            continue;
        if (kept[i].name.ss_family == ss->ss_family) {
            *ss = kept[i].name;
            *sl = ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                           : sizeof(struct sockaddr_in6);
            found = 1;
        }
        break;
    }
    shim_mutex_unlock(&left_mu);
    return found;
}

int shim_reconnect_listen(int fd, int family, const struct sockaddr_storage *local)
{
    if (atomic_load(&nleft) == 0 || shim_ss_port(local) != 0)
        return 0;
    uint64_t ino = shim_fd_ino(fd);
    struct sockaddr_storage name;
    memset(&name, 0, sizeof name);
    shim_mutex_lock(&left_mu);
    int n = atomic_load(&nleft);
    for (int i = 0; i < n; i++)
        if (kept_is(i, fd, ino) && kept[i].ino == ino) {
            if (kept[i].lst && kept[i].name.ss_family == family)
                name = kept[i].name;
            break;
        }
    shim_mutex_unlock(&left_mu);
    if (!name.ss_family)
        return 0;
    socklen_t len = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    return real_bind(fd, (const struct sockaddr *)&name, len);
}

/* ---- the bridge given back for a kernel socket ---- */

/* Puts a fresh, unconnected kernel TCP socket at fd in place of its bridge
 * (see the top). linger0: the connection was established, and the engine
 * must reset it, as tcp_disconnect does, rather than end it with a FIN.
 * Returns 1; 0 if fd no longer holds the bridge (the fallback put kernel
 * TCP there: the kernel answers); or -errno. */
static int unbridge(int fd, const shim_fd *rec, const shim_name *n, int linger0)
{
    int status = real_fcntl(fd, F_GETFL), fdflags = real_fcntl(fd, F_GETFD);
    uint64_t ino = rec->ino ? rec->ino : shim_fd_ino(fd);
    if (status < 0 || fdflags < 0)
        return -errno;
    int t = real_socket(n->family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
    if (t < 0)
        return -errno;
    if (n->family == AF_INET6) {
        int v6 = rec->v6only;
        real_setsockopt(t, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof v6);
    }
    shim_put_tcp_options(t, rec);
    shim_slot *s = n->pid == shim_procenv_self() ? slot_of(n) : NULL;
    if (s) {
        if (linger0)
            atomic_fetch_or(&s->flags, SHIM_SLOT_F_LINGER0);
        shim_sndbuf_forget(s); /* no fallback swap, no buffer restore at fd from now */
    }
    int r = 0;
    shim_appfd_lock();
    if (ino && shim_fd_ino(fd) == ino) {
        /* the app's epoll sets keep fd; the next connect() swaps it again */
        r = shim_replace_fd(fd, t, status, fdflags, 1);
        r = r < 0 ? r : 1;
    }
    shim_appfd_unlock();
    if (r != 1) {
        real_close(t);
        return r;
    }
    shim_fd_del(fd);
    name_set(fd, rec, n);
    SHIM_LOG(RUDP_LOG_DEBUG, "fd %d: unconnected again (connection %llu)%s", fd,
             (unsigned long long)n->id, linger0 ? ", reset" : "");
    return 1;
}

/* connect() reported the completed handshake: later ones say EISCONN. */
static void mark_done(const shim_fd *rec)
{
    shim_fd r = *rec;
    if (r.connect_done)
        return;
    r.connect_done = 1;
    shim_fd_put(&r);
}

/* SO_SNDTIMEO in ms; -1: none (sock_sndtimeo: 0 waits for ever). */
static int sndtimeo_ms(int fd)
{
    struct timeval tv;
    socklen_t l = sizeof tv;
    if (real_getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &l) < 0 ||
        (tv.tv_sec == 0 && tv.tv_usec == 0))
        return -1;
    long long ms = (long long)tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * A blocking connect()'s wait without SO_SNDTIMEO, as TCP's: a signal
 * whose handler has SA_RESTART restarts it (inet_stream_connect():
 * sock_intr_errno() of an endless wait is -ERESTARTSYS, and the restarted
 * call waits on in SYN_SENT), one without says EINTR. A poll() is never
 * restarted, so waiting in one made any handled signal an EINTR (a
 * profiling timer's SIGALRM: 119-284 connects in 1,000). So the wait
 * holds every signal back and watches for them on a signalfd of its own
 * (those the caller lets in); when one is pending, it is let in (its
 * handler runs) and the wait goes on, or ends in EINTR as TCP's would
 * (lifetime/signals.c decides). The poll() wait below where this cannot
 * be had: in a program with a seccomp filter of its own, whose filter may
 * kill it for calls TCP's connect() never makes (signalfd4, ppoll,
 * rt_sigprocmask: as engine/apprecv.c's waits), or without a signalfd
 * (no fd left).
 * 1 when fd shows an event (p->revents), -1 with errno EINTR, 0 if this
 * wait is not to be had.
 */
static int wait_restarting(struct pollfd *p)
{
    sigset_t old;
    if (shim_sandboxed() || !shim_hold_but_faults(&old))
        return 0;
    sigset_t let;
    sigfillset(&let);
    for (int sig = 1; sig < NSIG; sig++)
        if (sigismember(&old, sig) == 1)
            sigdelset(&let, sig);
    int sfd = signalfd(-1, &let, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return 0;
    }
    int ret;
    for (;;) {
        struct pollfd q[2] = {*p, {.fd = sfd, .events = POLLIN}};
        int r = real_ppoll(q, 2, NULL, NULL); /* a cancellation point, as connect() */
        if (r > 0 && q[0].revents) {
            p->revents = q[0].revents;
            ret = 1;
            break;
        }
        sigset_t pend;
        if ((r < 0 && errno != EINTR) || sigpending(&pend) < 0) {
            ret = -1; /* EINTR too, as the wait in poll() would have said */
            break;
        }
        if (shim_signals_interrupt(&pend, &old)) {
            ret = -1;
            break;
        }
        shim_signals_let_in(&pend, &old); /* SA_RESTART: its handler runs, the wait goes on */
    }
    real_close(sfd);
    pthread_sigmask(SIG_SETMASK, &old, NULL); /* a pending signal's handler runs here */
    if (ret < 0)
        errno = EINTR;
    return ret;
}

int shim_connect_wait(int fd, const shim_fd *rec, const shim_name *n, int again)
{
    int limit = sndtimeo_ms(fd);
    long long deadline = limit < 0 ? 0 : mono_ms() + limit;
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    for (;;) {
        int ms = -1;
        if (limit >= 0) {
            long long left = deadline - mono_ms();
            ms = left < 0 ? 0 : (int)(left > INT_MAX ? INT_MAX : left);
        }
        /* with SO_SNDTIMEO a signal says EINTR whatever SA_RESTART says
         * (sock_intr_errno() of a bounded wait): poll()'s answer */
        int r = limit < 0 ? wait_restarting(&p) : 0;
        if (r == 0)
            r = real_poll(&p, 1, ms);
        if (r < 0)
            return -1; /* EINTR, as TCP: the handshake goes on; connect() again says EALREADY */
        shim_slot *s = slot_of(n);
        int st = s ? atomic_load(&s->state) : SHIM_SLOT_FAILED;
        if (st == SHIM_SLOT_ESTABLISHED || st == SHIM_SLOT_TCP) {
            if (st == SHIM_SLOT_ESTABLISHED)
                mark_done(rec);
            return 0; /* TCP: the fd is a connected kernel socket now (fallback.c) */
        }
        if (st == SHIM_SLOT_FAILED || st == SHIM_SLOT_CLOSED || (p.revents & (POLLHUP | POLLERR))) {
            int e = s ? atomic_exchange(&s->so_error, 0) : 0;
            unbridge(fd, rec, n, 0);
            return fail(e ? e : ECONNREFUSED);
        }
        if (r == 0) /* SO_SNDTIMEO ran out; the handshake goes on */
            return fail(again ? EALREADY : EINPROGRESS);
    }
}

int shim_reconnect(int fd, const shim_fd *rec, const shim_name *n, const struct sockaddr *addr,
                   socklen_t len)
{
    if (addr && len < sizeof(sa_family_t))
        return fail(EINVAL);
    if (rec->kind == SHIM_FD_LISTENER) /* AF_UNSPEC: tcp_disconnect stops it */
        return addr && addr->sa_family == AF_UNSPEC ? shim_unlisten(fd, rec) : fail(EISCONN);
    shim_slot *s = slot_of(n);
    int st = s ? atomic_load(&s->state) : SHIM_SLOT_CLOSED;
    if (addr && addr->sa_family == AF_UNSPEC) {
        int live = st == SHIM_SLOT_CONNECTING || st == SHIM_SLOT_ESTABLISHED;
        /* TCP's disconnect keeps the file and so the app's epoll
         * registrations; an established fd's are not noted (epollreg.c),
         * so ask the kernel for them before the fresh socket goes in. */
        if (!shim_epollreg_marked(fd))
            shim_epollreg_discover(fd);
        int r = unbridge(fd, rec, n, st == SHIM_SLOT_ESTABLISHED);
        if (r == 0)
            return real_connect(fd, addr, len);
        if (r < 0)
            return fail(-r);
        if (live)
            pending_set(fd, ECONNRESET); /* tcp_disconnect: sk_err */
        return 0;
    }
    int nonblocking = (real_fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
    if (st == SHIM_SLOT_CONNECTING && rec->connect_done)
        return fail(EISCONN); /* a 0-RTT connect returned 0 already (connect.c) */
    if (st == SHIM_SLOT_CONNECTING) {
        if (nonblocking)
            return fail(EALREADY);
        return shim_connect_wait(fd, rec, n, 1);
    }
    if (st == SHIM_SLOT_FAILED && s) {
        int e = atomic_exchange(&s->so_error, 0);
        unbridge(fd, rec, n, 0);
        return fail(e ? e : ECONNABORTED);
    }
    if (st == SHIM_SLOT_ESTABLISHED) {
        /* The engine says established a moment before it drains the
         * filler; until the app's end is writable, TCP would still be
         * connecting as far as the app can tell. */
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (real_poll(&p, 1, 0) != 1 || !(p.revents & POLLOUT)) {
            if (nonblocking)
                return fail(EALREADY);
            return shim_connect_wait(fd, rec, n, 1);
        }
        if (!rec->connect_done) {
            mark_done(rec);
            return 0;
        }
    }
    return fail(EISCONN);
}

/* ---- a listener stopped: shutdown(SHUT_RD) or connect(AF_UNSPEC) ---- */

/* The connections the app's listener had queued, reset as TCP's are
 * (inet_csk_listen_stop -> inet_child_forget -> tcp_disconnect): taken out
 * of the shut unix listener (unix_accept still gives them) and closed, an
 * engine's with its reset flag. A backlog is at most 65,535 (somaxconn's
 * bound). */
static void reset_queued(int fd)
{
    for (int i = 0; i < 65536; i++) {
        struct sockaddr_un un;
        socklen_t ulen = sizeof un;
        int c = real_accept4(fd, (struct sockaddr *)&un, &ulen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        shim_name cn;
        if (shim_name_decode(&un, ulen, &cn) == 1 && cn.kind == SHIM_NAME_ENGINE) {
            shim_slot *s = slot_of(&cn);
            if (s)
                atomic_fetch_or(&s->flags, SHIM_SLOT_F_LINGER0); /* a reset, not a FIN */
        }
        real_close(c);
    }
}

/* A stopped listener's socket t (at fd, the engine's listener gone, so its
 * ports free) binds where the listener was, as TCP's keeps its port
 * (tcp_set_state(TCP_CLOSE) puts it back only without SOCK_BINDPORT_LOCK):
 * listen() again then takes that port back (haproxy's "enable frontend",
 * its resume after a reload that failed). SO_REUSEADDR and SO_REUSEPORT
 * as the app set them (a group's other members hold the port, and a
 * TIME_WAIT of ours may). A bind(0) or a listen() without bind gave the
 * listener a port the kernel would put back and choose again: the shim
 * cannot tell those from a bind by number, and keeps that one too. If the
 * bind fails (our TIME_WAIT holds the port, without SO_REUSEADDR), t stays
 * unbound and listen() binds it then (shim_reconnect_listen), saying
 * EADDRINUSE as TCP's does while the TIME_WAIT lasts. */
static void rebind_kept(int fd, int reuseaddr, int reuseport, const struct sockaddr_storage *name)
{
    if (name->ss_family != AF_INET && name->ss_family != AF_INET6)
        return;
    if (reuseaddr)
        real_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuseaddr, sizeof reuseaddr);
    if (reuseport)
        real_setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &reuseport, sizeof reuseport);
    socklen_t len = name->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                 : sizeof(struct sockaddr_in);
    if (real_bind(fd, (const struct sockaddr *)name, len) < 0)
        SHIM_LOG(RUDP_LOG_DEBUG, "fd %d: the stopped listener's port stays unbound: %s", fd,
                 shim_strerror(errno));
}

int shim_unlisten(int fd, const shim_fd *rec)
{
    shim_name n;
    int named = shim_name_get(fd, 0, &n) == 1 && n.kind == SHIM_NAME_LISTENER;
    /* Shut first: an accept() blocked on it wakes with EINVAL, and every
     * process holding it (a forked child's copy) has the engine's next
     * hand-over refused (unix_stream_connect: ECONNREFUSED). */
    if (real_shutdown(fd, SHUT_RDWR) < 0)
        return -1;
    reset_queued(fd);
    int status = real_fcntl(fd, F_GETFL), fdflags = real_fcntl(fd, F_GETFD);
    int reuseaddr = 0; /* the app's, copied onto its unix listener (sock.c) */
    socklen_t rl = sizeof reuseaddr;
    if (real_getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuseaddr, &rl) < 0)
        reuseaddr = 0;
    uint64_t ino = rec->ino ? rec->ino : shim_fd_ino(fd);
    int t = named && status >= 0 && fdflags >= 0
                ? real_socket(rec->family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP)
                : -1;
    if (t < 0)
        return 0; /* the shut unix listener stays: accept() says EINVAL (listen.c) */
    if (rec->family == AF_INET6) {
        int v6 = rec->v6only;
        real_setsockopt(t, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof v6);
    }
    shim_put_tcp_options(t, rec);
    /* TCP's listener keeps its file and so the app's epoll registrations,
     * which then report POLLOUT|POLLHUP; a listener's are not noted */
    if (!shim_epollreg_marked(fd))
        shim_epollreg_discover(fd);
    int r = 0;
    shim_appfd_lock();
    if (ino && shim_fd_ino(fd) == ino)
        r = shim_replace_fd(fd, t, status, fdflags, 1) < 0 ? -1 : 1;
    shim_appfd_unlock();
    if (r != 1) {
        real_close(t);
        return 0;
    }
    shim_fd_del(fd);
    shim_pristine_forget(fd);
    /* the listener's name, as TCP's keeps its port bound (SOCK_BINDPORT_LOCK) */
    uint64_t tino = shim_fd_ino(fd);
    shim_mutex_lock(&left_mu);
    int k = left_entry(fd, tino);
    kept[k].name = n.local;
    kept[k].lst = 1;
    shim_mutex_unlock(&left_mu);
    SHIM_LOG(RUDP_LOG_DEBUG, "fd %d: listener %llu stopped (shutdown)", fd,
             (unsigned long long)rec->id);
    /* as at a close(): the engine stops listening now, unless another
     * process holds the listener open (then at its next hand-over) */
    if (n.pid == shim_procenv_owner())
        shim_engine_listener_closed(rec->id);
    rebind_kept(fd, reuseaddr, rec->reuseport, &n.local);
    return 0;
}
