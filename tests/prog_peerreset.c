/*
 * prog_peerreset: the peer resets (SO_LINGER {1,0}, then close()): our
 * read() says ECONNRESET, as TCP's does, not EOF; poll() shows POLLERR
 * with POLLHUP (and POLLIN, POLLRDHUP: TCP's tcp_poll() after a reset);
 * the read after it says EOF. Or a send() or getsockopt(SO_ERROR) takes
 * the error first: then poll() no longer shows POLLERR, and the read says
 * EOF. Both directions (the accepted end resets
 * the client, and the reverse), IPv4 and IPv6, with no data before the
 * reset and with bytes sent right before it (read first, then the reset).
 *
 * Under the shim, before the engine left a byte unread in its end of the
 * bridge (shim_appfd_reset_mark), read() returned 0 and poll() showed
 * IN|HUP without ERR: an AF_UNIX socket tells its peer ECONNRESET only
 * when closed with unread data.
 *
 *   prog_peerreset [nosend]   nosend: all but the send case
 *
 * Prints "ok:" lines and "transport: KIND"; exit 1 with a "FAIL:" line,
 * 3 if the watchdog (60 s) fired.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_peerreset";

/* What takes the reset's error first. */
enum { TAKE_READ, TAKE_SEND, TAKE_SOERROR };

/* Waits (bounded) until fd shows POLLHUP or POLLERR; returns revents. */
static short wait_end(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    for (int i = 0; i < 1000; i++) {
        int n = poll(&p, 1, 10000);
        SYS(n);
        CHECK(n == 1, "no reset seen within 10 s");
        if (p.revents & (POLLHUP | POLLERR))
            return p.revents;
        usleep(10000); /* readable (data): let the reset come too */
    }
    failf(__LINE__, "no POLLHUP/POLLERR after the data");
}

static void one(int family, int client_resets, const char *data, int taker)
{
    int c, a;
    loopback_pair(family, &c, &a);
    int victim = client_resets ? a : c, resetter = client_resets ? c : a;
    printf("transport: %s\n", fd_transport(victim));
    size_t dl = strlen(data);
    if (dl)
        CHECK(write(resetter, data, dl) == (ssize_t)dl, "write: %s", strerror(errno));
    struct linger l = {1, 0};
    SYS(setsockopt(resetter, SOL_SOCKET, SO_LINGER, &l, sizeof l));
    SYS(close(resetter));
    char buf[64];
    if (dl)
        read_exact(victim, buf, dl, 10000);
    short ev = wait_end(victim);
    CHECK((ev & (POLLIN | POLLHUP | POLLERR | POLLRDHUP)) == (POLLIN | POLLHUP | POLLERR | POLLRDHUP),
          "poll after the peer's reset: 0x%x, not IN|HUP|ERR|RDHUP (0x%x)", (unsigned)ev,
          (unsigned)(POLLIN | POLLHUP | POLLERR | POLLRDHUP));
    errno = 0;
    ssize_t n;
    int err;
    if (taker == TAKE_READ) {
        n = read(victim, buf, sizeof buf);
        err = errno;
        CHECK(n < 0 && err == ECONNRESET, "read after the peer's reset: %zd (%s), not ECONNRESET", n,
              n < 0 ? strerror(err) : n == 0 ? "EOF" : "data");
    } else {
        /* The error taken by a send or SO_ERROR: gone from poll() too
         * (TCP's sock_error() clears sk_err), and the read says EOF. */
        if (taker == TAKE_SEND) {
            n = send(victim, "x", 1, MSG_NOSIGNAL);
            err = errno;
            CHECK(n < 0 && err == ECONNRESET, "send after the peer's reset: %zd (%s), not ECONNRESET",
                  n, n < 0 ? strerror(err) : "sent");
        } else {
            err = so_error(victim);
            CHECK(err == ECONNRESET, "SO_ERROR after the peer's reset: %s, not ECONNRESET",
                  strerror(err));
        }
        struct pollfd p = {.fd = victim, .events = POLLIN | POLLRDHUP};
        SYS(poll(&p, 1, 0));
        CHECK(!(p.revents & POLLERR), "poll after the error was taken: 0x%x, POLLERR still there",
              (unsigned)p.revents);
    }
    n = read(victim, buf, sizeof buf);
    CHECK(n == 0, "second read after the peer's reset: %zd (%s), not EOF", n,
          n < 0 ? strerror(errno) : "data");
    printf("ok: %s, %s resets%s: poll 0x%x, %s ECONNRESET, then %sEOF\n", fam_name(family),
           client_resets ? "client" : "accepted end", dl ? " after data" : "", (unsigned)ev,
           taker == TAKE_READ ? "read" : taker == TAKE_SEND ? "send" : "SO_ERROR",
           taker == TAKE_READ ? "" : "poll without POLLERR, read ");
    close(victim);
}

int main(int argc, char **argv)
{
    /* "nosend": not the send case, for the supervisor's battery: a
     * supervised program's send goes to the kernel, whose bridge says
     * EPIPE (docs/endings.md: where no call is interposed) */
    int nosend = argc == 2 && !strcmp(argv[1], "nosend");
    prog_begin(argc - nosend, 60);
    int fams[2] = {AF_INET, AF_INET6};
    for (int f = 0; f < 2; f++)
        for (int who = 0; who < 2 && family_usable(fams[f], "the IPv6 cases"); who++) {
            one(fams[f], who, "", TAKE_READ);
            one(fams[f], who, "bytes before the reset", TAKE_READ);
            if (!nosend)
                one(fams[f], who, "", TAKE_SEND);
            one(fams[f], who, "", TAKE_SOERROR);
        }
    return 0;
}
