/*
 * conn_input.c: what a connection receives. A DATA packet's frames are
 * validated whole, then acted on: ACKs settle what we sent (the send
 * stream's acknowledged and lost data, through recovery.c's callbacks; our
 * FIN acknowledged moves the state), STREAM frames fill the receive stream
 * (reassembly, the peer's FIN), and the packet number is recorded for our
 * ACKs. The state machine itself is conn.c; packet building conn_output.c.
 */
#include <errno.h>

#include "conn.h"
#include "seq.h"
#include "trace.h"

/* ---- the send stream ---- */

/* The send buffer follows the congestion window, as TCP's does: four
 * times the window (Linux sizes it at twice the window in buffer memory,
 * about twice the payload; data acknowledged above a loss stays counted
 * until the hole fills), at least RUDP_SNDBUF_MIN, at most send_buffer.
 * Enough to keep the path full under loss; and a peer that never
 * acknowledges (its request made our application write a large answer)
 * holds a little of it, not all of send_buffer. */
static uint64_t send_limit(const rudp_conn *c)
{
    uint64_t lim = 4 * c->cc.cwnd;
    if (lim < RUDP_SNDBUF_MIN)
        lim = RUDP_SNDBUF_MIN;
    return lim < c->cfg.send_buffer ? lim : c->cfg.send_buffer;
}

size_t rudp__conn_send_space(const rudp_conn *c)
{
    uint64_t used = c->snd_end - c->snd_una, lim = send_limit(c);
    return rudp__lowat_space(c, used >= lim ? 0 : (size_t)(lim - used));
}

size_t rudp_conn_write_threshold(const rudp_conn *c)
{
    uint64_t t = send_limit(c) / 4;
    uint32_t lowat = rudp__unsent_bound(c);
    if (lowat && t > lowat / 2)
        t = lowat / 2; /* the room TCP_NOTSENT_LOWAT (or unsent_cap) leaves (tune.c) */
    if (t == 0)
        t = 1;
    return t < 65536 ? (size_t)t : 65536;
}

static void our_fin_acked(rudp_conn *c, rudp_time now)
{
    switch (c->state) {
    /* An event even when no stream byte came with it (a FIN alone): the
     * application's view of the state (TCP_INFO) follows events. */
    case RUDP_FIN_WAIT_1:
        rudp__conn_set_state(c, RUDP_FIN_WAIT_2, "FIN acked");
        rudp__conn_event(c, RUDP_EV_ACKED);
        return;
    case RUDP_CLOSING:
        rudp__conn_set_state(c, RUDP_TIME_WAIT, "FIN acked");
        rudp__conn_arm(c, RUDP_T_DRAIN, now + 3 * rudp__rtt_pto(&c->rtt, c->cfg.max_ack_delay));
        rudp__conn_event(c, RUDP_EV_ACKED);
        return;
    case RUDP_LAST_ACK:
        rudp__conn_set_state(c, RUDP_CLOSED, "FIN acked");
        return;
    case RUDP_CLOSED:
    case RUDP_SYN_SENT:
    case RUDP_SYN_RCVD:
    case RUDP_ESTABLISHED:
    case RUDP_FIN_WAIT_2:
    case RUDP_TIME_WAIT:
    case RUDP_CLOSE_WAIT:
    case RUDP_STATE_COUNT:
        return;
    }
}

/* The other packet of a pair (a write's last packet and its copy,
 * conn_output.c) while recovery keeps it, else NULL. */
static const rudp_sent *twin_of(const rudp_conn *c, const rudp_sent *s)
{
    const rudp_sent *t = NULL;
    if (s->flags & RUDP_SENT_COPIED) {
        t = rudp__recovery_find(&c->rec, s->pn + 1);
        if (t && !(t->flags & RUDP_SENT_COPY))
            t = NULL;
    } else if (s->flags & RUDP_SENT_COPY) {
        t = rudp__recovery_find(&c->rec, s->pn - 1);
        if (t && !(t->flags & RUDP_SENT_COPIED))
            t = NULL;
    }
    return t;
}

static int still_in_flight(const rudp_sent *t)
{
    return t && (t->flags & RUDP_SENT_IN_FLIGHT) &&
           !(t->flags & (RUDP_SENT_ACKED | RUDP_SENT_LOST));
}

/* Whether every stream byte of s (and its FIN) reached the peer. */
static int delivered(const rudp_conn *c, const rudp_sent *s)
{
    if ((s->flags & RUDP_SENT_FIN) && !c->fin_acked)
        return 0;
    uint64_t lo = rudp__seq_max(s->stream_off, c->snd_una), hi = s->stream_off + s->stream_len;
    return !rudp__seq_lt(lo, hi) || rudp__ranges_covers(&c->acked, lo, hi);
}

void rudp__conn_on_acked(void *arg, const rudp_sent *s)
{
    rudp_conn *c = arg;
    rudp__pmtu_acked(c, s, c->ctx->now);
    if (s->flags & RUDP_SENT_COPY) {
        const rudp_sent *t = twin_of(c, s);
        if (t && (t->flags & RUDP_SENT_LOST))
            c->ctx->stats.losses_repaired++; /* found lost before its copy's ACK came */
    }
    if (s->stream_len) {
        uint64_t lo = s->stream_off, hi = s->stream_off + s->stream_len;
        if (rudp__seq_lt(c->snd_una, hi)) {
            rudp__ranges_add(&c->acked, rudp__seq_max(lo, c->snd_una), hi);
            rudp__ranges_remove(&c->retx, lo, hi);
            uint64_t una = rudp__ranges_contiguous_end(&c->acked, c->snd_una);
            if (una != c->snd_una) {
                c->snd_una = una;
                rudp__conn_reset_progress(c, c->ctx->now); /* a reset's wait, again */
                rudp__ranges_trim_below(&c->acked, una);
                rudp__ranges_trim_below(&c->retx, una);
                rudp__sbuf_advance(&c->sbuf, una, una == c->snd_end);
                rudp__conn_event(c, RUDP_EV_ACKED);
                if (c->want_writable && rudp__conn_send_space(c) >= rudp_conn_write_threshold(c)) {
                    c->want_writable = 0;
                    rudp__conn_event(c, RUDP_EV_WRITABLE);
                }
            }
        }
    }
    if ((s->flags & RUDP_SENT_FIN) && !c->fin_acked) {
        c->fin_acked = 1;
    }
    rudp__urg_acked(c, s);
    if (c->fin_acked && c->snd_una == c->fin_off)
        our_fin_acked(c, c->ctx->now);
}

void rudp__conn_on_lost(void *arg, const rudp_sent *s)
{
    rudp_conn *c = arg;
    if (s->flags & RUDP_SENT_PMTU_PROBE) {
        rudp__pmtu_lost(c, s, c->ctx->now); /* nothing in it to send again */
        rudp__conn_dirty(c);
        return;
    }
    c->ctx->stats.pkts_retransmitted++;
    rudp__trace_lost(c, s);
    /* A packet of a pair whose twin may still deliver the same bytes:
     * nothing goes again yet; the twin's loss re-queues them. Bytes its
     * copy delivered are not sent a third time; the loss still went to
     * the controller (recovery.c) as any other. */
    const rudp_sent *twin = twin_of(c, s);
    int twin_flying = still_in_flight(twin);
    if ((s->flags & RUDP_SENT_COPIED) && twin && delivered(c, s))
        c->ctx->stats.losses_repaired++;
    if (s->stream_len && !twin_flying) {
        uint64_t lo = rudp__seq_max(s->stream_off, c->snd_una);
        uint64_t hi = s->stream_off + s->stream_len;
        if (rudp__seq_lt(lo, hi) && rudp__ranges_add(&c->retx, lo, hi) == 0) {
            /* Parts acknowledged through another packet need not go again. */
            for (uint32_t i = 0; i < c->acked.n; i++) {
                const rudp_range *a = &c->acked.r[i];
                if (a->lo >= hi)
                    break;
                if (a->hi > lo)
                    rudp__ranges_remove(&c->retx, a->lo, a->hi);
            }
        }
    }
    if ((s->flags & RUDP_SENT_FIN) && !c->fin_acked && !twin_flying)
        c->fin_sent = 0;
    if (s->flags & RUDP_SENT_MAX_DATA)
        c->max_data_pending = 1;
    if (s->flags & RUDP_SENT_BLOCKED)
        c->blocked_at = 0;
    rudp__conn_dirty(c);
}

static void process_ack(rudp_conn *c, rudp_time now, const rudp_frame *f, int *bad)
{
    int n = rudp__recovery_on_ack(&c->rec, &c->cc, &c->rtt, now, f->u.ack.r, f->u.ack.n,
                                 RUDP_US(f->u.ack.delay_us), c->cfg.max_ack_delay, &c->rec_cb);
    if (n < 0) {
        *bad = 1;
        return;
    }
    /* what the peer's other connections learn from this one (late.c) */
    if (c->rec.sample || c->rec.late)
        rudp__late_note(c->ctx, &c->pkey.addr, c->rec.sample, c->rec.late, now);
    if (c->rec.sample)
        rudp__standby_rtt(c, now, c->rec.sample); /* a path too slow (standby.c) */
    if (c->state == RUDP_CLOSED)
        return; /* the ACK finished the connection: enter_closed() disarmed every timer */
    if (n > 0) {
        /* user_timeout counts from the last progress, while stream data
         * or the FIN is unacknowledged and something asks for an answer */
        if (c->rec.eliciting_in_flight && rudp__conn_stream_unacked(c))
            rudp__conn_arm(c, RUDP_T_GIVEUP, now + c->cfg.user_timeout);
        else
            rudp__conn_disarm(c, RUDP_T_GIVEUP);
        c->probes = 0;
        rudp__conn_dirty(c);
    }
    rudp__conn_update_loss_timer(c);
}

/* ---- the receive stream ---- */

static void peer_fin_complete(rudp_conn *c, rudp_time now)
{
    c->fin_received = 1;
    c->ack_now = 1;
    rudp__conn_event(c, RUDP_EV_READABLE);
    switch (c->state) {
    case RUDP_ESTABLISHED:
        rudp__conn_set_state(c, RUDP_CLOSE_WAIT, "peer FIN");
        return;
    case RUDP_FIN_WAIT_1:
        rudp__conn_set_state(c, RUDP_CLOSING, "peer FIN");
        return;
    case RUDP_FIN_WAIT_2:
        rudp__conn_set_state(c, RUDP_TIME_WAIT, "peer FIN");
        rudp__conn_disarm(c, RUDP_T_KEEPALIVE);
        rudp__conn_disarm(c, RUDP_T_IDLE);
        rudp__conn_arm(c, RUDP_T_DRAIN, now + 3 * rudp__rtt_pto(&c->rtt, c->cfg.max_ack_delay));
        return;
    case RUDP_CLOSED:
    case RUDP_SYN_SENT:
    case RUDP_SYN_RCVD:
    case RUDP_CLOSING:
    case RUDP_TIME_WAIT:
    case RUDP_CLOSE_WAIT:
    case RUDP_LAST_ACK:
    case RUDP_STATE_COUNT:
        return;
    }
}

/* Receive coalescing (rx_hold): in-order bytes from a packet whose sender
 * has more to send (no ACK_NOW: conn_output.c sets it on the last packet
 * before the sender runs dry, and on probes) wait for the next ones
 * before RUDP_EV_READABLE says so, at most rx_hold and 64 KiB: a bulk
 * receiver's application is woken once for several datagrams instead of
 * once for each, as a NIC's GRO batch does for TCP. A request, an answer
 * or a write's tail carries ACK_NOW and is told at once. The bytes are
 * readable meanwhile (rudp_conn_read); only the event waits.
 *
 * Only for a reader that had taken everything before (`before`:
 * rcv_contig before this packet; one behind, the shim's bridge full, is
 * not waiting to be woken, and its bytes must go on as room comes), and
 * only on a path whose smoothed RTT is 4 rx_hold or more: on a shorter
 * one the wait is a large part of a round trip (a veth pair's bulk run,
 * 50 us apart, lost 10-20 % with a quarter round trip's hold). */
#define RUDP_RX_HOLD_BYTES (64u * 1024)

static void rx_readable(rudp_conn *c, rudp_time now, uint64_t before)
{
    rudp_time hold = c->cfg.rx_hold;
    if (hold > c->rtt.smoothed / 4)
        hold = 0;
    if (c->rx_more && hold > 0 && (c->rx_held || c->rcv_read == before) &&
        c->rcv_contig - c->rcv_read < RUDP_RX_HOLD_BYTES) {
        if (!c->rx_held) {
            c->rx_held = 1;
            rudp__conn_arm(c, RUDP_T_RXHOLD, now + hold);
        }
        return;
    }
    if (c->rx_held) {
        c->rx_held = 0;
        rudp__conn_disarm(c, RUDP_T_RXHOLD);
    }
    rudp__conn_event(c, RUDP_EV_READABLE);
}

int rudp_conn_rx_held(const rudp_conn *c)
{
    return c->rx_held;
}

int rudp_conn_rx_more(const rudp_conn *c)
{
    rudp_time hold = c->cfg.rx_hold;
    return c->rx_more && hold > 0 && hold <= c->rtt.smoothed / 4 && c->peer_fin == RUDP_FIN_NONE;
}

/* Returns 0, -EPROTO (the peer broke a rule), or -ENOBUFS (no room now:
 * do not acknowledge, the peer will send it again). */
static int stream_input(rudp_conn *c, rudp_time now, const rudp_frame *f)
{
    uint64_t off = f->u.stream.offset, len = f->u.stream.len, end = off + len;
    if (end > c->max_data_sent)
        return -EPROTO; /* beyond the window we advertised */
    if (f->u.stream.fin) {
        if (c->peer_fin != RUDP_FIN_NONE && c->peer_fin != end)
            return -EPROTO; /* the final size changed */
        uint64_t highest = c->rcv.n ? c->rcv.r[c->rcv.n - 1].hi : c->rcv_contig;
        if (end < highest)
            return -EPROTO; /* data exists past the final size */
        c->peer_fin = end;
    } else if (c->peer_fin != RUDP_FIN_NONE && end > c->peer_fin) {
        return -EPROTO;
    }
    uint64_t lo = rudp__seq_max(off, c->rcv_contig);
    if (rudp__seq_lt(lo, end)) {
        if (c->released && !rudp__ranges_covers(&c->rcv, lo, end))
            return -EPIPE; /* new data for a closed application: reset */
        if (!rudp__rx_may_store(c, lo, end))
            return -ENOBUFS;
        int err = rudp__sbuf_write(&c->rbuf, lo, f->u.stream.data + (lo - off), (size_t)(end - lo));
        if (err == 0)
            err = rudp__ranges_add(&c->rcv, lo, end);
        if (err)
            return -ENOBUFS;
        c->bytes_received += end - lo;
        uint64_t contig = rudp__ranges_contiguous_end(&c->rcv, c->rcv_contig);
        if (contig != c->rcv_contig) {
            uint64_t before = c->rcv_contig;
            c->rcv_contig = contig;
            rudp__ranges_trim_below(&c->rcv, contig);
            rx_readable(c, now, before);
        }
    }
    if (!c->fin_received && c->peer_fin != RUDP_FIN_NONE && c->rcv_contig == c->peer_fin)
        peer_fin_complete(c, now);
    return 0;
}

/* ---- DATA packets ---- */

/* ACK decimation: how many ack-eliciting packets may wait for one ACK.
 * Every second packet, as TCP without GRO does, until the peer sends 16 or
 * more per round trip; then an eighth of a round's packets, at most 10
 * (Chromium's and quiche's QUIC: every 10 packets once the flow is fast),
 * and the ACK timer at most a quarter of a round away, so that the sender
 * still hears at least ~8 ACKs per round trip. A bulk flow at 100 Mbit/s
 * and 10 ms RTT sends ~90 packets per round: an ACK per 10, not per 2, a
 * fifth of the receiver's datagrams and of the sender's wake-ups. Linux TCP
 * gets the same from GRO, one ACK per coalesced burst of up to 64 KiB.
 * A gap is still answered at once, a sender's ACK_NOW soon (the caller). */
#define RUDP_ACK_EVERY_MAX 10
static uint32_t ack_every(rudp_conn *c, rudp_time now, rudp_time *delay)
{
    rudp_time round = c->rtt.smoothed > RUDP_MS(1) ? c->rtt.smoothed : RUDP_MS(1);
    if (now - c->rx_round_start >= round) {
        /* a round with no packet in between counts as a slow one */
        c->rx_rate_pkts = now - c->rx_round_start < 2 * round ? c->rx_round_pkts : 0;
        c->rx_round_pkts = 0;
        c->rx_round_start = now;
    }
    c->rx_round_pkts++;
    uint32_t every = c->rx_rate_pkts / 8;
    if (every <= 2)
        return 2;
    if (every > RUDP_ACK_EVERY_MAX)
        every = RUDP_ACK_EVERY_MAX;
    if (*delay > round / 4)
        *delay = round / 4;
    return every;
}

/* Decodes every frame once without acting, so that a malformed packet is
 * dropped whole. Sets *eliciting, *probing_only (nothing but PATH_*
 * frames and padding: RFC 9000 §9.1), and *ping_only (PINGs and padding
 * alone: a probe's copy on the standby path, standby.c). */
static int validate_frames(const uint8_t *p, size_t len, int *eliciting, int *probing_only,
                           int *ping_only)
{
    rudp_frame f;
    *eliciting = 0;
    *probing_only = 1;
    int ping = 0, other = 0;
    while (len) {
        int n = rudp__wire_frame_decode(p, len, &f);
        if (n <= 0)
            return -EBADMSG;
        int path = f.type == RUDP_FRAME_PATH_CHALLENGE || f.type == RUDP_FRAME_PATH_RESPONSE;
        if (f.type != RUDP_FRAME_ACK && f.type != RUDP_FRAME_PADDING && !path)
            *eliciting = 1;
        if (f.type != RUDP_FRAME_PADDING && !path)
            *probing_only = 0;
        if (f.type == RUDP_FRAME_PING)
            ping = 1;
        else if (f.type != RUDP_FRAME_PADDING)
            other = 1;
        p += n;
        len -= (size_t)n;
    }
    *ping_only = ping && !other;
    return 0;
}

int rudp__conn_input_data(rudp_conn *c, rudp_time now, const rudp_hdr *h, const uint8_t *p,
                          size_t len)
{
    rudp_ctx *ctx = c->ctx;
    size_t plen = len;
    switch (c->state) {
    case RUDP_SYN_SENT:
    case RUDP_CLOSED:
    case RUDP_STATE_COUNT:
        /* A server sends DATA only after its SYNACK arrived: illegal here. */
        ctx->stats.protocol_errors++;
        return 0;
    case RUDP_SYN_RCVD:
    case RUDP_ESTABLISHED:
    case RUDP_FIN_WAIT_1:
    case RUDP_FIN_WAIT_2:
    case RUDP_CLOSING:
    case RUDP_TIME_WAIT:
    case RUDP_CLOSE_WAIT:
    case RUDP_LAST_ACK:
        break;
    }
    int eliciting, probing_only, ping_only;
    if (validate_frames(p, len, &eliciting, &probing_only, &ping_only) < 0) {
        ctx->stats.malformed++;
        return 0;
    }
    uint64_t pn = rudp__conn_rx_pn(c, h->pn);
    if (c->rx_any && (pn < c->rx_floor || rudp__ranges_contains(&c->rx_pns, pn))) {
        ctx->stats.dup_pkts++;
        c->ack_now = 1; /* our ACK may have been lost */
        if (probing_only)
            rudp__standby_dup(c, now, p, len); /* standby.c */
        rudp__conn_dirty(c);
        return 0;
    }
    /* a new packet's word on what follows (a duplicate's is old news) */
    c->rx_more = !(h->flags & RUDP_PKTF_ACK_NOW);
    if (c->state == RUDP_TIME_WAIT && eliciting && c->tw_restarts < RUDP_TW_RESTARTS) {
        /* The peer still sends (its FIN again: our last ACK was lost or
         * late): the wait starts again, as TCP's does on a FIN resent in
         * TIME-WAIT (RFC 9293 3.10.7.4). Ended, the next copy would meet
         * no connection and be answered with a reset. A new packet only
         * (a replayed one is a duplicate above), and a few times: a peer
         * that sends on for ever does not hold the connection (and a
         * client's socket) for ever. */
        c->tw_restarts++;
        rudp__conn_arm(c, RUDP_T_DRAIN, now + 3 * rudp__rtt_pto(&c->rtt, c->cfg.max_ack_delay));
    }
    int rx = RUDP_RX_TAKEN | (probing_only ? 0 : RUDP_RX_NON_PROBING) |
             (ping_only ? RUDP_RX_PING_ONLY : 0) |
             (!c->rx_any || pn > c->rx_largest ? RUDP_RX_LARGEST : 0);
    /* The client's step 3 with nothing else (conn.c): not counted towards
     * an ACK of its own, so that a request right behind it waits for the
     * server's answer to carry the ACK (within RUDP_ACK_SOON, as the
     * PING's ACK_NOW asks), as TCP's third ACK is not answered. */
    int confirm_only = c->state == RUDP_SYN_RCVD && ping_only;
    if (c->state == RUDP_SYN_RCVD) {
        if (c->listener && c->listener->waiting && !c->accept_early) {
            /* The accept queue is full: as TCP drops the handshake's last
             * ACK, this packet is dropped unacknowledged and resent. */
            ctx->stats.handshakes_dropped++;
            return 0;
        }
        rudp__conn_established(c, now, "first DATA");
        ctx->stats.conns_accepted++;
        if (c->accept_early) {
            rudp__conn_event(c, RUDP_EV_WRITABLE); /* reported at its SYN */
        } else {
            c->accept_stamp = ctx->rx_stamp; /* rxstamp.c */
            rudp__queue(c, RUDP_Q_HAND); /* until the application's queue takes it */
            rudp__conn_event(c, RUDP_EV_ACCEPT | RUDP_EV_WRITABLE);
        }
    }

    rudp_frame f;
    int bad = 0;
    while (len) {
        int n = rudp__wire_frame_decode(p, len, &f);
        p += n;
        len -= (size_t)n;
        switch ((enum rudp_frame_type)f.type) {
        case RUDP_FRAME_PADDING:
        case RUDP_FRAME_PING:
            break;
        case RUDP_FRAME_ACK:
            process_ack(c, now, &f, &bad);
            break;
        case RUDP_FRAME_MAX_DATA:
            if (f.u.max_data > c->peer_max_data) {
                c->peer_max_data = f.u.max_data;
                rudp__conn_dirty(c);
            }
            break;
        case RUDP_FRAME_DATA_BLOCKED:
            rudp__conn_autotune(c, now, f.u.blocked); /* the window is what limits the sender */
            c->max_data_pending = 1; /* re-advertise: our update may be lost */
            break;
        case RUDP_FRAME_URGENT:
            rudp__urg_input(c, f.u.urgent);
            break;
        case RUDP_FRAME_NEW_PORT:
            rudp__path_on_new_port(c, now, (unsigned)f.u.new_port, rx, plen);
            break;
        case RUDP_FRAME_NEW_TOKEN:
            rudp__zrtt_on_token(c, f.u.token.data, f.u.token.len);
            break;
        case RUDP_FRAME_RESET:
            ctx->stats.resets_received++;
            /* After the peer's FIN (rudp_conn_close_reset): with every byte
             * up to it here, that FIN is complete, the reset comes in
             * CLOSE_WAIT, as TCP's after a close(). */
            if (f.u.reset.code == RUDP_RESET_AFTER_FIN && !c->fin_received &&
                c->rcv_contig == f.u.reset.final_size &&
                (c->peer_fin == RUDP_FIN_NONE || c->peer_fin == f.u.reset.final_size)) {
                c->peer_fin = f.u.reset.final_size;
                peer_fin_complete(c, now);
            }
            rudp__conn_fail(c, now, -ECONNRESET, RUDP_CAUSE_RESET);
            return 0;
        case RUDP_FRAME_PATH_CHALLENGE:
            rudp__path_on_challenge(c, now, f.u.path_data);
            break;
        case RUDP_FRAME_SERVER_ADDR:
            rudp__standby_on_offer(c, &f.u.addr);
            break;
        case RUDP_FRAME_PATH_RESPONSE:
            rudp__path_on_response(c, now, f.u.path_data);
            break;
        case RUDP_FRAME_STREAM: {
            int err = stream_input(c, now, &f);
            if (err == -EPIPE) {
                /* Released: our FIN is queued or sent (rudp_conn_release).
                 * TCP's close() had sent what the app wrote and its FIN
                 * before these bytes came; ours may still wait (for the
                 * end of this turn: a close() and the peer's next datagram
                 * in one engine turn; or for the window): they go first,
                 * else the reset beats them and the peer loses a reply it
                 * was sent (prog_replyclose). A reset already waiting for
                 * them: these bytes are dropped, unacknowledged. */
                if (!c->reset_pending)
                    rudp__conn_reset_when_sent(c, now,
                                               c->shut_wr && c->fin_off == c->snd_end
                                                   ? RUDP_RESET_AFTER_FIN
                                                   : RUDP_RESET_ABORT);
                return 0;
            }
            if (err == -EPROTO)
                bad = 1;
            else if (err)
                return 0; /* -ENOBUFS: unacknowledged, so resent later */
            break;
        }
        }
        if (bad) {
            ctx->stats.protocol_errors++;
            return 0;
        }
        if (c->state == RUDP_CLOSED)
            return 0;
    }

    /* Record the packet number for our ACKs. Only ack-eliciting packets
     * call for an ACK (RFC 9000 §13.2.1): a gap left by a lost ACK-only
     * packet must not trigger one, or a bulk sender's every packet would
     * carry a fragmented ACK frame of the receiver's lost ACKs. */
    if (rudp__ranges_add(&c->rx_pns, pn, pn + 1) == 0 && c->rx_pns.n > RUDP_RX_RANGES_KEPT) {
        /* Below the ranges kept, a packet number cannot be told from one
         * seen: taken as a duplicate (a replay, or too late to matter:
         * what it carried is resent by now). */
        c->rx_floor = c->rx_pns.r[c->rx_pns.n - RUDP_RX_RANGES_KEPT].lo;
        rudp__ranges_keep_highest(&c->rx_pns, RUDP_RX_RANGES_KEPT);
    }
    int gap = c->rx_any && pn != c->rx_largest + 1; /* a hole, or filling one */
    if (!c->rx_any || pn > c->rx_largest) {
        c->rx_largest = pn;
        c->rx_largest_time = now;
    }
    c->rx_any = 1;
    if (eliciting) {
        c->rx_unacked = 1;
        if (gap)
            c->ack_now = 1; /* tell the sender at once */
        if (!confirm_only)
            c->rx_eliciting++;
        /* ACK_NOW means "ack soon": within RUDP_ACK_SOON, so that an
         * application's reply (a request/response exchange) carries the ACK
         * instead of a datagram of its own. */
        rudp_time delay = (h->flags & RUDP_PKTF_ACK_NOW)
                              ? rudp__ack_soon_delay(c->cfg.max_ack_delay)
                              : c->cfg.max_ack_delay;
        /* The count reached by a packet that asks for an ACK (its
         * sender's last before it ran dry: an answer's end) waits as that
         * ACK_NOW says, for the reply it may bring (nginx's answer, its
         * header and its file, is two such packets: the next request then
         * carries the ACK, no datagram of its own to send and to wake the
         * server for); up to twice the count. */
        uint32_t every = ack_every(c, now, &delay);
        int reply_due = (h->flags & RUDP_PKTF_ACK_NOW) && c->rx_eliciting < 2 * every;
        if (c->rx_eliciting >= every && !reply_due)
            c->ack_now = 1;
        else if (rudp__timer_later_than(&c->timers[RUDP_T_ACK], now + delay))
            rudp__conn_arm(c, RUDP_T_ACK, now + delay);
    }
    c->zrtt_unconfirmed = 0; /* the client has our SYNACK (zrtt.c) */
    if (c->token_due && c->is_server)
        rudp__zrtt_issue(c, now); /* its address is proven: a token for next time */
    if (now - c->last_rx > c->longest_silence)
        c->longest_silence = now - c->last_rx;
    c->last_rx = now;
    c->silent_told = 0;
    if (c->state != RUDP_TIME_WAIT)
        rudp__conn_keepalive_rearm(c, now);
    rudp__conn_dirty(c);
    if (c->abort_deferred && c->state != RUDP_SYN_RCVD) {
        /* established now: the bytes its application wrote, then the reset
         * it asked for (rudp__conn_abort_code) */
        c->abort_deferred = 0;
        rudp__conn_flush(c, now);
        rudp__conn_abort_code(c, now, c->abort_after_fin ? RUDP_RESET_AFTER_FIN : RUDP_RESET_ABORT);
    }
    return rx;
}
