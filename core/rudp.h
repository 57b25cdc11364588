/*
 * rudp.h: public interface of the rudp protocol core.
 *
 * The core is a pure library: it owns no socket, thread or clock. The caller
 * (the engine in the shim, or a test's simulated network) feeds it datagrams
 * and the current monotonic time in nanoseconds, and receives:
 *   - datagrams to send, through the send callback of rudp_ctx_ops;
 *   - the next deadline, from rudp_ctx_process();
 *   - per-connection events, pulled with rudp_ctx_next_event().
 *
 * Every function returning int returns 0 (or a count) on success and a
 * negative errno on failure: the codes a TCP application would expect
 * (-ECONNREFUSED, -ECONNRESET, -ETIMEDOUT, -EPIPE, -EAGAIN, -ENOMEM).
 *
 * Threading: a rudp_ctx and everything it owns is used by one thread at a time.
 */
#ifndef RUDP_H
#define RUDP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Monotonic time in nanoseconds. RUDP_TIME_NEVER means "no deadline". */
typedef uint64_t rudp_time;
#define RUDP_TIME_NEVER UINT64_MAX
#define RUDP_MS(x) ((rudp_time)(x) * 1000000ull)
#define RUDP_US(x) ((rudp_time)(x) * 1000ull)
#define RUDP_SEC(x) ((rudp_time)(x) * 1000000000ull)

typedef struct rudp_ctx rudp_ctx;
typedef struct rudp_conn rudp_conn;
typedef struct rudp_listener rudp_listener;
typedef struct rudp_cc_ops rudp_cc_ops;

/*
 * A transport address, normalised so it can be hashed and compared with
 * memcmp: callers must zero the whole struct before filling it.
 * family is AF_INET or AF_INET6; port is in host byte order; an IPv4 address
 * occupies ip[0..3].
 */
typedef struct rudp_addr {
    uint16_t family;
    uint16_t port;
    uint32_t scope_id;
    uint8_t ip[16];
} rudp_addr;

/* Connection states. TCP's names, so TCP_INFO can report them directly. */
typedef enum rudp_state {
    RUDP_CLOSED = 0,
    RUDP_SYN_SENT,
    RUDP_SYN_RCVD,
    RUDP_ESTABLISHED,
    RUDP_FIN_WAIT_1,  /* we sent FIN, not yet acknowledged */
    RUDP_FIN_WAIT_2,  /* our FIN acknowledged, peer still sending */
    RUDP_CLOSING,     /* both FINs sent, ours not yet acknowledged */
    RUDP_TIME_WAIT,   /* both directions done: draining retransmitted FINs */
    RUDP_CLOSE_WAIT,  /* peer's FIN received, we still sending */
    RUDP_LAST_ACK,    /* peer's FIN received, ours sent, not acknowledged */
    RUDP_STATE_COUNT
} rudp_state;

const char *rudp_state_name(rudp_state s);

/*
 * Tunables. rudp_config_default() fills the defaults documented below; a
 * config is copied at rudp_connect()/rudp_listen(), so the caller may reuse it.
 */
typedef struct rudp_config {
    uint32_t max_datagram;      /* UDP payload we send, bytes (1400; 1200..65507) */
    uint32_t send_buffer;       /* bytes buffered unacknowledged+unsent (8 MiB) */
    uint32_t recv_window;       /* receive buffer = advertised window (8 MiB) */
    rudp_time initial_rtt;      /* RTT assumed before a sample (100 ms) */
    rudp_time max_ack_delay;    /* longest we delay an ACK (25 ms) */
    rudp_time connect_timeout;  /* handshake budget -> ETIMEDOUT (30 s) */
    rudp_time user_timeout;     /* stream data unacknowledged this long -> ETIMEDOUT (15 min) */
    rudp_time keepalive;        /* idle time before a keepalive probe, 0 = off (15 s) */
    rudp_time idle_timeout;     /* nothing heard this long -> ETIMEDOUT, 0 = off (15 min) */
    rudp_time linger;           /* a released conn may take this long to finish (60 s) */
    uint32_t source_limit;      /* listener: connections one source address may have in
                                   the handshake or waiting for accept (64; 0: none) */
    const rudp_cc_ops *cc;      /* congestion controller, NULL = rudp_cc_default */
    uint32_t notsent_lowat;     /* TCP_NOTSENT_LOWAT: writable while fewer than half
                                   of this many bytes wait unsent (0: no limit) */
    uint32_t retry;             /* listener: RUDP_RETRY_AUTO (0): a SYN without a cookie
                                   earns a RETRY only under pressure; RUDP_RETRY_ALWAYS:
                                   always (two round trips, no state before a cookie) */
    uint8_t repair;             /* RUDP_REPAIR_*: a copy of a write's last packet
                                   (conn_output.c) (RUDP_REPAIR_AUTO) */
    uint8_t pmtud;              /* 1: path MTU discovery (pmtu.h): start at 1200 bytes and
                                   probe up to max_datagram (and the peer's); 0: always
                                   max_datagram (0) */
    rudp_time rx_hold;          /* RUDP_EV_READABLE held back while the sender has more
                                   coming (its packets lack ACK_NOW), at most this long
                                   and 64 KiB, on paths of 4 rx_hold or more (0: off;
                                   0) */
    uint32_t unsent_cap;        /* where notsent_lowat is 0: the caller's writes take
                                   room while fewer than half of this many bytes wait
                                   unsent, as notsent_lowat's (0: no cap, else at least
                                   16 KiB and 2 max_datagram; 0). Bytes written far
                                   ahead of the network wait in the caller's own queue
                                   instead, so a packet copies them while they are
                                   still in the CPU's caches (tune.c) */
} rudp_config;

enum { RUDP_RETRY_AUTO = 0, RUDP_RETRY_ALWAYS = 1 };

/* rudp_config.repair: when the last packet of a write (nothing more queued)
 * goes out twice, the copy in a new packet number, so that one loss costs
 * no probe timeout. AUTO: on a path whose minimum RTT is at least
 * RUDP_REPAIR_MIN_RTT once the connection has seen a loss, at most once per
 * half a smoothed RTT; ALWAYS: every such tail, whatever the RTT or loss
 * (at the same spacing). */
enum { RUDP_REPAIR_AUTO = 0, RUDP_REPAIR_OFF = 1, RUDP_REPAIR_ALWAYS = 2 };
#define RUDP_REPAIR_MIN_RTT RUDP_MS(5)

void rudp_config_default(rudp_config *cfg);

/*
 * Checks a config; returns 0 or -EINVAL and sets *why to a static string
 * naming the offending field.
 */
int rudp_config_check(const rudp_config *cfg, const char **why);

/* Congestion controllers available by name ("newreno", ...). NULL if unknown. */
const rudp_cc_ops *rudp_cc_find(const char *name);
/* The name a controller's ops go by (rudp_cc_find("dctcp") answers ops
 * named "dctcp-reno", as Linux's dctcp runs without ECN). */
const char *rudp_cc_name(const rudp_cc_ops *ops);
extern const rudp_cc_ops *const rudp_cc_default;

/* ---- context ------------------------------------------------------------ */

typedef struct rudp_ctx_ops {
    /*
     * Send one datagram on the caller's socket `sock` to `peer`. The buffer is
     * only valid during the call. Delivery is best-effort: a dropped datagram
     * is recovered by the protocol.
     */
    void (*send)(void *user, uint32_t sock, const rudp_addr *peer,
                 const uint8_t *buf, size_t len);
    /*
     * Optional: called instead of send when set, with what a caller needs
     * to send a datagram as its connection wants it. `local`: the address
     * the peer sent to (see rudp_ctx_input) when known, for a server-side
     * connection's datagrams and for answers to one received datagram
     * (RESET, RETRY), so that it can leave from that address; else NULL.
     * `tag`: the connection's send tag (rudp_conn_set_send_tag), 0 for a
     * stateless answer.
     */
    void (*send_from)(void *user, uint32_t sock, const rudp_addr *peer, const rudp_addr *local,
                      uint64_t tag, const uint8_t *buf, size_t len);
    /* Optional: a log line (no newline) at level RUDP_LOG_*; may be NULL. */
    void (*log)(void *user, int level, const char *msg);
    /* Optional: a connection on `sock` that the caller held (from
     * rudp_connect, or reported by rudp_ctx_next_event) was freed, after
     * release and its closing handshake, so the caller may close a socket
     * nobody uses. Connections the caller never saw (a handshake that never
     * completed) are freed silently: the caller counted no reference. */
    void (*conn_freed)(void *user, uint32_t sock);
    /* Optional: whether the caller's sockets `a` and `b` are one local
     * endpoint (bound to the same address and port, as the members of a
     * SO_REUSEPORT group are), so that a connection's datagram arriving on
     * either is its own: the kernel may move a peer to another member of
     * such a group when the group changes. NULL: only a == b. */
    int (*same_endpoint)(void *user, uint32_t a, uint32_t b);
    /* Optional: where the next DATA packet, of at most `len` bytes, may be
     * built: send or send_from is then given that pointer and may keep the
     * bytes where they are (a batch's buffer) instead of copying them. Valid
     * until that call, which may not come (a packet not sent after all).
     * NULL, or a NULL answer: the context's own buffer. */
    uint8_t *(*tx_room)(void *user, size_t len);
    /* Optional: how many of the bytes connection `c` gave the caller
     * (rudp_conn_read and the like) the caller still holds for its reader
     * unread (a pipe to the application, say). The receive window grows for
     * a reader that takes its bytes (rudp__conn_autotune), as TCP's grows on
     * the application's reads: bytes moved on unread are not read. Asked
     * when the window would grow, from rudp_ctx_input. NULL: none. */
    uint64_t (*unread)(void *user, rudp_conn *c);
} rudp_ctx_ops;

enum { RUDP_LOG_ERROR = 1, RUDP_LOG_WARN, RUDP_LOG_INFO, RUDP_LOG_DEBUG };

/* Counters of a context, for RUDP_STATS and tests. Every field is a
 * uint64_t counter: the shim adds several contexts' up field by field. */
typedef struct rudp_stats {
    uint64_t dgrams_in, dgrams_out;
    uint64_t bytes_in, bytes_out;          /* UDP payload bytes */
    uint64_t malformed;                    /* dropped: failed to decode */
    uint64_t unknown_conn;                 /* dropped: no such connection */
    uint64_t bad_token;                    /* dropped: handshake cookie invalid */
    uint64_t protocol_errors;              /* dropped: valid syntax, illegal use */
    uint64_t pkts_retransmitted;           /* packets declared lost (their bytes go again) */
    uint64_t bytes_retransmitted;          /* stream bytes sent again: a lost packet's, or
                                              the oldest unacknowledged at a probe timeout */
    uint64_t stream_bytes_sent;            /* stream bytes sent first time */
    uint64_t pto_count;                    /* probe timeouts fired */
    uint64_t dup_pkts;                     /* duplicate packets received */
    uint64_t conns_opened, conns_accepted, conns_closed;
    uint64_t resets_sent, resets_received;
    uint64_t handshakes_refused;           /* SYN to a socket with no listener */
    uint64_t icmp_ignored;                 /* ICMP quoting no connection of ours */
    uint64_t icmp_soft;                    /* ICMP for a connection, acted on softly */
    uint64_t handshakes_dropped;           /* valid SYNs dropped: backlog or accept queue full */
    uint64_t source_limited;               /* valid SYNs dropped: that source's share is used */
    uint64_t memory_refused;               /* valid SYNs refused: over the memory budget */
    uint64_t rx_dropped;                   /* data not stored (unacknowledged): over the
                                              budget, or too scattered for what it costs */
    uint64_t pkts_sent;                    /* DATA packets sent (each has a packet number) */
    uint64_t rtt_conns;                    /* connections closed after the handshake ... */
    uint64_t rtt_srtt_sum_us;              /* ... and the sum of their smoothed RTTs */
    uint64_t handshakes_rejected;          /* keyed: SYNs without a valid MAC, no state kept */
    uint64_t auth_failed;                  /* keyed: other datagrams that failed authentication */
    uint64_t seal_failed;                  /* keyed: DATA not sent, the AEAD library failed */
    uint64_t path_refused;                 /* dropped: a known connection's DATA from an
                                              address it may not move to (path.h) */
    uint64_t path_moves;                   /* a peer's address changed */
    uint64_t paths_validated;              /* a peer's new address echoed our challenge */
    uint64_t path_failed;                  /* a new address never did (spoofed?) */
    uint64_t path_held;                    /* unkeyed: DATA from an address not
                                              validated, held unprocessed (path.h) */
    uint64_t local_moves;                  /* server: connections that moved to a new
                                              address of ours (rudp_conn_move_local) */
    uint64_t rebinds;                      /* client: connections moved to a new socket */
    /* handover (rudp_conn_standby, core/standby.c) */
    uint64_t handovers;                    /* client: to the standby; server: to the client's
                                              other validated address */
    uint64_t handbacks;                    /* client: back to the primary */
    uint64_t handovers_slow;               /* client: ... of the handovers, for a primary
                                              far slower than the standby */
    uint64_t standby_challenges;           /* client: challenges sent on the other path */
    uint64_t standby_validated;            /* ... answered there (both ends) */
    uint64_t standby_pkts;                 /* datagrams sent for it (challenges, answers,
                                              probe copies, offers) */
    uint64_t standby_bytes;                /* ... their UDP payload bytes */
    uint64_t pacer_waits;                  /* times the pacer held data back (its timer set) */
    uint64_t pacer_wakeups;                /* ... and its timer fired: each sends a burst of
                                              ~1 ms at the pacing rate (conn_output.c) */
    uint64_t repair_pkts;                  /* copies of a write's last packet sent */
    uint64_t repair_bytes;                 /* ... the stream bytes they carried again */
    uint64_t losses_repaired;              /* lost packets whose bytes their copy delivered */
    /* The handshake's front door (ctx.c): a SYN without a cookie is
     * answered by a SYNACK at once (one round trip) unless the listener is
     * under pressure, then by a stateless RETRY (cookie), as SYN cookies
     * and QUIC's Retry are used only under load. */
    uint64_t handshakes_direct;            /* SYNs without a cookie answered by a SYNACK */
    uint64_t retries_sent;                 /* RETRYs sent (every cause, bad_token's too) */
    uint64_t retries_halfopen;             /* ... half the backlog was in the handshake,
                                              or the accept queue was full */
    uint64_t retries_source;               /* ... that source held half its source_limit */
    uint64_t retries_memory;               /* ... half the memory limit was in use */
    uint64_t synacks_capped;               /* SYNACKs not sent: an address not validated
                                              had its 3x (RFC 9000 §8.1) */
    uint64_t held_noticed;                 /* loopback SYNs whose SYNACK the accept queue
                                              held RUDP_HELD_NOTICE, told to wait by a
                                              RETRY (not in retries_sent) */
    /* zero round trips (token.h): a server's, on listeners that allow it */
    uint64_t tokens_issued;                /* NEW_TOKEN frames sent */
    uint64_t zero_rtt_accepted;            /* SYNs whose token held: data taken at once */
    uint64_t zero_rtt_replayed;            /* refused: the token was used before */
    uint64_t zero_rtt_invalid;             /* refused: forged, expired, another address's,
                                              or no 0-RTT on this listener */
    uint64_t zero_rtt_full;                /* refused: the strike register could not vouch */
    uint64_t zero_rtt_other_port;          /* a 0-RTT SYN again from another port of its
                                              address: answered as its connection's */
    /* a client's */
    uint64_t zero_rtt_sent;                /* connections whose SYN carried data */
    uint64_t zero_rtt_resent;              /* ... refused by the server: sent again after */
    uint64_t pkts_resent;                  /* DATA packets that carried bytes_retransmitted */
    /* key state (keystate.c) */
    uint64_t key_refusals;                 /* SYNs refused for their key state: keyed to an
                                              unkeyed engine, or failing a keyed one's MAC */
    uint64_t key_refusals_sent;            /* ... answered by a KEY refusal (within the rate) */
    /* path MTU discovery (pmtu.h) */
    uint64_t pmtu_probes;                  /* padded probes of a larger size sent */
    uint64_t pmtu_probes_lost;             /* ... lost, or refused as too big */
    uint64_t pmtu_raised;                  /* a connection's datagram size raised by a probe */
    uint64_t pmtu_lowered;                 /* ... lowered: probes of it lost, or a validated
                                              "too big" */
    uint64_t pmtu_fallbacks;               /* black hole suspected: two probe timeouts with
                                              full-size packets out, sending at the base */
    uint64_t pmtu_black_holes;             /* ... and the old size failed its probes after:
                                              the path shrank without a word */
    uint64_t ptb_taken;                    /* "too big" reports about a packet of ours */
    uint64_t ptb_hints;                    /* ... naming a connection but not validated:
                                              its size probed, nothing taken from them */
    uint64_t pto_late;                     /* probe timeouts found in vain: the peer was
                                              live but late (late.c raised its floor) */
} rudp_stats;

/*
 * Where a context's memory comes from: every allocation of the context and
 * of everything it owns (connections, buffers, tables, keyed mode's state)
 * goes through its table, as ngtcp2_mem does. Each function behaves as the
 * C library's of the same name (calloc zero-fills, realloc(NULL, n)
 * allocates, free(NULL) does nothing) and gets `user` as its last argument.
 * An embedder that must not take libc's allocator lock on its engine
 * thread (the shim: a child made by a raw clone() keeps that lock as it
 * was) gives its own; several contexts may use different tables, and none
 * of them is process-wide. The core never calls one context's table for
 * another's memory.
 */
typedef struct rudp_mem {
    void *user;
    void *(*malloc)(size_t n, void *user);
    void *(*calloc)(size_t count, size_t size, void *user);
    void *(*realloc)(void *p, size_t n, void *user);
    void (*free)(void *p, void *user);
} rudp_mem;

/*
 * Creates a context. `seed` (32 bytes) keys the connection-ID generator and
 * the handshake cookies: pass fresh random bytes in production, a fixed seed
 * in tests for reproducibility. `defaults` may be NULL. `mem` is where the
 * context's memory comes from (copied: the caller's table need not outlive
 * the call, its functions and user must outlive the context); NULL: libc's.
 * Returns 0, -ENOMEM or -EINVAL (bad defaults).
 */
int rudp_ctx_new(const rudp_ctx_ops *ops, void *user, const uint8_t seed[32],
                 const rudp_config *defaults, const rudp_mem *mem, rudp_ctx **out);

/* Frees the context and every connection and listener in it, at once. */
void rudp_ctx_free(rudp_ctx *ctx);

/*
 * Feeds one received datagram. `local` is the address it was sent to, when
 * the caller knows it (a wildcard-bound socket with IP_PKTINFO), else NULL.
 * A datagram that fails to decode, or is not for any connection or
 * listener, is dropped and counted; it is never trusted. Output caused by
 * it is sent on the next rudp_ctx_process(), so a caller can batch several
 * datagrams.
 */
int rudp_ctx_input(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *local,
                   const rudp_addr *peer, const uint8_t *buf, size_t len);
/* rudp_ctx_input's answer for a datagram of another context's (see
 * rudp_ctx_set_cid_tag): 0, or RUDP_INPUT_FOREIGN + the tag of the context
 * that chose its connection ID. */
#define RUDP_INPUT_FOREIGN 1
/*
 * As rudp_ctx_input, for a datagram another context's rudp_ctx_input gave
 * back as foreign, or one whose owner is gone: taken as this context's own
 * whatever its tag (an unknown connection ID gets the stateless reset).
 */
void rudp_ctx_input_handed(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *local,
                           const rudp_addr *peer, const uint8_t *buf, size_t len);

/*
 * An opaque stamp (the caller's: a kernel receive time, say) of the
 * datagrams passed to rudp_ctx_input and rudp_ctx_input_handed from now on,
 * 0 for none. A server connection keeps the stamp of the datagram that
 * completed its handshake: rudp_conn_accept_stamp, valid from its
 * RUDP_EV_ACCEPT on (0 if none was given). The core never reads it.
 */
void rudp_ctx_set_rx_stamp(rudp_ctx *ctx, uint64_t stamp);
uint64_t rudp_conn_accept_stamp(const rudp_conn *c);
/* A server connection's stamp of the SYN that made it (the one the
 * handshake went on from: after a RETRY, the SYN with the cookie), 0 if
 * none was given. */
uint64_t rudp_conn_syn_stamp(const rudp_conn *c);

/*
 * Several contexts behind one UDP endpoint (threads whose sockets form a
 * SO_REUSEPORT group, where the kernel picks the socket by a hash of the
 * peer's address, so a peer that moves reaches another one): the
 * connection IDs this context chooses carry `tag` in their top `bits` bits
 * (the rest stay random), and a DATA packet whose connection ID is unknown
 * here and carries another tag is not answered (no stateless reset) nor
 * counted: rudp_ctx_input returns RUDP_INPUT_FOREIGN + that tag, for the
 * caller to hand it to that context (rudp_ctx_input_handed). Call before
 * the first connection. bits 0 (the default): every datagram is this
 * context's. Returns 0, or -EINVAL (bits above RUDP_CID_TAG_BITS_MAX, tag
 * too wide, or connections already made).
 */
#define RUDP_CID_TAG_BITS_MAX 8
int rudp_ctx_set_cid_tag(rudp_ctx *ctx, unsigned bits, unsigned tag);

/*
 * A SO_REUSEPORT group whose members are other processes (shim/xgroup.c):
 * the top `bits` bits of every connection ID this context chooses are a
 * member field (the engine tag of rudp_ctx_set_cid_tag moves below it),
 * the member tag of the listener that accepted the connection
 * (rudp_listener_set_member_tag), 0 for every other connection. A DATA
 * packet for an unknown ID reaching a listener with a member tag, whose
 * member field is another non-zero tag, is not answered nor counted:
 * rudp_ctx_input returns RUDP_INPUT_MEMBER + that tag, for the caller to
 * carry it to that member (rudp_ctx_input_member there), or, if that
 * member is gone, to give it back (rudp_ctx_input_member, gone = 1). Every
 * member of a group must use the same bits. Call before the first
 * connection; returns 0 or -EINVAL.
 */
#define RUDP_CID_MEMBER_BITS_MAX 8
#define RUDP_INPUT_MEMBER 0x10000
int rudp_ctx_set_member_bits(rudp_ctx *ctx, unsigned bits);
/* Listener l's member tag, below 1 << bits (0: none, the default). A
 * keyed listener with a tag answers with a stateless reset only IDs with
 * its own tag and orphans (unless rudp_listener_set_keyed_reset(l, 0)).
 * Returns 0 or -EINVAL. */
int rudp_listener_set_member_tag(rudp_listener *l, unsigned tag);
/* gone = 0: a datagram another member's rudp_ctx_input gave back as this
 * member's (RUDP_INPUT_MEMBER + our tag), taken as read from `sock`, the
 * member's listener socket of that endpoint; returns 0 or
 * RUDP_INPUT_FOREIGN + the engine tag of another context of this member,
 * as rudp_ctx_input does. gone = 1: one for a member that is gone (its
 * connections with it), on this member's socket that read it: an unknown
 * ID, answered here (keyed: the stateless reset) whatever its tags;
 * returns 0. */
int rudp_ctx_input_member(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *local,
                          const rudp_addr *peer, const uint8_t *buf, size_t len, int gone);

/* Whether a datagram is a connection request (a SYN), without decoding
 * the rest: lets a caller check its listener is still wanted first. */
int rudp_is_syn(const uint8_t *buf, size_t len);

/*
 * Reports an ICMP error (IP_RECVERR) about a datagram `sock` sent to `peer`.
 * `quote` holds what the ICMP message quoted of that datagram (our header
 * first; at least 16 bytes, 24 for a handshake packet), `err` the negative
 * errno it stands for (-ECONNREFUSED: port unreachable; -EHOSTUNREACH,
 * -ENETUNREACH, ...). Anyone can send ICMP, so it is acted on only if the
 * quote names a connection of ours to that peer (a handshake packet by our
 * own ID, a DATA packet by the peer's, with a packet number we sent):
 *   - in SYN_SENT the connection fails with `err` (a refused connect is
 *     known at once, as TCP's RST makes it);
 *   - once established the error is soft: it prompts a probe. Only a port
 *     unreachable quoting a packet sent after that probe was prompted,
 *     with nothing heard from the peer meanwhile, resets the connection
 *     (-ECONNRESET): the peer's process is gone, its port closed.
 * Anything else changes nothing and is counted (stats.icmp_ignored).
 */
void rudp_ctx_icmp(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *peer,
                   const uint8_t *quote, size_t len, int err);

/*
 * An ICMP "fragmentation needed" / "packet too big" (IP_RECVERR, EMSGSIZE,
 * origin ICMP) about a datagram `sock` sent to `peer`: `quote` what it
 * quoted, `mtu` the IP MTU it names (0 if none). Taken only for a
 * connection doing path MTU discovery (rudp_config.pmtud), and only when
 * the quote names a packet of that connection we sent, larger than what
 * the report says fits and than RUDP_MIN_SYN_SIZE, which the handshake
 * carried (stats.ptb_taken); a report that names the connection and fails
 * that only makes it probe the size it uses (stats.ptb_hints).
 */
void rudp_ctx_too_big(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *peer,
                      const uint8_t *quote, size_t len, uint32_t mtu);

/*
 * Our own kernel refused a datagram `sock` sent to `peer` (its address;
 * the port is not looked at) as larger than the device sends with the
 * don't-fragment bit: `mtu`, the device's IP MTU (IP_RECVERR with origin
 * SO_EE_ORIGIN_LOCAL, ee_info; only the kernel makes those, where a send's
 * EMSGSIZE may be any ICMP's pending error). Every connection on `sock` to
 * that address sending more comes down to what fits; one still
 * connecting, whose SYN (RUDP_MIN_SYN_SIZE) cannot fit, fails with
 * EMSGSIZE (RUDP_CAUSE_PATH_MTU).
 */
void rudp_ctx_device_mtu(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *peer,
                         uint32_t mtu);

/*
 * Runs due timers and sends what every connection has to send. Returns the
 * next deadline at which it must be called again (RUDP_TIME_NEVER if none).
 * Call it after every batch of rudp_ctx_input() and rudp_conn_* calls.
 */
rudp_time rudp_ctx_process(rudp_ctx *ctx, rudp_time now);

/* Connection events, as a bit mask. */
enum {
    RUDP_EV_ESTABLISHED = 1u << 0, /* client: handshake done */
    RUDP_EV_ACCEPT = 1u << 1,      /* server: new connection, see rudp_conn_listener() */
    RUDP_EV_READABLE = 1u << 2,    /* rudp_conn_read() has data or EOF */
    RUDP_EV_WRITABLE = 1u << 3,    /* send buffer has room again */
    RUDP_EV_ERROR = 1u << 4,       /* failed: rudp_conn_error() says why */
    RUDP_EV_CLOSED = 1u << 5,      /* reached CLOSED; release when done with it */
    RUDP_EV_ACKED = 1u << 6,       /* the peer acknowledged more of our stream, or our FIN */
    RUDP_EV_SILENT = 1u << 7,      /* client: RUDP_SILENT_PTOS probe timeouts in a row and
                                      nothing heard for RUDP_SILENT_MIN since the first of
                                      them (not since the last packet heard: an idle
                                      connection was not waiting), then every
                                      RUDP_SILENT_EVERY more: the path may be gone (a caller
                                      may rudp_conn_rebind to a new socket) */
    RUDP_EV_SENT = 1u << 8,        /* with notsent_lowat: everything written went out at
                                      least once (unsent_bytes reached 0) */
    RUDP_EV_SERVER_MOVED = 1u << 9, /* client: the server's address changed, or one is being
                                      validated, or given up: rudp_conn_server_addr() says
                                      where the caller's socket must now receive from */
    RUDP_EV_TOKEN = 1u << 10,      /* client: the server gave a token for a next connection:
                                      rudp_conn_token() */
    RUDP_EV_PATH = 1u << 11,       /* client: the connection now sends on its other socket
                                      (rudp_conn_standby): rudp_conn_sock() says which */
    RUDP_EV_OFFER = 1u << 12,      /* client: the server offered another address of its
                                      own: rudp_conn_server_offer() */
};
#define RUDP_SILENT_PTOS 3
#define RUDP_SILENT_EVERY 8
#define RUDP_SILENT_MIN RUDP_SEC(2)

/* The probe timeout backs off, doubling, up to this (or the PTO itself if
 * larger): a path that comes back after a blackout is found within it. */
#define RUDP_PTO_BACKOFF_MAX RUDP_SEC(1)
/* ... and in a longer silence up to an eighth of it, at most this (TCP's
 * TCP_RTO_MAX): recovery.c. */
#define RUDP_PTO_BACKOFF_CEIL RUDP_SEC(120)

/*
 * Pops the next connection with pending events. Returns 1 and fills *conn and
 * *events, or 0 when none is pending. Events of a released connection are
 * never reported.
 */
int rudp_ctx_next_event(rudp_ctx *ctx, rudp_conn **conn, unsigned *events);
/* Whether a connection has events queued for rudp_ctx_next_event (possibly
 * of a connection since released, which it then skips): a caller that ran
 * rudp_ctx_process on behalf of the one that pulls events asks, to wake it. */
int rudp_ctx_events_pending(const rudp_ctx *ctx);

const rudp_stats *rudp_ctx_stats(const rudp_ctx *ctx);

/*
 * The memory that remote peers can make this context hold: connections and
 * what they sent (receive buffers). Past `bytes`, handshakes are refused,
 * receive windows stop growing, and data that needs more memory is dropped
 * unacknowledged (the peer sends it again). 0 (the default): no limit.
 * Send buffers hold the application's own data and are not counted.
 */
void rudp_ctx_set_memory_limit(rudp_ctx *ctx, uint64_t bytes);

/* What that budget counts now, in bytes. */
uint64_t rudp_ctx_memory(const rudp_ctx *ctx);

/* Log lines up to `level` (RUDP_LOG_*) go to ops->log; default RUDP_LOG_WARN. */
void rudp_ctx_set_log_level(rudp_ctx *ctx, int level);

/* Connections alive in the context (released ones still closing included). */
size_t rudp_ctx_conn_count(const rudp_ctx *ctx);

/*
 * Connections whose own side is not finished: data or a FIN not yet
 * acknowledged (ESTABLISHED, FIN_WAIT_1, CLOSING, CLOSE_WAIT, LAST_ACK).
 * What a process must wait for at exit so that nothing it wrote is lost.
 */
size_t rudp_ctx_unfinished(const rudp_ctx *ctx);

/* ---- keyed mode (crypto.c) ---------------------------------------------- */

#define RUDP_KEY_LEN 32

/*
 * Makes the context keyed; call it before any rudp_connect or rudp_listen.
 * Both ends hold the same 32-byte `key`. Every connection then runs an
 * authenticated X25519 handshake and protects every later datagram with an
 * AEAD under keys derived from the key and the ephemeral DH (README.md,
 * "Keyed mode"). A SYN without a valid MAC gets no answer at all
 * (stats.handshakes_rejected); any other datagram that fails authentication
 * is dropped (stats.auth_failed). `seed`: 32 fresh random bytes the
 * ephemeral keys are drawn from (a forward-secure generator), not the
 * context's seed. Returns 0, -EINVAL (connections or listeners exist),
 * -ENOMEM, or -ENOSYS (libsodium failed to initialise).
 */
int rudp_ctx_set_key(rudp_ctx *ctx, const uint8_t key[RUDP_KEY_LEN], const uint8_t seed[32]);

/*
 * Packet protection's ciphers (a bit each, as a SYN offers them) and what
 * they take: a keyed connection's DATA datagrams are sealed with the one
 * both ends agreed on.
 */
enum { RUDP_AEAD_CHACHA = 1, RUDP_AEAD_AESGCM = 2 };
#define RUDP_AEAD_KEY 32   /* key bytes, both ciphers */
#define RUDP_AEAD_NONCE 12 /* nonce bytes, both ciphers */
#define RUDP_AEAD_TAG 16   /* tag bytes, both ciphers */

/*
 * Another library for packet protection, installed by the caller
 * (rudp_ctx_set_aead), as ngtcp2's crypto backends are libraries the
 * caller links. Without one, every cipher is libsodium's, which the core
 * links for keyed mode anyway (X25519, BLAKE2b). Both compute the same
 * function of key, nonce, associated data and message, so an end sealing
 * with one opens the other end's datagrams sealed with either: each end
 * picks alone and the wire does not say which.
 *
 * A backend runs per context: start() makes its state for one, on the
 * thread that calls rudp_ctx_set_key or rudp_ctx_set_aead (an
 * application's, under the shim), where it may allocate; the other
 * functions run on the context's thread and must not block. A direction
 * is one key in one direction of one connection, the backend's to hold.
 *
 * The ciphers in `prefer` that the backend runs are its, the rest stay
 * libsodium's; of a preferred cipher libsodium can also run here,
 * datagrams of fewer than `split_below` ciphertext bytes are libsodium's
 * (0: none), for a backend with a larger cost per call and a smaller one
 * per byte.
 */
typedef struct rudp_aead_backend {
    const char *name;     /* its library's name, for logs and tests: "openssl" */
    uint8_t prefer;       /* RUDP_AEAD_* bits */
    uint32_t split_below; /* ciphertext bytes; 0: no split */
    size_t dir_bytes;     /* what a keyed direction holds beyond the core's
                             struct, for the context's memory budget */
    /* The backend's state for a context whose memory comes from mem (the
     * backend may use it too, until stop), and in *ciphers the RUDP_AEAD_*
     * it runs here. NULL: it does not run here (its library is missing):
     * every cipher is libsodium's. */
    void *(*start)(const rudp_mem *mem, uint8_t *ciphers);
    /* Gets ready to key directions of cipher (it runs it): 1 if it can
     * key some now, 0 if not (the cipher stays libsodium's). Called at
     * start for the preferred ciphers, later for others the core moves to
     * it. May allocate. */
    int (*prepare)(void *st, uint8_t cipher);
    /* Frees st; every direction keyed from it was unkeyed first. */
    void (*stop)(void *st);
    /* A direction of cipher keyed with key, or NULL if it has no room
     * (the direction is libsodium's then). Must not allocate: it runs on
     * the context's thread at a connection's handshake. */
    void *(*key)(void *st, uint8_t cipher, const uint8_t key[RUDP_AEAD_KEY]);
    /* Wipes dir's key and takes it back; dir is not used again. */
    void (*unkey)(void *st, uint8_t cipher, void *dir);
    /* Encrypts m (mlen bytes) in place and writes the tag, with ad (adlen
     * bytes) authenticated: 0, or -EIO (m is then garbage, not sent). */
    int (*seal)(void *dir, const uint8_t nonce[RUDP_AEAD_NONCE], const uint8_t *ad,
                size_t adlen, uint8_t *m, size_t mlen, uint8_t tag[RUDP_AEAD_TAG]);
    /* Authenticates c (clen bytes), tag and ad and decrypts into out (clen
     * bytes, apart from c): 0, or -EBADMSG (forged, or the library failed). */
    int (*open)(void *dir, const uint8_t nonce[RUDP_AEAD_NONCE], const uint8_t *ad,
                size_t adlen, const uint8_t *c, size_t clen, const uint8_t tag[RUDP_AEAD_TAG],
                uint8_t *out);
} rudp_aead_backend;

/*
 * Installs backend b (kept by pointer: it must outlive the context; NULL:
 * libsodium only) for the context's packet protection, before any
 * connection or listener exists, before or after rudp_ctx_set_key.
 * Returns 0 or -EINVAL (connections or listeners exist).
 */
int rudp_ctx_set_aead(rudp_ctx *ctx, const rudp_aead_backend *b);

/* A keyed context answers a key holder's DATA for a connection it does not
 * know, on a listener's socket, with a stateless reset (README "Keyed
 * mode"); on by default, and never for an ID tagged with another
 * context's index (rudp_ctx_set_cid_tag: that context answers for it). Turn
 * it off (on = 0) where another endpoint with the same address and port may
 * hold the connection and IDs do not say which: a reset from one that lacks
 * it would end a live connection (RFC 9000 §21.11). Returns 0, or -EINVAL
 * (not keyed). */
int rudp_ctx_set_keyed_reset(rudp_ctx *ctx, int on);

/* Per listener (on by default): off where other processes may hold the
 * listener's connections (an application's SO_REUSEPORT group: the kernel
 * spreads a peer's datagrams by its address and port, not by connection
 * ID, so a member that lacks a connection cannot know another has it). */
void rudp_listener_set_keyed_reset(rudp_listener *l, int on);

/* Per listener (off by default): give clients address tokens after the
 * handshake, and take the first data of a SYN with a valid unused token at
 * once (zero round trips, token.h). TCP_FASTOPEN on a listening socket. */
void rudp_listener_set_zero_rtt(rudp_listener *l, int on);

/* Per listener (off by default, never keyed): a connection from a loopback
 * address is reported with RUDP_EV_ACCEPT when its SYN is taken, rather
 * than at the client's first DATA, and its SYNACK is held until the caller
 * says its application's accept queue holds it (rudp_conn_accepted); it
 * becomes writable (RUDP_EV_WRITABLE) once established. Linux TCP on loopback
 * queues a connection before the client's connect() can return (the
 * client's last ACK is processed in the same softirq pass), and a server
 * that counts what it can accept relies on it. Only from loopback: the
 * address cannot be spoofed from outside, and over a network TCP too
 * queues half a round trip after the client has connected. A client that
 * never sends again ends as any SYN_RCVD connection does (RUDP_EV_ERROR). */
void rudp_listener_set_early_accept(rudp_listener *l, int on);
/* Server connection c, reported with RUDP_EV_ACCEPT, is in the
 * application's accept queue now: a SYNACK held for it is sent (see
 * rudp_listener_set_early_accept). Until then its client's SYNs earn no
 * SYNACK, as Linux answers none while the accept queue is full. */
void rudp_conn_accepted(rudp_conn *c, rudp_time now);

/* Listener l answers no DATA for an unknown connection ID with a reset
 * (keyed or not) before `until`; such datagrams are dropped and counted
 * (unknown_conn). For a port just taken over from another process of
 * ours whose connections are moving to a new port (shim/porthand.c):
 * their peers may send here until they learn it, and a reset would end
 * a live connection. */
void rudp_listener_quiet_resets(rudp_listener *l, rudp_time until);

/*
 * Names this server for its stateless resets: `id` (1 to 255 bytes) and the
 * key give a reset secret of its own, so the same id after a restart gives
 * the same tokens. Then a client that asks for it (every client since this
 * version) is given its connection's reset token inside the SYNACK,
 * encrypted, and needs no address of ours to check a reset: one behind a
 * NAT that rewrites our address and port is reset too. Servers sharing a
 * key must have different ids (RFC 9000 §21.11: one would hand out the
 * other's tokens); the listener's port is in the token too. Without an id
 * the token stays bound to the address the server sees (README "Keyed
 * mode"). Call it after rudp_ctx_set_key, before any listener. Returns 0 or
 * -EINVAL (not keyed, listeners or connections exist, bad length).
 */
int rudp_ctx_set_reset_id(rudp_ctx *ctx, const void *id, size_t len);

/* "chacha20-poly1305" or "aes256-gcm" for a keyed connection past its
 * handshake; NULL for an unkeyed one, or before its keys exist. */
const char *rudp_conn_cipher(const rudp_conn *c);

/* ---- tracing (qlog) ------------------------------------------------------ */

/*
 * What a connection did, event by event, for a qlog writer (shim/qlog.c).
 * Off unless rudp_ctx_set_trace() was called: then each hook costs one
 * pointer test. Events carry the time of the call being processed; values
 * are the core's own units (ns, bytes, bytes/s).
 */
enum rudp_trace_kind {
    RUDP_TRACE_PACKET_SENT = 1,
    RUDP_TRACE_PACKET_RECEIVED,
    RUDP_TRACE_PACKET_LOST,  /* declared lost; frames[] hold its stream range, if any */
    RUDP_TRACE_METRICS,      /* every value now: the writer reports those that changed */
    RUDP_TRACE_CONN_STATE,
    RUDP_TRACE_MTU,          /* the datagram size changed (path MTU discovery) */
    RUDP_TRACE_PATH,         /* the connection moved to another path (path.c, standby.c) */
};

#define RUDP_TRACE_FRAMES_MAX 8  /* frames described per packet; more are counted */
#define RUDP_TRACE_RANGES_MAX 16 /* ACK ranges described per packet; more are counted */

/* One frame: `type` is the wire's (0 PADDING, 1 PING, 2 ACK, 3 MAX_DATA,
 * 4 DATA_BLOCKED, 5 RESET, 6 PATH_CHALLENGE, 7 PATH_RESPONSE, 8 STREAM).
 * a, b: ACK delay (us) and -; STREAM offset and length; MAX_DATA and
 * DATA_BLOCKED the limit and -; RESET code and final size; PADDING its
 * length and -; PATH_* the data and -. */
typedef struct rudp_trace_frame {
    uint8_t type;
    uint8_t fin; /* STREAM with FIN */
    uint64_t a, b;
} rudp_trace_frame;

typedef struct rudp_trace_packet {
    uint8_t type;                /* 1 SYN, 2 RETRY, 3 SYNACK, 4 DATA, 5 RESET */
    uint8_t flags;               /* 0x1 ACK_NOW */
    uint64_t pn;                 /* expanded packet number */
    uint32_t length;             /* datagram bytes */
    uint32_t nframes, frames_omitted;
    rudp_trace_frame frames[RUDP_TRACE_FRAMES_MAX];
    /* The first ACK frame's ranges, descending, inclusive: */
    uint32_t nranges, ranges_omitted;
    struct { uint64_t lo, hi; } ranges[RUDP_TRACE_RANGES_MAX];
} rudp_trace_packet;

typedef struct rudp_trace_metrics {
    uint64_t cwnd, bytes_in_flight, ssthresh; /* ssthresh UINT64_MAX: none yet */
    uint64_t pacing_rate, delivery_rate;      /* bytes/s */
    rudp_time smoothed_rtt, min_rtt, latest_rtt, rtt_variance; /* 0: no sample yet */
    uint32_t pto_count;
    const char *cc;                           /* controller: "bbr", "cubic", "newreno" */
    const char *cc_state;                     /* its phase op's: "slow start", "ProbeBW", ... (cc.h) */
} rudp_trace_metrics;

typedef struct rudp_trace_event {
    int kind; /* RUDP_TRACE_* */
    rudp_time now;
    const rudp_trace_packet *packet;   /* PACKET_SENT, PACKET_RECEIVED, PACKET_LOST */
    const rudp_trace_metrics *metrics; /* METRICS */
    rudp_state old_state, new_state;   /* CONN_STATE */
    const char *why;                   /* CONN_STATE: what caused it; MTU: why it changed */
    uint32_t mtu_old, mtu_new;         /* MTU: the largest datagram's payload, bytes */
    uint8_t mtu_done;                  /* MTU: the search is over (until the next raise) */
    const rudp_addr *path_peer;        /* PATH: where the connection sends now; why: "peer
                                          moved", "to the standby", "back to the primary" */
    rudp_time path_rtt;                /* PATH: the RTT it starts from (0: the initial one) */
} rudp_trace_event;

typedef struct rudp_trace_ops {
    /* A connection starts (its first state change; `is_server` tells the
     * side). Returns the handle its events go to, or NULL: not traced. */
    void *(*open)(void *user, rudp_conn *c, int is_server, rudp_time now);
    /* One event; the structures are valid during the call only. */
    void (*event)(void *handle, const rudp_trace_event *ev);
    /* The connection is freed: the handle's last call. */
    void (*close)(void *handle, rudp_time now);
} rudp_trace_ops;

/* Traces connections that start from now on through `ops` (copied; NULL
 * turns tracing off for them). Call it before any connection is traced
 * (the shim does when it makes the context): the handles of connections
 * traced already belong to the old ops, which would no longer be called
 * to close them (an assertion checks). */
void rudp_ctx_set_trace(rudp_ctx *ctx, const rudp_trace_ops *ops, void *user);

/* ---- listeners ---------------------------------------------------------- */

/*
 * Starts accepting handshakes that arrive on `sock`. New connections are
 * reported with RUDP_EV_ACCEPT once established. `backlog` bounds the
 * connections in SYN_RCVD; while one accepted connection waits for the
 * application (rudp_conn_set_waiting), the accept queue is full. Either
 * way further handshakes are dropped (the client retries), as TCP does; so
 * are those from a source address with cfg->source_limit connections in
 * the handshake or waiting. A SYN is answered by a SYNACK at once (the
 * client connects in one round trip) unless half the backlog is in
 * SYN_RCVD, or its source has half its source_limit, or half the memory
 * limit is in use, or cfg->retry is RUDP_RETRY_ALWAYS: then by a stateless
 * RETRY, and only a SYN echoing its cookie makes a connection (stats:
 * handshakes_direct, retries_*). `cfg` may be NULL (the context defaults).
 * Returns 0, -EADDRINUSE (a listener already owns `sock`), -ENOMEM.
 */
int rudp_listen(rudp_ctx *ctx, uint32_t sock, const rudp_config *cfg,
                unsigned backlog, rudp_listener **out);

/*
 * An accept queue the caller counts, shared with other contexts (the
 * shim's engines, each with a listener on one port). `room` is asked
 * before answering a handshake that the listener's own bounds let through:
 * 0 drops it as a full accept queue does (the client retries). `moved` is
 * told by how much the number of the listener's connections held on the
 * way to the application changed: those in the handshake (answered, so
 * their clients count as connected), those established and reported with
 * RUDP_EV_ACCEPT until rudp_conn_set_waiting(c, 0) says the application's
 * queue took them (or they end), and those waiting. Both are called from
 * inside rudp_ctx_input, rudp_ctx_timeout and the calls that end or move a
 * connection; either may be NULL. Call it before handshakes arrive.
 */
typedef struct rudp_acceptq_ops {
    int (*room)(void *arg);
    void (*moved)(void *arg, int delta);
} rudp_acceptq_ops;
void rudp_listener_set_acceptq(rudp_listener *l, const rudp_acceptq_ops *ops, void *arg);

/*
 * Stops accepting on the listener and frees it. Connections already made
 * from it are unaffected; later handshakes to `sock` are refused.
 */
void rudp_listener_close(rudp_listener *l);

/* ---- connections -------------------------------------------------------- */

/*
 * Starts a handshake from `sock` to `peer`; the connection is in SYN_SENT and
 * reports RUDP_EV_ESTABLISHED or RUDP_EV_ERROR (-ECONNREFUSED, -ETIMEDOUT).
 * `cfg` may be NULL. Returns 0, -EINVAL, -ENOMEM.
 */
int rudp_connect(rudp_ctx *ctx, rudp_time now, uint32_t sock,
                 const rudp_addr *peer, const rudp_config *cfg,
                 rudp_conn **out);

/*
 * A returning client's handshake (token.h): as rudp_connect, but the SYN
 * carries `token` (token_len bytes, an earlier connection's
 * rudp_conn_token() from this server; single use: drop it after) and, in
 * place of its padding, the first stream bytes written. With hold = 0 the
 * SYN leaves now with the token alone (nothing is written yet: the token
 * still spares a RETRY). With hold > 0 the SYN waits for the
 * first rudp_conn_write() (whose bytes, as many as fit, ride with it) or
 * for `hold` ns, whichever comes first, then leaves (TCP_FASTOPEN_CONNECT:
 * connect() returns at once and the SYN leaves with the first write).
 * Bytes that do not fit wait for the SYNACK. The SYNACK says whether the
 * server took them (a valid, unused token): if not, they are sent again as
 * ordinary data, so nothing is lost or delivered twice. Keyed, the SYN's
 * bytes are encrypted (docs/security.md). Returns as rudp_connect.
 */
int rudp_connect_token(rudp_ctx *ctx, rudp_time now, uint32_t sock, const rudp_addr *peer,
                       const rudp_config *cfg, const uint8_t *token, size_t token_len,
                       rudp_time hold, rudp_conn **out);

/* The SYN held by rudp_connect_token leaves now, if it has not (a no-op
 * otherwise). */
void rudp_conn_syn_release(rudp_conn *c, rudp_time now);

/* Client: the newest token the server gave this connection (RUDP_EV_TOKEN),
 * copied to buf (cap >= RUDP_TOKEN_MAX_BYTES); returns its length, 0 if
 * none. */
#define RUDP_TOKEN_MAX_BYTES 32
size_t rudp_conn_token(const rudp_conn *c, uint8_t *buf, size_t cap);

/* Client: whether the server took the stream bytes this connection's SYN
 * carried (0-RTT): 1 taken, 0 not (or none sent). */
int rudp_conn_zero_rtt(const rudp_conn *c);

/*
 * Queues bytes for sending. Returns the count accepted (possibly fewer than
 * len: the send buffer is bounded), -EAGAIN when the buffer is full,
 * -EPIPE after rudp_conn_shutdown(), or the connection's error.
 * Data written in SYN_SENT is sent once the handshake completes.
 */
ssize_t rudp_conn_write(rudp_conn *c, rudp_time now, const void *buf, size_t len);

/* Free space in the send buffer, in bytes (0 once shut down or failed). */
size_t rudp_conn_write_space(const rudp_conn *c);

/* Bytes written and never sent yet (rudp_conn_info's unsent_bytes, without
 * the rest of the info). */
uint64_t rudp_conn_unsent(const rudp_conn *c);
/* Bytes written and not yet acknowledged (rudp_conn_info's unacked_bytes). */
uint64_t rudp_conn_unacked(const rudp_conn *c);

/* The room worth waking a writer for, once the buffer was full: what
 * RUDP_EV_WRITABLE waits for (a quarter of the send limit, at most 64 KiB,
 * at most half TCP_NOTSENT_LOWAT's mark; at least 1). */
size_t rudp_conn_write_threshold(const rudp_conn *c);

/*
 * Reads in-order bytes. Returns the count, 0 at end of stream (the peer's
 * FIN, after every byte before it), -EAGAIN when nothing is ready, or the
 * connection's error (-ECONNRESET, -ETIMEDOUT) once its data is exhausted.
 */
ssize_t rudp_conn_read(rudp_conn *c, rudp_time now, void *buf, size_t len);

/* Bytes rudp_conn_read() would return now without blocking. */
size_t rudp_conn_readable(const rudp_conn *c);

/* Whether the peer's FIN came, with every byte before it (TCP's SOCK_DONE:
 * its reads end in EOF, even after a reset that came next). */
int rudp_conn_fin_received(const rudp_conn *c);

/*
 * Zero-copy reading: *p points at the next in-order bytes, valid until the
 * next call on the connection or on its context (input may move a buffer's
 * first small block, sbuf.h); returns how many are contiguous there (0 if
 * none: use rudp_conn_read() to learn EOF or the error). Then
 * rudp_conn_consume() takes n <= that many, opening the window as a read does.
 */
size_t rudp_conn_peek(const rudp_conn *c, const uint8_t **p);

/* 1 while in-order bytes wait with RUDP_EV_READABLE held back (rx_hold):
 * more is on its way and the event comes with it, or within rx_hold. */
int rudp_conn_rx_held(const rudp_conn *c);
/* 1 while the peer's last packet said it has more to send (no ACK_NOW),
 * on a path where rx_hold applies (smoothed RTT at least 4 rx_hold) and
 * before the peer's FIN: a bulk transfer arriving, whose next datagrams
 * may be read together a moment later (the shim's receive moderation). */
int rudp_conn_rx_more(const rudp_conn *c);
/* 1 while c's pacer holds stream data back that the window lets go, its
 * next burst due within `within` of now, on a path of a smoothed RTT of
 * at least 4 `within`: a bulk sender, which wakes for that burst anyway,
 * so its ACKs may be read then (the shim's moderation at the sender, its
 * ACKs timed by their kernel receive time). */
int rudp_conn_tx_paced(const rudp_conn *c, rudp_time now, rudp_time within);
void rudp_conn_consume(rudp_conn *c, rudp_time now, size_t n);

/*
 * Zero-copy writing: *p points at free send-buffer space; returns how many
 * contiguous bytes may be written there (0 when full, shut down or failed).
 * rudp_conn_commit() then queues n <= that many. Returns -ENOMEM if the
 * buffer could not be allocated. The space is valid until the next call
 * on the connection: the first bytes of an emptied send buffer may get a
 * small block (1 KiB) that a later reservation moves.
 */
ssize_t rudp_conn_reserve(rudp_conn *c, uint8_t **p);
void rudp_conn_commit(rudp_conn *c, rudp_time now, size_t n);

/*
 * The same over several buffer chunks at once, so that one readv()/writev()
 * moves up to max * 16 KiB: up to max spans of the next in-order bytes (each
 * a pointer and a length, in order; rudp_conn_consume() the total or less),
 * or of free send-buffer space (rudp_conn_commit() the total or less;
 * with max > 1 each span a whole chunk, so a copy may fill them all).
 * Return the number of spans: 0 as the single calls return 0, -ENOMEM.
 */
/*
 * Urgent data (TCP's MSG_OOB): rudp_conn_urgent_mark() makes the next byte
 * committed to the send stream urgent (the last byte of an urgent send);
 * the peer learns its offset. A later mark replaces an earlier one.
 * rudp_conn_urgent() tells the receiving side of the peer's mark: 1 with
 * *before = in-order bytes to read before the urgent byte (0: the next
 * byte read is it), or 0 when there is none or its byte was read.
 */
void rudp_conn_urgent_mark(rudp_conn *c);
int rudp_conn_urgent(const rudp_conn *c, uint64_t *before);

typedef struct rudp_span {
    uint8_t *p;
    size_t len;
} rudp_span;
int rudp_conn_peek_spans(const rudp_conn *c, rudp_span *sp, int max);
int rudp_conn_reserve_spans(rudp_conn *c, rudp_span *sp, int max);

/*
 * Half-close: a FIN follows the bytes already queued. Idempotent. Returns 0,
 * or -ENOTCONN on a connection that failed or is closed.
 */
int rudp_conn_shutdown(rudp_conn *c, rudp_time now);

/*
 * Aborts, as TCP's close() with SO_LINGER {1, 0}: bytes written but not yet
 * sent go out first as far as the congestion window and pacing allow now
 * (TCP would have sent them at write time), the rest is discarded, a reset
 * follows, and the connection goes to CLOSED. The peer reads what arrived
 * and then sees -ECONNRESET.
 */
void rudp_conn_abort(rudp_conn *c, rudp_time now);

/*
 * The application closed before bytes that have arrived could reach it:
 * TCP's close() had sent its FIN, and those bytes drew a reset
 * (tcp_rcv_state_process(): data for a socket the application closed). So
 * a FIN after what is queued, then, once all of it has gone out (as for
 * rudp_conn_close_unread below), the reset, whose frame names where our
 * stream ends
 * (RUDP_RESET_AFTER_FIN): a peer that received all of it takes the reset
 * as coming after our FIN even if the FIN itself is still held back or
 * lost, and reports -ECONNRESET in CLOSE_WAIT (its reads end in EOF, as
 * TCP's peer's do). The connection is CLOSED after; a connection that
 * failed or is closed is left as it is.
 */
void rudp_conn_close_reset(rudp_conn *c, rudp_time now);

/*
 * The application closed with bytes that reached it unread: TCP's close()
 * resets, having sent what the application wrote at write time as far as
 * its windows let it. So the bytes queued go first, as the window and
 * pacing allow, for a few round trips at most (at least 10 ms), then the
 * reset (whatever is still unsent is dropped, as TCP's); the peer's new
 * bytes meanwhile are dropped. The connection is CLOSED after. The
 * rudp_conn_release that follows does not change it. A connection that
 * failed or is closed is left as it is.
 */
void rudp_conn_close_unread(rudp_conn *c, rudp_time now);

/*
 * The caller is done with the handle. A connection still open is shut down
 * (a graceful FIN after queued data) and finishes on its own within the
 * configured linger, then frees itself; if unread data is pending or arrives
 * later, it is reset instead, as TCP does on close(). The handle must not be
 * used afterwards.
 */
void rudp_conn_release(rudp_conn *c, rudp_time now);

/* 0, or the negative errno the connection failed with. */
int rudp_conn_error(const rudp_conn *c);

rudp_state rudp_conn_state(const rudp_conn *c);

/*
 * An accepted connection the application could not take yet (waiting = 1),
 * or has taken now (0). While any connection of a listener waits, its
 * accept queue counts as full: new handshakes are dropped. A connection
 * that is released or fails stops waiting by itself. Until one of these
 * calls, an accepted connection counts as held for rudp_acceptq_ops.
 */
void rudp_conn_set_waiting(rudp_conn *c, int waiting);

/* The listener a server-side connection came from, or NULL. Valid until
 * that listener is closed. */
rudp_listener *rudp_conn_listener(const rudp_conn *c);

void rudp_conn_set_user(rudp_conn *c, void *user);
void *rudp_conn_user(const rudp_conn *c);

const rudp_addr *rudp_conn_peer(const rudp_conn *c);

/* For a server-side connection: the address the client sent its handshake
 * to, if the caller passed it to rudp_ctx_input; NULL otherwise. */
const rudp_addr *rudp_conn_local(const rudp_conn *c);

/* A value of the caller's that each datagram of the connection carries to
 * the send_from callback (0 until set): how the caller sends them (their
 * source address, IP marks), kept as long as the connection lives, also
 * after the caller let go of it (its closing handshake). */
void rudp_conn_set_send_tag(rudp_conn *c, uint64_t tag);
uint64_t rudp_conn_send_tag(const rudp_conn *c);
uint32_t rudp_conn_sock(const rudp_conn *c);

/*
 * A client's connection moves to the caller's socket `sock` (its old one
 * failed: the address went away, the route changed, or the path went
 * silent): the same connection goes on from a new address and port, and
 * the server follows it once it has validated the new address (path.h).
 * `new_ip`: the local IP address changed too (congestion control and the
 * RTT estimate start over). Packets still arriving on the old socket are
 * taken. Returns 0, or -EINVAL (a server's connection, or not
 * established).
 */
int rudp_conn_rebind(rudp_conn *c, rudp_time now, uint32_t sock, int new_ip);

/*
 * Handover (core/standby.c): a client's connection keeps the caller's
 * second socket `sock`, which reaches the server by another interface (or
 * reaches `server`, an address the server offered: NULL for its own),
 * validated as a standby path (a PATH_CHALLENGE at the keepalive interval),
 * and moves to it when the path in use goes silent (RUDP_EV_PATH; back when
 * the primary answers again). Returns 0, or -EINVAL (a server's connection,
 * not established, or sock is the one in use). rudp_conn_standby_clear
 * forgets it (the caller closes it): the connection stays on the socket
 * rudp_conn_sock() names. rudp_conn_standby_sock: 1 and *sock the other
 * socket (the standby, or the primary after a handover), or 0.
 */
int rudp_conn_standby(rudp_conn *c, rudp_time now, uint32_t sock, const rudp_addr *server);
void rudp_conn_standby_clear(rudp_conn *c);
int rudp_conn_standby_sock(const rudp_conn *c, uint32_t *sock);
/* Client: 1 and *out the address the server offered (RUDP_EV_OFFER), or 0. */
int rudp_conn_server_offer(const rudp_conn *c, rudp_addr *out);
/* Server: connection c offers its client `local`, another address of this
 * host the client may reach it at on the same port (a listener bound to
 * every address: the caller passes each datagram's destination to
 * rudp_ctx_input), as a standby path. Sent (SERVER_ADDR) to a client whose
 * build takes it, again at the keepalive interval until the client is heard
 * there (at most 4 times). 0, or -EINVAL (a client's connection, not
 * established, another family). */
int rudp_conn_offer_addr(rudp_conn *c, rudp_time now, const rudp_addr *local);

/*
 * A server's connection leaves its socket for the caller's socket `sock`,
 * bound to the same local address on UDP port `port` (the listener's port
 * is given up to the application). The client is told in a NEW_PORT
 * frame: a few copies from the old socket at once (it must still be the
 * caller's until rudp_ctx_process or the send callbacks have run), then
 * from the new one until the client is heard there (path.h). Returns 0,
 * or -EINVAL (a client's connection, one not past its handshake or in
 * TIME_WAIT, a bad port).
 */
int rudp_conn_move_port(rudp_conn *c, rudp_time now, uint32_t sock, unsigned port);
/* Whether rudp_conn_move_port would move c (a server's, established and
 * not in TIME_WAIT): 1 or 0. */
int rudp_conn_movable(const rudp_conn *c);
/*
 * The connections the application released (rudp_conn_release: closing)
 * that socket `sock` carries with stream bytes still unacknowledged, or
 * their FIN in FIN_WAIT_1 (so their client, which has not read them all
 * or not the end, is not in TIME_WAIT and follows a NEW_PORT):
 * _released_movable counts them, and rudp_ctx_move_released moves each to
 * socket `to`, port `port`, as rudp_conn_move_port; returns how many
 * moved. One in CLOSING or LAST_ACK, only its FIN left to be acknowledged
 * (its client may be in TIME_WAIT), is not moved.
 * Those the caller still holds it moves itself.
 */
int rudp_ctx_released_movable(const rudp_ctx *ctx, uint32_t sock);
int rudp_ctx_move_released(rudp_ctx *ctx, rudp_time now, uint32_t sock, uint32_t to,
                           unsigned port);

/*
 * A server's connection lost its local address (deleted, or no longer
 * routed): it sends from `local` from now on (the caller's choice: the
 * source routing picks toward the peer), on the same socket. Congestion
 * control, the RTT estimate and the path MTU start over. The client
 * validates the new address before it moves there (path.h); until it is
 * heard again no ICMP error ends the connection. `local` NULL: the address
 * went and routing has no other yet; only the ICMP errors are held, until
 * a call with the new one. Returns 0, or -EINVAL (a client's connection,
 * one not past its handshake or in TIME_WAIT, an address of another
 * family).
 */
int rudp_conn_move_local(rudp_conn *c, rudp_time now, const rudp_addr *local);

/* A client's connection: where its socket must receive from (the
 * server's address, or the new port being validated). 0, or -EINVAL for
 * a server's connection. */
int rudp_conn_server_addr(const rudp_conn *c, rudp_addr *out);

/* What TCP_INFO and SIOCOUTQ report, taken from the connection. */
typedef struct rudp_conn_info {
    rudp_state state;
    uint64_t rtt_us, rttvar_us, min_rtt_us;
    uint64_t cwnd_bytes, ssthresh_bytes;
    uint64_t bytes_in_flight;
    uint64_t unacked_bytes;       /* written but not yet acknowledged (SIOCOUTQ) */
    uint64_t unsent_bytes;        /* written but never sent yet (SIOCOUTQNSD) */
    uint64_t readable_bytes;      /* in-order bytes waiting for rudp_conn_read (SIOCINQ) */
    uint64_t retransmits;         /* packets declared lost, lifetime */
    uint64_t pto_count;           /* consecutive probe timeouts now */
    uint64_t bytes_sent, bytes_received, bytes_acked;
    uint64_t pacing_rate;         /* bytes per second, 0 if not pacing */
    uint64_t delivery_rate;       /* bytes per second, the last delivery-rate sample */
    int delivery_app_limited;     /* ... taken while the sender was app-limited */
    int receiver_limited;         /* bytes wait that the peer's window does not admit yet */
    uint64_t peer_window;         /* bytes the peer's flow control allows beyond those acked */
    uint32_t recv_window;         /* the most our receive window may grow to (the config's,
                                     or the app's SO_RCVBUF: rudp_conn_set_buffers) */
    uint32_t mss;                 /* the largest datagram's payload now (path MTU) */
    uint32_t pmtu_probes, pmtu_probes_lost; /* path MTU probes sent, and lost or too big */
    uint32_t pmtu_fallbacks;      /* times a black hole sent it back to the base size */
    uint64_t local_cid, peer_cid;
    uint64_t conn_id;             /* rudp_conn_id: the same at both ends */
    uint32_t path_moves;          /* server: the peer's address changed */
    uint32_t rebinds;             /* client: we moved to a new socket */
    uint32_t path_failed;         /* a new address never answered its challenge */
    uint32_t handovers, handbacks; /* core/standby.c's moves */
    int standby;                  /* 1: a standby path, 2: validated; 0 none */
    int on_standby;               /* client: sending on it (handed over) */
    uint32_t standby_pkts;        /* datagrams sent for it */
    uint64_t standby_rtt_us;      /* its round trip, from its last answered challenge */
    uint32_t standby_challenges;  /* client: challenges sent on it ... */
    uint32_t standby_unanswered;  /* ... and unanswered in a row now */
    rudp_time last_rx;            /* when the peer was last heard (the callers' clock) */
    rudp_time longest_silence;    /* the longest time it went unheard */
} rudp_conn_info;

void rudp_conn_get_info(const rudp_conn *c, rudp_conn_info *info);

/* ---- words for people (report.c) ---- */

/*
 * The connection's name in log lines: "LOCAL > PEER id ID" with
 * rudp_conn_id in 16 hex digits, the same in every line about it and at
 * both ends (LOCAL "*" until known). Returns the length snprintf would give.
 */
size_t rudp_conn_name(const rudp_conn *c, char *buf, size_t len);

/*
 * The connection's ID for people: the client's connection ID, the source
 * ID of its first SYN, which both ends know from the start. Each end
 * routes by its own ID (rudp_conn_info.local_cid), which differ; this one
 * is what log lines, rudp-stat and qlog file names show, so that the two
 * ends of one connection can be matched (as QUIC's qlog groups both ends'
 * traces by the client's original destination ID).
 */
uint64_t rudp_conn_id(const rudp_conn *c);

/* The local address to show in the name (the caller knows its socket's);
 * a listener's is given to the connections it accepts. */
void rudp_conn_set_name_local(rudp_conn *c, const rudp_addr *local);
void rudp_listener_set_name_local(rudp_listener *l, const rudp_addr *local);

/* "1.2.3.4:80", "[2001:db8::1]:80"; returns the length snprintf would give. */
size_t rudp_addr_format(const rudp_addr *a, char *buf, size_t len);

/* A datagram's packet type by name ("DATA", "DATA+ACK_NOW", "SYN", ...),
 * from its header's type byte, for debug lines. */
const char *rudp_packet_name(const uint8_t *buf, size_t len);

/* The same from the type (1 SYN, 2 RETRY, 3 SYNACK, 4 DATA, 5 RESET) and
 * flags (0 or 1, ACK_NOW) as rudp_trace_packet holds them; NULL for a type
 * or flags no packet has. */
const char *rudp_packet_type_name(unsigned type, unsigned flags);

/* Why a connection failed, for a message that helps the person. */
typedef enum rudp_cause {
    RUDP_CAUSE_NONE = 0,
    RUDP_CAUSE_ICMP,              /* an ICMP error in the handshake (see rudp_conn_error) */
    RUDP_CAUSE_REFUSED,           /* the peer's engine answered: no listener on the port */
    RUDP_CAUSE_RESET,             /* the peer reset the connection */
    RUDP_CAUSE_HANDSHAKE_TIMEOUT, /* connect_timeout passed without an answer */
    RUDP_CAUSE_USER_TIMEOUT,      /* data unacknowledged for user_timeout */
    RUDP_CAUSE_IDLE_TIMEOUT,      /* nothing heard for idle_timeout */
    RUDP_CAUSE_ABORTED,           /* rudp_conn_abort() */
    RUDP_CAUSE_NO_MEMORY,         /* a table could not grow */
    RUDP_CAUSE_NO_AUTH_ANSWER,    /* keyed: connect_timeout passed without an authenticated
                                     answer (the peer's key differs, or it is not keyed) */
    RUDP_CAUSE_KEY_REQUIRED,      /* unkeyed: the peer refused the SYN for want of a key */
    RUDP_CAUSE_KEY_MISMATCH,      /* keyed: only unauthenticated answers came for
                                     RUDP_KEY_VERDICT: the peer has another key or none */
    RUDP_CAUSE_KEY_PEER_NONE,     /* the same, and one of them says the peer has no key */
    RUDP_CAUSE_PATH_MTU,          /* the path cannot carry RUDP_MIN_SYN_SIZE-byte datagrams
                                     (rudp_ctx_device_mtu): EMSGSIZE */
} rudp_cause;

rudp_cause rudp_conn_cause(const rudp_conn *c);

/* Whether the peer has answered this connect at all (its RETRY says it
 * runs rudp), established or not. */
int rudp_conn_answered(const rudp_conn *c);
/* Whether a keyed connect, still unanswered, heard answers that failed
 * authentication (a peer with another key or none, or a forger): evidence
 * only; the connect fails on it at RUDP_KEY_VERDICT (keystate.c). */
int rudp_conn_unauth_answers(const rudp_conn *c);
/* A connect still in its handshake sends its SYN again now, re-arming the
 * handshake timer (the shim's fallback races kernel TCP with a fresh SYN). */
void rudp_conn_handshake_again(rudp_conn *c, rudp_time now);
const char *rudp_cause_text(rudp_cause cause);

/* The process ends with these connections still open (closing, or in
 * TIME_WAIT): their close lines now, and their RTTs in the stats. */
void rudp_ctx_report_remaining(rudp_ctx *ctx);

/* A handshake unanswered this long is reported at RUDP_LOG_WARN, once,
 * while the connection keeps trying until connect_timeout. */
#define RUDP_SLOW_CONNECT RUDP_SEC(3)

/* A keyed connect that hears only unauthenticated answers (a KEY refusal,
 * an unkeyed SYNACK: anyone on the path can send those) fails with
 * ECONNREFUSED (RUDP_CAUSE_KEY_MISMATCH) this long after connect(), and at
 * least RUDP_KEY_VERDICT_AFTER after the first of them, unless an
 * authenticated answer came first (keystate.c, docs/security.md). */
#define RUDP_KEY_VERDICT RUDP_SEC(1)
#define RUDP_KEY_VERDICT_AFTER RUDP_MS(250)

/* ---- inspection (inspect.c), for diagnostics such as rudp-stat ---------- */

/* The connection after `prev` in the context (prev NULL: the first), released
 * ones still closing included; NULL after the last. The list is valid until
 * the next call that feeds the context (input, process, a conn call). */
const rudp_conn *rudp_ctx_conn_next(const rudp_ctx *ctx, const rudp_conn *prev);

/* When the connection was created (its handshake began), in `now` time. */
rudp_time rudp_conn_start_time(const rudp_conn *c);

/* The congestion controller's name ("bbr") and phase now ("ProbeBW",
 * "slow start", "recovery", ...; "" if it has none): static strings. */
void rudp_conn_cc_state(const rudp_conn *c, const char **name, const char **phase);

/* The application chose another controller (setsockopt TCP_CONGESTION;
 * NULL: the default): a live connection switches to it at once, keeping
 * its window (cc/cc.c); a listener gives it to the connections it
 * accepts from now on. */
void rudp_conn_set_cc(rudp_conn *c, const rudp_cc_ops *ops, rudp_time now);
void rudp_listener_set_cc(rudp_listener *l, const rudp_cc_ops *ops);

/* The application sized its socket (SO_SNDBUF, SO_RCVBUF, TCP_WINDOW_CLAMP,
 * TCP_NOTSENT_LOWAT): a live connection takes the new send buffer and
 * receive window at once, within what its buffers were made for (the
 * config it started with) and no smaller than 4 KiB and two datagrams; a
 * window smaller than the one advertised stops growing and opening until
 * reads bring it under (what was advertised is never taken back). A
 * listener gives them to the connections it accepts from now on, within
 * rudp_config_check()'s bounds. 0 leaves a value as it is, except
 * notsent_lowat, where 0 is "no limit". A lower or removed notsent_lowat
 * that frees room raises RUDP_EV_WRITABLE. */
void rudp_conn_set_buffers(rudp_conn *c, uint32_t send_buffer, uint32_t recv_window,
                           uint32_t notsent_lowat);
void rudp_listener_set_buffers(rudp_listener *l, uint32_t send_buffer, uint32_t recv_window,
                               uint32_t notsent_lowat);

/* The connection's keepalive, idle timeout and user timeout (as
 * rudp_config's; keepalive and idle_timeout 0 turn them off, user_timeout 0
 * leaves it), as TCP_KEEPIDLE and the like change a live TCP socket's: the
 * keepalive and idle timers count from the peer's last packet, as TCP's
 * keepalive from its last segment. A keepalive not shorter than the idle
 * timeout is taken as half of it. */
void rudp_conn_set_timeouts(rudp_conn *c, rudp_time now, rudp_time keepalive,
                            rudp_time idle_timeout, rudp_time user_timeout);

/* TCP_CORK on (1) or off (0): while on, new bytes short of a full datagram
 * wait until more come, the connection shuts down, it is turned off (which
 * sends them at once), or 200 ms pass (Linux's ceiling). */
void rudp_conn_set_cork(rudp_conn *c, int on);

#endif
