/*
 * timer.h: a hierarchical timer wheel with intrusive nodes.
 *
 * A timer lives inside its owner (arming never allocates). Arm and cancel are
 * O(1). Time is in nanoseconds, kept by the wheel in ticks of
 * RUDP_TIMER_TICK_NS; a timer fires at the first rudp__wheel_expire() whose
 * `now` is at or past its deadline, never before, and at most one tick after
 * it if the caller sleeps until rudp__wheel_next().
 *
 * Layout: RUDP_WHEEL_LEVELS levels of 64 slots. A timer whose deadline tick
 * first differs from the wheel's current tick at 6-bit digit L sits in level
 * L, slot = that digit. When the wheel's time reaches the start of a slot,
 * the slot's timers are re-placed: into a lower level, or onto the expired
 * list. This is the scheme of wahern/timeout and of Linux's timer wheel.
 */
#ifndef RUDP_TIMER_H
#define RUDP_TIMER_H

#include <stdint.h>

#include "rudp.h"

#define RUDP_TIMER_TICK_SHIFT 16 /* 65.5 us: fine enough for pacing */
#define RUDP_TIMER_TICK_NS (1ull << RUDP_TIMER_TICK_SHIFT)
#define RUDP_WHEEL_BITS 6
#define RUDP_WHEEL_SLOTS (1u << RUDP_WHEEL_BITS)
#define RUDP_WHEEL_LEVELS 8 /* 8 * 6 + 16 = 64 bits of nanoseconds */

typedef struct rudp_timer {
    struct rudp_timer *next;
    struct rudp_timer **pprev; /* NULL when not armed */
    uint64_t tick;             /* deadline in ticks, rounded up */
    uint16_t slot;             /* level * 64 + slot, or RUDP_WHEEL_EXPIRED */
    uint8_t kind;              /* free for the owner's use */
} rudp_timer;

typedef struct rudp_wheel {
    uint64_t cur; /* current time, in ticks */
    uint64_t pending[RUDP_WHEEL_LEVELS];
    rudp_timer *slots[RUDP_WHEEL_LEVELS * RUDP_WHEEL_SLOTS];
    rudp_timer *expired;
    uint64_t count; /* armed timers */
} rudp_wheel;

#define RUDP_WHEEL_EXPIRED 0xffffu

/* Starts an empty wheel at time now. */
void rudp__wheel_init(rudp_wheel *w, rudp_time now);

/* Makes t a valid unarmed timer; kind is stored for the owner. */
void rudp__timer_init(rudp_timer *t, uint8_t kind);

static inline int rudp__timer_armed(const rudp_timer *t) { return t->pprev != 0; }

/* Whether t is unarmed, or armed to fire later than `deadline` would (by
 * more than the tick of rounding): what "arm unless sooner" asks. */
static inline int rudp__timer_later_than(const rudp_timer *t, rudp_time deadline)
{
    return !rudp__timer_armed(t) || t->tick > (deadline >> RUDP_TIMER_TICK_SHIFT) + 1;
}

/* Arms t to fire at `deadline` (re-arming if armed). A deadline at or before
 * the wheel's time fires at the next rudp__wheel_expire(). */
void rudp__wheel_arm(rudp_wheel *w, rudp_timer *t, rudp_time deadline);

/* Disarms t; a no-op if it is not armed. */
void rudp__wheel_cancel(rudp_wheel *w, rudp_timer *t);

/*
 * Earliest time at which rudp__wheel_expire() may return a timer:
 * RUDP_TIME_NEVER if none is armed. May be earlier than the earliest
 * deadline (a higher level's slot starts before its timers are due; calling
 * expire then just moves them down), never later.
 */
rudp_time rudp__wheel_next(const rudp_wheel *w);

/*
 * Advances the wheel to `now` and returns one disarmed timer whose deadline
 * is <= now, or NULL when there are none. Call until NULL. The caller may
 * arm or cancel any timer between calls. Time never moves backwards: a `now`
 * earlier than the wheel's time is treated as the wheel's time.
 */
rudp_timer *rudp__wheel_expire(rudp_wheel *w, rudp_time now);

#endif
