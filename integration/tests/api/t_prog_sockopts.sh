#!/bin/sh
# tests/prog_sockopts.c over kernel TCP, then both ends under the shim:
# socket options carried across connect(), listen() and accept()
# (SO_RCVTIMEO working, SO_LINGER, keepalive, TCP_NODELAY), TCP_INFO's state
# and its bytes_received once a byte is there (before the read, also after
# the peer's ACK came alone), connect() to 0.0.0.0 and :: reaching loopback
# and to multicast/broadcast failing with ENETUNREACH, getpeername() after a
# refusal, setsockopt()/getsockopt() edge values, SIOCOUTQ on a listener and
# on a connecting socket.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_sockopts
run_both sockopts "$BIN/prog_sockopts"
