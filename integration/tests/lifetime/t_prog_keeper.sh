#!/bin/sh
# tests/prog_keeper.c over kernel TCP and under the shim: what a process
# leaves when it is gone. Its listener's port is free after _exit(),
# exit() and SIGTERM; TIME_WAIT outlives it (a keeper holds the port the
# 60 s); a writer killed by SIGTERM has every byte its write() accepted
# delivered, then EOF (a keeper carries the engine past the signal).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_keeper
# Whatever still holds a port the program's children used is theirs (a
# keeper left behind by a failure, or one holding TIME_WAIT): ended by PID.
end_keepers() {
    for f in "$T/keeper.tcp" "$T/keeper.shim"; do
        [ -f "$f" ] || continue
        for port in $(sed -n 's/^port: //p' "$f"); do
            for pid in $(ss -Htaunp "sport = :$port" |
                         sed -n 's/.*("prog_keeper",pid=\([0-9]*\),.*/\1/p' | sort -u); do
                kill "$pid" 2>/dev/null || true
            done
        done
    done
}
trap 'end_keepers; cleanup' EXIT INT TERM
run_both keeper "$BIN/prog_keeper" listener
