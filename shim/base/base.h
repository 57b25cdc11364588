/*
 * base.h: the base layer of the LD_PRELOAD shim, and its one header.
 *
 * Layers of shim/, each a folder with one public header for the layers above
 * it (tests/check_layers.sh, `make layers`, keeps them so):
 *   interpose -> lifetime -> ports -> engine -> state -> base -> core/rudp.h
 * A file includes the headers of its own folder and the public header of a
 * lower layer (which brings the ones below it); it calls nothing above.
 *
 * Contract of base/: what every layer stands on and nothing more. libc's real
 * entry points, bound once, and its syscall() (real.c); the allocator
 * (alloc.c); the configuration read once from the environment (config.c,
 * key.c); keyed mode's OpenSSL backend for the core (aead_openssl.c);
 * logging (log.c) and qlog traces (qlog.c); the fds the shim owns and
 * must keep from the program (ownfds.c); which process this is, and whether
 * it shares the memory or fd table of the one the records describe
 * (procenv.c); small helpers (util.c, unixdiag.c, tcpdiag.c) and the version. It uses
 * libc and core/rudp.h only, owns no connection and no thread, and is safe
 * from any thread, the program's or an engine's.
 *
 * Inside the shim, never call an interposed name (socket, close, ...): use
 * real_*; base/poison.h, included last by every file that is no
 * interposer, makes the compiler enforce it.
 */
#ifndef SHIM_BASE_H
#define SHIM_BASE_H

#include <netinet/in.h>
#include <poll.h>
#include <sys/select.h>
#include <pthread.h>
#include <stdint.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include "rudp.h"

#define SHIM_EXPORT __attribute__((visibility("default")))

/* Engine-owned fds are moved at or above this number, out of the way of
 * programs that expect small fds (select) or reuse them. */
#define SHIM_FD_BASE 700
#define SHIM_ENGINES_MAX 8          /* RUDP_ENGINES at most */
#define SHIM_ENGINES_DEFAULT_MAX 4  /* default, RUDP_ENGINES=0: one per CPU, at most this many */
/* Connections an engine carries before a new one goes to another engine
 * (started if need be; sooner if it is saturated), and the listen()
 * backlog from which a listener gets a group of engines: a small program
 * keeps one engine thread (engines.c). */
#define SHIM_SPREAD_AT 32

/* ---- real.c: libc's own entry points, bound once ---- */

extern int (*real_socket)(int, int, int);
extern int (*real_bind)(int, const struct sockaddr *, socklen_t);
extern int (*real_listen)(int, int);
extern int (*real_accept)(int, struct sockaddr *, socklen_t *);
extern int (*real_accept4)(int, struct sockaddr *, socklen_t *, int);
extern int (*real_connect)(int, const struct sockaddr *, socklen_t);
extern int (*real_getsockname)(int, struct sockaddr *, socklen_t *);
extern int (*real_getpeername)(int, struct sockaddr *, socklen_t *);
extern int (*real_getsockopt)(int, int, int, void *, socklen_t *);
extern int (*real_setsockopt)(int, int, int, const void *, socklen_t);
extern int (*real_shutdown)(int, int);
extern int (*real_close)(int);
extern int (*real_dup)(int);
extern int (*real_dup2)(int, int);
extern int (*real_dup3)(int, int, int);
extern int (*real_ioctl)(int, unsigned long, ...);
extern int (*real_fcntl)(int, int, ...);
extern int (*real_epoll_ctl)(int, int, int, struct epoll_event *);
extern int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);
extern sighandler_t (*real_signal)(int, sighandler_t);
extern int (*real_pthread_sigmask)(int, const sigset_t *, sigset_t *);
extern int (*real_sigprocmask)(int, const sigset_t *, sigset_t *);
extern ssize_t (*real_sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
extern ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
/* libc's write(), send() and writev() (interpose/appsend.c interposes
 * them): bound on first use, usable before shim_real_init() (real.c). */
ssize_t real_write(int fd, const void *buf, size_t n);
ssize_t real_send(int fd, const void *buf, size_t n, int flags);
ssize_t real_writev(int fd, const struct iovec *iov, int cnt);
/* libc's read(), readv(), recv() and the _FORTIFY_SOURCE forms __read_chk,
 * __recv_chk and __recvfrom_chk (interpose/recv.c interposes them for an
 * abnormal end's errno): bound on first use, as write() is. */
ssize_t real_read(int fd, void *buf, size_t n);
ssize_t real_readv(int fd, const struct iovec *iov, int cnt);
ssize_t real_recv(int fd, void *buf, size_t n, int flags);
ssize_t real_read_chk(int fd, void *buf, size_t n, size_t buflen);
ssize_t real_recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags);
ssize_t real_recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                          struct sockaddr *addr, socklen_t *alen);
/* libc's poll(), ppoll(), __poll_chk and __ppoll_chk (interpose/poll.c),
 * bound the same way. */
int real_poll(struct pollfd *fds, nfds_t n, int timeout);
int real_ppoll(struct pollfd *fds, nfds_t n, const struct timespec *tmo, const sigset_t *mask);
int real_poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen);
int real_ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *tmo, const sigset_t *mask,
                   size_t fdslen);
/* libc's epoll_wait(), epoll_pwait() and epoll_pwait2() (interpose/epoll.c;
 * the engine's loop waits in the last), bound the same way. */
int real_epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout);
int real_epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout, const sigset_t *mask);
int real_epoll_pwait2(int epfd, struct epoll_event *ev, int max, const struct timespec *tmo,
                      const sigset_t *mask);
/* An epoll wait of up to tmo (NULL: no limit): epoll_pwait2, or where
 * the kernel has none (before 5.11) or a seccomp profile refuses it,
 * epoll_pwait with tmo rounded up to a millisecond (never early, at most
 * 1 ms late), remembered for the process: the engines' waits and the rest
 * of a program's epoll_wait (interpose/epoll.c). */
int shim_real_epoll_wait_ts(int epfd, struct epoll_event *ev, int max,
                            const struct timespec *tmo, const sigset_t *mask);
/* 1 while that wait keeps nanoseconds (epoll_pwait2 not found wanting). */
int shim_real_epoll_ns(void);
/* libc's select() and pselect() (interpose/select.c), bound the same way. */
int real_select(int nfds, fd_set *r, fd_set *w, fd_set *x, struct timeval *tv);
int real_pselect(int nfds, fd_set *r, fd_set *w, fd_set *x, const struct timespec *ts,
                 const sigset_t *mask);
extern ssize_t (*real_recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
extern ssize_t (*real_recvmsg)(int, struct msghdr *, int);
extern int (*real_sendmmsg)(int, struct mmsghdr *, unsigned int, int);
extern int (*real_recvmmsg)(int, struct mmsghdr *, unsigned int, int, struct timespec *);
extern long (*real_syscall)(long, ...);
/* libc's clone(), and the address of its vfork() (its fork() without one),
 * for interpose/clonevm.c */
extern int (*real_clone)(int (*)(void *), void *, int, void *, ...);
extern void *real_vfork;
extern struct _IO_FILE *(*real_fdopen)(int, const char *); /* FILE: interpose/stdio.c */

/* The shim exports syscall() (interpose/syscalls.c: the numbers it must see
 * go to its interposers); its own calls go to libc's, through shim_sys
 * (real.c), which reads six arguments, as libc's reads six registers: the
 * macro passes six zeros after the caller's, so that none is read past
 * what was passed (ASan: a stack-buffer-underflow at every write in
 * memory's doorbell, txring.c's three-argument write, since 27995c2). */
long shim_sys(long nr, ...);
#define syscall(...) shim_sys(__VA_ARGS__, 0L, 0L, 0L, 0L, 0L, 0L)
/* The shim exports pthread_sigmask() and sigprocmask() too
 * (lifetime/signals.c: a program's mask change is seen, base/crit.c); its
 * own calls go to libc's through shim_sigmask (real.c). */
int shim_sigmask(int how, const sigset_t *set, sigset_t *old);
#define pthread_sigmask(how, set, old) shim_sigmask(how, set, old)
/* prctl() likewise (interpose/syscalls.c exports one, to see a seccomp
 * filter go in); the shim's own calls are the kernel's (real.c). */
int shim_prctl(int option, ...);
#define prctl shim_prctl
/* sandbox.c: the program installed a seccomp filter (interpose/syscalls.c):
 * the app-thread paths (engine/appsend.c, apprecv.c) are off from then */
void shim_sandbox_set(void);
/* Reads /proc's Seccomp: at start: strict mode, off; a filter inherited
 * over exec, asked of a child the first time shim_sandboxed() is called */
void shim_sandbox_start(void);
/* Whether the app threads must leave their own paths to the engines: a
 * filter installed by the program, or an inherited one under which a
 * child making the paths' calls did not end well (the first call asks,
 * once; meanwhile, and for other threads while it asks, 1). */
int shim_sandboxed(void);
/* The answer so far, without asking: 1 until a child said yes. */
int shim_sandboxed_known(void);
/* A forked child: a question its parent was asking is asked again. */
void shim_sandbox_atfork_child(void);
/* That child's question asked now, whatever the state (tests): 1 if the
 * calls are allowed, else 0 and why in why[n]. */
int shim_sandbox_probe_calls(char *why, size_t n);
/* The same with its six arguments in a[] (real.c; syscalls.c's exported
 * syscall() passes on the numbers it does not take). */
long shim_sys_call(long nr, const long a[6]);

/* Binds every real_* once; safe from any thread, before or after the
 * library constructor. */
void shim_real_init(void);

/*
 * The shim's allocator (alloc.c), for all of the shim's memory and, through
 * the table shim_alloc_core() gives (for rudp_ctx_new), the core's: the
 * engine threads never take libc's malloc lock (a raw clone()'s child would
 * inherit it taken). Each behaves as libc's function of the same name; any
 * thread may free any block. Under ASan and TSan they are libc's.
 * shim_alloc_init() installs its fork handlers, from the constructor before
 * the shim's other fork handlers; shim_alloc_lock_renew() starts it afresh
 * in a raw clone's child.
 */
void *shim_malloc(size_t n);
void *shim_calloc(size_t count, size_t size);
void *shim_realloc(void *p, size_t n);
void shim_free(void *p);
void shim_alloc_init(void);
const rudp_mem *shim_alloc_core(void);
void shim_alloc_lock_renew(void);
/* Whether the calling thread holds the allocator's lock: a signal handler
 * that interrupted it must not allocate (engine/appsend.c). */
int shim_alloc_held(void);

/* ---- config.c: environment, read once and validated ---- */

typedef struct shim_redirect_rule {
    uint8_t exclude;   /* '!' rule: keep on kernel TCP */
    uint8_t family;    /* 0 any, AF_INET, AF_INET6 */
    uint8_t prefix;    /* bits of addr that must match */
    uint8_t any_addr;  /* no address given */
    uint8_t addr[16];  /* IPv4 in addr[0..3] */
    uint16_t port_lo, port_hi; /* 0..65535 when any */
} shim_redirect_rule;

/* RUDP_FD_TABLE: where the engines keep their fds (enginestart.c). auto:
 * in a table of their own where the hard RLIMIT_NOFILE is below
 * SHIM_FD_TABLE_AUTO_BELOW, else in the program's. */
enum { SHIM_FD_TABLE_AUTO, SHIM_FD_TABLE_OWN, SHIM_FD_TABLE_SHARED };
#define SHIM_FD_TABLE_AUTO_BELOW 16384

typedef struct shim_config {
    int log_level;          /* RUDP_LOG: 0 off .. RUDP_LOG_DEBUG */
    int log_fd;             /* RUDP_LOG_FILE or stderr */
    int stats;              /* RUDP_STATS */
    rudp_config rudp;       /* timeouts, buffers, cc from RUDP_* */
    int datagram_set;       /* RUDP_DATAGRAM given: no loopback upgrade */
    int offload;            /* RUDP_OFFLOAD: UDP GSO/GRO where the kernel has them */
    int app_send;           /* RUDP_APP_SEND: a writing thread sends while its engine sleeps */
    int app_recv;           /* RUDP_APP_RECV: a reading thread waits on the UDP socket itself */
    int send_ring;          /* RUDP_SEND_RING: a write goes to its engine in memory */
    int engines;            /* RUDP_ENGINES: engine threads a process may run */
    int engines_auto;       /* RUDP_ENGINES unset: started by load (engines.c) */
    int fd_table;           /* RUDP_FD_TABLE: SHIM_FD_TABLE_* */
    uint64_t memory;        /* RUDP_MEMORY: what remote peers may make us hold */
    int qlog_dirfd;         /* RUDP_QLOG_DIR opened, or -1: no traces (qlog.c) */
    uint64_t qlog_max;      /* RUDP_QLOG_MAX: bytes per trace file */
    int accept_tcp;         /* RUDP_ACCEPT_TCP: listeners also take plain kernel TCP */
    int fallback;           /* RUDP_FALLBACK=tcp: connects rudp cannot make use kernel TCP */
    char reset_id[256];     /* RUDP_RESET_ID: this server's name for its resets, or "" */
    int zero_rtt;           /* RUDP_0RTT=1: listeners give tokens, clients use them */
    int multipath;          /* RUDP_MULTIPATH=handover (1, default) or off (0) */
    rudp_addr offer;        /* RUDP_OFFER_ADDR: servers offer it (family 0: none) */
    int npaths;             /* RUDP_PATHS: the interfaces a standby may use, in order */
    char paths[8][16];      /* (0: any) */
    int nrules;
    shim_redirect_rule rules[32]; /* RUDP_REDIRECT, first match wins */
} shim_config;

extern shim_config shim_cfg;

/* Reads the environment. On a bad value returns -1 and keeps one line
 * naming the variable and the accepted form, for shim_config_tell() or
 * shim_config_refuse(); what was read of it is not used (stats off).
 * check_only (RUDP_CONFIG_CHECK, rudp-run's check): no warning for unknown
 * names, which the program itself gives. */
int shim_config_load(int check_only);

/* Writes the line of a failed shim_config_load() to fd. */
void shim_config_tell(int fd);

/* A TCP socket asked for after a failed shim_config_load(): the line, with
 * the errno, once per process to stderr (and RUDP_LOG_FILE if it opened);
 * returns -EACCES (docs/configuration.md, "A bad setting"). */
int shim_config_refuse(void);

/* Whether a TCP destination (connect) or local port (listen) goes over rudp. */
int shim_redirect(const struct sockaddr *sa);

/* ---- aead_openssl.c: keyed mode's packet protection by OpenSSL ---- */

/* The backend every engine installs in its context (rudp_ctx_set_aead):
 * AES-256-GCM by OpenSSL's libcrypto, loaded by dlopen() when the first
 * keyed context starts, for datagrams of 512 ciphertext bytes or more;
 * libsodium (the core's own) for the rest and for ChaCha20-Poly1305.
 * Where libcrypto.so.3 is missing it does not start, and everything is
 * libsodium's. */
const rudp_aead_backend *shim_aead_openssl(void);
/* Why that backend has no AES-256-GCM here (libcrypto missing, a call
 * missing from it, the cipher not fetched), loading it if not yet; NULL:
 * it has. */
const char *shim_aead_openssl_unavailable(void);
/* OpenSSL contexts a core context's state makes for a cipher (two a
 * connection), and (tests) how many of them its state st holds spare. */
#define SHIM_AEAD_OPENSSL_POOL 32
uint32_t shim_aead_openssl_spare(const void *st, uint8_t cipher);

/* ---- key.c: RUDP_KEY_FILE, the shared key of keyed mode ---- */

/* Reads the key file at path (config.c, for RUDP_KEY_FILE): a regular file,
 * not a symbolic link, with no group or other permission bit, holding 32
 * bytes as 64 hex digits or 44 characters of base64, whitespace around them
 * allowed. Returns 0, or -1 with what is wrong in why (a phrase that follows
 * the variable's name and value: "has mode 0644: ..."). */
int shim_key_load(const char *path, char *why, size_t why_len);

/* The key read by shim_key_load (RUDP_KEY_LEN bytes, kept for the life of
 * the process), or NULL when none is configured: the unkeyed protocol. */
const uint8_t *shim_key(void);

/* ---- qlog.c: RUDP_QLOG_DIR, one qlog trace per connection ---- */

/* Opens the trace directory for RUDP_QLOG_DIR (it must exist and be
 * writable) as an fd the engine owns, high and close-on-exec. Returns the
 * fd; -1: no such directory, or not writable; -2: others may write to it
 * and it is not sticky. */
int shim_qlog_open_dir(const char *path);

/* Traces ctx's connections into RUDP_QLOG_DIR, if it is set. */
void shim_qlog_attach(rudp_ctx *ctx);

/* Writes out what this process's open traces hold; call with the engines
 * parked (at exit, exec or _exit when no keeper goes on; at a keeper's
 * end). */
void shim_qlog_flush_all(void);

/* Fork: the trace list's lock is held across it. In the child, `keeper`
 * (a keeper forked to carry the engines on) keeps the traces; any other
 * child drops them unwritten, its parent's to write, and starts its own
 * limits. */
void shim_qlog_atfork_prepare(void);
void shim_qlog_atfork_parent(void);
void shim_qlog_atfork_child(int keeper);
/* A raw clone's child (procenv.c): the lock made anew and taken, as the
 * prepare handler would have taken it (its holder at the clone may be a
 * thread this process does not have); the child handler releases it. */
void shim_qlog_lock_renew(void);

/* ---- log.c: write(2), never stdio: the application owns stdout ---- */

void shim_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The shim's log goes to stderr unless RUDP_LOG_FILE names a file; not
 * where stderr is a connection (an inetd-style server's, vsftpd's session
 * on fds 0-2): its peer would read our lines as the program's bytes.
 * is_conn(fd) says whether fd, an AF_UNIX socket, is a connection of
 * ours (set by the interposer at init); IPv4 and IPv6 sockets always are. */
void shim_log_set_conn_check(int (*is_conn)(int fd));
/* A block: one line as shim_log writes it, saying `head`, then `body`
 * (len bytes of whole lines, each indented by the caller), all in one
 * write(2) up to PIPE_BUF, so that no other line can fall inside it and
 * the time and "rudp[PID]" are said once for the block. */
void shim_log_block(int level, const char *head, const char *body, size_t len);
/* This process is a keeper from now on: its lines say "rudp-keeper[PID]"
 * where a program's say "rudp[PID]" (keeper.c, before its first line). */
void shim_log_keeper(void);

/* strerror()'s text, untranslated (strerrordesc_np): glibc's strerror()
 * translates through gettext, which may take its locks and malloc() on an
 * engine thread when the program chose a locale (see alloc.c). Never NULL. */
const char *shim_strerror(int err);
#define SHIM_LOG(level, ...)                                                                     \
    do {                                                                                         \
        if (shim_cfg.log_level >= (level))                                                       \
            shim_log(level, __VA_ARGS__);                                                        \
    } while (0)

/* tcpdiag.c: whether a kernel TCP socket of our network namespace listens
 * where a connect to `to` would reach it (its port; its address, or the
 * wildcard; an AF_INET6 one without IPV6_V6ONLY for a v4 peer): 1 yes, 0
 * no, -1 cannot tell (no sock_diag). Only what this host holds: the caller
 * knows whether `to` is one of its addresses. One netlink socket per call. */
int shim_tcp_listener_for(const rudp_addr *to);

/* unixdiag.c: whether a unix socket with inode ino exists in any process
 * of our network namespace: 1 yes, 0 no, -1 cannot tell (no sock_diag).
 * With inq, when 1: the bytes in its receive queue (UNIX_DIAG_RQLEN, what
 * SIOCINQ says on it), -1 if the kernel did not tell. One netlink socket
 * per call. */
int shim_unix_diag(uint64_t ino, int *inq);
/* The same, with a listening socket's accept queue when 1: *len the
 * connections in it, *max its bound (sk_max_ack_backlog: the backlog of
 * its last listen(), capped by somaxconn); -1 if the kernel did not tell. */
int shim_unix_diag_queue(uint64_t ino, int *len, int *max);
/* The same for a listener: 0 also when it was shut down for reading
 * (UNIX_DIAG_SHUTDOWN), as a TCP listener stops at shutdown(SHUT_RD). */
int shim_unix_diag_open(uint64_t ino);
/* A 32-bit attribute (UNIX_DIAG_PEER, UNIX_DIAG_UID) of the unix socket
 * with inode ino, asked with the UDIAG_SHOW_ bits show: 1 *out set, 0 no
 * such socket, -1 cannot tell. */
int shim_unix_diag_u32(uint64_t ino, unsigned show, int attr, uint32_t *out);
/* Every listening unix socket of our network namespace that has a name
 * (abstract ones start with a 0 byte; not NUL-terminated), with its
 * owner's uid (UNIX_DIAG_UID, Linux 5.3): fn(name, len, uid, ctx) each.
 * One dump; 0, or -1: cannot tell. */
typedef void (*shim_unix_name_fn)(const char *name, size_t len, uid_t uid, void *ctx);
int shim_unix_listening_names(shim_unix_name_fn fn, void *ctx);

/* ifmtu.c: the largest UDP payload a connected UDP socket's path may carry
 * unfragmented as far as this host knows (IPv4: its local address's
 * device MTU; IPv6: the route's), or 0 if unknown. No lock, no memory. */
uint32_t shim_ifmtu_payload(int udp);

/* ---- ownfds.c: the fds the engine owns, and in which fd table ---- */

/* Whether the engines keep their fds in a table of their own
 * (RUDP_FD_TABLE; engine/enginestart.c decides at the first engine's
 * start), and setting it. */
int shim_fds_apart(void);
void shim_fds_set_apart(int on);
/* The calling thread is in engine k's own table (after its
 * unshare(CLONE_FILES)): the sets below are that table's for it, for
 * the threads it starts (shim_thread_start) and a process it forks.
 * _in_engines: 0 for a thread of the program's table, else k + 1. */
void shim_fds_enter_engines(int k);
int shim_fds_in_engines(void);
/* A copy, in the calling thread's table, of the program's fd `fd` (from a
 * thread of the engines' own table: pidfd_getfd(2) on this process, whose
 * table is the program's; elsewhere a dup): the new fd, or -1 with errno. */
int shim_fds_take_program(int fd);
/* Records the calling thread, if the program's, as the one to take from
 * where the process's first thread has ended (pthread_exit from main). */
void shim_fds_program_thread(void);
/* A live thread of the program's table (for its /proc/self/task/TID/fd),
 * 0 if none is known. */
pid_t shim_fds_program_tid(void);
/* The /proc directory listing the program's fds into path (48 bytes):
 * where the engines keep their fds apart, a live program thread's
 * (/proc/self/fd is empty once the first thread has ended, pthread_exit
 * from main); else, or if none is known, /proc/self/fd. */
void shim_fds_program_fd_dir(char *path);

/* Each entry of the directory at path named by a decimal number n:
 * fn(d, name, n, ctx), d the directory's fd, until fn returns nonzero
 * (returned then); 0 at the end, -1 if it cannot be opened or read to
 * its end. getdents64
 * into a buffer on the stack: no allocator (for an engine thread). */
int shim_dir_each_num(const char *path, int (*fn)(int d, const char *name, long n, void *ctx),
                      void *ctx);
/* A copy of the calling table's fd through pidfd_getfd, as the engines
 * take the program's (before leaving it: whether the kernel lets them),
 * or -1 with errno. */
int shim_fds_probe_take(int fd);

/* Whether fd belongs to the engine (programs closing every fd skip it). */
int shim_ownfds_has(int fd);
/* Counts fd among those close()/closefrom() must spare (the log file). */
void shim_ownfds_add(int fd);
/* The engine's fds in ascending order, at most max; returns how many
 * (none in a CLONE_VM child with an fd table of its own). */
int shim_ownfds_list(int *out, int max);
/* Adds fd to the set (on) or takes it out; nothing in a CLONE_VM child
 * with an fd table of its own, whose numbers are not the owner's. */
void shim_own_fd(int fd, int on);
/* Takes fd out of the set and closes it. */
void shim_close_owned(int fd);
/* Closes every fd of the set but the n in `keep` (negative ones: none),
 * which stay the only ones in it: a forked child's copies of its parent's
 * engine, but the process-wide files (the log file, the qlog directory). */
void shim_close_all_owned(const int *keep, int n);
/* Held across fork, so that no thread is changing the set meanwhile. */
void shim_ownfds_lock(void);
void shim_ownfds_unlock(void);
void shim_ownfds_lock_renew(void); /* as shim_qlog_lock_renew */

/* ---- procenv.c: a process made without fork() ---- */

/* NULL, or a byte that reads 0 in a child with a copy of this address
 * space (MADV_WIPEONFORK; without it, always 0). */
extern volatile uint8_t *shim_procenv_mark;
/* An engine started (G.mu held): sets the mark. */
void shim_procenv_started(void);
/* At start-up: this process owns the records (and maps the page). */
void shim_procenv_init(void);
/* In a forked child (the fork handler): it owns its copy of the records. */
void shim_procenv_forked(void);
/* 1 iff this is a child that shares the memory of the process owning the
 * shim's records and engines but not its fd table (vfork(), clone(CLONE_VM)
 * without CLONE_FILES), or cannot tell the fd table's sharing (kcmp refused;
 * logged once): it must change no record and hand no fd to an engine. 0 in
 * that process, its threads, a CLONE_FILES child, and a copy (fork, a raw
 * clone). A getpid() system call where a child sharing our memory may
 * exist (shim_procenv_self), and kcmp() in such a child only. */
int shim_procenv_foreign(void);
/* The fd table the caller's per-fd records belong to (fdtab.c,
 * epollreg.c): 0 for the process owning the engines (its threads, a
 * CLONE_FILES child, a copy), the caller's pid in a child that
 * shim_procenv_foreign() tells. As shim_procenv_foreign: for calls that
 * change records, not for every lookup. */
pid_t shim_procenv_table(void);
/* The process whose fds the shim's records and engines name. */
pid_t shim_procenv_owner(void);
/* For lifetime/renew.c: sets the mark's page again (a keeper being born
 * keeps the engines), and records that process me owns the records from
 * now on, checking nothing until an engine starts in it. */
void shim_procenv_own_page(void);
void shim_procenv_settled(pid_t me);

/* 1 iff this is a child sharing the owner's memory (with or without its fd
 * table): what lives in that memory (the connection slab, slots.c) is the
 * owner's, used as a thread of it would. */
int shim_procenv_shared(void);
/* getpid(), without the system call while no child sharing our memory
 * may exist (procenv.c's header): for the checks on every call. */
pid_t shim_procenv_self(void);
/* The program is making a child that shares our memory without being a
 * thread (vfork, clone(CLONE_VM)): shim_procenv_self asks the kernel from
 * now on. */
void shim_procenv_vm_child(void);
/* 1 iff shim_procenv_self answers from memory now (no such child may
 * exist, the pid noted in this process). */
int shim_procenv_noted(void);
/* A vfork() is about to make a child that shares our memory until it execs
 * or _exits: counted until then. */
void shim_procenv_vfork_coming(void);
/* Just before a real exec or _exit: in a vfork child, counts it out and
 * returns 1; else 0. shim_procenv_vfork_back(that) after an exec that
 * failed, the child still there. */
int shim_procenv_vfork_leaving(void);
void shim_procenv_vfork_back(int left);
/* Where interpose/clonevm.c's vfork() stub exists: elsewhere a vfork()
 * child would go unseen, so shim_procenv_self always asks. */
#if defined(__x86_64__) || defined(__aarch64__)
#define SHIM_SEES_VFORK 1
#endif

/* ---- helpers shared by sock.c and the engine ---- */

/* sockaddr <-> rudp_addr */
void shim_to_rudp_addr(const struct sockaddr *sa, rudp_addr *out);
socklen_t shim_from_rudp_addr(const rudp_addr *a, struct sockaddr_storage *out);
/* fd's own address (getsockname) as a rudp_addr: 0, or -1 with errno. */
int shim_to_rudp_local(int fd, rudp_addr *out);

/* The fds a received message m brought (SCM_RIGHTS), in order: the first
 * max go into fds (NULL if max is 0), the rest are closed. Returns how
 * many went into fds. */
int shim_cmsg_take_fds(struct msghdr *m, int *fds, int max);
/* fn for each fd of m's SCM_RIGHTS messages, in order, up to a header
 * whose length does not fit in msg_controllen (shim_cmsg_take_fds takes
 * them; interpose/sockopt.c looks at those a send passes). */
void shim_cmsg_each_fd(struct msghdr *m, void (*fn)(int fd, void *arg), void *arg);

/* The port (host order) of an AF_INET or AF_INET6 address; 0 otherwise. */
unsigned shim_ss_port(const struct sockaddr_storage *ss);

/* sock_diag (NETLINK_SOCK_DIAG): sends the dump request req (reqlen bytes,
 * its nlmsghdr first) and calls visit(h, ctx) for each message of the
 * answer, read in 32 KiB buffers, until NLMSG_DONE. Returns 0, or -1: no
 * netlink, an error or a malformed answer, or visit returned -1. */
struct nlmsghdr;
int shim_diag_dump(const void *req, size_t reqlen,
                   int (*visit)(const struct nlmsghdr *h, void *ctx), void *ctx);
/* The same over netlink protocol proto (NETLINK_ROUTE: engine/standby.c). */
int shim_netlink_dump(int proto, const void *req, size_t reqlen,
                      int (*visit)(const struct nlmsghdr *h, void *ctx), void *ctx);
/* The payload of netlink attribute `type` among the attributes at attrs
 * (len bytes, each length-checked): NULL if absent, else its bytes and
 * *plen their number. */
const void *shim_nla_get(const void *attrs, size_t len, int type, size_t *plen);

/* Reads the start of a small text file (/proc/self/...) with one read():
 * at most size - 1 bytes, NUL-terminated. Their number, or -1 if the file
 * cannot be opened or read or is empty. */
ssize_t shim_read_text(const char *path, char *buf, size_t size);
/* ---- guarded copies (fault.c) ----
 * Installs the shim's handler for SIGSEGV and SIGBUS, the program's
 * dispositions remembered (from the constructor). */
void shim_fault_init(void);
/* 1 iff sig is SIGSEGV or SIGBUS and the handler is the shim's: the
 * program's sigaction() and signal() go to shim_fault_sigaction. */
int shim_fault_owned(int sig);
/* sigaction() for an owned signal: sets and reports the program's
 * disposition, the kernel's handler staying the shim's. 0, or -1 with
 * errno (EFAULT for a bad pointer). */
int shim_fault_sigaction(int sig, const struct sigaction *act, struct sigaction *oact);
/* Copies src into dst, as much as the shorter holds, between the shim's
 * memory and the program's (to_app: dst is the program's; else src): a
 * memcpy under the guard, or where it is off (the sanitizers, a handler
 * replaced) the kernel's process_vm_writev/readv on process me. A fault
 * on the program's side is -1 with errno EFAULT (nothing said of what was
 * copied); else the count, or -1 with the kernel's errno (EPERM, ENOSYS: a
 * sandbox refused the call). The calling thread must have SIGSEGV and
 * SIGBUS unblocked: a blocked fault ends the process. */
ssize_t shim_app_copyv(pid_t me, const struct iovec *dst, int dn, const struct iovec *src, int sn,
                       int to_app);
/* A short critical section on an application's thread (crit.c): no
 * handler of the program runs inside it. Where every handler goes through
 * lifetime/signals.c's trampoline a signal that comes inside is deferred to
 * the section's end, without a system call; else every signal but SIGSEGV
 * and SIGBUS is held, as shim_hold_but_faults. enter: 1, or 0 where the
 * thread holds SIGSEGV or SIGBUS (no section: a guarded copy there would
 * end the process). leave ends a section that enter opened. Sections nest. */
typedef struct shim_crit {
    int masked; /* every signal held: old is the mask to put back */
    sigset_t old;
} shim_crit;
int shim_crit_enter(shim_crit *c);
void shim_crit_leave(shim_crit *c);
/* A section for a wait in the kernel (interpose/recv.c): enter_wait as
 * enter, but one inside another section holds the mask (only the
 * outermost's end lets deferred signals in). Inside it: mask_hint: the
 * thread's mask without a system call, the program's as the section last
 * asked it (a change the shim does not see, siglongjmp's
 * or setcontext's, leaves it stale: a hint for what the wait watches, and
 * never what a signal is judged by); mask_ask: the same asked of the
 * kernel now. Where the section holds the mask, both the mask it put back
 * at its end. deferred: the signals deferred to its end so far (bit
 * sig - 1; 0 where it holds the mask). cycle: the section left and
 * entered again, the deferred signals' handlers run between; 0 where it
 * could not be entered again (a handler blocked SIGSEGV or SIGBUS): no
 * section then. */
int shim_crit_enter_wait(shim_crit *c);
void shim_crit_mask_hint(const shim_crit *c, sigset_t *old);
void shim_crit_mask_ask(shim_crit *c, sigset_t *old);
uint64_t shim_crit_deferred(void);
/* ... the same as a set (with the others empty): whether there are any. */
int shim_crit_deferred_set(sigset_t *set);
int shim_crit_cycle(shim_crit *c);
/* shim_crit_leave from a cancellation's cleanup handler inside the
 * section (a ppoll() with its own mask may have been the cancellation
 * point): the thread's mask is put back to mask first (the program's, as
 * mask_hint gave it). */
void shim_crit_leave_cancelled(shim_crit *c, const sigset_t *mask);
/* First thing in a cancellation's cleanup handler: under ASan, the stack
 * the unwinding left made usable (nothing otherwise). */
void shim_cancel_unwound(void);
/* A lock an application's thread may take (crit.c): held inside a
 * section, so no handler of the program runs on the thread that holds it
 * (one calling close() would wait on it for ever). */
typedef struct shim_mutex {
    pthread_mutex_t m;
    int how;      /* the holder's: 0 a section, 1 the mask (old to put back), 2 none */
    sigset_t old;
} shim_mutex;
#define SHIM_MUTEX_INIT(init) {init, 0, {{0}}}
#define SHIM_MUTEX_INITIALIZER SHIM_MUTEX_INIT(PTHREAD_MUTEX_INITIALIZER)
void shim_mutex_lock(shim_mutex *m);
int shim_mutex_trylock(shim_mutex *m); /* 0, or pthread_mutex_trylock's error */
void shim_mutex_unlock(shim_mutex *m);
void shim_mutex_init(shim_mutex *m); /* a child's copy of one held at fork */
/* signals.c: on once every handler an asynchronous signal can reach is
 * the trampoline's (or the stand-in's), off in a keeper. */
void shim_crit_deferring(int on);
/* In a handler of ours: 1 when sig came inside a section and was queued
 * again for its end (return at once); 0: run the program's handler now. */
int shim_crit_defer(int sig, siginfo_t *si, void *uc);
/* The thread's mask may have changed (the program's pthread_sigmask, a
 * handler run): asked of the kernel again at the next section. */
void shim_crit_mask_changed(void);
/* A handler of the program's starts (+1) or returns (-1) on this thread
 * (lifetime/signals.c's trampoline, fault.c): in_handler then says 1, and
 * the shim does there only what a handler may (interpose/exec.c's _exit).
 * One that leaves by siglongjmp leaves its thread counted as in a handler:
 * the safe side. */
void shim_crit_handler_runs(int delta);
int shim_crit_in_handler(void);
/* Signals deferred to a section's end so far, and those whose handler ran
 * at once because the kernel would not queue them again (RUDP_STATS). */
void shim_crit_counts(uint64_t *deferred, uint64_t *at_once);
/* Every signal held but SIGSEGV and SIGBUS (SIG_BLOCK; *old the mask
 * before): 1; or 0, nothing changed, where the thread blocks either of
 * them: a guarded copy there would end the process at a bad pointer, and
 * letting them in would let in one sent to the thread, which the kernel
 * keeps pending. The app thread's fast paths are not taken then. */
int shim_hold_but_faults(sigset_t *old);
/* A span of guarded copies on a thread whose mask is the program's (an
 * interposed call's): 1 inside a section (crit.c: no handler of the
 * program runs amid a copy, by deferral where the trampoline has the
 * handlers, without a system call; else every other signal held), when
 * the guard is on and the thread takes SIGSEGV and SIGBUS; else 0,
 * nothing changed (the copies are the kernel's then).
 * shim_fault_release ends the section. */
int shim_fault_hold(shim_crit *c);
void shim_fault_release(shim_crit *c);
/* n bytes from src to dst under the guard, inside a span that
 * shim_fault_hold allowed: 0, or -EFAULT. */
int shim_fault_copy(void *dst, const void *src, size_t n);
/* sigaction() of the kernel (glibc's), for calls before real.c bound
 * real_sigaction too. */
int shim_kernel_sigaction(int sig, const struct sigaction *act, struct sigaction *oact);
/* Around an exec(): a program's SIG_IGN for the two made the kernel's
 * (exec keeps ignored signals, resets caught ones); the mask returned is
 * what shim_fault_exec_back puts back if the exec failed. */
int shim_fault_exec_leaving(void);
void shim_fault_exec_back(int changed);
/* *set = every signal but SIGSEGV and SIGBUS: the mask of a thread that
 * makes guarded copies. */
void shim_sigfill_but_faults(sigset_t *set);

/* Copies to (write) or from (read) the application's memory: 0, or -1
 * with errno EFAULT for a bad pointer, as the kernel's own copy (util.c).
 * Several in a row go in one span: shim_user_begin, shim_user_copy (to_user:
 * dst is the application's; else src), shim_user_end. */
typedef struct shim_user_span {
    int guarded; /* fault.c's guarded copies, inside a section */
    shim_crit crit;
} shim_user_span;
void shim_user_begin(shim_user_span *s);
void shim_user_end(shim_user_span *s);
int shim_user_copy(const shim_user_span *s, void *dst, const void *src, size_t n, int to_user);
int shim_user_write(void *dst, const void *src, size_t n);
int shim_user_read(void *dst, const void *src, size_t n);
/* An address of full bytes out to the application as the kernel's
 * getsockname/accept do (move_addr_to_user): cut to *len, the full length
 * written to *len; 0, or -1 with errno EFAULT (a bad pointer) or EINVAL (a
 * negative *len). */
int shim_addr_out(const void *ss, socklen_t full, struct sockaddr *addr, socklen_t *len);
/* A close-on-exec copy of fd at SHIM_FD_BASE or above, or at the lowest
 * free number where there is none from there to the fd limit (a limit
 * below SHIM_FD_BASE): the new fd, or -1 with errno. */
int shim_fd_dup_high(int fd);
/* Moves fd to >= SHIM_FD_BASE with close-on-exec; returns the new fd
 * (closing the old) or the old one if that fails. */
int shim_fd_move_high(int fd);
/* The same for an fd made close-on-exec: one already at SHIM_FD_BASE or
 * above stays where it is, with no system call (a program with hundreds
 * of connections: two calls fewer per socket). */
int shim_fd_move_high_cloexec(int fd);
/* The inode of the file fd names, 0 if none (fd closed, or negative):
 * what tells a socket from another at the same number. */
uint64_t shim_fd_ino(int fd);
/* Whether a shared object whose file name begins with stem is loaded
 * (dl_iterate_phdr: not from a signal handler; the constructor's). */
int shim_lib_loaded(const char *stem);
/* A close-on-exec copy of the file fd names (at SHIM_FD_BASE or above,
 * where the fd limit allows) if it is inode ino, else -1: held, it stays
 * that file whatever another thread does to the number meanwhile. */
int shim_fd_copy_of(int fd, uint64_t ino);
/* Starts fn(arg) on a detached thread with every signal blocked (the
 * program's handlers never run on a thread of ours); 0 or -errno. */
int shim_thread_start(pthread_t *t, void *(*fn)(void *), void *arg);
/* The engine's UDP sockets' buffers: 8 MiB (16 MiB for a listener's). */
void shim_udp_grow_buffers(int udp, int listener);
/* fd's family if it is an AF_INET or AF_INET6 socket of this type and
 * protocol (SOCK_STREAM, IPPROTO_TCP ...), else 0. */
int shim_inet_family(int fd, int type, int protocol);

/* Monotonic now in nanoseconds (clock.c, which the shim's unit tests
 * replace with a clock of their own); ns as a struct timespec. */
rudp_time shim_now(void);
static inline struct timespec shim_timespec(rudp_time ns)
{
    struct timespec t = {.tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull)};
    return t;
}

#endif
