/*
 * prog_reachcalls: the calls rudp-supervise's filter reports beyond the
 * set-up calls (issue 35, docs/reach.md), and those it leaves to the
 * kernel because the bridge answers them as under the preload. Run by
 * integration/tests/reach/t_supervise_calls.sh over kernel TCP first and
 * then supervised, where it must print the same; built static
 * (prog_reachcalls_static). Each case prints one line and exits 0, or
 * says what differs and exits 1. The peer is tests/prog_reach's echo
 * server unless said.
 *
 *   ioctls HOST PORT   connect; SIOCOUTQ, SIOCOUTQNSD and SIOCINQ are 0;
 *                      1000 bytes echoed; then (once the peer acknowledged
 *                      them) SIOCOUTQ and SIOCOUTQNSD 0, and 500 bytes
 *                      echoed and not read: SIOCINQ (FIONREAD) 500
 *   oob PORT           listens, connects to itself, accepts; the client
 *                      sends "ab", "c" with MSG_OOB, "de": the accepted
 *                      end hears POLLPRI, reads "ab" up to the mark
 *                      (SIOCATMARK), "c" with recv(MSG_OOB), then "de"
 *   tfo HOST PORT      sendto() with MSG_FASTOPEN connects and sends 1000
 *                      bytes, echoed; connect() then says EISCONN
 *   tfomsg HOST PORT   the same with sendmsg() and two iovecs
 *   tfolow HOST PORT   the same as tfo from a socket at fd 200, past
 *                      RLIMIT_NOFILE lowered to 100: as over TCP (the
 *                      supervisor cannot put a bridge there: kernel TCP
 *                      then, never a hang)
 *   tforace HOST PORT DIR [close]
 *                      a thread sends 1000 pattern bytes with sendto()
 *                      and MSG_FASTOPEN on a blocking socket at number N
 *                      (to tests/prog_reach's sink); once it has returned,
 *                      or DIR/go exists (the script: the call waits for
 *                      its handshake), the main thread puts a fresh
 *                      socket at N (dup2), or closes N (close), and makes
 *                      DIR/replaced (the script then lets the handshake
 *                      through). As over TCP, which looks the number up
 *                      once, at the call: the call sends its bytes on the
 *                      socket it was made on, and the fresh one stays
 *                      unconnected, or N closed (the supervisor once let
 *                      the kernel make the call again on the fresh one, a
 *                      kernel TCP connection counted nowhere, and put its
 *                      connection at the closed N)
 *   connrace HOST PORT DIR [close]
 *                      the same with a blocking connect() and no bytes
 */
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_reachcalls";

/* Every wait of a case: at most this, then it fails. */
#define WAIT_MS 10000

static int ioc(int s, unsigned long req, const char *name)
{
    int v = -1;
    if (ioctl(s, req, &v) < 0)
        die(name);
    return v;
}

/* Waits until ioctl req on s says want (10 s at most, checked every
 * millisecond: a condition, not a timing). */
static void ioc_until(int s, unsigned long req, const char *name, int want)
{
    for (int i = 0; i < 10000; i++) {
        if (ioc(s, req, name) == want)
            return;
        usleep(1000);
    }
    differs("%s stays %d, not %d", name, ioc(s, req, name), want);
}

static void send_all(int s, const char *buf, size_t n)
{
    while (n) {
        ssize_t w = send(s, buf, n, MSG_NOSIGNAL);
        if (w < 0)
            die("send");
        buf += w;
        n -= (size_t)w;
    }
}

static void recv_all(int s, char *buf, size_t n)
{
    while (n) {
        ssize_t r = recv(s, buf, n, 0);
        if (r < 0)
            die("recv");
        if (r == 0)
            differs("EOF before the whole echo");
        buf += r;
        n -= (size_t)r;
    }
}

/* Half-closes s, hears the echo server's EOF, closes s. */
static void end_echo(int s)
{
    if (shutdown(s, SHUT_WR) < 0)
        die("shutdown");
    char c;
    if (recv(s, &c, 1, 0) != 0)
        differs("no EOF after the echo");
    close(s);
}

static void fill(char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)('a' + i % 23);
}

static int ioctls(const char *host, int port)
{
    struct sockaddr_in a = ipv4_addr(host, port);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0)
        die("connect");
    int q0 = ioc(s, SIOCOUTQ, "SIOCOUTQ"), n0 = ioc(s, SIOCOUTQNSD, "SIOCOUTQNSD");
    int i0 = ioc(s, SIOCINQ, "SIOCINQ");
    char out[1000], in[1000];
    fill(out, sizeof out);
    send_all(s, out, sizeof out);
    recv_all(s, in, sizeof in);
    if (memcmp(in, out, sizeof in))
        differs("the echo differs");
    ioc_until(s, SIOCOUTQ, "SIOCOUTQ", 0);
    ioc_until(s, SIOCOUTQNSD, "SIOCOUTQNSD", 0);
    send_all(s, out, 500);
    if (!(poll_for(s, POLLIN, WAIT_MS) & POLLIN))
        differs("no echo");
    ioc_until(s, SIOCINQ, "SIOCINQ", 500);
    int fionread = ioc(s, FIONREAD, "FIONREAD");
    int atmark = ioc(s, SIOCATMARK, "SIOCATMARK");
    printf("at connect: outq %d outqnsd %d inq %d; echoed: outq 0 outqnsd 0; unread: inq 500 "
           "fionread %d atmark %d\n", q0, n0, i0, fionread, atmark);
    recv_all(s, in, 500);
    end_echo(s);
    return 0;
}

static int oob(int port)
{
    int c, s, l = pair_lo(port, &c, &s);
    send_all(c, "ab", 2);
    if (send(c, "c", 1, MSG_OOB) != 1)
        die("send(MSG_OOB)");
    send_all(c, "de", 2);
    if (shutdown(c, SHUT_WR) < 0)
        die("shutdown");
    if (!(poll_for(s, POLLPRI, WAIT_MS) & POLLPRI))
        differs("no POLLPRI for the urgent byte");
    char before[8] = {0}, after[8] = {0}, u = 0;
    size_t nb = 0, na = 0;
    /* up to the mark: a read stops there */
    while (!ioc(s, SIOCATMARK, "SIOCATMARK")) {
        if (nb >= sizeof before - 1)
            differs("no mark");
        ssize_t r = recv(s, before + nb, sizeof before - 1 - nb, 0);
        if (r <= 0)
            differs("no mark before EOF");
        nb += (size_t)r;
    }
    if (recv(s, &u, 1, MSG_OOB) != 1)
        die("recv(MSG_OOB)");
    for (;;) {
        ssize_t r = recv(s, after + na, sizeof after - 1 - na, 0);
        if (r < 0)
            die("recv");
        if (r == 0)
            break;
        na += (size_t)r;
        if (na >= sizeof after - 1)
            differs("too much after the mark");
    }
    printf("before the mark \"%s\", urgent \"%c\", after \"%s\"\n", before, u, after);
    close(s);
    close(c);
    close(l);
    return 0;
}

static int tfo(const char *host, int port, int msg, int low)
{
    struct sockaddr_in a = ipv4_addr(host, port);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0)
        die("socket");
    if (low) {
        struct rlimit rl;
        if (dup2(s, 200) != 200 || close(s) < 0 || getrlimit(RLIMIT_NOFILE, &rl) < 0)
            die("socket at 200");
        s = 200;
        rl.rlim_cur = 100;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            die("setrlimit");
        alarm(30); /* a hang is the bug: end it */
    }
    char out[1000], in[1000];
    fill(out, sizeof out);
    ssize_t w;
    if (msg) {
        struct iovec v[2] = {{.iov_base = out, .iov_len = 300},
                             {.iov_base = out + 300, .iov_len = 700}};
        struct msghdr m = {.msg_name = &a, .msg_namelen = sizeof a, .msg_iov = v, .msg_iovlen = 2};
        w = sendmsg(s, &m, MSG_FASTOPEN | MSG_NOSIGNAL);
    } else {
        w = sendto(s, out, sizeof out, MSG_FASTOPEN | MSG_NOSIGNAL, (struct sockaddr *)&a,
                   sizeof a);
    }
    if (w < 0)
        die(msg ? "sendmsg(MSG_FASTOPEN)" : "sendto(MSG_FASTOPEN)");
    if (w != (ssize_t)sizeof out)
        differs("a short send");
    struct sockaddr_in p;
    socklen_t pl = sizeof p;
    if (getpeername(s, (struct sockaddr *)&p, &pl) < 0)
        die("getpeername");
    if (p.sin_port != a.sin_port || p.sin_addr.s_addr != a.sin_addr.s_addr)
        differs("getpeername: another address");
    recv_all(s, in, sizeof in);
    if (memcmp(in, out, sizeof in))
        differs("the echo differs");
    int r = connect(s, (struct sockaddr *)&a, sizeof a);
    printf("%s(MSG_FASTOPEN) sent %zd, echoed; connect after: %s\n", msg ? "sendmsg" : "sendto",
           w, r == 0 ? "0" : strerror(errno));
    end_echo(s);
    return 0;
}

struct race {
    int s, conn;
    struct sockaddr_in a;
    ssize_t w;
    int err;
    atomic_int done;
};

static void *race_send(void *arg)
{
    struct race *r = arg;
    unsigned char out[1000];
    for (size_t i = 0; i < sizeof out; i++)
        out[i] = pattern_byte(i);
    if (r->conn)
        r->w = connect(r->s, (struct sockaddr *)&r->a, sizeof r->a);
    else
        r->w = sendto(r->s, out, sizeof out, MSG_FASTOPEN | MSG_NOSIGNAL,
                      (struct sockaddr *)&r->a, sizeof r->a);
    r->err = errno;
    atomic_store(&r->done, 1);
    return NULL;
}

/* The number's state after the race: connected, unconnected, or closed
 * (EBADF). */
static const char *number_state(int s)
{
    struct sockaddr_in p;
    socklen_t pl = sizeof p;
    if (getpeername(s, (struct sockaddr *)&p, &pl) == 0)
        return "connected";
    return errno == ENOTCONN ? "unconnected" : errno == EBADF ? "closed" : strerror(errno);
}

static int race(const char *host, int port, const char *dir, int conn, int closing)
{
    char go[4096], replaced[4096];
    snprintf(go, sizeof go, "%s/go", dir);
    snprintf(replaced, sizeof replaced, "%s/replaced", dir);
    struct race r = {.a = ipv4_addr(host, port), .conn = conn};
    r.s = socket(AF_INET, SOCK_STREAM, 0);
    if (r.s < 0)
        die("socket");
    alarm(60); /* a hang is the bug: end it */
    pthread_t t;
    if (pthread_create(&t, NULL, race_send, &r) != 0)
        die("pthread_create");
    /* until the call returned (over kernel TCP: at once), or the script
     * says that it waits for its handshake (go: a datagram of it dropped,
     * so the supervisor has made it on its copy of the socket) */
    for (int i = 0; i < 3000 && !atomic_load(&r.done) && access(go, F_OK) != 0; i++)
        usleep(10000);
    if (closing) {
        if (close(r.s) < 0)
            die("close");
    } else {
        int f = socket(AF_INET, SOCK_STREAM, 0);
        if (f < 0 || dup2(f, r.s) != r.s || close(f) < 0)
            die("a fresh socket at the number");
    }
    int mark = open(replaced, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (mark < 0 || close(mark) < 0)
        die("the file");
    pthread_join(t, NULL);
    const char *now = number_state(r.s);
    char sent[64];
    if (r.w >= 0)
        snprintf(sent, sizeof sent, "%s %zd", conn ? "returned" : "sent", r.w);
    else
        snprintf(sent, sizeof sent, "failed (%s)", strerror(r.err));
    printf("%s on a number %s meanwhile: %s; the number now: %s\n",
           conn ? "connect()" : "sendto(MSG_FASTOPEN)", closing ? "closed" : "given another socket",
           sent, now);
    if (!closing)
        close(r.s);
    return r.w == (conn ? 0 : 1000) && strcmp(now, closing ? "closed" : "unconnected") == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 4 && strcmp(argv[1], "ioctls") == 0)
        return ioctls(argv[2], atoi(argv[3]));
    if (argc == 3 && strcmp(argv[1], "oob") == 0)
        return oob(atoi(argv[2]));
    if (argc == 4 && strcmp(argv[1], "tfo") == 0)
        return tfo(argv[2], atoi(argv[3]), 0, 0);
    if (argc == 4 && strcmp(argv[1], "tfomsg") == 0)
        return tfo(argv[2], atoi(argv[3]), 1, 0);
    if (argc == 4 && strcmp(argv[1], "tfolow") == 0)
        return tfo(argv[2], atoi(argv[3]), 0, 1);
    int closing = argc == 6 && strcmp(argv[5], "close") == 0;
    if ((argc == 5 || closing) && strcmp(argv[1], "tforace") == 0)
        return race(argv[2], atoi(argv[3]), argv[4], 0, closing);
    if ((argc == 5 || closing) && strcmp(argv[1], "connrace") == 0)
        return race(argv[2], atoi(argv[3]), argv[4], 1, closing);
    fprintf(stderr, "usage: prog_reachcalls ioctls HOST PORT | oob PORT | tfo HOST PORT | "
                    "tfomsg HOST PORT | tfolow HOST PORT | tforace|connrace HOST PORT DIR [close]\n");
    return 2;
}
