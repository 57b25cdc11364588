#!/bin/sh
# A remote sender inflating a server's memory (issue "harden", finding 3).
# integration/tools/rudpraw.py speaks the wire format as an attacker would,
# against a server under the shim that listens (backlog 16) and never
# accepts. On 8d193eb ~0.5 MB of datagrams grew it by ~80 MB:
#   1. 10 connections, each: 8 bare DATA_BLOCKED frames (the window grew
#      to 8 MiB with nothing sent), then one byte every 4 KiB out of order
#      (a 16 KiB chunk per byte). Now: the window stays at 256 KiB and
#      scattered bytes cost memory in proportion to what is held.
#   2. 300 connections from one UDP port, new client IDs, never accepted
#      (each cost an engine fd, unbounded). Now: what waits for accept()
#      is bounded by the backlog (the app's queue, backlog + 1, and while
#      one waits in the engine no handshake is taken).
# Prints bytes sent, the server's RSS and fd growth and the amplification
# (bytes held per byte sent), and asserts the bounds.
#   3. A second server: 20 connections waiting for accept(), then a RESET
#      on each. On 8d193eb the engine freed a waiting connection still on
#      its retry list: the server crashed. Now it lives.
. "$(dirname "$0")/../../lib/lib.sh"
apart_netns
RAW="python3 $ROOT/integration/tools/rudpraw.py"
BACKLOG=16
cat >"$T/sink.py" <<'PY'
import signal, socket, sys, time
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))  # a clean exit prints RUDP_STATS
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(int(sys.argv[2]))
print("listening", flush=True)
for _ in range(1200):  # bounded: 120 s; never accepts
    time.sleep(0.1)
PY
rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$1/status"; }
fds() { ls "/proc/$1/fd" | wc -l; }
kv() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

P=$(free_port)
start_bg sink under_shim env RUDP_STATS=1 python3 "$T/sink.py" "$P" "$BACKLOG"
SPID=$LAST_PID
wait_udp "$P"
rss0=$(rss "$SPID") fd0=$(fds "$SPID") sent=0

# --- 1. window inflation and scattered bytes --------------------------------
# The 10 connections at once, each its own client (UDP socket, client ID):
# the server never accepts, so they end up held together either way, and
# its accept queue (16) has room for all.
SCATTER=""
for i in 1 2 3 4 5 6 7 8 9 10; do
    $RAW scatter 127.0.0.1 "$P" --step 4096 --bytes-per 1 --blocked 8 --interval-ms 5 >"$T/scatter.$i" &
    SCATTER="$SCATTER $!"
done
PIDS="$PIDS $SCATTER"
i=0
for p in $SCATTER; do
    i=$((i + 1))
    wait "$p" || true # its summary line says what came of it
    r=$(tail -1 "$T/scatter.$i")
    [ "$(kv state "$r")" = established ] || fail "scatter $i: no handshake: $r"
    sent=$((sent + $(kv sent_bytes "$r")))
    seen=$(kv max_data_seen "$r")
    [ "$seen" -le 262144 ] || fail "scatter $i: the window grew to $seen on bare DATA_BLOCKED frames"
    [ "$i" = 1 ] && echo "scatter 1: $r"
done
echo "ok: 80 DATA_BLOCKED frames grew no window (limit stayed 262144)"

# --- 2. many connections from one port --------------------------------------
r=$($RAW many 127.0.0.1 "$P" --conns 300 --parallel 64 | tail -1)
echo "many: $r"
sent=$((sent + $(kv sent_bytes "$r")))
drss=$(( $(rss "$SPID") - rss0 )) dfd=$(( $(fds "$SPID") - fd0 ))
echo "server: RSS +${drss} KiB, fds +${dfd}, after $sent bytes sent by the attacker"
awk -v m="$drss" -v s="$sent" 'BEGIN { printf "amplification: %.2f bytes held per byte sent\n", m * 1024 / s }'
# the engine holds one fd per connection waiting for accept(): at most the
# app's queue (backlog + 1) and the connections completing while it filled
[ "$dfd" -le $((2 * BACKLOG + 2)) ] || fail "server fds grew by $dfd: waiting connections are not bounded by the backlog"
[ "$drss" -le 8192 ] || fail "server RSS grew by $drss KiB for $sent bytes sent"
kill "$SPID"
# its exit (a keeper takes the waiting connections first) ends the stats:
# wait for the exit itself, not a time (run.sh's timeout bounds it); a
# keeper carrying the waiting connections prints a second block later: the
# first one is the server's own, at its exit
wait "$SPID" || true
grep '^  dropped:' "$T/sink.log" | head -1
held=$(sed -n 's/.*memory held \([0-9]*\).*/\1/p' "$T/sink.log" | head -1)
dropped=$(sed -n 's/.*handshakes dropped \([0-9]*\).*/\1/p' "$T/sink.log" | head -1)
[ -n "$held" ] || fail "no RUDP_STATS from the server"
[ "$dropped" -gt 0 ] || fail "no handshake was dropped: the accept queue was never full"
echo "ok: bounded: RSS +${drss} KiB, fds +$dfd (backlog $BACKLOG), engine holds $held bytes, $dropped handshakes dropped"

# --- 3. waiting connections reset before accept() ----------------------------
P2=$(free_port)
[ "$P2" != "$P" ] || P2=$((P + 1))
start_bg sink2 under_shim python3 "$T/sink.py" "$P2" 8
S2=$LAST_PID
wait_udp "$P2"
r=$($RAW many 127.0.0.1 "$P2" --conns 20 --abort | tail -1)
echo "many --abort: $r"
r=$($RAW many 127.0.0.1 "$P2" --conns 20 --abort | tail -1)
kill -0 "$S2" 2>/dev/null || { cat "$T/sink2.log"; fail "the server died when waiting connections were reset"; }
grep -q 'listening' "$T/sink2.log" || fail "second server did not start"
echo "ok: connections reset while waiting for accept(): the server lives"
