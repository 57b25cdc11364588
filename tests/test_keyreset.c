/*
 * Stateless reset in keyed mode (keyreset.c): the token and the connection
 * IDs derived from the key, the check, and a restarted keyed server ending
 * its old connections at once while strangers and forgers get nothing.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "conn.h"
#include "crypto.h"
#include "lib_sim.h"
#include "wire.h"

static const uint8_t key1[RUDP_KEY_LEN] = "0123456789abcdef0123456789abcde";
static const uint8_t key2[RUDP_KEY_LEN] = "another key, held by nobody els";

static const sim_app cli_tpl = {.to_send = 100, .expect = UINT64_MAX, .no_shutdown = 1};
static const sim_app srv_tpl = {.expect = UINT64_MAX, .no_shutdown = 1};

static sim_app *app_on(sim *s, int ep)
{
    for (int i = 0; i < SIM_MAX_APPS; i++)
        if (s->apps[i].used && s->apps[i].ep == ep)
            return &s->apps[i];
    return NULL;
}

/* A keyed client (0) and server (1), 5 ms apart, one connection
 * established and 100 bytes delivered; returns the client's app index and
 * the server's connection ID. */
static int keyed_pair(sim *s, uint64_t seed, uint64_t *server_cid)
{
    sim_init(s, seed);
    int a = sim_add_ep(s, NULL), b = sim_add_ep(s, NULL);
    s->link[a][b].delay = s->link[b][a].delay = RUDP_MS(5);
    sim_set_key(s, a, key1);
    sim_set_key(s, b, key1);
    sim_listen(s, b, &srv_tpl, 16);
    int ci = sim_connect(s, a, b, &cli_tpl, NULL);
    sim_run_until(s, s->now + RUDP_MS(100));
    cr_assert(eq(u64, app_on(s, b)->received, 100));
    *server_cid = app_on(s, b)->conn->cid;
    return ci;
}

/* A keyed DATA datagram as a client sends one: header, 40 bytes where the
 * encrypted frames go, a tag. */
static size_t data_dgram(uint8_t *buf, uint64_t dcid, uint32_t pn)
{
    size_t n = sim_data_hdr(buf, dcid, pn);
    memset(buf + n, 0x42, 40 + RUDP_CRYPTO_TAG);
    return n + 40 + RUDP_CRYPTO_TAG;
}

/* A RESET to dcid carrying token. */
static size_t reset_dgram(uint8_t *buf, uint64_t dcid, const uint8_t token[RUDP_RESET_TOKEN])
{
    rudp_hdr h;
    memset(&h, 0, sizeof h);
    h.type = RUDP_PKT_RESET;
    h.dcid = dcid;
    int n = rudp_wire_hdr_encode(buf, RUDP_WIRE_SHORT_HDR, &h);
    cr_assert(eq(int, n, RUDP_WIRE_SHORT_HDR));
    memcpy(buf + n, token, RUDP_RESET_TOKEN);
    return (size_t)n + RUDP_RESET_TOKEN;
}

/* ---- the token ---- */

Test(keyreset, token_is_blake2b_keyed_with_a_subkey_of_the_shared_key)
{
    sim s;
    sim_init(&s, 1);
    sim_add_ep(&s, NULL);
    sim_set_key(&s, 0, key1);
    rudp_addr from = {.family = 2, .port = 8080, .ip = {127, 0, 0, 1}};
    uint8_t got[RUDP_RESET_TOKEN], sub[32], want[RUDP_RESET_TOKEN];
    rudp__keyed_reset_token(s.ep[0].ctx, 0x1122334455667788ull, &from, got);
    /* The documented formula, computed here with libsodium directly. */
    static const char label[] = "rudp v1 stateless reset";
    crypto_generichash(sub, sizeof sub, (const uint8_t *)label, sizeof label - 1, key1, 32);
    static const uint8_t msg[] = "rudp v1 reset token"
                                 "\x11\x22\x33\x44\x55\x66\x77\x88"
                                 "\x04\x7f\x00\x00\x01\x1f\x90";
    crypto_generichash(want, sizeof want, msg, sizeof msg - 1, sub, sizeof sub);
    cr_assert(eq(int, memcmp(got, want, sizeof want), 0));
    sim_free(&s);
}

Test(keyreset, token_depends_on_id_address_port_and_key_not_on_the_v4_mapped_form)
{
    sim s;
    sim_init(&s, 2);
    sim_add_ep(&s, NULL);
    sim_add_ep(&s, NULL);
    sim_set_key(&s, 0, key1);
    sim_set_key(&s, 1, key2);
    rudp_ctx *k1 = s.ep[0].ctx, *k2 = s.ep[1].ctx;
    rudp_addr v4 = {.family = 2, .port = 443, .ip = {10, 1, 2, 3}};
    rudp_addr mapped = {.family = 10, .port = 443,
                        .ip = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3}};
    rudp_addr port = v4, ip = v4;
    port.port = 444;
    ip.ip[3] = 4;
    uint8_t t0[16], t[16];
    rudp__keyed_reset_token(k1, 77, &v4, t0);
    rudp__keyed_reset_token(k1, 77, &mapped, t);
    cr_assert(eq(int, memcmp(t0, t, 16), 0), "an IPv4-mapped address names the same sender");
    rudp__keyed_reset_token(k1, 78, &v4, t);
    cr_assert(ne(int, memcmp(t0, t, 16), 0));
    rudp__keyed_reset_token(k1, 77, &port, t);
    cr_assert(ne(int, memcmp(t0, t, 16), 0));
    rudp__keyed_reset_token(k1, 77, &ip, t);
    cr_assert(ne(int, memcmp(t0, t, 16), 0));
    rudp__keyed_reset_token(k2, 77, &v4, t);
    cr_assert(ne(int, memcmp(t0, t, 16), 0));
    sim_free(&s);
}

Test(keyreset, check_takes_the_token_and_refuses_every_single_bit_flip)
{
    sim s;
    sim_init(&s, 3);
    sim_add_ep(&s, NULL);
    sim_set_key(&s, 0, key1);
    rudp_ctx *ctx = s.ep[0].ctx;
    rudp_addr from = {.family = 10, .port = 9, .ip = {0x20, 0x01, 0x0d, 0xb8, [15] = 1}};
    uint8_t tok[16];
    rudp__keyed_reset_token(ctx, 5, &from, tok);
    cr_assert(rudp__keyed_reset_token_ok(ctx, 5, &from, tok));
    for (int bit = 0; bit < 128; bit++) {
        tok[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        cr_assert(not(rudp__keyed_reset_token_ok(ctx, 5, &from, tok)), "bit %d", bit);
        tok[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    cr_assert(not(rudp__keyed_reset_token_ok(ctx, 6, &from, tok)), "another ID's token");
    sim_free(&s);
}

Test(keyreset, keyed_ids_carry_their_mac_and_strangers_guesses_do_not)
{
    uint64_t server_cid;
    sim s;
    int ci = keyed_pair(&s, 4, &server_cid);
    rudp_ctx *ctx = s.ep[1].ctx;
    cr_assert(rudp__keyed_cid_valid(ctx, server_cid));
    cr_assert(rudp__keyed_cid_valid(ctx, s.apps[ci].conn->cid), "the client's ID too");
    int valid = 0;
    for (int i = 0; i < 100000; i++)
        valid += rudp__keyed_cid_valid(ctx, sim_rand(&s));
    cr_assert(eq(int, valid, 0), "%d random IDs passed", valid);
    sim_free(&s);
}

/* ---- a restarted server ---- */

Test(keyreset, restarted_keyed_server_resets_the_connection_at_the_next_packet)
{
    uint64_t server_cid;
    sim s;
    int ci = keyed_pair(&s, 5, &server_cid);
    sim_restart(&s, 1, NULL); /* the server process died and came back */
    s.apps[ci].to_send = 200;
    sim_poke_apps(&s);
    sim_run_until(&s, s.now + RUDP_MS(200)); /* well below any timeout */
    cr_assert(eq(int, s.apps[ci].error, -ECONNRESET));
    cr_assert(eq(u64, rudp_ctx_stats(s.ep[0].ctx)->resets_received, 1));
    cr_assert(ge(u64, rudp_ctx_stats(s.ep[1].ctx)->resets_sent, 1));
    sim_free(&s);
}

Test(keyreset, forged_or_misdirected_tokens_are_ignored_and_counted)
{
    uint64_t server_cid;
    sim s;
    int ci = keyed_pair(&s, 6, &server_cid);
    const rudp_stats *st = rudp_ctx_stats(s.ep[0].ctx);
    uint64_t auth0 = st->auth_failed;
    rudp_addr srv = s.ep[1].addr, other = srv;
    other.port++;
    uint8_t tok[16], buf[64];
    rudp__keyed_reset_token(s.ep[0].ctx, server_cid, &srv, tok);
    tok[7] ^= 0x10; /* one bit off */
    sim_inject(&s, &srv, 0, buf, reset_dgram(buf, server_cid, tok));
    tok[7] ^= 0x10;
    /* the right token from another port: asked of another endpoint */
    uint8_t tok_other[16];
    rudp__keyed_reset_token(s.ep[0].ctx, server_cid, &other, tok_other);
    sim_inject(&s, &srv, 0, buf, reset_dgram(buf, server_cid, tok_other));
    /* a token made with another key */
    sim s2;
    sim_init(&s2, 60);
    sim_add_ep(&s2, NULL);
    sim_set_key(&s2, 0, key2);
    uint8_t tok_k2[16];
    rudp__keyed_reset_token(s2.ep[0].ctx, server_cid, &srv, tok_k2);
    sim_free(&s2);
    sim_inject(&s, &srv, 0, buf, reset_dgram(buf, server_cid, tok_k2));
    sim_run_until(&s, s.now + RUDP_MS(50));
    cr_assert(eq(int, s.apps[ci].error, 0), "a forged token ended the connection");
    cr_assert(eq(u64, st->resets_received, 0));
    cr_assert(eq(u64, st->auth_failed - auth0, 3));
    /* control: the real token does end it */
    sim_inject(&s, &srv, 0, buf, reset_dgram(buf, server_cid, tok));
    sim_run_until(&s, s.now + RUDP_MS(50));
    cr_assert(eq(int, s.apps[ci].error, -ECONNRESET));
    sim_free(&s);
}

Test(keyreset, strangers_get_nothing_and_resets_are_smaller_and_rate_limited)
{
    uint64_t server_cid;
    sim s;
    keyed_pair(&s, 7, &server_cid);
    sim_restart(&s, 1, NULL);
    rudp_ctx *srv = s.ep[1].ctx;
    const rudp_stats *st = rudp_ctx_stats(srv);
    uint8_t buf[128];
    /* A stranger's DATA to IDs it made up: not one datagram back. */
    for (uint32_t i = 0; i < 1000; i++)
        rudp_ctx_input(srv, s.now, 1, &s.ep[1].addr, &s.ep[0].addr, buf,
                       data_dgram(buf, sim_rand(&s), i));
    cr_assert(eq(u64, st->dgrams_out, 0), "the server answered a stranger");
    /* A key holder's ID in a datagram no bigger than a reset: nothing. */
    rudp_ctx_input(srv, s.now, 1, &s.ep[1].addr, &s.ep[0].addr, buf,
                   sim_data_hdr(buf, server_cid, 1) + RUDP_RESET_TOKEN);
    cr_assert(eq(u64, st->dgrams_out, 0), "a reset as big as what caused it");
    /* A flood of copies of a real ID: RUDP_KEYED_RESETS_MAX a second. */
    for (uint32_t i = 0; i < 3 * RUDP_KEYED_RESETS_MAX; i++)
        rudp_ctx_input(srv, s.now, 1, &s.ep[1].addr, &s.ep[0].addr, buf,
                       data_dgram(buf, server_cid, i));
    cr_assert(eq(u64, st->resets_sent, RUDP_KEYED_RESETS_MAX));
    rudp_ctx_input(srv, s.now + RUDP_SEC(1), 1, &s.ep[1].addr, &s.ep[0].addr, buf,
                   data_dgram(buf, server_cid, 9999));
    cr_assert(eq(u64, st->resets_sent, RUDP_KEYED_RESETS_MAX + 1), "a second later, one more");
    sim_free(&s);
}

Test(keyreset, no_reset_when_turned_off_or_unkeyed_or_without_a_listener)
{
    uint64_t server_cid;
    sim s;
    int ci = keyed_pair(&s, 8, &server_cid);
    sim_restart(&s, 1, NULL);
    cr_assert(eq(int, rudp_ctx_set_keyed_reset(s.ep[1].ctx, 0), 0));
    s.apps[ci].to_send = 200;
    sim_poke_apps(&s);
    sim_run_until(&s, s.now + RUDP_MS(500));
    cr_assert(eq(int, s.apps[ci].error, 0), "turned off, yet reset");
    cr_assert(eq(u64, rudp_ctx_stats(s.ep[1].ctx)->dgrams_out, 0));
    /* A keyed endpoint with no listener answers nothing; an unkeyed one
     * has nothing to turn off. */
    int c = sim_add_ep(&s, NULL);
    cr_assert(eq(int, rudp_ctx_set_keyed_reset(s.ep[c].ctx, 1), -EINVAL));
    sim_set_key(&s, c, key1);
    uint8_t buf[128];
    rudp_ctx_input(s.ep[c].ctx, s.now, 1, &s.ep[c].addr, &s.ep[0].addr, buf,
                   data_dgram(buf, server_cid, 1));
    cr_assert(eq(u64, rudp_ctx_stats(s.ep[c].ctx)->dgrams_out, 0));
    cr_assert(eq(u64, rudp_ctx_stats(s.ep[c].ctx)->unknown_conn, 1));
    sim_free(&s);
}
