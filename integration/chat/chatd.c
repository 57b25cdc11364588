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

#include "chatd.h"

struct server S;

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
