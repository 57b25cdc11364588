/*
 * Where a context's memory comes from (rudp_mem, rudp_ctx_new): every
 * allocation of a connection's life, from the handshake to the context's
 * end, through its own context's table, none through another's, and every
 * block given back by the end.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdlib.h>
#include <string.h>

#include "lib_sim.h"
#include "../shim/base/base.h" /* shim_aead_openssl */

/* A counting allocator: each block carries its allocator's address in a
 * 16-byte header (malloc's alignment kept), so a free through the wrong
 * table shows, as a foreign free, in the table that got it. */
typedef struct counter {
    rudp_mem mem;
    long allocs, frees, live, foreign;
} counter;

#define HDR 16

static void *wrap(counter *k, void *base)
{
    if (!base)
        return NULL;
    memcpy(base, &k, sizeof k);
    k->allocs++;
    k->live++;
    return (char *)base + HDR;
}

/* The block's base, or NULL (counted) if another table made it. */
static void *unwrap(counter *k, void *p)
{
    void *base = (char *)p - HDR;
    counter *owner;
    memcpy(&owner, base, sizeof owner);
    if (owner != k) {
        k->foreign++;
        return NULL;
    }
    return base;
}

static void *c_malloc(size_t n, void *user)
{
    return wrap(user, malloc(n + HDR));
}

static void *c_calloc(size_t count, size_t size, void *user)
{
    if (size && count > (SIZE_MAX - HDR) / size)
        return NULL;
    return wrap(user, calloc(1, count * size + HDR));
}

static void *c_realloc(void *p, size_t n, void *user)
{
    counter *k = user;
    if (!p)
        return c_malloc(n, user);
    void *base = unwrap(k, p);
    if (!base)
        return NULL;
    void *nb = realloc(base, n + HDR);
    return nb ? (char *)nb + HDR : NULL; /* the same block, moved: no count */
}

static void c_free(void *p, void *user)
{
    counter *k = user;
    if (!p)
        return;
    void *base = unwrap(k, p);
    if (!base)
        return; /* leaked on purpose: it is not ours to free */
    k->frees++;
    k->live--;
    free(base);
}

static void counter_init(counter *k)
{
    memset(k, 0, sizeof *k);
    k->mem = (rudp_mem){k, c_malloc, c_calloc, c_realloc, c_free};
}

static const sim_app cli_tpl = {.to_send = 300000, .expect = 200000, .send_seed = 31,
                                .recv_seed = 32};
static const sim_app srv_tpl = {.to_send = 200000, .expect = 300000, .send_seed = 32,
                                .recv_seed = 31};

/* A client on a (table ca) and a server on b (table cb), keyed with key
 * unless NULL, exchange both patterns and close; the contexts live on
 * until checked, then are freed. */
static void pair_life(counter *ca, counter *cb, const uint8_t *key)
{
    sim s;
    sim_init(&s, 45);
    int a = sim_add_ep_mem(&s, NULL, &ca->mem), b = sim_add_ep_mem(&s, NULL, &cb->mem);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(5);
    s.link[a][b].loss = s.link[b][a].loss = 0.02; /* retransmissions, ranges, reordering */
    if (key) {
        sim_set_key(&s, a, key);
        sim_set_key(&s, b, key);
        /* the shim's backend too, installed after the key as the shim
         * does: its state and spare contexts come from the same table */
        sim_set_aead(&s, a, shim_aead_openssl());
        sim_set_aead(&s, b, shim_aead_openssl());
    }
    sim_listen(&s, b, &srv_tpl, 16);
    sim_connect(&s, a, b, &cli_tpl, NULL);
    cr_assert(sim_run(&s, s.now + RUDP_SEC(120)), "the pair did not finish");
    for (int i = 0; i < SIM_MAX_APPS; i++) {
        const sim_app *x = &s.apps[i];
        if (!x->used)
            continue;
        cr_assert(not(x->corrupt));
        cr_assert(eq(u64, x->received, x->expect));
        cr_assert(eq(int, x->error, 0));
    }
    /* the contexts still hold their tables, listener, chunk pool */
    cr_assert(gt(long, ca->live, 0));
    cr_assert(gt(long, cb->live, 0));
    sim_free(&s);
}

static void assert_balanced(const counter *k, const char *who)
{
    /* a connection alone takes more than a handful of blocks: its struct,
     * buffers' rings and chunks, ranges, recovery's ring */
    cr_assert(gt(long, k->allocs, 10), "%s: %ld allocations", who, k->allocs);
    cr_assert(eq(long, k->live, 0), "%s: %ld blocks never freed", who, k->live);
    cr_assert(eq(long, k->allocs, k->frees), "%s", who);
    cr_assert(eq(long, k->foreign, 0), "%s: %ld blocks of another table", who, k->foreign);
}

/* A pair's life, each end on a counting table of its own: both balance. */
static void both_balance(const uint8_t *key)
{
    counter ca, cb;
    counter_init(&ca);
    counter_init(&cb);
    pair_life(&ca, &cb, key);
    assert_balanced(&ca, "client");
    assert_balanced(&cb, "server");
}

Test(alloc, a_connections_life_goes_through_its_contexts_table_and_balances)
{
    both_balance(NULL);
}

Test(alloc, keyed_state_goes_through_its_contexts_table_and_balances)
{
    static const uint8_t key[RUDP_KEY_LEN] = "a key for the allocator's test.";
    both_balance(key);
}

/* Two contexts, two tables: a block one context took never reaches the
 * other's table (each free checks the block's owner), and a context given
 * no table (NULL) uses libc's without touching either. */
Test(alloc, two_contexts_with_different_tables_do_not_mix)
{
    counter ca, cb;
    counter_init(&ca);
    counter_init(&cb);
    pair_life(&ca, &cb, NULL);
    long a_allocs = ca.allocs, b_allocs = cb.allocs;

    sim s;
    sim_init(&s, 46);
    int a = sim_add_ep_mem(&s, NULL, &ca.mem), b = sim_add_ep(&s, NULL);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(5);
    sim_listen(&s, b, &srv_tpl, 16);
    sim_connect(&s, a, b, &cli_tpl, NULL);
    cr_assert(sim_run(&s, s.now + RUDP_SEC(60)));
    sim_free(&s);
    cr_assert(gt(long, ca.allocs, a_allocs), "the client's table saw its second life");
    cr_assert(eq(long, cb.allocs, b_allocs), "the server's table is not the libc one's");
    assert_balanced(&ca, "client");
    assert_balanced(&cb, "server");
}
