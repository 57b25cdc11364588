/*
 * lib_sim.h: a deterministic network in virtual time for testing the core.
 *
 * Endpoints are rudp contexts with addresses 10.0.0.N:1000+N. Datagrams
 * travel over per-direction links with propagation delay, jitter, a rate
 * limit with a drop-tail queue, random loss, Gilbert-Elliott burst loss,
 * reordering, duplication, and a cut (everything dropped from a time on).
 * Everything random comes from one seeded PRNG, so a run is reproducible from
 * its seed. Time advances straight to the next event: a 30 s timeout takes
 * no real time.
 *
 * Applications are scripted per connection (sim_app): write a pattern of
 * `to_send` bytes, shut down, read and verify the peer's pattern byte by byte
 * (order, duplicates and gaps all show), then release.
 *
 * Debugging a seed: SIM_PRINT=1 prints the contexts' log lines (test_sim.c
 * turns on debug level with it), SIM_PRINT_PKT=1 every handshake and RESET
 * datagram offered to a link (before its loss is drawn).
 */
#ifndef LIB_SIM_H
#define LIB_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "rudp.h"

#define SIM_MAX_EP 8
#define SIM_MAX_APPS 64

typedef struct sim_link {
    rudp_time delay;
    rudp_time jitter;       /* uniform in [0, jitter), FIFO kept unless reordering */
    uint64_t rate_bps;      /* 0: unlimited */
    size_t queue_bytes;     /* drop-tail limit when rate-limited; 0: unlimited */
    double loss;            /* independent loss probability */
    double ge_p, ge_r;      /* Gilbert-Elliott: good->bad, bad->good; bad drops all */
    double reorder;         /* probability a datagram is held back */
    rudp_time reorder_extra;
    double dup;             /* probability a datagram is delivered twice */
    rudp_time cut_at;       /* 0: never; else drop everything sent at/after */
    rudp_time cut_until;    /* with cut_at: ... and before this (0: for ever) */
    size_t mtu;             /* 0: any size; else larger datagrams are dropped, as a path
                               at that MTU that drops IP fragments does */
    /* state */
    rudp_time busy_until;
    rudp_time last_arrival;
    int ge_bad;
    /* counters */
    uint64_t sent, dropped, duplicated, reordered, too_big;
} sim_link;

typedef struct sim_app {
    int used;
    int ep;
    rudp_conn *conn;
    uint64_t to_send;       /* bytes this side writes */
    uint64_t sent;
    uint64_t expect;        /* bytes it must receive; UINT64_MAX: don't check */
    uint64_t received;
    uint32_t send_seed;     /* pattern of what we send */
    uint32_t recv_seed;     /* pattern we expect */
    int established;
    int shut;               /* shutdown issued */
    int eof;                /* read returned 0 */
    int error;              /* negative errno seen by read/ERROR event */
    int closed;             /* CLOSED event seen */
    unsigned events;        /* every RUDP_EV_* seen (tests clear it) */
    int released;
    int corrupt;            /* a byte differed from the pattern */
    rudp_time eof_time, error_time;
    int cause;              /* rudp_conn_cause() when the error was seen */
    int abort_after;        /* abort once this many bytes are sent (0: no) */
    int no_release;         /* keep the handle after close */
    int paused;             /* do not read (a slow application) */
    int no_shutdown;        /* write but never shut down */
    int bulk;               /* throughput runs: write zeros, count what is read
                               without checking it (the pattern costs per byte) */
} sim_app;

/* A datagram captured by a raw endpoint. */
typedef struct sim_capture {
    rudp_time at;
    rudp_addr from;
    size_t len;
    uint8_t data[1500];
} sim_capture;

#define SIM_MAX_CAPTURE 256
#define SIM_MAX_LOG 256
#define SIM_MAX_LINES 32

typedef struct sim sim;

typedef struct sim_ep {
    sim *owner;
    int idx;
    rudp_ctx *ctx;
    const rudp_mem *mem;    /* sim_add_ep_mem's allocator (NULL: libc's), kept across
                               sim_restart */
    const rudp_aead_backend *aead; /* sim_set_aead's, kept across sim_restart */
    rudp_addr addr;
    rudp_time deadline;
    int is_server;          /* accepts with server_app template */
    sim_app server_tpl;
    int down;               /* crashed: datagrams to it vanish */
    int raw;                /* no context: datagrams are captured */
    sim_capture *cap;
    int ncap;
    char log[SIM_MAX_LOG][96]; /* state transitions, when logging is on */
    int nlog;
    char lines[SIM_MAX_LINES][320]; /* other log lines (report.c's), when logging is on */
    int nlines;
    uint64_t conns_freed;   /* conn_freed callbacks */
    uint64_t sent_in_room;  /* datagrams its context built where tx_room said (odd
                               endpoints offer it: lib_sim.c's ep_room) */
    int moves;              /* sim_move: address changes so far */
    int keyed;              /* sim_set_key: the key, kept across sim_restart */
    uint8_t key[RUDP_KEY_LEN];
    char reset_id[32];      /* sim_set_reset_id: kept across sim_restart, "" none */
    rudp_listener *listener; /* sim_listen's */
    int accepted_by_hand;   /* its app's queue takes nothing itself: the test calls
                               rudp_conn_accepted (else: at RUDP_EV_ACCEPT) */
} sim_ep;

typedef struct sim_dgram sim_dgram;

struct sim {
    rudp_time now;
    uint64_t rng;
    uint64_t seq;
    sim_ep ep[SIM_MAX_EP];
    int nep;
    sim_link link[SIM_MAX_EP][SIM_MAX_EP];
    sim_dgram **heap;
    size_t heap_n, heap_cap;
    sim_app apps[SIM_MAX_APPS];
    uint64_t void_dgrams;   /* sent to addresses nobody has */
    uint64_t void_bytes;    /* ... their bytes */
    /* sim_move_port: endpoint port_ep's socket port_sock has port port_new;
     * datagrams to its first socket (1) are gone (counted) */
    int port_ep;
    uint32_t port_sock;
    uint16_t port_new;
    uint64_t gone_dgrams;
    /* set after sim_move_port: the first socket was given up too, so
     * what it sends leaves from a port its peers do not hear (gone,
     * counted in gone_dgrams) */
    int port_old_gone;
    uint32_t src_sock, dst_sock; /* the datagram being sent: its sockets */
    /* sim_alt_path: second addresses, each a path of its own to every
     * peer (out from it, in to it) */
    struct sim_alt {
        int on, ep;
        uint32_t sock;      /* a client's socket from addr; a server's listening one */
        int by_local;       /* a server's: what it sends from addr takes the path */
        rudp_addr addr;
        sim_link out, in;
    } alt[2];
    int nalt;
    sim_link *alt_link;     /* the datagram being sent takes this path */
    const rudp_addr *alt_src; /* ... from this address */
    const rudp_addr *alt_dst; /* ... to this second address */
    /* endpoint moves due (sim_schedule_move), in no order */
    struct sim_move {
        rudp_time at;
        int ep, kind;
    } moves[16];
    int nmoves;
    uint64_t steps;         /* instants the network was run at (wake-ups) */
    /* captured datagrams (optional) */
    void (*tap)(sim *s, int from, int to, const uint8_t *buf, size_t len);
    void *tap_user;
    /* Optional: changes a datagram on the wire (after tap, before loss),
     * as an on-path attacker could; it may change len's bytes, not len. */
    void (*mutate)(sim *s, int from, int to, uint8_t *buf, size_t len);
    /* Optional: 1 drops this datagram (counted in the link's dropped), as
     * a test losing one chosen packet needs; after tap and mutate. */
    int (*drop)(sim *s, int from, int to, const uint8_t *buf, size_t len);
};

void sim_init(sim *s, uint64_t seed);
void sim_free(sim *s);

/* Adds an endpoint with `cfg` defaults (NULL: library defaults). Returns its index. */
int sim_add_ep(sim *s, const rudp_config *cfg);
/* As sim_add_ep, its context's memory from `mem` (rudp_ctx_new's; NULL:
 * libc's), which must outlive the simulation. */
int sim_add_ep_mem(sim *s, const rudp_config *cfg, const rudp_mem *mem);

/* Makes endpoint `ep` keyed with `key` (rudp_ctx_set_key, the seed from
 * the simulation's PRNG); a restart keeps the key. */
void sim_set_key(sim *s, int ep, const uint8_t key[RUDP_KEY_LEN]);
/* Installs AEAD backend b in endpoint ep's context (rudp_ctx_set_aead; the
 * tests' is the shim's OpenSSL one), kept across sim_restart. */
void sim_set_aead(sim *s, int ep, const rudp_aead_backend *b);
/* Gives keyed endpoint `ep` the reset ID `id` (rudp_ctx_set_reset_id), kept
 * across sim_restart; call it before sim_listen. "" takes it away at the
 * next restart. */
void sim_set_reset_id(sim *s, int ep, const char *id);

/* Makes endpoint `ep` listen; accepted connections run a copy of `tpl`. */
void sim_listen(sim *s, int ep, const sim_app *tpl, unsigned backlog);

/* Starts a client connection from `from` to `to`; returns the app index. */
int sim_connect(sim *s, int from, int to, const sim_app *tpl, const rudp_config *cfg);

/* Endpoint ep's listener (sim_listen) gives tokens and takes 0-RTT data. */
void sim_listen_zero_rtt(sim *s, int ep, int on);
/* A returning client (rudp_connect_token with the SYN held for the first
 * write): the app writes at once, so its first bytes ride with the SYN.
 * Returns the app index or -1. */
int sim_connect_token(sim *s, int from, int to, const sim_app *tpl, const uint8_t *token,
                      size_t token_len);

/* Runs until every app is released and no connection is left, or until
 * virtual time `limit`. Returns 1 if everything finished. */
int sim_run(sim *s, rudp_time limit);

/* Runs until `until` in virtual time, whatever happens. */
void sim_run_until(sim *s, rudp_time until);

/* Endpoint `ep` has a second socket `sock` (its first is 1) on `port` of
 * its IP address; from now on, datagrams to its first socket's port are
 * gone (another program has that port: counted in gone_dgrams). */
void sim_move_port(sim *s, int ep, uint32_t sock, uint16_t port);

/* Endpoint `ep` has a second address `addr` through another network (at
 * most two in a simulation; returns its index in s->alt[]): a client's
 * socket `sock` (not 1) sends from it; a server's listening socket `sock`
 * (1) hears it too, and what it sends from it (the core's local address)
 * takes that path. What goes from it and to it takes alt[i].out and
 * alt[i].in (set their delay, rate, cut) instead of the endpoints' links;
 * a server's second address before a client's second socket. */
int sim_alt_path(sim *s, int ep, uint32_t sock, const rudp_addr *addr);

/* An observer that sees the traffic and sends bit-flipped copies of one
 * endpoint's packets from an address of its own (test_path.c,
 * test_standby.c): set sim_flip's fields (zero it first), then
 * s->tap = sim_flip_tap. Each packet from src to dst sent in [from, until)
 * (either path) is copied with one to four bits flipped past the magic,
 * version, type and connection ID, half of them also a bit of the packet
 * number's low byte, and arrives from addr `lag` after the original left
 * (0: ahead of it). */
typedef struct sim_flip_state {
    rudp_time from, until;
    int n;                 /* copies sent */
    size_t bytes;          /* ... their bytes */
    rudp_addr addr;        /* the observer's address */
    uint64_t rng;          /* its seed (non-zero) */
    int src, dst;
    rudp_time lag;
} sim_flip_state;
extern sim_flip_state sim_flip;
void sim_flip_tap(sim *s, int from, int to, const uint8_t *buf, size_t len);

/* Sends a raw datagram from an arbitrary address to endpoint `to`. */
void sim_inject(sim *s, const rudp_addr *from, int to, const uint8_t *buf, size_t len);
/* The same, arriving at virtual time `at` (now at the earliest). */
void sim_inject_at(sim *s, const rudp_addr *from, int to, const uint8_t *buf, size_t len,
                   rudp_time at);

/* Adds an endpoint without a context: what reaches it is captured in ep->cap. */
int sim_add_raw_ep(sim *s);

/* Sends from a raw endpoint over its link to `to`. */
void sim_raw_send(sim *s, int from, int to, const uint8_t *buf, size_t len);

/* Crashes endpoint `ep` (its state is lost) and restarts it empty. */
void sim_restart(sim *s, int ep, const rudp_config *cfg);

/*
 * Endpoint `ep` changes address:
 *   SIM_MOVE_NAT: a NAT in front of it re-maps its port; it knows nothing
 *     (its connections go on, the peer sees a new source port);
 *   SIM_MOVE_REBIND: it moves to a new IP address and port itself, and
 *     moves its client connections there (rudp_conn_rebind, new_ip);
 *   SIM_MOVE_SERVER_IP: a server's IP address is replaced (its port
 *     stays, as a wildcard listener's): its connections send from the
 *     new one (rudp_conn_move_local).
 * Datagrams to the old address vanish (counted in void_dgrams).
 */
enum { SIM_MOVE_NAT = 1, SIM_MOVE_REBIND, SIM_MOVE_SERVER_IP };
void sim_move(sim *s, int ep, int kind);
/* The same at virtual time `at`, during a run. */
void sim_schedule_move(sim *s, rudp_time at, int ep, int kind);

/* Lets every app read and write again (after changing `paused`). */
void sim_poke_apps(sim *s);
/* The first application on endpoint ep (a server's accepted one), or NULL. */
sim_app *sim_app_on(sim *s, int ep);
/* NULL when a (may be NULL) got exactly its `expect` bytes, each as the
 * pattern says, then EOF and no error; else what went wrong, for the
 * test's message. */
const char *sim_app_fault(const sim_app *a);

/* Records each state transition of endpoint `ep` in ep->log[] as "A -> B". */
void sim_log_transitions(sim *s, int ep);

/*
 * Throughput runs. sim_bulk_listen makes `ep` accept connections that only
 * read (bulk: counted, not checked); sim_bulk_connect starts a flow from
 * `from` to `to` with `cfg` (NULL: the endpoint's defaults; cfg->cc picks
 * the controller) that writes without end, and returns its app index or -1.
 * sim_bulk_acked is the stream bytes the peer has acknowledged on that flow
 * so far: goodput is its growth over virtual time.
 */
void sim_bulk_listen(sim *s, int ep);
int sim_bulk_connect(sim *s, int from, int to, const rudp_config *cfg);
uint64_t sim_bulk_acked(const sim *s, int app);

/*
 * One bulk flow from endpoint 0 to endpoint 1 of a fresh simulation seeded
 * `seed`, over a link with `owd` propagation delay, `rate_bps`, a drop-tail
 * `queue` and independent `loss`, the same in both directions (data and
 * ACKs), as the benchmark's emulated links. Runs `duration` of virtual time
 * from the connect and reports goodput (stream bytes acknowledged over that
 * time) and retransmitted stream bytes as a share of all stream bytes sent.
 */
typedef struct sim_bulk_result {
    double mbps;
    double retx_pct;
    double repair_pct;      /* copies' stream bytes (conn_output.c's repair), same share */
    uint64_t acked;
    int error;              /* the connection's error, 0 if none */
    uint64_t rx_dropped;    /* the receiver's data dropped by its budgets */
    uint64_t pkts_sent;     /* the sender's DATA packets ... */
    uint64_t pacer_wakeups; /* ... and its pacer's timer expiries */
} sim_bulk_result;
/* A tap (struct sim's tap, tap_user a sim_burst) that records the
 * instants data packets (1,000 bytes and more) leave endpoint 0 for
 * endpoint 1: how many, and the longest run of them at one instant. */
typedef struct sim_burst {
    rudp_time last;
    uint64_t pkts;
    int run, max_run;
} sim_burst;
void sim_burst_tap(sim *s, int from, int to, const uint8_t *buf, size_t len);

void sim_bulk_single(uint64_t seed, const rudp_cc_ops *cc, rudp_time owd, uint64_t rate_bps,
                     size_t queue, double loss, rudp_time duration, sim_bulk_result *out);

/* Writes a DATA packet's header (RUDP_WIRE_SHORT_HDR bytes) to dcid with
 * packet number pn, as a test forging datagrams needs; returns its length. */
size_t sim_data_hdr(uint8_t *buf, uint64_t dcid, uint32_t pn);

/* A first SYN (with the cookie tok, toklen bytes, if any) from client ID
 * scid, padded to RUDP_MIN_SYN_SIZE as a client sends it; returns its
 * length. */
size_t sim_make_syn(uint8_t *buf, uint64_t scid, const uint8_t *tok, size_t toklen);
/* How many datagrams of `type` (RUDP_PKT_*) raw endpoint e captured, and
 * their bytes in *bytes (if not NULL). */
int sim_count_type(const sim_ep *e, int type, size_t *bytes);
/* The header of the last datagram of `type` e captured in *out: 1, or 0 if
 * none (rudp_hdr: wire.h). */
struct rudp_hdr;
int sim_last_of_type(const sim_ep *e, int type, struct rudp_hdr *out);

double sim_rand01(sim *s);
uint64_t sim_rand(sim *s);

/* Pattern byte at stream offset `off` for a seed. */
static inline uint8_t sim_pattern(uint32_t seed, uint64_t off)
{
    uint64_t x = (off / 8) * 0x9e3779b97f4a7c15ull ^ ((uint64_t)seed << 32 | seed);
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 32;
    return (uint8_t)(x >> ((off % 8) * 8));
}

#endif
