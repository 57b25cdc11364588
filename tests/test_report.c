/*
 * test_report.c: what the core says about connections in words (report.c):
 * addresses and packet types by name, why a connect failed, the warning
 * when a handshake goes unanswered, and the info lines at open and close.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib_sim.h"
#include "rudp.h"

static const char *fmt(const rudp_addr *a)
{
    static char buf[80];
    rudp_addr_format(a, buf, sizeof buf);
    return buf;
}

static rudp_addr v6(const uint8_t ip[16], uint16_t port)
{
    rudp_addr a;
    memset(&a, 0, sizeof a);
    a.family = 10;
    a.port = port;
    memcpy(a.ip, ip, 16);
    return a;
}

Test(report, addresses_print_as_people_write_them)
{
    rudp_addr a;
    memset(&a, 0, sizeof a);
    a.family = 2;
    a.port = 8080;
    a.ip[0] = 127, a.ip[3] = 1;
    cr_assert_str_eq(fmt(&a), "127.0.0.1:8080");
    static const uint8_t doc[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
    a = v6(doc, 443);
    cr_assert_str_eq(fmt(&a), "[2001:db8::1]:443");
    static const uint8_t loop[16] = {[15] = 1};
    a = v6(loop, 80);
    cr_assert_str_eq(fmt(&a), "[::1]:80");
    static const uint8_t any[16] = {0};
    a = v6(any, 9);
    cr_assert_str_eq(fmt(&a), "[::]:9");
    /* RFC 5952: one zero group stays "0"; the first of equal runs is cut */
    static const uint8_t one[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1};
    a = v6(one, 1);
    cr_assert_str_eq(fmt(&a), "[2001:db8:0:1:1:1:1:1]:1");
    static const uint8_t longest[16] = {0x20, 0x01, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1};
    a = v6(longest, 2);
    cr_assert_str_eq(fmt(&a), "[2001:0:0:1::1]:2");
    static const uint8_t tie[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1};
    a = v6(tie, 2);
    cr_assert_str_eq(fmt(&a), "[2001:db8::1:0:0:1]:2");
    static const uint8_t mapped[16] = {[10] = 0xff, [11] = 0xff, 10, 0, 0, 7};
    a = v6(mapped, 3);
    cr_assert_str_eq(fmt(&a), "[::ffff:10.0.0.7]:3");
}

Test(report, packet_types_by_name)
{
    static const struct {
        uint8_t type_byte;
        const char *name;
    } cases[] = {
        {0x14, "DATA+ACK_NOW"}, {0x04, "DATA"},      {0x01, "SYN"},
        {0x03, "SYNACK"},       {0x41, "SYN+KEYED"}, {0x23, "SYNACK+ZRTT"},
        {0x85, "RESET+KEY"},    {0xc5, "RESET+KEY+KEYED"},
        {0x45, "unknown"},      {0x0f, "unknown"},   {0x24, "DATA+MOVED"},
        {0x21, "SYN+ADDRS"},    {0xe1, "SYN+ADDRS+KEYED+PMTUD"}, {0x11, "SYN+ACK_NOW"},
        {0x34, "DATA+ACK_NOW+MOVED"}, {0x44, "unknown"},
    };
    uint8_t b[4] = {'r', 'u', 1, 0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        b[3] = cases[i].type_byte;
        cr_assert_str_eq(rudp_packet_name(b, 4), cases[i].name, "type byte %#x",
                         cases[i].type_byte);
    }
    cr_assert_str_eq(rudp_packet_name(b, 3), "short");
    /* the same table by type and flags, as traces hold them */
    cr_assert_str_eq(rudp_packet_type_name(4, 0), "DATA");
    cr_assert_str_eq(rudp_packet_type_name(1, 1), "SYN+ACK_NOW");
    cr_assert_null(rudp_packet_type_name(6, 0));
    cr_assert_null(rudp_packet_type_name(4, 2));
}

static int count_lines(const sim_ep *e, const char *needle)
{
    int n = 0;
    for (int i = 0; i < e->nlines; i++)
        if (strstr(e->lines[i], needle))
            n++;
    return n;
}

static void dump(const sim_ep *e)
{
    for (int i = 0; i < e->nlines; i++)
        cr_log_info("  %s", e->lines[i]);
}

Test(report, unanswered_handshake_warns_once_then_fails_as_a_timeout)
{
    sim s;
    sim_init(&s, 41);
    int a = sim_add_ep(&s, NULL), b = sim_add_ep(&s, NULL);
    s.link[a][b].cut_at = s.now; /* every SYN vanishes, as with UDP blocked */
    rudp_ctx_set_log_level(s.ep[a].ctx, RUDP_LOG_WARN);
    sim_app cli = {.to_send = 10, .expect = 0, .no_release = 1};
    sim_listen(&s, b, &(sim_app){.expect = 10}, 16);
    int ci = sim_connect(&s, a, b, &cli, NULL);
    rudp_time start = s.now;
    sim_run_until(&s, start + RUDP_SLOW_CONNECT - RUDP_MS(1));
    cr_assert_eq(s.ep[a].nlines, 0, "a warning before 3 s");
    sim_run_until(&s, start + RUDP_SEC(29));
    dump(&s.ep[a]);
    cr_assert_eq(count_lines(&s.ep[a], ": no answer from 10.0.0.2:1001 in 3.00 s"), 1,
                 "one warning at 3 s naming the peer");
    cr_assert_eq(s.apps[ci].error, 0, "still trying after the warning");
    sim_run_until(&s, start + RUDP_SEC(31));
    cr_assert_eq(s.apps[ci].error, -ETIMEDOUT);
    cr_assert_eq(rudp_conn_cause(s.apps[ci].conn), RUDP_CAUSE_HANDSHAKE_TIMEOUT);
    cr_assert_eq(s.ep[a].nlines, 1, "no second warning");
    sim_free(&s);
}

/* A peer that answered with a RETRY runs rudp: the warning at 3 s says so
 * (a full accept queue drops the SYN with the cookie), not "UDP blocked". */
Test(report, a_connect_answered_by_a_retry_warns_of_a_busy_server)
{
    sim s;
    sim_init(&s, 42);
    rudp_config always;
    rudp_config_default(&always);
    always.retry = RUDP_RETRY_ALWAYS;
    int a = sim_add_ep(&s, NULL), b = sim_add_ep(&s, &always);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(5);
    s.link[a][b].cut_at = s.now + RUDP_MS(1); /* the first SYN passes, its cookie's does not */
    rudp_ctx_set_log_level(s.ep[a].ctx, RUDP_LOG_WARN);
    sim_app cli = {.to_send = 10, .expect = 0, .no_release = 1};
    sim_listen(&s, b, &(sim_app){.expect = 10}, 16);
    sim_connect(&s, a, b, &cli, NULL);
    sim_run_until(&s, s.now + RUDP_SEC(4));
    dump(&s.ep[a]);
    cr_assert_eq(count_lines(&s.ep[a], ": 10.0.0.2:1001 runs rudp (it answered with a RETRY) but "
                                       "has not taken the connection in 3.00 s"),
                 1, "one warning at 3 s, naming the RETRY");
    cr_assert_eq(count_lines(&s.ep[a], "no answer from"), 0);
    sim_free(&s);
}

Test(report, refused_by_a_peer_without_listener_says_so)
{
    sim s;
    sim_init(&s, 42);
    int a = sim_add_ep(&s, NULL), b = sim_add_ep(&s, NULL);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(5);
    sim_app cli = {.to_send = 10, .expect = 0, .no_release = 1};
    int ci = sim_connect(&s, a, b, &cli, NULL);
    sim_run_until(&s, s.now + RUDP_SEC(1));
    cr_assert_eq(s.apps[ci].error, -ECONNREFUSED);
    cr_assert_eq(rudp_conn_cause(s.apps[ci].conn), RUDP_CAUSE_REFUSED);
    cr_assert(strstr(rudp_cause_text(RUDP_CAUSE_REFUSED), "nothing listens"));
    sim_free(&s);
}

/* Client a sends 100 bytes to server b, which answers 1000, 10 ms each
 * way, both logging at info; returns the client's app index. */
static int info_pair(sim *s, uint64_t seed, int *a, int *b)
{
    sim_init(s, seed);
    *a = sim_add_ep(s, NULL);
    *b = sim_add_ep(s, NULL);
    s->link[*a][*b].delay = s->link[*b][*a].delay = RUDP_MS(10);
    rudp_ctx_set_log_level(s->ep[*a].ctx, RUDP_LOG_INFO);
    rudp_ctx_set_log_level(s->ep[*b].ctx, RUDP_LOG_INFO);
    sim_listen(s, *b, &(sim_app){.to_send = 1000, .expect = 100}, 16);
    return sim_connect(s, *a, *b, &(sim_app){.to_send = 100, .expect = 1000}, NULL);
}

Test(report, info_lines_at_open_and_close_name_the_connection)
{
    sim s;
    int a, b;
    info_pair(&s, 43, &a, &b);
    cr_assert(sim_run(&s, s.now + RUDP_SEC(10)));
    dump(&s.ep[a]);
    dump(&s.ep[b]);
    cr_assert_eq(s.ep[a].nlines, 2);
    cr_assert_eq(s.ep[b].nlines, 2);
    /* the same name on both lines of a side: LOCAL > PEER id CID (the
     * client's handshake is one round trip: SYN, SYNACK) */
    const char *id = strstr(s.ep[a].lines[0], " id ");
    cr_assert(id && strncmp(s.ep[a].lines[1], s.ep[a].lines[0], (size_t)(id - s.ep[a].lines[0]) + 20) == 0,
              "one name per connection");
    cr_assert(strstr(s.ep[a].lines[0], "> 10.0.0.2:1001 id "));
    cr_assert(strstr(s.ep[a].lines[0], ": connected, handshake 20.0 ms"));
    cr_assert(strstr(s.ep[b].lines[0], "> 10.0.0.1:1000 id "));
    cr_assert(strstr(s.ep[b].lines[0], ": accepted"));
    cr_assert(strstr(s.ep[a].lines[1], "; bytes sent 100 (and again 0), received 1000;"));
    cr_assert(strstr(s.ep[b].lines[1], "; bytes sent 1000 (and again 0), received 100;"));
    cr_assert(strstr(s.ep[a].lines[1], ", declared lost 0 (0.00%); srtt 20."));
    const rudp_stats *st = rudp_ctx_stats(s.ep[a].ctx);
    cr_assert_eq(st->rtt_conns, 1);
    cr_assert(st->rtt_srtt_sum_us >= 20000 && st->rtt_srtt_sum_us < 21000);
    cr_assert(st->pkts_sent >= 2);
    sim_free(&s);
}

/* Issue 34: both ends name one connection with one ID, the client's (the
 * SYN's source ID), and print the server's wire ID the same way; each end
 * still routes by its own. */
Test(report, both_ends_name_a_connection_with_the_clients_id)
{
    sim s;
    int a, b;
    int ci = info_pair(&s, 45, &a, &b);
    sim_run_until(&s, s.now + RUDP_MS(30)); /* established at both ends, still open */
    rudp_conn *cc = s.apps[ci].conn;
    const rudp_conn *sc = rudp_ctx_conn_next(s.ep[b].ctx, NULL);
    cr_assert(cc && sc);
    rudp_conn_info ci_info, si_info;
    rudp_conn_get_info(cc, &ci_info);
    rudp_conn_get_info(sc, &si_info);
    cr_assert_neq(ci_info.local_cid, si_info.local_cid, "each end routes by its own ID");
    cr_assert_eq(rudp_conn_id(cc), ci_info.local_cid, "the ID is the client's");
    cr_assert_eq(rudp_conn_id(sc), ci_info.local_cid, "the server names it the same");
    cr_assert_eq(si_info.conn_id, ci_info.conn_id);
    cr_assert(sim_run(&s, s.now + RUDP_SEC(10)));
    dump(&s.ep[a]);
    dump(&s.ep[b]);
    char want[80];
    snprintf(want, sizeof want, " id %016llx: ", (unsigned long long)ci_info.local_cid);
    for (int e = 0; e < 2; e++) {
        const sim_ep *ep = &s.ep[e ? b : a];
        cr_assert_eq(ep->nlines, 2);
        for (int k = 0; k < 2; k++)
            cr_assert(strstr(ep->lines[k], want), "%s lacks%s", ep->lines[k], want);
    }
    snprintf(want, sizeof want, "; the server's connection ID is %016llx",
             (unsigned long long)si_info.local_cid);
    cr_assert(strstr(s.ep[a].lines[0], want), "%s", s.ep[a].lines[0]);
    cr_assert(strstr(s.ep[b].lines[0], want), "%s", s.ep[b].lines[0]);
    sim_free(&s);
}

/* Issue 34: "retransmitted packets 0 (64972 bytes)". A probe timeout
 * sends the oldest unacknowledged bytes again though nothing was declared
 * lost: the packets that carried bytes again are counted apart from the
 * packets declared lost. Here the ACKs stop for 300 ms mid-transfer (the
 * data still arrives), then come back and acknowledge every original. */
Test(report, bytes_sent_again_at_a_probe_timeout_are_counted_apart_from_losses)
{
    sim s;
    sim_init(&s, 46);
    int a = sim_add_ep(&s, NULL), b = sim_add_ep(&s, NULL);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(10);
    sim_listen(&s, b, &(sim_app){.expect = 5000}, 16);
    sim_connect(&s, a, b, &(sim_app){.to_send = 5000, .expect = 0}, NULL);
    s.link[b][a].cut_at = s.now + RUDP_MS(25); /* after the SYNACK */
    s.link[b][a].cut_until = s.now + RUDP_MS(325);
    cr_assert(sim_run(&s, s.now + RUDP_SEC(10)));
    const rudp_stats *st = rudp_ctx_stats(s.ep[a].ctx);
    cr_log_info("sent again %llu bytes in %llu packets, declared lost %llu, ptos %llu",
                (unsigned long long)st->bytes_retransmitted, (unsigned long long)st->pkts_resent,
                (unsigned long long)st->pkts_retransmitted, (unsigned long long)st->pto_count);
    cr_assert(st->pto_count > 0, "the silence made probe timeouts");
    cr_assert(st->bytes_retransmitted > 0, "their probes carried bytes again");
    cr_assert_eq(st->pkts_retransmitted, 0, "nothing was declared lost");
    cr_assert(st->pkts_resent > 0 && st->pkts_resent <= st->pto_count * 2,
              "the packets that carried them are counted: %llu",
              (unsigned long long)st->pkts_resent);
    sim_free(&s);
}

/* conn_freed is a count of the caller's references: a handshake that
 * never completed was never the caller's, so its end must not be told
 * (the shim freed a listener's socket still in use when it was). */
Test(report, conn_freed_only_for_connections_the_caller_held)
{
    sim s;
    sim_init(&s, 44);
    int a = sim_add_ep(&s, NULL), b = sim_add_ep(&s, NULL);
    s.link[a][b].delay = s.link[b][a].delay = RUDP_MS(10);
    /* SYN (10 ms: SYN_RCVD), SYNACK; the client's answer (sent at 20 ms)
     * never arrives */
    s.link[a][b].cut_at = s.now + RUDP_MS(15);
    sim_listen(&s, b, &(sim_app){.expect = 0}, 16);
    int ci = sim_connect(&s, a, b, &(sim_app){.to_send = 10, .expect = 0}, NULL);
    sim_run_until(&s, s.now + RUDP_SEC(1000)); /* past user_timeout (900 s) */
    cr_assert_eq(rudp_ctx_conn_count(s.ep[b].ctx), 0, "the half-open connection is gone");
    cr_assert_eq(s.ep[b].conns_freed, 0, "conn_freed for a connection the server never held");
    cr_assert(s.apps[ci].error != 0, "the client's connection failed");
    cr_assert_eq(s.ep[a].conns_freed, 1, "conn_freed for the client's own connection");
    sim_free(&s);
}
