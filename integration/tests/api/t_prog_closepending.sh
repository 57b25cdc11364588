#!/bin/sh
# tests/prog_closepending.c over kernel TCP, then the closing end under the
# shim (its peer then runs libcore.a itself): a close() with the peer's
# bytes arrived but unread, waiting in the connection's UDP socket after a
# read whose own thread took the datagram before them, resets alone, as
# TCP's close() does for bytes in its receive queue. Before 2026-11-29 the
# shim sent a FIN first and the reset once its engine read them (the
# peer's next write: EPIPE, where TCP's says ECONNRESET): 8 runs of 8
# failed here, loaded. The shim's run counts (RUDP_STATS) that its closes
# found the datagrams in the socket: the path under test was taken.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_closepending
run_both closepending "$BIN/prog_closepending"
if [ "$SHIM_MODE" = shim ]; then
    RUDP_STATS=1 run_shim stats stats "$BIN/prog_closepending"
    line=$(grep 'closes that read their connection' "$T/stats") ||
        fail "no count of closes that read their socket first (RUDP_STATS)"
    found=$(echo "$line" | sed -n 's/.*before the close: \([0-9]*\)).*/\1/p')
    [ "${found:-0}" -gt 0 ] || fail "no close found a datagram in its socket: $line"
    echo "ok: $line"
fi
