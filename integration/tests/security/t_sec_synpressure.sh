#!/bin/sh
# The one-round-trip handshake and the RETRY under pressure (issue 32), by
# the counters RUDP_STATS prints at exit (core/ctx.c, core/budget.c):
#   1. loopback, a normal connect (python under the shim at both ends): the
#      server answers the SYN with a SYNACK at once ("handshakes: direct 1",
#      "retries sent 0"); then a handshake by rudpraw.py, which counts the
#      datagrams: SYN, SYNACK (syns=1 retries=0). With RUDP_RETRY=always at
#      the server (the handshake before issue 32, and the setting for
#      servers that keep no state for unproven addresses) the same connect
#      takes a RETRY and a second SYN: direct 0, retries 1 (syns=2
#      retries=1).
#   2. (root, a network namespace) a spoofed SYN flood from 10.99.0.0/16
#      (integration/tools/rudpraw.py synflood, as bench B8 sends it) at a
#      server with backlog 16: at most half the backlog (8) of spoofed SYNs
#      are answered at once, the rest get stateless RETRYs (half-open > 0),
#      and a real client connecting during the flood still connects and
#      echoes, through the cookie.
. "$(dirname "$0")/../../lib/lib.sh"
RAW=$ROOT/integration/tools/rudpraw.py

cat >"$T/server.py" <<'PY'
import signal, socket, sys
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))  # a clean exit prints RUDP_STATS
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], int(sys.argv[2])))
l.listen(16)
print("listening", flush=True)
for _ in range(int(sys.argv[3])):
    a, _ = l.accept()
    a.sendall(a.recv(64))
    a.close()
PY
cat >"$T/client.py" <<'PY'
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
c.sendall(b"ping")
got = c.recv(64)
assert got == b"ping", got
c.close()
print("echoed", flush=True)
PY

# stat LOG NAME: the number after NAME in the handshakes line of LOG
stat() { stats_lines "$1" | sed -n "s/^handshakes: .*$2 \([0-9]*\).*/\1/p" | head -1; }
# dgrams LOG: datagrams the process sent (its stats' "datagrams out")
dgrams() { sed -n 's/.*datagrams out \([0-9]*\) in.*/\1/p' "$1" | head -1; }

# --- 1. a normal connect: one round trip ------------------------------------
one() { # MODE (auto, always): one connect, one echo; a raw handshake; the counters
    P=$(free_port)
    start_bg "srv.$1" under_shim env RUDP_STATS=1 RUDP_RETRY="$1" python3 "$T/server.py" \
        127.0.0.1 "$P" 2
    _s=$LAST_PID
    wait_udp "$P"
    under_shim env RUDP_STATS=1 timeout 30 python3 "$T/client.py" 127.0.0.1 "$P" \
        >"$T/cli.$1.out" 2>"$T/cli.$1.log" || { cat "$T/cli.$1.log"; fail "$1: the client failed"; }
    grep -q echoed "$T/cli.$1.out" || fail "$1: no echo"
    python3 "$RAW" handshake 127.0.0.1 "$P" >"$T/raw.$1.out" 2>&1 || true
    echo "$1: rudpraw handshake: $(tail -1 "$T/raw.$1.out")"
    grep -q 'handshake=ok' "$T/raw.$1.out" || fail "$1: rudpraw's handshake failed"
    kill "$_s" 2>/dev/null || true # it waits for the second accept(): the raw client's PING made it
    wait "$_s" || true
    grep -q '^  handshakes:' "$T/srv.$1.log" || { cat "$T/srv.$1.log"; fail "$1: no RUDP_STATS"; }
    echo "$1: server $(grep -o 'handshakes: .*' "$T/srv.$1.log" | head -1)"
    echo "$1: client datagrams out $(dgrams "$T/cli.$1.log"), server datagrams out $(dgrams "$T/srv.$1.log")"
}
one auto
[ "$(stat "$T/srv.auto.log" direct)" = 2 ] || fail "auto: the SYNs were not answered at once"
[ "$(stat "$T/srv.auto.log" 'retries sent')" = 0 ] || fail "auto: a RETRY without pressure"
one always
[ "$(stat "$T/srv.always.log" direct)" = 0 ] || fail "always: a SYN answered without a RETRY"
[ "$(stat "$T/srv.always.log" 'retries sent')" = 2 ] || fail "always: not one RETRY per connect"
grep -q ' retries=0 syns=1 ' "$T/raw.auto.out" || fail "auto: rudpraw's handshake was not SYN, SYNACK"
grep -q ' retries=1 syns=2 ' "$T/raw.always.out" || fail "always: rudpraw's handshake was not SYN, RETRY, SYN, SYNACK"
echo "ok: a connect takes one round trip (direct, no RETRY: SYN, SYNACK), with RUDP_RETRY=always two (SYN, RETRY, SYN, SYNACK)"

# --- 2. a spoofed SYN flood ---------------------------------------------------
if ! can_netns; then
    echo "skip: the spoofed flood needs root and a network namespace"
    exit 0
fi
# In a namespace of its own: the server on 10.98.0.1 (a veth, whose peer
# takes the replies to the spoofed sources: a neighbour entry that never
# answers, so they leave and vanish as on a real link), the flood from a
# raw socket there, and the real client.
cat >"$T/inner.sh" <<EOF2
set -eu
ip link set lo up
ip link add v0 type veth peer name v1
ip addr add 10.98.0.1/24 dev v0
ip link set v0 up
ip link set v1 up
ip neigh add 10.98.0.2 lladdr 02:00:00:00:00:02 dev v0 nud permanent
ip route add 10.99.0.0/16 via 10.98.0.2
env LD_PRELOAD="$(shim_preload)" RUDP_STATS=1 python3 "$T/server.py" 10.98.0.1 5000 1 \
    >"$T/fsrv.out" 2>"$T/fsrv.log" &
srv=\$!
i=0; while ! grep -q listening "$T/fsrv.out" 2>/dev/null && [ \$i -lt 200 ]; do sleep 0.05; i=\$((i + 1)); done
timeout 30 python3 "$RAW" synflood 10.98.0.1 5000 --rate 2000 --seconds 4 --src-net 10.99.0.0/16 \
    >"$T/flood.out" 2>&1 &
fl=\$!
sleep 1 # the flood is on: the listener is under pressure by now
rc=0
env LD_PRELOAD="$(shim_preload)" RUDP_STATS=1 timeout 30 python3 "$T/client.py" 10.98.0.1 5000 \
    >"$T/fcli.out" 2>"$T/fcli.log" || rc=\$?
wait \$fl || true
kill \$srv 2>/dev/null || true
wait \$srv || true
exit \$rc
EOF2
rc=0
unshare -n sh "$T/inner.sh" || rc=$?
cat "$T/flood.out"
grep -o 'handshakes: .*' "$T/fsrv.log" | head -1 | sed 's/^/flood: server /'
[ "$rc" = 0 ] && grep -q echoed "$T/fcli.out" ||
    { cat "$T/fcli.log"; fail "the real client did not connect during the flood"; }
direct=$(stat "$T/fsrv.log" direct) retries=$(stat "$T/fsrv.log" 'retries sent')
halfopen=$(stat "$T/fsrv.log" 'half-open')
[ -n "$direct" ] || { cat "$T/fsrv.log"; fail "no RUDP_STATS from the flooded server"; }
[ "$direct" -le 8 ] || fail "$direct SYNs answered at once: more than half the backlog (8) held by spoofed sources"
[ "$halfopen" -gt 100 ] || fail "only $halfopen RETRYs for pressure: the flood did not reach the server"
echo "ok: under a spoofed SYN flood at most half the backlog was answered at once ($direct), $retries stateless RETRYs ($halfopen for half-open pressure), and a real client connected"
