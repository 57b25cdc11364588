/*
 * progutil.c: the helpers every test program shares (see progutil.h).
 */
#include "progutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <stdint.h>
#include <signal.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void (*prog_on_fail)(void);
volatile sig_atomic_t prog_bounded_wait;

/* The failure's line on stderr, after prefix, and prog_on_fail. */
static void say_failure(const char *prefix, const char *fmt, va_list ap)
{
    fflush(stdout);
    fputs(prefix, stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    if (prog_on_fail)
        prog_on_fail();
}

void failf(int line, const char *fmt, ...)
{
    char prefix[256];
    va_list ap;
    snprintf(prefix, sizeof prefix, "FAIL: %s:%d: ", prog_name, line);
    va_start(ap, fmt);
    say_failure(prefix, fmt, ap);
    va_end(ap);
    exit(1);
}

void differs(const char *fmt, ...)
{
    char prefix[256];
    va_list ap;
    snprintf(prefix, sizeof prefix, "%s: ", prog_name);
    va_start(ap, fmt);
    say_failure(prefix, fmt, ap);
    va_end(ap);
    exit(1);
}

void die(const char *what)
{
    differs("%s: %s", what, strerror(errno));
}

static void on_alarm(int sig)
{
    static const char msg[] = "FAIL: watchdog: the test did not finish in time\n";
    (void)sig;
    if (prog_bounded_wait)
        return; /* the blocked call returns EINTR */
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    if (prog_on_fail)
        prog_on_fail();
    _exit(3);
}

void watchdog(unsigned secs)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a blocked read() returns EINTR */
    sigaction(SIGALRM, &sa, NULL);
    alarm(secs);
}

void prog_begin(int argc, unsigned watchdog_secs)
{
    if (argc != 1) {
        fprintf(stderr, "usage: %s\n", prog_name);
        exit(2);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    watchdog(watchdog_secs);
}

ssize_t read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    return n > 0 ? n : -1;
}

char thread_state(pid_t tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    if (read_small(path, buf, sizeof buf) < 0)
        return 0;
    const char *p = strrchr(buf, ')'); /* the name may hold anything */
    return p && p[1] == ' ' ? p[2] : 0;
}

long current_syscall(pid_t tid)
{
    char path[64], buf[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    if (read_small(path, buf, sizeof buf) < 0)
        return -1;
    long nr = -1;
    if (sscanf(buf, "%ld", &nr) != 1)
        nr = -1;
    return nr;
}

double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

short poll_for(int fd, short events, int ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    int r = poll(&p, 1, ms);
    if (r < 0)
        die("poll");
    return r == 1 ? p.revents : 0;
}

/* s added to the string in dst, cut to cap bytes with its NUL. */
static void append(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(dst);
    while (*s && n + 1 < cap)
        dst[n++] = *s++;
    dst[n] = '\0';
}

/* Whether /proc/net/TABLE (proc names /proc as dir sees it: see
 * transport) lists inode ino in the given field of a line (counted from 0,
 * separated by blanks: 9 in tcp and tcp6, 6 in unix). Read with read(2)
 * into the stack and parsed a byte at a time, so that a line of any length
 * (a long socket path) is read as it is, and nothing is allocated (see
 * fd_transport in progutil.h). */
static bool inode_listed(int dir, const char *proc, const char *table, unsigned long ino,
                         int field)
{
    char path[64] = "";
    append(path, sizeof path, proc);
    append(path, sizeof path, "net/");
    append(path, sizeof path, table);
    int fd = openat(dir, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char buf[512];
    bool found = false, in_token = false, digits = false;
    int token = -1;
    unsigned long v = 0;
    ssize_t n;
    while (!found && (n = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n && !found; i++) {
            char c = buf[i];
            if (c == ' ' || c == '\t' || c == '\n') {
                /* the heading's field is a word, never taken for a number */
                found = in_token && token == field && digits && v == ino;
                in_token = false;
                if (c == '\n')
                    token = -1;
                continue;
            }
            if (!in_token) {
                in_token = true;
                token++;
                v = 0;
                digits = true;
            }
            if (token != field)
                continue;
            if (c >= '0' && c <= '9')
                v = v * 10 + (unsigned long)(c - '0');
            else
                digits = false;
        }
    }
    close(fd);
    return found;
}

/* fd_transport_at's work; proc names /proc as dir sees it: "/proc/" for
 * AT_FDCWD, "" for a descriptor of /proc itself. */
static const char *transport(int dir, const char *proc, int fd)
{
    char num[16], *d = num + sizeof num;
    unsigned u = (unsigned)fd;
    *--d = '\0';
    do
        *--d = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    char path[64] = "", link[64];
    append(path, sizeof path, proc);
    append(path, sizeof path, "self/fd/");
    append(path, sizeof path, d);
    ssize_t n = readlinkat(dir, path, link, sizeof link - 1);
    if (n < 0)
        return "unknown";
    link[n] = '\0';
    static const char pre[] = "socket:["; /* then the inode and ']' */
    if (n <= (ssize_t)sizeof pre || strncmp(link, pre, sizeof pre - 1) != 0 || link[n - 1] != ']')
        return "not-a-socket";
    unsigned long ino = 0;
    for (const char *p = link + sizeof pre - 1; p < link + n - 1; p++) {
        if (*p < '0' || *p > '9')
            return "not-a-socket";
        ino = ino * 10 + (unsigned long)(*p - '0');
    }
    if (inode_listed(dir, proc, "tcp", ino, 9) || inode_listed(dir, proc, "tcp6", ino, 9))
        return "tcp";
    if (inode_listed(dir, proc, "unix", ino, 6))
        return "unix";
    return "other";
}

const char *fd_transport(int fd)
{
    return transport(AT_FDCWD, "/proc/", fd);
}

const char *fd_transport_at(int procfd, int fd)
{
    return transport(procfd, "", fd);
}

const char *fam_name(int family)
{
    return family == AF_INET ? "IPv4" : "IPv6";
}

int family_usable(int family, const char *what)
{
    static int v6 = -1; /* 1: ::1 takes a bind; 0: it does not (why) */
    static char why[64];
    if (family != AF_INET6)
        return 1;
    if (v6 < 0) {
        int s = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
        v6 = s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0;
        if (!v6)
            snprintf(why, sizeof why, "%s of ::1: %s", s < 0 ? "socket" : "bind",
                     strerror(errno));
        if (s >= 0)
            close(s);
    }
    if (!v6)
        printf("skip: no IPv6 loopback here (%s): %s\n", why, what);
    return v6;
}

/* Loopback address of family with port (host order). */
socklen_t loopback(int family, unsigned port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return sizeof *sin;
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    sin6->sin6_addr = in6addr_loopback;
    return sizeof *sin6;
}

unsigned port_of(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

unsigned port_of_fd(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    SYS(getsockname(fd, (struct sockaddr *)&ss, &sl));
    return port_of(&ss);
}

struct sockaddr_in ipv4_addr(const char *host, unsigned port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
        die("address");
    return a;
}

void read_exact(int fd, void *buf, size_t len, int ms)
{
    size_t got = 0;
    while (got < len) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int n = poll(&p, 1, ms);
        SYS(n);
        CHECK(n == 1, "no data within %d ms (have %zu of %zu bytes)", ms, got, len);
        ssize_t r = read(fd, (char *)buf + got, len - got);
        CHECK(r > 0, "read: %s", r == 0 ? "EOF" : strerror(errno));
        got += (size_t)r;
    }
}

size_t read_to_eof(int fd, char *buf, size_t cap, int ms)
{
    size_t have = 0;
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int n = poll(&p, 1, ms);
        SYS(n);
        CHECK(n == 1, "no data or EOF within %d ms (have %zu bytes)", ms, have);
        ssize_t r = read(fd, buf + have, cap - 1 - have);
        CHECK(r >= 0, "read: %s", strerror(errno));
        if (r == 0)
            break;
        have += (size_t)r;
        CHECK(have < cap - 1, "more than %zu bytes before EOF", cap - 2);
    }
    buf[have] = '\0';
    return have;
}

int send_fd(int u, int fd)
{
    char b = 'f';
    struct iovec io = {&b, 1};
    char cb[CMSG_SPACE(sizeof(int))];
    memset(cb, 0, sizeof cb);
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = cb,
                       .msg_controllen = sizeof cb};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    return sendmsg(u, &m, 0) == 1 ? 0 : -1;
}

int recv_fd(int u)
{
    char b;
    struct iovec io = {&b, 1};
    char cb[CMSG_SPACE(sizeof(int))];
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = cb,
                       .msg_controllen = sizeof cb};
    if (recvmsg(u, &m, 0) != 1)
        return -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    if (!c || c->cmsg_type != SCM_RIGHTS)
        return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

void write_exact(int fd, const void *buf, size_t len)
{
    const char *b = buf;
    while (len > 0) {
        ssize_t w = write(fd, b, len);
        if (w < 0 && errno == EINTR)
            continue;
        SYS(w);
        b += w;
        len -= (size_t)w;
    }
}

int so_error(int fd)
{
    int err = -1;
    socklen_t len = sizeof err;
    SYS(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len));
    return err;
}

int tcpi_state(int fd)
{
    struct tcp_info ti;
    socklen_t l = sizeof ti;
    memset(&ti, 0, sizeof ti);
    SYS(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l));
    return ti.tcpi_state;
}

/* At byte 128 of the kernel's struct tcp_info (include/uapi/linux/tcp.h:
 * 8 bytes of u8 fields, 24 u32, then pacing_rate, max_pacing_rate,
 * bytes_acked and bytes_received, u64 each; the struct only grows at its
 * end). */
uint64_t tcpi_bytes_received(int fd)
{
    uint64_t ti[32];
    socklen_t l = sizeof ti;
    memset(ti, 0, sizeof ti);
    SYS(getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &l));
    CHECK(l >= 136, "TCP_INFO gave %u bytes, no tcpi_bytes_received", (unsigned)l);
    return ti[128 / 8];
}

void loopback_pair(int family, int *c, int *a)
{
    struct sockaddr_storage la;
    socklen_t llen = loopback(family, 0, &la);
    int l = socket(family, SOCK_STREAM, 0);
    SYS(l);
    SYS(bind(l, (struct sockaddr *)&la, llen));
    SYS(listen(l, 4));
    socklen_t got = sizeof la;
    SYS(getsockname(l, (struct sockaddr *)&la, &got));
    *c = socket(family, SOCK_STREAM, 0);
    SYS(*c);
    SYS(connect(*c, (struct sockaddr *)&la, llen));
    *a = accept(l, NULL, NULL);
    SYS(*a);
    close(l);
}

int bound_loopback(int family, struct sockaddr_storage *ss, socklen_t *len)
{
    int s = socket(family, SOCK_STREAM, 0);
    SYS(s);
    *len = loopback(family, 0, ss);
    SYS(bind(s, (struct sockaddr *)ss, *len));
    SYS(getsockname(s, (struct sockaddr *)ss, len));
    return s;
}

int getsockopt_int(int fd, int level, int opt)
{
    int v = -1;
    socklen_t l = sizeof v;
    SYS(getsockopt(fd, level, opt, &v, &l));
    return v;
}

void setsockopt_int(int fd, int level, int opt, int v)
{
    SYS(setsockopt(fd, level, opt, &v, sizeof v));
}

int accept_ready(int l, int ms)
{
    struct pollfd p = {.fd = l, .events = POLLIN};
    int n = poll(&p, 1, ms);
    SYS(n);
    CHECK(n == 1, "no connection to accept within %d ms", ms);
    int a = accept(l, NULL, NULL);
    SYS(a);
    return a;
}

long fill_until_refused(int fd)
{
    static char big[65536];
    long total = 0;
    for (int rounds_left = 20; rounds_left > 0; rounds_left--) {
        ssize_t w;
        while ((w = write(fd, big, sizeof big)) > 0)
            total += w;
        CHECK(errno == EAGAIN, "write: %s", strerror(errno));
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, 500) == 0)
            break;
    }
    return total;
}

static pid_t fail_kill = -1;

static void kill_it(void)
{
    if (fail_kill > 0)
        kill(fail_kill, SIGKILL);
}

void kill_on_fail(pid_t pid)
{
    fail_kill = pid;
    prog_on_fail = kill_it;
}

unsigned char pattern_byte(uint64_t i)
{
    return (unsigned char)(i * 2654435761u >> 13);
}

long long pattern_fill(int fd, uint64_t max)
{
    static unsigned char buf[65536];
    uint64_t sent = 0;
    while (sent < max) {
        size_t n = sizeof buf;
        if (n > max - sent)
            n = (size_t)(max - sent);
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern_byte(sent + i);
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            /* full: wait a little for more room, then call it a day */
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            if (poll(&pf, 1, 200) == 0)
                break;
            continue;
        }
        if (w <= 0)
            return -1;
        sent += (uint64_t)w;
    }
    return (long long)sent;
}

uint64_t pattern_drain(int fd, uint64_t max, int ms, const char *what)
{
    static unsigned char buf[65536];
    uint64_t got = 0;
    for (;;) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        CHECK(poll(&pf, 1, ms) == 1, "%s: read %llu of the %llu bytes accepted, then nothing "
              "for %d ms", what, (unsigned long long)got, (unsigned long long)max, ms);
        ssize_t r = read(fd, buf, sizeof buf);
        CHECK(r >= 0, "%s: read after %llu of %llu bytes: %s", what, (unsigned long long)got,
              (unsigned long long)max, strerror(errno));
        if (r == 0)
            return got;
        for (ssize_t i = 0; i < r; i++)
            CHECK(buf[i] == pattern_byte(got + (uint64_t)i), "%s: byte %llu differs", what,
                  (unsigned long long)(got + (uint64_t)i));
        got += (uint64_t)r;
        CHECK(got <= max, "%s: more bytes (%llu) than the writer's %llu", what,
              (unsigned long long)got, (unsigned long long)max);
    }
}

int reap_within(pid_t pid, int ms, const char *what)
{
    double t0 = now_s();
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        CHECK(r >= 0, "%s: waitpid: %s", what, strerror(errno));
        if (r == pid)
            return st;
        CHECK(now_s() - t0 < ms / 1000.0, "%s: the child did not end", what);
        poll(NULL, 0, 5);
    }
}

unsigned long raise_fd_limit(void)
{
    struct rlimit rl;
    SYS(getrlimit(RLIMIT_NOFILE, &rl));
    rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want;
        SYS(setrlimit(RLIMIT_NOFILE, &rl));
    }
    return (unsigned long)rl.rlim_cur;
}

/* The number of this process's fds whose link starts with prefix (NULL:
 * any) at fd >= min, each named on stderr if tell. */
int fds_linked_from(const char *prefix, int min, int tell)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    struct dirent *en;
    int n = 0;
    while ((en = readdir(d))) {
        if (en->d_name[0] == '.' || atoi(en->d_name) < min || atoi(en->d_name) == dirfd(d))
            continue;
        char p[300], t[256];
        snprintf(p, sizeof p, "/proc/self/fd/%s", en->d_name);
        ssize_t k = readlink(p, t, sizeof t - 1);
        if (k <= 0)
            continue;
        t[k] = '\0';
        if (prefix && strncmp(t, prefix, strlen(prefix)) != 0)
            continue;
        n++;
        if (tell)
            fprintf(stderr, "FAIL: an image without the shim holds fd %s -> %s\n", en->d_name, t);
    }
    closedir(d);
    return n;
}

char **env_without_preload(void)
{
    extern char **environ;
    static char *env[1024];
    size_t k = 0;
    for (size_t i = 0; environ[i] && k < 1023; i++)
        if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0)
            env[k++] = environ[i];
    env[k] = NULL;
    return env;
}

/* The fds open in this process that an exec passes on (not
 * close-on-exec), as "a,b,c" into out; the directory's own left out. */
void fds_passed(char *out, size_t cap)
{
    DIR *d = opendir("/proc/self/fd");
    CHECK(d, "/proc/self/fd: %s", strerror(errno));
    size_t at = 0;
    out[0] = '\0';
    struct dirent *en;
    while ((en = readdir(d))) {
        int fd = atoi(en->d_name);
        if (en->d_name[0] == '.' || fd == dirfd(d) || (fcntl(fd, F_GETFD) & FD_CLOEXEC))
            continue;
        at += (size_t)snprintf(out + at, cap - at, "%s%d", at ? "," : "", fd);
        CHECK(at < cap, "too many fds open");
    }
    closedir(d);
}

unsigned bind_lo(int s, unsigned port)
{
    struct sockaddr_storage ss;
    socklen_t sl = loopback(AF_INET, port, &ss);
    SYS(bind(s, (struct sockaddr *)&ss, sl));
    sl = sizeof ss;
    SYS(getsockname(s, (struct sockaddr *)&ss, &sl));
    return port_of(&ss);
}

int epoll_set_of(const int *fds, int from, int n, uint32_t events)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    SYS(ep);
    for (int i = from; i < from + n; i++) {
        struct epoll_event ev = {.events = events, .data.u32 = (uint32_t)i};
        SYS(epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev));
    }
    return ep;
}

int connect_lo(unsigned port)
{
    int c = socket(AF_INET, SOCK_STREAM, 0);
    SYS(c);
    struct sockaddr_storage ss;
    socklen_t sl = loopback(AF_INET, port, &ss);
    SYS(connect(c, (struct sockaddr *)&ss, sl));
    return c;
}

int listen_lo_at(int fd, unsigned port, int backlog)
{
    int one = 1;
    struct sockaddr_storage ss;
    socklen_t sl = loopback(AF_INET, port, &ss);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0)
        return -1;
    return listen(fd, backlog);
}

int listener_lo(unsigned port, int backlog)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0 || listen_lo_at(l, port, backlog) < 0)
        die("listen");
    return l;
}

int connect_host(const char *host, unsigned port, int nb, int ms)
{
    struct sockaddr_in a = ipv4_addr(host, port);
    int s = socket(AF_INET, SOCK_STREAM | (nb ? SOCK_NONBLOCK : 0), 0);
    if (s < 0)
        die("socket");
    if (connect(s, (struct sockaddr *)&a, sizeof a) == 0)
        return s;
    if (!nb || errno != EINPROGRESS)
        die("connect");
    /* POLLOUT within ms, as TCP gives it with the answer. A supervised
     * program's refused connect may show POLLERR|POLLHUP a moment before
     * POLLOUT (docs/limits.md): asked again, until POLLOUT comes. */
    double until = now_s() + ms / 1e3;
    short ev = poll_for(s, POLLOUT, ms);
    while ((ev & (POLLERR | POLLHUP)) && !(ev & POLLOUT) && now_s() < until)
        ev = poll_for(s, POLLOUT, 1);
    if (!(ev & POLLOUT))
        differs("no POLLOUT within %d ms after a non-blocking connect (revents %#x)", ms,
                (unsigned)(unsigned short)ev);
    int err = so_error(s);
    if (err) {
        errno = err;
        die("connect (SO_ERROR)");
    }
    return s;
}

int pair_lo(unsigned port, int *c, int *a)
{
    int l = listener_lo(port, 1);
    *c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in to = ipv4_addr("127.0.0.1", port);
    if (*c < 0 || connect(*c, (struct sockaddr *)&to, sizeof to) < 0)
        die("connect");
    *a = accept(l, NULL, NULL);
    if (*a < 0)
        die("accept");
    return l;
}

void echo_pattern(int s, size_t n, int ms)
{
    fcntl(s, F_SETFL, fcntl(s, F_GETFL) & ~O_NONBLOCK);
    unsigned char buf[65536];
    size_t sent = 0, got = 0;
    if (n == 0 && shutdown(s, SHUT_WR) < 0)
        die("shutdown");
    while (sent < n || got < n) {
        short re = poll_for(s, POLLIN | (sent < n ? POLLOUT : 0), ms);
        if (!re)
            differs("the echo stalled: nothing for %d ms (%zu sent, %zu of %zu echoed)", ms,
                    sent, got, n);
        if (sent < n && (re & POLLOUT)) {
            size_t k = n - sent < sizeof buf ? n - sent : sizeof buf;
            for (size_t i = 0; i < k; i++)
                buf[i] = pattern_byte(sent + i);
            ssize_t w = send(s, buf, k, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w < 0 && errno != EAGAIN)
                die("send");
            if (w > 0 && (sent += (size_t)w) == n && shutdown(s, SHUT_WR) < 0)
                die("shutdown");
        }
        if (re & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = recv(s, buf, sizeof buf, MSG_DONTWAIT);
            if (r < 0 && errno != EAGAIN)
                die("recv");
            if (r == 0)
                differs("EOF after %zu of %zu bytes", got, n);
            for (ssize_t i = 0; i < r; i++)
                if (buf[i] != pattern_byte(got + (size_t)i))
                    differs("byte %zu differs", got + (size_t)i);
            if (r > 0)
                got += (size_t)r;
        }
    }
    char c;
    if (read(s, &c, 1) != 0)
        differs("no EOF after the echo");
}

pid_t fork_listener(unsigned *port, void (*serve)(int l))
{
    int pp[2];
    SYS(pipe(pp));
    pid_t pid = fork();
    SYS(pid);
    if (pid == 0) {
        close(pp[0]);
        int l = listener_lo(0, 64);
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getsockname(l, (struct sockaddr *)&ss, &sl) < 0)
            _exit(1);
        unsigned p = port_of(&ss);
        if (write(pp[1], &p, sizeof p) != (ssize_t)sizeof p)
            _exit(1);
        close(pp[1]);
        serve(l);
        _exit(1);
    }
    close(pp[1]);
    ssize_t n = read(pp[0], port, sizeof *port);
    close(pp[0]);
    if (n != (ssize_t)sizeof *port) {
        kill(pid, SIGKILL);
        failf(__LINE__, "the server said no port");
    }
    return pid;
}

static void *echo_thread(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[8192];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            break;
        write_exact(fd, buf, (size_t)n);
    }
    close(fd);
    return NULL;
}

void serve_echo_threads(int l)
{
    for (;;) {
        int fd = accept(l, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            _exit(1);
        }
        pthread_t t;
        if (pthread_create(&t, NULL, echo_thread, (void *)(intptr_t)fd) != 0)
            _exit(1);
        pthread_detach(t);
    }
}

void echo_clients(pid_t *server, unsigned *port, int *fds, int n)
{
    *server = fork_listener(port, serve_echo_threads);
    for (int i = 0; i < n; i++) {
        fds[i] = connect_lo(*port);
        CHECK(fds[i] >= 0, "connect %d: %s", i, strerror(errno));
    }
    printf("transport: %s (client)\n", fd_transport(fds[0]));
}
