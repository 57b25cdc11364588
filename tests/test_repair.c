/*
 * test_repair.c: the copy of a write's last packet (core/conn_output.c,
 * "repair"): a lost tail reaches the peer without a probe timeout, the
 * loss still reaches the controller and nothing goes a third time; copies
 * only where they pay (AUTO: a long path with loss seen; never on a
 * loopback-like path; OFF); bulk transfers carry at most 5% of them.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "lib_sim.h"
#include "wire.h"

/* newreno whose on_loss calls are counted: what the controller was told */
static rudp_cc_ops counting;
static int cc_losses;
static void counting_loss(rudp_cc *cc, rudp_time now, rudp_time sent, uint64_t bytes,
                          uint64_t in_flight)
{
    cc_losses++;
    rudp_cc_find("newreno")->on_loss(cc, now, sent, bytes, in_flight);
}

/* Drops the next `drop_n` DATA packets from endpoint 0 carrying stream
 * data, after letting `drop_skip` of them through. */
static int drop_n, drop_skip, dropped;
static int drop_sealed; /* keyed: frames are sealed; a stream packet is one of 120 bytes or more */
static int has_stream(const uint8_t *buf, size_t len)
{
    rudp_hdr h;
    int hl = rudp__wire_hdr_decode(buf, len, &h);
    if (hl <= 0 || h.type != RUDP_PKT_DATA)
        return 0;
    if (drop_sealed)
        return len >= 120;
    rudp_frame f;
    for (size_t off = (size_t)hl; off < len;) {
        int n = rudp__wire_frame_decode(buf + off, len - off, &f);
        if (n <= 0)
            return 0;
        if (f.type == RUDP_FRAME_STREAM)
            return 1;
        off += (size_t)n;
    }
    return 0;
}
static int drop_stream(sim *s, int from, int to, const uint8_t *buf, size_t len)
{
    (void)s;
    (void)to;
    if (from != 0 || drop_n == 0 || !has_stream(buf, len))
        return 0;
    if (drop_skip > 0) {
        drop_skip--;
        return 0;
    }
    drop_n--;
    dropped++;
    return 1;
}

typedef struct rpair {
    sim s;
    int a, b;
    sim_app *c, *sv;
} rpair;

static int rpair_keyed; /* the next rpair_up's contexts are keyed */

/* An established connection from endpoint 0 to 1 over `owd` each way,
 * both ends with `repair` and controller cc (NULL: the default); the
 * server reads nothing by itself. */
static void rpair_up(rpair *p, uint64_t seed, rudp_time owd, uint8_t repair,
                     const rudp_cc_ops *cc)
{
    counting = *rudp_cc_find("newreno");
    counting.on_loss = counting_loss;
    rudp_config cfg;
    rudp_config_default(&cfg);
    cfg.repair = repair;
    cfg.cc = cc;
    sim_init(&p->s, seed);
    p->a = sim_add_ep(&p->s, &cfg);
    p->b = sim_add_ep(&p->s, &cfg);
    if (rpair_keyed) {
        uint8_t k[RUDP_KEY_LEN];
        memset(k, 0x3c, sizeof k);
        sim_set_key(&p->s, p->a, k);
        sim_set_key(&p->s, p->b, k);
    }
    p->s.link[p->a][p->b].delay = p->s.link[p->b][p->a].delay = owd;
    p->s.drop = drop_stream;
    drop_n = drop_skip = dropped = 0;
    sim_app srv = {.expect = UINT64_MAX, .no_shutdown = 1, .no_release = 1, .paused = 1},
            cli = {.expect = UINT64_MAX, .no_shutdown = 1, .no_release = 1};
    sim_listen(&p->s, p->b, &srv, 16);
    int ci = sim_connect(&p->s, p->a, p->b, &cli, &cfg);
    sim_run_until(&p->s, p->s.now + RUDP_MS(500));
    p->c = &p->s.apps[ci];
    p->sv = sim_app_on(&p->s, p->b);
    cr_assert_not_null(p->sv);
    cr_assert(eq(int, rudp_conn_state(p->c->conn), RUDP_ESTABLISHED));
    cc_losses = 0;
}

static const rudp_stats *cstats(rpair *p) { return rudp_ctx_stats(p->s.ep[p->a].ctx); }

/* The client writes n bytes (a request), at once if there is room. */
static void put(rpair *p, size_t n)
{
    static uint8_t buf[65536];
    cr_assert(le(sz, n, sizeof buf));
    for (size_t done = 0; done < n;) {
        ssize_t w = rudp_conn_write(p->c->conn, p->s.now, buf, n - done);
        if (w > 0)
            done += (size_t)w;
        else
            sim_run_until(&p->s, p->s.now + RUDP_MS(1));
    }
}

/* n requests of 100 bytes, `gap` apart. */
static void requests(rpair *p, int n, rudp_time gap)
{
    for (int i = 0; i < n; i++) {
        put(p, 100);
        sim_run_until(&p->s, p->s.now + gap);
    }
}

/* What the server has taken in so far, read out (so the window stays). */
static size_t take(rpair *p)
{
    uint8_t buf[65536];
    size_t got = 0;
    ssize_t r;
    while ((r = rudp_conn_read(p->sv->conn, p->s.now, buf, sizeof buf)) > 0)
        got += (size_t)r;
    return got;
}

Test(repair, a_lost_last_packet_arrives_by_its_copy_before_any_probe_timeout, .timeout = 10)
{
    rpair p;
    rpair_up(&p, 1, RUDP_MS(20), RUDP_REPAIR_ALWAYS, &counting);
    uint64_t pto0 = cstats(&p)->pto_count, retx0 = cstats(&p)->bytes_retransmitted;
    drop_n = 1;
    rudp_time t0 = p.s.now;
    put(&p, 100);
    /* one way is 20 ms; a probe timeout could not fire before ~41 ms */
    sim_run_until(&p.s, t0 + RUDP_MS(25));
    cr_assert(eq(int, dropped, 1), "the original was lost");
    cr_assert(eq(sz, take(&p), 100), "its copy delivered the bytes");
    cr_assert(eq(u64, cstats(&p)->pto_count, pto0), "no probe timeout fired");
    cr_assert(eq(u64, cstats(&p)->repair_pkts, 1));
    cr_assert(eq(u64, cstats(&p)->repair_bytes, 100));
    sim_run_until(&p.s, t0 + RUDP_MS(300));
    cr_assert(eq(u64, cstats(&p)->pto_count, pto0), "nor later");
    cr_assert(ge(int, cc_losses, 1), "the controller was told of the loss (RFC 9265)");
    cr_assert(eq(u64, p.c->conn->rec.lost_packets, 1));
    cr_assert(eq(u64, cstats(&p)->losses_repaired, 1));
    cr_assert(eq(u64, cstats(&p)->bytes_retransmitted, retx0), "nothing went a third time");
    cr_assert(eq(u64, p.c->conn->rec.bytes_in_flight, 0));
    cr_assert(eq(sz, take(&p), 0), "no byte twice");
    sim_free(&p.s);
}

Test(repair, keyed_a_lost_last_packet_arrives_by_its_sealed_copy, .timeout = 10)
{
    rpair p;
    rpair_keyed = 1;
    rpair_up(&p, 11, RUDP_MS(20), RUDP_REPAIR_ALWAYS, &counting);
    rpair_keyed = 0;
    uint64_t pto0 = cstats(&p)->pto_count;
    drop_sealed = 1;
    drop_n = 1;
    rudp_time t0 = p.s.now;
    put(&p, 100);
    sim_run_until(&p.s, t0 + RUDP_MS(25));
    cr_assert(eq(int, dropped, 1));
    cr_assert(eq(sz, take(&p), 100));
    cr_assert(eq(u64, rudp_ctx_stats(p.s.ep[p.b].ctx)->auth_failed, 0));
    sim_run_until(&p.s, t0 + RUDP_MS(300));
    cr_assert(eq(u64, cstats(&p)->pto_count, pto0));
    cr_assert(eq(u64, cstats(&p)->losses_repaired, 1));
    drop_sealed = 0;
    sim_free(&p.s);
}

Test(repair, without_it_the_same_loss_waits_for_a_probe_timeout, .timeout = 10)
{
    rpair p;
    rpair_up(&p, 1, RUDP_MS(20), RUDP_REPAIR_OFF, &counting);
    uint64_t pto0 = cstats(&p)->pto_count;
    drop_n = 1;
    rudp_time t0 = p.s.now;
    put(&p, 100);
    sim_run_until(&p.s, t0 + RUDP_MS(25));
    cr_assert(eq(sz, take(&p), 0));
    sim_run_until(&p.s, t0 + RUDP_MS(300));
    cr_assert(eq(sz, take(&p), 100));
    cr_assert(gt(u64, cstats(&p)->pto_count, pto0));
    cr_assert(eq(u64, cstats(&p)->repair_pkts, 0));
    sim_free(&p.s);
}

Test(repair, a_lost_fin_arrives_by_its_copy, .timeout = 10)
{
    rpair p;
    rpair_up(&p, 2, RUDP_MS(20), RUDP_REPAIR_ALWAYS, &counting);
    drop_n = 1;
    rudp_time t0 = p.s.now;
    put(&p, 300);
    cr_assert(eq(int, rudp_conn_shutdown(p.c->conn, p.s.now), 0));
    sim_run_until(&p.s, t0 + RUDP_MS(25));
    cr_assert(eq(sz, take(&p), 300));
    uint8_t b;
    cr_assert(eq(sz, (size_t)rudp_conn_read(p.sv->conn, p.s.now, &b, 1), 0), "EOF");
    sim_free(&p.s);
}

Test(repair, the_copy_lost_instead_costs_nothing_and_is_not_resent, .timeout = 10)
{
    rpair p;
    rpair_up(&p, 3, RUDP_MS(20), RUDP_REPAIR_ALWAYS, &counting);
    uint64_t retx0 = cstats(&p)->bytes_retransmitted;
    /* let the original through, drop the copy */
    drop_skip = 1;
    drop_n = 1;
    rudp_time t0 = p.s.now;
    put(&p, 100);
    sim_run_until(&p.s, t0 + RUDP_MS(300));
    cr_assert(eq(int, dropped, 1));
    cr_assert(eq(sz, take(&p), 100));
    cr_assert(eq(u64, cstats(&p)->repair_pkts, 1));
    cr_assert(eq(u64, cstats(&p)->bytes_retransmitted, retx0));
    cr_assert(eq(u64, cstats(&p)->losses_repaired, 0));
    sim_free(&p.s);
}

Test(repair, auto_copies_on_a_long_path_only_once_a_loss_was_seen, .timeout = 10)
{
    rpair p;
    rpair_up(&p, 4, RUDP_MS(20), RUDP_REPAIR_AUTO, &counting);
    requests(&p, 3, RUDP_MS(100));
    cr_assert(eq(u64, cstats(&p)->repair_pkts, 0), "no loss seen: no copy");
    drop_n = 1;
    requests(&p, 1, RUDP_MS(300));
    cr_assert(eq(u64, p.c->conn->rec.lost_packets, 1));
    cr_assert(eq(u64, cstats(&p)->repair_pkts, 0));
    requests(&p, 1, RUDP_MS(100));
    cr_assert(eq(u64, cstats(&p)->repair_pkts, 1), "a loss seen: the next write is copied");
    /* writes of more than RUDP_REPAIR_FLIGHT packets at once: none */
    put(&p, 20000);
    sim_run_until(&p.s, p.s.now + RUDP_MS(300));
    cr_assert(eq(u64, cstats(&p)->repair_pkts, 1), "a long write's tail is not copied");
    cr_assert(eq(sz, take(&p), 20500));
    sim_free(&p.s);
}

Test(repair, auto_never_copies_on_a_loopback_like_path, .timeout = 10)
{
    rpair p;
    rpair_up(&p, 5, RUDP_US(30), RUDP_REPAIR_AUTO, &counting);
    drop_n = 1;
    requests(&p, 1, RUDP_MS(100));
    cr_assert(eq(u64, p.c->conn->rec.lost_packets, 1));
    requests(&p, 20, RUDP_MS(5));
    cr_assert(eq(sz, take(&p), 2100));
    cr_assert(eq(u64, cstats(&p)->repair_pkts, 0));
    sim_free(&p.s);
}

Test(repair, off_never_copies, .timeout = 10)
{
    rpair p;
    rpair_up(&p, 6, RUDP_MS(20), RUDP_REPAIR_OFF, &counting);
    drop_n = 1;
    requests(&p, 10, RUDP_MS(300));
    cr_assert(eq(sz, take(&p), 1000));
    cr_assert(eq(u64, cstats(&p)->repair_pkts, 0));
    sim_free(&p.s);
}

/* B2's link: 100 Mbit/s, 40 ms RTT, 1% loss both ways, 500 kB queue. */
Test(repair, a_bulk_transfer_carries_at_most_5_percent_of_copies, .timeout = 60)
{
    for (uint64_t seed = 1; seed <= 3; seed++) {
        sim_bulk_result r;
        sim_bulk_single(seed, NULL, RUDP_MS(20), 100000000, 500000, 0.01, RUDP_SEC(10), &r);
        cr_assert(eq(int, r.error, 0));
        cr_assert(gt(dbl, r.mbps, 10.0));
        cr_assert(le(dbl, r.repair_pct, 5.0), "seed %llu: %.2f%% copies",
                  (unsigned long long)seed, r.repair_pct);
    }
}

/* A transfer of 64 KB writes every 100 ms over that link (each write's
 * tail ends a flight of dozens of packets): no more than 5% either. */
Test(repair, chunked_writes_carry_at_most_5_percent_of_copies, .timeout = 60)
{
    rpair p;
    rpair_up(&p, 7, RUDP_MS(20), RUDP_REPAIR_AUTO, &counting);
    for (int d = 0; d < 2; d++) {
        sim_link *l = d ? &p.s.link[p.b][p.a] : &p.s.link[p.a][p.b];
        l->rate_bps = 100000000;
        l->queue_bytes = 500000;
        l->loss = 0.01;
    }
    p.sv->paused = 0; /* the server reads as it comes */
    sim_poke_apps(&p.s);
    for (int i = 0; i < 50; i++) {
        put(&p, 65536);
        sim_run_until(&p.s, p.s.now + RUDP_MS(100));
    }
    sim_run_until(&p.s, p.s.now + RUDP_SEC(2));
    cr_assert(eq(u64, p.sv->received, (uint64_t)50 * 65536));
    const rudp_stats *st = cstats(&p);
    double pct = 100.0 * (double)st->repair_bytes /
                 (double)(st->stream_bytes_sent + st->bytes_retransmitted);
    cr_assert(le(dbl, pct, 5.0), "%.2f%% copies", pct);
    sim_free(&p.s);
}

/* Both directions, random loss and reordering, every tail copied: the
 * streams arrive whole and in order (lib_sim checks every byte). */
Test(repair, streams_survive_random_loss_with_every_tail_copied, .timeout = 60)
{
    for (uint64_t seed = 1; seed <= 40; seed++) {
        sim s;
        sim_init(&s, seed);
        rudp_config cfg;
        rudp_config_default(&cfg);
        cfg.repair = RUDP_REPAIR_ALWAYS;
        int a = sim_add_ep(&s, &cfg), b = sim_add_ep(&s, &cfg);
        for (int d = 0; d < 2; d++) {
            sim_link *l = d ? &s.link[b][a] : &s.link[a][b];
            l->delay = RUDP_MS(10);
            l->loss = 0.1;
            l->reorder = 0.05;
            l->reorder_extra = RUDP_MS(5);
            l->dup = 0.02;
        }
        uint64_t n = 1000 + seed * 997 % 9000;
        sim_app srv = {.to_send = n / 2, .expect = n, .send_seed = 2, .recv_seed = 1};
        sim_app cli = {.to_send = n, .expect = n / 2, .send_seed = 1, .recv_seed = 2};
        sim_listen(&s, b, &srv, 4);
        int ci = sim_connect(&s, a, b, &cli, &cfg);
        cr_assert(sim_run(&s, s.now + RUDP_SEC(120)), "seed %llu did not finish",
                  (unsigned long long)seed);
        cr_assert(eq(int, s.apps[ci].corrupt, 0));
        cr_assert(eq(u64, s.apps[ci].received, n / 2));
        sim_free(&s);
    }
}

/* Reads n bytes from c, the network running meanwhile. */
static void await(rpair *p, rudp_conn *c, size_t n)
{
    uint8_t buf[256];
    for (size_t got = 0; got < n;) {
        sim_run_until(&p->s, p->s.now + RUDP_US(100));
        ssize_t r = rudp_conn_read(c, p->s.now, buf, n - got);
        if (r > 0)
            got += (size_t)r;
    }
}

/* B5 in virtual time: 1000 sequential 100-byte echoes over 40 ms RTT at
 * 1% loss both ways, BBR; returns how many took more than 45 ms. */
static int slow_echoes(uint8_t repair, uint64_t *copies)
{
    rpair p;
    rpair_up(&p, 10, RUDP_MS(20), repair, NULL);
    for (int d = 0; d < 2; d++) {
        sim_link *l = d ? &p.s.link[p.b][p.a] : &p.s.link[p.a][p.b];
        l->loss = 0.01;
    }
    p.c->paused = 1; /* both ends read here */
    static const uint8_t req[100];
    int slow = 0;
    for (int i = 0; i < 1000; i++) {
        rudp_time t0 = p.s.now;
        cr_assert(eq(sz, (size_t)rudp_conn_write(p.c->conn, p.s.now, req, 100), 100));
        await(&p, p.sv->conn, 100);
        cr_assert(eq(sz, (size_t)rudp_conn_write(p.sv->conn, p.s.now, req, 100), 100));
        await(&p, p.c->conn, 100);
        slow += p.s.now - t0 > RUDP_MS(45);
    }
    *copies = cstats(&p)->repair_pkts;
    sim_free(&p.s);
    return slow;
}

Test(repair, lossy_echoes_wait_for_no_timeout, .timeout = 120)
{
    uint64_t copies;
    int off = slow_echoes(RUDP_REPAIR_OFF, &copies);
    cr_assert(gt(int, off, 10), "without copies, p99 is more than 45 ms (%d slow)", off);
    int dflt = slow_echoes(RUDP_REPAIR_AUTO, &copies);
    cr_assert(le(int, dflt, 10), "by default, p99 is 45 ms or less (%d slow)", dflt);
    cr_assert(gt(u64, copies, 500));
    int always = slow_echoes(RUDP_REPAIR_ALWAYS, &copies);
    cr_assert(eq(int, always, 0));
}
