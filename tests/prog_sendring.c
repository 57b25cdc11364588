/*
 * prog_sendring: writes handed to the engine in memory
 * (shim/engine/txring.c) where a connection's life makes that hard, each
 * checked by what the peer reads; over kernel TCP the same program must
 * pass unchanged (found by a review of the path, each lost bytes before
 * its fix):
 *   shutrd   the server shuts down reading only; the client's bytes it
 *            never reads come; its writes after that all arrive;
 *   exec     a connection written to, then inherited over exec; the new
 *            image makes a connection of its own (its slot index may be
 *            the inherited one's) and writes to the inherited one: every
 *            write reaches that connection's peer, in order;
 *   sigterm  a thread writes a numbered stream while the process dies of
 *            SIGTERM: the peer reads the numbers without a gap, then EOF.
 * Prints "transport:" for a connection and "ok".
 */
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_sendring";

/* Reads fd until EOF (or 5 s without a byte) into buf: the count. */
static size_t read_all(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    while (got < cap && poll_for(fd, POLLIN, 5000) & (POLLIN | POLLHUP)) {
        ssize_t n = read(fd, buf + got, cap - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

/* A listener on a loopback port of the kernel's choice: its port. */
static unsigned listen_any(int *l)
{
    *l = listener_lo(0, 4);
    SYS(*l);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    SYS(getsockname(*l, (struct sockaddr *)&ss, &sl));
    return port_of(&ss);
}

static void shutrd(void)
{
    int l;
    int c = connect_lo(listen_any(&l));
    SYS(c);
    int s = accept(l, NULL, NULL);
    SYS(s);
    printf("transport: %s\n", fd_transport(c));
    SYS(shutdown(s, SHUT_RD));
    /* bytes the server will never read: its end refuses them */
    CHECK(write(c, "ping", 4) == 4, "write: %s", strerror(errno));
    usleep(200000);
    char b[100];
    memset(b, 'a', sizeof b);
    for (int i = 0; i < 20; i++) {
        CHECK(write(s, b, sizeof b) == (ssize_t)sizeof b, "server write %d: %s", i,
              strerror(errno));
        usleep(10000);
    }
    SYS(shutdown(s, SHUT_WR));
    static char got[4096];
    size_t n = read_all(c, got, sizeof got);
    CHECK(n == 20 * sizeof b, "after SHUT_RD: the server wrote %zu bytes, the client read %zu",
          20 * sizeof b, n);
    printf("ok: shutrd: every write after shutdown(SHUT_RD) arrived\n");
}

/* exec: the server, a child: reads each of two connections to EOF and
 * says what each carried. */
static void exec_server(int l, int out)
{
    int a = accept(l, NULL, NULL), b = accept(l, NULL, NULL);
    static char ba[512], bb[512];
    size_t na = read_all(a, ba, sizeof ba - 1), nb = read_all(b, bb, sizeof bb - 1);
    dprintf(out, "%.*s|%.*s\n", (int)na, ba, (int)nb, bb);
    _exit(0);
}

static void exec_stage2(int fa, unsigned port, int rd, pid_t srv)
{
    /* calls that have the new image note the inherited fd as a connection */
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    SYS(getpeername(fa, (struct sockaddr *)&ss, &sl));
    int on = 1, q = -1;
    SYS(setsockopt(fa, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on));
    SYS(ioctl(fa, SIOCOUTQ, &q));
    int cb = connect_lo(port);
    SYS(cb);
    CHECK(write(cb, "B", 1) == 1, "write B: %s", strerror(errno));
    for (int i = 0; i < 5; i++) {
        char m[16];
        int k = snprintf(m, sizeof m, "after%d;", i);
        CHECK(write(fa, m, (size_t)k) == k, "write on the inherited fd: %s", strerror(errno));
        usleep(20000);
    }
    SYS(close(fa));
    SYS(close(cb));
    char line[1200];
    ssize_t n = read(rd, line, sizeof line - 1);
    CHECK(n > 0, "no word from the server");
    line[n] = 0;
    CHECK(strcmp(line, "before;after0;after1;after2;after3;after4;|B\n") == 0,
          "the server read '%.*s'", (int)(n - 1), line);
    int st;
    SYS(waitpid(srv, &st, 0));
    printf("ok: exec: the inherited connection carried every write, in order\n");
}

static void exec_first(const char *self)
{
    int l;
    unsigned port = listen_any(&l);
    int p[2];
    SYS(pipe(p));
    pid_t srv = fork();
    SYS(srv);
    if (srv == 0) {
        close(p[0]);
        exec_server(l, p[1]);
    }
    close(p[1]);
    close(l);
    int fa = connect_lo(port);
    SYS(fa);
    printf("transport: %s\n", fd_transport(fa));
    fflush(stdout);
    CHECK(write(fa, "before;", 7) == 7, "write: %s", strerror(errno));
    usleep(100000);
    char a1[16], a2[16], a3[16], a4[16];
    snprintf(a1, sizeof a1, "%d", fa);
    snprintf(a2, sizeof a2, "%u", port);
    snprintf(a3, sizeof a3, "%d", p[0]);
    snprintf(a4, sizeof a4, "%d", (int)srv);
    execl(self, self, "exec2", a1, a2, a3, a4, (char *)NULL);
    failf(__LINE__, "exec: %s", strerror(errno));
}

static int writer_fd;
static void *writer(void *arg)
{
    (void)arg;
    char m[16];
    for (unsigned i = 0;; i++) {
        snprintf(m, sizeof m, "%014u\n", i);
        if (write(writer_fd, m, 15) != 15)
            return NULL;
        if ((i & 63) == 0)
            usleep(50);
    }
}

static void sigterm(void)
{
    int l;
    unsigned port = listen_any(&l);
    pid_t kid = fork();
    SYS(kid);
    if (kid == 0) {
        close(l);
        writer_fd = connect_lo(port);
        if (writer_fd < 0)
            _exit(2);
        pthread_t t;
        if (pthread_create(&t, NULL, writer, NULL) != 0)
            _exit(2);
        usleep(300000);
        signal(SIGTERM, SIG_DFL);
        kill(getpid(), SIGTERM);
        pause();
        _exit(2);
    }
    int s = accept(l, NULL, NULL);
    SYS(s);
    printf("transport: %s\n", fd_transport(s));
    static char buf[1 << 16];
    char num[16];
    size_t nl = 0;
    unsigned expect = 0;
    for (;;) {
        CHECK(poll_for(s, POLLIN, 10000) & (POLLIN | POLLHUP), "no EOF 10 s after %u", expect);
        ssize_t r = read(s, buf, sizeof buf);
        CHECK(r >= 0, "read after %u: %s", expect, strerror(errno));
        if (r == 0)
            break;
        for (ssize_t i = 0; i < r; i++) {
            num[nl++] = buf[i];
            if (nl == 15) {
                unsigned v = (unsigned)strtoul(num, NULL, 10);
                CHECK(v == expect && num[14] == '\n', "expected %u, read %u", expect, v);
                expect++;
                nl = 0;
            }
        }
    }
    CHECK(nl == 0 || expect > 0, "nothing read");
    int st;
    SYS(waitpid(kid, &st, 0));
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "the writer did not die of SIGTERM");
    printf("ok: sigterm: %u records without a gap, then EOF\n", expect);
}

int main(int argc, char **argv)
{
    CHECK(argc >= 2, "usage: prog_sendring shutrd|exec|sigterm");
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    watchdog(60);
    if (strcmp(argv[1], "shutrd") == 0)
        shutrd();
    else if (strcmp(argv[1], "exec") == 0)
        exec_first(argv[0]);
    else if (strcmp(argv[1], "exec2") == 0 && argc == 6)
        exec_stage2(atoi(argv[2]), (unsigned)atoi(argv[3]), atoi(argv[4]), (pid_t)atoi(argv[5]));
    else if (strcmp(argv[1], "sigterm") == 0)
        sigterm();
    else
        failf(__LINE__, "unknown case %s", argv[1]);
    printf("ok\n");
    return 0;
}
