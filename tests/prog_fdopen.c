/*
 * prog_fdopen: stdio on sockets, as old-style servers and clients use it
 * (fdopen() one stream to read and one on a dup() to write).
 *
 *   prog_fdopen               run every check below; exit 0 iff all hold
 *
 * A forked child is the server: it makes its own listener on 127.0.0.1 port
 * 0 after the fork (so under the shim each process has its own engine),
 * tells the parent the port through a pipe, and echoes lines read with
 * fgets() back with fprintf("echo %s").  The parent is the client:
 *   - 200 lines, each written with fprintf()+fflush() and its echo read
 *     with fgets() before the next (lock-step);
 *   - 64 lines of 1000 bytes written in one go, then their 64 echoes;
 *   - one 200,000-byte line (fgets() on both sides with big buffers; the
 *     server reads it with getline()), echoed whole;
 *   - shutdown(SHUT_WR) after fflush(): the server's fgets() returns NULL
 *     with feof() and no ferror(); it answers "bye N" (N = lines it saw,
 *     read by the client with fscanf()) and closes; the client's next
 *     fgets() returns NULL with feof().
 * Both sides check every line; the parent requires the child to exit 0.
 *
 * Prints one "ok:" line per check and "transport: KIND" for the client's fd
 * (tcp = a kernel TCP socket).  Exit 0 iff every check held; 1 with a
 * "FAIL:" line otherwise; 3 if the watchdog (60 s) fired.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 60
#define N_STEP 200
#define N_BATCH 64
#define BATCH_LEN 1000
#define LONG_LEN 200000

const char *prog_name = "prog_fdopen";
static pid_t child_pid; /* the server, killed if the client fails */

static void kill_child(void)
{
    if (child_pid > 0)
        kill(child_pid, SIGKILL);
}

/* --- the checks ---------------------------------------------------------- */

/* The batch and long lines: deterministic printable content. */
static void fill_line(char *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)('a' + (seed * 31u + (unsigned)i * 7u) % 26u);
    buf[len] = '\0';
}

/* Child: serve one connection, exit 0 iff the exchange went as planned. */
static void server(int port_pipe)
{
    prog_name = "prog_fdopen(server)";
    int l = socket(AF_INET, SOCK_STREAM, 0);
    SYS(l);
    struct sockaddr_in sin = { .sin_family = AF_INET };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    SYS(bind(l, (struct sockaddr *)&sin, sizeof sin));
    SYS(listen(l, 4));
    socklen_t len = sizeof sin;
    SYS(getsockname(l, (struct sockaddr *)&sin, &len));
    unsigned short port = ntohs(sin.sin_port);
    CHECK(write(port_pipe, &port, sizeof port) == (ssize_t)sizeof port, "pipe: %s",
          strerror(errno));
    close(port_pipe);

    int a = accept(l, NULL, NULL);
    SYS(a);
    close(l);
    int a2 = dup(a);
    SYS(a2);
    FILE *in = fdopen(a, "r"), *out = fdopen(a2, "w");
    CHECK(in && out, "fdopen: %s", strerror(errno));

    char *buf = malloc(LONG_LEN + 16);
    CHECK(buf, "out of memory");
    unsigned lines = 0;
    for (;;) {
        char *line = NULL;
        size_t cap = 0;
        if (lines == N_STEP + N_BATCH) {
            /* The long line: getline(). */
            ssize_t n = getline(&line, &cap, in);
            CHECK(n == LONG_LEN + 1, "getline: %zd bytes, want %d", n, LONG_LEN + 1);
            fprintf(out, "echo %s", line);
            free(line);
        } else {
            if (!fgets(buf, LONG_LEN + 16, in))
                break;
            CHECK(strchr(buf, '\n'), "server: line %u has no newline", lines);
            fprintf(out, "echo %s", buf);
        }
        CHECK(fflush(out) == 0, "server: fflush: %s", strerror(errno));
        lines++;
    }
    CHECK(feof(in) && !ferror(in), "server: fgets ended without EOF: %s", strerror(errno));
    fprintf(out, "bye %u\n", lines);
    CHECK(fclose(out) == 0, "server: fclose(out): %s", strerror(errno));
    CHECK(fclose(in) == 0, "server: fclose(in): %s", strerror(errno));
    free(buf);
    exit(0);
}

static void expect_echo(FILE *in, const char *sent, char *buf, size_t cap, const char *what)
{
    CHECK(fgets(buf, (int)cap, in), "%s: fgets: %s", what,
          feof(in) ? "EOF" : strerror(errno));
    CHECK(strncmp(buf, "echo ", 5) == 0 && strcmp(buf + 5, sent) == 0,
          "%s: got \"%.60s\" (%zu bytes), want \"echo %.60s\" (%zu bytes)", what, buf,
          strlen(buf), sent, strlen(sent) + 5);
}

static void client(unsigned short port)
{
    int c = socket(AF_INET, SOCK_STREAM, 0);
    SYS(c);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    SYS(connect(c, (struct sockaddr *)&sin, sizeof sin));
    printf("transport: %s (client)\n", fd_transport(c));
    int c2 = dup(c);
    SYS(c2);
    FILE *in = fdopen(c, "r"), *out = fdopen(c2, "w");
    CHECK(in && out, "fdopen: %s", strerror(errno));

    size_t cap = LONG_LEN + 64;
    char *sent = malloc(cap), *buf = malloc(cap);
    CHECK(sent && buf, "out of memory");

    for (int i = 0; i < N_STEP; i++) {
        snprintf(sent, cap, "line %d of %d\n", i, N_STEP);
        CHECK(fputs(sent, out) >= 0 && fflush(out) == 0, "fputs/fflush: %s", strerror(errno));
        expect_echo(in, sent, buf, cap, "lock-step");
    }
    printf("ok: %d lines in lock-step (fprintf+fflush / fgets)\n", N_STEP);

    for (int i = 0; i < N_BATCH; i++) {
        fill_line(sent, BATCH_LEN - 1, (unsigned)i);
        fprintf(out, "%s\n", sent);
    }
    CHECK(fflush(out) == 0, "fflush: %s", strerror(errno));
    for (int i = 0; i < N_BATCH; i++) {
        fill_line(sent, BATCH_LEN - 1, (unsigned)i);
        strcat(sent, "\n");
        expect_echo(in, sent, buf, cap, "batch");
    }
    printf("ok: %d lines of %d bytes in one go, all echoed in order\n", N_BATCH, BATCH_LEN);

    fill_line(sent, LONG_LEN, 99);
    strcat(sent, "\n");
    CHECK(fputs(sent, out) >= 0 && fflush(out) == 0, "fputs/fflush: %s", strerror(errno));
    expect_echo(in, sent, buf, cap, "long line");
    printf("ok: one %d-byte line echoed whole\n", LONG_LEN);

    SYS(shutdown(c, SHUT_WR));
    unsigned lines = 0;
    int n = fscanf(in, "bye %u\n", &lines);
    CHECK(n == 1, "fscanf \"bye N\": %d (%s)", n, feof(in) ? "EOF" : "no match");
    CHECK(lines == N_STEP + N_BATCH + 1, "server saw %u lines, want %d", lines,
          N_STEP + N_BATCH + 1);
    printf("ok: after shutdown(SHUT_WR) the server's fgets saw EOF; it said bye %u\n", lines);
    CHECK(!fgets(buf, (int)cap, in), "data after bye: %.60s", buf);
    CHECK(feof(in) && !ferror(in), "client: fgets ended without EOF: %s", strerror(errno));
    printf("ok: client's fgets then returns NULL with feof()\n");
    fclose(out);
    fclose(in);
    free(sent);
    free(buf);
}

int main(int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: %s\n", prog_name);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    int p[2];
    SYS(pipe(p));
    fflush(stdout);
    pid_t pid = fork();
    SYS(pid);
    if (pid == 0) {
        close(p[0]);
        watchdog(WATCHDOG_S);
        server(p[1]);
    }
    prog_on_fail = kill_child;
    child_pid = pid;
    close(p[1]);
    watchdog(WATCHDOG_S);
    unsigned short port;
    CHECK(read(p[0], &port, sizeof port) == (ssize_t)sizeof port,
          "the server did not say its port");
    close(p[0]);
    printf("server (pid %d) listens on 127.0.0.1:%u\n", (int)pid, port);
    client(port);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid: %s", strerror(errno));
    child_pid = 0;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the server failed (status 0x%x)", st);
    printf("ok: the server checked its side and exited 0\n");
    printf("PASS: %s\n", prog_name);
    return 0;
}
