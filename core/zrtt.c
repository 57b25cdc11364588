/*
 * zrtt.c: zero round trips for a returning client, the connection's side
 * (the tokens themselves are token.c, the record of used ones strike.c).
 *
 *   client                                server (listener with zero_rtt)
 *   SYN  token, STREAM [0, k)   ------>   token valid, its ID unused:
 *                                         accept at once (ESTABLISHED),
 *                                         bytes [0, k) to the application
 *        <------  SYNACK (RUDP_PKTF_ZRTT), NEW_TOKEN (for next time),
 *                 then the answer's DATA
 *
 * (A connection made without a token gets its NEW_TOKEN once the client is
 * heard after the handshake: its first DATA proves the address.)
 *
 * A token that does not hold (forged, expired, another address's, used
 * before, or the register cannot vouch for it) leaves the SYN an ordinary
 * one: no flag in the SYNACK, and the client sends [0, k) again as data
 * after it. The server takes the SYN's bytes only together with the flag
 * it sends in every copy of its SYNACK, and only once (a repeated SYN
 * finds the connection by its peer and ID before any token is looked at),
 * so the bytes are delivered once whatever is lost or replayed.
 *
 * Keyed, the SYN's token is covered by its MAC and its frames are
 * encrypted (crypto.c, rudp__keyed_syn_seal: a key of the shared key and
 * the client's ephemeral key, so without forward secrecy, as TLS 1.3's PSK
 * early data; docs/security.md).
 */
#include <string.h>

#include "conn.h"

int rudp__zrtt_check_syn(rudp_ctx *ctx, rudp_time now, const rudp_listener *l,
                         const rudp_addr *peer, const rudp_hdr *h, uint64_t *id,
                         uint32_t *issued)
{
    if (!rudp__atoken_is(h->token, h->token_len))
        return 0;
    if (!l->zero_rtt ||
        rudp__atoken_check(ctx, now, peer, h->token, h->token_len, id, issued) < 0) {
        ctx->stats.zero_rtt_invalid++;
        return 0;
    }
    return 1;
}

int rudp__zrtt_record(rudp_ctx *ctx, rudp_time now, uint64_t id, uint32_t issued)
{
    switch (rudp__strike_record(&ctx->strike, id, issued, rudp__atoken_time(now))) {
    case RUDP_ATOKEN_OK:
        return 1;
    case RUDP_ATOKEN_REPLAY:
        ctx->stats.zero_rtt_replayed++;
        return 0;
    default:
        ctx->stats.zero_rtt_full++;
        return 0;
    }
}

/* The SYN's one STREAM frame at offset 0, no FIN, amid padding, in *out:
 * 1; 0 if the SYN carries anything else (or nothing). */
static int syn_stream(const uint8_t *p, size_t n, rudp_frame *out)
{
    rudp_frame f;
    int found = 0;
    while (n) {
        int k = rudp__wire_frame_decode(p, n, &f);
        if (k <= 0)
            return 0;
        if (f.type == RUDP_FRAME_STREAM) {
            if (found || f.u.stream.offset != 0 || f.u.stream.fin || f.u.stream.len == 0)
                return 0;
            *out = f;
            found = 1;
        } else if (f.type != RUDP_FRAME_PADDING) {
            return 0;
        }
        p += k;
        n -= (size_t)k;
    }
    return found;
}

int rudp__zrtt_take(rudp_conn *c, rudp_time now, const uint8_t *frames, size_t n)
{
    rudp_ctx *ctx = c->ctx;
    rudp_frame f;
    (void)now;
    if (!syn_stream(frames, n, &f))
        return 0;
    uint64_t end = f.u.stream.len;
    /* as the 1-RTT path would: a full accept queue holds the handshake */
    if ((c->listener && c->listener->waiting) || end > c->max_data_sent ||
        !rudp__rx_may_store(c, 0, end))
        return 0;
    if (rudp__sbuf_write(&c->rbuf, 0, f.u.stream.data, (size_t)end) < 0)
        return 0;
    c->rcv_contig = end;
    c->bytes_received += end;
    c->zrtt_taken = 1;
    ctx->stats.zero_rtt_accepted++;
    return 1;
}

size_t rudp__zrtt_syn_frames(rudp_conn *c, uint8_t *p, size_t cap)
{
    if (!rudp__atoken_is(c->token, c->token_len))
        return 0;
    if (c->hs_count == 0 && c->retries == 0) {
        size_t hdr = rudp__wire_stream_hdr_len(0, cap, 1);
        uint64_t k = c->snd_end;
        if (cap <= hdr)
            k = 0;
        else if (k > cap - hdr)
            k = cap - hdr;
        c->zrtt_len = (uint16_t)k;
        if (k)
            c->ctx->stats.zero_rtt_sent++;
    }
    if (!c->zrtt_len)
        return 0;
    int n = rudp__wire_stream_hdr_encode(p, cap, 0, c->zrtt_len, 0, 1);
    if (n < 0 || cap - (size_t)n < c->zrtt_len) {
        c->zrtt_len = 0;
        return 0;
    }
    rudp__sbuf_read(&c->sbuf, 0, p + n, c->zrtt_len);
    return (size_t)n + c->zrtt_len;
}

void rudp__zrtt_on_synack(rudp_conn *c, uint8_t flags)
{
    uint64_t k = c->zrtt_len;
    if (!k)
        return;
    if (!(flags & RUDP_PKTF_ZRTT)) {
        c->ctx->stats.zero_rtt_resent++; /* snd_nxt is 0: they go again as data */
        return;
    }
    c->zrtt_taken = 1;
    c->snd_nxt = c->snd_una = k;
    c->bytes_sent += k;
    c->ctx->stats.stream_bytes_sent += k;
    rudp__sbuf_advance(&c->sbuf, k, k == c->snd_end);
    rudp__conn_event(c, RUDP_EV_ACKED);
}

void rudp__zrtt_issue(rudp_conn *c, rudp_time now)
{
    c->token_due = 0;
    uint8_t tok[RUDP_ATOKEN_LEN], f[2 + RUDP_ATOKEN_LEN];
    rudp__atoken_make(c->ctx, now, &c->pkey.addr, tok);
    int n = rudp__wire_new_token_encode(f, sizeof f, tok, sizeof tok);
    if (n > 0 && rudp__conn_send_control(c, now, &c->pkey.addr, f, (size_t)n) == 0)
        c->ctx->stats.tokens_issued++;
}

void rudp__zrtt_on_token(rudp_conn *c, const uint8_t *tok, size_t len)
{
    if (c->is_server || len > sizeof c->new_token) {
        c->ctx->stats.protocol_errors++; /* server to client only: dropped, counted */
        return;
    }
    memcpy(c->new_token, tok, len);
    c->new_token_len = (uint8_t)len;
    rudp__conn_event(c, RUDP_EV_TOKEN);
}

size_t rudp_conn_token(const rudp_conn *c, uint8_t *buf, size_t cap)
{
    if (!c->new_token_len || cap < c->new_token_len)
        return 0;
    memcpy(buf, c->new_token, c->new_token_len);
    return c->new_token_len;
}

int rudp_conn_zero_rtt(const rudp_conn *c)
{
    return !c->is_server && c->zrtt_taken;
}

void rudp_listener_set_zero_rtt(rudp_listener *l, int on)
{
    l->zero_rtt = on ? 1 : 0;
}

void rudp_listener_set_early_accept(rudp_listener *l, int on)
{
    l->early_accept = on ? 1 : 0;
}
