/*
 * Connection regressions found by tests/fuzz_conn.c and by reading the
 * code, each replayed deterministically over a hand-driven wire: two
 * contexts, a FIFO of datagrams per direction, and the test choosing which
 * datagram is delivered or dropped and when time moves.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdint.h>
#include <string.h>

#include "rudp.h"
#include "wire.h"

#include "lib_wire.h"

/*
 * The ACK that completes LAST_ACK used to leave the loss-detection and
 * give-up timers armed on the CLOSED connection when another ack-eliciting
 * packet (here the second PTO probe) was still in flight: process_ack()
 * re-armed them after enter_closed() had disarmed everything, so a closed
 * connection kept waking the engine and counting probe timeouts until the
 * application released it.
 */
Test(conn_regress, ack_that_closes_last_ack_leaves_no_timer_armed, .init = w_setup,
     .fini = w_teardown, .timeout = 10)
{
    /* Client closes first; server reaches CLOSE_WAIT. */
    cr_assert(eq(int, rudp_conn_shutdown(w.conn[CLI], w.now), 0));
    w_process(CLI);
    w_settle();
    cr_assert(eq(int, rudp_conn_state(w.conn[SRV]), RUDP_CLOSE_WAIT));

    /* Server sends its data and FIN; the packet is lost, and so is the
     * first probe. */
    cr_assert(eq(int, (int)rudp_conn_write(w.conn[SRV], w.now, "hello", 5), 5));
    cr_assert(eq(int, rudp_conn_shutdown(w.conn[SRV], w.now), 0));
    rudp_time next = w_process(SRV);
    cr_assert(eq(int, rudp_conn_state(w.conn[SRV]), RUDP_LAST_ACK));
    cr_assert(eq(sz, w.qn[CLI], 1));
    w_drop_all(CLI);
    const rudp_stats *st = rudp_ctx_stats(w.ctx[SRV]);
    for (int probe = 1; probe <= 2; probe++) {
        for (int guard = 0; guard < 100 && st->pto_count < (uint64_t)probe; guard++) {
            w.now = next > w.now ? next : w.now + 1;
            next = w_process(SRV);
        }
        cr_assert(eq(u64, st->pto_count, (uint64_t)probe));
        if (probe == 1)
            w_drop_all(CLI);
    }
    /* The second timeout sends two probes: data+FIN, then a PING. */
    cr_assert(eq(sz, w.qn[CLI], 2));

    /* Only the first probe arrives; its ACK closes the server side. */
    w_take(CLI, 0, 1);
    cr_assert(ge(sz, w.qn[SRV], 1));
    while (w.qn[SRV])
        w_take(SRV, 0, 1);
    cr_assert(eq(int, rudp_conn_state(w.conn[SRV]), RUDP_CLOSED));
    cr_assert(ne(u32, w.events[SRV] & RUDP_EV_CLOSED, 0));
    cr_assert(eq(int, rudp_conn_error(w.conn[SRV]), 0));

    /* Not yet released: nothing may be left to wake up for. */
    uint64_t ptos = st->pto_count;
    size_t queued = w.qn[CLI]; /* the second probe, still on its way */
    rudp_time deadline = w_process(SRV);
    for (int i = 0; i < 20 && deadline != RUDP_TIME_NEVER; i++) {
        w.now = deadline > w.now ? deadline : w.now + 1;
        deadline = w_process(SRV);
    }
    cr_assert(eq(u64, st->pto_count, ptos), "probe timeouts on a closed connection");
    cr_assert(eq(u64, deadline, RUDP_TIME_NEVER), "a closed connection still has a timer");
    cr_assert(eq(sz, w.qn[CLI], queued), "a closed connection sent something");
    rudp_conn_release(w.conn[SRV], w.now);
    w_process(SRV);
    cr_assert(eq(sz, rudp_ctx_conn_count(w.ctx[SRV]), 0));
}

/*
 * A RESET naming a connection still in SYN_RCVD (here: a duplicated SYN
 * re-created it after the first server connection was aborted, and the
 * client's stateless reset for the old one's traffic matches the new one's
 * peer key) used to close it through rudp__conn_fail(): the application
 * was handed ERROR|CLOSED events for a connection it was never given by
 * RUDP_EV_ACCEPT, and since nobody would release it and enter_closed() had
 * disarmed the give-up timer that frees half-open connections, it stayed in
 * the context for good. Found by fuzz_conn. It must go quietly, as the
 * give-up timer does it.
 */
Test(conn_regress, reset_of_a_half_open_connection_frees_it_without_events, .timeout = 10)
{
    w_start(0x22, 2000);
    w_take(SRV, 0, 1); /* SYN -> SYN_RCVD, SYNACK */
    cr_assert(eq(sz, rudp_ctx_conn_count(w.ctx[SRV]), 1));
    cr_assert(eq(sz, w.qn[CLI], 1));
    w_drop_all(CLI); /* the SYNACK never arrives */

    /* A RESET from the client's address naming the client's ID. */
    rudp_conn_info info;
    rudp_conn_get_info(w.conn[CLI], &info);
    rudp_hdr h;
    memset(&h, 0, sizeof h);
    h.type = RUDP_PKT_RESET;
    h.dcid = info.local_cid;
    uint8_t buf[RUDP_WIRE_SHORT_HDR];
    cr_assert(eq(int, rudp__wire_hdr_encode(buf, sizeof buf, &h), RUDP_WIRE_SHORT_HDR));
    rudp_ctx_input(w.ctx[SRV], w.now, 1, NULL, &w.addr[CLI], buf, sizeof buf);
    cr_assert(eq(u64, rudp_ctx_stats(w.ctx[SRV])->resets_received, 1));

    rudp_conn *c;
    unsigned ev;
    cr_assert(eq(int, rudp_ctx_next_event(w.ctx[SRV], &c, &ev), 0),
              "events for a connection never accepted");
    rudp_ctx_process(w.ctx[SRV], w.now);
    cr_assert(eq(int, rudp_ctx_next_event(w.ctx[SRV], &c, &ev), 0),
              "events for a connection never accepted");
    cr_assert(eq(sz, rudp_ctx_conn_count(w.ctx[SRV]), 0), "the half-open connection is left");
    w_teardown();
}

/* rudp_ctx_events_pending: what a caller that ran rudp_ctx_process for
 * the thread that pulls events (the shim's app-thread send) asks, to wake
 * it: true exactly while rudp_ctx_next_event has something to give. */
Test(ctx, events_pending_says_whether_next_event_has_one, .init = w_setup, .fini = w_teardown)
{
    rudp_conn *c;
    unsigned ev;
    while (rudp_ctx_next_event(w.ctx[SRV], &c, &ev))
        ;
    cr_assert(eq(int, rudp_ctx_events_pending(w.ctx[SRV]), 0), "nothing queued");
    cr_assert(eq(int, (int)rudp_conn_write(w.conn[CLI], w.now, "ping", 4), 4));
    rudp_ctx_process(w.ctx[CLI], w.now);
    cr_assert(eq(sz, w.qn[SRV], 1));
    wdgram d = w.q[SRV][0];
    w.qn[SRV] = 0;
    rudp_ctx_input(w.ctx[SRV], w.now, 1, NULL, &w.addr[CLI], d.buf, d.len);
    rudp_ctx_process(w.ctx[SRV], w.now); /* events queued, none pulled */
    cr_assert(eq(int, rudp_ctx_events_pending(w.ctx[SRV]), 1), "READABLE queued");
    unsigned all = 0;
    while (rudp_ctx_next_event(w.ctx[SRV], &c, &ev))
        all |= ev;
    cr_assert(ne(u32, all & RUDP_EV_READABLE, 0), "events %#x", all);
    cr_assert(eq(int, rudp_ctx_events_pending(w.ctx[SRV]), 0), "taken");
}
