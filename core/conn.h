/*
 * conn.h: internal structures shared by ctx.c (context, tables, handshake
 * demultiplexing) and the connection: conn.c (its state machine),
 * conn_input.c (what it receives), conn_output.c (what it sends). Not part
 * of the public API: the shim sees only rudp.h.
 */
#ifndef RUDP_CONN_H
#define RUDP_CONN_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "cc/cc.h"
#include "crypto.h"
#include "path.h"
#include "pmtu.h"
#include "ranges.h"
#include "recovery.h"
#include "rtt.h"
#include "rudp.h"
#include "sbuf.h"
#include "seq.h"
#include "table.h"
#include "timer.h"
#include "token.h"
#include "wire.h"

/* Connection timers; every one goes through the context's wheel. */
enum rudp_timer_kind {
    RUDP_T_HANDSHAKE, /* retransmit SYN / SYNACK */
    RUDP_T_LOSS,      /* loss time threshold or probe timeout */
    RUDP_T_ACK,       /* delayed ACK */
    RUDP_T_PACE,      /* pacer releases the next packet */
    RUDP_T_KEEPALIVE, /* idle: send a PING */
    RUDP_T_IDLE,      /* nothing heard for idle_timeout */
    RUDP_T_GIVEUP,    /* connect_timeout, then user_timeout */
    RUDP_T_DRAIN,     /* TIME_WAIT ends */
    RUDP_T_LINGER,    /* a released connection's time to finish */
    RUDP_T_PATH,      /* path validation: the next challenge, or giving up */
    RUDP_T_CORK,      /* TCP_CORK's ceiling: send what it holds (tune.c) */
    RUDP_T_RXHOLD,    /* rx_hold's ceiling: RUDP_EV_READABLE for what came */
    RUDP_T_STANDBY,   /* client: the standby's next challenge, or its answer's wait */
    RUDP_T_COUNT
};

#define RUDP_TOKEN_LEN 12        /* issue time (4) + MAC (8) */
#define RUDP_TOKEN_LIFETIME 10   /* in units of 2^30 ns (~1.07 s) */
#define RUDP_RX_RANGES_KEPT 32   /* packet-number ranges an ACK reports */
#define RUDP_STREAM_RANGES_MAX 4096
#define RUDP_RETRY_MAX 3         /* RETRYs a client follows per connection */
/* A loopback SYN whose SYNACK is held this long (its place in the
 * application's queue not reached: rudp_listener_set_early_accept) is
 * answered with a RETRY, once: the client then knows rudp is there and
 * waits for it rather than racing kernel TCP at its probe delay (250 ms,
 * shim/engine/fallback.c). A third of that delay, so that a SYN retried
 * once, the RETRY's and the client's own, comes in time. */
#define RUDP_HELD_NOTICE RUDP_MS(50)
#define RUDP_FIN_NONE UINT64_MAX
#define RUDP_RWND_INITIAL (64u * 1024u) /* receive window before auto-tuning */
/* TIME_WAIT begun again by the peer's packets at most this many times
 * (conn_input.c): a peer's FIN resent after lost ACKs comes 1, 2, 4...
 * probe timeouts after the last, and a wait of three covers the next copy
 * while that gap is under three: two restarts are what that takes, one
 * more is slack, and no peer holds the connection longer */
#define RUDP_TW_RESTARTS 3
#define RUDP_SNDBUF_MIN (256u * 1024u)   /* send buffer however small the cwnd */

/* Key of the peer table: who the peer is and the ID it chose. */
typedef struct rudp_peer_key {
    rudp_addr addr;
    uint64_t cid;
} rudp_peer_key;

struct rudp_conn {
    rudp_ctx *ctx;
    rudp_listener *listener;
    void *user;
    rudp_state state;
    int error;
    uint32_t sock;
    uint64_t cid;        /* ours: the peer sends to it */
    rudp_peer_key pkey;  /* peer address and the peer's connection ID */
    rudp_addr local;     /* where the client's SYN was addressed (server side) */
    int has_local;
    uint64_t send_tag;   /* the caller's, for its send_from (tune.c) */
    rudp_config cfg;
    uint32_t mss;        /* datagram bytes we send (pmtu.c moves it) */
    rudp_pmtu pmtu;
    uint32_t pmtu_probes, pmtu_probes_lost, pmtu_fallbacks; /* this connection's, all paths */

    unsigned is_server : 1;
    unsigned peer_addrs : 1;       /* server: the client's SYN said it takes SERVER_ADDR */
    unsigned released : 1;
    unsigned in_cid_table : 1;
    unsigned in_peer_table : 1;
    unsigned shut_wr : 1;          /* FIN requested */
    unsigned fin_sent : 1;
    unsigned fin_acked : 1;
    unsigned fin_received : 1;     /* every byte up to peer_fin arrived */
    unsigned want_writable : 1;
    unsigned cork : 1;             /* TCP_CORK: hold a partial datagram (tune.c) */
    unsigned cork_release : 1;     /* ... its ceiling passed: send what is held */
    unsigned max_data_pending : 1;
    unsigned ping_pending : 1;
    unsigned ack_now : 1;
    unsigned rx_unacked : 1;       /* received packets not yet acknowledged */
    unsigned rx_more : 1;          /* the packet being read lacks ACK_NOW: its sender has
                                      more to send (conn_input.c: rx_hold) */
    unsigned rx_held : 1;          /* RUDP_EV_READABLE held back (rx_hold) */
    unsigned dirty : 1;
    unsigned in_ev : 1;
    unsigned dead : 1;
    unsigned hs_sample_ok : 1;     /* one handshake packet out: RTT sample is unambiguous */
    unsigned queued : 2;           /* in a listener's queue: RUDP_Q_* (budget.c) */
    unsigned opened : 1;           /* reached ESTABLISHED (report.c) */
    unsigned user_held : 1;        /* the caller has it: conn_freed tells when it goes */
    unsigned slow_warned : 1;      /* the slow-handshake warning was given */
    unsigned auth_failed : 1;      /* keyed, SYN_SENT: an answer failed authentication */
    unsigned key_said : 2;         /* ... one said the peer's key state: RUDP_KEY_SAID_* */
    unsigned auth_heard : 1;       /* keyed, SYN_SENT: an answer passed authentication (a
                                      RETRY): no key verdict then (keystate.c) */
    uint8_t cause;                 /* rudp_cause of a failure */
    uint8_t tw_restarts;           /* TIME_WAIT begun again by the peer's packets
                                      (conn_input.c: at most RUDP_TW_RESTARTS) */
    rudp_addr name_local;          /* the local address log lines show (family 0: none) */

    /* handshake */
    uint8_t token[RUDP_TOKEN_MAX];
    uint8_t token_len;
    uint8_t retries;   /* RETRYs followed since the last SYN the timer sent */
    uint8_t retried;   /* a RETRY ever came: the peer runs rudp (rudp_conn_answered) */
    uint32_t hs_count; /* handshake packets sent */
    rudp_time hs_sent_time;
    rudp_time hs_start;
    rudp_time key_verdict_at; /* keyed, SYN_SENT, auth_failed: fail then (keystate.c) */
    /* server, SYN_RCVD without a cookie: the client's address is not
     * validated until its first DATA (or a SYN with a cookie), and what we
     * send it stays within 3x what came from it (RFC 9000 §8.1) */
    unsigned unvalidated : 1;
    uint32_t hs_bytes_in, hs_bytes_out;

    /* zero round trips (token.h, token.c). Client: the SYN's stream bytes
     * [0, zrtt_len), fixed at the first SYN; the SYN held for the first
     * write; the token the server gave us. Server: the SYN's bytes were
     * taken (the SYNACK says so); nothing heard since that SYN (a repeated
     * SYN earns the SYNACK again); the token still to give. */
    uint16_t zrtt_len;
    unsigned zrtt_hold : 1;
    unsigned zrtt_taken : 1;
    unsigned zrtt_unconfirmed : 1;
    unsigned token_due : 1;
    unsigned accept_early : 1; /* server: reported at its SYN (rudp__conn_accept_early) */
    unsigned synack_held : 1;  /* ... its SYNACK waits for rudp_conn_accepted */
    unsigned held_noticed : 1; /* ... and a RETRY told the client so (RUDP_HELD_NOTICE) */
    unsigned abort_deferred : 1; /* ... aborted by its app before its client's first
                                  * DATA: the reset goes once established */
    unsigned abort_after_fin : 1; /* ... with RUDP_RESET_AFTER_FIN */
    unsigned reset_pending : 1;   /* a reset once what is queued has gone out
                                   * (rudp__conn_reset_when_sent) */
    unsigned reset_after_fin : 1; /* ... with RUDP_RESET_AFTER_FIN */
    unsigned in_zrtt_table : 1;
    rudp_time reset_by; /* reset_pending: the latest its wait may end (its start + linger) */
    uint64_t zrtt_id; /* server: the ID of the token the SYN's bytes were taken with */
    uint8_t new_token_len;
    uint8_t new_token[RUDP_TOKEN_MAX];

    /* send stream: bytes [snd_una, snd_end) are held in sbuf */
    rudp_sbuf sbuf;
    uint64_t snd_una, snd_nxt, snd_end;
    uint64_t fin_off; /* RUDP_FIN_NONE until shutdown */
    rudp_ranges acked; /* acknowledged ranges above snd_una */
    rudp_ranges retx;  /* lost ranges to send again */
    uint64_t peer_max_data;
    uint64_t blocked_at;   /* limit we reported DATA_BLOCKED at, 0 none */
    unsigned blocked_pending : 1;
    uint8_t persist_n;     /* window probes sent while blocked (rudp__conn_keepalive_wait) */
    uint32_t probes;       /* PTO probes still to send */
    rudp_time repair_next; /* no copy of a write's last packet before (conn_output.c) */

    /* receive stream: bytes [rcv_read, ...) are held in rbuf */
    rudp_sbuf rbuf;
    uint64_t rcv_read, rcv_contig;
    uint64_t peer_fin; /* RUDP_FIN_NONE until the peer's FIN */
    uint64_t max_data_sent;
    uint64_t rwnd;        /* window advertised now: grows as the app reads fast */
    rudp_time rwnd_start; /* when the window last grew */
    uint64_t rwnd_read;   /* rcv_read when the window last grew */
    rudp_ranges rcv; /* received ranges above rcv_contig */

    /* the urgent mark (urgent.c): ours, and the peer's */
    uint64_t urg_snd;      /* offset of our urgent byte */
    uint64_t urg_first_pn; /* first packet that may carry it */
    unsigned urg_snd_set : 1;
    unsigned urg_snd_acked : 1; /* a packet carrying it was acknowledged */
    unsigned urg_rcv_set : 1;
    uint64_t urg_rcv;      /* offset of the peer's urgent byte */

    /* acknowledgements we owe */
    rudp_ranges rx_pns;
    uint64_t rx_floor;    /* packet numbers below it count as duplicates */
    uint64_t rx_largest;
    int rx_any;
    rudp_time rx_largest_time;
    uint32_t rx_eliciting; /* ack-eliciting packets since our last ACK */
    /* ACK decimation (conn_input.c): ack-eliciting packets received in the
     * round (a smoothed RTT) that began at rx_round_start, and in the last
     * whole one */
    uint32_t rx_round_pkts, rx_rate_pkts;
    rudp_time rx_round_start;

    rudp_recovery rec;
    rudp_recovery_cb rec_cb; /* on_acked/on_lost with this connection */
    rudp_rtt rtt;
    rudp_cc cc;
    rudp_time pace_time;   /* the next packet's paced departure */
    int pace_held;         /* the pacer held data back: nothing leaves before
                              pace_time, then a burst (conn_output.c) */
    int pace_late;         /* ... and let it go: the burst may catch up 1 ms */
    rudp_time last_rx;

    /* ICMP (icmp.c): an error quoting one of our packets opened an episode
     * at packet number icmp_pn, when the last packet heard was at icmp_rx */
    unsigned icmp_episode : 1;
    uint64_t icmp_pn;
    rudp_time icmp_rx;

    rudp_timer timers[RUDP_T_COUNT];
    unsigned events;
    rudp_conn *ev_next;
    rudp_conn *dirty_next;
    rudp_conn *dead_next;
    rudp_conn *all_next, *all_prev; /* ctx->all: every connection */
    UT_hash_handle hh;      /* ctx->by_cid, key cid */
    UT_hash_handle hh_peer; /* ctx->by_peer, key pkey */
    UT_hash_handle hh_zrtt; /* ctx->by_zrtt, key zrtt_id (a server's 0-RTT connection) */

    /* lifetime counters for TCP_INFO */
    uint64_t bytes_sent, bytes_received, bytes_retx;

    /* trace.c: the trace handle (NULL: not traced), whether the tracer was
     * asked */
    void *trace;
    int trace_asked;

    rudp_conn_keyed *keyed; /* crypto.c: NULL unless the context is keyed */

    rudp_path path;         /* path.c: where we send, a new peer address */
    rudp_time longest_silence; /* longest time between two packets from the peer */
    uint32_t silent_told;   /* pto_count at the last RUDP_EV_SILENT, 0: none since heard */
    rudp_time waiting_since; /* when the current run of probe timeouts began (its first) */
    /* rxstamp.c: a server connection's: the caller's stamp of the datagram
     * that established it, and of the SYN it was made from (0: none given) */
    uint64_t accept_stamp, syn_stamp;
};

typedef struct rudp_source rudp_source;

struct rudp_listener {
    rudp_ctx *ctx;
    uint32_t sock;
    rudp_config cfg;
    unsigned backlog;
    unsigned syn_rcvd;     /* connections in SYN_RCVD */
    unsigned waiting;      /* accepted, not yet taken by the application */
    unsigned handing;      /* accepted, being handed to it (RUDP_Q_HAND) */
    rudp_acceptq_ops aq;   /* the caller's accept queue, or zeros */
    void *aq_arg;
    rudp_source *sources;  /* per source address: syn_rcvd + waiting (budget.c) */
    rudp_addr name_local;  /* its address, for its connections' names (report.c) */
    uint8_t no_keyed_reset; /* rudp_listener_set_keyed_reset(l, 0) */
    rudp_time quiet_until;  /* rudp_listener_quiet_resets: no reset before */
    unsigned member_tag;   /* rudp_listener_set_member_tag: its IDs' member field */
    uint8_t zero_rtt;      /* rudp_listener_set_zero_rtt: tokens and 0-RTT (token.c) */
    uint8_t early_accept;  /* rudp_listener_set_early_accept */
    UT_hash_handle hh; /* ctx->listeners, key sock */
};

/* Where a server connection stands in its listener's queue. */
/* RUDP_Q_HAND: established and reported (RUDP_EV_ACCEPT), not yet taken
 * by the application (rudp_conn_set_waiting(c, 0)): held by the accept
 * queue the caller counts (rudp_acceptq_ops), not by the listener's own
 * bounds. */
enum { RUDP_Q_NONE = 0, RUDP_Q_SYN, RUDP_Q_WAIT, RUDP_Q_HAND };

typedef struct rudp_conn_host rudp_conn_host;

/* late.c: what a peer address's connections learned, in the window that
 * began at start (cur) and the one before it (prev): the longest RTT
 * sample, and the longest answer to a packet whose probe timeout fired in
 * vain. */
#define RUDP_LATE_SLOTS 64
typedef struct rudp_late_slot {
    uint64_t tag; /* the address's hash; 0: empty */
    rudp_time start;
    rudp_time rtt_cur, rtt_prev, late_cur, late_prev;
} rudp_late_slot;
/* A connection to peer took an RTT sample (0: none) and found a probe
 * timeout in vain, its original answered `late` after it was sent (0:
 * none): recovery.c's r->sample and r->late. */
void rudp__late_note(rudp_ctx *ctx, const rudp_addr *peer, rudp_time sample, rudp_time late,
                     rudp_time now);
/* The probe timeout's floor for a connection to peer that has taken
 * `samples` RTT samples: 0 (none beyond RUDP_PTO_MIN), or a quarter more
 * than the longest answer in vain noted in the last one to two seconds
 * and, while the connection has fewer than RUDP_LATE_YOUNG samples, than
 * the longest RTT sample; at most RUDP_LATE_FLOOR_MAX. */
rudp_time rudp__late_floor(const rudp_ctx *ctx, const rudp_addr *peer, rudp_time now,
                           uint32_t samples);
#define RUDP_LATE_YOUNG 4

struct rudp_ctx {
    rudp_ctx_ops ops;
    rudp_mem allocator;         /* where its memory comes from (alloc.h) */
    const rudp_aead_backend *aead; /* rudp_ctx_set_aead's; NULL: libsodium only */
    const rudp_conn_host *host; /* ctx.c's services for its connections (below) */
    void *user;
    rudp_config defaults;
    int log_level;
    uint8_t cid_key[16];
    uint8_t cookie_key[16];
    uint8_t atoken_key[16]; /* address tokens' MAC key (token.c), from cookie_key */
    uint64_t cid_counter;
    unsigned cid_tag_bits, cid_tag; /* rudp_ctx_set_cid_tag: the IDs' top bits */
    unsigned cid_member_bits;  /* rudp_ctx_set_member_bits: above the tag */
    unsigned cid_member_next;  /* the next rudp__new_cid's member field */
    rudp_conn *by_cid;
    rudp_conn *by_peer;
    rudp_conn *by_zrtt; /* connections made by a 0-RTT SYN, by token ID (zrtt.c) */
    rudp_listener *listeners;
    rudp_wheel wheel;
    rudp_conn *ev_head, *ev_tail;
    rudp_conn *dirty_head;
    rudp_conn *dead_head;
    rudp_conn *all;
    size_t nconns;
    rudp_time now; /* time of the call being processed */
    uint64_t mem, mem_limit; /* budget.c: what remote peers make us hold */
    /* Buffer chunks freed and kept for reuse (sbuf.h): at most
     * RUDP_CHUNK_POOL_MAX, 2 MiB, outside the budget above. */
    rudp_chunk_pool chunks;
    rudp_stats stats;
    rudp_trace_ops trace_ops; /* trace.c; trace_ops.open NULL: off */
    rudp_ctx_keyed *keyed;    /* crypto.c: NULL unless rudp_ctx_set_key */
    /* keyreset.c: keyed stateless resets sent in the second that began at
     * reset_window; none at all while keyed_reset_off */
    rudp_time reset_window;
    unsigned resets_in_window;
    uint8_t keyed_reset_off;
    /* keystate.c: KEY refusals sent in the second that began at
     * key_refusal_window; warn lines in the minute from key_log_window, and
     * the last peers (address, what their SYN had) told of once */
    rudp_time key_refusal_window, key_log_window;
    unsigned key_refusals_in_window, key_logs_in_window;
    struct rudp_key_told {
        uint8_t ip[16];
        uint16_t family;
        uint8_t what;
    } key_told[16];
    unsigned key_told_next;
    uint8_t cid_token_next; /* the next rudp__new_cid gets RUDP_CID_TOKEN_BIT */
    void *trace_user;
    uint64_t rx_stamp; /* rxstamp.c: the caller's stamp of the datagrams it feeds now */
    rudp_strike strike; /* strike.c: address token IDs used (0-RTT) */
    rudp_late_slot late[RUDP_LATE_SLOTS]; /* late.c: peers that answered late */
    uint8_t pkt[65536]; /* scratch for building one datagram */
};

/* The core's clock never goes back. A caller may hand in a time older than
 * one it passed before (an engine times each batch of datagrams as it reads
 * it, then handles the rest of its turn at the turn's start): such a call is
 * timed at the newest time seen, so RTT samples, timers and traces never
 * run backwards. Every public entry that takes a time goes through here. */
static inline rudp_time rudp__clock(rudp_ctx *ctx, rudp_time now)
{
    if (now > ctx->now)
        ctx->now = now;
    return ctx->now;
}

/* ---- the context as its connections see it ----
 *
 * ctx.c owns the connections and calls the conn*.c entry points (below) by
 * name; the calls never go the other way. A connection, and the files that
 * work on one (conn_app, path, tune, urgent, report, trace, keyreset), reach
 * their context only through what they are given, c->ctx:
 *
 *  - the fields of struct rudp_ctx: the caller's callbacks (ops), the
 *    counters and the queues. What is done per packet, per event or per
 *    wake-up (send a datagram, queue an event, mark a connection dirty)
 *    is a few lines over them, inline here: no call at all.
 *  - ctx->host, the context's services that keep its own state (the tables,
 *    the ID generator and its secret, the dead list), a table of functions
 *    ctx.c sets once in rudp_ctx_new. Those run at a connection's set-up,
 *    move and end, never per packet, so the indirect call costs nothing
 *    measurable.
 *
 * So no object of the connection's side has an undefined symbol defined in
 * ctx.o (tests/check_core_layers.sh). */

/* A datagram to peer on sock: `local` the address the peer sent to, if
 * known (NULL), `tag` its connection's send tag (0: a stateless answer). */
static inline void rudp__send(rudp_ctx *ctx, uint32_t sock, const rudp_addr *peer,
                              const rudp_addr *local, uint64_t tag, const uint8_t *buf,
                              size_t len)
{
    ctx->stats.dgrams_out++;
    ctx->stats.bytes_out += len;
    if (ctx->ops.send_from)
        ctx->ops.send_from(ctx->user, sock, peer, local, tag, buf, len);
    else
        ctx->ops.send(ctx->user, sock, peer, buf, len);
}

/* A line to the caller's log at `level`, if it logs that level. */
static inline __attribute__((format(printf, 3, 4))) void
rudp__log(rudp_ctx *ctx, int level, const char *fmt, ...)
{
    if (!ctx->ops.log || level > ctx->log_level)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ctx->ops.log(ctx->user, level, msg);
}

/* Queues ev for the caller's rudp_ctx_next_event (once per connection
 * until taken; nothing once released). */
static inline void rudp__conn_event(rudp_conn *c, unsigned ev)
{
    if (c->released)
        return;
    c->events |= ev;
    if (c->in_ev)
        return;
    rudp_ctx *ctx = c->ctx;
    c->in_ev = 1;
    c->ev_next = NULL;
    if (ctx->ev_tail)
        ctx->ev_tail->ev_next = c;
    else
        ctx->ev_head = c;
    ctx->ev_tail = c;
}

/* c has something to send: rudp_ctx_process flushes it. */
static inline void rudp__conn_dirty(rudp_conn *c)
{
    if (c->dirty || c->dead)
        return;
    c->dirty = 1;
    c->dirty_next = c->ctx->dirty_head;
    c->ctx->dirty_head = c;
}

/* The context's services (ctx.c), through ctx->host; the wrappers below
 * keep the names their callers use. */
struct rudp_conn_host {
    /* a fresh connection ID, in no table yet: the tag and member bits,
     * keyed its MAC (keyreset.c) */
    uint64_t (*new_cid)(rudp_ctx *ctx);
    /* 64 bits no one can predict without the context's secret seed (a PRF
     * of it and a counter): path challenges, the controllers' draws */
    uint64_t (*random64)(rudp_ctx *ctx);
    /* c into the table by its ID, by its peer (0 or -ENOMEM); out of both */
    int (*table_add_cid)(rudp_ctx *ctx, rudp_conn *c);
    int (*table_add_peer)(rudp_ctx *ctx, rudp_conn *c);
    void (*table_remove)(rudp_ctx *ctx, rudp_conn *c);
    /* c's peer address becomes `addr`, in the peer table too */
    void (*table_rekey_peer)(rudp_ctx *ctx, rudp_conn *c, const rudp_addr *addr);
    /* c leaves the tables and is freed at the end of rudp_ctx_process */
    void (*kill)(rudp_conn *c);
    /* a RESET packet to dcid: a keyed refusal's MAC bound to client_pub,
     * or a stateless reset's token (RUDP_RESET_TOKEN bytes, keyreset.c);
     * both NULL unkeyed. Counted in resets_sent. */
    void (*send_reset)(rudp_ctx *ctx, uint32_t sock, const rudp_addr *local,
                       const rudp_addr *peer, uint64_t dcid, const uint8_t *client_pub,
                       const uint8_t *token);
};

static inline uint64_t rudp__new_cid(rudp_ctx *ctx) { return ctx->host->new_cid(ctx); }
static inline uint64_t rudp__random64(rudp_ctx *ctx) { return ctx->host->random64(ctx); }
static inline int rudp__table_add_cid(rudp_ctx *ctx, rudp_conn *c)
{
    return ctx->host->table_add_cid(ctx, c);
}
static inline int rudp__table_add_peer(rudp_ctx *ctx, rudp_conn *c)
{
    return ctx->host->table_add_peer(ctx, c);
}
static inline void rudp__table_remove(rudp_ctx *ctx, rudp_conn *c)
{
    ctx->host->table_remove(ctx, c);
}
static inline void rudp__table_rekey_peer(rudp_ctx *ctx, rudp_conn *c, const rudp_addr *addr)
{
    ctx->host->table_rekey_peer(ctx, c, addr);
}
static inline void rudp__conn_kill(rudp_conn *c) { c->ctx->host->kill(c); }
static inline void rudp__send_reset(rudp_ctx *ctx, uint32_t sock, const rudp_addr *local,
                                    const rudp_addr *peer, uint64_t dcid,
                                    const uint8_t *client_pub, const uint8_t *token)
{
    ctx->host->send_reset(ctx, sock, local, peer, dcid, client_pub, token);
}

/* ctx.c: the connection with our ID cid, or with the peer's (address and
 * its ID); NULL if none. For icmp.c, which answers for the context. */
rudp_conn *rudp__find_cid(rudp_ctx *ctx, uint64_t cid);
rudp_conn *rudp__find_peer(rudp_ctx *ctx, const rudp_addr *peer, uint64_t peer_cid);

/* tune.c: TCP_NOTSENT_LOWAT, else unsent_cap: the bound on unsent bytes
 * (0: none). The send space `space` as the bound leaves it
 * (none while half the bound or more waits unsent, else at most up to
 * the bound). rudp__tune_sent, after new bytes went out: RUDP_EV_WRITABLE
 * for a writer waiting once fewer than half the bound wait unsent, and
 * TCP_CORK's ceiling ends once nothing is held. */
uint32_t rudp__unsent_bound(const rudp_conn *c);
size_t rudp__lowat_space(const rudp_conn *c, size_t space);
void rudp__tune_sent(rudp_conn *c);

/* tune.c: TCP_CORK. Whether new bytes wait (corked, less than a datagram
 * of them, no FIN to send); after a flush, the ceiling's timer for what
 * waits; and what that timer does. */
int rudp__cork_holds(const rudp_conn *c);
void rudp__cork_arm(rudp_conn *c, rudp_time now);
void rudp__cork_expired(rudp_conn *c);
/* The rate c paces at now, bytes/s: the controller's, or derived from cwnd
 * and the smoothed RTT (saturated at UINT64_MAX). Inline: a function of
 * c's fields alone, which the pacer asks per packet and trace.c and
 * conn_app.c (TCP_INFO) report, without calling back into conn.c. */
static inline uint64_t rudp__conn_pacing_rate(const rudp_conn *c)
{
    if (c->cc.pacing_rate)
        return c->cc.pacing_rate;
    rudp_time srtt = c->rtt.smoothed ? c->rtt.smoothed : 1;
    /* Linux's defaults: twice the window per RTT in slow start, 1.2x after. */
    uint64_t gain_x4 = c->cc.cwnd < c->cc.ssthresh ? 8 : 5;
    unsigned __int128 r = (unsigned __int128)c->cc.cwnd * gain_x4 * 1000000000ull / 4 / srtt;
    return r > UINT64_MAX ? UINT64_MAX : (uint64_t)r;
}


/* ---- budget.c: bounds on what remote senders can make us hold ---- */

/* Whether a SYN without a cookie from `peer` must earn a stateless RETRY
 * rather than make a connection on `l` (the listener is under pressure, or
 * its cfg.retry says always): 1 or 0. Counts the reason. */
int rudp__must_retry(rudp_listener *l, const rudp_addr *peer);
/* Whether a handshake from `peer` (a valid cookie, or none when
 * rudp__must_retry said 0) may create a connection on `l`: 0, -EAGAIN
 * (drop it: backlog, accept queue or the source's share full; the client
 * retries) or -ENOMEM (refuse it: over the memory budget). Counts the
 * reason. */
int rudp__admit(rudp_listener *l, const rudp_addr *peer);
/* Moves c to RUDP_Q_* in its listener's queue, keeping the counts. */
void rudp__queue(rudp_conn *c, int q);
/* Whether stream bytes [lo, end) may be stored in c's receive buffer now;
 * counts a refusal. */
int rudp__rx_may_store(rudp_conn *c, uint64_t lo, uint64_t end);
/* Whether c's receive window may grow on the peer's DATA_BLOCKED at
 * `limit`, its reader having taken the stream up to `taken`. */
int rudp__window_may_grow(const rudp_conn *c, uint64_t limit, uint64_t taken);
/* Frees a listener's per-source table. */
void rudp__sources_free(rudp_listener *l);

/* ---- zrtt.c: zero round trips, the connection's side ---- */

/* Server, in input_syn: whether a SYN's address token holds for listener
 * l and `peer` (a 0-RTT listener's, its MAC, address and age), with its ID
 * and issue time; counts a refusal (zero_rtt_invalid). Records nothing: a
 * SYN dropped for a full backlog after it keeps its token good for the
 * client's retry. */
int rudp__zrtt_check_syn(rudp_ctx *ctx, rudp_time now, const rudp_listener *l,
                         const rudp_addr *peer, const rudp_hdr *h, uint64_t *id,
                         uint32_t *issued);
/* ... and, once the connection may be made, records the ID as used in the
 * strike register: 1 if it was unused (the address is proven and the SYN's
 * data may be taken), 0 if not (counted: replayed, or the register cannot
 * vouch for it), the SYN then handled as one without a token. */
int rudp__zrtt_record(rudp_ctx *ctx, rudp_time now, uint64_t id, uint32_t issued);
/* conn.c: c's SYNACK to `to`, once, on no timer (ctx.c, zrtt_other_port). */
void rudp__conn_synack_to(rudp_conn *c, rudp_time now, const rudp_addr *to);
/* Server: c, just made from such a SYN (its SYNACK not yet sent), takes
 * the stream bytes of the SYN's frames (n bytes: unkeyed, the SYN after
 * its header; keyed, decrypted) into its receive stream. Returns 1 if
 * taken (the SYNACK will say so; rudp__zrtt_established once it is sent),
 * 0 if not: none, or no room (the handshake goes on as 1-RTT). */
int rudp__zrtt_take(rudp_conn *c, rudp_time now, const uint8_t *frames, size_t n);
/* conn.c: ... then c is established at once and offered for accept, as
 * a connection whose client has been heard: the token proved its address. */
void rudp__zrtt_established(rudp_conn *c, rudp_time now);
/* Client: writes the SYN's STREAM frame at p (cap bytes free), fixing
 * zrtt_len at the first SYN. Returns bytes written (0: none). */
size_t rudp__zrtt_syn_frames(rudp_conn *c, uint8_t *p, size_t cap);
/* Client: the SYNACK came (flags from its header): the SYN's bytes are
 * acknowledged, or to be sent again. */
void rudp__zrtt_on_synack(rudp_conn *c, uint8_t flags);
/* Server: established: the NEW_TOKEN goes (once; lost, the client has
 * none next time and connects as before). */
void rudp__zrtt_issue(rudp_conn *c, rudp_time now);
/* Client: a NEW_TOKEN frame arrived. */
void rudp__zrtt_on_token(rudp_conn *c, const uint8_t *tok, size_t len);

/* ---- report.c: log lines about a connection ---- */

void rudp__report_open(rudp_conn *c);
void rudp__report_close(rudp_conn *c, const char *why);
void rudp__report_slow_connect(rudp_conn *c);

/* A rate of `max` events in each `span` from the first: 1 if one more
 * fits now (and it is counted in *n; *window is when the span began). */
static inline int rudp__rate_take(rudp_time *window, unsigned *n, unsigned max, rudp_time span,
                                  rudp_time now)
{
    if (*n == 0 || now - *window >= span) {
        *window = now;
        *n = 0;
    }
    if (*n >= max)
        return 0;
    (*n)++;
    return 1;
}

/* keystate.c: a SYN refused for its key state (a keyed one to an unkeyed
 * context, or one failing a keyed context's MAC): counted, answered with a
 * KEY refusal within RUDP_KEY_REFUSALS_MAX a second, told once per peer
 * address at warn within RUDP_KEY_LOGS_MAX a minute; `name`: the local
 * address that line shows (NULL: unknown). */
#define RUDP_KEY_REFUSALS_MAX 100
#define RUDP_KEY_LOGS_MAX 5
enum { RUDP_KEY_SAID_NOTHING = 0, RUDP_KEY_SAID_UNAUTH, RUDP_KEY_SAID_NONE, RUDP_KEY_SAID_KEY };
void rudp__key_refuse(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *local,
                      const rudp_addr *name, const rudp_addr *peer, const rudp_hdr *h);
/* A keyed client's handshake answer failed authentication (h: its header):
 * noted, and the connect's verdict armed (RUDP_KEY_VERDICT). */
void rudp__key_unauth_answer(rudp_conn *c, rudp_time now, const rudp_hdr *h);
/* conn.c: when a connect's GIVEUP timer must fire next (the slow
 * warning, the connect timeout, the key verdict). */
rudp_time rudp__conn_giveup_at(const rudp_conn *c);

/* ---- the connection's entry points for ctx.c (conn.c, conn_input.c,
 * conn_output.c) ---- */

int rudp__conn_alloc(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *peer,
                     const rudp_config *cfg, rudp_conn **out);
void rudp__conn_destroy(rudp_conn *c);
/* A SYN of `len` bytes made c (SYN_RCVD, the SYNACK goes, or with `hold`
 * waits for rudp_conn_accepted); `validated`: it carried a valid cookie,
 * else c may send at most 3x what its address sent until that address is
 * validated. */
int rudp__conn_accept_syn(rudp_conn *c, rudp_time now, const rudp_hdr *h, size_t len,
                          int validated, int hold);
/* Whether a is a loopback address (127/8, ::1, ::ffff:127.0.0.0/104): one
 * nobody outside the host can send from (budget.c). */
int rudp__addr_loopback(const rudp_addr *a);
/* c, just made from a loopback client's SYN (SYN_RCVD, its SYNACK held),
 * is reported with RUDP_EV_ACCEPT now (rudp_listener_set_early_accept). */
void rudp__conn_accept_early(rudp_conn *c);
/* cookie.c: whether tok (len bytes) is a cookie this context made for
 * `peer`'s SYN of `scid`, still fresh; and a RETRY with a fresh one from
 * listener socket `sock` (its local address, NULL if unknown) to `peer`'s
 * SYN of `client_cid`, held: RUDP_PKTF_HELD (the SYN taken, its SYNACK
 * held), sent and not counted. */
int rudp__cookie_valid(const rudp_ctx *ctx, rudp_time now, const rudp_addr *peer, uint64_t scid,
                       const uint8_t *tok, size_t len);
void rudp__send_retry(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *local,
                      const rudp_addr *peer, uint64_t client_cid, const uint8_t *client_pub,
                      int held);
/* The client sent its SYN (`len` bytes; `validated`: with a valid cookie)
 * again. */
void rudp__conn_dup_syn(rudp_conn *c, rudp_time now, size_t len, int validated);
void rudp__conn_input_handshake(rudp_conn *c, rudp_time now, const rudp_hdr *h);
/* What rudp__conn_input_data made of a packet. */
enum {
    RUDP_RX_TAKEN = 1,       /* new (not a duplicate) and processed */
    RUDP_RX_LARGEST = 2,     /* the highest packet number received so far */
    RUDP_RX_NON_PROBING = 4, /* carries more than PATH_* frames and padding */
    RUDP_RX_PING_ONLY = 8,   /* PINGs and padding only (a probe's copy, standby.c) */
};
/* Returns RUDP_RX_* bits. */
int rudp__conn_input_data(rudp_conn *c, rudp_time now, const rudp_hdr *h, const uint8_t *p,
                          size_t len);
void rudp__conn_input_reset(rudp_conn *c, rudp_time now, int refused);
/* The full number of a received DATA packet from its low 32 bits. */
static inline uint64_t rudp__conn_rx_pn(const rudp_conn *c, uint32_t pn32)
{
    return rudp__pn_expand(c->rx_any ? c->rx_largest + 1 : 0, pn32);
}
void rudp__conn_on_timer(rudp_conn *c, int kind, rudp_time now);
void rudp__conn_flush(rudp_conn *c, rudp_time now);
/* rudp_conn_abort() without sending what waits first: the reset at once. */
void rudp__conn_abort_now(rudp_conn *c, rudp_time now);
/* The same with the RESET frame's code (RUDP_RESET_ABORT, RUDP_RESET_AFTER_FIN). */
void rudp__conn_abort_code(rudp_conn *c, rudp_time now, uint64_t code);
/* That reset once everything queued (the FIN too) has gone out, within a
 * few round trips (RUDP_T_LINGER); at once if it has. */
void rudp__conn_reset_when_sent(rudp_conn *c, rudp_time now, uint64_t code);
/* The peer took more of what that reset waits for (an ACK moved snd_una):
 * its wait starts again, to the linger's end at most. */
void rudp__conn_reset_progress(rudp_conn *c, rudp_time now);
/* After a flush (rudp_ctx_process's, and the one above): the pending
 * reset, if what it waits for has gone out. 1 if the connection is
 * closed now. */
int rudp__conn_reset_due(rudp_conn *c, rudp_time now);
/* Fails c with err (the app's errno) for the reason `cause` (report.c's words). */
void rudp__conn_fail(rudp_conn *c, rudp_time now, int err, rudp_cause cause);
/* Sends one DATA packet holding `frames` (n bytes, not ack-eliciting) to
 * `to`: a path challenge or response. 0, or -ENOBUFS / -ENOMEM. */
int rudp__conn_send_control(rudp_conn *c, rudp_time now, const rudp_addr *to,
                            const uint8_t *frames, size_t n);
/* The same on socket `sock` (a client's standby, standby.c), from the
 * local address `local` (NULL: the kernel's choice). */
int rudp__conn_send_control_via(rudp_conn *c, rudp_time now, uint32_t sock, const rudp_addr *to,
                                const rudp_addr *local, const uint8_t *frames, size_t n);
/* Shared by conn.c, conn_input.c, conn_output.c and conn_app.c. */
void rudp__conn_set_state(rudp_conn *c, rudp_state to, const char *why);
/* Timer `kind` (RUDP_T_*) of c fires at `at`; disarmed. Inline, as the
 * helpers below: the connection's files call them per packet. */
static inline void rudp__conn_arm(rudp_conn *c, int kind, rudp_time at)
{
    rudp__wheel_arm(&c->ctx->wheel, &c->timers[kind], at);
}
static inline void rudp__conn_disarm(rudp_conn *c, int kind)
{
    rudp__wheel_cancel(&c->ctx->wheel, &c->timers[kind]);
}
/* The loss timer at recovery's deadline, or disarmed if none. */
static inline void rudp__conn_update_loss_timer(rudp_conn *c)
{
    c->rec.pto_floor = rudp__late_floor(c->ctx, &c->pkey.addr, c->ctx->now, c->rtt.samples);
    rudp_time d = rudp__recovery_deadline(&c->rec, &c->rtt, c->cfg.max_ack_delay);
    if (d == RUDP_TIME_NEVER)
        rudp__conn_disarm(c, RUDP_T_LOSS);
    else
        rudp__conn_arm(c, RUDP_T_LOSS, d);
}
/* Whether stream data waits for the peer's window (none of it in flight
 * can be sent). */
static inline int rudp__conn_window_blocked(const rudp_conn *c)
{
    return rudp__seq_lt(c->snd_nxt, c->snd_end) && !rudp__seq_lt(c->snd_nxt, c->peer_max_data);
}
/* How long until the next keepalive PING. Blocked by the peer's window it
 * is a window probe, as TCP's persist timer: the probe timeout doubled for
 * each probe sent since the block, up to the keepalive interval. A peer
 * that stopped reading and then died (SIGKILL: its kernel answers with a
 * port unreachable, icmp.c) is found at the next probe, not 15 s on (a
 * helper's hunt: a proxy's and a database's sender held 15 s against
 * TCP's 0.3). */
static inline rudp_time rudp__conn_keepalive_wait(const rudp_conn *c)
{
    if (!rudp__conn_window_blocked(c))
        return c->cfg.keepalive;
    rudp_time pto = rudp__rtt_pto(&c->rtt, c->cfg.max_ack_delay);
    if (pto < RUDP_PTO_MIN)
        pto = RUDP_PTO_MIN;
    uint32_t shift = c->persist_n < 16 ? c->persist_n : 16;
    rudp_time w = pto << shift;
    return w < c->cfg.keepalive ? w : c->cfg.keepalive;
}
/* The keepalive and idle timers from now: something came from the peer. */
static inline void rudp__conn_keepalive_rearm(rudp_conn *c, rudp_time now)
{
    if (c->cfg.keepalive)
        rudp__conn_arm(c, RUDP_T_KEEPALIVE, now + rudp__conn_keepalive_wait(c));
    if (c->cfg.idle_timeout)
        rudp__conn_arm(c, RUDP_T_IDLE, now + c->cfg.idle_timeout);
}
/* Whether stream data (resent or new, within flow control, not corked)
 * or our FIN waits to go. */
static inline int rudp__conn_have_stream_to_send(const rudp_conn *c)
{
    if (!rudp__ranges_empty(&c->retx))
        return 1;
    if (rudp__seq_lt(c->snd_nxt, c->snd_end) && rudp__seq_lt(c->snd_nxt, c->peer_max_data) &&
        !rudp__cork_holds(c))
        return 1;
    return c->fin_off != RUDP_FIN_NONE && !c->fin_sent && c->snd_nxt == c->fin_off;
}
/* Whether stream data or our FIN is unacknowledged, sent or not. What
 * the user timeout guards, as TCP's retransmissions and zero-window probes
 * (a reader whose only frames in flight are PINGs or window updates is not
 * ended by it: TCP's idle reader is not), and what puts the idle timeout
 * off, as TCP's keepalive waits for an empty write queue. */
static inline int rudp__conn_stream_unacked(const rudp_conn *c)
{
    return rudp__seq_lt(c->snd_una, c->snd_end) || (c->fin_off != RUDP_FIN_NONE && !c->fin_acked);
}
/* Bytes the application may queue now (send buffer and flow control). */
size_t rudp__conn_send_space(const rudp_conn *c);
/* Whether state s still sends stream data or acknowledgements. */
static inline int rudp__conn_sending_state(rudp_state s)
{
    switch (s) {
    case RUDP_ESTABLISHED:
    case RUDP_FIN_WAIT_1:
    case RUDP_FIN_WAIT_2:
    case RUDP_CLOSING:
    case RUDP_TIME_WAIT:
    case RUDP_CLOSE_WAIT:
    case RUDP_LAST_ACK:
        return 1;
    case RUDP_CLOSED:
    case RUDP_SYN_SENT:
    case RUDP_SYN_RCVD:
    case RUDP_STATE_COUNT:
        return 0;
    }
    return 0;
}
/* conn.c's handshake done (`why` for the log): ESTABLISHED, its timers
 * swapped for the keepalive's, the handshake's RTT sample taken. */
void rudp__conn_established(rudp_conn *c, rudp_time now, const char *why);
/* recovery.c's callbacks (c->rec_cb, set in rudp__conn_alloc): a sent
 * packet was acknowledged, or declared lost. */
void rudp__conn_on_acked(void *arg, const rudp_sent *s);
void rudp__conn_on_lost(void *arg, const rudp_sent *s);

/* pmtu.c (pmtu.h): path MTU discovery */
void rudp__pmtu_start(rudp_conn *c, rudp_time now); /* established, or on a new path */
uint32_t rudp__pmtu_probe_size(rudp_conn *c, rudp_time now); /* a probe due now, or 0 */
void rudp__pmtu_probe_sent(rudp_conn *c, uint64_t pn, uint32_t size);
void rudp__pmtu_acked(rudp_conn *c, const rudp_sent *s, rudp_time now);
void rudp__pmtu_lost(rudp_conn *c, const rudp_sent *s, rudp_time now);
void rudp__pmtu_pto(rudp_conn *c); /* a probe timeout fired (rec.pto_count counts it) */
/* A validated report (icmp.c): `fits` bytes pass, RUDP_PMTU_BASE <= fits
 * < the size refused; `probe`: that was the probe in flight. */
void rudp__pmtu_too_big(rudp_conn *c, rudp_time now, uint32_t fits, int probe);
/* A report about c we cannot validate: probe the size in use. */
void rudp__pmtu_hint(rudp_conn *c, rudp_time now);
/* Sends buf (len bytes, a DATA packet numbered pn) on c's path. */
size_t rudp__conn_send_data(rudp_conn *c, uint64_t pn, uint8_t *buf, size_t len);
/* The receive window may grow on the peer's DATA_BLOCKED at `limit`. */
void rudp__conn_autotune(rudp_conn *c, rudp_time now, uint64_t limit);
/* The oldest unacknowledged data (or a PING) goes now, without waiting
 * for a probe timeout: the path changed. */
void rudp__conn_probe_now(rudp_conn *c);

/* ---- path.c: a peer that moves, a client that moves itself ---- */

/* Whether a DATA packet for c from `peer` on `sock` may be processed:
 * on c's path; a client's on any socket; a server's from a new address
 * once established. */
int rudp__path_admit(const rudp_conn *c, uint32_t sock, const rudp_addr *peer);
/* A server's connection processed a DATA packet of `len` bytes from
 * `peer` (`rx`: RUDP_RX_*): may start validating a new address, or move. */
void rudp__path_on_packet(rudp_conn *c, rudp_time now, const rudp_addr *peer, size_t len, int rx);
/* Whether a DATA packet for c from `peer` must go to rudp__path_on_foreign
 * instead of being processed: an unkeyed server's, from an address it
 * does not send to (anyone who saw a packet could have made it). */
int rudp__path_foreign(const rudp_conn *c, const rudp_addr *peer);
/* Such a packet (`len` bytes, numbered pn32, frames [frames, frames+n))
 * changes nothing of the connection: it may start the validation of its
 * address (when it is the peer's newest non-probing packet), count toward
 * the 3x limit, or answer our challenge (PATH_RESPONSE); then the path
 * moves there if the peer's newest packet came from it. */
void rudp__path_on_foreign(rudp_conn *c, rudp_time now, const rudp_addr *peer, uint32_t pn32,
                           const uint8_t *frames, size_t n, size_t len);
void rudp__path_on_challenge(rudp_conn *c, rudp_time now, uint64_t data);

/* urgent.c: the URGENT frame while our mark is unacknowledged, written at
 * p (bytes written, 0 for none or no room; RUDP_SENT_URGENT set in
 * *flags); a packet that carried it acknowledged; a mark received. */
int rudp__urg_write(rudp_conn *c, uint8_t *p, size_t cap, uint16_t *flags);
void rudp__urg_acked(rudp_conn *c, const rudp_sent *s);
void rudp__urg_input(rudp_conn *c, uint64_t off);
void rudp__path_on_response(rudp_conn *c, rudp_time now, uint64_t data);
/* From rudp__conn_flush: a PATH_RESPONSE owed, a challenge due. */
void rudp__path_flush(rudp_conn *c, rudp_time now);
/* Server: a packet of c arrived on `sock` (its NEW_PORT needs no repeat
 * once the client is heard on the new socket). */
void rudp__path_heard_on(rudp_conn *c, uint32_t sock, const rudp_addr *local);
/* Client: a datagram of c's (authenticated, keyed) came from its server's
 * address: a validation of another address under way moves nothing. */
void rudp__path_heard_from(rudp_conn *c, const rudp_addr *peer);
/* Client: the server says the connection lives on `port` of its address
 * (NEW_PORT in a packet of `len` bytes, rx as rudp__path_on_packet's). */
void rudp__path_on_new_port(rudp_conn *c, rudp_time now, unsigned port, int rx, size_t len);
void rudp__path_on_timer(rudp_conn *c, rudp_time now);
/* Accounting for the amplification limit: `bytes` went to `to`. */
void rudp__path_sent(rudp_conn *c, const rudp_addr *to, size_t bytes);
/* Another IP address at either end: the RTT estimate starts at `rtt` (0:
 * the configured initial RTT), congestion control and the path MTU over. */
void rudp__path_new(rudp_conn *c, rudp_time now, rudp_time rtt);
/* Server: c sends to `to` from now on (validated); `rtt` as rudp__path_new's. */
void rudp__path_move_to(rudp_conn *c, rudp_time now, const rudp_addr *to, rudp_time rtt);
/* The validation under way is given up without counting as failed. */
void rudp__path_stop_probe(rudp_conn *c);

/* ---- standby.c: a second path kept validated, and the handover ---- */

/* A PATH_CHALLENGE in the datagram being processed (path.rx_sock,
 * rx_peer): 1 if it came by the standby (answered there), 0 if by the
 * path in use. */
int rudp__standby_on_challenge(rudp_conn *c, rudp_time now, uint64_t data);
/* Server: a duplicate of a packet holding path frames only, from another
 * address than the path's (the client's other address, or any while that
 * is not validated): its challenge is answered there too, its answer
 * taken (an observer's copy sent ahead of the client's own must not keep
 * the standby from validating for ever). */
void rudp__standby_dup(rudp_conn *c, rudp_time now, const uint8_t *frames, size_t n);
/* A PATH_RESPONSE: 1 if it answers the standby's challenge, by its path. */
int rudp__standby_on_response(rudp_conn *c, rudp_time now, uint64_t data);
/* Server: the client's newest non-probing packet came from `peer`: 1 if
 * that is its validated other address (moved there, or left for the next
 * packet while the path in use still carries), 0 for path.c to decide. */
enum { STANDBY_OTHER, STANDBY_PING, STANDBY_VALIDATED };
int rudp__standby_newest(rudp_conn *c, rudp_time now, const rudp_addr *peer, int kind);
/* A datagram of c was processed (rx: RUDP_RX_*), from `peer` on `sock`. */
void rudp__standby_on_packet(rudp_conn *c, rudp_time now, uint32_t sock, const rudp_addr *peer,
                             int rx);
/* c's peer address changed (path.c's move, from `from`): a server's
 * other address is the one left; a client's standby to its server's own
 * address follows it (NEW_PORT, a new server address). */
void rudp__standby_peer_moved(rudp_conn *c, rudp_time now, const rudp_addr *from);
/* Client: the server offered another address of its own (SERVER_ADDR). */
void rudp__standby_on_offer(rudp_conn *c, const rudp_addr *addr);
/* Server: the address of ours to send to `to` from (the standby's own
 * for the client's other address, else the connection's; NULL: any). */
const rudp_addr *rudp__standby_local_for(const rudp_conn *c, const rudp_addr *to);
/* Client: an RTT sample of the path in use (a path far slower than the
 * standby moves the connection). */
void rudp__standby_rtt(rudp_conn *c, rudp_time now, rudp_time sample);
/* A probe timeout: a PING on the validated standby too. */
void rudp__standby_pto(rudp_conn *c, rudp_time now);
void rudp__standby_flush(rudp_conn *c, rudp_time now);
void rudp__standby_on_timer(rudp_conn *c, rudp_time now);

/* Whether `bytes` more may go to c's address now: not while a client
 * validates its server's new port (a server sends only to a validated
 * address; to one being validated, challenges within 3x, path_flush). */
int rudp__path_may_send(const rudp_conn *c, size_t bytes);

#endif
