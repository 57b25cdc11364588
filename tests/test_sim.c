/* Whole-protocol properties over the simulated network. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../shim/base/base.h"
#include "aead.h"
#include "conn.h"
#include "crypto.h"
#include "lib_sim.h"

static rudp_config sim_cfg(void)
{
    rudp_config c;
    rudp_config_default(&c);
    return c;
}

Test(sim, clean_link_transfers_both_ways_and_closes, .timeout = 20)
{
    sim s;
    sim_init(&s, 1);
    rudp_config cfg = sim_cfg();
    int a = sim_add_ep(&s, &cfg), b = sim_add_ep(&s, &cfg);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(10);
    sim_app srv = {.to_send = 300000, .expect = 500000, .send_seed = 2, .recv_seed = 1};
    sim_app cli = {.to_send = 500000, .expect = 300000, .send_seed = 1, .recv_seed = 2};
    sim_listen(&s, b, &srv, 16);
    int ci = sim_connect(&s, a, b, &cli, NULL);
    cr_assert(ge(int, ci, 0));
    int done = sim_run(&s, s.now + RUDP_SEC(60));
    sim_app *c = &s.apps[ci], *sv = NULL;
    for (int i = 0; i < SIM_MAX_APPS; i++)
        if (s.apps[i].used && i != ci)
            sv = &s.apps[i];
    cr_assert(done, "run did not finish");
    cr_assert_not_null(sv);
    cr_assert(eq(u64, c->received, 300000));
    cr_assert(eq(u64, sv->received, 500000));
    cr_assert(not(c->corrupt));
    cr_assert(not(sv->corrupt));
    cr_assert(c->eof && sv->eof);
    cr_assert(eq(int, c->error, 0));
    cr_assert(eq(int, sv->error, 0));
    sim_free(&s);
}

/* ---- random scenarios: the core property over thousands of seeds ---- */

typedef struct scenario {
    double loss, reorder, dup;
    rudp_time delay, jitter;
    uint64_t rate;
    size_t queue;
    int burst;
    uint64_t up, down;
    int roam;              /* 0 none, SIM_MOVE_NAT or SIM_MOVE_REBIND (the client), 3 blackout */
    int moves;             /* address changes */
    rudp_time blackout;    /* how long the path goes silent */
} scenario;

static void describe(const scenario *sc, char *buf, size_t n)
{
    snprintf(buf, n,
             "loss=%.2f reorder=%.2f dup=%.2f delay=%llums jitter=%lluus rate=%llu queue=%zu "
             "burst=%d up=%llu down=%llu (per connection) roam=%s moves=%d blackout=%llus",
             sc->loss, sc->reorder, sc->dup, (unsigned long long)(sc->delay / 1000000),
             (unsigned long long)(sc->jitter / 1000), (unsigned long long)sc->rate, sc->queue,
             sc->burst, (unsigned long long)sc->up, (unsigned long long)sc->down,
             sc->roam == SIM_MOVE_NAT      ? "nat"
             : sc->roam == SIM_MOVE_REBIND ? "rebind"
             : sc->roam == 3               ? "blackout"
                                           : "none",
             sc->moves, (unsigned long long)(sc->blackout / 1000000000));
}

/* Runs one seeded scenario, keyed or not (keyed: odd seeds use AES-GCM
 * where the CPU has it, even ones ChaCha20-Poly1305); returns 0 on success
 * or prints why it failed. */
static int run_seed(uint64_t seed, int verbose, int keyed)
{
    sim s;
    sim_init(&s, seed);
    scenario sc;
    memset(&sc, 0, sizeof sc);
    /* Loss spreads evenly over 0..30% across consecutive seeds. */
    sc.loss = (double)(seed % 31) / 100.0;
    sc.reorder = (sim_rand(&s) % 3 == 0) ? sim_rand01(&s) * 0.10 : 0;
    sc.dup = (sim_rand(&s) % 3 == 0) ? sim_rand01(&s) * 0.10 : 0;
    sc.delay = RUDP_US(500 + sim_rand(&s) % 60000);
    sc.jitter = (sim_rand(&s) % 2) ? RUDP_US(sim_rand(&s) % 5000) : 0;
    if (sim_rand(&s) % 2) {
        sc.rate = 1000000ull * (1 + sim_rand(&s) % 100);
        sc.queue = 20000 + (size_t)(sim_rand(&s) % 300000);
    }
    sc.burst = sim_rand(&s) % 10 == 0;
    uint64_t size_kind = sim_rand(&s) % 8;
    uint64_t big = sim_rand(&s) % 4 == 0 ? 1500000 : 200000;
    sc.up = size_kind == 0 ? 0 : size_kind == 1 ? 1 : sim_rand(&s) % big;
    sc.down = sim_rand(&s) % 3 == 0 ? 0 : sim_rand(&s) % big;
    int nconn = 1 + (int)(sim_rand(&s) % 3);
    /* Roaming: a NAT re-maps the client's port, the client moves to a new
     * address, or the path goes silent, at times in the transfer. */
    sc.roam = (int)(sim_rand(&s) % 4);
    rudp_time roam_at[3];
    if (sc.roam == SIM_MOVE_NAT || sc.roam == SIM_MOVE_REBIND)
        sc.moves = 1 + (int)(sim_rand(&s) % 3);
    for (int k = 0; k < 3; k++)
        roam_at[k] = RUDP_MS(50 + sim_rand(&s) % 3000);
    if (sc.roam == 3)
        sc.blackout = RUDP_SEC(2 + sim_rand(&s) % 39);

    rudp_config cfg;
    rudp_config_default(&cfg);
    /* Generous budgets: at 30% loss each way, exponential back-off can
     * legitimately sit out long stretches; virtual time costs nothing. */
    cfg.connect_timeout = RUDP_SEC(600);
    cfg.user_timeout = RUDP_SEC(600);
    cfg.idle_timeout = 0;
    cfg.linger = RUDP_SEC(600);
    cfg.keepalive = RUDP_SEC(15);
    cfg.send_buffer = 64 * 1024 + (uint32_t)(sim_rand(&s) % (1u << 20));
    cfg.recv_window = 16 * 1024 + (uint32_t)(sim_rand(&s) % (1u << 20));
    int a = sim_add_ep(&s, &cfg), b = sim_add_ep(&s, &cfg);
    if (getenv("SIM_PRINT")) {
        rudp_ctx_set_log_level(s.ep[a].ctx, RUDP_LOG_DEBUG);
        rudp_ctx_set_log_level(s.ep[b].ctx, RUDP_LOG_DEBUG);
    }
    if (keyed) {
        uint8_t key[RUDP_KEY_LEN];
        for (int k = 0; k < RUDP_KEY_LEN; k++)
            key[k] = (uint8_t)(seed * 31 + (uint64_t)k);
        sim_set_aead(&s, a, shim_aead_openssl());
        sim_set_aead(&s, b, shim_aead_openssl());
        sim_set_key(&s, a, key);
        sim_set_key(&s, b, key);
        uint8_t mask = seed % 2 ? RUDP_AEAD_AESGCM : RUDP_AEAD_CHACHA;
        rudp__keyed_limit_ciphers(s.ep[a].ctx, mask);
        rudp__keyed_limit_ciphers(s.ep[b].ctx, mask);
        /* each end's AEAD library by the seed too: the pairs that differ
         * must interoperate as the pairs that agree */
        rudp__keyed_limit_libs(s.ep[a].ctx, seed / 2 % 2 ? RUDP_AEAD_LIB_BACKEND
                                                         : RUDP_AEAD_LIB_SODIUM);
        rudp__keyed_limit_libs(s.ep[b].ctx, seed / 4 % 2 ? RUDP_AEAD_LIB_BACKEND
                                                         : RUDP_AEAD_LIB_SODIUM);
    }
    for (int d = 0; d < 2; d++) {
        sim_link *l = d ? &s.link[b][a] : &s.link[a][b];
        l->loss = sc.loss;
        l->reorder = sc.reorder;
        l->reorder_extra = sc.delay / 2 + 1;
        l->dup = sc.dup;
        l->delay = sc.delay;
        l->jitter = sc.jitter;
        l->rate_bps = sc.rate;
        l->queue_bytes = sc.queue;
        if (sc.burst) {
            l->ge_p = 0.01;
            l->ge_r = 0.3;
        }
    }
    sim_app srv = {.to_send = sc.down, .expect = sc.up, .send_seed = (uint32_t)seed * 2 + 1,
                   .recv_seed = (uint32_t)seed * 2};
    sim_app cli = {.to_send = sc.up, .expect = sc.down, .send_seed = (uint32_t)seed * 2,
                   .recv_seed = (uint32_t)seed * 2 + 1};
    sim_listen(&s, b, &srv, 16);
    int ci = -1;
    for (int k = 0; k < nconn; k++)
        ci = sim_connect(&s, a, b, &cli, NULL);
    for (int k = 0; k < sc.moves; k++)
        sim_schedule_move(&s, s.now + roam_at[k], a, sc.roam);
    if (sc.blackout) {
        for (int d = 0; d < 2; d++) {
            sim_link *l = d ? &s.link[b][a] : &s.link[a][b];
            l->cut_at = s.now + roam_at[0];
            l->cut_until = l->cut_at + sc.blackout;
        }
    }
    int done = sim_run(&s, s.now + RUDP_SEC(3600));

    /* Every client and every server app must hold the whole pattern. */
    const sim_app *c = &s.apps[ci], *sv = NULL;
    const char *why = NULL;
    int napps = 0;
    for (int i = 0; i < SIM_MAX_APPS; i++) {
        const sim_app *x = &s.apps[i];
        if (!x->used)
            continue;
        napps++;
        if (x->ep == b)
            sv = x;
        if (x->corrupt)
            why = "corrupted, reordered or duplicated byte";
        else if (x->received != x->expect)
            why = "missing bytes";
        else if (!x->eof)
            why = "no FIN";
        else if (x->error)
            why = "error";
        if (why) {
            c = x->ep == a ? x : c;
            sv = x->ep == b ? x : sv;
            break;
        }
    }
    if (!done && !why)
        why = "did not finish (something hangs or leaks)";
    else if (!why && napps != 2 * nconn)
        why = "a connection was never accepted";
    else if (!why && (rudp_ctx_conn_count(s.ep[a].ctx) || rudp_ctx_conn_count(s.ep[b].ctx)))
        why = "connections left behind";
    if (why || verbose) {
        char d[256];
        describe(&sc, d, sizeof d);
        fprintf(stderr, "%sseed %llu: %s [%s] cli rx=%llu err=%d eof=%d; srv rx=%llu err=%d eof=%d\n",
                keyed ? "keyed " : "", (unsigned long long)seed, why ? why : "ok", d, (unsigned long long)c->received,
                c->error, c->eof, sv ? (unsigned long long)sv->received : 0ull, sv ? sv->error : 0,
                sv ? sv->eof : 0);
    }
    sim_free(&s);
    return why != NULL;
}

/* 2,000 seeds in 8 groups so Criterion spreads them over the cores. */
#define SEEDS_PER_GROUP 250
static void run_group(int g, int keyed)
{
    int failed = 0;
    for (uint64_t seed = (uint64_t)g * SEEDS_PER_GROUP + 1; seed <= (uint64_t)(g + 1) * SEEDS_PER_GROUP;
         seed++)
        failed += run_seed(seed, 0, keyed);
    cr_assert(eq(int, failed, 0), "%d seeds failed (see stderr); replay with RUDP_SIM_SEED=N%s",
              failed, keyed ? " RUDP_SIM_KEYED=1" : "");
}

Test(sim, seeds_0001_0250_deliver_exactly_once_in_order, .timeout = 120) { run_group(0, 0); }
Test(sim, seeds_0251_0500_deliver_exactly_once_in_order, .timeout = 120) { run_group(1, 0); }
Test(sim, seeds_0501_0750_deliver_exactly_once_in_order, .timeout = 120) { run_group(2, 0); }
Test(sim, seeds_0751_1000_deliver_exactly_once_in_order, .timeout = 120) { run_group(3, 0); }
Test(sim, seeds_1001_1250_deliver_exactly_once_in_order, .timeout = 120) { run_group(4, 0); }
Test(sim, seeds_1251_1500_deliver_exactly_once_in_order, .timeout = 120) { run_group(5, 0); }
Test(sim, seeds_1501_1750_deliver_exactly_once_in_order, .timeout = 120) { run_group(6, 0); }
Test(sim, seeds_1751_2000_deliver_exactly_once_in_order, .timeout = 120) { run_group(7, 0); }

/* The same 2,000 scenarios with both ends keyed. */
Test(sim, keyed_seeds_0001_0250_deliver_exactly_once_in_order, .timeout = 120) { run_group(0, 1); }
Test(sim, keyed_seeds_0251_0500_deliver_exactly_once_in_order, .timeout = 120) { run_group(1, 1); }
Test(sim, keyed_seeds_0501_0750_deliver_exactly_once_in_order, .timeout = 120) { run_group(2, 1); }
Test(sim, keyed_seeds_0751_1000_deliver_exactly_once_in_order, .timeout = 120) { run_group(3, 1); }
Test(sim, keyed_seeds_1001_1250_deliver_exactly_once_in_order, .timeout = 120) { run_group(4, 1); }
Test(sim, keyed_seeds_1251_1500_deliver_exactly_once_in_order, .timeout = 120) { run_group(5, 1); }
Test(sim, keyed_seeds_1501_1750_deliver_exactly_once_in_order, .timeout = 120) { run_group(6, 1); }
Test(sim, keyed_seeds_1751_2000_deliver_exactly_once_in_order, .timeout = 120) { run_group(7, 1); }

/* RUDP_SIM_SEED=N replays one seed verbosely. */
Test(sim, replay_seed_from_environment)
{
    const char *e = getenv("RUDP_SIM_SEED");
    if (!e)
        return; /* nothing asked: this test only replays */
    cr_assert(eq(int, run_seed(strtoull(e, NULL, 10), 1, getenv("RUDP_SIM_KEYED") != NULL), 0));
}
