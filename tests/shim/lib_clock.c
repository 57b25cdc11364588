/*
 * lib_clock.c: the shim's clock in the unit tests (shimtest.h): linked
 * in place of shim/base/clock.c. It reads the real monotonic clock until a
 * test sets a time; from then on it says that time, moved only by the
 * test, so the engine's timers fire when the test says and at no other
 * moment, whatever the machine's load.
 */
#include <stdatomic.h>
#include <time.h>

#include "shimtest.h"

static _Atomic rudp_time simulated; /* 0: the real clock */

rudp_time shim_now(void)
{
    rudp_time t = atomic_load(&simulated);
    if (t)
        return t;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (rudp_time)ts.tv_sec * 1000000000ull + (rudp_time)ts.tv_nsec;
}

void shimtest_clock_set(rudp_time t)
{
    atomic_store(&simulated, t);
}

void shimtest_clock_advance(rudp_time d)
{
    atomic_fetch_add(&simulated, d);
}
