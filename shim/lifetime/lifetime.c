/*
 * lifetime.c: a process's lifetime, plugged into the engine (hooks.h): a
 * keeper taking the engines over at exit or a fatal signal (keeper.c), a
 * child that shares our memory but not our fd table (procenv.c, adopt.c).
 * The engine calls none of them by name: shim_lifetime_init, from the
 * shim's init, registers what it calls.
 */
#include <dlfcn.h>
#include <string.h>

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
    .tcp_relay = shim_exechand_relay,
    .image_live = shim_exechand_live,
    .image_send = shim_exechand_send,
    .image_answer = shim_exechand_answer,
    .race_ended = shim_exechand_idle,
};

/* In rudp-supervise (RUDP_SUPERVISOR=its pid) the app ends of the bridges are
 * in the supervised program's fd table: the supervisor's binary exports
 * how to reach one (tools/supervise/serve.c), found by name as the shim
 * finds libc's calls. Another program that sets RUDP_SUPERVISOR has no
 * such symbol: nothing is registered. */
static shim_front_ops front_ops;

static void front_init(void)
{
    if (!shim_fd_by_file())
        return;
    void *f = dlsym(RTLD_DEFAULT, "rudp_supervise_reach");
    if (!f)
        return;
    /* dlsym returns void *; POSIX lets it be converted to a function
     * pointer (as base/real.c does) */
    memcpy(&front_ops.app_end, &f, sizeof f);
    f = dlsym(RTLD_DEFAULT, "rudp_supervise_stats");
    if (f)
        memcpy(&front_ops.stats, &f, sizeof f);
    shim_engine_set_front_ops(&front_ops);
}

void shim_lifetime_init(void)
{
    front_init();
    shim_engine_set_lifetime_ops(&lifetime_ops);
    shim_engine_on_cmd(CMD_ADOPT, adopt_cmd);
}
