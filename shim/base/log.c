/* log.c: one line per call with write(2); never stdio, which the
 * application owns. Each line starts with the wall-clock time in ISO 8601
 * (UTC, milliseconds: comparable across hosts and with other programs'
 * logs), "rudp[PID]" ("rudp-keeper[PID]" in a keeper) and the level. The
 * date is computed here, not by gmtime_r: glibc's takes the time-zone lock
 * (and reads TZ), which a child forked while another thread held it would
 * wait on at its first line. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base.h"

#include "poison.h"

/* Days since 1970-01-01 to a civil date (H. Hinnant's days_from_civil,
 * inverted), valid for any date a clock can give. */
static void civil(long days, int *y, unsigned *m, unsigned *d)
{
    days += 719468;
    long era = (days >= 0 ? days : days - 146096) / 146097;
    unsigned doe = (unsigned)(days - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yoe + (unsigned long)era * 400 + (*m <= 2));
}

/* Who speaks: the program's shim, or a keeper (set once, single-threaded). */
static const char *speaker = "rudp";

void shim_log_keeper(void)
{
    speaker = "rudp-keeper";
}

/* A line's start: "2026-11-24T18:21:27.851Z rudp[5346] stats: ". */
static int line_start(char *buf, size_t len, int level)
{
    static const char *const names[] = {"stats", "error", "warn", "info", "debug"};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long days = (long)(ts.tv_sec / 86400), secs = (long)(ts.tv_sec % 86400);
    if (secs < 0)
        secs += 86400, days--;
    int y;
    unsigned mo, d;
    civil(days, &y, &mo, &d);
    return snprintf(buf, len, "%04d-%02u-%02uT%02ld:%02ld:%02ld.%03ldZ %s[%d] %s: ", y, mo, d,
                    secs / 3600, secs / 60 % 60, secs % 60, ts.tv_nsec / 1000000, speaker,
                    (int)getpid(), names[level >= 0 && level <= 4 ? level : 0]);
}

static int (*conn_check)(int fd);

void shim_log_set_conn_check(int (*is_conn)(int fd))
{
    conn_check = is_conn;
}

/* Whether the log may be written to fd now: not to stderr when that is a
 * connection (a program may dup2() one there at any time: vsftpd's
 * session, inetd's services), whose peer would take our lines for the
 * program's own bytes (its FTP replies came one behind). A file, a pipe,
 * a terminal or journald's socket take it. */
static int log_fd_ok(int fd)
{
    if (fd < 0)
        return 0; /* a keeper with nowhere to write (keeper.c) */
    if (fd != 2)
        return 1; /* RUDP_LOG_FILE's */
    int dom = 0;
    socklen_t l = sizeof dom;
    if (real_getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) < 0)
        return 1; /* not a socket */
    if (dom == AF_INET || dom == AF_INET6)
        return 0;
    return dom != AF_UNIX || !conn_check || !conn_check(fd);
}

void shim_log(int level, const char *fmt, ...)
{
    if (!log_fd_ok(shim_cfg.log_fd))
        return;
    char buf[1024];
    int n = line_start(buf, sizeof buf, level);
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
    ssize_t w = real_write(shim_cfg.log_fd, buf, len);
    (void)w;
}

void shim_log_block(int level, const char *head, const char *body, size_t len)
{
    if (!log_fd_ok(shim_cfg.log_fd))
        return;
    char first[512];
    int n = line_start(first, sizeof first, level);
    if (n < 0)
        return;
    int m = snprintf(first + n, sizeof first - (size_t)n, "%s\n", head);
    if (m < 0)
        return;
    size_t fl = (size_t)n + (size_t)m;
    if (fl >= sizeof first) { /* cut: still one line */
        fl = sizeof first - 1;
        first[fl - 1] = '\n';
    }
    struct iovec iov[2] = {{first, fl}, {(void *)body, len}};
    ssize_t w = real_writev(shim_cfg.log_fd, iov, 2);
    (void)w; /* a log that cannot be written is not retried, as shim_log's */
}

const char *shim_strerror(int err)
{
    const char *s = strerrordesc_np(err);
    return s ? s : "Unknown error";
}
