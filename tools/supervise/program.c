/* Reaching into the program: its fds (pidfd_getfd, NOTIF_ADDFD), its
 * memory (process_vm_writev), the answers (NOTIF_SEND) (supervise.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/kcmp.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "supervise.h"

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

int notif_valid(int lfd, uint64_t id)
{
    return ioctl(lfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

int respond(struct sup *s, uint64_t id, int cont, int64_t val, int err)
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

/* The decimal field key ("\nTgid:", "\nThreads:": a line's start) of
 * /proc/TID/status, or none when the thread is gone or the field absent. */
static long status_num(pid_t tid, const char *key, long none)
{
    char path[48], text[4096];
    snprintf(path, sizeof path, "/proc/%d/status", (int)tid);
    if (proc_text(path, text, sizeof text) < 0)
        return none;
    const char *t = strstr(text, key);
    return t ? strtol(t + strlen(key), NULL, 10) : none;
}

/* tid's thread group (Tgid:), or -1: gone */
static pid_t tgid_of(pid_t tid)
{
    return (pid_t)status_num(tid, "\nTgid:", -1);
}

/* Set once PIDFD_THREAD was refused: a kernel before 6.9 (or a filter
 * that says so: t_supervise_oldkernel), asked no more. */
static _Atomic int no_thread_pidfd;

int pidfd_for(pid_t tid)
{
    if (!atomic_load_explicit(&no_thread_pidfd, memory_order_relaxed)) {
        int p = (int)syscall(SYS_pidfd_open, tid, PIDFD_THREAD);
        if (p >= 0 || errno != EINVAL)
            return p;
        atomic_store(&no_thread_pidfd, 1);
    }
    /* A plain pidfd, which names a thread group: tid's own if it leads
     * one, else its leader's. Not told by pidfd_open's errno for a thread
     * that leads none (EINVAL before 6.9, ENOENT since): /proc says. */
    errno = 0;
    pid_t g = tgid_of(tid);
    if (g <= 0) {
        /* gone; or /proc could not be read for want of fds or memory,
         * which the caller must hear as such (short_of: the reserve given
         * up, then escape()), not as a thread gone, whose call the kernel
         * answers: on a kernel before 6.9 that continued nearly every
         * connect of a keyed dial storm at a low fd limit over kernel TCP
         * (t_supervise_dialstorm's keyed_old: 4,226 SYNs) */
        if (!short_of(errno))
            errno = ESRCH;
        return -1;
    }
    if (g != tid) {
        /* Without kcmp (no CONFIG_KCMP) the tables cannot be compared: a
         * thread with a table of its own would have the leader's fd of
         * that number taken for its own, another socket. Refused then. */
        long same = syscall(SYS_kcmp, g, tid, KCMP_FILES, 0, 0);
        if (same != 0) {
            errno = same > 0 ? EXDEV : errno; /* a table of its own, gone, or no kcmp */
            return -1;
        }
    }
    return (int)syscall(SYS_pidfd_open, g, 0);
}

int take_fd(struct sup *s, const struct seccomp_notif *req, int fd, int *pidfd,
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

int proc_text(const char *path, char *buf, size_t len)
{
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0)
        return -1;
    ssize_t n = read(f, buf, len - 1);
    close(f);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    return 0;
}

/* The program's fd flags: its O_CLOEXEC is in /proc's fdinfo ("flags:",
 * octal), which pidfd_getfd does not carry over. */
static int target_cloexec(pid_t tid, int fd)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/fdinfo/%d", (int)tid, fd);
    if (proc_text(path, buf, sizeof buf) < 0)
        return 0;
    char *p = strstr(buf, "flags:");
    return p && (strtoul(p + 6, NULL, 8) & O_CLOEXEC);
}

int fd_table_shared(pid_t tid)
{
    return status_num(tid, "\nThreads:", 0) != 1;
}

int sock_int(int fd, int opt)
{
    int v = -1;
    socklen_t l = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, opt, &v, &l) < 0)
        return -1;
    return v;
}

int is_tcp(int fd)
{
    int d = sock_int(fd, SO_DOMAIN);
    return (d == AF_INET || d == AF_INET6) && sock_int(fd, SO_TYPE) == SOCK_STREAM &&
           sock_int(fd, SO_PROTOCOL) == IPPROTO_TCP;
}

int add_fd(struct sup *s, const struct seccomp_notif *req, int src, int fd)
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
    int e = errno;
    if (e != ENOENT)
        warn("NOTIF_ADDFD of fd %d: %s", fd, strerror(e));
    return -e;
}

int same_netns(pid_t tid, int fd)
{
    static _Atomic uint64_t ours; /* 0: not read yet */
    uint64_t me_ino = atomic_load(&ours);
    struct stat st;
    if (!me_ino) {
        if (stat("/proc/self/ns/net", &st) < 0)
            return 1; /* no /proc/self/ns: nothing else to tell by either */
        me_ino = (uint64_t)st.st_ino;
        atomic_store(&ours, me_ino);
    }
    int ns = ioctl(fd, SIOCGSKNS); /* the socket's own: it may predate a setns() */
    int r = -1;
    if (ns >= 0) {
        r = fstat(ns, &st);
        close(ns);
    }
    if (r < 0) { /* EPERM without CAP_NET_ADMIN there: the thread's then */
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/ns/net", (int)tid);
        if (stat(path, &st) < 0)
            return 0; /* cannot tell: kernel TCP, the safe side */
    }
    if ((uint64_t)st.st_ino == me_ino)
        return 1;
    static atomic_int told;
    if (!atomic_exchange(&told, 1))
        warn("a socket of another network namespace than the supervisor's: its engine would "
             "reach that of the supervisor; it stays kernel TCP (said once)");
    return 0;
}

/* Whether task tid is in our user namespace. A capability counts in the
 * user namespace it belongs to only: a program that made one of its own
 * (unshare(CLONE_NEWUSER), allowed unprivileged) has a full CapEff there,
 * and none over the sockets of our network namespace, which belongs to
 * ours (ns_capable). 0 when it cannot be told: the safe side. */
static int same_userns(pid_t tid)
{
    static _Atomic uint64_t me_ino;
    struct stat st;
    uint64_t mine = atomic_load(&me_ino);
    if (!mine) {
        if (stat("/proc/self/ns/user", &st) < 0)
            return 0;
        mine = (uint64_t)st.st_ino;
        atomic_store(&me_ino, mine);
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/user", (int)tid);
    return stat(path, &st) == 0 && (uint64_t)st.st_ino == mine;
}

int caller_capable(pid_t tid, int cap)
{
    char path[64], line[256];
    if (!same_userns(tid))
        return 0; /* capabilities of its own namespace only (review 41-2) */
    snprintf(path, sizeof path, "/proc/%d/status", (int)tid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0; /* cannot tell (the thread gone): not capable (review 41-3) */
    unsigned long long eff = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "CapEff: %llx", &eff) == 1)
            break;
    fclose(f);
    return cap < 64 && ((eff >> cap) & 1);
}

static int caps_get(pid_t tid, struct __user_cap_data_struct d[2])
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = tid};
    return (int)syscall(SYS_capget, &h, d);
}

static int caps_set(struct __user_cap_data_struct d[2])
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    return (int)syscall(SYS_capset, &h, d);
}

int caps_narrow(pid_t tid, struct caps_saved *saved)
{
    struct __user_cap_data_struct ours[2], theirs[2];
    if (caps_get(0, ours) < 0)
        return -1;
    /* The program's effective set, in our namespace: none where it is in
     * a user namespace of its own, or where it cannot be read (the thread
     * gone meanwhile): the safe side, not ours (review 41-2, 41-3). */
    memset(theirs, 0, sizeof theirs);
    if (same_userns(tid) && caps_get(tid, theirs) < 0)
        memset(theirs, 0, sizeof theirs);
    uint32_t more = (ours[0].effective & ~theirs[0].effective) |
                    (ours[1].effective & ~theirs[1].effective);
    if (!more)
        return 0; /* the program can do all we can: as it is */
    saved->eff[0] = ours[0].effective;
    saved->eff[1] = ours[1].effective;
    ours[0].effective &= theirs[0].effective;
    ours[1].effective &= theirs[1].effective;
    return caps_set(ours) == 0 ? 1 : -1;
}

void caps_restore(const struct caps_saved *saved)
{
    struct __user_cap_data_struct d[2];
    if (caps_get(0, d) < 0)
        return;
    d[0].effective = saved->eff[0];
    d[1].effective = saved->eff[1];
    if (caps_set(d) < 0)
        warn("capset: %s: this thread keeps the program's capabilities", strerror(errno));
}

int sndtimeo_ms(int fd)
{
    struct timeval tv;
    socklen_t l = sizeof tv;
    if (getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &l) < 0 ||
        (tv.tv_sec == 0 && tv.tv_usec == 0))
        return -1;
    long long ms = (long long)tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

long long mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int unprivileged_port(int port)
{
    static _Atomic int start = -1; /* net.ipv4.ip_unprivileged_port_start */
    int v = atomic_load(&start);
    if (v < 0) {
        FILE *f = fopen("/proc/sys/net/ipv4/ip_unprivileged_port_start", "re");
        if (!f || fscanf(f, "%d", &v) != 1)
            v = 1024;
        if (f)
            fclose(f);
        atomic_store(&start, v);
    }
    return port == 0 || port >= v;
}

int fd_placeable(pid_t tid, int fd)
{
    struct rlimit rl;
    if (prlimit(tid, RLIMIT_NOFILE, NULL, &rl) < 0 || (rlim_t)fd < rl.rlim_cur)
        return 1;
    static atomic_int told;
    if (!atomic_exchange(&told, 1))
        warn("fd %d is at or past the program's RLIMIT_NOFILE: no bridge can go there, "
             "its connection stays kernel TCP (said once)", fd);
    return 0;
}

int redirectable(pid_t tid, int copy, int fd)
{
    return is_tcp(copy) && same_netns(tid, copy) && fd_placeable(tid, fd);
}

int write_back(const struct sup *s, const struct seccomp_notif *req, const void *buf, size_t n,
               uint64_t uaddr, socklen_t len, uint64_t ulen)
{
    pid_t tid = (pid_t)req->pid;
    struct iovec l2[2] = {{.iov_base = (void *)buf, .iov_len = n},
                          {.iov_base = &len, .iov_len = sizeof len}};
    struct iovec r2[2] = {{.iov_base = (void *)(uintptr_t)uaddr, .iov_len = n},
                          {.iov_base = (void *)(uintptr_t)ulen, .iov_len = sizeof len}};
    /* The thread may have ended and its number gone to another process
     * since the call was read: the notification is checked again right
     * before each write (review 14); its answer then goes nowhere. */
    if (!notif_valid(s->lfd, req->id) ||
        (n && process_vm_writev(tid, &l2[0], 1, &r2[0], 1, 0) != (ssize_t)n) ||
        !notif_valid(s->lfd, req->id) ||
        process_vm_writev(tid, &l2[1], 1, &r2[1], 1, 0) != sizeof len)
        return EFAULT;
    return 0;
}

void finish(struct sup *s, const struct seccomp_notif *req, int copy, int pidfd, int cont,
            int err)
{
    if (copy >= 0)
        close(copy);
    if (pidfd >= 0)
        close(pidfd);
    if (cont >= 0) /* -1: answered already (NOTIF_ADDFD with FLAG_SEND) */
        respond(s, req->id, cont, 0, err);
}
