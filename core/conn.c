/*
 * conn.c: the connection state machine.
 *
 * Handshake (client C, server S; S keeps no state before step 3):
 *   1. C -> S  SYN (scid = C's ID, padded to RUDP_MIN_SYN_SIZE)
 *   2. S -> C  RETRY (cookie)                           stateless
 *   3. C -> S  SYN (the cookie echoed)                  S: SYN_RCVD
 *   4. S -> C  SYNACK (S's ID, window)                  C: ESTABLISHED
 *   5. C -> S  first DATA packet (a PING if no data)    S: ESTABLISHED
 * SYN and SYNACK are retransmitted on their own timer ("SYN expects SYNACK,
 * SYNACK expects ACK", seed 001); a duplicate SYN within one retransmission
 * timeout earns no second SYNACK.
 *
 * After the handshake a single byte stream flows each way in DATA packets
 * with never-reused packet numbers; ACK frames carry ranges; loss detection
 * and probe timeouts are RFC 9002's (recovery.c); flow control is an
 * absolute offset limit (MAX_DATA) tied to what the application has read.
 * Closing follows TCP: FIN each way, TIME_WAIT drains retransmitted FINs
 * for three probe timeouts, RESET aborts.
 *
 * Every state change goes through rudp__conn_set_state(), which checks it against the
 * table of legal transitions and logs it.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "alloc.h"
#include "seq.h"
#include "trace.h"

/* The pacer lets a late sender catch up by a burst of this much: about a
 * millisecond at the pacing rate (as Linux sizes a TSO burst, rate >> 10),
 * at least 10 packets, at most 64 KiB (one GSO train) unless 10 packets are
 * more. A fixed 10 packets capped rudp near 200 Mbit/s on a VM whose timer
 * wake-ups come 100-150 us late: at 1 Gbit/s 10 packets last 112 us, so
 * every late wake-up threw pacing credit away and BBR, which measures what
 * was delivered, settled at what the pacer managed. */
#define RUDP_PACE_BURST_PKTS 10
#define RUDP_PACE_BURST_MAX (64 * 1024)

static uint64_t pace_burst(const rudp_conn *c, uint64_t rate)
{
    uint64_t b = rate / 1000;
    if (b > RUDP_PACE_BURST_MAX)
        b = RUDP_PACE_BURST_MAX;
    if (b < (uint64_t)RUDP_PACE_BURST_PKTS * c->mss)
        b = (uint64_t)RUDP_PACE_BURST_PKTS * c->mss;
    return b;
}

static void disarm_all(rudp_conn *c)
{
    for (int k = 0; k < RUDP_T_COUNT; k++)
        rudp__conn_disarm(c, k);
}

/* ---- state transitions ---- */

static int legal(rudp_state from, rudp_state to)
{
    switch (from) {
    case RUDP_CLOSED:
        return to == RUDP_SYN_SENT || to == RUDP_SYN_RCVD;
    case RUDP_SYN_SENT:
        return to == RUDP_ESTABLISHED || to == RUDP_CLOSED;
    case RUDP_SYN_RCVD:
        return to == RUDP_ESTABLISHED || to == RUDP_CLOSED;
    case RUDP_ESTABLISHED:
        return to == RUDP_FIN_WAIT_1 || to == RUDP_CLOSE_WAIT || to == RUDP_CLOSED;
    case RUDP_FIN_WAIT_1:
        return to == RUDP_FIN_WAIT_2 || to == RUDP_CLOSING || to == RUDP_CLOSED;
    case RUDP_FIN_WAIT_2:
        return to == RUDP_TIME_WAIT || to == RUDP_CLOSED;
    case RUDP_CLOSING:
        return to == RUDP_TIME_WAIT || to == RUDP_CLOSED;
    case RUDP_TIME_WAIT:
        return to == RUDP_CLOSED;
    case RUDP_CLOSE_WAIT:
        return to == RUDP_LAST_ACK || to == RUDP_CLOSED;
    case RUDP_LAST_ACK:
        return to == RUDP_CLOSED;
    case RUDP_STATE_COUNT:
        break;
    }
    return 0;
}

static void enter_closed(rudp_conn *c);

void rudp__conn_set_state(rudp_conn *c, rudp_state to, const char *why)
{
    assert(legal(c->state, to));
    rudp__log(c->ctx, RUDP_LOG_DEBUG, "conn %016llx %s -> %s (%s)", (unsigned long long)c->cid,
              rudp_state_name(c->state), rudp_state_name(to), why);
    rudp__trace_state(c, to, why);
    c->state = to;
    if (to == RUDP_ESTABLISHED && !c->opened)
        rudp__report_open(c);
    if (to == RUDP_CLOSED) {
        rudp__report_close(c, why);
        enter_closed(c);
    }
}

static void enter_closed(rudp_conn *c)
{
    disarm_all(c);
    rudp__table_remove(c->ctx, c);
    rudp__queue(c, RUDP_Q_NONE);
    c->ctx->stats.conns_closed++;
    if (c->released)
        rudp__conn_kill(c);
    else
        rudp__conn_event(c, RUDP_EV_CLOSED | RUDP_EV_READABLE | RUDP_EV_WRITABLE);
}

void rudp__conn_fail(rudp_conn *c, rudp_time now, int err, rudp_cause cause)
{
    (void)now;
    if (c->state == RUDP_CLOSED)
        return;
    c->error = err;
    c->cause = (uint8_t)cause;
    rudp__conn_event(c, RUDP_EV_ERROR);
    rudp__conn_set_state(c, RUDP_CLOSED, err == -ETIMEDOUT ? "timeout" : "error");
}

/* ---- allocation ---- */

int rudp__conn_alloc(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *peer,
                     const rudp_config *cfg, rudp_conn **out)
{
    rudp_conn *c = rudp__calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->ctx = ctx;
    c->sock = sock;
    c->cfg = *cfg;
    c->pkey.addr = *peer;
    c->state = RUDP_CLOSED;
    c->mss = cfg->max_datagram;
    c->fin_off = RUDP_FIN_NONE;
    c->peer_fin = RUDP_FIN_NONE;
    c->hs_start = now;
    c->last_rx = now;
    for (int k = 0; k < RUDP_T_COUNT; k++)
        rudp_timer_init(&c->timers[k], (uint8_t)k);
    rudp_sbuf_init(&c->sbuf, 0, cfg->send_buffer);
    rudp_sbuf_init(&c->rbuf, 0, cfg->recv_window);
    c->rbuf.acct = &ctx->mem; /* what a peer sends counts in the budget */
    c->sbuf.pool = c->rbuf.pool = &ctx->chunks;
    rudp_ranges_init(&c->acked, RUDP_STREAM_RANGES_MAX);
    rudp_ranges_init(&c->retx, RUDP_STREAM_RANGES_MAX);
    rudp_ranges_init(&c->rcv, RUDP_STREAM_RANGES_MAX);
    rudp_ranges_init(&c->rx_pns, 2 * RUDP_RX_RANGES_KEPT);
    rudp_recovery_init(&c->rec);
    c->rec_cb.acked = rudp__conn_on_acked;
    c->rec_cb.lost = rudp__conn_on_lost;
    c->rec_cb.arg = c;
    rudp_rtt_init(&c->rtt, cfg->initial_rtt);
    rudp_cc_seed(&c->cc, rudp__random64(ctx), rudp__random64(ctx));
    rudp_cc_setup(&c->cc, cfg->cc, c->mss, now);
    /* Like TCP's receive-buffer auto-tuning: start small, grow only while
     * the application reads as fast as data comes (see after_read), so a
     * stalled reader holds the sender to a small window. */
    c->rwnd = cfg->recv_window < RUDP_RWND_INITIAL ? cfg->recv_window : RUDP_RWND_INITIAL;
    c->rwnd_start = now;
    c->max_data_sent = c->rwnd;
    c->cid = rudp__new_cid(ctx);
    if (rudp__conn_keyed_new(c) < 0 || rudp__table_add_cid(ctx, c) < 0) {
        rudp__conn_keyed_free(c);
        rudp__free(c);
        return -ENOMEM;
    }
    c->all_next = ctx->all;
    if (ctx->all)
        ctx->all->all_prev = c;
    ctx->all = c;
    ctx->nconns++;
    ctx->mem += sizeof *c;
    *out = c;
    return 0;
}

void rudp__conn_destroy(rudp_conn *c)
{
    rudp_ctx *ctx = c->ctx;
    uint32_t sock = c->sock;
    rudp__trace_close(c);
    disarm_all(c);
    rudp__table_remove(ctx, c);
    rudp__queue(c, RUDP_Q_NONE);
    ctx->mem -= sizeof *c;
    if (c->all_prev)
        c->all_prev->all_next = c->all_next;
    else
        ctx->all = c->all_next;
    if (c->all_next)
        c->all_next->all_prev = c->all_prev;
    ctx->nconns--;
    rudp_sbuf_free(&c->sbuf);
    rudp_sbuf_free(&c->rbuf);
    rudp_ranges_free(&c->acked);
    rudp_ranges_free(&c->retx);
    rudp_ranges_free(&c->rcv);
    rudp_ranges_free(&c->rx_pns);
    rudp_recovery_free(&c->rec);
    rudp__conn_keyed_free(c);
    int held = c->user_held;
    rudp__free(c);
    if (held && ctx->ops.conn_freed)
        ctx->ops.conn_freed(ctx->user, sock);
}

/* ---- handshake ---- */

/* Doubling from the PTO up to RUDP_PTO_BACKOFF_MAX (or the PTO if
 * larger): a path back from a blackout is found within it, as data's is. */
static rudp_time hs_timeout(const rudp_conn *c)
{
    uint32_t shift = c->hs_count > 1 ? c->hs_count - 1 : 0;
    if (shift > 10)
        shift = 10;
    rudp_time pto = rudp_rtt_pto(&c->rtt, 0), wait = pto << shift;
    rudp_time most = pto > RUDP_PTO_BACKOFF_MAX ? pto : RUDP_PTO_BACKOFF_MAX;
    return wait < most ? wait : most;
}

static void send_syn(rudp_conn *c, rudp_time now)
{
    rudp_hdr h;
    memset(&h, 0, sizeof h);
    h.type = RUDP_PKT_SYN;
    h.pn = c->hs_count;
    h.scid = c->cid;
    h.token_len = c->token_len;
    memcpy(h.token, c->token, c->token_len);
    h.max_data = c->rwnd;
    h.max_datagram = c->cfg.max_datagram;
    uint8_t *buf = c->ctx->pkt;
    int n = rudp_wire_hdr_encode(buf, RUDP_MIN_SYN_SIZE, &h);
    if (n < 0)
        return;
    if (c->keyed)
        rudp__keyed_syn_seal(c, buf, (size_t)n);
    else
        memset(buf + n, 0, RUDP_MIN_SYN_SIZE - (size_t)n); /* PADDING frames */
    c->hs_count++;
    c->hs_sample_ok = c->hs_count == 1;
    c->hs_sent_time = now;
    rudp__conn_send(c, buf, RUDP_MIN_SYN_SIZE);
    rudp__conn_arm(c, RUDP_T_HANDSHAKE, now + hs_timeout(c));
}

void rudp_conn_handshake_again(rudp_conn *c, rudp_time now)
{
    now = rudp__clock(c->ctx, now);
    if (c->state == RUDP_SYN_SENT && !c->is_server)
        send_syn(c, now);
}

static void send_synack(rudp_conn *c, rudp_time now)
{
    rudp_hdr h;
    memset(&h, 0, sizeof h);
    h.type = RUDP_PKT_SYNACK;
    h.dcid = c->pkey.cid;
    h.pn = c->hs_count;
    h.scid = c->cid;
    h.max_data = c->rwnd;
    h.max_datagram = c->cfg.max_datagram;
    uint8_t buf[160]; /* header (64 at most), keyed: 33, a reset token and its tag (32), MAC */
    int n = rudp_wire_hdr_encode(buf, 64, &h);
    if (n < 0)
        return;
    if (c->keyed)
        n = (int)rudp__keyed_synack_seal(c, buf, (size_t)n);
    c->hs_count++;
    c->hs_sample_ok = c->hs_count == 1;
    c->hs_sent_time = now;
    rudp__conn_send(c, buf, (size_t)n);
    rudp__conn_arm(c, RUDP_T_HANDSHAKE, now + hs_timeout(c));
}

static void take_peer_params(rudp_conn *c, const rudp_hdr *h)
{
    c->peer_max_data = h->max_data;
    uint64_t md = h->max_datagram;
    if (md >= RUDP_MIN_SYN_SIZE && md < c->mss)
        c->mss = (uint32_t)md;
    c->cc.mss = c->mss;
}

int rudp_connect(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *peer,
                 const rudp_config *cfg, rudp_conn **out)
{
    if (!peer || (peer->family != 2 && peer->family != 10) || peer->port == 0)
        return -EINVAL;
    if (cfg && rudp_config_check(cfg, NULL))
        return -EINVAL;
    rudp_conn *c;
    now = rudp__clock(ctx, now);
    int err = rudp__conn_alloc(ctx, now, sock, peer, cfg ? cfg : &ctx->defaults, &c);
    if (err)
        return err;
    ctx->stats.conns_opened++;
    c->user_held = 1;
    rudp__conn_set_state(c, RUDP_SYN_SENT, "connect");
    /* First at RUDP_SLOW_CONNECT, to warn that nothing answers yet. */
    rudp__conn_arm(c, RUDP_T_GIVEUP, now + (c->cfg.connect_timeout > RUDP_SLOW_CONNECT
                                     ? RUDP_SLOW_CONNECT
                                     : c->cfg.connect_timeout));
    send_syn(c, now);
    *out = c;
    return 0;
}

int rudp__conn_accept_syn(rudp_conn *c, rudp_time now, const rudp_hdr *h)
{
    c->pkey.cid = h->scid;
    take_peer_params(c, h);
    if (rudp__table_add_peer(c->ctx, c) < 0)
        return -ENOMEM;
    rudp__conn_set_state(c, RUDP_SYN_RCVD, "valid cookie");
    rudp__queue(c, RUDP_Q_SYN);
    rudp__conn_arm(c, RUDP_T_GIVEUP, now + c->cfg.connect_timeout);
    send_synack(c, now);
    return 0;
}

void rudp__conn_dup_syn(rudp_conn *c, rudp_time now)
{
    switch (c->state) {
    case RUDP_SYN_RCVD:
        /* The client retransmitted: answer once per retransmission timeout. */
        if (now - c->hs_sent_time >= hs_timeout(c))
            send_synack(c, now);
        return;
    case RUDP_CLOSED:
    case RUDP_SYN_SENT:
    case RUDP_ESTABLISHED:
    case RUDP_FIN_WAIT_1:
    case RUDP_FIN_WAIT_2:
    case RUDP_CLOSING:
    case RUDP_TIME_WAIT:
    case RUDP_CLOSE_WAIT:
    case RUDP_LAST_ACK:
    case RUDP_STATE_COUNT:
        return; /* the client has our SYNACK; nothing to add */
    }
}

void rudp__conn_established(rudp_conn *c, rudp_time now, const char *why)
{
    rudp__conn_set_state(c, RUDP_ESTABLISHED, why);
    rudp__conn_disarm(c, RUDP_T_HANDSHAKE);
    rudp__conn_disarm(c, RUDP_T_GIVEUP);
    rudp__conn_keepalive_rearm(c, now);
    if (c->hs_sample_ok && now >= c->hs_sent_time)
        rudp_rtt_update(&c->rtt, now - c->hs_sent_time, 0, 0);
    if (c->shut_wr) {
        c->fin_off = c->snd_end;
        rudp__conn_set_state(c, RUDP_FIN_WAIT_1, "shutdown before established");
    }
}

void rudp__conn_input_handshake(rudp_conn *c, rudp_time now, const rudp_hdr *h)
{
    rudp_ctx *ctx = c->ctx;
    switch (c->state) {
    case RUDP_SYN_SENT:
        if (h->type == RUDP_PKT_RETRY) {
            if (h->token_len == 0 || c->retries >= RUDP_RETRY_MAX) {
                ctx->stats.protocol_errors++;
                return;
            }
            c->retries++;
            if (c->hs_sample_ok && now >= c->hs_sent_time && !c->rtt.has_sample)
                rudp_rtt_update(&c->rtt, now - c->hs_sent_time, 0, 0);
            memcpy(c->token, h->token, h->token_len);
            c->token_len = h->token_len;
            c->hs_count = 0; /* a new exchange: the next SYN's RTT counts */
            send_syn(c, now);
            return;
        }
        /* SYNACK */
        c->pkey.cid = h->scid;
        take_peer_params(c, h);
        if (rudp__table_add_peer(ctx, c) < 0) {
            rudp__conn_fail(c, now, -ENOMEM, RUDP_CAUSE_NO_MEMORY);
            return;
        }
        rudp__conn_established(c, now, "SYNACK");
        c->ping_pending = 1; /* step 5 confirms to the server */
        rudp__conn_event(c, RUDP_EV_ESTABLISHED | RUDP_EV_WRITABLE);
        rudp__conn_dirty(c);
        return;
    case RUDP_ESTABLISHED:
    case RUDP_FIN_WAIT_1:
    case RUDP_FIN_WAIT_2:
    case RUDP_CLOSING:
    case RUDP_CLOSE_WAIT:
    case RUDP_LAST_ACK:
    case RUDP_TIME_WAIT:
        /* A repeated SYNACK: our step 5 was lost. Confirm again. */
        if (h->type == RUDP_PKT_SYNACK && !c->is_server && h->scid == c->pkey.cid) {
            c->ping_pending = 1;
            rudp__conn_dirty(c);
            return;
        }
        ctx->stats.protocol_errors++;
        return;
    case RUDP_CLOSED:
    case RUDP_SYN_RCVD:
    case RUDP_STATE_COUNT:
        ctx->stats.protocol_errors++; /* illegal in these states */
        return;
    }
}

void rudp__conn_input_reset(rudp_conn *c, rudp_time now, int refused)
{
    switch (c->state) {
    case RUDP_SYN_SENT:
        rudp__conn_fail(c, now, refused ? -ECONNREFUSED : -ECONNRESET,
                        refused ? RUDP_CAUSE_REFUSED : RUDP_CAUSE_RESET);
        return;
    case RUDP_SYN_RCVD:
        /* Never accepted: nobody holds it to hear of this; go quietly, as
         * when the handshake times out. */
        c->released = 1;
        rudp__conn_set_state(c, RUDP_CLOSED, "reset before accept");
        return;
    case RUDP_ESTABLISHED:
    case RUDP_FIN_WAIT_1:
    case RUDP_FIN_WAIT_2:
    case RUDP_CLOSING:
    case RUDP_CLOSE_WAIT:
    case RUDP_LAST_ACK:
        rudp__conn_fail(c, now, -ECONNRESET, RUDP_CAUSE_RESET);
        return;
    case RUDP_TIME_WAIT:
        /* Our last ACK was lost and the peer forgot us: we are done anyway. */
        rudp__conn_set_state(c, RUDP_CLOSED, "reset in TIME_WAIT");
        return;
    case RUDP_CLOSED:
    case RUDP_STATE_COUNT:
        return;
    }
}

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

static size_t writable_threshold(const rudp_conn *c)
{
    uint64_t t = send_limit(c) / 4;
    if (c->cfg.notsent_lowat && t > c->cfg.notsent_lowat / 2)
        t = c->cfg.notsent_lowat / 2; /* the room TCP_NOTSENT_LOWAT leaves (tune.c) */
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
        rudp__conn_arm(c, RUDP_T_DRAIN, now + 3 * rudp_rtt_pto(&c->rtt, c->cfg.max_ack_delay));
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

void rudp__conn_on_acked(void *arg, const rudp_sent *s)
{
    rudp_conn *c = arg;
    if (s->stream_len) {
        uint64_t lo = s->stream_off, hi = s->stream_off + s->stream_len;
        if (rudp_seq_lt(c->snd_una, hi)) {
            rudp_ranges_add(&c->acked, rudp_seq_max(lo, c->snd_una), hi);
            rudp_ranges_remove(&c->retx, lo, hi);
            uint64_t una = rudp_ranges_contiguous_end(&c->acked, c->snd_una);
            if (una != c->snd_una) {
                c->snd_una = una;
                rudp_ranges_trim_below(&c->acked, una);
                rudp_ranges_trim_below(&c->retx, una);
                rudp_sbuf_advance(&c->sbuf, una, una == c->snd_end);
                rudp__conn_event(c, RUDP_EV_ACKED);
                if (c->want_writable && rudp__conn_send_space(c) >= writable_threshold(c)) {
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
    c->ctx->stats.pkts_retransmitted++;
    rudp__trace_lost(c, s);
    if (s->stream_len) {
        uint64_t lo = rudp_seq_max(s->stream_off, c->snd_una);
        uint64_t hi = s->stream_off + s->stream_len;
        if (rudp_seq_lt(lo, hi) && rudp_ranges_add(&c->retx, lo, hi) == 0) {
            /* Parts acknowledged through another packet need not go again. */
            for (uint32_t i = 0; i < c->acked.n; i++) {
                const rudp_range *a = &c->acked.r[i];
                if (a->lo >= hi)
                    break;
                if (a->hi > lo)
                    rudp_ranges_remove(&c->retx, a->lo, a->hi);
            }
        }
    }
    if ((s->flags & RUDP_SENT_FIN) && !c->fin_acked)
        c->fin_sent = 0;
    if (s->flags & RUDP_SENT_MAX_DATA)
        c->max_data_pending = 1;
    if (s->flags & RUDP_SENT_BLOCKED)
        c->blocked_at = 0;
    rudp__conn_dirty(c);
}

static void process_ack(rudp_conn *c, rudp_time now, const rudp_frame *f, int *bad)
{
    int n = rudp_recovery_on_ack(&c->rec, &c->cc, &c->rtt, now, f->u.ack.r, f->u.ack.n,
                                 RUDP_US(f->u.ack.delay_us), c->cfg.max_ack_delay, &c->rec_cb);
    if (n < 0) {
        *bad = 1;
        return;
    }
    if (c->state == RUDP_CLOSED)
        return; /* the ACK finished the connection: enter_closed() disarmed every timer */
    if (n > 0) {
        /* user_timeout counts from the last progress */
        if (c->rec.eliciting_in_flight)
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
        rudp__conn_arm(c, RUDP_T_DRAIN, now + 3 * rudp_rtt_pto(&c->rtt, c->cfg.max_ack_delay));
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
    uint64_t lo = rudp_seq_max(off, c->rcv_contig);
    if (rudp_seq_lt(lo, end)) {
        if (c->released && !rudp_ranges_covers(&c->rcv, lo, end))
            return -EPIPE; /* new data for a closed application: reset */
        if (!rudp__rx_may_store(c, lo, end))
            return -ENOBUFS;
        int err = rudp_sbuf_write(&c->rbuf, lo, f->u.stream.data + (lo - off), (size_t)(end - lo));
        if (err == 0)
            err = rudp_ranges_add(&c->rcv, lo, end);
        if (err)
            return -ENOBUFS;
        c->bytes_received += end - lo;
        uint64_t contig = rudp_ranges_contiguous_end(&c->rcv, c->rcv_contig);
        if (contig != c->rcv_contig) {
            c->rcv_contig = contig;
            rudp_ranges_trim_below(&c->rcv, contig);
            rudp__conn_event(c, RUDP_EV_READABLE);
        }
    }
    if (!c->fin_received && c->peer_fin != RUDP_FIN_NONE && c->rcv_contig == c->peer_fin)
        peer_fin_complete(c, now);
    return 0;
}

/* ---- DATA packets ---- */

/* Decodes every frame once without acting, so that a malformed packet is
 * dropped whole. Sets *eliciting, and *probing_only (nothing but PATH_*
 * frames and padding: RFC 9000 §9.1). */
static int validate_frames(const uint8_t *p, size_t len, int *eliciting, int *probing_only)
{
    rudp_frame f;
    *eliciting = 0;
    *probing_only = 1;
    while (len) {
        int n = rudp_wire_frame_decode(p, len, &f);
        if (n <= 0)
            return -EBADMSG;
        int path = f.type == RUDP_FRAME_PATH_CHALLENGE || f.type == RUDP_FRAME_PATH_RESPONSE;
        if (f.type != RUDP_FRAME_ACK && f.type != RUDP_FRAME_PADDING && !path)
            *eliciting = 1;
        if (f.type != RUDP_FRAME_PADDING && !path)
            *probing_only = 0;
        p += n;
        len -= (size_t)n;
    }
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
    int eliciting, probing_only;
    if (validate_frames(p, len, &eliciting, &probing_only) < 0) {
        ctx->stats.malformed++;
        return 0;
    }
    uint64_t pn = rudp__conn_rx_pn(c, h->pn);
    if (c->rx_any && (pn < c->rx_floor || rudp_ranges_contains(&c->rx_pns, pn))) {
        ctx->stats.dup_pkts++;
        c->ack_now = 1; /* our ACK may have been lost */
        rudp__conn_dirty(c);
        return 0;
    }
    int rx = RUDP_RX_TAKEN | (probing_only ? 0 : RUDP_RX_NON_PROBING) |
             (!c->rx_any || pn > c->rx_largest ? RUDP_RX_LARGEST : 0);
    if (c->state == RUDP_SYN_RCVD) {
        if (c->listener && c->listener->waiting) {
            /* The accept queue is full: as TCP drops the handshake's last
             * ACK, this packet is dropped unacknowledged and resent. */
            ctx->stats.handshakes_dropped++;
            return 0;
        }
        rudp__conn_established(c, now, "first DATA");
        c->accept_stamp = ctx->rx_stamp; /* rxstamp.c */
        rudp__queue(c, RUDP_Q_HAND); /* until the application's queue takes it */
        ctx->stats.conns_accepted++;
        rudp__conn_event(c, RUDP_EV_ACCEPT | RUDP_EV_WRITABLE);
    }

    rudp_frame f;
    int bad = 0;
    while (len) {
        int n = rudp_wire_frame_decode(p, len, &f);
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
        case RUDP_FRAME_RESET:
            ctx->stats.resets_received++;
            rudp__conn_fail(c, now, -ECONNRESET, RUDP_CAUSE_RESET);
            return 0;
        case RUDP_FRAME_PATH_CHALLENGE:
            rudp__path_on_challenge(c, f.u.path_data);
            break;
        case RUDP_FRAME_PATH_RESPONSE:
            rudp__path_on_response(c, now, f.u.path_data);
            break;
        case RUDP_FRAME_STREAM: {
            int err = stream_input(c, now, &f);
            if (err == -EPIPE) {
                rudp__conn_abort_now(c, now);
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
    if (rudp_ranges_add(&c->rx_pns, pn, pn + 1) == 0 && c->rx_pns.n > RUDP_RX_RANGES_KEPT) {
        /* Below the ranges kept, a packet number cannot be told from one
         * seen: taken as a duplicate (a replay, or too late to matter:
         * what it carried is resent by now). */
        c->rx_floor = c->rx_pns.r[c->rx_pns.n - RUDP_RX_RANGES_KEPT].lo;
        rudp_ranges_keep_highest(&c->rx_pns, RUDP_RX_RANGES_KEPT);
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
        c->rx_eliciting++;
        /* ACK_NOW means "ack soon": within RUDP_ACK_SOON, so that an
         * application's reply (a request/response exchange) carries the ACK
         * instead of a datagram of its own. */
        rudp_time delay = (h->flags & RUDP_PKTF_ACK_NOW) ? rudp_ack_soon_delay(c->cfg.max_ack_delay)
                                                         : c->cfg.max_ack_delay;
        if (c->rx_eliciting >= 2)
            c->ack_now = 1;
        else if (rudp_timer_later_than(&c->timers[RUDP_T_ACK], now + delay))
            rudp__conn_arm(c, RUDP_T_ACK, now + delay);
    }
    if (now - c->last_rx > c->longest_silence)
        c->longest_silence = now - c->last_rx;
    c->last_rx = now;
    c->silent_told = 0;
    if (c->state != RUDP_TIME_WAIT)
        rudp__conn_keepalive_rearm(c, now);
    rudp__conn_dirty(c);
    return rx;
}

/* ---- building packets ---- */

static rudp_time pace_interval(uint64_t bytes, uint64_t rate)
{
    if (!rate)
        return 0;
    return (rudp_time)((unsigned __int128)bytes * 1000000000ull / rate);
}

/* Writes an ACK frame of what we received; returns bytes or <= 0. */
static int write_ack(rudp_conn *c, rudp_time now, uint8_t *p, size_t room)
{
    rudp_ack_range r[RUDP_RX_RANGES_KEPT];
    size_t n = 0;
    for (uint32_t i = c->rx_pns.n; i-- > 0 && n < RUDP_RX_RANGES_KEPT;) {
        r[n].lo = c->rx_pns.r[i].lo;
        r[n].hi = c->rx_pns.r[i].hi - 1;
        n++;
    }
    if (!n)
        return 0;
    uint64_t delay_us = now > c->rx_largest_time ? (now - c->rx_largest_time) / 1000 : 0;
    size_t written;
    return rudp_wire_ack_encode(p, room, r, n, delay_us, &written);
}

/* Sends a DATA packet of len bytes in buf (room for the AEAD tag after
 * them), whose full packet number is pn: traced as it is, sealed if the
 * connection is keyed. Returns the datagram's length. */
static size_t send_data_to(rudp_conn *c, const rudp_addr *to, uint64_t pn, uint8_t *buf,
                           size_t len)
{
    rudp__trace_packet(c, RUDP_TRACE_PACKET_SENT, buf, len);
    if (c->keyed)
        len = rudp__keyed_seal(c, pn, buf, len);
    rudp__send(c->ctx, c->sock, to, c->has_local ? &c->local : NULL, c->send_tag, buf, len);
    rudp__path_sent(c, to, len);
    return len;
}

size_t rudp__conn_send_data(rudp_conn *c, uint64_t pn, uint8_t *buf, size_t len)
{
    return send_data_to(c, &c->pkey.addr, pn, buf, len);
}

/* Writes the header of c's next DATA packet; *pn its full number. */
static int data_header(rudp_conn *c, uint8_t *buf, size_t cap, uint64_t *pn)
{
    rudp_hdr h;
    memset(&h, 0, sizeof h);
    h.type = RUDP_PKT_DATA;
    h.dcid = c->pkey.cid;
    *pn = rudp_recovery_next_pn(&c->rec);
    h.pn = rudp_pn_truncate(*pn);
    return rudp_wire_hdr_encode(buf, cap, &h);
}

int rudp__conn_send_control(rudp_conn *c, rudp_time now, const rudp_addr *to,
                            const uint8_t *frames, size_t n)
{
    if (rudp_recovery_reserve(&c->rec) < 0)
        return -ENOMEM;
    uint8_t *buf = c->ctx->pkt;
    size_t cap = c->mss - rudp__seal_overhead(c->keyed);
    uint64_t pn;
    int hl = data_header(c, buf, cap, &pn);
    if (hl < 0 || cap - (size_t)hl < n)
        return -ENOBUFS;
    memcpy(buf + hl, frames, n);
    rudp_sent s;
    memset(&s, 0, sizeof s);
    s.pn = pn;
    s.size = (uint32_t)send_data_to(c, to, pn, buf, (size_t)hl + n);
    rudp_recovery_on_sent(&c->rec, &c->cc, now, &s);
    c->ctx->stats.pkts_sent++;
    return 0;
}

/* Builds and sends one DATA packet. Returns 1 if one was sent, 0 if there
 * was nothing to send (or the pacer/window holds it back). */
static int send_one(rudp_conn *c, rudp_time now)
{
    rudp_ctx *ctx = c->ctx;
    int probe = c->probes > 0;
    int stream = rudp__conn_have_stream_to_send(c);
    int cwnd_ok = probe || c->rec.bytes_in_flight < c->cc.cwnd;
    int pace_ok = probe || c->pace_time <= now;
    int send_stream = stream && cwnd_ok && pace_ok;
    int control = c->max_data_pending || c->blocked_pending || c->ping_pending || (probe && !stream);
    int want_ack = c->rx_any && (c->ack_now || (c->rx_unacked && (send_stream || control)));

    if (stream && cwnd_ok && !pace_ok)
        rudp__conn_arm(c, RUDP_T_PACE, c->pace_time);
    if (!send_stream && !control && !want_ack)
        return 0;
    if (!rudp__path_may_send(c, c->mss))
        return 0; /* an address not validated yet: 3x what came from it */
    if (rudp_recovery_reserve(&c->rec) < 0)
        return 0;

    uint8_t *buf = ctx->pkt;
    size_t cap = c->mss - rudp__seal_overhead(c->keyed);
    uint64_t pn;
    int hl = data_header(c, buf, cap, &pn);
    if (hl < 0)
        return 0;
    size_t off = (size_t)hl;
    rudp_sent s;
    memset(&s, 0, sizeof s);
    s.pn = pn;
    int n;

    if (want_ack) {
        n = write_ack(c, now, buf + off, cap - off - 32);
        if (n > 0) {
            off += (size_t)n;
            c->ack_now = 0;
            c->rx_unacked = 0;
            c->rx_eliciting = 0;
            rudp__conn_disarm(c, RUDP_T_ACK);
        }
    }
    if (c->max_data_pending) {
        uint64_t max = c->rcv_read + c->rwnd;
        n = rudp_wire_max_data_encode(buf + off, cap - off, max);
        if (n > 0) {
            off += (size_t)n;
            c->max_data_sent = max;
            c->max_data_pending = 0;
            s.flags |= RUDP_SENT_MAX_DATA | RUDP_SENT_ACK_ELICITING;
        }
    }
    if (c->blocked_pending) {
        n = rudp_wire_blocked_encode(buf + off, cap - off, c->peer_max_data);
        if (n > 0) {
            off += (size_t)n;
            c->blocked_pending = 0;
            s.flags |= RUDP_SENT_BLOCKED | RUDP_SENT_ACK_ELICITING;
        }
    }
    n = rudp__urg_write(c, buf + off, cap - off, &s.flags);
    off += (size_t)n;
    if (c->ping_pending || (probe && !stream)) {
        n = rudp_wire_ping_encode(buf + off, cap - off);
        if (n > 0) {
            off += (size_t)n;
            c->ping_pending = 0;
            s.flags |= RUDP_SENT_ACK_ELICITING;
        }
    }
    if (send_stream) {
        uint64_t lo, hi;
        int fin = 0;
        size_t hdr = rudp_wire_stream_hdr_len(c->snd_nxt, 0, 0);
        if (!rudp_ranges_empty(&c->retx))
            hdr = rudp_wire_stream_hdr_len(c->retx.r[0].lo, 0, 0);
        size_t room = cap - off > hdr ? cap - off - hdr : 0;
        if (!rudp_ranges_empty(&c->retx)) {
            lo = c->retx.r[0].lo;
            hi = rudp_seq_min(c->retx.r[0].hi, lo + room);
            fin = c->fin_off != RUDP_FIN_NONE && hi == c->fin_off && !c->fin_acked;
            rudp_ranges_remove(&c->retx, lo, hi);
            c->bytes_retx += hi - lo;
            ctx->stats.bytes_retransmitted += hi - lo;
        } else {
            lo = c->snd_nxt;
            hi = rudp_seq_min(rudp_seq_min(c->snd_end, c->peer_max_data), lo + room);
            fin = c->fin_off != RUDP_FIN_NONE && hi == c->fin_off;
            c->snd_nxt = hi;
            rudp__tune_sent(c);
            c->bytes_sent += hi - lo;
            ctx->stats.stream_bytes_sent += hi - lo;
        }
        if (hi > lo || fin) {
            n = rudp_wire_stream_hdr_encode(buf + off, cap - off, lo, hi - lo, fin, 0);
            assert(n > 0);
            off += (size_t)n;
            rudp_sbuf_read(&c->sbuf, lo, buf + off, (size_t)(hi - lo));
            off += (size_t)(hi - lo);
            s.stream_off = lo;
            s.stream_len = (uint32_t)(hi - lo);
            s.flags |= RUDP_SENT_ACK_ELICITING;
            if (fin) {
                s.flags |= RUDP_SENT_FIN;
                c->fin_sent = 1;
            }
        }
    }
    if (off == (size_t)hl)
        return 0;

    if (s.flags & RUDP_SENT_ACK_ELICITING) {
        s.flags |= RUDP_SENT_IN_FLIGHT;
        /* The last packet before we run dry, and probes, ask for an
         * immediate ACK: a lost tail then costs one RTT-sized probe
         * timeout, not max_ack_delay more. */
        if (probe || !rudp__conn_have_stream_to_send(c)) {
            s.flags |= RUDP_SENT_ACK_NOW;
            buf[3] = (uint8_t)(buf[3] | (RUDP_PKTF_ACK_NOW << 4));
        }
    }
    int nothing_in_flight = c->rec.eliciting_in_flight == 0;
    s.size = (uint32_t)rudp__conn_send_data(c, pn, buf, off);
    rudp_recovery_on_sent(&c->rec, &c->cc, now, &s);
    ctx->stats.pkts_sent++;
    if (s.flags & RUDP_SENT_IN_FLIGHT) {
        uint64_t rate = rudp__conn_pacing_rate(c);
        rudp_time burst = pace_interval(pace_burst(c, rate), rate);
        rudp_time base = c->pace_time;
        if (now > burst && base < now - burst)
            base = now - burst;
        c->pace_time = base + pace_interval(s.size, rate);
        /* Never hold the next packet longer than a round trip: a pacing
         * rate the controller brought near zero (BBR after losses of 64 KB
         * loopback datagrams) put it 135 s ahead, and the connection sat
         * idle with data to resend (t_asyncio_echo's stall, seen since
         * 8d193eb). At most one packet per RTT is still slower than the
         * smallest window. */
        rudp_time most = c->rtt.smoothed > RUDP_MS(1) ? c->rtt.smoothed : RUDP_MS(1);
        if (c->pace_time > now + most)
            c->pace_time = now + most;
        if (nothing_in_flight && !rudp_timer_armed(&c->timers[RUDP_T_GIVEUP]))
            rudp__conn_arm(c, RUDP_T_GIVEUP, now + c->cfg.user_timeout);
    }
    if (probe && (s.flags & RUDP_SENT_ACK_ELICITING))
        c->probes--;
    return 1;
}

void rudp__conn_flush(rudp_conn *c, rudp_time now)
{
    if (!rudp__conn_sending_state(c->state))
        return;
    rudp__path_flush(c, now);
    /* Flow control: tell the peer once per limit that we are blocked. */
    if (rudp_seq_lt(c->snd_nxt, c->snd_end) && c->snd_nxt >= c->peer_max_data &&
        c->blocked_at != c->peer_max_data) {
        c->blocked_at = c->peer_max_data;
        c->blocked_pending = 1;
    }
    while (send_one(c, now))
        ;
    rudp__cork_arm(c, now);
    /* Not limited by the window: the controller must not grow it, and
     * delivery-rate samples from now on are app-limited. */
    int cwnd_limited = c->rec.bytes_in_flight >= c->cc.cwnd;
    c->cc.app_limited = !cwnd_limited && !rudp__conn_have_stream_to_send(c);
    if (c->cc.app_limited)
        rudp_recovery_set_app_limited(&c->rec);
    rudp__conn_update_loss_timer(c);
    rudp__trace_metrics(c);
}

/* ---- timers ---- */

/* A probe carries the oldest unacknowledged data rather than a bare PING:
 * if that is what was lost, the probe repairs it. */
static void queue_oldest(rudp_conn *c)
{
    if (!rudp_ranges_empty(&c->retx) || rudp__conn_have_stream_to_send(c))
        return;
    const rudp_sent *s = rudp_recovery_oldest_stream(&c->rec);
    if (s) {
        uint64_t lo = rudp_seq_max(s->stream_off, c->snd_una);
        uint64_t hi = s->stream_off + s->stream_len;
        if (rudp_seq_lt(lo, hi))
            rudp_ranges_add(&c->retx, lo, hi);
        if ((s->flags & RUDP_SENT_FIN) && !c->fin_acked)
            c->fin_sent = 0;
    }
}

static void start_probe(rudp_conn *c)
{
    c->probes = c->rec.pto_count > 1 ? 2 : 1;
    c->ctx->stats.pto_count++;
    rudp__log(c->ctx, RUDP_LOG_DEBUG,
              "conn %016llx: probe timeout %u (srtt %llu us, rttvar %llu us, min %llu us, "
              "%u eliciting in flight, last sent %llu us ago%s)",
              (unsigned long long)c->cid, c->rec.pto_count,
              (unsigned long long)(c->rtt.smoothed / 1000), (unsigned long long)(c->rtt.var / 1000),
              (unsigned long long)(c->rtt.min / 1000), c->rec.eliciting_in_flight,
              (unsigned long long)((c->ctx->now - c->rec.last_eliciting_sent) / 1000),
              c->rec.last_eliciting_ack_now ? ", asked for an ACK now" : "");
    queue_oldest(c);
    /* A path silent for a few probe timeouts and at least RUDP_SILENT_MIN
     * (a peer busy for a moment, a process being handed to a keeper, is
     * not a lost path), then again every RUDP_SILENT_EVERY more. The
     * silence counts from the later of the last packet heard and the
     * first probe timeout of this run: a connection idle for minutes that
     * sends again has not been waiting for minutes, and a busy peer (an
     * engine serving thousands of connections) that answers its first
     * bytes a few hundred ms late must not make it move (issue 30). */
    if (c->rec.pto_count <= 1 || c->waiting_since < c->last_rx)
        c->waiting_since = c->ctx->now;
    if (!c->is_server && c->rec.pto_count >= RUDP_SILENT_PTOS &&
        c->ctx->now - c->waiting_since >= RUDP_SILENT_MIN &&
        (!c->silent_told || c->rec.pto_count >= c->silent_told + RUDP_SILENT_EVERY)) {
        c->silent_told = c->rec.pto_count;
        rudp__conn_event(c, RUDP_EV_SILENT);
    }
    rudp__conn_dirty(c);
}

void rudp__conn_probe_now(rudp_conn *c)
{
    c->probes = 1;
    if (c->rec.eliciting_in_flight == 0)
        c->ping_pending = 1;
    queue_oldest(c);
    rudp__conn_dirty(c);
}

void rudp__conn_on_timer(rudp_conn *c, int kind, rudp_time now)
{
    switch ((enum rudp_timer_kind)kind) {
    case RUDP_T_HANDSHAKE:
        if (c->state == RUDP_SYN_SENT) {
            /* Unanswered: our address may have changed (a NAT re-mapped
             * it) and the token with it, so RETRYs are followed again; a
             * loop of RETRYs still costs one SYN per retransmission time. */
            c->retries = 0;
            send_syn(c, now);
        }
        else if (c->state == RUDP_SYN_RCVD)
            send_synack(c, now);
        return;
    case RUDP_T_GIVEUP:
        if (c->state == RUDP_SYN_RCVD) {
            rudp__conn_set_state(c, RUDP_CLOSED, "handshake never completed");
            rudp__conn_kill(c); /* nobody holds it */
            return;
        }
        if (c->state == RUDP_SYN_SENT && !c->slow_warned &&
            now - c->hs_start < c->cfg.connect_timeout) {
            c->slow_warned = 1;
            rudp__report_slow_connect(c);
            rudp__conn_arm(c, RUDP_T_GIVEUP, c->hs_start + c->cfg.connect_timeout);
            return;
        }
        rudp__conn_fail(c, now, -ETIMEDOUT,
                        c->state != RUDP_SYN_SENT ? RUDP_CAUSE_USER_TIMEOUT
                        : c->keyed                ? RUDP_CAUSE_NO_AUTH_ANSWER
                                                  : RUDP_CAUSE_HANDSHAKE_TIMEOUT);
        return;
    case RUDP_T_LOSS:
        switch (rudp_recovery_on_timeout(&c->rec, &c->cc, &c->rtt, now, c->cfg.max_ack_delay,
                                         &c->rec_cb)) {
        case RUDP_TIMEOUT_PTO:
            start_probe(c);
            break;
        case RUDP_TIMEOUT_LOSS:
            rudp__conn_dirty(c);
            break;
        default:
            break;
        }
        rudp__conn_update_loss_timer(c);
        return;
    case RUDP_T_ACK:
        c->ack_now = 1;
        rudp__conn_dirty(c);
        return;
    case RUDP_T_PACE:
        rudp__conn_dirty(c);
        return;
    case RUDP_T_KEEPALIVE:
        if (rudp__conn_sending_state(c->state) && c->state != RUDP_TIME_WAIT) {
            if (c->rec.eliciting_in_flight == 0)
                c->ping_pending = 1;
            rudp__conn_dirty(c);
            rudp__conn_arm(c, RUDP_T_KEEPALIVE, now + c->cfg.keepalive);
        }
        return;
    case RUDP_T_IDLE:
        rudp__conn_fail(c, now, -ETIMEDOUT, RUDP_CAUSE_IDLE_TIMEOUT);
        return;
    case RUDP_T_DRAIN:
        if (c->state == RUDP_TIME_WAIT)
            rudp__conn_set_state(c, RUDP_CLOSED, "drained");
        return;
    case RUDP_T_LINGER:
        rudp__conn_abort_now(c, now);
        return;
    case RUDP_T_PATH:
        rudp__path_on_timer(c, now);
        return;
    case RUDP_T_CORK:
        rudp__cork_expired(c);
        return;
    case RUDP_T_COUNT:
        return;
    }
}
