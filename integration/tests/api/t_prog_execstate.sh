#!/bin/sh
# A connection's state after the program exec's itself (tests/prog_execstate.c):
# TCP_INFO ESTABLISHED, SO_ERROR 0, SIOCOUTQ counting the bytes a peer that
# reads nothing has not acknowledged, and the peer's reset as SO_ERROR
# ECONNRESET, asked by the new image; over kernel TCP, then under the shim.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
need_bin prog_execstate
run_both execstate "$BIN/prog_execstate"
