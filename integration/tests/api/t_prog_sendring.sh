#!/bin/sh
# tests/prog_sendring.c over kernel TCP, then under the shim with the app
# thread's send off, so that small writes go to the engine in memory
# (shim/engine/txring.c), where a connection's life makes that hard: the
# server shuts down reading only, then writes (every byte arrives); a
# connection written to, inherited over exec, written to by the new image
# after it made a connection of its own (every write reaches its peer, in
# order); a thread writing a numbered stream while its process dies of
# SIGTERM (the peer reads it without a gap, then EOF). Each lost bytes
# before its fix. Under the shim the writes must have gone in memory
# (RUDP_STATS: "writes in memory: handed to the engine N", N > 0).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
export RUDP_FD_TABLE=shared

need_bin prog_sendring
ring() { sed -n 's/.*writes in memory: handed to the engine \([0-9]*\).*/\1/p' "$1" | awk '$1 > m {m = $1} END {print m + 0}'; }

for case in shutrd exec sigterm; do
    RUDP_STATS=1 RUDP_APP_SEND=0 run_both "sendring-$case" "$BIN/prog_sendring" "$case"
    grep -q '^ok$' "$T/sendring-$case.shim" || fail "$case: no ok under the shim"
done
r=$(ring "$T/sendring-shutrd.shim")
[ "$r" -gt 0 ] || fail "shutrd: no write handed to the engine in memory (RUDP_STATS)"
echo "ok: shutrd: $r writes in memory"
