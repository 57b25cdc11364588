#!/bin/sh
# tests/prog_connopts.c over kernel TCP and under the shim (run_both): the
# options whose effect depends on a live connection: many options kept at
# once, TCP_WINDOW_CLAMP on a connected socket, SO_SNDBUF/SO_RCVBUF bounding
# what a peer that reads nothing takes, TCP_NOTSENT_LOWAT taking POLLOUT
# away while bytes wait unsent and giving it back once the peer reads.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_connopts
run_both prog_connopts "$BIN/prog_connopts"
