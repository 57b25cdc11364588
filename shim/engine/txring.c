/*
 * txring.c: a write to a bridge handed to its engine in memory
 * (RUDP_SEND_RING), not through the bridge.
 *
 * Through the bridge a write costs two system calls besides the wake-up:
 * the app's write into its end and the engine's read of its own (B13's
 * GET: 1.2 and 1.5 us of the 32.6 us a request costs; kernel TCP's whole
 * write is 5.5). Here the writing thread appends the bytes, with their
 * connection's slot and id, to its engine's arena and writes the engine's
 * eventfd once per batch (`rung`: not again until the engine has taken
 * what was there); the engine takes the arena in its turn (at the
 * eventfd's event, and first thing whenever it pumps a bridge's bytes)
 * into each connection, as if it had read them from the bridge.
 *
 * Order. The engine reads a bridge only with the arena's lock held, and
 * takes the arena first (shim_txring_read_begin); a writer appends only
 * with that lock held and the bridge empty of the app's bytes (SIOCOUTQ
 * of the app's own end 0, asked under the lock). So bytes written into a
 * bridge before a record have all been read into the connection before it
 * is appended, and bytes written after it are read only after the engine
 * took it. (Without the lock across the read, a record appended between
 * the engine's take and its read of bytes written after the record went
 * behind them: 1 run in 5 of t_rx_moderation's nc, sha256 differing.)
 * Bytes the connection has no room for yet wait in the bridge's overflow
 * (b->txo), and the bridge is not read until they are in. Writes we never
 * see (sendfile, splice, stdio's own, io_uring, another process's copy of
 * the fd) go into the bridge and take their place by the same rule. A
 * write after the app's shutdown(SHUT_WR) takes the bridge (its EPIPE):
 * the interposed shutdown marks the slot first.
 *
 * Taken only where the bridge's way could not be told from it: an
 * established connection of this process's engines (not a child's copy,
 * not a keeper's) whose record's inode is still at the fd, nothing unsent
 * (a writer ahead of the network keeps the bridge, its batching and its
 * bound, as with the app-thread send), no TCP_NOTSENT_LOWAT, at most
 * SHIM_APPSEND_MAX bytes waiting here per connection (a writer that
 * outruns the engine meets the bridge's bound, SO_SNDBUF, as before:
 * prog_writeq), flags MSG_NOSIGNAL and MSG_DONTWAIT only (the
 * caller's: a write here neither blocks nor fails), no seccomp filter of
 * the program's (it may refuse the ioctl), and room in the arena; else the
 * kernel's call, as before. The copy is guarded (fault.c: a bad pointer
 * gives EFAULT, from the kernel's call after) with every other signal
 * held, so that no handler runs while the arena's lock is held and none
 * can leave it held (siglongjmp); nothing in it blocks or is a
 * cancellation point. Every other lock on the way is only tried (a
 * handler may have interrupted its holder).
 *
 * exec, exit: the keeper is a copy of the process (lifetime/keeper.c), so
 * the arena goes with it and its engine takes it. fork: the child's copy
 * is never taken (its engines are its own, started afresh); its writes
 * into the connections it inherited take the bridge, after what the
 * parent wrote here.
 */
#include <errno.h>
#include <linux/sockios.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "bridgepriv.h"

#include "base/poison.h"

/* At most this much written ahead of the engine, per engine (a burst
 * beyond it takes the bridge). */
#define ARENA_BYTES (256u * 1024u)

typedef struct ring_rec {
    uint32_t slot;
    uint32_t len;
    uint64_t id;
} ring_rec;

#define REC_SIZE(n) (sizeof(ring_rec) + (((n) + 7u) & ~(size_t)7u))

/* process_vm_readv refused (a sandbox without it): never tried again. */
static _Atomic int copy_refused;

void shim_txring_init(struct engine *e)
{
    pthread_mutex_init(&e->tx.mu, NULL);
    e->tx.closed = 0; /* a keeper's copy was made while its parent's engine paused */
}

void shim_txring_free_arena(struct engine *e)
{
    shim_free(e->tx.buf);
    e->tx.buf = NULL;
}

/* Appends the app's n bytes as a record for rec's connection to e's
 * arena (signals held): 1, or 0 with nothing appended. Under the lock the
 * bridge is checked empty (SIOCOUTQ of the app's end, fd): the engine
 * reads a bridge only with the lock held (shim_txring_read_begin), so
 * bytes written into the bridge before this record have all been taken
 * into the connection by then, and any written after it are read after
 * the engine has taken it. */
static int put(struct engine *e, int fd, pid_t me, shim_slot *s, const shim_fd *rec,
               const struct iovec *iov, int iovcnt, size_t n)
{
    shim_txarena *a = &e->tx;
    size_t need = REC_SIZE(n);
    pthread_mutex_lock(&a->mu);
    int q = -1;
    /* the shutdown flag under the lock: the engine sets it here when it
     * reads the app's EOF (shim_txring_read_end), so that no record comes
     * after one it has read, even from a shutdown we did not see; and the
     * connection still the slot's: the engine unindexes it and passes
     * this lock before the slot can go to another (shim_txring_slot_ends),
     * whose ring_len a late writer would otherwise count into */
    if (a->closed || shim_appsend_engine_of_conn(rec->slot, rec->id) != e ||
        (atomic_load(&s->flags) & SHIM_SLOT_F_WR_SHUT) ||
        atomic_load(&s->ring_len) + n > SHIM_APPSEND_MAX ||
        real_ioctl(fd, SIOCOUTQ, &q) != 0 || q != 0) { /* the app's bytes in the bridge */
        pthread_mutex_unlock(&a->mu);
        return 0;
    }
    if (!a->buf) {
        a->buf = shim_malloc(ARENA_BYTES);
        if (!a->buf) {
            pthread_mutex_unlock(&a->mu);
            return 0;
        }
    }
    if (a->len + need > ARENA_BYTES) {
        pthread_mutex_unlock(&a->mu);
        atomic_fetch_add_explicit(&a->full, 1, memory_order_relaxed);
        return 0;
    }
    uint8_t *p = a->buf + a->len;
    struct iovec to = {.iov_base = p + sizeof(ring_rec), .iov_len = n};
    ssize_t got = shim_app_copyv(me, &to, 1, iov, iovcnt, 0);
    if (got != (ssize_t)n) {
        int err = got < 0 ? errno : 0;
        pthread_mutex_unlock(&a->mu);
        if (err == EPERM || err == ENOSYS)
            atomic_store(&copy_refused, 1);
        return 0; /* EFAULT: the kernel's call says it */
    }
    ring_rec h = {.slot = rec->slot, .len = (uint32_t)n, .id = rec->id};
    memcpy(p, &h, sizeof h);
    a->len += (uint32_t)need;
    atomic_fetch_add(&s->ring_len, (uint32_t)n); /* before the engine can take them */
    atomic_store(&a->any, 1);
    pthread_mutex_unlock(&a->mu);
    return 1;
}

int shim_engine_ring_write(int fd, const struct iovec *iov, int iovcnt, size_t n, ssize_t *sent)
{
    if (!shim_cfg.send_ring || n == 0 || n > SHIM_APPSEND_MAX || shim_sandboxed() ||
        shim_fds_apart() || atomic_load_explicit(&copy_refused, memory_order_relaxed))
        return 0;
    shim_fd rec;
    if (shim_fd_tryget(fd, &rec) != 1 || rec.kind != SHIM_FD_BRIDGED ||
        rec.slot >= SHIM_MAX_SLOTS || rec.sndbuf_shown)
        return 0;
    pid_t me = shim_procenv_self();
    if (__atomic_load_n(&G.pid, __ATOMIC_RELAXED) != me || shim_alloc_held())
        return 0; /* a child's copy; or a handler that interrupted the allocator */
    /* the slot in our own engines' slab (a forked child's inherited
     * connections are its parent's engines'), its app end this fd, and the
     * connection an engine of this image indexed there. After an exec an
     * inherited connection's slot index and id may both be a new one's
     * (each image numbers them from the start): the new image's slab is
     * mapped after the adopted one, so the lookup finds its slot first,
     * and its app end's inode is not this fd's: the inode is what tells;
     * at most one write's worth waiting here per connection (put), so
     * that a writer that outruns the engine meets the bridge's bound
     * (SO_SNDBUF) as before; no command queued before it (TCP_CORK and the
     * like), which the engine runs only after taking the arena */
    struct engine *e = shim_appsend_engine_of_conn(rec.slot, rec.id);
    shim_slot *s = shim_slot_tryget_pid(rec.slot, rec.id, me); /* no lock waited for */
    if (!e || !s || atomic_load(&s->app_ino) != rec.ino ||
        atomic_load(&s->state) != SHIM_SLOT_ESTABLISHED ||
        (atomic_load(&s->flags) & (SHIM_SLOT_F_FILLER | SHIM_SLOT_F_SWAP | SHIM_SLOT_F_WR_SHUT)) ||
        atomic_load_explicit(&s->unsent, memory_order_relaxed) != 0 ||
        atomic_load(&e->cmd_queued))
        return 0;
    shim_crit crit;
    if (!shim_crit_enter(&crit)) /* fault.c's guarded copy takes the faults */
        return 0;
    int done = put(e, fd, me, s, &rec, iov, iovcnt, n);
    /* rung with signals still held, and by the system call itself (not a
     * cancellation point): a thread cancelled or leaving by siglongjmp
     * here would leave `rung` set and the engine never woken. Not while
     * iofd lingers with the app (appwhole.c): its next wait takes the
     * arena first, or whoever ends the linger rings (both clear io_linger
     * before they look at `any`: a writer that found it set has its
     * record seen) */
    if (done && atomic_load(&e->io_linger))
        atomic_fetch_add_explicit(&e->ring_quiet, 1, memory_order_relaxed);
    else if (done)
        shim_txring_ring(e);
    shim_crit_leave(&crit);
    if (!done)
        return 0;
    atomic_fetch_add_explicit(&e->tx.writes, 1, memory_order_relaxed);
    *sent = (ssize_t)n;
    return 1;
}

/* Up to n of p's bytes into b's connection, as a read of its bridge puts
 * them (bridgepump.c: pump_in): how many went in. */
static size_t into_conn(bridge *b, const uint8_t *p, size_t n, rudp_time now)
{
    shim_slot *s = b->sp;
    size_t done = 0;
    if (s)
        atomic_fetch_add(&s->seq, 1); /* SIOCOUTQ: bytes on their way into `unacked` */
    while (done < n) {
        rudp_span sp[1];
        if (rudp_conn_reserve_spans(b->conn, sp, 1) <= 0)
            break; /* full: WRITABLE pumps the rest in */
        size_t m = n - done < sp[0].len ? n - done : sp[0].len;
        memcpy(sp[0].p, p + done, m);
        rudp_conn_commit(b->conn, now, m);
        done += m;
    }
    if (s) {
        atomic_fetch_sub(&s->ring_len, (uint32_t)done);
        atomic_store(&s->unacked, rudp_conn_unacked(b->conn));
        atomic_store(&s->unsent, rudp_conn_unsent(b->conn));
        atomic_fetch_add(&s->seq, 1);
    }
    return done;
}

/* The rest of a record into b's overflow: 0 without the memory. */
static int overflow(bridge *b, const uint8_t *p, size_t n)
{
    if ((size_t)b->txo_len + n > b->txo_cap) {
        size_t cap = b->txo_cap ? b->txo_cap : 4096;
        while (cap < (size_t)b->txo_len + n)
            cap *= 2;
        uint8_t *t = shim_realloc(b->txo, cap);
        if (!t)
            return 0;
        b->txo = t;
        b->txo_cap = (uint32_t)cap;
    }
    memcpy(b->txo + b->txo_len, p, n);
    b->txo_len += (uint32_t)n;
    return 1;
}

/* One record into its connection (turn_mu held). */
static void deliver(struct engine *e, const ring_rec *h, const uint8_t *p, rudp_time now)
{
    bridge *b = e->by_slot ? e->by_slot[h->slot] : NULL;
    if (!b || b->id != h->id || !b->conn || !b->established || b->app_eof || b->draining) {
        /* the connection ended (a reset, a failure) or the engine read the
         * app's EOF (no record comes after it: read_end): as TCP drops a
         * send queue then. Not for app_gone alone, which a shutdown of
         * reading sets (the bridge's bytes are still read then), and a
         * close with a write before it (sent before the FIN). */
        if (b && b->id == h->id && b->sp)
            atomic_fetch_sub(&b->sp->ring_len, h->len);
        e->ring_lost++;
        return;
    }
    e->ring_taken++;
    size_t in = b->txo_len ? 0 : into_conn(b, p, h->len, now);
    if (in < h->len && !overflow(b, p + in, h->len - in)) {
        if (b->sp)
            atomic_fetch_sub(&b->sp->ring_len, (uint32_t)(h->len - in));
        e->ring_lost++;
        shim_bridge_log(RUDP_LOG_WARN, b, "no memory for %u bytes written: connection reset",
                        (unsigned)(h->len - in));
        rudp_conn_abort(b->conn, now); /* never a stream with a hole in it */
        return;
    }
    shim_bridge_publish(b);
}

/* Every record into its connection (the arena's lock and turn_mu held). */
static void take_locked(struct engine *e, rudp_time now)
{
    shim_txarena *a = &e->tx;
    for (uint32_t off = 0; off < a->len;) {
        ring_rec h;
        memcpy(&h, a->buf + off, sizeof h);
        deliver(e, &h, a->buf + off + sizeof h, now);
        off += (uint32_t)REC_SIZE(h.len);
    }
    a->len = 0;
    atomic_store(&a->any, 0);
}

void shim_txring_ring(struct engine *e)
{
    if (atomic_exchange(&e->tx.rung, 1))
        return; /* rung since the engine last took */
    uint64_t one = 1;
    long w = syscall(SYS_write, e->evfd, &one, sizeof one);
    (void)w;
    atomic_fetch_add_explicit(&e->tx.bells, 1, memory_order_relaxed);
}

void shim_txring_take(struct engine *e, rudp_time now)
{
    shim_txarena *a = &e->tx;
    /* Cleared before `any` is read (both sequentially consistent, as the
     * writer's store of `any` and its exchange of `rung`): a writer that
     * found it set has its record seen below, one that finds it clear
     * rings again. */
    atomic_store(&a->rung, 0);
    if (!atomic_load(&a->any))
        return;
    pthread_mutex_lock(&a->mu);
    take_locked(e, now);
    pthread_mutex_unlock(&a->mu);
}

void shim_txring_close(struct engine *e, int closed)
{
    shim_txarena *a = &e->tx;
    pthread_mutex_lock(&a->mu);
    if (closed && a->len)
        take_locked(e, shim_now());
    a->closed = closed;
    pthread_mutex_unlock(&a->mu);
}

/* b's overflow into its connection: whether none is left. */
static int drain_overflow(bridge *b, rudp_time now)
{
    if (!b->txo_len)
        return 1;
    if (!b->conn || b->draining) {
        if (b->sp)
            atomic_fetch_sub(&b->sp->ring_len, b->txo_len);
        b->txo_len = 0;
        return 1;
    }
    size_t in = into_conn(b, b->txo, b->txo_len, now);
    memmove(b->txo, b->txo + in, b->txo_len - in);
    b->txo_len -= (uint32_t)in;
    return b->txo_len == 0;
}

int shim_txring_read_begin(bridge *b, rudp_time now)
{
    if (!shim_cfg.send_ring)
        return drain_overflow(b, now);
    shim_txarena *a = &b->e->tx;
    pthread_mutex_lock(&a->mu);
    if (a->len)
        take_locked(b->e, now);
    if (!drain_overflow(b, now)) {
        pthread_mutex_unlock(&a->mu);
        return 0;
    }
    return 1;
}

void shim_txring_read_end(bridge *b, ssize_t r)
{
    if (!shim_cfg.send_ring)
        return;
    if (r == 0 && b->sp) /* the app's EOF: no write in memory after it (put) */
        atomic_fetch_or(&b->sp->flags, SHIM_SLOT_F_WR_SHUT);
    pthread_mutex_unlock(&b->e->tx.mu);
}

void shim_txring_slot_ends(bridge *b)
{
    shim_appsend_forget(b); /* no writer takes the slot for it from now */
    if (shim_cfg.send_ring) { /* ... and none that did is still appending */
        pthread_mutex_lock(&b->e->tx.mu);
        pthread_mutex_unlock(&b->e->tx.mu);
    }
    if (b->txo_len && b->sp) /* dropped: not the app's queue any more */
        atomic_fetch_sub(&b->sp->ring_len, b->txo_len);
    b->txo_len = 0;
}

void shim_txring_free(bridge *b)
{
    shim_free(b->txo);
    b->txo = NULL;
    b->txo_len = b->txo_cap = 0;
}
