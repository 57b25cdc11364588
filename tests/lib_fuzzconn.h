/*
 * lib_fuzzconn.h: what tests/fuzz_conn.c injects, built from the fuzz input
 * (lib_fuzzconn.c): a DATA header for a live connection with a packet
 * number near the one it expects, and frames encoded with wire.h from
 * fuzz-chosen values near the connection's real packet numbers and
 * offsets; and the bytes each endpoint writes, which a forged STREAM frame
 * may carry too. Shared by fuzz_conn and fuzz_keyed, and by the unit tests
 * (test_fuzzregress.c, which includes fuzz_conn.c).
 */
#ifndef LIB_FUZZCONN_H
#define LIB_FUZZCONN_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "fuzz.h"

#define CLI 0
#define SRV 1

/* The byte endpoint ep (CLI or SRV) writes at stream offset off: what its
 * peer reads there, unless an injected STREAM frame covered it. */
uint8_t fuzzconn_pattern(int ep, uint64_t off);
/* A DATA header for connection c in out[0..cap): flags from r, a packet
 * number near the one c expects (or far ahead); its length,
 * RUDP_WIRE_SHORT_HDR. */
size_t fuzzconn_build_header(rd *r, const rudp_conn *c, uint8_t *out, size_t cap);
/* One to four frames for connection c in out[0..cap), chosen and filled
 * from r (PADDING, PING, ACK, MAX_DATA, DATA_BLOCKED, STREAM, RESET,
 * URGENT, PATH_CHALLENGE, PATH_RESPONSE); a STREAM frame without a length
 * ends them. Their length: 0 if none fitted. */
size_t fuzzconn_build_frames(rd *r, const rudp_conn *c, uint8_t *out, size_t cap);

#endif
