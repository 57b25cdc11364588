/*
 * appfd.c: the engine acting on an application's fd number, which the app
 * may close or replace at any moment: connect()'s small send buffer given
 * back once the handshake is done, and RUDP_FALLBACK's swap of a connected
 * kernel TCP socket into the fd (fallback.c). Both run under one lock that
 * close() (through shim_sndbuf_forget) and connect() (placing the app end)
 * take too, and check the fd still holds the app end by its inode. And the
 * swap itself (connect(), listen(), the fallback): what belongs to the
 * file rather than to the fd number, carried to the file put there.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state.h"
#include "base/poison.h"

/* ---- connect's small send buffer, given back ----
 *
 * The engine (once the handshake drained the filler) and connect() (when
 * the handshake beat dup3) set the app's fd back to its send buffer, once;
 * close() of that fd forgets it. All under one lock, so nobody looks at an
 * fd number while the app closes or replaces it (TSan saw the engine's
 * fstat race an app's close with RUDP_ENGINES=2). */
static shim_mutex sndbuf_mu = SHIM_MUTEX_INITIALIZER;

void shim_appfd_lock(void)
{
    shim_mutex_lock(&sndbuf_mu);
}

void shim_appfd_unlock(void)
{
    shim_mutex_unlock(&sndbuf_mu);
}

/* fork(): every close() of a bridged fd takes the lock, so a child must
 * not inherit it held by a thread it does not have (the engine sending a
 * reset's byte, another thread's connect()). Taken after the engines are
 * parked and before the slots' and fd records' locks, which the engine and
 * connect() may take while holding it. */
void shim_appfd_atfork_prepare(void)
{
    shim_mutex_lock(&sndbuf_mu);
}

void shim_appfd_atfork_parent(void)
{
    shim_mutex_unlock(&sndbuf_mu);
}

void shim_appfd_atfork_child(void)
{
    shim_mutex_unlock(&sndbuf_mu);
}

/* The size last found to be taken whole (net.core.wmem_max not below it):
 * not read back again (a system call per connection; B12's 3,500). */
static _Atomic int sndbuf_whole;

/* A new app end of a bridge (connect or accept) takes TCP's default send
 * buffer; past net.core.wmem_max only with CAP_NET_ADMIN, as far as the
 * kernel lets us. */
int shim_app_end_sndbuf(int fd, int size)
{
    int v = 0;
    socklen_t vl = sizeof v;
    if (real_setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size) < 0)
        return -1;
    if (size == atomic_load_explicit(&sndbuf_whole, memory_order_relaxed))
        return 0;
    if (real_getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &vl) < 0)
        return 0;
    if (v / 2 < size)
        real_setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size);
    else
        atomic_store_explicit(&sndbuf_whole, size, memory_order_relaxed);
    return 0;
}

/* A raw clone's child (procenv.c): made anew and taken, for
 * shim_appfd_atfork_child to release. */
void shim_appfd_lock_renew(void)
{
    shim_mutex_init(&sndbuf_mu);
    shim_mutex_lock(&sndbuf_mu);
}

/* A copy of the app end with inode ino from the front end (-1: none, or
 * no front end to ask). */
static int reach_other(uint64_t ino)
{
    int (*reach)(uint64_t) = shim_front()->app_end;
    if (!reach || !ino)
        return -1;
    int c = reach(ino);
    /* out of the app's range, as our own fds are (a copy at a low number
     * could be the one its next socket() expected) */
    return c >= 0 && c < SHIM_FD_BASE ? shim_fd_move_high(c) : c;
}

/* A copy of the app end with inode ino, held while we act on it, or -1:
 * the file fd names now if it is that end, else the front end's copy of
 * the program's (rudp-supervise). Never fd itself: the number may be
 * closed or replaced between a check and a use by a thread that takes no
 * lock of ours (an app's dup2; the supervisor closing its copy of the
 * program's socket, whose number its next copy, of the same file, may
 * take: the engine once set the buffer on a number closed after its
 * fstat, saw nothing fail, and the program read 4,608 bytes where it had
 * set 32 KiB, prog_writeq). Called under sndbuf_mu. */
static int app_end_copy(int fd, uint64_t ino)
{
    int c = shim_fd_copy_of(fd, ino);
    if (c < 0) {
        c = reach_other(ino); /* the program's end, in its own process */
        if (c >= 0 && shim_fd_ino(c) != ino) {
            real_close(c);
            c = -1;
        }
    }
    return c;
}

static void restore_locked(shim_slot *s, int fd, uint64_t ino, int size)
{
    int c = fd >= 0 && atomic_load(&s->flags) & SHIM_SLOT_F_SNDBUF ? app_end_copy(fd, ino) : -1;
    if (c >= 0) {
        /* The app's own choice, made while connecting, wins over the
         * size read at connect() (libuv sets it right after
         * uv_tcp_connect: tcp_write_queue_order). */
        int want = atomic_load(&s->sndbuf_want);
        if (want > 0)
            size = want / 2;
        /* the app's choice, or TCP's default (shim_tcp_sndbuf_default),
         * past net.core.wmem_max if the kernel lets us */
        if (shim_app_end_sndbuf(c, size) == 0)
            atomic_fetch_and(&s->flags, ~SHIM_SLOT_F_SNDBUF);
        real_close(c);
    }
}

void shim_sndbuf_restore(shim_slot *s, int fd, uint64_t ino, int size)
{
    shim_mutex_lock(&sndbuf_mu);
    restore_locked(s, fd, ino, size);
    shim_mutex_unlock(&sndbuf_mu);
}

/*
 * The buffer must be back before the filler goes: the app end turns
 * writable the moment it goes, and a program's first send() (8 KiB, right
 * after poll() said POLLOUT) stopped short in the small buffer when the
 * engine, preempted between the drain and its second restore, had found
 * connect() not yet done placing the fd at the first (prog_nbconnect, 2
 * runs in 10 under two busy loops). So the engine's restore, drain and
 * second restore, and connect()'s check after placing (shim_sndbuf_placed),
 * take one lock: either the engine finds fd placed and restores before it
 * drains, or connect() finds the filler gone and restores before it
 * returns.
 */
void shim_sndbuf_established(shim_slot *s, int fd, uint64_t ino, int size,
                             size_t (*drain)(void *), void *arg)
{
    shim_mutex_lock(&sndbuf_mu);
    restore_locked(s, fd, ino, size);
    if (drain(arg) == 0) {
        atomic_fetch_and(&s->flags, ~SHIM_SLOT_F_FILLER);
        restore_locked(s, fd, ino, size); /* fd placed meanwhile: a no-op when done */
    }
    shim_mutex_unlock(&sndbuf_mu);
}

void shim_sndbuf_placed(shim_slot *s, int fd, uint64_t ino, int size)
{
    shim_mutex_lock(&sndbuf_mu);
    if (!(atomic_load(&s->flags) & SHIM_SLOT_F_FILLER))
        restore_locked(s, fd, ino, size);
    shim_mutex_unlock(&sndbuf_mu);
}

int shim_sndbuf_pending_set(shim_slot *s, int opt, const void *val, socklen_t len,
                            int *ret)
{
    if (!(atomic_load(&s->flags) & SHIM_SLOT_F_SNDBUF))
        return 0;
    /* What the kernel makes of the request, asked of a scratch socket:
     * setting it on fd would wake its pollers with POLLOUT (the kernel
     * calls sk_write_space) before the handshake is done. */
    int t = real_socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (t < 0)
        return 0; /* no fd to spare: set fd itself, as before */
    int r = real_setsockopt(t, SOL_SOCKET, opt, val, len);
    int err = errno, v = 0;
    socklen_t vl = sizeof v;
    if (r == 0 && real_getsockopt(t, SOL_SOCKET, SO_SNDBUF, &v, &vl) < 0)
        v = 0;
    real_close(t);
    int held = 0;
    shim_mutex_lock(&sndbuf_mu);
    if (atomic_load(&s->flags) & SHIM_SLOT_F_SNDBUF) {
        held = 1;
        if (r == 0 && v > 0)
            atomic_store(&s->sndbuf_want, v);
    }
    shim_mutex_unlock(&sndbuf_mu);
    if (!held)
        return 0; /* restored meanwhile: fd takes it now */
    *ret = r;
    errno = err;
    return 1;
}

int shim_sndbuf_pending_shown(shim_slot *s, int *v)
{
    int want = atomic_load(&s->sndbuf_want);
    if (!(atomic_load(&s->flags) & SHIM_SLOT_F_SNDBUF) || want <= 0)
        return 0;
    *v = want;
    return 1;
}

void shim_sndbuf_forget(shim_slot *s)
{
    const uint32_t f = SHIM_SLOT_F_SNDBUF | SHIM_SLOT_F_SWAP;
    if (!(atomic_load(&s->flags) & f))
        return;
    shim_mutex_lock(&sndbuf_mu);
    atomic_fetch_and(&s->flags, ~f);
    shim_mutex_unlock(&sndbuf_mu);
}

int shim_fd_swap_in(shim_slot *s, int fd, uint64_t ino, int tfd)
{
    shim_mutex_lock(&sndbuf_mu); /* close() of fd waits for us (shim_sndbuf_forget) */
    uint32_t f = atomic_load(&s->flags);
    int r = -1;
    struct stat st;
    if (!(f & SHIM_SLOT_F_SWAP)) {
        r = -1; /* closed by the app */
    } else if (!(f & SHIM_SLOT_F_PLACED)) {
        r = 0; /* connect() has not put the app end at fd yet */
    } else if (fstat(fd, &st) == 0 && (uint64_t)st.st_ino == ino) {
        shim_fd rec;
        if (shim_fd_get(fd, &rec))
            shim_put_tcp_options(tfd, &rec);
        if (shim_fdswap(fd, tfd, real_fcntl(fd, F_GETFL), real_fcntl(fd, F_GETFD), 0, 0) == 0) {
            shim_fd_del(fd);
            atomic_fetch_and(&s->flags, ~(SHIM_SLOT_F_SWAP | SHIM_SLOT_F_SNDBUF));
            atomic_store(&s->state, SHIM_SLOT_TCP);
            r = 1;
        }
    }
    shim_mutex_unlock(&sndbuf_mu);
    return r;
}

/* ---- a peer's reset as ECONNRESET ----
 *
 * An AF_UNIX stream socket closed while its receive queue holds bytes sets
 * ECONNRESET on its peer (unix_release_sock() in net/unix/af_unix.c); only
 * the app's end can put bytes there. The engine shares the app's fd table,
 * so it sends the byte through the app's fd number, which its slot keeps
 * (shim_fd_put): through a copy of it, whose inode says it is the app's
 * end. Checking the number and then sending through it would not do:
 * another thread's dup2(other_socket, fd) in between (which, unlike
 * close(), takes none of our locks) would put a NUL byte in an unrelated
 * stream; the copy holds the file it was made of whatever happens to the
 * number. Under the lock close() of a bridged fd and fork() take, so no
 * child inherits the copy. Nothing to do when the app wrote bytes the
 * engine has not taken: they are the unread data. */
int shim_appfd_reset_mark(shim_slot *s, int efd)
{
    int inq = 0;
    if (real_ioctl(efd, SIOCINQ, &inq) == 0 && inq > 0)
        return 1;
    if (!s)
        return 0;
    uint64_t ino = atomic_load(&s->app_ino);
    int fd = atomic_load(&s->app_fd);
    if ((fd < 0 && !shim_front()->app_end) || !ino)
        return 0;
    int r = 0;
    shim_mutex_lock(&sndbuf_mu);
    int dfd = app_end_copy(fd, ino);
    if (dfd >= 0) {
        r = real_send(dfd, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1;
        real_close(dfd);
    }
    shim_mutex_unlock(&sndbuf_mu);
    return r;
}

/* ---- the swap: another file at the app's fd number ----
 *
 * dup3 keeps the number and FD_CLOEXEC (asked for); everything the kernel
 * keeps in the file is the old file's and must be given to the new one:
 * the status flags (F_SETFL: O_NONBLOCK, O_ASYNC, O_APPEND), the owner
 * that O_ASYNC's SIGIO and urgent data's SIGURG go to (F_SETOWN_EX: struct
 * file's f_owner) and the signal sent instead of SIGIO (F_SETSIG), and the
 * epoll registrations (epollreg.c). The owner goes first, so the signal of
 * an event right after O_ASYNC finds it. */
int shim_fdswap(int fd, int nfd, int status, int fdflags, int keep_regs, int owner_none)
{
    struct f_owner_ex own;
    if (!owner_none && real_fcntl(fd, F_GETOWN_EX, &own) == 0 && own.pid != 0)
        real_fcntl(nfd, F_SETOWN_EX, &own);
    int sig = (status & O_ASYNC) ? real_fcntl(fd, F_GETSIG) : 0; /* SIGURG ignores it */
    if (sig > 0)
        real_fcntl(nfd, F_SETSIG, sig);
    if (real_fcntl(nfd, F_SETFL, status & (O_NONBLOCK | O_APPEND)) < 0)
        return -errno;
    shim_epollreg_detach(fd);
    int r = real_dup3(nfd, fd, (fdflags & FD_CLOEXEC) ? O_CLOEXEC : 0);
    int err = errno;
    /* fd's records are proved again (fdtab.c); only fd changed file, so
     * every other number's proof stands: a global epoch here cost each
     * connect() a proof by fstat of every other connection at its next
     * call (B12: one of its 7 fstat a connection) */
    shim_fd_reprove(fd);
    shim_epollreg_attach(fd, keep_regs); /* the new file, or the old one back */
    if (r < 0)
        return -err;
    if (keep_regs)
        shim_epollreg_remark(fd); /* the new file may give way too */
    else
        shim_epollreg_unmark(fd);
    /* O_ASYNC only now: the kernel names the fd in the signal (F_SETSIG's
     * si_fd) by the number F_SETFL was called with (fasync_helper). */
    if ((status & O_ASYNC) && real_fcntl(fd, F_SETFL, status & (O_NONBLOCK | O_APPEND | O_ASYNC)) < 0)
        return -errno;
    return 0;
}
