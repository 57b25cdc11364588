#!/bin/sh
# tests/prog_closeunread.c over kernel TCP, then both ends under the shim
# (unkeyed, then keyed): a close() with the peer's bytes unread resets, and
# after the closer's shutdown(SHUT_WR) (Java's Socket.close()) the FIN
# comes first: the peer reads every byte then EOF, SO_ERROR EPIPE. At
# 10be818 the shim's peer read ECONNRESET after a shutdown and close, and
# SO_ERROR 0 after a gap between them.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_closeunread
run_both closeunread "$BIN/prog_closeunread"
if [ "$SHIM_MODE" = shim ]; then
    make_key "$T/key"
    RUDP_KEY_FILE="$T/key" run_shim keyed keyed "$BIN/prog_closeunread"
fi
