/* log.c: one line per call with write(2); never stdio, which the
 * application owns. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

#include "poison.h"

void shim_log(int level, const char *fmt, ...)
{
    static const char *const names[] = {"stats", "error", "warn", "info", "debug"};
    char buf[512];
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int n = snprintf(buf, sizeof buf, "rudp[%d] %ld.%06ld %s: ", (int)getpid(), (long)ts.tv_sec,
                     ts.tv_nsec / 1000, names[level >= 0 && level <= 4 ? level : 0]);
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
    ssize_t w = write(shim_cfg.log_fd >= 0 ? shim_cfg.log_fd : 2, buf, len);
    (void)w;
}
