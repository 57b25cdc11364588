/*
 * cc_common.c: what the controllers (cc_*.c) share: Reno's growth and
 * reductions, Vegas's RTT rounds, a cube root, the loss-based phases and
 * random draws. It names no controller and nothing of the protocol.
 */
#include "cc.h"

#include <string.h>

#include "siphash.h"

double rudp__cc_cbrt(double x)
{
    if (x <= 0)
        return 0;
    double g = 1;
    while (g * g * g < x)
        g *= 2;
    /* From above, Newton's steps decrease monotonically to the root. */
    for (int i = 0; i < 100; i++) {
        double n = (2 * g + x / (g * g)) / 3;
        if (n >= g)
            break;
        g = n;
    }
    return g;
}

const char *rudp__cc_loss_phase(const rudp_cc *cc)
{
    if (cc->recovering)
        return "recovery";
    return cc->cwnd < cc->ssthresh ? "slow start" : "avoidance";
}

int rudp__cc_in_recovery(const rudp_cc *cc, rudp_time sent_time)
{
    return cc->recovery_start != 0 && sent_time <= cc->recovery_start;
}

void rudp__cc_on_sent_none(rudp_cc *cc, rudp_time now, uint64_t bytes, uint64_t in_flight)
{
    (void)cc, (void)now, (void)bytes, (void)in_flight;
}

void rudp__cc_reno_increase(rudp_cc *cc, uint64_t *acc, uint64_t acked)
{
    if (cc->app_limited)
        return;
    if (cc->cwnd < cc->ssthresh) {
        cc->cwnd += acked;
        return;
    }
    *acc += acked;
    while (*acc >= cc->cwnd) {
        *acc -= cc->cwnd;
        cc->cwnd += cc->mss;
    }
}

uint64_t rudp__cc_slow_start(rudp_cc *cc, uint64_t acked)
{
    if (cc->cwnd >= cc->ssthresh)
        return acked;
    uint64_t room = cc->ssthresh - cc->cwnd;
    uint64_t ss = acked < room ? acked : room;
    cc->cwnd += ss;
    return acked - ss;
}

void rudp__cc_avoid_ai(rudp_cc *cc, uint64_t *acc, uint64_t per, uint64_t acked)
{
    if (!per)
        per = cc->mss;
    *acc += acked;
    if (*acc >= per) {
        uint64_t n = *acc / per;
        *acc -= n * per;
        cc->cwnd += n * cc->mss;
    }
}

void rudp__cc_cut_to(rudp_cc *cc, rudp_time now, uint64_t ssthresh)
{
    cc->recovery_start = now;
    cc->recovering = 1;
    uint64_t minw = rudp__cc_min_window(cc->mss);
    cc->ssthresh = ssthresh < minw ? minw : ssthresh;
    cc->cwnd = cc->ssthresh;
}

void rudp__cc_reno_cut(rudp_cc *cc, rudp_time now) { rudp__cc_cut_to(cc, now, cc->cwnd / 2); }

void rudp__cc_collapse(rudp_cc *cc)
{
    cc->cwnd = rudp__cc_min_window(cc->mss);
    cc->recovery_start = 0;
    cc->recovering = 0;
}

void rudp__cc_vround_init(rudp_cc_vround *v)
{
    v->base_rtt = RUDP_TIME_NEVER;
    rudp__cc_vround_restart(v, 0);
}

void rudp__cc_vround_restart(rudp_cc_vround *v, uint64_t delivered)
{
    v->round_end = delivered;
    v->cnt_rtt = 0;
    v->min_rtt = RUDP_TIME_NEVER;
}

void rudp__cc_vround_sample(rudp_cc_vround *v, const rudp_cc_ack *a)
{
    if (!a->rtt || !a->rtt->has_sample)
        return;
    rudp_time r = a->rtt->latest + 1;
    if (r < v->base_rtt)
        v->base_rtt = r;
    if (r < v->min_rtt)
        v->min_rtt = r;
    v->cnt_rtt++;
}

int rudp__cc_vround_ended(const rudp_cc_vround *v, const rudp_cc_ack *a)
{
    return a->delivered - a->rs_delivered >= v->round_end;
}

uint64_t rudp__cc_random(rudp_cc *cc)
{
    uint8_t key[16];
    memcpy(key, cc->rnd_key, sizeof key);
    uint64_t n = cc->rnd_n++;
    return rudp__siphash(key, &n, sizeof n);
}

/* v is at least as good as ref: as large for a maximum, as small for a
 * minimum. */
static int as_good(uint64_t v, uint64_t ref, int max)
{
    return max ? v >= ref : v <= ref;
}

void rudp__cc_minmax_update(rudp_cc_minmax m[3], uint64_t win, uint64_t t, uint64_t v, int max)
{
    rudp_cc_minmax n = {t, v};
    if (as_good(v, m[0].v, max) || t - m[2].t > win) {
        m[0] = m[1] = m[2] = n;
        return;
    }
    if (as_good(v, m[1].v, max))
        m[1] = m[2] = n;
    else if (as_good(v, m[2].v, max))
        m[2] = n;
    /* Age out the best sample once it leaves the window; keep the second
     * and third spread over it. */
    uint64_t dt = t - m[0].t;
    if (dt > win) {
        m[0] = m[1];
        m[1] = m[2];
        m[2] = n;
        if (t - m[0].t > win) {
            m[0] = m[1];
            m[1] = m[2];
            m[2] = n;
        }
    } else if (m[1].t == m[0].t && dt > win / 4) {
        m[1] = m[2] = n;
    } else if (m[2].t == m[1].t && dt > win / 2) {
        m[2] = n;
    }
}
