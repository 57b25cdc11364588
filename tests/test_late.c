/* late.c: what a peer address's connections learn of how late it answers,
 * and the probe timeout's floor they give one another (issue 46: 3,500
 * connections opened at once in one process drew 120-1,500 probe timeouts
 * in vain, one RTT sample each from a moment before the engine got busy). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <string.h>

#include "conn.h"
#include "lib_sim.h"

#define T0 RUDP_SEC(1000)

static rudp_ctx ctx; /* late.c reads and writes ctx.late and ctx.stats alone */

static rudp_addr v4(uint8_t last, uint16_t port)
{
    rudp_addr a;
    memset(&a, 0, sizeof a);
    a.family = 2; /* AF_INET */
    a.port = port;
    a.ip[0] = 10, a.ip[3] = last;
    return a;
}

static void fresh(void)
{
    memset(&ctx, 0, sizeof ctx);
}

Test(late, a_young_connection_waits_a_quarter_more_than_its_hosts_longest_answer,
     .init = fresh)
{
    rudp_addr host = v4(1, 4000), other_port = v4(1, 4001), other_host = v4(2, 4000);
    cr_assert(eq(u64, rudp__late_floor(&ctx, &host, T0, 0), 0), "nothing learned: no floor");
    rudp__late_note(&ctx, &host, RUDP_MS(8), 0, T0);
    rudp__late_note(&ctx, &host, RUDP_MS(20), 0, T0 + RUDP_MS(1));
    rudp__late_note(&ctx, &host, RUDP_MS(4), 0, T0 + RUDP_MS(2));
    cr_assert(eq(u64, rudp__late_floor(&ctx, &host, T0 + RUDP_MS(3), 1), RUDP_MS(25)));
    cr_assert(eq(u64, rudp__late_floor(&ctx, &other_port, T0 + RUDP_MS(3), 0), RUDP_MS(25)),
              "one host, one engine: its ports share what was learned");
    cr_assert(eq(u64, rudp__late_floor(&ctx, &other_host, T0 + RUDP_MS(3), 0), 0));
    cr_assert(eq(u64, rudp__late_floor(&ctx, &host, T0 + RUDP_MS(3), RUDP_LATE_YOUNG), 0),
              "a connection with samples of its own keeps its own timeout");
    cr_assert(eq(u64, ctx.stats.pto_late, 0), "no timeout was in vain");
}

Test(late, an_answer_after_a_timeout_in_vain_raises_every_connections_floor, .init = fresh)
{
    rudp_addr host = v4(1, 4000);
    rudp__late_note(&ctx, &host, 0, RUDP_MS(40), T0);
    cr_assert(eq(u64, rudp__late_floor(&ctx, &host, T0, 1000), RUDP_MS(50)));
    cr_assert(eq(u64, rudp__late_floor(&ctx, &host, T0, 0), RUDP_MS(50)));
    cr_assert(eq(u64, ctx.stats.pto_late, 1));
}

Test(late, what_was_learned_lasts_one_to_two_seconds, .init = fresh)
{
    rudp_addr host = v4(1, 4000);
    rudp__late_note(&ctx, &host, 0, RUDP_MS(40), T0);
    cr_assert(eq(u64, rudp__late_floor(&ctx, &host, T0 + RUDP_MS(999), 9), RUDP_MS(50)));
    cr_assert(eq(u64, rudp__late_floor(&ctx, &host, T0 + RUDP_MS(1999), 9), RUDP_MS(50)),
              "the window before the current one still counts");
    cr_assert(eq(u64, rudp__late_floor(&ctx, &host, T0 + RUDP_SEC(2), 9), 0));
    /* a note in the second window carries into the third */
    rudp__late_note(&ctx, &host, 0, RUDP_MS(16), T0 + RUDP_MS(1500));
    cr_assert(eq(u64, rudp__late_floor(&ctx, &host, T0 + RUDP_MS(1600), 9), RUDP_MS(50)));
    cr_assert(eq(u64, rudp__late_floor(&ctx, &host, T0 + RUDP_MS(2600), 9), RUDP_MS(20)));
    cr_assert(eq(u64, rudp__late_floor(&ctx, &host, T0 + RUDP_MS(3600), 9), 0));
}

Test(late, no_floor_is_above_kernel_tcps_least_retransmission_timeout, .init = fresh)
{
    rudp_addr host = v4(1, 4000);
    rudp__late_note(&ctx, &host, RUDP_SEC(3), RUDP_SEC(3), T0);
    cr_assert(eq(u64, rudp__late_floor(&ctx, &host, T0, 0), RUDP_LATE_FLOOR_MAX));
    cr_assert(eq(u64, RUDP_LATE_FLOOR_MAX, RUDP_MS(200)));
}

/* IPv4 10.0.0.1 and an IPv6 address with the same bytes are two hosts;
 * each of 64 x 8 addresses (172.0.x.y), noted in turn, reads its own note
 * then, and later its own or none (two in one slot take it from each
 * other). */
Test(late, an_address_never_reads_another_addresss_note, .init = fresh)
{
    rudp_addr a4 = v4(1, 4000), a6 = a4;
    a6.family = 10; /* AF_INET6 */
    rudp__late_note(&ctx, &a4, 0, RUDP_MS(80), T0);
    cr_assert(eq(u64, rudp__late_floor(&ctx, &a6, T0, 0), 0));
    for (unsigned i = 0; i < RUDP_LATE_SLOTS * 8; i++) {
        rudp_addr a = v4(0, 1);
        a.ip[0] = 172, a.ip[2] = (uint8_t)(i >> 8), a.ip[3] = (uint8_t)i;
        rudp__late_note(&ctx, &a, 0, RUDP_MS(1) * (i % 100 + 1), T0);
        rudp_time f = rudp__late_floor(&ctx, &a, T0, 9);
        rudp_time want = RUDP_MS(1) * (i % 100 + 1);
        cr_assert(eq(u64, f, want + want / 4), "address %u read %llu", i, (unsigned long long)f);
    }
    unsigned own = 0;
    for (unsigned i = 0; i < RUDP_LATE_SLOTS * 8; i++) {
        rudp_addr a = v4(0, 1);
        a.ip[0] = 172, a.ip[2] = (uint8_t)(i >> 8), a.ip[3] = (uint8_t)i;
        rudp_time f = rudp__late_floor(&ctx, &a, T0, 9), want = RUDP_MS(1) * (i % 100 + 1);
        cr_assert(f == 0 || f == want + want / 4, "address %u read another's note", i);
        own += f != 0;
    }
    cr_assert(le(uint, own, RUDP_LATE_SLOTS));
}

/* ---- through the connections: a simulated client whose ACKs come late ---- */

/* Two connections from a to b, 0.5 ms each way, idle; then everything the
 * client sends takes 30 ms (an engine busy with thousands of connections
 * answers that late). The server writes on its first connection: its
 * probe timeout (the 10 ms floor: one RTT sample of ~1 ms) fires in vain.
 * Then it writes on the second, as young: that one waits for the answer
 * its host's first connection took, and no timeout fires. */
Test(late, a_connection_waits_as_long_as_its_hosts_other_connection_was_answered,
     .timeout = 30)
{
    sim s;
    sim_init(&s, 46);
    rudp_config cfg;
    rudp_config_default(&cfg);
    int a = sim_add_ep(&s, &cfg), b = sim_add_ep(&s, &cfg);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_US(500);
    sim_app srv = {.expect = UINT64_MAX, .no_shutdown = 1, .send_seed = 2, .recv_seed = 1};
    sim_app cli = {.expect = UINT64_MAX, .no_shutdown = 1, .send_seed = 1, .recv_seed = 2};
    sim_listen(&s, b, &srv, 16);
    int c1 = sim_connect(&s, a, b, &cli, NULL), c2 = sim_connect(&s, a, b, &cli, NULL);
    sim_run_until(&s, s.now + RUDP_SEC(1));
    cr_assert(s.apps[c1].established && s.apps[c2].established);
    int sv[2], n = 0;
    for (int i = 0; i < SIM_MAX_APPS && n < 2; i++)
        if (s.apps[i].used && s.apps[i].ep == b)
            sv[n++] = i;
    cr_assert(eq(int, n, 2));
    rudp_stats *st = &s.ep[b].ctx->stats;
    uint64_t pto0 = st->pto_count;

    s.link[a][b].delay = RUDP_MS(30);
    s.apps[sv[0]].to_send = 100;
    sim_poke_apps(&s);
    sim_run_until(&s, s.now + RUDP_MS(500));
    cr_assert(gt(u64, st->pto_count, pto0), "the first answer's timeout must fire, or this "
                                            "proves nothing");
    cr_assert(ge(u64, st->pto_late, 1), "and be found in vain");
    uint64_t pto1 = st->pto_count;

    s.apps[sv[1]].to_send = 100;
    sim_poke_apps(&s);
    sim_run_until(&s, s.now + RUDP_MS(500));
    cr_assert(eq(u64, st->pto_count, pto1),
              "the second connection's timeout fired: it did not learn from the first");
    cr_assert(eq(u64, s.apps[c1].received + s.apps[c2].received, 200));
    sim_free(&s);
}
