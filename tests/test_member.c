/*
 * Member tags (rudp_ctx_set_member_bits, rudp_listener_set_member_tag): a
 * SO_REUSEPORT group of several processes tells its members' connections
 * apart by the IDs' top bits; a datagram of another member's is given
 * back unanswered, one of a member gone is answered here (keyed: the
 * stateless reset), and the engine tag still works below the member's.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <string.h>

#include "conn.h"
#include "crypto.h"
#include "lib_sim.h"
#include "rudp.h"

static size_t sent;

static void count_send(void *user, uint32_t sock, const rudp_addr *peer, const uint8_t *buf,
                       size_t len)
{
    (void)user, (void)sock, (void)peer, (void)buf, (void)len;
    sent++;
}

static const uint8_t key1[RUDP_KEY_LEN] = "0123456789abcdef0123456789abcde";
static const rudp_addr peer = {.family = 2, .port = 1234, .ip = {10, 0, 0, 2}};
/* where the datagrams came to: a keyed reset's token names it */
static const rudp_addr local = {.family = 2, .port = 80, .ip = {10, 0, 0, 1}};

/* A context with 6 member bits and engine tag 1 of 3 bits, a listener on
 * socket 1 with member tag 5 (keyed if `keyed`). */
static rudp_ctx *member_ctx(int keyed)
{
    static const rudp_ctx_ops ops = {.send = count_send};
    uint8_t seed[32];
    memset(seed, 7, sizeof seed);
    rudp_ctx *ctx;
    cr_assert(eq(int, rudp_ctx_new(&ops, NULL, seed, NULL, NULL, &ctx), 0));
    cr_assert(eq(int, rudp_ctx_set_member_bits(ctx, 6), 0));
    cr_assert(eq(int, rudp_ctx_set_cid_tag(ctx, 3, 1), 0));
    if (keyed)
        cr_assert(eq(int, rudp_ctx_set_key(ctx, key1, seed), 0));
    rudp_listener *l;
    cr_assert(eq(int, rudp_listen(ctx, 1, NULL, 4, &l), 0));
    cr_assert(eq(int, rudp_listener_set_member_tag(l, 64), -EINVAL));
    cr_assert(eq(int, rudp_listener_set_member_tag(l, 5), 0));
    sent = 0;
    return ctx;
}

/* An ID with member field m and engine tag t, keyed (a key holder's MAC)
 * if ctx is. */
static uint64_t id_of(rudp_ctx *ctx, unsigned m, unsigned t)
{
    uint64_t id = (uint64_t)m << 58 | (uint64_t)t << 55 | 0x12345ull << 33;
    return ctx->keyed ? rudp__keyed_cid(ctx, id) : id | 999;
}

/* A DATA packet to dcid, big enough for a keyed reset to answer it. */
static size_t data_to(uint8_t *buf, uint64_t dcid)
{
    size_t hl = sim_data_hdr(buf, dcid, 5);
    memset(buf + hl, 0, 40 + RUDP_CRYPTO_TAG);
    return hl + 40 + RUDP_CRYPTO_TAG;
}

static int feed(rudp_ctx *ctx, uint64_t dcid)
{
    uint8_t buf[128];
    size_t n = data_to(buf, dcid);
    int r = rudp_ctx_input(ctx, RUDP_SEC(1), 1, &local, &peer, buf, n);
    rudp_ctx_process(ctx, RUDP_SEC(1));
    return r;
}

Test(member, refuses_bits_that_do_not_fit)
{
    rudp_ctx *ctx = member_ctx(0);
    cr_expect(eq(int, rudp_ctx_set_member_bits(ctx, RUDP_CID_MEMBER_BITS_MAX + 1), -EINVAL));
    rudp_ctx_free(ctx);
}

Test(member, another_members_datagram_is_given_back_unanswered)
{
    rudp_ctx *ctx = member_ctx(0);
    cr_expect(eq(int, feed(ctx, id_of(ctx, 7, 1)), RUDP_INPUT_MEMBER + 7));
    cr_expect(eq(sz, sent, 0), "no reset for another member's connection");
    cr_expect(eq(u64, rudp_ctx_stats(ctx)->dgrams_in, 0));
    cr_expect(eq(u64, rudp_ctx_stats(ctx)->unknown_conn, 0));
    /* our member's, another engine's: to that engine, as before */
    cr_expect(eq(int, feed(ctx, id_of(ctx, 5, 2)), RUDP_INPUT_FOREIGN + 2));
    cr_expect(eq(sz, sent, 0));
    rudp_ctx_free(ctx);
}

Test(member, taken_from_a_member_it_goes_to_its_engine_or_is_ours)
{
    rudp_ctx *ctx = member_ctx(0);
    uint8_t buf[128];
    size_t n = data_to(buf, id_of(ctx, 5, 2));
    cr_expect(eq(int, rudp_ctx_input_member(ctx, RUDP_SEC(1), 1, &local, &peer, buf, n, 0),
                 RUDP_INPUT_FOREIGN + 2));
    n = data_to(buf, id_of(ctx, 5, 1));
    cr_expect(eq(int, rudp_ctx_input_member(ctx, RUDP_SEC(1), 1, &local, &peer, buf, n, 0), 0));
    rudp_ctx_process(ctx, RUDP_SEC(1));
    cr_expect(eq(sz, sent, 1), "our own connection, gone: the reset");
    rudp_ctx_free(ctx);
}

Test(member, untagged_or_without_a_tagged_listener_the_field_is_not_read)
{
    rudp_ctx *ctx = member_ctx(0);
    /* member field 0: an untagged member's, answered as today */
    cr_expect(eq(int, feed(ctx, id_of(ctx, 0, 1)), 0));
    cr_expect(eq(sz, sent, 1));
    /* a socket with no listener (a client's): the field is not a tag */
    uint8_t buf[128];
    size_t n = data_to(buf, id_of(ctx, 7, 1));
    cr_expect(eq(int, rudp_ctx_input(ctx, RUDP_SEC(1), 2, &local, &peer, buf, n), 0));
    rudp_ctx_free(ctx);
}

Test(member, keyed_resets_only_its_own_tag_and_orphans)
{
    rudp_ctx *ctx = member_ctx(1);
    cr_expect(eq(int, feed(ctx, id_of(ctx, 5, 1)), 0));
    cr_expect(eq(sz, sent, 1), "our own connection, gone: the keyed reset");
    sent = 0;
    cr_expect(eq(int, feed(ctx, id_of(ctx, 0, 1)), 0));
    cr_expect(eq(sz, sent, 0), "an untagged member's may be alive there: no reset");
    cr_expect(eq(int, feed(ctx, id_of(ctx, 7, 1)), RUDP_INPUT_MEMBER + 7));
    cr_expect(eq(sz, sent, 0));
    /* member 7 is gone: its connections too */
    uint8_t buf[128];
    size_t n = data_to(buf, id_of(ctx, 7, 3));
    cr_expect(eq(int, rudp_ctx_input_member(ctx, RUDP_SEC(1), 1, &local, &peer, buf, n, 1), 0));
    rudp_ctx_process(ctx, RUDP_SEC(1));
    cr_expect(eq(sz, sent, 1), "an orphan gets the keyed reset, whatever its engine tag");
    rudp_ctx_free(ctx);
}

Test(member, accepted_connections_carry_the_listeners_tag)
{
    sim s;
    sim_init(&s, 3);
    int a = sim_add_ep(&s, NULL), b = sim_add_ep(&s, NULL);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(5);
    cr_assert(eq(int, rudp_ctx_set_member_bits(s.ep[b].ctx, 6), 0));
    cr_assert(eq(int, rudp_ctx_set_cid_tag(s.ep[b].ctx, 3, 6), 0));
    static const sim_app tpl = {.to_send = 10, .expect = UINT64_MAX, .no_shutdown = 1};
    sim_listen(&s, b, &tpl, 4);
    rudp_listener *l = NULL;
    uint32_t sock = 1;
    HASH_FIND(hh, s.ep[b].ctx->listeners, &sock, sizeof sock, l);
    cr_assert(l != NULL);
    cr_assert(eq(int, rudp_listener_set_member_tag(l, 9), 0));
    for (int i = 0; i < 5; i++)
        sim_connect(&s, a, b, &tpl, NULL);
    sim_run_until(&s, s.now + RUDP_MS(200));
    int seen = 0;
    for (int i = 0; i < SIM_MAX_APPS; i++)
        if (s.apps[i].used && s.apps[i].ep == b && s.apps[i].conn) {
            cr_expect(eq(u64, s.apps[i].conn->cid >> 58, 9));
            cr_expect(eq(u64, (s.apps[i].conn->cid >> 55) & 7, 6));
            cr_expect(eq(u64, s.apps[i].received, 10));
            seen++;
        }
    cr_expect(eq(int, seen, 5));
    sim_free(&s);
}
