/*
 * prog_xgroup.c: a SO_REUSEPORT group whose members are in two processes.
 *
 *  1. 20 connections to a listener of this process carry data both ways
 *     after a listener in another process (forked before any connection)
 *     joined the group: the kernel's hash now gives some of their
 *     datagrams to the new member (kernel TCP: every connection has its
 *     own socket, all 20 carry on);
 *  2. clients of a group of two listeners in two processes; the other
 *     process is killed (SIGKILL) while its clients are connected: each of
 *     them is ended, a write failing with EPIPE or ECONNRESET within a
 *     bounded time (kernel TCP: the dead process's sockets send a FIN, the
 *     next segment gets the RST of the survivor's stack, the write after
 *     that EPIPE), and the survivor's clients carry on.
 *  3. a member that stops listening (close(), then shutdown(SHUT_RD) as
 *     haproxy's and nginx's reloads pause theirs) while it still serves a
 *     client: every new client reaches the other member (kernel TCP: the
 *     listener left the group, its connection has a socket of its own),
 *     none refused; and the client it holds carries on, 2 MB in flight
 *     across the stop; again with a connection A closed first whose
 *     client never closes (it cannot move: A's socket stays a second at
 *     most, its new clients unanswered, then asked again).
 * Each check prints one "ok:" line; exit 0 iff every check held.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

#define EVENT_MS 10000
#define JOIN_CONNS 20
/* What each of them sends after the join: 4 MB, 80 MB in all (the load
 * under which the member's datagram socket dropped 5 to 10% of what was
 * forwarded to it, net.unix.max_dgram_qlen; now a connected
 * SOCK_SEQPACKET socket, see t_prog_xgroup.sh) */
#define BULK_BYTES (4 * 1000 * 1000)
#define KILL_CONNS 24
/* How long a client of the killed member may take to see its end: the
 * shim's reset comes at the next datagram; its keepalive and idle
 * timeouts are far longer. */
#define END_MS 8000

const char *prog_name = "prog_xgroup";

static pid_t child = -1;

static void kill_child(void)
{
    if (child > 0)
        kill(child, SIGKILL);
}

static int tcp_socket(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    SYS(s);
    SYS(setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one));
    return s;
}

static void wait_byte(int fd, char want, const char *what)
{
    char b = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    CHECK(poll(&p, 1, EVENT_MS) == 1, "%s: nothing within %d ms", what, EVENT_MS);
    CHECK(read(fd, &b, 1) == 1, "%s: read: %s", what, strerror(errno));
    CHECK(b == want, "%s: read %d, want %c", what, b, want);
}

/* The other process's member: once go is readable, listens on port,
 * says 'r' on ready, then answers each connection it accepts with 'b' and
 * keeps it, until stop is readable (or it is killed). */
static void member_b(unsigned port, int go, int ready, int stop)
{
    char b;
    if (read(go, &b, 1) != 1)
        _exit(1);
    int l = tcp_socket();
    bind_lo(l, port);
    SYS(listen(l, 64));
    CHECK(write(ready, "r", 1) == 1, "B: ready: %s", strerror(errno));
    for (;;) {
        struct pollfd p[2] = {{.fd = l, .events = POLLIN}, {.fd = stop, .events = POLLIN}};
        SYS(poll(p, 2, -1));
        if (p[1].revents)
            exit(0); /* not _exit: with RUDP_STATS=1 the shim prints its counters */
        if (p[0].revents & POLLIN) {
            int a = accept(l, NULL, NULL);
            SYS(a);
            CHECK(write(a, "b", 1) == 1, "B: write: %s", strerror(errno));
        }
    }
}

/* Forks member B on port, closing A's listener `la` (-1: none) there, so
 * that A's close() is the last; *go, *stop: its pipes' write ends. */
static void start_b_closing(unsigned port, int la, int *go, int *stop, int *ready)
{
    int g[2], s[2], r[2];
    SYS(pipe(g));
    SYS(pipe(s));
    SYS(pipe(r));
    child = fork();
    SYS(child);
    if (child == 0) {
        close(g[1]), close(s[1]), close(r[0]);
        if (la >= 0)
            close(la);
        member_b(port, g[0], r[1], s[0]);
    }
    close(g[0]), close(s[0]), close(r[1]);
    *go = g[1], *stop = s[1], *ready = r[0];
}

/* Forks member B on port; *go, *stop: its pipes' write ends. */
static void start_b(unsigned port, int *go, int *stop, int *ready)
{
    start_b_closing(port, -1, go, stop, ready);
}

static void b_ready(int ready)
{
    struct pollfd p = {.fd = ready, .events = POLLIN};
    CHECK(poll(&p, 1, EVENT_MS) == 1, "B never listened");
    char b;
    CHECK(read(ready, &b, 1) == 1 && b == 'r', "B: ready");
}

static void end_b(int go, int stop, int ready)
{
    close(stop);
    close(go);
    close(ready);
    int st = reap_within(child, EVENT_MS, "member B");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "member B ended with status %d", st);
    child = -1;
}

/* Each c[i] sends BULK_BYTES to a[i], all at once; each poll bounded. */
static void bulk(int *c, int *a, int n)
{
    static char buf[65536];
    size_t left[JOIN_CONNS], got[JOIN_CONNS];
    struct pollfd p[2 * JOIN_CONNS];
    for (int i = 0; i < n; i++) {
        left[i] = BULK_BYTES, got[i] = 0;
        SYS(fcntl(c[i], F_SETFL, O_NONBLOCK));
        SYS(fcntl(a[i], F_SETFL, O_NONBLOCK));
    }
    for (int done = 0; done < n;) {
        int np = 0;
        for (int i = 0; i < n; i++) {
            if (left[i])
                p[np++] = (struct pollfd){.fd = c[i], .events = POLLOUT};
            if (got[i] < BULK_BYTES)
                p[np++] = (struct pollfd){.fd = a[i], .events = POLLIN};
        }
        int r = poll(p, (nfds_t)np, EVENT_MS);
        SYS(r);
        CHECK(r > 0, "bulk after the join: nothing moved within %d ms (%d of %d done)", EVENT_MS,
              done, n);
        for (int i = 0; i < n; i++) {
            if (left[i]) {
                ssize_t w = write(c[i], buf, left[i] < sizeof buf ? left[i] : sizeof buf);
                CHECK(w > 0 || errno == EAGAIN, "bulk: write %d: %s", i, strerror(errno));
                if (w > 0)
                    left[i] -= (size_t)w;
            }
            while (got[i] < BULK_BYTES) {
                ssize_t g = read(a[i], buf, sizeof buf);
                CHECK(g != 0, "bulk: connection %d ended after %zu bytes", i, got[i]);
                if (g < 0) {
                    CHECK(errno == EAGAIN, "bulk: read %d: %s", i, strerror(errno));
                    break;
                }
                got[i] += (size_t)g;
                if (got[i] == BULK_BYTES)
                    done++;
            }
        }
    }
}

static void check_join(int with_bulk)
{
    int la = tcp_socket();
    unsigned port = bind_lo(la, 0);
    int go, stop, ready;
    start_b(port, &go, &stop, &ready); /* before any connection: it holds none */
    SYS(listen(la, 64));
    int c[JOIN_CONNS], a[JOIN_CONNS];
    for (int i = 0; i < JOIN_CONNS; i++) {
        c[i] = connect_lo(port);
        a[i] = accept_ready(la, EVENT_MS);
    }
    printf("transport: %s (client), %s (accepted)\n", fd_transport(c[0]), fd_transport(a[0]));
    CHECK(write(go, "g", 1) == 1, "go: %s", strerror(errno));
    b_ready(ready);
    int alive = 0;
    for (int i = 0; i < JOIN_CONNS; i++) {
        char what[48];
        snprintf(what, sizeof what, "connection %d after the join", i);
        CHECK(write(c[i], "x", 1) == 1, "%s: write: %s", what, strerror(errno));
        wait_byte(a[i], 'x', what);
        CHECK(write(a[i], "y", 1) == 1, "%s: answer: %s", what, strerror(errno));
        wait_byte(c[i], 'y', what);
        alive++;
    }
    printf("ok: %d of %d connections to a listener carry data both ways after a listener of "
           "another process joined its SO_REUSEPORT group\n", alive, JOIN_CONNS);
    if (with_bulk)
        bulk(c, a, JOIN_CONNS);
    for (int i = 0; i < JOIN_CONNS; i++) {
        close(c[i]);
        close(a[i]);
    }
    close(la);
    end_b(go, stop, ready);
    if (with_bulk)
        printf("ok: %d MB sent over them after the join all arrived\n",
               JOIN_CONNS * BULK_BYTES / 1000000);
}

/* Writes 'x' to c until a write fails (waiting up to 100 ms for the
 * connection to say something between writes), within END_MS; returns the
 * errno of the failed write. */
static int write_until_refused(int c, int i)
{
    double end = now_s() + END_MS / 1000.0;
    while (now_s() < end) {
        ssize_t w = write(c, "x", 1);
        if (w < 0)
            return errno;
        struct pollfd p = {.fd = c, .events = POLLIN};
        if (poll(&p, 1, 100) == 1) {
            char b[16];
            ssize_t r = read(c, b, sizeof b);
            if (r < 0)
                return errno;
        }
    }
    failf(__LINE__, "client %d of the killed member: still up after %d ms", i, END_MS);
}

/* A process of uid 65534 binding every free name of the group on port
 * (tags 1..63); says how many on *ready ('n' count as a byte), then
 * whether any datagram came to them within SQUAT_MS after go ('0' or
 * '1'). */
#define SQUAT_MS 1500
static void squatter(unsigned port, int go, int report)
{
    if (setgid(65534) < 0 || setuid(65534) < 0) {
        char no = 0;
        if (write(report, &no, 1) != 1)
            _exit(1);
        _exit(0);
    }
    /* the members' names: abstract SOCK_SEQPACKET listeners (a name is
     * unique per socket type; shim/ports/xgroup.c) */
    struct pollfd p[63 + 128];
    int n = 0;
    for (unsigned tag = 1; tag <= 63; tag++) {
        int u = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0);
        SYS(u);
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        int len = snprintf(un.sun_path + 1, sizeof un.sun_path - 1,
                           "rudp-xgroup 127.0.0.1 %u %u", port, tag);
        socklen_t ul = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)len);
        if (bind(u, (struct sockaddr *)&un, ul) == 0 && listen(u, 64) == 0)
            p[n++] = (struct pollfd){.fd = u, .events = POLLIN};
        else
            close(u);
    }
    int nl = n;
    char cnt = (char)n;
    CHECK(write(report, &cnt, 1) == 1, "squatter: report");
    char b;
    CHECK(read(go, &b, 1) == 1, "squatter: go");
    /* a member may connect (and hang up once it sees our uid): only a
     * datagram read counts */
    char r = '0';
    double end = now_s() + SQUAT_MS / 1000.0;
    for (double left; r == '0' && (left = end - now_s()) > 0;) {
        if (poll(p, (nfds_t)n, (int)(left * 1000) + 1) <= 0)
            break;
        for (int i = 0; i < n; i++) {
            if (!p[i].revents)
                continue;
            if (i < nl) {
                int a = accept4(p[i].fd, NULL, NULL, SOCK_NONBLOCK);
                if (a >= 0 && n < (int)(sizeof p / sizeof p[0]))
                    p[n++] = (struct pollfd){.fd = a, .events = POLLIN};
                else if (a >= 0)
                    close(a);
            } else {
                char d[2048];
                ssize_t got = recv(p[i].fd, d, sizeof d, MSG_DONTWAIT);
                if (got > 0)
                    r = '1';
                else if (got == 0 || errno != EAGAIN)
                    p[i].fd = -1; /* hung up: poll skips it */
            }
        }
    }
    CHECK(write(report, &r, 1) == 1, "squatter: report");
    _exit(0);
}

static void check_kill(int squat)
{
    int la = tcp_socket();
    unsigned port = bind_lo(la, 0);
    SYS(listen(la, 64));
    int go, stop, ready;
    start_b(port, &go, &stop, &ready);
    CHECK(write(go, "g", 1) == 1, "go: %s", strerror(errno));
    b_ready(ready);
    int c[KILL_CONNS], a[KILL_CONNS], owner[KILL_CONNS]; /* 'a' (here) or 'b' */
    int na = 0, nb = 0, got = 0;
    for (int i = 0; i < KILL_CONNS; i++) {
        c[i] = connect_lo(port);
        owner[i] = 0;
        a[i] = -1;
    }
    int acc[KILL_CONNS], nacc = 0;
    double end = now_s() + EVENT_MS / 1000.0;
    while (got < KILL_CONNS) {
        CHECK(now_s() < end, "only %d of %d clients heard from their listener", got, KILL_CONNS);
        struct pollfd p[KILL_CONNS + 1];
        p[0] = (struct pollfd){.fd = la, .events = POLLIN};
        for (int i = 0; i < KILL_CONNS; i++)
            p[i + 1] = (struct pollfd){.fd = owner[i] ? -1 : c[i], .events = POLLIN};
        SYS(poll(p, KILL_CONNS + 1, 200));
        if (p[0].revents & POLLIN) {
            int s = accept(la, NULL, NULL);
            SYS(s);
            CHECK(write(s, "a", 1) == 1, "A: write: %s", strerror(errno));
            acc[nacc++] = s;
        }
        for (int i = 0; i < KILL_CONNS; i++)
            if (p[i + 1].revents) {
                char b = 0;
                CHECK(read(c[i], &b, 1) == 1 && (b == 'a' || b == 'b'), "client %d: read %d",
                      i, b);
                owner[i] = b;
                got++;
                b == 'a' ? na++ : nb++;
            }
    }
    printf("transport: %s (client)\n", fd_transport(c[0]));
    CHECK(nb > 0 && na > 0, "the kernel gave A %d and B %d of %d clients", na, nb, KILL_CONNS);
    CHECK(nacc == na, "A accepted %d, its clients %d", nacc, na);
    /* which accepted socket belongs to which client: by a byte each */
    for (int i = 0; i < KILL_CONNS; i++)
        if (owner[i] == 'a') {
            CHECK(write(c[i], "i", 1) == 1, "client %d: write: %s", i, strerror(errno));
            for (int j = 0; j < nacc; j++) {
                struct pollfd p = {.fd = acc[j], .events = POLLIN};
                if (acc[j] >= 0 && poll(&p, 1, 0) == 1) {
                    wait_byte(acc[j], 'i', "A's accepted");
                    a[i] = acc[j];
                    acc[j] = -1;
                    break;
                }
            }
            if (a[i] < 0) { /* not there yet: wait for any */
                struct pollfd p[KILL_CONNS];
                for (int j = 0; j < nacc; j++)
                    p[j] = (struct pollfd){.fd = acc[j], .events = POLLIN};
                CHECK(poll(p, (nfds_t)nacc, EVENT_MS) == 1, "client %d's byte never came", i);
                for (int j = 0; j < nacc; j++)
                    if (p[j].revents) {
                        wait_byte(acc[j], 'i', "A's accepted");
                        a[i] = acc[j];
                        acc[j] = -1;
                    }
            }
        }
    kill(child, SIGKILL);
    int st = reap_within(child, EVENT_MS, "killed member B");
    CHECK(WIFSIGNALED(st), "member B: status %d", st);
    child = -1;
    close(go), close(stop), close(ready);
    if (squat) {
        int g[2], r[2];
        SYS(pipe(g));
        SYS(pipe(r));
        pid_t sq = fork();
        SYS(sq);
        if (sq == 0) {
            close(g[1]), close(r[0]);
            squatter(port, g[0], r[1]);
        }
        child = sq;
        close(g[0]), close(r[1]);
        char n = 0, any = 0;
        struct pollfd p = {.fd = r[0], .events = POLLIN};
        CHECK(poll(&p, 1, EVENT_MS) == 1 && read(r[0], &n, 1) == 1, "squatter: no report");
        if (n == 0) {
            printf("ok: (skipped: a squatter of another uid needs root)\n");
        } else {
            for (int i = 0; i < KILL_CONNS; i++)
                if (owner[i] == 'b')
                    CHECK(write(c[i], "x", 1) == 1 || errno == EPIPE || errno == ECONNRESET,
                          "client %d: write: %s", i, strerror(errno));
            CHECK(write(g[1], "g", 1) == 1, "squatter: go");
            CHECK(poll(&p, 1, EVENT_MS) == 1 && read(r[0], &any, 1) == 1, "squatter: no report");
            CHECK(any == '0', "a process of another uid holding the group's names got datagrams");
            printf("ok: a process of another uid holding the names of the group's members gets "
                   "none of their clients' datagrams\n");
        }
        reap_within(sq, EVENT_MS, "squatter");
        child = -1;
        close(g[1]), close(r[0]);
        for (int i = 0; i < KILL_CONNS; i++)
            if (owner[i] == 'b')
                close(c[i]);
    }
    for (int i = 0; i < KILL_CONNS; i++) {
        if (owner[i] != 'b' || squat)
            continue;
        int e = write_until_refused(c[i], i);
        CHECK(e == EPIPE || e == ECONNRESET, "client %d of the killed member: %s", i,
              strerror(e));
        close(c[i]);
    }
    for (int i = 0; i < KILL_CONNS; i++) {
        if (owner[i] != 'a')
            continue;
        CHECK(write(c[i], "x", 1) == 1, "A's client %d: write: %s", i, strerror(errno));
        wait_byte(a[i], 'x', "A's client after the kill");
        CHECK(write(a[i], "y", 1) == 1, "A's client %d: answer: %s", i, strerror(errno));
        wait_byte(c[i], 'y', "A's client after the kill");
        close(c[i]);
        close(a[i]);
    }
    close(la);
    if (!squat)
        printf("ok: every client of a group member killed with SIGKILL ended (a write failed "
               "with EPIPE or ECONNRESET), the survivor's carry on\n");
}

#define LEAVE_CLIENTS 40
#define LEAVE_BYTES (2 * 1000 * 1000)

/* Sends LEAVE_BYTES of the pattern from c to a (both non-blocking), and
 * stops listener l (how: 0 close(), 1 shutdown(SHUT_RD)) once a quarter
 * has arrived; checks every byte. */
static void pump_across_stop(int c, int a, int l, int how)
{
    static unsigned char buf[65536];
    uint64_t sent = 0, got = 0;
    int stopped = 0;
    while (got < LEAVE_BYTES) {
        if (!stopped && got >= LEAVE_BYTES / 4) {
            if (how == 0)
                SYS(close(l));
            else
                SYS(shutdown(l, SHUT_RD));
            stopped = 1;
        }
        struct pollfd p[2] = {{.fd = c, .events = sent < LEAVE_BYTES ? POLLOUT : 0},
                              {.fd = a, .events = POLLIN}};
        int r = poll(p, 2, EVENT_MS);
        SYS(r);
        CHECK(r > 0, "the held client: nothing moved within %d ms (%llu of %d bytes arrived)",
              EVENT_MS, (unsigned long long)got, LEAVE_BYTES);
        if (p[0].revents & POLLOUT) {
            size_t n = sizeof buf < LEAVE_BYTES - sent ? sizeof buf : (size_t)(LEAVE_BYTES - sent);
            for (size_t i = 0; i < n; i++)
                buf[i] = pattern_byte(sent + i);
            ssize_t w = write(c, buf, n);
            CHECK(w > 0 || errno == EAGAIN, "the held client: write: %s", strerror(errno));
            if (w > 0)
                sent += (uint64_t)w;
        }
        if (p[1].revents) {
            ssize_t g = read(a, buf, sizeof buf);
            CHECK(g != 0, "the held client: EOF after %llu bytes", (unsigned long long)got);
            CHECK(g > 0 || errno == EAGAIN, "the held client: read: %s", strerror(errno));
            for (ssize_t i = 0; i < g; i++)
                CHECK(buf[i] == pattern_byte(got + (uint64_t)i), "the held client: byte %llu "
                      "differs", (unsigned long long)(got + (uint64_t)i));
            if (g > 0)
                got += (uint64_t)g;
        }
    }
}

/* A client the kernel gives to A (listening on la, here): connects until
 * one comes; *c its end, *a A's. */
static void client_of_a(int la, unsigned port, int *c, int *a)
{
    for (int i = 0; i < 64; i++) {
        int x = connect_lo(port);
        struct pollfd p[2] = {{.fd = la, .events = POLLIN}, {.fd = x, .events = POLLIN}};
        CHECK(poll(p, 2, EVENT_MS) > 0, "client %d heard from no listener", i);
        if (p[0].revents & POLLIN) {
            *a = accept(la, NULL, NULL);
            SYS(*a);
            *c = x;
            return;
        }
        wait_byte(x, 'b', "a client of B's");
        close(x);
    }
    failf(__LINE__, "none of 64 clients reached A");
}

/* closing: A also closed a connection first whose client never closes
 * (FIN_WAIT_2: it cannot move with the rest, and holds A's port a while) */
static void check_leave(int how, int closing)
{
    const char *stop_name = how == 0 ? "close()" : "shutdown(SHUT_RD)";
    int la = tcp_socket();
    unsigned port = bind_lo(la, 0);
    SYS(listen(la, 64));
    int go, stop, ready;
    start_b_closing(port, la, &go, &stop, &ready);
    CHECK(write(go, "g", 1) == 1, "go: %s", strerror(errno));
    b_ready(ready);
    int hc, ha, yc = -1, ya;
    client_of_a(la, port, &hc, &ha);
    if (closing) {
        client_of_a(la, port, &yc, &ya);
        close(ya); /* A's FIN; its client keeps its end open */
        char b;
        CHECK(read(yc, &b, 1) == 0, "the closing client read no EOF");
    }
    SYS(fcntl(hc, F_SETFL, O_NONBLOCK));
    SYS(fcntl(ha, F_SETFL, O_NONBLOCK));
    pump_across_stop(hc, ha, la, how);
    int refused = 0, served = 0;
    for (int i = 0; i < LEAVE_CLIENTS; i++) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        SYS(c);
        struct sockaddr_in sa = ipv4_addr("127.0.0.1", port);
        if (connect(c, (struct sockaddr *)&sa, sizeof sa) < 0) {
            CHECK(errno == ECONNREFUSED, "client %d after the stop: connect: %s", i,
                  strerror(errno));
            refused++;
        } else {
            /* over rudp, as the held one (the shim's fallback to kernel
             * TCP would hide a refusal: B takes plain TCP too) */
            CHECK(strcmp(fd_transport(c), fd_transport(hc)) == 0, "client %d after the stop "
                  "went over %s, the held one over %s", i, fd_transport(c), fd_transport(hc));
            wait_byte(c, 'b', "a client after A's stop");
            served++;
        }
        close(c);
    }
    CHECK(refused == 0, "after A's %s of its listener %d of %d new clients were refused, %d "
          "served by B", stop_name, refused, LEAVE_CLIENTS, served);
    CHECK(write(ha, "y", 1) == 1, "the held client: answer: %s", strerror(errno));
    struct pollfd p = {.fd = hc, .events = POLLIN};
    CHECK(poll(&p, 1, EVENT_MS) == 1, "the held client: no answer within %d ms", EVENT_MS);
    char b = 0;
    CHECK(read(hc, &b, 1) == 1 && b == 'y', "the held client: read %d: %s", b, strerror(errno));
    close(hc);
    close(ha);
    if (yc >= 0)
        close(yc);
    if (how != 0)
        close(la);
    end_b(go, stop, ready);
    printf("ok: after a member's %s of its listener with a client held%s, %d of %d new "
           "clients reached the other member, none refused, and the held client's %d MB in "
           "flight across the stop all arrived\n", stop_name,
           closing ? " and one it closed still open" : "", served, LEAVE_CLIENTS,
           LEAVE_BYTES / 1000000);
}

int main(int argc, char **argv)
{
    /* "nobulk": without the 80 MB (t_prog_xgroup.sh's keyed runs) */
    int nobulk = argc == 2 && strcmp(argv[1], "nobulk") == 0;
    prog_begin(argc - nobulk, 60);
    prog_on_fail = kill_child;
    check_join(!nobulk);
    check_kill(0);
    check_kill(1);
    check_leave(0, 0);
    check_leave(1, 0);
    check_leave(0, 1);
    return 0;
}
