/* linkemu's helper modes for the tests: "echo", a UDP echo server, and
 * "probe", a numbered UDP sequence to it that reports loss, RTT, duplicates,
 * reordering and a hash of the loss pattern. */

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "linkemu.h"

/* ---- helper modes: echo and probe --------------------------------------- */

/* Options for the helper modes are "--key value" pairs. */
static const char *opt_get(int argc, char **argv, const char *key, const char *dflt)
{
    for (int i = 1; i + 1 < argc; i++)
        if (!strncmp(argv[i], "--", 2) && !strcmp(argv[i] + 2, key))
            return argv[i + 1];
    return dflt;
}

static int udp_socket_for(const char *host, const char *port, int passive,
                          struct sockaddr_storage *addr, socklen_t *alen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_flags = passive ? AI_PASSIVE : 0};
    struct addrinfo *res = NULL;
    hints.ai_family = passive && !host ? AF_INET6 : AF_UNSPEC;
    int e = getaddrinfo(host, port, &hints, &res);
    if (e) {
        fprintf(stderr, "linkemu: %s: %s\n", host ? host : "*", gai_strerror(e));
        return -EINVAL;
    }
    int fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int err = -errno;
        freeaddrinfo(res);
        return err;
    }
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *alen = res->ai_addrlen;
    if (passive) {
        int zero = 0, one = 1;
        if (res->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, res->ai_addr, res->ai_addrlen) < 0) {
            int err = -errno;
            fprintf(stderr, "linkemu: bind port %s: %s\n", port, strerror(errno));
            close(fd);
            freeaddrinfo(res);
            return err;
        }
    }
    /* 4 MB each way, past net.core.[rw]mem_max when root (the *FORCE
     * options): at 10,000 packets/s a stall of the host must not overflow
     * the socket before the probe or echo server runs again, or a loss the
     * link never made shows at the endpoints. */
    int buf = 4 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf)) < 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    freeaddrinfo(res);
    return fd;
}

int echo_main(int argc, char **argv)
{
    const char *port = opt_get(argc, argv, "port", NULL);
    struct sockaddr_storage addr;
    socklen_t alen;
    if (!port) {
        usage(stderr);
        return 2;
    }
    int fd = udp_socket_for(opt_get(argc, argv, "bind", NULL), port, 1, &addr, &alen);
    if (fd < 0)
        return 1;
    set_rt(pthread_self(), atoi(opt_get(argc, argv, "rt", "0")), "echo");
    fprintf(stderr, "linkemu echo: listening on port %s\n", port);
    static unsigned char buf[65536];
    for (;;) {
        struct sockaddr_storage from;
        socklen_t flen = sizeof(from);
        ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("linkemu echo: recvfrom");
            close(fd);
            return 1;
        }
        if (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, flen) < 0 && errno != ENOBUFS &&
            errno != EAGAIN)
            perror("linkemu echo: sendto");
    }
}

#define PROBE_MAGIC 0x4c454d55u /* "LEMU" */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The P-th percentile of the N sorted values V, nearest rank (0 if N = 0). */
static double pctile(const double *v, uint64_t n, unsigned p)
{
    if (!n)
        return 0;
    uint64_t rank = (n * p + 99) / 100; /* ceil(n * p / 100), 1-based */
    return v[rank ? rank - 1 : 0];
}

struct probe_hdr {
    uint32_t magic;
    uint32_t seq;
    uint64_t sent_ns;
};

int probe_main(int argc, char **argv)
{
    const char *host = opt_get(argc, argv, "to", NULL);
    const char *port = opt_get(argc, argv, "port", NULL);
    uint64_t count, size, wait_ms;
    double interval_ms;
    if (!host || !port || parse_u64(opt_get(argc, argv, "count", "100"), 1, 10000000, &count) ||
        parse_u64(opt_get(argc, argv, "size", "64"), sizeof(struct probe_hdr), 65000, &size) ||
        parse_u64(opt_get(argc, argv, "wait", "1000"), 0, 3600000, &wait_ms) ||
        parse_double(opt_get(argc, argv, "interval", "10"), 0, 1e6, &interval_ms)) {
        usage(stderr);
        return 2;
    }
    struct sockaddr_storage addr;
    socklen_t alen;
    int fd = udp_socket_for(host, port, 0, &addr, &alen);
    if (fd < 0)
        return 1;
    set_rt(pthread_self(), atoi(opt_get(argc, argv, "rt", "0")), "probe");
    /* RTT = kernel receive timestamp - send time, both CLOCK_REALTIME, so
     * the probe's own wake-up latency does not count. */
    int on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)) < 0)
        perror("linkemu probe: SO_TIMESTAMPNS");

    uint16_t *seen = calloc(count, sizeof(*seen));
    uint32_t *order = calloc(count, sizeof(*order)); /* first arrivals, in order */
    double *rtts = calloc(count, sizeof(*rtts));     /* of first arrivals */
    unsigned char *buf = calloc(1, 65536);
    if (!seen || !order || !rtts || !buf) {
        fprintf(stderr, "linkemu probe: out of memory\n");
        return 1;
    }
    uint64_t sent = 0, uniq = 0, dups = 0, send_err = 0;
    double rtt_min = 1e300, rtt_max = 0, rtt_sum = 0, rtt_sq = 0;
    uint64_t interval_ns = (uint64_t)(interval_ms * NS_PER_MS);
    /* The wait runs from the last send or the last arrival, whichever is
     * later: echoes still trickling in (a loaded machine) are not cut off. */
    uint64_t t0 = now_ns(), last_send = t0, last_rx = t0;

    for (;;) {
        uint64_t now = now_ns();
        while (sent < count && now >= t0 + sent * interval_ns) {
            struct probe_hdr h = {PROBE_MAGIC, (uint32_t)sent, realtime_ns()};
            memset(buf, 0, size);
            memcpy(buf, &h, sizeof(h));
            if (sendto(fd, buf, size, 0, (struct sockaddr *)&addr, alen) < 0)
                send_err++;
            sent++;
            last_send = now;
        }
        for (;;) {
            union {
                char raw[CMSG_SPACE(sizeof(struct timespec))];
                struct cmsghdr align;
            } ctl;
            struct iovec iov = {.iov_base = buf, .iov_len = 65536};
            struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.raw,
                                 .msg_controllen = sizeof(ctl.raw)};
            ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
            if (n < 0)
                break;
            uint64_t rx_ns = 0;
            for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
                    struct timespec ts;
                    memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
                    rx_ns = (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
                }
            }
            if (!rx_ns)
                rx_ns = realtime_ns();
            struct probe_hdr h;
            if ((size_t)n < sizeof(h))
                continue;
            memcpy(&h, buf, sizeof(h));
            if (h.magic != PROBE_MAGIC || h.seq >= count)
                continue;
            last_rx = now_ns();
            if (seen[h.seq]++) {
                dups++;
                continue;
            }
            double rtt = (double)(int64_t)(rx_ns - h.sent_ns) / NS_PER_MS;
            rtt_min = rtt < rtt_min ? rtt : rtt_min;
            rtt_max = rtt > rtt_max ? rtt : rtt_max;
            rtt_sum += rtt;
            rtt_sq += rtt * rtt;
            rtts[uniq] = rtt;
            order[uniq++] = h.seq;
        }
        now = now_ns();
        uint64_t deadline;
        if (sent < count)
            deadline = t0 + sent * interval_ns;
        else if (uniq == count ||
                 now >= (last_rx > last_send ? last_rx : last_send) + wait_ms * 1000000ULL)
            break;
        else
            deadline = (last_rx > last_send ? last_rx : last_send) + wait_ms * 1000000ULL;
        uint64_t w = deadline > now ? deadline - now : 0;
        struct timespec ts = {(time_t)(w / NS_PER_S), (long)(w % NS_PER_S)};
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ppoll(&pfd, 1, &ts, NULL);
    }

    /* overtakers: arrived while some lower sequence number was still to come */
    uint64_t overtakers = 0;
    uint32_t suffix_min = UINT32_MAX;
    for (uint64_t i = uniq; i-- > 0;) {
        if (suffix_min < order[i])
            overtakers++;
        if (order[i] < suffix_min)
            suffix_min = order[i];
    }
    /* loss runs: maximal stretches of consecutive lost sequence numbers */
    uint64_t runs = 0;
    for (uint64_t i = 0; i < count; i++)
        if (!seen[i] && (i == 0 || seen[i - 1]))
            runs++;
    /* FNV-1a over the received bitmap */
    uint64_t hash = 0xcbf29ce484222325ULL;
    for (uint64_t i = 0; i < count; i += 8) {
        unsigned char byte = 0;
        for (uint64_t j = i; j < i + 8 && j < count; j++)
            byte = (unsigned char)(byte | (seen[j] ? 1u << (j - i) : 0u));
        hash = (hash ^ byte) * 0x100000001b3ULL;
    }
    double avg = uniq ? rtt_sum / (double)uniq : 0;
    double mdev = uniq ? sqrt(fmax(0, rtt_sq / (double)uniq - avg * avg)) : 0;
    /* Percentiles (nearest rank): unlike min, max and mean, a few packets
     * the machine delayed (a loaded host) do not move them. */
    qsort(rtts, uniq, sizeof(*rtts), cmp_double);
    double p1 = pctile(rtts, uniq, 1), p50 = pctile(rtts, uniq, 50), p99 = pctile(rtts, uniq, 99);
    double p95 = pctile(rtts, uniq, 95);
    printf("sent=%" PRIu64 " recv=%" PRIu64 " lost=%" PRIu64 " loss_pct=%.3f dup=%" PRIu64
           " overtakers=%" PRIu64 " loss_runs=%" PRIu64 " send_err=%" PRIu64
           " rtt_min_ms=%.3f rtt_avg_ms=%.3f rtt_max_ms=%.3f rtt_mdev_ms=%.3f"
           " rtt_p1_ms=%.3f rtt_p50_ms=%.3f rtt_p95_ms=%.3f rtt_p99_ms=%.3f"
           " pattern=%016" PRIx64 "\n",
           sent, uniq, sent - uniq, 100.0 * (double)(sent - uniq) / (double)sent, dups, overtakers,
           runs, send_err, uniq ? rtt_min : 0, avg, rtt_max, mdev, p1, p50, p95, p99, hash);
    free(rtts);
    free(seen);
    free(order);
    free(buf);
    close(fd);
    return 0;
}
