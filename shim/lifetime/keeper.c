/*
 * keeper.c: the engine across fork, exec and exit. Every fork parks the
 * engine at its safe point; a forked child forgets its parent's engine. At
 * exec, exit and _exit, whatever the engine still carries goes on in a
 * keeper: a detached copy of the process that serves it to the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lifetime.h"
#include "ports/ports.h"

#include "base/poison.h"

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

/* Whether every running engine is parked (paused = 1) or, for resume,
 * has left the pause (paused = 0; a broken engine stays "paused"). */
static int all_paused_locked(int want)
{
    for (int k = 0; k < G.nrun; k++) {
        struct engine *e = &G.e[k];
        if (want ? !e->paused : e->paused && !e->broken)
            return 0;
    }
    return 1;
}

/* Parks every engine; self, an engine thread asking, counts as parked. */
static void pause_engines(struct engine *self)
{
    pthread_mutex_lock(&G.mu);
    G.pause_req = 1;
    if (self)
        self->paused = 1;
    for (int k = 0; k < G.nrun; k++) {
        uint64_t one = 1;
        ssize_t w = write(G.e[k].evfd, &one, sizeof one);
        (void)w;
    }
    while (!all_paused_locked(1))
        pthread_cond_wait(&G.cv, &G.mu);
    pthread_mutex_unlock(&G.mu);
}

/* Releases the paused engines and waits until each has left the pause, so
 * that a pause requested right after cannot mistake the old
 * acknowledgement for a new one. */
static void resume_locked(void)
{
    G.pause_req = 0;
    pthread_cond_broadcast(&G.cv);
    while (!all_paused_locked(0))
        pthread_cond_wait(&G.cv, &G.mu);
}

void shim_engine_resume(void)
{
    pthread_mutex_lock(&G.mu);
    resume_locked();
    pthread_mutex_unlock(&G.mu);
}

/* If fd is the app's copy of one of our listeners, listen() on it again. */
static void relisten(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
        return;
    for (int k = 0; k < G.nrun; k++) {
        struct engine *e = &G.e[k];
        for (uint32_t i = 0; i < e->nsocks; i++) {
            esock *s = e->socks[i];
            if (s && s->listener && s->listener_ino == (uint64_t)st.st_ino) {
                real_listen(fd, s->backlog);
                return;
            }
        }
    }
}

/* ---- the process that handed over, until it is gone ----
 *
 * A listener lives on in a keeper while some process still holds the
 * app's end of it (check_alive in engine.c asks sock_diag). Right after
 * an exit, _exit or fatal signal, the process that handed over (and the
 * first child of the double fork) may still hold their copies: they close
 * them on their way out, which the keeper can race. Counted, they would
 * make a listener nobody else holds look alive for another ALIVE_PERIOD,
 * or for good when no check was due (kernel TCP frees the port when the
 * last process holding the socket is gone, at once). So until that
 * process has gone (its pidfd is readable once it has exited, after its
 * files were released: do_exit() runs exit_files() and the deferred
 * fput()s before exit_notify()), or HANDED_WAIT at most, a keeper's
 * listener checks are only postponed. Not for exec: that process is the
 * new image, whose copies count. */
#define HANDED_WAIT RUDP_SEC(2)

static _Atomic int handed_pidfd = -1;
static rudp_time handed_until;

static void watch_handed(pid_t from)
{
    int fd = (int)syscall(SYS_pidfd_open, from, 0);
    if (fd < 0)
        return; /* gone already (ESRCH), or no pidfd: nothing to wait for */
    fd = shim_fd_move_high(fd);
    handed_until = shim_now() + HANDED_WAIT;
    atomic_store(&handed_pidfd, fd);
}

int shim_keeper_handing_over(rudp_time now)
{
    int fd = atomic_load(&handed_pidfd);
    if (fd < 0)
        return 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (now < handed_until && poll(&p, 1, 0) == 0)
        return 1;
    fd = atomic_exchange(&handed_pidfd, -1);
    if (fd >= 0)
        real_close(fd);
    return 0;
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
    shim_signals_off();
    sigset_t none;
    sigemptyset(&none);
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* The keeper's messages and RUDP_STATS go where the program's went if
     * that is a terminal or a file. A pipe or socket is not kept: holding
     * it would keep its reader from seeing EOF (a shell pipeline would
     * wait for the keeper); then they go nowhere, unless RUDP_LOG_FILE. */
    if (shim_cfg.log_fd == 2) {
        struct stat st;
        int copy = -1;
        if (fstat(2, &st) == 0 && (S_ISREG(st.st_mode) || isatty(2)))
            copy = fcntl(2, F_DUPFD_CLOEXEC, 3);
        shim_cfg.log_fd = copy >= 0 ? shim_fd_move_high(copy) : -1;
    }
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
    if (verdict < 0)
        watch_handed(G.pid);
    /* Not the program any more, in ps and in the log: a supervisor must
     * not take this process for the service still running. */
    shim_log_keeper();
    shim_proctitle_keeper();
    G.keeper_mode = 1;
    shim_slots_keeper();
    pthread_cond_init(&G.cv, NULL); /* the parent's paused engines waited on it */
    pid_t handed = G.pid;
    G.pid = getpid();
    G.pause_req = 0;
    G.in_handoff = 0;
    atomic_store(&G.sig_handoff, 0);
    /* The app's copies of listeners may be gone: check them soon. */
    rudp_time now = shim_now();
    for (int k = 0; k < G.nrun; k++) {
        struct engine *e = &G.e[k];
        e->paused = 0;
        for (uint32_t i = 0; i < e->nsocks; i++)
            if (e->socks[i] && e->socks[i]->listener)
                e->socks[i]->alive_check = now;
        e->retry_at = now;
    }
    shim_control_reopen(&G.e[0]); /* a new pid: rudp-stat finds the keeper */
    if (verdict >= 0) /* the exec happened: the new image asks for the slabs */
        shim_execpass_keeper(handed);
    SHIM_LOG(RUDP_LOG_INFO, "keeper %d took over %d engine(s) of pid %d", (int)getpid(), G.nrun,
             (int)handed);
    /* Only this thread came through fork: engine 0 runs here, the others
     * on threads of their own, each until its work is done. */
    int started[SHIM_ENGINES_MAX] = {0};
    for (int k = 1; k < G.nrun; k++)
        if (!G.e[k].broken)
            started[k] = pthread_create(&G.e[k].thread, NULL, shim_engine_loop, &G.e[k]) == 0;
    if (!G.e[0].broken)
        shim_engine_loop(&G.e[0]);
    for (int k = 1; k < G.nrun; k++)
        if (started[k])
            pthread_join(G.e[k].thread, NULL);
    shim_exechand_relays_wait(); /* connections carried on over kernel TCP */
    shim_execpass_keeper_wait();
    SHIM_LOG(RUDP_LOG_INFO, "keeper %d done", (int)getpid());
    shim_slots_keeper_done();
    shim_qlog_flush_all();
    if (shim_cfg.stats) {
        /* The program printed its own at its end: these go on from there. */
        shim_log(0, "keeper of pid %d: the program's counters, with what this keeper did after "
                    "its end",
                 (int)handed);
        shim_engine_print_stats();
    }
    syscall(SYS_exit_group, 0);
    __builtin_unreachable();
}

/* Whether this process's engines may be handed over now, and if so (not
 * for exec, which may fail and resume), that they are: the process ends,
 * and a second keeper (_exit racing a fatal signal) must not follow. */
static int may_hand_over(int for_exec)
{
    pthread_mutex_lock(&G.mu);
    int run = G.nrun && !G.broken && G.pid == getpid() && !G.keeper_mode && !G.handed_over;
    if (run && !for_exec)
        G.handed_over = 1;
    pthread_mutex_unlock(&G.mu);
    return run;
}

static pid_t fork_keeper(int for_exec, int *abort_fd);

pid_t shim_engine_handoff(int for_exec, int *abort_fd)
{
    *abort_fd = -1;
    if (!may_hand_over(for_exec))
        return 0;
    pause_engines(NULL);
    return fork_keeper(for_exec, abort_fd);
}

/* The engines parked: fork the keeper (see shim_engine_handoff). */
static pid_t fork_keeper(int for_exec, int *abort_fd)
{
    if (!shim_engine_busy()) {
        /* No keeper: what the traces hold is written now (exec replaces
         * the memory, _exit runs no destructor), with the engines parked;
         * a listener's TIME_WAIT goes to the kernel (timewait.c). */
        shim_qlog_flush_all();
        for (int k = 0; k < G.nrun; k++)
            shim_tw_leave(&G.e[k]);
        if (for_exec)
            shim_engine_resume();
        return 0;
    }
    int pfd[2] = {-1, -1};
    if (for_exec && pipe2(pfd, O_CLOEXEC) < 0) {
        shim_engine_resume();
        return -1;
    }
    G.in_handoff = 1;
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
    G.in_handoff = 0;
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

/* ---- a fatal signal ----
 *
 * A catchable signal left at its default action (SIGTERM, SIGPIPE... signals.c lists them)
 * ends the process, and kernel TCP goes on delivering what its sockets
 * hold (the peer reads it all, then EOF). The shim's stand-in for that
 * default action (signals.c) asks engine 0 to hand the engines to a
 * keeper, as _exit does, and waits for it: the handler itself may not
 * (fork() and the engines' lock are not async-signal-safe, and the thread
 * it interrupted may hold them). Engine 0, between two turns, parks the
 * others, forks the keeper and stays parked: the process dies next. */

int shim_engine_signal_handoff(void)
{
    int n = __atomic_load_n(&G.nrun, __ATOMIC_ACQUIRE);
    if (!n || __atomic_load_n(&G.pid, __ATOMIC_RELAXED) != getpid() ||
        __atomic_load_n(&G.keeper_mode, __ATOMIC_RELAXED) || G.e[0].broken)
        return 0;
    int idle = 0;
    if (atomic_compare_exchange_strong(&G.sig_handoff, &idle, 1)) {
        uint64_t one = 1;
        ssize_t w = write(G.e[0].evfd, &one, sizeof one);
        (void)w;
    }
    return 1;
}

int shim_engine_signal_handed(void)
{
    return atomic_load(&G.sig_handoff) == 2;
}

void shim_keeper_take_signal(struct engine *self)
{
    if (!may_hand_over(0)) { /* an exit or exec got there first */
        atomic_store(&G.sig_handoff, 2);
        return;
    }
    pause_engines(self);
    int fd;
    fork_keeper(0, &fd);
    atomic_store(&G.sig_handoff, 2);
    pthread_mutex_lock(&G.mu);
    while (G.pause_req)
        pthread_cond_wait(&G.cv, &G.mu);
    self->paused = 0;
    pthread_cond_broadcast(&G.cv);
    pthread_mutex_unlock(&G.mu);
}

void shim_engine_exit(void)
{
    int fd;
    if (shim_procenv_foreign())
        return; /* exit() in a child sharing our memory: the engines are its parent's */
    /* The process ends; its engine thread with it. Whatever is left goes
     * on in a keeper. Connections no keeper needs (in TIME_WAIT, or
     * closing with everything acknowledged) end here: say so, and their
     * traces end here. The engines are paused (or none runs). */
    if (shim_engine_handoff(0, &fd) == 0) {
        if (G.pid == getpid() && !G.keeper_mode)
            for (int k = 0; k < G.nrun; k++)
                if (G.e[k].ctx && G.e[k].paused)
                    rudp_ctx_report_remaining(G.e[k].ctx);
        shim_qlog_flush_all();
    }
}

/* ---- fork ---- */

/* Every fork parks the engine at its safe point first: a child forked
 * while the engine thread held an allocator's lock (libasan's is not
 * fork-safe) would inherit it held and hang at its first malloc, and the
 * engine's state is consistent for a keeper only there. */
static int fork_paused;

void shim_engine_atfork_prepare(void)
{
    pthread_mutex_lock(&G.mu);
    int park = G.nrun && !G.broken && G.pid == getpid() && !G.in_handoff && !G.keeper_mode;
    pthread_mutex_unlock(&G.mu);
    fork_paused = 0;
    if (park) {
        pause_engines(NULL);
        fork_paused = 1;
    }
    pthread_mutex_lock(&G.mu);
    shim_ownfds_lock();
    shim_qlog_atfork_prepare();
}

void shim_engine_atfork_parent(void)
{
    shim_qlog_atfork_parent();
    shim_ownfds_unlock();
    if (fork_paused)
        resume_locked();
    fork_paused = 0;
    pthread_mutex_unlock(&G.mu);
}

void shim_engine_atfork_child(void)
{
    /* The prepare handler locked these in this very thread: unlock them
     * (re-initialising a locked mutex is undefined, and TSan says so). */
    shim_qlog_atfork_child(G.in_handoff);
    shim_ownfds_unlock();
    pthread_mutex_unlock(&G.mu);
    if (G.in_handoff)
        return; /* becoming a keeper: the engines' state and fds are the point */
    /* The parent's engines keep serving every connection made before the
     * fork; this child must not hold copies of their fds, or a bridge the
     * parent closes would stay open here. The child gets engines of its
     * own for what it opens itself. The log file and the qlog directory
     * are the child's too: its own connections log and trace there. */
    int keep[2] = {shim_cfg.log_fd > 2 ? shim_cfg.log_fd : -1, shim_cfg.qlog_dirfd};
    shim_close_all_owned(keep, 2);
    shim_control_forget();
    pthread_cond_init(&G.cv, NULL);
    /* Memory of the parent's engines is left as is: it belongs to threads
     * that do not exist here and is never touched again. */
    G.nrun = 0;
    G.broken = 0;
    G.pause_req = 0;
    G.handed_over = 0;
    atomic_store(&G.sig_handoff, 0);
    memset(G.e, 0, sizeof G.e);
}
