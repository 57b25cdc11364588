/*
 * engine.h: the engine layer, for the layers above it (ports/, lifetime/,
 * interpose/; layers: base/base.h).
 *
 * Contract of engine/: the engine threads (engine.c: loop, epoll, timers,
 * the clock; engines.c: choosing an engine, listener groups; enginestats.c:
 * statistics)
 * and all they own: UDP sockets and their I/O (udpio.c), the bridges
 * between an application's unix socket and a rudp connection (bridge.c),
 * RUDP_FALLBACK's race with kernel TCP (fallback.c), roaming (roam.c), a
 * listener's accept queue and accept order across engines (acceptq.c,
 * fifo.c), datagram marks (pktctl.c) and the control socket rudp-stat reads
 * (control.c). Requests reach an engine as commands (shim_engine_connect,
 * shim_engine_listen, shim_engine_post_*); objects of an engine are touched
 * on its own thread only, or while it is paused. The layers above see no
 * layout of the engine's (types.h is private to engine/): they reach the
 * engines as a whole through enginectl.c, their objects through
 * accessors.c, and take part in the engine's work through the hook tables
 * they register (hooks.h, hooks.c), keeping their own state in the area
 * they registered: the engine never names them. Uses state/ and base/.
 */
#ifndef SHIM_ENGINE_H
#define SHIM_ENGINE_H

#include <signal.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include "state/state.h"

typedef struct shim_connect_req {
    int udp_fd;              /* connected UDP socket, moved to the engine */
    int efd;                 /* engine end of the bridge */
    rudp_addr peer;
    rudp_addr local;         /* udp_fd's address (its getsockname), family 0: unknown */
    uint64_t id;
    uint32_t slot;
    size_t filler;           /* bytes the app end wrote to hold writability */
    int app_fd;              /* the app's fd number (or -1): its SO_SNDBUF ... */
    uint64_t app_ino;        /* ... if that fd is still this socket ... */
    int app_sndbuf;          /* ... is set back to this once established */
    int tcp_fd;              /* RUDP_FALLBACK=tcp: the app's own TCP socket, or -1 */
    int swap_fd;             /* ... to put at this fd number ... */
    uint64_t swap_ino;       /* ... if it still holds the app end (this inode) */
    struct sockaddr_storage tcp_to; /* ... once connected here */
    socklen_t tcp_to_len;
    int relay;               /* ... or relayed to the bridge, never put at swap_fd: a child
                              * with an fd table of its own made it (adopt.c) */
    rudp_config cfg;
    /* zero round trips (core/token.h): the token the SYN carries (0: none),
     * how long the SYN waits for the first write, and whether a token the
     * server gives is stored for next time (the program opted in) */
    uint8_t token[RUDP_TOKEN_MAX_BYTES];
    uint8_t token_len;
    rudp_time hold;
    int want_token;
} shim_connect_req;

typedef struct shim_listen_req {
    int udp_fd;              /* bound UDP socket, moved to the engine */
    int reserve_fd;          /* TCP socket holding the port, moved to the engine */
    shim_name lname;         /* the unix listener's name, decoded */
    struct sockaddr_un lun;  /* ... and as bytes, to connect to it */
    socklen_t lun_len;
    int backlog;
    uint64_t id;
    uint64_t lino;           /* inode of the unix listener */
    uid_t luid;              /* who called listen() on it */
    int wildcard;            /* bound to the any-address */
    int accept_tcp;          /* reserve_fd listens too: plain TCP (tcpaccept.c) */
    int app_reuseport;       /* the app set SO_REUSEPORT: others may share the port */
    unsigned member_tag;     /* its tag in a group of processes (xgroup.c), 0: none */
    int xfd;                 /* ... the tag's abstract unix socket, -1: none */
    int phfd;                /* its name for a process wanting the port
                              * (porthand.c), -1: none */
    int quiet;               /* the port was handed over with connections
                              * moving off it: no resets for a while */
    int zero_rtt;            /* tokens and 0-RTT: RUDP_0RTT=1 or TCP_FASTOPEN set */
    rudp_config cfg;
} shim_listen_req;

/* How long a listener that took a port over with connections moving off
 * it (shim_listen_req.quiet) answers no unknown connection ID with a
 * reset. The engine applies it itself, not through a feature's hook: it is
 * the core's behaviour on the listener. */
#define SHIM_QUIET_AFTER_MOVE RUDP_SEC(10)

/* An engine's wait never lasts longer than SHIM_WAIT_MAX, whatever its
 * deadline (none included): when a wait for `at` (RUDP_TIME_NEVER: none)
 * begun at `now` ends (engine.c). */
#define SHIM_WAIT_MAX RUDP_SEC(5)
rudp_time shim_engine_wait_end(rudp_time at, rudp_time now);

/* How features plug into the engine (hooks.h). */
#include "hooks.h"

/* The engine's objects: an engine, a UDP socket it reads (esock), a
 * bridge between an application's unix socket and a connection. Their
 * layouts are the engine's own (types.h, included by engine/ alone): the
 * layers above hold pointers and use the functions below, as ngtcp2's
 * headers forward-declare their types. */
struct engine;
typedef struct esock esock;
typedef struct bridge bridge;

/* How soon an engine tries again to hand a connection to an application
 * whose listener's backlog was full. */
#define ACCEPT_RETRY RUDP_MS(5)

/* ---- engine.c ---- */

/* Starts the engine thread if needed. Returns 0 or -errno. */
int shim_engine_start(void);

/* Hand a new outgoing connection / listener to the engine. The fds in the
 * request belong to the engine from now on, even on failure, but for
 * -EXDEV: a child with an fd table of its own whose fds no engine could
 * take (adopt.c), and -EMFILE: an engine with a table of its own
 * (enginestart.c) that could not take them (full); then they are all
 * still the caller's. */
int shim_engine_connect(const shim_connect_req *r);
int shim_engine_listen(const shim_listen_req *r);
/* How many engines a listener with this listen() backlog gets, each with a
 * socket of its SO_REUSEPORT group: RUDP_ENGINES=N's N; by default (engines
 * started by load) all of them for a backlog of SHIM_SPREAD_AT or more or a
 * busy process, else one; one with 0-RTT (zero_rtt) or in a child with an
 * fd table of its own. */
int shim_engine_listen_width(int backlog, int zero_rtt);
/* Whether an engine runs in this process (or the one whose memory a
 * CLONE_VM child shares). */
int shim_engine_running(void);
void shim_engine_listener_closed(uint64_t id);
/* The app set TCP_CONGESTION on the connection or listener `id` (NULL:
 * the default): whichever engine of this process serves it switches. */
void shim_engine_set_cc(uint64_t id, int listener, const rudp_cc_ops *cc);
/* The app set a mark of the datagrams (IP_TOS, IPV6_TCLASS, IP_TTL,
 * IPV6_UNICAST_HOPS; value as TCP holds it) on the connection or listener
 * `id`: the UDP sockets that carry it alone (a client's, a listener's)
 * take it. An accepted connection shares its listener's: it has none. */
void shim_engine_set_mark(uint64_t id, int listener, int level, int opt, int value);
/* The app sized the connection or listener `id` (connopts.c): send buffer
 * and receive window in bytes (0: as they are), TCP_NOTSENT_LOWAT (0:
 * none), for rudp_conn_set_buffers / rudp_listener_set_buffers. */
void shim_engine_set_buffers(uint64_t id, int listener, uint32_t sndbuf, uint32_t rcvwnd,
                             uint32_t lowat);
/* TCP_CORK on (1) or off on connection `id` (rudp_conn_set_cork). */
void shim_engine_set_cork(uint64_t id, int on);
/* Connection `id`'s keepalive, idle and user timeouts, as
 * rudp_conn_set_timeouts takes them (SO_KEEPALIVE, TCP_KEEPIDLE and the
 * like set on a live socket, or on the listener of an accepted one). */
void shim_engine_set_timeouts(uint64_t id, rudp_time keepalive, rudp_time idle, rudp_time user);

uint64_t shim_engine_new_id(void);

/* Engine counters for RUDP_STATS. */
void shim_engine_print_stats(void);

/* From a signal handler (async-signal-safe): asks every engine of this
 * process for its figures, the last to answer printing them; returns 0 if
 * no engine runs here. Then whether they were printed. */
int shim_engine_stats_request(void);
int shim_engine_stats_printed(void);

/* ---- pktctl.c: the marks of the datagrams ---- */

/* The options that mark the datagrams, which the connection's UDP socket
 * takes (as TCP holds them: TCP clears the ECN bits of IP_TOS and
 * IPV6_TCLASS, ip(7), ipv6(7); UDP would send them). pktctl.c. */
typedef struct shim_mark_opt {
    int level, opt;
} shim_mark_opt;
#define SHIM_MARKS 4
extern const shim_mark_opt shim_marks[SHIM_MARKS];
/* Those marks from UDP socket `from` onto `to` (a roaming client's new
 * socket, a listener's SO_REUSEPORT member), both of family (pktctl.c). */
void shim_marks_copy(int from, int to, int family);

/* ---- enginectl.c: the engines as a whole, for the layers above ----
 *
 * Files outside the engine layer (keeper.c, procenv.c, portshare.c,
 * forward.c...) reach G through these, never its fields. */

/* Engines started (G.nrun, read with acquire: engines [0, n) are set up). */
int shim_engines_nrun(void);
/* Engine k (k < shim_engines_nrun()). */
struct engine *shim_engine_nth(int k);
/* Engine k if it runs, else NULL. */
struct engine *shim_engine_if_running(unsigned k);
/* e's index. */
int shim_engine_index(const struct engine *e);
/* The process the engines belong to (G.pid), whether it is a keeper, and
 * whether it is forking one (the fork handlers keep the engines' state). */
pid_t shim_engines_pid(void);
int shim_engines_keeper(void);
int shim_engines_in_handoff(void);
void shim_engines_set_handoff(int on);
/* The command lock (G.mu) and its condition: _wait until `until`
 * (CLOCK_REALTIME; pthread_cond_timedwait's result); _wake, every waiter;
 * _renew, in a raw clone's child: made anew and taken. */
void shim_engines_lock(void);
void shim_engines_unlock(void);
int shim_engines_wait(const struct timespec *until);
void shim_engines_wake(void);
void shim_engines_lock_renew(void);
/* Engines running in this process (0 in a child that did not start its
 * own); the lock held. _here: whether any, taking the lock. */
int shim_engines_here_locked(void);
int shim_engines_here(void);
/* Parks every engine at its safe point; self, an engine thread asking,
 * counts as parked. shim_engine_resume (below) releases them. */
void shim_engines_pause(struct engine *self);
/* e's thread when the engines keep their fds in tables of their own
 * (/proc/self/task/TID/fd lists e's), else 0. */
pid_t shim_engine_table_tid(const struct engine *e);
/* fn(arg) on a thread whose fd table is e's: the caller's own, unless the
 * engines keep their fds in tables of their own (enginestart.c) and the
 * caller's is another; then on e's thread, which the caller has parked
 * (shim_engines_pause), and this returns once fn has (at once if e is
 * broken). */
void shim_engines_run_parked(struct engine *e, void (*fn)(void *), void *arg);
/* The backlog of the listener whose app socket has inode ino, or -1. */
int shim_engines_listener_backlog(uint64_t ino);
/* The engines' listeners (paused, or on an engine thread): how many, the
 * first max of them in ino[] (their app sockets' inodes) and backlog[]. */
int shim_engines_listeners(uint64_t *ino, int *backlog, int max);
/* The engines paused, the program's copies of its listeners closed (an
 * exit): every listener no other process holds (a forked child, one it
 * was passed to) stops now, its port freed, as kernel TCP frees it when
 * the last holder exits; not left to a keeper to find later. */
void shim_engines_stop_unheld_listeners(void);
/* Whether this process's engines may be handed over now, and if so (not
 * for exec, which may fail and resume), that they are: the process ends,
 * and a second keeper (_exit racing a fatal signal) must not follow. */
int shim_engines_may_hand_over(int for_exec);
/* fn(e, now) for each engine started. */
void shim_engines_each(shim_engine_fn fn, rudp_time now);
/* In the keeper, forked with the engines paused: they are this process's
 * now (keeper mode, its pid, nothing paused, listeners checked at once,
 * its own control socket); only engine `only` where it is >= 0 (a table
 * of its own: the others are other keepers', marked broken here, and
 * only engine 0's keeper has the control socket). Returns the pid that
 * handed them over; *n, how many engines it took. */
pid_t shim_engines_keep(int only, int *n);
/* The keeper runs its engines, engine 0 on this thread, until each is
 * done. */
void shim_engines_run_kept(void);
/* At exit with no keeper: the engines (paused) say what ends with them. */
void shim_engines_report_remaining(void);
/* A fatal signal's handoff is done (sig_handoff 2); self (engine 0's
 * thread, paused; NULL: none) waits out the pause. */
void shim_engines_signal_done(struct engine *self);

/* enginectl.c: after a failed exec, the engines paused for the hand-over
 * (lifetime/keeper.c, shim_keeper_handoff) go on. */
void shim_engine_resume(void);
/*
 * From a fatal signal's stand-in (async-signal-safe): asks engine 0 to hand
 * the engines to a keeper before the process dies. Returns 1 if asked (then
 * wait until shim_engine_signal_handed() says it is done), 0 if no engine
 * of this process runs.
 */
int shim_engine_signal_handoff(void);
int shim_engine_signal_handed(void);

/* In a forked child: forget the parent's engine and close its fds. */
void shim_engine_atfork_prepare(void);
void shim_engine_atfork_parent(void);
void shim_engine_atfork_child(void);

/* xgroup.c's member field's width in every connection ID the shim's
 * engines choose (rudp_ctx_set_member_bits). */
#define SHIM_XG_BITS 6

/* ---- fallback.c: RUDP_FALLBACK=tcp, kernel TCP where rudp gets no answer ---- */

/* Whether connects to sa go straight over kernel TCP: a fallback to it
 * worked within the last two minutes (counted as remembered). */
int shim_fallback_remembered(const struct sockaddr *sa);
/* Connects that may still become kernel TCP (their TCP socket went to the
 * engine, which has not yet settled it): while none is, epoll_ctl notes
 * nothing and costs one atomic load. connect() adds one; fallback.c takes
 * it away once that connect is settled (swapped, rudp won, or failed). */
extern _Atomic unsigned shim_fallback_racing;
/* A connect to sa that rudp cannot carry for want of a file descriptor
 * (EMFILE at the hard RLIMIT_NOFILE, or in the supervisor): 1 when it may
 * go over kernel TCP (RUDP_FALLBACK=tcp, no key), said at warn once per
 * destination and counted (no_fd in the fallback figures, rudp-stat); 0
 * when it must fail (a key, or RUDP_FALLBACK=none): said at warn, every
 * one, and counted too. where names who ran out ("this process",
 * "rudp-supervise"). */
int shim_fallback_no_fd(const struct sockaddr *sa, const char *where);

/* Frees p, an epoll target of e whose first field is its shim_watch (type:
 * &w.type, hooks.h): at once outside a dispatch, else once the batch is
 * dispatched, its type cleared meanwhile so a later event of the batch
 * names nothing. */
void shim_engine_bury(struct engine *e, void *p, int *type);

/* acceptq.c: a connection s put in the app's unix listener (rudp or plain
 * TCP) counts as handed in its accept queue. */
void shim_acceptq_handed(esock *s);
/* Whether a unix connection this process makes to listener s's app
 * listener must show the listener's secret first (names.c,
 * SHIM_NAME_F_PROOF; ident.c): in a keeper, for a listener with one. */
int shim_bridge_proof_wanted(const esock *s);
/* Writes s's secret on efd, just connected to its app listener and checked
 * (shim_ident_listener), before anything else: 0, or -EIO. */
int shim_bridge_send_proof(const esock *s, int efd);
/* Whether s's listener is live, asked now: the app holds it, or (closed
 * here) another process still does (a keeper's copies of the process that
 * handed over count until it is gone). One that no process holds any more
 * is stopped (shim_engine_stop_listening: s may close) and says 0. */
int shim_engine_listener_live(esock *s, rudp_time now);
/* A UDP socket fd (owned) in e's epoll, read like any; refs 0. NULL:
 * out of memory (fd left to the caller). */
esock *shim_esock_new(struct engine *e, int fd, int family);
/* One reference fewer; the last closes it. */
void shim_esock_unref(esock *s);

/* ---- accessors.c: the engine's objects as the features above see them ----
 *
 * What a feature (ports/) reads or changes of an engine, its UDP sockets
 * and bridges, on the thread of the engine that owns them (or with it
 * paused); its own state is in the area it registered (hooks.h:
 * shim_engine_set_ext). None is on the path of a datagram the engine
 * reads for its own connections. */

/* A feature's area of e, of s, and of s's listener's group (NULL: s is in
 * no group of engines). */
void *shim_engine_ext(struct engine *e);
void *shim_esock_ext(const esock *s);
void *shim_esock_group_ext(esock *s);
/* e's UDP sockets: shim_engine_sock(e, i) for i < shim_engine_nsocks(e),
 * NULL where none is. */
uint32_t shim_engine_nsocks(const struct engine *e);
esock *shim_engine_sock(const struct engine *e, uint32_t i);
/* e's core context. */
rudp_ctx *shim_engine_ctx(struct engine *e);
/* The kernel receive stamp (fifo.c) of the datagram e is feeding its core
 * (0: none); _clear: the next datagram fed has none (its own and the
 * core's, rudp_ctx_set_rx_stamp). */
uint64_t shim_engine_rx_stamp(const struct engine *e);
void shim_engine_clear_rx_stamp(struct engine *e);
/* e's turn runs its SHIM_ON_TICK hooks at `at` or sooner. */
void shim_engine_tick_by(struct engine *e, rudp_time at);
/* Wakes e from another engine's thread (its eventfd). */
void shim_engine_wake(struct engine *e);
/* Sends every datagram e has queued now. */
void shim_engine_flush_output(struct engine *e);
/* Records wait for other processes (shim_relay_ops.to_member): e calls
 * the relay's flush once the socket being read is done. */
void shim_engine_relay_pending(struct engine *e);
/* Epoll: fd watched by e for events, which go to w (shim_watch_set first);
 * changed; no longer watched. 0 or -errno. */
int shim_engine_watch(struct engine *e, int fd, uint32_t events, shim_watch *w);
int shim_engine_rewatch(struct engine *e, int fd, uint32_t events, shim_watch *w);
int shim_engine_unwatch(struct engine *e, int fd);
/* s's UDP socket no longer watched (its own set: the sockets' and the
 * bridges', engine.c's iofd). */
int shim_engine_unwatch_sock(esock *s);

/* s's engine, UDP socket, index in its engine's table (the core's socket
 * number) and family. */
struct engine *shim_esock_engine(const esock *s);
int shim_esock_fd(const esock *s);
uint32_t shim_esock_index(const esock *s);
int shim_esock_family(const esock *s);
/* Whether s is a client's socket (connected to one server, or reopened on
 * its own port by roam.c), not a listener's. */
int shim_esock_is_client(const esock *s);
/* A client's socket: whether it is connected, and to whom; _set_peer: it
 * was connected to `to` (a server's new port, portmove.c). */
int shim_esock_connected(const esock *s);
const rudp_addr *shim_esock_peer(const esock *s);
void shim_esock_set_peer(esock *s, const rudp_addr *to);
/* Whether s learns each datagram's destination (bound to a wildcard
 * address: IP_PKTINFO); set on a socket made like it. */
int shim_esock_pktinfo(const esock *s);
void shim_esock_set_pktinfo(esock *s, int on);
/* A listener's socket: whether it listens (its listener not stopped), its
 * id, the app's unix listener (inode, who called listen(), its name
 * decoded, and as bytes for connect(): *un, its length returned), and its
 * listen() backlog. */
int shim_esock_listening(const esock *s);
uint64_t shim_esock_listener_id(const esock *s);
uint64_t shim_esock_listener_ino(const esock *s);
uid_t shim_esock_listener_uid(const esock *s);
const shim_name *shim_esock_lname(const esock *s);
socklen_t shim_esock_lun(const esock *s, const struct sockaddr_un **un);
int shim_esock_backlog(const esock *s);
/* The listener's TCP socket that holds its port (-1: none); _taken: a
 * feature holds it now (through TIME_WAIT), the engine closes it no more. */
int shim_esock_reserve_fd(const esock *s);
void shim_esock_reserve_taken(esock *s);
/* The dup of engine 0's reserve socket that s's group keeps (-1: none, or
 * no group). */
int shim_esock_group_tcp_fd(const esock *s);
/* s's listener is asked at this turn's end whether a process still holds
 * the app's listener (shim_engine_listener_live); nothing if it stopped. */
void shim_esock_check_soon(esock *s, rudp_time now);
/* The connections accepted on s (their bridges', not a client's own
 * socket): how many; and moved to socket to (bound to `port`), each told
 * to its client (rudp_conn_move_port, NEW_PORT): how many moved. */
int shim_esock_accepted(const esock *s);
int shim_esock_move_accepted(esock *s, esock *to, unsigned port, rudp_time now);
/* The connections on listener socket s that shim_esock_move_accepted
 * moves (the app's, established; and those the app closed whose stream
 * bytes, or FIN_WAIT_1's FIN, are still on their way:
 * rudp_ctx_move_released), and those it cannot move: those the app closed
 * in CLOSING or LAST_ACK with only their FIN to be acknowledged,
 * or in FIN_WAIT_2 (a client that left TIME_WAIT or took no
 * NEW_PORT there would never finish), in TIME_WAIT or a handshake. These
 * need s's port until they end. */
int shim_esock_movable(const esock *s);
int shim_esock_unmovable(const esock *s);
/* A tally of e: a handoff refused, the listener's name held by another. */
void shim_engine_count_squatted(struct engine *e);

/* b's connection (NULL once it ended or before it began), its UDP socket
 * and its number. */
rudp_conn *shim_bridge_conn(const bridge *b);
esock *shim_bridge_sock(const bridge *b);
uint64_t shim_bridge_id(const bridge *b);

/* Anything a process's death would cut off: a bridge, a listener, a queued
 * command, or a connection whose data or FIN is not yet acknowledged; of
 * any engine, or of e. */
int shim_engine_busy(void);
int shim_engine_busy_one(struct engine *e);

/* appsend.c: an application thread's write of n bytes (iov) to the bridged
 * fd `fd`, sent by that thread while the fd's engine sleeps. Returns 1 with
 * *sent (n) when it did, 0 when the caller makes the kernel's call through
 * the bridge as usual (and nothing was sent). Writes of more than
 * SHIM_APPSEND_MAX bytes always take the bridge. */
#define SHIM_APPSEND_MAX 16384
int shim_engine_app_send(int fd, const struct iovec *iov, int iovcnt, size_t n, ssize_t *sent);
/* txring.c: the same write handed to fd's engine in memory rather than
 * through the bridge (RUDP_SEND_RING; flags MSG_NOSIGNAL and MSG_DONTWAIT
 * only, the caller's to check): 1 with *sent (n), or 0: the kernel's call
 * through the bridge as usual, nothing taken. */
int shim_engine_ring_write(int fd, const struct iovec *iov, int iovcnt, size_t n, ssize_t *sent);
/* apprecv.c: the thread that would block reading fd (an established
 * bridge) waits on its connection's UDP socket itself; every signal
 * blocked by the caller (hold NULL), or the caller inside a section that
 * defers the program's handlers (base/crit.c) and hold the mask its wait
 * in the kernel takes (every signal but SIGSEGV and SIGBUS), atomically,
 * as ppoll() takes one; old the caller's mask before (with hold: the
 * section's hint of it). 1: woken (read again);
 * 0: not taken; -ETIMEDOUT: nothing came for a while; -EINTR: a signal
 * old lets in is pending (the caller lets it in). d, if not NULL, is the
 * caller's buffer: bytes that come while the bridge is empty go straight
 * into it (d->got > 0, the read's result; -EFAULT: the buffer is bad and
 * the bytes went into the bridge, where they wait as in TCP's queue; 0:
 * none, read the bridge). */
typedef struct shim_app_direct {
    const struct iovec *iov;
    int iovcnt;
    pid_t pid;
    ssize_t got;
} shim_app_direct;
int shim_engine_app_recv_wait(int fd, const sigset_t *old, const sigset_t *hold,
                              shim_app_direct *d);
/* ... the same wait in two halves, for a poll() or ppoll() that waits for
 * fd among others (interpose/poll.c): _begin takes fd's UDP socket from
 * the engine (1, with w->udp_fd to wait on, for at most
 * SHIM_APP_WAIT_MS, and w->sigfd, a signalfd readable when a signal that
 * `let` lets in is pending; 0: not now, nothing taken), and _end, after
 * the wait, runs the engine's part if the socket had anything (revents,
 * its poll()'s) and gives the socket back. Every signal stays held back
 * from before _begin until after _end, the wait included: a handler run
 * between them (the shim's own for SIGTERM hands the engines to a keeper)
 * would find the socket the thread's, or leave by siglongjmp. */
typedef struct shim_app_wait {
    struct engine *e;
    pid_t pid;
    uint32_t idx, gen, slot;
    uint64_t sid, id;
    uint64_t out_gen;         /* the bridge's writes into the app's end, at _begin */
    shim_app_direct *direct;  /* set by a read's wait before _end (else NULL) */
    int keep;                 /* set by a poll's before _end: the bridge was empty */
    uint64_t keep_ep;         /* ... by an epoll wait's: its set (SHIM_EP_KEY), whose
                               * bridges' bytes may be kept (whole sets only) */
    int kept;                 /* ... and after it, 1 if bytes wait for the read */
    int udp_fd, sigfd;
    int whole;                /* udp_fd: engines' whole sets (many connections) */
    uint32_t engs;            /* set by the caller before _begin: the engines an
                               * epoll wait's set holds connections of, bit k:
                               * G.e[k], whose whole sets alone it takes (0: every
                               * engine's) */
    uint32_t io_taken;        /* ... the engines whose set it took, bit k: G.e[k] */
    uint32_t io_gen[SHIM_ENGINES_MAX];
    rudp_time since;
    int returned;             /* set by the caller before _end: its wait returned (a
                               * cancelled thread's cleanup leaves it 0) */
} shim_app_wait;
#define SHIM_APP_WAIT_MS 50
/* in: as _end's. An epoll wait (2) where the engines carry many
 * connections waits on every engine's whole set of sockets and bridges
 * (w->whole): whatever comes for any of them wakes this thread alone,
 * which runs the engines' turns for all (apprecv.c). */
int shim_engine_app_wait_begin(int fd, const sigset_t *let, int in, shim_app_wait *w);
/* Whether an epoll wait may take the engines' whole sets now
 * (RUDP_APP_RECV, no qlog, no sandbox, more connections than the
 * per-socket path takes). */
int shim_engine_app_io_may(void);
/* A readiness call that does not wait, on a set holding a bridge: the
 * sockets lingering with the app go back to their engines (woken for it
 * once), which read what comes; where none lingers, one load per engine. */
void shim_engine_app_nowait(void);
/* in_poll: 0 a read's wait, 1 poll()'s, 2 epoll_wait()'s, 3 select()'s
 * (counted apart) */
void shim_engine_app_wait_end(shim_app_wait *w, short revents, int in_poll);
/* ... and whether it may be taken at all now (RUDP_APP_RECV, no qlog, no
 * sandbox, few connections): a caller asks before anything else; and the
 * longest smoothed RTT of a connection it waits for (the slot's rtt_us
 * tells a caller without a system call). */
int shim_engine_app_recv_may(void);
/* Bytes a poll() told of, kept in the connection for the read after it
 * (apprecv.c: w->keep, w->kept): whether any bridge of the process is
 * kept (no lock, no system call); every kept bridge's bytes passed on into
 * its app end now, for a call that could see the socket another way
 * (unread: a poll's own, with no read of ours since the one before); and
 * the read that takes them: 1 with *out its result (errno set), 0 where
 * fd's are not kept (or cannot be taken: then passed on, for the caller's
 * own read). flags: MSG_PEEK, MSG_DONTWAIT, MSG_NOSIGNAL,
 * MSG_CMSG_CLOEXEC; m without control. */
int shim_engine_app_kept_any(void);
/* An epoll wait on the set key names (state.h: SHIM_EP_KEY): the bridges
 * whose bytes are kept for a read and that are registered in that set
 * alone (EPOLLIN; edge-triggered ones once per arrival) are told as its
 * events, up to max, in out (their registrations' data, EPOLLIN), but
 * for those whose data are among skip's nskip (told already by the
 * caller's ask before: neither told nor marked again); more set if one
 * was left untold for want of room; every other kept bridge's bytes of
 * the engines in engs (bit k: G.e[k]; 0: every engine) are passed on into
 * its bridge, where the kernel tells of them; other engines' kept bytes
 * are left to their waits and their time. */
typedef struct shim_kept_ask {
    uint64_t key;
    uint32_t engs;
    struct epoll_event *out;
    int max;
    const struct epoll_event *skip;
    int nskip;
    int more;
} shim_kept_ask;
/* ... held: the caller holds every signal already. The number told. */
int shim_engine_app_kept_ep(shim_kept_ask *a, int held);
void shim_engine_app_unkeep_all(int unread);
int shim_engine_app_take(int fd, struct msghdr *m, int flags, ssize_t *out);
/* A close() of bridged fd, before the kernel's: what came for its
 * connection and waits unread in its UDP socket (one lingering with the
 * app after a wait, or one the engine has not read yet) goes into the
 * bridge first, so that the close finds it unread there and resets as
 * TCP's close() does for bytes in its receive queue, rather than sending
 * a FIN and then a reset when the engine reads them after it. Taken only
 * where the app paths are (shim_engine_app_recv_may), for a turn had
 * within SHIM_KEEP_LOCK_WAIT (a signal handler's close may have
 * interrupted its holder). */
void shim_engine_app_closing(int fd);
#define SHIM_APPRECV_RTT_US 2000
/* A connection that passes SHIM_BULK_OUT_BYTES to its app within
 * SHIM_BULK_OUT_MS is a bulk transfer: its bridge's buffer grows
 * (bridgepump.c's grow_efd). */
#define SHIM_BULK_OUT_BYTES (256u * 1024u)
#define SHIM_BULK_OUT_MS 10
/* The engine's end of a bridge: its SO_SNDBUF to start (a peer that
 * reads nothing is held as TCP's receive buffer holds it), and the most
 * it grows to for a reader that keeps up (bridgepump.c's grow_efd) */
#define SHIM_BRIDGE_BUF (64 * 1024)
#define SHIM_BRIDGE_BUF_MAX (1024 * 1024)
/* Whether an app thread's send may pay now, by what the engines publish
 * (no lock, no system call): one asleep, and few connections in all. */
int shim_engine_app_send_may(void);

/* A feature's command for engine e: type (CMD_YIELD, CMD_ADOPT: hooks.h),
 * whose handler the feature registered (shim_engine_on_cmd), with its
 * request req, queued and e woken; the engines' lock held
 * (shim_engines_lock). 0, or -ENOMEM, or -EIO if e cannot take commands
 * (broken, or a keeper's engine that finished); on failure req is still
 * the caller's. */
int shim_engine_post_locked(struct engine *e, int type, void *req);
/* The same for engine 0, the lock taken here: -ENOSYS when no engine runs,
 * and in a CLONE_VM child -errno when it cannot wake engine 0 (adopt.c). */
int shim_engine_post_any(int type, void *req);
/* The same for engine e, which must be woken now (-errno if it cannot). */
int shim_engine_post_to(struct engine *e, int type, void *req);
/* Engine e's eventfd, which wakes it for its commands, and its inode in
 * *ino: a CLONE_VM child checks that its copy of the number still names
 * it (adopt.c). */
int shim_engine_evfd(const struct engine *e, uint64_t *ino);


/* ---- fifo.c: accept order across a listener's engines ---- */

/* forward.c: a datagram stamped `stamp` (0: none) is handed to engine to,
 * before the handing engine's horizon can pass it; and e took one. */
void shim_fifo_fwd_out(struct engine *to, uint64_t stamp);
void shim_fifo_fwd_in(struct engine *e, uint64_t stamp);


#endif
