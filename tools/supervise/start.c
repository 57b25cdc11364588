/* Stage 1: the filter, the fork, the exec; the signals meant for the
 * program (supervise.h). */
#include <errno.h>
#include <link.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "filter.h"
#include "supervise.h"

/* The filter (filter.c) for the architecture this binary was built for:
 * the calls of another ABI (i386 via int 0x80, x32; AArch32) run
 * untouched, a gap listed in docs/reach.md. */
int install_filter(void)
{
    static struct sock_filter f[FILTER_MAX];
    const struct filter_abi *abi = filter_abi_native();
    int n = abi ? filter_assemble(abi, f, FILTER_MAX) : -ENOSYS;
    if (n < 0) {
        errno = -n;
        return -1;
    }
    struct sock_fprog prog = {.len = (unsigned short)n, .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -1;
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                        &prog);
}

int send_fd(int sock, int fd)
{
    char c = 0;
    struct iovec iov = {.iov_base = &c, .iov_len = 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                       .msg_controllen = sizeof u.buf};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    return sendmsg(sock, &m, 0) == 1 ? 0 : -1;
}

int recv_fd(int sock)
{
    char c;
    struct iovec iov = {.iov_base = &c, .iov_len = 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                       .msg_controllen = sizeof u.buf};
    if (recvmsg(sock, &m, MSG_CMSG_CLOEXEC) != 1)
        return -1;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    if (!cm || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(sizeof(int)))
        return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(cm), sizeof fd);
    return fd;
}

int find_shim(char *out, size_t len)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash)
        return -1;
    *slash = 0;
    /* the build tree's, make install's, the Debian package's (make deb) */
    static const char *const rel[] = {"/../librudp_shim.so", "/../lib/librudp_shim.so",
                                      "/../lib/rudp-shim/librudp_shim.so"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        if (strlen(exe) + strlen(rel[i]) >= len)
            continue;
        strcpy(out, exe);
        strcat(out, rel[i]);
        if (access(out, R_OK) == 0)
            return 0;
    }
    return -1;
}

/* The program for forward(): a signal handler reaches nothing else. The
 * caller, its parent, has its pid (no other process can take the number
 * before the caller reaps it); the serving process, which is not its
 * parent, a pidfd (the number may be another process's once the program
 * is gone). */
static volatile pid_t forward_to;
static volatile int forward_pidfd = -1;

static void forward(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    /* Only what a process sent (kill, sigqueue, tgkill). The kernel's own
     * (a terminal's SIGINT, SIGQUIT, SIGHUP or SIGWINCH, which reach the
     * program by its process group already) and our own timers' or
     * asynchronous I/O's stay ours. */
    if (si && si->si_code != SI_USER && si->si_code != SI_QUEUE && si->si_code != SI_TKILL)
        return;
    int saved = errno;
    if (forward_pidfd >= 0)
        syscall(SYS_pidfd_send_signal, forward_pidfd, sig, NULL, 0);
    else if (forward_to > 0)
        kill(forward_to, sig);
    errno = saved;
}

/* A signal meant for the program, sent to the supervisor by pid
 * (SIGTERM from a service manager, SIGHUP, SIGINT, SIGUSR1, an RT
 * signal...), goes on to it: the supervisor must outlive it, since it
 * holds the engine, and a terminating signal's default would end it and
 * orphan the program (review 7). SIGPIPE and the resource limits'
 * SIGXCPU/SIGXFSZ are the supervisor's own (a --debug line to a closed
 * pipe, a qlog past its size): ignored, the call gets its errno. What the
 * terminal sends (SIGINT, SIGQUIT...) reaches the program by its process
 * group already: not forwarded (forward()). */
static const int fwd[] = {SIGTERM, SIGHUP, SIGUSR1, SIGUSR2,   SIGWINCH,  SIGCONT, SIGALRM,
                          SIGIO,   SIGPWR, SIGPROF, SIGVTALRM, SIGSTKFLT, SIGINT,  SIGQUIT};
static const int ign[] = {SIGPIPE, SIGXCPU, SIGXFSZ};

static void fwd_set(sigset_t *set)
{
    sigemptyset(set);
    for (size_t i = 0; i < sizeof fwd / sizeof fwd[0]; i++)
        sigaddset(set, fwd[i]);
    for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
        sigaddset(set, sig);
}

/* Stage 1 blocks them all until stage 2 has its handlers: a blocked
 * signal stays pending across the exec, so none sent meanwhile is lost
 * or ends the supervisor early. The program gets the caller's mask. */
static void signals_block(sigset_t *old)
{
    sigset_t set;
    fwd_set(&set);
    for (size_t i = 0; i < sizeof ign / sizeof ign[0]; i++)
        sigaddset(&set, ign[i]);
    sigprocmask(SIG_BLOCK, &set, old);
}

/* The forwarded signals to forward() (SA_RESTART), those of ign
 * ignored, the mask lifted. */
static void signals_forward(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = forward;
    sa.sa_flags = SA_RESTART | SA_SIGINFO;
    sigset_t set;
    fwd_set(&set);
    for (int sig = 1; sig <= SIGRTMAX; sig++)
        if (sigismember(&set, sig) == 1)
            sigaction(sig, &sa, NULL); /* glibc's own RT signals refuse: fine */
    for (size_t i = 0; i < sizeof ign / sizeof ign[0]; i++)
        signal(ign[i], SIG_IGN);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

void signals_setup(pid_t child)
{
    forward_to = child;
    signals_forward();
}

void signals_serving(pid_t prog)
{
    /* The pid ss and rudp-stat show for the program's sockets is ours:
     * a service script's `kill -TERM` of it must end the program as the
     * program's own pid would (issue 47), not leave it serving. Without a
     * pidfd (the program gone already) nothing is forwarded. */
    forward_pidfd = (int)syscall(SYS_pidfd_open, prog, 0);
    if (forward_pidfd >= 0)
        fcntl(forward_pidfd, F_SETFD, FD_CLOEXEC);
    signals_forward();
}

/* A thread that may wait (a worker in the shim's connect wait) blocks the
 * forwarded signals: their handler runs in the notification loop's
 * thread, never interrupting a wait with an EINTR the program would then
 * see for a signal it ignores (review 6). */
void signals_block_thread(void)
{
    sigset_t set;
    fwd_set(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* dl_iterate_phdr: a sanitizer runtime this program is linked with (ASan,
 * TSan) into data (PATH_MAX bytes); 1 stops at it. */
static int san_runtime(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    const char *base = strrchr(info->dlpi_name, '/');
    base = base ? base + 1 : info->dlpi_name;
    if (strncmp(base, "libasan.so", 10) != 0 && strncmp(base, "libtsan.so", 10) != 0)
        return 0;
    snprintf(data, PATH_MAX, "%s", info->dlpi_name);
    return 1;
}

/* Stage 2's LD_PRELOAD: the shim, behind this program's own sanitizer
 * runtime in a sanitizer build (make asan: ASan refuses to start when a
 * preloaded library comes before it), unless shim names it already (as
 * rudp-run's --shim does). */
static void preload_set(const char *shim)
{
    char rt[PATH_MAX] = "", both[2 * PATH_MAX + 2];
    dl_iterate_phdr(san_runtime, rt);
    if (rt[0] && !strstr(shim, rt)) {
        snprintf(both, sizeof both, "%s:%s", rt, shim);
        shim = both;
    }
    setenv("LD_PRELOAD", shim, 1);
}

/* The serving process, stage 2: this binary again with the shim, given
 * the listener lfd and the program's pid (for rudp-stat to find it). It
 * is not the program's parent: the caller is, so that the caller returns
 * the program's status when the program exits, while what it left (its
 * children, a daemon's, and its connections' last bytes) stays served
 * (review 8). Its stdin and stdout go to /dev/null: it must not keep a
 * pipe of the caller's open (`x=$(rudp-run prog)` returns when prog and
 * what holds the pipe are done, as without us); stderr stays, for its
 * warnings and RUDP_STATS. Returns its pid, or -1. */
static pid_t serve_start(const char *shim, int pass, int lfd, pid_t prog)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        close(null);
    }
    /* The listener survives the exec; the rest of the environment is the
     * user's, the shim's settings (RUDP_*) included: RUDP_FALLBACK=tcp's
     * kernel TCP, should it win, is relayed by the engine between the
     * bridge, at the program's fd, and the program's own socket
     * (shim/engine/fallback.c, as for a child with an fd table of its
     * own). The shim's records follow the program's files, not our
     * copies' numbers: serve() registers as the shim's remote front end
     * (shim/state/front.h). */
    fcntl(lfd, F_SETFD, 0);
    preload_set(shim);
    char a_fd[16], a_pid[16];
    snprintf(a_fd, sizeof a_fd, "%d", lfd);
    snprintf(a_pid, sizeof a_pid, "%d", (int)prog);
    char *args[] = {(char *)me, "--serve", a_fd, a_pid,
                    pass == 2 ? "debug" : pass ? "pass" : "redirect", NULL};
    /* By its path, not /proc/self/exe: ss and ps then name it rudp-supervise */
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = 0;
        execv(self, args);
    }
    execv("/proc/self/exe", args);
    warn("cannot exec itself: %s", strerror(errno));
    _exit(125);
}

/* A wait status as an exit status: 128+N for a signal N, as a shell says. */
static int status_of(int st)
{
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

/* The caller, once both run: the program's parent. Waits for the program
 * and returns its status, forwarding the signals meant for it. Should the
 * serving process end first otherwise than by finding every task gone
 * (status 0, which its listener says before the program's exit reaches
 * us: then the program is exiting), killed or failed, the program goes
 * too (SIGKILL): it never outlives its engine while we can see it (review
 * 7); its status is then the serving process's. */
static int wait_program(pid_t prog, pid_t server)
{
    signals_setup(prog);
    for (;;) {
        int st;
        pid_t w = waitpid(-1, &st, 0);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            warn("waitpid: %s", strerror(errno));
            return 127;
        }
        if (w == prog)
            return status_of(st);
        if (w != server)
            continue;
        int pst;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            continue; /* every task gone: the program's exit comes next */
        if (waitpid(prog, &pst, WNOHANG) == prog) /* it ended meanwhile: its own status */
            return status_of(pst);
        warn("the serving process ended (status %d) before the program: the program is "
             "stopped", status_of(st));
        kill(prog, SIGKILL);
        while (waitpid(prog, &pst, 0) < 0 && errno == EINTR)
            ;
        return status_of(st);
    }
}

int start(const char *shim, int pass, char **prog)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        warn("socketpair: %s", strerror(errno));
        return 127;
    }
    sigset_t mask;
    signals_block(&mask);
    pid_t pid = fork();
    if (pid < 0) {
        warn("fork: %s", strerror(errno));
        return 127;
    }
    if (pid == 0) {
        /* The program never outlives its parent, which watches the
         * engine (review 7): a caller gone by SIGKILL takes it along
         * rather than leaving it unwatched. Checked after: the parent may
         * be gone already. */
        pid_t parent = getppid();
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != parent)
            _exit(127);
        sigprocmask(SIG_SETMASK, &mask, NULL);
        close(sv[0]);
        int lfd = install_filter();
        if (lfd < 0) {
            warn("seccomp user notification unavailable: %s", strerror(errno));
            _exit(127);
        }
        if (send_fd(sv[1], lfd) < 0)
            _exit(127);
        close(lfd);
        /* The serving process copies our fds (pidfd_getfd) and writes our
         * memory: ptrace access, which Yama's ptrace_scope=1 (Ubuntu's
         * default) grants only to an ancestor, and it is our sibling. It,
         * and only it (not our parent, whose descendants our own children
         * will be), is named as our tracer once our parent says its pid:
         * the relation is the thread group's and exec keeps it
         * (yama_lsm.c). EINVAL without Yama: nothing to do. Not for the
         * processes the program makes later: under ptrace_scope=1 their
         * calls are left to the kernel (docs/reach.md). ptrace_scope=2 and
         * 3 refuse it all the same: --probe says so before the program
         * starts. read and prctl pass the filter. */
        pid_t server;
        if (read(sv[1], &server, sizeof server) == (ssize_t)sizeof server && server > 0)
            prctl(PR_SET_PTRACER, server, 0, 0, 0);
        close(sv[1]);
        execvp(prog[0], prog);
        warn("cannot run %s", prog[0]);
        _exit(127);
    }
    close(sv[1]);
    int lfd = recv_fd(sv[0]);
    if (lfd < 0) {
        close(sv[0]);
        int st;
        waitpid(pid, &st, 0);
        return 127;
    }
    /* Forked with the forwarded signals still blocked: the serving
     * process sets its own (serve.c) before it takes any. The program
     * waits for its pid before the exec (its tracer, for Yama). */
    pid_t server = serve_start(shim, pass, lfd, pid);
    close(lfd);
    if (server > 0 && write(sv[0], &server, sizeof server) != (ssize_t)sizeof server)
        warn("cannot tell the program the serving process's pid: %s", strerror(errno));
    close(sv[0]);
    if (server < 0) {
        warn("fork: %s", strerror(errno));
        kill(pid, SIGKILL);
        return 127;
    }
    return wait_program(pid, server);
}
