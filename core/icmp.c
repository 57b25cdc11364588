/*
 * icmp.c: what an ICMP error about one of our datagrams may change.
 *
 * Anyone can send ICMP: a forged port unreachable needs only the 4-tuple,
 * and a client's port is one of some 28,000 values. Kernel TCP checks that
 * the segment an ICMP message quotes carries a sequence number in its
 * window, and treats errors on an established connection as soft (RFC 1122
 * 4.2.3.9, RFC 5927). Our equivalent of the sequence number is the
 * connection ID: 64 random bits an off-path sender cannot know. So an ICMP
 * error counts only if the datagram it quotes names a connection of ours,
 * by our ID in a handshake packet or by the peer's ID in a DATA packet,
 * with a packet number we actually sent.
 *
 * During the handshake a matching error ends the connect at once (a
 * refused connect is known in one round trip, as TCP's RST makes it).
 * Once established it is soft: it prompts a probe. A port unreachable that
 * quotes a packet sent after that, with nothing heard from the peer in
 * between, means the peer's port is closed for good (its process is gone,
 * which kernel TCP would learn from the peer kernel's RST): the connection
 * resets. Host and network unreachable never end an established connection:
 * routes come back. An on-path attacker who sees our IDs could forge the
 * matching errors, but only while also silencing the peer, and one who can
 * do that can end the connection anyway. A server's connection that moved
 * to a new port (path.h) takes none as final until its client is heard
 * there.
 */
#include <errno.h>
#include <string.h>

#include "conn.h"
#include "seq.h"

static uint64_t get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* The connection a quoted datagram belongs to, or NULL (counted as
 * ignored). Only the fixed header fields are read: a quote may be cut
 * anywhere after them. */
static rudp_conn *find_quoted(rudp_ctx *ctx, uint32_t sock, const rudp_addr *peer,
                              const uint8_t *q, size_t len, uint32_t *pn)
{
    if (len < RUDP_WIRE_SHORT_HDR || q[0] != RUDP_WIRE_MAGIC0 || q[1] != RUDP_WIRE_MAGIC1 ||
        q[2] != RUDP_WIRE_VERSION)
        return NULL;
    int type = q[3] & 0x0f;
    *pn = (uint32_t)get_be(q + 12, 4);
    rudp_conn *c = NULL;
    if (type == RUDP_PKT_SYN || type == RUDP_PKT_SYNACK) {
        if (len < RUDP_WIRE_SHORT_HDR + 8)
            return NULL;
        c = rudp__find_cid(ctx, get_be(q + 16, 8)); /* the source ID: ours */
        if (c && (type == RUDP_PKT_SYN) != (c->state == RUDP_SYN_SENT))
            return NULL; /* a SYN only while we send SYNs; a SYNACK only after */
    } else if (type == RUDP_PKT_DATA) {
        c = rudp__find_peer(ctx, peer, get_be(q + 4, 8)); /* the peer's ID */
    }
    if (!c || c->dead || c->sock != sock || memcmp(&c->pkey.addr, peer, sizeof *peer) != 0)
        return NULL;
    return c;
}

static rudp_conn *quoted_conn(rudp_ctx *ctx, uint32_t sock, const rudp_addr *peer,
                              const uint8_t *q, size_t len, uint32_t *pn)
{
    rudp_conn *c = find_quoted(ctx, sock, peer, q, len, pn);
    if (!c)
        ctx->stats.icmp_ignored++;
    return c;
}

void rudp_ctx_icmp(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *peer,
                   const uint8_t *quote, size_t len, int err)
{
    now = rudp__clock(ctx, now);
    uint32_t qpn;
    rudp_conn *c = quoted_conn(ctx, sock, peer, quote, len, &qpn);
    if (!c)
        return;
    switch (c->state) {
    case RUDP_SYN_SENT:
        if (qpn >= c->hs_count) /* handshake packets count from 0 */
            break;
        rudp__conn_fail(c, now, err, RUDP_CAUSE_ICMP);
        return;
    case RUDP_TIME_WAIT:
        if (err == -ECONNREFUSED) {
            ctx->stats.icmp_soft++;
            rudp__conn_input_reset(c, now, 0); /* finished anyway: close quietly */
            return;
        }
        break;
    case RUDP_ESTABLISHED:
    case RUDP_FIN_WAIT_1:
    case RUDP_FIN_WAIT_2:
    case RUDP_CLOSING:
    case RUDP_CLOSE_WAIT:
    case RUDP_LAST_ACK: {
        uint64_t next = rudp_recovery_next_pn(&c->rec);
        uint64_t pn = rudp_pn_expand(next, qpn);
        if (pn >= next)
            break; /* never sent: forged */
        ctx->stats.icmp_soft++;
        if (c->is_server && c->path.port_pending)
            return; /* moved to a new port (NEW_PORT): the client's socket,
                       still connected to the old one, refuses ours until it
                       follows */
        if (c->icmp_episode && c->last_rx == c->icmp_rx) {
            if (err == -ECONNREFUSED && pn >= c->icmp_pn)
                rudp__conn_fail(c, now, -ECONNRESET, RUDP_CAUSE_ICMP);
            return;
        }
        /* A new episode: probe now; its answer, or a further error about
         * it, tells whether the peer is still there. */
        c->icmp_episode = 1;
        c->icmp_pn = next;
        c->icmp_rx = c->last_rx;
        c->ping_pending = 1;
        rudp__conn_dirty(c);
        return;
    }
    case RUDP_CLOSED:
    case RUDP_SYN_RCVD:
    case RUDP_STATE_COUNT:
        break;
    }
    ctx->stats.icmp_ignored++;
}

/* ---- "too big" (pmtu.h) ----
 *
 * A forged "too big" could shrink a connection to the base, or worse make
 * it believe a larger size passes. So a report counts only if its quote
 * names our connection (its ID, as above) and a packet number we sent
 * that is still on record, larger than what the report says fits: a
 * stranger does not know the ID; one who sees our packets could forge it,
 * as it could TCP's. A report that names the connection but fails the
 * rest is a hint: the size in use is probed, and only lost probes lower
 * it. Our own kernel's refusal (local) is the truth about our device. */
void rudp_ctx_too_big(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *peer,
                      const uint8_t *quote, size_t len, uint32_t mtu, int local)
{
    now = rudp__clock(ctx, now);
    uint32_t qpn;
    rudp_conn *c = quoted_conn(ctx, sock, peer, quote, len, &qpn);
    if (!c)
        return;
    int type = quote[3] & 0x0f;
    if (type != RUDP_PKT_DATA) {
        /* A handshake packet is never larger than RUDP_MIN_SYN_SIZE: if our
         * own kernel refuses one, no rudp datagram can take this path. */
        if (local && c->state == RUDP_SYN_SENT) {
            ctx->stats.ptb_taken++;
            rudp__conn_fail(c, now, -EMSGSIZE, RUDP_CAUSE_PATH_MTU);
            return;
        }
        ctx->stats.icmp_ignored++;
        return;
    }
    uint64_t next = rudp_recovery_next_pn(&c->rec);
    uint64_t pn = rudp_pn_expand(next, qpn);
    const rudp_sent *s = pn < next ? rudp_recovery_sent(&c->rec, pn) : NULL;
    uint32_t hdrs = peer->family == 10 ? 48 : 28; /* IPv6 or IPv4, and UDP */
    uint32_t fits = mtu > hdrs ? mtu - hdrs : 0;
    uint32_t sent = local ? (uint32_t)len : s ? s->size : 0;
    if (!s || !sent || (fits && fits >= sent) || (!local && !fits)) {
        ctx->stats.ptb_hints++;
        rudp__pmtu_hint(c, now);
        rudp__conn_dirty(c);
        return;
    }
    ctx->stats.ptb_taken++;
    if (sent <= RUDP_PMTU_BASE && local) {
        rudp__conn_fail(c, now, -EMSGSIZE, RUDP_CAUSE_PATH_MTU);
        return;
    }
    int probe = (s->flags & RUDP_SENT_PMTU_PROBE) && c->pmtu.probe && c->pmtu.probe_pn == pn;
    rudp__pmtu_too_big(c, now, sent, fits >= RUDP_PMTU_BASE ? fits : 0, probe);
    rudp__conn_dirty(c);
}
