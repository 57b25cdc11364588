/*
 * prog_oob: addresses on send/recv calls, urgent data (MSG_OOB) and
 * SO_PEERCRED on a connected TCP socket, as Linux TCP gives them.
 *
 *   prog_oob             run every check below; exit 0 iff all hold
 *
 *   - sendto() and sendmsg() with an address on a connected socket ignore
 *     it and send the bytes (tcp_sendmsg never looks at msg_name);
 *   - recvfrom() and recvmsg() asking for the sender's address get the
 *     bytes and an address length of 0 (tcp_recvmsg fills no address);
 *   - getsockopt(SO_PEERCRED) says pid 0, uid and gid -1 (a TCP socket has
 *     no peer credentials: cred_to_ucred() with none, net/core/sock.c), and
 *     SO_PEERGROUPS and SO_PEERPIDFD say ENODATA;
 *   - recv(MSG_OOB) with no urgent data says EINVAL;
 *   - one urgent byte (send(MSG_OOB), man 7 tcp "Sockets API"): the F_SETOWN
 *     owner gets SIGURG, poll() says POLLPRI, SIOCATMARK is 0 before the
 *     mark, a read stops at the mark, SIOCATMARK is then 1, recv(MSG_OOB)
 *     returns the byte (SIOCATMARK stays 1 until the next read) and the
 *     stream goes on without it; only the last
 *     byte of a send(MSG_OOB) is urgent;
 *   - with SO_OOBINLINE the urgent byte stays in the stream, at the mark,
 *     and recv(MSG_OOB) says EINVAL; both directions (client to accepted
 *     socket, and back).
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "progutil.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5 */
#endif

#define WATCHDOG_S 60
#define EVENT_MS 5000

const char *prog_name = "prog_oob";

static void pair(int *c, int *a)
{
    struct sockaddr_storage sa;
    socklen_t sl = loopback(AF_INET, 0, &sa);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    SYS(l);
    SYS(bind(l, (struct sockaddr *)&sa, sl));
    SYS(getsockname(l, (struct sockaddr *)&sa, &sl));
    SYS(listen(l, 4));
    *c = socket(AF_INET, SOCK_STREAM, 0);
    SYS(*c);
    SYS(connect(*c, (struct sockaddr *)&sa, sl));
    struct pollfd p = {.fd = l, .events = POLLIN};
    int n = poll(&p, 1, EVENT_MS);
    SYS(n);
    CHECK(n == 1, "no connection to accept within %d ms", EVENT_MS);
    *a = accept(l, NULL, NULL);
    SYS(*a);
    close(l);
    printf("transport: %s (client), %s (accepted)\n", fd_transport(*c), fd_transport(*a));
}

static void wait_for(int fd, short ev)
{
    struct pollfd p = {.fd = fd, .events = ev};
    int n = poll(&p, 1, EVENT_MS);
    SYS(n);
    CHECK(n == 1 && (p.revents & ev), "no event %#x within %d ms (revents %#x)", ev, EVENT_MS,
          p.revents);
}

static void send_all(int fd, const char *s, int flags)
{
    size_t len = strlen(s);
    ssize_t w = send(fd, s, len, flags);
    SYS(w);
    CHECK((size_t)w == len, "send wrote %zd of %zu", w, len);
}

static int at_mark(int fd)
{
    int v = -1;
    SYS(ioctl(fd, SIOCATMARK, &v));
    return v;
}

static void check_send_with_address(int c, int a)
{
    struct sockaddr_in other = {.sin_family = AF_INET, .sin_port = htons(9)};
    other.sin_addr.s_addr = htonl(0x0a010203); /* 10.1.2.3: not the peer */
    ssize_t w = sendto(c, "ab", 2, 0, (struct sockaddr *)&other, sizeof other);
    SYS(w);
    CHECK(w == 2, "sendto wrote %zd", w);
    struct iovec iov = {.iov_base = "cd", .iov_len = 2};
    struct msghdr m = {.msg_name = &other, .msg_namelen = sizeof other, .msg_iov = &iov,
                       .msg_iovlen = 1};
    w = sendmsg(c, &m, 0);
    SYS(w);
    CHECK(w == 2, "sendmsg wrote %zd", w);
    char buf[4];
    read_exact(a, buf, 4, EVENT_MS);
    CHECK(memcmp(buf, "abcd", 4) == 0, "read %.4s, not abcd", buf);
    printf("ok: sendto()/sendmsg() with an address on a connected socket send to the peer\n");
}

static void check_recv_address(int c, int a)
{
    send_all(a, "xy", 0);
    wait_for(c, POLLIN);
    struct sockaddr_storage ss;
    memset(&ss, 0xee, sizeof ss);
    socklen_t sl = sizeof ss;
    ssize_t r = recvfrom(c, (char[1]){0}, 1, 0, (struct sockaddr *)&ss, &sl);
    SYS(r);
    CHECK(r == 1, "recvfrom read %zd", r);
    CHECK(sl == 0, "recvfrom: address length %u, not 0 (family %u)", (unsigned)sl,
          (unsigned)ss.ss_family);
    char b;
    struct iovec iov = {.iov_base = &b, .iov_len = 1};
    struct msghdr m = {.msg_name = &ss, .msg_namelen = sizeof ss, .msg_iov = &iov,
                       .msg_iovlen = 1};
    r = recvmsg(c, &m, 0);
    SYS(r);
    CHECK(r == 1 && b == 'y', "recvmsg read %zd", r);
    CHECK(m.msg_namelen == 0, "recvmsg: address length %u, not 0", (unsigned)m.msg_namelen);
    printf("ok: recvfrom()/recvmsg() on a connected socket report no address (length 0)\n");
}

static void check_peercred(int fd, const char *who)
{
    struct ucred u;
    memset(&u, 0x55, sizeof u);
    socklen_t l = sizeof u;
    SYS(getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &u, &l));
    CHECK(l == sizeof u, "SO_PEERCRED length %u", (unsigned)l);
    CHECK(u.pid == 0 && u.uid == (uid_t)-1 && u.gid == (gid_t)-1,
          "%s: SO_PEERCRED says pid %d uid %d gid %d, not 0 -1 -1", who, (int)u.pid, (int)u.uid,
          (int)u.gid);
    char b[64];
    l = sizeof b;
    errno = 0;
    CHECK(getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, b, &l) < 0 && errno == ENODATA,
          "%s: SO_PEERGROUPS: %s, not ENODATA", who, strerror(errno));
    l = sizeof b;
    errno = 0;
    CHECK(getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, b, &l) < 0 && errno == ENODATA,
          "%s: SO_PEERPIDFD: %s, not ENODATA", who, strerror(errno));
    printf("ok: %s: SO_PEERCRED says pid 0, uid -1, gid -1; SO_PEERGROUPS, SO_PEERPIDFD ENODATA\n",
           who);
}

static void check_no_urgent(int fd)
{
    char b;
    errno = 0;
    CHECK(recv(fd, &b, 1, MSG_OOB | MSG_DONTWAIT) < 0 && errno == EINVAL,
          "recv(MSG_OOB) with no urgent data: %s, not EINVAL", strerror(errno));
    printf("ok: recv(MSG_OOB) with no urgent data -> EINVAL\n");
}

/* SIGURG is blocked: the check takes it with sigtimedwait. */
static void wait_sigurg(void)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGURG);
    struct timespec ts = {.tv_sec = EVENT_MS / 1000};
    int sig = sigtimedwait(&s, NULL, &ts);
    CHECK(sig == SIGURG, "no SIGURG within %d ms: %s", EVENT_MS, strerror(errno));
}

static void check_urgent(int snd, int rcv)
{
    SYS(fcntl(rcv, F_SETOWN, getpid()));
    send_all(snd, "hel", 0);
    send_all(snd, "loU", MSG_OOB); /* 'U' is the urgent byte */
    send_all(snd, "world", 0);
    wait_sigurg();
    printf("ok: the F_SETOWN owner gets SIGURG\n");
    wait_for(rcv, POLLPRI);
    printf("ok: poll() says POLLPRI\n");
    CHECK(at_mark(rcv) == 0, "SIOCATMARK 1 before the mark");
    char buf[16];
    ssize_t r = read(rcv, buf, sizeof buf);
    SYS(r);
    CHECK(r == 5 && memcmp(buf, "hello", 5) == 0, "read %zd bytes (%.*s), not hello",
          r, (int)(r > 0 ? r : 0), buf);
    CHECK(at_mark(rcv) == 1, "SIOCATMARK 0 at the mark");
    printf("ok: a read stops at the mark; SIOCATMARK 0 before it, 1 at it\n");
    char b = 0;
    r = recv(rcv, &b, 1, MSG_OOB);
    SYS(r);
    CHECK(r == 1 && b == 'U', "recv(MSG_OOB) gave %zd '%c', not 'U'", r, b);
    CHECK(at_mark(rcv) == 1, "SIOCATMARK 0 after recv(MSG_OOB), before the next read");
    read_exact(rcv, buf, 5, EVENT_MS);
    CHECK(memcmp(buf, "world", 5) == 0, "read %.5s after the mark, not world", buf);
    printf("ok: recv(MSG_OOB) returns the urgent byte; the stream goes on without it\n");
    SYS(fcntl(rcv, F_SETOWN, 0));
}

static void check_urgent_inline(int snd, int rcv)
{
    int on = 1;
    SYS(setsockopt(rcv, SOL_SOCKET, SO_OOBINLINE, &on, sizeof on));
    send_all(snd, "ab", 0);
    send_all(snd, "Z", MSG_OOB);
    send_all(snd, "cd", 0);
    wait_for(rcv, POLLPRI);
    char buf[8];
    ssize_t r = read(rcv, buf, sizeof buf);
    SYS(r);
    CHECK(r == 2 && memcmp(buf, "ab", 2) == 0, "read %zd bytes, not ab", r);
    CHECK(at_mark(rcv) == 1, "SO_OOBINLINE: SIOCATMARK 0 at the mark");
    char b;
    errno = 0;
    CHECK(recv(rcv, &b, 1, MSG_OOB | MSG_DONTWAIT) < 0 && errno == EINVAL,
          "recv(MSG_OOB) with SO_OOBINLINE: %s, not EINVAL", strerror(errno));
    read_exact(rcv, buf, 3, EVENT_MS);
    CHECK(memcmp(buf, "Zcd", 3) == 0, "read %.3s, not Zcd", buf);
    printf("ok: SO_OOBINLINE: the urgent byte is read in the stream at the mark\n");
}

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, WATCHDOG_S);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGURG);
    SYS(sigprocmask(SIG_BLOCK, &s, NULL));
    int c, a;
    pair(&c, &a);
    check_send_with_address(c, a);
    check_recv_address(c, a);
    check_peercred(c, "client");
    check_peercred(a, "accepted");
    check_no_urgent(a);
    check_urgent(c, a);
    check_urgent(a, c);
    check_urgent_inline(c, a);
    check_urgent_inline(a, c);
    close(c);
    close(a);
    printf("ok: all checks held\n");
    return 0;
}
