/* Timer wheel: unit behaviour, and random operations against a reference
 * model with a structural invariant checker after every step. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdlib.h>
#include <string.h>

#include "timer.h"

#define TICK RUDP_TIMER_TICK_NS

Test(timer, fires_once_after_deadline)
{
    rudp_wheel w;
    rudp_timer t;
    rudp__wheel_init(&w, 0);
    rudp__timer_init(&t, 7);
    rudp__wheel_arm(&w, &t, RUDP_MS(10));
    cr_assert(rudp__timer_armed(&t));
    cr_assert(eq(ptr, rudp__wheel_expire(&w, RUDP_MS(10) - 1), NULL));
    rudp_timer *got = rudp__wheel_expire(&w, RUDP_MS(10) + TICK);
    cr_assert(eq(ptr, got, &t));
    cr_assert(eq(u8, got->kind, 7));
    cr_assert(not(rudp__timer_armed(&t)));
    cr_assert(eq(ptr, rudp__wheel_expire(&w, RUDP_SEC(100)), NULL));
}

Test(timer, never_fires_before_deadline_within_a_tick)
{
    rudp_wheel w;
    rudp_timer t;
    rudp__wheel_init(&w, 0);
    rudp__timer_init(&t, 0);
    rudp__wheel_arm(&w, &t, TICK + 5);
    cr_assert(eq(ptr, rudp__wheel_expire(&w, TICK + 4), NULL));
    cr_assert(eq(ptr, rudp__wheel_expire(&w, 2 * TICK), &t));
}

Test(timer, deadline_in_the_past_fires_at_next_expire)
{
    rudp_wheel w;
    rudp_timer t;
    rudp__wheel_init(&w, RUDP_SEC(5));
    rudp__timer_init(&t, 0);
    rudp__wheel_arm(&w, &t, RUDP_SEC(1));
    cr_assert(eq(u64, rudp__wheel_next(&w),
                 (RUDP_SEC(5) >> RUDP_TIMER_TICK_SHIFT) << RUDP_TIMER_TICK_SHIFT));
    cr_assert(eq(ptr, rudp__wheel_expire(&w, RUDP_SEC(5)), &t));
}

Test(timer, cancel_and_rearm_move_the_deadline)
{
    rudp_wheel w;
    rudp_timer t;
    rudp__wheel_init(&w, 0);
    rudp__timer_init(&t, 0);
    rudp__wheel_arm(&w, &t, RUDP_MS(1));
    rudp__wheel_cancel(&w, &t);
    rudp__wheel_cancel(&w, &t); /* idempotent */
    cr_assert(eq(u64, rudp__wheel_next(&w), RUDP_TIME_NEVER));
    rudp__wheel_arm(&w, &t, RUDP_SEC(3));
    rudp__wheel_arm(&w, &t, RUDP_SEC(2)); /* re-arm earlier */
    cr_assert(eq(ptr, rudp__wheel_expire(&w, RUDP_SEC(2) - 1), NULL));
    cr_assert(eq(ptr, rudp__wheel_expire(&w, RUDP_SEC(2) + TICK), &t));
}

Test(timer, far_deadline_is_clamped_not_lost)
{
    rudp_wheel w;
    rudp_timer t;
    rudp__wheel_init(&w, 0);
    rudp__timer_init(&t, 0);
    rudp__wheel_arm(&w, &t, RUDP_TIME_NEVER);
    cr_assert(rudp__timer_armed(&t));
    cr_assert(eq(ptr, rudp__wheel_expire(&w, RUDP_SEC(3600 * 24)), NULL));
    cr_assert(ne(u64, rudp__wheel_next(&w), RUDP_TIME_NEVER));
}

/* ---- random operations against a model ---- */

#define N 200

typedef struct model {
    rudp_time deadline[N];
    int armed[N];
} model;

static uint64_t rng_state;
static uint64_t rnd(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Checks the wheel's structure against its documented invariant. */
static void check_invariant(const rudp_wheel *w, const rudp_timer *ts, const model *m)
{
    uint64_t count = 0;
    for (unsigned level = 0; level < RUDP_WHEEL_LEVELS; level++) {
        for (unsigned s = 0; s < RUDP_WHEEL_SLOTS; s++) {
            unsigned idx = level * RUDP_WHEEL_SLOTS + s;
            const rudp_timer *t = w->slots[idx];
            int bit = (int)((w->pending[level] >> s) & 1);
            cr_assert(eq(int, bit, t != NULL), "pending bit of level %u slot %u", level, s);
            rudp_timer *const *pp = &w->slots[idx];
            for (; t; t = t->next) {
                cr_assert(eq(ptr, (void *)t->pprev, (void *)pp));
                pp = &t->next;
                cr_assert(eq(u16, t->slot, (uint16_t)idx));
                cr_assert(gt(u64, t->tick, w->cur));
                uint64_t diff = t->tick ^ w->cur;
                unsigned hib = 63u - (unsigned)__builtin_clzll(diff);
                cr_assert(eq(u32, hib / RUDP_WHEEL_BITS, level), "timer at wrong level");
                cr_assert(eq(u32, (unsigned)((t->tick >> (level * RUDP_WHEEL_BITS)) & 63), s));
                count++;
            }
        }
    }
    for (const rudp_timer *t = w->expired; t; t = t->next) {
        cr_assert(le(u64, t->tick, w->cur));
        count++;
    }
    cr_assert(eq(u64, count, w->count));
    uint64_t armed = 0;
    rudp_time earliest = RUDP_TIME_NEVER;
    for (int i = 0; i < N; i++) {
        cr_assert(eq(int, m->armed[i], rudp__timer_armed(&ts[i])));
        if (m->armed[i]) {
            armed++;
            if (m->deadline[i] < earliest)
                earliest = m->deadline[i];
        }
    }
    cr_assert(eq(u64, armed, w->count));
    /* next() is never later than the earliest deadline (rounded to ticks) */
    if (armed) {
        rudp_time next = rudp__wheel_next(w);
        rudp_time due = ((earliest + TICK - 1) >> RUDP_TIMER_TICK_SHIFT) << RUDP_TIMER_TICK_SHIFT;
        cr_assert(le(u64, next, due < (w->cur << RUDP_TIMER_TICK_SHIFT) ? (w->cur << RUDP_TIMER_TICK_SHIFT) : due));
    } else {
        cr_assert(eq(u64, rudp__wheel_next(w), RUDP_TIME_NEVER));
    }
}

static rudp_time random_delay(void)
{
    switch (rnd() % 6) {
    case 0: return 0;
    case 1: return rnd() % (4 * TICK);
    case 2: return rnd() % RUDP_MS(10);
    case 3: return rnd() % RUDP_SEC(1);
    case 4: return rnd() % RUDP_SEC(120);
    default: return rnd() % RUDP_SEC(100000);
    }
}

static void run_random(uint64_t seed, int steps, int sleep_to_next)
{
    static rudp_timer ts[N];
    model m;
    memset(&m, 0, sizeof m);
    rng_state = seed;
    rudp_wheel w;
    rudp_time now = rnd() % RUDP_SEC(1000);
    rudp__wheel_init(&w, now);
    for (int i = 0; i < N; i++)
        rudp__timer_init(&ts[i], (uint8_t)i);

    for (int step = 0; step < steps; step++) {
        int i = (int)(rnd() % N);
        switch (rnd() % 4) {
        case 0:
        case 1:
            m.deadline[i] = now + random_delay();
            m.armed[i] = 1;
            rudp__wheel_arm(&w, &ts[i], m.deadline[i]);
            break;
        case 2:
            m.armed[i] = 0;
            rudp__wheel_cancel(&w, &ts[i]);
            break;
        default: {
            rudp_time next = rudp__wheel_next(&w);
            if (sleep_to_next && next != RUDP_TIME_NEVER && next > now)
                now = next; /* what an event loop does */
            else
                now += random_delay();
            rudp_timer *t;
            while ((t = rudp__wheel_expire(&w, now)) != NULL) {
                int k = t->kind;
                cr_assert(eq(ptr, t, &ts[k]));
                cr_assert(m.armed[k], "fired a timer that was not armed");
                cr_assert(le(u64, m.deadline[k], now), "fired before its deadline");
                m.armed[k] = 0;
            }
            /* everything due by a whole tick has fired */
            for (int k = 0; k < N; k++) {
                if (m.armed[k])
                    cr_assert(gt(u64, m.deadline[k] + TICK, now & ~(TICK - 1)),
                              "timer %d with deadline %llu not fired at %llu", k,
                              (unsigned long long)m.deadline[k], (unsigned long long)now);
            }
            break;
        }
        }
        check_invariant(&w, ts, &m);
    }
}

Test(timer, random_operations_match_model, .timeout = 60)
{
    for (uint64_t seed = 1; seed <= 40; seed++)
        run_random(seed, 3000, 0);
}

Test(timer, event_loop_sleeping_to_next_deadline_fires_everything_on_time, .timeout = 60)
{
    for (uint64_t seed = 100; seed <= 140; seed++)
        run_random(seed, 3000, 1);
}
