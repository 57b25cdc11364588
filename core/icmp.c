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
    /* A client's error may come on another socket of its own: after it
     * reopened its port unconnected (shim/engine/roam.c), the kernel files
     * errors about its datagrams on the old socket, still connected to the
     * same 4-tuple. The quote names the connection either way. */
    if (!c || c->dead || (c->is_server && c->sock != sock) ||
        memcmp(&c->pkey.addr, peer, sizeof *peer) != 0)
        return NULL;
    /* Not one on a client's other path (its standby's challenges and
     * PINGs, or the primary after a handover): it says nothing of the
     * path in use, and that path's own challenges decide (standby.c). Two
     * routes may reach the same address on different hosts (overlapping
     * private networks): the other host's port unreachable reset a
     * connection whose server was silent for 3 s. */
    if (!c->is_server && c->path.standby.on && c->path.standby.sock == sock && c->sock != sock)
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
        uint64_t next = rudp__recovery_next_pn(&c->rec);
        uint64_t pn = rudp__pn_expand(next, qpn);
        if (pn >= next)
            break; /* never sent: forged */
        ctx->stats.icmp_soft++;
        if (c->is_server && (c->path.port_pending || c->path.local_pending))
            return; /* moved to a new port (NEW_PORT) or address: the
                       client's socket, still connected to the old one,
                       refuses ours until it follows */
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
 * it. Our own kernel's refusals come apart (rudp_ctx_device_mtu), from
 * its error queue: a send's EMSGSIZE may be any forged ICMP's. */

static uint32_t ip_udp_headers(const rudp_addr *peer)
{
    return peer->family == 10 ? 48 : 28; /* IPv6 or IPv4, and UDP */
}

void rudp_ctx_too_big(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *peer,
                      const uint8_t *quote, size_t len, uint32_t mtu)
{
    now = rudp__clock(ctx, now);
    uint32_t qpn;
    rudp_conn *c = quoted_conn(ctx, sock, peer, quote, len, &qpn);
    if (!c)
        return;
    if ((quote[3] & 0x0f) != RUDP_PKT_DATA) {
        ctx->stats.icmp_ignored++; /* a handshake packet: RUDP_MIN_SYN_SIZE passed */
        return;
    }
    uint64_t next = rudp__recovery_next_pn(&c->rec);
    uint64_t pn = rudp__pn_expand(next, qpn);
    const rudp_sent *s = pn < next ? rudp__recovery_sent(&c->rec, pn) : NULL;
    uint32_t hdrs = ip_udp_headers(peer);
    uint32_t fits = mtu > hdrs ? mtu - hdrs : 0;
    /* The handshake carried RUDP_PMTU_BASE bytes both ways: an ICMP that
     * says less passes contradicts it, as one about a packet that small */
    if (!s || fits < RUDP_PMTU_BASE || s->size <= RUDP_PMTU_BASE || fits >= s->size) {
        ctx->stats.ptb_hints++;
        rudp__pmtu_hint(c, now);
        rudp__conn_dirty(c);
        return;
    }
    ctx->stats.ptb_taken++;
    int probe = (s->flags & RUDP_SENT_PMTU_PROBE) && c->pmtu.probe && c->pmtu.probe_pn == pn;
    rudp__pmtu_too_big(c, now, fits, probe);
    rudp__conn_dirty(c);
}

void rudp_ctx_device_mtu(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *peer,
                         uint32_t mtu)
{
    now = rudp__clock(ctx, now);
    uint32_t hdrs = ip_udp_headers(peer);
    uint32_t fits = mtu > hdrs ? mtu - hdrs : 0;
    for (rudp_conn *c = ctx->by_cid, *next; c; c = next) {
        next = c->hh.next;
        if (c->dead || c->sock != sock || c->pkey.addr.family != peer->family ||
            memcmp(c->pkey.addr.ip, peer->ip, sizeof peer->ip) != 0)
            continue;
        if (fits < RUDP_PMTU_BASE) {
            /* no rudp datagram fits: a connect fails; an established
             * connection has nothing smaller to send, and its user
             * timeout decides */
            if (c->state == RUDP_SYN_SENT) {
                ctx->stats.ptb_taken++;
                rudp__conn_fail(c, now, -EMSGSIZE, RUDP_CAUSE_PATH_MTU);
            }
            continue;
        }
        uint32_t out = c->pmtu.probe > c->mss ? c->pmtu.probe : c->mss;
        if (out <= fits)
            continue;
        ctx->stats.ptb_taken++;
        rudp__pmtu_too_big(c, now, fits, c->pmtu.probe > fits);
        rudp__conn_dirty(c);
    }
}
