/*
 * standby.c: a second path kept validated beside the one in use, and the
 * handover to it when the one in use goes silent (MPTCP's "handover"
 * mode; RFC 9000 §8.2's challenges, §9.3's rule that the peer's newest
 * packet says where it is).
 *
 * The client holds a second socket of the caller's (rudp_conn_standby),
 * which leaves by another interface to the same server address. It sends
 * a PATH_CHALLENGE there when given it, then every STANDBY_EVERY (the
 * keepalive interval) while answered, and after a wait that doubles up to
 * STANDBY_RETRY_MAX while not. The server answers a challenge on the path
 * it came by, and challenges that address in the same datagram: each end
 * then knows the other path works, and its round trip.
 *
 * The move. A probe timeout (each one) sends a PING on the validated
 * standby as well as the probe on the path in use. An end moves to the
 * other path when the peer's newest non-probing packet came by it while
 * nothing came on the path in use for a round trip (STANDBY_QUIET): a
 * path that still carries packets is not left for a probe's copy that
 * happened to arrive first. A client that takes such a packet on the
 * standby and stays answers it there with a PING, so that a path dead in
 * one direction only (our packets lost, the server's arriving) still
 * moves the server, whose move then moves the client. A server moves to
 * a validated address at once (no second validation: its challenge was
 * answered there within STANDBY_FRESH); to another, a packet from a new
 * address starts the validation path.c does.
 *
 * The client moves back when the primary (the socket routing chose at
 * connect) answers a challenge again; the server follows as above.
 * Congestion control, the RTT estimate (from the challenge's round trip)
 * and the path MTU start over on each move (path.c's new_path).
 *
 * What an attacker can do. A challenge from any address is answered
 * (one datagram per STANDBY_ANSWER_GAP, no larger than twice the
 * challenge's), and our own challenge goes only to the client's other
 * address: a fresh validated one is not replaced by a third address.
 * Keyed, every frame here was authenticated; unkeyed, an answer must
 * echo 64 random bits sent only to that address, as path.c's. A
 * bit-flipped copy from a third address is a foreign packet (path.c) and
 * moves nothing.
 */
#include <errno.h>
#include <string.h>

#include "conn.h"
#include "path.h"

/* Answered: the next challenge this long after (the keepalive interval
 * when set). */
#define STANDBY_EVERY RUDP_SEC(15)
/* Unanswered: again after a wait from max(PTO, initial RTT), doubling up
 * to this; after STANDBY_MISSES in a row it is no longer valid. */
#define STANDBY_RETRY_MAX RUDP_SEC(2)
#define STANDBY_MISSES 3
/* Server: an address validated this long ago is taken at once. */
#define STANDBY_FRESH(c) (4 * every(c))
/* Server: at most one answer to another address's challenge this often. */
#define STANDBY_ANSWER_GAP RUDP_MS(10)

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

/* Nothing came on the path in use for a probe timeout (the peer's copy
 * on the standby says its own ran out): a queue that holds the path's
 * packets for a while is slow, not gone. */
static int quiet(const rudp_conn *c, rudp_time now)
{
    return now - c->path.standby.heard_at >= rudp__rtt_pto(&c->rtt, c->cfg.max_ack_delay);
}

static void arm(rudp_conn *c)
{
    rudp_standby *s = &c->path.standby;
    if (!c->is_server && s->on && may_move(c))
        rudp__conn_arm(c, RUDP_T_STANDBY, s->next_at);
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

/* Client: the socket in use and the other one trade places. */
static void client_swap(rudp_conn *c, rudp_time now)
{
    rudp_standby *s = &c->path.standby;
    uint32_t was = c->sock;
    c->sock = s->sock;
    s->sock = was;
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
    s->heard_at = now;
    s->moved_at = now;
    /* the path left: challenged at once (a move for a path only slow
     * goes back within a round trip), then after doubling waits */
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

int rudp_conn_standby(rudp_conn *c, rudp_time now, uint32_t sock)
{
    now = rudp__clock(c->ctx, now);
    if (c->is_server || !may_move(c) || sock == c->sock)
        return -EINVAL;
    rudp_standby *s = &c->path.standby;
    s->sock = sock;
    s->on = 1;
    s->valid = 0;
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
    rudp__conn_disarm(c, RUDP_T_STANDBY);
}

int rudp_conn_standby_sock(const rudp_conn *c, uint32_t *sock)
{
    if (c->is_server || !c->path.standby.on)
        return 0;
    *sock = c->path.standby.sock;
    return 1;
}

/* Server: the client's other address from a challenge that came from
 * `from`: taken unless a fresh validated one is there. */
static int server_takes(rudp_conn *c, rudp_time now, const rudp_addr *from)
{
    rudp_standby *s = &c->path.standby;
    if (s->on && addr_eq(&s->addr, from))
        return 1;
    if (s->on && s->valid && now - s->valid_at <= STANDBY_FRESH(c))
        return 0;
    s->addr = *from;
    s->on = 1;
    s->valid = 0;
    return 1;
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
    if (addr_eq(&p->rx_peer, &c->pkey.addr))
        return 0;
    if (!may_move(c) || (s->resp_last && now - s->resp_last < STANDBY_ANSWER_GAP))
        return 1; /* answered a moment ago: the peer asks again */
    s->resp_last = now;
    s->resp_to = p->rx_peer;
    s->resp_data = data;
    s->resp_pending = 1;
    s->challenge_too = (uint8_t)server_takes(c, now, &p->rx_peer);
    rudp__conn_dirty(c);
    return 1;
}

int rudp__standby_on_response(rudp_conn *c, rudp_time now, uint64_t data)
{
    rudp_path *p = &c->path;
    rudp_standby *s = &p->standby;
    if (!s->on || !s->outstanding || data != s->challenge)
        return 0;
    if (c->is_server ? !addr_eq(&p->rx_peer, &s->addr) : p->rx_sock != s->sock)
        return 0; /* it must come by the path it tests */
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
        if (s->handed && may_move(c))
            client_swap(c, now); /* the primary answers again */
        return 1;
    }
    if (p->probe.on && p->newest_on_probe && addr_eq(&p->probe.addr, &s->addr))
        rudp__standby_newest(c, now, &s->addr); /* its newest packet came from there */
    return 1;
}

int rudp__standby_newest(rudp_conn *c, rudp_time now, const rudp_addr *peer)
{
    rudp_standby *s = &c->path.standby;
    if (!c->is_server || !s->on || !s->valid || !addr_eq(peer, &s->addr) ||
        now - s->valid_at > STANDBY_FRESH(c) || !may_move(c) || !quiet(c, now))
        return 0;
    rudp_time rtt = s->rtt;
    if (c->path.probe.on)
        rudp__path_stop_probe(c);
    s->handovers++;
    c->ctx->stats.handovers++;
    rudp__path_move_to(c, now, peer, rtt); /* rudp__standby_server_moved */
    return 1;
}

void rudp__standby_server_moved(rudp_conn *c, rudp_time now, const rudp_addr *from)
{
    rudp_standby *s = &c->path.standby;
    s->heard_at = now;
    if (!s->on || !addr_eq(&s->addr, &c->pkey.addr))
        return;
    /* the address left becomes the other one: valid once the client's
     * challenge from there, answered with ours, is answered again */
    s->addr = *from;
    s->valid = 0;
    s->outstanding = 0;
}

void rudp__standby_on_packet(rudp_conn *c, rudp_time now, uint32_t sock, const rudp_addr *peer,
                             int rx)
{
    rudp_standby *s = &c->path.standby;
    if (!(rx & RUDP_RX_TAKEN))
        return;
    if (c->is_server) {
        if (addr_eq(peer, &c->pkey.addr))
            s->heard_at = now;
        return;
    }
    if (sock == c->sock) {
        s->heard_at = now;
        return;
    }
    if (!s->on || sock != s->sock || !(rx & RUDP_RX_NON_PROBING) || !s->valid || !may_move(c))
        return;
    if (rx & RUDP_RX_PING_ONLY) {
        /* the server's probe timeout copied its probe here: a PING back
         * by the same path, the server's sign that it works (the server
         * moves if its path in use went quiet, standby_newest) */
        s->ping_pending = 1;
        rudp__conn_dirty(c);
        return;
    }
    /* The server sends here: it moved. Followed once the path in use has
     * been quiet for a round trip, and not in the probe timeout after a
     * move of ours: what the server sent before it saw that move still
     * arrives by the path left. */
    rudp_time pto = rudp__rtt_pto(&c->rtt, c->cfg.max_ack_delay);
    rudp_time round = c->rtt.smoothed > RUDP_MS(1) ? c->rtt.smoothed : RUDP_MS(1);
    if ((rx & RUDP_RX_LARGEST) && now - s->heard_at >= round && now - s->moved_at >= pto)
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

static int send_on(rudp_conn *c, rudp_time now, const uint8_t *f, size_t n)
{
    rudp_standby *s = &c->path.standby;
    int rc = c->is_server ? rudp__conn_send_control(c, now, &s->addr, f, n)
                          : rudp__conn_send_control_on(c, now, s->sock, &c->pkey.addr, f, n);
    if (rc == 0) {
        c->ctx->stats.standby_pkts++;
        s->pkts++;
    }
    return rc;
}

void rudp__standby_flush(rudp_conn *c, rudp_time now)
{
    rudp_standby *s = &c->path.standby;
    if (!s->on && !s->resp_pending)
        return;
    uint8_t f[32];
    size_t n = 0;
    if (s->resp_pending) {
        n += (size_t)rudp__wire_path_encode(f, sizeof f, RUDP_FRAME_PATH_RESPONSE, s->resp_data);
        if (c->is_server) {
            /* answered where it came from, our own challenge with it if
             * that is the client's other address */
            int ours = s->challenge_too && s->on && addr_eq(&s->resp_to, &s->addr);
            if (ours) {
                s->challenge = rudp__random64(c->ctx);
                n += (size_t)rudp__wire_path_encode(f + n, sizeof f - n,
                                                    RUDP_FRAME_PATH_CHALLENGE, s->challenge);
            }
            if (rudp__conn_send_control(c, now, &s->resp_to, f, n) == 0) {
                c->ctx->stats.standby_pkts++;
                s->pkts++;
                if (ours) {
                    s->outstanding = 1;
                    s->sent_at = now;
                }
            }
            s->resp_pending = 0;
            s->challenge_too = 0;
            n = 0;
        }
    }
    if (!c->is_server && s->on && may_move(c) && now >= s->next_at) {
        s->challenge = rudp__random64(c->ctx);
        n += (size_t)rudp__wire_path_encode(f + n, sizeof f - n, RUDP_FRAME_PATH_CHALLENGE,
                                            s->challenge);
        s->outstanding = 1;
        s->sent_at = now;
        s->challenges++;
        c->ctx->stats.standby_challenges++;
        s->next_at = now + s->wait;
        arm(c);
    }
    if (s->ping_pending) {
        n += (size_t)rudp__wire_ping_encode(f + n, sizeof f - n);
        s->ping_pending = 0;
    }
    if (n)
        send_on(c, now, f, n);
    s->resp_pending = 0;
}

void rudp__standby_on_timer(rudp_conn *c, rudp_time now)
{
    rudp_standby *s = &c->path.standby;
    if (c->is_server || !s->on || !may_move(c))
        return;
    if (s->outstanding && now >= s->sent_at + s->wait) {
        /* unanswered: again, after a longer wait */
        s->outstanding = 0;
        if (++s->unanswered >= STANDBY_MISSES)
            s->valid = 0;
        s->wait = s->wait * 2 < STANDBY_RETRY_MAX ? s->wait * 2 : STANDBY_RETRY_MAX;
        s->next_at = now;
    }
    if (now >= s->next_at) {
        rudp__conn_dirty(c); /* the flush sends it, and arms the timer again */
        rudp__conn_disarm(c, RUDP_T_STANDBY);
        return;
    }
    arm(c);
}
