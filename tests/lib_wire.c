/* lib_wire.c: the hand-driven wire of lib_wire.h. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdint.h>
#include <string.h>

#include "lib_wire.h"

struct wire w;

void w_send(void *user, uint32_t sock, const rudp_addr *peer, const uint8_t *buf,
                   size_t len)
{
    (void)sock;
    int from = (int)(intptr_t)user, to = 1 - from;
    cr_assert(eq(int, memcmp(peer, &w.addr[to], sizeof *peer), 0));
    cr_assert(lt(sz, w.qn[to], (size_t)QMAX));
    cr_assert(le(sz, len, sizeof w.q[to][0].buf));
    w.q[to][w.qn[to]].len = len;
    memcpy(w.q[to][w.qn[to]].buf, buf, len);
    w.qn[to]++;
}

static void w_events(int ep)
{
    rudp_conn *c;
    unsigned ev;
    while (rudp_ctx_next_event(w.ctx[ep], &c, &ev)) {
        if (ev & RUDP_EV_ACCEPT)
            w.conn[ep] = c;
        if (c == w.conn[ep])
            w.events[ep] |= ev;
    }
}

rudp_time w_process(int ep)
{
    rudp_time next = rudp_ctx_process(w.ctx[ep], w.now);
    w_events(ep);
    return next;
}

/* Delivers the i-th queued datagram to ep (or drops it) and removes it. */
void w_take(int ep, size_t i, int deliver)
{
    cr_assert(lt(sz, i, w.qn[ep]));
    wdgram d = w.q[ep][i];
    memmove(&w.q[ep][i], &w.q[ep][i + 1], (w.qn[ep] - i - 1) * sizeof w.q[ep][0]);
    w.qn[ep]--;
    if (deliver)
        rudp_ctx_input(w.ctx[ep], w.now, 1, NULL, &w.addr[1 - ep], d.buf, d.len);
    w_process(ep);
}

void w_drop_all(int ep)
{
    w.qn[ep] = 0;
}

/* Delivers everything both ways until the wire is quiet. */
void w_settle(void)
{
    for (int round = 0; round < 100 && (w.qn[0] || w.qn[1]); round++) {
        w.now += RUDP_MS(1);
        for (int ep = 0; ep < 2; ep++)
            while (w.qn[ep])
                w_take(ep, 0, 1);
    }
    cr_assert(eq(sz, w.qn[0] + w.qn[1], 0), "the wire never went quiet");
}

void w_start(uint8_t seed_byte, uint16_t port_base)
{
    memset(&w, 0, sizeof w);
    w.now = RUDP_SEC(1000);
    static const rudp_ctx_ops ops = {.send = w_send};
    for (int ep = 0; ep < 2; ep++) {
        uint8_t seed[32];
        memset(seed, seed_byte * (ep + 1), sizeof seed);
        w.addr[ep].family = 2;
        w.addr[ep].port = (uint16_t)(port_base + ep);
        w.addr[ep].ip[0] = 10;
        w.addr[ep].ip[3] = (uint8_t)(ep + 1);
        cr_assert(eq(int, rudp_ctx_new(&ops, (void *)(intptr_t)ep, seed, NULL, NULL, &w.ctx[ep]),
                     0));
    }
    rudp_listener *l;
    cr_assert(eq(int, rudp_listen(w.ctx[SRV], 1, NULL, 4, &l), 0));
    cr_assert(eq(int, rudp_connect(w.ctx[CLI], w.now, 1, &w.addr[SRV], NULL, &w.conn[CLI]), 0));
    w_process(CLI);
}

void w_setup(void)
{
    w_start(0x11, 1000);
    w_settle();
    cr_assert(ne(u32, w.events[CLI] & RUDP_EV_ESTABLISHED, 0));
    cr_assert(ne(u32, w.events[SRV] & RUDP_EV_ACCEPT, 0));
    cr_assert_not_null(w.conn[SRV]);
}

void w_teardown(void)
{
    rudp_ctx_free(w.ctx[0]);
    rudp_ctx_free(w.ctx[1]);
}

