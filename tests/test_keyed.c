/*
 * Keyed mode (crypto.c) over the simulated network: what a key holder
 * gets, what everyone else does not, and what an attacker on the path can
 * do to a keyed connection (nothing but drop it).
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "../shim/base/base.h"
#include "aead.h"
#include "conn.h"
#include "crypto.h"
#include "lib_sim.h"
#include "wire.h"

static const uint8_t key1[RUDP_KEY_LEN] = "0123456789abcdef0123456789abcde";
static const uint8_t key2[RUDP_KEY_LEN] = "another key, held by nobody els";

/* Two endpoints, a (client) and b (server), 10 ms apart; keyed with ka /
 * kb where not NULL. */
static void two(sim *s, uint64_t seed, const uint8_t *ka, const uint8_t *kb)
{
    sim_init(s, seed);
    rudp_config cfg;
    rudp_config_default(&cfg);
    cfg.connect_timeout = RUDP_SEC(5);
    int a = sim_add_ep(s, &cfg), b = sim_add_ep(s, &cfg);
    s->link[a][b].delay = s->link[b][a].delay = RUDP_MS(10);
    /* both with the shim's OpenSSL backend, as the engines have it */
    sim_set_aead(s, a, shim_aead_openssl());
    sim_set_aead(s, b, shim_aead_openssl());
    if (ka)
        sim_set_key(s, a, ka);
    if (kb)
        sim_set_key(s, b, kb);
}

static sim_app *app_on(sim *s, int ep)
{
    for (int i = 0; i < SIM_MAX_APPS; i++)
        if (s->apps[i].used && s->apps[i].ep == ep)
            return &s->apps[i];
    return NULL;
}

/* Both apps got every byte of the other's pattern, in order, and EOF. */
static void assert_exact(sim *s, uint64_t up, uint64_t down)
{
    int n = 0;
    for (int i = 0; i < SIM_MAX_APPS; i++) {
        const sim_app *x = &s->apps[i];
        if (!x->used)
            continue;
        n++;
        cr_assert(not(x->corrupt), "app %d: a byte differed from the pattern", i);
        cr_assert(eq(u64, x->received, x->ep == 0 ? down : up), "app %d", i);
        cr_assert(x->eof, "app %d saw no EOF", i);
        cr_assert(eq(int, x->error, 0), "app %d failed", i);
    }
    cr_assert(eq(int, n, 2));
}

static const sim_app cli_tpl = {.to_send = 300000, .expect = 200000, .send_seed = 11,
                                .recv_seed = 12};
static const sim_app srv_tpl = {.to_send = 200000, .expect = 300000, .send_seed = 12,
                                .recv_seed = 11};

/* ---- what the wire shows ---- */

static uint8_t wire_pattern[32];
static int pattern_seen, data_seen;
static void tap_plaintext(sim *s, int from, int to, const uint8_t *buf, size_t len)
{
    (void)s, (void)from, (void)to;
    if (len > RUDP_WIRE_SHORT_HDR && (buf[3] & 0x0f) == RUDP_PKT_DATA)
        data_seen++;
    if (memmem(buf, len, wire_pattern, sizeof wire_pattern))
        pattern_seen++;
}

/* The AEAD libraries each end may use (aead.h's RUDP_AEAD_LIB_* masks; 0:
 * its default) and the one each must have used (NULL: not checked). */
typedef struct {
    uint8_t mask[2];
    const char *want[2];
} libs_of;

static void transfer_libs(const uint8_t *key, uint8_t ciphers, const char *want_cipher,
                          const libs_of *libs)
{
    sim s;
    two(&s, 21, key, key);
    if (key) {
        for (int e = 0; e < 2; e++) {
            rudp__keyed_limit_ciphers(s.ep[e].ctx, ciphers);
            if (libs && libs->mask[e])
                rudp__keyed_limit_libs(s.ep[e].ctx, libs->mask[e]);
        }
    }
    for (int i = 0; i < (int)sizeof wire_pattern; i++)
        wire_pattern[i] = sim_pattern(cli_tpl.send_seed, (uint64_t)i + 1000);
    pattern_seen = data_seen = 0;
    s.tap = tap_plaintext;
    sim_listen(&s, 1, &srv_tpl, 16);
    sim_connect(&s, 0, 1, &cli_tpl, NULL);
    sim_run_until(&s, s.now + RUDP_MS(100));
    const char *ca = rudp_conn_cipher(app_on(&s, 0)->conn);
    const char *cb = rudp_conn_cipher(app_on(&s, 1)->conn);
    if (want_cipher) {
        cr_assert(ca && cb && strcmp(ca, want_cipher) == 0 && strcmp(cb, want_cipher) == 0,
                  "ciphers %s / %s, want %s", ca ? ca : "none", cb ? cb : "none", want_cipher);
    } else {
        cr_assert(eq(ptr, (void *)ca, NULL));
    }
    for (int e = 0; libs && e < 2; e++) {
        const char *lib = rudp__keyed_aead_lib(app_on(&s, e)->conn);
        if (libs->want[e])
            cr_assert(lib && strcmp(lib, libs->want[e]) == 0, "end %d: library %s, want %s", e,
                      lib ? lib : "none", libs->want[e]);
    }
    cr_assert(sim_run(&s, s.now + RUDP_SEC(60)));
    assert_exact(&s, cli_tpl.to_send, srv_tpl.to_send);
    cr_assert(gt(int, data_seen, 100));
    if (key)
        cr_assert(eq(int, pattern_seen, 0), "plaintext on the wire in %d datagrams", pattern_seen);
    else
        cr_assert(gt(int, pattern_seen, 0), "the control run must show the plaintext");
    sim_free(&s);
}

static void transfer_and_look(const uint8_t *key, uint8_t ciphers, const char *want_cipher)
{
    transfer_libs(key, ciphers, want_cipher, NULL);
}

Test(keyed, chacha_transfer_is_exact_and_no_plaintext_crosses)
{
    transfer_and_look(key1, RUDP_AEAD_CHACHA, "chacha20-poly1305");
}

Test(keyed, aesgcm_transfer_is_exact_and_no_plaintext_crosses)
{
    cr_assert(ge(int, sodium_init(), 0));
    /* Where the CPU lacks AES-NI the limit keeps ChaCha20-Poly1305. */
    transfer_and_look(key1, RUDP_AEAD_AESGCM,
                      crypto_aead_aes256gcm_is_available() ? "aes256-gcm" : "chacha20-poly1305");
}

/* What a keyed context picks by default: AES-256-GCM where the CPU has it,
 * run by OpenSSL's libcrypto (aead.c: faster), else ChaCha20-Poly1305 by
 * libsodium. */
Test(keyed, a_keyed_ctx_picks_aesgcm_by_openssl_where_the_cpu_has_aes)
{
    cr_assert(ge(int, sodium_init(), 0));
    int aes = crypto_aead_aes256gcm_is_available();
    const char *lib = aes ? "openssl" : "libsodium";
    libs_of dflt = {{0, 0}, {lib, lib}};
    transfer_libs(key1, RUDP_AEAD_CHACHA | RUDP_AEAD_AESGCM,
                  aes ? "aes256-gcm" : "chacha20-poly1305", &dflt);
}

/* Each end picks its library alone and the wire does not say which: an
 * end sealing with OpenSSL and one with libsodium exchange every byte,
 * each way, with either cipher. */
Test(keyed, an_openssl_end_and_a_libsodium_end_interoperate_with_either_cipher)
{
    cr_assert(ge(int, sodium_init(), 0));
    static const libs_of mixed[] = {
        {{RUDP_AEAD_LIB_BACKEND, RUDP_AEAD_LIB_SODIUM}, {"openssl", "libsodium"}},
        {{RUDP_AEAD_LIB_SODIUM, RUDP_AEAD_LIB_BACKEND}, {"libsodium", "openssl"}},
    };
    for (int i = 0; i < 2; i++) {
        transfer_libs(key1, RUDP_AEAD_CHACHA, "chacha20-poly1305", &mixed[i]);
        if (crypto_aead_aes256gcm_is_available())
            transfer_libs(key1, RUDP_AEAD_AESGCM, "aes256-gcm", &mixed[i]);
    }
}

/* rudp_ctx_set_aead after rudp_ctx_set_key starts the key's table again
 * with the backend (the client's AES-256-GCM is OpenSSL's, the server's,
 * given none, libsodium's, and they talk); once a connection exists the
 * backend stays as it is. */
Test(keyed, a_backend_installed_after_the_key_counts_until_connections_exist)
{
    cr_assert(ge(int, sodium_init(), 0));
    sim s;
    sim_init(&s, 23);
    int a = sim_add_ep(&s, NULL), b = sim_add_ep(&s, NULL);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(10);
    sim_set_key(&s, a, key1);
    sim_set_key(&s, b, key1);
    cr_assert(eq(int, rudp_ctx_set_aead(s.ep[a].ctx, shim_aead_openssl()), 0));
    sim_listen(&s, b, &srv_tpl, 16);
    sim_connect(&s, a, b, &cli_tpl, NULL);
    cr_assert(eq(int, rudp_ctx_set_aead(s.ep[a].ctx, NULL), -EINVAL));
    sim_run_until(&s, s.now + RUDP_MS(100));
    const char *lib_a = rudp__keyed_aead_lib(app_on(&s, a)->conn);
    const char *lib_b = rudp__keyed_aead_lib(app_on(&s, b)->conn);
    const char *want_a = crypto_aead_aes256gcm_is_available() ? "openssl" : "libsodium";
    cr_assert(lib_a && strcmp(lib_a, want_a) == 0, "client: %s", lib_a ? lib_a : "none");
    cr_assert(lib_b && strcmp(lib_b, "libsodium") == 0, "server: %s", lib_b ? lib_b : "none");
    cr_assert(sim_run(&s, s.now + RUDP_SEC(60)));
    assert_exact(&s, cli_tpl.to_send, srv_tpl.to_send);
    sim_free(&s);
}

Test(keyed, unkeyed_control_run_shows_the_plaintext)
{
    transfer_and_look(NULL, 0, NULL);
}

/* ---- strangers ---- */

static int has_line(const sim_ep *e, const char *needle)
{
    for (int i = 0; i < e->nlines; i++)
        if (strstr(e->lines[i], needle))
            return 1;
    return 0;
}

/* Every datagram the server sent is a 16-byte KEY refusal (keystate.c):
 * the server kept nothing and said nothing else. */
static void assert_only_key_refusals(sim *s, int server)
{
    const rudp_stats *st = rudp_ctx_stats(s->ep[server].ctx);
    cr_assert(ge(u64, st->key_refusals_sent, 1));
    cr_assert(eq(u64, st->dgrams_out, st->key_refusals_sent));
    cr_assert(eq(u64, st->bytes_out, RUDP_WIRE_SHORT_HDR * st->key_refusals_sent));
    cr_assert(eq(sz, rudp_ctx_conn_count(s->ep[server].ctx), 0));
    cr_assert(eq(ptr, (void *)app_on(s, server), NULL), "the server accepted something");
}

/* The client's connect failed with ECONNREFUSED at RUDP_KEY_VERDICT (and
 * no later than RUDP_KEY_VERDICT_AFTER past it), t0 its start. */
static void assert_key_verdict(sim *s, rudp_time t0)
{
    const sim_app *c = app_on(s, 0);
    cr_assert(eq(int, c->error, -ECONNREFUSED));
    cr_assert(ge(u64, c->error_time - t0, RUDP_KEY_VERDICT));
    cr_assert(le(u64, c->error_time - t0, RUDP_KEY_VERDICT + RUDP_KEY_VERDICT_AFTER));
}

/* a, keyed with ka, connects to b, listening keyed with kb, for 10 s;
 * returns when the connect began. */
static rudp_time connect_keyed(sim *s, uint64_t seed, const uint8_t *ka, const uint8_t *kb)
{
    two(s, seed, ka, kb);
    sim_listen(s, 1, &srv_tpl, 16);
    rudp_time t0 = s->now;
    sim_connect(s, 0, 1, &cli_tpl, NULL);
    sim_run_until(s, s->now + RUDP_SEC(10));
    return t0;
}

Test(keyed, wrong_key_fails_at_the_key_verdict_and_the_server_keeps_nothing)
{
    sim s;
    assert_key_verdict(&s, connect_keyed(&s, 22, key1, key2));
    cr_assert(eq(int, app_on(&s, 0)->cause, RUDP_CAUSE_KEY_MISMATCH));
    const rudp_stats *st = rudp_ctx_stats(s.ep[1].ctx);
    cr_assert(ge(u64, st->handshakes_rejected, 1));
    cr_assert(eq(u64, st->key_refusals, st->handshakes_rejected));
    assert_only_key_refusals(&s, 1);
    cr_assert(has_line(&s.ep[1], "> 10.0.0.1:"));
    cr_assert(has_line(&s.ep[1], "the client has another key"));
    sim_free(&s);
}

Test(keyed, keyed_and_unkeyed_ends_never_connect_and_fail_within_the_key_verdict)
{
    sim s;
    /* keyed client, unkeyed server: its KEY refusal says it has no key */
    assert_key_verdict(&s, connect_keyed(&s, 23, key1, NULL));
    cr_assert(eq(int, app_on(&s, 0)->cause, RUDP_CAUSE_KEY_PEER_NONE));
    cr_assert(gt(u64, rudp_ctx_stats(s.ep[0].ctx)->auth_failed, 0));
    cr_assert(eq(u64, rudp_ctx_stats(s.ep[1].ctx)->conns_accepted, 0));
    assert_only_key_refusals(&s, 1);
    cr_assert(has_line(&s.ep[1], "the client has a key (RUDP_KEY_FILE); this end has none"));
    sim_free(&s);
    /* unkeyed client, keyed server: refused in one round trip */
    rudp_time t0 = connect_keyed(&s, 24, NULL, key1);
    const sim_app *c = app_on(&s, 0);
    cr_assert(eq(int, c->error, -ECONNREFUSED));
    cr_assert(le(u64, c->error_time - t0, RUDP_MS(25)), "refused after %llu ns",
              (unsigned long long)(c->error_time - t0));
    cr_assert(eq(int, c->cause, RUDP_CAUSE_KEY_REQUIRED));
    cr_assert(eq(u64, rudp_ctx_stats(s.ep[1].ctx)->handshakes_rejected, 1));
    assert_only_key_refusals(&s, 1);
    cr_assert(has_line(&s.ep[1], "the client has no key; this end has one"));
    sim_free(&s);
}

/* SYNs failing the MAC from many addresses: counted, answered within the
 * rate, and told once per address, at most RUDP_KEY_LOGS_MAX lines. */
Test(keyed, key_refusals_are_rate_limited_and_told_once_per_address)
{
    sim s;
    two(&s, 41, NULL, key1);
    sim_listen(&s, 1, &srv_tpl, 16);
    rudp_ctx *srv = s.ep[1].ctx;
    int before = s.ep[1].nlines;
    uint8_t buf[RUDP_MIN_SYN_SIZE];
    size_t n = sim_make_syn(buf, 77, NULL, 0);
    rudp_addr from = s.ep[0].addr;
    for (int i = 0; i < 3 * RUDP_KEY_REFUSALS_MAX; i++) {
        from.ip[15] = (uint8_t)(i % 50); /* 50 addresses, each 6 times */
        rudp_ctx_input(srv, s.now, 1, &s.ep[1].addr, &from, buf, n);
    }
    const rudp_stats *st = rudp_ctx_stats(srv);
    cr_assert(eq(u64, st->key_refusals, 3 * RUDP_KEY_REFUSALS_MAX));
    cr_assert(eq(u64, st->key_refusals_sent, RUDP_KEY_REFUSALS_MAX));
    cr_assert(eq(int, s.ep[1].nlines - before, RUDP_KEY_LOGS_MAX));
    cr_assert(has_line(&s.ep[1], "no more such lines for a minute"));
    sim_free(&s);
}

Test(keyed, key_holder_to_a_port_without_listener_is_refused_at_once)
{
    sim s;
    two(&s, 25, key1, key1); /* b listens nowhere */
    sim_connect(&s, 0, 1, &cli_tpl, NULL);
    sim_run_until(&s, s.now + RUDP_MS(100));
    cr_assert(eq(int, app_on(&s, 0)->error, -ECONNREFUSED));
    cr_assert(eq(u64, rudp_ctx_stats(s.ep[0].ctx)->resets_received, 1));
    sim_free(&s);
}

/* ---- an attacker on the path ---- */

static uint64_t flipped;
static void flip_every_seventh(sim *s, int from, int to, uint8_t *buf, size_t len)
{
    (void)from, (void)to;
    static uint64_t n;
    if (++n % 7 || !len)
        return;
    size_t bit = sim_rand(s) % (len * 8);
    buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    flipped++;
}

static uint64_t dropped_unread(const rudp_stats *st)
{
    return st->auth_failed + st->handshakes_rejected + st->malformed + st->unknown_conn;
}

Test(keyed, a_bit_flipped_anywhere_is_dropped_counted_and_the_transfer_stays_exact)
{
    sim s;
    two(&s, 26, key1, key1);
    flipped = 0;
    s.mutate = flip_every_seventh;
    sim_listen(&s, 1, &srv_tpl, 16);
    sim_connect(&s, 0, 1, &cli_tpl, NULL);
    cr_assert(sim_run(&s, s.now + RUDP_SEC(120)));
    assert_exact(&s, cli_tpl.to_send, srv_tpl.to_send);
    const rudp_stats *sa = rudp_ctx_stats(s.ep[0].ctx), *sb = rudp_ctx_stats(s.ep[1].ctx);
    cr_assert(gt(u64, flipped, 20));
    cr_assert(ge(u64, dropped_unread(sa) + dropped_unread(sb), flipped),
              "%llu flipped, %llu dropped", (unsigned long long)flipped,
              (unsigned long long)(dropped_unread(sa) + dropped_unread(sb)));
    cr_assert(gt(u64, sa->auth_failed + sb->auth_failed, 0));
    sim_free(&s);
}

/* Client-to-server DATA datagrams, recorded to be sent again. */
#define REC_MAX 400
static uint8_t rec_buf[REC_MAX][1500];
static size_t rec_len[REC_MAX];
static int nrec;
static uint64_t seen_dcid, seen_scid;
static uint32_t seen_pn;
static void tap_record(sim *s, int from, int to, const uint8_t *buf, size_t len)
{
    (void)s, (void)to;
    rudp_hdr h;
    if (from != 0 || rudp__wire_hdr_decode(buf, len, &h) < 0)
        return;
    if (h.type == RUDP_PKT_SYN)
        seen_scid = h.scid;
    if (h.type != RUDP_PKT_DATA)
        return;
    seen_dcid = h.dcid;
    seen_pn = h.pn;
    if (nrec < REC_MAX && len <= sizeof rec_buf[0]) {
        memcpy(rec_buf[nrec], buf, len);
        rec_len[nrec++] = len;
    }
}

/* Every third client-to-server datagram is spoiled (so dropped: the
 * server's packet-number ranges fragment past what it keeps); the others
 * are recorded as delivered. */
static void spoil_and_record(sim *s, int from, int to, uint8_t *buf, size_t len)
{
    static uint64_t n;
    if (from != 0)
        return;
    if (++n % 3 == 0)
        buf[len - 1] ^= 1;
    else
        tap_record(s, from, to, buf, len);
}

Test(keyed, replayed_datagrams_are_dropped_as_duplicates)
{
    sim s;
    two(&s, 27, key1, key1);
    s.link[0][1].rate_bps = s.link[1][0].rate_bps = 20000000;
    nrec = 0;
    s.mutate = spoil_and_record;
    sim_app big_cli = cli_tpl, big_srv = srv_tpl;
    big_cli.to_send = big_srv.expect = 3000000;
    sim_listen(&s, 1, &big_srv, 16);
    sim_connect(&s, 0, 1, &big_cli, NULL);
    sim_run_until(&s, s.now + RUDP_MS(300));
    s.mutate = NULL;
    int replayed = nrec;
    cr_assert(gt(int, replayed, 50));
    uint64_t dup0 = rudp_ctx_stats(s.ep[1].ctx)->dup_pkts;
    /* Now, and again much later (below the ranges the server keeps). */
    for (int i = 0; i < replayed; i++)
        sim_inject(&s, &s.ep[0].addr, 1, rec_buf[i], rec_len[i]);
    sim_run_until(&s, s.now + RUDP_MS(500));
    cr_assert(gt(u64, app_on(&s, 1)->conn->rx_floor, 0), "the floor never moved");
    cr_assert(lt(u64, app_on(&s, 1)->received, big_srv.expect), "replayed too late: all arrived");
    for (int i = 0; i < replayed; i++)
        sim_inject(&s, &s.ep[0].addr, 1, rec_buf[i], rec_len[i]);
    cr_assert(sim_run(&s, s.now + RUDP_SEC(120)));
    assert_exact(&s, big_cli.to_send, big_srv.to_send);
    cr_assert(ge(u64, rudp_ctx_stats(s.ep[1].ctx)->dup_pkts - dup0, 2 * (uint64_t)replayed));
    sim_free(&s);
}

/* A DATA datagram an injector can make: right ID, a packet number just
 * ahead, frames in the clear, and 16 bytes where the tag goes. */
static size_t forge_data(uint8_t *buf, uint64_t dcid, uint32_t pn, int reset)
{
    size_t n = sim_data_hdr(buf, dcid, pn);
    int m = reset ? rudp__wire_reset_encode(buf + n, 64, 0, 0)
                  : rudp__wire_stream_hdr_encode(buf + n, 64, 0, 100, 0, 1);
    cr_assert(gt(int, m, 0));
    size_t len = n + (size_t)m;
    if (!reset) {
        memset(buf + len, 'X', 100);
        len += 100;
    }
    memset(buf + len, 0xA5, RUDP_CRYPTO_TAG);
    return len + RUDP_CRYPTO_TAG;
}

static size_t forge_answer(uint8_t *buf, int type, uint64_t dcid)
{
    rudp_hdr h;
    memset(&h, 0, sizeof h);
    h.type = (uint8_t)type;
    h.dcid = dcid;
    h.scid = 0x5eed;
    h.token_len = type == RUDP_PKT_RETRY ? 12 : 0;
    h.max_data = 1 << 20;
    h.max_datagram = 1400;
    int n = rudp__wire_hdr_encode(buf, 128, &h);
    cr_assert(gt(int, n, 0));
    memset(buf + n, 0x5a, 1 + RUDP_CRYPTO_PUB + RUDP_CRYPTO_TAG);
    return (size_t)n + (type == RUDP_PKT_RESET ? RUDP_CRYPTO_TAG : 1 + RUDP_CRYPTO_PUB + RUDP_CRYPTO_TAG);
}

Test(keyed, an_injector_that_sees_ids_and_packet_numbers_cannot_add_change_or_reset)
{
    sim s;
    two(&s, 28, key1, key1);
    s.tap = tap_record;
    nrec = 0;
    seen_scid = seen_dcid = 0;
    sim_listen(&s, 1, &srv_tpl, 16);
    sim_connect(&s, 0, 1, &cli_tpl, NULL);
    /* In the handshake: answers forged to the client's ID. */
    sim_run_until(&s, s.now + RUDP_MS(1));
    cr_assert(ne(u64, seen_scid, 0));
    uint8_t buf[256];
    int forged_a = 0, forged_b = 0;
    for (int t = RUDP_PKT_RETRY; t <= RUDP_PKT_RESET; t++) {
        if (t == RUDP_PKT_DATA)
            continue;
        size_t n = forge_answer(buf, t, seen_scid);
        sim_inject(&s, &s.ep[1].addr, 0, buf, n);
        forged_a++;
    }
    /* Established: data, a reset frame, a RESET packet, to both ends. */
    sim_run_until(&s, s.now + RUDP_MS(60));
    cr_assert(ne(u64, seen_dcid, 0));
    uint64_t client_cid = seen_scid, server_cid = seen_dcid;
    for (uint32_t k = 1; k <= 5; k++) {
        size_t n = forge_data(buf, server_cid, seen_pn + k, 0);
        sim_inject(&s, &s.ep[0].addr, 1, buf, n);
        n = forge_data(buf, server_cid, seen_pn + k, 1);
        sim_inject(&s, &s.ep[0].addr, 1, buf, n);
        forged_b += 2;
        n = forge_data(buf, client_cid, k, 1);
        sim_inject(&s, &s.ep[1].addr, 0, buf, n);
        forged_a++;
    }
    size_t n = forge_answer(buf, RUDP_PKT_RESET, server_cid); /* "I, the server, lost you" */
    sim_inject(&s, &s.ep[1].addr, 0, buf, n);
    n = forge_answer(buf, RUDP_PKT_RESET, client_cid);
    sim_inject(&s, &s.ep[0].addr, 1, buf, n);
    forged_a++, forged_b++;
    s.tap = NULL;
    cr_assert(sim_run(&s, s.now + RUDP_SEC(60)));
    assert_exact(&s, cli_tpl.to_send, srv_tpl.to_send);
    const rudp_stats *sa = rudp_ctx_stats(s.ep[0].ctx), *sb = rudp_ctx_stats(s.ep[1].ctx);
    cr_assert(ge(u64, sa->auth_failed, (uint64_t)forged_a), "client: %llu of %d",
              (unsigned long long)sa->auth_failed, forged_a);
    cr_assert(ge(u64, sb->auth_failed, (uint64_t)forged_b), "server: %llu of %d",
              (unsigned long long)sb->auth_failed, forged_b);
    cr_assert(eq(u64, sa->resets_received + sb->resets_received, 0));
    sim_free(&s);
}

/* Before the verdict the unauthenticated answers are evidence only: the
 * connect still runs, and says it heard them (rudp_conn_unauth_answers,
 * which the shim's fallback reads). */
Test(keyed, unauthenticated_answers_are_evidence_until_the_verdict)
{
    sim s;
    two(&s, 42, key1, key2);
    sim_listen(&s, 1, &srv_tpl, 16);
    rudp_time t0 = s.now;
    sim_connect(&s, 0, 1, &cli_tpl, NULL);
    sim_run_until(&s, t0 + RUDP_KEY_VERDICT - RUDP_MS(100));
    const sim_app *c = app_on(&s, 0);
    cr_assert(eq(int, c->error, 0));
    cr_assert(eq(int, rudp_conn_state(c->conn), RUDP_SYN_SENT));
    cr_assert(rudp_conn_unauth_answers(c->conn));
    sim_run_until(&s, t0 + RUDP_KEY_VERDICT + RUDP_KEY_VERDICT_AFTER);
    cr_assert(eq(int, c->error, -ECONNREFUSED));
    sim_free(&s);
}

/* A keyed client whose real server (same key) answers: a KEY refusal
 * forged to its ID, before the answer and again and again, changes
 * nothing; over a slow path (300 ms each way) too. */
Test(keyed, forged_key_refusals_cannot_end_a_keyed_connect_the_server_answers)
{
    rudp_time delays[] = {RUDP_MS(10), RUDP_MS(300)};
    for (int d = 0; d < 2; d++) {
        sim s;
        two(&s, 40 + (uint64_t)d, key1, key1);
        s.link[0][1].delay = s.link[1][0].delay = delays[d];
        s.tap = tap_record;
        seen_scid = 0;
        nrec = 0;
        sim_listen(&s, 1, &srv_tpl, 16);
        sim_connect(&s, 0, 1, &cli_tpl, NULL);
        sim_run_until(&s, s.now + RUDP_MS(1));
        cr_assert(ne(u64, seen_scid, 0));
        uint8_t buf[RUDP_WIRE_SHORT_HDR];
        rudp_hdr h;
        memset(&h, 0, sizeof h);
        h.type = RUDP_PKT_RESET;
        h.dcid = seen_scid;
        for (int flags = RUDP_PKTF_KEY; flags <= (RUDP_PKTF_KEY | RUDP_PKTF_KEYED); flags += 4) {
            h.flags = (uint8_t)flags;
            cr_assert(eq(int, rudp__wire_hdr_encode(buf, sizeof buf, &h), RUDP_WIRE_SHORT_HDR));
            for (int i = 0; i < 5; i++)
                sim_inject(&s, &s.ep[1].addr, 0, buf, sizeof buf);
        }
        s.tap = NULL;
        cr_assert(sim_run(&s, s.now + RUDP_SEC(60)));
        assert_exact(&s, cli_tpl.to_send, srv_tpl.to_send);
        cr_assert(ge(u64, rudp_ctx_stats(s.ep[0].ctx)->auth_failed, 10));
        sim_free(&s);
    }
}

/* An authenticated RETRY proves a key holder answers: a forged refusal
 * must not end the connect at the verdict even when the cookie's SYNACK
 * is lost for two seconds (the SYNs sent meanwhile reset the RETRY count
 * rudp_conn_answered reads); the transfer completes once the path heals. */
Test(keyed, after_an_authenticated_retry_a_forged_refusal_never_decides)
{
    sim s;
    sim_init(&s, 43);
    rudp_config cfg;
    rudp_config_default(&cfg);
    cfg.connect_timeout = RUDP_SEC(5);
    int a = sim_add_ep(&s, &cfg);
    cfg.retry = RUDP_RETRY_ALWAYS;
    int b = sim_add_ep(&s, &cfg);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(10);
    sim_set_key(&s, a, key1);
    sim_set_key(&s, b, key1);
    sim_listen(&s, b, &srv_tpl, 16);
    rudp_time t0 = s.now;
    s.link[b][a].cut_at = t0 + RUDP_MS(25); /* the RETRY passes, the SYNACKs not */
    s.link[b][a].cut_until = t0 + RUDP_SEC(2);
    s.tap = tap_record;
    seen_scid = 0;
    nrec = 0;
    sim_connect(&s, a, b, &cli_tpl, NULL);
    sim_run_until(&s, t0 + RUDP_MS(21));
    cr_assert(ne(u64, seen_scid, 0));
    cr_assert(eq(u64, rudp_ctx_stats(s.ep[b].ctx)->retries_sent, 1));
    uint8_t buf[RUDP_WIRE_SHORT_HDR];
    rudp_hdr h;
    memset(&h, 0, sizeof h);
    h.type = RUDP_PKT_RESET;
    h.flags = RUDP_PKTF_KEY | RUDP_PKTF_KEYED;
    h.dcid = seen_scid;
    cr_assert(eq(int, rudp__wire_hdr_encode(buf, sizeof buf, &h), RUDP_WIRE_SHORT_HDR));
    sim_inject(&s, &s.ep[b].addr, a, buf, sizeof buf);
    s.tap = NULL;
    sim_run_until(&s, t0 + RUDP_MS(1900));
    const sim_app *c = app_on(&s, a);
    cr_assert(eq(int, c->error, 0), "the connect failed (%d) on a forged refusal", c->error);
    cr_assert(not(rudp_conn_unauth_answers(c->conn)));
    cr_assert(sim_run(&s, s.now + RUDP_SEC(60)));
    assert_exact(&s, cli_tpl.to_send, srv_tpl.to_send);
    sim_free(&s);
}
