/*
 * cc_hybla.c: TCP Hybla (Caini and Firrincieli, "TCP Hybla: a TCP
 * enhancement for heterogeneous networks", International Journal of
 * Satellite Communications and Networking 22(5), 2004) as Linux runs it
 * (net/ipv4/tcp_hybla.c): Reno whose growth is scaled so that a long path
 * (a satellite link) grows its window in time as a reference path of
 * rtt0 = 25 ms does, not in round trips.
 *
 * rho = srtt / rtt0, at least 1, kept in eighths (rho_3ls) and recomputed
 * whenever the smoothed RTT falls below the least one it was computed
 * from. In slow start each segment acknowledged adds 2^rho - 1 segments
 * (the fraction of rho from a table of 2^(i/8), so rho 1.5 adds 1.83),
 * at most up to ssthresh; in congestion avoidance rho^2 / cwnd, rho^2
 * segments a round trip. Increments are kept in 1/128 segment. A loss
 * halves the window (tcp_reno_ssthresh); outside TCP_CA_Open (after
 * persistent congestion until a packet sent after it is acknowledged)
 * growth is Reno's. The window is clamped at 65535 segments as Linux
 * clamps it. With rho 1 (paths of 25 ms or less) Hybla is Reno.
 *
 * Our terms: windows in bytes, a segment one MSS, the smoothed RTT in ns
 * (Linux's srtt_us holds it << 3 in us, whence rho_3ls); one reduction per
 * recovery period; no growth while app-limited (tcp_is_cwnd_limited).
 * Linux's hybla_cong_avoid adds its increment once per ACK whatever it
 * acknowledges; an ACK here may cover many packets, so the increment is
 * per segment acknowledged, as the paper states it. Linux's hybla_init
 * sets the window to rho segments from the handshake's RTT; our
 * controller is set up before any RTT is known, so it starts at the
 * initial window (RFC 9002 §7.2) and takes rho segments instead at the
 * first RTT sample if that is more (as on a long path), while no loss has
 * been seen.
 */
#include <string.h>

#include "cc.h"

#define HYBLA_RTT0 RUDP_MS(25) /* module parameter rtt0 (ms) */
#define HYBLA_CLAMP 65535u     /* snd_cwnd_clamp, segments */

typedef struct hybla_state {
    uint64_t rho;        /* integer part */
    uint64_t rho_3ls;    /* rho << 3 */
    uint64_t rho2_7ls;   /* rho^2 << 7 */
    rudp_time min_srtt;  /* smoothed RTT rho was computed from; NEVER before one */
    uint64_t cents;      /* increments below one byte, 1/128 byte */
    uint64_t ca_acc;     /* Reno avoidance outside Open */
    rudp_time loss_end;  /* TCP_CA_Loss until a packet sent after this is acked; 0: Open */
} hybla_state;

_Static_assert(sizeof(hybla_state) <= sizeof(((rudp_cc *)0)->st), "hybla state fits in st");

static void load(const rudp_cc *cc, hybla_state *s) { memcpy(s, cc->st, sizeof *s); }
static void store(rudp_cc *cc, const hybla_state *s) { memcpy(cc->st, s, sizeof *s); }

/* hybla_recalc_param */
static void recalc(hybla_state *s, rudp_time srtt)
{
    uint64_t r = (uint64_t)(srtt * 8 / HYBLA_RTT0);
    s->rho_3ls = r > 8 ? r : 8;
    s->rho = s->rho_3ls >> 3;
    s->rho2_7ls = (s->rho_3ls * s->rho_3ls) << 1;
}

/* hybla_fraction: 128 * 2^(odds/8) */
static uint64_t fraction(uint64_t odds)
{
    static const uint64_t f[] = {128, 139, 152, 165, 181, 197, 215, 234};
    return odds < 8 ? f[odds] : 128;
}

static void hybla_init(rudp_cc *cc, rudp_time now)
{
    (void)now;
    hybla_state s;
    memset(&s, 0, sizeof s);
    s.min_srtt = RUDP_TIME_NEVER;
    store(cc, &s);
}

static void hybla_on_ack(rudp_cc *cc, const rudp_cc_ack *a)
{
    hybla_state s;
    load(cc, &s);
    cc->recovering = cc->recovering && rudp__cc_in_recovery(cc, a->largest_sent_time);
    if (s.loss_end && a->largest_sent_time > s.loss_end)
        s.loss_end = 0; /* back to TCP_CA_Open */
    if (a->rtt && a->rtt->has_sample && a->rtt->smoothed < s.min_srtt) {
        int first = s.min_srtt == RUDP_TIME_NEVER;
        recalc(&s, a->rtt->smoothed);
        s.min_srtt = a->rtt->smoothed;
        /* hybla_init's window of rho segments, once an RTT is known */
        if (first && cc->ssthresh == UINT64_MAX && s.rho * cc->mss > cc->cwnd)
            cc->cwnd = s.rho * cc->mss;
    }
    if (rudp__cc_in_recovery(cc, a->largest_sent_time) || !a->acked_bytes || cc->app_limited)
        goto out;
    if (s.loss_end) {
        rudp__cc_reno_increase(cc, &s.ca_acc, a->acked_bytes);
        goto out;
    }
    if (s.rho == 0)
        recalc(&s, a->rtt ? a->rtt->smoothed : 0);
    int slow_start = cc->cwnd < cc->ssthresh;
    uint64_t inc; /* 1/128 segment per segment acknowledged */
    if (slow_start) {
        uint64_t r = s.rho < 16 ? s.rho : 16;
        inc = (1ull << r) * fraction(s.rho_3ls - (s.rho << 3)) - 128;
        s.cents += inc * a->acked_bytes;
    } else {
        /* rho2_7ls / cwnd in segments, per segment acknowledged */
        s.cents += s.rho2_7ls * a->acked_bytes * cc->mss / cc->cwnd;
    }
    cc->cwnd += s.cents >> 7;
    s.cents &= 127;
    if (slow_start && cc->cwnd > cc->ssthresh)
        cc->cwnd = cc->ssthresh;
    if (cc->cwnd > (uint64_t)HYBLA_CLAMP * cc->mss)
        cc->cwnd = (uint64_t)HYBLA_CLAMP * cc->mss;
out:
    store(cc, &s);
}

static void hybla_on_loss(rudp_cc *cc, rudp_time now, rudp_time sent_time, uint64_t lost_bytes,
                          uint64_t in_flight)
{
    (void)lost_bytes, (void)in_flight;
    if (rudp__cc_in_recovery(cc, sent_time))
        return;
    hybla_state s;
    load(cc, &s);
    rudp__cc_reno_cut(cc, now); /* tcp_reno_ssthresh */
    s.cents = 0;
    s.ca_acc = 0;
    store(cc, &s);
}

static void hybla_on_persistent_congestion(rudp_cc *cc, rudp_time now)
{
    hybla_state s;
    load(cc, &s);
    rudp__cc_collapse(cc);
    s.cents = 0;
    s.ca_acc = 0;
    s.loss_end = now; /* hybla_state: hybla_en off in TCP_CA_Loss */
    store(cc, &s);
}

void rudp__cc_hybla_get_info(const rudp_cc *cc, rudp_cc_hybla_info *out)
{
    hybla_state s;
    load(cc, &s);
    out->rho_3ls = s.rho_3ls;
    out->enabled = s.loss_end == 0;
}

const rudp_cc_ops rudp__cc_hybla = {
    .name = "hybla",
    .init = hybla_init,
    .on_sent = rudp__cc_on_sent_none,
    .on_ack = hybla_on_ack,
    .on_loss = hybla_on_loss,
    .on_persistent_congestion = hybla_on_persistent_congestion,
    .phase = rudp__cc_loss_phase,
};
