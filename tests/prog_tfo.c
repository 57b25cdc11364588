/*
 * prog_tfo: TCP Fast Open as a program asks for it, for t_prog_tfo.sh.
 *
 *   prog_tfo server PORT N QLEN   listen on 127.0.0.1:PORT (TCP_FASTOPEN
 *                                 QLEN first if QLEN > 0), print "ready",
 *                                 serve N connections one at a time: read a
 *                                 line, answer "echo: " and the line, close
 *   prog_tfo client PORT MODE MSG one request, MODE:
 *     connect  TCP_FASTOPEN_CONNECT, then connect() (0 at once, as Linux
 *              says it; again: EISCONN), write, read
 *     sendto   sendto(MSG_FASTOPEN) on an unconnected socket, read
 *     plain    connect(), write, read (no opt-in); says how long the
 *              connect() and the write took together ("gap: MS ms")
 *
 * Each step's result is checked here (the answer byte for byte, connect()
 * returning 0, sendto() taking the whole request); "transport:" names what
 * carried the connection (the shim's bridge or a kernel socket).
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_tfo";

#ifndef TCP_FASTOPEN_CONNECT
#define TCP_FASTOPEN_CONNECT 30
#endif

/* Reads up to a newline (included) into buf; returns the length. */
static size_t read_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = read(fd, buf + n, 1);
        CHECK(r >= 0, "read: %s", strerror(errno));
        if (r == 0)
            break;
        n++;
        if (buf[n - 1] == '\n')
            break;
    }
    buf[n] = 0;
    return n;
}

static int serve(unsigned port, int n, int qlen)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    SYS(l);
    int one = 1;
    SYS(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
    if (qlen > 0)
        SYS(setsockopt(l, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof qlen));
    bind_lo(l, port);
    SYS(listen(l, 16));
    printf("ready\n");
    for (int i = 0; i < n; i++) {
        int c = accept(l, NULL, NULL);
        SYS(c);
        char line[2048], out[2100];
        read_line(c, line, sizeof line);
        int k = snprintf(out, sizeof out, "echo: %s", line);
        CHECK(write(c, out, (size_t)k) == k, "write: %s", strerror(errno));
        printf("served %d: %zu bytes\n", i + 1, strlen(line));
        close(c);
    }
    close(l);
    return 0;
}

static int client(unsigned port, const char *mode, const char *msg)
{
    struct sockaddr_storage ss;
    socklen_t sl = loopback(AF_INET, port, &ss);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    SYS(s);
    char req[2048], want[2100], got[2100];
    int k = snprintf(req, sizeof req, "%s\n", msg);
    snprintf(want, sizeof want, "echo: %s", req);
    if (strcmp(mode, "connect") == 0) {
        int one = 1;
        SYS(setsockopt(s, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof one));
        CHECK(connect(s, (struct sockaddr *)&ss, sl) == 0, "connect: %s", strerror(errno));
        printf("ok: connect() returned 0\n");
        /* again: EISCONN, whether the SYN waits for the write (Linux's
         * defer_connect) or the handshake is done */
        CHECK(connect(s, (struct sockaddr *)&ss, sl) < 0 && errno == EISCONN,
              "connect() again: %s, want EISCONN", strerror(errno));
        printf("ok: connect() again: EISCONN\n");
        CHECK(write(s, req, (size_t)k) == k, "write: %s", strerror(errno));
    } else if (strcmp(mode, "sendto") == 0) {
        ssize_t w = sendto(s, req, (size_t)k, MSG_FASTOPEN, (struct sockaddr *)&ss, sl);
        CHECK(w == k, "sendto(MSG_FASTOPEN): %zd (%s)", w, w < 0 ? strerror(errno) : "short");
        printf("ok: sendto(MSG_FASTOPEN) took %zd bytes\n", w);
    } else {
        CHECK(strcmp(mode, "plain") == 0, "unknown mode %s", mode);
        double t0 = now_s();
        CHECK(connect(s, (struct sockaddr *)&ss, sl) == 0, "connect: %s", strerror(errno));
        CHECK(write(s, req, (size_t)k) == k, "write: %s", strerror(errno));
        /* RUDP_0RTT holds a plain client's SYN 10 ms for its first write:
         * the test needs to know whether this one came later (load) */
        printf("gap: %.1f ms from connect() to the write's end\n", (now_s() - t0) * 1e3);
    }
    printf("transport: %s\n", fd_transport(s));
    read_line(s, got, sizeof got);
    CHECK(strcmp(got, want) == 0, "answer %s, want %s", got, want);
    printf("ok: answer of %zu bytes\n", strlen(got));
    close(s);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    watchdog(30);
    if (argc == 5 && strcmp(argv[1], "server") == 0)
        return serve((unsigned)atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
    if (argc == 5 && strcmp(argv[1], "client") == 0)
        return client((unsigned)atoi(argv[2]), argv[3], argv[4]);
    fprintf(stderr, "usage: prog_tfo server PORT N QLEN | client PORT connect|sendto|plain MSG\n");
    return 2;
}
