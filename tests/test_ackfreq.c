/*
 * test_ackfreq.c: ACK decimation (conn_input.c's ack_every), counted in
 * virtual time: a fast flow's receiver sends an ACK per ~10 packets, a slow
 * one's every second packet, and neither the rate nor loss recovery suffers.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>

#include "cc/cc.h"
#include "lib_sim.h"

typedef struct {
    double mbps;
    uint64_t data_pkts; /* the sender's DATA packets */
    uint64_t acks;      /* the receiver's datagrams back */
    double retx_pct;
} flow_result;

static void flow(uint64_t rate, rudp_time owd, size_t queue, double loss, flow_result *out)
{
    sim s;
    sim_init(&s, 11);
    int a = sim_add_ep(&s, NULL), b = sim_add_ep(&s, NULL);
    for (int d = 0; d < 2; d++) {
        sim_link *l = d ? &s.link[b][a] : &s.link[a][b];
        l->delay = owd;
        l->rate_bps = rate;
        l->queue_bytes = queue;
        l->loss = loss;
    }
    sim_bulk_listen(&s, b);
    rudp_config cfg;
    rudp_config_default(&cfg);
    cfg.cc = &rudp__cc_bbr;
    int f = sim_bulk_connect(&s, a, b, &cfg);
    cr_assert(ge(int, f, 0));
    sim_run_until(&s, s.now + RUDP_SEC(10));
    cr_assert(eq(int, s.apps[f].error, 0));
    const rudp_stats *st = rudp_ctx_stats(s.ep[a].ctx);
    out->mbps = (double)sim_bulk_acked(&s, f) * 8 / 10 / 1e6;
    out->data_pkts = st->pkts_sent;
    out->acks = s.link[b][a].sent;
    uint64_t all = st->stream_bytes_sent + st->bytes_retransmitted;
    out->retx_pct = all ? 100.0 * (double)st->bytes_retransmitted / (double)all : 0;
    fprintf(stderr, "SIMTABLE acks bbr %4llu Mbit/s %3llu ms RTT loss %g%%: %6.2f Mbit/s, %llu "
                    "data packets, %llu datagrams back (one per %.1f), retransmitted %.2f%%\n",
            (unsigned long long)(rate / 1000000), (unsigned long long)(2 * owd / RUDP_MS(1)),
            loss * 100, out->mbps, (unsigned long long)out->data_pkts,
            (unsigned long long)out->acks, (double)out->data_pkts / (double)out->acks,
            out->retx_pct);
    sim_free(&s);
}

/* The flow's data packets per datagram back within [per_min, per_max], its
 * goodput at least mbps_min, its retransmitted share at most retx_max. */
static void expect(const flow_result *r, double per_min, double per_max, double mbps_min,
                   double retx_max)
{
    double per = (double)r->data_pkts / (double)r->acks;
    cr_assert(ge(dbl, per, per_min), "one ack per %.2f packets (%llu packets, %llu acks)", per,
              (unsigned long long)r->data_pkts, (unsigned long long)r->acks);
    cr_assert(le(dbl, per, per_max), "one ack per %.2f packets", per);
    cr_assert(ge(dbl, r->mbps, mbps_min), "%.2f Mbit/s", r->mbps);
    cr_assert(le(dbl, r->retx_pct, retx_max), "%.2f%% retransmitted", r->retx_pct);
}

Test(ackfreq, a_fast_flow_is_acknowledged_about_every_ten_packets, .timeout = 30)
{
    flow_result r;
    flow(100000000, RUDP_MS(5), 125000, 0, &r);
    /* ~90 packets per round: every 10th is acknowledged (a packet per 2
     * before decimation: one datagram back per ~2 packets) */
    expect(&r, 6.0, 1e9, 93.0, 0.5);
}

Test(ackfreq, a_slow_flow_is_acknowledged_every_second_packet, .timeout = 30)
{
    /* 1 Mbit/s at 100 ms: ~9 packets per round, under the 16 that
     * decimation waits for: every second packet, as before */
    flow_result r;
    flow(1000000, RUDP_MS(50), 30000, 0, &r);
    expect(&r, 0, 2.5, 0.85, 100);
}

Test(ackfreq, losses_are_still_reported_at_once_and_repaired, .timeout = 30)
{
    /* 1% loss both ways at 100 Mbit/s, 40 ms: a gap is acknowledged at
     * once, so recovery is as quick as with an ACK per 2 packets: the rate
     * holds (as test_cc_bbr's B2-shaped flow) and only the losses go twice */
    flow_result r;
    flow(100000000, RUDP_MS(20), 500000, 0.01, &r);
    expect(&r, 3.0, 1e9, 88.0, 1.5);
}
