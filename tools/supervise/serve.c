/* Stage 2: the notification loop, each call to its handler; the bridges
 * placed so far (supervise.h). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "supervise.h"

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

void placed_add(struct sup *s, uint64_t ino, uint64_t tcp_ino, int held)
{
    pthread_mutex_lock(&s->mu);
    int i = (int)s->placed_next;
    struct placed *p = &s->placed[i];
    if (p->ino) {
        placed_unlink(s, i);
        if (p->held >= 0) {
            close(p->held); /* its program never came back for it */
            s->placed_held--;
        }
    }
    *p = (struct placed){.ino = ino, .tcp_ino = tcp_ino, .held = held,
                         .next = s->bucket[bucket_of(ino)]};
    s->bucket[bucket_of(ino)] = i;
    if (held >= 0)
        s->placed_held++;
    s->placed_next = (s->placed_next + 1) % PLACED_RING;
    pthread_mutex_unlock(&s->mu);
}

int placed_take_held(struct sup *s, uint64_t tcp_ino)
{
    int fd = -1;
    pthread_mutex_lock(&s->mu);
    /* rare (a connect interrupted before its bridge was in place): the
     * whole ring, only while one is held */
    for (unsigned i = 0; s->placed_held && i < PLACED_RING; i++)
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
        on_accept(j->sup, j->req);
    else
        on_name(j->sup, j->req);
    free(j->req);
    free(j);
    return NULL;
}

int serve(int lfd, pid_t child, int pass)
{
    signals_setup(child);
    static struct sup s; /* its ring is large; threads reach it */
    s.lfd = lfd;
    s.pass = pass == 1;
    s.debug = pass == 2;
    pthread_mutex_init(&s.mu, NULL);
    for (unsigned i = 0; i < PLACED_RING; i++)
        s.placed[i] = (struct placed){.held = -1, .next = -1};
    for (unsigned i = 0; i < PLACED_BUCKETS; i++)
        s.bucket[i] = -1;
    pool_init(&s);
    if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &s.sizes) < 0) {
        /* Without the sizes NOTIF_RECV would write past a 0-byte buffer:
         * stop here, the program with us (review 17). */
        warn("SECCOMP_GET_NOTIF_SIZES: %s", strerror(errno));
        kill(child, SIGKILL);
        exit(125);
    }
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
        pool_submit(&s, j); /* may wait: in a worker */
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
