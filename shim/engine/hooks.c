/*
 * hooks.c: what the features above the engine registered for it to call
 * (hooks.h). Written at their init, before any engine runs; read after.
 */
#include <errno.h>

#include "internal.h"

#include "base/poison.h"

shim_hooks shim_hook;

void shim_watch_set(shim_watch *w, const shim_watch_ops *ops)
{
    w->ops = ops;
    w->type = SHIM_WATCHED;
}

int shim_watch_on(const shim_watch *w)
{
    return w->type == SHIM_WATCHED;
}

void shim_engine_set_listener_ops(const shim_listener_ops *ops)
{
    shim_hook.listener = ops;
}

void shim_engine_set_relay_ops(const shim_relay_ops *ops)
{
    shim_hook.relay = ops;
}

void shim_engine_set_client_ops(const shim_client_ops *ops)
{
    shim_hook.client = ops;
}

void shim_engine_set_lifetime_ops(const shim_lifetime_ops *ops)
{
    shim_hook.lifetime = ops;
}

void shim_engine_on(int when, shim_engine_fn fn)
{
    if (when < 0 || when >= SHIM_ON_N)
        return;
    for (int i = 0; i < SHIM_ON_MAX; i++) {
        if (shim_hook.on[when][i] == fn)
            return; /* registered already (init runs once, but say so here too) */
        if (!shim_hook.on[when][i]) {
            shim_hook.on[when][i] = fn;
            return;
        }
    }
    shim_log(RUDP_LOG_ERROR, "engine: no room for another hook %d (SHIM_ON_MAX %d)", when,
             SHIM_ON_MAX);
}

void shim_engine_on_cmd(int type, shim_cmd_fn fn)
{
    if (type > 0 && type < SHIM_CMD_MAX)
        shim_hook.cmd[type] = fn;
    else
        shim_log(RUDP_LOG_ERROR, "engine: command %d is past SHIM_CMD_MAX %d", type, SHIM_CMD_MAX);
}

void shim_hooks_run(int when, struct engine *e, rudp_time now)
{
    for (int i = 0; i < SHIM_ON_MAX && shim_hook.on[when][i]; i++)
        shim_hook.on[when][i](e, now);
}

void shim_engine_set_ext(const shim_ext_sizes *sizes)
{
    if (shim_hook.ext.engine || shim_hook.ext.sock || shim_hook.ext.group) {
        shim_log(RUDP_LOG_ERROR, "engine: a second feature's area refused (one registers)");
        return;
    }
    shim_hook.ext = *sizes;
}

void shim_engine_set_figures(shim_figures_fn fn)
{
    shim_hook.figures = fn;
}
