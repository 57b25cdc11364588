/*
 * clock.c: the shim's clock, shim_now(), alone in its object: the one
 * place the shim reads the time its engines and timers run on. The shim's
 * unit tests (tests/shim/lib_clock.c) link a clock of their own in its
 * place, and drive the engine's loop on simulated time with no cost to
 * the library: a link-time seam, not a pointer read on every call.
 */
#include <time.h>

#include "base.h"

#include "poison.h"

rudp_time shim_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (rudp_time)ts.tv_sec * 1000000000ull + (rudp_time)ts.tv_nsec;
}
