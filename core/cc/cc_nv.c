/*
 * cc_nv.c: TCP-NV ("New Vegas", Brakmo, 2010) as Linux runs it
 * (net/ipv4/tcp_nv.c): a Vegas successor for data centres that predicts
 * from the delivery rate and the least RTT the window the path holds, and
 * shrinks towards it when the window outgrows it by more than a few
 * packets, before a loss.
 *
 * Every ACK in TCP_CA_Open with an RTT sample: avg = (sample + last avg)
 * / 2 (the first one also sets min_rtt to twice itself); rate = bytes
 * delivered over the sample's interval / avg; the round's largest rate
 * kept; min_rtt the least avg, replaced every reset period (5 s x a random
 * 3/4 .. 5/4; 2 s the first time) by the least of the period just ended.
 * Once a round, with max_win = rate x min_rtt / mss + pad (10): above it
 * (after 2 rounds and 60 samples; 30 while ssthresh is unset) the
 * window loses 30% of the excess (at least 2 segments; max_win if the
 * excess is 2 or less), ssthresh becomes max_win and growth stops; at or
 * below max_win - 2 (after 20 samples) growth is allowed again; between,
 * nothing. Growth is Reno's (one segment per max(4, cwnd) acknowledged)
 * scaled by a growth factor that drops by one at each timeout-like loss
 * (one segment per cwnd << 1, << 2 ... acknowledged) and climbs back one
 * step every 9 rounds without congestion. A loss takes the window to 80%
 * and stops growth until a round without congestion allows it. If only one
 * sample arrives a round while at least nv_min_cwnd - 1 segments were
 * acknowledged, the window is too small to judge (coalesced ACKs):
 * nv_min_cwnd grows by 2 (to 81 at most), growth is allowed and the round
 * is stretched; every reset period halves it (at least 4).
 *
 * Our terms: windows in bytes, a segment one MSS; RTTs in ns; the rate in
 * bytes/s; a round ends as Vegas's does here (the delivery counters) and
 * the bytes delivered over a sample's interval are the ACK's rs_delivered
 * (Linux's sample->in_flight, mss x (delivered - prior_delivered)); the
 * random draw is rudp__cc_random's (the connection's keyed generator), not
 * a clock; Linux's optional BPF base_rtt bounds are not offered (no BPF
 * here); TCP_CA_Loss (persistent congestion) ends with the next ACK. No
 * growth while app-limited (tcp_is_cwnd_limited).
 */
#include <string.h>

#include "cc.h"

#define NV_PAD 10                      /* packets queued allowed */
#define NV_PAD_BUFFER 2                /* no growth this close to nv_pad */
#define NV_RESET_PERIOD RUDP_SEC(5)
#define NV_MIN_CWND_FLOOR 2            /* file-level nv_min_cwnd: no NV cut below */
#define NV_CONG_DEC_MULT (30 * 128 / 100) /* 30% of the excess, << 7 */
#define NV_LOSS_DEC_FACTOR 819         /* 80%, << 10 */
#define NV_GROWTH_RATE_NEG 8
#define NV_DEC_EVAL_MIN_CALLS 60
#define NV_INC_EVAL_MIN_CALLS 20
#define NV_SSTHRESH_EVAL_MIN_CALLS 30
#define NV_STOP_RTT_CNT 10
#define NV_RTT_MIN_CNT 2
#define NV_MIN_CWND 4                  /* per-connection nv_min_cwnd's start */
#define NV_MIN_CWND_GROW 2
#define NV_TSO_CWND_BOUND 80

typedef struct nv_state {
    rudp_time reset_at;    /* when min_rtt takes min_rtt_new */
    rudp_time last_rtt;    /* averaged; 0 before a sample */
    rudp_time min_rtt;     /* RUDP_TIME_NEVER before one */
    rudp_time min_rtt_new;
    uint64_t max_rate;     /* bytes/s, this round */
    uint64_t round_end;    /* delivered count that ends the round */
    uint64_t no_cong_cnt;
    uint64_t ca_acc;       /* bytes acked toward the next increase */
    uint32_t eval_cnt;     /* samples since the last decision, at most 255 */
    uint32_t rtt_cnt;      /* rounds since the last decision, at most 255 */
    uint32_t min_cwnd;     /* segments: no decision below (nv_min_cwnd) */
    int growth_factor;     /* < 0: under one segment a round */
    int allow_growth;
    int reset;             /* restart the counts on return to Open */
    int open;              /* TCP_CA_Open */
} nv_state;

_Static_assert(sizeof(nv_state) <= sizeof(((rudp_cc *)0)->st), "nv state fits in st");

static void load(const rudp_cc *cc, nv_state *s) { memcpy(s, cc->st, sizeof *s); }
static void store(rudp_cc *cc, const nv_state *s) { memcpy(cc->st, s, sizeof *s); }

/* tcpnv_reset: the next ACK ends a round */
static void restart(nv_state *s, uint64_t delivered)
{
    s->reset = 0;
    s->no_cong_cnt = 0;
    s->rtt_cnt = 0;
    s->last_rtt = 0;
    s->max_rate = 0;
    s->round_end = delivered;
    s->eval_cnt = 0;
}

static void nv_init(rudp_cc *cc, rudp_time now)
{
    nv_state s;
    memset(&s, 0, sizeof s);
    restart(&s, 0);
    s.allow_growth = 1;
    s.reset_at = now + RUDP_SEC(2);
    s.min_rtt = s.min_rtt_new = RUDP_TIME_NEVER;
    s.min_cwnd = NV_MIN_CWND;
    s.open = 1;
    store(cc, &s);
}

/* The once-a-round decision of tcpnv_acked; 0 if it returned early. */
static int decide(rudp_cc *cc, nv_state *s)
{
    uint64_t mss = cc->mss, w = cc->cwnd / mss;
    /* the window the rate fills at the least RTT, and the pad */
    uint64_t by_slope = s->max_rate * (s->min_rtt / 1000) / (1000000ull * mss);
    uint64_t max_win = by_slope + NV_PAD;
    if (w > max_win) {
        if (s->rtt_cnt < NV_RTT_MIN_CNT) {
            return 0;
        } else if (cc->ssthresh == UINT64_MAX) {
            if (s->eval_cnt < NV_SSTHRESH_EVAL_MIN_CALLS)
                return 0;
        } else if (s->eval_cnt < NV_DEC_EVAL_MIN_CALLS) {
            if (s->allow_growth && s->rtt_cnt > NV_STOP_RTT_CNT)
                s->allow_growth = 0;
            return 0;
        }
        /* congested */
        s->allow_growth = 0;
        cc->ssthresh = max_win * mss;
        if (w - max_win > 2) {
            uint64_t dec = ((w - max_win) * NV_CONG_DEC_MULT) >> 7;
            w -= dec > 2 ? dec : 2;
        } else {
            w = max_win;
        }
        cc->cwnd = w * mss;
        if (s->growth_factor > 0)
            s->growth_factor = 0;
        s->no_cong_cnt = 0;
    } else if (w + NV_PAD_BUFFER <= max_win) {
        if (s->eval_cnt < NV_INC_EVAL_MIN_CALLS)
            return 0;
        s->allow_growth = 1;
        s->no_cong_cnt++;
        if (s->growth_factor < 0 && s->no_cong_cnt > NV_GROWTH_RATE_NEG) {
            s->growth_factor++;
            s->no_cong_cnt = 0;
        }
    } else {
        return 0;
    }
    s->eval_cnt = 0;
    s->rtt_cnt = 0;
    s->max_rate = 0;
    if (cc->cwnd < NV_MIN_CWND_FLOOR * mss)
        cc->cwnd = NV_MIN_CWND_FLOOR * mss;
    return 1;
}

/* tcpnv_acked */
static void sample(rudp_cc *cc, nv_state *s, const rudp_cc_ack *a)
{
    if (!a->rtt || !a->rtt->has_sample || !a->rs_delivered)
        return;
    rudp_time avg = a->rtt->latest;
    if (s->last_rtt) {
        avg = (avg + s->last_rtt) >> 1;
    } else {
        s->min_rtt = avg << 1;
    }
    s->last_rtt = avg;
    uint64_t rate = a->rs_delivered * RUDP_SEC(1) / (avg ? avg : 1);
    if (s->max_rate < rate)
        s->max_rate = rate;
    if (s->eval_cnt < 255)
        s->eval_cnt++;
    if (avg < s->min_rtt)
        s->min_rtt = avg;
    if (avg < s->min_rtt_new)
        s->min_rtt_new = avg;
    if (a->now >= s->reset_at) {
        /* a warm reset: the least of the period now ends, next in 5 s x
         * (384 + a random byte) / 512 */
        s->min_rtt = s->min_rtt_new;
        s->min_rtt_new = RUDP_TIME_NEVER;
        uint64_t r = rudp__cc_random(cc) & 0xff;
        s->reset_at = a->now + NV_RESET_PERIOD * (384 + r) / 512;
        s->min_cwnd = s->min_cwnd / 2 > NV_MIN_CWND ? s->min_cwnd / 2 : NV_MIN_CWND;
    }
    if (a->delivered - a->rs_delivered < s->round_end)
        return;
    s->round_end = a->delivered;
    if (s->rtt_cnt < 255)
        s->rtt_cnt++;
    /* one sample a round: too small a window to judge (coalescing) */
    if (s->eval_cnt == 1 && a->acked_bytes >= (uint64_t)(s->min_cwnd - 1) * cc->mss &&
        s->min_cwnd < NV_TSO_CWND_BOUND + 1) {
        s->min_cwnd += NV_MIN_CWND_GROW;
        if (s->min_cwnd > NV_TSO_CWND_BOUND + 1)
            s->min_cwnd = NV_TSO_CWND_BOUND + 1;
        s->round_end = a->delivered + (uint64_t)s->min_cwnd * cc->mss;
        s->eval_cnt = 0;
        s->allow_growth = 1;
        return;
    }
    decide(cc, s);
}

static void nv_on_ack(rudp_cc *cc, const rudp_cc_ack *a)
{
    nv_state s;
    load(cc, &s);
    cc->recovering = cc->recovering && rudp__cc_in_recovery(cc, a->largest_sent_time);
    if (!s.open && !cc->recovering) {
        s.open = 1; /* tcpnv_state(TCP_CA_Open) */
        if (s.reset)
            restart(&s, a->delivered);
    }
    if (!a->acked_bytes || rudp__cc_in_recovery(cc, a->largest_sent_time))
        goto out;
    sample(cc, &s, a);
    /* tcpnv_cong_avoid */
    if (cc->app_limited || !s.allow_growth)
        goto out;
    uint64_t acked = rudp__cc_slow_start(cc, a->acked_bytes);
    if (!acked)
        goto out;
    uint64_t w = cc->cwnd / cc->mss, cnt;
    if (s.growth_factor < 0)
        cnt = w << -s.growth_factor;
    else
        cnt = w >> s.growth_factor > 4 ? w >> s.growth_factor : 4;
    rudp__cc_avoid_ai(cc, &s.ca_acc, cnt * cc->mss, acked);
out:
    store(cc, &s);
}

/* tcpnv_state for Recovery and Loss */
static void leave_open(nv_state *s)
{
    s->open = 0;
    s->reset = 1;
    s->allow_growth = 0;
    s->ca_acc = 0;
}

static void nv_on_loss(rudp_cc *cc, rudp_time now, rudp_time sent_time, uint64_t lost_bytes,
                       uint64_t in_flight)
{
    (void)lost_bytes, (void)in_flight;
    if (rudp__cc_in_recovery(cc, sent_time))
        return;
    nv_state s;
    load(cc, &s);
    /* tcpnv_recalc_ssthresh: 80% */
    rudp__cc_cut_to(cc, now, (cc->cwnd / cc->mss * NV_LOSS_DEC_FACTOR >> 10) * cc->mss);
    leave_open(&s);
    store(cc, &s);
}

static void nv_on_persistent_congestion(rudp_cc *cc, rudp_time now)
{
    (void)now;
    nv_state s;
    load(cc, &s);
    rudp__cc_collapse(cc);
    leave_open(&s);
    /* TCP_CA_Loss: back to Reno's rate, then below it */
    if (s.growth_factor > 0)
        s.growth_factor = 0;
    if (s.growth_factor > -8)
        s.growth_factor--;
    store(cc, &s);
}

void rudp__cc_nv_get_info(const rudp_cc *cc, rudp_cc_nv_info *out)
{
    nv_state s;
    load(cc, &s);
    out->min_rtt = s.min_rtt;
    out->reset_at = s.reset_at;
    out->growth_factor = s.growth_factor;
    out->allow_growth = s.allow_growth;
    out->min_cwnd = s.min_cwnd;
}

const rudp_cc_ops rudp__cc_nv = {
    .name = "nv",
    .init = nv_init,
    .on_sent = rudp__cc_on_sent_none,
    .on_ack = nv_on_ack,
    .on_loss = nv_on_loss,
    .on_persistent_congestion = nv_on_persistent_congestion,
    .phase = rudp__cc_loss_phase,
};
