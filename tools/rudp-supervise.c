/*
 * rudp-supervise: runs a program the preload cannot reach (statically
 * linked, Go) so that its TCP connect() goes over rudp, the engine running
 * in this process (issue 35; docs/reach.md says what works and what not).
 *
 *   rudp-supervise [--shim PATH] [--pass] [--] PROGRAM [ARG...]
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
 * program's status (128+N for a signal N).
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

/* connect() on x86_64 is reported; everything else, and other ABIs (i386
 * via int 0x80, x32), run untouched: a gap listed in docs/reach.md. */
static int install_filter(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_connect, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
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

static int start(const char *shim, int pass, char **prog)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        warn("socketpair: %s", strerror(errno));
        return 127;
    }
    pid_t pid = fork();
    if (pid < 0) {
        warn("fork: %s", strerror(errno));
        return 127;
    }
    if (pid == 0) {
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
    char *args[] = {(char *)me, "--serve", a_fd, a_pid, pass ? "pass" : "redirect", NULL};
    execv("/proc/self/exe", args);
    warn("cannot exec itself: %s", strerror(errno));
    kill(pid, SIGKILL);
    return 127;
}

/* ---- stage 2: answering the notifications, with the shim loaded ---- */

struct sup {
    int lfd;
    int pass;
    struct seccomp_notif_sizes sizes;
};

struct job {
    struct sup *sup;
    struct seccomp_notif *req; /* sizes.seccomp_notif bytes */
};

static int notif_valid(int lfd, uint64_t id)
{
    return ioctl(lfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

/* Answers notification id: CONTINUE when cont, else val or -err. */
static void respond(struct sup *s, uint64_t id, int cont, int64_t val, int err)
{
    struct seccomp_notif_resp *r = calloc(1, s->sizes.seccomp_notif_resp);
    if (!r)
        return; /* the program stays blocked until it is killed */
    r->id = id;
    r->flags = cont ? SECCOMP_USER_NOTIF_FLAG_CONTINUE : 0;
    r->val = val;
    r->error = -err;
    if (ioctl(s->lfd, SECCOMP_IOCTL_NOTIF_SEND, r) < 0 && errno != ENOENT)
        warn("NOTIF_SEND: %s", strerror(errno));
    free(r);
}

/* A pidfd for the calling thread (tid), whose fd table pidfd_getfd reads. */
static int pidfd_for(pid_t tid)
{
    int p = (int)syscall(SYS_pidfd_open, tid, 0);
    if (p < 0 && errno == EINVAL) /* not a leader: a thread's pidfd (6.9+) */
        p = (int)syscall(SYS_pidfd_open, tid, PIDFD_THREAD);
    return p;
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
    if (copy < 0 || !is_tcp(copy))
        goto cont; /* EBADF, ENOTSOCK, unix and UDP sockets: the kernel's */

    struct stat before, after;
    if (fstat(copy, &before) < 0)
        goto cont;
    int r = connect(copy, (struct sockaddr *)&ss, len);
    int err = r < 0 ? errno : 0;
    /* The shim put a bridge at copy (its number, here) unless it left the
     * connect to the kernel (an address not redirected): the kernel's
     * result then, on the program's own socket (copy shares its file).
     * Told by the inode: the shim's getsockopt says TCP on a bridge. */
    if ((r == 0 || err == EINPROGRESS) && fstat(copy, &after) == 0 &&
        after.st_ino != before.st_ino) {
        struct seccomp_notif_addfd add = {
            .id = req->id,
            .flags = SECCOMP_ADDFD_FLAG_SETFD,
            .srcfd = (uint32_t)copy,
            .newfd = (uint32_t)fd,
            .newfd_flags = target_cloexec(tid, fd) ? O_CLOEXEC : 0,
        };
        if (ioctl(s->lfd, SECCOMP_IOCTL_NOTIF_ADDFD, &add) < 0) {
            /* ENOENT: the thread is gone or was interrupted */
            if (errno != ENOENT)
                warn("NOTIF_ADDFD: %s", strerror(errno));
            close(copy);
            close(pidfd);
            return;
        }
    }
    /* Our copy goes: the program's close is then the last one, which the
     * engine sees as the application's close. */
    close(copy);
    close(pidfd);
    respond(s, req->id, 0, 0, err);
    return;
cont:
    if (copy >= 0)
        close(copy);
    if (pidfd >= 0)
        close(pidfd);
    respond(s, req->id, 1, 0, 0);
}

static void *job_run(void *arg)
{
    struct job *j = arg;
    on_connect(j->sup, j->req);
    free(j->req);
    free(j);
    return NULL;
}

static int serve(int lfd, pid_t child, int pass)
{
    struct sup s = {.lfd = lfd, .pass = pass};
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
        if (s.pass || req->data.nr != __NR_connect) {
            respond(&s, req->id, 1, 0, 0); /* no thread for what continues */
            free(j);
            free(req);
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
    fprintf(stderr, "usage: %s [--shim PATH] [--pass] [--] PROGRAM [ARG...]\n", me);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--serve") == 0)
        return serve(atoi(argv[2]), (pid_t)atoi(argv[3]), strcmp(argv[4], "pass") == 0);
    char shim[PATH_MAX] = "";
    int pass = 0, i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else if (strcmp(argv[i], "--pass") == 0) {
            pass = 1;
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
