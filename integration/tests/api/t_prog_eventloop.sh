#!/bin/sh
# An event loop that starts a non-blocking connect to a peer dropping every
# handshake keeps serving another connection meanwhile; the connect ends in
# ETIMEDOUT after RUDP_CONNECT_TIMEOUT (tests/prog_eventloop.c). The
# program's bounds are fractions of that timeout, given as its argument: 5 s
# keeps them far above what a loaded host adds (a 100 ms stall, slow round
# trips) and far below a loop held until the timeout. RUDP_FALLBACK=none:
# the dropping peer has no TCP port open, so a fallback to kernel TCP would
# end the connect early with ECONNREFUSED; the subject here is the rudp
# handshake's own timeout.
. "$(dirname "$0")/../../lib/lib.sh"
RUDP_FALLBACK=none RUDP_CONNECT_TIMEOUT=5000ms under_shim timeout 60 "$BIN/prog_eventloop" 5000
