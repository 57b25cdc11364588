#!/bin/sh
# tests/prog_peerclose.c over kernel TCP, then both ends under the shim: a
# peer that writes and closes (every byte it sent is read before EOF, or
# before its reset: ECONNRESET, or EOF with SO_ERROR ECONNRESET under the
# shim; also bytes written right before a SO_LINGER {1,0} close), getpeername()
# ENOTCONN once TCP_INFO says CLOSE, a write right after the peer's close succeeding and the next ones
# failing with EPIPE, writing 16 MiB in CLOSE_WAIT, and TCP_INFO through
# FIN_WAIT1/FIN_WAIT2 and CLOSE_WAIT/LAST_ACK/CLOSE.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_peerclose
run_both peerclose "$BIN/prog_peerclose"
