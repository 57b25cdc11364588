/*
 * Connection-ID tags (rudp_ctx_set_cid_tag): contexts behind one UDP
 * endpoint tell each other's datagrams apart by the IDs' top bits, and a
 * datagram of another context's is given back, not answered.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <string.h>

#include "conn.h"
#include "lib_sim.h"
#include "rudp.h"

static size_t sent;

static void count_send(void *user, uint32_t sock, const rudp_addr *peer, const uint8_t *buf,
                       size_t len)
{
    (void)user, (void)sock, (void)peer, (void)buf, (void)len;
    sent++;
}

static rudp_ctx *tagged_ctx(unsigned bits, unsigned tag)
{
    static const rudp_ctx_ops ops = {.send = count_send};
    uint8_t seed[32];
    memset(seed, 7, sizeof seed);
    rudp_ctx *ctx;
    cr_assert(eq(int, rudp_ctx_new(&ops, NULL, seed, NULL, NULL, &ctx), 0));
    cr_assert(eq(int, rudp_ctx_set_cid_tag(ctx, bits, tag), 0));
    sent = 0;
    return ctx;
}

static const rudp_addr peer = {.family = 2, .port = 1234, .ip = {10, 0, 0, 2}};

/* A DATA packet (header and a little padding) to dcid. */
static size_t data_to(uint8_t *buf, uint64_t dcid)
{
    size_t hl = sim_data_hdr(buf, dcid, 5);
    memset(buf + hl, 0, 16);
    return hl + 16;
}

Test(cidtag, refuses_tags_that_do_not_fit)
{
    rudp_ctx *ctx = tagged_ctx(0, 0);
    cr_expect(eq(int, rudp_ctx_set_cid_tag(ctx, RUDP_CID_TAG_BITS_MAX + 1, 0), -EINVAL));
    cr_expect(eq(int, rudp_ctx_set_cid_tag(ctx, 3, 8), -EINVAL));
    cr_expect(eq(int, rudp_ctx_set_cid_tag(ctx, 3, 7), 0));
    rudp_ctx_free(ctx);
}

Test(cidtag, chosen_ids_carry_the_tag)
{
    rudp_ctx *ctx = tagged_ctx(3, 5);
    for (int i = 0; i < 50; i++) {
        rudp_conn *c;
        cr_assert(eq(int, rudp_connect(ctx, RUDP_SEC(1), 1, &peer, NULL, &c), 0));
        cr_expect(eq(u64, c->cid >> 61, 5));
    }
    rudp_ctx_free(ctx);
}

Test(cidtag, another_contexts_datagram_is_given_back_unanswered)
{
    rudp_ctx *ctx = tagged_ctx(3, 1);
    uint8_t buf[64];
    size_t n = data_to(buf, 2ull << 61 | 12345);
    cr_expect(eq(int, rudp_ctx_input(ctx, RUDP_SEC(1), 1, NULL, &peer, buf, n),
                 RUDP_INPUT_FOREIGN + 2));
    rudp_ctx_process(ctx, RUDP_SEC(1));
    cr_expect(eq(sz, sent, 0), "no stateless reset for another context's connection");
    cr_expect(eq(u64, rudp_ctx_stats(ctx)->dgrams_in, 0));
    cr_expect(eq(u64, rudp_ctx_stats(ctx)->unknown_conn, 0));
    /* handed over, or its owner gone: answered as any unknown connection */
    rudp_ctx_input_handed(ctx, RUDP_SEC(1), 1, NULL, &peer, buf, n);
    rudp_ctx_process(ctx, RUDP_SEC(1));
    cr_expect(eq(sz, sent, 1));
    cr_expect(eq(u64, rudp_ctx_stats(ctx)->unknown_conn, 1));
    rudp_ctx_free(ctx);
}

Test(cidtag, own_or_untagged_unknown_ids_get_the_stateless_reset)
{
    uint8_t buf[64];
    rudp_ctx *ctx = tagged_ctx(3, 1);
    size_t n = data_to(buf, 1ull << 61 | 999);
    cr_expect(eq(int, rudp_ctx_input(ctx, RUDP_SEC(1), 1, NULL, &peer, buf, n), 0));
    rudp_ctx_process(ctx, RUDP_SEC(1));
    cr_expect(eq(sz, sent, 1));
    rudp_ctx_free(ctx);

    ctx = tagged_ctx(0, 0); /* one context: every datagram is its own */
    n = data_to(buf, 6ull << 61 | 999);
    cr_expect(eq(int, rudp_ctx_input(ctx, RUDP_SEC(1), 1, NULL, &peer, buf, n), 0));
    rudp_ctx_process(ctx, RUDP_SEC(1));
    cr_expect(eq(sz, sent, 1));
    rudp_ctx_free(ctx);
}
