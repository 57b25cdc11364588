/*
 * rudp-supervise: runs a program the preload cannot reach (statically
 * linked, Go) so that its TCP connect() goes over rudp, the engine running
 * in this process (issue 35; docs/reach.md says what works and what not).
 *
 *   rudp-supervise [--shim PATH] [--pass | --debug] [--] PROGRAM [ARG...]
 *
 * Two stages in one file:
 *  1. Without the shim: fork; the child sets PR_SET_NO_NEW_PRIVS, installs a
 *     seccomp filter that reports connect() to a user-notification listener
 *     (SECCOMP_FILTER_FLAG_NEW_LISTENER), hands the listener to the parent
 *     (SCM_RIGHTS) and execs PROGRAM. The parent then execs itself again
 *     with LD_PRELOAD=librudp_shim.so ("--serve FD PID"): from there on
 *     every socket call of this process is the shim's, exactly as in a
 *     preloaded program, so the connect path is the shim's own code and
 *     needs no second front end. The fork comes before the shim is loaded,
 *     so the program's image never holds a shim or its threads.
 *  2. With the shim: each notification is answered in a thread of its own
 *     (a blocking connect waits for the handshake). The address is read
 *     from the program (process_vm_readv, then SECCOMP_IOCTL_NOTIF_ID_VALID
 *     against a reused pid), the program's socket copied here
 *     (pidfd_getfd), and connect() called on the copy: under the shim the
 *     copy's fd number becomes the application end of a bridge; that end is
 *     put at the program's fd number (SECCOMP_IOCTL_NOTIF_ADDFD with
 *     SECCOMP_ADDFD_FLAG_SETFD) and the notification answered with
 *     connect's result. Anything not a TCP socket continues
 *     (SECCOMP_USER_NOTIF_FLAG_CONTINUE): safe here, as the filter is no
 *     security boundary, only a way to find the calls to redirect.
 *
 * --pass continues every call unchanged (the filter's own cost, and a
 * check that a program runs as without the supervisor). Exits with the
 * program's status (128+N for a signal N). SIGTERM, SIGHUP and the like
 * sent to the supervisor go on to the program; SIGINT and SIGQUIT are
 * ignored (the terminal sends them to the program too).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdarg.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

static const char *me = "rudp-supervise";

__attribute__((format(printf, 1, 2))) static void warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", me);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

/* ---- stage 1: the filter, the fork, the exec ---- */

/* connect(), bind(), listen(), accept(), accept4(), getsockname(),
 * getpeername() and get/setsockopt() at the IP, TCP and socket levels on
 * x86_64 are reported; everything else, and other ABIs (i386
 * via int 0x80, x32), run untouched: a gap listed in docs/reach.md. */
static int install_filter(void)
{
    /* Built here so the jumps follow the list: each reported call jumps to
     * NOTIF, the option calls to LEVEL first. */
    static const uint32_t calls[] = {__NR_connect, __NR_getsockname, __NR_getpeername,
                                     __NR_bind, __NR_listen, __NR_accept, __NR_accept4};
    enum { K = sizeof calls / sizeof calls[0], LEVEL = 7 + K, NOTIF = 13 + K };
    struct sock_filter f[NOTIF + 1];
    unsigned i = 0;
    f[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
    f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    f[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    for (unsigned k = 0; k < K; k++, i++)
        f[i] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, calls[k],
                                            (uint8_t)(NOTIF - i - 1), 0);
    f[i] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_getsockopt,
                                        (uint8_t)(LEVEL - i - 1), 0);
    i++;
    f[i] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_setsockopt,
                                        (uint8_t)(LEVEL - i - 1), 0);
    i++;
    f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    /* LEVEL: socket options only at the levels the shim emulates (the low
     * word of args[1], little-endian) */
    f[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1]));
    static const uint32_t levels[] = {SOL_SOCKET, IPPROTO_TCP, IPPROTO_IP, IPPROTO_IPV6};
    for (unsigned k = 0; k < 4; k++, i++)
        f[i] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, levels[k],
                                            (uint8_t)(NOTIF - i - 1), 0);
    f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
    struct sock_fprog prog = {.len = (unsigned short)i, .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -1;
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                        &prog);
}

static int send_fd(int sock, int fd)
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

static int recv_fd(int sock)
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

/* The shim beside this binary: build/bin/ -> build/, PREFIX/bin -> PREFIX/lib. */
static int find_shim(char *out, size_t len)
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
    static const char *const rel[] = {"/../librudp_shim.so", "/../lib/librudp_shim.so"};
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

/* The program's pid for forward(): a signal handler reaches nothing else. */
static volatile pid_t forward_to;

static void forward(int sig)
{
    if (forward_to > 0)
        kill(forward_to, sig);
}

/* A signal meant for the program, sent to the supervisor by pid
 * (SIGTERM from a service manager, SIGHUP...), goes on to it: the
 * supervisor must outlive it, since it holds the engine. The terminal's
 * SIGINT and SIGQUIT reach the program by its process group already: here
 * they are ignored for the same reason. */
static const int fwd[] = {SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT};

/* Stage 1 blocks them all until stage 2 has its handlers: a blocked
 * signal stays pending across the exec, so none sent meanwhile is lost
 * or ends the supervisor early. The program gets the caller's mask. */
static void signals_block(sigset_t *old)
{
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof fwd / sizeof fwd[0]; i++)
        sigaddset(&set, fwd[i]);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigprocmask(SIG_BLOCK, &set, old);
}

static void signals_setup(pid_t child)
{
    forward_to = child;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward;
    sa.sa_flags = SA_RESTART;
    for (size_t i = 0; i < sizeof fwd / sizeof fwd[0]; i++)
        sigaction(fwd[i], &sa, NULL);
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

static int start(const char *shim, int pass, char **prog)
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
        close(sv[1]);
        execvp(prog[0], prog);
        warn("cannot run %s", prog[0]);
        _exit(127);
    }
    close(sv[1]);
    int lfd = recv_fd(sv[0]);
    close(sv[0]);
    if (lfd < 0) {
        int st;
        waitpid(pid, &st, 0);
        return 127;
    }
    /* The listener survives the exec; the rest of the environment is the
     * user's, the shim's settings (RUDP_*) included. A fallback to kernel
     * TCP would swap this process's fd, not the program's: off. */
    fcntl(lfd, F_SETFD, 0);
    setenv("LD_PRELOAD", shim, 1);
    setenv("RUDP_FALLBACK", "none", 1);
    char a_fd[16], a_pid[16];
    snprintf(a_fd, sizeof a_fd, "%d", lfd);
    snprintf(a_pid, sizeof a_pid, "%d", (int)pid);
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
    kill(pid, SIGKILL);
    return 127;
}

/* ---- stage 2: answering the notifications, with the shim loaded ---- */

/* The bridges placed lately, by inode. A connect() interrupted by a signal
 * after its NOTIF_ADDFD (Go preempts its threads with SIGURG, SA_RESTART)
 * is made again by the kernel on the bridge: it must then go on with the
 * same connection, as TCP's restarted connect does, not make a second.
 * answered: connect() returned once; a later one says EISCONN. A ring:
 * a restart follows at once, and sockfs inodes are not reused soon. */
#define PLACED_RING 4096
struct placed {
    uint64_t ino;     /* the bridge's */
    uint64_t tcp_ino; /* the program's socket it replaces */
    int held;         /* the bridge, when the call was interrupted before
                       * NOTIF_ADDFD: put in place at the restart; or -1 */
    int answered;
};

struct sup {
    int lfd;
    int pass;
    int debug; /* --debug: every notification and its answer on stderr */
    struct seccomp_notif_sizes sizes;
    pthread_mutex_t mu;
    struct placed placed[PLACED_RING];
    unsigned placed_next;
};

static struct placed *placed_find(struct sup *s, uint64_t ino)
{
    for (unsigned i = 0; i < PLACED_RING; i++)
        if (s->placed[i].ino == ino)
            return &s->placed[i];
    return NULL;
}

static void placed_add(struct sup *s, uint64_t ino, uint64_t tcp_ino, int held)
{
    pthread_mutex_lock(&s->mu);
    struct placed *p = &s->placed[s->placed_next];
    if (p->held >= 0 && p->ino)
        close(p->held); /* its program never came back for it */
    *p = (struct placed){.ino = ino, .tcp_ino = tcp_ino, .held = held};
    s->placed_next = (s->placed_next + 1) % PLACED_RING;
    pthread_mutex_unlock(&s->mu);
}

/* The bridge held for the program's socket tcp_ino, taken (-1: none). */
static int placed_take_held(struct sup *s, uint64_t tcp_ino)
{
    int fd = -1;
    pthread_mutex_lock(&s->mu);
    for (unsigned i = 0; i < PLACED_RING; i++)
        if (s->placed[i].ino && s->placed[i].tcp_ino == tcp_ino && s->placed[i].held >= 0) {
            fd = s->placed[i].held;
            s->placed[i].held = -1;
            break;
        }
    pthread_mutex_unlock(&s->mu);
    return fd;
}

/* Returns the state noted for ino (-1: not ours) and, with mark, notes
 * that connect() has now returned. */
static int placed_state(struct sup *s, uint64_t ino, int mark)
{
    pthread_mutex_lock(&s->mu);
    struct placed *p = placed_find(s, ino);
    int r = p ? p->answered : -1;
    if (p && mark)
        p->answered = 1;
    pthread_mutex_unlock(&s->mu);
    return r;
}

struct job {
    struct sup *sup;
    struct seccomp_notif *req; /* sizes.seccomp_notif bytes */
};

static int notif_valid(int lfd, uint64_t id)
{
    return ioctl(lfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

/* Answers notification id: CONTINUE when cont, else val or -err.
 * Returns 0, or -1 when the answer went nowhere (the call was interrupted
 * by a signal, or the thread is gone: ENOENT). */
static int respond(struct sup *s, uint64_t id, int cont, int64_t val, int err)
{
    struct seccomp_notif_resp *r = calloc(1, s->sizes.seccomp_notif_resp);
    if (!r)
        return -1; /* the program stays blocked until it is killed */
    if (s->debug)
        fprintf(stderr, "%s: %016llx: %s\n", me, (unsigned long long)id,
                cont ? "continue" : err ? strerror(err) : "0");
    r->id = id;
    r->flags = cont ? SECCOMP_USER_NOTIF_FLAG_CONTINUE : 0;
    r->val = val;
    r->error = -err;
    int ok = ioctl(s->lfd, SECCOMP_IOCTL_NOTIF_SEND, r);
    if (ok < 0 && errno != ENOENT)
        warn("NOTIF_SEND: %s", strerror(errno));
    free(r);
    return ok < 0 ? -1 : 0;
}

/* A pidfd for the calling thread (tid), whose fd table pidfd_getfd reads.
 * A thread's pidfd (PIDFD_THREAD, 6.9+) for any thread; before 6.9 (the
 * flag refused: EINVAL) a plain pidfd, which only a thread-group leader
 * has. Without one, the call would be continued: kernel TCP (Go's threads
 * are mostly not the leader; pidfd_open(tid, 0) says ENOENT for them). */
static int pidfd_for(pid_t tid)
{
    int p = (int)syscall(SYS_pidfd_open, tid, PIDFD_THREAD);
    if (p < 0 && errno == EINVAL)
        p = (int)syscall(SYS_pidfd_open, tid, 0);
    return p;
}

/* A copy of the calling thread's fd (-1: none), its pidfd in *pidfd (or
 * -1), and the copy's inode in *ino; taken only while the notification is
 * valid (the thread, not a new process with its pid). */
static int take_fd(struct sup *s, const struct seccomp_notif *req, int fd, int *pidfd,
                   uint64_t *ino)
{
    struct stat st;
    *pidfd = pidfd_for((pid_t)req->pid);
    if (*pidfd < 0 || !notif_valid(s->lfd, req->id))
        return -1;
    int copy = (int)syscall(SYS_pidfd_getfd, *pidfd, fd, 0);
    if (copy >= 0 && fstat(copy, &st) < 0) {
        close(copy);
        return -1;
    }
    if (copy >= 0)
        *ino = (uint64_t)st.st_ino;
    return copy;
}

/* The program's fd flags: its O_CLOEXEC is in /proc's fdinfo ("flags:",
 * octal), which pidfd_getfd does not carry over. */
static int target_cloexec(pid_t tid, int fd)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/fdinfo/%d", (int)tid, fd);
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0)
        return 0;
    ssize_t n = read(f, buf, sizeof buf - 1);
    close(f);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    char *p = strstr(buf, "flags:");
    return p && (strtoul(p + 6, NULL, 8) & O_CLOEXEC);
}

static int sock_int(int fd, int opt)
{
    int v = -1;
    socklen_t l = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, opt, &v, &l) < 0)
        return -1;
    return v;
}

static int is_tcp(int fd)
{
    int d = sock_int(fd, SO_DOMAIN);
    return (d == AF_INET || d == AF_INET6) && sock_int(fd, SO_TYPE) == SOCK_STREAM &&
           sock_int(fd, SO_PROTOCOL) == IPPROTO_TCP;
}

/* Puts src at the program's fd number (its close-on-exec kept). Returns
 * 0, or -1 (ENOENT: the call was interrupted or the thread is gone). */
static int add_fd(struct sup *s, const struct seccomp_notif *req, int src, int fd)
{
    struct seccomp_notif_addfd add = {
        .id = req->id,
        .flags = SECCOMP_ADDFD_FLAG_SETFD,
        .srcfd = (uint32_t)src,
        .newfd = (uint32_t)fd,
        .newfd_flags = target_cloexec((pid_t)req->pid, fd) ? O_CLOEXEC : 0,
    };
    if (ioctl(s->lfd, SECCOMP_IOCTL_NOTIF_ADDFD, &add) >= 0)
        return 0;
    if (errno != ENOENT)
        warn("NOTIF_ADDFD: %s", strerror(errno));
    return -1;
}

/* connect() again on a bridge we placed (copy): Linux's answers
 * (__inet_stream_connect). Established: 0 the first time connect()
 * returns (a restart), EISCONN after; connecting: EALREADY when
 * non-blocking, else wait for the handshake; failed: its error. A bridge
 * is writable once the engine drained the filler, i.e. established
 * (shim/interpose/connect.c). Returns 0 or the errno. */
static int connect_again(struct sup *s, uint64_t id, int copy, uint64_t ino)
{
    int nb = (fcntl(copy, F_GETFL) & O_NONBLOCK) != 0;
    for (;;) {
        struct pollfd p = {.fd = copy, .events = POLLOUT};
        if (poll(&p, 1, nb ? 0 : 1000) < 0 && errno != EINTR)
            return errno;
        if (p.revents & (POLLERR | POLLHUP)) {
            int e = sock_int(copy, SO_ERROR); /* the shim's, for a bridge */
            return e > 0 ? e : ECONNRESET;
        }
        if (p.revents & POLLOUT)
            return placed_state(s, ino, 1) == 1 ? EISCONN : 0;
        if (nb)
            return EALREADY;
        if (!notif_valid(s->lfd, id))
            return EINTR; /* gone: the answer goes nowhere */
    }
}

/* connect(fd, addr, len) of the program, answered as the shim answers it. */
static void on_connect(struct sup *s, struct seccomp_notif *req)
{
    pid_t tid = (pid_t)req->pid;
    int fd = (int)req->data.args[0];
    uint64_t uaddr = req->data.args[1];
    socklen_t len = (socklen_t)req->data.args[2];
    struct sockaddr_storage ss;
    int pidfd = -1, copy = -1;

    /* What the kernel would refuse, the kernel refuses. */
    if (s->pass || (int)req->data.args[2] < 0 || len > sizeof ss || len < sizeof(sa_family_t))
        goto cont;
    struct iovec local = {.iov_base = &ss, .iov_len = len};
    struct iovec remote = {.iov_base = (void *)(uintptr_t)uaddr, .iov_len = len};
    if (process_vm_readv(tid, &local, 1, &remote, 1, 0) != (ssize_t)len)
        goto cont; /* EFAULT: the kernel's answer */
    pidfd = pidfd_for(tid);
    if (pidfd < 0 || !notif_valid(s->lfd, req->id))
        goto cont;
    copy = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
    struct stat before, after;
    if (copy < 0 || fstat(copy, &before) < 0)
        goto cont; /* EBADF: the kernel's */
    int held = placed_take_held(s, (uint64_t)before.st_ino);
    if (held >= 0) {
        /* restarted before its bridge was in place: put it there now */
        uint64_t tcp_ino = (uint64_t)before.st_ino;
        close(copy);
        copy = held;
        if (fstat(copy, &before) < 0 || add_fd(s, req, copy, fd) < 0) {
            placed_add(s, (uint64_t)before.st_ino, tcp_ino, copy); /* again later */
            close(pidfd);
            return;
        }
    }
    if (placed_state(s, before.st_ino, 0) >= 0) {
        int e = connect_again(s, req->id, copy, before.st_ino);
        close(copy);
        close(pidfd);
        respond(s, req->id, 0, 0, e);
        return;
    }
    if (!is_tcp(copy))
        goto cont; /* ENOTSOCK, unix and UDP sockets: the kernel's */
    after.st_ino = before.st_ino;
    int r = connect(copy, (struct sockaddr *)&ss, len);
    int err = r < 0 ? errno : 0;
    /* The shim put a bridge at copy (its number, here) unless it left the
     * connect to the kernel (an address not redirected): the kernel's
     * result then, on the program's own socket (copy shares its file).
     * Told by the inode: the shim's getsockopt says TCP on a bridge. */
    if ((r == 0 || err == EINPROGRESS) && fstat(copy, &after) == 0 &&
        after.st_ino != before.st_ino) {
        if (add_fd(s, req, copy, fd) < 0) {
            /* interrupted (a restart comes with the same socket) or gone */
            placed_add(s, (uint64_t)after.st_ino, (uint64_t)before.st_ino, copy);
            close(pidfd);
            return;
        }
        placed_add(s, (uint64_t)after.st_ino, (uint64_t)before.st_ino, -1);
    }
    /* Our copy goes: the program's close is then the last one, which the
     * engine sees as the application's close. */
    close(copy);
    close(pidfd);
    if (respond(s, req->id, 0, 0, err) == 0 && err == 0 && after.st_ino != before.st_ino)
        placed_state(s, (uint64_t)after.st_ino, 1);
    return;
cont:
    if (copy >= 0)
        close(copy);
    if (pidfd >= 0)
        close(pidfd);
    respond(s, req->id, 1, 0, 0);
}

/* Writes n bytes of buf at uaddr in the program and len (the kernel's
 * full length) at ulen, as getsockname/getsockopt do. 0 or EFAULT. */
static int write_back(pid_t tid, const void *buf, size_t n, uint64_t uaddr, socklen_t len,
                      uint64_t ulen)
{
    struct iovec l2[2] = {{.iov_base = (void *)buf, .iov_len = n},
                          {.iov_base = &len, .iov_len = sizeof len}};
    struct iovec r2[2] = {{.iov_base = (void *)(uintptr_t)uaddr, .iov_len = n},
                          {.iov_base = (void *)(uintptr_t)ulen, .iov_len = sizeof len}};
    if ((n && process_vm_writev(tid, &l2[0], 1, &r2[0], 1, 0) != (ssize_t)n) ||
        process_vm_writev(tid, &l2[1], 1, &r2[1], 1, 0) != sizeof len)
        return EFAULT;
    return 0;
}

/* Closes what a handler took and answers: CONTINUE when cont is 1, -err
 * when 0, nothing when -1. */
static void finish(struct sup *s, const struct seccomp_notif *req, int copy, int pidfd, int cont,
                   int err)
{
    if (copy >= 0)
        close(copy);
    if (pidfd >= 0)
        close(pidfd);
    if (cont >= 0) /* -1: answered already (NOTIF_ADDFD with FLAG_SEND) */
        respond(s, req->id, cont, 0, err);
}

/* getsockname/getpeername(fd, addr, addrlen) on a bridge we placed: the
 * shim's answer (the TCP addresses; ENOTCONN while connecting, which Go's
 * connect loop relies on after a spurious wake-up), written into the
 * program as the kernel writes it (the address cut to *addrlen, the full
 * length back in *addrlen). Anything else continues. */
static void on_name(struct sup *s, struct seccomp_notif *req)
{
    pid_t tid = (pid_t)req->pid;
    int fd = (int)req->data.args[0];
    uint64_t uaddr = req->data.args[1], ulen = req->data.args[2];
    int pidfd;
    uint64_t ino = 0;
    int copy = take_fd(s, req, fd, &pidfd, &ino);
    socklen_t ulen_v;
    struct iovec l1 = {.iov_base = &ulen_v, .iov_len = sizeof ulen_v};
    struct iovec r1 = {.iov_base = (void *)(uintptr_t)ulen, .iov_len = sizeof ulen_v};
    if (copy < 0 || placed_state(s, ino, 0) < 0 ||
        process_vm_readv(tid, &l1, 1, &r1, 1, 0) != sizeof ulen_v || (int)ulen_v < 0 ||
        !notif_valid(s->lfd, req->id))
        goto cont;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int r = req->data.nr == __NR_getpeername ? getpeername(copy, (struct sockaddr *)&ss, &len)
                                              : getsockname(copy, (struct sockaddr *)&ss, &len);
    int err = r < 0 ? errno : 0;
    if (!err)
        err = write_back(tid, &ss, len < ulen_v ? len : ulen_v, uaddr, len, ulen);
    finish(s, req, copy, pidfd, 0, err);
    return;
cont:
    finish(s, req, copy, pidfd, 1, 0);
}

/* getsockopt/setsockopt(fd, level, name, optval, optlen) on a bridge we
 * placed: the shim's answer (TCP's options and errors: SO_ERROR after a
 * refused connect, TCP_NODELAY, TCP_INFO...), the values copied in and out
 * of the program as the kernel copies them. Anything else continues. */
#define OPT_MAX 512
static void on_sockopt(struct sup *s, struct seccomp_notif *req)
{
    pid_t tid = (pid_t)req->pid;
    int fd = (int)req->data.args[0], level = (int)req->data.args[1];
    int name = (int)req->data.args[2], set = req->data.nr == __NR_setsockopt;
    uint64_t uval = req->data.args[3], ulen = req->data.args[4];
    int pidfd;
    uint64_t ino = 0;
    int copy = take_fd(s, req, fd, &pidfd, &ino);
    unsigned char val[OPT_MAX];
    socklen_t len = 0;
    if (copy < 0 || placed_state(s, ino, 0) < 0)
        goto cont;
    if (set) {
        len = (socklen_t)ulen;
        if ((int)len < 0 || len > sizeof val)
            goto cont;
    } else {
        struct iovec l1 = {.iov_base = &len, .iov_len = sizeof len};
        struct iovec r1 = {.iov_base = (void *)(uintptr_t)ulen, .iov_len = sizeof len};
        if (process_vm_readv(tid, &l1, 1, &r1, 1, 0) != sizeof len || (int)len < 0)
            goto cont;
        if (len > sizeof val)
            len = sizeof val;
    }
    struct iovec lv = {.iov_base = val, .iov_len = len};
    struct iovec rv = {.iov_base = (void *)(uintptr_t)uval, .iov_len = len};
    if (len && process_vm_readv(tid, &lv, 1, &rv, 1, 0) != (ssize_t)len)
        goto cont; /* EFAULT: the kernel's */
    if (!notif_valid(s->lfd, req->id))
        goto cont;
    int r = set ? setsockopt(copy, level, name, val, len) : getsockopt(copy, level, name, val, &len);
    int err = r < 0 ? errno : 0;
    if (!err && !set)
        err = write_back(tid, val, len, uval, len, ulen);
    finish(s, req, copy, pidfd, 0, err);
    return;
cont:
    finish(s, req, copy, pidfd, 1, 0);
}

/* bind(fd, addr, len) of a TCP socket: the shim's (a port free for UDP
 * too when the program asks for port 0; the ports its listeners hold). */
static void on_bind(struct sup *s, struct seccomp_notif *req)
{
    pid_t tid = (pid_t)req->pid;
    socklen_t len = (socklen_t)req->data.args[2];
    struct sockaddr_storage ss;
    int pidfd = -1, copy = -1;
    uint64_t ino = 0;
    if ((int)req->data.args[2] < 0 || len > sizeof ss || len < sizeof(sa_family_t))
        goto cont;
    struct iovec l1 = {.iov_base = &ss, .iov_len = len};
    struct iovec r1 = {.iov_base = (void *)(uintptr_t)req->data.args[1], .iov_len = len};
    if (process_vm_readv(tid, &l1, 1, &r1, 1, 0) != (ssize_t)len ||
        (copy = take_fd(s, req, (int)req->data.args[0], &pidfd, &ino)) < 0 || !is_tcp(copy))
        goto cont;
    int r = bind(copy, (struct sockaddr *)&ss, len);
    finish(s, req, copy, pidfd, 0, r < 0 ? errno : 0);
    return;
cont:
    finish(s, req, copy, pidfd, 1, 0);
}

/* listen(fd, backlog) of a TCP socket: the shim's listen on our copy makes
 * it the shim's unix listener (the engine's UDP socket on the port, the
 * kernel TCP socket kept for plain clients); that listener goes to the
 * program's fd number, as a connect's bridge does. */
static void on_listen(struct sup *s, struct seccomp_notif *req)
{
    int fd = (int)req->data.args[0];
    int pidfd;
    uint64_t ino = 0;
    int copy = take_fd(s, req, fd, &pidfd, &ino);
    struct stat after;
    if (copy < 0)
        goto cont;
    int placed = placed_state(s, ino, 0) >= 0;
    if (!placed && !is_tcp(copy))
        goto cont;
    int r = listen(copy, (int)req->data.args[1]);
    int err = r < 0 ? errno : 0;
    if (!err && !placed && fstat(copy, &after) == 0 && (uint64_t)after.st_ino != ino) {
        if (add_fd(s, req, copy, fd) < 0) {
            finish(s, req, copy, pidfd, 0, EINTR); /* the answer goes nowhere */
            return;
        }
        placed_add(s, (uint64_t)after.st_ino, ino, -1);
        placed_state(s, (uint64_t)after.st_ino, 1);
    }
    finish(s, req, copy, pidfd, 0, err);
    return;
cont:
    finish(s, req, copy, pidfd, 1, 0);
}

/* accept/accept4(fd, addr, addrlen[, flags]) on a listener we placed: the
 * shim's accept on our copy (it takes only what the engine hands over,
 * and plain TCP clients of the dual listener), the peer's address written
 * into the program, the new socket installed and returned in one step
 * (SECCOMP_ADDFD_FLAG_SEND: the new fd number is accept's result). A
 * blocking listener makes this wait, in its thread. */
static void on_accept(struct sup *s, struct seccomp_notif *req)
{
    pid_t tid = (pid_t)req->pid;
    int fd = (int)req->data.args[0];
    int flags = req->data.nr == __NR_accept4 ? (int)req->data.args[3] : 0;
    uint64_t uaddr = req->data.args[1], ulen = req->data.args[2];
    int pidfd;
    uint64_t ino = 0;
    int copy = take_fd(s, req, fd, &pidfd, &ino);
    socklen_t ulen_v = 0;
    if (copy < 0 || placed_state(s, ino, 0) < 0 || (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)))
        goto cont;
    if (uaddr) {
        struct iovec l1 = {.iov_base = &ulen_v, .iov_len = sizeof ulen_v};
        struct iovec r1 = {.iov_base = (void *)(uintptr_t)ulen, .iov_len = sizeof ulen_v};
        if (process_vm_readv(tid, &l1, 1, &r1, 1, 0) != sizeof ulen_v || (int)ulen_v < 0)
            goto cont; /* EFAULT, EINVAL: the kernel's */
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int nfd = accept4(copy, (struct sockaddr *)&ss, &len, (flags & SOCK_NONBLOCK) | SOCK_CLOEXEC);
    if (nfd < 0) {
        finish(s, req, copy, pidfd, 0, errno);
        return;
    }
    int err = uaddr ? write_back(tid, &ss, len < ulen_v ? len : ulen_v, uaddr, len, ulen) : 0;
    struct stat nst;
    if (!err && fstat(nfd, &nst) == 0) {
        struct seccomp_notif_addfd add = {
            .id = req->id,
            .flags = SECCOMP_ADDFD_FLAG_SEND,
            .srcfd = (uint32_t)nfd,
            .newfd_flags = (flags & SOCK_CLOEXEC) ? O_CLOEXEC : 0,
        };
        placed_add(s, (uint64_t)nst.st_ino, 0, -1);
        placed_state(s, (uint64_t)nst.st_ino, 1);
        if (ioctl(s->lfd, SECCOMP_IOCTL_NOTIF_ADDFD, &add) >= 0) {
            if (s->debug)
                fprintf(stderr, "%s: %016llx: accepted, installed and answered\n", me,
                        (unsigned long long)req->id);
            close(nfd); /* answered by the ioctl */
            finish(s, req, copy, pidfd, -1, 0);
            return;
        }
        /* interrupted: this connection is lost (reset), the restarted
         * accept takes the next; to be held for it as connect does */
        err = errno == ENOENT ? EINTR : errno;
    }
    close(nfd);
    finish(s, req, copy, pidfd, 0, err);
    return;
cont:
    finish(s, req, copy, pidfd, 1, 0);
}

static void *job_run(void *arg)
{
    struct job *j = arg;
    int nr = j->req->data.nr;
    if (nr == __NR_connect)
        on_connect(j->sup, j->req);
    else if (nr == __NR_getsockopt || nr == __NR_setsockopt)
        on_sockopt(j->sup, j->req);
    else if (nr == __NR_bind)
        on_bind(j->sup, j->req);
    else if (nr == __NR_listen)
        on_listen(j->sup, j->req);
    else if (nr == __NR_accept || nr == __NR_accept4)
        on_accept(j->sup, j->req);
    else
        on_name(j->sup, j->req);
    free(j->req);
    free(j);
    return NULL;
}

static int serve(int lfd, pid_t child, int pass)
{
    signals_setup(child);
    static struct sup s; /* its ring is large; threads reach it */
    s.lfd = lfd;
    s.pass = pass == 1;
    s.debug = pass == 2;
    pthread_mutex_init(&s.mu, NULL);
    for (unsigned i = 0; i < PLACED_RING; i++)
        s.placed[i].held = -1;
    if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &s.sizes) < 0) {
        warn("SECCOMP_GET_NOTIF_SIZES: %s", strerror(errno));
        kill(child, SIGKILL);
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (;;) {
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        if (poll(&p, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (!(p.revents & POLLIN))
            break; /* POLLHUP: every task under the filter is gone */
        struct job *j = calloc(1, sizeof *j);
        struct seccomp_notif *req = calloc(1, s.sizes.seccomp_notif);
        if (!j || !req) {
            free(j);
            free(req);
            continue;
        }
        if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, req) < 0) {
            free(j);
            free(req);
            if (errno == EINTR || errno == ENOENT)
                continue;
            warn("NOTIF_RECV: %s", strerror(errno));
            break;
        }
        if (s.debug)
            fprintf(stderr, "%s: %016llx: tid %u syscall %d fd %lld\n", me,
                    (unsigned long long)req->id, req->pid, req->data.nr,
                    (long long)req->data.args[0]);
        if (s.pass) {
            respond(&s, req->id, 1, 0, 0); /* no thread for what continues */
            free(j);
            free(req);
            continue;
        }
        if (req->data.nr != __NR_connect && req->data.nr != __NR_accept &&
            req->data.nr != __NR_accept4) {
            j->sup = &s;
            j->req = req;
            job_run(j); /* never waits: in the loop */
            continue;
        }
        j->sup = &s;
        j->req = req;
        pthread_t t;
        if (pthread_create(&t, &attr, job_run, j) != 0)
            job_run(j);
    }
    int st = 0;
    while (waitpid(child, &st, 0) < 0 && errno == EINTR)
        ;
    /* exit(), not _exit(): the shim's exit path keeps what the program
     * wrote in flight until delivered (a keeper), as for a preloaded one. */
    if (WIFSIGNALED(st))
        exit(128 + WTERMSIG(st));
    exit(WEXITSTATUS(st));
}

static int usage(void)
{
    fprintf(stderr, "usage: %s [--shim PATH] [--pass | --debug] [--] PROGRAM [ARG...]\n", me);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--serve") == 0)
        return serve(atoi(argv[2]), (pid_t)atoi(argv[3]),
                     strcmp(argv[4], "pass") == 0 ? 1 : strcmp(argv[4], "debug") == 0 ? 2 : 0);
    char shim[PATH_MAX] = "";
    int pass = 0, i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else if (strcmp(argv[i], "--pass") == 0) {
            pass = 1;
        } else if (strcmp(argv[i], "--debug") == 0) {
            pass = 2;
        } else if (strcmp(argv[i], "--shim") == 0 && i + 1 < argc) {
            snprintf(shim, sizeof shim, "%s", argv[++i]);
        } else {
            return usage();
        }
    }
    if (i >= argc)
        return usage();
    if (!shim[0] && find_shim(shim, sizeof shim) < 0) {
        warn("%s", "cannot find librudp_shim.so (use --shim PATH)");
        return 127;
    }
    return start(shim, pass, argv + i);
}
