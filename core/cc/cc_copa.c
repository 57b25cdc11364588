/*
 * cc_copa.c: Copa (V. Arun and H. Balakrishnan, "Copa: Practical
 * Delay-Based Congestion Control for the Internet", NSDI 2018) in its
 * default mode: the delay-aware controller for links whose rate changes
 * under the flow (cellular), RUDP_CC=copa.
 *
 * Copa steers the sending rate lambda = cwnd / RTTstanding toward a target
 * 1 / (delta * dq), where dq = RTTstanding - RTTmin is the queueing delay
 * the flow sees: the fewer packets queued, the faster it may go, and at
 * equilibrium about 1/delta packets wait at the bottleneck. On each ACK the window moves v / (delta * cwnd) packets toward the
 * target (up when lambda <= target, else down), so by about v / delta
 * packets per round trip; v, the velocity, doubles each round trip once
 * the window has moved the same way for three, and drops back to 1 when
 * the direction changes. Slow start doubles the window each round trip
 * until the rate first exceeds the target.
 *
 * RTTmin is the least RTT sample of the last 10 s; RTTstanding the least
 * of the last srtt (at most 2 RTTmin), which filters the ACK clock's noise (delayed ACKs,
 * a cellular link's bursty delivery) while still seeing a queue that
 * stays.
 *
 * Two settings differ from the paper's, chosen on the recorded LTE links
 * of the benchmark (B18 Verizon, B19 T-Mobile; 30 s bulk, one run each,
 * kernel bbr 4.9 / 15.2 Mbit/s with ping p95 740-800 / 510 ms there).
 * Such a link delivers in bursts with gaps of 10-20 ms (2,400 of them in
 * Verizon's 140 s), so even an idle ping sees ~10 ms over the minimum
 * (p50 50 ms on a 41 ms path), and Copa reads that jitter as queue: with
 * the paper's delta = 0.5 and srtt/2 it got 3.4 / 3.3 Mbit/s (0.69x /
 * 0.22x bbr) at p95 121 / 171 ms. A smaller delta asks for more packets
 * queued (delta = 0.2: 0.79x / 0.64x; 0.1: 0.95x / 0.87x at p95 255 /
 * 245 ms), as Facebook's deployments of mvfst's Copa do (0.05); the
 * longer standing window (srtt) lets a gap pass without reading it as a
 * queue: delta 0.1 with it gave 0.96x / 0.92x at p95 281 / 237 ms (0.36x /
 * 0.46x bbr's). srtt x 2 queued more (p95 0.72x bbr's on T-Mobile);
 * cutting the window to the target at once when over twice it, or taking
 * RTTmin from the standing RTTs, lost throughput. Both are windowed minima kept as Linux's lib/win_minmax.c does
 * (three samples). Each ACK gives a sample: its time minus the send time
 * of the largest packet it newly acknowledges (raw: Copa wants the delay
 * packets met, ack delay included, and the minimum filters remove it).
 *
 * Losses: as the paper's default mode and mvfst's Copa, a random loss does
 * not change the window (the queueing delay is the signal); but a loss
 * while a queue stands (dq over RTTmin/16: the buffer overflowed) takes it
 * to 0.7x once per round trip, which Copa's default mode lacks and a small
 * delta needs (slow start's overshoot into a 1-BDP buffer at 100 Mbit/s
 * otherwise kept overflowing it: 17% retransmitted in the simulator);
 * persistent congestion collapses it to the minimum. And as BBR's
 * ProbeRTT, a window that kept a queue for 5 s (no sample within RTTmin/16
 * of RTTmin) is halved once, so RTTmin is seen again before its 10 s
 * window forgets it (else the queue reads as none and ratchets up). Pacing at 2 * cwnd / RTTstanding, as the paper. Not done: the
 * competitive mode (switching to an AIMD delta when a buffer-filling flow
 * shares the bottleneck), so Copa yields to cubic on a shared queue; it is
 * opt-in for links the flow has mostly to itself.
 *
 * Our terms: windows are bytes, the paper's packet steps are one MSS
 * (cwnd += v * MSS * acked / (delta * cwnd) per ACK, as mvfst); a round
 * trip for the velocity is srtt since the last check (mvfst's); no
 * increase while the application leaves the window unused, as the other
 * controllers here.
 */
#include <string.h>

#include "cc.h"

#define COPA_DELTA_INV 10              /* 1 / delta: delta = 0.1 (the paper 0.5, mvfst's
                                          deployments 0.05: see the top) */
#define COPA_STANDING_PCT 100          /* RTTstanding's window, % of srtt (the paper: 50) */
#define COPA_MIN_RTT_WIN RUDP_SEC(10)  /* RTTmin's window */
#define COPA_SAME_DIR_ROUNDS 3         /* rounds in one direction before v doubles */
#define COPA_MIN_RTT_TOLERANCE 16      /* a sample within RTTmin/16 of it confirms it */
#define COPA_DRAIN_AFTER RUDP_SEC(5)   /* RTTmin unconfirmed this long: drain */
#define COPA_LOSS_BETA 7               /* tenths kept on a loss with a queue (CUBIC's 0.7) */

typedef struct copa_state {
    rudp_cc_minmax min_rtt[3];   /* windowed minimum, COPA_MIN_RTT_WIN */
    rudp_cc_minmax standing[3];  /* windowed minimum, srtt / 2 */
    uint64_t velocity;           /* >= 1 */
    int direction;               /* RUDP_COPA_UP, RUDP_COPA_DOWN, 0 before the first check */
    uint32_t same_dir;           /* consecutive checks in `direction` */
    rudp_time dir_checked;       /* last velocity check; 0 before the first */
    uint64_t dir_cwnd;           /* the window at that check */
    int slow_start;
    rudp_time min_seen;          /* last sample within tolerance of RTTmin */
    rudp_time cut_at;            /* last reduction (a loss with a queue, a drain) */
    uint64_t queue_seen;         /* dq (ns) at the last ACK: a loss judges by it */
} copa_state;

_Static_assert(sizeof(copa_state) <= sizeof(((rudp_cc *)0)->st), "copa state fits in st");

static void load(const rudp_cc *cc, copa_state *s) { memcpy(s, cc->st, sizeof *s); }
static void store(rudp_cc *cc, const copa_state *s) { memcpy(cc->st, s, sizeof *s); }

static uint64_t mul_div(uint64_t a, uint64_t b, uint64_t d)
{
    unsigned __int128 r = (unsigned __int128)a * b / (d ? d : 1);
    return r > UINT64_MAX ? UINT64_MAX : (uint64_t)r;
}

static void copa_init(rudp_cc *cc, rudp_time now)
{
    (void)now;
    copa_state s;
    memset(&s, 0, sizeof s);
    for (int i = 0; i < 3; i++)
        s.min_rtt[i].v = s.standing[i].v = RUDP_TIME_NEVER;
    s.velocity = 1;
    s.slow_start = 1;
    store(cc, &s);
}

static void set_direction(copa_state *s, int dir, const rudp_cc *cc, rudp_time now)
{
    s->direction = dir;
    s->velocity = 1;
    s->same_dir = 0;
    s->dir_checked = now;
    s->dir_cwnd = cc->cwnd;
}

/* Once per srtt: did the window move the same way as at the last check?
 * Three times running doubles the velocity (mvfst's
 * checkAndUpdateDirection). */
static void check_direction(copa_state *s, const rudp_cc *cc, rudp_time now, rudp_time srtt)
{
    if (!s->dir_checked) {
        s->dir_checked = now;
        s->dir_cwnd = cc->cwnd;
        return;
    }
    if (now - s->dir_checked < srtt)
        return;
    int dir = cc->cwnd > s->dir_cwnd ? RUDP_COPA_UP : RUDP_COPA_DOWN;
    if (dir != s->direction) {
        set_direction(s, dir, cc, now);
        return;
    }
    if (++s->same_dir >= COPA_SAME_DIR_ROUNDS) {
        /* At most a window's worth of change per round trip: v / delta
         * packets a round must stay below cwnd / MSS. */
        if (s->velocity * COPA_DELTA_INV * cc->mss < cc->cwnd)
            s->velocity *= 2;
    }
    s->dir_checked = now;
    s->dir_cwnd = cc->cwnd;
}

static void copa_on_ack(rudp_cc *cc, const rudp_cc_ack *a)
{
    copa_state s;
    load(cc, &s);
    if (a->now < a->largest_sent_time || !a->acked_bytes) {
        store(cc, &s);
        return;
    }
    rudp_time rtt = a->now - a->largest_sent_time;
    if (rtt == 0)
        rtt = 1;
    rudp_time srtt = a->rtt && a->rtt->has_sample ? a->rtt->smoothed : rtt;
    rudp__cc_minmax_update(s.min_rtt, COPA_MIN_RTT_WIN, a->now, rtt, 0);
    /* srtt, but at most twice RTTmin: srtt swells with the queue, and a
     * window as long as it would keep remembering the sample of an empty
     * queue while the queue grows. */
    rudp_time swin = srtt * COPA_STANDING_PCT / 100;
    if (swin > 2 * s.min_rtt[0].v)
        swin = 2 * s.min_rtt[0].v;
    rudp__cc_minmax_update(s.standing, swin ? swin : 1, a->now, rtt, 0);
    rudp_time min = s.min_rtt[0].v, standing = s.standing[0].v;
    if (standing < min)
        standing = min;
    rudp_time dq = standing - min;
    s.queue_seen = dq;
    if (rtt - min <= min / COPA_MIN_RTT_TOLERANCE || !s.min_seen)
        s.min_seen = a->now;

    /* lambda = cwnd / standing <= target = MSS / (delta * dq), in integers:
     * cwnd * dq <= MSS * standing / delta. No queue: always up. */
    int up = dq == 0 || (unsigned __int128)cc->cwnd * dq <=
                            (unsigned __int128)cc->mss * standing * COPA_DELTA_INV;

    check_direction(&s, cc, a->now, srtt);
    uint64_t min_w = rudp__cc_min_window(cc->mss);
    if (s.slow_start) {
        if (up) {
            if (!cc->app_limited)
                cc->cwnd += a->acked_bytes; /* doubles per round trip */
        } else {
            s.slow_start = 0;
        }
    }
    if (!s.slow_start) {
        int dir = up ? RUDP_COPA_UP : RUDP_COPA_DOWN;
        if (s.direction != dir && s.velocity > 1)
            set_direction(&s, dir, cc, a->now);
        uint64_t step = mul_div(s.velocity * cc->mss * COPA_DELTA_INV, a->acked_bytes, cc->cwnd);

        if (up) {
            if (!cc->app_limited)
                cc->cwnd += step;
        } else {
            cc->cwnd = cc->cwnd > step + min_w ? cc->cwnd - step : min_w;
        }
    }
    /* A queue that never empties hides the path's RTT, and once RTTmin's
     * window forgets it, the queue reads as none and grows (more so with
     * a small delta): as BBR's ProbeRTT, when no sample has come near
     * RTTmin for COPA_DRAIN_AFTER, halve the window once, so the queue
     * drains and the path's RTT is seen again before RTTmin expires. */
    if (!s.slow_start && a->now - s.min_seen > COPA_DRAIN_AFTER) {
        uint64_t w = cc->cwnd / 2;
        cc->cwnd = w > min_w ? w : min_w;
        s.min_seen = a->now;
        s.cut_at = a->now;
        set_direction(&s, RUDP_COPA_DOWN, cc, a->now);
    }
    /* Paced at twice the window's rate over the standing RTT. */
    cc->pacing_rate = mul_div(2 * cc->cwnd, RUDP_SEC(1), standing);
    store(cc, &s);
}

/* A loss with no queue (random loss) leaves the window alone, as Copa's
 * default mode; a loss while a queue stands (a drop-tail buffer
 * overflowing: slow start's overshoot, a rate that fell faster than the
 * window) takes the window to 0.7 of itself, once per round trip (losses of
 * packets sent before the cut belong to it), and ends slow start. */
static void copa_on_loss(rudp_cc *cc, rudp_time now, rudp_time sent_time, uint64_t lost_bytes,
                         uint64_t in_flight)
{
    (void)lost_bytes, (void)in_flight;
    copa_state s;
    load(cc, &s);
    rudp_time min = s.min_rtt[0].v;
    if (min == RUDP_TIME_NEVER || sent_time <= s.cut_at || sent_time < cc->epoch ||
        s.queue_seen <= min / COPA_MIN_RTT_TOLERANCE)
        return;
    uint64_t w = cc->cwnd / 10 * COPA_LOSS_BETA, min_w = rudp__cc_min_window(cc->mss);
    cc->cwnd = w > min_w ? w : min_w;
    s.cut_at = now;
    s.slow_start = 0;
    set_direction(&s, RUDP_COPA_DOWN, cc, now);
    store(cc, &s);
}

static void copa_on_persistent_congestion(rudp_cc *cc, rudp_time now)
{
    (void)now;
    copa_state s;
    load(cc, &s);
    rudp__cc_collapse(cc);
    s.velocity = 1;
    s.same_dir = 0;
    s.dir_checked = 0;
    s.cut_at = now;
    store(cc, &s);
}

static const char *copa_phase(const rudp_cc *cc)
{
    copa_state s;
    load(cc, &s);
    return s.slow_start ? "slow start" : "avoidance";
}

void rudp__cc_copa_get_info(const rudp_cc *cc, rudp_cc_copa_info *out)
{
    copa_state s;
    load(cc, &s);
    out->min_rtt = s.min_rtt[0].v;
    out->standing_rtt = s.standing[0].v;
    out->velocity = s.velocity;
    out->direction = s.direction;
    out->slow_start = s.slow_start;
}

const rudp_cc_ops rudp__cc_copa = {
    .name = "copa",
    .init = copa_init,
    .on_sent = rudp__cc_on_sent_none,
    .on_ack = copa_on_ack,
    .on_loss = copa_on_loss,
    .on_persistent_congestion = copa_on_persistent_congestion,
    .phase = copa_phase,
};
