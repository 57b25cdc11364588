/*
 * tcpopts.c: the TCP-level options a record holds (state/fdtab.c's shim_fd),
 * put on a kernel TCP socket: a connect's own socket that falls back to
 * kernel TCP (appfd.c's swap, for the engine's fallback), a fresh one after
 * a failed connect (reconnect.c), a plain client's accepted on a listener
 * (listen.c). And rudp's controllers under the names Linux gives its own,
 * for TCP_CONGESTION here and in options.c.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <string.h>

#include "state.h"

#include "base/poison.h"

/* rudp's controllers under the names Linux gives its own: Linux's "reno"
 * is NewReno (RFC 6582 recovery, net/ipv4/tcp_cong.c). rudp's own name
 * "newreno" (RUDP_CC) is unknown to Linux (ENOENT), so it is here too. */
static const struct {
    const char *tcp, *rudp;
} cc_names[] = {
    {"bbr", "bbr"},
    {"cubic", "cubic"},
    {"reno", "newreno"},
    {"vegas", "vegas"},
    {"htcp", "htcp"},
    {"scalable", "scalable"},
    {"westwood", "westwood"},
    {"highspeed", "highspeed"},
    {"bic", "bic"},
    {"veno", "veno"},
    {"dctcp", "dctcp"},
    {"hybla", "hybla"},
    {"illinois", "illinois"},
    {"yeah", "yeah"},
    {"lp", "lp"},
    {"nv", "nv"},
    {"cdg", "cdg"},
    {"copa", "copa"}, /* rudp's alone: no Linux module of the name */
};

const rudp_cc_ops *shim_cc_by_tcp_name(const char *name)
{
    for (size_t i = 0; i < sizeof cc_names / sizeof cc_names[0]; i++)
        if (strcmp(cc_names[i].tcp, name) == 0)
            return rudp_cc_find(cc_names[i].rudp);
    return NULL;
}

/* The controller a connection of rec runs, by Linux's name for it. One
 * whose ops go by another name than the one chosen reads that name on a
 * connected socket: dctcp without ECN is "dctcp-reno" (dctcp_init,
 * net/ipv4/tcp_dctcp.c, switches icsk_ca_ops to dctcp_reno), while a
 * listener or a socket not yet connected keeps "dctcp" (the same
 * dctcp_init keeps dctcp in TCP_LISTEN and TCP_CLOSE). */
const char *shim_cc_tcp_name(const shim_fd *rec)
{
    const rudp_cc_ops *cc = rec->cc ? rec->cc : shim_cfg.rudp.cc ? shim_cfg.rudp.cc : rudp_cc_default;
    for (size_t i = 0; i < sizeof cc_names / sizeof cc_names[0]; i++)
        if (rudp_cc_find(cc_names[i].rudp) == cc)
            return rec->kind == SHIM_FD_BRIDGED && strcmp(rudp_cc_name(cc), cc_names[i].rudp) != 0
                       ? rudp_cc_name(cc)
                       : cc_names[i].tcp;
    return "bbr";
}

void shim_opts_to_tcp(int tfd, const shim_fd *rec)
{
    for (uint8_t i = 0; i < rec->kept.n; i++) {
        const shim_kept_opt *o = &rec->kept.o[i];
        real_setsockopt(tfd, o->level, o->opt, o->val, o->len);
    }
    if (rec->cc) {
        const char *name = shim_cc_tcp_name(rec);
        real_setsockopt(tfd, IPPROTO_TCP, TCP_CONGESTION, name, (socklen_t)strlen(name));
    }
}

/* The TCP-level options recorded for a bridged fd or a listener (a unix
 * socket cannot hold them) onto a kernel TCP socket: a connect's own socket
 * that falls back (those set before connect() are on it already), or a
 * plain client's accepted on a listener. */
void shim_put_tcp_options(int tfd, const shim_fd *rec)
{
    static const struct {
        int level, opt;
        size_t off;
    } opts[] = {
        {IPPROTO_TCP, TCP_NODELAY, offsetof(shim_fd, nodelay)},
        {SOL_SOCKET, SO_KEEPALIVE, offsetof(shim_fd, keepalive)},
        {IPPROTO_TCP, TCP_KEEPIDLE, offsetof(shim_fd, keepidle)},
        {IPPROTO_TCP, TCP_KEEPINTVL, offsetof(shim_fd, keepintvl)},
        {IPPROTO_TCP, TCP_KEEPCNT, offsetof(shim_fd, keepcnt)},
        {IPPROTO_TCP, TCP_USER_TIMEOUT, offsetof(shim_fd, user_timeout_ms)},
        {IPPROTO_TCP, TCP_CORK, offsetof(shim_fd, cork)},
    };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        int v;
        memcpy(&v, (const char *)rec + opts[i].off, sizeof v);
        int cur = 0;
        socklen_t l = sizeof cur;
        if (v > 0 && (real_getsockopt(tfd, opts[i].level, opts[i].opt, &cur, &l) < 0 || cur != v))
            real_setsockopt(tfd, opts[i].level, opts[i].opt, &v, sizeof v);
    }
    shim_opts_to_tcp(tfd, rec);
}
