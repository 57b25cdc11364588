/*
 * accessors.c: the engine's objects as the features above see them
 * (engine.h). The layouts of struct engine, esock, bridge and lgroup are
 * the engine's own (types.h, included by no file outside engine/): a
 * feature reads and changes what it needs of them here, and keeps its own
 * state in the area it registered (hooks.h, shim_engine_set_ext), placed
 * after each object at SHIM_EXT_AT (internal.h). Each is a plain call,
 * on the thread of the engine that owns the object; none is on the path
 * of a datagram the engine reads for its own connections.
 */
#include <errno.h>
#include <sys/epoll.h>

#include "internal.h"
#include "udpio.h"

#include "base/poison.h"

void *shim_engine_ext(struct engine *e)
{
    return e->ext;
}

void *shim_esock_ext(const esock *s)
{
    return (char *)s + SHIM_EXT_AT(sizeof *s);
}

void *shim_esock_group_ext(esock *s)
{
    return s->group ? (char *)s->group + SHIM_EXT_AT(sizeof *s->group) : NULL;
}

uint32_t shim_engine_nsocks(const struct engine *e)
{
    return e->nsocks;
}

esock *shim_engine_sock(const struct engine *e, uint32_t i)
{
    return e->socks[i];
}

rudp_ctx *shim_engine_ctx(struct engine *e)
{
    return e->ctx;
}

uint64_t shim_engine_rx_stamp(const struct engine *e)
{
    return e->rx_stamp;
}

void shim_engine_clear_rx_stamp(struct engine *e)
{
    e->rx_stamp = 0;
    rudp_ctx_set_rx_stamp(e->ctx, 0);
}

void shim_engine_tick_by(struct engine *e, rudp_time at)
{
    if (e->retry_at > at)
        e->retry_at = at;
}

void shim_engine_wake(struct engine *e)
{
    /* non-blocking; a counter that full is still readable */
    uint64_t one = 1;
    ssize_t w = real_write(shim_engine_doorbell(e), &one, sizeof one);
    (void)w;
}

void shim_engine_flush_output(struct engine *e)
{
    shim_udpio_flush(e->io);
}

void shim_engine_relay_pending(struct engine *e)
{
    e->relay_pending = 1;
}

int shim_engine_watch(struct engine *e, int fd, uint32_t events, shim_watch *w)
{
    struct epoll_event ee = {.events = events, .data.ptr = w};
    return real_epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ee) < 0 ? -errno : 0;
}

int shim_engine_rewatch(struct engine *e, int fd, uint32_t events, shim_watch *w)
{
    struct epoll_event ee = {.events = events, .data.ptr = w};
    return real_epoll_ctl(e->epfd, EPOLL_CTL_MOD, fd, &ee) < 0 ? -errno : 0;
}

int shim_engine_unwatch(struct engine *e, int fd)
{
    return real_epoll_ctl(e->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 ? -errno : 0;
}

int shim_engine_unwatch_sock(esock *s)
{
    return real_epoll_ctl(s->e->iofd, EPOLL_CTL_DEL, s->fd, NULL) < 0 ? -errno : 0;
}

void shim_engine_count_squatted(struct engine *e)
{
    e->squatted++;
}

struct engine *shim_esock_engine(const esock *s)
{
    return s->e;
}

int shim_esock_fd(const esock *s)
{
    return s->fd;
}

uint32_t shim_esock_index(const esock *s)
{
    return s->idx;
}

int shim_esock_family(const esock *s)
{
    return s->family;
}

int shim_esock_is_client(const esock *s)
{
    return s->connected || s->owner;
}

int shim_esock_connected(const esock *s)
{
    return s->connected;
}

const rudp_addr *shim_esock_peer(const esock *s)
{
    return &s->peer;
}

void shim_esock_set_peer(esock *s, const rudp_addr *to)
{
    s->peer = *to;
    s->connected = 1; /* a silent connection's open socket (roam.c) hears its server again */
}

int shim_esock_pktinfo(const esock *s)
{
    return s->pktinfo;
}

void shim_esock_set_pktinfo(esock *s, int on)
{
    s->pktinfo = on;
}

int shim_esock_listening(const esock *s)
{
    return s->listener != NULL;
}

uint64_t shim_esock_listener_id(const esock *s)
{
    return s->listener_id;
}

uint64_t shim_esock_listener_ino(const esock *s)
{
    return s->listener_ino;
}

uid_t shim_esock_listener_uid(const esock *s)
{
    return s->listener_uid;
}

const shim_name *shim_esock_lname(const esock *s)
{
    return &s->lname;
}

socklen_t shim_esock_lun(const esock *s, const struct sockaddr_un **un)
{
    *un = &s->lun;
    return s->lun_len;
}

int shim_esock_backlog(const esock *s)
{
    return s->backlog;
}

int shim_esock_reserve_fd(const esock *s)
{
    return s->reserve_fd;
}

void shim_esock_reserve_taken(esock *s)
{
    s->reserve_fd = -1;
}

int shim_esock_group_tcp_fd(const esock *s)
{
    return s->group ? s->group->tcp_fd : -1;
}

void shim_esock_check_soon(esock *s, rudp_time now)
{
    if (!s->listener)
        return;
    s->alive_check = now;
    shim_engine_tick_by(s->e, now);
}

/* Whether bridge b's connection was accepted on s (a client's bridge owns
 * its socket). */
static int accepted_on(const bridge *b, const esock *s)
{
    return b->sock == s && b->conn && !b->owns_sock;
}

int shim_esock_accepted(const esock *s)
{
    int n = 0;
    for (bridge *b = s->e->bridges; b; b = b->next)
        n += accepted_on(b, s);
    return n;
}

/* Those the app closed, finishing their close with no bridge, count and
 * move too (the core's): a keeper asked for the port by a restarted
 * server gave it up with a connection whose last 200 KB were still on
 * their way, which its client then lost (an ICMP error, a reset). */
int shim_esock_movable(const esock *s)
{
    int n = rudp_ctx_released_movable(s->e->ctx, s->idx);
    for (bridge *b = s->e->bridges; b; b = b->next)
        n += accepted_on(b, s) && rudp_conn_movable(b->conn);
    return n;
}

int shim_esock_unmovable(const esock *s)
{
    /* s holds a reference for its listener and one for each connection
     * accepted on it (conn_freed gives it back) */
    int conns = s->refs - (s->listener ? 1 : 0), movable = shim_esock_movable(s);
    return conns > movable ? conns - movable : 0;
}

int shim_esock_move_accepted(esock *s, esock *to, unsigned port, rudp_time now)
{
    int moved = 0;
    for (bridge *b = s->e->bridges; b; b = b->next) {
        if (!accepted_on(b, s) || rudp_conn_move_port(b->conn, now, to->idx, port) < 0)
            continue;
        /* the connection's reference (conn_freed) goes with it */
        b->sock = to;
        to->refs++;
        s->refs--;
        moved++;
    }
    /* each holds its reference on the socket it is on (conn_freed) */
    int released = rudp_ctx_move_released(s->e->ctx, now, s->idx, to->idx, port);
    to->refs += released;
    s->refs -= released;
    return moved + released;
}

rudp_conn *shim_bridge_conn(const bridge *b)
{
    return b->conn;
}

esock *shim_bridge_sock(const bridge *b)
{
    return b->sock;
}

uint64_t shim_bridge_id(const bridge *b)
{
    return b->id;
}
