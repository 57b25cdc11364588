/* log.c: one line per call with write(2); never stdio, which the
 * application owns. Each line starts with the wall-clock time in ISO 8601
 * (UTC, milliseconds: comparable across hosts and with other programs'
 * logs; gmtime_r needs no time zone file), "rudp[PID]" and the level. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

#include "poison.h"

void shim_log(int level, const char *fmt, ...)
{
    static const char *const names[] = {"stats", "error", "warn", "info", "debug"};
    if (shim_cfg.log_fd < 0)
        return; /* a keeper with nowhere to write (keeper.c) */
    char buf[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (!gmtime_r(&ts.tv_sec, &tm))
        return;
    int n = snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ rudp[%d] %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, (int)getpid(),
                     names[level >= 0 && level <= 4 ? level : 0]);
    if (n < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof buf - 2)
        len = sizeof buf - 2;
    buf[len++] = '\n';
    ssize_t w = write(shim_cfg.log_fd, buf, len);
    (void)w;
}
