#!/bin/sh
# tests/prog_peerreset.c over kernel TCP, then both ends under the shim: after
# the peer's SO_LINGER {1,0} close, poll() shows IN|HUP|ERR|RDHUP and read()
# says ECONNRESET (then EOF), as TCP answers; both directions, IPv4 and IPv6,
# with and without bytes sent before the reset (read first).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_peerreset
run_both peerreset "$BIN/prog_peerreset"
