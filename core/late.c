/*
 * late.c: what a peer's connections learn of how late it answers, and the
 * probe timeout's floor they give one another.
 *
 * A probe timeout on a short path is ~2 ms by RFC 9002, 10 ms with our
 * floor (RUDP_PTO_MIN, recovery.h). A peer is a user-space engine: opening
 * 3,500 connections at once, the client's engine spends turns of 10-140 ms
 * reading its sockets and handing connections to its program, and the
 * server's 1-byte answers wait in the client's sockets that long. Each
 * connection has one RTT sample, from its handshake, often taken before
 * the engine got busy, so each answer's probe timeout fires in vain one to
 * three times (3,500 pairs: 120-1,500 timeouts at the server, as many at
 * the client), and every probe adds to the load that made the peer late.
 *
 * A connection alone cannot learn this in time: it has one exchange. Its
 * peer's other connections can. Per peer address (not port: one host, one
 * engine), this context keeps, for the window that began at `start` and the
 * one before it (one to two seconds):
 *  - the longest RTT sample any connection to it took (the time an answer
 *    took; less the ACK delay the peer declared, unless the packet asked
 *    for an ACK at once: a delayed ACK is meant, a busy engine's is not),
 *    which a young connection (fewer than RUDP_LATE_YOUNG samples of its
 *    own) takes as the floor of its probe timeout, a quarter more: kernel
 *    TCP seeds a new connection's RTT from
 *    what closed ones to the same address measured (tcp_metrics), for the
 *    same reason;
 *  - the longest time a packet took to be acknowledged when its probe
 *    timeout had fired in vain (recovery.c, late_answer: the original was
 *    acknowledged, and not because of the probe), which every connection to
 *    it takes as its floor, a quarter more.
 * A connection's own timeout, when longer, stands. Kernel TCP never waits
 * less than 200 ms to retransmit (TCP_RTO_MIN); no floor here is above
 * RUDP_LATE_FLOOR_MAX, that same 200 ms, and a mature connection on a
 * quiet host keeps RUDP_PTO_MIN.
 *
 * Only a peer whose ACKs a connection accepted (keyed: authenticated) adds
 * to its address's notes, and it raises that address's floor, never
 * another's: the table is direct-mapped by a hash of the address and small,
 * and a slot keeps the whole hash, so two addresses in one slot take it
 * from each other (a note lost: the connections keep their own timeouts),
 * and never read each other's notes.
 */
#include <string.h>

#include "conn.h"

#define RUDP_LATE_WINDOW RUDP_SEC(1)

static uint64_t addr_tag(const rudp_addr *a)
{
    /* FNV-1a over the family and the address bytes */
    uint64_t h = 0xcbf29ce484222325ull;
    h = (h ^ (uint8_t)a->family) * 0x100000001b3ull;
    h = (h ^ (uint8_t)(a->family >> 8)) * 0x100000001b3ull;
    for (int i = 0; i < 16; i++)
        h = (h ^ a->ip[i]) * 0x100000001b3ull;
    return h ? h : 1;
}

static unsigned slot_of(uint64_t tag)
{
    return (unsigned)((tag ^ (tag >> 32)) % RUDP_LATE_SLOTS);
}

/* The slot's windows as of now: the current one began at most one window
 * ago, the one before it is the previous window's notes or none. */
static void roll(rudp_late_slot *s, rudp_time now)
{
    if (now < s->start + RUDP_LATE_WINDOW)
        return;
    int next = now < s->start + 2 * RUDP_LATE_WINDOW;
    s->rtt_prev = next ? s->rtt_cur : 0;
    s->late_prev = next ? s->late_cur : 0;
    s->rtt_cur = s->late_cur = 0;
    s->start = now;
}

void rudp__late_note(rudp_ctx *ctx, const rudp_addr *peer, rudp_time sample, rudp_time late,
                     rudp_time now)
{
    if (!sample && !late)
        return;
    uint64_t tag = addr_tag(peer);
    rudp_late_slot *s = &ctx->late[slot_of(tag)];
    if (s->tag != tag) {
        memset(s, 0, sizeof *s);
        s->tag = tag;
        s->start = now;
    }
    roll(s, now);
    if (sample > s->rtt_cur)
        s->rtt_cur = sample;
    if (late > s->late_cur)
        s->late_cur = late;
    if (late)
        ctx->stats.pto_late++;
}

rudp_time rudp__late_floor(const rudp_ctx *ctx, const rudp_addr *peer, rudp_time now,
                           uint32_t samples)
{
    uint64_t tag = addr_tag(peer);
    rudp_late_slot s = ctx->late[slot_of(tag)];
    if (s.tag != tag)
        return 0;
    roll(&s, now);
    rudp_time t = s.late_cur > s.late_prev ? s.late_cur : s.late_prev;
    if (samples < RUDP_LATE_YOUNG) {
        rudp_time r = s.rtt_cur > s.rtt_prev ? s.rtt_cur : s.rtt_prev;
        if (r > t)
            t = r;
    }
    if (!t)
        return 0;
    rudp_time floor = t + t / 4;
    return floor < RUDP_LATE_FLOOR_MAX ? floor : RUDP_LATE_FLOOR_MAX;
}
