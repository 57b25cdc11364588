/*
 * timer.c: hierarchical timer wheel. See timer.h for the scheme.
 *
 * Invariant: a timer at level L has a deadline tick whose digits above L
 * equal those of w->cur, and whose digit L is greater than cur's digit L.
 * Advancing time from `old` to `new` therefore makes due, at each level L,
 * the slots in (old digit, new digit] when the digits above L did not change,
 * and every slot when they did. Due timers are re-placed relative to `new`.
 */
#include "timer.h"

#include <string.h>

#define MASK (RUDP_WHEEL_SLOTS - 1u)
#define RUDP_WHEEL_MAX_TICK ((1ull << (RUDP_WHEEL_LEVELS * RUDP_WHEEL_BITS)) - 1)

static uint64_t ns_to_tick_ceil(rudp_time t)
{
    uint64_t tick = t >> RUDP_TIMER_TICK_SHIFT;
    if (t & (RUDP_TIMER_TICK_NS - 1))
        tick++;
    return tick;
}

static unsigned digit(uint64_t tick, unsigned level)
{
    return (unsigned)((tick >> (level * RUDP_WHEEL_BITS)) & MASK);
}

static uint64_t prefix_above(uint64_t tick, unsigned level)
{
    unsigned shift = (level + 1) * RUDP_WHEEL_BITS;
    return shift >= 64 ? 0 : tick >> shift;
}

static void list_push(rudp_timer **head, rudp_timer *t)
{
    t->next = *head;
    if (t->next)
        t->next->pprev = &t->next;
    *head = t;
    t->pprev = head;
}

static void list_unlink(rudp_timer *t)
{
    *t->pprev = t->next;
    if (t->next)
        t->next->pprev = t->pprev;
    t->next = NULL;
    t->pprev = NULL;
}

void rudp__wheel_init(rudp_wheel *w, rudp_time now)
{
    memset(w, 0, sizeof *w);
    w->cur = now >> RUDP_TIMER_TICK_SHIFT;
}

void rudp__timer_init(rudp_timer *t, uint8_t kind)
{
    memset(t, 0, sizeof *t);
    t->kind = kind;
}

/* Places an unlinked timer according to its tick and w->cur. */
static void place(rudp_wheel *w, rudp_timer *t)
{
    if (t->tick <= w->cur) {
        t->slot = RUDP_WHEEL_EXPIRED;
        list_push(&w->expired, t);
        return;
    }
    uint64_t diff = t->tick ^ w->cur;
    unsigned hibit = 63u - (unsigned)__builtin_clzll(diff);
    unsigned level = hibit / RUDP_WHEEL_BITS;
    unsigned s = digit(t->tick, level);
    t->slot = (uint16_t)(level * RUDP_WHEEL_SLOTS + s);
    list_push(&w->slots[t->slot], t);
    w->pending[level] |= 1ull << s;
}

static void unlink_timer(rudp_wheel *w, rudp_timer *t)
{
    uint16_t slot = t->slot;
    list_unlink(t);
    if (slot != RUDP_WHEEL_EXPIRED && w->slots[slot] == NULL)
        w->pending[slot / RUDP_WHEEL_SLOTS] &= ~(1ull << (slot % RUDP_WHEEL_SLOTS));
    w->count--;
}

void rudp__wheel_arm(rudp_wheel *w, rudp_timer *t, rudp_time deadline)
{
    if (rudp__timer_armed(t))
        unlink_timer(w, t);
    t->tick = ns_to_tick_ceil(deadline);
    if (t->tick > RUDP_WHEEL_MAX_TICK)
        t->tick = RUDP_WHEEL_MAX_TICK; /* ~200 days: "never" in practice */
    place(w, t);
    w->count++;
}

void rudp__wheel_cancel(rudp_wheel *w, rudp_timer *t)
{
    if (rudp__timer_armed(t))
        unlink_timer(w, t);
}

rudp_time rudp__wheel_next(const rudp_wheel *w)
{
    if (w->count == 0)
        return RUDP_TIME_NEVER;
    if (w->expired)
        return w->cur << RUDP_TIMER_TICK_SHIFT;
    /* The lowest non-empty level holds the earliest slot start: every slot of
     * level L starts before any slot of level L+1 (invariant above). */
    for (unsigned level = 0; level < RUDP_WHEEL_LEVELS; level++) {
        uint64_t p = w->pending[level];
        if (!p)
            continue;
        /* Slots at or below cur's digit are empty by the invariant, so the
         * lowest pending slot is the next to become due. */
        unsigned s = (unsigned)__builtin_ctzll(p);
        uint64_t start = (prefix_above(w->cur, level) << ((level + 1) * RUDP_WHEEL_BITS)) |
                         ((uint64_t)s << (level * RUDP_WHEEL_BITS));
        return start << RUDP_TIMER_TICK_SHIFT;
    }
    return RUDP_TIME_NEVER;
}

/* Moves every timer of a slot onto the expired list or a lower level. */
static void cascade_slot(rudp_wheel *w, unsigned level, unsigned s)
{
    unsigned idx = level * RUDP_WHEEL_SLOTS + s;
    rudp_timer *t = w->slots[idx];
    w->slots[idx] = NULL;
    w->pending[level] &= ~(1ull << s);
    while (t) {
        rudp_timer *next = t->next;
        t->next = NULL;
        t->pprev = NULL;
        place(w, t);
        t = next;
    }
}

static void advance(rudp_wheel *w, uint64_t now_tick)
{
    if (now_tick <= w->cur)
        return;
    uint64_t old = w->cur;
    w->cur = now_tick;
    for (unsigned level = 0; level < RUDP_WHEEL_LEVELS; level++) {
        uint64_t p = w->pending[level];
        int all = prefix_above(old, level) != prefix_above(now_tick, level);
        unsigned od = digit(old, level), nd = digit(now_tick, level);
        if (p) {
            uint64_t due;
            if (all) {
                due = p;
            } else {
                /* slots in (od, nd] */
                uint64_t upto = nd == 63 ? ~0ull : (2ull << nd) - 1;
                uint64_t from = od == 63 ? ~0ull : (2ull << od) - 1;
                due = p & upto & ~from;
            }
            while (due) {
                unsigned s = (unsigned)__builtin_ctzll(due);
                due &= due - 1;
                cascade_slot(w, level, s);
            }
        }
        if (!all)
            break; /* higher digits unchanged: nothing above is due */
    }
}

rudp_timer *rudp__wheel_expire(rudp_wheel *w, rudp_time now)
{
    advance(w, now >> RUDP_TIMER_TICK_SHIFT);
    rudp_timer *t = w->expired;
    if (!t)
        return NULL;
    list_unlink(t);
    w->count--;
    return t;
}
