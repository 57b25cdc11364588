/*
 * prog_eventloop: the caller of a non-blocking connect is never blocked.
 *
 * One thread, one epoll loop. It serves an echo connection (a client and an
 * accepted server socket, both its own) with a ping every 10 ms, and starts
 * a non-blocking connect to a peer that drops every handshake: a UDP socket
 * that never answers (under the shim the SYNs go there). connect() must say
 * EINPROGRESS (a call that waited for the handshake would end ETIMEDOUT)
 * and return long before the handshake could time out (under a tenth of
 * the connect timeout). While the connect is pending the loop must keep
 * serving: at least 20 echo round trips, none slower than a fifth of the
 * connect timeout (a loop blocked in connect() would do none). The connect
 * finally reports ETIMEDOUT through EPOLLOUT and SO_ERROR, and the echo
 * goes on working after it.
 *
 *   prog_eventloop [TIMEOUT_MS]   RUDP_CONNECT_TIMEOUT as the script set it
 *                                 (default 1500)
 *
 * The bounds are fractions of the connect timeout, not absolute times: the
 * script sets it long (5 s), so a loaded host that stops for 100 ms, or
 * takes tens of ms per round trip, stays far inside them while a loop
 * blocked until the timeout does not.
 *
 * Only meaningful under the shim: to kernel TCP a UDP-only port refuses at
 * once (the script runs it under the shim only).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
    fprintf(stderr, "FAIL: prog_eventloop: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int bound(int type, struct sockaddr_in *a)
{
    int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)a, sizeof *a) < 0)
        die("bind");
    socklen_t l = sizeof *a;
    if (getsockname(fd, (struct sockaddr *)a, &l) < 0)
        die("getsockname");
    return fd;
}

int main(int argc, char **argv)
{
    double timeout_ms = argc > 1 ? atof(argv[1]) : 1500;
    if (timeout_ms <= 0) {
        fprintf(stderr, "usage: prog_eventloop [CONNECT_TIMEOUT_MS]\n");
        return 2;
    }
    alarm((unsigned)(timeout_ms / 1000) + 30); /* nothing here may hang */
    struct sockaddr_in la, ha;
    int lfd = bound(SOCK_STREAM, &la);
    if (listen(lfd, 4) < 0)
        die("listen");
    int hole = bound(SOCK_DGRAM, &ha); /* receives SYNs, answers nothing */
    int ep = epoll_create1(EPOLL_CLOEXEC);

    int cfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (connect(cfd, (struct sockaddr *)&la, sizeof la) < 0 && errno != EINPROGRESS)
        die("connect echo");
    int sfd = -1;
    struct epoll_event e = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &e);
    e.events = EPOLLIN;
    e.data.fd = cfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &e);

    /* The connect that must not block us. */
    int bh = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    double t0 = now_ms();
    int r = connect(bh, (struct sockaddr *)&ha, sizeof ha);
    double took = now_ms() - t0;
    if (r == 0 || errno != EINPROGRESS) {
        fprintf(stderr, "FAIL: prog_eventloop: connect to the black hole: %s, want EINPROGRESS\n",
                r == 0 ? "0" : strerror(errno));
        return 1;
    }
    if (took > timeout_ms / 10) {
        fprintf(stderr, "FAIL: prog_eventloop: connect() held the caller %.1f ms, a tenth of the "
                "%.0f ms connect timeout or more\n", took, timeout_ms);
        return 1;
    }
    printf("ok: non-blocking connect to a peer that drops handshakes: EINPROGRESS in %.2f ms\n",
           took);
    e.events = EPOLLOUT;
    e.data.fd = bh;
    epoll_ctl(ep, EPOLL_CTL_ADD, bh, &e);

    int echoes_pending = 0, echoes_after = 0, bh_done = 0, so_error = -1;
    double sent_at = 0, worst = 0, next_ping = now_ms();
    int waiting = 0;
    while (!(bh_done && echoes_after >= 5)) {
        struct epoll_event ev[8];
        int n = epoll_wait(ep, ev, 8, 10);
        double t = now_ms();
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        for (int i = 0; i < n; i++) {
            int fd = ev[i].data.fd;
            if (fd == lfd) {
                sfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (sfd >= 0) {
                    struct epoll_event se = {.events = EPOLLIN, .data.fd = sfd};
                    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &se);
                }
            } else if (fd == sfd) {
                char b[64];
                ssize_t k = read(sfd, b, sizeof b);
                if (k > 0 && write(sfd, b, (size_t)k) != k)
                    die("echo write");
            } else if (fd == cfd) {
                char b[64];
                if (read(cfd, b, sizeof b) > 0 && waiting) {
                    double rt = t - sent_at;
                    if (rt > worst)
                        worst = rt;
                    waiting = 0;
                    if (bh_done)
                        echoes_after++;
                    else
                        echoes_pending++;
                }
            } else if (fd == bh) {
                socklen_t l = sizeof so_error;
                getsockopt(bh, SOL_SOCKET, SO_ERROR, &so_error, &l);
                epoll_ctl(ep, EPOLL_CTL_DEL, bh, NULL);
                bh_done = 1;
                printf("ok: the pending connect ended after %.0f ms: SO_ERROR %s\n", t - t0,
                       so_error ? strerror(so_error) : "0");
            }
        }
        if (!waiting && t >= next_ping && sfd >= 0) {
            if (write(cfd, "ping", 4) == 4) {
                waiting = 1;
                sent_at = t;
            }
            next_ping = t + 10;
        }
    }
    printf("ok: %d echo round trips while the connect was pending (slowest %.1f ms), %d after\n",
           echoes_pending, worst, echoes_after);
    if (echoes_pending < 20 || worst > timeout_ms / 5) {
        fprintf(stderr, "FAIL: prog_eventloop: the loop was held up while connecting (want 20 "
                "round trips or more, none slower than %.0f ms)\n", timeout_ms / 5);
        return 1;
    }
    if (so_error != ETIMEDOUT) {
        fprintf(stderr, "FAIL: prog_eventloop: SO_ERROR %d, want ETIMEDOUT\n", so_error);
        return 1;
    }
    close(hole);
    printf("PASS: prog_eventloop\n");
    return 0;
}
