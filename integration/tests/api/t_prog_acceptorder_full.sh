#!/bin/sh
# A full backlog (tests/prog_acceptorder.c, "full"): the connections the
# listener's queue holds are accepted first, in connect() order, and every
# client that waited for room is accepted once; over kernel TCP, then under
# the shim with one engine and with two (a connection that finds the app's
# backlog full stays in its group's accept order: shim/engine/fifo.c).
# busy: the server accepts only after 3.5 s; every client must stay rudp
# under the shim (RUDP_FALLBACK as the user has it: the server's RETRY
# says it runs rudp; before 2026-11-29 the waiting clients raced kernel
# TCP once the handshake timer had sent their SYN again).
. "$(dirname "$0")/../../lib/lib.sh"
apart_netns
. "$ROOT/integration/lib/shimlib.sh"
need_bin prog_acceptorder
RUDP_ENGINES=1 run_both acceptorder_full "$BIN/prog_acceptorder" full
RUDP_ENGINES=2 run_app "$BIN/prog_acceptorder" full >"$T/full.shim2" 2>&1 || {
    sed 's/^/shim, 2 engines: /' "$T/full.shim2"
    fail "prog_acceptorder full under the shim with RUDP_ENGINES=2"
}
sed 's/^/shim, 2 engines: /' "$T/full.shim2"
assert_transport "$T/full.shim2"
run_both acceptorder_busy "$BIN/prog_acceptorder" busy
