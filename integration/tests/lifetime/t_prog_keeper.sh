#!/bin/sh
# tests/prog_keeper.c over kernel TCP and under the shim: what a process
# leaves when it is gone. Its listener's port is free after _exit(),
# exit() and SIGTERM; TIME_WAIT outlives it (a keeper holds the port the
# 60 s); a writer killed by SIGTERM has every byte its write() accepted
# delivered, then EOF (a keeper carries the engine past the signal).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_keeper
need_tool rudp-stat
trap 'end_keepers; cleanup' EXIT INT TERM
run_both keeper_listener "$BIN/prog_keeper" listener
run_both keeper_timewait "$BIN/prog_keeper" timewait
run_both keeper_sigterm "$BIN/prog_keeper" sigterm
