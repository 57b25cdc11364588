/*
 * config.c: pure functions of rudp.h's values, which every part of the core
 * and the caller use alike: a configuration's defaults and bounds, a
 * connection state's name. They touch no context, so they sit below ctx.c
 * and conn.c, which both call them.
 */
#include <errno.h>
#include <string.h>

#include "rudp.h"
#include "wire.h" /* RUDP_MIN_SYN_SIZE: the smallest datagram a path must carry */

void rudp_config_default(rudp_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->max_datagram = 1400;
    cfg->send_buffer = 8u << 20;
    cfg->recv_window = 8u << 20;
    cfg->initial_rtt = RUDP_MS(100);
    cfg->max_ack_delay = RUDP_MS(25);
    cfg->connect_timeout = RUDP_SEC(30);
    cfg->user_timeout = RUDP_SEC(900);
    cfg->keepalive = RUDP_SEC(15);
    cfg->idle_timeout = RUDP_SEC(900);
    cfg->linger = RUDP_SEC(60);
    cfg->source_limit = 64;
    cfg->cc = NULL;
}

int rudp_config_check(const rudp_config *cfg, const char **why)
{
    const char *bad = NULL;
    if (cfg->max_datagram < RUDP_MIN_SYN_SIZE || cfg->max_datagram > 65507)
        bad = "max_datagram must be 1200..65507 bytes";
    else if (cfg->send_buffer < 4096 || cfg->send_buffer > (1u << 30))
        bad = "send_buffer must be 4 KiB..1 GiB";
    else if (cfg->recv_window < 2 * cfg->max_datagram || cfg->recv_window > (1u << 30))
        bad = "recv_window must be 2 datagrams..1 GiB";
    else if (cfg->initial_rtt < RUDP_US(10) || cfg->initial_rtt > RUDP_SEC(10))
        bad = "initial_rtt must be 10 us..10 s";
    else if (cfg->max_ack_delay > RUDP_SEC(1))
        bad = "max_ack_delay must be at most 1 s";
    else if (cfg->rx_hold > RUDP_SEC(1))
        bad = "rx_hold must be at most 1 s";
    else if (cfg->unsent_cap && (cfg->unsent_cap < 16384 || cfg->unsent_cap < 2 * cfg->max_datagram))
        bad = "unsent_cap must be 0 or at least 16 KiB and 2 max_datagram";
    else if (cfg->connect_timeout < RUDP_MS(1))
        bad = "connect_timeout must be at least 1 ms";
    else if (cfg->user_timeout < RUDP_MS(1))
        bad = "user_timeout must be at least 1 ms";
    else if (cfg->keepalive && cfg->idle_timeout && cfg->idle_timeout <= cfg->keepalive)
        bad = "idle_timeout must exceed keepalive";
    else if (cfg->repair > RUDP_REPAIR_ALWAYS)
        bad = "repair must be RUDP_REPAIR_AUTO, _OFF or _ALWAYS";
    else if (cfg->pmtud > 1)
        bad = "pmtud must be 0 or 1";
    if (why)
        *why = bad;
    return bad ? -EINVAL : 0;
}

const char *rudp_state_name(rudp_state s)
{
    static const char *const names[RUDP_STATE_COUNT] = {
        [RUDP_CLOSED] = "CLOSED",
        [RUDP_SYN_SENT] = "SYN_SENT",
        [RUDP_SYN_RCVD] = "SYN_RCVD",
        [RUDP_ESTABLISHED] = "ESTABLISHED",
        [RUDP_FIN_WAIT_1] = "FIN_WAIT_1",
        [RUDP_FIN_WAIT_2] = "FIN_WAIT_2",
        [RUDP_CLOSING] = "CLOSING",
        [RUDP_TIME_WAIT] = "TIME_WAIT",
        [RUDP_CLOSE_WAIT] = "CLOSE_WAIT",
        [RUDP_LAST_ACK] = "LAST_ACK",
    };
    return (unsigned)s < RUDP_STATE_COUNT ? names[s] : "?";
}
