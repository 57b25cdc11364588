/*
 * ctx.c: the context: connection tables, datagram demultiplexing, the
 * handshake's front door, timers and the event queue.
 *
 * A SYN without a cookie makes a connection (SYN_RCVD) and is answered by a
 * SYNACK at once: the client is connected after one round trip, as with
 * TCP. Under pressure (budget.c, rudp__must_retry: half the backlog in the
 * handshake or a full accept queue, half a source's share, half the memory
 * limit; or the listener's cfg.retry says always) it earns a stateless
 * RETRY carrying a cookie (a MAC over the client's address, its connection
 * ID and the time) instead, and only a SYN that echoes a valid cookie makes a connection: a
 * SYN flood from spoofed addresses holds at most half the backlog, then
 * leaves nothing behind, as SYN cookies do. SYNs are padded to
 * RUDP_MIN_SYN_SIZE, so a RETRY is never larger than the datagram that
 * caused it, and a connection whose address is not validated (no cookie,
 * no DATA from the client yet) sends at most 3x the bytes it received
 * (conn.c): nobody can use us as an amplifier. A returning client's SYN
 * may carry an address token instead of a cookie (token.h, zrtt.c): valid
 * and unused, it validates the address as a cookie does, even under
 * pressure, and the stream bytes the SYN carries are taken at once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "alloc.h"
#include "siphash.h"
#include "trace.h"

/* The services a connection gets from its context (conn.h): set once per
 * context, so conn.c and the files beside it never name ctx.c's
 * functions, while ctx.c calls theirs. */
static uint64_t new_cid(rudp_ctx *ctx);
static uint64_t random64(rudp_ctx *ctx);
static int table_add_cid(rudp_ctx *ctx, rudp_conn *c);
static int table_add_peer(rudp_ctx *ctx, rudp_conn *c);
static void table_remove(rudp_ctx *ctx, rudp_conn *c);
static void table_rekey_peer(rudp_ctx *ctx, rudp_conn *c, const rudp_addr *addr);
static void conn_kill(rudp_conn *c);
static void send_reset(rudp_ctx *ctx, uint32_t sock, const rudp_addr *local,
                       const rudp_addr *peer, uint64_t dcid, const uint8_t *client_pub,
                       const uint8_t *token);

static const rudp_conn_host host = {
    .new_cid = new_cid,
    .random64 = random64,
    .table_add_cid = table_add_cid,
    .table_add_peer = table_add_peer,
    .table_remove = table_remove,
    .table_rekey_peer = table_rekey_peer,
    .kill = conn_kill,
    .send_reset = send_reset,
};

/* ---- context ---- */

int rudp_ctx_new(const rudp_ctx_ops *ops, void *user, const uint8_t seed[32],
                 const rudp_config *defaults, const rudp_mem *mem, rudp_ctx **out)
{
    rudp_config cfg;
    if (defaults) {
        if (rudp_config_check(defaults, NULL))
            return -EINVAL;
        cfg = *defaults;
    } else {
        rudp_config_default(&cfg);
    }
    mem = rudp__mem_or_libc(mem);
    rudp_ctx *ctx = rudp__calloc(mem, 1, sizeof *ctx);
    if (!ctx)
        return -ENOMEM;
    ctx->allocator = *mem;
    ctx->chunks.mem = &ctx->allocator;
    ctx->chunks.max = RUDP_CHUNK_POOL_MAX;
    ctx->ops = *ops;
    ctx->host = &host;
    ctx->user = user;
    ctx->defaults = cfg;
    ctx->log_level = RUDP_LOG_WARN;
    memcpy(ctx->cid_key, seed, 16);
    memcpy(ctx->cookie_key, seed + 16, 16);
    rudp__atoken_key(ctx);
    rudp__wheel_init(&ctx->wheel, 0);
    rudp__strike_init(&ctx->strike, &ctx->allocator, RUDP_STRIKE_MAX);
    *out = ctx;
    return 0;
}

int rudp_ctx_set_cid_tag(rudp_ctx *ctx, unsigned bits, unsigned tag)
{
    if (bits > RUDP_CID_TAG_BITS_MAX || tag >> bits || ctx->by_cid)
        return -EINVAL;
    ctx->cid_tag_bits = bits;
    ctx->cid_tag = tag;
    return 0;
}

int rudp_ctx_set_member_bits(rudp_ctx *ctx, unsigned bits)
{
    if (bits > RUDP_CID_MEMBER_BITS_MAX || ctx->by_cid)
        return -EINVAL;
    ctx->cid_member_bits = bits;
    return 0;
}

void rudp_listener_quiet_resets(rudp_listener *l, rudp_time until)
{
    l->quiet_until = until;
}

int rudp_listener_set_member_tag(rudp_listener *l, unsigned tag)
{
    if (tag >> l->ctx->cid_member_bits)
        return -EINVAL;
    l->member_tag = tag;
    return 0;
}

void rudp_ctx_set_log_level(rudp_ctx *ctx, int level)
{
    ctx->log_level = level;
}

void rudp_ctx_free(rudp_ctx *ctx)
{
    if (!ctx)
        return;
    /* a copy: the context itself goes back through it last */
    const rudp_mem mem = ctx->allocator, *table_mem = &mem;
    while (ctx->all)
        rudp__conn_destroy(ctx->all); /* unlinks itself from every table */
    rudp_listener *l, *ltmp;
    HASH_ITER(hh, ctx->listeners, l, ltmp) {
        HASH_DELETE(hh, ctx->listeners, l);
        rudp__sources_free(l);
        rudp__free(&mem, l);
    }
    rudp__chunk_pool_drain(&ctx->chunks);
    rudp__strike_free(&ctx->strike);
    rudp__ctx_keyed_free(ctx, ctx->keyed);
    rudp__free(&mem, ctx);
}

const rudp_stats *rudp_ctx_stats(const rudp_ctx *ctx)
{
    return &ctx->stats;
}

size_t rudp_ctx_conn_count(const rudp_ctx *ctx)
{
    return ctx->nconns;
}

size_t rudp_ctx_unfinished(const rudp_ctx *ctx)
{
    size_t n = 0;
    for (const rudp_conn *c = ctx->all; c; c = c->all_next) {
        switch (c->state) {
        case RUDP_ESTABLISHED:
        case RUDP_FIN_WAIT_1:
        case RUDP_CLOSING:
        case RUDP_CLOSE_WAIT:
        case RUDP_LAST_ACK:
            n++;
            break;
        case RUDP_CLOSED:
        case RUDP_SYN_SENT:
        case RUDP_SYN_RCVD:
        case RUDP_FIN_WAIT_2:
        case RUDP_TIME_WAIT:
        case RUDP_STATE_COUNT:
            break;
        }
    }
    return n;
}

/* ---- tables ---- */

static uint64_t new_cid(rudp_ctx *ctx)
{
    for (;;) {
        uint64_t n = ctx->cid_counter++;
        uint64_t cid = rudp__siphash(ctx->cid_key, &n, sizeof n);
        unsigned mb = ctx->cid_member_bits, tb = ctx->cid_tag_bits;
        if (mb + tb) { /* [member field][engine tag][random] */
            cid >>= mb + tb;
            if (tb)
                cid |= (uint64_t)ctx->cid_tag << (64 - mb - tb);
            if (mb)
                cid |= (uint64_t)ctx->cid_member_next << (64 - mb);
        }
        if (ctx->keyed) { /* after the tag: the MAC covers the top 32 bits, tag included */
            cid &= ~RUDP_CID_TOKEN_BIT;
            if (ctx->cid_token_next)
                cid |= RUDP_CID_TOKEN_BIT;
            cid = rudp__keyed_cid(ctx, cid); /* keyreset.c: a key holder's */
        }
        rudp_conn *found = NULL;
        HASH_FIND(hh, ctx->by_cid, &cid, sizeof cid, found);
        if (cid != 0 && !found)
            return cid;
    }
}

static uint64_t random64(rudp_ctx *ctx)
{
    /* the top bit keeps these inputs apart from the IDs' */
    uint64_t n = (ctx->cid_counter++) | (1ull << 63);
    return rudp__siphash(ctx->cid_key, &n, sizeof n);
}

static void table_rekey_peer(rudp_ctx *ctx, rudp_conn *c, const rudp_addr *addr)
{
    const rudp_mem *table_mem = &ctx->allocator;
    int in = c->in_peer_table;
    if (in) {
        HASH_DELETE(hh_peer, ctx->by_peer, c);
        c->in_peer_table = 0;
    }
    c->pkey.addr = *addr;
    /* re-adding into a table that only shrank needs no memory */
    if (in)
        table_add_peer(ctx, c);
}

static int table_add_cid(rudp_ctx *ctx, rudp_conn *c)
{
    const rudp_mem *table_mem = &ctx->allocator;
    HASH_ADD(hh, ctx->by_cid, cid, sizeof c->cid, c);
    if (!c->hh.tbl)
        return -ENOMEM;
    c->in_cid_table = 1;
    return 0;
}

static int table_add_peer(rudp_ctx *ctx, rudp_conn *c)
{
    const rudp_mem *table_mem = &ctx->allocator;
    HASH_ADD(hh_peer, ctx->by_peer, pkey, sizeof c->pkey, c);
    if (!c->hh_peer.tbl)
        return -ENOMEM;
    c->in_peer_table = 1;
    return 0;
}

static void table_remove(rudp_ctx *ctx, rudp_conn *c)
{
    const rudp_mem *table_mem = &ctx->allocator;
    if (c->in_cid_table) {
        HASH_DELETE(hh, ctx->by_cid, c);
        c->in_cid_table = 0;
    }
    if (c->in_peer_table) {
        HASH_DELETE(hh_peer, ctx->by_peer, c);
        c->in_peer_table = 0;
    }
    if (c->in_zrtt_table) {
        HASH_DELETE(hh_zrtt, ctx->by_zrtt, c);
        c->in_zrtt_table = 0;
    }
}

rudp_conn *rudp__find_cid(rudp_ctx *ctx, uint64_t cid)
{
    rudp_conn *c = NULL;
    HASH_FIND(hh, ctx->by_cid, &cid, sizeof cid, c);
    return c;
}

rudp_conn *rudp__find_peer(rudp_ctx *ctx, const rudp_addr *peer, uint64_t peer_cid)
{
    rudp_peer_key key;
    memset(&key, 0, sizeof key);
    key.addr = *peer;
    key.cid = peer_cid;
    rudp_conn *c = NULL;
    HASH_FIND(hh_peer, ctx->by_peer, &key, sizeof key, c);
    return c;
}

static rudp_listener *find_listener(rudp_ctx *ctx, uint32_t sock)
{
    rudp_listener *l = NULL;
    HASH_FIND(hh, ctx->listeners, &sock, sizeof sock, l);
    return l;
}

/* ---- events, dirty and dead lists ---- */

int rudp_ctx_events_pending(const rudp_ctx *ctx)
{
    return ctx->ev_head != NULL;
}

int rudp_ctx_next_event(rudp_ctx *ctx, rudp_conn **conn, unsigned *events)
{
    while (ctx->ev_head) {
        rudp_conn *c = ctx->ev_head;
        ctx->ev_head = c->ev_next;
        if (!ctx->ev_head)
            ctx->ev_tail = NULL;
        c->in_ev = 0;
        c->ev_next = NULL;
        unsigned ev = c->events;
        c->events = 0;
        if (c->released || !ev)
            continue;
        c->user_held = 1;
        *conn = c;
        *events = ev;
        return 1;
    }
    return 0;
}

static void conn_kill(rudp_conn *c)
{
    if (c->dead)
        return;
    c->dead = 1;
    table_remove(c->ctx, c);
    c->dead_next = c->ctx->dead_head;
    c->ctx->dead_head = c;
}

static void unlink_event(rudp_ctx *ctx, rudp_conn *c)
{
    if (!c->in_ev)
        return;
    rudp_conn **pp = &ctx->ev_head, *prev = NULL;
    while (*pp && *pp != c) {
        prev = *pp;
        pp = &(*pp)->ev_next;
    }
    if (*pp) {
        *pp = c->ev_next;
        if (ctx->ev_tail == c)
            ctx->ev_tail = prev;
    }
    c->in_ev = 0;
}

static void free_dead(rudp_ctx *ctx)
{
    while (ctx->dead_head) {
        rudp_conn *c = ctx->dead_head;
        ctx->dead_head = c->dead_next;
        unlink_event(ctx, c);
        rudp__conn_destroy(c);
    }
}

/* ---- handshake cookies: cookie.c ---- */

/* A RESET to dcid. Keyed, sent to refuse an authenticated SYN, bound to
 * its client key (client_pub), or as a stateless reset with its token
 * (keyreset.c: RUDP_RESET_TOKEN bytes); unkeyed, both NULL. */
static void send_reset(rudp_ctx *ctx, uint32_t sock, const rudp_addr *local,
                       const rudp_addr *peer, uint64_t dcid, const uint8_t *client_pub,
                       const uint8_t *token)
{
    rudp_hdr h;
    memset(&h, 0, sizeof h);
    h.type = RUDP_PKT_RESET;
    h.dcid = dcid;
    uint8_t buf[RUDP_WIRE_SHORT_HDR + RUDP_CRYPTO_TAG];
    int n = rudp__wire_hdr_encode(buf, RUDP_WIRE_SHORT_HDR, &h);
    if (n <= 0)
        return;
    if (token) {
        memcpy(buf + n, token, RUDP_RESET_TOKEN);
        n += RUDP_RESET_TOKEN;
    } else if (ctx->keyed) {
        n = (int)rudp__keyed_answer_seal(ctx, client_pub, buf, (size_t)n);
    }
    ctx->stats.resets_sent++;
    rudp__send(ctx, sock, peer, local, 0, buf, (size_t)n);
}

/* A RETRY the handshake's front door sends (a cookie): counted. */
static void send_retry(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *local,
                       const rudp_addr *peer, uint64_t client_cid, const uint8_t *client_pub)
{
    ctx->stats.retries_sent++;
    rudp__send_retry(ctx, now, sock, local, peer, client_cid, client_pub, 0);
}

/* An observer on the client's IP address (the same NAT or host) may copy
 * a 0-RTT SYN and send the copy first from another port: the token holds
 * there too (it is bound to the IP address: a client's next connection
 * comes from another port), so the copy makes the connection and its bytes
 * are taken. The client's own SYN then comes from its port: refused as a
 * replay, it would make a second connection, and the client would send
 * the bytes again on it, so the application would receive them twice. It
 * is the same SYN (same token ID, same client ID, same IP address): while
 * the connection has heard nothing since, it is answered with that
 * connection's SYNACK, to where it came from. Nothing moves: the client's
 * first DATA moves the connection to its port as any new address is taken
 * (path.c: validated unkeyed, authenticated keyed), and what the server
 * sent to the copy's port meanwhile goes again there. One SYNACK per SYN
 * of RUDP_MIN_SYN_SIZE bytes, to an address the token proved: no
 * amplification. */
static int zrtt_other_port(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *peer,
                           const rudp_hdr *h, uint64_t id)
{
    rudp_conn *c = NULL;
    HASH_FIND(hh_zrtt, ctx->by_zrtt, &id, sizeof id, c);
    if (!c || c->dead || !c->zrtt_unconfirmed || c->sock != sock || c->pkey.cid != h->scid ||
        c->pkey.addr.family != peer->family ||
        memcmp(c->pkey.addr.ip, peer->ip, sizeof peer->ip) != 0)
        return 0;
    ctx->stats.zero_rtt_other_port++;
    rudp__conn_synack_to(c, now, peer);
    return 1;
}

/* keystate.c's refusal; its line names the listener's address where the
 * datagram's own destination is not known. */
static void key_refuse(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *local,
                       const rudp_addr *peer, const rudp_hdr *h)
{
    const rudp_listener *l = find_listener(ctx, sock);
    const rudp_addr *name = local && local->family ? local : l ? &l->name_local : NULL;
    rudp__key_refuse(ctx, now, sock, local, name, peer, h);
}

static void input_syn(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *local,
                      const rudp_addr *peer, const rudp_hdr *h, const uint8_t *buf, size_t len,
                      size_t hl)
{
    if (len < RUDP_MIN_SYN_SIZE) {
        /* An unpadded SYN could make us an amplifier. */
        ctx->stats.malformed++;
        return;
    }
    /* Keyed: before anything else, so strangers learn nothing. */
    uint8_t offer = 0, client_pub[RUDP_CRYPTO_PUB], *pub = NULL;
    if (ctx->keyed) {
        if (rudp__keyed_syn_open(ctx, buf, len, hl, &offer, client_pub) < 0) {
            ctx->stats.handshakes_rejected++;
            key_refuse(ctx, now, sock, local, peer, h); /* keystate.c */
            return;
        }
        pub = client_pub;
    } else if (h->flags & RUDP_PKTF_KEYED) {
        key_refuse(ctx, now, sock, local, peer, h); /* a key holder's: we have none */
        return;
    }
    rudp_listener *l = find_listener(ctx, sock);
    if (!l) {
        ctx->stats.handshakes_refused++;
        send_reset(ctx, sock, local, peer, h->scid, pub, NULL);
        return;
    }
    /* An address token (token.h) proves the address as a cookie does, and
     * may bring 0-RTT data. A repeated SYN finds its connection first, so
     * only the first copy is checked and recorded as used; a token that
     * does not hold leaves a SYN without one (a SYNACK, or a RETRY under
     * pressure), and the client sends its bytes again after it. */
    int atoken = rudp__atoken_is(h->token, h->token_len);
    if (h->token_len && !atoken &&
        !rudp__cookie_valid(ctx, now, peer, h->scid, h->token, h->token_len)) {
        /* Forged, or expired after long retransmission: a fresh cookie
         * costs nothing and keeps an honest slow client going. */
        ctx->stats.bad_token++;
        send_retry(ctx, now, sock, local, peer, h->scid, pub);
        return;
    }
    int validated = h->token_len != 0 && !atoken;
    /* The client's SYN again (its SYNACK was lost, or late), perhaps with
     * the cookie of a RETRY it had before: it adds to the 3x budget. */
    rudp_conn *c = rudp__find_peer(ctx, peer, h->scid);
    if (c) {
        rudp__conn_dup_syn(c, now, len, validated);
        return;
    }
    int zrtt = 0;
    uint64_t token_id = 0;
    uint32_t issued = 0;
    if (atoken) {
        zrtt = rudp__zrtt_check_syn(ctx, now, l, peer, h, &token_id, &issued);
        /* the same SYN from another port of its address, after a copy
         * made the connection: answered as that connection's (zrtt.c) */
        if (zrtt && zrtt_other_port(ctx, now, sock, peer, h, token_id))
            return;
    }
    if (!validated && !zrtt && rudp__must_retry(l, peer)) {
        send_retry(ctx, now, sock, local, peer, h->scid, pub);
        return;
    }
    int admit = rudp__admit(l, peer);
    if (admit == -ENOMEM) {
        send_reset(ctx, sock, local, peer, h->scid, pub, NULL); /* refused */
        return;
    }
    if (admit < 0)
        return; /* like a full SYN or accept queue: the client retries */
    int replayed = 0;
    if (zrtt && !rudp__zrtt_record(ctx, now, token_id, issued)) {
        zrtt = 0; /* replayed, or not vouched for: as a SYN without a token */
        replayed = 1;
        if (rudp__must_retry(l, peer)) {
            send_retry(ctx, now, sock, local, peer, h->scid, pub);
            return;
        }
    }
    validated |= zrtt; /* a valid, unused token proves the address */
    /* Keyed, a client that takes a reset token in the SYNACK gets one if
     * we have a reset ID and will send resets (keyreset.c): its ID says so. */
    ctx->cid_token_next = ctx->keyed && (offer & RUDP_OFFER_TOKEN) && !l->no_keyed_reset &&
                          !ctx->keyed_reset_off && rudp__keyed_subkey(ctx, RUDP_SUBKEY_RESET_ID) &&
                          (local && local->port ? local->port : l->name_local.port);
    ctx->cid_member_next = l->member_tag;
    int alloc = rudp__conn_alloc(ctx, now, sock, peer, &l->cfg, &c);
    ctx->cid_token_next = 0;
    ctx->cid_member_next = 0;
    if (alloc < 0)
        return;
    c->listener = l;
    c->is_server = 1;
    c->name_local = l->name_local;
    if (local) {
        c->local = *local;
        c->has_local = 1;
        c->name_local = *local; /* the address the client reached, the listener's port */
        if (l->name_local.family)
            c->name_local.port = l->name_local.port;
    }
    if (c->keyed && rudp__keyed_accept(c, offer, client_pub, h->scid) < 0) {
        ctx->stats.handshakes_rejected++; /* a key holder's, but unusable */
        conn_kill(c);
        return;
    }
    c->token_due = l->zero_rtt != 0; /* once the client is heard (conn_input.c) */
    const uint8_t *frames = buf + hl;
    size_t nframes = len - hl;
    if (zrtt && pub &&
        rudp__keyed_syn_early_open(ctx, buf, len, hl, h->scid, client_pub, &frames, &nframes) < 0)
        nframes = 0; /* keyed, no early frames (or not ours to read): nothing to take */
    int taken = zrtt && nframes && rudp__zrtt_take(c, now, frames, nframes);
    /* A loopback client's connection is reported at once and its SYNACK
     * held until the application's queue has it (rudp_conn_accepted); not
     * a copy of a SYN seen before (a replayed 0-RTT one), which would put a
     * connection nobody completes in the application's queue. */
    int early = !taken && !replayed && l->early_accept && !ctx->keyed &&
                rudp__addr_loopback(peer);
    if (rudp__conn_accept_syn(c, now, h, len, validated, early) < 0) {
        conn_kill(c);
        return;
    }
    if (taken) {
        c->zrtt_id = token_id;
        rudp__zrtt_established(c, now);
        return;
    }
    if (!validated)
        ctx->stats.handshakes_direct++;
    if (early)
        rudp__conn_accept_early(c);
}

/* A datagram for c failed authentication: dropped, counted. In the
 * handshake, it is also what a peer with another key, or none, sends: the
 * connect's key verdict is armed (keystate.c). */
static void auth_failed(rudp_conn *c, rudp_time now, const rudp_hdr *h)
{
    c->ctx->stats.auth_failed++;
    rudp__key_unauth_answer(c, now, h);
}

/* A datagram on `sock` reached the socket of connection c (or another
 * socket of the same endpoint, ops.same_endpoint). */
static int on_conn_sock(const rudp_ctx *ctx, const rudp_conn *c, uint32_t sock)
{
    return c->sock == sock ||
           (ctx->ops.same_endpoint && ctx->ops.same_endpoint(ctx->user, c->sock, sock));
}

/* Whose a DATA packet for the unknown connection ID dcid is: 0, this
 * context's (a stranger's, or a connection gone: answered here), or
 * RUDP_INPUT_FOREIGN + the tag of the context that chose dcid. */
static int foreign(const rudp_ctx *ctx, uint64_t dcid)
{
    unsigned tb = ctx->cid_tag_bits;
    if (!tb)
        return 0;
    unsigned tag = (unsigned)(dcid >> (64 - ctx->cid_member_bits - tb)) & ((1u << tb) - 1);
    return tag == ctx->cid_tag ? 0 : RUDP_INPUT_FOREIGN + (int)tag;
}

/* The member field of dcid (rudp_ctx_set_member_bits), 0: none. */
static unsigned member_of(const rudp_ctx *ctx, uint64_t dcid)
{
    return ctx->cid_member_bits ? (unsigned)(dcid >> (64 - ctx->cid_member_bits)) : 0;
}

/* Where a datagram comes from: the socket (IN_READ), another context of
 * this endpoint (IN_HANDED), another member of the listener's group
 * (IN_MEMBER), or another member's that is gone (IN_ORPHAN). */
enum { IN_READ, IN_HANDED, IN_MEMBER, IN_ORPHAN };

static int input(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *local,
                 const rudp_addr *peer, const uint8_t *buf, size_t len, int from);

int rudp_ctx_input(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *local,
                   const rudp_addr *peer, const uint8_t *buf, size_t len)
{
    return input(ctx, now, sock, local, peer, buf, len, IN_READ);
}

void rudp_ctx_input_handed(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *local,
                           const rudp_addr *peer, const uint8_t *buf, size_t len)
{
    input(ctx, now, sock, local, peer, buf, len, IN_HANDED);
}

int rudp_ctx_input_member(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *local,
                          const rudp_addr *peer, const uint8_t *buf, size_t len, int gone)
{
    return input(ctx, now, sock, local, peer, buf, len, gone ? IN_ORPHAN : IN_MEMBER);
}

/* Whose the DATA packet for the unknown ID dcid reaching listener l (or
 * NULL) is, when not this context's: RUDP_INPUT_MEMBER + another group
 * member's tag, RUDP_INPUT_FOREIGN + another context's tag; 0: ours. */
static int owner_of(const rudp_ctx *ctx, const rudp_listener *l, uint64_t dcid, int from)
{
    unsigned mt = member_of(ctx, dcid);
    if (from == IN_READ && l && l->member_tag && mt && mt != l->member_tag)
        return RUDP_INPUT_MEMBER + (int)mt;
    return from == IN_READ || from == IN_MEMBER ? foreign(ctx, dcid) : 0;
}

/* Whether a keyed stateless reset may answer the unknown ID dcid on l:
 * only for an ID this context made (its engine tag; in a group, its
 * member's tag: a member's untagged or another's ID may be alive
 * elsewhere), or one whose member is gone. */
static int may_reset(const rudp_ctx *ctx, const rudp_listener *l, uint64_t dcid, int from)
{
    if (from == IN_ORPHAN)
        return 1;
    if (foreign(ctx, dcid))
        return 0;
    return !l || !l->member_tag || member_of(ctx, dcid) == l->member_tag;
}

static int input(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *local,
                 const rudp_addr *peer, const uint8_t *buf, size_t len, int from)
{
    now = rudp__clock(ctx, now);
    ctx->stats.dgrams_in++;
    ctx->stats.bytes_in += len;
    rudp_hdr h;
    int hl = rudp__wire_hdr_decode(buf, len, &h);
    if (hl < 0) {
        ctx->stats.malformed++;
        return 0;
    }
    rudp_conn *c;
    switch ((enum rudp_pkt_type)h.type) {
    case RUDP_PKT_SYN:
        input_syn(ctx, now, sock, local, peer, &h, buf, len, (size_t)hl);
        return 0;
    case RUDP_PKT_RETRY:
    case RUDP_PKT_SYNACK:
        c = rudp__find_cid(ctx, h.dcid);
        if (!c || c->sock != sock || memcmp(&c->pkey.addr, peer, sizeof *peer) != 0) {
            ctx->stats.unknown_conn++;
            return 0;
        }
        if (c->keyed && rudp__keyed_answer_open(c, &h, buf, len, (size_t)hl) < 0) {
            auth_failed(c, now, &h);
            return 0;
        }
        c->auth_heard = 1; /* a key holder answers: no key verdict (keystate.c) */
        rudp__trace_packet(c, RUDP_TRACE_PACKET_RECEIVED, buf, len);
        rudp__conn_input_handshake(c, now, &h);
        rudp__trace_metrics(c);
        return 0;
    case RUDP_PKT_DATA:
        c = rudp__find_cid(ctx, h.dcid);
        if (!c) {
            rudp_listener *l = find_listener(ctx, sock);
            int owner = owner_of(ctx, l, h.dcid, from);
            if (owner) {
                /* another context's or member's: it counts it */
                ctx->stats.dgrams_in--;
                ctx->stats.bytes_in -= len;
                return owner;
            }
            ctx->stats.unknown_conn++;
            if (l && now < l->quiet_until)
                return 0; /* perhaps a connection moving off this port */
            /* Stateless reset, smaller than what caused it: no loops (we
             * never answer a RESET) and no amplification. Keyed, only to
             * an ID a key holder made, with a token only key holders can
             * compute (keyreset.c). */
            if (ctx->keyed) {
                if (may_reset(ctx, l, h.dcid, from))
                    rudp__keyed_stateless_reset(ctx, now, l, sock, local, peer, h.dcid, len);
            } else if (len > RUDP_WIRE_SHORT_HDR)
                send_reset(ctx, sock, local, peer, h.dcid, NULL, NULL);
            return 0;
        }
        if ((!on_conn_sock(ctx, c, sock) || memcmp(&c->pkey.addr, peer, sizeof *peer) != 0) &&
            !rudp__path_admit(c, on_conn_sock(ctx, c, sock) ? c->sock : sock, peer)) {
            ctx->stats.path_refused++;
            return 0;
        }
        if (c->keyed && rudp__keyed_open(c, rudp__conn_rx_pn(c, h.pn), buf, len, &buf, &len) < 0) {
            auth_failed(c, now, &h);
            return 0;
        }
        if (!c->is_server)
            rudp__path_heard_from(c, peer);
        c->path.rx_sock = sock; /* a challenge is answered by its path (standby.c) */
        c->path.rx_flags = h.flags;
        c->path.rx_peer = *peer;
        c->path.rx_has_local = local != NULL;
        if (local)
            c->path.rx_local = *local;
        if (rudp__path_foreign(c, peer)) {
            rudp__path_on_foreign(c, now, peer, h.pn, buf + hl, len - (size_t)hl, len);
            rudp__trace_metrics(c);
            return 0;
        }
        rudp__trace_packet(c, RUDP_TRACE_PACKET_RECEIVED, buf, len);
        int rx = rudp__conn_input_data(c, now, &h, buf + hl, len - (size_t)hl);
        if (!c->dead) {
            if (c->is_server && (rx & RUDP_RX_TAKEN))
                rudp__path_heard_on(c, sock, local);
            rudp__path_on_packet(c, now, peer, len, rx);
            if (!c->dead)
                rudp__standby_on_packet(c, now, sock, peer, rx);
        }
        rudp__trace_metrics(c);
        return 0;
    case RUDP_PKT_RESET:
        c = rudp__find_cid(ctx, h.dcid);
        if (c && c->state == RUDP_SYN_SENT && c->sock == sock &&
            memcmp(&c->pkey.addr, peer, sizeof *peer) == 0) {
            if (c->keyed && rudp__keyed_answer_open(c, &h, buf, len, (size_t)hl) < 0) {
                auth_failed(c, now, &h);
                return 0;
            }
            ctx->stats.resets_received++;
            if (!c->keyed && (h.flags & RUDP_PKTF_KEY) && (h.flags & RUDP_PKTF_KEYED)) {
                /* as unauthenticated as any unkeyed refusal (keystate.c) */
                rudp__conn_fail(c, now, -ECONNREFUSED, RUDP_CAUSE_KEY_REQUIRED);
                return 0;
            }
            rudp__conn_input_reset(c, now, 1);
            return 0;
        }
        c = rudp__find_peer(ctx, peer, h.dcid);
        if (c && c->keyed) {
            /* Keyed connections are reset inside DATA, or by a stateless
             * reset carrying the token of the peer's ID and address. */
            if (on_conn_sock(ctx, c, sock) &&
                rudp__keyed_reset_open(c, peer, h.dcid, buf, len, (size_t)hl)) {
                ctx->stats.resets_received++;
                rudp__conn_input_reset(c, now, 0);
                return 0;
            }
            auth_failed(c, now, &h);
            return 0;
        }
        if (c && on_conn_sock(ctx, c, sock)) {
            ctx->stats.resets_received++;
            rudp__conn_input_reset(c, now, 0);
            return 0;
        }
        ctx->stats.unknown_conn++;
        return 0;
    }
    ctx->stats.malformed++; /* the decoder admits no other type */
    return 0;
}

int rudp_is_syn(const uint8_t *buf, size_t len)
{
    return len >= RUDP_WIRE_SHORT_HDR && buf[0] == RUDP_WIRE_MAGIC0 && buf[1] == RUDP_WIRE_MAGIC1 &&
           (buf[3] & 0x0f) == RUDP_PKT_SYN;
}

/* ---- timers and processing ---- */

static rudp_conn *conn_of_timer(rudp_timer *t)
{
    return (rudp_conn *)((char *)(t - t->kind) - offsetof(rudp_conn, timers));
}

rudp_time rudp_ctx_process(rudp_ctx *ctx, rudp_time now)
{
    rudp_timer *t;
    now = rudp__clock(ctx, now);
    while ((t = rudp__wheel_expire(&ctx->wheel, now)) != NULL) {
        rudp_conn *c = conn_of_timer(t);
        if (!c->dead)
            rudp__conn_on_timer(c, t->kind, now);
    }
    while (ctx->dirty_head) {
        rudp_conn *c = ctx->dirty_head;
        ctx->dirty_head = c->dirty_next;
        c->dirty = 0;
        c->dirty_next = NULL;
        if (!c->dead) {
            rudp__conn_flush(c, now);
            rudp__conn_reset_due(c, now); /* a reset waiting for what went */
        }
    }
    free_dead(ctx);
    return rudp__wheel_next(&ctx->wheel);
}

/* ---- listeners ---- */

int rudp_listen(rudp_ctx *ctx, uint32_t sock, const rudp_config *cfg, unsigned backlog,
                rudp_listener **out)
{
    if (cfg && rudp_config_check(cfg, NULL))
        return -EINVAL;
    if (find_listener(ctx, sock))
        return -EADDRINUSE;
    const rudp_mem *table_mem = &ctx->allocator;
    rudp_listener *l = rudp__calloc(table_mem, 1, sizeof *l);
    if (!l)
        return -ENOMEM;
    l->ctx = ctx;
    l->sock = sock;
    l->cfg = cfg ? *cfg : ctx->defaults;
    l->backlog = backlog ? backlog : 1;
    HASH_ADD(hh, ctx->listeners, sock, sizeof l->sock, l);
    if (!l->hh.tbl) {
        rudp__free(table_mem, l);
        return -ENOMEM;
    }
    *out = l;
    return 0;
}

void rudp_listener_close(rudp_listener *l)
{
    if (!l)
        return;
    rudp_ctx *ctx = l->ctx;
    const rudp_mem *table_mem = &ctx->allocator;
    for (rudp_conn *c = ctx->all; c; c = c->all_next) {
        if (c->listener != l)
            continue;
        rudp__queue(c, RUDP_Q_NONE);
        c->listener = NULL;
        if (c->state == RUDP_SYN_RCVD && !c->accept_early)
            conn_kill(c); /* not yet accepted: nobody will ever take it */
    }
    HASH_DELETE(hh, ctx->listeners, l);
    rudp__sources_free(l);
    rudp__free(table_mem, l);
}

rudp_listener *rudp_conn_listener(const rudp_conn *c)
{
    return c->listener;
}
