/*
 * test_wire.c: the datagram codec. Round trips for every item, and the
 * rejections wire.h promises for malformed input.
 *
 * Decoded buffers are copied to the end of their own malloc'd block (see
 * tail_copy) so that an overread by one byte is an ASan report, not a pass.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

/* A malloc'd copy of buf whose last byte is the last byte of the block. */
static uint8_t *tail_copy(const uint8_t *buf, size_t len)
{
    uint8_t *p = malloc(len ? len : 1);

    cr_assert(p != NULL);
    if (len)
        memcpy(p, buf, len);
    return p;
}

static int decode_hdr_exact(const uint8_t *buf, size_t len, rudp_hdr *h)
{
    uint8_t *p = tail_copy(buf, len);
    int rc = rudp__wire_hdr_decode(p, len, h);

    free(p);
    return rc;
}

static int decode_frame_exact(const uint8_t *buf, size_t len, rudp_frame *f)
{
    uint8_t *p = tail_copy(buf, len);
    int rc = rudp__wire_frame_decode(p, len, f);

    /* data points into p: callers of this helper must not look at it */
    if (rc > 0 && f->type == RUDP_FRAME_STREAM)
        f->u.stream.data = NULL;
    free(p);
    return rc;
}

/* ---- varints ---- */

static const struct {
    uint64_t v;
    size_t len;
} boundaries[] = {
    {0, 1},
    {63, 1},
    {64, 2},
    {16383, 2},
    {16384, 4},
    {(1ull << 30) - 1, 4},
    {1ull << 30, 8},
    {(1ull << 62) - 1, 8},
};

Test(wire, varint_roundtrips_at_every_length_boundary)
{
    for (size_t i = 0; i < sizeof boundaries / sizeof boundaries[0]; i++) {
        uint64_t v = boundaries[i].v, out = ~0ull;
        size_t n = boundaries[i].len;
        uint8_t *buf = malloc(n);

        cr_assert(buf != NULL);
        cr_assert(eq(sz, rudp__varint_len(v), n), "len of %llu", (unsigned long long)v);
        cr_assert(eq(int, rudp__varint_encode(buf, n, v), (int)n));
        cr_assert(eq(int, rudp__varint_decode(buf, n, &out), (int)n));
        cr_assert(eq(u64, out, v));
        free(buf);
    }
}

Test(wire, varint_uses_the_two_high_bits_as_length_prefix)
{
    uint8_t buf[8];

    cr_assert(eq(int, rudp__varint_encode(buf, sizeof buf, 63), 1));
    cr_assert(eq(u8, buf[0], 0x3f));
    cr_assert(eq(int, rudp__varint_encode(buf, sizeof buf, 64), 2));
    cr_assert(eq(u8, buf[0], 0x40));
    cr_assert(eq(u8, buf[1], 0x40));
    cr_assert(eq(int, rudp__varint_encode(buf, sizeof buf, 16384), 4));
    cr_assert(eq(u8, buf[0], 0x80));
    cr_assert(eq(int, rudp__varint_encode(buf, sizeof buf, RUDP_VARINT_MAX), 8));
    for (int i = 0; i < 8; i++)
        cr_assert(eq(u8, buf[i], 0xff));
}

/* RFC 9000 Appendix A.1, including a non-minimal encoding of 37. */
Test(wire, varint_decodes_rfc9000_examples)
{
    static const uint8_t e8[] = {0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c};
    static const uint8_t e4[] = {0x9d, 0x7f, 0x3e, 0x7d};
    static const uint8_t e2[] = {0x7b, 0xbd};
    static const uint8_t e1[] = {0x25};
    static const uint8_t e2nm[] = {0x40, 0x25};
    uint64_t v;

    cr_assert(eq(int, rudp__varint_decode(e8, sizeof e8, &v), 8));
    cr_assert(eq(u64, v, 151288809941952652ull));
    cr_assert(eq(int, rudp__varint_decode(e4, sizeof e4, &v), 4));
    cr_assert(eq(u64, v, 494878333));
    cr_assert(eq(int, rudp__varint_decode(e2, sizeof e2, &v), 2));
    cr_assert(eq(u64, v, 15293));
    cr_assert(eq(int, rudp__varint_decode(e1, sizeof e1, &v), 1));
    cr_assert(eq(u64, v, 37));
    cr_assert(eq(int, rudp__varint_decode(e2nm, sizeof e2nm, &v), 2));
    cr_assert(eq(u64, v, 37));
}

Test(wire, varint_decode_rejects_every_truncation)
{
    for (size_t i = 0; i < sizeof boundaries / sizeof boundaries[0]; i++) {
        uint8_t buf[8];
        uint64_t v;
        size_t n = boundaries[i].len;

        cr_assert(eq(int, rudp__varint_encode(buf, sizeof buf, boundaries[i].v), (int)n));
        for (size_t cut = 0; cut < n; cut++) {
            uint8_t *p = tail_copy(buf, cut);

            cr_expect(eq(int, rudp__varint_decode(p, cut, &v), -EBADMSG), "n=%zu cut=%zu", n,
                      cut);
            free(p);
        }
    }
}

Test(wire, varint_encode_rejects_values_above_2_62_minus_1)
{
    uint8_t buf[8];

    cr_assert(eq(int, rudp__varint_encode(buf, sizeof buf, 1ull << 62), -EINVAL));
    cr_assert(eq(int, rudp__varint_encode(buf, sizeof buf, UINT64_MAX), -EINVAL));
}

Test(wire, varint_encode_reports_enobufs_when_cap_is_short)
{
    uint8_t buf[8];

    cr_assert(eq(int, rudp__varint_encode(buf, 0, 0), -ENOBUFS));
    cr_assert(eq(int, rudp__varint_encode(buf, 1, 64), -ENOBUFS));
    cr_assert(eq(int, rudp__varint_encode(buf, 3, 16384), -ENOBUFS));
    cr_assert(eq(int, rudp__varint_encode(buf, 7, 1ull << 30), -ENOBUFS));
}

/* ---- header ---- */

static rudp_hdr sample_hdr(uint8_t type, uint8_t flags, uint8_t token_len)
{
    rudp_hdr h;

    memset(&h, 0, sizeof h);
    h.type = type;
    h.flags = flags;
    h.dcid = 0x0102030405060708ull;
    h.pn = 0xfedcba98u;
    if (type == RUDP_PKT_SYN || type == RUDP_PKT_RETRY || type == RUDP_PKT_SYNACK) {
        h.scid = 0x8877665544332211ull;
        h.token_len = token_len;
        for (uint8_t i = 0; i < token_len; i++)
            h.token[i] = (uint8_t)(0xa0 + i);
    }
    if (type == RUDP_PKT_SYN || type == RUDP_PKT_SYNACK) {
        h.max_data = 4u << 20;
        h.max_datagram = 1400;
    }
    return h;
}

static void assert_hdr_eq(const rudp_hdr *a, const rudp_hdr *b)
{
    cr_assert(eq(u8, a->type, b->type));
    cr_assert(eq(u8, a->flags, b->flags));
    cr_assert(eq(u64, a->dcid, b->dcid));
    cr_assert(eq(u32, a->pn, b->pn));
    cr_assert(eq(u64, a->scid, b->scid));
    cr_assert(eq(u8, a->token_len, b->token_len));
    cr_assert(eq(int, memcmp(a->token, b->token, a->token_len), 0));
    cr_assert(eq(u64, a->max_data, b->max_data));
    cr_assert(eq(u64, a->max_datagram, b->max_datagram));
}

Test(wire, hdr_roundtrips_for_every_packet_type_flag_and_token_length)
{
    static const uint8_t flags[] = {0, RUDP_PKTF_ACK_NOW, 0x0f};
    static const uint8_t tokens[] = {0, 1, RUDP_TOKEN_MAX};

    for (uint8_t type = RUDP_PKT_SYN; type <= RUDP_PKT_RESET; type++) {
        for (size_t fi = 0; fi < sizeof flags; fi++) {
            for (size_t ti = 0; ti < sizeof tokens; ti++) {
                rudp_hdr in = sample_hdr(type, flags[fi], tokens[ti]), out;
                uint8_t buf[128];
                int n = rudp__wire_hdr_encode(buf, sizeof buf, &in);

                cr_assert(gt(int, n, 0), "type %u", type);
                cr_assert(eq(sz, (size_t)n, rudp__wire_hdr_len(&in)));
                cr_assert(eq(int, decode_hdr_exact(buf, (size_t)n, &out), n));
                assert_hdr_eq(&in, &out);
            }
        }
    }
}

Test(wire, hdr_has_the_documented_layout)
{
    rudp_hdr h = sample_hdr(RUDP_PKT_SYN, RUDP_PKTF_ACK_NOW, 2);
    uint8_t buf[64];
    static const uint8_t want[] = {
        0x72, 0x75, RUDP_WIRE_VERSION, 0x11,            /* magic, version, flags|type */
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* dcid */
        0xfe, 0xdc, 0xba, 0x98,                         /* pn */
        0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* scid */
        0x02, 0xa0, 0xa1,                               /* token */
        0x80, 0x40, 0x00, 0x00,                         /* max_data 4 MiB */
        0x45, 0x78,                                     /* max_datagram 1400 */
    };

    cr_assert(eq(int, rudp__wire_hdr_encode(buf, sizeof buf, &h), (int)sizeof want));
    cr_assert(eq(int, memcmp(buf, want, sizeof want), 0));
}

Test(wire, short_hdr_types_are_16_bytes_and_leave_frames_alone)
{
    uint8_t buf[32];
    rudp_hdr in = sample_hdr(RUDP_PKT_DATA, 0, 0), out;

    cr_assert(eq(int, rudp__wire_hdr_encode(buf, sizeof buf, &in), RUDP_WIRE_SHORT_HDR));
    memset(buf + RUDP_WIRE_SHORT_HDR, RUDP_FRAME_PING, sizeof buf - RUDP_WIRE_SHORT_HDR);
    cr_assert(eq(int, rudp__wire_hdr_decode(buf, sizeof buf, &out), RUDP_WIRE_SHORT_HDR));
    in = sample_hdr(RUDP_PKT_RESET, 0, 0);
    cr_assert(eq(int, rudp__wire_hdr_encode(buf, sizeof buf, &in), RUDP_WIRE_SHORT_HDR));
}

Test(wire, retry_hdr_carries_token_but_no_params)
{
    rudp_hdr in = sample_hdr(RUDP_PKT_RETRY, 0, 16), out;
    uint8_t buf[128];

    in.max_data = 123; /* not on the wire for RETRY */
    cr_assert(eq(int, rudp__wire_hdr_encode(buf, sizeof buf, &in), 16 + 8 + 1 + 16));
    cr_assert(eq(int, decode_hdr_exact(buf, 16 + 8 + 1 + 16, &out), 16 + 8 + 1 + 16));
    cr_assert(eq(u64, out.max_data, 0));
    cr_assert(eq(int, memcmp(out.token, in.token, 16), 0));
}

Test(wire, hdr_encode_rejects_invalid_headers)
{
    uint8_t buf[128];
    rudp_hdr h;

    h = sample_hdr(RUDP_PKT_SYN, 0, 0);
    h.type = 0;
    cr_assert(eq(int, rudp__wire_hdr_encode(buf, sizeof buf, &h), -EINVAL));
    h.type = 6;
    cr_assert(eq(int, rudp__wire_hdr_encode(buf, sizeof buf, &h), -EINVAL));
    h = sample_hdr(RUDP_PKT_SYN, 0x10, 0);
    cr_assert(eq(int, rudp__wire_hdr_encode(buf, sizeof buf, &h), -EINVAL));
    h = sample_hdr(RUDP_PKT_SYNACK, 0, 0);
    h.token_len = RUDP_TOKEN_MAX + 1;
    cr_assert(eq(int, rudp__wire_hdr_encode(buf, sizeof buf, &h), -EINVAL));
    h = sample_hdr(RUDP_PKT_SYN, 0, 0);
    h.max_datagram = 1ull << 62;
    cr_assert(eq(int, rudp__wire_hdr_encode(buf, sizeof buf, &h), -EINVAL));
}

Test(wire, hdr_encode_reports_enobufs_one_byte_short)
{
    uint8_t buf[128];

    for (uint8_t type = RUDP_PKT_SYN; type <= RUDP_PKT_RESET; type++) {
        rudp_hdr h = sample_hdr(type, 0, RUDP_TOKEN_MAX);
        size_t n = rudp__wire_hdr_len(&h);

        cr_assert(eq(int, rudp__wire_hdr_encode(buf, n - 1, &h), -ENOBUFS));
        cr_assert(eq(int, rudp__wire_hdr_encode(buf, n, &h), (int)n));
    }
}

static size_t valid_syn(uint8_t *buf, size_t cap)
{
    rudp_hdr h = sample_hdr(RUDP_PKT_SYN, 0, RUDP_TOKEN_MAX);
    int n;

    /* 8-byte varints, so the last eight truncations land inside a param */
    h.max_data = RUDP_VARINT_MAX;
    h.max_datagram = 1ull << 30;
    n = rudp__wire_hdr_encode(buf, cap, &h);
    cr_assert(gt(int, n, 0));
    return (size_t)n;
}

Test(wire, hdr_decode_rejects_bad_magic)
{
    uint8_t buf[128];
    size_t n = valid_syn(buf, sizeof buf);
    rudp_hdr h;

    buf[0] ^= 0x01;
    cr_assert(eq(int, decode_hdr_exact(buf, n, &h), -EBADMSG));
    buf[0] ^= 0x01;
    buf[1] = 0x00;
    cr_assert(eq(int, decode_hdr_exact(buf, n, &h), -EBADMSG));
}

Test(wire, hdr_decode_rejects_other_versions_with_eprotonosupport)
{
    uint8_t buf[128];
    size_t n = valid_syn(buf, sizeof buf);
    rudp_hdr h;

    buf[2] = RUDP_WIRE_VERSION + 1;
    cr_assert(eq(int, decode_hdr_exact(buf, n, &h), -EPROTONOSUPPORT));
    buf[2] = 0;
    cr_assert(eq(int, decode_hdr_exact(buf, n, &h), -EPROTONOSUPPORT));
}

Test(wire, hdr_decode_rejects_unknown_packet_types)
{
    uint8_t buf[128];
    size_t n = valid_syn(buf, sizeof buf);
    rudp_hdr h;

    for (unsigned type = 0; type < 16; type++) {
        if (type >= RUDP_PKT_SYN && type <= RUDP_PKT_RESET)
            continue;
        buf[3] = (uint8_t)type;
        cr_expect(eq(int, decode_hdr_exact(buf, n, &h), -EBADMSG), "type %u", type);
    }
}

Test(wire, hdr_decode_rejects_every_truncation_of_a_valid_syn, .timeout = 10)
{
    uint8_t buf[128];
    size_t full = valid_syn(buf, sizeof buf);
    rudp_hdr h;

    cr_assert(eq(int, decode_hdr_exact(buf, full, &h), (int)full));
    for (size_t len = 0; len < full; len++)
        cr_expect(lt(int, decode_hdr_exact(buf, len, &h), 0), "len %zu of %zu", len, full);
}

Test(wire, hdr_decode_rejects_token_longer_than_32)
{
    uint8_t buf[256];
    rudp_hdr h = sample_hdr(RUDP_PKT_SYN, 0, RUDP_TOKEN_MAX);
    int n = rudp__wire_hdr_encode(buf, sizeof buf, &h);

    cr_assert(gt(int, n, 0));
    /* room for a 33-byte token and the params after it */
    memset(buf + n, 0, sizeof buf - (size_t)n);
    buf[24] = RUDP_TOKEN_MAX + 1;
    cr_assert(eq(int, decode_hdr_exact(buf, sizeof buf, &h), -EBADMSG));
}

/* ---- frames ---- */

Test(wire, ping_roundtrips)
{
    uint8_t buf[1];
    rudp_frame f;

    cr_assert(eq(int, rudp__wire_ping_encode(buf, 0), -ENOBUFS));
    cr_assert(eq(int, rudp__wire_ping_encode(buf, sizeof buf), 1));
    cr_assert(eq(int, decode_frame_exact(buf, 1, &f), 1));
    cr_assert(eq(u8, f.type, RUDP_FRAME_PING));
}

Test(wire, max_data_and_data_blocked_roundtrip)
{
    uint8_t buf[16];
    rudp_frame f;

    for (size_t i = 0; i < sizeof boundaries / sizeof boundaries[0]; i++) {
        uint64_t v = boundaries[i].v;
        int n = rudp__wire_max_data_encode(buf, sizeof buf, v);

        cr_assert(eq(int, n, 1 + (int)boundaries[i].len));
        cr_assert(eq(int, decode_frame_exact(buf, (size_t)n, &f), n));
        cr_assert(eq(u8, f.type, RUDP_FRAME_MAX_DATA));
        cr_assert(eq(u64, f.u.max_data, v));

        n = rudp__wire_blocked_encode(buf, sizeof buf, v);
        cr_assert(eq(int, n, 1 + (int)boundaries[i].len));
        cr_assert(eq(int, decode_frame_exact(buf, (size_t)n, &f), n));
        cr_assert(eq(u8, f.type, RUDP_FRAME_DATA_BLOCKED));
        cr_assert(eq(u64, f.u.blocked, v));
    }
    cr_assert(eq(int, rudp__wire_max_data_encode(buf, 1, 0), -ENOBUFS));
    cr_assert(eq(int, rudp__wire_blocked_encode(buf, 2, 64), -ENOBUFS));
    cr_assert(eq(int, rudp__wire_max_data_encode(buf, sizeof buf, 1ull << 62), -EINVAL));
}

Test(wire, reset_frame_roundtrips)
{
    uint8_t buf[32];
    rudp_frame f;
    int n = rudp__wire_reset_encode(buf, sizeof buf, 104 /* ECONNRESET */, RUDP_VARINT_MAX);

    cr_assert(eq(int, n, 1 + 2 + 8));
    cr_assert(eq(int, decode_frame_exact(buf, (size_t)n, &f), n));
    cr_assert(eq(u8, f.type, RUDP_FRAME_RESET));
    cr_assert(eq(u64, f.u.reset.code, 104));
    cr_assert(eq(u64, f.u.reset.final_size, RUDP_VARINT_MAX));
    cr_assert(eq(int, rudp__wire_reset_encode(buf, (size_t)n - 1, 104, RUDP_VARINT_MAX), -ENOBUFS));
}

Test(wire, frame_decode_rejects_unknown_types_and_empty_input)
{
    static const uint8_t unknown[] = {0x0e, 0x0f, 0x10, 0x40, 0x80, 0xff}; /* 0x0c: URGENT, 0x0d: NEW_PORT */
    uint8_t buf[16] = {0};
    rudp_frame f;

    cr_assert(eq(int, rudp__wire_frame_decode(buf, 0, &f), -EBADMSG));
    for (size_t i = 0; i < sizeof unknown; i++) {
        buf[0] = unknown[i];
        cr_expect(eq(int, decode_frame_exact(buf, sizeof buf, &f), -EBADMSG), "type 0x%02x",
                  unknown[i]);
    }
}

/* PATH_CHALLENGE and PATH_RESPONSE: 8 bytes of data, big-endian, kept
 * exactly; any shorter frame is malformed; no other type encodes. */
Test(wire, path_frames_round_trip_and_reject_truncation)
{
    static const uint8_t types[] = {RUDP_FRAME_PATH_CHALLENGE, RUDP_FRAME_PATH_RESPONSE};
    uint8_t buf[16];
    rudp_frame f;
    for (size_t i = 0; i < sizeof types; i++) {
        int n = rudp__wire_path_encode(buf, sizeof buf, types[i], 0x0123456789abcdefull);
        cr_assert(eq(int, n, 9));
        cr_assert(eq(u8, buf[0], types[i]));
        cr_assert(eq(u8, buf[1], 0x01));
        cr_assert(eq(u8, buf[8], 0xef));
        cr_assert(eq(int, rudp__wire_frame_decode(buf, (size_t)n, &f), 9));
        cr_assert(eq(u8, f.type, types[i]));
        cr_assert(eq(u64, f.u.path_data, 0x0123456789abcdefull));
        for (size_t len = 1; len < 9; len++)
            cr_assert(eq(int, rudp__wire_frame_decode(buf, len, &f), -EBADMSG), "%zu bytes", len);
        cr_assert(eq(int, rudp__wire_path_encode(buf, 8, types[i], 1), -ENOBUFS));
    }
    cr_assert(eq(int, rudp__wire_path_encode(buf, sizeof buf, RUDP_FRAME_PING, 1), -EINVAL));
}

Test(wire, fixed_size_frames_reject_every_truncation)
{
    uint8_t buf[32];
    rudp_frame f;
    int n;

    n = rudp__wire_reset_encode(buf, sizeof buf, 1ull << 40, 70000);
    for (int cut = 0; cut < n; cut++)
        cr_expect(eq(int, decode_frame_exact(buf, (size_t)cut, &f), -EBADMSG), "reset %d", cut);
    n = rudp__wire_max_data_encode(buf, sizeof buf, 1ull << 40);
    for (int cut = 0; cut < n; cut++)
        cr_expect(eq(int, decode_frame_exact(buf, (size_t)cut, &f), -EBADMSG), "max %d", cut);
    n = rudp__wire_stream_hdr_encode(buf, sizeof buf, 1ull << 40, 3, 0, 1);
    memcpy(buf + n, "abc", 3);
    n += 3;
    for (int cut = 0; cut < n; cut++)
        cr_expect(eq(int, decode_frame_exact(buf, (size_t)cut, &f), -EBADMSG), "stream %d", cut);
}

/* ---- PADDING ---- */

Test(wire, padding_run_decodes_as_one_frame)
{
    uint8_t buf[64] = {0};
    rudp_frame f;

    buf[40] = RUDP_FRAME_PING;
    cr_assert(eq(int, decode_frame_exact(buf, sizeof buf, &f), 40));
    cr_assert(eq(u8, f.type, RUDP_FRAME_PADDING));
    cr_assert(eq(int, rudp__wire_frame_decode(buf + 40, sizeof buf - 40, &f), 1));
    cr_assert(eq(u8, f.type, RUDP_FRAME_PING));
    /* all-zero tail: the run ends at the end of the datagram */
    cr_assert(eq(int, decode_frame_exact(buf + 41, sizeof buf - 41, &f), 64 - 41));
    cr_assert(eq(int, decode_frame_exact(buf, 1, &f), 1));
    cr_assert(eq(u8, f.type, RUDP_FRAME_PADDING));
}

/* ---- ACK ---- */

static void assert_ack_eq(const rudp_frame *f, const rudp_ack_range *r, size_t n, uint64_t delay)
{
    cr_assert(eq(u8, f->type, RUDP_FRAME_ACK));
    cr_assert(eq(u64, f->u.ack.delay_us, delay));
    cr_assert(eq(u32, f->u.ack.n, (uint32_t)n));
    for (size_t i = 0; i < n; i++) {
        cr_assert(eq(u64, f->u.ack.r[i].hi, r[i].hi), "range %zu", i);
        cr_assert(eq(u64, f->u.ack.r[i].lo, r[i].lo), "range %zu", i);
    }
}

/* n descending ranges from top down: each 1 + i % 5 long, gaps 1 + i % 3. */
static void make_ranges(rudp_ack_range *r, size_t n, uint64_t top)
{
    uint64_t hi = top;

    for (size_t i = 0; i < n; i++) {
        r[i].hi = hi;
        r[i].lo = hi - (i % 5);
        hi = r[i].lo - 2 - (i % 3);
    }
}

Test(wire, ack_with_one_range_roundtrips)
{
    rudp_ack_range r[1] = {{.lo = 0, .hi = 0}};
    uint8_t buf[64];
    size_t w = 0;
    rudp_frame f;
    int n = rudp__wire_ack_encode(buf, sizeof buf, r, 1, 25000, &w);

    cr_assert(eq(int, n, 1 + 1 + 4 + 1 + 1));
    cr_assert(eq(sz, w, 1));
    cr_assert(eq(int, decode_frame_exact(buf, (size_t)n, &f), n));
    assert_ack_eq(&f, r, 1, 25000);

    r[0].lo = 1000;
    r[0].hi = RUDP_VARINT_MAX;
    n = rudp__wire_ack_encode(buf, sizeof buf, r, 1, 0, &w);
    cr_assert(gt(int, n, 0));
    cr_assert(eq(int, decode_frame_exact(buf, (size_t)n, &f), n));
    assert_ack_eq(&f, r, 1, 0);
}

Test(wire, ack_with_many_ranges_roundtrips)
{
    rudp_ack_range r[RUDP_ACK_MAX_RANGES];
    uint8_t buf[2048];
    size_t w = 0;
    rudp_frame f;
    int n;

    make_ranges(r, RUDP_ACK_MAX_RANGES, 100000);
    n = rudp__wire_ack_encode(buf, sizeof buf, r, RUDP_ACK_MAX_RANGES, 12, &w);
    cr_assert(gt(int, n, 0));
    cr_assert(eq(sz, w, RUDP_ACK_MAX_RANGES));
    cr_assert(eq(int, decode_frame_exact(buf, (size_t)n, &f), n));
    assert_ack_eq(&f, r, RUDP_ACK_MAX_RANGES, 12);
}

Test(wire, ack_reaching_packet_number_zero_is_accepted)
{
    /* largest 10, first 2 -> [8,10]; gap 0 -> hi 6, length 6 -> [0,6] */
    static const uint8_t buf[] = {RUDP_FRAME_ACK, 10, 0, 1, 2, 0, 6};
    rudp_frame f;

    cr_assert(eq(int, decode_frame_exact(buf, sizeof buf, &f), (int)sizeof buf));
    cr_assert(eq(u64, f.u.ack.r[1].hi, 6));
    cr_assert(eq(u64, f.u.ack.r[1].lo, 0));
}

Test(wire, ack_range_below_packet_number_zero_is_rejected)
{
    static const uint8_t first_too_long[] = {RUDP_FRAME_ACK, 10, 0, 0, 11};
    static const uint8_t gap_too_long[] = {RUDP_FRAME_ACK, 10, 0, 1, 2, 7, 0};
    static const uint8_t length_too_long[] = {RUDP_FRAME_ACK, 10, 0, 1, 2, 0, 7};
    static const uint8_t first_reaches_zero[] = {RUDP_FRAME_ACK, 10, 0, 1, 10, 0, 0};
    rudp_frame f;

    cr_assert(eq(int, decode_frame_exact(first_too_long, sizeof first_too_long, &f), -EBADMSG));
    cr_assert(eq(int, decode_frame_exact(gap_too_long, sizeof gap_too_long, &f), -EBADMSG));
    cr_assert(eq(int, decode_frame_exact(length_too_long, sizeof length_too_long, &f), -EBADMSG));
    /* nothing below a range that already starts at 0 */
    cr_assert(eq(int, decode_frame_exact(first_reaches_zero, sizeof first_reaches_zero, &f),
                 -EBADMSG));
}

/* Hand-builds an ACK of `total` ranges (range_count = total - 1). */
static size_t raw_ack(uint8_t *buf, size_t cap, uint64_t total)
{
    size_t off = 0;

    buf[off++] = RUDP_FRAME_ACK;
    off += (size_t)rudp__varint_encode(buf + off, cap - off, 1000000);
    off += (size_t)rudp__varint_encode(buf + off, cap - off, 0);
    off += (size_t)rudp__varint_encode(buf + off, cap - off, total - 1);
    off += (size_t)rudp__varint_encode(buf + off, cap - off, 0);
    for (uint64_t i = 1; i < total; i++) {
        off += (size_t)rudp__varint_encode(buf + off, cap - off, 0);
        off += (size_t)rudp__varint_encode(buf + off, cap - off, 0);
    }
    return off;
}

Test(wire, ack_with_64_ranges_is_accepted_and_65_rejected)
{
    uint8_t buf[512];
    rudp_frame f;
    size_t n;

    n = raw_ack(buf, sizeof buf, RUDP_ACK_MAX_RANGES);
    cr_assert(eq(int, decode_frame_exact(buf, n, &f), (int)n));
    cr_assert(eq(u32, f.u.ack.n, RUDP_ACK_MAX_RANGES));
    n = raw_ack(buf, sizeof buf, RUDP_ACK_MAX_RANGES + 1);
    cr_assert(eq(int, decode_frame_exact(buf, n, &f), -EBADMSG));
}

Test(wire, ack_encode_truncates_ranges_to_fit_cap, .timeout = 10)
{
    rudp_ack_range r[RUDP_ACK_MAX_RANGES];
    uint8_t buf[2048];
    size_t w, prev_w = 0;
    rudp_frame f;

    make_ranges(r, RUDP_ACK_MAX_RANGES, 1u << 20);
    /* header: type, largest(4), delay(1), count(1), first(1) = 8 bytes */
    cr_assert(eq(int, rudp__wire_ack_encode(buf, 7, r, RUDP_ACK_MAX_RANGES, 0, &w), -ENOBUFS));
    /* each further range takes 2 bytes, so 64 ranges need 8 + 63 * 2 = 134 */
    for (size_t cap = 8; cap < 134; cap++) {
        uint8_t *p = malloc(cap);
        int n;

        cr_assert(p != NULL);
        n = rudp__wire_ack_encode(p, cap, r, RUDP_ACK_MAX_RANGES, 0, &w);
        cr_assert(gt(int, n, 0), "cap %zu", cap);
        cr_assert(le(sz, (size_t)n, cap));
        cr_assert(ge(sz, w, 1));
        cr_assert(ge(sz, w, prev_w), "more room never means fewer ranges");
        prev_w = w;
        /* the range_count on the wire matches what was written */
        cr_assert(eq(int, rudp__wire_frame_decode(p, (size_t)n, &f), n));
        assert_ack_eq(&f, r, w, 0);
        free(p);
    }
    cr_assert(eq(sz, prev_w, RUDP_ACK_MAX_RANGES - 1));
    cr_assert(eq(int, rudp__wire_ack_encode(buf, 134, r, RUDP_ACK_MAX_RANGES, 0, &w), 134));
    cr_assert(eq(sz, w, RUDP_ACK_MAX_RANGES));
}

Test(wire, ack_encode_writes_at_most_the_ranges_a_decoder_accepts)
{
    rudp_ack_range r[100];
    uint8_t buf[4096];
    size_t w;
    rudp_frame f;
    int n;

    make_ranges(r, 100, 1u << 20);
    n = rudp__wire_ack_encode(buf, sizeof buf, r, 100, 0, &w);
    cr_assert(gt(int, n, 0));
    cr_assert(eq(sz, w, RUDP_ACK_MAX_RANGES));
    cr_assert(eq(int, rudp__wire_frame_decode(buf, (size_t)n, &f), n));
    assert_ack_eq(&f, r, RUDP_ACK_MAX_RANGES, 0);
}

Test(wire, ack_encode_rejects_malformed_ranges)
{
    uint8_t buf[128];
    size_t w = 99;
    rudp_ack_range inverted[] = {{.lo = 5, .hi = 4}};
    rudp_ack_range adjacent[] = {{.lo = 10, .hi = 20}, {.lo = 5, .hi = 9}};
    rudp_ack_range overlapping[] = {{.lo = 10, .hi = 20}, {.lo = 5, .hi = 12}};
    rudp_ack_range too_big[] = {{.lo = 0, .hi = 1ull << 62}};

    cr_assert(eq(int, rudp__wire_ack_encode(buf, sizeof buf, inverted, 1, 0, &w), -EINVAL));
    cr_assert(eq(sz, w, 0));
    cr_assert(eq(int, rudp__wire_ack_encode(buf, sizeof buf, adjacent, 2, 0, &w), -EINVAL));
    cr_assert(eq(int, rudp__wire_ack_encode(buf, sizeof buf, overlapping, 2, 0, &w), -EINVAL));
    cr_assert(eq(int, rudp__wire_ack_encode(buf, sizeof buf, too_big, 1, 0, &w), -EINVAL));
    cr_assert(eq(int, rudp__wire_ack_encode(buf, sizeof buf, adjacent, 0, 0, &w), -EINVAL));
    cr_assert(
        eq(int, rudp__wire_ack_encode(buf, sizeof buf, adjacent, 1, 1ull << 62, &w), -EINVAL));
}

/* ---- STREAM ---- */

Test(wire, stream_with_len_roundtrips_and_leaves_following_frames)
{
    uint8_t buf[64];
    rudp_frame f;
    int h = rudp__wire_stream_hdr_encode(buf, sizeof buf, 70000, 5, 0, 1);

    cr_assert(eq(int, h, 1 + 4 + 1));
    cr_assert(eq(sz, (size_t)h, rudp__wire_stream_hdr_len(70000, 5, 1)));
    cr_assert(eq(u8, buf[0], RUDP_FRAME_STREAM | RUDP_STREAM_LEN));
    memcpy(buf + h, "hello", 5);
    buf[h + 5] = RUDP_FRAME_PING;
    cr_assert(eq(int, rudp__wire_frame_decode(buf, (size_t)h + 6, &f), h + 5));
    cr_assert(eq(u8, f.type, RUDP_FRAME_STREAM));
    cr_assert(eq(u64, f.u.stream.offset, 70000));
    cr_assert(eq(u64, f.u.stream.len, 5));
    cr_assert(eq(ptr, (void *)f.u.stream.data, (void *)(buf + h)));
    cr_assert(eq(u8, f.u.stream.fin, 0));
}

Test(wire, stream_without_len_takes_the_rest_of_the_datagram)
{
    uint8_t buf[64];
    rudp_frame f;
    int h = rudp__wire_stream_hdr_encode(buf, sizeof buf, 0, 20, 0, 0);

    cr_assert(eq(int, h, 2));
    cr_assert(eq(sz, (size_t)h, rudp__wire_stream_hdr_len(0, 20, 0)));
    cr_assert(eq(u8, buf[0], RUDP_FRAME_STREAM));
    memset(buf + h, RUDP_FRAME_PING, 20);
    cr_assert(eq(int, rudp__wire_frame_decode(buf, (size_t)h + 20, &f), h + 20));
    cr_assert(eq(u64, f.u.stream.len, 20));
    cr_assert(eq(ptr, (void *)f.u.stream.data, (void *)(buf + h)));
    /* and an empty tail is a zero-length frame */
    cr_assert(eq(int, rudp__wire_frame_decode(buf, (size_t)h, &f), h));
    cr_assert(eq(u64, f.u.stream.len, 0));
}

Test(wire, stream_fin_bit_roundtrips_with_and_without_len)
{
    uint8_t buf[32];
    rudp_frame f;

    for (int explicit_len = 0; explicit_len < 2; explicit_len++) {
        int h = rudp__wire_stream_hdr_encode(buf, sizeof buf, 1234, 0, 1, explicit_len);

        cr_assert(gt(int, h, 0));
        cr_assert(eq(u8, buf[0] & RUDP_STREAM_FIN, RUDP_STREAM_FIN));
        cr_assert(eq(int, decode_frame_exact(buf, (size_t)h, &f), h));
        cr_assert(eq(u8, f.type, RUDP_FRAME_STREAM));
        cr_assert(eq(u8, f.u.stream.fin, 1));
        cr_assert(eq(u64, f.u.stream.offset, 1234));
        cr_assert(eq(u64, f.u.stream.len, 0));
    }
}

Test(wire, stream_len_beyond_datagram_is_rejected)
{
    uint8_t buf[16];
    rudp_frame f;
    int h = rudp__wire_stream_hdr_encode(buf, sizeof buf, 0, 4, 0, 1);

    memcpy(buf + h, "abc", 3);
    cr_assert(eq(int, decode_frame_exact(buf, (size_t)h + 3, &f), -EBADMSG));
}

Test(wire, stream_offset_plus_len_above_2_62_minus_1_is_rejected)
{
    uint8_t buf[32];
    rudp_frame f;
    int h;

    /* last byte exactly at 2^62 - 1: fine */
    h = rudp__wire_stream_hdr_encode(buf, sizeof buf, RUDP_VARINT_MAX - 1, 1, 0, 1);
    cr_assert(gt(int, h, 0));
    buf[h] = 'x';
    cr_assert(eq(int, decode_frame_exact(buf, (size_t)h + 1, &f), h + 1));
    cr_assert(eq(u64, f.u.stream.offset, RUDP_VARINT_MAX - 1));

    /* one past: the decoder refuses it, with and without LEN */
    buf[0] = RUDP_FRAME_STREAM | RUDP_STREAM_LEN;
    rudp__varint_encode(buf + 1, 8, RUDP_VARINT_MAX);
    buf[9] = 1;
    buf[10] = 'x';
    cr_assert(eq(int, decode_frame_exact(buf, 11, &f), -EBADMSG));
    buf[0] = RUDP_FRAME_STREAM;
    buf[9] = 'x';
    buf[10] = 'y';
    cr_assert(eq(int, decode_frame_exact(buf, 11, &f), -EBADMSG));
    /* an empty frame at 2^62 - 1 is still representable */
    cr_assert(eq(int, decode_frame_exact(buf, 9, &f), 9));

    /* and the encoder will not produce one */
    cr_assert(eq(int, rudp__wire_stream_hdr_encode(buf, sizeof buf, RUDP_VARINT_MAX, 1, 0, 1),
                 -EINVAL));
    cr_assert(eq(int, rudp__wire_stream_hdr_encode(buf, sizeof buf, 1ull << 62, 0, 0, 0),
                 -EINVAL));
}

Test(wire, stream_hdr_encode_reports_enobufs)
{
    uint8_t buf[32];
    size_t n = rudp__wire_stream_hdr_len(1ull << 40, 300, 1);

    cr_assert(eq(sz, n, 1 + 8 + 2));
    cr_assert(eq(int, rudp__wire_stream_hdr_encode(buf, n - 1, 1ull << 40, 300, 0, 1), -ENOBUFS));
    cr_assert(eq(int, rudp__wire_stream_hdr_encode(buf, n, 1ull << 40, 300, 0, 1), (int)n));
}

/* ---- whole datagrams ---- */

Test(wire, datagram_of_header_and_frames_decodes_in_sequence)
{
    uint8_t buf[256];
    rudp_hdr h = sample_hdr(RUDP_PKT_DATA, RUDP_PKTF_ACK_NOW, 0), out;
    rudp_ack_range r[] = {{.lo = 90, .hi = 100}, {.lo = 10, .hi = 80}};
    size_t off = 0, w;
    rudp_frame f;
    int n;
    static const uint8_t want[] = {RUDP_FRAME_ACK, RUDP_FRAME_MAX_DATA, RUDP_FRAME_PING,
                                   RUDP_FRAME_STREAM, RUDP_FRAME_PADDING};

    off += (size_t)rudp__wire_hdr_encode(buf + off, sizeof buf - off, &h);
    off += (size_t)rudp__wire_ack_encode(buf + off, sizeof buf - off, r, 2, 3, &w);
    off += (size_t)rudp__wire_max_data_encode(buf + off, sizeof buf - off, 1u << 22);
    off += (size_t)rudp__wire_ping_encode(buf + off, sizeof buf - off);
    off += (size_t)rudp__wire_stream_hdr_encode(buf + off, sizeof buf - off, 0, 3, 1, 1);
    memcpy(buf + off, "end", 3);
    off += 3;
    memset(buf + off, 0, 10);
    off += 10;

    n = decode_hdr_exact(buf, off, &out);
    cr_assert(eq(int, n, RUDP_WIRE_SHORT_HDR));
    for (size_t i = 0, pos = (size_t)n; pos < off; i++) {
        cr_assert(lt(sz, i, sizeof want));
        n = rudp__wire_frame_decode(buf + pos, off - pos, &f);
        cr_assert(gt(int, n, 0));
        cr_assert(eq(u8, f.type, want[i]));
        pos += (size_t)n;
    }
}

/* xorshift64*: deterministic, so a failure reproduces. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

/* Decodes a header and then every frame; returns how many items parsed. */
static int decode_all(const uint8_t *buf, size_t len)
{
    rudp_hdr h;
    rudp_frame f;
    int n = rudp__wire_hdr_decode(buf, len, &h), items = 0;
    size_t pos;

    if (n < 0)
        return 0;
    cr_assert(le(sz, (size_t)n, len));
    for (pos = (size_t)n; pos < len; pos += (size_t)n) {
        n = rudp__wire_frame_decode(buf + pos, len - pos, &f);
        if (n < 0)
            break;
        cr_assert(gt(int, n, 0));
        cr_assert(le(sz, (size_t)n, len - pos));
        if (f.type == RUDP_FRAME_STREAM) {
            cr_assert(ge(ptr, (void *)f.u.stream.data, (void *)(buf + pos)));
            cr_assert(le(ptr, (void *)(f.u.stream.data + f.u.stream.len), (void *)(buf + len)));
        }
        items++;
    }
    return items + 1;
}

Test(wire, decoding_random_bytes_never_reads_out_of_bounds, .timeout = 30)
{
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    uint8_t src[300];
    int parsed = 0;

    for (int iter = 0; iter < 20000; iter++) {
        size_t len = (size_t)(rng_next(&seed) % sizeof src);
        uint8_t *p;

        for (size_t i = 0; i < len; i++)
            src[i] = (uint8_t)rng_next(&seed);
        /* Mostly valid headers and small frame types, so the frame decoders get exercised. */
        if (len >= 4 && iter % 4 != 0) {
            src[0] = RUDP_WIRE_MAGIC0;
            src[1] = RUDP_WIRE_MAGIC1;
            src[2] = RUDP_WIRE_VERSION;
            src[3] = (uint8_t)((src[3] & 0xf0) | (1 + src[3] % 5));
            if (len > 24)
                src[24] %= RUDP_TOKEN_MAX + 2;
            for (size_t i = 16; i < len; i++)
                if (rng_next(&seed) % 3 == 0)
                    src[i] = (uint8_t)(src[i] % 12);
        }
        p = tail_copy(src, len);
        parsed += decode_all(p, len) > 1;
        free(p);
    }
    /* guard against a test that only ever exercises the header rejection path */
    cr_assert(gt(int, parsed, 1000));
}

/* SERVER_ADDR (standby.c): IPv4 and IPv6 round trips; every truncation,
 * another family byte and port 0 are refused. */
Test(wire, server_addr_roundtrips_and_rejects_malformed)
{
    rudp_addr v4 = {.family = RUDP_AF_INET, .port = 7400, .ip = {10, 201, 9, 2}};
    rudp_addr v6 = {.family = RUDP_AF_INET6, .port = 443, .ip = {0x20, 0x01, 0x0d, 0xb8, [15] = 9}};
    const rudp_addr *each[2] = {&v4, &v6};
    for (int i = 0; i < 2; i++) {
        uint8_t buf[32];
        int n = rudp__wire_server_addr_encode(buf, sizeof buf, each[i]);
        cr_assert(eq(int, n, i ? 20 : 8));
        rudp_frame f;
        cr_assert(eq(int, decode_frame_exact(buf, (size_t)n, &f), n));
        cr_assert(eq(u8, f.type, RUDP_FRAME_SERVER_ADDR));
        cr_assert(eq(int, memcmp(&f.u.addr, each[i], sizeof f.u.addr), 0));
        for (int k = 1; k < n; k++)
            cr_assert(lt(int, decode_frame_exact(buf, (size_t)k, &f), 0), "truncated at %d", k);
        uint8_t bad[32];
        memcpy(bad, buf, (size_t)n);
        bad[1] = 5; /* neither 4 nor 6 */
        cr_assert(lt(int, decode_frame_exact(bad, (size_t)n, &f), 0));
        memcpy(bad, buf, (size_t)n);
        bad[n - 2] = bad[n - 1] = 0; /* port 0 */
        cr_assert(lt(int, decode_frame_exact(bad, (size_t)n, &f), 0));
        cr_assert(eq(int, rudp__wire_server_addr_encode(buf, (size_t)n - 1, each[i]), -ENOBUFS));
    }
    rudp_addr none = v4;
    none.family = 1;
    uint8_t buf[32];
    cr_assert(eq(int, rudp__wire_server_addr_encode(buf, sizeof buf, &none), -EINVAL));
    none = v4;
    none.port = 0;
    cr_assert(eq(int, rudp__wire_server_addr_encode(buf, sizeof buf, &none), -EINVAL));
}
