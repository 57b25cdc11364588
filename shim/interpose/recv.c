/*
 * recv.c: how a connection that ended abnormally is told to the program.
 *
 * TCP ends a connection that timed out (the user timeout, keepalive) or
 * was reset with tcp_done(): sk_err holds the cause, and the next read,
 * write or getsockopt(SO_ERROR) takes it (sock_error(): once), after the
 * bytes already received. A reader that never writes learns ETIMEDOUT or
 * ECONNRESET from read(), never a clean end of file.
 *
 * A bridge can raise one error: ECONNRESET, when its engine end closes
 * holding bytes unread (unix_release_sock()); engine/bridge.c closes it so
 * on every abnormal end, having recorded the cause in the slot (end_error,
 * and so_error until something takes it). So every reader sees an error:
 * the calls no LD_PRELOAD reaches (stdio's internal reads, sendfile,
 * splice, a supervised program's reads) ECONNRESET, and the calls here the
 * cause itself. Writes (appsend.c, msgaddr.c) answer the cause first too.
 *
 * read(), readv() and recv() and their _FORTIFY_SOURCE forms are
 * interposed for that alone: each is libc's call, and only a failure with
 * ECONNRESET costs a look at the fd (recvfrom, recvmsg and recvmmsg,
 * interposed for their addresses, do the same: msgaddr.c, mmsg.c).
 */
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "interpose.h"

/* The slot of fd's connection, if fd is an app's end of one of our
 * bridges and the slot can be had without waiting: read() is
 * async-signal-safe, and a handler's read of a reset socket must not wait
 * for a lock the thread it interrupted holds (connect, close, dup2). The
 * peer's name carries slot and id (no lock); the fd's hint has the slot
 * where the number is the engines' own, else the slot table is tried. */
static shim_slot *ended_slot(int fd)
{
    shim_name n;
    if (shim_name_get(fd, 1, &n) != 1 || n.kind != SHIM_NAME_ENGINE || n.slot == UINT32_MAX)
        return NULL;
    shim_slot *s = shim_fd_hinted(fd);
    if (!s || atomic_load(&s->id) != n.id)
        s = shim_slot_tryget_pid(n.slot, n.id, n.pid);
    if (!s)
        return NULL;
    int st = atomic_load(&s->state);
    return (st == SHIM_SLOT_CLOSED || st == SHIM_SLOT_FAILED) && atomic_load(&s->end_error) > 0
               ? s
               : NULL;
}

/* What a receive call that failed with ECONNRESET, or read EOF, on fd
 * says instead (errno kept): the connection's cause, taken once as TCP's
 * sock_error() takes sk_err (>0); 0 once it was taken (by SO_ERROR or a
 * send), as TCP's reads say then; -1: as the kernel said (not ours, or
 * the slot not to be had). eof: for an EOF, which is the cause only
 * where the peer's FIN never came (SHIM_SLOT_F_EOF_ERR). */
static int cause_of(int fd, int eof)
{
    int saved = errno;
    shim_slot *s = ended_slot(fd);
    int cause = -1;
    if (s && (!eof || (atomic_load(&s->flags) & SHIM_SLOT_F_EOF_ERR))) {
        cause = atomic_exchange(&s->so_error, 0);
        if (cause < 0)
            cause = 0;
        if (cause > 0)
            shim_recv_error_taken(fd);
    }
    errno = saved;
    return cause;
}

/* The connection's error was taken (a send, SO_ERROR, a read): so is the
 * bridge's own (the ECONNRESET its engine end's close left on fd,
 * unix_release_sock()), as TCP's sock_error() clears sk_err: else poll()
 * went on showing POLLERR after a send() had said ECONNRESET. A read that
 * met it took it already; this finds none then. */
void shim_recv_error_taken(int fd)
{
    int e = 0;
    socklen_t l = sizeof e;
    real_getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l);
}

int shim_recv_errno(int fd, int err)
{
    if (err != ECONNRESET)
        return err;
    int cause = cause_of(fd, 0);
    return cause > 0 ? cause : err;
}

int shim_send_ended(int fd, shim_slot *hint)
{
    /* A slot's state is one load: the look at the fd (system calls) only
     * for a connection already over, with its cause untaken. */
    int st = atomic_load_explicit(&hint->state, memory_order_relaxed);
    if ((st != SHIM_SLOT_CLOSED && st != SHIM_SLOT_FAILED) ||
        atomic_load_explicit(&hint->so_error, memory_order_relaxed) == 0)
        return 0;
    int cause = cause_of(fd, 0);
    return cause > 0 ? cause : 0;
}

/* glibc's _FORTIFY_SOURCE entry points (bits/unistd.h, bits/socket2.h
 * call them; no header declares them). */
ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                       struct sockaddr *addr, socklen_t *alen);

/* r, with errno the connection's cause where the bridge said ECONNRESET
 * (0 if the cause was taken already, as TCP's read then); or for an EOF
 * (asked for n > 0 bytes) that is none: an abnormal end whose ECONNRESET
 * could not be made (the app had shut down writing) or was taken by a
 * short read (engine/bridge.c, SHIM_SLOT_F_EOF_ERR). That needs the fd's
 * hint (no system call for the EOFs of everything else), then the fd
 * itself is checked. */
ssize_t shim_recv_told(int fd, ssize_t r, size_t n)
{
    if (r < 0 && errno == ECONNRESET) {
        int cause = cause_of(fd, 0);
        if (cause == 0)
            return 0; /* taken already: TCP's read says 0 then */
        if (cause > 0)
            errno = cause;
    } else if (r == 0 && n > 0) {
        /* the fd's hint first: no system call for the EOFs of the rest */
        shim_slot *h = shim_fd_hinted(fd);
        int cause = h && (atomic_load_explicit(&h->flags, memory_order_relaxed) &
                          SHIM_SLOT_F_EOF_ERR)
                        ? cause_of(fd, 1)
                        : 0;
        if (cause > 0) {
            errno = cause;
            return -1;
        }
    }
    return r;
}
#define told shim_recv_told

size_t shim_iov_bytes(const struct iovec *iov, int cnt)
{
    size_t n = 0;
    for (int i = 0; iov && i < cnt; i++)
        n += iov[i].iov_len;
    return n;
}

/* ---- the app thread's receive (RUDP_APP_RECV, engine/apprecv.c) ----
 *
 * A blocking read of a bridge with nothing in it waits on the connection's
 * UDP socket itself rather than in the kernel's read of the bridge. A peek
 * that does not wait comes first: with anything there (or at EOF, or on an
 * error) the call is the kernel's own, which keeps its low-water mark; a
 * non-blocking socket is answered EAGAIN at once. Only a read that would
 * block waits here, and only where that wait ends as the kernel's would:
 * no receive timeout or low-water mark on the socket, and flags no other
 * than these. Signals are held back while it waits (by ppoll()'s own
 * mask inside a section that defers handlers, base/crit.c; else by the
 * thread's mask); one that comes ends the wait still pending (or
 * deferred), and is let in once it is known whether the kernel's read
 * would have restarted after its handler (SA_RESTART: the wait goes on)
 * or said EINTR (lifetime/signals.c). A signal sent to the
 * process meanwhile goes to another of its threads that lets it in, if
 * there is one (the kernel may pick any: man 7 signal). Otherwise, and
 * whenever the engine's part cannot be taken, the call is the kernel's,
 * as before. */
#define APP_RECV_FLAGS (MSG_PEEK | MSG_NOSIGNAL | MSG_CMSG_CLOEXEC)

/* No receive timeout: what the wait does not keep. */
static int no_timeout(int fd)
{
    struct timeval tv;
    socklen_t tl = sizeof tv;
    return real_getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &tl) == 0 && tv.tv_sec == 0 &&
           tv.tv_usec == 0;
}

/* ... and a low-water mark of 1, nor that: a read then returns what there
 * is, blocking or not (also what a poll's kept bytes need, apprecv.c) */
static int low_one(int fd)
{
    int low = 1;
    socklen_t ll = sizeof low;
    return real_getsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &low, &ll) == 0 && low <= 1;
}

/* No peek offset (SO_PEEK_OFF -1, or none to ask). */
static int no_peek_off(int fd)
{
    int off = -1;
    socklen_t ol = sizeof off;
    return real_getsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &off, &ol) < 0 || off < 0;
}

/* A reader cancelled in its wait (ppoll() is a cancellation point) leaves
 * its section for its cleanup handlers: its mask its own again (ppoll's,
 * holding every signal, is not put back by the unwinding), and its
 * deferred signals let in, rather than a thread that defers every signal
 * to an end it never reaches (one that came then was lost with it, where
 * another thread would have taken it: a review's find, 2026-12-01). */
typedef struct recv_cleanup {
    shim_crit *crit;
    const sigset_t *old;
} recv_cleanup;

static void recv_cancelled(void *arg)
{
    recv_cleanup *c = arg;
    shim_cancel_unwound();
    shim_crit_leave_cancelled(c->crit, c->old);
}

static int recv_wait(int fd, const sigset_t *old, const sigset_t *hold, shim_app_direct *d,
                     shim_crit *crit)
{
    int w;
    recv_cleanup rc = {.crit = crit, .old = old};
    pthread_cleanup_push(recv_cancelled, &rc);
    w = shim_engine_app_recv_wait(fd, old, hold, d);
    pthread_cleanup_pop(0);
    return w;
}

/* Inside crit, a section (base/crit.c) that holds every signal or
 * defers the program's handlers to its end: 1 with *out the call's result
 * (errno set); 0: make the kernel's call; -1: a signal interrupted the
 * wait and the kernel's read would say EINTR; -2: as 0, and crit is over
 * (a handler left its thread holding SIGSEGV or SIGBUS). */
static int app_recv_held(int fd, uint64_t ino, struct msghdr *m, int flags, shim_crit *crit,
                         ssize_t *out)
{
    /* a peek leaves the bytes where they are: through the bridge */
    shim_app_direct d = {.iov = m->msg_iov, .iovcnt = (int)m->msg_iovlen};
    /* Deferring, the wait in the kernel takes the held mask itself, as
     * ppoll() does: no rt_sigprocmask around it (two of a blocked read's
     * six system calls, 2026-12-01). A signal that comes outside the wait
     * is deferred, one that comes in it stays pending, and the signalfd
     * ends the wait; either is delivered to the section, which defers it.
     * What was deferred is what the program let in (its mask hint only
     * says what the wait watches: a stale one makes it hear late, never
     * wrongly). */
    sigset_t hold_all; /* each call's own: no set another thread is filling */
    shim_sigfill_but_faults(&hold_all);
    const sigset_t *hold = crit->masked ? NULL : &hold_all;
    sigset_t old;
    shim_crit_mask_hint(crit, &old);
    for (;;) {
        sigset_t pend, none;
        if (hold && shim_crit_deferred_set(&pend)) {
            /* the program's handlers to run: the read interrupted (with
             * SA_RESTART or not) as the kernel's would take it */
            sigemptyset(&none);
            if (shim_signals_interrupt(&pend, &none))
                return -1;
            if (!shim_crit_cycle(crit)) /* their handlers run, then wait again */
                return -2;
            /* entered again by the mask where deferring stopped meanwhile
             * (a keeper's hand-over): then as that */
            hold = crit->masked ? NULL : &hold_all;
            shim_crit_mask_hint(crit, &old);
            continue;
        }
        int w = recv_wait(fd, &old, hold, flags & MSG_PEEK ? NULL : &d, crit);
        /* The kernel's blocked read holds its file: a close() or dup2() of
         * the number meanwhile changes nothing for it. This wait holds
         * only the number, which may now name another connection (a
         * program closing a socket under a reader and connecting again):
         * neither the read below nor the kernel's (a wait that timed out,
         * or was not taken) may read that one's bytes. EBADF then, as for
         * a number closed before the call (a helper's hunt, 2026-11-29:
         * the blocked read returned the new connection's bytes, 10 runs of
         * 10). Bytes that came straight into the buffer are the waited
         * connection's: nothing to ask then. */
        if (d.got == 0 && ino && shim_fd_ino(fd) != ino) {
            *out = -1;
            errno = EBADF;
            return 1;
        }
        if (hold && w != 1 && d.got == 0 && shim_crit_deferred()) {
            continue; /* a signal came: above */
        } else if (hold && w == -EINTR) {
            /* woken for a signal the program holds (a stale hint): the
             * mask asked, and the wait watches what it lets in */
            shim_crit_mask_ask(crit, &old);
            continue;
        } else if (w == -EINTR) {
            if (sigpending(&pend) < 0)
                return 0;
            if (shim_signals_interrupt(&pend, &old))
                return -1;
            /* SA_RESTART, or a signal that interrupts nothing: let in (its
             * handler runs now), then wait again, as the kernel's read
             * restarts; only what was pending, so that one that comes
             * meanwhile is looked at too */
            shim_signals_let_in(&pend, &old);
        } else if (w != 1) {
            return 0; /* not taken, or nothing came for a while */
        }
        if (d.got != 0) { /* straight into the caller's buffer */
            *out = d.got > 0 ? d.got : -1;
            if (d.got < 0)
                errno = (int)-d.got;
            return 1;
        }
        ssize_t r = real_recvmsg(fd, m, flags | MSG_DONTWAIT);
        if (r >= 0 || errno != EAGAIN) {
            *out = r;
            return 1;
        }
    }
}

/* The fd's receive mode (state.h: rxmode): 1 plain blocking, 0 not
 * (O_NONBLOCK, a receive timeout or a low-water mark), -1 unknown: asked
 * of the kernel once and kept in the slot until changed; *fl the fd's
 * status flags when they were asked for now (else -1). */
static int rx_mode(int fd, shim_slot *h, int *fl)
{
    uint32_t mode;
    int plain = shim_slot_rx_mode(h, &mode);
    *fl = -1;
    if (plain >= 0)
        return plain;
    *fl = real_fcntl(fd, F_GETFL);
    if (*fl < 0)
        return -1;
    int low1 = low_one(fd);
    plain = !(*fl & O_NONBLOCK) && low1 && no_timeout(fd);
    /* noted only where the hints are this fd table's (a CLONE_VM child
     * numbers its own files); a poll's bytes are kept for the read only
     * where it returns what is there and peeks start at the front (no
     * SO_PEEK_OFF, which a take does not follow) */
    if (shim_procenv_table() == 0)
        shim_slot_rx_note(h, mode, plain, low1 && no_peek_off(fd));
    return plain;
}

void shim_recv_rx_learn(int fd, shim_slot *h)
{
    uint32_t mode;
    if (shim_slot_rx_mode(h, &mode) >= 0 || (mode & SHIM_RX_FOREIGN))
        return; /* known (or never: passed on) */
    int fl, saved = errno;
    rx_mode(fd, h, &fl);
    errno = saved;
}

/* Every change of a read mode the shim sees (rx_changed in sockopt.c:
 * O_NONBLOCK, SO_RCVTIMEO, SO_RCVLOWAT, SO_PEEK_OFF), counted for the
 * whole process: a change to a number whose slot hint is not set yet (a
 * bridge being placed) may find no slot to mark (named_slot() is skipped
 * in a sandbox and gives up on a busy lock). */
static _Atomic uint64_t rx_changes;

void shim_recv_rx_changing(void)
{
    atomic_fetch_add_explicit(&rx_changes, 1, memory_order_acq_rel);
}

uint64_t shim_recv_rx_changes(void)
{
    return atomic_load_explicit(&rx_changes, memory_order_acquire);
}

/* What rx_mode() would learn from four system calls per connection (the
 * status flags, SO_RCVLOWAT, SO_RCVTIMEO, SO_PEEK_OFF), at the first
 * epoll_ctl() or read of every connection made or accepted (B12's 3,500):
 * known already where the shim made the bridge from a socket whose options
 * it did not copy. Noted only once the fd's hint names h, and only if no
 * change came since the bridge was placed (changes0): one after the note
 * finds h by the hint and marks it. */
void shim_recv_rx_fresh(shim_slot *h, uint32_t m, int status, uint64_t changes0)
{
    if (h && shim_procenv_table() == 0 && shim_recv_rx_changes() == changes0)
        shim_slot_rx_note(h, m, !(status & O_NONBLOCK), 1);
}

int shim_app_recv_slot(shim_slot *h)
{
    return h && atomic_load_explicit(&h->rtt_us, memory_order_relaxed) <= SHIM_APPRECV_RTT_US;
}

int shim_recv_kept(int fd, struct msghdr *m, int flags, ssize_t *out)
{
    shim_slot *h = shim_fd_hinted(fd);
    if (!h)
        return 0;
    if (!atomic_load_explicit(&h->kept, memory_order_acquire))
        return 0;
    int saved = errno;
    if (shim_engine_app_take(fd, m, flags, out))
        return 1;
    shim_engine_app_unkeep_all(0); /* for the kernel's read: into the bridge */
    errno = saved;
    return 0;
}

/* 1 with *out the call's result (errno set); 0: make the call as before. */
static int app_recv(int fd, struct msghdr *m, int flags, ssize_t *out)
{
    if (shim_recv_kept(fd, m, flags, out))
        return 1;
    if (!shim_cfg.app_recv || (flags & ~APP_RECV_FLAGS))
        return 0;
    shim_slot *h = shim_fd_hinted(fd);
    if (!shim_app_recv_slot(h) || !shim_engine_app_recv_may()) {
        /* an event loop's reads, many connections: the read mode asked
         * again after a change (F_SETFL), for the bytes its epoll wait
         * may keep (one load while known) */
        if (h && shim_engine_app_io_may() && (h = shim_epoll_hint(fd)) != NULL)
            shim_recv_rx_learn(fd, h);
        /* A read that may block in the kernel while the engines' sets
         * linger with the app (an epoll wait's, appwhole.c): they go back
         * first, or what it waits for would wait for their lease
         * (prog_epollmany blockread: 2.3 ms a round, 133 us without the
         * linger). By the mode the slot knows, no system call: an event
         * loop's non-blocking reads keep the sets; one not known yet (or
         * another process's) gives them back. */
        uint32_t mode;
        if (h && !(flags & MSG_DONTWAIT) && shim_slot_rx_mode(h, &mode) != 0)
            shim_engine_app_nowait();
        return 0; /* not a bridge, a long path, or not now */
    }
    int saved = errno;
    /* Non-blocking, or with a receive timeout or a low-water mark: the
     * kernel's read, which never waits here (a peek first would only cost
     * a system call per read of every event loop). */
    int fl;
    int plain = rx_mode(fd, h, &fl);
    if (plain == 0) {
        errno = saved;
        return 0;
    }
    /* Nothing went into the bridge since a reader last found it empty (a
     * ping-pong whose answers came straight into the reader's buffer): no
     * look. A hint only: the wait finds what the bridge holds anyway. */
    uint32_t g = atomic_load_explicit(&h->out_gen, memory_order_acquire);
    int empty = atomic_load_explicit(&h->seen_empty, memory_order_relaxed) ==
                (SHIM_SLOT_EMPTY | g);
    ssize_t r = -1;
    if (!empty) {
        /* What the bridge holds, the kernel's read without waiting: with
         * bytes, EOF or an error there it is the blocking read's answer
         * too (plain: no low-water mark to wait for), in one call where a
         * peek and the read took two. Where the fd is not this table's
         * bridge (a hint from a CLONE_VM child's table) only a peek: the
         * socket there may have a low-water mark. */
        int ours = plain == 1 && shim_procenv_table() == 0;
        char c;
        r = ours ? real_recvmsg(fd, m, flags | MSG_DONTWAIT)
                 : real_recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r < 0 && errno == EAGAIN) {
            atomic_store_explicit(&h->seen_empty, SHIM_SLOT_EMPTY | g, memory_order_relaxed);
        } else if (r < 0 && errno == ENOTSOCK) {
            errno = saved; /* no socket (another fd table's hint) */
            return 0;
        } else if (ours || r < 0) {
            /* bytes or EOF read; or the socket's error (ECONNRESET), which
             * the call took (sock_error() clears it) and is what the read
             * says: answered here, once (t_prog_endings' refused case read
             * 0 when the kernel's read came after) */
            *out = r;
            return 1;
        } else {
            errno = saved; /* something to read, or EOF: the kernel's read */
            return 0;
        }
    }
    errno = EAGAIN;
    if (plain < 0) { /* the mode unknown (fcntl failed): as the kernel's */
        errno = saved;
        return 0;
    }
    shim_crit crit;
    if (!shim_crit_enter_wait(&crit)) { /* fault.c's guarded copies take the faults */
        errno = saved;
        return 0;
    }
    int done = app_recv_held(fd, atomic_load_explicit(&h->app_ino, memory_order_relaxed), m, flags,
                             &crit, &r);
    int err = errno;
    if (done != -2)
        shim_crit_leave(&crit); /* a pending or deferred signal's handler runs here */
    else
        done = 0;
    if (done < 0) {
        *out = -1;
        errno = EINTR;
        return 1;
    }
    errno = done ? err : saved;
    *out = r;
    return done;
}

/*
 * Two receive flags a TCP socket answers and a unix one does not
 * (tcp_recvmsg(); unix_stream_recvmsg() ignores both):
 *   - MSG_TRUNC: the bytes are discarded, not copied; the buffer is not
 *     touched (may be NULL) and the count is what was discarded (peeked,
 *     with MSG_PEEK). The bridge copied them into a buffer of the size
 *     asked for: a program skipping bytes with a small buffer had its
 *     memory written past it, and with NULL said EFAULT for ever.
 *   - MSG_ERRQUEUE: the socket's error queue (timestamps, zero-copy
 *     notices), where nothing is ever queued here: EAGAIN at once. The
 *     bridge read the stream's bytes as if the flag were not there, and a
 *     blocking call waited for them.
 * Here the bytes go into a sink of ours (written by the kernel, never
 * read: one for every thread), at most SINK_IOVS x sizeof sink a call,
 * after any bytes a poll kept (shim_kept_flush: into the bridge first,
 * in order), MSG_WAITALL's loop going on to n (a later call's failure,
 * EINTR or EAGAIN, ends it with the count so far, as a short read). 1
 * with *out the answer (errno set); 0: not a bridge, or neither flag: the
 * call as before. Only for fds that hint at a bridge, checked by name:
 * others (UDP's MSG_TRUNC) pay a bit test.
 */
#define SINK_IOVS 64
static char sink[4096];

int shim_recv_odd(int fd, size_t n, int flags, ssize_t *out)
{
    if (!(flags & (MSG_TRUNC | MSG_ERRQUEUE)) || !shim_fd_hinted(fd))
        return 0;
    int saved = errno;
    shim_name nm;
    if (shim_name_peer(fd, &nm, 0) != 1 || nm.kind != SHIM_NAME_ENGINE) {
        errno = saved;
        return 0;
    }
    if (flags & MSG_ERRQUEUE) {
        errno = EAGAIN;
        *out = -1;
        return 1;
    }
    shim_kept_flush();
    errno = saved;
    struct iovec iov[SINK_IOVS];
    size_t got = 0;
    int fl = flags & ~MSG_TRUNC;
    do {
        size_t want = n - got;
        int k = 0;
        for (; k < SINK_IOVS && want > 0; k++) {
            iov[k].iov_base = sink;
            iov[k].iov_len = want < sizeof sink ? want : sizeof sink;
            want -= iov[k].iov_len;
        }
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)k};
        ssize_t r = real_recvmsg(fd, &m, fl);
        if (r <= 0) {
            if (got) { /* what was discarded, as a short read says */
                errno = saved;
                break;
            }
            *out = r;
            return 1;
        }
        got += (size_t)r;
    } while ((flags & MSG_WAITALL) && !(flags & MSG_PEEK) && got < n);
    *out = (ssize_t)got;
    return 1;
}

static ssize_t app_recv_buf(int fd, void *buf, size_t n, int flags, int *done)
{
    struct iovec v = {.iov_base = buf, .iov_len = n};
    struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1};
    ssize_t r = 0;
    *done = n > 0 && app_recv(fd, &m, flags, &r);
    return r;
}

SHIM_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
    int done;
    ssize_t r = app_recv_buf(fd, buf, n, 0, &done);
    return told(fd, done ? r : real_read(fd, buf, n), n);
}

SHIM_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
    if (cnt > 0 && cnt <= IOV_MAX && shim_iov_bytes(iov, cnt) > 0) {
        struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)cnt};
        ssize_t r;
        if (app_recv(fd, &m, 0, &r))
            return told(fd, r, r == 0 ? shim_iov_bytes(iov, cnt) : 1);
    }
    ssize_t r = real_readv(fd, iov, cnt);
    return told(fd, r, r == 0 ? shim_iov_bytes(iov, cnt) : 1); /* iov proved valid */
}

SHIM_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    int done;
    ssize_t r;
    if (shim_recv_odd(fd, n, flags, &r))
        return told(fd, r, n);
    r = app_recv_buf(fd, buf, n, flags, &done);
    return told(fd, done ? r : real_recv(fd, buf, n, flags), n);
}

SHIM_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    int done = 0;
    ssize_t r = n <= buflen ? app_recv_buf(fd, buf, n, 0, &done) : 0;
    if (done)
        return told(fd, r, n);
    return told(fd, real_read_chk(fd, buf, n, buflen), n);
}

SHIM_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
    int done = 0;
    ssize_t r;
    if (n <= buflen && shim_recv_odd(fd, n, flags, &r))
        return told(fd, r, n);
    r = n <= buflen ? app_recv_buf(fd, buf, n, flags, &done) : 0;
    if (done)
        return told(fd, r, n);
    return told(fd, real_recv_chk(fd, buf, n, buflen, flags), n);
}

SHIM_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                                   struct sockaddr *addr, socklen_t *alen)
{
    socklen_t cap = addr && alen ? *alen : 0;
    struct iovec v = {.iov_base = buf, .iov_len = n};
    struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1};
    ssize_t r;
    if (n <= buflen && shim_recv_odd(fd, n, flags, &r)) {
        if (r >= 0 && cap)
            *alen = 0;
        return told(fd, r, n);
    }
    if (n <= buflen && shim_recv_kept(fd, &m, flags, &r)) {
        if (r >= 0 && cap)
            *alen = 0;
        return r;
    }
    if (n > buflen) /* the _chk's own failure */
        return told(fd, real_recvfrom_chk(fd, buf, n, buflen, flags, addr, alen), n);
    r = shim_msgaddr_recvfrom(fd, buf, n, flags, addr, alen); /* as recvfrom() (msgaddr.c) */
    return told(fd, r, n);
}
