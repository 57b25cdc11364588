/*
 * cc_bbr.c: a model-based controller in the spirit of BBR (Cardwell et al.,
 * "BBR: Congestion-Based Congestion Control", ACM Queue 2016;
 * draft-cardwell-iccrg-bbr-congestion-control): v1's model and state
 * machine, with lessons of v2/v3 where they help.
 *
 * Model. BtlBw is the windowed maximum of delivery-rate samples over
 * BBR_BW_ROUNDS round trips (an app-limited sample may raise it, never lower
 * it); RTprop is the minimum RTT over BBR_MIN_RTT_WIN. The sender paces at
 * pacing_gain * BtlBw (cc->pacing_rate: the connection paces with it) and
 * keeps at most cwnd_gain * BtlBw * RTprop in flight, plus v1.1's allowance
 * for ACK aggregation (extra_acked), never less than BBR_MIN_CWND_PKTS.
 * Before the first ACK the connection paces from cwnd; at the first ACK with
 * an RTT sample the rate becomes 2/ln2 * cwnd / srtt, and in STARTUP it
 * never decreases (v1).
 *
 * States. STARTUP: pacing gain 2/ln2, cwnd gain 2 (v3; v1's 2/ln2
 * overshoots a 1-BDP queue by a third of a BDP and the drops cost more
 * retransmission than the faster start gains), left when BtlBw grew < 25%
 * for three rounds. DRAIN: the inverse gain until in-flight <= BDP.
 * PROBE_BW: pacing gains 1.25, 0.75, 1 x6, a phase per RTprop (the probe
 * lasts until the extra in-flight is there or loss shows, the drain ends
 * early once in-flight <= BDP), entered at a phase taken from the clock so
 * flows do not probe in step. PROBE_RTT: when RTprop was neither lowered
 * nor confirmed (a sample within 1/16 of it) for 10 s, in-flight is held to
 * max(4 packets, BDP/2) (v2's gentler level) for 200 ms and a round (longer
 * while its samples still fall: BBR_PROBE_RTT_MORE); the BDP is the expired
 * RTprop's, and the probe's lowest sample is RTprop after it (see
 * update_min_rtt).
 *
 * Loss. Loss alone changes neither the model, nor the pacing rate, nor the
 * window: on a lossy path (radio, a bad cable, our 5% benchmark) random loss
 * says nothing about the bottleneck. v1 ignored loss and so overfilled
 * shallow buffers and starved loss-based flows; v2 answers a round losing
 * more than 2%, which cripples it under 2-5% random loss. What tells
 * congestion loss from random loss is where it happens: a drop-tail queue
 * drops when it is full, and a full queue shows as RTT inflation that lasts
 * a whole round trip. So a round is congested when
 *   (a) it lost anything and even its smallest RTT sample exceeded the
 *       lowest RTT the connection ever saw by max(min_rtt/4, 2 ms): a
 *       standing queue. Our own 1.25 probe lasts one round and drains in the
 *       next, so its queue never stands through a round; a competing
 *       loss-based flow's queue does. Or
 *   (b) it lost more than 15% of a round of >= 64 packets: a policer or an
 *       overflowing shallow buffer, which shows no queue. Independent loss
 *       at the 5% we must sustain essentially never reaches that.
 * The lifetime minimum RTT is the queue-free baseline, not RTprop, because
 * after a PROBE_RTT a competitor's standing queue would become RTprop; if
 * the path's RTT rises for good, the rule degrades to loss-based behaviour,
 * which is the safe direction.
 *
 * A congested round caps in-flight (inflight_hi, v2's name) at 0.7 of the
 * most that was in flight during it (CUBIC's beta, so both back off alike)
 * and ends STARTUP. Losses of packets sent before the cut belong to the
 * episode already answered, as a loss-based flow reduces once per recovery
 * period. While the cap holds the flow and rounds are not congested, it
 * grows: with a standing queue, along CUBIC's curve from the cut
 * (W(t) = C (t - K)^3 + W_max, at least half a packet per round, CUBIC's
 * Reno-friendly pace), so that against CUBIC both regain the queue alike;
 * with no queue (the competitor left), by a step that doubles each round
 * (v2's PROBE_UP).
 *
 * Random loss before the bottleneck (where netem and our emulator drop)
 * means pacing at BtlBw leaves the link idle a fraction p of the time.
 * Pacing at BtlBw / (1 - p) fills it; if the loss is after the bottleneck
 * the delivery rate already reads (1 - p) * C and the same formula gives C.
 * p is an EWMA of the loss in PROBE_BW rounds at gain 1 that follow another
 * such round (so neither our probe's drops nor a queue are in it), capped
 * at 10%, cleared by a congested round; the 1% pacing margin keeps an
 * estimate slightly too high from feeding on itself.
 */
#include <string.h>

#include "cc.h"

#define BBR_UNIT 1000                /* gains are in thousandths */
#define BBR_HIGH_GAIN 2885           /* 2/ln2: doubles delivery each round */
#define BBR_DRAIN_GAIN 347           /* 1/2.885 */
#define BBR_CWND_GAIN 2000
#define BBR_STARTUP_CWND_GAIN 2000   /* v3: 2, not 2/ln2: less overshoot */
#define BBR_PACING_MARGIN 990        /* pace 1% under the estimate (v1) */
#define BBR_CYCLE_LEN 8
#define BBR_BW_ROUNDS 10             /* BtlBw max-filter window, round trips */
#define BBR_MIN_RTT_WIN RUDP_SEC(10)
#define BBR_PROBE_RTT_TIME RUDP_MS(200)
/* A probe whose samples still fall once in-flight is at its level (the
 * link's rate fell under it, B18 at 11-12 s: 0.15 Mbit/s, and half a BDP
 * takes longer than 200 ms to drain) goes on a round at a time while they
 * do, for at most this much more: taking a still-queued sample as RTprop
 * made the window 3x too big (a 1.5 s p95 in one run of three). A queue
 * that stands (a competitor's) does not fall and the probe is not longer. */
#define BBR_PROBE_RTT_MORE RUDP_MS(800)
/* An RTT sample within RTprop/16 of RTprop confirms it as a new minimum
 * would: the flow is seeing the path without a queue, which is all a
 * PROBE_RTT would show, so a flow that keeps no standing queue does not pay
 * one every 10 s. A standing queue (ours, or a competitor's) keeps samples
 * above this and PROBE_RTT comes as before. */
#define BBR_MIN_RTT_TOLERANCE 16
#define BBR_PROBE_RTT_CWND_GAIN 500  /* v2: half a BDP, not 4 packets */
#define BBR_MIN_CWND_PKTS 4
#define BBR_FULL_BW_THRESH 1250      /* STARTUP: growth of less than 25%... */
#define BBR_FULL_BW_ROUNDS 3         /* ...for three rounds: the pipe is full */
#define BBR_EXTRA_ACKED_ROUNDS 5     /* each of the two extra_acked slots */
#define BBR_EXTRA_ACKED_MAX_TIME RUDP_MS(100)
#define BBR_LOSS_BETA 700            /* inflight_hi on a congested round */
#define BBR_CUBIC_C 0.4              /* cap growth under a standing queue */
#define BBR_HIGH_LOSS 150            /* thousandths lost: congestion with no queue */
#define BBR_HIGH_LOSS_MIN_PKTS 64
#define BBR_QUEUE_MIN RUDP_MS(2)
#define BBR_QUEUE_DIV 4              /* standing queue: > min_rtt / 4 */
#define BBR_PPM 1000000u
#define BBR_LOSS_EWMA_SHIFT 3        /* random-loss estimate: 1/8 per round */
#define BBR_LOSS_COMP_MAX 100000     /* compensate for at most 10% (ppm) */

static const uint32_t cycle_gain[BBR_CYCLE_LEN] = {1250, 750, 1000, 1000, 1000, 1000, 1000, 1000};

enum {
    BBR_STARTUP = RUDP_BBR_STARTUP,
    BBR_DRAIN = RUDP_BBR_DRAIN,
    BBR_PROBE_BW = RUDP_BBR_PROBE_BW,
    BBR_PROBE_RTT = RUDP_BBR_PROBE_RTT,
};

typedef struct bbr_state {
    uint32_t mode;
    uint32_t pacing_gain, cwnd_gain;
    uint32_t cycle_idx;
    uint32_t full_bw_cnt;
    uint8_t full_bw_reached;
    uint8_t round_start;
    uint8_t probe_rtt_round_done;
    uint8_t extra_idx;
    uint8_t extra_rounds;
    uint8_t round_cruise;          /* this round stayed in a 1.0 phase */
    uint8_t cruise_rounds;         /* consecutive such rounds */
    uint32_t loss_ppm;             /* random loss in cruise rounds, EWMA */
    uint64_t round_count;
    uint64_t next_round_delivered;
    rudp_cc_minmax bw[3];          /* windowed max of bytes/s over round counts */
    uint64_t full_bw;
    rudp_time min_rtt;             /* RUDP_TIME_NEVER: none yet */
    rudp_time min_rtt_stamp;
    rudp_time cycle_stamp;
    rudp_time probe_rtt_done;      /* 0: not yet at the PROBE_RTT window */
    rudp_time min_rtt_probe;       /* lowest RTT sample in this PROBE_RTT */
    uint64_t prior_cwnd;
    rudp_time ack_epoch_stamp;
    uint64_t ack_epoch_acked;
    uint64_t extra_acked[2];
    /* this round, for telling congestion from random loss */
    uint64_t round_lost, round_delivered, round_max_inflight;
    rudp_time round_min_rtt;
    uint64_t inflight_hi;          /* UINT64_MAX: no cap */
    uint64_t hi_step;
    double hi_wmax;                /* in flight when the cap was last cut */
    double hi_k;                   /* seconds to regain it on CUBIC's curve */
    rudp_time hi_cut;              /* when; 0: never */
} bbr_state;

_Static_assert(sizeof(bbr_state) <= sizeof(((rudp_cc *)0)->st), "bbr state fits in st");

static void load(const rudp_cc *cc, bbr_state *s) { memcpy(s, cc->st, sizeof *s); }
static void store(rudp_cc *cc, const bbr_state *s) { memcpy(cc->st, s, sizeof *s); }

static uint64_t mul_div(uint64_t a, uint64_t b, uint64_t d)
{
    unsigned __int128 r = (unsigned __int128)a * b / (d ? d : 1);
    return r > UINT64_MAX ? UINT64_MAX : (uint64_t)r;
}

/* ---- the windowed max filter (as Linux's lib/win_minmax.c) ---- */

static uint64_t bw_max(const bbr_state *s) { return s->bw[0].v; }

static void bw_update(bbr_state *s, uint64_t t, uint64_t v)
{
    rudp__cc_minmax_update(s->bw, BBR_BW_ROUNDS, t, v, 1);
}

/* ---- model quantities ---- */

/* Below this, a path's round trip is the two engines' scheduling (wake-ups,
 * batches), not the wire: the window keeps a millisecond's worth of data in
 * flight so that jitter does not starve a loopback or LAN flow. */
#define BBR_MIN_WINDOW_RTT RUDP_MS(1)

/* Bytes in flight at `gain` times the estimated BDP. */
static uint64_t bdp(const rudp_cc *cc, const bbr_state *s, uint32_t gain)
{
    if (s->min_rtt == RUDP_TIME_NEVER || !bw_max(s))
        return rudp__cc_initial_window(cc->mss); /* no model yet (v1) */
    rudp_time rtt = s->min_rtt < BBR_MIN_WINDOW_RTT ? BBR_MIN_WINDOW_RTT : s->min_rtt;
    uint64_t b = mul_div(bw_max(s), rtt, RUDP_SEC(1));
    return mul_div(b, gain, BBR_UNIT);
}

static uint64_t min_cwnd(const rudp_cc *cc) { return (uint64_t)BBR_MIN_CWND_PKTS * cc->mss; }

static uint64_t probe_rtt_cwnd(const rudp_cc *cc, const bbr_state *s)
{
    uint64_t w = bdp(cc, s, BBR_PROBE_RTT_CWND_GAIN);
    return w > min_cwnd(cc) ? w : min_cwnd(cc);
}

static void set_mode(bbr_state *s, uint32_t mode, uint32_t pacing_gain, uint32_t cwnd_gain)
{
    s->mode = mode;
    s->pacing_gain = pacing_gain;
    s->cwnd_gain = cwnd_gain;
}

static void enter_startup(bbr_state *s)
{
    set_mode(s, BBR_STARTUP, BBR_HIGH_GAIN, BBR_STARTUP_CWND_GAIN);
}

static void enter_probe_bw(bbr_state *s, rudp_time now)
{
    /* Start anywhere but the 0.75 phase, chosen from the clock so that
     * flows entering together do not probe in step. */
    uint64_t h = (now >> 10) * 0x9e3779b97f4a7c15ull;
    uint32_t r = (uint32_t)(h >> 61); /* 0..7 */
    s->cycle_idx = r == 1 ? 0 : r;
    s->cycle_stamp = now;
    set_mode(s, BBR_PROBE_BW, cycle_gain[s->cycle_idx], BBR_CWND_GAIN);
}

static void enter_drain(bbr_state *s)
{
    set_mode(s, BBR_DRAIN, BBR_DRAIN_GAIN, BBR_HIGH_GAIN);
}

/* ---- per-ACK steps, in v1's order ---- */

/* A round trip ends when a packet sent after it began is acknowledged. */
static void update_round(bbr_state *s, const rudp_cc_ack *a)
{
    uint64_t prior_delivered = a->delivered - a->rs_delivered;
    s->round_start = 0;
    if (prior_delivered >= s->next_round_delivered) {
        s->next_round_delivered = a->delivered;
        s->round_count++;
        s->round_start = 1;
    }
}

static void update_bw(bbr_state *s, const rudp_cc_ack *a)
{
    if (!a->rs_interval || !a->rs_delivered)
        return;
    uint64_t bw = mul_div(a->rs_delivered, RUDP_SEC(1), a->rs_interval);
    /* An app-limited sample shows what the app offered, not the path: it
     * can only raise the estimate. */
    if (!a->rs_app_limited || bw >= bw_max(s))
        bw_update(s, s->round_count, bw);
}

/* v1.1: how far ACKs ran ahead of the estimated rate, max over ~10 rounds. */
static void update_ack_aggregation(rudp_cc *cc, bbr_state *s, const rudp_cc_ack *a)
{
    if (!a->acked_bytes || !a->rs_interval)
        return;
    if (s->round_start && ++s->extra_rounds >= BBR_EXTRA_ACKED_ROUNDS) {
        s->extra_rounds = 0;
        s->extra_idx ^= 1;
        s->extra_acked[s->extra_idx] = 0;
    }
    uint64_t expected = mul_div(bw_max(s), a->now - s->ack_epoch_stamp, RUDP_SEC(1));
    if (s->ack_epoch_acked <= expected || s->ack_epoch_acked + a->acked_bytes >= (1ull << 30)) {
        s->ack_epoch_acked = 0;
        s->ack_epoch_stamp = a->now;
        expected = 0;
    }
    s->ack_epoch_acked += a->acked_bytes;
    uint64_t extra = s->ack_epoch_acked - expected;
    if (extra > cc->cwnd)
        extra = cc->cwnd;
    if (extra > s->extra_acked[s->extra_idx])
        s->extra_acked[s->extra_idx] = extra;
}

static uint64_t aggregation_allowance(const bbr_state *s)
{
    if (!s->full_bw_reached)
        return 0;
    uint64_t e = s->extra_acked[0] > s->extra_acked[1] ? s->extra_acked[0] : s->extra_acked[1];
    uint64_t cap = mul_div(bw_max(s), BBR_EXTRA_ACKED_MAX_TIME, RUDP_SEC(1));
    return e < cap ? e : cap;
}

static void update_cycle_phase(rudp_cc *cc, bbr_state *s, const rudp_cc_ack *a)
{
    if (s->mode != BBR_PROBE_BW)
        return;
    uint64_t prior_inflight = a->bytes_in_flight + a->acked_bytes;
    int full_length = a->now - s->cycle_stamp > s->min_rtt;
    uint32_t g = s->pacing_gain;
    int advance;
    if (g == BBR_UNIT)
        advance = full_length;
    else if (g > BBR_UNIT)
        /* Probe until the extra in-flight is there (or the cap holds it). */
        advance = full_length &&
                  (a->lost_bytes || prior_inflight >= bdp(cc, s, g) ||
                   prior_inflight + cc->mss >= s->inflight_hi);
    else
        advance = full_length || prior_inflight <= bdp(cc, s, BBR_UNIT);
    if (!advance)
        return;
    s->cycle_idx = (s->cycle_idx + 1) % BBR_CYCLE_LEN;
    s->cycle_stamp = a->now;
    s->pacing_gain = cycle_gain[s->cycle_idx];
}

static void check_full_bw(bbr_state *s, const rudp_cc_ack *a)
{
    if (s->full_bw_reached || !s->round_start || a->rs_app_limited)
        return;
    if (bw_max(s) >= mul_div(s->full_bw, BBR_FULL_BW_THRESH, BBR_UNIT)) {
        s->full_bw = bw_max(s);
        s->full_bw_cnt = 0;
        return;
    }
    if (++s->full_bw_cnt >= BBR_FULL_BW_ROUNDS)
        s->full_bw_reached = 1;
}

static void check_drain(rudp_cc *cc, bbr_state *s, const rudp_cc_ack *a)
{
    if (s->mode == BBR_STARTUP && s->full_bw_reached)
        enter_drain(s);
    if (s->mode == BBR_DRAIN && a->bytes_in_flight <= bdp(cc, s, BBR_UNIT))
        enter_probe_bw(s, a->now);
}

/* RTprop expires after BBR_MIN_RTT_WIN unconfirmed; PROBE_RTT then measures
 * it again. v1 takes the sample at hand as the new RTprop at once and lets
 * PROBE_RTT's 4-packet window bring it down; but that sample carries the
 * whole standing queue (the reason RTprop went unconfirmed), and with v2's
 * gentler level of half a BDP, a BDP of that inflated RTprop is no drain at
 * all: on the Verizon LTE trace (bench B18) a 640 ms sample made the level
 * 216 kB, the queue never drained, and the 2-BDP window after it was 870 kB
 * (3 s of queue, p95 delay 2x kernel bbr's). So the old RTprop stays the
 * model's while PROBE_RTT drains to half its BDP, and the lowest sample seen
 * during the probe (min_rtt_probe) becomes RTprop when it ends: higher than
 * the old one if the path's RTT grew for good, which is what the probe is
 * for. */
static void update_min_rtt(rudp_cc *cc, bbr_state *s, const rudp_cc_ack *a)
{
    if (a->rtt && a->rtt->has_sample) {
        rudp_time r = a->rtt->latest;
        if (r < s->min_rtt) {
            s->min_rtt = r;
            s->min_rtt_stamp = a->now;
        } else if (s->mode != BBR_PROBE_RTT &&
                   r <= s->min_rtt + s->min_rtt / BBR_MIN_RTT_TOLERANCE) {
            s->min_rtt_stamp = a->now; /* RTprop confirmed: see BBR_MIN_RTT_TOLERANCE */
        }
        if (s->mode == BBR_PROBE_RTT && r < s->min_rtt_probe) {
            /* At the level and the queue visibly draining (a new low by
             * more than the tolerance, still above RTprop's): the probe
             * waits a round more to see where it ends, within
             * BBR_PROBE_RTT_MORE of reaching the level. */
            rudp_time tol = s->min_rtt / BBR_MIN_RTT_TOLERANCE;
            if (s->probe_rtt_done && r > s->min_rtt + tol && r + tol < s->min_rtt_probe &&
                a->now < s->cycle_stamp + BBR_PROBE_RTT_TIME + BBR_PROBE_RTT_MORE &&
                s->probe_rtt_done < a->now + r)
                s->probe_rtt_done = a->now + r;
            s->min_rtt_probe = r;
        }
    }
    if (s->mode != BBR_PROBE_RTT && s->min_rtt != RUDP_TIME_NEVER &&
        a->now > s->min_rtt_stamp + BBR_MIN_RTT_WIN) {
        s->prior_cwnd = cc->cwnd; /* restored when PROBE_RTT ends */
        set_mode(s, BBR_PROBE_RTT, BBR_UNIT, BBR_UNIT);
        s->probe_rtt_done = 0;
        s->min_rtt_probe = a->rtt && a->rtt->has_sample ? a->rtt->latest : RUDP_TIME_NEVER;
    }
    if (s->mode != BBR_PROBE_RTT)
        return;
    if (!s->probe_rtt_done) {
        if (a->bytes_in_flight <= probe_rtt_cwnd(cc, s)) {
            s->cycle_stamp = a->now; /* PROBE_BW sets it again on entry */
            s->probe_rtt_done = a->now + BBR_PROBE_RTT_TIME;
            s->probe_rtt_round_done = 0;
            s->next_round_delivered = a->delivered;
        }
        return;
    }
    if (s->round_start)
        s->probe_rtt_round_done = 1;
    if (s->probe_rtt_round_done && a->now >= s->probe_rtt_done) {
        /* The path's RTT grew (beyond the tolerance that confirms it):
         * the probe says so. */
        if (s->min_rtt_probe != RUDP_TIME_NEVER &&
            s->min_rtt_probe > s->min_rtt + s->min_rtt / BBR_MIN_RTT_TOLERANCE)
            s->min_rtt = s->min_rtt_probe;
        s->min_rtt_stamp = a->now;
        if (cc->cwnd < s->prior_cwnd)
            cc->cwnd = s->prior_cwnd;
        if (s->full_bw_reached)
            enter_probe_bw(s, a->now);
        else
            enter_startup(s);
    }
}

/* ---- congestion versus random loss (see the header) ---- */

static int standing_queue(const bbr_state *s, const rudp_cc_ack *a)
{
    if (!a->rtt || !a->rtt->has_sample || s->round_min_rtt == RUDP_TIME_NEVER)
        return 0;
    rudp_time base = a->rtt->min;
    rudp_time margin = base / BBR_QUEUE_DIV;
    if (margin < BBR_QUEUE_MIN)
        margin = BBR_QUEUE_MIN;
    return s->round_min_rtt > base + margin;
}

static int cruising(const bbr_state *s)
{
    return s->mode == BBR_PROBE_BW && s->cycle_idx >= 2;
}

static int round_congested(const rudp_cc *cc, const bbr_state *s, int queue)
{
    if (!s->round_lost)
        return 0;
    if (queue)
        return 1;
    uint64_t total = s->round_lost + s->round_delivered;
    return total >= (uint64_t)BBR_HIGH_LOSS_MIN_PKTS * cc->mss &&
           s->round_lost * BBR_UNIT > total * BBR_HIGH_LOSS;
}

/* At the end of each round: judge it, move the cap, start the next. */
static void end_round(rudp_cc *cc, bbr_state *s, const rudp_cc_ack *a)
{
    int queue = standing_queue(s, a);
    int congested = round_congested(cc, s, queue);
    if (!s->round_cruise)
        s->cruise_rounds = 0;
    else if (s->cruise_rounds < UINT8_MAX)
        s->cruise_rounds++;
    if (congested) {
        s->loss_ppm = 0;
    } else if (s->cruise_rounds >= 2) {
        /* A second cruise round in a row: its losses were sent at gain 1
         * with no queue growing, so they are the path's random loss. */
        uint64_t total = s->round_lost + s->round_delivered;
        uint32_t p = total ? (uint32_t)mul_div(s->round_lost, BBR_PPM, total) : 0;
        s->loss_ppm = (uint32_t)(s->loss_ppm - (s->loss_ppm >> BBR_LOSS_EWMA_SHIFT) +
                                 (p >> BBR_LOSS_EWMA_SHIFT));
    }
    if (congested) {
        uint64_t hi = mul_div(s->round_max_inflight, BBR_LOSS_BETA, BBR_UNIT);
        if (hi < min_cwnd(cc))
            hi = min_cwnd(cc);
        if (hi < s->inflight_hi)
            s->inflight_hi = hi;
        s->hi_step = cc->mss;
        s->hi_cut = a->now;
        s->hi_wmax = (double)s->round_max_inflight;
        s->hi_k = rudp__cc_cbrt((s->hi_wmax - (double)s->inflight_hi) / (BBR_CUBIC_C * cc->mss));
        if (s->mode == BBR_STARTUP) {
            s->full_bw_reached = 1; /* v2: STARTUP ends on congestion loss */
            enter_drain(s);
        }
    } else if (s->inflight_hi != UINT64_MAX &&
               s->round_max_inflight + 2ull * cc->mss >= s->inflight_hi) {
        /* Held by the cap and no congestion: raise it. */
        if (queue) {
            /* Sharing a queue: grow as CUBIC would from the last cut,
             * W(t) = C (t - K)^3 + W_max one round ahead, or at least
             * Reno-like (half a packet per round). */
            s->inflight_hi += cc->mss / 2;
            double t = (double)(a->now - s->hi_cut + s->min_rtt) / 1e9 - s->hi_k;
            double w = BBR_CUBIC_C * (double)cc->mss * t * t * t + s->hi_wmax;
            double most = 1.5 * (double)s->inflight_hi;
            if (w > most)
                w = most;
            if (s->hi_cut && w > (double)s->inflight_hi)
                s->inflight_hi = (uint64_t)w;
            s->hi_step = cc->mss;
        } else {
            s->inflight_hi += s->hi_step;
            if (s->hi_step < (UINT64_MAX >> 2))
                s->hi_step *= 2;
        }
    }
    s->round_lost = 0;
    s->round_delivered = 0;
    s->round_max_inflight = a->bytes_in_flight;
    s->round_min_rtt = RUDP_TIME_NEVER;
    s->round_cruise = (uint8_t)cruising(s);
}

/* ---- outputs ---- */

static void set_pacing_rate(rudp_cc *cc, bbr_state *s, const rudp_cc_ack *a)
{
    if (!cc->pacing_rate) {
        /* v1: until the model knows better, 2/ln2 windows per RTT. The
         * first samples (a handshake PING, a partial first flight) say
         * little, and STARTUP never paces slower than this. */
        if (!a->rtt || !a->rtt->has_sample)
            return;
        cc->pacing_rate = mul_div(cc->cwnd, (uint64_t)BBR_HIGH_GAIN * RUDP_SEC(1) / BBR_UNIT,
                                  a->rtt->smoothed);
    }
    uint64_t rate = mul_div(bw_max(s), (uint64_t)s->pacing_gain * BBR_PACING_MARGIN,
                            (uint64_t)BBR_UNIT * BBR_UNIT);
    if (s->mode == BBR_PROBE_BW) {
        uint32_t p = s->loss_ppm < BBR_LOSS_COMP_MAX ? s->loss_ppm : BBR_LOSS_COMP_MAX;
        rate = mul_div(rate, BBR_PPM, BBR_PPM - p);
    }
    if (s->full_bw_reached || rate > cc->pacing_rate)
        cc->pacing_rate = rate;
}

static void set_cwnd(rudp_cc *cc, bbr_state *s, const rudp_cc_ack *a)
{
    uint64_t target = bdp(cc, s, s->cwnd_gain) + aggregation_allowance(s);
    uint64_t w = cc->cwnd;
    if (s->full_bw_reached) {
        w += a->acked_bytes;
        if (w > target)
            w = target;
    } else if (w < target || a->delivered < rudp__cc_initial_window(cc->mss)) {
        w += a->acked_bytes;
    }
    if (w < min_cwnd(cc))
        w = min_cwnd(cc);
    if (s->mode == BBR_PROBE_RTT && w > probe_rtt_cwnd(cc, s))
        w = probe_rtt_cwnd(cc, s);
    if (w > s->inflight_hi)
        w = s->inflight_hi < min_cwnd(cc) ? min_cwnd(cc) : s->inflight_hi;
    cc->cwnd = w;
}

/* ---- ops ---- */

static void bbr_init(rudp_cc *cc, rudp_time now)
{
    bbr_state s;
    memset(&s, 0, sizeof s);
    enter_startup(&s);
    s.min_rtt = RUDP_TIME_NEVER;
    s.min_rtt_stamp = now;
    s.ack_epoch_stamp = now;
    s.cycle_stamp = now;
    s.round_min_rtt = RUDP_TIME_NEVER;
    s.inflight_hi = UINT64_MAX;
    s.hi_step = cc->mss;
    store(cc, &s);
}

static void bbr_on_sent(rudp_cc *cc, rudp_time now, uint64_t bytes, uint64_t in_flight)
{
    (void)now, (void)bytes;
    bbr_state s;
    load(cc, &s);
    if (in_flight > s.round_max_inflight) {
        s.round_max_inflight = in_flight;
        store(cc, &s);
    }
}

static void bbr_on_ack(rudp_cc *cc, const rudp_cc_ack *a)
{
    bbr_state s;
    load(cc, &s);
    update_round(&s, a);
    if (s.round_start)
        end_round(cc, &s, a);
    s.round_delivered += a->acked_bytes;
    if (a->rtt && a->rtt->has_sample && a->rtt->latest < s.round_min_rtt)
        s.round_min_rtt = a->rtt->latest;
    update_bw(&s, a);
    update_ack_aggregation(cc, &s, a);
    update_cycle_phase(cc, &s, a);
    check_full_bw(&s, a);
    check_drain(cc, &s, a);
    update_min_rtt(cc, &s, a);
    if (!cruising(&s))
        s.round_cruise = 0;
    set_pacing_rate(cc, &s, a);
    set_cwnd(cc, &s, a);
    store(cc, &s);
}

static void bbr_on_loss(rudp_cc *cc, rudp_time now, rudp_time sent_time, uint64_t lost_bytes,
                        uint64_t in_flight)
{
    (void)now, (void)in_flight;
    bbr_state s;
    load(cc, &s);
    /* Judged when the round ends. Packets sent before the last cut belong
     * to the congestion episode already answered (one cut per episode, as
     * a loss-based flow reduces once per recovery period). */
    if (!s.hi_cut || sent_time > s.hi_cut)
        s.round_lost += lost_bytes;
    store(cc, &s);
}

static void bbr_on_persistent_congestion(rudp_cc *cc, rudp_time now)
{
    (void)now;
    /* Nothing got through for several PTOs: restart from the minimum and
     * let the model's window growth (one window per round) bring it back. */
    cc->cwnd = min_cwnd(cc);
}

void rudp__cc_bbr_get_info(const rudp_cc *cc, rudp_cc_bbr_info *out)
{
    bbr_state s;
    load(cc, &s);
    out->mode = (int)s.mode;
    out->pacing_gain = s.pacing_gain;
    out->cwnd_gain = s.cwnd_gain;
    out->cycle_idx = s.cycle_idx;
    out->btlbw = bw_max(&s);
    out->min_rtt = s.min_rtt;
    out->round_count = s.round_count;
    out->full_bw_reached = s.full_bw_reached;
    out->inflight_hi = s.inflight_hi;
    out->loss_ppm = s.loss_ppm;
}

static const char *bbr_phase(const rudp_cc *cc)
{
    static const char *const names[] = {
        [BBR_STARTUP] = "Startup", [BBR_DRAIN] = "Drain",
        [BBR_PROBE_BW] = "ProbeBW", [BBR_PROBE_RTT] = "ProbeRTT",
    };
    bbr_state s;
    load(cc, &s);
    return s.mode < sizeof names / sizeof names[0] ? names[s.mode] : "?";
}

const rudp_cc_ops rudp__cc_bbr = {
    .name = "bbr",
    .init = bbr_init,
    .on_sent = bbr_on_sent,
    .on_ack = bbr_on_ack,
    .on_loss = bbr_on_loss,
    .on_persistent_congestion = bbr_on_persistent_congestion,
    .phase = bbr_phase,
};
