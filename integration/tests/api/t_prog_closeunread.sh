#!/bin/sh
# tests/prog_closeunread.c over kernel TCP, then both ends under the shim
# (unkeyed, then keyed): a close() with the peer's bytes unread resets, and
# after the closer's shutdown(SHUT_WR) (Java's Socket.close()) the FIN
# comes first: the peer reads every byte then EOF, SO_ERROR EPIPE. A peer
# that got no FIN first sees ECONNRESET, never EPIPE (a server at SIGPIPE's
# default dies of that) or EOF. At 10be818 the shim's peer read
# ECONNRESET after a shutdown and close, SO_ERROR 0 after a gap between
# them, and EPIPE or EOF in about 1 echo connection in 10 (4 runs of 4).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_closeunread
run_both closeunread "$BIN/prog_closeunread"
if [ "$SHIM_MODE" = shim ]; then
    make_key "$T/key"
    RUDP_KEY_FILE="$T/key" run_shim keyed keyed "$BIN/prog_closeunread"
fi
