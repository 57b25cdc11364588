/*
 * prog_stderrconn: a connection on stderr carries the program's bytes
 * alone.
 *
 * inetd-style servers put a client's connection on fds 0, 1 and 2 (vsftpd's
 * session process, inetd's and xinetd's services, systemd's Accept=yes):
 * whatever the program writes to stderr goes to the client, and nothing
 * else may. The shim logs to stderr (RUDP_LOG; t_prog_stderrconn.sh runs
 * this with RUDP_LOG=info): a line logged while stderr is a connection
 * must not reach it. Here the accepted connection is dup2()'d onto fd 2,
 * then the program listens on a second socket and connects to it (each a
 * line at RUDP_LOG=info under the shim), writes "hello\n" to fd 2 and
 * closes it; the client (a forked child) must read exactly "hello\n", then
 * EOF. Under the shim before 2026-11-29 it read the shim's log lines
 * first (vsftpd's FTP replies came one behind, 10 sessions of 10).
 *
 * Prints "ok:" lines and "transport: KIND"; exit 1 with a "FAIL:" line,
 * 3 if the watchdog (60 s) fired.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_stderrconn";

#define IO_MS 10000

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, 60);
    int l = listener_lo(0, 4);
    unsigned port = port_of_fd(l);
    int rep[2];
    SYS(pipe(rep));
    pid_t k = fork();
    SYS(k);
    if (k == 0) { /* the client: everything the server's stderr sent */
        close(l);
        close(rep[0]);
        int c = connect_lo(port);
        char buf[4096];
        size_t n = read_to_eof(c, buf, sizeof buf - 1, IO_MS);
        if (write(rep[1], buf, n) != (ssize_t)n)
            _exit(2);
        _exit(0);
    }
    close(rep[1]);
    kill_on_fail(k);
    int a = accept_ready(l, IO_MS);
    printf("transport: %s\n", fd_transport(a));
    fflush(stdout);
    int saved = dup(2);
    SYS(saved);
    SYS(dup2(a, 2));
    close(a);
    /* under the shim at RUDP_LOG=info: a line for each */
    int l2 = listener_lo(0, 4);
    int c2 = connect_lo(port_of_fd(l2));
    int a2 = accept_ready(l2, IO_MS);
    close(c2);
    close(a2);
    close(l2);
    ssize_t w = write(2, "hello\n", 6);
    int we = errno;
    SYS(dup2(saved, 2)); /* the connection's last number: the client reads EOF */
    close(saved);
    CHECK(w == 6, "write to the connection on stderr: %s", w < 0 ? strerror(we) : "short");
    char got[4096];
    ssize_t n = 0, r;
    while ((r = read(rep[0], got + n, sizeof got - 1 - (size_t)n)) > 0)
        n += r;
    got[n] = 0;
    int st = reap_within(k, IO_MS, "the client");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the client ended with status %d", st);
    CHECK(n == 6 && memcmp(got, "hello\n", 6) == 0,
          "the client read %zd bytes from the connection on stderr, not \"hello\\n\": \"%.200s\"",
          n, got);
    close(l);
    printf("ok: a connection on stderr carried the program's 6 bytes alone\n");
    return 0;
}
