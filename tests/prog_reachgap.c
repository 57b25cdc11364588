/*
 * prog_reachgap: what a program could once tell apart under rudp-supervise
 * (issue 35, docs/reach.md "What the program can tell apart"), each case
 * run by integration/tests/reach/t_supervise_gaps.sh over kernel TCP first
 * and then supervised, where it must say the same. Built twice, as
 * prog_reach: dynamic and static (prog_reachgap_static). Each case prints
 * one line and exits 0, or says what differs and exits 1. The peer is
 * tests/prog_reach's echo server unless said.
 *
 *   opts HOST PORT [nb]   connect (non-blocking with nb), then TCP_NODELAY,
 *                         SO_KEEPALIVE, TCP_KEEPIDLE, TCP_USER_TIMEOUT and
 *                         TCP_CORK (on, then off) set and read back; SO_SNDBUF
 *                         at least TCP's default (net.ipv4.tcp_wmem);
 *                         a 1-byte echo
 *   epoll HOST PORT       a non-blocking socket registered with epoll before
 *                         connect (as nginx's upstream does): EPOLLOUT alone
 *                         with its data when connected, EPOLL_CTL_MOD and
 *                         _DEL find the registration, a 1-byte echo through
 *                         it
 *   acceptsig PORT        a thread blocks in accept(); a signal (SA_RESTART)
 *                         interrupts it once it waits; then the main thread
 *                         connects: the restarted accept() takes it (no peer)
 *   fork HOST PORT K      K children each connect and echo 100000 bytes
 *   threads HOST PORT K   the same from K threads
 *   reset PORT [accepted] listens on 127.0.0.1:PORT, connects to itself,
 *                         the accepted end closes with SO_LINGER {1, 0}:
 *                         the connecting end's read() says ECONNRESET (not
 *                         EOF), as TCP's does after the peer's RST; with
 *                         accepted, the other way round
 *   sendnb HOST PORT      a non-blocking connect, poll() for POLLOUT, then
 *                         one send() of 5000 bytes (MSG_DONTWAIT) takes
 *                         them all, as TCP's default send buffer does, with
 *                         no option or name call in between; echoed back
 *   acceptwait PORT K     K threads block in accept() on one listener; once
 *                         all are in it (/proc/self/task/TID/syscall) it
 *                         says so and reads a line on stdin, then connects
 *                         K times: each thread takes one
 *   orphan PROGRAM [ARG...]
 *                         fork; the parent exits at once; the child, once
 *                         its parent is gone, runs PROGRAM (by its path)
 *   churn PORT N          a listener and one connection to it held, then N
 *                         connections made, accepted and closed; the first
 *                         connection's peer name and TCP_NODELAY and the
 *                         listener's next accept still TCP's (the
 *                         supervisor's records once lost them after 65,536
 *                         bridges; it sweeps at 4,096)
 *   preopt PORT           TCP_NODELAY, SO_KEEPALIVE, TCP_USER_TIMEOUT and
 *                         TCP_CONGESTION (reno) set before connect to its own
 *                         listener, read back after
 *   dropcaps PORT         connected to its own listener, it drops every
 *                         capability: SO_MARK then says EPERM and a bind to
 *                         port 80 EACCES (the supervisor's privileges once
 *                         answered for it)
 *   filter PORT           connected to its own listener: SO_ATTACH_FILTER with
 *                         the filter on its stack, SO_ATTACH_BPF of fd 0
 *                         (not a BPF program) answer as TCP's
 *   emfile PORT           accept() with no fd number free (RLIMIT_NOFILE at
 *                         the lowest free one) says EMFILE; with the limit
 *                         back, the connection is there for the next one
 *   lowlimit PORT         sockets at fds 200 and 201, then RLIMIT_NOFILE
 *                         lowered to 100: listen(201) on PORT+1 and
 *                         connect(200) to its own listener on PORT both
 *                         work, as TCP's do (the supervisor cannot put its
 *                         bridge there: kernel TCP then, never a hang)
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_reachgap";

/* Every wait of a case: at most this, then it fails. */
#define WAIT_MS 10000

/* net.ipv4.tcp_wmem's default, TCP's send buffer at the start (0: unknown) */
static int tcp_wmem_default(void)
{
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_wmem", "r");
    int lo = 0, def = 0;
    if (f) {
        if (fscanf(f, "%d %d", &lo, &def) != 2)
            def = 0;
        fclose(f);
    }
    return def;
}

static int opts(const char *host, int port, int nb)
{
    int s = connect_host(host, port, nb, WAIT_MS);
    int sndbuf = getsockopt_int(s, SOL_SOCKET, SO_SNDBUF), want = tcp_wmem_default();
    setsockopt_int(s, IPPROTO_TCP, TCP_NODELAY, 1);
    setsockopt_int(s, SOL_SOCKET, SO_KEEPALIVE, 1);
    setsockopt_int(s, IPPROTO_TCP, TCP_KEEPIDLE, 30);
    setsockopt_int(s, IPPROTO_TCP, TCP_USER_TIMEOUT, 5000);
    setsockopt_int(s, IPPROTO_TCP, TCP_CORK, 1);
    int cork_on = getsockopt_int(s, IPPROTO_TCP, TCP_CORK);
    setsockopt_int(s, IPPROTO_TCP, TCP_CORK, 0);
    printf("opts: nodelay %d keepalive %d keepidle %d user_timeout %d cork %d then %d; "
           "sndbuf %s\n",
           getsockopt_int(s, IPPROTO_TCP, TCP_NODELAY), getsockopt_int(s, SOL_SOCKET, SO_KEEPALIVE),
           getsockopt_int(s, IPPROTO_TCP, TCP_KEEPIDLE), getsockopt_int(s, IPPROTO_TCP, TCP_USER_TIMEOUT),
           cork_on, getsockopt_int(s, IPPROTO_TCP, TCP_CORK),
           sndbuf >= want ? "at least TCP's default" : "smaller than TCP's default");
    if (sndbuf < want)
        fprintf(stderr, "prog_reachgap: SO_SNDBUF %d after connect, tcp_wmem's default %d\n",
                sndbuf, want);
    echo_pattern(s, 1, WAIT_MS);
    close(s);
    return 0;
}

static int epoll_case(const char *host, int port)
{
    struct sockaddr_in a = ipv4_addr(host, port);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (s < 0 || ep < 0)
        die("socket/epoll_create1");
    struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = 0x1234};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) < 0)
        die("EPOLL_CTL_ADD before connect");
    if (connect(s, (struct sockaddr *)&a, sizeof a) == 0 || errno != EINPROGRESS)
        die("connect (EINPROGRESS)");
    struct epoll_event got;
    int n = epoll_wait(ep, &got, 1, 10000);
    if (n < 0)
        die("epoll_wait");
    if (n == 0)
        differs("epoll: no event in 10 s for the socket registered before connect");
    /* TCP's connect completion is EPOLLOUT alone; a hang-up with it was
     * the unconnected socket the bridge replaced, still registered */
    if (got.data.u64 != 0x1234 || got.events != EPOLLOUT)
        differs("epoll: not EPOLLOUT alone with the registration's data");
    if (getsockopt_int(s, SOL_SOCKET, SO_ERROR) != 0)
        differs("epoll: SO_ERROR after EPOLLOUT");
    ev.events = EPOLLIN;
    if (epoll_ctl(ep, EPOLL_CTL_MOD, s, &ev) < 0)
        die("EPOLL_CTL_MOD after connect");
    if (send(s, "x", 1, MSG_NOSIGNAL) != 1)
        die("send");
    n = epoll_wait(ep, &got, 1, 10000);
    if (n != 1 || got.data.u64 != 0x1234 || !(got.events & EPOLLIN))
        differs("epoll: no EPOLLIN for the echo");
    char c;
    if (recv(s, &c, 1, 0) != 1 || c != 'x')
        differs("epoll: not the echo");
    if (epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL) < 0)
        die("EPOLL_CTL_DEL after connect");
    if (shutdown(s, SHUT_WR) < 0 || !(poll_for(s, POLLIN, WAIT_MS) & (POLLIN | POLLHUP)) ||
        recv(s, &c, 1, 0) != 0)
        differs("epoll: no EOF after the echo");
    close(s);
    close(ep);
    printf("epoll: registered before connect: EPOLLOUT with its data, EPOLL_CTL_MOD and "
           "_DEL find it\n");
    return 0;
}

/* ---- acceptsig ---- */

static atomic_int signalled;
static atomic_int accepted_fd = -1;

static void on_usr1(int sig)
{
    (void)sig;
    atomic_store(&signalled, 1);
}

static void *accepter(void *arg)
{
    int l = *(int *)arg;
    int c = accept(l, NULL, NULL); /* SA_RESTART: restarted after the signal */
    if (c < 0)
        die("accept");
    char buf[4];
    if (read(c, buf, 4) != 4 || write(c, buf, 4) != 4)
        die("accepted: echo");
    atomic_store(&accepted_fd, c);
    return NULL;
}

/* Whether thread tid waits in system call nr (/proc's syscall file). */
static int waits_in(pid_t tid, long nr)
{
    char path[64], line[64] = "";
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    if (!fgets(line, sizeof line, f))
        line[0] = 0;
    fclose(f);
    return atol(line) == nr && line[0] != '-';
}

/* accept(), or accept4() where a libc makes accept() of it */
static int waits_in_accept(pid_t tid)
{
    return waits_in(tid, SYS_accept) || waits_in(tid, SYS_accept4);
}

static atomic_int accepter_tid;

static void *accepter_main(void *arg)
{
    atomic_store(&accepter_tid, (int)syscall(SYS_gettid));
    return accepter(arg);
}

/* Polls cond for up to 10 s (a bound, not a timing). */
static int until(int (*cond)(void))
{
    for (int i = 0; i < 10000; i++) {
        if (cond())
            return 1;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static int accepter_waits(void)
{
    int t = atomic_load(&accepter_tid);
    return t && waits_in_accept(t);
}

static int got_signal(void)
{
    return atomic_load(&signalled);
}

static int acceptsig(int port)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    int l = listener_lo(port, 8);
    pthread_t t;
    if (pthread_create(&t, NULL, accepter_main, &l) != 0)
        differs("pthread_create");
    if (!until(accepter_waits))
        differs("acceptsig: the thread does not wait in accept()");
    pthread_kill(t, SIGUSR1);
    if (!until(got_signal))
        differs("acceptsig: the signal did not arrive");
    /* the restarted accept() waits again (or will: the connection waits) */
    int s = connect_lo(port);
    if (send(s, "ping", 4, MSG_NOSIGNAL) != 4)
        die("acceptsig: send");
    char buf[4];
    if (!(poll_for(s, POLLIN, WAIT_MS) & (POLLIN | POLLHUP | POLLERR)))
        differs("acceptsig: no answer in 10 s: the restarted accept() did not take the connection");
    ssize_t r = recv(s, buf, 4, MSG_WAITALL);
    if (r != 4 || memcmp(buf, "ping", 4) != 0)
        differs("acceptsig: the connection was lost (reset or EOF) after the signal");
    pthread_join(t, NULL);
    close(atomic_load(&accepted_fd));
    close(s);
    close(l);
    printf("acceptsig: a signal interrupted accept(); the restarted call took the connection\n");
    return 0;
}

/* ---- children and threads ---- */

struct peer {
    const char *host;
    int port;
};

static void *one_client(void *arg)
{
    struct peer *p = arg;
    int s = connect_host(p->host, p->port, 0, WAIT_MS);
    echo_pattern(s, 100000, WAIT_MS);
    close(s);
    return NULL;
}

static int forks(const char *host, int port, int k)
{
    struct peer p = {host, port};
    for (int i = 0; i < k; i++) {
        pid_t c = fork();
        if (c < 0)
            die("fork");
        if (c == 0) {
            one_client(&p);
            _exit(0);
        }
    }
    int ok = 0, st;
    while (wait(&st) > 0)
        ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (ok != k)
        differs("fork: a child failed");
    printf("fork: %d children each echoed 100000 bytes\n", k);
    return 0;
}

static int threads(const char *host, int port, int k)
{
    struct peer p = {host, port};
    pthread_t t[64];
    if (k > 64)
        k = 64;
    for (int i = 0; i < k; i++)
        if (pthread_create(&t[i], NULL, one_client, &p) != 0)
            differs("pthread_create");
    for (int i = 0; i < k; i++)
        pthread_join(t[i], NULL);
    printf("threads: %d threads each echoed 100000 bytes\n", k);
    return 0;
}

static int orphan(char **cmd)
{
    int pp[2];
    if (pipe(pp) < 0)
        die("pipe");
    pid_t c = fork();
    if (c < 0)
        die("fork");
    if (c > 0)
        _exit(0); /* its end of the pipe closes */
    close(pp[1]);
    char x;
    if (read(pp[0], &x, 1) != 0) /* EOF: the parent is gone */
        die("orphan: pipe");
    close(pp[0]);
    execv(cmd[0], cmd);
    die("orphan: exec");
    return 1;
}

/* ---- sendnb ---- */

static int sendnb(const char *host, int port)
{
    struct sockaddr_in a = ipv4_addr(host, port);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c < 0)
        die("sendnb: socket");
    if (connect(c, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS)
        die("sendnb: connect");
    if (!(poll_for(c, POLLOUT, WAIT_MS) & POLLOUT))
        differs("sendnb: not writable in 10 s");
    static unsigned char buf[5000], back[5000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = pattern_byte(i);
    ssize_t n = send(c, buf, sizeof buf, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0)
        die("sendnb: send");
    printf("sendnb: one send() after POLLOUT took %zd of %zu bytes\n", n, sizeof buf);
    if (n < (ssize_t)sizeof buf)
        differs("sendnb: the send buffer is not TCP's default");
    int fl = fcntl(c, F_GETFL);
    fcntl(c, F_SETFL, fl & ~O_NONBLOCK);
    read_exact(c, back, sizeof back, WAIT_MS);
    if (memcmp(buf, back, sizeof buf) != 0)
        differs("sendnb: the echo differs");
    close(c);
    return 0;
}

/* ---- reset ---- */

static int reset_case(int port, int accepted)
{
    int c, s, l = pair_lo(port, &c, &s);
    /* a byte each way first: both ends established and in use */
    char b = 'x';
    if (write(c, &b, 1) != 1 || read(s, &b, 1) != 1 || write(s, &b, 1) != 1 ||
        read(c, &b, 1) != 1)
        die("reset: echo");
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    if (accepted) { /* the connecting end resets, the accepted one reads */
        int t = s;
        s = c;
        c = t;
    }
    if (setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) < 0)
        die("reset: SO_LINGER");
    close(s); /* an RST */
    ssize_t n = read(c, &b, 1); /* blocks until the reset arrives */
    if (n == 0)
        differs("reset: read says EOF, not ECONNRESET");
    if (n > 0)
        differs("reset: read a byte after the reset");
    if (errno != ECONNRESET)
        die("reset: read");
    printf("reset: the %s end's read says ECONNRESET\n", accepted ? "accepted" : "connecting");
    close(c);
    close(l);
    return 0;
}

/* Whether fd answers as a TCP socket: its peer's family, TCP_NODELAY. */
static int tcp_answers(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int one = 1, v = 0;
    socklen_t vl = sizeof v;
    return getpeername(fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_INET &&
           setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0 &&
           getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &vl) == 0 && v;
}

static int churn(int port, int n)
{
    int l = listener_lo(port, 16);
    int c0 = connect_lo(port), x0 = accept(l, NULL, NULL);
    if (x0 < 0)
        die("churn: accept");
    for (int i = 0; i < n; i++) {
        int c = connect_lo(port), x = accept(l, NULL, NULL);
        if (x < 0)
            die("churn: accept");
        close(x);
        close(c);
    }
    if (!tcp_answers(c0) || !tcp_answers(x0))
        differs("churn: the first connection no longer answers as TCP");
    int c = connect_lo(port);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int x = accept(l, (struct sockaddr *)&ss, &sl);
    if (x < 0 || ss.ss_family != AF_INET || !tcp_answers(x))
        differs("churn: the listener's accept is no longer TCP's");
    if (write(c0, "k", 1) != 1 || read(x0, &(char){0}, 1) != 1)
        die("churn: the first connection");
    printf("churn: %d connections made and closed; the first and the listener as TCP's\n", n);
    close(c);
    return 0;
}

static int preopt(int port)
{
    listener_lo(port, 16); /* held open: connected to below */
    int c = socket(AF_INET, SOCK_STREAM, 0), one = 1, ut = 12345, v[3] = {0};
    if (c < 0 || setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
        setsockopt(c, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) < 0 ||
        setsockopt(c, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof ut) < 0 ||
        setsockopt(c, IPPROTO_TCP, TCP_CONGESTION, "reno", 4) < 0)
        die("preopt: options");
    struct sockaddr_in a = ipv4_addr("127.0.0.1", port);
    if (connect(c, (struct sockaddr *)&a, sizeof a) < 0)
        die("preopt: connect");
    socklen_t vl = sizeof v[0];
    char cc[17] = "";
    socklen_t cl = 16;
    if (getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &v[0], &vl) < 0 ||
        getsockopt(c, SOL_SOCKET, SO_KEEPALIVE, &v[1], &vl) < 0 ||
        getsockopt(c, IPPROTO_TCP, TCP_USER_TIMEOUT, &v[2], &vl) < 0 ||
        getsockopt(c, IPPROTO_TCP, TCP_CONGESTION, cc, &cl) < 0)
        die("preopt: read back");
    printf("preopt: nodelay %d keepalive %d user_timeout %d cc %s\n", v[0], v[1], v[2], cc);
    return 0;
}

static int dropcaps(int port)
{
    listener_lo(port, 16); /* held open: connected to below */
    int c = connect_lo(port);
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof d);
    if (syscall(SYS_capset, &h, d) < 0)
        die("dropcaps: capset");
    int mark = 7;
    int r = setsockopt(c, SOL_SOCKET, SO_MARK, &mark, sizeof mark);
    printf("dropcaps: SO_MARK: %s;", r < 0 ? strerror(errno) : "0");
    int b = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = ipv4_addr("127.0.0.1", 80);
    r = bind(b, (struct sockaddr *)&a, sizeof a);
    printf(" bind port 80: %s\n", r < 0 ? strerror(errno) : "0");
    return 0;
}

static int filter(int port)
{
    listener_lo(port, 16); /* held open: connected to below */
    int c = connect_lo(port);
    struct sock_filter ins[1] = {BPF_STMT(BPF_RET | BPF_K, 0xffff)};
    struct sock_fprog fp = {1, ins};
    int r = setsockopt(c, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof fp);
    printf("filter: SO_ATTACH_FILTER: %s;", r < 0 ? strerror(errno) : "0");
    int bfd = 0;
    r = setsockopt(c, SOL_SOCKET, SO_ATTACH_BPF, &bfd, sizeof bfd);
    printf(" SO_ATTACH_BPF of fd 0: %s\n", r < 0 ? strerror(errno) : "0");
    return 0;
}

static int emfile(int port)
{
    int l = listener_lo(port, 16);
    int c = connect_lo(port);
    struct rlimit old, rl;
    int top = dup(0);
    if (top < 0 || getrlimit(RLIMIT_NOFILE, &old) < 0)
        die("emfile: dup, getrlimit");
    close(top);
    rl = old;
    rl.rlim_cur = (rlim_t)top;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        die("emfile: setrlimit");
    int x = accept(l, NULL, NULL);
    printf("accept at the limit: %s\n", x < 0 ? strerror(errno) : "a connection");
    if (setrlimit(RLIMIT_NOFILE, &old) < 0)
        die("emfile: setrlimit back");
    if (x < 0)
        x = accept(l, NULL, NULL);
    char b = 0;
    if (x < 0 || write(x, "k", 1) != 1 || read(c, &b, 1) != 1 || b != 'k')
        differs("emfile: the connection is lost");
    printf("emfile: the next accept takes the connection, a byte through\n");
    return 0;
}

static int lowlimit(int port)
{
    int l = listener_lo(port, 16);
    int c = socket(AF_INET, SOCK_STREAM, 0), l2 = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0 || l2 < 0 || dup2(c, 200) != 200 || dup2(l2, 201) != 201)
        die("lowlimit: sockets at 200, 201");
    close(c);
    close(l2);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        die("lowlimit: getrlimit");
    rl.rlim_cur = 100;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        die("lowlimit: setrlimit");
    alarm(30); /* a hang is the bug: end it */
    int r2 = listen_lo_at(201, port + 1, 16);
    printf("listen fd 201: %s\n", r2 < 0 ? strerror(errno) : "0");
    struct sockaddr_in a = ipv4_addr("127.0.0.1", port);
    int r = connect(200, (struct sockaddr *)&a, sizeof a);
    printf("connect fd 200: %s\n", r < 0 ? strerror(errno) : "0");
    if (r < 0 || r2 < 0)
        return 1;
    int x = accept(l, NULL, NULL);
    if (x < 0 || write(200, "k", 1) != 1)
        die("lowlimit: accept, write");
    char b;
    if (read(x, &b, 1) != 1 || b != 'k')
        differs("lowlimit: the byte did not arrive");
    printf("lowlimit: connected and listening above the limit, 1 byte through\n");
    return 0;
}

/* ---- acceptwait ---- */

static int aw_listener;
static atomic_int aw_taken;

static void *aw_accept(void *arg)
{
    (void)arg;
    int c = accept(aw_listener, NULL, NULL);
    if (c < 0)
        die("acceptwait: accept");
    atomic_fetch_add(&aw_taken, 1);
    close(c);
    return NULL;
}

/* How many of the threads tid[0..k) are blocked in accept()/accept4()
 * (/proc/self/task/TID/syscall: the call's number first). */
static int aw_in_accept(const pid_t *tid, int k)
{
    int n = 0;
    for (int i = 0; i < k; i++)
        n += waits_in_accept(tid[i]);
    return n;
}

static _Atomic pid_t aw_tids[256];
static atomic_int aw_started;

static void *aw_thread(void *arg)
{
    aw_tids[atomic_fetch_add(&aw_started, 1)] = (pid_t)syscall(SYS_gettid);
    return aw_accept(arg);
}

/* K threads block in accept() on one listener; once all are in it, says
 * "acceptwait: K waiting" and waits for a line on stdin (the test counts
 * the supervisor's threads meanwhile), then connects K times: each thread
 * takes one. */
static int acceptwait(int port, int k)
{
    if (k > 256)
        k = 256;
    aw_listener = listener_lo(port, 16);
    pthread_t t[256];
    for (int i = 0; i < k; i++)
        if (pthread_create(&t[i], NULL, aw_thread, NULL) != 0)
            differs("acceptwait: pthread_create");
    pid_t tid[256];
    for (int tries = 0;; tries++) {
        if (atomic_load(&aw_started) == k) {
            for (int i = 0; i < k; i++)
                tid[i] = aw_tids[i];
            if (aw_in_accept(tid, k) == k)
                break;
        }
        if (tries > 60000)
            differs("acceptwait: the threads are not all in accept() after 60 s");
        usleep(1000);
    }
    printf("acceptwait: %d waiting\n", k);
    char line[16];
    if (!fgets(line, sizeof line, stdin))
        differs("acceptwait: no go on stdin");
    int c[256];
    for (int i = 0; i < k; i++) {
        struct sockaddr_in a = ipv4_addr("127.0.0.1", port);
        c[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (c[i] < 0 || connect(c[i], (struct sockaddr *)&a, sizeof a) < 0)
            die("acceptwait: connect");
    }
    for (int i = 0; i < k; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < k; i++)
        close(c[i]);
    printf("acceptwait: %d accepted\n", atomic_load(&aw_taken));
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if ((argc == 4 || argc == 5) && strcmp(argv[1], "opts") == 0)
        return opts(argv[2], atoi(argv[3]), argc == 5 && strcmp(argv[4], "nb") == 0);
    if (argc == 4 && strcmp(argv[1], "epoll") == 0)
        return epoll_case(argv[2], atoi(argv[3]));
    if (argc == 3 && strcmp(argv[1], "acceptsig") == 0)
        return acceptsig(atoi(argv[2]));
    if (argc == 5 && strcmp(argv[1], "fork") == 0)
        return forks(argv[2], atoi(argv[3]), atoi(argv[4]));
    if (argc == 5 && strcmp(argv[1], "threads") == 0)
        return threads(argv[2], atoi(argv[3]), atoi(argv[4]));
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "reset") == 0)
        return reset_case(atoi(argv[2]), argc == 4 && strcmp(argv[3], "accepted") == 0);
    if (argc == 4 && strcmp(argv[1], "sendnb") == 0)
        return sendnb(argv[2], atoi(argv[3]));
    if (argc >= 3 && strcmp(argv[1], "orphan") == 0)
        return orphan(argv + 2);
    if (argc == 4 && strcmp(argv[1], "churn") == 0)
        return churn(atoi(argv[2]), atoi(argv[3]));
    if (argc == 3 && strcmp(argv[1], "preopt") == 0)
        return preopt(atoi(argv[2]));
    if (argc == 3 && strcmp(argv[1], "dropcaps") == 0)
        return dropcaps(atoi(argv[2]));
    if (argc == 3 && strcmp(argv[1], "filter") == 0)
        return filter(atoi(argv[2]));
    if (argc == 3 && strcmp(argv[1], "emfile") == 0)
        return emfile(atoi(argv[2]));
    if (argc == 3 && strcmp(argv[1], "lowlimit") == 0)
        return lowlimit(atoi(argv[2]));
    if (argc == 4 && strcmp(argv[1], "acceptwait") == 0)
        return acceptwait(atoi(argv[2]), atoi(argv[3]));
    fprintf(stderr, "usage: prog_reachgap opts HOST PORT [nb] | epoll HOST PORT | acceptsig PORT"
                    " | fork HOST PORT K | threads HOST PORT K | reset PORT [accepted] | sendnb HOST PORT"
                    " | orphan PROGRAM [ARG...]"
                    " | churn PORT N | preopt PORT | dropcaps PORT | filter PORT"
                    " | emfile PORT"
                    " | lowlimit PORT | acceptwait PORT K\n");
    return 2;
}
