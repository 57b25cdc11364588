/*
 * Path MTU discovery (core/pmtu.c): sizes found on paths that drop what
 * is too big (as a path at that MTU that drops IP fragments does: the
 * simulator's link mtu), a black hole that opens mid-transfer, an outage
 * that is not one, and "too big" reports validated or not.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <string.h>

#include "conn.h"
#include "lib_sim.h"

#define MB 1000000ull

static rudp_config pmtud_cfg(uint32_t max)
{
    rudp_config c;
    rudp_config_default(&c);
    c.max_datagram = max;
    c.pmtud = 1;
    return c;
}

/* A client at a, server at b, 10 ms and 20 Mbit/s each way (a 20 MB
 * upload takes 8 s), both with pmtud on and
 * `max` as their ceiling; the client uploads `bytes` with a pattern. */
static int upload(sim *s, uint64_t seed, uint32_t max, uint64_t bytes, int *a, int *b)
{
    rudp_config cfg = pmtud_cfg(max);
    sim_init(s, seed);
    *a = sim_add_ep(s, &cfg);
    *b = sim_add_ep(s, &cfg);
    for (int d = 0; d < 2; d++) {
        sim_link *l = d ? &s->link[*b][*a] : &s->link[*a][*b];
        l->delay = RUDP_MS(10);
        l->rate_bps = 20000000;
        l->queue_bytes = 100000;
    }
    sim_listen(s, *b, &(sim_app){.expect = bytes, .recv_seed = 9, .no_release = 1}, 16);
    return sim_connect(s, *a, *b,
                       &(sim_app){.to_send = bytes, .send_seed = 9, .no_release = 1}, &cfg);
}

static uint32_t mss_of(const sim_app *app)
{
    rudp_conn_info info;
    rudp_conn_get_info(app->conn, &info);
    return info.mss;
}

static void expect_intact(sim *s, int b, uint64_t bytes)
{
    sim_app *sv = sim_app_on(s, b);
    cr_assert_not_null(sv);
    cr_assert(eq(u64, sv->received, bytes), "every byte arrived");
    cr_assert(not(sv->corrupt));
    cr_assert(sv->eof);
}

/* A path that carries at most 1252 bytes of UDP payload (MTU 1280, IPv4)
 * and drops anything larger: the transfer goes through at once, the
 * probes find the size within RUDP_PMTU_STEP, and none of their losses
 * reached the controller as congestion. */
Test(pmtu, finds_the_size_of_a_path_that_drops_what_is_too_big)
{
    sim s;
    int a, b;
    int ci = upload(&s, 301, 1472, 10 * MB, &a, &b);
    s.link[a][b].mtu = s.link[b][a].mtu = 1252;
    sim_run_until(&s, s.now + RUDP_SEC(20));
    expect_intact(&s, b, 10 * MB);
    uint32_t mss = mss_of(&s.apps[ci]);
    cr_assert(le(u32, mss, 1252));
    cr_assert(ge(u32, mss, 1252 - RUDP_PMTU_STEP), "found: %u", mss);
    const rudp_stats *st = rudp_ctx_stats(s.ep[a].ctx);
    cr_assert(gt(u64, st->pmtu_probes_lost, 0));
    cr_assert(eq(u64, st->pkts_retransmitted, 0), "a lost probe is resent as nothing");
    cr_assert(eq(u64, s.apps[ci].conn->rec.lost_packets, 0), "nor counted as congestion");
    sim_free(&s);
}

/* Jumbo frames: up to the ceiling both ends allow. */
Test(pmtu, climbs_to_jumbo_frames)
{
    sim s;
    int a, b;
    int ci = upload(&s, 302, 8972, 8 * MB, &a, &b);
    sim_run_until(&s, s.now + RUDP_SEC(20));
    expect_intact(&s, b, 8 * MB);
    cr_assert(eq(u32, mss_of(&s.apps[ci]), 8972));
    cr_assert(eq(u64, rudp_ctx_stats(s.ep[a].ctx)->pmtu_probes_lost, 0));
    cr_assert(eq(u64, rudp_ctx_stats(s.ep[b].ctx)->pmtu_probes, 0),
              "the receiver, with no data to send, probes nothing");
    sim_free(&s);
}

/* The path shrinks mid-transfer and says nothing (no ICMP): two probe
 * timeouts send everything at the base, the old size fails its probes
 * (a black hole), and the transfer completes at the new size. */
Test(pmtu, a_black_hole_mid_transfer_is_found_and_the_transfer_completes)
{
    sim s;
    int a, b;
    int ci = upload(&s, 303, 1472, 20 * MB, &a, &b);
    sim_run_until(&s, s.now + RUDP_SEC(1));
    cr_assert(eq(u32, mss_of(&s.apps[ci]), 1472), "full size before");
    s.link[a][b].mtu = 1252;
    sim_run_until(&s, s.now + RUDP_SEC(30));
    expect_intact(&s, b, 20 * MB);
    const rudp_stats *st = rudp_ctx_stats(s.ep[a].ctx);
    cr_assert(ge(u64, st->pmtu_fallbacks, 1));
    cr_assert(ge(u64, st->pmtu_black_holes, 1));
    uint32_t mss = mss_of(&s.apps[ci]);
    cr_assert(le(u32, mss, 1252));
    cr_assert(ge(u32, mss, 1252 - RUDP_PMTU_STEP), "found again: %u", mss);
    sim_free(&s);
}

/* Everything lost for a while, then the path is back as it was: the size
 * falls to the base for the outage, and its first probe restores it; no
 * black hole is counted. */
Test(pmtu, an_outage_is_not_a_black_hole)
{
    sim s;
    int a, b;
    int ci = upload(&s, 304, 1472, 20 * MB, &a, &b);
    sim_run_until(&s, s.now + RUDP_SEC(1));
    s.link[a][b].cut_at = s.link[b][a].cut_at = s.now;
    s.link[a][b].cut_until = s.link[b][a].cut_until = s.now + RUDP_SEC(2);
    sim_run_until(&s, s.now + RUDP_SEC(30));
    expect_intact(&s, b, 20 * MB);
    const rudp_stats *st = rudp_ctx_stats(s.ep[a].ctx);
    cr_assert(ge(u64, st->pmtu_fallbacks, 1), "the outage looked like one at first");
    cr_assert(eq(u64, st->pmtu_black_holes, 0));
    cr_assert(eq(u32, mss_of(&s.apps[ci]), 1472));
    sim_free(&s);
}

/* The last full-size DATA packet the client sent, as a router would quote
 * it (its first 64 bytes). */
static size_t last_big_packet(sim *s, int ci, uint8_t *quote)
{
    rudp_conn *c = s->apps[ci].conn;
    uint64_t next = rudp__recovery_next_pn(&c->rec);
    for (uint64_t pn = next; pn-- > 0;) {
        const rudp_sent *p = rudp__recovery_sent(&c->rec, pn);
        if (!p)
            break;
        if (p->size == c->mss && !(p->flags & RUDP_SENT_PMTU_PROBE)) {
            uint8_t hdr[64];
            rudp_hdr h;
            memset(&h, 0, sizeof h);
            h.type = RUDP_PKT_DATA;
            h.dcid = c->pkey.cid;
            h.pn = rudp__pn_truncate(pn);
            int n = rudp__wire_hdr_encode(hdr, sizeof hdr, &h);
            cr_assert(gt(int, n, 0));
            memset(hdr + n, 0, sizeof hdr - (size_t)n);
            memcpy(quote, hdr, sizeof hdr);
            return sizeof hdr;
        }
    }
    cr_assert(0, "no full-size packet on record");
    return 0;
}

/* An ICMP "too big" (IPv4 MTU 1300: 1272 bytes of payload) quoting a
 * packet the connection sent is taken at once; one quoting a packet
 * number never sent only makes it probe its size, which passes, so the
 * size stays. */
Test(pmtu, a_too_big_is_taken_only_when_it_quotes_our_packet)
{
    sim s;
    int a, b;
    int ci = upload(&s, 305, 1472, 20 * MB, &a, &b);
    sim_run_until(&s, s.now + RUDP_SEC(1));
    rudp_conn *c = s.apps[ci].conn;
    cr_assert(eq(u32, c->mss, 1472));
    const rudp_stats *st = rudp_ctx_stats(s.ep[a].ctx);

    uint8_t q[64];
    size_t n = last_big_packet(&s, ci, q);
    uint8_t forged[64];
    memcpy(forged, q, n);
    uint32_t far = rudp__pn_truncate(rudp__recovery_next_pn(&c->rec) + 1000);
    forged[12] = (uint8_t)(far >> 24), forged[13] = (uint8_t)(far >> 16);
    forged[14] = (uint8_t)(far >> 8), forged[15] = (uint8_t)far;
    rudp_ctx_too_big(s.ep[a].ctx, s.now, c->sock, &s.ep[b].addr, forged, n, 1300);
    cr_assert(eq(u64, st->ptb_hints, 1));
    cr_assert(eq(u32, c->mss, 1472), "nothing taken from it");
    sim_run_until(&s, s.now + RUDP_MS(500));
    cr_assert(eq(u32, c->mss, 1472), "its probe passed");

    /* another ID: nobody's */
    memcpy(forged, q, n);
    forged[4] ^= 0x5a;
    rudp_ctx_too_big(s.ep[a].ctx, s.now, c->sock, &s.ep[b].addr, forged, n, 1300);
    cr_assert(eq(u64, st->ptb_hints, 1));
    cr_assert(eq(u32, c->mss, 1472));

    /* an MTU under the 1200 bytes the handshake carried: contradicts it */
    n = last_big_packet(&s, ci, q);
    rudp_ctx_too_big(s.ep[a].ctx, s.now, c->sock, &s.ep[b].addr, q, n, 576);
    cr_assert(eq(u64, st->ptb_hints, 2));
    cr_assert(eq(u64, st->ptb_taken, 0));
    sim_run_until(&s, s.now + RUDP_MS(500));
    cr_assert(eq(u32, c->mss, 1472), "its probe passed");

    n = last_big_packet(&s, ci, q);
    rudp_ctx_too_big(s.ep[a].ctx, s.now, c->sock, &s.ep[b].addr, q, n, 1300);
    cr_assert(eq(u64, st->ptb_taken, 1));
    cr_assert(eq(u32, c->mss, 1272), "the size it names");
    s.link[a][b].mtu = 1272;
    sim_run_until(&s, s.now + RUDP_SEC(30));
    expect_intact(&s, b, 20 * MB);
    cr_assert(eq(u32, c->mss, 1272));
    sim_free(&s);
}

/* A router on the way whose next link carries 1252 bytes of payload (MTU
 * 1280, IPv4) and says so: each datagram it cannot forward comes back to
 * the sender as a "too big" quoting its first 64 bytes, after the
 * simulation step (an ICMP arrives on its own, never inside a send). */
static struct {
    int from;
    size_t len;
    uint8_t quote[64];
} router;

static int router_refuses(sim *s, int from, int to, const uint8_t *buf, size_t len)
{
    (void)to;
    if (len > s->link[from][to].mtu && !router.len) {
        router.from = from;
        router.len = len < sizeof router.quote ? len : sizeof router.quote;
        memcpy(router.quote, buf, router.len);
    }
    return 0; /* the link's mtu drops it */
}

/* The search's first probe (the ceiling, 1472) draws the router's report;
 * validated (it quotes that probe), it is taken as the upper bound and the
 * size it names is probed next: the connection ends at exactly what the
 * router said, after two probes, not within RUDP_PMTU_STEP of it after a
 * halving search. */
Test(pmtu, a_too_big_about_a_probe_makes_the_size_it_names_the_next_probe)
{
    sim s;
    int a, b;
    int ci = upload(&s, 308, 1472, 10 * MB, &a, &b);
    s.link[a][b].mtu = 1252;
    s.drop = router_refuses;
    router.len = 0;
    rudp_time end = s.now + RUDP_SEC(20);
    while (s.now < end) {
        sim_run_until(&s, s.now + RUDP_MS(1));
        if (router.len && s.apps[ci].conn) {
            rudp_conn *c = s.apps[ci].conn;
            rudp_ctx_too_big(s.ep[router.from].ctx, s.now, c->sock, &s.ep[b].addr,
                             router.quote, router.len, 1280);
            router.len = 0;
        }
    }
    expect_intact(&s, b, 10 * MB);
    const rudp_stats *st = rudp_ctx_stats(s.ep[a].ctx);
    cr_assert(eq(u64, st->ptb_taken, 1));
    cr_assert(eq(u64, st->ptb_hints, 0));
    cr_assert(eq(u32, mss_of(&s.apps[ci]), 1252), "the size the router named");
    cr_assert(eq(u64, st->pmtu_probes, 2), "the ceiling, then 1252");
    cr_assert(eq(u64, st->pmtu_probes_lost, 1));
    sim_free(&s);
}

/* Our own kernel refusing datagrams as larger than the device
 * (rudp_ctx_device_mtu, from the error queue's local entries): the size
 * comes down to what fits at once, and a SYN that cannot fit fails the
 * connect with EMSGSIZE and says why; a device below even the base leaves
 * an established connection alone (its user timeout decides). Another
 * peer's connections are not touched. */
Test(pmtu, the_device_mtu_lowers_the_size_and_fails_a_syn)
{
    sim s;
    int a, b;
    int ci = upload(&s, 306, 1472, 20 * MB, &a, &b);
    sim_run_until(&s, s.now + RUDP_SEC(1));
    rudp_conn *c = s.apps[ci].conn;
    cr_assert(eq(u32, c->mss, 1472));
    rudp_addr other = s.ep[b].addr;
    other.ip[3] ^= 1;
    rudp_ctx_device_mtu(s.ep[a].ctx, s.now, c->sock, &other, 1300);
    cr_assert(eq(u32, c->mss, 1472), "another address's device");
    rudp_ctx_device_mtu(s.ep[a].ctx, s.now, c->sock, &s.ep[b].addr, 1300);
    cr_assert(eq(u32, c->mss, 1272));
    rudp_ctx_device_mtu(s.ep[a].ctx, s.now, c->sock, &s.ep[b].addr, 1000);
    cr_assert(eq(u32, c->mss, 1272));
    cr_assert(eq(int, rudp_conn_error(c), 0));
    cr_assert(not(eq(int, rudp_conn_state(c), RUDP_CLOSED)));
    s.link[a][b].mtu = 1272;
    sim_run_until(&s, s.now + RUDP_SEC(30));
    expect_intact(&s, b, 20 * MB);
    sim_free(&s);

    sim_init(&s, 307);
    a = sim_add_ep(&s, NULL);
    b = sim_add_ep(&s, NULL);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(10);
    sim_listen(&s, b, &(sim_app){.expect = UINT64_MAX}, 16);
    ci = sim_connect(&s, a, b, &(sim_app){.expect = UINT64_MAX, .no_release = 1}, NULL);
    c = s.apps[ci].conn;
    rudp_ctx_device_mtu(s.ep[a].ctx, s.now, c->sock, &s.ep[b].addr, 1000);
    cr_assert(eq(int, rudp_conn_error(c), -EMSGSIZE));
    cr_assert(eq(int, rudp_conn_cause(c), RUDP_CAUSE_PATH_MTU));
    sim_free(&s);
}

/* ---- the SYN's offer and servers from before path MTU discovery ----
 * A client that searches the path MTU offers at most 1400 bytes in its SYN
 * with RUDP_PKTF_PMTUD (wire.h): a server from before sends at once at
 * the size a SYN offers, unprobed. A server that knows the flag probes up
 * to its own ceiling; a SYN without it (an older client) bounds it. */

static struct {
    int syns;
    uint64_t offer;
    uint8_t flags;
} syn_seen;

static void syn_tap(sim *s, int from, int to, const uint8_t *buf, size_t len)
{
    (void)s, (void)from, (void)to;
    rudp_hdr h;
    if (rudp__wire_hdr_decode(buf, len, &h) > 0 && h.type == RUDP_PKT_SYN) {
        syn_seen.syns++;
        syn_seen.offer = h.max_datagram;
        syn_seen.flags = h.flags;
    }
}

/* A download over a jumbo path: client and server both at 8972. */
static void download_jumbo(sim *s, uint64_t seed, const rudp_config *client, int *a, int *b,
                           int *ci)
{
    rudp_config srv = pmtud_cfg(8972);
    sim_init(s, seed);
    *a = sim_add_ep(s, client);
    *b = sim_add_ep(s, &srv);
    for (int d = 0; d < 2; d++) {
        sim_link *l = d ? &s->link[*b][*a] : &s->link[*a][*b];
        l->delay = RUDP_MS(10);
        l->rate_bps = 20000000;
        l->queue_bytes = 200000;
    }
    memset(&syn_seen, 0, sizeof syn_seen);
    s->tap = syn_tap;
    sim_listen(s, *b, &(sim_app){.to_send = 6 * MB, .send_seed = 5, .no_release = 1}, 16);
    *ci = sim_connect(s, *a, *b, &(sim_app){.expect = 6 * MB, .recv_seed = 5, .no_release = 1},
                      client);
    cr_assert(ge(int, *ci, 0));
    sim_run_until(s, s->now + RUDP_SEC(20));
    cr_assert(eq(u64, s->apps[*ci].received, 6 * MB), "every byte arrived");
    cr_assert(not(s->apps[*ci].corrupt));
}

Test(pmtu, a_searching_client_offers_1400_and_its_server_still_climbs)
{
    sim s;
    int a, b, ci;
    rudp_config cli = pmtud_cfg(8972);
    download_jumbo(&s, 311, &cli, &a, &b, &ci);
    cr_assert(gt(int, syn_seen.syns, 0));
    cr_assert(eq(u64, syn_seen.offer, RUDP_LEGACY_DATAGRAM), "offered %llu",
              (unsigned long long)syn_seen.offer);
    cr_assert(ne(int, syn_seen.flags & RUDP_PKTF_PMTUD, 0), "flags %#x", syn_seen.flags);
    uint32_t srv_mss = mss_of(sim_app_on(&s, b));
    cr_assert(gt(u32, srv_mss, 8000), "the server stopped at %u", srv_mss);
    sim_free(&s);
}

Test(pmtu, a_client_without_the_flag_bounds_the_server_by_its_offer)
{
    sim s;
    int a, b, ci;
    rudp_config cli;
    rudp_config_default(&cli); /* 1400, no search: as clients before path MTU discovery */
    download_jumbo(&s, 312, &cli, &a, &b, &ci);
    cr_assert(eq(u64, syn_seen.offer, 1400));
    cr_assert(eq(int, syn_seen.flags & RUDP_PKTF_PMTUD, 0));
    cr_assert(le(u32, mss_of(sim_app_on(&s, b)), 1400));
    sim_free(&s);
}
