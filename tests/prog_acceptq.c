/*
 * prog_acceptq: a listener's accept queue, as Linux TCP bounds it.
 *
 *   prog_acceptq              run every check below; exit 0 iff all hold
 *
 * A listener with backlog 2 that does not accept, and 8 non-blocking
 * clients connecting to it at once:
 *
 *   full      exactly backlog + 1 = 3 connects complete (POLLOUT, SO_ERROR
 *             0), and no other completes while nothing is accepted (watched
 *             for QUIET_MS). Linux drops a SYN while the accept queue is full
 *             (tcp_conn_request: sk_acceptq_is_full(), which compares with
 *             ">", so backlog + 1 fit; no RST: the client resends its SYN at
 *             1, 3, 7 s), measured over kernel TCP on Linux 6.x: 3 of 8.
 *             The 3 complete are the 3 queued: accept() returns each.
 *   drain     the program then accepts what is queued, again and again
 *             (each client writes a byte as soon as its connect completes):
 *             every place accept() frees is taken at a client's next
 *             attempt, until all 8 are accepted. How many clients complete
 *             meanwhile is not checked: Linux (measured, syncookies on)
 *             answers the 5 SYNs resent together at 1 s, as the accept
 *             queue was not full when they came (the SYN queue's overflow
 *             with cookies), so 5 clients complete while only the 3 places
 *             are taken: the surplus ACKs are dropped
 *             (tcp_v4_syn_recv_sock(): sk_acceptq_is_full()) and those
 *             clients get in when their data is resent. The shim answers
 *             only what it has room for.
 *   bytes     each accepted connection carries one byte each way to the
 *             client it belongs to.
 *
 * Under the shim with RUDP_ENGINES=2 the listener's handshakes land on
 * either engine (a SO_REUSEPORT group): the counts must be the same.
 *
 * Every wait is a poll() with a bound. Prints one "ok:" line per check and
 * "transport: KIND" for each connected pair. Exit 0 iff every check held;
 * 1 with a "FAIL:" line otherwise; 3 if the watchdog (60 s) fired.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 60
#define BACKLOG 2
#define CLIENTS 8
/* How long the full queue is watched for a completion it must not let
 * through: shorter than kernel TCP's first SYN resend (1 s), so over
 * kernel TCP no dropped client even tries again meanwhile. */
#define QUIET_MS 500
/* A place freed by accept() is taken at a client's next attempt: kernel
 * TCP resends a dropped SYN after 1, 3, 7 s. */
#define RETRY_MS 20000
#define EVENT_MS 5000

const char *prog_name = "prog_acceptq";

static int cl[CLIENTS];
static int done[CLIENTS];    /* connect completed */
static int acc[CLIENTS];     /* the accepted ends, in accept order */
static int ncomplete, naccepted;

/* Notes every client whose connect completed within ms (0: those that
 * have now); returns how many are complete. */
static int poll_clients(int ms)
{
    struct pollfd p[CLIENTS];
    int idx[CLIENTS], n = 0;
    for (int i = 0; i < CLIENTS; i++)
        if (!done[i]) {
            p[n].fd = cl[i];
            p[n].events = POLLOUT;
            p[n].revents = 0;
            idx[n++] = i;
        }
    if (!n)
        return ncomplete;
    int r = poll(p, (nfds_t)n, ms);
    SYS(r);
    for (int k = 0; k < n; k++) {
        if (!p[k].revents)
            continue;
        int e = so_error(cl[idx[k]]);
        CHECK(e == 0 && !(p[k].revents & (POLLERR | POLLHUP)),
              "client %d: connect failed: revents 0x%x, SO_ERROR %s", idx[k],
              (unsigned)p[k].revents, strerror(e));
        done[idx[k]] = 1;
        ncomplete++;
        /* at once, as a client does: a connection Linux answered with a
         * SYN cookie enters the accept queue when this reaches it */
        char b = (char)('a' + idx[k]);
        CHECK(write(cl[idx[k]], &b, 1) == 1, "client %d: write: %s", idx[k], strerror(errno));
    }
    return ncomplete;
}

/* Waits up to ms for the count of complete clients to reach want. */
static void wait_complete(int want, int ms)
{
    double end = now_s() + ms / 1000.0;
    while (ncomplete < want) {
        int left = (int)((end - now_s()) * 1000);
        CHECK(left > 0, "%d of %d clients complete after %d ms, want %d (%d accepted)",
              ncomplete, CLIENTS, ms, want, naccepted);
        poll_clients(left);
    }
}

/* One accept() on the non-blocking listener: 1, or 0 for EAGAIN. */
static int accept_one(int l)
{
    int a = accept(l, NULL, NULL);
    if (a < 0) {
        CHECK(errno == EAGAIN || errno == EWOULDBLOCK, "accept: %s", strerror(errno));
        return 0;
    }
    CHECK(naccepted < CLIENTS, "accepted more connections than clients");
    acc[naccepted++] = a;
    return 1;
}

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, WATCHDOG_S);
    struct sockaddr_storage at;
    socklen_t len;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    SYS(l);
    len = loopback(AF_INET, 0, &at);
    SYS(bind(l, (struct sockaddr *)&at, len));
    SYS(getsockname(l, (struct sockaddr *)&at, &len));
    SYS(listen(l, BACKLOG));

    for (int i = 0; i < CLIENTS; i++) {
        cl[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        SYS(cl[i]);
        int r = connect(cl[i], (struct sockaddr *)&at, len);
        CHECK(r == 0 || errno == EINPROGRESS, "client %d: connect: %s", i, strerror(errno));
    }

    /* full */
    wait_complete(BACKLOG + 1, EVENT_MS);
    double end = now_s() + QUIET_MS / 1000.0;
    for (int left = QUIET_MS; left > 0; left = (int)((end - now_s()) * 1000))
        CHECK(poll_clients(left) == BACKLOG + 1,
              "full: %d clients complete with nothing accepted, want backlog + 1 = %d",
              ncomplete, BACKLOG + 1);
    printf("ok: full: %d of %d connects complete with backlog %d and nothing accepted, none "
           "more within %d ms\n", ncomplete, CLIENTS, BACKLOG, QUIET_MS);

    /* The three completed are the three queued: accept() returns each. */
    for (int k = 0; k < BACKLOG + 1; k++) {
        struct pollfd p = {.fd = l, .events = POLLIN};
        CHECK(poll(&p, 1, EVENT_MS) == 1, "full: listener not readable with %d of %d queued "
              "accepted", k, BACKLOG + 1);
        CHECK(accept_one(l), "full: accept: EAGAIN with %d of %d accepted", k, BACKLOG + 1);
    }
    printf("ok: full: the %d complete are the %d queued: accept() returns each\n",
           BACKLOG + 1, BACKLOG + 1);

    /* drain: a place freed is taken at a client's next attempt */
    int rounds = 0;
    while (naccepted < CLIENTS) {
        struct pollfd p = {.fd = l, .events = POLLIN};
        double end2 = now_s() + RETRY_MS / 1000.0;
        for (;;) {
            int left = (int)((end2 - now_s()) * 1000);
            CHECK(left > 0, "drain: nothing to accept within %d ms; %d accepted, %d complete",
                  RETRY_MS, naccepted, ncomplete);
            poll_clients(0);
            int r = poll(&p, 1, left < 100 ? left : 100);
            SYS(r);
            if (r == 1)
                break;
        }
        while (accept_one(l))
            ;
        rounds++;
        /* what the clients see meanwhile is the transport's own (README,
         * Tests): information, not a check */
        printf("drain round %d: %d accepted, %d connects complete\n", rounds, naccepted,
               ncomplete);
    }
    wait_complete(CLIENTS, EVENT_MS);
    printf("ok: drain: all %d accepted, in %d rounds\n", CLIENTS, rounds);

    /* bytes: each client wrote its letter when its connect completed
     * (read_exact polls: the non-blocking fds are fine) */
    for (int k = 0; k < CLIENTS; k++) {
        char b;
        read_exact(acc[k], &b, 1, EVENT_MS);
        CHECK(b >= 'a' && b < 'a' + CLIENTS, "accepted %d read %d", k, b);
        char r = (char)(b - 'a' + 'A');
        CHECK(write(acc[k], &r, 1) == 1, "accepted %d: write: %s", k, strerror(errno));
    }
    for (int i = 0; i < CLIENTS; i++) {
        char b;
        read_exact(cl[i], &b, 1, EVENT_MS);
        CHECK(b == 'A' + i, "client %d read %c, want %c", i, b, 'A' + i);
        printf("transport: %s (client %d), %s (accepted)\n", fd_transport(cl[i]), i,
               fd_transport(acc[i]));
    }
    printf("ok: bytes: each of the %d connections carries a byte each way\n", CLIENTS);
    for (int i = 0; i < CLIENTS; i++) {
        close(cl[i]);
        close(acc[i]);
    }
    close(l);
    return 0;
}
