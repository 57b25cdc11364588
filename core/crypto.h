/*
 * crypto.h: keyed mode, packet protection with a shared key (crypto.c).
 *
 * Internal to core: ctx.c and conn*.c call it at the few places where a
 * datagram is built or taken in. The primitives are libsodium's: X25519
 * (crypto_scalarmult), BLAKE2b (crypto_generichash) as MAC and KDF,
 * ChaCha20-Poly1305 (IETF) or AES-256-GCM as the AEAD; but the DATA
 * datagrams' AEAD goes through aead.c, which runs AES-256-GCM with OpenSSL's
 * libcrypto where it loads (the same cipher, faster). The design, and why,
 * is in docs/security.md ("Keyed mode").
 *
 * Keyed handshake packets are the unkeyed ones with a tail:
 *   SYN     header | offer(1) | client public key(32) | zeros | MAC(16)   (1200 bytes)
 *   RETRY   header | MAC(16)
 *   SYNACK  header | cipher(1) | server public key(32) | MAC(16)
 *   RESET   header | MAC(16)     (to refuse an authenticated SYN)
 *   RESET   header | token(16)   (stateless reset, keyreset.c)
 * The SYN's MAC covers the datagram before it; the others' cover the
 * client's public key and then the datagram before it, so an answer is
 * bound to the SYN it answers. MAC = BLAKE2b-128 keyed with a key derived
 * from the shared key.
 * Keyed DATA packets: header(16) | AEAD ciphertext of the frames | tag(16),
 * the header as associated data, nonce = 0(4) | packet number(8, big
 * endian): packet numbers are never reused in a direction, and each
 * direction has its own key.
 */
#ifndef RUDP_CRYPTO_H
#define RUDP_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "rudp.h"
#include "wire.h"

#define RUDP_CRYPTO_TAG 16 /* AEAD tag and handshake MAC bytes */
#define RUDP_CRYPTO_PUB 32 /* X25519 public key bytes */

/* Ciphers (rudp.h's RUDP_AEAD_*): the SYN offers them, a bit each, and the
 * SYNACK names one. */

/* Not a cipher: a SYN's offer byte with this bit says the client takes a
 * reset token in the SYNACK (keyreset.c). A server that predates it masks
 * the offer with its ciphers and answers as before. */
#define RUDP_OFFER_TOKEN 0x80

/* In a server's keyed connection ID (under the ID's MAC, so no one without
 * the key can set or clear it): the client was given this connection's
 * reset token in the SYNACK, made with the server's reset ID
 * (rudp_ctx_set_reset_id); without it the token is bound to the server's
 * address, as before. */
#define RUDP_CID_TOKEN_BIT (1ull << 32)

/* A context's keyed state (NULL in an unkeyed one). */
typedef struct rudp_ctx_keyed rudp_ctx_keyed;
/* A connection's (NULL in an unkeyed context). */
typedef struct rudp_conn_keyed rudp_conn_keyed;

/* Bytes a keyed connection's DATA packets carry beyond their frames. */
static inline size_t rudp__seal_overhead(const rudp_conn_keyed *k)
{
    return k ? RUDP_CRYPTO_TAG : 0;
}

/* Subkeys of the shared key for keyreset.c: RUDP_SUBKEY_CID keys the MAC
 * that keyed connection IDs carry, RUDP_SUBKEY_RESET the stateless reset
 * tokens bound to an address, RUDP_SUBKEY_RESET_ID those of the server's
 * reset ID (NULL until rudp_ctx_set_reset_id). 32 bytes, owned by the
 * context; NULL in an unkeyed one. */
enum { RUDP_SUBKEY_CID = 1, RUDP_SUBKEY_RESET = 2, RUDP_SUBKEY_RESET_ID = 3 };
const uint8_t *rudp__keyed_subkey(const rudp_ctx *ctx, int which);

/* ---- keyreset.c: stateless reset in keyed mode ---- */

#define RUDP_RESET_TOKEN 16      /* token bytes after a keyed RESET's header */
#define RUDP_KEYED_RESETS_MAX 100 /* stateless resets a keyed context sends a second */

/* A keyed connection ID: the high 32 bits of r, then 32 bits of a MAC of
 * them keyed with the CID subkey, so that an engine with no state can tell
 * an ID some key holder made from a stranger's. */
uint64_t rudp__keyed_cid(const rudp_ctx *ctx, uint64_t r);

/* 1 if cid carries its MAC (made by rudp__keyed_cid with this key), else 0. */
int rudp__keyed_cid_valid(const rudp_ctx *ctx, uint64_t cid);

/* The stateless reset token of connection ID cid as sent from the address
 * `from` (the sender's address and port: the peer's, seen by the receiver):
 * BLAKE2b-128 keyed with the reset subkey over a label, cid and from (an
 * IPv4-mapped IPv6 address counts as the IPv4 one; scope IDs do not count). */
void rudp__keyed_reset_token(const rudp_ctx *ctx, uint64_t cid, const rudp_addr *from,
                             uint8_t out[RUDP_RESET_TOKEN]);

/* 1 if token (RUDP_RESET_TOKEN bytes) is cid's token from `from`, compared
 * in constant time (sodium_memcmp); 0 otherwise. */
int rudp__keyed_reset_token_ok(const rudp_ctx *ctx, uint64_t cid, const rudp_addr *from,
                               const uint8_t *token);

/* A keyed DATA datagram of len bytes for a connection ID this context does
 * not know arrived on sock, the socket of listener l (NULL: not a
 * listener's), from peer (local: the address it reached, NULL if unknown):
 * answers with a stateless reset when the README's conditions
 * hold (a key holder's ID, a listener's socket, a known local address,
 * smaller than what caused it, within the rate). Returns 1 if sent. */
int rudp__keyed_stateless_reset(rudp_ctx *ctx, rudp_time now, const rudp_listener *l, uint32_t sock,
                                const rudp_addr *local, const rudp_addr *peer, uint64_t dcid,
                                size_t len);

/* The stateless reset token of connection ID cid (RUDP_CID_TOKEN_BIT set)
 * of a server with a reset ID, on its listener's port:
 *   BLAKE2b-128(key RUDP_SUBKEY_RESET_ID, "rudp v1 reset token by id" | cid |
 *               port)
 * Needs no address: the server sends it to the client in the SYNACK. */
void rudp__keyed_id_token(const rudp_ctx *ctx, uint64_t cid, uint16_t port,
                          uint8_t out[RUDP_RESET_TOKEN]);

/* The reset token the server gave client connection c in its SYNACK, or
 * NULL (an older server, or one without a reset ID). */
const uint8_t *rudp__keyed_peer_token(const rudp_conn *c);

/* A RESET datagram (header hl bytes, len in all) naming dcid arrived from
 * peer for keyed connection c: 1 if it carries c's token, 0 if not. */
int rudp__keyed_reset_open(const rudp_conn *c, const rudp_addr *peer, uint64_t dcid,
                           const uint8_t *buf, size_t len, size_t hl);

/* Tests: the context offers and accepts only the ciphers in mask (one of
 * them at least stays). */
void rudp__keyed_limit_ciphers(rudp_ctx *ctx, uint8_t mask);

/* Tests and benchmarks: the context's connections made from now on seal
 * and open their DATA datagrams with a library in mask only
 * (RUDP_AEAD_LIB_SODIUM, RUDP_AEAD_LIB_BACKEND of aead.h), where it can. */
void rudp__keyed_limit_libs(rudp_ctx *ctx, uint8_t mask);

/* The backend's name ("openssl") or "libsodium": the library that seals and opens keyed
 * connection c's DATA datagrams; NULL before its keys exist. */
const char *rudp__keyed_aead_lib(const rudp_conn *c);

/* Frees the context's keyed state (NULL: nothing). */
void rudp__ctx_keyed_free(rudp_ctx *ctx, rudp_ctx_keyed *k);

/* Gives a new connection of a keyed context its keyed state and an
 * ephemeral key pair. Returns 0 (also when the context is unkeyed) or
 * -ENOMEM. */
int rudp__conn_keyed_new(rudp_conn *c);
void rudp__conn_keyed_free(rudp_conn *c);

/* Client: writes the SYN's tail after its header (hl bytes) in buf, which
 * has RUDP_MIN_SYN_SIZE bytes: the offer, the public key, zeros, the MAC.
 * With early > 0, a 0-RTT SYN (zrtt.c): the caller put `early` bytes of
 * frames at buf + hl + RUDP_KEYED_EARLY_AT (at most RUDP_MIN_SYN_SIZE - hl
 * - RUDP_KEYED_EARLY_AT - RUDP_KEYED_EARLY_OVERHEAD of them), which travel
 * as length(2) | ChaCha20-Poly1305 of them | tag, under a key of the
 * shared key, the client's ephemeral key and ID, with the header (token
 * included) as associated data; then zeros and the MAC. */
#define RUDP_KEYED_EARLY_AT (1 + RUDP_CRYPTO_PUB + 2)
#define RUDP_KEYED_EARLY_OVERHEAD (2 * RUDP_CRYPTO_TAG)
void rudp__keyed_syn_seal(rudp_conn *c, uint8_t *buf, size_t hl, size_t early);

/* Server: a SYN whose MAC held (rudp__keyed_syn_open) from the client with
 * ID client_cid and key client_pub: its 0-RTT frames decrypted into the
 * context's scratch, *frames and *n (valid until the next datagram).
 * Returns 0, or -EBADMSG (none, or they do not decrypt). */
int rudp__keyed_syn_early_open(const rudp_ctx *ctx, const uint8_t *buf, size_t len, size_t hl,
                               uint64_t client_cid, const uint8_t client_pub[RUDP_CRYPTO_PUB],
                               const uint8_t **frames, size_t *n);

/* Server: checks a SYN's MAC (the datagram is len >= RUDP_MIN_SYN_SIZE
 * bytes, its header hl). Returns 0 and the client's offer and public key,
 * or -EBADMSG (not a key holder's: drop it without a word). */
int rudp__keyed_syn_open(const rudp_ctx *ctx, const uint8_t *buf, size_t len, size_t hl,
                         uint8_t *offer, uint8_t client_pub[RUDP_CRYPTO_PUB]);

/* Server: appends the MAC to a RETRY or refusing RESET of n bytes in buf
 * (room for RUDP_CRYPTO_TAG more), bound to the SYN's client key; returns
 * the new length. */
size_t rudp__keyed_answer_seal(const rudp_ctx *ctx, const uint8_t client_pub[RUDP_CRYPTO_PUB],
                               uint8_t *buf, size_t n);

/* Server, accepting a SYN from the client whose connection ID is
 * client_cid: chooses the cipher from the client's offer, takes the
 * client's key and derives the traffic keys. Returns 0, or -EBADMSG (no
 * cipher in common, or a public key of low order). */
int rudp__keyed_accept(rudp_conn *c, uint8_t offer, const uint8_t client_pub[RUDP_CRYPTO_PUB],
                       uint64_t client_cid);

/* Server: writes the SYNACK's tail after its n bytes in buf (room for
 * 1 + 32 + 16 more); returns the new length. */
size_t rudp__keyed_synack_seal(rudp_conn *c, uint8_t *buf, size_t n);

/* Client: checks a RETRY, SYNACK or RESET (header hl bytes) for c; for a
 * SYNACK in SYN_SENT it also takes the server's key and derives the
 * traffic keys. Returns 0 or -EBADMSG (forged, or from a peer with
 * another key: drop it). */
int rudp__keyed_answer_open(rudp_conn *c, const rudp_hdr *h, const uint8_t *buf, size_t len,
                            size_t hl);

/* Encrypts the frames of a DATA packet in place: buf holds the header
 * (RUDP_WIRE_SHORT_HDR bytes, final) and then the frames, len bytes in
 * all, with room for RUDP_CRYPTO_TAG more; pn is the packet's full number.
 * Returns the datagram's length, or 0 if the library failed (cannot be;
 * buf is then garbage and must not be sent). */
size_t rudp__keyed_seal(rudp_conn *c, uint64_t pn, uint8_t *buf, size_t len);

/* Authenticates and decrypts a DATA datagram of c's (packet number pn,
 * expanded) into the context's scratch: *out is then the datagram with its
 * frames in plaintext (the header first), *out_len its length. Returns 0
 * or -EBADMSG (forged, altered or not for these keys: drop it). */
int rudp__keyed_open(rudp_conn *c, uint64_t pn, const uint8_t *buf, size_t len,
                     const uint8_t **out, size_t *out_len);

#endif
