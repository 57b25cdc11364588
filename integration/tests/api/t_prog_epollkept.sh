#!/bin/sh
# tests/prog_epollkept.c over kernel TCP, then under the shim: an event
# loop's epoll set told of bytes that wait in memory for the read, not in
# the bridge (shim/engine/appwhole.c's turn, bridgepump.c's keep,
# interpose/epoll.c): level-triggered answers while bytes are left, a
# look (MSG_PEEK, FIONREAD) and the read agreeing, a second set, a dup'd
# fd's set, edge-triggered, a deleted registration, a closed set and a new
# one at its number, a read the shim does not see (syscall(SYS_read)) and
# maxevents 1, every byte checked. Under the shim the bytes must have been
# kept for the wait and told from memory (RUDP_STATS: "for an event loop's
# epoll wait").
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
# the engine in the program's fd table whatever the hard fd limit here:
# an engine with a table of its own takes no app thread's turn
export RUDP_FD_TABLE=shared

need_bin prog_epollkept
rc=0
timeout -k 5 180 "$BIN/prog_epollkept" >"$T/tcp" 2>&1 || rc=$?
sed 's/^/tcp:  /' "$T/tcp"
[ "$rc" = 0 ] || fail "prog_epollkept over kernel TCP exited $rc"

RUDP_APP_RECV=1 RUDP_STATS=1 run_app_t 180 "$BIN/prog_epollkept" >"$T/shim" 2>"$T/stats" || rc=$?
sed 's/^/shim: /' "$T/shim"
[ "$rc" = 0 ] || { show "$T/stats"; fail "prog_epollkept under the shim exited $rc"; }
assert_transport "$T/shim"
# the client's line: the largest counts (the server prints its own)
kept=$(grep -a 'kept for the read after a poll:' "$T/stats" |
    sed -n 's/.*for an event loop.s epoll wait \([0-9]*\), told it \([0-9]*\)).*/\1 \2/p' |
    sort -n | tail -1)
k=${kept% *}
told=${kept#* }
# 220 rounds of 24 echoes and more: most must have been kept and told
[ "${k:-0}" -ge 500 ] && [ "${told:-0}" -ge 500 ] ||
    { show "$T/stats"; fail "bytes kept for the epoll wait ${k:-0} times, told ${told:-0}"; }
echo "ok: bytes kept in memory for the event loop's reads ($k), told by its epoll waits ($told)"
