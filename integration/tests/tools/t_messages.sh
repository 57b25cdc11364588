#!/bin/sh
# What the shim says, where a person would look (issue 12): wall-clock
# timestamps and the pid on every line; a failed connect named with its
# peer and likely cause when only one side runs the shim (a plain TCP
# server: ICMP port unreachable and a TCP listener here, at warn since
# issue 43; a refusal with nothing there is at info, since issue 34)
# or UDP goes unanswered (a warning at 3 s,
# then the failure at the connect timeout); one info line per connection
# at open and close, with one name for the connection; packet types by
# name in debug lines; RUDP_STATS after SIGTERM and SIGHUP (and not
# instead of a program's own handler), and from a keeper ("rudp-keeper[PID]"
# on its lines, its counters said to be its own and the program's).
. "$(dirname "$0")/../../lib/lib.sh"

LDP=$(shim_preload)
# The connect failures below are rudp's own (RUDP_FALLBACK=none): with the
# fallback a plain server would be reached over kernel TCP and an unanswered
# port refused by TCP; the fallback's own lines are t_fallback_refused's.
export RUDP_FALLBACK=none
# sanitizer builds: programs that leak at exit (python) are not ours to fix
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}"
ISO='^[0-9]\{4\}-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]\.[0-9]\{3\}Z rudp\[[0-9][0-9]*\] '

# --- 1. the server does not run the shim: plain TCP on the port ---------
P=$(free_port)
python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); open(sys.argv[2], "w").close()
s.accept()' "$P" "$T/tcp.ready" &
PIDS="$PIDS $!"
i=0; while [ ! -e "$T/tcp.ready" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
rc=0
# Without the fallback, ICMP port unreachable says only that no rudp
# listener is there; the shim looks at this host's TCP listeners (issue 43)
# and, the plain server found, says so at warn, the default level: kernel
# TCP would have connected. (Where nothing listens at all the refusal stays
# at info, as quiet as TCP's: t_ux_refused_quiet; with the fallback, a plain
# server reached over kernel TCP is said at warn: t_ux_fallback_said.)
echo hi | env LD_PRELOAD="$LDP" timeout 60 nc -N 127.0.0.1 "$P" 2>"$T/oneside.err" || rc=$?
cat "$T/oneside.err"
[ "$rc" != 0 ] || fail "nc under the shim connected to a plain TCP server"
grep -q "${ISO}warn: 127\.0\.0\.1:[0-9]* > 127\.0\.0\.1:$P id [0-9a-f]\{16\}: connect failed: Connection refused: a plain TCP server listens at 127\.0\.0\.1:$P, not rudp (is it running under the shim?); RUDP_FALLBACK=none: no fallback to kernel TCP\$" \
    "$T/oneside.err" || fail "no line naming the peer and the likely cause"
[ "$(grep -c ' warn: ' "$T/oneside.err")" = 1 ] || fail "want one warn line, the refusal's"
echo "ok: one-sided: one warn line names the peer and the cause"

# --- 2. UDP to the port goes unanswered ----------------------------------
# A plain UDP socket holds the port and reads everything: no ICMP comes
# back, and nothing answers the handshake.
P=$(free_port)
python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True: s.recv(2048)' "$P" &
PIDS="$PIDS $!"
wait_udp "$P"
rc=0
env LD_PRELOAD="$LDP" RUDP_CONNECT_TIMEOUT=5s timeout 60 nc -N 127.0.0.1 "$P" </dev/null \
    2>"$T/silent.err" || rc=$?
cat "$T/silent.err"
[ "$rc" != 0 ] || fail "nc connected to a silent UDP port"
grep -q "${ISO}warn: .* > 127\.0\.0\.1:$P id [0-9a-f]*: no answer from 127\.0\.0\.1:$P in 3\.[0-9]* s (.*UDP blocked, or the peer does not run rudp?" \
    "$T/silent.err" || fail "no early warning at 3 s"
grep -q "${ISO}warn: .*: connect failed: no answer from 127\.0\.0\.1:$P in 5\.0 s: UDP blocked, or the peer does not run the shim?\$" \
    "$T/silent.err" || fail "no failure message at the connect timeout"
echo "ok: unanswered UDP: a warning at 3 s, then the failure named"

# --- 3. info lines at open and close; debug lines name packet types ------
P=$(free_port)
head -c 200000 /dev/urandom >"$T/in"
env LD_PRELOAD="$LDP" RUDP_LOG=info timeout 60 nc -l 127.0.0.1 "$P" </dev/null \
    >"$T/out" 2>"$T/srv.err" &
SRV=$!
PIDS="$PIDS $SRV"
wait_udp "$P"
env LD_PRELOAD="$LDP" RUDP_LOG=debug timeout 60 nc -N 127.0.0.1 "$P" <"$T/in" 2>"$T/cli.err" ||
    fail "the sending nc failed: $(tail -3 "$T/cli.err")"
wait "$SRV" || fail "the receiving nc failed: $(tail -3 "$T/srv.err")"
[ "$(sha "$T/out")" = "$(sha "$T/in")" ] || fail "sha256 differs"
# a keeper may finish the sender's close after nc exits: wait for its line
i=0
while ! grep -q ': closed (' "$T/cli.err" && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
grep ' info: ' "$T/srv.err" "$T/cli.err"
cname=$(sed -n "s/.* info: \(.* > 127\.0\.0\.1:$P id [0-9a-f]*\): connected, handshake .*/\1/p" "$T/cli.err")
[ -n "$cname" ] || fail "no info line when the client connected"
grep -q "info: $cname: closed (.*) after .*; bytes sent 200000 (and again [0-9]*), received 0; packets sent [0-9]*, declared lost [0-9]* (.*%); srtt .* ms\$" \
    "$T/cli.err" || fail "no close line under the same name, with the bytes sent"
cport=$(echo "$cname" | sed 's/^127\.0\.0\.1:\([0-9]*\) .*/\1/')
sname=$(sed -n "s/.* info: \(127\.0\.0\.1:$P > 127\.0\.0\.1:$cport id [0-9a-f]*\): accepted, handshake .*/\1/p" "$T/srv.err")
[ -n "$sname" ] || fail "no info line on the server naming the client's address"
grep -q "info: $sname: closed (.*) after .*; bytes sent 0 (and again 0), received 200000;" "$T/srv.err" ||
    fail "no close line on the server with the bytes received"
grep -q "${ISO}debug: udp [0-9]*: send 1200 bytes SYN\(+[A-Z]*\)*\$" "$T/cli.err" ||
    fail "debug lines do not name the SYN"
grep -q "debug: udp [0-9]*: received [0-9]* bytes DATA\(+ACK_NOW\)\?\$" "$T/cli.err" ||
    fail "debug lines do not name DATA packets"
! grep -q "bytes type [0-9]" "$T/cli.err" || fail "a packet type by number"
echo "ok: one info line at open and one at close, one name each; packet types by name"

# --- 4. RUDP_STATS after SIGTERM and SIGHUP --------------------------------
for sig in TERM:15 HUP:1; do
    num=${sig#*:} sig=${sig%:*}
    P=$(free_port)
    # no timeout(1) in between: the signal goes to nc itself (cleanup kills it)
    env LD_PRELOAD="$LDP" RUDP_STATS=1 nc -l 127.0.0.1 "$P" </dev/null \
        >"$T/sig$sig.out" 2>"$T/sig$sig.err" &
    SRV=$!
    PIDS="$PIDS $SRV"
    wait_udp "$P"
    # the client stays connected: the server is mid-connection when killed
    (head -c 100000 /dev/urandom; sleep 30) | env LD_PRELOAD="$LDP" timeout 60 nc 127.0.0.1 "$P" \
        >/dev/null 2>&1 &
    CLI=$!
    PIDS="$PIDS $CLI"
    # the connection is accepted once bytes came through
    i=0
    while [ ! -s "$T/sig$sig.out" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
    [ -s "$T/sig$sig.out" ] || fail "SIG$sig: no bytes reached the server" 
    kill -"$sig" "$SRV"
    rc=0; wait "$SRV" || rc=$?
    kill "$CLI" 2>/dev/null || true
    cat "$T/sig$sig.err"
    want=$((128 + num))
    [ "$rc" = "$want" ] || fail "SIG$sig: nc exited $rc, want $want (killed by the signal)"
    grep -q "${ISO}stats: the rudp engines' counters (RUDP_STATS):\$" "$T/sig$sig.err" &&
        stats_lines "$T/sig$sig.err" | grep -q "^connections: opened 0 accepted 1 " ||
        fail "SIG$sig: no RUDP_STATS with the accepted connection"
    stats_lines "$T/sig$sig.err" |
        grep -q "^loss and rtt: .* of [0-9]* data packets declared lost; mean smoothed RTT" ||
        fail "SIG$sig: no loss and RTT line"
    echo "ok: SIG$sig: RUDP_STATS printed, then the default action (exit $rc)"
done

# A program's own handler stays its own: it sees SIG_DFL until it sets one,
# its handler runs, and the stats come at its normal exit.
env LD_PRELOAD="$LDP" RUDP_STATS=1 timeout 60 python3 -c '
import os, signal, socket, sys
print("before:", signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
signal.signal(signal.SIGTERM, lambda *a: (print("handled"), sys.exit(0)))
os.kill(os.getpid(), signal.SIGTERM)
signal.pause()' >"$T/own.out" 2>"$T/own.err" || fail "python with its own handler: exit $?"
cat "$T/own.out"
grep -qx "before: True" "$T/own.out" || fail "the program saw the shim's handler"
grep -qx "handled" "$T/own.out" || fail "the program's own handler did not run"
stats_lines "$T/own.err" | grep -q "^connections: " || fail "no stats at the handler's exit"
echo "ok: a program's own SIGTERM handler runs; stats at its exit"

# --- 5. a keeper's stats -----------------------------------------------------
# The server (no timeout(1) in between: SIGSTOP must reach it; cleanup
# kills it) is stopped once connected, so what the client then
# writes is unacknowledged when it exits: a keeper carries it on, and
# prints RUDP_STATS at its end where the program's stderr went (a file).
P=$(free_port)
env LD_PRELOAD="$LDP" python3 -c '
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
c, _ = s.accept()
n = 0
while True:
    b = c.recv(65536)
    if not b: break
    n += len(b)
print(n)' "$P" >"$T/kept.out" 2>"$T/kept.srv" &
SRV=$!
PIDS="$PIDS $SRV"
wait_udp "$P"
env LD_PRELOAD="$LDP" RUDP_STATS=1 RUDP_LOG=info timeout 60 python3 -c '
import os, socket, sys, time
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print("connected", flush=True)
for _ in range(1200):
    if os.path.exists(sys.argv[2]): break
    time.sleep(0.05)
c.sendall(b"x" * 300000)' "$P" "$T/stopped" >"$T/kept.cli" 2>"$T/kept.err" &
CLI=$!
PIDS="$PIDS $CLI"
i=0; while ! grep -q connected "$T/kept.cli" && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
grep -q connected "$T/kept.cli" || fail "the client did not connect: $(tail -3 "$T/kept.err")"
kill -STOP "$SRV"
touch "$T/stopped"
rc=0; wait "$CLI" || rc=$?
kill -CONT "$SRV"
[ "$rc" = 0 ] || fail "the client failed ($rc): $(tail -3 "$T/kept.err")"
wait "$SRV" || fail "the server failed: $(tail -3 "$T/kept.srv")"
[ "$(cat "$T/kept.out")" = 300000 ] || fail "the server got $(cat "$T/kept.out") bytes"
kpid=$(sed -n 's/.* info: keeper \([0-9]*\) took over .*/\1/p' "$T/kept.err")
[ -n "$kpid" ] || fail "no keeper took over: $(cat "$T/kept.err")"
i=0
while ! stats_lines "$T/kept.err" "rudp-keeper[$kpid]" | grep -q "^udp: " && [ $i -lt 400 ]; do
    sleep 0.05; i=$((i + 1)); done
grep "rudp-keeper\[$kpid\]" "$T/kept.err"
stats_lines "$T/kept.err" "rudp-keeper[$kpid]" | grep -q "^stream: stream bytes sent 300000," ||
    fail "no RUDP_STATS from the keeper $kpid"
grep -q "rudp-keeper\[$kpid\] stats: keeper of pid [0-9]*: the program's counters" "$T/kept.err" ||
    fail "the keeper's RUDP_STATS do not say whose they are"
! grep -q "rudp\[$kpid\]" "$T/kept.err" || fail "a line of keeper $kpid does not say rudp-keeper"
echo "ok: the keeper $kpid printed RUDP_STATS at its end, as the keeper's"
