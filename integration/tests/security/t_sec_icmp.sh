#!/bin/sh
# Forged ICMP against established connections (issue "harden", finding 4).
# An off-path attacker who knows a connection's 4-tuple (the client's port
# is one of ~28k values: a sweep is a few MB) sends ICMP port unreachable
# messages quoting datagrams of that 4-tuple, to the client's connected UDP
# socket and to the server's listening one. On 8d193eb either resets the
# connection. Kernel TCP checks the quoted segment's sequence number and
# treats such errors as soft once established; we check the quoted
# datagram names a connection ID of ours (core/icmp.c).
# For IPv4 and IPv6 (127.0.0.1, ::1): a transfer under the shim, paused in
# the middle while tests/prog_icmp.c sends 150 forged errors each way, must
# complete intact, and both ends must count the errors as ignored.
# Then the same with "fragmentation needed" / "packet too big" (path MTU
# discovery's input): with IP_RECVERR each sets the socket's pending
# error, which fails the next send whatever it carries; on ea594c3 that
# failure was taken as our own kernel refusing the datagram, and a small
# one (an ACK) failed the connection with EMSGSIZE (shim/engine/udpio.c
# now sends a failed datagram once more: a pending error fails once).
# Nothing may be taken from them ("'too big' taken 0").
# The kernel keeps a "too big" it believes as a route exception for the
# address (600 s): forged to this host's 127.0.0.1 and ::1 they gave every
# later kernel TCP connection over loopback MTU 576 (t_prog_options failed
# in CI). So the test runs in a network namespace of its own where one can
# be made; where not, the "too big" cases are skipped.
. "$(dirname "$0")/../../lib/lib.sh"
need_root "raw sockets"
# a forged "too big" stays in the test's own route cache where it can
apart_netns
[ -x "$BIN/prog_icmp" ] || fail "$BIN/prog_icmp not built (make progs)"
head -c 3000000 /dev/urandom >"$T/data"

cat >"$T/server.py" <<'PY'
import hashlib, socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
c, _ = s.accept()
h, n = hashlib.sha256(), 0
while True:
    b = c.recv(65536)
    if not b:
        break
    h.update(b)
    n += len(b)
print("server: got", n, "sha256", h.hexdigest(), flush=True)
PY
cat >"$T/client.py" <<'PY'
import os, socket, sys, time
addr, port, data, go = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
payload = open(data, "rb").read()
half = len(payload) // 2
s = socket.socket(fam, socket.SOCK_STREAM)
s.connect((addr, port))
s.sendall(payload[:half])
print("client: first half sent", flush=True)
for _ in range(600):  # bounded: 60 s
    if os.path.exists(go):
        break
    time.sleep(0.1)
else:
    sys.exit("client: never told to go on")
if len(sys.argv) > 5:  # slow: the second half over ~0.5 s, sends and ACKs all along
    for o in range(half, len(payload), 16384):
        s.sendall(payload[o:o + 16384])
        time.sleep(0.005)
else:
    s.sendall(payload[half:])
s.shutdown(socket.SHUT_WR)
s.recv(1)
print("client: done", flush=True)
PY

icase() { # icase ADDR NAME [MTU]: NAME keeps each case's logs apart; MTU: "too big"
    a=$1 k=$2 mtu=${3:-}
    P=$(free_port)
    rm -f "$T/go"
    start_bg "srv$k" under_shim env RUDP_STATS=1 python3 "$T/server.py" "$a" "$P"
    SRV=$LAST_PID
    wait_udp "$P"
    # shellcheck disable=SC2086
    start_bg "cli$k" under_shim env RUDP_STATS=1 python3 "$T/client.py" "$a" "$P" "$T/data" "$T/go" \
        ${mtu:+slow}
    CLI=$LAST_PID
    i=0; until grep -q 'first half sent' "$T/cli$k.log"; do
        i=$((i + 1)); [ "$i" -lt 600 ] || { cat "$T/cli$k.log"; fail "$a: the client never sent"; }; sleep 0.05; done
    # the client's connected UDP socket: its port is the 4-tuple's other half
    cport=$(ss -H -nu state established "dport = :$P" | awk '{print $3}' | sed 's/.*[]:]\([0-9]*\)$/\1/' | head -1)
    [ -n "$cport" ] || fail "$a: cannot find the client's UDP port:
$(ss -H -nua "( sport = :$P or dport = :$P )")"
    echo "$a: connection $a:$cport <-> $a:$P; forging ICMP both ways"
    "$BIN/prog_icmp" "$a" "$cport" "$a" "$P" 150 || fail "$a: forging to the client failed"
    "$BIN/prog_icmp" "$a" "$P" "$a" "$cport" 150 || fail "$a: forging to the server failed"
    touch "$T/go"
    if [ -n "$mtu" ]; then
        # "too big" while the second half crosses: a pending error is
        # cleared when the engine reads the error queue, so only one that
        # comes between sends meets a send
        n=0; while kill -0 "$CLI" 2>/dev/null && [ "$n" -lt 40 ]; do
            "$BIN/prog_icmp" "$a" "$cport" "$a" "$P" 500 "$mtu" >/dev/null || fail "$a: forging failed"
            "$BIN/prog_icmp" "$a" "$P" "$a" "$cport" 500 "$mtu" >/dev/null || fail "$a: forging failed"
            n=$((n + 1))
        done
        echo "$a: $((n * 1000)) forged \"too big\" (MTU $mtu) during the second half"
    fi
    i=0; while kill -0 "$SRV" 2>/dev/null || kill -0 "$CLI" 2>/dev/null; do
        i=$((i + 1)); [ "$i" -lt 1200 ] || fail "$a: the transfer did not end"; sleep 0.05; done
    cat "$T/srv$k.log" "$T/cli$k.log"
    grep -q "sha256 $(sha "$T/data")" "$T/srv$k.log" ||
        fail "$a: the transfer did not complete intact: forged ICMP broke the connection"
    grep -q '^client: done' "$T/cli$k.log" || fail "$a: the client did not finish"
    for side in srv cli; do
        ign=$(sed -n 's/.*icmp ignored \([0-9]*\).*/\1/p' "$T/$side$k.log" | tail -1)
        [ -n "$ign" ] && [ "$ign" -ge 150 ] ||
            fail "$a: $side counted ${ign:-no} ignored ICMP errors, want >= 150 (did they arrive?)"
        taken=$(sed -n "s/.*'too big' taken \([0-9]*\).*/\1/p" "$T/$side$k.log" | tail -1)
        [ "${taken:-0}" = 0 ] || fail "$a: $side took $taken forged 'too big' reports"
    done
    echo "ok: $a: forged ICMP ${mtu:+and \"too big\" (MTU $mtu) }errors ignored, the transfer completed intact"
}
icase 127.0.0.1 v4
v6=0
have_ipv6_lo && v6=1
if [ "$v6" = 1 ]; then icase ::1 v6; else skip_ipv6 "forged ICMPv6 errors to ::1"; fi
if [ "${IT_OWN_NETNS:-}" = 1 ]; then
    icase 127.0.0.1 v4big 576
    if [ "$v6" = 1 ]; then icase ::1 v6big 1280; else skip_ipv6 "forged ICMPv6 too big to ::1"; fi
else
    echo "skip: forged \"too big\": no network namespace here, and on the host's loopback it would lower every later connection's route MTU"
fi
