/*
 * engine.h: the engines' state, shared by engine.c (the threads, their
 * loops, UDP sockets and commands), bridge.c (the bridges between the
 * application's unix sockets and rudp connections), engines.c (choosing an
 * engine, listener groups, statistics) and enginectl.c (the engines as a
 * whole for the layers above: pausing them, what fork does to them, their
 * state taken over by a keeper); fallback.c, fifo.c and control.c do their
 * part of the engine's work through it. The features above the engine
 * (a listener's port, a process's lifetime) include it for its types and
 * enginectl.c's functions, never G's fields, and plug into the engine
 * through hooks.h. Internal to the shim: the rest of it includes shim.h.
 */
#ifndef SHIM_ENGINE_H
#define SHIM_ENGINE_H

#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "shim.h"
#include "hooks.h"
#include "udpio.h"

/* The first field of what an engine's epoll points to (data.ptr): the
 * engine's own, and W_HOOK, a feature's (a shim_watch: hooks.h). */
enum { W_EVENT = 1, W_UDP, W_BRIDGE, W_CONTROL, W_FALLBACK, W_HOOK, W_NETLINK };

struct engine;
/* Frees p, an epoll target of e whose first field is its type (*type):
 * at once outside a dispatch, else once the batch is dispatched, its type
 * cleared meanwhile so a later event of the batch names nothing. */
void shim_engine_bury(struct engine *e, void *p, int *type);

/* Listeners' TCP sockets an engine holds after the listener, for TIME_WAIT
 * (portshare.c): more close at once. */
#define SHIM_TW_HELD 32

/* How soon an engine tries again to hand a connection to an application
 * whose listener's backlog was full. */
#define ACCEPT_RETRY RUDP_MS(5)

/* The UDP sockets of one listener, one per engine, in a SO_REUSEPORT group:
 * the kernel gives each datagram to a member by a hash of its addresses,
 * so a connection stays with one engine. The hash depends on the group's
 * size: a member may close only when all of them can (live == 0), or the
 * datagrams of other engines' connections would move. */
/* A listener's accept queue as its engines count it (acceptq.c): one per
 * SO_REUSEPORT group, shared by its engines, or the socket's own. */
typedef struct shim_acceptq {
    /* connections of the listener answered or accepted by any engine and
     * not yet in the app's unix listener (rudp_acceptq_ops' moved) */
    _Atomic int held;
    /* connections any engine put in the app's unix listener, ever */
    _Atomic uint64_t handed;
} shim_acceptq;

/* fifo.c: one member of a listener's group as the other engines see it.
 * Written by its engine only; padded to a cache line of its own. */
typedef struct shim_fifo_member {
    /* CLOCK_REALTIME ns: every datagram the kernel stamped up to it has
     * been read from the socket and handled (its handshake, if it
     * completed one, is in `oldest`'s reckoning) */
    _Atomic uint64_t horizon;
    /* the stamp of its engine's oldest handshake not yet handed to the app
     * (0: none) */
    _Atomic uint64_t oldest;
    /* odd: its engine is reading the socket (since its last publication);
     * even: the socket was found empty at `horizon` and all it held is
     * handled */
    _Atomic uint32_t seq;
    _Atomic int fd; /* its UDP socket (-1: none) */
    char pad[64 - 24];
} shim_fifo_member;

/* fifo.c: a group's accept order, completed handshakes handed to the app
 * in their confirming datagrams' kernel receive order. */
typedef struct shim_fifo {
    shim_fifo_member m[SHIM_ENGINES_MAX]; /* by engine index */
    _Atomic unsigned waiters; /* engines holding a handshake: woken on news */
} shim_fifo;

typedef struct lgroup {
    int n;                /* members made */
    _Atomic int live;     /* members still in use */
    _Atomic int members;  /* members not yet closed: the last frees this */
    /* A dup of engine 0's reserve TCP socket when it listens for plain
     * clients (RUDP_ACCEPT_TCP), or -1: whichever member finds the app's
     * listener gone stops the port's TCP through it (shim_tcpl_stop) before
     * it refuses a rudp client, so a client falling back to TCP is refused
     * too rather than queued and reset. Owned; the group's last member
     * closes it. */
    int tcp_fd;
    /* the latest TIME_WAIT end of any member's connections (portshare.c) */
    _Atomic uint64_t tw_until;
    shim_acceptq aq; /* the members' one accept queue */
    shim_fifo fifo;  /* the order of its accepted connections (fifo.c) */
    /* each member's UDP socket's inode, by engine index (portwatch.c) */
    _Atomic uint64_t member_ino[SHIM_ENGINES_MAX];
} lgroup;

struct engine;
struct fwd_dgram; /* forward.c */

/* An engine's figures at one moment, for RUDP_STATS: taken on its own
 * thread or while it is paused, so nothing is read while it changes; the
 * engines' figures add up field by field (engines.c). */
typedef struct engine_figures {
    rudp_stats s;
    shim_udpio_stats u;
    uint64_t wakeups, timed_wakeups, late_ns, longest_turn, squatted, memory, gso_on;
    uint64_t tcp_accepted; /* plain kernel TCP connections handed over (tcpaccept.c) */
    /* forward.c: datagrams handed to the engine owning their connection
     * ID, taken from other engines, and dropped (its queue full) */
    uint64_t handed_out, handed_in, handed_dropped;
    uint64_t xg_out, xg_in, xg_dropped, xg_orphans, xg_unknown; /* xgroup.c */
    /* fifo.c: accepted connections held for the accept order, and the
     * time they were held, summed (ns) */
    uint64_t fifo_held, fifo_held_ns;
} engine_figures;

struct esock;

/* A listener's reserve TCP socket, listening too (RUDP_ACCEPT_TCP): the
 * engine's epoll watches it through this (tcpaccept.c). */
typedef struct tcpl {
    shim_watch w;         /* first, for epoll dispatch */
    struct esock *s;      /* the listener it belongs to */
    unsigned on : 1;      /* listening and watched */
    unsigned deferred : 1; /* the app's backlog was full: unwatched until a retry */
} tcpl;

/* A listener's member socket in a group of processes: the abstract unix
 * SOCK_SEQPACKET listener other members connect to (lst), or one of the
 * connections it accepted, which carry the datagrams they forward to it
 * (xgroup.c). */
typedef struct xgsock {
    shim_watch w;         /* first, for epoll dispatch */
    int fd;               /* -1: none */
    struct esock *s;
    unsigned tag;
    unsigned lst : 1;     /* the listener (embedded in its esock) */
    struct xgsock *next;  /* the listener's accepted connections */
} xgsock;

/* A listener socket's abstract name for other processes of ours that
 * want its port (porthand.c). */
typedef struct phsock {
    shim_watch w;         /* first, for epoll dispatch */
    int fd;               /* -1: none */
    struct esock *s;
    uint64_t ino;         /* the UDP socket's inode, 0: not watched (portwatch.c) */
    uid_t uid;            /* ... and its owner, whose other listeners share it */
} phsock;

typedef struct esock {
    int type; /* W_UDP: first, for epoll dispatch */
    int fd;
    struct engine *e;     /* the engine that owns it */
    uint32_t idx;
    int refs;             /* listener + connections using this socket */
    int family;           /* socket family of the UDP socket */
    int connected;        /* a client's socket: one peer, send() */
    rudp_addr peer;       /* connected client socket: its one peer */
    rudp_listener *listener;
    uint64_t listener_id;
    uint64_t listener_ino;  /* inode of the app's unix listener */
    uid_t listener_uid;     /* who called listen() on it (ident.c) */
    int backlog;            /* its backlog, for a keeper's listen() */
    /* a listener's accept queue (acceptq.c): the group's, or aq_own; and
     * what sock_diag last said of the app's unix listener: its queue's
     * length and bound (-1: not asked yet), aq->handed then, and when */
    shim_acceptq *aq;
    shim_acceptq aq_own;
    int aq_len, aq_max;
    uint64_t aq_at;
    rudp_time aq_asked;
    rudp_time alive_check;  /* closed here but held elsewhere: next check */
    int pktinfo;          /* wildcard-bound: learn each datagram's destination */
    uint32_t drops_seen;  /* the socket's drop count at its last report */
    struct lgroup *group; /* a listener's socket: its SO_REUSEPORT group */
    int idle;             /* unused, held open while its group lives */
    int reserve_fd;       /* TCP socket holding the port of a listener */
    tcpl tcp;             /* ... when it takes plain TCP too */
    xgsock xg;            /* ... its group's member socket (engine 0's) */
    phsock ph;            /* ... its name for a process taking its port */
    phsock phq;           /* ... a share request whose message is on its way */
    shim_name lname;      /* the unix listener's name */
    struct sockaddr_un lun;
    socklen_t lun_len;
    struct bridge *owner; /* a client's socket: its bridge (roam.c) */
    int send_failed;      /* ... whose sends the kernel refused with this errno */
    int heard;            /* a datagram arrived on it */
    /* a listener's socket: the address it is bound to, for the core's
     * same_endpoint (portshare.c); family 0 once the port is given up */
    struct sockaddr_storage endpoint;
    /* a listener's socket: when the TIME_WAIT of the last connection it
     * closed first ends, as TCP's would (portshare.c); 0: none */
    rudp_time tw_until;
    /* fifo.c: a group member's reading this turn, published at its end:
     * the horizon reached, whether the last read found it empty, and the
     * engine's list of members to publish */
    uint64_t fifo_pend;
    int fifo_drained, fifo_dirty;
    struct esock *fifo_next;
} esock;

typedef struct bridge {
    int type; /* W_BRIDGE */
    int efd;
    struct engine *e;     /* the engine that owns it */
    rudp_conn *conn;
    esock *sock;
    uint64_t id;
    uint32_t slot;
    shim_slot *sp;        /* the slot, resolved once (NULL: none) */
    size_t filler;        /* bytes to discard before data (client) */
    shim_name name;       /* server side: what to bind and where to connect */
    uint32_t ev;          /* epoll interest now registered (0: none) */
    unsigned established : 1;
    unsigned app_eof : 1;   /* read EOF from efd: the app shut down writing */
    unsigned app_gone : 1;  /* the app closed its end entirely */
    unsigned peer_eof : 1;  /* we passed the peer's FIN on (SHUT_WR on efd) */
    unsigned unix_up : 1;   /* efd is connected to the application */
    unsigned hup : 1;       /* EPOLLHUP seen: out of epoll until we can read */
    unsigned bulk_in : 1;   /* the last bridge read filled all it was offered */
    unsigned draining : 1;  /* failed: passing on what arrived before efd closes */
    int app_fd;             /* a connecting app end's fd number, -1: see sock.c's filler */
    uint64_t app_ino;
    int app_sndbuf;
    struct fallback *fb;    /* RUDP_FALLBACK=tcp while connecting (fallback.c), or NULL */
    unsigned owns_sock : 1; /* a client's: holds a reference on sock (and old_sock) */
    esock *old_sock;        /* roam.c: the socket it left, still read, or NULL */
    rudp_time roam_next;    /* roam.c: no new socket before this */
    uint64_t pumped_poll;   /* engine's polls at its last pump_in (urgent data) */
    struct bridge *next, *prev;        /* every bridge */
    struct bridge *pending_next;       /* waiting for the unix listener */
    /* fifo.c: accepted, held until the other engines of its listener's
     * group have read past stamp (its confirming datagram's receive time) */
    uint64_t stamp;
    rudp_time held_at;                 /* ... since (shim_now) */
    unsigned held : 1;
    struct bridge *held_next;          /* e->fifo_held, by stamp */
} bridge;

typedef struct cmd {
    int type;
    union {
        shim_connect_req c;
        shim_listen_req l;
        struct {          /* CMD_LISTEN_CLOSED */
            uint64_t id;
            struct shim_lclose_wait *wait; /* the closer waits for it, or NULL */
        } lc;
        void *ctl;        /* CMD_CONTROL: a rudp-stat request (control.c); CMD_YIELD */
        struct {          /* CMD_SET_CC, CMD_SET_MARK: an option the app set */
            uint64_t id;  /* connection or listener */
            int listener;
            const rudp_cc_ops *cc;  /* CMD_SET_CC: TCP_CONGESTION */
            int level, opt, value;  /* CMD_SET_MARK: IP_TOS and the like; CMD_SET_CORK */
            uint32_t sndbuf, rcvwnd, lowat; /* CMD_SET_BUF (connopts.c) */
        } set;
    } u;
    lgroup *group;        /* CMD_LISTEN: the group the socket belongs to, or NULL */
    struct cmd *next;
} cmd;

/* CMD_LISTEN_CLOSED: the app closed listener u.lc.id; u.lc.wait, if set,
 * is told once this engine has let go of what the listener held
 * (shim_engine_lclose_done). */
/* CMD_YIELD: the application binds UDP where a listener is (portshare.c),
 * u.ctl its request. */
/* CMD_ADOPT: a child's fds to copy into our table, u.ctl (adopt.c). */
enum { CMD_CONNECT = 1, CMD_LISTEN, CMD_LISTEN_CLOSED, CMD_CONTROL, CMD_YIELD, CMD_SET_CC,
       CMD_SET_MARK, CMD_SET_BUF, CMD_SET_CORK, CMD_ADOPT };

/* Engines (threads) of one process. Engine 0 serves everything at first;
 * a listener calls in all of them, each with its own UDP socket in the
 * listener's SO_REUSEPORT group; new connections go to the least busy
 * engine running. Each engine owns its core context, sockets and bridges:
 * nothing of one is touched by another. */
struct engine {
    int paused;           /* parked at its safe point (G.mu) */
    int broken;           /* its epoll failed: it stopped (G.mu) */
    cmd *q_head, *q_tail; /* commands from app threads (G.mu) */
    _Atomic unsigned nbridges; /* for choosing an engine */
    int roam_due;              /* a client socket's sends failed (roam.c) */
    int nl_fd;                 /* roam.c: rtnetlink news of addresses and routes, 0: none */
    int nl_type;               /* W_NETLINK, for epoll dispatch */
    rudp_time roam_at;         /* roam.c: routes changed, connections looked at then */
    uint64_t nl_foreign;       /* roam.c: rtnetlink messages not from the kernel, dropped */
    pthread_t thread;     /* a keeper joins its extra engines */

    int epfd, evfd;
    uint64_t evfd_ino;    /* evfd's inode: a CLONE_VM child checks its copy (adopt.c) */
    int event_type;       /* W_EVENT, for epoll dispatch */
    rudp_ctx *ctx;
    shim_udpio *io;       /* batched UDP output (udpio.c) */
    esock **socks;
    uint32_t nsocks;
    bridge *bridges;
    bridge *pending;
    rudp_time retry_at;
    rudp_time watch_at;         /* portwatch.c's next look, 0: nothing watched */
    struct mmsghdr *msgs;
    struct iovec *iovs;
    struct sockaddr_storage *addrs;
    uint8_t (*ctrls)[128];
    uint8_t *rxbuf;
    uint64_t accept_retries;
    struct fallback *fallbacks; /* connects that may go over kernel TCP (fallback.c) */
    rudp_time fallback_at;      /* when shim_fallback_timer wants to run */
    uint64_t tcp_accepted; /* plain TCP connections handed to the app */
    uint64_t squatted;    /* handoffs refused: a listener's name held by another */
    uint64_t wakeups;     /* epoll waits that returned */
    uint64_t polls;       /* epoll_pwait2 calls that returned, the batch's own too */
    uint64_t longest_turn; /* ns from a wake-up to the end of its turn */
    uint64_t timed_wakeups, late_ns; /* those ended by a deadline; summed lateness */
    /* listeners' TCP sockets held through TIME_WAIT (portshare.c) */
    int tw_fd[SHIM_TW_HELD];
    rudp_time tw_at[SHIM_TW_HELD];
    int ntw;
    /* forward.c: datagrams other engines hand over (a lock-free stack,
     * pushed by them, taken whole by this engine), how many are queued,
     * and this engine's counts */
    _Atomic(struct fwd_dgram *) fwd_head;
    _Atomic unsigned fwd_queued;
    uint64_t handed_out, handed_in, handed_dropped;
    /* xgroup.c: sockets connected to other processes' members, and counts */
    struct xpeer *xpeers;
    unsigned nxpeers;
    uint64_t xg_out, xg_in, xg_dropped, xg_orphans;
    uint64_t xg_unknown;  /* not sent: the name another uid's, or unknown */
    int xg_pending;       /* records wait in xpeers: shim_xgroup_flush */
    uint8_t *xg_msg;      /* a member's message read into (XG_MSG_MAX bytes) */
    /* fifo.c: accepted connections held for the group's order (by stamp),
     * members read this turn, and the stamp of the datagram being fed */
    bridge *fifo_held;
    esock *fifo_dirty;
    uint64_t rx_stamp;
    uint64_t fifo_held_n, fifo_held_ns; /* its figures */
    /* fifo.c: stamped datagrams other engines handed to this one (forward.c)
     * and not yet settled: taken and handled to the end of a turn, so a
     * handshake one completed is in its member's `oldest`; how many were
     * ever settled; how many this turn took; and whether it holds
     * connections for their turn (woken when a hand-over settles) */
    _Atomic unsigned fwd_unsettled;
    _Atomic uint64_t fwd_settled;
    unsigned fwd_taken;
    _Atomic int fifo_waits;
    uint32_t ep_hint;     /* portshare.c: the last socket shim_port_endpoint_sock found */
    /* What was freed while a batch of epoll events was dispatched, and
     * that a later event of the same batch may still name (data.ptr):
     * kept, its type cleared, until the batch is done (shim_engine_bury) */
    void **graves;
    uint32_t ngraves, graves_cap;
    int dispatching;
    engine_figures fig;   /* its figures for a signal's RUDP_STATS (G.mu) */
    int fig_taken;        /* ... taken (G.mu) */
};

struct engines {
    pthread_mutex_t mu;   /* guards what is marked G.mu here and in struct engine */
    pthread_cond_t cv;
    int nrun;             /* engines [0, nrun) were started (G.mu) */
    int broken;           /* an engine failed: no new connections (G.mu) */
    pid_t pid;
    int pause_req;        /* an app thread wants every engine still (G.mu) */
    int in_handoff;       /* forking a keeper: the fork handlers keep state */
    int keeper_mode;      /* this process is a keeper (keeper.c) */
    int handed_over;      /* a keeper took the engines: the process ends (G.mu) */
    _Atomic int sig_handoff; /* a fatal signal asked engine 0 for a keeper: 1, done: 2 */
    _Atomic int stats_asked;   /* a signal wants RUDP_STATS: each engine takes its figures */
    _Atomic int stats_printed; /* ... and the last one printed them all */
    struct engine e[SHIM_ENGINES_MAX];
};

extern struct engines G;

/* An engine thread's loop (arg: its struct engine); returns in a keeper
 * once nothing is left. */
void *shim_engine_loop(void *arg);

/* Sets up engine e (the next not running) and starts its thread; G.mu
 * held (engines.c starts them, engine.c knows how). */
int shim_engine_start_locked(struct engine *e);

/* A member of g that will never be, or was never used: the others need
 * not wait for it; the last one frees g. NULL: nothing. */
void shim_lgroup_drop(lgroup *g);
/* The group's last member is gone: closes its tcp_fd and frees it. */
void shim_lgroup_free(lgroup *g);

/* The listener on s (s->listener set) stops, no process holding the app's
 * listener any more: it takes no more handshakes, its plain TCP stops
 * (shim_tcpl_stop), and s loses the listener's reference (s may close).
 * On s's engine's thread. */
void shim_engine_stop_listening(esock *s);
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

/* ---- roam.c: a client connection moves to a new socket ---- */

/* b's connection goes on from a new UDP socket connected to its server
 * (why: for the log), at most every 250 ms; the old socket stays open
 * and read until the next move or the bridge's end. */
void shim_roam_rebind(bridge *b, rudp_time now, const char *why);
/* After a flush: moves the connections whose sockets' sends failed. */
void shim_roam_due(struct engine *e, rudp_time now);
/* udpio's error callback (user: the engine). */
void shim_roam_send_error(void *user, int fd, int err);
/* e listens to rtnetlink's news of addresses and routes (once; at its
 * first client connection): 0, or a negative errno (no rtnetlink here,
 * e.g. a sandbox: send errors and silence still make connections move). */
int shim_roam_watch(struct engine *e);
/* e->nl_fd is readable: a client connection whose source address went
 * away moves to a new socket at once; news that routing changed sets
 * e->roam_at, a short while later, so that a burst is looked at once. */
void shim_roam_netlink(struct engine *e, rudp_time now);
/* e->roam_at has come: the connections for which routing now picks another
 * source address move, each at most every 250 ms. */
void shim_roam_timer(struct engine *e, rudp_time now);

/* pktctl.c: the source address and marks of accepted connections'
 * datagrams on their listener's shared socket. */
/* b was accepted (its conn and sock set): its datagrams' source. */
void shim_pktctl_accepted(bridge *b);
/* The control a datagram on s to peer needs, from its connection's send
 * tag and the address its peer reached (local, NULL: unknown), built in
 * *ctl; NULL: none. */
const shim_udpio_ctl *shim_pktctl_for(const esock *s, const rudp_addr *peer,
                                      const rudp_addr *local, uint64_t tag,
                                      shim_udpio_ctl *ctl);
/* An option set on b's accepted socket (CMD_SET_MARK; value as the
 * kernel reads it back): from now on b's datagrams carry it. */
void shim_pktctl_set_mark(bridge *b, int level, int opt, int value);
/* Before a mark of listener socket s changes: s's connections that have
 * none of their own keep its present value. */
void shim_pktctl_listener_mark(esock *s, int level, int opt);

/* Takes e's figures (on e's thread, or with e paused). */
void shim_engine_figures(struct engine *e, engine_figures *f);

/* On e's thread, when a signal asked for RUDP_STATS: records e's figures;
 * the last engine to do so prints them all. */
void shim_engine_stats_answer(struct engine *e);

/* Anything a process's death would cut off: a bridge, a listener, a queued
 * command, or a connection whose data or FIN is not yet acknowledged. */
int shim_engine_busy(void);

/* In a keeper: whether the process that handed its engines over (at exit,
 * _exit or a fatal signal) may still be exiting, so that its copies of the
 * app's listeners must not count as held (keeper.c). */
int shim_keeper_handing_over(rudp_time now);

/* Engine 0's thread, asked by a fatal signal's stand-in: hands the engines
 * to a keeper and stays parked (keeper.c). */
void shim_keeper_take_signal(struct engine *self);

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
 * counts as parked. shim_engine_resume (shim.h) releases them. */
void shim_engines_pause(struct engine *self);
/* The backlog of the listener whose app socket has inode ino, or -1. */
int shim_engines_listener_backlog(uint64_t ino);
/* Whether this process's engines may be handed over now, and if so (not
 * for exec, which may fail and resume), that they are: the process ends,
 * and a second keeper (_exit racing a fatal signal) must not follow. */
int shim_engines_may_hand_over(int for_exec);
/* fn(e, now) for each engine started. */
void shim_engines_each(shim_engine_fn fn, rudp_time now);
/* In the keeper, forked with the engines paused: they are this process's
 * now (keeper mode, its pid, nothing paused, listeners checked at once,
 * its own control socket). Returns the pid that handed them over; *n, how
 * many engines. */
pid_t shim_engines_keep(int *n);
/* The keeper runs its engines, engine 0 on this thread, until each is
 * done. */
void shim_engines_run_kept(void);
/* At exit with no keeper: the engines (paused) say what ends with them. */
void shim_engines_report_remaining(void);
/* A fatal signal's handoff is done (sig_handoff 2); self (engine 0's
 * thread, paused; NULL: none) waits out the pause. */
void shim_engines_signal_done(struct engine *self);

/* Queues c for engine e and wakes it; G.mu held. Frees c and returns -EIO
 * if e cannot take commands (broken, or a keeper's engine that finished). */
int shim_engine_push_locked(struct engine *e, cmd *c);
/* Queues c for engine 0 (G.mu taken here); -ENOSYS when no engine runs,
 * and in a CLONE_VM child -errno when it cannot wake engine 0 (adopt.c).
 * c is freed on failure. */
int shim_engine_push_any(cmd *c);

/* ---- adopt.c: a CLONE_VM child's fds, copied into the owner's table ---- */

struct shim_adopt_req;
/* CMD_ADOPT, on the engine thread: copies the child's fds (pidfd_getfd),
 * answers and wakes it. Consumes the engine's reference. */
void shim_adopt_run(struct shim_adopt_req *a);
/* In a child with an fd table of its own: a number of its table that
 * writes to e's eventfd (*own 1: a copy the caller closes after), or
 * -errno if it cannot have one (pidfd_getfd refused). */
int shim_adopt_wake_fd(struct engine *e, int *own);

/* CMD_LISTEN_CLOSED, on the engine thread, after the command: tells the
 * closer waiting on w (may be NULL) that this engine is done with it, and
 * drops the engine's reference. */
void shim_engine_lclose_done(struct shim_lclose_wait *w);

/* A keeper's engine whose work is done may leave, unless a command came
 * meanwhile: then (1) it takes no more (it counts as broken). 0: run on. */
int shim_engine_retire(struct engine *e);

/* Where shim_engine_print_figures sends each line (no newline at its end). */
typedef void (*shim_line_fn)(void *arg, const char *text);

/* The figures of engines fig[0..n), summed, one subject per line, as
 * RUDP_STATS prints them and rudp-stat shows them: each line goes to
 * line(arg, text). */
void shim_engine_print_figures(const engine_figures *fig, int n, shim_line_fn line, void *arg);

/* ---- forward.c: a datagram for another engine's connection ---- */

/* Bits of a connection ID that name the engine which chose it (0 with one
 * engine: RUDP_ENGINES=1 tags nothing, and nothing is ever handed over). */
unsigned shim_forward_tag_bits(void);
/* read_udp: rudp_ctx_input gave back a datagram received on s (local and
 * peer as it had them, local NULL: unknown) whose connection ID engine
 * `owner` chose: queued for that engine, never waiting for it (a full
 * queue drops it: the protocol recovers a lost datagram). A socket that is
 * not a listener's, or an owner that is not running, gets it taken here as
 * a stranger's (rudp_ctx_input_handed: a stateless reset, unkeyed). */
void shim_forward(esock *s, unsigned owner, const rudp_addr *local, const rudp_addr *peer,
                  const uint8_t *buf, size_t len, rudp_time now);
/* On e's thread after its eventfd was read: feeds what other engines
 * handed it to its core, each on its own socket bound where the datagram
 * arrived (the members of a SO_REUSEPORT group are one endpoint). */
void shim_forward_take(struct engine *e, rudp_time now);

/* xgroup.c: a SO_REUSEPORT group spanning processes. */
/* The member field's width in every connection ID the shim's engines
 * choose (rudp_ctx_set_member_bits). */
#define SHIM_XG_BITS 6
/* In the application's thread, for a listener whose UDP socket udp_fd has
 * SO_REUSEPORT: a member tag (0: none) and its abstract socket in *xfd. */
unsigned shim_xgroup_join(int udp_fd, int *xfd);
/* On engine 0: listener s takes member socket xfd (watched). */
void shim_xgroup_attach(esock *s, int xfd, unsigned tag);
/* s closes: its member socket too. */
void shim_xgroup_detach(esock *s);
/* W_XGROUP readable. */
void shim_xgroup_event(xgsock *x, rudp_time now);
/* A datagram read on listener socket s for member `tag` of its group
 * (rudp_ctx_input's RUDP_INPUT_MEMBER + tag): to that member, at the next
 * shim_xgroup_flush. */
void shim_xgroup_forward(esock *s, unsigned tag, const rudp_addr *local, const rudp_addr *peer,
                         const uint8_t *buf, size_t len, rudp_time now);
/* After reading a socket: what waits for each member, one message each. */
void shim_xgroup_flush(struct engine *e, rudp_time now);

/* ---- bridge.c: the pump between an app's unix socket and a connection ---- */

/* A new bridge of engine e, in its list, with no fds, connection or slot
 * yet (the caller fills them in); NULL when out of memory. */
bridge *shim_bridge_new(struct engine *e);
/* Sets b's epoll interest in its efd to ev (0: EPOLLHUP alone). */
void shim_bridge_watch(bridge *b, uint32_t ev);
/* Sets SO_OOBINLINE on a new bridge's engine end: the app's urgent byte is
 * read in the stream, at its mark (pump_in in bridge.c). */
void shim_bridge_oob_init(int efd);
/* Our end's send buffer: with the window, what an app that reads nothing
 * holds unread, as TCP's SO_RCVBUF bounds it. */
void shim_bridge_efd_size(int efd);
/* Engine e's epoll reported ev on bridge b's efd: moves what can move
 * between the app and the connection; may free b. */
void shim_bridge_event(bridge *b, uint32_t ev, rudp_time now);
/* The core reported ev (RUDP_EV_*) for connection c of engine e: an
 * accepted connection gets a bridge and goes to the app's listener; the
 * others' bridges move data, finish a handshake, or end (b freed). */
void shim_bridge_conn_event(struct engine *e, rudp_conn *c, unsigned ev, rudp_time now);
/* acceptq.c: listener s's accept queue, counted with the other engines of
 * its group (s->group) or alone: handshakes are answered only while the
 * app's unix listener, plus what every engine holds on the way to it, has
 * room. Call _attach once s->listener exists; _handed after each
 * connection s put in the app's unix listener (rudp or plain TCP). */
void shim_acceptq_attach(esock *s);
void shim_acceptq_handed(esock *s);
/* ---- fifo.c: accept order across a listener's engines ---- */

/* At listen, app thread: the group's members fds[0..n) (by engine index)
 * get kernel receive timestamps (SO_TIMESTAMPNS) and are known to the
 * others. */
void shim_fifo_group_init(lgroup *g, const int *fds, int n);
/* Whether s is a member of a group of more than one engine: its accepted
 * connections go through the FIFO. */
int shim_fifo_on(const esock *s);
/* read_udp, before each read of such a socket: marks it being read and
 * returns CLOCK_REALTIME (ns) taken before the read. */
uint64_t shim_fifo_reading(esock *s);
/* ... after it: the read began at t0, its datagrams' latest stamp was
 * last (0: none), and it left the socket empty (drained) or not. */
void shim_fifo_read(esock *s, uint64_t t0, uint64_t last, int drained);
/* on_accept: holds b (accepted on a member, confirmed at stamp) until its
 * turn: 1; 0 if b goes to the app now (no FIFO, no stamp). */
int shim_fifo_hold(bridge *b, uint64_t stamp);
/* The end of e's turn: publishes what its members read, and hands to the
 * app the held connections whose turn came. Returns how many it handed. */
int shim_fifo_turn(struct engine *e, rudp_time now);
/* b is freed: it leaves the held list. */
void shim_fifo_forget(bridge *b);
/* Engine e's member of g closes, or never was: the others stop asking
 * its socket (g NULL: nothing). */
void shim_fifo_closed(lgroup *g, struct engine *e);
/* UDP socket s of e closes (freed after): it leaves e's list of members to
 * publish, and shim_fifo_closed if it is a member. */
void shim_fifo_sock_closed(esock *s);
/* forward.c: a datagram stamped `stamp` (0: none) is handed to engine to,
 * before the handing engine's horizon can pass it; and e took one. */
void shim_fifo_fwd_out(struct engine *to, uint64_t stamp);
void shim_fifo_fwd_in(struct engine *e, uint64_t stamp);

/* Hands b's accepted connection to the app's unix listener. A full backlog
 * puts b on e->pending and sets e->retry_at (ACCEPT_RETRY), or, if b was
 * held for its group's accept order (fifo.c), leaves it to shim_fifo_turn
 * to hold again and returns 0; a listener gone or squatted resets the
 * connection, stops listening and frees b. Returns 1 but in that case. */
int shim_bridge_try_accept(bridge *b, rudp_time now);
/* A connecting bridge ends (fallback.c; engine.c when rudp_connect fails).
 * _fail: with err (-errno) for the app, as a failed handshake, and b is
 * freed, unless shim_fallback_rudp_failed says kernel TCP carries on; _end:
 * quietly, its connection aborted, its slot kept readable (retired) for
 * connect(), and b freed. */
void shim_bridge_fail(bridge *b, int err);
void shim_bridge_end(bridge *b, rudp_time now);

/* ---- fallback.c: RUDP_FALLBACK=tcp, the engine's part ---- */

/* do_connect: a connect that may fall back (r->tcp_fd >= 0) gets its
 * fallback state; the TCP socket is the engine's from now on. */
void shim_fallback_start(bridge *b, const shim_connect_req *r, rudp_time now);
/* A connect that never started: its TCP socket (if any) is closed. */
void shim_fallback_cancel(const shim_connect_req *r);
/* The rudp handshake failed with *err (-errno): returns 1 if kernel TCP
 * goes on with the connection (the bridge lives on without b->conn), 0 if
 * the bridge fails (with *err, which TCP's own failure may have replaced). */
int shim_fallback_rudp_failed(bridge *b, int *err, rudp_time now);
/* The rudp handshake completed: kernel TCP is not needed. */
void shim_fallback_rudp_won(bridge *b, rudp_time now);
/* The bridge is freed: its fallback state goes with it. */
void shim_fallback_free(bridge *b);
/* Epoll reported the TCP socket of fallback obj. */
void shim_fallback_event(struct engine *e, void *obj, uint32_t events, rudp_time now);
/* Due at e->fallback_at: probe delays that ran out, swaps to retry. */
void shim_fallback_timer(struct engine *e, rudp_time now);
/* ---- tcpaccept.c: plain kernel TCP on a listener's port ---- */

/* Engine side, with s's reserve_fd already listening (sock.c listened on it
 * when RUDP_ACCEPT_TCP is on): makes it non-blocking and watches it in s's
 * engine's epoll. Only the engine holding reserve_fd calls it (engines.c
 * gives it to engine 0 alone), so one engine accepts the port's TCP. */
void shim_tcpl_start(esock *s);
/* The reserve socket is readable: hands up to a batch of kernel TCP
 * connections to the app's unix listener, each as an fd passed over a
 * unix connection named SHIM_NAME_TCP. A full backlog leaves the rest in
 * the kernel's accept queue and retries at ACCEPT_RETRY. Returns 0, or -1
 * when the app's listener is gone or its name squatted: the caller stops
 * listening (stop_listening, which calls shim_tcpl_stop). */
int shim_tcpl_event(esock *s, rudp_time now);
/* The listener stops: the reserve socket leaves epoll and the LISTEN state
 * (new plain clients are refused, queued ones reset, as when a TCP listener
 * closes); it still holds the port until the esock closes. Called on any
 * member of a listener's group: the others' take the socket out of LISTEN
 * through the group's tcp_fd, and engine 0 stops watching it when it sees
 * the socket hang up. */
void shim_tcpl_stop(esock *s);
/* At a retry (retry_pending): watches again the reserve sockets set aside
 * for a full backlog; the kernel's queue fires at once if it holds any. */
void shim_tcpl_retry(struct engine *e);

/* ---- control.c: the control socket rudp-stat reads ---- */

/* Opens this process's control socket and registers it with engine e
 * (engine 0). Errors are logged; the engine runs without one. */
void shim_control_open(struct engine *e);
/* Closes the control socket and the reports being written: engine 0 that
 * stops (broken, or a keeper's whose work is done), or that never started.
 * On engine 0's thread, or with none running. */
void shim_control_close(struct engine *e);
/* A keeper: closes what it inherited of its parent's control socket, drops
 * the parent's requests queued for any engine, and opens its own (a new pid,
 * a new name) unless engine 0 is broken. Before any engine runs. */
void shim_control_reopen(struct engine *e);
/* A forked child: forget the parent's control state (its fds are closed). */
void shim_control_forget(void);
/* Engine e's epoll reported an event on a W_CONTROL object. */
void shim_control_event(struct engine *e, void *obj, uint32_t events);
/* CMD_CONTROL: engine e's part of a report (engine 0: the report is whole). */
void shim_control_cmd(struct engine *e, void *req);
/* CMD_CONTROL for engine e that stops: passes the request on without its
 * part (engine 0: drops it). */
void shim_control_pass(struct engine *e, void *req);
/* Engine 0, each turn: accepting again after a pause, readers too slow to
 * be kept. Returns when it wants to be called next (RUDP_TIME_NEVER:
 * nothing due). */
rudp_time shim_control_timer(struct engine *e, rudp_time now);

#endif
