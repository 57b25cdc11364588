#!/bin/sh
# tests/prog_replyclose.c over kernel TCP, then both ends under the shim: a
# server writes its reply and close()s while the client keeps sending; the
# client reads the whole reply in each of 300 rounds, as TCP's does (its
# reset comes after the reply and the FIN), and a 100,000-byte one in each
# of 100 (past the client's first window). Under the shim twice: as a
# user gets it, and with the writes through the bridge (RUDP_SEND_RING=0),
# where the race is most often met. Before the fix in core/conn_input.c
# the shim lost the reply in 6 to 12 rounds of 300 with RUDP_SEND_RING=0
# (0 or 1 with it on); before the reset waited for the window
# (rudp__conn_reset_when_sent) it cut the 100,000-byte reply at 65,536
# bytes in 58 and 65 rounds of 100.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_replyclose
run_both replyclose "$BIN/prog_replyclose"
RUDP_SEND_RING=0 run_shim replyclose-bridge "RUDP_SEND_RING=0" "$BIN/prog_replyclose"
