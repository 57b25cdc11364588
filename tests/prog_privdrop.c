/*
 * prog_privdrop: a server that binds a port below 1024 as root, gives up
 * root (setgroups, setgid, setuid to 65534) and only then listens, as
 * some daemons do; a client connects and its bytes come back whole.
 * Kernel TCP allows it: the port was checked at bind(). Under the shim
 * listen() makes the listener's UDP socket on the same port, which the
 * process may no longer bind (EACCES): before 2026-11-29 listen() failed
 * with EACCES, which TCP's never says; now the listener is the kernel's
 * own TCP (docs/limits.md) and the client reaches it by the fallback.
 *
 * Needs root and a port below net.ipv4.ip_unprivileged_port_start: else
 * "skip: why". Prints "transport: KIND" (the client's) and "ok:" lines;
 * exit 1 with a "FAIL:" line, 3 if the watchdog (30 s) fired.
 */
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_privdrop";

#define NOBODY 65534
#define LEN 1000

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, 30);
    if (geteuid() != 0) {
        printf("skip: not root: no port below 1024 to bind\n");
        return 0;
    }
    char v[32];
    int start = read_small("/proc/sys/net/ipv4/ip_unprivileged_port_start", v, sizeof v) > 0
                    ? atoi(v)
                    : 1024;
    if (start <= 600) {
        printf("skip: ip_unprivileged_port_start is %d: every port here is unprivileged\n", start);
        return 0;
    }
    int s = -1;
    unsigned port = 0;
    for (unsigned p = (unsigned)start - 1; p >= 600 && s < 0; p--) {
        int t = socket(AF_INET, SOCK_STREAM, 0);
        SYS(t);
        struct sockaddr_in a = ipv4_addr("127.0.0.1", p);
        if (bind(t, (struct sockaddr *)&a, sizeof a) == 0) {
            s = t;
            port = p;
        } else {
            close(t);
        }
    }
    CHECK(s >= 0, "no free port from %d down to 600", start - 1);
    int up[2];
    SYS(pipe(up));
    pid_t pid = fork();
    SYS(pid);
    if (pid == 0) {
        close(up[0]);
        SYS(setgroups(0, NULL));
        SYS(setgid(NOBODY));
        SYS(setuid(NOBODY));
        if (listen(s, 4) < 0)
            failf(__LINE__, "listen on port %u after giving up root: %s", port, strerror(errno));
        write_exact(up[1], "L", 1);
        int c = accept(s, NULL, NULL);
        SYS(c);
        char buf[LEN];
        read_exact(c, buf, LEN, 10000);
        write_exact(c, buf, LEN);
        char x;
        CHECK(read(c, &x, 1) == 0, "server: no EOF after the echo");
        close(c);
        _exit(0);
    }
    close(s);
    close(up[1]);
    char x;
    CHECK(read(up[0], &x, 1) == 1, "the server did not listen (its FAIL line above)");
    int c = connect_lo(port);
    printf("transport: %s\n", fd_transport(c));
    char out[LEN], in[LEN];
    for (int i = 0; i < LEN; i++)
        out[i] = (char)pattern_byte((uint64_t)i);
    write_exact(c, out, LEN);
    read_exact(c, in, LEN, 10000);
    CHECK(memcmp(in, out, LEN) == 0, "the echo differs");
    SYS(shutdown(c, SHUT_WR));
    int st;
    SYS(waitpid(pid, &st, 0));
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the server ended with status %#x", st);
    close(c);
    printf("ok: port %u bound as root, listened on as uid %d: %d bytes echoed\n", port, NOBODY, LEN);
    return 0;
}
