/*
 * conn_output.c: what a connection sends. Builds DATA packets from what
 * waits (ACK, MAX_DATA, DATA_BLOCKED, URGENT, PING, stream data resent
 * or new, the FIN), within the congestion window and the pacer's rate,
 * and sends them, sealed when keyed; rudp__conn_flush sends all that may
 * go now. Control packets for path validation go the same way. The last
 * packet of a write may go twice (repair, below). The state machine is
 * conn.c; what is received, conn_input.c.
 */
#include <assert.h>
#include <errno.h>
#include <string.h>

#include "conn.h"
#include "seq.h"
#include "trace.h"

/* The pacer's catch-up: a wake-up that let held data go late may send at
 * once what fell due while it slept, up to about a millisecond at the
 * pacing rate (rate >> 10, as Linux sizes a TSO burst), at least 10
 * packets; so may a sender whose bytes ran out for a moment since (the
 * engine reading more from the bridge: counted as lateness, it took B11
 * from 9.6 to 10.5 Gbit/s). After a gap of more than a millisecond, or a
 * full window, the credit is at most one GSO train: a sender back from
 * idle at 10 Gbit/s would otherwise put out a millisecond of the rate at
 * once (a reviewer's case). A fixed 10 packets capped rudp near 200
 * Mbit/s on a VM whose timer wake-ups come 100-150 us late: at 1 Gbit/s
 * 10 packets last 112 us, so every late wake-up threw pacing credit away
 * and BBR, which measures what was delivered, settled at what the pacer
 * managed. A cap of 32 KiB, then 64 KiB, did the same on a veth pair,
 * where at 6-10 Gbit/s 64 KiB lasts 50-90 us: BBR 6.0-6.3 Gbit/s with 32
 * KiB (and a 32 KiB quantum), 7.5-8.4 with 64 KiB, 8.5-9.4 with 1 ms (B11,
 * alternated pairs of runs, kernel bbr 17.9-21.0 in each); the sender's
 * CPU 1.07, 0.78-0.88 and 0.62-0.67 s per GB. The price on B9 (1 Gbit/s,
 * 1 ms, a 1-BDP queue): 3.1-3.6, 5.1-5.5 and 5.7-6.3 % retransmitted,
 * the goodput unchanged (kernel bbr 8.8 % there). */
#define RUDP_PACE_BURST_PKTS 10
/* One GSO train: the most a quantum sends, and a catch-up except after a
 * late release (Linux caps a TSO burst at gso_max_size, 64 KiB by
 * default). */
#define RUDP_PACE_TRAIN (64 * 1024)

static uint64_t pace_burst(const rudp_conn *c, uint64_t rate, int late)
{
    uint64_t b = rate / 1000;
    if (!late && b > RUDP_PACE_TRAIN)
        b = RUDP_PACE_TRAIN;
    if (b < (uint64_t)RUDP_PACE_BURST_PKTS * c->mss)
        b = (uint64_t)RUDP_PACE_BURST_PKTS * c->mss;
    return b;
}

/* ---- building packets ---- */

static rudp_time pace_interval(uint64_t bytes, uint64_t rate)
{
    if (!rate)
        return 0;
    return (rudp_time)((unsigned __int128)bytes * 1000000000ull / rate);
}

/* The pacer sends in bursts: once it has held data back, nothing leaves
 * before the next packet's paced departure (its timer), and then packets
 * leave until the departures reach pace_ahead() past now. The quantum is
 * what Linux TCP sends per pacing timer (tcp_tso_autosize): about a
 * millisecond at the pacing rate, at least 2 packets (tcp_min_tso_segs),
 * at most a GSO train (64 KiB), and at most a quarter of a round trip: a
 * quantum as long as the round trip would let a whole window out at once
 * (paced() keeps departures within a round trip of now), and 10-packet
 * bursts overflowed a 10-packet queue at 10 Mbit/s (5.8% retransmitted,
 * from 0.09%: a reviewer's simulation). So at 100 Mbit/s a wake-up sends
 * ~9 packets every ~1 ms, not one every 0.11 ms; the hold keeps ACKs that
 * arrive meanwhile from releasing the burst a packet at a time. The
 * average rate is the same. */
#define RUDP_PACE_AHEAD_PKTS 2

static rudp_time pace_ahead(const rudp_conn *c)
{
    uint64_t rate = rudp__conn_pacing_rate(c);
    uint64_t b = rate / 1000;
    if (b > RUDP_PACE_TRAIN)
        b = RUDP_PACE_TRAIN;
    if (b < (uint64_t)RUDP_PACE_AHEAD_PKTS * c->mss)
        b = (uint64_t)RUDP_PACE_AHEAD_PKTS * c->mss;
    rudp_time t = pace_interval(b, rate);
    rudp_time round = c->rtt.smoothed > RUDP_MS(1) ? c->rtt.smoothed : RUDP_MS(1);
    return t < round / 4 ? t : round / 4;
}

/* Writes an ACK frame of what we received; returns bytes or <= 0. */
static int write_ack(rudp_conn *c, rudp_time now, uint8_t *p, size_t room)
{
    rudp_ack_range r[RUDP_RX_RANGES_KEPT];
    size_t n = 0;
    for (uint32_t i = c->rx_pns.n; i-- > 0 && n < RUDP_RX_RANGES_KEPT;) {
        r[n].lo = c->rx_pns.r[i].lo;
        r[n].hi = c->rx_pns.r[i].hi - 1;
        n++;
    }
    if (!n)
        return 0;
    uint64_t delay_us = now > c->rx_largest_time ? (now - c->rx_largest_time) / 1000 : 0;
    size_t written;
    return rudp__wire_ack_encode(p, room, r, n, delay_us, &written);
}

/* Sends a DATA packet of len bytes in buf (room for the AEAD tag after
 * them), whose full packet number is pn: traced as it is, sealed if the
 * connection is keyed. Returns the datagram's length. */
static size_t send_data_on(rudp_conn *c, uint32_t sock, const rudp_addr *to,
                           const rudp_addr *local, uint64_t pn, uint8_t *buf, size_t len)
{
    rudp__trace_packet(c, RUDP_TRACE_PACKET_SENT, buf, len);
    if (c->keyed) {
        size_t sealed = rudp__keyed_seal(c, pn, buf, len);
        if (!sealed) { /* not sent, as if lost: recovery sends its frames again */
            c->ctx->stats.seal_failed++;
            /* ...but an ACK it carried is not in flight: ask for one again,
             * by the ACK timer, not at once, so that a library that keeps
             * failing costs a try per max_ack_delay, not a busy loop */
            if (c->rx_any) {
                c->rx_unacked = 1;
                if (rudp__timer_later_than(&c->timers[RUDP_T_ACK],
                                          c->ctx->now + c->cfg.max_ack_delay))
                    rudp__conn_arm(c, RUDP_T_ACK, c->ctx->now + c->cfg.max_ack_delay);
            }
            return len + RUDP_CRYPTO_TAG;
        }
        len = sealed;
    }
    rudp__send(c->ctx, sock, to, local, c->send_tag, buf, len);
    rudp__path_sent(c, to, len);
    return len;
}

size_t rudp__conn_send_data(rudp_conn *c, uint64_t pn, uint8_t *buf, size_t len)
{
    return send_data_on(c, c->sock, &c->pkey.addr, c->has_local ? &c->local : NULL, pn, buf, len);
}

/* Writes the header of c's next DATA packet; *pn its full number. */
static int data_header(rudp_conn *c, uint8_t *buf, size_t cap, uint64_t *pn)
{
    rudp_hdr h;
    memset(&h, 0, sizeof h);
    h.type = RUDP_PKT_DATA;
    h.flags = c->path.standby.announce ? RUDP_PKTF_MOVED : 0; /* standby.c */
    h.dcid = c->pkey.cid;
    *pn = rudp__recovery_next_pn(&c->rec);
    h.pn = rudp__pn_truncate(*pn);
    return rudp__wire_hdr_encode(buf, cap, &h);
}

int rudp__conn_send_control(rudp_conn *c, rudp_time now, const rudp_addr *to,
                            const uint8_t *frames, size_t n)
{
    return rudp__conn_send_control_via(c, now, c->sock, to, c->has_local ? &c->local : NULL,
                                       frames, n);
}

int rudp__conn_send_control_via(rudp_conn *c, rudp_time now, uint32_t sock, const rudp_addr *to,
                                const rudp_addr *local, const uint8_t *frames, size_t n)
{
    if (rudp__recovery_reserve(&c->rec) < 0)
        return -ENOMEM;
    uint8_t *buf = c->ctx->pkt;
    size_t cap = c->mss - rudp__seal_overhead(c->keyed);
    uint64_t pn;
    int hl = data_header(c, buf, cap, &pn);
    if (hl < 0 || cap - (size_t)hl < n)
        return -ENOBUFS;
    memcpy(buf + hl, frames, n);
    rudp_sent s;
    memset(&s, 0, sizeof s);
    s.pn = pn;
    s.size = (uint32_t)send_data_on(c, sock, to, local, pn, buf, (size_t)hl + n);
    rudp__recovery_on_sent(&c->rec, &c->cc, now, &s);
    c->ctx->stats.pkts_sent++;
    return 0;
}

/* The pacer's next departure after `size` in-flight bytes left now. */
static void paced(rudp_conn *c, rudp_time now, uint32_t size)
{
    uint64_t rate = rudp__conn_pacing_rate(c);
    int late = c->pace_late && (now <= c->pace_time || now - c->pace_time <= RUDP_MS(1));
    rudp_time burst = pace_interval(pace_burst(c, rate, late), rate);
    rudp_time base = c->pace_time;
    if (now > burst && base < now - burst)
        base = now - burst;
    c->pace_time = base + pace_interval(size, rate);
    /* Never hold the next packet longer than a round trip: a pacing
     * rate the controller brought near zero (BBR after losses of 64 KB
     * loopback datagrams) put it 135 s ahead, and the connection sat
     * idle with data to resend (t_asyncio_echo's stall, seen since
     * 8d193eb). At most one packet per RTT is still slower than the
     * smallest window. */
    rudp_time most = c->rtt.smoothed > RUDP_MS(1) ? c->rtt.smoothed : RUDP_MS(1);
    if (c->pace_time > now + most)
        c->pace_time = now + most;
}

/* ---- repair: the last packet of a write goes twice ----
 *
 * A lost packet with later packets acknowledged is found by the packet or
 * time threshold within about a round trip; the last packet before the
 * sender runs dry has no later packet, so its loss waits for a probe
 * timeout and then a round trip more: a request or an answer of one
 * packet took 2 RTT and more at 1% loss (bench B5, p99 83 ms on a 40 ms
 * path). So that packet's stream data (and FIN) goes again at once in a
 * new packet number, a copy: plain STREAM data, which every receiver
 * takes as it takes a retransmission (nothing new to decode, nothing new
 * an attacker can send). For one-packet writes an XOR or Reed-Solomon
 * repair over k packets is this same copy; in longer writes the earlier
 * packets' losses are found by the thresholds from the later ones' ACKs,
 * without a timeout, so the tail is what needs the redundancy.
 *
 * Only where it pays: a copy costs a datagram (a syscall), a probe
 * timeout on a short path costs little, so AUTO waits for a path whose
 * minimum RTT is RUDP_REPAIR_MIN_RTT or more and for a loss seen on the
 * connection. And only for short writes: the tail of a flight of at most
 * RUDP_REPAIR_FLIGHT packets (a request, an answer, a keystroke), at most
 * once per half smoothed RTT. A one-packet request per round trip is
 * copied every time; a bulk sender is copied only when its whole flight
 * is that small (its first and last round trips), and a sender of many
 * small writes pays at most two copies per round trip.
 *
 * The pair is marked (RUDP_SENT_COPIED, then RUDP_SENT_COPY on the next
 * packet number): the loss of one while its twin is in flight re-queues
 * nothing, and the loss of a packet whose copy delivered its bytes is
 * still a loss to the controller (RFC 9265: a repaired loss is congestion
 * all the same), counted in losses_repaired (conn_input.c). */

#define RUDP_REPAIR_FLIGHT 4

static int repair_pays(const rudp_conn *c, rudp_time now)
{
    if (c->rec.bytes_in_flight >= (uint64_t)(RUDP_REPAIR_FLIGHT - 1) * c->mss)
        return 0; /* with the packet being built: more than RUDP_REPAIR_FLIGHT */
    if (c->cfg.repair == RUDP_REPAIR_OFF)
        return 0;
    if (c->cfg.repair != RUDP_REPAIR_ALWAYS &&
        (!c->rtt.has_sample || c->rtt.min < RUDP_REPAIR_MIN_RTT || !c->rec.lost_packets))
        return 0;
    return now >= c->repair_next;
}

/* Sends the copy of packet o (just sent: its stream data still held) in
 * the next packet number, if the window and the path allow it. */
static void send_copy(rudp_conn *c, rudp_time now, const rudp_sent *o)
{
    rudp_ctx *ctx = c->ctx;
    if (c->rec.bytes_in_flight >= c->cc.cwnd || !rudp__path_may_send(c, c->mss) ||
        rudp__recovery_reserve(&c->rec) < 0)
        return;
    uint8_t *buf = ctx->pkt;
    size_t cap = c->mss - rudp__seal_overhead(c->keyed);
    uint64_t pn;
    int hl = data_header(c, buf, cap, &pn);
    if (hl < 0 || pn != o->pn + 1)
        return;
    rudp_sent s;
    memset(&s, 0, sizeof s);
    s.pn = pn;
    size_t off = (size_t)hl;
    off += (size_t)rudp__urg_write(c, buf + off, cap - off, &s.flags);
    /* Our ACK again, in the room the stream data leaves: when the original
     * carried it (an answer acknowledging its request) and is lost, the
     * peer's own probe timeout need not fire either. */
    size_t need = rudp__wire_stream_hdr_len(o->stream_off, o->stream_len, 0) + o->stream_len;
    if (c->rx_any && cap - off > need) {
        int a = write_ack(c, now, buf + off, cap - off - need);
        off += a > 0 ? (size_t)a : 0;
    }
    int fin = (o->flags & RUDP_SENT_FIN) != 0;
    int n = rudp__wire_stream_hdr_encode(buf + off, cap - off, o->stream_off, o->stream_len, fin,
                                         0);
    if (n <= 0 || cap - off - (size_t)n < o->stream_len)
        return;
    off += (size_t)n;
    rudp__sbuf_read(&c->sbuf, o->stream_off, buf + off, o->stream_len);
    off += o->stream_len;
    s.stream_off = o->stream_off;
    s.stream_len = o->stream_len;
    s.flags |= RUDP_SENT_ACK_ELICITING | RUDP_SENT_IN_FLIGHT | RUDP_SENT_ACK_NOW | RUDP_SENT_COPY;
    if (fin)
        s.flags |= RUDP_SENT_FIN;
    buf[3] = (uint8_t)(buf[3] | (RUDP_PKTF_ACK_NOW << 4));
    s.size = (uint32_t)rudp__conn_send_data(c, pn, buf, off);
    rudp__recovery_on_sent(&c->rec, &c->cc, now, &s);
    ctx->stats.pkts_sent++;
    ctx->stats.repair_pkts++;
    ctx->stats.repair_bytes += o->stream_len;
    paced(c, now, s.size);
    c->repair_next = now + c->rtt.smoothed / 2;
}

/* Where send_one builds its packet: in the caller's batch when it offers
 * room (tx_room), which then sends it without copying it again (a bulk
 * sender copied each byte from its buffer into the packet and the packet
 * into the batch), else in the context's own buffer. */
static uint8_t *tx_buf(rudp_ctx *ctx, size_t len)
{
    uint8_t *p = ctx->ops.tx_room ? ctx->ops.tx_room(ctx->user, len) : NULL;
    return p ? p : ctx->pkt;
}

int rudp_conn_tx_paced(const rudp_conn *c, rudp_time now, rudp_time within)
{
    return c->pace_held && c->pace_time <= now + within && within > 0 &&
           within <= c->rtt.smoothed / 4 && c->probes == 0 &&
           c->rec.bytes_in_flight < c->cc.cwnd && rudp__conn_have_stream_to_send(c);
}

/* Builds and sends one DATA packet. Returns 1 if one was sent, 0 if there
 * was nothing to send (or the pacer/window holds it back). */
static int send_one(rudp_conn *c, rudp_time now)
{
    rudp_ctx *ctx = c->ctx;
    int probe = c->probes > 0;
    int stream = rudp__conn_have_stream_to_send(c);
    int cwnd_ok = probe || c->rec.bytes_in_flight < c->cc.cwnd;
    if (c->pace_held && c->pace_time <= now) {
        c->pace_held = 0;
        c->pace_late = 1; /* its time came: a late wake-up may catch up */
    }
    if (!cwnd_ok)
        c->pace_late = 0; /* held by the window: a gap, not lateness */
    rudp_time ahead = stream && cwnd_ok && !probe && !c->pace_held ? pace_ahead(c) : 0;
    int pace_ok = probe || c->pace_time <= now + ahead;
    int send_stream = stream && cwnd_ok && pace_ok;
    int control = c->max_data_pending || c->blocked_pending || c->ping_pending || (probe && !stream);
    int want_ack = c->rx_any && (c->ack_now || (c->rx_unacked && (send_stream || control)));

    if (stream && cwnd_ok && !pace_ok) {
        rudp__conn_arm(c, RUDP_T_PACE, c->pace_time);
        if (!c->pace_held)
            ctx->stats.pacer_waits++;
        c->pace_held = 1;
        c->pace_late = 0;
    }
    if (!send_stream && !control && !want_ack)
        return 0;
    if (!rudp__path_may_send(c, c->mss))
        return 0; /* an address not validated yet: 3x what came from it */
    if (rudp__recovery_reserve(&c->rec) < 0)
        return 0;

    uint8_t *buf = tx_buf(ctx, c->mss);
    size_t cap = c->mss - rudp__seal_overhead(c->keyed);
    uint64_t pn;
    int hl = data_header(c, buf, cap, &pn);
    if (hl < 0)
        return 0;
    size_t off = (size_t)hl;
    rudp_sent s;
    memset(&s, 0, sizeof s);
    s.pn = pn;
    int n;

    if (want_ack) {
        n = write_ack(c, now, buf + off, cap - off - 32);
        if (n > 0) {
            off += (size_t)n;
            c->ack_now = 0;
            c->rx_unacked = 0;
            c->rx_eliciting = 0;
            rudp__conn_disarm(c, RUDP_T_ACK);
        }
    }
    if (c->max_data_pending) {
        uint64_t max = c->rcv_read + c->rwnd;
        n = rudp__wire_max_data_encode(buf + off, cap - off, max);
        if (n > 0) {
            off += (size_t)n;
            c->max_data_sent = max;
            c->max_data_pending = 0;
            s.flags |= RUDP_SENT_MAX_DATA | RUDP_SENT_ACK_ELICITING;
        }
    }
    if (c->blocked_pending) {
        n = rudp__wire_blocked_encode(buf + off, cap - off, c->peer_max_data);
        if (n > 0) {
            off += (size_t)n;
            c->blocked_pending = 0;
            s.flags |= RUDP_SENT_BLOCKED | RUDP_SENT_ACK_ELICITING;
        }
    }
    n = rudp__urg_write(c, buf + off, cap - off, &s.flags);
    off += (size_t)n;
    if (c->ping_pending || (probe && !stream)) {
        n = rudp__wire_ping_encode(buf + off, cap - off);
        if (n > 0) {
            off += (size_t)n;
            c->ping_pending = 0;
            s.flags |= RUDP_SENT_ACK_ELICITING;
        }
    }
    if (send_stream) {
        uint64_t lo, hi;
        int fin = 0;
        size_t hdr = rudp__wire_stream_hdr_len(c->snd_nxt, 0, 0);
        if (!rudp__ranges_empty(&c->retx))
            hdr = rudp__wire_stream_hdr_len(c->retx.r[0].lo, 0, 0);
        size_t room = cap - off > hdr ? cap - off - hdr : 0;
        if (!rudp__ranges_empty(&c->retx)) {
            lo = c->retx.r[0].lo;
            hi = rudp__seq_min(c->retx.r[0].hi, lo + room);
            fin = c->fin_off != RUDP_FIN_NONE && hi == c->fin_off && !c->fin_acked;
            rudp__ranges_remove(&c->retx, lo, hi);
            c->bytes_retx += hi - lo;
            ctx->stats.bytes_retransmitted += hi - lo;
            ctx->stats.pkts_resent += hi > lo;
        } else {
            lo = c->snd_nxt;
            hi = rudp__seq_min(rudp__seq_min(c->snd_end, c->peer_max_data), lo + room);
            fin = c->fin_off != RUDP_FIN_NONE && hi == c->fin_off;
            c->snd_nxt = hi;
            rudp__tune_sent(c);
            c->bytes_sent += hi - lo;
            ctx->stats.stream_bytes_sent += hi - lo;
        }
        if (hi > lo || fin) {
            n = rudp__wire_stream_hdr_encode(buf + off, cap - off, lo, hi - lo, fin, 0);
            assert(n > 0);
            off += (size_t)n;
            rudp__sbuf_read(&c->sbuf, lo, buf + off, (size_t)(hi - lo));
            off += (size_t)(hi - lo);
            s.stream_off = lo;
            s.stream_len = (uint32_t)(hi - lo);
            s.flags |= RUDP_SENT_ACK_ELICITING;
            if (fin) {
                s.flags |= RUDP_SENT_FIN;
                c->fin_sent = 1;
            }
        }
    }
    if (off == (size_t)hl)
        return 0;

    if (s.flags & RUDP_SENT_ACK_ELICITING) {
        s.flags |= RUDP_SENT_IN_FLIGHT;
        /* The last packet before we run dry, and probes, ask for an
         * immediate ACK: a lost tail then costs one RTT-sized probe
         * timeout, not max_ack_delay more. */
        if (probe || !rudp__conn_have_stream_to_send(c)) {
            s.flags |= RUDP_SENT_ACK_NOW;
            buf[3] = (uint8_t)(buf[3] | (RUDP_PKTF_ACK_NOW << 4));
            if (!probe && (s.stream_len || (s.flags & RUDP_SENT_FIN)) && repair_pays(c, now))
                s.flags |= RUDP_SENT_COPIED;
        }
    }
    s.size = (uint32_t)rudp__conn_send_data(c, pn, buf, off);
    rudp__recovery_on_sent(&c->rec, &c->cc, now, &s);
    ctx->stats.pkts_sent++;
    if (s.flags & RUDP_SENT_IN_FLIGHT) {
        paced(c, now, s.size);
        /* the user timeout runs while stream data or the FIN waits for
         * its acknowledgement (rudp__conn_stream_unacked) */
        if (rudp__conn_stream_unacked(c) && !rudp__timer_armed(&c->timers[RUDP_T_GIVEUP]))
            rudp__conn_arm(c, RUDP_T_GIVEUP, now + c->cfg.user_timeout);
    }
    if (probe && (s.flags & RUDP_SENT_ACK_ELICITING))
        c->probes--;
    if (s.flags & RUDP_SENT_COPIED)
        send_copy(c, now, &s);
    return 1;
}

/* A path MTU probe (pmtu.c), if one is due: a PING padded to the size
 * tried, in flight as any packet (the window must have room), asking for
 * an immediate ACK. Only while stream data waits: the size serves the
 * sender's data, and a receiver's or an idle connection's probes would
 * only be traffic (a keeper's quiet connection kept talking, a hint
 * answered by a full-size probe per round trip). */
static void send_pmtu_probe(rudp_conn *c, rudp_time now)
{
    if (!rudp__conn_have_stream_to_send(c))
        return;
    uint32_t size = rudp__pmtu_probe_size(c, now);
    if (!size || c->rec.bytes_in_flight >= c->cc.cwnd || !rudp__path_may_send(c, size) ||
        rudp__recovery_reserve(&c->rec) < 0)
        return;
    uint8_t *buf = c->ctx->pkt;
    size_t cap = size - rudp__seal_overhead(c->keyed);
    uint64_t pn;
    int hl = data_header(c, buf, cap, &pn);
    if (hl < 0)
        return;
    size_t off = (size_t)hl;
    int n = rudp__wire_ping_encode(buf + off, cap - off);
    if (n <= 0)
        return;
    off += (size_t)n;
    memset(buf + off, RUDP_FRAME_PADDING, cap - off);
    buf[3] = (uint8_t)(buf[3] | (RUDP_PKTF_ACK_NOW << 4));
    rudp_sent s;
    memset(&s, 0, sizeof s);
    s.pn = pn;
    s.flags = RUDP_SENT_ACK_ELICITING | RUDP_SENT_IN_FLIGHT | RUDP_SENT_ACK_NOW |
              RUDP_SENT_PMTU_PROBE;
    s.size = (uint32_t)rudp__conn_send_data(c, pn, buf, cap);
    rudp__recovery_on_sent(&c->rec, &c->cc, now, &s);
    c->ctx->stats.pkts_sent++;
    rudp__pmtu_probe_sent(c, pn, size);
}

void rudp__conn_flush(rudp_conn *c, rudp_time now)
{
    if (!rudp__conn_sending_state(c->state))
        return;
    rudp__path_flush(c, now);
    /* Flow control: tell the peer once per limit that we are blocked. */
    if (rudp__seq_lt(c->snd_nxt, c->snd_end) && c->snd_nxt >= c->peer_max_data &&
        c->blocked_at != c->peer_max_data) {
        c->blocked_at = c->peer_max_data;
        c->blocked_pending = 1;
        c->persist_n = 0; /* window probes from the probe timeout on */
        if (c->cfg.keepalive && c->state != RUDP_TIME_WAIT)
            rudp__conn_arm(c, RUDP_T_KEEPALIVE, now + rudp__conn_keepalive_wait(c));
    }
    if (c->state == RUDP_ESTABLISHED || c->state == RUDP_CLOSE_WAIT)
        send_pmtu_probe(c, now);
    while (send_one(c, now))
        ;
    rudp__cork_arm(c, now);
    /* Not limited by the window: the controller must not grow it, and
     * delivery-rate samples from now on are app-limited. */
    int cwnd_limited = c->rec.bytes_in_flight >= c->cc.cwnd;
    c->cc.app_limited = !cwnd_limited && !rudp__conn_have_stream_to_send(c);
    if (c->cc.app_limited)
        rudp__recovery_set_app_limited(&c->rec);
    rudp__conn_update_loss_timer(c);
    rudp__trace_metrics(c);
}
