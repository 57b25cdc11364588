/*
 * standby.c: a second path kept validated beside the one in use, and the
 * handover to it when the one in use goes silent (MPTCP's "handover"
 * mode; RFC 9000 §8.2's challenges, §9.3's rule that the peer's newest
 * packet says where it is).
 *
 * The client holds a second socket of the caller's (rudp_conn_standby):
 * one that leaves by another interface to the server's address, or one to
 * another address of the server's that it offered (SERVER_ADDR, sent by
 * rudp_conn_offer_addr only to a client whose SYN said it takes it). It
 * sends a PATH_CHALLENGE there when given it, then every STANDBY_EVERY
 * (the keepalive interval) while answered, and after a wait that doubles
 * while not (up to STANDBY_RETRY_MAX for a path that answered before, the
 * keepalive interval for one that never did). The server answers a
 * challenge on the path it came by (to its source, from the address it
 * came to), and challenges that address in the same datagram: each end
 * then knows the other path works, and its round trip.
 *
 * The move. A probe timeout (each one) sends a PING on the validated
 * standby as well as the probe on the path in use. An end that moves
 * flags its packets RUDP_PKTF_MOVED (authenticated with the header when
 * keyed) until the peer's own packets come by the new path. The server
 * moves to the client's validated other address at once for a packet so
 * flagged, and for a probe's copy (PINGs only) when nothing came on the
 * path in use for a probe timeout (a queue that holds the path's packets
 * for a while is slow, not gone); to another address, a packet from it
 * starts the validation path.c does. The client answers the server's
 * probe copy on the standby with a PING there, which moves the server
 * (also where the path fails one way only: our packets lost, the server's
 * arriving), and follows the server's flagged packets onto the standby,
 * not in the probe timeout after a move of its own (what the server sent
 * before it saw that move still arrives by the path left). Any other
 * packet by the other path is a copy (an observer's, sent ahead of the
 * original) and moves nothing.
 *
 * The client moves back when the primary (the path routing chose at
 * connect) answers a challenge again: it is challenged at once after the
 * move (a move for a path only slow goes back within a round trip), then
 * after doubling waits. The server follows as above. The RTT estimate
 * starts from the challenge's round trip; congestion control and the path
 * MTU start over on each move (path.c's rudp__path_new).
 *
 * What an attacker can do (tests/test_standby_attack.c). A challenge from
 * any address is answered (one datagram per STANDBY_ANSWER_GAP per
 * address, no larger than twice the challenge's), with our own challenge
 * for the client's other address, or for a candidate beside a fresh
 * validated one, which replaces it only by answering; an answer validates
 * only the address its challenge went to. Of two addresses that ask at
 * once (the client's and an observer's copy of it, in either order) the
 * one that answers is taken, and a duplicate's challenge is still
 * answered while the other address is not validated (a copy sent ahead
 * must not make the original unanswerable). Keyed, every frame here was
 * authenticated; unkeyed, an answer must echo 64 random bits sent only to
 * that address, as path.c's, and a bit-flipped copy from a third address
 * is a foreign packet (path.c) that moves nothing. Unkeyed, an attacker
 * who sees the traffic (the connection ID, the packet numbers) and
 * receives at an address of its own can validate that address and take
 * the connection there with a packet flagged MOVED, or name it in a forged
 * SERVER_ADDR: as it can reset or inject into the connection, or into
 * TCP, already.
 */
#include <errno.h>
#include <string.h>

#include "conn.h"
#include "path.h"
#include "trace.h"
#include "wire.h"

/* Answered: the next challenge this long after (the keepalive interval
 * when set). */
#define STANDBY_EVERY RUDP_SEC(15)
/* Unanswered: again after a wait from max(PTO, initial RTT), doubling up
 * to this for a path that answered before; after STANDBY_MISSES in a row
 * it is no longer valid. */
#define STANDBY_RETRY_MAX RUDP_SEC(2)
#define STANDBY_MISSES 3
/* Server: an address validated this long ago is taken at once. */
#define STANDBY_FRESH(c) (4 * every(c))
/* Server: at most one answer to another address's challenge this often. */
#define STANDBY_ANSWER_GAP RUDP_MS(10)
/* Server: SERVER_ADDR goes at most this many times. */
#define STANDBY_OFFERS 4
/* Client: a path in use whose RTT (its last sample and its smoothed RTT)
 * passes 8x the standby's and at least STANDBY_SLOW_MIN is left for the
 * standby, and gets the connection back only after STANDBY_SLOW_DWELL and
 * an answer within half that bound: a queue of our own on the primary
 * drains once we leave it, and its quick answer must not bring us back
 * into it at once. */
#define STANDBY_SLOW_MIN RUDP_SEC(1)
#define STANDBY_SLOW_DWELL RUDP_SEC(30)

static int addr_eq(const rudp_addr *a, const rudp_addr *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

static rudp_time every(const rudp_conn *c)
{
    return c->cfg.keepalive ? c->cfg.keepalive : STANDBY_EVERY;
}

static rudp_time first_wait(const rudp_conn *c)
{
    rudp_time pto = rudp__rtt_pto(&c->rtt, c->cfg.max_ack_delay);
    return pto > c->cfg.initial_rtt ? pto : c->cfg.initial_rtt;
}

static int may_move(const rudp_conn *c)
{
    return rudp__conn_sending_state(c->state) && c->state != RUDP_TIME_WAIT && !c->dead;
}

/* 8x a path's round trip `rtt`, and at least STANDBY_SLOW_MIN. */
static rudp_time slow_bound(rudp_time rtt)
{
    return 8 * rtt > STANDBY_SLOW_MIN ? 8 * rtt : STANDBY_SLOW_MIN;
}

/* Nothing came on the path in use for a probe timeout. */
static int quiet(const rudp_conn *c, rudp_time now)
{
    return now - c->path.standby.heard_at >= rudp__rtt_pto(&c->rtt, c->cfg.max_ack_delay);
}

/* The standby timer: a client's next challenge (or its answer's wait), a
 * server's next SERVER_ADDR. */
static void arm(rudp_conn *c)
{
    rudp_standby *s = &c->path.standby;
    if (!may_move(c))
        rudp__conn_disarm(c, RUDP_T_STANDBY);
    else if (!c->is_server && s->on)
        rudp__conn_arm(c, RUDP_T_STANDBY, s->next_at);
    else if (c->is_server && s->offer_pending)
        rudp__conn_arm(c, RUDP_T_STANDBY, s->offer_next_at);
    else
        rudp__conn_disarm(c, RUDP_T_STANDBY);
}

static void log_move(rudp_conn *c, const char *what)
{
    if (RUDP_LOG_INFO > c->ctx->log_level)
        return;
    char name[160];
    rudp_conn_name(c, name, sizeof name);
    rudp__log(c->ctx, RUDP_LOG_INFO, "%s: %s (its round trip %llu us)", name, what,
              (unsigned long long)(c->path.standby.rtt / 1000));
}

/* Client: the path in use and the other one trade places. */
static void client_swap(rudp_conn *c, rudp_time now)
{
    rudp_standby *s = &c->path.standby;
    uint32_t was = c->sock;
    c->sock = s->sock;
    s->sock = was;
    if (!addr_eq(&s->peer, &c->pkey.addr)) {
        /* the server's other address */
        rudp_addr at = c->pkey.addr;
        rudp__table_rekey_peer(c->ctx, c, &s->peer);
        s->peer = at;
    }
    s->handed = (uint8_t)!s->handed;
    if (s->handed) {
        s->handovers++;
        c->ctx->stats.handovers++;
        log_move(c, "moves to its standby path");
    } else {
        s->handbacks++;
        c->ctx->stats.handbacks++;
        log_move(c, "moves back to its primary path");
    }
    rudp__path_new(c, now, s->rtt);
    rudp__trace_path(c, s->handed ? "to the standby" : "back to the primary", s->rtt);
    s->heard_at = now;
    s->moved_at = now;
    s->announce = 1; /* until the server's packets come by this path */
    /* the path left: challenged at once, then after doubling waits */
    s->valid = 0;
    s->outstanding = 0;
    s->unanswered = 0;
    s->wait = first_wait(c);
    s->next_at = now;
    arm(c);
    rudp__conn_probe_now(c); /* what the old path may have lost goes again */
    c->ack_now = 1;
    rudp__conn_event(c, RUDP_EV_PATH);
}

int rudp_conn_standby(rudp_conn *c, rudp_time now, uint32_t sock, const rudp_addr *server)
{
    now = rudp__clock(c->ctx, now);
    if (c->is_server || !may_move(c) || sock == c->sock ||
        (server && server->family != c->pkey.addr.family))
        return -EINVAL;
    rudp_standby *s = &c->path.standby;
    s->sock = sock;
    s->peer = server ? *server : c->pkey.addr;
    s->on = 1;
    s->valid = 0;
    s->rtt = 0;
    s->outstanding = 0;
    s->unanswered = 0;
    s->resp_pending = 0;
    s->wait = first_wait(c);
    s->next_at = now;
    s->heard_at = now;
    arm(c);
    rudp__conn_dirty(c);
    return 0;
}

void rudp_conn_standby_clear(rudp_conn *c)
{
    rudp_standby *s = &c->path.standby;
    s->on = 0;
    s->valid = 0;
    s->handed = 0;
    s->resp_pending = 0;
    s->ping_pending = 0;
    if (!c->is_server)
        rudp__conn_disarm(c, RUDP_T_STANDBY);
}

int rudp_conn_standby_sock(const rudp_conn *c, uint32_t *sock)
{
    if (c->is_server || !c->path.standby.on)
        return 0;
    *sock = c->path.standby.sock;
    return 1;
}

int rudp_conn_server_offer(const rudp_conn *c, rudp_addr *out)
{
    if (c->is_server || !c->path.standby.offered)
        return 0;
    *out = c->path.standby.offer;
    return 1;
}

int rudp_conn_offer_addr(rudp_conn *c, rudp_time now, const rudp_addr *local)
{
    now = rudp__clock(c->ctx, now);
    if (!c->is_server || (!may_move(c) && c->state != RUDP_SYN_RCVD) ||
        local->family != c->pkey.addr.family || !local->port)
        return -EINVAL; /* (in SYN_RCVD, the first flush once established sends it) */
    if (!c->peer_addrs)
        return 0; /* an older client: a SERVER_ADDR frame would drop its packet */
    rudp_standby *s = &c->path.standby;
    s->offer = *local;
    s->offer.scope_id = 0;
    s->offer_pending = 1;
    s->offer_sent = 0;
    s->offer_next_at = now;
    arm(c);
    rudp__conn_dirty(c);
    return 0;
}

void rudp__standby_on_offer(rudp_conn *c, const rudp_addr *addr)
{
    rudp_standby *s = &c->path.standby;
    if (c->is_server || !may_move(c) || addr->family != c->pkey.addr.family ||
        addr_eq(addr, &c->pkey.addr) || (s->offered && addr_eq(addr, &s->offer)))
        return;
    s->offer = *addr;
    s->offered = 1;
    rudp__conn_event(c, RUDP_EV_OFFER);
}

/* Server: the client's other address from a challenge that came from
 * `from`. Returns what our own challenge goes with the answer for:
 * TAKE_ADDR, the other address (taken unless a fresh validated one is
 * there); TAKE_CAND, a candidate beside a fresh validated one, which
 * replaces it only by answering (no address is kept from the client for
 * long by an observer that got its own validated first). */
enum { TAKE_NONE, TAKE_ADDR, TAKE_CAND };
static int server_takes(rudp_conn *c, rudp_time now, const rudp_addr *from)
{
    rudp_standby *s = &c->path.standby;
    rudp_path *p = &c->path;
    if (!(s->on && addr_eq(&s->addr, from))) {
        if (s->on && s->valid && now - s->valid_at <= STANDBY_FRESH(c)) {
            s->cand = *from;
            s->cand_out = 0; /* its challenge goes with the answer (flush) */
            return TAKE_CAND;
        }
        /* The address it replaces keeps its challenge: of two addresses
         * that ask at once (the client's, an observer's copy of it, in
         * either order), the one that answers is taken. */
        s->cand_out = s->on && s->outstanding;
        if (s->cand_out) {
            s->cand = s->addr;
            s->cand_challenge = s->challenge;
            s->cand_sent_at = s->sent_at;
        }
        s->addr = *from;
        s->on = 1;
        s->valid = 0;
        s->outstanding = 0; /* a challenge sent elsewhere validates nothing here */
    }
    s->has_local = p->rx_has_local;
    if (p->rx_has_local)
        s->local = p->rx_local;
    return TAKE_ADDR;
}

int rudp__standby_on_challenge(rudp_conn *c, rudp_time now, uint64_t data)
{
    rudp_path *p = &c->path;
    rudp_standby *s = &p->standby;
    if (!c->is_server) {
        if (!s->on || p->rx_sock != s->sock)
            return 0; /* on the path in use: path.c answers */
        s->resp_data = data;
        s->resp_pending = 1;
        rudp__conn_dirty(c);
        return 1;
    }
    int offer = s->offer_pending && p->rx_has_local && addr_eq(&p->rx_local, &s->offer);
    if (offer) {
        s->offer_pending = 0; /* the client reached the address we offered */
        arm(c);
    }
    if (addr_eq(&p->rx_peer, &c->pkey.addr) && !offer)
        return 0;
    if (!may_move(c) ||
        (s->resp_last && addr_eq(&s->resp_to, &p->rx_peer) && now - s->resp_last < STANDBY_ANSWER_GAP))
        return 1; /* that address was answered a moment ago */
    s->resp_last = now;
    s->resp_to = p->rx_peer;
    s->resp_has_local = p->rx_has_local;
    if (p->rx_has_local)
        s->resp_local = p->rx_local;
    s->resp_data = data;
    s->resp_pending = 1;
    s->challenge_too = (uint8_t)server_takes(c, now, &p->rx_peer);
    rudp__conn_dirty(c);
    return 1;
}

void rudp__standby_dup(rudp_conn *c, rudp_time now, const uint8_t *frames, size_t n)
{
    const rudp_standby *s = &c->path.standby;
    if (!c->is_server || addr_eq(&c->path.rx_peer, &c->pkey.addr) ||
        (s->on && s->valid && now - s->valid_at <= STANDBY_FRESH(c) &&
         !addr_eq(&c->path.rx_peer, &s->addr)))
        return; /* a third address's copy once the client's other one is validated */
    rudp_frame f;
    for (size_t off = 0; off < n;) {
        int k = rudp__wire_frame_decode(frames + off, n - off, &f);
        if (k <= 0)
            return;
        off += (size_t)k;
        if (f.type == RUDP_FRAME_PATH_CHALLENGE)
            rudp__standby_on_challenge(c, now, f.u.path_data);
        else if (f.type == RUDP_FRAME_PATH_RESPONSE)
            rudp__standby_on_response(c, now, f.u.path_data); /* from the address it went to */
    }
}

int rudp__standby_on_response(rudp_conn *c, rudp_time now, uint64_t data)
{
    rudp_path *p = &c->path;
    rudp_standby *s = &p->standby;
    if (c->is_server && s->cand_out && data == s->cand_challenge && addr_eq(&p->rx_peer, &s->cand)) {
        /* the candidate answers (an address replaced before it could, or
         * one beside the validated one): it is the client's other address */
        s->addr = s->cand;
        s->has_local = p->rx_has_local;
        if (p->rx_has_local)
            s->local = p->rx_local;
        s->challenge = s->cand_challenge;
        s->sent_at = s->cand_sent_at;
        s->outstanding = 1;
        s->cand_out = 0;
    }
    if (!s->on || !s->outstanding || data != s->challenge)
        return 0;
    if (c->is_server ? !addr_eq(&p->rx_peer, &s->addr) : p->rx_sock != s->sock)
        return 0; /* it must come by the path it tests */
    s->cand_out = 0;
    s->outstanding = 0;
    s->valid = 1;
    s->valid_at = now;
    s->rtt = now - s->sent_at;
    s->unanswered = 0;
    s->wait = first_wait(c);
    s->next_at = now + every(c);
    c->ctx->stats.standby_validated++;
    if (!c->is_server) {
        arm(c);
        /* left for being slow: back after the dwell, and only if it
         * answered within half the bound of the path in use now */
        int slow_yet = s->slow && !quiet(c, now) &&
                       (now - s->moved_at < STANDBY_SLOW_DWELL ||
                        2 * s->rtt >= slow_bound(c->rtt.smoothed));
        if (s->handed && may_move(c) && !slow_yet) {
            s->slow = 0;
            client_swap(c, now); /* the primary answers again */
        }
        return 1;
    }
    if (p->probe.on && p->newest_on_probe && addr_eq(&p->probe.addr, &s->addr))
        rudp__standby_newest(c, now, &s->addr, STANDBY_VALIDATED); /* its newest packet
                                                                       came from there */
    return 1;
}

int rudp__standby_newest(rudp_conn *c, rudp_time now, const rudp_addr *peer, int kind)
{
    rudp_standby *s = &c->path.standby;
    if (!c->is_server) /* the server's other address: the client's moves are its own */
        return s->on && addr_eq(peer, &s->peer);
    if (!s->on || !s->valid || !addr_eq(peer, &s->addr) || now - s->valid_at > STANDBY_FRESH(c) ||
        !may_move(c))
        return 0;
    /* The client says it moved (RUDP_PKTF_MOVED): followed at once. A
     * probe's copy (PINGs only) moves only a path in use quiet for a probe
     * timeout; anything else from there is a copy of the client's packet
     * (an observer's, sent ahead) and moves nothing. */
    int moved = kind == STANDBY_VALIDATED || (c->path.rx_flags & RUDP_PKTF_MOVED);
    if (!moved && !(kind == STANDBY_PING && quiet(c, now)))
        return 1;
    rudp_time rtt = s->rtt;
    if (c->path.probe.on)
        rudp__path_stop_probe(c);
    s->handovers++;
    c->ctx->stats.handovers++;
    rudp__path_move_to(c, now, peer, rtt); /* rudp__standby_peer_moved */
    return 1;
}

void rudp__standby_peer_moved(rudp_conn *c, rudp_time now, const rudp_addr *from)
{
    rudp_standby *s = &c->path.standby;
    s->heard_at = now;
    if (!c->is_server) {
        /* the client follows its server (NEW_PORT, a new address): a
         * standby to the server's own address follows too */
        if (s->on && addr_eq(&s->peer, from))
            s->peer = c->pkey.addr;
        return;
    }
    s->announce = 1; /* until the client's packets come from there */
    if (!s->on || !addr_eq(&s->addr, &c->pkey.addr))
        return;
    /* the address left becomes the other one: valid once the client's
     * challenge from there, answered with ours, is answered again */
    s->addr = *from;
    s->valid = 0;
    s->outstanding = 0;
    if (s->has_local) {
        /* our own address on that path (one we offered) goes with it */
        rudp_addr mine = s->local;
        int had = c->has_local;
        s->local = c->local;
        s->has_local = (uint8_t)had;
        c->local = mine;
        c->has_local = 1;
    }
}

void rudp__standby_on_packet(rudp_conn *c, rudp_time now, uint32_t sock, const rudp_addr *peer,
                             int rx)
{
    rudp_standby *s = &c->path.standby;
    if (!(rx & RUDP_RX_TAKEN))
        return;
    if (c->is_server) {
        if (addr_eq(peer, &c->pkey.addr)) {
            s->heard_at = now;
            if ((rx & RUDP_RX_NON_PROBING) && !(rx & RUDP_RX_PING_ONLY))
                s->announce = 0; /* the client is on our path (its own packets, not a
                                    PING answering a probe's copy) */
        }
        return;
    }
    if (sock == c->sock && addr_eq(peer, &c->pkey.addr)) {
        s->heard_at = now;
        if ((rx & RUDP_RX_NON_PROBING) && !(rx & RUDP_RX_PING_ONLY))
            s->announce = 0; /* the server is on our path */
        return;
    }
    if (!s->on || sock != s->sock || !addr_eq(peer, &s->peer) || !(rx & RUDP_RX_NON_PROBING) ||
        !s->valid || !may_move(c))
        return;
    if (rx & RUDP_RX_PING_ONLY) {
        /* the server's probe timeout copied its probe here: a PING back
         * by the same path, the server's sign that it works */
        s->ping_pending = 1;
        rudp__conn_dirty(c);
        return;
    }
    /* The server says it moved here (RUDP_PKTF_MOVED): followed, unless
     * we moved a moment ago (what it sent before it saw our move still
     * arrives). Its other packets on the standby are copies (an
     * observer's, sent ahead of the original) and move nothing. */
    rudp_time pto = rudp__rtt_pto(&c->rtt, c->cfg.max_ack_delay);
    if ((rx & RUDP_RX_LARGEST) && (c->path.rx_flags & RUDP_PKTF_MOVED) &&
        now - s->moved_at >= pto)
        client_swap(c, now);
}

void rudp__standby_rtt(rudp_conn *c, rudp_time now, rudp_time sample)
{
    rudp_standby *s = &c->path.standby;
    if (c->is_server || !s->on || !s->valid || s->handed || !may_move(c))
        return;
    rudp_time bound = slow_bound(s->rtt);
    if (!s->rtt || sample < bound || c->rtt.smoothed < bound ||
        now - s->moved_at < rudp__rtt_pto(&c->rtt, c->cfg.max_ack_delay))
        return;
    s->slow = 1;
    c->ctx->stats.handovers_slow++;
    log_move(c, "its path answers too slowly (a round trip of 8x the standby's and 1 s or "
                "more)");
    client_swap(c, now);
}

void rudp__standby_pto(rudp_conn *c, rudp_time now)
{
    rudp_standby *s = &c->path.standby;
    if (!s->on || !s->valid || !may_move(c) ||
        (c->is_server && now - s->valid_at > STANDBY_FRESH(c)))
        return;
    s->ping_pending = 1;
    rudp__conn_dirty(c);
}

/* The count of a datagram of n bytes of frames sent for the standby. */
static void counted(rudp_conn *c, size_t n)
{
    c->ctx->stats.standby_pkts++;
    c->ctx->stats.standby_bytes += RUDP_WIRE_SHORT_HDR + n + rudp__seal_overhead(c->keyed);
    c->path.standby.pkts++;
}

/* One datagram of frames f (n bytes) for the other path. */
static void send_on(rudp_conn *c, rudp_time now, const rudp_addr *to, const rudp_addr *local,
                    const uint8_t *f, size_t n, int challenge)
{
    rudp_standby *s = &c->path.standby;
    /* a client's standby socket is its own, connected to s->peer: the
     * kernel chooses its source address */
    int rc = c->is_server ? rudp__conn_send_control_via(c, now, c->sock, to, local, f, n)
                          : rudp__conn_send_control_via(c, now, s->sock, &s->peer, NULL, f, n);
    if (rc < 0)
        return;
    counted(c, n);
    if (challenge) {
        s->outstanding = 1;
        s->sent_at = now;
    }
}

const rudp_addr *rudp__standby_local_for(const rudp_conn *c, const rudp_addr *to)
{
    const rudp_standby *s = &c->path.standby;
    if (c->is_server && s->on && s->has_local && addr_eq(to, &s->addr))
        return &s->local; /* the client's other address hears us from that one */
    return c->has_local ? &c->local : NULL;
}

static const rudp_addr *server_local(const rudp_conn *c, int has, const rudp_addr *a)
{
    return has ? a : c->has_local ? &c->local : NULL;
}

void rudp__standby_flush(rudp_conn *c, rudp_time now)
{
    rudp_standby *s = &c->path.standby;
    uint8_t f[48];
    size_t n = 0;
    if (c->is_server) {
        if (s->offer_pending && now >= s->offer_next_at && may_move(c)) {
            int k = rudp__wire_server_addr_encode(f, sizeof f, &s->offer);
            if (k > 0 && rudp__conn_send_control(c, now, &c->pkey.addr, f, (size_t)k) == 0)
                counted(c, (size_t)k);
            if (++s->offer_sent >= STANDBY_OFFERS)
                s->offer_pending = 0;
            s->offer_next_at = now + every(c);
            arm(c);
        }
        if (s->resp_pending) {
            /* answered where it came from, from the address it came to,
             * our own challenge with it if that is the client's other
             * address */
            n = (size_t)rudp__wire_path_encode(f, sizeof f, RUDP_FRAME_PATH_RESPONSE, s->resp_data);
            int ours = s->challenge_too == TAKE_ADDR && s->on && addr_eq(&s->resp_to, &s->addr);
            int cand = s->challenge_too == TAKE_CAND && addr_eq(&s->resp_to, &s->cand);
            uint64_t ch = rudp__random64(c->ctx);
            if (ours || cand)
                n += (size_t)rudp__wire_path_encode(f + n, sizeof f - n,
                                                    RUDP_FRAME_PATH_CHALLENGE, ch);
            if (ours)
                s->challenge = ch;
            send_on(c, now, &s->resp_to, server_local(c, s->resp_has_local, &s->resp_local), f,
                    n, ours);
            if (cand) {
                s->cand_challenge = ch;
                s->cand_sent_at = now;
                s->cand_out = 1;
            }
            s->resp_pending = 0;
            s->challenge_too = 0;
        }
        if (s->ping_pending && s->on) {
            n = (size_t)rudp__wire_ping_encode(f, sizeof f);
            send_on(c, now, &s->addr, server_local(c, s->has_local, &s->local), f, n, 0);
        }
        s->ping_pending = 0;
        return;
    }
    if (!s->on) {
        s->resp_pending = s->ping_pending = 0;
        return;
    }
    if (s->resp_pending)
        n += (size_t)rudp__wire_path_encode(f, sizeof f, RUDP_FRAME_PATH_RESPONSE, s->resp_data);
    int challenge = 0;
    if (may_move(c) && now >= s->next_at) {
        s->challenge = rudp__random64(c->ctx);
        n += (size_t)rudp__wire_path_encode(f + n, sizeof f - n, RUDP_FRAME_PATH_CHALLENGE,
                                            s->challenge);
        challenge = 1;
        s->challenges++;
        c->ctx->stats.standby_challenges++;
        s->next_at = now + s->wait;
        arm(c);
    }
    if (s->ping_pending)
        n += (size_t)rudp__wire_ping_encode(f + n, sizeof f - n);
    if (n)
        send_on(c, now, NULL, NULL, f, n, challenge);
    s->resp_pending = s->ping_pending = 0;
}

void rudp__standby_on_timer(rudp_conn *c, rudp_time now)
{
    rudp_standby *s = &c->path.standby;
    if (!may_move(c))
        return;
    if (c->is_server) {
        if (s->offer_pending && now >= s->offer_next_at)
            rudp__conn_dirty(c); /* the flush sends it and arms the timer again */
        else
            arm(c);
        return;
    }
    if (!s->on)
        return;
    if (s->outstanding && now >= s->sent_at + s->wait) {
        /* unanswered: again, after a longer wait (a path that never
         * answered waits up to the keepalive interval) */
        s->outstanding = 0;
        if (++s->unanswered >= STANDBY_MISSES)
            s->valid = 0;
        rudp_time max = s->rtt ? STANDBY_RETRY_MAX : every(c);
        s->wait = s->wait * 2 < max ? s->wait * 2 : max;
        s->next_at = now;
    }
    if (now >= s->next_at) {
        rudp__conn_dirty(c); /* the flush sends it, and arms the timer again */
        rudp__conn_disarm(c, RUDP_T_STANDBY);
        return;
    }
    arm(c);
}
