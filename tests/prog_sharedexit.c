/*
 * prog_sharedexit: a listener two processes hold, after the one that made
 * it (and listened on it) has exited, as Linux TCP keeps it.
 *
 *   prog_sharedexit fork-keep   A listens, forks B, which accepts; A exits
 *                               with its copy of the listener still open
 *   prog_sharedexit fork-close  the same, A closing its copy before exit()
 *   prog_sharedexit fork-both   A makes and binds the socket, forks B, and
 *                               both listen() on it (A first; B's listen
 *                               shares A's listener, porthand.c); A closes
 *                               its copy and exits
 *   prog_sharedexit pass        A listens and passes the listener to this
 *                               process over a unix socket (SCM_RIGHTS, as
 *                               libuv's IPC and systemd do), closes its copy
 *                               and exits; this process then accepts on it
 *   prog_sharedexit pass-plain  the same with plain kernel TCP clients (a
 *                               program without the shim): a listener
 *                               under the shim takes those too
 *
 * A is a child of this program; once it has been waited for (gone), N_CONN
 * clients connect one after another, each sends its number and must read
 * back "<number> <pid>" from the process that accepts (B, or this one).
 * Kernel TCP: the listening socket is the survivor's, whoever made it.
 * Under the shim the engine that served the listener was A's: it goes on in
 * A's keeper, whose connections the survivor must take as its own engine's
 * (DESIGN.md section 5), while still refusing anyone else's (ident.c).
 *
 * One "ok:" line per check, "transport: KIND" for a client's fd, "pid: N"
 * for A (whose keeper a script may end: shimlib.sh's end_keepers). Exit 0 iff
 * every check held; 1 with a "FAIL:" line otherwise; 3 if the watchdog
 * fired.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 60
#define N_CONN 10
#define EVENT_MS 10000

const char *prog_name = "prog_sharedexit";
static pid_t other = -1; /* B or the client child: killed if we fail */
static int plain_client; /* pass-plain's clients: no transport line (theirs is TCP) */

static void kill_other(void)
{
    if (other > 0)
        kill(other, SIGKILL);
}

/* Answers "<number> <pid>\n" on each of n connections accepted on l. */
static void serve(int l, int n)
{
    for (int k = 0; k < n; k++) {
        int a = accept_ready(l, EVENT_MS);
        char buf[32];
        ssize_t r;
        do
            r = read(a, buf, sizeof buf - 1);
        while (r < 0 && errno == EINTR);
        CHECK(r > 0, "server: read: %s", r == 0 ? "EOF" : strerror(errno));
        buf[r] = '\0';
        char out[64];
        int len = snprintf(out, sizeof out, "%d %d\n", atoi(buf), (int)getpid());
        write_exact(a, out, (size_t)len);
        close(a);
    }
}

/* N_CONN clients to port, one after another; each must be answered by
 * pid `want`. */
static void clients(unsigned port, pid_t want)
{
    for (int k = 0; k < N_CONN; k++) {
        int c = connect_lo(port);
        if (k == 0 && !plain_client)
            printf("transport: %s (client)\n", fd_transport(c));
        char buf[64];
        int n = snprintf(buf, sizeof buf, "%d", k);
        write_exact(c, buf, (size_t)n);
        read_to_eof(c, buf, sizeof buf, EVENT_MS); /* the survivor's answer */
        int num = -1, pid = -1;
        CHECK(sscanf(buf, "%d %d", &num, &pid) == 2 && num == k && pid == (int)want,
              "client %d: answer \"%s\", want \"%d %d\"", k, buf, k, (int)want);
        close(c);
    }
}

/* Waits for child A, which must exit 0. */
static void reap_a(pid_t a)
{
    int st;
    CHECK(waitpid(a, &st, 0) == a, "waitpid: %s", strerror(errno));
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the listening process ended with 0x%x", st);
}

/* keep: 1 A exits holding its copy, 0 closes it first; both: A forks B
 * before either listens, then both listen() on the socket (A first). */
static int run_fork(int keep, int both)
{
    int p[2], g[2], h[2]; /* B to us; A to B; B to A */
    SYS(pipe(p));
    SYS(pipe(g));
    SYS(pipe(h));
    pid_t a = fork();
    SYS(a);
    if (a == 0) {
        prog_name = "prog_sharedexit(A)";
        close(p[0]);
        int l;
        if (both) {
            l = socket(AF_INET, SOCK_STREAM, 0);
            SYS(l);
            bind_lo(l, 0);
        } else {
            l = listener_lo(0, 64);
        }
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        SYS(getsockname(l, (struct sockaddr *)&ss, &len));
        pid_t b = fork();
        SYS(b);
        if (b == 0) {
            prog_name = "prog_sharedexit(B)";
            watchdog(WATCHDOG_S);
            if (both) {
                char go;
                read_exact(g[0], &go, 1, EVENT_MS);
                SYS(listen(l, 64));
                write_exact(h[1], "b", 1);
            }
            serve(l, N_CONN);
            write_exact(p[1], "k", 1); /* B is A's child, not ours: it says it is done */
            _exit(0);
        }
        if (both) {
            SYS(listen(l, 64));
            write_exact(g[1], "a", 1);
            char ack;
            read_exact(h[0], &ack, 1, EVENT_MS); /* B listens too */
        }
        unsigned msg[2] = {port_of(&ss), (unsigned)b};
        write_exact(p[1], msg, sizeof msg);
        if (!keep)
            close(l);
        exit(0); /* the listener, if kept, closes with the process */
    }
    close(p[1]);
    unsigned msg[2];
    read_exact(p[0], msg, sizeof msg, EVENT_MS);
    other = (pid_t)msg[1];
    printf("pid: %d\n", (int)a); /* A's keeper, for the script's clean-up */
    reap_a(a);
    printf("ok: A (which listened%s) exited %s its copy; B (pid %d) holds the listener\n",
           both ? " first, then B" : "", keep ? "with" : "after closing", (int)other);
    clients(msg[0], other);
    printf("ok: %d clients answered by B\n", N_CONN);
    char done;
    read_exact(p[0], &done, 1, EVENT_MS);
    other = -1;
    return 0;
}

/* plain: the clients are a plain kernel TCP program (this one exec'd
 * without the preload), which a listener under the shim takes too
 * (RUDP_ACCEPT_TCP, on by default): the keeper hands those over as well. */
static int run_pass(int plain)
{
    int sp[2];
    SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sp));
    pid_t a = fork();
    SYS(a);
    if (a == 0) {
        prog_name = "prog_sharedexit(A)";
        close(sp[0]);
        int l = listener_lo(0, 64);
        CHECK(send_fd(sp[1], l) == 0, "sendmsg: %s", strerror(errno));
        close(l);
        exit(0);
    }
    close(sp[1]);
    int l = recv_fd(sp[0]);
    CHECK(l >= 0, "recvmsg: no listener passed");
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    SYS(getsockname(l, (struct sockaddr *)&ss, &len));
    unsigned port = port_of(&ss);
    printf("pid: %d\n", (int)a);
    reap_a(a);
    printf("ok: A (which listened) passed the listener and exited\n");
    if (plain)
        printf("transport: %s (the listener)\n", fd_transport(l));
    pid_t me = getpid();
    other = fork();
    SYS(other);
    if (other == 0) {
        prog_name = "prog_sharedexit(client)";
        close(l);
        if (plain) {
            char ps[16], ms[16];
            snprintf(ps, sizeof ps, "%u", port);
            snprintf(ms, sizeof ms, "%d", (int)me);
            execve("/proc/self/exe", (char *[]){"prog_sharedexit", "client", ps, ms, NULL},
                   env_without_preload());
            die("execve");
        }
        watchdog(WATCHDOG_S);
        clients(port, me);
        _exit(0);
    }
    serve(l, N_CONN);
    CHECK(reap_within(other, EVENT_MS, "the client") == 0, "the client failed");
    other = -1;
    printf("ok: %d clients answered by the process the listener was passed to\n", N_CONN);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "client") == 0) { /* pass-plain's clients */
        setvbuf(stdout, NULL, _IOLBF, 0);
        plain_client = 1;
        watchdog(WATCHDOG_S);
        clients((unsigned)atoi(argv[2]), (pid_t)atoi(argv[3]));
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: prog_sharedexit fork-keep|fork-close|fork-both|pass|pass-plain\n");
        return 2;
    }
    prog_on_fail = kill_other;
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    watchdog(WATCHDOG_S);
    int r;
    if (strcmp(argv[1], "fork-keep") == 0)
        r = run_fork(1, 0);
    else if (strcmp(argv[1], "fork-close") == 0)
        r = run_fork(0, 0);
    else if (strcmp(argv[1], "fork-both") == 0)
        r = run_fork(0, 1);
    else if (strcmp(argv[1], "pass") == 0)
        r = run_pass(0);
    else if (strcmp(argv[1], "pass-plain") == 0)
        r = run_pass(1);
    else {
        fprintf(stderr, "usage: prog_sharedexit fork-keep|fork-close|fork-both|pass|pass-plain\n");
        return 2;
    }
    if (r == 0)
        printf("PASS: %s %s\n", prog_name, argv[1]);
    return r;
}
