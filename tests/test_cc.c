/*
 * NewReno (RFC 9002 §7, Appendix B) window arithmetic, driven through the
 * ops table as recovery.c drives it. Times start at T0, not zero.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <string.h>

#include "cc/cc.h"
#include "lib_sim.h"

#define T0 RUDP_SEC(1000)
#define MSS 1400

static rudp_cc cc;

static void setup(void)
{
    rudp__cc_setup(&cc, &rudp__cc_newreno, MSS, T0);
}

/* One ACK event of `bytes`, the largest newly acked packet sent at `sent`. */
static void ack(rudp_time now, rudp_time sent, uint64_t bytes)
{
    rudp_cc_ack a;
    memset(&a, 0, sizeof a);
    a.now = now;
    a.acked_bytes = bytes;
    a.largest_sent_time = sent;
    cc.ops->on_ack(&cc, &a);
}

static void loss(rudp_time now, rudp_time sent, uint64_t bytes)
{
    cc.ops->on_loss(&cc, now, sent, bytes, 0);
}

Test(cc, initial_window_is_ten_mss_capped_at_max_of_14720_and_two_mss, .timeout = 5)
{
    struct {
        uint32_t mss;
        uint64_t want;
    } t[] = {
        {1200, 12000}, /* 10 * mss */
        {1400, 14000},
        {1472, 14720},
        {1500, 14720}, /* capped at 14720 */
        {9000, 18000}, /* 2 * mss beats 14720 */
        {65507, 131014},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        cr_assert(eq(u64, rudp__cc_initial_window(t[i].mss), t[i].want), "mss %u", t[i].mss);
        rudp__cc_setup(&cc, &rudp__cc_newreno, t[i].mss, T0);
        cr_assert(eq(u64, cc.cwnd, t[i].want), "mss %u", t[i].mss);
        cr_assert(eq(u64, cc.ssthresh, UINT64_MAX));
        cr_assert(eq(u32, cc.mss, t[i].mss));
    }
    cr_assert(eq(u64, rudp__cc_min_window(1400), 2800));
}

Test(cc, slow_start_grows_by_the_bytes_acknowledged, .init = setup)
{
    ack(T0 + RUDP_MS(50), T0, 3000);
    cr_assert(eq(u64, cc.cwnd, 17000));
    ack(T0 + RUDP_MS(51), T0 + RUDP_MS(1), 1);
    cr_assert(eq(u64, cc.cwnd, 17001));
    cr_assert(eq(u64, cc.ssthresh, UINT64_MAX));
}

Test(cc, congestion_avoidance_grows_one_mss_per_window_acknowledged, .init = setup,
     .timeout = 5)
{
    loss(T0 + RUDP_MS(100), T0 + RUDP_MS(50), MSS);
    cr_assert(eq(u64, cc.cwnd, 7000));
    cr_assert(eq(u64, cc.ssthresh, 7000));
    rudp_time now = T0 + RUDP_MS(200), sent = T0 + RUDP_MS(150); /* after recovery began */
    /* 6999 bytes in 1-byte-short steps: not yet a window's worth. */
    ack(now, sent, 5000);
    ack(now, sent, 1999);
    cr_assert(eq(u64, cc.cwnd, 7000));
    ack(now, sent, 1);
    cr_assert(eq(u64, cc.cwnd, 7000 + MSS));
    /* The next MSS takes a whole new window (8400 bytes). */
    for (int i = 0; i < 8399; i++)
        ack(now, sent, 1);
    cr_assert(eq(u64, cc.cwnd, 8400));
    ack(now, sent, 1);
    cr_assert(eq(u64, cc.cwnd, 8400 + MSS));
    /* A big ACK counts as several windows. */
    ack(now, sent, 9800 + 11200);
    cr_assert(eq(u64, cc.cwnd, 8400 + 3 * MSS));
}

Test(cc, loss_halves_the_window_once_per_recovery_period, .init = setup)
{
    ack(T0 + RUDP_MS(50), T0, 6000); /* 20000 */
    rudp_time t1 = T0 + RUDP_MS(100);
    loss(t1, T0 + RUDP_MS(60), 1000);
    cr_assert(eq(u64, cc.cwnd, 10000));
    cr_assert(eq(u64, cc.ssthresh, 10000));
    cr_assert(eq(u64, cc.recovery_start, t1));
    /* Another packet sent before recovery began (or at its very start). */
    loss(t1 + RUDP_MS(5), T0 + RUDP_MS(90), 1000);
    loss(t1 + RUDP_MS(6), t1, 1000);
    cr_assert(eq(u64, cc.cwnd, 10000));
    cr_assert(eq(u64, cc.ssthresh, 10000));
    cr_assert(eq(u64, cc.recovery_start, t1));
    /* A packet sent after recovery began: a new congestion event. */
    loss(t1 + RUDP_MS(60), t1 + 1, 1000);
    cr_assert(eq(u64, cc.cwnd, 5000));
    cr_assert(eq(u64, cc.ssthresh, 5000));
    cr_assert(eq(u64, cc.recovery_start, t1 + RUDP_MS(60)));
}

Test(cc, ack_of_a_packet_sent_before_recovery_does_not_grow_the_window, .init = setup)
{
    rudp_time t1 = T0 + RUDP_MS(100);
    loss(t1, T0 + RUDP_MS(10), 1000);
    cr_assert(eq(u64, cc.cwnd, 7000));
    ack(t1 + RUDP_MS(10), T0 + RUDP_MS(99), 7000);
    ack(t1 + RUDP_MS(10), t1, 7000); /* sent at the instant recovery began */
    cr_assert(eq(u64, cc.cwnd, 7000));
    ack(t1 + RUDP_MS(10), t1 + 1, 7000); /* after: recovery is over */
    cr_assert(eq(u64, cc.cwnd, 7000 + MSS));
}

Test(cc, app_limited_sender_does_not_grow_the_window, .init = setup)
{
    cc.app_limited = 1;
    ack(T0 + RUDP_MS(50), T0, 5000);
    cr_assert(eq(u64, cc.cwnd, 14000), "slow start");
    loss(T0 + RUDP_MS(60), T0 + RUDP_MS(1), 1000);
    ack(T0 + RUDP_MS(200), T0 + RUDP_MS(100), 100000);
    cr_assert(eq(u64, cc.cwnd, 7000), "congestion avoidance");
    cc.app_limited = 0;
    ack(T0 + RUDP_MS(200), T0 + RUDP_MS(100), 7000);
    cr_assert(eq(u64, cc.cwnd, 7000 + MSS));
}

Test(cc, persistent_congestion_collapses_to_the_minimum_window, .init = setup)
{
    ack(T0 + RUDP_MS(50), T0, 50000);
    rudp_time t1 = T0 + RUDP_SEC(2);
    loss(t1, T0 + RUDP_SEC(1), 1000);
    cr_assert(eq(u64, cc.cwnd, 32000));
    cc.ops->on_persistent_congestion(&cc, t1);
    cr_assert(eq(u64, cc.cwnd, 2 * MSS));
    cr_assert(eq(u64, cc.ssthresh, 32000), "ssthresh stays where the loss put it");
    /* Recovery is over: the next ACK grows the window in slow start. */
    ack(t1 + RUDP_MS(10), T0 + RUDP_SEC(1), 1000);
    cr_assert(eq(u64, cc.cwnd, 2 * MSS + 1000));
}

Test(cc, window_never_goes_below_the_minimum, .init = setup, .timeout = 5)
{
    rudp_time now = T0;
    for (int i = 0; i < 20; i++) {
        /* each loss a packet sent after the previous recovery began */
        now += RUDP_MS(100);
        loss(now, now - 1, 1000);
        cr_assert(ge(u64, cc.cwnd, 2 * MSS), "after %d losses", i + 1);
        cr_assert(ge(u64, cc.ssthresh, 2 * MSS), "after %d losses", i + 1);
    }
    cr_assert(eq(u64, cc.cwnd, 2 * MSS));
    cc.ops->on_persistent_congestion(&cc, now);
    now += RUDP_MS(100);
    loss(now, now - 1, 1000);
    cr_assert(eq(u64, cc.cwnd, 2 * MSS));
    /* Even a tiny MSS keeps two datagrams. */
    rudp__cc_setup(&cc, &rudp__cc_newreno, 100, T0);
    for (int i = 0; i < 20; i++) {
        now += RUDP_MS(100);
        loss(now, now - 1, 100);
    }
    cr_assert(eq(u64, cc.cwnd, 200));
}

Test(cc, phase_is_slow_start_then_recovery_until_a_later_packet_is_acked_then_avoidance,
     .init = setup)
{
    cr_assert(eq(str, (char *)cc.ops->phase(&cc), "slow start"));
    loss(T0 + RUDP_MS(100), T0 + RUDP_MS(10), MSS);
    cr_assert(eq(str, (char *)cc.ops->phase(&cc), "recovery"));
    ack(T0 + RUDP_MS(110), T0 + RUDP_MS(50), MSS); /* sent before the loss */
    cr_assert(eq(str, (char *)cc.ops->phase(&cc), "recovery"));
    ack(T0 + RUDP_MS(220), T0 + RUDP_MS(150), MSS); /* sent after it */
    cr_assert(eq(str, (char *)cc.ops->phase(&cc), "avoidance"));
    /* every controller names its phase */
    rudp__cc_setup(&cc, &rudp__cc_cubic, MSS, T0);
    cr_assert(eq(str, (char *)cc.ops->phase(&cc), "slow start"));
    rudp__cc_setup(&cc, &rudp__cc_bbr, MSS, T0);
    cr_assert(eq(str, (char *)cc.ops->phase(&cc), "Startup"));
}

Test(cc, controllers_are_found_by_name)
{
    cr_assert(eq(ptr, (void *)rudp_cc_find("newreno"), (void *)&rudp__cc_newreno));
    cr_assert(eq(ptr, (void *)rudp_cc_find("nope"), NULL));
    cr_assert(eq(ptr, (void *)rudp_cc_find(""), NULL));
    cr_assert(eq(ptr, (void *)rudp_cc_default, (void *)&rudp__cc_bbr));
    rudp__cc_setup(&cc, NULL, MSS, T0);
    cr_assert(eq(ptr, (void *)cc.ops, (void *)rudp_cc_default));
    cr_assert(eq(str, (char *)cc.ops->name, "bbr"));
}

/* A controller whose pacing rate collapses to 1 byte/s (what BBR's model
 * came to after losses of 64 KB loopback datagrams): NewReno's window, no
 * pace worth the name. */
static void crawl_publish(rudp_cc *k)
{
    k->pacing_rate = 1;
}
static void crawl_init(rudp_cc *k, rudp_time now)
{
    rudp__cc_newreno.init(k, now);
    crawl_publish(k);
}
static void crawl_on_ack(rudp_cc *k, const rudp_cc_ack *a)
{
    rudp__cc_newreno.on_ack(k, a);
    crawl_publish(k);
}
static void crawl_on_loss(rudp_cc *k, rudp_time now, rudp_time sent, uint64_t lost,
                          uint64_t in_flight)
{
    rudp__cc_newreno.on_loss(k, now, sent, lost, in_flight);
    crawl_publish(k);
}
static void crawl_on_pc(rudp_cc *k, rudp_time now)
{
    rudp__cc_newreno.on_persistent_congestion(k, now);
    crawl_publish(k);
}

Test(cc, a_collapsed_pacing_rate_still_sends_a_packet_per_round_trip, .timeout = 30)
{
    /* The pacer holds a packet at most one smoothed RTT (conn_output.c): on a
     * 20 ms RTT link a flow paced at 1 byte/s still moves a packet per
     * round trip, ~50 per virtual second. Without that bound the second
     * packet would wait 1,400 s and the flow moves ~2 packets (it fails
     * without the bound in conn_output.c).
     * Virtual time; nothing here races a clock. */
    static const rudp_cc_ops crawl = {
        .name = "crawl", .init = crawl_init, .on_sent = NULL, .on_ack = crawl_on_ack,
        .on_loss = crawl_on_loss, .on_persistent_congestion = crawl_on_pc};
    rudp_cc_ops ops = crawl;
    ops.on_sent = rudp__cc_newreno.on_sent;
    sim_bulk_result r;
    sim_bulk_single(5, &ops, RUDP_MS(10), 100000000, 500000, 0.0, RUDP_SEC(4), &r);
    cr_assert(eq(int, r.error, 0));
    /* 4 s of ~50 packets/s of ~1.4 KB: well over 100 KB; 2 packets without */
    cr_assert(gt(u64, r.acked, 100000), "acked %llu bytes in 4 s", (unsigned long long)r.acked);
}

Test(cc, switch_runs_the_new_controller_from_its_init_keeping_window_and_threshold,
     .init = setup)
{
    ack(T0 + RUDP_MS(50), T0, 6000); /* 20000 */
    loss(T0 + RUDP_MS(100), T0 + RUDP_MS(60), 1000);
    cr_assert(eq(u64, cc.cwnd, 10000));
    cr_assert(eq(int, cc.recovering, 1));
    rudp__cc_switch(&cc, &rudp__cc_cubic, T0 + RUDP_MS(110));
    cr_assert(eq(ptr, (void *)cc.ops, (void *)&rudp__cc_cubic));
    cr_assert(eq(u64, cc.cwnd, 10000));
    cr_assert(eq(u64, cc.ssthresh, 10000));
    cr_assert(eq(int, cc.recovering, 0)); /* the new one's state, from its init */
    /* the same one again: nothing changes */
    cc.cwnd = 12345;
    rudp__cc_switch(&cc, &rudp__cc_cubic, T0 + RUDP_MS(120));
    cr_assert(eq(u64, cc.cwnd, 12345));
    /* NULL is the default; a window below the minimum is raised to it */
    cc.cwnd = 1;
    rudp__cc_switch(&cc, NULL, T0 + RUDP_MS(130));
    cr_assert(eq(ptr, (void *)cc.ops, (void *)rudp_cc_default));
    cr_assert(eq(u64, cc.cwnd, rudp__cc_min_window(MSS)));
}
