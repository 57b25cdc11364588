/*
 * prog_writeclosed: writing to a peer that closed, in the shape of an event
 * loop's own test (libuv's tcp_try_write_error): one process, one epoll
 * set holding a listener and a non-blocking connect to it; when accept()
 * returns the connection, the accepted end is closed at once, and the
 * client writes without blocking until a write fails.
 *
 *   prog_writeclosed          run every check below; exit 0 iff all hold
 *
 *   - when accept() returns the connection, the client's connect() is
 *     complete: its fd polls writable with SO_ERROR 0 (TCP's client is
 *     ESTABLISHED before its ACK puts the connection in the accept queue).
 *     An event loop that finds the connect still pending answers a write
 *     with EAGAIN (uv_try_write), and never writes again;
 *   - the accepted end closes with nothing unread (a FIN): the client's
 *     first write succeeds, and its writes then end in EPIPE, never
 *     ECONNRESET (the reset comes in CLOSE_WAIT: tcp_reset()) and never
 *     EAGAIN for good (each EAGAIN waits for POLLOUT, at most 5 s); write()
 *     raises SIGPIPE with it, send(MSG_NOSIGNAL) does not; poll() shows
 *     POLLHUP (waited for: see wait_hup) and read() says EOF;
 *   - the accepted end closes with a byte the client sent unread (a reset):
 *     the client's writes end in EPIPE or ECONNRESET, and poll() shows
 *     POLLHUP.
 *
 * TCP answers the first failing write at once (loopback carries the reset
 * back within the write); under the shim it may take a few writes, or an
 * EAGAIN and a POLLOUT: counted and printed, not checked. Each case runs
 * ROUNDS times (the first check failed 1 run in 20 with two engines).
 * Prints "ok:" lines and "transport: KIND"; exit 1 with a "FAIL:" line, 3
 * if the watchdog (120 s) fired.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "progutil.h"

#define ROUNDS 200
#define RESET_ROUNDS 20
#define EVENT_MS 5000

const char *prog_name = "prog_writeclosed";

static volatile sig_atomic_t sigpipes;

static void on_sigpipe(int sig)
{
    (void)sig;
    sigpipes++;
}

/* A listener and a non-blocking connect to it in one epoll set, served as
 * an event loop does until accept() returns the connection: *c the
 * client, *a the accepted end. Checks that the client's connect is
 * complete by then. */
static void loop_pair(int *c, int *a, int round)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    SYS(l);
    unsigned port = bind_lo(l, 0);
    SYS(listen(l, 128));
    *c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    SYS(*c);
    struct sockaddr_storage ss;
    socklen_t sl = loopback(AF_INET, port, &ss);
    int r = connect(*c, (struct sockaddr *)&ss, sl);
    CHECK(r == 0 || errno == EINPROGRESS, "connect: %s", strerror(errno));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    SYS(ep);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = l};
    SYS(epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev));
    ev.events = EPOLLOUT;
    ev.data.fd = *c;
    SYS(epoll_ctl(ep, EPOLL_CTL_ADD, *c, &ev));
    *a = -1;
    double t0 = now_s();
    while (*a < 0) {
        CHECK(now_s() - t0 < EVENT_MS / 1000.0, "round %d: no connection accepted in %d ms",
              round, EVENT_MS);
        struct epoll_event evs[4];
        int n = epoll_wait(ep, evs, 4, EVENT_MS);
        CHECK(n >= 0 || errno == EINTR, "epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n && *a < 0; i++)
            if (evs[i].data.fd == l)
                *a = accept4(l, NULL, NULL, SOCK_NONBLOCK);
    }
    short re = poll_for(*c, POLLOUT, 0);
    int so = so_error(*c);
    CHECK((re & POLLOUT) && so == 0,
          "round %d: accept() returned the connection while the client's connect() was not "
          "complete (revents 0x%x, SO_ERROR %s): an event loop writes EAGAIN",
          round, (unsigned)re, so ? strerror(so) : "0");
    close(ep);
    close(l);
}

/* Writes until one fails, waiting for POLLOUT after each EAGAIN; returns
 * its errno. *writes and *agains count the writes that succeeded and the
 * EAGAINs. */
static int write_until_refused(int c, int nosignal, long *writes, long *agains, int round)
{
    *writes = *agains = 0;
    for (;;) {
        ssize_t w = nosignal ? send(c, "meow", 4, MSG_NOSIGNAL) : write(c, "meow", 4);
        if (w > 0) {
            ++*writes;
            continue;
        }
        CHECK(w < 0, "round %d: write returned %zd", round, w);
        if (errno != EAGAIN && errno != EINTR)
            return errno;
        if (errno == EAGAIN) {
            ++*agains;
            CHECK(poll_for(c, POLLOUT, EVENT_MS) != 0,
                  "round %d: after %ld writes, EAGAIN and no POLLOUT for %d ms: the writer "
                  "waits for good",
                  round, *writes, EVENT_MS);
        }
    }
}

/* poll()'s revents once POLLHUP shows, polled every millisecond, at most
 * EVENT_MS: TCP shows it with the write's EPIPE; a unix socket a moment
 * later (the engine shuts its end down, then closes it; the kernel sets
 * the app end's two shutdown bits one call apart). */
static short wait_hup(int c, int round)
{
    double t0 = now_s();
    short re;
    while (!((re = poll_for(c, POLLOUT | POLLIN, 0)) & POLLHUP)) {
        CHECK(now_s() - t0 < EVENT_MS / 1000.0, "round %d: poll after the write's error: 0x%x, "
              "no POLLHUP for %d ms", round, (unsigned)re, EVENT_MS);
        poll(NULL, 0, 1);
    }
    return re;
}

static void closes_clean(void)
{
    long most = 0, agains = 0;
    for (int i = 0; i < ROUNDS; i++) {
        int c, a;
        loop_pair(&c, &a, i);
        if (i == 0)
            printf("transport: %s\n", fd_transport(c));
        SYS(close(a));
        int nosignal = i & 1;
        sig_atomic_t before = sigpipes;
        long n, ag;
        int err = write_until_refused(c, nosignal, &n, &ag, i);
        CHECK(err == EPIPE, "round %d: after %ld writes to a peer that closed (a FIN): %s, want "
              "EPIPE", i, n, strerror(err));
        CHECK(n >= 1, "round %d: the first write after the peer's close failed: %s", i,
              strerror(err));
        CHECK(nosignal ? sigpipes == before : sigpipes > before,
              "round %d: %s: %d SIGPIPE with its EPIPE", i,
              nosignal ? "send(MSG_NOSIGNAL)" : "write()", (int)(sigpipes - before));
        wait_hup(c, i);
        char b;
        ssize_t r = read(c, &b, 1);
        CHECK(r == 0, "round %d: read after EPIPE: %s, want EOF", i,
              r < 0 ? strerror(errno) : "data");
        most = n > most ? n : most;
        agains += ag;
        close(c);
    }
    printf("ok: %d rounds: accept() found the connect complete; after the peer's close the "
           "first write succeeded, the writes ended in EPIPE (SIGPIPE for write(), none with "
           "MSG_NOSIGNAL), POLLHUP, EOF (at most %ld writes before it, %ld EAGAIN in all)\n",
           ROUNDS, most, agains);
}

static void closes_unread(void)
{
    int resets = 0;
    for (int i = 0; i < RESET_ROUNDS; i++) {
        int c, a;
        loop_pair(&c, &a, i);
        CHECK(write(c, "u", 1) == 1, "write: %s", strerror(errno));
        CHECK(poll_for(a, POLLIN, EVENT_MS) & POLLIN, "round %d: the byte never came", i);
        SYS(close(a));
        long n, ag;
        int err = write_until_refused(c, 1, &n, &ag, i);
        CHECK(err == EPIPE || err == ECONNRESET, "round %d: after %ld writes to a peer that "
              "closed with our byte unread (a reset): %s, want EPIPE or ECONNRESET", i, n,
              strerror(err));
        resets += err == ECONNRESET;
        wait_hup(c, i);
        close(c);
    }
    printf("ok: %d rounds: the peer closed with our byte unread: the writes ended in "
           "ECONNRESET %d times, EPIPE %d times; POLLHUP\n",
           RESET_ROUNDS, resets, RESET_ROUNDS - resets);
}

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, 120);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigpipe;
    SYS(sigaction(SIGPIPE, &sa, NULL));
    closes_clean();
    closes_unread();
    printf("PASS: %s\n", prog_name);
    return 0;
}
