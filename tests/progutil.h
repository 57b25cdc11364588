/*
 * progutil.h: what the test programs in tests/prog_*.c share: failing with
 * a line number, a watchdog, loopback addresses, and telling which kernel
 * object carries an fd (a TCP socket, or the shim's AF_UNIX bridge).
 *
 * Each program defines prog_name (it names the program in FAIL: lines) and
 * may set prog_on_fail, which runs before a failure or the watchdog ends the
 * program (from a signal handler: it must be async-signal-safe, kill() for
 * instance).
 */
#ifndef PROGUTIL_H
#define PROGUTIL_H

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

extern const char *prog_name;
extern void (*prog_on_fail)(void);

/* Prints "FAIL: <prog_name>:<line>: <message>" and exits 1. */
void failf(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

#define CHECK(cond, ...) \
    do { if (!(cond)) failf(__LINE__, __VA_ARGS__); } while (0)
/* A system call that must succeed. */
#define SYS(call) \
    do { if ((call) < 0) failf(__LINE__, "%s: %s", #call, strerror(errno)); } while (0)

/* Failing without a line number, for the programs whose stderr lines a
 * script reads or compares (tests/prog_reach*: t_supervise_features
 * compares the refusal's line preloaded and supervised): die() prints
 * "<prog_name>: <what>: <strerror(errno)>", differs() "<prog_name>: "
 * and its message; both run prog_on_fail and exit 1. */
void die(const char *what) __attribute__((noreturn));
void differs(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* SIGALRM after secs seconds ends the program with exit status 3 and a
 * FAIL: line, unless prog_bounded_wait is set: then the blocked call the
 * alarm interrupts returns EINTR (the handler is installed without
 * SA_RESTART). */
void watchdog(unsigned secs);
extern volatile sig_atomic_t prog_bounded_wait;

/* The start of a program that takes no arguments: exits 2 with a usage
 * line if it got any; line-buffered stdout, SIGPIPE ignored (a write to a
 * closed connection is EPIPE), the watchdog armed. */
void prog_begin(int argc, unsigned watchdog_secs);

/* The start of a small file (/proc's), NUL-terminated: the bytes read,
 * or -1. */
ssize_t read_small(const char *path, char *buf, size_t cap);

/* The state letter of thread tid of this process ('S': asleep in a
 * blocking call), from /proc/self/task/TID/stat; 0 if it is gone. */
char thread_state(pid_t tid);
/* The system call thread tid of this process is in
 * (/proc/self/task/TID/syscall), or -1. */
long current_syscall(pid_t tid);

/* CLOCK_MONOTONIC in seconds. */
double now_s(void);

/* poll() for events on fd, at most ms: the revents, or 0 when none came
 * (the caller says what that means); a poll() error dies. */
short poll_for(int fd, short events, int ms);

/* What kernel object backs fd: "tcp" for a kernel TCP socket, "unix" for an
 * AF_UNIX one (the shim's bridge), else "other" ("unknown": no such fd,
 * "not-a-socket"), as /proc/self/fd and /proc/net tell. It calls no stdio
 * and allocates nothing, only system calls on buffers of its own stack
 * (under 1 KiB): a child made by clone(CLONE_VM) or vfork() may call it
 * while the process whose heap and TLS it shares runs on. (Two such tasks
 * in fopen() at once corrupt malloc's per-thread cache and stdio's list of
 * open files: with one TLS, glibc takes them for one thread, and neither
 * its malloc, which takes no lock in a single-threaded process, nor its
 * stdio locks, which a thread may take again, keep one out.) */
const char *fd_transport(int fd);
/* The same through procfd, a descriptor of /proc opened earlier: for a
 * process that has no /proc of its own (chroot, a mount namespace). */
const char *fd_transport_at(int procfd, int fd);

const char *fam_name(int family);
/* The loopback address of family with port (host order). */
/* Whether family's loopback can be used here: IPv6's is missing where
 * IPv6 is off (net.ipv6.conf.lo.disable_ipv6, as in a container of an
 * IPv4-only Docker network, or ipv6.disable=1). Asked of the kernel once
 * (a bind to ::1); when it cannot, prints "skip: no IPv6 loopback here
 * (why): WHAT" and returns 0. AF_INET: 1. */
int family_usable(int family, const char *what);
socklen_t loopback(int family, unsigned port, struct sockaddr_storage *ss);
unsigned port_of(const struct sockaddr_storage *ss);
/* The port fd's socket is bound to (getsockname; a failure dies). */
unsigned port_of_fd(int fd);
/* The IPv4 address host (dotted) with port; an unparsable host dies
 * ("address"). */
struct sockaddr_in ipv4_addr(const char *host, unsigned port);
/* Binds socket s to 127.0.0.1:port (0: the kernel's choice); returns the
 * port it got. */
unsigned bind_lo(int s, unsigned port);
/* A TCP socket connected to 127.0.0.1:port (blocking). */
int connect_lo(unsigned port);
/* An epoll set (EPOLL_CLOEXEC) of fds[from, from + n) with `events`,
 * each one's data.u32 its index; a failure ends the program. */
int epoll_set_of(const int *fds, int from, int n, uint32_t events);
/* Makes socket fd listen on 127.0.0.1:port (SO_REUSEADDR) with backlog;
 * 0, or -1 with errno (the caller says what failed). */
int listen_lo_at(int fd, unsigned port, int backlog);
/* A new TCP socket listening so (listen_lo_at); a failure dies
 * ("listen"). */
int listener_lo(unsigned port, int backlog);
/* A child process that listens on a loopback port the kernel chose and
 * runs serve(listener), which does not return; its port in *port. Forked
 * first, while the caller has no thread (under the shim the first socket
 * starts one). */
pid_t fork_listener(unsigned *port, void (*serve)(int l));
/* A server's loop: each accepted connection echoed by a thread of its
 * own (blocking reads) until its EOF; never returns (_exit(1) if accept
 * fails). */
__attribute__((noreturn)) void serve_echo_threads(int l);
/* An echo server (serve_echo_threads) forked first, its pid in *server,
 * and n clients connected to it in fds (a failure ends the program); the
 * transport of the first printed as "transport: ... (client)". */
void echo_clients(pid_t *server, unsigned *port, int *fds, int n);
/* A TCP socket connected to host:port (IPv4): blocking, or with nb made
 * non-blocking and connected the way Go does it (EINPROGRESS, POLLOUT
 * within ms, SO_ERROR), and left non-blocking. A failure dies, saying
 * "connect" or "connect (SO_ERROR)" with the errno. */
int connect_host(const char *host, unsigned port, int nb, int ms);
/* The listener on 127.0.0.1:port (backlog 1) and a connection to it from
 * the same program: *c the connecting end, *a the accepted one; returns
 * the listener. */
int pair_lo(unsigned port, int *c, int *a);
/* A TCP socket of family bound to its loopback address, port chosen by the
 * kernel (not listening); *ss and *len get its address. */
int bound_loopback(int family, struct sockaddr_storage *ss, socklen_t *len);

/* Reads exactly len bytes, failing if none arrive within ms at any point. */
void read_exact(int fd, void *buf, size_t len, int ms);
/* Reads until EOF into buf (at most cap - 1 bytes, then a NUL), failing if
 * nothing arrives within ms at any point or more comes; returns the count. */
size_t read_to_eof(int fd, char *buf, size_t cap, int ms);
/* Passes fd over unix socket u (SCM_RIGHTS, one byte of data); 0 or -1. */
int send_fd(int u, int fd);
/* The fd passed over u by send_fd, or -1. */
int recv_fd(int u);
/* Writes all len bytes of blocking fd (again on EINTR), failing on an error. */
void write_exact(int fd, const void *buf, size_t len);
/* getsockopt(SO_ERROR). */
int so_error(int fd);
/* TCP_INFO's tcpi_state (TCP_ESTABLISHED, TCP_CLOSE_WAIT, ...). */
int tcpi_state(int fd);
/* TCP_INFO's tcpi_bytes_received, which glibc's struct tcp_info lacks. */
uint64_t tcpi_bytes_received(int fd);
/* A connected pair on the loopback address of family, through a listener
 * on a port the kernel chose (closed again): *c the client, *a the end
 * accept() returned. */
void loopback_pair(int family, int *c, int *a);
/* An int option that must be there (getsockopt), and one that must be
 * accepted (setsockopt). */
int getsockopt_int(int fd, int level, int opt);
void setsockopt_int(int fd, int level, int opt, int v);
/* accept() on listener l once it is readable, failing if nothing comes
 * within ms. */
int accept_ready(int l, int ms);
/* Writes 64 KiB at a time to non-blocking fd until the kernel refuses
 * (EAGAIN), and again each time it says it has room within 500 ms (a
 * shim's engine may still move bytes on), at most 20 times; returns the
 * bytes written. For a peer that reads nothing. */
long fill_until_refused(int fd);
/* A byte stream a reader can check: byte i of it. */
unsigned char pattern_byte(uint64_t i);
/* Writes n pattern bytes to s while reading their echo, half-closes once
 * all went, checks the echo and the peer's EOF after it, each wait at
 * most ms; s is made blocking first (the sends and reads do not block).
 * Any difference says what (differs()). Leaves s open. */
void echo_pattern(int s, size_t n, int ms);
/* Writes the pattern to non-blocking fd with write()s of up to 64 KiB
 * until max bytes went in or the kernel has had no room for 200 ms (a
 * peer that reads nothing); returns what write() accepted, or -1 (errno)
 * if a write failed otherwise. For a forked child: it never fails. */
long long pattern_fill(int fd, uint64_t max);
/* Reads fd to EOF, checking every byte against the pattern and that at
 * most max come (nothing for ms at any point fails); returns the count.
 * what names the case in FAIL: lines. */
uint64_t pattern_drain(int fd, uint64_t max, int ms, const char *what);
/* waitpid(pid) that fails (naming what) unless pid ends within ms;
 * returns its status. */
int reap_within(pid_t pid, int ms, const char *what);
/* A failure or the watchdog kills pid (SIGKILL) first; -1: nobody. */
void kill_on_fail(pid_t pid);

/* Raises the soft RLIMIT_NOFILE to min(hard limit, 65536), as the shim
 * does for itself, for a program with thousands of sockets over kernel
 * TCP too; returns the soft limit then (a failure dies). */
unsigned long raise_fd_limit(void);

/* The number of this process's fds at min and above whose link starts
 * with prefix (NULL: any), each named on stderr as held by "an image
 * without the shim" if tell; -1 without /proc. */
int fds_linked_from(const char *prefix, int min, int tell);
/* environ less LD_PRELOAD (a static array: one caller at a time). */
char **env_without_preload(void);

/* The fds open in this process that an exec passes on (not
 * close-on-exec), as "a,b,c" into out. */
void fds_passed(char *out, size_t cap);

#endif
