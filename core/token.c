/*
 * token.c: address tokens (token.h): made by a server for a client to
 * come back with, checked when it does.
 */
#include <string.h>

#include "conn.h"
#include "siphash.h"
#include "token.h"

void rudp__atoken_key(rudp_ctx *ctx)
{
    static const char la[] = "rudp address token key a", lb[] = "rudp address token key b";
    uint64_t a = rudp__siphash(ctx->cookie_key, la, sizeof la - 1);
    uint64_t b = rudp__siphash(ctx->cookie_key, lb, sizeof lb - 1);
    memcpy(ctx->atoken_key, &a, 8);
    memcpy(ctx->atoken_key + 8, &b, 8);
}

/* MAC over kind | issued | id (the token's first 13 bytes) and the IP
 * address (an IPv4-mapped IPv6 address as the IPv4 one). */
static uint64_t token_mac(const rudp_ctx *ctx, const uint8_t head[13], const rudp_addr *peer)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    uint8_t msg[13 + 1 + 16];
    const uint8_t *ip = peer->ip;
    size_t n = 16;
    if (peer->family == 2) {
        n = 4;
    } else if (memcmp(peer->ip, mapped, sizeof mapped) == 0) {
        ip = peer->ip + 12;
        n = 4;
    }
    memcpy(msg, head, 13);
    msg[13] = n == 4 ? 4 : 6;
    memcpy(msg + 14, ip, n);
    return rudp__siphash(ctx->atoken_key, msg, 14 + n);
}

void rudp__atoken_make(rudp_ctx *ctx, rudp_time now, const rudp_addr *peer,
                       uint8_t out[RUDP_ATOKEN_LEN])
{
    uint32_t t = rudp__atoken_time(now);
    uint64_t id;
    do
        id = rudp__random64(ctx);
    while (id == 0);
    out[0] = RUDP_ATOKEN_KIND;
    for (int i = 0; i < 4; i++)
        out[1 + i] = (uint8_t)(t >> (24 - 8 * i));
    for (int i = 0; i < 8; i++)
        out[5 + i] = (uint8_t)(id >> (56 - 8 * i));
    uint64_t mac = token_mac(ctx, out, peer);
    memcpy(out + 13, &mac, 8);
}

int rudp__atoken_check(const rudp_ctx *ctx, rudp_time now, const rudp_addr *peer,
                       const uint8_t *tok, size_t len, uint64_t *id, uint32_t *issued)
{
    if (!rudp__atoken_is(tok, len))
        return RUDP_ATOKEN_INVALID;
    uint64_t mac = token_mac(ctx, tok, peer), got;
    memcpy(&got, tok + 13, 8);
    if ((mac ^ got) != 0)
        return RUDP_ATOKEN_INVALID;
    uint32_t t = rudp__atoken_time(now), ts = 0;
    for (int i = 0; i < 4; i++)
        ts = ts << 8 | tok[1 + i];
    if (ts > t + 1 || t - ts > RUDP_ATOKEN_LIFETIME)
        return RUDP_ATOKEN_INVALID; /* from the future (not ours), or expired */
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | tok[5 + i];
    *id = v;
    *issued = ts;
    return RUDP_ATOKEN_OK;
}
