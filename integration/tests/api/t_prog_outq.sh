#!/bin/sh
# tests/prog_outq.c over kernel TCP and under the shim (run_both): once the
# peer's reply to our bytes is read, SIOCOUTQ no longer counts them (the
# chat server's delivery receipts rely on it), and it counts bytes, not the
# unix bridge's memory.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_outq
run_both prog_outq "$BIN/prog_outq" 500
