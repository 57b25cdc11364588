/*
 * engine/internal.h: what the engine's files share and no layer above uses
 * (roaming, datagram marks, figures, the bridge's and fallback's inner
 * steps). Private to engine/: files elsewhere include engine.h.
 */
#ifndef SHIM_ENGINE_INTERNAL_H
#define SHIM_ENGINE_INTERNAL_H

#include <stddef.h>

#include "engine.h"
#include "types.h"

/* The engines of this process: their own, reached from outside engine/
 * only through the functions of engine.h (enginectl.c). */
extern struct engines G;

/* Queues c for engine e and wakes it; G.mu held. Frees c and returns -EIO
 * if e cannot take commands (broken, or a keeper's engine that finished). */
int shim_engine_push_locked(struct engine *e, cmd *c);
/* Queues c for engine 0 (G.mu taken here); -ENOSYS when no engine runs,
 * and in a CLONE_VM child -errno when it cannot wake engine 0 (adopt.c).
 * c is freed on failure. */
int shim_engine_push_any(cmd *c);

/* The object of type `type` whose member `member` p points to: the engine
 * whose shim_watch of one of its fds (event_w, nl_w, tfd_w) an epoll
 * event named. */
#define SHIM_CONTAINER(p, type, member) ((type *)(void *)((char *)(p)-offsetof(type, member)))

/* Where a feature's area (hooks.h: shim_engine_set_ext) begins in an
 * object of n bytes allocated with it: past the object, aligned for any
 * type. */
#define SHIM_EXT_AT(n) \
    (((n) + _Alignof(max_align_t) - 1) / _Alignof(max_align_t) * _Alignof(max_align_t))

/* Sets up engine e (the next not running) and starts its thread; G.mu
 * held (engines.c starts them, engine.c knows how). */
int shim_engine_start_locked(struct engine *e);

/* A member of g that will never be, or was never used: the others need
 * not wait for it; the last one frees g. NULL: nothing. */
void shim_lgroup_drop(lgroup *g);
/* The group's last member is gone: closes its tcp_fd and frees it. */
void shim_lgroup_free(lgroup *g);

/* ---- roam.c: a client connection moves to a new socket ---- */

/* b's connection heard nothing for several probe timeouts (RUDP_EV_SILENT):
 * unless this host refused its sends meanwhile, it goes on from a new UDP
 * socket connected to its server, at most every 250 ms; the old socket
 * stays open and read until the next move or the bridge's end. */
void shim_roam_silent(bridge *b, rudp_time now);
/* A new client UDP socket (non-blocking, close-on-exec) as `old`'s: its
 * family, IPV6_V6ONLY and the app's marks (IP_TOS and the like); or -1. */
int shim_udp_like(const esock *old);

/* standby.c: b's connection (a client's, established) gets a standby
 * path through another interface, where one reaches its server
 * (RUDP_MULTIPATH); the connection moved between its two sockets
 * (RUDP_EV_PATH); the standby goes (before the connection is released,
 * or moves to a fresh socket). */
void shim_standby_open(bridge *b, rudp_time now);
/* ... or, without one, to the address its server offered (RUDP_EV_OFFER);
 * a server's accepted connection offers RUDP_OFFER_ADDR (a listener bound
 * to every address). */
void shim_standby_offered(bridge *b, rudp_time now);
void shim_standby_offer(bridge *b, rudp_time now);
void shim_standby_moved(bridge *b);
void shim_standby_close(bridge *b);
/* After a flush: moves the connections whose sockets' sends failed. */
void shim_roam_due(struct engine *e, rudp_time now);
/* udpio's error callback (user: the engine). */
void shim_roam_send_error(void *user, int fd, int err);
/* e listens to rtnetlink's news of addresses and routes (once; at its
 * first client connection): 0, or a negative errno (no rtnetlink here,
 * e.g. a sandbox: send errors and silence still make connections move). */
int shim_roam_watch(struct engine *e);
/* e->roam_at has come: the connections for which routing now picks another
 * source address move, each at most every 250 ms. */
void shim_roam_timer(struct engine *e, rudp_time now);

/* pktctl.c: the source address and marks of accepted connections'
 * datagrams on their listener's shared socket. */
/* a's IP address in *ip, a v4-mapped IPv6 one as IPv4: its length, 4 or 16. */
size_t shim_addr_ip(const rudp_addr *a, const uint8_t **ip);
/* Whether a and b are one IP address (v4-mapped or not). */
int shim_addr_same_ip(const rudp_addr *a, const rudp_addr *b);
/* The source address routing picks toward peer from a socket of family
 * bound to the wildcard address (asked by connecting a UDP socket), in
 * *src: 0, or -1 (no route). */
int shim_route_source(int family, const rudp_addr *peer, rudp_addr *src);
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

/* ---- appsend.c: an application thread's own send on a bridge ---- */

/* At e's start: its turn lock and timerfd (0, or -errno: app threads then
 * always write through the bridge); in a keeper, the lock made anew. */
int shim_appsend_start(struct engine *e);
void shim_appsend_renew(struct engine *e);
/* b has its slot: app threads find it by that (turn_mu held); b ends. */
void shim_appsend_index(bridge *b);
void shim_appsend_forget(bridge *b);
/* e's loop, turn_mu held: about to sleep until `wake`. 1: the timerfd
 * wakes it (the wait takes no timeout); 0: the wait's timeout must. */
int shim_appsend_sleep(struct engine *e, rudp_time wake);
/* bridge.c: b's connection's state to its slot (TCP_INFO, SIOCOUTQ). */
void shim_bridge_publish(bridge *b);

/* Takes e's figures (on e's thread, or with e paused). */
void shim_engine_figures(struct engine *e, engine_figures *f);

/* On e's thread, when a signal asked for RUDP_STATS: records e's figures;
 * the last engine to do so prints them all. */
void shim_engine_stats_answer(struct engine *e);

/* CMD_LISTEN_CLOSED, on the engine thread, after the command: tells the
 * closer waiting on w (may be NULL) that this engine is done with it, and
 * drops the engine's reference. */
void shim_engine_lclose_done(struct shim_lclose_wait *w);

/* At the end of each turn of e, on its thread: the turn took `turn` ns
 * and ended at now; every LOAD_WINDOW e publishes the share of it spent in
 * turns (engines.c). */
void shim_engine_load(struct engine *e, rudp_time now, rudp_time turn);

/* A keeper's engine whose work is done may leave, unless a command came
 * meanwhile: then (1) it takes no more (it counts as broken). 0: run on. */
int shim_engine_retire(struct engine *e);

/* The figures of engines fig[0..n), summed, one subject per line, as
 * RUDP_STATS prints them and rudp-stat shows them: each line goes to
 * line(arg, text). */
void shim_engine_print_figures(const engine_figures *fig, int n, shim_line_fn line, void *arg);

/* Hands b's accepted connection to the app's unix listener. A full backlog
 * puts b on e->pending and sets e->retry_at (ACCEPT_RETRY), or, if b was
 * held for its group's accept order (fifo.c), leaves it to shim_fifo_turn
 * to hold again and returns 0; a listener gone or squatted resets the
 * connection, stops listening and frees b. Returns 1 but in that case. */
int shim_bridge_try_accept(bridge *b, rudp_time now);
/* Client socket s (a connect's) counts in G.clients by its port until
 * shim_bridge_client_gone (from shim_esock_close): a loopback SYN from
 * that port is this process's own connect, whose server end is handed to
 * the app only once the client's end is writable (bridge.c). local: s's
 * address. */
void shim_bridge_client_sock(esock *s, const rudp_addr *local);
void shim_bridge_client_gone(esock *s);
/* The accepted connections held for want of an fd for their bridge
 * (e->unbridged), tried again: bridged, held again, or reset if their
 * listener closed or they ended meanwhile. At e->retry_at. */
void shim_bridge_accept_held(struct engine *e, rudp_time now);
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
/* Once rudp failed and kernel TCP was tried: the rudp connection's name
 * (rudp_conn_name; NULL if it had none) and *cause, why it failed, for
 * the connect-failed line. */
const char *shim_fallback_rudp_said(const bridge *b, rudp_cause *cause);
/* Whether kernel TCP at `to` is said for the first time (and now marked
 * as said): a warn line once per destination, the rest at info. */
int shim_fallback_first_telling(const rudp_addr *to);
/* Whether it was said already (nothing marked). */
int shim_fallback_told(const rudp_addr *to);
/* The connect failed with err at its connect timeout (RUDP_CONNECT_TIMEOUT
 * bounds the whole race): the words for its connect-failed line, what was
 * tried and for how long, in text (n bytes). Returns 1 if so, else 0 and
 * text is untouched. */
int shim_fallback_timeout_said(const bridge *b, int err, char *text, size_t n);
/* The bridge is freed: its fallback state goes with it. */
void shim_fallback_free(bridge *b);
/* Due at e->fallback_at: probe delays that ran out, swaps to retry. */
void shim_fallback_timer(struct engine *e, rudp_time now);

/* An engine thread's loop (arg: its struct engine); returns in a keeper
 * once nothing is left. */
void *shim_engine_loop(void *arg);

/* The listener on s (s->listener set) stops, no process holding the app's
 * listener any more: it takes no more handshakes, its plain TCP stops
 * (shim_tcpl_stop), and s loses the listener's reference (s may close).
 * On s's engine's thread. */
void shim_engine_stop_listening(esock *s);

/* Prints the fallback figures, if any, as shim_engine_print_figures does. */
void shim_fallback_print(void (*line)(void *, const char *), void *arg);

/* ---- bridge.c: the pump between an app's unix socket and a connection ---- */

/* A new bridge of engine e, in its list, with no fds, connection or slot
 * yet (the caller fills them in); NULL when out of memory. */
bridge *shim_bridge_new(struct engine *e);
/* Sets b's epoll interest in its efd to ev (0: EPOLLHUP alone). */
void shim_bridge_watch(bridge *b, uint32_t ev);
/* Sets SO_OOBINLINE on a new bridge's engine end: the app's urgent byte is
 * read in the stream, at its mark (pump_in in bridgepump.c). */
void shim_bridge_oob_init(int efd);
/* Our end's send buffer: with the window, what an app that reads nothing
 * holds unread, as TCP's SO_RCVBUF bounds it (bridgepump.c). */
void shim_bridge_efd_size(int efd);
/* The core reported ev (RUDP_EV_*) for connection c of engine e: an
 * accepted connection gets a bridge and goes to the app's listener; the
 * others' bridges move data, finish a handshake, or end (b freed). */
void shim_bridge_conn_event(struct engine *e, rudp_conn *c, unsigned ev, rudp_time now);
/* acceptq.c: listener s's accept queue, counted with the other engines of
 * its group (s->group) or alone: handshakes are answered only while the
 * app's unix listener, plus what every engine holds on the way to it, has
 * room. Call _attach once s->listener exists; shim_acceptq_handed
 * (engine.h) after each connection s put in the app's unix listener. */
void shim_acceptq_attach(esock *s);
/* A place in s's queue taken for a handshake that made no connection is
 * given back: s's (it stops listening, it closes), or every one engine e
 * took (before it sleeps). */
void shim_acceptq_release(esock *s);
void shim_acceptq_release_all(struct engine *e);

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
/* on_accept: holds b (accepted on a member, confirmed at stamp, its SYN
 * received at syn, 0: not known) until its turn: 1; 0 if b goes to the app
 * now (no FIFO, no stamp). */
int shim_fifo_hold(bridge *b, uint64_t stamp, uint64_t syn);
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

/* ---- control.c: the control socket rudp-stat reads ---- */

/* Opens this process's control socket and registers it with engine e
 * (engine 0). Errors are logged; the engine runs without one. */
void shim_control_open(struct engine *e);
/* The number of e's eventfd in the calling thread's fd table (the
 * program's, or an engine's own: a copy taken once, enginestart.c), -1 if
 * none could be had. Async-signal-safe on a thread of the program's. */
int shim_engine_doorbell(struct engine *e);
/* The control socket's listening fd, or -1. */
int shim_control_fd(void);
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
/* CMD_CONTROL: engine e's part of a report (engine 0: the report is whole). */
void shim_control_cmd(struct engine *e, void *req);
/* CMD_CONTROL for engine e that stops: passes the request on without its
 * part (engine 0: drops it). */
void shim_control_pass(struct engine *e, void *req);
/* Engine 0, each turn: accepting again after a pause, readers too slow to
 * be kept. Returns when it wants to be called next (RUDP_TIME_NEVER:
 * nothing due). */
rudp_time shim_control_timer(struct engine *e, rudp_time now);

/* engine.c, for the app thread's receive (apprecv.c) */
rudp_time shim_engine_pump(struct engine *e, rudp_time now);
/* e's turn flushed the answers its on_established queued (engines.c):
 * connects waiting for them go on. */
void shim_engine_answered(struct engine *e);
void shim_engine_udp_event(void *obj, uint32_t events, rudp_time now);
/* What iofd holds (the UDP sockets' and the bridges' events), read and
 * dispatched, a batch of EV_MAX at a time until it holds less (turn_mu
 * held, dispatching set by the caller); the events it dispatched. */
int shim_engine_io_turn(struct engine *e, rudp_time now);
#define SHIM_IO_EVENTS 128 /* iofd's events per call (ioevs) */
extern const shim_watch_ops shim_engine_io_ops; /* io_w's */
/* Frees what shim_engine_bury kept while events were dispatched. */
void shim_engine_graves_empty(struct engine *e);
/* appsend.c, shared with apprecv.c: the engine of a slot's connection (no
 * lock: checked under its turn), the inode of a bridge's app end, and the
 * engine's wake-up after an app thread's turn */
struct engine *shim_appsend_engine_of(uint32_t slot);
/* ... if the connection indexed at the slot is `id` (else NULL) */
struct engine *shim_appsend_engine_of_conn(uint32_t slot, uint64_t id);

/* txring.c: writes app threads handed to an engine in memory. init at the
 * engine's start (and in a keeper: the lock may have been held at the
 * fork), free_arena when it ends; take moves every record into its
 * connection (turn_mu held); read_begin, before each read of b's bridge,
 * takes them and b's overflow: 1 with the arena held until read_end (no
 * write can come between; r the read's result: 0, the app's EOF, ends
 * its writes in memory), 0 if some of b's overflow is left (nothing may
 * be read from the bridge before it); free at the bridge's end. */
void shim_txring_init(struct engine *e);
void shim_txring_free_arena(struct engine *e);
void shim_txring_take(struct engine *e, rudp_time now);
/* The arena's doorbell (the engine's eventfd), once until the engine
 * takes it: the system call itself, not a cancellation point. */
void shim_txring_ring(struct engine *e);
int shim_txring_read_begin(bridge *b, rudp_time now);
void shim_txring_read_end(bridge *b, ssize_t r);
/* ... closed: while e is paused (a fork, a handoff to a keeper), what waits
 * is taken and writes take the bridge, which the keeper serves */
void shim_txring_close(struct engine *e, int closed);
/* ... slot_ends, before b's slot is freed or retired: b unindexed, every
 * writer that found it there done, its overflow dropped */
void shim_txring_slot_ends(bridge *b);
void shim_txring_free(bridge *b);
uint64_t shim_appsend_app_ino(bridge *b);
void shim_appsend_keep_timers(struct engine *e, rudp_time deadline);
/* ... the engine awake by `at` at the latest (a lease: apprecv.c) */
void shim_appsend_wake_by(struct engine *e, rudp_time at);
/* ... and whether the process's engines carry few enough connections for
 * an app thread to do their work (APPSEND_CONNS) */
int shim_appsend_few(void);
/* engine.c: how far past its timerfd's time the engine's wait ends
 * anyway (the timerfd is its timer while app threads take turns) */
#define SHIM_TIMER_SLACK RUDP_MS(1000)
/* apprecv.c: how long a socket stays the app's after a fast wait */
#define SHIM_APP_LINGER RUDP_MS(2)
/* apprecv.c: the sockets whose waiters' lease ran out, watched again;
 * and every socket left to the app with no waiter (a reader that could
 * not wait: the engine reads for it) */
int shim_apprecv_leases(struct engine *e, rudp_time now); /* how many watched again */
int shim_apprecv_take_back(struct engine *e); /* how many */
/* ... the sockets alone, not an event loop's whole set (appwhole.c: it
 * lingers to its lease) */
int shim_apprecv_take_back_sockets(struct engine *e);
/* apprecv.c's turn and wait rules, shared with appwhole.c: the turn's
 * lock with cancellation held off (tried, waited for, let go); whether an
 * app thread may take turns at all (RUDP_APP_RECV, no qlog, no sandbox,
 * the engines in the program's table); fd's bridge if an app thread may
 * wait for it (whole: on every engine's set, where a listener's group
 * across engines is no bar); a reader that will not wait (the engine takes
 * lingering sockets back: at once with the turn, else woken for it). */
int shim_apprecv_turn_try(struct engine *e, int *cancel);
void shim_apprecv_turn_lock(struct engine *e, int *cancel);
void shim_apprecv_turn_unlock(struct engine *e, int cancel);
int shim_apprecv_turn_may(void);
struct bridge *shim_apprecv_waitable(struct engine *e, const shim_fd *rec, int whole);
void shim_apprecv_declined(struct engine *e, int have_turn);
/* a waiter's lease: past its longest wait, should it never come back */
#define SHIM_APP_LEASE RUDP_MS(SHIM_APP_WAIT_MS + 20)

/* appwhole.c: e started: its iofd joins the set app threads wait on
 * (G.appfd1, made with the first engine); G.mu held. */
void shim_appwhole_engine_started(struct engine *e);
/* e's whole set taken back if its lease ran out (1), else lease_at kept
 * no later than it; and taken back if it lingers with no waiter (1).
 * turn_mu held. */
int shim_appwhole_lease(struct engine *e, rudp_time now);
int shim_appwhole_take_back(struct engine *e);
/* An epoll wait for rec's connection, one of many (e's turn held, let go
 * here; sigfd the caller's signalfd): 1 with every engine's whole set
 * taken and w set to wait on them (w->whole), 0 with none taken. _end
 * after the wait: each set's events dispatched if it had any (events),
 * and the sets given back or left to linger. */
int shim_appwhole_begin(struct engine *e, const shim_fd *rec, pid_t me, int sigfd, int cancel,
                        shim_app_wait *w);
void shim_appwhole_end(shim_app_wait *w, uint32_t events, int in_poll);
/* The datagrams one event of a UDP socket reads at most (engine.c's
 * read_udp: recvmmsg batches of RX_BATCH): a moderated read that took
 * them all may have left more (rxmod.c). */
#define SHIM_UDP_READ_MAX 256

/* rxmod.c (receive moderation), turn_mu held: the sockets the engine does
 * not watch read at a wake-up, before its events (dispatching); and after
 * a turn, which to leave unwatched until e->mod_at */
void shim_rxmod_read(struct engine *e, rudp_time now);
void shim_rxmod_decide(struct engine *e, rudp_time now);
/* ... the earliest lease of its sockets, as lease_at (which a new lease
 * only moves earlier) is set to (turn_mu held) */
rudp_time shim_apprecv_lease_min(struct engine *e);
/* ... s closes: no longer counted as lingering with the app (turn_mu) */
void shim_apprecv_sock_closed(esock *s);
/* ... the engine's kept bridges passed on into their app ends, each
 * unread past its time never kept again (turn_mu) */
void shim_apprecv_pass_kept(struct engine *e, rudp_time now, int unread);

/* bridgepump.c: bytes kept in the connection for the reader a poll() told
 * of them (apprecv.c). Whether any bridge of the process is kept (a hint,
 * no lock); b's mark taken off (turn_mu, as all below), its bytes left to
 * the next pump; and passed on into efd now. */
int shim_bridge_kept_any(void);
void shim_bridge_kept_forget(void); /* a fork's child: its parent's keeps */
void shim_bridge_unkeep(bridge *b);
/* the engine's wake-up (turn_mu): the bridge an app thread's take found
 * due to grow (e->grow_b), grown */
void shim_bridge_grow_due(struct engine *e);
uint64_t shim_bridge_unread(rudp_conn *c); /* the core's ops.unread */
void shim_bridge_pass_kept(bridge *b, rudp_time now, int unread);
/* ... the read that takes them: into `to` (cnt pieces) of process pid by a
 * guarded copy, left there with peek: bytes copied, -EFAULT for a bad
 * buffer (nothing taken), or 0: none to take here (passed on into efd,
 * where the caller reads them) */
ssize_t shim_bridge_take(bridge *b, pid_t pid, const struct iovec *to, int cnt, int peek,
                         rudp_time now);
/* ... how long they wait for that read: then into efd, for a reader we do
 * not see (stdio's, sendfile's, another process's) */
#define SHIM_KEEP_FOR RUDP_MS(2)
/* ... and how many passed on unread, with no take between, before a
 * bridge is kept no more: for SHIM_KEEP_OFF_FOR, doubled each time again
 * until a take (at most SHIM_KEEP_OFF_DOUBLINGS times: 102.4 s; a reader we
 * do not see, stdio's, is late three times in 100 s then) */
#define SHIM_KEEP_LATE 3
#define SHIM_KEEP_OFF_FOR RUDP_MS(100)
#define SHIM_KEEP_OFF_DOUBLINGS 10
/* ... whether b is kept no more at now (bridgepump.c) */
int shim_bridge_keep_off(const bridge *b, rudp_time now);
/* ... and how long a flush or a take waits for the engine's turn */
#define SHIM_KEEP_LOCK_WAIT RUDP_MS(10)
/* ... and an epoll wait's answer, while the engine counts bridges kept:
 * it must tell of them, and an engine thread preempted holding its turn
 * outlasts SHIM_KEEP_LOCK_WAIT on a busy machine (prog_epollkept's rounds
 * missed one in 35 runs under two busy loops; 7 of 8 with the turn's wait
 * cut to 30 us) */
#define SHIM_KEEP_TELL_WAIT RUDP_MS(250)

/* engine.c: a forked child's ids start afresh (the atfork handler) */
void shim_engine_ids_anew(void);

#endif
