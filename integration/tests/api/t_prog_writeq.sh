#!/bin/sh
# tests/prog_writeq.c over kernel TCP, then under the shim: 200 fresh
# connections in a row, each given SO_SNDBUF 16 KiB while its non-blocking
# connect is under way (libuv's tcp_write_queue_order): once connected
# SO_SNDBUF says 32 KiB, as TCP's (the shim's engine gave the bridge the size
# read at connect() back, 208 KiB, whenever the app's set came first). Under
# the shim twice at once, for load. And a peer that reads nothing takes
# at most the writer's SO_SNDBUF + its own SO_RCVBUF, either way (the shim
# took 8 MiB and more). And libuv's tcp_write_in_a_row: a 1-byte write
# right after a 10 MB one that ended goes at once (under the shim it
# would block one time in three).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_writeq
bg_app writeq2 "$BIN/prog_writeq"
other=$LAST_PID
run_both writeq "$BIN/prog_writeq"
rc=0
wait_exit "$other" || rc=$?
[ "$rc" = 0 ] || { show "$T/writeq2.log"; fail "the second prog_writeq exited $rc"; }
