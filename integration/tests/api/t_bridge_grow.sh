#!/bin/sh
# The engine's end of a bridge grows for a reader that keeps up, as TCP's
# receive buffer grows with what its reader takes (shim/engine/
# bridgepump.c, grow_efd), and only for one:
#   1. bulk.c over loopback, its reader as fast as it can: the receiver's
#      statistics say its bridge grew, at most 5 times (32 KiB to 1 MiB, a
#      doubling each), and bytes arrived; and that the reader's own thread
#      took datagrams after its polls, which its reads took (a bulk reader
#      is no longer left to the engine: engine/apprecv.c);
#   2. a reader that takes 1 KiB every 20 ms from a writer that never
#      stops: no bridge grew (what a slow or stopped reader lets a peer
#      queue stays TCP's bound: t_prog_writeq checks it);
#   3. a fast reader whose program set SO_RCVBUF 64 KiB: no bridge grew
#      (TCP stops tuning a receive buffer the program sized).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin bulk

# grown FILE: the "bridges: buffers grown ... N" count in FILE's
# statistics, 0 without the line
grown() {
    _n=$(stats_lines "$1" | sed -n 's/^bridges: buffers grown for a reader that kept up \([0-9]*\) .*/\1/p' | head -1)
    echo "${_n:-0}"
}

# 1. a fast reader
P=$(free_port)
start_bg fast under_shim env RUDP_STATS=1 "$BIN/bulk" recv --port "$P" --time 2 --once
rdr=$LAST_PID
wait_udp "$P"
# the sender ends when the reader resets the connection after its 2 s
under_shim env RUDP_STATS=1 timeout 30 "$BIN/bulk" send --to 127.0.0.1 --port "$P" --timeout 20 \
    >"$T/fast_send.out" 2>"$T/fast_send.err" || :
wait_exit "$rdr" || { show "$T/fast.log"; fail "the fast reader exited non-zero"; }
bytes=$(sed -n 's/^bytes=\([0-9]*\) .*/\1/p' "$T/fast.log")
[ "${bytes:-0}" -gt 0 ] || { show "$T/fast.log"; fail "the fast reader got no bytes"; }
n=$(grown "$T/fast.log")
echo "fast reader: $bytes bytes in 2 s, its bridge grew $n time(s)"
[ "$n" -ge 1 ] || { show "$T/fast.log"; fail "a reader that kept up at $bytes bytes in 2 s: its bridge never grew"; }
[ "$n" -le 5 ] || { show "$T/fast.log"; fail "its bridge grew $n times: past 1 MiB"; }
echo "ok: a reader that keeps up gets a bigger bridge, at most 1 MiB"
# ... and its own thread takes the datagrams after its poll and its read
# takes them from the connection (engine/apprecv.c: a bulk reader too,
# b96b3f4); not where a seccomp filter came with the process (the paths
# are then asked of a child first, sandbox.c, and may be off)
if grep -q '^Seccomp:[[:space:]]*2' /proc/self/status; then
    echo "skip: a bulk reader's own thread: this environment's seccomp filter may turn the app threads' paths off"
else
    own=$(stats_lines "$T/fast.log" |
        sed -n 's/^app-thread receives: reads whose own thread took the datagram \([0-9]*\) .*/\1/p' | head -1)
    took=$(stats_lines "$T/fast.log" |
        sed -n 's/^kept for the read after a poll: keeps [0-9]* ([^)]*), reads that took them \([0-9]*\),.*/\1/p' | head -1)
    echo "fast reader: its own thread took datagrams ${own:-0} times, its reads took them ${took:-0} times"
    # left to the engine once past 256 KiB in 10 ms (the rule before
    # b96b3f4), the first polls alone took them: 4 times; since, 3,200-3,700
    # with two busy loops on the two CPUs, ~10,000 idle
    [ "${own:-0}" -ge 100 ] && [ "${took:-0}" -ge 100 ] ||
        { show "$T/fast.log"; fail "a bulk reader on loopback: its own thread took its datagrams ${own:-0} times in 2 s (left to the engine)"; }
    echo "ok: a bulk reader's own thread takes its datagrams, and its reads take them from the connection"
fi

# The python reader of cases 2 and 3: reader.py PORT NAME SIZE PAUSE RCVBUF
# SECS accepts one connection, reads SIZE bytes at a time with PAUSE
# seconds between reads (SO_RCVBUF set to RCVBUF first unless 0) for SECS
# seconds, and prints "NAME got BYTES".
cat >"$T/reader.py" <<'PY'
import socket, sys, time
port, name, size, pause, rcvbuf, secs = sys.argv[1:7]
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if int(rcvbuf):
    l.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, int(rcvbuf))
l.bind(("127.0.0.1", int(port)))
l.listen(1)
c, _ = l.accept()
got = 0
end = time.monotonic() + float(secs)
while time.monotonic() < end:
    b = c.recv(int(size))
    if not b:
        break
    got += len(b)
    if float(pause):
        time.sleep(float(pause))
print(name, "got", got)
c.close()
PY

# py_reader NAME SIZE PAUSE RCVBUF SECS: reader.py under the shim with
# bulk.c writing to it until it closes; sets GOT (its bytes) and N (its
# bridges' doublings)
py_reader() {
    P=$(free_port)
    start_bg "$1" under_shim env RUDP_STATS=1 "$PY" "$T/reader.py" "$P" "$@"
    rdr=$LAST_PID
    wait_udp "$P"
    under_shim env RUDP_STATS=1 timeout 30 "$BIN/bulk" send --to 127.0.0.1 --port "$P" \
        --timeout 20 >"$T/$1_send.out" 2>"$T/$1_send.err" || :
    wait_exit "$rdr" || { show "$T/$1.log"; fail "the $1 reader exited non-zero"; }
    GOT=$(sed -n "s/^$1 got \([0-9]*\)/\1/p" "$T/$1.log")
    [ "${GOT:-0}" -gt 0 ] || { show "$T/$1.log"; fail "the $1 reader got nothing"; }
    stats_lines "$T/$1.log" | grep -q "^connections: " ||
        { show "$T/$1.log"; fail "no statistics from the $1 reader"; }
    N=$(grown "$T/$1.log")
}

# 2. a slow reader: 1 KiB every 20 ms
py_reader slow 1024 0.02 0 1.5
echo "slow reader: got $GOT bytes in 1.5 s, its bridge grew $N time(s)"
[ "$N" = 0 ] || { show "$T/slow.log"; fail "a reader of 50 KiB/s: its bridge grew $N time(s)"; }
echo "ok: a slow reader keeps the bridge's first size"

# 3. a fast reader that sized its receive buffer
py_reader sized 262144 0 65536 2
echo "reader with SO_RCVBUF 64 KiB: got $GOT bytes in 2 s, its bridge grew $N time(s)"
[ "$N" = 0 ] || { show "$T/sized.log"; fail "a reader that set SO_RCVBUF 64 KiB: its bridge grew $N time(s)"; }
echo "ok: a reader that sized its receive buffer keeps the bridge's first size"
