#!/bin/sh
# tests/prog_closepending.c over kernel TCP, then the closing end under the
# shim (its peer then runs libcore.a itself): a close() with the peer's
# bytes arrived but unread, waiting in the connection's UDP socket after a
# read whose own thread took the datagram before them, resets alone, as
# TCP's close() does for bytes in its receive queue. Before 2026-11-29 the
# shim sent a FIN first and the reset once its engine read them (the
# peer's next write: EPIPE, where TCP's says ECONNRESET): 6 of 6 runs here
# failed, at the second to the fifteenth of 20 connections.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_closepending
run_both closepending "$BIN/prog_closepending"
