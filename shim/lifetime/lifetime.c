/*
 * lifetime.c: a process's lifetime, plugged into the engine (hooks.h): a
 * keeper taking the engines over at exit or a fatal signal (keeper.c), a
 * child that shares our memory but not our fd table (procenv.c, adopt.c).
 * The engine calls none of them by name: shim_lifetime_init, from the
 * shim's init, registers what it calls.
 */
#include "lifetime.h"

#include "base/poison.h"

/* CMD_ADOPT: a child's fds to copy into our table. */
static void adopt_cmd(struct engine *e, void *req)
{
    (void)e;
    shim_adopt_run(req);
}

static const shim_lifetime_ops lifetime_ops = {
    .handing_over = shim_keeper_handing_over,
    .take_signal = shim_keeper_take_signal,
    .started = shim_procenv_started,
    .adopt_fds = shim_adopt_fds,
    .wake_fd = shim_adopt_wake_fd,
    .tcp_relay = shim_relay_start,
    .image_live = shim_exechand_live,
    .image_send = shim_exechand_send,
    .image_answer = shim_exechand_answer,
    .race_ended = shim_exechand_idle,
};

void shim_lifetime_init(void)
{
    shim_engine_set_lifetime_ops(&lifetime_ops);
    shim_engine_on_cmd(CMD_ADOPT, adopt_cmd);
}
