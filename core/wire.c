/*
 * wire.c: encoder and decoder for the rudp datagram format (see wire.h).
 *
 * Decoders treat every datagram as hostile: each read is preceded by a
 * length check against what is left, so nothing outside [buf, buf+len) is
 * touched, and any inconsistency is -EBADMSG. Encoders validate their input
 * and size the whole item first, then write it in one pass without further
 * checks, so a failing encoder leaves nothing half-written it would report.
 */
#include "wire.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

/* ---- byte order ---- */

static void put_be(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8u * (n - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* ---- varints (RFC 9000 §16) ---- */

size_t rudp__varint_len(uint64_t v)
{
    if (v < (1ull << 6))
        return 1;
    if (v < (1ull << 14))
        return 2;
    if (v < (1ull << 30))
        return 4;
    /* Values above RUDP_VARINT_MAX are a caller bug; the encoders reject them. */
    return 8;
}

/* Writes the minimal encoding of v, which the caller has checked fits. */
static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = rudp__varint_len(v);
    static const uint8_t prefix[9] = {[1] = 0x00, [2] = 0x40, [4] = 0x80, [8] = 0xc0};

    put_be(p, v, n);
    p[0] = (uint8_t)(p[0] | prefix[n]);
    return n;
}

int rudp__varint_encode(uint8_t *p, size_t cap, uint64_t v)
{
    if (v > RUDP_VARINT_MAX)
        return -EINVAL;
    if (cap < rudp__varint_len(v))
        return -ENOBUFS;
    return (int)put_varint(p, v);
}

int rudp__varint_decode(const uint8_t *p, size_t len, uint64_t *v)
{
    size_t n;

    if (len == 0)
        return -EBADMSG;
    n = (size_t)1 << (p[0] >> 6);
    if (len < n)
        return -EBADMSG;
    /*
     * Non-minimal encodings are accepted: RFC 9000 §16 allows them, and
     * nothing here depends on a value having a unique encoding.
     */
    *v = get_be(p, n) & (((uint64_t)1 << (8 * n - 2)) - 1);
    return (int)n;
}

/*
 * Decoding cursor: reads advance off and fail, without moving, if the
 * datagram is too short. Keeps the bounds arithmetic in one place.
 */
struct rd {
    const uint8_t *p;
    size_t len;
    size_t off;
};

static int rd_varint(struct rd *r, uint64_t *v)
{
    int n = rudp__varint_decode(r->p + r->off, r->len - r->off, v);

    if (n < 0)
        return n;
    r->off += (size_t)n;
    return 0;
}

/* ---- header ---- */

static int type_known(unsigned type)
{
    return type >= RUDP_PKT_SYN && type <= RUDP_PKT_RESET;
}

/* SYN, RETRY and SYNACK carry scid and token. */
static int has_long_hdr(unsigned type)
{
    return type == RUDP_PKT_SYN || type == RUDP_PKT_RETRY || type == RUDP_PKT_SYNACK;
}

/* SYN and SYNACK also carry the transport parameters. */
static int has_params(unsigned type)
{
    return type == RUDP_PKT_SYN || type == RUDP_PKT_SYNACK;
}

#define LONG_HDR_FIXED (RUDP_WIRE_SHORT_HDR + 8 + 1) /* up to and incl. token length */

size_t rudp__wire_hdr_len(const rudp_hdr *h)
{
    size_t n = RUDP_WIRE_SHORT_HDR;

    if (has_long_hdr(h->type))
        n = LONG_HDR_FIXED + h->token_len;
    if (has_params(h->type))
        n += rudp__varint_len(h->max_data) + rudp__varint_len(h->max_datagram);
    return n;
}

int rudp__wire_hdr_encode(uint8_t *buf, size_t cap, const rudp_hdr *h)
{
    size_t n, off;

    if (!type_known(h->type) || h->flags > 0x0f)
        return -EINVAL;
    if (has_long_hdr(h->type) && h->token_len > RUDP_TOKEN_MAX)
        return -EINVAL;
    if (has_params(h->type) &&
        (h->max_data > RUDP_VARINT_MAX || h->max_datagram > RUDP_VARINT_MAX))
        return -EINVAL;
    n = rudp__wire_hdr_len(h);
    if (cap < n)
        return -ENOBUFS;

    buf[0] = RUDP_WIRE_MAGIC0;
    buf[1] = RUDP_WIRE_MAGIC1;
    buf[2] = RUDP_WIRE_VERSION;
    buf[3] = (uint8_t)((h->flags << 4) | h->type);
    put_be(buf + 4, h->dcid, 8);
    put_be(buf + 12, h->pn, 4);
    off = RUDP_WIRE_SHORT_HDR;
    if (has_long_hdr(h->type)) {
        put_be(buf + off, h->scid, 8);
        buf[off + 8] = h->token_len;
        off = LONG_HDR_FIXED;
        memcpy(buf + off, h->token, h->token_len);
        off += h->token_len;
    }
    if (has_params(h->type)) {
        off += put_varint(buf + off, h->max_data);
        off += put_varint(buf + off, h->max_datagram);
    }
    return (int)off;
}

int rudp__wire_hdr_decode(const uint8_t *buf, size_t len, rudp_hdr *h)
{
    struct rd r = {buf, len, 0};
    unsigned type;
    int rc;

    /* Fields the packet type does not carry read as zero. */
    memset(h, 0, sizeof *h);
    if (len < 3 || buf[0] != RUDP_WIRE_MAGIC0 || buf[1] != RUDP_WIRE_MAGIC1)
        return -EBADMSG;
    /* Checked before the length: another version may lay out its header differently. */
    if (buf[2] != RUDP_WIRE_VERSION)
        return -EPROTONOSUPPORT;
    if (len < RUDP_WIRE_SHORT_HDR)
        return -EBADMSG;
    type = buf[3] & 0x0fu;
    if (!type_known(type))
        return -EBADMSG;
    h->type = (uint8_t)type;
    h->flags = (uint8_t)(buf[3] >> 4);
    h->dcid = get_be(buf + 4, 8);
    h->pn = (uint32_t)get_be(buf + 12, 4);
    r.off = RUDP_WIRE_SHORT_HDR;

    if (has_long_hdr(type)) {
        if (len < LONG_HDR_FIXED)
            return -EBADMSG;
        h->scid = get_be(buf + RUDP_WIRE_SHORT_HDR, 8);
        h->token_len = buf[RUDP_WIRE_SHORT_HDR + 8];
        if (h->token_len > RUDP_TOKEN_MAX || len - LONG_HDR_FIXED < h->token_len)
            return -EBADMSG;
        memcpy(h->token, buf + LONG_HDR_FIXED, h->token_len);
        r.off = LONG_HDR_FIXED + (size_t)h->token_len;
    }
    if (has_params(type)) {
        if ((rc = rd_varint(&r, &h->max_data)) < 0 || (rc = rd_varint(&r, &h->max_datagram)) < 0)
            return rc;
    }
    return (int)r.off;
}

/* ---- frames: decoding ---- */

static int decode_ack(struct rd *r, rudp_frame *f)
{
    uint64_t largest, delay, count, first, gap, length;
    rudp_ack_range *ranges = f->u.ack.r;
    int rc;

    if ((rc = rd_varint(r, &largest)) < 0 || (rc = rd_varint(r, &delay)) < 0 ||
        (rc = rd_varint(r, &count)) < 0 || (rc = rd_varint(r, &first)) < 0)
        return rc;
    /* range_count excludes the first range: reject before reading any more. */
    if (count > RUDP_ACK_MAX_RANGES - 1)
        return -EBADMSG;
    /* RFC 9000 §19.3.1: smallest = largest - first_range, never below 0. */
    if (first > largest)
        return -EBADMSG;
    ranges[0].hi = largest;
    ranges[0].lo = largest - first;
    for (uint64_t i = 1; i <= count; i++) {
        uint64_t prev_lo = ranges[i - 1].lo;

        if ((rc = rd_varint(r, &gap)) < 0 || (rc = rd_varint(r, &length)) < 0)
            return rc;
        /* RFC 9000 §19.3.1: largest = previous smallest - gap - 2. */
        if (prev_lo < 2 || gap > prev_lo - 2)
            return -EBADMSG;
        ranges[i].hi = prev_lo - gap - 2;
        if (length > ranges[i].hi)
            return -EBADMSG;
        ranges[i].lo = ranges[i].hi - length;
    }
    f->u.ack.delay_us = delay;
    f->u.ack.n = (uint32_t)(count + 1);
    return 0;
}

static int decode_stream(struct rd *r, uint8_t type, rudp_frame *f)
{
    uint64_t offset, length;
    int rc;

    if ((rc = rd_varint(r, &offset)) < 0)
        return rc;
    if (type & RUDP_STREAM_LEN) {
        if ((rc = rd_varint(r, &length)) < 0)
            return rc;
        if (length > r->len - r->off)
            return -EBADMSG;
    } else {
        length = r->len - r->off;
    }
    /* The last byte's offset must stay representable (RFC 9000 §19.8). */
    if (length > RUDP_VARINT_MAX || offset > RUDP_VARINT_MAX - length)
        return -EBADMSG;
    f->u.stream.offset = offset;
    f->u.stream.len = length;
    f->u.stream.data = r->p + r->off;
    f->u.stream.fin = (uint8_t)(type & RUDP_STREAM_FIN);
    r->off += (size_t)length;
    return 0;
}

int rudp__wire_frame_decode(const uint8_t *p, size_t len, rudp_frame *f)
{
    struct rd r = {p, len, 1};
    uint8_t type;
    int rc = 0;

    if (len == 0)
        return -EBADMSG;
    type = p[0];
    switch (type) {
    case RUDP_FRAME_PADDING:
        /* The whole run is one frame; capped so the count fits the return type. */
        while (r.off < len && r.off < INT_MAX && p[r.off] == 0)
            r.off++;
        break;
    case RUDP_FRAME_PING:
        break;
    case RUDP_FRAME_ACK:
        rc = decode_ack(&r, f);
        break;
    case RUDP_FRAME_MAX_DATA:
        rc = rd_varint(&r, &f->u.max_data);
        break;
    case RUDP_FRAME_DATA_BLOCKED:
        rc = rd_varint(&r, &f->u.blocked);
        break;
    case RUDP_FRAME_URGENT:
        rc = rd_varint(&r, &f->u.urgent);
        break;
    case RUDP_FRAME_NEW_PORT:
        rc = rd_varint(&r, &f->u.new_port);
        if (rc == 0 && (f->u.new_port == 0 || f->u.new_port > 65535))
            return -EBADMSG;
        break;
    case RUDP_FRAME_NEW_TOKEN:
        if (len - r.off < 1 || p[r.off] == 0 || p[r.off] > RUDP_TOKEN_MAX ||
            len - r.off - 1 < p[r.off])
            return -EBADMSG;
        f->u.token.len = p[r.off];
        f->u.token.data = p + r.off + 1;
        r.off += 1 + (size_t)p[r.off];
        break;
    case RUDP_FRAME_SERVER_ADDR: {
        size_t n = len - r.off >= 1 && p[r.off] == 4 ? 4 : len - r.off >= 1 && p[r.off] == 6 ? 16 : 0;
        if (!n || len - r.off < 1 + n + 2)
            return -EBADMSG;
        memset(&f->u.addr, 0, sizeof f->u.addr);
        f->u.addr.family = n == 4 ? RUDP_AF_INET : RUDP_AF_INET6;
        memcpy(f->u.addr.ip, p + r.off + 1, n);
        f->u.addr.port = (uint16_t)(p[r.off + 1 + n] << 8 | p[r.off + 2 + n]);
        if (!f->u.addr.port)
            return -EBADMSG;
        r.off += 1 + n + 2;
        break;
    }
    case RUDP_FRAME_RESET:
        if ((rc = rd_varint(&r, &f->u.reset.code)) == 0)
            rc = rd_varint(&r, &f->u.reset.final_size);
        break;
    case RUDP_FRAME_PATH_CHALLENGE:
    case RUDP_FRAME_PATH_RESPONSE:
        if (len - r.off < 8)
            return -EBADMSG;
        f->u.path_data = 0;
        for (int i = 0; i < 8; i++)
            f->u.path_data = f->u.path_data << 8 | p[r.off++];
        break;
    case RUDP_FRAME_STREAM:
    case RUDP_FRAME_STREAM | RUDP_STREAM_FIN:
    case RUDP_FRAME_STREAM | RUDP_STREAM_LEN:
    case RUDP_FRAME_STREAM | RUDP_STREAM_LEN | RUDP_STREAM_FIN:
        rc = decode_stream(&r, type, f);
        type = RUDP_FRAME_STREAM;
        break;
    default:
        return -EBADMSG;
    }
    if (rc < 0)
        return rc;
    /* Only a STREAM frame on a buffer no datagram can reach gets here. */
    if (r.off > INT_MAX)
        return -EBADMSG;
    f->type = type;
    return (int)r.off;
}

/* ---- frames: encoding ---- */

int rudp__wire_ping_encode(uint8_t *p, size_t cap)
{
    if (cap < 1)
        return -ENOBUFS;
    p[0] = RUDP_FRAME_PING;
    return 1;
}

/* A frame type byte followed by one varint. */
static int encode_one(uint8_t *p, size_t cap, uint8_t type, uint64_t v)
{
    size_t n;

    if (v > RUDP_VARINT_MAX)
        return -EINVAL;
    n = 1 + rudp__varint_len(v);
    if (cap < n)
        return -ENOBUFS;
    p[0] = type;
    put_varint(p + 1, v);
    return (int)n;
}

int rudp__wire_max_data_encode(uint8_t *p, size_t cap, uint64_t max)
{
    return encode_one(p, cap, RUDP_FRAME_MAX_DATA, max);
}

int rudp__wire_urgent_encode(uint8_t *p, size_t cap, uint64_t offset)
{
    return encode_one(p, cap, RUDP_FRAME_URGENT, offset);
}

int rudp__wire_new_port_encode(uint8_t *p, size_t cap, unsigned port)
{
    if (port == 0 || port > 65535)
        return -EINVAL;
    return encode_one(p, cap, RUDP_FRAME_NEW_PORT, port);
}

int rudp__wire_server_addr_encode(uint8_t *p, size_t cap, const rudp_addr *a)
{
    size_t n = a->family == RUDP_AF_INET ? 4 : a->family == RUDP_AF_INET6 ? 16 : 0;
    if (!n || !a->port)
        return -EINVAL;
    if (cap < 2 + n + 2)
        return -ENOBUFS;
    p[0] = RUDP_FRAME_SERVER_ADDR;
    p[1] = n == 4 ? 4 : 6;
    memcpy(p + 2, a->ip, n);
    p[2 + n] = (uint8_t)(a->port >> 8);
    p[3 + n] = (uint8_t)a->port;
    return (int)(4 + n);
}

int rudp__wire_new_token_encode(uint8_t *p, size_t cap, const uint8_t *token, size_t len)
{
    if (len == 0 || len > RUDP_TOKEN_MAX)
        return -EINVAL;
    if (cap < 2 + len)
        return -ENOBUFS;
    p[0] = RUDP_FRAME_NEW_TOKEN;
    p[1] = (uint8_t)len;
    memcpy(p + 2, token, len);
    return (int)(2 + len);
}

int rudp__wire_blocked_encode(uint8_t *p, size_t cap, uint64_t limit)
{
    return encode_one(p, cap, RUDP_FRAME_DATA_BLOCKED, limit);
}

int rudp__wire_reset_encode(uint8_t *p, size_t cap, uint64_t code, uint64_t final_size)
{
    size_t n, off = 0;

    if (code > RUDP_VARINT_MAX || final_size > RUDP_VARINT_MAX)
        return -EINVAL;
    n = 1 + rudp__varint_len(code) + rudp__varint_len(final_size);
    if (cap < n)
        return -ENOBUFS;
    p[off++] = RUDP_FRAME_RESET;
    off += put_varint(p + off, code);
    off += put_varint(p + off, final_size);
    return (int)off;
}

int rudp__wire_path_encode(uint8_t *p, size_t cap, uint8_t type, uint64_t data)
{
    if (type != RUDP_FRAME_PATH_CHALLENGE && type != RUDP_FRAME_PATH_RESPONSE)
        return -EINVAL;
    if (cap < 9)
        return -ENOBUFS;
    p[0] = type;
    for (int i = 0; i < 8; i++)
        p[1 + i] = (uint8_t)(data >> (56 - 8 * i));
    return 9;
}

size_t rudp__wire_stream_hdr_len(uint64_t offset, uint64_t len, int explicit_len)
{
    return 1 + rudp__varint_len(offset) + (explicit_len ? rudp__varint_len(len) : 0);
}

int rudp__wire_stream_hdr_encode(uint8_t *p, size_t cap, uint64_t offset, uint64_t len,
                                int fin, int explicit_len)
{
    size_t off = 0;
    unsigned type = RUDP_FRAME_STREAM;

    /* Same limit the decoder enforces, so we never emit a frame the peer rejects. */
    if (len > RUDP_VARINT_MAX || offset > RUDP_VARINT_MAX - len)
        return -EINVAL;
    if (cap < rudp__wire_stream_hdr_len(offset, len, explicit_len))
        return -ENOBUFS;
    if (fin)
        type |= RUDP_STREAM_FIN;
    if (explicit_len)
        type |= RUDP_STREAM_LEN;
    p[off++] = (uint8_t)type;
    off += put_varint(p + off, offset);
    if (explicit_len)
        off += put_varint(p + off, len);
    return (int)off;
}

/* A well-formed range: lo <= hi, and hi encodable. */
static int range_ok(const rudp_ack_range *r)
{
    return r->lo <= r->hi && r->hi <= RUDP_VARINT_MAX;
}

int rudp__wire_ack_encode(uint8_t *p, size_t cap, const rudp_ack_range *r, size_t n,
                         uint64_t delay_us, size_t *written_ranges)
{
    size_t fixed, body = 0, k = 1, limit, off = 0;

    if (written_ranges)
        *written_ranges = 0;
    if (r == NULL || n == 0 || !range_ok(&r[0]) || delay_us > RUDP_VARINT_MAX)
        return -EINVAL;
    /* More ranges than a decoder accepts would get the whole ACK rejected. */
    limit = n < RUDP_ACK_MAX_RANGES ? n : RUDP_ACK_MAX_RANGES;
    fixed = 1 + rudp__varint_len(r[0].hi) + rudp__varint_len(delay_us) +
            rudp__varint_len(r[0].hi - r[0].lo);
    /* range_count = 0 takes one byte. */
    if (cap < fixed + 1)
        return -ENOBUFS;

    /*
     * Grow k (ranges written) while the frame still fits. The range_count
     * varint grows with k, so it is re-sized on each step; the total is
     * monotonic in k, so the first range that does not fit ends the loop.
     */
    while (k < limit) {
        const rudp_ack_range *prev = &r[k - 1], *cur = &r[k];
        size_t add;

        /* Descending, non-overlapping, non-adjacent: cur->hi + 2 <= prev->lo. */
        if (!range_ok(cur) || prev->lo < 2 || cur->hi > prev->lo - 2)
            return -EINVAL;
        add = rudp__varint_len(prev->lo - cur->hi - 2) + rudp__varint_len(cur->hi - cur->lo);
        if (fixed + rudp__varint_len(k) + body + add > cap)
            break;
        body += add;
        k++;
    }

    p[off++] = RUDP_FRAME_ACK;
    off += put_varint(p + off, r[0].hi);
    off += put_varint(p + off, delay_us);
    off += put_varint(p + off, k - 1);
    off += put_varint(p + off, r[0].hi - r[0].lo);
    for (size_t i = 1; i < k; i++) {
        off += put_varint(p + off, r[i - 1].lo - r[i].hi - 2);
        off += put_varint(p + off, r[i].hi - r[i].lo);
    }
    if (written_ranges)
        *written_ranges = k;
    return (int)off;
}
