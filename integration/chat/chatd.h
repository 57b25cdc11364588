/*
 * chatd's private header: the types and the server state its files share, and
 * the functions they call across files.  The server and its contracts:
 * chatd.c.
 *
 *   chatd.c          main, the options, the listener, connections, shutdown,
 *                    the poll loop
 *   chatd_out.c      logging, clock, output queues, notices, receipts
 *   chatd_members.c  leaving, closing, admission, waiting, drops
 *   chatd_input.c    lines, nicknames, commands, broadcast, flushing
 *
 * Each function is documented where it is defined.
 */
#ifndef CHATD_H
#define CHATD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHAT_TEXT_MAX     4096          /* bytes of one line, before its newline */
#define CHAT_NICK_MAX     24
#define CHAT_READ_CHUNK   16384
#define CHAT_TICK_MS      10            /* ack sampling while anything is in flight */
#define CHAT_LINGER_MS    5000          /* a leaving client's flush bound */
#define CHAT_ACCEPT_BURST 64
#define CHAT_PORT_DEFAULT "7070"
#define CHAT_ADDR_DEFAULT "127.0.0.1"
#define CHAT_MAX_DEFAULT  256u
#define CHAT_QUEUE_KIB_DEFAULT 256u
#define CHAT_STALL_MS_DEFAULT  10000u
#define CHAT_GRACE_MS_DEFAULT  5000u

enum cstate { CS_WAITING, CS_ACTIVE, CS_LEAVING };
enum drop { DROP_NONE, DROP_QUEUE, DROP_STALL };
enum phase { PH_RUNNING, PH_DRAINING, PH_CLOSING };

/* One broadcast line awaiting its receipt.  The sender is named by fd and
 * arrival id, not by pointer, so a sender that leaves needs no clean-up. */
struct msg {
    uint64_t sender_id;
    int sender_fd;
    uint64_t num;           /* K: the sender's K-th broadcast line */
    uint32_t sent_to;       /* M */
    uint32_t acked;         /* N so far */
    uint32_t pending;       /* recipients that have neither acked nor left */
};

/* A recipient's note that msg m is fully acked once `acked >= end`. */
struct track {
    struct msg *m;
    uint64_t end;
};

struct client {
    struct client *prev, *next;     /* all clients, in arrival order */
    int fd;
    uint64_t id;                    /* arrival number, 1-based */
    uint64_t admitted;              /* admission number, 0 while waiting */
    enum cstate state;
    char nick[CHAT_NICK_MAX + 1];

    char in[CHAT_TEXT_MAX];         /* the line being read */
    size_t in_len;
    bool in_discard;                /* skipping the rest of an over-long line */

    char *out;                      /* output queue: out[out_off, out_len) */
    size_t out_off, out_len, out_cap;
    uint64_t queued;                /* bytes ever queued */
    uint64_t written;               /* bytes ever handed to the kernel */
    uint64_t acked;                 /* bytes the peer's transport acked */
    uint64_t progress_ms;           /* last ack progress (stall detection) */

    struct track *tr;               /* receipts waiting on this recipient */
    size_t tr_head, tr_len, tr_cap;

    uint64_t msgs;                  /* lines this client broadcast */
    long told_pos;                  /* last "waiting: N ahead" sent, -1 none */
    uint64_t leave_deadline;
    enum drop drop;
    bool read_eof, shut_wr, dead;
};

struct server {
    int lfd, sig_rd, sig_wr;
    struct client *head, *tail;
    struct client **by_fd;
    size_t by_fd_cap;
    unsigned nactive, nwaiting;
    unsigned max_active;            /* 0: no cap */
    size_t qmax;
    uint64_t stall_ms, grace_ms;
    uint64_t next_id, next_admit;
    enum phase phase;
    uint64_t drain_deadline, close_deadline;
    uint64_t now;
    uint64_t accept_pause_until;
    size_t tracks;                  /* outstanding track entries, all clients */
    bool drops, waiting_moved, outq_warned;
    int verbose;
    uint64_t n_msgs, n_conns, n_drops;
};

extern struct server S;

/* ---- chatd_out.c ---- */

void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int notice(struct client *c, bool force, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void announce(const struct client *except, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void die(const char *what);
void *xrealloc(void *p, size_t n);
uint64_t now_ms(void);
void on_signal(int sig);
bool out_pending(const struct client *c);
int queue_bytes(struct client *c, const char *p, size_t n, bool force);
void msg_done(struct msg *m);
void track_push(struct client *c, struct msg *m);
void ack_update(struct client *c);
void tracks_settle(struct client *c, bool credit);

/* ---- chatd_members.c ---- */

void leave_chat(struct client *c, bool credit);
void close_client(struct client *c, bool credit);
void client_fail(struct client *c);
void admit(struct client *c);
bool has_slot(void);
void admit_waiting(void);
long waiting_ahead(const struct client *w);
void process_drops(void);

/* ---- chatd_input.c ---- */

void broadcast(struct client *from, const char *text, size_t n);
void on_readable(struct client *c);
void flush_client(struct client *c);
void service_leaving(struct client *c);

#endif
