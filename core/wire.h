/*
 * wire.h: the rudp datagram format, encoder and decoder.
 *
 * Every datagram starts with a 16-byte header; handshake packets extend it.
 * All integers are big-endian. "varint" is QUIC's variable-length integer
 * (RFC 9000 §16): the two high bits of the first byte give the length
 * (00=1, 01=2, 10=4, 11=8 bytes), the rest is the value, max 2^62-1.
 *
 *   off  size  field
 *   0    2     magic 0x72 0x75 ("ru")
 *   2    1     version (RUDP_WIRE_VERSION)
 *   3    1     type: low 4 bits RUDP_PKT_*, high 4 bits RUDP_PKTF_* flags
 *   4    8     destination connection ID
 *   12   4     packet number, low 32 bits (expanded by the receiver)
 *   --- SYN, RETRY, SYNACK only ---
 *   16   8     source connection ID
 *   24   1     token length T (0..RUDP_TOKEN_MAX)
 *   25   T     token
 *   --- SYN, SYNACK only ---
 *   ..   var   max_data: the sender's initial receive window, bytes
 *   ..   var   max_datagram: the largest datagram the sender accepts
 *   --- then frames, to the end of the datagram ---
 *
 * A RESET packet has no frames; its destination connection ID names the
 * connection being refused or reset (see conn.c).
 *
 * Frames (first byte = frame type):
 *   0x00 PADDING        (no body; a run of zero bytes)
 *   0x01 PING           (no body; elicits an ACK)
 *   0x02 ACK            largest(var) delay_us(var) range_count(var)
 *                       first_range(var) { gap(var) length(var) } * range_count
 *                       exactly as RFC 9000 §19.3.1
 *   0x03 MAX_DATA       max_offset(var): peer may send stream bytes below it
 *   0x04 DATA_BLOCKED   limit(var): sender is blocked at this offset
 *   0x05 RESET          error(var) final_size(var)
 *   0x06 PATH_CHALLENGE data(8): the receiver echoes it in a PATH_RESPONSE
 *   0x07 PATH_RESPONSE  data(8): the challenge's data (RFC 9000 §19.17-18)
 *   0x08..0x0b STREAM   bit0 FIN, bit1 LEN: offset(var) [length(var)] data;
 *                       without LEN the data runs to the end of the datagram
 *   0x0c URGENT         offset(var): the stream byte at offset is urgent
 *                       (TCP's urgent mark, sent with MSG_OOB); carried by
 *                       every packet sent until one carrying it is acked
 *   0x0d NEW_PORT       port(var, 1..65535): server to client, the
 *                       connection now lives on this UDP port of the same
 *                       server address (path.h: the listener gave its port
 *                       up to the application)
 *   0x0e NEW_TOKEN      length(1, 1..RUDP_TOKEN_MAX) token: server to client,
 *                       an address token for the client's next connection
 *                       (token.c; the client's next SYN carries it)
 *
 * Flags on a SYNACK: RUDP_PKTF_ZRTT says the server took the stream bytes
 * the SYN carried (0-RTT, token.c); without it the client sends them again.
 * On a SYN, RUDP_PKTF_KEYED says it is a key holder's; a RESET with
 * RUDP_PKTF_KEY (and KEYED if its sender holds a key) refuses a SYN for its
 * key state: a 16-byte header, nothing else (keystate.c). On a SYN,
 * RUDP_PKTF_PMTUD (the RESET's KEY bit: a SYN never had it, and servers
 * before it ignore it there) says the client searches the path MTU (pmtu.h):
 * its max_datagram then offers at most RUDP_LEGACY_DATAGRAM, which a server
 * that knows the flag does not take as its ceiling. A server from before
 * path MTU discovery sends at once at the size a SYN offers, unprobed: an
 * offer of the client's device size (9000 on a jumbo LAN, 1500 behind a
 * PPPoE link at 1492) would stall its downloads where the 1400 that older
 * clients offered passed.
 *
 * Decoders check every length against the datagram and return -EBADMSG for
 * anything malformed; they never read outside [buf, buf+len).
 */
#ifndef RUDP_WIRE_H
#define RUDP_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include "rudp.h" /* rudp_addr (SERVER_ADDR) */

#define RUDP_WIRE_MAGIC0 0x72
#define RUDP_WIRE_MAGIC1 0x75
#define RUDP_WIRE_VERSION 1

#define RUDP_WIRE_SHORT_HDR 16       /* bytes in a DATA/RESET header */
#define RUDP_TOKEN_MAX 32
#define RUDP_ACK_MAX_RANGES 64       /* ranges a decoded ACK may carry */
#define RUDP_VARINT_MAX ((1ull << 62) - 1)
#define RUDP_MIN_SYN_SIZE 1200       /* SYNs are padded to this: replies are never larger */

enum rudp_pkt_type {
    RUDP_PKT_SYN = 1,
    RUDP_PKT_RETRY = 2,
    RUDP_PKT_SYNACK = 3,
    RUDP_PKT_DATA = 4,
    RUDP_PKT_RESET = 5,
};

/* Packet flags (high nibble of the type byte). */
enum {
    RUDP_PKTF_ACK_NOW = 0x1, /* receiver should acknowledge without delay */
    RUDP_PKTF_ZRTT = 0x2,    /* SYNACK: the SYN's stream bytes were taken (0-RTT) */
    RUDP_PKTF_KEYED = 0x4,   /* SYN: sent by a key holder (its MAC ends it); RESET with
                                RUDP_PKTF_KEY: the refusing end holds a key */
    RUDP_PKTF_KEY = 0x8,     /* RESET: a SYN refused for its key state, unauthenticated
                                (keystate.c) */
    RUDP_PKTF_PMTUD = 0x8,   /* SYN: the client searches the path MTU (above) */
    RUDP_PKTF_ADDRS = 0x2,   /* SYN: the client takes SERVER_ADDR frames (builds before
                                ignore the bit; they would drop a packet holding one) */
    RUDP_PKTF_MOVED = 0x2,   /* DATA: its sender moved to the path it came by and has not
                                heard its peer there yet (standby.c); keyed, authenticated
                                with the header */
    RUDP_PKTF_HELD = 0x2,    /* RETRY: the SYN was taken, its SYNACK held for the accept
                                queue (RUDP_HELD_NOTICE): no round trip to sample */
};

/* What a client searching the path MTU offers at most in its SYN: what
 * clients offered before (rudp_config's default), for servers that take
 * the offer as the size to send at. */
#define RUDP_LEGACY_DATAGRAM 1400

enum rudp_frame_type {
    RUDP_FRAME_PADDING = 0x00,
    RUDP_FRAME_PING = 0x01,
    RUDP_FRAME_ACK = 0x02,
    RUDP_FRAME_MAX_DATA = 0x03,
    RUDP_FRAME_DATA_BLOCKED = 0x04,
    RUDP_FRAME_RESET = 0x05,
    RUDP_FRAME_PATH_CHALLENGE = 0x06,
    RUDP_FRAME_PATH_RESPONSE = 0x07,
    RUDP_FRAME_STREAM = 0x08, /* 0x08..0x0b */
    RUDP_FRAME_URGENT = 0x0c,
    RUDP_FRAME_NEW_PORT = 0x0d,
    RUDP_FRAME_NEW_TOKEN = 0x0e,
    RUDP_FRAME_SERVER_ADDR = 0x0f, /* another address of the server's (standby.c) */
};
#define RUDP_STREAM_FIN 0x01
#define RUDP_STREAM_LEN 0x02

typedef struct rudp_hdr {
    uint8_t type;  /* RUDP_PKT_* */
    uint8_t flags; /* RUDP_PKTF_* */
    uint64_t dcid;
    uint32_t pn; /* low 32 bits of the packet number */
    /* SYN, RETRY, SYNACK */
    uint64_t scid;
    uint8_t token_len;
    uint8_t token[RUDP_TOKEN_MAX];
    /* SYN, SYNACK */
    uint64_t max_data;
    uint64_t max_datagram;
} rudp_hdr;

/* An inclusive range of packet numbers [lo, hi]. */
typedef struct rudp_ack_range {
    uint64_t lo, hi;
} rudp_ack_range;

typedef struct rudp_frame {
    uint8_t type; /* RUDP_FRAME_*; STREAM frames report RUDP_FRAME_STREAM */
    union {
        struct {
            uint64_t delay_us;
            uint32_t n;                            /* ranges in r[] (>= 1) */
            rudp_ack_range r[RUDP_ACK_MAX_RANGES]; /* descending; r[0].hi = largest */
        } ack;
        struct {
            uint64_t offset;
            uint64_t len;
            const uint8_t *data; /* points into the decoded datagram */
            uint8_t fin;
        } stream;
        uint64_t max_data;
        uint64_t blocked;
        struct {
            uint64_t code, final_size;
        } reset;
        uint64_t path_data; /* PATH_CHALLENGE, PATH_RESPONSE: 8 bytes, big-endian */
        uint64_t urgent;    /* URGENT: offset of the urgent byte */
        uint64_t new_port;  /* NEW_PORT: 1..65535 */
        struct {
            uint8_t len;         /* 1..RUDP_TOKEN_MAX */
            const uint8_t *data; /* points into the decoded datagram */
        } token;                 /* NEW_TOKEN */
        rudp_addr addr;          /* SERVER_ADDR: family, IP, port (scope 0) */
    } u;
} rudp_frame;

/* ---- varints ---- */

/* Bytes needed for v (1, 2, 4 or 8); v must be <= RUDP_VARINT_MAX. */
size_t rudp__varint_len(uint64_t v);

/* Writes v; returns bytes written, -ENOBUFS if cap is short, -EINVAL if v is too large. */
int rudp__varint_encode(uint8_t *p, size_t cap, uint64_t v);

/* Reads a varint; returns bytes consumed or -EBADMSG if truncated. */
int rudp__varint_decode(const uint8_t *p, size_t len, uint64_t *v);

/* ---- header ---- */

/* Encoded length of h (depends on type and, for handshakes, token and params). */
size_t rudp__wire_hdr_len(const rudp_hdr *h);

/*
 * Writes h; returns bytes written or -ENOBUFS / -EINVAL (bad type, flags
 * above 0xf, token too long, max_data or max_datagram above RUDP_VARINT_MAX).
 */
int rudp__wire_hdr_encode(uint8_t *buf, size_t cap, const rudp_hdr *h);

/*
 * Parses the header of a datagram. Returns the header length (frames start
 * there), -EBADMSG (bad magic, unknown type, truncated, token too long),
 * or -EPROTONOSUPPORT (another version).
 */
int rudp__wire_hdr_decode(const uint8_t *buf, size_t len, rudp_hdr *h);

/* ---- frames ---- */

/*
 * Decodes the frame at p. Returns bytes consumed (> 0) or -EBADMSG (unknown
 * type, truncated, an ACK range below zero or more than RUDP_ACK_MAX_RANGES,
 * a STREAM frame whose offset+length exceeds RUDP_VARINT_MAX). A run of
 * PADDING bytes decodes as one frame.
 */
int rudp__wire_frame_decode(const uint8_t *p, size_t len, rudp_frame *f);

/*
 * Encodes an ACK frame from ranges in descending order, non-overlapping and
 * non-adjacent (r[i].lo > r[i+1].hi + 1). Encodes as many ranges as fit in
 * cap (at least the first), and never more than RUDP_ACK_MAX_RANGES, which
 * is all a decoder accepts; *written_ranges tells how many. Returns bytes
 * written, -ENOBUFS if not even the first range fits, or -EINVAL (n = 0, a
 * range written that breaks the order above, r[0].hi or delay_us above
 * RUDP_VARINT_MAX).
 */
int rudp__wire_ack_encode(uint8_t *p, size_t cap, const rudp_ack_range *r, size_t n,
                         uint64_t delay_us, size_t *written_ranges);

/*
 * Encodes a STREAM frame's header only; the caller copies `len` data bytes
 * right after it. With explicit_len = 0 the frame must end the datagram.
 * Returns header bytes written, -ENOBUFS, or -EINVAL if offset + len
 * exceeds RUDP_VARINT_MAX (the decoder would reject the frame).
 */
int rudp__wire_stream_hdr_encode(uint8_t *p, size_t cap, uint64_t offset, uint64_t len,
                                int fin, int explicit_len);

/* Size of the STREAM frame header rudp__wire_stream_hdr_encode would write. */
size_t rudp__wire_stream_hdr_len(uint64_t offset, uint64_t len, int explicit_len);

/*
 * One-value frames; each returns bytes written, -ENOBUFS, or -EINVAL if a
 * value exceeds RUDP_VARINT_MAX.
 */
int rudp__wire_ping_encode(uint8_t *p, size_t cap);
int rudp__wire_max_data_encode(uint8_t *p, size_t cap, uint64_t max);
int rudp__wire_blocked_encode(uint8_t *p, size_t cap, uint64_t limit);
int rudp__wire_reset_encode(uint8_t *p, size_t cap, uint64_t code, uint64_t final_size);
/* RESET's codes: 0 an abort; AFTER_FIN: the sender's application had
 * closed, its stream ends with a FIN at final_size, and bytes that came
 * after drew the reset (rudp_conn_close_reset). A peer that knows no code
 * takes each as an abort. */
#define RUDP_RESET_ABORT 0
#define RUDP_RESET_AFTER_FIN 1
int rudp__wire_urgent_encode(uint8_t *p, size_t cap, uint64_t offset);
/* NEW_PORT: -EINVAL for port 0 or above 65535 */
int rudp__wire_new_port_encode(uint8_t *p, size_t cap, unsigned port);
/* rudp_addr's families (AF_INET, AF_INET6: the core names no libc header for them). */
#define RUDP_AF_INET 2
#define RUDP_AF_INET6 10
/* SERVER_ADDR: 4 or 6, then the IP's 4 or 16 bytes and the port's 2,
 * big-endian. Returns bytes written, -ENOBUFS, or -EINVAL (another family,
 * port 0). */
int rudp__wire_server_addr_encode(uint8_t *p, size_t cap, const rudp_addr *a);

/* NEW_TOKEN carrying len bytes (1..RUDP_TOKEN_MAX, else -EINVAL). */
int rudp__wire_new_token_encode(uint8_t *p, size_t cap, const uint8_t *token, size_t len);

/* PATH_CHALLENGE or PATH_RESPONSE (`type`) with its 8 bytes of data:
 * returns 9, -ENOBUFS, or -EINVAL for another type. */
int rudp__wire_path_encode(uint8_t *p, size_t cap, uint8_t type, uint64_t data);

#endif
