/*
 * interpose.h: the interposer layer (layers: base/base.h); nothing is above it.
 *
 * Contract of interpose/: the exported calls (SHIM_EXPORT), each a thin
 * trampoline that passes an fd that is not ours straight to libc: the socket
 * calls (sock.c), message addresses (msgaddr.c, mmsg.c), connect() again on
 * a bridge (reconnect.c), the options of a redirected socket (options.c,
 * connopts.c, halfclose.c), exec and close_range (exec.c), posix_spawn
 * (spawn.c), syscall() (syscalls.c), and the fd limit while connect() makes
 * its fds (nofile.c). errno is set only on failure, as libc does. The only
 * layer that may call an interposed name. Uses every layer below.
 */
#ifndef SHIM_INTERPOSE_H
#define SHIM_INTERPOSE_H

#include "lifetime/lifetime.h"

/* Binds libc's symbols and reads the configuration once (sock.c);
 * returns whether the shim is active (0 in secure execution). */
int shim_init(void);

/* clonevm.c: a clone with these flags may make a child sharing our memory
 * without being a thread (base's shim_procenv_vm_child). */
void shim_clonevm_flags(unsigned long flags);

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
/* Before a send with control messages: a bridge whose fd goes with it
 * (SCM_RIGHTS) is read as one whose mode may change unseen (sockopt.c;
 * state.h: rxmode). */
void shim_rx_passed(const struct msghdr *msg);
/* After an F_SETFL on fd that did not come through fcntl() (syscall()). */
void shim_rx_setfl(int fd);

/* appsend.c: a send of iov on fd (flags as send()'s) made by the calling
 * thread itself while fd's engine sleeps: 1 with *sent, or 0 (nothing
 * sent, errno kept) when the caller makes libc's call. */
int shim_appsend_try(int fd, const struct iovec *iov, int iovcnt, int flags, ssize_t *sent);
/* The kernel's sendmsg() of iov on a bridge fd, SIGPIPE raised for its EPIPE
 * as TCP's (unless MSG_NOSIGNAL in flags): see appsend.c. */
ssize_t shim_appsend_kernel(int fd, const struct iovec *iov, int iovcnt, int flags);
void shim_msgaddr_received(struct msghdr *msg, socklen_t cap);
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5; older headers lack it */
#endif

/* halfclose.c: the TCP state to report for bridged fd, given the state the
 * engine published: ESTABLISHED and CLOSE_WAIT become FIN_WAIT1 and
 * LAST_ACK once the application has shut fd down for writing, as TCP's
 * shutdown() does at once, before the engine has read up to that EOF.
 * Other states, and fds not shut down, are returned as they are; errno is
 * kept. */
uint8_t shim_halfclose_state(int fd, uint8_t published);

/* sock.c: puts nfd at the app's fd (then closes nfd), with the socket-level
 * options fd has that TCP carries over and what shim_fdswap carries (the
 * flags given: FD_CLOEXEC from fd_flags, O_NONBLOCK, O_APPEND and O_ASYNC
 * from status_flags; the owner; epoll registrations, still noted, and fd
 * still marked for epoll_ctl to note more, if keep_regs: the new file may
 * be swapped again). Returns how many options it carried (0: nfd's defaults were
 * the same), or -errno (nfd then stays open). */
int shim_replace_fd(int fd, int nfd, int status_flags, int fd_flags, int keep_regs);
/* The same for an nfd none of those options was set on since its socket()
 * (connect's bridge): what fd holds at a new socket's own value is not
 * read back from nfd, nor set. pristine: nor was any set on fd
 * (pristine.c): nothing is read from it either. */
int shim_replace_fd_fresh(int fd, int nfd, int status_flags, int fd_flags, int keep_regs,
                          int pristine);

/* ---- connect.c ---- */

/* sendto()/sendmsg() with MSG_FASTOPEN on fd: its connect to addr, with the
 * program's TCP Fast Open opt-in (connect.c: a stored token makes it 0-RTT).
 * Returns 1 if fd or addr is not ours (the kernel's sendto does it all), 0
 * connected or connecting with a token (send the data now), -1 with errno
 * (EINPROGRESS: a non-blocking connect without a token, as Linux's without
 * a cookie; EISCONN: already connected). */
int shim_connect_fastopen(int fd, const struct sockaddr *addr, socklen_t len);

/* ---- reconnect.c: connect() on a bridge, the wait of a blocking one ---- */

/* connect(fd, addr, len) on fd, one of ours (rec, n): EALREADY, EISCONN,
 * 0 once after a non-blocking connect completed, a failed handshake's
 * error (the fd then becomes an unconnected kernel TCP socket again), and
 * AF_UNSPEC disconnecting (the same, with a reset of an established
 * connection), as Linux TCP answers. Returns 0 or -1 with errno. */
int shim_reconnect(int fd, const struct shim_fd *rec, const shim_name *n,
                   const struct sockaddr *addr, socklen_t len);
/* shutdown(SHUT_RD or SHUT_RDWR) or connect(AF_UNSPEC) on fd, our listener
 * (rec): stops it as TCP's stops (accept()s woken with EINVAL, the queued
 * connections reset, new clients refused) and leaves a fresh kernel TCP
 * socket at fd with its epoll registrations and the listener's name.
 * Returns 0 or -1 with errno. */
int shim_unlisten(int fd, const struct shim_fd *rec);
/* dup2() (three 0) or dup3() of oldfd over newfd; a listener of ours at
 * newfd is closed by it, as by close(), and its engine told (sock.c). */
int shim_dup_over(int oldfd, int newfd, int flags, int three);
/* listen() on fd, a TCP socket of family bound to local (port 0: unbound):
 * if it is a listener stopped by shim_unlisten that could not keep its
 * port, it binds there now, as TCP's listen() finds its port bound.
 * 0, or -1 with bind()'s errno (EADDRINUSE: TCP's listen() answer). */
int shim_reconnect_listen(int fd, int family, const struct sockaddr_storage *local);
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

/* Whether an option decides where a socket's packets go or which address
 * it may bind (SO_BINDTODEVICE, SO_MARK, IP_FREEBIND, IP_TRANSPARENT...):
 * kept on a TCP socket before connect()/listen(), set on its UDP socket. */
int shim_opts_binds(int level, int opt);
/* The kept options that shape packets (IP_TOS, IPV6_TCLASS, IP_TTL,
 * IPV6_UNICAST_HOPS) onto the connection's UDP socket (all of them onto a
 * kernel TCP socket: shim_opts_to_tcp, state.h). */
void shim_opts_to_udp(int udp, const shim_fd *rec);
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
/* The connection's keepalive, idle and user timeouts for a socket with
 * SO_KEEPALIVE so_keepalive and rec's TCP options (connopts.c): 1 if they
 * differ from the configuration's. */
int shim_connopts_timeouts(int so_keepalive, const shim_fd *rec, rudp_time *keepalive,
                           rudp_time *idle, rudp_time *user);
/* SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT or TCP_USER_TIMEOUT set on bridged
 * fd (rec): the engine told. */
void shim_connopts_timeouts_changed(int fd, const shim_fd *rec);
/* A connection just accepted (rec) from listener lfd: the listener's
 * timeouts passed on, where they differ from the configuration's. */
void shim_connopts_timeouts_accepted(int lfd, const shim_fd *rec);
/* The send buffer to give the app's end of a new bridge (dflt: the unix
 * socket's, halved as set): the app's SO_SNDBUF, at most half of
 * TCP_NOTSENT_LOWAT (see connopts.c); notes what getsockopt must show. */
int shim_connopts_app_sndbuf(int fd, shim_fd *rec, const rudp_config *cfg, int dflt);
/* The SO_SNDBUF a TCP connection shows before the app sets one (loopback:
 * net.ipv4.tcp_wmem's maximum), 0 if unknown; half of such a value goes on
 * an app end with shim_app_end_sndbuf (state.h). */
int shim_tcp_sndbuf_default(void);
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

/* recv.c: an abnormal end (a timeout, a reset) as TCP tells it. After a
 * call on fd failed with err, the errno TCP would give: for ECONNRESET
 * from a bridge whose connection ended with a cause still untaken (its
 * SO_ERROR), that cause, taken as TCP's sock_error() takes sk_err; else
 * err. errno is kept. */
int shim_recv_errno(int fd, int err);
/* A receive call's result r on fd (n bytes asked for) as TCP would give
 * it: the above for a failure, and for an EOF that an abnormal end left
 * where no ECONNRESET could be made (the app had shut down writing), -1
 * with the cause. */
ssize_t shim_recv_told(int fd, ssize_t r, size_t n);
/* The bytes an iovec array asks for. */
size_t shim_iov_bytes(const struct iovec *iov, int cnt);
/* Whether the bridge whose slot hint is h may have its reads and waits in
 * the reading thread: a bridge (h) on a short path (recv.c). */
int shim_app_recv_slot(shim_slot *h);
/* Before a send on fd, whose slot the hint says (shim_fd_hinted): the
 * cause to fail with, taken, if the connection ended with one untaken (TCP's
 * first write after tcp_done() says it, without SIGPIPE); else 0. */
int shim_send_ended(int fd, shim_slot *hint);
/* msgaddr.c: recvfrom() without the shim's other steps, with TCP's answer
 * for the sender's name (none for a bridge, its buffer untouched). */
ssize_t shim_msgaddr_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
                              socklen_t *alen);
/* recv.c: MSG_TRUNC (n bytes discarded, no buffer touched) and
 * MSG_ERRQUEUE (EAGAIN) on a bridge, as TCP answers them: 1 with *out
 * the call's result before shim_recv_told (errno set); 0: not a bridge,
 * or neither flag. */
int shim_recv_odd(int fd, size_t n, int flags, ssize_t *out);
/* The connection's error on bridge fd was taken: the bridge's own pending
 * error (its engine end's close) with it, so poll() stops showing POLLERR. */
void shim_recv_error_taken(int fd);
/* Bytes a poll() told of may wait in their connection for the read after
 * it (engine/apprecv.c's keep), where only our read takes them: a call
 * that could see the socket another way (its readiness, its queue, a
 * close, an exec, a fork) has every such byte of the process passed on
 * into its bridge first. One load when none waits. */
static inline void shim_kept_flush(void)
{
    if (shim_engine_app_kept_any())
        shim_engine_app_unkeep_all(0);
}
/* ... and a receive call that takes them (recv.c): 1 with *out its result
 * (errno set) where fd's bytes were kept; 0: the call's own way, after
 * they were passed on. */
int shim_recv_kept(int fd, struct msghdr *m, int flags, ssize_t *out);

/* nofile.c: on EMFILE, raises the soft RLIMIT_NOFILE while connect()
 * makes its fds (1: raised, shim_nofile_restore() sets it back once the
 * last caller is done; 0: cannot, at the hard limit). */
int shim_nofile_widen(void);
void shim_nofile_restore(void);

/* poll.c: a readiness call's wait on the UDP socket of the bridge cand as
 * well (engine/apprecv.c), every signal held back throughout and a
 * signalfd for those `mask` (the call's, NULL: the thread's) lets in.
 * fill puts the call's own entries in p (room for them and 2 more) and
 * says how many; after a wait that ended with r entries ready, the
 * socket's and the signalfd's revents udp and sig (kept: cand if what
 * came waits in its connection for the read, poll's alone, else -1), ask
 * says the call's
 * answer (> 0, or -1 with errno) or 0: nothing for the program yet (it
 * waits again); rest is the kernel's call for what is left of the time,
 * with the program's mask. in: 1 poll, 2 epoll, 3 select (counted apart). 1 with
 * *out the call's result (errno set); 0: make libc's call. */
#define SHIM_WAIT_FDS_MAX 64
typedef struct shim_wait_ops {
    nfds_t (*fill)(void *arg, struct pollfd *p);
    int (*ask)(void *arg, struct pollfd *p, int r, short udp, short sig, int kept);
    int (*rest)(void *arg, const struct timespec *left, const sigset_t *mask);
    /* an epoll wait's set (state.h: SHIM_EP_KEY), whose bridges' bytes its
     * turn may keep for the read (NULL, or 0: none) */
    uint64_t (*key)(void *arg);
    /* ... and the engines it holds connections of, bit k: engine k (NULL,
     * or 0: every engine), whose whole sets alone its wait takes */
    uint32_t (*engines)(void *arg);
} shim_wait_ops;
int shim_app_wait_call(int cand, int in, const struct timespec *tmo, const sigset_t *mask,
                       const shim_wait_ops *ops, void *arg, int *out);
/* ... poll()'s wait on fds (at most SHIM_WAIT_FDS_MAX), for select.c too
 * (in: 1 poll, 3 select); as shim_app_wait_call. */
int shim_app_poll(struct pollfd *fds, nfds_t n, const struct timespec *tmo, const sigset_t *mask,
                  int in, int *out);

/* epoll.c: epoll_ctl's op on fd in the set epfd, succeeded: notes the
 * bridge an epoll_wait on epfd waits for (one per set); close(fd)
 * forgets fd as an epoll set. */
void shim_epoll_cand_note(int epfd, int op, int fd, const struct epoll_event *ev);
void shim_epoll_cand_forget(int epfd);
/* ... the numbers first..last closed (close_range, closefrom) */
void shim_epoll_forget_range(unsigned first, unsigned last);
/* ... and noted in the slot h of bridge fd: how many registrations, and
 * the one's set, events and data (state.h: shim_slot_ep_note), for what
 * a wait on that set may tell from memory */
void shim_epoll_reg_note(shim_slot *h, int epfd, int op, int fd, const struct epoll_event *ev);
/* fd's hint (state.h: shim_fd_hinted) where the slot is still that fd's
 * connection's (its app end numbered fd); else NULL */
shim_slot *shim_epoll_hint(int fd);
/* A fork: a set may now be held by another process too (epoll.c) */
void shim_epoll_forked(void);
/* fd is copied (dup, dup2, dup3, F_DUPFD): if a bridge, the copy's
 * registrations could not be counted, so none of its are followed */
void shim_epoll_dup_seen(int fd);
/* recv.c: fd's read mode asked of the kernel if not known (once, until
 * changed): whether a read takes bytes kept for it (shim_slot_keepable) */
void shim_recv_rx_learn(int fd, shim_slot *h);
/* A bridge placed a moment ago with a new unix socket's receive options
 * (no timeout, a low-water mark of 1, no peek offset) and the status flags
 * status, its fd's hint h now: h's read mode noted without asking the
 * kernel. m and changes0: h's rxmode and shim_recv_rx_changes() read
 * before the bridge was placed, so that a change meanwhile wins. */
void shim_recv_rx_fresh(shim_slot *h, uint32_t m, int status, uint64_t changes0);
/* A read mode's change seen (sockopt.c's rx_changed), and their count */
void shim_recv_rx_changing(void);
uint64_t shim_recv_rx_changes(void);

#endif
