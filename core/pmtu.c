/*
 * pmtu.c: path MTU discovery (pmtu.h). The probes themselves are built
 * in conn_output.c; their acknowledgments and losses come here from
 * conn_input.c, and never reach the congestion controller as losses
 * (recovery.c).
 */
#include <string.h>

#include "conn.h"
#include "trace.h"

static void set_size(rudp_conn *c, uint32_t size)
{
    uint32_t old = c->mss;
    c->mss = size;
    c->cc.mss = size;
    rudp__trace_mtu(c, old, 0);
}

/* The size to probe next. */
static uint32_t next_size(const rudp_pmtu *p)
{
    if (p->recheck)
        return p->before;
    if (p->ptb)
        return p->ptb;
    if (p->hi > p->ceiling)
        return p->ceiling;
    return p->lo + (p->hi - p->lo) / 2;
}

/* After a probe's answer (or a report): done, or the next probe now. */
static void settle(rudp_conn *c, rudp_time now)
{
    rudp_pmtu *p = &c->pmtu;
    p->tries = 0;
    p->probe = 0;
    p->ptb = 0;
    if (!p->recheck && (p->lo >= p->ceiling || p->hi - p->lo <= RUDP_PMTU_STEP)) {
        if (p->state != RUDP_PMTU_DONE && c->trace)
            rudp__trace_do_mtu(c, c->mss, c->mss, 1); /* the search is over */
        p->state = RUDP_PMTU_DONE;
        p->next_at = now + RUDP_PMTU_RAISE;
    } else {
        p->state = RUDP_PMTU_SEARCH;
        p->next_at = now;
    }
}

/* `size` does not pass: the upper bound, and the current size falls to
 * the base if it was no smaller. */
static void failed(rudp_conn *c, uint32_t size, rudp_time now)
{
    rudp_pmtu *p = &c->pmtu;
    if (p->recheck && size == p->before) {
        c->ctx->stats.pmtu_black_holes++; /* the old size is gone for good */
        p->recheck = 0;
    }
    if (size < p->hi)
        p->hi = size;
    if (p->lo >= size) {
        p->lo = RUDP_PMTU_BASE;
        p->recheck = 0;
    }
    if (c->mss >= size && !p->suspect) {
        set_size(c, p->lo);
        c->ctx->stats.pmtu_lowered++;
    }
    settle(c, now);
}

void rudp__pmtu_start(rudp_conn *c, rudp_time now)
{
    rudp_pmtu *p = &c->pmtu;
    uint32_t ceiling = p->ceiling ? p->ceiling : c->mss;
    memset(p, 0, sizeof *p);
    p->ceiling = ceiling;
    if (!c->cfg.pmtud || ceiling <= RUDP_PMTU_BASE || rudp__addr_loopback(&c->pkey.addr)) {
        /* loopback: max_datagram as it is, nothing to find */
        set_size(c, ceiling);
        return; /* RUDP_PMTU_OFF */
    }
    p->lo = RUDP_PMTU_BASE;
    p->hi = ceiling + 1;
    set_size(c, RUDP_PMTU_BASE);
    settle(c, now);
}

uint32_t rudp__pmtu_probe_size(rudp_conn *c, rudp_time now)
{
    rudp_pmtu *p = &c->pmtu;
    if (p->state == RUDP_PMTU_OFF || p->probe || p->suspect || now < p->next_at)
        return 0;
    if (p->state == RUDP_PMTU_DONE) {
        if (p->lo >= p->ceiling) {
            p->next_at = now + RUDP_PMTU_RAISE;
            return 0;
        }
        p->hi = p->ceiling + 1; /* PMTU_RAISE_TIMER: the path may carry more now */
        p->state = RUDP_PMTU_SEARCH;
    }
    return next_size(p);
}

void rudp__pmtu_probe_sent(rudp_conn *c, uint64_t pn, uint32_t size)
{
    c->pmtu.probe = size;
    c->pmtu.probe_pn = pn;
    c->ctx->stats.pmtu_probes++;
    c->pmtu_probes++;
}

void rudp__pmtu_acked(rudp_conn *c, const rudp_sent *s, rudp_time now)
{
    rudp_pmtu *p = &c->pmtu;
    if (p->state == RUDP_PMTU_OFF)
        return;
    if (s->flags & RUDP_SENT_PMTU_PROBE) {
        if (!p->probe || s->pn != p->probe_pn)
            return; /* one given up on (a black hole suspected meanwhile) */
        uint32_t size = p->probe;
        p->recheck = 0;
        if (size > p->lo)
            p->lo = size;
        if (p->hi <= p->lo)
            p->hi = p->ceiling + 1;
        if (size > c->mss) {
            set_size(c, size);
            c->ctx->stats.pmtu_raised++;
        }
        settle(c, now);
        return;
    }
    if (!p->suspect)
        return;
    if (s->pn >= p->suspect_pn) {
        /* Sent at the base since the suspicion, and through: the old size
         * is probed once more (a plain outage ends here at one round
         * trip's cost; its loss is a black hole: failed()). */
        p->suspect = 0;
        p->recheck = 1;
        p->lo = RUDP_PMTU_BASE;
        p->hi = p->ceiling + 1;
        settle(c, now);
    } else if (s->size > RUDP_PMTU_BASE) {
        p->suspect = 0; /* a full-size packet got through after all */
        set_size(c, p->before);
    }
}

void rudp__pmtu_lost(rudp_conn *c, const rudp_sent *s, rudp_time now)
{
    rudp_pmtu *p = &c->pmtu;
    if (!(s->flags & RUDP_SENT_PMTU_PROBE) || !p->probe || s->pn != p->probe_pn)
        return;
    c->ctx->stats.pmtu_probes_lost++;
    c->pmtu_probes_lost++;
    uint32_t size = p->probe;
    p->probe = 0;
    if (++p->tries < RUDP_PMTU_TRIES) {
        p->next_at = now;
        return;
    }
    failed(c, size, now);
}

void rudp__pmtu_pto(rudp_conn *c)
{
    rudp_pmtu *p = &c->pmtu;
    if (p->state == RUDP_PMTU_OFF || p->suspect || c->mss <= RUDP_PMTU_BASE ||
        c->rec.pto_count < 2)
        return;
    /* Two probe timeouts in a row with full-size packets out: the path
     * may have shrunk without a word (RFC 8899 §4.3, black hole
     * detection). Everything goes at the base until one of it is
     * acknowledged (rudp__pmtu_acked). */
    p->suspect = 1;
    p->before = c->mss;
    p->suspect_pn = rudp__recovery_next_pn(&c->rec);
    p->probe = 0;
    p->recheck = 0;
    p->ptb = 0;
    set_size(c, RUDP_PMTU_BASE);
    c->ctx->stats.pmtu_fallbacks++;
    c->pmtu_fallbacks++;
}

void rudp__pmtu_too_big(rudp_conn *c, rudp_time now, uint32_t fits, int probe)
{
    rudp_pmtu *p = &c->pmtu;
    if (p->state == RUDP_PMTU_OFF)
        return;
    if (probe) {
        p->probe = 0;
        c->ctx->stats.pmtu_probes_lost++;
        c->pmtu_probes_lost++;
    }
    if (fits < c->mss && !p->suspect) {
        /* the size in use does not fit: what the report names does */
        p->recheck = 0;
        set_size(c, fits);
        c->ctx->stats.pmtu_lowered++;
        p->lo = fits;
        if (fits + 1 < p->hi)
            p->hi = fits + 1;
        settle(c, now);
        return;
    }
    failed(c, fits + 1, now);
    /* A probe (or the device) too big, and the report names a size above
     * what is known to pass: probe that size next rather than halve the
     * gap towards it (RFC 8899 §4.6.2: PROBED_SIZE = PTB_SIZE). Taken only
     * once a probe of it is answered, as any size. */
    if (p->state == RUDP_PMTU_SEARCH && !p->suspect && !p->recheck && fits > p->lo)
        p->ptb = fits;
}

void rudp__pmtu_hint(rudp_conn *c, rudp_time now)
{
    rudp_pmtu *p = &c->pmtu;
    if (p->state == RUDP_PMTU_OFF || p->suspect || p->recheck || p->probe ||
        c->mss <= RUDP_PMTU_BASE)
        return;
    /* Probe the size in use: three losses of it lower it (failed()). */
    p->recheck = 1;
    p->before = c->mss;
    p->state = RUDP_PMTU_SEARCH;
    p->next_at = now;
}
