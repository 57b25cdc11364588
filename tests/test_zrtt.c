/*
 * Zero round trips for a returning client (token.c, strike.c, zrtt.c):
 * tokens are single use, a replay delivers nothing twice, a refused token
 * costs the round trip and nothing else, the strike register stays
 * bounded, and without the listener's opt-in nothing changes.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <string.h>

#include "conn.h"
#include "lib_sim.h"
#include "wire.h"

#define OWD RUDP_MS(20)
#define REQ 700 /* a request that fits in the SYN */

static const uint8_t test_key[RUDP_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9};

/* Client a (and a second client c) and a 0-RTT server b, 20 ms each way. */
static void setup(sim *s, uint64_t seed, int *a, int *b, int *c, int keyed)
{
    sim_init(s, seed);
    *a = sim_add_ep(s, NULL);
    *b = sim_add_ep(s, NULL);
    *c = sim_add_ep(s, NULL);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            s->link[i][j].delay = OWD;
    if (keyed)
        for (int i = 0; i < 3; i++)
            sim_set_key(s, i, test_key);
    sim_app srv = {.expect = UINT64_MAX, .recv_seed = 5};
    sim_listen(s, *b, &srv, 16);
}

static const sim_app client_tpl = {.to_send = REQ, .send_seed = 5, .expect = 0, .no_release = 1};

/* Bytes every server application received, and whether any was corrupt. */
static uint64_t server_bytes(const sim *s, int b, int *corrupt)
{
    uint64_t n = 0;
    for (int i = 0; i < SIM_MAX_APPS; i++) {
        if (!s->apps[i].used || s->apps[i].ep != b)
            continue;
        n += s->apps[i].received;
        if (s->apps[i].corrupt)
            *corrupt = 1;
    }
    return n;
}

/* A first connection from `from`; returns the token it was given (len). */
static size_t first_visit(sim *s, int from, int to, uint8_t tok[RUDP_TOKEN_MAX_BYTES])
{
    int i = sim_connect(s, from, to, &client_tpl, NULL);
    cr_assert(ge(int, i, 0));
    sim_run_until(s, s->now + RUDP_SEC(2));
    sim_app *a = &s->apps[i];
    cr_assert(ne(u32, a->events & RUDP_EV_TOKEN, 0), "the server gave a token");
    size_t n = rudp_conn_token(a->conn, tok, RUDP_TOKEN_MAX_BYTES);
    rudp_conn_release(a->conn, s->now);
    a->released = 1;
    a->conn = NULL;
    return n;
}

/* A 0-RTT server b, clients a and c (setup), and the token a's first
 * visit got; returns its length. */
static size_t returning(sim *s, uint64_t seed, int keyed, int *a, int *b, int *c,
                        uint8_t tok[RUDP_TOKEN_MAX_BYTES])
{
    setup(s, seed, a, b, c, keyed);
    sim_listen_zero_rtt(s, *b, 1);
    return first_visit(s, *a, *b, tok);
}

static const rudp_stats *st(const sim *s, int ep)
{
    return rudp_ctx_stats(s->ep[ep].ctx);
}

/* What the tap saw of `syn_from`: its first SYN (syn_copy), with
 * want_data its latest DATA (data_copy), and the first SYNACK to it
 * (synack_copy). */
static uint8_t syn_copy[1500], data_copy[1500], synack_copy[256];
static size_t syn_copy_len, data_copy_len, synack_copy_len;
static int syn_from, want_data;
static void tap_syn(sim *s, int from, int to, const uint8_t *buf, size_t len)
{
    (void)s;
    rudp_hdr h;
    if ((from != syn_from && to != syn_from) || len > sizeof syn_copy ||
        rudp__wire_hdr_decode(buf, len, &h) <= 0)
        return;
    if (from == syn_from && h.type == RUDP_PKT_SYN && !syn_copy_len) {
        memcpy(syn_copy, buf, len);
        syn_copy_len = len;
    } else if (from == syn_from && h.type == RUDP_PKT_DATA && want_data) {
        memcpy(data_copy, buf, len);
        data_copy_len = len;
    } else if (to == syn_from && h.type == RUDP_PKT_SYNACK && !synack_copy_len &&
               len <= sizeof synack_copy) {
        memcpy(synack_copy, buf, len);
        synack_copy_len = len;
    }
}

Test(zrtt, a_returning_clients_request_reaches_the_server_with_its_syn)
{
    sim s;
    int a, b, c;
    uint8_t tok[RUDP_TOKEN_MAX_BYTES];
    size_t n = returning(&s, 1, 0, &a, &b, &c, tok);
    cr_assert(eq(sz, n, RUDP_ATOKEN_LEN));
    cr_assert(eq(u64, st(&s, b)->zero_rtt_accepted, 0), "the first visit had no token");
    cr_assert(eq(u64, st(&s, b)->tokens_issued, 1));

    rudp_time t0 = s.now;
    int i = sim_connect_token(&s, a, b, &client_tpl, tok, n);
    cr_assert(ge(int, i, 0));
    /* one way later (and a hair), the server application has the request */
    sim_run_until(&s, t0 + OWD + RUDP_MS(1));
    int corrupt = 0;
    cr_assert(eq(u64, server_bytes(&s, b, &corrupt), 2 * REQ));
    cr_assert(eq(u64, st(&s, b)->zero_rtt_accepted, 1));
    /* one round trip later the client is established, its bytes acknowledged */
    sim_run_until(&s, t0 + 2 * OWD + RUDP_MS(1));
    cr_assert(s.apps[i].established && !s.apps[i].error);
    cr_assert(eq(int, rudp_conn_zero_rtt(s.apps[i].conn), 1));
    /* and has its next token: a client that leaves once answered (curl)
     * must not go without one every other visit */
    uint8_t next[RUDP_TOKEN_MAX_BYTES];
    cr_assert(eq(sz, rudp_conn_token(s.apps[i].conn, next, sizeof next), RUDP_ATOKEN_LEN),
              "the next token came with the SYNACK's flight");
    sim_run_until(&s, s.now + RUDP_SEC(2));
    cr_assert(eq(u64, server_bytes(&s, b, &corrupt), 2 * REQ), "nothing twice");
    cr_assert(not(corrupt));
    cr_assert(eq(u64, st(&s, a)->zero_rtt_sent, 1));
    cr_assert(eq(u64, st(&s, a)->zero_rtt_resent, 0));
    cr_assert(eq(u64, st(&s, b)->tokens_issued, 2), "a new token on every connection, once");
    sim_free(&s);
}

Test(zrtt, a_token_used_twice_is_refused_and_the_data_arrives_once)
{
    sim s;
    int a, b, c;
    uint8_t tok[RUDP_TOKEN_MAX_BYTES];
    size_t n = returning(&s, 2, 0, &a, &b, &c, tok);
    sim_connect_token(&s, a, b, &client_tpl, tok, n);
    sim_run_until(&s, s.now + RUDP_SEC(2));
    int i = sim_connect_token(&s, a, b, &client_tpl, tok, n);
    sim_run_until(&s, s.now + RUDP_SEC(2));
    cr_assert(eq(u64, st(&s, b)->zero_rtt_accepted, 1));
    cr_assert(eq(u64, st(&s, b)->zero_rtt_replayed, 1));
    cr_assert(eq(u64, st(&s, a)->zero_rtt_resent, 1), "sent again after the handshake");
    cr_assert(eq(int, rudp_conn_zero_rtt(s.apps[i].conn), 0));
    int corrupt = 0;
    cr_assert(eq(u64, server_bytes(&s, b, &corrupt), 3 * REQ));
    cr_assert(not(corrupt));
    cr_assert(eq(u64, st(&s, b)->conns_accepted, 3));
    sim_free(&s);
}

Test(zrtt, a_replayed_syn_delivers_its_data_once)
{
    sim s;
    int a, b, c;
    uint8_t tok[RUDP_TOKEN_MAX_BYTES];
    size_t n = returning(&s, 3, 0, &a, &b, &c, tok);
    syn_copy_len = 0;
    syn_from = a;
    s.tap = tap_syn;
    sim_connect_token(&s, a, b, &client_tpl, tok, n);
    sim_run_until(&s, s.now + RUDP_MS(10));
    s.tap = NULL;
    cr_assert(gt(sz, syn_copy_len, 0));
    /* while the connection lives: a repeated SYN, answered, not taken again */
    sim_inject(&s, &s.ep[a].addr, b, syn_copy, syn_copy_len);
    sim_run_until(&s, s.now + RUDP_SEC(2));
    /* and once it is gone: the strike register refuses the token */
    for (int k = 0; k < 3; k++) {
        sim_inject(&s, &s.ep[a].addr, b, syn_copy, syn_copy_len);
        sim_run_until(&s, s.now + RUDP_SEC(1));
    }
    /* from another address: the token is not that address's */
    sim_inject(&s, &s.ep[c].addr, b, syn_copy, syn_copy_len);
    sim_run_until(&s, s.now + RUDP_SEC(2));
    int corrupt = 0;
    cr_assert(eq(u64, server_bytes(&s, b, &corrupt), 2 * REQ), "the request once");
    cr_assert(not(corrupt));
    cr_assert(eq(u64, st(&s, b)->zero_rtt_accepted, 1));
    cr_assert(ge(u64, st(&s, b)->zero_rtt_replayed, 1));
    cr_assert(eq(u64, st(&s, b)->zero_rtt_invalid, 1));
    cr_assert(eq(u64, st(&s, b)->conns_accepted, 2));
    sim_free(&s);
}

/* A token that does not hold: refused, and the connection completes with
 * its data delivered once, after the handshake. */
static void refused_token(sim *s, int from, int to, const uint8_t *tok, size_t n)
{
    int corrupt = 0;
    uint64_t before = server_bytes(s, to, &corrupt);
    uint64_t invalid = st(s, to)->zero_rtt_invalid, resent = st(s, from)->zero_rtt_resent;
    int i = sim_connect_token(s, from, to, &client_tpl, tok, n);
    sim_run_until(s, s->now + RUDP_SEC(2));
    cr_assert(eq(u64, st(s, to)->zero_rtt_invalid, invalid + 1));
    cr_assert(eq(u64, st(s, from)->zero_rtt_resent, resent + 1));
    cr_assert(s->apps[i].established && !s->apps[i].error);
    cr_assert(eq(u64, server_bytes(s, to, &corrupt), before + REQ));
    cr_assert(not(corrupt));
}

Test(zrtt, forged_expired_and_other_address_tokens_are_refused_and_cost_one_round_trip)
{
    sim s;
    int a, b, c;
    uint8_t tok[RUDP_TOKEN_MAX_BYTES], bad[RUDP_TOKEN_MAX_BYTES];
    size_t n = returning(&s, 4, 0, &a, &b, &c, tok);
    memcpy(bad, tok, n);
    bad[8] ^= 1; /* its ID changed: the MAC no longer holds */
    refused_token(&s, a, b, bad, n);
    refused_token(&s, c, b, tok, n); /* another client's */
    n = first_visit(&s, a, b, tok);
    sim_run_until(&s, s.now + RUDP_SEC(25 * 3600)); /* past its 24 h */
    refused_token(&s, a, b, tok, n);
    cr_assert(eq(u64, st(&s, b)->zero_rtt_accepted, 0));
    sim_free(&s);
}

Test(zrtt, without_the_listeners_opt_in_no_token_is_given_or_taken)
{
    sim s;
    int a, b, c;
    setup(&s, 5, &a, &b, &c, 0);
    int i = sim_connect(&s, a, b, &client_tpl, NULL);
    sim_run_until(&s, s.now + RUDP_SEC(2));
    cr_assert(eq(u32, s.apps[i].events & RUDP_EV_TOKEN, 0));
    cr_assert(eq(u64, st(&s, b)->tokens_issued, 0));
    /* a token from the time the listener allowed it */
    sim_listen_zero_rtt(&s, b, 1);
    uint8_t tok[RUDP_TOKEN_MAX_BYTES];
    size_t n = first_visit(&s, a, b, tok);
    sim_listen_zero_rtt(&s, b, 0);
    refused_token(&s, a, b, tok, n);
    sim_free(&s);
}

Test(zrtt, keyed_the_token_and_the_data_travel_sealed)
{
    sim s;
    int a, b, c;
    uint8_t tok[RUDP_TOKEN_MAX_BYTES];
    size_t n = returning(&s, 6, 1, &a, &b, &c, tok);
    cr_assert(eq(sz, n, RUDP_ATOKEN_LEN));
    syn_copy_len = 0;
    syn_from = a;
    s.tap = tap_syn;
    rudp_time t0 = s.now;
    int i = sim_connect_token(&s, a, b, &client_tpl, tok, n);
    sim_run_until(&s, t0 + OWD + RUDP_MS(1));
    s.tap = NULL;
    int corrupt = 0;
    cr_assert(eq(u64, server_bytes(&s, b, &corrupt), 2 * REQ), "one way: the request is there");
    /* the request's pattern is nowhere in the SYN: encrypted */
    uint8_t first[16];
    for (int k = 0; k < 16; k++)
        first[k] = sim_pattern(5, (uint64_t)k);
    cr_assert(gt(sz, syn_copy_len, 0));
    cr_assert_null(memmem(syn_copy, syn_copy_len, first, sizeof first));
    sim_run_until(&s, s.now + RUDP_SEC(2));
    cr_assert(s.apps[i].established && !s.apps[i].error);
    cr_assert(eq(int, rudp_conn_zero_rtt(s.apps[i].conn), 1));
    cr_assert(eq(u64, st(&s, a)->zero_rtt_sent, 1));
    cr_assert(eq(u64, st(&s, b)->zero_rtt_accepted, 1));
    cr_assert(eq(u64, server_bytes(&s, b, &corrupt), 2 * REQ), "nothing twice");
    cr_assert(not(corrupt));
    /* the same SYN, its encrypted data altered: the MAC refuses it whole */
    syn_copy[RUDP_MIN_SYN_SIZE / 2] ^= 1;
    uint64_t rejected = st(&s, b)->handshakes_rejected;
    sim_inject(&s, &s.ep[a].addr, b, syn_copy, syn_copy_len);
    sim_run_until(&s, s.now + RUDP_MS(100));
    cr_assert(eq(u64, st(&s, b)->handshakes_rejected, rejected + 1));
    sim_free(&s);
}

Test(zrtt, a_lost_synack_after_0rtt_is_sent_again_on_the_repeated_syn)
{
    sim s;
    int a, b, c;
    uint8_t tok[RUDP_TOKEN_MAX_BYTES];
    size_t n = returning(&s, 7, 0, &a, &b, &c, tok);
    /* everything from the server is lost for a while */
    s.link[b][a].cut_at = s.now;
    s.link[b][a].cut_until = s.now + RUDP_MS(300);
    int i = sim_connect_token(&s, a, b, &client_tpl, tok, n);
    sim_run_until(&s, s.now + RUDP_SEC(5));
    cr_assert(s.apps[i].established && !s.apps[i].error);
    cr_assert(eq(int, rudp_conn_zero_rtt(s.apps[i].conn), 1));
    int corrupt = 0;
    cr_assert(eq(u64, server_bytes(&s, b, &corrupt), 2 * REQ));
    cr_assert(not(corrupt));
    cr_assert(eq(u64, st(&s, b)->zero_rtt_accepted, 1));
    cr_assert(eq(u64, st(&s, b)->conns_accepted, 2));
    sim_free(&s);
}

Test(zrtt, a_first_write_larger_than_the_syn_sends_the_rest_after_the_synack)
{
    sim s;
    int a, b, c;
    uint8_t tok[RUDP_TOKEN_MAX_BYTES];
    size_t n = returning(&s, 9, 0, &a, &b, &c, tok);
    sim_app big = client_tpl;
    big.to_send = 5000;
    rudp_time t0 = s.now;
    sim_connect_token(&s, a, b, &big, tok, n);
    sim_run_until(&s, t0 + OWD + RUDP_MS(1));
    int corrupt = 0;
    uint64_t first = server_bytes(&s, b, &corrupt) - REQ;
    cr_assert(gt(u64, first, 1000), "what the SYN holds, at once");
    cr_assert(lt(u64, first, 1200));
    sim_run_until(&s, s.now + RUDP_SEC(2));
    cr_assert(eq(u64, server_bytes(&s, b, &corrupt), REQ + 5000), "the rest after the SYNACK");
    cr_assert(not(corrupt));
    cr_assert(eq(u64, st(&s, b)->zero_rtt_accepted, 1));
    sim_free(&s);
}

static int retries_seen;
static void tap_retry(sim *s, int from, int to, const uint8_t *buf, size_t len)
{
    (void)s, (void)from, (void)to;
    rudp_hdr h;
    if (rudp__wire_hdr_decode(buf, len, &h) > 0 && h.type == RUDP_PKT_RETRY)
        retries_seen++;
}

Test(zrtt, a_held_syn_with_nothing_written_leaves_alone_at_its_hold_and_needs_no_retry)
{
    sim s;
    int a, b, c;
    uint8_t tok[RUDP_TOKEN_MAX_BYTES];
    size_t n = returning(&s, 8, 0, &a, &b, &c, tok);
    retries_seen = 0;
    s.tap = tap_retry;
    rudp_time t0 = s.now;
    sim_app quiet = {.expect = 0, .no_release = 1}; /* writes nothing */
    int i = sim_connect_token(&s, a, b, &quiet, tok, n);
    sim_run_until(&s, t0 + RUDP_MS(10) - 1);
    cr_assert(eq(int, rudp_conn_state(s.apps[i].conn), RUDP_SYN_SENT));
    /* the hold (10 ms), then one round trip: the token spared the RETRY */
    sim_run_until(&s, t0 + RUDP_MS(10) + 2 * OWD + RUDP_MS(1));
    cr_assert(s.apps[i].established && !s.apps[i].error);
    cr_assert(eq(int, retries_seen, 0));
    cr_assert(eq(u64, st(&s, a)->zero_rtt_sent, 0), "nothing to send in it");
    cr_assert(eq(u64, st(&s, b)->zero_rtt_accepted, 0));
    cr_assert(eq(u64, st(&s, b)->zero_rtt_replayed + st(&s, b)->zero_rtt_invalid, 0));
    sim_free(&s);
}

/* ---- the strike register ---- */

Test(strike, an_id_is_taken_once)
{
    rudp_strike r;
    rudp__strike_init(&r, NULL, 8);
    cr_assert(eq(int, rudp__strike_record(&r, 42, 10, 10), RUDP_ATOKEN_OK));
    cr_assert(eq(int, rudp__strike_record(&r, 42, 10, 11), RUDP_ATOKEN_REPLAY));
    cr_assert(eq(int, rudp__strike_record(&r, 43, 10, 11), RUDP_ATOKEN_OK));
    cr_assert(eq(int, rudp__strike_record(&r, 0, 10, 11), RUDP_ATOKEN_REPLAY));
    rudp__strike_free(&r);
}

Test(strike, full_it_forgets_the_oldest_and_refuses_what_it_forgot)
{
    rudp_strike r;
    rudp__strike_init(&r, NULL, 4);
    for (uint64_t id = 1; id <= 4; id++)
        cr_assert(eq(int, rudp__strike_record(&r, id, (uint32_t)id, 5), RUDP_ATOKEN_OK));
    cr_assert(eq(u32, r.n, 4));
    /* a fifth: the pairs issued at 1 go, and with them any token issued then */
    cr_assert(eq(int, rudp__strike_record(&r, 5, 5, 5), RUDP_ATOKEN_OK));
    cr_assert(le(u32, r.n, 4));
    cr_assert(eq(int, rudp__strike_record(&r, 1, 1, 5), RUDP_ATOKEN_FULL), "not taken again");
    cr_assert(eq(int, rudp__strike_record(&r, 99, 1, 5), RUDP_ATOKEN_FULL), "unknown: refused");
    cr_assert(eq(int, rudp__strike_record(&r, 2, 2, 5), RUDP_ATOKEN_REPLAY));
    /* one token a time unit: each fresh one is taken, the register stays at 4 */
    for (uint64_t id = 100; id < 1100; id++) {
        int got = rudp__strike_record(&r, id, 6 + (uint32_t)id, 2000);
        cr_assert(eq(int, got, RUDP_ATOKEN_OK));
        cr_assert(le(u32, r.n, 4));
    }
    /* more tokens of one time unit than it holds: the rest are refused */
    int full = 0;
    for (uint64_t id = 2000; id < 2010; id++)
        full += rudp__strike_record(&r, id, 1500, 2000) == RUDP_ATOKEN_FULL;
    cr_assert(gt(int, full, 0));
    cr_assert(le(u32, r.n, 4));
    rudp__strike_free(&r);
}

Test(strike, ids_past_their_lifetime_make_room_without_a_horizon)
{
    rudp_strike r;
    rudp__strike_init(&r, NULL, 2);
    cr_assert(eq(int, rudp__strike_record(&r, 1, 0, 0), RUDP_ATOKEN_OK));
    cr_assert(eq(int, rudp__strike_record(&r, 2, 0, 0), RUDP_ATOKEN_OK));
    uint32_t later = RUDP_ATOKEN_LIFETIME + 1;
    cr_assert(eq(int, rudp__strike_record(&r, 3, later, later), RUDP_ATOKEN_OK));
    cr_assert(eq(int, r.has_horizon, 0), "expired pairs went, nothing was forgotten early");
    rudp__strike_free(&r);
}

/* ---- the frame ---- */

Test(zrtt, new_token_frames_decode_and_malformed_ones_are_rejected)
{
    uint8_t tok[RUDP_ATOKEN_LEN] = {RUDP_ATOKEN_KIND, 1, 2, 3}, f[64];
    int n = rudp__wire_new_token_encode(f, sizeof f, tok, sizeof tok);
    cr_assert(eq(int, n, 2 + RUDP_ATOKEN_LEN));
    rudp_frame fr;
    cr_assert(eq(int, rudp__wire_frame_decode(f, (size_t)n, &fr), n));
    cr_assert(eq(int, fr.type, RUDP_FRAME_NEW_TOKEN));
    cr_assert(eq(int, fr.u.token.len, RUDP_ATOKEN_LEN));
    cr_assert(eq(int, memcmp(fr.u.token.data, tok, sizeof tok), 0));
    cr_assert(eq(int, rudp__wire_frame_decode(f, (size_t)n - 1, &fr), -EBADMSG), "truncated");
    f[1] = 0;
    cr_assert(eq(int, rudp__wire_frame_decode(f, (size_t)n, &fr), -EBADMSG), "empty");
    f[1] = RUDP_TOKEN_MAX + 1;
    cr_assert(eq(int, rudp__wire_frame_decode(f, sizeof f, &fr), -EBADMSG), "too long");
    cr_assert(eq(int, rudp__wire_new_token_encode(f, sizeof f, tok, 0), -EINVAL));
    cr_assert(eq(int, rudp__wire_new_token_encode(f, 10, tok, sizeof tok), -ENOBUFS));
}

/* An observer on the client's IP address (same NAT, same host) copies a
 * 0-RTT SYN and sends the copy first, from another port: the token holds
 * (it is bound to the IP address, not the port), so the copy's connection
 * takes the bytes. The real SYN must not then make the server application
 * receive them a second time (its token refused, the client sending them
 * again after the handshake): it is the same client's SYN (same ID, same
 * token), which the server answers as the connection's, moved to the real
 * port, with the ZRTT flag. */
Test(zrtt, a_copy_from_another_port_sent_first_delivers_the_data_once)
{
    for (int keyed = 0; keyed < 2; keyed++) {
        sim s;
        int a, b, c;
        uint8_t tok[RUDP_TOKEN_MAX_BYTES];
        size_t n = returning(&s, 21 + (uint64_t)keyed, keyed, &a, &b, &c, tok);
        syn_copy_len = 0;
        syn_from = a;
        s.tap = tap_syn;
        int i = sim_connect_token(&s, a, b, &client_tpl, tok, n);
        sim_run_until(&s, s.now + RUDP_US(10));
        s.tap = NULL;
        cr_assert(gt(sz, syn_copy_len, 0));
        rudp_addr other = s.ep[a].addr;
        other.port = (uint16_t)(other.port + 1000);
        sim_inject(&s, &other, b, syn_copy, syn_copy_len); /* ahead of the real one */
        sim_run_until(&s, s.now + RUDP_SEC(3));
        int corrupt = 0;
        cr_assert(eq(u64, server_bytes(&s, b, &corrupt), 2 * REQ), "keyed %d: the request once",
                  keyed);
        cr_assert(not(corrupt));
        cr_assert(s.apps[i].established && !s.apps[i].error);
        cr_assert(eq(int, rudp_conn_zero_rtt(s.apps[i].conn), 1), "the client was told so");
        cr_assert(eq(u64, st(&s, a)->zero_rtt_resent, 0));
        cr_assert(eq(u64, st(&s, b)->zero_rtt_other_port, 1));
        cr_assert(eq(u64, st(&s, b)->zero_rtt_accepted, 1));
        /* once the client was heard, the copy again from another port is a
         * replay: an ordinary SYN, nothing taken */
        other.port = (uint16_t)(other.port + 1);
        sim_inject(&s, &other, b, syn_copy, syn_copy_len);
        sim_run_until(&s, s.now + RUDP_SEC(3));
        cr_assert(eq(u64, server_bytes(&s, b, &corrupt), 2 * REQ));
        cr_assert(eq(u64, st(&s, b)->zero_rtt_other_port, 1));
        cr_assert(eq(u64, st(&s, b)->zero_rtt_replayed, 1));
        sim_free(&s);
    }
}

/* NEW_TOKEN goes from server to client only: one in a client's packet
 * (here its own DATA, renumbered, with nothing but the frame) is dropped
 * and counted, and the connection goes on. */
Test(zrtt, a_new_token_frame_from_a_client_is_counted_and_ignored)
{
    sim s;
    int a, b, c;
    uint8_t tok[RUDP_TOKEN_MAX_BYTES];
    size_t n = returning(&s, 31, 0, &a, &b, &c, tok);
    data_copy_len = 0;
    syn_from = a;
    want_data = 1;
    s.tap = tap_syn;
    sim_app open = client_tpl;
    open.no_shutdown = 1; /* the connection stays */
    int i = sim_connect(&s, a, b, &open, NULL);
    sim_run_until(&s, s.now + RUDP_SEC(1)); /* the request delivered */
    s.tap = NULL;
    want_data = 0;
    cr_assert(gt(sz, data_copy_len, 0));
    rudp_hdr h;
    cr_assert(gt(int, rudp__wire_hdr_decode(data_copy, data_copy_len, &h), 0));
    h.pn += 5; /* ahead of the client's own */
    uint8_t pkt[200];
    int k = rudp__wire_hdr_encode(pkt, sizeof pkt, &h);
    cr_assert(gt(int, k, 0));
    int f = rudp__wire_new_token_encode(pkt + k, sizeof pkt - (size_t)k, tok, n);
    cr_assert(gt(int, f, 0));
    uint64_t errors = st(&s, b)->protocol_errors, issued = st(&s, b)->tokens_issued;
    sim_inject(&s, &s.ep[a].addr, b, pkt, (size_t)(k + f));
    sim_run_until(&s, s.now + RUDP_SEC(2));
    cr_assert(eq(u64, st(&s, b)->protocol_errors, errors + 1));
    cr_assert(eq(u64, st(&s, b)->tokens_issued, issued));
    int corrupt = 0;
    cr_assert(eq(u64, server_bytes(&s, b, &corrupt), 2 * REQ));
    cr_assert(not(corrupt));
    cr_assert(not(s.apps[i].error));
    sim_free(&s);
}

/* An observer who copies a SYNACK that refused the client's 0-RTT bytes
 * and sends it first, flagged ZRTT, from another address: the client must
 * not take its bytes for delivered (they would be lost). The client takes
 * a SYNACK only from its server's address; it sends the bytes again. */
Test(zrtt, a_forged_zrtt_flag_from_another_address_loses_nothing)
{
    sim s;
    int a, b, c;
    uint8_t tok[RUDP_TOKEN_MAX_BYTES];
    size_t n = returning(&s, 41, 0, &a, &b, &c, tok);
    tok[8] ^= 1; /* refused: the SYNACK has no flag */
    synack_copy_len = 0;
    syn_copy_len = 1; /* not the SYN */
    syn_from = a;
    s.tap = tap_syn;
    int i = sim_connect_token(&s, a, b, &client_tpl, tok, n);
    sim_run_until(&s, s.now + OWD + RUDP_MS(1)); /* the SYNACK just left b */
    s.tap = NULL;
    cr_assert(gt(sz, synack_copy_len, 0));
    synack_copy[3] = (uint8_t)(synack_copy[3] | (RUDP_PKTF_ZRTT << 4));
    uint64_t unknown = st(&s, a)->unknown_conn;
    sim_inject(&s, &s.ep[c].addr, a, synack_copy, synack_copy_len); /* ahead of the real one */
    sim_run_until(&s, s.now + RUDP_SEC(2));
    cr_assert(eq(u64, st(&s, a)->unknown_conn, unknown + 1), "the copy was not taken");
    cr_assert(eq(int, rudp_conn_zero_rtt(s.apps[i].conn), 0));
    cr_assert(eq(u64, st(&s, a)->zero_rtt_resent, 1), "the bytes went again");
    int corrupt = 0;
    cr_assert(eq(u64, server_bytes(&s, b, &corrupt), 2 * REQ), "delivered, once");
    cr_assert(not(corrupt));
    cr_assert(s.apps[i].established && !s.apps[i].error);
    sim_free(&s);
}
