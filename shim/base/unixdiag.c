/*
 * unixdiag.c: the bytes waiting in a unix socket this process does not
 * hold, asked of the kernel by the socket's inode (sock_diag, as ss -x
 * does). After an exec, or in a forked child, the engine's end of a bridge
 * is the keeper's or the parent's; the app's own end answers SIOCOUTQ with
 * memory (every write's buffer overhead), not bytes. UNIX_DIAG_RQLEN of a
 * socket that is not listening is unix_inq_len(), the bytes in its receive
 * queue: what SIOCINQ would say on that end (net/unix/diag.c,
 * sk_diag_show_rqlen()). unix_diag looks a socket up by inode in our
 * network namespace and checks no permission (as ss -x shows everyone's).
 * The engine asks the same to learn whether a listener's app end still
 * exists in any process. And the names of the listening ones, with their
 * owners' uids (porthand.c: which UDP sockets are listeners' of ours).
 */
#include <errno.h>
#include <string.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base.h"

#include "poison.h"

typedef struct unix_req {
    struct nlmsghdr nh;
    struct unix_diag_req req;
} unix_req;

static unix_req make_req(unsigned flags, unsigned states, unsigned show)
{
    unix_req rq;
    memset(&rq, 0, sizeof rq);
    rq.nh.nlmsg_len = sizeof rq;
    rq.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    rq.nh.nlmsg_flags = (uint16_t)flags;
    rq.req.sdiag_family = AF_UNIX;
    rq.req.udiag_states = states;
    rq.req.udiag_show = show;
    return rq;
}

/* Asks the kernel about the unix socket with inode ino (show: the
 * UDIAG_SHOW_ bits) and copies the payload of its attribute `attr` (out,
 * outlen bytes; attr 0: none) into out: 1 found (*got: whether the
 * attribute was there), 0 no such socket, -1 cannot tell. */
static int diag(uint64_t ino, unsigned show, int attr, void *out, size_t outlen, int *got)
{
    *got = 0;
    if (!ino || ino > UINT32_MAX)
        return -1; /* unix_diag's inode is 32 bits */
    int fd = real_socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0)
        return -1;
    unix_req rq = make_req(NLM_F_REQUEST, ~0u, show);
    rq.req.udiag_ino = (uint32_t)ino;
    rq.req.udiag_cookie[0] = rq.req.udiag_cookie[1] = ~0u; /* no cookie: by inode */
    int r = -1;
    union {
        struct nlmsghdr h;
        uint8_t b[1024];
    } buf;
    /* write/read: to and from the kernel, the netlink socket's default */
    if (real_write(fd, &rq, sizeof rq) != (ssize_t)sizeof rq)
        goto out;
    ssize_t n;
    do
        n = real_read(fd, &buf, sizeof buf);
    while (n < 0 && errno == EINTR);
    const struct nlmsghdr *h = &buf.h;
    if (n < (ssize_t)sizeof *h || h->nlmsg_len > (size_t)n)
        goto out;
    if (h->nlmsg_type == NLMSG_ERROR && h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct nlmsgerr))) {
        struct nlmsgerr e;
        memcpy(&e, NLMSG_DATA(h), sizeof e);
        r = e.error == -ENOENT ? 0 : -1;
        goto out;
    }
    if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct unix_diag_msg)))
        goto out;
    r = 1;
    const struct unix_diag_msg *m = NLMSG_DATA(h);
    size_t vl;
    const void *v = attr ? shim_nla_get(m + 1, h->nlmsg_len - NLMSG_LENGTH(sizeof *m), attr, &vl)
                         : NULL;
    if (v && vl >= outlen) {
        memcpy(out, v, outlen);
        *got = 1;
    }
out:
    real_close(fd);
    return r;
}

/* UNIX_DIAG_RQLEN of a listener is its accept queue: udiag_rqueue the
 * connections in it, udiag_wqueue sk_max_ack_backlog (sk_diag_show_rqlen). */
static int diag_rqlen(uint64_t ino, int *inq, int *wq)
{
    struct unix_diag_rqlen rl;
    int got;
    if (inq)
        *inq = -1;
    if (wq)
        *wq = -1;
    int r = diag(ino, inq ? UDIAG_SHOW_RQLEN : 0, inq ? UNIX_DIAG_RQLEN : 0, &rl, sizeof rl, &got);
    if (r == 1 && got) {
        *inq = rl.udiag_rqueue > INT32_MAX ? INT32_MAX : (int)rl.udiag_rqueue;
        if (wq)
            *wq = rl.udiag_wqueue > INT32_MAX ? INT32_MAX : (int)rl.udiag_wqueue;
    }
    return r;
}

/* sk_shutdown's bit for reading (include/net/sock.h RCV_SHUTDOWN) */
#define RCV_SHUTDOWN_BIT 1

int shim_unix_diag(uint64_t ino, int *inq)
{
    return diag_rqlen(ino, inq, NULL);
}

int shim_unix_diag_queue(uint64_t ino, int *len, int *max)
{
    return diag_rqlen(ino, len, max);
}

int shim_unix_diag_open(uint64_t ino)
{
    /* UNIX_DIAG_SHUTDOWN comes with every answer (sk_diag_fill, since
     * Linux 3.11); without it the socket counts as open */
    uint8_t how = 0;
    int got, r = diag(ino, 0, UNIX_DIAG_SHUTDOWN, &how, sizeof how, &got);
    if (r == 1 && got && (how & RCV_SHUTDOWN_BIT))
        return 0;
    return r;
}

int shim_unix_diag_u32(uint64_t ino, unsigned show, int attr, uint32_t *out)
{
    int got;
    int r = diag(ino, show, attr, out, sizeof *out, &got);
    return r == 1 && !got ? -1 : r;
}

typedef struct names_req {
    shim_unix_name_fn fn;
    void *ctx;
} names_req;

static int name_one(const struct nlmsghdr *h, void *ctx)
{
    names_req *q = ctx;
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct unix_diag_msg)))
        return -1;
    const struct unix_diag_msg *m = NLMSG_DATA(h);
    size_t len = h->nlmsg_len - NLMSG_LENGTH(sizeof *m), namelen, uidlen;
    const char *name = shim_nla_get(m + 1, len, UNIX_DIAG_NAME, &namelen);
    const void *uidp = shim_nla_get(m + 1, len, UNIX_DIAG_UID, &uidlen);
    uint32_t uid;
    if (name && uidp && uidlen >= sizeof uid) {
        memcpy(&uid, uidp, sizeof uid);
        q->fn(name, namelen, (uid_t)uid, q->ctx);
    }
    return 0;
}

int shim_unix_listening_names(shim_unix_name_fn fn, void *ctx)
{
    /* 1 << TCP_LISTEN: bound and listening sockets */
    unix_req rq = make_req(NLM_F_REQUEST | NLM_F_DUMP, 1u << 10, UDIAG_SHOW_NAME | UDIAG_SHOW_UID);
    names_req q = {.fn = fn, .ctx = ctx};
    return shim_diag_dump(&rq, sizeof rq, name_one, &q);
}
