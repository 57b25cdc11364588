#!/bin/sh
# Two namespaces joined by a veth pair (no emulator), nftables counting and
# dropping in the server's namespace b:
#   1. Both ends under the shim (a web server and curl): the fetch goes over
#      rudp: nftables counts UDP datagrams to the port and not one TCP
#      segment, and the client's stats count no fallback. (No silent
#      fallback when both ends run the shim.)
#   2. A plain web server (kernel TCP, no shim) whose UDP port nftables
#      drops (no ICMP: the rudp handshake goes unanswered): a python client
#      under the shim makes a non-blocking connect (asyncio: its epoll
#      registration is made while the connect is in progress) and then a
#      blocking one; curl under the shim then fetches too. All get the file
#      over kernel TCP after the probe delay; the time of each is printed;
#      the log says why, the stats count it (the python's second connect
#      remembered), and nftables saw the dropped rudp datagrams.
#   3. The server of part 1 (under the shim) once nftables drops its UDP:
#      both ends run the shim but the network carries no UDP, so curl
#      falls back to kernel TCP after the probe delay, and the server's
#      dual listener takes it as a plain client (RUDP_ACCEPT_TCP).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/emu/netns.sh"
need_netns "the link emulator's namespaces"
[ "$SHIM_MODE" = shim ] || skip "RUDP_FALLBACK needs the shim; nothing to run over kernel TCP"
command -v nft >/dev/null || fail "nft missing (nftables: make test installs it)"

mkdir "$T/www"
head -c 1048576 /dev/urandom >"$T/www/f.bin"
want=$(sha "$T/www/f.bin")
EMU_IPV6=0 emu_up cx veth veth
SS_NS=$EMU_NS_B
B=$EMU_IP_B

# a counting (and for the plain server's port, dropping) table in b; it
# goes with the namespace
emu_b nft add table inet rudpt
emu_b nft 'add chain inet rudpt in { type filter hook input priority 0; }'
count() { # PROTO PORT: packets nftables counted to that port in b
    emu_b nft list chain inet rudpt in |
        sed -n "s/.*$1 dport $2 counter packets \\([0-9]*\\) .*/\\1/p" | head -1
}
# in namespace a, under the shim (curl gets the regular shim in ASan runs)
shim_a() {
    ip netns exec "$EMU_NS_A" timeout -k 5 60 env "LD_PRELOAD=$(app_ldp "$1")" \
        "ASAN_OPTIONS=$APP_ASO" RUDP_LOG=info RUDP_STATS=1 "$@"
}

# 1. both under the shim
P1=$(free_port)
emu_b nft add rule inet rudpt in tcp dport "$P1" counter
emu_b nft add rule inet rudpt in udp dport "$P1" counter
emu_bg b shimhttp env "LD_PRELOAD=$APP_LDP" "ASAN_OPTIONS=$APP_ASO" \
    "$PY" -m http.server --bind "$B" --directory "$T/www" "$P1"
wait_udp "$P1" 20
rc=0
shim_a curl -sS --fail -o "$T/got1" "http://$B:$P1/f.bin" 2>"$T/c1.err" || rc=$?
[ "$rc" = 0 ] || { show "$T/c1.err" "$EMU_DIR/shimhttp.log"; fail "both under the shim: curl exited $rc"; }
[ "$(sha "$T/got1")" = "$want" ] || fail "both under the shim: sha256 differs"
tcp=$(count tcp "$P1") udp=$(count udp "$P1")
[ "$tcp" = 0 ] || fail "both under the shim: nftables counted $tcp TCP segments to port $P1"
[ "${udp:-0}" -gt 0 ] || fail "both under the shim: no UDP datagram counted to port $P1 (counter broken?)"
grep -q "fallback to kernel TCP: connects 0 " "$T/c1.err" ||
    { show "$T/c1.err"; fail "both under the shim: the client's stats count a fallback"; }
echo "ok: both under the shim: 1 MiB over rudp, $udp UDP datagrams and $tcp TCP segments to port $P1"

# 2. a plain server, its UDP port dropped
P2=$(free_port)
emu_b nft add rule inet rudpt in udp dport "$P2" counter drop
emu_bg b plainhttp "$PY" -m http.server --bind "$B" --directory "$T/www" "$P2"
wait_tcp "$P2" 20
rc=0
shim_a "$PY" "$(dirname "$0")/fbclient.py" "$B" "$P2" /f.bin asyncio,blocking \
    >"$T/py.out" 2>"$T/py.err" || rc=$?
[ "$rc" = 0 ] || { show "$T/py.out" "$T/py.err"; fail "python client exited $rc"; }
grep -q "^asyncio [0-9]* 1048576$" "$T/py.out" || { show "$T/py.out" "$T/py.err"; fail "asyncio fetch"; }
grep -q "^blocking [0-9]* 1048576$" "$T/py.out" || { show "$T/py.out" "$T/py.err"; fail "blocking fetch"; }
grep -q "connect to $B:$P2: no rudp answer within the probe delay; trying kernel TCP" "$T/py.err" ||
    { show "$T/py.err"; fail "python: no log line saying rudp went unanswered"; }
grep -q "fallback to kernel TCP: connects 1 (rudp refused 0, unanswered 1), remembered 1;" \
    "$T/py.err" || { show "$T/py.err"; fail "python: want 1 unanswered-then-TCP connect, 1 remembered"; }
echo "ok: UDP dropped, python under the shim: $(tr '\n' ';' <"$T/py.out") (ms, bytes): asyncio over kernel TCP after the probe delay, the blocking connect remembered"
rc=0
ttfb=$(shim_a curl -sS --fail -o "$T/got2" -w '%{time_connect} %{time_starttransfer}' \
    "http://$B:$P2/f.bin" 2>"$T/c2.err") || rc=$?
[ "$rc" = 0 ] || { show "$T/c2.err"; fail "UDP dropped: curl exited $rc"; }
[ "$(sha "$T/got2")" = "$want" ] || fail "UDP dropped: curl: sha256 differs"
grep -q "connected over kernel TCP" "$T/c2.err" || { show "$T/c2.err"; fail "curl: no fallback logged"; }
dropped=$(count udp "$P2")
[ "${dropped:-0}" -gt 0 ] || fail "nftables dropped no rudp datagram to port $P2"
echo "ok: UDP dropped, curl under the shim: connect ${ttfb% *}s, first byte ${ttfb#* }s, sha256 equal; $dropped rudp datagrams dropped by nftables"

# 3. both under the shim, UDP blocked
emu_b nft add rule inet rudpt in udp dport "$P1" drop
rc=0
t=$(shim_a curl -sS --fail -o "$T/got3" -w '%{time_connect}' "http://$B:$P1/f.bin" \
    2>"$T/c3.err") || rc=$?
[ "$rc" = 0 ] || { show "$T/c3.err"; fail "UDP blocked between two shim hosts: curl exited $rc"; }
[ "$(sha "$T/got3")" = "$want" ] || fail "UDP blocked: sha256 differs"
grep -q "no rudp answer within the probe delay; trying kernel TCP" "$T/c3.err" ||
    { show "$T/c3.err"; fail "UDP blocked: no fallback logged"; }
tcp=$(count tcp "$P1")
[ "${tcp:-0}" -gt 0 ] || fail "UDP blocked: no TCP segment reached the dual listener"
echo "ok: UDP blocked between two shim hosts: curl fell back to kernel TCP (connect ${t}s), the dual listener served it ($tcp TCP segments)"
