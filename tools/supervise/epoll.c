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
 * and it lives as long as the program holds the bridge.
 *
 * The same registrations are taken off the old file first, in the same
 * way (the old file put at N in that table): it may outlive the swap, the
 * shim keeping the program's own kernel socket for RUDP_FALLBACK=tcp until
 * the rudp handshake is done (shim/interpose/connect.c, req.tcp_fd), and
 * a socket not connected is ready at once (EPOLLOUT|EPOLLHUP: tcp_poll in
 * TCP_CLOSE), so the program's epoll_wait reported it, with its data,
 * beside or before the bridge's events (prog_epollpre, now and then).
 *
 * O_ASYNC too: a signal it sends (F_SETSIG's, with siginfo) names the fd
 * in si_fd, the number fasync_helper() noted when O_ASYNC was turned on
 * (fa_fd; send_sigio passes it on). The shim turns it on for the new file
 * (shim_fdswap carries the status flags) at the number of our copy, so
 * the program's signals named our number. Turned off and on again at N
 * in the same table, it notes N (setfl() hands ->fasync the caller's fd,
 * fasync_insert_entry updates the same file's entry).
 *
 * The table's copies are closed before the thread returns: left to the
 * thread's exit they would go after pthread_join returned (the tid is
 * cleared before the files), a file the process let go outliving the
 * answer. POSIX locks are owned by a table: the process's are kept.
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
    int old;      /* ours: the file it replaced, or -1 */
    const struct epreg *r;
    int n;
    int async; /* the new file's status flags if O_ASYNC is on, else 0 */
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
static void carry_in_table(struct carry *c)
{
    int pidfd = above(pidfd_for(c->tid), c->fd);
    int b = pidfd < 0 ? -1 : above((int)syscall(SYS_pidfd_getfd, pidfd, c->fd, 0), c->fd);
    int old = above(c->old, c->fd);
    struct stat st;
    if (b < 0 || fstat(b, &st) < 0 || (uint64_t)st.st_ino != c->ino)
        return;
    int eps[16];
    for (int i = 0; i < c->n && i < 16; i++)
        eps[i] = above((int)syscall(SYS_pidfd_getfd, pidfd, c->r[i].epfd, 0), c->fd);
    if (old >= 0 && dup3(old, c->fd, O_CLOEXEC) >= 0) /* the number, not 0 */
        for (int i = 0; i < c->n && i < 16; i++)
            if (eps[i] >= 0)
                epoll_ctl(eps[i], EPOLL_CTL_DEL, c->fd, NULL); /* gone already: ENOENT */
    if (dup3(b, c->fd, O_CLOEXEC) < 0)
        return;
    for (int i = 0; i < c->n && i < 16; i++) {
        struct epoll_event ev = {.events = c->r[i].events, .data.u64 = c->r[i].data};
        if (eps[i] >= 0 && epoll_ctl(eps[i], EPOLL_CTL_ADD, c->fd, &ev) == 0)
            c->made++;
    }
    /* raw: the shim's fcntl is for the program's fds */
    if (c->async && (syscall(SYS_fcntl, c->fd, F_SETFL, c->async & ~O_ASYNC) < 0 ||
                     syscall(SYS_fcntl, c->fd, F_SETFL, c->async) < 0))
        warn("fd %d: O_ASYNC's signals name another fd number (%s)", c->fd, strerror(errno));
}

static void *carry_run(void *arg)
{
    struct carry *c = arg;
    signals_block_thread();
    if (unshare(CLONE_FILES) < 0)
        return NULL;
    carry_in_table(c);
    syscall(SYS_close_range, 0u, ~0u, 0u); /* the table's copies, now */
    return NULL;
}

int epoll_regs_carry(pid_t tid, int fd, uint64_t ino, int old, const struct epreg *r, int n,
                     int async)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, nofile_raise);
    struct carry c = {.tid = tid, .fd = fd, .ino = ino, .old = old, .r = r, .n = n,
                      .async = async};
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
     * one. Or none (its close()): SETFD would put a file there the program
     * believes closed, a connection it never ends. Checked again just
     * before; a dup2 in the instant between remains, the kernel offering
     * no compare-and-swap. */
    int pidfd = pidfd_for(tid);
    if (pidfd < 0 && reserve_release(errno))
        pidfd = pidfd_for(tid); /* short of fds: the reserve is for this (escape.c) */
    int now = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
    if (now < 0 && pidfd >= 0 && reserve_release(errno))
        now = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
    int gone = pidfd >= 0 && now < 0 && errno == EBADF;
    struct stat nst;
    int moved = gone || (now >= 0 && fstat(now, &nst) == 0 && (uint64_t)nst.st_ino != ino);
    if (pidfd >= 0)
        close(pidfd);
    if (moved) {
        close(now);
        return -ESTALE;
    }
    int e = add_fd(s, req, src, fd);
    int flags = e < 0 ? 0 : (int)syscall(SYS_fcntl, src, F_GETFL);
    int async = flags > 0 && (flags & O_ASYNC) ? flags : 0;
    struct stat st;
    if (e == 0 && (n > 0 || async) && fstat(src, &st) == 0) {
        /* now, the old file, held till then: its registrations go */
        int made = epoll_regs_carry(tid, fd, (uint64_t)st.st_ino, now, r, n, async);
        if (s->debug)
            fprintf(stderr, "%s: fd %d: %d of %d epoll registrations carried over%s\n", me, fd,
                    made, n, async ? ", O_ASYNC renumbered" : "");
    }
    if (now >= 0)
        close(now);
    return e < 0 ? e : 0;
}
