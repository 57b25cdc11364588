/* lib_ccdrv.c: see lib_ccdrv.h. */
#include "lib_ccdrv.h"

#include <stdio.h>
#include <string.h>

void ccdrv_init(ccdrv *d, const rudp_cc_ops *ops, uint32_t mss, rudp_time t0)
{
    memset(d, 0, sizeof *d);
    rudp__cc_setup(&d->cc, ops, mss, t0);
    rudp__rtt_init(&d->rtt, RUDP_MS(100));
    d->now = t0;
}

void ccdrv_ack(ccdrv *d, uint64_t bytes, rudp_time rtt, uint64_t prior_delivered)
{
    rudp__rtt_update(&d->rtt, rtt, 0, 0);
    d->delivered += bytes;
    rudp_cc_ack a;
    memset(&a, 0, sizeof a);
    a.now = d->now;
    a.acked_bytes = bytes;
    a.largest_sent_time = d->now - rtt;
    a.rtt = &d->rtt;
    a.delivered = d->delivered;
    a.rs_delivered = d->delivered - prior_delivered;
    a.rs_interval = rtt;
    d->cc.app_limited = d->app_limited;
    d->cc.ops->on_ack(&d->cc, &a);
}

void ccdrv_round(ccdrv *d, rudp_time rtt, uint64_t ack)
{
    uint64_t n = d->cc.cwnd / ack;
    if (n < 2)
        n = 2;
    uint64_t start = d->delivered;
    for (uint64_t j = 1; j <= n; j++) {
        d->now += rtt / n;
        uint64_t prior = d->prev_n ? d->prev_start + ((j - 1) * d->prev_n / n + 1) * ack : 0;
        ccdrv_ack(d, ack, rtt, prior);
    }
    d->prev_start = start;
    d->prev_n = n;
}

void ccdrv_loss(ccdrv *d, rudp_time sent)
{
    d->cc.ops->on_loss(&d->cc, d->now, sent, d->cc.mss, 0);
}

void ccdrv_link(ccdrv *d, rudp_time until, uint64_t rate, rudp_time base)
{
    while (d->now < until) {
        uint64_t w = d->cc.cwnd / d->cc.mss;
        rudp_time q = (rudp_time)(w * RUDP_SEC(1) / rate);
        rudp_time rtt = q > base ? q : base;
        uint64_t per_s = w * RUDP_SEC(1) / base < rate ? w * RUDP_SEC(1) / base : rate;
        d->now += RUDP_SEC(1) / (per_s ? per_s : 1);
        ccdrv_ack(d, d->cc.mss, rtt, d->delivered);
    }
}

void ccdrv_sim_flow(const rudp_cc_ops *cc, double loss, sim_bulk_result *r)
{
    sim_bulk_single(42, cc, RUDP_MS(20), 100000000, 500000, loss, RUDP_SEC(20), r);
    fprintf(stderr, "SIMTABLE %-8s 100 Mbit/s 40 ms 1 BDP, loss %g%%: %6.2f Mbit/s goodput, "
                    "retransmitted %.2f%% (20 s)\n",
            cc->name, loss * 100, r->mbps, r->retx_pct);
}
