/*
 * cc_newreno.c: NewReno as specified by RFC 9002 §7 and Appendix B:
 * slow start, congestion avoidance, one window reduction per recovery
 * period, persistent congestion collapses to the minimum window.
 */
#include "cc.h"

/* st[0]: bytes acked toward the next congestion-avoidance increase */
#define CA_ACC(cc) ((cc)->st[0])

static void nr_init(rudp_cc *cc, rudp_time now)
{
    (void)now;
    CA_ACC(cc) = 0;
}

static void nr_on_sent(rudp_cc *cc, rudp_time now, uint64_t bytes, uint64_t in_flight)
{
    (void)cc, (void)now, (void)bytes, (void)in_flight;
}

static int in_recovery(const rudp_cc *cc, rudp_time sent_time)
{
    return cc->recovery_start != 0 && sent_time <= cc->recovery_start;
}

static void nr_on_ack(rudp_cc *cc, const rudp_cc_ack *a)
{
    /* Recovery ends with the first packet sent after it began (§7.3.2). */
    cc->recovering = cc->recovering && in_recovery(cc, a->largest_sent_time);
    /* RFC 9002 §7.3.2: no increase for packets sent before recovery began;
     * §7.8: none while the sender is not using the window it has. */
    if (in_recovery(cc, a->largest_sent_time) || cc->app_limited)
        return;
    if (cc->cwnd < cc->ssthresh) {
        cc->cwnd += a->acked_bytes;
        return;
    }
    /* One MSS per window of acknowledged bytes. */
    CA_ACC(cc) += a->acked_bytes;
    while (CA_ACC(cc) >= cc->cwnd) {
        CA_ACC(cc) -= cc->cwnd;
        cc->cwnd += cc->mss;
    }
}

static void nr_on_loss(rudp_cc *cc, rudp_time now, rudp_time sent_time, uint64_t lost_bytes,
                       uint64_t in_flight)
{
    (void)lost_bytes, (void)in_flight;
    if (in_recovery(cc, sent_time))
        return; /* one reduction per round trip of losses */
    cc->recovery_start = now;
    cc->recovering = 1;
    cc->ssthresh = cc->cwnd / 2; /* kLossReductionFactor 0.5 */
    uint64_t minw = rudp__cc_min_window(cc->mss);
    if (cc->ssthresh < minw)
        cc->ssthresh = minw;
    cc->cwnd = cc->ssthresh;
    CA_ACC(cc) = 0;
}

static void nr_on_persistent_congestion(rudp_cc *cc, rudp_time now)
{
    (void)now;
    cc->cwnd = rudp__cc_min_window(cc->mss);
    cc->recovery_start = 0;
    cc->recovering = 0;
    CA_ACC(cc) = 0;
}

const rudp_cc_ops rudp__cc_newreno = {
    .name = "newreno",
    .init = nr_init,
    .on_sent = nr_on_sent,
    .on_ack = nr_on_ack,
    .on_loss = nr_on_loss,
    .on_persistent_congestion = nr_on_persistent_congestion,
    .phase = rudp__cc_loss_phase,
};
