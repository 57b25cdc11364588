#!/bin/sh
# tests/prog_keeper.c over kernel TCP and under the shim: what a process
# leaves when it is gone. Its listener's port is free after _exit(),
# exit() and SIGTERM; TIME_WAIT outlives it (a keeper holds the port the
# 60 s); a writer killed by SIGTERM has every byte its write() accepted
# delivered, then EOF (a keeper carries the engine past the signal).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_keeper rudp-stat
# The keepers of the program and its children (rudp-stat: "keeper of pid
# N"), those holding TIME_WAIT and any a failure left: ended by PID.
end_keepers() {
    cat "$T"/*.shim 2>/dev/null | sed -n 's/^pid: //p' | sort -u >"$T/children"
    [ -s "$T/children" ] || return 0
    timeout 10 "$BIN/rudp-stat" 2>/dev/null |
        sed -n 's/^pid \([0-9]*\) .* keeper of pid \([0-9]*\)$/\2 \1/p' |
        while read -r of pid; do
            if grep -qx "$of" "$T/children"; then kill "$pid" 2>/dev/null || true; fi
        done
}
trap 'end_keepers; cleanup' EXIT INT TERM
run_both keeper_listener "$BIN/prog_keeper" listener
run_both keeper_timewait "$BIN/prog_keeper" timewait
run_both keeper_sigterm "$BIN/prog_keeper" sigterm
