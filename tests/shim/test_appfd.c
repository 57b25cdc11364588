/*
 * appfd: shim/state/appfd.c, the engine acting on an application's fd
 * number, which the program may close or replace at any moment: the reset
 * byte that turns the engine's close into the program's ECONNRESET,
 * connect()'s small send buffer given back, the fallback's kernel TCP
 * socket swapped in, and the swap itself carrying what belongs to the
 * file. Each is checked against the number holding another file by then:
 * the shim must never act on a file that is not the app end it means.
 * Only this process's fds (no front end reaching another's).
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shimtest.h"

TestSuite(appfd, .init = shimtest_setup);

/* A bridge as connect() makes it: [0] the app's end, [1] the engine's;
 * its slot told where the app end is, as shim_fd_put tells it. */
struct bridge {
    int app, eng;
    shim_slot *s;
};

static uint64_t ino_of(int fd)
{
    struct stat st;
    cr_assert(fstat(fd, &st) == 0);
    return (uint64_t)st.st_ino;
}

static struct bridge bridge(void)
{
    int sv[2];
    cr_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    uint32_t idx = shim_slot_alloc(77);
    struct bridge b = {.app = sv[0], .eng = sv[1], .s = shim_slot_get(idx, 77)};
    cr_assert(b.s != NULL);
    atomic_store(&b.s->app_fd, b.app);
    atomic_store(&b.s->app_ino, ino_of(b.app));
    return b;
}

static int inq(int fd)
{
    int n = -1;
    cr_assert(ioctl(fd, SIOCINQ, &n) == 0);
    return n;
}

static int sndbuf(int fd)
{
    int v = 0;
    socklen_t len = sizeof v;
    cr_assert(getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &len) == 0);
    return v;
}

Test(appfd, the_reset_byte_makes_the_engine_close_an_econnreset)
{
    struct bridge b = bridge();
    cr_assert(eq(int, shim_appfd_reset_mark(b.s, b.eng), 1));
    cr_assert(eq(int, inq(b.eng), 1), "one byte left unread at the engine's end");
    close(b.eng);
    char c;
    errno = 0;
    cr_assert(eq(int, (int)read(b.app, &c, 1), -1));
    cr_assert(eq(int, errno, ECONNRESET), "not EOF: %s", strerror(errno));
}

Test(appfd, no_reset_byte_is_needed_over_the_programs_own_bytes)
{
    struct bridge b = bridge();
    cr_assert(write(b.app, "abc", 3) == 3); /* the engine has not read them */
    cr_assert(eq(int, shim_appfd_reset_mark(b.s, b.eng), 1));
    cr_assert(eq(int, inq(b.eng), 3), "nothing added");
}

Test(appfd, no_reset_byte_into_a_file_that_replaced_the_app_end)
{
    struct bridge b = bridge();
    int other[2];
    cr_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, other) == 0);
    cr_assert(dup2(other[0], b.app) == b.app); /* the program's dup2 over its fd */
    cr_assert(eq(int, shim_appfd_reset_mark(b.s, b.eng), 0));
    cr_assert(eq(int, inq(other[1]), 0), "no NUL byte in an unrelated stream");
    cr_assert(eq(int, inq(b.eng), 0));
    cr_assert(eq(int, shim_appfd_reset_mark(NULL, b.eng), 0));
}

Test(appfd, the_send_buffer_is_given_back_once)
{
    struct bridge b = bridge();
    int small = 4608;
    cr_assert(setsockopt(b.app, SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
    int before = sndbuf(b.app);
    atomic_store(&b.s->flags, SHIM_SLOT_F_SNDBUF);
    shim_sndbuf_restore(b.s, b.app, ino_of(b.app), 65536);
    cr_assert(sndbuf(b.app) > before, "%d after %d", sndbuf(b.app), before);
    cr_assert(eq(u32, atomic_load(&b.s->flags) & SHIM_SLOT_F_SNDBUF, 0), "once");
    cr_assert(setsockopt(b.app, SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
    shim_sndbuf_restore(b.s, b.app, ino_of(b.app), 65536);
    cr_assert(eq(int, sndbuf(b.app), before), "the flag gone, nothing done");
}

Test(appfd, the_send_buffer_is_not_given_to_another_file)
{
    struct bridge b = bridge();
    uint64_t ino = ino_of(b.app);
    atomic_store(&b.s->flags, SHIM_SLOT_F_SNDBUF);
    cr_assert(eq(int, shimtest_new_file_at(b.app), b.app));
    int small = 4608;
    cr_assert(setsockopt(b.app, SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
    int before = sndbuf(b.app);
    shim_sndbuf_restore(b.s, b.app, ino, 1 << 20);
    cr_assert(eq(int, sndbuf(b.app), before));
    cr_assert(eq(u32, atomic_load(&b.s->flags) & SHIM_SLOT_F_SNDBUF, SHIM_SLOT_F_SNDBUF));
}

Test(appfd, the_programs_own_size_set_while_connecting_wins)
{
    struct bridge b = bridge();
    int small = 4608, want = 32768, ret = -2;
    cr_assert(setsockopt(b.app, SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
    int before = sndbuf(b.app), shown;
    cr_assert(eq(int, shim_sndbuf_pending_shown(b.s, &shown), 0));
    cr_assert(eq(int, shim_sndbuf_pending_set(b.s, SO_SNDBUF, &want, sizeof want, &ret), 0),
              "not holding: the caller sets it itself");
    atomic_store(&b.s->flags, SHIM_SLOT_F_SNDBUF);
    cr_assert(eq(int, shim_sndbuf_pending_set(b.s, SO_SNDBUF, &want, sizeof want, &ret), 1));
    cr_assert(eq(int, ret, 0));
    cr_assert(eq(int, sndbuf(b.app), before), "the app end keeps the small buffer meanwhile");
    cr_assert(eq(int, shim_sndbuf_pending_shown(b.s, &shown), 1));
    cr_assert(eq(int, shown, 2 * want), "as the kernel reports it, doubled");
    /* a value the kernel refuses is refused as it would be */
    cr_assert(eq(int, shim_sndbuf_pending_set(b.s, SO_SNDBUF, &want, 1, &ret), 1));
    cr_assert(eq(int, ret, -1));
    cr_assert(eq(int, errno, EINVAL));
    shim_sndbuf_restore(b.s, b.app, ino_of(b.app), 1 << 20);
    cr_assert(eq(int, sndbuf(b.app), 2 * want), "the program's size, not the default");
}

Test(appfd, the_fallback_swaps_a_kernel_tcp_socket_in)
{
    struct bridge b = bridge();
    uint64_t ino = ino_of(b.app);
    int tfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(tfd >= 0);
    cr_assert(fcntl(b.app, F_SETFL, O_NONBLOCK) == 0);
    shim_fd r;
    memset(&r, 0, sizeof r);
    r.fd = b.app;
    r.kind = SHIM_FD_BRIDGED;
    r.nodelay = 1;
    shim_fd_put(&r);
    atomic_store(&b.s->flags, SHIM_SLOT_F_SWAP);
    cr_assert(eq(int, shim_fd_swap_in(b.s, b.app, ino, tfd), 0), "not placed yet: later");
    atomic_store(&b.s->flags, SHIM_SLOT_F_SWAP | SHIM_SLOT_F_PLACED | SHIM_SLOT_F_SNDBUF);
    cr_assert(eq(int, shim_fd_swap_in(b.s, b.app, ino, tfd), 1));
    cr_assert(eq(u64, ino_of(b.app), ino_of(tfd)), "the kernel's socket at the app's number");
    cr_assert(eq(int, fcntl(b.app, F_GETFL) & O_NONBLOCK, O_NONBLOCK), "its status flags");
    cr_assert(eq(int, fcntl(b.app, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC));
    int v = 0;
    socklen_t len = sizeof v;
    cr_assert(getsockopt(b.app, IPPROTO_TCP, TCP_NODELAY, &v, &len) == 0);
    cr_assert(eq(int, v, 1), "the options the program set, onto the kernel's socket");
    shim_fd out;
    cr_assert(eq(int, shim_fd_get(b.app, &out), 0), "no record: the fd is the kernel's now");
    cr_assert(eq(i32, atomic_load(&b.s->state), SHIM_SLOT_TCP));
    cr_assert(eq(u32, atomic_load(&b.s->flags) & (SHIM_SLOT_F_SWAP | SHIM_SLOT_F_SNDBUF), 0));
}

Test(appfd, no_swap_into_a_closed_or_replaced_fd)
{
    struct bridge b = bridge();
    uint64_t ino = ino_of(b.app);
    int tfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(tfd >= 0);
    atomic_store(&b.s->flags, SHIM_SLOT_F_SWAP | SHIM_SLOT_F_PLACED);
    shim_sndbuf_forget(b.s); /* close() of the fd */
    cr_assert(eq(int, shim_fd_swap_in(b.s, b.app, ino, tfd), -1));
    atomic_store(&b.s->flags, SHIM_SLOT_F_SWAP | SHIM_SLOT_F_PLACED);
    cr_assert(eq(int, shimtest_new_file_at(b.app), b.app));
    uint64_t now = ino_of(b.app);
    cr_assert(eq(int, shim_fd_swap_in(b.s, b.app, ino, tfd), -1));
    cr_assert(eq(u64, ino_of(b.app), now), "the program's new file left alone");
}

static void on_sigio(int sig)
{
    (void)sig;
}

Test(appfd, the_swap_carries_what_belongs_to_the_file)
{
    int sv[2], nv[2];
    cr_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    cr_assert(socketpair(AF_UNIX, SOCK_STREAM, 0, nv) == 0);
    int fd = sv[0];
    struct sigaction sa = {.sa_handler = on_sigio};
    cr_assert(sigaction(SIGRTMIN + 1, &sa, NULL) == 0);
    struct f_owner_ex own = {.type = F_OWNER_PID, .pid = getpid()};
    cr_assert(fcntl(fd, F_SETOWN_EX, &own) == 0);
    cr_assert(fcntl(fd, F_SETSIG, SIGRTMIN + 1) == 0);
    cr_assert(fcntl(fd, F_SETFL, O_NONBLOCK | O_ASYNC) == 0);
    shim_epollreg_mark(fd);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 99};
    cr_assert(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0);
    shim_epollreg_note(ep, EPOLL_CTL_ADD, fd, &ev);
    cr_assert(eq(int, shim_fdswap(fd, nv[0], fcntl(fd, F_GETFL), fcntl(fd, F_GETFD), 0, 0), 0));
    cr_assert(eq(u64, ino_of(fd), ino_of(nv[0])));
    cr_assert(eq(int, fcntl(fd, F_GETFL) & (O_NONBLOCK | O_ASYNC), O_NONBLOCK | O_ASYNC));
    cr_assert(eq(int, fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC), "the number's own flag");
    struct f_owner_ex got;
    cr_assert(fcntl(fd, F_GETOWN_EX, &got) == 0);
    cr_assert(eq(int, got.pid, getpid()));
    cr_assert(eq(int, fcntl(fd, F_GETSIG), SIGRTMIN + 1));
    cr_assert(eq(int, shim_epollreg_marked(fd), 0), "swapped for good (keep 0)");
    cr_assert(write(nv[1], "x", 1) == 1);
    struct epoll_event out;
    cr_assert(eq(int, epoll_wait(ep, &out, 1, 0), 1));
    cr_assert(eq(u64, out.data.u64, 99));
}
