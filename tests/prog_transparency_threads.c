/*
 * prog_transparency_threads.c: prog_transparency's "threads" case (what it
 * checks: prog_transparency.c): 1,000 threads, each a request and its
 * response over a connection of its own to one server thread's epoll loop,
 * and each thread's connection counted by the kind of socket it is.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "progutil.h"
#include "prog_transparency.h"

/* ---- 1,000 threads ---- */

/* A connection the threads case's server accepted, kept until the end
 * (its fd closed once it read EOF). */
struct sconn {
    int fd;
    int id;             /* the client's number, from its request; -1 before */
    int ended;          /* EOF (or an error) read, fd closed */
    unsigned peer_port; /* getpeername() at accept */
    size_t got;
    char req[16];
    struct sconn *next;
};

/* The server: one thread, an epoll loop, answering "req N" with "rsp N". */
struct srv {
    int l, ep, expect;
    struct sconn *all;                 /* the server thread's; main's after the join */
    unsigned char *seen;               /* the client numbers whose request came */
    atomic_int accepted, served, done; /* done: served, then EOF; a failing client reads them */
};

static void srv_accept(struct srv *s)
{
    int fd;
    while ((fd = accept4(s->l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        struct sconn *sc = calloc(1, sizeof *sc);
        CHECK(sc, "out of memory");
        sc->fd = fd;
        sc->id = -1;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        SYS(getpeername(fd, (struct sockaddr *)&ss, &sl));
        sc->peer_port = port_of(&ss);
        sc->next = s->all;
        s->all = sc;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = sc};
        SYS(epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev));
        atomic_fetch_add(&s->accepted, 1);
    }
    CHECK(errno == EAGAIN, "server: accept4: %s", strerror(errno));
}

/* The client number in request r ("req " and 12 digits), or -1. */
static long request_id(const char *r)
{
    long id = 0;
    if (memcmp(r, "req ", 4) != 0)
        return -1;
    for (int i = 4; i < 16; i++) {
        if (r[i] < '0' || r[i] > '9')
            return -1;
        id = id * 10 + (r[i] - '0');
    }
    return id;
}

/* One event of connection sc: its request answered, or its end. */
static void srv_serve(struct srv *s, struct sconn *sc)
{
    ssize_t r = read(sc->fd, sc->req + sc->got, sizeof sc->req - sc->got);
    if (r < 0 && errno == EAGAIN)
        return;
    /* a client's connection ends with EOF; one that sent nothing is
     * failed at the end (threads_extra), ended as it likes */
    CHECK(r >= 0 || sc->id < 0, "server: client %d: read: %s", sc->id, strerror(errno));
    if (r <= 0) {
        SYS(epoll_ctl(s->ep, EPOLL_CTL_DEL, sc->fd, NULL));
        close(sc->fd);
        sc->ended = 1;
        if (sc->id >= 0)
            atomic_fetch_add(&s->done, 1);
        return;
    }
    sc->got += (size_t)r;
    if (sc->got < sizeof sc->req)
        return;
    long id = request_id(sc->req);
    CHECK(id >= 0 && id < s->expect && sc->id < 0, "server: request \"%.16s\" on a connection "
          "of client %d", sc->req, sc->id);
    CHECK(!s->seen[id], "server: client %ld's request on a second connection", id);
    s->seen[id] = 1;
    sc->id = (int)id;
    memcpy(sc->req, "rsp ", 4);
    CHECK(write(sc->fd, sc->req, sizeof sc->req) == (ssize_t)sizeof sc->req, "server: write: %s",
          strerror(errno));
    sc->got = 0;
    atomic_fetch_add(&s->served, 1);
}

static void *srv_run(void *arg)
{
    struct srv *s = arg;
    while (atomic_load(&s->done) < s->expect) {
        struct epoll_event evs[64];
        int n = epoll_wait(s->ep, evs, 64, IO_MS);
        SYS(n);
        CHECK(n > 0, "server: nothing for %d ms (%d accepted, %d served, %d ended)", IO_MS,
              atomic_load(&s->accepted), atomic_load(&s->served), atomic_load(&s->done));
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr)
                srv_serve(s, evs[i].data.ptr);
            else
                srv_accept(s);
        }
    }
    return NULL;
}

static struct srv *threads_srv;
static unsigned threads_port;
static atomic_int threads_done;
static unsigned *client_port; /* each client's local port, by number */
/* How many threads' connections were of each kind, as the kernel names
 * the socket's protocol (sockfs's "system.sockprotoname" attribute: "TCP",
 * "TCPv6", "UNIX-STREAM"), which no interposed call answers:
 * fd_transport() reads /proc/net's tables, which 1,000 threads at once
 * would make the case's main cost. */
static const char *const kinds[] = {"tcp", "unix", "other"};
static atomic_int kind_count[3];
static const char *_Atomic thread_kind; /* fd_transport() of thread 0's */

static size_t kind_of(int fd)
{
    char name[32];
    ssize_t n = fgetxattr(fd, "system.sockprotoname", name, sizeof name - 1);
    if (n <= 0)
        return 2;
    name[n] = 0;
    return strncmp(name, "TCP", 3) == 0 ? 0 : strncmp(name, "UNIX", 4) == 0 ? 1 : 2;
}

static void *client_run(void *arg)
{
    int id = (int)(intptr_t)arg;
    double t0 = now_s();
    int s = connect_lo(threads_port);
    double took = now_s() - t0;
    size_t k = kind_of(s);
    atomic_fetch_add(&kind_count[k], 1);
    if (id == 0)
        atomic_store(&thread_kind, fd_transport(s));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    SYS(getsockname(s, (struct sockaddr *)&ss, &sl));
    client_port[id] = port_of(&ss);
    char req[17], rsp[16];
    snprintf(req, sizeof req, "req %012d", id);
    write_exact(s, req, 16);
    for (size_t got = 0; got < sizeof rsp;) {
        CHECK(poll_for(s, POLLIN, IO_MS),
              "thread %d: no response within %d ms (%s, connect() took %.1f s; server: %d "
              "accepted, %d served)", id, IO_MS, kinds[k], took,
              atomic_load(&threads_srv->accepted), atomic_load(&threads_srv->served));
        ssize_t r = read(s, rsp + got, sizeof rsp - got);
        CHECK(r > 0, "thread %d: read: %s", id, r == 0 ? "EOF" : strerror(errno));
        got += (size_t)r;
    }
    CHECK(memcmp(rsp, "rsp ", 4) == 0 && memcmp(rsp + 4, req + 4, 12) == 0,
          "thread %d: response \"%.16s\"", id, rsp);
    close(s);
    atomic_fetch_add(&threads_done, 1);
    return NULL;
}

/* The connections s accepted that sent no request (each connect() is
 * accepted once: none over kernel TCP), said, and how many of them came
 * from a client's address into *from_client; all of s's freed. */
static int threads_extra(struct srv *s, int count, int *from_client)
{
    unsigned char *ours = calloc(65536, 1);
    CHECK(ours, "out of memory");
    for (int i = 0; i < count; i++)
        ours[client_port[i] & 0xffff] = 1;
    int extra = 0;
    *from_client = 0;
    for (struct sconn *sc = s->all, *next; sc; sc = next) {
        next = sc->next;
        if (sc->id < 0) {
            printf("threads: accepted a connection from 127.0.0.1:%u (%s) that sent nothing\n",
                   sc->peer_port, ours[sc->peer_port & 0xffff] ? "a client's address"
                                                               : "no client's address");
            extra++;
            *from_client += ours[sc->peer_port & 0xffff];
        }
        if (!sc->ended)
            close(sc->fd);
        free(sc);
    }
    free(ours);
    return extra;
}

void case_threads(int count)
{
    raise_fd_limit();
    struct srv s = {.expect = count};
    threads_srv = &s;
    s.seen = calloc((size_t)count, 1);
    client_port = calloc((size_t)count, sizeof *client_port);
    CHECK(s.seen && client_port, "out of memory");
    s.l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    SYS(s.l);
    threads_port = bind_lo(s.l, 0);
    SYS(listen(s.l, 1024));
    s.ep = epoll_create1(EPOLL_CLOEXEC);
    SYS(s.ep);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    SYS(epoll_ctl(s.ep, EPOLL_CTL_ADD, s.l, &ev));
    pthread_t server;
    int e = pthread_create(&server, NULL, srv_run, &s);
    CHECK(e == 0, "pthread_create: %s", strerror(e));

    pthread_attr_t attr;
    e = pthread_attr_init(&attr);
    CHECK(e == 0, "pthread_attr_init: %s", strerror(e));
    e = pthread_attr_setstacksize(&attr, THREAD_STACK);
    CHECK(e == 0, "pthread_attr_setstacksize: %s", strerror(e));
    pthread_t *t = calloc((size_t)count, sizeof *t);
    CHECK(t, "out of memory");
    for (int i = 0; i < count; i++) {
        e = pthread_create(&t[i], &attr, client_run, (void *)(intptr_t)i);
        CHECK(e == 0, "pthread_create %d: %s", i, strerror(e));
    }
    for (int i = 0; i < count; i++) {
        e = pthread_join(t[i], NULL);
        CHECK(e == 0, "pthread_join: %s", strerror(e));
    }
    pthread_attr_destroy(&attr);
    free(t);
    e = pthread_join(server, NULL); /* it ends once every client's connection did */
    CHECK(e == 0, "pthread_join: %s", strerror(e));
    printf("transport: %s (thread 0's connection)\n", atomic_load(&thread_kind));
    for (size_t k = 0; k < 3; k++)
        if (atomic_load(&kind_count[k]))
            printf("transport: %s (%d threads' connections, by the kernel's protocol name)\n",
                   kinds[k], atomic_load(&kind_count[k]));
    int from_client, extra = threads_extra(&s, count, &from_client);
    CHECK(atomic_load(&threads_done) == count && atomic_load(&s.served) == count &&
              atomic_load(&s.done) == count && extra == 0,
          "threads: %d of %d done; server: %d accepted, %d served, %d ended; %d connection(s) "
          "no client's connect() made sent nothing (%d from a client's address)",
          atomic_load(&threads_done), count, atomic_load(&s.accepted), atomic_load(&s.served),
          atomic_load(&s.done), extra, from_client);
    printf("ok: threads: %d threads (%d KiB stacks), each a request and its response over its "
           "own connection, all complete\n", count, THREAD_STACK / 1024);
    free(s.seen);
    free(client_port);
    close(s.ep);
    close(s.l);
}
