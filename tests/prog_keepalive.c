/*
 * prog_keepalive: SO_KEEPALIVE with TCP_KEEPIDLE 1, TCP_KEEPINTVL 1 and
 * TCP_KEEPCNT 2 finds a peer gone dark, as TCP's keepalive does (3 s).
 *
 *   prog_keepalive CASE DROP
 *
 * The peer (a forked child) and this process exchange a few bytes, then
 * the shell command DROP cuts the path (t_prog_keepalive.sh: an nftables
 * rule dropping everything, in a network namespace of the test's own) and
 * this process waits in read(): it must end with ETIMEDOUT within 20 s
 * (TCP: about 3 s). CASE says where the options are set:
 *
 *   before    on the client's socket before connect()
 *   after     on the client's connected socket
 *   listener  on the listening socket; the accepted connection, which
 *             inherits them as TCP's children do, is the one that waits
 *
 * Under the shim before 2026-11-29 the options were kept for getsockopt
 * only: a dead peer was found at rudp's idle timeout (120 s by default).
 *
 * Prints "transport: KIND" and "ending CASE: ..."; exit 1 with a "FAIL:"
 * line, 3 if the watchdog (60 s) fired.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_keepalive";

static pid_t child;
static void end_child(void)
{
    if (child > 0)
        kill(child, SIGKILL);
}

static void keepalive(int fd)
{
    setsockopt_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
    setsockopt_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, 1);
    setsockopt_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, 1);
    setsockopt_int(fd, IPPROTO_TCP, TCP_KEEPCNT, 2);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    watchdog(60);
    CHECK(argc == 3 && (!strcmp(argv[1], "before") || !strcmp(argv[1], "after") ||
                        !strcmp(argv[1], "listener")),
          "usage: prog_keepalive before|after|listener DROP");
    const char *kase = argv[1], *drop = argv[2];
    int served = !strcmp(kase, "listener"); /* this process is the server */
    int l = socket(AF_INET, SOCK_STREAM, 0);
    SYS(l);
    if (served)
        keepalive(l);
    SYS(listen_lo_at(l, 0, 8));
    unsigned port = port_of_fd(l);
    fflush(stdout);
    SYS(child = fork());
    if (child == 0) {
        /* the peer: says hello, then waits to be killed */
        int s;
        if (served) {
            close(l);
            s = connect_lo(port);
        } else {
            s = accept(l, NULL, NULL);
        }
        if (s < 0 || write(s, "hi", 2) != 2)
            _exit(2);
        for (;;)
            pause();
    }
    prog_on_fail = end_child;
    int c;
    if (served) {
        c = accept(l, NULL, NULL);
        SYS(c);
    } else {
        close(l);
        c = socket(AF_INET, SOCK_STREAM, 0);
        SYS(c);
        if (!strcmp(kase, "before"))
            keepalive(c);
        struct sockaddr_in sin = ipv4_addr("127.0.0.1", port);
        SYS(connect(c, (struct sockaddr *)&sin, sizeof sin));
        if (!strcmp(kase, "after"))
            keepalive(c);
    }
    printf("transport: %s\n", fd_transport(c));
    char b[2];
    read_exact(c, b, 2, 5000);
    CHECK(system(drop) == 0, "the command cutting the path failed: %s", drop);
    double t0 = now_s();
    short ev = poll_for(c, POLLIN, 20000);
    ssize_t r = ev ? read(c, b, 1) : -2;
    int err = r < 0 ? errno : 0;
    printf("ending %s: poll=%#x read=%zd errno=%s after %.1f s\n", kase, (unsigned)ev, r,
           r == -1 ? strerror(err) : "-", now_s() - t0);
    CHECK(r == -1 && err == ETIMEDOUT,
          "%s: the dark path did not end the connection with ETIMEDOUT within 20 s (%s)", kase,
          r == -2 ? "still waiting" : r == -1 ? strerror(err) : "data or EOF");
    end_child();
    waitpid(child, NULL, 0);
    return 0;
}
