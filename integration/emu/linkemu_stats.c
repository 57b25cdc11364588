/* linkemu: the counters by name, the stats table on stderr and the --stats file. */

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "linkemu.h"

/* ---- counters ----------------------------------------------------------- */

struct ctr_field {
    const char *key;
    size_t off;
    int is_signed; /* two's complement int64 */
};

static const struct ctr_field ctr_fields[] = {
    {"in_pkts", offsetof(struct counters, in_pkts), 0},
    {"in_bytes", offsetof(struct counters, in_bytes), 0},
    {"out_pkts", offsetof(struct counters, out_pkts), 0},
    {"out_bytes", offsetof(struct counters, out_bytes), 0},
    {"drop_loss", offsetof(struct counters, drop_loss), 0},
    {"drop_burst", offsetof(struct counters, drop_burst), 0},
    {"drop_queue", offsetof(struct counters, drop_queue), 0},
    {"drop_limit", offsetof(struct counters, drop_limit), 0},
    {"drop_down", offsetof(struct counters, drop_down), 0},
    {"tx_err", offsetof(struct counters, tx_err), 0},
    {"dup", offsetof(struct counters, dup), 0},
    {"reorder", offsetof(struct counters, reorder), 0},
    {"reorder_ahead", offsetof(struct counters, reorder_ahead), 0},
    {"queue_peak_bytes", offsetof(struct counters, queue_peak_bytes), 0},
    {"wakeups", offsetof(struct counters, wakeups), 0},
    {"delay_n", offsetof(struct counters, delay_n), 0},
    {"delay_min_ns", offsetof(struct counters, delay_min_ns), 0},
    {"delay_max_ns", offsetof(struct counters, delay_max_ns), 0},
    {"jitter_n", offsetof(struct counters, jitter_n), 0},
    {"jitter_min_ns", offsetof(struct counters, jitter_min_ns), 1},
    {"jitter_max_ns", offsetof(struct counters, jitter_max_ns), 1},
#define HIST(i) {"jitter_hist_" #i, offsetof(struct counters, jitter_hist[i]), 0}
    HIST(0), HIST(1), HIST(2), HIST(3), HIST(4), HIST(5), HIST(6), HIST(7), HIST(8), HIST(9),
#undef HIST
    {"late_max_ns", offsetof(struct counters, late_max_ns), 0},
    {"late_1ms", offsetof(struct counters, late_1ms), 0},
    {"nat_mapped", offsetof(struct counters, nat_mapped), 0},
    {"drop_nat", offsetof(struct counters, drop_nat), 0},
};
_Static_assert(JITTER_BINS == 10, "ctr_fields lists 10 jitter_hist bins");
#define NFIELDS (sizeof(ctr_fields) / sizeof(ctr_fields[0]))

static uint64_t ctr_field_get(struct dir *d, size_t i)
{
    return ctr_get((_Atomic uint64_t *)(void *)((char *)&d->c + ctr_fields[i].off));
}

/* Human table on stderr; key=value lines to FILE (written to FILE.tmp and
 * renamed, so a reader never sees half a file). */
void stats_dump(struct dir *dirs, int ndirs, uint64_t t0, const char *file, int final,
                       const struct ctl *ctl)
{
    uint64_t snap[2][NFIELDS];
    uint64_t now = now_ns(), real = realtime_ns();
    for (int k = 0; k < ndirs; k++)
        for (size_t i = 0; i < NFIELDS; i++)
            snap[k][i] = ctr_field_get(&dirs[k], i);

    fprintf(stderr, "linkemu: counters after %.3f s%s\n", (double)(now - t0) / 1e9,
            final ? " (final)" : "");
    fprintf(stderr, "  %-3s %10s %12s %10s %12s %9s %10s %10s %10s %9s %6s %8s %8s\n", "dir",
            "in_pkts", "in_bytes", "out_pkts", "out_bytes", "drop_loss", "drop_burst",
            "drop_queue", "drop_limit", "drop_down", "tx_err", "dup", "reorder");
    for (int k = 0; k < ndirs; k++) {
        fprintf(stderr,
                "  %-3s %10" PRIu64 " %12" PRIu64 " %10" PRIu64 " %12" PRIu64 " %9" PRIu64
                " %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %9" PRIu64 " %6" PRIu64 " %8" PRIu64
                " %8" PRIu64 "\n",
                dirs[k].name, snap[k][0], snap[k][1], snap[k][2], snap[k][3], snap[k][4],
                snap[k][5], snap[k][6], snap[k][7], snap[k][8], snap[k][9], snap[k][10],
                snap[k][11]);
    }
    if (!file)
        return;
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", file);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "linkemu: %s: %s\n", tmp, strerror(errno));
        return;
    }
    fprintf(f, "time_ns=%" PRIu64 "\nrealtime_ns=%" PRIu64 "\nelapsed_ns=%" PRIu64 "\nfinal=%d\n",
            now, real, now - t0, final);
    fprintf(f, "ctl_applied=%" PRIu64 "\nctl_rejected=%" PRIu64 "\n", ctl->applied, ctl->rejected);
    for (int k = 0; k < ndirs; k++)
        fprintf(f, "%s_down_until_ns=%" PRIu64 "\n", dirs[k].name,
                atomic_load_explicit(&dirs[k].down_until, memory_order_relaxed));
    for (int k = 0; k < ndirs; k++)
        for (size_t i = 0; i < NFIELDS; i++)
            if (ctr_fields[i].is_signed)
                fprintf(f, "%s_%s=%" PRId64 "\n", dirs[k].name, ctr_fields[i].key,
                        (int64_t)snap[k][i]);
            else
                fprintf(f, "%s_%s=%" PRIu64 "\n", dirs[k].name, ctr_fields[i].key, snap[k][i]);
    for (int k = 0; k < ndirs; k++)
        if (dirs[k].tr_n)
            fprintf(f, "%s_trace_offered_bytes=%" PRIu64 "\n", dirs[k].name,
                    trace_offered(&dirs[k], now));
    if (fclose(f) != 0 || rename(tmp, file) != 0)
        fprintf(stderr, "linkemu: writing %s: %s\n", file, strerror(errno));
}
