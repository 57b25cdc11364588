/*
 * cc_scalable.c: Scalable TCP (Kelly, "Scalable TCP: improving performance
 * in highspeed wide area networks", CCR 33(2), 2003) as Linux runs it
 * (net/ipv4/tcp_scalable.c): multiplicative increase and decrease, so the
 * time to recover from a loss does not grow with the window.
 *
 * In congestion avoidance the window grows one segment per
 * min(cwnd, 100) segments acknowledged (1% per RTT once past 100
 * segments, Reno's one per RTT below); a loss takes an eighth off
 * (cwnd - cwnd/8, at least two segments). Slow start is Reno's, and what
 * an ACK carries past ssthresh goes on to avoidance (tcp_slow_start's
 * return). Our terms: windows in bytes, a segment one MSS; one reduction
 * per recovery period; no growth while the application leaves the window
 * unused (tcp_is_cwnd_limited).
 */
#include "cc.h"

#define SCALABLE_AI_CNT 100u /* TCP_SCALABLE_AI_CNT */
#define SCALABLE_MD_SCALE 3  /* TCP_SCALABLE_MD_SCALE: an eighth off */

/* st[0]: bytes acked toward the next increase */
#define CA_ACC(cc) ((cc)->st[0])

static void sc_init(rudp_cc *cc, rudp_time now)
{
    (void)now;
    CA_ACC(cc) = 0;
}

static void sc_on_ack(rudp_cc *cc, const rudp_cc_ack *a)
{
    cc->recovering = cc->recovering && rudp__cc_in_recovery(cc, a->largest_sent_time);
    if (rudp__cc_in_recovery(cc, a->largest_sent_time) || cc->app_limited)
        return;
    uint64_t acked = rudp__cc_slow_start(cc, a->acked_bytes);
    /* tcp_cong_avoid_ai(tp, min(cwnd, 100), acked), in bytes */
    uint64_t segs = cc->cwnd / cc->mss;
    rudp__cc_avoid_ai(cc, &CA_ACC(cc), (segs < SCALABLE_AI_CNT ? segs : SCALABLE_AI_CNT) * cc->mss,
                     acked);
}

static void sc_on_loss(rudp_cc *cc, rudp_time now, rudp_time sent_time, uint64_t lost_bytes,
                       uint64_t in_flight)
{
    (void)lost_bytes, (void)in_flight;
    if (rudp__cc_in_recovery(cc, sent_time))
        return;
    uint64_t segs = cc->cwnd / cc->mss;
    rudp__cc_cut_to(cc, now, (segs - (segs >> SCALABLE_MD_SCALE)) * cc->mss);
    CA_ACC(cc) = 0;
}

static void sc_on_persistent_congestion(rudp_cc *cc, rudp_time now)
{
    (void)now;
    rudp__cc_collapse(cc);
    CA_ACC(cc) = 0;
}

const rudp_cc_ops rudp__cc_scalable = {
    .name = "scalable",
    .init = sc_init,
    .on_sent = rudp__cc_on_sent_none,
    .on_ack = sc_on_ack,
    .on_loss = sc_on_loss,
    .on_persistent_congestion = sc_on_persistent_congestion,
    .phase = rudp__cc_loss_phase,
};
