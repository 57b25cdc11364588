#!/bin/sh
# tests/prog_signals.c over kernel TCP's world and under the shim, with and
# without RUDP_STATS=1 (then the shim stands in for the default action of
# SIGTERM, SIGINT, SIGHUP): signal() and sigaction() must answer as glibc's
# own in all three (siginterrupt kept, SIG_ERR refused, handlers set behind
# our back by sysv_signal() seen).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_signals
for stats in 0 1; do
    rc=0
    RUDP_STATS=$stats run_app "$BIN/prog_signals" >"$T/out" 2>&1 || rc=$?
    sed "s/^/RUDP_STATS=$stats: /" "$T/out"
    [ "$rc" = 0 ] || fail "prog_signals exited $rc with RUDP_STATS=$stats"
done
