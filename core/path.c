/*
 * path.c: a server following a peer that moves, and a client moving
 * itself (path.h says what and why).
 */
#include <errno.h>
#include <string.h>

#include "conn.h"
#include "path.h"
#include "trace.h"

/* The challenge goes at most this many times; the first wait is the
 * larger of the PTO and the initial RTT, doubling, and validation fails
 * after 7 waits (the three sends and their answers' time). */
#define PATH_CHALLENGES 3
#define PATH_WAITS 7

/* A server moving a connection to a new port (rudp_conn_move_port) sends
 * NEW_PORT this many times from the socket it leaves (its last packets
 * there: the client hears nothing else until it follows), then from the
 * new one up to PORT_REPEATS times, doubling the wait, until the client
 * is heard there. */
#define PORT_OLD_COPIES 3
#define PORT_REPEATS 6

/* A server that moved its own address (rudp_conn_move_local) PINGs from
 * the new one every LOCAL_EVERY, at most LOCAL_REPEATS times, until its
 * client is heard: a client that only receives has nothing in flight to
 * miss, and opens its socket to a new server address only when its
 * keepalive goes unanswered (shim/engine/roam.c); by then the server's
 * own probe timeout has backed off to tens of seconds. */
#define LOCAL_EVERY RUDP_SEC(1)
#define LOCAL_REPEATS 60

static int addr_eq(const rudp_addr *a, const rudp_addr *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

static int same_ip(const rudp_addr *a, const rudp_addr *b)
{
    return a->family == b->family && a->scope_id == b->scope_id &&
           memcmp(a->ip, b->ip, sizeof a->ip) == 0;
}

/* Past the handshake: a connection that may change paths. */
static int moving_state(rudp_state st)
{
    switch (st) {
    case RUDP_ESTABLISHED:
    case RUDP_FIN_WAIT_1:
    case RUDP_FIN_WAIT_2:
    case RUDP_CLOSING:
    case RUDP_CLOSE_WAIT:
    case RUDP_LAST_ACK:
    case RUDP_TIME_WAIT:
        return 1;
    case RUDP_CLOSED:
    case RUDP_SYN_SENT:
    case RUDP_SYN_RCVD:
    case RUDP_STATE_COUNT:
        break;
    }
    return 0;
}

int rudp__path_admit(const rudp_conn *c, uint32_t sock, const rudp_addr *peer)
{
    if (!c->is_server) /* on any socket of ours: an old one after a rebind; from
                          anywhere once established: the server may move */
        return addr_eq(peer, &c->pkey.addr) ||
               (c->path.probe.on && addr_eq(peer, &c->path.probe.addr)) ||
               (moving_state(c->state) && c->state != RUDP_TIME_WAIT);
    /* A listener's connections live on its socket. The handshake's last
     * step may come from a new address: the client moved, or a NAT
     * re-mapped it, just after our SYNACK reached it. */
    if (sock != c->sock)
        return 0;
    return c->state == RUDP_SYN_RCVD || (moving_state(c->state) && c->state != RUDP_TIME_WAIT);
}

int rudp__path_foreign(const rudp_conn *c, const rudp_addr *peer)
{
    if (c->keyed || !moving_state(c->state) || addr_eq(peer, &c->pkey.addr))
        return 0;
    const rudp_standby *s = &c->path.standby;
    if (!c->is_server && s->on && s->valid && addr_eq(peer, &s->peer))
        return 0; /* the server's other address, validated (standby.c) */
    /* a client takes packets from its server's IP address on the port
     * NEW_PORT named, while validating it (path.h) */
    return c->is_server || !(c->path.port_probe && c->path.probe.on &&
                             addr_eq(peer, &c->path.probe.addr));
}

/* At the next challenge, or the deadline: a challenge due but held back
 * by the amplification limit waits for bytes from its address (their
 * packet flushes the connection) or the deadline, not for a timer. */
static int port_due(const rudp_path *p)
{
    return p->port_pending && p->port_sent < PORT_REPEATS;
}

static int local_due(const rudp_path *p)
{
    return p->local_pending && p->local_sent < LOCAL_REPEATS;
}

/* The path timer serves a validation and a server's NEW_PORT and moved
 * address repeats. */
static void arm_timer(rudp_conn *c, rudp_time now)
{
    rudp_path *p = &c->path;
    rudp_path_probe *pr = &p->probe;
    int any = 0;
    rudp_time at = 0;
    if (local_due(p)) {
        at = p->local_next_at;
        any = 1;
    }
    if (pr->on) {
        rudp_time t = pr->deadline;
        if (pr->sent < PATH_CHALLENGES && pr->next_at > now && pr->next_at < t)
            t = pr->next_at;
        if (!any || t < at)
            at = t;
        any = 1;
    }
    if (port_due(p) && (!any || p->port_next_at < at)) {
        at = p->port_next_at;
        any = 1;
    }
    if (any)
        rudp__wheel_arm(&c->ctx->wheel, &c->timers[RUDP_T_PATH], at);
    else
        rudp__wheel_cancel(&c->ctx->wheel, &c->timers[RUDP_T_PATH]);
}

void rudp__path_stop_probe(rudp_conn *c)
{
    c->path.probe.on = 0;
    c->path.port_probe = 0;
    arm_timer(c, 0);
}

static void log_path(rudp_conn *c, int level, const char *what, const rudp_addr *a,
                     const rudp_addr *b)
{
    if (level > c->ctx->log_level)
        return;
    char name[160], x[64], y[64] = "";
    rudp_conn_name(c, name, sizeof name);
    rudp_addr_format(a, x, sizeof x);
    if (b)
        rudp_addr_format(b, y, sizeof y);
    rudp__log(c->ctx, level, "%s: %s %s%s%s", name, what, x, b ? " -> " : "", y);
}

/* Another IP address at either end: what was learnt of the old path (its
 * RTT, its size, its congestion window) says nothing of this one. */
void rudp__path_new(rudp_conn *c, rudp_time now, rudp_time rtt)
{
    rudp__rtt_init(&c->rtt, rtt ? rtt : c->cfg.initial_rtt);
    rudp__pmtu_start(c, now);
    rudp__cc_setup(&c->cc, c->cc.ops, c->mss, now);
}

/* Sends to `to` from now on: it answered our challenge. */
void rudp__path_move_to(rudp_conn *c, rudp_time now, const rudp_addr *to, rudp_time rtt)
{
    rudp_path *p = &c->path;
    rudp_addr from = c->pkey.addr;
    /* In the listener's queue, a connection counts under its source
     * address (budget.c): it moves there too. */
    int q = c->queued;
    rudp__queue(c, RUDP_Q_NONE);
    rudp__table_rekey_peer(c->ctx, c, to);
    rudp__queue(c, q);
    p->moves++;
    c->ctx->stats.path_moves++;
    rudp__standby_peer_moved(c, now, &from);
    if (!same_ip(&from, to))
        rudp__path_new(c, now, rtt);
    log_path(c, RUDP_LOG_INFO, "peer moved:", &from, to);
    rudp__trace_path(c, "peer moved", rtt);
    rudp__conn_probe_now(c); /* what the old address may have lost goes again */
    /* Our ACKs went to the old address meanwhile (a client whose address
     * went away never gets them): repeat them on the new path at once, or
     * the client's probe waits a backed-off probe timeout (up to 1 s) to
     * learn what arrived. */
    c->ack_now = 1;
}

/* A validation given up: unanswered, or overtaken by the peer's own
 * packets from elsewhere. */
static void probe_failed(rudp_conn *c)
{
    rudp__path_stop_probe(c);
    c->path.failed++;
    c->ctx->stats.path_failed++;
}

/* port: a client validating the port NEW_PORT named (else any peer's new
 * address, as a server validates its client's). */
static void start_probe(rudp_conn *c, rudp_time now, const rudp_addr *peer, size_t len, int port)
{
    rudp_path_probe *pr = &c->path.probe;
    if (pr->on) /* another new address was being validated: given up */
        probe_failed(c);
    memset(pr, 0, sizeof *pr);
    pr->addr = *peer;
    pr->challenge = rudp__random64(c->ctx);
    pr->bytes_in = len;
    rudp_time pto = rudp__rtt_pto(&c->rtt, c->cfg.max_ack_delay);
    pr->interval = pto > c->cfg.initial_rtt ? pto : c->cfg.initial_rtt;
    pr->next_at = now;
    pr->deadline = now + PATH_WAITS * pr->interval;
    pr->held_until = now + pr->interval;
    pr->on = 1;
    if (port) {
        /* A client validates the port its server named in NEW_PORT, on
         * the server's own IP address: no amplification to bound. */
        c->path.port_probe = 1;
        pr->bytes_in = UINT32_MAX;
    }
    log_path(c, RUDP_LOG_DEBUG, "validating the peer's new address", peer, NULL);
    arm_timer(c, now);
    rudp__conn_dirty(c);
}

/* A non-probing packet numbered `pn` from `peer`, the highest so far
 * (RFC 9000 §9.3): the newest word of where the peer is. */
static void newest_from(rudp_conn *c, rudp_time now, const rudp_addr *peer, uint64_t pn,
                        size_t len, int ping_only)
{
    rudp_path *p = &c->path;
    if (addr_eq(peer, &c->pkey.addr)) {
        /* the path we use carries the newest: a validation under way
         * moves nothing when it ends (unless a newer packet comes from
         * the address being validated). At an equal number the path's
         * packet was processed, the other one was not: a copy (unkeyed,
         * the number is not authenticated). */
        if (p->probe.on && pn >= p->probe.pn_max)
            p->newest_on_probe = 0;
        return;
    }
    if (!c->is_server && (same_ip(peer, &c->pkey.addr) ||
                          (p->port_probe && p->probe.on && !addr_eq(&p->probe.addr, peer))))
        return; /* a server's other port is NEW_PORT's to name; and while
                   validating the one it named, that one first */
    if (rudp__standby_newest(c, now, peer, ping_only ? STANDBY_PING : STANDBY_OTHER))
        return; /* the client's other address, validated (standby.c) */
    if (p->probe.on && !addr_eq(&p->probe.addr, peer) && now < p->probe.held_until)
        return; /* a validation has one wait for its answer before another
                   address takes its place: an observer's copies from
                   elsewhere, each just after the peer's own packet, would
                   otherwise restart it before any answer could come */
    if (!p->probe.on || !addr_eq(&p->probe.addr, peer))
        start_probe(c, now, peer, len, 0);
    if (pn > p->probe.pn_max)
        p->probe.pn_max = pn;
    p->newest_on_probe = 1;
}

void rudp__path_on_packet(rudp_conn *c, rudp_time now, const rudp_addr *peer, size_t len, int rx)
{
    rudp_path *p = &c->path;
    if (!(rx & RUDP_RX_TAKEN))
        return; /* a duplicate, or dropped: it proves nothing */
    if (p->probe.on && addr_eq(peer, &p->probe.addr))
        p->probe.bytes_in += len;
    if (!(rx & RUDP_RX_LARGEST) || !(rx & RUDP_RX_NON_PROBING))
        return; /* only the peer's newest packet says where it is */
    /* Keyed, a packet from a new address was authenticated (a copy of
     * the peer's, at worst) and processed; still, nothing goes there but
     * the challenge until it is answered. */
    newest_from(c, now, peer, c->rx_largest, len, (rx & RUDP_RX_PING_ONLY) != 0);
}

void rudp__path_on_foreign(rudp_conn *c, rudp_time now, const rudp_addr *peer, uint32_t pn32,
                           const uint8_t *frames, size_t n, size_t len)
{
    rudp_ctx *ctx = c->ctx;
    rudp_path *p = &c->path;
    int probing = 1, answer = 0, asked = 0, pings = 0, other = 0;
    uint64_t data = 0, ask = 0;
    rudp_frame f;
    for (size_t off = 0; off < n;) {
        int k = rudp__wire_frame_decode(frames + off, n - off, &f);
        if (k <= 0) {
            ctx->stats.malformed++;
            return;
        }
        off += (size_t)k;
        if (f.type == RUDP_FRAME_PATH_RESPONSE) {
            data = f.u.path_data;
            answer = 1;
        } else if (f.type == RUDP_FRAME_PATH_CHALLENGE) {
            ask = f.u.path_data;
            asked = 1;
        } else if (f.type != RUDP_FRAME_PADDING) {
            probing = 0;
        }
        if (f.type == RUDP_FRAME_PING)
            pings = 1;
        else if (f.type != RUDP_FRAME_PADDING)
            other = 1;
    }
    uint64_t pn = rudp__conn_rx_pn(c, pn32);
    if (c->rx_any && (pn < c->rx_floor || rudp__ranges_contains(&c->rx_pns, pn))) {
        ctx->stats.dup_pkts++; /* a replay: it starts nothing */
        if (probing)
            rudp__standby_dup(c, now, frames, n); /* but a challenge is answered */
        return;
    }
    ctx->stats.path_held++;
    int ping_only = pings && !other; /* a probe's copy (standby.c) */
    /* a client's standby (standby.c): answered there, and its answer to
     * our challenge taken before its newest packet is looked at */
    if (asked)
        rudp__standby_on_challenge(c, now, ask);
    if (answer && rudp__standby_on_response(c, now, data))
        answer = 0;
    int on_probe = p->probe.on && addr_eq(peer, &p->probe.addr);
    if (on_probe)
        p->probe.bytes_in += len;
    if (!probing && (!c->rx_any || pn > c->rx_largest)) {
        newest_from(c, now, peer, pn, len, ping_only);
        /* the probe may still be of another address (held_until): an
         * answer from here validates only this one */
        on_probe = p->probe.on && addr_eq(peer, &p->probe.addr);
    }
    if (on_probe && answer && data == p->probe.challenge)
        rudp__path_on_response(c, now, data);
}

void rudp__path_on_challenge(rudp_conn *c, rudp_time now, uint64_t data)
{
    if (rudp__standby_on_challenge(c, now, data))
        return; /* by the standby: answered there */
    /* Answered on the path we send on: a client's only one. */
    c->path.resp_data = data;
    c->path.resp_pending = 1;
    rudp__conn_dirty(c);
}

void rudp__path_heard_from(rudp_conn *c, const rudp_addr *peer)
{
    rudp_path_probe *pr = &c->path.probe;
    if (pr->on && !c->path.port_probe && addr_eq(peer, &c->pkey.addr))
        pr->path_heard = 1;
}

void rudp__path_on_response(rudp_conn *c, rudp_time now, uint64_t data)
{
    rudp_path *p = &c->path;
    if (rudp__standby_on_response(c, now, data))
        return;
    if (!p->probe.on || data != p->probe.challenge)
        return; /* late, or not ours: ignored */
    rudp_addr a = p->probe.addr;
    int port = p->port_probe, path_heard = p->probe.path_heard;
    rudp__path_stop_probe(c);
    c->ctx->stats.paths_validated++;
    if (port) {
        /* the server's new port answered from there: it is the server's */
        rudp__path_move_to(c, now, &a, 0);
        rudp__conn_event(c, RUDP_EV_SERVER_MOVED);
    } else if (!c->is_server && path_heard) {
        /* The server still speaks from the address we send to: the new
         * one answered (a relay of our challenge, at worst), but a server
         * moves only when its own address went away. */
        log_path(c, RUDP_LOG_DEBUG, "validated, but the server still answers at its address; "
                                    "staying:", &c->pkey.addr, NULL);
    } else if (p->newest_on_probe) {
        /* the address holds our challenge, and the peer's newest packet
         * came from it: the path moves (RFC 9000 §9.3) */
        rudp__path_move_to(c, now, &a, 0);
        if (!c->is_server)
            rudp__conn_event(c, RUDP_EV_SERVER_MOVED); /* the server's new address */
    } else {
        log_path(c, RUDP_LOG_DEBUG, "validated, but the peer's newest packet came on its path; "
                                    "staying:", &c->pkey.addr, NULL);
    }
}

static int send_new_port(rudp_conn *c, rudp_time now)
{
    uint8_t f[9];
    int n = rudp__wire_new_port_encode(f, sizeof f, c->path.new_port);
    if (n < 0)
        return n;
    return rudp__conn_send_control(c, now, &c->pkey.addr, f, (size_t)n);
}

/* A PING from a moved server address, when due (LOCAL_EVERY). */
static void local_tick(rudp_conn *c, rudp_time now)
{
    rudp_path *p = &c->path;
    if (!local_due(p) || now < p->local_next_at)
        return;
    c->ping_pending = 1;
    rudp__conn_dirty(c);
    p->local_sent++;
    p->local_next_at = now + LOCAL_EVERY;
    arm_timer(c, now);
}

/* NEW_PORT from the new socket, when due: the next one a wait later,
 * whether or not this one could go. */
static void port_tick(rudp_conn *c, rudp_time now)
{
    rudp_path *p = &c->path;
    if (!port_due(p) || now < p->port_next_at)
        return;
    send_new_port(c, now);
    p->port_sent++;
    p->port_next_at = now + p->port_interval;
    p->port_interval *= 2;
    arm_timer(c, now);
}

int rudp_conn_movable(const rudp_conn *c)
{
    return c->is_server && !c->dead && moving_state(c->state) && c->state != RUDP_TIME_WAIT;
}

int rudp_conn_move_port(rudp_conn *c, rudp_time now, uint32_t sock, unsigned port)
{
    now = rudp__clock(c->ctx, now);
    if (!rudp_conn_movable(c) || port == 0 || port > 65535)
        return -EINVAL;
    rudp_path *p = &c->path;
    p->new_port = (uint16_t)port;
    /* From the socket we leave, while it is still ours: until the client
     * follows, its socket (connected to that address) takes nothing else. */
    for (int i = 0; i < PORT_OLD_COPIES; i++)
        send_new_port(c, now);
    c->sock = sock;
    p->port_pending = 1;
    p->port_sent = 0;
    rudp_time pto = rudp__rtt_pto(&c->rtt, c->cfg.max_ack_delay);
    p->port_interval = pto > c->cfg.initial_rtt ? pto : c->cfg.initial_rtt;
    p->port_next_at = now; /* and at once from the new one (path_flush) */
    p->port_moves++;
    arm_timer(c, now);
    rudp__conn_dirty(c);
    if (RUDP_LOG_INFO <= c->ctx->log_level) {
        char name[160];
        rudp_conn_name(c, name, sizeof name);
        rudp__log(c->ctx, RUDP_LOG_INFO, "%s: moves to local UDP port %u", name, port);
    }
    return 0;
}

/* A released connection whose client may not have all it sent and is
 * not in TIME_WAIT, which takes no NEW_PORT: stream bytes still
 * unacknowledged (the client has not read them all); or only the FIN, in
 * FIN_WAIT_1 (perhaps not even sent: a program that exited right after
 * its last write, whose engine learned the end after the bytes left; the
 * client's TIME_WAIT needs its own FIN acknowledged, which would have
 * taken us out of FIN_WAIT_1). Left behind, the FIN left from a socket
 * the client does not hear, and the client's next packet to the old port
 * drew port unreachables that reset it after every byte had arrived
 * (prog_exitport's takeover, under load). One in CLOSING or LAST_ACK
 * stays: its client may be in TIME_WAIT, and a listener leaving its
 * SO_REUSEPORT group lets it finish in place (LEAVE_WAIT). Moving those
 * whose FIN had not gone out yet as well made t_sec_observer's nc -l,
 * whose listener is in such a group, move its last connection through
 * the test's relay, and the transfer's tail outlasted the test in 3 of 8
 * loaded runs. */
static int released_to_move(const rudp_conn *c, uint32_t sock)
{
    if (!c->released || c->sock != sock || !rudp_conn_movable(c))
        return 0;
    if (rudp__seq_lt(c->snd_una, c->snd_end))
        return 1;
    /* the FIN alone: queued (a reset waiting to go has none) and not acked */
    return c->state == RUDP_FIN_WAIT_1 && rudp__conn_stream_unacked(c);
}

int rudp_ctx_released_movable(const rudp_ctx *ctx, uint32_t sock)
{
    int n = 0;
    for (const rudp_conn *c = ctx->all; c; c = c->all_next)
        n += released_to_move(c, sock);
    return n;
}

int rudp_ctx_move_released(rudp_ctx *ctx, rudp_time now, uint32_t sock, uint32_t to,
                           unsigned port)
{
    int n = 0;
    for (rudp_conn *c = ctx->all; c; c = c->all_next)
        if (released_to_move(c, sock) && rudp_conn_move_port(c, now, to, port) == 0)
            n++;
    return n;
}

void rudp__path_heard_on(rudp_conn *c, uint32_t sock, const rudp_addr *local)
{
    rudp_path *p = &c->path;
    if (p->local_pending && local && same_ip(local, &c->local)) {
        /* the client reached us at the address we moved to (not a datagram
         * that was queued for the old one) */
        p->local_pending = 0;
        arm_timer(c, 0);
    }
    if (!p->port_pending || sock != c->sock)
        return;
    p->port_pending = 0; /* the client follows: no more NEW_PORT */
    arm_timer(c, 0);
}

void rudp__path_on_new_port(rudp_conn *c, rudp_time now, unsigned port, int rx, size_t len)
{
    rudp_path *p = &c->path;
    /* Only the server's newest packet says where it is, and a server
     * never learns a port from its client. */
    if (c->is_server || !(rx & RUDP_RX_LARGEST) || !moving_state(c->state) ||
        c->state == RUDP_TIME_WAIT)
        return;
    rudp_addr to = c->pkey.addr;
    to.port = (uint16_t)port;
    if (addr_eq(&to, &c->pkey.addr) || (p->probe.on && addr_eq(&to, &p->probe.addr)))
        return; /* where we send already, or being validated */
    if (c->keyed) {
        /* Authenticated: the server's own word. */
        if (p->probe.on)
            probe_failed(c);
        rudp__path_move_to(c, now, &to, 0);
        rudp__conn_event(c, RUDP_EV_SERVER_MOVED);
        return;
    }
    /* Unkeyed, anyone who saw a packet could have sent this one: the new
     * port must answer a challenge first, and nothing else goes until it
     * does (rudp__path_may_send), or the validation fails (back to the
     * old address). Only the port may change: the IP stays the one we
     * connected to. */
    start_probe(c, now, &to, len, 1);
    rudp__conn_event(c, RUDP_EV_SERVER_MOVED);
}

int rudp_conn_move_local(rudp_conn *c, rudp_time now, const rudp_addr *local)
{
    now = rudp__clock(c->ctx, now);
    if (!c->is_server || c->dead || !moving_state(c->state) || c->state == RUDP_TIME_WAIT ||
        (local && local->family != c->pkey.addr.family))
        return -EINVAL;
    if (!local) {
        /* gone, and no other yet: what the kernel sends meanwhile leaves
         * from whatever it picks, and the client's refusals of it are no
         * verdict either */
        c->path.local_pending = 1;
        return 0;
    }
    if (c->has_local && addr_eq(&c->local, local))
        return 0;
    rudp_addr was = c->local;
    int had = c->has_local;
    c->local = *local;
    c->has_local = 1;
    rudp_path *p = &c->path;
    p->local_pending = 1;
    p->local_sent = 0;
    p->local_next_at = now + LOCAL_EVERY; /* and one now, below */
    p->local_moves++;
    c->ctx->stats.local_moves++;
    rudp__path_new(c, now, 0);
    if (had)
        log_path(c, RUDP_LOG_INFO, "our address went away; sending from", &was, local);
    /* Something the client must answer, at once from the new address: its
     * answer is what lets it (and its socket) follow us. */
    c->ping_pending = 1;
    rudp__conn_probe_now(c);
    c->ack_now = 1;
    arm_timer(c, now);
    rudp__conn_dirty(c);
    return 0;
}

int rudp_conn_server_addr(const rudp_conn *c, rudp_addr *out)
{
    if (c->is_server)
        return -EINVAL;
    *out = c->path.port_probe && c->path.probe.on ? c->path.probe.addr : c->pkey.addr;
    return 0;
}

void rudp__path_flush(rudp_conn *c, rudp_time now)
{
    rudp_path *p = &c->path;
    port_tick(c, now);
    rudp__standby_flush(c, now);
    if (p->resp_pending) {
        uint8_t f[9];
        rudp__wire_path_encode(f, sizeof f, RUDP_FRAME_PATH_RESPONSE, p->resp_data);
        if (rudp__conn_send_control(c, now, &c->pkey.addr, f, sizeof f) == 0)
            p->resp_pending = 0;
    }
    rudp_path_probe *pr = &p->probe;
    if (!pr->on || pr->sent >= PATH_CHALLENGES || now < pr->next_at)
        return;
    uint8_t f[9];
    rudp__wire_path_encode(f, sizeof f, RUDP_FRAME_PATH_CHALLENGE, pr->challenge);
    /* An address not validated gets at most 3x what came from it: a
     * challenge held back waits for more from there, or for the deadline. */
    size_t need = RUDP_WIRE_SHORT_HDR + sizeof f + rudp__seal_overhead(c->keyed);
    if (pr->bytes_out + need > RUDP_PATH_AMPLIFICATION * pr->bytes_in)
        return;
    if (rudp__conn_send_control_via(c, now, c->sock, &pr->addr, rudp__standby_local_for(c, &pr->addr),
                                    f, sizeof f) < 0)
        return;
    pr->sent++;
    pr->next_at = now + pr->interval;
    pr->interval *= 2;
    arm_timer(c, now);
}

void rudp__path_on_timer(rudp_conn *c, rudp_time now)
{
    rudp_path *p = &c->path;
    port_tick(c, now);
    local_tick(c, now);
    if (!p->probe.on) {
        arm_timer(c, now);
        return;
    }
    if (now < p->probe.deadline) {
        arm_timer(c, now);
        rudp__conn_dirty(c); /* the next challenge is due */
        return;
    }
    rudp_addr a = p->probe.addr;
    int port_probe = p->port_probe;
    probe_failed(c);
    if (port_probe) {
        log_path(c, RUDP_LOG_INFO, "the server's new port never answered (a forged NEW_PORT, "
                                   "or the server is gone); staying with",
                 &c->pkey.addr, NULL);
        rudp__conn_event(c, RUDP_EV_SERVER_MOVED); /* back to where we were */
        rudp__conn_dirty(c);
    } else {
        log_path(c, RUDP_LOG_INFO, "a packet came from an address that never answered the "
                                   "path challenge (spoofed, or the peer left it):", &a, NULL);
    }
}

void rudp__path_sent(rudp_conn *c, const rudp_addr *to, size_t bytes)
{
    rudp_path_probe *pr = &c->path.probe;
    if (pr->on && addr_eq(to, &pr->addr))
        pr->bytes_out += bytes;
}

int rudp__path_may_send(const rudp_conn *c, size_t bytes)
{
    const rudp_path *p = &c->path;
    (void)bytes; /* a server sends on a validated address only */
    return !(p->port_probe && p->probe.on); /* a client validating its server's new port:
                                             * nothing to the old one */
}

int rudp_conn_rebind(rudp_conn *c, rudp_time now, uint32_t sock, int new_ip)
{
    now = rudp__clock(c->ctx, now);
    if (c->is_server || c->dead || !moving_state(c->state))
        return -EINVAL;
    c->sock = sock;
    /* a fresh socket routing chose: the standby, if any, is the caller's
     * to give again (rudp_conn_standby) */
    rudp_conn_standby_clear(c);
    c->path.rebinds++;
    c->ctx->stats.rebinds++;
    if (new_ip)
        rudp__path_new(c, now, 0);
    /* Something the server must answer goes at once from the new socket:
     * it shows the server where we are. */
    c->ping_pending = 1;
    rudp__conn_probe_now(c);
    return 0;
}
