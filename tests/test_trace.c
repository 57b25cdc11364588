/* The trace hooks (core/trace.c) over the simulated network: what a qlog
 * writer is told, and that a context without a tracer tells nothing. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <string.h>

#include "lib_sim.h"

/* One traced connection's record, as a writer would keep it. */
typedef struct rec {
    int used, is_server, closed, events_after_close;
    rudp_time opened, last_time;
    int time_went_back;
    uint64_t sent, received, lost, metrics, states, acks, ranges;
    uint64_t last_sent_pn, sent_pn_not_increasing, sent_data;
    rudp_state state;       /* as the CONN_STATE events tell it */
    int state_chain_broken; /* an event's old state was not the last new one */
    char cc_states[8][32];  /* distinct controller phases, in order seen */
    int ncc;
    uint64_t mtus, mtu_done, mtu_chain_broken;
    uint32_t mtu_last;      /* the last MTU event's new size */
} rec;

static rec recs[16];
static int opens;

static void *t_open(void *user, rudp_conn *c, int is_server, rudp_time now)
{
    (void)user, (void)c;
    cr_assert(lt(int, opens, 16));
    rec *r = &recs[opens++];
    memset(r, 0, sizeof *r);
    r->used = 1;
    r->is_server = is_server;
    r->opened = r->last_time = now;
    r->state = RUDP_CLOSED;
    return r;
}

static void t_event(void *h, const rudp_trace_event *ev)
{
    rec *r = h;
    if (r->closed)
        r->events_after_close++;
    if (ev->now < r->last_time)
        r->time_went_back = 1;
    r->last_time = ev->now;
    switch (ev->kind) {
    case RUDP_TRACE_PACKET_SENT:
        if (ev->packet->type == 4) {
            if (r->sent_data++ && ev->packet->pn <= r->last_sent_pn)
                r->sent_pn_not_increasing++;
            r->last_sent_pn = ev->packet->pn;
        }
        r->sent++;
        break;
    case RUDP_TRACE_PACKET_RECEIVED:
        r->received++;
        for (uint32_t i = 0; i < ev->packet->nframes; i++)
            if (ev->packet->frames[i].type == 2)
                r->acks++;
        r->ranges += ev->packet->nranges;
        break;
    case RUDP_TRACE_PACKET_LOST:
        r->lost++;
        break;
    case RUDP_TRACE_METRICS:
        r->metrics++;
        cr_assert(not(eq(ptr, (void *)ev->metrics->cc_state, NULL)));
        if (r->ncc == 0 || strcmp(r->cc_states[r->ncc - 1], ev->metrics->cc_state) != 0) {
            if (r->ncc < 8)
                strncpy(r->cc_states[r->ncc++], ev->metrics->cc_state, 31);
        }
        break;
    case RUDP_TRACE_MTU:
        if (r->mtus++ && ev->mtu_old != r->mtu_last)
            r->mtu_chain_broken++;
        r->mtu_last = ev->mtu_new;
        r->mtu_done += ev->mtu_done;
        break;
    case RUDP_TRACE_CONN_STATE:
        if (ev->old_state != r->state)
            r->state_chain_broken = 1;
        r->state = ev->new_state;
        r->states++;
        break;
    }
}

static void t_close(void *h, rudp_time now)
{
    rec *r = h;
    (void)now;
    r->closed++;
}

static const rudp_trace_ops ops = {.open = t_open, .event = t_event, .close = t_close};

static int run_transfer(double loss, const rudp_cc_ops *cc, int traced)
{
    memset(recs, 0, sizeof recs);
    opens = 0;
    sim s;
    sim_init(&s, 7);
    rudp_config cfg;
    rudp_config_default(&cfg);
    cfg.cc = cc;
    int a = sim_add_ep(&s, &cfg), b = sim_add_ep(&s, &cfg);
    if (traced) {
        rudp_ctx_set_trace(s.ep[a].ctx, &ops, NULL);
        rudp_ctx_set_trace(s.ep[b].ctx, &ops, NULL);
    }
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(20);
    s.link[a][b].loss = loss;
    s.link[a][b].rate_bps = 100000000; /* a bottleneck: bbr's startup ends */
    s.link[a][b].queue_bytes = 500000;
    sim_app srv = {.expect = 4000000, .recv_seed = 1};
    sim_app cli = {.to_send = 4000000, .expect = 0, .send_seed = 1};
    sim_listen(&s, b, &srv, 16);
    int ci = sim_connect(&s, a, b, &cli, NULL);
    cr_assert(ge(int, ci, 0));
    int done = sim_run(&s, s.now + RUDP_SEC(120));
    cr_assert(done, "transfer did not finish");
    sim_free(&s); /* frees what is left: every trace is closed */
    return done;
}

static const rec *side(int is_server)
{
    for (int i = 0; i < opens; i++)
        if (recs[i].is_server == is_server)
            return &recs[i];
    return NULL;
}

Test(trace, lossy_transfer_reports_packets_losses_metrics_and_states, .timeout = 60)
{
    run_transfer(0.01, NULL, 1);
    cr_assert(eq(int, opens, 2), "one trace per connection, each side");
    const rec *c = side(0), *s = side(1);
    cr_assert_not_null(c);
    cr_assert_not_null(s);
    for (int i = 0; i < 2; i++) {
        const rec *r = i ? s : c;
        cr_assert(eq(int, r->closed, 1), "closed exactly once");
        cr_assert(eq(int, r->events_after_close, 0));
        cr_assert(not(r->time_went_back));
        cr_assert(not(r->state_chain_broken), "old state = the previous new state");
        cr_assert(eq(int, r->state, RUDP_CLOSED), "the last state reported is CLOSED");
        cr_assert(gt(u64, r->sent, 0));
        cr_assert(gt(u64, r->received, 0));
        cr_assert(gt(u64, r->metrics, 0));
        cr_assert(eq(u64, r->sent_pn_not_increasing, 0), "packet numbers never reused");
    }
    cr_assert(gt(u64, c->sent, 1000), "the sender traced its data packets");
    cr_assert(gt(u64, c->lost, 0), "1%% loss shows as packet_lost");
    cr_assert(gt(u64, c->acks, 0));
    cr_assert(ge(u64, c->ranges, c->acks), "every ACK frame comes with its ranges");
    cr_assert(eq(str, (char *)c->cc_states[0], "Startup"), "bbr starts in Startup");
    cr_assert(ge(int, c->ncc, 2), "and leaves it");
}

Test(trace, loss_based_controller_reports_recovery, .timeout = 60)
{
    run_transfer(0.01, rudp_cc_find("cubic"), 1);
    const rec *c = side(0);
    cr_assert_not_null(c);
    int saw_ss = 0, saw_rec = 0;
    for (int i = 0; i < c->ncc; i++) {
        saw_ss |= strcmp(c->cc_states[i], "slow start") == 0;
        saw_rec |= strcmp(c->cc_states[i], "recovery") == 0;
    }
    cr_assert(saw_ss && saw_rec, "cubic: slow start, then recovery after a loss");
}

Test(trace, untraced_context_opens_nothing, .timeout = 60)
{
    run_transfer(0.0, NULL, 0);
    cr_assert(eq(int, opens, 0));
}

/* An engine may hand the core an older time than it handed it before (it
 * times each batch of datagrams as it reads it, and the rest of its turn at
 * the turn's start): the trace (qlog's "time") must still never go back. */
Test(trace, a_caller_whose_time_goes_back_gets_a_monotone_trace, .timeout = 60)
{
    memset(recs, 0, sizeof recs);
    opens = 0;
    sim s;
    sim_init(&s, 11);
    int a = sim_add_ep(&s, NULL), b = sim_add_ep(&s, NULL);
    rudp_ctx_set_trace(s.ep[a].ctx, &ops, NULL);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(5);
    sim_app srv = {.expect = UINT64_MAX, .paused = 1};
    sim_app cli = {.to_send = 0, .expect = 0, .no_shutdown = 1};
    sim_listen(&s, b, &srv, 16);
    int ci = sim_connect(&s, a, b, &cli, NULL);
    cr_assert(ge(int, ci, 0));
    sim_run_until(&s, s.now + RUDP_MS(100));
    rudp_conn *c = s.apps[ci].conn;
    cr_assert_not_null(c);
    const rec *r = side(0);
    cr_assert_not_null(r);
    cr_assert(not(r->time_went_back));
    static const char msg[] = "hello";
    rudp_time later = s.now + RUDP_MS(3);
    rudp_ctx_process(s.ep[a].ctx, later); /* a batch timed when it was read */
    cr_assert(eq(sz, (size_t)rudp_conn_write(c, s.now, msg, sizeof msg), sizeof msg),
              "a write timed at the turn's start, before that batch");
    rudp_ctx_process(s.ep[a].ctx, s.now);
    cr_assert(ge(u64, r->last_time, later), "the write was traced at the newest time seen");
    cr_assert(not(r->time_went_back), "no event is timed before one already traced");
    sim_free(&s);
}

/* Path MTU discovery's sizes are traced (qlog's connectivity:mtu_updated):
 * from the handshake's size down to the base, up by probes to what the
 * path carries, each event's old size the last one's new, and the search's
 * end said once. */
Test(trace, path_mtu_updates_are_traced, .timeout = 60)
{
    memset(recs, 0, sizeof recs);
    opens = 0;
    sim s;
    sim_init(&s, 9);
    rudp_config cfg;
    rudp_config_default(&cfg);
    cfg.max_datagram = 9000;
    cfg.pmtud = 1;
    int a = sim_add_ep(&s, &cfg), b = sim_add_ep(&s, &cfg);
    rudp_ctx_set_trace(s.ep[a].ctx, &ops, NULL);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(10);
    s.link[a][b].mtu = s.link[b][a].mtu = 1452;
    s.link[a][b].rate_bps = 20000000; /* 1.2 s: probes go while data waits */
    s.link[a][b].queue_bytes = 200000;
    sim_app srv = {.expect = 3000000, .recv_seed = 1};
    sim_app cli = {.to_send = 3000000, .expect = 0, .send_seed = 1};
    sim_listen(&s, b, &srv, 16);
    cr_assert(ge(int, sim_connect(&s, a, b, &cli, NULL), 0));
    cr_assert(sim_run(&s, s.now + RUDP_SEC(60)), "transfer did not finish");
    sim_free(&s);
    const rec *c = side(0);
    cr_assert_not_null(c);
    cr_assert(ge(u64, c->mtus, 3), "%llu MTU events, last %u done %llu", (unsigned long long)c->mtus, c->mtu_last, (unsigned long long)c->mtu_done);
    cr_assert(eq(u64, c->mtu_chain_broken, 0));
    cr_assert(eq(u64, c->mtu_done, 1), "the search's end said %llu times",
              (unsigned long long)c->mtu_done);
    cr_assert(le(u32, c->mtu_last, 1452));
    cr_assert(gt(u32, c->mtu_last, 1400), "ended at %u", c->mtu_last);
}
