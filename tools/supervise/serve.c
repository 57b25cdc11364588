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

static struct placed *placed_find(struct sup *s, uint64_t ino)
{
    for (unsigned i = 0; i < PLACED_RING; i++)
        if (s->placed[i].ino == ino)
            return &s->placed[i];
    return NULL;
}

void placed_add(struct sup *s, uint64_t ino, uint64_t tcp_ino, int held)
{
    pthread_mutex_lock(&s->mu);
    struct placed *p = &s->placed[s->placed_next];
    if (p->held >= 0 && p->ino)
        close(p->held); /* its program never came back for it */
    *p = (struct placed){.ino = ino, .tcp_ino = tcp_ino, .held = held};
    s->placed_next = (s->placed_next + 1) % PLACED_RING;
    pthread_mutex_unlock(&s->mu);
}

int placed_take_held(struct sup *s, uint64_t tcp_ino)
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

int serve(int lfd, pid_t child, int pass)
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
