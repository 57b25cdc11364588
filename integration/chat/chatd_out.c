/* chatd: logging, the clock, the signal handler, clients' output queues,
 * notices, and delivery receipts. */

#include <errno.h>
#include <linux/sockios.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "chatd.h"

void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void say(const char *fmt, ...)
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

void die(const char *what)
{
    say("%s: %s", what, strerror(errno));
    exit(1);
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q == NULL) {
        errno = ENOMEM;
        die("realloc");
    }
    return q;
}

uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t w = write(S.sig_wr, &b, 1);
    (void)w;
    errno = saved;
}

bool out_pending(const struct client *c)
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
int queue_bytes(struct client *c, const char *p, size_t n, bool force)
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

int notice(struct client *c, bool force, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int notice(struct client *c, bool force, const char *fmt, ...)
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
void announce(const struct client *except, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void announce(const struct client *except, const char *fmt, ...)
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
void msg_done(struct msg *m)
{
    struct client *s = client_by_fd(m->sender_fd, m->sender_id);
    if (s && s->state == CS_ACTIVE)
        notice(s, false, "delivered %u/%u #%llu", m->acked, m->sent_to,
               (unsigned long long)m->num);
    free(m);
}

void track_push(struct client *c, struct msg *m)
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
void ack_update(struct client *c)
{
    ack_sample(c);
    while (c->tr_head < c->tr_len && c->tr[c->tr_head].end <= c->acked)
        track_pop(c, true);
}

/* c will acknowledge nothing more: settle all its receipts.  With credit,
 * take one last sample first (a peer that closed cleanly may have acked all). */
void tracks_settle(struct client *c, bool credit)
{
    if (credit)
        ack_update(c);
    while (c->tr_head < c->tr_len)
        track_pop(c, false);
}
