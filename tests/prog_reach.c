/*
 * prog_reach: a TCP echo pair for the supervisor's tests (issue 35,
 * integration/tests/reach/). Built twice: as every prog_* (dynamic: the
 * preloaded server) and static (prog_reach_static: a client no preload
 * reaches, run under rudp-supervise).
 *
 *   prog_reach server PORT [COUNT]   accept COUNT connections (1), one after
 *                                    the other, echo each to EOF, close;
 *                                    print "served N" (bytes, in all)
 *   prog_reach client HOST PORT N [nb]
 *                                    connect (non-blocking with "nb": poll
 *                                    for POLLOUT and read SO_ERROR, as Go
 *                                    does), write N pattern bytes while
 *                                    reading the echo, half-close, read to
 *                                    EOF (after connect, "connected: nodelay
 *                                    1, domain AF_INET": TCP's options);
 *                                    EOF; print "echoed N" or fail (exit 1)
 *   prog_reach send HOST PORT N      connect, write N pattern bytes, exit at
 *                                    once (no close, no wait): what is in
 *                                    flight must still arrive
 *   prog_reach sink PORT             accept one connection, read it to EOF,
 *                                    check the pattern; print "received N"
 *   prog_reach connects HOST PORT N [R]
 *                                    N times: connect (blocking), write a
 *                                    byte, read its echo, close; print the
 *                                    mean microseconds of connect() and of
 *                                    the whole; then, with R, one more
 *                                    connection and R 1-byte round trips
 *                                    on it: their mean (the bench's B20,
 *                                    docs/reach.md's costs; figures, never
 *                                    asserted)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int die(const char *what)
{
    fprintf(stderr, "prog_reach: %s: %s\n", what, strerror(errno));
    exit(1);
}

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 7 + i / 251);
}

/* A listener on 127.0.0.1:port. */
static int listen_on(int port)
{
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (l < 0)
        die("socket");
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 8) < 0)
        die("bind/listen");
    return l;
}

static int server(int port, int count)
{
    int l = listen_on(port);
    static char buf[65536];
    size_t total = 0;
    for (int k = 0; k < count; k++) {
        int c = accept(l, NULL, NULL);
        if (c < 0)
            die("accept");
        for (;;) {
            ssize_t n = read(c, buf, sizeof buf);
            if (n < 0)
                die("read");
            if (n == 0)
                break;
            for (ssize_t off = 0; off < n;) {
                ssize_t w = write(c, buf + off, (size_t)(n - off));
                if (w < 0)
                    die("write");
                off += w;
            }
            total += (size_t)n;
        }
        close(c);
    }
    close(l);
    printf("served %zu\n", total);
    return 0;
}

static int client(const char *host, int port, size_t want, int nb)
{
    int s = socket(AF_INET, SOCK_STREAM | (nb ? SOCK_NONBLOCK : 0), 0);
    if (s < 0)
        die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
        die("address");
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
        if (!nb || errno != EINPROGRESS)
            die("connect");
        struct pollfd p = {.fd = s, .events = POLLOUT};
        if (poll(&p, 1, 30000) != 1)
            die("poll for connect");
        int err = 0;
        socklen_t el = sizeof err;
        if (getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
            die("SO_ERROR");
        if (err) {
            errno = err;
            die("connect (SO_ERROR)");
        }
        fcntl(s, F_SETFL, fcntl(s, F_GETFL) & ~O_NONBLOCK);
    }
    /* what TCP says of its own socket, under rudp too */
    int one = 1, nd = 0, dom = 0;
    socklen_t ol = sizeof nd;
    if (setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
        getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &nd, &ol) < 0)
        die("TCP_NODELAY");
    ol = sizeof dom;
    if (getsockopt(s, SOL_SOCKET, SO_DOMAIN, &dom, &ol) < 0)
        die("SO_DOMAIN");
    printf("connected: nodelay %d, domain %s\n", nd, dom == AF_INET ? "AF_INET" : "other");
    fflush(stdout);
    static unsigned char out[65536], in[65536];
    size_t sent = 0, got = 0;
    int wr_open = 1;
    while (got < want || wr_open) {
        struct pollfd p = {.fd = s, .events = POLLIN | (wr_open ? POLLOUT : 0)};
        if (poll(&p, 1, 30000) != 1)
            die("poll");
        if (wr_open && (p.revents & POLLOUT)) {
            size_t n = want - sent < sizeof out ? want - sent : sizeof out;
            for (size_t i = 0; i < n; i++)
                out[i] = pattern(sent + i);
            ssize_t w = send(s, out, n, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w < 0 && errno != EAGAIN)
                die("send");
            if (w > 0)
                sent += (size_t)w;
            if (sent == want) {
                if (shutdown(s, SHUT_WR) < 0)
                    die("shutdown");
                wr_open = 0;
            }
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(s, in, sizeof in, MSG_DONTWAIT);
            if (n < 0 && errno != EAGAIN)
                die("recv");
            if (n == 0) {
                fprintf(stderr, "prog_reach: EOF after %zu of %zu bytes\n", got, want);
                return 1;
            }
            for (ssize_t i = 0; i < n; i++)
                if (in[i] != pattern(got + (size_t)i)) {
                    fprintf(stderr, "prog_reach: byte %zu differs\n", got + (size_t)i);
                    return 1;
                }
            if (n > 0)
                got += (size_t)n;
        }
    }
    char c;
    if (read(s, &c, 1) != 0)
        die("no EOF after the echo");
    close(s);
    printf("echoed %zu\n", got);
    return 0;
}

static int sink(int port)
{
    int l = listen_on(port);
    int c = accept(l, NULL, NULL);
    if (c < 0)
        die("accept");
    static unsigned char buf[65536];
    size_t got = 0;
    for (;;) {
        ssize_t n = read(c, buf, sizeof buf);
        if (n < 0)
            die("read");
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != pattern(got + (size_t)i)) {
                fprintf(stderr, "prog_reach: byte %zu differs\n", got + (size_t)i);
                return 1;
            }
        got += (size_t)n;
    }
    printf("received %zu\n", got);
    return 0;
}

static int send_exit(const char *host, int port, size_t want)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (s < 0 || inet_pton(AF_INET, host, &a.sin_addr) != 1)
        die("socket/address");
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0)
        die("connect");
    static unsigned char out[65536];
    for (size_t sent = 0; sent < want;) {
        size_t n = want - sent < sizeof out ? want - sent : sizeof out;
        for (size_t i = 0; i < n; i++)
            out[i] = pattern(sent + i);
        ssize_t w = write(s, out, n);
        if (w < 0)
            die("write");
        sent += (size_t)w;
    }
    printf("sent %zu\n", want);
    fflush(stdout);
    _exit(0);
}

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int connects(const char *host, int port, int n, int rounds)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
        die("address");
    double t_conn = 0, t_all = 0;
    for (int i = 0; i < n; i++) {
        double t0 = now_us();
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0)
            die("socket");
        double t1 = now_us();
        if (connect(s, (struct sockaddr *)&a, sizeof a) < 0)
            die("connect");
        double t2 = now_us();
        char c = 'x';
        if (write(s, &c, 1) != 1 || read(s, &c, 1) != 1)
            die("echo");
        close(s);
        t_conn += t2 - t1;
        t_all += now_us() - t0;
    }
    printf("connects %d: connect() %.1f us, socket+connect+1-byte echo+close %.1f us (means)\n", n,
           t_conn / n, t_all / n);
    if (rounds <= 0)
        return 0;
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0)
        die("connect");
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    double t0 = now_us();
    for (int i = 0; i < rounds; i++) {
        char c = 'x';
        if (write(s, &c, 1) != 1 || read(s, &c, 1) != 1)
            die("round trip");
    }
    double t_rr = now_us() - t0;
    close(s);
    printf("round trips %d: 1-byte write and echo %.1f us (mean)\n", rounds, t_rr / rounds);
    return 0;
}

int main(int argc, char **argv)
{
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "server") == 0)
        return server(atoi(argv[2]), argc == 4 ? atoi(argv[3]) : 1);
    if (argc == 3 && strcmp(argv[1], "sink") == 0)
        return sink(atoi(argv[2]));
    if (argc == 5 && strcmp(argv[1], "send") == 0)
        return send_exit(argv[2], atoi(argv[3]), strtoul(argv[4], NULL, 10));
    if ((argc == 5 || argc == 6) && strcmp(argv[1], "connects") == 0)
        return connects(argv[2], atoi(argv[3]), atoi(argv[4]), argc == 6 ? atoi(argv[5]) : 0);
    if ((argc == 5 || argc == 6) && strcmp(argv[1], "client") == 0)
        return client(argv[2], atoi(argv[3]), strtoul(argv[4], NULL, 10),
                      argc == 6 && strcmp(argv[5], "nb") == 0);
    fprintf(stderr, "usage: prog_reach server PORT [COUNT] | client HOST PORT N [nb] | send HOST PORT N | sink PORT | connects HOST PORT N [R]\n");
    return 2;
}
