/*
 * prog_fdheld: a program holding N connections opens as many other files
 * as it could over TCP (issue 43, item 4b). Run under a tight fd limit
 * (the script's `ulimit -n 1100`, soft and hard): a server child accepts N
 * connections from this process; then each side opens files (/dev/null)
 * until EMFILE and prints how many it opened ("files: SIDE F"); then
 * every connection carries 4 bytes each way (its index, echoed), and the
 * server counts the connections that came over rudp (its accepted fd an
 * AF_UNIX bridge) and over kernel TCP, as the client does its own
 * ("transport: SIDE rudp R tcp K"). Over kernel TCP, F is what the limit
 * leaves after N sockets; under the shim, before its engines kept their
 * fds in a table of their own, the client's connects failed with EMFILE
 * (or went over kernel TCP) and F was 0: each connection held 3 of the
 * program's fds.
 *
 *   prog_fdheld N [exit|leader]
 *   prog_fdheld probe     "apart: yes", or "apart: no (CALL: ERROR)" where
 *                         the kernel refuses what an engine's table of its
 *                         own takes (pidfd_getfd on this process; unshare
 *                         and close_range's CLOSE_RANGE_UNSHARE both), as
 *                         Docker's default seccomp profile does without
 *                         CAP_SYS_PTRACE: the engines then keep to the
 *                         program's table (enginestart.c)
 *
 * With "leader" the client's part runs on a second thread once the first
 * has ended (pthread_exit from main): the engines take the program's fds
 * through a live thread (adopt.c, ownfds.c), which a pidfd of the process
 * no longer reaches (pidfd_getfd: ESRCH; the engine then stayed in the
 * program's table, and 1,000 connections ran out of fds).
 *
 * With "exit" the client writes its 4 bytes on each connection and exits
 * at once, reading nothing: what it wrote is the keepers' to deliver
 * (under the shim, one for each engine's table), and the server checks
 * every connection's bytes and EOF, then prints "delivered: N".
 *
 * The files are closed again before the connections carry their bytes.
 * Exit 1 with a FAIL: line; 3 if the watchdog (120 s) fired.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_fdheld";

static pid_t server_pid;

static void end_server(void)
{
    if (server_pid > 0)
        kill(server_pid, SIGKILL);
}

/* Opens /dev/null until EMFILE (or max); closes them again; the count. */
static int files_left(int max)
{
    int *fds = malloc((size_t)max * sizeof *fds);
    CHECK(fds, "out of memory");
    int n = 0;
    while (n < max) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            CHECK(errno == EMFILE, "open: %s (not EMFILE)", strerror(errno));
            break;
        }
        fds[n++] = fd;
    }
    for (int i = 0; i < n; i++)
        close(fds[i]);
    free(fds);
    return n;
}

static int cmp_ul(const void *a, const void *b)
{
    unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
    return x < y ? -1 : x > y;
}

/* The inodes of the kernel's socket table path (column col, from 0) into
 * set from set[n] on, at most max in all: the new count. */
static size_t read_inodes(const char *path, int col, unsigned long *set, size_t n, size_t max)
{
    FILE *f = fopen(path, "r");
    char line[512];
    if (!f)
        return n;
    if (!fgets(line, sizeof line, f)) { /* the header */
        fclose(f);
        return n;
    }
    while (n < max && fgets(line, sizeof line, f)) {
        char *p = line;
        for (int k = 0; k < col && p; k++) {
            p += strspn(p, " ");
            p = strchr(p, ' ');
        }
        if (p)
            set[n++] = strtoul(p, NULL, 10);
    }
    fclose(f);
    return n;
}

/* How many of the n fds are the shim's bridge (rudp: AF_UNIX) and kernel
 * TCP: each fd's inode looked up in /proc/net's tables, read once (one
 * fd_transport() per fd would read them n times). */
static void count_transports(const char *side, const int *c, int n)
{
    size_t max = 1 << 20;
    unsigned long *un = malloc(max * sizeof *un), *tc = malloc(max * sizeof *tc);
    CHECK(un && tc, "out of memory");
    size_t nu = read_inodes("/proc/thread-self/net/unix", 6, un, 0, max);
    size_t nt = read_inodes("/proc/thread-self/net/tcp", 9, tc, 0, max);
    nt = read_inodes("/proc/thread-self/net/tcp6", 9, tc, nt, max);
    qsort(un, nu, sizeof *un, cmp_ul);
    qsort(tc, nt, sizeof *tc, cmp_ul);
    int rudp = 0, tcp = 0;
    for (int i = 0; i < n; i++) {
        struct stat st;
        SYS(fstat(c[i], &st));
        unsigned long ino = (unsigned long)st.st_ino;
        if (bsearch(&ino, un, nu, sizeof ino, cmp_ul))
            rudp++;
        else if (bsearch(&ino, tc, nt, sizeof ino, cmp_ul))
            tcp++;
        else
            failf(__LINE__, "%s: connection %d is neither AF_UNIX nor TCP", side, i);
    }
    free(un);
    free(tc);
    printf("transport: %s rudp %d tcp %d\n", side, rudp, tcp);
}

static int exit_mode;   /* "exit": the client exits once it has written */
static int leader_mode; /* "leader": the client on a thread, main ended */

static int client(int rfd, int n);

typedef struct client_args {
    int rfd, n;
} client_args;

static void *client_thread(void *arg)
{
    const client_args *a = arg;
    exit(client(a->rfd, a->n));
}

static void serve(int l, int n, int report)
{
    int *c = calloc((size_t)n, sizeof *c);
    CHECK(c, "out of memory");
    for (int i = 0; i < n; i++) {
        c[i] = accept_ready(l, 30000);
        SYS(c[i]);
    }
    printf("files: server %d\n", files_left(1 << 20));
    count_transports("server", c, n);
    CHECK(write(report, "r", 1) == 1, "report: %s", strerror(errno));
    for (int i = 0; i < n; i++) {
        uint32_t v;
        read_exact(c[i], &v, sizeof v, 30000);
        CHECK(v == (uint32_t)i, "server: connection %d carried %u", i, v);
        if (!exit_mode)
            write_exact(c[i], &v, sizeof v);
    }
    for (int i = 0; i < n; i++) {
        char x;
        CHECK(poll_for(c[i], POLLIN, 30000) && read(c[i], &x, 1) == 0,
              "server: connection %d: no EOF", i);
        close(c[i]);
    }
    free(c);
    if (exit_mode)
        printf("delivered: %d\n", n);
}

/* Run in a child: unsharing its fd table leaves ours as it is. */
static int probe(void)
{
    fflush(stdout);
    pid_t c = fork();
    SYS(c);
    if (c == 0) {
        int p = (int)syscall(SYS_pidfd_open, getpid(), 0);
        if (p < 0 || syscall(SYS_pidfd_getfd, p, 1, 0) < 0) {
            dprintf(1, "apart: no (%s: %s)\n", p < 0 ? "pidfd_open" : "pidfd_getfd",
                    strerror(errno));
            _exit(0);
        }
        if (unshare(CLONE_FILES) != 0 &&
            syscall(SYS_close_range, ~0u >> 1, ~0u >> 1, CLOSE_RANGE_UNSHARE) != 0) {
            dprintf(1, "apart: no (unshare, close_range: %s)\n", strerror(errno));
            _exit(0);
        }
        dprintf(1, "apart: yes\n");
        _exit(0);
    }
    int st;
    SYS(waitpid(c, &st, 0));
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the probe's child ended with status %d", st);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "probe") == 0)
        return probe();
    if (argc < 2 || argc > 3 ||
        (argc == 3 && strcmp(argv[2], "exit") != 0 && strcmp(argv[2], "leader") != 0)) {
        fprintf(stderr, "usage: prog_fdheld N [exit|leader]\n");
        return 2;
    }
    exit_mode = argc == 3 && strcmp(argv[2], "exit") == 0;
    leader_mode = argc == 3 && strcmp(argv[2], "leader") == 0;
    int n = atoi(argv[1]);
    CHECK(n > 0, "N must be positive");
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    watchdog(120);
    int rp[2];
    SYS(pipe(rp));
    fflush(stdout);
    /* The server listens in its own process: a listener made before the
     * fork would stay the parent's engine's, which would then carry both
     * ends of every connection. */
    server_pid = fork();
    SYS(server_pid);
    if (server_pid == 0) {
        close(rp[0]);
        int l = socket(AF_INET, SOCK_STREAM, 0);
        SYS(l);
        unsigned p = bind_lo(l, 0);
        SYS(listen(l, 4096));
        CHECK(write(rp[1], &p, sizeof p) == (ssize_t)sizeof p, "report: %s", strerror(errno));
        serve(l, n, rp[1]);
        _exit(0);
    }
    prog_on_fail = end_server;
    close(rp[1]);
    if (leader_mode) {
        static client_args ca;
        ca = (client_args){rp[0], n};
        pthread_t t;
        CHECK(pthread_create(&t, NULL, client_thread, &ca) == 0, "pthread_create");
        pthread_exit(NULL); /* the process goes on with the client's thread */
    }
    return client(rp[0], n);
}

static int client(int rfd, int n)
{
    unsigned port = 0;
    CHECK(read(rfd, &port, sizeof port) == (ssize_t)sizeof port, "no port from the server");
    int *c = calloc((size_t)n, sizeof *c);
    CHECK(c, "out of memory");
    for (int i = 0; i < n; i++) {
        c[i] = socket(AF_INET, SOCK_STREAM, 0);
        CHECK(c[i] >= 0, "socket %d: %s", i, strerror(errno));
        struct sockaddr_in a = ipv4_addr("127.0.0.1", port);
        CHECK(connect(c[i], (struct sockaddr *)&a, sizeof a) == 0, "connect %d: %s", i,
              strerror(errno));
    }
    char r;
    CHECK(read(rfd, &r, 1) == 1, "the server did not report");
    printf("files: client %d\n", files_left(1 << 20));
    count_transports("client", c, n);
    for (int i = 0; i < n; i++) {
        uint32_t v = (uint32_t)i;
        write_exact(c[i], &v, sizeof v);
    }
    if (exit_mode) {
        printf("client: wrote on every connection, exiting\n");
        server_pid = 0; /* it goes on, reading what the keepers deliver */
        exit(0);
    }
    for (int i = 0; i < n; i++) {
        uint32_t v;
        read_exact(c[i], &v, sizeof v, 30000);
        CHECK(v == (uint32_t)i, "client: connection %d carried %u back", i, v);
        close(c[i]);
    }
    int st;
    SYS(waitpid(server_pid, &st, 0));
    server_pid = 0;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the server ended with status %d", st);
    printf("ok: %d connections held, each carried its bytes both ways\n", n);
    return 0;
}
