#!/bin/sh
# tests/prog_fdopen.c, both ends under the shim (over kernel TCP with
# RUDP_NO_SHIM=1): fdopen()+fgets/fprintf line exchange with a forked server (each
# process its own engine): lock-step lines, a pipelined batch, a 200,000-byte
# line, shutdown(SHUT_WR) seen as feof() and a final line after it.
# The program checks everything itself and prints an "ok:" line per check;
# here we also require that its connections were not kernel TCP sockets
# under the shim (its "transport:" lines).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_fdopen
rc=0
run_app "$BIN/prog_fdopen" >"$T/out" 2>&1 || rc=$?
cat "$T/out"
[ "$rc" = 0 ] || fail "prog_fdopen exited $rc"
assert_transport "$T/out"
