#!/bin/sh
# tests/prog_restart.c over kernel TCP and under the shim (unkeyed, then
# keyed): a server restarted on its port while a keeper still delivers its
# old self's last connection. The restarted server binds and listens, and
# under the shim over rudp: its new connection is no kernel TCP socket
# (assert_transport), and the keeper says it handed the UDP port over
# (shim/ports/porthand.c); the old connection, moved to another port, delivers
# every byte in order.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_restart
need_tool rudp-stat
trap 'end_keepers; cleanup' EXIT INT TERM
RUDP_LOG=info run_both restart "$BIN/prog_restart"
if [ "$SHIM_MODE" = shim ]; then
    grep -q 'handed over to process' "$T/restart.shim" ||
        fail "no keeper handed the old listener's UDP port over"
    echo "ok: the keeper handed the port over"
    make_key "$T/key"
    RUDP_LOG=info RUDP_KEY_FILE="$T/key" run_shim keyed.shim keyed "$BIN/prog_restart"
    grep -q 'handed over to process' "$T/keyed.shim" ||
        fail "keyed: no keeper handed the old listener's UDP port over"
    echo "ok: keyed, the keeper handed the port over"
fi
