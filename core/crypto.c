/*
 * crypto.c: keyed mode. With a shared key, only key holders get an answer,
 * and every datagram after the handshake is encrypted and authenticated
 * with keys that a later leak of the shared key does not reveal.
 *
 * The shared key K never touches a packet. Two keys are derived from it:
 *   mac key = BLAKE2b-256(key K, "rudp v1 handshake mac")
 *   kdf key = BLAKE2b-256(key K, "rudp v1 traffic keys")
 * Each side draws an ephemeral X25519 key pair per connection from a
 * forward-secure generator (the state is hashed forward after each draw, so
 * a process's memory later holds nothing that gives earlier keys). The
 * handshake packets carry the public keys under MACs with the mac key; then
 *   c2s | s2c = BLAKE2b-512(key kdf key, DH | client pub | server pub |
 *                           client ID | server ID | cipher)
 * and the ephemeral secret and DH result are wiped. So a connection's keys
 * need K (the handshake MACs and the KDF are keyed with it) and an ephemeral
 * secret (gone once the keys exist).
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "aead.h"
#include "alloc.h"
#include "crypto.h"
#include "seq.h"

struct rudp_ctx_keyed {
    uint8_t mac_key[32];
    uint8_t kdf_key[32];
    uint8_t cid_key[32];   /* keyreset.c: connection IDs a key holder made */
    uint8_t reset_key[32]; /* keyreset.c: stateless reset tokens */
    uint8_t reset_id_key[32]; /* keyreset.c: tokens by reset ID, if has_reset_id */
    uint8_t has_reset_id;
    uint8_t gen[32];   /* the forward-secure generator's state */
    uint8_t ciphers;   /* RUDP_AEAD_* this process can use */
    rudp_aead_libs aead; /* aead.c: which library runs each cipher */
    /* a DATA datagram decrypted: header, then the frames (last: not wiped) */
    uint8_t plain[65536];
};

struct rudp_conn_keyed {
    rudp_aead tx_aead, rx_aead; /* the DATA datagrams' protection, once keys exist */
    uint8_t tx[32], rx[32];
    uint8_t sk[32];          /* our ephemeral secret, until the keys exist */
    uint8_t pub[32];         /* our ephemeral public key */
    uint8_t client_pub[32];  /* the client's (ours on the client side) */
    uint8_t offer;           /* client: the ciphers its SYN offered */
    uint8_t peer_token[16];  /* client: the reset token the SYNACK gave */
    uint8_t has_peer_token;
    uint8_t cipher;          /* RUDP_AEAD_*, once agreed */
    uint8_t ready;           /* traffic keys derived */
};

static void kdf(uint8_t *out, size_t outlen, const uint8_t key[32], const char *label)
{
    crypto_generichash(out, outlen, (const uint8_t *)label, strlen(label), key, 32);
}

int rudp_ctx_set_key(rudp_ctx *ctx, const uint8_t key[RUDP_KEY_LEN], const uint8_t seed[32])
{
    if (ctx->nconns || ctx->listeners)
        return -EINVAL;
    if (sodium_init() < 0)
        return -ENOSYS;
    rudp_ctx_keyed *k = ctx->keyed;
    if (!k) {
        if (!(k = rudp__calloc(&ctx->allocator, 1, sizeof *k)))
            return -ENOMEM;
        rudp__aead_libs_init(&k->aead, &ctx->allocator, ctx->aead);
    }
    kdf(k->mac_key, sizeof k->mac_key, key, "rudp v1 handshake mac");
    kdf(k->kdf_key, sizeof k->kdf_key, key, "rudp v1 traffic keys");
    kdf(k->cid_key, sizeof k->cid_key, key, "rudp v1 connection ids");
    kdf(k->reset_key, sizeof k->reset_key, key, "rudp v1 stateless reset");
    kdf(k->gen, sizeof k->gen, seed, "rudp v1 ephemeral generator");
    k->ciphers = RUDP_AEAD_CHACHA;
    if (crypto_aead_aes256gcm_is_available())
        k->ciphers |= RUDP_AEAD_AESGCM;
    ctx->keyed = k;
    return 0;
}

int rudp_ctx_set_aead(rudp_ctx *ctx, const rudp_aead_backend *b)
{
    if (ctx->nconns || ctx->listeners)
        return -EINVAL;
    ctx->aead = b;
    rudp_ctx_keyed *k = ctx->keyed;
    if (k) { /* keyed already: its table starts again with b */
        rudp__aead_libs_free(&k->aead);
        rudp__aead_libs_init(&k->aead, &ctx->allocator, b);
    }
    return 0;
}

const uint8_t *rudp__keyed_subkey(const rudp_ctx *ctx, int which)
{
    if (!ctx->keyed)
        return NULL;
    if (which == RUDP_SUBKEY_RESET_ID)
        return ctx->keyed->has_reset_id ? ctx->keyed->reset_id_key : NULL;
    return which == RUDP_SUBKEY_CID ? ctx->keyed->cid_key : ctx->keyed->reset_key;
}

int rudp_ctx_set_reset_id(rudp_ctx *ctx, const void *id, size_t len)
{
    rudp_ctx_keyed *k = ctx->keyed;
    if (!k || ctx->nconns || ctx->listeners || len == 0 || len > 255)
        return -EINVAL;
    /* reset_id_key = BLAKE2b-256(key rst, "rudp v1 reset id" | len | id) */
    static const char label[] = "rudp v1 reset id";
    uint8_t n = (uint8_t)len;
    crypto_generichash_state st;
    crypto_generichash_init(&st, k->reset_key, sizeof k->reset_key, sizeof k->reset_id_key);
    crypto_generichash_update(&st, (const uint8_t *)label, sizeof label - 1);
    crypto_generichash_update(&st, &n, 1);
    crypto_generichash_update(&st, id, len);
    crypto_generichash_final(&st, k->reset_id_key, sizeof k->reset_id_key);
    k->has_reset_id = 1;
    return 0;
}

void rudp__keyed_limit_ciphers(rudp_ctx *ctx, uint8_t mask)
{
    if (ctx->keyed && (ctx->keyed->ciphers & mask))
        ctx->keyed->ciphers &= mask;
}

void rudp__keyed_limit_libs(rudp_ctx *ctx, uint8_t mask)
{
    if (ctx->keyed)
        rudp__aead_libs_limit(&ctx->keyed->aead, mask);
}

const char *rudp__keyed_aead_lib(const rudp_conn *c)
{
    if (!c->keyed || !c->keyed->ready)
        return NULL;
    return rudp__aead_lib_name(&c->keyed->tx_aead);
}

void rudp__ctx_keyed_free(rudp_ctx *ctx, rudp_ctx_keyed *k)
{
    if (!k)
        return;
    rudp__aead_libs_free(&k->aead);
    sodium_memzero(k, sizeof *k - sizeof k->plain);
    rudp__free(&ctx->allocator, k);
}

int rudp__conn_keyed_new(rudp_conn *c)
{
    rudp_ctx_keyed *ck = c->ctx->keyed;
    if (!ck)
        return 0;
    rudp_conn_keyed *k = rudp__calloc(&c->ctx->allocator, 1, sizeof *k);
    if (!k)
        return -ENOMEM;
    /* Draw, then hash the generator forward: what it held is gone. */
    uint8_t next[32];
    crypto_generichash(k->sk, sizeof k->sk, (const uint8_t *)"secret", 6, ck->gen, sizeof ck->gen);
    crypto_generichash(next, sizeof next, (const uint8_t *)"next", 4, ck->gen, sizeof ck->gen);
    memcpy(ck->gen, next, sizeof next);
    sodium_memzero(next, sizeof next);
    crypto_scalarmult_base(k->pub, k->sk);
    c->keyed = k;
    c->ctx->mem += sizeof *k; /* in the budget, as the connection is */
    return 0;
}

void rudp__conn_keyed_free(rudp_conn *c)
{
    rudp_conn_keyed *k = c->keyed;
    if (!k)
        return;
    c->ctx->mem -= sizeof *k + rudp__aead_mem(&k->tx_aead) + rudp__aead_mem(&k->rx_aead);
    rudp__aead_free(&k->tx_aead, &c->ctx->keyed->aead);
    rudp__aead_free(&k->rx_aead, &c->ctx->keyed->aead);
    sodium_memzero(k, sizeof *k);
    rudp__free(&c->ctx->allocator, c->keyed);
    c->keyed = NULL;
}

const char *rudp_conn_cipher(const rudp_conn *c)
{
    if (!c->keyed || !c->keyed->ready)
        return NULL;
    return c->keyed->cipher == RUDP_AEAD_AESGCM ? "aes256-gcm" : "chacha20-poly1305";
}

/* ---- handshake MACs ---- */

/* MAC over [client_pub |] buf[0..n) with the mac key. */
static void hs_mac(const rudp_ctx_keyed *ck, const uint8_t *client_pub, const uint8_t *buf,
                   size_t n, uint8_t out[RUDP_CRYPTO_TAG])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, ck->mac_key, sizeof ck->mac_key, RUDP_CRYPTO_TAG);
    if (client_pub)
        crypto_generichash_update(&st, client_pub, RUDP_CRYPTO_PUB);
    crypto_generichash_update(&st, buf, n);
    crypto_generichash_final(&st, out, RUDP_CRYPTO_TAG);
}

static int hs_mac_ok(const rudp_ctx_keyed *ck, const uint8_t *client_pub, const uint8_t *buf,
                     size_t len)
{
    uint8_t want[RUDP_CRYPTO_TAG];
    if (len < RUDP_CRYPTO_TAG)
        return 0;
    hs_mac(ck, client_pub, buf, len - RUDP_CRYPTO_TAG, want);
    return crypto_verify_16(want, buf + len - RUDP_CRYPTO_TAG) == 0;
}

/* The key of a SYN's 0-RTT frames (zrtt.c): BLAKE2b-256(key kdf key,
 * "rudp v1 0-rtt" | client pub | client ID). The client's ephemeral key
 * makes it one connection's; a SYN sent again carries the same bytes, so
 * nonce 0 serves. Forward secrecy it has not: whoever later holds K and a
 * copy of the SYN reads its data, as TLS 1.3's PSK early data. */
static void early_key(const rudp_ctx_keyed *ck, const uint8_t client_pub[RUDP_CRYPTO_PUB],
                      uint64_t client_cid, uint8_t out[32])
{
    static const char label[] = "rudp v1 0-rtt";
    uint8_t id[8];
    for (int i = 0; i < 8; i++)
        id[i] = (uint8_t)(client_cid >> (56 - 8 * i));
    crypto_generichash_state st;
    crypto_generichash_init(&st, ck->kdf_key, sizeof ck->kdf_key, 32);
    crypto_generichash_update(&st, (const uint8_t *)label, sizeof label - 1);
    crypto_generichash_update(&st, client_pub, RUDP_CRYPTO_PUB);
    crypto_generichash_update(&st, id, sizeof id);
    crypto_generichash_final(&st, out, 32);
}

void rudp__keyed_syn_seal(rudp_conn *c, uint8_t *buf, size_t hl, size_t early)
{
    rudp_conn_keyed *k = c->keyed;
    k->offer = (uint8_t)(c->ctx->keyed->ciphers | RUDP_OFFER_TOKEN);
    memcpy(k->client_pub, k->pub, sizeof k->pub);
    buf[hl] = k->offer;
    memcpy(buf + hl + 1, k->pub, sizeof k->pub);
    size_t mac_at = RUDP_MIN_SYN_SIZE - RUDP_CRYPTO_TAG, end = hl + 1 + sizeof k->pub;
    if (early) {
        /* length(2) | frames encrypted | tag, the header as associated data */
        uint8_t key[32], nonce[12] = {0};
        early_key(c->ctx->keyed, k->pub, c->cid, key);
        buf[end] = (uint8_t)(early >> 8);
        buf[end + 1] = (uint8_t)early;
        crypto_aead_chacha20poly1305_ietf_encrypt(buf + end + 2, NULL, buf + end + 2, early, buf,
                                                  hl, NULL, nonce, key);
        sodium_memzero(key, sizeof key);
        end += 2 + early + RUDP_CRYPTO_TAG;
    }
    memset(buf + end, 0, mac_at - end);
    hs_mac(c->ctx->keyed, NULL, buf, mac_at, buf + mac_at);
}

int rudp__keyed_syn_early_open(const rudp_ctx *ctx, const uint8_t *buf, size_t len, size_t hl,
                               uint64_t client_cid, const uint8_t client_pub[RUDP_CRYPTO_PUB],
                               const uint8_t **frames, size_t *n)
{
    size_t at = hl + 1 + RUDP_CRYPTO_PUB;
    if (at + 2 > len - RUDP_CRYPTO_TAG)
        return -EBADMSG;
    size_t early = (size_t)buf[at] << 8 | buf[at + 1];
    if (early == 0 || at + 2 + early + RUDP_CRYPTO_TAG > len - RUDP_CRYPTO_TAG)
        return -EBADMSG; /* none, or past the MAC */
    rudp_ctx_keyed *ck = ctx->keyed;
    uint8_t key[32], nonce[12] = {0};
    early_key(ck, client_pub, client_cid, key);
    int err = crypto_aead_chacha20poly1305_ietf_decrypt(ck->plain, NULL, NULL, buf + at + 2,
                                                        early + RUDP_CRYPTO_TAG, buf, hl, nonce,
                                                        key);
    sodium_memzero(key, sizeof key);
    if (err != 0)
        return -EBADMSG;
    *frames = ck->plain;
    *n = early;
    return 0;
}

int rudp__keyed_syn_open(const rudp_ctx *ctx, const uint8_t *buf, size_t len, size_t hl,
                         uint8_t *offer, uint8_t client_pub[RUDP_CRYPTO_PUB])
{
    if (hl + 1 + RUDP_CRYPTO_PUB + RUDP_CRYPTO_TAG > len || !hs_mac_ok(ctx->keyed, NULL, buf, len))
        return -EBADMSG;
    *offer = buf[hl];
    memcpy(client_pub, buf + hl + 1, RUDP_CRYPTO_PUB);
    return 0;
}

size_t rudp__keyed_answer_seal(const rudp_ctx *ctx, const uint8_t client_pub[RUDP_CRYPTO_PUB],
                               uint8_t *buf, size_t n)
{
    hs_mac(ctx->keyed, client_pub, buf, n, buf + n);
    return n + RUDP_CRYPTO_TAG;
}

/* ---- traffic keys ---- */

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* Derives c's traffic keys from the DH of our secret and the peer's public
 * key and keys both directions' AEAD; wipes the secret. -EBADMSG if the
 * peer's key is of low order (the DH result would be all zeros: anyone
 * could compute it), -ENOMEM if an AEAD could not be set up. */
static int derive(rudp_conn *c, const uint8_t peer_pub[RUDP_CRYPTO_PUB], uint64_t client_cid,
                  uint64_t server_cid)
{
    rudp_conn_keyed *k = c->keyed;
    uint8_t dh[32], out[64], ids[17];
    if (crypto_scalarmult(dh, k->sk, peer_pub) != 0)
        return -EBADMSG;
    const uint8_t *server_pub = c->is_server ? k->pub : peer_pub;
    put_be64(ids, client_cid);
    put_be64(ids + 8, server_cid);
    ids[16] = k->cipher;
    crypto_generichash_state st;
    crypto_generichash_init(&st, c->ctx->keyed->kdf_key, 32, sizeof out);
    crypto_generichash_update(&st, dh, sizeof dh);
    crypto_generichash_update(&st, k->client_pub, RUDP_CRYPTO_PUB);
    crypto_generichash_update(&st, server_pub, RUDP_CRYPTO_PUB);
    crypto_generichash_update(&st, ids, sizeof ids);
    crypto_generichash_final(&st, out, sizeof out);
    memcpy(c->is_server ? k->rx : k->tx, out, 32);      /* client to server */
    memcpy(c->is_server ? k->tx : k->rx, out + 32, 32); /* server to client */
    sodium_memzero(dh, sizeof dh);
    sodium_memzero(out, sizeof out);
    sodium_memzero(k->sk, sizeof k->sk);
    rudp_aead_libs *libs = &c->ctx->keyed->aead;
    int err = rudp__aead_init(&k->tx_aead, libs, k->cipher, k->tx);
    if (err == 0 && (err = rudp__aead_init(&k->rx_aead, libs, k->cipher, k->rx)) < 0)
        rudp__aead_free(&k->tx_aead, libs);
    if (err < 0)
        return err;
    c->ctx->mem += rudp__aead_mem(&k->tx_aead) + rudp__aead_mem(&k->rx_aead);
    k->ready = 1;
    return 0;
}

int rudp__keyed_accept(rudp_conn *c, uint8_t offer, const uint8_t client_pub[RUDP_CRYPTO_PUB],
                       uint64_t client_cid)
{
    rudp_conn_keyed *k = c->keyed;
    uint8_t common = (uint8_t)(offer & c->ctx->keyed->ciphers);
    /* AES-GCM where both ends have it in hardware: the faster of the two
     * there (make bench prints both costs); ChaCha20-Poly1305 otherwise. */
    if (common & RUDP_AEAD_AESGCM)
        k->cipher = RUDP_AEAD_AESGCM;
    else if (common & RUDP_AEAD_CHACHA)
        k->cipher = RUDP_AEAD_CHACHA;
    else
        return -EBADMSG;
    memcpy(k->client_pub, client_pub, RUDP_CRYPTO_PUB);
    return derive(c, client_pub, client_cid, c->cid);
}

/* The reset token travels in the SYNACK encrypted (whoever reads it can
 * end the connection) under a key of its own, derived from the server-to-
 * client traffic key and used for this one plaintext only (a SYNACK sent
 * again carries the same bytes): ChaCha20-Poly1305, nonce 0. */
static void token_key(const uint8_t s2c[32], uint8_t out[32])
{
    kdf(out, 32, s2c, "rudp v1 reset token in synack");
}

size_t rudp__keyed_synack_seal(rudp_conn *c, uint8_t *buf, size_t n)
{
    rudp_conn_keyed *k = c->keyed;
    buf[n] = k->cipher;
    memcpy(buf + n + 1, k->pub, sizeof k->pub);
    n += 1 + sizeof k->pub;
    if (c->cid & RUDP_CID_TOKEN_BIT) {
        /* the client asked for it (RUDP_OFFER_TOKEN) and we have a reset
         * ID (input_syn chose this ID so): [token | AEAD tag] */
        uint8_t tok[RUDP_RESET_TOKEN], tk[32], nonce[12] = {0};
        rudp__keyed_id_token(c->ctx, c->cid, c->name_local.port, tok);
        token_key(k->tx, tk);
        crypto_aead_chacha20poly1305_ietf_encrypt(buf + n, NULL, tok, sizeof tok, NULL, 0, NULL,
                                                  nonce, tk);
        n += sizeof tok + RUDP_CRYPTO_TAG;
        sodium_memzero(tok, sizeof tok);
        sodium_memzero(tk, sizeof tk);
    }
    hs_mac(c->ctx->keyed, k->client_pub, buf, n, buf + n);
    return n + RUDP_CRYPTO_TAG;
}

int rudp__keyed_answer_open(rudp_conn *c, const rudp_hdr *h, const uint8_t *buf, size_t len,
                            size_t hl)
{
    rudp_conn_keyed *k = c->keyed;
    if (hl + RUDP_CRYPTO_TAG > len || !hs_mac_ok(c->ctx->keyed, k->client_pub, buf, len))
        return -EBADMSG;
    if (h->type != RUDP_PKT_SYNACK || k->ready)
        return 0;
    size_t plain = hl + 1 + RUDP_CRYPTO_PUB + RUDP_CRYPTO_TAG;
    size_t with_token = plain + RUDP_RESET_TOKEN + RUDP_CRYPTO_TAG;
    /* with a token only if we asked (an older server sends none) */
    if ((len != plain && (len != with_token || !(k->offer & RUDP_OFFER_TOKEN))) ||
        c->state != RUDP_SYN_SENT)
        return -EBADMSG;
    uint8_t cipher = buf[hl];
    if (cipher != RUDP_AEAD_CHACHA && cipher != RUDP_AEAD_AESGCM)
        return -EBADMSG;
    if (!(cipher & k->offer))
        return -EBADMSG; /* not one we offered */
    k->cipher = cipher;
    int err = derive(c, buf + hl + 1, c->cid, h->scid);
    if (err < 0 || len == plain)
        return err;
    uint8_t tk[32], nonce[12] = {0};
    token_key(k->rx, tk);
    err = crypto_aead_chacha20poly1305_ietf_decrypt(k->peer_token, NULL, NULL,
                                                    buf + hl + 1 + RUDP_CRYPTO_PUB,
                                                    RUDP_RESET_TOKEN + RUDP_CRYPTO_TAG, NULL, 0,
                                                    nonce, tk);
    sodium_memzero(tk, sizeof tk);
    if (err != 0)
        return -EBADMSG; /* cannot be: the SYNACK's MAC held */
    k->has_peer_token = 1;
    return 0;
}

const uint8_t *rudp__keyed_peer_token(const rudp_conn *c)
{
    return c->keyed && c->keyed->has_peer_token ? c->keyed->peer_token : NULL;
}

/* ---- DATA packets ---- */

static void nonce_of(uint8_t n[12], uint64_t pn)
{
    memset(n, 0, 4);
    put_be64(n + 4, pn);
}

size_t rudp__keyed_seal(rudp_conn *c, uint64_t pn, uint8_t *buf, size_t len)
{
    uint8_t nonce[12];
    nonce_of(nonce, pn);
    if (rudp__aead_seal(&c->keyed->tx_aead, nonce, buf, RUDP_WIRE_SHORT_HDR,
                        buf + RUDP_WIRE_SHORT_HDR, len - RUDP_WIRE_SHORT_HDR, buf + len) < 0)
        return 0;
    return len + RUDP_CRYPTO_TAG;
}

int rudp__keyed_open(rudp_conn *c, uint64_t pn, const uint8_t *buf, size_t len,
                     const uint8_t **out, size_t *out_len)
{
    rudp_conn_keyed *k = c->keyed;
    uint8_t *plain = c->ctx->keyed->plain;
    if (!k->ready || len < RUDP_WIRE_SHORT_HDR + RUDP_CRYPTO_TAG || len > sizeof c->ctx->keyed->plain)
        return -EBADMSG;
    uint8_t nonce[12];
    nonce_of(nonce, pn);
    size_t clen = len - RUDP_WIRE_SHORT_HDR - RUDP_CRYPTO_TAG;
    const uint8_t *ct = buf + RUDP_WIRE_SHORT_HDR, *tag = buf + len - RUDP_CRYPTO_TAG;
    if (rudp__aead_open(&k->rx_aead, nonce, buf, RUDP_WIRE_SHORT_HDR, ct, clen, tag,
                        plain + RUDP_WIRE_SHORT_HDR) < 0)
        return -EBADMSG;
    memcpy(plain, buf, RUDP_WIRE_SHORT_HDR);
    *out = plain;
    *out_len = len - RUDP_CRYPTO_TAG;
    return 0;
}
