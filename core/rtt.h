/*
 * rtt.h: round-trip time estimation, RFC 9002 §5.
 */
#ifndef RUDP_RTT_H
#define RUDP_RTT_H

#include "rudp.h"

#define RUDP_GRANULARITY RUDP_MS(1) /* kGranularity, RFC 9002 §6.1.2 */

typedef struct rudp_rtt {
    rudp_time latest;
    rudp_time smoothed;
    rudp_time var;
    rudp_time min;
    int has_sample;
    uint32_t samples; /* taken so far (saturating) */
} rudp_rtt;

/* Before any sample: smoothed = initial, var = initial / 2 (RFC 9002 §5.3). */
void rudp__rtt_init(rudp_rtt *r, rudp_time initial);

/*
 * Takes a sample `latest` (ack time minus send time of the largest newly
 * acknowledged packet) and the peer's reported ack_delay, which is capped
 * at max_ack_delay and subtracted only when that leaves at least min_rtt.
 */
void rudp__rtt_update(rudp_rtt *r, rudp_time latest, rudp_time ack_delay,
                     rudp_time max_ack_delay);

/* Probe timeout: smoothed + max(4 * var, granularity) + max_ack_delay. */
rudp_time rudp__rtt_pto(const rudp_rtt *r, rudp_time max_ack_delay);

/* Loss time threshold: 9/8 * max(smoothed, latest), at least granularity. */
rudp_time rudp__rtt_loss_delay(const rudp_rtt *r);

#endif
