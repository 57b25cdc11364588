/*
 * exechand.c: a connect still racing (RUDP_FALLBACK=tcp, fallback.c) when
 * the process execs or exits (relay.c carries a won connection on where no
 * image takes it). The keeper goes on with the race; if kernel TCP wins,
 * the socket must reach the new image's fd table, which no other process
 * can write to: the new image's shim takes it.
 *
 * At exec, when some connect of this process races, a SOCK_SEQPACKET
 * socketpair is made: the keeper keeps one end (an engine fd), the new
 * image gets the other from the keeper (execpass.c, with the app fds still
 * racing; nothing crosses the exec open). The new image's shim, at start-up (before main(), so
 * before the program can register the fd with epoll), marks those fds for
 * epollreg.c and starts a thread that waits on its end. When TCP wins, the
 * keeper sends the socket (SCM_RIGHTS) with the app's fd number, the
 * bridge's inode and its slot; the thread puts it at that fd exactly as
 * the engine does in one process (shim_fd_swap_in: dup3 under the lock
 * close() takes, checked by inode, with the fd's flags and the app's epoll
 * registrations) and answers. Only then does the keeper close the bridge,
 * which wakes whoever polls the old end: it finds the TCP socket. So an
 * event loop that only waits (epoll_wait, poll) sees EPOLLOUT on the TCP
 * socket, as from a connect in one process, and nothing before it.
 *
 * The pair is trusted as a pipe is: made by this process before exec
 * (SO_PEERCRED: our own pid, which exec keeps), passed only to the new
 * image (execpass.c checks who asks), close-on-exec all along.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lifetime.h"

#include "base/poison.h"

#define HAND_FDS SHIM_HAND_FDS

typedef struct hand_msg {
    int32_t app_fd;
    int32_t owner; /* the slab's owner */
    uint64_t app_ino;
    uint64_t id;
    uint32_t slot;
} hand_msg;

typedef struct hand_ack {
    uint64_t id;
    int32_t result; /* shim_fd_swap_in's: 1 swapped, -1 the app closed it */
} hand_ack;

/* The keeper's end (in the old image while it execs, then in the keeper);
 * -1: none. */
static int kfd = -1;

void shim_exechand_each_fd(void (*fn)(int *fd, void *ctx), void *ctx)
{
    fn(&kfd, ctx);
}

/* ---- the old image, at exec ---- */

void shim_exechand_prepare(shim_exec_env *x)
{
    x->hand = -1;
    x->hand_apps[0] = 0;
    if (!atomic_load(&shim_fallback_racing) || kfd >= 0)
        return;
    int fds[HAND_FDS];
    int n = shim_fd_list_fallback(fds, HAND_FDS);
    if (n == 0)
        return;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return;
    int k = shim_fd_move_high(sv[0]);
    int img = shim_fd_move_high(sv[1]); /* close-on-exec: the keeper passes it */
    size_t at = 0;
    for (int i = 0; i < n && at < sizeof x->hand_apps; i++)
        at += (size_t)snprintf(x->hand_apps + at, sizeof x->hand_apps - at, "%s%d", i ? "," : "",
                               fds[i]);
    shim_own_fd(k, 1); /* the keeper keeps it */
    kfd = k;
    x->hand = img;
}

void shim_exechand_failed(shim_exec_env *x)
{
    if (x->hand < 0)
        return;
    real_close(x->hand);
    x->hand = -1;
    if (kfd >= 0) {
        shim_own_fd(kfd, 0);
        real_close(kfd);
        kfd = -1;
    }
}

/* ---- the keeper ---- */

int shim_exechand_live(void)
{
    return shim_engines_keeper() && kfd >= 0;
}

int shim_exechand_send(int tfd, int app_fd, uint64_t app_ino, uint32_t slot, uint64_t id)
{
    if (!shim_exechand_live())
        return -ENOTCONN;
    hand_msg m = {.app_fd = app_fd, .owner = (int32_t)shim_slot_owner(), .app_ino = app_ino,
                  .id = id, .slot = slot};
    struct iovec iov = {.iov_base = &m, .iov_len = sizeof m};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = sizeof u.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &tfd, sizeof tfd);
    ssize_t w;
    do
        w = real_sendmsg(kfd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    return w == (ssize_t)sizeof m ? 0 : -(w < 0 ? errno : EIO);
}

/* Answers read but not yet asked for (several engines, several connects). */
static hand_ack acks[HAND_FDS];
static int nacks;
static shim_mutex ack_mu = SHIM_MUTEX_INITIALIZER;

int shim_exechand_answer(uint64_t id, int *result)
{
    int found = 0;
    shim_mutex_lock(&ack_mu);
    for (;;) {
        for (int i = 0; i < nacks; i++) {
            if (acks[i].id == id) {
                *result = acks[i].result;
                acks[i] = acks[--nacks];
                found = 1;
                break;
            }
        }
        if (found || kfd < 0)
            break;
        hand_ack a;
        ssize_t r = real_recv(kfd, &a, sizeof a, MSG_DONTWAIT);
        if (r == 0) { /* the new image's end is gone: nobody will answer */
            *result = -1;
            found = -1;
            break;
        }
        if (r != (ssize_t)sizeof a)
            break;
        if (nacks < HAND_FDS)
            acks[nacks++] = a;
    }
    shim_mutex_unlock(&ack_mu);
    return found;
}

void shim_exechand_idle(void)
{
    if (!shim_engines_keeper() || kfd < 0 || atomic_load(&shim_fallback_racing))
        return;
    shim_own_fd(kfd, 0);
    real_close(kfd); /* the new image's thread reads EOF and ends */
    kfd = -1;
}

/* ---- the new image ---- */

static void *take_loop(void *arg)
{
    int fd = (int)(intptr_t)arg;
    for (;;) {
        hand_msg m;
        struct iovec iov = {.iov_base = &m, .iov_len = sizeof m};
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } u;
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                            .msg_controllen = sizeof u.buf};
        ssize_t r = real_recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        int tfd = -1;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            memcpy(&tfd, CMSG_DATA(c), sizeof tfd);
        hand_ack a = {.id = m.id, .result = -1};
        if (r == (ssize_t)sizeof m && tfd >= 0) {
            shim_slot *s = shim_slot_get_pid(m.slot, m.id, (pid_t)m.owner);
            /* 0 (connect() had not placed the app end) cannot be: that
             * connect() returned before the exec */
            a.result = s && shim_front()->place
                           ? shim_front()->place(s, m.app_fd, m.app_ino, tfd)
                           : -1;
            if (a.result != 1)
                a.result = -1;
        }
        if (tfd >= 0)
            real_close(tfd); /* swapped: the app's fd holds it now */
        ssize_t w;
        do
            w = real_send(fd, &a, sizeof a, MSG_NOSIGNAL);
        while (w < 0 && errno == EINTR);
        if (a.result == 1)
            SHIM_LOG(RUDP_LOG_INFO, "fd %d: connected over kernel TCP by the keeper (after exec)",
                     (int)m.app_fd);
    }
    shim_own_fd(fd, 0);
    real_close(fd);
    return NULL;
}

void shim_exechand_adopt(void)
{
    const char *v;
    int fd = shim_execpass_hand(&v);
    if (fd < 0)
        return;
    /* Only our own pair: SOCK_SEQPACKET, made by this pid before exec. */
    int type = 0;
    socklen_t tl = sizeof type;
    struct ucred cr;
    socklen_t cl = sizeof cr;
    int ok = real_getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 &&
             type == SOCK_SEQPACKET &&
             real_getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0 && cr.pid == getpid();
    if (!ok) {
        real_close(fd);
        return;
    }
    real_fcntl(fd, F_SETFD, FD_CLOEXEC);
    shim_own_fd(fd, 1); /* spared by close_range(), closed in a forked child */
    char *end;
    while (*v) {
        long a = strtol(v, &end, 10);
        if (end == v)
            break;
        if (a >= 0 && a <= INT32_MAX)
            shim_epollreg_mark((int)a); /* its epoll_ctl noted, for the swap */
        v = *end == ',' ? end + 1 : end;
    }
    /* Our thread: it ends when the keeper closes its end (no race left). */
    pthread_t t;
    if (shim_thread_start(&t, take_loop, (void *)(intptr_t)fd) < 0) {
        shim_own_fd(fd, 0);
        real_close(fd);
    }
}
