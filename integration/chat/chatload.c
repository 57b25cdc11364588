/*
 * chatload: a scripted chat client for tests and the demo.
 *
 *   chatload -p PORT [-h HOST] [-n NICK] [-c COUNT | -f FILE] [-i MS] [-d MS]
 *            [-s SIZE] [-w N] [-G FILE] [-e N] [-t SECS] [-o LOG] [-r BYTES]
 *            [-S] [-k] [-R FILE [-V [-X]]]
 *
 * Connects (non-blocking connect), renames itself with /nick, waits to be
 * admitted (and optionally for N clients online and for a go-file), sends
 * its messages, and logs everything it sends and receives for a checker
 * (chatcheck.py).  Plain TCP; knows nothing of any LD_PRELOAD transport.
 *
 * Messages are "NICK seq=K t=USEC" (padded with " xxx..." to -s bytes), K
 * from 1, USEC the CLOCK_MONOTONIC send time in microseconds (the clock is
 * system-wide, so a receiver on the same host can compute the latency), or
 * the lines of -f FILE.
 *
 * Log lines (one event each; T is CLOCK_MONOTONIC in microseconds):
 *   > T TEXT       a chat line this client sent
 *   < T LINE       a line received from the server, verbatim
 *   # WORDS        lifecycle: pid, connected, stalled, resumed, done, eof,
 *                  timeout, error ...
 *
 * Modes:
 *   default  finish once COUNT messages are sent, COUNT receipts received
 *            and -e chat lines received; then /quit and read to EOF; exit 0.
 *   -k       stay: keep sending (up to COUNT) until the server's goodbye;
 *            read to EOF; exit 0 iff the goodbye came before EOF.
 *   -S       stall: after admission stop reading until SIGUSR1, then read
 *            to EOF; exit 0 at EOF.  With -r a small SO_RCVBUF fills fast.
 *   -R FILE  after admission send FILE's bytes raw; with -V close right
 *            after (with -X by reset, SO_LINGER 0), else read to EOF (FILE
 *            should end in /quit).
 * Exit: 0 success, 1 failure (connect, unexpected EOF, nick refused), 2 timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOAD_LINE_MAX   16384
#define LOAD_OUT_HIGH   65536       /* stop generating while this much is unsent */
#define LOAD_MSG_MAX    4000

static struct {
    /* options */
    const char *host, *port, *nick, *msgfile, *gofile, *rawfile;
    uint64_t count, expect;
    uint64_t interval_us, delay_us;
    size_t size;
    long wait_online;
    double timeout_s;
    int rcvbuf;
    bool stay, stall, vanish, reset;

    /* state */
    FILE *log;
    int fd, sig_rd, sig_wr;
    char **lines;                   /* -f: the messages */
    char *out;
    size_t out_off, out_len, out_cap;
    char in[LOAD_LINE_MAX];
    size_t in_len;
    bool admitted, nick_ok, started, goodbye, dropped, quitting, stalled, resumed;
    bool raw_queued, hup_stalled;
    long online;
    uint64_t sent, rx_chat, receipts;
    uint64_t next_send, deadline;
} L = { .host = "127.0.0.1", .timeout_s = 30, .fd = -1 };

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
    va_list ap;
    fputs("# ", L.log);
    va_start(ap, fmt);
    vfprintf(L.log, fmt, ap);
    va_end(ap);
    fputc('\n', L.log);
}

static void finish(int code, const char *why)
{
    note("%s sent=%llu rx=%llu receipts=%llu online=%ld admitted=%d goodbye=%d dropped=%d",
         why, (unsigned long long)L.sent, (unsigned long long)L.rx_chat,
         (unsigned long long)L.receipts, L.online, L.admitted, L.goodbye, L.dropped);
    note("exit %d", code);
    fflush(L.log);
    exit(code);
}

static void on_usr1(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t w = write(L.sig_wr, &b, 1);
    (void)w;
    errno = saved;
}

static void queue(const char *p, size_t n)
{
    if (L.out_off > 0 && L.out_off == L.out_len)
        L.out_off = L.out_len = 0;
    if (L.out_len + n > L.out_cap) {
        if (L.out_off > 0) {
            memmove(L.out, L.out + L.out_off, L.out_len - L.out_off);
            L.out_len -= L.out_off;
            L.out_off = 0;
        }
        size_t cap = L.out_cap ? L.out_cap : 8192;
        while (cap < L.out_len + n)
            cap *= 2;
        if (cap != L.out_cap) {
            L.out = realloc(L.out, cap);
            if (L.out == NULL)
                finish(1, "error out of memory");
            L.out_cap = cap;
        }
    }
    memcpy(L.out + L.out_len, p, n);
    L.out_len += n;
}

static void queue_str(const char *s)
{
    queue(s, strlen(s));
}

/* Writes what the socket takes now.  Returns -1 if the connection broke. */
static int flush_out(void)
{
    while (L.out_off < L.out_len) {
        ssize_t n = write(L.fd, L.out + L.out_off, L.out_len - L.out_off);
        if (n > 0) {
            L.out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        note("write error: %s", n < 0 ? strerror(errno) : "0 bytes");
        return -1;
    }
    return 0;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "chatload: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (buf == NULL) {
        fprintf(stderr, "chatload: out of memory\n");
        exit(1);
    }
    *len = n;
    return buf;
}

static void load_lines(const char *path)
{
    size_t n;
    char *buf = slurp(path, &n);
    size_t cap = 16;
    L.lines = malloc(cap * sizeof *L.lines);
    L.count = 0;
    char *p = buf, *end = buf + n;
    while (L.lines && p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            nl = end;
        *nl = '\0';
        if (L.count + 1 >= cap)
            L.lines = realloc(L.lines, (cap *= 2) * sizeof *L.lines);
        if (L.lines && nl > p)
            L.lines[L.count++] = p;
        p = nl + 1;
    }
    if (L.lines == NULL) {
        fprintf(stderr, "chatload: out of memory\n");
        exit(1);
    }
}

/* Queues the next message, if one is due. */
static void send_due(uint64_t now)
{
    while (L.sent < L.count && now >= L.next_send && L.out_len - L.out_off < LOAD_OUT_HIGH) {
        char msg[LOAD_MSG_MAX + 2];
        size_t n;
        if (L.lines) {
            n = (size_t)snprintf(msg, LOAD_MSG_MAX, "%s", L.lines[L.sent]);
        } else {
            n = (size_t)snprintf(msg, LOAD_MSG_MAX, "%s seq=%llu t=%llu",
                                 L.nick ? L.nick : "anon", (unsigned long long)(L.sent + 1),
                                 (unsigned long long)now);
            if (L.size > n + 1 && L.size <= LOAD_MSG_MAX) {
                msg[n++] = ' ';
                while (n < L.size)
                    msg[n++] = 'x';
            }
        }
        if (n >= LOAD_MSG_MAX)
            n = LOAD_MSG_MAX - 1;
        /* A line starting with '/' would be a command: send it escaped. */
        if (msg[0] == '/')
            queue("/", 1);
        fprintf(L.log, "> %llu %.*s\n", (unsigned long long)now, (int)n, msg);
        msg[n++] = '\n';
        queue(msg, n);
        L.sent++;
        L.next_send = L.interval_us ? L.next_send + L.interval_us : now;
        if (L.next_send < now && L.interval_us)
            L.next_send = now;          /* never burst to catch up */
    }
}

/* "(N online" anywhere in a notice updates the count. */
static void parse_online(const char *s, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] != '(' || s[i + 1] < '0' || s[i + 1] > '9')
            continue;
        char *end;
        long v = strtol(s + i + 1, &end, 10);
        if ((size_t)(end - s) + 7 <= n && memcmp(end, " online", 7) == 0)
            L.online = v;
    }
}

static bool starts(const char *s, size_t n, const char *prefix)
{
    size_t p = strlen(prefix);
    return n >= p && memcmp(s, prefix, p) == 0;
}

static void on_line(char *s, size_t n, uint64_t now)
{
    fprintf(L.log, "< %llu ", (unsigned long long)now);
    fwrite(s, 1, n, L.log);
    fputc('\n', L.log);
    if (!starts(s, n, "* ")) {
        L.rx_chat++;
        return;
    }
    parse_online(s, n);
    if (starts(s, n, "* welcome ")) {
        L.admitted = true;
    } else if (starts(s, n, "* delivered ")) {
        L.receipts++;
    } else if (starts(s, n, "* you are now ")) {
        if (L.nick && n == 14 + strlen(L.nick) && memcmp(s + 14, L.nick, n - 14) == 0)
            L.nick_ok = true;
    } else if (starts(s, n, "* error: nick") && L.nick && !L.nick_ok && !L.rawfile) {
        finish(1, "error nick refused");
    } else if (starts(s, n, "* server shutting down")) {
        L.goodbye = true;
    } else if (starts(s, n, "* you were dropped")) {
        L.dropped = true;
    }
}

static void on_bytes(const char *p, size_t n, uint64_t now)
{
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (L.in_len + take > sizeof L.in) {
            note("error line over %zu bytes", sizeof L.in);
            take = sizeof L.in - L.in_len;
            nl = NULL;
        }
        memcpy(L.in + L.in_len, p, take);
        L.in_len += take;
        if (nl == NULL && L.in_len < sizeof L.in)
            return;
        on_line(L.in, L.in_len, now);
        L.in_len = 0;
        size_t used = take + (nl ? 1 : 0);
        p += used;
        n -= used;
    }
}

static void at_eof(const char *how)
{
    uint64_t now = now_us();
    if (L.in_len > 0)
        note("partial line at eof: %zu bytes", L.in_len);
    note("%s %llu", how, (unsigned long long)now);
    bool ok;
    if (L.stall)
        ok = true;
    else if (L.rawfile)
        ok = L.raw_queued;
    else if (L.stay)
        ok = L.goodbye;
    else
        ok = L.quitting;
    finish(ok ? 0 : 1, ok ? "done" : "error unexpected eof");
}

static int connect_to(void)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV };
    struct addrinfo *res;
    int rc = getaddrinfo(L.host, L.port, &hints, &res);
    if (rc != 0) {
        note("error getaddrinfo %s:%s: %s", L.host, L.port, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        if (L.rcvbuf > 0)
            (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &L.rcvbuf, sizeof L.rcvbuf);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS) {
            struct pollfd p = { .fd = fd, .events = POLLOUT };
            int left = (int)((L.deadline - now_us()) / 1000);
            int err = 0;
            socklen_t el = sizeof err;
            if (poll(&p, 1, left > 0 ? left : 0) == 1 &&
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0)
                break;
            errno = err ? err : ETIMEDOUT;
        }
        note("error connect: %s", strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: chatload -p PORT [-h HOST] [-n NICK] [-c COUNT | -f FILE] [-i MS] [-d MS]\n"
            "                [-s SIZE] [-w N] [-G FILE] [-e N] [-t SECS] [-o LOG] [-r BYTES]\n"
            "                [-S] [-k] [-R FILE [-V [-X]]]\n"
            "  -c COUNT  send COUNT numbered messages \"NICK seq=K t=USEC\"\n"
            "  -f FILE   send FILE's lines instead\n"
            "  -i MS     interval between messages (default 0)\n"
            "  -d MS     delay before the first message\n"
            "  -s SIZE   pad numbered messages to SIZE bytes\n"
            "  -w N      start sending once N clients are online\n"
            "  -G FILE   start sending once FILE exists\n"
            "  -e N      before quitting, wait for N chat lines from others\n"
            "  -t SECS   give up after SECS (default 30), exit 2\n"
            "  -o LOG    log file (default stdout)\n"
            "  -r BYTES  SO_RCVBUF before connecting\n"
            "  -S        stall: stop reading after admission until SIGUSR1\n"
            "  -k        stay until the server closes (exit 0 iff its goodbye came)\n"
            "  -R FILE   send FILE raw after admission; -V then close, -X by reset\n");
    exit(2);
}

static uint64_t num(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < 0 || v > 1e12)
        usage();
    return (uint64_t)v;
}

int main(int argc, char **argv)
{
    const char *logpath = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "h:p:n:c:f:i:d:s:w:G:e:t:o:r:SkR:VX")) != -1) {
        switch (opt) {
        case 'h': L.host = optarg; break;
        case 'p': L.port = optarg; break;
        case 'n': L.nick = optarg; break;
        case 'c': L.count = num(optarg); break;
        case 'f': L.msgfile = optarg; break;
        case 'i': L.interval_us = num(optarg) * 1000; break;
        case 'd': L.delay_us = num(optarg) * 1000; break;
        case 's': L.size = (size_t)num(optarg); break;
        case 'w': L.wait_online = (long)num(optarg); break;
        case 'G': L.gofile = optarg; break;
        case 'e': L.expect = num(optarg); break;
        case 't': L.timeout_s = (double)num(optarg); break;
        case 'o': logpath = optarg; break;
        case 'r': L.rcvbuf = (int)num(optarg); break;
        case 'S': L.stall = true; break;
        case 'k': L.stay = true; break;
        case 'R': L.rawfile = optarg; break;
        case 'V': L.vanish = true; break;
        case 'X': L.reset = true; break;
        default: usage();
        }
    }
    if (L.port == NULL || optind != argc)
        usage();
    L.log = logpath ? fopen(logpath, "w") : stdout;
    if (L.log == NULL) {
        fprintf(stderr, "chatload: %s: %s\n", logpath, strerror(errno));
        return 1;
    }
    /* Line-buffered: test scripts wait on these lines as they appear. */
    setvbuf(L.log, NULL, _IOLBF, 1 << 16);
    if (L.msgfile)
        load_lines(L.msgfile);
    signal(SIGPIPE, SIG_IGN);
    int sp[2];
    if (pipe2(sp, O_NONBLOCK | O_CLOEXEC) < 0) {
        perror("chatload: pipe2");
        return 1;
    }
    L.sig_rd = sp[0];
    L.sig_wr = sp[1];
    struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);

    note("pid %d nick %s", (int)getpid(), L.nick ? L.nick : "-");
    L.deadline = now_us() + (uint64_t)(L.timeout_s * 1e6);
    L.fd = connect_to();
    if (L.fd < 0)
        finish(1, "error not connected");
    int one = 1;
    (void)setsockopt(L.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    note("connected %llu", (unsigned long long)now_us());
    if (L.nick) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "/nick %s\n", L.nick);
        queue_str(cmd);
    }

    for (;;) {
        uint64_t now = now_us();
        if (now >= L.deadline)
            finish(2, "timeout");

        bool ready = L.admitted && (L.nick == NULL || L.nick_ok);
        if (ready && L.stall && !L.stalled && !L.resumed) {
            L.stalled = true;
            note("stalled %llu", (unsigned long long)now);
        }
        if (ready && !L.started && !L.stall && L.online >= L.wait_online &&
            (L.gofile == NULL || access(L.gofile, F_OK) == 0)) {
            L.started = true;
            L.next_send = now + L.delay_us;
            note("started %llu", (unsigned long long)now);
        }
        if (L.started && !L.goodbye && !L.quitting) {
            if (L.rawfile && !L.raw_queued) {
                size_t n;
                char *raw = slurp(L.rawfile, &n);
                queue(raw, n);
                free(raw);
                L.raw_queued = true;
                note("raw %zu bytes", n);
            } else if (!L.rawfile) {
                send_due(now);
            }
        }
        if (flush_out() < 0)
            at_eof("eof (write failed)");
        if (L.rawfile && L.raw_queued && L.vanish && L.out_off == L.out_len) {
            if (L.reset) {
                struct linger lg = { .l_onoff = 1, .l_linger = 0 };
                (void)setsockopt(L.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            }
            close(L.fd);
            finish(0, L.reset ? "vanished by reset" : "vanished");
        }
        if (!L.stay && !L.stall && !L.rawfile && !L.quitting && L.started &&
            L.sent >= L.count && L.receipts >= L.count && L.rx_chat >= L.expect) {
            L.quitting = true;
            note("quitting %llu", (unsigned long long)now);
            queue_str("/quit\n");
            continue;
        }

        /* While stalled the socket is polled for nothing, yet a reset still
         * reports POLLERR/POLLHUP; once seen, leave it alone until resumed. */
        struct pollfd p[2] = {
            { .fd = L.stalled && L.hup_stalled ? -1 : L.fd, .events = (short)((L.stalled ? 0 : POLLIN) |
                                            (L.out_off < L.out_len ? POLLOUT : 0)) },
            { .fd = L.sig_rd, .events = POLLIN },
        };
        uint64_t wake = L.deadline;
        if (L.started && L.sent < L.count && !L.goodbye && !L.quitting &&
            L.out_len - L.out_off < LOAD_OUT_HIGH && L.next_send < wake)
            wake = L.next_send;
        if (ready && !L.started && L.gofile && now + 20000 < wake)
            wake = now + 20000;         /* look for the go-file again */
        int timeout = wake > now ? (int)((wake - now + 999) / 1000) : 0;
        int rc = poll(p, 2, timeout);
        if (rc < 0 && errno != EINTR) {
            note("error poll: %s", strerror(errno));
            finish(1, "error");
        }
        if (rc <= 0)
            continue;
        if (p[1].revents & POLLIN) {
            unsigned char b[16];
            while (read(L.sig_rd, b, sizeof b) > 0)
                ;
            if (L.stalled) {
                L.stalled = false;
                L.resumed = true;
                note("resumed %llu", (unsigned long long)now_us());
            }
        }
        if (L.stalled && (p[0].revents & (POLLHUP | POLLERR))) {
            L.hup_stalled = true;
        } else if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            char buf[65536];
            ssize_t n = read(L.fd, buf, sizeof buf);
            if (n > 0)
                on_bytes(buf, (size_t)n, now_us());
            else if (n == 0)
                at_eof("eof");
            else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                note("read error: %s", strerror(errno));
                at_eof("eof (reset)");
            }
        }
    }
}
