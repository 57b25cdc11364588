/*
 * ownfds: shim/base/ownfds.c's sets of the fds the shim owns, one per fd
 * table (RUDP_FD_TABLE): a thread of an engine's own table (after
 * unshare(CLONE_FILES) and shim_fds_enter_engines) counts its fds in its
 * table's set and sees no other's, the program's threads see only the
 * program's, a thread it starts (shim_thread_start) is in its table too,
 * a copy of a program's fd taken from an engine's table is the program's
 * file, and a forked child's clean-up closes its own set's fds and
 * forgets every other table's numbers without closing them.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shimtest.h"

TestSuite(ownfds, .init = shimtest_setup, .timeout = 20);

static uint64_t ino_of(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/* What a thread of engine 0's own table sees: filled by engine_side. */
typedef struct seen {
    int prog_fd;       /* a fd of the program's table, owned there */
    uint64_t prog_ino; /* its file */
    int own_fd;        /* one the thread makes and owns in its table */
    int sees_prog;     /* shim_ownfds_has(prog_fd) on the engine's side */
    int sees_own;      /* shim_ownfds_has(own_fd) there */
    int copy_ok;       /* shim_fd_copy_of(prog_fd, prog_ino) gave its file */
    int copy_failed;   /* ... or said -1 (pidfd_getfd refused) */
    int child_table;   /* shim_fds_in_engines() of a thread it started */
    int child_sees_own;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int child_done;
} seen;

static void *child_side(void *arg)
{
    seen *s = arg;
    pthread_mutex_lock(&s->mu);
    s->child_table = shim_fds_in_engines();
    s->child_sees_own = shim_ownfds_has(s->own_fd);
    s->child_done = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void *engine_side(void *arg)
{
    seen *s = arg;
    /* as enginestart.c: close_range's CLOSE_RANGE_UNSHARE where unshare is
     * refused (Docker's default seccomp profile without CAP_SYS_ADMIN) */
    cr_assert(unshare(CLONE_FILES) == 0 ||
                  syscall(SYS_close_range, ~0u >> 1, ~0u >> 1, CLOSE_RANGE_UNSHARE) == 0,
              "unshare(CLONE_FILES), close_range(CLOSE_RANGE_UNSHARE): %s", strerror(errno));
    close(s->prog_fd); /* the copy unshare made: this table keeps none of the program's */
    shim_fds_enter_engines(0);
    s->sees_prog = shim_ownfds_has(s->prog_fd);
    s->own_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    shim_own_fd(s->own_fd, 1);
    s->sees_own = shim_ownfds_has(s->own_fd);
    int c = shim_fd_copy_of(s->prog_fd, s->prog_ino);
    s->copy_ok = c >= 0 && ino_of(c) == s->prog_ino;
    s->copy_failed = c < 0;
    if (c >= 0)
        close(c);
    pthread_t t;
    cr_assert(shim_thread_start(&t, child_side, s) == 0);
    pthread_mutex_lock(&s->mu);
    while (!s->child_done)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

Test(ownfds, each_table_its_own_set)
{
    seen s = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    int p[2];
    cr_assert(pipe(p) == 0);
    /* Where pidfd_getfd is refused (Docker's default seccomp profile
     * without CAP_SYS_PTRACE) no copy can be taken from the engine's
     * table: the shim's enginestart.c then keeps engines in the program's
     * table, and a copy asked for anyway must fail, never be another file. */
    int probe = shim_fds_probe_take(p[0]);
    int can_take = probe >= 0;
    if (can_take)
        close(probe);
    s.prog_fd = p[0];
    s.prog_ino = ino_of(p[0]);
    shim_own_fd(s.prog_fd, 1);
    shim_fds_set_apart(1);
    pthread_t t;
    cr_assert(pthread_create(&t, NULL, engine_side, &s) == 0);
    pthread_join(t, NULL);
    cr_assert(eq(int, shim_fds_in_engines(), 0), "this thread stays the program's");
    cr_assert(shim_ownfds_has(s.prog_fd), "the program's set keeps its fd");
    cr_assert(not(s.sees_prog), "the engine's table's set has none of the program's");
    cr_assert(s.sees_own, "the engine's set holds what it owned");
    if (s.own_fd != s.prog_fd)
        cr_assert(not(shim_ownfds_has(s.own_fd)), "the engine's number is not the program's");
    if (can_take)
        cr_assert(s.copy_ok, "a copy of the program's fd from the engine's table is its file");
    else
        cr_assert(s.copy_failed, "pidfd_getfd refused: the copy did not fail (its file: %d)",
                  s.copy_ok);
    cr_assert(eq(int, s.child_table, 1), "a thread it starts is in its table");
    cr_assert(s.child_sees_own, "and counts that table's set");
}

Test(ownfds, fork_child_closes_its_set_and_forgets_the_others)
{
    int keep = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int gone = open("/dev/null", O_RDONLY | O_CLOEXEC);
    shim_own_fd(gone, 1);
    shim_own_fd(keep, 1);
    /* another table's number, as an engine thread would have owned it */
    seen s = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    int p[2];
    cr_assert(pipe(p) == 0);
    s.prog_fd = p[0];
    s.prog_ino = ino_of(p[0]);
    pthread_t t;
    cr_assert(pthread_create(&t, NULL, engine_side, &s) == 0);
    pthread_join(t, NULL);
    /* the same number in the program's table, not ours: must stay open */
    int theirs = shimtest_new_file_at(s.own_fd);
    cr_assert(theirs == s.own_fd);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int k[1] = {keep};
        shim_close_all_owned(k, 1);
        int ok = fcntl(gone, F_GETFD) < 0 && fcntl(keep, F_GETFD) >= 0 &&
                 fcntl(theirs, F_GETFD) >= 0 && shim_ownfds_has(keep) && !shim_ownfds_has(gone);
        _exit(ok ? 0 : 1);
    }
    int st;
    cr_assert(waitpid(pid, &st, 0) == pid);
    int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    cr_assert(ok, "the child closed its own set's fd alone, the kept one stays owned");
}

/* shim_cmsg_each_fd (base/util.c), which also reads the control messages
 * a program's send passes (interpose/sockopt.c): every fd of each
 * SCM_RIGHTS message in order, and nothing from a header whose length
 * does not fit (below its own size, or past the buffer). */
static void note_fd(int fd, void *arg)
{
    int *got = arg;
    got[++got[0]] = fd;
}

Test(ownfds, cmsg_fds_in_order_and_none_past_a_header_that_does_not_fit)
{
    union {
        char b[CMSG_SPACE(2 * sizeof(int)) + CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr m = {.msg_control = u.b, .msg_controllen = sizeof u.b};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(2 * sizeof(int));
    int two[2] = {7, 9};
    memcpy(CMSG_DATA(c), two, sizeof two);
    struct cmsghdr *d = CMSG_NXTHDR(&m, c);
    cr_assert(d != NULL);
    d->cmsg_level = SOL_SOCKET;
    d->cmsg_type = SCM_RIGHTS;
    d->cmsg_len = CMSG_LEN(sizeof(int));
    int one = 11;
    memcpy(CMSG_DATA(d), &one, sizeof one);

    int got[8] = {0};
    shim_cmsg_each_fd(&m, note_fd, got);
    cr_assert(eq(int, got[0], 3));
    cr_assert(eq(int, got[1], 7));
    cr_assert(eq(int, got[2], 9));
    cr_assert(eq(int, got[3], 11));

    d->cmsg_len = 4 * sizeof u.b; /* past the buffer: the first message only */
    memset(got, 0, sizeof got);
    shim_cmsg_each_fd(&m, note_fd, got);
    cr_assert(eq(int, got[0], 2));

    c->cmsg_len = 0; /* below a header: nothing, and no wrapped count */
    memset(got, 0, sizeof got);
    shim_cmsg_each_fd(&m, note_fd, got);
    cr_assert(eq(int, got[0], 0));
}
