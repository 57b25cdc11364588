/*
 * cc_bic.c: BIC TCP (Xu, Harfoush and Rhee, "Binary Increase Congestion
 * Control for Fast, Long Distance Networks", INFOCOM 2004) as Linux runs
 * it (net/ipv4/tcp_bic.c): a binary search for the window of the last
 * loss (Wmax), then a probe past it.
 *
 * In congestion avoidance the window grows one segment per `cnt` segments
 * acknowledged (tcp_cong_avoid_ai), cnt from bictcp_update: Reno's (cnt =
 * cwnd) up to low_window (14); below Wmax, (Wmax - cwnd) / B (B = 4) more
 * a round trip, at most max_increment (16), at least cwnd / (cwnd x 20 / 4)
 * near Wmax (smooth_part); past Wmax the same steps again, slow near Wmax
 * and growing, up to 16 a round trip; before any loss at most 5% a round
 * trip (cnt at most 20). cnt is divided by the packets-per-ACK ratio
 * (delayed_ack, << 4, a moving average of 16 starting at 2), measured
 * outside recovery. A loss sets Wmax to the window (with fast
 * convergence, (1 + beta) / 2 of it if it is below the last Wmax) and
 * cuts to beta = 819/1024 of it (half up to low_window; at least two
 * segments). Persistent congestion (TCP_CA_Loss) resets the state.
 *
 * Our terms: windows in bytes, a segment one MSS (BIC's arithmetic in
 * whole segments, as Linux's); packets acknowledged are the ACK's bytes in
 * MSS (at least 1); one reduction per recovery period; no growth while
 * app-limited. Linux recomputes cnt at most every HZ/32 while the window
 * is unchanged; the inputs here change only with the window or the ACK
 * ratio, so it is recomputed on each ACK. initial_ssthresh is 0 (off) in
 * Linux's module, so slow start runs to the first loss, as Reno's.
 */
#include "cc.h"

#define BIC_BETA_SCALE 1024u
#define BIC_B 4u              /* BICTCP_B: binary search to (max + min) / B */
#define BIC_MAX_INCREMENT 16u /* the module's defaults */
#define BIC_LOW_WINDOW 14u
#define BIC_BETA 819u
#define BIC_SMOOTH_PART 20u
#define ACK_RATIO_SHIFT 4

/* st[0]: cnt; st[1]: last_max_cwnd (segments); st[2]: delayed_ack;
 * st[3]: bytes acked toward the next increase */
#define CNT(cc) ((cc)->st[0])
#define LAST_MAX(cc) ((cc)->st[1])
#define DELAYED_ACK(cc) ((cc)->st[2])
#define CA_ACC(cc) ((cc)->st[3])

static void reset(rudp_cc *cc)
{
    CNT(cc) = 0;
    LAST_MAX(cc) = 0;
    DELAYED_ACK(cc) = 2 << ACK_RATIO_SHIFT;
    CA_ACC(cc) = 0;
}

static void bic_init(rudp_cc *cc, rudp_time now)
{
    (void)now;
    reset(cc);
}

/* bictcp_update: segments acknowledged per one segment of increase. */
static uint64_t bic_cnt(const rudp_cc *cc, uint64_t cwnd)
{
    uint64_t max = LAST_MAX(cc), cnt;
    if (cwnd <= BIC_LOW_WINDOW)
        return cwnd; /* Linux returns before the ACK-ratio scaling here */
    if (cwnd < max) {
        uint64_t dist = (max - cwnd) / BIC_B;
        if (dist > BIC_MAX_INCREMENT)
            cnt = cwnd / BIC_MAX_INCREMENT; /* linear increase */
        else if (dist <= 1)
            cnt = cwnd * BIC_SMOOTH_PART / BIC_B; /* binary search, close */
        else
            cnt = cwnd / dist; /* binary search */
    } else if (cwnd < max + BIC_B) {
        cnt = cwnd * BIC_SMOOTH_PART / BIC_B; /* max probing, slow */
    } else if (cwnd < max + BIC_MAX_INCREMENT * (BIC_B - 1)) {
        cnt = cwnd * (BIC_B - 1) / (cwnd - max);
    } else {
        cnt = cwnd / BIC_MAX_INCREMENT; /* linear increase */
    }
    if (max == 0 && cnt > 20)
        cnt = 20; /* no loss yet: 5% a round trip */
    cnt = (cnt << ACK_RATIO_SHIFT) / DELAYED_ACK(cc);
    return cnt ? cnt : 1;
}

static void bic_on_ack(rudp_cc *cc, const rudp_cc_ack *a)
{
    cc->recovering = cc->recovering && rudp__cc_in_recovery(cc, a->largest_sent_time);
    if (rudp__cc_in_recovery(cc, a->largest_sent_time))
        return;
    if (a->acked_bytes) {
        /* bictcp_acked, in TCP_CA_Open: ratio = (15 ratio + sample) / 16 */
        uint64_t pkts = a->acked_bytes / cc->mss ? a->acked_bytes / cc->mss : 1;
        DELAYED_ACK(cc) += pkts - (DELAYED_ACK(cc) >> ACK_RATIO_SHIFT);
    }
    if (cc->app_limited)
        return;
    uint64_t acked = rudp__cc_slow_start(cc, a->acked_bytes);
    if (!acked)
        return;
    CNT(cc) = bic_cnt(cc, cc->cwnd / cc->mss);
    rudp__cc_avoid_ai(cc, &CA_ACC(cc), CNT(cc) * cc->mss, acked); /* tcp_cong_avoid_ai */
}

static void bic_on_loss(rudp_cc *cc, rudp_time now, rudp_time sent_time, uint64_t lost_bytes,
                        uint64_t in_flight)
{
    (void)lost_bytes, (void)in_flight;
    if (rudp__cc_in_recovery(cc, sent_time))
        return;
    /* bictcp_recalc_ssthresh: Wmax, with fast convergence */
    uint64_t w = cc->cwnd / cc->mss;
    if (w < LAST_MAX(cc))
        LAST_MAX(cc) = w * (BIC_BETA_SCALE + BIC_BETA) / (2 * BIC_BETA_SCALE);
    else
        LAST_MAX(cc) = w;
    uint64_t to = w <= BIC_LOW_WINDOW ? w / 2 : w * BIC_BETA / BIC_BETA_SCALE;
    rudp__cc_cut_to(cc, now, to * cc->mss);
    CA_ACC(cc) = 0;
}

static void bic_on_persistent_congestion(rudp_cc *cc, rudp_time now)
{
    (void)now;
    rudp__cc_collapse(cc);
    reset(cc); /* bictcp_state: TCP_CA_Loss */
}

void rudp__cc_bic_get_info(const rudp_cc *cc, rudp_cc_bic_info *out)
{
    out->cnt = CNT(cc);
    out->last_max_cwnd = LAST_MAX(cc);
    out->delayed_ack = DELAYED_ACK(cc);
}

const rudp_cc_ops rudp__cc_bic = {
    .name = "bic",
    .init = bic_init,
    .on_sent = rudp__cc_on_sent_none,
    .on_ack = bic_on_ack,
    .on_loss = bic_on_loss,
    .on_persistent_congestion = bic_on_persistent_congestion,
    .phase = rudp__cc_loss_phase,
};
