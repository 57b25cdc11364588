/*
 * sock.h: what the interposers of sock.c, connect.c, listen.c and sockopt.c
 * share: the shim's start is sock.c's (shim_init), and so is telling
 * whether an fd is one of ours. Internal to those files; the rest of
 * interpose/ has interpose.h.
 */
#ifndef SHIM_SOCK_H
#define SHIM_SOCK_H

#include <errno.h>
#include <string.h>

#include "interpose.h"

/* TCP states as TCP_INFO reports them (include/net/tcp_states.h). */
enum { TCPS_CLOSE = 7, TCPS_LISTEN = 10 };

/* errno = err; returns -1, as a failing call does. */
static inline int fail(int err)
{
    errno = err;
    return -1;
}

/* A kernel TCP socket of family AF_INET or AF_INET6: returns the family. */
static inline int tcp_family(int fd)
{
    return shim_inet_family(fd, SOCK_STREAM, IPPROTO_TCP);
}

/* A bridged record's own copy of what its peer's name says of the
 * connection (kind, slot, id, pid: n's other fields untouched), where the
 * record was made with the name (name_pid): 1; 0: only the name says. The
 * record proved (shim_fd_get) names the file the name is bound to for
 * good, so its copy is the name's, without a getpeername(). */
int shim_name_of_rec(const shim_fd *rec, shim_name *n);
/* shim_sock_ours() for a caller that needs of n only what
 * shim_name_of_rec() gives (a bridge's slot): the name is asked only where
 * the record lacks it. */
int shim_sock_ours_slot(int fd, shim_fd *rec, shim_name *n);

/* The slot a name points at, or NULL (a listener, or a slab we cannot see). */
static inline shim_slot *slot_for(const shim_name *n)
{
    if (n->slot == UINT32_MAX)
        return NULL;
    return shim_slot_get_pid(n->slot, n->id, n->pid);
}

/* The length of an AF_INET or AF_INET6 address. */
static inline socklen_t sa_len(int family)
{
    return family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

/* Copies an address out with getsockname()'s truncation rules. */
static inline int copy_out(const struct sockaddr_storage *ss, int family,
                           struct sockaddr *addr, socklen_t *len)
{
    return shim_addr_out(ss, sa_len(family), addr, len);
}

/* The wildcard address, v4 or v6. */
static inline int is_any(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
    return IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
}

/* The port, in host order. */
static inline uint16_t port_of(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET ? ntohs(((const struct sockaddr_in *)ss)->sin_port)
                                    : ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* An int option of fd; 0 when the kernel has none to give. */
static inline int get_int(int fd, int level, int opt)
{
    int v = 0;
    socklen_t l = sizeof v;
    if (real_getsockopt(fd, level, opt, &v, &l) < 0)
        return 0;
    return v;
}

/* Loopback's MTU is 64 KiB: a connection to a loopback address (or a
 * listener, which takes the smaller of the two offers) uses large
 * datagrams, as TCP uses large segments there, unless RUDP_DATAGRAM says
 * otherwise. Per-datagram cost dominates on loopback. */
#define LOOPBACK_DATAGRAM 65000u

/* The loopback datagram, as far as the receive window holds two of them
 * (rudp_config_check): RUDP_BUFFER may be as small as 64K. */
static inline void loopback_datagram(rudp_config *cfg)
{
    cfg->max_datagram = cfg->recv_window / 2 < LOOPBACK_DATAGRAM ? cfg->recv_window / 2
                                                                  : LOOPBACK_DATAGRAM;
}

/* A remote peer: path MTU discovery (core/pmtu.h) searches up to what the
 * device of the connected UDP socket `udp` sends unfragmented, or a
 * smaller RUDP_DATAGRAM the user set; the SYN offers that much. With the
 * device unknown, the usual 1400 bytes. */
static inline void path_datagram(rudp_config *cfg, int udp)
{
    uint32_t dev = shim_ifmtu_payload(udp);
    if (dev < 1200)
        return;
    uint32_t most = cfg->recv_window / 2 < LOOPBACK_DATAGRAM ? cfg->recv_window / 2
                                                              : LOOPBACK_DATAGRAM;
    if (shim_cfg.datagram_set)
        most = cfg->max_datagram;
    cfg->max_datagram = dev < most ? dev : most;
}

/* 127/8, ::1, or a v4-mapped 127/8. */
static inline int is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a))
        return a->s6_addr[12] == 127;
    return IN6_IS_ADDR_LOOPBACK(a);
}

/* In a child with an fd table of its own: whether the owner's engines can
 * serve its connect() or listen() (adopt.c). Told once when not. */
int shim_sock_foreign_served(void);
/* One of ours? Record first (no syscall beyond fstat), then the name; an
 * fd without a record (inherited over exec) counts only if its peer is one
 * of our engines by the kernel's credentials, never by its name alone.
 * Fills *rec (and *n if given) when it is: returns 1, else 0. */
int shim_sock_ours(int fd, shim_fd *rec, shim_name *n);
/* What the app's TCP socket fd brings to the socket of ours that replaces
 * it, under connect() or listen(): read before anything of ours is made,
 * so that the replacement keeps the app's flags and options. */
typedef struct shim_takeover {
    int status;      /* fcntl(F_GETFL): O_NONBLOCK and the like */
    int fdflags;     /* fcntl(F_GETFD): FD_CLOEXEC */
    shim_fd rec;     /* the options the app set, and IPV6_V6ONLY, for the new record */
    rudp_config cfg; /* the connection's (or listener's) settings: the configuration
                      * and those options */
} shim_takeover;
/* Fills *t from fd, a kernel TCP socket of family (AF_INET or AF_INET6);
 * pristine: no option was set on it since its socket() (pristine.c). */
void shim_sock_takeover(int fd, int family, int pristine, shim_takeover *t);
/* Gives `to` those of `from`'s socket-level options that differ (the ones
 * TCP carries to a socket replacing it, or to an accepted one); returns
 * how many. errno is kept. */
int shim_sock_copy_options(int from, int to);
/* connect() or listen() left to the kernel, r its result: the socket is
 * never swapped once it connects or listens (a failed connect may be tried
 * again). Returns r. */
int shim_sock_kernel_kept(int fd, int r);

#endif
