#!/bin/sh
# qlog traces (RUDP_QLOG_DIR) and rudp-plot, over the link emulator:
# 100 Mbit/s, 20 ms each way (40 ms RTT), 1% random loss both ways, a
# 500 KB drop-tail queue, linkemu seed 1. OpenBSD nc at both ends, both
# under the shim with RUDP_QLOG_DIR:
#   1. 4 MB a -> b: one trace per side (<pid>-<cid>-client|server.sqlog),
#      each passing integration/tools/qlog_check.py (every record framed by
#      0x1E and a newline and valid JSON, the qlog 0.3 header, every event's
#      required fields typed, time never decreasing); the sender's has
#      packet_lost, metrics_updated, congestion_state_updated, ACK frames;
#      rudp-plot draws it (the file starts with the PNG signature).
#   2. 1 MB with RUDP_QLOG_MAX=64K: both traces are cut, end with the record
#      saying so, and are at most 64 KiB, that record included.
#   3. RUDP_QLOG_DIR naming a file, or a group-writable directory without
#      the sticky bit: the program's TCP socket is refused (EACCES) by a
#      line naming it; a 1777 one is taken.
# On loopback, python3 programs under the shim:
#   4. a forked child that listens and serves on its own: its trace is
#      written (<child pid>-...-server.sqlog, valid), no qlog warning.
#   5. a client that ends with _exit, its connection in TIME_WAIT: its trace
#      is complete (valid, with the packets it received), not empty.
#   6. 70 connections held at once by one server: 64 server traces, and one
#      log line says later ones are not traced.
# Traces are complete once every process that carried the connections is
# gone (a keeper may carry the sender's past its exit), so the script waits
# for the namespaces to hold no nc before it reads them.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/emu/netns.sh"
need_netns "the link emulator's namespaces"
need_tun "the link emulator"

PORT=7000
SPEC="delay=20,loss=1,rate=100,queue=500k"
LDP=$(shim_preload)
# rudp only: a SYN lost on this 1 % link would, after the probe delay, race
# kernel TCP, and a connection that went TCP leaves no trace to check.
export RUDP_FALLBACK=none
CHECK="python3 $ROOT/integration/tools/qlog_check.py"
PLOT=$TOOLS/rudp-plot
[ -f "$SHIM" ] || fail "shim not built: $SHIM"
command -v gnuplot >/dev/null || fail "gnuplot not installed (integration/deps.sh test)"

emu_up qlog "$SPEC" "$SPEC" 1
echo "link: $SPEC both ways"

# No nc (nor a keeper forked from one) left in either namespace.
wait_no_nc() {
    i=0
    while ip netns pids "$EMU_NS_A" "$EMU_NS_B" 2>/dev/null | while read -r p; do
        case "$(cat /proc/"$p"/comm 2>/dev/null)" in nc | rudp-keeper) echo "$p" ;; esac
    done | grep -q .; do
        i=$((i + 1))
        [ "$i" -lt 600 ] || fail "nc or its keeper still running 30 s after the transfer"
        sleep 0.05
    done
}

# transfer NAME SIZE ENV...: SIZE random bytes a -> b with ENV for both sides.
transfer() {
    name=$1 size=$2
    shift 2
    head -c "$size" /dev/urandom >"$T/$name.in"
    (exec ip netns exec "$EMU_NS_B" timeout -k 5 60 env LD_PRELOAD="$LDP" "$@" \
        nc -l "$EMU_IP_B" "$PORT") </dev/null >"$T/$name.out" 2>"$T/$name.recv.log" &
    recv=$!
    EMU_BG_PIDS="$EMU_BG_PIDS $recv"
    PIDS="$PIDS $recv"
    SS_NS=$EMU_NS_B wait_udp "$PORT" 10
    rc=0
    ip netns exec "$EMU_NS_A" timeout -k 5 60 env LD_PRELOAD="$LDP" "$@" \
        nc -N "$EMU_IP_B" "$PORT" <"$T/$name.in" >/dev/null 2>"$T/$name.send.log" || rc=$?
    [ "$rc" = 0 ] || { cat "$T/$name.send.log" >&2; fail "$name: sending nc exited $rc"; }
    rc=0
    wait "$recv" || rc=$?
    [ "$rc" = 0 ] || { cat "$T/$name.recv.log" >&2; fail "$name: receiving nc exited $rc"; }
    [ "$(sha "$T/$name.out")" = "$(sha "$T/$name.in")" ] || fail "$name: sha256 differs"
    wait_no_nc
}

# one_trace DIR SIDE: the one trace of that side in DIR.
one_trace() {
    n=$(ls "$1" | grep -c -- "-$2\.sqlog$" || true)
    [ "$n" = 1 ] || fail "$n $2 traces in $1, expected 1: $(ls "$1")"
    f=$1/$(ls "$1" | grep -- "-$2\.sqlog$")
    echo "$(basename "$f")" | grep -Eq '^[0-9]+-[0-9a-f]{16}-(client|server)\.sqlog$' ||
        fail "trace name $(basename "$f") is not <pid>-<cid hex>-<side>.sqlog"
    [ "$(stat -c %a "$f")" = 600 ] || fail "$f has mode $(stat -c %a "$f"), not 600"
    echo "$f"
}

# --- 1. a lossy transfer, traced on both sides ------------------------------
mkdir "$T/q1"
transfer big 4000000 RUDP_QLOG_DIR="$T/q1"
cli=$(one_trace "$T/q1" client)
srv=$(one_trace "$T/q1" server)
$CHECK "$cli" --expect transport:packet_sent=2000 --expect transport:packet_received=100 \
    --expect recovery:packet_lost=1 --expect recovery:metrics_updated=100 \
    --expect recovery:congestion_state_updated=1 \
    --expect connectivity:connection_state_updated=3 || fail "the sender's trace fails the check"
$CHECK "$srv" --expect transport:packet_received=2000 --expect transport:packet_sent=100 \
    --expect recovery:metrics_updated=1 || fail "the receiver's trace fails the check"
grep -q '"frame_type":"ack","ack_delay":[0-9.]*,"acked_ranges":\[\[' "$cli" ||
    fail "the sender's trace has no ACK frame with acked_ranges"
grep -q '"vantage_point":{[^}]*"type":"client"' "$cli" || fail "client trace: vantage point not client"
grep -q '"vantage_point":{[^}]*"type":"server"' "$srv" || fail "server trace: vantage point not server"
echo "ok: 4 MB at 1% loss: both traces pass the schema check; the sender's has losses and metrics"

python3 "$PLOT" "$cli" -o "$T/plot.png" || fail "rudp-plot failed"
[ "$(head -c 8 "$T/plot.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
    fail "rudp-plot's output is not a PNG"
echo "ok: rudp-plot wrote a PNG ($(stat -c %s "$T/plot.png") bytes)"

# A hostile trace: strings meant to end gnuplot's quotes and run a command
# are plotted as text; NaN (not JSON) fails the check; an error is one line.
python3 - "$cli" "$T" <<'PY'
import json, sys
src, t = sys.argv[1:]
recs = open(src, "rb").read().split(b"\x1e")[1:]
head = json.loads(recs[0])
evil = "x'\n!touch %s/pwned\nset output '%s/pwned" % (t, t)
head["title"] = evil
state = {"time": 1, "name": "recovery:congestion_state_updated", "data": {"new": evil + '"'}}
rec = lambda o: b"\x1e" + json.dumps(o).encode() + b"\n"
open(t + "/evil.sqlog", "wb").write(rec(head) + rec(state) + b"".join(b"\x1e" + r for r in recs[1:]))
nan = b'{"time":1,"name":"recovery:metrics_updated","data":{"smoothed_rtt":NaN}}\n'
open(t + "/nan.sqlog", "wb").write(b"\x1e" + nan)
open(t + "/nan2.sqlog", "wb").write(rec(head) + b"\x1e" + nan)
PY
python3 "$PLOT" "$T/evil.sqlog" -o "$T/evil.png" >/dev/null || fail "rudp-plot failed on the hostile trace"
[ ! -e "$T/pwned" ] || fail "strings from the trace ran as gnuplot commands"
! $CHECK "$T/nan2.sqlog" 2>"$T/nan.log" || fail "qlog_check took NaN"
grep -q NaN "$T/nan.log" || fail "qlog_check's complaint does not name NaN: $(cat "$T/nan.log")"
rc=0
python3 "$PLOT" "$T/nan.sqlog" 2>"$T/plot_err.log" || rc=$?
[ "$rc" = 1 ] && [ "$(wc -l <"$T/plot_err.log")" = 1 ] ||
    fail "rudp-plot on a file with no header: exit $rc, $(wc -l <"$T/plot_err.log") lines (expected 1, one line)"
echo "ok: a hostile trace's strings stay text; NaN is refused; a runtime error is one line"

# --- 2. the cap -------------------------------------------------------------
mkdir "$T/q2"
transfer capped 1000000 RUDP_QLOG_DIR="$T/q2" RUDP_QLOG_MAX=64K
for side in client server; do
    f=$(one_trace "$T/q2" "$side")
    $CHECK "$f" --cut || fail "$side trace with RUDP_QLOG_MAX=64K is not cut as it should be"
    size=$(stat -c %s "$f")
    last=$(python3 -c 'import sys; print(len(open(sys.argv[1], "rb").read().split(b"\x1e")[-1]) + 1)' "$f")
    [ "$size" -le 65536 ] || fail "$side trace is $size bytes: more than 64 KiB (its last record: $last)"
    echo "ok: $side trace cut at $size bytes (cap 65536, the cut record of $last included)"
done
grep -q "cut at RUDP_QLOG_MAX" "$T/capped.send.log" "$T/capped.recv.log" ||
    fail "no log line says a trace was cut"

# --- 3. a configuration mistake ---------------------------------------------
: >"$T/afile"
rc=0
env LD_PRELOAD="$LDP" RUDP_QLOG_DIR="$T/afile" "$BIN/prog_tcpsocket" 2>"$T/cfg.log" || rc=$?
[ "$rc" = 13 ] || fail "RUDP_QLOG_DIR naming a file: exit $rc, not 13 (EACCES)"
grep -q 'RUDP_QLOG_DIR=' "$T/cfg.log" || fail "the error does not name RUDP_QLOG_DIR: $(cat "$T/cfg.log")"
echo "ok: RUDP_QLOG_DIR naming a file: EACCES, $(cat "$T/cfg.log")"

mkdir -m 775 "$T/gw"
rc=0
env LD_PRELOAD="$LDP" RUDP_QLOG_DIR="$T/gw" "$BIN/prog_tcpsocket" 2>"$T/cfg2.log" || rc=$?
[ "$rc" = 13 ] || fail "RUDP_QLOG_DIR group-writable, not sticky: exit $rc, not 13 (EACCES)"
grep -q 'RUDP_QLOG_DIR=.*sticky' "$T/cfg2.log" || fail "the error does not say why: $(cat "$T/cfg2.log")"
mkdir -m 1777 "$T/sticky"
env LD_PRELOAD="$LDP" RUDP_QLOG_DIR="$T/sticky" python3 -c 'import socket; socket.socket()' ||
    fail "RUDP_QLOG_DIR mode 1777 refused"
echo "ok: a group-writable RUDP_QLOG_DIR without the sticky bit: EACCES, $(cat "$T/cfg2.log"); mode 1777 taken"

# --- loopback programs -------------------------------------------------------
cat >"$T/fork_srv.py" <<'PY'
# A forked child listens and echoes one connection on its own engine.
import os, socket, sys
pid = os.fork()
if pid == 0:
    s = socket.socket()
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen(8)
    c, _ = s.accept()
    c.sendall(c.makefile("rb").read())
    c.close()
    os._exit(0)
print(pid, flush=True)
_, st = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(st))
PY
cat >"$T/echo_cli.py" <<'PY'
# Sends 200 kB, reads the echo; "exit": ends with os._exit (no destructors).
import os, socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
data = os.urandom(200000)
c.sendall(data)
c.shutdown(socket.SHUT_WR)
got = c.makefile("rb").read()
if got != data:
    sys.exit("echo differs: %d of %d bytes" % (len(got), len(data)))
if sys.argv[2:] == ["exit"]:
    os._exit(0)
PY

# --- 4. a forked child's own server -------------------------------------------
P=$(free_port)
mkdir "$T/q4"
env LD_PRELOAD="$LDP" RUDP_QLOG_DIR="$T/q4" timeout -k 5 30 python3 "$T/fork_srv.py" "$P" \
    >"$T/fork.out" 2>"$T/fork.log" &
srvpid=$!
PIDS="$PIDS $srvpid"
wait_udp "$P" 10
env LD_PRELOAD="$LDP" RUDP_QLOG_DIR="$T/q4" timeout -k 5 30 python3 "$T/echo_cli.py" "$P" ||
    fail "echo through the forked child failed"
rc=0
wait "$srvpid" || rc=$?
[ "$rc" = 0 ] || { cat "$T/fork.log" >&2; fail "the forking server exited $rc"; }
child=$(cat "$T/fork.out")
srv=$(one_trace "$T/q4" server)
case "$(basename "$srv")" in "$child"-*) ;; *) fail "server trace $srv is not the child's ($child)" ;; esac
$CHECK "$srv" --expect transport:packet_received=3 || fail "the forked child's trace fails the check"
! grep -q qlog "$T/fork.log" || fail "qlog warnings in the forked server: $(cat "$T/fork.log")"
echo "ok: a forked child's own server wrote its trace ($(basename "$srv")), no warning"

# --- 5. _exit with the connection in TIME_WAIT ---------------------------------
P=$(free_port)
mkdir "$T/q5"
env LD_PRELOAD="$LDP" timeout -k 5 30 python3 "$T/fork_srv.py" "$P" >/dev/null 2>"$T/fork5.log" &
srvpid=$!
PIDS="$PIDS $srvpid"
wait_udp "$P" 10
env LD_PRELOAD="$LDP" RUDP_QLOG_DIR="$T/q5" timeout -k 5 30 python3 "$T/echo_cli.py" "$P" exit ||
    fail "the client ending with _exit failed"
wait "$srvpid" || fail "the server of case 5 failed: $(cat "$T/fork5.log")"
cli=$(one_trace "$T/q5" client)
$CHECK "$cli" --expect transport:packet_received=3 --expect transport:packet_sent=3 ||
    fail "the trace of a client that ended with _exit is incomplete"
grep -q '"rudp_new":"TIME_WAIT"' "$cli" || fail "the _exit client's trace does not reach TIME_WAIT"
echo "ok: a client ending with _exit wrote its whole trace ($(stat -c %s "$cli") bytes)"

# --- 6. at most 64 traces at once -------------------------------------------------
cat >"$T/many_srv.py" <<'PY'
# Accepts N connections, holds them all, then closes them.
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(128)
held = [s.accept()[0] for _ in range(int(sys.argv[2]))]
for c in held:
    c.close()
PY
cat >"$T/many_cli.py" <<'PY'
# Opens N connections, then waits for the server to close each.
import socket, sys
cs = [socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
      for _ in range(int(sys.argv[2]))]
for c in cs:
    if c.recv(1) != b"":
        sys.exit("data on a held connection")
    c.close()
PY
P=$(free_port)
mkdir "$T/q6"
env LD_PRELOAD="$LDP" RUDP_QLOG_DIR="$T/q6" timeout -k 5 60 python3 "$T/many_srv.py" "$P" 70 \
    2>"$T/many.log" &
srvpid=$!
PIDS="$PIDS $srvpid"
wait_udp "$P" 10
env LD_PRELOAD="$LDP" timeout -k 5 60 python3 "$T/many_cli.py" "$P" 70 ||
    fail "70 connections at once failed"
wait "$srvpid" || fail "the server of 70 connections failed: $(cat "$T/many.log")"
n=$(ls "$T/q6" | grep -c -- '-server\.sqlog$' || true)
[ "$n" = 64 ] || fail "$n server traces for 70 connections at once, expected 64"
[ "$(grep -c 'connections traced at once' "$T/many.log")" = 1 ] ||
    fail "not one log line about the limit: $(cat "$T/many.log")"
echo "ok: 70 connections at once: 64 traced, one line says so"
