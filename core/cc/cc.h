/*
 * cc.h: congestion control behind a table of function pointers.
 *
 * The connection owns a rudp_cc and calls the ops on send, on each ACK
 * event, on a congestion event (packets declared lost) and on persistent
 * congestion. An algorithm keeps its private state in cc->st and publishes
 * cwnd (bytes) and, if it paces by its own model, pacing_rate (bytes/s; 0
 * lets the connection pace at gain * cwnd / srtt). One file per algorithm.
 */
#ifndef RUDP_CC_H
#define RUDP_CC_H

#include <stdint.h>

#include "rtt.h"
#include "rudp.h"

typedef struct rudp_cc rudp_cc;

/* What one ACK frame did, as a controller needs it. */
typedef struct rudp_cc_ack {
    rudp_time now;
    uint64_t acked_bytes;        /* in-flight bytes newly acknowledged */
    uint64_t bytes_in_flight;    /* after this ACK */
    rudp_time largest_sent_time; /* send time of the largest newly acked packet */
    const rudp_rtt *rtt;
    /* Delivery-rate sample (draft-cheng-iccrg-delivery-rate-estimation). */
    uint64_t delivered;      /* bytes delivered over the connection's life */
    /* Bytes delivered within the sample interval. Always set when
     * acked_bytes is: delivered - rs_delivered is the value `delivered` had
     * when the newest acknowledged packet was sent, which is what counting
     * round trips needs (a round ends once that reaches the `delivered`
     * seen when the round began). */
    uint64_t rs_delivered;
    rudp_time rs_interval;   /* 0: no valid sample */
    int rs_app_limited;      /* the sample was taken while app-limited */
    uint64_t lost_bytes;     /* declared lost while processing this ACK */
} rudp_cc_ack;

struct rudp_cc_ops {
    const char *name;
    void (*init)(rudp_cc *cc, rudp_time now);
    /* An in-flight packet left; `app_limited` if the sender ran out of data. */
    void (*on_sent)(rudp_cc *cc, rudp_time now, uint64_t bytes, uint64_t in_flight);
    void (*on_ack)(rudp_cc *cc, const rudp_cc_ack *a);
    /* Packets declared lost; `sent_time` of the newest of them. */
    void (*on_loss)(rudp_cc *cc, rudp_time now, rudp_time sent_time, uint64_t lost_bytes,
                    uint64_t in_flight);
    void (*on_persistent_congestion)(rudp_cc *cc, rudp_time now);
    /* Optional: the controller's phase now, a static string for people
     * (rudp-stat, and qlog's congestion state): "Startup", "Drain",
     * "ProbeBW", "ProbeRTT" (bbr); "slow start", "conservative slow start"
     * (cubic's HyStart++), "avoidance", "recovery" (loss-based). */
    const char *(*phase)(const rudp_cc *cc);
};

struct rudp_cc {
    const rudp_cc_ops *ops;
    uint64_t cwnd;          /* bytes */
    uint64_t ssthresh;      /* bytes; UINT64_MAX until the first loss */
    uint64_t pacing_rate;   /* bytes/s, 0 = let the connection derive it */
    uint32_t mss;           /* max payload bytes of a datagram */
    int app_limited;        /* set by the connection: sender is not cwnd-limited */
    rudp_time recovery_start;
    rudp_time epoch;        /* rudp__cc_setup's now: packets sent before it (on
                               another path, before a move) say nothing of this
                               one; their loss is not congestion (RFC 9002 §9.4) */
    int recovering;         /* loss-based: from a reduction until a packet sent
                               after it is acknowledged (rudp__cc_loss_phase) */
    uint64_t rnd_key[2];    /* rudp__cc_random's key (rudp__cc_seed); kept by
                               rudp__cc_setup and rudp__cc_switch */
    uint64_t rnd_n;         /* draws so far */
    uint64_t st[32];        /* algorithm-private state */
};

/* Initial and minimum windows, RFC 9002 §7.2. */
static inline uint64_t rudp__cc_initial_window(uint32_t mss)
{
    uint64_t w = 14720 > 2ull * mss ? 14720 : 2ull * mss;
    return 10ull * mss < w ? 10ull * mss : w;
}
static inline uint64_t rudp__cc_min_window(uint32_t mss) { return 2ull * mss; }

/* Cube root of x (0 for x <= 0), for CUBIC's K; the library links no libm. */
double rudp__cc_cbrt(double x);

/* The phase of a loss-based controller (NewReno, CUBIC): "recovery",
 * "slow start" (cwnd below ssthresh) or "avoidance". */
const char *rudp__cc_loss_phase(const rudp_cc *cc);

/* Helpers the loss-based controllers share (cc_common.c, as are the cube
 * root, the phase, Vegas's rounds and the random draws below; the
 * registry, set-up and switch are cc.c's). */
/* A packet sent at sent_time belongs to the recovery period under way. */
int rudp__cc_in_recovery(const rudp_cc *cc, rudp_time sent_time);
/* An on_sent op for controllers that do not look at sends. */
void rudp__cc_on_sent_none(rudp_cc *cc, rudp_time now, uint64_t bytes, uint64_t in_flight);
/* Reno's growth (tcp_reno_cong_avoid): slow start below ssthresh, else one
 * MSS per window acknowledged, counted in *acc; none while app-limited. */
void rudp__cc_reno_increase(rudp_cc *cc, uint64_t *acc, uint64_t acked);
/* tcp_slow_start: cwnd grows by what was acked, up to ssthresh; returns
 * the acked bytes past it (for avoidance). */
uint64_t rudp__cc_slow_start(rudp_cc *cc, uint64_t acked);
/* tcp_cong_avoid_ai in bytes: one MSS per `per` bytes acked, counted in
 * *acc (per 0: one MSS). */
void rudp__cc_avoid_ai(rudp_cc *cc, uint64_t *acc, uint64_t per, uint64_t acked);
/* A reduction: a recovery period from now, and cwnd = ssthresh =
 * `ssthresh` bytes, at least the minimum window. */
void rudp__cc_cut_to(rudp_cc *cc, rudp_time now, uint64_t ssthresh);
/* Reno's reduction (tcp_reno_ssthresh): to half the window. */
void rudp__cc_reno_cut(rudp_cc *cc, rudp_time now);
/* Persistent congestion: the minimum window, no recovery under way. */
void rudp__cc_collapse(rudp_cc *cc);

/* A windowed maximum (max != 0) or minimum of samples v at times t, kept as
 * Linux's lib/win_minmax.c does (Kathleen Nichols' algorithm): m[0] the
 * best sample of the last `win` units of t, m[1] and m[2] the next
 * candidates spread over the window. An empty filter is one whose m[0].v
 * every sample beats or equals (0 for a maximum, UINT64_MAX for a minimum).
 * BBR's bandwidth (rounds), copa's RTTs (ns). */
typedef struct rudp_cc_minmax {
    uint64_t t, v;
} rudp_cc_minmax;
void rudp__cc_minmax_update(rudp_cc_minmax m[3], uint64_t win, uint64_t t, uint64_t v, int max);

/* Vegas's RTT bookkeeping (tcp_vegas.c), shared with yeah: base_rtt the
 * least sample ever, min_rtt and cnt_rtt this round's, each sample + 1 ns
 * so never zero. A round ends with the ACK of a packet sent after it began
 * (Linux's beg_snd_nxt): its P.delivered, delivered - rs_delivered,
 * reaches the `delivered` seen when the round began. */
typedef struct rudp_cc_vround {
    rudp_time base_rtt; /* RUDP_TIME_NEVER before a sample */
    rudp_time min_rtt;  /* RUDP_TIME_NEVER before a sample this round */
    uint64_t cnt_rtt;
    uint64_t round_end; /* delivered count that ends the round */
} rudp_cc_vround;
/* No samples yet, a round ending with the first ACK. */
void rudp__cc_vround_init(rudp_cc_vround *v);
/* A fresh round from the next packet sent (vegas_enable, and each round's
 * end); the samples of the last one forgotten, base_rtt kept. */
void rudp__cc_vround_restart(rudp_cc_vround *v, uint64_t delivered);
/* tcp_vegas_pkts_acked: the ACK's RTT sample, if it has one. */
void rudp__cc_vround_sample(rudp_cc_vround *v, const rudp_cc_ack *a);
/* The ACK ends the round under way. */
int rudp__cc_vround_ended(const rudp_cc_vround *v, const rudp_cc_ack *a);

/* Keys cc's random numbers: the connection passes two of the context's
 * (rudp__random64), so a controller's draws are as unpredictable as the
 * connection IDs and need no clock. Unseeded (all zero) they are still a
 * fixed pseudo-random sequence, as tests want. */
void rudp__cc_seed(rudp_cc *cc, uint64_t k0, uint64_t k1);
/* The next 64 random bits for cc's controller: SipHash of a counter under
 * cc's key (siphash.c, as the context's own randomness). */
uint64_t rudp__cc_random(rudp_cc *cc);

/* Sets cc up for `ops` (NULL: the default) and calls its init. */
void rudp__cc_setup(rudp_cc *cc, const rudp_cc_ops *ops, uint32_t mss, rudp_time now);

/* Hands a running cc to `ops` (NULL: the default), as Linux's
 * tcp_reinit_congestion_control does for setsockopt(TCP_CONGESTION) on a
 * live socket: the new controller starts from its init, the window and
 * slow-start threshold are kept (at least the minimum window). Nothing
 * changes if ops is the one running. */
void rudp__cc_switch(rudp_cc *cc, const rudp_cc_ops *ops, rudp_time now);

extern const rudp_cc_ops rudp__cc_newreno; /* cc_newreno.c: RFC 9002 NewReno */
extern const rudp_cc_ops rudp__cc_cubic;   /* cc_cubic.c: RFC 9438 CUBIC + RFC 9406 HyStart++ */
extern const rudp_cc_ops rudp__cc_bbr;     /* cc_bbr.c: model-based, BBR-like */
extern const rudp_cc_ops rudp__cc_vegas;   /* cc_vegas.c: delay-based, Linux's tcp_vegas */
extern const rudp_cc_ops rudp__cc_htcp;    /* cc_htcp.c: H-TCP, Linux's tcp_htcp */
extern const rudp_cc_ops rudp__cc_scalable; /* cc_scalable.c: Linux's tcp_scalable */
extern const rudp_cc_ops rudp__cc_westwood; /* cc_westwood.c: Westwood+, Linux's tcp_westwood */
extern const rudp_cc_ops rudp__cc_highspeed; /* cc_highspeed.c: RFC 3649, Linux's tcp_highspeed */
extern const rudp_cc_ops rudp__cc_bic;      /* cc_bic.c: BIC, Linux's tcp_bic */
extern const rudp_cc_ops rudp__cc_veno;     /* cc_veno.c: Veno, Linux's tcp_veno */
extern const rudp_cc_ops rudp__cc_hybla;    /* cc_hybla.c: Hybla, Linux's tcp_hybla */
extern const rudp_cc_ops rudp__cc_illinois; /* cc_illinois.c: Illinois, Linux's tcp_illinois */
extern const rudp_cc_ops rudp__cc_yeah;     /* cc_yeah.c: YeAH, Linux's tcp_yeah */
extern const rudp_cc_ops rudp__cc_lp;       /* cc_lp.c: TCP-LP, Linux's tcp_lp */
extern const rudp_cc_ops rudp__cc_nv;       /* cc_nv.c: TCP-NV, Linux's tcp_nv */
extern const rudp_cc_ops rudp__cc_cdg;      /* cc_cdg.c: CAIA Delay-Gradient, Linux's tcp_cdg */
/* cc_copa.c: Copa's default mode (NSDI 2018), delay-aware */
extern const rudp_cc_ops rudp__cc_copa;
/* cc_dctcp.c: Linux's dctcp without ECN (its dctcp_reno, "dctcp-reno");
 * rudp_cc_find("dctcp") answers it. */
extern const rudp_cc_ops rudp__cc_dctcp_reno;

/* Read-only views of the controllers' private state, for tests and logs. */
enum { RUDP_BBR_STARTUP, RUDP_BBR_DRAIN, RUDP_BBR_PROBE_BW, RUDP_BBR_PROBE_RTT };
typedef struct rudp_cc_bbr_info {
    int mode;                /* RUDP_BBR_* */
    uint32_t pacing_gain;    /* thousandths */
    uint32_t cwnd_gain;      /* thousandths */
    uint32_t cycle_idx;      /* PROBE_BW phase: 0 is the 1.25 probe, 1 the 0.75 drain */
    uint64_t btlbw;          /* bytes/s, windowed max */
    rudp_time min_rtt;       /* RUDP_TIME_NEVER until a sample */
    uint64_t round_count;
    int full_bw_reached;
    uint64_t inflight_hi;    /* UINT64_MAX: no congestion cap */
    uint32_t loss_ppm;       /* random loss the pacing rate compensates for */
} rudp_cc_bbr_info;
void rudp__cc_bbr_get_info(const rudp_cc *cc, rudp_cc_bbr_info *out);

enum { RUDP_HYSTART_SS, RUDP_HYSTART_CSS, RUDP_HYSTART_DONE };
typedef struct rudp_cc_cubic_info {
    double w_max;            /* bytes; 0: none */
    double k;                /* seconds */
    double w_est;            /* bytes, Reno-friendly estimate */
    rudp_time t_epoch;       /* 0: no congestion-avoidance epoch under way */
    int hystart;             /* RUDP_HYSTART_* */
} rudp_cc_cubic_info;
void rudp__cc_cubic_get_info(const rudp_cc *cc, rudp_cc_cubic_info *out);

typedef struct rudp_cc_vegas_info {
    int enabled;             /* Vegas is judging rounds (not in or just out of recovery) */
    rudp_time base_rtt;      /* least RTT seen (+1 ns); RUDP_TIME_NEVER before one */
    rudp_time min_rtt;       /* least RTT of this round; RUDP_TIME_NEVER before one */
    uint32_t cnt_rtt;        /* RTT samples this round */
} rudp_cc_vegas_info;
void rudp__cc_vegas_get_info(const rudp_cc *cc, rudp_cc_vegas_info *out);

typedef struct rudp_cc_htcp_info {
    uint64_t alpha;          /* increase, segments per RTT << 7 */
    uint32_t beta;           /* decrease factor << 7 */
    uint64_t min_rtt_us;     /* 0 before a sample */
    uint64_t max_rtt_us;
    rudp_time last_cong;     /* start of the congestion epoch */
} rudp_cc_htcp_info;
void rudp__cc_htcp_get_info(const rudp_cc *cc, rudp_cc_htcp_info *out);

typedef struct rudp_cc_westwood_info {
    uint64_t bw_est;         /* bytes/s, filtered; 0 before a sample */
    rudp_time rtt_min;
} rudp_cc_westwood_info;
void rudp__cc_westwood_get_info(const rudp_cc *cc, rudp_cc_westwood_info *out);

typedef struct rudp_cc_bic_info {
    uint64_t cnt;            /* segments acked per segment of increase */
    uint64_t last_max_cwnd;  /* segments, Wmax; 0 before a loss */
    uint64_t delayed_ack;    /* packets per ACK << 4 */
} rudp_cc_bic_info;
void rudp__cc_bic_get_info(const rudp_cc *cc, rudp_cc_bic_info *out);

typedef struct rudp_cc_veno_info {
    rudp_time base_rtt;      /* least RTT seen (+1); RUDP_TIME_NEVER before one */
    uint64_t diff;           /* queued segments << 1, at the last ACK judged */
    int enabled;             /* Veno is on (not in or just out of recovery) */
} rudp_cc_veno_info;
void rudp__cc_veno_get_info(const rudp_cc *cc, rudp_cc_veno_info *out);

typedef struct rudp_cc_hybla_info {
    uint64_t rho_3ls;        /* rho = srtt / 25 ms, at least 1, << 3; 0 before an RTT */
    int enabled;             /* Hybla's growth (not Reno's after persistent congestion) */
} rudp_cc_hybla_info;
void rudp__cc_hybla_get_info(const rudp_cc *cc, rudp_cc_hybla_info *out);

typedef struct rudp_cc_illinois_info {
    uint64_t alpha;          /* increase, segments per RTT << 7 (0.3 .. 10) */
    uint64_t beta;           /* share a loss takes off << 6 (1/8 .. 1/2) */
    rudp_time base_rtt;      /* least RTT seen; RUDP_TIME_NEVER before one */
    rudp_time max_rtt;       /* largest RTT seen */
} rudp_cc_illinois_info;
void rudp__cc_illinois_get_info(const rudp_cc *cc, rudp_cc_illinois_info *out);

typedef struct rudp_cc_yeah_info {
    rudp_time base_rtt;      /* least RTT seen (+1); RUDP_TIME_NEVER before one */
    uint64_t last_q;         /* queue estimate of the last round judged, segments */
    uint64_t doing_reno;     /* consecutive slow (Reno) rounds; 0: fast (Scalable) */
    uint64_t reno_count;     /* least window kept when draining, segments */
    uint64_t fast_count;     /* fast rounds since reno_count was last reset */
} rudp_cc_yeah_info;
void rudp__cc_yeah_get_info(const rudp_cc *cc, rudp_cc_yeah_info *out);

typedef struct rudp_cc_lp_info {
    rudp_time owd_min;       /* band of delays (RTT samples); NEVER before one */
    rudp_time owd_max;
    rudp_time sowd;          /* smoothed delay */
    rudp_time last_drop;     /* time of the last early cut; 0: none */
    int within_inference;    /* growth held: an early cut less than 3 RTTs ago */
} rudp_cc_lp_info;
void rudp__cc_lp_get_info(const rudp_cc *cc, rudp_cc_lp_info *out);

typedef struct rudp_cc_nv_info {
    rudp_time min_rtt;       /* least averaged RTT of the period; NEVER before one */
    rudp_time reset_at;      /* when the next period's least replaces it */
    int growth_factor;       /* < 0: under one segment a round (after timeouts) */
    int allow_growth;        /* no congestion seen since the last decision */
    uint32_t min_cwnd;       /* segments: NV's nv_min_cwnd */
} rudp_cc_nv_info;
void rudp__cc_nv_get_info(const rudp_cc *cc, rudp_cc_nv_info *out);

typedef struct rudp_cc_cdg_info {
    uint64_t shadow_wnd;     /* bytes: the window backoffs took away from */
    uint32_t backoffs;       /* backoffs so far */
    uint32_t backoff_cnt;    /* backoffs since one was effectual */
    int32_t delay_min_us;    /* least round minimum seen in slow start; 0: none */
} rudp_cc_cdg_info;
void rudp__cc_cdg_get_info(const rudp_cc *cc, rudp_cc_cdg_info *out);
/* e^(-ux / 1e6) x (2^32 - 1), 0 from ux = 2^24 (Linux's nexp_u32): CDG's
 * probability of not backing off at a gradient of ux / 42 us. */
uint32_t rudp__cc_cdg_nexp(uint32_t ux);

enum { RUDP_COPA_UP = 1, RUDP_COPA_DOWN = -1 };
typedef struct rudp_cc_copa_info {
    rudp_time min_rtt;       /* least RTT of the last 10 s; RUDP_TIME_NEVER before one */
    rudp_time standing_rtt;  /* least RTT of the last srtt/2; RUDP_TIME_NEVER before one */
    uint64_t velocity;       /* the window's speed, a power of 2 */
    int direction;           /* RUDP_COPA_UP, RUDP_COPA_DOWN, 0 before the first round */
    int slow_start;
} rudp_cc_copa_info;
void rudp__cc_copa_get_info(const rudp_cc *cc, rudp_cc_copa_info *out);

#endif
