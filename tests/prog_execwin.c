/*
 * prog_execwin: our exec leaves no fd open for another thread's
 * fork()+exec() to pass on.
 *
 *   prog_execwin race        ROUNDS times: a forked child with a live
 *                            loopback connection starts a thread that
 *                            fork()+exec()s this program without the
 *                            preload in a loop (--nofds), and exec's
 *                            itself (--after) meanwhile; every image
 *                            without the preload must hold no memfd
 *                            "rudp-slots" and no fd at 700 and above (where
 *                            the shim keeps its own: the slabs' copies, the
 *                            hand-over socket), and the exec'd image must
 *                            find the connection carrying data both ways
 *                            (and under the shim, have adopted a slab)
 *   prog_execwin resetids    (root; "skip:" otherwise) with a connection,
 *                            as a set-uid caller would be (real uid nobody,
 *                            effective root): posix_spawn() of this
 *                            program with POSIX_SPAWN_RESETIDS runs it as
 *                            nobody, not in secure execution, so it runs
 *                            the shim and (under it) must get the slabs;
 *                            without the flag it runs as root over a real
 *                            uid nobody (secure execution: no shim) and
 *                            must hold no memfd at all
 *   prog_execwin binfmt      (root; "skip:" otherwise) formats registered
 *                            with binfmt_misc (mounted in a mount namespace
 *                            of our own if it is not), named execwin_PID_*,
 *                            removed at the end: a file of a magic whose
 *                            interpreter is this program (spawned, it runs
 *                            the shim and, under it, must get the slabs),
 *                            one of an extension whose interpreter is the
 *                            static build (it must hold exactly the fds
 *                            passed, no RUDP_EXEC_SLABS; "skip:" without it);
 *                            "skip:" where the kernel itself cannot run
 *                            such a file (execve by system call, no shim
 *                            in between: ENOENT where the interpreter's
 *                            path is not the one the kernel resolves, as
 *                            in some chroots and containers)
 *   prog_execwin holder      a forked child, with a connection its parent's
 *                            engine serves and a second thread (so no
 *                            keeper of its own, and a shared fd table: the
 *                            holder under the shim), exec's itself
 *                            (--held): TCP_INFO ESTABLISHED, data both
 *                            ways, and under the shim the slabs
 *   prog_execwin --slabs     (internal) exit 1 iff it holds a slab memfd
 *   prog_execwin --nofds W   (internal) an image without the preload: one
 *                            byte to fd W, 'r', or 'b' if it holds any of
 *                            those (named on stderr)
 *   prog_execwin --after C S W
 *                            (internal) the image after the exec
 *
 * Over kernel TCP all of this holds by construction (the program opens no
 * memfd and no fd that high). Under the shim, before this change, the
 * exec'ing image made the slabs' copies without FD_CLOEXEC just before its
 * execve(), and a fork() in the other thread at that moment passed them on.
 *
 * Prints one "ok:" line per check and "transport: KIND" for the connected
 * fd. Exit 0 iff every check held; 1 with a "FAIL:" line otherwise; 3 if
 * the watchdog (60 s) fired.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 60
#define EVENT_MS 10000
#define ROUNDS 40
#define HIGH_FD 700

const char *prog_name = "prog_execwin";

static int under_shim(void)
{
    const char *pre = getenv("LD_PRELOAD");
    return pre && strstr(pre, "rudp") != NULL;
}

static char *self;
static int wfd;
static atomic_int forks;

static void *forker(void *arg)
{
    (void)arg;
    char **env = env_without_preload();
    char w[16];
    snprintf(w, sizeof w, "%d", wfd);
    for (;;) {
        pid_t p = fork();
        if (p == 0) {
            char *argv[] = {self, "--nofds", w, NULL};
            execve(self, argv, env);
            _exit(4);
        }
        if (p > 0)
            atomic_fetch_add(&forks, 1);
        /* not waited for here: the image after the exec reaps them */
    }
    return NULL;
}

/* The forked child: a connection, the forking thread, the exec. */
static void child(void)
{
    int c, s;
    loopback_pair(AF_INET, &c, &s);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, forker, NULL) == 0, "pthread_create");
    while (atomic_load(&forks) < 2)
        poll(NULL, 0, 1);
    char a[16], b[16], d[16];
    snprintf(a, sizeof a, "%d", c);
    snprintf(b, sizeof b, "%d", s);
    snprintf(d, sizeof d, "%d", wfd);
    execl(self, self, "--after", a, b, d, (char *)NULL);
    failf(__LINE__, "execl %s: %s", self, strerror(errno));
}

static void after(char **argv)
{
    int c = atoi(argv[2]), s = atoi(argv[3]);
    printf("transport: %s\n", fd_transport(c));
    char buf[5];
    CHECK(write(c, "ping", 4) == 4, "write: %s", strerror(errno));
    read_exact(s, buf, 4, EVENT_MS);
    CHECK(memcmp(buf, "ping", 4) == 0, "read %.4s", buf);
    CHECK(write(s, "pong", 4) == 4, "write: %s", strerror(errno));
    read_exact(c, buf, 4, EVENT_MS);
    CHECK(memcmp(buf, "pong", 4) == 0, "read %.4s", buf);
    CHECK(!getenv("RUDP_EXEC_PASS") && !getenv("RUDP_EXEC_SLABS"), "our variable is left in environ");
    if (under_shim())
        CHECK(fds_linked_from("/memfd:rudp-slots", 0, 0) > 0, "the exec'd image adopted no slab");
    /* The images the thread started before the exec are ours to reap. */
    int st, bad = 0;
    pid_t p;
    while ((p = wait(&st)) > 0 || (p < 0 && errno == EINTR))
        if (p > 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
            bad++;
    CHECK(bad == 0, "%d images without the shim failed", bad);
    close(c);
    close(s);
    exit(0);
}

static void race(void)
{
    int pfd[2];
    SYS(pipe(pfd));
    wfd = pfd[1];
    SYS(fcntl(pfd[0], F_SETFL, O_NONBLOCK));
    long runs = 0, bad = 0;
    for (int i = 0; i < ROUNDS; i++) {
        pid_t p = fork();
        SYS(p);
        if (p == 0) {
            close(pfd[0]);
            child();
        }
        CHECK(reap_within(p, EVENT_MS * 2, "the exec'd child") == 0, "round %d: the exec'd image failed", i);
        char b[4096];
        ssize_t n;
        while ((n = read(pfd[0], b, sizeof b)) > 0)
            for (ssize_t k = 0; k < n; k++) {
                runs++;
                bad += b[k] != 'r';
            }
    }
    CHECK(runs > 0, "no image without the shim ran");
    CHECK(bad == 0, "%ld of %ld images fork()+exec()'d without the shim while the other thread "
          "exec'd held a slab's memfd or an fd at %d and above", bad, runs, HIGH_FD);
    printf("ok: %d exec's of a child with a live connection, each racing a thread that "
           "fork()+exec()s an image without the shim: %ld such images, none held a memfd "
           "rudp-slots or an fd >= %d; the connection carried data both ways after each exec%s\n",
           ROUNDS, runs, HIGH_FD, under_shim() ? " and the image had the slabs" : "");
    exit(0);
}

/* posix_spawn()s this program --slabs (flags: the attributes'); its
 * exit status: 1 if it held a slab memfd. */
static int spawn_slabs(short flags)
{
    posix_spawnattr_t at;
    SYS(posix_spawnattr_init(&at));
    CHECK(posix_spawnattr_setflags(&at, flags) == 0, "posix_spawnattr_setflags");
    char *argv[] = {self, "--slabs", NULL};
    extern char **environ;
    pid_t p;
    int r = posix_spawn(&p, self, NULL, &at, argv, environ);
    CHECK(r == 0, "posix_spawn: %s", strerror(r));
    posix_spawnattr_destroy(&at);
    int st = reap_within(p, EVENT_MS, "the spawned image");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) <= 1, "the spawned image ended with %#x", st);
    return WEXITSTATUS(st);
}

static void resetids(void)
{
    if (geteuid() != 0) {
        printf("skip: not root: a set-uid caller not tried\n");
        exit(0);
    }
    int c, a;
    loopback_pair(AF_INET, &c, &a);
    printf("transport: %s\n", fd_transport(c));
    SYS(setresgid(65534, 0, 0));
    SYS(setresuid(65534, 0, 0)); /* as a set-uid root program run by nobody */
    int with = spawn_slabs(POSIX_SPAWN_RESETIDS);
    int without = spawn_slabs(0);
    SYS(setresuid(0, 0, 0));
    SYS(setresgid(0, 0, 0));
    int shim = under_shim();
    CHECK(with == shim, "spawned with POSIX_SPAWN_RESETIDS by a caller of real uid nobody and "
          "effective root, the image %s the slabs", with ? "had" : "did not have");
    printf("ok: a caller of real uid nobody, effective root, spawned with POSIX_SPAWN_RESETIDS: "
           "the image (run as nobody) %s\n", shim ? "ran the shim and had the slabs" : "had no memfd (no shim)");
    CHECK(without == 0, "spawned without the flag (secure execution), the image held a slab memfd");
    printf("ok: without the flag (secure execution) the image held no memfd\n");
    close(c);
    close(a);
    exit(0);
}

static void *idle(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

static void held(char **argv)
{
    int c = atoi(argv[2]), s = atoi(argv[3]);
    printf("transport: %s\n", fd_transport(c));
    CHECK(tcpi_state(c) == TCP_ESTABLISHED, "TCP_INFO state %d after the exec", tcpi_state(c));
    if (under_shim())
        CHECK(fds_linked_from("/memfd:rudp-slots", 0, 0) > 0, "the exec'd image adopted no slab");
    char buf[4];
    CHECK(write(c, "ping", 4) == 4, "write: %s", strerror(errno));
    read_exact(s, buf, 4, EVENT_MS);
    CHECK(write(s, "pong", 4) == 4, "write: %s", strerror(errno));
    read_exact(c, buf, 4, EVENT_MS);
    CHECK(memcmp(buf, "pong", 4) == 0, "read %.4s", buf);
    printf("ok: exec'd by a two-threaded child without a keeper: TCP_INFO ESTABLISHED, data both "
           "ways%s\n", under_shim() ? ", the slabs held" : "");
    exit(0);
}

static void holder(void)
{
    int c, s;
    loopback_pair(AF_INET, &c, &s);
    printf("transport: %s\n", fd_transport(c));
    pid_t p = fork();
    SYS(p);
    if (p == 0) {
        pthread_t t;
        CHECK(pthread_create(&t, NULL, idle, NULL) == 0, "pthread_create");
        char a[16], b[16];
        snprintf(a, sizeof a, "%d", c);
        snprintf(b, sizeof b, "%d", s);
        execl(self, self, "--held", a, b, (char *)NULL);
        failf(__LINE__, "execl %s: %s", self, strerror(errno));
    }
    CHECK(reap_within(p, EVENT_MS * 2, "the exec'd child") == 0, "the exec'd child failed");
    close(c);
    close(s);
    exit(0);
}

/* ---- binfmt_misc ---- */

#define MISC "/proc/sys/fs/binfmt_misc"
static char misc_names[2][64];
static char tmpdir[] = "/tmp/prog_execwin.XXXXXX";
static char files[2][4200];

static void misc_cleanup(void)
{
    for (int i = 0; i < 2; i++) {
        if (!misc_names[i][0])
            continue;
        char p[256];
        snprintf(p, sizeof p, MISC "/%s", misc_names[i]);
        int fd = open(p, O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t w = write(fd, "-1", 2); /* binfmt-misc.rst: removes the entry */
            (void)w;
            close(fd);
        }
        misc_names[i][0] = '\0';
    }
    for (int i = 0; i < 2; i++)
        if (files[i][0])
            unlink(files[i]);
    rmdir(tmpdir);
}

static void misc_register(int i, const char *rule)
{
    int fd = open(MISC "/register", O_WRONLY | O_CLOEXEC);
    CHECK(fd >= 0, "open %s/register: %s", MISC, strerror(errno));
    ssize_t w = write(fd, rule, strlen(rule));
    CHECK(w == (ssize_t)strlen(rule), "register %s: %s", rule, strerror(errno));
    close(fd);
    printf("ok: registered %s\n", rule);
    (void)i;
}

static const char *make_data(int i, const char *name, const char *data)
{
    snprintf(files[i], sizeof files[i], "%s/%s", tmpdir, name);
    int fd = open(files[i], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    CHECK(fd >= 0, "open %s: %s", files[i], strerror(errno));
    CHECK(write(fd, data, strlen(data)) == (ssize_t)strlen(data), "write: %s", strerror(errno));
    close(fd);
    return files[i];
}

static int spawn_file(const char *path, char **argv)
{
    extern char **environ;
    pid_t p;
    int r = posix_spawn(&p, path, NULL, NULL, argv, environ);
    CHECK(r == 0, "posix_spawn %s: %s", path, strerror(r));
    int st = reap_within(p, EVENT_MS, path);
    CHECK(WIFEXITED(st), "%s ended with %#x", path, st);
    return WEXITSTATUS(st);
}

/* 0 if the kernel itself runs the file at path (of a format just
 * registered), else the errno of its execve: a forked child calls execve by
 * system call through libc's own syscall(), past every name the shim
 * interposes (syscall() is one of them), its output to /dev/null. */
static int kernel_runs(const char *path, char **argv)
{
    extern char **environ;
    int pfd[2];
    SYS(pipe2(pfd, O_CLOEXEC));
    pid_t p = fork();
    SYS(p);
    if (p == 0) {
        int nul = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (nul >= 0) {
            dup2(nul, 1);
            dup2(nul, 2);
        }
        /* libc's own syscall(): the shim interposes syscall() too */
        long (*raw)(long, ...) = NULL;
        void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
        if (libc)
            *(void **)&raw = dlsym(libc, "syscall");
        if (raw)
            raw(SYS_execve, path, argv, environ);
        int e = errno;
        ssize_t w = write(pfd[1], &e, sizeof e);
        (void)w;
        _exit(127);
    }
    close(pfd[1]);
    int e = 0;
    ssize_t n;
    do
        n = read(pfd[0], &e, sizeof e); /* EOF: the exec closed its end */
    while (n < 0 && errno == EINTR);
    close(pfd[0]);
    reap_within(p, EVENT_MS, path);
    return n == (ssize_t)sizeof e ? e : 0;
}

/* Ends the binfmt case with a "skip:" line unless the kernel runs the file
 * at path through interp (see kernel_runs): what fails then is no call of
 * ours, and the shim is not in the way. */
static void need_kernel_runs(const char *path, char **argv, const char *interp)
{
    int e = kernel_runs(path, argv);
    if (!e)
        return;
    printf("skip: binfmt_misc: the kernel cannot run %s through %s here (execve: %s; a chroot "
           "or container whose paths the kernel resolves elsewhere?)\n", path, interp,
           strerror(e));
    exit(0);
}

static void binfmt(void)
{
    if (geteuid() != 0) {
        printf("skip: not root: binfmt_misc formats not tried\n");
        exit(0);
    }
    if (access(MISC "/register", W_OK) != 0) {
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("binfmt_misc", MISC, "binfmt_misc", 0, NULL) < 0) {
            printf("skip: binfmt_misc not mounted and cannot be: %s\n", strerror(errno));
            exit(0);
        }
        printf("ok: binfmt_misc mounted in a mount namespace of our own\n");
    }
    CHECK(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
    atexit(misc_cleanup);
    prog_on_fail = misc_cleanup;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    CHECK(n > 0, "readlink: %s", strerror(errno));
    exe[n] = '\0';
    /* EXECWIN_INTERP names the interpreter instead: a path the kernel
     * cannot resolve stands for a container's (t_prog_execwin). */
    const char *as = getenv("EXECWIN_INTERP");
    if (as && *as)
        snprintf(exe, sizeof exe, "%s", as);
    /* A magic format, the interpreter this (dynamic) program. */
    char rule[4600], magic[32];
    snprintf(misc_names[0], sizeof misc_names[0], "execwin_%d_m", (int)getpid());
    snprintf(magic, sizeof magic, "EXECWIN%d", (int)getpid());
    snprintf(rule, sizeof rule, ":%s:M::%s::%s:", misc_names[0], magic, exe);
    misc_register(0, rule);
    const char *f = make_data(0, "data", magic);
    char *argv[] = {(char *)f, "--slabs", NULL};
    need_kernel_runs(f, argv, exe);
    int c, a;
    loopback_pair(AF_INET, &c, &a);
    printf("transport: %s\n", fd_transport(c));
    int shim = under_shim();
    int had = spawn_file(f, argv);
    CHECK(had == shim, "a file run by binfmt_misc through this program %s the slabs",
          had ? "had" : "did not have");
    printf("ok: a file of a binfmt_misc magic whose interpreter is this program: %s\n",
           shim ? "it ran the shim and had the slabs" : "no memfd (no shim)");
    /* An extension format, the interpreter the static build. */
    char stat_exe[4200];
    snprintf(stat_exe, sizeof stat_exe, "%s", exe);
    char *slash = strrchr(stat_exe, '/');
    snprintf(slash + 1, sizeof stat_exe - (size_t)(slash + 1 - stat_exe), "prog_execstate_static");
    if (access(stat_exe, X_OK) != 0) {
        printf("skip: no %s (no static libc): a static interpreter not tried\n", stat_exe);
        exit(0);
    }
    snprintf(misc_names[1], sizeof misc_names[1], "execwin_%d_e", (int)getpid());
    char ext[32];
    snprintf(ext, sizeof ext, "ew%d", (int)getpid());
    snprintf(rule, sizeof rule, ":%s:E::%s::%s:", misc_names[1], ext, stat_exe);
    misc_register(1, rule);
    char name[64];
    snprintf(name, sizeof name, "data.%s", ext);
    f = make_data(1, name, "not an ELF, not a script\n");
    char *probe[] = {(char *)f, NULL};
    need_kernel_runs(f, probe, stat_exe);
    char fds[4096];
    fds_passed(fds, sizeof fds);
    char *argv2[] = {(char *)f, "--bare", fds, NULL};
    CHECK(spawn_file(f, argv2) == 0, "a file run by binfmt_misc through the static build held "
          "fds it was not passed, or RUDP_EXEC_SLABS");
    printf("ok: a file of a binfmt_misc extension whose interpreter is static: it holds the "
           "fds passed (%s) and no RUDP_EXEC_SLABS\n", fds);
    close(c);
    close(a);
    exit(0);
}

int main(int argc, char **argv)
{
    self = argv[0];
    if (argc == 3 && strcmp(argv[1], "--nofds") == 0) {
        int w = atoi(argv[2]);
        int n = fds_linked_from("/memfd:", 0, 1) + fds_linked_from(NULL, HIGH_FD, 1);
        char k = n ? 'b' : 'r';
        return write(w, &k, 1) == 1 ? 0 : 5;
    }
    /* binfmt_misc runs us with the file's path before the arguments */
    if ((argc == 2 && strcmp(argv[1], "--slabs") == 0) ||
        (argc == 3 && strcmp(argv[2], "--slabs") == 0))
        return fds_linked_from("/memfd:rudp-slots", 0, 0) > 0;
    if (argc == 4 && strcmp(argv[1], "--held") == 0) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        watchdog(WATCHDOG_S);
        held(argv);
    }
    if (argc == 2 && strcmp(argv[1], "holder") == 0) {
        prog_begin(1, WATCHDOG_S);
        holder();
    }
    if (argc == 2 && strcmp(argv[1], "binfmt") == 0) {
        prog_begin(1, WATCHDOG_S);
        binfmt();
    }
    if (argc == 2 && strcmp(argv[1], "resetids") == 0) {
        prog_begin(1, WATCHDOG_S);
        resetids();
    }
    if (argc == 5 && strcmp(argv[1], "--after") == 0) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        watchdog(WATCHDOG_S);
        wfd = atoi(argv[4]);
        after(argv);
    }
    if (argc == 2 && strcmp(argv[1], "race") == 0) {
        prog_begin(1, WATCHDOG_S);
        race();
    }
    fprintf(stderr, "usage: prog_execwin race|holder|resetids|binfmt\n");
    return 2;
}
