/*
 * prog_execstate: a connection's state after the program exec's itself,
 * as the new image asks for it: TCP_INFO, SO_ERROR, SIOCOUTQ.
 *
 *   prog_execstate            run every check below; exit 0 iff all hold
 *   prog_execstate spawn|spawnp
 *                             the same, the new image started by
 *                             posix_spawn()/posix_spawnp() instead of exec
 *   prog_execstate bare       an image started without the preload (exec,
 *                             then posix_spawn, LD_PRELOAD taken out of
 *                             its environment) gets no stray fds and no
 *                             RUDP_EXEC_SLABS
 *   prog_execstate race      a thread fork()+exec()s this program without
 *                             the preload (--nomemfd: it must hold no
 *                             memfd) while the main thread posix_spawn()s
 *                             it with the preload (--slabs: under the shim
 *                             it must have adopted a slab), every other
 *                             time with file actions closing every fd
 *                             from 3 (the spawn must succeed)
 *   prog_execstate script|script_static
 *                             spawn through scripts (one, two levels) whose
 *                             last interpreter is this program (the spawn
 *                             checks) or its static build (the bare checks)
 *   prog_execstate nosuid|suid_root|suid_secure
 *                             (root; "skip:" otherwise) spawn a set-uid,
 *                             set-gid copy on a tmpfs of a mount namespace
 *                             of our own: owned by nobody on a nosuid
 *                             mount, or by root (both run the shim: the
 *                             spawn checks); owned by nobody on a normal
 *                             mount (secure execution: the bare checks)
 *   prog_execstate --after C TO FROM PID
 *                             (internal) the image after the exec: C the
 *                             connected fd, TO/FROM the pipes to and from
 *                             the peer process PID (-PID: not its child)
 *   prog_execstate --bare FDS (internal) the image without the preload:
 *                             FDS its fds that were open, not close-on-exec,
 *                             before the exec
 *
 * The first image makes a loopback connection, forks the peer (it keeps
 * the accepted end and does only what it is told over a pipe), and exec's
 * itself with the connected fd inherited. The new image checks:
 *   - TCP_INFO says ESTABLISHED and SO_ERROR 0;
 *   - SIOCOUTQ counts bytes written to a peer that reads nothing: written
 *     until EAGAIN, it is above 0 and at most what was written; one-byte
 *     writes after that raise it by at most one each (acknowledgements
 *     only lower it); once the peer has read everything it comes down to
 *     0 (waited for, up to 10 s), and TCP_INFO has an RTT;
 *   - the peer's reset (SO_LINGER {1,0}, close) shows as SO_ERROR
 *     ECONNRESET, once; then 0.
 * Over kernel TCP all of this holds by construction (man 7 tcp: SIOCOUTQ
 * is the unsent + unacknowledged data; tcp_reset() sets sk_err
 * ECONNRESET). Under the shim the engine goes on in a keeper at the exec,
 * and the new image must reach the connection's state it publishes.
 *
 * With spawn or spawnp the first image posix_spawn()s itself instead,
 * moving the connected fd to another number with the file actions
 * (adddup2, addclose) and with POSIX_SPAWN_SETSIGDEF and SETSIGMASK set;
 * it goes on (its engine too, under the shim) and waits for the new image.
 * With bare, the first image lists its fds that an exec passes on and
 * exec's itself with its environment less LD_PRELOAD; the new image must
 * hold exactly those (under the shim: no slab memfd at 700 and above)
 * and have no RUDP_EXEC_SLABS; then the same through posix_spawn().
 *
 * Prints one "ok:" line per check and "transport: KIND" for the connected
 * fd, before and after the exec. Exit 0 iff every check held; 1 with a
 * "FAIL:" line otherwise; 3 if the watchdog (60 s) fired.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <dirent.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sched.h>
#include <stdatomic.h>
#include <pthread.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 60
#define EVENT_MS 10000

const char *prog_name = "prog_execstate";

static int outq(int fd)
{
    int q = -1;
    SYS(ioctl(fd, SIOCOUTQ, &q));
    return q;
}

static void put(int fd, const void *p, size_t n)
{
    CHECK(write(fd, p, n) == (ssize_t)n, "pipe write: %s", strerror(errno));
}

/* Waits for the peer's one-byte answer. */
static void answer(int from)
{
    char k;
    read_exact(from, &k, 1, EVENT_MS);
    CHECK(k == 'k', "peer answered %c", k);
}

/* The peer: 'd' + 8 bytes n: read n bytes; 'x': reset the connection.
 * Answers 'k' after each; ends at EOF on its pipe. */
static void peer(int s, int from, int to)
{
    char cmd;
    static char buf[65536];
    while (read(from, &cmd, 1) == 1) {
        if (cmd == 'd') {
            uint64_t n;
            read_exact(from, &n, sizeof n, EVENT_MS);
            while (n) {
                size_t want = n < sizeof buf ? (size_t)n : sizeof buf;
                read_exact(s, buf, want, EVENT_MS);
                n -= want;
            }
        } else if (cmd == 'x') {
            struct linger l = {1, 0};
            SYS(setsockopt(s, SOL_SOCKET, SO_LINGER, &l, sizeof l));
            SYS(close(s));
        }
        put(to, "k", 1);
    }
    _exit(0);
}

enum mode { BY_EXEC, BY_SPAWN, BY_SPAWNP };

/* Starts self --after with the connection moved to fd 10 and the pipes to
 * 11 and 12 by the file actions; waits for it and ends as it ended. */
static void spawn_after(char *self, const char *path, enum mode how, int c, int to, int from,
                        pid_t peer_pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    SYS(posix_spawn_file_actions_init(&fa));
    SYS(posix_spawnattr_init(&at));
    int moves[3][2] = {{c, 10}, {to, 11}, {from, 12}};
    for (int i = 0; i < 3; i++) {
        CHECK(posix_spawn_file_actions_adddup2(&fa, moves[i][0], moves[i][1]) == 0, "adddup2");
        CHECK(posix_spawn_file_actions_addclose(&fa, moves[i][0]) == 0, "addclose");
    }
    sigset_t none, dfl;
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    CHECK(posix_spawnattr_setsigmask(&at, &none) == 0 && posix_spawnattr_setsigdefault(&at, &dfl) == 0 &&
          posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) == 0,
          "posix_spawnattr");
    char e[16];
    snprintf(e, sizeof e, "%d", -(int)peer_pid); /* not the new image's child */
    char *argv[] = {self, "--after", "10", "11", "12", e, NULL};
    extern char **environ;
    pid_t child;
    int r = how == BY_SPAWN ? posix_spawn(&child, path, &fa, &at, argv, environ)
                            : posix_spawnp(&child, path, &fa, &at, argv, environ);
    CHECK(r == 0, "posix_spawn%s %s: %s", how == BY_SPAWNP ? "p" : "", path, strerror(r));
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(c); /* the new image has them all now: the peer ends at its EOF */
    close(to);
    close(from);
    int st;
    CHECK(waitpid(child, &st, 0) == child, "waitpid: %s", strerror(errno));
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the spawned image ended with status %#x", st);
    CHECK(waitpid(peer_pid, &st, 0) == peer_pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "the peer did not end cleanly");
    printf("ok: the image posix_spawn%s started from %s (file actions moving the connection "
           "to fd 10) found it all as an exec'd one does\n", how == BY_SPAWNP ? "p" : "", path);
    exit(0);
}

static void first_image(char *self, const char *path, enum mode how)
{
    int c, s;
    loopback_pair(AF_INET, &c, &s);
    printf("transport: %s\n", fd_transport(c));
    CHECK(tcpi_state(c) == TCP_ESTABLISHED, "TCP_INFO state %d before the exec", tcpi_state(c));
    int to[2], from[2];
    SYS(pipe(to));
    SYS(pipe(from));
    pid_t p = fork();
    SYS(p);
    if (p == 0) {
        close(c);
        close(to[1]);
        close(from[0]);
        peer(s, to[0], from[1]);
    }
    kill_on_fail(p);
    close(s);
    close(to[0]);
    close(from[1]);
    char a[16], b[16], d[16], e[16];
    snprintf(a, sizeof a, "%d", c);
    snprintf(b, sizeof b, "%d", to[1]);
    snprintf(d, sizeof d, "%d", from[0]);
    snprintf(e, sizeof e, "%d", (int)p);
    printf("ok: connected, peer %d forked; %s\n", (int)p,
           how == BY_EXEC ? "exec'ing" : "spawning");
    fflush(stdout);
    if (how != BY_EXEC)
        spawn_after(self, path, how, c, to[1], from[0], p);
    execl(self, self, "--after", a, b, d, e, (char *)NULL);
    failf(__LINE__, "execl %s: %s", self, strerror(errno));
}

static void check_outq(int c, int to, int from)
{
    SYS(fcntl(c, F_SETFL, O_NONBLOCK));
    uint64_t total = (uint64_t)fill_until_refused(c);
    int q0 = outq(c), n = 0;
    CHECK(q0 > 0 && (uint64_t)q0 <= total, "SIOCOUTQ %d after %llu bytes written to a peer that reads nothing",
          q0, (unsigned long long)total);
    for (; n < 200 && write(c, "y", 1) == 1; n++)
        ;
    int q1 = outq(c);
    CHECK(q1 - q0 <= n, "%d one-byte writes to a peer that reads nothing raised SIOCOUTQ by %d "
                        "(%d -> %d): it counts more than bytes", n, q1 - q0, q0, q1);
    total += (uint64_t)n;
    printf("ok: SIOCOUTQ after the exec counts bytes: %llu written, %d not acknowledged; "
           "%d one-byte writes more, +%d\n", (unsigned long long)total, q0, n, q1 - q0);
    put(to, "d", 1);
    put(to, &total, sizeof total);
    answer(from);
    int q = outq(c);
    for (int waited = 0; q != 0 && waited < EVENT_MS; waited += 10) {
        poll(NULL, 0, 10);
        q = outq(c);
    }
    CHECK(q == 0, "SIOCOUTQ %d after the peer read all %llu bytes", q, (unsigned long long)total);
    struct tcp_info ti;
    socklen_t l = sizeof ti;
    SYS(getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &l));
    CHECK(ti.tcpi_state == TCP_ESTABLISHED && ti.tcpi_rtt > 0,
          "TCP_INFO after the peer read: state %u rtt %u", ti.tcpi_state, ti.tcpi_rtt);
    printf("ok: the peer read all %llu bytes: SIOCOUTQ 0, TCP_INFO ESTABLISHED with an RTT\n",
           (unsigned long long)total);
}

static void check_reset(int c, int to, int from)
{
    put(to, "x", 1);
    answer(from);
    struct pollfd p = {.fd = c, .events = POLLIN};
    CHECK(poll(&p, 1, EVENT_MS) == 1, "no event within %d ms of the peer's reset", EVENT_MS);
    int e = so_error(c);
    CHECK(e == ECONNRESET, "SO_ERROR after the peer's reset: %d (%s)", e, strerror(e));
    e = so_error(c);
    CHECK(e == 0, "SO_ERROR a second time: %d (%s)", e, strerror(e));
    printf("ok: the peer's reset: SO_ERROR ECONNRESET once, then 0\n");
}

static void after_image(char **argv)
{
    int c = atoi(argv[2]), to = atoi(argv[3]), from = atoi(argv[4]);
    pid_t peer_pid = atoi(argv[5]);
    int mine = peer_pid > 0; /* else the spawner's child: it reaps */
    if (!mine)
        peer_pid = -peer_pid;
    kill_on_fail(peer_pid);
    printf("transport: %s\n", fd_transport(c));
    int st = tcpi_state(c), e = so_error(c);
    CHECK(st == TCP_ESTABLISHED, "TCP_INFO state %d after the exec", st);
    CHECK(e == 0, "SO_ERROR %d (%s) after the exec", e, strerror(e));
    printf("ok: after the exec: TCP_INFO ESTABLISHED, SO_ERROR 0\n");
    check_outq(c, to, from);
    check_reset(c, to, from);
    close(to); /* the peer ends */
    int status;
    CHECK(!mine || (waitpid(peer_pid, &status, 0) == peer_pid && WIFEXITED(status) &&
                        WEXITSTATUS(status) == 0),
          "the peer did not end cleanly");
    kill_on_fail(-1);
    close(c);
    close(from);
}

/* ---- an image without the preload ---- */

static void bare_first(char *self)
{
    int c, a;
    loopback_pair(AF_INET, &c, &a);
    printf("transport: %s\n", fd_transport(c));
    close(a);
    char fds[4096];
    fds_passed(fds, sizeof fds);
    char *argv[] = {self, "--bare", fds, NULL};
    pid_t child;
    int r = posix_spawn(&child, self, NULL, NULL, argv, env_without_preload());
    CHECK(r == 0, "posix_spawn %s: %s", self, strerror(r));
    int st;
    CHECK(waitpid(child, &st, 0) == child, "waitpid: %s", strerror(errno));
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the image posix_spawn started without "
          "LD_PRELOAD ended with status %#x", st);
    printf("ok: posix_spawn without LD_PRELOAD: the new image has its fds (%s) and no "
           "RUDP_EXEC_SLABS\n", fds);
    char stat_self[4096];
    snprintf(stat_self, sizeof stat_self, "%s_static", self);
    if (access(stat_self, X_OK) == 0) {
        char *sargv[] = {stat_self, "--bare", fds, NULL};
        extern char **environ;
        r = posix_spawn(&child, stat_self, NULL, NULL, sargv, environ);
        CHECK(r == 0, "posix_spawn %s: %s", stat_self, strerror(r));
        CHECK(waitpid(child, &st, 0) == child, "waitpid: %s", strerror(errno));
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the static image posix_spawn started "
              "ended with status %#x", st);
        printf("ok: posix_spawn of a static binary (LD_PRELOAD kept): it has its fds (%s) and "
               "no RUDP_EXEC_SLABS\n", fds);
    } else {
        printf("skip: no %s (no static libc): a static image not tried\n", stat_self);
    }
    fflush(stdout);
    execve(self, argv, env_without_preload());
    failf(__LINE__, "execve %s: %s", self, strerror(errno));
}

static void bare_after(const char *want)
{
    char have[4096];
    fds_passed(have, sizeof have);
    CHECK(strcmp(have, want) == 0, "without the preload the new image holds fds %s; the image "
          "before passed %s", have, want);
    extern char **environ;
    for (size_t i = 0; environ[i]; i++)
        CHECK(strncmp(environ[i], "RUDP_EXEC_SLABS=", 16) != 0, "the image without the preload "
              "has %s in its environment", environ[i]);
    printf("ok: the image without the preload holds the fds passed (%s), no RUDP_EXEC_SLABS\n",
           have);
}

/* ---- images whose shim is told from more than their file ---- */

/* Spawns path (LD_PRELOAD kept) with "--bare FDS" and the fds this
 * process passes; the image must not run the shim and so must hold
 * exactly those fds and no RUDP_EXEC_SLABS. */
static void spawn_bare(const char *path, const char *what)
{
    char fds[4096];
    fds_passed(fds, sizeof fds);
    char *argv[] = {(char *)path, "--bare", fds, NULL};
    extern char **environ;
    pid_t child;
    int r = posix_spawn(&child, path, NULL, NULL, argv, environ);
    CHECK(r == 0, "posix_spawn %s: %s", path, strerror(r));
    int st;
    CHECK(waitpid(child, &st, 0) == child, "waitpid: %s", strerror(errno));
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s (%s) ended with status %#x", what, path, st);
    printf("ok: %s: it holds the fds passed (%s) and no RUDP_EXEC_SLABS\n", what, fds);
}

static char tmpdir[] = "/tmp/prog_execstate.XXXXXX";
static char made[4][4200];
static int nmade;

static int mounted;

static void cleanup_made(void)
{
    while (nmade > 0)
        unlink(made[--nmade]);
    if (mounted)
        umount2(tmpdir, MNT_DETACH);
    rmdir(tmpdir);
}

/* Writes a file (mode) in tmpdir; returns its path. */
static const char *make_file(const char *name, const void *data, size_t n, mode_t mode)
{
    CHECK(nmade < 4, "too many files");
    char *path = made[nmade];
    snprintf(path, sizeof made[0], "%s/%s", tmpdir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
    CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
    nmade++;
    CHECK(write(fd, data, n) == (ssize_t)n, "write %s: %s", path, strerror(errno));
    SYS(fchmod(fd, mode));
    SYS(close(fd));
    return path;
}

static const char *make_script(const char *name, const char *interp)
{
    char text[4200];
    int n = snprintf(text, sizeof text, "#!%s\n", interp);
    return make_file(name, text, (size_t)n, 0755);
}

/* Scripts (one level and two: a script whose interpreter is a script), as
 * the kernel runs them (binfmt_script; fs/exec.c allows a few levels of
 * rewrite): ending at this program, the shim runs, and the spawned image
 * finds the connection's state; ending at the static build, it does not,
 * and the image gets nothing it does not know of. */
static void script_modes(char *self, int to_static)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    CHECK(n > 0, "readlink /proc/self/exe: %s", strerror(errno));
    exe[n] = '\0';
    CHECK(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
    atexit(cleanup_made);
    if (!to_static) {
        const char *s1 = make_script("dyn1", exe);
        const char *s2 = make_script("dyn2", s1);
        printf("ok: %s -> %s -> %s\n", s2, s1, exe);
        first_image(self, s2, BY_SPAWN);
    }
    char stat_exe[4200];
    snprintf(stat_exe, sizeof stat_exe, "%s_static", exe);
    if (access(stat_exe, X_OK) != 0) {
        printf("skip: no %s (no static libc): scripts to a static image not tried\n", stat_exe);
        exit(0);
    }
    int c, a;
    loopback_pair(AF_INET, &c, &a);
    printf("transport: %s\n", fd_transport(c));
    const char *s1 = make_script("st1", stat_exe);
    spawn_bare(s1, "a script whose interpreter is static");
    const char *s2 = make_script("st2", s1);
    spawn_bare(s2, "a script whose interpreter is a script whose interpreter is static");
    close(c);
    close(a);
    exit(0);
}

/* Set-uid copies of this program on tmpfs mounts of a mount namespace of
 * our own (root only; "skip:" otherwise). The kernel (fs/exec.c
 * bprm_fill_uid: mnt_may_suid) ignores the bit on a nosuid mount, and
 * secure execution (AT_SECURE) comes only when the ids change
 * (security/commoncap.c cap_bprm_creds_from_file): a nobody-owned set-uid
 * copy run by root on a nosuid mount, or a root-owned one on any, runs
 * the shim and must find the connection's state; a nobody-owned one on a
 * normal mount runs in secure execution, without the shim, and must get
 * nothing it does not know of. */
static void suid_modes(char *self, const char *which)
{
    if (geteuid() != 0) {
        printf("skip: not root: set-uid images not tried\n");
        exit(0);
    }
    if (unshare(CLONE_NEWNS) < 0) {
        printf("skip: unshare(CLONE_NEWNS): %s: set-uid images not tried\n", strerror(errno));
        exit(0);
    }
    /* EINVAL where "/" is no mount point: a chroot (as need_mntns skips) */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        printf("skip: making / private in a mount namespace: %s (a chroot?): set-uid images "
               "not tried\n", strerror(errno));
        exit(0);
    }
    CHECK(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
    int nosuid = strcmp(which, "nosuid") == 0;
    atexit(cleanup_made);
    SYS(mount("tmpfs", tmpdir, "tmpfs", nosuid ? MS_NOSUID : 0, "mode=0755"));
    mounted = 1;
    static char buf[1 << 22];
    int in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    CHECK(in >= 0, "open /proc/self/exe: %s", strerror(errno));
    ssize_t n = read(in, buf, sizeof buf);
    CHECK(n > 0 && n < (ssize_t)sizeof buf, "read /proc/self/exe: %zd", n);
    close(in);
    const char *copy = make_file("prog", buf, (size_t)n, 0755);
    uid_t owner = strcmp(which, "suid_root") == 0 ? 0 : 65534;
    SYS(chown(copy, owner, owner));
    SYS(chmod(copy, 04755 | 02000));
    printf("ok: %s: set-uid and set-gid copy owned by %d on a tmpfs%s\n", which, (int)owner,
           nosuid ? " mounted nosuid" : "");
    if (strcmp(which, "suid_secure") == 0) {
        int c, a;
        loopback_pair(AF_INET, &c, &a);
        printf("transport: %s\n", fd_transport(c));
        spawn_bare(copy, "a set-uid image in secure execution");
        exit(0);
    }
    first_image(self, copy, BY_SPAWN);
}

/* ---- a fork()+exec() racing posix_spawn() ---- */

static atomic_int race_stop, race_bad, race_runs;
static char *race_self;

/* Forks and exec's this program without the preload ("--nomemfd") until
 * told to stop: that image must never hold a memfd. */
static void *race_forker(void *arg)
{
    (void)arg;
    char **env = env_without_preload();
    while (!atomic_load(&race_stop)) {
        pid_t p = fork();
        if (p == 0) {
            char *argv[] = {race_self, "--nomemfd", NULL};
            execve(race_self, argv, env);
            _exit(4);
        }
        if (p < 0)
            break;
        int st;
        if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            atomic_fetch_add(&race_bad, 1);
        atomic_fetch_add(&race_runs, 1);
    }
    return NULL;
}

static int fds_linked(const char *prefix, int tell)
{
    return fds_linked_from(prefix, 0, tell);
}

#define RACE_SPAWNS 60

static void race(char *self)
{
    race_self = self;
    int c, a;
    loopback_pair(AF_INET, &c, &a);
    printf("transport: %s\n", fd_transport(c));
    const char *pre = getenv("LD_PRELOAD");
    int shim = pre && strstr(pre, "rudp") != NULL;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, race_forker, NULL) == 0, "pthread_create");
    extern char **environ;
    int slabs_seen = 0;
    for (int i = 0; i < RACE_SPAWNS; i++) {
        /* Every other spawn with file actions that close every fd from 3
         * first: ours must run before them (else the spawn fails EBADF). */
        posix_spawn_file_actions_t fa;
        SYS(posix_spawn_file_actions_init(&fa));
        CHECK(posix_spawn_file_actions_addclosefrom_np(&fa, 3) == 0, "addclosefrom_np");
        char *argv[] = {self, "--slabs", NULL};
        pid_t child;
        int r = posix_spawn(&child, self, i % 2 ? &fa : NULL, NULL, argv, environ);
        CHECK(r == 0, "posix_spawn %d (%s file actions): %s", i, i % 2 ? "closefrom" : "no",
              strerror(r));
        posix_spawn_file_actions_destroy(&fa);
        int st;
        CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st), "spawned image %d: %#x", i, st);
        if (i % 2 == 0)
            slabs_seen += WEXITSTATUS(st) > 0;
    }
    atomic_store(&race_stop, 1);
    pthread_join(t, NULL);
    CHECK(atomic_load(&race_bad) == 0, "%d of %d images fork()+exec()'d without the shim while "
          "posix_spawn() ran held a memfd (or failed)", atomic_load(&race_bad), atomic_load(&race_runs));
    CHECK(atomic_load(&race_runs) > 0, "the forking thread ran no image");
    printf("ok: %d images fork()+exec()'d without the shim during %d posix_spawn()s: none held a "
           "memfd\n", atomic_load(&race_runs), RACE_SPAWNS);
    CHECK(shim ? slabs_seen == RACE_SPAWNS / 2 : slabs_seen == 0,
          "%d of %d images spawned without file actions had the slabs", slabs_seen, RACE_SPAWNS / 2);
    printf("ok: the spawns with file actions closing every fd from 3 all succeeded; the %d "
           "without had the slabs %s\n", RACE_SPAWNS / 2, shim ? "every time" : "never (no shim)");
    close(c);
    close(a);
    exit(0);
}

int main(int argc, char **argv)
{
    /* A script's interpreter gets the script's path(s) before the
     * arguments: drop them ("--after" or "--bare" comes first after). */
    for (int k = 2; k < argc; k++) {
        if (strcmp(argv[k], "--after") == 0 || strcmp(argv[k], "--bare") == 0) {
            argv[k - 1] = argv[0];
            argv += k - 1;
            argc -= k - 1;
            break;
        }
    }
    /* The image a shim-less fork()+exec() started: no memfd at all. */
    if (argc == 2 && strcmp(argv[1], "--nomemfd") == 0)
        return fds_linked("/memfd:", 1) != 0;
    /* The image posix_spawn() started (LD_PRELOAD kept): under the shim
     * it has adopted the slabs passed (close-on-exec again). */
    if (argc == 2 && strcmp(argv[1], "--slabs") == 0)
        return fds_linked("/memfd:rudp-slots", 0) > 0;
    if (argc == 2 && strcmp(argv[1], "race") == 0) {
        prog_begin(1, WATCHDOG_S);
        race(argv[0]);
    }
    if (argc == 2 && (strcmp(argv[1], "script") == 0 || strcmp(argv[1], "script_static") == 0)) {
        prog_begin(1, WATCHDOG_S);
        script_modes(argv[0], argv[1][6] == '_');
    }
    if (argc == 2 && (strcmp(argv[1], "nosuid") == 0 || strcmp(argv[1], "suid_root") == 0 ||
                      strcmp(argv[1], "suid_secure") == 0)) {
        prog_begin(1, WATCHDOG_S);
        suid_modes(argv[0], argv[1]);
    }
    if (argc == 3 && strcmp(argv[1], "--bare") == 0) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        watchdog(WATCHDOG_S);
        bare_after(argv[2]);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "bare") == 0) {
        prog_begin(1, WATCHDOG_S);
        bare_first(argv[0]);
    }
    if (argc == 2 && (strcmp(argv[1], "spawn") == 0 || strcmp(argv[1], "spawnp") == 0)) {
        prog_begin(1, WATCHDOG_S);
        first_image(argv[0], argv[0], argv[1][5] == 'p' ? BY_SPAWNP : BY_SPAWN);
    }
    if (argc == 6 && strcmp(argv[1], "--after") == 0) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        signal(SIGPIPE, SIG_IGN);
        watchdog(WATCHDOG_S);
        after_image(argv);
        return 0;
    }
    prog_begin(argc, WATCHDOG_S);
    first_image(argv[0], argv[0], BY_EXEC);
    return 1;
}
