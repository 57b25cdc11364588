/*
 * prog_sendaddr: sendto() with an address on a connected TCP socket, as
 * Linux TCP answers it (tcp_sendmsg never reads msg_name): the address is
 * ignored and the bytes go to the peer, whatever their size, blocking or
 * not, with signals arriving meanwhile.
 *
 *   prog_sendaddr        run every check below; exit 0 iff all hold
 *
 *   - big: 8 MiB in one blocking sendto() to another address (more than
 *     any socket buffer: it waits for the reader): all of it sent, every
 *     byte read in order;
 *   - signals: 8 MiB sent by a thread with sendto() in a loop (a count
 *     short of the rest is sent on from there), while another thread sends
 *     it SIGUSR1 (SA_RESTART) and SIGUSR2 (no SA_RESTART: EINTR when no
 *     byte left yet) until it is done: the reader gets every byte exactly
 *     once, in order;
 *   - nonblocking: on a non-blocking socket whose peer reads nothing,
 *     sendto() of 1 MiB at a time accepts some, then says EAGAIN; the
 *     reader then gets exactly the bytes accepted;
 *   - oob: sendto(MSG_OOB) of 200 KiB with an address: only its last byte
 *     is urgent (a read stops before it, recv(MSG_OOB) returns it);
 *   - epipe: once the peer has closed and reset, sendto() says EPIPE and
 *     raises SIGPIPE; with MSG_NOSIGNAL, EPIPE and no signal.
 *
 * Prints one "ok:" line per check and "transport: KIND" for the connected
 * fds (tcp = a kernel TCP socket). Exit 0 iff every check held; 1 with a
 * "FAIL:" line otherwise; 3 if the watchdog (60 s) fired.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 60
#define EVENT_MS 5000
#define BIG (8u << 20)

const char *prog_name = "prog_sendaddr";

/* Not the peer: TCP never looks at it. */
static struct sockaddr_storage other;
static socklen_t other_len;

static unsigned char *pattern(size_t n)
{
    unsigned char *b = malloc(n);
    CHECK(b, "malloc %zu", n);
    for (size_t i = 0; i < n; i++)
        b[i] = pattern_byte(i);
    return b;
}

/* The sending side of a case, in a thread of its own. */
struct sender {
    int fd;
    const unsigned char *buf;
    size_t len;
    int loop; /* sendto() again from where a short count left off */
    int flags;
    ssize_t first;
    int err;
    atomic_int done;
    pthread_t t;
};

static void *send_thread(void *arg)
{
    struct sender *s = arg;
    size_t off = 0;
    do {
        ssize_t w = sendto(s->fd, s->buf + off, s->len - off, s->flags,
                           (struct sockaddr *)&other, other_len);
        if (w < 0 && errno == EINTR && s->loop)
            continue;
        if (w < 0) {
            s->err = errno;
            break;
        }
        if (!off)
            s->first = w;
        off += (size_t)w;
    } while (s->loop && off < s->len);
    atomic_store(&s->done, 1);
    return NULL;
}

static void on_sig(int sig) { (void)sig; }

/* Nothing more than what was read: the writer's end shut, a's next read
 * is the end of the stream. */
static void expect_eof(int c, int a, const char *what)
{
    SYS(shutdown(c, SHUT_WR));
    struct pollfd p = {.fd = a, .events = POLLIN};
    CHECK(poll(&p, 1, EVENT_MS) == 1, "%s: no end of stream", what);
    char b;
    ssize_t r = read(a, &b, 1);
    CHECK(r == 0, "%s: %s after every byte sent", what, r > 0 ? "more bytes" : strerror(errno));
}

/* One read of at most want bytes from a once it is readable, each
 * checked against the pattern from offset got (modulo mod, 0: none);
 * the count, 0 at the end of the stream only where eof_ok. */
static size_t read_pattern(int a, uint64_t got, size_t want, uint64_t mod, int eof_ok,
                           const char *what)
{
    static unsigned char b[65536];
    struct pollfd p = {.fd = a, .events = POLLIN};
    CHECK(poll(&p, 1, EVENT_MS) == 1, "%s: nothing to read after %llu bytes", what,
          (unsigned long long)got);
    ssize_t r = read(a, b, want < sizeof b ? want : sizeof b);
    SYS(r);
    CHECK(r > 0 || eof_ok, "%s: EOF after %llu bytes", what, (unsigned long long)got);
    for (ssize_t i = 0; i < r; i++) {
        uint64_t at = got + (uint64_t)i;
        CHECK(b[i] == pattern_byte(mod ? at % mod : at), "%s: byte %llu differs (a byte sent "
              "twice or lost)", what, (unsigned long long)at);
    }
    return (size_t)r;
}

static void check_big(void)
{
    int c, a;
    loopback_pair(AF_INET, &c, &a);
    printf("transport: %s (client), %s (accepted)\n", fd_transport(c), fd_transport(a));
    struct sender s = {.fd = c, .buf = pattern(BIG), .len = BIG};
    SYS(pthread_create(&s.t, NULL, send_thread, &s) == 0 ? 0 : -1);
    uint64_t got = 0;
    while (got < BIG)
        got += read_pattern(a, got, BIG - got, 0, 0, "big");
    pthread_join(s.t, NULL);
    CHECK(s.err == 0, "big: sendto: %s", strerror(s.err));
    CHECK(s.first == BIG, "big: blocking sendto() sent %zd of %u", s.first, BIG);
    expect_eof(c, a, "big");
    printf("ok: big: a blocking sendto() with an address sends all 8 MiB to the peer, in order\n");
    free((void *)s.buf);
    close(c);
    close(a);
}

static void check_signals(void)
{
    int c, a;
    loopback_pair(AF_INET, &c, &a);
    struct sigaction sa = {.sa_handler = on_sig, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    SYS(sigaction(SIGUSR1, &sa, NULL));
    sa.sa_flags = 0;
    SYS(sigaction(SIGUSR2, &sa, NULL));
    struct sender s = {.fd = c, .buf = pattern(BIG), .len = BIG, .loop = 1};
    SYS(pthread_create(&s.t, NULL, send_thread, &s) == 0 ? 0 : -1);
    uint64_t got = 0;
    unsigned sigs = 0;
    while (got < BIG) {
        if (!atomic_load(&s.done)) {
            pthread_kill(s.t, sigs % 2 ? SIGUSR2 : SIGUSR1);
            sigs++;
        }
        /* small reads: the sender waits often */
        got += read_pattern(a, got, BIG - got < 16384 ? BIG - got : 16384, 0, 0, "signals");
    }
    pthread_join(s.t, NULL);
    CHECK(s.err == 0, "signals: sendto: %s", strerror(s.err));
    expect_eof(c, a, "signals");
    printf("ok: signals: 8 MiB by sendto() with an address under SIGUSR1 (SA_RESTART) and SIGUSR2 "
           "arrive once each, in order (%s signals sent)\n", sigs > 1 ? "several" : "few");
    free((void *)s.buf);
    close(c);
    close(a);
}

static void check_nonblocking(void)
{
    int c, a;
    loopback_pair(AF_INET, &c, &a);
    SYS(fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK));
    unsigned char *buf = pattern(1u << 20);
    uint64_t sent = 0;
    int refusals = 0;
    /* refused, then once more after the room a shim's engine may still
     * make (fill_until_refused's rule, shorter) */
    while (refusals < 3) {
        size_t off = (size_t)(sent % (1u << 20));
        ssize_t w = sendto(c, buf + off, (1u << 20) - off, 0, (struct sockaddr *)&other,
                           other_len);
        if (w < 0) {
            CHECK(errno == EAGAIN, "nonblocking: sendto: %s, not EAGAIN", strerror(errno));
            refusals++;
            struct pollfd p = {.fd = c, .events = POLLOUT};
            poll(&p, 1, 200);
            continue;
        }
        CHECK(w > 0, "nonblocking: sendto returned 0");
        sent += (uint64_t)w;
        CHECK(sent < (256u << 20), "nonblocking: 256 MiB accepted, the peer reading nothing");
    }
    CHECK(sent > 0, "nonblocking: nothing accepted");
    SYS(shutdown(c, SHUT_WR));
    /* the pattern restarts every MiB: check it against the offsets */
    uint64_t got = 0;
    for (size_t r; (r = read_pattern(a, got, 65536, 1u << 20, 1, "nonblocking")) > 0;)
        got += r;
    CHECK(got == sent, "nonblocking: read %llu, sendto() accepted %llu",
          (unsigned long long)got, (unsigned long long)sent);
    printf("ok: nonblocking: sendto() with an address accepts what fits, then EAGAIN; the peer "
           "reads exactly what it accepted\n");
    free(buf);
    close(c);
    close(a);
}

static void check_oob(void)
{
    int c, a;
    loopback_pair(AF_INET, &c, &a);
    size_t n = 200u << 10;
    unsigned char *buf = pattern(n);
    struct sender s = {.fd = c, .buf = buf, .len = n, .flags = MSG_OOB};
    SYS(pthread_create(&s.t, NULL, send_thread, &s) == 0 ? 0 : -1);
    /* the bytes before the last, never a read at the mark (one there
     * would skip the urgent byte, racing with its arrival) */
    uint64_t got = 0;
    while (got < n - 1)
        got += read_pattern(a, got, (size_t)(n - 1 - got), 0, 0, "oob");
    /* then the mark, there: the urgent byte is the last one */
    int mark = 0;
    for (double end = now_s() + EVENT_MS / 1000.0; !mark;) {
        SYS(ioctl(a, SIOCATMARK, &mark));
        struct pollfd p = {.fd = a, .events = POLLPRI};
        CHECK(mark || now_s() < end, "oob: no mark after %zu bytes within %d ms", n - 1,
              EVENT_MS);
        if (!mark)
            poll(&p, 1, 100);
    }
    char u = 0;
    SYS(recv(a, &u, 1, MSG_OOB));
    CHECK((unsigned char)u == pattern_byte(n - 1), "oob: urgent byte %#x, want the last",
          (unsigned char)u);
    pthread_join(s.t, NULL);
    CHECK(s.err == 0 && s.first == (ssize_t)n, "oob: sendto(MSG_OOB) sent %zd of %zu (%s)",
          s.first, n, strerror(s.err));
    printf("ok: oob: sendto(MSG_OOB) of 200 KiB with an address: only its last byte urgent\n");
    free(buf);
    close(c);
    close(a);
}

static atomic_int pipes;
static void on_pipe(int sig)
{
    (void)sig;
    atomic_fetch_add(&pipes, 1);
}

/* sendto() with flags until it fails; its errno. */
static int send_until_error(int c, int flags)
{
    for (int i = 0; i < 1000; i++) {
        ssize_t w = sendto(c, "x", 1, flags, (struct sockaddr *)&other, other_len);
        if (w < 0)
            return errno;
        struct pollfd p = {.fd = c, .events = POLLERR | POLLHUP};
        poll(&p, 1, 10);
    }
    return 0;
}

static void check_epipe(void)
{
    struct sigaction sa = {.sa_handler = on_pipe};
    sigemptyset(&sa.sa_mask);
    SYS(sigaction(SIGPIPE, &sa, NULL));
    for (int nosig = 0; nosig < 2; nosig++) {
        int c, a;
        loopback_pair(AF_INET, &c, &a);
        struct linger l = {1, 0};
        SYS(setsockopt(a, SOL_SOCKET, SO_LINGER, &l, sizeof l));
        close(a); /* a reset */
        atomic_store(&pipes, 0);
        int e = send_until_error(c, nosig ? MSG_NOSIGNAL : 0);
        if (e == ECONNRESET) /* the reset read first: the next one says EPIPE */
            e = send_until_error(c, nosig ? MSG_NOSIGNAL : 0);
        CHECK(e == EPIPE, "epipe: sendto after the peer's reset: %s, not EPIPE", strerror(e));
        /* the signal is the kernel's at the call's return; a supervisor
         * raising it for the program may make it arrive just after */
        double end = now_s() + EVENT_MS / 1000.0;
        while (!nosig && !atomic_load(&pipes) && now_s() < end)
            poll(NULL, 0, 1);
        int n = atomic_load(&pipes);
        CHECK(nosig ? n == 0 : n > 0, "epipe: %d SIGPIPE with%s MSG_NOSIGNAL", n,
              nosig ? "" : "out");
        close(c);
    }
    printf("ok: epipe: sendto() with an address after the peer's reset: EPIPE and SIGPIPE; "
           "with MSG_NOSIGNAL no signal\n");
}

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, WATCHDOG_S);
    other_len = loopback(AF_INET, 9, &other);
    ((struct sockaddr_in *)&other)->sin_addr.s_addr = htonl(0x0a010203); /* 10.1.2.3 */
    check_big();
    check_signals();
    check_nonblocking();
    check_oob();
    check_epipe();
    printf("ok: all sendaddr checks held\n");
    return 0;
}
