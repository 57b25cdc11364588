/*
 * prog_prefork: a listener shared with forked children, as prefork servers
 * (Apache, postgres, gunicorn) use it.
 *
 *   prog_prefork [-k]
 *
 *   -k   the parent keeps its copy of the listener open (default: it closes
 *        it right after the fork, as most prefork servers' masters do not,
 *        but as inetd-style launchers and many daemons do)
 *
 * The parent listens on 127.0.0.1 port 0, forks 2 children that accept()
 * in a loop, and (without -k) closes its own copy of the listener.  The
 * kernel keeps a listening socket alive while any process holds it, so:
 *   - 20 clients connect one after another; each sends its number and gets
 *     back "<number> <pid>" from the child that accepted it (pid = one of
 *     the children);
 *   - once the children are gone (SIGTERM, waited for) and so is the
 *     parent's copy, the port refuses: connect() gives ECONNREFUSED within
 *     2 s (the listener died with its last holder).
 * Under the shim the parent's engine owns the listening UDP socket; closing
 * the parent's fd must not tear it down while a child still holds the
 * listener (DESIGN.md sections 4 and 5).
 *
 * Prints one "ok:" line per check and "transport: KIND" for one client fd
 * (tcp = a kernel TCP socket).  Exit 0 iff every check held; 1 with a
 * "FAIL:" line otherwise; 3 if the watchdog (60 s) fired.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 60
#define N_CHILDREN 2
#define N_CLIENTS 20
#define EVENT_MS 5000

const char *prog_name = "prog_prefork";
static pid_t children[N_CHILDREN]; /* killed if the parent fails */

/* prog_on_fail: async-signal-safe. */
static void kill_children(void)
{
    for (int i = 0; i < N_CHILDREN; i++)
        if (children[i] > 0)
            kill(children[i], SIGKILL);
}

/* --- the checks ---------------------------------------------------------- */

/* A child: answer "<number> <pid>\n" on every connection until SIGTERM. */
static void child_main(int l)
{
    prog_name = "prog_prefork(child)";
    watchdog(WATCHDOG_S); /* alarms do not survive fork */
    signal(SIGTERM, SIG_DFL);
    for (;;) {
        int a = accept(l, NULL, NULL);
        if (a < 0 && errno == EINTR)
            continue;
        CHECK(a >= 0, "accept: %s", strerror(errno));
        char buf[32];
        ssize_t r = read(a, buf, sizeof buf - 1);
        CHECK(r > 0, "read: %s", r == 0 ? "EOF" : strerror(errno));
        buf[r] = '\0';
        char out[64];
        int n = snprintf(out, sizeof out, "%d %d\n", atoi(buf), (int)getpid());
        CHECK(write(a, out, (size_t)n) == n, "write: %s", strerror(errno));
        close(a);
    }
}

static int connect_to(const struct sockaddr_in *addr)
{
    int c = socket(AF_INET, SOCK_STREAM, 0);
    SYS(c);
    if (connect(c, (const struct sockaddr *)addr, sizeof *addr) < 0) {
        int e = errno;
        close(c);
        errno = e;
        return -1;
    }
    return c;
}

int main(int argc, char **argv)
{
    bool keep = false;
    int opt;
    while ((opt = getopt(argc, argv, "k")) != -1) {
        if (opt != 'k') {
            fprintf(stderr, "usage: prog_prefork [-k]\n");
            return 2;
        }
        keep = true;
    }
    if (optind != argc) {
        fprintf(stderr, "usage: prog_prefork [-k]\n");
        return 2;
    }
    prog_on_fail = kill_children;
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    watchdog(WATCHDOG_S);

    int l = socket(AF_INET, SOCK_STREAM, 0);
    SYS(l);
    struct sockaddr_in addr = { .sin_family = AF_INET };
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    SYS(bind(l, (struct sockaddr *)&addr, sizeof addr));
    SYS(listen(l, 64));
    socklen_t len = sizeof addr;
    SYS(getsockname(l, (struct sockaddr *)&addr, &len));
    printf("listening on 127.0.0.1:%u; %d children accept; the parent %s its copy\n",
           ntohs(addr.sin_port), N_CHILDREN, keep ? "keeps" : "closes");

    fflush(stdout);
    for (int i = 0; i < N_CHILDREN; i++) {
        pid_t pid = fork();
        SYS(pid);
        if (pid == 0)
            child_main(l);
        children[i] = pid;
    }
    if (!keep)
        SYS(close(l));

    int served[N_CHILDREN] = { 0 };
    for (int k = 0; k < N_CLIENTS; k++) {
        int c = connect_to(&addr);
        CHECK(c >= 0, "client %d: connect: %s (the listener is still held by the children)", k,
              strerror(errno));
        if (k == 0)
            printf("transport: %s (client)\n", fd_transport(c));
        char buf[64];
        int n = snprintf(buf, sizeof buf, "%d", k);
        CHECK(write(c, buf, (size_t)n) == n, "client %d: write: %s", k, strerror(errno));
        read_to_eof(c, buf, sizeof buf, EVENT_MS);
        int num = -1, pid = -1;
        CHECK(sscanf(buf, "%d %d", &num, &pid) == 2 && num == k,
              "client %d: answer \"%s\", want \"%d <pid>\"", k, buf, k);
        int who = -1;
        for (int i = 0; i < N_CHILDREN; i++)
            if (children[i] == pid)
                who = i;
        CHECK(who >= 0, "client %d: answered by pid %d, not a child", k, pid);
        served[who]++;
        close(c);
    }
    printf("ok: %d clients served by the children (", N_CLIENTS);
    for (int i = 0; i < N_CHILDREN; i++)
        printf("%s%d by pid %d", i ? ", " : "", served[i], (int)children[i]);
    printf(")\n");

    for (int i = 0; i < N_CHILDREN; i++) {
        int st;
        kill(children[i], SIGTERM);
        CHECK(waitpid(children[i], &st, 0) == children[i], "waitpid: %s", strerror(errno));
        CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "child %d ended with status 0x%x",
              (int)children[i], st);
        children[i] = 0;
    }
    if (keep)
        SYS(close(l));
    printf("ok: the children are gone and so is the parent's copy\n");

    double t0 = now_s();
    int c = connect_to(&addr);
    int e = errno;
    double took = now_s() - t0;
    CHECK(c < 0 && e == ECONNREFUSED, "connect after the last copy closed: %s, want "
          "ECONNREFUSED", c >= 0 ? "connected" : strerror(e));
    CHECK(took < 2.0, "connect after the last copy closed: refused only after %.2f s", took);
    printf("ok: the port now refuses (ECONNREFUSED in %.1f ms)\n", took * 1e3);
    printf("PASS: %s\n", prog_name);
    return 0;
}
