/*
 * prog_sysclose: a listener closed through libc's syscall() (libuv's
 * uv__close does syscall(SYS_close, fd), and so node.js) is closed as by
 * close(): a connect right after is refused (ECONNREFUSED), as Linux
 * answers. Under the shim, before syscalls.c, the engine never learnt of
 * the close and went on completing handshakes: the connect succeeded and
 * was reset later. The same through syscall(SYS_close_range) and libc's
 * close_range() (whose engine learnt of the close only a second later).
 * A close_range() the kernel rejects (EINVAL: first > last, unknown
 * flags) closes nothing, our listener neither (under the shim, before the
 * check came first, the shim had closed it before the kernel said EINVAL).
 * Also: the calls made through syscall() reach the shim (a socket made and
 * connected with syscall(SYS_socket/SYS_connect) is the shim's), other
 * numbers pass through with their arguments (SYS_getpid, SYS_mmap's six,
 * a six-argument SYS_sendto), and failures are -1 with errno (SYS_close of a bad fd:
 * EBADF), as libc's syscall() answers.
 *
 * Prints "ok:" lines and "transport: KIND"; exit 1 with a "FAIL:" line,
 * 3 if the watchdog (60 s) fired.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_sysclose";

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/* A listener on 127.0.0.1, proven live by one connection; *port its port. */
static int live_listener(unsigned *port)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    SYS(l);
    *port = bind_lo(l, 0);
    SYS(listen(l, 8));
    int c = connect_lo(*port);
    int a = accept_ready(l, 10000);
    close(a);
    close(c);
    return l;
}

/* A connect to port right after its listener was closed must be refused. */
static void refused_after(const char *how, int (*closer)(int))
{
    unsigned port;
    int l = live_listener(&port);
    CHECK(closer(l) == 0, "%s of the listener: %s", how, strerror(errno));
    int c = socket(AF_INET, SOCK_STREAM, 0);
    SYS(c);
    struct sockaddr_storage ss;
    socklen_t sl = loopback(AF_INET, port, &ss);
    int r = connect(c, (struct sockaddr *)&ss, sl);
    int err = errno;
    CHECK(r < 0, "connect right after %s of the listener succeeded (%s), where Linux refuses it",
          how, fd_transport(c));
    CHECK(err == ECONNREFUSED, "connect right after %s of the listener: %s, not ECONNREFUSED", how,
          strerror(err));
    close(c);
    printf("ok: %s of a listener, then connect: ECONNREFUSED\n", how);
}

static int by_sys_close(int fd)
{
    return (int)syscall(SYS_close, fd);
}

static int by_sys_close_range(int fd)
{
    return (int)syscall(SYS_close_range, (unsigned)fd, (unsigned)fd, 0);
}

static int by_close_range(int fd)
{
    return close_range((unsigned)fd, (unsigned)fd, 0);
}

static long rejected_by_sys(unsigned first, unsigned last, int flags)
{
    return syscall(SYS_close_range, first, last, flags);
}

static long rejected_by_libc(unsigned first, unsigned last, int flags)
{
    return close_range(first, last, flags);
}

/* close_range() calls the kernel rejects leave a live listener open and
 * listening: a connect to it is accepted. */
static void rejected_keeps(const char *how, long (*call)(unsigned, unsigned, int))
{
    unsigned port;
    int l = live_listener(&port);
    errno = 0;
    long r = call((unsigned)l, (unsigned)l, 0x40000000); /* no such flag */
    CHECK(r == -1 && errno == EINVAL, "%s with an unknown flag: %ld, %s (want EINVAL)", how, r,
          strerror(errno));
    errno = 0;
    r = call((unsigned)l, 0, 0); /* first > last */
    CHECK(r == -1 && errno == EINVAL, "%s(fd, 0) (first > last): %ld, %s (want EINVAL)", how, r,
          strerror(errno));
    CHECK(fcntl(l, F_GETFD) != -1, "%s rejected with EINVAL closed the listener", how);
    int c = connect_lo(port);
    int a = accept_ready(l, 10000);
    close(a);
    close(c);
    close(l);
    printf("ok: %s rejected (unknown flag, first > last): EINVAL, the listener still accepts\n",
           how);
}

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, 60);
    refused_after("syscall(SYS_close)", by_sys_close);
    refused_after("syscall(SYS_close_range)", by_sys_close_range);
    refused_after("close_range()", by_close_range);
    rejected_keeps("syscall(SYS_close_range)", rejected_by_sys);
    rejected_keeps("close_range()", rejected_by_libc);

    errno = 0;
    long r = syscall(SYS_close, -1);
    CHECK(r == -1 && errno == EBADF, "syscall(SYS_close, -1): %ld, %s", r, strerror(errno));
    CHECK(syscall(SYS_getpid) == getpid(), "syscall(SYS_getpid) is not getpid()");
    /* six arguments through a number the shim does not take */
    long m = syscall(SYS_mmap, NULL, 4096L, (long)(PROT_READ | PROT_WRITE),
                     (long)(MAP_PRIVATE | MAP_ANONYMOUS), -1L, 0L);
    CHECK(m != -1, "syscall(SYS_mmap, ...): %s", strerror(errno));
    memset((void *)m, 1, 4096);
    SYS(munmap((void *)m, 4096));
    errno = 0;
    r = syscall(SYS_mmap, NULL, 4096L, (long)PROT_READ, (long)MAP_PRIVATE, 12345L, 0L);
    CHECK(r == -1 && errno == EBADF, "syscall(SYS_mmap) of a bad fd: %ld, %s", r, strerror(errno));
    printf("ok: syscall(SYS_close, -1) -1 EBADF; SYS_getpid, SYS_mmap (six arguments) passed "
           "through\n");

    /* A connection made through syscall() entirely: the shim's. */
    unsigned port;
    int l = live_listener(&port);
    int c = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
    SYS(c);
    struct sockaddr_storage ss;
    socklen_t sl = loopback(AF_INET, port, &ss);
    SYS(syscall(SYS_connect, c, &ss, sl));
    int a = accept_ready(l, 10000);
    printf("transport: %s\n", fd_transport(c));
    /* six arguments through: sendto with a NULL address of length 0 */
    CHECK(syscall(SYS_sendto, c, "abc", 3, 0, NULL, 0) == 3, "syscall(SYS_sendto): %s",
          strerror(errno));
    char buf[3];
    read_exact(a, buf, 3, 10000);
    CHECK(memcmp(buf, "abc", 3) == 0, "bytes sent with syscall(SYS_sendto) differ");
    SYS(syscall(SYS_close, c));
    char x;
    ssize_t n = read(a, &x, 1);
    CHECK(n == 0, "read after the peer's syscall(SYS_close): %zd (%s), not EOF", n,
          n < 0 ? strerror(errno) : "data");
    printf("ok: socket/connect/sendto/close through syscall(): bytes and EOF delivered\n");
    close(a);
    close(l);
    return 0;
}
