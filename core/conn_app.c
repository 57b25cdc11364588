/*
 * conn_app.c: the application's side of a connection: writing into the
 * send stream, reading the receive stream (and the receive window's
 * auto-tuning that reading drives), shutdown, abort, release and the
 * getters. The state machine stays in conn.c, packet handling in
 * conn_input.c and conn_output.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "trace.h"

/* ---- application calls ---- */

/* Whether the application may still queue bytes: not after its FIN, a
 * failure, or in states where the stream is over or not yet ours. */
static int may_write(const rudp_conn *c)
{
    if (c->error || c->shut_wr)
        return 0;
    switch (c->state) {
    case RUDP_SYN_SENT:
    case RUDP_ESTABLISHED:
    case RUDP_CLOSE_WAIT:
        return 1;
    case RUDP_SYN_RCVD:
        /* in the application's queue since its SYN (early accept): an
         * accepted socket, whose bytes go once the client's first DATA
         * makes it established (conn_output.c sends none before) */
        return c->accept_early && !c->synack_held;
    case RUDP_CLOSED:
    case RUDP_FIN_WAIT_1:
    case RUDP_FIN_WAIT_2:
    case RUDP_CLOSING:
    case RUDP_TIME_WAIT:
    case RUDP_LAST_ACK:
    case RUDP_STATE_COUNT:
        return 0;
    }
    return 0;
}

ssize_t rudp_conn_write(rudp_conn *c, rudp_time now, const void *buf, size_t len)
{
    now = rudp__clock(c->ctx, now);
    if (c->error)
        return c->error;
    if (!may_write(c))
        return -EPIPE;
    size_t space = rudp__conn_send_space(c);
    if (space == 0) {
        c->want_writable = 1;
        return -EAGAIN;
    }
    size_t n = len < space ? len : space;
    if (n == 0)
        return 0;
    int err = rudp__sbuf_write(&c->sbuf, c->snd_end, buf, n);
    if (err)
        return err;
    c->snd_end += n;
    if (c->zrtt_hold)
        rudp_conn_syn_release(c, now); /* the first bytes ride with the SYN */
    if (n < len)
        c->want_writable = 1;
    rudp__conn_dirty(c);
    return (ssize_t)n;
}

size_t rudp_conn_write_space(const rudp_conn *c)
{
    return may_write(c) ? rudp__conn_send_space(c) : 0;
}

uint64_t rudp_conn_unsent(const rudp_conn *c)
{
    return c->snd_end - c->snd_nxt;
}

uint64_t rudp_conn_unacked(const rudp_conn *c)
{
    return c->snd_end - c->snd_una;
}

/* Receive-window auto-tuning (in the spirit of TCP's dynamic right-sizing
 * and QUIC stacks' window growth): when the sender says the window blocks
 * it (DATA_BLOCKED at the limit we advertise) while the application keeps
 * up (less than half the window waits unread, and half a window was read
 * since the last growth: budget.c), the window doubles, at most once per
 * round trip and up to recv_window. Loss does not stop it; a reader that
 * stalls never grows it, so the sender is held to a small window, as TCP
 * holds it; a DATA_BLOCKED alone grows nothing. Bytes the caller holds
 * unread (ops.unread: the shim's bridge) are not read. */
void rudp__conn_autotune(rudp_conn *c, rudp_time now, uint64_t limit)
{
    if (c->rwnd >= c->cfg.recv_window || c->peer_fin != RUDP_FIN_NONE)
        return;
    rudp_time round = c->rtt.smoothed > RUDP_MS(1) ? c->rtt.smoothed : RUDP_MS(1);
    if (now - c->rwnd_start < round)
        return;
    /* what the reader took: rcv_read less what the caller holds unread */
    uint64_t held = c->ctx->ops.unread ? c->ctx->ops.unread(c->ctx->user, c) : 0;
    uint64_t taken = c->rcv_read - (held < c->rcv_read ? held : c->rcv_read);
    int keeping_up = c->rcv_contig - taken < c->rwnd / 2;
    if (!keeping_up || !rudp__window_may_grow(c, limit, taken))
        return;
    c->rwnd *= 2;
    if (c->rwnd > c->cfg.recv_window)
        c->rwnd = c->cfg.recv_window;
    c->rwnd_start = now;
    c->rwnd_read = taken;
}

/* The application took bytes up to rcv_read: free memory, open the window. */
static void after_read(rudp_conn *c)
{
    rudp__sbuf_advance(&c->rbuf, c->rcv_read, c->rcv_read == c->rcv_contig && c->rcv.n == 0);
    /* Open the window once a quarter of it is free again (SWS avoidance). */
    if (c->peer_fin == RUDP_FIN_NONE && rudp__conn_sending_state(c->state) &&
        c->rcv_read + c->rwnd > c->max_data_sent &&
        c->rcv_read + c->rwnd - c->max_data_sent >= c->rwnd / 4) {
        c->max_data_pending = 1;
        rudp__conn_dirty(c);
    }
}

ssize_t rudp_conn_read(rudp_conn *c, rudp_time now, void *buf, size_t len)
{
    now = rudp__clock(c->ctx, now);
    uint64_t avail = c->rcv_contig - c->rcv_read;
    if (avail == 0) {
        if (c->fin_received)
            return 0;
        if (c->error)
            return c->error;
        if (c->state == RUDP_CLOSED)
            return 0;
        return -EAGAIN;
    }
    size_t n = avail < len ? (size_t)avail : len;
    rudp__sbuf_read(&c->rbuf, c->rcv_read, buf, n);
    c->rcv_read += n;
    after_read(c);
    return (ssize_t)n;
}

size_t rudp_conn_peek(const rudp_conn *c, const uint8_t **p)
{
    rudp_span sp;
    int k = rudp_conn_peek_spans(c, &sp, 1);
    *p = k > 0 ? sp.p : NULL;
    return k > 0 ? sp.len : 0;
}

void rudp_conn_consume(rudp_conn *c, rudp_time now, size_t n)
{
    now = rudp__clock(c->ctx, now);
    uint64_t avail = c->rcv_contig - c->rcv_read;
    if (n > avail)
        n = (size_t)avail;
    c->rcv_read += n;
    after_read(c);
}

ssize_t rudp_conn_reserve(rudp_conn *c, uint8_t **p)
{
    rudp_span sp;
    int k = rudp_conn_reserve_spans(c, &sp, 1);
    *p = k > 0 ? sp.p : NULL;
    return k > 0 ? (ssize_t)sp.len : k; /* 0 when full, or -ENOMEM */
}

int rudp_conn_peek_spans(const rudp_conn *c, rudp_span *sp, int max)
{
    uint64_t off = c->rcv_read, avail = c->rcv_contig - c->rcv_read;
    int k = 0;
    while (avail && k < max) {
        size_t n;
        uint8_t *q = rudp__sbuf_span((rudp_sbuf *)&c->rbuf, off, RUDP_SBUF_HELD, &n);
        if (!q)
            break;
        if (n > avail)
            n = (size_t)avail;
        sp[k].p = q;
        sp[k++].len = n;
        off += n;
        avail -= n;
    }
    return k;
}

int rudp_conn_reserve_spans(rudp_conn *c, rudp_span *sp, int max)
{
    size_t space = rudp_conn_write_space(c);
    if (!space) {
        c->want_writable = 1;
        return 0;
    }
    uint64_t off = c->snd_end;
    int k = 0;
    /* One span may be a small chunk's (sbuf.h); spans taken together for
     * one copy are whole chunks, which a later span never moves. */
    int how = max > 1 ? RUDP_SBUF_WHOLE : RUDP_SBUF_ALLOC;
    while (space && k < max) {
        size_t n;
        uint8_t *q = rudp__sbuf_span(&c->sbuf, off, how, &n);
        if (!q)
            return k ? k : -ENOMEM;
        if (n > space)
            n = space;
        sp[k].p = q;
        sp[k++].len = n;
        off += n;
        space -= n;
    }
    return k;
}

void rudp_conn_commit(rudp_conn *c, rudp_time now, size_t n)
{
    now = rudp__clock(c->ctx, now);
    size_t space = rudp_conn_write_space(c);
    if (n > space)
        n = space;
    if (!n)
        return;
    c->snd_end += n;
    if (c->zrtt_hold)
        rudp_conn_syn_release(c, now); /* the first bytes ride with the SYN */
    rudp__conn_dirty(c);
}

size_t rudp_conn_readable(const rudp_conn *c)
{
    return (size_t)(c->rcv_contig - c->rcv_read);
}

int rudp_conn_fin_received(const rudp_conn *c)
{
    return c->fin_received;
}

int rudp_conn_shutdown(rudp_conn *c, rudp_time now)
{
    now = rudp__clock(c->ctx, now);
    if (c->error || c->state == RUDP_CLOSED || c->reset_pending)
        return -ENOTCONN; /* failed, closed, or as good as (its reset waits) */
    if (c->shut_wr)
        return 0;
    c->shut_wr = 1;
    switch (c->state) {
    case RUDP_SYN_SENT:
    case RUDP_SYN_RCVD:
        return 0; /* applied once established */
    case RUDP_ESTABLISHED:
        c->fin_off = c->snd_end;
        rudp__conn_set_state(c, RUDP_FIN_WAIT_1, "shutdown");
        break;
    case RUDP_CLOSE_WAIT:
        c->fin_off = c->snd_end;
        rudp__conn_set_state(c, RUDP_LAST_ACK, "shutdown");
        break;
    case RUDP_CLOSED:
    case RUDP_FIN_WAIT_1:
    case RUDP_FIN_WAIT_2:
    case RUDP_CLOSING:
    case RUDP_TIME_WAIT:
    case RUDP_LAST_ACK:
    case RUDP_STATE_COUNT:
        return 0;
    }
    rudp__conn_dirty(c);
    return 0;
}

/* A connect given up in SYN_SENT once its SYN went out: a RESET to the ID
 * that SYN carried, by which the server finds its half-open connection
 * (ctx.c: rudp__find_peer). TCP's client kernel answers the late SYNACK
 * with RST; we drop an unknown SYNACK, and a loopback server reports the
 * connection to its application at the SYN (early accept, conn.c), which
 * would otherwise accept() a connection that brings neither data nor EOF
 * until the handshake times out (RUDP_CONNECT_TIMEOUT): kernel TCP won a
 * fallback race against a server too busy to answer (shim/engine/fallback.c),
 * or the application closed a connecting socket. Unkeyed only: a keyed
 * server accepts nothing early (ctx.c) and takes only resets it can
 * authenticate. */
static void syn_sent_reset(rudp_conn *c)
{
    if (c->state != RUDP_SYN_SENT || !c->hs_count || c->keyed)
        return;
    rudp_hdr h;
    memset(&h, 0, sizeof h);
    h.type = RUDP_PKT_RESET;
    h.dcid = c->cid;
    uint8_t buf[RUDP_WIRE_SHORT_HDR];
    int n = rudp__wire_hdr_encode(buf, sizeof buf, &h);
    if (n <= 0)
        return;
    c->ctx->stats.resets_sent++;
    rudp__conn_send(c, buf, (size_t)n);
}

void rudp_conn_abort(rudp_conn *c, rudp_time now)
{
    now = rudp__clock(c->ctx, now);
    /* TCP sends what the app wrote at write() time, as far as its window
     * and pacing let it (tcp_sendmsg() -> tcp_push()); close() with
     * SO_LINGER {1, 0} then drops only what is still queued and sends its
     * reset after the rest (tcp_disconnect()). Our writes wait for the
     * engine's flush at the end of its turn, so bytes written in the same
     * turn as the abort go first here, as far as the window and pacing let
     * them, and the peer reads them before its ECONNRESET. */
    rudp__conn_flush(c, now);
    rudp__conn_abort_now(c, now);
}

void rudp_conn_close_reset(rudp_conn *c, rudp_time now)
{
    now = rudp__clock(c->ctx, now);
    if (rudp_conn_shutdown(c, now) < 0)
        return; /* failed or closed already, or its reset waits */
    /* The reset says where the FIN is, so a peer that has every byte
     * takes it as coming after the FIN even if the FIN is lost. */
    rudp__conn_reset_when_sent(c, now, RUDP_RESET_AFTER_FIN);
}

void rudp_conn_close_unread(rudp_conn *c, rudp_time now)
{
    rudp__conn_reset_when_sent(c, rudp__clock(c->ctx, now), RUDP_RESET_ABORT);
}

/* Everything the application queued has gone out, its FIN too (if any),
 * and nothing waits to be sent again. */
static int queued_sent(const rudp_conn *c)
{
    return rudp__ranges_empty(&c->retx) && c->snd_nxt == c->snd_end &&
           (c->fin_off == RUDP_FIN_NONE || c->fin_sent);
}

/*
 * TCP resets a connection its application closed with bytes unread, or
 * that bytes reached after the close (tcp_close(), tcp_rcv_state_process()),
 * and by then it had sent what the application wrote: at write time, as far
 * as its windows let it (on loopback, hundreds of KiB). Ours may still wait
 * for the peer's window (64 KiB at first) when the reset is due, and a
 * reset at once cut the reply short (a server's 100 KB reply and close()
 * with a pipelined request unread: the client read 64 KiB, then
 * ECONNRESET, where TCP's read all of it). So the reset waits for what is
 * queued to go out, as the window opens, for a few round trips at most
 * (RUDP_T_LINGER; at least 200 ms), then goes whatever is left. Meanwhile
 * the peer's new bytes are dropped unacknowledged (conn_input.c).
 *
 * The floor was 10 ms: on a loaded machine (make test beside two busy
 * loops) the peer's engine thread was off its CPU longer than that with
 * its first window full, and the reset cut a 100 KB reply at 64 KiB (2 of
 * 5 loaded runs of t_prog_closeunread). 200 ms is TCP's minimum RTO, the
 * time TCP itself gives a slow peer before it acts; the wait only runs
 * while bytes are left for a peer that takes none.
 */
#define RESET_WAIT_MIN RUDP_MS(200)

static rudp_time reset_wait(const rudp_conn *c)
{
    rudp_time wait = 4 * c->rtt.smoothed;
    if (wait < RESET_WAIT_MIN)
        wait = RESET_WAIT_MIN;
    return wait > c->cfg.linger ? c->cfg.linger : wait;
}

void rudp__conn_reset_when_sent(rudp_conn *c, rudp_time now, uint64_t code)
{
    now = rudp__clock(c->ctx, now);
    if (c->reset_pending)
        return; /* the first one's code and wait stand */
    if (!rudp__conn_sending_state(c->state)) {
        rudp__conn_abort_code(c, now, code); /* SYN_RCVD's deferral, or nothing */
        return;
    }
    c->reset_pending = 1;
    c->reset_after_fin = code == RUDP_RESET_AFTER_FIN;
    c->reset_by = now + c->cfg.linger;
    rudp__conn_arm(c, RUDP_T_LINGER, now + reset_wait(c));
    rudp__conn_flush(c, now);
    rudp__conn_reset_due(c, now); /* at once if all of it went */
}

void rudp__conn_reset_progress(rudp_conn *c, rudp_time now)
{
    if (!c->reset_pending)
        return;
    rudp_time at = now + reset_wait(c);
    rudp__conn_arm(c, RUDP_T_LINGER, at < c->reset_by ? at : c->reset_by);
}

int rudp__conn_reset_due(rudp_conn *c, rudp_time now)
{
    if (!c->reset_pending || !queued_sent(c))
        return 0;
    rudp__conn_abort_code(c, now, c->reset_after_fin ? RUDP_RESET_AFTER_FIN : RUDP_RESET_ABORT);
    return 1;
}

void rudp__conn_abort_now(rudp_conn *c, rudp_time now)
{
    rudp__conn_abort_code(c, now, RUDP_RESET_ABORT);
}

void rudp__conn_abort_code(rudp_conn *c, rudp_time now, uint64_t code)
{
    now = rudp__clock(c->ctx, now);
    if (c->state == RUDP_SYN_RCVD && c->accept_early && !c->synack_held) {
        /* In the application's queue since its SYN (early accept): to the
         * application it is an accepted connection, and to its client it
         * will be one at our SYNACK. What the application wrote cannot go
         * before the client's first DATA, and a reset now would beat both
         * (the client's connect() failing, or its read losing the bytes):
         * the reset waits until established, after those bytes, as TCP's
         * accepted socket sends its reset after its data. */
        c->abort_deferred = 1;
        c->abort_after_fin = code == RUDP_RESET_AFTER_FIN;
        return;
    }
    c->reset_pending = 0;
    if (!c->cause && c->state != RUDP_CLOSED)
        c->cause = RUDP_CAUSE_ABORTED;
    switch (c->state) {
    case RUDP_SYN_RCVD:
    case RUDP_ESTABLISHED:
    case RUDP_FIN_WAIT_1:
    case RUDP_FIN_WAIT_2:
    case RUDP_CLOSING:
    case RUDP_CLOSE_WAIT:
    case RUDP_LAST_ACK: {
        /* One RESET frame, fire and forget: if it is lost, the peer's next
         * packet finds no connection and earns a stateless reset. */
        rudp_hdr h;
        memset(&h, 0, sizeof h);
        h.type = RUDP_PKT_DATA;
        h.flags = RUDP_PKTF_ACK_NOW;
        h.dcid = c->pkey.cid;
        h.pn = rudp__pn_truncate(rudp__recovery_next_pn(&c->rec));
        uint8_t buf[64];
        int hl = rudp__wire_hdr_encode(buf, sizeof buf, &h);
        int n = hl > 0 ? rudp__wire_reset_encode(buf + hl, sizeof buf - (size_t)hl, code,
                                                 c->snd_end)
                       : -1;
        if (n > 0) {
            c->ctx->stats.resets_sent++;
            rudp__conn_send_data(c, rudp__recovery_next_pn(&c->rec), buf, (size_t)(hl + n));
        }
        break;
    }
    case RUDP_SYN_SENT:
        syn_sent_reset(c);
        break;
    case RUDP_TIME_WAIT:
        break;
    case RUDP_CLOSED:
    case RUDP_STATE_COUNT:
        return;
    }
    rudp__conn_set_state(c, RUDP_CLOSED, "abort");
}

void rudp_conn_release(rudp_conn *c, rudp_time now)
{
    now = rudp__clock(c->ctx, now);
    c->released = 1;
    c->user = NULL;
    c->events = 0;
    rudp__queue(c, RUDP_Q_NONE); /* nobody will take it now */
    switch (c->state) {
    case RUDP_CLOSED:
        rudp__conn_kill(c);
        return;
    case RUDP_SYN_SENT:
        syn_sent_reset(c);
        rudp__conn_set_state(c, RUDP_CLOSED, "released while connecting");
        return;
    case RUDP_SYN_RCVD:
        if (!c->accept_early || c->synack_held) {
            rudp_conn_abort(c, now); /* not the application's yet */
            return;
        }
        if (c->abort_deferred)
            return; /* its reset goes once established, without a FIN */
        break;      /* the application's (early accept): closed once established */
    case RUDP_ESTABLISHED:
    case RUDP_CLOSE_WAIT:
    case RUDP_FIN_WAIT_1:
    case RUDP_FIN_WAIT_2:
    case RUDP_CLOSING:
    case RUDP_LAST_ACK:
    case RUDP_TIME_WAIT:
        break;
    case RUDP_STATE_COUNT:
        return;
    }
    if (c->reset_pending)
        return; /* its reset goes once what is queued has (rudp__conn_reset_when_sent) */
    if (c->rcv_contig > c->rcv_read) {
        /* TCP resets on close() with unread data: the peer must not take
         * the stream as delivered. After what was written, as TCP's. */
        rudp_conn_close_unread(c, now);
        return;
    }
    rudp_conn_shutdown(c, now);
    if (c->state != RUDP_TIME_WAIT)
        rudp__conn_arm(c, RUDP_T_LINGER, now + c->cfg.linger);
}

int rudp_conn_error(const rudp_conn *c)
{
    return c->error;
}

rudp_state rudp_conn_state(const rudp_conn *c)
{
    return c->state;
}

void rudp_conn_set_user(rudp_conn *c, void *user)
{
    c->user = user;
}

void *rudp_conn_user(const rudp_conn *c)
{
    return c->user;
}

const rudp_addr *rudp_conn_peer(const rudp_conn *c)
{
    return &c->pkey.addr;
}

const rudp_addr *rudp_conn_local(const rudp_conn *c)
{
    return c->has_local ? &c->local : NULL;
}

uint32_t rudp_conn_sock(const rudp_conn *c)
{
    return c->sock;
}

void rudp_conn_get_info(const rudp_conn *c, rudp_conn_info *info)
{
    memset(info, 0, sizeof *info);
    info->state = c->state;
    info->rtt_us = c->rtt.smoothed / 1000;
    info->rttvar_us = c->rtt.var / 1000;
    info->min_rtt_us = c->rtt.min / 1000;
    info->cwnd_bytes = c->cc.cwnd;
    info->ssthresh_bytes = c->cc.ssthresh;
    info->bytes_in_flight = c->rec.bytes_in_flight;
    info->unacked_bytes = c->snd_end - c->snd_una;
    info->unsent_bytes = c->snd_end - c->snd_nxt;
    info->readable_bytes = c->rcv_contig - c->rcv_read;
    info->retransmits = c->rec.lost_packets;
    info->pto_count = c->rec.pto_count;
    info->bytes_sent = c->bytes_sent + c->bytes_retx;
    info->bytes_received = c->bytes_received;
    info->bytes_acked = c->snd_una;
    info->pacing_rate = rudp__conn_pacing_rate(c);
    info->delivery_rate = c->rec.delivery_rate;
    info->delivery_app_limited = c->rec.delivery_app_limited;
    info->receiver_limited = c->snd_end > c->snd_nxt && c->snd_nxt >= c->peer_max_data;
    info->peer_window = c->peer_max_data > c->snd_una ? c->peer_max_data - c->snd_una : 0;
    info->recv_window = c->cfg.recv_window;
    info->mss = c->mss;
    info->pmtu_probes = c->pmtu_probes;
    info->pmtu_probes_lost = c->pmtu_probes_lost;
    info->pmtu_fallbacks = c->pmtu_fallbacks;
    info->local_cid = c->cid;
    info->peer_cid = c->pkey.cid;
    info->conn_id = rudp_conn_id(c);
    info->path_moves = c->path.moves;
    info->rebinds = c->path.rebinds;
    info->path_failed = c->path.failed;
    info->handovers = c->path.standby.handovers;
    info->handbacks = c->path.standby.handbacks;
    info->standby = c->path.standby.on ? 1 + c->path.standby.valid : 0;
    info->on_standby = c->path.standby.handed;
    info->standby_pkts = c->path.standby.pkts;
    info->standby_rtt_us = c->path.standby.rtt / 1000;
    info->standby_challenges = c->path.standby.challenges;
    info->standby_unanswered = c->path.standby.unanswered;
    info->last_rx = c->last_rx;
    info->longest_silence = c->longest_silence;
}
