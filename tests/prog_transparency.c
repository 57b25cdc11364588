/*
 * prog_transparency: what a kernel TCP socket gives a program keeps working
 * the same under the shim (checked over kernel TCP on Linux 6.x first).
 *
 *   prog_transparency               run every case below; exit 0 iff all
 *                                   hold
 *   prog_transparency --child-exec FD  (internal) the image the dup case
 *                                   execs with connection FD inherited: it
 *                                   writes "exec-hello\n", reads
 *                                   "exec-reply\n", exits 0
 *
 *   stdio      fdopen() on both ends of a connection: a line by fprintf()
 *              and fflush() one way, fgets() reads it; a line three times
 *              stdio's buffer (BUFSIZ) back the other way, read whole.
 *   sendfile   sendfile() from a regular file (mkstemp in /tmp, unlinked)
 *              into the socket; splice() from a pipe into the socket and
 *              from the socket into a pipe; every byte compared.
 *   dup        writes through dup(), dup2() and dup3() copies arrive;
 *              close() of the original keeps the connection for the
 *              copy; a fork()ed child writes on the inherited fd and the
 *              parent reads it (and the connection outlives the child);
 *              an image exec'd (/proc/self/exe) with the fd inherited, not
 *              close-on-exec, writes a line and reads the reply; closing
 *              the last copy ends the connection (the peer reads EOF).
 *   epoll      level-triggered reports again while bytes remain;
 *              edge-triggered reports once per arrival (a partial read
 *              brings no second event until new bytes come); EPOLLONESHOT
 *              reports once until EPOLL_CTL_MOD re-arms it;
 *              EPOLLEXCLUSIVE on a listener in two epoll instances, each
 *              waited on by a thread: one connect wakes at least one, and
 *              accept() succeeds exactly once.
 *   signals    a signal whose handler has no SA_RESTART makes a read()
 *              blocked on the socket return EINTR; with SA_RESTART the
 *              read goes on and returns the bytes written after it.
 *   peek       MSG_PEEK returns bytes without taking them (the next recv()
 *              gets them again); MSG_WAITALL waits for all the bytes the
 *              peer writes in four pieces.
 *   fionread   ioctl(FIONREAD) says how many bytes are queued once they
 *              arrived (poll() first), and what a partial read left.
 *   handler    a read() inside a SIGUSR2 handler, of a socket holding
 *              bytes, returns them.
 *   threads    1,000 threads (64 KiB stacks), each a request and its
 *              response over a connection of its own to a server thread;
 *              all complete; the server answered each client once, read
 *              each one's EOF, and accepted no other connection (each
 *              connect() is accepted once). Each thread's connection is
 *              counted by its kind, a "transport:" line per kind.
 *   wake       a socket becoming readable while the call already waits
 *              (the peer writes once the waiter sleeps) wakes poll(),
 *              ppoll(), select(), pselect(), epoll_wait(), epoll_pwait(),
 *              epoll_pwait2() (raw system call; "skip:" on ENOSYS),
 *              __poll_chk() and io_uring's IORING_OP_POLL_ADD (raw system
 *              calls, no liburing; "skip:" when io_uring_setup() says
 *              ENOSYS or EPERM). A missed wake-up fails after 10 s.
 *
 * "The waiter sleeps" is the kernel's word for it: the thread's state in
 * /proc/self/task/TID/stat is S (and, where a wake must have come and gone,
 * its voluntary_ctxt_switches grew), never a guess by time. Every wait is
 * bounded. Prints one "ok:" line per check, "transport: KIND" for each kind
 * of connection (the same program's pair, a thread's, the one an exec'd
 * image inherited; tcp = a kernel TCP socket). Exit 0 iff every check held;
 * 1 with a "FAIL:" line otherwise; 3 if the watchdog (60 s) fired. make
 * tsan runs it too, with the ThreadSanitizer shim (integration/tsan.sh):
 * it must run TSan-clean.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/io_uring.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "progutil.h"

#ifndef SYS_epoll_pwait2
#define SYS_epoll_pwait2 441 /* one number on every architecture (5.11) */
#endif

/* glibc's _FORTIFY_SOURCE form of poll(), called here by name. */
extern int __poll_chk(struct pollfd *fds, nfds_t nfds, int timeout, size_t fdslen);

#define WATCHDOG_S 60
#define IO_MS 10000   /* bound on every wait for bytes or a connection */
#define WAKE_S 10     /* a waiter not woken by then missed the wake-up */
#define THREADS 1000
#define THREAD_STACK (64 * 1024)

const char *prog_name = "prog_transparency";

static int lst;          /* the listener every pair() comes from */
static unsigned lport;

/* A connected pair through lst: *c the connecting end, *a the accepted. */
static void pair(int *c, int *a)
{
    *c = connect_lo(lport);
    *a = accept_ready(lst, IO_MS);
}

/* s written on fd arrives on peer. */
static void carry(int fd, int peer, const char *s, const char *what)
{
    size_t n = strlen(s);
    char buf[128];
    CHECK(n <= sizeof buf, "carry: %zu bytes", n);
    write_exact(fd, s, n);
    read_exact(peer, buf, n, IO_MS);
    CHECK(memcmp(buf, s, n) == 0, "%s: other bytes arrived (\"%.*s\")", what, (int)n, buf);
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Until FIONREAD on fd says at least n (1 ms naps, IO_MS at most). */
static void wait_queued(int fd, int n, const char *what)
{
    int q = 0;
    for (int i = 0; i < IO_MS; i++) {
        SYS(ioctl(fd, FIONREAD, &q));
        if (q >= n)
            return;
        nap_ms(1);
    }
    CHECK(0, "%s: %d of %d bytes arrived within %d ms", what, q, n, IO_MS);
}

/* ---- a thread blocked in one call, and knowing that it is ---- */

/* Thread tid's state letter (/proc/self/task/TID/stat) and, if sw, its
 * voluntary context switches (.../status); 0 if it is gone. */
static char task_state(pid_t tid, long *sw)
{
    char path[64], buf[4096];
    char st = thread_state(tid);
    if (!st)
        return 0;
    if (!sw)
        return st;
    snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
    if (read_small(path, buf, sizeof buf) < 0)
        return 0;
    const char *p = strstr(buf, "\nvoluntary_ctxt_switches:");
    *sw = p ? strtol(p + 25, NULL, 10) : -1;
    return st;
}

/* Waits (1 ms naps, 10 s at most) until thread tid sleeps with more than
 * after voluntary context switches (-1: any); returns their count. A
 * thread that announced the call it is about to make sleeps in it then. */
static long wait_sleeping(pid_t tid, long after, const char *what)
{
    long sw = -1;
    char st = 0;
    for (int i = 0; i < WAKE_S * 1000; i++) {
        st = task_state(tid, &sw);
        if (st == 'S' && sw > after)
            return sw;
        nap_ms(1);
    }
    CHECK(0, "%s: the thread never slept in its call (state %c, %ld switches; 0: gone)",
          what, st ? st : '0', sw);
}

struct waiter;
typedef int waiter_call(struct waiter *w);

/* One call made by a thread of its own: run by waiter_start(), announced
 * (tid) just before the call, its result and errno kept, done set after. */
struct waiter {
    pthread_t t;
    waiter_call *call;
    int fd, ep;
    struct uring *ring;
    char buf[4096];
    ssize_t n;
    int result, err;
    _Atomic pid_t tid;
    atomic_int done;
};

static void *waiter_run(void *arg)
{
    struct waiter *w = arg;
    atomic_store(&w->tid, gettid());
    w->result = w->call(w);
    w->err = errno;
    atomic_store(&w->done, 1);
    return NULL;
}

static void waiter_start(struct waiter *w, waiter_call *call, int fd)
{
    w->call = call;
    w->fd = fd;
    atomic_store(&w->tid, 0);
    atomic_store(&w->done, 0);
    int e = pthread_create(&w->t, NULL, waiter_run, w);
    CHECK(e == 0, "pthread_create: %s", strerror(e));
}

/* Until w's thread sleeps in its call; returns its switches then. */
static long waiter_asleep(struct waiter *w, const char *what)
{
    for (int i = 0; i < IO_MS && !atomic_load(&w->tid); i++)
        nap_ms(1);
    CHECK(atomic_load(&w->tid), "%s: the thread did not start", what);
    return wait_sleeping(atomic_load(&w->tid), -1, what);
}

/* Whether w's call returned within ms. */
static int waiter_done_within(struct waiter *w, int ms)
{
    for (int i = 0; i < ms && !atomic_load(&w->done); i++)
        nap_ms(1);
    return atomic_load(&w->done);
}

static void waiter_join(struct waiter *w)
{
    int e = pthread_join(w->t, NULL);
    CHECK(e == 0, "pthread_join: %s", strerror(e));
}

/* ---- stdio ---- */

static void case_stdio(void)
{
    int c, a;
    pair(&c, &a);
    printf("transport: %s (client), %s (accepted)\n", fd_transport(c), fd_transport(a));
    FILE *cw = fdopen(c, "w"), *cr = fdopen(dup(c), "r");
    FILE *aw = fdopen(a, "w"), *ar = fdopen(dup(a), "r");
    CHECK(cw && cr && aw && ar, "fdopen: %s", strerror(errno));
    char line[64];
    CHECK(fprintf(cw, "hello %d over stdio\n", 42) > 0 && fflush(cw) == 0, "fprintf: %s",
          strerror(errno));
    CHECK(fgets(line, sizeof line, ar) && strcmp(line, "hello 42 over stdio\n") == 0,
          "stdio: fgets() read \"%s\"", line);

    size_t len = 3 * BUFSIZ + 123;
    char *big = malloc(len + 1), *got = malloc(len + 2);
    CHECK(big && got, "out of memory");
    for (size_t i = 0; i < len; i++)
        big[i] = (char)('a' + i % 26);
    big[len] = 0;
    CHECK(fprintf(aw, "%s\n", big) == (int)len + 1 && fflush(aw) == 0, "fprintf: %s",
          strerror(errno));
    CHECK(fgets(got, (int)len + 2, cr) && strlen(got) == len + 1 && got[len] == '\n' &&
              memcmp(got, big, len) == 0,
          "stdio: the long line came back as %zu bytes", strlen(got));
    free(big);
    free(got);
    CHECK(fclose(cw) == 0 && fclose(cr) == 0 && fclose(aw) == 0 && fclose(ar) == 0,
          "fclose: %s", strerror(errno));
    printf("ok: stdio: fdopen() on both ends; fprintf()+fflush() one way, fgets() reads the "
           "line; a %zu-byte line (BUFSIZ %d) the other way, read whole\n", len + 1, BUFSIZ);
}

/* ---- sendfile, splice ---- */

struct io_job {
    pthread_t t;
    int fd, reading;
    unsigned char *buf;
    size_t len;
};

static void *io_run(void *arg)
{
    struct io_job *j = arg;
    if (j->reading)
        read_exact(j->fd, j->buf, j->len, IO_MS);
    else
        write_exact(j->fd, j->buf, j->len);
    return NULL;
}

static void io_start(struct io_job *j, int fd, int reading, unsigned char *buf, size_t len)
{
    *j = (struct io_job){.fd = fd, .reading = reading, .buf = buf, .len = len};
    int e = pthread_create(&j->t, NULL, io_run, j);
    CHECK(e == 0, "pthread_create: %s", strerror(e));
}

static void io_join(struct io_job *j)
{
    int e = pthread_join(j->t, NULL);
    CHECK(e == 0, "pthread_join: %s", strerror(e));
}

#define FILE_BYTES (256 * 1024)
#define PIPE_BYTES (128 * 1024)
#define PIPE_CHUNK (16 * 1024)

static void case_sendfile(void)
{
    static unsigned char src[FILE_BYTES], dst[FILE_BYTES];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = pattern_byte(i);
    char path[] = "/tmp/prog_transparency.XXXXXX";
    int f = mkstemp(path);
    SYS(f);
    SYS(unlink(path));
    write_exact(f, src, sizeof src);
    int c, a;
    pair(&c, &a);

    struct io_job j;
    io_start(&j, a, 1, dst, FILE_BYTES);
    off_t off = 0;
    while (off < FILE_BYTES) {
        ssize_t r = sendfile(c, f, &off, (size_t)(FILE_BYTES - off));
        CHECK(r > 0, "sendfile: %s", r == 0 ? "0 bytes" : strerror(errno));
    }
    io_join(&j);
    CHECK(memcmp(src, dst, FILE_BYTES) == 0, "sendfile: other bytes arrived");
    close(f);
    printf("ok: sendfile: %d bytes from an unlinked file into the socket, as in the file\n",
           FILE_BYTES);

    int p[2];
    SYS(pipe(p));
    memset(dst, 0, sizeof dst);
    io_start(&j, a, 1, dst, PIPE_BYTES);
    for (size_t done = 0; done < PIPE_BYTES; done += PIPE_CHUNK) {
        write_exact(p[1], src + done, PIPE_CHUNK); /* fits in the pipe */
        for (size_t moved = 0; moved < PIPE_CHUNK;) {
            ssize_t r = splice(p[0], NULL, c, NULL, PIPE_CHUNK - moved, 0);
            CHECK(r > 0, "splice pipe -> socket: %s", r == 0 ? "0 bytes" : strerror(errno));
            moved += (size_t)r;
        }
    }
    io_join(&j);
    CHECK(memcmp(src, dst, PIPE_BYTES) == 0, "splice pipe -> socket: other bytes arrived");
    printf("ok: sendfile: splice() of %d bytes from a pipe into the socket\n", PIPE_BYTES);

    memset(dst, 0, sizeof dst);
    io_start(&j, a, 0, src, PIPE_BYTES);
    for (size_t got = 0; got < PIPE_BYTES;) {
        struct pollfd pf = {.fd = c, .events = POLLIN};
        CHECK(poll(&pf, 1, IO_MS) == 1, "splice socket -> pipe: nothing within %d ms", IO_MS);
        ssize_t r = splice(c, NULL, p[1], NULL, PIPE_CHUNK, 0);
        CHECK(r > 0, "splice socket -> pipe: %s", r == 0 ? "EOF" : strerror(errno));
        read_exact(p[0], dst + got, (size_t)r, IO_MS); /* the pipe emptied each time */
        got += (size_t)r;
    }
    io_join(&j);
    CHECK(memcmp(src, dst, PIPE_BYTES) == 0, "splice socket -> pipe: other bytes arrived");
    printf("ok: sendfile: splice() of %d bytes from the socket into a pipe\n", PIPE_BYTES);
    close(p[0]);
    close(p[1]);
    close(c);
    close(a);
}

/* ---- dup, fork, exec ---- */

/* --child-exec FD: the exec'd image's part. */
static int child_exec(const char *arg)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    watchdog(WATCHDOG_S); /* the parent's alarm outlived the exec */
    char *end;
    long fd = strtol(arg, &end, 10);
    CHECK(*end == 0 && fd >= 0 && fd < INT_MAX, "--child-exec %s: not an fd", arg);
    printf("transport: %s (inherited across exec)\n", fd_transport((int)fd));
    write_exact((int)fd, "exec-hello\n", 11);
    char buf[11];
    read_exact((int)fd, buf, sizeof buf, IO_MS);
    CHECK(memcmp(buf, "exec-reply\n", sizeof buf) == 0, "exec'd image: other reply");
    return 0;
}

static void reap_ok(pid_t pid, const char *what)
{
    int st = reap_within(pid, IO_MS, what);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: the child ended with status 0x%x", what,
          st);
}

static void case_dup(void)
{
    int c, a;
    pair(&c, &a);
    int d1 = dup(c), d2 = dup2(c, 300), d3 = dup3(c, 301, O_CLOEXEC);
    CHECK(d1 >= 0 && d2 == 300 && d3 == 301, "dup: %s", strerror(errno));
    CHECK(fcntl(d3, F_GETFD) == FD_CLOEXEC, "dup3(O_CLOEXEC): flags %d", fcntl(d3, F_GETFD));
    carry(d1, a, "via dup", "dup");
    carry(d2, a, "via dup2", "dup2");
    carry(d3, a, "via dup3", "dup3");
    carry(a, d2, "to the copies", "back to dup2");
    printf("ok: dup: writes through dup(), dup2() and dup3() copies arrive, and reads too\n");
    SYS(close(c));
    carry(d1, a, "after close", "dup after close of the original");
    carry(a, d1, "still open", "back to dup after close of the original");
    SYS(close(d2));
    SYS(close(d3));
    carry(d1, a, "one copy left", "dup after closing the others");
    printf("ok: dup: close() of the original and two copies keeps the connection for the last\n");

    pid_t pid = fork();
    SYS(pid);
    if (pid == 0)
        _exit(write(d1, "fork-child\n", 11) == 11 ? 0 : 1);
    char buf[16];
    read_exact(a, buf, 11, IO_MS);
    CHECK(memcmp(buf, "fork-child\n", 11) == 0, "fork: other bytes from the child");
    reap_ok(pid, "fork");
    carry(d1, a, "after the child", "dup after the fork child's exit");
    printf("ok: dup: a fork()ed child wrote on the inherited fd, the connection outlived it\n");

    char self[PATH_MAX];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    SYS(sl);
    self[sl] = 0;
    char fdarg[16];
    snprintf(fdarg, sizeof fdarg, "%d", d1);
    fflush(stdout);
    pid = fork();
    SYS(pid);
    if (pid == 0) {
        if (fcntl(d1, F_SETFD, 0) < 0) /* inherited, not close-on-exec */
            _exit(10);
        execl("/proc/self/exe", self, "--child-exec", fdarg, (char *)NULL);
        _exit(11);
    }
    kill_on_fail(pid);
    read_exact(a, buf, 11, IO_MS);
    CHECK(memcmp(buf, "exec-hello\n", 11) == 0, "exec: other bytes from the exec'd image");
    write_exact(a, "exec-reply\n", 11);
    reap_ok(pid, "exec");
    kill_on_fail(-1);
    carry(d1, a, "after exec", "dup after the exec'd child's exit");
    printf("ok: dup: an image exec'd with the fd inherited wrote a line and read the reply\n");

    SYS(close(d1));
    char rest[8];
    CHECK(read_to_eof(a, rest, sizeof rest, IO_MS) == 0, "dup: bytes after the last close");
    close(a);
    printf("ok: dup: closing the last copy ends the connection (the peer reads EOF)\n");
}

/* ---- epoll ---- */

static int ep_wait(int ep, int ms)
{
    struct epoll_event ev;
    int n = epoll_wait(ep, &ev, 1, ms);
    SYS(n);
    return n;
}

/* a's bytes, n of them, read and dropped. */
static void drain(int a, size_t n)
{
    char buf[256];
    CHECK(n <= sizeof buf, "drain: %zu", n);
    read_exact(a, buf, n, IO_MS);
}

/* 10 bytes written on c and queued on a, ep reports a, 3 of them read. */
static void ten_take_three(int ep, int c, int a, const char *what)
{
    char buf[3];
    write_exact(c, "0123456789", 10);
    wait_queued(a, 10, what);
    CHECK(ep_wait(ep, IO_MS) == 1, "%s: no event for 10 bytes", what);
    CHECK(read(a, buf, 3) == 3, "%s: read: %s", what, strerror(errno));
}

static void case_epoll_modes(void)
{
    int c, a;
    pair(&c, &a);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    SYS(ep);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = a};
    SYS(epoll_ctl(ep, EPOLL_CTL_ADD, a, &ev));
    ten_take_three(ep, c, a, "epoll LT");
    CHECK(ep_wait(ep, 0) == 1, "epoll LT: no second event with 7 bytes unread");
    drain(a, 7);
    CHECK(ep_wait(ep, 0) == 0, "epoll LT: an event with nothing unread");
    printf("ok: epoll: level-triggered reports again while bytes remain, not once all are "
           "read\n");

    ev.events = EPOLLIN | EPOLLET;
    SYS(epoll_ctl(ep, EPOLL_CTL_MOD, a, &ev));
    ten_take_three(ep, c, a, "epoll ET");
    CHECK(ep_wait(ep, 0) == 0, "epoll ET: a second event after a partial read, nothing new");
    write_exact(c, "abcde", 5);
    wait_queued(a, 12, "epoll ET");
    CHECK(ep_wait(ep, IO_MS) == 1, "epoll ET: no event for 5 new bytes");
    CHECK(ep_wait(ep, 0) == 0, "epoll ET: two events for one arrival");
    drain(a, 12);
    printf("ok: epoll: edge-triggered reports once per arrival, none after a partial read\n");

    ev.events = EPOLLIN | EPOLLONESHOT;
    SYS(epoll_ctl(ep, EPOLL_CTL_MOD, a, &ev));
    write_exact(c, "0123456789", 10);
    wait_queued(a, 10, "EPOLLONESHOT");
    CHECK(ep_wait(ep, IO_MS) == 1, "EPOLLONESHOT: no event for 10 bytes");
    CHECK(ep_wait(ep, 0) == 0, "EPOLLONESHOT: a second event before re-arming");
    write_exact(c, "abcde", 5);
    wait_queued(a, 15, "EPOLLONESHOT");
    CHECK(ep_wait(ep, 0) == 0, "EPOLLONESHOT: an event for new bytes before re-arming");
    SYS(epoll_ctl(ep, EPOLL_CTL_MOD, a, &ev));
    CHECK(ep_wait(ep, 0) == 1, "EPOLLONESHOT: no event after EPOLL_CTL_MOD re-armed it");
    CHECK(ep_wait(ep, 0) == 0, "EPOLLONESHOT: a second event after re-arming");
    drain(a, 15);
    printf("ok: epoll: EPOLLONESHOT reports once, then nothing until EPOLL_CTL_MOD re-arms it\n");
    close(ep);
    close(c);
    close(a);
}

struct excl {
    pthread_t t;
    int ep, l, stop;
    atomic_int *accepted, *woken;
    int fd, timed_out;
    _Atomic pid_t tid;
};

/* Waits in its own epoll instance until the stop eventfd: a wake for the
 * listener tries one accept4(). */
static void *excl_run(void *arg)
{
    struct excl *x = arg;
    atomic_store(&x->tid, gettid());
    for (;;) {
        struct epoll_event evs[2];
        int n = epoll_wait(x->ep, evs, 2, WAKE_S * 1000);
        CHECK(n >= 0, "EPOLLEXCLUSIVE: epoll_wait: %s", strerror(errno));
        if (n == 0) {
            x->timed_out = 1;
            return NULL;
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.fd == x->stop)
                return NULL;
            atomic_fetch_add(x->woken, 1);
            int fd = accept4(x->l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            CHECK(fd >= 0 || errno == EAGAIN, "EPOLLEXCLUSIVE: accept4: %s", strerror(errno));
            if (fd >= 0) {
                x->fd = fd;
                atomic_fetch_add(x->accepted, 1);
            }
        }
    }
}

static void case_epoll_exclusive(void)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    SYS(l);
    unsigned port = bind_lo(l, 0);
    SYS(listen(l, 16));
    int stop = eventfd(0, EFD_CLOEXEC);
    SYS(stop);
    atomic_int accepted = 0, woken = 0;
    struct excl x[2];
    for (int i = 0; i < 2; i++) {
        x[i] = (struct excl){.l = l, .stop = stop, .accepted = &accepted, .woken = &woken,
                             .fd = -1};
        x[i].ep = epoll_create1(EPOLL_CLOEXEC);
        SYS(x[i].ep);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = l};
        SYS(epoll_ctl(x[i].ep, EPOLL_CTL_ADD, l, &ev));
        ev = (struct epoll_event){.events = EPOLLIN, .data.fd = stop};
        SYS(epoll_ctl(x[i].ep, EPOLL_CTL_ADD, stop, &ev));
        int e = pthread_create(&x[i].t, NULL, excl_run, &x[i]);
        CHECK(e == 0, "pthread_create: %s", strerror(e));
    }
    for (int i = 0; i < 2; i++) {
        for (int k = 0; k < IO_MS && !atomic_load(&x[i].tid); k++)
            nap_ms(1);
        wait_sleeping(atomic_load(&x[i].tid), -1, "EPOLLEXCLUSIVE");
    }
    int c = connect_lo(port);
    for (int k = 0; k < IO_MS && !atomic_load(&accepted); k++)
        nap_ms(1);
    int woke = atomic_load(&woken);
    SYS(eventfd_write(stop, 1));
    for (int i = 0; i < 2; i++) {
        int e = pthread_join(x[i].t, NULL);
        CHECK(e == 0, "pthread_join: %s", strerror(e));
        CHECK(!x[i].timed_out, "EPOLLEXCLUSIVE: thread %d saw neither the connection nor the "
              "stop within %d s", i, WAKE_S);
    }
    CHECK(woke >= 1, "EPOLLEXCLUSIVE: no waiter woke for the connection within %d ms", IO_MS);
    CHECK(atomic_load(&accepted) == 1, "EPOLLEXCLUSIVE: %d accepts succeeded, want 1",
          atomic_load(&accepted));
    CHECK(accept4(l, NULL, NULL, SOCK_NONBLOCK) < 0 && errno == EAGAIN,
          "EPOLLEXCLUSIVE: a second accept: %s", strerror(errno));
    int a = x[0].fd >= 0 ? x[0].fd : x[1].fd;
    carry(c, a, "exclusive", "EPOLLEXCLUSIVE's accepted connection");
    printf("ok: epoll: EPOLLEXCLUSIVE on a listener in two instances: %d waiter(s) woke for "
           "one connect, accept() succeeded once\n", woke);
    close(a);
    close(c);
    close(x[0].ep);
    close(x[1].ep);
    close(stop);
    close(l);
}

/* ---- signals ---- */

static volatile sig_atomic_t usr1_hits;

static void on_usr1(int sig)
{
    (void)sig;
    usr1_hits++;
}

static void handle(int sig, void (*h)(int), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = flags;
    SYS(sigaction(sig, &sa, NULL));
}

static int call_read(struct waiter *w)
{
    w->n = read(w->fd, w->buf, sizeof w->buf);
    return w->n < 0 ? -1 : 0;
}

static void case_signals(void)
{
    int c, a;
    pair(&c, &a);
    struct waiter w;

    handle(SIGUSR1, on_usr1, 0);
    usr1_hits = 0;
    waiter_start(&w, call_read, a);
    waiter_asleep(&w, "signal without SA_RESTART");
    int e = pthread_kill(w.t, SIGUSR1);
    CHECK(e == 0, "pthread_kill: %s", strerror(e));
    if (!waiter_done_within(&w, IO_MS)) {
        write_exact(c, "x", 1); /* lets the thread go, to fail */
        waiter_join(&w);
        CHECK(0, "signal without SA_RESTART: the blocked read() went on (it returned %zd "
              "once a byte came; %d handler run(s))", w.n, (int)usr1_hits);
    }
    waiter_join(&w);
    CHECK(w.n == -1 && w.err == EINTR && usr1_hits == 1,
          "signal without SA_RESTART: read() returned %zd (%s), %d handler run(s)", w.n,
          w.n < 0 ? strerror(w.err) : "no error", (int)usr1_hits);
    printf("ok: signals: a handler without SA_RESTART makes a blocked read() say EINTR\n");

    handle(SIGUSR1, on_usr1, SA_RESTART);
    usr1_hits = 0;
    waiter_start(&w, call_read, a);
    long sw = waiter_asleep(&w, "signal with SA_RESTART");
    e = pthread_kill(w.t, SIGUSR1);
    CHECK(e == 0, "pthread_kill: %s", strerror(e));
    /* The signal woke the thread, which sleeps again in the restarted
     * read(). (ThreadSanitizer runs the program's handler only once that
     * read() returns, so the handler's run is checked after it.) */
    wait_sleeping(atomic_load(&w.tid), sw, "signal with SA_RESTART: the read() again");
    CHECK(!atomic_load(&w.done), "signal with SA_RESTART: read() returned %zd (%s) before any "
          "byte came", w.n, w.n < 0 ? strerror(w.err) : "no error");
    write_exact(c, "after-signal", 12);
    CHECK(waiter_done_within(&w, IO_MS), "signal with SA_RESTART: read() did not return the "
          "bytes within %d ms", IO_MS);
    waiter_join(&w);
    CHECK(w.n > 0, "signal with SA_RESTART: read() returned %zd (%s)", w.n,
          w.n < 0 ? strerror(w.err) : "EOF");
    for (int i = 0; i < IO_MS && !usr1_hits; i++)
        nap_ms(1);
    CHECK(usr1_hits == 1, "signal with SA_RESTART: %d handler run(s), want 1", (int)usr1_hits);
    if (w.n < 12)
        read_exact(a, w.buf + w.n, (size_t)(12 - w.n), IO_MS);
    CHECK(memcmp(w.buf, "after-signal", 12) == 0, "signal with SA_RESTART: other bytes");
    printf("ok: signals: with SA_RESTART the read() goes on and returns the bytes sent after "
           "the signal\n");
    handle(SIGUSR1, SIG_DFL, 0);
    close(c);
    close(a);
}

/* ---- MSG_PEEK, MSG_WAITALL, FIONREAD, a read in a handler ---- */

#define WAITALL_PIECE 1000

static int call_waitall(struct waiter *w)
{
    w->n = recv(w->fd, w->buf, 4 * WAITALL_PIECE, MSG_WAITALL);
    return w->n < 0 ? -1 : 0;
}

static void case_peek(void)
{
    int c, a;
    pair(&c, &a);
    char p1[8], p2[8];
    write_exact(c, "peekaboo", 8);
    wait_queued(a, 8, "MSG_PEEK");
    CHECK(recv(a, p1, 8, MSG_PEEK) == 8 && memcmp(p1, "peekaboo", 8) == 0,
          "MSG_PEEK: %s", strerror(errno));
    int q = 0;
    SYS(ioctl(a, FIONREAD, &q));
    CHECK(q == 8, "MSG_PEEK: %d bytes queued after the peek, want 8", q);
    CHECK(recv(a, p2, 8, 0) == 8 && memcmp(p2, "peekaboo", 8) == 0,
          "recv after MSG_PEEK: other bytes or %s", strerror(errno));
    printf("ok: peek: MSG_PEEK returns the bytes and leaves them; the next recv() gets them\n");

    unsigned char want[4 * WAITALL_PIECE];
    for (size_t i = 0; i < sizeof want; i++)
        want[i] = pattern_byte(i);
    struct waiter w;
    waiter_start(&w, call_waitall, a);
    long sw = waiter_asleep(&w, "MSG_WAITALL");
    for (int i = 0; i < 4; i++) {
        CHECK(!atomic_load(&w.done), "MSG_WAITALL: recv() returned %zd after %d of 4 pieces",
              w.n, i);
        write_exact(c, want + i * WAITALL_PIECE, WAITALL_PIECE);
        if (i < 3) /* it woke for the piece and waits again */
            sw = wait_sleeping(atomic_load(&w.tid), sw, "MSG_WAITALL: after a piece");
    }
    CHECK(waiter_done_within(&w, IO_MS), "MSG_WAITALL: recv() did not return");
    waiter_join(&w);
    CHECK(w.n == (ssize_t)sizeof want && memcmp(w.buf, want, sizeof want) == 0,
          "MSG_WAITALL: recv() returned %zd (%s)", w.n, w.n < 0 ? strerror(w.err) : "bytes");
    printf("ok: peek: MSG_WAITALL waits for all %zu bytes the peer wrote in 4 pieces\n",
           sizeof want);
    close(c);
    close(a);
}

static void case_fionread(void)
{
    int c, a;
    pair(&c, &a);
    char buf[100];
    memset(buf, 'f', sizeof buf);
    write_exact(c, buf, sizeof buf);
    CHECK(poll_for(a, POLLIN, IO_MS) & POLLIN, "FIONREAD: nothing arrived within %d ms", IO_MS);
    int q = -1;
    SYS(ioctl(a, FIONREAD, &q));
    CHECK(q > 0 && q <= 100, "FIONREAD: %d once readable, want 1..100", q);
    wait_queued(a, 100, "FIONREAD");
    SYS(ioctl(a, FIONREAD, &q));
    CHECK(q == 100, "FIONREAD: %d, want 100", q);
    drain(a, 40);
    SYS(ioctl(a, FIONREAD, &q));
    CHECK(q == 60, "FIONREAD: %d after reading 40 of 100, want 60", q);
    drain(a, 60);
    SYS(ioctl(a, FIONREAD, &q));
    CHECK(q == 0, "FIONREAD: %d after reading all, want 0", q);
    printf("ok: fionread: FIONREAD says 100 bytes queued, 60 after reading 40, then 0\n");
    close(c);
    close(a);
}

static int handler_fd = -1;
static char handler_buf[16];
static volatile sig_atomic_t handler_got = -2;

static void on_usr2(int sig)
{
    (void)sig;
    int saved = errno;
    handler_got = (sig_atomic_t)read(handler_fd, handler_buf, sizeof handler_buf);
    errno = saved;
}

static void case_handler(void)
{
    int c, a;
    pair(&c, &a);
    write_exact(c, "in-handler", 10);
    wait_queued(a, 10, "read in a handler");
    handler_fd = a;
    handle(SIGUSR2, on_usr2, 0);
    SYS(raise(SIGUSR2));
    for (int i = 0; i < IO_MS && handler_got == -2; i++)
        nap_ms(1);
    CHECK(handler_got == 10 && memcmp(handler_buf, "in-handler", 10) == 0,
          "read in a handler: read() returned %d", (int)handler_got);
    handle(SIGUSR2, SIG_DFL, 0);
    printf("ok: handler: a read() inside a SIGUSR2 handler returns the socket's bytes\n");
    close(c);
    close(a);
}

/* ---- 1,000 threads ---- */

/* A connection the threads case's server accepted, kept until the end
 * (its fd closed once it read EOF). */
struct sconn {
    int fd;
    int id;             /* the client's number, from its request; -1 before */
    int ended;          /* EOF (or an error) read, fd closed */
    unsigned peer_port; /* getpeername() at accept */
    size_t got;
    char req[16];
    struct sconn *next;
};

/* The server: one thread, an epoll loop, answering "req N" with "rsp N". */
struct srv {
    int l, ep, expect;
    struct sconn *all;                 /* the server thread's; main's after the join */
    unsigned char *seen;               /* the client numbers whose request came */
    atomic_int accepted, served, done; /* done: served, then EOF; a failing client reads them */
};

static void srv_accept(struct srv *s)
{
    int fd;
    while ((fd = accept4(s->l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        struct sconn *sc = calloc(1, sizeof *sc);
        CHECK(sc, "out of memory");
        sc->fd = fd;
        sc->id = -1;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        SYS(getpeername(fd, (struct sockaddr *)&ss, &sl));
        sc->peer_port = port_of(&ss);
        sc->next = s->all;
        s->all = sc;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = sc};
        SYS(epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev));
        atomic_fetch_add(&s->accepted, 1);
    }
    CHECK(errno == EAGAIN, "server: accept4: %s", strerror(errno));
}

/* The client number in request r ("req " and 12 digits), or -1. */
static long request_id(const char *r)
{
    long id = 0;
    if (memcmp(r, "req ", 4) != 0)
        return -1;
    for (int i = 4; i < 16; i++) {
        if (r[i] < '0' || r[i] > '9')
            return -1;
        id = id * 10 + (r[i] - '0');
    }
    return id;
}

/* One event of connection sc: its request answered, or its end. */
static void srv_serve(struct srv *s, struct sconn *sc)
{
    ssize_t r = read(sc->fd, sc->req + sc->got, sizeof sc->req - sc->got);
    if (r < 0 && errno == EAGAIN)
        return;
    /* a client's connection ends with EOF; one that sent nothing is
     * failed at the end (threads_extra), ended as it likes */
    CHECK(r >= 0 || sc->id < 0, "server: client %d: read: %s", sc->id, strerror(errno));
    if (r <= 0) {
        SYS(epoll_ctl(s->ep, EPOLL_CTL_DEL, sc->fd, NULL));
        close(sc->fd);
        sc->ended = 1;
        if (sc->id >= 0)
            atomic_fetch_add(&s->done, 1);
        return;
    }
    sc->got += (size_t)r;
    if (sc->got < sizeof sc->req)
        return;
    long id = request_id(sc->req);
    CHECK(id >= 0 && id < s->expect && sc->id < 0, "server: request \"%.16s\" on a connection "
          "of client %d", sc->req, sc->id);
    CHECK(!s->seen[id], "server: client %ld's request on a second connection", id);
    s->seen[id] = 1;
    sc->id = (int)id;
    memcpy(sc->req, "rsp ", 4);
    CHECK(write(sc->fd, sc->req, sizeof sc->req) == (ssize_t)sizeof sc->req, "server: write: %s",
          strerror(errno));
    sc->got = 0;
    atomic_fetch_add(&s->served, 1);
}

static void *srv_run(void *arg)
{
    struct srv *s = arg;
    while (atomic_load(&s->done) < s->expect) {
        struct epoll_event evs[64];
        int n = epoll_wait(s->ep, evs, 64, IO_MS);
        SYS(n);
        CHECK(n > 0, "server: nothing for %d ms (%d accepted, %d served, %d ended)", IO_MS,
              atomic_load(&s->accepted), atomic_load(&s->served), atomic_load(&s->done));
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr)
                srv_serve(s, evs[i].data.ptr);
            else
                srv_accept(s);
        }
    }
    return NULL;
}

static struct srv *threads_srv;
static unsigned threads_port;
static atomic_int threads_done;
static unsigned *client_port; /* each client's local port, by number */
/* How many threads' connections were of each kind, as the kernel names
 * the socket's protocol (sockfs's "system.sockprotoname" attribute: "TCP",
 * "TCPv6", "UNIX-STREAM"), which no interposed call answers:
 * fd_transport() reads /proc/net's tables, which 1,000 threads at once
 * would make the case's main cost. */
static const char *const kinds[] = {"tcp", "unix", "other"};
static atomic_int kind_count[3];
static const char *_Atomic thread_kind; /* fd_transport() of thread 0's */

static size_t kind_of(int fd)
{
    char name[32];
    ssize_t n = fgetxattr(fd, "system.sockprotoname", name, sizeof name - 1);
    if (n <= 0)
        return 2;
    name[n] = 0;
    return strncmp(name, "TCP", 3) == 0 ? 0 : strncmp(name, "UNIX", 4) == 0 ? 1 : 2;
}

static void *client_run(void *arg)
{
    int id = (int)(intptr_t)arg;
    double t0 = now_s();
    int s = connect_lo(threads_port);
    double took = now_s() - t0;
    size_t k = kind_of(s);
    atomic_fetch_add(&kind_count[k], 1);
    if (id == 0)
        atomic_store(&thread_kind, fd_transport(s));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    SYS(getsockname(s, (struct sockaddr *)&ss, &sl));
    client_port[id] = port_of(&ss);
    char req[17], rsp[16];
    snprintf(req, sizeof req, "req %012d", id);
    write_exact(s, req, 16);
    for (size_t got = 0; got < sizeof rsp;) {
        CHECK(poll_for(s, POLLIN, IO_MS),
              "thread %d: no response within %d ms (%s, connect() took %.1f s; server: %d "
              "accepted, %d served)", id, IO_MS, kinds[k], took,
              atomic_load(&threads_srv->accepted), atomic_load(&threads_srv->served));
        ssize_t r = read(s, rsp + got, sizeof rsp - got);
        CHECK(r > 0, "thread %d: read: %s", id, r == 0 ? "EOF" : strerror(errno));
        got += (size_t)r;
    }
    CHECK(memcmp(rsp, "rsp ", 4) == 0 && memcmp(rsp + 4, req + 4, 12) == 0,
          "thread %d: response \"%.16s\"", id, rsp);
    close(s);
    atomic_fetch_add(&threads_done, 1);
    return NULL;
}

/* The connections s accepted that sent no request (each connect() is
 * accepted once: none over kernel TCP), said, and how many of them came
 * from a client's address into *from_client; all of s's freed. */
static int threads_extra(struct srv *s, int count, int *from_client)
{
    unsigned char *ours = calloc(65536, 1);
    CHECK(ours, "out of memory");
    for (int i = 0; i < count; i++)
        ours[client_port[i] & 0xffff] = 1;
    int extra = 0;
    *from_client = 0;
    for (struct sconn *sc = s->all, *next; sc; sc = next) {
        next = sc->next;
        if (sc->id < 0) {
            printf("threads: accepted a connection from 127.0.0.1:%u (%s) that sent nothing\n",
                   sc->peer_port, ours[sc->peer_port & 0xffff] ? "a client's address"
                                                               : "no client's address");
            extra++;
            *from_client += ours[sc->peer_port & 0xffff];
        }
        if (!sc->ended)
            close(sc->fd);
        free(sc);
    }
    free(ours);
    return extra;
}

static void case_threads(int count)
{
    raise_fd_limit();
    struct srv s = {.expect = count};
    threads_srv = &s;
    s.seen = calloc((size_t)count, 1);
    client_port = calloc((size_t)count, sizeof *client_port);
    CHECK(s.seen && client_port, "out of memory");
    s.l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    SYS(s.l);
    threads_port = bind_lo(s.l, 0);
    SYS(listen(s.l, 1024));
    s.ep = epoll_create1(EPOLL_CLOEXEC);
    SYS(s.ep);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    SYS(epoll_ctl(s.ep, EPOLL_CTL_ADD, s.l, &ev));
    pthread_t server;
    int e = pthread_create(&server, NULL, srv_run, &s);
    CHECK(e == 0, "pthread_create: %s", strerror(e));

    pthread_attr_t attr;
    e = pthread_attr_init(&attr);
    CHECK(e == 0, "pthread_attr_init: %s", strerror(e));
    e = pthread_attr_setstacksize(&attr, THREAD_STACK);
    CHECK(e == 0, "pthread_attr_setstacksize: %s", strerror(e));
    pthread_t *t = calloc((size_t)count, sizeof *t);
    CHECK(t, "out of memory");
    for (int i = 0; i < count; i++) {
        e = pthread_create(&t[i], &attr, client_run, (void *)(intptr_t)i);
        CHECK(e == 0, "pthread_create %d: %s", i, strerror(e));
    }
    for (int i = 0; i < count; i++) {
        e = pthread_join(t[i], NULL);
        CHECK(e == 0, "pthread_join: %s", strerror(e));
    }
    pthread_attr_destroy(&attr);
    free(t);
    e = pthread_join(server, NULL); /* it ends once every client's connection did */
    CHECK(e == 0, "pthread_join: %s", strerror(e));
    printf("transport: %s (thread 0's connection)\n", atomic_load(&thread_kind));
    for (size_t k = 0; k < 3; k++)
        if (atomic_load(&kind_count[k]))
            printf("transport: %s (%d threads' connections, by the kernel's protocol name)\n",
                   kinds[k], atomic_load(&kind_count[k]));
    int from_client, extra = threads_extra(&s, count, &from_client);
    CHECK(atomic_load(&threads_done) == count && atomic_load(&s.served) == count &&
              atomic_load(&s.done) == count && extra == 0,
          "threads: %d of %d done; server: %d accepted, %d served, %d ended; %d connection(s) "
          "no client's connect() made sent nothing (%d from a client's address)",
          atomic_load(&threads_done), count, atomic_load(&s.accepted), atomic_load(&s.served),
          atomic_load(&s.done), extra, from_client);
    printf("ok: threads: %d threads (%d KiB stacks), each a request and its response over its "
           "own connection, all complete\n", count, THREAD_STACK / 1024);
    free(s.seen);
    free(client_port);
    close(s.ep);
    close(s.l);
}

/* ---- readiness calls woken while they wait ---- */

struct uring {
    int fd;
    void *sq, *cq;
    size_t sq_len, cq_len, sqes_len;
    struct io_uring_sqe *sqes;
    unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
    struct io_uring_cqe *cqes;
};

static void uring_close(struct uring *u)
{
    if (u->sqes && u->sqes != MAP_FAILED)
        munmap(u->sqes, u->sqes_len);
    if (u->cq && u->cq != MAP_FAILED && u->cq != u->sq)
        munmap(u->cq, u->cq_len);
    if (u->sq && u->sq != MAP_FAILED)
        munmap(u->sq, u->sq_len);
    close(u->fd);
}

/* A ring of 4 entries by io_uring_setup() and mmap(); 0, or the negative
 * errno of io_uring_setup() (a failure after it dies). */
static int uring_open(struct uring *u)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    memset(u, 0, sizeof *u);
    u->fd = (int)syscall(__NR_io_uring_setup, 4, &p);
    if (u->fd < 0)
        return -errno;
    u->sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    u->cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    int single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
    if (single && u->cq_len > u->sq_len)
        u->sq_len = u->cq_len;
    u->sq = mmap(NULL, u->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd,
                 IORING_OFF_SQ_RING);
    CHECK(u->sq != MAP_FAILED, "io_uring: mmap SQ ring: %s", strerror(errno));
    u->cq = single ? u->sq
                   : mmap(NULL, u->cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                          u->fd, IORING_OFF_CQ_RING);
    CHECK(u->cq != MAP_FAILED, "io_uring: mmap CQ ring: %s", strerror(errno));
    u->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
    u->sqes = mmap(NULL, u->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd,
                   IORING_OFF_SQES);
    CHECK(u->sqes != MAP_FAILED, "io_uring: mmap SQEs: %s", strerror(errno));
    char *sq = u->sq, *cq = u->cq;
    u->sq_tail = (unsigned *)(sq + p.sq_off.tail);
    u->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
    u->sq_array = (unsigned *)(sq + p.sq_off.array);
    u->cq_head = (unsigned *)(cq + p.cq_off.head);
    u->cq_tail = (unsigned *)(cq + p.cq_off.tail);
    u->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
    u->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
    return 0;
}

static struct io_uring_sqe *uring_sqe(struct uring *u, unsigned *tail)
{
    unsigned i = *tail & *u->sq_mask;
    struct io_uring_sqe *sqe = &u->sqes[i];
    memset(sqe, 0, sizeof *sqe);
    u->sq_array[i] = i;
    ++*tail;
    return sqe;
}

/* IORING_OP_POLL_ADD for POLLIN on w->fd with a 10 s IORING_OP_TIMEOUT
 * beside it, submitted and waited for in one io_uring_enter(): 1 when the
 * poll completed with POLLIN, 0 when the timeout came first. */
static int call_uring(struct waiter *w)
{
    static struct __kernel_timespec ts = {.tv_sec = WAKE_S};
    struct uring *u = w->ring;
    unsigned tail = *u->sq_tail;
    struct io_uring_sqe *sqe = uring_sqe(u, &tail);
    sqe->opcode = IORING_OP_POLL_ADD;
    sqe->fd = w->fd;
    sqe->poll32_events = POLLIN;
    sqe->user_data = 1;
    sqe = uring_sqe(u, &tail);
    sqe->opcode = IORING_OP_TIMEOUT;
    sqe->fd = -1;
    sqe->addr = (uintptr_t)&ts;
    sqe->len = 1;
    sqe->user_data = 2;
    __atomic_store_n(u->sq_tail, tail, __ATOMIC_RELEASE);
    long r = syscall(__NR_io_uring_enter, u->fd, 2, 1, IORING_ENTER_GETEVENTS, NULL, 0);
    if (r < 0)
        return -1;
    int got = 0;
    unsigned head = *u->cq_head, end = __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE);
    for (; head != end; head++) {
        struct io_uring_cqe *cqe = &u->cqes[head & *u->cq_mask];
        if (cqe->user_data != 1)
            continue;
        if (cqe->res < 0) {
            errno = -cqe->res;
            return -1;
        }
        got = (cqe->res & POLLIN) != 0;
    }
    __atomic_store_n(u->cq_head, head, __ATOMIC_RELEASE);
    return got;
}

static int call_poll(struct waiter *w)
{
    struct pollfd p = {.fd = w->fd, .events = POLLIN};
    int n = poll(&p, 1, WAKE_S * 1000);
    return n < 0 ? -1 : n == 1 && (p.revents & POLLIN);
}

static int call_ppoll(struct waiter *w)
{
    struct pollfd p = {.fd = w->fd, .events = POLLIN};
    struct timespec ts = {WAKE_S, 0};
    int n = ppoll(&p, 1, &ts, NULL);
    return n < 0 ? -1 : n == 1 && (p.revents & POLLIN);
}

static int call_poll_chk(struct waiter *w)
{
    struct pollfd p = {.fd = w->fd, .events = POLLIN};
    int n = __poll_chk(&p, 1, WAKE_S * 1000, sizeof p);
    return n < 0 ? -1 : n == 1 && (p.revents & POLLIN);
}

static int call_select(struct waiter *w)
{
    fd_set r;
    FD_ZERO(&r);
    FD_SET(w->fd, &r);
    struct timeval tv = {WAKE_S, 0};
    int n = select(w->fd + 1, &r, NULL, NULL, &tv);
    return n < 0 ? -1 : n == 1 && FD_ISSET(w->fd, &r);
}

static int call_pselect(struct waiter *w)
{
    fd_set r;
    FD_ZERO(&r);
    FD_SET(w->fd, &r);
    struct timespec ts = {WAKE_S, 0};
    int n = pselect(w->fd + 1, &r, NULL, NULL, &ts, NULL);
    return n < 0 ? -1 : n == 1 && FD_ISSET(w->fd, &r);
}

static int call_epoll_wait(struct waiter *w)
{
    struct epoll_event ev;
    int n = epoll_wait(w->ep, &ev, 1, WAKE_S * 1000);
    return n < 0 ? -1 : n == 1 && ev.data.fd == w->fd && (ev.events & EPOLLIN);
}

static int call_epoll_pwait(struct waiter *w)
{
    struct epoll_event ev;
    int n = epoll_pwait(w->ep, &ev, 1, WAKE_S * 1000, NULL);
    return n < 0 ? -1 : n == 1 && ev.data.fd == w->fd && (ev.events & EPOLLIN);
}

static int epoll_pwait2_raw(int ep, struct epoll_event *ev, int max, const struct timespec *ts)
{
    return (int)syscall(SYS_epoll_pwait2, ep, ev, max, ts, NULL, (size_t)0);
}

static int call_epoll_pwait2(struct waiter *w)
{
    struct epoll_event ev;
    struct timespec ts = {WAKE_S, 0};
    int n = epoll_pwait2_raw(w->ep, &ev, 1, &ts);
    return n < 0 ? -1 : n == 1 && ev.data.fd == w->fd && (ev.events & EPOLLIN);
}

/* One call: waits on a in a thread, woken by a byte written on c once it
 * sleeps; the byte then read. */
static void wake_one(const char *name, waiter_call *call, int c, int a, int ep,
                     struct uring *ring)
{
    struct waiter w;
    w.ep = ep;
    w.ring = ring;
    waiter_start(&w, call, a);
    waiter_asleep(&w, name);
    CHECK(!atomic_load(&w.done), "%s: returned %d before any byte came", name, w.result);
    write_exact(c, "w", 1);
    waiter_join(&w); /* bounded: the call's own 10 s */
    CHECK(w.result != 0, "%s: not woken within %d s by bytes that arrived while it waited",
          name, WAKE_S);
    CHECK(w.result == 1, "%s: %s", name, strerror(w.err));
    drain(a, 1);
    printf("ok: wake: %s, already waiting, wakes when the peer writes\n", name);
}

static void case_wake(void)
{
    int c, a;
    pair(&c, &a);
    CHECK(a < FD_SETSIZE, "fd %d too high for select()", a);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    SYS(ep);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = a};
    SYS(epoll_ctl(ep, EPOLL_CTL_ADD, a, &ev));
    static const struct {
        const char *name;
        waiter_call *call;
    } calls[] = {
        {"poll()", call_poll},
        {"ppoll()", call_ppoll},
        {"select()", call_select},
        {"pselect()", call_pselect},
        {"epoll_wait()", call_epoll_wait},
        {"epoll_pwait()", call_epoll_pwait},
        {"__poll_chk()", call_poll_chk},
    };
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++)
        wake_one(calls[i].name, calls[i].call, c, a, ep, NULL);

    struct timespec zero = {0, 0};
    if (epoll_pwait2_raw(ep, &ev, 1, &zero) < 0 && errno == ENOSYS)
        printf("skip: epoll_pwait2: the kernel says ENOSYS\n");
    else
        wake_one("epoll_pwait2()", call_epoll_pwait2, c, a, ep, NULL);

    struct uring ring;
    int r = uring_open(&ring);
    if (r == -ENOSYS || r == -EPERM) {
        printf("skip: io_uring: io_uring_setup: %s (disabled here)\n", strerror(-r));
    } else {
        CHECK(r == 0, "io_uring_setup: %s", strerror(-r));
        wake_one("io_uring IORING_OP_POLL_ADD", call_uring, c, a, ep, &ring);
        uring_close(&ring);
    }
    close(ep);
    close(c);
    close(a);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--child-exec") == 0)
        return child_exec(argv[2]);
    prog_begin(argc, WATCHDOG_S);
    lst = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    SYS(lst);
    lport = bind_lo(lst, 0);
    SYS(listen(lst, 16));

    double t0 = now_s();
    case_stdio();
    case_sendfile();
    case_dup();
    case_epoll_modes();
    case_epoll_exclusive();
    case_signals();
    case_peek();
    case_fionread();
    case_handler();
    case_wake();
    case_threads(THREADS);
    close(lst);
    printf("ok: all transparency cases passed (%.1f s)\n", now_s() - t0);
    return 0;
}
