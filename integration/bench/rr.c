/*
 * rr: request/response latency over TCP, for the benchmarks (B5, B6).
 *
 *   rr server --port P [--bind ADDR] [--once] [--cc NAME] [--poll]
 *   rr client --to ADDR --port P [--size B] [--count N] [--warmup N]
 *             [--cc NAME] [--timeout SECS] [--samples FILE] [--poll]
 *
 * The server echoes every byte it reads, one connection at a time (with
 * --once it exits after the first connection ends, so a preloaded transport
 * can print its statistics at exit). The client connects, then WARMUP + COUNT
 * times writes SIZE bytes and reads SIZE bytes back, strictly one request at
 * a time; each round trip of the last COUNT is timed with CLOCK_MONOTONIC.
 * Both ends set TCP_NODELAY; --cc sets TCP_CONGESTION (kernel TCP only: it
 * is an error if the socket refuses it). With --poll every read waits in
 * poll() for the socket first, as curl, nc and ssh wait.
 *
 * The client prints one line of key=value to stdout:
 *   count size min_ms p50_ms p90_ms p99_ms max_ms mean_ms total_s
 * Percentiles are nearest-rank over the COUNT samples. --samples writes every
 * round trip (ms, one a line, in order) to FILE.
 *
 * Plain sockets; knows nothing of any LD_PRELOAD transport.
 * Exit: 0 success, 1 error (connect, short read, EOF), 2 usage, 3 timeout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RR_SIZE_MAX (1 << 20)

static struct {
    const char *to, *port, *bind, *cc, *samples;
    long size, count, warmup, timeout;
    int poll; /* --poll: each read waits in poll() first, as curl and nc do */
    int once;
} opt = {.size = 100, .count = 1000, .warmup = 0, .timeout = 600};

static void die(const char *what)
{
    fprintf(stderr, "rr: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void on_alarm(int sig)
{
    static const char msg[] = "rr: timeout\n";
    (void)sig;
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(3);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sock_opts(int fd)
{
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
        die("setsockopt TCP_NODELAY");
    if (opt.cc && setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, opt.cc, (socklen_t)strlen(opt.cc)) < 0)
        die("setsockopt TCP_CONGESTION");
}

/* Writes all of buf; returns 0 or -1 (errno set). */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* With --poll: waits in poll() until fd is readable (0), or -1. */
static int wait_readable(int fd)
{
    if (!opt.poll)
        return 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    for (;;) {
        int r = poll(&p, 1, -1);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

/* Reads exactly len bytes; returns 0, or -1 on error or EOF (errno 0). */
static int read_all(int fd, char *buf, size_t len)
{
    while (len > 0) {
        if (wait_readable(fd) < 0)
            return -1;
        ssize_t n = read(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = 0;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static struct addrinfo *resolve(const char *host, const char *port, int passive)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = passive ? AI_PASSIVE : 0};
    struct addrinfo *ai;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "rr: %s port %s: %s\n", host ? host : "*", port, gai_strerror(rc));
        exit(1);
    }
    return ai;
}

static int run_server(void)
{
    struct addrinfo *ai = resolve(opt.bind, opt.port, 1);
    int ls = socket(ai->ai_family, SOCK_STREAM, 0);
    if (ls < 0)
        die("socket");
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* Accepted sockets inherit the listener's options. */
    sock_opts(ls);
    if (bind(ls, ai->ai_addr, ai->ai_addrlen) < 0)
        die("bind");
    freeaddrinfo(ai);
    if (listen(ls, 16) < 0)
        die("listen");
    static char buf[65536];
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            die("accept");
        }
        sock_opts(fd);
        for (;;) {
            if (wait_readable(fd) < 0)
                break;
            ssize_t n = read(fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            if (write_all(fd, buf, (size_t)n) < 0)
                break;
        }
        close(fd);
        if (opt.once)
            break;
    }
    close(ls);
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest rank: the smallest sample with at least p of them at or below. */
static double pct_ms(const int64_t *sorted, long n, double p)
{
    long rank = (long)(p * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return (double)sorted[rank - 1] / 1e6;
}

static int run_client(void)
{
    struct addrinfo *ai = resolve(opt.to, opt.port, 0);
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    sock_opts(fd);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
        die("connect");
    freeaddrinfo(ai);

    char *req = malloc((size_t)opt.size), *resp = malloc((size_t)opt.size);
    int64_t *rtt = calloc((size_t)opt.count, sizeof *rtt);
    if (!req || !resp || !rtt)
        die("malloc");
    for (long i = 0; i < opt.size; i++)
        req[i] = (char)('a' + i % 26);

    int64_t start = now_ns();
    for (long i = 0; i < opt.warmup + opt.count; i++) {
        req[0] = (char)i; /* each request differs, so a stale echo is caught */
        int64_t t0 = now_ns();
        if (write_all(fd, req, (size_t)opt.size) < 0)
            die("write");
        if (read_all(fd, resp, (size_t)opt.size) < 0) {
            if (errno == 0) {
                fprintf(stderr, "rr: EOF after %ld round trips\n", i);
                exit(1);
            }
            die("read");
        }
        int64_t t1 = now_ns();
        if (memcmp(req, resp, (size_t)opt.size) != 0) {
            fprintf(stderr, "rr: round trip %ld: echo differs from the request\n", i);
            exit(1);
        }
        if (i >= opt.warmup)
            rtt[i - opt.warmup] = t1 - t0;
    }
    double total = (double)(now_ns() - start) / 1e9;
    close(fd);

    if (opt.samples) {
        FILE *f = fopen(opt.samples, "w");
        if (!f)
            die(opt.samples);
        for (long i = 0; i < opt.count; i++)
            fprintf(f, "%.3f\n", (double)rtt[i] / 1e6);
        fclose(f);
    }
    double sum = 0;
    for (long i = 0; i < opt.count; i++)
        sum += (double)rtt[i];
    qsort(rtt, (size_t)opt.count, sizeof *rtt, cmp_i64);
    printf("count=%ld size=%ld min_ms=%.4f p50_ms=%.4f p90_ms=%.4f p99_ms=%.4f max_ms=%.4f "
           "mean_ms=%.4f total_s=%.4f\n",
           opt.count, opt.size, pct_ms(rtt, opt.count, 0), pct_ms(rtt, opt.count, 0.5),
           pct_ms(rtt, opt.count, 0.9), pct_ms(rtt, opt.count, 0.99),
           pct_ms(rtt, opt.count, 1.0), sum / (double)opt.count / 1e6, total);
    free(req);
    free(resp);
    free(rtt);
    return 0;
}

static void usage(FILE *f)
{
    fputs("usage: rr server --port P [--bind ADDR] [--once] [--cc NAME] [--poll]\n"
          "       rr client --to ADDR --port P [--size B] [--count N] [--warmup N]\n"
          "                 [--cc NAME] [--timeout SECS] [--samples FILE] [--poll]\n",
          f);
}

static long num(const char *s, long lo, long hi, const char *name)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "rr: --%s must be %ld..%ld\n", name, lo, hi);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"to", required_argument, NULL, 't'},      {"port", required_argument, NULL, 'p'},
        {"bind", required_argument, NULL, 'b'},    {"size", required_argument, NULL, 's'},
        {"count", required_argument, NULL, 'n'},   {"warmup", required_argument, NULL, 'w'},
        {"cc", required_argument, NULL, 'c'},      {"timeout", required_argument, NULL, 'T'},
        {"samples", required_argument, NULL, 'S'}, {"once", no_argument, NULL, 'o'},
        {"poll", no_argument, NULL, 'P'},          {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *mode = argv[1];
    optind = 2;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't': opt.to = optarg; break;
        case 'p': opt.port = optarg; break;
        case 'b': opt.bind = optarg; break;
        case 's': opt.size = num(optarg, 1, RR_SIZE_MAX, "size"); break;
        case 'n': opt.count = num(optarg, 1, 100000000, "count"); break;
        case 'w': opt.warmup = num(optarg, 0, 100000000, "warmup"); break;
        case 'c': opt.cc = optarg; break;
        case 'T': opt.timeout = num(optarg, 0, 86400, "timeout"); break;
        case 'S': opt.samples = optarg; break;
        case 'o': opt.once = 1; break;
        case 'P': opt.poll = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || !opt.port) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(mode, "server") == 0)
        return run_server();
    if (strcmp(mode, "client") == 0 && opt.to) {
        signal(SIGALRM, on_alarm);
        alarm((unsigned)opt.timeout);
        return run_client();
    }
    usage(stderr);
    return 2;
}
