/*
 * bridge.c: the bridges, each the engine's pump between an application's
 * unix socket and one rudp connection. A bridge joins the engine end `efd`
 * of an AF_UNIX stream socket pair to the connection; the pumps that move
 * the bytes between the two are bridgepump.c's.
 *
 * Here: a bridge made and freed, its end (the app's close, a failure, a
 * failed connect said in words), the connection's state published to its
 * slot (slots.c) for the application's getsockopt and ioctl, the epoll
 * interest in efd, the core's events for a connection
 * (shim_bridge_conn_event) and the end of a client's handshake; the
 * hand-off of an accepted connection to the application's unix listener
 * is bridgeaccept.c's. Everything runs on the thread of the engine
 * that owns the bridge; the loop, the UDP sockets and the commands that
 * make client bridges are engine.c's.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <netinet/tcp.h>

#include "bridgepriv.h"
#include "udpio.h"

#include "base/poison.h"

/* ---- epoll interest ---- */

/* b->ev is the registered interest; W_REG marks "registered" so that an
 * empty interest still hears EPOLLHUP. */
#define W_REG 0x80000000u

void shim_bridge_watch(bridge *b, uint32_t ev)
{
    struct engine *e = b->e;
    if (b->efd < 0)
        return;
    ev |= W_REG;
    if (ev == b->ev)
        return;
    struct epoll_event ee = {.events = ev & ~W_REG, .data.ptr = b};
    int op = b->ev ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (real_epoll_ctl(e->iofd, op, b->efd, &ee) == 0)
        b->ev = ev;
}

static void unwatch_bridge(bridge *b)
{
    if (b->efd >= 0 && b->ev)
        real_epoll_ctl(b->e->iofd, EPOLL_CTL_DEL, b->efd, NULL);
    b->ev = 0;
}

/* ---- slots ---- */

/* Resolved once per bridge: the slab stays mapped at the same address in
 * this process and in a keeper forked from it. */
shim_slot *shim_bridge_slot(bridge *b)
{
    if (!b->sp && b->slot != UINT32_MAX)
        b->sp = shim_slot_get(b->slot, b->id);
    return b->slot == UINT32_MAX ? NULL : b->sp;
}

static uint32_t tcp_state_of(rudp_state s)
{
    switch (s) {
    case RUDP_SYN_SENT: return TCP_SYN_SENT;
    case RUDP_SYN_RCVD: return TCP_SYN_RECV;
    case RUDP_ESTABLISHED: return TCP_ESTABLISHED;
    case RUDP_FIN_WAIT_1: return TCP_FIN_WAIT1;
    case RUDP_FIN_WAIT_2: return TCP_FIN_WAIT2;
    case RUDP_CLOSING: return TCP_CLOSING;
    case RUDP_TIME_WAIT: return TCP_TIME_WAIT;
    case RUDP_CLOSE_WAIT: return TCP_CLOSE_WAIT;
    case RUDP_LAST_ACK: return TCP_LAST_ACK;
    case RUDP_CLOSED:
    case RUDP_STATE_COUNT:
        break;
    }
    return TCP_CLOSE;
}

static void publish(bridge *b)
{
    shim_slot *s = shim_bridge_slot(b);
    if (!s || !b->conn)
        return;
    if (b->efd >= 0 && atomic_load(&s->efd) != b->efd) {
        struct stat st;
        if (fstat(b->efd, &st) == 0) {
            atomic_store(&s->efd_ino, (uint64_t)st.st_ino);
            atomic_store(&s->efd, b->efd);
        }
    }
    rudp_conn_info i;
    rudp_conn_get_info(b->conn, &i);
    /* Gauges read one by one (TCP_INFO, SIOCOUTQ): no order among them is
     * promised, so release stores (a plain mov on x86) rather than
     * sequentially consistent ones (an xchg each, twenty per call, and a
     * call per event: 2% of the cycles under redis-benchmark, perf).
     * SIOCOUTQ's odd/even seq (pump_in) keeps its own. */
#define PUT(f, v) atomic_store_explicit(&s->f, v, memory_order_release)
    PUT(unacked, i.unacked_bytes);
    PUT(unsent, i.unsent_bytes);
    PUT(tcp_state, tcp_state_of(i.state));
    PUT(rtt_us, (uint32_t)i.rtt_us);
    PUT(rttvar_us, (uint32_t)i.rttvar_us);
    PUT(min_rtt_us, (uint32_t)i.min_rtt_us);
    PUT(mss, i.mss);
    PUT(cwnd, i.cwnd_bytes);
    PUT(ssthresh, i.ssthresh_bytes);
    PUT(retrans, i.retransmits);
    PUT(bytes_acked, i.bytes_acked);
    PUT(bytes_received, i.bytes_received);
    PUT(pacing_rate, i.pacing_rate);
    PUT(in_flight, i.bytes_in_flight);
    PUT(delivery_rate, i.delivery_rate);
    PUT(delivery_app_limited, (uint32_t)i.delivery_app_limited);
    PUT(peer_window, i.peer_window);
    PUT(probes, (uint32_t)i.pto_count);
    PUT(last_rx, i.last_rx);
}
#undef PUT

void shim_bridge_publish(bridge *b)
{
    publish(b);
}

/* TCP_INFO's state follows every transition (a FIN sent or received),
 * not only the events that publish the rest. */
static void publish_state(bridge *b)
{
    shim_slot *s = shim_bridge_slot(b);
    if (s && b->conn)
        atomic_store(&s->tcp_state, tcp_state_of(rudp_conn_state(b->conn)));
}

/* ---- bridges ---- */

/* A log line about bridge b, led by its connection's name (rudp_conn_name),
 * the one it had before kernel TCP was tried (fallback.c), or, before it
 * had one, its peer and number: LOCAL > PEER wherever known. */
void shim_bridge_log(int level, const bridge *b, const char *fmt, ...)
{
    if (shim_cfg.log_level < level)
        return;
    char name[160], msg[384];
    rudp_cause cause;
    const char *fb_name = !b->conn && b->fb ? shim_fallback_rudp_said(b, &cause) : NULL;
    if (b->conn) {
        rudp_conn_name(b->conn, name, sizeof name);
    } else if (fb_name) {
        snprintf(name, sizeof name, "%s", fb_name);
    } else if (b->sock && b->sock->connected) {
        char peer[64];
        rudp_addr_format(&b->sock->peer, peer, sizeof peer);
        snprintf(name, sizeof name, "* > %s connection %llu", peer, (unsigned long long)b->id);
    } else {
        snprintf(name, sizeof name, "connection %llu", (unsigned long long)b->id);
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    shim_log(level, "%s: %s", name, msg);
}

/* Whether b's peer is this host: a loopback address, or the one our
 * connected UDP socket sends from (the kernel picks the destination itself
 * for a local one). */
static int peer_is_here(const bridge *b)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t v6lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    const rudp_addr *p = &b->sock->peer;
    if ((p->family == AF_INET && p->ip[0] == 127) ||
        (p->family == AF_INET6 && (!memcmp(p->ip, v6lo, 16) ||
                                   (!memcmp(p->ip, v4mapped, 12) && p->ip[12] == 127))))
        return 1;
    rudp_addr me;
    if (shim_to_rudp_local(b->sock->fd, &me) < 0)
        return 0;
    return me.family == p->family && !memcmp(me.ip, p->ip, sizeof me.ip);
}

/* A connect that will not fall back to kernel TCP (a key's default,
 * RUDP_FALLBACK=none) refused for want of a rudp listener (ICMP port
 * unreachable) where a plain TCP server may be the reason: a user who
 * left the server without the shim, or gave the client a key, sees only
 * the program's "Connection refused" otherwise. Said at warn once per
 * destination (then at info) when a kernel TCP listener of this host
 * takes the address (tcpdiag.c), or, with a key, when the peer is
 * elsewhere and nothing tells; a refusal with nothing there stays as
 * quiet as TCP's. Returns 1 if said. */
static int refused_by_plain(const bridge *b, const char *peer)
{
    if (shim_cfg.log_level < RUDP_LOG_WARN ||
        (shim_cfg.log_level < RUDP_LOG_INFO && shim_fallback_told(&b->sock->peer)))
        return 0; /* nothing to say: no dump of the listeners (a loop waiting
                     for a port would make one per attempt) */
    int keyed = shim_key() != NULL;
    int there = peer_is_here(b) ? shim_tcp_listener_for(&b->sock->peer) : -1;
    if (there == 0 || (there < 0 && !keyed))
        return 0;
    int level = shim_fallback_first_telling(&b->sock->peer) ? RUDP_LOG_WARN : RUDP_LOG_INFO;
    const char *nofb = keyed ? "with a key a connect does not fall back to kernel TCP "
                               "(RUDP_FALLBACK=none, the default with a key)"
                             : "RUDP_FALLBACK=none: no fallback to kernel TCP";
    if (there > 0)
        shim_bridge_log(level, b,
                   "connect failed: Connection refused: a plain TCP server listens at %s, not "
                   "rudp (is it running under the shim%s?); %s",
                   peer, keyed ? ", with the same key" : "", nofb);
    else
        shim_bridge_log(level, b,
                   "connect failed: Connection refused: no rudp listener at %s (ICMP port "
                   "unreachable): nothing listens there, or a plain TCP server, not under the "
                   "shim with the same key; %s",
                   peer, nofb);
    return 1;
}

/* A connect that failed, in words that say what to check. A refusal (no
 * listener: ICMP, the peer's engine, kernel TCP's RST) is as quiet as
 * TCP's, at info, but where a plain TCP server is the likely reason
 * (refused_by_plain); the rest, a key mistake above all, at warn. */
static void report_connect_failed(const bridge *b, int err)
{
    char peer[64];
    rudp_addr_format(&b->sock->peer, peer, sizeof peer);
    rudp_cause cause = b->conn ? rudp_conn_cause(b->conn) : RUDP_CAUSE_NONE;
    int tcp_too = 0; /* kernel TCP was tried (fallback.c) and failed too */
    if (!b->conn && b->fb && shim_fallback_rudp_said(b, &cause))
        tcp_too = 1;
    const char *also = tcp_too ? "; kernel TCP failed too" : "";
    char said[320];
    if (b->fb && shim_fallback_timeout_said(b, err, said, sizeof said)) {
        shim_bridge_log(RUDP_LOG_WARN, b, "connect failed: %s", said);
        return;
    }
    double verdict = (double)RUDP_KEY_VERDICT / 1e9;
    if (err == -ECONNREFUSED && cause == RUDP_CAUSE_ICMP && !tcp_too &&
        refused_by_plain(b, peer))
        return;
    if (err == -ECONNREFUSED &&
        (cause == RUDP_CAUSE_NONE || cause == RUDP_CAUSE_ICMP || cause == RUDP_CAUSE_REFUSED))
        shim_bridge_log(RUDP_LOG_INFO, b, "connect failed: Connection refused (%s%s)",
                   cause == RUDP_CAUSE_ICMP      ? "no rudp listener: ICMP port unreachable; is the "
                                                   "server running under the shim?"
                   : cause == RUDP_CAUSE_REFUSED ? "its rudp engine has no listener on that port"
                                                 : "kernel TCP refused",
                   also);
    else if (cause == RUDP_CAUSE_ICMP)
        shim_bridge_log(RUDP_LOG_WARN, b, "connect failed: ICMP error from the path to %s: %s%s", peer,
                   shim_strerror(-err), also);
    else if (cause == RUDP_CAUSE_KEY_REQUIRED)
        shim_bridge_log(RUDP_LOG_WARN, b,
                   "connect failed: %s requires a key, and this end has none: start it with the "
                   "server's key (RUDP_KEY_FILE, --key-file)%s",
                   peer, also);
    else if (cause == RUDP_CAUSE_KEY_MISMATCH || cause == RUDP_CAUSE_KEY_PEER_NONE)
        shim_bridge_log(RUDP_LOG_WARN, b,
                   "connect failed: no authenticated answer from %s in %.1f s, only answers "
                   "without this end's key%s; the server may have another key or none: is "
                   "RUDP_KEY_FILE the same on both ends?%s",
                   peer, verdict,
                   cause == RUDP_CAUSE_KEY_PEER_NONE ? " (one, unauthenticated, says it has none)"
                                                     : "",
                   also);
    else if (cause == RUDP_CAUSE_NO_AUTH_ANSWER)
        shim_bridge_log(RUDP_LOG_WARN, b,
                   "connect failed: no authenticated answer from %s in %.1f s; the server may "
                   "have another key or none, or be down or UDP blocked: is RUDP_KEY_FILE the "
                   "same on both ends?%s",
                   peer, (double)shim_cfg.rudp.connect_timeout / 1e9, also);
    else if (cause == RUDP_CAUSE_HANDSHAKE_TIMEOUT)
        shim_bridge_log(RUDP_LOG_WARN, b,
                   "connect failed: no answer from %s in %.1f s: UDP blocked, or the peer "
                   "does not run the shim?%s",
                   peer, (double)shim_cfg.rudp.connect_timeout / 1e9, also);
    else
        shim_bridge_log(RUDP_LOG_WARN, b, "connect failed: %s%s%s%s", shim_strerror(-err),
                   cause ? ": " : "", cause ? rudp_cause_text(cause) : "", also);
}

static const shim_watch_ops bridge_ops;

bridge *shim_bridge_new(struct engine *e)
{
    bridge *b = shim_calloc(1, sizeof *b);
    if (!b)
        return NULL;
    shim_watch_set(&b->w, &bridge_ops);
    b->e = e;
    atomic_fetch_add(&e->nbridges, 1);
    b->efd = -1;
    b->app_fd = -1;
    b->slot = UINT32_MAX;
    b->indexed = UINT32_MAX;
    b->next = e->bridges;
    if (e->bridges)
        e->bridges->prev = b;
    e->bridges = b;
    return b;
}

void shim_bridge_free(bridge *b)
{
    struct engine *e = b->e;
    atomic_fetch_sub(&e->nbridges, 1);
    /* A bridge waiting for room in the app's accept queue may fail (a
     * reset, a timeout) before its turn: it must leave the list first. */
    for (bridge **pp = &e->pending; *pp; pp = &(*pp)->pending_next) {
        if (*pp == b) {
            *pp = b->pending_next;
            break;
        }
    }
    shim_fifo_forget(b); /* ... or held for its turn */
    if (b->await_client)
        e->n_awaiting--;
    shim_appsend_forget(b);
    shim_txring_free(b);
    shim_bridge_unkeep(b);
    if (e->keep_b == b)
        e->keep_b = NULL; /* freed in a poll's turn: nothing to keep for it */
    if (e->grow_b == b)
        e->grow_b = NULL;
    if (b->fb)
        shim_fallback_free(b);
    if (b->efd >= 0) {
        unwatch_bridge(b);
        shim_close_owned(b->efd);
        b->efd = -1;
        if (b->sp) /* the app's end hangs up */
            atomic_fetch_add_explicit(&b->sp->out_gen, 1, memory_order_release);
    }
    shim_standby_close(b); /* the core moves the connection no more */
    if (b->conn) {
        rudp_conn_set_user(b->conn, NULL);
        rudp_conn_release(b->conn, shim_now());
        b->conn = NULL;
    }
    if (b->owns_sock) {
        if (b->sock->owner == b)
            b->sock->owner = NULL;
        shim_esock_unref(b->sock);
        if (b->old_sock)
            shim_esock_unref(b->old_sock);
    }
    if (b->prev)
        b->prev->next = b->next;
    else
        e->bridges = b->next;
    if (b->next)
        b->next->prev = b->prev;
    shim_engine_bury(e, b, &b->w.type);
}

/* Interest in efd follows what can move: EPOLLIN while the app may send
 * and the connection has room (EOF shows up as readable too), EPOLLOUT
 * while received bytes wait for room in the socket. EPOLLHUP needs no
 * interest: it comes when neither direction can carry anything more.
 *
 * Once the send buffer was full, efd stays unread until the connection
 * has the room a writer is woken for (rudp_conn_write_threshold: a
 * quarter of its limit, at most 64 KiB), as TCP wakes a blocked writer:
 * taken back at the first room, each ACK of a bulk sender cost two
 * epoll_ctl() and a read of a few packets' bytes (B1: 13,322 epoll_ctl in
 * 19,032 wake-ups per 100 MB). */
void shim_bridge_update_interest(bridge *b)
{
    if (b->efd < 0 || !b->unix_up || b->hup)
        return;
    uint32_t ev = 0;
    if ((b->established || b->early) && b->conn && !b->app_eof) {
        size_t room = rudp_conn_write_space(b->conn);
        if (room == 0)
            b->in_held = 1;
        else if (b->in_held && room >= rudp_conn_write_threshold(b->conn))
            b->in_held = 0;
        if (room > 0 && !b->in_held)
            ev |= EPOLLIN | EPOLLPRI; /* PRI: the app sent urgent data (pump_in) */
    }
    if (b->conn && !b->app_gone && !rudp_conn_rx_held(b->conn) && !b->kept) {
        /* held (the core's rx_hold): RUDP_EV_READABLE pumps them; kept for
         * a poll's reader: its read takes them, or apprecv.c passes them on */
        const uint8_t *p;
        if (rudp_conn_peek(b->conn, &p) > 0)
            ev |= EPOLLOUT;
    }
    shim_bridge_watch(b, ev);
}

/* The end of a failed bridge: its slot kept for SO_ERROR after EOF (reused
 * only when the table runs out; names carry the id, so a reused slot is
 * not misread), efd closed, the connection released. */
static void failed_done(bridge *b)
{
    shim_bridge_unkeep(b); /* the slot's mark with it, while b->sp names it */
    shim_txring_slot_ends(b);
    if (b->slot != UINT32_MAX)
        shim_slot_retire(b->slot);
    b->slot = UINT32_MAX;
    b->sp = NULL;
    shim_bridge_free(b);
}

/* A failed bridge still passing on what the peer sent before its reset:
 * done once the core holds no more of it, or the app stopped reading. */
static void drain(bridge *b, uint32_t ev, rudp_time now)
{
    const uint8_t *p;
    if (!(ev & (EPOLLHUP | EPOLLERR)))
        shim_bridge_pump_out(b, now);
    if ((ev & (EPOLLHUP | EPOLLERR)) || b->app_gone || rudp_conn_peek(b->conn, &p) == 0)
        failed_done(b);
}

/* A reset in CLOSE_WAIT: the app's writes fail with EPIPE from now on,
 * and its reads end in EOF, as TCP's do (tcp_recvmsg() says EOF once the
 * peer's FIN is in, SOCK_DONE, whatever the reset left in sk_err). Our end
 * must then not be closed holding bytes the app wrote: the kernel would
 * give the app's end ECONNRESET (unix_release_sock()), which its next
 * read() says instead of EOF, and a write() racing the close says instead
 * of EPIPE (unix_stream_sendmsg() checks SEND_SHUTDOWN before the socket's
 * error; 1 run in 50 of a writer in a loop). SHUT_RD here makes the app's
 * end refuse writes at once (EPIPE, SIGPIPE unless MSG_NOSIGNAL), and what
 * it wrote before is dropped, as TCP's reset drops its send queue. */
static void refuse_app_writes(bridge *b)
{
    real_shutdown(b->efd, SHUT_RD);
    uint8_t buf[4096];
    while (real_recvfrom(b->efd, buf, sizeof buf, MSG_DONTWAIT, NULL, NULL) > 0)
        ;
}

/* The connection ended badly: tell the app through SO_ERROR and end its
 * stream. Closing efd while it holds bytes the app wrote gives the app's
 * reader ECONNRESET, as TCP does; on the peer's reset we make sure it
 * holds some (shim_appfd_reset_mark), else the app reads EOF and SO_ERROR
 * tells the rest (see README, limits). What the peer sent before
 * its reset, and the core acknowledged, stays readable as in TCP (whose
 * tcp_reset() keeps the receive queue): efd is closed only once the app
 * has taken it, or closed its end. */
static void bridge_failed(bridge *b, int err)
{
    if (b->fb && !b->established && shim_fallback_rudp_failed(b, &err, shim_now()))
        return; /* kernel TCP carries on (fallback.c) */
    /* A reset in CLOSE_WAIT (the peer's FIN in, ours not asked for) is
     * EPIPE, as tcp_reset() in net/ipv4/tcp_input.c says: the answer to
     * our write after the peer's close(). The FIN may not be passed on
     * yet (bytes before it wait for room in the app's end): TCP's came
     * in order all the same, and its reads end in EOF (SOCK_DONE). A
     * peer's shutdown(SHUT_WR) then close() with our bytes unread (Java's
     * Socket.close()) sends both at once: its reader read ECONNRESET
     * after the bytes, where TCP's reads EOF. */
    int fin_in = b->peer_eof || (b->conn && rudp_conn_fin_received(b->conn));
    int close_wait = err == -ECONNRESET && fin_in && !b->app_eof;
    if (close_wait)
        err = -EPIPE;
    shim_slot *s = shim_bridge_slot(b);
    publish(b); /* TCP_INFO's counters as they ended */
    if (s) {
        atomic_store(&s->so_error, -err);
        atomic_store(&s->end_error, -err);
        atomic_store(&s->tcp_state, TCP_CLOSE);
        atomic_store(&s->state, b->established ? SHIM_SLOT_CLOSED : SHIM_SLOT_FAILED);
    }
    /* after SO_ERROR is there: the app's end hangs up at once */
    if (close_wait && b->efd >= 0 && b->unix_up && !b->app_gone)
        refuse_app_writes(b);
    /* An established connection's end is told by the core's info line
     * ("closed (reset by the peer) after ..."); a connect that never got
     * there is worth a warning that says what to check. */
    if (!b->established && b->sock && b->sock->connected)
        report_connect_failed(b, err);
    else
        shim_bridge_log(RUDP_LOG_DEBUG, b, "failed: %s", shim_strerror(-err));
    /* Every abnormal end of an established connection (the peer's reset,
     * the user or idle timeout, a key failure), but once the peer's FIN
     * was passed on (CLOSE_WAIT: TCP's reads say EOF then, tcp_recvmsg's
     * SOCK_DONE comes before sk_err): the app's reads must end in an error,
     * never EOF, and its poll() show POLLERR, as TCP's do (tcp_done()
     * sets sk_err): a reader that takes EOF for "done" would keep a cut
     * stream as whole. Our end, closed holding unread bytes, gives the
     * app's end ECONNRESET (shim_appfd_reset_mark); the interposed reads
     * turn it into the connection's own errno (interpose/recv.c, from
     * end_error above). Before SHUT_RD below, which would refuse the byte.
     * Where no ECONNRESET comes (the app shut down writing: no byte; or a
     * read that copied some bytes took it, unix_stream_read_generic's
     * sock_error() on a short read, where TCP's keeps sk_err), the EOF
     * after is the error: SHIM_SLOT_F_EOF_ERR tells the interposed reads. */
    if (!fin_in && b->established && s)
        atomic_fetch_or(&s->flags, SHIM_SLOT_F_EOF_ERR);
    if (!fin_in && b->established && b->unix_up && !b->app_gone && !b->hup && b->efd >= 0)
        shim_appfd_reset_mark(shim_bridge_slot(b), b->efd);
    /* A 0-RTT connect already said 0 and the app wrote its request into
     * the SYN: a refusal now must not read as the server's clean close
     * (EOF after a request is an answer of nothing). Linux's TFO connect
     * says ECONNREFUSED on the read; an error is what we can say here
     * (ECONNRESET, the unix end's; SO_ERROR has the cause). */
    if (b->early && !b->established && b->unix_up && !b->app_gone && !b->hup && b->efd >= 0)
        shim_appfd_reset_mark(shim_bridge_slot(b), b->efd);
    const uint8_t *p;
    if (b->established && b->unix_up && !b->app_gone && !b->hup && b->conn &&
        rudp_conn_peek(b->conn, &p) > 0) {
        /* The app's writes fail from now on (EPIPE: the unix end cannot
         * say ECONNRESET), its reads get the rest first. */
        b->draining = b->app_eof = 1;
        real_shutdown(b->efd, SHUT_RD);
        shim_bridge_watch(b, EPOLLOUT);
        drain(b, 0, shim_now());
        return;
    }
    failed_done(b);
}

void shim_bridge_fail(bridge *b, int err)
{
    bridge_failed(b, err);
}

void shim_bridge_end(bridge *b, rudp_time now)
{
    if (b->conn) {
        rudp_conn_set_user(b->conn, NULL);
        rudp_conn_abort(b->conn, now);
    }
    failed_done(b);
}

/* Nothing can move through the unix pair any more: the app closed its end,
 * or both directions are shut down. Finish as TCP's close() would: a FIN
 * after what the app wrote, or a reset if the app closed with SO_LINGER 0
 * or received data arrives for nobody (rudp_conn_release decides). */
void shim_bridge_app_closed(bridge *b, rudp_time now)
{
    shim_slot *s = shim_bridge_slot(b);
    int linger0 = s && (atomic_load(&s->flags) & SHIM_SLOT_F_LINGER0);
    if (b->conn) {
        rudp_conn_set_user(b->conn, NULL);
        if (linger0) {
            rudp_conn_abort(b->conn, now);
        } else if (b->late_data || (b->hup && !b->out_full && rudp_conn_readable(b->conn) > 0)) {
            /* Bytes came after the app's close() (our write to efd found
             * it closed; or they reached the connection in the turn that
             * read its hang-up, before we could pass them on: the app's
             * end, empty, never held them), not before: TCP's close() had
             * sent its FIN, and those bytes then drew a reset
             * (tcp_rcv_state_process(): data for a socket the app
             * closed). So the FIN, then the reset: the
             * peer is in CLOSE_WAIT when the reset comes, and its writes
             * fail with EPIPE, its reads end in EOF. Releasing with the
             * bytes unread would reset alone, as for a close() with unread
             * data: the peer's read said ECONNRESET where TCP's says EOF.
             * (If the app closed with bytes in its end unread, pump_in met
             * ECONNRESET and aborted first, and a closed connection is
             * left as it is. Bytes that waited for room in the app's end,
             * out_full, came before its close: they reset alone, below.) */
            rudp_conn_close_reset(b->conn, now);
        }
        rudp_conn_release(b->conn, now); /* FIN after queued data, or RST if unread */
        b->conn = NULL;
    }
    shim_bridge_unkeep(b); /* the slot's mark with it, while b->sp names it */
    shim_txring_slot_ends(b);
    if (b->slot != UINT32_MAX) {
        shim_slot_free(b->slot);
        b->slot = UINT32_MAX;
        b->sp = NULL;
    }
    shim_bridge_free(b);
}

/* After a hang-up: once every byte the app wrote is in (its EOF read, or
 * its end gone), the bridge finishes and is freed: 1. Else 0. */
static int app_reset(bridge *b);

static int app_done(bridge *b, rudp_time now)
{
    if (!b->app_eof && !b->app_gone)
        return 0;
    /* The app shut down writing (its EOF read long before), then closed
     * with bytes we passed it unread: TCP's close() resets then, after the
     * shutdown's FIN (the peer's reads EOF, its SO_ERROR EPIPE). The
     * close's ECONNRESET waits on our end unread: the EOF ended our reads. */
    int unread = !b->app_gone && b->conn && app_reset(b) == 2;
    b->app_gone = 1;
    if (unread)
        shim_bridge_close_unread(b, now);
    shim_bridge_app_closed(b, now);
    return 1;
}

/* After a hang-up, with bytes the app wrote still in efd (the connection
 * has no room for them): did the app close with SO_LINGER {1, 0} (1), or
 * with bytes we passed it unread (2: its end's release set ECONNRESET on
 * ours, unix_release_sock())? TCP resets then, dropping what waits to be
 * sent (tcp_close()), rather than after it: at once for SO_LINGER {1, 0};
 * after what the connection holds for unread bytes (rudp_conn_close_unread:
 * TCP had sent that at write time). 0: neither. */
static int app_reset(bridge *b)
{
    shim_slot *s = shim_bridge_slot(b);
    if (s && (atomic_load(&s->flags) & SHIM_SLOT_F_LINGER0))
        return 1;
    int err = 0;
    socklen_t l = sizeof err;
    return real_getsockopt(b->efd, SOL_SOCKET, SO_ERROR, &err, &l) == 0 && err == ECONNRESET ? 2 : 0;
}

/* Engine e's epoll reported ev on bridge b's efd (hooks.h): moves what
 * can move between the app and the connection; may free b. */
static void bridge_event(void *obj, uint32_t ev, rudp_time now)
{
    bridge *b = obj;
    shim_bridge_log(RUDP_LOG_DEBUG, b, "bridge events %#x", ev);
    if (!b->unix_up)
        return;
    if (b->draining) {
        drain(b, ev, now);
        return;
    }
    if (!b->established && !b->early) {
        /* Before the handshake completes the app end only holds filler;
         * HUP means the app gave up on the connection. */
        if (ev & (EPOLLHUP | EPOLLERR)) {
            b->app_gone = 1;
            shim_bridge_app_closed(b, now);
        }
        return;
    }
    if (ev & (EPOLLHUP | EPOLLERR))
        b->hup = 1; /* pump_in now reads through to EOF */
    if (ev & (EPOLLIN | EPOLLPRI | EPOLLHUP | EPOLLERR))
        shim_bridge_pump_in(b, now, (ev & EPOLLPRI) || b->pumped_poll == b->e->polls);
    if (ev & EPOLLOUT)
        shim_bridge_pump_out(b, now);
    if (b->hup) {
        /* Read what is left of the app's bytes first; if the connection
         * cannot take them all now, wait for its WRITABLE outside epoll
         * (EPOLLHUP cannot be masked: it would wake us again at once). */
        if (app_done(b, now))
            return;
        int how = app_reset(b);
        if (how) {
            b->app_gone = 1;
            if (b->conn && how == 1)
                rudp_conn_abort(b->conn, now);
            else if (b->conn)
                shim_bridge_close_unread(b, now);
            shim_bridge_app_closed(b, now);
            return;
        }
        unwatch_bridge(b);
        return;
    }
    shim_bridge_update_interest(b);
}

/* Reads connect's filler off our end of the bridge (connect.c); returns
 * what is left of it (0: gone). */
static size_t drain_filler(void *arg)
{
    bridge *b = arg;
    while (b->filler) {
        uint8_t buf[8192]; /* a shrunk end's filler is ~4.5 KiB (connect.c): one read */
        size_t want = b->filler < sizeof buf ? b->filler : sizeof buf;
        ssize_t r = real_read(b->efd, buf, want);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            break;
        }
        b->filler -= (size_t)r;
    }
    return b->filler;
}

static const shim_watch_ops bridge_ops = {.event = bridge_event};

/* ---- client side ---- */

static void on_established(bridge *b, rudp_time now)
{
    /* TCP's client is ESTABLISHED before its answer to the handshake
     * leaves, so its connect() is complete before the server's accept()
     * can return the connection. Ours too: the app's end turns writable
     * below, and our answer (queued by the core) leaves at the turn's
     * flush, after it (nothing else flushes the whole queue in a turn:
     * shim_esock_close sends only its socket's). When the server's engine
     * is another thread of this process (several engines), an answer sent
     * first let the app accept() and close() the connection while its own
     * connect() was still pending (libuv's tcp_try_write_error then wrote
     * EAGAIN, 1 run in 20 with two engines). Until that flush G.answering
     * holds back the app's next connect (shim_engine_connect), so that it
     * cannot overtake this answer on the wire: a server accepts in the
     * order handshakes complete. Only for a server on this host: a remote
     * one completes the next connection a round trip after its SYN, long
     * after this answer, and every connect of the app would wait for a
     * busy engine's turn for nothing. */
    if (!atomic_load_explicit(&b->e->answering, memory_order_relaxed) && peer_is_here(b)) {
        /* relaxed: published by the count's increment (seq_cst), which a
         * connect reads first */
        atomic_store_explicit(&b->e->answering, 1, memory_order_relaxed);
        atomic_fetch_add(&G.answering, 1);
    }
    /* Publish first: the moment the filler is gone the app sees EPOLLOUT
     * and may ask connect()/SO_ERROR/getpeername at once. */
    b->established = 1;
    if (b->fb)
        shim_fallback_rudp_won(b, now);
    shim_slot *s = shim_bridge_slot(b);
    if (s)
        atomic_store(&s->state, SHIM_SLOT_ESTABLISHED);
    publish(b);
    /* The app's end gets its send buffer back (see the filler in connect.c),
     * if the fd still holds it, before the filler goes: the app may write
     * the moment its end turns writable, and with the kernel's smallest
     * buffer a non-blocking send() of 5 KiB stopped at 4,480 bytes where
     * TCP takes it whole (CPython's test_asyncio test_start_server_1 sends
     * once and waits for an answer). Its bytes queue behind the filler,
     * which is drained by count. */
    /* Then drop the filler that held the app's end unwritable: now it can
     * write. connect() may put our end at the fd only after the first try,
     * and sets the buffer itself if it finds the filler gone: the two
     * sides take one lock (shim_sndbuf_established). */
    if (s)
        shim_sndbuf_established(s, b->app_fd, b->app_ino, b->app_sndbuf, drain_filler, b);
    else
        drain_filler(b);
    b->app_fd = -1;
    shim_bridge_local_client_done(b, now); /* its server's end is queued only now */
    /* No read of our end here: the core raises ESTABLISHED with WRITABLE
     * (core/conn.c), whose pump_in in shim_bridge_conn_event reads it
     * right after, early bytes of a token and the urgent mark included; a
     * read here too was a second ioctl and readv that found nothing. */
    shim_bridge_pump_out(b, now);
    shim_bridge_update_interest(b);
}

void shim_bridge_conn_event(struct engine *e, rudp_conn *c, unsigned ev, rudp_time now)
{
    if (ev & RUDP_EV_ACCEPT) {
        shim_bridge_on_accept(e, c, now);
        return;
    }
    bridge *b = rudp_conn_user(c);
    if (!b || b->draining)
        return;
    publish_state(b); /* before the app can see what caused it (an EOF) */
    /* An acknowledgement too: a reply often carries the ACK of what the
     * app sent, and once the app reads the reply SIOCOUTQ must not count
     * that data as unacknowledged (TCP has processed the ACK by then).
     * And bytes received: TCP_INFO's bytes_received and last_data_recv
     * count them before the app can read them, also when the peer's ACK
     * came alone before its data (a busy peer's delayed ACK; under load
     * prog_apprecv's lowat check saw the count stale for 5 s). */
    if (ev & (RUDP_EV_ACKED | RUDP_EV_SENT | RUDP_EV_READABLE))
        publish(b); /* SIOCOUTQNSD too (RUDP_EV_SENT: TCP_NOTSENT_LOWAT set) */
    if (ev & RUDP_EV_PATH)
        shim_standby_moved(b); /* before anything looks at b->sock */
    if ((ev & RUDP_EV_OFFER) && b->owns_sock)
        shim_standby_offered(b, now);
    if (ev & RUDP_EV_ESTABLISHED) {
        on_established(b, now);
        if (b->owns_sock)
            shim_standby_open(b, now);
    }
    if ((ev & RUDP_EV_TOKEN) && b->want_token && b->sock) {
        /* for this program's next connection to the server, or another's
         * (state/tokens.c) */
        uint8_t tok[RUDP_TOKEN_MAX_BYTES];
        size_t n = rudp_conn_token(c, tok, sizeof tok);
        if (n)
            shim_tokens_put(&b->sock->peer, shim_key() != NULL, tok, n);
    }
    if ((ev & RUDP_EV_READABLE) && b->unix_up)
        shim_bridge_pump_out(b, now);
    if (ev & RUDP_EV_ERROR) {
        bridge_failed(b, rudp_conn_error(c));
        return;
    }
    if (b->await_client && rudp_conn_state(c) != RUDP_SYN_RCVD) {
        /* our client on another engine: its first datagram after the
         * SYNACK left once its end was writable */
        b->await_client = 0;
        b->e->n_awaiting--;
        shim_bridge_hand_over(b, c, now); /* pumps; may free b */
        return;
    }
    if ((ev & RUDP_EV_SERVER_MOVED) && b->owns_sock && shim_hook.client &&
        shim_hook.client->server_moved)
        shim_hook.client->server_moved(b); /* portmove.c */
    if ((ev & RUDP_EV_SERVER_MOVED) && b->owns_sock && b->standby) {
        /* the standby's socket is connected to where the server was */
        shim_standby_close(b);
        shim_standby_open(b, now);
    }
    if ((ev & RUDP_EV_SILENT) && b->owns_sock)
        shim_roam_silent(b, now);
    /* Room in the connection: the app's bytes that waited for it. None
     * wait where the last read found efd empty and EPOLLIN is watched
     * since (level-triggered: what the app writes after that read is
     * told by the next epoll_pwait2 of this loop), nor in the overflow of
     * the writes in memory: then not the SIOCATMARK and the read that
     * would find nothing (B12: two calls a connection at each end). */
    if ((ev & RUDP_EV_WRITABLE) && b->unix_up &&
        !(b->in_drained && (b->ev & EPOLLIN) && !b->txo_len && !b->hup)) {
        shim_bridge_pump_in(b, now, 1);
        /* the app is gone: finish once its last bytes are in */
        if (b->hup && app_done(b, now))
            return;
    }
    if (ev & RUDP_EV_CLOSED)
        publish(b);
    if (ev & RUDP_EV_CLOSED) {
        /* Both directions finished cleanly. Keep efd until the app closes
         * it (it may still read, and ask SO_ERROR) but let the core go once
         * everything it holds reached the app. */
        const uint8_t *p;
        if (rudp_conn_peek(c, &p) == 0) {
            shim_slot *s = shim_bridge_slot(b);
            if (s)
                atomic_store(&s->tcp_state, TCP_CLOSE);
            shim_bridge_pump_out(b, now); /* passes EOF on */
            rudp_conn_set_user(c, NULL);
            rudp_conn_release(c, now);
            b->conn = NULL;
        }
    }
    publish_state(b);
    shim_bridge_update_interest(b);
}

