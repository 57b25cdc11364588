/*
 * keyreset.c: stateless reset in keyed mode, after QUIC's (RFC 9000
 * §10.3).
 *
 * An endpoint that lost a connection's state (its process died and was
 * restarted on the same port) gets the peer's next DATA packet and cannot
 * decrypt it. It answers with a RESET whose tail is a token only holders
 * of the shared key can compute for that connection ID:
 *   token = BLAKE2b-128(key reset subkey, label | connection ID | the
 *                       sender's address and port)
 * or, from a server with a reset ID (rudp_ctx_set_reset_id) to a client
 * that took the token in the SYNACK (the ID's RUDP_CID_TOKEN_BIT says so),
 *   token = BLAKE2b-128(key reset ID subkey, label | connection ID | port)
 * and the peer ends the connection (ECONNRESET) only if the token is the
 * one it was given, or else the one it computes for its peer's ID and
 * address, compared in constant time.
 *
 * Who gets one, and why (docs/security.md "Keyed mode", "Stateless reset"):
 * - Only a datagram whose destination ID a key holder made: keyed IDs carry
 *   a 32-bit MAC under another subkey, so a stranger without the key (who
 *   has seen no ID of ours) still gets nothing back. A packet cannot be
 *   authenticated further without the connection's state; an on-path
 *   observer who copies a real ID learns only the token of a connection
 *   that is already gone where it asked.
 * - Only on a listener's socket: a client's connection has its own UDP
 *   socket, gone with its process; and an engine that merely shares the
 *   key (another host, another process's client socket) must not hand out
 *   the token of a connection it never had (RFC 9000 §21.11, the stateless
 *   reset oracle). The sender's address and port (or reset ID and port)
 *   in the token keep a token asked of one endpoint from working for
 *   another's connection. Nor from a listener that may share its port
 *   with other processes (rudp_listener_set_keyed_reset), nor for an ID
 *   tagged with another engine's index (ctx.c: that engine answers).
 * - Never bigger than what caused it (16 + 16 bytes, to datagrams of more
 *   than that: a keyed DATA packet is at least 33), never in answer to a
 *   RESET (no loops, RFC 9000 §10.3.3), at most RUDP_KEYED_RESETS_MAX a
 *   second (no reflector for floods of copied IDs).
 */
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "conn.h"
#include "crypto.h"

static const char cid_label[] = "rudp v1 cid";
static const char token_label[] = "rudp v1 reset token";
static const char id_token_label[] = "rudp v1 reset token by id";

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint32_t cid_mac(const uint8_t *key, uint32_t hi)
{
    uint8_t in[sizeof cid_label - 1 + 4], out[crypto_generichash_BYTES_MIN];
    memcpy(in, cid_label, sizeof cid_label - 1);
    for (int i = 0; i < 4; i++)
        in[sizeof cid_label - 1 + (size_t)i] = (uint8_t)(hi >> (24 - 8 * i));
    crypto_generichash(out, sizeof out, in, sizeof in, key, 32);
    return (uint32_t)out[0] << 24 | (uint32_t)out[1] << 16 | (uint32_t)out[2] << 8 | out[3];
}

uint64_t rudp__keyed_cid(const rudp_ctx *ctx, uint64_t r)
{
    uint32_t hi = (uint32_t)(r >> 32);
    return (uint64_t)hi << 32 | cid_mac(rudp__keyed_subkey(ctx, RUDP_SUBKEY_CID), hi);
}

int rudp__keyed_cid_valid(const rudp_ctx *ctx, uint64_t cid)
{
    const uint8_t *key = rudp__keyed_subkey(ctx, RUDP_SUBKEY_CID);
    if (!key)
        return 0;
    /* Not secret: only keeps strangers' guesses from costing an answer. */
    return cid_mac(key, (uint32_t)(cid >> 32)) == (uint32_t)cid;
}

/* The address as the token covers it: family (4 or 6), address, port; an
 * IPv4-mapped IPv6 address as the IPv4 one, so a dual-stack socket and an
 * IPv4 one name the same sender alike. Returns the bytes written (<= 19). */
static size_t addr_bytes(const rudp_addr *a, uint8_t out[19])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const uint8_t *ip = a->ip;
    size_t n = 16;
    if (a->family == 2) {
        n = 4;
    } else if (memcmp(a->ip, mapped, sizeof mapped) == 0) {
        ip = a->ip + 12;
        n = 4;
    }
    out[0] = n == 4 ? 4 : 6;
    memcpy(out + 1, ip, n);
    out[1 + n] = (uint8_t)(a->port >> 8);
    out[2 + n] = (uint8_t)a->port;
    return n + 3;
}

void rudp__keyed_reset_token(const rudp_ctx *ctx, uint64_t cid, const rudp_addr *from,
                             uint8_t out[RUDP_RESET_TOKEN])
{
    uint8_t id[8], addr[19];
    put_be64(id, cid);
    size_t an = addr_bytes(from, addr);
    crypto_generichash_state st;
    crypto_generichash_init(&st, rudp__keyed_subkey(ctx, RUDP_SUBKEY_RESET), 32, RUDP_RESET_TOKEN);
    crypto_generichash_update(&st, (const uint8_t *)token_label, sizeof token_label - 1);
    crypto_generichash_update(&st, id, sizeof id);
    crypto_generichash_update(&st, addr, an);
    crypto_generichash_final(&st, out, RUDP_RESET_TOKEN);
}

void rudp__keyed_id_token(const rudp_ctx *ctx, uint64_t cid, uint16_t port,
                          uint8_t out[RUDP_RESET_TOKEN])
{
    uint8_t id[10];
    put_be64(id, cid);
    id[8] = (uint8_t)(port >> 8);
    id[9] = (uint8_t)port;
    crypto_generichash_state st;
    crypto_generichash_init(&st, rudp__keyed_subkey(ctx, RUDP_SUBKEY_RESET_ID), 32,
                            RUDP_RESET_TOKEN);
    crypto_generichash_update(&st, (const uint8_t *)id_token_label, sizeof id_token_label - 1);
    crypto_generichash_update(&st, id, sizeof id);
    crypto_generichash_final(&st, out, RUDP_RESET_TOKEN);
}

int rudp__keyed_reset_token_ok(const rudp_ctx *ctx, uint64_t cid, const rudp_addr *from,
                               const uint8_t *token)
{
    uint8_t want[RUDP_RESET_TOKEN];
    rudp__keyed_reset_token(ctx, cid, from, want);
    int ok = sodium_memcmp(want, token, RUDP_RESET_TOKEN) == 0;
    sodium_memzero(want, sizeof want);
    return ok;
}

/* Room in the rate: RUDP_KEYED_RESETS_MAX in each second from the first. */
static int within_rate(rudp_ctx *ctx, rudp_time now)
{
    return rudp__rate_take(&ctx->reset_window, &ctx->resets_in_window, RUDP_KEYED_RESETS_MAX,
                           RUDP_SEC(1), now);
}

int rudp__keyed_stateless_reset(rudp_ctx *ctx, rudp_time now, const rudp_listener *l,
                                uint32_t sock, const rudp_addr *local, const rudp_addr *peer,
                                uint64_t dcid, size_t len)
{
    if (!ctx->keyed || ctx->keyed_reset_off || !l || l->no_keyed_reset)
        return 0;
    if (len <= RUDP_WIRE_SHORT_HDR + RUDP_RESET_TOKEN)
        return 0; /* never bigger than what caused it */
    if (!rudp__keyed_cid_valid(ctx, dcid))
        return 0; /* a stranger's: no answer */
    /* The sender's address as the peer sees it: where the datagram came
     * to, with the listener's port. A wildcard listener that does not know
     * it sends nothing rather than a token its peer would refuse. */
    rudp_addr from;
    if (local && local->family)
        from = *local;
    else
        from = l->name_local;
    if (!from.port)
        from.port = l->name_local.port; /* IP_PKTINFO gives no port */
    static const uint8_t zero[16];
    if (!from.family || !from.port || memcmp(from.ip, zero, from.family == 2 ? 4 : 16) == 0)
        return 0;
    /* An ID whose token the client was given in the SYNACK: that token,
     * from our reset ID and port, whatever address the client sees us at
     * (a NAT's); none if we lost the reset ID (the client takes no other). */
    int by_id = (dcid & RUDP_CID_TOKEN_BIT) != 0;
    if (by_id && !rudp__keyed_subkey(ctx, RUDP_SUBKEY_RESET_ID))
        return 0;
    if (!within_rate(ctx, now))
        return 0;
    uint8_t token[RUDP_RESET_TOKEN];
    if (by_id)
        rudp__keyed_id_token(ctx, dcid, from.port, token);
    else
        rudp__keyed_reset_token(ctx, dcid, &from, token);
    rudp__send_reset(ctx, sock, local, peer, dcid, NULL, token);
    return 1;
}

int rudp__keyed_reset_open(const rudp_conn *c, const rudp_addr *peer, uint64_t dcid,
                           const uint8_t *buf, size_t len, size_t hl)
{
    if (!c->keyed || hl != RUDP_WIRE_SHORT_HDR || len != hl + RUDP_RESET_TOKEN)
        return 0;
    const uint8_t *given = rudp__keyed_peer_token(c);
    if (given)
        return sodium_memcmp(given, buf + hl, RUDP_RESET_TOKEN) == 0;
    return rudp__keyed_reset_token_ok(c->ctx, dcid, peer, buf + hl);
}

void rudp_listener_set_keyed_reset(rudp_listener *l, int on)
{
    l->no_keyed_reset = !on;
}

int rudp_ctx_set_keyed_reset(rudp_ctx *ctx, int on)
{
    if (!ctx->keyed)
        return -EINVAL;
    ctx->keyed_reset_off = !on;
    return 0;
}
