/*
 * rudp-stat [--verbose] [--watch[=SECS]] [PID...]: what a running process
 * under the shim (or its keeper) is doing, like `ss -ti`: every rudp
 * connection with its addresses, state, age, cipher (keyed mode) or
 * "plain", RTT, window, rates, bytes, losses and congestion-control phase,
 * its listeners, and with --verbose the engine's counters (with a key, the
 * handshakes rejected and the datagrams that failed authentication), as
 * ss keeps counters to netstat -s. The process writes all of it
 * (shim/engine/control.c); this tool finds, asks and prints.
 *
 * Every process whose engine runs listens on an AF_UNIX socket with the
 * abstract name "@rudp-ctl/<pid>/<64 random bits>" (shim/engine/control.c says
 * why). This tool finds it: the socket inodes in /proc/PID/fd (readable
 * only by the owner and root, itself a first check) matched with the
 * listening sockets of /proc/net/unix. When /proc/PID/fd cannot be read it
 * tries every name that carries PID (anyone may bind a lookalike), and the
 * process itself refuses anyone but its owner and root. Either way the
 * report is believed only from the process asked about: the listening
 * socket's SO_PEERCRED pid must be PID. Each query has one deadline (5 s
 * for every candidate, the connection and the answer together) and a size
 * cap, and only printable ASCII, newlines and tabs of what a process says
 * (or of its /proc/PID/comm) reach the terminal: a process may be someone
 * else's, and could otherwise send terminal escapes.
 *
 * The name is abstract, so per network namespace: a process in another
 * (a container's, an `ip netns` one's) is listed in /proc/PID/net/unix,
 * and reached from a socket made in its namespace (setns: root).
 *
 * Without PID: every process of the caller (root: every process, in every
 * network namespace) that has a control socket. --watch repeats every
 * SECS seconds (default 1) until interrupted. Exit status: 0, 1 if any process could not be read, 2 on a
 * usage error; a listing leaves out, as ps and ss do, a process that ended
 * (or closed its control socket) between the listing and its answer.
 *
 * A program under the supervisor (rudp-run, docs/reach.md) has its engine
 * in the supervisor's serving process, "rudp-supervise --serve FD PID
 * MODE", neither its parent nor an ancestor: PID found there (the program,
 * a child it made, or the supervisor the user started) is answered by it.
 *
 * A plain program: it is not linked with the shim and needs none.
 */
#include <ctype.h>
#include <dirent.h>
#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <sched.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PREFIX "@rudp-ctl/"
/* The line before the engine counters in a report (shim/engine/control.c):
 * shown with --verbose only. */
#define COUNTERS "counters:\n"
#define TIMEOUT_MS 5000 /* one query: connecting (every candidate) and reading */
#define MAX_INODES 65536
/* The process cuts its report at 64 MiB (shim/engine/control.c); a margin for the
 * cut notice. More than this is not a report. */
#define MAX_ANSWER ((64u << 20) + (1u << 16))

static void usage(FILE *f)
{
    fprintf(f, "usage: rudp-stat [--verbose] [--watch[=SECS]] [PID...]\n"
               "  Shows the rudp connections and listeners of processes running under\n"
               "  librudp_shim (and of their keepers), like `ss -ti`: two lines a connection.\n"
               "  Without PID: every such process of yours (root: all, in every network\n"
               "  namespace).\n"
               "  -v, --verbose       the engine counters too (those RUDP_STATS prints)\n"
               "  -w, --watch[=SECS]  refresh every SECS seconds (default 1) until interrupted\n"
               "  Only the owner of a process (or root) may read it.\n");
}

/* What a process wrote, made safe to print: bytes other than printable
 * ASCII, newline and tab become '?'. */
static void printable(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(c >= 0x20 && c < 0x7f) && c != '\n' && c != '\t')
            s[i] = '?';
    }
}

static int verbose; /* --verbose: the engine counters too */

/* How much of a report to print: up to its counters unless --verbose, as
 * ss shows a socket's keys and netstat -s the counters. */
static size_t report_len(const char *buf, size_t n)
{
    if (verbose)
        return n;
    size_t k = sizeof COUNTERS - 1;
    for (size_t at = 0; at + k <= n;) {
        if (memcmp(buf + at, COUNTERS, k) == 0)
            return at;
        const char *nl = memchr(buf + at, '\n', n - at);
        if (!nl)
            break;
        at = (size_t)(nl - buf) + 1;
    }
    return n;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void comm_of(int pid, char *out, size_t n)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/comm", pid);
    FILE *f = fopen(path, "r");
    snprintf(out, n, "?");
    if (f) {
        if (fgets(out, (int)n, f))
            out[strcspn(out, "\n")] = 0;
        fclose(f);
    }
    printable(out, strlen(out));
}

static int cmp_ul(const void *a, const void *b)
{
    unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
    return x < y ? -1 : x > y;
}

/* The socket inodes among the fds of path (a /proc fd directory), from
 * ino[n] on: the new n, or -errno if unreadable. */
static long dir_socket_inodes(const char *path, unsigned long *ino, long n, long max)
{
    DIR *d = opendir(path);
    if (!d)
        return -errno;
    struct dirent *de;
    while ((de = readdir(d)) && n < max) {
        char lp[PATH_MAX], target[128];
        snprintf(lp, sizeof lp, "%s/%s", path, de->d_name);
        ssize_t l = readlink(lp, target, sizeof target - 1);
        if (l <= 0)
            continue;
        target[l] = 0;
        if (sscanf(target, "socket:[%lu]", &ino[n]) == 1)
            n++;
    }
    closedir(d);
    return n;
}

/* The socket inodes among /proc/PID/fd and, where a thread has a table of
 * its own (the shim's engine with RUDP_FD_TABLE=own holds the control
 * socket there; kcmp tells, or every thread is read when it cannot),
 * /proc/PID/task/TID/fd: sorted; -errno if the first is unreadable. */
static long socket_inodes(int pid, unsigned long *ino, long max)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    long n = dir_socket_inodes(path, ino, 0, max);
    if (n < 0)
        return n;
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *t = opendir(path);
    struct dirent *de;
    while (t && (de = readdir(t)) && n < max) {
        int tid = atoi(de->d_name);
        if (tid <= 0 || tid == pid || syscall(SYS_kcmp, pid, tid, KCMP_FILES, 0, 0) == 0)
            continue;
        char tpath[96];
        snprintf(tpath, sizeof tpath, "/proc/%d/task/%d/fd", pid, tid);
        long m = dir_socket_inodes(tpath, ino, n, max);
        if (m > 0)
            n = m;
    }
    if (t)
        closedir(t);
    qsort(ino, (size_t)n, sizeof *ino, cmp_ul);
    return n;
}

/* One listening control socket of `table` (/proc/net/unix: this network
 * namespace's; /proc/PID/net/unix: PID's) at a time: calls fn with the pid
 * its name carries (in its own pid namespace), its inode and name (after
 * '@') until fn returns nonzero. */
static int each_control_socket(const char *table,
                               int (*fn)(void *, int, unsigned long, const char *), void *arg)
{
    FILE *f = fopen(table, "r");
    if (!f)
        return -errno;
    char line[512];
    int r = 0;
    if (!fgets(line, sizeof line, f)) /* the header */
        goto out;
    while (!r && fgets(line, sizeof line, f)) {
        unsigned long flags, ino;
        unsigned type, st;
        char path[256] = "";
        if (sscanf(line, "%*s %*s %*s %lx %x %x %lu %255s", &flags, &type, &st, &ino, path) < 5)
            continue;
        /* a listening stream socket (__SO_ACCEPTCON); accepted ones share its name */
        if (type != SOCK_STREAM || !(flags & 0x10000) ||
            strncmp(path, PREFIX, strlen(PREFIX)) != 0)
            continue;
        int pid = atoi(path + strlen(PREFIX));
        if (pid > 0)
            r = fn(arg, pid, ino, path + 1);
    }
out:
    fclose(f);
    return r;
}

struct candidate {
    char name[256];
    int pending; /* not yet settled (connect_trusted) */
};

struct lookup {
    int pid;
    const unsigned long *ino; /* NULL: match by name only */
    long nino;
    int netns;                /* an fd of pid's network namespace where it is not
                               * ours (its control socket is reached from there),
                               * or NETNS_OURS, NETNS_SHUT */
    size_t n, cap;            /* candidates found: no limit a squatter could fill */
    struct candidate *c;
};

static int match(void *arg, int pid, unsigned long ino, const char *name)
{
    struct lookup *l = arg;
    /* Known by its inode among pid's fds, a socket is pid's whatever pid its
     * name says (a container's pid namespace numbers its own); by name
     * alone, the pid it carries must be pid. */
    if (l->ino ? !bsearch(&ino, l->ino, (size_t)l->nino, sizeof ino, cmp_ul) : pid != l->pid)
        return 0; /* a lookalike name held by some other process */
    /* By name alone, a lookalike bound by anyone may come first: keep
     * every candidate; the SO_PEERCRED check picks. */
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        struct candidate *c = realloc(l->c, cap * sizeof *c);
        if (!c)
            return -ENOMEM;
        l->c = c;
        l->cap = cap;
    }
    snprintf(l->c[l->n++].name, sizeof l->c[0].name, "%s", name);
    return 0;
}

/* This process's own network namespace, to come back to (-1: not opened
 * yet, or not to be had). */
static int home_netns = -1;

/* lookup.netns: ours; another that could not be opened (not root) */
#define NETNS_OURS (-1)
#define NETNS_SHUT (-2)

/* A socket of the network namespace netns (an fd, or NETNS_*): an abstract
 * name is looked up in the namespace of the socket that connects. Entering
 * another takes CAP_SYS_ADMIN there (root). The fd, or -errno. */
static int socket_in(int netns)
{
    if (netns == NETNS_OURS)
        return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (netns == NETNS_SHUT)
        return -EPERM;
    if (home_netns == -1)
        home_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home_netns < 0)
        return -ENOENT;
    if (setns(netns, CLONE_NEWNET) < 0)
        return -errno;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int err = fd < 0 ? errno : 0;
    if (setns(home_netns, CLONE_NEWNET) < 0) {
        fprintf(stderr, "rudp-stat: cannot return to its own network namespace: %s\n",
                strerror(errno));
        exit(1);
    }
    return fd < 0 ? -err : fd;
}

/* A connection to the abstract name `name` in network namespace netns (-1:
 * ours), non-blocking: the fd, or -errno. */
static int connect_name(const char *name, int netns)
{
    struct sockaddr_un un;
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    size_t nl = strlen(name);
    if (nl + 1 > sizeof un.sun_path)
        return -ENAMETOOLONG;
    memcpy(un.sun_path + 1, name, nl); /* abstract: a leading NUL */
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + nl);
    int fd = socket_in(netns);
    if (fd < 0)
        return fd;
    if (connect(fd, (struct sockaddr *)&un, len) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

/* Listing every process (no PID given): one that ends between the listing
 * and its answer is no failure, as ps and ss leave out what ended; asked
 * for by PID, it is. */
static int listing;

/* What /proc/PID/stat says after the command name (" S ppid ..."), read
 * into line; NULL if pid is gone. */
static const char *stat_fields(int pid, char *line, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    /* after the last ')': the command name may hold anything */
    const char *p = fgets(line, (int)cap, f) ? strrchr(line, ')') : NULL;
    fclose(f);
    return p ? p + 1 : NULL;
}

/* Whether pid has ended (gone, or a zombie not yet reaped), or does
 * within a second: a process on its way out closes its sockets before it
 * shows as a zombie, and its engine's thread (with RUDP_FD_TABLE=own, the
 * control socket in a table of its own) may close it before the process's
 * first thread has begun to exit. Asked only after a failed query. */
static int ended(int pid)
{
    for (int i = 0; i <= 100; i++) {
        char line[1024];
        const char *p = stat_fields(pid, line, sizeof line);
        char st = 0;
        if (!p || sscanf(p, " %c", &st) != 1 || st == 'Z' || st == 'X')
            return 1;
        struct timespec ts = {.tv_nsec = 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* Connects to the first of the candidates whose listening socket is held
 * by `pid` itself; a full backlog (EAGAIN) is tried again until the
 * deadline. The fd, or -1 (said on stderr). */
static int connect_trusted(int pid, struct lookup *l, long long deadline)
{
    int holder = 0, err = 0;
    for (size_t i = 0; i < l->n; i++)
        l->c[i].pending = 1;
    for (;;) {
        int again = 0;
        for (size_t i = 0; i < l->n && now_ms() < deadline; i++) {
            if (!l->c[i].pending)
                continue;
            int fd = connect_name(l->c[i].name, l->netns);
            if (fd == -EAGAIN || fd == -EINTR) {
                again = 1;
                continue;
            }
            l->c[i].pending = 0;
            if (fd < 0) {
                err = -fd;
                continue;
            }
            struct ucred cr;
            socklen_t cl = sizeof cr;
            if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0 && cl == sizeof cr &&
                cr.pid == pid)
                return fd;
            if (!holder)
                holder = cl == sizeof cr ? (int)cr.pid : -1;
            close(fd);
        }
        if (!again || now_ms() >= deadline)
            break;
        struct timespec ts = {.tv_nsec = 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    if (listing && ended(pid))
        return -2; /* ended meanwhile: not listed */
    if (holder)
        fprintf(stderr,
                "rudp-stat: the control socket named for process %d is held by process %d: "
                "not trusted\n",
                pid, holder);
    else if (l->netns != NETNS_OURS && err == EPERM)
        fprintf(stderr,
                "rudp-stat: process %d is in another network namespace, where its control "
                "socket is: entering it takes root (or run rudp-stat there: nsenter -n -t %d "
                "rudp-stat %d)\n",
                pid, pid, pid);
    else
        fprintf(stderr, "rudp-stat: process %d does not answer on its control socket: %s\n",
                pid, strerror(err ? err : EAGAIN));
    return -1;
}

/* Connects to pid's control socket among l's candidates and copies the
 * report to stdout (a refusal line to stderr), all within TIMEOUT_MS.
 * Returns 0 or 1. */
static int query(int pid, struct lookup *l)
{
    long long deadline = now_ms() + TIMEOUT_MS;
    int fd = connect_trusted(pid, l, deadline);
    if (fd < 0)
        return fd == -2 ? 0 : 1;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (;;) {
        long long left = deadline - now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = left > 0 ? poll(&p, 1, (int)left) : 0;
        if (pr == 0) {
            fprintf(stderr, "rudp-stat: process %d: no complete answer in %d s\n", pid,
                    TIMEOUT_MS / 1000);
            rc = 1;
            break;
        }
        if (pr < 0 && errno == EINTR)
            continue;
        if (n == cap) {
            if (cap >= MAX_ANSWER) {
                fprintf(stderr, "rudp-stat: process %d: an answer longer than %u bytes is no "
                                "report\n", pid, MAX_ANSWER);
                rc = 1;
                break;
            }
            size_t want = cap ? cap * 2 : 131072;
            if (want > MAX_ANSWER)
                want = MAX_ANSWER;
            char *b = realloc(buf, want);
            if (!b) {
                fprintf(stderr, "rudp-stat: out of memory\n");
                rc = 1;
                break;
            }
            buf = b;
            cap = want;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r < 0 && listing && ended(pid)) {
            rc = -1; /* ended while it answered: not listed */
            break;
        }
        if (r < 0) {
            fprintf(stderr, "rudp-stat: process %d: %s\n", pid, strerror(errno));
            rc = 1;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (!rc) {
        printable(buf, n);
        if (n >= 10 && memcmp(buf, "rudp-stat:", 10) == 0) {
            fwrite(buf, 1, n, stderr); /* refused (not the owner), or busy */
            rc = 1;
        } else if (n == 0 && listing && ended(pid)) {
            rc = 0; /* ended before it answered: not listed */
        } else if (n == 0) {
            fprintf(stderr, "rudp-stat: process %d closed its control socket without a report\n",
                    pid);
            rc = 1;
        } else {
            fwrite(buf, 1, report_len(buf, n), stdout);
        }
    }
    free(buf);
    return rc < 0 ? 0 : rc;
}

/* The inode of pid's network namespace (0: self), or 0 if unknown. */
static unsigned long netns_of(int pid)
{
    char path[64];
    struct stat st;
    if (pid)
        snprintf(path, sizeof path, "/proc/%d/ns/net", pid);
    else
        snprintf(path, sizeof path, "/proc/self/ns/net");
    return stat(path, &st) == 0 ? (unsigned long)st.st_ino : 0;
}

/* Where pid's control socket is listed: its own network namespace's table
 * (the control socket's name is abstract, per namespace: a container's, a
 * namespace of `ip netns`). Sets l->netns (closed by the caller) when that
 * is not ours. */
static const char *unix_table(int pid, struct lookup *l, char *buf, size_t n)
{
    l->netns = NETNS_OURS;
    unsigned long theirs = netns_of(pid);
    if (!theirs || theirs == netns_of(0))
        return "/proc/net/unix";
    snprintf(buf, n, "/proc/%d/ns/net", pid);
    l->netns = open(buf, O_RDONLY | O_CLOEXEC);
    if (l->netns < 0)
        l->netns = NETNS_SHUT; /* a name there is no name here: not tried in ours */
    snprintf(buf, n, "/proc/%d/net/unix", pid);
    return buf;
}

/* Fills l with the candidates for pid's control socket; 0 found, 1 not, -1
 * no process. */
static int find(int pid, struct lookup *l)
{
    static unsigned long ino[MAX_INODES];
    char table[64];
    l->n = 0; /* l->c is kept for the next search */
    l->ino = NULL;
    l->nino = 0;
    l->pid = pid;
    if (l->netns >= 0)
        close(l->netns);
    const char *where = unix_table(pid, l, table, sizeof table);
    long n = socket_inodes(pid, ino, MAX_INODES);
    if (n >= 0) {
        l->ino = ino;
        l->nino = n;
    } else if (n != -EACCES && n != -EPERM) {
        return -1;
    }
    /* else: not ours to list; its name alone, and the process decides */
    int r = each_control_socket(where, match, l);
    if (r < 0 && !l->n) {
        fprintf(stderr, "rudp-stat: cannot list the control sockets: %s\n", strerror(-r));
        return 1;
    }
    return l->n > 0 ? 0 : 1;
}

static int parent_of(int pid)
{
    char line[1024];
    const char *p = stat_fields(pid, line, sizeof line);
    int ppid = 0;
    if (!p || sscanf(p, " %*c %d", &ppid) != 1)
        ppid = 0;
    return ppid;
}

/* Ancestors looked at for a process that runs no engine of its own. */
#define MAX_ANCESTORS 8

/* TCP states as /proc/net/tcp numbers them (include/net/tcp_states.h). */
static const char *const tcp_states[] = {"?",         "ESTABLISHED", "SYN-SENT",   "SYN-RECV",
                                         "FIN-WAIT-1", "FIN-WAIT-2",  "TIME-WAIT",  "CLOSE",
                                         "CLOSE-WAIT", "LAST-ACK",    "LISTEN",     "CLOSING"};

/* An address of /proc/net/tcp{,6} ("0100007F:1F90", the words in host
 * order as the kernel prints them) as text. */
static void proc_addr(const char *hex, int v6, char *out, size_t n)
{
    unsigned port = 0;
    const char *colon = strchr(hex, ':');
    if (!colon || sscanf(colon + 1, "%x", &port) != 1) {
        snprintf(out, n, "?");
        return;
    }
    unsigned char a[16];
    int words = v6 ? 4 : 1;
    for (int w = 0; w < words; w++) {
        unsigned int x = 0;
        char word[9];
        memcpy(word, hex + 8 * w, 8);
        word[8] = 0;
        sscanf(word, "%x", &x);
        memcpy(a + 4 * w, &x, 4); /* back to network order: the kernel printed host order */
    }
    char ip[INET6_ADDRSTRLEN];
    inet_ntop(v6 ? AF_INET6 : AF_INET, a, ip, sizeof ip);
    snprintf(out, n, v6 ? "[%s]:%u" : "%s:%u", ip, port);
}

/* The process's kernel TCP sockets: under the shim those are connections
 * that do not travel over rudp (a connect that fell back to kernel TCP,
 * RUDP_FALLBACK; a plain client a listener took, RUDP_ACCEPT_TCP; a
 * destination RUDP_REDIRECT keeps on TCP), and the sockets holding a rudp
 * listener's TCP port. Read from /proc/PID/net/tcp{,6} (the process's own
 * network namespace) for the socket inodes among its fds. */
static void kernel_tcp(int pid)
{
    static unsigned long ino[MAX_INODES];
    long n = socket_inodes(pid, ino, MAX_INODES);
    if (n <= 0)
        return;
    int shown = 0;
    for (int v6 = 0; v6 <= 1; v6++) {
        char path[64], line[512];
        snprintf(path, sizeof path, "/proc/%d/net/tcp%s", pid, v6 ? "6" : "");
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        while (fgets(line, sizeof line, f)) {
            char local[64], remote[64];
            unsigned st;
            unsigned long inode;
            if (sscanf(line, " %*d: %63s %63s %x %*s %*s %*s %*s %*s %lu", local, remote, &st,
                       &inode) != 4 ||
                !bsearch(&inode, ino, (size_t)n, sizeof *ino, cmp_ul))
                continue;
            char l[80], r[80];
            proc_addr(local, v6, l, sizeof l);
            proc_addr(remote, v6, r, sizeof r);
            if (!shown++)
                printf("kernel TCP sockets (not rudp):\n");
            if (st == 10)
                printf("  LISTEN %s (the port of a rudp listener, or a listener kept on TCP)\n", l);
            else
                printf("  %s %s -> %s\n", st < 12 ? tcp_states[st] : "?", l, r);
        }
        fclose(f);
    }
}

/* The program pid a supervisor's serving process serves ("rudp-supervise
 * --serve FD PID MODE" in its cmdline: tools/supervise/start.c), or 0
 * when sp is none, or not the caller's pid's owner's (uid). */
static int served_program(int sp, uid_t uid)
{
    char path[64], buf[512];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d", sp);
    if (stat(path, &st) < 0 || st.st_uid != uid)
        return 0;
    snprintf(path, sizeof path, "/proc/%d/cmdline", sp);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *arg[4] = {buf, NULL, NULL, NULL};
    for (int i = 1; i < 4; i++) {
        size_t at = (size_t)(arg[i - 1] - buf) + strlen(arg[i - 1]) + 1;
        if (at >= n)
            return 0;
        arg[i] = buf + at;
    }
    const char *base = strrchr(arg[0], '/');
    base = base ? base + 1 : arg[0];
    if (strcmp(base, "rudp-supervise") != 0 || strcmp(arg[1], "--serve") != 0)
        return 0;
    return atoi(arg[3]);
}

/* A supervised program's engine is in the supervisor's serving process,
 * which is neither its parent nor an ancestor (docs/reach.md): the one
 * serving pid itself, an ancestor of it (a child it made), or a child of
 * it (pid is the supervisor the user started, the program's parent).
 * Looked for among the processes of pid's owner. Its pid, or 0. */
static int serving_process(int pid)
{
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d", pid);
    if (stat(path, &st) < 0)
        return 0;
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        int sp = atoi(e->d_name);
        int prog = sp > 0 ? served_program(sp, st.st_uid) : 0;
        if (prog <= 0)
            continue;
        if (prog == pid || parent_of(prog) == pid)
            found = sp;
        for (int a = pid, i = 0; !found && i < MAX_ANCESTORS; i++) {
            a = parent_of(a);
            if (a <= 1)
                break;
            if (a == prog)
                found = sp;
        }
    }
    closedir(d);
    return found;
}

static int stat_pid(int pid)
{
    char path[64], comm[64];
    struct stat st;
    static struct lookup l = {.netns = NETNS_OURS};
    snprintf(path, sizeof path, "/proc/%d", pid);
    int r = stat(path, &st) < 0 ? -1 : find(pid, &l);
    if (r < 0 && listing)
        return 0; /* ended since it was listed */
    if (r < 0) {
        fprintf(stderr, "rudp-stat: no process %d\n", pid);
        return 1;
    }
    if (r == 0) {
        /* A supervisor's serving process (the pid ss shows for a supervised
         * program's sockets) is named with its program: the pid its argv
         * names, if that is a sibling of it (both the caller's children),
         * not a pid any process of that uid could put in its argv. */
        int prog = served_program(pid, st.st_uid);
        if (prog > 0 && parent_of(prog) == parent_of(pid)) {
            comm_of(prog, comm, sizeof comm);
            printf("process %d is rudp-supervise serving the program %d (%s):\n", pid, prog,
                   comm);
            fflush(stdout);
        }
        int q = query(pid, &l);
        kernel_tcp(pid);
        return q;
    }
    /* A forked child (a prefork server's worker) runs no engine until it
     * opens a rudp socket itself: what it inherited or accepted from an
     * inherited listener is served by the engine of the process that made
     * it, an ancestor. */
    comm_of(pid, comm, sizeof comm);
    int a = pid;
    for (int i = 0; i < MAX_ANCESTORS; i++) {
        a = parent_of(a);
        if (a <= 1)
            break;
        if (find(a, &l) == 0) {
            char acomm[64];
            comm_of(a, acomm, sizeof acomm);
            printf("process %d (%s) runs no rudp engine of its own: its rudp connections "
                   "(inherited, or accepted on an inherited listener) are served by %s %d "
                   "(%s):\n",
                   pid, comm, i ? "its ancestor" : "its parent", a, acomm);
            fflush(stdout);
            return query(a, &l);
        }
    }
    int sp = serving_process(pid);
    if (sp > 0 && find(sp, &l) == 0) {
        printf("process %d (%s) is a supervised program or its supervisor: its rudp "
               "connections are served by the supervisor's serving process %d:\n",
               pid, comm, sp);
        fflush(stdout);
        return query(sp, &l);
    }
    if (listing)
        return 0; /* listed by a control socket that has closed since: ended or exec'd */
    unsigned long ns = netns_of(pid);
    if (!ns) { /* /proc/PID/ns/net is its owner's and root's */
        fprintf(stderr,
                "rudp-stat: process %d (%s) has no rudp control socket that can be seen "
                "from here: its network namespace cannot be read (another user's process: "
                "only as root)\n",
                pid, comm);
        return 1;
    }
    fprintf(stderr,
            "rudp-stat: process %d (%s) has no rudp control socket: not under the shim, or no "
            "rudp socket yet (looked among the listening sockets of its network namespace, "
            "net:[%lu]%s)\n",
            pid, comm, ns, ns == netns_of(0) ? ", this one" : "");
    return 1;
}

struct pids {
    int *v;
    size_t n, cap;
};

static int collect(void *arg, int pid, unsigned long ino, const char *name)
{
    (void)ino, (void)name;
    struct pids *p = arg;
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d", pid);
    if (stat(path, &st) < 0 || (geteuid() != 0 && st.st_uid != geteuid()))
        return 0; /* gone, or someone else's */
    for (size_t i = 0; i < p->n; i++)
        if (p->v[i] == pid)
            return 0;
    if (p->n == p->cap) {
        int *v = realloc(p->v, (p->cap = p->cap ? p->cap * 2 : 64) * sizeof *v);
        if (!v)
            return -1;
        p->v = v;
    }
    p->v[p->n++] = pid;
    return 0;
}

/* The listening control sockets of one network namespace, by inode. */
struct nstab {
    unsigned long ns;
    unsigned long *ino;
    long n;
};

static int collect_ino(void *arg, int pid, unsigned long ino, const char *name)
{
    (void)pid, (void)name;
    struct nstab *t = arg;
    if (t->n % 64 == 0) {
        unsigned long *v = realloc(t->ino, (size_t)(t->n + 64) * sizeof *v);
        if (!v)
            return -1;
        t->ino = v;
    }
    t->ino[t->n++] = ino;
    return 0;
}

/* The processes of network namespaces other than ours that hold one of
 * their namespace's listening control sockets, told by its inode among
 * their fds (root reads every process's, a user only its own), into p; the
 * namespaces looked in, ours included. A process in a container's pid
 * namespace names its socket by a pid of its own: the inode says whose it
 * is. */
static int other_netns(struct pids *p)
{
    static unsigned long fds[MAX_INODES];
    unsigned long self = netns_of(0);
    struct nstab *tab = NULL;
    size_t ntab = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        int pid = atoi(e->d_name);
        unsigned long ns = pid > 0 ? netns_of(pid) : 0;
        if (!ns || ns == self)
            continue;
        size_t i = 0;
        while (i < ntab && tab[i].ns != ns)
            i++;
        if (i == ntab) {
            struct nstab *t = realloc(tab, (ntab + 1) * sizeof *t);
            if (!t)
                break;
            tab = t;
            tab[ntab++] = (struct nstab){.ns = ns};
            char table[64];
            snprintf(table, sizeof table, "/proc/%d/net/unix", pid);
            each_control_socket(table, collect_ino, &tab[i]);
            if (tab[i].n) /* none: ino is NULL, which qsort may not be given */
                qsort(tab[i].ino, (size_t)tab[i].n, sizeof *tab[i].ino, cmp_ul);
        }
        long n = tab[i].n ? socket_inodes(pid, fds, MAX_INODES) : 0;
        for (long k = 0; k < n; k++)
            if (bsearch(&fds[k], tab[i].ino, (size_t)tab[i].n, sizeof *fds, cmp_ul)) {
                collect(p, pid, 0, NULL);
                break;
            }
    }
    if (d)
        closedir(d);
    for (size_t i = 0; i < ntab; i++)
        free(tab[i].ino);
    free(tab);
    return (int)ntab + 1;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return x < y ? -1 : x > y;
}

static int once(int argc, char **argv, int first)
{
    int rc = 0;
    if (first < argc) {
        for (int i = first; i < argc; i++) {
            if (i > first)
                putchar('\n');
            fflush(stdout);
            rc |= stat_pid(atoi(argv[i]));
        }
        return rc;
    }
    struct pids p = {0};
    listing = 1;
    if (each_control_socket("/proc/net/unix", collect, &p) < 0) {
        fprintf(stderr, "rudp-stat: cannot read /proc/net/unix: %s\n", strerror(errno));
        return 1;
    }
    int nns = other_netns(&p);
    if (!p.n)
        fprintf(stderr,
                "rudp-stat: no process of yours runs under the shim (looked among the "
                "listening sockets of %d network namespace%s%s)\n",
                nns, nns > 1 ? "s" : "",
                geteuid() ? "; another user's processes, and their namespaces, only as root"
                          : "");
    if (p.n) /* none: v is NULL, which qsort may not be given */
        qsort(p.v, p.n, sizeof *p.v, cmp_int);
    for (size_t i = 0; i < p.n; i++) {
        if (i)
            putchar('\n');
        fflush(stdout);
        rc |= stat_pid(p.v[i]);
    }
    free(p.v);
    return rc;
}

static int is_pid(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

int main(int argc, char **argv)
{
    double watch = 0;
    int first = 1;
    for (; first < argc && argv[first][0] == '-'; first++) {
        const char *a = argv[first];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
            verbose = 1;
        } else if (strcmp(a, "--watch") == 0 || strcmp(a, "-w") == 0) {
            watch = 1;
        } else if (strncmp(a, "--watch=", 8) == 0) {
            char *end;
            watch = strtod(a + 8, &end);
            if (*end || !(watch > 0)) {
                fprintf(stderr, "rudp-stat: --watch=SECS wants a positive number, not '%s'\n",
                        a + 8);
                return 2;
            }
        } else if (strcmp(a, "--") == 0) {
            first++;
            break;
        } else {
            fprintf(stderr, "rudp-stat: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    for (int i = first; i < argc; i++) {
        if (!is_pid(argv[i])) {
            fprintf(stderr, "rudp-stat: '%s' is not a process id\n", argv[i]);
            return 2;
        }
    }
    if (!watch)
        return once(argc, argv, first);
    for (;;) {
        if (isatty(STDOUT_FILENO))
            fputs("\033[H\033[2J", stdout);
        time_t t = time(NULL);
        char when[32];
        strftime(when, sizeof when, "%H:%M:%S", localtime(&t));
        printf("--- rudp-stat %s, every %gs\n", when, watch);
        fflush(stdout);
        once(argc, argv, first);
        fflush(stdout);
        struct timespec ts = {.tv_sec = (time_t)watch,
                              .tv_nsec = (long)((watch - (double)(time_t)watch) * 1e9)};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
    }
}
