/*
 * udpio.c: the engine's UDP output in batches, and GRO on input.
 *
 * What the core sends during one turn of the engine loop is queued here and
 * leaves at the end of the turn (shim_udpio_flush) in one sendmmsg() per run
 * of messages on one socket. Consecutive datagrams of one size to one peer
 * over one socket form a GSO train (UDP_SEGMENT): one message, one copy into
 * the kernel, cut into datagrams below the UDP layer; a shorter datagram may
 * end a train, as the kernel allows. So a burst of 40 paced packets costs
 * one system call and one socket-layer pass instead of 40.
 *
 * On input, each UDP socket asks for GRO (UDP_GRO): the kernel may hand
 * several datagrams of one flow as one buffer with their segment size in a
 * control message; shim_udpio_rx_meta() says how to cut it.
 *
 * Both are probed at run time: a kernel without UDP_SEGMENT refuses the
 * setsockopt, or a train (EIO, EINVAL; EMSGSIZE when a segment is larger
 * than the route's MTU: datagrams that IP fragments), and the queue then
 * sends one message per datagram, still batched by sendmmsg (GSO stays off
 * for the whole engine: simple, and a path that refused once would again);
 * a socket that refuses
 * UDP_GRO simply delivers datagrams one by one. RUDP_OFFLOAD=0 turns both
 * off (the fallback path, for tests and for a suspicious network card).
 *
 * A datagram of a connection that needs its own source address or marks
 * (an accepted one, on its listener's shared socket: pktctl.c) carries
 * them as control messages; the others carry none, so the common path
 * costs nothing more. A train shares one message's control, so only
 * datagrams with the same control join one.
 *
 * Each engine thread has its own (shim_udpio_new) and only it calls in;
 * datagram loss on a full socket buffer is what UDP does and the protocol repairs it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "internal.h"
#include "udpio.h"
#include "base/poison.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

#define TX_MSGS 64               /* messages queued before a flush */
#define TX_BYTES (512 * 1024)    /* their bytes */
#define GSO_MAX_SEGS 64          /* the kernel's UDP_MAX_SEGMENTS (older kernels) */
#define GSO_MAX_BYTES 65000      /* a train's payload, under 64 KiB with headers */

typedef struct tx_msg {
    int fd;
    int named; /* unconnected socket: the peer goes in msg_name */
    struct sockaddr_storage peer;
    socklen_t peer_len;
    size_t off, len;  /* in buf */
    uint32_t seg;     /* segment size; trains only */
    uint32_t nseg;
    int closed;       /* ended by a short segment */
    int has_ctl;
    shim_udpio_ctl ctl;
} tx_msg;

/* Room for the control messages of one message: a train's segment size,
 * a source address and two marks. */
#define CTL_ROOM (CMSG_SPACE(sizeof(uint16_t)) + CMSG_SPACE(sizeof(struct in6_pktinfo)) + \
                  2 * CMSG_SPACE(sizeof(int)))

struct shim_udpio {
    int gso;  /* -1 unknown, 0 off, 1 on */
    int gro;  /* 0 off, 1 try on each socket */
    uint8_t *buf;
    size_t used;
    tx_msg msgs[TX_MSGS];
    unsigned n;
    struct mmsghdr mh[TX_MSGS];
    struct iovec iov[TX_MSGS];
    char ctl[TX_MSGS][CTL_ROOM] __attribute__((aligned(sizeof(size_t))));
    shim_udpio_stats st;
    void (*on_error)(void *user, int fd, int err);
    void *user;
};

void shim_udpio_on_error(shim_udpio *u, void (*fn)(void *user, int fd, int err), void *user)
{
    u->on_error = fn;
    u->user = user;
}

shim_udpio *shim_udpio_new(int offload)
{
    shim_udpio *u = shim_calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->buf = shim_malloc(TX_BYTES);
    if (!u->buf) {
        shim_free(u);
        return NULL;
    }
    u->gso = offload ? -1 : 0;
    u->gro = offload;
    return u;
}

void shim_udpio_free(shim_udpio *u)
{
    if (!u)
        return;
    shim_free(u->buf);
    shim_free(u);
}

const shim_udpio_stats *shim_udpio_stats_get(const shim_udpio *u)
{
    return &u->st;
}

int shim_udpio_gso_on(const shim_udpio *u)
{
    return u->gso == 1;
}

void shim_udpio_setup(shim_udpio *u, int fd)
{
    if (u->gso < 0) {
        /* Probe once: a kernel without UDP GSO (before 4.18) refuses it. */
        int seg = 1200;
        u->gso = real_setsockopt(fd, SOL_UDP, UDP_SEGMENT, &seg, sizeof seg) == 0;
        seg = 0;
        if (u->gso)
            real_setsockopt(fd, SOL_UDP, UDP_SEGMENT, &seg, sizeof seg);
        else
            SHIM_LOG(RUDP_LOG_INFO, "UDP GSO unavailable (%s): one datagram per message",
                     shim_strerror(errno));
    }
    int on = 1;
    if (u->gro && real_setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on) < 0)
        u->st.gro_refused++;
    /* Each datagram read then says how many the socket dropped before it
     * (a full receive buffer): shim_udpio_rx_meta. */
    real_setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof on);
}

uint32_t shim_udpio_rx_meta(shim_udpio *u, struct msghdr *m, uint32_t *drops_seen,
                            uint64_t *stamp)
{
    uint32_t seg = 0;
    *stamp = 0;
    if (!m->msg_control)
        return 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO &&
            c->cmsg_len >= CMSG_LEN(sizeof(int))) {
            int v;
            memcpy(&v, CMSG_DATA(c), sizeof v);
            seg = v > 0 ? (uint32_t)v : 0;
        } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS &&
                   c->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
            struct timespec ts; /* SO_TIMESTAMPNS (fifo.c) */
            memcpy(&ts, CMSG_DATA(c), sizeof ts);
            *stamp = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL &&
                   c->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
            uint32_t v;
            memcpy(&v, CMSG_DATA(c), sizeof v);
            if (v - *drops_seen < 0x80000000u) { /* the counter only grows (mod 2^32) */
                u->st.rx_dropped += v - *drops_seen;
                *drops_seen = v;
            }
        }
    }
    return seg;
}

uint64_t shim_udpio_wall_ns(void)
{
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    return (uint64_t)rt.tv_sec * 1000000000ull + (uint64_t)rt.tv_nsec;
}

rudp_time shim_udpio_arrival(uint64_t stamp, uint64_t wall, rudp_time now, rudp_time floor)
{
    if (!stamp || stamp >= wall)
        return now; /* none, or stamped after the wall clock was read */
    uint64_t ago = wall - stamp; /* before the wall clock's read, so before now's */
    if (ago > SHIM_ARRIVAL_MAX)
        ago = SHIM_ARRIVAL_MAX;
    rudp_time at = ago < now ? now - ago : 0;
    return at < floor ? (floor < now ? floor : now) : at;
}

void shim_udpio_received(shim_udpio *u, uint32_t reads, uint32_t datagrams)
{
    u->st.reads += reads;
    u->st.datagrams_in += datagrams;
    if (datagrams > reads)
        u->st.coalesced += datagrams - reads;
}

static int same_peer(const tx_msg *m, int fd, const struct sockaddr_storage *peer, socklen_t len,
                     const shim_udpio_ctl *ctl)
{
    return m->fd == fd && (!m->named || (m->peer_len == len && memcmp(&m->peer, peer, len) == 0)) &&
           m->has_ctl == (ctl != NULL) && (!ctl || memcmp(&m->ctl, ctl, sizeof *ctl) == 0);
}

void shim_udpio_send(shim_udpio *u, int fd, int connected, const struct sockaddr_storage *peer,
                     socklen_t peer_len, const shim_udpio_ctl *ctl, const uint8_t *data,
                     size_t len)
{
    if (len == 0 || len > GSO_MAX_BYTES + 507)
        return;
    u->st.datagrams_out++;
    if (connected || !shim_udpio_ctl_any(ctl))
        ctl = NULL;
    tx_msg *last = u->n ? &u->msgs[u->n - 1] : NULL;
    if (u->gso == 1 && last && !last->closed && same_peer(last, fd, peer, peer_len, ctl) &&
        len <= last->seg && last->nseg < GSO_MAX_SEGS && last->len + len <= GSO_MAX_BYTES &&
        last->off + last->len == u->used && u->used + len <= TX_BYTES) {
        if (data != u->buf + u->used) /* else built in place (shim_udpio_room) */
            memmove(u->buf + u->used, data, len);
        u->used += len;
        last->len += len;
        last->nseg++;
        if (len < last->seg)
            last->closed = 1; /* a short segment ends a train */
        return;
    }
    if (u->n == TX_MSGS || u->used + len > TX_BYTES)
        shim_udpio_flush(u);
    tx_msg *m = &u->msgs[u->n++];
    m->fd = fd;
    m->named = !connected;
    if (m->named) {
        memcpy(&m->peer, peer, peer_len);
        m->peer_len = peer_len;
    }
    m->off = u->used;
    m->len = len;
    m->seg = (uint32_t)len;
    m->nseg = 1;
    m->closed = 0;
    m->has_ctl = ctl != NULL;
    if (ctl)
        m->ctl = *ctl;
    if (data != u->buf + u->used) /* a flush above moves bytes built in place */
        memmove(u->buf + u->used, data, len);
    u->used += len;
}

uint8_t *shim_udpio_room(shim_udpio *u, size_t len)
{
    if (len > TX_BYTES)
        return NULL;
    if (u->used + len > TX_BYTES)
        shim_udpio_flush(u);
    return u->used + len <= TX_BYTES ? u->buf + u->used : NULL;
}

/* Appends one control message at *c (room checked by CTL_ROOM); returns
 * the space it took. */
static size_t put_cmsg(struct cmsghdr **c, struct msghdr *h, int level, int type,
                       const void *data, size_t len)
{
    struct cmsghdr *m = *c;
    m->cmsg_level = level;
    m->cmsg_type = type;
    m->cmsg_len = CMSG_LEN(len);
    memcpy(CMSG_DATA(m), data, len);
    *c = CMSG_NXTHDR(h, m);
    return CMSG_SPACE(len);
}

/* The connection's source address and marks (ip(7), ipv6(7): the
 * ancillary forms of IP_PKTINFO, IP_TOS, IP_TTL, IPV6_PKTINFO,
 * IPV6_TCLASS and IPV6_HOPLIMIT, each an int but the pktinfos). */
static size_t put_ctl(struct cmsghdr **c, struct msghdr *h, const shim_udpio_ctl *x)
{
    size_t used = 0;
    int level = x->v4 ? IPPROTO_IP : IPPROTO_IPV6;
    if (x->has_src && x->v4) {
        struct in_pktinfo pi;
        memset(&pi, 0, sizeof pi);
        memcpy(&pi.ipi_spec_dst, x->src, 4); /* the source; ipi_addr is ignored */
        used += put_cmsg(c, h, level, IP_PKTINFO, &pi, sizeof pi);
    } else if (x->has_src) {
        struct in6_pktinfo pi;
        memset(&pi, 0, sizeof pi);
        memcpy(&pi.ipi6_addr, x->src, 16);
        pi.ipi6_ifindex = x->ifindex;
        used += put_cmsg(c, h, level, IPV6_PKTINFO, &pi, sizeof pi);
    }
    if (x->has_tos)
        used += put_cmsg(c, h, level, x->v4 ? IP_TOS : IPV6_TCLASS, &x->tos, sizeof x->tos);
    if (x->has_ttl)
        used += put_cmsg(c, h, level, x->v4 ? IP_TTL : IPV6_HOPLIMIT, &x->ttl, sizeof x->ttl);
    return used;
}

static void prepare(shim_udpio *u, unsigned i, struct mmsghdr *h, struct iovec *v, char *ctl,
                    size_t off, size_t len, uint32_t seg)
{
    tx_msg *m = &u->msgs[i];
    memset(h, 0, sizeof *h);
    v->iov_base = u->buf + off;
    v->iov_len = len;
    h->msg_hdr.msg_iov = v;
    h->msg_hdr.msg_iovlen = 1;
    if (m->named) {
        h->msg_hdr.msg_name = &m->peer;
        h->msg_hdr.msg_namelen = m->peer_len;
    }
    int gso = seg && len > seg;
    if (!gso && !m->has_ctl)
        return;
    memset(ctl, 0, CTL_ROOM);
    h->msg_hdr.msg_control = ctl;
    h->msg_hdr.msg_controllen = CTL_ROOM;
    size_t used = 0;
    struct cmsghdr *c = CMSG_FIRSTHDR(&h->msg_hdr);
    if (gso) {
        uint16_t s = (uint16_t)seg;
        used += put_cmsg(&c, &h->msg_hdr, SOL_UDP, UDP_SEGMENT, &s, sizeof s);
    }
    if (m->has_ctl)
        used += put_ctl(&c, &h->msg_hdr, &m->ctl);
    h->msg_hdr.msg_controllen = used;
}

/* Whether a failed send (errno) of message k goes once more. A socket's
 * pending error (sk_err: an ICMP error about any datagram of it, with
 * IP_RECVERR; a forger needs only the addresses) fails the next send,
 * whatever it carries, and that send clears it: a message's own failure
 * is one that comes again. The ICMP itself is read from the error queue
 * (engine.c). A full buffer is not retried. */
static int send_again(unsigned k, unsigned *retried)
{
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS || *retried == k)
        return 0;
    *retried = k;
    return 1;
}

/* A train the kernel refused: its datagrams one by one, in as few calls
 * as they allow. Returns whether one was too big for the device (then
 * the train's failure said nothing about GSO; the engine hears of the
 * size from the error queue, engine.c). */
static int send_split(shim_udpio *u, unsigned i)
{
    tx_msg *m = &u->msgs[i];
    struct mmsghdr h[GSO_MAX_SEGS];
    struct iovec v[GSO_MAX_SEGS];
    char ctl[CTL_ROOM] __attribute__((aligned(sizeof(size_t)))); /* the same for each */
    unsigned k = 0;
    for (size_t o = 0; o < m->len && k < GSO_MAX_SEGS; o += m->seg, k++) {
        size_t l = m->len - o < m->seg ? m->len - o : m->seg;
        prepare(u, i, &h[k], &v[k], ctl, m->off + o, l, 0);
    }
    int big = 0;
    unsigned retried = k;
    for (unsigned j = 0; j < k;) {
        u->st.send_calls++;
        int r = real_sendmmsg(m->fd, h + j, k - j, MSG_DONTWAIT);
        if (r > 0) {
            j += (unsigned)r;
            continue;
        }
        if (r < 0 && (errno == EINTR || send_again(j, &retried)))
            continue;
        big |= r < 0 && errno == EMSGSIZE;
        u->st.send_dropped++;
        j++;
    }
    return big;
}

/* Sends messages [i, j), all on one socket. */
static void send_run(shim_udpio *u, unsigned i, unsigned j)
{
    for (unsigned k = i; k < j; k++) {
        prepare(u, k, &u->mh[k], &u->iov[k], u->ctl[k], u->msgs[k].off, u->msgs[k].len,
                u->msgs[k].nseg > 1 ? u->msgs[k].seg : 0);
        if (u->msgs[k].nseg > 1)
            u->st.trains++;
    }
    unsigned k = i, retried = j;
    int told = 0; /* a failing socket is reported once per run, not per datagram */
    while (k < j) {
        u->st.send_calls++;
        int r = real_sendmmsg(u->msgs[k].fd, &u->mh[k], j - k, MSG_DONTWAIT);
        if (r > 0) {
            k += (unsigned)r;
            continue;
        }
        if (r < 0 && (errno == EINTR || send_again(k, &retried)))
            continue;
        /* u->msgs[k] failed. A train the kernel cannot cut: no GSO from
         * now on, and this one goes as single datagrams. Anything else
         * (a full buffer, an ICMP error reported on a connected socket)
         * loses this message, as UDP does. */
        if (r < 0 && u->msgs[k].nseg > 1 &&
            (errno == EIO || errno == EINVAL || errno == EOPNOTSUPP || errno == ENOPROTOOPT)) {
            /* (not EMSGSIZE: GSO skips the MTU check, and segments too
             * big fail EINVAL, then one by one EMSGSIZE: GSO is fine) */
            int err = errno;
            if (!send_split(u, k)) {
                if (u->gso == 1)
                    SHIM_LOG(RUDP_LOG_INFO, "UDP GSO refused by the kernel (%s): now off",
                             shim_strerror(err));
                u->gso = 0;
                u->st.gso_failed++;
            }
        } else {
            u->st.send_dropped++;
            if (r < 0 && u->on_error && !told) {
                told = 1;
                u->on_error(u->user, u->msgs[k].fd, errno);
            }
        }
        k++;
    }
}

void shim_udpio_flush(shim_udpio *u)
{
    unsigned i = 0;
    while (i < u->n) {
        /* one run of messages on one socket */
        unsigned j = i;
        while (j < u->n && u->msgs[j].fd == u->msgs[i].fd)
            j++;
        send_run(u, i, j);
        i = j;
    }
    u->n = 0;
    u->used = 0;
}

void shim_udpio_flush_fd(shim_udpio *u, int fd)
{
    unsigned kept = 0;
    for (unsigned i = 0; i < u->n; i++) {
        if (u->msgs[i].fd == fd) {
            send_run(u, i, i + 1);
            continue;
        }
        if (kept != i)
            u->msgs[kept] = u->msgs[i]; /* its bytes stay where they are in buf */
        kept++;
    }
    u->n = kept;
    if (!kept)
        u->used = 0;
}
