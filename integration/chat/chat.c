/*
 * chat: a small interactive client for chatd.
 *
 *   chat [-h HOST] [-p PORT] [-n NICK] [-w SECS]
 *
 * Lines typed on stdin go to the server; lines from the server go to stdout
 * unchanged ("NICK: text" from others, "* ..." notices from the server).
 * At the end of stdin it waits up to -w seconds (default 5) for the receipts
 * of the chat lines it sent, then sends /quit and reads until the server
 * closes; so `printf 'hello\n' | chat -n me` shows its "* delivered" line.
 * A plain TCP program (poll, blocking connect, then O_NONBLOCK by fcntl);
 * `nc HOST PORT` works just as well for people.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHAT_OUT_MAX  (1u << 20)    /* stop reading stdin while this much is unsent */

static struct {
    int fd;
    char *out;
    size_t out_off, out_len, out_cap;
    char line[8192];                /* the stdin line being classified */
    size_t line_len;
    bool line_long;
    char sline[16];                 /* first bytes of the server line being read */
    size_t sline_len;
    uint64_t chat_sent, receipts;
} C = { .fd = -1 };

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void queue(const char *p, size_t n)
{
    if (C.out_off == C.out_len)
        C.out_off = C.out_len = 0;
    if (C.out_len + n > C.out_cap) {
        memmove(C.out, C.out + C.out_off, C.out_len - C.out_off);
        C.out_len -= C.out_off;
        C.out_off = 0;
        size_t cap = C.out_cap ? C.out_cap : 4096;
        while (cap < C.out_len + n)
            cap *= 2;
        if (cap != C.out_cap) {
            char *q = realloc(C.out, cap);
            if (q == NULL) {
                fprintf(stderr, "chat: out of memory\n");
                exit(1);
            }
            C.out = q;
            C.out_cap = cap;
        }
    }
    memcpy(C.out + C.out_len, p, n);
    C.out_len += n;
}

/* Counts the chat lines (not commands, not empty) among what we send, to
 * know how many receipts to wait for at the end. */
static void classify(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\n') {
            if (C.line_len < sizeof C.line)
                C.line[C.line_len++] = p[i];
            else
                C.line_long = true;
            continue;
        }
        size_t len = C.line_len;
        if (len > 0 && C.line[len - 1] == '\r')
            len--;
        bool command = len > 0 && C.line[0] == '/' && !(len > 1 && C.line[1] == '/');
        if (len > 0 && !command && !C.line_long)
            C.chat_sent++;
        C.line_len = 0;
        C.line_long = false;
    }
}

static void watch_server(const char *p, size_t n)
{
    static const char tag[] = "* delivered ";
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            if (C.sline_len >= sizeof tag - 1 && memcmp(C.sline, tag, sizeof tag - 1) == 0)
                C.receipts++;
            C.sline_len = 0;
        } else if (C.sline_len < sizeof C.sline) {
            C.sline[C.sline_len++] = p[i];
        }
    }
}

static int flush_out(void)
{
    while (C.out_off < C.out_len) {
        ssize_t n = write(C.fd, C.out + C.out_off, C.out_len - C.out_off);
        if (n > 0) {
            C.out_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        } else {
            return -1;
        }
    }
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int dial(const char *host, const char *port)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV };
    struct addrinfo *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "chat: %s:%s: %s\n", host, port, gai_strerror(rc));
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, 0);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        fprintf(stderr, "chat: connect %s:%s: %s\n", host, port, strerror(err));
    return fd;
}

static void usage(void)
{
    fprintf(stderr, "usage: chat [-h HOST] [-p PORT] [-n NICK] [-w SECS]\n"
                    "  defaults: -h 127.0.0.1 -p 7070 -w 5 (receipt wait at end of input)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *port = "7070", *nick = NULL;
    uint64_t linger_ms = 5000;
    int opt;
    while ((opt = getopt(argc, argv, "h:p:n:w:")) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': port = optarg; break;
        case 'n': nick = optarg; break;
        case 'w': linger_ms = (uint64_t)(atof(optarg) * 1000.0); break;
        default: usage();
        }
    }
    if (optind != argc)
        usage();
    signal(SIGPIPE, SIG_IGN);
    C.fd = dial(host, port);
    if (C.fd < 0)
        return 1;
    int fl = fcntl(C.fd, F_GETFL);
    if (fl < 0 || fcntl(C.fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        perror("chat: fcntl");
        return 1;
    }
    if (nick) {
        char cmd[128];
        int n = snprintf(cmd, sizeof cmd, "/nick %s\n", nick);
        queue(cmd, (size_t)n < sizeof cmd ? (size_t)n : sizeof cmd - 1);
    }

    bool stdin_open = true, quit_sent = false;
    uint64_t stdin_closed_at = 0;
    for (;;) {
        if (!stdin_open && !quit_sent &&
            (C.receipts >= C.chat_sent || now_ms() - stdin_closed_at >= linger_ms)) {
            queue("/quit\n", 6);
            quit_sent = true;
        }
        if (flush_out() < 0) {
            fprintf(stderr, "chat: connection lost: %s\n", strerror(errno));
            return 1;
        }
        struct pollfd p[2] = {
            { .fd = C.fd, .events = (short)(POLLIN | (C.out_off < C.out_len ? POLLOUT : 0)) },
            { .fd = stdin_open && C.out_len - C.out_off < CHAT_OUT_MAX ? 0 : -1,
              .events = POLLIN },
        };
        int timeout = -1;
        if (!stdin_open && !quit_sent) {
            uint64_t waited = now_ms() - stdin_closed_at;
            timeout = waited < linger_ms ? (int)(linger_ms - waited) : 0;
        }
        if (poll(p, 2, timeout) < 0) {
            if (errno == EINTR)
                continue;
            perror("chat: poll");
            return 1;
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            char buf[16384];
            ssize_t n = read(0, buf, sizeof buf);
            if (n > 0) {
                classify(buf, (size_t)n);
                queue(buf, (size_t)n);
            } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                stdin_open = false;
                stdin_closed_at = now_ms();
                if (C.line_len > 0) {       /* a last line without newline */
                    classify("\n", 1);
                    queue("\n", 1);
                }
            }
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            char buf[16384];
            ssize_t n = read(C.fd, buf, sizeof buf);
            if (n > 0) {
                watch_server(buf, (size_t)n);
                if (write_all(1, buf, (size_t)n) < 0)
                    return 1;
            } else if (n == 0) {
                return 0;
            } else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
                fprintf(stderr, "chat: connection lost: %s\n", strerror(errno));
                return 1;
            }
        }
    }
}
