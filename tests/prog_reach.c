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
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_reach";

#define WAIT_MS 30000

static int server(unsigned port, int count)
{
    int l = listener_lo(port, 8);
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
            write_exact(c, buf, (size_t)n);
            total += (size_t)n;
        }
        close(c);
    }
    close(l);
    printf("served %zu\n", total);
    return 0;
}

static int client(const char *host, unsigned port, size_t want, int nb)
{
    int s = connect_host(host, port, nb, WAIT_MS); /* echo_pattern makes it blocking */
    /* what TCP says of its own socket, under rudp too */
    setsockopt_int(s, IPPROTO_TCP, TCP_NODELAY, 1);
    int nd = getsockopt_int(s, IPPROTO_TCP, TCP_NODELAY);
    int dom = getsockopt_int(s, SOL_SOCKET, SO_DOMAIN);
    printf("connected: nodelay %d, domain %s\n", nd, dom == AF_INET ? "AF_INET" : "other");
    fflush(stdout);
    echo_pattern(s, want, WAIT_MS);
    close(s);
    printf("echoed %zu\n", want);
    return 0;
}

static int sink(unsigned port)
{
    int l = listener_lo(port, 8);
    int c = accept(l, NULL, NULL);
    if (c < 0)
        die("accept");
    /* no bound: a blocking read, as long as the sender takes */
    uint64_t got = pattern_drain(c, UINT64_MAX, -1, "sink");
    printf("received %llu\n", (unsigned long long)got);
    return 0;
}

static int send_exit(const char *host, unsigned port, size_t want)
{
    int s = connect_host(host, port, 0, WAIT_MS);
    static unsigned char out[65536];
    for (size_t sent = 0; sent < want;) {
        size_t n = want - sent < sizeof out ? want - sent : sizeof out;
        for (size_t i = 0; i < n; i++)
            out[i] = pattern_byte(sent + i);
        write_exact(s, out, n);
        sent += n;
    }
    printf("sent %zu\n", want);
    fflush(stdout);
    _exit(0);
}

static int connects(const char *host, unsigned port, int n, int rounds)
{
    struct sockaddr_in a = ipv4_addr(host, port);
    double t_conn = 0, t_all = 0;
    for (int i = 0; i < n; i++) {
        double t0 = now_s();
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0)
            die("socket");
        double t1 = now_s();
        if (connect(s, (struct sockaddr *)&a, sizeof a) < 0)
            die("connect");
        double t2 = now_s();
        char c = 'x';
        if (write(s, &c, 1) != 1 || read(s, &c, 1) != 1)
            die("echo");
        close(s);
        t_conn += t2 - t1;
        t_all += now_s() - t0;
    }
    printf("connects %d: connect() %.1f us, socket+connect+1-byte echo+close %.1f us (means)\n", n,
           t_conn * 1e6 / n, t_all * 1e6 / n);
    if (rounds <= 0)
        return 0;
    int s = connect_host(host, port, 0, WAIT_MS), one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    double t0 = now_s();
    for (int i = 0; i < rounds; i++) {
        char c = 'x';
        if (write(s, &c, 1) != 1 || read(s, &c, 1) != 1)
            die("round trip");
    }
    double t_rr = now_s() - t0;
    close(s);
    printf("round trips %d: 1-byte write and echo %.1f us (mean)\n", rounds, t_rr * 1e6 / rounds);
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
