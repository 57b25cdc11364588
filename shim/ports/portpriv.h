/*
 * portpriv.h: the ports layer's own state in the engine's objects, private
 * to ports/ (files elsewhere include ports.h). shim_ports_init registers
 * the sizes of port_engine, port_sock and port_group with the engine
 * (hooks.h, shim_engine_set_ext), which allocates that much, zeroed, with
 * each engine, UDP socket and listener's group of engines and never looks
 * inside: a change here recompiles ports/ alone. Each part is touched on
 * the thread of the engine that owns its object, but port_group's, which
 * the group's engines share (atomics).
 */
#ifndef SHIM_PORTPRIV_H
#define SHIM_PORTPRIV_H

#include <sys/socket.h>

#include "ports.h"

/* Listeners' TCP sockets an engine holds after the listener, for TIME_WAIT
 * (portshare.c): more close at once. */
#define SHIM_TW_HELD 32
/* Member sockets of listeners that left their group (xgroup.c) an engine
 * holds at once: more, and the oldest goes early. */
#define SHIM_XG_LINGER 8

struct fwd_dgram; /* forward.c */
struct xpeer;     /* xgroup.c */

/* A listener's reserve TCP socket, listening too (RUDP_ACCEPT_TCP): the
 * engine's epoll watches it through this (tcpaccept.c). */
typedef struct tcpl {
    shim_watch w;          /* first, for epoll dispatch */
    esock *s;              /* the listener it belongs to */
    unsigned on : 1;       /* listening and watched */
    unsigned deferred : 1; /* the app's backlog was full: unwatched until a retry */
} tcpl;

/* A listener's member socket in a group of processes: the abstract unix
 * SOCK_SEQPACKET listener other members connect to (lst), or one of the
 * connections it accepted, which carry the datagrams they forward to it
 * (xgroup.c). */
typedef struct xgsock {
    shim_watch w;         /* first, for epoll dispatch */
    int fd;               /* -1: none */
    esock *s;
    unsigned tag;
    unsigned lst : 1;     /* the listener (in its socket's port_sock) */
    struct xgsock *next;  /* the listener's accepted connections */
} xgsock;

/* A listener socket's abstract name for other processes of ours that
 * want its port (porthand.c). */
typedef struct phsock {
    shim_watch w;         /* first, for epoll dispatch */
    int fd;               /* -1: none */
    esock *s;
    uint64_t ino;         /* the UDP socket's inode, 0: not watched (portwatch.c) */
    uid_t uid;            /* ... and its owner, whose other listeners share it */
} phsock;

/* A UDP socket's part: a listener's, all zero for another socket. */
typedef struct port_sock {
    tcpl tcp;             /* its reserve socket when it takes plain TCP too */
    xgsock xg;            /* its group's member socket (engine 0's) */
    phsock ph;            /* its name for a process taking its port */
    phsock phq;           /* a share request whose message is on its way */
    /* the address it is bound to, for the core's same_endpoint
     * (portshare.c); family 0 once the port is given up */
    struct sockaddr_storage endpoint;
    /* when the TIME_WAIT of the last connection it closed first ends, as
     * TCP's would (portshare.c); 0: none */
    rudp_time tw_until;
    /* the app set SO_REUSEPORT on the listener: other processes of its
     * uid may share the port (portshare.c: shim_port_leave_group) */
    uint8_t app_reuseport;
    /* its listener stopped while connections that cannot move held the
     * port: it leaves the group then at the latest (portshare.c); 0: no */
    rudp_time leave_at;
} port_sock;

/* A listener's group of engines' part, shared by its members. */
typedef struct port_group {
    /* the latest TIME_WAIT end of any member's connections (portshare.c) */
    _Atomic uint64_t tw_until;
    /* each member's UDP socket's inode, by engine index (portwatch.c) */
    _Atomic uint64_t member_ino[SHIM_ENGINES_MAX];
} port_group;

/* An engine's part. */
typedef struct port_engine {
    /* listeners' TCP sockets held through TIME_WAIT (portshare.c) */
    int tw_fd[SHIM_TW_HELD];
    rudp_time tw_at[SHIM_TW_HELD];
    int ntw;
    rudp_time watch_at;   /* portwatch.c's next look, 0: nothing watched */
    uint32_t ep_hint;     /* portshare.c: the last socket shim_port_endpoint_sock found */
    uint64_t tcp_accepted; /* plain TCP connections handed to the app (tcpaccept.c) */
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
    uint8_t *xg_msg;      /* a member's message read into (XG_MSG_MAX bytes) */
    /* xgroup.c: the member sockets of listeners that left their group,
     * held (unread) until then, so that the tag stays theirs */
    int xg_linger_fd[SHIM_XG_LINGER];
    rudp_time xg_linger_at[SHIM_XG_LINGER];
    int nlinger;
    /* portshare.c: stopped members waiting to leave their group (a
     * port_sock's leave_at set), so that a tick looks at the sockets only
     * then; recounted by each look */
    unsigned nleaving;
} port_engine;

/* The parts of e, of s, and of s's group (NULL: none). */
static inline port_engine *port_of_engine(struct engine *e)
{
    return shim_engine_ext(e);
}

static inline port_sock *port_of_sock(const esock *s)
{
    return shim_esock_ext(s);
}

static inline port_group *port_of_group(esock *s)
{
    return shim_esock_group_ext(s);
}

/* xgroup.c: member socket x (a listener's, or a connection it accepted)
 * is readable. */
void shim_xgroup_event(xgsock *x, rudp_time now);
/* porthand.c: a name, or a share request parked on it, is readable. */
void shim_porthand_event(phsock *p, rudp_time now);

#endif
