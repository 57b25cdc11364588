/*
 * cookie.c: the handshake's cookies. A RETRY carries a token (issue time
 * and a MAC over the client's address and connection ID, keyed by the
 * context's cookie key) that the client's next SYN echoes: a listener
 * under pressure keeps no state until then (ctx.c's front door), and a
 * loopback SYN whose SYNACK waits for the accept queue is told so by one
 * (conn.c's held notice, RUDP_PKTF_HELD). Here so that both reach it
 * without calling each other.
 */
#include <string.h>

#include "conn.h"
#include "crypto.h"
#include "siphash.h"
#include "token.h"
#include "wire.h"

static uint64_t token_mac(const rudp_ctx *ctx, uint32_t ts, const rudp_addr *peer,
                          uint64_t scid)
{
    uint8_t msg[4 + sizeof(rudp_addr) + 8];
    memcpy(msg, &ts, 4);
    memcpy(msg + 4, peer, sizeof *peer);
    memcpy(msg + 4 + sizeof *peer, &scid, 8);
    return rudp__siphash(ctx->cookie_key, msg, sizeof msg);
}

static void make_token(const rudp_ctx *ctx, rudp_time now, const rudp_addr *peer, uint64_t scid,
                       uint8_t out[RUDP_TOKEN_LEN])
{
    uint32_t ts = rudp__atoken_time(now);
    uint64_t mac = token_mac(ctx, ts, peer, scid);
    for (int i = 0; i < 4; i++)
        out[i] = (uint8_t)(ts >> (24 - 8 * i));
    memcpy(out + 4, &mac, 8);
}

int rudp__cookie_valid(const rudp_ctx *ctx, rudp_time now, const rudp_addr *peer, uint64_t scid,
                       const uint8_t *tok, size_t len)
{
    if (len != RUDP_TOKEN_LEN)
        return 0;
    uint32_t ts = (uint32_t)tok[0] << 24 | (uint32_t)tok[1] << 16 | (uint32_t)tok[2] << 8 | tok[3];
    uint32_t t = rudp__atoken_time(now);
    if (ts > t + 1 || t - ts > RUDP_TOKEN_LIFETIME)
        return 0;
    uint64_t mac = token_mac(ctx, ts, peer, scid), got;
    memcpy(&got, tok + 4, 8);
    /* constant time: no early exit on the first differing byte */
    return ((mac ^ got) == 0);
}

void rudp__send_retry(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *local,
                      const rudp_addr *peer, uint64_t client_cid, const uint8_t *client_pub,
                      int held)
{
    rudp_hdr h;
    memset(&h, 0, sizeof h);
    h.type = RUDP_PKT_RETRY;
    h.flags = held ? RUDP_PKTF_HELD : 0;
    h.dcid = client_cid;
    h.token_len = RUDP_TOKEN_LEN;
    make_token(ctx, now, peer, client_cid, h.token);
    uint8_t buf[64 + RUDP_CRYPTO_TAG];
    int n = rudp__wire_hdr_encode(buf, 64, &h);
    if (n <= 0)
        return;
    if (ctx->keyed)
        n = (int)rudp__keyed_answer_seal(ctx, client_pub, buf, (size_t)n);
    rudp__send(ctx, sock, peer, local, 0, buf, (size_t)n);
}
