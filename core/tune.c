/*
 * tune.c: settings the application changes on a live connection or a
 * listener through its socket's options (the shim's setsockopt): the
 * congestion controller; the send buffer, receive window and
 * TCP_NOTSENT_LOWAT; TCP_CORK; and the caller's send tag, which tells its
 * send_from how to send the connection's datagrams. Like the rest of the
 * core, it runs on the thread
 * that owns the context.
 */
#include "conn.h"

void rudp_conn_set_cc(rudp_conn *c, const rudp_cc_ops *ops, rudp_time now)
{
    c->cfg.cc = ops;
    rudp__cc_switch(&c->cc, ops, now);
}

void rudp_listener_set_cc(rudp_listener *l, const rudp_cc_ops *ops)
{
    l->cfg.cc = ops;
}

void rudp_conn_set_send_tag(rudp_conn *c, uint64_t tag)
{
    c->send_tag = tag;
}

uint64_t rudp_conn_send_tag(const rudp_conn *c)
{
    return c->send_tag;
}

/* v within [lo, hi] (lo wins if they cross). */
static uint32_t within(uint32_t v, uint32_t lo, uint32_t hi)
{
    if (v > hi)
        v = hi;
    return v < lo ? lo : v;
}

/* The bound on unsent bytes: the application's TCP_NOTSENT_LOWAT, else
 * the caller's unsent_cap. Why a cap by default: a bulk sender given a
 * 32 MiB buffer (RUDP_BUFFER) kept it full, so each packet copied its
 * bytes from memory written megabytes earlier, out of the caches: that
 * copy was 8.8 % of a veth run's CPU (perf, issue 46), 2.5 % with 256 KiB
 * unsent at most. What waits beyond it waits in the caller's own queue
 * (the shim's bridge), as TCP's bytes wait in its send queue. */
uint32_t rudp__unsent_bound(const rudp_conn *c)
{
    return c->cfg.notsent_lowat ? c->cfg.notsent_lowat : c->cfg.unsent_cap;
}

/* TCP_NOTSENT_LOWAT as Linux applies it (net/ipv4/tcp.c): poll says
 * writable while notsent * 2 < lowat (tcp_poll asks tcp_stream_memory_free
 * with wake = 1), sendmsg adds data while notsent < lowat (wake = 0). */
size_t rudp__lowat_space(const rudp_conn *c, size_t space)
{
    uint64_t lowat = rudp__unsent_bound(c);
    if (!lowat)
        return space;
    uint64_t unsent = c->snd_end - c->snd_nxt;
    if (unsent * 2 >= lowat)
        return 0;
    return lowat - unsent < space ? (size_t)(lowat - unsent) : space;
}

void rudp__tune_sent(rudp_conn *c)
{
    if (c->cork && c->snd_nxt == c->snd_end) {
        c->cork_release = 0; /* bytes written from now on wait again */
        rudp__wheel_cancel(&c->ctx->wheel, &c->timers[RUDP_T_CORK]);
    }
    if (!rudp__unsent_bound(c))
        return;
    if (c->cfg.notsent_lowat && c->snd_nxt == c->snd_end)
        rudp__conn_event(c, RUDP_EV_SENT); /* a caller showing unsent bytes: none now */
    if (c->want_writable && rudp__conn_send_space(c) > 0) {
        c->want_writable = 0;
        rudp__conn_event(c, RUDP_EV_WRITABLE);
    }
}

void rudp_conn_set_buffers(rudp_conn *c, uint32_t send_buffer, uint32_t recv_window,
                           uint32_t notsent_lowat)
{
    /* the buffers hold what the config they were made with allows */
    if (send_buffer)
        c->cfg.send_buffer = within(send_buffer, 4096, c->sbuf.cap);
    if (recv_window) {
        c->cfg.recv_window = within(recv_window, 2 * c->cfg.max_datagram, c->rbuf.cap);
        if (c->rwnd > c->cfg.recv_window)
            c->rwnd = c->cfg.recv_window;
    }
    c->cfg.notsent_lowat = notsent_lowat;
    if (c->want_writable && rudp__conn_send_space(c) > 0) {
        c->want_writable = 0; /* a larger limit, or none, left room */
        rudp__conn_event(c, RUDP_EV_WRITABLE);
    }
}

void rudp_listener_set_buffers(rudp_listener *l, uint32_t send_buffer, uint32_t recv_window,
                               uint32_t notsent_lowat)
{
    if (send_buffer)
        l->cfg.send_buffer = within(send_buffer, 4096, 1u << 30);
    if (recv_window)
        l->cfg.recv_window = within(recv_window, 2 * l->cfg.max_datagram, 1u << 30);
    l->cfg.notsent_lowat = notsent_lowat;
}

/* TCP_CORK, tcp(7): "If set, don't send out partial frames. All queued
 * partial frames are sent when the option is cleared again ... there is a
 * 200 millisecond ceiling on the time for which output is corked". Full
 * datagrams go; the rest waits for more bytes, the uncork, a FIN, or the
 * ceiling, counted from the flush that first held it (Linux: the write). */
#define CORK_CEILING RUDP_MS(200)

int rudp__cork_holds(const rudp_conn *c)
{
    if (!c->cork || c->cork_release || c->fin_off != RUDP_FIN_NONE)
        return 0;
    return c->snd_end - c->snd_nxt < c->mss;
}

void rudp__cork_arm(rudp_conn *c, rudp_time now)
{
    if (rudp__cork_holds(c) && c->snd_nxt != c->snd_end &&
        !rudp__timer_armed(&c->timers[RUDP_T_CORK]))
        rudp__conn_arm(c, RUDP_T_CORK, now + CORK_CEILING);
}

void rudp__cork_expired(rudp_conn *c)
{
    c->cork_release = 1;
    rudp__conn_dirty(c);
}

/* Timer `kind` at `after` past the peer's last packet (now at the
 * earliest), or off with 0. */
static void arm_from_heard(rudp_conn *c, int kind, rudp_time after, rudp_time now)
{
    if (!after) {
        rudp__conn_disarm(c, kind);
        return;
    }
    rudp_time at = (c->last_rx ? c->last_rx : now) + after;
    rudp__conn_arm(c, kind, at > now ? at : now);
}

void rudp_conn_set_timeouts(rudp_conn *c, rudp_time now, rudp_time keepalive,
                            rudp_time idle_timeout, rudp_time user_timeout)
{
    now = rudp__clock(c->ctx, now);
    if (keepalive && idle_timeout && keepalive >= idle_timeout)
        keepalive = idle_timeout / 2;
    c->cfg.keepalive = keepalive;
    c->cfg.idle_timeout = idle_timeout;
    if (user_timeout)
        c->cfg.user_timeout = user_timeout; /* its timer's next arming takes it */
    /* the two run from establishment until TIME_WAIT (rudp__conn_keepalive_rearm) */
    if (rudp__conn_sending_state(c->state) && c->state != RUDP_TIME_WAIT) {
        arm_from_heard(c, RUDP_T_KEEPALIVE, keepalive, now);
        arm_from_heard(c, RUDP_T_IDLE, idle_timeout, now);
    }
}

void rudp_conn_set_cork(rudp_conn *c, int on)
{
    c->cork = on != 0;
    if (!on) {
        /* "All queued partial frames are sent when the option is cleared" */
        c->cork_release = 0;
        rudp__wheel_cancel(&c->ctx->wheel, &c->timers[RUDP_T_CORK]);
        rudp__conn_dirty(c);
    }
}
