/*
 * forward.c: engines handing each other datagrams by connection ID.
 *
 * With RUDP_ENGINES above 1 a listener has one UDP socket per engine in a
 * SO_REUSEPORT group, and the kernel gives each datagram to a member by a
 * hash of the peer's address and port (reuseport_select_sock()). A peer
 * that moves (a NAT's new port, a new network: README, Roaming), or a group
 * that grows (another listener joining it), lands on an engine that does
 * not know the connection. Each engine's core tags the connection IDs it
 * chooses with the engine's index (rudp_ctx_set_cid_tag), and gives back,
 * unanswered, a datagram for an unknown ID of another engine's
 * (rudp_ctx_input's RUDP_INPUT_FOREIGN); this file carries it to that
 * engine, which takes it as its own on its socket bound to the same
 * endpoint, before anyone could answer it with a stateless reset.
 *
 * The hand-over never blocks the engine that received the datagram: a
 * lock-free stack per engine (a compare-and-swap to push; the owner takes
 * the whole stack with one exchange, so no node is ever popped alone and
 * ABA cannot happen), woken through the owner's eventfd when the stack was
 * empty. A bounded number wait; more are dropped, as a full socket buffer
 * drops them.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ports.h"
#include "portpriv.h"
#include "portshare.h"

#include "base/poison.h"

/* Datagrams waiting for one engine at most: a full receive batch of every
 * other engine's several times over. */
#define FWD_MAX 4096

typedef struct fwd_dgram {
    struct fwd_dgram *next;
    struct sockaddr_storage endpoint; /* where it arrived: a listener's address */
    rudp_addr local, peer;
    int has_local;
    uint64_t stamp; /* its kernel receive time (fifo.c), 0: none */
    size_t len;
    uint8_t buf[];
} fwd_dgram;

/* SHIM_ENGINES_MAX engines need this many bits of an ID. */
#define TAG_BITS 3
_Static_assert((1 << TAG_BITS) >= SHIM_ENGINES_MAX && TAG_BITS <= RUDP_CID_TAG_BITS_MAX,
               "forward.c: the engine index must fit the tag");

unsigned shim_forward_tag_bits(void)
{
    return shim_cfg.engines > 1 ? TAG_BITS : 0;
}

void shim_forward(esock *s, unsigned owner, const rudp_addr *local, const rudp_addr *peer,
                  const uint8_t *buf, size_t len, rudp_time now)
{
    struct engine *e = shim_esock_engine(s);
    port_engine *pe = port_of_engine(e);
    const struct sockaddr_storage *ep = &port_of_sock(s)->endpoint;
    /* engines [0, nrun) have started (one that broke takes nothing: what
     * waits for it is at most FWD_MAX) */
    struct engine *to = shim_engine_if_running(owner);
    if (!to || to == e || !ep->ss_family) {
        rudp_ctx_input_handed(shim_engine_ctx(e), now, shim_esock_index(s), local, peer, buf, len);
        return;
    }
    port_engine *pt = port_of_engine(to);
    fwd_dgram *d = NULL;
    if (atomic_fetch_add(&pt->fwd_queued, 1) >= FWD_MAX || !(d = shim_malloc(sizeof *d + len))) {
        atomic_fetch_sub(&pt->fwd_queued, 1);
        pe->handed_dropped++;
        return;
    }
    d->endpoint = *ep;
    d->has_local = local != NULL;
    if (local)
        d->local = *local;
    d->peer = *peer;
    d->stamp = shim_engine_rx_stamp(e);
    d->len = len;
    memcpy(d->buf, buf, len);
    shim_fifo_fwd_out(to, d->stamp); /* still unread for the accept order */
    fwd_dgram *head = atomic_load(&pt->fwd_head);
    do
        d->next = head;
    while (!atomic_compare_exchange_weak(&pt->fwd_head, &head, d));
    pe->handed_out++;
    if (!head)
        shim_engine_wake(to); /* the stack was empty: the owner may be asleep */
}

/* Takes e's whole stack, oldest first. */
static fwd_dgram *take_all(port_engine *pe)
{
    fwd_dgram *d = atomic_exchange(&pe->fwd_head, NULL), *list = NULL;
    while (d) {
        fwd_dgram *next = d->next;
        d->next = list;
        list = d;
        d = next;
    }
    return list;
}

void shim_forward_take(struct engine *e, rudp_time now)
{
    port_engine *pe = port_of_engine(e);
    rudp_ctx *ctx = shim_engine_ctx(e);
    fwd_dgram *list = take_all(pe);
    while (list) {
        fwd_dgram *d = list;
        list = d->next;
        atomic_fetch_sub(&pe->fwd_queued, 1);
        shim_fifo_fwd_in(e, d->stamp); /* settled at the end of this turn */
        uint32_t sock = shim_port_endpoint_sock(e, &d->endpoint);
        if (sock != UINT32_MAX) {
            pe->handed_in++;
            rudp_ctx_set_rx_stamp(ctx, d->stamp);
            rudp_ctx_input_handed(ctx, now, sock, d->has_local ? &d->local : NULL, &d->peer,
                                  d->buf, d->len);
        } else {
            pe->handed_dropped++; /* its listener's port given up here */
        }
        shim_free(d);
    }
    rudp_ctx_set_rx_stamp(ctx, 0);
}
