/*
 * test_front.c: the front end (shim/state/front.c, front_remote.c,
 * front_mem.c): one is chosen before the first record and stays; the
 * remote one is set once, keeps a record with the file whatever number
 * reaches it, reaches the program's end of a bridge through what the
 * supervisor gave, and has a lock of its own that the fork handlers take.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shimtest.h"

TestSuite(front, .init = shimtest_setup, .timeout = 30);

Test(front, local_until_another_is_set)
{
    cr_assert_eq(shim_front(), &shim_front_local);
    cr_assert(shim_front_can(SHIM_FRONT_OWNS_NUMBERS | SHIM_FRONT_SEES_CLOSE));
    cr_assert_eq(shim_front_set(&shim_front_memory), 0);
    cr_assert_eq(shim_front(), &shim_front_memory);
    cr_assert_eq(shim_front_set(NULL), 0, "back to the local one while nothing is on record");
    cr_assert_eq(shim_front(), &shim_front_local);
}

Test(front, a_record_fixes_the_front_end)
{
    cr_assert_eq(shim_front_set(&shim_front_memory), 0);
    shim_fd r = {.fd = 7, .kind = SHIM_FD_CANDIDATE, .nodelay = 1};
    shim_fd_put(&r);
    cr_assert_eq(shim_front_set(NULL), -EBUSY, "a record was put through the memory one");
    cr_assert_eq(shim_front_set(&shim_front_memory), 0, "setting the same one again is no change");
    cr_assert_eq(shim_front_remote_set(&(shim_front_remote){0}), -EBUSY);
    shim_fd got;
    cr_assert_eq(shim_fd_get(7, &got), 1);
    cr_assert_eq(got.nodelay, 1);
}

static int reached;
static int reach_fd = -1;
static uint64_t reach_ino;

static int app_end(uint64_t ino)
{
    reached++;
    return ino == reach_ino ? dup(reach_fd) : -1;
}

static int lines;

static void stats(void (*line)(void *, const char *), void *arg)
{
    lines++;
    line(arg, "front: 1");
}

static void count_line(void *arg, const char *text)
{
    (void)text;
    ++*(int *)arg;
}

Test(front, remote_once_by_file_and_reaching_the_program)
{
    static const shim_front_remote r = {.app_end = app_end, .stats = stats};
    cr_assert_eq(shim_front_remote_set(&r), 0);
    cr_assert_eq(shim_front_remote_set(&r), -EBUSY, "set once: the engines read what it keeps");
    cr_assert_not(shim_front_can(SHIM_FRONT_OWNS_NUMBERS));
    cr_assert_not(shim_front_can(SHIM_FRONT_SEES_CLOSE));

    /* a record follows the file: put through one copy, found through the
     * next, at another number, and kept when a copy closes */
    int sv[2];
    cr_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    int copy = dup(sv[0]);
    shim_fd rec = {.fd = copy, .kind = SHIM_FD_CANDIDATE, .keepalive = 1};
    shim_fd_put(&rec);
    close(copy);
    int next = fcntl(sv[0], F_DUPFD_CLOEXEC, 100);
    shim_fd got;
    cr_assert_eq(shim_fd_get(next, &got), 1, "found by the file, not the number");
    cr_assert_eq(got.fd, next, "and numbered as it is reached");
    cr_assert_eq(got.keepalive, 1);
    cr_assert_eq(shim_fd_get(sv[1], &got), 0, "another file has none");
    shim_fd_replaced(shim_fd_ino(sv[0]));
    cr_assert_eq(shim_fd_get(next, &got), 0, "a candidate replaced by a bridge goes");

    /* the program's end of a bridge, through what the supervisor gave */
    reach_fd = sv[1];
    reach_ino = shim_fd_ino(sv[1]);
    int c = shim_front()->app_end(reach_ino);
    cr_assert_geq(c, 0);
    cr_assert_eq(shim_fd_ino(c), reach_ino);
    close(c);
    cr_assert_eq(shim_front()->app_end(reach_ino + 1), -1);
    cr_assert_eq(reached, 2);
    int n = 0;
    shim_front()->stats(count_line, &n);
    cr_assert_eq(n, 1);
    cr_assert_eq(lines, 1);

    /* its lock: held between the fork handlers' prepare and release */
    shim_front_atfork_prepare();
    cr_assert_eq(shim_fd_tryget(next, &got), -1, "locked for the fork");
    shim_front_atfork_parent();
    cr_assert_eq(shim_fd_tryget(next, &got), 0, "released after it");
    close(next);
    close(sv[0]);
    close(sv[1]);
}
