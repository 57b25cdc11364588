#!/bin/sh
# tests/prog_pktinfo.c over kernel TCP and then under the shim (run_both):
# wildcard listeners (0.0.0.0 and a dual-stack ::) reached at 127.0.0.1,
# at 127.0.0.2 (local on lo too, but not the route's preferred source) and
# at ::1: each accepted socket's getsockname() is the address the client
# connected to, and 64 KiB cross each connection; IP_TOS / IPV6_TCLASS and
# the hop limit set on accepted sockets are read back.
#
# Then, under the shim only, a capture of one connection to 127.0.0.2
# (`prog_pktinfo marked PORT`; the listener has no IP_TOS, the
# accepted socket IP_TOS 0x28 and IP_TTL 9): every datagram from the
# listener's port leaves from 127.0.0.2 (IP_PKTINFO: the kernel's routing
# would pick 127.0.0.1), with TOS 0x00 and TTL 64 until the app set them on
# the accepted socket and 0x28 and 9 from then on, closing handshake
# included (per-datagram IP_TOS and IP_TTL: the listener's UDP socket,
# shared by its connections, stays unmarked).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_pktinfo
run_both pktinfo "$BIN/prog_pktinfo"

[ "$SHIM_MODE" = shim ] || skip "the capture needs the shim"

P=$(free_port)
capture_start cap "$P"
ts=$CAPTURE_PID

run_app "$BIN/prog_pktinfo" marked "$P" >"$T/marked.out" 2>&1 || { cat "$T/marked.out"; fail "prog_pktinfo marked failed"; }
cat "$T/marked.out"
assert_transport "$T/marked.out"

capture_stop "$T/cap.pcapng" "$P" "$ts"
tshark -r "$T/cap.pcapng" -Y '!(frame contains "rudp-capture-")' -T fields -e ip.src -e udp.srcport \
    -e udp.dstport -e ip.dsfield -e ip.ttl >"$T/dgrams" 2>/dev/null || fail "tshark could not read the capture"
srv=$(awk -v p="$P" '$2 == p' "$T/dgrams" | wc -l)
srcs=$(awk -v p="$P" '$2 == p { print $1 }' "$T/dgrams" | sort | uniq -c | sed 's/^ *//' | tr '\n' ' ')
seq=$(awk -v p="$P" '$2 == p { print $4 }' "$T/dgrams" | uniq | tr '\n' ' ')
ttls=$(awk -v p="$P" '$2 == p { print $5 }' "$T/dgrams" | uniq | tr '\n' ' ')
dttl=$(cat /proc/sys/net/ipv4/ip_default_ttl)
echo "capture: $srv datagrams from the listener's port; sources: $srcs; TOS in turn: $seq; TTL in turn: $ttls"
[ "$srv" -ge 4 ] || { cat "$T/dgrams"; fail "too few datagrams captured"; }
[ "$(awk -v p="$P" '$2 == p && $1 != "127.0.0.2"' "$T/dgrams" | wc -l)" = 0 ] ||
    { cat "$T/dgrams"; fail "datagrams of a connection to 127.0.0.2 left from another address"; }
echo "ok: every datagram of the connection to 127.0.0.2 left from 127.0.0.2"
[ "$seq" = "0x00 0x28 " ] ||
    { cat "$T/dgrams"; fail "TOS of the accepted connection's datagrams: '$seq', want 0x00 then 0x28"; }
echo "ok: the accepted connection's datagrams carry TOS 0x00, then 0x28 once set on the accepted socket"
[ "$ttls" = "$dttl 9 " ] ||
    { cat "$T/dgrams"; fail "TTL of the accepted connection's datagrams: '$ttls', want $dttl then 9"; }
echo "ok: the accepted connection's datagrams carry TTL $dttl, then 9 once set on the accepted socket"
