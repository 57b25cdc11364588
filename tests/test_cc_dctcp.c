/*
 * dctcp without ECN (Linux's dctcp_init falls back to dctcp_reno,
 * net/ipv4/tcp_dctcp.c): found as "dctcp", named "dctcp-reno", Reno's
 * growth and halving.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "lib_ccdrv.h"

#define T0 RUDP_SEC(1000)
#define MSS 1400u
#define RTT RUDP_MS(100)

Test(dctcp, dctcp_is_dctcp_reno_without_ecn)
{
    cr_assert(eq(ptr, (void *)rudp_cc_find("dctcp"), (void *)&rudp__cc_dctcp_reno));
    cr_assert(eq(str, (char *)rudp__cc_dctcp_reno.name, "dctcp-reno"));
    cr_assert(eq(ptr, (void *)rudp_cc_find("dctcp-reno"), NULL), "Linux registers only dctcp");
}

Test(dctcp, runs_reno, .timeout = 10)
{
    ccdrv d;
    ccdrv_init(&d, &rudp__cc_dctcp_reno, MSS, T0);
    ccdrv_round(&d, RTT, MSS);
    cr_assert(eq(u64, d.cc.cwnd, 20 * MSS), "slow start doubles");
    d.cc.ssthresh = d.cc.cwnd;
    ccdrv_round(&d, RTT, MSS);
    cr_assert(eq(u64, d.cc.cwnd, 21 * MSS), "one a round trip in avoidance");
    ccdrv_loss(&d, d.now - 1);
    cr_assert(eq(u64, d.cc.cwnd, 21 * MSS / 2), "tcp_reno_ssthresh: half");
    cr_assert(eq(u64, d.cc.ssthresh, 21 * MSS / 2));
    ccdrv_loss(&d, d.now - 2);
    cr_assert(eq(u64, d.cc.cwnd, 21 * MSS / 2), "once per recovery");
    d.cc.ops->on_persistent_congestion(&d.cc, d.now);
    cr_assert(eq(u64, d.cc.cwnd, 2 * MSS));
}
