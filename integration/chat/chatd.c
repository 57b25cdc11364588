/*
 * chatd: a line-oriented TCP chat server on poll(2).
 *
 *   chatd [-p PORT] [-b ADDR] [-m MAX] [-q KIB] [-s SECS] [-g SECS] [-v]
 *
 * Plain POSIX/Linux TCP with no knowledge of any LD_PRELOAD transport: it is
 * the showcase and the hard integration test of librudp_shim, so it has to be
 * an ordinary, unmodified server.  Protocol and notices: README.md.
 *
 * Contracts, in prose:
 *
 *  - One thread, poll(2), non-blocking sockets.  Nothing blocks: reads take
 *    at most one chunk per client per round (fairness), writes go until
 *    EAGAIN and the rest waits in the client's output queue.
 *  - Every line a client sends is broadcast to every other admitted client,
 *    never echoed.  Each message is copied into each recipient's queue once,
 *    in the order the server read them, so every receiver sees every sender's
 *    messages exactly once and in that sender's order.
 *  - How far a client may fall behind is bounded (-q, default 256 KiB of
 *    output its transport has not acknowledged, in our queue or the
 *    kernel's).  A client past the bound, or whose transport has made no
 *    progress for -s seconds while it has data pending, is dropped "too
 *    slow": the others are told, and its queue never holds anyone back.
 *  - Delivery receipts: a message counts as delivered to a recipient once
 *    every byte written to that socket up to and including the message has
 *    left the kernel's send queue (written - SIOCOUTQ), i.e. the peer's
 *    transport acknowledged it.  When every recipient has acknowledged it, or
 *    left, the sender gets "* delivered N/M #K": N of the M recipients
 *    acknowledged its K-th message (K counts the sender's broadcast lines
 *    from 1).  Acks are sampled every CHAT_TICK_MS while any are
 *    outstanding.  A recipient's receipts are settled when it leaves, which
 *    keeps each sender's receipts in order.
 *  - Input: a line over CHAT_TEXT_MAX bytes is rejected whole with a notice;
 *    control bytes become '?'; the partial line of a client that leaves, or
 *    of everyone at shutdown, is discarded.
 *  - -m MAX caps admitted clients.  More are still accepted, told they wait,
 *    and admitted in arrival order when a slot frees; until then they may
 *    use commands but neither send nor receive chat.
 *  - SIGINT/SIGTERM: stop accepting and reading; every message already read
 *    is flushed to every recipient and its receipt sent (bounded by half the
 *    grace time), then "* server shutting down" goes to everyone, then
 *    SHUT_WR, then each connection is closed once the peer's EOF arrives.
 *    After the grace time (-g, default 5 s) whatever is left is closed.
 *    Exit status 0.
 *  - Signals reach the loop through a self-pipe, not a signalfd: under an
 *    LD_PRELOAD transport the process may own threads we did not create, and
 *    a signalfd only works if every thread blocks the signal, while a handler
 *    that writes to a pipe works whichever thread takes the signal.
 *
 * Memory: one struct client per connection, its output queue (bounded), and
 * one struct msg per broadcast line until its receipt is sent.  Allocation
 * failure is fatal (this is a program, not a library).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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

static struct {
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
} S;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof buf - 2)
        n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    /* stderr unbuffered via write(2): lines from one process never interleave */
    ssize_t w = write(2, "chatd: ", 7);
    w = write(2, buf, (size_t)n);
    (void)w;
}

static void die(const char *what)
{
    say("%s: %s", what, strerror(errno));
    exit(1);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q == NULL) {
        errno = ENOMEM;
        die("realloc");
    }
    return q;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t w = write(S.sig_wr, &b, 1);
    (void)w;
    errno = saved;
}

static bool out_pending(const struct client *c)
{
    return c->out_off < c->out_len;
}

/* Samples how much of c's stream the peer's transport has acknowledged:
 * bytes written minus bytes still in the kernel's send queue (SIOCOUTQ). */
static void ack_sample(struct client *c)
{
    if (c->acked == c->written)
        return;
    int outq = 0;
    if (ioctl(c->fd, SIOCOUTQ, &outq) < 0) {
        /* Without SIOCOUTQ a receipt can only mean "handed to the
         * transport"; say so once rather than fail. */
        if (!S.outq_warned)
            say("ioctl(SIOCOUTQ): %s; receipts degrade to 'written'", strerror(errno));
        S.outq_warned = true;
        outq = 0;
    }
    if (outq >= 0 && (uint64_t)outq <= c->written - c->acked) {
        uint64_t a = c->written - (uint64_t)outq;
        if (a > c->acked) {
            c->acked = a;
            c->progress_ms = S.now;
        }
    }
}

/* How far behind c is: bytes queued for it that its transport has not
 * acknowledged, in our queue or in the kernel's.  The bound applies to this,
 * not to our queue alone: the kernel may buffer megabytes for a reader that
 * stopped long ago (on loopback Linux autotunes the send buffer to 4 MiB). */
static bool over_bound(struct client *c, size_t n)
{
    if (c->queued - c->acked + n <= S.qmax)
        return false;
    ack_sample(c);          /* the last sample may be up to a tick old */
    return c->queued - c->acked + n > S.qmax;
}

/* Queues n bytes for c.  Returns 0, or -1 when c would fall more than the
 * bound behind: c is then marked for dropping (done by process_drops(),
 * never from inside a broadcast loop) and nothing is queued.  force bypasses
 * the bound, for the few lines that end a session (goodbye, bye, reason). */
static int queue_bytes(struct client *c, const char *p, size_t n, bool force)
{
    if (c->dead || c->shut_wr)
        return -1;
    size_t pending = c->out_len - c->out_off;
    if (!force && (c->drop != DROP_NONE || over_bound(c, n))) {
        if (c->drop == DROP_NONE && c->state != CS_LEAVING) {
            c->drop = DROP_QUEUE;
            S.drops = true;
        }
        return -1;
    }
    if (pending == 0 && c->acked == c->written)
        c->progress_ms = S.now;             /* idle until now: no stall yet */
    if (c->out_len + n > c->out_cap) {
        if (c->out_off > 0) {
            memmove(c->out, c->out + c->out_off, pending);
            c->out_off = 0;
            c->out_len = pending;
        }
        if (c->out_len + n > c->out_cap) {
            size_t cap = c->out_cap ? c->out_cap : 4096;
            while (cap < c->out_len + n)
                cap *= 2;
            c->out = xrealloc(c->out, cap);
            c->out_cap = cap;
        }
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    c->queued += n;
    return 0;
}

static int notice(struct client *c, bool force, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int notice(struct client *c, bool force, const char *fmt, ...)
{
    char buf[CHAT_TEXT_MAX + 64];
    va_list ap;
    buf[0] = '*';
    buf[1] = ' ';
    va_start(ap, fmt);
    int n = vsnprintf(buf + 2, sizeof buf - 3, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    size_t len = 2 + ((size_t)n < sizeof buf - 4 ? (size_t)n : sizeof buf - 4);
    buf[len++] = '\n';
    return queue_bytes(c, buf, len, force);
}

/* A notice to every admitted client except `except`. */
static void announce(const struct client *except, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void announce(const struct client *except, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    for (struct client *c = S.head; c; c = c->next)
        if (c != except && c->state == CS_ACTIVE && !c->dead)
            notice(c, false, "%s", buf);
}

/* ---- receipts ------------------------------------------------------------ */

static struct client *client_by_fd(int fd, uint64_t id)
{
    if (fd < 0 || (size_t)fd >= S.by_fd_cap)
        return NULL;
    struct client *c = S.by_fd[fd];
    return c && c->id == id && !c->dead ? c : NULL;
}

/* Every recipient has acked m or left: tell the sender, if still admitted. */
static void msg_done(struct msg *m)
{
    struct client *s = client_by_fd(m->sender_fd, m->sender_id);
    if (s && s->state == CS_ACTIVE)
        notice(s, false, "delivered %u/%u #%llu", m->acked, m->sent_to,
               (unsigned long long)m->num);
    free(m);
}

static void track_push(struct client *c, struct msg *m)
{
    if (c->tr_len == c->tr_cap) {
        if (c->tr_head > 0) {
            memmove(c->tr, c->tr + c->tr_head, (c->tr_len - c->tr_head) * sizeof *c->tr);
            c->tr_len -= c->tr_head;
            c->tr_head = 0;
        }
        if (c->tr_len == c->tr_cap) {
            c->tr_cap = c->tr_cap ? c->tr_cap * 2 : 64;
            c->tr = xrealloc(c->tr, c->tr_cap * sizeof *c->tr);
        }
    }
    c->tr[c->tr_len++] = (struct track){ .m = m, .end = c->queued };
    m->pending++;
    S.tracks++;
}

static void track_pop(struct client *c, bool delivered)
{
    struct msg *m = c->tr[c->tr_head++].m;
    S.tracks--;
    if (c->tr_head == c->tr_len)
        c->tr_head = c->tr_len = 0;
    if (delivered)
        m->acked++;
    if (--m->pending == 0)
        msg_done(m);
}

/* Samples c's acknowledged bytes and settles the receipts that covers. */
static void ack_update(struct client *c)
{
    ack_sample(c);
    while (c->tr_head < c->tr_len && c->tr[c->tr_head].end <= c->acked)
        track_pop(c, true);
}

/* c will acknowledge nothing more: settle all its receipts.  With credit,
 * take one last sample first (a peer that closed cleanly may have acked all). */
static void tracks_settle(struct client *c, bool credit)
{
    if (credit)
        ack_update(c);
    while (c->tr_head < c->tr_len)
        track_pop(c, false);
}

/* ---- membership ---------------------------------------------------------- */

/* Takes c out of the chat; it stays open to flush what it is owed.  Its
 * receipts are settled now, with credit for what its transport has acked if
 * the connection is sound: settling them later would let a sender's later
 * message complete before an earlier one, and receipts come in order. */
static void leave_chat(struct client *c, bool credit)
{
    tracks_settle(c, credit);
    if (c->state == CS_ACTIVE)
        S.nactive--;
    else if (c->state == CS_WAITING) {
        S.nwaiting--;
        S.waiting_moved = true;
    }
    c->state = CS_LEAVING;
    c->in_len = 0;
    c->in_discard = false;
    c->leave_deadline = S.now + CHAT_LINGER_MS;
    if (S.phase != PH_RUNNING && c->leave_deadline > S.close_deadline)
        c->leave_deadline = S.close_deadline;
}

static void close_client(struct client *c, bool credit)
{
    if (c->dead)
        return;
    tracks_settle(c, credit);
    c->dead = true;
}

/* The connection broke (reset, write error): announce and close at once. */
static void client_fail(struct client *c)
{
    if (c->dead)
        return;
    if (c->state == CS_ACTIVE) {
        leave_chat(c, false);
        announce(c, "%s left (%u online)", c->nick, S.nactive);
    } else if (c->state == CS_WAITING) {
        leave_chat(c, false);
    }
    if (S.verbose)
        say("#%llu %s: connection lost", (unsigned long long)c->id, c->nick);
    close_client(c, false);
}

static void admit(struct client *c)
{
    if (c->state == CS_WAITING) {
        S.nwaiting--;
        S.waiting_moved = true;
    }
    c->state = CS_ACTIVE;
    c->admitted = ++S.next_admit;
    S.nactive++;
    notice(c, false, "welcome %s (%u online; arrival #%llu, admitted #%llu)", c->nick,
           S.nactive, (unsigned long long)c->id, (unsigned long long)c->admitted);
    announce(c, "%s joined (%u online)", c->nick, S.nactive);
    if (S.verbose)
        say("#%llu %s admitted", (unsigned long long)c->id, c->nick);
}

static bool has_slot(void)
{
    return S.max_active == 0 || S.nactive < S.max_active;
}

/* Admits waiting clients in arrival order while there are slots, then tells
 * each one still waiting its new place in the line. */
static void admit_waiting(void)
{
    if (S.phase != PH_RUNNING)
        return;
    for (struct client *c = S.head; c && S.nwaiting > 0 && has_slot(); c = c->next)
        if (c->state == CS_WAITING && !c->dead && c->drop == DROP_NONE)
            admit(c);
    if (!S.waiting_moved)
        return;
    S.waiting_moved = false;
    long ahead = 0;
    for (struct client *c = S.head; c; c = c->next) {
        if (c->state != CS_WAITING || c->dead)
            continue;
        if (c->told_pos != ahead) {
            notice(c, false, "waiting: %ld ahead of you", ahead);
            c->told_pos = ahead;
        }
        ahead++;
    }
}

static long waiting_ahead(const struct client *w)
{
    long n = 0;
    for (const struct client *c = S.head; c && c != w; c = c->next)
        if (c->state == CS_WAITING && !c->dead)
            n++;
    return n;
}

/* Drops every client marked too slow.  Runs until no new marks appear: the
 * "dropped" notices themselves can push another client over its bound. */
static void process_drops(void)
{
    while (S.drops) {
        S.drops = false;
        for (struct client *c = S.head; c; c = c->next) {
            if (c->drop == DROP_NONE || c->dead || c->state == CS_LEAVING)
                continue;
            char why[96];
            if (c->drop == DROP_QUEUE)
                snprintf(why, sizeof why, "too slow (more than %zu KiB behind)", S.qmax / 1024);
            else
                snprintf(why, sizeof why, "too slow (no progress for %.1f s)",
                         (double)S.stall_ms / 1000.0);
            bool was_active = c->state == CS_ACTIVE;
            /* It will not ack anything soon: what it has not acked counts as
             * not delivered now, so nobody's receipts wait on it. */
            leave_chat(c, true);
            notice(c, true, "you were dropped: %s", why);
            if (was_active)
                announce(c, "dropped %s: %s (%u online)", c->nick, why, S.nactive);
            S.n_drops++;
            say("dropped #%llu %s: %s", (unsigned long long)c->id, c->nick, why);
        }
    }
}

/* ---- input --------------------------------------------------------------- */

static bool nick_valid(const char *s, size_t n)
{
    if (n == 0 || n > CHAT_NICK_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.'))
            return false;
    }
    return true;
}

/* "guest<digits>" is how unnamed clients are called; nobody may take one. */
static bool nick_reserved(const char *s, size_t n)
{
    if (n <= 5 || strncasecmp(s, "guest", 5) != 0)
        return false;
    for (size_t i = 5; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static bool nick_taken(const struct client *self, const char *s)
{
    for (const struct client *c = S.head; c; c = c->next)
        if (c != self && !c->dead && c->state != CS_LEAVING && strcasecmp(c->nick, s) == 0)
            return true;
    return false;
}

static void cmd_nick(struct client *c, const char *arg, size_t n)
{
    char name[CHAT_NICK_MAX + 1];
    if (!nick_valid(arg, n)) {
        notice(c, false, "error: nick must be 1-%d of A-Z a-z 0-9 _ - .", CHAT_NICK_MAX);
        return;
    }
    memcpy(name, arg, n);
    name[n] = '\0';
    if (strcmp(name, c->nick) == 0) {
        notice(c, false, "you are now %s", name);
        return;
    }
    if (nick_reserved(name, n)) {
        notice(c, false, "error: nick %s is reserved", name);
        return;
    }
    if (nick_taken(c, name)) {
        notice(c, false, "error: nick %s is taken", name);
        return;
    }
    if (c->state == CS_ACTIVE)
        announce(c, "%s is now %s", c->nick, name);
    if (S.verbose)
        say("#%llu %s is now %s", (unsigned long long)c->id, c->nick, name);
    memcpy(c->nick, name, n + 1);
    notice(c, false, "you are now %s", name);
}

static void cmd_who(struct client *c)
{
    char buf[CHAT_TEXT_MAX];
    size_t len = (size_t)snprintf(buf, sizeof buf, "online (%u):", S.nactive);
    for (const struct client *o = S.head; o; o = o->next) {
        if (o->state != CS_ACTIVE || o->dead)
            continue;
        size_t n = strlen(o->nick);
        if (len + n + 8 >= sizeof buf) {
            memcpy(buf + len, " ...", 4);
            len += 4;
            break;
        }
        buf[len++] = ' ';
        memcpy(buf + len, o->nick, n);
        len += n;
    }
    buf[len] = '\0';
    if (S.nwaiting > 0)
        notice(c, false, "%s; %u waiting", buf, S.nwaiting);
    else
        notice(c, false, "%s", buf);
}

static void broadcast(struct client *from, const char *text, size_t n)
{
    char line[CHAT_NICK_MAX + 2 + CHAT_TEXT_MAX + 1];
    size_t nl = strlen(from->nick);
    memcpy(line, from->nick, nl);
    line[nl] = ':';
    line[nl + 1] = ' ';
    memcpy(line + nl + 2, text, n);
    size_t len = nl + 2 + n;
    line[len++] = '\n';

    struct msg *m = calloc(1, sizeof *m);
    if (m == NULL)
        die("calloc");
    m->sender_id = from->id;
    m->sender_fd = from->fd;
    m->num = ++from->msgs;
    m->pending = 1;         /* held by this function until the loop is done */
    for (struct client *r = S.head; r; r = r->next) {
        if (r == from || r->state != CS_ACTIVE || r->dead || r->drop != DROP_NONE)
            continue;
        /* M counts every recipient it was meant for; one whose queue is full
         * is being dropped and counts as not delivered. */
        m->sent_to++;
        if (queue_bytes(r, line, len, false) == 0)
            track_push(r, m);
    }
    S.n_msgs++;
    if (--m->pending == 0)
        msg_done(m);
}

/* One complete line from c (newline removed). */
static void handle_line(struct client *c, char *s, size_t n)
{
    if (n > 0 && s[n - 1] == '\r')
        n--;
    /* Control bytes (NUL, ESC, ...) become '?': receivers' terminals and
     * line parsers never see them; other bytes pass through untouched. */
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            s[i] = '?';
    }
    if (n == 0)
        return;
    if (s[0] == '/' && !(n > 1 && s[1] == '/')) {
        size_t w = 1;
        while (w < n && s[w] != ' ')
            w++;
        size_t a = w;
        while (a < n && s[a] == ' ')
            a++;
        size_t an = n - a;
        while (an > 0 && s[a + an - 1] == ' ')
            an--;
        if (w == 5 && memcmp(s, "/nick", 5) == 0) {
            cmd_nick(c, s + a, an);
        } else if (w == 4 && memcmp(s, "/who", 4) == 0) {
            cmd_who(c);
        } else if (w == 5 && memcmp(s, "/quit", 5) == 0) {
            bool was_active = c->state == CS_ACTIVE;
            leave_chat(c, true);
            notice(c, true, "bye");
            if (was_active)
                announce(c, "%s left (%u online)", c->nick, S.nactive);
        } else if (w == 5 && memcmp(s, "/help", 5) == 0) {
            notice(c, false, "commands: /nick NAME, /who, /quit, /help; "
                             "a line starting // sends it with one / removed");
        } else {
            int wl = w > 32 ? 32 : (int)w;
            notice(c, false, "error: unknown command %.*s (try /help)", wl, s);
        }
        return;
    }
    if (s[0] == '/') {
        s++;
        n--;
    }
    if (c->state == CS_WAITING) {
        notice(c, false, "not sent: you are waiting (%ld ahead of you)", waiting_ahead(c));
        return;
    }
    broadcast(c, s, n);
}

/* Splits freshly read bytes into lines.  A line longer than CHAT_TEXT_MAX is
 * rejected whole with a notice; the partial line left at EOF is discarded by
 * leave_chat(). */
static void consume(struct client *c, const char *p, size_t n)
{
    const char *end = p + n;
    while (p < end && c->state != CS_LEAVING && !c->dead) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (c->in_discard) {
            if (nl == NULL)
                return;
            c->in_discard = false;
            p = nl + 1;
            continue;
        }
        size_t take = (size_t)((nl ? nl : end) - p);
        if (c->in_len + take > CHAT_TEXT_MAX) {
            notice(c, false, "error: line too long (max %d bytes), discarded", CHAT_TEXT_MAX);
            c->in_len = 0;
            if (nl == NULL) {
                c->in_discard = true;
                return;
            }
            p = nl + 1;
            continue;
        }
        memcpy(c->in + c->in_len, p, take);
        c->in_len += take;
        if (nl == NULL)
            return;
        p = nl + 1;
        size_t len = c->in_len;
        c->in_len = 0;
        handle_line(c, c->in, len);
    }
}

static void on_readable(struct client *c)
{
    char buf[CHAT_READ_CHUNK];
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    if (n > 0) {
        /* Leaving clients and everyone after the signal: read only to see
         * EOF (and so close without a reset); the bytes are not accepted. */
        if (c->state != CS_LEAVING && S.phase == PH_RUNNING)
            consume(c, buf, (size_t)n);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n < 0) {
        client_fail(c);
        return;
    }
    /* EOF: the client has left; flush what it is owed (it may only have
     * half-closed), then close. */
    c->read_eof = true;
    if (c->state == CS_ACTIVE) {
        leave_chat(c, true);
        announce(c, "%s left (%u online)", c->nick, S.nactive);
    } else if (c->state == CS_WAITING) {
        leave_chat(c, true);
    }
    if (S.verbose)
        say("#%llu %s: EOF", (unsigned long long)c->id, c->nick);
}

static void flush_client(struct client *c)
{
    while (out_pending(c) && !c->dead) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            c->out_off += (size_t)n;
            c->written += (uint64_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        client_fail(c);
        return;
    }
    c->out_off = c->out_len = 0;
}

/* A leaving client: SHUT_WR once its queue is out, close at the peer's EOF
 * or at its deadline. */
static void service_leaving(struct client *c)
{
    if (c->dead || c->state != CS_LEAVING)
        return;
    if (!out_pending(c) && !c->shut_wr) {
        shutdown(c->fd, SHUT_WR);
        c->shut_wr = true;
    }
    if ((c->shut_wr && c->read_eof) || S.now >= c->leave_deadline)
        close_client(c, true);
}

/* ---- connections --------------------------------------------------------- */

static void new_client(int fd)
{
    struct client *c = calloc(1, sizeof *c);
    if (c == NULL)
        die("calloc");
    int one = 1;
    /* Chat lines are small and interactive: no Nagle delay.  Failure is
     * harmless (a transport may not know the option). */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if ((size_t)fd >= S.by_fd_cap) {
        size_t cap = S.by_fd_cap ? S.by_fd_cap : 256;
        while (cap <= (size_t)fd)
            cap *= 2;
        S.by_fd = xrealloc(S.by_fd, cap * sizeof *S.by_fd);
        memset(S.by_fd + S.by_fd_cap, 0, (cap - S.by_fd_cap) * sizeof *S.by_fd);
        S.by_fd_cap = cap;
    }
    S.by_fd[fd] = c;
    c->fd = fd;
    c->id = ++S.next_id;
    c->told_pos = -1;
    c->progress_ms = S.now;
    snprintf(c->nick, sizeof c->nick, "guest%llu", (unsigned long long)c->id);
    c->prev = S.tail;
    if (S.tail)
        S.tail->next = c;
    else
        S.head = c;
    S.tail = c;
    S.n_conns++;
    if (S.verbose)
        say("#%llu connected (fd %d)", (unsigned long long)c->id, fd);
    /* Every client starts in the line; with a free slot and nobody ahead,
     * it is admitted at once. */
    c->state = CS_WAITING;
    S.nwaiting++;
    if (has_slot() && S.nwaiting == 1) {
        admit(c);
        return;
    }
    c->told_pos = S.nwaiting - 1;
    notice(c, false, "waiting: %ld ahead of you (server full: %u/%u online; arrival #%llu)",
           c->told_pos, S.nactive, S.max_active, (unsigned long long)c->id);
}

static void accept_clients(void)
{
    for (int i = 0; i < CHAT_ACCEPT_BURST; i++) {
        int fd = accept4(S.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            new_client(fd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* Out of descriptors: the connection stays in the backlog; stop
             * polling the listener for a moment instead of spinning. */
            say("accept: %s; pausing accepts for 100 ms", strerror(errno));
            S.accept_pause_until = S.now + 100;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            say("accept: %s", strerror(errno));
        }
        return;
    }
}

static void reap(void)
{
    struct client *c = S.head;
    while (c) {
        struct client *next = c->next;
        if (c->dead) {
            if (c->prev)
                c->prev->next = c->next;
            else
                S.head = c->next;
            if (c->next)
                c->next->prev = c->prev;
            else
                S.tail = c->prev;
            S.by_fd[c->fd] = NULL;
            close(c->fd);
            free(c->out);
            free(c->tr);
            free(c);
        }
        c = next;
    }
}

/* ---- shutdown ------------------------------------------------------------ */

static void begin_shutdown(void)
{
    if (S.phase != PH_RUNNING) {
        /* A second signal: stop waiting. */
        S.drain_deadline = S.close_deadline = S.now;
        return;
    }
    say("signal: shutting down (%u online, %u waiting)", S.nactive, S.nwaiting);
    S.phase = PH_DRAINING;
    close(S.lfd);
    S.lfd = -1;
    S.drain_deadline = S.now + S.grace_ms / 2;
    S.close_deadline = S.now + S.grace_ms;
    for (struct client *c = S.head; c; c = c->next) {
        c->in_len = 0;              /* a partial line was never accepted */
        c->in_discard = false;
    }
}

/* Every accepted message has reached every recipient's transport and every
 * receipt is settled. */
static bool drained(void)
{
    if (S.tracks > 0)
        return false;
    for (const struct client *c = S.head; c; c = c->next)
        if (!c->dead && c->state != CS_LEAVING && out_pending(c))
            return false;
    return true;
}

/* End of the drain: settle what is left (counted as not delivered), then the
 * goodbye, after every message and receipt. */
static void finish_drain(void)
{
    for (struct client *c = S.head; c; c = c->next)
        if (!c->dead)
            tracks_settle(c, true);
    for (struct client *c = S.head; c; c = c->next) {
        if (c->dead || c->state == CS_LEAVING)
            continue;
        leave_chat(c, true);
        c->leave_deadline = S.close_deadline;
        notice(c, true, "server shutting down");
    }
    S.phase = PH_CLOSING;
}

/* ---- main loop ----------------------------------------------------------- */

static void tick(void)
{
    for (struct client *c = S.head; c; c = c->next) {
        if (c->dead)
            continue;
        if (c->tr_head < c->tr_len || c->acked < c->written)
            ack_update(c);
        if (S.stall_ms > 0 && c->state != CS_LEAVING && c->drop == DROP_NONE &&
            (out_pending(c) || c->acked < c->written) &&
            S.now - c->progress_ms >= S.stall_ms) {
            c->drop = DROP_STALL;
            S.drops = true;
        }
    }
}

static int listen_on(const char *addr, const char *port)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *res;
    int rc = getaddrinfo(addr, port, &hints, &res);
    if (rc != 0) {
        say("%s:%s: %s", addr, port, gai_strerror(rc));
        exit(2);
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 511) == 0)
            break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        errno = err;
        say("listen on %s:%s: %s", addr, port, strerror(errno));
        exit(2);
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned p = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
            p = ntohs(s6->sin6_port);
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
            p = ntohs(s4->sin_port);
        }
    }
    /* The readiness line scripts wait for (nothing listens on TCP under an
     * LD_PRELOAD transport, so they cannot probe the port). */
    say(ss.ss_family == AF_INET6 ? "listening on [%s]:%u (pid %d, max %u, bound %zu KiB)"
                                 : "listening on %s:%u (pid %d, max %u, bound %zu KiB)",
        host, p, (int)getpid(), S.max_active, S.qmax / 1024);
    return fd;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: chatd [-p PORT] [-b ADDR] [-m MAX] [-q KIB] [-s SECS] [-g SECS] [-v]\n"
            "  -p PORT  TCP port (default %s; 0 picks one)\n"
            "  -b ADDR  address to listen on (default %s)\n"
            "  -m MAX   admitted clients at once, more wait in line (default %u, 0 = no cap)\n"
            "  -q KIB   drop a client more than KIB of output behind (default %u)\n"
            "  -s SECS  drop a client whose transport makes no progress this long (default %u, 0 = never)\n"
            "  -g SECS  shutdown grace: flush bound after SIGINT/SIGTERM (default %u)\n"
            "  -v       log joins, leaves and renames\n",
            CHAT_PORT_DEFAULT, CHAT_ADDR_DEFAULT, CHAT_MAX_DEFAULT, CHAT_QUEUE_KIB_DEFAULT,
            CHAT_STALL_MS_DEFAULT / 1000, CHAT_GRACE_MS_DEFAULT / 1000);
    exit(2);
}

static double num_arg(const char *s, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        usage();
    return v;
}

int main(int argc, char **argv)
{
    const char *port = CHAT_PORT_DEFAULT, *addr = CHAT_ADDR_DEFAULT;
    S.max_active = CHAT_MAX_DEFAULT;
    S.qmax = (size_t)CHAT_QUEUE_KIB_DEFAULT * 1024;
    S.stall_ms = CHAT_STALL_MS_DEFAULT;
    S.grace_ms = CHAT_GRACE_MS_DEFAULT;
    int opt;
    while ((opt = getopt(argc, argv, "p:b:m:q:s:g:vh")) != -1) {
        switch (opt) {
        case 'p': port = optarg; num_arg(optarg, 0, 65535); break;
        case 'b': addr = optarg; break;
        case 'm': S.max_active = (unsigned)num_arg(optarg, 0, 1e6); break;
        case 'q': S.qmax = (size_t)num_arg(optarg, 1, 1 << 22) * 1024; break;
        case 's': S.stall_ms = (uint64_t)(num_arg(optarg, 0, 86400) * 1000.0); break;
        case 'g': S.grace_ms = (uint64_t)(num_arg(optarg, 0, 3600) * 1000.0); break;
        case 'v': S.verbose++; break;
        default: usage();
        }
    }
    if (optind != argc)
        usage();

    /* Many clients, one descriptor each: take the hard limit. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }

    int sp[2];
    if (pipe2(sp, O_NONBLOCK | O_CLOEXEC) < 0)
        die("pipe2");
    S.sig_rd = sp[0];
    S.sig_wr = sp[1];
    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
        die("sigaction");
    signal(SIGPIPE, SIG_IGN);

    S.now = now_ms();
    S.lfd = listen_on(addr, port);

    struct pollfd *pfd = NULL;
    struct client **pcl = NULL;
    size_t pcap = 0;
    uint64_t next_tick = 0;

    for (;;) {
        S.now = now_ms();
        size_t need = 2;
        for (struct client *c = S.head; c; c = c->next)
            need++;
        if (need > pcap) {
            pcap = need * 2;
            pfd = xrealloc(pfd, pcap * sizeof *pfd);
            pcl = xrealloc(pcl, pcap * sizeof *pcl);
        }
        size_t n = 0;
        pfd[n] = (struct pollfd){ .fd = S.sig_rd, .events = POLLIN };
        pcl[n++] = NULL;
        if (S.lfd >= 0 && S.now >= S.accept_pause_until) {
            pfd[n] = (struct pollfd){ .fd = S.lfd, .events = POLLIN };
            pcl[n++] = NULL;
        }
        size_t first_client = n;
        bool busy = S.lfd >= 0 && S.now < S.accept_pause_until;
        for (struct client *c = S.head; c; c = c->next) {
            short ev = 0;
            if (!c->read_eof)
                ev |= POLLIN;
            if (out_pending(c))
                ev |= POLLOUT;
            if (out_pending(c) || c->acked < c->written || c->tr_head < c->tr_len ||
                c->state == CS_LEAVING)
                busy = true;
            pfd[n] = (struct pollfd){ .fd = c->fd, .events = ev };
            pcl[n++] = c;
        }
        int timeout = busy ? CHAT_TICK_MS : -1;
        if (S.phase != PH_RUNNING) {
            uint64_t d = S.phase == PH_DRAINING ? S.drain_deadline : S.close_deadline;
            int left = d > S.now ? (int)(d - S.now) : 0;
            if (timeout < 0 || left < timeout)
                timeout = left;
        }

        int rc = poll(pfd, (nfds_t)n, timeout);
        if (rc < 0 && errno != EINTR)
            die("poll");
        S.now = now_ms();

        if (rc > 0) {
            if (pfd[0].revents & POLLIN) {
                unsigned char b[64];
                while (read(S.sig_rd, b, sizeof b) > 0)
                    ;
                begin_shutdown();
            }
            if (first_client == 2 && S.lfd >= 0 && (pfd[1].revents & POLLIN))
                accept_clients();
            for (size_t i = first_client; i < n; i++) {
                struct client *c = pcl[i];
                short re = pfd[i].revents;
                if (re == 0 || c->dead)
                    continue;
                if (re & (POLLIN | POLLHUP | POLLERR)) {
                    if (!c->read_eof)
                        on_readable(c);
                    else if (re & (POLLERR | POLLNVAL))
                        client_fail(c);
                }
                if ((re & POLLOUT) && !c->dead)
                    flush_client(c);
            }
        }
        if (S.now >= next_tick) {
            tick();
            next_tick = S.now + CHAT_TICK_MS;
        }
        process_drops();
        admit_waiting();
        if (S.phase == PH_DRAINING && (drained() || S.now >= S.drain_deadline))
            finish_drain();
        for (struct client *c = S.head; c; c = c->next) {
            if (!c->dead && out_pending(c))
                flush_client(c);
            service_leaving(c);
        }
        /* Clients failing in the flush above announce their leaving to the
         * others; those lines go out next round. */
        process_drops();
        if (S.phase == PH_CLOSING && S.now >= S.close_deadline)
            for (struct client *c = S.head; c; c = c->next)
                close_client(c, true);
        reap();
        if (S.phase == PH_CLOSING && S.head == NULL)
            break;
    }
    say("shutdown complete: %llu connections, %llu messages, %llu dropped",
        (unsigned long long)S.n_conns, (unsigned long long)S.n_msgs,
        (unsigned long long)S.n_drops);
    free(pfd);
    free(pcl);
    free(S.by_fd);
    return 0;
}
