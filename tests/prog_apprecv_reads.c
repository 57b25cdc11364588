/*
 * prog_apprecv_reads.c: prog_apprecv's checks of what a blocked read
 * returns (what each checks: prog_apprecv.c): direct (the bytes straight
 * from the connection, in order, EFAULT, a blocking peek, an urgent byte),
 * lowat (SO_RCVLOWAT) and rxmode (the mark set by another process or an
 * image without the shim: the program's --lowat and --lowat-recv modes).
 */
#include <errno.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"
#include "prog_apprecv.h"

/* SO_RCVLOWAT 4 with 1 byte queued: a blocking read does not return it
 * alone (the reader is seen asleep); once 8 more come it returns at least
 * 4, 'L' first. (Kernel TCP wakes it only when the bytes not yet copied
 * reach the mark, hence 8: more than 4 after the one it holds.) */
/* n bytes of a pattern that tells their order (i: the exchange) */
static void pattern(char *b, size_t n, int i)
{
    for (size_t k = 0; k < n; k++)
        b[k] = (char)('!' + (int)((k * 7 + (size_t)i) % 90));
}

static char urgent_buf[4];

static void *urgent_read(void *arg)
{
    struct blocked *b = arg;
    b->tid = (pid_t)syscall(SYS_gettid);
    b->started = 1;
    size_t have = 0;
    while (have < 3) { /* a read stops at the urgent mark */
        ssize_t r = read(b->fd, urgent_buf + have, 3 - have);
        if (r <= 0) {
            b->got = r;
            b->err = errno;
            return NULL;
        }
        have += (size_t)r;
    }
    b->got = (ssize_t)have;
    return NULL;
}

/* An urgent byte, then two more, to a reader blocked in read() with
 * SO_OOBINLINE, on a connection to ourselves: the urgent byte comes first
 * (a review found "cdX" in 28 of 40 rounds with the bytes after it put
 * straight into the buffer while it went into the bridge). */
static void check_direct_urgent(void)
{
    int l = listener_lo(0, 4);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    SYS(getsockname(l, (struct sockaddr *)&ss, &sl));
    int c = connect_lo(port_of(&ss));
    CHECK(c >= 0, "connect to ourselves: %s", strerror(errno));
    int a = accept(l, NULL, NULL);
    CHECK(a >= 0, "accept: %s", strerror(errno));
    setsockopt_int(c, SOL_SOCKET, SO_OOBINLINE, 1);
    for (int i = 0; i < 40; i++) {
        struct blocked b;
        memset(&b, 0, sizeof b);
        b.fd = c;
        CHECK(pthread_create(&b.t, NULL, urgent_read, &b) == 0, "pthread_create");
        wait_blocked(&b);
        CHECK(send(a, "X", 1, MSG_OOB) == 1, "send MSG_OOB: %s", strerror(errno));
        write_exact(a, "cd", 2);
        pthread_join(b.t, NULL);
        CHECK(b.got == 3 && memcmp(urgent_buf, "Xcd", 3) == 0,
              "urgent %d: read %zd (%s), bytes '%.3s' for 'Xcd'", i, b.got,
              b.got < 0 ? strerror(b.err) : "-", urgent_buf);
    }
    close(a);
    close(c);
    close(l);
}

void check_direct(int fd)
{
    char want[256], got[256];
    for (int i = 0; i < 300; i++) {
        size_t n = 1 + (size_t)(i * 37) % 200;
        pattern(want, n, i);
        write_exact(fd, want, n);
        size_t have = 0;
        while (have < n) { /* the first read blocks before the echo is back */
            size_t ask = n - have < 7 ? n - have : 7;
            ssize_t r = read(fd, got + have, ask);
            CHECK(r > 0, "direct %d: read %zd (%s) after %zu of %zu bytes", i, r,
                  r < 0 ? strerror(errno) : "EOF", have, n);
            have += (size_t)r;
        }
        CHECK(memcmp(got, want, n) == 0, "direct %d: %zu bytes read out of order", i, n);
    }
    for (int i = 0; i < 100; i++) {
        size_t n = 3 + (size_t)i % 40;
        pattern(want, n, i + 1000);
        write_exact(fd, want, n);
        size_t have = 0;
        while (have < n) {
            size_t left = n - have, a = left < 2 ? left : 2, b = left - a < 3 ? left - a : 3;
            struct iovec v[3] = {{got + have, a}, {got + have + a, b},
                                 {got + have + a + b, left - a - b}};
            ssize_t r = readv(fd, v, 3);
            CHECK(r > 0, "direct readv %d: %zd (%s)", i, r, r < 0 ? strerror(errno) : "EOF");
            have += (size_t)r;
        }
        CHECK(memcmp(got, want, n) == 0, "direct readv %d: bytes out of order", i);
    }
    /* a bad buffer: EFAULT, and the bytes wait for the next read */
    static volatile uintptr_t bad = 16; /* unmapped, unknown to the compiler */
    for (int i = 0; i < 20; i++) {
        pattern(want, 20, i + 2000);
        write_exact(fd, want, 20);
        ssize_t r = read(fd, (void *)bad, 20);
        CHECK(r < 0 && errno == EFAULT, "read into a bad buffer: %zd (%s), want EFAULT", r,
              r < 0 ? strerror(errno) : "no error");
        read_exact(fd, got, 20, SHOWN_MS);
        CHECK(memcmp(got, want, 20) == 0, "the bytes a bad read left: other bytes");
    }
    /* a blocking peek: what it saw is still there */
    for (int i = 0; i < 50; i++) {
        pattern(want, 10, i + 3000);
        write_exact(fd, want, 10);
        char p[10];
        ssize_t r = recv(fd, p, sizeof p, MSG_PEEK);
        CHECK(r > 0 && memcmp(p, want, (size_t)r) == 0, "a blocking peek: %zd (%s)", r,
              r < 0 ? strerror(errno) : "bytes");
        read_exact(fd, got, 10, SHOWN_MS);
        CHECK(memcmp(got, want, 10) == 0, "after a peek: other bytes");
    }
    check_direct_urgent();
    printf("ok: direct\n");
}

static char lowat_buf[16];

static void *lowat_read(void *arg)
{
    struct blocked *b = arg;
    b->tid = (pid_t)syscall(SYS_gettid);
    b->started = 1;
    b->got = read(b->fd, lowat_buf, sizeof lowat_buf);
    b->err = errno;
    b->done = 1;
    return NULL;
}

void check_lowat(int fd)
{
    setsockopt_int(fd, SOL_SOCKET, SO_RCVLOWAT, 4);
    char c = 'L';
    write_exact(fd, &c, 1);
    int q = 0;
    for (int i = 0; i < 5000 && q < 1; i++) { /* the echo is back, unread */
        SYS(ioctl(fd, FIONREAD, &q));
        if (q < 1)
            usleep(1000);
    }
    CHECK(q == 1, "lowat: the echoed byte never came");
    struct blocked b;
    memset(&b, 0, sizeof b);
    b.fd = fd;
    CHECK(pthread_create(&b.t, NULL, lowat_read, &b) == 0, "pthread_create");
    wait_blocked(&b); /* fails if the read returned the one byte */
    write_exact(fd, "MNOPQRST", 8);
    pthread_join(b.t, NULL);
    CHECK(b.got >= 4 && lowat_buf[0] == 'L', "SO_RCVLOWAT 4: read gave %zd (%s)", b.got,
          b.got < 0 ? strerror(b.err) : "bytes");
    setsockopt_int(fd, SOL_SOCKET, SO_RCVLOWAT, 1);
    char rest[16];
    read_exact(fd, rest, (size_t)(9 - b.got), SHOWN_MS);
    memcpy(lowat_buf + b.got, rest, (size_t)(9 - b.got));
    CHECK(memcmp(lowat_buf, "LMNOPQRST", 9) == 0, "SO_RCVLOWAT: other bytes");
    printf("ok: lowat\n");
}

/* A reader blocked on fd with nothing queued, after someone set
 * SO_RCVLOWAT 4 (a process of ours or not, unseen by this one): one byte
 * echoed back does not end its read, 8 more do, 'L' first. Once the
 * connection has the byte (TCP_INFO's bytes received: it may be queued,
 * or copied by a unix socket's read that waits on for the rest), the
 * reader is still in its read 20 ms later. Under the
 * shim the read's mode is kept between reads (engine/apprecv.c,
 * interpose/recv.c): kept past the change, the wait gave the one byte
 * straight to the reader, which returned. */
static uint64_t bytes_received(int fd)
{
    struct tcp_info ti;
    socklen_t l = sizeof ti;
    memset(&ti, 0, sizeof ti);
    SYS(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l));
    return ti.tcpi_bytes_received;
}

static void lowat_unseen(int fd, const char *who)
{
    struct blocked b;
    memset(&b, 0, sizeof b);
    b.fd = fd;
    CHECK(pthread_create(&b.t, NULL, lowat_read, &b) == 0, "pthread_create");
    wait_blocked(&b);
    uint64_t before = bytes_received(fd), now = before;
    write_exact(fd, "L", 1);
    for (int i = 0; i < 5000 && now == before && !b.done; i++) {
        now = bytes_received(fd);
        if (now == before && !b.done)
            usleep(1000);
    }
    if (!b.done)
        usleep(20000); /* a read that had it all returns now */
    CHECK(!b.done, "SO_RCVLOWAT 4 set by %s: a read returned %zd (%s) with one byte", who,
          b.got, b.got < 0 ? strerror(b.err) : "bytes");
    CHECK(now == before + 1, "lowat by %s: the echoed byte never came (%llu bytes)", who,
          (unsigned long long)(now - before));
    write_exact(fd, "MNOPQRST", 8);
    pthread_join(b.t, NULL);
    CHECK(b.got >= 4 && lowat_buf[0] == 'L', "SO_RCVLOWAT 4 set by %s: read gave %zd (%s)", who,
          b.got, b.got < 0 ? strerror(b.err) : "bytes");
    setsockopt_int(fd, SOL_SOCKET, SO_RCVLOWAT, 1);
    char rest[16];
    read_exact(fd, rest, (size_t)(9 - b.got), SHOWN_MS);
    memcpy(lowat_buf + b.got, rest, (size_t)(9 - b.got));
    CHECK(memcmp(lowat_buf, "LMNOPQRST", 9) == 0, "lowat by %s: other bytes", who);
}

/* The environment without LD_PRELOAD: an image that does not run the shim */
extern char **environ;
static char **env_bare(void)
{
    static char *e[256];
    int n = 0;
    for (char **p = environ; *p && n < 255; p++)
        if (strncmp(*p, "LD_PRELOAD=", 11) != 0)
            e[n++] = *p;
    e[n] = NULL;
    return e;
}

/* --lowat FD: SO_RCVLOWAT 4 on FD, inherited, in an image without the shim */
int lowat_helper(int fd)
{
    int v = 4;
    return setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v) == 0 ? 0 : 2;
}

/* --lowat-recv FD: the same on a socket passed over FD (SCM_RIGHTS); one
 * byte back says done */
int lowat_recv_helper(int sp)
{
    char x, ctl[CMSG_SPACE(sizeof(int))];
    struct iovec v = {&x, 1};
    struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = ctl,
                       .msg_controllen = sizeof ctl};
    if (recvmsg(sp, &m, 0) != 1)
        return 2;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    if (!c || c->cmsg_type != SCM_RIGHTS)
        return 3;
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    if (lowat_helper(fd) != 0 || write(sp, "k", 1) != 1)
        return 4;
    return 0;
}

static pid_t spawn_bare(const char *mode, int fd)
{
    pid_t p = fork();
    SYS(p);
    if (p == 0) {
        char fs[16];
        snprintf(fs, sizeof fs, "%d", fd);
        char *argv[] = {"prog_apprecv", (char *)mode, fs, NULL};
        execve("/proc/self/exe", argv, env_bare());
        _exit(5);
    }
    return p;
}

static void reap_ok(pid_t p, const char *who)
{
    int st = 0;
    SYS(waitpid(p, &st, 0));
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s exited %d", who, st);
}

/* - rxmode: SO_RCVLOWAT set, after reads that waited, by this process, by a
 *   forked child, by an image without the shim that inherited the socket,
 *   and by one that got it over a unix socket (SCM_RIGHTS): each time a
 *   blocked read keeps the mark (lowat_unseen). */
void check_rxmode(int fd, int forks)
{
    echo(fd, 20);
    setsockopt_int(fd, SOL_SOCKET, SO_RCVLOWAT, 4);
    lowat_unseen(fd, "this process");
    if (!forks) {
        printf("skip: rxmode: the children's parts, not under this runtime "
               "(PROG_APPRECV_NOFORK=1)\n");
        printf("ok: rxmode\n");
        return;
    }
    echo(fd, 20);
    pid_t p = fork();
    SYS(p);
    if (p == 0) {
        int v = 4;
        _exit(setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v) == 0 ? 0 : 2);
    }
    reap_ok(p, "the forked child");
    lowat_unseen(fd, "a forked child");
    echo(fd, 20);
    reap_ok(spawn_bare("--lowat", fd), "the image without the shim");
    lowat_unseen(fd, "an image without the shim");
    /* the helper first (an exec marks every bridge there is), then the
     * connection it gets */
    int sp[2];
    SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sp));
    p = spawn_bare("--lowat-recv", sp[1]);
    close(sp[1]);
    int c = connect_lo(port);
    CHECK(c >= 0, "connect: %s", strerror(errno));
    echo(c, 20);
    char x = 'p', ctl[CMSG_SPACE(sizeof(int))];
    memset(ctl, 0, sizeof ctl);
    struct iovec v = {&x, 1};
    struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = ctl,
                       .msg_controllen = sizeof ctl};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &c, sizeof c);
    CHECK(sendmsg(sp[0], &m, 0) == 1, "sendmsg SCM_RIGHTS: %s", strerror(errno));
    CHECK(read(sp[0], &x, 1) == 1 && x == 'k', "the receiving image said nothing");
    reap_ok(p, "the receiving image");
    close(sp[0]);
    lowat_unseen(c, "an image without the shim, over SCM_RIGHTS");
    close(c);
    printf("ok: rxmode\n");
}
