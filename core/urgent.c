/*
 * urgent.c: TCP's urgent mark (MSG_OOB) over rudp. The sender marks one
 * byte of its stream as urgent; the URGENT frame carries that byte's
 * offset, and the receiver hands the byte to its application as TCP would
 * (the shim writes it with MSG_OOB at its place in the stream).
 *
 * Reliability without a timer of its own: from the moment the mark is set
 * (before the byte enters the send buffer) every DATA packet sent carries
 * the frame, until a packet that carried it is acknowledged. So every
 * packet carrying the urgent byte, first send or retransmission, carries
 * its mark too: the receiver can never read past the byte without knowing
 * it is urgent, and a lost mark is resent with the data that is resent.
 *
 * Only the latest mark counts, as with TCP's urgent pointer (RFC 9293
 * §3.8.5): a new mark replaces one not yet read, whose byte then stays in
 * the stream.
 */
#include "conn.h"
#include "wire.h"

void rudp_conn_urgent_mark(rudp_conn *c)
{
    c->urg_snd = c->snd_end;
    c->urg_snd_set = 1;
    c->urg_snd_acked = 0;
    c->urg_first_pn = c->rec.next_pn;
}

int rudp_conn_urgent(const rudp_conn *c, uint64_t *before)
{
    if (!c->urg_rcv_set || rudp__seq_lt(c->urg_rcv, c->rcv_read))
        return 0; /* none, or its byte was read */
    if (before)
        *before = c->urg_rcv - c->rcv_read;
    return 1;
}

int rudp__urg_write(rudp_conn *c, uint8_t *p, size_t cap, uint16_t *flags)
{
    if (!c->urg_snd_set || c->urg_snd_acked)
        return 0;
    int n = rudp__wire_urgent_encode(p, cap, c->urg_snd);
    if (n <= 0)
        return 0;
    *flags |= RUDP_SENT_URGENT;
    return n;
}

void rudp__urg_acked(rudp_conn *c, const rudp_sent *s)
{
    /* packet numbers only grow: one sent since the mark carried it */
    if ((s->flags & RUDP_SENT_URGENT) && c->urg_snd_set && s->pn >= c->urg_first_pn)
        c->urg_snd_acked = 1;
}

void rudp__urg_input(rudp_conn *c, uint64_t off)
{
    /* a copy of a mark whose byte was read (resent with other data) is old */
    if (rudp__seq_lt(off, c->rcv_read))
        return;
    if (c->urg_rcv_set && !rudp__seq_lt(c->urg_rcv, c->rcv_read) && !rudp__seq_lt(c->urg_rcv, off))
        return; /* the same mark again, or an older one */
    c->urg_rcv = off;
    c->urg_rcv_set = 1;
}
