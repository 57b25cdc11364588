/*
 * Budgets for remote senders (core/budget.c): what a peer can make a server
 * hold is bounded whatever it sends. Each test plays a hostile client by
 * hand-made datagrams into the server context of lib_wire.h (from the
 * client's own address, to the server's connection ID), as an attacker who
 * completed a handshake can.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <string.h>

#include "conn.h"
#include "lib_sim.h"
#include "lib_wire.h"
#include "wire.h"

static uint64_t pn;

/* A DATA packet carrying `frames`, from the client's address to the
 * server's connection, with a packet number the real client never uses. */
static void inject(const uint8_t *frames, size_t n)
{
    if (!pn)
        pn = rudp__recovery_next_pn(&w.conn[CLI]->rec) + 100000;
    uint8_t buf[2048];
    size_t hl = sim_data_hdr(buf, w.conn[SRV]->cid, (uint32_t)pn++);
    cr_assert(le(sz, hl + n, sizeof buf));
    memcpy(buf + hl, frames, n);
    rudp_ctx_input(w.ctx[SRV], w.now, 1, NULL, &w.addr[CLI], buf, hl + n);
    w_process(SRV);
}

static void inject_stream(uint64_t off, size_t len)
{
    uint8_t f[1500];
    int n = rudp__wire_stream_hdr_encode(f, sizeof f, off, len, 0, 1);
    cr_assert(gt(int, n, 0));
    memset(f + n, 'a', len);
    inject(f, (size_t)n + len);
}

static void inject_blocked(uint64_t limit)
{
    uint8_t f[16];
    int n = rudp__wire_blocked_encode(f, sizeof f, limit);
    cr_assert(gt(int, n, 0));
    inject(f, (size_t)n);
}

/* A handshake from the client's address with a fresh client ID: a SYN,
 * and if the server answers with a RETRY (under pressure), the SYN again
 * with its cookie (the attacker answers the RETRY at its real address). */
static void inject_handshake(uint64_t scid)
{
    uint8_t syn[RUDP_MIN_SYN_SIZE];
    rudp_hdr h;
    memset(&h, 0, sizeof h);
    h.type = RUDP_PKT_SYN;
    h.scid = scid;
    h.max_data = 1 << 20;
    h.max_datagram = 1400;
    for (int round = 0; round < 2; round++) {
        int n = rudp__wire_hdr_encode(syn, sizeof syn, &h);
        cr_assert(gt(int, n, 0));
        memset(syn + n, 0, sizeof syn - (size_t)n);
        w_drop_all(CLI);
        rudp_ctx_input(w.ctx[SRV], w.now, 1, NULL, &w.addr[CLI], syn, sizeof syn);
        w_process(SRV);
        rudp_hdr r;
        if (w.qn[CLI] != 1 ||
            rudp__wire_hdr_decode(w.q[CLI][0].buf, w.q[CLI][0].len, &r) <= 0 ||
            r.type != RUDP_PKT_RETRY)
            return; /* a SYNACK, a RESET, or dropped */
        cr_assert(eq(int, round, 0), "a RETRY answered a valid cookie");
        h.token_len = r.token_len;
        memcpy(h.token, r.token, r.token_len);
    }
}

Test(budget, data_blocked_alone_never_grows_the_window, .init = w_setup, .fini = w_teardown,
     .timeout = 10)
{
    rudp_conn *s = w.conn[SRV];
    uint64_t before = s->rwnd;
    for (int i = 0; i < 12; i++) {
        w.now += RUDP_MS(200); /* more than a round trip each time */
        inject_blocked(s->max_data_sent);
        w_drop_all(CLI);
    }
    cr_assert(eq(u64, s->rwnd, before), "the window grew without a byte read");
}

/* ops.unread: what the caller holds for its reader unread. */
static uint64_t held_unread;
static uint64_t unread_op(void *user, rudp_conn *c)
{
    (void)user;
    (void)c;
    return held_unread;
}

/* The server reads a little over half its window, the client says the
 * window blocks it: whether the window grew. */
static int grows_after_reading_half(void)
{
    rudp_conn *s = w.conn[SRV];
    uint64_t before = s->rwnd, off = s->rcv_contig, want = s->rwnd / 2 + 1200;
    for (uint64_t sent = 0; sent < want; sent += 1200, off += 1200)
        inject_stream(off, 1200);
    uint8_t buf[4096];
    ssize_t n;
    while ((n = rudp_conn_read(s, w.now, buf, sizeof buf)) > 0)
        ;
    cr_assert(eq(u64, s->rcv_read, s->rcv_contig));
    w.now += RUDP_MS(200); /* more than a round trip */
    inject_blocked(s->max_data_sent);
    w_drop_all(CLI);
    return s->rwnd > before;
}

/* TCP grows its receive buffer on the application's reads: bytes the
 * caller took from the connection and still holds unread (the shim's
 * bridge) are not read, so a peer that reads nothing never grows it. */
Test(budget, bytes_the_caller_holds_unread_do_not_grow_the_window, .init = w_setup,
     .fini = w_teardown, .timeout = 10)
{
    w.ctx[SRV]->ops.unread = unread_op;
    held_unread = w.conn[SRV]->rwnd; /* all it read, and more, is still held */
    cr_assert(not(grows_after_reading_half()), "the window grew for bytes nobody read");
    held_unread = 0; /* the reader took them */
    cr_assert(grows_after_reading_half(), "the window did not grow for a reader that reads");
}

Test(budget, scattered_bytes_cost_memory_in_proportion_to_what_is_held, .init = w_setup,
     .fini = w_teardown, .timeout = 10)
{
    uint64_t mem0 = rudp_ctx_memory(w.ctx[SRV]);
    /* One byte per 4 KiB, never in order, over a window grown to 1 MiB
     * (the initial one, 4 chunks, is within the rule's slack: nothing in
     * it is ever refused). */
    w.conn[SRV]->rwnd = w.conn[SRV]->max_data_sent = 1024 * 1024;
    for (uint64_t k = 1; k < 1024 * 1024 / 4096; k++)
        inject_stream(k * 4096, 1);
    uint64_t held = rudp__ranges_total(&w.conn[SRV]->rcv);
    uint64_t grew = rudp_ctx_memory(w.ctx[SRV]) - mem0;
    /* four times what is held plus four chunks, plus the chunk ring */
    uint64_t bound = 4 * held + 4 * RUDP_SBUF_CHUNK + w.conn[SRV]->rbuf.nslots * sizeof(void *);
    cr_assert(le(u64, grew, bound), "held %llu bytes in %llu bytes of memory",
              (unsigned long long)held, (unsigned long long)grew);
    cr_assert(gt(u64, rudp_ctx_stats(w.ctx[SRV])->rx_dropped, 0));
    /* Dense data is stored as before: 32 KiB in order, all of it. */
    for (uint64_t off = 0; off < 32768; off += 1024)
        inject_stream(off, 1024);
    cr_assert(ge(u64, w.conn[SRV]->rcv_contig, 32768));
}

Test(budget, a_connection_waiting_for_the_application_fills_the_accept_queue, .init = w_setup,
     .fini = w_teardown, .timeout = 10)
{
    rudp_conn_set_waiting(w.conn[SRV], 1);
    size_t conns = rudp_ctx_conn_count(w.ctx[SRV]);
    inject_handshake(0x1111);
    cr_assert(eq(sz, rudp_ctx_conn_count(w.ctx[SRV]), conns), "a handshake was taken");
    /* the first SYN got a RETRY (an answer: the client knows rudp runs
     * here), the one with the cookie was dropped */
    cr_assert(eq(u64, rudp_ctx_stats(w.ctx[SRV])->retries_halfopen, 1));
    cr_assert(eq(u64, rudp_ctx_stats(w.ctx[SRV])->handshakes_dropped, 1));
    rudp_conn_set_waiting(w.conn[SRV], 0); /* the application took it */
    inject_handshake(0x2222);
    cr_assert(eq(sz, rudp_ctx_conn_count(w.ctx[SRV]), conns + 1));
}

Test(budget, one_source_cannot_take_the_whole_backlog, .init = w_setup, .fini = w_teardown,
     .timeout = 10)
{
    rudp_listener *l = rudp_conn_listener(w.conn[SRV]);
    cr_assert_not_null(l);
    l->backlog = 16;
    l->cfg.source_limit = 3;
    size_t conns = rudp_ctx_conn_count(w.ctx[SRV]);
    /* one address and port, a new client ID each time */
    for (uint64_t id = 1; id <= 10; id++)
        inject_handshake(0xabc000 + id);
    cr_assert(eq(sz, rudp_ctx_conn_count(w.ctx[SRV]), conns + 3));
    cr_assert(eq(u64, rudp_ctx_stats(w.ctx[SRV])->source_limited, 7));
}

Test(budget, past_the_memory_limit_handshakes_are_refused_and_data_dropped, .init = w_setup,
     .fini = w_teardown, .timeout = 10)
{
    rudp_ctx_set_memory_limit(w.ctx[SRV], rudp_ctx_memory(w.ctx[SRV]) + 1000);
    size_t conns = rudp_ctx_conn_count(w.ctx[SRV]);
    inject_handshake(0x3333);
    cr_assert(eq(sz, rudp_ctx_conn_count(w.ctx[SRV]), conns));
    cr_assert(eq(u64, rudp_ctx_stats(w.ctx[SRV])->memory_refused, 1));
    rudp_hdr r;
    cr_assert(eq(sz, w.qn[CLI], 1));
    cr_assert(gt(int, rudp__wire_hdr_decode(w.q[CLI][0].buf, w.q[CLI][0].len, &r), 0));
    cr_assert(eq(int, r.type, RUDP_PKT_RESET), "a refused handshake gets a RESET");
    uint64_t contig = w.conn[SRV]->rcv_contig;
    inject_stream(contig, 1000); /* needs a new chunk: over the budget */
    cr_assert(eq(u64, w.conn[SRV]->rcv_contig, contig));
    cr_assert(gt(u64, rudp_ctx_stats(w.ctx[SRV])->rx_dropped, 0));
}

/* The budgets must never cost an honest flow its data: slow start
 * overflowing a drop-tail queue leaves data after a loss sparse (every
 * other segment or worse), the pattern the scattered-data rule must let
 * through. Links where a 2x rule dropped honest data. */
Test(budget, honest_flows_never_lose_data_to_the_budgets, .timeout = 120)
{
    static const struct {
        const char *cc;
        rudp_time owd;
        size_t queue;
        double loss;
    } links[] = {
        {"newreno", RUDP_MS(5), 125000, 0},   /* B1-shaped */
        {"cubic", RUDP_MS(5), 125000, 0},
        {"newreno", RUDP_MS(20), 2000000, 0}, /* a deep queue, big overshoot */
        {"cubic", RUDP_MS(5), 125000, 0.001},
    };
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        for (uint64_t seed = 1; seed <= 2; seed++) {
            sim_bulk_result r;
            sim_bulk_single(seed, rudp_cc_find(links[i].cc), links[i].owd, 100000000,
                            links[i].queue, links[i].loss, RUDP_SEC(6), &r);
            cr_assert(eq(int, r.error, 0));
            cr_assert(eq(u64, r.rx_dropped, 0), "%s, %zu bytes of queue, seed %llu: %llu "
                      "segments of data dropped by the budget",
                      links[i].cc, links[i].queue, (unsigned long long)seed,
                      (unsigned long long)r.rx_dropped);
        }
    }
}

/* The caller's accept queue (rudp_acceptq_ops): a fake one. */
static int aq_room_ok;
static int aq_held;

static int aq_room(void *arg)
{
    (void)arg;
    return aq_room_ok;
}

static void aq_moved(void *arg, int delta)
{
    (void)arg;
    aq_held += delta;
}

Test(budget, the_callers_accept_queue_holds_each_connection_until_the_application_takes_it,
     .init = w_setup, .fini = w_teardown, .timeout = 10)
{
    static const rudp_acceptq_ops ops = {aq_room, aq_moved};
    rudp_listener *l = rudp_conn_listener(w.conn[SRV]);
    cr_assert_not_null(l);
    rudp_listener_set_acceptq(l, &ops, NULL);
    /* w_setup's connection: accepted, not yet taken (counted before the
     * ops were set: it is the one already held) */
    aq_held = 1;
    rudp_conn_set_waiting(w.conn[SRV], 1); /* no room in the application's queue */
    cr_assert(eq(int, aq_held, 1), "waiting is still held");
    rudp_conn_set_waiting(w.conn[SRV], 0); /* taken */
    cr_assert(eq(int, aq_held, 0));

    size_t conns = rudp_ctx_conn_count(w.ctx[SRV]);
    aq_room_ok = 0;
    inject_handshake(0x1111);
    cr_assert(eq(sz, rudp_ctx_conn_count(w.ctx[SRV]), conns), "answered with no room");
    cr_assert(eq(u64, rudp_ctx_stats(w.ctx[SRV])->retries_halfopen, 1));
    cr_assert(eq(u64, rudp_ctx_stats(w.ctx[SRV])->handshakes_dropped, 1));
    cr_assert(eq(int, aq_held, 0));
    aq_room_ok = 1;
    inject_handshake(0x2222);
    cr_assert(eq(sz, rudp_ctx_conn_count(w.ctx[SRV]), conns + 1));
    cr_assert(eq(int, aq_held, 1), "the answered handshake is held");
}
