/*
 * test_pacing.c: the pacer sends a burst per wake-up (conn_output.c's
 * pace_ahead), not a packet: counted in virtual time, no clock.
 *
 * Once the pacer has held data back, nothing leaves before the next paced
 * departure, then a quantum: ~1 ms at the pacing rate, at least 2 packets,
 * at most a GSO train (64 KiB) and a quarter of a round trip, as Linux TCP
 * sends one TSO burst per pacing timer. Before, the timer was set for each
 * packet and each expiry released about one: ~9,000 wake-ups per second at
 * 100 Mbit/s. The rate must not change, and the bursts must fit a shallow
 * queue: at 10 Mbit/s a 10-packet queue (10-packet bursts overflowed it).
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>

#include "cc/cc.h"
#include "lib_sim.h"

static void run(const rudp_cc_ops *cc, uint64_t rate, rudp_time owd, size_t queue,
                sim_bulk_result *r)
{
    sim_bulk_single(7, cc, owd, rate, queue, 0, RUDP_SEC(10), r);
    cr_assert(eq(int, r->error, 0));
    cr_assert(gt(u64, r->pacer_wakeups, 0), "the flow was paced at all");
    fprintf(stderr, "SIMTABLE pacing %-5s %3llu Mbit/s: %6.2f Mbit/s, %llu packets, %llu pacer "
                    "wake-ups (%.1f packets each), retransmitted %.2f%%\n",
            cc->name, (unsigned long long)(rate / 1000000), r->mbps,
            (unsigned long long)r->pkts_sent, (unsigned long long)r->pacer_wakeups,
            (double)r->pkts_sent / (double)r->pacer_wakeups, r->retx_pct);
}

/* A fresh simulation seeded `seed` (*s), its two endpoints joined by a
 * 5 ms link of rate_bps and a drop-tail queue each way, the first sending
 * to_send bytes to the second under BBR, without end; the flow's app. */
static int bbr_flow(sim *s, uint64_t seed, uint64_t rate_bps, size_t queue, uint64_t to_send)
{
    sim_init(s, seed);
    int a = sim_add_ep(s, NULL), b = sim_add_ep(s, NULL);
    for (int d = 0; d < 2; d++) {
        sim_link *l = d ? &s->link[b][a] : &s->link[a][b];
        l->delay = RUDP_MS(5);
        l->rate_bps = rate_bps;
        l->queue_bytes = queue;
    }
    sim_bulk_listen(s, b);
    rudp_config cfg;
    rudp_config_default(&cfg);
    cfg.cc = &rudp__cc_bbr;
    sim_app cli = {.to_send = to_send, .expect = 0, .bulk = 1, .no_shutdown = 1};
    int f = sim_connect(s, a, b, &cli, &cfg);
    cr_assert(ge(int, f, 0));
    return f;
}

Test(pacing, bbr_sends_bursts_of_packets_per_pacer_wakeup_at_100_mbit, .timeout = 30)
{
    sim_bulk_result r;
    run(&rudp__cc_bbr, 100000000, RUDP_MS(5), 125000, &r);
    double per = (double)r.pkts_sent / (double)r.pacer_wakeups;
    /* one wake-up per ~10 packets (1 ms at 100 Mbit/s is ~9 packets of
     * 1,400 bytes); a pacer that wakes per packet shows ~1-2 */
    cr_assert(ge(dbl, per, 5.0), "%.2f packets per pacer wake-up (%llu packets, %llu wake-ups)",
              per, (unsigned long long)r.pkts_sent, (unsigned long long)r.pacer_wakeups);
    /* ...at most ~1 ms apart: under 1,200 wake-ups per second of the 10 */
    cr_assert(le(u64, r.pacer_wakeups, 12000), "%llu wake-ups in 10 s",
              (unsigned long long)r.pacer_wakeups);
    /* ...and the rate is the link's, with no queue overflow from the bursts */
    cr_assert(ge(dbl, r.mbps, 90.0), "%.2f Mbit/s", r.mbps);
    cr_assert(le(dbl, r.retx_pct, 0.5), "%.2f%% retransmitted", r.retx_pct);
}

Test(pacing, bursts_fit_a_ten_packet_queue_at_10_mbit, .timeout = 30)
{
    /* 10 Mbit/s, 10 ms: 1 ms is one packet, so the quantum is 2 packets
     * (Linux's tcp_min_tso_segs); a 15 KB queue (~10 packets) takes them
     * without loss (5.8% was retransmitted with 10-packet quanta) */
    sim_bulk_result r;
    run(&rudp__cc_bbr, 10000000, RUDP_MS(5), 15000, &r);
    double per = (double)r.pkts_sent / (double)r.pacer_wakeups;
    cr_assert(ge(dbl, per, 1.5), "%.2f packets per pacer wake-up", per);
    cr_assert(ge(dbl, r.mbps, 9.0), "%.2f Mbit/s", r.mbps);
    cr_assert(le(dbl, r.retx_pct, 0.5), "%.2f%% retransmitted", r.retx_pct);
}

Test(pacing, bursts_fit_a_shallow_queue_at_100_mbit, .timeout = 30)
{
    /* 100 Mbit/s, 10 ms, a 30 KB queue (~21 packets, a quarter of a BDP):
     * BBR's 1.25x probe nearly fills it, and ~9-packet bursts on top cost
     * some drops: 1.6% retransmitted here, 0.54% with a packet per wake-up,
     * 1.15% with half the quantum (the price of a tenth of the wake-ups,
     * as kernel TCP's 1 ms TSO bursts pay it; with a 1-BDP queue, B1's,
     * 0.01%). Bounded here so that a larger quantum shows. */
    sim_bulk_result r;
    run(&rudp__cc_bbr, 100000000, RUDP_MS(5), 30000, &r);
    cr_assert(ge(dbl, r.mbps, 90.0), "%.2f Mbit/s", r.mbps);
    cr_assert(le(dbl, r.retx_pct, 2.0), "%.2f%% retransmitted", r.retx_pct);
}

Test(pacing, a_wakeup_carries_a_gso_train_at_1_gbit, .timeout = 30)
{
    /* 1 Gbit/s, 10 ms, a 1-BDP queue: ~1 ms at the pacing rate is 125 KB,
     * so the quantum is its cap, one GSO train (64 KiB, ~46 packets), as
     * Linux caps a TSO burst at gso_max_size. 32 KiB gave ~41 packets per
     * wake-up here (quantum and catch-up) and capped the veth pair (B11),
     * where the engine's wake-ups come late, at 0.30x kernel bbr. */
    sim_bulk_result r;
    run(&rudp__cc_bbr, 1000000000, RUDP_MS(5), 1250000, &r);
    double per = (double)r.pkts_sent / (double)r.pacer_wakeups;
    cr_assert(ge(dbl, per, 46.0), "%.2f packets per pacer wake-up", per);
    cr_assert(ge(dbl, r.mbps, 900.0), "%.2f Mbit/s", r.mbps);
    cr_assert(le(dbl, r.retx_pct, 0.5), "%.2f%% retransmitted", r.retx_pct);
}

Test(pacing, trains_fit_a_quarter_bdp_queue_at_1_gbit, .timeout = 30)
{
    /* The same link with a quarter of a BDP of queue (312 KB): the trains
     * cost a few drops (0.67 %, 0.33 % with 32 KiB quanta), the rate holds */
    sim_bulk_result r;
    run(&rudp__cc_bbr, 1000000000, RUDP_MS(5), 312500, &r);
    cr_assert(ge(dbl, r.mbps, 900.0), "%.2f Mbit/s", r.mbps);
    cr_assert(le(dbl, r.retx_pct, 2.0), "%.2f%% retransmitted", r.retx_pct);
}

Test(pacing, a_sender_back_from_idle_gets_at_most_a_train_of_credit, .timeout = 30)
{
    /* 1 Gbit/s, 10 ms: 8 MB, 2 s of nothing, then 4 MB more. The pacer's
     * catch-up of 1 ms at the rate is for a wake-up that let held data go
     * late; back from idle the credit is one GSO train, so the first burst
     * is at most the quantum (64 KiB) and a train: 94 packets of 1,400
     * bytes, one more as the credit reaches zero. With 1 ms of credit it
     * was the quantum and a millisecond at a pacing rate BBR had raised:
     * 302 packets at once here. */
    sim s;
    int f = bbr_flow(&s, 5, 1000000000, 1250000, 8000000);
    sim_run_until(&s, s.now + RUDP_SEC(2));
    sim_app *app = &s.apps[f];
    cr_assert(eq(u64, app->sent, 8000000), "the first 8 MB went");
    sim_burst burst;
    memset(&burst, 0, sizeof burst);
    s.tap = sim_burst_tap;
    s.tap_user = &burst;
    static uint8_t zeros[16384];
    uint64_t more = 0;
    while (more < 4000000) {
        ssize_t w = rudp_conn_write(app->conn, s.now, zeros, sizeof zeros);
        if (w <= 0)
            break;
        more += (uint64_t)w;
    }
    app->to_send += 4000000;
    app->sent += more;
    sim_run_until(&s, s.now + RUDP_MS(200));
    fprintf(stderr, "back from idle: %llu data packets, longest run at one instant %d\n",
            (unsigned long long)burst.pkts, burst.max_run);
    cr_assert(gt(u64, burst.pkts, 1000), "it sent again");
    cr_assert(le(int, burst.max_run, 95), "%d packets at one instant", burst.max_run);
    sim_free(&s);
}

Test(pacing, a_paced_bulk_sender_says_so_and_an_idle_one_does_not, .timeout = 30)
{
    /* rudp_conn_tx_paced (the shim's moderation at the sender): while a
     * bulk flow's pacer holds data back, its next burst within `within`
     * (on a path of at least 4 `within`), it says 1; asked for a wait
     * longer than a quarter of the round trip, 0; once its data ran out, 0. */
    sim s;
    int f = bbr_flow(&s, 9, 100000000, 125000, 30000000);
    sim_run_until(&s, s.now + RUDP_SEC(1));
    sim_app *app = &s.apps[f];
    cr_assert(lt(u64, app->sent, 30000000), "still sending");
    int paced = 0, too_long = 0, steps = 0, short_wait = 0;
    for (; steps < 2000; steps++) {
        sim_run_until(&s, s.now + RUDP_US(100));
        int p = rudp_conn_tx_paced(app->conn, s.now, RUDP_US(1500));
        paced += p;
        /* what the shim counts on: the context wakes for the next burst
         * within the wait (its deadline, the pacer's timer) */
        if (p)
            cr_assert(le(u64, s.ep[0].deadline, s.now + RUDP_US(1500)),
                      "paced, yet the next deadline is %lld ns away",
                      (long long)(s.ep[0].deadline - s.now));
        /* a burst due within 1.5 ms is not always due within 50 us */
        short_wait += rudp_conn_tx_paced(app->conn, s.now, RUDP_US(50));
        /* a 10 ms path: a wait of 5 ms is more than a quarter of it */
        too_long += rudp_conn_tx_paced(app->conn, s.now, RUDP_MS(5));
    }
    fprintf(stderr, "paced at %d of %d instants\n", paced, steps);
    cr_assert(gt(int, paced, steps / 2), "paced at %d of %d instants", paced, steps);
    cr_assert(lt(int, short_wait, paced), "the next burst's time is asked (%d of %d)", short_wait,
              paced);
    cr_assert(eq(int, too_long, 0), "a wait past a quarter of the round trip: never");
    cr_assert(eq(int, rudp_conn_tx_paced(app->conn, s.now, 0), 0), "no wait: never");
    sim_run_until(&s, s.now + RUDP_SEC(4)); /* the 30 MB are gone */
    cr_assert(eq(u64, app->sent, 30000000));
    sim_run_until(&s, s.now + RUDP_MS(100));
    cr_assert(eq(int, rudp_conn_tx_paced(app->conn, s.now, RUDP_US(1500)), 0),
              "nothing left to send: not paced");
    sim_free(&s);
}
