#!/bin/sh
# An event loop that starts a non-blocking connect to a peer dropping every
# handshake keeps serving another connection meanwhile; the connect ends in
# ETIMEDOUT after RUDP_CONNECT_TIMEOUT (tests/prog_eventloop.c).
. "$(dirname "$0")/lib.sh"
RUDP_CONNECT_TIMEOUT=1500ms under_shim timeout 30 "$BIN/prog_eventloop"
