/*
 * The BBR-like controller (cc_bbr.c): its model and state machine driven
 * through the ops table with synthetic rounds of ACKs, then whole flows over
 * the simulated network (lib_sim): goodput under random loss, pacing, and
 * sharing a bottleneck with CUBIC.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cc.h"
#include "lib_sim.h"

#define T0 RUDP_SEC(1000)
#define MSS 1400u
#define RTT RUDP_MS(40)
#define BW 1250000ull /* 10 Mbit/s: 35 ACKs a round at 40 ms */

/* ---- a synthetic flow ---- */

/* Rounds of ACKs of one MSS each, with the counters recovery.c would give:
 * a packet acknowledged in round r was sent in answer to an ACK of round
 * r-1, so its P.delivered lies in that round, and every ACK is a
 * delivery-rate sample of exactly the bandwidth asked for. */
typedef struct drv {
    rudp_cc cc;
    rudp_rtt rtt;
    rudp_time now;
    uint64_t delivered;
    uint64_t prev_start, prev_n;
    void (*each)(struct drv *); /* called after every ACK, if set */
} drv;

typedef struct round_spec {
    uint64_t bw;         /* bytes/s each sample shows */
    rudp_time rtt;       /* every ACK's RTT sample */
    uint64_t inflight;   /* bytes in flight throughout */
    int loss_every;      /* declare a packet lost before every Nth ACK; 0: none */
    int app_limited;
    uint64_t acks;       /* 0: bw * rtt / MSS (at least 2) */
    uint64_t burst;      /* ACKs arrive in groups of this many at one instant */
} round_spec;

static void drv_init(drv *d)
{
    memset(d, 0, sizeof *d);
    rudp__cc_setup(&d->cc, &rudp__cc_bbr, MSS, T0);
    rudp__rtt_init(&d->rtt, RUDP_MS(100));
    d->now = T0;
}

static void drv_round(drv *d, const round_spec *r)
{
    uint64_t n = r->acks ? r->acks : r->bw * r->rtt / RUDP_SEC(1) / MSS;
    if (n < 2 && !r->acks)
        n = 2;
    uint64_t burst = r->burst ? r->burst : 1;
    uint64_t start = d->delivered;
    d->cc.ops->on_sent(&d->cc, d->now, MSS, r->inflight);
    for (uint64_t j = 1; j <= n; j++) {
        if ((j - 1) % burst == 0)
            d->now += r->rtt / n * burst;
        uint64_t lost = 0;
        if (r->loss_every && j % (uint64_t)r->loss_every == 0) {
            lost = MSS;
            d->cc.ops->on_loss(&d->cc, d->now, d->now - r->rtt, lost, r->inflight);
        }
        uint64_t prior = d->prev_n ? d->prev_start + ((j - 1) * d->prev_n / n + 1) * MSS : 0;
        d->delivered += MSS;
        rudp__rtt_update(&d->rtt, r->rtt, 0, 0);
        rudp_cc_ack a;
        memset(&a, 0, sizeof a);
        a.now = d->now;
        a.acked_bytes = MSS;
        a.bytes_in_flight = r->inflight;
        a.largest_sent_time = d->now - r->rtt;
        a.rtt = &d->rtt;
        a.delivered = d->delivered;
        a.rs_delivered = d->delivered - prior;
        a.rs_interval = (rudp_time)(a.rs_delivered * RUDP_SEC(1) / r->bw);
        a.rs_app_limited = r->app_limited;
        a.lost_bytes = lost;
        d->cc.ops->on_ack(&d->cc, &a);
        if (d->each)
            d->each(d);
    }
    d->prev_start = start;
    d->prev_n = n;
}

static rudp_cc_bbr_info info(const drv *d)
{
    rudp_cc_bbr_info i;
    rudp__cc_bbr_get_info(&d->cc, &i);
    return i;
}

static uint64_t bdp(uint64_t bw, rudp_time rtt) { return bw * rtt / RUDP_SEC(1); }

static round_spec steady(uint64_t bw)
{
    /* 1.3 BDP in flight: enough for the 1.25 probe to end on time */
    round_spec r = {.bw = bw, .rtt = RTT, .inflight = bdp(bw, RTT) * 13 / 10};
    return r;
}

/* STARTUP at `bw` until the plateau, DRAIN, then PROBE_BW. */
static void to_probe_bw(drv *d, uint64_t bw)
{
    round_spec r = steady(bw);
    r.inflight = bdp(bw, RTT); /* lets DRAIN end as soon as it starts */
    for (int i = 0; i < 20 && info(d).mode != RUDP_BBR_PROBE_BW; i++)
        drv_round(d, &r);
    cr_assert(eq(int, info(d).mode, RUDP_BBR_PROBE_BW));
}

static uint64_t rate_at(uint64_t bw, uint32_t gain_x1000)
{
    return bw * gain_x1000 / 1000 * 990 / 1000; /* with the 1% margin */
}

/* ---- STARTUP, DRAIN, PROBE_BW ---- */

Test(bbr, startup_paces_at_2_89_times_the_bandwidth_and_ends_after_three_flat_rounds,
     .timeout = 10)
{
    drv d;
    drv_init(&d);
    cr_assert(eq(int, info(&d).mode, RUDP_BBR_STARTUP));
    round_spec r = {.rtt = RTT, .inflight = 10 * bdp(8 * BW, RTT)};
    for (uint64_t bw = BW; bw <= 8 * BW; bw *= 2) {
        r.bw = bw;
        drv_round(&d, &r);
        cr_assert(eq(int, info(&d).mode, RUDP_BBR_STARTUP));
        cr_assert(eq(u32, info(&d).pacing_gain, 2885));
        cr_assert(eq(u64, info(&d).btlbw, bw));
        uint64_t want = rate_at(bw, 2885);
        cr_assert(d.cc.pacing_rate >= want - 2 && d.cc.pacing_rate <= want + 2,
                  "pacing %llu, want %llu", (unsigned long long)d.cc.pacing_rate,
                  (unsigned long long)want);
    }
    /* The estimate stops growing. Rounds are judged at their first ACK:
     * the last round at 8 BW set the plateau level, the next two starts
     * find no 25% growth ... */
    for (int i = 0; i < 2; i++) {
        drv_round(&d, &r);
        cr_assert(eq(int, info(&d).mode, RUDP_BBR_STARTUP), "flat round %d", i + 1);
        cr_assert(not(info(&d).full_bw_reached));
    }
    /* ... and the third such start finds the pipe full. */
    r.acks = 2;
    drv_round(&d, &r);
    cr_assert(info(&d).full_bw_reached);
    cr_assert(eq(int, info(&d).mode, RUDP_BBR_DRAIN));
}

Test(bbr, drain_paces_under_the_bandwidth_until_in_flight_is_one_bdp_then_probes_bw,
     .timeout = 10)
{
    drv d;
    drv_init(&d);
    round_spec r = {.bw = BW, .rtt = RTT, .inflight = 3 * bdp(BW, RTT)};
    for (int i = 0; i < 5; i++)
        drv_round(&d, &r);
    cr_assert(eq(int, info(&d).mode, RUDP_BBR_DRAIN));
    cr_assert(eq(u32, info(&d).pacing_gain, 347));
    uint64_t want = rate_at(BW, 347);
    cr_assert(d.cc.pacing_rate >= want - 2 && d.cc.pacing_rate <= want + 2);
    drv_round(&d, &r); /* still 3 BDP in flight */
    cr_assert(eq(int, info(&d).mode, RUDP_BBR_DRAIN));
    r.inflight = bdp(BW, RTT);
    r.acks = 1;
    drv_round(&d, &r);
    cr_assert(eq(int, info(&d).mode, RUDP_BBR_PROBE_BW));
    cr_assert(eq(u32, info(&d).cwnd_gain, 2000));
    cr_assert(ne(u32, info(&d).cycle_idx, 1), "never starts in the 0.75 phase");
}

static const uint32_t gains[8] = {1250, 750, 1000, 1000, 1000, 1000, 1000, 1000};
static struct {
    uint32_t idx;
    rudp_time since;
    int changes, seen[8];
} cyc;

static void watch_cycle(drv *d)
{
    rudp_cc_bbr_info in = info(d);
    cr_assert(eq(u32, in.pacing_gain, gains[in.cycle_idx]));
    if (in.cycle_idx == cyc.idx)
        return;
    cr_assert(eq(u32, in.cycle_idx, (cyc.idx + 1) % 8), "phases go in order");
    if (cyc.since) { /* the phase in progress at the start is partial */
        cr_assert(gt(u64, d->now - cyc.since, RTT), "a phase lasts a min_rtt");
        cr_assert(le(u64, d->now - cyc.since, RTT + RTT / 35 + 1), "and not longer");
    }
    cyc.idx = in.cycle_idx;
    cyc.since = d->now;
    cyc.seen[cyc.idx] = 1;
    cyc.changes++;
}

Test(bbr, probe_bw_cycles_1_25_then_0_75_then_six_phases_at_1_each_a_min_rtt, .timeout = 10)
{
    drv d;
    drv_init(&d);
    to_probe_bw(&d, BW);
    memset(&cyc, 0, sizeof cyc);
    cyc.idx = info(&d).cycle_idx;
    d.each = watch_cycle;
    round_spec r = steady(BW);
    for (int i = 0; i < 24; i++)
        drv_round(&d, &r);
    cr_assert(ge(int, cyc.changes, 20));
    for (int i = 0; i < 8; i++)
        cr_assert(cyc.seen[i], "phase %d visited", i);
}

Test(bbr, probe_phase_lasts_until_in_flight_reaches_1_25_bdp_or_loss_shows, .timeout = 10)
{
    drv d;
    drv_init(&d);
    to_probe_bw(&d, BW);
    round_spec r = steady(BW);
    for (int i = 0; i < 16 && info(&d).cycle_idx != 0; i++)
        drv_round(&d, &r);
    cr_assert(eq(u32, info(&d).cycle_idx, 0));
    r.inflight = bdp(BW, RTT); /* the extra in-flight never materialises */
    for (int i = 0; i < 3; i++)
        drv_round(&d, &r);
    cr_assert(eq(u32, info(&d).cycle_idx, 0), "still probing");
    r.loss_every = 30;
    drv_round(&d, &r);
    cr_assert(eq(u32, info(&d).cycle_idx, 1), "a loss ends the probe");
}

/* ---- the model's filters ---- */

Test(bbr, btlbw_is_the_max_delivery_rate_of_the_last_ten_rounds, .timeout = 10)
{
    drv d;
    drv_init(&d);
    to_probe_bw(&d, BW);
    round_spec hi = steady(2 * BW), lo = steady(BW);
    hi.acks = lo.acks = 35;
    drv_round(&d, &hi);
    cr_assert(eq(u64, info(&d).btlbw, 2 * BW));
    for (int i = 0; i < 9; i++) {
        drv_round(&d, &lo);
        cr_assert(eq(u64, info(&d).btlbw, 2 * BW), "round %d after the peak", i + 1);
    }
    for (int i = 0; i < 3; i++)
        drv_round(&d, &lo);
    cr_assert(eq(u64, info(&d).btlbw, BW), "the peak aged out");
}

Test(bbr, app_limited_samples_raise_the_estimate_but_never_lower_it, .timeout = 10)
{
    drv d;
    drv_init(&d);
    to_probe_bw(&d, 2 * BW);
    round_spec r = steady(BW);
    r.app_limited = 1;
    r.acks = 35;
    for (int i = 0; i < 15; i++)
        drv_round(&d, &r);
    cr_assert(eq(u64, info(&d).btlbw, 2 * BW), "app-limited lows do not count");
    r.bw = 3 * BW;
    drv_round(&d, &r);
    cr_assert(eq(u64, info(&d).btlbw, 3 * BW), "an app-limited high does");
}

/* RTT samples a standing queue above RTprop: RTprop + 1/8 (its tolerance
 * is 1/16). */
#define QUEUED_RTT (RTT + RTT / 8)

Test(bbr, probe_rtt_after_10_s_without_a_lower_rtt_then_back_with_the_window, .timeout = 10)
{
    drv d;
    drv_init(&d);
    to_probe_bw(&d, BW);
    rudp_time stamp = d.now; /* RTprop's last confirmation */
    round_spec r = steady(BW);
    r.rtt = QUEUED_RTT;
    while (d.now < stamp + RUDP_SEC(10) - RTT) {
        drv_round(&d, &r);
        cr_assert(ne(int, info(&d).mode, RUDP_BBR_PROBE_RTT));
    }
    uint64_t cwnd = d.cc.cwnd;
    cr_assert(ge(u64, cwnd, 2 * bdp(BW, RTT)));
    drv_round(&d, &r);
    drv_round(&d, &r);
    cr_assert(eq(int, info(&d).mode, RUDP_BBR_PROBE_RTT));
    /* v2's level: half a BDP (here more than 4 packets) of the RTprop
     * that expired, not of the queued sample at hand */
    cr_assert(eq(u64, info(&d).min_rtt, RTT));
    cr_assert(eq(u64, d.cc.cwnd, bdp(BW, RTT) / 2));
    cr_assert(eq(u32, info(&d).pacing_gain, 1000));
    /* In-flight falls to that level; 200 ms and a round later it is over.
     * The samples stay at QUEUED_RTT: the path's RTT grew for good, and
     * the probe's lowest sample becomes RTprop. */
    r.inflight = bdp(BW, RTT) / 2;
    rudp_time low = d.now;
    while (info(&d).mode == RUDP_BBR_PROBE_RTT && d.now < low + RUDP_SEC(1)) {
        drv_round(&d, &r);
    }
    cr_assert(eq(int, info(&d).mode, RUDP_BBR_PROBE_BW));
    /* The samples do not fall (no queue of ours drains): no longer than
     * 200 ms and a round. */
    cr_assert(ge(u64, d.now - low, RUDP_MS(200)));
    cr_assert(le(u64, d.now - low, RUDP_MS(200) + 3 * RTT));
    cr_assert(eq(u64, info(&d).min_rtt, QUEUED_RTT));
    cr_assert(ge(u64, d.cc.cwnd, cwnd), "the window comes back");
}

/* A standing queue of our own (bench B18: a cellular link whose rate fell
 * under a 2-BDP window) makes RTprop expire with samples 16x RTprop. v1
 * took such a sample as RTprop at once; with PROBE_RTT's level at half a
 * BDP, a BDP of that RTT drained nothing and the window after the probe was
 * 16x too big. The expired RTprop sets the level, the probe lasts while
 * the queue drains, and RTprop comes back from the drained samples. */
Test(bbr, probe_rtt_drains_a_queue_that_inflated_the_rtt_samples, .timeout = 10)
{
    drv d;
    drv_init(&d);
    to_probe_bw(&d, BW);
    rudp_time stamp = d.now;
    round_spec r = steady(BW);
    r.rtt = 16 * RTT;
    r.acks = 35;
    r.inflight = 16 * bdp(BW, RTT);
    while (d.now < stamp + RUDP_SEC(10) + 2 * r.rtt && info(&d).mode != RUDP_BBR_PROBE_RTT)
        drv_round(&d, &r);
    cr_assert(eq(int, info(&d).mode, RUDP_BBR_PROBE_RTT));
    cr_assert(eq(u64, info(&d).min_rtt, RTT), "the queued sample is not RTprop");
    cr_assert(le(u64, d.cc.cwnd, bdp(BW, RTT) / 2 + MSS), "the level: half a BDP of RTprop");
    /* The link's rate fell under the probe: at the level, the queue takes
     * longer than PROBE_RTT's 200 ms to drain; the samples fall round by
     * round, and the probe goes on while they do. */
    r.inflight = bdp(BW, RTT) / 2;
    rudp_time low = d.now;
    static const uint32_t falling[] = {8, 6, 4, 3, 2};
    for (size_t i = 0; i < sizeof falling / sizeof falling[0]; i++) {
        r.rtt = falling[i] * RTT;
        drv_round(&d, &r);
        cr_assert(eq(int, info(&d).mode, RUDP_BBR_PROBE_RTT), "at %.0f ms",
                  (double)(d.now - low) / 1e6);
    }
    cr_assert(gt(u64, d.now - low, RUDP_MS(200) + 2 * RTT));
    /* Drained: the samples are back at RTT (within the tolerance). */
    r.rtt = RTT + RTT / 20;
    while (info(&d).mode == RUDP_BBR_PROBE_RTT && d.now < low + RUDP_SEC(2))
        drv_round(&d, &r);
    cr_assert(eq(int, info(&d).mode, RUDP_BBR_PROBE_BW));
    cr_assert(le(u64, d.now - low, RUDP_MS(1000) + 3 * RTT), "within the 800 ms more");
    cr_assert(eq(u64, info(&d).min_rtt, RTT));
    r = steady(BW);
    for (int i = 0; i < 3; i++)
        drv_round(&d, &r);
    /* 2 BDP and the aggregation allowance (at most 100 ms of BtlBw) */
    cr_assert(le(u64, d.cc.cwnd, 2 * bdp(BW, RTT) + bdp(BW, RUDP_MS(100)) + MSS));
}

Test(bbr, a_lower_rtt_sample_postpones_probe_rtt, .timeout = 10)
{
    drv d;
    drv_init(&d);
    to_probe_bw(&d, BW);
    round_spec r = steady(BW);
    while (d.now < T0 + RUDP_SEC(5))
        drv_round(&d, &r);
    r.rtt = RTT - RUDP_MS(1);
    drv_round(&d, &r);
    cr_assert(eq(u64, info(&d).min_rtt, RTT - RUDP_MS(1)));
    r.rtt = QUEUED_RTT;
    rudp_time lowered = d.now;
    while (d.now < lowered + RUDP_SEC(10) - 2 * RTT) {
        drv_round(&d, &r);
        cr_assert(ne(int, info(&d).mode, RUDP_BBR_PROBE_RTT), "at %.2f s",
                  (double)(d.now - T0) / 1e9);
    }
    while (d.now < lowered + RUDP_SEC(10) + 2 * RTT && info(&d).mode != RUDP_BBR_PROBE_RTT)
        drv_round(&d, &r);
    cr_assert(eq(int, info(&d).mode, RUDP_BBR_PROBE_RTT));
    /* While PROBE_RTT measures it again, the expired RTprop stays. */
    cr_assert(eq(u64, info(&d).min_rtt, RTT - RUDP_MS(1)));
}

/* A flow that keeps no standing queue sees RTprop again and again, within
 * the tolerance: that confirms it, and no PROBE_RTT comes to show it. */
Test(bbr, samples_within_a_sixteenth_of_rtprop_confirm_it_and_no_probe_rtt_comes, .timeout = 10)
{
    drv d;
    drv_init(&d);
    to_probe_bw(&d, BW);
    round_spec r = steady(BW);
    r.rtt = RTT + RTT / 20; /* serialisation and ACK timing noise */
    while (d.now < T0 + RUDP_SEC(30)) {
        drv_round(&d, &r);
        cr_assert(ne(int, info(&d).mode, RUDP_BBR_PROBE_RTT), "at %.2f s",
                  (double)(d.now - T0) / 1e9);
    }
    cr_assert(eq(u64, info(&d).min_rtt, RTT), "RTprop itself is unchanged");
    /* The same flow once a queue stands (RTprop + 1/8): PROBE_RTT within
     * 10 s of the last confirmation. */
    r.rtt = QUEUED_RTT;
    rudp_time queued = d.now;
    while (d.now < queued + RUDP_SEC(10) + 2 * RTT && info(&d).mode != RUDP_BBR_PROBE_RTT)
        drv_round(&d, &r);
    cr_assert(eq(int, info(&d).mode, RUDP_BBR_PROBE_RTT));
    cr_assert(ge(u64, d.now - queued, RUDP_SEC(10) - 2 * RTT));
}

Test(bbr, cwnd_is_twice_the_bdp_plus_ack_aggregation_and_at_least_four_packets, .timeout = 10)
{
    drv d;
    drv_init(&d);
    to_probe_bw(&d, BW);
    round_spec r = steady(BW);
    for (int i = 0; i < 12; i++)
        drv_round(&d, &r);
    uint64_t two_bdp = 2 * bdp(BW, RTT);
    cr_assert(ge(u64, d.cc.cwnd, two_bdp));
    cr_assert(le(u64, d.cc.cwnd, two_bdp + 3 * MSS), "cwnd %llu, 2 BDP %llu",
              (unsigned long long)d.cc.cwnd, (unsigned long long)two_bdp);
    /* The same rate, its ACKs arriving 7 at a time (a round in 5 bursts). */
    drv agg;
    drv_init(&agg);
    to_probe_bw(&agg, BW);
    r.burst = 7;
    for (int i = 0; i < 12; i++)
        drv_round(&agg, &r);
    cr_assert(ge(u64, agg.cc.cwnd, two_bdp + 5 * MSS), "aggregation allowance: cwnd %llu",
              (unsigned long long)agg.cc.cwnd);
    cr_assert(le(u64, agg.cc.cwnd, two_bdp + 8 * MSS), "about one burst: cwnd %llu",
              (unsigned long long)agg.cc.cwnd);
    /* A tiny BDP still keeps four packets. */
    drv small;
    drv_init(&small);
    to_probe_bw(&small, 10000);
    cr_assert(eq(u64, small.cc.cwnd, 4 * MSS));
}

Test(bbr, persistent_congestion_drops_to_four_packets)
{
    drv d;
    drv_init(&d);
    d.cc.ops->on_persistent_congestion(&d.cc, T0);
    cr_assert(eq(u64, d.cc.cwnd, 4 * MSS));
}

/* ---- loss: random versus congestion ---- */

Test(bbr, random_loss_without_a_queue_keeps_the_window_and_paces_1_over_1_minus_p_faster,
     .timeout = 10)
{
    drv a, b;
    drv_init(&a);
    drv_init(&b);
    to_probe_bw(&a, BW);
    to_probe_bw(&b, BW);
    round_spec clean = steady(BW), lossy = steady(BW);
    clean.acks = lossy.acks = 350;
    clean.bw = lossy.bw = 10 * BW;
    clean.inflight = lossy.inflight = 13 * bdp(10 * BW, RTT) / 10;
    lossy.loss_every = 20; /* 5% */
    for (int i = 0; i < 60; i++) {
        drv_round(&a, &clean);
        drv_round(&b, &lossy);
        cr_assert(eq(u64, b.cc.cwnd, a.cc.cwnd), "round %d", i);
        cr_assert(ge(u64, b.cc.pacing_rate, a.cc.pacing_rate), "round %d", i);
    }
    rudp_cc_bbr_info ia = info(&a), ib = info(&b);
    cr_assert(eq(int, ib.mode, ia.mode));
    cr_assert(eq(u64, ib.btlbw, ia.btlbw));
    cr_assert(eq(u64, ib.inflight_hi, UINT64_MAX), "no congestion cap");
    cr_assert(eq(u32, ia.loss_ppm, 0));
    cr_assert(ib.loss_ppm > 40000 && ib.loss_ppm < 60000, "loss estimate %u ppm", ib.loss_ppm);
    double ratio = (double)b.cc.pacing_rate / (double)a.cc.pacing_rate;
    double want = 1e6 / (1e6 - ib.loss_ppm);
    cr_assert(ratio > want - 0.001 && ratio < want + 0.001, "ratio %.4f, want %.4f", ratio, want);
}

/* Steady PROBE_BW at 100 Mbit/s, then a round with a standing queue. */
static void congested_round(drv *d, rudp_time rtt, int loss_every)
{
    round_spec q = steady(10 * BW);
    q.inflight = 13 * bdp(10 * BW, RTT) / 10;
    q.rtt = rtt;
    q.loss_every = loss_every;
    drv_round(d, &q);
}

Test(bbr, loss_with_a_standing_queue_caps_in_flight_at_0_7_once_per_episode, .timeout = 10)
{
    drv d;
    drv_init(&d);
    to_probe_bw(&d, 10 * BW);
    uint64_t inflight = 13 * bdp(10 * BW, RTT) / 10;
    /* Queue of 8 ms, under max(min_rtt / 4, 2 ms) = 10 ms: not standing. */
    congested_round(&d, RTT + RUDP_MS(8), 100);
    congested_round(&d, RTT, 0);
    cr_assert(eq(u64, info(&d).inflight_hi, UINT64_MAX));
    /* 15 ms through a whole round, with loss: congestion. */
    congested_round(&d, RTT + RUDP_MS(15), 100);
    round_spec one = steady(10 * BW);
    one.acks = 1;
    one.inflight = inflight;
    drv_round(&d, &one); /* the next round's first ACK judges it */
    cr_assert(eq(u64, info(&d).inflight_hi, inflight * 7 / 10));
    cr_assert(le(u64, d.cc.cwnd, inflight * 7 / 10));
    cr_assert(eq(int, info(&d).mode, RUDP_BBR_PROBE_BW));
    cr_assert(eq(u64, info(&d).btlbw, 10 * BW), "the model is untouched");
    cr_assert(eq(u64, d.cc.pacing_rate, rate_at(10 * BW, info(&d).pacing_gain)),
              "so is the pacing rate");
    /* Losses of packets sent before the cut are the same episode: no
     * second cut (the cap even grows, along CUBIC's curve from the cut). */
    congested_round(&d, RTT + RUDP_MS(15), 100); /* its losses were sent an RTT ago */
    drv_round(&d, &one);
    cr_assert(ge(u64, info(&d).inflight_hi, inflight * 7 / 10));
    /* A lossy round of packets sent after the cut, at the cap, is a new
     * episode. */
    uint64_t before = info(&d).inflight_hi;
    round_spec q = steady(10 * BW);
    q.rtt = RTT + RUDP_MS(15);
    q.inflight = before;
    q.loss_every = 100;
    drv_round(&d, &q);
    one.inflight = before;
    drv_round(&d, &one);
    cr_assert(eq(u64, info(&d).inflight_hi, before * 7 / 10));
}

Test(bbr, heavy_loss_without_a_queue_counts_as_congestion_moderate_loss_does_not,
     .timeout = 10)
{
    drv d;
    drv_init(&d);
    to_probe_bw(&d, 10 * BW);
    congested_round(&d, RTT, 10); /* 10% over 357 packets, no queue */
    congested_round(&d, RTT, 0);
    cr_assert(eq(u64, info(&d).inflight_hi, UINT64_MAX));
    congested_round(&d, RTT, 5); /* 20% */
    congested_round(&d, RTT, 0);
    cr_assert(ne(u64, info(&d).inflight_hi, UINT64_MAX));
}

Test(bbr, cap_grows_by_doubling_steps_once_the_queue_is_gone, .timeout = 10)
{
    drv d;
    drv_init(&d);
    to_probe_bw(&d, 10 * BW);
    congested_round(&d, RTT + RUDP_MS(15), 100);
    uint64_t cap[8];
    round_spec r = steady(10 * BW);
    for (int i = 0; i < 8; i++) {
        /* Held by the cap (in flight at it), no queue, no loss. */
        r.inflight = info(&d).inflight_hi;
        drv_round(&d, &r);
        cap[i] = info(&d).inflight_hi;
    }
    cr_assert(ne(u64, cap[0], UINT64_MAX));
    /* Each round judged adds twice what the one before added. */
    int k = 0;
    while (k < 7 && cap[k + 1] == cap[k])
        k++;
    cr_assert(le(int, k, 1));
    cr_assert(eq(u64, cap[k + 1] - cap[k], MSS));
    for (int i = k + 1; i < 7; i++)
        cr_assert(eq(u64, cap[i + 1] - cap[i], 2 * (cap[i] - cap[i - 1])), "round %d", i);
}

Test(bbr, cap_grows_along_cubics_curve_while_a_queue_stands, .timeout = 10)
{
    drv d;
    drv_init(&d);
    to_probe_bw(&d, 10 * BW);
    uint64_t wmax = 13 * bdp(10 * BW, RTT) / 10;
    congested_round(&d, RTT + RUDP_MS(15), 100);
    round_spec r = steady(10 * BW);
    r.acks = 1;
    drv_round(&d, &r); /* the cut */
    double k = rudp__cc_cbrt(0.3 * (double)wmax / (0.4 * MSS));
    uint64_t prev = info(&d).inflight_hi;
    rudp_time start = d.now;
    r = steady(10 * BW);
    r.rtt = RTT + RUDP_MS(15); /* the queue stands, nothing is lost */
    int below_half = 0;
    while (d.now < start + (rudp_time)((k + 1) * 1e9)) {
        r.inflight = info(&d).inflight_hi;
        drv_round(&d, &r);
        uint64_t hi = info(&d).inflight_hi;
        cr_assert(ge(u64, hi, prev + MSS / 2), "at least half a packet a round");
        if (d.now < start + (rudp_time)(k / 2 * 1e9) && hi < wmax)
            below_half = 1;
        prev = hi;
    }
    cr_assert(below_half, "concave: still under W_max halfway to K");
    cr_assert(ge(u64, prev, wmax), "back at W_max after K = %.2f s", k);
    cr_assert(le(u64, prev, wmax * 11 / 10), "not far past it a second later");
}

Test(bbr, startup_ends_on_a_congested_round, .timeout = 10)
{
    drv d;
    drv_init(&d);
    round_spec r = {.rtt = RTT, .inflight = 10 * bdp(8 * BW, RTT)};
    for (uint64_t bw = BW; bw <= 4 * BW; bw *= 2) {
        r.bw = bw;
        drv_round(&d, &r);
    }
    cr_assert(eq(int, info(&d).mode, RUDP_BBR_STARTUP));
    r.bw = 8 * BW;
    r.rtt = RTT + RUDP_MS(20);
    r.loss_every = 50;
    drv_round(&d, &r);
    r.acks = 1;
    r.loss_every = 0;
    drv_round(&d, &r);
    cr_assert(info(&d).full_bw_reached);
    cr_assert(eq(int, info(&d).mode, RUDP_BBR_DRAIN));
    cr_assert(ne(u64, info(&d).inflight_hi, UINT64_MAX));
}

Test(bbr, is_found_by_name)
{
    cr_assert(eq(ptr, (void *)rudp_cc_find("bbr"), (void *)&rudp__cc_bbr));
    cr_assert(eq(str, (char *)rudp__cc_bbr.name, "bbr"));
}

/* ---- whole flows over the simulated network ---- */

static void flow(double loss, sim_bulk_result *r)
{
    sim_bulk_single(42, &rudp__cc_bbr, RUDP_MS(20), 100000000, 500000, loss, RUDP_SEC(20), r);
    fprintf(stderr, "SIMTABLE %-8s 100 Mbit/s 40 ms 1 BDP, loss %g%%: %6.2f Mbit/s goodput, "
                    "retransmitted %.2f%% (20 s)\n",
            "bbr", loss * 100, r->mbps, r->retx_pct);
}

Test(bbr, sim_fills_a_clean_40ms_link, .timeout = 30)
{
    sim_bulk_result r;
    flow(0, &r);
    cr_assert(eq(int, r.error, 0));
    cr_assert(ge(dbl, r.mbps, 93.0), "%.2f Mbit/s", r.mbps);
    cr_assert(le(dbl, r.retx_pct, 0.5), "%.2f%%", r.retx_pct);
}

Test(bbr, sim_keeps_90_mbit_under_1_percent_random_loss_retransmitting_only_the_loss,
     .timeout = 30)
{
    sim_bulk_result r;
    flow(0.01, &r);
    cr_assert(eq(int, r.error, 0));
    cr_assert(ge(dbl, r.mbps, 90.0), "%.2f Mbit/s", r.mbps);
    cr_assert(le(dbl, r.retx_pct, 1.5), "%.2f%%", r.retx_pct);
}

Test(bbr, sim_keeps_88_mbit_under_5_percent_random_loss_retransmitting_only_the_loss,
     .timeout = 30)
{
    sim_bulk_result r;
    flow(0.05, &r);
    cr_assert(eq(int, r.error, 0));
    cr_assert(ge(dbl, r.mbps, 88.0), "%.2f Mbit/s", r.mbps);
    cr_assert(le(dbl, r.retx_pct, 5.5), "%.2f%%", r.retx_pct);
}

/* The benchmark's four bulk links, 10 s runs as it does them: the floors
 * leave room for startup, which 10 s at 100 ms RTT feels. */
Test(bbr, sim_bench_shaped_10s_runs_hold_their_floors, .timeout = 30)
{
    struct {
        const char *name;
        rudp_time owd;
        size_t queue;
        double loss, floor;
    } b[] = {
        {"B1", RUDP_MS(5), 125000, 0, 94},
        {"B2", RUDP_MS(20), 500000, 0.01, 88},
        {"B3", RUDP_MS(20), 500000, 0.05, 87},
        {"B4", RUDP_MS(50), 1250000, 0.02, 75},
    };
    for (int i = 0; i < 4; i++) {
        sim_bulk_result r;
        sim_bulk_single(7, &rudp__cc_bbr, b[i].owd, 100000000, b[i].queue, b[i].loss,
                        RUDP_SEC(10), &r);
        fprintf(stderr, "SIMTABLE bbr      %s-shaped (%llu ms RTT, queue %zu, loss %g%%): %6.2f "
                        "Mbit/s, retransmitted %.2f%% (10 s)\n",
                b[i].name, (unsigned long long)(2 * b[i].owd / RUDP_MS(1)), b[i].queue,
                b[i].loss * 100, r.mbps, r.retx_pct);
        cr_assert(eq(int, r.error, 0), "%s", b[i].name);
        cr_assert(ge(dbl, r.mbps, b[i].floor), "%s: %.2f Mbit/s", b[i].name, r.mbps);
        cr_assert(le(dbl, r.retx_pct, b[i].loss * 100 + 1), "%s: %.2f%%", b[i].name, r.retx_pct);
    }
}

Test(bbr, sim_sends_paced_in_bursts_of_a_few_packets_without_busy_waiting, .timeout = 30)
{
    sim_burst burst;
    memset(&burst, 0, sizeof burst);
    sim s;
    sim_init(&s, 3);
    int a = sim_add_ep(&s, NULL), b = sim_add_ep(&s, NULL);
    for (int i = 0; i < 2; i++) {
        sim_link *l = i ? &s.link[b][a] : &s.link[a][b];
        l->delay = RUDP_MS(20);
        l->rate_bps = 100000000;
        l->queue_bytes = 500000;
    }
    s.tap = sim_burst_tap;
    s.tap_user = &burst;
    sim_bulk_listen(&s, b);
    rudp_config cfg;
    rudp_config_default(&cfg);
    cfg.cc = &rudp__cc_bbr;
    cr_assert(ge(int, sim_bulk_connect(&s, a, b, &cfg), 0));
    uint64_t steps0 = s.steps;
    /* 12 s: startup, drain and PROBE_BW's cycles, whose window steps
     * (and a PROBE_RTT's exit, which puts 1.5 BDP back at once, when a
     * queue stands) only pacing keeps from leaving in one burst. */
    sim_run_until(&s, s.now + RUDP_SEC(12));
    uint64_t steps = s.steps - steps0, dgrams = s.link[a][b].sent + s.link[b][a].sent;
    fprintf(stderr, "bbr pacing: %llu data packets, longest back-to-back run %d, %llu wake-ups "
                    "for %llu datagrams\n",
            (unsigned long long)burst.pkts, burst.max_run, (unsigned long long)steps,
            (unsigned long long)dgrams);
    cr_assert(gt(u64, burst.pkts, 80000), "it did send");
    /* A wake-up's burst (conn_output.c: a quantum of about 1 ms at the
     * pacing rate, at most a GSO train of 64 KiB, sent ahead, and after a
     * late wake-up a catch-up of at most 1 ms at the pacing rate: at this
     * link's rate and BBR's startup gain under 64 KiB, so at most ~93
     * packets, one more as the credit reaches zero) is the most that
     * leaves at one instant: never a window (unpaced, the PROBE_RTT exit
     * sends ~500). */
    cr_assert(le(int, burst.max_run, 94));
    /* Every wake-up has a datagram to deliver or a packet to send: timer
     * wake-ups stay under one per data packet. */
    cr_assert(lt(u64, steps, dgrams + burst.pkts), "%llu steps",
              (unsigned long long)steps);
    sim_free(&s);
}

/* Two flows from one endpoint share its link: a common bottleneck. */
static void share(const rudp_cc_ops *first, const rudp_cc_ops *second, rudp_time owd,
                  size_t queue, rudp_time dur, double *share_first)
{
    sim *s = malloc(sizeof *s);
    sim_init(s, 11);
    int a = sim_add_ep(s, NULL), b = sim_add_ep(s, NULL);
    for (int i = 0; i < 2; i++) {
        sim_link *l = i ? &s->link[b][a] : &s->link[a][b];
        l->delay = owd;
        l->rate_bps = 100000000;
        l->queue_bytes = queue;
    }
    sim_bulk_listen(s, b);
    rudp_config cfg;
    rudp_config_default(&cfg);
    cfg.cc = first;
    int f1 = sim_bulk_connect(s, a, b, &cfg);
    cfg.cc = second;
    int f2 = sim_bulk_connect(s, a, b, &cfg);
    cr_assert(ge(int, f1, 0));
    cr_assert(ge(int, f2, 0));
    sim_run_until(s, s->now + dur);
    double g1 = (double)sim_bulk_acked(s, f1) * 8 / ((double)dur / 1e9) / 1e6;
    double g2 = (double)sim_bulk_acked(s, f2) * 8 / ((double)dur / 1e9) / 1e6;
    *share_first = g1 / (g1 + g2);
    fprintf(stderr, "SIMTABLE fairness %s + %s started together, %llu ms RTT, queue %zu: "
                    "%.1f + %.1f Mbit/s (%s %.0f%%, %llu s)\n",
            first->name, second->name, (unsigned long long)(2 * owd / RUDP_MS(1)), queue, g1, g2,
            first->name, 100 * *share_first, (unsigned long long)(dur / RUDP_SEC(1)));
    sim_free(s);
    free(s);
}

Test(bbr, sim_shares_a_40ms_1bdp_bottleneck_with_cubic_neither_under_a_quarter, .timeout = 60)
{
    double x;
    share(&rudp__cc_bbr, &rudp__cc_cubic, RUDP_MS(20), 500000, RUDP_SEC(25), &x);
    cr_assert(x >= 0.25 && x <= 0.75, "bbr's share %.2f", x);
    share(&rudp__cc_cubic, &rudp__cc_bbr, RUDP_MS(20), 500000, RUDP_SEC(25), &x);
    cr_assert(x >= 0.25 && x <= 0.75, "cubic's share %.2f", x);
}

/* B7's link: 100 Mbit/s, 10 ms RTT, 125 kB queue; the target is that rudp
 * takes no more than 60% against a CUBIC flow. */
Test(bbr, sim_takes_at_most_60_percent_of_the_b7_link_from_cubic, .timeout = 60)
{
    double x;
    share(&rudp__cc_bbr, &rudp__cc_cubic, RUDP_MS(5), 125000, RUDP_SEC(20), &x);
    cr_assert(x >= 0.25 && x <= 0.60, "bbr's share %.2f", x);
    share(&rudp__cc_cubic, &rudp__cc_bbr, RUDP_MS(5), 125000, RUDP_SEC(20), &x);
    cr_assert(x >= 0.40 && x <= 0.75, "cubic's share %.2f", x);
}
