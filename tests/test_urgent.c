/*
 * test_urgent.c: TCP's urgent mark over rudp (core/urgent.c): the URGENT
 * frame's codec, the mark reaching the peer at the urgent byte's offset,
 * and its loss and retransmission.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <string.h>

#include "conn.h"
#include "lib_sim.h"
#include "wire.h"

typedef struct upair {
    sim s;
    int a, b;
    sim_app *c, *sv;
} upair;

static sim_app *app_on(sim *s, int ep)
{
    for (int i = 0; i < SIM_MAX_APPS; i++)
        if (s->apps[i].used && s->apps[i].ep == ep)
            return &s->apps[i];
    return NULL;
}

/* An established connection whose server side reads nothing by itself. */
static void upair_up(upair *p, uint64_t seed, int keyed)
{
    sim_init(&p->s, seed);
    p->a = sim_add_ep(&p->s, NULL);
    p->b = sim_add_ep(&p->s, NULL);
    if (keyed) {
        uint8_t k[RUDP_KEY_LEN];
        memset(k, 0x5a, sizeof k);
        sim_set_key(&p->s, p->a, k);
        sim_set_key(&p->s, p->b, k);
    }
    p->s.link[p->a][p->b].delay = p->s.link[p->b][p->a].delay = RUDP_MS(10);
    sim_app srv = {.expect = UINT64_MAX, .no_shutdown = 1, .no_release = 1, .paused = 1},
            cli = {.expect = UINT64_MAX, .no_shutdown = 1, .no_release = 1};
    sim_listen(&p->s, p->b, &srv, 16);
    int ci = sim_connect(&p->s, p->a, p->b, &cli, NULL);
    sim_run_until(&p->s, p->s.now + RUDP_MS(200));
    p->c = &p->s.apps[ci];
    p->sv = app_on(&p->s, p->b);
    cr_assert_not_null(p->sv);
    cr_assert(eq(int, rudp_conn_state(p->c->conn), RUDP_ESTABLISHED));
}

static void put(upair *p, const void *data, size_t len)
{
    const uint8_t *d = data;
    while (len) {
        uint8_t *w;
        ssize_t room = rudp_conn_reserve(p->c->conn, &w);
        cr_assert(gt(sz, (size_t)room, 0));
        size_t n = len < (size_t)room ? len : (size_t)room;
        memcpy(w, d, n);
        rudp_conn_commit(p->c->conn, p->s.now, n);
        d += n;
        len -= n;
    }
}

/* An urgent send of one byte, as the shim makes it from send(MSG_OOB). */
static void put_urgent(upair *p, uint8_t byte)
{
    rudp_conn_urgent_mark(p->c->conn);
    put(p, &byte, 1);
}

static void take(upair *p, size_t n)
{
    uint8_t buf[4096];
    while (n) {
        ssize_t r = rudp_conn_read(p->sv->conn, p->s.now, buf, n < sizeof buf ? n : sizeof buf);
        cr_assert(gt(sz, (size_t)(r > 0 ? r : 0), 0), "nothing to read");
        n -= (size_t)r;
    }
}

static int urgent_frames;
static void count_urgent(sim *s, int from, int to, const uint8_t *buf, size_t len)
{
    (void)s;
    (void)to;
    rudp_hdr h;
    int hl = rudp__wire_hdr_decode(buf, len, &h);
    if (from != 0 || hl <= 0 || h.type != RUDP_PKT_DATA)
        return;
    rudp_frame f;
    for (size_t off = (size_t)hl; off < len;) {
        int n = rudp__wire_frame_decode(buf + off, len - off, &f);
        if (n <= 0)
            return;
        if (f.type == RUDP_FRAME_URGENT)
            urgent_frames++;
        off += (size_t)n;
    }
}

/* upair_up, with the client's URGENT frames counted from now on. */
static void upair_counted(upair *p, uint64_t seed)
{
    upair_up(p, seed, 0);
    urgent_frames = 0;
    p->s.tap = count_urgent;
}

Test(urgent, frame_round_trips_and_truncation_is_rejected)
{
    uint8_t b[16];
    int n = rudp__wire_urgent_encode(b, sizeof b, 123456789);
    cr_assert(eq(int, n, 5));
    rudp_frame f;
    cr_assert(eq(int, rudp__wire_frame_decode(b, (size_t)n, &f), n));
    cr_assert(eq(int, f.type, RUDP_FRAME_URGENT));
    cr_assert(eq(u64, f.u.urgent, 123456789));
    cr_assert(eq(int, rudp__wire_frame_decode(b, (size_t)n - 1, &f), -EBADMSG));
    cr_assert(eq(int, rudp__wire_urgent_encode(b, 2, 123456789), -ENOBUFS));
    cr_assert(eq(int, rudp__wire_urgent_encode(b, sizeof b, RUDP_VARINT_MAX + 1), -EINVAL));
}

Test(urgent, mark_arrives_at_the_urgent_bytes_offset_and_ends_once_read, .timeout = 10)
{
    upair p;
    upair_up(&p, 1, 0);
    uint64_t before = 99;
    cr_assert(eq(int, rudp_conn_urgent(p.sv->conn, &before), 0));
    put(&p, "hello", 5);
    put_urgent(&p, 'U');
    put(&p, "world", 5);
    sim_run_until(&p.s, p.s.now + RUDP_MS(100));
    cr_assert(eq(sz, rudp_conn_readable(p.sv->conn), 11));
    cr_assert(eq(int, rudp_conn_urgent(p.sv->conn, &before), 1));
    cr_assert(eq(u64, before, 5));
    take(&p, 3);
    cr_assert(eq(int, rudp_conn_urgent(p.sv->conn, &before), 1));
    cr_assert(eq(u64, before, 2));
    take(&p, 2);
    cr_assert(eq(int, rudp_conn_urgent(p.sv->conn, &before), 1));
    cr_assert(eq(u64, before, 0));
    take(&p, 1);
    cr_assert(eq(int, rudp_conn_urgent(p.sv->conn, &before), 0), "the urgent byte was read");
    sim_free(&p.s);
}

Test(urgent, frame_rides_every_packet_until_one_carrying_it_is_acked, .timeout = 10)
{
    upair p;
    upair_counted(&p, 2);
    put_urgent(&p, '!');
    sim_run_until(&p.s, p.s.now + RUDP_MS(100));
    cr_assert(ge(int, urgent_frames, 1));
    cr_assert(p.c->conn->urg_snd_acked);
    int seen = urgent_frames;
    static uint8_t more[20000];
    put(&p, more, sizeof more);
    sim_run_until(&p.s, p.s.now + RUDP_MS(200));
    cr_assert(eq(int, urgent_frames, seen), "no URGENT frame after its acknowledgement");
    cr_assert(eq(int, rudp_conn_urgent(p.sv->conn, NULL), 1));
    sim_free(&p.s);
}

Test(urgent, a_lost_mark_is_resent_with_its_byte, .timeout = 10)
{
    upair p;
    upair_counted(&p, 3);
    p.s.link[p.a][p.b].loss = 1.0; /* every first copy is lost */
    put(&p, "ab", 2);
    put_urgent(&p, 'Z');
    put(&p, "cd", 2);
    sim_run_until(&p.s, p.s.now + RUDP_MS(30));
    cr_assert(eq(int, rudp_conn_urgent(p.sv->conn, NULL), 0));
    cr_assert(ge(int, urgent_frames, 1));
    int first = urgent_frames;
    p.s.link[p.a][p.b].loss = 0;
    sim_run_until(&p.s, p.s.now + RUDP_SEC(3));
    cr_assert(gt(int, urgent_frames, first), "the mark went again with the resent data");
    cr_assert(gt(u64, rudp_ctx_stats(p.s.ep[p.a].ctx)->pkts_retransmitted, 0));
    uint64_t before = 0;
    cr_assert(eq(int, rudp_conn_urgent(p.sv->conn, &before), 1));
    cr_assert(eq(u64, before, 2));
    cr_assert(eq(sz, rudp_conn_readable(p.sv->conn), 5));
    sim_free(&p.s);
}

Test(urgent, mark_survives_random_loss_and_reordering_on_many_seeds, .timeout = 60)
{
    static uint8_t data[60000];
    for (uint64_t seed = 100; seed < 160; seed++) {
        upair p;
        upair_up(&p, seed, 0);
        sim_link *l = &p.s.link[p.a][p.b];
        l->loss = 0.2;
        l->reorder = 0.1;
        l->reorder_extra = RUDP_MS(15);
        l->dup = 0.05;
        p.s.link[p.b][p.a].loss = 0.2;
        size_t at = (size_t)(seed * 397 % sizeof data);
        put(&p, data, at);
        put_urgent(&p, 0xff);
        put(&p, data, sizeof data - at);
        sim_run_until(&p.s, p.s.now + RUDP_SEC(20));
        cr_assert(eq(sz, rudp_conn_readable(p.sv->conn), sizeof data + 1), "seed %llu",
                  (unsigned long long)seed);
        uint64_t before = 0;
        cr_assert(eq(int, rudp_conn_urgent(p.sv->conn, &before), 1), "seed %llu",
                  (unsigned long long)seed);
        cr_assert(eq(u64, before, at), "seed %llu", (unsigned long long)seed);
        sim_free(&p.s);
    }
}

Test(urgent, keyed_mark_arrives, .timeout = 10)
{
    upair p;
    upair_up(&p, 4, 1);
    put(&p, "xy", 2);
    put_urgent(&p, 'K');
    sim_run_until(&p.s, p.s.now + RUDP_MS(100));
    uint64_t before = 0;
    cr_assert(eq(int, rudp_conn_urgent(p.sv->conn, &before), 1));
    cr_assert(eq(u64, before, 2));
    sim_free(&p.s);
}

Test(urgent, a_later_mark_replaces_an_unread_one_and_stale_copies_are_ignored, .timeout = 10)
{
    upair p;
    upair_up(&p, 5, 0);
    put(&p, "0123456789abcdefghij", 20);
    sim_run_until(&p.s, p.s.now + RUDP_MS(100));
    rudp_conn *sc = p.sv->conn;
    uint64_t before = 0;
    rudp__urg_input(sc, 10);
    rudp__urg_input(sc, 5); /* an older mark resent: ignored */
    cr_assert(eq(int, rudp_conn_urgent(sc, &before), 1));
    cr_assert(eq(u64, before, 10));
    rudp__urg_input(sc, 15); /* a new urgent send before the first was read */
    cr_assert(eq(int, rudp_conn_urgent(sc, &before), 1));
    cr_assert(eq(u64, before, 15));
    take(&p, 16);
    cr_assert(eq(int, rudp_conn_urgent(sc, &before), 0));
    rudp__urg_input(sc, 15); /* a copy after its byte was read */
    cr_assert(eq(int, rudp_conn_urgent(sc, &before), 0));
    sim_free(&p.s);
}
