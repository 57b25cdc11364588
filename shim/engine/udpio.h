/* udpio.h: the engine's batched UDP output (GSO trains, sendmmsg) and GRO
 * input; see udpio.c. One per engine thread, used by it only. */
#ifndef SHIM_UDPIO_H
#define SHIM_UDPIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "rudp.h" /* rudp_time */

/* Every field a uint64_t counter (enginestats.c adds them up). */
typedef struct shim_udpio_stats {
    uint64_t datagrams_out;  /* queued by the core */
    uint64_t send_calls;     /* sendmmsg() calls that took them */
    uint64_t trains;         /* GSO messages of more than one datagram */
    uint64_t gso_failed;     /* trains the kernel refused (GSO then off) */
    uint64_t send_dropped;   /* messages the kernel did not take */
    uint64_t reads;          /* buffers received */
    uint64_t datagrams_in;   /* datagrams in them */
    uint64_t coalesced;      /* datagrams that came inside another's buffer (GRO) */
    uint64_t gro_refused;    /* sockets that refused UDP_GRO */
    uint64_t rx_dropped;     /* datagrams our sockets dropped: receive buffer full */
} shim_udpio_stats;

typedef struct shim_udpio shim_udpio;

/* One per engine, at its start (NULL: out of memory). */
shim_udpio *shim_udpio_new(int offload);
/* Frees u (NULL: nothing): an engine that failed to start. */
void shim_udpio_free(shim_udpio *u);
/* A new UDP socket of the engine: probes GSO once, asks for GRO. */
void shim_udpio_setup(shim_udpio *u, int fd);
/* Control messages for one datagram on an unconnected socket (a
 * listener's, shared by its connections): the source address and the
 * marks of one connection (pktctl.c). For an IPv4 peer (v4: also a
 * v4-mapped one on an IPv6 socket, which udp_sendmsg() serves) IP_PKTINFO,
 * IP_TOS and IP_TTL at SOL_IP; else IPV6_PKTINFO, IPV6_TCLASS and
 * IPV6_HOPLIMIT. A field not set leaves the socket's own. */
typedef struct shim_udpio_ctl {
    uint8_t v4;
    uint8_t has_src, has_tos, has_ttl;
    int tos, ttl;          /* TOS / traffic class 0..255; TTL / hop limit 1..255 */
    uint32_t ifindex;      /* IPv6 link-local source: its interface; else 0 */
    uint8_t src[16];       /* v4: the first 4 bytes */
} shim_udpio_ctl;

/* Whether ctl asks for any control message. */
static inline int shim_udpio_ctl_any(const shim_udpio_ctl *ctl)
{
    return ctl && (ctl->has_src || ctl->has_tos || ctl->has_ttl);
}

/* Queues one datagram (copied, unless data is where shim_udpio_room said
 * to build it); peer is used on unconnected sockets, ctl (copied; NULL:
 * none) too. */
void shim_udpio_send(shim_udpio *u, int fd, int connected, const struct sockaddr_storage *peer,
                     socklen_t peer_len, const shim_udpio_ctl *ctl, const uint8_t *data,
                     size_t len);
/* Sends everything queued; the end of every engine turn. */
void shim_udpio_flush(shim_udpio *u);
/* Where the next datagram, of at most len bytes, may be built so that
 * shim_udpio_send queues it without a copy (flushing first when the batch
 * is full); NULL if it cannot be. Valid until the next call on u. */
uint8_t *shim_udpio_room(shim_udpio *u, size_t len);
/* Sends what is queued for socket fd only (it is about to close), the rest
 * staying queued in its order. */
void shim_udpio_flush_fd(shim_udpio *u, int fd);
/* fn(user, fd, errno) for each datagram the kernel refused to send on fd
 * (other than a train it could not cut): how the engine learns that a
 * client's socket lost its address or route (roam.c). */
void shim_udpio_on_error(shim_udpio *u, void (*fn)(void *user, int fd, int err), void *user);
/* A received message's control data: returns the GRO segment size (0: one
 * datagram), and counts the drops it reports (SO_RXQ_OVFL) since
 * *drops_seen, the socket's total at its last report; *stamp gets its
 * kernel receive time (SO_TIMESTAMPNS, CLOCK_REALTIME ns), 0 if none. */
uint32_t shim_udpio_rx_meta(shim_udpio *u, struct msghdr *m, uint32_t *drops_seen,
                            uint64_t *stamp);
/* The wall clock (CLOCK_REALTIME) in ns, what SO_TIMESTAMPNS stamps
 * with: read before shim_now() for shim_udpio_arrival. */
uint64_t shim_udpio_wall_ns(void);
/* How long before its read a datagram may be timed: longer than any
 * moderated wait (rxmod.c), short enough that a step of the wall clock
 * between its arrival and the read cannot put it further back. */
#define SHIM_ARRIVAL_MAX RUDP_MS(20)
/* A datagram's time of arrival on shim_now's clock: its kernel receive
 * time `stamp` (shim_udpio_rx_meta's, wall clock ns; 0: none), read when
 * the wall clock said `wall` and then shim_now() said `now`, so that a
 * delay between the two reads can only make it later. Never later than
 * now, nor more than SHIM_ARRIVAL_MAX before it, nor before `floor` (when
 * the socket was last found empty: what it holds came since). */
rudp_time shim_udpio_arrival(uint64_t stamp, uint64_t wall, rudp_time now, rudp_time floor);
void shim_udpio_received(shim_udpio *u, uint32_t reads, uint32_t datagrams);
int shim_udpio_gso_on(const shim_udpio *u);
const shim_udpio_stats *shim_udpio_stats_get(const shim_udpio *u);

#endif
