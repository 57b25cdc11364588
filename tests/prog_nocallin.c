/*
 * prog_nocallin: a program that never calls in after connect() -- its only
 * thread blocked in something that is not a socket call -- still has its
 * connection served: the peer's data acknowledged, keepalives answered,
 * the connection kept; its bytes all there once it reads.
 *
 *   prog_nocallin RUDP_STAT   RUDP_STAT: the path of tools/rudp-stat, run
 *                             under the shim only (kernel TCP's side is
 *                             read from /proc/net)
 *
 * A guard for running the protocol in the application's thread when it
 * calls read, recv, poll or epoll on a bridge (the engine thread then the
 * safety net, as OpenOnload's): a program that calls nothing must not
 * find its connection held hostage.
 *
 * The parent is the receiver. It forks the peer (before any socket: each
 * has its own engine under the shim), connects to the peer's listener,
 * says it is about to block (a byte on a pipe) and blocks in read() on
 * another pipe until the peer says go: no socket call of its own, so only
 * its transport (the kernel's TCP, the shim's engine thread) can answer.
 * The peer, in the other process, sends nothing before it heard that
 * byte and saw the receiver in read() (below), then:
 *
 *   (a) writes SENT bytes (a pattern; within what the receiver's buffers
 *       hold: the bridge or socket buffer, the window) and waits, bounded,
 *       until its counters say all were acknowledged: SIOCOUTQ 0,
 *       tcpi_unacked 0 and tcpi_bytes_acked up by exactly SENT. It reads the
 *       receiver's side from outside: its transport holds SENT bytes (under
 *       the shim rudp-stat of the receiver's pid, "recv SENT"; over kernel
 *       TCP /proc/net/tcp's rx_queue of its socket, SENT unread).
 *   (b) stays silent itself for longer than the idle timeout: under the
 *       shim RUDP_IDLE_TIMEOUT + 0.5 s (the script sets it and RUDP_KEEPALIVE
 *       short, checked here); over kernel TCP 2.5 s, both sockets having
 *       SO_KEEPALIVE, TCP_KEEPIDLE 1, TCP_KEEPINTVL 1, TCP_KEEPCNT 1 (an
 *       unanswered probe ends them in 2 s). Keepalives answered, counted:
 *       under the shim the receiver's engine (rudp-stat --verbose of its
 *       pid, "datagrams out N in M": its only connection) sent and received
 *       at least silence / idle timeout datagrams each during the silence,
 *       as many as the idle timers of both ends need to live; over kernel
 *       TCP /proc/net/netstat's TcpExt TCPKeepAlive (probes sent, the whole
 *       network namespace's) rose. After it the connection is still
 *       ESTABLISHED with SO_ERROR 0 at the peer, and at the receiver's
 *       engine under the shim.
 *   Before, between and after these, /proc/PID/syscall of the receiver
 *   (where the kernel lets us read it: root, or ptrace allowed) says its
 *   thread is in read() on the pipe: it never called in.
 *   (c) says go. The receiver finds every byte waiting (SIOCINQ SENT),
 *       reads them, checks each against the pattern and answers with the
 *       count and their FNV-1a checksum, which the peer compares with its
 *       own; the peer sends "bye" and shuts down; the receiver reads "bye"
 *       and EOF. The connection worked both ways after the silence.
 *
 * A machine that leaves both processes unscheduled for longer than the
 * shim's idle timeout ends the connection at both ends as they wake (its
 * idle timer counts wall-clock silence, the local stall included): the
 * failures say how late the peer itself woke, to tell that apart.
 *
 * Every wait is bounded. Prints "transport: KIND" for both ends and "ok:"
 * lines with the counters; exit 0 iff every check held; 1 with a "FAIL:"
 * line otherwise; 2 on bad usage; 3 if the watchdog (60 s) fired.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 60
#define EVENT_MS 10000 /* a bound on every wait for an event: a busy machine stalls seconds */
#define SENT 40000      /* well within a first window and a socket buffer, TCP's and ours */
#define TCP_SILENCE_MS 2500 /* > kernel TCP's 2 s: 1 s idle, 1 probe unanswered for 1 s */
#define SILENCE_MORE_MS 500 /* the shim's: its idle timeout and this */
#define IDLE_MAX_MS 10000    /* the longest idle timeout the script may give (test time) */
#define STAT_CAP 65536
#define TCPS_ESTABLISHED 1 /* include/net/tcp_states.h */

const char *prog_name = "prog_nocallin";
static pid_t child = -1;

static void kill_child(void)
{
    if (child > 0)
        kill(child, SIGKILL);
}

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

#define FNV_START 0xcbf29ce484222325ull

/* ---- counters read from outside the receiver ---- */

static struct tcp_info tcp_info_of(int fd)
{
    struct tcp_info ti;
    socklen_t l = sizeof ti;
    memset(&ti, 0, sizeof ti);
    SYS(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l));
    CHECK(l >= offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof ti.tcpi_bytes_acked,
          "TCP_INFO gave %u bytes, no tcpi_bytes_acked", (unsigned)l);
    return ti;
}

static int outq(int fd)
{
    int q = -1;
    SYS(ioctl(fd, SIOCOUTQ, &q));
    return q;
}

/* A duration as the shim's variables take it ("300ms", "1s", "1200ms"), in
 * ms; -1 if missing or not one of these forms. */
static long env_ms(const char *name)
{
    const char *v = getenv(name);
    char *end;
    if (!v || !*v)
        return -1;
    long n = strtol(v, &end, 10);
    if (end == v || n <= 0)
        return -1;
    if (!strcmp(end, "ms"))
        return n;
    if (!strcmp(end, "s"))
        return n * 1000;
    return -1;
}

/* tools/rudp-stat --verbose PID, its output in out (NUL-terminated); it
 * must exit 0 within EVENT_MS + 2 s (its own deadline is 5 s). Run
 * without the shim (a plain program), the fds of ours close-on-exec. */
static void rudp_stat(const char *tool, pid_t pid, char *out, size_t cap)
{
    int p[2];
    SYS(pipe2(p, O_CLOEXEC));
    char pids[24];
    snprintf(pids, sizeof pids, "%d", (int)pid);
    pid_t k = fork();
    SYS(k);
    if (k == 0) {
        dup2(p[1], 1);
        char *argv[] = {(char *)tool, "--verbose", pids, NULL};
        execve(tool, argv, env_without_preload());
        _exit(127);
    }
    close(p[1]);
    size_t have = 0;
    for (;;) {
        CHECK(poll_for(p[0], POLLIN, EVENT_MS), "rudp-stat %s: no output within %d ms", pids,
              EVENT_MS);
        ssize_t r = read(p[0], out + have, cap - 1 - have);
        if (r < 0 && errno == EINTR)
            continue;
        SYS(r);
        if (r == 0)
            break;
        have += (size_t)r;
        CHECK(have < cap - 1, "rudp-stat %s: more than %zu bytes", pids, cap);
    }
    out[have] = 0;
    close(p[0]);
    int st = reap_within(k, EVENT_MS + 2000, "rudp-stat");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "rudp-stat %s exited with status %#x:\n%s",
          pids, st, out);
}

/* The receiver's connection in rudp-stat's report: its state (the first
 * word of its line, "ESTAB") and its "recv" bytes; it must be the
 * process's only one. */
static void stat_conn(const char *rep, char *state, size_t scap, unsigned long long *recv)
{
    int conns = 0;
    *recv = 0;
    snprintf(state, scap, "none");
    for (const char *ln = rep; *ln; ln = strchr(ln, '\n') ? strchr(ln, '\n') + 1 : "") {
        if (!strncmp(ln, "counters:", 9))
            break;
        if (*ln == ' ' || !strncmp(ln, "pid ", 4) || !strncmp(ln, "LISTEN ", 7) || *ln == '\n')
            continue;
        conns++;
        size_t w = strcspn(ln, " \n");
        snprintf(state, scap, "%.*s", (int)(w < scap - 1 ? w : scap - 1), ln);
        const char *keys = strchr(ln, '\n');
        const char *r = keys ? strstr(keys, " recv ") : NULL;
        CHECK(r && sscanf(r, " recv %llu", recv) == 1, "rudp-stat: no recv after the "
              "connection line:\n%s", rep);
    }
    CHECK(conns == 1, "rudp-stat: %d connections in the receiver, not its one:\n%s", conns, rep);
}

/* The receiver engine's "datagrams out N in M" (rudp-stat --verbose). */
static void stat_dgrams(const char *rep, unsigned long long *out, unsigned long long *in)
{
    const char *d = strstr(rep, "datagrams out ");
    CHECK(d && sscanf(d, "datagrams out %llu in %llu", out, in) == 2,
          "rudp-stat: no 'datagrams out N in M':\n%s", rep);
}

/* /proc/net/tcp's rx_queue of the connection from local port lport to
 * rport (established): the bytes its receiver has not read. */
static unsigned long tcp_rx_queue(unsigned lport, unsigned rport)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    CHECK(f, "/proc/net/tcp: %s", strerror(errno));
    char ln[512];
    long found = -1;
    while (fgets(ln, sizeof ln, f)) {
        unsigned lp, rp, st;
        unsigned long tx, rx;
        if (sscanf(ln, " %*u: %*x:%x %*x:%x %x %lx:%lx", &lp, &rp, &st, &tx, &rx) == 5 &&
            lp == lport && rp == rport && st == TCPS_ESTABLISHED)
            found = (long)rx;
    }
    fclose(f);
    CHECK(found >= 0, "/proc/net/tcp: no established connection %u -> %u", lport, rport);
    return (unsigned long)found;
}

/* /proc/net/netstat's TcpExt TCPKeepAlive: keepalive probes sent in this
 * network namespace (LINUX_MIB_TCPKEEPALIVE, tcp_keepalive_timer()). */
static unsigned long long keepalives_sent(void)
{
    FILE *f = fopen("/proc/net/netstat", "r");
    CHECK(f, "/proc/net/netstat: %s", strerror(errno));
    static char names[8192], values[8192];
    long long v = -1;
    while (fgets(names, sizeof names, f) && fgets(values, sizeof values, f)) {
        if (strncmp(names, "TcpExt:", 7) || strncmp(values, "TcpExt:", 7))
            continue;
        char *sn, *sv;
        char *n = strtok_r(names + 7, " \n", &sn), *x = strtok_r(values + 7, " \n", &sv);
        for (; n && x; n = strtok_r(NULL, " \n", &sn), x = strtok_r(NULL, " \n", &sv))
            if (!strcmp(n, "TCPKeepAlive"))
                v = atoll(x);
    }
    fclose(f);
    CHECK(v >= 0, "/proc/net/netstat: no TcpExt TCPKeepAlive");
    return (unsigned long long)v;
}

/* Whether the receiver's thread is where it should be, blocked in read()
 * on the pipe fd rfd: /proc/PID/syscall's number and first argument. 1:
 * it is; 0: the kernel does not let us read it (not root, ptrace denied);
 * anything else fails, naming what it was doing, unless wait_ms: then it
 * is asked again every 2 ms until it is, wait_ms at most (it said it
 * would be, and may still be on its way: returning from write()). */
static int receiver_in_read(pid_t pid, int rfd, const char *when, int wait_ms)
{
    char path[64], ln[256];
    snprintf(path, sizeof path, "/proc/%d/syscall", (int)pid);
    double t0 = now_s();
    for (;;) {
        if (read_small(path, ln, sizeof ln) < 0)
            return 0;
        long nr;
        unsigned long a0;
        if (sscanf(ln, "%ld %lx", &nr, &a0) == 2 && nr == SYS_read && a0 == (unsigned long)rfd)
            return 1;
        CHECK(now_s() - t0 < wait_ms / 1000.0,
              "%s: the receiver is not blocked in read() on its pipe (fd %d): /proc/%d/syscall "
              "says %s", when, rfd, (int)pid, ln);
        poll(NULL, 0, 2);
    }
}

static void keepalive_opts(int fd)
{
    setsockopt_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
    setsockopt_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, 1);
    setsockopt_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, 1);
    setsockopt_int(fd, IPPROTO_TCP, TCP_KEEPCNT, 1);
}

/* The longest the peer woke past a nap's end: how long a loaded machine
 * left it unscheduled. Told with the failures it explains: a stall of both
 * processes longer than the idle timeout ends a rudp connection at both
 * ends as they wake (the idle timer is wall-clock silence), which is not
 * a receiver left unserved. */
static double late_max;

/* Sleeps ms, in naps of at most NAP_MS, noting how late each ended. */
#define NAP_MS 50
static void nap(long ms)
{
    double end = now_s() + (double)ms / 1000;
    for (double left; (left = end - now_s()) > 0;) {
        if (left > NAP_MS / 1000.0)
            left = NAP_MS / 1000.0;
        double due = now_s() + left;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(left * 1e9)};
        nanosleep(&ts, NULL);
        double late = now_s() - due;
        if (late > late_max)
            late_max = late;
    }
}

/* ---- the peer ---- */

/* What the peer knows of the connection and of the receiver. */
typedef struct {
    int a;                  /* the accepted connection */
    unsigned lport, rport;  /* the listener's port, the receiver's */
    int shim;               /* a bridge (under the shim), else kernel TCP */
    long idle_ms;           /* the shim's RUDP_IDLE_TIMEOUT */
    long silence_ms;        /* longer than the idle timeout */
    pid_t rpid;             /* the receiver ... */
    int rfd;                /* ... and its pipe as it numbers it */
    const char *tool;       /* rudp-stat */
    int seen;               /* times /proc/PID/syscall said read(rfd) */
    uint64_t sum;           /* FNV-1a of the bytes sent */
    unsigned long long out0, in0, ka0; /* counters as the silence began */
} peer_st;

static char rep[STAT_CAP]; /* rudp-stat's last report */

/* Listens, tells the receiver the port, accepts its connection. */
static void peer_accept(peer_st *p, int port_w)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    SYS(l);
    CHECK(listen_lo_at(l, 0, 1) == 0, "listen: %s", strerror(errno));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    SYS(getsockname(l, (struct sockaddr *)&ss, &sl));
    p->lport = port_of(&ss);
    write_exact(port_w, &p->lport, sizeof p->lport);
    CHECK(poll_for(l, POLLIN, EVENT_MS) & POLLIN, "no connection within %d ms", EVENT_MS);
    p->a = accept4(l, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
    SYS(p->a);
    close(l);
    p->rport = port_of(&ss);
    keepalive_opts(p->a);
    const char *kind = fd_transport(p->a);
    printf("transport: %s\n", kind);
    p->shim = !strcmp(kind, "unix");
    if (p->shim) {
        p->idle_ms = env_ms("RUDP_IDLE_TIMEOUT");
        long ka = env_ms("RUDP_KEEPALIVE");
        CHECK(p->idle_ms > 0 && p->idle_ms <= IDLE_MAX_MS && ka > 0 && ka * 2 <= p->idle_ms,
              "under the shim RUDP_IDLE_TIMEOUT (at most %d ms) and RUDP_KEEPALIVE (at most half "
              "of it) must be set, as ms or s", IDLE_MAX_MS);
        p->silence_ms = p->idle_ms + SILENCE_MORE_MS;
    } else {
        p->silence_ms = TCP_SILENCE_MS;
    }
}

/* (a) SENT bytes written and acknowledged while the receiver calls
 * nothing; its transport holds them. */
static void peer_acked(peer_st *p)
{
    struct tcp_info t0 = tcp_info_of(p->a), t;
    static unsigned char buf[SENT];
    for (size_t i = 0; i < SENT; i++)
        buf[i] = pattern_byte(i);
    p->sum = fnv1a(FNV_START, buf, SENT);
    write_exact(p->a, buf, SENT);
    int q, polls = 0;
    double w0 = now_s();
    for (;;) {
        t = tcp_info_of(p->a);
        q = outq(p->a);
        if (q == 0 && t.tcpi_unacked == 0 && t.tcpi_bytes_acked - t0.tcpi_bytes_acked == SENT)
            break;
        CHECK(now_s() - w0 < EVENT_MS / 1000.0,
              "the receiver, blocked elsewhere, left the peer's bytes unacknowledged for %d ms: "
              "SIOCOUTQ %d, tcpi_unacked %u, tcpi_bytes_acked +%llu of %d, SO_ERROR %d (the "
              "peer itself woke up to %.1f s late meanwhile)", EVENT_MS, q, t.tcpi_unacked,
              (unsigned long long)(t.tcpi_bytes_acked - t0.tcpi_bytes_acked), SENT,
              so_error(p->a), late_max);
        polls++;
        nap(2);
    }
    printf("ok: (a) %d bytes written, all acknowledged while the receiver was blocked in read() "
           "on a pipe: SIOCOUTQ %d, tcpi_unacked %u, tcpi_bytes_acked +%llu (%d polls)\n",
           SENT, q, t.tcpi_unacked,
           (unsigned long long)(t.tcpi_bytes_acked - t0.tcpi_bytes_acked), polls);
    p->seen += receiver_in_read(p->rpid, p->rfd, "once acknowledged", 0);
    char state[32];
    unsigned long long got;
    if (p->shim) {
        rudp_stat(p->tool, p->rpid, rep, sizeof rep);
        stat_conn(rep, state, sizeof state, &got);
        CHECK(!strcmp(state, "ESTAB") && got == SENT, "the receiver's engine: %s, recv %llu of %d",
              state, got, SENT);
        stat_dgrams(rep, &p->out0, &p->in0);
        printf("ok: (a) the receiver's engine has them (rudp-stat: %s, recv %llu)\n", state, got);
    } else {
        got = tcp_rx_queue(p->rport, p->lport);
        CHECK(got == SENT, "the receiver's socket holds %llu unread bytes, not %d", got, SENT);
        p->ka0 = keepalives_sent();
        printf("ok: (a) the receiver's socket has them (/proc/net/tcp rx_queue %llu)\n", got);
    }
}

/* (b) a silence longer than the idle timeout: only keepalives, answered
 * by the receiver's transport, keep the connection. */
static void peer_silence(peer_st *p)
{
    double s0 = now_s();
    late_max = 0;
    nap(p->silence_ms);
    double silent = now_s() - s0;
    p->seen += receiver_in_read(p->rpid, p->rfd, "after the silence", 0);
    struct tcp_info t = tcp_info_of(p->a);
    int err = so_error(p->a);
    CHECK(t.tcpi_state == TCPS_ESTABLISHED && err == 0,
          "after %.1f s of silence the peer's connection is in TCP state %u, SO_ERROR %d (%s): "
          "the receiver's end let it die (the peer itself woke up to %.1f s late meanwhile)",
          silent, t.tcpi_state, err, strerror(err), late_max);
    if (p->shim) {
        char state[32];
        unsigned long long got, out1, in1;
        rudp_stat(p->tool, p->rpid, rep, sizeof rep);
        stat_conn(rep, state, sizeof state, &got);
        stat_dgrams(rep, &out1, &in1);
        unsigned long long need = (unsigned long long)(p->silence_ms / p->idle_ms);
        CHECK(!strcmp(state, "ESTAB"), "the receiver's engine says %s after the silence", state);
        CHECK(out1 - p->out0 >= need && in1 - p->in0 >= need,
              "in %.1f s of silence (idle timeout %ld ms) the receiver's engine sent %llu and "
              "received %llu datagrams: keepalives not answered (%llu each needed)", silent,
              p->idle_ms, out1 - p->out0, in1 - p->in0, need);
        printf("ok: (b) %.1f s silent, idle timeout %ld ms: the receiver's engine sent %llu and "
               "received %llu datagrams meanwhile (rudp-stat); both ends ESTABLISHED, SO_ERROR 0 "
               "(the peer woke up to %.2f s late)\n",
               silent, p->idle_ms, out1 - p->out0, in1 - p->in0, late_max);
    } else {
        unsigned long long ka1 = keepalives_sent();
        CHECK(ka1 > p->ka0, "no keepalive probe sent in %.1f s (TCPKeepAlive %llu)", silent, ka1);
        printf("ok: (b) %.1f s silent, keepalive 1 s, 1 probe unanswered ends it: %llu probes "
               "sent meanwhile (TCPKeepAlive, the namespace's); ESTABLISHED, SO_ERROR 0\n",
               silent, ka1 - p->ka0);
    }
    if (p->seen)
        printf("ok: the receiver's thread was in read() on its pipe all %d times we looked "
               "(/proc/%d/syscall)\n", p->seen, (int)p->rpid);
    else
        printf("note: /proc/%d/syscall not readable here: the receiver's blocking in read() on "
               "its pipe is the program's construction\n", (int)p->rpid);
}

/* (c) go: the receiver reads it all and answers; "bye" and EOF back. */
static void peer_answer(peer_st *p, int go_w)
{
    write_exact(go_w, "g", 1);
    char reply[48], want[48];
    snprintf(want, sizeof want, "got %06d fnv %016llx\n", SENT, (unsigned long long)p->sum);
    read_exact(p->a, reply, strlen(want), EVENT_MS);
    reply[strlen(want)] = 0;
    CHECK(!strcmp(reply, want), "the receiver answered '%.*s', not '%.*s'",
          (int)strlen(want) - 1, reply, (int)strlen(want) - 1, want);
    write_exact(p->a, "bye", 3);
    SYS(shutdown(p->a, SHUT_WR));
    char rest[8];
    CHECK(read_to_eof(p->a, rest, sizeof rest, EVENT_MS) == 0, "bytes after the receiver's answer");
    close(p->a);
    printf("ok: (c) the receiver's answer matched (%d bytes, fnv %016llx); 'bye' sent back\n",
           SENT, (unsigned long long)p->sum);
}

static void peer(pid_t rpid, int rfd, int port_w, int ready_r, int go_w, const char *tool)
{
    peer_st p = {.rpid = rpid, .rfd = rfd, .tool = tool, .idle_ms = -1};
    peer_accept(&p, port_w);
    /* the receiver's last call before it blocks: nothing is sent before */
    char ready;
    read_exact(ready_r, &ready, 1, EVENT_MS);
    CHECK(ready == 'r', "the receiver said '%c'", ready);
    p.seen = receiver_in_read(rpid, rfd, "once it said it blocks", EVENT_MS);
    peer_acked(&p);
    peer_silence(&p);
    peer_answer(&p, go_w);
    exit(0);
}

/* ---- the receiver ---- */

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s RUDP_STAT\n", prog_name);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    watchdog(WATCHDOG_S);
    int port_p[2], ready_p[2], go_p[2];
    SYS(pipe2(port_p, O_CLOEXEC));
    SYS(pipe2(ready_p, O_CLOEXEC));
    SYS(pipe2(go_p, O_CLOEXEC));
    pid_t me = getpid();
    SYS(child = fork());
    if (child == 0) {
        close(port_p[0]);
        close(ready_p[1]);
        close(go_p[0]);
        peer(me, go_p[0], port_p[1], ready_p[0], go_p[1], argv[1]);
    }
    prog_on_fail = kill_child;
    close(port_p[1]);
    close(ready_p[0]);
    close(go_p[1]);
    unsigned port;
    read_exact(port_p[0], &port, sizeof port, EVENT_MS);
    close(port_p[0]);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    SYS(c);
    keepalive_opts(c);
    struct sockaddr_in sin = ipv4_addr("127.0.0.1", port);
    SYS(connect(c, (struct sockaddr *)&sin, sizeof sin));
    printf("transport: %s\n", fd_transport(c));

    /* From here until the peer says go, one call: read() on a pipe, right
     * after saying so on another. The peer sends nothing before, and
     * checks it (/proc/PID/syscall) with the fd number it had. */
    double b0 = now_s();
    write_exact(ready_p[1], "r", 1);
    char go;
    ssize_t r;
    do
        r = read(go_p[0], &go, 1);
    while (r < 0 && errno == EINTR);
    double blocked = now_s() - b0;
    if (r != 1) {
        int st = reap_within(child, EVENT_MS, "the peer");
        child = -1;
        CHECK(0, "the peer ended (status %#x) without saying go", st);
    }
    CHECK(go == 'g', "the peer said '%c'", go);

    int inq = -1;
    SYS(ioctl(c, SIOCINQ, &inq));
    CHECK(inq == SENT, "after %.1f s blocked elsewhere the socket holds %d bytes, not the peer's %d",
          blocked, inq, SENT);
    static unsigned char buf[SENT];
    read_exact(c, buf, SENT, EVENT_MS);
    for (size_t i = 0; i < SENT; i++)
        CHECK(buf[i] == pattern_byte(i), "byte %zu of %d differs", i, SENT);
    uint64_t sum = fnv1a(FNV_START, buf, SENT);
    char reply[48];
    int n = snprintf(reply, sizeof reply, "got %06d fnv %016llx\n", SENT, (unsigned long long)sum);
    write_exact(c, reply, (size_t)n);
    char bye[8];
    size_t k = read_to_eof(c, bye, sizeof bye, EVENT_MS);
    CHECK(k == 3 && !memcmp(bye, "bye", 3), "after the answer the peer sent %zu bytes '%.*s', "
          "not 'bye' and EOF", k, (int)k, bye);
    close(c);
    int st = reap_within(child, EVENT_MS, "the peer");
    child = -1;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the peer ended with status %#x", st);
    printf("ok: (c) blocked %.1f s, then SIOCINQ %d: every byte there, read intact (fnv %016llx), "
           "answered; the peer's 'bye' and EOF read\n", blocked, inq, (unsigned long long)sum);
    return 0;
}
