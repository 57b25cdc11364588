/*
 * path.h: where a connection sends, and how it follows a peer that moves
 * (path.c). RFC 9000 §8.2 (path validation) and §9 (migration), as far as
 * a connection with one ID per side needs them.
 *
 * A server's peer may reach it from a new address: a NAT re-mapped the
 * client's port after a quiet minute, or the client moved (Wi-Fi to LTE,
 * or its engine opened a new socket, rudp_conn_rebind). A packet from a
 * new address changes nothing of where the server sends, what it takes
 * or its timers until that address answers a PATH_CHALLENGE (64
 * unpredictable bits sent only there), and the path moves there only if
 * the peer's highest-numbered non-probing packet came from it (RFC 9000
 * §9.3): the validated path carries the connection meanwhile, and an
 * address not validated gets at most 3x the bytes it sent (challenges
 * only).
 *   - unkeyed: anyone who saw a packet can make one (its packet number,
 *     an ACK of packets never sent, a RESET: nothing is authenticated), so
 *     such a packet is not processed at all (rudp__path_on_foreign): it
 *     may only start the validation of its address, count toward the 3x,
 *     carry the PATH_RESPONSE, or carry a client's challenge by its standby
 *     path (standby.c: answered there). What it carried the peer sends again
 *     once the path moved. An observer that reads the challenge at its own
 *     address can answer it, and with a packet numbered above the peer's
 *     newest take the path: numbers are not authenticated (README,
 *     Security). A bit-flipped copy from elsewhere does nothing.
 *   - keyed: the packet was authenticated first (a copy of the peer's, at
 *     worst), so it is processed; the challenge is sealed, so only the
 *     peer can answer it, even through a relay at the new address.
 * A copy of an older packet sent from elsewhere is a duplicate: it starts
 * nothing. A validation under way gets one wait (max(PTO, initial RTT))
 * for its answer before a packet from a third address may start another
 * in its place: an observer's copies, each just after one of the peer's
 * packets from its new address, would otherwise restart the validation at
 * every copy, and the peer's answer would always come to a challenge
 * given up (t_roam_server: the client followed its server only once the
 * copies stopped). A copier faster than the path, whose copies arrive
 * first, still costs one such wait per validation. Congestion control and the RTT estimate start over on a new IP
 * address, and carry over on a port-only change (the path is the same).
 *
 * A client moves itself (rudp_conn_rebind). It follows its server to
 * another IP address as a server follows its client (above: the server's
 * own address went away, rudp_conn_move_local; unkeyed, nothing from there
 * is processed until the address echoes a challenge and the server's
 * newest packet came from it; the client goes on sending on its path
 * meanwhile). To another port of the same server IP address it follows
 * only when the server says so in a NEW_PORT frame (rudp_conn_move_port:
 * the server's listener gave its UDP port up to the application).
 *   - keyed: the packet carrying NEW_PORT was authenticated, and is the
 *     newest the server sent: the client moves at once;
 *   - unkeyed: the client sends a PATH_CHALLENGE to the new port, and
 *     nothing else until it is answered from there; then it moves. If the
 *     challenge is never answered it stays where it was.
 * Why unkeyed is no easier to attack than kernel TCP: forging NEW_PORT
 * takes the connection ID and a packet number the client will take, which
 * only an attacker who sees the traffic has; such an attacker can already
 * reset an unkeyed connection (RESET frame) or inject into it, as an
 * on-path attacker can inject an in-window segment or RST into TCP.
 * Hijacking the connection to the new port further needs the challenge's
 * 64 random bits echoed from the server's own IP address: seeing our
 * packets to that address (on-path again), or a socket on the server's
 * host. What it costs: a forged NEW_PORT stalls the client for one
 * validation (7 waits of max(PTO, initial RTT)), during which it sends
 * nothing to the old port and its socket (connected to the port being
 * validated) drops the server's packets from the old one.
 */
#ifndef RUDP_PATH_H
#define RUDP_PATH_H

#include <stdint.h>

#include "rudp.h"

/* A peer address being validated. */
typedef struct rudp_path_probe {
    rudp_addr addr;
    uint64_t challenge;       /* data of our PATH_CHALLENGE */
    uint64_t bytes_in;        /* received from addr since the probe began */
    rudp_time held_until;     /* no other address takes its place before this */
    uint8_t path_heard;       /* client: the server's own address spoke since it began */
    uint64_t bytes_out;       /* sent to it: at most 3x bytes_in */
    uint64_t pn_max;          /* server: its highest non-probing packet number */
    rudp_time next_at;        /* the challenge goes (again) at this time */
    rudp_time interval;       /* then after this, doubling */
    rudp_time deadline;       /* validation failed if unanswered by then */
    uint8_t sent;             /* challenges sent */
    uint8_t on;
} rudp_path_probe;

/* A second path kept validated beside the one in use (standby.c):
 * handover, as MPTCP's mode of that name. A client holds a second socket
 * of the caller's (rudp_conn_standby), leaving by another interface; its
 * server knows the address the client's challenges came from. */
typedef struct rudp_standby {
    uint32_t sock;            /* client: the socket not in use (the standby, or the
                                 primary after a handover) */
    rudp_addr peer;           /* client: the server's address on that path (its own,
                                 or the one it offered: SERVER_ADDR) */
    rudp_addr addr;           /* server: the client's other address */
    rudp_addr local;          /* server: our address on that path (has_local) */
    rudp_addr resp_local;     /* server: the address a challenge came to (resp_has_local) */
    rudp_addr offer;          /* server: the address we offer (offer_pending); client:
                                 the one the server offered (offered) */
    rudp_addr cand;           /* server: the address addr replaced before it answered,
                                 its challenge cand_challenge still good (cand_out) */
    uint64_t cand_challenge;
    rudp_time cand_sent_at;
    uint8_t cand_out;
    uint64_t challenge;       /* data of our latest PATH_CHALLENGE there */
    rudp_time sent_at;        /* ... when it went */
    rudp_time next_at;        /* the next challenge goes then */
    rudp_time wait;           /* ... after this wait for an answer, doubling */
    rudp_time valid_at;       /* it answered then */
    rudp_time rtt;            /* ... after this long */
    rudp_time heard_at;       /* a packet was last taken by the path in use */
    rudp_time moved_at;       /* client: its last move between the two */
    rudp_time resp_last;      /* server: the last answer to a challenge from addr */
    uint64_t resp_data;       /* a PATH_RESPONSE owed ... */
    rudp_addr resp_to;        /* server: ... to this address */
    uint8_t resp_pending;
    uint8_t challenge_too;    /* server: our own challenge goes with it */
    uint8_t outstanding;      /* our challenge awaits its answer */
    uint8_t ping_pending;     /* a PING goes there (a probe timeout's copy, or an answer) */
    uint8_t on;               /* client: sock is set; server: addr is */
    uint8_t has_local, resp_has_local;
    uint8_t offer_pending;    /* server: SERVER_ADDR goes (again) at offer_next_at */
    uint8_t offer_sent;       /* ... this many times */
    uint8_t offered;          /* client: the server offered an address */
    rudp_time offer_next_at;
    uint8_t valid;            /* it answered, and no challenge went unanswered since */
    uint8_t unanswered;       /* challenges unanswered in a row */
    uint8_t handed;           /* client: sending on the standby (the primary failed) */
    uint8_t slow;             /* client: ... because the primary's RTT passed the bound */
    uint8_t announce;         /* our packets say we moved (RUDP_PKTF_MOVED) until the peer's
                                 own come by the new path */
    uint32_t handovers;       /* client: to the standby; server: to the client's other
                                 address without a validation's wait */
    uint32_t handbacks;       /* client: back to the primary */
    uint32_t challenges;      /* client: challenges sent on the other path */
    uint32_t pkts;            /* datagrams sent for it (challenges, answers, PINGs) */
} rudp_standby;

/* A connection's path state (in struct rudp_conn). */
typedef struct rudp_path {
    rudp_path_probe probe;
    uint8_t resp_pending;     /* a PATH_RESPONSE to send */
    uint8_t newest_on_probe;  /* the peer's newest non-probing packet came from probe.addr */
    uint64_t resp_data;
    /* a server's connection moved to a new port (rudp_conn_move_port) */
    uint16_t new_port;
    uint8_t port_pending;     /* NEW_PORT goes again until the client is heard there */
    uint8_t port_sent;        /* ... sent this many times from the new socket */
    uint8_t port_probe;       /* client: the probe is of the port NEW_PORT named */
    rudp_time port_next_at;
    rudp_time port_interval;
    uint32_t port_moves;
    /* a server's connection sends from a new address of its own
     * (rudp_conn_move_local): no ICMP is final until the client is heard */
    uint8_t local_pending;
    uint8_t local_sent;       /* ... PINGs sent for it */
    rudp_time local_next_at;
    uint32_t local_moves;
    /* counters for TCP_INFO, rudp-stat and log lines */
    uint32_t moves;           /* times the peer's address changed */
    uint32_t rebinds;         /* client: times we moved to a new socket */
    uint32_t failed;          /* validations that failed */
    /* the datagram being processed came on rx_sock from rx_peer (ctx.c):
     * a challenge is answered on the path it came by */
    uint32_t rx_sock;
    uint8_t rx_flags;         /* ... with these header flags (RUDP_PKTF_MOVED) */
    rudp_addr rx_peer;
    rudp_addr rx_local;       /* ... to rx_local (a server's wildcard socket; rx_has_local) */
    uint8_t rx_has_local;
    rudp_standby standby;
} rudp_path;

/* The amplification factor before validation (RFC 9000 §8). */
#define RUDP_PATH_AMPLIFICATION 3

#endif
