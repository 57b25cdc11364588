/*
 * siphash.h: SipHash-2-4 with a 64-bit output (Aumasson and Bernstein, 2012).
 *
 * A keyed pseudo-random function: without the key an attacker can neither
 * predict nor forge outputs. The core uses it for stateless handshake cookies
 * (a RETRY token is a MAC over the client's address and connection IDs) and to
 * derive connection IDs that an off-path host cannot guess.
 *
 * Not a general-purpose MAC for long messages and not a replacement for an
 * AEAD: 64 bits of output is enough for short-lived tokens only.
 */
#ifndef RUDP_SIPHASH_H
#define RUDP_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/*
 * Returns SipHash-2-4 of the len bytes at data under the 16-byte key. The
 * output is the 64-bit value of the reference implementation read as a
 * little-endian integer, so key 00..0f over message 00..0e gives
 * 0xa129ca6149be45e5. data may be NULL when len is 0. Never fails; reads
 * nothing outside key[0..15] and data[0..len-1]; keeps no state.
 */
uint64_t rudp__siphash(const uint8_t key[16], const void *data, size_t len);

#endif
