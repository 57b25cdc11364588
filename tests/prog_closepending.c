/*
 * prog_closepending: a close() with the peer's bytes arrived but not yet
 * read by anyone, as the peer sees it.
 *
 * Linux's close() of a socket whose receive queue holds bytes sends a
 * reset alone (tcp_close()): the peer's next read says ECONNRESET, with no
 * EOF before it. Under the shim such bytes may still wait in the
 * connection's UDP socket: after a read whose own thread took the datagram
 * (engine/apprecv.c) the socket stays the reader's for SHIM_APP_LINGER
 * (2 ms), the engine not watching it. Before 2026-11-29 the close then
 * sent a FIN, and the reset came only once the engine read the bytes
 * after it: the peer read EOF, and its next write said EPIPE (SIGPIPE, a
 * C server's death at the default) where TCP's says ECONNRESET. The close
 * now reads the socket first (shim_engine_app_closing).
 *
 * The peer is the parent. Over kernel TCP it is a TCP server. Under the
 * shim (LD_PRELOAD set) it runs the protocol itself, libcore.a on a UDP
 * socket of its own, which the shim leaves to it: its second part's
 * datagram is in the child's UDP socket when its sendto() returns
 * (loopback delivers it in the sender's call), before it tells the child
 * to close. The child (under the shim in that run) connects, sends a byte,
 * reads the 100-byte first part, says so through a pipe, waits to be told
 * that the second part was sent, and closes. COUNT (20) connections one after
 * another: each must end in a reset alone, the bytes unread.
 *
 * Prints the child's "transport: KIND" and an "ok:" line; exit 1 with a
 * "FAIL:" line,
 * 3 if the watchdog (60 s) fired.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "progutil.h"
#include "rudp.h"

const char *prog_name = "prog_closepending";

#define PART 100
#define IO_MS 10000

/* The pipes: child -> parent ("a": first part read), parent -> child
 * ("b": second part sent). */
static int up[2], down[2];

static void child(unsigned port, int count)
{
    close(up[0]);
    close(down[1]);
    for (int i = 0; i < count; i++) {
        int s = connect_lo(port);
        if (i == 0)
            printf("transport: %s\n", fd_transport(s)); /* the end under test */
        write_exact(s, "q", 1);
        char buf[PART];
        read_exact(s, buf, sizeof buf, IO_MS);
        char c = 'a';
        if (write(up[1], &c, 1) != 1 || read(down[0], &c, 1) != 1 || c != 'b')
            _exit(2);
        if (close(s) != 0)
            _exit(3);
    }
    exit(0); /* not _exit: RUDP_STATS's counts are written at exit */
}

/* ---- the peer over kernel TCP ---- */

/* What the peer read after the child's close: "reset alone", "EOF first". */
static const char *tcp_end(int b)
{
    char x;
    ssize_t r = read(b, &x, 1);
    if (r < 0 && errno == ECONNRESET)
        return "reset alone";
    return r == 0 ? "EOF first" : "something else";
}

static int tcp_peer(int count)
{
    int l = listener_lo(0, 4);
    unsigned port = port_of_fd(l);
    pid_t k = fork();
    SYS(k);
    if (k == 0) {
        close(l);
        child(port, count);
    }
    kill_on_fail(k);
    static const char part[PART];
    for (int i = 0; i < count; i++) {
        int b = accept_ready(l, IO_MS);
        char q;
        read_exact(b, &q, 1, IO_MS);
        write_exact(b, part, sizeof part);
        char c;
        CHECK(read(up[0], &c, 1) == 1, "connection %d: the child never read the first part", i);
        write_exact(b, part, sizeof part);
        c = 'b';
        CHECK(write(down[1], &c, 1) == 1, "pipe");
        CHECK(poll_for(b, POLLIN, IO_MS) & (POLLIN | POLLERR | POLLHUP),
              "connection %d: nothing after the close", i);
        const char *end = tcp_end(b);
        CHECK(strcmp(end, "reset alone") == 0,
              "connection %d: closed with the second part unread: %s, not a reset alone", i, end);
        close(b);
    }
    close(l);
    int st = reap_within(k, IO_MS, "the child");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child ended with status %d", st);
    return 0;
}

/* ---- the peer running the protocol itself, under the shim ---- */

static int ufd;
static rudp_ctx *ctx;

static rudp_time now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (rudp_time)t.tv_sec * 1000000000ull + (rudp_time)t.tv_nsec;
}

static void on_send(void *user, uint32_t sock, const rudp_addr *peer, const uint8_t *buf,
                    size_t len)
{
    (void)user, (void)sock;
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(peer->port)};
    memcpy(&to.sin_addr, peer->ip, 4);
    (void)sendto(ufd, buf, len, 0, (struct sockaddr *)&to, sizeof to); /* a drop is resent */
}

/* One connection's course, as the peer sees it; the child's next one,
 * which may come in the turn that reads this one's reset. */
static struct {
    rudp_conn *c;
    int got_q, eof, reset, other;
} cur;
static rudp_conn *next_c;

/* Datagrams into the core, events taken, cur's bytes and end read, output
 * sent: one turn. */
static rudp_time turn(void)
{
    rudp_time now = now_ns();
    for (;;) {
        uint8_t buf[2048];
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t r = recvfrom(ufd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
        if (r < 0)
            break;
        rudp_addr p;
        memset(&p, 0, sizeof p);
        p.family = AF_INET;
        p.port = ntohs(from.sin_port);
        memcpy(p.ip, &from.sin_addr, 4);
        rudp_ctx_input(ctx, now, 0, NULL, &p, buf, (size_t)r);
    }
    rudp_conn *c;
    unsigned e;
    while (rudp_ctx_next_event(ctx, &c, &e)) {
        if (!(e & RUDP_EV_ACCEPT))
            continue;
        rudp_conn_accepted(c, now);
        if (!cur.c)
            cur.c = c;
        else {
            CHECK(!next_c, "a third connection while one is open");
            next_c = c;
        }
    }
    if (cur.c) {
        ssize_t r;
        uint8_t x[64];
        while ((r = rudp_conn_read(cur.c, now, x, sizeof x)) > 0)
            cur.got_q += (int)r;
        if (r == 0)
            cur.eof = 1;
        else if (r == -ECONNRESET)
            cur.reset = 1;
        else if (r != -EAGAIN)
            cur.other = (int)-r;
        if (rudp_conn_error(cur.c) == -ECONNRESET)
            cur.reset = 1;
    }
    return rudp_ctx_process(ctx, now);
}

/* Turns until done() or ms pass: whether done() came. */
static int turns_until(int (*done)(void), int ms)
{
    rudp_time end = now_ns() + RUDP_MS(ms);
    rudp_time next = turn();
    while (!done()) {
        rudp_time now = now_ns();
        if (now >= end)
            return 0;
        rudp_time until = next < end ? next : end;
        int wait = until > now ? (int)((until - now + 999999) / 1000000) : 0;
        struct pollfd p = {.fd = ufd, .events = POLLIN};
        poll(&p, 1, wait);
        next = turn();
    }
    return 1;
}

static int have_q(void)
{
    return cur.got_q > 0;
}

static int ended(void)
{
    return cur.reset || cur.other;
}

static int core_peer(int count)
{
    ufd = socket(AF_INET, SOCK_DGRAM, 0);
    SYS(ufd);
    unsigned port = bind_lo(ufd, 0);
    uint8_t seed[32] = {1, 2, 3};
    CHECK(rudp_ctx_new(&(rudp_ctx_ops){.send = on_send}, NULL, seed, NULL, NULL, &ctx) == 0,
          "rudp_ctx_new");
    rudp_listener *l;
    CHECK(rudp_listen(ctx, 0, NULL, 16, &l) == 0, "rudp_listen");
    pid_t k = fork();
    SYS(k);
    if (k == 0) {
        close(ufd);
        child(port, count);
    }
    kill_on_fail(k);
    static const uint8_t part[PART];
    for (int i = 0; i < count; i++) {
        memset(&cur, 0, sizeof cur);
        cur.c = next_c; /* it came with the last one's reset, or comes now */
        next_c = NULL;
        CHECK(turns_until(have_q, IO_MS), "connection %d: no request", i);
        CHECK(rudp_conn_write(cur.c, now_ns(), part, sizeof part) == PART, "write");
        turn(); /* the first part leaves */
        char c;
        CHECK(read(up[0], &c, 1) == 1, "connection %d: the child never read the first part", i);
        CHECK(rudp_conn_write(cur.c, now_ns(), part, sizeof part) == PART, "write");
        turn(); /* the second part leaves: in the child's socket when sendto() returns */
        CHECK(rudp_conn_unsent(cur.c) == 0, "connection %d: the second part not sent at once",
              i); /* else the child might close before it came */
        c = 'b';
        CHECK(write(down[1], &c, 1) == 1, "pipe");
        CHECK(turns_until(ended, IO_MS), "connection %d: no reset within %d ms (EOF %s)", i,
              IO_MS, cur.eof ? "read" : "not read");
        CHECK(!cur.other, "connection %d: ended with %s", i, strerror(cur.other));
        CHECK(!cur.eof, "connection %d: closed with the second part unread: EOF first, then "
                        "the reset (TCP's: a reset alone)", i);
        rudp_conn_release(cur.c, now_ns());
        cur.c = NULL;
    }
    int st = reap_within(k, IO_MS, "the child");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child ended with status %d", st);
    rudp_ctx_free(ctx);
    return 0;
}

#define COUNT 20

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, 60);
    int count = COUNT;
    SYS(pipe(up));
    SYS(pipe(down));
    const char *pre = getenv("LD_PRELOAD");
    int shim = pre && strstr(pre, "librudp_shim");
    int r = shim ? core_peer(count) : tcp_peer(count);
    printf("ok: %d connections closed with a part unread (arrived, not read): the peer saw a "
           "reset alone each time\n",
           count);
    return r;
}
