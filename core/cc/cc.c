/*
 * cc.c: the controllers' front door, what the protocol calls: the registry
 * (rudp_cc_find, rudp_cc_default), and a controller's set-up, seeding and
 * switch. The controllers (cc_*.c) call only the helpers of cc_common.c,
 * never this file, so the registry naming each of them makes no cycle.
 */
#include "cc.h"

#include <string.h>

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
    &rudp_cc_copa,
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

void rudp_cc_seed(rudp_cc *cc, uint64_t k0, uint64_t k1)
{
    cc->rnd_key[0] = k0;
    cc->rnd_key[1] = k1;
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
