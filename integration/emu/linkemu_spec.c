/* linkemu: the impairment SPEC (see usage()) and number parsing. */

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linkemu.h"

void impair_default(struct impair *im)
{
    memset(im, 0, sizeof(*im));
    im->ge_h = 100.0;
    im->queue_pkts = 1000;
}

int parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return -EINVAL;
    *out = v;
    return 0;
}

/* "500000", "500k", "1.5m" bytes or "300p" packets. */
static int parse_queue(const char *s, struct impair *im)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0)
        return -EINVAL;
    double mult = 1;
    int pkts = 0;
    if (*end == 'k' || *end == 'K')
        mult = 1e3, end++;
    else if (*end == 'm' || *end == 'M')
        mult = 1e6, end++;
    else if (*end == 'p')
        pkts = 1, end++;
    if (*end)
        return -EINVAL;
    if (pkts) {
        im->queue_pkts = (uint64_t)v;
        im->queue_bytes = 0;
    } else {
        im->queue_bytes = (uint64_t)(v * mult);
        im->queue_pkts = 0;
    }
    return 0;
}

/* SPEC is "key=value,key=value"; see usage(). Applies on top of *im. */
int parse_spec(const char *spec, struct impair *im)
{
    char *copy = strdup(spec), *save = NULL;
    int rc = 0;
    if (!copy)
        return -ENOMEM;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *val = strchr(tok, '=');
        if (!val) {
            rc = -EINVAL;
            break;
        }
        *val++ = 0;
        double v = 0;
        if (!strcmp(tok, "delay"))
            rc = parse_double(val, 0, 1e6, &im->delay_ms);
        else if (!strcmp(tok, "jitter"))
            rc = parse_double(val, 0, 1e6, &im->jitter_ms);
        else if (!strcmp(tok, "dist")) {
            if (!strcmp(val, "uniform"))
                im->jitter_normal = 0;
            else if (!strcmp(val, "normal"))
                im->jitter_normal = 1;
            else
                rc = -EINVAL;
        } else if (!strcmp(tok, "loss"))
            rc = parse_double(val, 0, 100, &im->loss_pct);
        else if (!strcmp(tok, "ge_p"))
            rc = parse_double(val, 0, 100, &im->ge_p), im->ge_on = 1;
        else if (!strcmp(tok, "ge_r"))
            rc = parse_double(val, 0, 100, &im->ge_r), im->ge_on = 1;
        else if (!strcmp(tok, "ge_h"))
            rc = parse_double(val, 0, 100, &im->ge_h);
        else if (!strcmp(tok, "ge_k"))
            rc = parse_double(val, 0, 100, &im->ge_k);
        else if (!strcmp(tok, "reorder"))
            rc = parse_double(val, 0, 100, &im->reorder_pct);
        else if (!strcmp(tok, "dup"))
            rc = parse_double(val, 0, 100, &im->dup_pct);
        else if (!strcmp(tok, "rate"))
            rc = parse_double(val, 0, 1e6, &im->rate_mbit);
        else if (!strcmp(tok, "queue"))
            rc = parse_queue(val, im);
        else if (!strcmp(tok, "trace"))
            rc = (im->trace = strdup(val)) ? 0 : -ENOMEM;
        else if (!strcmp(tok, "overhead")) {
            rc = parse_double(val, 0, 65535, &v);
            im->overhead = (uint32_t)v;
        } else
            rc = -EINVAL;
        if (rc) {
            fprintf(stderr, "linkemu: bad spec item '%s=%s'\n", tok, val);
            break;
        }
    }
    free(copy);
    return rc;
}

void impair_describe(const struct impair *im, char *buf, size_t len)
{
    char q[32], r[300];
    if (im->trace)
        snprintf(r, sizeof(r), "trace:%s", im->trace);
    else
        snprintf(r, sizeof(r), "%gMbit/s", im->rate_mbit);
    if (im->queue_pkts)
        snprintf(q, sizeof(q), "%" PRIu64 "p", im->queue_pkts);
    else
        snprintf(q, sizeof(q), "%" PRIu64 "B", im->queue_bytes);
    snprintf(buf, len,
             "delay=%gms jitter=%gms(%s) loss=%g%% ge=%s(p=%g r=%g h=%g k=%g) "
             "reorder=%g%% dup=%g%% rate=%s queue=%s overhead=%" PRIu32 "B",
             im->delay_ms, im->jitter_ms, im->jitter_normal ? "normal" : "uniform",
             im->loss_pct, im->ge_on ? "on" : "off", im->ge_p, im->ge_r, im->ge_h, im->ge_k,
             im->reorder_pct, im->dup_pct, r, q, im->overhead);
}

int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}
