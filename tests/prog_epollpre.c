/*
 * prog_epollpre: what a program sets on a TCP socket before connect() or
 * listen() (epoll registrations, fcntl state, socket options) is there
 * after it, as Linux TCP keeps it. Under the shim those calls put another
 * file at the fd number, and epoll registrations, F_SETOWN and F_SETSIG
 * belong to the file, not to the number.
 *
 *   prog_epollpre             run every check below; exit 0 iff all hold
 *
 * For IPv4 and IPv6 on loopback, an event loop that registers first:
 *   listener  registered before listen() in four epoll sets: level
 *             (EPOLLIN), edge (EPOLLIN|EPOLLET), one the registration was
 *             deleted from before listen(), one changed by EPOLL_CTL_MOD
 *             before listen() (new events and data); F_SETOWN_EX, F_SETSIG,
 *             O_ASYNC, O_NONBLOCK, FD_CLOEXEC and SO_* options set before
 *             listen() read back after it; a connection makes EPOLLIN come
 *             with each set's own data.u64 (none from the deleted one, whose
 *             EPOLL_CTL_DEL says ENOENT) and the F_SETSIG signal with si_fd;
 *             EPOLL_CTL_DEL after listen() finds the registration.
 *   client    a non-blocking socket registered before connect() for
 *             EPOLLOUT in one set and EPOLLOUT|EPOLLONESHOT in another:
 *             EPOLLOUT reports the connect's completion with the app's data,
 *             SO_ERROR 0; the one-shot fires once; fcntl state and options
 *             read back; EPOLL_CTL_MOD after connect() (to EPOLLIN|EPOLLET,
 *             new data) finds the registration and reports the peer's bytes,
 *             with the F_SETSIG signal (si_code POLL_IN); EPOLL_CTL_DEL after
 *             connect() finds the other one, and MOD then says ENOENT.
 *   oneshot   a one-shot registration that fired before connect() (an
 *             unconnected TCP socket polls EPOLLOUT|EPOLLHUP) stays disabled
 *             across connect(); EPOLL_CTL_MOD re-arms it.
 *   blocking  EPOLLIN registered before a blocking connect() reports the
 *             peer's bytes.
 *   refused   EPOLLOUT registered before a non-blocking connect() to a
 *             port nothing listens on reports EPOLLERR; SO_ERROR says
 *             ECONNREFUSED.
 *   again     EPOLLOUT registered after such a connect(): EPOLLERR; the port
 *             then listens and connect() is called again on the socket
 *             (ECONNABORTED first is Linux's answer once SO_ERROR was read):
 *             the same registration reports EPOLLOUT, bytes go through.
 *
 * Prints one "ok:" line per check and "transport: KIND" for the connected
 * fds (tcp = a kernel TCP socket). Exit 0 iff every check held; 1 with a
 * "FAIL:" line otherwise; 3 if the watchdog (60 s) fired.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 60
#define EVENT_MS 5000 /* bound on every readiness wait */

const char *prog_name = "prog_epollpre";

static int sig_no; /* SIGRTMIN + 2: queued, one per event, with si_fd */

static int epoll_new(void)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        failf(__LINE__, "epoll_create1: %s", strerror(errno));
    return ep;
}

static void ep_ctl(int ep, int op, int fd, uint32_t events, uint64_t data)
{
    struct epoll_event ev = {.events = events, .data.u64 = data};
    SYS(epoll_ctl(ep, op, fd, &ev));
}

/* Waits up to ms for one event in ep; fails if none comes or its data is
 * not want. Returns its events. */
static uint32_t wait_one(int ep, uint64_t want, int ms, const char *what)
{
    struct epoll_event ev[4];
    int n;
    do
        n = epoll_wait(ep, ev, 4, ms);
    while (n < 0 && errno == EINTR);
    CHECK(n >= 0, "%s: epoll_wait: %s", what, strerror(errno));
    CHECK(n == 1, "%s: %d events within %d ms, want 1", what, n, ms);
    CHECK(ev[0].data.u64 == want, "%s: data.u64 %#llx, want %#llx", what,
          (unsigned long long)ev[0].data.u64, (unsigned long long)want);
    return ev[0].events;
}

/* Nothing is ready in ep now (a level-triggered registration that would
 * report shows at once). */
static void none_now(int ep, const char *what)
{
    struct epoll_event ev;
    int n = epoll_wait(ep, &ev, 1, 0);
    CHECK(n == 0, "%s: %d events (events %#x data %#llx), want none", what, n,
          n > 0 ? ev.events : 0, n > 0 ? (unsigned long long)ev.data.u64 : 0ull);
}

/* Waits up to EVENT_MS for the F_SETSIG signal about fd (with code, or any
 * code if code is 0), passing over those about other fds or events. */
static void wait_signal(int fd, int code, const char *what)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig_no);
    double end = now_s() + EVENT_MS / 1000.0;
    for (;;) {
        double left = end - now_s();
        CHECK(left > 0, "%s: no signal %d with si_fd %d%s within %d ms", what, sig_no, fd,
              code == POLL_IN ? " and POLL_IN" : "", EVENT_MS);
        struct timespec ts = {.tv_sec = (time_t)left,
                              .tv_nsec = (long)((left - (double)(time_t)left) * 1e9)};
        siginfo_t si;
        int s = sigtimedwait(&set, &si, &ts);
        if (s < 0) {
            CHECK(errno == EAGAIN || errno == EINTR, "%s: sigtimedwait: %s", what, strerror(errno));
            continue;
        }
        if (si.si_fd == fd && (code == 0 || si.si_code == code))
            return;
    }
}

/* What the program sets before connect()/listen(): the owner and signal of
 * O_ASYNC, the status and fd flags, socket options. */
static void set_state(int fd)
{
    struct f_owner_ex own = {.type = F_OWNER_PID, .pid = getpid()};
    SYS(fcntl(fd, F_SETOWN_EX, &own));
    SYS(fcntl(fd, F_SETSIG, sig_no));
    SYS(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC | O_NONBLOCK));
    SYS(fcntl(fd, F_SETFD, FD_CLOEXEC));
    int one = 1, prio = 3, lowat = 2;
    struct timeval tv = {.tv_sec = 7, .tv_usec = 0};
    SYS(setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &one, sizeof one));
    SYS(setsockopt(fd, SOL_SOCKET, SO_PRIORITY, &prio, sizeof prio));
    SYS(setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat));
    SYS(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv));
}

static int get_int_opt(int fd, int opt)
{
    int v = -1;
    socklen_t l = sizeof v;
    SYS(getsockopt(fd, SOL_SOCKET, opt, &v, &l));
    return v;
}

static void check_state(int fd, const char *what)
{
    struct f_owner_ex own;
    SYS(fcntl(fd, F_GETOWN_EX, &own));
    CHECK(own.type == F_OWNER_PID && own.pid == getpid(), "%s: F_GETOWN_EX says type %d pid %d",
          what, own.type, (int)own.pid);
    CHECK(fcntl(fd, F_GETOWN) == getpid(), "%s: F_GETOWN says %d", what, fcntl(fd, F_GETOWN));
    CHECK(fcntl(fd, F_GETSIG) == sig_no, "%s: F_GETSIG says %d", what, fcntl(fd, F_GETSIG));
    int fl = fcntl(fd, F_GETFL);
    CHECK((fl & (O_ASYNC | O_NONBLOCK)) == (O_ASYNC | O_NONBLOCK), "%s: F_GETFL says %#x", what,
          fl);
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC, "%s: FD_CLOEXEC lost", what);
    printf("ok: %s: F_SETOWN_EX, F_SETSIG, O_ASYNC, O_NONBLOCK, FD_CLOEXEC kept\n", what);
    CHECK(get_int_opt(fd, SO_OOBINLINE) == 1, "%s: SO_OOBINLINE lost", what);
    CHECK(get_int_opt(fd, SO_PRIORITY) == 3, "%s: SO_PRIORITY says %d", what,
          get_int_opt(fd, SO_PRIORITY));
    CHECK(get_int_opt(fd, SO_RCVLOWAT) == 2, "%s: SO_RCVLOWAT says %d", what,
          get_int_opt(fd, SO_RCVLOWAT));
    struct timeval tv;
    socklen_t l = sizeof tv;
    SYS(getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &l));
    CHECK(tv.tv_sec == 7 && tv.tv_usec == 0, "%s: SO_SNDTIMEO says %ld.%06ld", what,
          (long)tv.tv_sec, (long)tv.tv_usec);
    printf("ok: %s: SO_OOBINLINE, SO_PRIORITY, SO_RCVLOWAT, SO_SNDTIMEO kept\n", what);
}

static void check_family(int family)
{
    const char *fam = fam_name(family);
    char what[96];
    uint64_t tag = (uint64_t)family << 32;

    /* listener: four epoll sets, registered before listen() */
    struct sockaddr_storage la;
    socklen_t llen;
    int s = bound_loopback(family, &la, &llen);
    int lt = epoll_new(), et = epoll_new(), gone = epoll_new(), mod = epoll_new();
    ep_ctl(lt, EPOLL_CTL_ADD, s, EPOLLIN, tag | 0x1111);
    ep_ctl(et, EPOLL_CTL_ADD, s, EPOLLIN | EPOLLET, tag | 0x2222);
    ep_ctl(gone, EPOLL_CTL_ADD, s, EPOLLIN, tag | 0x3333);
    ep_ctl(gone, EPOLL_CTL_DEL, s, 0, 0);
    ep_ctl(mod, EPOLL_CTL_ADD, s, EPOLLOUT, tag | 0x4444);
    ep_ctl(mod, EPOLL_CTL_MOD, s, EPOLLIN, tag | 0x5555);
    set_state(s);
    SYS(listen(s, 8));
    snprintf(what, sizeof what, "%s listener, set before listen()", fam);
    check_state(s, what);
    none_now(lt, "a listener with nothing queued");

    /* client: two epoll sets, registered before a non-blocking connect() */
    int c = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    SYS(c);
    int ce = epoll_new(), co = epoll_new();
    ep_ctl(ce, EPOLL_CTL_ADD, c, EPOLLOUT, tag | 0xc1);
    ep_ctl(co, EPOLL_CTL_ADD, c, EPOLLOUT | EPOLLONESHOT, tag | 0xc2);
    set_state(c);
    int r = connect(c, (struct sockaddr *)&la, llen);
    CHECK(r == 0 || errno == EINPROGRESS, "%s connect: %s", fam, strerror(errno));
    uint32_t evs = wait_one(ce, tag | 0xc1, EVENT_MS, "EPOLLOUT registered before connect()");
    CHECK((evs & EPOLLOUT) && !(evs & (EPOLLERR | EPOLLHUP)), "%s: connect completion events %#x",
          fam, evs);
    CHECK(so_error(c) == 0, "%s: SO_ERROR %d after EPOLLOUT", fam, so_error(c));
    printf("ok: %s: EPOLLOUT registered before connect() reports its completion, with the "
           "app's data.u64; SO_ERROR 0\n", fam);
    wait_one(co, tag | 0xc2, EVENT_MS, "EPOLLOUT|EPOLLONESHOT registered before connect()");
    none_now(co, "a one-shot registration that fired");
    printf("ok: %s: EPOLLOUT|EPOLLONESHOT registered before connect() fires once, in its own "
           "epoll set\n", fam);
    snprintf(what, sizeof what, "%s client, set before connect()", fam);
    check_state(c, what);

    /* the listener's sets */
    evs = wait_one(lt, tag | 0x1111, EVENT_MS, "listener EPOLLIN (level)");
    CHECK(evs == EPOLLIN, "%s: listener events %#x", fam, evs);
    wait_one(et, tag | 0x2222, EVENT_MS, "listener EPOLLIN|EPOLLET");
    wait_one(mod, tag | 0x5555, EVENT_MS, "listener after EPOLL_CTL_MOD before listen()");
    none_now(gone, "the set the listener was deleted from before listen()");
    CHECK(epoll_ctl(gone, EPOLL_CTL_DEL, s, NULL) < 0 && errno == ENOENT,
          "%s: DEL from the set deleted before listen(): %s", fam, strerror(errno));
    printf("ok: %s: a connection makes EPOLLIN come in the level, edge and MOD'ed sets of the "
           "listener (registered before listen()) with their data; not in the one it was "
           "deleted from\n", fam);
    wait_signal(s, 0, "listener's F_SETSIG signal");
    printf("ok: %s: a connection sends the listener's owner its F_SETSIG signal (si_fd)\n", fam);

    int a = accept4(s, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    SYS(a);
    printf("transport: %s\n", fd_transport(c));
    printf("transport: %s\n", fd_transport(a));

    /* after the swap: the registrations are the app's to change */
    ep_ctl(ce, EPOLL_CTL_MOD, c, EPOLLIN | EPOLLET, tag | 0xc3);
    SYS(write(a, "ping", 4));
    evs = wait_one(ce, tag | 0xc3, EVENT_MS, "EPOLLIN after EPOLL_CTL_MOD after connect()");
    CHECK(evs & EPOLLIN, "%s: events %#x", fam, evs);
    char buf[8];
    read_exact(c, buf, 4, EVENT_MS);
    CHECK(memcmp(buf, "ping", 4) == 0, "%s: read the wrong bytes", fam);
    printf("ok: %s: EPOLL_CTL_MOD after connect() finds the registration made before it; "
           "EPOLLIN comes with the new data.u64\n", fam);
    wait_signal(c, POLL_IN, "client's F_SETSIG signal for data");
    printf("ok: %s: the peer's bytes send the client's owner its F_SETSIG signal (POLL_IN, "
           "si_fd)\n", fam);
    SYS(epoll_ctl(co, EPOLL_CTL_DEL, c, NULL));
    struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = 0};
    CHECK(epoll_ctl(co, EPOLL_CTL_MOD, c, &ev) < 0 && errno == ENOENT,
          "%s: MOD after DEL: %s", fam, strerror(errno));
    SYS(epoll_ctl(lt, EPOLL_CTL_DEL, s, NULL));
    SYS(epoll_ctl(et, EPOLL_CTL_DEL, s, NULL));
    printf("ok: %s: EPOLL_CTL_DEL after connect()/listen() removes registrations made before "
           "them\n", fam);

    /* oneshot: fired before connect(), disabled after it */
    int c3 = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    SYS(c3);
    int e3 = epoll_new();
    ep_ctl(e3, EPOLL_CTL_ADD, c3, EPOLLOUT | EPOLLONESHOT, tag | 0xd1);
    evs = wait_one(e3, tag | 0xd1, 0, "an unconnected socket's one-shot");
    CHECK(evs == (EPOLLOUT | EPOLLHUP), "%s: an unconnected TCP socket polls %#x", fam, evs);
    r = connect(c3, (struct sockaddr *)&la, llen);
    CHECK(r == 0 || errno == EINPROGRESS, "%s connect: %s", fam, strerror(errno));
    struct pollfd p = {.fd = c3, .events = POLLOUT};
    CHECK(poll(&p, 1, EVENT_MS) == 1 && so_error(c3) == 0, "%s: second connect not done", fam);
    none_now(e3, "a one-shot that fired before connect()");
    ep_ctl(e3, EPOLL_CTL_MOD, c3, EPOLLOUT | EPOLLONESHOT, tag | 0xd2);
    wait_one(e3, tag | 0xd2, EVENT_MS, "a one-shot re-armed after connect()");
    printf("ok: %s: a one-shot that fired before connect() stays disabled after it until "
           "EPOLL_CTL_MOD\n", fam);
    int a3 = accept4(s, NULL, NULL, SOCK_CLOEXEC);
    if (a3 < 0 && errno == EAGAIN) {
        struct pollfd lp = {.fd = s, .events = POLLIN};
        CHECK(poll(&lp, 1, EVENT_MS) == 1, "%s: third connection not queued", fam);
        a3 = accept4(s, NULL, NULL, SOCK_CLOEXEC);
    }
    SYS(a3);

    /* blocking connect, EPOLLIN registered before it */
    int c4 = socket(family, SOCK_STREAM, 0);
    SYS(c4);
    int e4 = epoll_new();
    ep_ctl(e4, EPOLL_CTL_ADD, c4, EPOLLIN, tag | 0xe1);
    SYS(connect(c4, (struct sockaddr *)&la, llen));
    struct pollfd lp = {.fd = s, .events = POLLIN};
    CHECK(poll(&lp, 1, EVENT_MS) == 1, "%s: fourth connection not queued", fam);
    int a4 = accept4(s, NULL, NULL, SOCK_CLOEXEC);
    SYS(a4);
    SYS(write(a4, "pong", 4));
    evs = wait_one(e4, tag | 0xe1, EVENT_MS, "EPOLLIN registered before a blocking connect()");
    CHECK(evs == EPOLLIN, "%s: events %#x", fam, evs);
    read_exact(c4, buf, 4, EVENT_MS);
    printf("ok: %s: EPOLLIN registered before a blocking connect() reports the peer's bytes\n",
           fam);
    printf("transport: %s\n", fd_transport(c4));

    /* refused: a port bound but not listening (nothing answers there) */
    struct sockaddr_storage da;
    socklen_t dlen;
    int dead = bound_loopback(family, &da, &dlen);
    int c5 = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    SYS(c5);
    int e5 = epoll_new();
    ep_ctl(e5, EPOLL_CTL_ADD, c5, EPOLLOUT, tag | 0xf1);
    r = connect(c5, (struct sockaddr *)&da, dlen);
    CHECK(r < 0 && (errno == EINPROGRESS || errno == ECONNREFUSED), "%s refused connect: %s",
          fam, r == 0 ? "succeeded" : strerror(errno));
    evs = wait_one(e5, tag | 0xf1, EVENT_MS, "EPOLLOUT registered before a refused connect()");
    CHECK(evs & EPOLLERR, "%s: refused connect events %#x", fam, evs);
    CHECK(so_error(c5) == ECONNREFUSED, "%s: SO_ERROR %d", fam, so_error(c5));
    printf("ok: %s: EPOLLOUT registered before a refused connect() reports EPOLLERR; SO_ERROR "
           "ECONNREFUSED\n", fam);

    /* again: registered after a connect() that is then refused; the
     * listener appears and connect() is called again on the same socket.
     * The registration was made on the connecting socket, and the same
     * file carries the new attempt in TCP: its EPOLLOUT comes there
     * (asyncio's sock_connect retry loop, test_sock_client_connect_racing;
     * under the shim the bridge gives way to a fresh socket, then another
     * bridge). */
    int c6 = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    SYS(c6);
    r = connect(c6, (struct sockaddr *)&da, dlen);
    CHECK(r < 0 && (errno == EINPROGRESS || errno == ECONNREFUSED), "%s refused connect: %s",
          fam, r == 0 ? "succeeded" : strerror(errno));
    int e6 = epoll_new();
    ep_ctl(e6, EPOLL_CTL_ADD, c6, EPOLLOUT, tag | 0xf2);
    evs = wait_one(e6, tag | 0xf2, EVENT_MS, "EPOLLOUT registered after a refused connect()");
    CHECK(evs & EPOLLERR, "%s: refused connect events %#x", fam, evs);
    int so = so_error(c6);
    CHECK(so == ECONNREFUSED || (r < 0 && so == 0), "%s: SO_ERROR %d", fam, so);
    SYS(listen(dead, 4));
    int tries = 0;
    do {
        r = connect(c6, (struct sockaddr *)&da, dlen);
        CHECK(r == 0 || errno == EINPROGRESS || errno == ECONNABORTED || errno == ECONNREFUSED,
              "%s: connect() again after the refusal: %s", fam, strerror(errno));
    } while (r < 0 && errno != EINPROGRESS && ++tries < 3);
    CHECK(r == 0 || errno == EINPROGRESS, "%s: connect() again: no new attempt in 3 calls", fam);
    evs = wait_one(e6, tag | 0xf2, EVENT_MS, "the same registration after connect() again");
    CHECK(evs == EPOLLOUT, "%s: connect again: events %#x, want EPOLLOUT", fam, evs);
    CHECK(so_error(c6) == 0, "%s: connect again: SO_ERROR %d", fam, so_error(c6));
    int a6 = accept4(dead, NULL, NULL, SOCK_CLOEXEC);
    SYS(a6);
    SYS(write(c6, "ping", 4));
    read_exact(a6, buf, 4, EVENT_MS);
    printf("ok: %s: EPOLLOUT registered after a refused connect() reports the next connect() "
           "on the socket (%d refused call%s between)\n", fam, tries, tries == 1 ? "" : "s");

    int fds[] = {s, lt, et, gone, mod, c, ce, co, a, c3, e3, a3, c4, e4, a4, dead, c5, e5,
                 c6, e6, a6};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        close(fds[i]);
}

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, WATCHDOG_S);
    sig_no = SIGRTMIN + 2;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig_no);
    SYS(sigprocmask(SIG_BLOCK, &set, NULL));
    check_family(AF_INET);
    if (family_usable(AF_INET6, "the IPv6 cases"))
        check_family(AF_INET6);
    printf("PASS: %s\n", prog_name);
    return 0;
}
