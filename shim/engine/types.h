/*
 * engine/types.h: the engines' state (struct engines G, struct engine, a
 * listener's esock and group, a connection's bridge, the command queue).
 * Private to engine/, included through internal.h: engine.h, which the
 * layers above include, only names these types, and what those layers
 * need of them they ask through accessors.c.
 *
 * The threads that own an object are the only ones to touch it: an engine's
 * loop owns its esocks and bridges; G.mu guards what the program's threads
 * and the engines share (the list of engines, their command queues). The
 * features above keep their own state in an area of each engine, esock
 * and lgroup (hooks.h: shim_engine_set_ext), which the engine never reads.
 */
#ifndef SHIM_ENGINE_TYPES_H
#define SHIM_ENGINE_TYPES_H

#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "engine.h"
#include "udpio.h"

/* Accepted connections an engine holds while it has no fd for their
 * bridge (EMFILE: a process at its limit, rudp-supervise in a dial storm),
 * tried again every ACCEPT_RETRY; more are reset, as before. */
#define SHIM_UNBRIDGED 64

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
    shim_acceptq aq; /* the members' one accept queue */
    shim_fifo fifo;  /* the order of its accepted connections (fifo.c) */
    /* then a feature's area (hooks.h), at SHIM_EXT_AT(sizeof(lgroup)) */
} lgroup;

struct engine;

/* An engine's figures at one moment, for RUDP_STATS: taken on its own
 * thread or while it is paused, so nothing is read while it changes; the
 * engines' figures add up field by field (enginestats.c). */
typedef struct engine_figures {
    rudp_stats s;
    shim_udpio_stats u;
    uint64_t wakeups, timed_wakeups, late_ns, longest_turn, squatted, memory, gso_on;
    uint64_t timer_missed; /* engine.c: the timerfd past its time by SHIM_TIMER_SLACK */
    uint64_t tfd_arms;     /* appsend.c: the engine's timerfd armed for a time */
    uint64_t tfd_sleeps;   /* engine.c: waits the timerfd was to end */
    uint64_t overslept;    /* engine.c: waits that ended past the core's deadline by it */
    uint64_t feat[SHIM_FIG_N]; /* a feature's (hooks.h: shim_engine_set_figures) */
    /* fifo.c: accepted connections held for the accept order, and the
     * time they were held, summed (ns) */
    uint64_t fifo_held, fifo_held_ns;
    /* appsend.c: writes an application thread sent itself, and those that
     * found the engine in its turn (written through the bridge instead) */
    uint64_t app_sends, app_busy, app_recvs, app_polls, app_epolls, app_selects, app_lapsed;
    uint64_t app_direct, app_io_turns, ring_quiet;
    /* appwhole.c: whole-set waits turned off for another thread's wait on
     * the same engine's set */
    uint64_t app_shared_off;
    uint64_t app_io_ranout;
    /* txring.c: writes handed to the engine in memory, eventfd writes for
     * them, writes that found no room (through the bridge), records taken
     * into their connections, and dropped (the connection gone) */
    uint64_t ring_writes, ring_bells, ring_full, ring_taken, ring_lost;
    /* apprecv.c: bytes a poll() told of kept in the connection for the
     * reader, reads that took them from there, and keeps passed on into
     * the bridge unread (by the engine, or a call that could see them);
     * keeps for an event loop's epoll wait, and the events it was told
     * from them */
    uint64_t app_kept, app_taken, kept_passed, app_kept_ep, app_told_ep;
    uint64_t keeps_off; /* bridgepump.c: bridges kept no more (SHIM_KEEP_LATE) */
    /* apprecv.c: closes whose thread read the connection's socket first,
     * and those that found datagrams there */
    uint64_t app_closing, app_closing_in;
    uint64_t bridges_grown; /* bridgepump.c: efd buffers grown for a reader that kept up */
    /* rxmod.c: sockets left unwatched, reads of them at wake-ups, the
     * datagrams those reads took and the most one took (summed as the
     * largest: add_figures), reads that took all a read takes (the next
     * at once), sockets watched again for good */
    uint64_t mod_on, mod_reads, mod_dgrams, mod_largest, mod_again, mod_refused;
    /* ... and sockets left unwatched as a paced sender's, datagrams timed
     * by their kernel receive time, earlier than read (engine.c) */
    uint64_t mod_tx_on, mod_tx_reads, mod_tx_dgrams, stamped_in, stamped_ns;
} engine_figures;

typedef struct esock {
    shim_watch w; /* first, for epoll dispatch (engine.c) */
    int fd;
    struct engine *e;     /* the engine that owns it */
    uint32_t idx;
    int refs;             /* listener + connections using this socket */
    int family;           /* socket family of the UDP socket */
    int connected;        /* a client's socket: one peer, send() */
    rudp_addr peer;       /* connected client socket: its one peer */
    rudp_addr opened_at;  /* a client's reopened port (roam.c): the address it had */
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
    int aq_resv;            /* a place in aq taken by room(), not yet counted */
    uint64_t aq_at;
    rudp_time aq_asked;
    rudp_time alive_check;  /* closed here but held elsewhere: next check */
    rudp_time scarce_until; /* out of fds lately: one hand-over at a time (bridgeaccept.c) */
    int pktinfo;          /* wildcard-bound: learn each datagram's destination */
    uint32_t drops_seen;  /* the socket's drop count at its last report */
    struct lgroup *group; /* a listener's socket: its SO_REUSEPORT group */
    int idle;             /* unused, held open while its group lives */
    int reserve_fd;       /* TCP socket holding the port of a listener */
    shim_name lname;      /* the unix listener's name */
    struct sockaddr_un lun;
    socklen_t lun_len;
    struct bridge *owner; /* a client's socket: its bridge (roam.c) */
    uint16_t client_port; /* ... its port, counted in G.clients (0: not) */
    int send_failed;      /* ... whose sends the kernel refused with this errno */
    rudp_time refused_at; /* ... when this host last refused its sends (EPERM,
                             ENOBUFS...; 0: never since its last silence, roam.c) */
    int heard;            /* a datagram arrived on it */
    /* apprecv.c: app threads waiting on it themselves, while the engine
     * does not watch it; found again by idx and sid */
    uint64_t sid;
    int app_waiters;      /* an app thread waits on it (one at most) */
    int app_unwatched;    /* the engine does not watch it... */
    uint32_t app_gen;     /* ... bumped when it does again, */
    rudp_time app_lease;  /* ... by then at the latest */
    /* rxmod.c: not watched while its connection's bulk arrives, read at
     * the engine's wake-ups; the bridges on it, the turn that last kept it
     * so, and when a read last found datagrams; mod_off: never again (an
     * overflow) */
    int mod_unwatched, mod_off, mod_full; /* mod_full: its last read took all a read takes */
    int mod_n;
    int mod_tx; /* ... as a paced sender's: its ACKs read at the pacer's wake-ups */
    int stamps; /* SO_TIMESTAMPNS: 1 on (read_udp times each datagram by
                 * it), -1 refused, 0 not asked (rxmod.c: a paced sender's) */
    rudp_time drained_at; /* read_udp: when a read last found it empty */
    uint64_t mod_turn;
    rudp_time mod_heard_at;
    /* fifo.c: a group member's reading this turn, published at its end:
     * the horizon reached, whether the last read found it empty, and the
     * engine's list of members to publish */
    uint64_t fifo_pend;
    int fifo_drained, fifo_dirty;
    struct esock *fifo_next;
    /* then a feature's area (hooks.h), at SHIM_EXT_AT(sizeof(esock)) */
} esock;

/* Bridges an engine keeps bytes for at once (apprecv.c's keep): one per
 * thread that polled, and an event loop's connections whose bytes its
 * epoll wait tells of (appwhole.c); past it, bytes take the bridge. */
#define SHIM_KEEP_BRIDGES 64

typedef struct bridge {
    shim_watch w; /* first, for epoll dispatch (bridge.c) */
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
    unsigned late_data : 1; /* bytes came for an app that had closed (or shut
                               reading) before they could reach it */
    unsigned out_full : 1;  /* our last write to efd found it full: the
                               connection holds bytes that came before the
                               app made room (unread at its close, not late) */
    unsigned unix_up : 1;   /* efd is connected to the application */
    unsigned hup : 1;       /* EPOLLHUP seen: out of epoll until we can read */
    unsigned bulk_in : 1;   /* the last bridge read filled all it was offered */
    unsigned in_drained : 1; /* the last pump_in ended at an empty efd (EAGAIN, or
                                a read short of its room): what comes after it,
                                epoll tells while EPOLLIN is watched (bridge.c) */
    unsigned in_held : 1;   /* the send buffer was full: efd unread until it has
                               rudp_conn_write_threshold() of room (bridge.c) */
    unsigned draining : 1;  /* failed: passing on what arrived before efd closes */
    unsigned early : 1;     /* a client with a token: the app writes before the
                               handshake ends, its first bytes ride with the SYN */
    unsigned want_token : 1; /* a client that opted in to 0-RTT: store the server's token */
    unsigned proof : 1;     /* server: writes its listener's secret first (names.c) */
    unsigned await_client : 1; /* server: its client is ours, not yet connected
                                  (bridge.c: local_client) */
    unsigned kept : 1;      /* apprecv.c: what came waits in the connection for the
                               reader a poll() told of it, not in efd */
    unsigned kept_counted : 1; /* ... counted in the engine's nmarked and the
                                  process's kept_all, until its bytes are in efd */
    unsigned kept_edge : 1; /* bytes came since an edge-triggered set was told of
                               the kept ones (apprecv.c's kept_walk) */
    unsigned efd_dirty : 1; /* written into efd since the app was last found
                               to have read all of it (bridgepump.c: keep) */
    uint32_t kept_rd;       /* ... the connection's readable bytes when last kept or taken */
    rudp_time kept_since;   /* ... when kept (passed on by then + SHIM_KEEP_FOR) */
    uint8_t keep_offs;      /* ... SHIM_KEEP_LATE keeps passed on unread in a row
                               (the slot's kept_unread), counted until a take: */
    rudp_time keep_off_until; /* ... kept no more before this (bridgepump.c) */
    int app_fd;             /* a connecting app end's fd number, -1: see sock.c's filler */
    uint64_t app_ino;
    int app_sndbuf;
    struct fallback *fb;    /* RUDP_FALLBACK=tcp while connecting (fallback.c), or NULL */
    unsigned owns_sock : 1; /* a client's: holds a reference on sock (and old_sock) */
    esock *old_sock;        /* roam.c: the socket it left, still read, or NULL */
    esock *standby;         /* standby.c: the socket not in use (the standby path,
                               or the primary after a handover), or NULL */
    rudp_time roam_next;    /* roam.c: no new socket before this */
    uint64_t pumped_poll;   /* engine's polls at its last pump_in (urgent data) */
    rudp_time out_win;      /* bridgepump.c's bulk_out: the window's start, */
    size_t out_win_bytes;   /* and the bytes passed to the app since */
    int efd_buf;            /* bridgepump.c: efd's SO_SNDBUF as grown, 0 the first */
    uint8_t grow_due;       /* bridgepump.c: the app took a bulk mark's bytes; efd grows
                             * on the engine's thread */
    struct bridge *next, *prev;        /* every bridge */
    struct bridge *pending_next;       /* waiting for the unix listener */
    /* fifo.c: accepted, held (by stamp: its confirming datagram's receive
     * time) until the other engines of its listener's group have read past
     * after (its SYN's) and hold none completed before it */
    uint64_t stamp, after;
    rudp_time held_at;                 /* ... since (shim_now) */
    unsigned held : 1;
    struct bridge *held_next;          /* e->fifo_held, by stamp */
    uint32_t indexed;                  /* appsend.c: its place in e->by_slot, UINT32_MAX none */
    uint64_t app_peer_ino;             /* appsend.c: the app end's inode, 0 not asked, ~0 unknown */
    /* txring.c: the app's bytes taken from the engine's arena that the
     * connection had no room for yet; the bridge is not read until they
     * are in (they were written before anything in it) */
    uint8_t *txo;
    uint32_t txo_len, txo_cap;
    uint64_t out_gen;                  /* apprecv.c: writes into efd (and its shutdown) so far */
} bridge;

/* txring.c: app threads' writes for an engine's connections, in memory
 * (records of slot, id and bytes), for the engine to take in its turn;
 * buf and len under mu, which the engine also holds while it reads a
 * bridge. */
typedef struct shim_txarena {
    pthread_mutex_t mu;
    uint8_t *buf;
    uint32_t len;
    int closed;                /* the engine paused (a fork, a handoff): no record taken */
    _Atomic uint32_t any;      /* len != 0 (a hint without mu) */
    _Atomic int rung;          /* the eventfd written since the engine last took */
    _Atomic uint64_t writes, bells, full; /* writes taken, eventfd writes, no room */
} shim_txarena;

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
            rudp_time keepalive, idle, user; /* CMD_SET_TIMEOUTS (connopts.c) */
        } set;
    } u;
    lgroup *group;        /* CMD_LISTEN: the group the socket belongs to, or NULL */
    struct cmd *next;
} cmd;

/* CMD_LISTEN_CLOSED: the app closed listener u.lc.id; u.lc.wait, if set,
 * is told once this engine has let go of what the listener held
 * (shim_engine_lclose_done). The types of commands: hooks.h. */

/* Engines (threads) of one process. Engine 0 serves everything at first;
 * a listener calls in all of them, each with its own UDP socket in the
 * listener's SO_REUSEPORT group; new connections go to the least busy
 * engine running. Each engine owns its core context, sockets and bridges:
 * nothing of one is touched by another. */
struct engine {
    int paused;           /* parked at its safe point (G.mu) */
    /* its fds in a table of their own (enginestart.c, RUDP_FD_TABLE):
     * asked, and its thread's verdict (0 pending, 1 apart, -1 refused) */
    int apart;
    _Atomic int apart_state;
    pid_t apart_tid;  /* its thread, whose /proc/self/task/TID/fd lists that table */
    /* evfd's number in each fd table where the engines keep their fds
     * apart: [0] the program's (evfd itself), [k + 1] engine k's own, -1
     * not taken yet (shim_engine_doorbell) */
    _Atomic int evfd_in[SHIM_ENGINES_MAX + 1];
    /* places kept in its own table for the other engines' eventfds: each
     * a copy of its own evfd, closed just before a copy of another's is
     * taken there (shim_engine_doorbell), so that a full table still can;
     * -1 once used */
    _Atomic int spare[SHIM_ENGINES_MAX];
    /* work for it to do while parked, on its thread (an engine's own fd
     * table: shim_engines_run_parked), NULL once done (G.mu) */
    void (*park_fn)(void *);
    void *park_arg;
    int aq_resv_n;        /* its sockets holding a place (esock aq_resv) */
    int broken;           /* its epoll failed: it stopped (G.mu) */
    cmd *q_head, *q_tail; /* commands from app threads (G.mu) */
    /* its doorbell written for the commands queued: later ones need not
     * (G.mu; cleared as it takes the queue, after reading the doorbell) */
    int rung;
    _Atomic unsigned nbridges; /* for choosing an engine */
    /* for choosing one too (engines.c, shim_engine_saturated): the share of
     * the last LOAD_WINDOW it spent in its turns, in percent, and when that
     * was measured (shim_now); written by its thread only */
    _Atomic unsigned load_pct;
    _Atomic uint64_t load_at;
    rudp_time load_since, load_busy;
    int roam_due;              /* a client socket's sends failed (roam.c) */
    int nl_fd;                 /* roam.c: rtnetlink news of addresses and routes, 0: none */
    shim_watch nl_w;           /* nl_fd's, for epoll dispatch */
    rudp_time roam_at;         /* roam.c: routes changed, connections looked at then */
    int roam_servers;          /* roam.c: a server connection's address went and routing
                                  had no other yet, or news was lost: looked at then too */
    uint64_t nl_foreign;       /* roam.c: rtnetlink messages not from the kernel, dropped */
    pthread_t thread;     /* a keeper joins its extra engines */

    int epfd, evfd;
    /* The UDP sockets and the bridges are watched in an epoll set of their
     * own, iofd, itself watched in epfd (io_w): an app thread that waits
     * for many connections (appwhole.c) takes them all from the engine with
     * one epoll_ctl (io_unwatched) and waits on iofd itself. io_waiters,
     * io_gen and io_lease as an esock's app_* fields; ioevs: iofd's batch
     * (turn_mu). */
    int iofd;
    shim_watch io_w;
    int io_unwatched, io_waiters;
    uint32_t io_gen;
    rudp_time io_lease;
    struct epoll_event *ioevs;
    uint64_t app_io_turns; /* turn_mu: app threads' turns that read iofd */
    /* iofd lingers with the app (unwatched, no waiter): a write in memory
     * (txring.c) rings no doorbell, the app's next wait or the engine at
     * the linger's end takes it (set under turn_mu, read without) */
    _Atomic int io_linger;
    _Atomic uint64_t ring_quiet; /* writes that rang no doorbell so */
    /* appsend.c: an application thread that writes to one of this
     * engine's bridges and finds the engine asleep sends the bytes itself.
     * turn_mu is held by the engine for each turn, all but its epoll wait,
     * and by such a thread for its send; what it guards is the engine's
     * (the core context, the bridges, the UDP output, by_slot, the fields
     * below). by_slot finds a bridge by its slot (allocated on first use);
     * tfd, a timerfd in the engine's epoll, wakes the engine at a deadline
     * the thread's send made earlier than the one the engine sleeps to
     * (sleep_until); tfd_at is what it is armed for, 0: disarmed. */
    pthread_mutex_t turn_mu;
    int turn_open;              /* the loop runs: app threads may send and receive */
    _Atomic int asleep;         /* in its epoll wait (a hint, read without turn_mu) */
    _Atomic uintptr_t conn_thread; /* engines.c: the thread whose connects use it */
    _Atomic uint64_t app_shared_off; /* appwhole.c: its path turned off for a second
                                      * thread's wait on its set */
    uint64_t app_io_ranout; /* appwhole.c: lingers of its set that ran to their lease
                             * (the app came to no wait of ours meanwhile) */
    rudp_time conn_thread_at;      /* ... its last connect (G.mu) */
    _Atomic int keeper_idle;    /* a keeper's engine with nothing left to finish (engine.c) */
    _Atomic int cmd_queued;     /* commands wait for its turn (set under G.mu) */
    struct bridge **by_slot;
    int tfd;
    shim_watch tfd_w;           /* tfd's, for epoll dispatch */
    rudp_time sleep_until, tfd_at;
    uint64_t app_sends;         /* turn_mu */
    uint64_t app_recvs;         /* turn_mu: an app thread's wait woken by a datagram (apprecv.c) */
    uint64_t app_polls;         /* ... of which in poll() or ppoll() (interpose/poll.c) */
    uint64_t app_epolls;        /* ... and in epoll_wait() and the like (interpose/epoll.c) */
    uint64_t app_selects;       /* ... and in select() or pselect() (interpose/select.c) */
    rudp_time lease_at;         /* apprecv.c: the earliest of its sockets' app_lease */
    _Atomic int app_lingering;  /* ... its sockets left with the app, no waiter (a hint
                                 * without turn_mu, kept under it) */
    rudp_time ctl_at;           /* the control socket's timer (engine 0), as its loop saw it */
    uint64_t app_turns;         /* ... app threads' turns that ran the engine's part */
    _Atomic int app_declined;   /* ... a reader found the turn taken (no lock) */
    uint64_t app_lapsed;        /* ... sockets taken back when a lease ran out */
    uint64_t app_direct;        /* ... reads given their bytes straight (no bridge) */
    shim_app_direct *direct;    /* ... during a read's turn: its buffer, for direct_b */
    struct bridge *direct_b;
    struct bridge *keep_b;      /* ... during a poll's turn: what comes for it is kept */
    struct bridge *grow_b;      /* bridgepump.c: one whose efd an app thread's take found
                                 * due to grow (grow_due), grown at the engine's next
                                 * wake-up (app_chores) */
    uint64_t keep_ep;           /* ... during an epoll wait's (appwhole.c): the set's key
                                 * (state.h: SHIM_EP_KEY); what comes for a bridge
                                 * registered there alone is kept */
    struct bridge *kept[SHIM_KEEP_BRIDGES]; /* ... the bridges kept (bridgepump.c) */
    _Atomic uint32_t nkept;     /* ... how many (turn_mu; read without it to pass one by) */
    _Atomic uint32_t nmarked;   /* ... kept, or passed on and not all in efd yet (turn_mu;
                                 * read without it to pass the engine by) */
    uint32_t told_next;         /* ... where an epoll wait's walk of them starts (apprecv.c) */
    rudp_time kept_at;          /* ... by when the engine passes them on */
    uint64_t app_kept, app_taken, kept_passed, keeps_off;
    uint64_t app_kept_ep, app_told_ep; /* ... of them for an epoll wait; events it was told */
    uint64_t app_closing, app_closing_in; /* turn_mu: closes that read the socket first */
    uint64_t bridges_grown;     /* bridgepump.c: efd buffers grown (grow_efd) */
    rudp_time mod_at;           /* rxmod.c: by when its unwatched sockets are read */
    uint64_t mod_on, mod_reads, mod_dgrams, mod_largest, mod_again, mod_refused;
    uint64_t mod_tx_on, mod_tx_reads, mod_tx_dgrams, stamped_in, stamped_ns; /* engine_figures' */
    _Atomic uint64_t app_busy;  /* counted without it */
    shim_txarena tx;            /* txring.c: writes app threads put in memory */
    uint64_t ring_taken, ring_lost; /* ... taken into their connections, or dropped (gone) */
    uint64_t evfd_ino;    /* evfd's inode: a CLONE_VM child checks its copy (adopt.c) */
    shim_watch event_w;   /* evfd's, for epoll dispatch (enginestart.c) */
    rudp_ctx *ctx;
    shim_udpio *io;       /* batched UDP output (udpio.c) */
    esock **socks;
    uint32_t nsocks;
    bridge *bridges;
    bridge *pending;
    /* accepted connections with no bridge yet: the engine had no fd for
     * one (EMFILE); tried again at retry_at (bridge.c, SHIM_UNBRIDGED) */
    rudp_conn *unbridged[SHIM_UNBRIDGED];
    unsigned n_unbridged;
    rudp_time retry_at;
    struct mmsghdr *msgs;
    struct iovec *iovs;
    struct sockaddr_storage *addrs;
    uint8_t (*ctrls)[192]; /* pktinfo (v4 and v6 on a dual-stack socket), GRO, SO_RXQ_OVFL,
                            * SO_TIMESTAMPNS: 152 bytes at most on x86-64 */
    uint8_t *rxbuf;
    uint64_t accept_retries;
    struct fallback *fallbacks; /* connects that may go over kernel TCP (fallback.c) */
    rudp_time fallback_at;      /* when shim_fallback_timer wants to run */
    uint64_t squatted;    /* handoffs refused: a listener's name held by another */
    uint64_t wakeups;     /* epoll waits that returned */
    uint64_t polls;       /* epoll_pwait2 calls that returned, the batch's own too */
    uint64_t longest_turn; /* ns from a wake-up to the end of its turn */
    uint64_t timed_wakeups, late_ns; /* those ended by a deadline; summed lateness */
    uint64_t timer_missed;      /* waits the timerfd should have ended, ended by the slack */
    uint64_t tfd_arms;          /* tfd armed for a time (appsend.c, turn_mu) */
    uint64_t tfd_sleeps;        /* waits tfd was to end (engine.c, turn_mu) */
    uint64_t overslept;         /* waits that ended past the core's deadline by the slack */
    uint64_t app_core_passes;   /* the core's timers run by app threads' turns (turn_mu) */
    uint64_t turns_at_sleep;    /* app_sends + app_turns + app_core_passes at the last
                                 * sleep: none since, the wait's own timeout (appsend.c) */
    rudp_time wait_until;       /* when the current (or last) wait ends at the latest */
    /* a feature's area (hooks.h), allocated at the engine's start */
    void *ext;
    /* datagrams wait for other processes (shim_engine_relay_pending): the
     * relay's flush is called after the socket's read */
    int relay_pending;
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
    /* What was freed while a batch of epoll events was dispatched, and
     * that a later event of the same batch may still name (data.ptr):
     * kept, its type cleared, until the batch is done (shim_engine_bury) */
    void **graves;
    uint32_t ngraves, graves_cap;
    int dispatching;
    _Atomic int answering; /* counted in G.answering until this turn's flush (bridge.c);
                            * read by connecting threads (engines.c: wait_answers) */
    unsigned n_awaiting;  /* its bridges with await_client (bridge.c) */
    engine_figures fig;   /* its figures for a signal's RUDP_STATS (G.mu) */
    int fig_taken;        /* ... taken (G.mu) */
};

struct engines {
    shim_mutex mu;        /* guards what is marked G.mu here and in struct engine */
    pthread_cond_t cv;
    int nrun;             /* engines [0, nrun) were started (G.mu) */
    /* An epoll set holding every engine's iofd (appwhole.c): an app thread
     * waiting for many connections waits on it, the engines' sets taken;
     * its number + 1, 0: none (made with the first engine, read without
     * G.mu) */
    _Atomic int appfd1;
    int broken;           /* an engine failed: no new connections (G.mu) */
    pid_t pid;
    int pause_req;        /* an app thread wants every engine still (set under G.mu, atomically) */
    int in_handoff;       /* forking a keeper: the fork handlers keep state */
    int keeper_mode;      /* this process is a keeper (keeper.c) */
    int handed_over;      /* a keeper took the engines: the process ends (G.mu) */
    _Atomic int sig_handoff; /* a fatal signal asked engine 0 for a keeper: 1, done: 2 */
    _Atomic int stats_asked;   /* a signal wants RUDP_STATS: each engine takes its figures */
    _Atomic int stats_printed; /* ... and the last one printed them all */
    /* Client bridges whose app end is already writable while their answer
     * to the handshake has not left yet (on_established): a connect waits
     * while an engine other than its own has one (shim_engine_connect),
     * asleep on this count as a futex word (answer_waiters: how many; each
     * answer sent wakes them). */
    _Atomic int answering;
    _Atomic int answer_waiters;
    _Atomic uint64_t answer_waits; /* connects that waited for it (RUDP_STATS) */
    /* The UDP ports of this process's client sockets, each counted once per
     * socket bound to it (IPv4 and IPv6 may share one): a loopback SYN
     * from one of them is our own connect (bridge.c: local_client). */
    _Atomic uint8_t clients[65536];
    struct engine e[SHIM_ENGINES_MAX];
};

/* Where shim_engine_print_figures sends each line (no newline at its end). */
typedef void (*shim_line_fn)(void *arg, const char *text);

#endif
