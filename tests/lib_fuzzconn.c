/*
 * lib_fuzzconn.c: the datagrams tests/fuzz_conn.c injects into a live
 * connection, built from the fuzz input (lib_fuzzconn.h), and the bytes
 * each endpoint writes. Moved out of fuzz_conn.c, whose script calls them;
 * linked into fuzz_conn and fuzz_keyed by the Makefile, and into the unit
 * tests, whose test_fuzzregress.c replays that script.
 */
#include <stdint.h>
#include <string.h>

#include "conn.h"
#include "seq.h"
#include "wire.h"

#include "fuzz.h"
#include "lib_fuzzconn.h"

uint8_t fuzzconn_pattern(int ep, uint64_t off)
{
    uint64_t x = (off / 8) * 0x9e3779b97f4a7c15ull ^ (0x5eed0000ull + (uint64_t)ep * 77);
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 32;
    return (uint8_t)(x >> ((off % 8) * 8));
}

/* ---- building datagrams from the input ---- */

static uint64_t clamp_varint(uint64_t v)
{
    return v & RUDP_VARINT_MAX;
}

size_t fuzzconn_build_header(rd *r, const rudp_conn *c, uint8_t *out, size_t cap)
{
    rudp_hdr h;
    memset(&h, 0, sizeof h);
    h.type = RUDP_PKT_DATA;
    h.flags = u8(r) & 0x0f;
    h.dcid = c->cid;
    uint64_t expected = c->rx_any ? c->rx_largest + 1 : 0;
    uint8_t d = u8(r);
    uint64_t pn;
    if (d == 0x80)
        pn = expected + u32(r); /* far ahead */
    else if ((int8_t)d < 0 && (uint64_t)(-(int8_t)d) > expected)
        pn = 0;
    else
        pn = expected + (uint64_t)(int64_t)(int8_t)d;
    h.pn = rudp__pn_truncate(pn);
    int n = rudp__wire_hdr_encode(out, cap, &h);
    CHECK(n == RUDP_WIRE_SHORT_HDR);
    return (size_t)n;
}

static size_t build_ack(rd *r, const rudp_conn *c, uint8_t *out, size_t cap)
{
    uint8_t mode = u8(r);
    uint64_t next = c->rec.next_pn;
    uint64_t largest;
    if ((mode & 7) == 7 || next == 0)
        largest = next + (mode >> 3); /* never sent: -EPROTO */
    else
        largest = next - 1 - rudp__seq_min(next - 1, (uint64_t)(mode >> 3));
    rudp_ack_range rg[8];
    size_t nr = 0, want = 1 + u8(r) % 8;
    uint64_t hi = largest;
    while (nr < want) {
        uint64_t len = u8(r) % 16;
        uint64_t lo = hi - rudp__seq_min(hi, len);
        rg[nr].lo = lo;
        rg[nr].hi = hi;
        nr++;
        uint64_t gap = u8(r) % 8;
        if (lo < 2 + gap)
            break;
        hi = lo - 2 - gap;
    }
    size_t written;
    int n = rudp__wire_ack_encode(out, cap, rg, nr, u16(r), &written);
    return n > 0 ? (size_t)n : 0;
}

static size_t build_stream(rd *r, const rudp_conn *c, uint8_t *out, size_t cap, int *last)
{
    uint8_t mode = u8(r);
    uint64_t off;
    switch (mode & 3) {
    case 0:
        off = c->rcv_contig + (u8(r) % 64) * 100;
        break;
    case 1:
        off = c->rcv_read + u16(r);
        break;
    case 2:
        off = c->max_data_sent - rudp__seq_min(c->max_data_sent, u16(r));
        break;
    default:
        off = clamp_varint(u64(r));
        break;
    }
    size_t len = u8(r);
    if (mode & 0x10)
        len *= 8;
    int fin = (mode & 0x04) != 0;
    int explicit_len = (mode & 0x08) == 0;
    if (off > RUDP_VARINT_MAX - len)
        off = RUDP_VARINT_MAX - len;
    size_t hl = rudp__wire_stream_hdr_len(off, len, explicit_len);
    if (hl + len > cap) {
        if (hl >= cap)
            return 0;
        len = cap - hl;
        hl = rudp__wire_stream_hdr_len(off, len, explicit_len);
        if (hl + len > cap)
            return 0;
    }
    int n = rudp__wire_stream_hdr_encode(out, cap, off, len, fin, explicit_len);
    if (n <= 0)
        return 0;
    /* Data: the writer's own bytes (the protocol must take them as such)
     * or bytes from the input. */
    for (size_t k = 0; k < len; k++)
        out[(size_t)n + k] = (mode & 0x20) ? fuzzconn_pattern(c->is_server ? CLI : SRV, off + k)
                                           : u8(r);
    if (!explicit_len)
        *last = 1;
    return (size_t)n + len;
}

size_t fuzzconn_build_frames(rd *r, const rudp_conn *c, uint8_t *out, size_t cap)
{
    size_t off = 0;
    int nframes = 1 + u8(r) % 4, last = 0;
    for (int k = 0; k < nframes && !last && off < cap; k++) {
        uint8_t sel = u8(r);
        int n = 0;
        size_t room = cap - off;
        switch (sel % 9) {
        case 0: {
            size_t z = u8(r) % 32 + 1;
            if (z > room)
                z = room;
            memset(out + off, 0, z);
            n = (int)z;
            break;
        }
        case 1:
            n = rudp__wire_ping_encode(out + off, room);
            break;
        case 2:
        case 3:
            n = (int)build_ack(r, c, out + off, room);
            break;
        case 4:
            n = rudp__wire_max_data_encode(out + off, room,
                                          (sel & 0x10) ? clamp_varint(u64(r))
                                                       : clamp_varint(c->peer_max_data + u16(r)));
            break;
        case 5:
            n = rudp__wire_blocked_encode(out + off, room, u32(r));
            break;
        case 6:
        case 7:
            n = (int)build_stream(r, c, out + off, room, &last);
            break;
        default: /* sel 8, 17, ... 251: mostly STREAM, the rarer frames at the top */
            switch (sel / 9) {
            case 27:
                n = rudp__wire_reset_encode(out + off, room, u8(r), clamp_varint(u64(r)));
                break;
            case 26: /* near the stream, or anywhere */
                n = rudp__wire_urgent_encode(out + off, room,
                                            (u8(r) & 1) ? clamp_varint(u64(r))
                                                        : clamp_varint(c->rcv_contig + u16(r)));
                break;
            case 25:
                n = rudp__wire_path_encode(out + off, room, RUDP_FRAME_PATH_CHALLENGE, u64(r));
                break;
            case 24:
                n = rudp__wire_path_encode(out + off, room, RUDP_FRAME_PATH_RESPONSE, u64(r));
                break;
            default:
                n = (int)build_stream(r, c, out + off, room, &last);
                break;
            }
            break;
        }
        if (n > 0)
            off += (size_t)n;
    }
    return off;
}
