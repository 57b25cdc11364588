/*
 * strike.c: the strike register (token.h): which address tokens were used.
 *
 * Google's QUIC crypto kept one for its 0-RTT client hellos (a bounded set
 * of nonces plus a horizon below which everything is refused); so does
 * this, for token IDs. A table with open addressing, at most half full;
 * it is rebuilt (expired and forgotten pairs left out) when it fills,
 * which costs O(max) once per max/2 records or more.
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "token.h"

void rudp__strike_init(rudp_strike *s, const rudp_mem *mem, uint32_t max)
{
    memset(s, 0, sizeof *s);
    s->mem = rudp__mem_or_libc(mem);
    s->max = max ? max : 1;
}

void rudp__strike_free(rudp_strike *s)
{
    rudp__free(s->mem, s->ids);
    rudp__free(s->mem, s->issued);
    s->ids = NULL;
    s->issued = NULL;
    s->n = 0;
}

static uint32_t slot_of(const rudp_strike *s, uint64_t id)
{
    /* IDs are random (a PRF's output): their low bits spread evenly */
    return (uint32_t)(id ^ (id >> 32)) & (s->slots - 1);
}

static void put(rudp_strike *s, uint64_t id, uint32_t issued)
{
    uint32_t i = slot_of(s, id);
    while (s->ids[i])
        i = (i + 1) & (s->slots - 1);
    s->ids[i] = id;
    s->issued[i] = issued;
    s->n++;
}

static int alloc_table(rudp_strike *s)
{
    uint32_t slots = 2;
    while (slots < 2 * s->max)
        slots *= 2;
    s->ids = rudp__calloc(s->mem, slots, sizeof *s->ids);
    s->issued = rudp__calloc(s->mem, slots, sizeof *s->issued);
    if (!s->ids || !s->issued) {
        rudp__strike_free(s);
        return -1;
    }
    s->slots = slots;
    return 0;
}

/* Keeps the pairs still within their lifetime and above the horizon. */
static void rebuild(rudp_strike *s, uint32_t now)
{
    uint32_t old = s->slots;
    uint64_t *ids = s->ids;
    uint32_t *issued = s->issued;
    s->ids = rudp__calloc(s->mem, old, sizeof *s->ids);
    s->issued = rudp__calloc(s->mem, old, sizeof *s->issued);
    if (!s->ids || !s->issued) {
        /* no memory to sort them out: forget everything, refuse all
         * tokens issued up to now */
        rudp__free(s->mem, s->ids);
        rudp__free(s->mem, s->issued);
        s->ids = ids;
        s->issued = issued;
        memset(ids, 0, old * sizeof *ids);
        s->n = 0;
        s->horizon = now;
        s->has_horizon = 1;
        return;
    }
    s->n = 0;
    for (uint32_t i = 0; i < old; i++) {
        if (!ids[i] || now - issued[i] > RUDP_ATOKEN_LIFETIME ||
            (s->has_horizon && issued[i] <= s->horizon))
            continue;
        put(s, ids[i], issued[i]);
    }
    rudp__free(s->mem, ids);
    rudp__free(s->mem, issued);
}

/* Full: forget the oldest issue time's pairs (a second's worth or more),
 * refusing every token issued up to it from now on. */
static void raise_horizon(rudp_strike *s, uint32_t now)
{
    rebuild(s, now);
    while (s->n >= s->max) {
        uint32_t oldest = UINT32_MAX;
        for (uint32_t i = 0; i < s->slots; i++)
            if (s->ids[i] && s->issued[i] < oldest)
                oldest = s->issued[i];
        s->horizon = oldest;
        s->has_horizon = 1;
        rebuild(s, now);
    }
}

int rudp__strike_record(rudp_strike *s, uint64_t id, uint32_t issued, uint32_t now)
{
    if (id == 0)
        return RUDP_ATOKEN_REPLAY;
    if (s->has_horizon && issued <= s->horizon)
        return RUDP_ATOKEN_FULL;
    if (!s->ids && alloc_table(s) < 0)
        return RUDP_ATOKEN_FULL;
    for (uint32_t i = slot_of(s, id); s->ids[i]; i = (i + 1) & (s->slots - 1))
        if (s->ids[i] == id)
            return RUDP_ATOKEN_REPLAY;
    if (s->n >= s->max) {
        raise_horizon(s, now);
        if (s->has_horizon && issued <= s->horizon)
            return RUDP_ATOKEN_FULL;
    }
    put(s, id, issued);
    return RUDP_ATOKEN_OK;
}
