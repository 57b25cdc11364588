/*
 * token.h: address tokens and the strike register, for a returning
 * client's zero-round-trip handshake (token.c, strike.c).
 *
 * A server that allows 0-RTT (rudp_listener_set_zero_rtt) gives each
 * client, once the handshake is done, an address token in a NEW_TOKEN
 * frame (inside the AEAD when keyed). The client's next SYN to that server
 * carries it in the header's token field, and its first stream bytes in a
 * STREAM frame where the padding was. The token is
 *
 *   kind(1) = RUDP_ATOKEN_KIND | issued(4, big endian, units of 2^30 ns)
 *   | id(8, random) | MAC(8)
 *   MAC = SipHash-2-4(token key; kind | issued | id | client IP address)
 *
 * RUDP_ATOKEN_LEN bytes, so a server tells it from a RETRY cookie
 * (RUDP_TOKEN_LEN bytes) by its length and kind byte. The token key is the
 * context's own, drawn from its secret seed (never the shared key of keyed
 * mode): the strike register that makes tokens single use is the
 * context's too, so a token must be worthless anywhere the register does
 * not reach (another engine, another process sharing the key).
 *
 * The address is the IP address without the port: a client's next
 * connection comes from another port. A token from another address, forged,
 * or older than RUDP_ATOKEN_LIFETIME is refused; so is one the strike
 * register has seen (a replay) or cannot vouch for (strike.c). A refused
 * token costs nothing but the round trip it meant to save: the handshake
 * goes on as if the SYN carried none, and the client sends its first bytes
 * again once established.
 */
#ifndef RUDP_TOKEN_H
#define RUDP_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "rudp.h"

#define RUDP_ATOKEN_KIND 0xa7
#define RUDP_ATOKEN_LEN 21
/* How long a token is good for: 24 hours, in units of 2^30 ns. TCP Fast
 * Open's cookies live as long as the server's key (Linux rotates none by
 * itself) because a cookie may be used again and again; ours is single
 * use and the client gets a new one on every connection, so a client that
 * comes back at least once a day keeps its 0-RTT for good. A longer life
 * buys little and asks the strike register to remember longer (strike.c:
 * it forgets the oldest first, and refuses what it forgot). */
#define RUDP_ATOKEN_LIFETIME 80466u
/* Token IDs the strike register remembers, at most (16 bytes each, in a
 * table twice as large). */
#define RUDP_STRIKE_MAX 16384u

/* What rudp__atoken_check and rudp__strike_record answer. */
enum {
    RUDP_ATOKEN_OK = 0,
    RUDP_ATOKEN_INVALID = -1, /* forged, another address's, or expired */
    RUDP_ATOKEN_REPLAY = -2,  /* its ID was used before */
    RUDP_ATOKEN_FULL = -3,    /* the register cannot vouch for it (full, no memory) */
};

/* Whether the token field of a SYN (len bytes) is an address token. */
static inline int rudp__atoken_is(const uint8_t *tok, size_t len)
{
    return len == RUDP_ATOKEN_LEN && tok[0] == RUDP_ATOKEN_KIND;
}

/* Derives ctx->atoken_key from its handshake cookie key (drawn from the
 * seed) under a label of its own, so a cookie's MAC and a token's never
 * share a key; once, at rudp_ctx_new. */
void rudp__atoken_key(rudp_ctx *ctx);

/* A new token for the client at `peer` (its port is ignored), issued now
 * (the caller's clock, rudp_time), with a fresh random ID. */
void rudp__atoken_make(rudp_ctx *ctx, rudp_time now, const rudp_addr *peer,
                       uint8_t out[RUDP_ATOKEN_LEN]);

/* Checks a token from `peer`: RUDP_ATOKEN_OK with its ID and issue time
 * (*id, *issued), or RUDP_ATOKEN_INVALID. Does not record it. */
int rudp__atoken_check(const rudp_ctx *ctx, rudp_time now, const rudp_addr *peer,
                       const uint8_t *tok, size_t len, uint64_t *id, uint32_t *issued);

/* ---- strike.c: the record of token IDs used ---- */

/*
 * A bounded set of (ID, issue time) pairs. A token ID recorded once is
 * refused ever after within the token's lifetime; past it the token is
 * refused anyway (expired), so the pair can go. When the register is full
 * it forgets its oldest pairs and raises a horizon to their issue time:
 * a token issued at or before the horizon is refused (RUDP_ATOKEN_FULL),
 * whatever its ID, since the register cannot tell whether it was used.
 * So the register never accepts a token it cannot vouch for, and never
 * grows past `max` pairs.
 */
typedef struct rudp_strike {
    uint64_t *ids;     /* open addressing, 0 = empty slot */
    uint32_t *issued;  /* beside ids */
    uint32_t slots;    /* a power of two, twice max */
    uint32_t n, max;
    uint32_t horizon;  /* tokens issued at or before it are refused */
    int has_horizon;
    const rudp_mem *mem; /* where the table comes from (alloc.h) */
} rudp_strike;

/* An empty register holding at most max IDs; allocates on first use, from
 * mem (NULL: libc's), which must outlive it. */
void rudp__strike_init(rudp_strike *s, const rudp_mem *mem, uint32_t max);
void rudp__strike_free(rudp_strike *s);

/* Records token `id` issued at `issued` (now: the current time in the
 * same units). Returns RUDP_ATOKEN_OK (first use: recorded),
 * RUDP_ATOKEN_REPLAY, or RUDP_ATOKEN_FULL (issued at or before the
 * horizon, or no memory for the table). ID 0 is never issued; it is
 * refused as a replay. */
int rudp__strike_record(rudp_strike *s, uint64_t id, uint32_t issued, uint32_t now);

/* The units of 2^30 ns that token issue times (and the handshake
 * cookies', ctx.c) count in. */
static inline uint32_t rudp__atoken_time(rudp_time now)
{
    return (uint32_t)(now >> 30);
}

#endif
