/*
 * cc_dctcp.c: DCTCP as Linux runs it on a connection without ECN.
 *
 * Linux's dctcp (net/ipv4/tcp_dctcp.c) needs ECN (TCP_CONG_NEEDS_ECN):
 * dctcp_init keeps it only if the connection negotiated ECN
 * (tp->ecn_flags & TCP_ECN_OK) or the socket is a listener or not yet
 * connected (TCP_LISTEN, TCP_CLOSE); otherwise ("No ECN support? Fall
 * back to Reno.") it sets icsk_ca_ops to dctcp_reno, whose ops are
 * tcp_reno_ssthresh (half the window), tcp_reno_cong_avoid and
 * tcp_reno_undo_cwnd, named "dctcp-reno" -- the name
 * getsockopt(TCP_CONGESTION) then reads. rudp's datagrams carry no ECN
 * marks, so every rudp connection is that case: "dctcp" runs these
 * controller ops, named "dctcp-reno" (rudp_cc_find("dctcp") answers
 * them; "dctcp-reno" itself is not a name Linux registers, so it is not
 * one to choose).
 *
 * Our terms as NewReno's here: windows in bytes, one reduction per
 * recovery period, no growth while app-limited.
 */
#include "cc.h"

/* st[0]: bytes acked toward the next increase in avoidance */
#define CA_ACC(cc) ((cc)->st[0])

static void dr_init(rudp_cc *cc, rudp_time now)
{
    (void)now;
    CA_ACC(cc) = 0;
}

static void dr_on_ack(rudp_cc *cc, const rudp_cc_ack *a)
{
    cc->recovering = cc->recovering && rudp__cc_in_recovery(cc, a->largest_sent_time);
    if (rudp__cc_in_recovery(cc, a->largest_sent_time))
        return;
    rudp__cc_reno_increase(cc, &CA_ACC(cc), a->acked_bytes);
}

static void dr_on_loss(rudp_cc *cc, rudp_time now, rudp_time sent_time, uint64_t lost_bytes,
                       uint64_t in_flight)
{
    (void)lost_bytes, (void)in_flight;
    if (rudp__cc_in_recovery(cc, sent_time))
        return;
    rudp__cc_reno_cut(cc, now); /* tcp_reno_ssthresh */
    CA_ACC(cc) = 0;
}

static void dr_on_persistent_congestion(rudp_cc *cc, rudp_time now)
{
    (void)now;
    rudp__cc_collapse(cc);
    CA_ACC(cc) = 0;
}

const rudp_cc_ops rudp__cc_dctcp_reno = {
    .name = "dctcp-reno",
    .init = dr_init,
    .on_sent = rudp__cc_on_sent_none,
    .on_ack = dr_on_ack,
    .on_loss = dr_on_loss,
    .on_persistent_congestion = dr_on_persistent_congestion,
    .phase = rudp__cc_loss_phase,
};
