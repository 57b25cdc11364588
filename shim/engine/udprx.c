/*
 * udprx.c: an engine's UDP sockets read, on their epoll events (engine.c's
 * loop, an app thread's turn): the datagrams, each to the core as the
 * packet it is (GRO's buffers cut at their segment size, timed when read
 * or when the kernel stamped them), or to the process or engine whose
 * connection it is (xgroup.c, forward.c); and the ICMP errors about what
 * a socket sent (IP_RECVERR), to the core with what they quote
 * (core/icmp.c, core/pmtu.c). Split from engine.c, which keeps the loop.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <linux/errqueue.h>

#include "internal.h"
#include "enginepriv.h"
#include "udpio.h"

#include "base/poison.h"

/* The destination of a datagram received on a wildcard-bound socket. */
static int pktinfo_local(struct msghdr *m, rudp_addr *out)
{
    memset(out, 0, sizeof *out);
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
            c->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
            struct in_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof pi);
            out->family = AF_INET;
            memcpy(out->ip, &pi.ipi_addr, 4);
            return 1;
        }
        if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
            c->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
            struct in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof pi);
            out->family = AF_INET6;
            memcpy(out->ip, &pi.ipi6_addr, 16);
            out->scope_id = pi.ipi6_ifindex;
            return 1;
        }
    }
    return 0;
}

/* ICMP errors about datagrams a socket sent (IP_RECVERR): each comes with
 * the address it was sent to and what the ICMP message quoted of it, which
 * the core matches against its connections (core/icmp.c). A listener's
 * socket carries the errors of all its connections: a server closing
 * 3,500 at once to a client gone had ~900 port unreachables on each
 * engine's few sockets, and reading 64 an event left the rest to later
 * turns, whose timers fired the probes those errors answer. Now the
 * queue is read to its end, up to ERRQ_READ_MAX (each error is one
 * system call, answered by nothing). */
#define ERRQ_READ_MAX 1024

static void read_errqueue(esock *s, rudp_time now)
{
    for (int i = 0; i < ERRQ_READ_MAX; i++) {
        struct sockaddr_storage off;
        char ctrl[512];
        uint8_t data[64];
        struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
        struct msghdr m = {.msg_name = &off, .msg_namelen = sizeof off, .msg_iov = &iov,
                           .msg_iovlen = 1, .msg_control = ctrl, .msg_controllen = sizeof ctrl};
        ssize_t n = real_recvmsg(s->fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT);
        if (n < 0)
            return;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
            if (!((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
                  (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR)))
                continue;
            struct sock_extended_err ee;
            memcpy(&ee, CMSG_DATA(c), sizeof ee);
            if (!m.msg_namelen)
                continue;
            rudp_addr a;
            shim_to_rudp_addr((struct sockaddr *)&off, &a);
            if (ee.ee_origin == SO_EE_ORIGIN_LOCAL && ee.ee_errno == EMSGSIZE)
                /* our kernel refused a datagram to a as larger than the
                 * device (don't-fragment): ee_info is the device's MTU.
                 * Only the kernel makes these; the send's own EMSGSIZE
                 * may be a forged ICMP's pending error (udpio.c). */
                rudp_ctx_device_mtu(s->e->ctx, now, s->idx, &a, ee.ee_info);
            else if (ee.ee_origin != SO_EE_ORIGIN_ICMP && ee.ee_origin != SO_EE_ORIGIN_ICMP6)
                continue;
            else if (ee.ee_errno == EMSGSIZE)
                /* "fragmentation needed" / "packet too big": the path MTU
                 * it names, for core/pmtu.c to validate */
                rudp_ctx_too_big(s->e->ctx, now, s->idx, &a, data, (size_t)n, ee.ee_info);
            else
                rudp_ctx_icmp(s->e->ctx, now, s->idx, &a, data, (size_t)n, -(int)ee.ee_errno);
        }
    }
}

/* A datagram whose connection another process's member (xgroup.c) or
 * another engine (forward.c) has; without them, nobody's. */
static void relay_member(esock *s, unsigned tag, const rudp_addr *local, const rudp_addr *peer,
                         const uint8_t *buf, size_t len, rudp_time now)
{
    const shim_relay_ops *r = shim_hook.relay;
    if (r && r->to_member)
        r->to_member(s, tag, local, peer, buf, len, now);
}

static void relay_engine(esock *s, unsigned owner, const rudp_addr *local,
                         const rudp_addr *peer, const uint8_t *buf, size_t len, rudp_time now)
{
    const shim_relay_ops *r = shim_hook.relay;
    if (r && r->to_engine)
        r->to_engine(s, owner, local, peer, buf, len, now);
}

/* What s's datagrams set off closed s itself (the last process holding
 * its listener gone, shim_engine_stop_listening; a reset ending the
 * connection of a client's socket): shim_esock_close buried it, its fd is
 * closed, and it is freed when the batch ends. Reading it on, or noting
 * its read for accept order (shim_fifo_read puts it back on the engine's
 * list, which shim_fifo_turn walks after the free: a use after free ASan
 * found in t_supervise_dialstorm, whose listener closes mid-storm), would
 * act on a dead socket. */
static int closed_by_its_datagrams(const esock *s)
{
    return s->w.type != SHIM_WATCHED;
}

static void read_udp(esock *s, uint32_t events, rudp_time now)
{
    struct engine *e = s->e;
    if (events & EPOLLERR)
        read_errqueue(s, now);
    /* a listener's group of engines: accept order (fifo.c) */
    int fifo = shim_fifo_on(s);
    uint64_t t0 = 0, last = 0;
    for (int rounds = 0; rounds < SHIM_UDP_READ_MAX / RX_BATCH; rounds++) {
        if (closed_by_its_datagrams(s))
            return;
        for (int i = 0; i < RX_BATCH; i++) {
            e->iovs[i].iov_base = e->rxbuf + (size_t)i * RX_SIZE;
            e->iovs[i].iov_len = RX_SIZE;
            memset(&e->msgs[i].msg_hdr, 0, sizeof e->msgs[i].msg_hdr);
            e->msgs[i].msg_hdr.msg_iov = &e->iovs[i];
            e->msgs[i].msg_hdr.msg_iovlen = 1;
            e->msgs[i].msg_hdr.msg_name = &e->addrs[i];
            e->msgs[i].msg_hdr.msg_namelen = sizeof e->addrs[i];
            /* pktinfo and GRO's segment size */
            e->msgs[i].msg_hdr.msg_control = e->ctrls[i];
            e->msgs[i].msg_hdr.msg_controllen = sizeof e->ctrls[i];
        }
        if (fifo)
            t0 = shim_fifo_reading(s);
        int m = real_recvmmsg(s->fd, e->msgs, RX_BATCH, MSG_DONTWAIT, NULL);
        /* Each batch is timed when it is read: an ACK that arrived while
         * earlier batches were processed, timed at the wake-up, would
         * give an RTT sample short by that long (and BBR a false minimum
         * RTT: the flood benchmark saw 3.9 ms on a 10 ms link). */
        /* A socket with kernel receive times (rxmod.c: a paced sender's,
         * its ACKs read at the pacer's wake-up): each datagram is timed
         * when it came, on our clock, for the core's RTT and rate samples;
         * the wall clock read first, so a delay between the reads can only
         * make an arrival later (udpio.h) */
        uint64_t wall = s->stamps == 1 ? shim_udpio_wall_ns() : 0;
        now = shim_now();
        if (m < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH ||
                errno == EHOSTDOWN || errno == ENONET || errno == EPROTO) {
                /* The socket's pending ICMP error, reported once: the
                 * error queue has it with its quote, which decides. */
                read_errqueue(s, now);
                continue;
            }
            if (fifo)
                shim_fifo_read(s, t0, last, 1); /* EAGAIN: empty */
            s->drained_at = now;
            return;
        }
        if (m > 0)
            s->heard = 1; /* roam.c: the peer knows this socket */
        for (int i = 0; i < m; i++) {
            SHIM_LOG(RUDP_LOG_DEBUG, "udp %u: received %u bytes %s", s->idx, e->msgs[i].msg_len,
                     rudp_packet_name(e->iovs[i].iov_base, e->msgs[i].msg_len));
            if (s->alive_check && rudp_is_syn(e->iovs[i].iov_base, e->msgs[i].msg_len) &&
                unix_alive(s->listener_ino) == 0) {
                /* the last process holding the listener is gone: refuse
                 * this client now, as TCP would, not after a handshake */
                shim_engine_stop_listening(s);
            }
            /* A new client on the port of a listener closed and made
             * again: the live one's (portshare.c) */
            uint32_t sidx = s->idx;
            if (!s->listener && s->listener_id && shim_hook.listener &&
                shim_hook.listener->live_twin &&
                rudp_is_syn(e->iovs[i].iov_base, e->msgs[i].msg_len))
                sidx = shim_hook.listener->live_twin(e, s);
            if (sidx == UINT32_MAX)
                continue; /* unanswered: its client asks again (live_twin) */
            rudp_addr a, local;
            shim_to_rudp_addr((struct sockaddr *)&e->addrs[i], &a);
            int has_local = s->pktinfo && pktinfo_local(&e->msgs[i].msg_hdr, &local);
            /* GRO: one buffer may hold several datagrams of seg bytes
             * (the last one shorter), each its own packet to the core. */
            const uint8_t *p = e->iovs[i].iov_base;
            size_t left = e->msgs[i].msg_len;
            uint64_t stamp;
            uint32_t seg =
                shim_udpio_rx_meta(e->io, &e->msgs[i].msg_hdr, &s->drops_seen, &stamp);
            if (stamp > last)
                last = stamp;
            e->rx_stamp = stamp;
            rudp_ctx_set_rx_stamp(e->ctx, stamp);
            if (!seg || seg > left)
                seg = (uint32_t)left;
            rudp_time at = now;
            if (wall && stamp) {
                at = shim_udpio_arrival(stamp, wall, now, s->drained_at);
                if (s->mod_unwatched) { /* the moderated reads' share */
                    e->stamped_in++;
                    e->stamped_ns += now - at;
                }
            }
            uint32_t count = 0;
            do {
                size_t l = left < seg ? left : seg;
                int owner = rudp_ctx_input(e->ctx, at, sidx, has_local ? &local : NULL, &a,
                                           p, l);
                if (owner >= RUDP_INPUT_MEMBER) /* another process's (xgroup.c) */
                    relay_member(s, (unsigned)(owner - RUDP_INPUT_MEMBER),
                                 has_local ? &local : NULL, &a, p, l, now);
                else if (owner) /* another engine's connection (forward.c) */
                    relay_engine(s, (unsigned)(owner - RUDP_INPUT_FOREIGN),
                                 has_local ? &local : NULL, &a, p, l, now);
                p += l;
                left -= l;
                count++;
            } while (left > 0);
            shim_udpio_received(e->io, 1, count);
        }
        if (closed_by_its_datagrams(s))
            return;
        if (fifo)
            shim_fifo_read(s, t0, last, m < RX_BATCH);
        if (m < RX_BATCH) {
            s->drained_at = now; /* what comes later came since (udpio.h) */
            return;
        }
    }
}

/* A UDP socket's epoll event (hooks.h): its datagrams, then what they
 * queued for other processes, before any socket closes (xgroup.c).
 * relay_pending is tested here so that an engine with nothing relayed
 * pays no call per event. */
void shim_engine_udp_event(void *obj, uint32_t events, rudp_time now)
{
    esock *s = obj;
    struct engine *e = s->e;
    read_udp(s, events, now);
    if (e->relay_pending && shim_hook.relay && shim_hook.relay->flush) {
        e->relay_pending = 0;
        shim_hook.relay->flush(e, now);
    }
}

