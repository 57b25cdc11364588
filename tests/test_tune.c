/*
 * test_tune.c: settings changed on a live connection (core/tune.c): the
 * send buffer, receive window and TCP_NOTSENT_LOWAT.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>

#include "conn.h"
#include "lib_sim.h"

/* A writer of `total` bytes (cfg) to a reader 10 ms away that takes
 * nothing until let go (held_reader_go), after 5 s: the writer's
 * connection. */
static rudp_conn *held_writer(sim *s, unsigned seed, const rudp_config *cfg, uint64_t total,
                              int *b)
{
    sim_init(s, seed);
    int a = sim_add_ep(s, NULL);
    *b = sim_add_ep(s, NULL);
    s->link[a][*b].delay = s->link[*b][a].delay = RUDP_MS(10);
    sim_app srv = {.expect = total, .paused = 1, .recv_seed = seed},
            cli = {.to_send = total, .send_seed = seed};
    sim_listen(s, *b, &srv, 16);
    int ci = sim_connect(s, a, *b, &cli, cfg);
    sim_run_until(s, s->now + RUDP_SEC(5));
    return s->apps[ci].conn;
}

/* The reader let go: the writer wakes as bytes go out, all arrive. */
static void held_reader_go(sim *s, int b, uint64_t total)
{
    sim_app *sv = sim_app_on(s, b);
    sv->paused = 0;
    sim_poke_apps(s);
    cr_assert(sim_run(s, s->now + RUDP_SEC(60)), "the writer woke as bytes went out");
    cr_assert(eq(u64, sv->received, total));
    cr_assert(not(sv->corrupt));
}

/* The writer held_writer left: between half the bound and the bound
 * unsent, and no room for more. */
static void held_within(rudp_conn *c, uint64_t bound)
{
    rudp_conn_info i;
    rudp_conn_get_info(c, &i);
    cr_assert(le(u64, i.unsent_bytes, bound), "never more than the bound unsent");
    cr_assert(ge(u64, i.unsent_bytes, bound / 2), "writes go on until half the bound waits");
    cr_assert(eq(u64, rudp_conn_unsent(c), i.unsent_bytes), "the accessor says what the info says");
    cr_assert(eq(u64, rudp_conn_unacked(c), i.unacked_bytes), "and the unacknowledged bytes");
    cr_assert(ge(u64, rudp_conn_unacked(c), rudp_conn_unsent(c)));
    cr_assert(eq(sz, rudp_conn_write_space(c), 0), "no room while half the bound waits");
}

Test(tune, notsent_lowat_holds_unsent_bytes_to_the_limit_and_wakes_the_writer, .timeout = 20)
{
    sim s;
    int b;
    rudp_config cc;
    rudp_config_default(&cc);
    cc.notsent_lowat = 16384;
    rudp_conn *c = held_writer(&s, 41, &cc, 2000000, &b);
    /* the reader holds the window: what was written beyond it waits unsent */
    held_within(c, 16384);
    held_reader_go(&s, b, 2000000);
    sim_free(&s);
}

/* unsent_cap: the same bound where the application set no lowat; its own
 * lowat, set later, takes the cap's place, and removing it gives the cap
 * back (not "no bound"). */
Test(tune, unsent_cap_bounds_unsent_bytes_where_no_lowat_is_set, .timeout = 20)
{
    sim s;
    int b;
    rudp_config cc;
    rudp_config_default(&cc);
    cc.unsent_cap = 65536;
    cr_assert(eq(int, rudp_config_check(&cc, NULL), 0));
    rudp_conn *c = held_writer(&s, 44, &cc, 3000000, &b);
    held_within(c, 65536);
    /* the app's lowat, smaller, rules; removed, the cap rules again */
    rudp_conn_set_buffers(c, 0, 0, 16384);
    cr_assert(eq(u32, rudp__unsent_bound(c), 16384));
    rudp_conn_set_buffers(c, 0, 0, 0);
    cr_assert(eq(u32, rudp__unsent_bound(c), 65536));
    held_reader_go(&s, b, 3000000);
    sim_free(&s);
}

Test(tune, an_unsent_cap_below_16_KiB_or_two_datagrams_is_refused)
{
    rudp_config cc;
    rudp_config_default(&cc);
    cc.unsent_cap = 4096;
    const char *why = NULL;
    cr_assert(eq(int, rudp_config_check(&cc, &why), -EINVAL));
    cr_assert(ne(ptr, (void *)why, NULL));
    cc.max_datagram = 65000; /* loopback's: a TCP_CORK'd write waits for a full one */
    cc.unsent_cap = 65536;
    cr_assert(eq(int, rudp_config_check(&cc, NULL), -EINVAL), "under 2 datagrams");
    cc.unsent_cap = 0;
    cr_assert(eq(int, rudp_config_check(&cc, NULL), 0), "0: no cap");
}

Test(tune, set_buffers_bounds_the_send_buffer_and_removing_the_lowat_frees_the_writer)
{
    sim s;
    sim_init(&s, 42);
    int a = sim_add_ep(&s, NULL), b = sim_add_ep(&s, NULL);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(10);
    sim_app srv = {.expect = UINT64_MAX, .paused = 1, .no_shutdown = 1, .no_release = 1},
            cli = {.to_send = 0, .no_shutdown = 1, .no_release = 1};
    sim_listen(&s, b, &srv, 16);
    int ci = sim_connect(&s, a, b, &cli, NULL);
    sim_run_until(&s, s.now + RUDP_SEC(1));
    rudp_conn *c = s.apps[ci].conn;
    rudp_conn_set_buffers(c, 8192, 0, 0);
    cr_assert(eq(sz, rudp_conn_write_space(c), 8192));
    rudp_conn_set_buffers(c, 1000, 0, 0); /* at least 4 KiB */
    cr_assert(eq(sz, rudp_conn_write_space(c), 4096));
    rudp_conn_set_buffers(c, 1u << 30, 0, 0); /* at most what the buffer was made for */
    cr_assert(eq(u32, c->cfg.send_buffer, c->sbuf.cap));
    rudp_conn_set_buffers(c, 0, 0, 4096);
    cr_assert(eq(sz, rudp_conn_write_space(c), 4096), "up to the lowat");
    static const uint8_t buf[4096];
    cr_assert(eq(sz, (size_t)rudp_conn_write(c, s.now, buf, sizeof buf), 4096));
    cr_assert(eq(sz, rudp_conn_write_space(c), 0));
    cr_assert(eq(sz, (size_t)-rudp_conn_write(c, s.now, buf, 1), EAGAIN), "a writer waits");
    c->events = 0;
    rudp_conn_set_buffers(c, 0, 0, 0);
    cr_assert(gt(sz, rudp_conn_write_space(c), 0));
    cr_assert(ne(u32, c->events & RUDP_EV_WRITABLE, 0), "the waiting writer is told");
    sim_free(&s);
}

Test(tune, a_cork_holds_a_partial_datagram_until_uncorked_or_the_ceiling, .timeout = 20)
{
    sim s;
    sim_init(&s, 43);
    int a = sim_add_ep(&s, NULL), b = sim_add_ep(&s, NULL);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(5);
    sim_app srv = {.expect = UINT64_MAX, .no_shutdown = 1, .no_release = 1},
            cli = {.to_send = 0, .no_shutdown = 1, .no_release = 1};
    sim_listen(&s, b, &srv, 16);
    int ci = sim_connect(&s, a, b, &cli, NULL);
    sim_run_until(&s, s.now + RUDP_SEC(1));
    rudp_conn *c = s.apps[ci].conn;
    sim_app *sv = sim_app_on(&s, b);
    static const uint8_t buf[100];
    rudp_conn_set_cork(c, 1);
    rudp_time t0 = s.now;
    cr_assert(eq(sz, (size_t)rudp_conn_write(c, s.now, buf, sizeof buf), sizeof buf));
    sim_run_until(&s, t0 + RUDP_MS(150));
    cr_assert(eq(u64, sv->received, 0), "held while corked");
    sim_run_until(&s, t0 + RUDP_MS(300));
    cr_assert(eq(u64, sv->received, 100), "sent at the 200 ms ceiling");
    cr_assert(eq(sz, (size_t)rudp_conn_write(c, s.now, buf, sizeof buf), sizeof buf));
    sim_run_until(&s, s.now + RUDP_MS(50));
    cr_assert(eq(u64, sv->received, 100), "held again after the ceiling sent the last");
    rudp_conn_set_cork(c, 0);
    sim_run_until(&s, s.now + RUDP_MS(50));
    cr_assert(eq(u64, sv->received, 200), "uncorking sends what waits");
    sim_free(&s);
}
