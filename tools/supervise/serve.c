/* Stage 2: the notification loop, each call to its handler; the bridges
 * placed so far (supervise.h). */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "supervise.h"

static int64_t now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec;
}

static unsigned bucket_of(uint64_t ino)
{
    return (unsigned)(ino % PLACED_BUCKETS);
}

/* The latest entry of ino, or NULL; mu held. */
static struct placed *placed_find(struct sup *s, uint64_t ino)
{
    for (int i = s->bucket[bucket_of(ino)]; i >= 0; i = s->placed[i].next)
        if (s->placed[i].ino == ino)
            return &s->placed[i];
    return NULL;
}

/* Takes entry i out of its bucket's chain; mu held. */
static void placed_unlink(struct sup *s, int i)
{
    int *pp = &s->bucket[bucket_of(s->placed[i].ino)];
    while (*pp >= 0 && *pp != i)
        pp = &s->placed[*pp].next;
    if (*pp == i)
        *pp = s->placed[i].next;
}

static int ino_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The inodes of every socket an fd of another process names (those we may
 * read: the program's are), sorted, into *out; returns how many, or -1.
 * Not under mu: it reads /proc. A superset of the program's is fine: an
 * entry kept too long costs memory only. */
static long live_sockets(uint64_t **out)
{
    DIR *proc = opendir("/proc");
    if (!proc)
        return -1;
    size_t n = 0, cap = 1024;
    uint64_t *v = malloc(cap * sizeof *v);
    char path[300], link[64];
    struct dirent *p;
    while (v && (p = readdir(proc))) {
        if (p->d_name[0] < '1' || p->d_name[0] > '9' || atoi(p->d_name) == getpid())
            continue;
        snprintf(path, sizeof path, "/proc/%s/fd", p->d_name);
        DIR *fds = opendir(path);
        if (!fds)
            continue; /* gone, or not ours to read */
        struct dirent *f;
        while (v && (f = readdir(fds))) {
            if (f->d_name[0] == '.')
                continue;
            ssize_t k = readlinkat(dirfd(fds), f->d_name, link, sizeof link - 1);
            unsigned long long ino;
            if (k <= 0)
                continue;
            link[k] = 0;
            if (sscanf(link, "socket:[%llu]", &ino) != 1)
                continue;
            if (n == cap) {
                uint64_t *w = realloc(v, 2 * cap * sizeof *v);
                if (!w) {
                    free(v);
                    v = NULL;
                    break;
                }
                v = w;
                cap *= 2;
            }
            v[n++] = ino;
        }
        closedir(fds);
    }
    closedir(proc);
    if (!v)
        return -1;
    qsort(v, n, sizeof *v, ino_cmp);
    *out = v;
    return (long)n;
}

/* Frees entry i (unlinked already); mu held. */
static void placed_free(struct sup *s, int i)
{
    s->placed[i] = (struct placed){.held = -1, .next = s->placed_free};
    s->placed_free = i;
    s->placed_n--;
}

/* Drops the entries, made before this sweep began, whose bridge no
 * process holds (held ones stay: ours). mu held on entry and exit; let go
 * while /proc is read. */
static void placed_sweep(struct sup *s)
{
    uint64_t gen = s->placed_adds;
    s->placed_sweeping = 1;
    pthread_mutex_unlock(&s->mu);
    uint64_t *live = NULL;
    long n = live_sockets(&live);
    pthread_mutex_lock(&s->mu);
    s->placed_sweeping = 0;
    if (n < 0)
        return;
    unsigned dropped = 0;
    for (unsigned i = 0; i < s->placed_cap; i++) {
        struct placed *e = &s->placed[i];
        if (!e->ino || e->held >= 0 || e->gen >= gen ||
            bsearch(&e->ino, live, (size_t)n, sizeof *live, ino_cmp))
            continue;
        placed_unlink(s, (int)i);
        placed_free(s, (int)i);
        dropped++;
    }
    free(live);
    if (s->debug)
        fprintf(stderr, "%s: placed bridges: %u gone, %u kept\n", me, dropped, s->placed_n);
}

/* Doubles the table; mu held. */
static int placed_grow(struct sup *s)
{
    unsigned cap = s->placed_cap ? 2 * s->placed_cap : 1024;
    struct placed *p = realloc(s->placed, cap * sizeof *p);
    if (!p)
        return -1;
    s->placed = p;
    for (unsigned i = cap; i-- > s->placed_cap;) {
        p[i] = (struct placed){.held = -1, .next = s->placed_free};
        s->placed_free = (int)i;
    }
    s->placed_cap = cap;
    return 0;
}

void placed_add(struct sup *s, uint64_t ino, uint64_t tcp_ino, int held)
{
    pthread_mutex_lock(&s->mu);
    if (s->placed_free < 0 && s->placed_n >= s->placed_sweep_at && !s->placed_sweeping) {
        placed_sweep(s);
        s->placed_sweep_at = s->placed_n * 2 > PLACED_SWEEP ? s->placed_n * 2 : PLACED_SWEEP;
    }
    if (s->placed_free < 0 && placed_grow(s) < 0) {
        pthread_mutex_unlock(&s->mu);
        warn("no memory for the record of a bridge: its later calls go to the kernel");
        if (held >= 0)
            close(held);
        return;
    }
    int i = s->placed_free;
    s->placed_free = s->placed[i].next;
    s->placed_n++;
    s->placed[i] = (struct placed){.ino = ino, .tcp_ino = tcp_ino, .held = held,
                                   .next = s->bucket[bucket_of(ino)], .gen = s->placed_adds++,
                                   .since = held >= 0 ? now_seconds() : 0, .fd = -1};
    s->bucket[bucket_of(ino)] = i;
    if (held >= 0)
        s->placed_held++;
    pthread_mutex_unlock(&s->mu);
    uint64_t one = 1;
    if (held >= 0 && write(s->wake, &one, sizeof one) < 0) {
        /* full: the loop is awake already */
    }
}

void placed_at(struct sup *s, uint64_t ino, pid_t tid, int fd)
{
    pthread_mutex_lock(&s->mu);
    struct placed *p = placed_find(s, ino);
    if (p) {
        p->tid = tid;
        p->fd = fd;
    }
    pthread_mutex_unlock(&s->mu);
}

/* The supervisor reach_app_end serves (serve() sets it). */
static struct sup *reach_sup;

int reach_app_end(uint64_t ino)
{
    struct sup *s = reach_sup;
    if (!s || !ino)
        return -1;
    pid_t tid = 0;
    int fd = -1;
    for (int i = 0; i < 2000; i++) { /* 0.2 s at most */
        pthread_mutex_lock(&s->mu);
        struct placed *p = placed_find(s, ino);
        tid = p ? p->tid : 0;
        fd = p ? p->fd : -1;
        pthread_mutex_unlock(&s->mu);
        if (fd != PLACED_PENDING)
            break;
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    if (fd < 0 || tid <= 0)
        return -1;
    /* Its thread's table: gone with the thread (a Go M rarely ends), then
     * nothing is reached, as before this hook. */
    int pidfd = pidfd_for(tid);
    if (pidfd < 0)
        return -1;
    int copy = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
    close(pidfd);
    struct stat st;
    if (copy >= 0 && (fstat(copy, &st) < 0 || (uint64_t)st.st_ino != ino)) {
        close(copy); /* the program closed it, the number holds another file */
        copy = -1;
    }
    return copy;
}

int placed_expire(struct sup *s)
{
    int64_t now = now_seconds();
    int gone[64], n = 0;
    pthread_mutex_lock(&s->mu);
    for (unsigned i = 0; s->placed_held && i < s->placed_cap && n < 64; i++) {
        struct placed *e = &s->placed[i];
        if (e->ino && e->held >= 0 && now - e->since >= HELD_SECONDS) {
            gone[n++] = e->held;
            e->held = -1;
            s->placed_held--;
        }
    }
    int left = s->placed_held > 0;
    pthread_mutex_unlock(&s->mu);
    /* closed out of mu (the engine sees the application's close): the
     * shim's close() may wait for the engine, which may be waiting for mu
     * in reach_app_end */
    for (int i = 0; i < n; i++)
        close(gone[i]);
    return left;
}

uint64_t placed_listener_of(struct sup *s, uint64_t tcp_ino)
{
    uint64_t ino = 0, gen = 0;
    pthread_mutex_lock(&s->mu);
    /* rare (listen() on a socket that listens already): the whole table */
    for (unsigned i = 0; i < s->placed_cap; i++) {
        const struct placed *e = &s->placed[i];
        if (e->ino && e->tcp_ino == tcp_ino && e->held < 0 && e->fd >= 0 &&
            e->answered != PLACED_LEFT && (!ino || e->gen > gen)) {
            ino = e->ino;
            gen = e->gen;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return ino;
}

int placed_take_held(struct sup *s, uint64_t tcp_ino)
{
    int fd = -1;
    pthread_mutex_lock(&s->mu);
    /* rare (a connect interrupted before its bridge was in place): the
     * whole ring, only while one is held */
    for (unsigned i = 0; s->placed_held && i < s->placed_cap; i++)
        if (s->placed[i].ino && s->placed[i].tcp_ino == tcp_ino && s->placed[i].held >= 0) {
            fd = s->placed[i].held;
            s->placed[i].held = -1;
            s->placed_held--;
            break;
        }
    pthread_mutex_unlock(&s->mu);
    return fd;
}

int placed_state(struct sup *s, uint64_t ino, int mark)
{
    pthread_mutex_lock(&s->mu);
    struct placed *p = placed_find(s, ino);
    int r = p ? p->answered : -1;
    if (p && mark)
        p->answered = 1;
    pthread_mutex_unlock(&s->mu);
    return r;
}

void placed_left(struct sup *s, uint64_t ino)
{
    pthread_mutex_lock(&s->mu);
    struct placed *p = placed_find(s, ino);
    if (p)
        p->answered = PLACED_LEFT;
    pthread_mutex_unlock(&s->mu);
}

int placed_bridge(struct sup *s, uint64_t ino)
{
    int st = placed_state(s, ino, 0);
    return st == PLACED_LEFT ? -1 : st;
}

void *job_run(void *arg)
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
        on_accept_held(j->sup, j->req, j->held);
    else if (nr == __NR_ioctl)
        on_ioctl(j->sup, j->req);
    else if (nr == __NR_sendto && !(j->req->data.args[3] & MSG_FASTOPEN))
        on_sendaddr(j->sup, j->req); /* an address, no MSG_FASTOPEN (start.c) */
    else if (nr == __NR_sendto || nr == __NR_sendmsg)
        on_fastopen(j->sup, j->req);
    else
        on_name(j->sup, j->req);
    if (j->inflight)
        acceptw_done(j->inflight);
    free(j->req);
    free(j);
    return NULL;
}

int serve(int lfd, pid_t child, int pass)
{
    signals_serving(child); /* also in our argv: rudp-stat finds us by it */
    static struct sup s; /* threads reach it */
    s.lfd = lfd;
    s.pass = pass == 1;
    s.debug = pass == 2;
    pthread_mutex_init(&s.mu, NULL);
    s.placed_free = -1;
    s.placed_sweep_at = PLACED_SWEEP;
    for (unsigned i = 0; i < PLACED_BUCKETS; i++)
        s.bucket[i] = -1;
    reach_sup = &s;
    /* The shim (preloaded) is told that the sockets it is called on are
     * copies of the program's (shim/state/front.h), before any is. */
    static const shim_front_remote front = {.app_end = reach_app_end, .stats = escape_stats};
    if (!shim_front_register) {
        warn("%s", "the shim is not loaded (LD_PRELOAD): cannot serve");
        exit(125); /* the program's parent sees it and stops the program */
    }
    if (shim_front_register(&front) < 0) {
        warn("the shim refused us as its front end: %s", strerror(errno));
        exit(125);
    }
    reserve_init(); /* before the engine's fds: escape.c */
    pool_init(&s);
    if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &s.sizes) < 0) {
        /* Without the sizes NOTIF_RECV would write past a 0-byte buffer:
         * stop here, the program with us (review 17). */
        warn("SECCOMP_GET_NOTIF_SIZES: %s", strerror(errno));
        exit(125); /* the program's parent sees it and stops the program */
    }
    s.wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int held = 0; /* bridges held: look every second (placed_expire) */
    int gone = 0; /* every task under the filter is gone: our end, status 0 */
    for (;;) {
        struct pollfd p[2] = {{.fd = lfd, .events = POLLIN}, {.fd = s.wake, .events = POLLIN}};
        int n = poll(p, s.wake >= 0 ? 2 : 1, held || s.wake < 0 ? 1000 : -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        uint64_t v;
        if (n > 0 && s.wake >= 0 && (p[1].revents & POLLIN) && read(s.wake, &v, sizeof v) < 0) {
            /* taken by nobody else: never */
        }
        held = placed_expire(&s);
        if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        if (!(p[0].revents & POLLIN)) {
            gone = 1; /* POLLHUP: every task under the filter is gone */
            break;
        }
        struct job *j = calloc(1, sizeof *j);
        struct seccomp_notif *req = calloc(1, s.sizes.seccomp_notif);
        if (!j || !req) {
            free(j);
            free(req);
            continue;
        }
        j->held = -1;
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
        if (req->data.nr == __NR_sendto && !(req->data.args[3] & MSG_FASTOPEN) &&
            sendaddr_elsewhere(&s, req)) {
            free(j); /* continued in the loop: no worker for a UDP datagram */
            free(req);
            continue;
        }
        if (req->data.nr != __NR_connect && req->data.nr != __NR_accept &&
            req->data.nr != __NR_accept4 && req->data.nr != __NR_sendto &&
            req->data.nr != __NR_sendmsg) {
            j->sup = &s;
            j->req = req;
            job_run(j); /* never waits: in the loop */
            continue;
        }
        j->sup = &s;
        j->req = req;
        if ((req->data.nr == __NR_accept || req->data.nr == __NR_accept4) &&
            acceptw_park(&s, j) == 0)
            continue; /* a blocking accept with nothing to take: the waiter's */
        pool_submit(&s, j); /* may wait: in a worker */
    }
    /* exit(), not _exit(): the shim's exit path keeps what the program
     * wrote in flight until delivered (a keeper), as for a preloaded one.
     * Our status tells the program's parent (start.c) whether we ended
     * because every task is gone (0: the program is exiting, it waits for
     * it) or not (the program must not outlive us: it is killed). */
    exit(gone ? 0 : 125);
}
