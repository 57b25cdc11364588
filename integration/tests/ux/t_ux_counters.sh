#!/bin/sh
# Issue 34, item 5: counters that add up and say what they count. A sender
# (nc, under the shim with RUDP_STATS=1) writes 20 MB to a receiver
# (python, under the shim) that does not read until told to:
#   1. while the receiver does not read, rudp-stat of the sender shows its
#      connection in two lines, as ss -ti does (the ESTAB line and one line
#      of keys), no engine counters; the keys line says the peer's window
#      holds the bytes back: "(receiver-limited)", not "(app-limited)",
#      with bytes "unsent" (the old "unacked 6517262" beside "inflight 0"
#      mixed bytes never sent with bytes in flight);
#   2. rudp-stat --verbose adds the counters under a "counters:" line;
#   3. the sender's RUDP_STATS at exit are one block: one "stats:" line
#      with the time and "rudp[PID]", then the counters indented, without
#      that 40-character prefix each; the stream line counts the bytes sent
#      again with the packets that carried them, apart from the packets
#      declared lost (was "retransmitted packets 0 (64972 bytes)"); "memory
#      held" is on the engine line, not under "dropped:"; the close line
#      (RUDP_LOG=info) says bytes sent and sent again, packets declared lost.
# (The probe-timeout case of 3, bytes sent again with nothing declared
# lost, is tests/test_report.c's, in virtual time.)
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
[ "$SHIM_MODE" = shim ] || skip "rudp-stat and RUDP_STATS are the shim's"
need_tool rudp-stat
command -v nc >/dev/null || fail "nc (netcat-openbsd) missing: integration/deps.sh test"
STAT=$TOOLS/rudp-stat
SIZE=20000000
head -c "$SIZE" /dev/zero >"$T/in"

cat >"$T/recv.py" <<'PY'
import os, socket, sys, time
ls = socket.socket()
ls.bind(("127.0.0.1", int(sys.argv[1])))
ls.listen(1)
print("listening", flush=True)
c, _ = ls.accept()
deadline = time.monotonic() + 60
while not os.path.exists(sys.argv[2]) and time.monotonic() < deadline:
    time.sleep(0.02)  # told to read: the test's go file
n = 0
while True:
    b = c.recv(1 << 16)
    if not b:
        break
    n += len(b)
print("got", n, flush=True)
PY

P=$(free_port)
bg_app recv "$PY" "$T/recv.py" "$P" "$T/go"
RECV=$LAST_PID
wait_listen "$P"
bg_app_io send "$T/in" /dev/null env RUDP_STATS=1 RUDP_LOG=info nc -N 127.0.0.1 "$P"
SEND=$LAST_PID

# 1. the window closes: bounded wait for the keys to say so
i=0
while :; do
    "$STAT" "$SEND" >"$T/stat" 2>&1 || true
    grep -q '(receiver-limited)' "$T/stat" && break
    [ "$i" -lt 200 ] || { show "$T/stat"; fail "rudp-stat never said the sender is receiver-limited (20 s)"; }
    sleep 0.1
    i=$((i + 1))
done
sed 's/^/rudp-stat: /' "$T/stat"
! grep -q '(app-limited)' "$T/stat" || fail "a receiver-limited sender called app-limited"
grep -Eq ' unsent [1-9][0-9]* ' "$T/stat" || fail "no bytes unsent while the peer's window is closed"
[ "$(grep -c "^ESTAB 127\.0\.0\.1:[0-9]* > 127\.0\.0\.1:$P " "$T/stat")" = 1 ] || fail "not one ESTAB line"
keys=$(grep -A1 "^ESTAB " "$T/stat" | tail -1)
echo "$keys" | grep -Eq '^  [a-z]+ .* rtt .* cwnd [0-9]+ inflight [0-9]+ .* unacked [0-9]+ unsent [0-9]+ lost [0-9]+ pto [0-9]+ mtu [0-9]+$' ||
    fail "the keys line is not one line of keys: $keys"
! grep -Eq '^(counters:|  (engine|datagrams|udp|stream):)' "$T/stat" || fail "engine counters without --verbose"
n=$(wc -l <"$T/stat")
[ "$n" -le 3 ] || fail "rudp-stat printed $n lines for one connection (header, ESTAB, keys: 3)"
echo "ok: rudp-stat: $n lines, (receiver-limited), bytes unsent, no counters"

# 2. --verbose
"$STAT" --verbose "$SEND" >"$T/statv" 2>&1 || { show "$T/statv"; fail "rudp-stat --verbose failed"; }
grep -q '^counters:$' "$T/statv" && grep -q '^  engine: threads ' "$T/statv" ||
    { show "$T/statv"; fail "rudp-stat --verbose: no counters"; }
echo "ok: rudp-stat --verbose: the counters under 'counters:'"

# 3. the receiver reads; the sender's RUDP_STATS at its exit
touch "$T/go"
rc=0
wait_exit "$SEND" 60 || rc=$?
[ "$rc" = 0 ] || { show "$T/send.log"; fail "the sender exited $rc"; }
rc=0
wait_exit "$RECV" 60 || rc=$?
[ "$rc" = 0 ] || { show "$T/recv.log"; fail "the receiver exited $rc"; }
grep -qx "got $SIZE" "$T/recv.log" || { show "$T/recv.log"; fail "the receiver did not get $SIZE bytes"; }
cat "$T/send.log"
heads=$(grep -c "^[0-9T:.-]*Z rudp\[$SEND\] stats: " "$T/send.log" || true)
[ "$heads" = 1 ] || fail "$heads lines with the 'rudp[$SEND] stats:' prefix, want 1 (the block's first)"
grep -q "^[0-9T:.-]*Z rudp\[$SEND\] stats: the rudp engines' counters (RUDP_STATS):\$" "$T/send.log" ||
    fail "no block header"
# the program's own block (a keeper that finishes its close prints a second)
stats_lines "$T/send.log" "rudp[$SEND]" >"$T/send.stats"
[ "$(wc -l <"$T/send.stats")" -ge 10 ] || fail "the block holds $(wc -l <"$T/send.stats") counter lines"
stream=$(grep '^stream: ' "$T/send.stats") || fail "no stream line"
echo "$stream" | grep -q "^stream: stream bytes sent $SIZE, sent again [0-9]* bytes in [0-9]* packets .*; packets declared lost [0-9]*, probe timeouts [0-9]*" ||
    fail "the stream line does not name what it counts: $stream"
again=$(echo "$stream" | sed -n 's/.*sent again \([0-9]*\) bytes in \([0-9]*\) packets.*/\1 \2/p')
case $again in
"0 0" | [1-9]*" "[1-9]*) ;;
*) fail "bytes sent again and the packets that carried them disagree: $stream" ;;
esac
! grep -q '^dropped: .*memory held' "$T/send.stats" || fail "memory held listed under dropped:"
grep -q '^engine: threads .*memory held [0-9]* bytes' "$T/send.stats" || fail "no memory held on the engine line"
echo "ok: RUDP_STATS: one prefixed line, then the counters; $stream"
# the close line in the same words (a keeper may write it after the exit)
wait_line "$T/send.log" ': closed \(' 20 || fail "no close line from the sender"
grep -Eq ": closed \(.*; bytes sent $SIZE \(and again [0-9]+\), received 0; packets sent [0-9]+, declared lost [0-9]+ \([0-9.]+%\); srtt " "$T/send.log" ||
    fail "the close line does not say what it counts: $(grep ': closed (' "$T/send.log")"
echo "ok: the close line: $(sed -n 's/.*: closed (.*) after [^;]*; //p' "$T/send.log" | head -1)"
