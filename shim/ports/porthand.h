/*
 * porthand.h: a listener's UDP port handed over to another process of
 * ours that listens on it (porthand.c). Internal to the shim.
 */
#ifndef SHIM_PORTHAND_H
#define SHIM_PORTHAND_H

#include <sys/socket.h>
#include <sys/types.h>

#include "rudp.h"

struct esock;

/* SHIM_QUIET_AFTER_MOVE (engine.h): how long such a listener sends no
 * resets. */

/* The name of a listener's UDP socket udp_fd, made by listen() before the
 * socket is bound, so that a process that finds the socket finds its name
 * too, even before the engine takes the listener (or a keeper takes the
 * engine). Returns the listening socket (owned, high) or -1: none, the
 * socket is then taken for a stranger's. */
int shim_porthand_name(int udp_fd);
/* Listener socket s takes its name fd (-1: none), on its engine's thread. */
void shim_porthand_attach(struct esock *s, int fd);
/* s closes, or gives its port up: its name goes. */
void shim_porthand_close(struct esock *s);

/* listen() found the UDP socket of inode ino, owned by uid owner, on its
 * port, in another process: asks its holder for it. Returns 0 (given up;
 * *moved connections are moving off it), EADDRINUSE (a live listener
 * holds it), or -1 (not ours, or no answer: a stranger's socket). */
int shim_porthand_ask(uint64_t ino, uid_t owner, unsigned *moved);
/* Asks the holder of UDP socket ino (its name held by uid owner) for the
 * unix listener of the listener whose TCP socket tcp_fd is (a socket two
 * processes share, on which both call listen()): the listener's fd
 * (close-on-exec), or -1 if the holder has none for that socket. Only a
 * holder of our own euid is asked, and no fd is sent to it: it proves
 * with kcmp() that tcp_fd (its number in this process) is its own socket.
 * *same is 1 if the holder said so (then tcp_fd is the holder's TCP
 * socket too, and must be left as it is even when -1 is returned). */
int shim_porthand_share(uint64_t ino, uid_t owner, int tcp_fd, int *same);

/* Which of the n UDP sockets ino[] (owned by uid[]) have their name held by
 * their owner, as a listener's of ours (shim_porthand_name): named[i] 1 or
 * 0. One sock_diag dump of the listening unix sockets, nobody asked. 0,
 * or -1: cannot tell. */
int shim_porthand_named(const uint32_t *ino, const uint32_t *uid, int n, uint8_t *named);

/* The kernel refused a bind() of TCP socket fd to addr (EADDRINUSE): if
 * fd has SO_REUSEADDR and a UDP socket of ours in another process holds
 * the port for a listener nobody holds any more (a keeper still starting),
 * its holder stops it and gives the port up. Returns 1 if bind() is worth
 * trying again, else 0. */
int shim_porthand_reclaim(int fd, const struct sockaddr *addr, socklen_t len);
/* Whether a bind() to local's port reclaimed it from a holder whose
 * connections move off it, within SHIM_QUIET_AFTER_MOVE. */
int shim_porthand_recent(const struct sockaddr_storage *local);

#endif
