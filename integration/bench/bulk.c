/*
 * bulk: bulk goodput over TCP, measured at the receiver, for the benchmarks
 * (B1-B4, B6, B7).
 *
 *   bulk recv --port P [--bind ADDR] --time SECS [--cc NAME] [--once]
 *   bulk send --to ADDR --port P [--cc NAME] [--timeout SECS]
 *
 * The receiver accepts a connection and reads as fast as it can for SECS
 * seconds from accept(), counting the bytes the application got; then it
 * resets the connection (SO_LINGER 0) and prints one line to stdout:
 *   bytes=N seconds=S mbps=M
 * (mbps = N * 8 / S / 1e6; S is SECS unless the sender ended first). With
 * --once it exits after that connection, so a preloaded transport can print
 * its statistics at exit.
 *
 * The sender writes 128 KiB chunks until the receiver's reset stops it
 * (EPIPE or ECONNRESET: success), or fails after --timeout (default 120)
 * seconds. It prints one line to stdout:
 *   sent=N seconds=S tcp_bytes_sent=B tcp_bytes_retrans=R srtt_mean_ms=M
 *   srtt_max_ms=X min_rtt_ms=R0
 * where B and R come from TCP_INFO just before the end (kernel TCP; 0 when
 * the socket does not report them); M and X are the mean and the largest of
 * TCP_INFO's smoothed RTT read after each write from the second second on
 * (slow start left out), R0 its minimum RTT at the end (NA when the socket
 * reports no RTT). Under the shim TCP_INFO gives rudp's own RTT figures.
 *
 * The sender also samples TCP_INFO after each write from the second second
 * on, to say what limited the flow (the same fields from kernel TCP and
 * from the shim):
 *   cwnd_kb inflight_kb sndwnd_kb  means of the congestion window, the
 *                         bytes in flight and the peer's receive window
 *   pacing_mbps delivery_mbps  means of the pacing and delivery rates
 *   cwnd_limited_pct      samples with in flight >= cwnd - 2 MSS
 *   rwnd_limited_pct      samples where the peer's window was below cwnd
 *   app_limited_pct       samples whose delivery rate was app-limited (the
 *                         sender ran out of bytes to send)
 *   busy_ms rwnd_time_pct sndbuf_time_pct  kernel TCP's own account of the
 *                         connection's life (TCP_INFO's chrono: tcpi_busy_time,
 *                         tcpi_rwnd_limited, tcpi_sndbuf_limited): ms busy
 *                         sending, and the shares of it stalled by the peer's
 *                         window and by this end's send buffer (NA when the
 *                         socket does not keep them: the shim)
 * and both ends print cpu_s= (user + system CPU of the whole process,
 * engine thread included; kernel TCP's softirq work is partly charged to
 * whoever runs, so it is a lower bound there) and vcsw= ivcsw= (voluntary
 * and involuntary context switches of the whole process, getrusage).
 *
 * Why a fixed window at the receiver, not "send for SECS, then read to EOF":
 * the sender's unsent buffer (up to RUDP_BUFFER, 4 MiB by default, under the
 * shim) would then drain after the window, and a slow flow (1 Mbit/s at 5 %
 * loss) would need half a minute more per run. Counting what the receiving
 * application got in the first SECS seconds bounds every run and treats
 * every transport alike, slow start included.
 *
 * Both ends set TCP_CONGESTION with --cc (kernel TCP only: an error if the
 * socket refuses it). Plain sockets; knows nothing of any LD_PRELOAD
 * transport. Exit: 0 success, 1 error, 2 usage, 3 timeout.
 */
#include <errno.h>
#include <getopt.h>
#include <linux/tcp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BULK_CHUNK (128 * 1024)

static struct {
    const char *to, *port, *bind, *cc;
    double time;
    long timeout;
    int once;
} opt = {.time = 10, .timeout = 120};

static void die(const char *what)
{
    fprintf(stderr, "bulk: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void on_alarm(int sig)
{
    static const char msg[] = "bulk: timeout\n";
    (void)sig;
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(3);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set_cc(int fd)
{
    if (opt.cc && setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, opt.cc, (socklen_t)strlen(opt.cc)) < 0)
        die("setsockopt TCP_CONGESTION");
}

static struct addrinfo *resolve(const char *host, const char *port, int passive)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = passive ? AI_PASSIVE : 0};
    struct addrinfo *ai;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "bulk: %s port %s: %s\n", host ? host : "*", port, gai_strerror(rc));
        exit(1);
    }
    return ai;
}

static double cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) < 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* " vcsw=V ivcsw=I": the whole process's context switches (all threads). */
static const char *csw(void)
{
    static char s[64];
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) < 0)
        return " vcsw=NA ivcsw=NA";
    snprintf(s, sizeof s, " vcsw=%ld ivcsw=%ld", ru.ru_nvcsw, ru.ru_nivcsw);
    return s;
}

/* Reads for opt.time seconds from accept, then resets the connection. */
static void recv_one(int fd)
{
    static char buf[256 * 1024];
    double t0 = now_s(), end = t0 + opt.time, t = t0;
    uint64_t bytes = 0;
    for (;;) {
        t = now_s();
        if (t >= end)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int ms = (int)((end - t) * 1000) + 1;
        int n = poll(&p, 1, ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("poll");
        }
        if (n == 0)
            continue;
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            die("read");
        }
        if (r == 0) {
            t = now_s();
            break;
        }
        bytes += (uint64_t)r;
    }
    if (t > end)
        t = end;
    double secs = t - t0;
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
    printf("bytes=%llu seconds=%.3f mbps=%.3f cpu_s=%.3f%s\n", (unsigned long long)bytes, secs,
           secs > 0 ? (double)bytes * 8 / secs / 1e6 : 0.0, cpu_s(), csw());
    fflush(stdout);
}

static int run_recv(void)
{
    struct addrinfo *ai = resolve(opt.bind, opt.port, 1);
    int ls = socket(ai->ai_family, SOCK_STREAM, 0);
    if (ls < 0)
        die("socket");
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    set_cc(ls);
    if (bind(ls, ai->ai_addr, ai->ai_addrlen) < 0)
        die("bind");
    freeaddrinfo(ai);
    if (listen(ls, 16) < 0)
        die("listen");
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            die("accept");
        }
        recv_one(fd);
        if (opt.once)
            break;
    }
    close(ls);
    return 0;
}

static int run_send(void)
{
    struct addrinfo *ai = resolve(opt.to, opt.port, 0);
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    set_cc(fd);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
        die("connect");
    freeaddrinfo(ai);

    static char buf[BULK_CHUNK];
    uint64_t x = 0x9e3779b97f4a7c15ull; /* incompressible-looking filler */
    for (size_t i = 0; i + 8 <= sizeof buf; i += 8) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        memcpy(buf + i, &x, 8);
    }
    double t0 = now_s();
    uint64_t sent = 0;
    struct tcp_info ti;
    memset(&ti, 0, sizeof ti);
    socklen_t tl = sizeof ti;
    double rtt_sum = 0, rtt_max = 0, min_rtt = 0;
    uint64_t rtt_n = 0;
    /* what limits the flow: sums over the same samples as the RTT */
    double cwnd_sum = 0, infl_sum = 0, wnd_sum = 0, pace_sum = 0, dlv_sum = 0;
    uint64_t cwnd_lim = 0, rwnd_lim = 0, app_lim = 0;
    for (;;) {
        ssize_t n = write(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EPIPE || errno == ECONNRESET)
                break;
            die("write");
        }
        sent += (uint64_t)n;
        /* Kept current: after the reset the kernel may have cleared it. */
        tl = sizeof ti;
        if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) < 0) {
            memset(&ti, 0, sizeof ti);
            continue;
        }
        if (ti.tcpi_rtt && now_s() - t0 >= 1.0) {
            double r = ti.tcpi_rtt / 1000.0;
            rtt_sum += r;
            rtt_n++;
            if (r > rtt_max)
                rtt_max = r;
            double mss = ti.tcpi_snd_mss, cwnd = (double)ti.tcpi_snd_cwnd * mss;
            double infl = (double)ti.tcpi_unacked * mss;
            cwnd_sum += cwnd;
            infl_sum += infl;
            wnd_sum += ti.tcpi_snd_wnd;
            pace_sum += (double)ti.tcpi_pacing_rate;
            dlv_sum += (double)ti.tcpi_delivery_rate;
            cwnd_lim += infl + 2 * mss >= cwnd;
            rwnd_lim += ti.tcpi_snd_wnd && ti.tcpi_snd_wnd < cwnd;
            app_lim += ti.tcpi_delivery_rate_app_limited;
        }
        if (tl >= offsetof(struct tcp_info, tcpi_min_rtt) + sizeof ti.tcpi_min_rtt && ti.tcpi_min_rtt)
            min_rtt = ti.tcpi_min_rtt / 1000.0;
    }
    double secs = now_s() - t0;
    unsigned long long bs = 0, br = 0;
    if (tl >= offsetof(struct tcp_info, tcpi_bytes_retrans) + sizeof ti.tcpi_bytes_retrans) {
        bs = ti.tcpi_bytes_sent;
        br = ti.tcpi_bytes_retrans;
    }
    /* The kernel's own account of what held the sender (its chrono). */
    char chrono[96] = "busy_ms=NA rwnd_time_pct=NA sndbuf_time_pct=NA";
    if (tl >= offsetof(struct tcp_info, tcpi_sndbuf_limited) + sizeof ti.tcpi_sndbuf_limited &&
        ti.tcpi_busy_time) {
        double busy = (double)ti.tcpi_busy_time;
        snprintf(chrono, sizeof chrono, "busy_ms=%.0f rwnd_time_pct=%.1f sndbuf_time_pct=%.1f",
                 busy / 1e3, 100.0 * (double)ti.tcpi_rwnd_limited / busy,
                 100.0 * (double)ti.tcpi_sndbuf_limited / busy);
    }
    close(fd);
    char rtts[96] = "srtt_mean_ms=NA srtt_max_ms=NA min_rtt_ms=NA";
    if (rtt_n)
        snprintf(rtts, sizeof rtts, "srtt_mean_ms=%.2f srtt_max_ms=%.2f min_rtt_ms=%.2f",
                 rtt_sum / (double)rtt_n, rtt_max, min_rtt);
    double k = rtt_n ? 1.0 / (double)rtt_n : 0;
    printf("sent=%llu seconds=%.3f tcp_bytes_sent=%llu tcp_bytes_retrans=%llu %s "
           "cwnd_kb=%.0f inflight_kb=%.0f sndwnd_kb=%.0f pacing_mbps=%.1f delivery_mbps=%.1f "
           "cwnd_limited_pct=%.0f rwnd_limited_pct=%.0f app_limited_pct=%.0f %s cpu_s=%.3f%s\n",
           (unsigned long long)sent, secs, bs, br, rtts, cwnd_sum * k / 1024, infl_sum * k / 1024,
           wnd_sum * k / 1024, pace_sum * k * 8 / 1e6, dlv_sum * k * 8 / 1e6,
           100.0 * (double)cwnd_lim * k, 100.0 * (double)rwnd_lim * k,
           100.0 * (double)app_lim * k, chrono, cpu_s(), csw());
    return 0;
}

static void usage(FILE *f)
{
    fputs("usage: bulk recv --port P [--bind ADDR] --time SECS [--cc NAME] [--once]\n"
          "       bulk send --to ADDR --port P [--cc NAME] [--timeout SECS]\n",
          f);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"to", required_argument, NULL, 't'},   {"port", required_argument, NULL, 'p'},
        {"bind", required_argument, NULL, 'b'}, {"time", required_argument, NULL, 'T'},
        {"cc", required_argument, NULL, 'c'},   {"timeout", required_argument, NULL, 'O'},
        {"once", no_argument, NULL, 'o'},       {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *mode = argv[1];
    optind = 2;
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't': opt.to = optarg; break;
        case 'p': opt.port = optarg; break;
        case 'b': opt.bind = optarg; break;
        case 'c': opt.cc = optarg; break;
        case 'o': opt.once = 1; break;
        case 'T':
            opt.time = strtod(optarg, &end);
            if (*end || end == optarg || opt.time <= 0 || opt.time > 86400) {
                fputs("bulk: --time must be 0..86400 seconds\n", stderr);
                return 2;
            }
            break;
        case 'O':
            opt.timeout = strtol(optarg, &end, 10);
            if (*end || end == optarg || opt.timeout < 0 || opt.timeout > 86400) {
                fputs("bulk: --timeout must be 0..86400 seconds\n", stderr);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || !opt.port) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(mode, "recv") == 0)
        return run_recv();
    if (strcmp(mode, "send") == 0 && opt.to) {
        signal(SIGALRM, on_alarm);
        alarm((unsigned)opt.timeout);
        return run_send();
    }
    usage(stderr);
    return 2;
}
