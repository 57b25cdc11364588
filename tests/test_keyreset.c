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
    int n = rudp__wire_hdr_encode(buf, RUDP_WIRE_SHORT_HDR, &h);
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

/* ---- the token given in the handshake (a server with a reset ID) ---- */

/* keyed_pair, the server with reset ID `id`. */
static int keyed_pair_id(sim *s, uint64_t seed, const char *id, uint64_t *server_cid)
{
    sim_init(s, seed);
    int a = sim_add_ep(s, NULL), b = sim_add_ep(s, NULL);
    s->link[a][b].delay = s->link[b][a].delay = RUDP_MS(5);
    sim_set_key(s, a, key1);
    sim_set_key(s, b, key1);
    sim_set_reset_id(s, b, id);
    sim_listen(s, b, &srv_tpl, 16);
    int ci = sim_connect(s, a, b, &cli_tpl, NULL);
    sim_run_until(s, s->now + RUDP_MS(100));
    cr_assert(eq(u64, app_on(s, b)->received, 100));
    *server_cid = app_on(s, b)->conn->cid;
    return ci;
}

Test(keyreset, reset_id_gives_the_client_its_token_in_the_synack)
{
    uint64_t server_cid, plain_cid;
    sim s;
    int ci = keyed_pair(&s, 20, &plain_cid);
    cr_assert(eq(u64, plain_cid & RUDP_CID_TOKEN_BIT, 0), "no reset ID: the address-bound form");
    cr_assert(eq(ptr, (void *)rudp__keyed_peer_token(s.apps[ci].conn), NULL));
    sim_free(&s);
    ci = keyed_pair_id(&s, 21, "server-a", &server_cid);
    cr_assert(ne(u64, server_cid & RUDP_CID_TOKEN_BIT, 0));
    cr_assert(rudp__keyed_cid_valid(s.ep[1].ctx, server_cid), "the bit is under the ID's MAC");
    const uint8_t *given = rudp__keyed_peer_token(s.apps[ci].conn);
    cr_assert(given != NULL);
    uint8_t want[RUDP_RESET_TOKEN];
    rudp__keyed_id_token(s.ep[1].ctx, server_cid, s.ep[1].addr.port, want);
    cr_assert(eq(int, memcmp(given, want, sizeof want), 0));
    /* the documented formula, with libsodium directly */
    uint8_t rst[32], idk[32], mine[RUDP_RESET_TOKEN];
    crypto_generichash(rst, 32, (const uint8_t *)"rudp v1 stateless reset", 23, key1, 32);
    static const uint8_t idmsg[] = "rudp v1 reset id\x08server-a";
    crypto_generichash(idk, 32, idmsg, sizeof idmsg - 1, rst, 32);
    uint8_t msg[25 + 10];
    memcpy(msg, "rudp v1 reset token by id", 25);
    for (int i = 0; i < 8; i++)
        msg[25 + i] = (uint8_t)(server_cid >> (56 - 8 * i));
    msg[33] = (uint8_t)(s.ep[1].addr.port >> 8);
    msg[34] = (uint8_t)s.ep[1].addr.port;
    crypto_generichash(mine, sizeof mine, msg, sizeof msg, idk, 32);
    cr_assert(eq(int, memcmp(given, mine, sizeof mine), 0));
    /* restarted with the same ID: the next write is reset */
    sim_restart(&s, 1, NULL);
    s.apps[ci].to_send = 200;
    sim_poke_apps(&s);
    sim_run_until(&s, s.now + RUDP_MS(200));
    cr_assert(eq(int, s.apps[ci].error, -ECONNRESET));
    cr_assert(eq(u64, rudp_ctx_stats(s.ep[0].ctx)->resets_received, 1));
    sim_free(&s);
}

Test(keyreset, a_client_given_a_token_takes_that_one_only_whatever_the_address)
{
    uint64_t server_cid;
    sim s;
    int ci = keyed_pair_id(&s, 22, "server-a", &server_cid);
    const rudp_stats *st = rudp_ctx_stats(s.ep[0].ctx);
    uint64_t auth0 = st->auth_failed;
    rudp_addr srv = s.ep[1].addr;
    uint8_t tok[16], buf[64];
    /* the address-bound token of the server's own address: refused */
    rudp__keyed_reset_token(s.ep[1].ctx, server_cid, &srv, tok);
    sim_inject(&s, &srv, 0, buf, reset_dgram(buf, server_cid, tok));
    /* another server's reset ID (RFC 9000 §21.11): refused */
    sim s2;
    sim_init(&s2, 61);
    sim_add_ep(&s2, NULL);
    sim_set_key(&s2, 0, key1);
    sim_set_reset_id(&s2, 0, "server-b");
    rudp__keyed_id_token(s2.ep[0].ctx, server_cid, srv.port, tok);
    sim_inject(&s, &srv, 0, buf, reset_dgram(buf, server_cid, tok));
    /* the same ID on another port (another server process of the host) */
    sim_free(&s2);
    sim_init(&s2, 62);
    sim_add_ep(&s2, NULL);
    sim_set_key(&s2, 0, key1);
    sim_set_reset_id(&s2, 0, "server-a");
    rudp__keyed_id_token(s2.ep[0].ctx, server_cid, (uint16_t)(srv.port + 1), tok);
    sim_inject(&s, &srv, 0, buf, reset_dgram(buf, server_cid, tok));
    sim_run_until(&s, s.now + RUDP_MS(50));
    cr_assert(eq(int, s.apps[ci].error, 0), "a wrong token ended the connection");
    cr_assert(eq(u64, st->auth_failed - auth0, 3));
    /* the given token ends it, computed anywhere with the key and the ID:
     * no address of the server's in it (a NAT may change both) */
    rudp__keyed_id_token(s2.ep[0].ctx, server_cid, srv.port, tok);
    sim_free(&s2);
    sim_inject(&s, &srv, 0, buf, reset_dgram(buf, server_cid, tok));
    sim_run_until(&s, s.now + RUDP_MS(50));
    cr_assert(eq(int, s.apps[ci].error, -ECONNRESET));
    sim_free(&s);
}

Test(keyreset, restarted_with_another_reset_id_or_none_the_client_is_not_reset)
{
    uint64_t server_cid;
    sim s;
    int ci = keyed_pair_id(&s, 23, "server-a", &server_cid);
    s.ep[1].reset_id[0] = 0; /* restarted without RUDP_RESET_ID */
    sim_restart(&s, 1, NULL);
    s.apps[ci].to_send = 200;
    sim_poke_apps(&s);
    sim_run_until(&s, s.now + RUDP_MS(300));
    cr_assert(eq(int, s.apps[ci].error, 0));
    cr_assert(eq(u64, rudp_ctx_stats(s.ep[1].ctx)->resets_sent, 0), "no token it could give");
    snprintf(s.ep[1].reset_id, sizeof s.ep[1].reset_id, "server-b");
    sim_restart(&s, 1, NULL);
    uint64_t auth0 = rudp_ctx_stats(s.ep[0].ctx)->auth_failed;
    s.apps[ci].to_send = 300;
    sim_poke_apps(&s);
    sim_run_until(&s, s.now + RUDP_SEC(3)); /* retransmissions reach it */
    cr_assert(eq(int, s.apps[ci].error, 0), "another ID's token was taken");
    cr_assert(ge(u64, rudp_ctx_stats(s.ep[1].ctx)->resets_sent, 1));
    cr_assert(gt(u64, rudp_ctx_stats(s.ep[0].ctx)->auth_failed, auth0));
    cr_assert(eq(int, rudp_ctx_set_reset_id(s.ep[1].ctx, "x", 1), -EINVAL), "after listen");
    sim_free(&s);
}

/* ---- engines sharing a port (cid tags) and listeners that share one ---- */

Test(keyreset, only_the_engine_whose_tag_an_id_carries_resets_it)
{
    sim s;
    sim_init(&s, 24);
    int e = sim_add_ep(&s, NULL), p = sim_add_ep(&s, NULL);
    sim_set_key(&s, e, key1);
    rudp_ctx *ctx = s.ep[e].ctx;
    cr_assert(eq(int, rudp_ctx_set_cid_tag(ctx, 3, 1), 0));
    rudp_listener *l;
    cr_assert(eq(int, rudp_listen(ctx, 1, NULL, 16, &l), 0));
    const rudp_stats *st = rudp_ctx_stats(ctx);
    uint8_t buf[128];
    uint64_t mine = rudp__keyed_cid(ctx, 1ull << 61 | 0x0123456600000000ull);
    uint64_t other = rudp__keyed_cid(ctx, 2ull << 61 | 0x0123456600000000ull);
    /* another engine's ID: given back to be forwarded, never answered */
    int owner = rudp_ctx_input(ctx, s.now, 1, &s.ep[e].addr, &s.ep[p].addr, buf,
                               data_dgram(buf, other, 1));
    cr_assert(eq(int, owner, RUDP_INPUT_FOREIGN + 2));
    /* handed back (its engine is not running): still not answered */
    rudp_ctx_input_handed(ctx, s.now, 1, &s.ep[e].addr, &s.ep[p].addr, buf,
                          data_dgram(buf, other, 2));
    cr_assert(eq(u64, st->dgrams_out, 0), "reset another engine's connection");
    /* its own, unknown: the connection is gone, reset */
    cr_assert(eq(int, rudp_ctx_input(ctx, s.now, 1, &s.ep[e].addr, &s.ep[p].addr, buf,
                                     data_dgram(buf, mine, 3)), 0));
    cr_assert(eq(u64, st->resets_sent, 1));
    /* a listener that may share its port with other processes: none */
    rudp_listener_set_keyed_reset(l, 0);
    rudp_ctx_input(ctx, s.now, 1, &s.ep[e].addr, &s.ep[p].addr, buf, data_dgram(buf, mine, 4));
    cr_assert(eq(u64, st->resets_sent, 1), "a shared listener reset");
    sim_free(&s);
}
