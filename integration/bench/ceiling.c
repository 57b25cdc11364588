/*
 * ceiling.c: issue 46's question, measured. What would many small
 * requests cost if the protocol ran in the program's own thread, with
 * readiness told from memory: no engine thread, no bridge, no interposer?
 *
 * One program, two transports, the same single-threaded epoll loop as
 * redis's: `tcp` uses kernel TCP sockets; `rudp` drives libcore.a itself,
 * on UDP sockets the loop reads (recvmmsg) and writes (sendmmsg, one call
 * per socket and loop turn). A client keeps CONNS connections, each with
 * one request of REQ bytes outstanding; the server answers each with RESP
 * bytes (redis-benchmark's GET: 37 and 9). What the rudp figures leave
 * out is the shim's part alone: interposition, the engine thread, the
 * bridge. So this is the best the design change could reach, not what it
 * will: if rudp here is far below kernel TCP, the shim's shape is not the
 * limit and the core's per-packet work is.
 *
 *   ceiling server tcp|rudp PORT REQ RESP
 *   ceiling client tcp|rudp PORT CONNS SECONDS REQ RESP [shared]
 *
 * `shared`: the rudp client's connections share one UDP socket (one
 * sendmmsg a turn for all of them) instead of one socket each (the shim's
 * shape). The client prints one line: requests per second, its own CPU
 * and context switches per request; the server prints its CPU per request
 * when it is sent SIGTERM. Loopback only; every loop is bounded by the
 * client's SECONDS.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rudp.h"

#define MAXC 4096
#define BATCH 64
#define DGRAM 2048

static rudp_time now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (rudp_time)t.tv_sec * 1000000000ull + (rudp_time)t.tv_nsec;
}

static void die(const char *what)
{
    perror(what);
    exit(2);
}

/* ---- what both transports share ---------------------------------------- */

typedef struct conn {
    int fd;          /* tcp: its socket */
    rudp_conn *rc;   /* rudp: its connection */
    size_t got;      /* bytes of the current request or answer */
    uint8_t open;
} conn;

static conn conns[MAXC];
static size_t req_len, resp_len;
static uint8_t req_buf[4096], resp_buf[4096];
static volatile sig_atomic_t stop;
static uint64_t served;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static void usage_report(const char *who, uint64_t n, double secs)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec +
                 (double)ru.ru_stime.tv_sec * 1e6 + (double)ru.ru_stime.tv_usec;
    double cs = (double)(ru.ru_nvcsw + ru.ru_nivcsw);
    if (n == 0)
        n = 1;
    if (secs > 0)
        printf("%s: %llu requests in %.2f s, %.0f per s, CPU %.2f us and %.3f context "
               "switches per request\n",
               who, (unsigned long long)n, secs, (double)n / secs, cpu / (double)n,
               cs / (double)n);
    else
        printf("%s: %llu requests, CPU %.2f us and %.3f context switches per request\n", who,
               (unsigned long long)n, cpu / (double)n, cs / (double)n);
    fflush(stdout);
}

static struct sockaddr_in lo(int port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

/* ---- kernel TCP ----------------------------------------------------------- */

static void tcp_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int tcp_server(int port)
{
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = lo(port);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 512))
        die("tcp listen");
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    struct epoll_event evs[BATCH];
    uint8_t buf[16384];
    while (!stop) {
        int n = epoll_wait(ep, evs, BATCH, 200);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == ls) {
                int c;
                while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    if (c >= MAXC) {
                        close(c);
                        continue;
                    }
                    tcp_nodelay(c);
                    conns[c].got = 0;
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
                continue;
            }
            ssize_t r = read(fd, buf, sizeof buf);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                close(fd);
                continue;
            }
            conns[fd].got += (size_t)r;
            while (conns[fd].got >= req_len) {
                conns[fd].got -= req_len;
                if (write(fd, resp_buf, resp_len) != (ssize_t)resp_len)
                    die("tcp write");
                served++;
            }
        }
    }
    usage_report("server tcp", served, 0);
    return 0;
}

static int tcp_client(int port, int nconn, double secs)
{
    int ep = epoll_create1(0);
    struct sockaddr_in a = lo(port);
    for (int i = 0; i < nconn; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a))
            die("tcp connect");
        tcp_nodelay(fd);
        conns[i].fd = fd;
        conns[i].got = 0;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    for (int i = 0; i < nconn; i++)
        if (write(conns[i].fd, req_buf, req_len) != (ssize_t)req_len)
            die("tcp write");
    struct epoll_event evs[BATCH];
    uint8_t buf[16384];
    uint64_t done = 0;
    rudp_time t0 = now_ns(), end = t0 + (rudp_time)(secs * 1e9);
    while (now_ns() < end) {
        int n = epoll_wait(ep, evs, BATCH, 100);
        for (int i = 0; i < n; i++) {
            conn *c = &conns[evs[i].data.u32];
            ssize_t r = read(c->fd, buf, sizeof buf);
            if (r <= 0)
                die("tcp read");
            c->got += (size_t)r;
            if (c->got >= resp_len) {
                c->got -= resp_len;
                done++;
                if (write(c->fd, req_buf, req_len) != (ssize_t)req_len)
                    die("tcp write");
            }
        }
    }
    double took = (double)(now_ns() - t0) / 1e9;
    usage_report("client tcp", done, took);
    for (int i = 0; i < nconn; i++)
        close(conns[i].fd);
    return 0;
}

/* ---- rudp in the program's thread ----------------------------------------- */

static int sock_fd[MAXC + 1]; /* the core's sock number -> fd */
static int nsocks;
static rudp_ctx *ctx;

/* datagrams the core sent this turn, flushed by socket at its end */
static struct {
    uint32_t sock;
    struct sockaddr_in to;
    size_t len;
    uint8_t buf[DGRAM];
} tx[BATCH];
static int ntx;
static uint64_t tx_calls;

static void flush(void)
{
    struct mmsghdr m[BATCH];
    struct iovec v[BATCH];
    int i = 0;
    while (i < ntx) {
        int j = i, k = 0;
        while (j < ntx && tx[j].sock == tx[i].sock) {
            v[k].iov_base = tx[j].buf;
            v[k].iov_len = tx[j].len;
            memset(&m[k], 0, sizeof m[k]);
            m[k].msg_hdr.msg_iov = &v[k];
            m[k].msg_hdr.msg_iovlen = 1;
            m[k].msg_hdr.msg_name = &tx[j].to;
            m[k].msg_hdr.msg_namelen = sizeof tx[j].to;
            j++, k++;
        }
        int off = 0;
        while (off < k) {
            int r = sendmmsg(sock_fd[tx[i].sock], m + off, (unsigned)(k - off), 0);
            tx_calls++;
            if (r <= 0)
                break; /* a full buffer drops, as a link does; the core resends */
            off += r;
        }
        i = j;
    }
    ntx = 0;
}

static void on_send(void *user, uint32_t sock, const rudp_addr *peer, const uint8_t *buf,
                    size_t len)
{
    (void)user;
    if (len > DGRAM)
        return;
    if (ntx == BATCH)
        flush();
    tx[ntx].sock = sock;
    memset(&tx[ntx].to, 0, sizeof tx[ntx].to);
    tx[ntx].to.sin_family = AF_INET;
    tx[ntx].to.sin_port = htons(peer->port);
    memcpy(&tx[ntx].to.sin_addr, peer->ip, 4);
    tx[ntx].len = len;
    memcpy(tx[ntx].buf, buf, len);
    ntx++;
}

static rudp_addr to_addr(const struct sockaddr_in *s)
{
    rudp_addr a;
    memset(&a, 0, sizeof a);
    a.family = AF_INET;
    a.port = ntohs(s->sin_port);
    memcpy(a.ip, &s->sin_addr, 4);
    return a;
}

static void ctx_up(void)
{
    static const rudp_ctx_ops ops = {.send = on_send};
    uint8_t seed[32];
    for (size_t i = 0; i < sizeof seed; i++)
        seed[i] = (uint8_t)(rand() ^ (int)getpid());
    if (rudp_ctx_new(&ops, NULL, seed, NULL, NULL, &ctx))
        die("rudp_ctx_new");
}

static int udp_socket(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    int big = 4 << 20;
    if (fd < 0)
        die("udp socket");
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    return fd;
}

/* Reads what sock has (several datagrams a call) into the core. */
static void udp_drain(uint32_t sock, rudp_time now)
{
    static uint8_t rb[BATCH][DGRAM];
    struct mmsghdr m[BATCH];
    struct iovec v[BATCH];
    struct sockaddr_in from[BATCH];
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            v[i].iov_base = rb[i];
            v[i].iov_len = DGRAM;
            memset(&m[i], 0, sizeof m[i]);
            m[i].msg_hdr.msg_iov = &v[i];
            m[i].msg_hdr.msg_iovlen = 1;
            m[i].msg_hdr.msg_name = &from[i];
            m[i].msg_hdr.msg_namelen = sizeof from[i];
        }
        int r = recvmmsg(sock_fd[sock], m, BATCH, 0, NULL);
        if (r <= 0)
            return;
        for (int i = 0; i < r; i++) {
            rudp_addr p = to_addr(&from[i]);
            rudp_ctx_input(ctx, now, sock, NULL, &p, rb[i], m[i].msg_len);
        }
        if (r < BATCH)
            return;
    }
}

static int wait_ms(rudp_time next, rudp_time now)
{
    if (next == RUDP_TIME_NEVER)
        return 100;
    if (next <= now)
        return 0;
    rudp_time ms = (next - now + 999999) / 1000000;
    return ms > 100 ? 100 : (int)ms;
}

static int rudp_server(int port)
{
    int fd = udp_socket();
    struct sockaddr_in a = lo(port);
    if (bind(fd, (struct sockaddr *)&a, sizeof a))
        die("udp bind");
    ctx_up();
    sock_fd[0] = fd;
    nsocks = 1;
    rudp_listener *l;
    if (rudp_listen(ctx, 0, NULL, 1024, &l))
        die("rudp_listen");
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 0};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    rudp_time next = RUDP_TIME_NEVER;
    uint8_t buf[16384];
    while (!stop) {
        struct epoll_event evs[4];
        int n = epoll_wait(ep, evs, 4, wait_ms(next, now_ns()));
        rudp_time now = now_ns();
        if (n > 0)
            udp_drain(0, now);
        rudp_conn *c;
        unsigned e;
        while (rudp_ctx_next_event(ctx, &c, &e)) {
            conn *k = rudp_conn_user(c);
            if (e & RUDP_EV_ACCEPT) {
                k = calloc(1, sizeof *k);
                if (!k)
                    die("calloc");
                k->rc = c;
                rudp_conn_set_user(c, k);
                rudp_conn_accepted(c, now);
            }
            if (!k)
                continue;
            if (e & (RUDP_EV_READABLE | RUDP_EV_ERROR | RUDP_EV_CLOSED)) {
                ssize_t r;
                while ((r = rudp_conn_read(c, now, buf, sizeof buf)) > 0) {
                    k->got += (size_t)r;
                    while (k->got >= req_len) {
                        k->got -= req_len;
                        if (rudp_conn_write(c, now, resp_buf, resp_len) != (ssize_t)resp_len)
                            die("rudp write");
                        served++;
                    }
                }
                if (r == 0 || (r < 0 && r != -EAGAIN) || (e & RUDP_EV_CLOSED)) {
                    rudp_conn_shutdown(c, now);
                    rudp_conn_release(c, now);
                    free(k);
                }
            }
        }
        next = rudp_ctx_process(ctx, now);
        flush();
    }
    usage_report("server rudp", served, 0);
    const rudp_stats *st = rudp_ctx_stats(ctx);
    printf("server rudp: %llu datagrams out, %llu in, %llu probe timeouts, %llu packets resent\n",
           (unsigned long long)st->dgrams_out, (unsigned long long)st->dgrams_in,
           (unsigned long long)st->pto_count, (unsigned long long)st->pkts_retransmitted);
    return 0;
}

static int rudp_client(int port, int nconn, double secs, int shared)
{
    ctx_up();
    int ep = epoll_create1(0);
    struct sockaddr_in sa = lo(port);
    rudp_addr peer = to_addr(&sa);
    rudp_time now = now_ns();
    for (int i = 0; i < (shared ? 1 : nconn); i++) {
        int fd = udp_socket();
        if (!shared && connect(fd, (struct sockaddr *)&sa, sizeof sa))
            die("udp connect");
        sock_fd[i] = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    nsocks = shared ? 1 : nconn;
    for (int i = 0; i < nconn; i++) {
        if (rudp_connect(ctx, now, shared ? 0u : (uint32_t)i, &peer, NULL, &conns[i].rc))
            die("rudp_connect");
        rudp_conn_set_user(conns[i].rc, &conns[i]);
    }
    rudp_time next = rudp_ctx_process(ctx, now);
    flush();
    uint64_t done = 0;
    int up = 0;
    rudp_time t0 = 0, end = now + RUDP_SEC(10); /* every connection up by then */
    uint8_t buf[16384];
    while (now < end) {
        struct epoll_event evs[BATCH];
        int n = epoll_wait(ep, evs, BATCH, wait_ms(next, now));
        now = now_ns();
        for (int i = 0; i < n; i++)
            udp_drain(evs[i].data.u32, now);
        rudp_conn *c;
        unsigned e;
        while (rudp_ctx_next_event(ctx, &c, &e)) {
            conn *k = rudp_conn_user(c);
            if (e & RUDP_EV_ERROR) {
                fprintf(stderr, "client rudp: a connection failed (%d)\n", rudp_conn_error(c));
                exit(1);
            }
            if (e & RUDP_EV_ESTABLISHED) {
                k->open = 1;
                if (rudp_conn_write(c, now, req_buf, req_len) != (ssize_t)req_len)
                    die("rudp write");
                if (++up == nconn) {
                    t0 = now;
                    end = now + (rudp_time)(secs * 1e9);
                }
            }
            if (e & RUDP_EV_READABLE) {
                ssize_t r;
                while ((r = rudp_conn_read(c, now, buf, sizeof buf)) > 0) {
                    k->got += (size_t)r;
                    while (k->got >= resp_len) {
                        k->got -= resp_len;
                        if (t0)
                            done++;
                        if (rudp_conn_write(c, now, req_buf, req_len) != (ssize_t)req_len)
                            die("rudp write");
                    }
                }
            }
        }
        next = rudp_ctx_process(ctx, now);
        flush();
    }
    if (!t0) {
        fprintf(stderr, "client rudp: %d of %d connections up in 10 s\n", up, nconn);
        return 1;
    }
    double took = (double)(now - t0) / 1e9;
    usage_report(shared ? "client rudp (one socket)" : "client rudp", done, took);
    const rudp_stats *st = rudp_ctx_stats(ctx);
    printf("client rudp: %.2f datagrams out and %.2f in, %.2f sendmmsg per request; "
           "%llu probe timeouts, %llu packets resent\n",
           (double)st->dgrams_out / (double)(done ? done : 1),
           (double)st->dgrams_in / (double)(done ? done : 1),
           (double)tx_calls / (double)(done ? done : 1), (unsigned long long)st->pto_count,
           (unsigned long long)st->pkts_retransmitted);
    for (int i = 0; i < nconn; i++)
        rudp_conn_shutdown(conns[i].rc, now);
    next = rudp_ctx_process(ctx, now);
    flush();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: ceiling server tcp|rudp PORT REQ RESP\n"
                        "       ceiling client tcp|rudp PORT CONNS SECONDS REQ RESP [shared]\n");
        return 2;
    }
    int server = !strcmp(argv[1], "server");
    int rudp = !strcmp(argv[2], "rudp");
    int port = atoi(argv[3]);
    int nconn = server ? 0 : atoi(argv[4]);
    double secs = server ? 0 : atof(argv[5]);
    req_len = (size_t)atoi(argv[server ? 4 : 6]);
    resp_len = (size_t)atoi(argv[server ? 5 : 7]);
    if (req_len == 0 || resp_len == 0 || req_len > sizeof req_buf ||
        resp_len > sizeof resp_buf || nconn < 0 || nconn > MAXC - 8) {
        fprintf(stderr, "ceiling: bad sizes or connection count\n");
        return 2;
    }
    memset(req_buf, 'q', req_len);
    memset(resp_buf, 'a', resp_len);
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    signal(SIGPIPE, SIG_IGN);
    if (server)
        return rudp ? rudp_server(port) : tcp_server(port);
    return rudp ? rudp_client(port, nconn, secs, argc > 8 && !strcmp(argv[8], "shared"))
                : tcp_client(port, nconn, secs);
}
