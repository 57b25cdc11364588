/*
 * conn.c: the connection state machine.
 *
 * Handshake (client C, server S), one round trip:
 *   1. C -> S  SYN (scid = C's ID, padded to RUDP_MIN_SYN_SIZE)   S: SYN_RCVD
 *   2. S -> C  SYNACK (S's ID, window)                  C: ESTABLISHED
 *   3. C -> S  first DATA packet (a PING if no data)    S: ESTABLISHED
 * The server does not count step 3's PING towards an ACK of its own
 * (conn_input.c): a request right behind it, answered within RUDP_ACK_SOON,
 * is acknowledged by the answer alone, one datagram per connection fewer,
 * as TCP's third ACK is not answered.
 * From a loopback address, with rudp_listener_set_early_accept, S reports
 * the connection (RUDP_EV_ACCEPT) at step 1 and holds the SYNACK until
 * rudp_conn_accepted: the client is established only once the caller's
 * accept queue holds the connection, as Linux TCP on loopback has it.
 * Under pressure (ctx.c, budget.c: half the backlog in the handshake or a
 * full accept queue, half a source's share, half the memory limit) or with
 * cfg.retry RUDP_RETRY_ALWAYS, S keeps no state before the client proves
 * its address, and step 1 becomes three:
 *   1a. C -> S  SYN                                     S: nothing kept
 *   1b. S -> C  RETRY (cookie)                          stateless
 *   1c. C -> S  SYN (the cookie echoed)                 S: SYN_RCVD
 * Until the client's address is validated (a cookie, or its first DATA,
 * which carries the ID only our SYNACK told: RFC 9000 §8.1), S sends it at
 * most 3x the bytes it received from it (its SYNs): SYNACK retransmissions
 * stop at that budget and the GIVEUP timer ends the connection, so a SYN
 * from a spoofed address never makes us send more than it cost.
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
 * This file holds the state machine: state transitions, set-up and
 * teardown, the handshake, the timers. What comes in (DATA packets,
 * their frames, ACKs of what we sent, the receive stream) is
 * conn_input.c; what goes out (packet building, pacing, flush) is
 * conn_output.c; the application's calls are conn_app.c.
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
    rudp__log(c->ctx, RUDP_LOG_DEBUG, "conn %016llx %s -> %s (%s)",
              (unsigned long long)rudp_conn_id(c), rudp_state_name(c->state),
              rudp_state_name(to), why);
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
    const rudp_mem *mem = &ctx->allocator;
    rudp_conn *c = rudp__calloc(mem, 1, sizeof *c);
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
        rudp__timer_init(&c->timers[k], (uint8_t)k);
    rudp__sbuf_init(&c->sbuf, mem, 0, cfg->send_buffer);
    rudp__sbuf_init(&c->rbuf, mem, 0, cfg->recv_window);
    c->rbuf.acct = &ctx->mem; /* what a peer sends counts in the budget */
    c->sbuf.pool = c->rbuf.pool = &ctx->chunks;
    /* Their spans last until the next call on the connection (rudp.h):
     * first bytes may go to a small block (sbuf.h) */
    c->sbuf.small_ok = c->rbuf.small_ok = 1;
    rudp__ranges_init(&c->acked, mem, RUDP_STREAM_RANGES_MAX);
    rudp__ranges_init(&c->retx, mem, RUDP_STREAM_RANGES_MAX);
    rudp__ranges_init(&c->rcv, mem, RUDP_STREAM_RANGES_MAX);
    rudp__ranges_init(&c->rx_pns, mem, 2 * RUDP_RX_RANGES_KEPT);
    rudp__recovery_init(&c->rec, mem);
    c->rec_cb.acked = rudp__conn_on_acked;
    c->rec_cb.lost = rudp__conn_on_lost;
    c->rec_cb.arg = c;
    rudp__rtt_init(&c->rtt, cfg->initial_rtt);
    rudp__cc_seed(&c->cc, rudp__random64(ctx), rudp__random64(ctx));
    rudp__cc_setup(&c->cc, cfg->cc, c->mss, now);
    /* Like TCP's receive-buffer auto-tuning: start small, grow only while
     * the application reads as fast as data comes (see after_read), so a
     * stalled reader holds the sender to a small window. */
    c->rwnd = cfg->recv_window < RUDP_RWND_INITIAL ? cfg->recv_window : RUDP_RWND_INITIAL;
    c->rwnd_start = now;
    c->max_data_sent = c->rwnd;
    c->cid = rudp__new_cid(ctx);
    if (rudp__conn_keyed_new(c) < 0 || rudp__table_add_cid(ctx, c) < 0) {
        rudp__conn_keyed_free(c);
        rudp__free(mem, c);
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
    rudp__sbuf_free(&c->sbuf);
    rudp__sbuf_free(&c->rbuf);
    rudp__ranges_free(&c->acked);
    rudp__ranges_free(&c->retx);
    rudp__ranges_free(&c->rcv);
    rudp__ranges_free(&c->rx_pns);
    rudp__recovery_free(&c->rec);
    rudp__conn_keyed_free(c);
    int held = c->user_held;
    rudp__free(&ctx->allocator, c);
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
    rudp_time pto = rudp__rtt_pto(&c->rtt, 0), wait = pto << shift;
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
    h.flags = c->keyed ? RUDP_PKTF_KEYED : 0; /* an unkeyed server says so (keystate.c) */
    h.flags |= RUDP_PKTF_ADDRS; /* SERVER_ADDR is understood here (standby.c) */
    if (c->cfg.pmtud && !rudp__addr_loopback(&c->pkey.addr)) {
        /* our ceiling stays ours (c->mss); the offer is one an older
         * server may send at unprobed (wire.h) */
        h.flags |= RUDP_PKTF_PMTUD;
        if (h.max_datagram > RUDP_LEGACY_DATAGRAM)
            h.max_datagram = RUDP_LEGACY_DATAGRAM;
    }
    uint8_t *buf = c->ctx->pkt;
    int n = rudp__wire_hdr_encode(buf, RUDP_MIN_SYN_SIZE, &h);
    if (n < 0)
        return;
    c->zrtt_hold = 0;
    if (c->keyed) {
        size_t at = (size_t)n + RUDP_KEYED_EARLY_AT;
        size_t early = rudp__zrtt_syn_frames(c, buf + at, RUDP_MIN_SYN_SIZE - at -
                                                              RUDP_KEYED_EARLY_OVERHEAD);
        rudp__keyed_syn_seal(c, buf, (size_t)n, early);
    } else {
        /* a returning client's first bytes, in place of padding (zrtt.c) */
        n += (int)rudp__zrtt_syn_frames(c, buf + n, RUDP_MIN_SYN_SIZE - (size_t)n);
        memset(buf + n, 0, RUDP_MIN_SYN_SIZE - (size_t)n); /* PADDING frames */
    }
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

/* The SYNACK, to the peer (to NULL) or to `to`: the same client's SYN from
 * another port of its address (ctx.c, zrtt_other_port), where it goes once,
 * on no timer, and moves nothing. */
void rudp__conn_synack_to(rudp_conn *c, rudp_time now, const rudp_addr *to)
{
    rudp_hdr h;
    memset(&h, 0, sizeof h);
    h.type = RUDP_PKT_SYNACK;
    h.flags = c->zrtt_taken ? RUDP_PKTF_ZRTT : 0; /* every copy says the same */
    h.dcid = c->pkey.cid;
    h.pn = c->hs_count;
    h.scid = c->cid;
    h.max_data = c->rwnd;
    h.max_datagram = c->cfg.max_datagram;
    uint8_t buf[160]; /* header (64 at most), keyed: 33, a reset token and its tag (32), MAC */
    int n = rudp__wire_hdr_encode(buf, 64, &h);
    if (n < 0)
        return;
    if (c->keyed)
        n = (int)rudp__keyed_synack_seal(c, buf, (size_t)n);
    if (c->unvalidated) {
        /* RFC 9000 §8.1: 3x what the address sent. No timer: a SYN again
         * from the client adds to the budget (rudp__conn_dup_syn), else
         * GIVEUP ends the connection. */
        if ((uint64_t)c->hs_bytes_out + (uint64_t)n >
            (uint64_t)RUDP_PATH_AMPLIFICATION * c->hs_bytes_in) {
            c->ctx->stats.synacks_capped++;
            rudp__conn_disarm(c, RUDP_T_HANDSHAKE);
            return;
        }
        c->hs_bytes_out += (uint32_t)n;
    }
    c->hs_count++;
    if (to) {
        rudp__trace_packet(c, RUDP_TRACE_PACKET_SENT, buf, (size_t)n);
        rudp__send(c->ctx, c->sock, to, c->has_local ? &c->local : NULL, c->send_tag, buf,
                   (size_t)n);
        return;
    }
    c->hs_sample_ok = c->hs_count == 1;
    c->hs_sent_time = now;
    rudp__conn_send(c, buf, (size_t)n);
    rudp__conn_arm(c, RUDP_T_HANDSHAKE, now + hs_timeout(c));
}

static void take_peer_params(rudp_conn *c, const rudp_hdr *h)
{
    c->peer_max_data = h->max_data;
    if (h->type == RUDP_PKT_SYN)
        c->peer_addrs = (h->flags & RUDP_PKTF_ADDRS) != 0; /* standby.c */
    uint64_t md = h->max_datagram;
    /* A client that searches the path MTU offers RUDP_LEGACY_DATAGRAM at
     * most, for older servers; a server that searches too probes up to
     * its own ceiling (wire.h). Below that the offer is the client's own
     * ceiling. */
    int legacy = h->type == RUDP_PKT_SYN && (h->flags & RUDP_PKTF_PMTUD) && c->cfg.pmtud &&
                 md >= RUDP_LEGACY_DATAGRAM;
    if (md >= RUDP_MIN_SYN_SIZE && md < c->mss && !legacy)
        c->mss = (uint32_t)md;
    c->cc.mss = c->mss;
}

static int connect_with(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *peer,
                        const rudp_config *cfg, const uint8_t *token, size_t token_len,
                        rudp_time hold, rudp_conn **out);

int rudp_connect(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *peer,
                 const rudp_config *cfg, rudp_conn **out)
{
    return connect_with(ctx, now, sock, peer, cfg, NULL, 0, 0, out);
}

int rudp_connect_token(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *peer,
                       const rudp_config *cfg, const uint8_t *token, size_t token_len,
                       rudp_time hold, rudp_conn **out)
{
    if (token_len > RUDP_TOKEN_MAX || (token_len && !token))
        return -EINVAL;
    return connect_with(ctx, now, sock, peer, cfg, token, token_len, hold, out);
}

void rudp_conn_syn_release(rudp_conn *c, rudp_time now)
{
    now = rudp__clock(c->ctx, now);
    if (c->state == RUDP_SYN_SENT && c->zrtt_hold)
        send_syn(c, now);
}

static int connect_with(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *peer,
                        const rudp_config *cfg, const uint8_t *token, size_t token_len,
                        rudp_time hold, rudp_conn **out)
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
    if (token_len) {
        memcpy(c->token, token, token_len);
        c->token_len = (uint8_t)token_len;
    }
    if (hold) {
        /* TCP_FASTOPEN_CONNECT: the SYN waits for the first write (conn_app.c)
         * or the handshake timer, whichever comes first */
        c->zrtt_hold = 1;
        rudp__conn_arm(c, RUDP_T_HANDSHAKE, now + hold);
    } else {
        send_syn(c, now);
    }
    *out = c;
    return 0;
}

int rudp__conn_accept_syn(rudp_conn *c, rudp_time now, const rudp_hdr *h, size_t len,
                          int validated, int hold)
{
    c->pkey.cid = h->scid;
    take_peer_params(c, h);
    if (rudp__table_add_peer(c->ctx, c) < 0)
        return -ENOMEM;
    c->unvalidated = !validated;
    c->hs_bytes_in = (uint32_t)len;
    c->syn_stamp = c->ctx->rx_stamp; /* rxstamp.c */
    rudp__conn_set_state(c, RUDP_SYN_RCVD, validated ? "valid cookie" : "SYN");
    rudp__queue(c, RUDP_Q_SYN);
    rudp__conn_arm(c, RUDP_T_GIVEUP, now + c->cfg.connect_timeout);
    if (hold) {
        c->synack_held = 1;
        rudp__conn_arm(c, RUDP_T_HANDSHAKE, now + RUDP_HELD_NOTICE);
    } else {
        rudp__conn_synack_to(c, now, NULL);
    }
    return 0;
}

void rudp_conn_accepted(rudp_conn *c, rudp_time now)
{
    now = rudp__clock(c->ctx, now);
    if (!c->synack_held)
        return;
    c->synack_held = 0;
    if (c->state == RUDP_SYN_RCVD)
        rudp__conn_synack_to(c, now, NULL);
}

void rudp__conn_accept_early(rudp_conn *c)
{
    c->accept_early = 1;
    c->accept_stamp = c->syn_stamp; /* rxstamp.c: its place in the accept order */
    rudp__queue(c, RUDP_Q_HAND);    /* until the application's queue takes it */
    rudp__conn_event(c, RUDP_EV_ACCEPT);
}

void rudp__conn_dup_syn(rudp_conn *c, rudp_time now, size_t len, int validated)
{
    if (c->zrtt_unconfirmed) {
        /* Established by a 0-RTT SYN and nothing heard since: our SYNACK
         * may be lost, and no timer of ours repeats it (zrtt.c). */
        if (now - c->hs_sent_time >= hs_timeout(c))
            rudp__conn_synack_to(c, now, NULL);
        return;
    }
    switch (c->state) {
    case RUDP_SYN_RCVD:
        if (validated)
            c->unvalidated = 0;
        else if (c->hs_bytes_in < UINT32_MAX - len)
            c->hs_bytes_in += (uint32_t)len;
        /* The client retransmitted: answer once per retransmission timeout
         * (not while the application's queue has no room for it: as Linux
         * drops a SYN while the accept queue is full). */
        if (!c->synack_held && now - c->hs_sent_time >= hs_timeout(c))
            rudp__conn_synack_to(c, now, NULL);
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
    c->unvalidated = 0; /* the client's first DATA: it has our SYNACK */
    rudp__conn_disarm(c, RUDP_T_HANDSHAKE);
    rudp__conn_disarm(c, RUDP_T_GIVEUP);
    rudp__conn_keepalive_rearm(c, now);
    if (c->hs_sample_ok && now >= c->hs_sent_time) {
        rudp__rtt_update(&c->rtt, now - c->hs_sent_time, 0, 0);
        rudp__late_note(c->ctx, &c->pkey.addr, now - c->hs_sent_time, 0, now);
    }
    rudp__pmtu_start(c, now);
    if (c->shut_wr) {
        c->fin_off = c->snd_end;
        rudp__conn_set_state(c, RUDP_FIN_WAIT_1, "shutdown before established");
    }
}

void rudp__zrtt_established(rudp_conn *c, rudp_time now)
{
    rudp_ctx *ctx = c->ctx;
    const rudp_mem *table_mem = &ctx->allocator;
    c->hs_sample_ok = 0; /* the SYNACK just left: no round trip to time */
    rudp__conn_established(c, now, "0-RTT token");
    c->zrtt_unconfirmed = 1;
    /* found by its token's ID while unconfirmed (ctx.c, zrtt_other_port);
     * without memory for the table, only that protection is lost */
    HASH_ADD(hh_zrtt, ctx->by_zrtt, zrtt_id, sizeof c->zrtt_id, c);
    c->in_zrtt_table = c->hh_zrtt.tbl != NULL;
    c->accept_stamp = ctx->rx_stamp; /* rxstamp.c */
    rudp__queue(c, RUDP_Q_HAND);     /* as after the first DATA (conn_input.c) */
    ctx->stats.conns_accepted++;
    rudp__conn_event(c, RUDP_EV_ACCEPT | RUDP_EV_WRITABLE | RUDP_EV_READABLE);
    /* The next token at once, right behind the SYNACK: the address is
     * proven, and a client whose request is answered in this flight (a
     * fetch) is gone before it would send the DATA that earns a token
     * otherwise (conn_input.c), so every other visit of it went without. */
    if (c->token_due)
        rudp__zrtt_issue(c, now);
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
            c->retried = 1;
            /* a held SYN's RETRY came when the server chose, not a round
             * trip after the SYN */
            if (c->hs_sample_ok && now >= c->hs_sent_time && !c->rtt.has_sample &&
                !(h->flags & RUDP_PKTF_HELD))
                rudp__rtt_update(&c->rtt, now - c->hs_sent_time, 0, 0);
            memcpy(c->token, h->token, h->token_len);
            c->token_len = h->token_len;
            if (c->zrtt_len) { /* the cookie's SYN carries no data: sent after */
                ctx->stats.zero_rtt_resent++;
                c->zrtt_len = 0;
            }
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
        rudp__zrtt_on_synack(c, h->flags);
        c->ping_pending = 1; /* step 3 confirms to the server */
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
        if (c->user_held) {
            /* Reported already (early accept, taken by the caller): its
             * holder is told, and releases it, as at RUDP_T_GIVEUP. */
            rudp__conn_fail(c, now, -ECONNRESET, RUDP_CAUSE_RESET);
            return;
        }
        /* Never accepted (an early accept's event not yet taken is
         * dropped: rudp_ctx_next_event skips the released): nobody holds
         * it to hear of this; go quietly, as when the handshake times out. */
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

/* ---- timers ---- */

/* A probe carries the oldest unacknowledged data rather than a bare PING:
 * if that is what was lost, the probe repairs it. */
static void queue_oldest(rudp_conn *c)
{
    if (!rudp__ranges_empty(&c->retx) || rudp__conn_have_stream_to_send(c))
        return;
    const rudp_sent *s = rudp__recovery_oldest_stream(&c->rec);
    if (s) {
        uint64_t lo = rudp__seq_max(s->stream_off, c->snd_una);
        uint64_t hi = s->stream_off + s->stream_len;
        if (rudp__seq_lt(lo, hi))
            rudp__ranges_add(&c->retx, lo, hi);
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
              (unsigned long long)rudp_conn_id(c), c->rec.pto_count,
              (unsigned long long)(c->rtt.smoothed / 1000), (unsigned long long)(c->rtt.var / 1000),
              (unsigned long long)(c->rtt.min / 1000), c->rec.eliciting_in_flight,
              (unsigned long long)((c->ctx->now - c->rec.last_eliciting_sent) / 1000),
              c->rec.last_eliciting_ack_now ? ", asked for an ACK now" : "");
    rudp__pmtu_pto(c); /* before queue_oldest: what goes again goes at the new size */
    rudp__standby_pto(c, c->ctx->now); /* a copy on the standby path (standby.c) */
    queue_oldest(c);
    /* A path silent for a few probe timeouts and at least RUDP_SILENT_MIN
     * (a peer busy for a moment, a process being handed to a keeper, is
     * not a lost path), then again every RUDP_SILENT_EVERY more. The
     * silence counts from the later of the last packet heard and the
     * first probe timeout of this run: a connection idle for minutes that
     * sends again has not been waiting for minutes, and a busy peer (an
     * engine serving thousands of connections) that answers its first
     * bytes a few hundred ms late must not make it move. */
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

int rudp_conn_unauth_answers(const rudp_conn *c)
{
    /* rudp_conn_answered forgets a RETRY at the next SYN (retries reset): auth_heard does not */
    return c->auth_failed && !c->auth_heard && !rudp_conn_answered(c);
}

rudp_time rudp__conn_giveup_at(const rudp_conn *c)
{
    rudp_time at = c->hs_start + c->cfg.connect_timeout;
    if (!c->slow_warned && c->cfg.connect_timeout > RUDP_SLOW_CONNECT)
        at = c->hs_start + RUDP_SLOW_CONNECT;
    if (rudp_conn_unauth_answers(c) && c->key_verdict_at && c->key_verdict_at < at)
        at = c->key_verdict_at;
    return at;
}

/* GIVEUP fired in SYN_SENT: 1 if the key verdict failed the connect (only
 * unauthenticated answers came: keystate.c). */
static int key_verdict(rudp_conn *c, rudp_time now)
{
    if (!rudp_conn_unauth_answers(c) || !c->key_verdict_at || now < c->key_verdict_at)
        return 0;
    rudp__conn_fail(c, now, -ECONNREFUSED,
                    c->key_said == RUDP_KEY_SAID_NONE ? RUDP_CAUSE_KEY_PEER_NONE
                                                      : RUDP_CAUSE_KEY_MISMATCH);
    return 1;
}

/* A loopback SYN's SYNACK held RUDP_HELD_NOTICE (a busy server, an
 * application slow to accept): a RETRY says rudp is here, once. Linux
 * answers nothing while its accept queue is full and the client waits;
 * ours would race kernel TCP at its probe delay, connect over it, and
 * leave this connection, already in the application's queue, reset. Not
 * sent again: a client that was told waits for rudp alone. */
static void held_notice(rudp_conn *c, rudp_time now)
{
    if (c->held_noticed)
        return;
    c->held_noticed = 1;
    c->ctx->stats.held_noticed++;
    rudp__send_retry(c->ctx, now, c->sock, c->has_local ? &c->local : NULL, &c->pkey.addr,
                     c->pkey.cid, NULL, 1);
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
        else if (c->state == RUDP_SYN_RCVD && c->synack_held)
            held_notice(c, now);
        else if (c->state == RUDP_SYN_RCVD)
            rudp__conn_synack_to(c, now, NULL);
        return;
    case RUDP_T_GIVEUP:
        if (c->state == RUDP_SYN_RCVD && c->accept_early) {
            /* reported already (rudp_listener_set_early_accept): its
             * holder is told, and releases it */
            rudp__conn_fail(c, now, -ECONNRESET, RUDP_CAUSE_HANDSHAKE_TIMEOUT);
            return;
        }
        if (c->state == RUDP_SYN_RCVD) {
            rudp__conn_set_state(c, RUDP_CLOSED, "handshake never completed");
            rudp__conn_kill(c); /* nobody holds it */
            return;
        }
        if (c->state == RUDP_SYN_SENT) {
            if (key_verdict(c, now))
                return;
            rudp_time at = rudp__conn_giveup_at(c);
            if (now < at) { /* armed for a verdict an authenticated answer made moot */
                rudp__conn_arm(c, RUDP_T_GIVEUP, at);
                return;
            }
        }
        if (c->state == RUDP_SYN_SENT && !c->slow_warned &&
            now - c->hs_start < c->cfg.connect_timeout) {
            c->slow_warned = 1;
            rudp__report_slow_connect(c);
            rudp__conn_arm(c, RUDP_T_GIVEUP, rudp__conn_giveup_at(c));
            return;
        }
        if (c->state != RUDP_SYN_SENT && !rudp__conn_stream_unacked(c))
            return; /* armed for bytes acknowledged since: nothing to guard */
        rudp__conn_fail(c, now, -ETIMEDOUT,
                        c->state != RUDP_SYN_SENT ? RUDP_CAUSE_USER_TIMEOUT
                        : c->keyed                ? RUDP_CAUSE_NO_AUTH_ANSWER
                                                  : RUDP_CAUSE_HANDSHAKE_TIMEOUT);
        return;
    case RUDP_T_LOSS:
        /* A probe timeout found due in a pass that already has this
         * connection's output queued (rudp_ctx_process runs the timers
         * before the connections made dirty since the last pass): what is
         * queued goes first, and the timeout counts from it. An ICMP
         * error's probe (icmp.c), read in a turn that outlasted the
         * timeout (a server closing 3,500 connections at once), is then
         * the probe it is, not a second one behind a timeout counted in
         * vain. Not before a loss-time detection: the lost go first. */
        if (!c->rec.loss_time && c->dirty)
            rudp__conn_flush(c, now);
        c->rec.pto_floor = rudp__late_floor(c->ctx, &c->pkey.addr, now, c->rtt.samples);
        switch (rudp__recovery_on_timeout(&c->rec, &c->cc, &c->rtt, now, c->cfg.max_ack_delay,
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
        c->ctx->stats.pacer_wakeups++;
        rudp__conn_dirty(c);
        return;
    case RUDP_T_KEEPALIVE:
        if (rudp__conn_sending_state(c->state) && c->state != RUDP_TIME_WAIT) {
            if (c->rec.eliciting_in_flight == 0)
                c->ping_pending = 1;
            rudp__conn_dirty(c);
            if (rudp__conn_window_blocked(c) && c->persist_n < UINT8_MAX)
                c->persist_n++;
            rudp__conn_arm(c, RUDP_T_KEEPALIVE, now + rudp__conn_keepalive_wait(c));
        }
        return;
    case RUDP_T_IDLE:
        if (rudp__conn_stream_unacked(c) && rudp__timer_armed(&c->timers[RUDP_T_GIVEUP])) {
            /* Not idle: the user timeout decides for bytes in flight, as
             * TCP's keepalive waits while its write queue holds any (an
             * SO_KEEPALIVE of seconds ended a writer on a path dark for
             * as long). Looked at again an idle time on. */
            rudp__conn_arm(c, RUDP_T_IDLE, now + c->cfg.idle_timeout);
            return;
        }
        rudp__conn_fail(c, now, -ETIMEDOUT, RUDP_CAUSE_IDLE_TIMEOUT);
        return;
    case RUDP_T_DRAIN:
        if (c->state == RUDP_TIME_WAIT)
            rudp__conn_set_state(c, RUDP_CLOSED, "drained");
        return;
    case RUDP_T_LINGER:
        /* a pending reset's wait ran out: it goes now, with what is left
         * unsent dropped (TCP's) */
        rudp__conn_abort_code(c, now, c->reset_pending && c->reset_after_fin ? RUDP_RESET_AFTER_FIN
                                                                             : RUDP_RESET_ABORT);
        return;
    case RUDP_T_PATH:
        rudp__path_on_timer(c, now);
        return;
    case RUDP_T_STANDBY:
        rudp__standby_on_timer(c, now);
        return;
    case RUDP_T_CORK:
        rudp__cork_expired(c);
        return;
    case RUDP_T_RXHOLD:
        if (c->rx_held) {
            c->rx_held = 0;
            rudp__conn_event(c, RUDP_EV_READABLE);
        }
        return;
    case RUDP_T_COUNT:
        return;
    }
}
