/*
 * prog_clonevm: children that share the process's memory but are not its
 * threads -- vfork(), clone(CLONE_VM) without CLONE_THREAD -- leave its
 * listener and connection as they were, and their own sockets work.
 *
 *   prog_clonevm              run every check below; exit 0 iff all hold
 *   prog_clonevm --image FD   (the exec'd image) read "to-image" on FD,
 *                             answer "from-image", exit 0
 *   prog_clonevm --vfork-first vfork|__vfork
 *                             the setup, then the "vfork, connect" case
 *                             alone, through that name: no child before it
 *
 * The main process listens on 127.0.0.1 (port chosen by the kernel) and
 * connects to itself: c (TCP_NODELAY set) and a, the accepted end. After
 * each case below, c and a carry bytes both ways, c still reports
 * TCP_NODELAY 1 and ESTABLISHED, and the listener accepts a new
 * connection that carries bytes. Cases, in this order:
 *   - first of all, before the listener listens (under the shim: before
 *     any engine runs), a clone(CLONE_VM) child is made that waits on a
 *     pipe; after the setup above it connects to the listener, writes
 *     "early" and closes; the main process accepts, reads "early" then EOF
 *     (under the shim the engine's eventfd is not in that child's fd table:
 *     it takes a copy from the main process);
 *   - vfork, _exit: the child closes the listener and a, dup2()s c to
 *     another number and closes both, then _exit(0)s;
 *   - vfork, exec: the child closes the listener, dup2()s a (close-on-exec
 *     off) to fd 9 and execs this program with --image 9 once with the
 *     environment as it is (under the shim: an image that runs it) and once
 *     without LD_PRELOAD (an image without it); the image reads what the
 *     main process wrote on c before and answers on the inherited fd;
 *   - vfork, connect: the child makes a socket, connects to the listener,
 *     writes "vfork", closes it and _exit(0)s; the main process accepts
 *     that connection and reads "vfork" then EOF;
 *   - clone(CLONE_VM | SIGCHLD) on a stack of its own, fd table copied: the
 *     child makes a socket, registers it for EPOLLOUT in an epoll set of
 *     its own, sets TCP_NODELAY, connects to the listener, finds EPOLLOUT
 *     in that set and TCP_NODELAY still 1, writes "child", reads "back"
 *     (which the main process, having accepted it, writes), closes it, and
 *     closes its copies of c and of the listener; the main process reads
 *     EOF after "child";
 *   - the same child, connecting instead to a second listener, one whose
 *     UDP port the main process holds with a UDP socket of its own (under
 *     the shim a listener on kernel TCP, so the child's connect falls back
 *     to kernel TCP);
 *   - clone(CLONE_VM) again, the child listening: it binds a listener of its
 *     own on 127.0.0.1 (port chosen by the kernel), listens, says so on a
 *     pipe, accepts the main process's connection, reads "hello", answers
 *     "world" and closes both; the main process connects once the pipe
 *     says so, writes, reads the answer, then EOF;
 *   - clone(CLONE_VM | CLONE_FILES | SIGCHLD): fds shared too, as a thread
 *     shares them: the child connects, writes "files", closes, and writes
 *     one byte on c; the main process reads both.
 * A child calls nothing that allocates with libc's malloc() (no stdio)
 * while the main process runs: it shares its heap, its locks and, made
 * without CLONE_SETTLS, its TLS, so glibc cannot tell the two apart. It
 * names its connection's transport with fd_transport(), which is written
 * for that (progutil.h): with fopen() there, a child and the main process
 * naming the two ends of one connection at once broke the heap.
 *
 * Prints one "ok:" line per check and "transport: KIND" for the connected
 * fds made by the main process, by the CLONE_VM children (their own fds,
 * and the main process's ends of the vfork child's and the listening
 * child's connections)
 * and by the CLONE_FILES child (tcp = a kernel TCP socket). Exit 0 iff
 * every check held; 1 with a "FAIL:" line otherwise; 3 if the watchdog
 * (60 s) fired.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 60
#define EVENT_MS 10000 /* any single awaited event */
#define CHILD_MS 20000 /* a child's whole life */
#define STACK (256 * 1024)
#define IMAGE_FD 9

const char *prog_name = "prog_clonevm";

static struct sockaddr_storage lss; /* the listener's address */
static socklen_t llen;
static int lfd, cfd, afd;
static const char *child_kind = "none"; /* set by a CLONE_VM child */
static int child_step;                  /* ... and the step it failed at (see clone_child) */
static struct sockaddr_storage pss;     /* the plain listener's address (clone_vm) */
static socklen_t plen;

/* --image FD: the exec'd image's part. */
static int image(int fd)
{
    char buf[8];
    size_t got = 0;
    while (got < sizeof buf) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, EVENT_MS) != 1)
            return 20;
        ssize_t r = read(fd, buf + got, sizeof buf - got);
        if (r <= 0)
            return 21;
        got += (size_t)r;
    }
    if (memcmp(buf, "to-image", 8) != 0)
        return 22;
    if (write(fd, "from-image", 10) != 10)
        return 23;
    return 0;
}

/* n bytes of s written on fd, then read on peer. */
static void carry(int fd, int peer, const char *s, const char *what)
{
    size_t n = strlen(s);
    char buf[64];
    CHECK(write(fd, s, n) == (ssize_t)n, "%s: write: %s", what, strerror(errno));
    read_exact(peer, buf, n, EVENT_MS);
    CHECK(memcmp(buf, s, n) == 0, "%s: other bytes arrived", what);
}

/* fd's peer closed: EOF within EVENT_MS. */
static void expect_eof(int fd, const char *what)
{
    char c;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    CHECK(poll(&p, 1, EVENT_MS) == 1 && read(fd, &c, 1) == 0, "%s: no EOF after the child's close",
          what);
}

/* What must hold after each case. */
static void parent_intact(const char *after)
{
    carry(cfd, afd, "c-to-a", after);
    carry(afd, cfd, "a-to-c", after);
    CHECK(getsockopt_int(cfd, IPPROTO_TCP, TCP_NODELAY) == 1, "%s: TCP_NODELAY no longer 1", after);
    CHECK(tcpi_state(cfd) == TCP_ESTABLISHED, "%s: c in state %d", after, tcpi_state(cfd));
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    SYS(c);
    SYS(connect(c, (struct sockaddr *)&lss, llen));
    int a = accept_ready(lfd, EVENT_MS);
    carry(c, a, "new", after);
    carry(a, c, "new-back", after);
    close(c);
    close(a);
    printf("ok: after %s: the connection carries bytes both ways, keeps TCP_NODELAY, "
           "and the listener accepts\n", after);
}

static void reap_ok(pid_t pid, const char *what)
{
    int st = reap_within(pid, CHILD_MS, what);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: the child ended with status 0x%x", what, st);
}

static void vfork_exit(void)
{
    pid_t pid = vfork();
    SYS(pid);
    if (pid == 0) {
        int bad = close(lfd) | close(afd);
        if (dup2(cfd, 200) != 200 || close(200) < 0 || close(cfd) < 0)
            bad = -1;
        _exit(bad ? 10 : 0);
    }
    reap_ok(pid, "vfork, close, dup2, _exit");
    printf("ok: a vfork() child closed the listener and both ends and _exit()ed\n");
    parent_intact("vfork + _exit");
}

static char *noshim_env[256];

static void vfork_exec(char *self, char **envp, const char *what)
{
    SYS(write(cfd, "to-image", 8));
    char fdarg[] = {'0' + IMAGE_FD, 0};
    char *argv[] = {self, "--image", fdarg, NULL};
    pid_t pid = vfork();
    SYS(pid);
    if (pid == 0) {
        if (close(lfd) < 0 || dup2(afd, IMAGE_FD) != IMAGE_FD)
            _exit(10);
        execve(self, argv, envp);
        _exit(11);
    }
    reap_ok(pid, what);
    char buf[10];
    read_exact(cfd, buf, sizeof buf, EVENT_MS);
    CHECK(memcmp(buf, "from-image", sizeof buf) == 0, "%s: other bytes from the image", what);
    printf("ok: %s: the image read and answered on the inherited connection\n", what);
    parent_intact(what);
}

/* NULL where the kernel lets this process compare fd tables (kcmp) and
 * copy a file from another process (pidfd_getfd), which the shim needs to
 * serve a CLONE_VM child's sockets; else which it refuses (Docker's default
 * seccomp profile without CAP_SYS_PTRACE): the child's sockets are then
 * kernel TCP (docs/limits.md). */
static const char *clone_vm_refused(void)
{
    static char why[80];
    if (syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILES, 0, 0) < 0) {
        snprintf(why, sizeof why, "kcmp: %s", strerror(errno));
        return why;
    }
    int p = (int)syscall(SYS_pidfd_open, getpid(), 0);
    int c = p >= 0 ? (int)syscall(SYS_pidfd_getfd, p, 1, 0) : -1;
    if (c < 0)
        snprintf(why, sizeof why, "%s: %s", p < 0 ? "pidfd_open" : "pidfd_getfd", strerror(errno));
    if (c >= 0)
        close(c);
    if (p >= 0)
        close(p);
    return c < 0 ? why : NULL;
}

/* The transport line (tr) of a connection made by a child sharing our
 * memory; under the shim (the listener a unix socket), where the kernel
 * refuses what serving such a child's sockets takes, a kernel TCP one is
 * the shim's designed answer: said as a skip, not as a transport line. */
static void say_child_transport(const char *tr, const char *what)
{
    const char *refused = clone_vm_refused();
    if (refused && strcmp(tr, "tcp") == 0 && strcmp(fd_transport(lfd), "unix") == 0)
        printf("skip: %s over rudp: the kernel refuses %s here, so the child's sockets are "
               "kernel TCP (docs/limits.md)\n", what, refused);
    else
        printf("transport: %s (%s)\n", tr, what);
}

static void child_transport(int a, const char *what)
{
    say_child_transport(fd_transport(a), what);
}

/* glibc's other name for vfork (libc.so.6 exports both) */
extern pid_t __vfork(void);

static void vfork_connect(pid_t (*vf)(void))
{
    pid_t pid = vf();
    SYS(pid);
    if (pid == 0) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0 || connect(s, (struct sockaddr *)&lss, llen) < 0)
            _exit(10);
        _exit(write(s, "vfork", 5) != 5 || close(s) < 0 ? 11 : 0);
    }
    reap_ok(pid, "vfork, connect");
    int a = accept_ready(lfd, EVENT_MS);
    child_transport(a, "accepted from the vfork child");
    char buf[8];
    read_exact(a, buf, 5, EVENT_MS);
    CHECK(memcmp(buf, "vfork", 5) == 0, "vfork, connect: other bytes from the child");
    struct pollfd p = {.fd = a, .events = POLLIN};
    CHECK(poll(&p, 1, EVENT_MS) == 1 && read(a, buf, 1) == 0,
          "vfork, connect: no EOF after the child's close");
    close(a);
    printf("ok: a vfork() child's own connection carried its bytes and EOF\n");
    parent_intact("vfork + connect");
}

/* In a child (no stdio): n bytes from fd into buf, 0; or -1 with
 * child_step set. */
static int child_read(int fd, char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, EVENT_MS) != 1) {
            child_step = 24;
            return -1;
        }
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0) {
            child_step = 25;
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

/* A CLONE_VM child's part. arg: 1 with CLONE_FILES, 2 for the plain
 * listener, else 0. On failure returns the step (child_step says too). */
static int clone_child(void *arg)
{
    long how = (long)arg;
    int files = how == 1;
    const struct sockaddr_storage *to = how == 2 ? &pss : &lss;
    socklen_t tolen = how == 2 ? plen : llen;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return child_step = 10;
    int ep = -1;
    if (!files) {
        /* registered before connect(): the registration must survive it */
        struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = 77};
        ep = epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) < 0)
            return child_step = 20;
        int one = 1;
        if (setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
            return child_step = 21;
    }
    if (connect(s, (struct sockaddr *)to, tolen) < 0)
        return child_step = 11;
    child_kind = fd_transport(s);
    if (!files) {
        struct epoll_event got;
        if (epoll_wait(ep, &got, 1, EVENT_MS) != 1 || got.data.u64 != 77 ||
            !(got.events & EPOLLOUT))
            return child_step = 22;
        int v = 0;
        socklen_t vl = sizeof v;
        if (getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &v, &vl) < 0 || v != 1)
            return child_step = 23;
        close(ep);
    }
    const char *msg = files ? "files" : "child";
    if (write(s, msg, 5) != 5)
        return child_step = 12;
    if (!files) {
        char back[4];
        if (child_read(s, back, sizeof back) < 0)
            return child_step;
        if (memcmp(back, "back", 4) != 0)
            return child_step = 26;
    }
    if (close(s) < 0)
        return child_step = 13;
    if (files)
        return write(cfd, "C", 1) == 1 ? 0 : (child_step = 14);
    /* Its own copies: the main process's stay open. */
    if (close(cfd) < 0 || close(lfd) < 0)
        return child_step = 15;
    return 0;
}

static const char *const child_steps[] = {
    [10] = "socket", [11] = "connect", [12] = "write", [13] = "close", [14] = "write on c",
    [15] = "close of its copies", [20] = "epoll_ctl before connect", [21] = "setsockopt",
    [22] = "EPOLLOUT from the registration made before connect", [23] = "TCP_NODELAY read back",
    [24] = "waiting for the answer", [25] = "reading the answer", [26] = "the answer's bytes",
    [30] = "bind, listen, getsockname", [31] = "saying it listens", [32] = "waiting for a connection",
    [33] = "accept", [40] = "waiting to be told to connect",
};

/* What the child failed at, by child_step. */
static const char *step_name(void)
{
    int n = (int)(sizeof child_steps / sizeof *child_steps);
    return child_step > 0 && child_step < n && child_steps[child_step] ? child_steps[child_step]
                                                                       : "?";
}

/* Starts fn(arg) in a clone with flags (CLONE_VM and more) on a stack of
 * its own, *stack, killed should a check fail. */
static pid_t child_start(int (*fn)(void *), int flags, void *arg, char **stack)
{
    *stack = mmap(NULL, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
                  -1, 0);
    CHECK(*stack != MAP_FAILED, "mmap: %s", strerror(errno));
    fflush(stdout);
    child_kind = "none";
    child_step = 0;
    pid_t pid = clone(fn, *stack + STACK, flags | SIGCHLD, arg);
    SYS(pid);
    kill_on_fail(pid);
    return pid;
}

/* A CLONE_VM child ended with status 0 (else FAIL, with the step it
 * failed at); its stack is unmapped. */
static void child_reaped(pid_t pid, char *stack, const char *what)
{
    int st = reap_within(pid, CHILD_MS, what);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: the child ended with status 0x%x (%s)", what,
          st, step_name());
    kill_on_fail(-1);
    munmap(stack, STACK);
}

/* how: 0 the listener, 1 CLONE_FILES, 2 the plain listener pl. */
static void clone_vm(int how, int pl)
{
    int files = how == 1;
    const char *what = files ? "clone(CLONE_VM | CLONE_FILES)"
                       : how == 2 ? "clone(CLONE_VM), to a kernel TCP listener"
                                  : "clone(CLONE_VM)";
    char *stack;
    pid_t pid = child_start(clone_child, CLONE_VM | (files ? CLONE_FILES : 0), (void *)(long)how,
                            &stack);
    int l = how == 2 ? pl : lfd;
    int a = accept_ready(l, EVENT_MS);
    char buf[8];
    read_exact(a, buf, 5, EVENT_MS);
    CHECK(memcmp(buf, files ? "files" : "child", 5) == 0, "%s: other bytes from the child", what);
    if (!files)
        CHECK(write(a, "back", 4) == 4, "%s: write back: %s", what, strerror(errno));
    child_reaped(pid, stack, what);
    expect_eof(a, what);
    close(a);
    if (files) {
        say_child_transport(child_kind, "the CLONE_FILES child's connection");
        read_exact(afd, buf, 1, EVENT_MS);
        CHECK(buf[0] == 'C', "%s: another byte on the shared connection", what);
    } else {
        say_child_transport(child_kind, how == 2 ? "the CLONE_VM child's own connection, to a "
                                                   "kernel TCP listener"
                                                 : "the CLONE_VM child's own connection");
    }
    printf("ok: a %s child's connection carried its bytes%s and EOF\n", what,
           files ? "" : " both ways, kept its epoll registration and TCP_NODELAY,");
    parent_intact(what);
}

/* The early child's part: arg is the pipe's read end. */
static int early_child(void *arg)
{
    int go = (int)(long)arg;
    char c;
    struct pollfd p = {.fd = go, .events = POLLIN};
    if (poll(&p, 1, CHILD_MS) != 1 || read(go, &c, 1) != 1)
        return child_step = 40;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return child_step = 10;
    if (connect(s, (struct sockaddr *)&lss, llen) < 0)
        return child_step = 11;
    if (write(s, "early", 5) != 5)
        return child_step = 12;
    return close(s) < 0 ? (child_step = 13) : 0;
}

static char *early_stack;
static int early_go;

/* Made before the listener listens; told to connect by early_done(). */
static pid_t early_start(void)
{
    int pp[2];
    SYS(pipe2(pp, O_CLOEXEC));
    pid_t pid = child_start(early_child, CLONE_VM, (void *)(long)pp[0], &early_stack);
    close(pp[0]); /* the child's copy stays open */
    early_go = pp[1];
    return pid;
}

static void early_done(pid_t pid)
{
    const char *what = "clone(CLONE_VM) before the first engine";
    SYS(write(early_go, "G", 1));
    int a = accept_ready(lfd, EVENT_MS);
    child_transport(a, "accepted from the child cloned before the listener listened");
    char buf[8];
    read_exact(a, buf, 5, EVENT_MS);
    CHECK(memcmp(buf, "early", 5) == 0, "%s: other bytes from the child", what);
    child_reaped(pid, early_stack, what);
    close(early_go);
    expect_eof(a, what);
    close(a);
    printf("ok: a child cloned before the listener listened connected, and its bytes and EOF "
           "arrived\n");
    parent_intact(what);
}

/* The listening child's part: arg is the pipe's write end. */
static int listen_child(void *arg)
{
    int say = (int)(long)arg;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l < 0)
        return child_step = 10;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 4) < 0 ||
        getsockname(l, (struct sockaddr *)&pss, &al) < 0)
        return child_step = 30;
    plen = al;
    if (write(say, "L", 1) != 1)
        return child_step = 31;
    struct pollfd p = {.fd = l, .events = POLLIN};
    if (poll(&p, 1, EVENT_MS) != 1)
        return child_step = 32;
    int s = accept(l, NULL, NULL);
    if (s < 0)
        return child_step = 33;
    child_kind = fd_transport(s);
    char buf[5];
    if (child_read(s, buf, sizeof buf) < 0)
        return child_step;
    if (memcmp(buf, "hello", 5) != 0)
        return child_step = 26;
    if (write(s, "world", 5) != 5)
        return child_step = 12;
    if (close(s) < 0 || close(l) < 0)
        return child_step = 13;
    return 0;
}

static void clone_listen(void)
{
    const char *what = "clone(CLONE_VM), listening";
    int pp[2];
    SYS(pipe2(pp, O_CLOEXEC));
    char *stack;
    pid_t pid = child_start(listen_child, CLONE_VM, (void *)(long)pp[1], &stack);
    struct pollfd p = {.fd = pp[0], .events = POLLIN};
    char c;
    CHECK(poll(&p, 1, EVENT_MS) == 1 && read(pp[0], &c, 1) == 1, "%s: the child never listened (%s)",
          what, step_name());
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    SYS(s);
    SYS(connect(s, (struct sockaddr *)&pss, plen));
    /* the child's listener kernel TCP (said below): our connect falls back to it */
    say_child_transport(fd_transport(s), "connected to the CLONE_VM child's listener");
    CHECK(write(s, "hello", 5) == 5, "%s: write: %s", what, strerror(errno));
    char buf[8];
    read_exact(s, buf, 5, EVENT_MS);
    CHECK(memcmp(buf, "world", 5) == 0, "%s: other bytes from the child", what);
    child_reaped(pid, stack, what);
    expect_eof(s, what);
    close(s);
    close(pp[0]);
    close(pp[1]);
    say_child_transport(child_kind, "accepted by the CLONE_VM child's listener");
    printf("ok: a %s child accepted a connection that carried bytes both ways and EOF\n", what);
    parent_intact(what);
}

/* A listener on loopback that stays kernel TCP under the shim: its UDP port
 * is held by a UDP socket of this process (docs/design.md, "The program's own UDP
 * on the same port"). *udp gets that socket. */
static int plain_listener(int *udp)
{
    /* The UDP port the kernel picks may be another TCP socket's: then
     * another (a bounded number of tries). */
    for (int tries = 0; tries < 100; tries++) {
        *udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        SYS(*udp);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        SYS(bind(*udp, (struct sockaddr *)&a, sizeof a));
        plen = sizeof pss;
        SYS(getsockname(*udp, (struct sockaddr *)&pss, &plen));
        int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        SYS(l);
        if (bind(l, (struct sockaddr *)&pss, plen) == 0) {
            SYS(listen(l, 16));
            return l;
        }
        CHECK(errno == EADDRINUSE, "bind of the plain listener: %s", strerror(errno));
        close(l);
        close(*udp);
    }
    CHECK(0, "no port free for both UDP and TCP in 100 tries");
    return -1;
}

/* --vfork-first: the vfork child's connect with no child made before it
 * (the cases above start with a clone(CLONE_VM) child, after which the
 * shim asks the kernel who it is on every call anyway). */
static int vfork_first(pid_t (*vf)(void))
{
    prog_begin(1, WATCHDOG_S);
    lfd = bound_loopback(AF_INET, &lss, &llen);
    SYS(listen(lfd, 16));
    cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    SYS(cfd);
    SYS(connect(cfd, (struct sockaddr *)&lss, llen));
    afd = accept_ready(lfd, EVENT_MS);
    setsockopt_int(cfd, IPPROTO_TCP, TCP_NODELAY, 1);
    printf("transport: %s (c)\ntransport: %s (a)\n", fd_transport(cfd), fd_transport(afd));
    vfork_connect(vf);
    close(cfd);
    close(afd);
    close(lfd);
    printf("ok: every case\n");
    return 0;
}

int main(int argc, char **argv, char **envp)
{
    if (argc == 3 && strcmp(argv[1], "--image") == 0)
        return image(atoi(argv[2]));
    if (argc == 3 && strcmp(argv[1], "--vfork-first") == 0)
        return vfork_first(strcmp(argv[2], "__vfork") == 0 ? __vfork : vfork);
    prog_begin(argc, WATCHDOG_S);
    lfd = bound_loopback(AF_INET, &lss, &llen);
    pid_t early = early_start();
    SYS(listen(lfd, 16));
    cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    SYS(cfd);
    SYS(connect(cfd, (struct sockaddr *)&lss, llen));
    afd = accept_ready(lfd, EVENT_MS);
    SYS(fcntl(afd, F_SETFD, FD_CLOEXEC));
    setsockopt_int(cfd, IPPROTO_TCP, TCP_NODELAY, 1);
    printf("transport: %s (c)\ntransport: %s (a)\n", fd_transport(cfd), fd_transport(afd));
    parent_intact("setup");

    early_done(early);
    vfork_exit();
    vfork_exec(argv[0], envp, "vfork + exec (environment as is)");
    int n = 0;
    for (char **e = envp; *e && n < 255; e++)
        if (strncmp(*e, "LD_PRELOAD=", 11) != 0)
            noshim_env[n++] = *e;
    vfork_exec(argv[0], noshim_env, "vfork + exec (no LD_PRELOAD)");
    vfork_connect(vfork);
    clone_vm(0, -1);
    int udp, pl = plain_listener(&udp);
    clone_vm(2, pl);
    close(pl);
    close(udp);
    clone_listen();
    clone_vm(1, -1);

    close(cfd);
    close(afd);
    close(lfd);
    printf("ok: every case\n");
    return 0;
}
