#!/bin/sh
# tests/prog_outq.c under the shim (over kernel TCP with RUDP_NO_SHIM=1):
# once the peer's reply to our bytes is read, SIOCOUTQ no longer counts
# them (the chat server's delivery receipts rely on it).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_outq
rc=0
run_app "$BIN/prog_outq" 500 >"$T/out" 2>&1 || rc=$?
cat "$T/out"
[ "$rc" = 0 ] || fail "prog_outq exited $rc"
assert_transport "$T/out"
