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
 *   ceiling server tcp|rudp|rudp-engine PORT REQ RESP
 *   ceiling client tcp|rudp|rudp-engine PORT CONNS SECONDS REQ RESP [shared]
 *
 * `rudp-engine` is the other shape issue 46 names: the core on an engine
 * thread that owns the sockets and receives, the program's thread told of
 * readiness in memory (an eventfd only when it sleeps) and sending its own
 * writes; no bridge, so what it costs beyond `rudp` is the hand-off
 * between the two threads alone.
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
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
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
    unsigned pend;   /* engine shape: events not yet taken by the program */
    uint8_t open, inq;
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

/* Datagrams the core sent this turn, sent by socket at its end: each
 * thread that runs the core has its queue (txq, set with the context's
 * lock taken), so that the engine shape sends outside the lock. */
typedef struct txbuf {
    int n;
    struct {
        uint32_t sock;
        struct sockaddr_in to;
        size_t len;
        uint8_t buf[DGRAM];
    } d[BATCH];
} txbuf;
static txbuf tx_main;
static txbuf *txq = &tx_main;
static _Atomic uint64_t tx_calls;

static void flush_q(txbuf *q)
{
    struct mmsghdr m[BATCH];
    struct iovec v[BATCH];
    int i = 0;
    while (i < q->n) {
        int j = i, k = 0;
        while (j < q->n && q->d[j].sock == q->d[i].sock) {
            v[k].iov_base = q->d[j].buf;
            v[k].iov_len = q->d[j].len;
            memset(&m[k], 0, sizeof m[k]);
            m[k].msg_hdr.msg_iov = &v[k];
            m[k].msg_hdr.msg_iovlen = 1;
            m[k].msg_hdr.msg_name = &q->d[j].to;
            m[k].msg_hdr.msg_namelen = sizeof q->d[j].to;
            j++, k++;
        }
        int off = 0;
        while (off < k) {
            int r = sendmmsg(sock_fd[q->d[i].sock], m + off, (unsigned)(k - off), 0);
            tx_calls++;
            if (r <= 0)
                break; /* a full buffer drops, as a link does; the core resends */
            off += r;
        }
        i = j;
    }
    q->n = 0;
}

static void flush(void)
{
    flush_q(txq);
}

static void on_send(void *user, uint32_t sock, const rudp_addr *peer, const uint8_t *buf,
                    size_t len)
{
    (void)user;
    if (len > DGRAM)
        return;
    txbuf *q = txq;
    if (q->n == BATCH)
        flush_q(q);
    q->d[q->n].sock = sock;
    memset(&q->d[q->n].to, 0, sizeof q->d[q->n].to);
    q->d[q->n].to.sin_family = AF_INET;
    q->d[q->n].to.sin_port = htons(peer->port);
    memcpy(&q->d[q->n].to.sin_addr, peer->ip, 4);
    q->d[q->n].len = len;
    memcpy(q->d[q->n].buf, buf, len);
    q->n++;
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

/* Datagrams read, not yet given to the core. */
typedef struct rxbatch {
    int n;
    uint32_t sock[BATCH];
    struct sockaddr_in from[BATCH];
    unsigned len[BATCH];
    uint8_t buf[BATCH][DGRAM];
} rxbatch;

/* Reads what sock has into b's room left: how many it read. */
static int udp_read(uint32_t sock, rxbatch *b)
{
    struct mmsghdr m[BATCH];
    struct iovec v[BATCH];
    int room = BATCH - b->n;
    for (int i = 0; i < room; i++) {
        v[i].iov_base = b->buf[b->n + i];
        v[i].iov_len = DGRAM;
        memset(&m[i], 0, sizeof m[i]);
        m[i].msg_hdr.msg_iov = &v[i];
        m[i].msg_hdr.msg_iovlen = 1;
        m[i].msg_hdr.msg_name = &b->from[b->n + i];
        m[i].msg_hdr.msg_namelen = sizeof b->from[0];
    }
    int r = room > 0 ? recvmmsg(sock_fd[sock], m, (unsigned)room, 0, NULL) : 0;
    for (int i = 0; i < r; i++) {
        b->sock[b->n + i] = sock;
        b->len[b->n + i] = m[i].msg_len;
    }
    if (r > 0)
        b->n += r;
    return r > 0 ? r : 0;
}

static void rx_input(rxbatch *b, rudp_time now)
{
    for (int i = 0; i < b->n; i++) {
        rudp_addr p = to_addr(&b->from[i]);
        rudp_ctx_input(ctx, now, b->sock[i], NULL, &p, b->buf[i], b->len[i]);
    }
    b->n = 0;
}

/* Reads what sock has (several datagrams a call) into the core. */
static void udp_drain(uint32_t sock, rudp_time now)
{
    static rxbatch b;
    for (;;) {
        int r = udp_read(sock, &b);
        rx_input(&b, now);
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

/* What the loop of either shape shares: the role's answers to its
 * connections' events (app_event), called by the thread that runs the
 * program's part. */
static int is_server;
static int nconn_want;
static double run_secs;
static uint64_t done;  /* client: answers counted since t0 */
static int up;         /* client: connections established */
static rudp_time t0;   /* client: when the last came up */
static uint8_t rbuf[16384];

static void app_event(conn *k, unsigned e, rudp_time now)
{
    rudp_conn *c = k->rc;
    if (!is_server && (e & RUDP_EV_ERROR)) {
        fprintf(stderr, "client rudp: a connection failed (%d)\n", rudp_conn_error(c));
        exit(1);
    }
    if (!is_server && (e & RUDP_EV_ESTABLISHED)) {
        k->open = 1;
        if (rudp_conn_write(c, now, req_buf, req_len) != (ssize_t)req_len)
            die("rudp write");
        if (++up == nconn_want)
            t0 = now;
    }
    if (!(e & (RUDP_EV_READABLE | RUDP_EV_ERROR | RUDP_EV_CLOSED)))
        return;
    ssize_t r;
    size_t need = is_server ? req_len : resp_len;
    while ((r = rudp_conn_read(c, now, rbuf, sizeof rbuf)) > 0) {
        k->got += (size_t)r;
        while (k->got >= need) {
            k->got -= need;
            if (is_server)
                served++;
            else if (t0)
                done++;
            const uint8_t *out = is_server ? resp_buf : req_buf;
            size_t n = is_server ? resp_len : req_len;
            if (rudp_conn_write(c, now, out, n) != (ssize_t)n)
                die("rudp write");
        }
    }
    if (is_server && (r == 0 || (r < 0 && r != -EAGAIN) || (e & RUDP_EV_CLOSED))) {
        rudp_conn_shutdown(c, now);
        rudp_conn_release(c, now);
        free(k);
    }
}

/* The engine shape (`engine`): an engine thread owns the UDP sockets and
 * receives; a connection with events goes on a list in memory, and the
 * program's thread, woken by an eventfd only when it sleeps, takes the
 * list, reads and writes under the context's lock and sends what its
 * writes made (as the shim's app-thread send). No bridge: what is left is
 * the hand-off between two threads. */
static int engine_mode;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static conn *readyq[MAXC];
static int nready;
static int app_waiting; /* under mu */
static int app_efd;
static _Atomic rudp_time app_next = RUDP_TIME_NEVER;
static _Atomic int engine_stop;
static uint64_t bells;

static void take_events(rudp_time now)
{
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
        if (!engine_mode) {
            app_event(k, e, now);
            continue;
        }
        k->pend |= e;
        if (!k->inq && nready < MAXC) {
            k->inq = 1;
            readyq[nready++] = k;
        }
    }
}

static void *engine_main(void *arg)
{
    (void)arg;
    int ep = epoll_create1(0);
    for (int i = 0; i < nsocks; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, sock_fd[i], &ev);
    }
    rudp_time next = RUDP_TIME_NEVER;
    while (!engine_stop && !stop) {
        rudp_time an = atomic_load(&app_next);
        struct epoll_event evs[BATCH];
        int n = epoll_wait(ep, evs, BATCH, wait_ms(an < next ? an : next, now_ns()));
        static rxbatch b; /* read without the lock: the program's thread goes on meanwhile */
        for (int i = 0; i < n; i++)
            udp_read(evs[i].data.u32, &b);
        static txbuf mine;
        pthread_mutex_lock(&mu);
        txq = &mine;
        rudp_time now = now_ns();
        rx_input(&b, now);
        take_events(now);
        next = rudp_ctx_process(ctx, now);
        int wake = nready && app_waiting;
        if (wake)
            app_waiting = 0;
        pthread_mutex_unlock(&mu);
        flush_q(&mine); /* sent without the lock: the program's thread goes on */
        if (wake) {
            uint64_t one = 1;
            if (write(app_efd, &one, sizeof one) == sizeof one)
                bells++;
        }
    }
    close(ep);
    return NULL;
}

/* The program's thread in the engine shape, until stop (server) or the
 * client's time is up. */
static void app_loop_engine(rudp_time start)
{
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 0};
    epoll_ctl(ep, EPOLL_CTL_ADD, app_efd, &ev);
    static txbuf mine;
    for (;;) {
        rudp_time now = now_ns();
        if (stop || (!is_server && now >= (t0 ? t0 + (rudp_time)(run_secs * 1e9)
                                              : start + RUDP_SEC(10))))
            break;
        pthread_mutex_lock(&mu);
        txq = &mine;
        if (nready == 0) {
            app_waiting = 1;
            pthread_mutex_unlock(&mu);
            if (epoll_wait(ep, &ev, 1, 100) == 1) {
                uint64_t v;
                if (read(app_efd, &v, sizeof v) < 0)
                    die("eventfd");
            }
            continue;
        }
        now = now_ns();
        for (int i = 0; i < nready; i++) {
            conn *k = readyq[i];
            unsigned e = k->pend;
            k->pend = 0;
            k->inq = 0;
            app_event(k, e, now);
        }
        nready = 0;
        atomic_store(&app_next, rudp_ctx_process(ctx, now));
        pthread_mutex_unlock(&mu);
        flush_q(&mine); /* sent without the lock: the engine goes on */
    }
    close(ep);
}

/* The program's thread in the thread shape: it waits on the UDP sockets
 * itself and runs everything. */
static void app_loop_thread(int ep, rudp_time start)
{
    rudp_time next = RUDP_TIME_NEVER;
    for (;;) {
        rudp_time now = now_ns();
        if (stop || (!is_server && now >= (t0 ? t0 + (rudp_time)(run_secs * 1e9)
                                              : start + RUDP_SEC(10))))
            break;
        struct epoll_event evs[BATCH];
        int n = epoll_wait(ep, evs, BATCH, wait_ms(next, now));
        now = now_ns();
        for (int i = 0; i < n; i++)
            udp_drain(evs[i].data.u32, now);
        take_events(now);
        next = rudp_ctx_process(ctx, now);
        flush();
    }
}

static void run_loop(rudp_time start)
{
    if (!engine_mode) {
        int ep = epoll_create1(0);
        for (int i = 0; i < nsocks; i++) {
            struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
            epoll_ctl(ep, EPOLL_CTL_ADD, sock_fd[i], &ev);
        }
        app_loop_thread(ep, start);
        close(ep);
        return;
    }
    app_efd = eventfd(0, EFD_NONBLOCK);
    pthread_t t;
    if (app_efd < 0 || pthread_create(&t, NULL, engine_main, NULL))
        die("engine thread");
    app_loop_engine(start);
    atomic_store(&engine_stop, 1);
    pthread_join(t, NULL);
}

static const char *shape(void)
{
    return engine_mode ? "rudp, engine thread" : "rudp";
}

static int rudp_server(int port)
{
    is_server = 1;
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
    run_loop(now_ns());
    char who[64];
    snprintf(who, sizeof who, "server %s", shape());
    usage_report(who, served, 0);
    const rudp_stats *st = rudp_ctx_stats(ctx);
    printf("server rudp: %llu datagrams out, %llu in, %llu probe timeouts, %llu packets resent, "
           "%llu wake-ups of the program's thread\n",
           (unsigned long long)st->dgrams_out, (unsigned long long)st->dgrams_in,
           (unsigned long long)st->pto_count, (unsigned long long)st->pkts_retransmitted,
           (unsigned long long)bells);
    return 0;
}

static int rudp_client(int port, int nconn, double secs, int shared)
{
    is_server = 0;
    nconn_want = nconn;
    run_secs = secs;
    ctx_up();
    struct sockaddr_in sa = lo(port);
    rudp_addr peer = to_addr(&sa);
    rudp_time now = now_ns();
    for (int i = 0; i < (shared ? 1 : nconn); i++) {
        int fd = udp_socket();
        if (!shared && connect(fd, (struct sockaddr *)&sa, sizeof sa))
            die("udp connect");
        sock_fd[i] = fd;
    }
    nsocks = shared ? 1 : nconn;
    for (int i = 0; i < nconn; i++) {
        if (rudp_connect(ctx, now, shared ? 0u : (uint32_t)i, &peer, NULL, &conns[i].rc))
            die("rudp_connect");
        rudp_conn_set_user(conns[i].rc, &conns[i]);
    }
    rudp_ctx_process(ctx, now);
    flush();
    run_loop(now);
    if (!t0) {
        fprintf(stderr, "client rudp: %d of %d connections up in 10 s\n", up, nconn);
        return 1;
    }
    now = now_ns();
    double took = (double)(now - t0) / 1e9;
    char who[80];
    snprintf(who, sizeof who, "client %s%s", shape(), shared ? " (one socket)" : "");
    usage_report(who, done, took);
    const rudp_stats *st = rudp_ctx_stats(ctx);
    printf("client rudp: %.2f datagrams out and %.2f in, %.2f sendmmsg, %.3f wake-ups of the "
           "program's thread per request; %llu probe timeouts, %llu packets resent\n",
           (double)st->dgrams_out / (double)(done ? done : 1),
           (double)st->dgrams_in / (double)(done ? done : 1),
           (double)tx_calls / (double)(done ? done : 1), (double)bells / (double)(done ? done : 1),
           (unsigned long long)st->pto_count, (unsigned long long)st->pkts_retransmitted);
    for (int i = 0; i < nconn; i++)
        rudp_conn_shutdown(conns[i].rc, now);
    rudp_ctx_process(ctx, now);
    flush();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: ceiling server tcp|rudp|rudp-engine PORT REQ RESP\n"
                        "       ceiling client tcp|rudp|rudp-engine PORT CONNS SECONDS REQ RESP "
                        "[shared]\n");
        return 2;
    }
    int server = !strcmp(argv[1], "server");
    int rudp = !strcmp(argv[2], "rudp") || !strcmp(argv[2], "rudp-engine");
    engine_mode = !strcmp(argv[2], "rudp-engine");
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
