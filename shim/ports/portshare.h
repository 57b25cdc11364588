/*
 * portshare.h: a listener's UDP port shared with what else the process
 * binds there (portshare.c). Internal to the shim.
 */
#ifndef SHIM_PORTSHARE_H
#define SHIM_PORTSHARE_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "rudp.h"

struct engine;
struct esock;

/* Whether the TCP listener about to be made on local (family, IPV6_V6ONLY
 * v6only, SO_REUSEPORT reuseport) would take the UDP port from a UDP
 * socket of the application's own: returns that socket's fd, or -1 if
 * none (or SHIM_PORT_FOREIGN or SHIM_PORT_BUSY, below). Asks the kernel
 * first (a probe bind, no reuse options): a free port costs one socket.
 * Without SO_REUSEPORT, a socket of ours in another process without a
 * live listener is handed over (porthand.c): -1 then, and *quiet set if
 * connections are moving off the port; with it, ours are the group's. */
int shim_port_app_udp(int family, const struct sockaddr_storage *local, int v6only,
                      int reuseport, int *quiet);
/* shim_port_app_udp's answer when no socket of the program's own holds the
 * port but another program's UDP socket does (udpdiag.c). With
 * SO_REUSEPORT, our own listeners in other processes (xgroup.c) share the
 * port: only a socket that is not one of theirs counts. */
#define SHIM_PORT_FOREIGN (-2)
/* ... when a live rudp listener of another process of ours holds it
 * (porthand.c): listen() fails with EADDRINUSE, as under TCP. */
#define SHIM_PORT_BUSY (-3)

/* Whether a UDP socket that this process does not hold is bound on an
 * address overlapping local's (IPV6_V6ONLY v6only), unconnected (udpdiag.c):
 * 0 none (those of ours in other processes handed over, *moved
 * connections moving off the port), 1 yes, 2 a live rudp listener of
 * another process holds it, or -1 if the kernel cannot tell. */
int shim_port_foreign_udp(int family, const struct sockaddr_storage *local, int v6only,
                          unsigned *moved);
/* listen() on a socket whose port another process's live listener of ours
 * holds: if that listener was made of this very socket (shared before
 * listen(), by fork or SCM_RIGHTS: tcp_fd, the same file), its holder
 * hands over its unix listener (porthand.c; both of one user), whose fd is returned;
 * otherwise -1, with *same 1 if the holder said tcp_fd is its own socket
 * all the same (it cannot give the listener: leave the socket be). */
int shim_port_share_listener(const struct sockaddr_storage *local, int v6only, int tcp_fd,
                             int *same);

/* connect() of a client's UDP socket udp (fresh, unbound) to peer when
 * the kernel found no free ephemeral port for it (EAGAIN), where TCP finds
 * one: TCP shares a local port among connections to different peers. So
 * does this: a port of the range held only by this user's connected
 * sockets (every client socket of ours allows it, SO_REUSEPORT, connect.c),
 * none connected to peer (or one no socket holds any more: the kernel's
 * search raced a socket's close); udp is bound there (bind_to's address) and
 * connected. 0; -EAGAIN: another process took the same port for the
 * same peer at once, udp is spoiled (take a new one and call again);
 * -EADDRNOTAVAIL: none (TCP's answer when out of ports), or -errno. */
int shim_udp_connect_shared(int udp, const struct sockaddr_storage *bind_to,
                            const struct sockaddr_storage *peer, socklen_t len);

/* Whether a stranger's UDP socket is bound, unconnected, on an address
 * overlapping local's (IPV6_V6ONLY v6only): one other than those of
 * inodes mine[0..nmine) and those of listeners of ours in other processes
 * (a SO_REUSEPORT group's members, xgroup.c), which are of uid `uid` and
 * have their name (porthand.c) held by it. 1, 0, or -1 if the kernel
 * cannot tell (udpdiag.c). Asks nobody. */
int shim_udp_others(const struct sockaddr_storage *local, int v6only, const uint64_t *mine,
                    int nmine, uid_t uid);
/* The same at listen() with SO_REUSEPORT, before our socket is bound:
 * mine are the sockets this process holds, uid our euid. */
int shim_port_stranger_udp(const struct sockaddr_storage *local, int v6only);

/* Another program's UDP socket took s's port after listen() (portwatch.c):
 * s gives it up as for the app's own UDP (its connections move, a
 * listener takes plain TCP), saying so. On e's thread. */
void shim_port_stranger(struct engine *e, struct esock *s);

/* Another process of ours listens on s's port (porthand.c): s gives the
 * port up, its connections moving to a new one (pid: the asker, for the
 * log). Returns how many move. On e's thread. */
int shim_port_hand_over(struct engine *e, struct esock *s, int pid);

/* s's listener, of a SO_REUSEPORT group, stops while s still carries
 * what it accepted (a server's old process after a reload serving its
 * last clients). Kernel TCP's listener leaves the group at close, and its
 * connections have sockets of their own; s would stay in the group and
 * refuse the new clients the kernel's hash gave it. So s gives its port
 * up as for a program taking it (its connections move to a new port, its
 * member tag held a while: shim_xgroup_linger), and leaves the group.
 * On e's thread, before s's listener closes. */
void shim_port_leave_group(struct engine *e, struct esock *s);
/* A connection accepted on s ends after its listener stopped: if the ones
 * that cannot move are gone, those left move and s leaves its group now
 * (as shim_port_leave_group). On e's thread. */
void shim_port_conn_ended(struct engine *e, struct esock *s);
/* SHIM_ON_TICK: a stopped member whose connections that cannot move held
 * it for a second leaves its group now, those behind (portshare.c). */
void shim_port_leave_due(struct engine *e, rudp_time now);

/* The application is about to bind its UDP socket fd to addr: every
 * listener of this process whose rudp socket holds an overlapping address
 * gives the port up first (shim_port_yield_cmd), so the bind gets the
 * kernel's own answer and the socket every datagram. Waits for the engines
 * (a bounded time); a no-op for port 0 or with no engine running. */
void shim_port_yield(int fd, const struct sockaddr *addr, socklen_t len);

/* With no plain TCP listening (RUDP_ACCEPT_TCP=0) the kernel cannot
 * refuse a second listener on a port: whether a live rudp listener of
 * this process holds local, so that a listen() there (SO_REUSEPORT =
 * reuseport) must fail with EADDRINUSE as under TCP: 1 yes, 0 no. */
int shim_port_listening(const struct sockaddr_storage *local, int v6only, int reuseport);

/* bind() of the TCP socket fd to addr, with RUDP_ACCEPT_TCP=0: whether
 * it must fail with EADDRINUSE because a rudp listener of this process
 * is there (shim_port_listening): 1 yes, 0 no. */
int shim_port_bind_conflict(int fd, const struct sockaddr *addr, socklen_t len);

/* bind() of the TCP socket fd to addr met EADDRINUSE: every listener of
 * this process on an overlapping address that was closed here and that no
 * process holds any more is stopped now, its plain TCP socket and UDP port
 * going as TCP's listener does at its last close. 1 if one was (the bind
 * is worth trying again), 0 not. Under rudp-supervise the program's close
 * is not seen: without this the port stayed held until the next liveness
 * check (enginecmd.c check_alive, a second later). */
int shim_port_stop_unheld(int fd, const struct sockaddr *addr, socklen_t len);

/* CMD_YIELD on engine e's thread: req is what shim_port_yield queued. */
void shim_port_yield_cmd(struct engine *e, void *req);

/* The core's same_endpoint (user: the engine): sockets a and b are
 * listener sockets bound to one address and port, members of one
 * SO_REUSEPORT group (the app's listeners sharing a port). */
int shim_port_same_endpoint(void *user, uint32_t a, uint32_t b);
/* The index of a socket of e's bound to the listener endpoint ep (as
 * shim_port_same_endpoint compares them), or UINT32_MAX: none. On e's
 * thread (forward.c). */
uint32_t shim_port_endpoint_sock(struct engine *e, const struct sockaddr_storage *ep);
/* A socket of a closed listener that still serves what it accepted (s)
 * shares its port with a listener made again there (SO_REUSEADDR, and
 * with several engines SO_REUSEPORT: one kernel group for both, which
 * gives a new client's first datagram to either). The index of e's
 * socket of the live listener on s's endpoint, to take that datagram as
 * its own; s's own index if there is none (refused), UINT32_MAX if s is
 * leaving a group others may share (unanswered, asked again). On e's
 * thread. */
uint32_t shim_port_live_twin(struct engine *e, const struct esock *s);

/* TIME_WAIT on a listener's TCP port. Linux keeps the port of a connection
 * that closed first for TCP_TIMEWAIT_LEN (60 s): a bind() without
 * SO_REUSEADDR, or after a listener that had none, fails meanwhile. rudp's
 * own TIME_WAIT is a few probe timeouts, so the listener's TCP socket,
 * which holds the port, outlives its listener instead: */
/* s's server connection closes first (the app shut down before the
 * peer's FIN): s's port stays in TIME_WAIT for 60 s from now. */
void shim_tw_mark(struct esock *s, rudp_time now);
/* s closes: its engine takes its reserve TCP socket until the TIME_WAIT
 * of its group ends; 1 if taken, 0: close it. */
int shim_tw_hold(struct esock *s);
/* Closes the held sockets whose time is up; sets e->retry_at for the next. */
void shim_tw_expire(struct engine *e, rudp_time now);
/* e's process (or keeper) ends: each held socket's port goes into a kernel
 * TIME_WAIT, which needs no process, and the socket is closed (timewait.c).
 * On e's thread, or with e parked. */
void shim_tw_leave(struct engine *e);

/* Whether two socket addresses (each with its IPV6_V6ONLY) can receive
 * the same datagrams: the same port and an overlapping address (equal, or
 * a wildcard covering the other, v4-mapped and dual-stack aware). */
int shim_port_overlap(const struct sockaddr_storage *a, int a_v6only,
                      const struct sockaddr_storage *b, int b_v6only);

#endif
