/*
 * test_ackreply.c: an answer's ACK rides on the next request
 * (conn_input.c's ACK decimation). An answer of two packets, each the
 * sender's last before it ran dry (ACK_NOW: nginx's header, then its
 * file), reaches the every-second-packet count: its ACK is not sent on
 * its own at once but within RUDP_ACK_SOON, so that the request the
 * application writes after reading it carries the ACK (one datagram back
 * instead of two, and no pure ACK to wake the server for). Without a
 * request the ACK still goes within RUDP_ACK_SOON; a gap is still
 * acknowledged at once; more than twice the count waits for nothing.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdint.h>
#include <string.h>

#include "recovery.h"
#include "rudp.h"
#include "timer.h"

#include "lib_wire.h"

TestSuite(ackreply, .init = w_setup, .fini = w_teardown);

static int ack_now(const wdgram *d)
{
    return (d->buf[3] >> 4) & RUDP_PKTF_ACK_NOW;
}

/* The server writes its answer in n writes, each sent before the next
 * (each packet its last before it ran dry: ACK_NOW); returns the bytes. */
static size_t answer(int n)
{
    size_t all = 0;
    for (int i = 0; i < n; i++) {
        char part[40];
        memset(part, 'a' + i, sizeof part);
        cr_assert(eq(int, (int)rudp_conn_write(w.conn[SRV], w.now, part, sizeof part),
                     (int)sizeof part));
        w_process(SRV);
        all += sizeof part;
    }
    cr_assert(eq(sz, w.qn[CLI], (size_t)n), "one packet per write");
    for (int i = 0; i < n; i++)
        cr_assert(ne(int, ack_now(&w.q[CLI][i]), 0), "each the sender's last before it ran dry");
    return all;
}

static uint64_t srv_unacked(void)
{
    rudp_conn_info i;
    rudp_conn_get_info(w.conn[SRV], &i);
    return i.unacked_bytes;
}

/* The client reads all it was sent. */
static void client_reads(size_t n)
{
    char buf[256];
    cr_assert(eq(int, (int)rudp_conn_read(w.conn[CLI], w.now, buf, sizeof buf), (int)n));
}

Test(ackreply, an_answer_of_two_packets_is_acknowledged_by_the_next_request)
{
    for (int round = 0; round < 3; round++) {
        size_t n = answer(2);
        w_take(CLI, 0, 1);
        w_take(CLI, 0, 1);
        cr_assert(eq(sz, w.qn[SRV], 0), "round %d: no ACK of its own at once", round);
        client_reads(n);
        w_process(CLI);
        cr_assert(eq(sz, w.qn[SRV], 0), "round %d: nor after the read", round);
        cr_assert(eq(int, (int)rudp_conn_write(w.conn[CLI], w.now, "GET /", 5), 5));
        w_process(CLI);
        cr_assert(eq(sz, w.qn[SRV], 1), "round %d: the request alone goes back (%zu)", round,
                  w.qn[SRV]);
        cr_assert(gt(u64, srv_unacked(), 0));
        w_take(SRV, 0, 1);
        cr_assert(eq(u64, srv_unacked(), 0), "round %d: the request carried the ACK", round);
        char req[8];
        cr_assert(eq(int, (int)rudp_conn_read(w.conn[SRV], w.now, req, sizeof req), 5));
        w.now += RUDP_MS(1);
        w_settle(); /* the server's ACK of the request, when it comes */
    }
}

Test(ackreply, without_a_request_the_ack_goes_within_ack_soon)
{
    size_t n = answer(2);
    rudp_time at = w.now;
    w_take(CLI, 0, 1);
    w_take(CLI, 0, 1);
    client_reads(n);
    rudp_time due = w_process(CLI);
    cr_assert(eq(sz, w.qn[SRV], 0), "not at once");
    cr_assert(le(u64, due, at + RUDP_ACK_SOON + RUDP_TIMER_TICK_NS), "its timer within ACK_SOON");
    w.now = due;
    w_process(CLI);
    cr_assert(eq(sz, w.qn[SRV], 1), "the ACK on its own, in time");
    w_take(SRV, 0, 1);
    cr_assert(eq(u64, srv_unacked(), 0));
}

Test(ackreply, a_gap_is_still_acknowledged_at_once)
{
    size_t n = answer(1); /* a first packet: the next ones' numbers follow it */
    w_take(CLI, 0, 1);
    client_reads(n);
    w.now += RUDP_MS(5);
    w_process(CLI); /* its ACK, by its timer */
    w_settle();
    answer(2);
    w_take(CLI, 0, 0); /* the first is lost */
    w_take(CLI, 0, 1);
    cr_assert(eq(sz, w.qn[SRV], 1), "the gap told at once");
}

Test(ackreply, four_packets_asking_are_acknowledged_at_once)
{
    /* twice the count: the ACK waits for no request any more */
    answer(4);
    for (int i = 0; i < 3; i++)
        w_take(CLI, 0, 1);
    cr_assert(eq(sz, w.qn[SRV], 0), "three wait for the reply");
    w_take(CLI, 0, 1);
    cr_assert(eq(sz, w.qn[SRV], 1), "the fourth is acknowledged at once");
}
