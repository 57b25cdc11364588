/*
 * prog_peerreset: the peer resets (SO_LINGER {1,0}, then close()): our
 * read() says ECONNRESET, as TCP's does, not EOF; poll() shows POLLERR
 * with POLLHUP (and POLLIN, POLLRDHUP: TCP's tcp_poll() after a reset);
 * the read after it says EOF. Both directions (the accepted end resets
 * the client, and the reverse), IPv4 and IPv6, with no data before the
 * reset and with bytes sent right before it (read first, then the reset).
 *
 * Under the shim, before the engine left a byte unread in its end of the
 * bridge (shim_appfd_reset_mark), read() returned 0 and poll() showed
 * IN|HUP without ERR: an AF_UNIX socket tells its peer ECONNRESET only
 * when closed with unread data.
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

static void one(int family, int client_resets, const char *data)
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
    ssize_t n = read(victim, buf, sizeof buf);
    int err = errno;
    CHECK(n < 0 && err == ECONNRESET, "read after the peer's reset: %zd (%s), not ECONNRESET", n,
          n < 0 ? strerror(err) : n == 0 ? "EOF" : "data");
    n = read(victim, buf, sizeof buf);
    CHECK(n == 0, "second read after the peer's reset: %zd (%s), not EOF", n,
          n < 0 ? strerror(errno) : "data");
    printf("ok: %s, %s resets%s: poll 0x%x, read ECONNRESET, then EOF\n", fam_name(family),
           client_resets ? "client" : "accepted end", dl ? " after data" : "", (unsigned)ev);
    close(victim);
}

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, 60);
    int fams[2] = {AF_INET, AF_INET6};
    for (int f = 0; f < 2; f++)
        for (int who = 0; who < 2 && family_usable(fams[f], "the IPv6 cases"); who++) {
            one(fams[f], who, "");
            one(fams[f], who, "bytes before the reset");
        }
    return 0;
}
