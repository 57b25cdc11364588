#!/bin/sh
# tests/prog_reconnect.c over kernel TCP, then under the shim: connect()
# again on a socket whose connect failed (refused, then the program starts
# the listener, then it connects; blocking, non-blocking, bound to a port),
# connect(AF_UNSPEC) on a connected, a connecting and a fresh socket, and
# SO_SNDTIMEO bounding a blocking connect (EINPROGRESS, then EALREADY).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_reconnect
run_both reconnect "$BIN/prog_reconnect"
