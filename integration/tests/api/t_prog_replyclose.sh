#!/bin/sh
# tests/prog_replyclose.c over kernel TCP, then both ends under the shim: a
# server writes its reply and close()s while the client keeps sending; the
# client reads the whole reply in each of 300 rounds, as TCP's does (its
# reset comes after the reply and the FIN). Under the shim twice: as a
# user gets it, and with the writes through the bridge (RUDP_SEND_RING=0),
# where the race is most often met. Before the fix in core/conn_input.c
# the shim lost the reply in 6 to 12 rounds of 300 with RUDP_SEND_RING=0
# (0 or 1 with it on).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_replyclose
run_both replyclose "$BIN/prog_replyclose"
RUDP_SEND_RING=0 run_shim replyclose-bridge "RUDP_SEND_RING=0" "$BIN/prog_replyclose"
