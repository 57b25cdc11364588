/*
 * enginestats.c: the engines' counters (RUDP_STATS): each engine's figures,
 * taken on its own thread or while it is paused, summed over the engines
 * and printed one subject per line, as RUDP_STATS logs them at exit (and a
 * keeper at its end), a signal's request has the engines log them, and
 * rudp-stat shows them (control.c). Split from engines.c; a feature's own
 * figures reach it through hooks.h (shim_engine_set_figures).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#include "base/poison.h"
/* Every field of the figures is a uint64_t counter (said where they are
 * defined), so the engines' figures add up field by field; the longest
 * turn and the largest moderated read are the exceptions, taken as the
 * largest. */
_Static_assert(sizeof(engine_figures) % sizeof(uint64_t) == 0 &&
                   sizeof(rudp_stats) % sizeof(uint64_t) == 0 &&
                   sizeof(shim_udpio_stats) % sizeof(uint64_t) == 0,
               "engine figures: uint64_t counters only");

void shim_engine_figures(struct engine *e, engine_figures *f)
{
    memset(f, 0, sizeof *f);
    if (!e->ctx || !e->io)
        return;
    f->s = *rudp_ctx_stats(e->ctx);
    f->u = *shim_udpio_stats_get(e->io);
    f->wakeups = e->wakeups;
    f->timed_wakeups = e->timed_wakeups;
    f->late_ns = e->late_ns;
    f->timer_missed = e->timer_missed;
    f->tfd_arms = e->tfd_arms;
    f->tfd_sleeps = e->tfd_sleeps;
    f->overslept = e->overslept;
    f->longest_turn = e->longest_turn;
    f->squatted = e->squatted;
    if (shim_hook.figures)
        shim_hook.figures(e, f->feat); /* the ports' (hooks.h) */
    f->fifo_held = e->fifo_held_n;
    f->fifo_held_ns = e->fifo_held_ns;
    f->app_sends = e->app_sends;
    f->ring_writes = atomic_load_explicit(&e->tx.writes, memory_order_relaxed);
    f->ring_bells = atomic_load_explicit(&e->tx.bells, memory_order_relaxed);
    f->ring_full = atomic_load_explicit(&e->tx.full, memory_order_relaxed);
    f->ring_taken = e->ring_taken;
    f->ring_lost = e->ring_lost;
    f->app_recvs = e->app_recvs;
    f->app_polls = e->app_polls;
    f->app_epolls = e->app_epolls;
    f->app_selects = e->app_selects;
    f->app_direct = e->app_direct;
    f->app_io_turns = e->app_io_turns;
    f->ring_quiet = atomic_load_explicit(&e->ring_quiet, memory_order_relaxed);
    f->app_kept = e->app_kept;
    f->app_taken = e->app_taken;
    f->app_kept_ep = e->app_kept_ep;
    f->app_told_ep = e->app_told_ep;
    f->kept_passed = e->kept_passed;
    f->keeps_off = e->keeps_off;
    f->app_closing = e->app_closing;
    f->app_closing_in = e->app_closing_in;
    f->bridges_grown = e->bridges_grown;
    f->mod_on = e->mod_on;
    f->mod_reads = e->mod_reads;
    f->mod_dgrams = e->mod_dgrams;
    f->mod_largest = e->mod_largest;
    f->mod_again = e->mod_again;
    f->mod_refused = e->mod_refused;
    f->mod_tx_on = e->mod_tx_on;
    f->mod_tx_reads = e->mod_tx_reads;
    f->mod_tx_dgrams = e->mod_tx_dgrams;
    f->stamped_in = e->stamped_in;
    f->stamped_ns = e->stamped_ns;
    f->app_lapsed = e->app_lapsed;
    f->app_shared_off = atomic_load_explicit(&e->app_shared_off, memory_order_relaxed);
    f->app_io_ranout = e->app_io_ranout;
    f->app_busy = atomic_load_explicit(&e->app_busy, memory_order_relaxed);
    f->memory = rudp_ctx_memory(e->ctx);
    f->gso_on = shim_udpio_gso_on(e->io) ? 1 : 0;
}

static void add_figures(engine_figures *sum, const engine_figures *one)
{
    uint64_t longest = sum->longest_turn > one->longest_turn ? sum->longest_turn
                                                             : one->longest_turn;
    uint64_t largest = sum->mod_largest > one->mod_largest ? sum->mod_largest : one->mod_largest;
    uint64_t *a = (uint64_t *)sum;
    const uint64_t *b = (const uint64_t *)one;
    for (size_t i = 0; i < sizeof *sum / sizeof *a; i++)
        a[i] += b[i];
    sum->longest_turn = longest;
    sum->mod_largest = largest;
}

static double pct(uint64_t part, uint64_t whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

/* One line of print_figures to its sink. */
static void say(shim_line_fn line, void *arg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(shim_line_fn line, void *arg, const char *fmt, ...)
{
    char text[768];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n >= 0)
        line(arg, text);
}

/* The phrases ("stream bytes sent N", "memory held N", ...) are what tests
 * and the bench's report.py read: keep them when changing the layout. */
/* The application threads' own sends and receives (appsend.c, apprecv.c). */
static void print_app_paths(const engine_figures *f, shim_line_fn line, void *arg)
{
    typedef unsigned long long ull;
    if (f->app_sends || f->app_busy) /* appsend.c */
        say(line, arg, "app-thread sends: writes sent by the writing thread %llu, found the "
                       "engine in its turn (passed through the bridge) %llu",
            (ull)f->app_sends, (ull)f->app_busy);
    if (f->ring_writes || f->ring_full) /* txring.c */
        say(line, arg, "writes in memory: handed to the engine %llu (eventfd writes %llu, none "
                       "while an app thread had the engines' sockets %llu, no room: through "
                       "the bridge %llu), taken into their connections %llu, dropped (the "
                       "connection gone) %llu",
            (ull)f->ring_writes, (ull)f->ring_bells, (ull)f->ring_quiet, (ull)f->ring_full,
            (ull)f->ring_taken, (ull)f->ring_lost);
    if (f->app_recvs || f->app_lapsed) /* apprecv.c */
        say(line, arg, "app-thread receives: reads whose own thread took the datagram %llu "
                       "(in poll or ppoll %llu, in epoll %llu, of them over every socket of "
                       "the engine %llu, in select %llu; bytes straight into the reader's "
                       "buffer %llu); waits taken back when their lease ran out (a reader "
                       "cancelled or jumped out) %llu",
            (ull)f->app_recvs, (ull)f->app_polls, (ull)f->app_epolls, (ull)f->app_io_turns,
            (ull)f->app_selects, (ull)f->app_direct, (ull)f->app_lapsed);
    if (f->app_io_turns || f->app_shared_off || f->app_io_ranout) /* appwhole.c */
        say(line, arg, "event loops' threads: whole-set waits turned off for another thread's "
                       "wait on the same engine's set %llu; lingers of the set that ran out "
                       "(no wait of the app's meanwhile) %llu",
            (ull)f->app_shared_off, (ull)f->app_io_ranout);
    if (f->app_kept) /* apprecv.c */
        say(line, arg, "kept for the read after a poll: keeps %llu (for an event loop's epoll "
                       "wait %llu, told it %llu), reads that took them %llu, passed on into "
                       "the bridge unread %llu; bridges kept no more (%d passed on in a row "
                       "with no read of ours between) %llu",
            (ull)f->app_kept, (ull)f->app_kept_ep, (ull)f->app_told_ep, (ull)f->app_taken,
            (ull)f->kept_passed, SHIM_KEEP_LATE, (ull)f->keeps_off);
    uint64_t deferred, at_once;
    shim_crit_counts(&deferred, &at_once); /* the process's, base/crit.c */
    if (deferred || at_once)
        say(line, arg, "signals that came inside the shim's short sections: deferred to the "
                       "section's end %llu, handler run at once (not queued again) %llu",
            (ull)deferred, (ull)at_once);
    if (f->app_closing) /* apprecv.c */
        say(line, arg, "closes that read their connection's socket first: %llu (datagrams "
                       "found there, before the close: %llu)",
            (ull)f->app_closing, (ull)f->app_closing_in);
    if (f->bridges_grown) /* bridgepump.c */
        say(line, arg, "bridges: buffers grown for a reader that kept up %llu (each a doubling, "
                       "to at most %d KiB)",
            (ull)f->bridges_grown, SHIM_BRIDGE_BUF_MAX / 1024);
}

/* Receive moderation (rxmod.c): the engine's reads, not an app thread's. */
static void print_moderation(const engine_figures *f, shim_line_fn line, void *arg)
{
    typedef unsigned long long ull;
    if (f->mod_on)
        say(line, arg, "receive moderation: sockets left unwatched while a bulk transfer "
                       "arrived %llu, read at the engine's wake-ups %llu times, datagrams so "
                       "read %llu, the most in one read %llu (reads of all a read takes, "
                       "read again at once: %llu); watched for good after an overflow %llu",
            (ull)f->mod_on, (ull)f->mod_reads, (ull)f->mod_dgrams, (ull)f->mod_largest,
            (ull)f->mod_again, (ull)f->mod_refused);
    if (f->mod_tx_on)
        say(line, arg, "moderation at the sender: sockets left unwatched while the pacer held "
                       "data back %llu, read at the engine's wake-ups %llu times, datagrams so "
                       "read %llu, timed by their kernel receive time %llu (%.1f us before "
                       "their read on average)",
            (ull)f->mod_tx_on, (ull)f->mod_tx_reads, (ull)f->mod_tx_dgrams, (ull)f->stamped_in,
            f->stamped_in ? (double)f->stamped_ns / (double)f->stamped_in / 1000.0 : 0.0);
}

void shim_engine_print_figures(const engine_figures *fig, int n, shim_line_fn line, void *arg)
{
    engine_figures t;
    memset(&t, 0, sizeof t);
    char per[SHIM_ENGINES_MAX * 24] = "";
    size_t pl = 0;
    for (int k = 0; k < n; k++) {
        add_figures(&t, &fig[k]);
        int w = snprintf(per + pl, sizeof per - pl, "%s%llu", k ? "/" : "",
                         (unsigned long long)(fig[k].s.conns_opened + fig[k].s.conns_accepted));
        if (w > 0 && (size_t)w < sizeof per - pl)
            pl += (size_t)w;
    }
    const rudp_stats *s = &t.s;
    const shim_udpio_stats *u = &t.u;
    typedef unsigned long long ull;
    if (shim_ident_refused())
        say(line, arg, "foreign connections to our listeners refused %llu",
            (ull)shim_ident_refused());
    say(line, arg, "connections: opened %llu accepted %llu closed %llu; resets sent %llu received %llu",
        (ull)s->conns_opened, (ull)s->conns_accepted, (ull)s->conns_closed,
        (ull)s->resets_sent, (ull)s->resets_received);
    /* the handshake's front door (core/ctx.c): one round trip unless under
     * pressure, then a stateless RETRY (cookie) */
    say(line, arg, "handshakes: direct %llu (one round trip), retries sent %llu (half-open %llu, "
                   "per source %llu, memory %llu), bad cookies %llu, synacks capped %llu (3x "
                   "limit of an address not validated); loopback clients told to wait %llu "
                   "(their SYNACK held for the accept queue)",
        (ull)s->handshakes_direct, (ull)s->retries_sent, (ull)s->retries_halfopen,
        (ull)s->retries_source, (ull)s->retries_memory, (ull)s->bad_token,
        (ull)s->synacks_capped, (ull)s->held_noticed);
    /* the transports side by side: rudp's accepted above, plain kernel TCP
     * (RUDP_ACCEPT_TCP) here */
    const uint64_t *ft = t.feat;
    if (shim_cfg.accept_tcp || ft[SHIM_FIG_TCP_ACCEPTED])
        say(line, arg, "plain TCP: connections accepted %llu (kernel TCP, not rudp)",
            (ull)ft[SHIM_FIG_TCP_ACCEPTED]);
    /* Bytes go again after a loss and at a probe timeout (whose probe
     * carries the oldest unacknowledged bytes, lost or not): the packets
     * that carried them are not the packets declared lost, so each is
     * named for what it counts. */
    say(line, arg, "stream: stream bytes sent %llu, sent again %llu bytes in %llu packets (a lost "
                   "packet's, or the oldest unacknowledged at a probe timeout); packets declared "
                   "lost %llu, probe timeouts %llu (in vain, the peer late: %llu), duplicate "
                   "packets received %llu",
        (ull)s->stream_bytes_sent, (ull)s->bytes_retransmitted, (ull)s->pkts_resent,
        (ull)s->pkts_retransmitted, (ull)s->pto_count, (ull)s->pto_late, (ull)s->dup_pkts);
    say(line, arg, "pacer: data held back %llu times, its timer fired %llu times (%.1f data "
                   "packets per firing: bursts of ~1 ms, core/conn_output.c)",
        (ull)s->pacer_waits, (ull)s->pacer_wakeups,
        s->pacer_wakeups ? (double)s->pkts_sent / (double)s->pacer_wakeups : 0.0);
    say(line, arg, "repair: copies of a short write's last packet %llu (%llu stream bytes), "
                   "losses they repaired %llu",
        (ull)s->repair_pkts, (ull)s->repair_bytes, (ull)s->losses_repaired);
    say(line, arg, "loss and rtt: %.2f%% of %llu data packets declared lost; mean smoothed RTT "
                   "%.2f ms over %llu closed connections",
        pct(s->pkts_retransmitted, s->pkts_sent), (ull)s->pkts_sent,
        s->rtt_conns ? (double)s->rtt_srtt_sum_us / (double)s->rtt_conns / 1000 : 0.0,
        (ull)s->rtt_conns);
    say(line, arg, "datagrams: datagrams out %llu in %llu, bytes out %llu in %llu",
        (ull)s->dgrams_out, (ull)s->dgrams_in, (ull)s->bytes_out, (ull)s->bytes_in);
    say(line, arg, "dropped: malformed %llu, unknown connection %llu, icmp ignored %llu acted on "
                   "%llu, handshakes dropped %llu (source limit %llu) refused for memory %llu, "
                   "data dropped %llu",
        (ull)s->malformed, (ull)s->unknown_conn, (ull)s->icmp_ignored, (ull)s->icmp_soft,
        (ull)s->handshakes_dropped, (ull)s->source_limited, (ull)s->memory_refused,
        (ull)s->rx_dropped);
    /* path MTU discovery (core/pmtu.h) */
    say(line, arg, "pmtu: probes %llu (lost or too big %llu), sizes raised %llu lowered %llu; "
                   "black holes suspected %llu found %llu; 'too big' taken %llu, hints %llu",
        (ull)s->pmtu_probes, (ull)s->pmtu_probes_lost, (ull)s->pmtu_raised, (ull)s->pmtu_lowered,
        (ull)s->pmtu_fallbacks, (ull)s->pmtu_black_holes, (ull)s->ptb_taken, (ull)s->ptb_hints);
    /* keyed mode's refusals: a person sharing keys needs to see them; an
     * unkeyed process's figures stay as they were */
    /* roaming (core/path.h): peers that moved, and attempts that failed */
    say(line, arg, "path: peers moved %llu (addresses validated %llu, never answering %llu), "
                   "connections moved to a new socket %llu, datagrams from a wrong address %llu, "
                   "from an address not validated %llu, moved to a new address of ours %llu",
        (ull)s->path_moves, (ull)s->paths_validated, (ull)s->path_failed, (ull)s->rebinds,
        (ull)s->path_refused, (ull)s->path_held, (ull)s->local_moves);
    /* handover (core/standby.c): only where a standby path was used */
    if (s->standby_challenges || s->standby_pkts || s->handovers)
        say(line, arg, "handover: to standby %llu (the primary too slow %llu), back to primary "
                       "%llu, standby challenges %llu (answered %llu), datagrams for it %llu "
                       "(%llu bytes)",
            (ull)s->handovers, (ull)s->handovers_slow, (ull)s->handbacks,
            (ull)s->standby_challenges, (ull)s->standby_validated, (ull)s->standby_pkts,
            (ull)s->standby_bytes);
    /* zero round trips (core/zrtt.c): only where tokens moved at all */
    if (s->tokens_issued || s->zero_rtt_accepted || s->zero_rtt_replayed || s->zero_rtt_invalid ||
        s->zero_rtt_full || s->zero_rtt_sent || s->zero_rtt_resent)
        say(line, arg, "0-rtt: tokens issued %llu, accepted %llu, refused: replayed %llu invalid "
                       "%llu register full %llu; the SYN again from another port %llu; client: "
                       "sent %llu, refused and sent again %llu",
            (ull)s->tokens_issued, (ull)s->zero_rtt_accepted, (ull)s->zero_rtt_replayed,
            (ull)s->zero_rtt_invalid, (ull)s->zero_rtt_full, (ull)s->zero_rtt_other_port,
            (ull)s->zero_rtt_sent, (ull)s->zero_rtt_resent);
    if (shim_key() || s->handshakes_rejected || s->auth_failed || s->seal_failed)
        say(line, arg, "keyed: handshakes rejected %llu (no valid MAC), datagrams failing "
                       "authentication %llu, seals that failed (not sent, resent later) %llu",
            (ull)s->handshakes_rejected, (ull)s->auth_failed, (ull)s->seal_failed);
    if (s->key_refusals)
        say(line, arg, "key refusals: SYNs refused for their key state %llu (answered %llu)",
            (ull)s->key_refusals, (ull)s->key_refusals_sent);
    /* what the engines' cores hold now (RUDP_MEMORY's budget), not a drop */
    say(line, arg, "engine: threads %d (connections each %s), memory held %llu bytes; wake-ups "
                   "%llu (%llu by a deadline, late by %.1f us on average, longest turn %.1f ms); "
                   "its timerfd armed %llu times, slept on %llu times; connects that waited "
                   "for another engine's handshake answer %llu",
        n, per, (ull)t.memory, (ull)t.wakeups, (ull)t.timed_wakeups,
        t.timed_wakeups ? (double)t.late_ns / (double)t.timed_wakeups / 1000 : 0.0,
        (double)t.longest_turn / 1e6, (ull)t.tfd_arms, (ull)t.tfd_sleeps,
        (ull)atomic_load_explicit(&G.answer_waits, memory_order_relaxed));
    if (t.timer_missed || t.overslept) /* engine.c */
        say(line, arg, "engine timer: waits its timerfd did not end, ended %d ms past it %llu; "
                       "waits that ended past the core's deadline by that much %llu",
            (int)(SHIM_TIMER_SLACK / 1000000), (ull)t.timer_missed, (ull)t.overslept);
    print_app_paths(&t, line, arg);
    print_moderation(&t, line, arg);
    if (n > 1) /* forward.c */
        say(line, arg, "engines: datagrams handed to the engine of their connection %llu, taken "
                       "%llu, dropped %llu",
            (ull)ft[SHIM_FIG_HANDED_OUT], (ull)ft[SHIM_FIG_HANDED_IN],
            (ull)ft[SHIM_FIG_HANDED_DROPPED]);
    if (ft[SHIM_FIG_XG_OUT] || ft[SHIM_FIG_XG_IN] || ft[SHIM_FIG_XG_DROPPED] ||
        ft[SHIM_FIG_XG_ORPHANS] || ft[SHIM_FIG_XG_UNKNOWN]) /* xgroup.c */
        say(line, arg, "group of processes: datagrams forwarded to another process's member %llu, "
                       "taken from one %llu, dropped %llu, for a member gone %llu, not sent to "
                       "a name of another uid (or unknown) %llu",
            (ull)ft[SHIM_FIG_XG_OUT], (ull)ft[SHIM_FIG_XG_IN], (ull)ft[SHIM_FIG_XG_DROPPED],
            (ull)ft[SHIM_FIG_XG_ORPHANS], (ull)ft[SHIM_FIG_XG_UNKNOWN]);
    if (n > 1) /* fifo.c */
        say(line, arg, "accept order: connections held for their turn %llu, %.1f us on average",
            (ull)t.fifo_held,
            t.fifo_held ? (double)t.fifo_held_ns / (double)t.fifo_held / 1000 : 0.0);
    say(line, arg, "udp: datagrams sent %llu in %llu calls, %llu GSO trains (GSO %s, refused "
                   "%llu), %llu not taken; received %llu in %llu reads, %llu coalesced by GRO, "
                   "%llu dropped by a full receive buffer",
        (ull)u->datagrams_out, (ull)u->send_calls, (ull)u->trains,
        t.gso_on ? "on" : "off", (ull)u->gso_failed, (ull)u->send_dropped,
        (ull)u->datagrams_in, (ull)u->reads, (ull)u->coalesced, (ull)u->rx_dropped);
    if (t.squatted)
        say(line, arg, "handoffs refused (listener name held by another process) %llu",
            (ull)t.squatted);
    shim_fallback_print(line, arg);
    if (shim_front()->stats)
        shim_front()->stats(line, arg); /* rudp-supervise's (state.h) */
}

/* RUDP_STATS's sink: a block of the shim's log, at the stats level, its
 * lines indented under one "stats:" line (shim_log_block). The text is
 * gathered in one buffer (no stack to spare on a program's thread that
 * exits, no malloc); should two blocks be printed at once, the second
 * goes line by line. */
#define STATS_HEAD "the rudp engines' counters (RUDP_STATS):"
static char stats_text[8192];
static atomic_flag stats_busy = ATOMIC_FLAG_INIT;

typedef struct {
    size_t n;
    int own; /* holds stats_text; else each line is logged alone */
} stats_block;

static void log_line(void *arg, const char *text)
{
    stats_block *b = arg;
    if (!b->own) {
        shim_log(0, "%s", text);
        return;
    }
    size_t len = strlen(text);
    if (b->n + len + 3 > sizeof stats_text) { /* full: what is there goes first */
        shim_log_block(0, STATS_HEAD, stats_text, b->n);
        b->n = 0;
    }
    if (len + 3 > sizeof stats_text)
        len = sizeof stats_text - 3;
    memcpy(stats_text + b->n, "  ", 2);
    memcpy(stats_text + b->n + 2, text, len);
    b->n += len + 2;
    stats_text[b->n++] = '\n';
}

static void log_figures(const engine_figures *fig, int n)
{
    stats_block b = {0, !atomic_flag_test_and_set(&stats_busy)};
    if (!b.own)
        shim_log(0, "%s", STATS_HEAD);
    shim_engine_print_figures(fig, n, log_line, &b);
    if (b.own) {
        if (b.n)
            shim_log_block(0, STATS_HEAD, stats_text, b.n);
        atomic_flag_clear(&stats_busy);
    }
}

/* At exit, and in a keeper at its end: the engines are paused or done. */
void shim_engine_print_stats(void)
{
    if (!G.nrun || G.pid != shim_procenv_self()) {
        if (shim_ident_refused())
            shim_log(0, "foreign connections to our listeners refused %llu",
                     (unsigned long long)shim_ident_refused());
        return;
    }
    engine_figures fig[SHIM_ENGINES_MAX];
    for (int k = 0; k < G.nrun; k++)
        shim_engine_figures(&G.e[k], &fig[k]);
    log_figures(fig, G.nrun);
}

void shim_engine_stats_answer(struct engine *e)
{
    engine_figures fig[SHIM_ENGINES_MAX];
    int n = 0, all = 1;
    shim_mutex_lock(&G.mu);
    if (!e->fig_taken) {
        shim_engine_figures(e, &e->fig);
        e->fig_taken = 1;
        for (int k = 0; k < G.nrun; k++) {
            if (!G.e[k].fig_taken && !G.e[k].broken)
                all = 0;
            fig[n++] = G.e[k].fig;
        }
    } else {
        all = 0; /* answered already */
    }
    shim_mutex_unlock(&G.mu);
    if (!all)
        return;
    log_figures(fig, n);
    atomic_store(&G.stats_printed, 1);
}

int shim_engine_stats_request(void)
{
    int n = __atomic_load_n(&G.nrun, __ATOMIC_ACQUIRE);
    if (!n || __atomic_load_n(&G.pid, __ATOMIC_RELAXED) != shim_procenv_self())
        return 0;
    atomic_store(&G.stats_asked, 1);
    for (int k = 0; k < n; k++) {
        uint64_t one = 1;
        ssize_t w = real_write(G.e[k].evfd, &one, sizeof one);
        (void)w;
    }
    return 1;
}

int shim_engine_stats_printed(void)
{
    return atomic_load(&G.stats_printed);
}
