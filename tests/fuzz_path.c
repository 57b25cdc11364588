/*
 * fuzz_path.c: libFuzzer target for path validation (core/path.c), the
 * input an observer controls (issue 30, finding 1).
 *
 * Each input starts from the same place: a client and a server wired in
 * memory, connected, a few kilobytes sent by the client. The first byte
 * picks unkeyed or keyed (both contexts hold one key). The rest is a
 * script: deliver what is queued, advance time, the client writes, a NAT
 * gives the client a new address (the real peer moves), and four observer
 * addresses X0..X3, which see every datagram, send the server: copies of
 * the client's datagrams with bits flipped, cut or extended, raw bytes, and
 * (unkeyed: the challenge is readable) answers to the challenge the server
 * sent them, with a fuzz-chosen packet number and frames.
 *
 * What must hold (checked after every step; a failure aborts):
 *   - the server sends only to an address the client had, or to an
 *     observer address that answered its challenge (keyed: none can);
 *   - an observer address that never became the path got at most 3x the
 *     bytes it sent (RFC 9000 §8);
 *   - unkeyed, a datagram from an observer address that is not the path
 *     and moves nothing changes nothing of the connection: its received packet numbers, the
 *     time it last heard its peer, its stream;
 *   - every byte the server reads is the client's, as long as no observer
 *     took the path (unkeyed, one that answered can: docs/security.md);
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
#define NADDR 16      /* addresses the client may have */
#define QCAP 128
#define NCOPY 8
#define DGRAM_MAX 1500
#define MAX_OPS 300
#define T_START RUDP_SEC(1000)

typedef struct qdgram {
    int to;
    rudp_addr from;
    uint16_t len;
    uint8_t buf[DGRAM_MAX];
} qdgram;

static struct world {
    rudp_ctx *ctx[2];
    rudp_conn *conn[2];
    rudp_addr srv;
    rudp_addr cli[NADDR]; /* the client's addresses, the last one current */
    int ncli;
    rudp_addr x[NX];
    uint64_t x_in[NX], x_out[NX]; /* bytes an observer sent the server, got from it */
    int x_answered[NX];           /* it echoed a challenge it was sent */
    int x_path[NX];               /* it became the path */
    uint64_t challenge[NX];
    int has_challenge[NX];
    int keyed;
    rudp_time now;
    qdgram q[QCAP];
    uint32_t qhead, qn;
    qdgram copy[NCOPY]; /* the client's latest datagrams to the server */
    uint32_t ncopy;
    uint64_t written, read;
} W;

static uint8_t pattern(uint64_t off)
{
    uint64_t x = off * 0x9e3779b97f4a7c15ull;
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

/* An observer reads what reaches its address: unkeyed, the challenge. */
static void observer_got(int k, const uint8_t *buf, size_t len)
{
    W.x_out[k] += len;
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
            W.challenge[k] = f.u.path_data;
            W.has_challenge[k] = 1;
        }
    }
}

static void on_send(void *user, uint32_t sock, const rudp_addr *peer, const uint8_t *buf,
                    size_t len)
{
    (void)sock;
    int from = (int)(intptr_t)user;
    if (from == SRV) {
        int k = observer_of(peer);
        if (k >= 0) {
            observer_got(k, buf, len);
            return;
        }
        if (!addr_eq(peer, &W.cli[W.ncli - 1]))
            return; /* to an address the client left: lost */
    }
    if (len > DGRAM_MAX || W.qn == QCAP)
        return;
    qdgram *d = &W.q[(W.qhead + W.qn) % QCAP];
    W.qn++;
    d->to = 1 - from;
    d->from = from == CLI ? W.cli[W.ncli - 1] : W.srv;
    d->len = (uint16_t)len;
    memcpy(d->buf, buf, len);
    if (from == CLI) {
        W.copy[W.ncopy % NCOPY] = *d;
        W.ncopy++;
    }
}

static void app_read(void)
{
    rudp_conn *c = W.conn[SRV];
    if (!c)
        return;
    uint8_t buf[4096];
    for (;;) {
        ssize_t n = rudp_conn_read(c, W.now, buf, sizeof buf);
        if (n <= 0)
            return;
        for (ssize_t i = 0; i < n; i++) {
            int taken = 0;
            for (int k = 0; k < NX; k++)
                taken |= W.x_path[k];
            CHECK(taken || buf[i] == pattern(W.read + (uint64_t)i));
        }
        W.read += (uint64_t)n;
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
        if (ep == SRV && (ev & RUDP_EV_READABLE))
            app_read();
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

static void deliver_all(void)
{
    for (int round = 0; round < 8 && W.qn; round++) {
        while (W.qn) {
            static qdgram d;
            d = W.q[W.qhead];
            W.qhead = (W.qhead + 1) % QCAP;
            W.qn--;
            rudp_ctx_input(W.ctx[d.to], W.now, 1, NULL, &d.from, d.buf, d.len);
        }
        process();
    }
}

static void app_write(size_t len)
{
    rudp_conn *c = W.conn[CLI];
    uint8_t buf[4096];
    if (!c || len > sizeof buf)
        return;
    for (size_t i = 0; i < len; i++)
        buf[i] = pattern(W.written + i);
    ssize_t n = rudp_conn_write(c, W.now, buf, len);
    if (n > 0)
        W.written += (uint64_t)n;
}

static void check_all(void)
{
    rudp_conn *c = W.conn[SRV];
    if (!c)
        return;
    const rudp_addr *at = &c->pkey.addr;
    int k = observer_of(at);
    if (k >= 0) {
        CHECK(W.x_answered[k]); /* only after answering its challenge */
        W.x_path[k] = 1;
    } else {
        int known = 0;
        for (int i = 0; i < W.ncli; i++)
            known |= addr_eq(at, &W.cli[i]);
        CHECK(known);
    }
    for (int i = 0; i < NX; i++)
        CHECK(W.x_path[i] || W.x_out[i] <= RUDP_PATH_AMPLIFICATION * W.x_in[i]);
}

/* The server's connection before a datagram from an observer. */
typedef struct before {
    rudp_addr at;
    uint64_t rx_largest, rcv_contig;
    rudp_time last_rx;
    uint32_t nranges;
} before;

static void observer_send(int k, const uint8_t *buf, size_t len)
{
    rudp_conn *c = W.conn[SRV];
    before b = {0};
    if (c)
        b = (before){c->pkey.addr, c->rx_largest, c->rcv_contig, c->last_rx, c->rx_pns.n};
    W.x_in[k] += len;
    rudp_ctx_input(W.ctx[SRV], W.now, 1, NULL, &W.x[k], buf, len);
    if (c && W.conn[SRV] == c && !W.keyed && !addr_eq(&b.at, &W.x[k]) &&
        addr_eq(&b.at, &c->pkey.addr)) { /* not from the path, and it moved nothing */
        CHECK(c->rx_largest == b.rx_largest);
        CHECK(c->rcv_contig == b.rcv_contig);
        CHECK(c->last_rx == b.last_rx);
        CHECK(c->rx_pns.n == b.nranges);
    }
    check_all();
    process();
}

/* A copy of one of the client's datagrams, changed as the input says. */
static void op_copy(rd *r, int k)
{
    if (!W.ncopy)
        return;
    uint32_t avail = W.ncopy < NCOPY ? W.ncopy : NCOPY;
    const qdgram *src = &W.copy[(W.ncopy - 1 - u8(r) % avail) % NCOPY];
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
    observer_send(k, buf, len);
}

/* Observer k answers the challenge it read, in a packet numbered near the
 * server's newest, with frames of the input's after it. */
static void op_answer(rd *r, int k)
{
    rudp_conn *c = W.conn[SRV];
    if (!c || !W.has_challenge[k])
        return;
    rudp_conn_info info;
    rudp_conn_get_info(c, &info);
    uint8_t buf[256];
    size_t n = 0;
    buf[n++] = RUDP_WIRE_MAGIC0;
    buf[n++] = RUDP_WIRE_MAGIC1;
    buf[n++] = RUDP_WIRE_VERSION;
    buf[n++] = RUDP_PKT_DATA;
    for (int i = 7; i >= 0; i--)
        buf[n++] = (uint8_t)(info.local_cid >> (i * 8));
    uint32_t pn = (uint32_t)c->rx_largest + (uint32_t)(int8_t)u8(r);
    for (int i = 3; i >= 0; i--)
        buf[n++] = (uint8_t)(pn >> (i * 8));
    uint64_t data = W.challenge[k];
    if (u8(r) & 1)
        data ^= 1; /* a wrong answer */
    else
        W.x_answered[k] = 1;
    int w = rudp__wire_path_encode(buf + n, sizeof buf - n, RUDP_FRAME_PATH_RESPONSE, data);
    CHECK(w > 0);
    n += (size_t)w;
    for (int extra = u8(r) % 8; extra > 0 && n < sizeof buf; extra--)
        buf[n++] = u8(r) % 3 ? RUDP_FRAME_PING : RUDP_FRAME_PADDING;
    observer_send(k, buf, n);
}

static void op_raw(rd *r, int k)
{
    uint8_t buf[128];
    size_t len = u8(r) % sizeof buf;
    for (size_t i = 0; i < len; i++)
        buf[i] = u8(r);
    if (len >= 12 && W.conn[SRV] && (u8(r) & 1)) { /* with the connection's ID */
        rudp_conn_info info;
        rudp_conn_get_info(W.conn[SRV], &info);
        buf[0] = RUDP_WIRE_MAGIC0;
        buf[1] = RUDP_WIRE_MAGIC1;
        buf[2] = RUDP_WIRE_VERSION;
        buf[3] = RUDP_PKT_DATA;
        for (int i = 0; i < 8; i++)
            buf[4 + i] = (uint8_t)(info.local_cid >> ((7 - i) * 8));
    }
    observer_send(k, buf, len);
}

static void set_addr(rudp_addr *a, uint8_t ip3, uint16_t port)
{
    memset(a, 0, sizeof *a);
    a->family = 2;
    a->ip[0] = 10;
    a->ip[3] = ip3;
    a->port = port;
}

static void world_init(uint8_t variant)
{
    memset(&W, 0, sizeof W);
    W.keyed = variant & 1;
    set_addr(&W.srv, 2, 1002);
    set_addr(&W.cli[0], 1, 1001);
    W.ncli = 1;
    for (int k = 0; k < NX; k++)
        set_addr(&W.x[k], (uint8_t)(100 + k), (uint16_t)(4000 + k));
    W.now = T_START;
    rudp_config cfg;
    rudp_config_default(&cfg);
    cfg.max_datagram = 1200;
    static const rudp_ctx_ops ops = {.send = on_send, .log = NULL};
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rd r = {data, size};
    world_init(u8(&r));
    rudp_listener *l;
    CHECK(rudp_listen(W.ctx[SRV], 1, NULL, 4, &l) == 0);
    CHECK(rudp_connect(W.ctx[CLI], W.now, 1, &W.srv, NULL, &W.conn[CLI]) == 0);
    process();
    for (int i = 0; i < 8 && !W.conn[SRV]; i++) {
        W.now += RUDP_MS(5);
        deliver_all();
    }
    CHECK(W.conn[SRV] != NULL);
    app_write(3000);
    for (int i = 0; i < 4; i++) {
        W.now += RUDP_MS(5);
        process();
        deliver_all();
    }
    check_all();

    for (int ops = 0; r.n && ops < MAX_OPS; ops++) {
        uint8_t op = u8(&r);
        int k = (op >> 3) % NX;
        switch (op & 7) {
        case 0:
            deliver_all();
            break;
        case 1: {
            rudp_time t = rudp__wheel_next(&W.ctx[SRV]->wheel);
            rudp_time u = rudp__wheel_next(&W.ctx[CLI]->wheel);
            if (u < t)
                t = u;
            if ((op & 0x80) && t != RUDP_TIME_NEVER && t > W.now)
                W.now = t;
            else
                W.now += RUDP_MS(1 + (op >> 3));
            process();
            break;
        }
        case 2:
            app_write((size_t)(op >> 3) * 100 + 1);
            process();
            break;
        case 3:
            if (W.ncli < NADDR) { /* a NAT gives the client a new port */
                set_addr(&W.cli[W.ncli], 1, (uint16_t)(2000 + W.ncli));
                W.ncli++;
            }
            break;
        case 4:
        case 5:
            op_copy(&r, k);
            break;
        case 6:
            op_answer(&r, k);
            break;
        default:
            op_raw(&r, k);
            break;
        }
        check_all();
    }
    for (int i = 0; i < 16; i++) {
        deliver_all();
        rudp_time t = rudp__wheel_next(&W.ctx[SRV]->wheel);
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
