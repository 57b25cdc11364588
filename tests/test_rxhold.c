/*
 * test_rxhold.c: receive coalescing (rudp_config.rx_hold, conn_input.c).
 * A receiver with rx_hold set tells RUDP_EV_READABLE for in-order bytes
 * when the packet that completes them carries ACK_NOW (the sender's last
 * before it ran dry), when the hold's time is up, or when 64 KiB wait;
 * never later; without rx_hold, or on a path shorter than 4 rx_hold, at
 * once. The bytes are readable throughout: only the event waits. The
 * wire's round trip is a few ms (1 ms per hop, lib_wire.c): HOLD fits.
 * rudp_conn_rx_more (the shim's receive moderation) says more is coming
 * while the burst's packets lack ACK_NOW, on paths where the hold applies.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdint.h>
#include <string.h>

#include "rudp.h"
#include "timer.h"
#include "wire.h"

#include "lib_wire.h"

/* w_setup's wire, the server listening with rx_hold = hold. */
static void start(rudp_time hold)
{
    memset(&w, 0, sizeof w);
    w.now = RUDP_SEC(1000);
    static const rudp_ctx_ops ops = {.send = w_send};
    for (int ep = 0; ep < 2; ep++) {
        uint8_t seed[32];
        memset(seed, 0x5a * (ep + 1), sizeof seed);
        w.addr[ep].family = 2;
        w.addr[ep].port = (uint16_t)(4000 + ep);
        w.addr[ep].ip[0] = 10;
        w.addr[ep].ip[3] = (uint8_t)(ep + 1);
        cr_assert(eq(int, rudp_ctx_new(&ops, (void *)(intptr_t)ep, seed, NULL, NULL, &w.ctx[ep]),
                     0));
    }
    rudp_config cfg;
    rudp_config_default(&cfg);
    cfg.rx_hold = hold;
    rudp_listener *l;
    cr_assert(eq(int, rudp_listen(w.ctx[SRV], 1, &cfg, 4, &l), 0));
    cr_assert(eq(int, rudp_connect(w.ctx[CLI], w.now, 1, &w.addr[SRV], NULL, &w.conn[CLI]), 0));
    w_process(CLI);
    w_settle();
    cr_assert_not_null(w.conn[SRV]);
    w.events[SRV] = 0;
}

/* The client writes n bytes (several datagrams, the last with ACK_NOW);
 * returns how many datagrams went to the server. */
static size_t burst(size_t n)
{
    static uint8_t buf[8000];
    cr_assert(le(sz, n, sizeof buf));
    memset(buf, 'x', n);
    cr_assert(eq(int, (int)rudp_conn_write(w.conn[CLI], w.now, buf, n), (int)n));
    w_process(CLI);
    cr_assert(ge(sz, w.qn[SRV], 3), "a burst of several datagrams (%zu)", w.qn[SRV]);
    return w.qn[SRV];
}

static int ack_now(const wdgram *d)
{
    return (d->buf[3] >> 4) & RUDP_PKTF_ACK_NOW;
}

static size_t readable_bytes(void)
{
    const uint8_t *p;
    return rudp_conn_peek(w.conn[SRV], &p);
}

TestSuite(rxhold, .fini = w_teardown);

#define HOLD RUDP_US(200)

Test(rxhold, the_event_waits_for_the_bursts_last_packet)
{
    start(HOLD);
    size_t n = burst(5000);
    cr_assert(eq(int, ack_now(&w.q[SRV][0]), 0), "more was coming: no ACK_NOW");
    cr_assert(ne(int, ack_now(&w.q[SRV][n - 1]), 0), "the last one asks for an ACK");
    w_take(SRV, 0, 1);
    cr_assert(eq(u32, w.events[SRV] & RUDP_EV_READABLE, 0), "held: more is coming");
    cr_assert(eq(int, rudp_conn_rx_held(w.conn[SRV]), 1));
    cr_assert(eq(int, rudp_conn_rx_more(w.conn[SRV]), 1), "more is coming");
    cr_assert(gt(sz, readable_bytes(), 0), "the bytes are readable meanwhile");
    while (w.qn[SRV] > 1) {
        w_take(SRV, 0, 1);
        cr_assert(eq(u32, w.events[SRV] & RUDP_EV_READABLE, 0), "still held");
        cr_assert(eq(int, rudp_conn_rx_more(w.conn[SRV]), 1));
    }
    w_take(SRV, 0, 1); /* the one with ACK_NOW */
    cr_assert(ne(u32, w.events[SRV] & RUDP_EV_READABLE, 0), "told with the burst's end");
    cr_assert(eq(int, rudp_conn_rx_held(w.conn[SRV]), 0));
    cr_assert(eq(int, rudp_conn_rx_more(w.conn[SRV]), 0), "the burst's end: nothing more");
}

Test(rxhold, the_event_comes_when_the_hold_is_up)
{
    start(HOLD);
    burst(5000);
    w_take(SRV, 0, 1);
    cr_assert(eq(u32, w.events[SRV] & RUDP_EV_READABLE, 0), "held");
    w_drop_all(SRV); /* the rest is lost */
    rudp_time at = w.now;
    rudp_time deadline = w_process(SRV);
    /* within rx_hold, to the timer wheel's tick (65.5 us, timer.h) */
    cr_assert(le(u64, deadline, at + HOLD + RUDP_TIMER_TICK_NS), "the hold's timer is due");
    w.now = at + HOLD / 2;
    w_process(SRV);
    cr_assert(eq(u32, w.events[SRV] & RUDP_EV_READABLE, 0), "held until then");
    w.now = deadline;
    w_process(SRV);
    cr_assert(ne(u32, w.events[SRV] & RUDP_EV_READABLE, 0), "told when the hold ran out");
    cr_assert(eq(int, rudp_conn_rx_held(w.conn[SRV]), 0));
}

Test(rxhold, without_rx_hold_every_packet_is_told_at_once)
{
    start(0);
    burst(5000);
    w_take(SRV, 0, 1);
    cr_assert(ne(u32, w.events[SRV] & RUDP_EV_READABLE, 0), "told at once");
    cr_assert(eq(int, rudp_conn_rx_held(w.conn[SRV]), 0));
    cr_assert(eq(int, rudp_conn_rx_more(w.conn[SRV]), 0), "no hold, no moderation");
}

Test(rxhold, on_a_path_shorter_than_four_holds_every_packet_is_told_at_once)
{
    start(RUDP_MS(100));
    rudp_conn_info i;
    rudp_conn_get_info(w.conn[SRV], &i);
    cr_assert(lt(u64, (uint64_t)i.rtt_us, 400000), "a round trip shorter than 4 holds");
    burst(5000);
    w_take(SRV, 0, 1);
    cr_assert(ne(u32, w.events[SRV] & RUDP_EV_READABLE, 0), "told at once");
    cr_assert(eq(int, rudp_conn_rx_more(w.conn[SRV]), 0), "too short a path to wait on");
}

Test(rxhold, a_lone_packet_with_ack_now_is_told_at_once)
{
    start(HOLD);
    cr_assert(eq(int, (int)rudp_conn_write(w.conn[CLI], w.now, "ping", 4), 4));
    w_process(CLI);
    cr_assert(eq(sz, w.qn[SRV], 1));
    cr_assert(ne(int, ack_now(&w.q[SRV][0]), 0));
    w_take(SRV, 0, 1);
    cr_assert(ne(u32, w.events[SRV] & RUDP_EV_READABLE, 0), "a request is told at once");
    cr_assert(eq(int, rudp_conn_rx_more(w.conn[SRV]), 0), "nothing more is coming");
}

/* A copy of a packet already taken (a replay, or the network's duplicate)
 * changes nothing: after the burst's last packet said nothing more is
 * coming, a copy of its first (no ACK_NOW) must not say more is. */
Test(rxhold, a_duplicate_does_not_say_more_is_coming)
{
    start(HOLD);
    burst(5000);
    wdgram first = w.q[SRV][0];
    while (w.qn[SRV])
        w_take(SRV, 0, 1);
    cr_assert(eq(int, rudp_conn_rx_more(w.conn[SRV]), 0), "the burst ended");
    uint64_t dups = rudp_ctx_stats(w.ctx[SRV])->dup_pkts;
    rudp_ctx_input(w.ctx[SRV], w.now, 1, NULL, &w.addr[CLI], first.buf, first.len);
    w_process(SRV);
    cr_assert(eq(u64, rudp_ctx_stats(w.ctx[SRV])->dup_pkts, dups + 1), "taken for a duplicate");
    cr_assert(eq(int, rudp_conn_rx_more(w.conn[SRV]), 0), "a duplicate says nothing");
}
