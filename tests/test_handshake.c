/*
 * The handshake's front door (core/ctx.c, budget.c rudp__must_retry, conn.c):
 * one round trip when the server is not under pressure, the stateless
 * RETRY past half the backlog or half a source's share, and the 3x budget
 * of an address not validated yet (RFC 9000 §8.1). Over the simulated
 * network, with hand-made SYNs from raw endpoints and spoofed addresses.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <string.h>

#include "conn.h"
#include "lib_sim.h"
#include "wire.h"

static rudp_addr spoofed(unsigned n)
{
    rudp_addr a;
    memset(&a, 0, sizeof a);
    a.family = 2;
    a.port = (uint16_t)(1024 + n % 60000);
    a.ip[0] = 198;
    a.ip[1] = 18;
    a.ip[2] = (uint8_t)(n >> 8);
    a.ip[3] = (uint8_t)n;
    return a;
}

static int tapped[64], ntapped;
static rudp_time tapped_at[64];
static void tap_types(sim *s, int from, int to, const uint8_t *buf, size_t len)
{
    (void)from, (void)to;
    rudp_hdr h;
    if (ntapped < 64 && rudp__wire_hdr_decode(buf, len, &h) > 0) {
        tapped_at[ntapped] = s->now;
        tapped[ntapped++] = h.type;
    }
}

/* A client 20 ms (one way) from a server listening with `backlog`; the
 * server's defaults `scfg` (NULL: the library's). */
static void pair(sim *s, uint64_t seed, const rudp_config *scfg, unsigned backlog, int *a, int *b)
{
    sim_init(s, seed);
    *a = sim_add_ep(s, NULL);
    *b = sim_add_ep(s, scfg);
    s->link[*a][*b].delay = s->link[*b][*a].delay = RUDP_MS(20);
    sim_listen(s, *b, &(sim_app){.expect = UINT64_MAX, .no_shutdown = 1}, backlog);
}

/* A raw endpoint r (hand-made datagrams, what comes back captured) 5 ms
 * from a server b with defaults `scfg` listening with backlog 16. */
static void raw_pair(sim *s, uint64_t seed, const rudp_config *scfg, int *r, int *b)
{
    sim_init(s, seed);
    *r = sim_add_raw_ep(s);
    *b = sim_add_ep(s, scfg);
    s->link[*r][*b].delay = s->link[*b][*r].delay = RUDP_MS(5);
    sim_listen(s, *b, &(sim_app){.expect = UINT64_MAX, .no_shutdown = 1}, 16);
}

Test(handshake_1rtt, a_syn_gets_a_synack_at_once_and_the_client_is_established_after_one_rtt)
{
    sim s;
    int a, b;
    pair(&s, 101, NULL, 16, &a, &b);
    ntapped = 0;
    s.tap = tap_types;
    rudp_time t0 = s.now;
    int ci = sim_connect(&s, a, b, &(sim_app){.expect = UINT64_MAX, .no_shutdown = 1}, NULL);
    /* one round trip (40 ms), and not a moment before */
    sim_run_until(&s, t0 + RUDP_MS(39));
    cr_assert(eq(int, rudp_conn_state(s.apps[ci].conn), RUDP_SYN_SENT));
    sim_run_until(&s, t0 + RUDP_MS(40));
    cr_assert(eq(int, rudp_conn_state(s.apps[ci].conn), RUDP_ESTABLISHED));
    cr_assert(eq(int, ntapped, 3), "SYN, SYNACK and the client's first DATA");
    cr_assert(eq(int, tapped[0], RUDP_PKT_SYN));
    cr_assert(eq(int, tapped[1], RUDP_PKT_SYNACK));
    cr_assert(eq(int, tapped[2], RUDP_PKT_DATA));
    cr_assert(eq(u64, tapped_at[1] - t0, RUDP_MS(20)), "the SYNACK left as the SYN arrived");
    sim_run_until(&s, t0 + RUDP_MS(61));
    sim_app *sv = sim_app_on(&s, b);
    cr_assert_not_null(sv, "accepted on the client's first DATA");
    cr_assert(eq(int, rudp_conn_state(sv->conn), RUDP_ESTABLISHED));
    const rudp_stats *st = rudp_ctx_stats(s.ep[b].ctx);
    cr_assert(eq(u64, st->handshakes_direct, 1));
    cr_assert(eq(u64, st->retries_sent, 0));
    cr_assert(eq(u64, st->synacks_capped, 0));
    cr_assert(eq(u64, rudp_ctx_stats(s.ep[a].ctx)->dgrams_out, 2), "SYN and one DATA");
    sim_free(&s);
}

/* Keyed mode keeps its MACs: the SYN and the SYNACK are sealed, and the
 * handshake is one round trip all the same. */
Test(handshake_1rtt, keyed_the_sealed_syn_gets_a_sealed_synack_in_one_rtt)
{
    static const uint8_t key[RUDP_KEY_LEN] = {7, 7, 7, 7};
    sim s;
    int a, b;
    sim_init(&s, 102);
    a = sim_add_ep(&s, NULL);
    b = sim_add_ep(&s, NULL);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(20);
    sim_set_key(&s, a, key);
    sim_set_key(&s, b, key);
    sim_listen(&s, b, &(sim_app){.expect = UINT64_MAX, .no_shutdown = 1}, 16);
    rudp_time t0 = s.now;
    int ci = sim_connect(&s, a, b, &(sim_app){.expect = UINT64_MAX, .no_shutdown = 1}, NULL);
    sim_run_until(&s, t0 + RUDP_MS(40));
    cr_assert(eq(int, rudp_conn_state(s.apps[ci].conn), RUDP_ESTABLISHED));
    cr_assert(eq(u64, rudp_ctx_stats(s.ep[b].ctx)->handshakes_direct, 1));
    cr_assert(eq(u64, rudp_ctx_stats(s.ep[b].ctx)->retries_sent, 0));
    /* a SYN from a stranger (no MAC) gets no RETRY or SYNACK: only the
     * 16-byte KEY refusal (keystate.c), to its ID */
    int r = sim_add_raw_ep(&s);
    uint8_t syn[1500];
    sim_raw_send(&s, r, b, syn, sim_make_syn(syn, 0x5151, NULL, 0));
    sim_run_until(&s, s.now + RUDP_MS(100));
    cr_assert(eq(int, s.ep[r].ncap, 1));
    cr_assert(eq(sz, s.ep[r].cap[0].len, RUDP_WIRE_SHORT_HDR));
    rudp_hdr h;
    cr_assert(eq(int, rudp__wire_hdr_decode(s.ep[r].cap[0].data, s.ep[r].cap[0].len, &h),
                 RUDP_WIRE_SHORT_HDR));
    cr_assert(eq(int, h.type, RUDP_PKT_RESET));
    cr_assert(eq(int, h.flags, RUDP_PKTF_KEY | RUDP_PKTF_KEYED));
    cr_assert(eq(u64, h.dcid, 0x5151));
    cr_assert(eq(u64, rudp_ctx_stats(s.ep[b].ctx)->handshakes_rejected, 1));
    cr_assert(eq(u64, rudp_ctx_stats(s.ep[b].ctx)->handshakes_direct, 1));
    sim_free(&s);
}

Test(handshake_1rtt, past_half_the_backlog_syns_get_retries_and_the_cookie_path_still_works)
{
    sim s;
    int a, b;
    pair(&s, 103, NULL, 8, &a, &b);
    /* A flood from spoofed addresses: the first four (half the backlog)
     * make half-open connections whose SYNACKs go nowhere; the rest get
     * stateless RETRYs, which go nowhere either. */
    uint8_t syn[1500];
    for (unsigned i = 0; i < 200; i++) {
        rudp_addr from = spoofed(i);
        sim_inject(&s, &from, b, syn, sim_make_syn(syn, 0x7000 + i, NULL, 0));
    }
    sim_run_until(&s, s.now + RUDP_MS(5));
    const rudp_stats *st = rudp_ctx_stats(s.ep[b].ctx);
    cr_assert(eq(sz, rudp_ctx_conn_count(s.ep[b].ctx), 4));
    cr_assert(eq(u64, st->handshakes_direct, 4));
    cr_assert(eq(u64, st->retries_halfopen, 196));
    cr_assert(eq(u64, st->retries_sent, 196));
    cr_assert(eq(u64, s.void_dgrams, 200));
    cr_assert(le(u64, s.void_bytes, 200ull * RUDP_MIN_SYN_SIZE), "no reply larger than its SYN");

    /* An honest client now: RETRY, SYN with the cookie, SYNACK (two
     * round trips), and it is served. */
    ntapped = 0;
    s.tap = tap_types;
    rudp_time t0 = s.now;
    int ci = sim_connect(&s, a, b, &(sim_app){.expect = UINT64_MAX, .no_shutdown = 1}, NULL);
    sim_run_until(&s, t0 + RUDP_MS(80));
    cr_assert(eq(int, rudp_conn_state(s.apps[ci].conn), RUDP_ESTABLISHED));
    cr_assert(ge(int, ntapped, 4));
    cr_assert(eq(int, tapped[1], RUDP_PKT_RETRY));
    cr_assert(eq(int, tapped[3], RUDP_PKT_SYNACK));
    sim_run_until(&s, s.now + RUDP_MS(30));
    cr_assert_not_null(sim_app_on(&s, b), "the honest client was accepted");
    cr_assert(eq(u64, st->conns_accepted, 1));
    cr_assert(eq(u64, st->bad_token, 0));

    /* The spoofed half-open connections end at connect_timeout; then SYNs
     * are answered at once again. */
    sim_run_until(&s, s.now + RUDP_SEC(31));
    cr_assert(eq(sz, rudp_ctx_conn_count(s.ep[b].ctx), 1), "only the honest connection is left");
    rudp_addr from = spoofed(999);
    sim_inject(&s, &from, b, syn, sim_make_syn(syn, 0x7999, NULL, 0));
    sim_run_until(&s, s.now + RUDP_MS(5));
    cr_assert(eq(u64, st->handshakes_direct, 5));
    sim_free(&s);
}

Test(handshake_1rtt, past_half_its_share_a_source_gets_retries_and_the_cookie_path_still_works)
{
    sim s;
    sim_init(&s, 104);
    rudp_config scfg;
    rudp_config_default(&scfg);
    scfg.source_limit = 4;
    int r = sim_add_raw_ep(&s), b = sim_add_ep(&s, &scfg), a = sim_add_ep(&s, NULL);
    s.link[r][b].delay = s.link[b][r].delay = RUDP_MS(5);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(5);
    sim_listen(&s, b, &(sim_app){.expect = UINT64_MAX, .no_shutdown = 1}, 64);
    uint8_t syn[1500];
    /* One address, new client IDs: two (half of 4) are answered at once. */
    for (uint64_t id = 1; id <= 3; id++)
        sim_raw_send(&s, r, b, syn, sim_make_syn(syn, 0x8000 + id, NULL, 0));
    sim_run_until(&s, s.now + RUDP_MS(20));
    const rudp_stats *st = rudp_ctx_stats(s.ep[b].ctx);
    cr_assert(eq(int, sim_count_type(&s.ep[r], RUDP_PKT_SYNACK, NULL), 2));
    cr_assert(eq(int, sim_count_type(&s.ep[r], RUDP_PKT_RETRY, NULL), 1));
    cr_assert(eq(u64, st->retries_source, 1));
    cr_assert(eq(u64, st->retries_halfopen, 0));
    /* Its cookie gets it the third connection. */
    rudp_hdr retry;
    cr_assert(sim_last_of_type(&s.ep[r], RUDP_PKT_RETRY, &retry));
    cr_assert(eq(u64, retry.dcid, 0x8003));
    sim_raw_send(&s, r, b, syn, sim_make_syn(syn, 0x8003, retry.token, retry.token_len));
    sim_run_until(&s, s.now + RUDP_MS(20));
    cr_assert(eq(int, sim_count_type(&s.ep[r], RUDP_PKT_SYNACK, NULL), 3));
    cr_assert(eq(sz, rudp_ctx_conn_count(s.ep[b].ctx), 3));
    /* Another source is not held up by this one: one round trip. */
    int ci = sim_connect(&s, a, b, &(sim_app){.expect = UINT64_MAX, .no_shutdown = 1}, NULL);
    sim_run_until(&s, s.now + RUDP_MS(10));
    cr_assert(eq(int, rudp_conn_state(s.apps[ci].conn), RUDP_ESTABLISHED));
    cr_assert(eq(u64, st->handshakes_direct, 3));
    cr_assert(eq(u64, st->retries_sent, 1));
    sim_free(&s);
}

Test(handshake_1rtt, the_3x_budget_stops_synack_retransmissions_to_an_unvalidated_address)
{
    sim s;
    rudp_config scfg;
    rudp_config_default(&scfg);
    scfg.connect_timeout = RUDP_SEC(600); /* long enough to spend the budget */
    int r, b;
    raw_pair(&s, 105, &scfg, &r, &b);
    /* One SYN, never confirmed (a spoofed source would never confirm). */
    uint8_t syn[1500];
    size_t n = sim_make_syn(syn, 0x9001, NULL, 0);
    sim_raw_send(&s, r, b, syn, n);
    sim_run_until(&s, s.now + RUDP_SEC(300));
    size_t bytes;
    int synacks = sim_count_type(&s.ep[r], RUDP_PKT_SYNACK, &bytes);
    const rudp_stats *st = rudp_ctx_stats(s.ep[b].ctx);
    cr_assert(gt(int, synacks, 1), "the SYNACK is retransmitted");
    cr_assert(le(sz, bytes, 3 * n), "%zu bytes of SYNACKs for a %zu-byte SYN", bytes, n);
    cr_assert(gt(sz, bytes + 3 * 64, 3 * n), "the budget was used up, not more");
    cr_assert(eq(u64, st->synacks_capped, 1));
    cr_assert(eq(u64, s.ep[b].ctx->wheel.count, 1), "no retransmission timer, only GIVEUP");
    cr_assert(eq(sz, rudp_ctx_conn_count(s.ep[b].ctx), 1));

    /* The client's SYN again: more budget, the SYNACK goes once more. */
    sim_raw_send(&s, r, b, syn, n);
    sim_run_until(&s, s.now + RUDP_MS(20));
    cr_assert(eq(int, sim_count_type(&s.ep[r], RUDP_PKT_SYNACK, NULL), synacks + 1));

    /* GIVEUP ends it at connect_timeout, quietly. */
    sim_run_until(&s, s.now + RUDP_SEC(301));
    cr_assert(eq(sz, rudp_ctx_conn_count(s.ep[b].ctx), 0));
    cr_assert(eq(u64, s.ep[b].ctx->wheel.count, 0));
    sim_free(&s);

    /* A validated address (a cookie) has no such bound: retransmissions
     * go on past 3x, as before. */
    scfg.retry = RUDP_RETRY_ALWAYS;
    raw_pair(&s, 106, &scfg, &r, &b);
    sim_raw_send(&s, r, b, syn, n);
    sim_run_until(&s, s.now + RUDP_MS(20));
    rudp_hdr retry;
    cr_assert(sim_last_of_type(&s.ep[r], RUDP_PKT_RETRY, &retry));
    sim_raw_send(&s, r, b, syn, sim_make_syn(syn, 0x9001, retry.token, retry.token_len));
    sim_run_until(&s, s.now + RUDP_SEC(300));
    sim_count_type(&s.ep[r], RUDP_PKT_SYNACK, &bytes);
    cr_assert(gt(sz, bytes, 3 * n));
    cr_assert(eq(u64, rudp_ctx_stats(s.ep[b].ctx)->synacks_capped, 0));
    sim_free(&s);
}

/* Whatever a stranger sends in a SYN's place changes nothing: no
 * connection, no timer, each counted. */
Test(handshake_1rtt, a_forged_or_garbled_syn_changes_nothing)
{
    sim s;
    int r, b;
    raw_pair(&s, 107, NULL, &r, &b);
    const rudp_stats *st = rudp_ctx_stats(s.ep[b].ctx);
    uint8_t syn[1500];
    sim_make_syn(syn, 0xa001, NULL, 0);
    /* unpadded: nothing, not even a RETRY */
    sim_raw_send(&s, r, b, syn, RUDP_MIN_SYN_SIZE - 1);
    /* a forged cookie: a RETRY (stateless), never a connection */
    uint8_t forged[RUDP_TOKEN_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    sim_raw_send(&s, r, b, syn, sim_make_syn(syn, 0xa002, forged, sizeof forged));
    /* a cookie of the wrong length */
    sim_raw_send(&s, r, b, syn, sim_make_syn(syn, 0xa003, forged, 5));
    /* bits flipped through the header: bad magic, version, type, lengths */
    for (size_t bit = 0; bit < 8 * 24; bit++) {
        sim_make_syn(syn, 0xa004, NULL, 0);
        syn[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        rudp_hdr h;
        int hl = rudp__wire_hdr_decode(syn, RUDP_MIN_SYN_SIZE, &h);
        if (hl > 0 && h.type == RUDP_PKT_SYN && h.token_len == 0)
            continue; /* still a well-formed first SYN (another ID, a parameter) */
        sim_raw_send(&s, r, b, syn, RUDP_MIN_SYN_SIZE);
    }
    sim_run_until(&s, s.now + RUDP_MS(50));
    cr_assert(eq(sz, rudp_ctx_conn_count(s.ep[b].ctx), 0));
    cr_assert(eq(u64, s.ep[b].ctx->wheel.count, 0), "no timer may be armed");
    cr_assert(eq(u64, st->handshakes_direct, 0));
    cr_assert(eq(int, sim_count_type(&s.ep[r], RUDP_PKT_SYNACK, NULL), 0));
    cr_assert(ge(u64, st->bad_token, 2));
    cr_assert(ge(u64, st->malformed, 1));
    cr_assert(eq(u64, st->retries_sent, st->bad_token), "RETRYs only for the bad cookies");
    /* and a real SYN afterwards is answered at once */
    sim_raw_send(&s, r, b, syn, sim_make_syn(syn, 0xa005, NULL, 0));
    sim_run_until(&s, s.now + RUDP_MS(20));
    cr_assert(eq(int, sim_count_type(&s.ep[r], RUDP_PKT_SYNACK, NULL), 1));
    sim_free(&s);
}

/* The caller's stamps (rudp_ctx_set_rx_stamp): a server connection keeps
 * that of the SYN it was made from and that of the datagram that completed
 * its handshake (the shim orders accept() by them across its engines,
 * shim/engine/fifo.c). The tap stamps each datagram the client sends as it
 * leaves; nothing else reaches the server meanwhile. */
static int stamp_server;
static void tap_stamp(sim *s, int from, int to, const uint8_t *buf, size_t len)
{
    rudp_hdr h;
    if (to == stamp_server && rudp__wire_hdr_decode(buf, len, &h) > 0)
        rudp_ctx_set_rx_stamp(s->ep[to].ctx, h.type == RUDP_PKT_SYN ? 111 : 222);
    (void)from;
}

Test(handshake_1rtt, a_server_connection_keeps_the_stamps_of_its_syn_and_of_its_first_data)
{
    sim s;
    int a, b;
    pair(&s, 107, NULL, 16, &a, &b);
    stamp_server = b;
    s.tap = tap_stamp;
    sim_connect(&s, a, b, &(sim_app){.expect = UINT64_MAX, .no_shutdown = 1}, NULL);
    sim_run_until(&s, s.now + RUDP_MS(61));
    sim_app *sv = sim_app_on(&s, b);
    cr_assert_not_null(sv, "accepted on the client's first DATA");
    cr_assert(eq(u64, rudp_conn_syn_stamp(sv->conn), 111));
    cr_assert(eq(u64, rudp_conn_accept_stamp(sv->conn), 222));
    sim_free(&s);
}

/* raw_pair with the raw client at 127.0.0.1 and a listener that reports
 * its SYNs at once (early accept), its queue taking them by hand only. */
static void loopback_raw_pair(sim *s, uint64_t seed, const rudp_config *scfg, int *r, int *b)
{
    raw_pair(s, seed, scfg, r, b);
    rudp_listener_set_early_accept(s->ep[*b].listener, 1);
    s->ep[*b].accepted_by_hand = 1;
    memset(s->ep[*r].addr.ip, 0, sizeof s->ep[*r].addr.ip);
    s->ep[*r].addr.ip[0] = 127;
    s->ep[*r].addr.ip[3] = 1;
}

/* loopback_raw_pair with the default configuration, and the raw client's
 * first SYN (client ID scid, into syn[1500]) sent: its length. */
static size_t loopback_syn_sent(sim *s, uint64_t seed, rudp_config *scfg, int *r, int *b,
                                uint64_t scid, uint8_t *syn)
{
    rudp_config_default(scfg);
    loopback_raw_pair(s, seed, scfg, r, b);
    size_t n = sim_make_syn(syn, scid, NULL, 0);
    sim_raw_send(s, *r, *b, syn, n);
    return n;
}

/* rudp_listener_set_early_accept: a SYN from a loopback address is
 * reported (RUDP_EV_ACCEPT) at once, and its SYNACK waits until the
 * caller's accept queue holds the connection (rudp_conn_accepted), so a
 * client's connect() never returns before its connection is queued, as
 * over Linux TCP on loopback; a SYN again meanwhile earns nothing (Linux
 * drops SYNs while its accept queue is full). A connection reported so
 * and never completed ends with an error its holder sees, not silently. */
Test(handshake_1rtt, a_loopback_syn_is_reported_at_once_and_its_synack_waits_for_the_queue)
{
    sim s;
    rudp_config scfg;
    int r, b;
    uint8_t syn[1500];
    size_t n = loopback_syn_sent(&s, 108, &scfg, &r, &b, 0x9101, syn);
    sim_run_until(&s, s.now + RUDP_MS(20));
    sim_app *app = sim_app_on(&s, b);
    cr_assert(not(eq(ptr, app, NULL)), "reported at its SYN");
    cr_assert(eq(int, rudp_conn_state(app->conn), RUDP_SYN_RCVD));
    cr_assert(eq(int, sim_count_type(&s.ep[r], RUDP_PKT_SYNACK, NULL), 0), "SYNACK held");
    sim_raw_send(&s, r, b, syn, n);
    sim_run_until(&s, s.now + RUDP_MS(20));
    cr_assert(eq(int, sim_count_type(&s.ep[r], RUDP_PKT_SYNACK, NULL), 0), "still held");

    rudp_conn_accepted(app->conn, s.now);
    sim_run_until(&s, s.now + RUDP_MS(20));
    cr_assert(eq(int, sim_count_type(&s.ep[r], RUDP_PKT_SYNACK, NULL), 1));

    /* The client never confirms: GIVEUP tells the holder. */
    sim_run_until(&s, s.now + scfg.connect_timeout + RUDP_SEC(1));
    cr_assert(eq(int, app->error, -ECONNRESET));
    cr_assert(eq(int, app->cause, RUDP_CAUSE_HANDSHAKE_TIMEOUT));
    sim_free(&s);

    /* From any other address: answered at once, reported at its first
     * DATA only (as before). */
    raw_pair(&s, 109, &scfg, &r, &b);
    rudp_listener_set_early_accept(s.ep[b].listener, 1);
    sim_raw_send(&s, r, b, syn, n);
    sim_run_until(&s, s.now + RUDP_MS(20));
    cr_assert(eq(int, sim_count_type(&s.ep[r], RUDP_PKT_SYNACK, NULL), 1));
    cr_assert(eq(ptr, sim_app_on(&s, b), NULL));
    sim_free(&s);
}

/* A loopback SYN whose SYNACK the accept queue holds RUDP_HELD_NOTICE is
 * answered by one RETRY marked RUDP_PKTF_HELD (the client then waits for
 * rudp, not racing kernel TCP at its probe delay: shim/engine/fallback.c);
 * the SYN again with its cookie makes no second connection and earns
 * nothing more; the queue taking it sends the SYNACK. One taken before
 * the notice's time gets none. */
Test(handshake_1rtt, a_loopback_syn_held_past_the_notice_gets_one_held_retry)
{
    sim s;
    rudp_config scfg;
    int r, b;
    uint8_t syn[1500];
    size_t n = loopback_syn_sent(&s, 112, &scfg, &r, &b, 0x9102, syn);
    sim_run_until(&s, s.now + RUDP_HELD_NOTICE - RUDP_MS(1));
    cr_assert(eq(int, sim_count_type(&s.ep[r], RUDP_PKT_RETRY, NULL), 0), "not before its time");
    sim_run_until(&s, s.now + RUDP_MS(20));
    cr_assert(eq(int, sim_count_type(&s.ep[r], RUDP_PKT_RETRY, NULL), 1), "one RETRY");
    rudp_hdr h;
    cr_assert(sim_last_of_type(&s.ep[r], RUDP_PKT_RETRY, &h));
    cr_assert(ne(int, h.flags & RUDP_PKTF_HELD, 0), "marked held");
    cr_assert(eq(u64, h.dcid, 0x9102), "to the client's ID");
    cr_assert(gt(u32, (uint32_t)h.token_len, 0), "with a cookie");
    cr_assert(eq(u64, s.ep[b].ctx->stats.held_noticed, 1));
    cr_assert(eq(u64, s.ep[b].ctx->stats.retries_sent, 0), "not a cookie under pressure");
    /* the client's SYN again, with the cookie: the same connection, nothing more */
    n = sim_make_syn(syn, 0x9102, h.token, h.token_len);
    sim_raw_send(&s, r, b, syn, n);
    sim_run_until(&s, s.now + RUDP_SEC(1));
    cr_assert(eq(int, sim_count_type(&s.ep[r], RUDP_PKT_RETRY, NULL), 1), "told once");
    cr_assert(eq(int, sim_count_type(&s.ep[r], RUDP_PKT_SYNACK, NULL), 0), "still held");
    cr_assert(eq(u64, rudp_ctx_conn_count(s.ep[b].ctx), 1), "no second connection");
    sim_app *app = sim_app_on(&s, b);
    cr_assert_not_null(app);
    rudp_conn_accepted(app->conn, s.now);
    sim_run_until(&s, s.now + RUDP_MS(20));
    cr_assert(eq(int, sim_count_type(&s.ep[r], RUDP_PKT_SYNACK, NULL), 1), "the queue took it");
    sim_free(&s);

    /* taken within the notice's time: no RETRY */
    loopback_syn_sent(&s, 113, &scfg, &r, &b, 0x9103, syn);
    sim_run_until(&s, s.now + RUDP_MS(10));
    app = sim_app_on(&s, b);
    cr_assert_not_null(app);
    rudp_conn_accepted(app->conn, s.now);
    sim_run_until(&s, s.now + RUDP_MS(20));
    cr_assert(eq(int, sim_count_type(&s.ep[r], RUDP_PKT_SYNACK, NULL), 1));
    sim_run_until(&s, s.now + RUDP_SEC(1)); /* the SYNACK's own repeats only */
    cr_assert(eq(int, sim_count_type(&s.ep[r], RUDP_PKT_RETRY, NULL), 0));
    cr_assert(eq(u64, s.ep[b].ctx->stats.held_noticed, 0));
    sim_free(&s);
}

/* The client's side of it: a connect told to wait by a held RETRY counts
 * as answered (rudp_conn_answered: the shim's fallback then waits for
 * rudp alone), takes no RTT sample from it (it came when the server
 * chose), and completes once the server's queue takes it. */
Test(handshake_1rtt, a_client_told_to_wait_is_answered_without_an_rtt_sample)
{
    sim s;
    sim_init(&s, 114);
    int a = sim_add_ep(&s, NULL);
    int b = sim_add_ep(&s, NULL);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_US(50);
    memset(s.ep[a].addr.ip, 0, sizeof s.ep[a].addr.ip);
    s.ep[a].addr.ip[0] = 127;
    s.ep[a].addr.ip[3] = 1;
    sim_listen(&s, b, &(sim_app){.expect = UINT64_MAX, .no_shutdown = 1, .no_release = 1}, 16);
    rudp_listener_set_early_accept(s.ep[b].listener, 1);
    s.ep[b].accepted_by_hand = 1;
    int ci = sim_connect(&s, a, b, &(sim_app){.expect = 0, .no_shutdown = 1}, NULL);
    sim_run_until(&s, s.now + RUDP_MS(30));
    rudp_conn *cc = s.apps[ci].conn;
    cr_assert(not(rudp_conn_answered(cc)), "nothing came yet");
    sim_run_until(&s, s.now + RUDP_HELD_NOTICE);
    cr_assert(rudp_conn_answered(cc), "the held RETRY answered it");
    rudp_conn_info ci_info;
    rudp_conn_get_info(cc, &ci_info);
    cr_assert(eq(u64, ci_info.min_rtt_us, 0), "no RTT sample from it (%llu us)",
              (unsigned long long)ci_info.min_rtt_us);
    cr_assert(not(s.apps[ci].events & RUDP_EV_ESTABLISHED));
    sim_app *sv = sim_app_on(&s, b);
    cr_assert_not_null(sv);
    rudp_conn_accepted(sv->conn, s.now);
    sim_run_until(&s, s.now + RUDP_MS(10));
    cr_assert(s.apps[ci].events & RUDP_EV_ESTABLISHED, "connected once the queue took it");
    cr_assert(eq(u64, rudp_ctx_conn_count(s.ep[b].ctx), 1));
    sim_free(&s);
}

/* The HELD flag is an input anyone can send: a copy of a held RETRY
 * (the flag set, any cookie) from another address than the server's is
 * dropped and counted as for no connection, and changes nothing of the
 * connect; from the server's address it is what a RETRY always was. */
Test(handshake_1rtt, a_held_retry_from_another_address_changes_nothing)
{
    sim s;
    sim_init(&s, 115);
    int a = sim_add_ep(&s, NULL);
    int srv = sim_add_raw_ep(&s); /* never answers */
    int x = sim_add_raw_ep(&s);   /* another address */
    s.link[a][srv].delay = s.link[srv][a].delay = RUDP_MS(1);
    s.link[x][a].delay = s.link[a][x].delay = RUDP_MS(1);
    int ci = sim_connect(&s, a, srv, &(sim_app){.expect = 0, .no_shutdown = 1}, NULL);
    sim_run_until(&s, s.now + RUDP_MS(5));
    rudp_hdr syn;
    cr_assert(sim_last_of_type(&s.ep[srv], RUDP_PKT_SYN, &syn), "the client's SYN");
    rudp_hdr h;
    memset(&h, 0, sizeof h);
    h.type = RUDP_PKT_RETRY;
    h.flags = RUDP_PKTF_HELD;
    h.dcid = syn.scid;
    h.token_len = RUDP_TOKEN_LEN;
    memset(h.token, 0x5a, RUDP_TOKEN_LEN);
    uint8_t buf[128];
    int n = rudp__wire_hdr_encode(buf, sizeof buf, &h);
    cr_assert(gt(int, n, 0));
    uint64_t unknown0 = s.ep[a].ctx->stats.unknown_conn;
    sim_raw_send(&s, x, a, buf, (size_t)n);
    sim_run_until(&s, s.now + RUDP_MS(5));
    rudp_conn *cc = s.apps[ci].conn;
    cr_assert(not(rudp_conn_answered(cc)), "a copy from another address answered the connect");
    cr_assert(eq(u64, s.ep[a].ctx->stats.unknown_conn, unknown0 + 1), "dropped, counted");
    sim_raw_send(&s, srv, a, buf, (size_t)n);
    sim_run_until(&s, s.now + RUDP_MS(5));
    cr_assert(rudp_conn_answered(cc), "from the server's address: a RETRY");
    rudp_conn_info info;
    rudp_conn_get_info(cc, &info);
    cr_assert(eq(u64, info.min_rtt_us, 0), "and no RTT sample from it");
    sim_free(&s);
}

/* A loopback client (a, 127.0.0.1) and a server (b) 20 ms away whose
 * listener reports a connection at its SYN (early accept). */
static void early_accept_pair(sim *s, uint64_t seed, int *a, int *b)
{
    sim_init(s, seed);
    *a = sim_add_ep(s, NULL);
    *b = sim_add_ep(s, NULL);
    s->link[*a][*b].delay = s->link[*b][*a].delay = RUDP_MS(20);
    memset(s->ep[*a].addr.ip, 0, sizeof s->ep[*a].addr.ip);
    s->ep[*a].addr.ip[0] = 127;
    s->ep[*a].addr.ip[3] = 1;
    sim_listen(s, *b, &(sim_app){.expect = UINT64_MAX, .no_shutdown = 1, .no_release = 1}, 16);
    rudp_listener_set_early_accept(s->ep[*b].listener, 1);
}

/* An application that writes to a connection it took at its SYN (early
 * accept) and then closes it, all before the client's first DATA, as a
 * server that answers and hangs up at once: the client's connect
 * completes and it reads every byte, then ECONNRESET if the close was a
 * reset (SO_LINGER 0), else its end of file, as from TCP's accepted
 * socket. The bytes cannot leave before established, and the reset must
 * not beat them: it waits (rudp__conn_abort_code). */
static void early_accept_then_end(uint64_t seed, int reset, int lost)
{
    sim s;
    int a, b;
    early_accept_pair(&s, seed, &a, &b);
    int ci = sim_connect(&s, a, b, &(sim_app){.expect = 3000, .recv_seed = 7, .no_shutdown = 1}, NULL);
    sim_run_until(&s, s.now + RUDP_MS(25));
    sim_app *sv = sim_app_on(&s, b);
    cr_assert_not_null(sv, "reported at its SYN");
    cr_assert(eq(int, rudp_conn_state(sv->conn), RUDP_SYN_RCVD));
    uint8_t buf[3000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = sim_pattern(7, i);
    cr_assert(eq(sz, (size_t)rudp_conn_write(sv->conn, s.now, buf, sizeof buf), sizeof buf),
              "an accepted connection takes the application's bytes");
    if (reset)
        rudp_conn_abort(sv->conn, s.now);
    rudp_conn_release(sv->conn, s.now);
    sv->conn = NULL;
    sv->released = 1;
    if (lost) {
        /* the client never confirms: the held reset dies with the
         * connection at its handshake timeout, nothing left behind */
        s.link[a][b].cut_at = s.now;
        rudp_config dcfg;
        rudp_config_default(&dcfg);
        sim_run_until(&s, s.now + dcfg.connect_timeout + RUDP_SEC(1));
        cr_assert(eq(u64, rudp_ctx_conn_count(s.ep[b].ctx), 0));
        sim_free(&s);
        return;
    }
    sim_run_until(&s, s.now + RUDP_SEC(2));
    sim_app *cl = &s.apps[ci];
    cr_assert(cl->events & RUDP_EV_ESTABLISHED, "the client's connect completed");
    cr_assert(eq(u64, cl->received, 3000));
    cr_assert(not(cl->corrupt));
    if (reset) {
        cr_assert(eq(int, cl->error, -ECONNRESET), "then the reset (%d)", cl->error);
        cr_assert(not(cl->eof), "no FIN before it");
    } else {
        cr_assert(cl->eof, "then the FIN");
        cr_assert(eq(int, cl->error, 0));
    }
    if (reset)
        cr_assert(eq(u64, rudp_ctx_conn_count(s.ep[b].ctx), 0), "and the server's end is gone");
    sim_free(&s);
}

Test(handshake_1rtt, an_early_accepted_connection_written_then_reset_delivers_its_bytes_first)
{
    early_accept_then_end(111, 1, 0);
}

Test(handshake_1rtt, an_early_accepted_connection_written_then_closed_delivers_its_bytes_then_eof)
{
    early_accept_then_end(112, 0, 0);
}

Test(handshake_1rtt, an_early_accepted_connection_reset_whose_client_never_confirms_is_freed)
{
    early_accept_then_end(113, 1, 1);
}

/* A loopback client that gives its connect up before the SYNACK (kernel TCP
 * won the fallback race against a server too busy to answer,
 * shim/engine/fallback.c; or its application closed the connecting
 * socket) resets the ID its SYN carried: the server's connection, reported
 * at the SYN (early accept), ends with an error its holder sees at once,
 * not after the connect timeout with neither data nor EOF before it; and
 * the SYNACK finds nothing to answer. */
static void early_accept_client_gives_up(uint64_t seed, int release)
{
    sim s;
    int a, b;
    early_accept_pair(&s, seed, &a, &b);
    int ci = sim_connect(&s, a, b, &(sim_app){.expect = 0, .no_shutdown = 1}, NULL);
    sim_run_until(&s, s.now + RUDP_MS(5)); /* the SYN is on its way */
    sim_app *cl = &s.apps[ci];
    cr_assert(eq(int, rudp_conn_state(cl->conn), RUDP_SYN_SENT));
    if (!release)
        rudp_conn_abort(cl->conn, s.now);
    rudp_conn_release(cl->conn, s.now);
    cl->conn = NULL;
    cl->released = 1;
    sim_run_until(&s, s.now + RUDP_MS(100));
    sim_app *sv = sim_app_on(&s, b);
    cr_assert(sv != NULL, "reported at its SYN (early accept)");
    /* its holder hears of the reset */
    cr_assert(eq(int, sv->error, -ECONNRESET), "the holder is told (%d)", sv->error);
    cr_assert(eq(int, sv->cause, RUDP_CAUSE_RESET));
    if (sv->conn)
        rudp_conn_release(sv->conn, s.now);
    sv->conn = NULL;
    sv->released = 1;
    sim_run_until(&s, s.now + RUDP_SEC(2));
    cr_assert(eq(u64, rudp_ctx_conn_count(s.ep[b].ctx), 0), "the server's end is gone");
    sim_free(&s);
}

Test(handshake_1rtt, a_loopback_client_that_aborts_its_connect_resets_the_early_accepted_connection)
{
    early_accept_client_gives_up(114, 0);
}

Test(handshake_1rtt, a_loopback_client_that_releases_its_connect_resets_the_early_accepted_connection)
{
    early_accept_client_gives_up(115, 1);
}

/* The new RESET a client sends when it gives its connect up, as someone
 * else could send it: a copy with one bit of its ID flipped, from the
 * client's address, and a true copy from another address, both while the
 * server's connection is half-open and already the app's (early accept).
 * Neither names a connection (the server finds one by address and ID):
 * both are dropped and counted, the handshake completes and the app sees
 * no error. */
Test(handshake_1rtt, a_forged_reset_leaves_an_early_accepted_connection_alone)
{
    sim s;
    int a, b;
    early_accept_pair(&s, 116, &a, &b);
    int ci = sim_connect(&s, a, b, &(sim_app){.expect = 0, .no_shutdown = 1}, NULL);
    sim_run_until(&s, s.now + RUDP_MS(25)); /* the SYN is in, not yet answered */
    sim_app *sv = sim_app_on(&s, b);
    cr_assert(sv != NULL, "reported at its SYN (early accept)");
    rudp_conn_info info;
    rudp_conn_get_info(s.apps[ci].conn, &info);
    rudp_hdr h;
    memset(&h, 0, sizeof h);
    h.type = RUDP_PKT_RESET;
    uint8_t buf[RUDP_WIRE_SHORT_HDR];
    rudp_stats before = *rudp_ctx_stats(s.ep[b].ctx);
    h.dcid = info.local_cid ^ 1;
    cr_assert(eq(int, rudp__wire_hdr_encode(buf, sizeof buf, &h), RUDP_WIRE_SHORT_HDR));
    sim_inject(&s, &s.ep[a].addr, b, buf, sizeof buf);
    rudp_addr other = s.ep[a].addr;
    other.port = (uint16_t)(other.port + 1);
    h.dcid = info.local_cid;
    cr_assert(eq(int, rudp__wire_hdr_encode(buf, sizeof buf, &h), RUDP_WIRE_SHORT_HDR));
    sim_inject(&s, &other, b, buf, sizeof buf);
    sim_run_until(&s, s.now + RUDP_MS(1));
    const rudp_stats *after = rudp_ctx_stats(s.ep[b].ctx);
    cr_assert(eq(u64, after->resets_received, before.resets_received), "no reset taken");
    cr_assert(eq(u64, after->unknown_conn - before.unknown_conn, 2), "both dropped, counted");
    sim_run_until(&s, s.now + RUDP_MS(200));
    cr_assert(eq(int, sv->error, 0), "the app saw %d", sv->error);
    cr_assert(sv->conn != NULL);
    cr_assert(eq(int, rudp_conn_state(sv->conn), RUDP_ESTABLISHED));
    cr_assert(eq(int, rudp_conn_state(s.apps[ci].conn), RUDP_ESTABLISHED));
    sim_free(&s);
}

/* ---- the handshake's step 3 (conn.c): no ACK of its own before the answer ---- */

static int step3_from[64], step3_type[64], step3_flags[64], nstep3;
static rudp_time step3_at[64];
static void tap_step3(sim *s, int from, int to, const uint8_t *buf, size_t len)
{
    (void)to;
    rudp_hdr h;
    if (nstep3 < 64 && rudp__wire_hdr_decode(buf, len, &h) > 0) {
        step3_at[nstep3] = s->now;
        step3_from[nstep3] = from;
        step3_type[nstep3] = h.type;
        step3_flags[nstep3++] = h.flags;
    }
}

/* The DATA packets endpoint `from` sent in [t0, t1). */
static int step3_data_from(int from, rudp_time t0, rudp_time t1)
{
    int n = 0;
    for (int i = 0; i < nstep3; i++)
        n += step3_from[i] == from && step3_type[i] == RUDP_PKT_DATA && step3_at[i] >= t0 &&
             step3_at[i] < t1;
    return n;
}

/* A client 20 ms from a server; established at t0 + 40 ms with its step 3
 * (a PING: the application has written nothing) sent then. */
static int step3_pair(sim *s, int *a, int *b, rudp_time *t0)
{
    pair(s, 151, NULL, 16, a, b);
    nstep3 = 0;
    s->tap = tap_step3;
    *t0 = s->now;
    int ci = sim_connect(s, *a, *b, &(sim_app){.expect = UINT64_MAX, .no_shutdown = 1, .bulk = 1},
                         NULL);
    sim_run_until(s, *t0 + RUDP_MS(40));
    cr_assert(eq(int, rudp_conn_state(s->apps[ci].conn), RUDP_ESTABLISHED));
    cr_assert(eq(int, nstep3, 3), "SYN, SYNACK, step 3");
    cr_assert(eq(int, step3_type[2], RUDP_PKT_DATA));
    cr_assert(eq(int, step3_flags[2] & RUDP_PKTF_ACK_NOW, RUDP_PKTF_ACK_NOW),
              "step 3 asks for its ACK soon: the client's probe timeout keeps its floor");
    return ci;
}

/* A request 100 us behind step 3 and an answer 200 us later: the answer
 * carries the ACK of both, as TCP's third ACK is not answered (before, the
 * server sent an ACK of its own as the request came: two ack-eliciting
 * packets). */
Test(handshake_1rtt, the_request_behind_step_3_is_acknowledged_by_the_answer_alone)
{
    sim s;
    int a, b;
    rudp_time t0;
    int ci = step3_pair(&s, &a, &b, &t0);
    rudp_conn *cc = s.apps[ci].conn;
    /* the client's application writes 100 us after its connect completed */
    sim_run_until(&s, t0 + RUDP_MS(40) + RUDP_US(100));
    cr_assert(eq(int, (int)rudp_conn_write(cc, s.now, "q", 1), 1));
    s.ep[a].deadline = rudp_ctx_process(s.ep[a].ctx, s.now);
    sim_run_until(&s, t0 + RUDP_MS(60) + RUDP_US(100));
    sim_app *sv = sim_app_on(&s, b);
    cr_assert_not_null(sv);
    cr_assert(eq(u64, sv->received, 1), "the request came right behind step 3");
    /* the server's application answers 200 us later */
    sim_run_until(&s, t0 + RUDP_MS(60) + RUDP_US(300));
    cr_assert(eq(int, step3_data_from(b, t0, s.now + 1), 0), "no ACK of its own meanwhile");
    cr_assert(eq(int, (int)rudp_conn_write(sv->conn, s.now, "a", 1), 1));
    s.ep[b].deadline = rudp_ctx_process(s.ep[b].ctx, s.now);
    sim_run_until(&s, t0 + RUDP_MS(200));
    cr_assert(eq(u64, s.apps[ci].received, 1), "the answer arrived");
    cr_assert(eq(int, step3_data_from(b, t0, s.now), 1), "the answer was the server's one DATA");
    cr_assert(eq(u64, rudp_conn_unacked(cc), 0), "and it acknowledged step 3 and the request");
    const rudp_stats *st = rudp_ctx_stats(s.ep[a].ctx);
    cr_assert(eq(u64, st->pto_count, 0));
    cr_assert(eq(u64, st->pkts_retransmitted, 0));
    sim_free(&s);
}

/* Step 3 and nothing after (a server that speaks first, or a client that
 * writes late): acknowledged soon (RUDP_ACK_SOON), as its ACK_NOW asks,
 * not at max_ack_delay for not being counted, and no probe of the
 * client's fires. */
Test(handshake_1rtt, step_3_alone_is_acknowledged_soon_without_a_probe)
{
    sim s;
    int a, b;
    rudp_time t0;
    step3_pair(&s, &a, &b, &t0);
    rudp_time arrive = t0 + RUDP_MS(60);
    sim_run_until(&s, arrive);
    cr_assert(eq(int, step3_data_from(b, t0, s.now + 1), 0), "not at once");
    /* the timer wheel's granularity on top (61.01 ms here) */
    sim_run_until(&s, arrive + 2 * RUDP_ACK_SOON);
    cr_assert(eq(int, step3_data_from(b, t0, s.now + 1), 1), "its ACK soon (RUDP_ACK_SOON)");
    sim_run_until(&s, t0 + RUDP_SEC(2));
    cr_assert(eq(int, step3_data_from(a, t0, s.now), 1), "the client sent step 3 once");
    cr_assert(eq(u64, rudp_ctx_stats(s.ep[a].ctx)->pto_count, 0));
    sim_app *sv = sim_app_on(&s, b);
    cr_assert_not_null(sv);
    cr_assert(eq(int, rudp_conn_state(sv->conn), RUDP_ESTABLISHED));
    sim_free(&s);
}

static int drop_first_client_data(sim *s, int from, int to, const uint8_t *buf, size_t len)
{
    (void)s, (void)to;
    static int dropped;
    rudp_hdr h;
    if (from == 0 && !dropped && rudp__wire_hdr_decode(buf, len, &h) > 0 &&
        h.type == RUDP_PKT_DATA) {
        dropped = 1;
        return 1;
    }
    return 0;
}

/* Step 3 lost: the server still reaches ESTABLISHED (the client's probe,
 * or the server's SYNACK again and a new step 3), and nothing fails. */
Test(handshake_1rtt, a_lost_step_3_is_sent_again_and_the_server_is_established)
{
    sim s;
    int a, b;
    pair(&s, 152, NULL, 16, &a, &b);
    cr_assert(eq(int, a, 0));
    s.drop = drop_first_client_data;
    rudp_time t0 = s.now;
    int ci = sim_connect(&s, a, b, &(sim_app){.expect = UINT64_MAX, .no_shutdown = 1}, NULL);
    sim_run_until(&s, t0 + RUDP_SEC(3));
    cr_assert(eq(u64, s.link[a][b].dropped, 1), "step 3 was lost");
    sim_app *sv = sim_app_on(&s, b);
    cr_assert_not_null(sv, "accepted all the same");
    cr_assert(eq(int, rudp_conn_state(sv->conn), RUDP_ESTABLISHED));
    cr_assert(eq(int, rudp_conn_state(s.apps[ci].conn), RUDP_ESTABLISHED));
    cr_assert(eq(int, s.apps[ci].error, 0));
    sim_free(&s);
}
