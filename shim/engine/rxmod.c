/*
 * rxmod.c: receive moderation. A bulk transfer arriving on a path of 4 ms
 * or more woke the engine thread for each datagram or two: on B1 (100
 * Mbit/s, 10 ms, a datagram every 120 us) about 4,800 wake-ups a second,
 * and on this VM most of the receiver's CPU went to those context
 * switches. While the core says the peer has more to send
 * (rudp_conn_rx_more: its packets lack ACK_NOW) the engine stops watching
 * the connection's UDP socket and reads it at a deadline half rx_hold away
 * instead (0.5 ms), several datagrams at once, as a NIC's interrupt
 * moderation does for TCP. The core already holds the program's wake-up
 * back for such a flow (rx_hold, 1 ms), so its bytes reach the bridge as
 * before; what waits is the ACK, half a millisecond at most on a round
 * trip of 4 ms or more. Measured in design.md ("Receive moderation").
 *
 * Only where nothing else waits behind it: a socket that carries one
 * bridge of the engine's (a client's, or a listener's with one
 * connection: a handshake that comes meanwhile waits the same half
 * millisecond at most), not a member of a listener's group across engines
 * (fifo.c: the accept order waits for every member's reading), not one an
 * app thread waits on (apprecv.c, on paths under 2 ms, where this never
 * applies), and only on engines of at most RXMOD_BRIDGES bridges, so that
 * the look at each after a turn stays cheap. The socket is watched again
 * at the end of the first turn in which its connection says nothing more
 * is coming (a packet with ACK_NOW: a write's tail, a probe; the peer's
 * FIN), it has read nothing for a whole deadline (the peer stopped), or
 * another bridge came onto it; and never again once a read found the
 * socket's buffer had overflowed (a rate too high to wait on: at 10
 * Gbit/s half a millisecond is 430 datagrams, 625 KB, and an unprivileged
 * process's buffer may hold 212 KiB): the wait cost datagrams. A large
 * read alone does not stop it: on this VM's 1 Gbit/s rows a busy CPU made
 * the engine late often enough that a read of 128 came in the first
 * second, and stopping there gave the saving up (design.md, "Receive
 * moderation"); but a read that took all one read takes
 * (SHIM_UDP_READ_MAX) may have left more, so the next comes at once, not
 * a deadline later: what waits in the socket never stands there longer
 * than it would watched. Each wake-up of the engine, whatever woke it, reads the
 * sockets it does not watch before anything else (so no timer fires with
 * their datagrams unread), and an error queue still wakes it (epoll
 * reports EPOLLERR on an unwatched fd).
 *
 * The same at a bulk sender, whose socket brings only ACKs: while its
 * pacer holds data back that the window lets go, the next burst due within
 * 1.5 ms (TX_WAIT) on a path of 6 ms or more (rudp_conn_tx_paced), the
 * engine wakes for that burst anyway, and the ACKs that came meanwhile are
 * read then, before the burst goes, instead of a wake-up for each. Each is
 * timed by when the kernel received it (SO_TIMESTAMPNS, turned on for the
 * socket then; engine.c, read_udp), so that the controller's RTT and rate
 * samples are those of an ACK read at once: read late and timed at the
 * read, they made inflight look larger and the window bind (design.md,
 * "Moderation at the sender"). The socket is watched again after the
 * first turn in which the pacer does not hold data back: a sender the
 * window holds, or out of data, waits for its ACKs as before. Only on an
 * engine of one connection (moderate() says why). An app thread's own
 * send takes a turn only when nothing waits unsent (appsend.c), so never
 * while the pacer holds data: by then the socket is watched again, and no
 * app thread's turn runs the core ahead of ACKs left unread. A packet of
 * the peer's waits at most TX_WAIT, a quarter of the round trip at most:
 * an ACK, or data coming the other way during a download (a burst of it
 * makes the socket a receiver's, read half a hold apart).
 */
#include <stdatomic.h>
#include <sys/epoll.h>

#include "internal.h"
#include "udpio.h"

#include "base/poison.h"

#define RXMOD_BRIDGES 16

static void watch(struct engine *e, esock *s, uint32_t events)
{
    struct epoll_event ee = {.events = events, .data.ptr = s};
    real_epoll_ctl(e->iofd, EPOLL_CTL_MOD, s->fd, &ee);
}

void shim_rxmod_read(struct engine *e, rudp_time now)
{
    if (e->mod_at == RUDP_TIME_NEVER)
        return;
    for (uint32_t i = 0; i < e->nsocks; i++) {
        esock *s = e->socks[i];
        if (!s || !s->mod_unwatched)
            continue;
        if (s->app_unwatched || s->fd < 0 || s->w.type != SHIM_WATCHED) {
            s->mod_unwatched = 0; /* an app thread's now, or closing: not ours to watch */
            s->mod_full = 0;
            continue;
        }
        const shim_udpio_stats *st = shim_udpio_stats_get(e->io);
        uint64_t before = st->datagrams_in, dropped = st->rx_dropped;
        shim_engine_udp_event(s, EPOLLIN, now);
        uint64_t got = st->datagrams_in - before;
        if (s->mod_tx) {
            e->mod_tx_reads++;
            e->mod_tx_dgrams += got;
        } else {
            e->mod_reads++;
            e->mod_dgrams += got;
            if (got > e->mod_largest)
                e->mod_largest = got;
        }
        if (e->socks[i] != s)
            continue; /* closed by what it read */
        if (got)
            s->mod_heard_at = now;
        if (st->rx_dropped != dropped) {
            s->mod_off = 1; /* watched again at the turn's end, for good */
            e->mod_refused++;
        }
        /* all one read takes: more may wait, read again at once */
        s->mod_full = got >= SHIM_UDP_READ_MAX;
        if (s->mod_full)
            e->mod_again++;
    }
}

/* A paced sender's ACKs: read at its pacer's wake-ups, which come within
 * this long (its bursts are ~1 ms apart), timed by their arrival. */
#define TX_WAIT(wait) (3 * (wait))

/* SO_TIMESTAMPNS on s (once): its datagrams timed by the kernel's receive
 * time (engine.c, read_udp); 0 if the kernel refused it. */
static int stamped(esock *s)
{
    if (!s->stamps) {
        int on = 1;
        s->stamps = real_setsockopt(s->fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) == 0
                        ? 1
                        : -1;
    }
    return s->stamps == 1;
}

/* Whether b's socket should go unwatched, or stay so, after this turn:
 * MOD_RX as a bulk transfer's receiver, MOD_TX as a paced sender's, or 0. */
enum { MOD_RX = 1, MOD_TX = 2 };

static int moderate(const bridge *b, rudp_time now, rudp_time wait)
{
    esock *s = b->sock;
    if (s->mod_n != 1 || s->mod_off || !b->conn || s->fd < 0 || s->idle || s->app_unwatched ||
        s->app_waiters || s->w.type != SHIM_WATCHED || shim_fifo_on(s))
        return 0;
    if (rudp_conn_rx_more(b->conn)) {
        if (rudp_conn_rx_held(b->conn))
            return MOD_RX; /* bytes of a burst came this turn, more follow */
        if (s->mod_unwatched && !s->mod_tx && now - s->mod_heard_at <= 2 * wait)
            return MOD_RX; /* a receiver's, whose bursts came lately */
    }
    /* The pacer holds data back and wakes the engine for its next burst
     * anyway: the ACKs that come meanwhile are read then, each timed by
     * when the kernel received it, so that the controller's RTT and rate
     * samples are what they would have been read at once (design.md,
     * "Moderation at the sender"). Only on an engine of one connection:
     * the core's clock, which its connections share, never goes back, so
     * the ACKs of a second socket read after the first's would be timed
     * no earlier than the first's latest. */
    if (atomic_load_explicit(&b->sock->e->nbridges, memory_order_relaxed) == 1 &&
        rudp_conn_tx_paced(b->conn, now, TX_WAIT(wait)) && stamped(s))
        return MOD_TX;
    return 0;
}

void shim_rxmod_decide(struct engine *e, rudp_time now)
{
    rudp_time wait = shim_cfg.rudp.rx_hold / 2;
    uint64_t turn = e->wakeups;
    rudp_time at = RUDP_TIME_NEVER;
    int again = 0;
    if (wait > 0 && atomic_load_explicit(&e->nbridges, memory_order_relaxed) <= RXMOD_BRIDGES) {
        /* Bridges with their connection only: an accepted connection's
         * holds no reference on its listener's socket, its connection
         * does, so once the connection is released (both FINs, the app
         * still to read) the socket may be gone (ASan: a write to it
         * freed, prog_peerclose). */
        for (bridge *b = e->bridges; b; b = b->next)
            if (b->sock && b->conn)
                b->sock->mod_n = 0;
        for (bridge *b = e->bridges; b; b = b->next)
            if (b->sock && b->conn)
                b->sock->mod_n++;
        for (bridge *b = e->bridges; b; b = b->next) {
            esock *s = b->conn ? b->sock : NULL;
            int how = s ? moderate(b, now, wait) : 0;
            if (!how)
                continue;
            if (!s->mod_unwatched) {
                watch(e, s, 0);
                s->mod_unwatched = 1;
                s->mod_heard_at = now;
                s->mod_full = 0; /* its reads are ours from now */
                if (how == MOD_TX)
                    e->mod_tx_on++;
                else
                    e->mod_on++;
            }
            s->mod_tx = how == MOD_TX;
            s->mod_turn = turn;
            rudp_time by = now + (how == MOD_TX ? TX_WAIT(wait) : wait);
            if (by < at)
                at = by;
            if (s->mod_full)
                again = 1;
        }
    }
    if (e->mod_at != RUDP_TIME_NEVER)
        for (uint32_t i = 0; i < e->nsocks; i++) {
            esock *s = e->socks[i];
            if (!s || !s->mod_unwatched || s->mod_turn == turn)
                continue;
            s->mod_unwatched = 0;
            s->mod_full = 0;
            if (!s->app_unwatched && s->fd >= 0 && s->w.type == SHIM_WATCHED)
                watch(e, s, EPOLLIN); /* level-triggered: what came meanwhile wakes it */
        }
    e->mod_at = again ? now : at;
}
