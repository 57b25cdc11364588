/*
 * acceptq.c: a listener's accept queue, one for all its engines.
 *
 * Linux answers a SYN only while the listener's accept queue is not full
 * (tcp_conn_request(): sk_acceptq_is_full(), "ack_backlog > backlog", so
 * backlog + 1 completed connections wait at most) and otherwise drops it
 * without a RST: the client resends. The queue here is the app's unix
 * listener, which has the same bound (unix_recvq_full(): "qlen >
 * max_ack_backlog"), plus the connections on their way to it: answered
 * (their clients count as connected), accepted and not yet handed over,
 * or waiting for room. Those are counted by the core (rudp_acceptq_ops) in
 * one atomic shared by the engines of a listener's SO_REUSEPORT group, so
 * a handshake on any engine sees the others'.
 *
 * The unix listener's length is the kernel's (accept() in any process, a
 * prefork child's too, shortens it; nothing tells us when), asked of
 * sock_diag by its inode. Not for every handshake: the length last seen
 * plus the connections handed over since is an upper bound, and the
 * kernel is asked only when that bound says full, and at most once per
 * REASK while it stays full (a flood of handshakes at a full listener
 * costs no netlink round trip each; a place freed meanwhile is taken at
 * the client's next attempt). A listener sock_diag cannot see is served
 * by the listener's own bounds as before.
 */
#include <stdatomic.h>
#include <stdint.h>

#include "internal.h"

#include "base/poison.h"

#define REASK 1000000 /* ns */

static int room(void *arg)
{
    esock *s = arg;
    shim_acceptq *q = s->aq;
    int held = atomic_load(&q->held);
    /* read before the kernel is asked: a hand-over after this counts in
     * handed - aq_at even if the kernel's length includes it too */
    uint64_t handed = atomic_load(&q->handed);
    if (s->aq_max >= 0 && (uint64_t)s->aq_len + (handed - s->aq_at) + (uint64_t)held <=
                              (uint64_t)s->aq_max)
        return 1;
    rudp_time now = shim_now();
    if (s->aq_max >= 0 && now - s->aq_asked < REASK)
        return 0;
    int len, max;
    if (shim_unix_diag_queue(s->listener_ino, &len, &max) != 1 || len < 0 || max < 0)
        return 1; /* cannot tell: the listener's own bounds decide */
    s->aq_len = len;
    s->aq_max = max;
    s->aq_at = handed;
    s->aq_asked = now;
    return (int64_t)len + held <= max;
}

static void moved(void *arg, int delta)
{
    esock *s = arg;
    atomic_fetch_add(&s->aq->held, delta);
}

void shim_acceptq_attach(esock *s)
{
    static const rudp_acceptq_ops ops = {room, moved};
    s->aq = s->group ? &s->group->aq : &s->aq_own;
    s->aq_len = s->aq_max = -1;
    if (s->listener_ino)
        rudp_listener_set_acceptq(s->listener, &ops, s);
}

void shim_acceptq_handed(esock *s)
{
    if (s->aq)
        atomic_fetch_add(&s->aq->handed, 1);
}
