/* RUDP_EV_SILENT (conn.c): a client hears that its path may be gone (the
 * shim then moves it to a new socket, roam.c) after RUDP_SILENT_PTOS probe
 * timeouts and RUDP_SILENT_MIN without a word from its server since the
 * first of them; a connection that was idle before it wrote was not
 * waiting meanwhile (issue 30: 1,930 of 3,500 idle pairs in one busy
 * process moved when their first bytes were answered late). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "conn.h"
#include "lib_sim.h"

typedef struct pair {
    sim s;
    int a, b, ci;
} pair;

/* A client a and a server b, 1 ms each way (a probe timeout of ~30 ms),
 * connected and then idle for 10 s; neither writes until told. */
static void idle_pair(pair *p)
{
    sim_init(&p->s, 5);
    rudp_config cfg;
    rudp_config_default(&cfg);
    p->a = sim_add_ep(&p->s, &cfg);
    p->b = sim_add_ep(&p->s, &cfg);
    p->s.link[p->a][p->b].delay = RUDP_MS(1);
    p->s.link[p->b][p->a].delay = RUDP_MS(1);
    sim_app srv = {.expect = UINT64_MAX, .no_shutdown = 1, .send_seed = 2, .recv_seed = 1};
    sim_app cli = {.expect = UINT64_MAX, .no_shutdown = 1, .send_seed = 1, .recv_seed = 2};
    sim_listen(&p->s, p->b, &srv, 16);
    p->ci = sim_connect(&p->s, p->a, p->b, &cli, NULL);
    cr_assert(ge(int, p->ci, 0));
    sim_run_until(&p->s, p->s.now + RUDP_SEC(10));
    cr_assert(p->s.apps[p->ci].established, "the client did not connect");
    p->s.apps[p->ci].events = 0;
}

/* The client writes 1,000 bytes now, and nothing from the server reaches
 * it for `quiet` (its answers lost: a busy or unreachable peer). Returns
 * the client's events over the next `quiet` + 1 s. */
static unsigned write_into_silence(pair *p, rudp_time quiet)
{
    sim_link *back = &p->s.link[p->b][p->a];
    back->cut_at = p->s.now;
    back->cut_until = p->s.now + quiet;
    p->s.apps[p->ci].to_send = 1000;
    sim_poke_apps(&p->s);
    sim_run_until(&p->s, p->s.now + quiet + RUDP_SEC(1));
    return p->s.apps[p->ci].events;
}

Test(silent, an_idle_connection_answered_late_is_not_silent, .timeout = 30)
{
    pair p;
    idle_pair(&p);
    /* ~600 ms: many probe timeouts (30, 60, 120, 240 ms ...), less than
     * RUDP_SILENT_MIN; the last packet heard was 10 s ago */
    unsigned ev = write_into_silence(&p, RUDP_MS(600));
    cr_assert(ge(u64, p.s.ep[p.a].ctx->stats.pto_count, RUDP_SILENT_PTOS),
              "the late answer must cost probe timeouts, or this proves nothing");
    cr_assert(eq(uint, ev & RUDP_EV_SILENT, 0),
              "a peer answering 600 ms late made the client think its path was gone");
    sim_app *srv = sim_app_on(&p.s, p.b);
    cr_assert_not_null(srv);
    cr_assert(eq(u64, srv->received, 1000));
    sim_free(&p.s);
}

Test(silent, a_silence_of_seconds_is_still_told, .timeout = 30)
{
    pair p;
    idle_pair(&p);
    unsigned ev = write_into_silence(&p, RUDP_SEC(4));
    cr_assert(ne(uint, ev & RUDP_EV_SILENT, 0), "4 s without an answer must say the path may be gone");
    sim_free(&p.s);
}
