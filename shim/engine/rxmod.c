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
    real_epoll_ctl(e->epfd, EPOLL_CTL_MOD, s->fd, &ee);
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
        e->mod_reads++;
        e->mod_dgrams += got;
        if (got > e->mod_largest)
            e->mod_largest = got;
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

/* Whether b's socket should go unwatched, or stay so, after this turn. */
static int moderate(const bridge *b, rudp_time now, rudp_time wait)
{
    const esock *s = b->sock;
    if (s->mod_n != 1 || s->mod_off || !b->conn || s->fd < 0 || s->idle || s->app_unwatched ||
        s->app_waiters || s->w.type != SHIM_WATCHED || shim_fifo_on(s) ||
        !rudp_conn_rx_more(b->conn))
        return 0;
    if (rudp_conn_rx_held(b->conn))
        return 1; /* bytes of a burst came this turn, more follow */
    return s->mod_unwatched && now - s->mod_heard_at <= 2 * wait;
}

void shim_rxmod_decide(struct engine *e, rudp_time now)
{
    rudp_time wait = shim_cfg.rudp.rx_hold / 2;
    uint64_t turn = e->wakeups;
    int any = 0, again = 0;
    if (wait > 0 && atomic_load_explicit(&e->nbridges, memory_order_relaxed) <= RXMOD_BRIDGES) {
        for (bridge *b = e->bridges; b; b = b->next)
            if (b->sock)
                b->sock->mod_n = 0;
        for (bridge *b = e->bridges; b; b = b->next)
            if (b->sock)
                b->sock->mod_n++;
        for (bridge *b = e->bridges; b; b = b->next) {
            esock *s = b->sock;
            if (!s || !moderate(b, now, wait))
                continue;
            if (!s->mod_unwatched) {
                watch(e, s, 0);
                s->mod_unwatched = 1;
                s->mod_heard_at = now;
                s->mod_full = 0; /* its reads are ours from now */
                e->mod_on++;
            }
            s->mod_turn = turn;
            any = 1;
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
    e->mod_at = again ? now : any ? now + wait : RUDP_TIME_NEVER;
}
