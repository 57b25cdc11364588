/* cc.c: controller registry and set-up. */
#include "cc.h"

#include <string.h>

#include "siphash.h"

static const rudp_cc_ops *const all[] = {
    &rudp_cc_newreno,
    &rudp_cc_cubic,
    &rudp_cc_bbr,
    &rudp_cc_vegas,
    &rudp_cc_htcp,
    &rudp_cc_scalable,
    &rudp_cc_westwood,
    &rudp_cc_highspeed,
    &rudp_cc_bic,
    &rudp_cc_veno,
    &rudp_cc_hybla,
    &rudp_cc_illinois,
    &rudp_cc_yeah,
    &rudp_cc_lp,
    &rudp_cc_nv,
    &rudp_cc_cdg,
};

const rudp_cc_ops *const rudp_cc_default = &rudp_cc_bbr;

const rudp_cc_ops *rudp_cc_find(const char *name)
{
    /* Linux's dctcp without ECN is its dctcp_reno (cc_dctcp.c) */
    if (strcmp(name, "dctcp") == 0)
        return &rudp_cc_dctcp_reno;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(all[i]->name, name) == 0)
            return all[i];
    return NULL;
}

const char *rudp_cc_name(const rudp_cc_ops *ops) { return ops->name; }

double rudp_cc_cbrt(double x)
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

const char *rudp_cc_loss_phase(const rudp_cc *cc)
{
    if (cc->recovering)
        return "recovery";
    return cc->cwnd < cc->ssthresh ? "slow start" : "avoidance";
}

int rudp_cc_in_recovery(const rudp_cc *cc, rudp_time sent_time)
{
    return cc->recovery_start != 0 && sent_time <= cc->recovery_start;
}

void rudp_cc_on_sent_none(rudp_cc *cc, rudp_time now, uint64_t bytes, uint64_t in_flight)
{
    (void)cc, (void)now, (void)bytes, (void)in_flight;
}

void rudp_cc_reno_increase(rudp_cc *cc, uint64_t *acc, uint64_t acked)
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

uint64_t rudp_cc_slow_start(rudp_cc *cc, uint64_t acked)
{
    if (cc->cwnd >= cc->ssthresh)
        return acked;
    uint64_t room = cc->ssthresh - cc->cwnd;
    uint64_t ss = acked < room ? acked : room;
    cc->cwnd += ss;
    return acked - ss;
}

void rudp_cc_avoid_ai(rudp_cc *cc, uint64_t *acc, uint64_t per, uint64_t acked)
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

void rudp_cc_cut_to(rudp_cc *cc, rudp_time now, uint64_t ssthresh)
{
    cc->recovery_start = now;
    cc->recovering = 1;
    uint64_t minw = rudp_cc_min_window(cc->mss);
    cc->ssthresh = ssthresh < minw ? minw : ssthresh;
    cc->cwnd = cc->ssthresh;
}

void rudp_cc_reno_cut(rudp_cc *cc, rudp_time now) { rudp_cc_cut_to(cc, now, cc->cwnd / 2); }

void rudp_cc_collapse(rudp_cc *cc)
{
    cc->cwnd = rudp_cc_min_window(cc->mss);
    cc->recovery_start = 0;
    cc->recovering = 0;
}

void rudp_cc_vround_init(rudp_cc_vround *v)
{
    v->base_rtt = RUDP_TIME_NEVER;
    rudp_cc_vround_restart(v, 0);
}

void rudp_cc_vround_restart(rudp_cc_vround *v, uint64_t delivered)
{
    v->round_end = delivered;
    v->cnt_rtt = 0;
    v->min_rtt = RUDP_TIME_NEVER;
}

void rudp_cc_vround_sample(rudp_cc_vround *v, const rudp_cc_ack *a)
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

int rudp_cc_vround_ended(const rudp_cc_vround *v, const rudp_cc_ack *a)
{
    return a->delivered - a->rs_delivered >= v->round_end;
}

void rudp_cc_seed(rudp_cc *cc, uint64_t k0, uint64_t k1)
{
    cc->rnd_key[0] = k0;
    cc->rnd_key[1] = k1;
}

uint64_t rudp_cc_random(rudp_cc *cc)
{
    uint8_t key[16];
    memcpy(key, cc->rnd_key, sizeof key);
    uint64_t n = cc->rnd_n++;
    return rudp_siphash(key, &n, sizeof n);
}

void rudp_cc_setup(rudp_cc *cc, const rudp_cc_ops *ops, uint32_t mss, rudp_time now)
{
    /* the key and draw count outlive a new controller */
    uint64_t k0 = cc->rnd_key[0], k1 = cc->rnd_key[1], n = cc->rnd_n;
    memset(cc, 0, sizeof *cc);
    cc->rnd_key[0] = k0;
    cc->rnd_key[1] = k1;
    cc->rnd_n = n;
    cc->ops = ops ? ops : rudp_cc_default;
    cc->mss = mss;
    cc->cwnd = rudp_cc_initial_window(mss);
    cc->ssthresh = UINT64_MAX;
    cc->epoch = now;
    cc->ops->init(cc, now);
}

void rudp_cc_switch(rudp_cc *cc, const rudp_cc_ops *ops, rudp_time now)
{
    if (!ops)
        ops = rudp_cc_default;
    if (cc->ops == ops)
        return;
    uint64_t cwnd = cc->cwnd, ssthresh = cc->ssthresh, min = rudp_cc_min_window(cc->mss);
    rudp_time epoch = cc->epoch; /* the same path */
    rudp_cc_setup(cc, ops, cc->mss, now);
    cc->epoch = epoch;
    cc->cwnd = cwnd > min ? cwnd : min;
    cc->ssthresh = ssthresh;
}
