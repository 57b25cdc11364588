/*
 * rudp-supervise: runs a program the preload cannot reach (statically
 * linked, Go) so that its TCP connect() goes over rudp, the engine running
 * in this process (docs/reach.md says what works and what not).
 *
 *   rudp-supervise [--shim PATH] [--pass | --debug] [--] PROGRAM [ARG...]
 *   rudp-supervise --probe | --classify PROGRAM
 *
 * rudp-run runs it (docs/reach.md): for PROGRAM when --classify says
 * the preload cannot reach it and --probe says it can work here.
 *
 * Two stages in one binary:
 *  1. Without the shim: fork; the child sets PR_SET_NO_NEW_PRIVS, installs a
 *     seccomp filter that reports connect() to a user-notification listener
 *     (SECCOMP_FILTER_FLAG_NEW_LISTENER), hands the listener to the parent
 *     (SCM_RIGHTS) and execs PROGRAM. The parent forks again: that child
 *     execs this binary with LD_PRELOAD=librudp_shim.so ("--serve FD
 *     PID"), the serving process: from there on every socket call of it
 *     is the shim's, exactly as in a preloaded program, so the connect
 *     path is the shim's own code and needs no second front end. The
 *     forks come before the shim is loaded, so the program's image never
 *     holds a shim or its threads. The parent stays the program's parent:
 *     it returns the program's status when the program exits, as without
 *     the supervisor, while the serving process serves on what the
 *     program left (a daemon's child, the last bytes of its connections)
 *     until every task under the filter is gone (review 8).
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
 * program's status (128+N for a signal N) when the program exits.
 * SIGTERM, SIGHUP and the like sent to the supervisor (the pid its
 * caller knows) go on to the program; SIGINT and SIGQUIT are ignored (the
 * terminal sends them to the program too). The serving process ignores
 * them all; should it end while the program runs, the program is killed
 * and its status is the serving process's.
 *
 * The files, one responsibility each (this header is what they share):
 *   main.c     the command line
 *   classify.c --classify: which front end reaches a program (rudp-run's
 *              automatic choice)
 *   probe.c    --probe: can the supervisor work here
 *   start.c    stage 1: the filter, the forks, the exec; the wait for
 *              the program, the signals
 *   serve.c    stage 2: the notification loop, a handler per call; the
 *              bridges placed so far
 *   program.c  reaching into the program: its fds (pidfd_getfd, NOTIF_ADDFD),
 *              its memory, the answers (NOTIF_SEND)
 *   connect.c  connect()
 *   listen.c   bind(), listen(), accept(), accept4()
 *   acceptq.c  connections accepted for an interrupted accept(), held
 *   acceptw.c  the blocking accept() calls that wait, parked in one thread
 *   pool.c     the worker threads of the calls that may wait
 *   epoll.c    the program's epoll registrations and O_ASYNC, carried
 *              over a swap
 *   options.c  getsockname(), getpeername(), getsockopt(), setsockopt(),
 *              ioctl(SIOCOUTQ, SIOCOUTQNSD)
 *   fastopen.c sendto()/sendmsg() with MSG_FASTOPEN
 *   sendaddr.c sendto() with an address on a bridge
 *   escape.c   the fds a connect needs, kept in reserve; a connect that
 *              cannot be carried still goes as the preload's fallback
 *              lets one go (announced and counted), or fails ENOBUFS
 */
#ifndef RUDP_SUPERVISE_H
#define RUDP_SUPERVISE_H

#include <linux/seccomp.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "../../shim/state/front.h"

/* Defined by the shim, which this binary runs under in its serving stage
 * (start.c); weak, so that the first stage, without it, links and runs. */
__attribute__((weak, visibility("default"))) int
shim_front_register(const shim_front_remote *r);

/* The program's name in messages. */
extern const char *me;

/* A line on stderr: "rudp-supervise: " fmt "\n". Hidden: libc has a
 * warn() too, which an exported one would interpose for every library. */
__attribute__((format(printf, 1, 2), visibility("hidden"))) void warn(const char *fmt, ...);

/* ---- stage 1 (start.c) ---- */

/* The shim beside this binary into out (len bytes): build/bin/ ->
 * build/, PREFIX/bin -> PREFIX/lib. 0, or -1: none found. */
int find_shim(char *out, size_t len);

/* Runs prog under the filter, and this binary again with the shim as
 * stage 2 in a process of its own (pass: 0 redirect, 1 --pass, 2
 * --debug); waits for prog and returns its status (128+N for a signal
 * N), or 127 when it cannot start it. */
int start(const char *shim, int pass, char **prog);

/* The caller's signals once the program runs: those meant for the
 * program (SIGTERM...) go on to child, SIGINT and SIGQUIT too unless the
 * terminal sent them (the program has those already), the mask stage 1
 * set lifted. */
void signals_setup(pid_t child);
/* Stage 2's (the serving process's, whose pid ss shows for the program's
 * sockets): the same, on to prog through a pidfd. It serves until every
 * task under the filter is gone, whoever signals it. */
void signals_serving(pid_t prog);
void signals_block_thread(void);

/* Installs stage 1's filter in this process (PR_SET_NO_NEW_PRIVS first):
 * its listener's fd, or -1 with seccomp()'s errno. */
int install_filter(void);

/* Sends fd over the unix socket sock (SCM_RIGHTS, one byte): 0 or -1. */
int send_fd(int sock, int fd);

/* The fd send_fd() sent over sock (close-on-exec), or -1. */
int recv_fd(int sock);

/* ---- rudp-run's choice (classify.c, probe.c) ---- */

/* Which front end reaches a program: classify()'s result, and the exit
 * status of rudp-supervise --classify. */
enum {
    CLASS_SUPERVISE = 0, /* statically linked, Go, not glibc: the supervisor */
    CLASS_PRELOAD = 1,   /* dynamically linked against glibc: the preload */
    CLASS_NONE = 3,      /* neither: not a program of our architecture */
    CLASS_UNKNOWN = 4,   /* not ELF, unreadable: the preload, as ever */
};

/* Which front end reaches the program at path, read from its ELF headers,
 * with why in words into why (len bytes): "a Go program (...)",
 * "statically linked (...)". A script is its interpreter's (#! followed
 * as the kernel follows it, 4 levels deep at most). */
int classify(const char *path, char *why, size_t len);

/* Tries, on a child of this process, every kernel mechanism stage 2 needs:
 * the filter and its listener (seccomp user notification), a notification
 * received, the calling thread's pidfd (PIDFD_THREAD, Linux 6.9), its fd
 * copied (pidfd_getfd), its memory written (process_vm_writev), a new fd
 * installed as the call's result (SECCOMP_ADDFD_FLAG_SEND, 5.14). Returns
 * 0, or -1 with the step that failed and why in why (len bytes). Not
 * after the shim is loaded: it forks. */
int probe(char *why, size_t len);

/* ---- stage 2 (serve.c) ---- */

/* The bridges placed lately, by inode. A connect() interrupted by a signal
 * after its NOTIF_ADDFD (Go preempts its threads with SIGURG, SA_RESTART)
 * is made again by the kernel on the bridge: it must then go on with the
 * same connection, as TCP's restarted connect does, not make a second.
 * answered: connect() returned once; a later one says EISCONN. Found by
 * a hash of the inode: each option or name call of the program looks its
 * socket up, a listener's for years maybe. An entry goes only once no
 * process holds its file (a sweep of /proc/PID/fd when the table is full,
 * then it grows): a ring that overwrote the oldest lost long-lived
 * listeners and bridges after 65,536 placements (review 2). */
#define PLACED_BUCKETS 16384
#ifndef PLACED_SWEEP /* -D: a test build sweeps early */
#define PLACED_SWEEP 4096 /* entries before the first sweep */
#endif
struct placed {
    uint64_t ino;     /* the bridge's; 0: a free entry */
    uint64_t tcp_ino; /* the program's socket it replaces */
    int held;         /* the bridge, when the call was interrupted before
                       * NOTIF_ADDFD: put in place at the restart; or -1 */
    int answered;
    int next;         /* the next entry of its bucket (or free list), or -1 */
    pid_t tid;        /* where the program holds it: the thread that placed */
    int fd;           /* it (its fd table) and the number; fd -1: not placed */
    uint64_t gen;     /* s->placed_adds when added: a sweep spares later ones */
    int64_t since;    /* when held (CLOCK_MONOTONIC seconds) */
};
#define HELD_SECONDS 2 /* a held bridge not taken by then goes (placed_expire) */

/* The connections of a listener (inode lino) accepted for a call that a
 * signal interrupted before NOTIF_ADDFD returned them, held for its next
 * accept() (acceptq.c), and the accept() calls waiting on it. ev is
 * readable while one is held. */
#define ACCEPTQ_LISTENERS 64
#define ACCEPTQ_HELD 8
struct acceptq {
    uint64_t lino; /* 0: a free entry */
    int ev;        /* an eventfd */
    int waiters;
    int n;
    struct {
        int fd;
        socklen_t len;
        struct sockaddr_storage ss;
    } held[ACCEPTQ_HELD];
};

struct sup {
    int lfd;
    int pass;
    int debug; /* --debug: every notification and its answer on stderr */
    struct seccomp_notif_sizes sizes;
    pthread_mutex_t mu;
    struct placed *placed;      /* placed_cap entries, grown by doubling */
    int bucket[PLACED_BUCKETS]; /* the first entry of each, or -1 */
    unsigned placed_cap, placed_n; /* entries made, in use */
    int placed_free;               /* the first free entry, or -1 */
    unsigned placed_sweep_at;      /* placed_n at which a full table is swept */
    int placed_sweeping;
    uint64_t placed_adds;
    unsigned placed_held;       /* entries holding a bridge */
    int wake;                   /* an eventfd: a bridge held, for the loop's timer */
    struct acceptq acceptq[ACCEPTQ_LISTENERS]; /* under mu */
    struct pool {
        pthread_mutex_t mu;
        pthread_cond_t cv;
        struct job *head, *tail;
        unsigned queued, idle, threads;
    } pool;
};

struct job {
    struct sup *sup;
    struct seccomp_notif *req; /* sizes.seccomp_notif bytes */
    struct job *next;          /* in the pool's queue */
    uint64_t inflight;         /* an accept the waiter sent: its listener */
    int held;                  /* and the copy of it the call held, or -1 */
};

/* ---- the blocking accepts that wait, in one thread (acceptw.c) ---- */

/* Parks job j, an accept() or accept4() that would wait (a blocking
 * listener we placed, nothing to take): it goes to a worker once its
 * listener is readable. 0, or -1: not parked, run it now. In the loop:
 * never waits. */
int acceptw_park(struct sup *s, struct job *j);
/* The worker is done with the accept the waiter sent for listener lino. */
void acceptw_done(uint64_t lino);

/* ---- the workers (pool.c) ---- */

/* The calls that may wait (connect, accept) run in a pool of worker
 * threads: an idle one takes the job, or a new one is started for it
 * (a blocking connect waits for its handshake, so the pool grows with the
 * calls waiting at once); POOL_KEEP of them stay when idle. */
#define POOL_KEEP 4
void pool_init(struct sup *s);
/* Runs job j (job_run) in a worker; in the caller if none can start. */
void pool_submit(struct sup *s, struct job *j);
/* Answers j's notification with its handler and frees j (serve.c). */
void *job_run(void *j);

/* Serves the notifications of listener lfd until every task under the
 * filter is gone, then exits (0) once its connections have delivered
 * (pass as for start()). child, the program's pid, is in our argv for
 * rudp-stat: we are not its parent. */
int serve(int lfd, pid_t child, int pass);

/* The bridge with inode ino placed at the program's socket tcp_ino; held:
 * the bridge itself when the call was interrupted before NOTIF_ADDFD, to
 * be put in place at the restart, else -1. */
void placed_add(struct sup *s, uint64_t ino, uint64_t tcp_ino, int held);

/* The bridge ino is at fd in the fd table of the program's thread tid
 * (NOTIF_ADDFD done): where reach_app_end finds it. fd
 * PLACED_PENDING: an ADDFD_FLAG_SEND is under way, which answers the
 * program before we learn the number: the program may already use the
 * connection (and its peer reset it) when reach_app_end asks, so
 * it waits for the number (briefly: the next placed_at comes at once). */
#define PLACED_PENDING (-2)
void placed_at(struct sup *s, uint64_t ino, pid_t tid, int fd);

/* The remote front end's way to the program's end of a bridge
 * (shim/state/front.h, registered by serve()): a short-lived copy of the
 * program's end of the bridge whose inode is ino, taken from the program
 * (pidfd_getfd) at the number noted by placed_at and checked by inode, or
 * -1 (not placed, the thread gone, the number reused). The caller closes
 * it. The engine reaches the program's end through it: a peer's reset
 * as ECONNRESET, connect's send buffer given back. */
int reach_app_end(uint64_t ino);

/* The inode of the latest file placed in place of the program's socket
 * tcp_ino (a listener, when tcp_ino listens) where the program holds it
 * still (placed_at), or 0: none. */
uint64_t placed_listener_of(struct sup *s, uint64_t tcp_ino);

/* The bridge held for the program's socket tcp_ino, taken (-1: none). */
int placed_take_held(struct sup *s, uint64_t tcp_ino);

/* Closes the bridges held longer than HELD_SECONDS: the program did not
 * restart its connect (it closed the socket, or gave up), so the connection
 * must not go on (review 11). Returns whether some are still held. */
int placed_expire(struct sup *s);

/* Returns the state noted for ino (-1: not ours; 0, 1: a bridge, before
 * and after its connect() returned; PLACED_LEFT) and, with mark, notes
 * that connect() has now returned. */
int placed_state(struct sup *s, uint64_t ino, int mark);

/* The state of a kernel socket the shim put in place of a bridge (a
 * connect() after a failed handshake, connect(AF_UNSPEC): connect.c): not
 * a bridge, so a connect, listen or accept on it goes the way of a new
 * socket's, but its names and options are the shim's (the pending
 * ECONNRESET, the failed attempt's port in its name). */
#define PLACED_LEFT 2
void placed_left(struct sup *s, uint64_t ino);

/* placed_state(s, ino, 0) for a bridge; -1 for anything else (PLACED_LEFT). */
int placed_bridge(struct sup *s, uint64_t ino);

/* Puts the bridge (our copy; inode bino) that the shim made for the
 * program's socket tcp_ino at the program's fd, its epoll registrations
 * kept (add_fd_keep_epoll), and notes it: a fresh bridge is recorded
 * (placed_add), one taken back with placed_take_held has its record; both
 * then where they are (placed_at). connect() and sendto(MSG_FASTOPEN)
 * share it (connect.c). Returns add_fd_keep_epoll's answer: 0 placed;
 * -ENOENT the call was interrupted (or its thread is gone): the bridge is
 * held for the restart (placed_add: the record owns bridge now); -ESTALE
 * another file at fd meanwhile, or none; another -errno: the number cannot take it
 * (EBADF: at or past the program's RLIMIT_NOFILE). On an error but
 * -ENOENT the caller still owns bridge, and answers. */
int place_bridge(struct sup *s, const struct seccomp_notif *req, int bridge, uint64_t bino,
                 int fd, uint64_t tcp_ino, int fresh);

/* A connect() or sendto(MSG_FASTOPEN) restarted after a signal came
 * between the shim's connect and NOTIF_ADDFD: the bridge held for the
 * program's socket (our copy *copy, its stat *st) is put at fd now
 * (place_bridge), in *copy's place (closed): *copy and *st are then the
 * bridge's. Returns 0: none held, nothing changed; 1: placed; -ENOENT:
 * interrupted again and held again (*copy -1); another -errno: it cannot
 * be placed (*copy, the bridge, is the caller's to close). */
int place_held(struct sup *s, const struct seccomp_notif *req, int fd, int *copy,
               struct stat *st);

/* The answer to a connect() or sendto(MSG_FASTOPEN) whose number names no
 * file in the caller's table: EBADF now, never the kernel's own lookup
 * later (connect.c says why); pidfd (if >= 0) closed. */
void no_file(struct sup *s, const struct seccomp_notif *req, int pidfd);

/* The handlers, one per call, each in the file of its call: they answer
 * the notification, and free nothing of req. */
void on_connect(struct sup *s, struct seccomp_notif *req);
void on_bind(struct sup *s, struct seccomp_notif *req);
void on_listen(struct sup *s, struct seccomp_notif *req);
void on_accept(struct sup *s, struct seccomp_notif *req);
/* on_accept on held, a copy of the listener the parked call held since it
 * began (consumed), not the file at the program's number now: TCP's
 * blocking accept() keeps its file when another thread closes the fd. */
void on_accept_held(struct sup *s, struct seccomp_notif *req, int held);
void on_name(struct sup *s, struct seccomp_notif *req);
void on_sockopt(struct sup *s, struct seccomp_notif *req);
void on_ioctl(struct sup *s, struct seccomp_notif *req);
/* sendto()/sendmsg() with MSG_FASTOPEN: a connect, then the data */
void on_fastopen(struct sup *s, struct seccomp_notif *req);
/* sendto() with an address, without MSG_FASTOPEN: on a bridge, the data
 * sent as TCP sends it (the address ignored) */
void on_sendaddr(struct sup *s, struct seccomp_notif *req);
/* The same call continued at once when its fd is not a bridge (a UDP
 * program's datagram): 1; 0: a bridge, for on_sendaddr in a worker. In
 * the loop: never waits. */
int sendaddr_elsewhere(struct sup *s, struct seccomp_notif *req);

/* ---- fds in reserve; the connect that cannot be carried (escape.c) ---- */

/* Raises our soft RLIMIT_NOFILE to the hard one and takes the reserve:
 * at the start of stage 2, before the engine. */
void reserve_init(void);
/* Takes the reserve again where fds allow (after a connect). */
void reserve_refill(void);
/* On err EMFILE or ENFILE: gives the reserve up, for the caller to try
 * again; 1 if there was some, else 0. */
int reserve_release(int err);
/* A call that failed with err, short of something (short_of), is tried
 * again: 1, after the reserve was given up (the first time) or a nap; 0:
 * not short, or short still SHORT_WAIT_MS after the first failure
 * (*until, 0 before it), or the notification id is gone. */
int short_again(int err, long long *until, struct sup *s, uint64_t id);
/* What err says is short, for escape's line: NULL when err is not a
 * shortage of ours (EMFILE, ENFILE, ENOMEM, ENOBUFS) but a real answer. */
const char *short_of(int err);
/* A connect to `to` (len bytes) that the supervisor cannot carry for
 * want of something (err, what: short_of's words), the program's socket
 * left as it was: 0, to continue it over kernel TCP where the preload's
 * fallback is on (RUDP_FALLBACK, the default without a key), or ENOBUFS,
 * its answer, where it is off. Said at warn once per destination,
 * counted either way (escape_stats). */
int escape(const struct sockaddr_storage *to, socklen_t len, int err, const char *what);
/* escape() for the call req (its copies of the program's fds closed by
 * the caller), and its answer: CONTINUE, or escape's errno. An address
 * not inet (the socket could not be looked at) is continued as is. */
void escape_answer(struct sup *s, const struct seccomp_notif *req,
                   const struct sockaddr_storage *to, socklen_t len, int err, const char *what);
/* The counters above as stats lines (shim/state/front.h, registered by
 * serve(): RUDP_STATS and rudp-stat print them with the engine's). */
void escape_stats(void (*line)(void *, const char *), void *arg);

/* ---- accepted connections held for a restarted accept() (acceptq.c) ---- */

/* A call waits on listener lino: its entry's eventfd (readable while a
 * connection is held for it), or -1 (no entry free: the caller then finds
 * what is held when it looks again). Each call is matched by a release. */
int acceptq_wait_begin(struct sup *s, uint64_t lino);
void acceptq_wait_end(struct sup *s, uint64_t lino);

/* Holds connection fd (its peer's address ss, len) for lino's next
 * accept(); past ACCEPTQ_HELD the oldest is closed (its peer sees the end,
 * as before). */
void acceptq_hold(struct sup *s, uint64_t lino, int fd, const struct sockaddr_storage *ss,
                  socklen_t len);

/* The oldest connection held for lino (its address into ss, len), or -1. */
int acceptq_take(struct sup *s, uint64_t lino, struct sockaddr_storage *ss, socklen_t *len);

/* ---- epoll registrations carried over a swap (epoll.c) ---- */

/* One registration of the program's: in its epoll set epfd, with events
 * and data as epoll_ctl was given them. */
struct epreg {
    int epfd;
    uint32_t events;
    uint64_t data;
};

/* The registrations of the program's fd (whose file has inode ino) in the
 * epoll sets of thread tid's fd table, as /proc lists them, into r (at
 * most max); returns how many. Read before the swap. */
int epoll_regs_find(pid_t tid, int fd, uint64_t ino, struct epreg *r, int max);

/* After the swap: the same registrations (r, n) for the file now at the
 * program's fd (inode ino), under the same fd number, taken off the file
 * it replaced (old, our copy of it; -1: none); and, async being its
 * status flags with O_ASYNC, O_ASYNC noted at that number (si_fd).
 * Returns how many registrations were made. */
int epoll_regs_carry(pid_t tid, int fd, uint64_t ino, int old, const struct epreg *r, int n,
                     int async);

/* The program's registrations of fd (the file ino) before a swap, made
 * again for the file src put at fd with add_fd(): add_fd's result, or
 * -ESTALE when fd no longer names the file ino, another file or none
 * (nothing placed). */
int add_fd_keep_epoll(struct sup *s, const struct seccomp_notif *req, int src, int fd,
                      uint64_t ino);

/* ---- the program (program.c) ---- */

/* The notification id still waits for its answer (its thread lives). */
int notif_valid(int lfd, uint64_t id);

/* Answers notification id: CONTINUE when cont, else val or -err.
 * Returns 0, or -1 when the answer went nowhere (the call was interrupted
 * by a signal, or the thread is gone: ENOENT). */
int respond(struct sup *s, uint64_t id, int cont, int64_t val, int err);

/* A pidfd for the calling thread (tid), whose fd table pidfd_getfd reads.
 * A pidfd through which thread tid's fds are reached: the thread's own
 * (PIDFD_THREAD, 6.9+); before 6.9 (the flag refused: EINVAL) its thread
 * group's (Tgid in /proc/TID/status), when the thread shares the group
 * leader's fd table (kcmp KCMP_FILES), as threads but those that
 * unshare(CLONE_FILES) do: pidfd_getfd reads the leader's table, and
 * process_vm_* and NOTIF_ADDFD take the tid itself on every kernel. -1
 * with errno otherwise (ESRCH: gone; EXDEV: a table of its own; ENOSYS:
 * no kcmp to tell). */
int pidfd_for(pid_t tid);

/* A copy of the calling thread's fd (-1: none), its pidfd in *pidfd (or
 * -1), and the copy's inode in *ino; taken only while the notification is
 * valid (the thread, not a new process with its pid). */
int take_fd(struct sup *s, const struct seccomp_notif *req, int fd, int *pidfd,
            uint64_t *ino);

/* The start of the text file path (/proc's), at most len - 1 bytes,
 * NUL-terminated, into buf: 0, or -1 unreadable or empty. */
int proc_text(const char *path, char *buf, size_t len);

/* Whether thread tid's process may share its fd table with another task
 * (more than one thread: /proc/TID/status "Threads:"); 1 when unreadable.
 * TCP's blocking accept() holds its listener's file (fdget) only then. */
int fd_table_shared(pid_t tid);

/* The socket option opt (SOL_SOCKET) of fd, an int; -1 on error. */
int sock_int(int fd, int opt);

/* fd is a TCP socket (IPv4 or IPv6). */
int is_tcp(int fd);

/* Puts src at the program's fd number (its close-on-exec kept). Returns
 * 0, or -errno: -ENOENT when the call was interrupted or the thread is
 * gone (a restart may come), else the number cannot be placed (EBADF: at
 * or past the program's RLIMIT_NOFILE; EBUSY: a slot being allocated). */
int add_fd(struct sup *s, const struct seccomp_notif *req, int src, int fd);

/* Whether socket fd (our copy of thread tid's) is of the supervisor's
 * network namespace: the engine's UDP sockets are made in ours, so one of
 * another namespace (unshare -n, setns) stays kernel TCP, which reaches
 * only what that namespace does (review 1; said once at warn). */
int same_netns(pid_t tid, int fd);

/* Whether thread tid has capability cap in effect (/proc/TID/status
 * CapEff; the caller checks NOTIF_ID_VALID after). The supervisor acts
 * with its own privileges: those the program lacks it must refuse as the
 * kernel would (review 3). Unreadable: 1 (ours decide). */
int caller_capable(pid_t tid, int cap);

/* The calling thread's effective capabilities narrowed to those thread
 * tid has in effect too (*saved: ours before; capset acts on the calling
 * thread alone), so that the kernel decides a call made for the program
 * as it would for the program itself: a setsockopt the supervisor makes
 * on its copy (SO_PRIORITY past 6, IP_TRANSPARENT, a TCP_CONGESTION
 * outside tcp_allowed_congestion_control) needs the program's privilege,
 * not ours; a program in a user namespace of its own, or whose set
 * cannot be read, counts as having none. 1: narrowed, caps_restore() to
 * undo; 0: nothing to narrow; -1: cannot narrow (the call is refused). */
struct caps_saved {
    uint32_t eff[2];
};
int caps_narrow(pid_t tid, struct caps_saved *saved);
void caps_restore(const struct caps_saved *saved);

/* SO_SNDTIMEO of socket fd in ms; -1: none (sock_sndtimeo: 0 waits for
 * ever). On a bridge, the program's value: the shim carried it over from
 * the kernel socket, and a later setsockopt went to the bridge. */
int sndtimeo_ms(int fd);

/* CLOCK_MONOTONIC in ms. */
long long mono_ms(void);

/* Whether binding port needs no CAP_NET_BIND_SERVICE (0, or at least
 * net.ipv4.ip_unprivileged_port_start). */
int unprivileged_port(int port);

/* Whether add_fd() can put a file at fd in thread tid's process: not at or
 * past its RLIMIT_NOFILE (checked before a connection is made for it,
 * since TCP's calls do not mind: kernel TCP then; said once at warn). */
int fd_placeable(pid_t tid, int fd);

/* Whether the program's socket at fd (copy: ours of it, thread tid's) is
 * one for rudp: TCP (is_tcp), of our network namespace (same_netns), at a
 * number a bridge can take (fd_placeable). Else connect, listen and
 * sendto(MSG_FASTOPEN) leave it to the kernel, making no rudp connection
 * for nothing. */
int redirectable(pid_t tid, int copy, int fd);

/* Writes n bytes of buf at uaddr in the program (req's thread) and len
 * (the kernel's full length) at ulen, as getsockname/getsockopt do, each
 * write after a fresh NOTIF_ID_VALID. 0 or EFAULT. */
int write_back(const struct sup *s, const struct seccomp_notif *req, const void *buf, size_t n,
               uint64_t uaddr, socklen_t len, uint64_t ulen);

/* Closes what a handler took and answers: CONTINUE when cont is 1, -err
 * when 0, nothing when -1. */
void finish(struct sup *s, const struct seccomp_notif *req, int copy, int pidfd, int cont,
            int err);

#endif
