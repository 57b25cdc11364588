#!/bin/sh
# tests/prog_reuseport.c over kernel TCP, then under the shim (default
# configuration, then with RUDP_ACCEPT_TCP=0: no dual listener, as with a
# key): SO_REUSEPORT groups across threads and processes, bind/listen
# conflicts with and without SO_REUSEADDR, and the program's own UDP on its
# TCP listener's port, bound before and after the listener, every query
# answered; a connection accepted before the program's UDP bind carries
# on (it moves to another UDP port), unkeyed and keyed (RUDP_KEY_FILE:
# that check only; keyed, the other checks' plain TCP is not served);
# another program's UDP socket on the port, before and after listen(),
# with SO_REUSEADDR and with SO_REUSEPORT (beside a group that spans two
# processes, which must stay rudp).
. "$(dirname "$0")/../../lib/lib.sh"
apart_netns
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_reuseport
run_both reuseport "$BIN/prog_reuseport"
if [ "$SHIM_MODE" = shim ]; then
    RUDP_ACCEPT_TCP=0 run_shim notcp RUDP_ACCEPT_TCP=0 "$BIN/prog_reuseport"
    make_key "$T/key"
    PROG_REUSEPORT_ONLY=survive RUDP_KEY_FILE="$T/key" run_shim keyed keyed "$BIN/prog_reuseport"
fi
