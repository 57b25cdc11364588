/*
 * Connection state machine, handshake and failure modes, each shown over the
 * simulated network; hand-made datagrams probe what a real peer never sends.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <string.h>

#include "conn.h"
#include "lib_sim.h"
#include "wire.h"

static rudp_config quick_cfg(void)
{
    rudp_config c;
    rudp_config_default(&c);
    return c;
}

/* A server that answers every SYN without a cookie with a RETRY: the
 * two-round-trip handshake of RUDP_RETRY=always, and of any server under
 * pressure. */
static rudp_config always_cfg(void)
{
    rudp_config c = quick_cfg();
    c.retry = RUDP_RETRY_ALWAYS;
    return c;
}

/* A DATA packet to `dcid` carrying a PING. */
static size_t make_ping(uint8_t *buf, uint64_t dcid, uint32_t pn)
{
    size_t n = sim_data_hdr(buf, dcid, pn);
    int m = rudp__wire_ping_encode(buf + n, 64 - n);
    return n + (size_t)m;
}

static sim_app *app_on(sim *s, int ep)
{
    for (int i = 0; i < SIM_MAX_APPS; i++)
        if (s->apps[i].used && s->apps[i].ep == ep)
            return &s->apps[i];
    return NULL;
}

/* ---- handshake ---- */

static int tapped_types[64], ntapped;
static void tap_types(sim *s, int from, int to, const uint8_t *buf, size_t len)
{
    (void)s, (void)from, (void)to;
    rudp_hdr h;
    if (ntapped < 64 && rudp__wire_hdr_decode(buf, len, &h) > 0)
        tapped_types[ntapped++] = h.type;
}

Test(handshake, with_retry_always_four_packets_then_data_and_no_server_state_before_the_cookie)
{
    sim s;
    sim_init(&s, 7);
    rudp_config always = always_cfg();
    int a = sim_add_ep(&s, NULL), b = sim_add_ep(&s, &always);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(20);
    sim_app srv = {.expect = UINT64_MAX, .no_shutdown = 1},
            cli = {.expect = UINT64_MAX, .no_shutdown = 1};
    sim_listen(&s, b, &srv, 16);
    ntapped = 0;
    s.tap = tap_types;
    sim_connect(&s, a, b, &cli, NULL);
    /* After one RTT the server has answered with a RETRY and holds nothing. */
    sim_run_until(&s, s.now + RUDP_MS(30));
    cr_assert(eq(int, ntapped, 2));
    cr_assert(eq(int, tapped_types[0], RUDP_PKT_SYN));
    cr_assert(eq(int, tapped_types[1], RUDP_PKT_RETRY));
    cr_assert(eq(sz, rudp_ctx_conn_count(s.ep[b].ctx), 0));
    sim_run_until(&s, s.now + RUDP_MS(100));
    cr_assert(ge(int, ntapped, 5));
    cr_assert(eq(int, tapped_types[2], RUDP_PKT_SYN));
    cr_assert(eq(int, tapped_types[3], RUDP_PKT_SYNACK));
    cr_assert(eq(int, tapped_types[4], RUDP_PKT_DATA));
    cr_assert(eq(int, rudp_conn_state(app_on(&s, a)->conn), RUDP_ESTABLISHED));
    cr_assert(eq(int, rudp_conn_state(app_on(&s, b)->conn), RUDP_ESTABLISHED));
    sim_free(&s);
}

Test(handshake, replies_are_never_larger_than_the_datagram_that_caused_them)
{
    sim s;
    sim_init(&s, 8);
    int r = sim_add_raw_ep(&s), b = sim_add_ep(&s, NULL);
    sim_app srv = {0};
    sim_listen(&s, b, &srv, 16);
    uint8_t syn[1500];
    size_t n = sim_make_syn(syn, 0x1111, NULL, 0);
    sim_raw_send(&s, r, b, syn, n);
    sim_run_until(&s, s.now + RUDP_MS(10));
    cr_assert(eq(int, s.ep[r].ncap, 1));
    cr_assert(le(sz, s.ep[r].cap[0].len, n));
    /* An unpadded SYN gets nothing at all: no amplification. */
    sim_raw_send(&s, r, b, syn, 100);
    sim_run_until(&s, s.now + RUDP_MS(10));
    cr_assert(eq(int, s.ep[r].ncap, 1));
    cr_assert(eq(u64, rudp_ctx_stats(s.ep[b].ctx)->malformed, 1));
    sim_free(&s);
}

/* Seed 000: "send multiple handshakes, keep reading for a while, we should
 * only get one ACK_HANDSHAKE from the peer". */
Test(handshake, duplicate_syns_make_one_connection_and_get_one_synack)
{
    sim s;
    sim_init(&s, 9);
    int r = sim_add_raw_ep(&s), b = sim_add_ep(&s, NULL);
    s.link[r][b].delay = s.link[b][r].delay = RUDP_MS(5);
    sim_app srv = {.expect = UINT64_MAX, .no_shutdown = 1};
    sim_listen(&s, b, &srv, 16);
    uint8_t syn[1500], buf[64];
    /* A burst of five identical handshakes within one retransmission timeout. */
    size_t n = sim_make_syn(syn, 0x2222, NULL, 0);
    for (int i = 0; i < 5; i++)
        sim_raw_send(&s, r, b, syn, n);
    sim_run_until(&s, s.now + RUDP_MS(50));
    cr_assert(eq(int, sim_count_type(&s.ep[r], RUDP_PKT_SYNACK, NULL), 1));
    cr_assert(eq(sz, rudp_ctx_conn_count(s.ep[b].ctx), 1));

    /* Confirm, then more late duplicates; keep reading for a while. */
    rudp_hdr synack;
    sim_last_of_type(&s.ep[r], RUDP_PKT_SYNACK, &synack);
    sim_raw_send(&s, r, b, buf, make_ping(buf, synack.scid, 0));
    sim_run_until(&s, s.now + RUDP_MS(20));
    for (int i = 0; i < 5; i++) {
        sim_raw_send(&s, r, b, syn, n);
        sim_run_until(&s, s.now + RUDP_MS(200));
    }
    sim_run_until(&s, s.now + RUDP_SEC(5));
    cr_assert(eq(int, sim_count_type(&s.ep[r], RUDP_PKT_SYNACK, NULL), 1));
    cr_assert(eq(sz, rudp_ctx_conn_count(s.ep[b].ctx), 1));
    cr_assert(eq(u64, rudp_ctx_stats(s.ep[b].ctx)->conns_accepted, 1));
    sim_app *sv = app_on(&s, b);
    cr_assert_not_null(sv);
    cr_assert(eq(int, rudp_conn_state(sv->conn), RUDP_ESTABLISHED));
    sim_free(&s);
}

Test(handshake, with_retry_always_a_spoofed_source_leaves_no_state)
{
    sim s;
    sim_init(&s, 10);
    rudp_config always = always_cfg();
    int r = sim_add_raw_ep(&s), b = sim_add_ep(&s, &always);
    sim_app srv = {0};
    sim_listen(&s, b, &srv, 16);
    rudp_addr spoofed;
    memset(&spoofed, 0, sizeof spoofed);
    spoofed.family = 2;
    spoofed.port = 4444;
    spoofed.ip[0] = 192;
    spoofed.ip[1] = 0;
    spoofed.ip[2] = 2;
    spoofed.ip[3] = 99;
    uint8_t syn[1500];
    /* A flood of first SYNs from an address that is not ours: the RETRYs
     * go to the victim (nowhere here) and the server keeps nothing. */
    for (int i = 0; i < 1000; i++) {
        size_t n = sim_make_syn(syn, 0x3000 + (uint64_t)i, NULL, 0);
        sim_inject(&s, &spoofed, b, syn, n);
    }
    sim_run_until(&s, s.now + RUDP_MS(10));
    cr_assert(eq(u64, s.void_dgrams, 1000));
    cr_assert(eq(sz, rudp_ctx_conn_count(s.ep[b].ctx), 0));
    cr_assert(eq(u64, s.ep[b].ctx->wheel.count, 0), "no timer may be armed");

    /* A forged cookie, and a real cookie replayed from another address. */
    uint8_t forged[RUDP_TOKEN_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    sim_inject(&s, &spoofed, b, syn, sim_make_syn(syn, 0x3001, forged, sizeof forged));
    sim_raw_send(&s, r, b, syn, sim_make_syn(syn, 0x3002, NULL, 0));
    sim_run_until(&s, s.now + RUDP_MS(10));
    rudp_hdr retry;
    cr_assert(sim_last_of_type(&s.ep[r], RUDP_PKT_RETRY, &retry));
    sim_inject(&s, &spoofed, b, syn, sim_make_syn(syn, 0x3002, retry.token, retry.token_len));
    sim_run_until(&s, s.now + RUDP_MS(10));
    cr_assert(eq(u64, rudp_ctx_stats(s.ep[b].ctx)->bad_token, 2));
    cr_assert(eq(sz, rudp_ctx_conn_count(s.ep[b].ctx), 0));
    cr_assert(eq(u64, s.ep[b].ctx->wheel.count, 0));
    sim_free(&s);
}

Test(handshake, with_retry_always_an_expired_cookie_is_refused_with_a_fresh_one)
{
    sim s;
    sim_init(&s, 11);
    rudp_config always = always_cfg();
    int r = sim_add_raw_ep(&s), b = sim_add_ep(&s, &always);
    sim_app srv = {0};
    sim_listen(&s, b, &srv, 16);
    uint8_t syn[1500];
    sim_raw_send(&s, r, b, syn, sim_make_syn(syn, 0x4444, NULL, 0));
    sim_run_until(&s, s.now + RUDP_MS(10));
    rudp_hdr retry;
    sim_last_of_type(&s.ep[r], RUDP_PKT_RETRY, &retry);
    sim_run_until(&s, s.now + RUDP_SEC(30));
    sim_raw_send(&s, r, b, syn, sim_make_syn(syn, 0x4444, retry.token, retry.token_len));
    sim_run_until(&s, s.now + RUDP_MS(10));
    cr_assert(eq(int, sim_count_type(&s.ep[r], RUDP_PKT_RETRY, NULL), 2));
    cr_assert(eq(int, sim_count_type(&s.ep[r], RUDP_PKT_SYNACK, NULL), 0));
    cr_assert(eq(sz, rudp_ctx_conn_count(s.ep[b].ctx), 0));
    sim_free(&s);
}

Test(handshake, no_listener_refuses_within_one_round_trip)
{
    sim s;
    sim_init(&s, 12);
    int a = sim_add_ep(&s, NULL), b = sim_add_ep(&s, NULL);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(10);
    sim_app cli = {0};
    rudp_time t0 = s.now;
    int ci = sim_connect(&s, a, b, &cli, NULL);
    sim_run_until(&s, s.now + RUDP_SEC(1));
    cr_assert(eq(int, s.apps[ci].error, -ECONNREFUSED));
    cr_assert(le(u64, s.apps[ci].error_time - t0, RUDP_MS(21)));
    sim_free(&s);
}

Test(handshake, unanswered_connect_times_out_at_connect_timeout)
{
    sim s;
    sim_init(&s, 13);
    rudp_config cfg = quick_cfg();
    cfg.connect_timeout = RUDP_SEC(3);
    int a = sim_add_ep(&s, &cfg), r = sim_add_raw_ep(&s);
    sim_app cli = {0};
    rudp_time t0 = s.now;
    int ci = sim_connect(&s, a, r, &cli, NULL);
    sim_run_until(&s, s.now + RUDP_SEC(10));
    cr_assert(eq(int, s.apps[ci].error, -ETIMEDOUT));
    cr_assert(ge(u64, s.apps[ci].error_time - t0, RUDP_SEC(3)));
    cr_assert(le(u64, s.apps[ci].error_time - t0, RUDP_SEC(3) + RUDP_TIMER_TICK_NS));
    cr_assert(ge(int, sim_count_type(&s.ep[r], RUDP_PKT_SYN, NULL), 3), "SYN retransmitted");
    sim_free(&s);
}

/* What the shim's RUDP_FALLBACK needs of a connect in its handshake: a SYN
 * sent again on demand (racing kernel TCP), and whether the peer answered
 * at all (its RETRY: it runs rudp, so no TCP race). */
Test(handshake, a_connect_says_whether_its_peer_answered_and_sends_its_syn_again_when_asked)
{
    sim s;
    sim_init(&s, 14);
    int a = sim_add_ep(&s, NULL), r = sim_add_raw_ep(&s);
    s.link[a][r].delay = s.link[r][a].delay = RUDP_MS(5);
    sim_app cli = {0};
    int ci = sim_connect(&s, a, r, &cli, NULL);
    sim_run_until(&s, s.now + RUDP_MS(20));
    rudp_conn *c = s.apps[ci].conn;
    cr_assert(eq(int, sim_count_type(&s.ep[r], RUDP_PKT_SYN, NULL), 1));
    cr_assert(not(rudp_conn_answered(c)), "a silent peer has not answered");
    rudp_conn_handshake_again(c, s.now);
    sim_run_until(&s, s.now + RUDP_MS(20));
    cr_assert(eq(int, sim_count_type(&s.ep[r], RUDP_PKT_SYN, NULL), 2), "the SYN went again at once");
    cr_assert(eq(int, rudp_conn_state(c), RUDP_SYN_SENT));
    sim_free(&s);

    sim_init(&s, 15);
    a = sim_add_ep(&s, NULL);
    rudp_config always = always_cfg();
    int b = sim_add_ep(&s, &always);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(20);
    sim_app srv = {.expect = UINT64_MAX, .no_shutdown = 1};
    sim_app cli2 = {.expect = UINT64_MAX, .no_shutdown = 1};
    sim_listen(&s, b, &srv, 16);
    ci = sim_connect(&s, a, b, &cli2, NULL);
    c = s.apps[ci].conn;
    /* the first SYN passes; the one with the cookie and those after do not */
    s.link[a][b].cut_at = s.now + RUDP_MS(1);
    sim_run_until(&s, s.now + RUDP_MS(30));
    cr_assert(not(rudp_conn_answered(c)), "no answer within one way's delay");
    sim_run_until(&s, s.now + RUDP_MS(20)); /* the RETRY is in */
    cr_assert(eq(int, rudp_conn_state(c), RUDP_SYN_SENT));
    cr_assert(rudp_conn_answered(c), "a RETRY is an answer: the peer runs rudp");
    /* and stays one while the SYN with the cookie goes unanswered (here
     * lost; a server whose accept queue is full drops it) and the handshake
     * timer sends it again: once, the timer's resend made the connect
     * unanswered, and the shim raced kernel TCP */
    sim_run_until(&s, s.now + RUDP_MS(500));
    cr_assert(ge(u64, s.link[a][b].dropped, 2), "the timer sent the SYN again (twice or more)");
    cr_assert(eq(int, rudp_conn_state(c), RUDP_SYN_SENT));
    cr_assert(rudp_conn_answered(c), "still answered after the timer's resend");
    sim_free(&s);
}

/* A RETRY is remembered for the connect's life (rudp_conn_answered, which
 * holds the shim's fallback back from kernel TCP): only one from the peer's
 * own address counts. A copy from another address, with the right
 * connection ID and a token, is dropped and counted (unknown_conn), and
 * the connect stays unanswered. */
Test(handshake, a_retry_from_another_address_does_not_answer_a_connect)
{
    sim s;
    sim_init(&s, 16);
    int a = sim_add_ep(&s, NULL), r = sim_add_raw_ep(&s), x = sim_add_raw_ep(&s);
    s.link[a][r].delay = s.link[r][a].delay = RUDP_MS(5);
    s.link[x][a].delay = RUDP_MS(1);
    sim_app cli = {0};
    int ci = sim_connect(&s, a, r, &cli, NULL);
    sim_run_until(&s, s.now + RUDP_MS(10));
    rudp_conn *c = s.apps[ci].conn;
    rudp_hdr syn;
    cr_assert(sim_last_of_type(&s.ep[r], RUDP_PKT_SYN, &syn), "the SYN reached r");
    rudp_hdr h;
    memset(&h, 0, sizeof h);
    h.type = RUDP_PKT_RETRY;
    h.dcid = syn.scid;
    h.scid = 0x1234;
    h.token_len = 16;
    memset(h.token, 0xab, 16);
    uint8_t buf[128];
    int n = rudp__wire_hdr_encode(buf, sizeof buf, &h);
    cr_assert(gt(int, n, 0));
    uint64_t unknown = rudp_ctx_stats(s.ep[a].ctx)->unknown_conn;
    sim_raw_send(&s, x, a, buf, (size_t)n);
    sim_run_until(&s, s.now + RUDP_MS(3));
    cr_assert(not(rudp_conn_answered(c)), "a RETRY from another address is no answer");
    cr_assert(eq(u64, rudp_ctx_stats(s.ep[a].ctx)->unknown_conn, unknown + 1), "dropped, counted");
    sim_raw_send(&s, r, a, buf, (size_t)n);
    sim_run_until(&s, s.now + RUDP_MS(10));
    cr_assert(rudp_conn_answered(c), "the same from the peer's address is");
    sim_free(&s);
}

/* ---- failures mid-connection ---- */

/* 10 Mbit/s, 20 ms and a 100 kB queue between a and b, both ways. */
static void slow_path(sim *s, int a, int b)
{
    for (int d = 0; d < 2; d++) {
        sim_link *l = d ? &s->link[b][a] : &s->link[a][b];
        l->delay = RUDP_MS(20);
        l->rate_bps = 10000000;
        l->queue_bytes = 100000;
    }
}

Test(failure, link_cut_mid_transfer_ends_in_etimedout_within_the_budget, .timeout = 20)
{
    sim s;
    sim_init(&s, 14);
    /* The sender's budget is user_timeout; the receiver, which has nothing
     * in flight, learns from keepalive silence within idle_timeout. */
    rudp_config ccfg = quick_cfg(), scfg = quick_cfg();
    ccfg.user_timeout = RUDP_SEC(5);
    ccfg.idle_timeout = 0;
    scfg.keepalive = RUDP_SEC(1);
    scfg.idle_timeout = RUDP_SEC(3);
    int a = sim_add_ep(&s, &ccfg), b = sim_add_ep(&s, &scfg);
    slow_path(&s, a, b);
    sim_app srv = {.expect = UINT64_MAX}, cli = {.to_send = 50000000};
    sim_listen(&s, b, &srv, 16);
    int ci = sim_connect(&s, a, b, &cli, NULL);
    sim_run_until(&s, s.now + RUDP_SEC(2));
    rudp_time cut = s.now;
    s.link[a][b].cut_at = s.link[b][a].cut_at = cut;
    sim_run_until(&s, s.now + RUDP_SEC(20));
    sim_app *c = &s.apps[ci], *sv = app_on(&s, b);
    /* The sender gives up user_timeout after its last progress: an ACK can
     * still arrive up to one path delay plus queue (20 + 80 ms) after the
     * cut. The receiver gives up after idle_timeout of silence. */
    cr_assert(eq(int, c->error, -ETIMEDOUT));
    cr_assert(ge(u64, c->error_time, cut + RUDP_SEC(5) - RUDP_MS(100)));
    cr_assert(le(u64, c->error_time, cut + RUDP_SEC(5) + RUDP_MS(100) + RUDP_TIMER_TICK_NS));
    cr_assert(eq(int, sv->error, -ETIMEDOUT));
    cr_assert(le(u64, sv->error_time, cut + RUDP_SEC(3) + RUDP_MS(100) + RUDP_TIMER_TICK_NS));
    cr_assert(gt(u64, sv->received, 1000000), "the transfer was under way");
    sim_free(&s);
}

Test(failure, abort_mid_transfer_gives_the_peer_econnreset)
{
    sim s;
    sim_init(&s, 15);
    int a = sim_add_ep(&s, NULL), b = sim_add_ep(&s, NULL);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(5);
    sim_app srv = {.expect = UINT64_MAX}, cli = {.to_send = 1000000, .abort_after = 200000};
    sim_listen(&s, b, &srv, 16);
    sim_connect(&s, a, b, &cli, NULL);
    sim_run_until(&s, s.now + RUDP_SEC(5));
    sim_app *sv = app_on(&s, b);
    cr_assert(eq(int, sv->error, -ECONNRESET));
    cr_assert(not(sv->eof), "a reset is not an end of stream");
    cr_assert(eq(u64, rudp_ctx_stats(s.ep[b].ctx)->resets_received, 1));
    sim_free(&s);
}

/* close() with SO_LINGER {1, 0} right after a write: TCP had sent the bytes
 * at write() time, so its peer reads them, then ECONNRESET (CPython's
 * test_ssl TestPreHandshakeClose relies on it). Here the write and the
 * abort fall in one turn, before any flush. */
Test(failure, abort_right_after_a_write_sends_the_bytes_before_the_reset)
{
    sim s;
    sim_init(&s, 15);
    int a = sim_add_ep(&s, NULL), b = sim_add_ep(&s, NULL);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(5);
    sim_app srv = {.expect = UINT64_MAX}, cli = {.to_send = 1000, .abort_after = 1000};
    sim_listen(&s, b, &srv, 16);
    sim_connect(&s, a, b, &cli, NULL);
    sim_run_until(&s, s.now + RUDP_SEC(1));
    sim_app *sv = app_on(&s, b);
    cr_assert(eq(u64, sv->received, 1000), "the bytes written before the abort arrive");
    cr_assert(eq(int, sv->error, -ECONNRESET), "then the reset");
    cr_assert(eq(u64, rudp_ctx_stats(s.ep[b].ctx)->resets_received, 1));
    sim_free(&s);
}

Test(failure, restarted_peer_answers_with_a_stateless_reset)
{
    sim s;
    sim_init(&s, 16);
    int a = sim_add_ep(&s, NULL), b = sim_add_ep(&s, NULL);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(5);
    sim_app srv = {.expect = UINT64_MAX, .no_shutdown = 1},
            cli = {.to_send = 100, .expect = UINT64_MAX, .no_shutdown = 1};
    sim_listen(&s, b, &srv, 16);
    int ci = sim_connect(&s, a, b, &cli, NULL);
    sim_run_until(&s, s.now + RUDP_MS(100));
    cr_assert(eq(u64, app_on(&s, b)->received, 100));
    sim_restart(&s, b, NULL); /* the server process died and came back */
    s.apps[ci].to_send = 200;
    sim_poke_apps(&s);
    sim_run_until(&s, s.now + RUDP_SEC(1));
    cr_assert(eq(int, s.apps[ci].error, -ECONNRESET));
    sim_free(&s);
}

/* A server holding 5000 bytes the client sent, unread (its app paused, its
 * handle kept, no FIN sent): returns it; *ci is the client's app. */
static sim_app *server_with_unread_keyed(sim *s, int seed, int *ci, int keyed)
{
    sim_init(s, (uint64_t)seed);
    int a = sim_add_ep(s, NULL), b = sim_add_ep(s, NULL);
    if (keyed) {
        uint8_t key[RUDP_KEY_LEN];
        memset(key, 9, sizeof key);
        sim_set_key(s, a, key);
        sim_set_key(s, b, key);
    }
    s->link[a][b].delay = s->link[b][a].delay = RUDP_MS(5);
    sim_app srv = {.expect = UINT64_MAX, .paused = 1, .no_release = 1, .no_shutdown = 1},
            cli = {.to_send = 5000, .expect = UINT64_MAX, .no_shutdown = 1};
    sim_listen(s, b, &srv, 16);
    *ci = sim_connect(s, a, b, &cli, NULL);
    sim_run_until(s, s->now + RUDP_MS(100));
    sim_app *sv = app_on(s, b);
    cr_assert(eq(sz, rudp_conn_readable(sv->conn), 5000));
    return sv;
}

static sim_app *server_with_unread(sim *s, int seed, int *ci)
{
    return server_with_unread_keyed(s, seed, ci, 0);
}

/* The server lets its connection go and the client runs on. */
static void release_and_run(sim *s, sim_app *sv)
{
    rudp_conn_release(sv->conn, s->now);
    sv->released = 1;
    sv->conn = NULL;
    sim_run_until(s, s->now + RUDP_MS(100));
}

Test(failure, release_with_unread_data_resets_as_tcp_close_does)
{
    sim s;
    int ci;
    sim_app *sv = server_with_unread(&s, 17, &ci);
    release_and_run(&s, sv);
    cr_assert(eq(int, s.apps[ci].error, -ECONNRESET));
    cr_assert(not(s.apps[ci].eof), "a reset alone: no end of stream");
    sim_free(&s);
}

/* The server writes more than the client's window takes at once (64 KiB
 * at first), then closes with the client's bytes unread: TCP had sent the
 * reply at write time (on loopback, all of it), then reset. Ours waits, a
 * few round trips at most (4 here: 40 ms), for the window to send all of
 * it, then resets: the client reads the whole reply, then ECONNRESET. A
 * reset at once cut it at the window (65,536 bytes). */
static void whole_reply_then_reset(int keyed, double loss)
{
    sim s;
    int ci;
    sim_app *sv = server_with_unread_keyed(&s, 21, &ci, keyed);
    s.link[0][1].loss = s.link[1][0].loss = loss;
    enum { REPLY = 120000 };
    static uint8_t reply[REPLY];
    for (size_t i = 0; i < REPLY; i++)
        reply[i] = sim_pattern(sv->send_seed, i);
    cr_assert(eq(sz, (size_t)rudp_conn_write(sv->conn, s.now, reply, REPLY), (size_t)REPLY),
              "the send buffer takes the whole reply");
    release_and_run(&s, sv);
    sim_app *cl = &s.apps[ci];
    cr_assert(eq(u64, cl->received, REPLY), "the whole reply before the reset");
    cr_assert(not(cl->corrupt));
    cr_assert(eq(int, cl->error, -ECONNRESET), "then the reset");
    cr_assert(not(cl->eof), "a reset alone: no end of stream");
    if (loss > 0)
        cr_assert(gt(u64, rudp_ctx_stats(s.ep[1].ctx)->bytes_retransmitted, 0),
                  "this seed loses some of the reply, which goes again first");
    sim_free(&s);
}

Test(failure, reset_for_unread_data_follows_the_whole_reply)
{
    whole_reply_then_reset(0, 0);
}

/* Keyed, the reset sealed as everything else */
Test(failure, reset_for_unread_data_follows_the_whole_reply_keyed)
{
    whole_reply_then_reset(1, 0);
}

/* 1 % loss each way: a loss found before the reply has all gone out is
 * sent again before the reset (it waits for retransmissions too); one
 * found only after the reset went is lost with the connection, as TCP's */
Test(failure, reset_for_unread_data_follows_the_whole_reply_lossy)
{
    whole_reply_then_reset(0, 0.01);
}

/* The same with a client that does not read: its window never opens, so
 * the reset waits its few round trips (200 ms at least) and goes with the
 * rest unsent, as TCP's (which drops its unsent queue); the connection is
 * gone, not held for the linger's 60 s. The client's bytes sent meanwhile
 * change nothing. */
Test(failure, reset_for_unread_data_waits_a_few_round_trips_at_most)
{
    sim s;
    int ci;
    sim_app *sv = server_with_unread(&s, 22, &ci);
    sim_app *cl = &s.apps[ci];
    cl->paused = 1;
    enum { REPLY = 120000 };
    static uint8_t reply[REPLY];
    memset(reply, 'r', REPLY);
    cr_assert(eq(sz, (size_t)rudp_conn_write(sv->conn, s.now, reply, REPLY), (size_t)REPLY));
    rudp_conn_release(sv->conn, s.now);
    sv->released = 1;
    sv->conn = NULL;
    /* more from the client while the reset waits */
    cl->to_send += 3000;
    sim_poke_apps(&s);
    sim_run_until(&s, s.now + RUDP_MS(150));
    const rudp_stats *st = rudp_ctx_stats(s.ep[sv->ep].ctx);
    cr_assert(eq(u64, st->resets_sent, 0), "no reset before the wait's 200 ms floor");
    sim_run_until(&s, s.now + RUDP_MS(150));
    cr_assert(ge(u64, st->resets_sent, 1), "the reset, within 300 ms (and stateless ones after)");
    cr_assert(eq(sz, rudp_ctx_conn_count(s.ep[sv->ep].ctx), 0), "the server's connection is gone");
    cr_assert(eq(u64, rudp_ctx_stats(s.ep[cl->ep].ctx)->resets_received, 1));
    cr_assert(le(u64, st->stream_bytes_sent, 65536), "no more of the reply than the window took");
    sim_free(&s);
}

/* A client that reads, but slowly (its engine behind on a loaded
 * machine): a 200 KB reply with the client's bytes unread, the client
 * taking what came every 30 ms. Each ACK that moves the reply on starts
 * the reset's wait again (40 ms here), so the whole reply goes before the
 * reset; counted from the close alone, the reset cut it after the first
 * windows. */
Test(failure, reset_for_unread_data_waits_on_while_the_peer_reads)
{
    sim s;
    int ci;
    sim_app *sv = server_with_unread(&s, 23, &ci);
    sim_app *cl = &s.apps[ci];
    cl->no_release = 1; /* it reads what came before the reset after it */
    enum { REPLY = 200000 };
    static uint8_t reply[REPLY];
    for (size_t i = 0; i < REPLY; i++)
        reply[i] = sim_pattern(sv->send_seed, i);
    cr_assert(eq(sz, (size_t)rudp_conn_write(sv->conn, s.now, reply, REPLY), (size_t)REPLY));
    rudp_conn_release(sv->conn, s.now);
    sv->released = 1;
    sv->conn = NULL;
    for (int k = 0; k < 20; k++) {
        cl->paused = 1;
        sim_run_until(&s, s.now + RUDP_MS(30));
        cl->paused = 0;
        sim_poke_apps(&s);
        sim_run_until(&s, s.now + RUDP_MS(1));
    }
    cr_assert(eq(u64, cl->received, REPLY), "the whole reply before the reset");
    cr_assert(not(cl->corrupt));
    cr_assert(eq(int, cl->error, -ECONNRESET), "then the reset");
    cr_assert(not(cl->eof), "a reset alone: no end of stream");
    sim_free(&s);
}

/* Bytes that came after the application closed (the shim finds its end
 * closed when it passes them on): TCP's close() had sent the FIN, and the
 * bytes drew a reset, so the peer reads EOF and gets its reset in
 * CLOSE_WAIT (EPIPE for its writes), not a reset alone. */
Test(failure, close_reset_is_a_fin_then_a_reset)
{
    sim s;
    int ci;
    sim_app *sv = server_with_unread(&s, 17, &ci);
    rudp_conn_close_reset(sv->conn, s.now);
    release_and_run(&s, sv);
    cr_assert(s.apps[ci].eof, "the FIN first: the peer reads EOF");
    cr_assert(eq(int, s.apps[ci].error, -ECONNRESET), "then the reset");
    cr_assert(eq(u64, rudp_ctx_stats(s.ep[s.apps[ci].ep].ctx)->resets_received, 1));
    sim_free(&s);
}

/* The same when only the reset gets there: its frame says where the FIN
 * is, and the peer that has every byte before it takes both. */
Test(failure, close_reset_without_its_fin_still_ends_the_stream)
{
    sim s;
    int ci;
    sim_app *sv = server_with_unread(&s, 18, &ci);
    /* only the reset goes: the FIN is queued, the reset sent at once */
    rudp_conn_shutdown(sv->conn, s.now);
    rudp__conn_abort_code(sv->conn, s.now, RUDP_RESET_AFTER_FIN);
    release_and_run(&s, sv);
    cr_assert(s.apps[ci].eof, "the reset says where the FIN is: the peer reads EOF");
    cr_assert(eq(int, s.apps[ci].error, -ECONNRESET), "then the reset");
    sim_free(&s);
}

/* The client's next datagram, held back: delivered by hand (below). */
static uint8_t held[1500];
static size_t held_len;
static int holding;

static int hold_client_data(sim *s, int from, int to, const uint8_t *buf, size_t len)
{
    (void)s;
    if (!holding || from != 0 || to != 1 || held_len || len > sizeof held)
        return 0;
    memcpy(held, buf, len);
    held_len = len;
    return 1;
}

/* The server writes its reply and closes, and the client's next bytes
 * come in before our turn ends (before rudp_ctx_process sends anything).
 * TCP's close() had sent the reply and its FIN at once; the bytes then
 * drew a reset. Ours must go in the same order: the reply, the FIN, the
 * reset, so the client reads the reply and EOF, then ECONNRESET. A reset
 * sent first lost the reply (the shim's closerace: a server's write and
 * close() in the turn that read the client's next datagram). */
Test(failure, bytes_for_a_released_conn_reset_after_what_it_wrote)
{
    sim s;
    sim_init(&s, 19);
    int a = sim_add_ep(&s, NULL), b = sim_add_ep(&s, NULL);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(5);
    sim_app srv = {.expect = UINT64_MAX, .no_release = 1, .no_shutdown = 1},
            cli = {.expect = UINT64_MAX, .no_shutdown = 1};
    sim_listen(&s, b, &srv, 16);
    int ci = sim_connect(&s, a, b, &cli, NULL);
    sim_run_until(&s, s.now + RUDP_MS(100));
    sim_app *sv = app_on(&s, b);
    cr_assert(sv && sv->established);
    /* the client's next byte, held back on its way */
    held_len = 0;
    holding = 1;
    s.drop = hold_client_data;
    s.apps[ci].to_send = 1;
    sim_poke_apps(&s);
    sim_run_until(&s, s.now + RUDP_MS(1));
    holding = 0;
    cr_assert(held_len > 0, "the client's byte left it");
    /* the reply and the close, then that byte in the same turn */
    uint8_t reply[8];
    for (size_t i = 0; i < sizeof reply; i++)
        reply[i] = sim_pattern(sv->send_seed, i);
    cr_assert(eq(sz, (size_t)rudp_conn_write(sv->conn, s.now, reply, sizeof reply), sizeof reply));
    rudp_conn_release(sv->conn, s.now);
    sv->released = 1;
    sv->conn = NULL;
    sim_inject(&s, &s.ep[a].addr, b, held, held_len);
    sim_run_until(&s, s.now + RUDP_MS(100));
    sim_app *cl = &s.apps[ci];
    cr_assert(eq(u64, cl->received, sizeof reply), "the reply reached the client");
    cr_assert(not(cl->corrupt));
    cr_assert(cl->eof, "then the FIN: the client reads EOF");
    cr_assert(eq(int, cl->error, -ECONNRESET), "then the reset");
    sim_free(&s);
}

/* ---- closing ---- */

static int log_is(const sim_ep *e, const char *const *want, int n)
{
    if (e->nlog != n)
        return 0;
    for (int i = 0; i < n; i++)
        if (strcmp(e->log[i], want[i]) != 0)
            return 0;
    return 1;
}

static void dump_log(const sim_ep *e)
{
    for (int i = 0; i < e->nlog; i++)
        cr_log_info("  %s", e->log[i]);
}

Test(close, active_and_passive_close_walk_tcps_states)
{
    sim s;
    sim_init(&s, 18);
    int a = sim_add_ep(&s, NULL), b = sim_add_ep(&s, NULL);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(10);
    sim_log_transitions(&s, a);
    sim_log_transitions(&s, b);
    /* The server answers after the client's FIN, as a request/response
     * server does: the client closes actively, the server passively. */
    sim_app srv = {.to_send = 1000, .expect = 100}, cli = {.to_send = 100, .expect = 1000};
    sim_listen(&s, b, &srv, 16);
    sim_connect(&s, a, b, &cli, NULL);
    cr_assert(sim_run(&s, s.now + RUDP_SEC(10)));
    static const char *const client[] = {"CLOSED -> SYN_SENT", "SYN_SENT -> ESTABLISHED",
                                         "ESTABLISHED -> FIN_WAIT_1", "FIN_WAIT_1 -> FIN_WAIT_2",
                                         "FIN_WAIT_2 -> TIME_WAIT", "TIME_WAIT -> CLOSED"};
    static const char *const server[] = {"CLOSED -> SYN_RCVD", "SYN_RCVD -> ESTABLISHED",
                                         "ESTABLISHED -> CLOSE_WAIT", "CLOSE_WAIT -> LAST_ACK",
                                         "LAST_ACK -> CLOSED"};
    dump_log(&s.ep[a]);
    dump_log(&s.ep[b]);
    cr_assert(log_is(&s.ep[a], client, 6), "client transitions differ (see log)");
    cr_assert(log_is(&s.ep[b], server, 5), "server transitions differ (see log)");
    sim_free(&s);
}

/* Steps s 1 ms at a time until c is in state `want` (at most `limit`). */
static int step_until_state(sim *s, rudp_conn *c, rudp_state want, rudp_time limit)
{
    while (rudp_conn_state(c) != want && s->now < limit)
        sim_run_until(s, s->now + RUDP_MS(1));
    return rudp_conn_state(c) == want;
}

Test(close, time_wait_starts_again_when_the_peers_fin_comes_again)
{
    sim s;
    sim_init(&s, 21);
    int a = sim_add_ep(&s, NULL), b = sim_add_ep(&s, NULL);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(10);
    sim_log_transitions(&s, b);
    /* the server closes only when told: the client waits in FIN_WAIT_2 */
    sim_app srv = {.to_send = 1000, .expect = 100, .no_shutdown = 1},
            cli = {.to_send = 100, .expect = 1000};
    sim_listen(&s, b, &srv, 16);
    int ci = sim_connect(&s, a, b, &cli, NULL);
    rudp_conn *c = s.apps[ci].conn;
    cr_assert(step_until_state(&s, c, RUDP_FIN_WAIT_2, s.now + RUDP_SEC(10)));
    /* From here the client's ACKs are lost: the server sends its FIN
     * again after a probe timeout, while the client waits in TIME_WAIT. */
    s.link[a][b].cut_at = s.now;
    sim_app *sv = app_on(&s, b);
    rudp_conn_shutdown(sv->conn, s.now);
    sv->shut = 1;
    cr_assert(step_until_state(&s, c, RUDP_TIME_WAIT, s.now + RUDP_SEC(10)));
    rudp_time entered = s.now;
    rudp_time pto = rudp__rtt_pto(&c->rtt, c->cfg.max_ack_delay);
    uint64_t drain0 = c->timers[RUDP_T_DRAIN].tick;
    cr_assert(rudp__timer_armed(&c->timers[RUDP_T_DRAIN]));
    uint64_t rx = s.link[b][a].sent;
    while (s.link[b][a].sent == rx && s.now < entered + 2 * pto)
        sim_run_until(&s, s.now + RUDP_MS(1));
    cr_assert(gt(u64, s.link[b][a].sent, rx), "the server sent its FIN again within 2 PTOs");
    sim_run_until(&s, s.now + RUDP_MS(15)); /* it arrives */
    cr_assert(eq(int, rudp_conn_state(c), RUDP_TIME_WAIT));
    cr_assert(gt(u64, c->timers[RUDP_T_DRAIN].tick, drain0),
              "the FIN in TIME_WAIT started the wait again");
    cr_assert(eq(int, c->tw_restarts, 1), "counted, against RUDP_TW_RESTARTS");
    /* the link back: the next copy is answered, the server closes cleanly */
    s.link[a][b].cut_until = s.now;
    sim_run_until(&s, s.now + RUDP_SEC(10));
    const sim_ep *e = &s.ep[b];
    dump_log(e);
    cr_assert(eq(str, (char *)e->log[e->nlog - 1], "LAST_ACK -> CLOSED"));
    cr_assert(eq(int, app_on(&s, b)->error, 0), "no reset reached the server");
    sim_free(&s);
}

Test(close, simultaneous_close_goes_through_closing)
{
    sim s;
    sim_init(&s, 19);
    int a = sim_add_ep(&s, NULL), b = sim_add_ep(&s, NULL);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(10);
    sim_app srv = {.expect = 0, .paused = 1, .no_shutdown = 1},
            cli = {.expect = 0, .paused = 1, .no_shutdown = 1};
    sim_listen(&s, b, &srv, 16);
    int ci = sim_connect(&s, a, b, &cli, NULL);
    sim_run_until(&s, s.now + RUDP_MS(100));
    sim_log_transitions(&s, a);
    sim_log_transitions(&s, b);
    sim_app *c = &s.apps[ci], *sv = app_on(&s, b);
    /* Both shut down at the same instant: each FIN crosses the other. */
    rudp_conn_shutdown(c->conn, s.now);
    rudp_conn_shutdown(sv->conn, s.now);
    c->shut = sv->shut = 1;
    c->paused = sv->paused = 0;
    sim_run_until(&s, s.now + RUDP_SEC(5));
    static const char *const both[] = {"ESTABLISHED -> FIN_WAIT_1", "FIN_WAIT_1 -> CLOSING",
                                       "CLOSING -> TIME_WAIT", "TIME_WAIT -> CLOSED"};
    dump_log(&s.ep[a]);
    dump_log(&s.ep[b]);
    cr_assert(log_is(&s.ep[a], both, 4));
    cr_assert(log_is(&s.ep[b], both, 4));
    sim_free(&s);
}

Test(close, half_close_keeps_the_other_direction_flowing)
{
    sim s;
    sim_init(&s, 20);
    int a = sim_add_ep(&s, NULL), b = sim_add_ep(&s, NULL);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(10);
    /* The client sends nothing and shuts down at once; the server then
     * streams 3 MB back, which must all arrive after the client's FIN. */
    sim_app srv = {.to_send = 3000000, .expect = 0, .send_seed = 5},
            cli = {.expect = 3000000, .recv_seed = 5};
    sim_listen(&s, b, &srv, 16);
    int ci = sim_connect(&s, a, b, &cli, NULL);
    cr_assert(sim_run(&s, s.now + RUDP_SEC(30)));
    cr_assert(eq(u64, s.apps[ci].received, 3000000));
    cr_assert(not(s.apps[ci].corrupt));
    sim_free(&s);
}

/* ---- where a packet is built ---- */

/* A caller that offers room in its own batch (rudp_ctx_ops' tx_room, as the
 * shim's engine does) has its DATA packets built there and sent from there:
 * 3 MB from the server (endpoint 1, which offers it: lib_sim.c's ep_room)
 * under 2 % loss both ways, so retransmissions too, keyed or not, arrive as
 * written; the client (endpoint 0) builds in the context's own buffer. */
static void room_transfer(int keyed)
{
    sim s;
    sim_init(&s, 21);
    int a = sim_add_ep(&s, NULL), b = sim_add_ep(&s, NULL);
    if (keyed) {
        uint8_t key[RUDP_KEY_LEN];
        memset(key, 7, sizeof key);
        sim_set_key(&s, a, key);
        sim_set_key(&s, b, key);
    }
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(10);
    s.link[a][b].loss = s.link[b][a].loss = 0.02;
    sim_app srv = {.to_send = 3000000, .expect = 100000, .send_seed = 5, .recv_seed = 6},
            cli = {.to_send = 100000, .expect = 3000000, .send_seed = 6, .recv_seed = 5};
    sim_listen(&s, b, &srv, 16);
    int ci = sim_connect(&s, a, b, &cli, NULL);
    cr_assert(sim_run(&s, s.now + RUDP_SEC(60)));
    cr_assert(eq(u64, s.apps[ci].received, 3000000));
    cr_assert(not(s.apps[ci].corrupt));
    sim_app *sv = app_on(&s, b);
    cr_assert(sv && sv->received == 100000 && !sv->corrupt);
    cr_assert(gt(u64, s.ep[b].sent_in_room, 2000), "built in the room: %llu",
              (unsigned long long)s.ep[b].sent_in_room);
    cr_assert(eq(u64, s.ep[a].sent_in_room, 0));
    cr_assert(gt(u64, s.link[b][a].dropped, 0)); /* losses, so packets built again */
    sim_free(&s);
}

Test(output, a_packet_built_in_the_callers_room_arrives_as_built)
{
    room_transfer(0);
}

Test(output, a_keyed_packet_built_in_the_callers_room_arrives_as_built)
{
    room_transfer(1);
}

/* ---- what a real peer never sends ---- */

typedef struct pair {
    sim s;
    int a, b;
    sim_app *c, *sv;
} pair;

static void pair_up(pair *p, uint64_t seed, const rudp_config *cfg)
{
    sim_init(&p->s, seed);
    p->a = sim_add_ep(&p->s, cfg);
    p->b = sim_add_ep(&p->s, cfg);
    p->s.link[p->a][p->b].delay = p->s.link[p->b][p->a].delay = RUDP_MS(5);
    sim_app srv = {.expect = UINT64_MAX, .no_shutdown = 1, .no_release = 1},
            cli = {.expect = UINT64_MAX, .no_shutdown = 1, .no_release = 1};
    sim_listen(&p->s, p->b, &srv, 16);
    int ci = sim_connect(&p->s, p->a, p->b, &cli, NULL);
    sim_run_until(&p->s, p->s.now + RUDP_MS(100));
    p->c = &p->s.apps[ci];
    p->sv = app_on(&p->s, p->b);
    cr_assert_not_null(p->sv);
}

/* Sends a DATA packet from the client's address to the server connection,
 * with the next packet number the server expects, carrying `frames`. */
static void inject_to_server(pair *p, const uint8_t *frames, size_t flen)
{
    rudp_conn_info si, ci;
    rudp_conn_get_info(p->sv->conn, &si);
    rudp_conn_get_info(p->c->conn, &ci);
    uint8_t buf[1500];
    size_t n = sim_data_hdr(buf, si.local_cid, (uint32_t)(p->sv->conn->rx_largest + 1));
    memcpy(buf + n, frames, flen);
    sim_inject(&p->s, &p->s.ep[p->a].addr, p->b, buf, n + flen);
    sim_run_until(&p->s, p->s.now + RUDP_MS(1));
}

/* The shim publishes TCP_INFO's state on events: the ACK of a FIN that
 * carried no data must still make one, or the app sees FIN_WAIT_1 for ever. */
Test(close, the_ack_of_a_bare_fin_is_an_event_in_fin_wait_2)
{
    pair p;
    pair_up(&p, 24, NULL);
    p.c->events = 0;
    rudp_conn_shutdown(p.c->conn, p.s.now);
    p.c->shut = 1;
    cr_assert(eq(int, rudp_conn_state(p.c->conn), RUDP_FIN_WAIT_1));
    sim_run_until(&p.s, p.s.now + RUDP_MS(100));
    cr_assert(eq(int, rudp_conn_state(p.c->conn), RUDP_FIN_WAIT_2));
    cr_assert(ne(u32, p.c->events & RUDP_EV_ACKED, 0), "no event when the FIN was acknowledged");
    sim_free(&p.s);
}

Test(illegal, stream_data_beyond_the_advertised_window_is_dropped_not_acked)
{
    rudp_config cfg = quick_cfg();
    cfg.recv_window = 64 * 1024;
    pair p;
    pair_up(&p, 21, &cfg);
    uint64_t before = rudp_ctx_stats(p.s.ep[p.b].ctx)->protocol_errors;
    uint64_t largest = p.sv->conn->rx_largest;
    uint8_t f[64];
    int n = rudp__wire_stream_hdr_encode(f, sizeof f, 64 * 1024 - 2, 4, 0, 1);
    memset(f + n, 'x', 4);
    inject_to_server(&p, f, (size_t)n + 4);
    cr_assert(eq(u64, rudp_ctx_stats(p.s.ep[p.b].ctx)->protocol_errors, before + 1));
    cr_assert(eq(u64, p.sv->conn->rx_largest, largest), "the packet must not be acknowledged");
    cr_assert(eq(sz, rudp_conn_readable(p.sv->conn), 0));
    cr_assert(eq(int, rudp_conn_state(p.sv->conn), RUDP_ESTABLISHED));
    sim_free(&p.s);
}

Test(illegal, a_changed_final_size_is_a_protocol_error)
{
    pair p;
    pair_up(&p, 22, NULL);
    uint8_t f[64];
    int n = rudp__wire_stream_hdr_encode(f, sizeof f, 0, 3, 1, 1);
    memcpy(f + n, "abc", 3);
    inject_to_server(&p, f, (size_t)n + 3);
    cr_assert(eq(int, rudp_conn_state(p.sv->conn), RUDP_CLOSE_WAIT));
    uint64_t before = rudp_ctx_stats(p.s.ep[p.b].ctx)->protocol_errors;
    n = rudp__wire_stream_hdr_encode(f, sizeof f, 0, 5, 1, 1);
    memcpy(f + n, "abcde", 5);
    inject_to_server(&p, f, (size_t)n + 5);
    cr_assert(eq(u64, rudp_ctx_stats(p.s.ep[p.b].ctx)->protocol_errors, before + 1));
    n = rudp__wire_stream_hdr_encode(f, sizeof f, 3, 2, 0, 1);
    memcpy(f + n, "de", 2);
    inject_to_server(&p, f, (size_t)n + 2);
    cr_assert(eq(u64, rudp_ctx_stats(p.s.ep[p.b].ctx)->protocol_errors, before + 2));
    cr_assert(eq(u64, p.sv->received, 3), "only the first, consistent bytes");
    cr_assert(p.sv->eof);
    sim_free(&p.s);
}

Test(illegal, an_ack_of_a_packet_never_sent_is_rejected)
{
    pair p;
    pair_up(&p, 23, NULL);
    uint64_t before = rudp_ctx_stats(p.s.ep[p.b].ctx)->protocol_errors;
    rudp_ack_range r = {.lo = 0, .hi = 1000000};
    uint8_t f[64];
    size_t w;
    int n = rudp__wire_ack_encode(f, sizeof f, &r, 1, 0, &w);
    inject_to_server(&p, f, (size_t)n);
    cr_assert(eq(u64, rudp_ctx_stats(p.s.ep[p.b].ctx)->protocol_errors, before + 1));
    cr_assert(eq(int, rudp_conn_state(p.sv->conn), RUDP_ESTABLISHED));
    sim_free(&p.s);
}

Test(illegal, handshake_packets_in_the_wrong_state_change_nothing)
{
    pair p;
    pair_up(&p, 24, NULL);
    rudp_conn_info si, ci;
    rudp_conn_get_info(p.sv->conn, &si);
    rudp_conn_get_info(p.c->conn, &ci);
    uint64_t before = rudp_ctx_stats(p.s.ep[p.b].ctx)->protocol_errors;
    /* SYNACK and RETRY addressed to the (server's) established connection. */
    uint8_t buf[128];
    rudp_hdr h;
    memset(&h, 0, sizeof h);
    h.type = RUDP_PKT_SYNACK;
    h.dcid = si.local_cid;
    h.scid = 77;
    int n = rudp__wire_hdr_encode(buf, sizeof buf, &h);
    sim_inject(&p.s, &p.s.ep[p.a].addr, p.b, buf, (size_t)n);
    h.type = RUDP_PKT_RETRY;
    h.token_len = 4;
    n = rudp__wire_hdr_encode(buf, sizeof buf, &h);
    sim_inject(&p.s, &p.s.ep[p.a].addr, p.b, buf, (size_t)n);
    sim_run_until(&p.s, p.s.now + RUDP_MS(1));
    cr_assert(eq(u64, rudp_ctx_stats(p.s.ep[p.b].ctx)->protocol_errors, before + 2));
    cr_assert(eq(int, rudp_conn_state(p.sv->conn), RUDP_ESTABLISHED));
    /* A RETRY to the established client is ignored likewise. */
    uint64_t cbefore = rudp_ctx_stats(p.s.ep[p.a].ctx)->protocol_errors;
    h.dcid = ci.local_cid;
    n = rudp__wire_hdr_encode(buf, sizeof buf, &h);
    sim_inject(&p.s, &p.s.ep[p.b].addr, p.a, buf, (size_t)n);
    sim_run_until(&p.s, p.s.now + RUDP_MS(1));
    cr_assert(eq(u64, rudp_ctx_stats(p.s.ep[p.a].ctx)->protocol_errors, cbefore + 1));
    cr_assert(eq(int, rudp_conn_state(p.c->conn), RUDP_ESTABLISHED));
    sim_free(&p.s);
}

Test(illegal, data_before_synack_is_dropped_in_syn_sent)
{
    sim s;
    sim_init(&s, 25);
    int a = sim_add_ep(&s, NULL), r = sim_add_raw_ep(&s);
    sim_app cli = {0};
    int ci = sim_connect(&s, a, r, &cli, NULL);
    sim_run_until(&s, s.now + RUDP_MS(1));
    rudp_conn_info info;
    rudp_conn_get_info(s.apps[ci].conn, &info);
    uint8_t buf[64];
    sim_raw_send(&s, r, a, buf, make_ping(buf, info.local_cid, 0));
    sim_run_until(&s, s.now + RUDP_MS(1));
    cr_assert(eq(u64, rudp_ctx_stats(s.ep[a].ctx)->protocol_errors, 1));
    cr_assert(eq(int, rudp_conn_state(s.apps[ci].conn), RUDP_SYN_SENT));
    sim_free(&s);
}

Test(illegal, datagrams_for_unknown_connections_get_a_smaller_stateless_reset)
{
    sim s;
    sim_init(&s, 26);
    int r = sim_add_raw_ep(&s), b = sim_add_ep(&s, NULL);
    uint8_t buf[64];
    size_t n = make_ping(buf, 0xdeadbeef, 5);
    sim_raw_send(&s, r, b, buf, n);
    sim_run_until(&s, s.now + RUDP_MS(1));
    cr_assert(eq(int, sim_count_type(&s.ep[r], RUDP_PKT_RESET, NULL), 1));
    cr_assert(lt(sz, s.ep[r].cap[0].len, n));
    /* never a reset for a reset: no loops */
    sim_raw_send(&s, r, b, s.ep[r].cap[0].data, s.ep[r].cap[0].len);
    sim_run_until(&s, s.now + RUDP_MS(1));
    cr_assert(eq(int, s.ep[r].ncap, 1));
    sim_free(&s);
}

Test(illegal, a_quiet_listener_drops_unknown_ids_unanswered_until_its_time)
{
    sim s;
    sim_init(&s, 26);
    int r = sim_add_raw_ep(&s), b = sim_add_ep(&s, NULL);
    rudp_listener *l;
    cr_assert(eq(int, rudp_listen(s.ep[b].ctx, 1, NULL, 16, &l), 0));
    rudp_listener_quiet_resets(l, s.now + RUDP_SEC(1));
    uint8_t buf[64];
    size_t n = make_ping(buf, 0xdeadbeef, 5);
    sim_raw_send(&s, r, b, buf, n);
    sim_run_until(&s, s.now + RUDP_MS(1));
    cr_assert(eq(int, s.ep[r].ncap, 0), "no reset while quiet");
    cr_assert(eq(u64, rudp_ctx_stats(s.ep[b].ctx)->unknown_conn, 1), "dropped and counted");
    sim_run_until(&s, s.now + RUDP_SEC(1));
    sim_raw_send(&s, r, b, buf, n);
    sim_run_until(&s, s.now + RUDP_MS(1));
    cr_assert(eq(int, sim_count_type(&s.ep[r], RUDP_PKT_RESET, NULL), 1), "the reset once its time is up");
    sim_free(&s);
}

/* ---- flow control and liveness ---- */

Test(flow, a_reader_that_stops_holds_the_sender_to_the_window_then_resumes, .timeout = 20)
{
    sim s;
    sim_init(&s, 27);
    rudp_config cfg = quick_cfg();
    cfg.recv_window = 64 * 1024;
    int a = sim_add_ep(&s, &cfg), b = sim_add_ep(&s, &cfg);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(10);
    s.link[b][a].loss = 0.3; /* window updates get lost too */
    sim_app srv = {.expect = 2000000, .paused = 1, .recv_seed = 3},
            cli = {.to_send = 2000000, .send_seed = 3};
    sim_listen(&s, b, &srv, 16);
    sim_connect(&s, a, b, &cli, NULL);
    sim_run_until(&s, s.now + RUDP_SEC(5));
    sim_app *sv = app_on(&s, b);
    cr_assert(eq(sz, rudp_conn_readable(sv->conn), 64 * 1024), "receiver holds one window");
    cr_assert(le(u64, sv->conn->bytes_received, 64 * 1024), "nothing beyond the window");
    cr_assert(le(u64, rudp_ctx_stats(s.ep[a].ctx)->stream_bytes_sent, 64 * 1024),
              "the sender respected the window");
    sv->paused = 0;
    sim_poke_apps(&s);
    cr_assert(sim_run(&s, s.now + RUDP_SEC(300)));
    cr_assert(eq(u64, sv->received, 2000000));
    cr_assert(not(sv->corrupt));
    sim_free(&s);
}

/* Client a and server b, 10 ms apart, both with this keepalive and idle
 * timeout, neither side sending nor ending: the client's app index. */
static int idle_pair(sim *s, uint64_t seed, rudp_time keepalive, rudp_time idle, sim_app *srv,
                     sim_app *cli)
{
    sim_init(s, seed);
    rudp_config cfg = quick_cfg();
    cfg.keepalive = keepalive;
    cfg.idle_timeout = idle;
    int a = sim_add_ep(s, &cfg), b = sim_add_ep(s, &cfg);
    cr_assert(eq(int, a, 0));
    cr_assert(eq(int, b, 1));
    s->link[a][b].delay = s->link[b][a].delay = RUDP_MS(10);
    *srv = (sim_app){.expect = UINT64_MAX, .no_shutdown = 1};
    *cli = (sim_app){.expect = UINT64_MAX, .no_shutdown = 1};
    sim_listen(s, b, srv, 16);
    return sim_connect(s, a, b, cli, NULL);
}

Test(liveness, keepalive_keeps_an_idle_connection_and_idle_timeout_finds_a_dead_peer)
{
    sim s;
    sim_app srv, cli;
    int a = 0, b = 1;
    int ci = idle_pair(&s, 28, RUDP_SEC(1), RUDP_SEC(3), &srv, &cli);
    sim_run_until(&s, s.now + RUDP_SEC(30)); /* ten idle timeouts */
    cr_assert(eq(int, s.apps[ci].error, 0));
    cr_assert(eq(int, rudp_conn_state(s.apps[ci].conn), RUDP_ESTABLISHED));
    cr_assert(gt(u64, rudp_ctx_stats(s.ep[a].ctx)->dgrams_out, 20), "keepalives flowed");
    s.ep[b].down = 1; /* the peer vanishes without a word */
    rudp_time gone = s.now;
    sim_run_until(&s, s.now + RUDP_SEC(10));
    cr_assert(eq(int, s.apps[ci].error, -ETIMEDOUT));
    cr_assert(le(u64, s.apps[ci].error_time, gone + RUDP_SEC(3) + RUDP_MS(1)));
    s.ep[b].down = 0;
    sim_free(&s);
}

/* TCP_KEEPIDLE 2, TCP_KEEPINTVL 1, TCP_KEEPCNT 3 on a live socket: the shim
 * shortens the connection's keepalive to 2 s and its idle timeout to 5 s
 * (rudp_conn_set_timeouts), which count from the peer's last packet, as
 * TCP's from its last segment. Before, the options were kept for
 * getsockopt only, and a dead peer was found at the idle timeout (120 s by
 * default), not at 5 s (a helper's hunt). */
Test(liveness, timeouts_set_on_a_live_connection_count_from_the_last_packet)
{
    sim s;
    sim_app srv, cli;
    int b = 1;
    int ci = idle_pair(&s, 31, RUDP_SEC(15), RUDP_SEC(120), &srv, &cli);
    sim_run_until(&s, s.now + RUDP_SEC(1));
    cr_assert(eq(int, rudp_conn_state(s.apps[ci].conn), RUDP_ESTABLISHED));
    s.ep[b].down = 1; /* the peer vanishes without a word */
    rudp_time gone = s.now;
    sim_run_until(&s, s.now + RUDP_SEC(1));
    rudp_conn_set_timeouts(s.apps[ci].conn, s.now, RUDP_SEC(2), RUDP_SEC(5), 0);
    sim_run_until(&s, gone + RUDP_SEC(10));
    cr_assert(eq(int, s.apps[ci].error, -ETIMEDOUT));
    cr_assert(le(u64, s.apps[ci].error_time, gone + RUDP_SEC(5)),
              "the idle timeout counted from the set, not from the last packet");
    s.ep[b].down = 0;
    sim_free(&s);
}

/* The same with the timers off and on again: keepalive 0 and idle 0 turn
 * them off (a live peer's silence then ends nothing), and a keepalive not
 * shorter than the idle timeout is taken as half of it. */
Test(liveness, timeouts_turned_off_end_nothing_and_on_again_find_the_dead_peer)
{
    sim s;
    sim_app srv, cli;
    int b = 1;
    int ci = idle_pair(&s, 32, RUDP_SEC(1), RUDP_SEC(3), &srv, &cli);
    sim_run_until(&s, s.now + RUDP_SEC(1));
    rudp_conn_set_timeouts(s.apps[ci].conn, s.now, 0, 0, 0);
    s.ep[b].down = 1;
    sim_run_until(&s, s.now + RUDP_SEC(20));
    cr_assert(eq(int, s.apps[ci].error, 0), "off, yet the silence ended it");
    rudp_time on = s.now;
    rudp_conn_set_timeouts(s.apps[ci].conn, s.now, RUDP_SEC(9), RUDP_SEC(4), 0);
    sim_run_until(&s, s.now + RUDP_SEC(10));
    cr_assert(eq(int, s.apps[ci].error, -ETIMEDOUT));
    cr_assert(le(u64, s.apps[ci].error_time, on + RUDP_MS(1)),
              "silent 20 s already: past 4 s, it ends at once");
    s.ep[b].down = 0;
    sim_free(&s);
}

/* TCP_USER_TIMEOUT bounds how long sent data may go unacknowledged; a
 * reader with nothing to send is not ended by it, only by its idle
 * timeout (TCP's idle reader by nothing at all). Before, the reader's
 * keepalive PINGs, which ask for an answer, ran the user timeout: a
 * TCP_USER_TIMEOUT of 8 s ended an idle reader 8 s into an outage (a
 * helper's hunt in namespaces). */
Test(liveness, the_user_timeout_does_not_end_a_reader_with_nothing_to_send)
{
    sim s;
    sim_init(&s, 33);
    rudp_config cfg = quick_cfg();
    cfg.keepalive = RUDP_SEC(1);
    cfg.idle_timeout = RUDP_SEC(20);
    cfg.user_timeout = RUDP_SEC(2);
    int a = sim_add_ep(&s, &cfg), b = sim_add_ep(&s, &cfg);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(10);
    sim_app srv = {.to_send = 1000, .expect = UINT64_MAX, .no_shutdown = 1},
            cli = {.expect = UINT64_MAX, .no_shutdown = 1};
    sim_listen(&s, b, &srv, 16);
    int ci = sim_connect(&s, a, b, &cli, NULL);
    sim_run_until(&s, s.now + RUDP_SEC(1));
    cr_assert(eq(u64, s.apps[ci].received, 1000));
    s.ep[b].down = 1; /* the writer vanishes; the reader keeps probing it */
    rudp_time gone = s.now;
    sim_run_until(&s, gone + RUDP_SEC(15));
    cr_assert(eq(int, s.apps[ci].error, 0), "the user timeout ended a reader (cause %d)",
              s.apps[ci].cause);
    sim_run_until(&s, gone + RUDP_SEC(25));
    cr_assert(eq(int, s.apps[ci].error, -ETIMEDOUT));
    cr_assert(eq(int, s.apps[ci].cause, RUDP_CAUSE_IDLE_TIMEOUT));
    cr_assert(le(u64, s.apps[ci].error_time, gone + RUDP_SEC(20) + RUDP_MS(100)));
    s.ep[b].down = 0;
    sim_free(&s);
}

/* A writer 10 Mbit/s and 20 ms from its reader, with keepalive 1 s, idle
 * timeout 3 s and user timeout 10 s; the path goes dark 2 s in, for
 * `dark` (0: for good). The reader's idle timeout is a minute. */
static int dark_writer(sim *s, uint64_t seed, rudp_time dark, sim_app *srv, sim_app *cli)
{
    sim_init(s, seed);
    rudp_config wcfg = quick_cfg(), rcfg = quick_cfg();
    wcfg.keepalive = RUDP_SEC(1);
    wcfg.idle_timeout = RUDP_SEC(3);
    wcfg.user_timeout = RUDP_SEC(10);
    rcfg.idle_timeout = RUDP_SEC(60);
    int a = sim_add_ep(s, &wcfg), b = sim_add_ep(s, &rcfg);
    slow_path(s, a, b);
    *srv = (sim_app){.expect = 8000000};
    *cli = (sim_app){.to_send = 8000000};
    sim_listen(s, b, srv, 16);
    int ci = sim_connect(s, a, b, cli, NULL);
    sim_run_until(s, s->now + RUDP_SEC(2));
    s->link[a][b].cut_at = s->link[b][a].cut_at = s->now;
    s->link[a][b].cut_until = s->link[b][a].cut_until = dark ? s->now + dark : 0;
    return ci;
}

/* At the defaults a transfer lives through a path dark for 150 s both
 * ways, as kernel TCP's (its writer gives up after about 15 minutes,
 * tcp_retries2; its reader never). With 120 s user and idle timeouts both
 * ends ended at 120 s (a helper's hunt: an 8 GB upload in namespaces). */
Test(liveness, the_defaults_keep_a_transfer_through_a_150s_outage, .timeout = 60)
{
    sim s;
    sim_init(&s, 36);
    int a = sim_add_ep(&s, NULL), b = sim_add_ep(&s, NULL);
    slow_path(&s, a, b);
    sim_app srv = {.expect = 8000000}, cli = {.to_send = 8000000};
    sim_listen(&s, b, &srv, 16);
    int ci = sim_connect(&s, a, b, &cli, NULL);
    sim_run_until(&s, s.now + RUDP_SEC(2));
    rudp_time cut = s.now;
    s.link[a][b].cut_at = s.link[b][a].cut_at = cut;
    s.link[a][b].cut_until = s.link[b][a].cut_until = cut + RUDP_SEC(150);
    sim_run_until(&s, cut + RUDP_SEC(200));
    sim_app *c = &s.apps[ci], *sv = app_on(&s, b);
    cr_assert(eq(int, c->error, 0), "the writer ended (cause %d)", c->cause);
    cr_assert(eq(int, sv->error, 0), "the reader ended (cause %d)", sv->cause);
    cr_assert(gt(u64, sv->received, 0));
    cr_assert(eq(u64, sv->received, 8000000), "the transfer completed");
    cr_assert(not(sv->corrupt));
    sim_free(&s);
}

/* The idle timeout is for a connection with nothing in flight: while
 * stream data waits for its acknowledgement the user timeout decides, as
 * TCP's keepalive waits while its write queue holds data. Before, an
 * SO_KEEPALIVE of 5 + 2 x 3 s (the shim's idle timeout of 11 s) ended a
 * writer 11 s into an outage, where TCP's resumed (a helper's hunt). */
Test(liveness, the_idle_timeout_waits_while_stream_data_is_unacknowledged, .timeout = 30)
{
    sim s;
    sim_app srv, cli;
    int ci = dark_writer(&s, 34, RUDP_SEC(8), &srv, &cli);
    rudp_time cut = s.now;
    sim_run_until(&s, cut + RUDP_SEC(60));
    sim_app *c = &s.apps[ci], *sv = app_on(&s, 1);
    cr_assert(eq(int, c->error, 0), "an 8 s outage ended the writer (cause %d, at %.1f s)",
              c->cause, (double)(c->error_time - cut) / 1e9);
    cr_assert(eq(u64, sv->received, 8000000), "the transfer completed");
    cr_assert(not(sv->corrupt));
    sim_free(&s);

    /* dark for good: the user timeout, counted from the last progress */
    ci = dark_writer(&s, 35, 0, &srv, &cli);
    cut = s.now;
    sim_run_until(&s, cut + RUDP_SEC(20));
    c = &s.apps[ci];
    cr_assert(eq(int, c->error, -ETIMEDOUT));
    cr_assert(eq(int, c->cause, RUDP_CAUSE_USER_TIMEOUT));
    cr_assert(ge(u64, c->error_time, cut + RUDP_SEC(10) - RUDP_MS(200)));
    cr_assert(le(u64, c->error_time, cut + RUDP_SEC(10) + RUDP_MS(200) + RUDP_TIMER_TICK_NS));
    sim_free(&s);
}

/* A writer blocked by a reader that stopped reading probes the window as
 * TCP's persist timer does: from the probe timeout, doubling, up to the
 * keepalive interval, so a reader that then dies is probed (and, on a real
 * host, found by the port unreachable its kernel answers: icmp.c) within
 * about the time it was blocked, not at the next keepalive 15 s on (a
 * helper's hunt: a proxy and a database held a killed client's sender for
 * 15 s where TCP's took 0.3 s). A reader alive but stalled for minutes
 * costs a probe per keepalive interval, as before. */
/* Client a (ep 0) writes `to_send` bytes to server b (ep 1), `delay` away,
 * whose app reads nothing; the client's app index. */
static int stalled_pair(sim *s, uint64_t seed, rudp_time delay, uint64_t to_send, sim_app *srv,
                        sim_app *cli)
{
    sim_init(s, seed);
    int a = sim_add_ep(s, NULL), b = sim_add_ep(s, NULL);
    s->link[a][b].delay = s->link[b][a].delay = delay;
    *srv = (sim_app){.expect = UINT64_MAX, .paused = 1, .no_shutdown = 1, .no_release = 1};
    *cli = (sim_app){.to_send = to_send, .no_shutdown = 1, .no_release = 1};
    sim_listen(s, b, srv, 16);
    return sim_connect(s, a, b, cli, NULL);
}

Test(flow, a_blocked_writer_probes_the_window_from_the_probe_timeout_up, .timeout = 20)
{
    sim s;
    sim_app srv, cli;
    int a = 0, b = 1;
    int ci = stalled_pair(&s, 37, RUDP_MS(10), 4000000, &srv, &cli);
    sim_run_until(&s, s.now + RUDP_SEC(2));
    cr_assert(lt(u64, s.apps[ci].sent, 4000000), "the writer is blocked by the window");
    const rudp_stats *st = rudp_ctx_stats(s.ep[a].ctx);
    /* alive and stalled: a probe per keepalive interval at most, once
     * backed off */
    uint64_t before = st->dgrams_out;
    sim_run_until(&s, s.now + RUDP_SEC(120));
    uint64_t stalled = st->dgrams_out - before;
    cr_assert(le(u64, stalled, 120 / 15 + 2), "%llu probes in 120 s of a stalled reader",
              (unsigned long long)stalled);
    cr_assert(ge(u64, stalled, 120 / 15 - 1));
    /* blocked anew (the reader reads a little, then stops), then gone:
     * probed within a few probe timeouts */
    app_on(&s, b)->paused = 0;
    sim_poke_apps(&s);
    sim_run_until(&s, s.now + RUDP_MS(50));
    app_on(&s, b)->paused = 1;
    sim_run_until(&s, s.now + RUDP_SEC(2));
    s.ep[b].down = 1;
    before = st->dgrams_out;
    sim_run_until(&s, s.now + RUDP_SEC(4));
    cr_assert(ge(u64, st->dgrams_out - before, 1), "no probe within 4 s of the reader's end");
    s.ep[b].down = 0;
    sim_free(&s);
}

Test(flow, a_stalled_reader_keeps_the_initial_window_whatever_the_maximum, .timeout = 20)
{
    /* With the default 8 MiB maximum, a reader that never reads holds the
     * sender to the initial window: auto-tuning grows it only while the
     * application keeps up. */
    sim s;
    sim_app srv, cli;
    int a = 0, b = 1;
    stalled_pair(&s, 29, RUDP_MS(20), 20000000, &srv, &cli);
    sim_run_until(&s, s.now + RUDP_SEC(10));
    sim_app *sv = app_on(&s, b);
    cr_assert(eq(u64, sv->conn->rwnd, RUDP_RWND_INITIAL));
    cr_assert(le(u64, rudp_ctx_stats(s.ep[a].ctx)->stream_bytes_sent, RUDP_RWND_INITIAL),
              "the sender was held to the initial window");
    sim_free(&s);
}

Test(flow, a_reader_that_reads_nothing_takes_64_kib_as_tcp_does, .timeout = 20)
{
    /* Linux starts a connection's window at half of tcp_rmem[1] (128 KiB):
     * a peer that reads nothing holds a writer to about 64 KiB, and
     * programs count on their writes queueing there (libuv's
     * tcp_write_queue_order). The shim's unix socket to the app holds as
     * much again (bridgepump.c, shim_bridge_efd_size). It was 256 KiB. */
    sim s;
    sim_init(&s, 31);
    int a = sim_add_ep(&s, NULL), b = sim_add_ep(&s, NULL);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(1);
    sim_app srv = {.expect = UINT64_MAX, .paused = 1, .no_shutdown = 1, .no_release = 1},
            cli = {.to_send = 1000000, .no_shutdown = 1, .no_release = 1};
    sim_listen(&s, b, &srv, 16);
    sim_connect(&s, a, b, &cli, NULL);
    sim_run_until(&s, s.now + RUDP_SEC(5));
    cr_assert(le(u64, rudp_ctx_stats(s.ep[a].ctx)->stream_bytes_sent, 64 * 1024),
              "the sender went past 64 KiB: %" PRIu64,
              rudp_ctx_stats(s.ep[a].ctx)->stream_bytes_sent);
    cr_assert(ge(u64, rudp_ctx_stats(s.ep[a].ctx)->stream_bytes_sent, 64 * 1024 - 1500),
              "the window is open to 64 KiB");
    sim_free(&s);
}

Test(flow, a_reader_that_keeps_up_grows_the_window_past_the_bdp, .timeout = 20)
{
    /* 100 Mbit/s x 40 ms = 500 KB in flight: the initial 256 KiB window
     * would cap the flow near 50 Mbit/s; DATA_BLOCKED makes it grow. */
    sim s;
    sim_init(&s, 30);
    int a = sim_add_ep(&s, NULL), b = sim_add_ep(&s, NULL);
    for (int d = 0; d < 2; d++) {
        sim_link *l = d ? &s.link[b][a] : &s.link[a][b];
        l->delay = RUDP_MS(20);
        l->rate_bps = 100000000;
        l->queue_bytes = 500000;
    }
    sim_app srv = {.expect = 30000000, .recv_seed = 4},
            cli = {.to_send = 30000000, .send_seed = 4};
    sim_listen(&s, b, &srv, 16);
    sim_connect(&s, a, b, &cli, NULL);
    sim_run_until(&s, s.now + RUDP_SEC(2));
    sim_app *sv = app_on(&s, b);
    cr_assert(ge(u64, sv->conn->rwnd, 1u << 20), "window %llu",
              (unsigned long long)sv->conn->rwnd);
    cr_assert(sim_run(&s, s.now + RUDP_SEC(60)));
    cr_assert(eq(u64, sv->received, 30000000));
    cr_assert(not(sv->corrupt));
    sim_free(&s);
}
