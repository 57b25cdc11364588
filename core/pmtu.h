/*
 * pmtu.h: datagram packetization-layer path MTU discovery (RFC 8899, as
 * QUIC does it: RFC 9000 §14). Internal to the core; conn.h embeds it.
 *
 * A connection with rudp_config.pmtud on starts at RUDP_PMTU_BASE (every
 * path carries it: the SYN is padded to it) and probes upward, up to the
 * smaller of its own max_datagram and the peer's, with padded PING packets
 * whose loss is not congestion. Three losses of one size make it the upper
 * bound, and the search halves the gap until it is under RUDP_PMTU_STEP;
 * RUDP_PMTU_RAISE later it searches again. Full-size packets lost to two
 * probe timeouts in a row send everything at the base until a packet
 * sent since is acknowledged (a black hole: the path shrank and says
 * nothing), then the old size is probed again, so a plain outage costs
 * one round trip at the base. Our own device's MTU (rudp_ctx_device_mtu)
 * is taken as it is. ICMP "too big" (rudp_ctx_too_big) counts
 * only when it quotes one of our packets; one that does not only prompts
 * a probe of the current size. A connection that moves to a new path
 * starts from the base again.
 */
#ifndef RUDP_PMTU_H
#define RUDP_PMTU_H

#include <stdint.h>

#include "rudp.h"

#define RUDP_PMTU_BASE 1200u            /* BASE_PLPMTU: RUDP_MIN_SYN_SIZE */
#define RUDP_PMTU_STEP 16u              /* the search stops when hi - lo is this or less */
#define RUDP_PMTU_TRIES 3u              /* MAX_PROBES */
#define RUDP_PMTU_RAISE RUDP_SEC(600)   /* PMTU_RAISE_TIMER */

enum {
    RUDP_PMTU_OFF = 0, /* a fixed size: max_datagram (loopback, pmtud off) */
    RUDP_PMTU_SEARCH,
    RUDP_PMTU_DONE,
};

typedef struct rudp_pmtu {
    uint8_t state;
    uint8_t tries;         /* losses of the size being probed */
    uint8_t suspect;       /* a black hole suspected: sending at the base */
    uint8_t recheck;       /* the next probe is the size before the suspicion */
    uint32_t ceiling;      /* the largest size we may try */
    uint32_t lo;           /* the largest size known to pass */
    uint32_t hi;           /* the smallest size known not to (ceiling + 1: none yet) */
    uint32_t probe;        /* the size of the probe in flight, 0: none */
    uint32_t before;       /* the size before the suspicion */
    uint32_t ptb;          /* a validated "too big" says this fits: the next probe, 0: none */
    uint64_t probe_pn;
    uint64_t suspect_pn;   /* the first packet sent at the base since */
    rudp_time next_at;     /* the next probe (a new search when DONE) */
} rudp_pmtu;

#endif
