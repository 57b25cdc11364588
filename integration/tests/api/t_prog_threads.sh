#!/bin/sh
# tests/prog_threads.c under the shim (over kernel TCP with RUDP_NO_SHIM=1):
# 16 client threads open 200 connections at once (all open together), each
# sends 8 KiB and checks its echo byte for byte; the echo server accepted all
# 200, had all 200 open at the same time and saw 200 clean EOFs.  Twice: the
# server as a thread of the same process (one engine serves both ends), then
# in a forked child (an engine per process).  `make tsan` builds the same
# program with -fsanitize=thread.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_threads
for mode in thread fork; do
    flag=""
    [ "$mode" = fork ] && flag=-f
    rc=0
    # shellcheck disable=SC2086
    run_app_t 150 "$BIN/prog_threads" $flag >"$T/out-$mode" 2>&1 || rc=$?
    cat "$T/out-$mode"
    [ "$rc" = 0 ] || fail "prog_threads (server in a $mode) exited $rc"
    assert_transport "$T/out-$mode"
done
