#!/bin/sh
# tests/prog_epollkept.c over kernel TCP, then under the shim: an event
# loop's epoll set told of bytes that wait in memory for the read, not in
# the bridge (shim/engine/appwhole.c's turn, bridgepump.c's keep,
# interpose/epoll.c): level-triggered answers while bytes are left (two
# connections in a set of their own with maxevents 2 first, then 24), a
# look (MSG_PEEK, FIONREAD) and the read agreeing, a second set, a dup'd
# fd's set, edge-triggered, a deleted registration, a closed set and a new
# one at its number, a read the shim does not see (syscall(SYS_read)) and
# maxevents 1, every connection edge-triggered (nginx's and tokio's way),
# every byte checked. Under the shim the bytes must have been kept for the
# wait and told from memory (RUDP_STATS: "for an event loop's epoll
# wait"), by the edge-triggered rounds run alone too.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
# the engine in the program's fd table whatever the hard fd limit here:
# an engine with a table of its own takes no app thread's turn
export RUDP_FD_TABLE=shared

need_bin prog_epollkept

# both ways: prog_epollkept [way] (tag: the files' suffix), over kernel
# TCP, then under the shim, whose client must have kept bytes, told of
# them and had its reads take them 500 times at least (its line: the
# largest counts; the server prints its own); the edge-triggered rounds
# close a file after each wait, which must pass nothing on
both() { # tag what [way]
    tag=$1 what=$2
    shift 2
    prog_both prog_epollkept "$tag" "$@"
    line=$(grep -a 'kept for the read after a poll:' "$T/stats$tag" |
        sed -n 's/.*for an event loop.s epoll wait \([0-9]*\), told it \([0-9]*\)), reads that took them \([0-9]*\).*/\1 \2 \3/p' |
        sort -n | tail -1)
    set -- $line
    k=${1:-0} told=${2:-0} took=${3:-0}
    [ "$k" -ge 500 ] && [ "$told" -ge 500 ] && [ "$took" -ge 500 ] ||
        { show "$T/stats$tag"; fail "$what: bytes kept $k times, told $told, taken by a read $took"; }
    echo "ok: $what: bytes kept in memory for the event loop's reads ($k), told by its epoll waits ($told), taken by its reads ($took)"
}
both "" "every check"   # 260 rounds of 24 echoes and more
both .edge "edge-triggered" edgeall # 200 rounds of 24 echoes, all edge-triggered
