/*
 * recovery.h: sent-packet bookkeeping, loss detection and probe timeouts
 * (RFC 9002 §6 and Appendix A), and delivery-rate sampling
 * (draft-cheng-iccrg-delivery-rate-estimation) for model-based controllers.
 *
 * Every packet number the connection sends has a record here, in a ring
 * indexed by packet number. Packet numbers are never reused, so a
 * retransmission is a new packet and an RTT sample is never ambiguous.
 * What a packet carried (a stream range, FIN, MAX_DATA, ...) is recorded so
 * the connection can re-queue it when the packet is declared lost; the
 * connection learns of acknowledged and lost packets through callbacks.
 */
#ifndef RUDP_RECOVERY_H
#define RUDP_RECOVERY_H

#include <stdint.h>

#include "cc/cc.h"
#include "rtt.h"
#include "wire.h"

#define RUDP_PACKET_THRESHOLD 3        /* kPacketThreshold */
#define RUDP_PERSISTENT_THRESHOLD 3    /* kPersistentCongestionThreshold */
/* A packet flagged ACK_NOW is acknowledged within this (see conn_input.c). */
#define RUDP_ACK_SOON RUDP_MS(1)

/* The probe timeout's floor: a peer is a user-space engine, which under
 * load (3,500 connections opened at once) answers tens of milliseconds
 * late, past the ~2 ms a loopback path's RFC 9002 timeout comes to; each
 * early timeout sends a probe and adds to that load. Linux TCP waits at
 * least 2 x srtt + 2 ms for a tail loss probe (200 ms more for a single
 * packet). 10 ms is the cost of a lost tail on a path under ~5 ms RTT;
 * longer paths' timeouts are above it (and their short writes' tails may
 * be repaired at once: conn_output.c). */
#define RUDP_PTO_MIN RUDP_MS(10)
/* ... and the most late.c raises it to for a peer that answered late:
 * kernel TCP's least retransmission timeout (TCP_RTO_MIN). */
#define RUDP_LATE_FLOOR_MAX RUDP_MS(200)

/* The ACK delay for a packet flagged ACK_NOW, given the usual one: the
 * receiver waits this long at most, and the sender's probe timeout allows
 * exactly this, so both use this one rule. */
static inline rudp_time rudp__ack_soon_delay(rudp_time max_ack_delay)
{
    return RUDP_ACK_SOON < max_ack_delay ? RUDP_ACK_SOON : max_ack_delay;
}

enum {
    RUDP_SENT_ACK_ELICITING = 1u << 0,
    RUDP_SENT_IN_FLIGHT = 1u << 1,
    RUDP_SENT_FIN = 1u << 2,
    RUDP_SENT_MAX_DATA = 1u << 3,
    RUDP_SENT_BLOCKED = 1u << 4,
    RUDP_SENT_ACK_NOW = 1u << 5, /* receiver was asked to ACK at once */
    RUDP_SENT_ACKED = 1u << 6,
    RUDP_SENT_LOST = 1u << 7,
    RUDP_SENT_URGENT = 1u << 8, /* carried the urgent mark (urgent.c) */
    RUDP_SENT_COPIED = 1u << 9, /* the next packet is its copy (conn_output.c) */
    RUDP_SENT_COPY = 1u << 10,  /* a copy of the previous packet's stream data */
    RUDP_SENT_PMTU_PROBE = 1u << 11, /* a padded PING of a size being tried (pmtu.c): its
                                        loss is no congestion, and carries nothing to resend */
};

typedef struct rudp_sent {
    uint64_t pn;
    rudp_time time_sent;
    uint64_t stream_off;
    uint32_t stream_len;
    uint32_t size; /* datagram bytes */
    uint16_t flags;
    uint8_t app_limited;
    uint64_t delivered;
    rudp_time delivered_time;
    rudp_time first_sent_time;
} rudp_sent;

typedef struct rudp_recovery_cb {
    void (*acked)(void *arg, const rudp_sent *s);
    void (*lost)(void *arg, const rudp_sent *s);
    void *arg;
} rudp_recovery_cb;

typedef struct rudp_recovery {
    const rudp_mem *mem; /* where ring comes from (alloc.h) */
    rudp_sent *ring;
    uint32_t cap, head, count; /* ring[head] is packet first_pn */
    uint64_t first_pn;
    uint64_t next_pn;
    uint64_t largest_acked;
    int has_acked;
    uint64_t bytes_in_flight;
    uint32_t eliciting_in_flight;
    uint32_t stream_in_flight;    /* ... of them carrying stream bytes or the FIN */
    rudp_time last_eliciting_sent;
    int last_eliciting_ack_now;   /* it asked for an immediate ACK */
    rudp_time loss_time;          /* 0: no packet awaits the time threshold */
    uint32_t pto_count;
    rudp_time pto_fired_at;       /* when the last probe timeout fired */
    rudp_time pto_first_at;       /* when the first of this run (pto_count 0 -> 1) fired */
    /* The probe timeout's floor (0: RUDP_PTO_MIN), set by the connection
     * before each deadline from what late.c learned of its peer. */
    rudp_time pto_floor;
    /* Set by each ACK processed: how long a packet sent before the first
     * probe timeout of the run took to be acknowledged, when that ACK
     * shows the timeout was in vain because the peer answered late (the
     * original arrived, and the probe was not what drew the answer);
     * else 0. The connection hands it to late.c. */
    rudp_time late;
    /* Set by each ACK processed: the RTT sample it gave, else 0; for
     * late.c: the time the answer took, less the peer's declared ACK delay
     * unless the packet asked for an ACK at once (recovery.c). */
    rudp_time sample;
    rudp_time first_sample_time;  /* 0 until the first RTT sample */
    /* delivery-rate state */
    uint64_t delivered;
    rudp_time delivered_time;
    rudp_time first_sent_time;
    uint64_t app_limited_until;   /* 0: not app-limited */
    uint64_t delivery_rate;       /* bytes/s of the last valid sample (TCP_INFO) */
    int delivery_app_limited;     /* that sample was app-limited */
    /* lifetime counters */
    uint64_t lost_packets;
    uint64_t pto_fired;
} rudp_recovery;

void rudp__recovery_init(rudp_recovery *r, const rudp_mem *mem);
void rudp__recovery_free(rudp_recovery *r);

/* Makes room to record one more packet. Returns 0 or -ENOMEM. */
int rudp__recovery_reserve(rudp_recovery *r);

/* The packet number the next rudp__recovery_on_sent() will record. */
static inline uint64_t rudp__recovery_next_pn(const rudp_recovery *r) { return r->next_pn; }

/* The record of packet pn while it is kept (sent, not yet forgotten), or NULL. */
const rudp_sent *rudp__recovery_sent(const rudp_recovery *r, uint64_t pn);

/*
 * Records a sent packet (after rudp__recovery_reserve succeeded); s->pn must
 * be rudp__recovery_next_pn(). Fills the delivery-rate fields, counts
 * in-flight bytes and tells the controller.
 */
void rudp__recovery_on_sent(rudp_recovery *r, rudp_cc *cc, rudp_time now, rudp_sent *s);

/*
 * Processes an ACK frame's ranges (descending, as decoded). Calls cb->acked
 * for each newly acknowledged packet and cb->lost for each packet the ACK
 * proves lost, updates the RTT estimate and the controller.
 * Returns the number of newly acknowledged packets, or -EPROTO when the ACK
 * names a packet number never sent (the caller should drop the packet).
 */
int rudp__recovery_on_ack(rudp_recovery *r, rudp_cc *cc, rudp_rtt *rtt, rudp_time now,
                         const rudp_ack_range *ranges, uint32_t n, rudp_time ack_delay,
                         rudp_time max_ack_delay, const rudp_recovery_cb *cb);

/*
 * When the loss-detection timer must fire: the time threshold of a packet
 * awaiting it, else the probe timeout after the last ack-eliciting packet
 * (at least r->pto_floor, or RUDP_PTO_MIN; backed off by 2^pto_count),
 * else RUDP_TIME_NEVER. The peer's max_ack_delay is replaced by
 * RUDP_ACK_SOON when that packet asked for a prompt ACK.
 */
rudp_time rudp__recovery_deadline(const rudp_recovery *r, const rudp_rtt *rtt,
                                 rudp_time max_ack_delay);

enum { RUDP_TIMEOUT_NONE = 0, RUDP_TIMEOUT_LOSS = 1, RUDP_TIMEOUT_PTO = 2 };

/* Runs the loss-detection timer at `now`; returns what it did. After
 * RUDP_TIMEOUT_PTO the caller sends one or two ack-eliciting probes. */
int rudp__recovery_on_timeout(rudp_recovery *r, rudp_cc *cc, const rudp_rtt *rtt, rudp_time now,
                             rudp_time max_ack_delay, const rudp_recovery_cb *cb);

/* The record of packet pn while it is kept (sent, and not yet dropped
 * once acknowledged or lost), else NULL. */
const rudp_sent *rudp__recovery_find(const rudp_recovery *r, uint64_t pn);

/* The oldest in-flight packet carrying stream data or FIN, or NULL. */
const rudp_sent *rudp__recovery_oldest_stream(const rudp_recovery *r);

/* Marks the connection app-limited until what is in flight is delivered. */
void rudp__recovery_set_app_limited(rudp_recovery *r);

#endif
