/*
 * config.c: every setting comes from the environment, is read once at
 * start-up and validated. A bad value is reported by name with the accepted
 * form when the program asks for a TCP socket, which fails with EACCES:
 * silently running on defaults would hide the mistake (and could turn a
 * keyed program's traffic into plaintext), exiting at start-up would break
 * every program of a tree, ls as much as the server (docs/configuration.md,
 * "A bad setting").
 */
#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base.h"

#include "poison.h"

shim_config shim_cfg = {.log_level = RUDP_LOG_WARN, .log_fd = 2, .qlog_dirfd = -1};

/* The line of a failed load, "librudp_shim: " first, without its newline:
 * written by shim_config_tell() and shim_config_refuse(). Set once, before
 * any thread of ours runs, read-only afterwards. */
static char failure[512];
static size_t failure_len;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    static const char head[] = "librudp_shim: ";
    memcpy(failure, head, sizeof head - 1);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(failure + sizeof head - 1, sizeof failure - sizeof head, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    failure_len = sizeof head - 1 + (size_t)n;
    if (failure_len > sizeof failure - 2) /* cut short: what vsnprintf wrote */
        failure_len = sizeof failure - 2;
}

static int bad(const char *var, const char *val, const char *form)
{
    say("%s=\"%s\" is not valid; expected %s", var, val, form);
    return -1;
}

/* write(2), never stdio; a line cut short is still a line */
static void put(int fd, const char *tail)
{
    char buf[sizeof failure + 128];
    size_t len = failure_len, t = strlen(tail);
    memcpy(buf, failure, len);
    if (t > sizeof buf - 1 - len)
        t = sizeof buf - 1 - len;
    memcpy(buf + len, tail, t);
    len += t;
    buf[len++] = '\n';
    ssize_t w = real_write(fd, buf, len);
    (void)w;
}

void shim_config_tell(int fd)
{
    put(fd, "");
}

/* EACCES, not EAFNOSUPPORT or EPROTONOSUPPORT: programs take those as "no
 * IPv6 here" and silently go on without (a server's [::] listener), while
 * EACCES is what socket(2) says when a policy (an LSM, seccomp) refuses
 * the socket, and every program reports it as the error it is. */
int shim_config_refuse(void)
{
    static _Atomic int told;
    if (!atomic_exchange(&told, 1)) {
        static const char tail[] =
            "; until it is fixed (or unset), this process's TCP sockets fail with EACCES";
        put(2, tail);
        if (shim_cfg.log_fd != 2 && shim_cfg.log_fd >= 0)
            put(shim_cfg.log_fd, tail);
    }
    return -EACCES;
}

/*
 * Every RUDP_* variable something in this project reads, in one table: the
 * shim's settings (env() below asserts that a name it reads is here) and
 * the variables of rudp-run and of the tests, which reach programs under
 * the shim through the environment and are not mistakes. A new variable is
 * added here and nowhere else for the check of unknown names; this is the
 * settings' one list: tests/check_settings.sh (make test) fails when
 * librudp_shim(7), rudp-run(1) or rudp-run --help misses a SETTING or
 * describes a name that is not here.
 */
enum { SETTING, SCRIPT };
static const struct {
    const char *name;
    int kind;
} known_vars[] = {
    {"RUDP_REDIRECT", SETTING},
    {"RUDP_LOG", SETTING},
    {"RUDP_LOG_FILE", SETTING},
    {"RUDP_STATS", SETTING},
    {"RUDP_CONNECT_TIMEOUT", SETTING},
    {"RUDP_USER_TIMEOUT", SETTING},
    {"RUDP_KEEPALIVE", SETTING},
    {"RUDP_IDLE_TIMEOUT", SETTING},
    {"RUDP_LINGER", SETTING},
    {"RUDP_BUFFER", SETTING},
    {"RUDP_OFFLOAD", SETTING},
    {"RUDP_APP_SEND", SETTING},
    {"RUDP_APP_RECV", SETTING},
    {"RUDP_SEND_RING", SETTING},
    {"RUDP_ENGINES", SETTING},
    {"RUDP_FD_TABLE", SETTING},     /* the engines' fds: the program's table or their own */
    {"RUDP_DATAGRAM", SETTING},
    {"RUDP_MEMORY", SETTING},
    {"RUDP_SOURCE_LIMIT", SETTING},
    {"RUDP_RETRY", SETTING},        /* the stateless RETRY, auto or always */
    {"RUDP_CC", SETTING},
    {"RUDP_REPAIR", SETTING},       /* copies of a short write's last packet */
    {"RUDP_QLOG_DIR", SETTING},     /* qlog traces */
    {"RUDP_QLOG_MAX", SETTING},
    {"RUDP_KEY_FILE", SETTING},     /* keyed mode, key.c */
    {"RUDP_ACCEPT_TCP", SETTING},   /* coexist: listeners take plain TCP too */
    {"RUDP_FALLBACK", SETTING},     /* coexist: a connect with no rudp answer goes over TCP */
    {"RUDP_RESET_ID", SETTING},     /* keyed stateless resets through a NAT (keyreset.c) */
    {"RUDP_0RTT", SETTING},         /* zero round trips for a returning client */
    {"RUDP_MULTIPATH", SETTING},    /* a client's standby path (engine/standby.c) */
    {"RUDP_OFFER_ADDR", SETTING},   /* a server's second address, offered to clients */
    {"RUDP_PATHS", SETTING},        /* the interfaces a client's standby may use */
    {"RUDP_SHIM", SCRIPT},          /* rudp-run: the library to preload */
    {"RUDP_CONFIG_CHECK", SCRIPT},  /* rudp-run: check the settings, exit 0 or 2 (sock.c) */
    {"RUDP_SHIM_BUILD", SCRIPT},    /* integration/lib/lib.sh: which build to test */
    {"RUDP_IT_TIMEOUT", SCRIPT},    /* integration/run.sh: per-script limit */
    {"RUDP_NO_SHIM", SCRIPT},       /* integration: run over kernel TCP */
    {"RUDP_CHAT_SHIM", SCRIPT},     /* integration/chat */
    {"RUDP_CHAT_KEYED", SCRIPT},    /* integration/chat: keyed, with a key of its own */
    {"RUDP_EXPECT_ABORT", SCRIPT},  /* tests/prog_killpeer.c */
    {"RUDP_KILL_BOUND", SCRIPT},    /* integration/tests/lifetime/t_killpeer.sh */
    {"RUDP_SIM_SEED", SCRIPT},      /* tests/test_sim.c */
    {"RUDP_EXEC_SLABS", SCRIPT},    /* slots.c: our exec passes the slabs on; removed at start-up */
    {"RUDP_EXEC_PASS", SCRIPT},     /* execpass.c: where the keeper serves what our exec passes */
};
enum { NKNOWN = sizeof known_vars / sizeof known_vars[0] };

static int known(const char *name, size_t len)
{
    for (int i = 0; i < NKNOWN; i++)
        if (strlen(known_vars[i].name) == len && memcmp(known_vars[i].name, name, len) == 0)
            return 1;
    return 0;
}

/* Optimal string alignment distance (Levenshtein plus the swap of two
 * neighbours, the commonest typo), ignoring ASCII case: RUDP_Log is one the
 * user meant as RUDP_LOG. Names longer than NAME_MAX_LEN count as far from
 * all; the table is small (2.4 KB of stack). */
enum { NAME_MAX_LEN = 48 };
static int upper(char c)
{
    return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;
}

static size_t distance(const char *a, size_t la, const char *b, size_t lb)
{
    if (la > NAME_MAX_LEN || lb > NAME_MAX_LEN)
        return SIZE_MAX;
    uint8_t d[NAME_MAX_LEN + 1][NAME_MAX_LEN + 1];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (uint8_t)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (uint8_t)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int ca = upper(a[i - 1]), cb = upper(b[j - 1]);
            unsigned best = d[i - 1][j - 1] + (ca != cb ? 1u : 0u);
            if (d[i - 1][j] + 1u < best)
                best = d[i - 1][j] + 1u;
            if (d[i][j - 1] + 1u < best)
                best = d[i][j - 1] + 1u;
            if (i > 1 && j > 1 && ca == upper(b[j - 2]) && upper(a[i - 2]) == cb &&
                d[i - 2][j - 2] + 1u < best)
                best = d[i - 2][j - 2] + 1u;
            d[i][j] = (uint8_t)best; /* at most NAME_MAX_LEN */
        }
    return d[la][lb];
}

/*
 * A RUDP_* variable nobody reads is most likely a misspelt setting that
 * silently does nothing. It is a warning, not a fatal error like a bad
 * value: the program runs correctly on the defaults, the variable may be
 * meant for a newer version of the shim or for a script, and every process
 * under the shim inherits it, so exiting would break a whole tree of
 * programs over a name the shim merely does not know. The line goes where
 * the log goes, at warn level (the default), so the person sees it.
 */
static void warn_unknown(void)
{
    extern char **environ;
    if (shim_cfg.log_level < RUDP_LOG_WARN || !environ)
        return;
    int told = 0, more = 0;
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "RUDP_", 5) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        size_t len = eq ? (size_t)(eq - *e) : strlen(*e);
        if (known(*e, len))
            continue;
        if (told == 5) { /* a bounded warning, whatever the environment holds */
            more++;
            continue;
        }
        told++;
        size_t best = SIZE_MAX;
        const char *near = NULL;
        for (int i = 0; i < NKNOWN; i++) {
            size_t dist = distance(*e, len, known_vars[i].name, strlen(known_vars[i].name));
            if (dist < best)
                best = dist, near = known_vars[i].name;
        }
        /* a suggestion only when it is close: at most a third of the name
         * after RUDP_ changed (one edit for short names) */
        size_t limit = (len - 5) / 3 < 1 ? 1 : (len - 5) / 3;
        int shown = len > 200 ? 200 : (int)len;
        if (near && best <= limit)
            shim_log(RUDP_LOG_WARN, "unknown variable %.*s; did you mean %s?", shown, *e, near);
        else
            shim_log(RUDP_LOG_WARN, "unknown variable %.*s (rudp-run --help lists the settings)",
                     shown, *e);
    }
    if (more)
        shim_log(RUDP_LOG_WARN, "and %d more unknown RUDP_ variables", more);
}

/* "250ms", "2s", "1m", "500us", or a plain number of seconds: digits and
 * a point only (strtod alone would take " +1", "0x10", "1e-10", "inf"). */
static int parse_duration(const char *s, rudp_time *out)
{
    size_t num = strspn(s, "0123456789.");
    if (num == 0 || strspn(s + num, "mus") != strlen(s + num))
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v >= 0 && v <= 1e7)) /* NaN fails too */
        return -1;
    double mult = 1e9;
    if (*end == 0 || strcmp(end, "s") == 0)
        mult = 1e9;
    else if (strcmp(end, "ms") == 0)
        mult = 1e6;
    else if (strcmp(end, "us") == 0)
        mult = 1e3;
    else if (strcmp(end, "m") == 0)
        mult = 60e9;
    else
        return -1;
    *out = (rudp_time)(v * mult);
    return 0;
}

/* How a duration setting is shown in a message: as the user wrote it, or
 * the default in the largest unit that is exact. */
static const char *show_duration(const char *var, rudp_time t, char *buf, size_t size)
{
    const char *v = getenv(var);
    if (v && *v)
        return v;
    if (t % RUDP_SEC(1) == 0)
        snprintf(buf, size, "%llus (default)", (unsigned long long)(t / RUDP_SEC(1)));
    else if (t % RUDP_MS(1) == 0)
        snprintf(buf, size, "%llums (default)", (unsigned long long)(t / RUDP_MS(1)));
    else
        snprintf(buf, size, "%lluus (default)", (unsigned long long)(t / RUDP_US(1)));
    return buf;
}

/* Sizes: a decimal number of bytes with an optional K, M or G (powers of
 * 1024, either case), the same for every size setting. */
static int parse_bytes(const char *s, uint64_t *out)
{
    char *end;
    if (!isdigit((unsigned char)s[0]))
        return -1; /* strtoull would take spaces, a sign, "-1" wrapped */
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    unsigned shift = 0;
    if (*end == 'k' || *end == 'K')
        shift = 10, end++;
    else if (*end == 'm' || *end == 'M')
        shift = 20, end++;
    else if (*end == 'g' || *end == 'G')
        shift = 30, end++;
    if (*end || v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

/* Counts (engine threads, connections) take a plain decimal number. A
 * suffix means powers of 1024 bytes everywhere else here; RUDP_ENGINES=0K
 * or RUDP_SOURCE_LIMIT=64K is more likely a size typed into the wrong
 * variable than 65536 connections meant, so it is refused, not guessed. */
static int parse_count(const char *s, uint64_t *out)
{
    char *end;
    if (!isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

/* Parses "ADDR", "ADDR/N", "[V6]", with an optional ":PORT" or ":LO-HI"
 * (after "]" for IPv6), ":PORT..." alone, or "all". */
static int parse_rule(const char *item, shim_redirect_rule *r)
{
    memset(r, 0, sizeof *r);
    r->port_lo = 0;
    r->port_hi = 65535;
    r->any_addr = 1;
    if (*item == '!') {
        r->exclude = 1;
        item++;
    }
    if (strcmp(item, "all") == 0)
        return 0;
    char buf[128];
    if (strlen(item) >= sizeof buf)
        return -1;
    strcpy(buf, item);
    char *addr = buf, *port = NULL;
    if (buf[0] == '[') {
        char *close = strchr(buf, ']');
        if (!close)
            return -1;
        *close = 0;
        addr = buf + 1;
        if (close[1] == ':')
            port = close + 2;
        else if (close[1])
            return -1;
    } else if (buf[0] == ':' && buf[1] != ':') {
        addr = NULL; /* ":PORT" (but "::1" is an IPv6 address) */
        port = buf + 1;
    } else {
        /* IPv4 with an optional :port, or a bare IPv6 address (two colons) */
        char *c1 = strchr(buf, ':');
        if (c1 && !strchr(c1 + 1, ':')) {
            *c1 = 0;
            port = c1 + 1;
        }
    }
    if (addr && *addr) {
        int prefix = -1;
        char *slash = strchr(addr, '/');
        if (slash) {
            char *end;
            prefix = (int)strtol(slash + 1, &end, 10);
            if (*end || end == slash + 1)
                return -1;
            *slash = 0;
        }
        if (inet_pton(AF_INET, addr, r->addr) == 1) {
            r->family = AF_INET;
            if (prefix < 0)
                prefix = 32;
            if (prefix > 32)
                return -1;
        } else if (inet_pton(AF_INET6, addr, r->addr) == 1) {
            r->family = AF_INET6;
            if (prefix < 0)
                prefix = 128;
            if (prefix > 128)
                return -1;
        } else {
            return -1;
        }
        r->prefix = (uint8_t)prefix;
        r->any_addr = 0;
    } else if (addr) {
        return -1;
    }
    if (port) {
        char *end;
        long lo = strtol(port, &end, 10), hi = lo;
        if (end == port)
            return -1;
        if (*end == '-') {
            char *p2 = end + 1;
            hi = strtol(p2, &end, 10);
            if (end == p2)
                return -1;
        }
        if (*end || lo < 0 || hi > 65535 || lo > hi)
            return -1;
        r->port_lo = (uint16_t)lo;
        r->port_hi = (uint16_t)hi;
    }
    return 0;
}

static int parse_redirect(const char *val)
{
    char buf[1024];
    if (strlen(val) >= sizeof buf)
        return -1;
    strcpy(buf, val);
    shim_cfg.nrules = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        if (shim_cfg.nrules == (int)(sizeof shim_cfg.rules / sizeof shim_cfg.rules[0]))
            return -1;
        if (strcmp(tok, "none") == 0)
            continue;
        if (parse_rule(tok, &shim_cfg.rules[shim_cfg.nrules]) < 0)
            return -1;
        shim_cfg.nrules++;
    }
    return 0;
}

static int prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;
    if (memcmp(a, b, full) != 0)
        return 0;
    if (!rest)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

int shim_redirect(const struct sockaddr *sa)
{
    int family;
    uint8_t addr[16];
    uint16_t port;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        family = AF_INET;
        memcpy(addr, &in->sin_addr, 4);
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        port = ntohs(in6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            family = AF_INET; /* match ::ffff:a.b.c.d as a.b.c.d */
            memcpy(addr, &in6->sin6_addr.s6_addr[12], 4);
        } else {
            family = AF_INET6;
            memcpy(addr, &in6->sin6_addr, 16);
        }
    } else {
        return 0;
    }
    for (int i = 0; i < shim_cfg.nrules; i++) {
        const shim_redirect_rule *r = &shim_cfg.rules[i];
        if (port < r->port_lo || port > r->port_hi)
            continue;
        if (!r->any_addr && (r->family != family || !prefix_match(addr, r->addr, r->prefix)))
            continue;
        return !r->exclude;
    }
    return 0;
}

/* The log file: never through a symbolic link (O_NOFOLLOW), created
 * private (0600), and only a regular file: a FIFO would block or feed
 * another process, a device could be anything. O_NONBLOCK keeps the open
 * itself from waiting on a FIFO; it is cleared once the type is known. */
static int open_log(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY |
                            O_NONBLOCK, 0600);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        real_fcntl(fd, F_SETFL, O_APPEND) < 0) {
        real_close(fd);
        return -1;
    }
    return fd;
}

static const char *env(const char *name)
{
    assert(known(name, strlen(name))); /* a new variable goes into known_vars */
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* allow_zero: 0 turns the timer off; otherwise at least 1 ms, as
 * rudp_config_check() requires of the handshake and user timeouts. */
static int duration_var(const char *name, rudp_time *dst, int allow_zero)
{
    const char *v = env(name);
    if (!v)
        return 0;
    rudp_time t;
    /* under a millisecond is never meant: a timer re-armed every
     * microsecond would keep the engine busy */
    if (parse_duration(v, &t) < 0 || (t < RUDP_MS(1) && (t != 0 || !allow_zero)))
        return bad(name, v,
                   allow_zero ? "0 (off) or a duration of at least 1ms such as 250ms, 5s or 2m"
                              : "a duration of at least 1ms such as 250ms, 5s or 2m");
    *dst = t;
    return 0;
}

/*
 * Settings valid alone but not together, named with the values as given
 * (or the default). Each variable's own range is checked as it is read, so
 * what rudp_config_check() can still find is one of these; its own words
 * are the last resort for a check added to core/ and not here.
 */
static int check_together(void)
{
    const rudp_config *c = &shim_cfg.rudp;
    char a[48], b[48];
    if (c->keepalive && c->idle_timeout && c->keepalive >= c->idle_timeout) {
        say("RUDP_KEEPALIVE=%s must be shorter than RUDP_IDLE_TIMEOUT=%s: a keepalive probe is "
            "sent before the idle timeout gives up (0 turns either off)",
            show_duration("RUDP_KEEPALIVE", c->keepalive, a, sizeof a),
            show_duration("RUDP_IDLE_TIMEOUT", c->idle_timeout, b, sizeof b));
        return -1;
    }
    if (c->recv_window < 2 * (uint64_t)c->max_datagram) {
        say("RUDP_BUFFER=%s must hold two datagrams of RUDP_DATAGRAM=%s, at least %llu bytes "
            "(the receive window is never smaller than two datagrams)",
            env("RUDP_BUFFER") ? env("RUDP_BUFFER") : "(default)",
            env("RUDP_DATAGRAM") ? env("RUDP_DATAGRAM") : "(default)",
            2 * (unsigned long long)c->max_datagram);
        return -1;
    }
    const char *why;
    if (rudp_config_check(c, &why) < 0) {
        say("the settings do not fit together: %s", why);
        return -1;
    }
    return 0;
}

/*
 * RUDP_QLOG_DIR, as tracing tools take their directory (quic-go's QLOGDIR,
 * made with MkdirAll when missing): a relative path is the working
 * directory's, and what is missing of it is made, private (0700: traces
 * say who talked to whom, and when). Resolved here once and exported resolved, so every
 * program this one starts writes to the same directory whatever its own
 * working directory (a daemon's is /).
 */
static int qlog_dir(const char *v, int check_only)
{
    char path[PATH_MAX];
    size_t len = 0;
    if (v[0] != '/') {
        if (!getcwd(path, sizeof path - 1))
            return bad("RUDP_QLOG_DIR", v,
                       "an absolute path (the working directory of this process has no name)");
        len = strlen(path);
        if (len > 1)
            path[len++] = '/';
    }
    if (strlen(v) >= sizeof path - len)
        return bad("RUDP_QLOG_DIR", v, "a path shorter than PATH_MAX");
    strcpy(path + len, v);
    for (char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
        *p = 0;
        (void)mkdir(path, 0700); /* EEXIST or not ours: open_dir says */
        *p = '/';
    }
    (void)mkdir(path, 0700);
    int fd = shim_qlog_open_dir(path);
    if (fd == -2)
        return bad("RUDP_QLOG_DIR", v,
                   "a directory others cannot write to, or a sticky one (mode 1777, as /tmp)");
    if (fd < 0)
        return bad("RUDP_QLOG_DIR", v, "a directory this process may create or write to");
    shim_cfg.qlog_dirfd = fd;
    if (v[0] != '/' && !check_only && setenv("RUDP_QLOG_DIR", path, 1) < 0)
        return bad("RUDP_QLOG_DIR", v, "an absolute path (no memory to resolve it)");
    return 0;
}

static int load(int check_only);

int shim_config_load(int check_only)
{
    if (load(check_only) == 0)
        return 0;
    shim_cfg.stats = 0; /* the destructor prints no counters of a shim that never ran */
    return -1;
}

/* A setting that is 0 or 1 into *dst, when set; form: what it means, for
 * the message when it is neither. */
static int flag_var(const char *name, int *dst, const char *form)
{
    const char *v = env(name);
    if (!v)
        return 0;
    if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
        return bad(name, v, form);
    *dst = v[0] == '1';
    return 0;
}

/* What the shim says, and where: the log's level and file, then (once
 * those are known) the names it does not know, and the counters at exit. */
static int load_output(int check_only)
{
    const char *v;
    shim_cfg.log_fd = 2;
    shim_cfg.log_level = RUDP_LOG_WARN;
    if ((v = env("RUDP_LOG"))) {
        static const char *const levels[] = {"off", "error", "warn", "info", "debug"};
        int found = -1;
        for (int i = 0; i < 5; i++)
            if (strcasecmp(v, levels[i]) == 0)
                found = i;
        if (found < 0)
            return bad("RUDP_LOG", v, "one of off, error, warn, info, debug");
        shim_cfg.log_level = found;
    }
    if ((v = env("RUDP_LOG_FILE"))) {
        int fd = open_log(v);
        if (fd < 0)
            return bad("RUDP_LOG_FILE", v,
                       "a regular file that can be opened for appending (not a symbolic link; "
                       "created with mode 0600 if missing)");
        shim_cfg.log_fd = shim_fd_move_high(fd);
        shim_ownfds_add(shim_cfg.log_fd); /* a program closing every fd spares it */
    }
    if (!check_only)
        warn_unknown(); /* once the log's level and place are known */
    return flag_var("RUDP_STATS", &shim_cfg.stats, "0 or 1");
}

/* Which connections go over rudp, their timers and buffers, and which
 * ways their bytes take through the shim. */
static int load_connections(void)
{
    const char *v = env("RUDP_REDIRECT");
    if (parse_redirect(v ? v : "all") < 0)
        return bad("RUDP_REDIRECT", v,
                   "a comma-separated list of rules, first match wins: all, ADDR, ADDR/BITS, "
                   "[V6ADDR], with :PORT or :LO-HI, or :PORT alone; '!' in front keeps a "
                   "match on kernel TCP; none");
    if (duration_var("RUDP_CONNECT_TIMEOUT", &shim_cfg.rudp.connect_timeout, 0) ||
        duration_var("RUDP_USER_TIMEOUT", &shim_cfg.rudp.user_timeout, 0) ||
        duration_var("RUDP_KEEPALIVE", &shim_cfg.rudp.keepalive, 1) ||
        duration_var("RUDP_IDLE_TIMEOUT", &shim_cfg.rudp.idle_timeout, 1) ||
        duration_var("RUDP_LINGER", &shim_cfg.rudp.linger, 1))
        return -1;
    if ((v = env("RUDP_BUFFER"))) {
        uint64_t b;
        if (parse_bytes(v, &b) < 0 || b < 65536 || b > (1u << 30))
            return bad("RUDP_BUFFER", v, "a size from 64K to 1G (bytes, or suffix K, M or G)");
        shim_cfg.rudp.send_buffer = (uint32_t)b;
        shim_cfg.rudp.recv_window = (uint32_t)b;
    }
    shim_cfg.offload = 1;
    if (flag_var("RUDP_OFFLOAD", &shim_cfg.offload,
                 "0 (one datagram per send, no GRO) or 1 (default)") < 0)
        return -1;
    shim_cfg.app_send = 1;
    if (flag_var("RUDP_APP_SEND", &shim_cfg.app_send,
                 "0 (every write through the engine thread) or 1 (default)") < 0)
        return -1;
    shim_cfg.send_ring = 1;
    if (flag_var("RUDP_SEND_RING", &shim_cfg.send_ring,
                 "0 (every write through the bridge) or 1 (default)") < 0)
        return -1;
    shim_cfg.app_recv = 1;
    return flag_var("RUDP_APP_RECV", &shim_cfg.app_recv,
                    "0 (every datagram read by the engine thread) or 1 (default)");
}

/* Engine threads: by default as many as the CPUs the process may run on
 * (its affinity mask), at most SHIM_ENGINES_DEFAULT_MAX, started by load
 * (engines.c): a second engine only once the first carries SHIM_SPREAD_AT
 * connections or is saturated, and a listener's group of engines only for
 * a listen() backlog that large or a process that busy. A small program
 * keeps one thread. RUDP_ENGINES=N forces N (0: one per CPU): every
 * listener gets all of them at listen(). */
static int load_engines(void)
{
    int ncpu = 1;
    {
        cpu_set_t cpus;
        if (sched_getaffinity(0, sizeof cpus, &cpus) == 0)
            ncpu = CPU_COUNT(&cpus);
    }
    if (ncpu < 1)
        ncpu = 1;
    if (ncpu > SHIM_ENGINES_DEFAULT_MAX)
        ncpu = SHIM_ENGINES_DEFAULT_MAX;
    shim_cfg.engines = ncpu;
    shim_cfg.engines_auto = 1;
    const char *v = env("RUDP_ENGINES");
    if (v) {
        uint64_t n;
        if (parse_count(v, &n) < 0 || n > SHIM_ENGINES_MAX)
            return bad("RUDP_ENGINES", v,
                       "a number of engine threads from 1 to 8, or 0: one per CPU (at most 4)");
        shim_cfg.engines = n == 0 ? ncpu : (int)n;
        shim_cfg.engines_auto = 0;
    }
    shim_cfg.fd_table = SHIM_FD_TABLE_AUTO;
    if ((v = env("RUDP_FD_TABLE"))) {
        if (strcmp(v, "own") == 0)
            shim_cfg.fd_table = SHIM_FD_TABLE_OWN;
        else if (strcmp(v, "shared") == 0)
            shim_cfg.fd_table = SHIM_FD_TABLE_SHARED;
        else if (strcmp(v, "auto") != 0)
            return bad("RUDP_FD_TABLE", v,
                       "auto (the engines' fds in a table of their own where the hard fd limit "
                       "is under 16384), own or shared (the program's table)");
    }
    return 0;
}

/* The largest datagram, and what remote peers may make the engine hold:
 * memory, and connections from one source. */
static int load_sizes(void)
{
    const char *v;
    if ((v = env("RUDP_DATAGRAM"))) {
        uint64_t b;
        if (parse_bytes(v, &b) < 0 || b < 1200 || b > 65507)
            return bad("RUDP_DATAGRAM", v,
                       "a datagram size from 1200 to 65507 bytes (suffix K allowed, e.g. 16K)");
        shim_cfg.rudp.max_datagram = (uint32_t)b;
        shim_cfg.datagram_set = 1;
    }
    /* What remote peers may make the engine hold (connections and receive
     * buffers): a sixteenth of physical memory by default, at least
     * 64 MiB, as the kernel sizes its TCP memory pressure point. */
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    shim_cfg.memory = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize / 16 : 0;
    if (shim_cfg.memory < (64u << 20))
        shim_cfg.memory = 64u << 20;
    if ((v = env("RUDP_MEMORY"))) {
        uint64_t b;
        if (parse_bytes(v, &b) < 0 || b < (1u << 20))
            return bad("RUDP_MEMORY", v, "a size of at least 1M (bytes, or suffix K, M or G)");
        shim_cfg.memory = b;
    }
    if ((v = env("RUDP_SOURCE_LIMIT"))) {
        uint64_t n;
        if (parse_count(v, &n) < 0 || n > 65535)
            return bad("RUDP_SOURCE_LIMIT", v, "a number of connections, 0 to 65535 (0: no limit)");
        shim_cfg.rudp.source_limit = (uint32_t)n;
    }
    return 0;
}

/* What the protocol spends to save a round trip: a short write's last
 * packet sent twice, and a SYN answered only after a stateless RETRY. */
static int load_repair_and_retry(void)
{
    const char *v;
    if ((v = env("RUDP_REPAIR"))) {
        if (strcmp(v, "auto") == 0)
            shim_cfg.rudp.repair = RUDP_REPAIR_AUTO;
        else if (strcmp(v, "off") == 0)
            shim_cfg.rudp.repair = RUDP_REPAIR_OFF;
        else if (strcmp(v, "always") == 0)
            shim_cfg.rudp.repair = RUDP_REPAIR_ALWAYS;
        else
            return bad("RUDP_REPAIR", v,
                       "auto (default: copy a short write's last packet on a path of 5 ms or "
                       "more once a loss was seen), off, or always (any path, loss or not)");
    }
    /* A listener answers a SYN at once (one round trip) unless under
     * pressure, then with a stateless RETRY (core/budget.c); always: every
     * SYN without a cookie earns one, so an address never proven holds no
     * state at all, for one more round trip per connect. */
    if ((v = env("RUDP_RETRY"))) {
        if (strcmp(v, "auto") != 0 && strcmp(v, "always") != 0)
            return bad("RUDP_RETRY", v,
                       "auto (a stateless RETRY only under pressure; the default) or always");
        shim_cfg.rudp.retry = v[1] == 'l' ? RUDP_RETRY_ALWAYS : RUDP_RETRY_AUTO;
    }
    return 0;
}

/* Traces (qlog.c): how large a file grows, and the directory. */
static int load_qlog(int check_only)
{
    const char *v;
    shim_cfg.qlog_dirfd = -1;
    shim_cfg.qlog_max = 64u << 20;
    if ((v = env("RUDP_QLOG_MAX")) && (parse_bytes(v, &shim_cfg.qlog_max) < 0 ||
                                       shim_cfg.qlog_max < 4096 || shim_cfg.qlog_max > (1ull << 40)))
        return bad("RUDP_QLOG_MAX", v, "bytes per trace file, 4K to 1024G (suffix K, M or G)");
    if ((v = env("RUDP_QLOG_DIR")) && qlog_dir(v, check_only) < 0)
        return -1;
    return 0;
}

/* The key (key.c), and the name of this server among those sharing it. */
static int load_key(void)
{
    const char *v;
    if ((v = env("RUDP_KEY_FILE"))) {
        char why[320];
        if (shim_key_load(v, why, sizeof why) < 0) {
            say("RUDP_KEY_FILE=\"%s\" %s", v, why);
            return -1;
        }
    }
    if ((v = env("RUDP_RESET_ID"))) {
        if (!shim_key())
            return bad("RUDP_RESET_ID", v, "set together with RUDP_KEY_FILE (it names a keyed server)");
        if (strlen(v) >= sizeof shim_cfg.reset_id)
            return bad("RUDP_RESET_ID", v, "a name of 1 to 255 bytes, unique among the servers sharing the key");
        strcpy(shim_cfg.reset_id, v);
    }
    return 0;
}

/* Coexisting with kernel TCP (README, "Deploying step by step"). With a
 * key neither is on unless asked: a key holder may want no plaintext
 * path, and a fallback would be a downgrade an attacker can force by
 * dropping UDP. */
static int load_tcp_coexistence(void)
{
    int keyed = shim_key() != NULL;
    shim_cfg.accept_tcp = !keyed;
    if (flag_var("RUDP_ACCEPT_TCP", &shim_cfg.accept_tcp,
                 "0 (listeners take rudp only) or 1 (plain TCP clients too; the default "
                 "without RUDP_KEY_FILE)") < 0)
        return -1;
    shim_cfg.fallback = !keyed;
    const char *v = env("RUDP_FALLBACK");
    if (v) {
        if (strcmp(v, "tcp") != 0 && strcmp(v, "none") != 0)
            return bad("RUDP_FALLBACK", v,
                       "tcp (a connect rudp cannot make goes over kernel TCP; the default "
                       "without RUDP_KEY_FILE) or none");
        shim_cfg.fallback = v[0] == 't';
    }
    return 0;
}

/* A client's standby path through a second interface (engine/standby.c):
 * on by default, as it costs a challenge per keepalive interval and only
 * where a second interface reaches the server. */
static int load_multipath(void)
{
    shim_cfg.multipath = 1;
    const char *v = env("RUDP_MULTIPATH");
    if (v) {
        if (strcmp(v, "off") != 0 && strcmp(v, "handover") != 0)
            return bad("RUDP_MULTIPATH", v,
                       "handover (a client keeps a standby path through a second interface "
                       "and moves to it when its path goes silent; the default) or off");
        shim_cfg.multipath = v[0] == 'h';
    }
    shim_cfg.npaths = 0;
    if ((v = env("RUDP_PATHS"))) {
        const char *p = v;
        while (*p) {
            size_t n = strcspn(p, ",");
            if (n == 0 || n >= sizeof shim_cfg.paths[0] ||
                shim_cfg.npaths == (int)(sizeof shim_cfg.paths / sizeof shim_cfg.paths[0]))
                return bad("RUDP_PATHS", v,
                           "interface names separated by commas (at most 8, each up to 15 "
                           "characters), e.g. wlan0,wwan0: the ones a client's standby path may "
                           "use, in that order");
            memcpy(shim_cfg.paths[shim_cfg.npaths], p, n);
            shim_cfg.paths[shim_cfg.npaths++][n] = 0;
            p += n + (p[n] == ',');
        }
    }
    memset(&shim_cfg.offer, 0, sizeof shim_cfg.offer);
    if ((v = env("RUDP_OFFER_ADDR"))) {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof ss);
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        if (inet_pton(AF_INET, v, &in->sin_addr) == 1)
            in->sin_family = AF_INET;
        else if (inet_pton(AF_INET6, v, &in6->sin6_addr) == 1)
            in6->sin6_family = AF_INET6;
        else
            return bad("RUDP_OFFER_ADDR", v,
                       "an IPv4 or IPv6 address of this host, which listeners bound to every "
                       "address offer their clients as a second path");
        shim_to_rudp_addr((struct sockaddr *)&ss, &shim_cfg.offer);
    }
    return 0;
}

/* Zero round trips (core/token.h, state/tokens.c): off unless asked, as
 * TCP Fast Open is per program (TCP_FASTOPEN on a listener,
 * TCP_FASTOPEN_CONNECT or MSG_FASTOPEN on a client: connect.c, listen.c,
 * msgaddr.c). Then the congestion controller. */
static int load_zero_rtt_and_cc(void)
{
    shim_cfg.zero_rtt = 0;
    if (flag_var("RUDP_0RTT", &shim_cfg.zero_rtt,
                 "0 (0-RTT only where the program asks for TCP Fast Open; the default) "
                 "or 1 (listeners give tokens, clients use them)") < 0)
        return -1;
    const char *v = env("RUDP_CC");
    if (v) {
        const rudp_cc_ops *cc = rudp_cc_find(v);
        if (!cc)
            return bad("RUDP_CC", v,
                       "the name of a congestion controller: bbr (default), cubic, newreno, "
                       "vegas, htcp, scalable, westwood, highspeed, bic, veno, "
                       "dctcp (runs as dctcp-reno: no ECN), hybla, illinois, yeah, lp, nv, cdg, "
                       "copa (delay-aware, for cellular links)");
        shim_cfg.rudp.cc = cc;
    }
    return 0;
}

/* Every setting, in this order: the first bad one is the one said. */
static int load(int check_only)
{
    rudp_config_default(&shim_cfg.rudp);
    /* Path MTU discovery (core/pmtu.h) on every connection; the core keeps
     * loopback's large datagrams without a search. */
    shim_cfg.rudp.pmtud = 1;
    /* Receive coalescing (core/conn_input.c: rx_hold): a bulk receiver's
     * application is woken once for several datagrams, waiting at most a
     * millisecond (what a 100 Mbit/s sender's pacer sends at once,
     * conn_output.c) for the rest of a burst. */
    shim_cfg.rudp.rx_hold = RUDP_MS(1);
    /* The bytes a connection takes from its bridge ahead of the network
     * (core/tune.c): the rest waits in the bridge, so a packet copies
     * bytes the engine read a moment ago, not megabytes ago (a bulk
     * sender's copy out of a 32 MiB buffer ran from memory, not cache).
     * The app's TCP_NOTSENT_LOWAT, where it sets one, takes its place. */
    shim_cfg.rudp.unsent_cap = 256u * 1024;
    if (load_output(check_only) < 0 || load_connections() < 0 || load_engines() < 0 ||
        load_sizes() < 0 || load_repair_and_retry() < 0 || load_qlog(check_only) < 0 ||
        load_key() < 0 || load_tcp_coexistence() < 0 || load_zero_rtt_and_cc() < 0 ||
        load_multipath() < 0)
        return -1;
    return check_together();
}
