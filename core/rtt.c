/* rtt.c: RFC 9002 §5 RTT estimator. */
#include "rtt.h"

void rudp__rtt_init(rudp_rtt *r, rudp_time initial)
{
    r->latest = 0;
    r->smoothed = initial;
    r->var = initial / 2;
    r->min = 0;
    r->has_sample = 0;
    r->samples = 0;
}

void rudp__rtt_update(rudp_rtt *r, rudp_time latest, rudp_time ack_delay,
                     rudp_time max_ack_delay)
{
    r->latest = latest;
    if (r->samples < UINT32_MAX)
        r->samples++;
    if (!r->has_sample) {
        /* RFC 9002 §5.3: the first sample sets everything. */
        r->min = latest;
        r->smoothed = latest;
        r->var = latest / 2;
        r->has_sample = 1;
        return;
    }
    if (latest < r->min)
        r->min = latest;
    if (ack_delay > max_ack_delay)
        ack_delay = max_ack_delay;
    rudp_time adjusted = latest;
    if (latest >= r->min + ack_delay)
        adjusted = latest - ack_delay;
    rudp_time diff = r->smoothed > adjusted ? r->smoothed - adjusted : adjusted - r->smoothed;
    r->var = (3 * r->var + diff) / 4;
    r->smoothed = (7 * r->smoothed + adjusted) / 8;
}

rudp_time rudp__rtt_pto(const rudp_rtt *r, rudp_time max_ack_delay)
{
    rudp_time v = 4 * r->var;
    if (v < RUDP_GRANULARITY)
        v = RUDP_GRANULARITY;
    return r->smoothed + v + max_ack_delay;
}

rudp_time rudp__rtt_loss_delay(const rudp_rtt *r)
{
    rudp_time m = r->smoothed > r->latest ? r->smoothed : r->latest;
    m = m * 9 / 8;
    return m < RUDP_GRANULARITY ? RUDP_GRANULARITY : m;
}
