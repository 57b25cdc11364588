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
 *
 * A place is taken when it is found, not when the core counts the new
 * connection (moved(+1), a few calls later): two engines answering two
 * clients at once each saw the queue's last place free, and 4 connections
 * completed with a backlog of 2 (t_prog_acceptq with RUDP_ENGINES=2,
 * once in a clean-clone run under load). room() takes it with a
 * compare-and-swap on `held` and notes it on the socket (aq_resv, its
 * engine's alone: one place at most); the core's moved(+1) for the new
 * connection then uses it rather than adding one. A place taken for a
 * handshake that made no connection (answered with a RETRY for another
 * reason, refused for memory) is given back before the engine sleeps
 * (shim_acceptq_release_all) or when the socket stops listening.
 */
#include <stdatomic.h>
#include <stdint.h>

#include "internal.h"

#include "base/poison.h"

#define REASK 1000000 /* ns */

/* Whether one more connection fits with `held` on the way (1), not (0),
 * or nobody can tell (-1). */
static int fits(esock *s, int held, uint64_t handed)
{
    if (s->aq_max >= 0 && (uint64_t)s->aq_len + (handed - s->aq_at) + (uint64_t)held <=
                              (uint64_t)s->aq_max)
        return 1;
    rudp_time now = shim_now();
    if (s->aq_max >= 0 && now - s->aq_asked < REASK)
        return 0;
    int len, max;
    if (shim_unix_diag_queue(s->listener_ino, &len, &max) != 1 || len < 0 || max < 0)
        return -1; /* cannot tell: the listener's own bounds decide */
    s->aq_len = len;
    s->aq_max = max;
    s->aq_at = handed;
    s->aq_asked = now;
    return (int64_t)len + held <= max;
}

static void give_back(esock *s)
{
    if (!s->aq_resv)
        return;
    atomic_fetch_sub(&s->aq->held, 1);
    s->aq_resv = 0;
    s->e->aq_resv_n--;
}

static int room(void *arg)
{
    esock *s = arg;
    shim_acceptq *q = s->aq;
    for (;;) {
        int all = atomic_load(&q->held);
        /* read before the kernel is asked: a hand-over after this counts
         * in handed - aq_at even if the kernel's length includes it too */
        uint64_t handed = atomic_load(&q->handed);
        int r = fits(s, all - s->aq_resv, handed); /* our own place is this one's */
        if (r == 0)
            give_back(s);
        if (r <= 0 || s->aq_resv)
            return r != 0;
        if (atomic_compare_exchange_weak(&q->held, &all, all + 1)) {
            s->aq_resv = 1;
            s->e->aq_resv_n++;
            return 1;
        }
        /* another engine's handshake or hand-over came first: again */
    }
}

static void moved(void *arg, int delta)
{
    esock *s = arg;
    if (delta > 0 && s->aq_resv) { /* the place room() took */
        s->aq_resv = 0;
        s->e->aq_resv_n--;
        delta--;
    }
    if (delta)
        atomic_fetch_add(&s->aq->held, delta);
}

void shim_acceptq_release(esock *s)
{
    if (s->aq)
        give_back(s);
}

void shim_acceptq_release_all(struct engine *e)
{
    for (uint32_t i = 0; e->aq_resv_n > 0 && i < e->nsocks; i++)
        if (e->socks[i])
            shim_acceptq_release(e->socks[i]);
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
