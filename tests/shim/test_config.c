/*
 * config: shim/base/config.c through its public functions, as a program
 * under the shim meets it: variables in the environment, shim_config_load,
 * the line shim_config_tell writes, shim_cfg and shim_redirect. Each bad
 * value must be refused by its variable's name (docs/configuration.md, "A
 * bad setting"): running on defaults instead would hide the mistake.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shimtest.h"

/* A private directory for files a test names (log, key), made at the
 * first and removed with what is in it when the test ends. */
static char dir[] = "/tmp/shimtest-config-XXXXXX";
static int made;

static void remove_tmpdir(void)
{
    if (!made)
        return;
    DIR *d = opendir(dir);
    if (d) {
        for (struct dirent *e; (e = readdir(d));)
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                unlinkat(dirfd(d), e->d_name, 0);
        closedir(d);
    }
    rmdir(dir);
    made = 0;
}

TestSuite(config, .init = shimtest_setup, .fini = remove_tmpdir);

/* Loads with the variables given (name, value pairs, NULL-ended), as
 * check_only 0: a program's start. */
static int load_with(const char *name, ...)
{
    va_list ap;
    va_start(ap, name);
    for (const char *n = name; n; n = va_arg(ap, const char *))
        cr_assert(setenv(n, va_arg(ap, const char *), 1) == 0);
    va_end(ap);
    return shim_config_load(0);
}

static struct sockaddr_storage v4(const char *ip, unsigned port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    cr_assert(inet_pton(AF_INET, ip, &in->sin_addr) == 1);
    return ss;
}

static struct sockaddr_storage v6(const char *ip, unsigned port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    cr_assert(inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1);
    return ss;
}

static int redirected(struct sockaddr_storage ss)
{
    return shim_redirect((const struct sockaddr *)&ss);
}

static const char *tmpdir(void)
{
    if (!made) {
        cr_assert(mkdtemp(dir) != NULL);
        made = 1;
    }
    return dir;
}

static const char *write_file(const char *name, const char *text, mode_t mode)
{
    static char path[4][256];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", tmpdir(), name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    cr_assert(fd >= 0);
    cr_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    cr_assert(fchmod(fd, mode) == 0);
    close(fd);
    return p;
}

static char *read_file(const char *path)
{
    static char buf[8192];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0, "%s exists", path);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

#define KEY_HEX "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"

Test(config, defaults_without_any_variable)
{
    cr_assert(eq(int, shim_config_load(0), 0));
    rudp_config want;
    rudp_config_default(&want);
    cr_assert(eq(int, shim_cfg.log_level, RUDP_LOG_WARN));
    cr_assert(eq(int, shim_cfg.log_fd, 2));
    cr_assert(eq(int, shim_cfg.stats, 0));
    cr_assert(eq(int, shim_cfg.offload, 1));
    cr_assert(eq(int, shim_cfg.app_send, 1));
    cr_assert(eq(int, shim_cfg.engines_auto, 1));
    cr_assert(shim_cfg.engines >= 1 && shim_cfg.engines <= SHIM_ENGINES_DEFAULT_MAX);
    cr_assert(shim_cfg.memory >= 64u << 20);
    cr_assert(eq(u64, shim_cfg.qlog_max, 64u << 20));
    cr_assert(eq(int, shim_cfg.qlog_dirfd, -1));
    /* unkeyed: listeners take plain TCP, connects fall back to it; no 0-RTT */
    cr_assert(eq(int, shim_cfg.accept_tcp, 1));
    cr_assert(eq(int, shim_cfg.fallback, 1));
    cr_assert(eq(int, shim_cfg.zero_rtt, 0));
    cr_assert(eq(ptr, (void *)shim_key(), NULL));
    cr_assert(eq(str, shim_cfg.reset_id, ""));
    /* the core's defaults, with path MTU discovery on */
    cr_assert(eq(u64, shim_cfg.rudp.connect_timeout, want.connect_timeout));
    cr_assert(eq(u64, shim_cfg.rudp.user_timeout, want.user_timeout));
    cr_assert(eq(u32, shim_cfg.rudp.send_buffer, want.send_buffer));
    cr_assert(eq(u32, shim_cfg.rudp.max_datagram, want.max_datagram));
    cr_assert(eq(int, shim_cfg.rudp.pmtud, 1));
    /* RUDP_REDIRECT unset is "all": any address, any port, both families */
    cr_assert(redirected(v4("192.0.2.1", 1)));
    cr_assert(redirected(v6("2001:db8::1", 65535)));
}

Test(config, good_values_are_taken)
{
    cr_assert(eq(int, load_with("RUDP_LOG", "Debug", "RUDP_STATS", "1",
                                "RUDP_CONNECT_TIMEOUT", "250ms", "RUDP_USER_TIMEOUT", "2m",
                                "RUDP_KEEPALIVE", "1.5", "RUDP_IDLE_TIMEOUT", "0",
                                "RUDP_LINGER", "500ms", "RUDP_BUFFER", "4M",
                                "RUDP_OFFLOAD", "0", "RUDP_APP_SEND", "0",
                                "RUDP_ENGINES", "3", "RUDP_DATAGRAM", "16K",
                                "RUDP_MEMORY", "2G", "RUDP_SOURCE_LIMIT", "100",
                                "RUDP_REPAIR", "always", "RUDP_RETRY", "always",
                                "RUDP_QLOG_MAX", "1m", "RUDP_ACCEPT_TCP", "0",
                                "RUDP_FALLBACK", "none", "RUDP_0RTT", "1", "RUDP_CC", "cubic",
                                NULL),
              0),
              "%s", shimtest_config_said());
    cr_assert(eq(int, shim_cfg.log_level, RUDP_LOG_DEBUG)); /* any case */
    cr_assert(eq(int, shim_cfg.stats, 1));
    cr_assert(eq(u64, shim_cfg.rudp.connect_timeout, RUDP_MS(250)));
    cr_assert(eq(u64, shim_cfg.rudp.user_timeout, RUDP_SEC(120)));
    cr_assert(eq(u64, shim_cfg.rudp.keepalive, RUDP_MS(1500))); /* plain seconds */
    cr_assert(eq(u64, shim_cfg.rudp.idle_timeout, 0));          /* 0: off */
    cr_assert(eq(u64, shim_cfg.rudp.linger, RUDP_MS(500)));
    cr_assert(eq(u32, shim_cfg.rudp.send_buffer, 4u << 20));
    cr_assert(eq(u32, shim_cfg.rudp.recv_window, 4u << 20));
    cr_assert(eq(int, shim_cfg.offload, 0));
    cr_assert(eq(int, shim_cfg.app_send, 0));
    cr_assert(eq(int, shim_cfg.engines, 3));
    cr_assert(eq(int, shim_cfg.engines_auto, 0));
    cr_assert(eq(u32, shim_cfg.rudp.max_datagram, 16384));
    cr_assert(eq(int, shim_cfg.datagram_set, 1));
    cr_assert(eq(u64, shim_cfg.memory, 2ull << 30));
    cr_assert(eq(u32, shim_cfg.rudp.source_limit, 100));
    cr_assert(eq(int, shim_cfg.rudp.repair, RUDP_REPAIR_ALWAYS));
    cr_assert(eq(int, shim_cfg.rudp.retry, RUDP_RETRY_ALWAYS));
    cr_assert(eq(u64, shim_cfg.qlog_max, 1u << 20));
    cr_assert(eq(int, shim_cfg.accept_tcp, 0));
    cr_assert(eq(int, shim_cfg.fallback, 0));
    cr_assert(eq(int, shim_cfg.zero_rtt, 1));
    cr_assert(eq(ptr, (void *)shim_cfg.rudp.cc, (void *)rudp_cc_find("cubic")));
}

Test(config, engines_zero_means_one_per_cpu)
{
    cr_assert(eq(int, load_with("RUDP_ENGINES", "0", NULL), 0));
    cr_assert(shim_cfg.engines >= 1 && shim_cfg.engines <= SHIM_ENGINES_DEFAULT_MAX);
    cr_assert(eq(int, shim_cfg.engines_auto, 0)); /* forced: every listener gets them all */
}

/* Each bad value: load fails, the line names the variable and the value as
 * given, and nothing of what was read is used (the stats stay off). */
static const struct {
    const char *var, *val;
} bad_values[] = {
    {"RUDP_LOG", "verbose"},
    {"RUDP_STATS", "yes"},
    {"RUDP_REDIRECT", "10.0.0.0/33"},
    {"RUDP_REDIRECT", "[::1"},
    {"RUDP_REDIRECT", "127.0.0.1:70000"},
    {"RUDP_REDIRECT", ":90-80"},
    {"RUDP_REDIRECT", "example.com"},
    {"RUDP_CONNECT_TIMEOUT", "0"},      /* 0 turns off only the timers that may be off */
    {"RUDP_CONNECT_TIMEOUT", "500us"},  /* under a millisecond */
    {"RUDP_USER_TIMEOUT", "1h"},
    {"RUDP_KEEPALIVE", "-1s"},
    {"RUDP_IDLE_TIMEOUT", "0x10"},      /* strtod alone would take it */
    {"RUDP_LINGER", "inf"},
    {"RUDP_BUFFER", "65535"},           /* under 64K */
    {"RUDP_BUFFER", "2G"},              /* over 1G */
    {"RUDP_BUFFER", " 1M"},
    {"RUDP_OFFLOAD", "2"},
    {"RUDP_APP_SEND", "on"},
    {"RUDP_ENGINES", "9"},              /* over SHIM_ENGINES_MAX */
    {"RUDP_ENGINES", "0K"},             /* a size in a count */
    {"RUDP_DATAGRAM", "1199"},
    {"RUDP_DATAGRAM", "65508"},
    {"RUDP_MEMORY", "1023K"},
    {"RUDP_SOURCE_LIMIT", "65536"},
    {"RUDP_SOURCE_LIMIT", "64K"},
    {"RUDP_REPAIR", "sometimes"},
    {"RUDP_RETRY", "never"},
    {"RUDP_QLOG_MAX", "4095"},
    {"RUDP_QLOG_MAX", "1025G"},
    {"RUDP_ACCEPT_TCP", "true"},
    {"RUDP_FALLBACK", "udp"},
    {"RUDP_0RTT", "2"},
    {"RUDP_CC", "reno-ish"},
    {"RUDP_MULTIPATH", "on"},
    {"RUDP_PATHS", "wlan0,,wwan0"},      /* an empty name */
    {"RUDP_PATHS", "a-name-of-16-chars"},
    {"RUDP_PATHS", "a,b,c,d,e,f,g,h,i"},  /* 9 */
    {"RUDP_OFFER_ADDR", "10.0.0.256"},
    {"RUDP_OFFER_ADDR", "eth0"},
};

/* Handover's settings (engine/standby.c): the default, off, the
 * interfaces in order, a server's offered address in either family. */
Test(config, handover_settings_are_taken)
{
    cr_assert(eq(int, load_with(NULL), 0));
    cr_assert(eq(int, shim_cfg.multipath, 1), "handover is the default");
    cr_assert(eq(int, shim_cfg.npaths, 0));
    cr_assert(eq(int, shim_cfg.offer.family, 0));
    cr_assert(eq(int, load_with("RUDP_MULTIPATH", "off", "RUDP_PATHS", "wlan0,wwan0",
                                "RUDP_OFFER_ADDR", "2001:db8::2", NULL),
                 0),
              "%s", shimtest_config_said());
    cr_assert(eq(int, shim_cfg.multipath, 0));
    cr_assert(eq(int, shim_cfg.npaths, 2));
    cr_assert(eq(str, shim_cfg.paths[0], "wlan0"));
    cr_assert(eq(str, shim_cfg.paths[1], "wwan0"));
    cr_assert(eq(int, shim_cfg.offer.family, AF_INET6));
    cr_assert(eq(int, load_with("RUDP_MULTIPATH", "handover", "RUDP_OFFER_ADDR", "10.201.9.2",
                                NULL),
                 0));
    cr_assert(eq(int, shim_cfg.multipath, 1));
    cr_assert(eq(int, shim_cfg.offer.family, AF_INET));
    cr_assert(eq(u8, shim_cfg.offer.ip[3], 2));
}

Test(config, each_bad_value_is_refused_by_name)
{
    for (size_t i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
        const char *var = bad_values[i].var, *val = bad_values[i].val;
        cr_assert(setenv("RUDP_STATS", "1", 1) == 0);
        if (strcmp(var, "RUDP_STATS") != 0)
            cr_assert(eq(int, shim_config_load(0), 0), "RUDP_STATS=1 alone loads");
        cr_assert(setenv(var, val, 1) == 0);
        cr_assert(eq(int, shim_config_load(0), -1), "%s=%s refused", var, val);
        char want[256];
        snprintf(want, sizeof want, "librudp_shim: %s=\"%s\" is not valid; expected ", var, val);
        cr_assert(strncmp(shimtest_config_said(), want, strlen(want)) == 0,
                  "said \"%s\", want it to start \"%s\"", shimtest_config_said(), want);
        cr_assert(eq(int, shim_cfg.stats, 0), "%s=%s: what was read is not used", var, val);
        cr_assert(unsetenv(var) == 0);
    }
}

Test(config, limits_are_inclusive)
{
    cr_assert(eq(int, load_with("RUDP_BUFFER", "64K", "RUDP_DATAGRAM", "1200", NULL), 0),
              "%s", shimtest_config_said());
    cr_assert(eq(u32, shim_cfg.rudp.send_buffer, 65536));
    cr_assert(eq(int, load_with("RUDP_BUFFER", "1G", "RUDP_DATAGRAM", "65507",
                                "RUDP_ENGINES", "8", "RUDP_SOURCE_LIMIT", "65535",
                                "RUDP_QLOG_MAX", "4K", "RUDP_MEMORY", "1M",
                                "RUDP_CONNECT_TIMEOUT", "1ms", NULL),
              0),
              "%s", shimtest_config_said());
    cr_assert(eq(u32, shim_cfg.rudp.send_buffer, 1u << 30));
    cr_assert(eq(u32, shim_cfg.rudp.max_datagram, 65507));
    cr_assert(eq(int, shim_cfg.engines, 8));
    cr_assert(eq(u32, shim_cfg.rudp.source_limit, 65535));
    cr_assert(eq(u64, shim_cfg.qlog_max, 4096));
    cr_assert(eq(u64, shim_cfg.memory, 1u << 20));
    cr_assert(eq(u64, shim_cfg.rudp.connect_timeout, RUDP_MS(1)));
}

Test(config, values_valid_alone_but_not_together)
{
    cr_assert(eq(int, load_with("RUDP_KEEPALIVE", "5s", "RUDP_IDLE_TIMEOUT", "5s", NULL), -1));
    cr_assert(strstr(shimtest_config_said(),
                     "RUDP_KEEPALIVE=5s must be shorter than RUDP_IDLE_TIMEOUT=5s") != NULL,
              "%s", shimtest_config_said());
    cr_assert(unsetenv("RUDP_IDLE_TIMEOUT") == 0);
    /* the other side given as its default, in its largest exact unit */
    cr_assert(eq(int, load_with("RUDP_KEEPALIVE", "1h", NULL), -1)); /* "1h" is no duration */
    cr_assert(eq(int, load_with("RUDP_KEEPALIVE", "100m", NULL), -1));
    cr_assert(strstr(shimtest_config_said(), "RUDP_IDLE_TIMEOUT=") != NULL &&
                  strstr(shimtest_config_said(), "(default)") != NULL,
              "%s", shimtest_config_said());
    cr_assert(unsetenv("RUDP_KEEPALIVE") == 0);
    cr_assert(eq(int, load_with("RUDP_BUFFER", "64K", "RUDP_DATAGRAM", "40000", NULL), -1));
    cr_assert(strstr(shimtest_config_said(),
                     "RUDP_BUFFER=64K must hold two datagrams of RUDP_DATAGRAM=40000") != NULL,
              "%s", shimtest_config_said());
}

Test(config, redirect_rules_first_match_wins)
{
    cr_assert(eq(int, load_with("RUDP_REDIRECT", "!10.1.0.0/16, 10.0.0.0/8:80-90,[::1]:443",
                                NULL),
              0),
              "%s", shimtest_config_said());
    cr_assert(eq(int, shim_cfg.nrules, 3));
    cr_assert(not(redirected(v4("10.1.2.3", 85))));  /* excluded first */
    cr_assert(redirected(v4("10.2.3.4", 80)));
    cr_assert(redirected(v4("10.2.3.4", 90)));
    cr_assert(not(redirected(v4("10.2.3.4", 91)))); /* no rule matches: kernel TCP */
    cr_assert(not(redirected(v4("11.0.0.1", 85))));
    cr_assert(redirected(v6("::ffff:10.2.3.4", 85))); /* v4-mapped as IPv4 */
    cr_assert(redirected(v6("::1", 443)));
    cr_assert(not(redirected(v6("::1", 444))));
    cr_assert(not(redirected(v6("::2", 443))));
}

Test(config, redirect_port_alone_and_none)
{
    cr_assert(eq(int, load_with("RUDP_REDIRECT", ":8080", NULL), 0));
    cr_assert(redirected(v4("192.0.2.7", 8080)));
    cr_assert(redirected(v6("2001:db8::7", 8080)));
    cr_assert(not(redirected(v4("192.0.2.7", 8081))));
    cr_assert(eq(int, load_with("RUDP_REDIRECT", "none", NULL), 0));
    cr_assert(eq(int, shim_cfg.nrules, 0));
    cr_assert(not(redirected(v4("127.0.0.1", 80))));
}

Test(config, unknown_variable_warned_with_the_near_name)
{
    const char *log = write_file("log", "", 0600);
    cr_assert(eq(int, load_with("RUDP_LOG_FILE", log, "RUDP_LGO", "debug",
                                "RUDP_SOMETHING_ELSE", "1", NULL),
              0));
    const char *text = read_file(log);
    /* the name alone: a value may be a secret meant for another program */
    cr_assert(strstr(text, "warn: unknown variable RUDP_LGO; did you mean RUDP_LOG?\n") != NULL,
              "%s", text);
    cr_assert(strstr(text, "warn: unknown variable RUDP_SOMETHING_ELSE (rudp-run --help lists "
                           "the settings)\n") != NULL,
              "%s", text);
}

Test(config, unknown_variables_not_warned_when_checking_only)
{
    const char *log = write_file("log", "", 0600);
    cr_assert(setenv("RUDP_LOG_FILE", log, 1) == 0);
    cr_assert(setenv("RUDP_LGO", "debug", 1) == 0);
    cr_assert(eq(int, shim_config_load(1), 0));
    cr_assert(eq(str, read_file(log), ""));
}

Test(config, log_file_never_through_a_symbolic_link)
{
    const char *log = write_file("real-log", "", 0600);
    char link[256];
    snprintf(link, sizeof link, "%s/link", tmpdir());
    cr_assert(symlink(log, link) == 0);
    cr_assert(eq(int, load_with("RUDP_LOG_FILE", link, NULL), -1));
    char want[300];
    snprintf(want, sizeof want, "RUDP_LOG_FILE=\"%s\" is not valid", link);
    cr_assert(strstr(shimtest_config_said(), want) != NULL, "%s", shimtest_config_said());
}

Test(config, key_file_turns_plain_tcp_paths_off)
{
    const char *key = write_file("key", KEY_HEX, 0600);
    cr_assert(eq(int, load_with("RUDP_KEY_FILE", key, NULL), 0), "%s", shimtest_config_said());
    cr_assert(shim_key() != NULL);
    cr_assert(eq(u8, shim_key()[0], 0x00));
    cr_assert(eq(u8, shim_key()[1], 0x11));
    cr_assert(eq(u8, shim_key()[31], 0xff));
    /* keyed: no plaintext path unless asked */
    cr_assert(eq(int, shim_cfg.accept_tcp, 0));
    cr_assert(eq(int, shim_cfg.fallback, 0));
    cr_assert(eq(int, load_with("RUDP_FALLBACK", "tcp", NULL), 0));
    cr_assert(eq(int, shim_cfg.fallback, 1));
}

Test(config, key_file_others_may_read_is_refused)
{
    const char *key = write_file("key", KEY_HEX, 0644);
    cr_assert(eq(int, load_with("RUDP_KEY_FILE", key, NULL), -1));
    char want[300];
    snprintf(want, sizeof want, "librudp_shim: RUDP_KEY_FILE=\"%s\" has mode 0644", key);
    cr_assert(strncmp(shimtest_config_said(), want, strlen(want)) == 0, "%s",
              shimtest_config_said());
}

Test(config, reset_id_needs_a_key_and_at_most_255_bytes)
{
    cr_assert(eq(int, load_with("RUDP_RESET_ID", "server-a", NULL), -1));
    cr_assert(strstr(shimtest_config_said(), "RUDP_RESET_ID=\"server-a\" is not valid; expected "
                                             "set together with RUDP_KEY_FILE") != NULL,
              "%s", shimtest_config_said());
    const char *key = write_file("key", KEY_HEX, 0600);
    char name[257];
    memset(name, 'n', 255);
    name[255] = '\0';
    cr_assert(eq(int, load_with("RUDP_KEY_FILE", key, "RUDP_RESET_ID", name, NULL), 0),
              "%s", shimtest_config_said());
    cr_assert(eq(str, shim_cfg.reset_id, name));
    name[255] = 'n';
    name[256] = '\0';
    cr_assert(eq(int, load_with("RUDP_RESET_ID", name, NULL), -1));
    cr_assert(strstr(shimtest_config_said(), "a name of 1 to 255 bytes") != NULL);
}

Test(config, refusal_says_the_line_once_and_eacces)
{
    const char *log = write_file("log", "", 0600);
    /* stderr, where the line also goes, into a file of its own */
    const char *err = write_file("stderr", "", 0600);
    int efd = open(err, O_WRONLY | O_APPEND | O_CLOEXEC);
    cr_assert(efd >= 0 && dup2(efd, 2) == 2);
    close(efd);
    cr_assert(eq(int, load_with("RUDP_LOG_FILE", log, "RUDP_ENGINES", "many", NULL), -1));
    cr_assert(eq(int, shim_config_refuse(), -EACCES));
    cr_assert(eq(int, shim_config_refuse(), -EACCES));
    const char *paths[] = {log, err};
    for (int i = 0; i < 2; i++) {
        const char *text = read_file(paths[i]);
        const char *first = strstr(text, "librudp_shim: RUDP_ENGINES=\"many\" is not valid");
        cr_assert(first != NULL, "%s: %s", paths[i], text);
        cr_assert(strstr(first, "fail with EACCES\n") != NULL, "%s", text);
        cr_assert(eq(ptr, strstr(strchr(first, '\n'), "RUDP_ENGINES"), NULL), "once: %s", text);
    }
}
