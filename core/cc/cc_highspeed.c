/*
 * cc_highspeed.c: HighSpeed TCP (RFC 3649) as Linux runs it
 * (net/ipv4/tcp_highspeed.c): Reno up to 38 segments; past it, the larger
 * the window the more it adds per RTT (a(w)) and the less it takes off at
 * a loss (b(w)), from RFC 3649's table, so that a large window needs fewer
 * loss-free RTTs to regain its size.
 *
 * In congestion avoidance the window is placed in the table (the first
 * row whose w it does not exceed: Linux's ai), grows ai + 1 segments per
 * window acknowledged, and a loss takes b x cwnd off (at least two
 * segments left), b of the row last placed in (0.5 before avoidance).
 * Slow start is Reno's. Our terms: windows in bytes, a segment one MSS;
 * the increase counts acknowledged segments where Linux counts ACKs (the
 * same without delayed ACKs); one reduction per recovery period; no
 * growth while app-limited.
 */
#include "cc.h"

/* RFC 3649 Appendix B: w (segments) and b(w) x 256; a(w) is the row's
 * number, from 1. */
static const struct {
    uint32_t w, b;
} aimd[] = {
    {38, 128}, {118, 112}, {221, 104}, {347, 98}, {495, 93}, {663, 89},
    {851, 86}, {1058, 83}, {1284, 81}, {1529, 78}, {1793, 76}, {2076, 74},
    {2378, 72}, {2699, 71}, {3039, 69}, {3399, 68}, {3778, 66}, {4177, 65},
    {4596, 64}, {5036, 62}, {5497, 61}, {5979, 60}, {6483, 59}, {7009, 58},
    {7558, 57}, {8130, 56}, {8726, 55}, {9346, 54}, {9991, 53}, {10661, 52},
    {11358, 52}, {12082, 51}, {12834, 50}, {13614, 49}, {14424, 48}, {15265, 48},
    {16137, 47}, {17042, 46}, {17981, 45}, {18955, 45}, {19965, 44}, {21013, 43},
    {22101, 43}, {23230, 42}, {24402, 41}, {25618, 41}, {26881, 40}, {28193, 39},
    {29557, 39}, {30975, 38}, {32450, 38}, {33986, 37}, {35586, 36}, {37253, 36},
    {38992, 35}, {40808, 35}, {42707, 34}, {44694, 33}, {46776, 33}, {48961, 32},
    {51258, 32}, {53677, 31}, {56230, 30}, {58932, 30}, {61799, 29}, {64851, 28},
    {68113, 28}, {71617, 27}, {75401, 26}, {79517, 26}, {84035, 25}, {89053, 24},
};
#define AIMD_ROWS (sizeof aimd / sizeof aimd[0])

/* st[0]: the row (Linux's ai); st[1]: acked bytes x a(w) toward an MSS */
#define AI(cc) ((cc)->st[0])
#define CA_ACC(cc) ((cc)->st[1])

static void hs_init(rudp_cc *cc, rudp_time now)
{
    (void)now;
    AI(cc) = 0;
    CA_ACC(cc) = 0;
}

static void hs_on_ack(rudp_cc *cc, const rudp_cc_ack *a)
{
    cc->recovering = cc->recovering && rudp__cc_in_recovery(cc, a->largest_sent_time);
    if (rudp__cc_in_recovery(cc, a->largest_sent_time) || cc->app_limited)
        return;
    if (cc->cwnd < cc->ssthresh) {
        cc->cwnd += a->acked_bytes;
        return;
    }
    /* aimd[ai - 1].w < cwnd <= aimd[ai].w, in segments */
    uint64_t segs = cc->cwnd / cc->mss;
    while (AI(cc) < AIMD_ROWS - 1 && segs > aimd[AI(cc)].w)
        AI(cc)++;
    while (AI(cc) && segs <= aimd[AI(cc) - 1].w)
        AI(cc)--;
    /* cwnd += a(w) / cwnd per segment acknowledged */
    CA_ACC(cc) += (AI(cc) + 1) * a->acked_bytes;
    while (CA_ACC(cc) >= cc->cwnd) {
        CA_ACC(cc) -= cc->cwnd;
        cc->cwnd += cc->mss;
    }
}

static void hs_on_loss(rudp_cc *cc, rudp_time now, rudp_time sent_time, uint64_t lost_bytes,
                       uint64_t in_flight)
{
    (void)lost_bytes, (void)in_flight;
    if (rudp__cc_in_recovery(cc, sent_time))
        return;
    uint64_t segs = cc->cwnd / cc->mss;
    rudp__cc_cut_to(cc, now, (segs - ((segs * aimd[AI(cc)].b) >> 8)) * cc->mss);
    CA_ACC(cc) = 0;
}

static void hs_on_persistent_congestion(rudp_cc *cc, rudp_time now)
{
    (void)now;
    rudp__cc_collapse(cc);
    CA_ACC(cc) = 0;
}

const rudp_cc_ops rudp__cc_highspeed = {
    .name = "highspeed",
    .init = hs_init,
    .on_sent = rudp__cc_on_sent_none,
    .on_ack = hs_on_ack,
    .on_loss = hs_on_loss,
    .on_persistent_congestion = hs_on_persistent_congestion,
    .phase = rudp__cc_loss_phase,
};
