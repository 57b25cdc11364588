/*
 * fuzz_conn.c: libFuzzer target that attacks live connections.
 *
 * Each input starts from the same place: two contexts wired together in
 * memory (a FIFO of datagrams, no loss unless the input asks), a client
 * connected to a listening server with a fixed seed at a fixed virtual time,
 * and a few kilobytes exchanged each way. The rest of the input is a script
 * of operations:
 *
 *   deliver queued legitimate datagrams (some dropped or swapped), advance
 *   virtual time (or jump to the next deadline), write/read/shutdown on
 *   either side, and inject datagrams into either context from the peer's
 *   address: raw bytes; a valid DATA header for the live connection followed
 *   by raw frame bytes; a valid DATA header with a packet number near the
 *   expected one followed by frames encoded with wire.h from fuzz-chosen
 *   values (ACKs near the real packet numbers, STREAM near the real offsets,
 *   MAX_DATA, DATA_BLOCKED, PING, PADDING, RESET); or a replay of a
 *   captured legitimate datagram, possibly with one byte flipped; or a
 *   padded first SYN to the server (the live client's ID or another, with
 *   no cookie or a forged one: a half-open connection or a RETRY, never a
 *   change to the live one). And ICMP
 *   errors (rudp_ctx_icmp) quoting captured datagrams (cut short, maybe
 *   altered) or fuzz bytes.
 *
 * What must hold whatever is injected (checked after every operation; a
 * failure aborts so libFuzzer keeps the input):
 *   - a byte read at a stream offset that no injected STREAM frame ever
 *     covered is the byte the peer wrote there (the protocol cannot tell a
 *     forged STREAM frame with a valid header from a real one, so offsets
 *     named by any injected STREAM frame are excused);
 *   - bytes, once readable, never change before they are read (forged or
 *     not: later frames must not overwrite them);
 *   - readable bytes never exceed the receive window, and bytes readable
 *     past what the peer wrote are all covered by forged frames;
 *   - events are only reported for connections the application holds (the
 *     client it connected, the server connection it was given by ACCEPT);
 *   - a FIN is only ever believed at the offset the peer shut down at or at
 *     the end of an injected STREAM frame with FIN;
 *   - the connection's own books balance: bytes_in_flight and
 *     eliciting_in_flight equal the sums over the sent-packet ring,
 *     snd_una <= snd_nxt <= snd_end, retransmission and acknowledged ranges
 *     lie within what was sent, rcv_read <= rcv_contig <= the advertised
 *     limit, cwnd >= the minimum window, a CLOSED connection has no timers;
 *   - peek/consume and reserve/commit agree with read/write;
 *   - rudp_ctx_free releases everything (LeakSanitizer).
 *
 * Reading and writing go through both the copying and the zero-copy calls.
 *
 * tests/fuzz_keyed.c builds this file with FUZZ_KEYED: both contexts hold
 * one key (rudp_ctx_set_key), and nothing injected is ever excused as
 * forged, so every byte read must be the peer's and every FIN the peer's:
 * without the key, no datagram may add, change or end anything (only an
 * ICMP error quoting a real datagram may still end a connection, as it may
 * unkeyed).
 *
 * The datagrams injected are built by tests/lib_fuzzconn.c.
 *
 * Build: make fuzz, or
 *   clang -std=c11 -D_GNU_SOURCE -O1 -g -Icore -fsanitize=fuzzer,address,undefined \
 *         -fno-sanitize-recover=all -o /tmp/fuzz_conn tests/fuzz_conn.c \
 *         tests/lib_fuzzconn.c core/\*.c
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "seq.h"
#include "wire.h"

#include "fuzz.h"
#include "lib_fuzzconn.h"

#define QCAP 256
#define DGRAM_MAX 2048
#define NCAPTURE 16
#define MAX_FORGED_FINS 32
#define MAX_OPS 400
#define WRITE_BUDGET (512u * 1024u)
#define T_START RUDP_SEC(1000)
#define SHADOW (8u << 20) /* > budget + forged bytes + window */

typedef struct qdgram {
    int to;
    uint16_t len;
    uint8_t buf[DGRAM_MAX];
} qdgram;

static struct world {
    rudp_ctx *ctx[2];
    rudp_addr addr[2];
    rudp_conn *conn[2];
    rudp_config cfg;
    rudp_time now;
    qdgram q[QCAP];
    uint32_t qhead, qn;
    qdgram cap[NCAPTURE];
    uint32_t ncap, capnext;
    uint64_t written[2];  /* legitimate bytes ep wrote */
    uint64_t received[2]; /* bytes ep read */
    uint64_t legit_fin[2]; /* where ep shut down, UINT64_MAX: not yet */
    rudp_ranges forged[2]; /* stream offsets injected toward ep */
    uint64_t forged_fin[2][MAX_FORGED_FINS];
    uint32_t nforged_fin[2];
    int forged_fin_overflow[2];
    int autoread[2];
    int established[2];
    uint64_t stable[2]; /* shadow[ep][..stable) holds bytes as they became readable */
} W;

static uint8_t shadow[2][SHADOW];

/* ---- the wire between the two contexts ---- */

static int ep_of(const rudp_addr *a)
{
    for (int i = 0; i < 2; i++)
        if (memcmp(&W.addr[i], a, sizeof *a) == 0)
            return i;
    return -1;
}

static void on_send(void *user, uint32_t sock, const rudp_addr *peer, const uint8_t *buf,
                    size_t len)
{
    (void)sock;
    int from = (int)(intptr_t)user;
    int to = ep_of(peer);
    CHECK(len <= 65507);
    if (to < 0 || to == from || len > DGRAM_MAX)
        return; /* a reply to a spoofed address goes nowhere */
    qdgram *c = &W.cap[W.capnext];
    W.capnext = (W.capnext + 1) % NCAPTURE;
    if (W.ncap < NCAPTURE)
        W.ncap++;
    c->to = to;
    c->len = (uint16_t)len;
    memcpy(c->buf, buf, len);
    if (W.qn == QCAP)
        return; /* queue full: lost */
    qdgram *d = &W.q[(W.qhead + W.qn) % QCAP];
    W.qn++;
    d->to = to;
    d->len = (uint16_t)len;
    memcpy(d->buf, buf, len);
}

/* ---- the applications ---- */

/* Records bytes that just became readable: from now on they must not change. */
static void snapshot(int ep)
{
    rudp_conn *c = W.conn[ep];
    if (!c || c->rcv_contig <= W.stable[ep])
        return;
    CHECK(W.stable[ep] >= c->rcv_read);
    CHECK(c->rcv_contig <= SHADOW);
    rudp__sbuf_read(&c->rbuf, W.stable[ep], shadow[ep] + W.stable[ep],
                   (size_t)(c->rcv_contig - W.stable[ep]));
    W.stable[ep] = c->rcv_contig;
}

/* Checks bytes read at stream offset W.received[ep] and counts them. */
static void took(int ep, const uint8_t *buf, size_t n)
{
    CHECK(W.received[ep] + n <= W.stable[ep]);
    for (size_t k = 0; k < n; k++) {
        uint64_t off = W.received[ep] + k;
        /* Readable bytes are final, forged or not. */
        CHECK(buf[k] == shadow[ep][off]);
        if (rudp__ranges_contains(&W.forged[ep], off))
            continue;
        /* Nobody but the peer ever sent this offset. */
        CHECK(off < W.written[1 - ep]);
        CHECK(buf[k] == fuzzconn_pattern(1 - ep, off));
    }
    W.received[ep] += n;
}

/* Reads up to max bytes, by copy or (zero_copy) by peek and consume. */
static void app_read(int ep, size_t max, int zero_copy)
{
    rudp_conn *c = W.conn[ep];
    uint8_t buf[4096];
    snapshot(ep);
    while (c && max) {
        if (zero_copy) {
            const uint8_t *p;
            size_t n = rudp_conn_peek(c, &p);
            CHECK(n <= rudp_conn_readable(c));
            if (!n) {
                CHECK(rudp_conn_readable(c) == 0);
                return;
            }
            CHECK(p != NULL);
            if (n > max)
                n = max;
            took(ep, p, n);
            rudp_conn_consume(c, W.now, n);
            max -= n;
            continue;
        }
        size_t want = max < sizeof buf ? max : sizeof buf;
        ssize_t n = rudp_conn_read(c, W.now, buf, want);
        if (n <= 0) {
            if (n == 0 && c->fin_received)
                CHECK(W.received[ep] == c->peer_fin);
            return;
        }
        CHECK((size_t)n <= want);
        took(ep, buf, (size_t)n);
        max -= (size_t)n;
    }
}

/* Writes len pattern bytes, by copy or (zero_copy) by reserve and commit. */
static void app_write(int ep, size_t len, int zero_copy)
{
    rudp_conn *c = W.conn[ep];
    uint8_t buf[4096];
    while (c && len && W.written[ep] < WRITE_BUDGET) {
        if (zero_copy) {
            uint8_t *p;
            ssize_t room = rudp_conn_reserve(c, &p);
            CHECK(room >= 0); /* -ENOMEM only */
            CHECK((size_t)room <= rudp_conn_write_space(c));
            if (!room)
                return;
            size_t n = len < (size_t)room ? len : (size_t)room;
            for (size_t k = 0; k < n; k++)
                p[k] = fuzzconn_pattern(ep, W.written[ep] + k);
            rudp_conn_commit(c, W.now, n);
            W.written[ep] += n;
            len -= n;
            continue;
        }
        size_t n = len < sizeof buf ? len : sizeof buf;
        for (size_t k = 0; k < n; k++)
            buf[k] = fuzzconn_pattern(ep, W.written[ep] + k);
        ssize_t w = rudp_conn_write(c, W.now, buf, n);
        if (w <= 0)
            return;
        CHECK((size_t)w <= n);
        W.written[ep] += (uint64_t)w;
        len -= (size_t)w;
    }
}

static void app_shutdown(int ep)
{
    rudp_conn *c = W.conn[ep];
    if (!c)
        return;
    int before = c->shut_wr;
    if (rudp_conn_shutdown(c, W.now) == 0 && !before && c->shut_wr)
        W.legit_fin[ep] = W.written[ep];
}

static void handle_events(int ep)
{
    rudp_conn *c;
    unsigned ev;
    while (rudp_ctx_next_event(W.ctx[ep], &c, &ev)) {
        if (ev & RUDP_EV_ACCEPT) {
            CHECK(ep == SRV);
            CHECK(W.conn[ep] == NULL); /* one client, one handshake */
            W.conn[ep] = c;
        }
        CHECK(c == W.conn[ep]);
        if (ev & (RUDP_EV_ACCEPT | RUDP_EV_ESTABLISHED))
            W.established[ep] = 1;
        if (ev & RUDP_EV_ERROR)
            CHECK(rudp_conn_error(c) < 0);
        if ((ev & RUDP_EV_READABLE) && W.autoread[ep])
            app_read(ep, SIZE_MAX, W.autoread[ep] > 1);
        if (ev & RUDP_EV_CLOSED) {
            CHECK(rudp_conn_state(c) == RUDP_CLOSED);
            app_read(ep, SIZE_MAX, 0);
            rudp_conn_release(c, W.now);
            W.conn[ep] = NULL;
        }
    }
}

static void process(void)
{
    for (int round = 0; round < 2; round++)
        for (int ep = 0; ep < 2; ep++) {
            rudp_ctx_process(W.ctx[ep], W.now);
            handle_events(ep);
        }
}

/* ---- invariants ---- */

static int forged_fin_at(int ep, uint64_t off)
{
    if (W.forged_fin_overflow[ep])
        return 1;
    for (uint32_t i = 0; i < W.nforged_fin[ep]; i++)
        if (W.forged_fin[ep][i] == off)
            return 1;
    return 0;
}

static void check_ranges_sorted(const rudp_ranges *s)
{
    CHECK(s->n <= s->limit && s->n <= s->cap);
    for (uint32_t i = 0; i < s->n; i++) {
        CHECK(s->r[i].lo < s->r[i].hi);
        if (i)
            CHECK(s->r[i - 1].hi < s->r[i].lo);
    }
}

static void check_conn(int ep)
{
    rudp_conn *c = W.conn[ep];
    if (!c)
        return;
    CHECK(!c->dead && !c->released);

    /* receive side */
    uint64_t readable = rudp_conn_readable(c);
    snapshot(ep);
    if (readable) {
        /* what is readable now is still what it was when it became so */
        uint8_t buf[256];
        size_t n = readable < sizeof buf ? (size_t)readable : sizeof buf;
        rudp__sbuf_read(&c->rbuf, c->rcv_read, buf, n);
        CHECK(memcmp(buf, shadow[ep] + c->rcv_read, n) == 0);
    }
    CHECK(c->rcv_read == W.received[ep]);
    CHECK(c->rcv_read <= c->rcv_contig);
    CHECK(readable <= W.cfg.recv_window);
    CHECK(c->rcv_contig <= c->max_data_sent);
    uint64_t total = W.received[ep] + readable;
    if (total > W.written[1 - ep]) {
        uint64_t from = W.received[ep] > W.written[1 - ep] ? W.received[ep] : W.written[1 - ep];
        CHECK(rudp__ranges_covers(&W.forged[ep], from, total));
    }
    check_ranges_sorted(&c->rcv);
    if (c->rcv.n) {
        CHECK(c->rcv.r[0].lo > c->rcv_contig);
        CHECK(c->rcv.r[c->rcv.n - 1].hi <= c->max_data_sent);
    }
    if (c->peer_fin != RUDP_FIN_NONE)
        CHECK(c->peer_fin == W.legit_fin[1 - ep] || forged_fin_at(ep, c->peer_fin));
    if (c->fin_received)
        CHECK(c->rcv_contig == c->peer_fin);
    check_ranges_sorted(&c->rx_pns);

    /* send side */
    CHECK(c->snd_end == W.written[ep]);
    CHECK(c->snd_una <= c->snd_nxt && c->snd_nxt <= c->snd_end);
    CHECK(c->snd_end - c->snd_una <= W.cfg.send_buffer);
    if (c->fin_off != RUDP_FIN_NONE)
        CHECK(c->fin_off == W.legit_fin[ep]);
    check_ranges_sorted(&c->retx);
    check_ranges_sorted(&c->acked);
    if (c->retx.n)
        CHECK(c->retx.r[0].lo >= c->snd_una && c->retx.r[c->retx.n - 1].hi <= c->snd_nxt);
    if (c->acked.n)
        CHECK(c->acked.r[0].lo > c->snd_una && c->acked.r[c->acked.n - 1].hi <= c->snd_nxt);

    /* recovery's books */
    const rudp_recovery *r = &c->rec;
    CHECK(r->count <= r->cap);
    if (r->count)
        CHECK(r->first_pn + r->count == r->next_pn);
    uint64_t bytes = 0;
    uint32_t eliciting = 0;
    for (uint32_t i = 0; i < r->count; i++) {
        const rudp_sent *s = &r->ring[(r->head + i) % r->cap];
        CHECK(s->pn == r->first_pn + i);
        if (s->flags & (RUDP_SENT_ACKED | RUDP_SENT_LOST))
            continue;
        if (s->flags & RUDP_SENT_IN_FLIGHT)
            bytes += s->size;
        if (s->flags & RUDP_SENT_ACK_ELICITING)
            eliciting++;
    }
    CHECK(bytes == r->bytes_in_flight);
    CHECK(eliciting == r->eliciting_in_flight);
    CHECK(c->cc.cwnd >= rudp__cc_min_window(c->cc.mss));
    CHECK(c->cc.cwnd < (1ull << 48));

    if (c->state == RUDP_CLOSED)
        for (int k = 0; k < RUDP_T_COUNT; k++)
            CHECK(!rudp__timer_armed(&c->timers[k]));

    rudp_conn_info info;
    rudp_conn_get_info(c, &info);
    CHECK(info.readable_bytes == readable);
    CHECK(info.bytes_in_flight == r->bytes_in_flight);
}

static void check_all(void)
{
    check_conn(CLI);
    check_conn(SRV);
    for (int ep = 0; ep < 2; ep++)
        CHECK(rudp_ctx_unfinished(W.ctx[ep]) <= rudp_ctx_conn_count(W.ctx[ep]));
}

/* ---- delivery ---- */

static void input(int to, int from, const uint8_t *buf, size_t len)
{
    rudp_ctx_input(W.ctx[to], W.now, 1, NULL, &W.addr[from], buf, len);
}

static int deliver_one(int drop)
{
    if (!W.qn)
        return 0;
    /* copy out: input may queue replies into the slot we are reading */
    static qdgram d;
    d = W.q[W.qhead];
    W.qhead = (W.qhead + 1) % QCAP;
    W.qn--;
    if (!drop)
        input(d.to, 1 - d.to, d.buf, d.len);
    return 1;
}

static void deliver_all(unsigned limit)
{
    for (unsigned i = 0; i < limit && W.qn; i++) {
        while (W.qn)
            deliver_one(0);
        process();
    }
}

static rudp_time next_deadline(void)
{
    rudp_time t = RUDP_TIME_NEVER;
    for (int ep = 0; ep < 2; ep++) {
        rudp_time d = rudp__wheel_next(&W.ctx[ep]->wheel);
        if (d < t)
            t = d;
    }
    return t;
}

/* Marks what an injected datagram could make `to` believe as stream data. */
static void note_forged(int to, const uint8_t *buf, size_t len)
{
    rudp_hdr h;
    int hl = rudp__wire_hdr_decode(buf, len, &h);
    if (hl < 0 || h.type != RUDP_PKT_DATA)
        return;
    const uint8_t *p = buf + hl;
    size_t n = len - (size_t)hl;
    rudp_frame f;
    while (n) {
        int m = rudp__wire_frame_decode(p, n, &f);
        if (m <= 0)
            return;
        if (f.type == RUDP_FRAME_STREAM) {
            if (f.u.stream.len)
                CHECK(rudp__ranges_add(&W.forged[to], f.u.stream.offset,
                                      f.u.stream.offset + f.u.stream.len) == 0);
            if (f.u.stream.fin) {
                uint64_t end = f.u.stream.offset + f.u.stream.len;
                if (!forged_fin_at(to, end)) {
                    if (W.nforged_fin[to] < MAX_FORGED_FINS)
                        W.forged_fin[to][W.nforged_fin[to]++] = end;
                    else
                        W.forged_fin_overflow[to] = 1;
                }
            }
        }
        p += m;
        n -= (size_t)m;
    }
}

static void inject(int to, int from, const uint8_t *buf, size_t len)
{
#ifndef FUZZ_KEYED
    note_forged(to, buf, len);
#endif
    input(to, from, buf, len);
}

/* ---- the script ---- */

static rudp_time time_step(uint8_t b)
{
    static const rudp_time unit[4] = {RUDP_US(10), RUDP_MS(1), RUDP_MS(50), RUDP_SEC(2)};
    return (rudp_time)((b & 0x3f) + 1) * unit[b >> 6];
}

/* A first SYN to the server from the client's address (or the next
 * port), padded as a client pads it: its own client ID (a duplicate of the
 * live connection's, which nothing may change) or another (a half-open
 * connection answered at once, within 3x, or a RETRY), with no cookie or a
 * forged one. None of it may reach the live connection. */
static void inject_syn(rd *r)
{
    uint8_t buf[RUDP_MIN_SYN_SIZE], how = u8(r);
    rudp_hdr h;
    memset(&h, 0, sizeof h);
    h.type = RUDP_PKT_SYN;
    h.scid = (how & 1) ? W.conn[CLI]->cid : u64(r);
    if (how & 2) {
        h.token_len = RUDP_TOKEN_LEN;
        for (int k = 0; k < RUDP_TOKEN_LEN; k++)
            h.token[k] = u8(r);
    }
    h.max_data = u8(r) << 10;
    h.max_datagram = 1200 + (uint64_t)u8(r) * 100;
    int n = rudp__wire_hdr_encode(buf, sizeof buf, &h);
    CHECK(n > 0);
    memset(buf + n, 0, sizeof buf - (size_t)n);
    rudp_addr a = W.addr[CLI];
    if (how & 4)
        a.port = (uint16_t)(a.port + 1);
    rudp_ctx_input(W.ctx[SRV], W.now, 1, NULL, &a, buf, sizeof buf);
}

static void op_inject(rd *r, uint8_t op)
{
    int to = (op >> 3) & 1, from = 1 - to;
    uint8_t kind = (uint8_t)(op >> 4);
    uint8_t buf[1500];
    size_t len = 0;
    rudp_conn *c = W.conn[to];
    int mode = c ? kind % 4 : 0;
    if (mode == 0 && to == SRV && W.conn[CLI] && kind == 12 && (op & 7) == 2) {
        inject_syn(r);
        return;
    }
    if (mode == 0) {
        /* raw bytes */
        len = u8(r);
        if (kind & 8)
            len += (size_t)u8(r) * 4;
        if (len > sizeof buf)
            len = sizeof buf;
        for (size_t k = 0; k < len; k++)
            buf[k] = u8(r);
        if ((kind & 4) && len >= 4) {
            buf[0] = RUDP_WIRE_MAGIC0;
            buf[1] = RUDP_WIRE_MAGIC1;
            buf[2] = RUDP_WIRE_VERSION;
        }
    } else if (mode == 1) {
        /* valid header, raw frames */
        len = fuzzconn_build_header(r, c, buf, sizeof buf);
        size_t n = u8(r);
        for (size_t k = 0; k < n && len < sizeof buf; k++)
            buf[len++] = u8(r);
    } else {
        /* valid header, encoded frames */
        len = fuzzconn_build_header(r, c, buf, sizeof buf);
        size_t room = c->mss > len ? c->mss - len : 0;
        if (room > sizeof buf - len)
            room = sizeof buf - len;
        len += fuzzconn_build_frames(r, c, buf + len, room);
    }
    if (mode == 1 && (kind & 0xc) == 0xc) {
        /* A valid header from another address (core/path.c). A client
         * moves nowhere on it: unkeyed it is held unprocessed (at most it
         * starts a validation of that address, which a spoofed one cannot
         * answer), keyed it fails authentication. A server takes
         * it as any packet but does not move there: unkeyed, only a
         * validation the spoofed address cannot answer would move it;
         * keyed, only an authenticated packet, which raw frames are not.
         * "As any packet": unkeyed, its STREAM frames (and FIN) are
         * believed as a forged packet's from the peer's own address
         * would be, so they are excused the same way. */
        rudp_addr a = W.addr[from], was = c->pkey.addr;
        a.port = (uint16_t)(a.port + 1);
#ifndef FUZZ_KEYED
        if (c->is_server)
            note_forged(to, buf, len);
#endif
        rudp_ctx_input(W.ctx[to], W.now, 1, NULL, &a, buf, len);
        CHECK(memcmp(&c->pkey.addr, &was, sizeof was) == 0);
        return;
    }
    inject(to, from, buf, len);
}

static void op_replay(rd *r)
{
    if (!W.ncap)
        return;
    uint8_t sel = u8(r);
    qdgram d = W.cap[sel % W.ncap];
    if (sel & 0x80) {
        uint16_t pos = u16(r);
        uint8_t x = u8(r) | 1;
        if (d.len)
            d.buf[pos % d.len] ^= x;
        inject(d.to, 1 - d.to, d.buf, d.len);
    } else {
        input(d.to, 1 - d.to, d.buf, d.len); /* verbatim: its data is the writer's */
    }
}

/* An ICMP error at the sender of a captured datagram, quoting it (cut
 * short, maybe with a byte flipped), or quoting fuzz bytes. A quote that
 * names a live connection may reset it, as a RESET may: the checks hold
 * either way. */
static void op_icmp(rd *r, uint8_t op)
{
    static const int errs[] = {-ECONNREFUSED, -EHOSTUNREACH, -ENETUNREACH, -EPROTO};
    int err = errs[(op >> 3) & 3];
    uint8_t sel = u8(r);
    static qdgram d;
    if (W.ncap && (sel & 1)) {
        d = W.cap[(sel >> 1) % W.ncap];
        if (sel & 0x80) {
            uint16_t pos = u16(r);
            if (d.len)
                d.buf[pos % d.len] ^= u8(r) | 1;
        }
    } else {
        d.to = (sel >> 1) & 1;
        d.len = 0;
        for (unsigned n = u8(r) % 48; n && r->n; n--)
            d.buf[d.len++] = u8(r);
    }
    size_t len = d.len;
    uint8_t cut = u8(r);
    if (cut < len)
        len = cut; /* an ICMP message quotes only the start of a datagram */
    rudp_ctx_icmp(W.ctx[1 - d.to], W.now, 1, &W.addr[d.to], d.buf, len, err);
}

static void op_deliver(rd *r)
{
    unsigned k = 1 + u8(r) % 32;
    uint8_t drop = u8(r), swap = u8(r);
    for (unsigned i = 0; i < k && W.qn; i++) {
        if ((swap >> (i % 8)) & 1 && W.qn >= 2) {
            uint32_t a = W.qhead, b = (W.qhead + 1) % QCAP;
            static qdgram t;
            t = W.q[a];
            W.q[a] = W.q[b];
            W.q[b] = t;
        }
        deliver_one(i < 8 && ((drop >> i) & 1));
    }
}

static void op_app(rd *r, uint8_t op)
{
    int ep = (op >> 3) & 1;
    switch ((op >> 4) % 8) {
    case 0:
    case 1:
        app_write(ep, (size_t)u16(r) % 40000, 0);
        break;
    case 2:
        app_write(ep, (size_t)u16(r) % 40000, 1);
        break;
    case 3:
        app_read(ep, 1 + (size_t)u16(r), 0);
        break;
    case 4:
        app_read(ep, 1 + (size_t)u16(r), 1);
        break;
    case 5:
        W.autoread[ep] = (W.autoread[ep] + 1) % 3; /* off, copy, zero-copy */
        break;
    case 6:
        app_shutdown(ep);
        break;
    default: {
        uint8_t b = u8(r);
        if (b == 0xa5 && W.conn[ep]) {
            rudp_conn_abort(W.conn[ep], W.now);
        } else if (b == 0x5a && W.conn[ep]) {
            /* Done with the handle: the connection finishes (or resets,
             * with unread data) on its own and frees itself. */
            if (!W.conn[ep]->shut_wr)
                W.legit_fin[ep] = W.written[ep];
            rudp_conn_release(W.conn[ep], W.now);
            W.conn[ep] = NULL;
        }
        break;
    }
    }
}

static void op_time(rd *r, uint8_t op)
{
    if (op & 0x08) {
        rudp_time t = next_deadline();
        if (t != RUDP_TIME_NEVER && t > W.now)
            W.now = t;
    } else {
        W.now += time_step(u8(r));
    }
}

/* ---- set-up and the entry point ---- */

static void world_init(uint8_t variant)
{
    W.qhead = W.qn = 0;
    W.ncap = W.capnext = 0;
    for (int ep = 0; ep < 2; ep++) {
        W.ctx[ep] = NULL;
        W.conn[ep] = NULL;
        W.written[ep] = W.received[ep] = 0;
        W.legit_fin[ep] = UINT64_MAX;
        rudp__ranges_init(&W.forged[ep], NULL, UINT32_MAX);
        W.nforged_fin[ep] = 0;
        W.forged_fin_overflow[ep] = 0;
        W.autoread[ep] = (variant & (2 << ep)) ? 0 : (variant & 0x10) ? 2 : 1;
        W.established[ep] = 0;
        W.stable[ep] = 0;
        memset(&W.addr[ep], 0, sizeof W.addr[ep]);
        W.addr[ep].family = 2;
        W.addr[ep].port = (uint16_t)(1000 + ep);
        W.addr[ep].ip[0] = 10;
        W.addr[ep].ip[3] = (uint8_t)(ep + 1);
    }
    W.now = T_START;
    rudp_config_default(&W.cfg);
    if (variant & 1) {
        /* small windows: flow control and a full send buffer are reachable */
        W.cfg.send_buffer = 8192;
        W.cfg.recv_window = 4096;
    }
    if (variant & 8)
        W.cfg.max_datagram = 1200;
    if (variant & 0x20) /* every short write's last packet copied (conn_output.c) */
        W.cfg.repair = RUDP_REPAIR_ALWAYS;
    static const rudp_ctx_ops ops = {.send = on_send, .log = NULL};
    for (int ep = 0; ep < 2; ep++) {
        uint8_t seed[32];
        for (int k = 0; k < 32; k++)
            seed[k] = (uint8_t)(k * 7 + ep * 101 + 3);
        CHECK(rudp_ctx_new(&ops, (void *)(intptr_t)ep, seed, &W.cfg, NULL, &W.ctx[ep]) == 0);
#ifdef FUZZ_KEYED
        static const uint8_t key[RUDP_KEY_LEN] = "fuzz key, the same on both ends";
        seed[0] ^= 0x55;
        CHECK(rudp_ctx_set_key(W.ctx[ep], key, seed) == 0);
#endif
    }
}

static void world_free(void)
{
    for (int ep = 0; ep < 2; ep++) {
        rudp_ctx_free(W.ctx[ep]);
        W.ctx[ep] = NULL;
        rudp__ranges_free(&W.forged[ep]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rd r = {data, size};
    uint8_t variant = u8(&r);
    world_init(variant);

    /* Handshake, then a little data each way, all at a fixed pace. */
    rudp_listener *l;
    CHECK(rudp_listen(W.ctx[SRV], 1, NULL, 4, &l) == 0);
    if (variant & 0x20)
        rudp_listener_set_zero_rtt(l, 1); /* NEW_TOKEN frames in the stream (zrtt.c) */
    rudp_conn *c;
    CHECK(rudp_connect(W.ctx[CLI], W.now, 1, &W.addr[SRV], NULL, &c) == 0);
    W.conn[CLI] = c;
    process();
    for (int i = 0; i < 8 && !(W.established[CLI] && W.established[SRV]); i++) {
        W.now += RUDP_MS(5);
        deliver_all(4);
    }
    CHECK(W.established[CLI] && W.established[SRV]);
    app_write(CLI, 3000, 0);
    app_write(SRV, 2000, 1);
    process();
    for (int i = 0; i < 4; i++) {
        W.now += RUDP_MS(5);
        deliver_all(8);
    }
    check_all();

    for (int ops = 0; r.n && ops < MAX_OPS; ops++) {
        uint8_t op = u8(&r);
        switch (op & 7) {
        case 0:
        case 1:
        case 2:
            op_inject(&r, op);
            break;
        case 3:
            if (op & 0x40)
                op_icmp(&r, op);
            else
                op_replay(&r);
            break;
        case 4:
            op_deliver(&r);
            break;
        case 5:
            if (op & 0x80)
                deliver_all(1 + (op >> 3) % 16);
            else
                op_deliver(&r);
            break;
        case 6:
            op_time(&r, op);
            break;
        default:
            op_app(&r, op);
            break;
        }
        process();
        check_all();
    }

    /* Let what is queued and due play out for a while. */
    for (int i = 0; i < 16; i++) {
        deliver_all(8);
        rudp_time t = next_deadline();
        if (t == RUDP_TIME_NEVER)
            break;
        if (t > W.now)
            W.now = t;
        process();
        check_all();
    }
    world_free();
    return 0;
}
