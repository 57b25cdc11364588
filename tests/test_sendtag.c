/*
 * test_sendtag.c: what the core tells a send_from callback about each
 * datagram: the address its peer reached (so a wildcard-bound server can
 * answer from it, IP_PKTINFO) and the connection's send tag (how the
 * caller marks that connection's datagrams), for the handshake, the data
 * and the closing handshake after the caller let go of the connection.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <string.h>

#include "rudp.h"

#define QN 64

static struct {
    rudp_ctx *cli, *srv;
    rudp_addr cli_addr, srv_addr, reached;
    rudp_conn *cconn, *sconn;
    rudp_time now;
    uint8_t q[2][QN][2048]; /* [0]: to the client, [1]: to the server */
    size_t len[2][QN], n[2];
    /* what the server's send_from saw */
    unsigned sent, wrong_local;
    uint64_t last_tag;
} t;

static void queue(int to, const uint8_t *buf, size_t len)
{
    cr_assert(lt(sz, t.n[to], (size_t)QN));
    memcpy(t.q[to][t.n[to]], buf, len);
    t.len[to][t.n[to]++] = len;
}

static void cli_send(void *user, uint32_t sock, const rudp_addr *peer, const uint8_t *buf,
                     size_t len)
{
    (void)user, (void)sock, (void)peer;
    queue(1, buf, len);
}

static void srv_send(void *user, uint32_t sock, const rudp_addr *peer, const rudp_addr *local,
                     uint64_t tag, const uint8_t *buf, size_t len)
{
    (void)user, (void)sock, (void)peer;
    t.sent++;
    if (!local || memcmp(local->ip, t.reached.ip, 4) != 0 || local->family != t.reached.family)
        t.wrong_local++;
    t.last_tag = tag;
    queue(0, buf, len);
}

static void events(void)
{
    rudp_conn *c;
    unsigned ev;
    while (rudp_ctx_next_event(t.srv, &c, &ev))
        if (ev & RUDP_EV_ACCEPT)
            t.sconn = c;
    while (rudp_ctx_next_event(t.cli, &c, &ev))
        ;
}

/* Delivers everything both ways until the wire is quiet (bounded). */
static void settle(void)
{
    for (int round = 0; round < 100 && (t.n[0] || t.n[1]); round++) {
        t.now += RUDP_MS(1);
        for (size_t i = 0; i < t.n[1]; i++)
            rudp_ctx_input(t.srv, t.now, 1, &t.reached, &t.cli_addr, t.q[1][i], t.len[1][i]);
        t.n[1] = 0;
        for (size_t i = 0; i < t.n[0]; i++)
            rudp_ctx_input(t.cli, t.now, 1, NULL, &t.srv_addr, t.q[0][i], t.len[0][i]);
        t.n[0] = 0;
        rudp_ctx_process(t.srv, t.now);
        rudp_ctx_process(t.cli, t.now);
        events();
    }
    cr_assert(eq(sz, t.n[0] + t.n[1], 0), "the wire never went quiet");
}

static void setup(void)
{
    memset(&t, 0, sizeof t);
    t.now = RUDP_SEC(1000);
    static const rudp_ctx_ops cops = {.send = cli_send};
    static const rudp_ctx_ops sops = {.send_from = srv_send};
    uint8_t seed[32];
    memset(seed, 7, sizeof seed);
    cr_assert(eq(int, rudp_ctx_new(&cops, NULL, seed, NULL, NULL, &t.cli), 0));
    memset(seed, 9, sizeof seed);
    cr_assert(eq(int, rudp_ctx_new(&sops, NULL, seed, NULL, NULL, &t.srv), 0));
    t.cli_addr.family = t.srv_addr.family = t.reached.family = 2;
    t.cli_addr.port = 1000;
    t.cli_addr.ip[0] = 10, t.cli_addr.ip[3] = 1;
    t.srv_addr.port = 1001;
    t.srv_addr.ip[0] = 10, t.srv_addr.ip[3] = 2;
    t.reached = t.srv_addr; /* the server's socket is bound to the wildcard */
    rudp_listener *l;
    cr_assert(eq(int, rudp_listen(t.srv, 1, NULL, 4, &l), 0));
    cr_assert(eq(int, rudp_connect(t.cli, t.now, 1, &t.srv_addr, NULL, &t.cconn), 0));
    rudp_ctx_process(t.cli, t.now);
}

static void teardown(void)
{
    rudp_ctx_free(t.cli);
    rudp_ctx_free(t.srv);
}

TestSuite(send_tag, .init = setup, .fini = teardown, .timeout = 10);

Test(send_tag, handshake_leaves_from_the_address_reached_untagged)
{
    settle();
    cr_assert_not_null(t.sconn);
    cr_assert(gt(u32, t.sent, 0));
    cr_assert(eq(u32, t.wrong_local, 0));
    cr_assert(eq(u64, t.last_tag, 0));
    cr_assert(eq(u64, rudp_conn_send_tag(t.sconn), 0));
}

Test(send_tag, data_and_closing_carry_the_tag_after_release)
{
    settle();
    cr_assert_not_null(t.sconn);
    rudp_conn_set_send_tag(t.sconn, 0x2801);
    cr_assert(eq(u64, rudp_conn_send_tag(t.sconn), 0x2801));
    unsigned before = t.sent;
    cr_assert(eq(i64, rudp_conn_write(t.sconn, t.now, "hello", 5), 5));
    rudp_ctx_process(t.srv, t.now);
    cr_assert(gt(u32, t.sent, before));
    cr_assert(eq(u64, t.last_tag, 0x2801));
    settle();
    /* the caller lets go; the closing handshake still carries the tag */
    rudp_conn_shutdown(t.sconn, t.now);
    rudp_conn_release(t.sconn, t.now);
    before = t.sent;
    rudp_ctx_process(t.srv, t.now);
    cr_assert(gt(u32, t.sent, before));
    cr_assert(eq(u64, t.last_tag, 0x2801));
    cr_assert(eq(u32, t.wrong_local, 0));
}
