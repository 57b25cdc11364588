/*
 * prog_procenv: servers in processes the shim did not see coming still
 * listen and serve: a child made by a raw clone() system call, and a
 * process that confines itself before its first socket. Needs root.
 *
 *   prog_procenv              run every check below; exit 0 iff all hold
 *
 * In each case a server process listens on 127.0.0.1 (port chosen by the
 * kernel), reports the port through a pipe, accepts the main process's
 * connection within 10 s, reads "ping", answers "pong", and reads EOF once
 * the client has read "pong" and EOF and closed; it then exits 0 within
 * 20 s. Cases, in this order:
 *   - chroot: a forked server chroot()s into a new empty directory (no
 *     /dev/urandom, nothing at all) before its first socket (the first of
 *     the whole program);
 *   - empty /dev: a forked server takes a private mount namespace with an
 *     empty tmpfs on /dev before its first socket;
 *   - clone: the main process first listens and connects to itself (under
 *     the shim that starts its engine), then calls syscall(SYS_clone,
 *     SIGCHLD, 0, ...): a new process with a copy of its memory and fds and
 *     one thread, made without fork(), so no pthread_atfork handler runs
 *     (privilege-separated servers do this). The child is the server; it
 *     also writes one byte on its copy of the connection made before the
 *     clone, which the main process must read, and that connection must
 *     still carry bytes both ways in the main process afterwards.
 * The confined servers name the transport of their accepted fd through a
 * descriptor of /proc opened before they confined themselves.
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
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 60
#define EVENT_MS 10000 /* any single awaited event */
#define CHILD_MS 20000 /* a server's whole life */

const char *prog_name = "prog_procenv";

static pid_t server;
static char dir[64]; /* the chroot case's empty directory, removed at the end */

static void clean_up(void)
{
    if (server > 0)
        kill(server, SIGKILL);
    if (dir[0])
        rmdir(dir);
}

/* ---- both sides ---- */

static void write_all(int fd, const void *buf, size_t len)
{
    ssize_t w = write(fd, buf, len);
    CHECK(w == (ssize_t)len, "write: %s", w < 0 ? strerror(errno) : "short");
}

/* EOF on fd within EVENT_MS. */
static void expect_eof(int fd, const char *what)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    CHECK(poll(&p, 1, EVENT_MS) == 1, "%s: no EOF within %d ms", what, EVENT_MS);
    char c;
    ssize_t r = read(fd, &c, 1);
    CHECK(r == 0, "%s: read %zd (%s), want EOF", what, r, r < 0 ? strerror(errno) : "data");
}

static int connect_loopback(unsigned port)
{
    struct sockaddr_storage ss;
    socklen_t len = loopback(AF_INET, port, &ss);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    SYS(c);
    SYS(connect(c, (struct sockaddr *)&ss, len));
    return c;
}

/* ---- the server side ---- */

/* A listener on 127.0.0.1, port chosen by the kernel, in *port. */
static int listen_loopback(unsigned *port)
{
    struct sockaddr_storage ss;
    socklen_t len = loopback(AF_INET, 0, &ss);
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    SYS(l);
    SYS(bind(l, (struct sockaddr *)&ss, len));
    SYS(listen(l, 16));
    len = sizeof ss;
    SYS(getsockname(l, (struct sockaddr *)&ss, &len));
    *port = port_of(&ss);
    return l;
}

static int accept_within(int l, int ms)
{
    struct pollfd p = {.fd = l, .events = POLLIN};
    int n = poll(&p, 1, ms);
    SYS(n);
    CHECK(n == 1, "no connection to accept within %d ms", ms);
    int a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    SYS(a);
    return a;
}

/* The server's part of one case: listen, report the port on `report`,
 * serve one ping. procfd: a descriptor of /proc, or -1 for /proc itself. */
static void serve_one(const char *what, int report, int procfd)
{
    unsigned port;
    int l = listen_loopback(&port);
    printf("ok: %s: listening (127.0.0.1:%u)\n", what, port);
    write_all(report, &port, sizeof port);
    close(report);
    int a = accept_within(l, EVENT_MS);
    char buf[4];
    read_exact(a, buf, 4, EVENT_MS);
    CHECK(memcmp(buf, "ping", 4) == 0, "%s: read \"%.4s\", want \"ping\"", what, buf);
    write_all(a, "pong", 4);
    printf("transport: %s (%s: accepted)\n",
           procfd >= 0 ? fd_transport_at(procfd, a) : fd_transport(a), what);
    /* the client reads "pong" and EOF, then closes: nothing is left
     * unread at either close, so neither end is reset */
    SYS(shutdown(a, SHUT_WR));
    expect_eof(a, what);
    printf("ok: %s: served a connection\n", what);
    close(a);
    close(l);
}

/* ---- the main process's side ---- */

/* The client's part of one case: the port from `report`, one ping. */
static void client_one(const char *what, int report)
{
    unsigned port;
    read_exact(report, &port, sizeof port, EVENT_MS);
    close(report);
    int c = connect_loopback(port);
    write_all(c, "ping", 4);
    char buf[4];
    read_exact(c, buf, 4, EVENT_MS);
    CHECK(memcmp(buf, "pong", 4) == 0, "%s: read \"%.4s\", want \"pong\"", what, buf);
    printf("transport: %s (%s: client)\n", fd_transport(c), what);
    expect_eof(c, what);
    close(c);
    printf("ok: %s: the client read pong and EOF\n", what);
}

/* The server exits 0 within CHILD_MS. */
static void reap(const char *what)
{
    int pidfd = (int)syscall(SYS_pidfd_open, server, 0);
    SYS(pidfd);
    struct pollfd p = {.fd = pidfd, .events = POLLIN};
    CHECK(poll(&p, 1, CHILD_MS) == 1, "%s: the server did not exit within %d ms", what,
          CHILD_MS);
    close(pidfd);
    int st;
    CHECK(waitpid(server, &st, 0) == server, "waitpid: %s", strerror(errno));
    server = 0;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: the server ended with status 0x%x", what,
          st);
    printf("ok: %s: the server exited 0\n", what);
}

/* The child's side of a server process: its own name, a watchdog (alarms
 * are not inherited), nothing of the parent's clean-up. */
static void become_server(void)
{
    prog_name = "prog_procenv (server)";
    prog_on_fail = NULL;
    watchdog(WATCHDOG_S);
}

/* ---- the cases ---- */

static void case_clone(void)
{
    const char *what = "clone";
    unsigned port1;
    int l1 = listen_loopback(&port1);
    int c1 = connect_loopback(port1);
    int a1 = accept_within(l1, EVENT_MS);
    char b;
    write_all(c1, "a", 1);
    read_exact(a1, &b, 1, EVENT_MS);
    printf("transport: %s (clone: client before the clone)\n", fd_transport(c1));
    printf("transport: %s (clone: accepted before the clone)\n", fd_transport(a1));

    int pfd[2];
    SYS(pipe2(pfd, O_CLOEXEC));
    fflush(stdout);
    /* x86_64 and aarch64 order: flags, stack, parent_tid, child_tid, tls.
     * A null stack: the child goes on with a copy of ours (no CLONE_VM). */
    long pid = syscall(SYS_clone, (unsigned long)SIGCHLD, NULL, NULL, NULL, 0UL);
    SYS(pid);
    if (pid == 0) {
        become_server();
        close(pfd[0]);
        serve_one("clone", pfd[1], -1);
        write_all(c1, "k", 1);
        exit(0);
    }
    server = (pid_t)pid;
    close(pfd[1]);
    client_one(what, pfd[0]);
    read_exact(a1, &b, 1, EVENT_MS);
    CHECK(b == 'k', "clone: read '%c' from the child's copy of a connection, want 'k'", b);
    printf("ok: clone: the child wrote on a connection made before the clone\n");
    reap(what);
    write_all(c1, "b", 1);
    read_exact(a1, &b, 1, EVENT_MS);
    CHECK(b == 'b', "clone: after it: read '%c', want 'b'", b);
    write_all(a1, "c", 1);
    read_exact(c1, &b, 1, EVENT_MS);
    CHECK(b == 'c', "clone: after it: read '%c', want 'c'", b);
    printf("ok: clone: a connection made before the clone works both ways after it\n");
    close(c1);
    close(a1);
    close(l1);
}

enum confinement { CHROOT, EMPTY_DEV };

static void confine(enum confinement how)
{
    if (how == CHROOT) {
        SYS(chroot(dir));
        SYS(chdir("/"));
    } else {
        SYS(unshare(CLONE_NEWNS));
        SYS(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
        SYS(mount("none", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=16k,mode=755"));
    }
    struct stat st;
    CHECK(stat("/dev/urandom", &st) < 0 && errno == ENOENT,
          "/dev/urandom is still there after confinement");
}

static void case_confined(enum confinement how, const char *what)
{
    if (how == CHROOT) {
        snprintf(dir, sizeof dir, "/tmp/prog_procenv.XXXXXX");
        CHECK(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
    }
    int pfd[2];
    SYS(pipe2(pfd, O_CLOEXEC));
    fflush(stdout);
    pid_t pid = fork();
    SYS(pid);
    if (pid == 0) {
        become_server();
        close(pfd[0]);
        int procfd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
        SYS(procfd);
        confine(how);
        serve_one(what, pfd[1], procfd);
        exit(0);
    }
    server = pid;
    close(pfd[1]);
    client_one(what, pfd[0]);
    reap(what);
    if (dir[0]) {
        SYS(rmdir(dir));
        dir[0] = '\0';
    }
}

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, WATCHDOG_S);
    prog_on_fail = clean_up;
    CHECK(geteuid() == 0, "needs root (chroot, mount namespaces)");
    /* the confined ones first: their first socket is the first of all */
    case_confined(CHROOT, "chroot");
    case_confined(EMPTY_DEV, "empty /dev");
    case_clone();
    printf("PASS: %s\n", prog_name);
    return 0;
}
