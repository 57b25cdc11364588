/*
 * prog_dialstorm: Go's TestTCPSpuriousConnSetupCompletion in C (issue 43,
 * finding 4), for the supervisor's tests (integration/tests/reach/
 * t_supervise_dialstorm.sh): built static (prog_dialstorm_static), a
 * program no preload reaches.
 *
 *   prog_dialstorm PORT DIALS CONC MS
 *
 * One process listens on 127.0.0.1:PORT; a thread accepts and, for each
 * connection, reads a byte and closes (Go's per-connection goroutine).
 * CONC threads make DIALS connects in all, each non-blocking with a
 * timeout of MS (Go's Dialer.Timeout): a connect that completes writes a
 * byte and closes; one that times out is closed. Once the last dial has
 * begun the listener is closed, as Go's test does, so the last ones race
 * with its close. Prints one line:
 *   "dials N (listener closed at L) connected C timedout T refused R other O
 *    [call:ERRNO=count ...]" (call: socket, connect or send)
 * and exits 0; 1 on a set-up failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_dialstorm";

static struct sockaddr_in to;
static int dials, ms;
static atomic_int next_dial, dialers_left;
static atomic_int n_connected, n_timedout, n_refused, n_other;
/* per call: socket, connect (or its SO_ERROR), send */
enum { AT_SOCKET, AT_CONNECT, AT_SEND, AT_N };
static const char *const at_name[AT_N] = {"socket", "connect", "send"};
static atomic_int by_errno[AT_N][256];
static atomic_int close_listener, closed_at;

static void count_err(int at, int e)
{
    if (e == ECONNREFUSED || e == ECONNRESET) {
        atomic_fetch_add(&n_refused, 1);
        return;
    }
    atomic_fetch_add(&n_other, 1);
    atomic_fetch_add(&by_errno[at][e > 0 && e < 256 ? e : 0], 1);
}

static void dial_one(void)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0) {
        count_err(AT_SOCKET, errno);
        return;
    }
    int err = 0;
    if (connect(s, (struct sockaddr *)&to, sizeof to) < 0) {
        err = errno;
        if (err == EINPROGRESS) {
            struct pollfd p = {.fd = s, .events = POLLOUT};
            int r = poll(&p, 1, ms);
            if (r == 0) {
                atomic_fetch_add(&n_timedout, 1);
                close(s);
                return;
            }
            socklen_t l = sizeof err;
            if (r < 0 || getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
                err = errno;
        }
    }
    if (err) {
        count_err(AT_CONNECT, err);
        close(s);
        return;
    }
    atomic_fetch_add(&n_connected, 1);
    char b = 'x';
    if (send(s, &b, 1, MSG_NOSIGNAL) < 0 && errno != EPIPE && errno != ECONNRESET &&
        errno != EAGAIN)
        count_err(AT_SEND, errno);
    close(s);
}

static void *dialer(void *arg)
{
    (void)arg;
    while (atomic_fetch_add(&next_dial, 1) < dials) {
        if (atomic_load(&next_dial) >= dials)
            atomic_store(&close_listener, 1); /* the last dial has begun */
        dial_one();
    }
    atomic_store(&close_listener, 1);
    atomic_fetch_sub(&dialers_left, 1);
    return NULL;
}

/* Accepts, reads a byte of each connection, closes it; closes the
 * listener once the last dial began; ends when every dialer has. */
static void *server(void *arg)
{
    int ln = *(int *)arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    SYS(ep);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ln};
    SYS(epoll_ctl(ep, EPOLL_CTL_ADD, ln, &ev));
    for (;;) {
        if (ln >= 0 && atomic_load(&close_listener)) {
            epoll_ctl(ep, EPOLL_CTL_DEL, ln, NULL);
            atomic_store(&closed_at, atomic_load(&next_dial));
            close(ln);
            ln = -1;
        }
        if (ln < 0 && atomic_load(&dialers_left) == 0)
            break;
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, 10);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == ln) {
                int c;
                while ((c = accept4(ln, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    struct epoll_event ce = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = c};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce) < 0)
                        close(c);
                }
                continue;
            }
            char b;
            if (read(fd, &b, 1) < 0 && errno == EAGAIN)
                continue;
            close(fd); /* a byte, an end or an error: done with it */
        }
    }
    close(ep);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: prog_dialstorm PORT DIALS CONC MS\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    int port = atoi(argv[1]), conc = atoi(argv[3]);
    dials = atoi(argv[2]);
    ms = atoi(argv[4]);
    CHECK(conc > 0 && conc <= 256 && dials > 0 && ms > 0, "bad arguments");
    to.sin_family = AF_INET;
    to.sin_port = htons((uint16_t)port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    int ln = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    SYS(ln);
    int one = 1;
    SYS(setsockopt(ln, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
    SYS(bind(ln, (struct sockaddr *)&to, sizeof to));
    SYS(listen(ln, 4096));
    SYS(fcntl(ln, F_SETFL, O_NONBLOCK));

    atomic_store(&dialers_left, conc);
    pthread_t srv, th[256];
    CHECK(pthread_create(&srv, NULL, server, &ln) == 0, "pthread_create");
    for (int i = 0; i < conc; i++)
        CHECK(pthread_create(&th[i], NULL, dialer, NULL) == 0, "pthread_create");
    for (int i = 0; i < conc; i++)
        pthread_join(th[i], NULL);
    pthread_join(srv, NULL);

    printf("dials %d (listener closed at %d) connected %d timedout %d refused %d other %d", dials,
           atomic_load(&closed_at) < dials ? atomic_load(&closed_at) : dials,
           atomic_load(&n_connected), atomic_load(&n_timedout), atomic_load(&n_refused),
           atomic_load(&n_other));
    for (int e = 0; e < 256; e++)
        for (int at = 0; at < AT_N; at++)
            if (atomic_load(&by_errno[at][e]))
                printf(" %s:%s=%d", at_name[at], e ? strerrorname_np(e) : "?",
                       atomic_load(&by_errno[at][e]));
    printf("\n");
    return 0;
}
