/*
 * keystate.c: when the two ends' keys differ (RUDP_KEY_FILE on one end
 * only, or two different keys), both people learn it within about a
 * second, in words that say which end has what.
 *
 * The refusing end (the server) cannot authenticate anything to a client
 * that lacks its key, so what it sends is an unauthenticated KEY refusal:
 * a 16-byte RESET flagged RUDP_PKTF_KEY, and RUDP_PKTF_KEYED if the sender
 * holds a key, to the SYN's source connection ID. It goes in answer to a
 * SYN flagged RUDP_PKTF_KEYED at an unkeyed context, and to a SYN whose MAC
 * fails at a keyed one (no key, or another). It is smaller than the SYN
 * (1,200 bytes), at most RUDP_KEY_REFUSALS_MAX a second, and keeps no
 * state. The server says it once per peer address at warn, at most
 * RUDP_KEY_LOGS_MAX lines a minute: a sender of SYNs from many addresses
 * cannot flood its log (key_refusals counts them all).
 *
 * The client treats a refusal by what it could trust anyway:
 * - unkeyed, the refusal ends the connect at once (ECONNREFUSED,
 *   RUDP_CAUSE_KEY_REQUIRED), exactly as an unkeyed RESET refusing the SYN
 *   does: neither is authenticated, and unkeyed mode has no defence against
 *   a sender on the path (as TCP's RST);
 * - keyed, it is only evidence, like any handshake answer that fails
 *   authentication (an unkeyed server's SYNACK, another key's RETRY): the
 *   connect goes on sending SYNs and takes any authenticated answer, and
 *   fails (ECONNREFUSED, RUDP_CAUSE_KEY_MISMATCH) only if none came by
 *   RUDP_KEY_VERDICT after connect() and RUDP_KEY_VERDICT_AFTER after the
 *   first evidence. So a forged refusal cannot end a connect whose server
 *   answers: the real server's authenticated SYNACK, one round trip away,
 *   wins; what it can do is end sooner a connect whose answers were all
 *   lost for a second, which whoever can drop them ends at the connect
 *   timeout anyway (docs/security.md, "Key mistakes").
 */
#include <string.h>

#include "conn.h"
#include "wire.h"

/* The warn line for a refused SYN from peer: once per address and what its
 * SYN had (1: no key, 2: a key), within RUDP_KEY_LOGS_MAX a minute. */
static void tell(rudp_ctx *ctx, rudp_time now, const rudp_addr *name, const rudp_addr *peer,
                 int client_keyed)
{
    if (!ctx->ops.log || ctx->log_level < RUDP_LOG_WARN)
        return;
    uint8_t what = (uint8_t)(client_keyed ? 2 : 1);
    for (unsigned i = 0; i < sizeof ctx->key_told / sizeof ctx->key_told[0]; i++) {
        const struct rudp_key_told *t = &ctx->key_told[i];
        if (t->what == what && t->family == peer->family && memcmp(t->ip, peer->ip, 16) == 0)
            return;
    }
    if (!rudp__rate_take(&ctx->key_log_window, &ctx->key_logs_in_window, RUDP_KEY_LOGS_MAX,
                         RUDP_SEC(60), now))
        return;
    struct rudp_key_told *t = &ctx->key_told[ctx->key_told_next++ % 16];
    memcpy(t->ip, peer->ip, 16);
    t->family = peer->family;
    t->what = what;
    char p[64], l[64];
    rudp_addr_format(peer, p, sizeof p);
    rudp_addr_format(name, l, sizeof l);
    const char *why = ctx->keyed ? client_keyed
                                       ? "its MAC fails: the client has another key (or the "
                                         "datagram was damaged); this end has a key"
                                       : "the client has no key; this end has one (RUDP_KEY_FILE)"
                                 : "the client has a key (RUDP_KEY_FILE); this end has none";
    rudp__log(ctx, RUDP_LOG_WARN,
              "%s > %s: handshake refused: %s. Said once per client address%s", l, p, why,
              ctx->key_logs_in_window == RUDP_KEY_LOGS_MAX
                  ? "; no more such lines for a minute (counted: \"key refusals\")"
                  : "");
}

void rudp__key_refuse(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *local,
                      const rudp_addr *name, const rudp_addr *peer, const rudp_hdr *h)
{
    int client_keyed = (h->flags & RUDP_PKTF_KEYED) != 0;
    ctx->stats.key_refusals++;
    tell(ctx, now, name, peer, client_keyed);
    if (!rudp__rate_take(&ctx->key_refusal_window, &ctx->key_refusals_in_window,
                         RUDP_KEY_REFUSALS_MAX, RUDP_SEC(1), now))
        return;
    rudp_hdr r;
    memset(&r, 0, sizeof r);
    r.type = RUDP_PKT_RESET;
    r.flags = (uint8_t)(RUDP_PKTF_KEY | (ctx->keyed ? RUDP_PKTF_KEYED : 0));
    r.dcid = h->scid;
    uint8_t buf[RUDP_WIRE_SHORT_HDR];
    int n = rudp__wire_hdr_encode(buf, sizeof buf, &r);
    if (n <= 0)
        return;
    ctx->stats.key_refusals_sent++;
    rudp__send(ctx, sock, peer, local, 0, buf, (size_t)n);
}

void rudp__key_unauth_answer(rudp_conn *c, rudp_time now, const rudp_hdr *h)
{
    if (c->state != RUDP_SYN_SENT || c->is_server)
        return;
    if (h->type == RUDP_PKT_RESET && (h->flags & RUDP_PKTF_KEY))
        c->key_said = (h->flags & RUDP_PKTF_KEYED) ? RUDP_KEY_SAID_KEY : RUDP_KEY_SAID_NONE;
    else if (c->key_said == RUDP_KEY_SAID_NOTHING)
        c->key_said = RUDP_KEY_SAID_UNAUTH;
    if (c->auth_failed)
        return;
    c->auth_failed = 1;
    rudp_time at = c->hs_start + RUDP_KEY_VERDICT, least = now + RUDP_KEY_VERDICT_AFTER;
    c->key_verdict_at = at > least ? at : least;
    rudp__conn_arm(c, RUDP_T_GIVEUP, rudp__conn_giveup_at(c)); /* conn.c */
}
