/*
 * prog_faults: a program's own SIGSEGV and SIGBUS, and bad buffers on a
 * connection, as over kernel TCP. Under the shim its handler for these two
 * signals is the kernel's (shim/base/fault.c: a fault inside the shim's
 * guarded copy of a program's buffer is EFAULT); the program must not see
 * it in anything it does.
 *
 *   prog_faults            run every check below; exit 0 iff all hold
 *
 *   dispositions  sigaction() and signal() report what the program set
 *                 (SIG_DFL at first, then its handler with its flags);
 *   faults        a read of a PROT_NONE page reaches the program's
 *                 SA_SIGINFO handler (SIGSEGV, SEGV_ACCERR, the address),
 *                 on its sigaltstack with SA_ONSTACK; a read past the end
 *                 of a mapped empty file its SIGBUS handler (BUS_ADRERR);
 *                 a handler set with signal() gets the signal number;
 *   sent          kill(getpid(), SIGSEGV) reaches the handler (SI_USER),
 *                 and is nothing with SIG_IGN;
 *   buffers       on a loopback connection, with the handler counting:
 *                 write() from, read() and readv() into a PROT_NONE page
 *                 or an unmapped address fail with EFAULT and lose
 *                 nothing (the next read has the bytes); a read blocked
 *                 before the bytes come, into a bad buffer, too; the same
 *                 from a thread that blocks every signal; the handler never
 *                 ran;
 *   deaths        a forked child that faults dies of SIGSEGV with the
 *                 default action, with SIG_IGN (the kernel's rule for a
 *                 fault), and after an SA_RESETHAND handler returned;
 *   exec          SIG_IGN for SIGSEGV survives execve() (the new image,
 *                 this program again with "--ignored", reports it), and
 *                 a handler does not (SIG_DFL there).
 *
 * Prints one "ok:" line per check and "transport: KIND" for the
 * connection. Exit 0 iff every check held; 1 with a "FAIL:" line
 * otherwise; 3 if the watchdog (60 s) fired.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_faults";

static sigjmp_buf back;
static volatile sig_atomic_t hits, got_sig, got_code;
static void *volatile got_addr;
static volatile uintptr_t got_sp;

static void on_info(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    char here;
    hits++;
    got_sig = sig;
    got_code = si->si_code;
    got_addr = si->si_addr;
    got_sp = (uintptr_t)&here;
    if (si->si_code > 0)
        siglongjmp(back, 1); /* a fault: the instruction must not run again */
}

static void on_plain(int sig)
{
    hits++;
    got_sig = sig;
    siglongjmp(back, 1);
}

static void set_handler(int sig, int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_info;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_SIGINFO | flags;
    SYS(sigaction(sig, &sa, NULL));
}

static void check_dispositions(void)
{
    struct sigaction o;
    SYS(sigaction(SIGSEGV, NULL, &o));
    CHECK(!(o.sa_flags & SA_SIGINFO) && o.sa_handler == SIG_DFL,
          "SIGSEGV at start: flags 0x%x handler %p, want SIG_DFL", (unsigned)o.sa_flags,
          (void *)o.sa_handler);
    set_handler(SIGSEGV, SA_ONSTACK | SA_RESTART);
    SYS(sigaction(SIGSEGV, NULL, &o));
    CHECK((o.sa_flags & SA_SIGINFO) && (o.sa_flags & SA_ONSTACK) && (o.sa_flags & SA_RESTART) &&
              !(o.sa_flags & SA_NODEFER) && o.sa_sigaction == on_info,
          "SIGSEGV after sigaction: flags 0x%x handler %p, want on_info, "
          "SA_SIGINFO|SA_ONSTACK|SA_RESTART",
          (unsigned)o.sa_flags, (void *)o.sa_sigaction);
    sighandler_t prev = signal(SIGBUS, on_plain);
    CHECK(prev == SIG_DFL, "signal(SIGBUS) first: %p, want SIG_DFL", (void *)prev);
    prev = signal(SIGBUS, SIG_DFL);
    CHECK(prev == on_plain, "signal(SIGBUS) again: %p, want the handler set", (void *)prev);
    SYS(sigaction(SIGBUS, NULL, &o));
    CHECK(o.sa_handler == SIG_DFL, "SIGBUS back at SIG_DFL reads %p", (void *)o.sa_handler);
    printf("ok: dispositions: sigaction() and signal() report the program's\n");
}

/* Reads the byte at p: 1 if that faulted and a handler took us back, 0
 * if it did not fault. */
static int faulted(const char *p)
{
    hits = 0;
    if (sigsetjmp(back, 1))
        return 1;
    volatile char c = *(volatile const char *)p;
    (void)c;
    return 0;
}

static char *none_page(void)
{
    char *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED, "mmap PROT_NONE: %s", strerror(errno));
    return p;
}

static void check_faults(char *none)
{
    static char alt[64 * 1024];
    stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt, .ss_flags = 0};
    SYS(sigaltstack(&ss, NULL));
    set_handler(SIGSEGV, SA_ONSTACK);
    CHECK(faulted(none + 100), "a read of a PROT_NONE page did not fault");
    CHECK(hits == 1 && got_sig == SIGSEGV && got_code == SEGV_ACCERR && got_addr == none + 100,
          "PROT_NONE read: %d calls, signal %d code %d addr %p, want 1, SIGSEGV, SEGV_ACCERR, %p",
          (int)hits, (int)got_sig, (int)got_code, got_addr, (void *)(none + 100));
    CHECK(got_sp >= (uintptr_t)alt && got_sp < (uintptr_t)alt + sizeof alt,
          "the SA_ONSTACK handler ran at %p, off its sigaltstack %p", (void *)got_sp, (void *)alt);

    int fd = memfd_create("empty", MFD_CLOEXEC);
    SYS(fd);
    char *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED, "mmap of an empty file: %s", strerror(errno));
    set_handler(SIGBUS, 0);
    CHECK(faulted(m + 8), "a read past an empty file's end did not fault");
    CHECK(hits == 1 && got_sig == SIGBUS && got_code == BUS_ADRERR && got_addr == m + 8,
          "past the end: %d calls, signal %d code %d addr %p, want 1, SIGBUS, BUS_ADRERR, %p",
          (int)hits, (int)got_sig, (int)got_code, got_addr, (void *)(m + 8));
    munmap(m, 4096);
    close(fd);

    signal(SIGSEGV, on_plain);
    CHECK(faulted(none + 200), "a read of a PROT_NONE page did not fault");
    CHECK(hits == 1 && got_sig == SIGSEGV, "signal()'s handler: %d calls, signal %d", (int)hits,
          (int)got_sig);
    printf("ok: faults: SIGSEGV (SEGV_ACCERR, on the sigaltstack) and SIGBUS (BUS_ADRERR) "
           "reach the program's handlers\n");
}

static void check_sent(void)
{
    set_handler(SIGSEGV, 0);
    hits = 0;
    SYS(kill(getpid(), SIGSEGV));
    CHECK(hits == 1 && got_sig == SIGSEGV && got_code == SI_USER,
          "kill(SIGSEGV): %d calls, code %d, want 1, SI_USER", (int)hits, (int)got_code);
    signal(SIGSEGV, SIG_IGN);
    SYS(kill(getpid(), SIGSEGV));
    printf("ok: sent: kill(SIGSEGV) reaches the handler, and nothing with SIG_IGN\n");
}

/* ---- bad buffers ---- */

typedef struct {
    int fd;
    void *buf;
    ssize_t r;
    int err;
    pid_t tid;
} blocked_read;

static void *reader(void *arg)
{
    blocked_read *b = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    __atomic_store_n(&b->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
    b->r = read(b->fd, b->buf, 20);
    b->err = errno;
    return NULL;
}

static void round_trip(int c, int a, void *bad, const char *what)
{
    char want[20], got[20];
    for (int i = 0; i < 20; i++)
        want[i] = (char)('a' + i);
    ssize_t w = write(c, bad, 100);
    CHECK(w < 0 && errno == EFAULT, "%s: write from a bad buffer: %zd (%s), want EFAULT", what, w,
          w < 0 ? strerror(errno) : "no error");
    SYS(write(a, want, 20));
    ssize_t r = read(c, bad, 20);
    CHECK(r < 0 && errno == EFAULT, "%s: read into a bad buffer: %zd (%s), want EFAULT", what, r,
          r < 0 ? strerror(errno) : "no error");
    struct iovec v[2] = {{got, 5}, {bad, 15}};
    r = readv(c, v, 2);
    CHECK((r < 0 && errno == EFAULT) || r == 5,
          "%s: readv into a good and a bad buffer: %zd (%s), want 5 or EFAULT", what, r,
          r < 0 ? strerror(errno) : "bytes");
    size_t have = r == 5 ? 5 : 0;
    read_exact(c, got + have, 20 - have, 5000);
    CHECK(memcmp(got, want, 20) == 0, "%s: the bytes after the bad reads differ", what);
    SYS(write(c, want, 20));
    read_exact(a, got, 20, 5000);
    CHECK(memcmp(got, want, 20) == 0, "%s: the bytes after the bad write differ", what);
}

static void *round_trip_blocked(void *arg)
{
    int *fds = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    static volatile uintptr_t unmapped = 16;
    round_trip(fds[0], fds[1], (void *)unmapped, "every signal blocked");
    return NULL;
}

/* A SIGSEGV sent to a thread that blocks it stays pending through its
 * socket calls, as the kernel keeps it: the shim's fast paths (a small
 * write sent by the thread, a read or poll waiting on the UDP socket)
 * unblocked the faults for their guarded copies, which let it in. */
static void *late_write(void *arg)
{
    usleep(20000);
    SYS(write(*(int *)arg, "p", 1));
    return NULL;
}

static void *pending_calls(void *arg)
{
    int *fds = arg;
    sigset_t segv, pend;
    sigemptyset(&segv);
    sigaddset(&segv, SIGSEGV);
    pthread_sigmask(SIG_BLOCK, &segv, NULL);
    syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGSEGV);
    char buf[4];
    for (int i = 0; i < 10; i++) {
        pthread_t t;
        CHECK(pthread_create(&t, NULL, late_write, &fds[1]) == 0, "pthread_create");
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        CHECK(poll(&p, 1, 5000) == 1, "pending SIGSEGV: poll %d saw nothing", i);
        pthread_join(t, NULL);
        CHECK(read(fds[0], buf, 1) == 1, "pending SIGSEGV: read after poll %d", i);
        CHECK(pthread_create(&t, NULL, late_write, &fds[1]) == 0, "pthread_create");
        CHECK(read(fds[0], buf, 1) == 1, "pending SIGSEGV: a read that waits, %d", i);
        pthread_join(t, NULL);
        CHECK(write(fds[0], "q", 1) == 1, "pending SIGSEGV: write %d", i);
        read_exact(fds[1], buf, 1, 5000);
    }
    CHECK(sigpending(&pend) == 0 && sigismember(&pend, SIGSEGV) == 1,
          "a SIGSEGV sent to a thread that blocks it was taken during its socket calls");
    return NULL; /* the thread's pending signal goes with it */
}

static void check_buffers(char *none)
{
    set_handler(SIGSEGV, 0);
    set_handler(SIGBUS, 0);
    hits = 0;
    int c, a;
    int l = listener_lo(0, 1);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    SYS(getsockname(l, (struct sockaddr *)&ss, &len));
    c = connect_lo(port_of(&ss));
    a = accept(l, NULL, NULL);
    SYS(a);
    printf("transport: %s\n", fd_transport(c));
    static volatile uintptr_t unmapped = 16; /* unknown to the compiler */
    round_trip(c, a, none, "PROT_NONE page");
    round_trip(c, a, (void *)unmapped, "unmapped address");

    /* a read that waits for the bytes, into a bad buffer */
    for (int i = 0; i < 5; i++) {
        blocked_read b = {.fd = c, .buf = none, .tid = 0};
        pthread_t t;
        CHECK(pthread_create(&t, NULL, reader, &b) == 0, "pthread_create");
        pid_t tid = 0;
        for (int k = 0; k < 5000 && (!(tid = __atomic_load_n(&b.tid, __ATOMIC_ACQUIRE)) ||
                                     thread_state(tid) != 'S');
             k++)
            usleep(1000);
        char want[20], got[20];
        memset(want, 'A' + i, sizeof want);
        SYS(write(a, want, 20));
        pthread_join(t, NULL);
        CHECK(b.r < 0 && b.err == EFAULT, "blocked read %d into a bad buffer: %zd (%s)", i, b.r,
              b.r < 0 ? strerror(b.err) : "no error");
        read_exact(c, got, 20, 5000);
        CHECK(memcmp(got, want, 20) == 0, "blocked read %d: the bytes after it differ", i);
    }

    int fds[2] = {c, a};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, round_trip_blocked, fds) == 0, "pthread_create");
    pthread_join(t, NULL);
    CHECK(hits == 0, "the program's handler ran %d times for bad buffers", (int)hits);
    CHECK(pthread_create(&t, NULL, pending_calls, fds) == 0, "pthread_create");
    pthread_join(t, NULL);
    CHECK(hits == 0, "the handler ran %d times for a SIGSEGV the thread blocked", (int)hits);
    close(c);
    close(a);
    close(l);
    printf("ok: buffers: EFAULT for bad buffers on write, read, readv and a blocked read, "
           "with every signal blocked too; nothing lost; the handler never ran; a SIGSEGV "
           "sent to a thread that blocks it stays pending through poll, read and write\n");
}

/* ---- deaths ---- */

static int pipe_w = -1;

static void on_once(int sig)
{
    (void)sig;
    ssize_t w = write(pipe_w, "h", 1);
    (void)w;
}

static void die_in_child(char *none, int how, const char *what)
{
    int p[2];
    SYS(pipe(p));
    pid_t pid = fork();
    SYS(pid);
    if (pid == 0) {
        close(p[0]);
        pipe_w = p[1];
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sigemptyset(&sa.sa_mask);
        sa.sa_handler = how == 0 ? SIG_DFL : how == 1 ? SIG_IGN : on_once;
        sa.sa_flags = how == 2 ? SA_RESETHAND : 0;
        sigaction(SIGSEGV, &sa, NULL);
        volatile char c = *(volatile char *)(none + 300);
        (void)c;
        _exit(0);
    }
    close(p[1]);
    int st = 0;
    SYS(waitpid(pid, &st, 0));
    char h;
    ssize_t n = read(p[0], &h, 1);
    close(p[0]);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV,
          "%s: the child's end: status 0x%x, want death by SIGSEGV", what, (unsigned)st);
    CHECK(how != 2 || n == 1, "%s: the SA_RESETHAND handler did not run first", what);
}

static void check_deaths(char *none)
{
    die_in_child(none, 0, "SIG_DFL");
    die_in_child(none, 1, "SIG_IGN");
    die_in_child(none, 2, "SA_RESETHAND");
    printf("ok: deaths: a fault ends a child by SIGSEGV with SIG_DFL, SIG_IGN, and after an "
           "SA_RESETHAND handler\n");
}

/* The new image's view: exit 0 if SIGSEGV's disposition is what argv[1]
 * names ("--ignored" or "--default"), 1 if not. */
static int exec_side(const char *want)
{
    struct sigaction o;
    if (sigaction(SIGSEGV, NULL, &o) < 0)
        return 1;
    sighandler_t h = (o.sa_flags & SA_SIGINFO) ? NULL : o.sa_handler;
    return strcmp(want, "--ignored") == 0 ? h != SIG_IGN : h != SIG_DFL;
}

static void exec_child(const char *self, sighandler_t h, const char *want)
{
    pid_t pid = fork();
    SYS(pid);
    if (pid == 0) {
        signal(SIGSEGV, h);
        execl(self, self, want, (char *)NULL);
        _exit(2);
    }
    int st = 0;
    SYS(waitpid(pid, &st, 0));
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "after execve() with SIGSEGV at %s: status 0x%x, want the new image to see %s",
          h == SIG_IGN ? "SIG_IGN" : "a handler", (unsigned)st, want + 2);
}

static void check_exec(void)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    SYS(n);
    self[n] = 0;
    exec_child(self, SIG_IGN, "--ignored");
    exec_child(self, on_plain, "--default");
    printf("ok: exec: SIG_IGN for SIGSEGV survives execve(), a handler does not\n");
}

int main(int argc, char **argv)
{
    if (argc == 2 && argv[1][0] == '-')
        return exec_side(argv[1]);
    prog_begin(argc, 60);
    char *none = none_page();
    check_dispositions();
    check_faults(none);
    check_sent();
    check_buffers(none);
    check_deaths(none);
    check_exec();
    return 0;
}
