#!/bin/sh
# tests/prog_closeread.c over kernel TCP, then both ends under the shim: a
# read blocked on a socket whose number is closed or dup2()ed over never
# returns the bytes of the connection that takes the number (kernel TCP:
# the old connection's; the shim: EBADF). Before 2026-11-29 the shim's
# blocked read returned the new connection's bytes (10 runs of 10).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_closeread
run_both closeread "$BIN/prog_closeread"
