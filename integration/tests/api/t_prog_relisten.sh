#!/bin/sh
# tests/prog_relisten.c over kernel TCP, then under the shim with one
# engine, with two (RUDP_ENGINES=2: a listener is a group of sockets, one
# per engine) and without the dual listener (RUDP_ACCEPT_TCP=0): listen, close, listen again on one port at once, with
# and without SO_REUSEADDR, as Linux answers each (a connection still open
# on the old listener: EADDRINUSE unless both sockets have SO_REUSEADDR;
# then the old connection carries on and the new listener accepts), a
# server that re-creates its listener after each connection (iperf3 -s),
# and a bound socket shared by two processes (fork, SCM_RIGHTS) on which
# both call listen(): 0 for both, and each accepts.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_relisten
run_both relisten "$BIN/prog_relisten"
if [ "$SHIM_MODE" = shim ]; then
    RUDP_ENGINES=2 run_shim engines2 "two engines" "$BIN/prog_relisten"
    RUDP_ACCEPT_TCP=0 run_shim notcp RUDP_ACCEPT_TCP=0 "$BIN/prog_relisten"
fi
