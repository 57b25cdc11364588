/*
 * epoll.c: the program's epoll registrations of a socket that a bridge or
 * a listener replaces (supervise.h). NOTIF_ADDFD's SETFD puts another file
 * at the program's fd number; an epoll interest is keyed by (file, fd
 * number) and dies with the old file, so a program that registered its
 * socket before connect() (nginx's upstream connect does) would never hear
 * of the bridge. Before the swap the registrations of that fd are read
 * from /proc (each epoll fd's fdinfo lists "tfd: N events: E data: D ...
 * ino: I"); after it, the same are made for the new file, under the same
 * fd number N: epoll_ctl(ADD) takes the number from the caller's own fd
 * table, so it is made in a thread that has a table of its own
 * (unshare(CLONE_FILES)), where the bridge is put at N whatever our table
 * holds there. The program's later EPOLL_CTL_MOD/DEL with N then find it,
 * and it lives as long as the program holds the bridge (the thread's copy
 * goes with its table, when the thread ends).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "supervise.h"

/* The registrations of fd (its file's inode ino) in epoll set epfd of
 * thread tid's table, appended to r (n so far, at most max). */
static int regs_in(pid_t tid, int epfd, int fd, uint64_t ino, struct epreg *r, int n, int max)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fdinfo/%d", (int)tid, epfd);
    FILE *f = fopen(path, "re");
    if (!f)
        return n;
    char line[256];
    while (n < max && fgets(line, sizeof line, f)) {
        int tfd;
        unsigned events;
        unsigned long long data;
        long long pos;
        unsigned long tino;
        if (sscanf(line, "tfd: %d events: %x data: %llx pos:%lli ino:%lx", &tfd, &events, &data,
                   &pos, &tino) == 5 &&
            tfd == fd && tino == ino)
            r[n++] = (struct epreg){.epfd = epfd, .events = events, .data = data};
    }
    fclose(f);
    return n;
}

/* Whether epoll set epfd of thread tid may hold a registration of its fd:
 * kcmp(KCMP_EPOLL_TFD) says so without the text of the whole set (a Go
 * program's lists every connection), and no where it can tell. */
static int may_hold(pid_t tid, int epfd, int fd)
{
    struct kcmp_epoll_slot slot = {.efd = (uint32_t)epfd, .tfd = (uint32_t)fd, .toff = 0};
    long r = syscall(SYS_kcmp, tid, tid, KCMP_EPOLL_TFD, fd, &slot);
    return r == 0 || (r < 0 && errno != ENOENT);
}

int epoll_regs_find(pid_t tid, int fd, uint64_t ino, struct epreg *r, int max)
{
    char path[64], link[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)tid);
    DIR *d = opendir(path);
    if (!d)
        return 0; /* no /proc: nothing carried (docs/reach.md) */
    int n = 0;
    struct dirent *e;
    while (n < max && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        ssize_t k = readlinkat(dirfd(d), e->d_name, link, sizeof link - 1);
        if (k <= 0)
            continue;
        link[k] = 0;
        if (strcmp(link, "anon_inode:[eventpoll]") == 0 && may_hold(tid, atoi(e->d_name), fd))
            n = regs_in(tid, atoi(e->d_name), fd, ino, r, n, max);
    }
    closedir(d);
    return n;
}

struct carry {
    pid_t tid;
    int fd;
    uint64_t ino; /* the file now at fd: the bridge or listener */
    const struct epreg *r;
    int n;
    int made;
};

/* x moved above number fd (so that fd is free for the bridge), or -1. */
static int above(int x, int fd)
{
    if (x < 0 || x > fd)
        return x;
    int hi = fcntl(x, F_DUPFD_CLOEXEC, fd + 1);
    close(x);
    return hi;
}

/* fd numbers up to the program's own limit, which it may have raised (Go
 * does): ours up to the hard limit, for the thread's table. */
static void nofile_raise(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* In a thread of its own, with an fd table of its own: it ends with the
 * thread, and whatever it held goes with it. */
static void *carry_run(void *arg)
{
    struct carry *c = arg;
    signals_block_thread();
    if (unshare(CLONE_FILES) < 0)
        return NULL;
    int pidfd = above(pidfd_for(c->tid), c->fd);
    int b = pidfd < 0 ? -1 : above((int)syscall(SYS_pidfd_getfd, pidfd, c->fd, 0), c->fd);
    struct stat st;
    if (b < 0 || fstat(b, &st) < 0 || (uint64_t)st.st_ino != c->ino ||
        dup3(b, c->fd, O_CLOEXEC) < 0)
        return NULL;
    for (int i = 0; i < c->n; i++) {
        int ep = above((int)syscall(SYS_pidfd_getfd, pidfd, c->r[i].epfd, 0), c->fd);
        struct epoll_event ev = {.events = c->r[i].events, .data.u64 = c->r[i].data};
        if (ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) == 0)
            c->made++;
        if (ep >= 0)
            close(ep);
    }
    return NULL;
}

int epoll_regs_carry(pid_t tid, int fd, uint64_t ino, const struct epreg *r, int n)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, nofile_raise);
    struct carry c = {.tid = tid, .fd = fd, .ino = ino, .r = r, .n = n};
    pthread_t t;
    if (pthread_create(&t, NULL, carry_run, &c) != 0)
        return 0;
    pthread_join(t, NULL);
    return c.made;
}

int add_fd_keep_epoll(struct sup *s, const struct seccomp_notif *req, int src, int fd,
                      uint64_t ino)
{
    struct epreg r[16];
    pid_t tid = (pid_t)req->pid;
    int n = epoll_regs_find(tid, fd, ino, r, 16);
    /* The number may name another file by now (review 5: a thread's
     * dup2() onto it during a blocking connect): SETFD would close that
     * one. Checked again just before; a dup2 in the instant between
     * remains, the kernel offering no compare-and-swap. */
    int pidfd = pidfd_for(tid);
    int now = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
    struct stat nst;
    int moved = now >= 0 && fstat(now, &nst) == 0 && (uint64_t)nst.st_ino != ino;
    if (now >= 0)
        close(now);
    if (pidfd >= 0)
        close(pidfd);
    if (moved)
        return -ESTALE;
    int e = add_fd(s, req, src, fd);
    if (e < 0)
        return e;
    fasync_renumber(s, src, fd);
    struct stat st;
    if (n > 0 && fstat(src, &st) == 0) {
        int made = epoll_regs_carry(tid, fd, (uint64_t)st.st_ino, r, n);
        if (s->debug)
            fprintf(stderr, "%s: fd %d: %d of %d epoll registrations carried over\n", me, fd,
                    made, n);
    }
    return 0;
}
