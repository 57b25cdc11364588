/*
 * cc.c: the controllers' front door, what the protocol calls: the registry
 * (rudp_cc_find, rudp_cc_default), and a controller's set-up, seeding and
 * switch. The controllers (cc_*.c) call only the helpers of cc_common.c,
 * never this file, so the registry naming each of them makes no cycle.
 */
#include "cc.h"

#include <string.h>

static const rudp_cc_ops *const all[] = {
    &rudp__cc_newreno,
    &rudp__cc_cubic,
    &rudp__cc_bbr,
    &rudp__cc_vegas,
    &rudp__cc_htcp,
    &rudp__cc_scalable,
    &rudp__cc_westwood,
    &rudp__cc_highspeed,
    &rudp__cc_bic,
    &rudp__cc_veno,
    &rudp__cc_hybla,
    &rudp__cc_illinois,
    &rudp__cc_yeah,
    &rudp__cc_lp,
    &rudp__cc_nv,
    &rudp__cc_cdg,
    &rudp__cc_copa,
};

const rudp_cc_ops *const rudp_cc_default = &rudp__cc_bbr;

const rudp_cc_ops *rudp_cc_find(const char *name)
{
    /* Linux's dctcp without ECN is its dctcp_reno (cc_dctcp.c) */
    if (strcmp(name, "dctcp") == 0)
        return &rudp__cc_dctcp_reno;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(all[i]->name, name) == 0)
            return all[i];
    return NULL;
}

const char *rudp_cc_name(const rudp_cc_ops *ops) { return ops->name; }

void rudp__cc_seed(rudp_cc *cc, uint64_t k0, uint64_t k1)
{
    cc->rnd_key[0] = k0;
    cc->rnd_key[1] = k1;
}

void rudp__cc_setup(rudp_cc *cc, const rudp_cc_ops *ops, uint32_t mss, rudp_time now)
{
    /* the key and draw count outlive a new controller */
    uint64_t k0 = cc->rnd_key[0], k1 = cc->rnd_key[1], n = cc->rnd_n;
    memset(cc, 0, sizeof *cc);
    cc->rnd_key[0] = k0;
    cc->rnd_key[1] = k1;
    cc->rnd_n = n;
    cc->ops = ops ? ops : rudp_cc_default;
    cc->mss = mss;
    cc->cwnd = rudp__cc_initial_window(mss);
    cc->ssthresh = UINT64_MAX;
    cc->epoch = now;
    cc->ops->init(cc, now);
}

void rudp__cc_switch(rudp_cc *cc, const rudp_cc_ops *ops, rudp_time now)
{
    if (!ops)
        ops = rudp_cc_default;
    if (cc->ops == ops)
        return;
    uint64_t cwnd = cc->cwnd, ssthresh = cc->ssthresh, min = rudp__cc_min_window(cc->mss);
    rudp_time epoch = cc->epoch; /* the same path */
    rudp__cc_setup(cc, ops, cc->mss, now);
    cc->epoch = epoch;
    cc->cwnd = cwnd > min ? cwnd : min;
    cc->ssthresh = ssthresh;
}
