/*
 * lib_wire.h: two rudp contexts joined by a hand-driven wire, for tests
 * that must choose which datagram is delivered, dropped or inspected, and
 * when time moves: a FIFO of datagrams per direction, nothing random.
 *
 * w_setup() makes a client (CLI) and a server (SRV) context at 10.0.0.1:1000
 * and 10.0.0.2:1001 (socket 1 on both), listens, connects and settles the
 * wire, so a test starts with one established connection each side
 * (w.conn[CLI], w.conn[SRV]). Events seen on them accumulate in w.events.
 */
#ifndef LIB_WIRE_H
#define LIB_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "rudp.h"

#define CLI 0
#define SRV 1
#define QMAX 64

typedef struct wdgram {
    size_t len;
    uint8_t buf[2048];
} wdgram;

/* q[ep]: datagrams on their way to ep */
struct wire {
    rudp_ctx *ctx[2];
    rudp_addr addr[2];
    rudp_conn *conn[2];
    unsigned events[2];
    rudp_time now;
    wdgram q[2][QMAX];
    size_t qn[2];
};
extern struct wire w;

/* The contexts' send callback (user = the sending ep as an intptr_t):
 * queues the datagram for the other ep. */
void w_send(void *user, uint32_t sock, const rudp_addr *peer, const uint8_t *buf, size_t len);
/* Runs ep's timers and output; collects its events. Returns its deadline. */
rudp_time w_process(int ep);
/* Delivers the i-th datagram queued for ep (or drops it) and removes it. */
void w_take(int ep, size_t i, int deliver);
/* Drops everything queued for ep. */
void w_drop_all(int ep);
/* Delivers everything both ways, 1 ms per round, until the wire is quiet. */
void w_settle(void);
/* Makes both contexts (seeds of seed_byte, ports port_base and +1), listens
 * on SRV and starts a connect from CLI, whose SYN waits on the wire. */
void w_start(uint8_t seed_byte, uint16_t port_base);
/* Criterion .init/.fini: see above. */
void w_setup(void);
void w_teardown(void);

#endif
