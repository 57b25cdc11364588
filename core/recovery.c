/* recovery.c: RFC 9002 loss detection over a ring of sent packets. */
#include "recovery.h"
#include "alloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "seq.h"

void rudp__recovery_init(rudp_recovery *r, const rudp_mem *mem)
{
    memset(r, 0, sizeof *r);
    r->mem = rudp__mem_or_libc(mem);
}

void rudp__recovery_free(rudp_recovery *r)
{
    rudp__free(r->mem, r->ring);
    r->ring = NULL;
    r->cap = r->count = 0;
}

static rudp_sent *at(const rudp_recovery *r, uint64_t pn)
{
    return &r->ring[(r->head + (uint32_t)(pn - r->first_pn)) % r->cap];
}

const rudp_sent *rudp__recovery_sent(const rudp_recovery *r, uint64_t pn)
{
    if (r->count == 0 || rudp__seq_lt(pn, r->first_pn) || !rudp__seq_lt(pn, r->first_pn + r->count))
        return NULL;
    return at(r, pn);
}

int rudp__recovery_reserve(rudp_recovery *r)
{
    if (r->count < r->cap)
        return 0;
    /* 16 records (1 KiB) first: a connection of small messages never
     * needs more, and 64 took a 4 KiB block per connection; a bulk flow
     * doubles its way up. */
    uint32_t cap = r->cap ? r->cap * 2 : 16;
    rudp_sent *ring = rudp__malloc(r->mem, (size_t)cap * sizeof *ring);
    if (!ring)
        return -ENOMEM;
    for (uint32_t i = 0; i < r->count; i++)
        ring[i] = r->ring[(r->head + i) % r->cap];
    rudp__free(r->mem, r->ring);
    r->ring = ring;
    r->cap = cap;
    r->head = 0;
    return 0;
}

/* Drops records at the head that need no more attention: acknowledged,
 * declared lost, or never in flight (ACK-only packets). */
static void pop_done(rudp_recovery *r)
{
    while (r->count) {
        const rudp_sent *s = &r->ring[r->head];
        if ((s->flags & RUDP_SENT_IN_FLIGHT) && !(s->flags & (RUDP_SENT_ACKED | RUDP_SENT_LOST)))
            break;
        r->head = (r->head + 1) % r->cap;
        r->count--;
        r->first_pn++;
    }
}

static uint32_t carries_stream(const rudp_sent *s)
{
    return s->stream_len || (s->flags & RUDP_SENT_FIN);
}

void rudp__recovery_on_sent(rudp_recovery *r, rudp_cc *cc, rudp_time now, rudp_sent *s)
{
    if (r->count == 0)
        r->first_pn = s->pn;
    s->time_sent = now;
    if (s->flags & RUDP_SENT_IN_FLIGHT) {
        if (r->bytes_in_flight == 0)
            r->first_sent_time = r->delivered_time = now;
        s->delivered = r->delivered;
        s->delivered_time = r->delivered_time;
        s->first_sent_time = r->first_sent_time;
        s->app_limited = r->app_limited_until != 0;
        r->bytes_in_flight += s->size;
        cc->ops->on_sent(cc, now, s->size, r->bytes_in_flight);
    }
    if (s->flags & RUDP_SENT_ACK_ELICITING) {
        r->eliciting_in_flight++;
        r->stream_in_flight += carries_stream(s);
        r->last_eliciting_sent = now;
        r->last_eliciting_ack_now = (s->flags & RUDP_SENT_ACK_NOW) != 0;
    }
    r->ring[(r->head + r->count) % r->cap] = *s;
    r->count++;
    r->next_pn = s->pn + 1;
    pop_done(r);
}

/* Takes a packet out of flight (acknowledged or lost). */
static void leave_flight(rudp_recovery *r, rudp_sent *s)
{
    if (s->flags & RUDP_SENT_IN_FLIGHT)
        r->bytes_in_flight -= s->size;
    if (s->flags & RUDP_SENT_ACK_ELICITING) {
        r->eliciting_in_flight--;
        r->stream_in_flight -= carries_stream(s);
    }
}

typedef struct loss_result {
    uint64_t bytes;
    rudp_time newest_sent;
    int persistent;
} loss_result;

/* What was lost, told to the controller, unless every lost packet was sent
 * before its epoch: before a move to another path (RFC 9002 §9.4), the
 * packets a blackout or a vanished address took say nothing of the new
 * path, and halving (or, persistent, collapsing) its fresh window for
 * them would crawl where the path is clear. */
static void lost_to_cc(rudp_cc *cc, rudp_time now, const loss_result *lost, uint64_t in_flight)
{
    if (!lost->bytes || lost->newest_sent < cc->epoch)
        return;
    cc->ops->on_loss(cc, now, lost->newest_sent, lost->bytes, in_flight);
    if (lost->persistent)
        cc->ops->on_persistent_congestion(cc, now);
}

/*
 * RFC 9002 §6.1 / A.10: packets below the largest acknowledged are lost when
 * kPacketThreshold newer packets were acknowledged, or when they were sent
 * longer than the time threshold ago; otherwise loss_time tells when to look
 * again. Also spots persistent congestion (§7.6): an unbroken run of lost
 * ack-eliciting packets spanning more than 3 PTOs.
 */
static loss_result detect_lost(rudp_recovery *r, const rudp_rtt *rtt, rudp_time now,
                               rudp_time max_ack_delay, const rudp_recovery_cb *cb)
{
    loss_result res = {0, 0, 0};
    r->loss_time = 0;
    if (!r->has_acked || r->count == 0)
        return res;
    rudp_time delay = rudp__rtt_loss_delay(rtt);
    rudp_time lost_before = now > delay ? now - delay : 0;
    rudp_time pc_span = RUDP_PERSISTENT_THRESHOLD * rudp__rtt_pto(rtt, max_ack_delay);
    rudp_time run_start = 0;
    int in_run = 0;

    uint64_t end = rudp__seq_min(r->largest_acked + 1, r->next_pn);
    for (uint64_t pn = r->first_pn; rudp__seq_lt(pn, end); pn++) {
        rudp_sent *s = at(r, pn);
        if (s->flags & RUDP_SENT_ACKED) {
            in_run = 0;
            continue;
        }
        if (!(s->flags & RUDP_SENT_IN_FLIGHT) || (s->flags & RUDP_SENT_LOST))
            continue;
        if (s->time_sent <= lost_before || r->largest_acked >= pn + RUDP_PACKET_THRESHOLD) {
            s->flags |= RUDP_SENT_LOST;
            leave_flight(r, s);
            if (s->flags & RUDP_SENT_PMTU_PROBE) {
                /* too large for the path, not congestion (RFC 9000 §14.4) */
                cb->lost(cb->arg, s);
                continue;
            }
            r->lost_packets++;
            res.bytes += s->size;
            if (s->time_sent > res.newest_sent)
                res.newest_sent = s->time_sent;
            if ((s->flags & RUDP_SENT_ACK_ELICITING) && r->first_sample_time &&
                s->time_sent > r->first_sample_time) {
                if (!in_run) {
                    in_run = 1;
                    run_start = s->time_sent;
                } else if (s->time_sent - run_start > pc_span) {
                    res.persistent = 1;
                }
            }
            cb->lost(cb->arg, s);
        } else {
            rudp_time t = s->time_sent + delay;
            if (r->loss_time == 0 || t < r->loss_time)
                r->loss_time = t;
        }
    }
    return res;
}

/*
 * Was the probe timeout that fired in vain, the peer live but late (a
 * user-space engine busy with thousands of connections answers tens of
 * milliseconds late)? Its sign: an ACK of a packet sent before the run's
 * first probe timeout that covers no packet sent since (a probe): the
 * original arrived (a lost one's data is acknowledged in the probe, a
 * packet of another number), and the peer answered it before it saw any
 * probe. An ACK that covers a probe too says nothing: on a lossy path the
 * original's ACK was lost and the probe drew the next one, however many
 * probes and backoffs that took (taken for lateness, each such ACK raised
 * the floor by its backoffs: t_loss_30pct took 121 s, not 18). Returns
 * how long the original took to be acknowledged (late.c raises the peer's
 * floor to more than it), else 0.
 */
static rudp_time late_answer(const rudp_recovery *r, rudp_time now, rudp_time orig_sent,
                             int probe_acked)
{
    if (!r->pto_count || probe_acked || orig_sent == RUDP_TIME_NEVER || now <= orig_sent)
        return 0;
    return now - orig_sent;
}

/* The RTT sample as late.c keeps it: the time the answer took, less the
 * ACK delay the peer declared (at most max_ack_delay) unless the packet
 * asked for an ACK at once: then the peer meant no delay, and what it
 * declares is how long it was busy, which is what late.c is for. */
static rudp_time late_sample(const rudp_sent *s, rudp_time latest, rudp_time ack_delay,
                             rudp_time max_ack_delay)
{
    if (s->flags & RUDP_SENT_ACK_NOW)
        return latest;
    rudp_time ad = ack_delay < max_ack_delay ? ack_delay : max_ack_delay;
    return latest > ad ? latest - ad : 1;
}

int rudp__recovery_on_ack(rudp_recovery *r, rudp_cc *cc, rudp_rtt *rtt, rudp_time now,
                         const rudp_ack_range *ranges, uint32_t n, rudp_time ack_delay,
                         rudp_time max_ack_delay, const rudp_recovery_cb *cb)
{
    if (n == 0)
        return 0;
    uint64_t largest = ranges[0].hi;
    if (!rudp__seq_lt(largest, r->next_pn))
        return -EPROTO; /* acknowledges a packet we never sent */

    if (!r->has_acked || rudp__seq_lt(r->largest_acked, largest)) {
        r->largest_acked = largest;
        r->has_acked = 1;
    }

    int newly = 0, any_eliciting = 0;
    uint64_t acked_bytes = 0;
    /* for r->late: the oldest newly acknowledged ack-eliciting packet sent
     * before this run's first probe timeout, and whether the ACK covers
     * one sent since (a probe) */
    rudp_time orig_sent = RUDP_TIME_NEVER;
    int probe_acked = 0;
    const rudp_sent *largest_new = NULL;
    rudp_sent largest_copy;
    /* delivery-rate sample over this ACK */
    uint64_t prior_delivered = 0;
    rudp_time send_elapsed = 0, ack_elapsed = 0;
    int have_prior = 0, rs_app_limited = 0;

    for (uint32_t i = 0; i < n; i++) {
        uint64_t lo = rudp__seq_max(ranges[i].lo, r->first_pn);
        uint64_t hi = ranges[i].hi;
        if (r->count == 0 || rudp__seq_lt(hi, lo))
            continue;
        for (uint64_t pn = hi + 1; pn-- > lo;) {
            if (!rudp__seq_lt(pn, r->first_pn + r->count))
                continue;
            rudp_sent *s = at(r, pn);
            if (s->flags & RUDP_SENT_ACKED)
                continue;
            int was_lost = (s->flags & RUDP_SENT_LOST) != 0;
            s->flags |= RUDP_SENT_ACKED;
            newly++;
            if (s->flags & RUDP_SENT_ACK_ELICITING) {
                any_eliciting = 1;
                if (r->pto_count && s->time_sent < r->pto_first_at) {
                    if (s->time_sent < orig_sent)
                        orig_sent = s->time_sent;
                } else if (r->pto_count) {
                    probe_acked = 1;
                }
            }
            if (!was_lost) {
                leave_flight(r, s);
                if (s->flags & RUDP_SENT_IN_FLIGHT) {
                    acked_bytes += s->size;
                    r->delivered += s->size;
                    r->delivered_time = now;
                    if (!have_prior || s->delivered > prior_delivered) {
                        have_prior = 1;
                        prior_delivered = s->delivered;
                        rs_app_limited = s->app_limited;
                        send_elapsed = s->time_sent - s->first_sent_time;
                        ack_elapsed = now - s->delivered_time;
                        r->first_sent_time = s->time_sent;
                    }
                }
            }
            if (!largest_new || s->pn > largest_new->pn) {
                largest_copy = *s;
                largest_new = &largest_copy;
            }
            cb->acked(cb->arg, s);
        }
    }
    r->late = r->sample = 0;
    if (!newly)
        return 0;
    r->late = late_answer(r, now, orig_sent, probe_acked);

    /* RFC 9002 §5.1: sample when the largest acknowledged is newly
     * acknowledged and at least one newly acknowledged packet is
     * ack-eliciting (the largest itself may be ACK-only in two-way
     * traffic; requiring more would starve the estimator). Not a packet
     * sent before the path's epoch (a move to another address reset the
     * estimate, path.c): its ACK, repeated after a blackout, would be the
     * first sample of the new path, the blackout's length (a 10 s sample
     * made the probe timeout 30 s: t_roam_readdr). */
    if (largest_new->pn == largest && any_eliciting && now >= largest_new->time_sent &&
        largest_new->time_sent >= cc->epoch) {
        rudp_time latest = now - largest_new->time_sent;
        rudp__rtt_update(rtt, latest, ack_delay, max_ack_delay);
        r->sample = late_sample(largest_new, latest, ack_delay, max_ack_delay);
        if (!r->first_sample_time)
            r->first_sample_time = now;
    }

    loss_result lost = detect_lost(r, rtt, now, max_ack_delay, cb);
    lost_to_cc(cc, now, &lost, r->bytes_in_flight);

    if (r->app_limited_until && r->delivered > r->app_limited_until)
        r->app_limited_until = 0;

    rudp_cc_ack a;
    memset(&a, 0, sizeof a);
    a.now = now;
    a.acked_bytes = acked_bytes;
    a.bytes_in_flight = r->bytes_in_flight;
    a.largest_sent_time = largest_new->time_sent;
    a.rtt = rtt;
    a.delivered = r->delivered;
    a.lost_bytes = lost.bytes;
    if (have_prior) {
        a.rs_delivered = r->delivered - prior_delivered;
        a.rs_interval = send_elapsed > ack_elapsed ? send_elapsed : ack_elapsed;
        a.rs_app_limited = rs_app_limited;
        /* An interval shorter than min_rtt is a compressed-ACK artefact. */
        if (rtt->has_sample && a.rs_interval < rtt->min)
            a.rs_interval = 0;
        if (a.rs_interval) {
            r->delivery_rate = (uint64_t)((unsigned __int128)a.rs_delivered * 1000000000ull /
                                          a.rs_interval);
            r->delivery_app_limited = a.rs_app_limited;
        }
    }
    if (acked_bytes)
        cc->ops->on_ack(cc, &a);

    r->pto_count = 0;
    pop_done(r);
    return newly;
}

rudp_time rudp__recovery_deadline(const rudp_recovery *r, const rudp_rtt *rtt,
                                 rudp_time max_ack_delay)
{
    if (r->loss_time)
        return r->loss_time;
    if (r->eliciting_in_flight == 0)
        return RUDP_TIME_NEVER;
    rudp_time ad = r->last_eliciting_ack_now ? rudp__ack_soon_delay(max_ack_delay) : max_ack_delay;
    rudp_time pto = rudp__rtt_pto(rtt, ad);
    rudp_time floor = r->pto_floor > RUDP_PTO_MIN ? r->pto_floor : RUDP_PTO_MIN;
    if (pto < floor)
        pto = floor;
    uint32_t shift = r->pto_count < 16 ? r->pto_count : 16;
    /* Backed off from the later of the last ack-eliciting packet and the
     * last timeout: the probe a timeout asks for is sent after the timer
     * is re-armed, and a timeout that fired late (the engine was busy)
     * would otherwise find its next deadline already past and fire again
     * at once, doubling the backoff with no probe sent (3,000 connections
     * opened at once counted ~3 timeouts each that way). */
    rudp_time base = r->last_eliciting_sent;
    if (r->pto_count && r->pto_fired_at > base)
        base = r->pto_fired_at;
    /* The backoff stops at RUDP_PTO_BACKOFF_MAX: after a blackout the path
     * is found again within it, not after minutes of doubling (a peer
     * gone for good is given up by user_timeout, not by the backoff). */
    rudp_time wait = pto << shift;
    rudp_time most = pto > RUDP_PTO_BACKOFF_MAX ? pto : RUDP_PTO_BACKOFF_MAX;
    /* With no stream byte in flight (a keepalive's PING, a window update:
     * nothing waits for the path's return), up to an eighth of the silence
     * so far, at most TCP's RTO ceiling: an idle connection to a peer gone
     * for the idle timeout's 15 minutes costs about 50 probes, not 900
     * (TCP's idle connection sends none). Bytes in flight
     * keep the second: a blackout's end is found within it. */
    if (r->pto_count && r->stream_in_flight == 0 && base > r->pto_first_at) {
        rudp_time eighth = (base - r->pto_first_at) / 8;
        if (eighth > RUDP_PTO_BACKOFF_CEIL)
            eighth = RUDP_PTO_BACKOFF_CEIL;
        if (eighth > most)
            most = eighth;
    }
    return base + (wait < most ? wait : most);
}

int rudp__recovery_on_timeout(rudp_recovery *r, rudp_cc *cc, const rudp_rtt *rtt, rudp_time now,
                             rudp_time max_ack_delay, const rudp_recovery_cb *cb)
{
    rudp_time deadline = rudp__recovery_deadline(r, rtt, max_ack_delay);
    if (deadline == RUDP_TIME_NEVER || now < deadline)
        return RUDP_TIMEOUT_NONE;
    if (r->loss_time) {
        loss_result lost = detect_lost(r, rtt, now, max_ack_delay, cb);
        lost_to_cc(cc, now, &lost, r->bytes_in_flight);
        pop_done(r);
        return RUDP_TIMEOUT_LOSS;
    }
    if (r->pto_count == 0)
        r->pto_first_at = now;
    r->pto_count++;
    r->pto_fired++;
    r->pto_fired_at = now;
    return RUDP_TIMEOUT_PTO;
}

const rudp_sent *rudp__recovery_find(const rudp_recovery *r, uint64_t pn)
{
    if (r->count == 0 || rudp__seq_lt(pn, r->first_pn) || !rudp__seq_lt(pn, r->first_pn + r->count))
        return NULL;
    return at(r, pn);
}

const rudp_sent *rudp__recovery_oldest_stream(const rudp_recovery *r)
{
    for (uint32_t i = 0; i < r->count; i++) {
        const rudp_sent *s = &r->ring[(r->head + i) % r->cap];
        if ((s->flags & RUDP_SENT_IN_FLIGHT) && !(s->flags & (RUDP_SENT_ACKED | RUDP_SENT_LOST)) &&
            (s->stream_len || (s->flags & RUDP_SENT_FIN)))
            return s;
    }
    return NULL;
}

void rudp__recovery_set_app_limited(rudp_recovery *r)
{
    uint64_t mark = r->delivered + r->bytes_in_flight;
    r->app_limited_until = mark ? mark : 1;
}
