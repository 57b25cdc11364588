/*
 * trace.c: connection events for a qlog writer (see rudp.h, tracing).
 *
 * The core keeps no trace state beyond a handle per connection: every
 * METRICS event carries all values and the writer reports those that
 * changed. Packets are described from their own bytes with the wire
 * decoder, so what is traced is what crossed the wire.
 */
#include <assert.h>
#include <string.h>

#include "seq.h"
#include "trace.h"

void rudp_ctx_set_trace(rudp_ctx *ctx, const rudp_trace_ops *ops, void *user)
{
    /* A traced connection's handle belongs to the ops that opened it. */
    for (const rudp_conn *c = ctx->all; c; c = c->all_next)
        assert(!c->trace);
    if (ops)
        ctx->trace_ops = *ops;
    else
        memset(&ctx->trace_ops, 0, sizeof ctx->trace_ops);
    ctx->trace_user = user;
}

static void emit(rudp_conn *c, rudp_trace_event *ev)
{
    ev->now = c->ctx->now;
    c->ctx->trace_ops.event(c->trace, ev);
}

void rudp__trace_do_state(rudp_conn *c, rudp_state to, const char *why)
{
    rudp_ctx *ctx = c->ctx;
    if (!c->trace && !c->trace_asked) {
        c->trace_asked = 1;
        c->trace = ctx->trace_ops.open(ctx->trace_user, c, c->is_server, ctx->now);
    }
    if (!c->trace)
        return;
    rudp_trace_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = RUDP_TRACE_CONN_STATE;
    ev.old_state = c->state;
    ev.new_state = to;
    ev.why = why;
    emit(c, &ev);
}

static void add_frame(rudp_trace_packet *p, uint8_t type, uint64_t a, uint64_t b, uint8_t fin)
{
    if (p->nframes == RUDP_TRACE_FRAMES_MAX) {
        p->frames_omitted++;
        return;
    }
    rudp_trace_frame *f = &p->frames[p->nframes++];
    f->type = type;
    f->a = a;
    f->b = b;
    f->fin = fin;
}

static void add_ack(rudp_trace_packet *p, const rudp_frame *f)
{
    add_frame(p, RUDP_FRAME_ACK, f->u.ack.delay_us, 0, 0);
    if (p->nranges || p->ranges_omitted)
        return; /* the first ACK frame's ranges only */
    for (uint32_t i = 0; i < f->u.ack.n; i++) {
        if (p->nranges == RUDP_TRACE_RANGES_MAX) {
            p->ranges_omitted = f->u.ack.n - i;
            break;
        }
        p->ranges[p->nranges].lo = f->u.ack.r[i].lo;
        p->ranges[p->nranges++].hi = f->u.ack.r[i].hi;
    }
}

void rudp__trace_do_packet(rudp_conn *c, int kind, const uint8_t *buf, size_t len)
{
    rudp_trace_packet p;
    rudp_hdr h;
    memset(&p, 0, sizeof p);
    int hl = rudp__wire_hdr_decode(buf, len, &h);
    if (hl < 0)
        return; /* never ours to send; a received one was dropped before this */
    p.type = h.type;
    p.flags = h.flags;
    p.length = (uint32_t)len;
    p.pn = h.pn;
    if (h.type == RUDP_PKT_DATA) {
        /* sent: recovery is about to record it as next_pn; received: expand
         * as the connection will */
        uint64_t expected = kind == RUDP_TRACE_PACKET_SENT ? rudp__recovery_next_pn(&c->rec)
                            : c->rx_any                    ? c->rx_largest + 1
                                                           : 0;
        p.pn = rudp__pn_expand(expected, h.pn);
    }
    rudp_frame f;
    for (size_t off = (size_t)hl; off < len;) {
        int n = rudp__wire_frame_decode(buf + off, len - off, &f);
        if (n <= 0)
            break; /* the connection drops it whole; what decoded is shown */
        switch (f.type) {
        case RUDP_FRAME_PADDING:
            add_frame(&p, f.type, (uint64_t)n, 0, 0);
            break;
        case RUDP_FRAME_PING:
            add_frame(&p, f.type, 0, 0, 0);
            break;
        case RUDP_FRAME_ACK:
            add_ack(&p, &f);
            break;
        case RUDP_FRAME_MAX_DATA:
            add_frame(&p, f.type, f.u.max_data, 0, 0);
            break;
        case RUDP_FRAME_DATA_BLOCKED:
            add_frame(&p, f.type, f.u.blocked, 0, 0);
            break;
        case RUDP_FRAME_URGENT:
            add_frame(&p, f.type, f.u.urgent, 0, 0);
            break;
        case RUDP_FRAME_NEW_PORT:
            add_frame(&p, f.type, f.u.new_port, 0, 0);
            break;
        case RUDP_FRAME_NEW_TOKEN:
            add_frame(&p, f.type, f.u.token.len, 0, 0); /* its length, never the token */
            break;
        case RUDP_FRAME_RESET:
            add_frame(&p, f.type, f.u.reset.code, f.u.reset.final_size, 0);
            break;
        case RUDP_FRAME_PATH_CHALLENGE:
        case RUDP_FRAME_PATH_RESPONSE:
            add_frame(&p, f.type, f.u.path_data, 0, 0);
            break;
        default:
            add_frame(&p, RUDP_FRAME_STREAM, f.u.stream.offset, f.u.stream.len, f.u.stream.fin);
            break;
        }
        off += (size_t)n;
    }
    rudp_trace_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = kind;
    ev.packet = &p;
    emit(c, &ev);
}

void rudp__trace_do_lost(rudp_conn *c, const rudp_sent *s)
{
    rudp_trace_packet p;
    memset(&p, 0, sizeof p);
    p.type = RUDP_PKT_DATA;
    p.pn = s->pn;
    p.length = s->size;
    if (s->stream_len || (s->flags & RUDP_SENT_FIN))
        add_frame(&p, RUDP_FRAME_STREAM, s->stream_off, s->stream_len,
                  (s->flags & RUDP_SENT_FIN) != 0);
    rudp_trace_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = RUDP_TRACE_PACKET_LOST;
    ev.packet = &p;
    emit(c, &ev);
}

void rudp__trace_do_metrics(rudp_conn *c)
{
    rudp_trace_metrics m;
    memset(&m, 0, sizeof m);
    m.cwnd = c->cc.cwnd;
    m.bytes_in_flight = c->rec.bytes_in_flight;
    m.ssthresh = c->cc.ssthresh;
    m.pacing_rate = rudp__conn_pacing_rate(c);
    m.delivery_rate = c->rec.delivery_rate;
    if (c->rtt.has_sample) {
        m.smoothed_rtt = c->rtt.smoothed;
        m.min_rtt = c->rtt.min;
        m.latest_rtt = c->rtt.latest;
        m.rtt_variance = c->rtt.var;
    }
    m.pto_count = c->rec.pto_count;
    m.cc = c->cc.ops->name;
    m.cc_state = c->cc.ops->phase ? c->cc.ops->phase(&c->cc) : "";
    rudp_trace_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = RUDP_TRACE_METRICS;
    ev.metrics = &m;
    emit(c, &ev);
}

void rudp__trace_do_mtu(rudp_conn *c, uint32_t old, uint32_t now_size, int done)
{
    rudp_trace_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = RUDP_TRACE_MTU;
    ev.mtu_old = old;
    ev.mtu_new = now_size;
    ev.mtu_done = (uint8_t)done;
    emit(c, &ev);
}

void rudp__trace_do_path(rudp_conn *c, const char *why, rudp_time rtt)
{
    rudp_trace_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = RUDP_TRACE_PATH;
    ev.why = why;
    ev.path_peer = &c->pkey.addr;
    ev.path_rtt = rtt;
    emit(c, &ev);
}

void rudp__trace_do_close(rudp_conn *c)
{
    void *h = c->trace;
    c->trace = NULL;
    c->ctx->trace_ops.close(h, c->ctx->now);
}
