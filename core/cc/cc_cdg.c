/*
 * cc_cdg.c: CAIA Delay-Gradient (Hayes and Armitage, "Revisiting TCP
 * congestion control using delay gradients", IFIP Networking 2011) as
 * Linux runs it (net/ipv4/tcp_cdg.c): Reno that also backs off, at random,
 * with a probability that grows with how fast the RTT is rising.
 *
 * Each round keeps the least and largest RTT sample (a delayed-ACK filter
 * keeps single-packet ACKs after multi-packet ones out of the minimum
 * unless lower). At a round's end the gradients of the minimum and the
 * maximum against the previous round go into a window of 8 rounds whose
 * sums, g (the minimum's if positive, else the maximum's; scaled up while
 * the window fills), give the backoff probability 1 - e^(-g x 42e-6)
 * (g in us). A backoff takes the window to 0.7071 of itself (a reduction
 * period, Linux's CWR) and remembers the window before it in a shadow
 * window; after 5 backoffs that did not make either gradient sum fall by
 * 32 us the delay is taken as not ours to fix (ineffectual backoff) and
 * no more happen until one does. A loss halves, or takes the window to
 * half the shadow window if that is more (so backoffs do not make CDG lose
 * to Reno flows). Slow start is Reno's with HyStart's two exits (an ACK
 * train longer than half the least RTT; a round's least RTT more than
 * 1/8 above the least ever, after 8 samples).
 *
 * Our terms: windows in bytes, a segment one MSS; RTTs in us as Linux's
 * (the parameters are in us); a round ends as Vegas's does here (the
 * delivery counters); the random draw is rudp__cc_random's (the
 * connection's keyed generator), not a clock; the gradient window lives in
 * the controller's state (Linux allocates it, falling back to a window of
 * 1 when it cannot); the backoff's reduction is applied at once, as every
 * reduction here, and a loss within it is the same congestion event; no
 * growth while app-limited, the shadow window then following the window
 * down. Linux restarts CDG's state after an idle period
 * (CA_EVENT_CWND_RESTART); the ops here see no such event.
 */
#include <string.h>

#include "cc.h"

#define CDG_WINDOW 8          /* module parameter window: rounds of gradients */
#define CDG_BACKOFF_BETA 724  /* 0.7071 << 10 */
#define CDG_BACKOFF_FACTOR 42 /* 1000 / (G x window) */
#define CDG_USE_INEFF 5
#define CDG_DELACK_MAX 5

enum { CDG_UNKNOWN, CDG_BACKOFF };

typedef struct cdg_state {
    int32_t rtt_min, rtt_max;   /* this round's, us; 0: none */
    int32_t prev_min, prev_max; /* the last round's */
    int32_t gmin[CDG_WINDOW], gmax[CDG_WINDOW];
    int32_t gsum_min, gsum_max;
    int32_t delay_min;          /* least round minimum seen in slow start, us */
    uint64_t round_end;         /* delivered count that ends the round */
    uint64_t shadow_wnd;        /* bytes */
    rudp_time last_ack;         /* HyStart's ACK train, ns; 0: none */
    rudp_time round_start;
    uint32_t backoff_cnt;
    uint32_t sample_cnt;
    uint32_t backoffs;          /* for tests and logs */
    uint8_t tail;
    uint8_t gfilled;
    uint8_t state;
    uint8_t delack;
    uint8_t cwr;                /* a backoff's reduction is under way */
    uint64_t ca_acc;            /* Reno avoidance */
} cdg_state;

_Static_assert(sizeof(cdg_state) <= sizeof(((rudp_cc *)0)->st), "cdg state fits in st");

static void load(const rudp_cc *cc, cdg_state *s) { memcpy(s, cc->st, sizeof *s); }
static void store(rudp_cc *cc, const cdg_state *s) { memcpy(cc->st, s, sizeof *s); }

uint32_t rudp__cc_cdg_nexp(uint32_t ux)
{
    /* e^-x, x = ux / 1e6, times 2^32 - 1. Past x = 16.7 it is under
     * 2^-24: 0, as Linux's nexp_u32 cuts off. Halve x until small, sum
     * the series there, square back. */
    if (ux >= 1u << 24)
        return 0;
    double x = ux / 1e6;
    int k = 0;
    while (x > 0.125) {
        x /= 2;
        k++;
    }
    double e = 1, term = 1;
    for (int i = 1; i < 12; i++) {
        term *= -x / i;
        e += term;
    }
    while (k--)
        e *= e;
    return (uint32_t)(e * 4294967295.0);
}

static void cdg_init(rudp_cc *cc, rudp_time now)
{
    (void)now;
    cdg_state s;
    memset(&s, 0, sizeof s);
    s.shadow_wnd = cc->cwnd;
    store(cc, &s);
}

/* tcp_cdg_acked: the ACK's sample into the round's least and largest */
static void sample(rudp_cc *cc, cdg_state *s, const rudp_cc_ack *a)
{
    if (!a->rtt || !a->rtt->has_sample)
        return;
    rudp_time us = a->rtt->latest / 1000;
    if (!us)
        return;
    int32_t r = us > INT32_MAX ? INT32_MAX : (int32_t)us;
    uint64_t pkts = (a->acked_bytes + cc->mss - 1) / cc->mss;
    if (!cc->recovering) { /* Linux: no SACKed holes */
        if (pkts == 1 && s->delack) {
            /* a delayed ACK counts for the minimum only if provenly lower */
            if (r < s->rtt_min)
                s->rtt_min = r;
            s->delack--;
            return;
        } else if (pkts > 1 && s->delack < CDG_DELACK_MAX) {
            s->delack++;
        }
    }
    if (!s->rtt_min || r < s->rtt_min)
        s->rtt_min = r;
    if (r > s->rtt_max)
        s->rtt_max = r;
}

/* tcp_cdg_grad: the window's gradient sum, extrapolated while it fills */
static int32_t gradient(cdg_state *s)
{
    int32_t gmin = s->rtt_min - s->prev_min, gmax = s->rtt_max - s->prev_max;
    s->gsum_min += gmin - s->gmin[s->tail];
    s->gsum_max += gmax - s->gmax[s->tail];
    s->gmin[s->tail] = gmin;
    s->gmax[s->tail] = gmax;
    s->tail = (uint8_t)((s->tail + 1) & (CDG_WINDOW - 1));
    gmin = s->gsum_min;
    gmax = s->gsum_max;
    int32_t grad = gmin > 0 ? gmin : gmax;
    if (!s->gfilled) {
        if (s->tail == 0)
            s->gfilled = 1;
        else
            grad = grad * CDG_WINDOW / s->tail;
    }
    if (gmin <= -32 || gmax <= -32)
        s->backoff_cnt = 0; /* the last backoff worked */
    return grad;
}

/* tcp_cdg_backoff: at random, more likely the steeper the gradient */
static int backoff(rudp_cc *cc, cdg_state *s, rudp_time now, int32_t grad)
{
    uint32_t draw = (uint32_t)rudp__cc_random(cc);
    if (draw <= rudp__cc_cdg_nexp((uint32_t)grad * CDG_BACKOFF_FACTOR))
        return 0;
    if (++s->backoff_cnt > CDG_USE_INEFF)
        return 0; /* ineffectual: the delay is not ours to fix */
    if (s->shadow_wnd < cc->cwnd)
        s->shadow_wnd = cc->cwnd;
    s->state = CDG_BACKOFF;
    s->cwr = 1;
    s->backoffs++;
    uint64_t w = cc->cwnd / cc->mss;
    rudp__cc_cut_to(cc, now, (w * CDG_BACKOFF_BETA >> 10) * cc->mss);
    s->ca_acc = 0;
    return 1;
}

/* tcp_cdg_hystart_update */
static void hystart(rudp_cc *cc, cdg_state *s, rudp_time now)
{
    if (!s->delay_min || (s->rtt_min && s->rtt_min < s->delay_min))
        s->delay_min = s->rtt_min;
    if (!s->delay_min)
        return;
    if (!s->last_ack || cc->app_limited) {
        s->last_ack = s->round_start = now;
    } else if (now < s->last_ack + RUDP_MS(3)) {
        /* an ACK train: spaced ACKs of one flight */
        int32_t base_owd = s->delay_min / 2 > 125 ? s->delay_min / 2 : 125;
        s->last_ack = now;
        if (now > s->round_start + RUDP_US((uint32_t)base_owd)) {
            cc->ssthresh = cc->cwnd;
            return;
        }
    }
    if (s->sample_cnt < 8) {
        s->sample_cnt++;
    } else {
        int32_t thresh = s->delay_min + s->delay_min / 8;
        if (thresh < 125)
            thresh = 125;
        if (s->rtt_min > thresh)
            cc->ssthresh = cc->cwnd;
    }
}

/* A new round: the last one's extremes become the previous. */
static void next_round(cdg_state *s, uint64_t delivered)
{
    s->round_end = delivered;
    s->prev_min = s->rtt_min;
    s->prev_max = s->rtt_max;
    s->rtt_min = s->rtt_max = 0;
}

static void cdg_on_ack(rudp_cc *cc, const rudp_cc_ack *a)
{
    cdg_state s;
    load(cc, &s);
    cc->recovering = cc->recovering && rudp__cc_in_recovery(cc, a->largest_sent_time);
    if (s.cwr && !cc->recovering) {
        /* CA_EVENT_COMPLETE_CWR */
        s.cwr = 0;
        s.state = CDG_UNKNOWN;
        next_round(&s, a->delivered);
    }
    if (!a->acked_bytes)
        goto out;
    sample(cc, &s, a);
    if (rudp__cc_in_recovery(cc, a->largest_sent_time))
        goto out; /* cong_avoid is not called in CWR or Recovery */
    /* tcp_cdg_cong_avoid */
    if (cc->cwnd < cc->ssthresh)
        hystart(cc, &s, a->now);
    if (a->delivered - a->rs_delivered >= s.round_end && (s.rtt_min || s.rtt_max)) {
        int32_t grad = 0;
        if (s.prev_min || s.prev_max)
            grad = gradient(&s);
        next_round(&s, a->delivered);
        s.last_ack = 0;
        s.sample_cnt = 0;
        if (grad > 0 && backoff(cc, &s, a->now, grad))
            goto out;
    }
    if (cc->app_limited) {
        if (s.shadow_wnd > cc->cwnd)
            s.shadow_wnd = cc->cwnd;
        goto out;
    }
    uint64_t before = cc->cwnd;
    rudp__cc_reno_increase(cc, &s.ca_acc, a->acked_bytes);
    s.shadow_wnd += cc->cwnd - before;
out:
    store(cc, &s);
}

static void cdg_on_loss(rudp_cc *cc, rudp_time now, rudp_time sent_time, uint64_t lost_bytes,
                        uint64_t in_flight)
{
    (void)lost_bytes, (void)in_flight;
    if (rudp__cc_in_recovery(cc, sent_time))
        return;
    cdg_state s;
    load(cc, &s);
    /* tcp_cdg_ssthresh, with the shadow window */
    uint64_t mss = cc->mss, w = cc->cwnd / mss, target;
    if (s.state == CDG_BACKOFF) {
        target = w * CDG_BACKOFF_BETA >> 10;
    } else {
        uint64_t sh = s.shadow_wnd / mss / 2;
        s.shadow_wnd = (sh < w ? sh : w) * mss;
        target = sh < w ? sh : w;
        if (target < w / 2)
            target = w / 2;
    }
    rudp__cc_cut_to(cc, now, target * mss);
    s.ca_acc = 0;
    store(cc, &s);
}

static void cdg_on_persistent_congestion(rudp_cc *cc, rudp_time now)
{
    (void)now;
    cdg_state s;
    load(cc, &s);
    rudp__cc_collapse(cc);
    s.ca_acc = 0;
    s.cwr = 0;
    s.state = CDG_UNKNOWN;
    store(cc, &s);
}

void rudp__cc_cdg_get_info(const rudp_cc *cc, rudp_cc_cdg_info *out)
{
    cdg_state s;
    load(cc, &s);
    out->shadow_wnd = s.shadow_wnd;
    out->backoffs = s.backoffs;
    out->backoff_cnt = s.backoff_cnt;
    out->delay_min_us = s.delay_min;
}

const rudp_cc_ops rudp__cc_cdg = {
    .name = "cdg",
    .init = cdg_init,
    .on_sent = rudp__cc_on_sent_none,
    .on_ack = cdg_on_ack,
    .on_loss = cdg_on_loss,
    .on_persistent_congestion = cdg_on_persistent_congestion,
    .phase = rudp__cc_loss_phase,
};
