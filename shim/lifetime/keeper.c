/*
 * keeper.c: the engine across exec and exit. At exec, exit and _exit,
 * whatever the engine still carries goes on in a keeper: a detached copy of
 * the process that serves it to the end. What fork does to the engines,
 * and the engines' side of each step here (pausing them, their state taken
 * over), are enginectl.c's: this file touches no engine's fields.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
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

/* The engines' listeners, taken once before a walk of every open fd
 * (lis_take), so that each fd is matched against a few inodes rather than
 * against every socket of the engines: a client with 3,500 connections
 * has 3,500 of those, and its exit looked at each for each of its fds
 * (2.4 % of B12's client samples, all at its exit). Where there are more
 * than LIS_MAX, each fd asks the engines as before. */
#define LIS_MAX 64
static struct {
    int n; /* how many the engines have (may exceed LIS_MAX) */
    uint64_t ino[LIS_MAX];
    int backlog[LIS_MAX];
} lis;

static void lis_take(void)
{
    lis.n = shim_engines_listeners(lis.ino, lis.backlog, LIS_MAX);
}

/* The backlog of the listener whose app socket has inode ino, or -1. */
static int lis_backlog(uint64_t ino)
{
    if (lis.n > LIS_MAX)
        return shim_engines_listener_backlog(ino);
    for (int i = 0; i < lis.n; i++)
        if (lis.ino[i] == ino)
            return lis.backlog[i];
    return -1;
}

/* If fd is the app's copy of one of our listeners, listen() on it again. */
static void relisten(int fd)
{
    struct stat st;
    if (lis.n == 0 || fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
        return;
    int backlog = lis_backlog((uint64_t)st.st_ino);
    if (backlog >= 0)
        real_listen(fd, backlog);
}

/* ---- the process that handed over, until it is gone ----
 *
 * A listener lives on in a keeper while some process still holds the
 * app's end of it (check_alive in enginecmd.c asks sock_diag). Right after
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
    if (now < handed_until && real_poll(&p, 1, 0) == 0)
        return 1;
    fd = atomic_exchange(&handed_pidfd, -1);
    if (fd >= 0)
        real_close(fd);
    return 0;
}

/* engine: the one engine this keeper takes (a table of its own), -1 all */
static void keeper_main(int verdict, int engine) __attribute__((noreturn));

/* An open fd of the keeper's that is not the engine's (nor the log's):
 * closed, a listener of the app's relistened first. */
static void drop_fd(int fd)
{
    if (shim_ownfds_has(fd) || (fd == shim_cfg.log_fd && fd > 2))
        return;
    relisten(fd);
    real_close(fd);
}

/* The open fds, by /proc/self/fd rather than by every number up to the
 * limit: a container's is often 1,048,576, and that many fcntl() calls
 * (0.12 us each here: 2.5 ms for 20,000) held a keeper's engines ~0.13 s
 * before it served them. The listing, in number order, goes on past the
 * fds closed meanwhile. */
static int drop_open_fd(int d, const char *name, long fd, void *ctx)
{
    (void)name;
    (void)ctx;
    if (fd != d && fd <= INT_MAX)
        drop_fd((int)fd);
    return 0;
}

static void keeper_main(int verdict, int engine)
{
    if (verdict >= 0) {
        char c;
        ssize_t r;
        do
            r = real_read(verdict, &c, 1);
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
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    /* The keeper's messages and RUDP_STATS go where the program's went if
     * that is a terminal or a file. A pipe or socket is not kept: holding
     * it would keep its reader from seeing EOF (a shell pipeline would
     * wait for the keeper); then they go nowhere, unless RUDP_LOG_FILE. */
    if (shim_cfg.log_fd == 2) {
        struct stat st;
        int copy = -1;
        if (fstat(2, &st) == 0 && (S_ISREG(st.st_mode) || isatty(2)))
            copy = real_fcntl(2, F_DUPFD_CLOEXEC, 3);
        shim_cfg.log_fd = copy >= 0 ? shim_fd_move_high(copy) : -1;
        shim_own_fd(2, 0); /* an engine table's mark (enginestart.c): the rule above decides */
    }
    /* Keep only the engine's fds (and a log file): holding the app's fds
     * would keep its sockets, pipes and terminal open. Our copies of the
     * app's listeners first get a listen(): that makes this process their
     * credential, so the processes accepting on them take our connections
     * (ident.c). */
    lis_take();
    if (shim_dir_each_num("/proc/self/fd", drop_open_fd, NULL) < 0) {
        /* no /proc: every number up to the limit */
        int maxfd = (int)sysconf(_SC_OPEN_MAX);
        if (maxfd < 0 || maxfd > (1 << 20))
            maxfd = 1 << 20;
        for (int fd = 0; fd < maxfd; fd++)
            if (fd == verdict || real_fcntl(fd, F_GETFD) >= 0)
                drop_fd(fd);
    }
    if (verdict < 0)
        watch_handed(shim_engines_pid());
    /* Not the program any more, in ps and in the log: a supervisor must
     * not take this process for the service still running. */
    shim_log_keeper();
    shim_proctitle_keeper();
    shim_slots_keeper();
    shim_names_atfork_child(); /* the parent's key stays the parent's */
    /* this process is the keeper now: the engines are its, their
     * listeners checked soon (the app's copies may be gone) */
    int nrun;
    pid_t handed = shim_engines_keep(engine, &nrun);
    if (verdict >= 0 && engine <= 0) /* the exec happened: the new image asks for the slabs */
        shim_execpass_keeper(handed);
    SHIM_LOG(RUDP_LOG_INFO, "keeper %d took over %d engine(s) of pid %d", (int)getpid(), nrun,
             (int)handed);
    shim_relays_adopt(); /* connections carried on over kernel TCP: their threads here */
    shim_engines_run_kept(); /* until the work of each is done */
    shim_relays_wait(); /* connections carried on over kernel TCP */
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

static pid_t fork_keeper(int for_exec, int *abort_fd);
static uint64_t socket_ino_at(int dir, const char *name);



/* ---- the listeners at exit ----
 *
 * Kernel TCP frees a listener's port when the last process holding the
 * socket is gone, before its parent's wait() returns. A keeper took the
 * listeners on and stopped each only once the process that handed over
 * had gone and it had looked (HANDED_POLL, as scheduled): meanwhile the
 * port was still bound and listening, and a server restarted at once
 * failed its bind with EADDRINUSE (t_supervise_go_http's plain server,
 * once under load; 6 of 10 tries of a supervised Go server ending and
 * `ss` right after). So at an exit the program's own copies of its
 * listeners are closed first (the process is ending: the kernel closes
 * them a moment later), and each listener nobody else holds (no forked
 * child, no process it was passed to) stops in this process, with the
 * engines paused, before any keeper is forked: its port is free when the
 * process is, and a keeper is forked only for what is left. Not at exec
 * (the new image holds the copies), and not from a thread whose fd table
 * is not the program's (an engine's own: a fatal signal's hand-over). */
static int close_listener(int d, const char *name, long fd, void *ctx)
{
    (void)ctx;
    uint64_t ino = socket_ino_at(d, name);
    if (ino && fd <= INT_MAX && lis_backlog(ino) >= 0)
        real_close((int)fd);
    return 0;
}

static void listeners_at_exit(void)
{
    if (shim_fds_in_engines() != 0)
        return;
    lis_take();
    char path[48];
    shim_fds_program_fd_dir(path);
    if (lis.n > 0 && shim_dir_each_num(path, close_listener, NULL) < 0)
        return; /* no /proc: the keeper finds them, as before */
    shim_engines_stop_unheld_listeners();
}

pid_t shim_keeper_handoff(int for_exec, int *abort_fd)
{
    *abort_fd = -1;
    if (!shim_engines_may_hand_over(for_exec))
        return 0;
    shim_engines_pause(NULL);
    if (!for_exec)
        listeners_at_exit();
    return fork_keeper(for_exec, abort_fd);
}

/* ---- carried into the engines' own table ----
 *
 * Where the engines keep their fds in a table of their own
 * (enginestart.c), the keeper is forked from engine 0's thread and so
 * inherits that table; what it needs of the program's table is copied
 * into it first: the exec's verdict pipe, the fds execpass.c and
 * exechand.c hand to the new image, and the app's listeners (relisten).
 * The child takes the copies in place of the program's numbers; the
 * parent closes them after the fork. */
#define CARRY_MAX (SHIM_SLABS_MAX + 16)
typedef struct carry {
    int *at[CARRY_MAX]; /* the fields naming the program's fds */
    int copy[CARRY_MAX];
    int n;
    int extra[CARRY_MAX]; /* listeners' copies, for relisten */
    int nextra;
    int verdict; /* the verdict pipe's copy, or -1 */
} carry;

static void carry_field(int *fd, void *ctx)
{
    carry *c = ctx;
    if (*fd < 0 || c->n == CARRY_MAX)
        return;
    int copy = shim_fds_take_program(*fd);
    if (copy < 0)
        return;
    c->at[c->n] = fd;
    c->copy[c->n++] = shim_fd_move_high(copy);
}

/* The inode of the socket the link at dir/name names, 0 if none. */
static uint64_t socket_ino_at(int dir, const char *name)
{
    char t[48];
    ssize_t n = readlinkat(dir, name, t, sizeof t - 1);
    if (n < 9 || memcmp(t, "socket:[", 8) != 0 || t[n - 1] != ']')
        return 0;
    uint64_t ino = 0;
    for (ssize_t i = 8; i < n - 1; i++) {
        if (t[i] < '0' || t[i] > '9')
            return 0;
        ino = ino * 10 + (uint64_t)(t[i] - '0');
    }
    return ino;
}

static int carry_listener(int d, const char *name, long fd, void *ctx)
{
    carry *c = ctx;
    uint64_t ino = socket_ino_at(d, name);
    if (!ino || lis_backlog(ino) < 0)
        return 0;
    int copy = shim_fds_take_program((int)fd);
    if (copy >= 0)
        c->extra[c->nextra++] = shim_fd_move_high(copy);
    return c->nextra == CARRY_MAX;
}

/* The app's copies of our listeners in the program's table, by inode. On
 * an engine thread: no libc allocator (shim_dir_each_num). No /proc (a
 * chroot): the keeper does without listen(). */
static void carry_listeners(carry *c)
{
    lis_take();
    if (lis.n == 0)
        return;
    char path[48];
    shim_fds_program_fd_dir(path);
    shim_dir_each_num(path, carry_listener, c);
}

/* first: the keeper of the first engine, which passes what the exec
 * passes on (execpass.c, exechand.c) and serves the listeners; another
 * engine's keeper (a table of its own, client connections only) takes the
 * verdict pipe alone. */
static void carry_take(carry *c, int *verdict, int first)
{
    memset(c, 0, sizeof *c);
    c->verdict = -1;
    if (*verdict >= 0 && (c->verdict = shim_fds_take_program(*verdict)) < 0)
        *verdict = -1; /* then the keeper does not wait for the exec */
    if (!first)
        return;
    shim_execpass_each_fd(carry_field, c);
    shim_exechand_each_fd(carry_field, c);
    carry_listeners(c);
}

static void clear_field(int *fd, void *ctx)
{
    (void)ctx;
    *fd = -1; /* another table's number: not this keeper's to use */
}

/* In the keeper: the copies are the fields' fds now, kept (owned); for
 * another engine's keeper, the fields are none. */
static void carry_adopt(carry *c, int *verdict, int first)
{
    *verdict = c->verdict;
    if (!first) {
        shim_execpass_each_fd(clear_field, NULL);
        shim_exechand_each_fd(clear_field, NULL);
        return;
    }
    for (int i = 0; i < c->n; i++) {
        *c->at[i] = c->copy[i];
        shim_own_fd(c->copy[i], 1);
    }
}

/* In the parent, after the fork. */
static void carry_drop(carry *c)
{
    if (c->verdict >= 0)
        real_close(c->verdict);
    for (int i = 0; i < c->n; i++)
        real_close(c->copy[i]);
    for (int i = 0; i < c->nextra; i++)
        real_close(c->extra[i]);
}

typedef struct fork_req {
    int verdict, wfd; /* the exec's verdict pipe's ends, or -1 */
    int engine;       /* the one engine the keeper takes (its own table), or -1: all */
    pid_t mid;        /* the first child, or -1 */
} fork_req;

/* The double fork, on a thread of the table the keeper takes
 * (shim_engines_run_parked). */
static void fork_body(void *arg)
{
    fork_req *r = arg;
    int apart = r->engine >= 0;
    int first = r->engine <= 0;
    carry c;
    if (apart) {
        int for_exec = r->verdict >= 0;
        carry_take(&c, &r->verdict, first);
        if (for_exec && r->verdict < 0) {
            /* no copy of the verdict pipe (a full table): a keeper that
             * could not tell a failed exec would drive the engine with
             * the program; none, and the hand-over fails (fork_keeper) */
            carry_drop(&c);
            return;
        }
    }
    shim_engines_set_handoff(1);
    pid_t mid = fork();
    if (mid == 0) {
        pid_t k = fork();
        if (k == 0) {
            if (apart)
                carry_adopt(&c, &r->verdict, first); /* the write end is not in this table */
            else if (r->wfd >= 0)
                real_close(r->wfd);
            keeper_main(r->verdict, r->engine);
        }
        syscall(SYS_exit_group, k < 0 ? 1 : 0);
    }
    shim_engines_set_handoff(0);
    if (apart)
        carry_drop(&c);
    r->mid = mid;
    if (mid > 0) {
        int st = 0;
        pid_t w;
        while ((w = waitpid(mid, &st, 0)) < 0 && errno == EINTR)
            ;
        if (w == mid && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
            r->mid = -1; /* the keeper's own fork failed: none */
    }
}

/* tw_leave on e's own thread, where its reserve sockets are. */
static void tw_leave_one(void *e)
{
    shim_tw_leave(e);
}

/* The engines parked: fork the keeper (see shim_keeper_handoff). Where
 * the engines keep their fds in tables of their own (enginestart.c), a
 * keeper for each engine with work left, forked from its thread, so that
 * it inherits that table: the first engine's, which holds the listeners
 * and passes what an exec passes on, whenever any is needed. The pid
 * returned is the first keeper's; an exec that fails tells them all
 * (SHIM_ENGINES_MAX bytes on *abort_fd). */
static pid_t fork_keeper(int for_exec, int *abort_fd)
{
    int n = shim_engines_nrun();
    int apart = shim_fds_apart();
    if (!shim_engine_busy() && !shim_relays_live()) {
        /* No keeper: what the traces hold is written now (exec replaces
         * the memory, _exit runs no destructor), with the engines parked;
         * a listener's TIME_WAIT goes to the kernel (timewait.c), from
         * each engine's own table. */
        shim_qlog_flush_all();
        for (int k = 0; k < n; k++)
            shim_engines_run_parked(shim_engine_nth(k), tw_leave_one, shim_engine_nth(k));
        if (for_exec)
            shim_engine_resume();
        return 0;
    }
    int pfd[2] = {-1, -1};
    if (for_exec && pipe2(pfd, O_CLOEXEC) < 0) {
        shim_engine_resume();
        return -1;
    }
    /* The relays' threads stop where their state is whole: the keeper
     * carries on from there (relay.c); ours stay parked, and end with the
     * process, unless the hand-over fails (below) or the exec does. */
    shim_relays_park();
    pid_t first = -1;
    int missing = 0; /* a busy engine without its keeper */
    int forked = 0;  /* keepers that read the verdict pipe */
    for (int k = 0; k < (apart ? n : 1); k++) {
        struct engine *e = shim_engine_nth(k);
        int relayed = 0; /* relays in e's own table (relay.c) */
        if (apart && k > 0 && !shim_engine_busy_one(e))
            shim_engines_run_parked(e, shim_relays_count_here, &relayed);
        if (apart && k > 0 && !shim_engine_busy_one(e) && !relayed)
            continue; /* its part ends with the process, said at exit */
        fork_req r = {.verdict = pfd[0], .wfd = pfd[1], .engine = apart ? k : -1, .mid = -1};
        shim_engines_run_parked(e, fork_body, &r);
        if (k == 0)
            first = r.mid;
        forked += r.mid > 0;
        if (r.mid < 0) {
            missing = 1;
            if (for_exec)
                break; /* an exec's hand-over is all or nothing (below) */
        }
    }
    if (pfd[0] >= 0)
        real_close(pfd[0]);
    if (first < 0 || (for_exec && missing)) {
        if (pfd[1] >= 0) {
            /* the keepers forked already end (exec.c's abort bytes); with
             * none, nobody holds the read end (a write would raise SIGPIPE) */
            char ab[SHIM_ENGINES_MAX];
            memset(ab, 'x', sizeof ab);
            if (forked) {
                ssize_t w = real_write(pfd[1], ab, sizeof ab);
                (void)w;
            }
            real_close(pfd[1]);
        }
        SHIM_LOG(RUDP_LOG_WARN, "no keeper for an engine's connections (%s): %s",
                 for_exec ? "exec" : "exit", for_exec ? "the exec goes on without one" :
                                                        "those end with the process");
        shim_relays_unpark();
        shim_engine_resume();
        return -1;
    }
    *abort_fd = pfd[1];
    return first;
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

void shim_keeper_take_signal(struct engine *self)
{
    if (!shim_engines_may_hand_over(0)) { /* an exit or exec got there first */
        shim_engines_signal_done(NULL);
        return;
    }
    shim_engines_pause(self);
    listeners_at_exit();
    int fd;
    fork_keeper(0, &fd);
    shim_engines_signal_done(self); /* parked until the process dies */
}

void shim_keeper_exit(void)
{
    int fd;
    if (shim_procenv_foreign())
        return; /* exit() in a child sharing our memory: the engines are its parent's */
    /* The process ends; its engine thread with it. Whatever is left goes
     * on in a keeper. Connections no keeper needs (in TIME_WAIT, or
     * closing with everything acknowledged) end here: say so, and their
     * traces end here. The engines are paused (or none runs). */
    if (shim_keeper_handoff(0, &fd) == 0) {
        shim_engines_report_remaining();
        shim_qlog_flush_all();
    }
}
