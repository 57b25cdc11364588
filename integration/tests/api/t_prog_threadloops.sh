#!/bin/sh
# tests/prog_threadloops.c over kernel TCP, then under the shim: two
# threads, each an event loop over its own 24 connections (wrk -t2's
# shape), 300 rounds at once, every byte checked; then the same with the
# connections made by the main thread and given to the threads. Under the
# shim, when each thread made its own connections, each must have an
# engine of its own (shim/engine/engines.c: "connections each 24/24"), no
# wait may have been turned off for another thread's (appwhole.c), and both
# loops' bytes must have been kept in memory for their reads (before, the
# threads' connections shared both engines and the path held off: 19 keeps
# of 14,400 messages).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
# the engines in the program's fd table whatever the hard fd limit here:
# an engine with a table of its own takes no app thread's turn
export RUDP_FD_TABLE=shared

need_bin prog_threadloops
for way in own given; do
    rc=0
    timeout -k 5 180 "$BIN/prog_threadloops" $way >"$T/tcp.$way" 2>&1 || rc=$?
    sed 's/^/tcp:  /' "$T/tcp.$way"
    [ "$rc" = 0 ] || fail "prog_threadloops $way over kernel TCP exited $rc"
    RUDP_APP_RECV=1 RUDP_STATS=1 run_app_t 180 "$BIN/prog_threadloops" $way >"$T/shim.$way" \
        2>"$T/stats.$way" || rc=$?
    sed 's/^/shim: /' "$T/shim.$way"
    [ "$rc" = 0 ] || { show "$T/stats.$way"; fail "prog_threadloops $way under the shim exited $rc"; }
    assert_transport "$T/shim.$way"
    off=$(sed -n "s/.*wait on the same engine's set \([0-9]*\).*/\1/p" "$T/stats.$way" | head -1)
    echo "$way: waits turned off for another thread's: ${off:-0}"
done

# own: the client's engines (the echo server, killed, prints nothing)
split=$(sed -n 's/.*engine: threads 2 (connections each \([0-9]*\/[0-9]*\)).*/\1/p' "$T/stats.own" | head -1)
[ "$split" = "24/24" ] || { show "$T/stats.own"; fail "own: the threads' connections on the engines: ${split:-?}, not 24/24"; }
off=$(sed -n "s/.*wait on the same engine's set \([0-9]*\).*/\1/p" "$T/stats.own" | head -1)
[ "${off:-x}" = 0 ] || { show "$T/stats.own"; fail "own: waits turned off for another thread's: ${off:-none said}"; }
kept=$(sed -n 's/.*for an event loop.s epoll wait \([0-9]*\), told.*/\1/p' "$T/stats.own" | head -1)
[ "${kept:-0}" -ge 1000 ] || { show "$T/stats.own"; fail "own: bytes kept for the loops' reads ${kept:-0} times"; }
echo "ok: own: an engine for each thread's connections ($split), no wait turned off, $kept messages kept in memory for the loops' reads"
