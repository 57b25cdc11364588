/*
 * ICMP errors (core/icmp.c): only an error quoting a datagram of one of our
 * connections changes anything; during the handshake it ends the connect,
 * once established it is soft unless the peer is shown gone. Over the
 * hand-driven wire of lib_wire.h, so each test picks which datagram the
 * "ICMP message" quotes and whether the peer answers.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <string.h>

#include "lib_wire.h"
#include "wire.h"

/* An ICMP error at `ep` about a datagram it sent to the other side. */
static void icmp(int ep, const wdgram *quote, size_t len, int err)
{
    rudp_ctx_icmp(w.ctx[ep], w.now, 1, &w.addr[1 - ep], quote->buf, len, err);
    w_process(ep);
}

/* The datagram last queued for `to`, copied. */
static wdgram last_to(int to)
{
    cr_assert(gt(sz, w.qn[to], 0), "nothing was sent");
    return w.q[to][w.qn[to] - 1];
}

static wdgram header(int type, uint64_t dcid, uint64_t scid, uint32_t pn)
{
    rudp_hdr h;
    memset(&h, 0, sizeof h);
    h.type = (uint8_t)type;
    h.dcid = dcid;
    h.scid = scid;
    h.pn = pn;
    wdgram d;
    memset(&d, 0, sizeof d);
    int n = rudp__wire_hdr_encode(d.buf, sizeof d.buf, &h);
    cr_assert(gt(int, n, 0));
    d.len = (size_t)n;
    return d;
}

static void client_sends(const char *text)
{
    size_t n = strlen(text);
    cr_assert(eq(sz, (size_t)rudp_conn_write(w.conn[CLI], w.now, text, n), n));
    w_process(CLI);
}

/* The client sends a byte, it is acknowledged, and an ICMP error `err`
 * quotes that DATA packet: the client sends a probe. Returns the probe. */
static wdgram error_after_data(int err)
{
    client_sends("x");
    wdgram data = last_to(SRV);
    w_settle();
    icmp(CLI, &data, data.len, err);
    return last_to(SRV);
}

static void assert_established(int ep)
{
    cr_assert(eq(int, rudp_conn_state(w.conn[ep]), RUDP_ESTABLISHED));
    cr_assert(eq(int, rudp_conn_error(w.conn[ep]), 0));
    cr_assert(eq(u32, w.events[ep] & RUDP_EV_ERROR, 0));
}

Test(icmp, quotes_naming_no_connection_of_ours_change_nothing, .init = w_setup,
     .fini = w_teardown, .timeout = 10)
{
    rudp_conn_info ci, si;
    rudp_conn_get_info(w.conn[CLI], &ci);
    rudp_conn_get_info(w.conn[SRV], &si);
    wdgram junk;
    memset(&junk, 0xa5, sizeof junk);
    wdgram forged[] = {
        header(RUDP_PKT_DATA, 0x1122334455667788ull, 0, 0), /* a guessed peer ID */
        header(RUDP_PKT_SYN, 0, 0x1122334455667788ull, 0),  /* a guessed own ID */
        header(RUDP_PKT_DATA, ci.peer_cid, 0, 1000000),     /* right ID, never sent */
        header(RUDP_PKT_DATA, si.peer_cid, 0, 1000000),
        junk,
    };
    forged[4].len = 40;
    int errs[] = {-ECONNREFUSED, -EHOSTUNREACH, -ENETUNREACH};
    uint64_t n = 0;
    for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++)
        for (size_t e = 0; e < 3; e++)
            for (int ep = 0; ep < 2; ep++) {
                icmp(ep, &forged[i], forged[i].len, errs[e]);
                n++;
            }
    /* A real quote, cut before the peer's ID ends, or from another address. */
    client_sends("x");
    wdgram real = last_to(SRV);
    icmp(CLI, &real, 10, -ECONNREFUSED);
    rudp_ctx_icmp(w.ctx[CLI], w.now, 1, &(rudp_addr){.family = 2, .port = 9, .ip = {10, 9, 9, 9}},
                  real.buf, real.len, -ECONNREFUSED);
    n += 2;
    w_settle();
    cr_assert(eq(u64, rudp_ctx_stats(w.ctx[CLI])->icmp_ignored + rudp_ctx_stats(w.ctx[SRV])->icmp_ignored, n));
    cr_assert(eq(u64, rudp_ctx_stats(w.ctx[CLI])->icmp_soft, 0));
    assert_established(CLI);
    assert_established(SRV);
    char buf[8];
    cr_assert(eq(int, (int)rudp_conn_read(w.conn[SRV], w.now, buf, sizeof buf), 1));
    cr_assert(eq(chr, buf[0], 'x'));
}

Test(icmp, port_unreachable_quoting_our_syn_refuses_the_connect, .init = w_setup,
     .fini = w_teardown, .timeout = 10)
{
    rudp_conn *c;
    cr_assert(eq(int, rudp_connect(w.ctx[CLI], w.now, 1, &w.addr[SRV], NULL, &c), 0));
    w_process(CLI);
    wdgram syn = last_to(SRV);
    w_drop_all(SRV);
    /* A SYN quoted with someone else's ID first: nothing. */
    wdgram other = syn;
    other.buf[20] ^= 0xff;
    icmp(CLI, &other, other.len, -ECONNREFUSED);
    cr_assert(eq(int, rudp_conn_state(c), RUDP_SYN_SENT));
    icmp(CLI, &syn, 28, -ECONNREFUSED); /* a quote cut after the source ID */
    cr_assert(eq(int, rudp_conn_state(c), RUDP_CLOSED));
    cr_assert(eq(int, rudp_conn_error(c), -ECONNREFUSED));
    rudp_conn_release(c, w.now);
}

Test(icmp, a_matching_error_on_an_established_connection_only_prompts_a_probe, .init = w_setup,
     .fini = w_teardown, .timeout = 10)
{
    client_sends("x");
    wdgram data = last_to(SRV);
    w_settle();
    icmp(CLI, &data, data.len, -ECONNREFUSED);
    assert_established(CLI);
    cr_assert(eq(u64, rudp_ctx_stats(w.ctx[CLI])->icmp_soft, 1));
    cr_assert(eq(sz, w.qn[SRV], 1), "no probe was sent");
    /* The same error again, about the same old packet: still nothing. */
    icmp(CLI, &data, data.len, -ECONNREFUSED);
    assert_established(CLI);
}

Test(icmp, port_unreachable_for_the_probe_from_a_silent_peer_resets, .init = w_setup,
     .fini = w_teardown, .timeout = 10)
{
    wdgram probe = error_after_data(-ECONNREFUSED);
    w_drop_all(SRV); /* the peer is gone: nothing answers */
    w.now += RUDP_MS(1);
    icmp(CLI, &probe, probe.len, -ECONNREFUSED);
    cr_assert(eq(int, rudp_conn_state(w.conn[CLI]), RUDP_CLOSED));
    cr_assert(eq(int, rudp_conn_error(w.conn[CLI]), -ECONNRESET));
    cr_assert(ne(u32, w.events[CLI] & RUDP_EV_ERROR, 0));
}

Test(icmp, a_peer_heard_between_two_errors_keeps_the_connection, .init = w_setup,
     .fini = w_teardown, .timeout = 10)
{
    wdgram probe = error_after_data(-ECONNREFUSED);
    w_settle();
    w.now += RUDP_MS(100); /* the peer answers the probe (its ACK may wait) */
    w_process(SRV);
    w_settle();
    cr_assert(eq(sz, w.qn[CLI] + w.qn[SRV], 0));
    icmp(CLI, &probe, probe.len, -ECONNREFUSED);
    assert_established(CLI);
}

Test(icmp, host_unreachable_never_ends_an_established_connection, .init = w_setup,
     .fini = w_teardown, .timeout = 10)
{
    wdgram probe = error_after_data(-EHOSTUNREACH);
    w_drop_all(SRV);
    w.now += RUDP_MS(1);
    icmp(CLI, &probe, probe.len, -EHOSTUNREACH);
    icmp(CLI, &probe, probe.len, -ENETUNREACH);
    assert_established(CLI);
}

/* An error that comes on the client's standby socket quotes a datagram of
 * the connection but says nothing of the path in use: two routes may
 * reach the same address on different hosts (a helper's hunt: the other
 * host's port unreachable reset a connection after a 3 s outage). */
Test(icmp, errors_on_a_clients_standby_socket_change_nothing, .init = w_setup,
     .fini = w_teardown, .timeout = 10)
{
    cr_assert(eq(int, rudp_conn_standby(w.conn[CLI], w.now, 7, NULL), 0));
    client_sends("x");
    wdgram data = last_to(SRV);
    w_settle();
    w_drop_all(SRV); /* the server silent from now on */
    const rudp_stats *st = rudp_ctx_stats(w.ctx[CLI]);
    uint64_t ignored = st->icmp_ignored;
    for (int i = 0; i < 3; i++) {
        w.now += RUDP_MS(1);
        rudp_ctx_icmp(w.ctx[CLI], w.now, 7, &w.addr[SRV], data.buf, data.len, -ECONNREFUSED);
        w_process(CLI);
    }
    assert_established(CLI);
    cr_assert(eq(u64, st->icmp_soft, 0), "an error on the standby counted");
    cr_assert(eq(u64, st->icmp_ignored, ignored + 3));
    /* the same error on the socket in use counts, as before */
    icmp(CLI, &data, data.len, -ECONNREFUSED);
    cr_assert(eq(u64, st->icmp_soft, 1));
}

/* A refusal read in the same pass as a probe timeout come due (an engine
 * busy past it: a server closing thousands of connections at once, whose
 * FINs' refusals wait behind the rest of the turn): the refusal's probe
 * goes, and the timeout counts from it, not as a probe timeout in vain
 * with a second probe behind it. Then, the peer still gone, the refusal
 * of that probe resets, as before. */
Test(icmp, a_refusal_read_with_its_probe_timeout_due_sends_one_probe_and_no_timeout,
     .init = w_setup, .fini = w_teardown, .timeout = 10)
{
    cr_assert(eq(int, rudp_conn_shutdown(w.conn[CLI], w.now), 0));
    w_process(CLI);
    w_settle();
    cr_assert(eq(int, rudp_conn_shutdown(w.conn[SRV], w.now), 0));
    w_process(SRV);
    cr_assert(eq(int, rudp_conn_state(w.conn[SRV]), RUDP_LAST_ACK));
    wdgram fin = last_to(CLI);
    w_drop_all(CLI); /* the client is gone: its socket refuses */
    const rudp_stats *st = rudp_ctx_stats(w.ctx[SRV]);
    uint64_t ptos = st->pto_count;
    w.now += RUDP_MS(200); /* well past the FIN's probe timeout */
    icmp(SRV, &fin, fin.len, -ECONNREFUSED);
    cr_assert(eq(u64, st->pto_count, ptos), "a probe timeout counted beside the refusal's probe");
    cr_assert(eq(sz, w.qn[CLI], 1), "want the one probe, got %zu datagrams", w.qn[CLI]);
    wdgram probe = last_to(CLI);
    w_drop_all(CLI);
    w.now += RUDP_MS(1);
    icmp(SRV, &probe, probe.len, -ECONNREFUSED);
    cr_assert(eq(int, rudp_conn_state(w.conn[SRV]), RUDP_CLOSED));
}
