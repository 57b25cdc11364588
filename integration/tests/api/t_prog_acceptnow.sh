#!/bin/sh
# A connection whose client's connect() has returned is in the listener's
# accept queue (tests/prog_acceptnow.c; issue 43, finding 8): connects
# started together, and once all have returned every one is accepted at
# once by a non-blocking accept(). Over kernel TCP, then under the shim
# with one engine, the default, and two (a group of engines orders its
# hand-overs, shim/engine/fifo.c). On 4fe1127 the server's engine handed a
# connection over only when the client's first datagram after the SYNACK
# arrived; now a loopback client's SYNACK leaves once the connection is in
# the app's accept queue (rudp_listener_set_early_accept).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
need_bin prog_acceptnow
RUDP_ENGINES=1 run_both acceptnow "$BIN/prog_acceptnow"
run_shim acceptnow.shimdef "default engines" env -u RUDP_ENGINES "$BIN/prog_acceptnow"
RUDP_ENGINES=2 run_shim acceptnow.shim2 "2 engines" "$BIN/prog_acceptnow"
