/*
 * pristine: shim/state/pristine.c, the TCP sockets whose options nobody
 * touched since socket(), which connect() then need not read back. Real
 * TCP sockets give the inodes; an entry is good for one take, for the
 * socket it was made for, and only while no option call came since.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shimtest.h"

TestSuite(pristine, .init = shimtest_setup);

static int tcp(int family)
{
    int s = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(s >= 0);
    return s;
}

static int mark(int family)
{
    int s = tcp(family);
    shim_pristine_mark(s, shim_fd_ino(s), family);
    return s;
}

Test(pristine, a_marked_socket_is_taken_once_with_its_family_and_inode)
{
    int s = mark(AF_INET), s6 = mark(AF_INET6);
    uint64_t ino;
    cr_assert(eq(int, shim_pristine_take(s, &ino), AF_INET));
    cr_assert(eq(u64, ino, shim_fd_ino(s)));
    cr_assert(eq(int, shim_pristine_take(s, &ino), 0), "a second take finds nothing");
    cr_assert(eq(u64, ino, 0), "nothing asked of the kernel");
    cr_assert(eq(int, shim_pristine_take(s6, &ino), AF_INET6));
    close(s);
    close(s6);
}

Test(pristine, an_option_call_since_the_socket_ends_it_for_every_socket)
{
    int a = mark(AF_INET), b = mark(AF_INET);
    shim_pristine_touched(); /* on any of them, or a dup, or another */
    int c = mark(AF_INET);   /* made after it: still pristine */
    uint64_t ino;
    cr_assert(eq(int, shim_pristine_take(a, &ino), 0));
    cr_assert(eq(u64, ino, 0), "a touched socket: the kernel not asked");
    cr_assert(eq(int, shim_pristine_take(b, &ino), 0));
    cr_assert(eq(int, shim_pristine_take(c, &ino), AF_INET));
    close(a);
    close(b);
    close(c);
}

Test(pristine, another_file_at_the_number_is_not_taken_for_it)
{
    int t = tcp(AF_INET);
    int s = mark(AF_INET);
    cr_assert(dup2(t, s) == s); /* unseen by the shim: dup2 is not interposed */
    uint64_t ino;
    cr_assert(eq(int, shim_pristine_take(s, &ino), 0));
    cr_assert(eq(u64, ino, shim_fd_ino(t)), "the number's inode, asked once");
    close(t);
    close(s);
}

Test(pristine, forgotten_unmarked_or_out_of_range_fds_are_not_pristine)
{
    int s = mark(AF_INET);
    shim_pristine_forget(s);
    uint64_t ino;
    cr_assert(eq(int, shim_pristine_take(s, &ino), 0));
    int u = tcp(AF_INET);
    cr_assert(eq(int, shim_pristine_take(u, &ino), 0), "never marked");
    int x = socket(AF_UNIX, SOCK_STREAM, 0);
    shim_pristine_mark(x, shim_fd_ino(x), AF_UNIX);
    cr_assert(eq(int, shim_pristine_take(x, &ino), 0), "not a TCP family");
    shim_pristine_mark(-1, 1, AF_INET);
    shim_pristine_mark(1 << 20, 1, AF_INET);
    cr_assert(eq(int, shim_pristine_take(1 << 20, &ino), 0));
    close(s);
    close(u);
    close(x);
}

Test(pristine, owner_setting_fcntl_commands_are_named)
{
    cr_assert(eq(int, shim_fcntl_sets_owner(F_SETOWN), 1));
    cr_assert(eq(int, shim_fcntl_sets_owner(F_SETOWN_EX), 1));
    cr_assert(eq(int, shim_fcntl_sets_owner(F_SETSIG), 1));
    cr_assert(eq(int, shim_fcntl_sets_owner(F_SETFL), 0));
    cr_assert(eq(int, shim_fcntl_sets_owner(F_GETOWN), 0));
    cr_assert(eq(int, shim_fcntl_sets_owner(F_DUPFD_CLOEXEC), 0));
}
