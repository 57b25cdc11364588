/*
 * shim.h: internal interfaces of the LD_PRELOAD shim.
 *
 * The application's fd for a redirected TCP socket is a real AF_UNIX stream
 * socket. Its other end belongs to the engine thread (engine.c), whose
 * bridge (bridge.c) moves bytes between it and a rudp connection from
 * core/. Only set-up and introspection calls are interposed (sock.c); data
 * and readiness are the kernel's own.
 *
 * Layering: sock.c (the exported interposers) -> names.c (addresses encoded
 * in abstract unix names), slots.c (per-connection state shared with the
 * engine, and with forked children), fdtab.c (per-fd records) -> engine.c
 * (thread, epoll, UDP sockets, clock), bridge.c (the pumps) -> core/rudp.h.
 *
 * Inside the shim, never call an interposed name (socket, close, ...):
 * use real_*; shim/poison.h makes the compiler enforce it.
 */
#ifndef SHIM_H
#define SHIM_H

#include <netinet/in.h>
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
#define SHIM_ENGINES_DEFAULT_MAX 4  /* RUDP_ENGINES=0: one per CPU, at most this many */

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
extern int (*real_ioctl)(int, unsigned long, ...);
extern int (*real_epoll_ctl)(int, int, int, struct epoll_event *);
extern int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);
extern sighandler_t (*real_signal)(int, sighandler_t);
extern ssize_t (*real_sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
extern ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
extern ssize_t (*real_recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
extern ssize_t (*real_recvmsg)(int, struct msghdr *, int);
extern int (*real_sendmmsg)(int, struct mmsghdr *, unsigned int, int);
extern int (*real_recvmmsg)(int, struct mmsghdr *, unsigned int, int, struct timespec *);
extern long (*real_syscall)(long, ...);

/* The shim exports syscall() (syscalls.c: the numbers it must see go to its
 * interposers); its own calls go to libc's, through shim_sys (real.c). */
long shim_sys(long nr, ...);
#define syscall shim_sys
/* The same with its six arguments in a[] (real.c; syscalls.c's exported
 * syscall() passes on the numbers it does not take). */
long shim_sys_call(long nr, const long a[6]);

/* Binds every real_* once; safe from any thread, before or after the
 * library constructor. */
void shim_real_init(void);
/* Binds libc's symbols and reads the configuration once (sock.c);
 * returns whether the shim is active (0 in secure execution). */
int shim_init(void);
/* What the engine calls of a listener's port (ports.c) and of a process's
 * lifetime (lifetime.c), registered with it (hooks.h); from the shim's
 * init, before any engine runs. */
void shim_ports_init(void);
void shim_lifetime_init(void);

/*
 * The shim's allocator (alloc.c), for all of the shim's memory and, through
 * rudp_set_allocator, the core's: the engine threads never take libc's
 * malloc lock (a raw clone()'s child would inherit it taken). Each behaves
 * as libc's function of the same name; any thread may free any block. Under
 * ASan and TSan they are libc's. shim_alloc_init() installs it for the core
 * and its fork handlers, from the constructor before the shim's other fork
 * handlers; shim_alloc_lock_renew() starts it afresh in a raw clone's child.
 */
void *shim_malloc(size_t n);
void *shim_calloc(size_t count, size_t size);
void *shim_realloc(void *p, size_t n);
void shim_free(void *p);
void shim_alloc_init(void);
void shim_alloc_lock_renew(void);

/* ---- config.c: environment, read once and validated ---- */

typedef struct shim_redirect_rule {
    uint8_t exclude;   /* '!' rule: keep on kernel TCP */
    uint8_t family;    /* 0 any, AF_INET, AF_INET6 */
    uint8_t prefix;    /* bits of addr that must match */
    uint8_t any_addr;  /* no address given */
    uint8_t addr[16];  /* IPv4 in addr[0..3] */
    uint16_t port_lo, port_hi; /* 0..65535 when any */
} shim_redirect_rule;

typedef struct shim_config {
    int log_level;          /* RUDP_LOG: 0 off .. RUDP_LOG_DEBUG */
    int log_fd;             /* RUDP_LOG_FILE or stderr */
    int stats;              /* RUDP_STATS */
    rudp_config rudp;       /* timeouts, buffers, cc from RUDP_* */
    int datagram_set;       /* RUDP_DATAGRAM given: no loopback upgrade */
    int offload;            /* RUDP_OFFLOAD: UDP GSO/GRO where the kernel has them */
    int engines;            /* RUDP_ENGINES: engine threads a process may run */
    uint64_t memory;        /* RUDP_MEMORY: what remote peers may make us hold */
    int qlog_dirfd;         /* RUDP_QLOG_DIR opened, or -1: no traces (qlog.c) */
    uint64_t qlog_max;      /* RUDP_QLOG_MAX: bytes per trace file */
    int accept_tcp;         /* RUDP_ACCEPT_TCP: listeners also take plain kernel TCP */
    int fallback;           /* RUDP_FALLBACK=tcp: connects rudp cannot make use kernel TCP */
    char reset_id[256];     /* RUDP_RESET_ID: this server's name for its resets, or "" */
    int nrules;
    shim_redirect_rule rules[32]; /* RUDP_REDIRECT, first match wins */
} shim_config;

extern shim_config shim_cfg;

/* Reads the environment. On a bad value prints the variable's name and the
 * accepted form to stderr and returns -1 (the constructor then exits 2). */
int shim_config_load(void);

/* Whether a TCP destination (connect) or local port (listen) goes over rudp. */
int shim_redirect(const struct sockaddr *sa);

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
/* This process is a keeper from now on: its lines say "rudp-keeper[PID]"
 * where a program's say "rudp[PID]" (keeper.c, before its first line). */
void shim_log_keeper(void);
/* A keeper names itself "rudp-keeper" and its command line "rudp-keeper:
 * <the program's>", so ps does not show it as the program (proctitle.c).
 * Single-threaded, in the keeper before it starts engine threads. */
void shim_proctitle_keeper(void);
/* strerror()'s text, untranslated (strerrordesc_np): glibc's strerror()
 * translates through gettext, which may take its locks and malloc() on an
 * engine thread when the program chose a locale (see alloc.c). Never NULL. */
const char *shim_strerror(int err);
#define SHIM_LOG(level, ...)                                                                     \
    do {                                                                                         \
        if (shim_cfg.log_level >= (level))                                                       \
            shim_log(level, __VA_ARGS__);                                                        \
    } while (0)

/* ---- names.c: TCP addresses carried in abstract unix socket names ---- */

/* SHIM_NAME_TCP: an engine's unix connection that carries a plain kernel
 * TCP connection's fd (SCM_RIGHTS) to accept(), not a bridge. */
enum {
    SHIM_NAME_LISTENER = 'L',
    SHIM_NAME_APP = 'A',
    SHIM_NAME_ENGINE = 'E',
    SHIM_NAME_TCP = 'T',
};

typedef struct shim_name {
    char kind;                   /* SHIM_NAME_* */
    int family;                  /* the application's socket family */
    struct sockaddr_storage local, peer;
    uint32_t slot;               /* shared state slot, UINT32_MAX none */
    uint64_t id;                 /* connection id, unique per engine */
    int32_t pid;                 /* engine owner */
} shim_name;

/* Binds unix socket fd to the abstract name for n, made unguessable by 128
 * random bits (a name nobody can predict cannot be squatted before we bind
 * it). Returns 0 or -errno. */
int shim_name_bind(int fd, const shim_name *n);

/* Decodes the name of fd (own when peer == 0, its peer's otherwise).
 * Returns 1 if it is one of ours, 0 if not, -errno on failure. Decoding
 * says nothing of who bound the name: see shim_name_peer. */
int shim_name_get(int fd, int peer, shim_name *n);

/* Decodes the name of fd's peer if it is an engine end; with `verify`, only
 * if that peer is also one of our engines (shim_ident_inherited): for fds
 * the shim has no record of. Returns 1, or 0 (not ours, or not trusted). */
int shim_name_peer(int fd, shim_name *n, int verify);

/* Whether the address a recvfrom()/recvmsg() returned, of length len in a
 * buffer of cap bytes, names an engine end of ours (by its form alone: no
 * system call). */
int shim_name_is_engine(const struct sockaddr *sa, socklen_t len, socklen_t cap);

/* msgaddr.c: getsockopt of the peer's credentials on a socket of ours,
 * answered as TCP does. Returns 1 with *ret (0, or -1 and errno) for
 * SO_PEERCRED, SO_PEERGROUPS and SO_PEERPIDFD, 0 for any other option. */
int shim_peercred_getsockopt(int opt, void *val, socklen_t *len, int *ret);

/* msgaddr.c, for mmsg.c: sendmsg() as TCP answers it on a bridge (an
 * address on the connected socket ignored): the count sent, or -1 and
 * errno as libc's sendmsg. And, after a successful receive into msg whose
 * msg_name buffer held cap bytes (0: none asked), the address turned into
 * length 0 where it names an engine end of ours (TCP reports none). */
ssize_t shim_msgaddr_sendmsg(int fd, const struct msghdr *msg, int flags);
void shim_msgaddr_received(struct msghdr *msg, socklen_t cap);
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5; older headers lack it */
#endif

/* Whether fd is one of our unix sockets; fills *n. The peer's name carries
 * both addresses, so it is tried first (checked as shim_name_peer does with
 * `verify`), then the own (listener or app end) name. */
int shim_name_of(int fd, shim_name *n, int verify);

/* ---- ident.c: who may stand at the other end of a bridge (SO_PEERCRED) ---- */

/* The pid and uid of the process that last called listen() on lfd. */
int shim_ident_listener_cred(int lfd, pid_t *pid, uid_t *uid);
/* Whether the connection nfd, just accepted on our listener lfd (whose
 * name names `owner`), was made by the engine serving it. Counts and logs
 * a refusal. Returns 1 or 0. */
int shim_ident_accepted(int lfd, int nfd, pid_t owner);
/* Engine side: whether efd, just connected to a listener's name, reached
 * our application's listener (made by `owner` with uid `luid`). */
int shim_ident_listener(int efd, pid_t owner, uid_t luid);
/* Whether fd's peer may be one of our engines although we hold no record
 * of fd (inherited over exec): this process, root, or our own uid. */
int shim_ident_inherited(int fd);
/* Connections refused by shim_ident_accepted in this process. */
uint64_t shim_ident_refused(void);

/* ---- tcpaccept.c, application side ---- */

/* Takes listening TCP socket fd out of the LISTEN state (connect(AF_UNSPEC),
 * tcp_disconnect): what waits in its queue is reset, new SYNs are refused,
 * a port bound by number stays bound. */
void shim_tcp_unlisten(int fd);

/* ufd was just accepted from one of our listeners, from our engine (checked),
 * and its peer is named SHIM_NAME_TCP: receives the kernel TCP socket the
 * engine passes over it, waiting for it if the engine has not sent it yet,
 * and the peer address the kernel's accept gave (*peer, *plen). Returns
 * that fd (close-on-exec, non-blocking), or -ECONNABORTED when the engine
 * closed ufd without one (the connection is to be dropped). */
int shim_tcpl_receive(int ufd, struct sockaddr_storage *peer, socklen_t *plen);

/* ---- slots.c: per-connection state shared by engine and application ---- */

enum {
    SHIM_SLOT_FREE = 0,
    SHIM_SLOT_CONNECTING,
    SHIM_SLOT_ESTABLISHED,
    SHIM_SLOT_FAILED, /* handshake failed: so_error tells why */
    SHIM_SLOT_CLOSED,
    SHIM_SLOT_TCP,    /* RUDP_FALLBACK: the app's fd is a kernel TCP socket now */
};
#define SHIM_SLOT_F_LINGER0 1u /* close() must reset */
#define SHIM_SLOT_F_FILLER 2u  /* the app's end still holds connect's filler */
#define SHIM_SLOT_F_SNDBUF 4u  /* ... and its small send buffer (shim_sndbuf_restore) */
#define SHIM_SLOT_F_SWAP 8u    /* the engine may put a kernel TCP socket at the app's fd */
#define SHIM_SLOT_F_PLACED 16u /* ... which holds the app's end since connect() put it there */

typedef struct shim_slot {
    _Atomic uint64_t id;
    _Atomic uint32_t seq;        /* odd while the engine moves app bytes in */
    _Atomic int32_t state;
    _Atomic int32_t so_error;    /* pending, cleared by getsockopt(SO_ERROR) */
    _Atomic int32_t end_error;   /* what the connection ended with, 0 if clean */
    _Atomic uint32_t flags;
    _Atomic uint64_t unacked;    /* bytes sent, not yet acknowledged */
    _Atomic uint64_t unsent;     /* ... of which never sent yet (SIOCOUTQNSD) */
    _Atomic uint32_t tcp_state;  /* TCP_ESTABLISHED ... for TCP_INFO */
    _Atomic uint32_t rtt_us, rttvar_us, min_rtt_us, mss;
    _Atomic uint64_t cwnd, ssthresh, retrans, bytes_acked, bytes_received, pacing_rate;
    _Atomic uint64_t in_flight, delivery_rate, peer_window; /* TCP_INFO */
    _Atomic uint32_t delivery_app_limited;
    _Atomic uint32_t probes;     /* probe timeouts in a row (TCP_INFO's probes, backoff) */
    _Atomic uint64_t last_rx;    /* when the peer was last heard, shim_now() */
    _Atomic uint64_t last_used;  /* for reuse order */
    /* The engine's end of the bridge, as the engine's process numbers it,
     * and its inode (0: not known): SIOCOUTQ asks it how many bytes the app
     * wrote that the engine has not read (shim_slot_app_queued). */
    _Atomic int32_t efd;
    _Atomic uint64_t efd_ino;
    /* SO_SNDBUF the app set while its end still had connect()'s small
     * buffer (SHIM_SLOT_F_SNDBUF), as the kernel would report it (0: none):
     * shim_sndbuf_restore gives it, getsockopt shows it. */
    _Atomic int32_t sndbuf_want;
    /* The app's end of the bridge as the fd table of the process that owns
     * the engines numbers it (its record's fd, -1: none) and its inode:
     * where shim_appfd_reset_mark finds it without walking the records. */
    _Atomic int32_t app_fd;
    _Atomic uint64_t app_ino;
} shim_slot;

#define SHIM_MAX_SLOTS 65536

/* Allocates a slot for a new connection id; returns its index or
 * UINT32_MAX when none is free. */
uint32_t shim_slot_alloc(uint64_t id);

/* The slot for (index, id) of this process's engine, or NULL if it was
 * reused or never existed; _pid looks in the slab of the engine of `owner`
 * (a parent whose connections we inherited). */
shim_slot *shim_slot_get(uint32_t index, uint64_t id);
shim_slot *shim_slot_get_pid(uint32_t index, uint64_t id, pid_t owner);
/* Whether the slab of `owner`'s engine is mapped here: a slot then missing
 * from it (shim_slot_get_pid NULL) was freed, its connection over; without
 * the slab (an image that could not map it) nothing is known. */
int shim_slot_slab_known(pid_t owner);

/* Bytes the app wrote to its end `fd` of slot s's bridge that the engine
 * has not read: SIOCINQ of the engine's end when this process holds it
 * (the same inode), else the app end's SIOCOUTQ. The latter is what AF_UNIX
 * gives, memory (every write's buffer overhead, ~0.5-1 KiB each), not
 * bytes: a chat server's delivery receipts, counting acknowledged bytes as
 * written minus SIOCOUTQ, missed lines behind a few small writes. */
int shim_slot_app_queued(shim_slot *s, int fd, int *q);

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

/* Marks a slot reusable (its connection is gone on both sides). */
void shim_slot_free(uint32_t index);

/* A failed connection's slot: kept readable, reused only when no fresh or
 * freed slot is left, oldest first. */
void shim_slot_retire(uint32_t index);

/* The pid under which our slab is known (names carry it): ours, or in a
 * keeper the pid of the engine it took over from. */
pid_t shim_slot_owner(void);

/* appfd.c: gives a connecting app end (fd, if it still holds inode ino)
 * its send buffer back, once; close() of the fd forgets it. */
void shim_sndbuf_restore(shim_slot *s, int fd, uint64_t ino, int size);
void shim_sndbuf_forget(shim_slot *s);
/* setsockopt(SO_SNDBUF or SO_SNDBUFFORCE) on the app end of slot s while
 * the small buffer holds (the app must not become writable before the
 * handshake is done): the size is noted in s->sndbuf_want, for the
 * restore, and the end keeps the small one. Returns 0 if it was not holding
 * (the caller sets it itself), else 1 with *ret (and errno) as
 * setsockopt's. */
int shim_sndbuf_pending_set(shim_slot *s, int opt, const void *val, socklen_t len,
                            int *ret);
/* The SO_SNDBUF to show for s's app end while the small buffer holds, if
 * the app set one (1), else 0. */
int shim_sndbuf_pending_shown(shim_slot *s, int *v);

/* halfclose.c: the TCP state to report for bridged fd, given the state the
 * engine published: ESTABLISHED and CLOSE_WAIT become FIN_WAIT1 and
 * LAST_ACK once the application has shut fd down for writing, as TCP's
 * shutdown() does at once, before the engine has read up to that EOF.
 * Other states, and fds not shut down, are returned as they are; errno is
 * kept. */
uint8_t shim_halfclose_state(int fd, uint8_t published);

/* appfd.c: on the peer's reset, the app end of slot s's connection (its
 * number and inode kept in s by its record, if the fd still holds it)
 * writes one byte to the engine's end efd, which the engine leaves unread:
 * closing efd then sets ECONNRESET on the app's end (unix_release_sock),
 * which its read() and poll() (POLLERR) report as TCP does. Returns 1 if
 * efd holds unread bytes now. */
int shim_appfd_reset_mark(shim_slot *s, int efd);

/* appfd.c: the lock the three above and connect() (placing the app end)
 * take around what they do with an app's fd number. */
void shim_appfd_lock(void);
void shim_appfd_unlock(void);
void shim_appfd_atfork_prepare(void);
void shim_appfd_atfork_parent(void);
void shim_appfd_atfork_child(void);
void shim_appfd_lock_renew(void);

/* sock.c: the TCP-level options recorded in rec (TCP_NODELAY, keepalive
 * timers, TCP_USER_TIMEOUT, TCP_CORK, SO_KEEPALIVE) onto kernel socket tfd. */
struct shim_fd;
void shim_put_tcp_options(int tfd, const struct shim_fd *rec);
/* sock.c: puts nfd at the app's fd (then closes nfd), with the socket-level
 * options fd has that TCP carries over and what shim_fdswap carries (the
 * flags given: FD_CLOEXEC from fd_flags, O_NONBLOCK, O_APPEND and O_ASYNC
 * from status_flags; the owner; epoll registrations, still noted, and fd
 * still marked for epoll_ctl to note more, if keep_regs: the new file may
 * be swapped again). Returns how many options it carried (0: nfd's defaults were
 * the same), or -errno (nfd then stays open). */
int shim_replace_fd(int fd, int nfd, int status_flags, int fd_flags, int keep_regs);

/* ---- reconnect.c: connect() on a bridge, the wait of a blocking one ---- */

/* connect(fd, addr, len) on fd, one of ours (rec, n): EALREADY, EISCONN,
 * 0 once after a non-blocking connect completed, a failed handshake's
 * error (the fd then becomes an unconnected kernel TCP socket again), and
 * AF_UNSPEC disconnecting (the same, with a reset of an established
 * connection), as Linux TCP answers. Returns 0 or -1 with errno. */
int shim_reconnect(int fd, const struct shim_fd *rec, const shim_name *n,
                   const struct sockaddr *addr, socklen_t len);
/* The wait of a blocking connect() for its handshake, at most SO_SNDTIMEO:
 * 0; -1 with errno: the handshake's error (the fd unconnected again as
 * above), EINPROGRESS (EALREADY if again) when SO_SNDTIMEO ran out, EINTR. */
int shim_connect_wait(int fd, const struct shim_fd *rec, const shim_name *n, int again);
/* SO_ERROR a connect(AF_UNSPEC) left on fd (now a kernel TCP socket), taken
 * (0: none). */
int shim_reconnect_so_error(int fd);
/* A new connect() on fd: forget what a disconnect left. */
void shim_reconnect_forget(int fd);
/* getsockname() of fd, a kernel TCP socket whose own answer is *ss (port 0):
 * if fd is the fresh socket a failed connect or a disconnect left
 * (unbridge), replaces *ss and *sl with the name Linux keeps there (the
 * attempt's port) and returns 1; otherwise 0. */
int shim_reconnect_name(int fd, struct sockaddr_storage *ss, socklen_t *sl);

/* appfd.c, for RUDP_FALLBACK: puts the connected kernel TCP socket tfd at
 * the app's fd (if it still holds the app end of inode ino), with the app
 * end's fd and status flags, the TCP options the app set since connect(),
 * and its epoll registrations; the fd is then the kernel's, no longer
 * ours, and s says SHIM_SLOT_TCP. Returns 1 done (tfd is still the
 * caller's to close), 0 not yet (connect() has not placed the app end:
 * try again shortly), -1 never (the app closed the fd). */
int shim_fd_swap_in(shim_slot *s, int fd, uint64_t ino, int tfd);
/* Puts nfd's file at fd (dup3; nfd stays open), with the status flags and
 * fd flags given (fd's, read by the caller before the engine shared its
 * file: the engine makes its copies non-blocking), and fd's F_SETOWN_EX
 * owner, F_SETSIG signal and noted epoll registrations (kept noted, and fd
 * marked, if keep_regs). Returns 0 or -errno (fd then keeps its file and
 * registrations). */
int shim_fdswap(int fd, int nfd, int status, int fdflags, int keep_regs);
void shim_slots_keeper(void);
/* A keeper that ends takes its pid out of the slabs' headers again. */
void shim_slots_keeper_done(void);
/* Whether pid is a keeper entered (shim_slots_keeper) in a slab of owner's
 * that this process has mapped: a keeper of ours, which only our processes
 * can have written there. */
int shim_slots_is_keeper(pid_t owner, pid_t pid);
void shim_slots_atfork_prepare(void);
void shim_slots_atfork_parent(void);
void shim_slots_atfork_child(void);
void shim_slots_lock_renew(void); /* as shim_qlog_lock_renew */

/* exec: the slabs (memfds) go to the new image, which maps them, so that
 * SO_ERROR, TCP_INFO and SIOCOUTQ of inherited connections answer from
 * the keeper's live state. shim_slots_exec_copies makes copies of the
 * slabs' memfds (into x->fds; close-on-exec if x->cloexec) and their
 * RUDP_EXEC_SLABS value (x->val). shim_slots_exec_env returns what to
 * exec with: envp plus RUDP_EXEC_SLABS naming the copies (made here if
 * none were) or, with x->pass_val set (execpass.c: the keeper passes
 * them), that variable instead (in x, or allocated for a large
 * environment), or envp itself when there is nothing to pass. If the
 * exec fails, shim_slots_exec_failed closes the copies and frees. x lives
 * on the caller's stack: nothing is allocated after vfork(). */
#define SHIM_SLABS_MAX 8 /* ours plus inherited ones, through a few forks and execs */
#define SHIM_EXECPASS_VAR "RUDP_EXEC_PASS"
#define SHIM_HAND_FDS 32 /* racing connects listed for the new image, at most */
typedef struct shim_exec_env {
    char *stack[512];
    char val[sizeof "RUDP_EXEC_SLABS=" + SHIM_SLABS_MAX * 12];
    int fds[SHIM_SLABS_MAX];
    int nfds;
    int cloexec;       /* 1: the copies keep FD_CLOEXEC (spawn.c clears it in the child) */
    char **env;
    int hand;          /* exechand.c: the new image's end of the pair, -1: none */
    char hand_apps[SHIM_HAND_FDS * 12]; /* the app fds racing, "a,b,c" */
    char pass_val[sizeof SHIM_EXECPASS_VAR "=" + 40]; /* execpass.c: the keeper's name, "" if none */
} shim_exec_env;
void shim_slots_exec_copies(shim_exec_env *x);
char *const *shim_slots_exec_env(shim_exec_env *x, char *const envp[]);
void shim_slots_exec_failed(shim_exec_env *x);
/* newimage.c: whether the image exec'd from path (searched in PATH if
 * search and it has no '/'), or from fd when path is NULL, with envp
 * will run the shim: its LD_PRELOAD (or /etc/ld.so.preload) names this
 * library, and it is a dynamic ELF of our class and machine, not set-uid
 * or set-gid. 1 where it cannot tell. resetids: the child runs with our
 * real ids (posix_spawn's POSIX_SPAWN_RESETIDS). Safe after vfork(). The
 * slabs go only to an image that runs the shim. shim_newimage_init (at
 * start-up) finds our own file. */
int shim_newimage_runs_shim(const char *path, int fd, int search, char *const envp[],
                            int resetids);
void shim_newimage_init(void);

/* ---- exechand.c: a connect racing kernel TCP across exec ----
 *
 * shim_exechand_prepare, before the engines are handed over for exec: if
 * some connect races, makes the pair whose one end the keeper keeps and
 * whose other (x->hand, close-on-exec) the keeper passes to the new image
 * (execpass.c) with the racing app fds (x->hand_apps); shim_exechand_failed
 * undoes it when the exec failed. In the keeper: shim_exechand_live says whether
 * a new image can take sockets; shim_exechand_send passes TCP socket tfd
 * for the app's fd app_fd (inode app_ino, slot, connection id) and returns
 * 0 or a negative errno; shim_exechand_answer returns 1 with *result (1:
 * it is at the app's fd; -1: the app had closed it) once the new image
 * answered for id, -1 if it never will (its end is closed), 0 not yet;
 * shim_exechand_idle closes the keeper's end once nothing races any more.
 * shim_exechand_adopt, at the new image's start-up, takes the pair the
 * keeper passed (shim_execpass_hand) and starts the thread that puts the
 * sockets in place. */
void shim_exechand_prepare(shim_exec_env *x);
void shim_exechand_failed(shim_exec_env *x);
int shim_exechand_live(void);
int shim_exechand_send(int tfd, int app_fd, uint64_t app_ino, uint32_t slot, uint64_t id);
int shim_exechand_answer(uint64_t id, int *result);
void shim_exechand_idle(void);
void shim_exechand_adopt(void);

/* ---- execpass.c: what our exec passes to the new image, through the keeper ----
 *
 * shim_execpass_prepare (exec, before the hand-over, for an image that runs
 * the shim): copies of the slabs and the racing pair's end, all
 * close-on-exec, and an abstract socket with a random name to serve them
 * on (x->pass_val), held for the keeper to be forked. shim_execpass_env,
 * after the hand-over (keeper: whether one was forked): where no keeper
 * serves them, forks a holder, or lets the copies cross the exec open
 * when no other thread shares the fd table; then our copies are closed
 * and the environment to exec with returned (shim_slots_exec_env).
 * shim_execpass_failed: the exec failed, the holder is told to leave.
 * shim_execpass_keeper (in the keeper, once the exec of pid from happened)
 * serves them on a thread, if that pid prepared them; shim_execpass_keeper_wait waits for it. shim_execpass_adopt
 * (the new image's start-up) fetches them; shim_execpass_hand hands the
 * pair's end (-1 if none) and the app fds to exechand.c. */
void shim_execpass_prepare(shim_exec_env *x);
char *const *shim_execpass_env(shim_exec_env *x, int keeper, char *const envp[]);
void shim_execpass_failed(shim_exec_env *x);
void shim_execpass_keeper(pid_t from);
void shim_execpass_keeper_wait(void);
void shim_execpass_adopt(void);
int shim_execpass_hand(const char **apps);
/* In a keeper, or for a CLONE_VM child's connect (fallback.c): carries a
 * connection on between the bridge's end efd and the TCP socket tfd (both
 * ours from then on, engine-owned), on threads of its own, and retires
 * slot (UINT32_MAX: none) when it ends; 0 or -errno (then both are still
 * the caller's). shim_exechand_relays_wait returns once every relay has
 * ended. */
int shim_exechand_relay(int efd, int tfd, uint32_t slot);
void shim_exechand_relays_wait(void);
/* Maps the slab whose memfd is fd (the keeper passed it, execpass.c) with
 * the checks shim_slots_adopt makes; 0, or -1 when fd is no slab of ours. */
int shim_slots_adopt_fd(int fd);
/* At start-up: maps the slabs RUDP_EXEC_SLABS names (checked: sealed
 * memfds of our size and magic), moves their fds high and close-on-exec,
 * and removes the variable from the environment. */
void shim_slots_adopt(void);
/* Whether fd is a slab's memfd (spared by the app's close, close_range,
 * closefrom: a forked child that closes every fd and then execs passes
 * it on); shim_slots_fds lists them (at most max) into out. */
int shim_slots_fd(int fd);
int shim_slots_fds(int *out, int max);

/* ---- fdtab.c: what the shim knows about application fds ---- */

enum {
    SHIM_FD_CANDIDATE = 1, /* kernel TCP socket, may still be redirected */
    SHIM_FD_LISTENER,      /* replaced by a unix listener */
    SHIM_FD_BRIDGED,       /* replaced by a connected unix socket */
};

/* Options a unix socket cannot hold, as the app set them (raw, in the
 * order set): options.c replays them onto a scratch kernel socket to
 * answer getsockopt. Values longer than SHIM_KEPT_LEN are checked by the
 * kernel but not kept. */
#define SHIM_KEPT_MAX 24
#define SHIM_KEPT_LEN 16
typedef struct shim_kept_opt {
    int16_t level, opt;
    uint8_t len;
    uint8_t val[SHIM_KEPT_LEN];
} shim_kept_opt;
typedef struct shim_kept_opts {
    uint8_t n;
    shim_kept_opt o[SHIM_KEPT_MAX];
} shim_kept_opts;

typedef struct shim_fd {
    int fd;
    int kind;
    uint64_t ino;          /* inode of the socket, to spot fd reuse */
    uint64_t id;           /* listener or connection id */
    uint32_t slot;
    int connect_done;      /* connect() returned its result once */
    int sockopts_default;  /* listener: socket-level options all at the unix
                            * socket's defaults, so accept() copies none */
    /* options recorded for the TCP level, answered by getsockopt */
    int nodelay, keepalive, linger_on, linger_secs, v6only, user_timeout_ms;
    int keepidle, keepintvl, keepcnt, cork, quickack;
    int reuseport;         /* SO_REUSEPORT: set before listen(), or since */
    int fallback;          /* connecting with RUDP_FALLBACK=tcp: epoll_ctl is noted */
    int family;            /* the TCP socket's family (options.c asks a kernel socket of it) */
    int bound_addr;        /* connect(): the app had bound a specific address */
    const rudp_cc_ops *cc; /* TCP_CONGESTION chosen, NULL: RUDP_CC or rudp's default */
    shim_kept_opts kept;   /* other IP/IPv6/TCP options the app set (options.c) */
    unsigned bufs_set;     /* SHIM_BUF_SND/RCV: the app set SO_SNDBUF/SO_RCVBUF (connopts.c) */
    uint32_t sndbuf_req, rcvbuf_req; /* ... the sizes it asked (as read back, halved) */
    int sndbuf_shown;      /* getsockopt(SO_SNDBUF) while TCP_NOTSENT_LOWAT shrinks the
                            * app end's buffer; 0: the socket's own */
} shim_fd;
#define SHIM_BUF_SND 1u
#define SHIM_BUF_RCV 2u

/* Looks up fd; fills *out and returns 1 if a current record exists. */
int shim_fd_get(int fd, shim_fd *out);
/* Adds or replaces the record of r->fd (stamping its inode). */
void shim_fd_put(const shim_fd *r);
void shim_fd_del(int fd);
/* The fds of connects with RUDP_FALLBACK=tcp on record (at most max, into
 * out); returns how many. */
int shim_fd_list_fallback(int *out, int max);
/* The fd numbers in [first, last] with a record of this table (at most
 * max): close_range() closes them as close() does. */
int shim_fd_list_range(int *out, int max, unsigned first, unsigned last);
void shim_fdtab_atfork_prepare(void);
void shim_fdtab_atfork_parent(void);
void shim_fdtab_atfork_child(void);
void shim_fdtab_lock_renew(void); /* as shim_qlog_lock_renew */

/* ---- options.c: IP-, IPv6- and TCP-level options of redirected sockets ---- */

/* getsockopt/setsockopt at a level other than SOL_SOCKET on one of our fds
 * (rec; n its name, s its slot or NULL), as Linux TCP answers: 0 or -1 with
 * errno. Set may change *rec (the caller stores it). */
int shim_opts_get(const shim_fd *rec, const shim_name *n, shim_slot *s, int level, int opt,
                  void *val, socklen_t *len);
int shim_opts_set(shim_fd *rec, int level, int opt, const void *val, socklen_t len);

/* After a successful setsockopt at a level other than SOL_SOCKET on a
 * kernel TCP socket of family that is not ours (yet): remembers the option
 * in a SHIM_FD_CANDIDATE record, so connect()/listen() carry it over. */
void shim_opts_candidate(int fd, int family, int level, int opt, const void *val, socklen_t len);
/* fd's SHIM_FD_CANDIDATE record into *rec (a new one if it has none):
 * 1, or 0 if fd has a record of another kind (ours already). */
int shim_opts_candidate_rec(int fd, shim_fd *rec);
/* setsockopt(TCP_CONGESTION) before connect()/listen() that the kernel
 * refused with ENOENT: a controller rudp runs and this kernel lacks (all of
 * rudp's but reno, bbr and cubic here) is taken into fd's candidate record
 * for the connection rudp makes. Returns 1 if taken (the call then
 * succeeds), 0 if not ours. */
int shim_opts_candidate_cc(int fd, int family, const void *val, socklen_t len);
/* getsockopt(TCP_CONGESTION) on a socket not yet connected whose
 * candidate record holds the controller last set: 1 with *ret the call's
 * result, 0 to ask the kernel. */
int shim_opts_candidate_cc_get(int fd, void *val, socklen_t *len, int *ret);

/* At connect()/listen() of fd: the options its candidate record kept go to
 * rec (and the controller chosen to cfg). */
void shim_opts_inherit(int fd, shim_fd *rec, rudp_config *cfg);

/* The kept options that shape packets (IP_TOS, IPV6_TCLASS, IP_TTL,
 * IPV6_UNICAST_HOPS) onto the connection's UDP socket; all kept options and
 * the controller onto kernel TCP socket tfd (a fallback, a plain client). */
void shim_opts_to_udp(int udp, const shim_fd *rec);
/* The options that mark the datagrams, which the connection's UDP socket
 * takes (as TCP holds them: TCP clears the ECN bits of IP_TOS and
 * IPV6_TCLASS, ip(7), ipv6(7); UDP would send them). pktctl.c. */
typedef struct shim_mark_opt {
    int level, opt;
} shim_mark_opt;
#define SHIM_MARKS 4
extern const shim_mark_opt shim_marks[SHIM_MARKS];
/* Those marks from UDP socket `from` onto `to` (a roaming client's new
 * socket, a listener's SO_REUSEPORT member), both of family (pktctl.c). */
void shim_marks_copy(int from, int to, int family);
void shim_opts_to_tcp(int tfd, const shim_fd *rec);
/* The kernel's reading (normalised) of an int option rec kept: 1 and *v,
 * or 0 if the app never set it. */
int shim_opts_kernel_int(const shim_fd *rec, int level, int opt, int *v);

/* ---- connopts.c: options that size a live connection ---- */

/* setsockopt(SOL_SOCKET, SO_SNDBUF/SO_RCVBUF and their FORCE forms) done
 * on kernel TCP socket fd (not ours yet): noted in its candidate record so
 * connect()/listen() size the connection by it. */
void shim_connopts_candidate(int fd, int opt);
/* At connect()/listen() of kernel TCP socket fd (rec filled from its
 * candidate record): the send buffer, receive window (SO_SNDBUF,
 * SO_RCVBUF, TCP_WINDOW_CLAMP) and TCP_NOTSENT_LOWAT into cfg. */
void shim_connopts_config(int fd, shim_fd *rec, rudp_config *cfg);
/* The send buffer to give the app's end of a new bridge (dflt: the unix
 * socket's, halved as set): the app's SO_SNDBUF, at most half of
 * TCP_NOTSENT_LOWAT (see connopts.c); notes what getsockopt must show. */
int shim_connopts_app_sndbuf(int fd, shim_fd *rec, const rudp_config *cfg, int dflt);
/* The SO_SNDBUF a TCP connection shows before the app sets one (loopback:
 * net.ipv4.tcp_wmem's maximum), 0 if unknown; and setting half of such a
 * value on an app end (SO_SNDBUFFORCE past net.core.wmem_max if allowed). */
int shim_tcp_sndbuf_default(void);
void shim_app_end_sndbuf(int fd, int size);
/* accept() made rec, a copy of its listener's: its app end fd (rec->fd)
 * gets the send buffer TCP_NOTSENT_LOWAT needs. */
void shim_connopts_accepted(shim_fd *rec);
/* After the app set SO_SNDBUF/SO_RCVBUF (SOL_SOCKET opt, 0 for TCP-level
 * options) on one of ours, or TCP_WINDOW_CLAMP/TCP_NOTSENT_LOWAT: tells
 * the engine, and sizes the app's end. The caller stores *rec. */
void shim_connopts_changed(shim_fd *rec);
void shim_connopts_sockbuf(shim_fd *rec, int opt, int shown);
/* getsockopt(SOL_SOCKET, SO_SNDBUF) on one of ours: 1 and *v when the
 * answer is not the unix socket's own (TCP_NOTSENT_LOWAT shrank it). */
int shim_connopts_sndbuf_shown(const shim_fd *rec, int *v);
/* TCP_WINDOW_CLAMP on a connected socket: the app's, or the largest
 * receive window the connection advertises. */
int shim_connopts_window_clamp(const shim_fd *rec);

/* ---- engine.c ---- */

typedef struct shim_connect_req {
    int udp_fd;              /* connected UDP socket, moved to the engine */
    int efd;                 /* engine end of the bridge */
    rudp_addr peer;
    uint64_t id;
    uint32_t slot;
    size_t filler;           /* bytes the app end wrote to hold writability */
    int app_fd;              /* the app's fd number (or -1): its SO_SNDBUF ... */
    uint64_t app_ino;        /* ... if that fd is still this socket ... */
    int app_sndbuf;          /* ... is set back to this once established */
    int tcp_fd;              /* RUDP_FALLBACK=tcp: the app's own TCP socket, or -1 */
    int swap_fd;             /* ... to put at this fd number ... */
    uint64_t swap_ino;       /* ... if it still holds the app end (this inode) */
    struct sockaddr_storage tcp_to; /* ... once connected here */
    socklen_t tcp_to_len;
    int relay;               /* ... or relayed to the bridge, never put at swap_fd: a child
                              * with an fd table of its own made it (adopt.c) */
    rudp_config cfg;
} shim_connect_req;

typedef struct shim_listen_req {
    int udp_fd;              /* bound UDP socket, moved to the engine */
    int reserve_fd;          /* TCP socket holding the port, moved to the engine */
    shim_name lname;         /* the unix listener's name, decoded */
    struct sockaddr_un lun;  /* ... and as bytes, to connect to it */
    socklen_t lun_len;
    int backlog;
    uint64_t id;
    uint64_t lino;           /* inode of the unix listener */
    uid_t luid;              /* who called listen() on it */
    int wildcard;            /* bound to the any-address */
    int accept_tcp;          /* reserve_fd listens too: plain TCP (tcpaccept.c) */
    int app_reuseport;       /* the app set SO_REUSEPORT: others may share the port */
    unsigned member_tag;     /* its tag in a group of processes (xgroup.c), 0: none */
    int xfd;                 /* ... the tag's abstract unix socket, -1: none */
    int phfd;                /* its name for a process wanting the port
                              * (porthand.c), -1: none */
    int quiet;               /* the port was handed over with connections
                              * moving off it: no resets for a while */
    rudp_config cfg;
} shim_listen_req;

/* Starts the engine thread if needed. Returns 0 or -errno. */
int shim_engine_start(void);

/* Hand a new outgoing connection / listener to the engine. The fds in the
 * request belong to the engine from now on, even on failure, but for
 * -EXDEV: a child with an fd table of its own whose fds no engine could
 * take (adopt.c); then they are all still the caller's. */
int shim_engine_connect(const shim_connect_req *r);
int shim_engine_listen(const shim_listen_req *r);
/* Whether an engine runs in this process (or the one whose memory a
 * CLONE_VM child shares). */
int shim_engine_running(void);
void shim_engine_listener_closed(uint64_t id);
/* The app set TCP_CONGESTION on the connection or listener `id` (NULL:
 * the default): whichever engine of this process serves it switches. */
void shim_engine_set_cc(uint64_t id, int listener, const rudp_cc_ops *cc);
/* The app set a mark of the datagrams (IP_TOS, IPV6_TCLASS, IP_TTL,
 * IPV6_UNICAST_HOPS; value as TCP holds it) on the connection or listener
 * `id`: the UDP sockets that carry it alone (a client's, a listener's)
 * take it. An accepted connection shares its listener's: it has none. */
void shim_engine_set_mark(uint64_t id, int listener, int level, int opt, int value);
/* The app sized the connection or listener `id` (connopts.c): send buffer
 * and receive window in bytes (0: as they are), TCP_NOTSENT_LOWAT (0:
 * none), for rudp_conn_set_buffers / rudp_listener_set_buffers. */
void shim_engine_set_buffers(uint64_t id, int listener, uint32_t sndbuf, uint32_t rcvwnd,
                             uint32_t lowat);
/* TCP_CORK on (1) or off on connection `id` (rudp_conn_set_cork). */
void shim_engine_set_cork(uint64_t id, int on);

uint64_t shim_engine_new_id(void);

/* At exit: whatever the engine still carries goes on in a keeper process. */
void shim_engine_exit(void);

/*
 * Before exec or _exit: pause the engine and fork a keeper that takes over
 * its connections and listeners. Returns 0 if there was nothing to hand
 * over, -1 on failure, else > 0; for exec, *abort_fd then receives the
 * pipe on which to say the exec failed (write a byte, close it, then call
 * shim_engine_resume()); on success exec closes it and the keeper starts.
 */
pid_t shim_engine_handoff(int for_exec, int *abort_fd);
void shim_engine_resume(void);
/*
 * From a fatal signal's stand-in (async-signal-safe): asks engine 0 to hand
 * the engines to a keeper before the process dies. Returns 1 if asked (then
 * wait until shim_engine_signal_handed() says it is done), 0 if no engine
 * of this process runs.
 */
int shim_engine_signal_handoff(void);
int shim_engine_signal_handed(void);

/* ---- ownfds.c: the fds the engine owns ---- */

/* Whether fd belongs to the engine (programs closing every fd skip it). */
int shim_engine_owns(int fd);
/* Counts fd among those close()/closefrom() must spare (the log file). */
void shim_engine_own_fd(int fd);
/* The engine's fds in ascending order, at most max; returns how many
 * (none in a CLONE_VM child with an fd table of its own). */
int shim_engine_owned_fds(int *out, int max);
/* Adds fd to the set (on) or takes it out; nothing in a CLONE_VM child
 * with an fd table of its own, whose numbers are not the owner's. A
 * getpid(). */
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

/* In a forked child: forget the parent's engine and close its fds. */
void shim_engine_atfork_prepare(void);
void shim_engine_atfork_parent(void);
void shim_engine_atfork_child(void);

/* ---- procenv.c: a process made without fork() ---- */

/* NULL, or a byte that reads 0 in a child with a copy of this address
 * space (MADV_WIPEONFORK; without it, always 0). */
extern volatile uint8_t *shim_procenv_mark;
/* An engine started (G.mu held): sets the mark. */
void shim_procenv_started(void);
/* The mark read 0: in a child that no fork handler prepared (a raw
 * clone()), forgets the parent's engines as a forked child does; after
 * fork(), only stops checking until an engine starts here. */
void shim_procenv_renew(void);
/* At start-up: this process owns the records (and maps the page). */
void shim_procenv_init(void);
/* In a forked child (the fork handler): it owns its copy of the records. */
void shim_procenv_forked(void);
/* 1 iff this is a child that shares the memory of the process owning the
 * shim's records and engines but not its fd table (vfork(), clone(CLONE_VM)
 * without CLONE_FILES), or cannot tell the fd table's sharing (kcmp refused;
 * logged once): it must change no record and hand no fd to an engine. 0 in
 * that process, its threads, a CLONE_FILES child, and a copy (fork, a raw
 * clone). A getpid() system call, and kcmp() in such a child only: for
 * calls that are costly already, never the data path. */
int shim_procenv_foreign(void);
/* The fd table the caller's per-fd records belong to (fdtab.c,
 * epollreg.c): 0 for the process owning the engines (its threads, a
 * CLONE_FILES child, a copy), the caller's pid in a child that
 * shim_procenv_foreign() tells. A getpid() (and kcmp() in such a child):
 * for calls that change records, not for every lookup. */
pid_t shim_procenv_table(void);
/* The process whose fds the shim's records and engines name. */
pid_t shim_procenv_owner(void);

/* adopt.c: in a child with an fd table of its own (shim_procenv_table()
 * != 0), has an engine of the owner copy fds[0..n) (n <= 4) into the
 * owner's table; on success fds[] hold the owner's numbers (the engines'
 * now) and the child's copies are closed. -ENOSYS: no engine runs;
 * -EPERM and the like: pidfd_getfd refused; -ETIMEDOUT: no engine answered
 * in 10 s. On failure the child's fds are as they were. Logged once. */
int shim_adopt_fds(int *fds, int n);
/* 1 iff this is a child sharing the owner's memory (with or without its fd
 * table): what lives in that memory (the connection slab, slots.c) is the
 * owner's, used as a thread of it would. A getpid(). */
int shim_procenv_shared(void);
/* On every interposed entry: one load and a compare, then nothing, unless
 * this is a new process. */
static inline void shim_procenv_check(void)
{
    volatile uint8_t *m = __atomic_load_n(&shim_procenv_mark, __ATOMIC_ACQUIRE);
    if (__builtin_expect(m != NULL && *m == 0, 0))
        shim_procenv_renew();
}

/* Engine counters for RUDP_STATS. */
void shim_engine_print_stats(void);

/* From a signal handler (async-signal-safe): asks every engine of this
 * process for its figures, the last to answer printing them; returns 0 if
 * no engine runs here. Then whether they were printed. */
int shim_engine_stats_request(void);
int shim_engine_stats_printed(void);

/* ---- fallback.c: RUDP_FALLBACK=tcp, kernel TCP where rudp gets no answer ---- */

/* Whether connects to sa go straight over kernel TCP: a fallback to it
 * worked within the last two minutes (counted as remembered). */
int shim_fallback_remembered(const struct sockaddr *sa);
/* rudp's server at `to` left that port (its connection moved, NEW_PORT):
 * that rudp answered there no longer says it will (a connect there races
 * kernel TCP again after the probe delay instead of waiting for rudp). */
void shim_fallback_forget(const rudp_addr *to);
/* Connects that may still become kernel TCP (their TCP socket went to the
 * engine, which has not yet settled it): while none is, epoll_ctl notes
 * nothing and costs one atomic load. connect() adds one; fallback.c takes
 * it away once that connect is settled (swapped, rudp won, or failed). */
extern _Atomic unsigned shim_fallback_racing;
/* Prints the fallback figures, if any, as shim_engine_print_figures does. */
void shim_fallback_print(void (*line)(void *, const char *), void *arg);

/* ---- epollreg.c: the app's epoll interest in an fd the shim may swap ---- */

/* socket() made fd, a TCP socket the shim may swap at connect()/listen():
 * epoll_ctl notes its registrations from now on (and forgets any noted for
 * an earlier file at that number). Unmark: it will not be swapped (a plain
 * connect or listen, the swap done, closed). */
void shim_epollreg_mark(int fd);
/* The same, keeping what is noted: a swap put a fresh TCP socket at fd
 * (reconnect.c), which a later connect() may swap again. */
void shim_epollreg_remark(int fd);
void shim_epollreg_unmark(int fd);
int shim_epollreg_marked(int fd);
/* epoll_ctl(epfd, op, fd, ev) succeeded on a marked fd (not yet connected
 * or listening, or connecting and not settled): remember it. */
void shim_epollreg_note(int epfd, int op, int fd, const struct epoll_event *ev);
/* Notes every registration of fd's current file in this process's epoll
 * sets as the kernel lists them (/proc/self/fdinfo), for a swap of an fd
 * that was not marked: connect(AF_UNSPEC) on an established connection.
 * Without /proc (a chroot) nothing. */
void shim_epollreg_discover(int fd);
/* fd is being closed: forget what was noted for it, as fd or as epfd; the
 * range form unmarks too (close_range, closefrom). */
void shim_epollreg_forget(int fd);
void shim_epollreg_forget_range(unsigned first, unsigned last);
/* Before fd gets another file: takes its noted registrations out of their
 * epoll sets (the old file may live on elsewhere and must not report),
 * remembering which the kernel had. After: puts those back for the file
 * now at fd; then forgets them, unless keep (the fallback may swap again).
 * Both cost one atomic load when nothing is noted. */
void shim_epollreg_detach(int fd);
void shim_epollreg_attach(int fd, int keep);
void shim_epollreg_atfork_prepare(void);
void shim_epollreg_atfork_parent(void);
void shim_epollreg_atfork_child(void);

/* ---- signals.c: a stand-in for the default action of the signals that end the process ---- */

void shim_signals_init(void);
void shim_signals_off(void); /* a keeper: signals are its own business */

/* ---- helpers shared by sock.c and the engine ---- */

/* sockaddr <-> rudp_addr */
void shim_to_rudp_addr(const struct sockaddr *sa, rudp_addr *out);
socklen_t shim_from_rudp_addr(const rudp_addr *a, struct sockaddr_storage *out);

/* The fds a received message m brought (SCM_RIGHTS), in order: the first
 * max go into fds (NULL if max is 0), the rest are closed. Returns how
 * many went into fds. */
int shim_cmsg_take_fds(struct msghdr *m, int *fds, int max);

/* The port (host order) of an AF_INET or AF_INET6 address; 0 otherwise. */
unsigned shim_ss_port(const struct sockaddr_storage *ss);

/* sock_diag (NETLINK_SOCK_DIAG): sends the dump request req (reqlen bytes,
 * its nlmsghdr first) and calls visit(h, ctx) for each message of the
 * answer, read in 32 KiB buffers, until NLMSG_DONE. Returns 0, or -1: no
 * netlink, an error or a malformed answer, or visit returned -1. */
struct nlmsghdr;
int shim_diag_dump(const void *req, size_t reqlen,
                   int (*visit)(const struct nlmsghdr *h, void *ctx), void *ctx);
/* The payload of netlink attribute `type` among the attributes at attrs
 * (len bytes, each length-checked): NULL if absent, else its bytes and
 * *plen their number. */
const void *shim_nla_get(const void *attrs, size_t len, int type, size_t *plen);

/* Reads the start of a small text file (/proc/self/...) with one read():
 * at most size - 1 bytes, NUL-terminated. Their number, or -1 if the file
 * cannot be opened or read or is empty. */
ssize_t shim_read_text(const char *path, char *buf, size_t size);
/* Moves fd to >= SHIM_FD_BASE with close-on-exec; returns the new fd
 * (closing the old) or the old one if that fails. */
/* nofile.c: on EMFILE, raises the soft RLIMIT_NOFILE while connect()
 * makes its fds (1: raised, shim_nofile_restore() sets it back once the
 * last caller is done; 0: cannot, at the hard limit). */
int shim_nofile_widen(void);
void shim_nofile_restore(void);
int shim_fd_move_high(int fd);
/* The inode of the file fd names, 0 if none (fd closed, or negative):
 * what tells a socket from another at the same number. */
uint64_t shim_fd_ino(int fd);
/* Starts fn(arg) on a detached thread with every signal blocked (the
 * program's handlers never run on a thread of ours); 0 or -errno. */
int shim_thread_start(pthread_t *t, void *(*fn)(void *), void *arg);
/* The engine's UDP sockets' buffers: 8 MiB (16 MiB for a listener's). */
void shim_udp_grow_buffers(int udp, int listener);
/* fd's family if it is an AF_INET or AF_INET6 socket of this type and
 * protocol (SOCK_STREAM, IPPROTO_TCP ...), else 0. */
int shim_inet_family(int fd, int type, int protocol);

/* Monotonic now in nanoseconds. */
rudp_time shim_now(void);

#endif
