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
 * it must run TSan-clean. Its files, and which cases each holds:
 * prog_transparency.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "progutil.h"
#include "prog_transparency.h"

const char *prog_name = "prog_transparency";

static int lst;          /* the listener every pair() comes from */
static unsigned lport;

/* A connected pair through lst: *c the connecting end, *a the accepted. */
void pair(int *c, int *a)
{
    *c = connect_lo(lport);
    *a = accept_ready(lst, IO_MS);
}

/* s written on fd arrives on peer. */
void carry(int fd, int peer, const char *s, const char *what)
{
    size_t n = strlen(s);
    char buf[128];
    CHECK(n <= sizeof buf, "carry: %zu bytes", n);
    write_exact(fd, s, n);
    read_exact(peer, buf, n, IO_MS);
    CHECK(memcmp(buf, s, n) == 0, "%s: other bytes arrived (\"%.*s\")", what, (int)n, buf);
}

void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Until FIONREAD on fd says at least n (1 ms naps, IO_MS at most). */
void wait_queued(int fd, int n, const char *what)
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

/* a's bytes, n of them, read and dropped. */
void drain(int a, size_t n)
{
    char buf[256];
    CHECK(n <= sizeof buf, "drain: %zu", n);
    read_exact(a, buf, n, IO_MS);
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
long wait_sleeping(pid_t tid, long after, const char *what)
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

static void *waiter_run(void *arg)
{
    struct waiter *w = arg;
    atomic_store(&w->tid, gettid());
    w->result = w->call(w);
    w->err = errno;
    atomic_store(&w->done, 1);
    return NULL;
}

void waiter_start(struct waiter *w, waiter_call *call, int fd)
{
    w->call = call;
    w->fd = fd;
    atomic_store(&w->tid, 0);
    atomic_store(&w->done, 0);
    int e = pthread_create(&w->t, NULL, waiter_run, w);
    CHECK(e == 0, "pthread_create: %s", strerror(e));
}

/* Until w's thread sleeps in its call; returns its switches then. */
long waiter_asleep(struct waiter *w, const char *what)
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

void waiter_join(struct waiter *w)
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
