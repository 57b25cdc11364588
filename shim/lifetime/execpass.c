/*
 * execpass.c: what our exec passes to the new image (the slabs' memfds,
 * slots.c; the end of a racing connect's pair, exechand.c) without any fd
 * crossing the exec open. An fd without FD_CLOEXEC in the exec'ing process
 * is in its one fd table, shared by all its threads, until the exec: a
 * fork()+exec() in another thread at that moment hands it to an image
 * that knows nothing of it. So the copies stay close-on-exec, and the
 * process that carries the connections on after the exec (the keeper,
 * keeper.c, forked whenever some engine is busy) holds them and serves
 * them on an abstract AF_UNIX socket (SOCK_SEQPACKET) whose name carries
 * 128 random bits (getrandom). The name goes to the new image only in the
 * envp of our execve (RUDP_EXEC_PASS, never in our own environ), and the
 * new image's shim, at start-up, connects, takes the fds (SCM_RIGHTS,
 * close-on-exec) and removes the variable.
 *
 * Each side checks the other (SO_PEERCRED, man 7 unix): the keeper serves
 * only the exec'ing pid (which the new image keeps) with our effective
 * uid; the new image takes them only from a listener made by its own pid
 * (the credentials a connect() gets are the listener's, from its
 * listen(): af_unix.c copy_peercred), that is by the image before it,
 * with its effective uid. The name itself is known to nobody else: the
 * abstract namespace has no permissions, the 128 bits are the lock.
 * Secure execution (AT_SECURE) reads no variable at all (sock.c), as before.
 *
 * Where no keeper is forked (no engine busy: a forked child exec'ing with
 * the connections its parent's engine serves, or a process whose own are
 * all done), the slabs must still pass. If no other thread shares our fd
 * table (/proc/self/status "Threads: 1"; a vfork() child is a process of
 * its own), nobody can fork meanwhile: the copies cross the exec open and
 * named in RUDP_EXEC_SLABS, as before, and that costs nothing. Otherwise
 * a small holder is forked (raw clone(), so no pthread_atfork handler of
 * the program runs; detached by a double fork, signals blocked) that does
 * the keeper's serving and nothing else, then ends. Without /proc we
 * cannot tell: the copies as before.
 *
 * An exec that fails: the keeper reads its verdict (keeper.c) and leaves,
 * the holder too (a byte on its own close-on-exec pipe; EOF means the
 * exec happened), and the copies are closed. A new image that never asks
 * (newimage.c guessed wrong) leaves its server waiting PASS_WAIT_MS at most.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lifetime.h"

#include "base/poison.h"

#define PASS_MAGIC 0x7275647070617373ull /* "rudppass" */
#define PASS_WAIT_MS 30000
#define PASS_FDS (SHIM_SLABS_MAX + 1)
#define NAME_PREFIX "rudp-exec-"
#define NAME_HEX 32 /* 128 bits */

typedef struct pass_msg {
    uint64_t magic;
    int32_t nslabs;
    int32_t hand; /* 1: the last fd is the racing pair's end */
    char apps[SHIM_HAND_FDS * 12];
} pass_msg;

/* What to pass: set in the exec'ing image before the keeper is forked,
 * which inherits it; armed only there and in the keeper or holder. */
static struct {
    int armed;
    int lfd;   /* the listener */
    pid_t pid; /* the exec'ing pid: the only one served */
    uid_t uid;
    int fds[PASS_FDS];
    int n;
    pass_msg msg;
    int verdict; /* the exec'ing image's end of the holder's pipe, -1: none */
    pthread_t thread;
    int serving;
} kp = {.lfd = -1, .verdict = -1};

/* The new image: the pair's end the keeper passed, and the app fds. */
static int hand_fd = -1;
static char hand_apps[SHIM_HAND_FDS * 12];

static socklen_t name_of(struct sockaddr_un *a, const char *hex)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    /* abstract: sun_path[0] is 0, the name has no terminator */
    memcpy(a->sun_path + 1, NAME_PREFIX, sizeof NAME_PREFIX - 1);
    memcpy(a->sun_path + sizeof NAME_PREFIX, hex, NAME_HEX);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + sizeof NAME_PREFIX + NAME_HEX);
}

static void own_all(int on)
{
    if (kp.lfd >= 0)
        shim_own_fd(kp.lfd, on);
    for (int i = 0; i < kp.n; i++)
        shim_own_fd(kp.fds[i], on);
}

void shim_execpass_each_fd(void (*fn)(int *fd, void *ctx), void *ctx)
{
    if (!kp.armed)
        return;
    fn(&kp.lfd, ctx);
    for (int i = 0; i < kp.n; i++)
        fn(&kp.fds[i], ctx);
}

/* ---- the exec'ing image ---- */

void shim_execpass_prepare(shim_exec_env *x)
{
    x->pass_val[0] = 0;
    x->cloexec = 1;
    shim_slots_exec_copies(x);
    if (!x->nfds && x->hand < 0)
        return;
    unsigned char rnd[NAME_HEX / 2];
    if (getrandom(rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd)
        return; /* then the copies as before (shim_execpass_env) */
    char hex[NAME_HEX + 1];
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    int l = real_socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (l < 0)
        return;
    struct sockaddr_un a;
    socklen_t al = name_of(&a, hex);
    if (real_bind(l, (struct sockaddr *)&a, al) < 0 || real_listen(l, 4) < 0) {
        real_close(l);
        return;
    }
    kp.lfd = shim_fd_move_high(l);
    kp.pid = getpid();
    kp.uid = geteuid();
    kp.n = 0;
    memset(&kp.msg, 0, sizeof kp.msg);
    kp.msg.magic = PASS_MAGIC;
    for (int i = 0; i < x->nfds; i++)
        kp.fds[kp.n++] = x->fds[i];
    kp.msg.nslabs = x->nfds;
    if (x->hand >= 0) {
        kp.fds[kp.n++] = x->hand;
        kp.msg.hand = 1;
        memcpy(kp.msg.apps, x->hand_apps, sizeof kp.msg.apps);
    }
    own_all(1); /* the keeper keeps what it owns (keeper_main) */
    kp.armed = 1;
    snprintf(x->pass_val, sizeof x->pass_val, "%s=%s", SHIM_EXECPASS_VAR, hex);
}

/* Whether no other thread shares our fd table; -1: cannot tell. */
static int alone(void)
{
    char buf[4096];
    if (shim_read_text("/proc/self/status", buf, sizeof buf) < 0)
        return -1;
    const char *t = strstr(buf, "\nThreads:");
    if (!t)
        return -1;
    return atoi(t + sizeof "\nThreads:" - 1) == 1;
}

static void serve(int in_keeper);

static void holder_main(int verdict) __attribute__((noreturn));
static void holder_main(int verdict)
{
    sigset_t all;
    sigfillset(&all);
    syscall(SYS_rt_sigprocmask, SIG_BLOCK, &all, NULL, (size_t)(_NSIG / 8));
    syscall(SYS_setsid);
    char c;
    ssize_t r;
    do
        r = real_read(verdict, &c, 1);
    while (r < 0 && errno == EINTR);
    if (r == 1)
        syscall(SYS_exit_group, 0); /* the exec failed */
    /* Only what we serve stays open (the program's pipes and sockets
     * would be held otherwise). */
    int keep[PASS_FDS + 1];
    int n = 0;
    keep[n++] = kp.lfd;
    for (int i = 0; i < kp.n; i++)
        keep[n++] = kp.fds[i];
    for (int i = 1; i < n; i++) /* few: insertion sort */
        for (int j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
            int t = keep[j];
            keep[j] = keep[j - 1];
            keep[j - 1] = t;
        }
    unsigned lo = 0;
    for (int i = 0; i < n; i++) {
        if ((unsigned)keep[i] > lo)
            syscall(SYS_close_range, lo, (unsigned)keep[i] - 1, 0);
        lo = (unsigned)keep[i] + 1;
    }
    syscall(SYS_close_range, lo, ~0u, 0);
    serve(0);
    syscall(SYS_exit_group, 0);
    __builtin_unreachable();
}

/* Forks the holder (see the top); 0, or -1. */
static int fork_holder(void)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return -1;
    pid_t mid = (pid_t)syscall(SYS_clone, (unsigned long)SIGCHLD, 0, 0, 0, 0);
    if (mid == 0) {
        pid_t h = (pid_t)syscall(SYS_clone, (unsigned long)SIGCHLD, 0, 0, 0, 0);
        if (h == 0) {
            real_close(pfd[1]);
            holder_main(pfd[0]);
        }
        syscall(SYS_exit_group, h < 0 ? 1 : 0);
    }
    real_close(pfd[0]);
    int st = 0;
    if (mid > 0)
        while (syscall(SYS_wait4, mid, &st, 0, NULL) < 0 && errno == EINTR)
            ;
    if (mid < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        real_close(pfd[1]);
        return -1;
    }
    kp.verdict = pfd[1];
    return 0;
}

/* The exec'ing image lets go of what the keeper or holder serves. */
static void let_go(shim_exec_env *x)
{
    own_all(0);
    real_close(kp.lfd);
    kp.lfd = -1;
    for (int i = 0; i < x->nfds; i++)
        real_close(x->fds[i]);
    x->nfds = 0; /* x->hand stays: exechand.c closes it if the exec fails */
    kp.n = 0;
    kp.armed = 0;
}

char *const *shim_execpass_env(shim_exec_env *x, int keeper, char *const envp[])
{
    if (kp.armed && keeper <= 0) {
        int a = alone();
        if (a != 0 || fork_holder() < 0) {
            /* Nobody can fork meanwhile (or we cannot tell, or no holder):
             * the copies cross the exec open, as before. */
            own_all(0);
            real_close(kp.lfd);
            kp.lfd = -1;
            kp.n = 0;
            kp.armed = 0;
            x->pass_val[0] = 0;
        }
    }
    if (kp.armed) {
        let_go(x);
    } else {
        for (int i = 0; i < x->nfds; i++)
            real_fcntl(x->fds[i], F_SETFD, 0);
    }
    return shim_slots_exec_env(x, envp);
}

void shim_execpass_failed(shim_exec_env *x)
{
    (void)x;
    if (kp.verdict < 0)
        return;
    ssize_t w = real_write(kp.verdict, "x", 1);
    (void)w;
    real_close(kp.verdict);
    kp.verdict = -1;
}

/* ---- the keeper, or the holder ---- */

static int wait_in(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    long r;
    do
        r = syscall(SYS_ppoll, &p, 1, &ts, NULL, (size_t)(_NSIG / 8));
    while (r < 0 && errno == EINTR);
    return r == 1;
}

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* Serves the exec'ing pid once, PASS_WAIT_MS at most; then closes it all.
 * Raw calls only: the holder is a raw clone() of a threaded process. */
static void serve(int in_keeper)
{
    uint64_t until = now_ms() + PASS_WAIT_MS;
    for (uint64_t t = now_ms(); t < until; t = now_ms()) {
        if (!wait_in(kp.lfd, (int)(until - t)))
            continue;
        int c = real_accept4(kp.lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        struct ucred cr;
        socklen_t cl = sizeof cr;
        if (real_getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 || cl != sizeof cr ||
            cr.pid != kp.pid || cr.uid != kp.uid) {
            real_close(c);
            continue;
        }
        struct iovec iov = {.iov_base = &kp.msg, .iov_len = sizeof kp.msg};
        union {
            char buf[CMSG_SPACE(sizeof(int) * PASS_FDS)];
            struct cmsghdr align;
        } u;
        memset(&u, 0, sizeof u);
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                            .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)kp.n)};
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)kp.n);
        memcpy(CMSG_DATA(cm), kp.fds, sizeof(int) * (size_t)kp.n);
        ssize_t w;
        do
            w = real_sendmsg(c, &mh, MSG_NOSIGNAL);
        while (w < 0 && errno == EINTR);
        real_close(c);
        break;
    }
    if (in_keeper)
        own_all(0);
    real_close(kp.lfd);
    for (int i = 0; i < kp.n; i++)
        real_close(kp.fds[i]); /* the racing pair's end too: EOF tells the keeper */
    kp.lfd = -1;
    kp.n = 0;
    kp.armed = 0;
}

static void *serve_thread(void *arg)
{
    (void)arg;
    serve(1);
    return NULL;
}

void shim_execpass_keeper(pid_t from)
{
    /* Armed by the process that exec'd, not inherited by a forked child
     * of it (whose fds of these numbers are not ours). */
    if (!kp.armed || kp.pid != from) {
        kp.armed = 0;
        return;
    }
    kp.verdict = -1;
    if (shim_thread_start(&kp.thread, serve_thread, NULL) == 0)
        kp.serving = 1;
    else
        serve_thread(NULL); /* no thread: serve first, then the engines */
}

void shim_execpass_keeper_wait(void)
{
    if (kp.serving)
        pthread_join(kp.thread, NULL);
    kp.serving = 0;
}

/* ---- the new image ---- */

void shim_execpass_adopt(void)
{
    const char *v = getenv(SHIM_EXECPASS_VAR);
    if (!v)
        return;
    char hex[NAME_HEX + 1];
    int ok = strlen(v) == NAME_HEX && strspn(v, "0123456789abcdef") == NAME_HEX;
    if (ok)
        memcpy(hex, v, sizeof hex);
    unsetenv(SHIM_EXECPASS_VAR);
    if (!ok)
        return;
    int s = real_socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (s < 0)
        return;
    struct sockaddr_un a;
    socklen_t al = name_of(&a, hex);
    struct ucred cr;
    socklen_t cl = sizeof cr;
    if (real_connect(s, (struct sockaddr *)&a, al) < 0 ||
        real_getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 || cl != sizeof cr ||
        cr.pid != getpid() || cr.uid != geteuid() || !wait_in(s, PASS_WAIT_MS)) {
        real_close(s);
        return;
    }
    pass_msg m;
    struct iovec iov = {.iov_base = &m, .iov_len = sizeof m};
    union {
        char buf[CMSG_SPACE(sizeof(int) * PASS_FDS)];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = sizeof u.buf};
    ssize_t r;
    do
        r = real_recvmsg(s, &mh, MSG_CMSG_CLOEXEC);
    while (r < 0 && errno == EINTR);
    real_close(s);
    int fds[PASS_FDS];
    int n = r > 0 ? shim_cmsg_take_fds(&mh, fds, PASS_FDS) : 0;
    int good = r == (ssize_t)sizeof m && m.magic == PASS_MAGIC && m.nslabs >= 0 &&
               (m.hand == 0 || m.hand == 1) && m.nslabs + m.hand == n;
    for (int i = 0; i < n; i++) {
        if (good && i < m.nslabs && shim_slots_adopt_fd(fds[i]) == 0)
            continue;
        if (good && i == m.nslabs && m.hand) {
            m.apps[sizeof m.apps - 1] = '\0';
            memcpy(hand_apps, m.apps, sizeof hand_apps);
            hand_fd = fds[i];
            continue;
        }
        real_close(fds[i]);
    }
}

int shim_execpass_hand(const char **apps)
{
    int fd = hand_fd;
    hand_fd = -1;
    *apps = hand_apps;
    return fd;
}
