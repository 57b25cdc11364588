/*
 * report.c: what the core says about a connection in words. Its name in
 * log lines (both addresses and the client's connection ID, the same
 * everywhere and at both ends), why it failed, and one info line when it
 * opens and one when it closes.
 * Addresses are formatted here by hand: the core includes no socket
 * headers (families are the Linux values 2 and 10, as in conn.c).
 */
#include <stdio.h>
#include <string.h>

#include "conn.h"

enum { FAM_INET = 2, FAM_INET6 = 10 };

/* "1.2.3.4:80", "[2001:db8::1]:80", "[::ffff:1.2.3.4]:80"; "*" if none. */
static int put_addr(char *buf, size_t len, const rudp_addr *a)
{
    if (!a || a->family == 0)
        return snprintf(buf, len, "*");
    const uint8_t *ip = a->ip;
    if (a->family == FAM_INET)
        return snprintf(buf, len, "%u.%u.%u.%u:%u", ip[0], ip[1], ip[2], ip[3], a->port);
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(ip, mapped, 12) == 0)
        return snprintf(buf, len, "[::ffff:%u.%u.%u.%u]:%u", ip[12], ip[13], ip[14], ip[15],
                        a->port);
    /* RFC 5952: the longest run of two or more zero groups becomes "::" */
    unsigned g[8];
    for (int i = 0; i < 8; i++)
        g[i] = (unsigned)ip[2 * i] << 8 | ip[2 * i + 1];
    int best = -1, best_n = 1;
    for (int i = 0; i < 8;) {
        int n = 0;
        while (i + n < 8 && g[i + n] == 0)
            n++;
        if (n > best_n) {
            best = i;
            best_n = n;
        }
        i += n ? n : 1;
    }
    char tmp[48];
    size_t t = 0;
    for (int i = 0; i < 8; i++) {
        if (i == best) {
            t += (size_t)snprintf(tmp + t, sizeof tmp - t, "::");
            i += best_n - 1;
            continue;
        }
        t += (size_t)snprintf(tmp + t, sizeof tmp - t, "%s%x",
                              t && tmp[t - 1] != ':' ? ":" : "", g[i]);
    }
    return snprintf(buf, len, "[%s]:%u", tmp, a->port);
}

size_t rudp_addr_format(const rudp_addr *a, char *buf, size_t len)
{
    int n = put_addr(buf, len, a);
    return n < 0 ? 0 : (size_t)n;
}

void rudp_conn_set_name_local(rudp_conn *c, const rudp_addr *local)
{
    c->name_local = *local;
}

void rudp_listener_set_name_local(rudp_listener *l, const rudp_addr *local)
{
    l->name_local = *local;
}

uint64_t rudp_conn_id(const rudp_conn *c)
{
    /* a server learns it from the SYN before anything names the connection
     * (rudp__conn_accept_syn), a client chose it */
    return c->is_server ? c->pkey.cid : c->cid;
}

size_t rudp_conn_name(const rudp_conn *c, char *buf, size_t len)
{
    char l[64], p[64];
    put_addr(l, sizeof l, &c->name_local); /* "*" until known (family 0) */
    put_addr(p, sizeof p, &c->pkey.addr);
    int n = snprintf(buf, len, "%s > %s id %016llx", l, p,
                     (unsigned long long)rudp_conn_id(c));
    return n < 0 ? 0 : (size_t)n;
}

int rudp_conn_answered(const rudp_conn *c)
{
    /* retried, not retries: the handshake timer sets retries back to 0
     * when it sends the SYN again, and a connect answered by a RETRY and
     * then kept waiting (a server whose accept queue is full drops the
     * SYN with the cookie) raced kernel TCP at the probe delay */
    return c->retried || c->state != RUDP_SYN_SENT;
}

rudp_cause rudp_conn_cause(const rudp_conn *c)
{
    return (rudp_cause)c->cause;
}

const char *rudp_cause_text(rudp_cause cause)
{
    switch (cause) {
    case RUDP_CAUSE_NONE:
        return "no failure";
    case RUDP_CAUSE_ICMP:
        return "an ICMP error";
    case RUDP_CAUSE_REFUSED:
        return "refused by the peer's rudp engine: nothing listens on that port";
    case RUDP_CAUSE_RESET:
        return "reset by the peer";
    case RUDP_CAUSE_HANDSHAKE_TIMEOUT:
        return "no answer to the handshake";
    case RUDP_CAUSE_USER_TIMEOUT:
        return "data unacknowledged for the user timeout";
    case RUDP_CAUSE_IDLE_TIMEOUT:
        return "nothing heard for the idle timeout";
    case RUDP_CAUSE_ABORTED:
        return "aborted by this side";
    case RUDP_CAUSE_NO_MEMORY:
        return "out of memory";
    case RUDP_CAUSE_NO_AUTH_ANSWER:
        return "no authenticated answer to the handshake: is RUDP_KEY_FILE the same on both ends?";
    case RUDP_CAUSE_KEY_REQUIRED:
        return "the server requires a key (RUDP_KEY_FILE); this end has none";
    case RUDP_CAUSE_KEY_MISMATCH:
        return "no authenticated answer; the server may have another key or none: is "
               "RUDP_KEY_FILE the same on both ends?";
    case RUDP_CAUSE_PATH_MTU:
        return "the path cannot carry rudp's smallest datagram (1200 bytes of UDP payload): "
               "its MTU is too small";
    case RUDP_CAUSE_KEY_PEER_NONE:
        return "no authenticated answer; the server may have another key or none (an "
               "unauthenticated answer says none): is RUDP_KEY_FILE the same on both ends?";
    }
    return "unknown";
}

/* "1.5 ms", "3.20 s" */
static void put_duration(char *buf, size_t len, rudp_time ns)
{
    if (ns < RUDP_SEC(1))
        snprintf(buf, len, "%.1f ms", (double)ns / 1e6);
    else
        snprintf(buf, len, "%.2f s", (double)ns / 1e9);
}

void rudp__report_open(rudp_conn *c)
{
    c->opened = 1;
    if (c->ctx->log_level < RUDP_LOG_INFO || !c->ctx->ops.log)
        return;
    char name[160], d[32];
    rudp_conn_name(c, name, sizeof name);
    put_duration(d, sizeof d, c->ctx->now - c->hs_start);
    /* The name's ID is the client's; packets to the server carry the
     * server's own, which a capture shows: both ends print the pair. */
    rudp__log(c->ctx, RUDP_LOG_INFO, "%s: %s, handshake %s; the server's connection ID is %016llx",
              name, c->is_server ? "accepted" : "connected", d,
              (unsigned long long)(c->is_server ? c->cid : c->pkey.cid));
}

void rudp__report_close(rudp_conn *c, const char *why)
{
    if (!c->opened)
        return;
    c->ctx->stats.rtt_conns++;
    c->ctx->stats.rtt_srtt_sum_us += c->rtt.smoothed / 1000;
    if (c->ctx->log_level < RUDP_LOG_INFO || !c->ctx->ops.log)
        return;
    char name[160], d[32];
    rudp_conn_name(c, name, sizeof name);
    put_duration(d, sizeof d, c->ctx->now - c->hs_start);
    uint64_t pkts = rudp__recovery_next_pn(&c->rec);
    uint64_t lost = c->rec.lost_packets;
    /* the words of RUDP_STATS's stream line: bytes sent again are not
     * only the lost packets' (a probe timeout's too) */
    rudp__log(c->ctx, RUDP_LOG_INFO,
              "%s: closed (%s) after %s; bytes sent %llu (and again %llu), received %llu; "
              "packets sent %llu, declared lost %llu (%.2f%%); srtt %.2f ms",
              name, c->cause ? rudp_cause_text((rudp_cause)c->cause) : why, d,
              (unsigned long long)c->bytes_sent, (unsigned long long)c->bytes_retx,
              (unsigned long long)c->bytes_received, (unsigned long long)pkts,
              (unsigned long long)lost, pkts ? 100.0 * (double)lost / (double)pkts : 0.0,
              (double)c->rtt.smoothed / 1e6);
}

/* The handshake has gone unanswered for RUDP_SLOW_CONNECT: say so once,
 * long before connect_timeout gives up. */
void rudp__report_slow_connect(rudp_conn *c)
{
    if (c->ctx->log_level < RUDP_LOG_WARN || !c->ctx->ops.log)
        return;
    char name[160], p[64], d[32], limit[32];
    rudp_conn_name(c, name, sizeof name);
    put_addr(p, sizeof p, &c->pkey.addr);
    put_duration(d, sizeof d, c->ctx->now - c->hs_start);
    put_duration(limit, sizeof limit, c->cfg.connect_timeout);
    if (c->keyed)
        rudp__log(c->ctx, RUDP_LOG_WARN,
                  "%s: no authenticated answer from %s in %s (%u handshake packets sent%s): UDP "
                  "blocked, or the peer does not run rudp? (A peer with another key or none "
                  "answers: RUDP_KEY_FILE.) Still trying until the connect timeout (%s)",
                  name, p, d, c->hs_count,
                  c->auth_failed ? "; answers came that failed authentication" : "", limit);
    else if (c->retried)
        rudp__log(c->ctx, RUDP_LOG_WARN,
                  "%s: %s runs rudp (it answered with a RETRY) but has not taken the connection "
                  "in %s (%u handshake packets sent): its accept queue full, or the server "
                  "busy? Still trying until the connect timeout (%s)",
                  name, p, d, c->hs_count, limit);
    else
        rudp__log(c->ctx, RUDP_LOG_WARN,
                  "%s: no answer from %s in %s (%u handshake packets sent): UDP blocked, or the "
                  "peer does not run rudp? Still trying until the connect timeout (%s)",
                  name, p, d, c->hs_count, limit);
}

const char *rudp_packet_type_name(unsigned type, unsigned flags)
{
    static const char *const names[2][6] = {
        {"?", "SYN", "RETRY", "SYNACK", "DATA", "RESET"},
        {"?", "SYN+ACK_NOW", "RETRY+ACK_NOW", "SYNACK+ACK_NOW", "DATA+ACK_NOW", "RESET+ACK_NOW"},
    };
    if (type < RUDP_PKT_SYN || type > RUDP_PKT_RESET || flags > RUDP_PKTF_ACK_NOW)
        return NULL;
    return names[flags][type];
}

const char *rudp_packet_name(const uint8_t *buf, size_t len)
{
    if (len < 4)
        return "short";
    unsigned type = buf[3] & 0x0fu, flags = (unsigned)buf[3] >> 4;
    /* the handshake's own flags, and DATA's (wire.h) */
    static const char *const syn[8] = {
        "SYN",       "SYN+ADDRS",       "SYN+KEYED",       "SYN+ADDRS+KEYED",
        "SYN+PMTUD", "SYN+ADDRS+PMTUD", "SYN+KEYED+PMTUD", "SYN+ADDRS+KEYED+PMTUD",
    };
    static const char *const data[4] = {"DATA", "DATA+ACK_NOW", "DATA+MOVED",
                                        "DATA+ACK_NOW+MOVED"};
    if (type == RUDP_PKT_SYN && !(flags & RUDP_PKTF_ACK_NOW))
        return syn[flags >> 1]; /* ADDRS 0x2, KEYED 0x4, PMTUD 0x8 */
    if (type == RUDP_PKT_DATA && flags < 4)
        return data[flags]; /* ACK_NOW 0x1, MOVED 0x2 */
    if (type == RUDP_PKT_SYNACK && flags == RUDP_PKTF_ZRTT)
        return "SYNACK+ZRTT";
    if (type == RUDP_PKT_RESET && (flags & ~(unsigned)RUDP_PKTF_KEYED) == RUDP_PKTF_KEY)
        return flags & RUDP_PKTF_KEYED ? "RESET+KEY+KEYED" : "RESET+KEY";
    const char *n = rudp_packet_type_name(type, flags);
    return n ? n : "unknown";
}

void rudp_ctx_report_remaining(rudp_ctx *ctx)
{
    for (rudp_conn *c = ctx->all; c; c = c->all_next) {
        if (!c->opened || c->state == RUDP_CLOSED)
            continue;
        char why[64];
        snprintf(why, sizeof why, "left in %s at exit", rudp_state_name(c->state));
        rudp__report_close(c, why);
        c->opened = 0; /* said once */
    }
}
