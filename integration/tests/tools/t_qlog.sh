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
#      saying so, and are at most 64 KiB plus that one record.
#   3. RUDP_QLOG_DIR naming no directory: the program exits 2 naming it.
# Traces are complete once every process that carried the connections is
# gone (a keeper may carry the sender's past its exit), so the script waits
# for the namespaces to hold no nc before it reads them.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/emu/netns.sh"

PORT=7000
SPEC="delay=20,loss=1,rate=100,queue=500k"
LDP=$(shim_preload)
CHECK="python3 $ROOT/integration/tools/qlog_check.py"
PLOT=$ROOT/integration/tools/rudp-plot
[ -f "$SHIM" ] || fail "shim not built: $SHIM"
command -v gnuplot >/dev/null || fail "gnuplot not installed (integration/deps.sh test)"

emu_up qlog "$SPEC" "$SPEC" 1
echo "link: $SPEC both ways"

# No nc (nor a keeper forked from one) left in either namespace.
wait_no_nc() {
    i=0
    while ip netns pids "$EMU_NS_A" "$EMU_NS_B" 2>/dev/null | while read -r p; do
        [ "$(cat /proc/"$p"/comm 2>/dev/null)" = nc ] && echo "$p"
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

# --- 2. the cap -------------------------------------------------------------
mkdir "$T/q2"
transfer capped 1000000 RUDP_QLOG_DIR="$T/q2" RUDP_QLOG_MAX=64K
for side in client server; do
    f=$(one_trace "$T/q2" "$side")
    $CHECK "$f" --cut || fail "$side trace with RUDP_QLOG_MAX=64K is not cut as it should be"
    size=$(stat -c %s "$f")
    last=$(python3 -c 'import sys; print(len(open(sys.argv[1], "rb").read().split(b"\x1e")[-1]) + 1)' "$f")
    [ "$size" -le $((65536 + last)) ] || fail "$side trace is $size bytes: more than 64 KiB + its last record ($last)"
    echo "ok: $side trace cut at $size bytes (cap 65536 + last record $last)"
done
grep -q "cut at RUDP_QLOG_MAX" "$T/capped.send.log" "$T/capped.recv.log" ||
    fail "no log line says a trace was cut"

# --- 3. a configuration mistake ---------------------------------------------
rc=0
env LD_PRELOAD="$LDP" RUDP_QLOG_DIR="$T/missing" python3 -c 'import socket; socket.socket()' \
    2>"$T/cfg.log" || rc=$?
[ "$rc" = 2 ] || fail "RUDP_QLOG_DIR naming no directory: exit $rc, not 2"
grep -q 'RUDP_QLOG_DIR=' "$T/cfg.log" || fail "the error does not name RUDP_QLOG_DIR: $(cat "$T/cfg.log")"
echo "ok: RUDP_QLOG_DIR naming no directory: exit 2, $(cat "$T/cfg.log")"
