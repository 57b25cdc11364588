/*
 * state.h: the state layer, what the shim records about the application's
 * fds and connections (layers: base/base.h).
 *
 * Contract of state/: the front end, where the application's sockets live
 * and their records (front.c: local fdtab.c, one table per fd table;
 * remote front_remote.c; memory front_mem.c); the
 * slots each connection shares with its engine and with forked children and
 * new images (slots.c); the TCP addresses carried in abstract unix socket
 * names (names.c) and who may stand at the other end of a bridge (ident.c);
 * acting on an application's fd number, which the program may close or
 * replace at any moment (appfd.c: swaps, send buffers, the reset mark); the
 * program's epoll registrations of an fd the shim may swap (epollreg.c).
 * Callable from the program's threads and the engines' alike: each keeps its
 * own lock, held across fork. Uses base/ only: no engine, no thread.
 */
#ifndef SHIM_STATE_H
#define SHIM_STATE_H

#include "base/base.h"
#include "front.h"

/* ---- names.c: TCP addresses carried in abstract unix socket names ---- */

/* SHIM_NAME_TCP: an engine's unix connection that carries a plain kernel
 * TCP connection's fd (SCM_RIGHTS) to accept(), not a bridge. */
enum {
    SHIM_NAME_LISTENER = 'L',
    SHIM_NAME_ENGINE = 'E',
    SHIM_NAME_TCP = 'T',
};

/* flags: an engine end that writes its listener's secret first (names.c) */
#define SHIM_NAME_F_PROOF 0x01
#define SHIM_NAME_SECRET 32

typedef struct shim_name {
    char kind;                   /* SHIM_NAME_* */
    uint8_t flags;               /* SHIM_NAME_F_* */
    int family;                  /* the application's socket family */
    struct sockaddr_storage local, peer;
    uint32_t slot;               /* shared state slot, UINT32_MAX none */
    uint64_t id;                 /* connection id, unique per engine */
    int32_t pid;                 /* engine owner */
    uint8_t nonce[16];           /* as decoded (shim_name_get) */
    /* A listener's, in the process that made it and its engines only:
     * the name's nonce commits to it (never in a name or a slab). */
    uint8_t secret[SHIM_NAME_SECRET];
} shim_name;

/* Binds unix socket fd to the abstract name for n, made unguessable by 128
 * random bits (a name nobody can predict cannot be squatted before we bind
 * it; a listener's with a secret: 128 bits committing to it). Returns 0 or
 * -errno. */
int shim_name_bind(int fd, const shim_name *n);
/* Draws n's secret (a listener's, before shim_name_bind). 0 or -errno. */
int shim_name_listener_secret(shim_name *n);
/* Whether proof (SHIM_NAME_SECRET bytes) is the secret listener's name
 * (decoded) commits to: 1 or 0. */
int shim_name_proof_ok(const shim_name *listener, const uint8_t *proof);

/* Decodes the name of fd (own when peer == 0, its peer's otherwise).
 * Returns 1 if it is one of ours, 0 if not, -errno on failure. Decoding
 * says nothing of who bound the name: see shim_name_peer. */
int shim_name_get(int fd, int peer, shim_name *n);
/* The same for a name already in hand (len: as the kernel said it, which
 * may exceed sizeof *un when it was cut): 1 if ours, else 0. */
int shim_name_decode(const struct sockaddr_un *un, socklen_t len, shim_name *n);

/* Decodes the name of fd's peer if it is an engine end; with `verify`, only
 * if that peer is also one of our engines (shim_ident_inherited): for fds
 * the shim has no record of. Returns 1, or 0 (not ours, or not trusted). */
int shim_name_peer(int fd, shim_name *n, int verify);

/* Whether the address a recvfrom()/recvmsg() returned, of length len in a
 * buffer of cap bytes, names an engine end of ours (by its form alone: no
 * system call). */
int shim_name_is_engine(const struct sockaddr *sa, socklen_t len, socklen_t cap);

/* Whether fd is one of our unix sockets; fills *n. The peer's name carries
 * both addresses, so it is tried first (checked as shim_name_peer does with
 * `verify`), then the own (listener or app end) name. */
int shim_name_of(int fd, shim_name *n, int verify);

/* ---- ident.c: who may stand at the other end of a bridge (SO_PEERCRED) ---- */

/* The pid and uid of the process that last called listen() on lfd. */
int shim_ident_listener_cred(int lfd, pid_t *pid, uid_t *uid);
/* Whether the connection nfd, just accepted on our listener lfd (whose
 * name names `owner`), was made by the engine serving it. `proven` 1: its
 * maker showed the listener's secret (names.c), which stands for the pid
 * (its uid is checked all the same); -1: it promised the secret and did not
 * show it (refused); 0: none promised. Counts and logs a refusal. Returns 1
 * or 0. */
int shim_ident_accepted(int lfd, int nfd, pid_t owner, int proven);
/* The common case of shim_ident_accepted, asking nothing of the listener
 * nor needing its name: 1 iff nfd's maker is this process (our own engine)
 * of a uid we take, and no proof was promised and not shown (proven >= 0).
 * 0: ask shim_ident_accepted. Counts nothing. */
int shim_ident_accepted_here(int nfd, int proven);
/* Whether the maker of nfd (accepted on lfd) is of a uid
 * shim_ident_accepted takes at all: only then is a proof it promises worth
 * waiting for. 1 or 0. */
int shim_ident_may_prove(int lfd, int nfd);
/* Engine side: whether efd, just connected to a listener's name, reached
 * our application's listener (made by `owner` with uid `luid`). */
int shim_ident_listener(int efd, pid_t owner, uid_t luid);
/* Whether fd's peer may be one of our engines although we hold no record
 * of fd (inherited over exec): this process, root, or our own uid. */
int shim_ident_inherited(int fd);
/* Connections refused by shim_ident_accepted in this process. */
uint64_t shim_ident_refused(void);

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
/* The connection ended abnormally, the peer's FIN never passed on: an EOF
 * on the app's end is an error (its ECONNRESET could not be made, the app
 * having shut down writing, or a short read took it), which the
 * interposed reads tell (interpose/recv.c). */
#define SHIM_SLOT_F_EOF_ERR 32u
/* The app shut writing down (interpose/sock.c): its writes take the
 * bridge, whose EPIPE they get, never the engine's memory (engine/txring.c). */
#define SHIM_SLOT_F_WR_SHUT 64u

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
    /* What went into the app's end, counted by the engine after each write
     * to its own end (bytes, the urgent byte, the peer's FIN) and when it
     * closes it; and SHIM_SLOT_EMPTY | out_gen when a reader last found the
     * app's end empty at that count: while both still agree, nothing came
     * since, and interpose/recv.c's read goes to its wait without a peek.
     * A hint: a wait finds whatever the bridge holds anyway. */
    _Atomic uint32_t out_gen;
    _Atomic uint64_t seen_empty;
    /* Whether a read of the app's end may wait as a plain blocking read:
     * not O_NONBLOCK, no receive timeout, a low-water mark of 1, as asked
     * of the kernel once (SHIM_RX_KNOWN) and kept until a process under
     * the shim changes one of them (fcntl F_SETFL, ioctl FIONBIO, a
     * SOL_SOCKET setsockopt: shim_slot_rx_changed counts a generation up,
     * so an answer asked across the change is not kept), or for good once
     * the socket may be in a process that changes them unseen
     * (SHIM_RX_FOREIGN: passed by SCM_RIGHTS, or inherited by an image
     * without the shim). */
    _Atomic uint32_t rxmode;
    /* 1 while what came for the app waits in the connection for the read
     * after a poll() that told of it (engine/apprecv.c's keep), not in the
     * app's end: the interposed calls take it or have it passed on first
     * (interpose.h: shim_kept_flush). Set and cleared under the engine's
     * turn; a hint here. */
    _Atomic uint32_t kept;
    /* ... keeps passed on into the app's end with no take since (the
     * engine's, at their time; the next poll's), counted by the engine,
     * zeroed by a read that took kept bytes (engine/bridgepump.c):
     * SHIM_KEEP_LATE in a row and the bridge is kept no more for a while,
     * this count zeroed (a reader we do not see, or a wait told of it that
     * no read follows) */
    _Atomic uint32_t kept_unread;
    /* The engine carrying the connection, its index + 1 (0: not known),
     * as the engines wrote it at connect() and when they index its bridge:
     * a hint for interpose/epoll.c's set of the engines a program's epoll
     * set holds connections of (a wait takes those engines' turns alone) */
    _Atomic uint32_t engine;
    /* Bytes the app wrote into its engine's memory (engine/txring.c) that
     * the connection has not taken yet: SIOCOUTQ counts them as the
     * bridge's (shim_slot_app_queued); moved out under an odd seq. */
    _Atomic uint32_t ring_len;
    /* The program's epoll registrations of the connection, as its
     * interposed epoll_ctl made them (interpose/epoll.c): how many, and
     * where there is one, its set (the epoll fd and that number's
     * generation), events and data; SHIM_EP_* bits in ep_note, ep_data and
     * ep_events under its seq (shim_slot_ep_one). Poisoned for good by a
     * registration it cannot follow (a duplicated fd, a delete it cannot
     * place): bytes for the read after an event loop's epoll wait are kept
     * only where this says the set waited on is the only one watching. */
    _Atomic uint64_t ep_note;
    _Atomic uint64_t ep_key; /* the one registration's set: SHIM_EP_KEY */
    _Atomic uint64_t ep_data;
    _Atomic uint32_t ep_events;
} shim_slot;

#define SHIM_SLOT_EMPTY (1ull << 32)
#define SHIM_RX_KNOWN 1u
#define SHIM_RX_PLAIN 2u
#define SHIM_RX_FOREIGN 4u
#define SHIM_RX_LOW1 8u /* known: a low-water mark of 1 (whether blocking or not), no
                          * SO_PEEK_OFF: a poll's bytes may be kept for the read */
#define SHIM_RX_GEN 256u

/* A read's mode from s's note (1 plain, 0 not), or -1 with *m what to
 * give shim_slot_rx_note with the kernel's answer. */
int shim_slot_rx_mode(shim_slot *s, uint32_t *m);
void shim_slot_rx_note(shim_slot *s, uint32_t m, int plain, int low1);
/* Whether bytes may wait in the connection for s's reader after a poll()
 * (engine/apprecv.c's keep): its mode known, a low-water mark of 1 (a read
 * then returns what is there, blocking or not), and no process that could
 * read it unseen (SHIM_RX_FOREIGN). */
int shim_slot_keepable(shim_slot *s);
/* An epoll_ctl(epfd, op, ..., ev) of s's connection that succeeded, noted
 * in s (key: SHIM_EP_KEY of the set); _poison: one that cannot be
 * followed. An epoll set is named by its process, its number and that
 * number's generation (shim_ep_gen: counted up when the number is closed
 * or replaced), so that no other set is ever taken for it. */
#define SHIM_EP_FDS 4096
#define SHIM_EP_KEY(pid, epfd, gen)                                                              \
    (((uint64_t)(uint32_t)(pid) << 32) | ((uint64_t)((gen) & 0xfffffu) << 12) |                  \
     (uint64_t)((epfd) & 0xfff))
void shim_slot_ep_note(shim_slot *s, uint64_t key, int op, uint32_t events, uint64_t data);
void shim_slot_ep_poison(shim_slot *s);
/* The set key names is gone (its last fd closed): s's one registration,
 * if there, with it. */
void shim_slot_ep_gone(shim_slot *s, uint64_t key);
/* 1 if s's connection is registered once, in the set key names, for
 * EPOLLIN, level- or edge-triggered (EPOLLET: in *events), neither
 * EPOLLONESHOT nor EPOLLEXCLUSIVE, with *events and *data (either may be
 * NULL) that registration's. */
int shim_slot_ep_one(shim_slot *s, uint64_t key, uint32_t *events, uint64_t *data);
/* epfd's generation (epollreg.c): 0 for numbers at or past SHIM_EP_FDS,
 * which are never a key's */
uint32_t shim_ep_gen(int epfd);
/* epfd's number closed or replaced (close, dup2 over it, close_range) */
void shim_ep_gen_bump(int epfd);
void shim_slot_rx_changed(shim_slot *s);
void shim_slot_rx_foreign(shim_slot *s);

#define SHIM_MAX_SLOTS 65536

/* Allocates a slot for a new connection id; returns its index or
 * UINT32_MAX when none is free. */
uint32_t shim_slot_alloc(uint64_t id);

/* The slot for (index, id) of this process's engine, or NULL if it was
 * reused or never existed; _pid looks in the slab of the engine of `owner`
 * (a parent whose connections we inherited). */
shim_slot *shim_slot_get(uint32_t index, uint64_t id);
/* shim_slot_get_pid without waiting: NULL too if the table's lock is held
 * (a caller that may run in a signal handler: interpose/recv.c). */
shim_slot *shim_slot_tryget_pid(uint32_t index, uint64_t id, pid_t owner);
shim_slot *shim_slot_get_pid(uint32_t index, uint64_t id, pid_t owner);
/* Whether the slab of `owner`'s engine is mapped here: a slot then missing
 * from it (shim_slot_get_pid NULL) was freed, its connection over; without
 * the slab (an image that could not map it) nothing is known. */
int shim_slot_slab_known(pid_t owner);

/* Bytes the app wrote to its end `fd` of slot s's bridge that the engine
 * has not read, those it wrote into the engine's memory (ring_len) with
 * them: SIOCINQ of the engine's end when this process holds it
 * (the same inode), else the app end's SIOCOUTQ. The latter is what AF_UNIX
 * gives, memory (every write's buffer overhead, ~0.5-1 KiB each), not
 * bytes: a chat server's delivery receipts, counting acknowledged bytes as
 * written minus SIOCOUTQ, missed lines behind a few small writes. */
int shim_slot_app_queued(shim_slot *s, int fd, int *q);

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
/* Once established, the engine's side (bridge.c): the buffer back if fd
 * holds the end (fd -1: not known here), connect's filler drained by
 * drain(arg) (it returns the filler left), FILLER cleared once none is
 * left, the buffer back if fd holds the end only now; under the lock
 * shim_sndbuf_placed takes. */
void shim_sndbuf_established(shim_slot *s, int fd, uint64_t ino, int size,
                             size_t (*drain)(void *), void *arg);
/* connect()'s side once fd holds the end: the buffer back if the filler
 * is gone already. */
void shim_sndbuf_placed(shim_slot *s, int fd, uint64_t ino, int size);
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
/* Sets size on app end fd as its SO_SNDBUF (SO_SNDBUFFORCE past
 * net.core.wmem_max if allowed): a new app end of a bridge (connect or
 * accept) takes TCP's default send buffer, as far as the kernel lets us.
 * Returns 0, or -1 (errno) if fd took none. */
int shim_app_end_sndbuf(int fd, int size);

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
 * registrations). owner_none: fd is known to have no owner (pristine.c),
 * which is then not asked. */
int shim_fdswap(int fd, int nfd, int status, int fdflags, int keep_regs, int owner_none);
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
/* names.c: a child with a copy of our memory draws its own nonces' key */
void shim_names_atfork_child(void);
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
    int32_t name_pid;      /* bridged: the engine owner's pid its peer's name carries
                            * (shim_name.pid), set where the record is made with
                            * the name; 0: not known, the name is asked */
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
    int sndbuf_restore;    /* without SHIM_FRONT_OWNS_NUMBERS: connect()'s small buffer is given back
                            * to this size by the next call once established; 0: none */
} shim_fd;
#define SHIM_BUF_SND 1u
#define SHIM_BUF_RCV 2u

/* ---- front.c: the front end, where the application's sockets are ----
 *
 * The shim keeps a record per application socket (shim_fd) and reaches the
 * application's end of each bridge. Where those live is the front end's
 * business, one implementation each:
 *   local   (fdtab.c) the preload: this process's own fd table; a record
 *           per fd number, told apart from a reuse of the number by the
 *           socket's inode, per table of a child sharing our memory;
 *   remote  (front_remote.c) rudp-supervise (front.h): the program's fds
 *           live in another process and the shim is called on short-lived
 *           copies of them, so a record follows the file (its inode),
 *           whatever number reaches it, and outlives the copy;
 *   memory  (front_mem.c) a table in memory with no system call, for the
 *           shim's unit tests.
 * The local one is in use unless another is set, once, before the first
 * record (shim_front_set; remote: shim_front_register). What differs
 * between them that the layers above must act on is said by caps, not by
 * asking which one is in use. */
#define SHIM_FRONT_OWNS_NUMBERS 1u /* the fds the shim is called on are the
                                    * application's own: a file may be put at
                                    * one later (dup3), an EMFILE is this
                                    * process's own shortage */
#define SHIM_FRONT_SEES_CLOSE 2u   /* a close() through the shim is the
                                    * application's own close */

typedef struct shim_front_ops {
    const char *name;
    unsigned caps; /* SHIM_FRONT_* */
    /* fd's current record into *out: 1, 0 if none, -1 if try and the
     * table's lock is held (a signal handler may interrupt its holder) */
    int (*get)(int fd, shim_fd *out, int try);
    /* r as fd's record from now on, replacing any (its inode stamped) */
    void (*put)(const shim_fd *r);
    /* r, read by get (its inode), written back only where fd's record of
     * that file still is; NULL: put */
    void (*update)(const shim_fd *r);
    /* the application closed fd: its record goes (where the front end
     * sees the close) */
    void (*del)(int fd);
    /* the socket of inode ino was replaced by a bridge or a listener of
     * ours, whose record took over its options (shim_fd_replaced) */
    void (*replaced)(uint64_t ino);
    /* the numbers of records with a fallback racing, or in [first, last]
     * (close_range), at most max into out; how many */
    int (*list_fallback)(int *out, int max);
    int (*list_range)(int *out, int max, unsigned first, unsigned last);
    /* the application's end of a bridge held elsewhere: a copy of the file
     * of inode ino, which the caller closes, or -1; NULL: this process
     * holds every app end it reaches */
    int (*app_end)(uint64_t ino);
    /* puts file at the application's number fd, if fd still holds the
     * app end of inode ino, with what belongs to the file there (flags,
     * owner, options, epoll interest): shim_fd_swap_in's contract (the
     * fallback's kernel TCP in place of the bridge); NULL: the numbers
     * are another process's, whose calls have been answered (a seccomp
     * ADDFD needs one still waiting), so such a connection is relayed */
    int (*place)(shim_slot *s, int fd, uint64_t ino, int file);
    /* the front end's own counters (RUDP_STATS, rudp-stat); may be NULL */
    void (*stats)(void (*line)(void *, const char *), void *arg);
    /* a lock of its own around fork() (sock.c) and a raw clone's renewal
     * (renew.c), taken after appfd's and before the slots' (its records
     * look slots up under it); NULL: none, or taken elsewhere */
    void (*fork_prepare)(void);
    void (*fork_release)(void);
    void (*lock_renew)(void);
} shim_front_ops;

extern const shim_front_ops shim_front_local;  /* fdtab.c */
extern const shim_front_ops shim_front_memory; /* front_mem.c */
/* The front end in use (never NULL). */
const shim_front_ops *shim_front(void);
/* Uses ops (NULL: the local one) from now on: 0, or -EBUSY once a record
 * was put through another. */
int shim_front_set(const shim_front_ops *ops);
/* front_remote.c: the remote front end, with what the supervisor gives
 * (kept, not copied), set once: 0, or -EBUSY (set already, or a record
 * put through another). */
int shim_front_remote_set(const shim_front_remote *r);
/* The fork handlers' and renew()'s calls of the front end's own lock. */
void shim_front_atfork_prepare(void);
void shim_front_atfork_parent(void);
void shim_front_atfork_child(void);
void shim_front_lock_renew(void);
/* Whether the front end in use has cap (SHIM_FRONT_*). */
int shim_front_can(unsigned cap);

/* Whether fd may hold a bridged record of the engines' own table, and the
 * slot of its connection then (else NULL): a hint, read without a lock or
 * system call, for the send interposers to pass every other fd straight to
 * libc; shim_fd_get says for sure. Numbers from SHIM_FD_HINTS up are never
 * hinted; only the local front end hints. shim_fd_tryget is shim_fd_get
 * that gives up (-1) rather than wait for the table's lock. */
#define SHIM_FD_HINTS 65536
shim_slot *shim_fd_hinted(int fd);
/* Every hinted connection's read mode kept no more (shim_slot_rx_foreign):
 * an image without the shim is about to inherit the fds. */
void shim_fd_hints_foreign(void);
/* fn(slot, arg) for every slot an fd hints at (a slot may come twice). */
void shim_fd_hints_each(void (*fn)(shim_slot *s, void *arg), void *arg);
int shim_fd_tryget(int fd, shim_fd *out);

/* Looks up fd; fills *out and returns 1 if a current record exists. */
int shim_fd_get(int fd, shim_fd *out);
/* Adds or replaces the record of r->fd (stamping its inode, asked of the
 * kernel: a caller that just put the file there and knows its inode must
 * not tell it, since another thread's close() and a reuse of the number
 * may come between its dup3 and the put, and the record would then be
 * proved for a file that is not its own). */
void shim_fd_put(const shim_fd *r);
/* An option call's change to the record shim_fd_get gave it: written back
 * only where r->fd's record of the same file (r->ino) still is, so that a
 * dup2() over the number meanwhile in another thread does not make the
 * new file the connection's (a reset's marker byte would land there). A
 * record made anew (ino 0) is put. */
void shim_fd_update(const shim_fd *r);
void shim_fd_del(int fd);
/* Proofs (fdtab.c): a number may have changed file by a call the records
 * do not follow (dup2/dup3 over it, close_range, a libc syscall()): every
 * record is proved by its inode again at its next lookup. _always: from
 * now on at every lookup (a close may come from where the shim sees
 * nothing: an io_uring, a process or thread sharing our fd table or with
 * its own). prove_always: the number fd's records at every lookup from
 * now on (stdio has it: fdopen); no lock, safe in a signal handler. */
void shim_fd_unseen(void);
/* The number fd alone changed file by a call the caller made and follows
 * (its dup3 of a file of ours over fd): fd's records are proved again at
 * their next lookup, every other number's proof stands. Not in a signal
 * handler (fdtab's lock). */
void shim_fd_reprove(int fd);
void shim_fd_unseen_always(void);
void shim_fd_prove_always(int fd);
/* The socket of inode ino was replaced by a bridge or a listener of ours,
 * whose record took over its options: where records follow files, which
 * nobody's close removes (remote), its SHIM_FD_CANDIDATE record goes, or
 * every socket the program set an option on before connect would leave one
 * until the table is full. Elsewhere nothing: the number's record was
 * replaced. */
void shim_fd_replaced(uint64_t ino);
/* The fds of connects with RUDP_FALLBACK=tcp on record (at most max, into
 * out); returns how many. */
int shim_fd_list_fallback(int *out, int max);
/* The fd numbers in [first, last] with a record of this table (at most
 * max): close_range() closes them as close() does. */
int shim_fd_list_range(int *out, int max, unsigned first, unsigned last);
/* fdtab.c: the local table's lock around fork() and a clone's renewal */
void shim_fdtab_atfork_prepare(void);
void shim_fdtab_atfork_parent(void);
void shim_fdtab_atfork_child(void);
void shim_fdtab_lock_renew(void); /* as shim_qlog_lock_renew */

/* ---- tcpopts.c: what a record holds, onto a kernel TCP socket ---- */

/* The TCP-level options recorded in rec (TCP_NODELAY, keepalive timers,
 * TCP_USER_TIMEOUT, TCP_CORK, SO_KEEPALIVE) onto kernel socket tfd, then
 * shim_opts_to_tcp's: a fallback, a fresh socket after a failed connect, a
 * plain client accepted on a listener. */
void shim_put_tcp_options(int tfd, const shim_fd *rec);
/* All the options rec kept (options.c) and its controller onto kernel TCP
 * socket tfd. */
void shim_opts_to_tcp(int tfd, const shim_fd *rec);
/* rudp's controller of Linux's name `name` (NULL: none), and the Linux
 * name of the controller a connection of rec runs (see tcpopts.c). */
const rudp_cc_ops *shim_cc_by_tcp_name(const char *name);
const char *shim_cc_tcp_name(const shim_fd *rec);

/* ---- pristine.c: TCP sockets whose options nobody touched ---- */

/* socket() made fd, a TCP socket of family `family` whose inode is ino. */
void shim_pristine_mark(int fd, uint64_t ino, int family);
/* An option may have been set on some TCP socket of this process (which
 * fd does not matter: a dup shares its socket's options): no socket made
 * before now is pristine any more. */
void shim_pristine_touched(void);
/* fd's entry, if any, no longer stands (closed, or used up). */
void shim_pristine_forget(int fd);
/* Whether an fcntl of cmd sets what a pristine socket is taken not to
 * have: an owner or a signal for SIGIO/SIGURG. */
int shim_fcntl_sets_owner(int cmd);
/* Whether fd is a socket made by socket() here with no option set since:
 * its family (AF_INET, AF_INET6), or 0. The entry is used up either way;
 * *ino: fd's inode where an entry of this epoch was there to check (one
 * fstat), else 0. */
int shim_pristine_take(int fd, uint64_t *ino);

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
/* Whether fd's file was registered in a set before a swap put it there
 * (carried over by shim_epollreg_attach, which is not an epoll_ctl of the
 * program's: the slot's note does not count it). */
int shim_epollreg_has(int fd);
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

/* ---- tokens.c: the client's 0-RTT tokens, in files, bounded ---- */

/* Takes (and removes: single use) the token stored for the server at
 * `peer` in this mode (keyed or not) into out (cap bytes); returns its
 * length, 0 if none or the store cannot be used. */
size_t shim_tokens_take(const rudp_addr *peer, int keyed, uint8_t *out, size_t cap);
/* Stores the token a server at `peer` gave, replacing the one before. */
void shim_tokens_put(const rudp_addr *peer, int keyed, const uint8_t *tok, size_t len);

#endif
