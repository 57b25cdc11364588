/* Handover (standby.c): a client with a second socket on another network
 * keeps it validated, moves there when its path goes silent without any
 * route or address change, and back when the path answers again; what an
 * observer or a forger sends meanwhile changes nothing. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "lib_sim.h"
#include "wire.h"

#define UP 3000000   /* client -> server bytes: ~2.4 s at 10 Mbit/s */
#define DOWN 3000000 /* server -> client bytes */
#define ALT_SOCK 7

typedef struct hand {
    sim s;
    int a, b, ci;
    rudp_time cut, back; /* the primary drops everything from cut to back */
} hand;

static const uint8_t test_key[RUDP_KEY_LEN] = {9, 9, 9, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9};
static const rudp_addr alt_addr = {.family = 2, .port = 4001, .ip = {10, 0, 1, 1}};

static void path_like(sim_link *l)
{
    l->delay = RUDP_MS(10);
    l->rate_bps = 10000000;
    l->queue_bytes = 100000;
}

/* Client a and server b, 10 ms each way at 10 Mbit/s on both paths; the
 * client's standby given 200 ms in; the primary cut both ways from 0.6 s
 * for `secs` seconds. */
static void hand_up(hand *h, uint64_t seed, int keyed, rudp_time secs)
{
    sim_init(&h->s, seed);
    h->a = sim_add_ep(&h->s, NULL);
    h->b = sim_add_ep(&h->s, NULL);
    if (getenv("SIM_PRINT")) {
        rudp_ctx_set_log_level(h->s.ep[h->a].ctx, RUDP_LOG_INFO);
        rudp_ctx_set_log_level(h->s.ep[h->b].ctx, RUDP_LOG_INFO);
    }
    if (keyed) {
        sim_set_key(&h->s, h->a, test_key);
        sim_set_key(&h->s, h->b, test_key);
    }
    path_like(&h->s.link[h->a][h->b]);
    path_like(&h->s.link[h->b][h->a]);
    cr_assert(eq(int, sim_alt_path(&h->s, h->a, ALT_SOCK, &alt_addr), 0));
    path_like(&h->s.alt[0].out);
    path_like(&h->s.alt[0].in);
    sim_app srv = {.to_send = DOWN, .expect = UP, .send_seed = 2, .recv_seed = 1};
    sim_app cli = {.to_send = UP, .expect = DOWN, .send_seed = 1, .recv_seed = 2};
    sim_listen(&h->s, h->b, &srv, 16);
    h->ci = sim_connect(&h->s, h->a, h->b, &cli, NULL);
    cr_assert(ge(int, h->ci, 0));
    sim_run_until(&h->s, h->s.now + RUDP_MS(200));
    cr_assert(h->s.apps[h->ci].established);
    cr_assert(eq(int, rudp_conn_standby(h->s.apps[h->ci].conn, h->s.now, ALT_SOCK, NULL), 0));
    h->cut = h->s.now + RUDP_MS(400);
    h->back = h->cut + secs;
    for (int d = 0; d < 2; d++) {
        sim_link *l = d ? &h->s.link[h->b][h->a] : &h->s.link[h->a][h->b];
        l->cut_at = h->cut;
        l->cut_until = h->back;
    }
}

static void assert_delivered(hand *h, int done)
{
    const char *fc = sim_app_fault(&h->s.apps[h->ci]);
    const char *fs = sim_app_fault(sim_app_on(&h->s, h->b));
    cr_assert(done, "the run did not finish");
    cr_assert(fc == NULL, "client: %s", fc);
    cr_assert(fs == NULL, "server: %s", fs);
}

static const rudp_stats *stats(hand *h, int ep)
{
    return rudp_ctx_stats(h->s.ep[ep].ctx);
}

/* The primary silent both ways for 1 s, no route or address changed: the
 * connection moves to the standby, and back once the primary answers; one
 * move each way at each end. */
static void silent_primary(int keyed)
{
    hand h;
    hand_up(&h, 41, keyed, RUDP_SEC(1));
    assert_delivered(&h, sim_run(&h.s, h.s.now + RUDP_SEC(60)));
    const rudp_stats *c = stats(&h, h.a), *sv = stats(&h, h.b);
    cr_assert(eq(u64, c->handovers, 1), "client: %llu moves to the standby",
              (unsigned long long)c->handovers);
    cr_assert(eq(u64, c->handbacks, 1), "client: %llu moves back",
              (unsigned long long)c->handbacks);
    cr_assert(eq(u64, sv->path_moves, 2), "server: %llu moves", (unsigned long long)sv->path_moves);
    cr_assert(gt(u64, h.s.link[h.a][h.b].dropped + h.s.link[h.b][h.a].dropped, 0));
    cr_assert(gt(u64, h.s.alt[0].in.sent, 100), "the standby carried the transfer");
    cr_assert(eq(u64, c->rebinds, 0), "no new socket: the standby took over");
    sim_free(&h.s);
}

Test(standby, a_silent_primary_hands_over_and_back_unkeyed, .timeout = 60) { silent_primary(0); }
Test(standby, a_silent_primary_hands_over_and_back_keyed, .timeout = 60) { silent_primary(1); }

/* Without a standby the same silence is ridden out on the primary (the
 * probe timeout backs off): what the standby changes. */
Test(standby, no_standby_no_handover, .timeout = 60)
{
    hand h;
    hand_up(&h, 41, 0, RUDP_SEC(1));
    rudp_conn_standby_clear(h.s.apps[h.ci].conn);
    assert_delivered(&h, sim_run(&h.s, h.s.now + RUDP_SEC(60)));
    cr_assert(eq(u64, stats(&h, h.a)->handovers, 0));
    cr_assert(eq(u64, stats(&h, h.b)->path_moves, 0));
    cr_assert(eq(u64, h.s.alt[0].in.sent + h.s.alt[0].out.sent, 0), "a cleared standby carries nothing");
    sim_free(&h.s);
}

/* A standby that never answers (its network drops everything) is never
 * moved to: the connection rides the primary's silence out. */
Test(standby, a_standby_that_never_answered_takes_nothing, .timeout = 60)
{
    hand h;
    hand_up(&h, 43, 0, RUDP_SEC(1));
    h.s.alt[0].out.cut_at = h.s.alt[0].in.cut_at = 1;
    assert_delivered(&h, sim_run(&h.s, h.s.now + RUDP_SEC(60)));
    cr_assert(eq(u64, stats(&h, h.a)->handovers, 0));
    cr_assert(eq(u64, stats(&h, h.b)->path_moves, 0));
    cr_assert(eq(u64, stats(&h, h.a)->standby_validated, 0));
    sim_free(&h.s);
}

/* The primary keeps carrying, but ever slower (a queue that grows: 50 ms
 * more each way every 100 ms, up to 1.5 s), never silent for a probe
 * timeout: past 8x the standby's round trip and 1 s, the client moves to
 * the standby, and stays (the dwell outlasts the run). */
Test(standby, a_primary_far_slower_than_the_standby_is_left, .timeout = 60)
{
    hand h;
    hand_up(&h, 59, 0, RUDP_SEC(1));
    for (int d = 0; d < 2; d++) {
        sim_link *l = d ? &h.s.link[h.b][h.a] : &h.s.link[h.a][h.b];
        l->cut_at = l->cut_until = 0;
    }
    for (rudp_time t = h.cut, d = RUDP_MS(60); d <= RUDP_MS(1500); t += RUDP_MS(100),
                   d += RUDP_MS(50)) {
        sim_run_until(&h.s, t);
        h.s.link[h.a][h.b].delay = h.s.link[h.b][h.a].delay = d;
    }
    assert_delivered(&h, sim_run(&h.s, h.s.now + RUDP_SEC(120)));
    const rudp_stats *c = stats(&h, h.a);
    cr_assert(eq(u64, c->handovers_slow, 1), "client: %llu moves for a slow primary (%llu in all)",
              (unsigned long long)c->handovers_slow, (unsigned long long)c->handovers);
    cr_assert(eq(u64, c->handovers, 1));
    cr_assert(eq(u64, c->handbacks, 0));
    cr_assert(eq(u64, stats(&h, h.b)->path_moves, 1));
    cr_assert(gt(u64, h.s.alt[0].in.sent, 100), "the standby carried the transfer");
    sim_free(&h.s);
}

/* ---- what an observer or a forger sends during the move ---- */

/* A PATH_RESPONSE the client never sent, to the server's connection, from
 * `from`: numbered above the newest the server took, unkeyed (keyed, it
 * fails authentication). */
static void forge_response(hand *h, const rudp_addr *from)
{
    sim_app *sv = sim_app_on(&h->s, h->b);
    cr_assert_not_null(sv);
    rudp_conn_info si;
    rudp_conn_get_info(sv->conn, &si);
    uint8_t buf[64];
    memset(buf, 0, sizeof buf);
    size_t n = sim_data_hdr(buf, si.local_cid, (uint32_t)(sv->conn->rx_largest + 1));
    rudp__wire_path_encode(buf + n, sizeof buf - n, RUDP_FRAME_PATH_RESPONSE,
                           0x0123456789abcdefull ^ h->s.now);
    sim_inject(&h->s, from, h->b, buf, n + 9);
}

static void forged_during_the_move(int keyed)
{
    hand h;
    hand_up(&h, 47, keyed, RUDP_SEC(1));
    memset(&sim_flip, 0, sizeof sim_flip);
    sim_flip.rng = 0x9e3779b97f4a7c15ull;
    sim_flip.from = h.cut - RUDP_MS(100);
    sim_flip.until = h.back + RUDP_MS(300);
    sim_flip.addr = (rudp_addr){.family = 2, .port = 57166, .ip = {10, 6, 6, 6}};
    sim_flip.src = h.a;
    sim_flip.dst = h.b;
    h.s.tap = sim_flip_tap;
    /* forged answers from the observer and from the standby's own
     * address, every 20 ms through the move */
    uint64_t auth0 = stats(&h, h.b)->auth_failed;
    int forged = 0;
    for (rudp_time t = h.cut; t < h.cut + RUDP_MS(400); t += RUDP_MS(20)) {
        sim_run_until(&h.s, t);
        forge_response(&h, &sim_flip.addr);
        forged++;
        /* from the standby's address too while the server does not send
         * there: unkeyed, a packet from the path in use is the peer's for
         * anyone who saw one (README, Security), whatever its frames */
        sim_app *sv = sim_app_on(&h.s, h.b);
        cr_assert_not_null(sv);
        if (keyed || memcmp(rudp_conn_peer(sv->conn), &alt_addr, sizeof alt_addr) != 0) {
            forge_response(&h, &alt_addr);
            forged++;
        }
    }
    assert_delivered(&h, sim_run(&h.s, h.s.now + RUDP_SEC(60)));
    cr_assert(gt(int, sim_flip.n, 100), "only %d copies", sim_flip.n);
    const rudp_stats *c = stats(&h, h.a), *sv = stats(&h, h.b);
    cr_assert(eq(u64, c->handovers, 1));
    cr_assert(eq(u64, c->handbacks, 1));
    cr_assert(eq(u64, sv->path_moves, 2), "server: %llu moves (the observer's address taken?)",
              (unsigned long long)sv->path_moves);
    cr_assert(le(u64, h.s.void_bytes, RUDP_PATH_AMPLIFICATION * sim_flip.bytes),
              "%llu bytes to the observer for %zu of copies",
              (unsigned long long)h.s.void_bytes, sim_flip.bytes);
    if (keyed)
        cr_assert(ge(u64, sv->auth_failed, auth0 + (uint64_t)forged));
    sim_free(&h.s);
}

Test(standby, copies_and_forged_answers_during_the_move_change_nothing_unkeyed, .timeout = 60)
{
    forged_during_the_move(0);
}

Test(standby, copies_and_forged_answers_during_the_move_change_nothing_keyed, .timeout = 60)
{
    forged_during_the_move(1);
}

/* A server's connection takes no standby, and a client's only another
 * socket than the one in use, once established. */
Test(standby, only_an_established_clients_other_socket)
{
    hand h;
    hand_up(&h, 49, 0, RUDP_SEC(1));
    sim_app *sv = sim_app_on(&h.s, h.b);
    cr_assert_not_null(sv);
    cr_assert(eq(int, rudp_conn_standby(sv->conn, h.s.now, ALT_SOCK, NULL), -EINVAL));
    rudp_conn *c = h.s.apps[h.ci].conn;
    cr_assert(eq(int, rudp_conn_standby(c, h.s.now, rudp_conn_sock(c), NULL), -EINVAL));
    uint32_t other = 0;
    cr_assert(eq(int, rudp_conn_standby_sock(c, &other), 1));
    cr_assert(eq(u32, other, ALT_SOCK));
    sim_free(&h.s);
}

/* ---- a server's second address, offered (SERVER_ADDR) ---- */

static const rudp_addr srv2 = {.family = 2, .port = 1001, .ip = {10, 0, 9, 2}};
static const rudp_addr cli2 = {.family = 2, .port = 5001, .ip = {10, 0, 0, 1}};

/* Client a with one address, server b with a second one (10.0.9.2, heard
 * by its listening socket): the server offers it, the client takes it as
 * its standby (a socket of its own, another port), and the primary (the
 * server's first address) goes silent for 1 s. */
static void offered(int keyed, int old_client)
{
    hand h;
    sim_init(&h.s, 53);
    h.a = sim_add_ep(&h.s, NULL);
    h.b = sim_add_ep(&h.s, NULL);
    if (getenv("SIM_PRINT")) {
        rudp_ctx_set_log_level(h.s.ep[h.a].ctx, RUDP_LOG_INFO);
        rudp_ctx_set_log_level(h.s.ep[h.b].ctx, RUDP_LOG_INFO);
    }
    if (keyed) {
        sim_set_key(&h.s, h.a, test_key);
        sim_set_key(&h.s, h.b, test_key);
    }
    path_like(&h.s.link[h.a][h.b]);
    path_like(&h.s.link[h.b][h.a]);
    int i = sim_alt_path(&h.s, h.b, 1, &srv2), j = sim_alt_path(&h.s, h.a, ALT_SOCK, &cli2);
    cr_assert(eq(int, i, 0));
    cr_assert(eq(int, j, 1));
    for (int k = 0; k < 2; k++) {
        path_like(&h.s.alt[k].out);
        path_like(&h.s.alt[k].in);
    }
    sim_app srv = {.to_send = DOWN, .expect = UP, .send_seed = 2, .recv_seed = 1};
    sim_app cli = {.to_send = UP, .expect = DOWN, .send_seed = 1, .recv_seed = 2};
    sim_listen(&h.s, h.b, &srv, 16);
    h.ci = sim_connect(&h.s, h.a, h.b, &cli, NULL);
    sim_run_until(&h.s, h.s.now + RUDP_MS(200));
    sim_app *sv = sim_app_on(&h.s, h.b), *c = &h.s.apps[h.ci];
    cr_assert_not_null(sv);
    if (old_client)
        sv->conn->peer_addrs = 0; /* its SYN did not say it takes SERVER_ADDR */
    cr_assert(eq(int, rudp_conn_offer_addr(sv->conn, h.s.now, &srv2), 0));
    /* what it sends waits behind the download's queue (100 KB at 10 Mbit/s) */
    for (int k = 0; k < 50 && !(c->events & RUDP_EV_OFFER); k++)
        sim_run_until(&h.s, h.s.now + RUDP_MS(10));
    rudp_addr got;
    if (old_client) {
        cr_assert(eq(u32, c->events & RUDP_EV_OFFER, 0), "an older client was sent SERVER_ADDR");
        cr_assert(eq(int, rudp_conn_server_offer(c->conn, &got), 0));
        cr_assert(eq(u64, stats(&h, h.b)->standby_pkts, 0));
        sim_free(&h.s);
        return;
    }
    cr_assert(ne(u32, c->events & RUDP_EV_OFFER, 0));
    cr_assert(eq(int, rudp_conn_server_offer(c->conn, &got), 1));
    cr_assert(eq(int, memcmp(&got, &srv2, sizeof got), 0));
    cr_assert(eq(int, rudp_conn_standby(c->conn, h.s.now, ALT_SOCK, &got), 0));
    h.cut = h.s.now + RUDP_MS(300);
    h.back = h.cut + RUDP_SEC(1);
    for (int d = 0; d < 2; d++) {
        sim_link *l = d ? &h.s.link[h.b][h.a] : &h.s.link[h.a][h.b];
        l->cut_at = h.cut;
        l->cut_until = h.back;
    }
    assert_delivered(&h, sim_run(&h.s, h.s.now + RUDP_SEC(60)));
    const rudp_stats *cs = stats(&h, h.a), *ss = stats(&h, h.b);
    cr_assert(eq(u64, cs->handovers, 1), "client: %llu moves", (unsigned long long)cs->handovers);
    cr_assert(eq(u64, cs->handbacks, 1));
    cr_assert(eq(u64, ss->path_moves, 2), "server: %llu moves", (unsigned long long)ss->path_moves);
    cr_assert(gt(u64, h.s.alt[0].out.sent, 100), "the server's second address carried the transfer");
    cr_assert(gt(u64, h.s.alt[0].in.sent, 100));
    /* the client's second socket spoke only with that address, and heard
     * only from it (a connected socket hears nothing else) */
    cr_assert(eq(u64, h.s.alt[1].out.sent + h.s.alt[1].in.sent, 0));
    sim_free(&h.s);
}

Test(standby, a_server_address_offered_takes_over_unkeyed, .timeout = 60) { offered(0, 0); }
Test(standby, a_server_address_offered_takes_over_keyed, .timeout = 60) { offered(1, 0); }
Test(standby, an_older_client_is_offered_nothing) { offered(0, 1); }
