/*
 * hooks.h: how the features above the engine take part in its work
 * without the engine naming them. Calls go one way: a listener's port
 * (portshare.c and the files beside it) and a process's lifetime
 * (keeper.c, adopt.c, procenv.c) call the engine; where the engine must
 * reach them (an epoll event on their fd, a tick, a command, a listener
 * opening or closing, a process handing its engines to a keeper) it calls
 * what they registered here, as core/ calls its user through rudp_ctx_ops.
 *
 * Registration happens once, at the feature's init (shim_ports_init,
 * shim_lifetime_init, from the shim's init before any engine runs); engine
 * threads only read what was registered. Nothing registered: the engine
 * does without (the hook is skipped, a query says no).
 *
 * Per-packet paths stay direct calls inside the engine; a hook costs one
 * indirect call per event, tick or command.
 */
#ifndef SHIM_HOOKS_H
#define SHIM_HOOKS_H

#include <stdint.h>

#include "state/state.h"

struct engine;
struct esock;
struct bridge;
struct shim_listen_req;

/* ---- an epoll target of a feature ---- */

/* What the engine calls for an epoll event on an object it watches (on
 * the engine thread that watches it). The engine's own objects (its
 * eventfd, UDP sockets, bridges, control socket, fallback TCP sockets,
 * rtnetlink socket, timerfd) are watched the same way as a feature's: the
 * loop has one dispatch, an indirect call per epoll event (not per
 * datagram: a socket's event reads a batch). */
typedef struct shim_watch_ops {
    void (*event)(void *obj, uint32_t events, rudp_time now);
} shim_watch_ops;

/* The first field of every object in an engine's epoll (data.ptr): type
 * SHIM_WATCHED while watched, 0 once buried (shim_engine_bury(e, obj,
 * &w.type)) or cleared, and what handles its events. */
#define SHIM_WATCHED 1
typedef struct shim_watch {
    int type;
    const shim_watch_ops *ops;
} shim_watch;

/* w is watched: its events go to ops->event. */
void shim_watch_set(shim_watch *w, const shim_watch_ops *ops);
/* Whether w is watched (set and not buried or cleared). */
int shim_watch_on(const shim_watch *w);

/* ---- a listener's socket ---- */

/* What a listener's features do at its socket's turns (the engine thread
 * of s). Every member may be NULL. */
typedef struct shim_listener_ops {
    /* On the app thread, at listen (shim_engine_listen): for a listener
     * whose app set SO_REUSEPORT, its member tag in a group of processes
     * (0: none) and the tag's abstract socket in *xfd (xgroup.c); a
     * member socket's name for another process of ours that wants the
     * port, made before its bind (-1: none; porthand.c). */
    unsigned (*join)(int udp_fd, int *xfd);
    int (*member_name)(int udp_fd);
    /* The rest on the engine thread of s. */
    /* s listens (its listener and accept queue set); r is the
     * request the app thread made, with the fds it holds for them */
    void (*open)(struct esock *s, const struct shim_listen_req *r, rudp_time now);
    /* s's listener stops (before it closes) */
    void (*stop)(struct esock *s);
    /* a connection on s closes first (the app shut down writing before
     * its peer): its TIME_WAIT */
    void (*closing_first)(struct esock *s, rudp_time now);
    /* s's UDP socket closed: 1 if the feature took s->reserve_fd (held
     * through TIME_WAIT), 0 and the engine closes it */
    int (*keep_reserve)(struct esock *s);
    /* s is freed after this: what the features hold of it goes */
    void (*close)(struct esock *s);
    /* A new client (a SYN) on s whose listener closed (s->listener NULL,
     * s->listener_id set): the index of e's socket whose live listener
     * takes it (s->idx: none, refused; UINT32_MAX: left unanswered, for a
     * listener of the group s is leaving to take when the client asks
     * again) */
    uint32_t (*live_twin)(struct engine *e, const struct esock *s);
    /* a connection accepted on s, whose listener stopped, ends (its
     * reference still held: s lives on with others) */
    void (*conn_ended)(struct engine *e, struct esock *s);
    /* the core's same_endpoint (rudp_ctx_ops) */
    int (*same_endpoint)(void *user, uint32_t a, uint32_t b);
    /* whether s takes plain kernel TCP too (rudp-stat's listing) */
    int (*plain_tcp)(const struct esock *s);
} shim_listener_ops;

/* The listener ops every listener's socket gets (do_listen). */
void shim_engine_set_listener_ops(const shim_listener_ops *ops);

/* ---- datagrams for another engine or another process ---- */

typedef struct shim_relay_ops {
    /* bits of a connection ID that name the engine which chose it (read
     * once, at an engine's start) */
    unsigned (*tag_bits)(void);
    /* rudp_ctx_input said another engine's: `owner` (forward.c) */
    void (*to_engine)(struct esock *s, unsigned owner, const rudp_addr *local,
                      const rudp_addr *peer, const uint8_t *buf, size_t len, rudp_time now);
    /* after e's commands: what other engines handed it */
    void (*take)(struct engine *e, rudp_time now);
    /* rudp_ctx_input said another process's: member `tag` (xgroup.c) */
    void (*to_member)(struct esock *s, unsigned tag, const rudp_addr *local,
                      const rudp_addr *peer, const uint8_t *buf, size_t len, rudp_time now);
    /* after a socket was read: what waits for other processes goes */
    void (*flush)(struct engine *e, rudp_time now);
} shim_relay_ops;

void shim_engine_set_relay_ops(const shim_relay_ops *ops);

/* ---- a client connection ---- */

typedef struct shim_client_ops {
    /* RUDP_EV_SERVER_MOVED on b's connection (b owns its socket) */
    void (*server_moved)(struct bridge *b);
} shim_client_ops;

void shim_engine_set_client_ops(const shim_client_ops *ops);

/* ---- engine-wide events ---- */

/* Something happened to engine e (on its thread): SHIM_ON_TICK, its turn
 * reached the time it was due (a feature's timers look at what is due and
 * ask for the next with shim_engine_tick_by); SHIM_ON_RETIRE, a keeper's
 * engine whose work is done stops. */
enum { SHIM_ON_TICK, SHIM_ON_RETIRE, SHIM_ON_N };
typedef void (*shim_engine_fn)(struct engine *e, rudp_time now);
/* fn is called at `when`, after those registered before it; at most
 * SHIM_ON_MAX for each. */
#define SHIM_ON_MAX 8
void shim_engine_on(int when, shim_engine_fn fn);

/* The commands an engine runs, by type: the engine's own, and those whose
 * handler a feature registers (below), which the feature queues with
 * shim_engine_post_locked / shim_engine_post_any: CMD_YIELD, the
 * application binds UDP where a listener is (portshare.c); CMD_ADOPT, a
 * child's fds to copy into our table (adopt.c). */
enum { CMD_CONNECT = 1, CMD_LISTEN, CMD_LISTEN_CLOSED, CMD_CONTROL, CMD_YIELD, CMD_SET_CC,
       CMD_SET_MARK, CMD_SET_BUF, CMD_SET_CORK, CMD_ADOPT, CMD_SET_TIMEOUTS };

/* A command of type `type` (CMD_*, below SHIM_CMD_MAX) with its request
 * (u.ctl), on e's thread; one function for each type. */
#define SHIM_CMD_MAX 16
_Static_assert(CMD_SET_TIMEOUTS < SHIM_CMD_MAX, "hooks.h: shim_hook.cmd has room for every command type");
typedef void (*shim_cmd_fn)(struct engine *e, void *req);
void shim_engine_on_cmd(int type, shim_cmd_fn fn);

/* What a process's lifetime asks of and tells the engine. */
typedef struct shim_lifetime_ops {
    /* In a keeper: whether the process that handed its engines over may
     * still be exiting (its copies of the app's listeners do not count) */
    int (*handing_over)(rudp_time now);
    /* engine 0's thread, when a fatal signal asked for a keeper
     * (G.sig_handoff == 1) */
    void (*take_signal)(struct engine *e);
    /* an engine started (G.nrun counts it; G.mu held) */
    void (*started)(void);
    /* In a child with an fd table of its own (shim_procenv_table() != 0),
     * or where the engines keep their fds in tables of their own: has
     * engine e copy fds[0..n) into its table (shim_adopt_fds); and a
     * number of the child's table that writes to e's eventfd
     * (shim_adopt_wake_fd). Unset: -ENOSYS. */
    int (*adopt_fds)(struct engine *e, int *fds, int n);
    int (*wake_fd)(struct engine *e, int *own);
    /* A connect's kernel TCP won in a keeper or for a CLONE_VM child
     * (fallback.c; relay.c does it): relays carry it on between the
     * bridge's end efd and tfd (shim_relay_start; unset: -ENOSYS);
     * in a keeper after exec, whether a new image takes sockets
     * (shim_exechand_live; unset: 0), tfd sent to it for the app's fd
     * (shim_exechand_send), and its answer (shim_exechand_answer; unset:
     * -1, never); a racing connect ended (shim_exechand_idle). */
    int (*tcp_relay)(int efd, int tfd, uint32_t slot);
    int (*image_live)(void);
    int (*image_send)(int tfd, int app_fd, uint64_t app_ino, uint32_t slot, uint64_t id);
    int (*image_answer)(uint64_t id, int *result);
    void (*race_ended)(void);
} shim_lifetime_ops;

void shim_engine_set_lifetime_ops(const shim_lifetime_ops *ops);

/* ---- a feature's own state in the engine's objects ---- */

/* A feature keeps its state of each engine, each UDP socket (esock) and
 * each listener's group of engines (lgroup) in an area the engine
 * allocates with the object, zeroed, of the size registered here, and
 * never looks into: shim_engine_ext, shim_esock_ext, shim_esock_group_ext
 * (engine.h) find it. An area rather than a pointer the feature would
 * allocate at each open: nothing more to allocate, fail or free, and no
 * pointer to chase on the paths that forward datagrams. One feature
 * (ports/) registers, once, at its init before any engine runs: a second
 * registration is refused (said in the log). */
typedef struct shim_ext_sizes {
    size_t engine, sock, group;
} shim_ext_sizes;

void shim_engine_set_ext(const shim_ext_sizes *sizes);

/* Figures a feature counts for each engine, printed with the engine's own
 * (RUDP_STATS, rudp-stat) where they always were: the feature's figures
 * function adds engine e's counts into fig[SHIM_FIG_*] (on e's thread, or
 * with e paused). */
enum {
    SHIM_FIG_TCP_ACCEPTED,   /* plain kernel TCP connections handed over (tcpaccept.c) */
    SHIM_FIG_HANDED_OUT,     /* forward.c: datagrams handed to the engine owning */
    SHIM_FIG_HANDED_IN,      /* their connection ID, taken from other engines, */
    SHIM_FIG_HANDED_DROPPED, /* and dropped (its queue full) */
    SHIM_FIG_XG_OUT,         /* xgroup.c: to another process's member, from one, */
    SHIM_FIG_XG_IN,
    SHIM_FIG_XG_DROPPED,     /* dropped, for a member gone, */
    SHIM_FIG_XG_ORPHANS,
    SHIM_FIG_XG_UNKNOWN,     /* not sent: the name another uid's, or unknown */
    SHIM_FIG_N
};
typedef void (*shim_figures_fn)(struct engine *e, uint64_t *fig);
void shim_engine_set_figures(shim_figures_fn fn);

/* ---- the engine's side: what was registered (hooks.c) ---- */

typedef struct shim_hooks {
    const shim_listener_ops *listener;
    const shim_relay_ops *relay;
    const shim_client_ops *client;
    const shim_lifetime_ops *lifetime;
    shim_engine_fn on[SHIM_ON_N][SHIM_ON_MAX];
    shim_cmd_fn cmd[SHIM_CMD_MAX];
    shim_ext_sizes ext;
    shim_figures_fn figures;
} shim_hooks;

extern shim_hooks shim_hook;

/* Runs what was registered for `when` (SHIM_ON_*). */
void shim_hooks_run(int when, struct engine *e, rudp_time now);

#endif
