#!/bin/sh
# tests/prog_prefork.c under the shim (over kernel TCP with RUDP_NO_SHIM=1):
# a listener shared with two forked children that accept(); 20 clients are
# each answered by a child; once every holder is gone the port refuses.
# Twice: the parent keeping its copy of the listener (-k), then closing it
# right after the fork (the listener must live on in the children).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_prefork
for mode in keep close; do
    flag=""
    [ "$mode" = keep ] && flag=-k
    rc=0
    # shellcheck disable=SC2086
    run_app "$BIN/prog_prefork" $flag >"$T/out-$mode" 2>&1 || rc=$?
    cat "$T/out-$mode"
    [ "$rc" = 0 ] || fail "prog_prefork (parent ${mode}s its listener) exited $rc"
    assert_transport "$T/out-$mode"
done
