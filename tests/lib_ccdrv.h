/*
 * lib_ccdrv.h: a controller driven through its ops table by synthetic ACK
 * streams, for the per-algorithm unit tests (test_cc_vegas.c,
 * test_cc_htcp.c). Rounds carry the delivery counters recovery.c would
 * give: a packet acknowledged in round r was sent in answer to an ACK of
 * round r-1, so its P.delivered lies in that round.
 */
#ifndef LIB_CCDRV_H
#define LIB_CCDRV_H

#include <stdint.h>

#include "cc/cc.h"
#include "lib_sim.h"

typedef struct ccdrv {
    rudp_cc cc;
    rudp_rtt rtt;
    rudp_time now;
    uint64_t delivered;
    uint64_t prev_start; /* delivered before the previous round's first ACK */
    uint64_t prev_n;     /* ACKs in the previous round; 0: none yet */
    int app_limited;
} ccdrv;

/* Sets up ops with `mss` at time t0, initial RTT 100 ms. */
void ccdrv_init(ccdrv *d, const rudp_cc_ops *ops, uint32_t mss, rudp_time t0);

/* One ACK of `bytes` at d->now for a packet sent `rtt` ago (an RTT sample
 * of `rtt`), which was sent when `prior_delivered` bytes had been. */
void ccdrv_ack(ccdrv *d, uint64_t bytes, rudp_time rtt, uint64_t prior_delivered);

/* A round trip: the window at its start acknowledged in ACKs of `ack`
 * bytes (at least two ACKs), evenly over `rtt`, each an RTT sample of `rtt`. */
void ccdrv_round(ccdrv *d, rudp_time rtt, uint64_t ack);

/* A loss of a packet sent at `sent`, declared at d->now. */
void ccdrv_loss(ccdrv *d, rudp_time sent);

/* A bottleneck of `rate` segments/s behind a path of `base` RTT, until
 * `until`: one-segment ACKs arrive at min(rate, cwnd / base) per second,
 * each an RTT sample of max(base, cwnd / rate) (the queue the window in
 * excess of the path's BDP builds). No loss: the test declares it. */
void ccdrv_link(ccdrv *d, rudp_time until, uint64_t rate, rudp_time base);

/* One 20 s bulk flow of `cc` over the benchmark's B2/B3 link (100 Mbit/s,
 * 20 ms each way, a 500 kB (1 BDP) drop-tail queue, `loss` both ways),
 * seed 42; prints its SIMTABLE line (the README's table) to stderr. */
void ccdrv_sim_flow(const rudp_cc_ops *cc, double loss, sim_bulk_result *r);

#endif
