/*
 * keeper.c: the engine across fork, exec and exit. Every fork parks the
 * engine at its safe point; a forked child forgets its parent's engine. At
 * exec, exit and _exit, whatever the engine still carries goes on in a
 * keeper: a detached copy of the process that serves it to the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine.h"

#include "poison.h"

/* ---- handing the engine to a keeper process ----
 *
 * exec replaces the image and takes the engine thread with it; exit and
 * _exit end it. Kernel TCP would go on delivering, and connections or
 * listeners may still be held by other processes (an exec'd image, forked
 * children, a daemon's child). So the engine, paused at a safe point, is
 * forked: the copy (the keeper) inherits its exact state and fds, closes
 * everything else, and serves until no bridge, listener or unfinished
 * connection remains. A double fork makes the keeper nobody's child. For
 * exec the keeper first waits for the verdict: EOF on a close-on-exec pipe
 * means the exec happened; a byte means it failed and the keeper leaves. */

static void pause_engine(void)
{
    pthread_mutex_lock(&E.mu);
    E.pause_req = 1;
    pthread_mutex_unlock(&E.mu);
    uint64_t one = 1;
    ssize_t w = write(E.evfd, &one, sizeof one);
    (void)w;
    pthread_mutex_lock(&E.mu);
    while (!E.paused)
        pthread_cond_wait(&E.cv, &E.mu);
    pthread_mutex_unlock(&E.mu);
}

/* Releases a paused engine and waits until it has left the pause, so that
 * a pause requested right after cannot mistake the old acknowledgement for
 * a new one. */
static void resume_locked(void)
{
    E.pause_req = 0;
    pthread_cond_broadcast(&E.cv);
    while (E.paused && !E.broken)
        pthread_cond_wait(&E.cv, &E.mu);
}

void shim_engine_resume(void)
{
    pthread_mutex_lock(&E.mu);
    resume_locked();
    pthread_mutex_unlock(&E.mu);
}

/* If fd is the app's copy of one of our listeners, listen() on it again. */
static void relisten(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
        return;
    for (uint32_t i = 0; i < E.nsocks; i++) {
        esock *s = E.socks[i];
        if (s && s->listener && s->listener_ino == (uint64_t)st.st_ino) {
            real_listen(fd, s->backlog);
            return;
        }
    }
}

static void keeper_main(int verdict) __attribute__((noreturn));

static void keeper_main(int verdict)
{
    if (verdict >= 0) {
        char c;
        ssize_t r;
        do
            r = read(verdict, &c, 1);
        while (r < 0 && errno == EINTR);
        if (r == 1)
            syscall(SYS_exit_group, 0); /* the exec failed: the engine goes on */
    }
    setsid();
    sigset_t none;
    sigemptyset(&none);
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* Keep only the engine's fds (and a log file): holding the app's fds
     * would keep its sockets, pipes and terminal open. Our copies of the
     * app's listeners first get a listen(): that makes this process their
     * credential, so the processes accepting on them take our connections
     * (ident.c). */
    int maxfd = (int)sysconf(_SC_OPEN_MAX);
    if (maxfd < 0 || maxfd > (1 << 20))
        maxfd = 1 << 20;
    for (int fd = 0; fd < maxfd; fd++) {
        if (shim_engine_owns(fd))
            continue;
        if (fd == shim_cfg.log_fd && fd > 2)
            continue;
        if (fd == verdict || fcntl(fd, F_GETFD) >= 0) {
            relisten(fd);
            real_close(fd);
        }
    }
    if (shim_cfg.log_fd <= 2)
        shim_cfg.log_fd = -1;
    E.keeper_mode = 1;
    shim_slots_keeper();
    pthread_cond_init(&E.cv, NULL); /* the parent's paused engine waited on it */
    E.pid = getpid();
    E.pause_req = E.paused = 0;
    E.in_handoff = 0;
    /* The app's copies of listeners may be gone: check them soon. */
    rudp_time now = shim_now();
    for (uint32_t i = 0; i < E.nsocks; i++)
        if (E.socks[i] && E.socks[i]->listener)
            E.socks[i]->alive_check = now;
    E.retry_at = now;
    SHIM_LOG(RUDP_LOG_INFO, "keeper %d took over the engine", (int)getpid());
    shim_engine_loop(NULL);
    SHIM_LOG(RUDP_LOG_INFO, "keeper %d done", (int)getpid());
    if (shim_cfg.stats)
        shim_engine_print_stats();
    syscall(SYS_exit_group, 0);
    __builtin_unreachable();
}

pid_t shim_engine_handoff(int for_exec, int *abort_fd)
{
    *abort_fd = -1;
    pthread_mutex_lock(&E.mu);
    int run = E.started && !E.broken && E.pid == getpid() && !E.keeper_mode;
    pthread_mutex_unlock(&E.mu);
    if (!run)
        return 0;
    pause_engine();
    if (!shim_engine_busy()) {
        if (for_exec)
            shim_engine_resume();
        return 0;
    }
    int pfd[2] = {-1, -1};
    if (for_exec && pipe2(pfd, O_CLOEXEC) < 0) {
        shim_engine_resume();
        return -1;
    }
    E.in_handoff = 1;
    pid_t mid = fork();
    if (mid == 0) {
        pid_t k = fork();
        if (k == 0) {
            if (pfd[1] >= 0)
                real_close(pfd[1]);
            keeper_main(pfd[0]);
        }
        syscall(SYS_exit_group, k < 0 ? 1 : 0);
    }
    E.in_handoff = 0;
    if (pfd[0] >= 0)
        real_close(pfd[0]);
    if (mid < 0) {
        if (pfd[1] >= 0)
            real_close(pfd[1]);
        shim_engine_resume();
        return -1;
    }
    int st;
    while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
        ;
    *abort_fd = pfd[1];
    return mid;
}

void shim_engine_exit(void)
{
    int fd;
    /* The process ends; its engine thread with it. Whatever is left goes
     * on in a keeper. */
    shim_engine_handoff(0, &fd);
}

/* ---- fork ---- */

/* Every fork parks the engine at its safe point first: a child forked
 * while the engine thread held an allocator's lock (libasan's is not
 * fork-safe) would inherit it held and hang at its first malloc, and the
 * engine's state is consistent for a keeper only there. */
static int fork_paused;

void shim_engine_atfork_prepare(void)
{
    pthread_mutex_lock(&E.mu);
    int park = E.started && !E.broken && E.pid == getpid() && !E.in_handoff && !E.keeper_mode;
    pthread_mutex_unlock(&E.mu);
    fork_paused = 0;
    if (park) {
        pause_engine();
        fork_paused = 1;
    }
    pthread_mutex_lock(&E.mu);
    shim_ownfds_lock();
}

void shim_engine_atfork_parent(void)
{
    shim_ownfds_unlock();
    if (fork_paused)
        resume_locked();
    fork_paused = 0;
    pthread_mutex_unlock(&E.mu);
}

void shim_engine_atfork_child(void)
{
    /* The prepare handler locked these in this very thread: unlock them
     * (re-initialising a locked mutex is undefined, and TSan says so). */
    shim_ownfds_unlock();
    pthread_mutex_unlock(&E.mu);
    if (E.in_handoff)
        return; /* becoming a keeper: the engine's state and fds are the point */
    /* The parent's engine keeps serving every connection made before the
     * fork; this child must not hold copies of its fds, or a bridge the
     * parent closes would stay open here. The child gets an engine of its
     * own for what it opens itself. The log file is the child's too. */
    shim_close_all_owned(shim_cfg.log_fd > 2 ? shim_cfg.log_fd : -1);
    pthread_cond_init(&E.cv, NULL);
    /* Memory of the parent's engine is left as is: it belongs to a thread
     * that does not exist here and is never touched again. */
    E.started = 0;
    E.broken = 0;
    E.pause_req = 0;
    E.paused = 0;
    E.q_head = E.q_tail = NULL;
    E.epfd = E.evfd = -1;
    E.ctx = NULL;
    E.socks = NULL;
    E.nsocks = 0;
    E.bridges = NULL;
    E.pending = NULL;
    E.retry_at = RUDP_TIME_NEVER;
    E.msgs = NULL;
    E.iovs = NULL;
    E.addrs = NULL;
    E.ctrls = NULL;
    E.rxbuf = NULL;
}
