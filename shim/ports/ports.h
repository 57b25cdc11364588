/*
 * ports.h: the ports layer, for the layers above it (lifetime/, interpose/;
 * layers: base/base.h).
 *
 * Contract of ports/: everything about a listener's port beyond the
 * engine's UDP socket: sharing it with what else the process binds there
 * (portshare.c), handing it to another process of ours (porthand.c) and
 * moving connections off it (portmove.c, portwatch.c), SO_REUSEPORT groups
 * spanning processes (xgroup.c) and engines (forward.c), plain kernel TCP
 * accepted on it (tcpaccept.c), UDP sockets on it the kernel lists
 * (udpdiag.c), and its TIME_WAIT at exit (timewait.c). Uses engine/,
 * state/ and base/. porthand.h and portshare.h are part of this header;
 * portmove.h, portwatch.h and portpriv.h (ports' own state in the
 * engine's objects) are private to ports/.
 */
#ifndef SHIM_PORTS_H
#define SHIM_PORTS_H

#include "engine/engine.h"
#include "porthand.h"
#include "portshare.h"

/* ports.c: what the engine calls of a listener's port, registered with it
 * (engine/hooks.h); from the shim's init, before any engine runs. */
void shim_ports_init(void);

/* ---- tcpaccept.c, application side ---- */

/* Takes listening TCP socket fd out of the LISTEN state (connect(AF_UNSPEC),
 * tcp_disconnect): what waits in its queue is reset, new SYNs are refused,
 * a port bound by number stays bound. */
void shim_tcp_unlisten(int fd);

/* ufd was just accepted from one of our listeners, from our engine (checked),
 * and its peer is named SHIM_NAME_TCP: receives the kernel TCP socket the
 * engine passes over it, waiting for it if the engine has not sent it yet,
 * and the peer address the kernel's accept gave (*peer, *plen). Returns
 * that fd (close-on-exec, non-blocking), or -ECONNABORTED when the engine
 * closed ufd without one (the connection is to be dropped). */
int shim_tcpl_receive(int ufd, struct sockaddr_storage *peer, socklen_t *plen);

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
/* In the application's thread, for a listener whose UDP socket udp_fd has
 * SO_REUSEPORT: a member tag (0: none) and its abstract socket in *xfd. */
unsigned shim_xgroup_join(int udp_fd, int *xfd);
/* On engine 0: listener s takes member socket xfd (watched). */
void shim_xgroup_attach(esock *s, int xfd, unsigned tag);
/* s closes: its member socket too. */
void shim_xgroup_detach(esock *s);
/* s leaves its group (shim_port_leave_group): its member socket is held
 * but no longer read for SHIM_QUIET_AFTER_MOVE, then closed
 * (shim_xgroup_linger_expire). Another member that the kernel gives a
 * datagram of s's connections meanwhile (one sent before its client
 * followed it to its new port) still finds the tag taken: it forwards
 * the datagram, which is dropped unread, rather than answering it with
 * a reset as for a member gone. */
void shim_xgroup_linger(esock *s, rudp_time now);
/* SHIM_ON_TICK: the held member sockets whose time is up close. */
void shim_xgroup_linger_expire(struct engine *e, rudp_time now);
/* A datagram read on listener socket s for member `tag` of its group
 * (rudp_ctx_input's RUDP_INPUT_MEMBER + tag): to that member, at the next
 * shim_xgroup_flush. */
void shim_xgroup_forward(esock *s, unsigned tag, const rudp_addr *local, const rudp_addr *peer,
                         const uint8_t *buf, size_t len, rudp_time now);
/* After reading a socket: what waits for each member, one message each. */
void shim_xgroup_flush(struct engine *e, rudp_time now);

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

#endif
