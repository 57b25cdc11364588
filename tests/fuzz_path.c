/*
 * fuzz_path.c: libFuzzer target for path validation (core/path.c) and the
 * standby path (core/standby.c), the input an observer controls (issue 30,
 * finding 1; issue 48).
 *
 * Each input starts from the same place: a client and a server wired in
 * memory, connected, a few kilobytes sent by the client. The first byte
 * picks unkeyed or keyed (both contexts hold one key), whether the client
 * is given its standby at once and whether the server offers its second
 * address at once. The rest is a script: deliver what is queued (all, one,
 * or lose one), advance time, either end writes, a NAT gives the client a
 * new address (the real peer moves), either path is cut or restored, the
 * client takes (or drops) a standby, the server offers an address; and
 * four observer addresses X0..X3, which see every datagram, send either
 * end: copies of the other end's datagrams with bits flipped, cut or
 * extended, from their own address or from one of the real ends' (spoofed),
 * raw bytes, packets made of chosen frames (PATH_CHALLENGE, PATH_RESPONSE,
 * SERVER_ADDR, NEW_PORT, PING, PADDING, MAX_DATA) with a fuzz-chosen packet
 * number, and (unkeyed: the challenge is readable) answers to the
 * challenges sent them.
 *
 * The network: the server has two addresses (srv, and srv2 that it may
 * offer, SERVER_ADDR), both heard by its one listening socket (1), which
 * is told where each datagram came to. The client has two sockets: 1, at
 * its NAT'd address, and 2 (its standby, rudp_conn_standby) at cli2. Either
 * client socket's path to the server can be cut both ways.
 *
 * What must hold (checked after every step; a failure aborts):
 *   - the server sends only from its own addresses; the client only on
 *     its two sockets;
 *   - each end's path is the other end's address, or one whose challenge
 *     was echoed to it from that address or from one it takes anything
 *     from (unkeyed, an observer reads the challenge where it went; keyed,
 *     none can); an answer from a third address validates nothing (path.h);
 *     the same for the address the server keeps as the client's other one;
 *   - an observer address that never became a path, never was validated
 *     as the client's other address (standby.c) and never was given to
 *     the client's standby got at most 3x the bytes it sent (RFC 9000 §8);
 *   - unkeyed, a datagram the receiving end takes for foreign (path.c) and
 *     that moves nothing changes nothing of the connection: its received
 *     packet numbers, the time it last heard its peer, its stream;
 *   - every byte either end reads is the other's, as long as no observer
 *     took its path and nothing unkeyed was sent it from its path's
 *     address (unkeyed, anyone can: docs/security.md);
 *   - rudp_ctx_free releases everything (LeakSanitizer).
 *
 * Build: make fuzz, or
 *   clang -std=c11 -D_GNU_SOURCE -O1 -g -Icore -fsanitize=fuzzer,address,undefined \
 *         -fno-sanitize-recover=all -o /tmp/fuzz_path tests/fuzz_path.c core/\*.c
 */
#include <string.h>

#include "conn.h"
#include "fuzz.h"
#include "wire.h"

#define CLI 0
#define SRV 1
#define NX 4          /* observer addresses */
#define NADDR 16      /* addresses the client's first socket may have */
#define QCAP 128
#define NCOPY 8
#define DGRAM_MAX 1500
#define MAX_OPS 300
#define T_START RUDP_SEC(1000)
#define SOCK1 1       /* the client's first socket; the server's only one */
#define SOCK2 2       /* the client's second socket (its standby) */
#define NECHO 32      /* addresses whose challenge was echoed, per end */

typedef struct qdgram {
    int to;
    uint32_t sock;    /* the receiver's socket */
    rudp_addr from;
    rudp_addr local;  /* where it was sent to */
    uint16_t len;
    uint8_t buf[DGRAM_MAX];
} qdgram;

static struct world {
    rudp_ctx *ctx[2];
    rudp_conn *conn[2];
    rudp_addr srv, srv2;
    rudp_addr cli[NADDR]; /* the first socket's addresses, the last one current */
    int ncli;
    rudp_addr cli2;       /* the second socket's */
    rudp_addr nowhere;    /* an address nobody has */
    rudp_addr x[NX];
    /* per end (CLI, SRV) and observer */
    uint64_t x_in[2][NX], x_out[2][NX]; /* bytes an observer sent the end, got from it */
    rudp_addr echoed[2][NECHO];         /* addresses whose challenge from the end was
                                           echoed to it (unkeyed: read where it went) */
    int nechoed[2];
    int x_path[2][NX];                  /* it became the end's path */
    int x_valid[NX];                    /* the server validated it as the client's other address */
    int x_standby[NX];                  /* the client's standby was given it */
    uint64_t challenge[2][NX];
    int has_challenge[2][NX];
    int keyed;
    int cut[2];                         /* the path of the client's socket 1 / 2 */
    int tainted[2];                     /* unkeyed, sent it from its path's address */
    int offered;                        /* the client was offered an address */
    rudp_addr offer;
    rudp_addr given[NECHO];             /* addresses offered that the client's standby took
                                           (unkeyed, a SERVER_ADDR may be forged) */
    int ngiven;
    rudp_time now;
    qdgram q[QCAP];
    uint32_t qhead, qn;
    qdgram copy[2][NCOPY]; /* each end's latest datagrams to the other */
    uint32_t ncopy[2];
    uint64_t written[2], read[2];
} W;

static uint8_t pattern(int ep, uint64_t off)
{
    uint64_t x = off * 0x9e3779b97f4a7c15ull + (uint64_t)ep * 0x632be59bd9b4e019ull;
    x ^= x >> 29;
    return (uint8_t)(x * 0xbf58476d1ce4e5b9ull >> 56);
}

static int addr_eq(const rudp_addr *a, const rudp_addr *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

static int observer_of(const rudp_addr *a)
{
    for (int k = 0; k < NX; k++)
        if (addr_eq(a, &W.x[k]))
            return k;
    return -1;
}

static const rudp_addr *cli_addr(uint32_t sock)
{
    return sock == SOCK2 ? &W.cli2 : &W.cli[W.ncli - 1];
}

static int is_srv(const rudp_addr *a)
{
    return addr_eq(a, &W.srv) || addr_eq(a, &W.srv2);
}

static int echoed(int ep, const rudp_addr *a)
{
    for (int i = 0; i < W.nechoed[ep]; i++)
        if (addr_eq(a, &W.echoed[ep][i]))
            return 1;
    return 0;
}

static int given(const rudp_addr *a)
{
    for (int i = 0; i < W.ngiven; i++)
        if (addr_eq(a, &W.given[i]))
            return 1;
    return 0;
}

static void echo_of(int ep, const rudp_addr *a)
{
    if (!echoed(ep, a) && W.nechoed[ep] < NECHO)
        W.echoed[ep][W.nechoed[ep]++] = *a;
}

/* An observer reads what reaches its address: unkeyed, the challenge. */
static void observer_got(int ep, int k, const uint8_t *buf, size_t len)
{
    W.x_out[ep][k] += len;
    rudp_hdr h;
    int hl = rudp__wire_hdr_decode(buf, len, &h);
    if (hl < 0 || h.type != RUDP_PKT_DATA || W.keyed)
        return;
    rudp_frame f;
    for (size_t off = (size_t)hl; off < len;) {
        int n = rudp__wire_frame_decode(buf + off, len - off, &f);
        if (n <= 0)
            return;
        off += (size_t)n;
        if (f.type == RUDP_FRAME_PATH_CHALLENGE) {
            W.challenge[ep][k] = f.u.path_data;
            W.has_challenge[ep][k] = 1;
        }
    }
}

static void enqueue(int to, uint32_t sock, const rudp_addr *from, const rudp_addr *local,
                    const uint8_t *buf, size_t len)
{
    if (len > DGRAM_MAX || W.qn == QCAP)
        return;
    qdgram *d = &W.q[(W.qhead + W.qn) % QCAP];
    W.qn++;
    d->to = to;
    d->sock = sock;
    d->from = *from;
    d->local = *local;
    d->len = (uint16_t)len;
    memcpy(d->buf, buf, len);
    int ep = 1 - to;
    W.copy[ep][W.ncopy[ep] % NCOPY] = *d;
    W.ncopy[ep]++;
}

static void on_send_from(void *user, uint32_t sock, const rudp_addr *peer, const rudp_addr *local,
                         uint64_t tag, const uint8_t *buf, size_t len)
{
    (void)tag;
    int from = (int)(intptr_t)user;
    int k = observer_of(peer);
    if (from == CLI) {
        CHECK(sock == SOCK1 || sock == SOCK2);
        const rudp_addr *src = cli_addr(sock);
        if (k >= 0) {
            observer_got(CLI, k, buf, len);
            return;
        }
        if (!is_srv(peer) || W.cut[sock == SOCK2])
            return; /* nobody there, or lost */
        enqueue(SRV, SOCK1, src, peer, buf, len);
        return;
    }
    CHECK(sock == SOCK1);
    const rudp_addr *src = local ? local : &W.srv;
    CHECK(is_srv(src)); /* only from its own addresses */
    if (k >= 0) {
        observer_got(SRV, k, buf, len);
        return;
    }
    uint32_t to;
    if (addr_eq(peer, &W.cli[W.ncli - 1]))
        to = SOCK1;
    else if (addr_eq(peer, &W.cli2))
        to = SOCK2;
    else
        return; /* to an address the client left: lost */
    if (W.cut[to == SOCK2])
        return;
    enqueue(CLI, to, src, cli_addr(to), buf, len);
}

static void on_send(void *user, uint32_t sock, const rudp_addr *peer, const uint8_t *buf,
                    size_t len)
{
    on_send_from(user, sock, peer, NULL, 0, buf, len);
}

static int observer_path(int ep)
{
    int taken = W.tainted[ep];
    for (int k = 0; k < NX; k++)
        taken |= W.x_path[ep][k];
    return taken;
}

static void app_read(int ep)
{
    rudp_conn *c = W.conn[ep];
    if (!c)
        return;
    uint8_t buf[4096];
    for (;;) {
        ssize_t n = rudp_conn_read(c, W.now, buf, sizeof buf);
        if (n <= 0)
            return;
        int taken = observer_path(ep);
        for (ssize_t i = 0; i < n; i++)
            CHECK(taken || buf[i] == pattern(1 - ep, W.read[ep] + (uint64_t)i));
        W.read[ep] += (uint64_t)n;
    }
}

static void handle_events(int ep)
{
    rudp_conn *c;
    unsigned ev;
    while (rudp_ctx_next_event(W.ctx[ep], &c, &ev)) {
        if (ev & RUDP_EV_ACCEPT) {
            CHECK(ep == SRV && W.conn[SRV] == NULL);
            W.conn[SRV] = c;
        }
        if (ev & RUDP_EV_OFFER) {
            CHECK(ep == CLI);
            W.offered = rudp_conn_server_offer(c, &W.offer);
            CHECK(W.offered);
        }
        if (ev & RUDP_EV_READABLE)
            app_read(ep);
        if (ev & RUDP_EV_CLOSED) {
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

static void deliver_one(int lose)
{
    if (!W.qn)
        return;
    static qdgram d;
    d = W.q[W.qhead];
    W.qhead = (W.qhead + 1) % QCAP;
    W.qn--;
    if (!lose)
        rudp_ctx_input(W.ctx[d.to], W.now, d.sock, &d.local, &d.from, d.buf, d.len);
}

static void deliver_all(void)
{
    for (int round = 0; round < 8 && W.qn; round++) {
        while (W.qn)
            deliver_one(0);
        process();
    }
}

static void app_write(int ep, size_t len)
{
    rudp_conn *c = W.conn[ep];
    uint8_t buf[4096];
    if (!c || len > sizeof buf)
        return;
    for (size_t i = 0; i < len; i++)
        buf[i] = pattern(ep, W.written[ep] + i);
    ssize_t n = rudp_conn_write(c, W.now, buf, len);
    if (n > 0)
        W.written[ep] += (uint64_t)n;
}

static void check_server(void)
{
    rudp_conn *c = W.conn[SRV];
    if (!c)
        return;
    const rudp_addr *at = &c->pkey.addr;
    int k = observer_of(at);
    if (k >= 0) {
        CHECK(echoed(SRV, at)); /* only after its challenge was answered */
        W.x_path[SRV][k] = 1;
    } else {
        int known = addr_eq(at, &W.cli2);
        for (int i = 0; i < W.ncli; i++)
            known |= addr_eq(at, &W.cli[i]);
        CHECK(known);
    }
    const rudp_standby *s = &c->path.standby;
    if (s->on && s->valid && (k = observer_of(&s->addr)) >= 0) {
        CHECK(echoed(SRV, &s->addr)); /* validated: its challenge was answered */
        W.x_valid[k] = 1;
    }
}

static void check_client(void)
{
    rudp_conn *c = W.conn[CLI];
    if (!c)
        return;
    CHECK(c->sock == SOCK1 || c->sock == SOCK2);
    const rudp_addr *at = &c->pkey.addr;
    int k = observer_of(at);
    CHECK(is_srv(at) || echoed(CLI, at));
    if (k >= 0)
        W.x_path[CLI][k] = 1;
    echo_of(CLI, at); /* an address its path had (NEW_PORT's, unkeyed: forged and echoed) */
    const rudp_standby *s = &c->path.standby;
    if (s->on) {
        CHECK(s->sock == SOCK1 || s->sock == SOCK2);
        CHECK(s->sock != c->sock);
        if ((k = observer_of(&s->peer)) >= 0)
            W.x_standby[k] = 1;
        else
            CHECK(is_srv(&s->peer) || addr_eq(&s->peer, &W.nowhere) || echoed(CLI, &s->peer) ||
                  given(&s->peer));
    }
}

static void check_all(void)
{
    check_server();
    check_client();
    for (int i = 0; i < NX; i++) {
        CHECK(W.x_path[SRV][i] || W.x_valid[i] ||
              W.x_out[SRV][i] <= RUDP_PATH_AMPLIFICATION * W.x_in[SRV][i]);
        CHECK(W.x_path[CLI][i] || W.x_standby[i] || echoed(CLI, &W.x[i]) ||
              W.x_out[CLI][i] <= RUDP_PATH_AMPLIFICATION * W.x_in[CLI][i]);
    }
}

/* A connection before a datagram from elsewhere. */
typedef struct before {
    rudp_addr at;
    uint64_t rx_largest, rcv_contig;
    rudp_time last_rx;
    uint32_t nranges;
    int foreign;
} before;

/* A datagram from `from` (an observer's address, or one of the ends',
 * spoofed) to end ep's socket `sock` at its address `local`. */
static void inject(int ep, uint32_t sock, const rudp_addr *from, const rudp_addr *local,
                   const uint8_t *buf, size_t len)
{
    rudp_conn *c = W.conn[ep];
    before b = {0};
    if (c) {
        b = (before){c->pkey.addr, c->rx_largest, c->rcv_contig, c->last_rx, c->rx_pns.n,
                     rudp__path_foreign(c, from)};
        if (!W.keyed && !b.foreign)
            W.tainted[ep] = 1; /* processed as the peer's (README, Security) */
    }
    int k = observer_of(from);
    if (k >= 0)
        W.x_in[ep][k] += len;
    rudp_ctx_input(W.ctx[ep], W.now, sock, local, from, buf, len);
    if (c && W.conn[ep] == c && b.foreign && addr_eq(&b.at, &c->pkey.addr)) {
        /* foreign, and it moved nothing */
        CHECK(c->rx_largest == b.rx_largest);
        CHECK(c->rcv_contig == b.rcv_contig);
        CHECK(c->last_rx == b.last_rx);
        CHECK(c->rx_pns.n == b.nranges);
    }
    check_all();
    process();
}

/* Where a datagram to end ep goes, and from whom, as byte `how` says:
 * observer k, or spoofed from one of the other end's addresses. */
typedef struct route {
    uint32_t sock;
    rudp_addr from, local;
} route;

static route route_to(int ep, int k, uint8_t how)
{
    route r;
    if (ep == SRV) {
        r.sock = SOCK1;
        r.local = how & 1 ? W.srv2 : W.srv;
        switch ((how >> 1) & 3) {
        case 1:
            r.from = W.cli2;
            break;
        case 2:
            r.from = W.cli[W.ncli - 1];
            break;
        default:
            r.from = W.x[k];
            break;
        }
    } else {
        r.sock = how & 1 ? SOCK2 : SOCK1;
        r.local = *cli_addr(r.sock);
        switch ((how >> 1) & 3) {
        case 1:
            r.from = W.srv2;
            break;
        case 2:
            r.from = W.srv;
            break;
        default:
            r.from = W.x[k];
            break;
        }
    }
    return r;
}

/* A copy of one of the other end's datagrams to end ep, changed as the
 * input says. */
static void op_copy(rd *r, int ep, int k)
{
    int src_ep = 1 - ep;
    if (!W.ncopy[src_ep])
        return;
    uint32_t avail = W.ncopy[src_ep] < NCOPY ? W.ncopy[src_ep] : NCOPY;
    const qdgram *src = &W.copy[src_ep][(W.ncopy[src_ep] - 1 - u8(r) % avail) % NCOPY];
    uint8_t buf[DGRAM_MAX + 64];
    size_t len = src->len;
    memcpy(buf, src->buf, len);
    uint8_t how = u8(r);
    int flips = how & 7;
    for (int i = 0; i < flips && len; i++) {
        uint16_t at = (uint16_t)(u8(r) << 8 | u8(r));
        buf[at % len] ^= (uint8_t)(1u << (u8(r) & 7));
    }
    if ((how & 0x18) == 0x08 && len)
        len = 1 + u8(r) % len;
    else if ((how & 0x18) == 0x10)
        for (int i = u8(r) % 64; i > 0; i--)
            buf[len++] = u8(r);
    route rt = route_to(ep, k, (uint8_t)(how >> 5));
    inject(ep, rt.sock, &rt.from, &rt.local, buf, len);
}

static size_t data_hdr(uint8_t *buf, rudp_conn *c, int8_t delta)
{
    rudp_conn_info info;
    rudp_conn_get_info(c, &info);
    rudp_hdr h;
    memset(&h, 0, sizeof h);
    h.type = RUDP_PKT_DATA;
    h.dcid = info.local_cid;
    h.pn = (uint32_t)c->rx_largest + (uint32_t)(int32_t)delta;
    int n = rudp__wire_hdr_encode(buf, RUDP_WIRE_SHORT_HDR, &h);
    CHECK(n == RUDP_WIRE_SHORT_HDR);
    return (size_t)n;
}

/* Observer k answers the challenge end ep sent it, in a packet numbered
 * near ep's newest, with frames of the input's after it. */
static void op_answer(rd *r, int ep, int k)
{
    rudp_conn *c = W.conn[ep];
    if (!c || !W.has_challenge[ep][k])
        return;
    uint8_t buf[256];
    size_t n = data_hdr(buf, c, (int8_t)u8(r));
    uint64_t data = W.challenge[ep][k];
    if (u8(r) & 1)
        data ^= 1; /* a wrong answer */
    else
        echo_of(ep, &W.x[k]);
    int w = rudp__wire_path_encode(buf + n, sizeof buf - n, RUDP_FRAME_PATH_RESPONSE, data);
    CHECK(w > 0);
    n += (size_t)w;
    for (int extra = u8(r) % 8; extra > 0 && n < sizeof buf; extra--)
        buf[n++] = u8(r) % 3 ? RUDP_FRAME_PING : RUDP_FRAME_PADDING;
    route rt = route_to(ep, k, 0);
    if (ep == CLI && (u8(r) & 1)) { /* on the standby socket */
        rt.sock = SOCK2;
        rt.local = W.cli2;
    }
    inject(ep, rt.sock, &rt.from, &rt.local, buf, n);
}

/* A PATH_RESPONSE echoing `v` goes to end ep from `from`: which of ep's
 * challenges it answers, sent where (unkeyed, read where it went, or on
 * the path it went by). It counts for that address when it comes from
 * there, or from where ep takes anything from (path.c: processed, so any
 * path's answer validates, RFC 9000 §8.2.3); from a third address, it
 * must validate nothing. */
static void answered(int ep, const rudp_addr *from, uint64_t v)
{
    rudp_conn *c = W.conn[ep];
    if (W.keyed || !c)
        return; /* sealed: not read; and fails authentication */
    int any = !rudp__path_foreign(c, from);
    for (int k = 0; k < NX; k++)
        if (W.has_challenge[ep][k] && W.challenge[ep][k] == v && (any || addr_eq(from, &W.x[k])))
            echo_of(ep, &W.x[k]);
    const rudp_standby *s = &c->path.standby;
    const rudp_addr *sa = ep == SRV ? &s->addr : &s->peer;
    if (s->on && s->challenge == v && (any || addr_eq(from, sa)))
        echo_of(ep, sa);
    const rudp_path_probe *pr = &c->path.probe;
    if (pr->on && pr->challenge == v && (any || addr_eq(from, &pr->addr)))
        echo_of(ep, &pr->addr);
}

/* A packet of chosen frames, as one who saw the traffic makes it. */
static void op_forge(rd *r, int ep, int k)
{
    rudp_conn *c = W.conn[ep];
    if (!c)
        return;
    route rt = route_to(ep, k, u8(r));
    uint8_t buf[256];
    size_t n = data_hdr(buf, c, (int8_t)u8(r));
    const rudp_standby *s = &c->path.standby;
    for (int nf = 1 + u8(r) % 4; nf > 0; nf--) {
        uint8_t what = u8(r);
        int w = 0;
        uint64_t v = 0;
        rudp_addr a;
        switch (what % 12) {
        case 0:
            w = rudp__wire_ping_encode(buf + n, sizeof buf - n);
            break;
        case 1:
            buf[n] = RUDP_FRAME_PADDING;
            w = 1;
            break;
        case 2:
            for (int i = 0; i < 8; i++)
                v = v << 8 | u8(r);
            w = rudp__wire_path_encode(buf + n, sizeof buf - n, RUDP_FRAME_PATH_CHALLENGE, v);
            break;
        case 3:
        case 4:
            /* the challenge observer k read; or the standby's, or the
             * validation's, as read on the path it went by (unkeyed, it
             * is in the clear there), answered from wherever */
            v = what % 12 == 3 ? W.challenge[ep][k]
                : what & 0x10  ? c->path.probe.challenge
                               : s->challenge;
            answered(ep, &rt.from, v);
            w = rudp__wire_path_encode(buf + n, sizeof buf - n, RUDP_FRAME_PATH_RESPONSE, v);
            break;
        case 5:
        case 6:
        case 7:
        case 8:
            a = what % 12 == 5   ? W.srv2
                : what % 12 == 6 ? W.srv
                : what % 12 == 7 ? W.x[k]
                                 : W.nowhere;
            w = rudp__wire_server_addr_encode(buf + n, sizeof buf - n, &a);
            break;
        case 9:
            w = rudp__wire_new_port_encode(buf + n, sizeof buf - n,
                                           (unsigned)(u8(r) << 8 | u8(r)) | 1u);
            break;
        default:
            w = rudp__wire_max_data_encode(buf + n, sizeof buf - n, (uint64_t)u8(r) << 16);
            break;
        }
        if (w <= 0)
            break;
        n += (size_t)w;
    }
    inject(ep, rt.sock, &rt.from, &rt.local, buf, n);
}

static void op_raw(rd *r, int ep, int k)
{
    uint8_t buf[128];
    size_t len = u8(r) % sizeof buf;
    for (size_t i = 0; i < len; i++)
        buf[i] = u8(r);
    if (len >= 12 && W.conn[ep] && (u8(r) & 1)) { /* with the connection's ID */
        rudp_conn_info info;
        rudp_conn_get_info(W.conn[ep], &info);
        buf[0] = RUDP_WIRE_MAGIC0;
        buf[1] = RUDP_WIRE_MAGIC1;
        buf[2] = RUDP_WIRE_VERSION;
        buf[3] = RUDP_PKT_DATA;
        for (int i = 0; i < 8; i++)
            buf[4 + i] = (uint8_t)(info.local_cid >> ((7 - i) * 8));
    }
    route rt = route_to(ep, k, u8(r));
    inject(ep, rt.sock, &rt.from, &rt.local, buf, len);
}

/* The client takes a standby (its socket not in use), or drops it. */
static void op_standby(uint8_t p)
{
    rudp_conn *c = W.conn[CLI];
    if (!c)
        return;
    uint32_t other = c->sock == SOCK1 ? SOCK2 : SOCK1;
    switch (p % 5) {
    case 0:
        rudp_conn_standby(c, W.now, other, NULL);
        break;
    case 1:
        if (W.offered && rudp_conn_standby(c, W.now, other, &W.offer) == 0 &&
            W.ngiven < NECHO)
            W.given[W.ngiven++] = W.offer;
        break;
    case 2:
        rudp_conn_standby(c, W.now, other, &W.srv2);
        break;
    case 3:
        rudp_conn_standby(c, W.now, other, &W.srv);
        break;
    default:
        rudp_conn_standby_clear(c);
        break;
    }
    process();
}

static void op_offer(uint8_t p)
{
    if (W.conn[SRV])
        rudp_conn_offer_addr(W.conn[SRV], W.now, p & 1 ? &W.srv : &W.srv2);
    process();
}

static void set_addr(rudp_addr *a, uint8_t ip2, uint8_t ip3, uint16_t port)
{
    memset(a, 0, sizeof *a);
    a->family = 2;
    a->ip[0] = 10;
    a->ip[2] = ip2;
    a->ip[3] = ip3;
    a->port = port;
}

static void world_init(uint8_t variant)
{
    memset(&W, 0, sizeof W);
    W.keyed = variant & 1;
    set_addr(&W.srv, 0, 2, 1002);
    set_addr(&W.srv2, 9, 2, 1002);
    set_addr(&W.cli[0], 0, 1, 1001);
    W.ncli = 1;
    set_addr(&W.cli2, 1, 1, 3001);
    set_addr(&W.nowhere, 77, 7, 7777);
    for (int k = 0; k < NX; k++)
        set_addr(&W.x[k], 0, (uint8_t)(100 + k), (uint16_t)(4000 + k));
    W.now = T_START;
    rudp_config cfg;
    rudp_config_default(&cfg);
    cfg.max_datagram = 1200;
    static const rudp_ctx_ops ops = {.send = on_send, .send_from = on_send_from, .log = NULL};
    for (int ep = 0; ep < 2; ep++) {
        uint8_t seed[32];
        for (int k = 0; k < 32; k++)
            seed[k] = (uint8_t)(k * 5 + ep * 71 + 9);
        CHECK(rudp_ctx_new(&ops, (void *)(intptr_t)ep, seed, &cfg, NULL, &W.ctx[ep]) == 0);
        if (W.keyed) {
            static const uint8_t key[RUDP_KEY_LEN] = "fuzz_path key, on both ends";
            seed[0] ^= 0x5a;
            CHECK(rudp_ctx_set_key(W.ctx[ep], key, seed) == 0);
        }
    }
}

static void advance(uint8_t p)
{
    rudp_time t = rudp__wheel_next(&W.ctx[SRV]->wheel);
    rudp_time u = rudp__wheel_next(&W.ctx[CLI]->wheel);
    if (u < t)
        t = u;
    if ((p & 8) && t != RUDP_TIME_NEVER && t > W.now)
        W.now = t;
    else
        W.now += RUDP_MS(1 + (p & 7) * 5);
    process();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rd r = {data, size};
    uint8_t variant = u8(&r);
    world_init(variant);
    rudp_listener *l;
    CHECK(rudp_listen(W.ctx[SRV], SOCK1, NULL, 4, &l) == 0);
    CHECK(rudp_connect(W.ctx[CLI], W.now, SOCK1, &W.srv, NULL, &W.conn[CLI]) == 0);
    process();
    for (int i = 0; i < 8 && !W.conn[SRV]; i++) {
        W.now += RUDP_MS(5);
        deliver_all();
    }
    CHECK(W.conn[SRV] != NULL);
    if (variant & 2)
        CHECK(rudp_conn_standby(W.conn[CLI], W.now, SOCK2, NULL) == 0);
    if (variant & 4)
        CHECK(rudp_conn_offer_addr(W.conn[SRV], W.now, &W.srv2) == 0);
    app_write(CLI, 3000);
    for (int i = 0; i < 4; i++) {
        W.now += RUDP_MS(5);
        process();
        deliver_all();
    }
    if ((variant & 8) && W.offered && rudp_conn_standby(W.conn[CLI], W.now, SOCK2, &W.offer) == 0)
        W.given[W.ngiven++] = W.offer;
    check_all();

    for (int ops = 0; r.n && ops < MAX_OPS; ops++) {
        uint8_t op = u8(&r);
        uint8_t p = (uint8_t)(op >> 4);
        int k = p % NX, ep = (p >> 2) & 1;
        switch (op & 15) {
        case 0:
            deliver_all();
            break;
        case 1:
            advance(p);
            break;
        case 2:
            app_write(CLI, (size_t)p * 200 + 1);
            process();
            break;
        case 3:
            if (W.ncli < NADDR) { /* a NAT gives the client a new port */
                set_addr(&W.cli[W.ncli], 0, 1, (uint16_t)(2000 + W.ncli));
                W.ncli++;
            }
            break;
        case 4:
        case 5:
            op_copy(&r, ep, k);
            break;
        case 6:
            op_answer(&r, ep, k);
            break;
        case 7:
            op_raw(&r, ep, k);
            break;
        case 8:
        case 9:
            op_forge(&r, ep, k);
            break;
        case 10:
            op_standby(p);
            break;
        case 11:
            op_offer(p);
            break;
        case 12:
            W.cut[p & 1] = !W.cut[p & 1]; /* a path goes silent both ways, or comes back */
            break;
        case 13:
            app_write(SRV, (size_t)p * 200 + 1);
            process();
            break;
        default: /* one datagram arrives, or is lost */
            deliver_one((op & 15) == 15);
            process();
            break;
        }
        check_all();
    }
    W.cut[0] = W.cut[1] = 0;
    for (int i = 0; i < 16; i++) {
        deliver_all();
        rudp_time t = rudp__wheel_next(&W.ctx[SRV]->wheel);
        rudp_time u = rudp__wheel_next(&W.ctx[CLI]->wheel);
        if (u < t)
            t = u;
        if (t == RUDP_TIME_NEVER)
            break;
        if (t > W.now)
            W.now = t;
        process();
        check_all();
    }
    for (int ep = 0; ep < 2; ep++)
        rudp_ctx_free(W.ctx[ep]);
    return 0;
}
