/*
 * cc_cubic.c: CUBIC (RFC 9438) with HyStart++ (RFC 9406) in slow start.
 *
 * Window arithmetic is in bytes; CUBIC's formulas are stated in segments
 * and seconds, so W_cubic(t) = C * (t - K)^3 + W_max becomes
 * C * mss * (t - K)^3 + W_max(bytes), with K = cbrt((W_max - cwnd_epoch) /
 * (C * mss)) seconds. Doubles hold the model; cwnd stays an integer, with
 * the fractional part of each increase carried to the next ACK.
 *
 * Choices the RFCs leave open:
 *  - The multiplicative decrease applies to cwnd, not flight size (RFC 9438
 *    §4.6 allows either; RFC 9002's NewReno here does the same).
 *  - One reduction per recovery period, as NewReno: losses of packets sent
 *    before the period began are part of the same event.
 *  - Application-limited (§5.8): no growth while the connection is not using
 *    its window, and the time spent so is taken out of the epoch (t_epoch
 *    moves forward), so W_cubic does not leap when sending resumes.
 *  - After HyStart++ leaves slow start without a loss, the first epoch has
 *    W_max = cwnd and K = 0 (convex growth from where slow start ended); the
 *    same after persistent congestion (§4.8).
 *  - HyStart++ rounds: a round ends when a packet sent after the round began
 *    is acknowledged, found through the delivery counters (see cc.h). The
 *    connection paces, so the slow-start increase limit L is infinite
 *    (RFC 9406 §4.3). HyStart++ runs in the initial slow start only.
 */
#include <string.h>

#include "cc.h"

#define CUBIC_C 0.4                /* RFC 9438 §5.1 */
#define CUBIC_BETA 0.7             /* β_cubic, §4.6 */
#define CUBIC_ALPHA (3.0 * (1.0 - CUBIC_BETA) / (1.0 + CUBIC_BETA)) /* α_cubic, §4.3 */

/* RFC 9406 §4.3 */
#define HS_MIN_RTT_THRESH RUDP_MS(4)
#define HS_MAX_RTT_THRESH RUDP_MS(16)
#define HS_MIN_RTT_DIVISOR 8
#define HS_N_RTT_SAMPLE 8
#define HS_CSS_GROWTH_DIVISOR 4
#define HS_CSS_ROUNDS 5

enum { HS_SS = RUDP_HYSTART_SS, HS_CSS = RUDP_HYSTART_CSS, HS_DONE = RUDP_HYSTART_DONE };

typedef struct cubic_state {
    /* CUBIC */
    double w_max;        /* bytes; 0: no congestion event to return to */
    double k;            /* seconds */
    double w_est;        /* bytes, Reno-friendly estimate */
    double cwnd_prior;   /* bytes, cwnd before the last reduction */
    double frac;         /* fractional bytes of increase not yet in cwnd */
    rudp_time t_epoch;   /* 0: no epoch (the next CA ACK starts one) */
    rudp_time last_ack;
    /* HyStart++ */
    int hs;
    uint32_t rtt_samples;
    uint32_t css_rounds;
    uint64_t round_end;  /* delivered count that ends the round */
    rudp_time last_round_min;
    rudp_time cur_round_min;
    rudp_time css_baseline;
} cubic_state;

_Static_assert(sizeof(cubic_state) <= sizeof(((rudp_cc *)0)->st), "cubic state fits in st");

/* The state lives in cc->st; copying it in and out keeps aliasing legal. */
static void load(const rudp_cc *cc, cubic_state *s) { memcpy(s, cc->st, sizeof *s); }
static void store(rudp_cc *cc, const cubic_state *s) { memcpy(cc->st, s, sizeof *s); }

static void cubic_init(rudp_cc *cc, rudp_time now)
{
    cubic_state s;
    memset(&s, 0, sizeof s);
    s.hs = HS_SS;
    s.last_round_min = RUDP_TIME_NEVER;
    s.cur_round_min = RUDP_TIME_NEVER;
    s.css_baseline = RUDP_TIME_NEVER;
    s.last_ack = now;
    store(cc, &s);
}

static void cubic_on_sent(rudp_cc *cc, rudp_time now, uint64_t bytes, uint64_t in_flight)
{
    (void)cc, (void)now, (void)bytes, (void)in_flight;
}

static int in_recovery(const rudp_cc *cc, rudp_time sent_time)
{
    return cc->recovery_start != 0 && sent_time <= cc->recovery_start;
}

/* W_cubic(t) in bytes, t in seconds since the epoch began (RFC 9438 eq. 1). */
static double w_cubic(const rudp_cc *cc, const cubic_state *s, double t)
{
    double d = t - s->k;
    return CUBIC_C * (double)cc->mss * d * d * d + s->w_max;
}

static void add_bytes(rudp_cc *cc, cubic_state *s, double inc)
{
    if (inc <= 0)
        return;
    s->frac += inc;
    uint64_t whole = (uint64_t)s->frac;
    cc->cwnd += whole;
    s->frac -= (double)whole;
}

/* RFC 9406 §4.2: the first ACK of each round rolls the RTT minima over. */
static int hs_new_round(cubic_state *s, const rudp_cc_ack *a)
{
    uint64_t prior_delivered = a->delivered - a->rs_delivered;
    if (prior_delivered < s->round_end)
        return 0;
    s->round_end = a->delivered;
    s->last_round_min = s->cur_round_min;
    s->cur_round_min = RUDP_TIME_NEVER;
    s->rtt_samples = 0;
    return 1;
}

static void hs_sample(cubic_state *s, const rudp_cc_ack *a)
{
    if (!a->rtt || !a->rtt->has_sample)
        return;
    if (a->rtt->latest < s->cur_round_min)
        s->cur_round_min = a->rtt->latest;
    s->rtt_samples++;
}

static int hs_enough_samples(const cubic_state *s)
{
    return s->rtt_samples >= HS_N_RTT_SAMPLE && s->cur_round_min != RUDP_TIME_NEVER &&
           s->last_round_min != RUDP_TIME_NEVER;
}

/* Slow start under HyStart++ (RFC 9406 §4.3). */
static void slow_start(rudp_cc *cc, cubic_state *s, const rudp_cc_ack *a, int new_round)
{
    if (s->hs == HS_CSS && new_round && ++s->css_rounds >= HS_CSS_ROUNDS) {
        /* CSS ran its course: the delay increase was real. */
        cc->ssthresh = cc->cwnd;
        s->hs = HS_DONE;
        return;
    }
    switch (s->hs) {
    case HS_SS:
        cc->cwnd += a->acked_bytes;
        hs_sample(s, a);
        if (hs_enough_samples(s)) {
            rudp_time thresh = s->last_round_min / HS_MIN_RTT_DIVISOR;
            if (thresh < HS_MIN_RTT_THRESH)
                thresh = HS_MIN_RTT_THRESH;
            if (thresh > HS_MAX_RTT_THRESH)
                thresh = HS_MAX_RTT_THRESH;
            if (s->cur_round_min >= s->last_round_min + thresh) {
                s->css_baseline = s->cur_round_min;
                s->css_rounds = 0;
                s->hs = HS_CSS;
            }
        }
        return;
    case HS_CSS:
        add_bytes(cc, s, (double)a->acked_bytes / HS_CSS_GROWTH_DIVISOR);
        hs_sample(s, a);
        if (hs_enough_samples(s) && s->cur_round_min < s->css_baseline) {
            /* The RTT came back down: the increase was spurious. */
            s->css_baseline = RUDP_TIME_NEVER;
            s->hs = HS_SS;
        }
        return;
    case HS_DONE:
        cc->cwnd += a->acked_bytes; /* standard slow start after a loss */
        return;
    }
}

/* Congestion avoidance, RFC 9438 §4.2-4.5. */
static void congestion_avoidance(rudp_cc *cc, cubic_state *s, const rudp_cc_ack *a)
{
    double cwnd = (double)cc->cwnd;
    if (!s->t_epoch) {
        s->t_epoch = a->now;
        s->w_est = cwnd;
        s->frac = 0;
        if (s->w_max <= cwnd) {
            /* No congestion event above us: grow convexly from here. */
            s->w_max = cwnd;
            s->k = 0;
        } else {
            s->k = rudp__cc_cbrt((s->w_max - cwnd) / (CUBIC_C * (double)cc->mss));
        }
    }
    double t = (double)(a->now - s->t_epoch) / 1e9;
    double rtt = a->rtt && a->rtt->has_sample ? (double)a->rtt->smoothed / 1e9 : 0;
    double acked = (double)a->acked_bytes;

    /* §4.3: the Reno-friendly estimate; α becomes 1 once past cwnd_prior. */
    double alpha = s->w_est >= s->cwnd_prior ? 1.0 : CUBIC_ALPHA;
    s->w_est += alpha * acked * (double)cc->mss / cwnd;

    if (w_cubic(cc, s, t) < s->w_est) {
        if (s->w_est > cwnd) /* Reno-friendly region */
            add_bytes(cc, s, s->w_est - cwnd);
        return;
    }
    /* §4.4, §4.5: concave or convex, toward W_cubic one RTT ahead. */
    double target = w_cubic(cc, s, t + rtt);
    if (target < cwnd)
        target = cwnd;
    if (target > 1.5 * cwnd)
        target = 1.5 * cwnd;
    add_bytes(cc, s, (target - cwnd) * acked / cwnd);
}

static void cubic_on_ack(rudp_cc *cc, const rudp_cc_ack *a)
{
    cubic_state s;
    load(cc, &s);
    int new_round = hs_new_round(&s, a);
    cc->recovering = cc->recovering && in_recovery(cc, a->largest_sent_time);
    if (cc->app_limited) {
        /* §5.8: do not grow; the idle time does not count toward t. */
        if (s.t_epoch && a->now > s.last_ack)
            s.t_epoch += a->now - s.last_ack;
    } else if (!in_recovery(cc, a->largest_sent_time)) {
        if (cc->cwnd < cc->ssthresh)
            slow_start(cc, &s, a, new_round);
        else
            congestion_avoidance(cc, &s, a);
    }
    s.last_ack = a->now;
    store(cc, &s);
}

static void cubic_on_loss(rudp_cc *cc, rudp_time now, rudp_time sent_time, uint64_t lost_bytes,
                          uint64_t in_flight)
{
    (void)lost_bytes, (void)in_flight;
    if (in_recovery(cc, sent_time))
        return;
    cubic_state s;
    load(cc, &s);
    cc->recovery_start = now;
    cc->recovering = 1;
    double cwnd = (double)cc->cwnd;
    /* §4.7 fast convergence: below the last W_max, release bandwidth. */
    if (cwnd < s.w_max)
        s.w_max = cwnd * (1.0 + CUBIC_BETA) / 2.0;
    else
        s.w_max = cwnd;
    s.cwnd_prior = cwnd;
    uint64_t ss = (uint64_t)(cwnd * CUBIC_BETA);
    uint64_t minw = rudp__cc_min_window(cc->mss);
    cc->ssthresh = ss < minw ? minw : ss;
    cc->cwnd = cc->ssthresh;
    s.t_epoch = 0;
    s.frac = 0;
    s.hs = HS_DONE;
    store(cc, &s);
}

static void cubic_on_persistent_congestion(rudp_cc *cc, rudp_time now)
{
    (void)now;
    cubic_state s;
    load(cc, &s);
    /* §4.8: the window collapses; the next epoch starts with K = 0 and
     * W_max = the window at its beginning. ssthresh stays where the loss
     * that preceded this put it. */
    cc->cwnd = rudp__cc_min_window(cc->mss);
    cc->recovery_start = 0;
    cc->recovering = 0;
    s.w_max = 0;
    s.cwnd_prior = 0;
    s.t_epoch = 0;
    s.frac = 0;
    s.hs = HS_DONE;
    store(cc, &s);
}

void rudp__cc_cubic_get_info(const rudp_cc *cc, rudp_cc_cubic_info *out)
{
    cubic_state s;
    load(cc, &s);
    out->w_max = s.w_max;
    out->k = s.k;
    out->w_est = s.w_est;
    out->t_epoch = s.t_epoch;
    out->hystart = s.hs;
}

/* The loss-based phases, and HyStart++'s conservative slow start (RFC 9406
 * §4.2) told apart from slow start. */
static const char *cubic_phase(const rudp_cc *cc)
{
    cubic_state s;
    load(cc, &s);
    if (!cc->recovering && s.hs == HS_CSS && cc->cwnd < cc->ssthresh)
        return "conservative slow start";
    return rudp__cc_loss_phase(cc);
}

const rudp_cc_ops rudp__cc_cubic = {
    .name = "cubic",
    .init = cubic_init,
    .on_sent = cubic_on_sent,
    .on_ack = cubic_on_ack,
    .on_loss = cubic_on_loss,
    .on_persistent_congestion = cubic_on_persistent_congestion,
    .phase = cubic_phase,
};
