/*
 * prog_linger: an abortive close (SO_LINGER {1, 0}) reaches the peer as a
 * reset, and the peer can tell it from a clean close.
 *
 *   prog_linger               run every check below; exit 0 iff all hold
 *
 * In every case one end (the "closer", a helper thread) sets SO_LINGER
 * {l_onoff 1, l_linger 0} and close()s while the other end (the "reader",
 * the main thread) is blocked in read() (or poll()): the closer waits until
 * the reader's thread sleeps there (/proc/self/task/TID/stat), not for a
 * fixed time a loaded host could outlast.  Required:
 *   - the closer's close() returns 0 at once (under 0.5 s);
 *   - the reader's blocked read() ends within 5 s, and either
 *       (a) read() == -1 with errno ECONNRESET, or
 *       (b) read() == 0 (EOF) and getsockopt(SO_ERROR) then gives
 *           ECONNRESET.
 *     Kernel TCP gives (a); SO_ERROR is then 0, because read() consumed
 *     the pending error (Linux sock_error() clears sk_err), so (a) puts no
 *     requirement on SO_ERROR.  The shim's AF_UNIX bridge can only give EOF
 *     to a reader that wrote nothing (DESIGN.md section 3), hence (b): the
 *     EOF must then come with SO_ERROR ECONNRESET, or a reset would be
 *     indistinguishable from a clean close.  A plain EOF with SO_ERROR 0
 *     fails;
 *   - afterwards read() does not block and gives no data, and write() fails
 *     with EPIPE or ECONNRESET (SIGPIPE ignored).
 * Cases (IPv4 and IPv6 unless noted): the client resets, the server reads;
 * the server's accepted socket resets, the client reads; (IPv4) the closer
 * first sends 1000 bytes, which the reader gets whole before the reset;
 * (IPv4) the reader waits in poll(POLLIN), which must wake within 5 s.
 *
 * Prints one "ok:" line per check and "transport: KIND" for the connected
 * fds (tcp = a kernel TCP socket).  Exit 0 iff every check held; 1 with a
 * "FAIL:" line otherwise; 3 if the watchdog (60 s) fired.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 60
#define BOUND_S 5          /* the reader's blocked read must end by then */
#define BLOCKED_S 10       /* the closer waits up to this for the reader to block */
#define DATA_LEN 1000

const char *prog_name = "prog_linger";

/* --- the checks ---------------------------------------------------------- */

enum { CLIENT_RESETS, SERVER_RESETS };

struct closer {
    int fd;
    bool send_first;
    atomic_int reader_has_data; /* set by the reader once it got the bytes */
    atomic_int reader_waiting;  /* set by the reader just before its last read/poll */
    pid_t reader_tid;
    double close_took;
    int close_ret, close_err;
};

/* Waits (bounded) until the reader has said it is about to block and its
 * thread sleeps: in its read() or poll(), or at worst on the way there (a
 * lock in the shim), where the reset then finds it a moment later. */
static void wait_reader_blocked(struct closer *cs)
{
    double t0 = now_s();
    while (!atomic_load(&cs->reader_waiting) || thread_state(cs->reader_tid) != 'S') {
        CHECK(now_s() - t0 < BLOCKED_S, "closer: the reader did not block within %d s",
              BLOCKED_S);
        usleep(1000);
    }
}

static void *closer_main(void *arg)
{
    struct closer *cs = arg;
    if (cs->send_first) {
        char buf[DATA_LEN];
        memset(buf, 'd', sizeof buf);
        ssize_t w = write(cs->fd, buf, sizeof buf);
        CHECK(w == DATA_LEN, "closer: write: %s", strerror(errno));
        /* Reset only after the reader has everything: a reset may discard
         * data still in flight, in TCP too. */
        double t0 = now_s();
        while (!atomic_load(&cs->reader_has_data)) {
            CHECK(now_s() - t0 < BOUND_S, "closer: the reader never got the data");
            usleep(1000);
        }
    }
    /* Reset only once the reader is blocked in its read() (or poll()): not
     * after a fixed delay, which a loaded host can outlast. */
    wait_reader_blocked(cs);
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    CHECK(setsockopt(cs->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0,
          "setsockopt(SO_LINGER): %s", strerror(errno));
    double t0 = now_s();
    cs->close_ret = close(cs->fd);
    cs->close_err = errno;
    cs->close_took = now_s() - t0;
    return NULL;
}

/* read() of one byte, interrupted after BOUND_S; sets *err and *took. */
static ssize_t bounded_read(int fd, char *buf, size_t len, int *err, double *took)
{
    prog_bounded_wait = 1;
    alarm(BOUND_S);
    double t0 = now_s();
    ssize_t r = read(fd, buf, len);
    *err = errno;
    *took = now_s() - t0;
    alarm(0);
    prog_bounded_wait = 0;
    alarm(WATCHDOG_S);
    CHECK(!(r < 0 && *err == EINTR), "read() still blocked %.1f s after the peer's reset "
          "(should end within %d s)", *took, BOUND_S);
    return r;
}

static void run_case(int family, int who, bool send_first, bool use_poll)
{
    char what[96];
    snprintf(what, sizeof what, "%s %s%s%s", fam_name(family),
             who == CLIENT_RESETS ? "client resets, server reads"
                                  : "server resets, client reads",
             send_first ? ", after 1000 bytes" : "", use_poll ? ", reader in poll()" : "");

    int c, a;
    loopback_pair(family, &c, &a);
    if (family == AF_INET && who == CLIENT_RESETS && !send_first && !use_poll)
        printf("transport: %s (client), %s (accepted)\n", fd_transport(c), fd_transport(a));

    struct closer cs = { .fd = who == CLIENT_RESETS ? c : a, .send_first = send_first,
                         .reader_tid = (pid_t)syscall(SYS_gettid) };
    int rfd = who == CLIENT_RESETS ? a : c;

    /* The helper must not take SIGALRM: it is meant for the reader. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    pthread_t tid;
    CHECK(pthread_create(&tid, NULL, closer_main, &cs) == 0, "pthread_create");
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    char buf[DATA_LEN + 1];
    int err;
    double took;
    ssize_t r;
    if (send_first) {
        size_t have = 0;
        while (have < DATA_LEN) {
            r = bounded_read(rfd, buf + have, DATA_LEN - have, &err, &took);
            CHECK(r > 0, "%s: reading the data: %s after %zu bytes", what,
                  r == 0 ? "EOF" : strerror(err), have);
            have += (size_t)r;
        }
        CHECK(memchr(buf, 'd', DATA_LEN) && buf[DATA_LEN - 1] == 'd', "%s: data corrupt", what);
        printf("ok: %s: got the %d bytes sent before the reset\n", what, DATA_LEN);
        atomic_store(&cs.reader_has_data, 1);
    }
    atomic_store(&cs.reader_waiting, 1);
    if (use_poll) {
        struct pollfd p = { .fd = rfd, .events = POLLIN };
        double t0 = now_s();
        int n = poll(&p, 1, BOUND_S * 1000);
        SYS(n);
        took = now_s() - t0;
        CHECK(n == 1, "%s: poll(POLLIN) did not wake within %d s of the reset", what, BOUND_S);
        printf("ok: %s: poll woke after %.1f ms with revents 0x%x\n", what, took * 1e3,
               (unsigned)p.revents);
    }
    r = bounded_read(rfd, buf, 1, &err, &took);
    pthread_join(tid, NULL);
    CHECK(cs.close_ret == 0, "%s: the closer's close(): %s", what, strerror(cs.close_err));
    CHECK(cs.close_took < 0.5, "%s: close() with SO_LINGER {1,0} took %.3f s", what,
          cs.close_took);
    printf("ok: %s: the closer's close() returned 0 in %.1f ms\n", what, cs.close_took * 1e3);

    if (r < 0) {
        CHECK(err == ECONNRESET, "%s: read() -> %s, want ECONNRESET (or EOF + SO_ERROR "
              "ECONNRESET)", what, strerror(err));
        int so = so_error(rfd);
        printf("ok: %s: %s -> ECONNRESET after %.1f ms (SO_ERROR then %s)\n", what,
               use_poll ? "read()" : "blocked read()",
               took * 1e3, so ? strerror(so) : "0, consumed by read");
    } else {
        CHECK(r == 0, "%s: read() returned %zd bytes of data after the reset", what, r);
        int so = so_error(rfd);
        CHECK(so == ECONNRESET, "%s: read() -> EOF and SO_ERROR %s: a reset must not look "
              "like a clean close (want ECONNRESET from read, or SO_ERROR ECONNRESET after "
              "EOF)", what, so ? strerror(so) : "0");
        printf("ok: %s: %s -> EOF after %.1f ms, then SO_ERROR ECONNRESET\n", what,
               use_poll ? "read()" : "blocked read()",
               took * 1e3);
    }

    r = bounded_read(rfd, buf, 1, &err, &took);
    CHECK(r <= 0, "%s: data after the reset", what);
    printf("ok: %s: read() again -> %s without blocking\n", what,
           r == 0 ? "EOF" : strerror(err));
    ssize_t w = write(rfd, "x", 1);
    CHECK(w == -1 && (errno == EPIPE || errno == ECONNRESET),
          "%s: write() after the reset: %s, want EPIPE or ECONNRESET", what,
          w >= 0 ? "succeeded" : strerror(errno));
    printf("ok: %s: write() after the reset -> %s\n", what, strerror(errno));
    close(rfd);
}

int main(int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: %s\n", prog_name);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    watchdog(WATCHDOG_S);
    for (int fam = 0; fam < 2; fam++) {
        int family = fam ? AF_INET6 : AF_INET;
        if (!family_usable(family, "the IPv6 cases"))
            continue;
        run_case(family, CLIENT_RESETS, false, false);
        run_case(family, SERVER_RESETS, false, false);
    }
    run_case(AF_INET, CLIENT_RESETS, true, false);
    run_case(AF_INET, SERVER_RESETS, true, false);
    run_case(AF_INET, CLIENT_RESETS, false, true);
    run_case(AF_INET, SERVER_RESETS, false, true);
    printf("PASS: %s\n", prog_name);
    return 0;
}
