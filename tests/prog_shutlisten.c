/*
 * prog_shutlisten: shutdown() of a listener, as TCP answers it.
 *
 * Linux's TCP listener stops at shutdown(SHUT_RD or SHUT_RDWR) and at
 * connect(AF_UNSPEC) (inet_shutdown and __inet_stream_connect ->
 * tcp_disconnect -> inet_csk_listen_stop); servers stop their accept loops
 * this way. Each case over a fresh listener on 127.0.0.1:
 *
 *   - wake: a thread blocked in accept() wakes with EINVAL;
 *   - loop: a poll()+accept() loop on a non-blocking listener, in another
 *     thread, ends with EINVAL (under the shim before 2026-11-29 poll said
 *     POLLIN and accept EAGAIN for ever: 494,667 turns in 2 s);
 *   - queued: connections queued and never accepted are reset (their
 *     clients read ECONNRESET), not handed to a later accept();
 *   - after: poll says POLLOUT|POLLHUP, SO_ACCEPTCONN 0, accept EINVAL, a
 *     new client ECONNREFUSED, getsockname the same port;
 *   - epoll: a registration of the listener made before reports EPOLLHUP;
 *   - shutwr: SHUT_WR alone changes nothing: the listener still accepts;
 *   - unspec: connect(AF_UNSPEC) stops it as SHUT_RDWR does;
 *   - child: a forked child holding the listener, the parent shuts it: the
 *     child's non-blocking accept says EINVAL, a new client is refused;
 *   - dup2: a listener's number dup2()'d over by a shut socket, as Java's
 *     ServerSocket.close() does (with a thread blocked in accept(), which a
 *     signal then interrupts, and without): every new client is refused.
 *     Under the shim before 2026-11-29 the engine went on taking clients
 *     and reset them at the hand-over (2 of 10 connects);
 *   - resume: a listener bound by port number, stopped (SHUT_RD, or
 *     connect(AF_UNSPEC)), listens again on that port at listen(), as
 *     haproxy's "enable frontend" does (the kernel keeps the port of a
 *     socket bound by number, SOCK_BINDPORT_LOCK); with and without
 *     SO_REUSEADDR, and after a connection the server closed first (its
 *     TIME_WAIT: without SO_REUSEADDR listen() says EADDRINUSE). Under the
 *     shim before 2026-11-29 it listened on a new port and the old one
 *     refused.
 *
 * Prints "ok:" lines and "transport: KIND"; exit 1 with a "FAIL:" line,
 * 3 if the watchdog (60 s) fired.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_shutlisten";

/* A connect to port that must be refused (TCP: the stopped listener's RST
 * answers the SYN). */
static void refused(unsigned port, const char *what)
{
    int c = socket(AF_INET, SOCK_STREAM, 0);
    SYS(c);
    struct sockaddr_in to = ipv4_addr("127.0.0.1", port);
    int r = connect(c, (struct sockaddr *)&to, sizeof to);
    CHECK(r < 0 && errno == ECONNREFUSED, "%s: a new client's connect said %s, not ECONNREFUSED",
          what, r == 0 ? "0" : strerror(errno));
    close(c);
}

static void nonblocking(int fd)
{
    SYS(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK));
}

/* ---- wake ---- */

static int wake_fd;
static int wake_err;
static void *blocked_accept(void *arg)
{
    (void)arg;
    int a = accept(wake_fd, NULL, NULL);
    wake_err = a < 0 ? errno : 0;
    if (a >= 0)
        close(a);
    return NULL;
}

static void wake_case(void)
{
    wake_fd = listener_lo(0, 16);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, blocked_accept, NULL) == 0, "pthread_create");
    usleep(100000); /* in accept() by now, or shut before it: EINVAL either way */
    SYS(shutdown(wake_fd, SHUT_RDWR));
    CHECK(pthread_join(t, NULL) == 0, "pthread_join");
    CHECK(wake_err == EINVAL, "a blocked accept() woken by shutdown said %s, not EINVAL",
          wake_err ? strerror(wake_err) : "a connection");
    close(wake_fd);
    printf("ok: wake: a blocked accept() wakes with EINVAL\n");
}

/* ---- loop ---- */

static int loop_fd;
static int loop_err;
static long loop_again;
static void *accept_loop(void *arg)
{
    (void)arg;
    double until = now_s() + 10;
    while (now_s() < until) {
        struct pollfd p = {.fd = loop_fd, .events = POLLIN};
        if (poll(&p, 1, 100) < 0 && errno != EINTR) {
            loop_err = errno;
            return NULL;
        }
        int a = accept(loop_fd, NULL, NULL);
        if (a >= 0) {
            close(a);
            continue;
        }
        if (errno != EAGAIN) {
            loop_err = errno;
            return NULL;
        }
        loop_again++;
    }
    loop_err = ETIMEDOUT; /* the loop never ended */
    return NULL;
}

static void loop_case(int how)
{
    loop_fd = listener_lo(0, 16);
    nonblocking(loop_fd);
    loop_err = 0;
    loop_again = 0;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, accept_loop, NULL) == 0, "pthread_create");
    usleep(100000);
    SYS(shutdown(loop_fd, how));
    CHECK(pthread_join(t, NULL) == 0, "pthread_join");
    CHECK(loop_err == EINVAL, "a poll()+accept() loop after shutdown(%s): %s (%ld EAGAIN)",
          how == SHUT_RD ? "SHUT_RD" : "SHUT_RDWR",
          loop_err == ETIMEDOUT ? "still going after 10 s" : strerror(loop_err), loop_again);
    close(loop_fd);
    printf("ok: loop: a poll()+accept() loop ends with EINVAL after shutdown(%s)\n",
           how == SHUT_RD ? "SHUT_RD" : "SHUT_RDWR");
}

/* ---- queued ---- */

#define QUEUED 3

static void queued_case(void)
{
    int l = listener_lo(0, 16);
    unsigned port = port_of_fd(l);
    int c[QUEUED];
    for (int i = 0; i < QUEUED; i++) {
        c[i] = connect_lo(port);
        write_exact(c[i], "q", 1);
    }
    if (QUEUED)
        printf("transport: %s\n", fd_transport(c[0]));
    /* every one queued before the stop: readable for accept */
    CHECK(poll_for(l, POLLIN, 5000) & POLLIN, "nothing queued to accept");
    SYS(shutdown(l, SHUT_RDWR));
    for (int i = 0; i < QUEUED; i++) {
        CHECK(poll_for(c[i], POLLIN, 5000), "client %d: nothing within 5 s of the stop", i);
        char b;
        ssize_t r = read(c[i], &b, 1);
        CHECK(r < 0 && errno == ECONNRESET, "client %d queued at the stop: read %zd (%s), not ECONNRESET",
              i, r, r < 0 ? strerror(errno) : "data or EOF");
        close(c[i]);
    }
    nonblocking(l);
    int a = accept(l, NULL, NULL);
    CHECK(a < 0 && errno == EINVAL, "accept() after the stop: %d (%s), not EINVAL", a,
          a < 0 ? strerror(errno) : "a connection");
    close(l);
    printf("ok: queued: %d connections queued at the stop are reset\n", QUEUED);
}

/* ---- after ---- */

static void after_case(int how)
{
    int l = listener_lo(0, 16);
    unsigned port = port_of_fd(l);
    SYS(shutdown(l, how));
    struct pollfd p = {.fd = l, .events = POLLIN | POLLOUT};
    SYS(poll(&p, 1, 0));
    CHECK(p.revents == (POLLOUT | POLLHUP), "poll() of the stopped listener: %#x, not POLLOUT|POLLHUP",
          (unsigned)p.revents);
    CHECK(getsockopt_int(l, SOL_SOCKET, SO_ACCEPTCONN) == 0, "SO_ACCEPTCONN is still 1");
    int a = accept(l, NULL, NULL); /* a blocking one: TCP's does not wait */
    CHECK(a < 0 && errno == EINVAL, "accept(): %d (%s), not EINVAL", a,
          a < 0 ? strerror(errno) : "a connection");
    CHECK(port_of_fd(l) == port, "getsockname: port %u, not the listener's %u", port_of_fd(l), port);
    refused(port, "after");
    close(l);
    printf("ok: after shutdown(%s): POLLOUT|POLLHUP, SO_ACCEPTCONN 0, accept EINVAL, refused\n",
           how == SHUT_RD ? "SHUT_RD" : "SHUT_RDWR");
}

/* ---- epoll ---- */

static void epoll_case(void)
{
    int l = listener_lo(0, 16);
    int ep = epoll_create1(0);
    SYS(ep);
    struct epoll_event e = {.events = EPOLLIN, .data.u32 = 7};
    SYS(epoll_ctl(ep, EPOLL_CTL_ADD, l, &e));
    struct epoll_event got;
    CHECK(epoll_wait(ep, &got, 1, 0) == 0, "the idle listener reported an event");
    SYS(shutdown(l, SHUT_RDWR));
    int n = epoll_wait(ep, &got, 1, 5000);
    SYS(n);
    CHECK(n == 1 && got.data.u32 == 7, "no event for the stopped listener within 5 s");
    CHECK(got.events & EPOLLHUP, "the stopped listener's event %#x has no EPOLLHUP",
          (unsigned)got.events);
    close(ep);
    close(l);
    printf("ok: epoll: a registration made before the stop reports EPOLLHUP\n");
}

/* ---- shutwr ---- */

static void shutwr_case(void)
{
    int l = listener_lo(0, 16);
    unsigned port = port_of_fd(l);
    SYS(shutdown(l, SHUT_WR));
    CHECK(getsockopt_int(l, SOL_SOCKET, SO_ACCEPTCONN) == 1, "SHUT_WR stopped the listener");
    int c = connect_lo(port);
    int a = accept_ready(l, 5000);
    write_exact(c, "w", 1);
    char b;
    read_exact(a, &b, 1, 5000);
    close(a);
    close(c);
    close(l);
    printf("ok: shutwr: SHUT_WR leaves the listener accepting\n");
}

/* ---- unspec ---- */

static void unspec_case(void)
{
    int l = listener_lo(0, 16);
    unsigned port = port_of_fd(l);
    struct sockaddr sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_family = AF_UNSPEC;
    SYS(connect(l, &sa, sizeof sa));
    CHECK(getsockopt_int(l, SOL_SOCKET, SO_ACCEPTCONN) == 0, "connect(AF_UNSPEC) left it listening");
    nonblocking(l);
    int a = accept(l, NULL, NULL);
    CHECK(a < 0 && errno == EINVAL, "accept() after connect(AF_UNSPEC): %d (%s), not EINVAL", a,
          a < 0 ? strerror(errno) : "a connection");
    refused(port, "unspec");
    close(l);
    printf("ok: unspec: connect(AF_UNSPEC) stops the listener\n");
}

/* ---- child ---- */

static void child_case(void)
{
    int l = listener_lo(0, 16);
    unsigned port = port_of_fd(l);
    nonblocking(l);
    int go[2], done[2];
    SYS(pipe(go));
    SYS(pipe(done));
    pid_t pid = fork();
    SYS(pid);
    if (pid == 0) {
        close(go[1]);
        close(done[0]);
        char b;
        if (read(go[0], &b, 1) != 1)
            _exit(2);
        int a = accept(l, NULL, NULL);
        int err = a < 0 ? errno : 0;
        (void)!write(done[1], &err, sizeof err);
        _exit(0);
    }
    close(go[0]);
    close(done[1]);
    SYS(shutdown(l, SHUT_RDWR));
    SYS(write(go[1], "g", 1));
    int err = -1;
    CHECK(read(done[0], &err, sizeof err) == (ssize_t)sizeof err, "the child said nothing");
    int st;
    SYS(waitpid(pid, &st, 0));
    CHECK(err == EINVAL, "the child's accept() on the listener its parent stopped: %s, not EINVAL",
          err ? strerror(err) : "a connection");
    refused(port, "child");
    close(go[1]);
    close(done[0]);
    close(l);
    printf("ok: child: the child's accept says EINVAL once the parent stopped the listener\n");
}

/* ---- dup2 ---- */

static int dup2_fd;
static void on_usr1(int sig)
{
    (void)sig;
}
static void *dup2_accept(void *arg)
{
    (void)arg;
    int a = accept(dup2_fd, NULL, NULL);
    if (a >= 0)
        close(a);
    return NULL;
}

static void dup2_case(int blocked)
{
    dup2_fd = listener_lo(0, 16);
    unsigned port = port_of_fd(dup2_fd);
    int sp[2];
    SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sp));
    SYS(shutdown(sp[0], SHUT_RDWR)); /* Java's pre-close socket */
    pthread_t t;
    if (blocked) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_usr1; /* no SA_RESTART: accept() says EINTR */
        SYS(sigaction(SIGUSR1, &sa, NULL));
        CHECK(pthread_create(&t, NULL, dup2_accept, NULL) == 0, "pthread_create");
        usleep(100000); /* in accept() by now; if not, its accept() fails at once */
    }
    SYS(dup2(sp[0], dup2_fd));
    if (blocked) {
        CHECK(pthread_kill(t, SIGUSR1) == 0, "pthread_kill");
        CHECK(pthread_join(t, NULL) == 0, "pthread_join");
    }
    for (int i = 0; i < 10; i++)
        refused(port, blocked ? "dup2 with accept() blocked" : "dup2");
    close(dup2_fd);
    close(sp[0]);
    close(sp[1]);
    printf("ok: dup2%s: a listener's number dup2()'d over refuses every new client\n",
           blocked ? " with a thread blocked in accept()" : "");
}

/* ---- resume ---- */

/* Binds l to 127.0.0.1 by port number (a port found free by a bind to 0),
 * as a server's configuration names it; returns the port. */
static unsigned bind_by_number(int l)
{
    for (int i = 0; i < 20; i++) {
        int t = socket(AF_INET, SOCK_STREAM, 0);
        SYS(t);
        unsigned port = bind_lo(t, 0);
        close(t);
        struct sockaddr_in a = ipv4_addr("127.0.0.1", port);
        if (bind(l, (struct sockaddr *)&a, sizeof a) == 0)
            return port;
        CHECK(errno == EADDRINUSE, "bind to port %u: %s", port, strerror(errno));
    }
    failf(__LINE__, "no free port in 20 tries");
}

static void stop(int l, int how)
{
    if (how == SHUT_RD) {
        SYS(shutdown(l, SHUT_RD));
        return;
    }
    struct sockaddr sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_family = AF_UNSPEC;
    SYS(connect(l, &sa, sizeof sa));
}

/* how: SHUT_RD or -1 (connect(AF_UNSPEC)); reuse: SO_REUSEADDR; served:
 * a connection accepted and closed first by the server before the stop */
static void resume_case(int how, int reuse, int served)
{
    char what[96];
    snprintf(what, sizeof what, "resume after %s%s%s", how == SHUT_RD ? "SHUT_RD" :
             "connect(AF_UNSPEC)", reuse ? ", SO_REUSEADDR" : "", served ? ", a TIME_WAIT" : "");
    int l = socket(AF_INET, SOCK_STREAM, 0);
    SYS(l);
    if (reuse)
        setsockopt_int(l, SOL_SOCKET, SO_REUSEADDR, 1);
    unsigned port = bind_by_number(l);
    SYS(listen(l, 16));
    if (served) {
        int c = connect_lo(port), a = accept_ready(l, 10000);
        SYS(close(a)); /* the server first: its end goes into TIME_WAIT */
        char b;
        CHECK(read(c, &b, 1) == 0, "%s: the client read no EOF", what);
        close(c);
    }
    stop(l, how);
    refused(port, what);
    if (served && !reuse) { /* the TIME_WAIT holds the port (inet_csk_get_port) */
        int r = listen(l, 16);
        CHECK(r < 0 && errno == EADDRINUSE, "%s: listen() again said %s, not EADDRINUSE", what,
              r == 0 ? "0" : strerror(errno));
        close(l);
        printf("ok: %s: listen() again says EADDRINUSE without SO_REUSEADDR\n", what);
        return;
    }
    SYS(listen(l, 16));
    CHECK(port_of_fd(l) == port, "%s: listen() again took port %u, not %u", what, port_of_fd(l),
          port);
    int c = connect_lo(port), a = accept_ready(l, 10000);
    SYS(write(a, "r", 1));
    char b = 0;
    read_exact(c, &b, 1, 10000);
    CHECK(b == 'r', "%s: read %d", what, b);
    close(c);
    close(a);
    close(l);
    printf("ok: %s: listen() again listens on port it was bound to\n", what);
}

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, 60);
    wake_case();
    loop_case(SHUT_RD);
    loop_case(SHUT_RDWR);
    queued_case();
    after_case(SHUT_RD);
    after_case(SHUT_RDWR);
    epoll_case();
    shutwr_case();
    unspec_case();
    child_case();
    dup2_case(0);
    dup2_case(1);
    resume_case(SHUT_RD, 1, 0);
    resume_case(-1, 1, 0);
    resume_case(SHUT_RD, 0, 0);
    resume_case(SHUT_RD, 1, 1);
    resume_case(-1, 0, 1);
    return 0;
}
