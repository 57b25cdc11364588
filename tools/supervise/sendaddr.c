/* sendto() with an address on a bridge (supervise.h).
 *
 * TCP ignores the address of a send on a connected socket (tcp_sendmsg
 * never reads msg_name); the bridge, an AF_UNIX stream socket, refuses
 * it with EISCONN (unix_stream_sendmsg). The filter reports a sendto()
 * whose address argument is not NULL (start.c); on a bridge the data is
 * sent here, from the program's memory, as TCP sends it; on anything
 * else (a UDP socket, kernel TCP) the call continues to the kernel.
 * sendmsg() and sendmmsg() carry their address inside a struct the
 * filter cannot read (a seccomp filter sees the registers only): they
 * stay the bridge's (docs/reach.md).
 *
 * The data goes in chunks, each sent without waiting; a blocking call
 * waits for room in between (at most SO_SNDTIMEO), looking every second
 * whether the program's call is still there. A call that a signal
 * interrupts after some of its bytes left cannot be told how many (TCP
 * returns that count; our answer goes nowhere): its restart (SA_RESTART,
 * the same call again) or the program's retry of the same buffer goes on
 * after them, so that no byte is sent twice (partials). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "supervise.h"

#define SA_CHUNK 65536

/* ---- calls interrupted after some bytes left ---- */

/* A restart comes at once, unless the thread was stopped (SIGSTOP, a
 * debugger: the kernel restarts the call after SIGCONT, however long the
 * stop): an entry of a thread that was running goes after PARTIAL_MS (a
 * program that got EINTR and did not retry), one of a stopped thread
 * stays until its restart takes it or the table needs its room (review
 * 41-1: a 3 s stop sent the bytes twice). */
#define PARTIALS 1024
#define FLIGHTS 64
#define PARTIAL_MS 2000
static struct partial {
    pid_t tid; /* 0: free */
    int fd, flags;
    uint64_t buf, len, ino;
    uint64_t sent;
    long long at;
    int stopped; /* the thread was stopped when noted */
} partials[PARTIALS];
static pthread_mutex_t partials_mu = PTHREAD_MUTEX_INITIALIZER;

/* The bytes already sent by an interrupted call that this one repeats
 * (the same thread, file, buffer, length and flags), taken; else 0. */
static uint64_t partial_take(const struct partial *c)
{
    uint64_t sent = 0;
    long long now = mono_ms();
    pthread_mutex_lock(&partials_mu);
    for (int i = 0; i < PARTIALS; i++) {
        struct partial *p = &partials[i];
        if (p->tid && p->tid == c->tid && p->fd == c->fd && p->ino == c->ino &&
            p->buf == c->buf && p->len == c->len && p->flags == c->flags &&
            (p->stopped || now - p->at <= PARTIAL_MS)) {
            sent = p->sent;
            p->tid = 0;
            break;
        }
    }
    pthread_mutex_unlock(&partials_mu);
    return sent;
}

/* Whether thread tid is stopped or traced (/proc/TID/stat's state T or t,
 * after the command's closing parenthesis). */
static int thread_stopped(pid_t tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)tid);
    if (proc_text(path, buf, sizeof buf) < 0)
        return 0;
    const char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' && (rp[2] == 'T' || rp[2] == 't');
}

static void partial_note(const struct partial *c)
{
    long long now = mono_ms();
    int stopped = thread_stopped(c->tid);
    pthread_mutex_lock(&partials_mu);
    struct partial *slot = &partials[0];
    for (int i = 0; i < PARTIALS; i++) {
        struct partial *p = &partials[i];
        if (!p->tid || (!p->stopped && now - p->at > PARTIAL_MS)) {
            slot = p;
            break;
        }
        if (p->at < slot->at)
            slot = p; /* all in use: the oldest goes */
    }
    *slot = *c;
    slot->at = now;
    slot->stopped = stopped;
    pthread_mutex_unlock(&partials_mu);
}

/* ---- one sender per thread and bridge ----
 * A call interrupted while its worker waits for room is restarted at once
 * (a new notification, another worker), but its worker learns it only
 * when it looks: the restart waits for it (kicking it awake), so that
 * the two never send at once and the restart starts from what the first
 * noted. */
static struct flight {
    pid_t tid; /* 0: free */
    uint64_t ino;
    int kick; /* an eventfd, made once per entry */
} flights[FLIGHTS];
static pthread_cond_t flights_cv = PTHREAD_COND_INITIALIZER;

/* Waits until no other call of thread tid sends on bridge ino, and an
 * entry is free, then claims it: the entry, whose kick the wait polls.
 * (Sending without a claim would let a call and its restart send at once,
 * review 41-6: more than FLIGHTS senders wait for one to end.) */
static struct flight *flight_begin(pid_t tid, uint64_t ino)
{
    pthread_mutex_lock(&partials_mu);
    for (;;) {
        struct flight *busy = NULL, *free_ = NULL;
        for (int i = 0; i < FLIGHTS; i++) {
            if (flights[i].tid == tid && flights[i].ino == ino)
                busy = &flights[i];
            else if (!flights[i].tid && !free_)
                free_ = &flights[i];
        }
        if (!busy && free_) {
            if (free_->kick <= 0)
                free_->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
            free_->tid = tid;
            free_->ino = ino;
            pthread_mutex_unlock(&partials_mu);
            return free_;
        }
        if (!busy) {
            pthread_cond_wait(&flights_cv, &partials_mu); /* all taken: the first to end */
            continue;
        }
        uint64_t one = 1;
        if (busy->kick > 0 && write(busy->kick, &one, sizeof one) < 0) {
            /* full: it is awake already */
        }
        pthread_cond_wait(&flights_cv, &partials_mu);
    }
}

static void flight_end(struct flight *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&partials_mu);
    uint64_t v;
    if (f->kick > 0 && read(f->kick, &v, sizeof v) < 0) {
        /* not kicked */
    }
    f->tid = 0;
    pthread_cond_broadcast(&flights_cv);
    pthread_mutex_unlock(&partials_mu);
}

/* ---- the send ---- */

/* Sends c's buffer (from c->sent on) on the bridge copy. Returns the count
 * sent by this call (> 0), or -errno; -EINTR: the program's call is gone
 * (interrupted), its bytes sent so far noted for a restart. */
static ssize_t send_from(struct sup *s, const struct seccomp_notif *req, int copy,
                         struct partial *c, const struct flight *f)
{
    int nb = (c->flags & MSG_DONTWAIT) || (fcntl(copy, F_GETFL) & O_NONBLOCK);
    int limit = nb ? 0 : sndtimeo_ms(copy);
    long long deadline = limit < 0 ? 0 : mono_ms() + limit;
    uint64_t start = c->sent;
    int err = 0;
    char *buf = malloc(SA_CHUNK);
    if (!buf)
        return -ENOMEM;
    while (c->sent < c->len) {
        size_t n = c->len - c->sent < SA_CHUNK ? (size_t)(c->len - c->sent) : SA_CHUNK;
        struct iovec l = {.iov_base = buf, .iov_len = n};
        struct iovec r = {.iov_base = (void *)(uintptr_t)(c->buf + c->sent), .iov_len = n};
        /* Interrupted meanwhile: the restart goes on from here. Before
         * the first chunk too: a restart may have sent already, ahead of
         * this worker (the one it waits for is the sender it finds). */
        if (!notif_valid(s->lfd, req->id)) {
            if (c->sent)
                partial_note(c); /* what it took from an earlier one too */
            free(buf);
            return -EINTR;
        }
        ssize_t got = process_vm_readv(c->tid, &l, 1, &r, 1, 0);
        if (got <= 0) {
            err = EFAULT;
            break;
        }
        /* MSG_OOB marks the last byte of the whole call, as TCP's: only
         * with the chunk that holds it */
        int last = c->sent + (uint64_t)got == c->len;
        int fl = (c->flags & ~(MSG_OOB | MSG_DONTWAIT)) | (last ? c->flags & MSG_OOB : 0) |
                 MSG_DONTWAIT | MSG_NOSIGNAL;
        ssize_t w = send(copy, buf, (size_t)got, fl);
        if (w > 0) {
            c->sent += (uint64_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue; /* a signal of ours, not the program's */
        if (w < 0 && errno != EAGAIN) {
            err = errno;
            break;
        }
        if (nb) {
            err = EAGAIN;
            break;
        }
        int ms = 1000;
        if (limit >= 0) {
            long long left = deadline - mono_ms();
            if (left <= 0) {
                err = EAGAIN; /* sk_stream_wait_memory's timeout */
                break;
            }
            ms = left < ms ? (int)left : ms;
        }
        struct pollfd p[2] = {{.fd = copy, .events = POLLOUT},
                              {.fd = f ? f->kick : -1, .events = POLLIN}};
        poll(p, 2, ms);
        if (!notif_valid(s->lfd, req->id)) {
            if (c->sent)
                partial_note(c); /* what it took from an earlier one too */
            free(buf);
            return -EINTR;
        }
    }
    free(buf);
    if (c->sent > start)
        return (ssize_t)(c->sent - start);
    return -err;
}

int sendaddr_elsewhere(struct sup *s, struct seccomp_notif *req)
{
    int pidfd = -1;
    uint64_t ino = 0;
    int copy = take_fd(s, req, (int)req->data.args[0], &pidfd, &ino);
    int elsewhere = copy < 0 || placed_bridge(s, ino) < 0;
    finish(s, req, copy, pidfd, elsewhere ? 1 : -1, 0);
    return elsewhere;
}

void on_sendaddr(struct sup *s, struct seccomp_notif *req)
{
    int fd = (int)req->data.args[0];
    int pidfd = -1;
    uint64_t ino = 0;
    int copy = s->pass ? -1 : take_fd(s, req, fd, &pidfd, &ino);
    if (copy < 0 || placed_bridge(s, ino) < 0) {
        finish(s, req, copy, pidfd, 1, 0); /* not a bridge: the kernel's */
        return;
    }
    /* The address is copied in before the send, as move_addr_to_kernel
     * does, whatever the protocol makes of it: a length past a
     * sockaddr_storage or negative is EINVAL, a bad pointer EFAULT (review
     * 41-4) */
    int alen = (int)req->data.args[5];
    struct sockaddr_storage ss;
    struct iovec la = {.iov_base = &ss, .iov_len = alen > 0 ? (size_t)alen : 0};
    struct iovec ra = {.iov_base = (void *)(uintptr_t)req->data.args[4], .iov_len = la.iov_len};
    int aerr = alen < 0 || (size_t)alen > sizeof ss ? EINVAL
               : alen > 0 && process_vm_readv((pid_t)req->pid, &la, 1, &ra, 1, 0) != alen
                   ? EFAULT
                   : 0;
    if (aerr) {
        finish(s, req, copy, pidfd, 0, aerr);
        return;
    }
    struct partial c = {.tid = (pid_t)req->pid, .fd = fd, .flags = (int)req->data.args[3],
                        .buf = req->data.args[1], .len = req->data.args[2], .ino = ino};
    if (c.len > SSIZE_MAX)
        c.len = SSIZE_MAX;
    struct flight *f = flight_begin(c.tid, ino);
    if (!notif_valid(s->lfd, req->id)) {
        /* interrupted while it waited: what the one before noted is for
         * the restart (the thread's live call), not for this one */
        flight_end(f);
        finish(s, req, copy, pidfd, -1, 0);
        return;
    }
    c.sent = partial_take(&c);
    ssize_t n = c.len && c.sent < c.len ? send_from(s, req, copy, &c, f) : 0;
    finish(s, req, copy, pidfd, -1, 0);
    if (n != -EINTR) {
        /* bytes sent (by an interrupted call it repeats, too): their
         * count, as TCP's after an error past the first byte */
        int ok = n >= 0 || c.sent > 0;
        if (respond(s, req->id, 0, ok ? (int64_t)c.sent : 0, ok ? 0 : (int)-n) < 0) {
            if (c.sent)
                partial_note(&c); /* interrupted at the end: its restart gets the count */
        } else if (!ok && n == -EPIPE && !(c.flags & MSG_NOSIGNAL)) {
            /* The kernel's SIGPIPE, to the calling thread: after the
             * answer (sent while the call waits, it would interrupt it),
             * at once, so that it is pending as the thread leaves the
             * call, as the kernel's is, or arrives just after */
            syscall(SYS_tkill, c.tid, SIGPIPE);
        }
    } /* else gone: the answer would go nowhere */
    flight_end(f);
}
