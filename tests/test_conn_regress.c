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

#define CLI 0
#define SRV 1
#define QMAX 64

typedef struct wdgram {
    size_t len;
    uint8_t buf[2048];
} wdgram;

/* q[ep]: datagrams on their way to ep */
static struct wire {
    rudp_ctx *ctx[2];
    rudp_addr addr[2];
    rudp_conn *conn[2];
    unsigned events[2];
    rudp_time now;
    wdgram q[2][QMAX];
    size_t qn[2];
} w;

static void w_send(void *user, uint32_t sock, const rudp_addr *peer, const uint8_t *buf,
                   size_t len)
{
    (void)sock;
    int from = (int)(intptr_t)user, to = 1 - from;
    cr_assert(eq(int, memcmp(peer, &w.addr[to], sizeof *peer), 0));
    cr_assert(lt(sz, w.qn[to], (size_t)QMAX));
    cr_assert(le(sz, len, sizeof w.q[to][0].buf));
    w.q[to][w.qn[to]].len = len;
    memcpy(w.q[to][w.qn[to]].buf, buf, len);
    w.qn[to]++;
}

static void w_events(int ep)
{
    rudp_conn *c;
    unsigned ev;
    while (rudp_ctx_next_event(w.ctx[ep], &c, &ev)) {
        if (ev & RUDP_EV_ACCEPT)
            w.conn[ep] = c;
        if (c == w.conn[ep])
            w.events[ep] |= ev;
    }
}

static rudp_time w_process(int ep)
{
    rudp_time next = rudp_ctx_process(w.ctx[ep], w.now);
    w_events(ep);
    return next;
}

/* Delivers the i-th queued datagram to ep (or drops it) and removes it. */
static void w_take(int ep, size_t i, int deliver)
{
    cr_assert(lt(sz, i, w.qn[ep]));
    wdgram d = w.q[ep][i];
    memmove(&w.q[ep][i], &w.q[ep][i + 1], (w.qn[ep] - i - 1) * sizeof w.q[ep][0]);
    w.qn[ep]--;
    if (deliver)
        rudp_ctx_input(w.ctx[ep], w.now, 1, NULL, &w.addr[1 - ep], d.buf, d.len);
    w_process(ep);
}

static void w_drop_all(int ep)
{
    w.qn[ep] = 0;
}

/* Delivers everything both ways until the wire is quiet. */
static void w_settle(void)
{
    for (int round = 0; round < 100 && (w.qn[0] || w.qn[1]); round++) {
        w.now += RUDP_MS(1);
        for (int ep = 0; ep < 2; ep++)
            while (w.qn[ep])
                w_take(ep, 0, 1);
    }
    cr_assert(eq(sz, w.qn[0] + w.qn[1], 0), "the wire never went quiet");
}

static void w_setup(void)
{
    memset(&w, 0, sizeof w);
    w.now = RUDP_SEC(1000);
    static const rudp_ctx_ops ops = {.send = w_send};
    for (int ep = 0; ep < 2; ep++) {
        uint8_t seed[32];
        memset(seed, 0x11 * (ep + 1), sizeof seed);
        w.addr[ep].family = 2;
        w.addr[ep].port = (uint16_t)(1000 + ep);
        w.addr[ep].ip[0] = 10;
        w.addr[ep].ip[3] = (uint8_t)(ep + 1);
        cr_assert(eq(int, rudp_ctx_new(&ops, (void *)(intptr_t)ep, seed, NULL, &w.ctx[ep]), 0));
    }
    rudp_listener *l;
    cr_assert(eq(int, rudp_listen(w.ctx[SRV], 1, NULL, 4, &l), 0));
    cr_assert(eq(int, rudp_connect(w.ctx[CLI], w.now, 1, &w.addr[SRV], NULL, &w.conn[CLI]), 0));
    w_process(CLI);
    w_settle();
    cr_assert(ne(u32, w.events[CLI] & RUDP_EV_ESTABLISHED, 0));
    cr_assert(ne(u32, w.events[SRV] & RUDP_EV_ACCEPT, 0));
    cr_assert_not_null(w.conn[SRV]);
}

static void w_teardown(void)
{
    rudp_ctx_free(w.ctx[0]);
    rudp_ctx_free(w.ctx[1]);
}

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
    memset(&w, 0, sizeof w);
    w.now = RUDP_SEC(1000);
    static const rudp_ctx_ops ops = {.send = w_send};
    for (int ep = 0; ep < 2; ep++) {
        uint8_t seed[32];
        memset(seed, 0x22 * (ep + 1), sizeof seed);
        w.addr[ep].family = 2;
        w.addr[ep].port = (uint16_t)(2000 + ep);
        w.addr[ep].ip[0] = 10;
        w.addr[ep].ip[3] = (uint8_t)(ep + 1);
        cr_assert(eq(int, rudp_ctx_new(&ops, (void *)(intptr_t)ep, seed, NULL, &w.ctx[ep]), 0));
    }
    rudp_listener *l;
    cr_assert(eq(int, rudp_listen(w.ctx[SRV], 1, NULL, 4, &l), 0));
    cr_assert(eq(int, rudp_connect(w.ctx[CLI], w.now, 1, &w.addr[SRV], NULL, &w.conn[CLI]), 0));
    w_process(CLI);
    w_take(SRV, 0, 1); /* SYN -> RETRY */
    w_take(CLI, 0, 1); /* RETRY -> SYN with the cookie */
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
    cr_assert(eq(int, rudp_wire_hdr_encode(buf, sizeof buf, &h), RUDP_WIRE_SHORT_HDR));
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
