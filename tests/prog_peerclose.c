/*
 * prog_peerclose: a peer that writes and closes, and the half-close
 * states, as Linux TCP gives them.
 *
 *   prog_peerclose            run every check below; exit 0 iff all hold
 *
 *   - the peer writes N bytes and close()s before we read any: all N are
 *     read, then EOF (64 KiB written at once; 8 MiB written by a thread
 *     while we read), IPv4 and IPv6;
 *   - the peer writes 32 KiB, waits until SIOCOUTQ says we have them all,
 *     then close()s with a byte we sent it unread (or with SO_LINGER {1,0}):
 *     TCP resets (RFC 2525 §2.17; tcp_close() in net/ipv4/tcp.c sends RST
 *     when data is unread, tcp_disconnect() for linger 0). The 32 KiB stay
 *     readable, and after them read() fails with ECONNRESET: tcp_reset()
 *     does not purge the receive queue, and tcp_recvmsg() returns queued
 *     data before sk_err. Under the shim the reset may end in EOF instead,
 *     with getsockopt(SO_ERROR) then ECONNRESET (docs/limits.md: an
 *     AF_UNIX reader that wrote nothing unread is given EOF by the kernel);
 *     a plain EOF with SO_ERROR 0 fails;
 *   - the peer writes 1000 bytes and at once close()s with SO_LINGER {1,0}
 *     (TCP sent them at write() time, the reset follows them): once
 *     TCP_INFO says CLOSE, getpeername() fails with ENOTCONN (inet_getname()
 *     in CLOSE), the bytes are read, then the reset as above; IPv4, IPv6;
 *   - getpeername() says ENOTCONN too once both FINs are through (CLOSE);
 *   - the same after the peer filled everything between us (writes until
 *     its socket stays full): every byte our side received
 *     (tcpi_bytes_received once TCP_INFO says CLOSE) is read, not only what
 *     a socket buffer holds;
 *   - after the peer's close() (a FIN, nothing unread) we read EOF, our
 *     first write succeeds (TCP_INFO CLOSE_WAIT); the peer's kernel
 *     answers those bytes with a reset (tcp_rcv_state_process(): data for
 *     a socket the application closed), which we wait for with poll(); the
 *     next write fails with EPIPE (tcp_reset() sets EPIPE in CLOSE_WAIT),
 *     SIGPIPE ignored, and so does the one after;
 *   - the peer's shutdown(SHUT_WR): we read EOF and stay writable
 *     (CLOSE_WAIT): 16 MiB written by a thread reach the peer whole, the
 *     peer (FIN_WAIT2) reads them all, then our FIN as EOF;
 *   - our shutdown(SHUT_WR): TCP_INFO says FIN_WAIT1 or FIN_WAIT2 at once,
 *     FIN_WAIT2 once the peer has read our EOF (its ACK is on its way),
 *     within 5 s; the peer says CLOSE_WAIT;
 *   - with the peer not reading and our sending side full (writes until
 *     EAGAIN), shutdown(SHUT_WR) says FIN_WAIT1 (the FIN waits behind the
 *     data; tcp_shutdown() -> tcp_close_state()), and FIN_WAIT2 once the
 *     peer has read everything; the peer, in CLOSE_WAIT, fills its side
 *     the same way and shuts down: LAST_ACK, then CLOSE once we have read
 *     everything and EOF.
 *
 * States change with acknowledgements no call of ours waits for: they are
 * polled every millisecond, bounded (5 s), never assumed after a delay.
 * Prints one "ok:" line per check and "transport: KIND" for the connected
 * fds (tcp = a kernel TCP socket). Exit 0 iff every check held; 1 with a
 * "FAIL:" line otherwise; 3 if the watchdog (90 s) fired.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 90
#define EVENT_MS 5000
#define SMALL_LEN (64 * 1024)
#define BIG_LEN (8u << 20)
#define HALF_LEN (16u << 20)
#define RST_LEN (32 * 1024)
#define SOON_LEN 1000 /* well within a first window, TCP's and ours */
#define CHUNK (64 * 1024)
#define FULL_MS 200

const char *prog_name = "prog_peerclose";

static const char *state_name(int s)
{
    static const char *names[] = {"?", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1",
                                  "FIN_WAIT2", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK",
                                  "LISTEN", "CLOSING"};
    return s >= 0 && s < (int)(sizeof names / sizeof names[0]) ? names[s] : "?";
}

/* Waits (bounded) until TCP_INFO says want; fails naming the last state. */
static void wait_state(int fd, int want, const char *what)
{
    double t0 = now_s();
    int s;
    while ((s = tcpi_state(fd)) != want) {
        CHECK(now_s() - t0 < EVENT_MS / 1000.0, "%s: TCP_INFO still says %s after %d ms, want %s",
              what, state_name(s), EVENT_MS, state_name(want));
        poll(NULL, 0, 1);
    }
}

/* getpeername() once TCP_INFO says CLOSE: ENOTCONN, as inet_getname()
 * answers for a socket in CLOSE (after a reset, or both FINs: tcp_done()),
 * unread bytes or not. */
static void peer_gone(int fd, const char *what)
{
    struct sockaddr_storage ss;
    socklen_t l = sizeof ss;
    int r = getpeername(fd, (struct sockaddr *)&ss, &l);
    CHECK(r < 0 && errno == ENOTCONN, "%s: getpeername() in CLOSE: %s, want ENOTCONN", what,
          r == 0 ? "an address" : strerror(errno));
}

static int outq(int fd)
{
    int n = -1;
    SYS(ioctl(fd, SIOCOUTQ, &n));
    return n;
}

/* Waits (bounded) until the peer acknowledged everything fd sent. */
static void wait_outq_empty(int fd, const char *what)
{
    double t0 = now_s();
    while (outq(fd) != 0) {
        CHECK(now_s() - t0 < EVENT_MS / 1000.0, "%s: SIOCOUTQ still %d after %d ms", what,
              outq(fd), EVENT_MS);
        poll(NULL, 0, 1);
    }
}

static short wait_poll(int fd, short events, const char *what)
{
    struct pollfd p = {.fd = fd, .events = events};
    int n = poll(&p, 1, EVENT_MS);
    SYS(n);
    CHECK(n == 1, "%s: no event 0x%x within %d ms", what, (unsigned)events, EVENT_MS);
    return p.revents;
}

/* The byte at stream offset i. */
static uint8_t pat(size_t i)
{
    return (uint8_t)(i % 251u);
}

static void fill(uint8_t *buf, size_t off, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = pat(off + i);
}

/* Writes len pattern bytes from stream offset 0, blocking. */
static void write_all(int fd, size_t len, const char *what)
{
    static uint8_t buf[CHUNK];
    size_t done = 0;
    while (done < len) {
        size_t n = len - done < CHUNK ? len - done : CHUNK;
        fill(buf, done, n);
        ssize_t w = write(fd, buf, n);
        CHECK(w > 0, "%s: write at %zu: %s", what, done, strerror(errno));
        done += (size_t)w;
    }
}

/* Writes pattern bytes from stream offset off without blocking until the
 * socket is full; returns how many were taken. */
static size_t write_until_full(int fd, size_t off, const char *what)
{
    static uint8_t buf[CHUNK];
    int fl = fcntl(fd, F_GETFL);
    SYS(fcntl(fd, F_SETFL, fl | O_NONBLOCK));
    size_t done = 0;
    for (;;) {
        fill(buf, off + done, CHUNK);
        ssize_t w = write(fd, buf, CHUNK);
        if (w < 0) {
            CHECK(errno == EAGAIN, "%s: write at %zu: %s", what, done, strerror(errno));
            break;
        }
        done += (size_t)w;
    }
    SYS(fcntl(fd, F_SETFL, fl));
    return done;
}

/* write_until_full() until the socket stays unwritable for FULL_MS: under
 * the shim the engine may not yet have taken what fills the unix socket,
 * and room comes back when it does. Only the FIN_WAIT1/LAST_ACK checks
 * rely on this (the FIN must wait behind data the peer has no room for);
 * a host stalling the engine longer makes them see FIN_WAIT1 still, as
 * the FIN then goes out after that data. */
static size_t write_until_stays_full(int fd, const char *what)
{
    size_t done = write_until_full(fd, 0, what);
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    while (poll(&p, 1, FULL_MS) == 1)
        done += write_until_full(fd, done, what);
    return done;
}

/* Reads pattern bytes until EOF or an error, none ever missing for more
 * than EVENT_MS; *got is how many. Returns 0 for EOF, else the errno. */
static int read_to_end(int fd, size_t *got, const char *what)
{
    static uint8_t buf[CHUNK];
    *got = 0;
    for (;;) {
        wait_poll(fd, POLLIN, what);
        ssize_t r = read(fd, buf, sizeof buf);
        if (r == 0)
            return 0;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        for (ssize_t i = 0; i < r; i++)
            CHECK(buf[i] == pat(*got + (size_t)i), "%s: byte %zu corrupt", what,
                  *got + (size_t)i);
        *got += (size_t)r;
    }
}

struct writer {
    int fd;
    size_t len;
    int shut; /* 1: shutdown(SHUT_WR) after, 2: close() after */
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    write_all(w->fd, w->len, "writer thread");
    if (w->shut == 1)
        SYS(shutdown(w->fd, SHUT_WR));
    else if (w->shut == 2)
        SYS(close(w->fd));
    return NULL;
}

static pthread_t start_writer(struct writer *w)
{
    pthread_t t;
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGALRM); /* the watchdog is the main thread's */
    pthread_sigmask(SIG_BLOCK, &block, &old);
    CHECK(pthread_create(&t, NULL, writer_main, w) == 0, "pthread_create");
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return t;
}

/* The peer writes and closes before we read: everything, then EOF. */
static void writes_then_closes(int family)
{
    int c, a;
    loopback_pair(family, &c, &a);
    if (family == AF_INET)
        printf("transport: %s (client), %s (accepted)\n", fd_transport(c), fd_transport(a));
    write_all(a, SMALL_LEN, "peer");
    SYS(close(a));
    size_t got;
    int end = read_to_end(c, &got, "reading what the peer sent before close");
    CHECK(got == SMALL_LEN && end == 0, "%s: read %zu of %d bytes, then %s, want all then EOF",
          fam_name(family), got, SMALL_LEN, end ? strerror(end) : "EOF");
    printf("ok: %s: peer wrote %d bytes and closed before we read: all %zu read, then EOF\n",
           fam_name(family), SMALL_LEN, got);
    close(c);

    loopback_pair(family, &c, &a);
    struct writer w = {.fd = a, .len = BIG_LEN, .shut = 2};
    pthread_t t = start_writer(&w);
    end = read_to_end(c, &got, "reading 8 MiB the peer wrote and closed");
    pthread_join(t, NULL);
    CHECK(got == BIG_LEN && end == 0, "%s: read %zu of %u bytes, then %s, want all then EOF",
          fam_name(family), got, BIG_LEN, end ? strerror(end) : "EOF");
    printf("ok: %s: peer wrote %u bytes and closed while we read: all read, then EOF\n",
           fam_name(family), BIG_LEN);
    close(c);
}

/* The peer closes with our byte unread (or SO_LINGER {1,0}) after its data
 * reached us: the data, then the reset. */
static void writes_then_resets(bool linger0)
{
    const char *how = linger0 ? "SO_LINGER {1,0}" : "our byte unread";
    int c, a;
    loopback_pair(AF_INET, &c, &a);
    if (!linger0) {
        CHECK(write(c, "u", 1) == 1, "write: %s", strerror(errno));
        wait_poll(a, POLLIN, "the byte the peer leaves unread");
    }
    write_all(a, RST_LEN, "peer");
    wait_outq_empty(a, "peer's data reaching us");
    if (linger0) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        SYS(setsockopt(a, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
    }
    SYS(close(a));
    /* The reset has arrived once the socket hangs up. */
    short re = wait_poll(c, POLLRDHUP, "the peer's reset");
    size_t got;
    int end = read_to_end(c, &got, "reading what the peer sent before its reset");
    CHECK(got == RST_LEN, "close with %s: read %zu of %d bytes the peer sent (and we had) "
          "before its reset", how, got, RST_LEN);
    int so = so_error(c);
    CHECK(end == ECONNRESET || (end == 0 && so == ECONNRESET),
          "close with %s: after the data read() gave %s and SO_ERROR %s; want ECONNRESET, or EOF "
          "then SO_ERROR ECONNRESET", how, end ? strerror(end) : "EOF", so ? strerror(so) : "0");
    printf("ok: peer closed with %s (revents 0x%x): the %zu bytes it sent read, then %s%s\n", how,
           (unsigned)re, got, end ? strerror(end) : "EOF",
           end ? "" : " and SO_ERROR ECONNRESET (the bridge's limit)");
    ssize_t w = write(c, "x", 1);
    CHECK(w < 0 && (errno == EPIPE || errno == ECONNRESET),
          "close with %s: write after the reset: %s, want EPIPE", how,
          w < 0 ? strerror(errno) : "succeeded");
    printf("ok: peer closed with %s: a write after the reset -> %s\n", how, strerror(errno));
    close(c);
}

/* The peer writes and at once closes with SO_LINGER {1,0}, before the
 * bytes can have been acknowledged: TCP sent them at write() time
 * (tcp_sendmsg() -> tcp_push()), its reset follows them. Once the reset is
 * in (TCP_INFO CLOSE) getpeername() says ENOTCONN, and the bytes are read,
 * then the reset. CPython's ssl checks exactly this before a handshake. */
static void writes_and_resets_at_once(int family)
{
    int c, a;
    loopback_pair(family, &c, &a);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    SYS(setsockopt(a, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
    write_all(a, SOON_LEN, "peer");
    SYS(close(a));
    wait_state(c, TCP_CLOSE, "we after the peer's write and reset");
    peer_gone(c, "after the peer's reset, its bytes unread");
    size_t got;
    int end = read_to_end(c, &got, "reading what the peer wrote right before its reset");
    int so = so_error(c);
    CHECK(got == SOON_LEN, "%s: read %zu of the %d bytes the peer wrote right before its reset",
          fam_name(family), got, SOON_LEN);
    CHECK(end == ECONNRESET || (end == 0 && so == ECONNRESET),
          "%s: after the data read() gave %s and SO_ERROR %s; want ECONNRESET, or EOF then "
          "SO_ERROR ECONNRESET", fam_name(family), end ? strerror(end) : "EOF",
          so ? strerror(so) : "0");
    printf("ok: %s: peer wrote %d bytes and reset at once: getpeername ENOTCONN, the bytes "
           "read, then %s\n", fam_name(family), SOON_LEN,
           end ? strerror(end) : "EOF and SO_ERROR ECONNRESET");
    close(c);
}

/* The same with more than our side's socket holds: the peer fills
 * everything between us first. All it sent that our side received
 * (TCP_INFO's tcpi_bytes_received once the reset is in: TCP_INFO says
 * CLOSE) is readable, however much waits behind what the socket holds. */
static void fills_then_resets(void)
{
    int c, a;
    loopback_pair(AF_INET, &c, &a);
    CHECK(write(c, "u", 1) == 1, "write: %s", strerror(errno));
    wait_poll(a, POLLIN, "the byte the peer leaves unread");
    size_t n = write_until_stays_full(a, "the peer filling us");
    SYS(close(a));
    wait_state(c, TCP_CLOSE, "we after the peer's reset");
    uint64_t rx = tcpi_bytes_received(c);
    size_t got;
    int end = read_to_end(c, &got, "reading what the peer sent before its reset");
    int so = so_error(c);
    CHECK(got == rx && got > 0 && got <= n,
          "the peer wrote %zu bytes, we received %llu before its reset, and read %zu of them", n,
          (unsigned long long)rx, got);
    CHECK(end == ECONNRESET || (end == 0 && so == ECONNRESET),
          "after the data read() gave %s and SO_ERROR %s; want ECONNRESET, or EOF then SO_ERROR "
          "ECONNRESET", end ? strerror(end) : "EOF", so ? strerror(so) : "0");
    printf("ok: peer filled us (%zu bytes) and reset: all %zu we received read, then %s\n", n, got,
           end ? strerror(end) : "EOF and SO_ERROR ECONNRESET");
    close(c);
}

/* Writing to a peer that closed: the first write succeeds, the reset it
 * draws makes the next one fail. */
/* A new pair whose accepted end closes (or shuts down writing) at once:
 * the client reads EOF and is in CLOSE_WAIT. */
static void pair_peer_done(int family, int *c, int *a, bool close_it)
{
    loopback_pair(family, c, a);
    SYS(close_it ? close(*a) : shutdown(*a, SHUT_WR));
    size_t got;
    int end = read_to_end(*c, &got, "the peer's FIN");
    CHECK(got == 0 && end == 0, "%s: read after the peer's %s: %zu bytes, %s", fam_name(family),
          close_it ? "close" : "shutdown", got, end ? strerror(end) : "EOF");
    CHECK(tcpi_state(*c) == TCP_CLOSE_WAIT, "%s: TCP_INFO says %s after the peer's FIN, want "
          "CLOSE_WAIT", fam_name(family), state_name(tcpi_state(*c)));
}

static void write_after_close(int family)
{
    int c, a;
    pair_peer_done(family, &c, &a, true);
    ssize_t w = write(c, "first", 5);
    CHECK(w == 5, "%s: the first write after the peer's close: %s, want success as TCP", fam_name(family),
          w < 0 ? strerror(errno) : "short");
    printf("ok: %s: after the peer's close we read EOF (CLOSE_WAIT) and the first write "
           "succeeds\n", fam_name(family));
    short re = wait_poll(c, POLLHUP, "the reset answering our write");
    int so = so_error(c);
    printf("ok: %s: the peer's reset arrived: revents 0x%x, SO_ERROR %s, TCP_INFO %s\n",
           fam_name(family), (unsigned)re, so ? strerror(so) : "0", state_name(tcpi_state(c)));
    CHECK(so == EPIPE, "%s: SO_ERROR after the reset in CLOSE_WAIT: %s, want EPIPE",
          fam_name(family), strerror(so));
    w = write(c, "second", 6);
    int err = errno;
    CHECK(w < 0 && err == EPIPE, "%s: the write after the reset: %s, want EPIPE", fam_name(family),
          w < 0 ? strerror(err) : "succeeded");
    w = write(c, "third", 5);
    err = errno;
    CHECK(w < 0 && err == EPIPE, "%s: the write after that: %s, want EPIPE", fam_name(family),
          w < 0 ? strerror(err) : "succeeded");
    char b;
    ssize_t r = read(c, &b, 1);
    CHECK(r == 0, "%s: read after the reset: %s, want EOF", fam_name(family),
          r < 0 ? strerror(errno) : "data");
    printf("ok: %s: the next writes fail with EPIPE (SIGPIPE ignored); read says EOF\n",
           fam_name(family));
    close(c);
}

/* The peer's FIN never stops us writing; our FIN's states. */
static void half_close(int family)
{
    int c, a;
    pair_peer_done(family, &c, &a, false);
    size_t got;
    int end;
    wait_state(a, TCP_FIN_WAIT2, "the peer after shutdown(SHUT_WR)");
    printf("ok: %s: peer's shutdown(SHUT_WR): we read EOF in CLOSE_WAIT, the peer is in "
           "FIN_WAIT2\n", fam_name(family));
    struct writer w = {.fd = c, .len = HALF_LEN, .shut = 1};
    pthread_t t = start_writer(&w);
    end = read_to_end(a, &got, "the peer reading what we write after its FIN");
    pthread_join(t, NULL);
    CHECK(got == HALF_LEN && end == 0, "%s: the peer read %zu of %u bytes we wrote in CLOSE_WAIT, "
          "then %s", fam_name(family), got, HALF_LEN, end ? strerror(end) : "EOF");
    printf("ok: %s: in CLOSE_WAIT we wrote %u bytes: the peer read them all, then our FIN\n",
           fam_name(family), HALF_LEN);
    wait_state(c, TCP_CLOSE, "we after both FINs");
    peer_gone(c, "we after both FINs");
    printf("ok: %s: both FINs acknowledged: TCP_INFO says CLOSE, getpeername ENOTCONN\n",
           fam_name(family));
    close(a);
    close(c);

    loopback_pair(family, &c, &a);
    SYS(shutdown(c, SHUT_WR));
    int s = tcpi_state(c);
    CHECK(s == TCP_FIN_WAIT1 || s == TCP_FIN_WAIT2, "%s: TCP_INFO says %s right after "
          "shutdown(SHUT_WR), want FIN_WAIT1 or FIN_WAIT2", fam_name(family), state_name(s));
    end = read_to_end(a, &got, "our FIN at the peer");
    CHECK(got == 0 && end == 0, "%s: the peer read %zu bytes, %s", fam_name(family), got,
          end ? strerror(end) : "EOF");
    wait_state(c, TCP_FIN_WAIT2, "we after our FIN was read");
    CHECK(tcpi_state(a) == TCP_CLOSE_WAIT, "%s: the peer says %s, want CLOSE_WAIT",
          fam_name(family), state_name(tcpi_state(a)));
    printf("ok: %s: our shutdown(SHUT_WR): %s at once, FIN_WAIT2 once acknowledged; the peer "
           "in CLOSE_WAIT\n", fam_name(family), state_name(s));
    close(a);
    close(c);
}

/* FIN_WAIT1 and LAST_ACK last while the FIN waits behind unread data. */
static void fin_behind_data(void)
{
    int c, a;
    loopback_pair(AF_INET, &c, &a);
    size_t n = write_until_stays_full(c, "filling the peer");
    SYS(shutdown(c, SHUT_WR));
    CHECK(tcpi_state(c) == TCP_FIN_WAIT1, "shutdown(SHUT_WR) with %zu bytes queued: TCP_INFO "
          "says %s, want FIN_WAIT1", n, state_name(tcpi_state(c)));
    CHECK(tcpi_state(a) == TCP_ESTABLISHED, "the peer, not reading: %s, want ESTABLISHED",
          state_name(tcpi_state(a)));
    printf("ok: shutdown(SHUT_WR) behind %zu unread bytes: FIN_WAIT1 while they wait\n", n);
    size_t got;
    int end = read_to_end(a, &got, "the peer reading all, then our FIN");
    CHECK(got == n && end == 0, "the peer read %zu of %zu bytes, then %s", got, n,
          end ? strerror(end) : "EOF");
    wait_state(c, TCP_FIN_WAIT2, "we after the peer read everything");
    CHECK(tcpi_state(a) == TCP_CLOSE_WAIT, "the peer says %s, want CLOSE_WAIT",
          state_name(tcpi_state(a)));
    printf("ok: the peer read all %zu bytes and EOF: we are in FIN_WAIT2, it in CLOSE_WAIT\n", n);

    n = write_until_stays_full(a, "the peer filling us");
    SYS(shutdown(a, SHUT_WR));
    CHECK(tcpi_state(a) == TCP_LAST_ACK, "the peer's shutdown(SHUT_WR) in CLOSE_WAIT with %zu "
          "bytes queued: TCP_INFO says %s, want LAST_ACK", n, state_name(tcpi_state(a)));
    printf("ok: the peer's shutdown(SHUT_WR) in CLOSE_WAIT behind %zu unread bytes: LAST_ACK\n",
           n);
    end = read_to_end(c, &got, "reading all the peer sent, then its FIN");
    CHECK(got == n && end == 0, "we read %zu of %zu bytes, then %s", got, n,
          end ? strerror(end) : "EOF");
    wait_state(a, TCP_CLOSE, "the peer after its FIN was acknowledged");
    peer_gone(a, "the peer from LAST_ACK to CLOSE");
    printf("ok: we read all %zu bytes and EOF: the peer goes from LAST_ACK to CLOSE "
           "(getpeername ENOTCONN)\n", n);
    close(a);
    close(c);
}

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, WATCHDOG_S);
    int v6 = family_usable(AF_INET6, "the IPv6 cases");
    writes_then_closes(AF_INET);
    if (v6)
        writes_then_closes(AF_INET6);
    writes_then_resets(false);
    writes_then_resets(true);
    fills_then_resets();
    writes_and_resets_at_once(AF_INET);
    write_after_close(AF_INET);
    half_close(AF_INET);
    if (v6) {
        writes_and_resets_at_once(AF_INET6);
        write_after_close(AF_INET6);
        half_close(AF_INET6);
    }
    fin_behind_data();
    printf("PASS: %s\n", prog_name);
    return 0;
}
