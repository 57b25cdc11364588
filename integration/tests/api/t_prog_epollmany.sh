#!/bin/sh
# tests/prog_epollmany.c over kernel TCP, then under the shim: epoll
# threads waiting for 24 connections at once (more than the per-connection
# app path takes), whose waits take every engine's whole set of sockets and
# bridges and run the engines' turns themselves (shim/engine/apprecv.c,
# io_begin): 300 rounds on all 24 at once, every byte checked; waits left
# by a signal (EINTR), a siglongjmp and a pthread_cancel, and the
# connections served after with nobody waiting; a round, then nobody
# calling in, and echoes of 100 bytes and of 32 KiB delivered all the same;
# a fork while a thread waits; 4 threads with a set of 6 each at once.
# Under the shim the path must have been taken (RUDP_STATS: "over every
# socket of the engine").
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
# the engine in the program's fd table whatever the hard fd limit here:
# an engine with a table of its own takes no app thread's turn
export RUDP_FD_TABLE=shared

need_bin prog_epollmany
rc=0
timeout -k 5 180 "$BIN/prog_epollmany" >"$T/tcp" 2>&1 || rc=$?
sed 's/^/tcp:  /' "$T/tcp"
[ "$rc" = 0 ] || fail "prog_epollmany over kernel TCP exited $rc"

RUDP_APP_RECV=1 RUDP_STATS=1 run_app_t 180 "$BIN/prog_epollmany" >"$T/shim" 2>"$T/stats" || rc=$?
sed 's/^/shim: /' "$T/shim"
[ "$rc" = 0 ] || { show "$T/stats"; fail "prog_epollmany under the shim exited $rc"; }
assert_transport "$T/shim"
# whole_waits FILE: the datagrams read by epoll waits that had taken every
# engine's sockets, from the client's line: the largest count (the
# server's and the fork's child's print theirs too; the line is there
# only when some count is not 0)
whole_waits() {
    grep -a 'app-thread receives:' "$1" |
        sed -n 's/.*of them over every socket of the engine \([0-9]*\),.*/\1/p' | sort -n | tail -1
}
whole=$(whole_waits "$T/stats")
# 300 rounds of 24 echoes, 4 x 200 of 6, and more: at least one wake-up in
# ten of the first 300 rounds' takes the whole path (idle: ~2,000)
[ "${whole:-0}" -ge 30 ] || { show "$T/stats"; fail "the epoll waits took every engine's sockets only ${whole:-0} times"; }
echo "ok: epoll waits for many connections ran the engines' turns themselves ($whole times)"

# ring_counts FILE: "handed rung quiet" of the writes in memory, from the
# client's line: the one with the most quiet writes (the server's threads,
# in blocking reads, ring for each)
ring_counts() {
    grep -a 'writes in memory: handed to the engine' "$1" |
        sed -n 's/.*handed to the engine \([0-9]*\) (eventfd writes \([0-9]*\), none while an app thread had the engines. sockets \([0-9]*\),.*/\1 \2 \3/p' |
        sort -n -k3 | tail -1
}

# A wait that the program's own fd (a pipe) ends at once, then a write:
# the engines' sets linger with the thread all the same, so the write in
# memory rings no engine's doorbell (wrk's shape: half its waits ended by
# bytes kept for its reads; a wake-up of the engine per doorbell).
# Judged only where the waits took the sets in at least half the rounds
# (each round's echo, awaited by an epoll wait, then read by it): a wait
# that finds the engine in its turn leaves the sockets to it (on a loaded
# machine, where the engine is often preempted in its turn, every one of
# 200 did once: nothing lingers then, whatever the rule). Without the
# linger the echoes' waits still take the sets: 0 quiet writes, a fail.
prog_both prog_epollmany _ownfd ownfd
set -- $(ring_counts "$T/stats_ownfd")
handed=${1:-0} rung=${2:-0} quiet=${3:-0}
taken=$(whole_waits "$T/stats_ownfd")
taken=${taken:-0}
if [ "$taken" -lt 100 ]; then
    echo "skip: ownfd: only $taken echoes read by epoll waits that took the engines' sockets (the engine in its turn: a busy machine); the linger not judged"
else
    # 200 rounds: a preempted wait (over 2 ms) gives the sets back, so half
    [ "$quiet" -ge 100 ] || { show "$T/stats_ownfd"; fail "after waits ended by the program's own fd, $quiet of $handed writes rang no doorbell ($rung eventfd writes; $taken echoes read by waits that took the sockets); 100 wanted"; }
    echo "ok: after waits ended by the program's own fd, $quiet of $handed writes in memory rang no doorbell ($rung eventfd writes; $taken echoes read by waits that took the sockets)"
fi

# The same with the echo read by a blocking read(): the read gives the
# lingering sets back before it blocks, so they seldom run out to their
# lease (each that did held the echo 2-4 ms).
prog_both prog_epollmany _blockread blockread
set -- $(ring_counts "$T/stats_blockread")
quiet=${3:-0}
# The give-back is judged where the sets lingered after the pipe's waits
# in at least half the rounds (the writes after them rang no doorbell);
# that they linger at all is ownfd's check above.
if [ "$quiet" -lt 100 ]; then
    echo "skip: blockread: the sets lingered for only $quiet of 200 writes (the engine in its turn: a busy machine); the give-back not judged"
    exit 0
fi
# the line is there only when some count is not 0
ranout=$(grep -a 'lingers of the set that ran out' "$T/stats_blockread" |
    sed -n 's/.*lingers of the set that ran out (no wait of the app.s meanwhile) \([0-9]*\).*/\1/p' |
    sort -n | tail -1)
ranout=${ranout:-0}
[ "$ranout" -le 50 ] || { show "$T/stats_blockread"; fail "$ranout of 200 rounds' lingers ran out to their lease while the thread blocked in read(); 50 at most"; }
echo "ok: a blocking read gave the lingering sets back: $ranout of 200 rounds' lingers ran out ($quiet writes rang no doorbell)"
