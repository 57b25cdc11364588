/*
 * cc_vegas.c: TCP Vegas (Brakmo and Peterson, IEEE JSAC 13(8), 1995) as
 * Linux runs it (net/ipv4/tcp_vegas.c): a delay-based controller that
 * keeps between alpha and beta segments queued in the network.
 *
 * Once per round trip it compares the window with what the round's
 * minimum RTT says gets through: diff = cwnd * (rtt - base_rtt) / base_rtt
 * segments (integer, as Linux computes it), base_rtt being the least RTT
 * ever seen. In congestion avoidance the window grows one segment when
 * diff < alpha, shrinks one when diff > beta, and holds in between. Slow
 * start (Reno's, every RTT) ends when diff > gamma, with the window set to
 * what the actual rate fills (target + 1). Losses are Reno's (halve);
 * Vegas stands aside during recovery and after persistent congestion and
 * starts afresh with the first round that follows.
 *
 * Our terms: a round ends when a packet sent after it began is
 * acknowledged (the delivery counters, as cubic's HyStart++ rounds;
 * Linux's beg_snd_nxt); an RTT sample is the ACK's latest one; windows
 * are bytes, Linux's segment steps are one MSS. Choice Linux does not
 * make: no increase while the application leaves the window unused
 * (Vegas's decrease still applies), as the other controllers here.
 */
#include <string.h>

#include "cc.h"

/* Linux's module defaults, in segments (tcp_vegas.c) */
#define VEGAS_ALPHA 2
#define VEGAS_BETA 4
#define VEGAS_GAMMA 1

typedef struct vegas_state {
    rudp_cc_vround v;    /* RTT samples and rounds */
    int doing;           /* Vegas is on (Linux: doing_vegas_now, TCP_CA_Open) */
    uint64_t ca_acc;     /* Reno avoidance: bytes acked toward one MSS */
} vegas_state;

_Static_assert(sizeof(vegas_state) <= sizeof(((rudp_cc *)0)->st), "vegas state fits in st");

static void load(const rudp_cc *cc, vegas_state *s) { memcpy(s, cc->st, sizeof *s); }
static void store(rudp_cc *cc, const vegas_state *s) { memcpy(cc->st, s, sizeof *s); }

/* vegas_enable: a clean round, whose end is the first ACK of a packet
 * sent from now on. */
static void enable(vegas_state *s, uint64_t delivered)
{
    s->doing = 1;
    rudp__cc_vround_restart(&s->v, delivered);
}

static void vegas_init(rudp_cc *cc, rudp_time now)
{
    (void)now;
    vegas_state s;
    memset(&s, 0, sizeof s);
    rudp__cc_vround_init(&s.v);
    s.doing = 1;
    store(cc, &s);
}

/* The once-per-round decision (tcp_vegas_cong_avoid). */
static void decide(rudp_cc *cc, vegas_state *s, uint64_t acked)
{
    uint64_t mss = cc->mss, w = cc->cwnd / mss;
    rudp_time rtt = s->v.min_rtt, base = s->v.base_rtt;
    uint64_t target = w * base / rtt;
    uint64_t diff = w * (rtt - base) / base;
    int slow_start = cc->cwnd < cc->ssthresh;
    if (diff > VEGAS_GAMMA && slow_start) {
        /* Too fast: the window the actual rate fills, and avoidance. */
        uint64_t t = (target + 1) * mss;
        if (t < cc->cwnd)
            cc->cwnd = t;
        if (cc->cwnd < cc->ssthresh)
            cc->ssthresh = cc->cwnd;
    } else if (slow_start) {
        if (!cc->app_limited)
            cc->cwnd += acked;
    } else if (diff > VEGAS_BETA) {
        cc->cwnd -= mss;
        if (cc->cwnd < cc->ssthresh)
            cc->ssthresh = cc->cwnd;
    } else if (diff < VEGAS_ALPHA && !cc->app_limited) {
        cc->cwnd += mss;
    }
    uint64_t minw = rudp__cc_min_window(cc->mss);
    if (cc->cwnd < minw)
        cc->cwnd = minw;
    /* tcp_current_ssthresh outside recovery: at least 3/4 of the window */
    uint64_t floor = (cc->cwnd >> 1) + (cc->cwnd >> 2);
    if (cc->ssthresh < floor)
        cc->ssthresh = floor;
}

static void vegas_on_ack(rudp_cc *cc, const rudp_cc_ack *a)
{
    vegas_state s;
    load(cc, &s);
    cc->recovering = cc->recovering && rudp__cc_in_recovery(cc, a->largest_sent_time);
    if (!s.doing && !cc->recovering)
        enable(&s, a->delivered); /* back to Open: tcp_vegas_state */
    if (rudp__cc_in_recovery(cc, a->largest_sent_time) || !a->acked_bytes)
        goto out;
    rudp__cc_vround_sample(&s.v, a);
    if (!s.doing) {
        rudp__cc_reno_increase(cc, &s.ca_acc, a->acked_bytes);
        goto out;
    }
    if (rudp__cc_vround_ended(&s.v, a)) {
        /* Two samples a round are delayed ACKs: not enough to judge. */
        if (s.v.cnt_rtt <= 2)
            rudp__cc_reno_increase(cc, &s.ca_acc, a->acked_bytes);
        else
            decide(cc, &s, a->acked_bytes);
        rudp__cc_vround_restart(&s.v, a->delivered);
    } else if (cc->cwnd < cc->ssthresh && !cc->app_limited) {
        cc->cwnd += a->acked_bytes;
    }
out:
    store(cc, &s);
}

static void vegas_on_loss(rudp_cc *cc, rudp_time now, rudp_time sent_time, uint64_t lost_bytes,
                          uint64_t in_flight)
{
    (void)lost_bytes, (void)in_flight;
    if (rudp__cc_in_recovery(cc, sent_time))
        return;
    vegas_state s;
    load(cc, &s);
    rudp__cc_reno_cut(cc, now);
    s.ca_acc = 0;
    s.doing = 0; /* TCP_CA_Recovery: vegas_disable */
    store(cc, &s);
}

static void vegas_on_persistent_congestion(rudp_cc *cc, rudp_time now)
{
    (void)now;
    vegas_state s;
    load(cc, &s);
    /* TCP_CA_Loss: the window collapses; Vegas starts afresh with the
     * next ACK (its round ends with a packet sent after it) */
    rudp__cc_collapse(cc);
    s.ca_acc = 0;
    s.doing = 0;
    store(cc, &s);
}

void rudp__cc_vegas_get_info(const rudp_cc *cc, rudp_cc_vegas_info *out)
{
    vegas_state s;
    load(cc, &s);
    out->enabled = s.doing;
    out->base_rtt = s.v.base_rtt;
    out->min_rtt = s.v.min_rtt;
    out->cnt_rtt = (uint32_t)s.v.cnt_rtt;
}

const rudp_cc_ops rudp__cc_vegas = {
    .name = "vegas",
    .init = vegas_init,
    .on_sent = rudp__cc_on_sent_none,
    .on_ack = vegas_on_ack,
    .on_loss = vegas_on_loss,
    .on_persistent_congestion = vegas_on_persistent_congestion,
    .phase = rudp__cc_loss_phase,
};
