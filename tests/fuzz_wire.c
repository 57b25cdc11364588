/*
 * fuzz_wire.c: libFuzzer target for the datagram codec.
 *
 * Decodes the input as a datagram (header, then every frame) and, for each
 * item that decodes, checks the decoder's own promises (lengths within the
 * input, ACK ranges well ordered, STREAM data inside the datagram) and that
 * re-encoding what was decoded and decoding that again gives the same
 * values. Byte-for-byte equality is not expected: the input may use
 * non-minimal varints, which the decoder accepts and the encoder never
 * writes. The re-encoding can only be shorter or equal.
 *
 * Build: make fuzz, or
 *   clang -std=c11 -D_GNU_SOURCE -O1 -g -Icore -fsanitize=fuzzer,address,undefined \
 *         -o fuzz_wire tests/fuzz_wire.c core/wire.c core/siphash.c
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "wire.h"

/* Large enough for any header (73 bytes) and any frame header or ACK. */
static uint8_t scratch[4096];

static void check_hdr(const uint8_t *data, size_t size, const rudp_hdr *h, int n)
{
    rudp_hdr again;
    int m;

    CHECK(n >= RUDP_WIRE_SHORT_HDR && (size_t)n <= size);
    CHECK(h->type >= RUDP_PKT_SYN && h->type <= RUDP_PKT_RESET);
    CHECK(h->flags <= 0x0f);
    CHECK(h->token_len <= RUDP_TOKEN_MAX);

    m = rudp__wire_hdr_encode(scratch, sizeof scratch, h);
    CHECK(m > 0 && (size_t)m == rudp__wire_hdr_len(h));
    CHECK(m <= n);
    /* Everything up to the params is fixed-width, so it must match exactly. */
    {
        size_t fixed = RUDP_WIRE_SHORT_HDR;

        if (h->type != RUDP_PKT_DATA && h->type != RUDP_PKT_RESET)
            fixed += 8 + 1 + h->token_len;
        CHECK(fixed <= (size_t)m && memcmp(scratch, data, fixed) == 0);
        if (h->type == RUDP_PKT_RETRY || h->type == RUDP_PKT_DATA || h->type == RUDP_PKT_RESET)
            CHECK((size_t)m == fixed && m == n);
    }
    CHECK(rudp__wire_hdr_decode(scratch, (size_t)m, &again) == m);
    CHECK(again.type == h->type && again.flags == h->flags && again.dcid == h->dcid &&
          again.pn == h->pn && again.scid == h->scid && again.token_len == h->token_len &&
          memcmp(again.token, h->token, h->token_len) == 0 && again.max_data == h->max_data &&
          again.max_datagram == h->max_datagram);
}

static void check_ack(const rudp_frame *f, int n)
{
    rudp_frame again;
    size_t written = 0;
    int m;

    CHECK(f->u.ack.n >= 1 && f->u.ack.n <= RUDP_ACK_MAX_RANGES);
    for (uint32_t i = 0; i < f->u.ack.n; i++) {
        CHECK(f->u.ack.r[i].lo <= f->u.ack.r[i].hi);
        CHECK(f->u.ack.r[i].hi <= RUDP_VARINT_MAX);
        if (i > 0)
            CHECK(f->u.ack.r[i].hi + 1 < f->u.ack.r[i - 1].lo);
    }
    m = rudp__wire_ack_encode(scratch, sizeof scratch, f->u.ack.r, f->u.ack.n, f->u.ack.delay_us,
                             &written);
    CHECK(m > 0 && m <= n);
    CHECK(written == f->u.ack.n);
    CHECK(rudp__wire_frame_decode(scratch, (size_t)m, &again) == m);
    CHECK(again.type == RUDP_FRAME_ACK && again.u.ack.n == f->u.ack.n &&
          again.u.ack.delay_us == f->u.ack.delay_us);
    CHECK(memcmp(again.u.ack.r, f->u.ack.r, f->u.ack.n * sizeof f->u.ack.r[0]) == 0);

    /* Truncating into a smaller cap must still produce a decodable prefix. */
    if (m > 1) {
        size_t cap = (size_t)m - 1;

        m = rudp__wire_ack_encode(scratch, cap, f->u.ack.r, f->u.ack.n, f->u.ack.delay_us,
                                 &written);
        if (m > 0) {
            CHECK((size_t)m <= cap && written >= 1 && written < f->u.ack.n);
            CHECK(rudp__wire_frame_decode(scratch, (size_t)m, &again) == m);
            CHECK(again.u.ack.n == written);
            CHECK(memcmp(again.u.ack.r, f->u.ack.r, written * sizeof f->u.ack.r[0]) == 0);
        }
    }
}

static void check_stream(const uint8_t *p, size_t len, const rudp_frame *f, int n)
{
    int explicit_len = (p[0] & RUDP_STREAM_LEN) != 0;
    uint64_t slen = f->u.stream.len;
    rudp_frame again;
    size_t h;
    int m;

    CHECK(f->u.stream.data >= p && f->u.stream.data + slen == p + n);
    CHECK(f->u.stream.offset <= RUDP_VARINT_MAX - slen);
    CHECK(f->u.stream.fin == (p[0] & RUDP_STREAM_FIN));
    if (!explicit_len)
        CHECK((size_t)n == len);

    m = rudp__wire_stream_hdr_encode(scratch, sizeof scratch, f->u.stream.offset, slen,
                                    f->u.stream.fin, explicit_len);
    CHECK(m > 0);
    h = (size_t)m;
    CHECK(h == rudp__wire_stream_hdr_len(f->u.stream.offset, slen, explicit_len));
    CHECK(h + slen <= (size_t)n);
    if (h + slen > sizeof scratch)
        return; /* the header round trip was checked; the data is not ours to copy */
    memcpy(scratch + h, f->u.stream.data, (size_t)slen);
    CHECK(rudp__wire_frame_decode(scratch, h + (size_t)slen, &again) == (int)(h + slen));
    CHECK(again.type == RUDP_FRAME_STREAM && again.u.stream.offset == f->u.stream.offset &&
          again.u.stream.len == slen && again.u.stream.fin == f->u.stream.fin &&
          again.u.stream.data == scratch + h);
}

static void check_frame(const uint8_t *p, size_t len, const rudp_frame *f, int n)
{
    rudp_frame again;
    int m = 0;

    CHECK(n > 0 && (size_t)n <= len);
    switch (f->type) {
    case RUDP_FRAME_PADDING:
        for (int i = 0; i < n; i++)
            CHECK(p[i] == 0);
        CHECK((size_t)n == len || p[n] != 0);
        return;
    case RUDP_FRAME_PING:
        CHECK(n == 1 && p[0] == RUDP_FRAME_PING);
        m = rudp__wire_ping_encode(scratch, sizeof scratch);
        break;
    case RUDP_FRAME_ACK:
        check_ack(f, n);
        return;
    case RUDP_FRAME_MAX_DATA:
        m = rudp__wire_max_data_encode(scratch, sizeof scratch, f->u.max_data);
        break;
    case RUDP_FRAME_DATA_BLOCKED:
        m = rudp__wire_blocked_encode(scratch, sizeof scratch, f->u.blocked);
        break;
    case RUDP_FRAME_RESET:
        m = rudp__wire_reset_encode(scratch, sizeof scratch, f->u.reset.code,
                                   f->u.reset.final_size);
        break;
    case RUDP_FRAME_PATH_CHALLENGE:
    case RUDP_FRAME_PATH_RESPONSE:
        CHECK(n == 9);
        m = rudp__wire_path_encode(scratch, sizeof scratch, (uint8_t)f->type, f->u.path_data);
        break;
    case RUDP_FRAME_URGENT:
        m = rudp__wire_urgent_encode(scratch, sizeof scratch, f->u.urgent);
        break;
    case RUDP_FRAME_NEW_PORT:
        m = rudp__wire_new_port_encode(scratch, sizeof scratch, (unsigned)f->u.new_port);
        break;
    case RUDP_FRAME_NEW_TOKEN:
        CHECK(f->u.token.len >= 1 && f->u.token.len <= RUDP_TOKEN_MAX);
        CHECK(n == 2 + f->u.token.len && f->u.token.data == p + 2);
        m = rudp__wire_new_token_encode(scratch, sizeof scratch, f->u.token.data, f->u.token.len);
        break;
    case RUDP_FRAME_SERVER_ADDR:
        CHECK(f->u.addr.port != 0);
        CHECK(n == (f->u.addr.family == RUDP_AF_INET ? 8 : 20));
        m = rudp__wire_server_addr_encode(scratch, sizeof scratch, &f->u.addr);
        break;
    case RUDP_FRAME_STREAM:
        CHECK((p[0] & ~3u) == RUDP_FRAME_STREAM);
        check_stream(p, len, f, n);
        return;
    default:
        CHECK(0 && "decoder reported an unknown frame type");
    }
    CHECK(m > 0 && m <= n && scratch[0] == p[0]);
    CHECK(rudp__wire_frame_decode(scratch, (size_t)m, &again) == m);
    CHECK(again.type == f->type);
    switch (f->type) {
    case RUDP_FRAME_MAX_DATA:
        CHECK(again.u.max_data == f->u.max_data);
        break;
    case RUDP_FRAME_DATA_BLOCKED:
        CHECK(again.u.blocked == f->u.blocked);
        break;
    case RUDP_FRAME_RESET:
        CHECK(again.u.reset.code == f->u.reset.code &&
              again.u.reset.final_size == f->u.reset.final_size);
        break;
    case RUDP_FRAME_PATH_CHALLENGE:
    case RUDP_FRAME_PATH_RESPONSE:
        CHECK(again.u.path_data == f->u.path_data);
        break;
    case RUDP_FRAME_URGENT:
        CHECK(again.u.urgent == f->u.urgent);
        break;
    case RUDP_FRAME_NEW_PORT:
        CHECK(again.u.new_port == f->u.new_port);
        break;
    case RUDP_FRAME_NEW_TOKEN:
        CHECK(again.u.token.len == f->u.token.len &&
              memcmp(again.u.token.data, f->u.token.data, f->u.token.len) == 0);
        break;
    case RUDP_FRAME_SERVER_ADDR:
        CHECK(memcmp(&again.u.addr, &f->u.addr, sizeof f->u.addr) == 0);
        CHECK(m == n && memcmp(scratch, p, (size_t)n) == 0); /* one encoding per address */
        break;
    default:
        break;
    }
}

static void decode_frames(const uint8_t *data, size_t size)
{
    rudp_frame f;

    for (size_t pos = 0; pos < size;) {
        int n = rudp__wire_frame_decode(data + pos, size - pos, &f);

        if (n < 0)
            return;
        check_frame(data + pos, size - pos, &f, n);
        pos += (size_t)n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rudp_hdr h;
    uint64_t v, v2;
    int n;

    /* A leading varint, if any, must round-trip to the same value. */
    n = rudp__varint_decode(data, size, &v);
    if (n > 0) {
        int m = rudp__varint_encode(scratch, sizeof scratch, v);

        CHECK(m > 0 && m <= n && (size_t)m == rudp__varint_len(v));
        CHECK(rudp__varint_decode(scratch, (size_t)m, &v2) == m && v2 == v);
    }

    n = rudp__wire_hdr_decode(data, size, &h);
    if (n >= 0) {
        check_hdr(data, size, &h, n);
        decode_frames(data + n, size - (size_t)n);
    } else {
        /* Frame decoders see the raw input too, so they get fuzzed without a header. */
        decode_frames(data, size);
    }
    return 0;
}
