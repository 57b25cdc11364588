/*
 * porthand.c: a listener's UDP port handed over to another process of
 * ours that listens on it.
 *
 * A server restarted on its port (systemctl restart, a supervisor) finds
 * the port's UDP socket still held by its old self: by a keeper carrying
 * the connections the old process had when it ended, or by the old process
 * itself while it finishes them. Its TCP listen() succeeds (the old
 * connections do not hold a TCP listener's port with SO_REUSEADDR), so
 * rudp must too; but the old socket is not this process's, and
 * listen() took any such socket for another program's own UDP
 * (udpdiag.c), leaving the new listener on plain kernel TCP for good.
 * And had it bound the port anyway, the kernel would give the new socket,
 * bound last, every datagram of the old connections.
 *
 * So every listener's UDP socket has a name: an abstract AF_UNIX
 * SOCK_SEQPACKET socket "rudp-udp <inode>" (the UDP socket's inode, which
 * sock_diag reports for it, unique on the host), made before the socket
 * is bound (so no process finds it on the port unnamed) and held by the
 * engine that serves it, listening. The names also tell our sockets from
 * strangers' on a SO_REUSEPORT group's port, where our listeners of other
 * processes belong (xgroup.c): listed by sock_diag, nobody asked
 * (shim_porthand_named). A listen() without SO_REUSEPORT that finds
 * another process's socket on its port (udpdiag.c) connects to its name:
 *
 *   - nobody holds it: not ours, the program's own (listen() stays plain
 *     TCP, as before);
 *   - its holder has a live listener on the socket: the new listen() fails
 *     with EADDRINUSE, as TCP's would (a live TCP listener holds its port)
 *     -- if its holder is of our euid; another user's claim makes the
 *     port a stranger's (it would hold the TCP port too, which listen()
 *     met first), and listen() stays plain TCP;
 *   - otherwise its holder moves the connections on the socket to a new
 *     ephemeral port (portmove.c, NEW_PORT; those its program closed with
 *     bytes, or their FIN before the client's, still on their way too,
 *     rudp_ctx_move_released: a server that exited right after its reply,
 *     restarted at once, had its client lose the reply's tail in 16 of 20
 *     tries, and under load its end), gives the port up (an unbound
 *     socket takes its fd number) and answers with how many moved; the new
 *     listener binds the port, and answers no unknown connection ID with a
 *     reset for QUIET_AFTER_MOVE (rudp_listener_quiet_resets): a client that
 *     has not yet learned the new port sends here meanwhile, and the old
 *     holder repeats NEW_PORT from the new port until it follows.
 *
 * A bind() first: while the port's old listener lives, its TCP socket
 * listens (RUDP_ACCEPT_TCP), and the kernel refuses a bind() to the port
 * with EADDRINUSE even with SO_REUSEADDR. It lives until its holder learns
 * that no process holds the application's end any more: a keeper that
 * took the engine over at _exit() or a fatal signal starts tens of ms
 * after the process is gone (measured: 20 to 46 ms on loopback for a
 * small Python server), so a restarted server could bind() before. So a
 * TCP bind() with SO_REUSEADDR that the kernel refuses asks the holders
 * of UDP sockets on the port (shim_porthand_reclaim): one whose listener
 * nobody holds stops it (shim_engine_listener_live) and gives the port
 * up, and bind() is tried again. The listen() that follows finds the UDP
 * port free; it is told of the connections moving (no resets for a
 * while) by a note of the port kept for QUIET_AFTER_MOVE.
 *
 * Credentials: the asker believes only a name held by the uid that owns
 * the UDP socket (sock_diag's idiag_uid; SO_PEERCRED gives the listener's
 * as of its listen(), man 7 unix), so no other user can make a listener
 * take another program's port. The holder answers anyone, as the kernel
 * lets any user bind a TCP port with SO_REUSEADDR where no socket listens
 * (inet_csk_bind_conflict() looks at no uid then): a live listener says
 * EADDRINUSE, and otherwise its connections move and go on.
 *
 * A socket shared before listen() (fork, SCM_RIGHTS) on which both
 * processes listen: the second asks the holder for the app's unix listener
 * made of it (shim_porthand_share; a share request's asker is bound by
 * autobind, a port question's is not). Only a holder of our euid is asked,
 * and only an asker of its euid answered; no fd goes to the holder: the
 * asker sends its fd number, the holder proves with kcmp() (or
 * /proc/PID/fd/N) that it is its own reserve socket's open file; the
 * listener given back must be the holder's (SO_PEERCRED) and listening.
 * The engine never waits for a request: one not arrived yet waits in its
 * epoll (share_park). A holder that cannot give its listener says so
 * (PH_ESAME) and the asker leaves the shared socket listening (listen.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <linux/kcmp.h>
#include <unistd.h>

#include "ports.h"
#include "porthand.h"
#include "portpriv.h"
#include "portshare.h"

#include "base/poison.h"

/* How long listen() waits for a holder's answer: it answers within a turn;
 * a paused engine (a keeper being forked) may take longer, and then the
 * socket is taken for a stranger's. */
#define ASK_WAIT_MS 2000
/* Connections accepted per event. */
#define PH_BATCH 8

#define PH_MAGIC 0x72706831u /* "rph1" */

typedef struct ph_answer {
    uint32_t magic;
    int32_t err;    /* 0: given up, or EADDRINUSE: a live listener */
    uint32_t moved; /* connections moving off the port */
} ph_answer;

static socklen_t ph_name(uint64_t ino, struct sockaddr_un *un)
{
    memset(un, 0, sizeof *un);
    un->sun_family = AF_UNIX;
    int n = snprintf(un->sun_path + 1, sizeof un->sun_path - 1, "rudp-udp %llu",
                     (unsigned long long)ino);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

int shim_porthand_name(int udp_fd)
{
    struct stat st;
    if (fstat(udp_fd, &st) < 0)
        return -1;
    int fd = real_socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_un un;
    socklen_t ul = ph_name((uint64_t)st.st_ino, &un);
    if (real_bind(fd, (struct sockaddr *)&un, ul) < 0 || real_listen(fd, PH_BATCH) < 0) {
        /* EADDRINUSE: someone bound it ahead of us (socket inodes come in
         * sequence); then nobody can take this port over, as before */
        SHIM_LOG(RUDP_LOG_WARN, "listener's UDP socket %llu: no name for it (%s): a server "
                 "restarted on its port will listen on plain TCP while this one holds it",
                 (unsigned long long)st.st_ino, shim_strerror(errno));
        real_close(fd);
        return -1;
    }
    fd = shim_fd_move_high(fd);
    shim_own_fd(fd, 1);
    return fd;
}

static const shim_watch_ops ph_ops;

void shim_porthand_attach(esock *s, int fd)
{
    phsock *ph = &port_of_sock(s)->ph;
    ph->fd = -1;
    if (fd < 0)
        return;
    shim_watch_set(&ph->w, &ph_ops);
    ph->fd = fd;
    ph->s = s;
    if (shim_engine_watch(shim_esock_engine(s), fd, EPOLLIN, &ph->w) < 0) {
        shim_close_owned(fd);
        ph->w.type = 0;
        ph->fd = -1;
    }
}

static void share_unpark(esock *s);

void shim_porthand_close(esock *s)
{
    phsock *ph = &port_of_sock(s)->ph;
    share_unpark(s);
    if (!shim_watch_on(&ph->w))
        return;
    shim_engine_unwatch(shim_esock_engine(s), ph->fd);
    shim_close_owned(ph->fd); /* the name is free again */
    ph->fd = -1;
    ph->w.type = 0;
}

#define PH_SHARE_MAGIC 0x72707332u /* "rps2" */
/* The holder's answer when the asker's socket is its own listener's but
 * it cannot give the unix listener (no fd for it): the asker must leave
 * the shared TCP socket as it is. */
#define PH_ESAME 0x7e5a

/* A share request: the asker's fd number of the TCP socket it listens on.
 * No fd travels: the holder proves it is the same open file as its own
 * (kcmp), so a holder that is not ours learns nothing it could use. */
typedef struct ph_share_req {
    uint32_t magic;
    int32_t fd;
} ph_share_req;

/* One message of len bytes on unix socket sock, with fd passed along
 * (SCM_RIGHTS) unless it is -1: what sendmsg() returns. */
static ssize_t send_with_fd(int sock, const void *buf, size_t len, int fd, int flags)
{
    struct iovec io = {(void *)buf, len};
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } cb;
    if (fd >= 0) {
        memset(&cb, 0, sizeof cb);
        m.msg_control = cb.buf;
        m.msg_controllen = sizeof cb.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    return real_sendmsg(sock, &m, flags | MSG_NOSIGNAL);
}

/* Every fd a received message carried (SCM_RIGHTS) closed but the first,
 * which is returned (-1 if none). */
static int fds_received(struct msghdr *m)
{
    int got = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
            c->cmsg_len < CMSG_LEN(0))
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int x;
            memcpy(&x, CMSG_DATA(c) + i * sizeof(int), sizeof x);
            if (got < 0)
                got = x;
            else
                real_close(x);
        }
    }
    return got;
}

typedef struct ino_find {
    uint64_t ino;
    int found;
} ino_find;

static int match_ino(int d, const char *name, long fd, void *ctx)
{
    ino_find *f = ctx;
    /* the link names the file of the program's table (the engine's thread
     * may have a table of its own: RUDP_FD_TABLE) */
    char target[40], want[40];
    int wn = snprintf(want, sizeof want, "socket:[%llu]", (unsigned long long)f->ino);
    ssize_t tn = readlinkat(d, name, target, sizeof target);
    if ((fd == d && !shim_fds_in_engines()) || tn != wn || memcmp(target, want, (size_t)wn) != 0)
        return 0;
    f->found = shim_fd_copy_of((int)fd, f->ino); /* -1: the number was reused meanwhile */
    return f->found >= 0;
}

/* The fd number of this process that holds the socket of inode ino, as a
 * copy at or above SHIM_FD_BASE that the caller closes; -1 if none. No
 * malloc (the engine thread's: shim_dir_each_num). */
static int fd_of_ino(uint64_t ino)
{
    char path[48];
    shim_fds_program_fd_dir(path);
    ino_find f = {.ino = ino, .found = -1};
    shim_dir_each_num(path, match_ino, &f);
    return f.found;
}

/* Whether fd of this process and fd theirs of process pid are one open
 * file (kcmp(2), KCMP_FILE); it needs ptrace read access to pid, which a
 * process of our own user that did not drop privileges gives. Where kcmp
 * is not there (no CONFIG_KCMP, or a seccomp filter: ENOSYS, EPERM), the
 * link /proc/PID/fd/N (same access) names the socket by its inode: one
 * socket, one open file. */
static int same_file(pid_t pid, int fd, int theirs)
{
    /* fd is this thread's table's: the engine's own, with RUDP_FD_TABLE */
    pid_t me = shim_fds_in_engines() ? (pid_t)syscall(SYS_gettid) : getpid();
    long r = syscall(SYS_kcmp, me, pid, KCMP_FILE, (unsigned long)fd, (unsigned long)theirs);
    if (r >= 0 || (errno != ENOSYS && errno != EPERM))
        return r == 0;
    struct stat st;
    char path[48], want[40], got[40];
    if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
        return 0;
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)pid, theirs);
    int n = snprintf(want, sizeof want, "socket:[%llu]", (unsigned long long)st.st_ino);
    ssize_t k = readlink(path, got, sizeof got);
    return n > 0 && k == (ssize_t)n && memcmp(got, want, (size_t)n) == 0;
}

/* A share request on fd (shim_porthand_share): the asker names the TCP
 * socket it listens on by its fd number; if that is this listener's own
 * (the one the engine keeps, a copy of the file the app listened on), the
 * asker holds the app's socket too (inherited across fork, or passed over
 * a unix socket before listen()), and gets the app's unix listener, the
 * socket listen() made of it here: both processes then accept from one
 * queue, as with TCP. Only a process of our own user is answered. */
static int share_answer(esock *s, int fd)
{
    ph_answer a = {.magic = PH_MAGIC, .err = ENOENT};
    /* The engine waits for the request only from its own user: a stranger
     * connecting under that name must not stall it. */
    struct ucred uc;
    socklen_t ul = sizeof uc;
    if (real_getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) < 0 || uc.uid != geteuid() ||
        uc.pid <= 0)
        return 1;
    ph_share_req q;
    memset(&q, 0, sizeof q);
    /* no room for fds: any sent along are dropped by the kernel, never
     * put in this process's table */
    ssize_t got = real_recvfrom(fd, &q, sizeof q, MSG_DONTWAIT, NULL, NULL);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0; /* on its way: the engine waits for it in epoll, not here */
    if (got != (ssize_t)sizeof q || q.magic != PH_SHARE_MAGIC || q.fd < 0)
        return 1;
    int lfd = -1, lerr = 0, rfd = shim_esock_reserve_fd(s);
    if (shim_esock_listening(s) && rfd >= 0 && same_file(uc.pid, rfd, q.fd)) {
        lfd = fd_of_ino(shim_esock_listener_ino(s));
        lerr = errno;
        a.err = lfd >= 0 ? 0 : PH_ESAME;
    }
    (void)send_with_fd(fd, &a, sizeof a, lfd, MSG_DONTWAIT);
    if (lfd >= 0) {
        SHIM_LOG(RUDP_LOG_INFO, "listener %llu: shared with process %d, which listens on "
                 "the same socket", (unsigned long long)shim_esock_listener_id(s), (int)uc.pid);
        real_close(lfd);
    } else if (a.err == PH_ESAME) {
        SHIM_LOG(RUDP_LOG_WARN, "listener %llu: process %d listens on the same socket, and "
                 "cannot share the listener: %s", (unsigned long long)shim_esock_listener_id(s),
                 (int)uc.pid, shim_strerror(lerr));
    }
    return 1;
}

/* The share request parked on s, if any, closed. */
static void share_unpark(esock *s)
{
    phsock *q = &port_of_sock(s)->phq;
    if (!shim_watch_on(&q->w))
        return;
    shim_engine_unwatch(shim_esock_engine(s), q->fd);
    shim_close_owned(q->fd);
    q->fd = -1;
    q->w.type = 0;
}

/* Share request fd, its message not there yet, waits in the engine's epoll
 * for it (shim_porthand_event answers it then). One per listener: a newer
 * request ends an older one still waiting, so an asker that never sends
 * holds one fd at most, until the next request or the listener's end. */
static void share_park(esock *s, int fd)
{
    phsock *q = &port_of_sock(s)->phq;
    share_unpark(s);
    fd = shim_fd_move_high(fd);
    shim_own_fd(fd, 1);
    shim_watch_set(&q->w, &ph_ops);
    q->fd = fd;
    q->s = s;
    q->ino = 0;
    if (shim_engine_watch(shim_esock_engine(s), fd, EPOLLIN | EPOLLRDHUP, &q->w) < 0) {
        shim_close_owned(fd);
        q->fd = -1;
        q->w.type = 0;
    }
}



/* Whether the peer of fd is a share request's: bound (autobind, a name the
 * kernel chose), where a port question's is not. Its message's magic is
 * what makes it one (share_answer). */
static int share_asker(int fd)
{
    struct sockaddr_un un;
    socklen_t ul = sizeof un;
    return real_getpeername(fd, (struct sockaddr *)&un, &ul) == 0 &&
           ul > offsetof(struct sockaddr_un, sun_path);
}

void shim_porthand_event(phsock *p, rudp_time now)
{
    esock *s = p->s;
    if (p == &port_of_sock(s)->phq) { /* a parked share request: its message, or its end */
        if (share_answer(s, p->fd))
            share_unpark(s);
        return;
    }
    for (int i = 0; i < PH_BATCH && shim_watch_on(&p->w); i++) {
        int fd = real_accept4(p->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN: all taken */
        if (share_asker(fd)) {
            if (share_answer(s, fd))
                real_close(fd);
            else
                share_park(s, fd);
            continue;
        }
        struct ucred uc;
        socklen_t ul = sizeof uc;
        if (real_getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) < 0)
            uc.pid = 0;
        ph_answer a = {.magic = PH_MAGIC};
        if (shim_engine_listener_live(s, now))
            a.err = EADDRINUSE;
        else if (shim_watch_on(&p->w)) /* s still open: connections on it */
            a.moved = (uint32_t)shim_port_hand_over(shim_esock_engine(s), s, (int)uc.pid);
        /* else s closed with its listener: the port is free. Either way
         * this name went with it (p closed, the loop ends). */
        (void)real_sendto(fd, &a, sizeof a, MSG_DONTWAIT | MSG_NOSIGNAL, NULL, 0);
        real_close(fd);
    }
}

int shim_porthand_ask(uint64_t ino, uid_t owner, unsigned *moved)
{
    *moved = 0;
    int fd = real_socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int r = -1;
    struct sockaddr_un un;
    socklen_t ul = ph_name(ino, &un);
    if (real_connect(fd, (struct sockaddr *)&un, ul) < 0) {
        SHIM_LOG(RUDP_LOG_DEBUG, "UDP socket %llu: %s", (unsigned long long)ino, shim_strerror(errno));
        goto out; /* ECONNREFUSED: nobody's name, not ours */
    }
    struct ucred uc;
    socklen_t cl = sizeof uc;
    if (real_getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &cl) < 0 || uc.uid != owner)
        goto out; /* held by another user than the socket's: a squatter */
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    int n;
    do
        n = real_poll(&pf, 1, ASK_WAIT_MS);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        goto out; /* no answer */
    ph_answer a;
    ssize_t got = real_recvfrom(fd, &a, sizeof a, 0, NULL, NULL);
    if (got == 0 || (got < 0 && errno == ECONNRESET)) {
        /* The holder closed the name unasked: its socket closed (the
         * name goes last, engine.c's shim_esock_close), the listener stopped
         * by its own check as the process that held it went. */
        r = 0;
        goto out;
    }
    if (got != (ssize_t)sizeof a || a.magic != PH_MAGIC)
        goto out;
    if (a.err == 0) {
        *moved = a.moved;
        r = 0;
    } else if (a.err == EADDRINUSE) {
        r = EADDRINUSE;
    }
out:
    SHIM_LOG(RUDP_LOG_DEBUG, "UDP socket %llu: asked for its port: %s",
             (unsigned long long)ino, r == 0 ? "given up" : r > 0 ? "a live listener's" :
             "not ours, or no answer");
    real_close(fd);
    return r;
}

/* One request; *unanswered set when the holder closed it with no answer
 * (it parks one request per listener and ends an older one for a newer:
 * several processes listening at once on a shared socket). */
static int share_try(uint64_t ino, uid_t owner, int tcp_fd, int *same, int *unanswered)
{
    *same = 0;
    *unanswered = 0;
    /* Only a holder of our own user is asked: it could accept from the
     * listener it gives, and a stranger must learn nothing. */
    if (owner != geteuid())
        return -1;
    int fd = real_socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int r = -1;
    /* autobind: a name the kernel chooses, which tells the holder that a
     * share request follows; nobody can take it ahead of us */
    struct sockaddr_un me;
    memset(&me, 0, sizeof me);
    me.sun_family = AF_UNIX;
    struct sockaddr_un un;
    socklen_t ul = ph_name(ino, &un);
    if (real_bind(fd, (struct sockaddr *)&me, (socklen_t)sizeof(sa_family_t)) < 0 ||
        real_connect(fd, (struct sockaddr *)&un, ul) < 0)
        goto out;
    struct ucred hc;
    socklen_t cl = sizeof hc;
    if (real_getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &hc, &cl) < 0 || hc.uid != geteuid())
        goto out; /* held by another user than ours: a squatter */
    ph_share_req q = {.magic = PH_SHARE_MAGIC, .fd = tcp_fd};
    if (send_with_fd(fd, &q, sizeof q, -1, 0) != (ssize_t)sizeof q)
        goto out;
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    int k;
    do
        k = real_poll(&pf, 1, ASK_WAIT_MS);
    while (k < 0 && errno == EINTR);
    if (k <= 0)
        goto out;
    ph_answer a;
    struct iovec ao = {&a, sizeof a};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(4 * sizeof(int))];
    } cb;
    memset(&cb, 0, sizeof cb);
    struct msghdr am = {.msg_iov = &ao, .msg_iovlen = 1, .msg_control = cb.buf,
                        .msg_controllen = sizeof cb.buf};
    ssize_t got = real_recvmsg(fd, &am, MSG_CMSG_CLOEXEC);
    *unanswered = got == 0;
    int lfd = got >= 0 ? fds_received(&am) : -1;
    if (got == (ssize_t)sizeof a && a.magic == PH_MAGIC && a.err == PH_ESAME)
        *same = 1; /* it is the holder's own socket: leave it be */
    /* The listener given must be the holder's (made and listened by the
     * process that holds the name) and of our user: one a holder merely
     * passes on is not ours to accept from. */
    struct ucred lc;
    cl = sizeof lc;
    struct stat st;
    int t = 0;
    socklen_t tl = sizeof t;
    if (got == (ssize_t)sizeof a && a.magic == PH_MAGIC && a.err == 0 && lfd >= 0 &&
        fstat(lfd, &st) == 0 && S_ISSOCK(st.st_mode) &&
        real_getsockopt(lfd, SOL_SOCKET, SO_ACCEPTCONN, &t, &tl) == 0 && t == 1 &&
        real_getsockopt(lfd, SOL_SOCKET, SO_PEERCRED, &lc, &cl) == 0 &&
        lc.pid == hc.pid && lc.uid == geteuid()) {
        r = lfd;
        *same = 1;
    } else if (lfd >= 0) {
        real_close(lfd);
    }
out:
    SHIM_LOG(RUDP_LOG_DEBUG, "UDP socket %llu: asked to share its listener: %s",
             (unsigned long long)ino, r >= 0 ? "shared" : *same ? "the same socket, not shared" :
             "no");
    real_close(fd);
    return r;
}

int shim_porthand_share(uint64_t ino, uid_t owner, int tcp_fd, int *same)
{
    int r = -1, unanswered = 1;
    for (int i = 0; i < 3 && r < 0 && unanswered; i++)
        r = share_try(ino, owner, tcp_fd, same, &unanswered);
    return r;
}

typedef struct named_req {
    const uint32_t *ino, *uid;
    int n;
    uint8_t *named;
} named_req;

/* One listening unix socket: "\0rudp-udp <inode>" of the UDP socket's
 * owner names it. */
static void named_one(const char *name, size_t len, uid_t uid, void *ctx)
{
    static const char pre[] = "\0rudp-udp "; /* ph_name's, without the digits */
    const size_t pl = sizeof pre - 1;
    named_req *q = ctx;
    if (len <= pl || len > pl + 20 || memcmp(name, pre, pl) != 0)
        return;
    uint64_t v = 0;
    for (size_t i = pl; i < len; i++) {
        if (name[i] < '0' || name[i] > '9')
            return;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    for (int i = 0; i < q->n; i++)
        if (q->ino[i] == v && q->uid[i] == (uint32_t)uid)
            q->named[i] = 1;
}

int shim_porthand_named(const uint32_t *ino, const uint32_t *uid, int n, uint8_t *named)
{
    memset(named, 0, (size_t)n);
    named_req q = {.ino = ino, .uid = uid, .n = n, .named = named};
    return shim_unix_listening_names(named_one, &q);
}

/* Ports whose connections moved off at a bind() (shim_porthand_reclaim):
 * the listen() that follows on them stays quiet. A few at a time. */
#define RECLAIMED_MAX 8
static struct {
    unsigned port;
    rudp_time until;
} reclaimed[RECLAIMED_MAX];
static shim_mutex reclaimed_mu = SHIM_MUTEX_INITIALIZER;

int shim_porthand_reclaim(int fd, const struct sockaddr *addr, socklen_t len)
{
    if ((addr->sa_family != AF_INET && addr->sa_family != AF_INET6) ||
        len < (addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                            : sizeof(struct sockaddr_in)))
        return 0;
    int reuse = 0, v6only = 0;
    socklen_t l = sizeof reuse;
    if (real_getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, &l) < 0 || !reuse)
        return 0; /* without it the old connections hold the port: the kernel's answer */
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    memcpy(&ss, addr, addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                  : sizeof(struct sockaddr_in));
    unsigned port = shim_ss_port(&ss);
    if (port == 0)
        return 0;
    l = sizeof v6only;
    if (addr->sa_family == AF_INET6)
        real_getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &l);
    unsigned moved = 0;
    int f = shim_port_foreign_udp(addr->sa_family, &ss, v6only, &moved);
    SHIM_LOG(RUDP_LOG_DEBUG, "bind: TCP port %u in use; its UDP sockets elsewhere: %s", port,
             f == 0 ? "none left" : f == 1 ? "a stranger's" : f == 2 ? "a live listener's" : "?");
    if (f != 0)
        return 0; /* a stranger's, or a live listener: the kernel is right */
    if (moved) {
        rudp_time now = shim_now();
        shim_mutex_lock(&reclaimed_mu);
        int k = 0;
        for (int i = 0; i < RECLAIMED_MAX; i++)
            if (reclaimed[i].port == port || reclaimed[i].until < reclaimed[k].until)
                k = i;
        reclaimed[k].port = port;
        reclaimed[k].until = now + SHIM_QUIET_AFTER_MOVE;
        shim_mutex_unlock(&reclaimed_mu);
    }
    return 1;
}

int shim_porthand_recent(const struct sockaddr_storage *local)
{
    unsigned port = shim_ss_port(local);
    rudp_time now = shim_now();
    int r = 0;
    shim_mutex_lock(&reclaimed_mu);
    for (int i = 0; i < RECLAIMED_MAX; i++)
        if (reclaimed[i].port == port && now < reclaimed[i].until)
            r = 1;
    shim_mutex_unlock(&reclaimed_mu);
    return r;
}

/* A name's epoll event (the engine's dispatch, hooks.h). */
static void ph_event(void *obj, uint32_t events, rudp_time now)
{
    (void)events;
    shim_porthand_event(obj, now);
}

static const shim_watch_ops ph_ops = {.event = ph_event};
