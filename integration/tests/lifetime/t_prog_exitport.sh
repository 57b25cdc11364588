#!/bin/sh
# tests/prog_exitport.c over kernel TCP, then under the shim: a listener's
# port is free as soon as the process that held it has been reaped (exit,
# _exit, SIGTERM), as kernel TCP frees it; a grandchild still holding the
# listener keeps it in use. The exiting process stops each listener no
# other process holds itself, before any keeper is forked
# (shim/lifetime/keeper.c); a keeper held it until it saw the process gone.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_exitport
run_both exitport "$BIN/prog_exitport"
