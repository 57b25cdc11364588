/*
 * prog_killpeer: one end of a transfer whose other end gets SIGKILL.
 *
 *   prog_killpeer send ROLE ADDR PORT
 *   prog_killpeer recv ROLE ADDR PORT [-w] [-b SECS] [-m BYTES]
 *
 *   ROLE  listen (bind ADDR:PORT, accept one connection; PORT 0 = any, the
 *         port is printed) or connect (to ADDR:PORT); ADDR numeric v4 or v6
 *   -w    recv writes a line first, which send never reads (over kernel TCP
 *         the killed sender's kernel then answers with RST, not FIN)
 *   -b    the bound on the receiver's last, blocked read (default 5 s)
 *   -m    recv prints its "waiting" line after this many bytes (1 MiB)
 *
 * send writes 16 KiB every 5 ms (about 3 MB/s) until it is killed; it is
 * the victim.  It prints "send: listening on port N" (listen) and
 * "send: connected" and exits 1 if a write fails (the receiver went away).
 *
 * recv is the survivor.  It reads with blocking read() and, after -m bytes,
 * prints "recv: got N bytes, waiting for the end" -- the script kills the
 * sender then.  The read that ends the stream must end within -b seconds
 * of the last data received (the sender writes until the moment it dies),
 * and the end must be told apart from a clean close:
 *   - read() == -1 with ECONNRESET or ETIMEDOUT, or
 *   - read() == 0 (EOF) and then getsockopt(SO_ERROR) == ECONNRESET or
 *     ETIMEDOUT (the shim's AF_UNIX bridge gives a reader that wrote
 *     nothing EOF + SO_ERROR, DESIGN.md section 3), or
 *   - a plain EOF with SO_ERROR 0, accepted ONLY when the environment
 *     variable RUDP_EXPECT_ABORT is not 1 and -w is not given: over kernel
 *     TCP the kernel closes a killed process's socket with a FIN when it
 *     holds no unread data, so the survivor cannot know.  The integration
 *     scripts set RUDP_EXPECT_ABORT=1 under the shim, where the killed
 *     process takes its whole transport with it and nothing may send a FIN.
 * Exit 0 iff so; 1 with a "FAIL:" line otherwise; 2 on bad usage; 3 if the
 * watchdog fired (-b + 60 s, or 120 s for send: it expects to be killed).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "progutil.h"

#define CHUNK 16384
#define CHUNK_GAP_US 5000

const char *prog_name = "prog_killpeer";

/* --- the two ends -------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: prog_killpeer send|recv listen|connect ADDR PORT "
                    "[-w] [-b SECS] [-m BYTES]\n");
    exit(2);
}

/* The connected socket, by listening (and accepting one) or connecting. */
static int open_conn(bool listening, const char *addr, const char *port, const char *who)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV |
                                          (listening ? AI_PASSIVE : 0) };
    struct addrinfo *ai;
    int rc = getaddrinfo(addr, port, &hints, &ai);
    CHECK(rc == 0, "%s: address %s port %s: %s", who, addr, port, gai_strerror(rc));
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    SYS(fd);
    if (!listening) {
        CHECK(connect(fd, ai->ai_addr, ai->ai_addrlen) == 0, "%s: connect to %s port %s: %s",
              who, addr, port, strerror(errno));
        freeaddrinfo(ai);
        printf("%s: connected\n", who);
        return fd;
    }
    int one = 1;
    SYS(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
    SYS(bind(fd, ai->ai_addr, ai->ai_addrlen));
    freeaddrinfo(ai);
    SYS(listen(fd, 1));
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    SYS(getsockname(fd, (struct sockaddr *)&ss, &len));
    unsigned p = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                               : ((struct sockaddr_in6 *)&ss)->sin6_port);
    printf("%s: listening on port %u\n", who, p);
    int c = accept(fd, NULL, NULL);
    SYS(c);
    close(fd);
    printf("%s: connected\n", who);
    return c;
}

static void do_send(int fd)
{
    char buf[CHUNK];
    unsigned long long total = 0;
    for (;;) {
        for (size_t i = 0; i < sizeof buf; i++)
            buf[i] = (char)(total + i);
        size_t done = 0;
        while (done < sizeof buf) {
            ssize_t w = write(fd, buf + done, sizeof buf - done);
            CHECK(w > 0, "send: write after %llu bytes: %s (the receiver went away?)", total,
                  strerror(errno));
            done += (size_t)w;
        }
        total += sizeof buf;
        usleep(CHUNK_GAP_US);
    }
}

static void do_recv(int fd, bool wrote, double bound, unsigned long long mark)
{
    const char *ea = getenv("RUDP_EXPECT_ABORT");
    bool expect_abort = ea && strcmp(ea, "1") == 0;
    char buf[65536];
    unsigned long long total = 0;
    bool announced = false;
    double last = now_s();
    ssize_t r;
    int err;
    unsigned char want = 0;
    for (;;) {
        prog_bounded_wait = 1;
        alarm((unsigned)bound + 1);
        r = read(fd, buf, sizeof buf);
        err = errno;
        alarm(0);
        prog_bounded_wait = 0;
        if (r <= 0)
            break;
        /* The stream is the byte counter mod 256: check it. */
        for (ssize_t i = 0; i < r; i++, want++)
            CHECK((unsigned char)buf[i] == want, "recv: byte %llu is %u, want %u",
                  total + (unsigned long long)i, (unsigned char)buf[i], want);
        total += (unsigned long long)r;
        last = now_s();
        if (!announced && total >= mark) {
            printf("recv: got %llu bytes, waiting for the end\n", total);
            announced = true;
        }
    }
    double gap = now_s() - last;
    alarm(60);
    CHECK(announced, "recv: the stream ended after only %llu bytes (%s), before the kill",
          total, r == 0 ? "EOF" : strerror(err));
    CHECK(!(r < 0 && err == EINTR), "recv: read() still blocked %.1f s after the last data "
          "(bound %.1f s): a dead peer must not hang its survivor", gap, bound);
    CHECK(gap <= bound, "recv: the last read ended %.2f s after the last data, bound %.1f s",
          gap, bound);
    if (r < 0) {
        CHECK(err == ECONNRESET || err == ETIMEDOUT, "recv: read() -> %s, want ECONNRESET "
              "or ETIMEDOUT", strerror(err));
        printf("ok: recv: after %llu bytes read() -> %s, %.2f s after the last data\n", total,
               strerror(err), gap);
        return;
    }
    int so = so_error(fd);
    if (so == ECONNRESET || so == ETIMEDOUT) {
        printf("ok: recv: after %llu bytes read() -> EOF, then SO_ERROR %s, %.2f s after the "
               "last data\n", total, strerror(so), gap);
        return;
    }
    CHECK(so == 0, "recv: EOF, then SO_ERROR %s, want ECONNRESET or ETIMEDOUT", strerror(so));
    CHECK(!expect_abort && !wrote, "recv: after %llu bytes a plain EOF (SO_ERROR 0), %.2f s "
          "after the last data: the peer's death looks like a clean end (%s)", total, gap,
          wrote ? "-w: the peer held unread data, so kernel TCP would reset"
                : "RUDP_EXPECT_ABORT=1");
    printf("ok: recv: after %llu bytes a plain EOF, %.2f s after the last data (allowed: "
           "kernel TCP closes a killed process's socket with FIN)\n", total, gap);
}

int main(int argc, char **argv)
{
    bool wrote = false;
    double bound = 5;
    unsigned long long mark = 1 << 20;
    if (argc < 5)
        usage();
    bool sending = strcmp(argv[1], "send") == 0;
    bool listening = strcmp(argv[2], "listen") == 0;
    if ((!sending && strcmp(argv[1], "recv") != 0) ||
        (!listening && strcmp(argv[2], "connect") != 0))
        usage();
    const char *addr = argv[3], *port = argv[4];
    int opt;
    optind = 5;
    while ((opt = getopt(argc, argv, "wb:m:")) != -1) {
        switch (opt) {
        case 'w': wrote = true; break;
        case 'b': bound = atof(optarg); break;
        case 'm': mark = strtoull(optarg, NULL, 10); break;
        default: usage();
        }
    }
    if (optind != argc || bound <= 0 || (sending && wrote))
        usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    prog_name = sending ? "prog_killpeer(send)" : "prog_killpeer(recv)";
    watchdog(sending ? 120 : (unsigned)bound + 60);

    int fd = open_conn(listening, addr, port, sending ? "send" : "recv");
    if (sending)
        do_send(fd);
    if (wrote) {
        static const char line[] = "this line is never read by the sender\n";
        CHECK(write(fd, line, sizeof line - 1) == (ssize_t)sizeof line - 1, "recv: write: %s",
              strerror(errno));
        printf("recv: wrote %zu bytes the sender will never read\n", sizeof line - 1);
    }
    do_recv(fd, wrote, bound, mark);
    printf("PASS: %s\n", prog_name);
    return 0;
}
