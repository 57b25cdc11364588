/*
 * bridgepump.c: a bridge's pumps, which move the bytes between the
 * application's unix socket and its connection. Bytes the application
 * writes are read from the engine end `efd` straight into the connection's
 * send buffer (reserve/commit); bytes that arrive are written from the
 * receive buffer (peek/consume), so nothing is copied twice and the window
 * only opens as the application reads. Here too: urgent data as AF_UNIX's
 * out-of-band byte, the size of efd's send buffer, and the bytes put
 * straight into the buffer of a reader waiting in its own thread
 * (apprecv.c). Split from bridge.c, whose events and ends call them
 * (bridgepriv.h); everything runs on the thread of the engine that owns
 * the bridge.
 */
#include <errno.h>
#include <linux/sockios.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "bridgepriv.h"

#include "base/poison.h"

/* Buffer chunks (16 KiB each) one bridge read or write may span, and one
 * take or direct copy into a reader's buffer: 256 KiB, a bulk reader's
 * usual read. With 4 (64 KiB) a 256 KiB read after a poll took 64 KiB
 * from the connection and the rest went through the bridge at the next
 * poll; B11's veth pair, 10 s runs alternated: 11.4 against 10.4 Gbit/s,
 * and 13.0 against 11.9 with the reading thread taking the datagrams. */
#define BRIDGE_SPANS 16

void shim_bridge_oob_init(int efd)
{
    int on = 1;
    real_setsockopt(efd, SOL_SOCKET, SO_OOBINLINE, &on, sizeof on);
}

/*
 * What the peer sent and the app has not read waits in two places: the
 * connection's receive buffer (its window: 64 KiB to start, growing only
 * while the app keeps up, conn_app.c) and the unix socket to the app,
 * which our end's send buffer bounds (unix stream sockets charge the
 * sender). The kernel's default (net.core.wmem_default, 208 KiB, doubled
 * to 416 KiB of charge) let a peer that reads nothing take 8 MiB and more
 * from a writer, where TCP stops it at the receiver's SO_RCVBUF (128 KiB:
 * tcp_rmem[1], half of it window) plus the writer's SO_SNDBUF: programs
 * count on their writes to such a peer queueing (libuv's
 * tcp_write_queue_order). 64 KiB (128 KiB of charge, the kernel doubles)
 * shows a reader that has read nothing what TCP's receive buffer
 * (tcp_rmem[1], 128 KiB) shows it: FIONREAD and MSG_PEEK see only this
 * socket, and a reader waiting for a whole 90,000-byte message there
 * waited for ever with 32 KiB (65,408 bytes; prog_recvflags). Beside the
 * 64 KiB window a peer that reads nothing takes 192 KiB from a writer,
 * against TCP's 128 KiB. Measured on loopback (512 MiB, reads of 256 KiB
 * or 16 KiB): no slower than with the default.
 */
void shim_bridge_efd_size(int efd)
{
    int sz = SHIM_BRIDGE_BUF;
    real_setsockopt(efd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
}

/*
 * ... and it grows as TCP's receive buffer does (tcp_rcv_space_adjust:
 * with what the reader took in a round trip, up to tcp_rmem[2]): each
 * time the app takes SHIM_BULK_OUT_BYTES within SHIM_BULK_OUT_MS (bulk_out:
 * 200 Mbit/s and more) efd's buffer doubles, up to SHIM_BRIDGE_BUF_MAX. A
 * reader that never reads, or reads slowly, keeps the 64 KiB above. With
 * 32 KiB a fast reader emptied the bridge every ~30 us on the veth pair
 * (B11): the engine and the reader woke each other for each 30 KB, and
 * the pair ran at 7.6-8.5 Gbit/s; with 256 KiB 10.1-10.5, with 1 MiB
 * 11.1-11.2 (5 s runs, alternated; kernel bbr ~20). Past net.core.wmem_max
 * (208 KiB by default) only with CAP_NET_ADMIN (SO_SNDBUFFORCE), as the
 * engines size their UDP sockets; without it the kernel's cap holds.
 */
static void grow_efd(bridge *b)
{
    /* only on the engine's thread: an app thread running the engine's part
     * (appsend.c, apprecv.c) makes no call the sandbox check did not ask
     * about (sandbox.c); grow_due has the engine's next pump grow it, and
     * grow_b its next wake-up (shim_bridge_grow_due): a reader whose reads
     * take all from the connection (kept bytes) has no pump of the
     * engine's (t_bridge_grow's bulk reader: "never grew", 1 of ~45 runs
     * with two busy loops, every keep taken) */
    if (!pthread_equal(pthread_self(), b->e->thread)) {
        if (!b->e->grow_b && b->efd_buf < SHIM_BRIDGE_BUF_MAX)
            b->e->grow_b = b;
        return;
    }
    if (b->e->grow_b == b)
        b->e->grow_b = NULL;
    b->grow_due = 0;
    int cur = b->efd_buf ? b->efd_buf : SHIM_BRIDGE_BUF;
    if (cur >= SHIM_BRIDGE_BUF_MAX || !b->conn)
        return;
    /* at most half what the connection's window may grow to: an app that
     * set SO_RCVBUF keeps about the buffer it asked for, as TCP stops
     * tuning a receive buffer the program sized */
    rudp_conn_info i;
    rudp_conn_get_info(b->conn, &i);
    int most = SHIM_BRIDGE_BUF_MAX;
    if (i.recv_window / 2 < (uint32_t)most)
        most = (int)(i.recv_window / 2);
    if (cur >= most) {
        b->efd_buf = SHIM_BRIDGE_BUF_MAX; /* not again */
        return;
    }
    int sz = cur * 2 < most ? cur * 2 : most;
    if (real_setsockopt(b->efd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz) < 0)
        real_setsockopt(b->efd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    /* what the kernel took (doubled): net.core.wmem_max caps SO_SNDBUF */
    int got = 0;
    socklen_t gl = sizeof got;
    if (real_getsockopt(b->efd, SOL_SOCKET, SO_SNDBUF, &got, &gl) < 0 || got / 2 <= cur) {
        b->efd_buf = SHIM_BRIDGE_BUF_MAX; /* it grows no further */
        return;
    }
    b->e->bridges_grown++;
    b->efd_buf = got / 2 < sz ? SHIM_BRIDGE_BUF_MAX : sz; /* capped: the last */
}

/*
 * Application -> connection. While bytes leave the unix socket and before
 * `unacked` counts them, the slot's seq is odd, so SIOCOUTQ (unix queue +
 * unacked) never reads low in between.
 *
 * Urgent data: the app's send(MSG_OOB) leaves its last byte in our end as
 * AF_UNIX's one out-of-band byte, with a mark (EPOLLPRI while it is
 * there). Our end has SO_OOBINLINE, so the byte is read in the stream, and
 * a read stops right before it (unix_stream_read_generic: the OOB skb ends
 * a read that copied anything). So where the byte may be next, SIOCATMARK
 * tells us, before the read that takes it, to mark the next stream byte
 * urgent (rudp_conn_urgent_mark). `mark`: check before the first read (the
 * event had EPOLLPRI, or came from the connection, not epoll); the reads
 * after a full one check too (one ioctl per 64 KiB). A first read for an
 * EPOLLIN without EPOLLPRI cannot start at the byte if nothing read from
 * our end since that epoll_pwait2 (b->pumped_poll): epoll saw normal data
 * at the head, and a read stops at the mark once it copied any. If a pump
 * from the connection's side emptied the queue meanwhile, a lone urgent
 * byte sent since may be at the head: the event handler checks then.
 */
void shim_bridge_pump_in(bridge *b, rudp_time now, int mark)
{
    shim_slot *s = shim_bridge_slot(b);
    b->pumped_poll = b->e->polls;
    b->in_drained = 0;
    while (b->conn && (b->established || b->early) && !b->app_eof) {
        /* what the app wrote in memory before goes first; no app thread
         * writes there again until this read is done (txring.c) */
        if (!shim_txring_read_begin(b, now))
            break;
        rudp_span sp[BRIDGE_SPANS];
        struct iovec iov[BRIDGE_SPANS];
        /* Several chunks only while the app keeps them full: a chunk
         * reserved is a chunk allocated. */
        int k = rudp_conn_reserve_spans(b->conn, sp, b->bulk_in ? BRIDGE_SPANS : 1);
        if (k <= 0) {
            shim_txring_read_end(b, -1);
            break; /* full: WRITABLE will resume */
        }
        ssize_t room = 0;
        for (int i = 0; i < k; i++) {
            iov[i].iov_base = sp[i].p;
            iov[i].iov_len = sp[i].len;
            room += (ssize_t)sp[i].len;
        }
        /* Odd seq only while bytes are between the unix queue and
         * `unacked`: one read, not the whole loop, so an engine
         * descheduled meanwhile (a loaded machine) keeps SIOCOUTQ readers
         * waiting only briefly. */
        int at = 0;
        if (mark && real_ioctl(b->efd, SIOCATMARK, &at) == 0 && at)
            rudp_conn_urgent_mark(b->conn);
        if (s)
            atomic_fetch_add(&s->seq, 1);
        ssize_t r = real_readv(b->efd, iov, k);
        shim_txring_read_end(b, r);
        b->bulk_in = r == room;
        if (r > 0) {
            rudp_conn_commit(b->conn, now, (size_t)r);
            if (s) { /* the two gauges alone: the whole info costs a read of the app */
                atomic_store(&s->unacked, rudp_conn_unacked(b->conn));
                atomic_store(&s->unsent, rudp_conn_unsent(b->conn));
            }
        }
        if (s)
            atomic_fetch_add(&s->seq, 1);
        if (r > 0) {
            if (r < room && !b->hup && !mark) {
                b->in_drained = 1;
                break; /* drained: epoll tells us when more comes */
            }
            /* more may follow; a short read with a mark pending may have
             * stopped at it */
            mark = 1;
            continue;
        }
        if (r == 0) {
            b->app_eof = 1;
            if (s && (atomic_load(&s->flags) & SHIM_SLOT_F_LINGER0)) {
                /* close() with SO_LINGER {1, 0} (the flag is set before
                 * the fd closes): a reset, never a FIN first. A busy
                 * engine read this EOF before the hang-up, sent FIN, and
                 * the peer read a clean EOF (t_prog_linger under load). */
                b->app_gone = 1;
                rudp_conn_abort(b->conn, now);
            } else {
                rudp_conn_shutdown(b->conn, now);
                if (!b->peer_eof && b->sock && !b->owns_sock && shim_hook.listener &&
                    shim_hook.listener->closing_first)
                    shim_hook.listener->closing_first(b->sock, now); /* TIME_WAIT */
            }
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            b->in_drained = 1;
        if (errno == ECONNRESET) {
            /* The app closed with bytes we sent it unread: TCP resets,
             * after what the app wrote (shim_bridge_close_unread). */
            b->app_eof = b->app_gone = 1;
            shim_bridge_close_unread(b, now);
        }
        break;
    }
    shim_bridge_publish(b);
}

void shim_bridge_close_unread(bridge *b, rudp_time now)
{
    /* The app's shutdown(SHUT_WR) or SHUT_RDWR before its close() (Java's
     * Socket.close() does both): TCP's FIN left at the shutdown, and the
     * close's reset came after it; the peer, in CLOSE_WAIT by then, reads
     * EOF and its writes say EPIPE. The engine reads the shutdown's EOF
     * only after the bytes before it, and the close's ECONNRESET hides it
     * when both came first (unix_stream_read_generic() says sk_err before
     * RCV_SHUTDOWN): the slot's flag, set before the shutdown, tells. */
    shim_slot *s = shim_bridge_slot(b);
    if (s && (atomic_load(&s->flags) & SHIM_SLOT_F_WR_SHUT))
        rudp_conn_close_reset(b->conn, now); /* the FIN, then the reset */
    else
        rudp_conn_close_unread(b->conn, now);
}

/* Our write to efd said EPIPE: the app closed its end, or shut its
 * reading side. Bytes then came after its close() (or shutdown(SHUT_RDWR):
 * both directions shut, efd hangs up), which TCP answers with a reset after
 * its FIN (bridge_app_closed); after a shutdown(SHUT_RD) alone TCP keeps
 * them, and its close() resets for them unread, as a release does. */
static void app_refused(bridge *b)
{
    b->app_gone = 1;
    struct pollfd p = {.fd = b->efd, .events = 0};
    /* Not bytes that waited for room in the app's end before it closed
     * (out_full): TCP's receive queue held those at the close, which
     * then reset alone (the peer's write says ECONNRESET, not EPIPE and
     * SIGPIPE after a FIN). */
    if (!b->out_full && real_poll(&p, 1, 0) == 1 && (p.revents & POLLHUP))
        b->late_data = 1;
}

/* A reader waiting in its own thread (apprecv.c) whose bridge is empty:
 * the bytes go straight into its buffer, by a guarded copy (fault.c; else
 * the kernel's, process_vm_writev on ourselves): a bad buffer is EFAULT,
 * as TCP's read says, not a fault. Bytes copied, or -1 (errno;
 * the bytes then take the bridge). Once per read: what does not fit takes
 * the bridge, after these. */
static _Atomic int direct_refused; /* a sandbox without process_vm_writev */

static ssize_t pump_direct(bridge *b, const struct iovec *iov, int k)
{
    shim_app_direct *d = b->e->direct;
    b->e->direct_b = NULL;
    if (atomic_load_explicit(&direct_refused, memory_order_relaxed)) {
        errno = EPERM;
        return -1;
    }
    ssize_t got = shim_app_copyv(d->pid, d->iov, d->iovcnt, iov, k, 1);
    if (got > 0) {
        d->got = got;
        b->e->app_direct++;
    } else if (got < 0 && errno == EFAULT) {
        d->got = -EFAULT;
    } else if (got < 0 && (errno == EPERM || errno == ENOSYS)) {
        atomic_store(&direct_refused, 1); /* a sandbox's refusal: not again */
    } /* else (ESRCH once the main thread has ended, EINVAL, ENOMEM): this
       * read through the bridge */
    return got;
}

/* Something went into efd (bytes, the urgent byte, the peer's FIN): the
 * reader's buffer may take nothing straight after it, which would pass it
 * (apprecv.c checks out_gen once, when the wait ends; this, every time). */
static void wrote_efd(bridge *b)
{
    b->out_gen++;
    shim_slot *s = shim_bridge_slot(b);
    if (s) /* after the write: a reader that saw it empty before it looks again */
        atomic_fetch_add_explicit(&s->out_gen, 1, memory_order_release);
    if (b->e->direct_b == b)
        b->e->direct_b = NULL;
    if (b->e->keep_b == b)
        b->e->keep_b = NULL; /* what comes after it may not pass it by (keep) */
    b->efd_dirty = 1;
}

void shim_bridge_grow_due(struct engine *e)
{
    bridge *b = e->grow_b;
    e->grow_b = NULL;
    if (b && b->grow_due)
        grow_efd(b);
}

/* The core's ops.unread: bytes the engine moved into efd that the app has
 * not read yet, so that a DATA_BLOCKED does not grow the receive window for
 * a reader that takes nothing (TCP grows its buffer on the app's reads).
 * SIOCOUTQ counts an AF_UNIX queue's memory, a little over its bytes: an
 * app that reads is seen a little behind, never ahead. */
static uint64_t efd_unread(bridge *b)
{
    int q = 0;
    if (b->efd < 0 || !b->efd_dirty || real_ioctl(b->efd, SIOCOUTQ, &q) < 0 || q < 0)
        return 0;
    if (q == 0)
        b->efd_dirty = 0; /* all read: no need to ask until the next write */
    return (uint64_t)q;
}

uint64_t shim_bridge_unread(rudp_conn *c)
{
    bridge *b = rudp_conn_user(c);
    return b ? efd_unread(b) : 0;
}

/* n bytes passed on to the app: SHIM_BULK_OUT_BYTES within
 * SHIM_BULK_OUT_MS grow efd's buffer (grow_efd); on an app thread's turn
 * (apprecv.c) the engine grows it at its next pump (grow_due). A ping-pong
 * never comes near the mark. */
static void bulk_out(bridge *b, rudp_time now, size_t n)
{
    if (now - b->out_win > RUDP_MS(SHIM_BULK_OUT_MS)) {
        b->out_win = now;
        b->out_win_bytes = 0;
    }
    b->out_win_bytes += n;
    if (b->out_win_bytes >= SHIM_BULK_OUT_BYTES) {
        b->out_win = now;
        b->out_win_bytes = 0;
        b->grow_due = 1;
        grow_efd(b);
    }
}

/*
 * Kept bytes (apprecv.c): in a poll()'s turn (e->keep_b) what comes for
 * the polled bridge stays in the connection instead of going into efd; the
 * poll says POLLIN, and the read after it takes the bytes from there
 * (shim_bridge_take), as a read whose wait the datagram ended gets them
 * (pump_direct): one copy, no write to efd, no read of it. Anything else
 * that pumps the bridge passes them on into efd first, in order: the
 * engine's turn, an app thread's send, any call of the program's that
 * could see the socket another way (interpose.h: shim_kept_flush). The
 * count is process-wide (a hint without turn_mu for those calls), with
 * the engine's own (nmarked); each counts a bridge from its keep until
 * what was kept is in efd (kept_mark_off), not until it is passed on: a
 * call that found none counted would ask the kernel before the write,
 * which then told nothing of bytes a read had just seen (prog_epollkept's
 * rounds with every connection looked at: 6 of 12 runs under two busy
 * loops, 2026-12-02).
 */
static _Atomic int kept_all;

static void count_mark(bridge *b, int on)
{
    if (on == (int)b->kept_counted)
        return;
    b->kept_counted = on ? 1u : 0u;
    int d = on ? 1 : -1;
    atomic_fetch_add_explicit(&kept_all, d, memory_order_relaxed);
    atomic_fetch_add_explicit(&b->e->nmarked, (uint32_t)d, memory_order_relaxed);
}

int shim_bridge_kept_any(void)
{
    return atomic_load_explicit(&kept_all, memory_order_relaxed) > 0;
}

void shim_bridge_kept_forget(void)
{
    atomic_store_explicit(&kept_all, 0, memory_order_relaxed);
}

/* Whether c holds the peer's FIN (after the bytes it has). */
static int fin_in(const rudp_conn *c)
{
    rudp_state st = rudp_conn_state(c);
    return st == RUDP_CLOSE_WAIT || st == RUDP_LAST_ACK || st == RUDP_CLOSING ||
           st == RUDP_TIME_WAIT;
}

/* Whether what comes for b now may stay in its connection (turn_mu): a
 * poll's bridge (keep_b), or in an epoll wait's turn (keep_ep) a bridge
 * registered in that set alone for EPOLLIN (level- or edge-triggered,
 * neither one-shot nor exclusive), whose reads
 * take kept bytes (a low-water mark of 1, no peek offset, not passed to
 * a process we do not see) and not found read by others before. */
static int keep_here(bridge *b, rudp_time now)
{
    struct engine *e = b->e;
    if (e->keep_b == b)
        return 1;
    return e->keep_ep && b->sp && !shim_bridge_keep_off(b, now) && shim_slot_keepable(b->sp) &&
           shim_slot_ep_one(b->sp, e->keep_ep, NULL, NULL);
}

/* b kept (turn_mu), passed on by now + SHIM_KEEP_FOR (the engine wakes
 * by the earliest, kept_at, and passes on each whose time ran out,
 * apprecv.c's shim_apprecv_pass_kept): 0 if the engine
 * keeps its most already, or b is failing (draining: drain() finishes it
 * once what came is passed on) or hung up, or the peer's FIN came: with
 * the bytes in the bridge the poll's look reports POLLRDHUP (and POLLHUP)
 * as TCP's does; nor without a slot, where the read would not know. */
static int keep(bridge *b, rudp_time now)
{
    struct engine *e = b->e;
    if (!b->sp || b->draining || b->hup || fin_in(b->conn))
        return 0;
    /* an edge-triggered set is told again only of bytes that came since
     * (shim_bridge_take notes what a read left) */
    uint32_t rd = (uint32_t)rudp_conn_readable(b->conn);
    if (!b->kept || rd > b->kept_rd)
        b->kept_edge = 1;
    b->kept_rd = rd;
    if (b->kept)
        return 1;
    uint32_t n = atomic_load_explicit(&e->nkept, memory_order_relaxed);
    if (n == SHIM_KEEP_BRIDGES)
        return 0;
    if (e->keep_b != b) {
        /* an epoll wait's: the app must have read all that went into its
         * end before, which its poll's caller saw (quiet) and this one
         * asks, once per write into it (the kept bytes would pass them) */
        efd_unread(b);
        if (b->efd_dirty)
            return 0;
        e->app_kept_ep++;
    }
    e->kept[n] = b;
    atomic_store_explicit(&e->nkept, n + 1, memory_order_relaxed);
    b->kept = 1;
    b->kept_since = now;
    if (now + SHIM_KEEP_FOR < e->kept_at)
        e->kept_at = now + SHIM_KEEP_FOR;
    atomic_store_explicit(&b->sp->kept, 1, memory_order_release);
    count_mark(b, 1);
    e->app_kept++;
    return 1;
}

int shim_bridge_keep_off(const bridge *b, rudp_time now)
{
    return b->keep_off_until && now < b->keep_off_until;
}

/* b's mark off (turn_mu), how: KEEP_TAKEN by the read that emptied it,
 * KEEP_SEEN passed on for a call of ours, KEEP_UNREAD passed on with no
 * read of ours since the poll (its time ran out, or the next poll came):
 * a reader of the bridge we do not see may have found nothing where the
 * poll said POLLIN (a non-blocking one: EAGAIN); SHIM_KEEP_LATE of those
 * with no take between (the slot's kept_unread, which a take zeroes: a
 * read of ours that finds the bytes in the bridge after their time does
 * not, it came late too) and the bridge is kept no more for a while:
 * SHIM_KEEP_OFF_FOR, twice that the next time, and so on up to
 * 2^SHIM_KEEP_OFF_DOUBLINGS times it, until a take. Not for good: a reader of
 * ours preempted past SHIM_KEEP_FOR three times in a row on a busy
 * machine is not stdio's (t_bridge_grow's bulk reader lost its keeps
 * after 11 takes in CI, for the rest of its 2 s). */
enum { KEEP_TAKEN, KEEP_SEEN, KEEP_UNREAD };
static void unkeep(bridge *b, int how)
{
    if (!b->kept)
        return;
    struct engine *e = b->e;
    if (how != KEEP_TAKEN)
        e->kept_passed++;
    uint32_t n = atomic_load_explicit(&e->nkept, memory_order_relaxed);
    for (uint32_t i = 0; i < n; i++)
        if (e->kept[i] == b) {
            e->kept[i] = e->kept[--n];
            break;
        }
    atomic_store_explicit(&e->nkept, n, memory_order_relaxed);
    if (n == 0)
        e->kept_at = RUDP_TIME_NEVER;
    b->kept = 0; /* still counted: kept_mark_off, after the write */
}

/* The slot's mark off (the interposed reads then take the bridge's way),
 * only once what was kept went into efd: a non-blocking reader that found
 * it off before the write would read nothing where a poll or an epoll wait
 * had said POLLIN (wrk's read said EAGAIN, 5 to 60 times in 3 s). */
static void kept_mark_off(bridge *b)
{
    if (b->kept)
        return;
    if (b->sp && atomic_load_explicit(&b->sp->kept, memory_order_relaxed))
        atomic_store_explicit(&b->sp->kept, 0, memory_order_release);
    count_mark(b, 0);
}

void shim_bridge_unkeep(bridge *b)
{
    unkeep(b, KEEP_SEEN);
    kept_mark_off(b);
}

void shim_bridge_pass_kept(bridge *b, rudp_time now, int unread)
{
    if (unread && b->kept && b->sp &&
        atomic_fetch_add_explicit(&b->sp->kept_unread, 1, memory_order_relaxed) + 1 >=
            SHIM_KEEP_LATE) {
        atomic_store_explicit(&b->sp->kept_unread, 0, memory_order_relaxed);
        int d = b->keep_offs < SHIM_KEEP_OFF_DOUBLINGS ? b->keep_offs : SHIM_KEEP_OFF_DOUBLINGS;
        b->keep_off_until = now + (SHIM_KEEP_OFF_FOR << d);
        if (b->keep_offs < UINT8_MAX)
            b->keep_offs++;
        b->e->keeps_off++;
    }
    unkeep(b, unread ? KEEP_UNREAD : KEEP_SEEN);
    shim_bridge_pump_out(b, now);
    shim_bridge_update_interest(b);
}

ssize_t shim_bridge_take(bridge *b, pid_t pid, const struct iovec *to, int cnt, int peek,
                         rudp_time now)
{
    rudp_span sp[BRIDGE_SPANS];
    struct iovec iov[BRIDGE_SPANS];
    uint64_t before;
    int k = b->kept && b->conn ? rudp_conn_peek_spans(b->conn, sp, BRIDGE_SPANS) : 0;
    if (k == 0 || rudp_conn_urgent(b->conn, &before)) {
        shim_bridge_pass_kept(b, now, 0); /* the urgent byte is AF_UNIX's to place */
        return 0;
    }
    for (int i = 0; i < k; i++) {
        iov[i].iov_base = sp[i].p;
        iov[i].iov_len = sp[i].len;
    }
    ssize_t got = shim_app_copyv(pid, to, cnt, iov, k, 1);
    if (got < 0 && errno == EFAULT)
        return -EFAULT; /* as TCP's read: nothing taken */
    if (got <= 0) {
        shim_bridge_pass_kept(b, now, 0); /* the bridge's way, by the kernel's read */
        return 0;
    }
    if (!peek) {
        rudp_conn_consume(b->conn, now, (size_t)got);
        bulk_out(b, now, (size_t)got);
        b->kept_rd = (uint32_t)rudp_conn_readable(b->conn);
        const uint8_t *p;
        if (rudp_conn_peek(b->conn, &p) == 0) {
            unkeep(b, KEEP_TAKEN); /* all taken: a FIN after them goes on */
            shim_bridge_pump_out(b, now);
            shim_bridge_update_interest(b);
        }
    }
    b->e->app_taken++;
    if (!peek)
        b->keep_offs = 0; /* a reader of ours: kept no more again only for SHIM_KEEP_OFF_FOR */
    if (b->sp && atomic_load_explicit(&b->sp->kept_unread, memory_order_relaxed))
        atomic_store_explicit(&b->sp->kept_unread, 0, memory_order_relaxed); /* taken */
    return got;
}

/* Connection -> application (shim_bridge_pump_out, below). */
static void pump_out(bridge *b, rudp_time now)
{
    if (b->grow_due)
        grow_efd(b); /* marked on an app thread's turn: here if on the engine's */
    if (b->kept && !keep_here(b, now))
        unkeep(b, KEEP_SEEN); /* passed on now, before anything after them */
    while (b->conn && !b->app_gone && b->unix_up) {
        rudp_span sp[BRIDGE_SPANS];
        int k = rudp_conn_peek_spans(b->conn, sp, BRIDGE_SPANS);
        if (k == 0) {
            b->out_full = 0;
            unkeep(b, KEEP_SEEN);
            uint8_t x;
            ssize_t r = rudp_conn_read(b->conn, now, &x, 0);
            if (r == 0 && !b->peer_eof) {
                b->peer_eof = 1;
                wrote_efd(b);
                real_shutdown(b->efd, SHUT_WR); /* the peer's FIN: app reads EOF */
            }
            break;
        }
        /* The peer's urgent byte goes to the app as AF_UNIX's out-of-band
         * byte, at its place: SIGURG to the F_SETOWN owner, POLLPRI,
         * SIOCATMARK, recv(MSG_OOB) and SO_OOBINLINE are then the kernel's,
         * as for TCP. The bytes before it go first, without it. */
        uint64_t before;
        int urg = rudp_conn_urgent(b->conn, &before);
        if (urg && before == 0) {
            unkeep(b, KEEP_SEEN);
            ssize_t w = real_send(b->efd, sp[0].p, 1, MSG_OOB | MSG_DONTWAIT | MSG_NOSIGNAL);
            wrote_efd(b);
            if (w == 1) {
                rudp_conn_consume(b->conn, now, 1);
                continue;
            }
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0 && errno == EPIPE)
                app_refused(b);
            break;
        }
        struct iovec iov[BRIDGE_SPANS];
        for (int i = 0; i < k; i++) {
            iov[i].iov_base = sp[i].p;
            iov[i].iov_len = sp[i].len;
            if (urg && sp[i].len >= before) {
                iov[i].iov_len = (size_t)before;
                k = i + 1;
                break;
            }
            before -= sp[i].len;
        }
        if (!urg && keep_here(b, now) && keep(b, now))
            break; /* for the read after the poll (shim_bridge_take) */
        unkeep(b, KEEP_SEEN);
        if (b->e->direct_b == b && !urg) {
            ssize_t c = pump_direct(b, iov, k);
            if (c > 0) {
                rudp_conn_consume(b->conn, now, (size_t)c);
                bulk_out(b, now, (size_t)c);
                continue;
            }
        }
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)k};
        ssize_t w = real_sendmsg(b->efd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
        wrote_efd(b);
        if (w > 0) {
            rudp_conn_consume(b->conn, now, (size_t)w);
            bulk_out(b, now, (size_t)w);
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            b->out_full = 1;
        if (w < 0 && errno == EPIPE) {
            /* The app shut its reading side or closed: data has no reader.
             * TCP resets when data arrives for a closed socket. */
            app_refused(b);
        }
        break;
    }
}

void shim_bridge_pump_out(bridge *b, rudp_time now)
{
    pump_out(b, now);
    kept_mark_off(b); /* after the write into efd (kept_mark_off) */
}
