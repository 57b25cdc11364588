#!/bin/sh
# A black hole in the middle (issue 44, done-when 2): three network
# namespaces, client - router - server, client and server at MTU 1500 (each
# believes the path carries 1500), the router's link toward the server at
# 1280, the router dropping every IP fragment (nftables, before and after
# its own fragmenting). Each upload runs under kernel TCP first (with
# net.ipv4.tcp_mtu_probing=1 in the client's namespace: without it kernel
# TCP stalls here; its time printed, for reference), then under the shim
# (asserted, timing-free: intact, counters, the size the connection ended
# with from TCP_MAXSEG, which the shim answers with rudp's datagram size):
#   (a) the router's own "fragmentation needed" / "packet too big" dropped
#       (an output-hook rule): nothing tells the client the path is smaller.
#       - 20 MB over IPv4 and over IPv6, the path at 1280 from the start:
#         intact, probes above the path were lost and the size ends within
#         what the router's link carries (1280 less 28 or 48 bytes);
#       - 60 MB over IPv4 paced at 100 Mbit/s, the router's link lowered
#         from 1500 to 1280 once 20 MB have arrived: intact, and the sender's
#         counters show the black hole suspected (two probe timeouts with
#         full-size packets out, everything sent at the base) and found (the
#         old size failed its probes after), and the size ends within 1252.
#   (b) the router's ICMP allowed: the same uploads, and the size follows
#       the ICMP only once validated: the sender counts "'too big' taken"
#       (the quote named its connection and a packet it sent larger than
#       what fits), and the size ends at exactly what the ICMP names (1280
#       less the headers): across the shrink taken as it is, for data
#       larger; at the start probed next (a probe drew it) and answered.
# In both, no IP fragment reached the router (rudp's datagrams carry
# don't-fragment), and the router did object (its ICMP counter moved).
# The router's ICMP comes from the router's own address and quotes the
# datagram as the router got it: that is what the engine's error queue
# reading (shim/engine/engine.c) hands to core/icmp.c.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/tests/paths/pmlib.sh"
need_netns "three network namespaces joined by veth pairs"
command -v nft >/dev/null 2>&1 || skip "no nft (nftables) here"
[ "$SHIM_MODE" = shim ] || skip "the point is the shim's datagram size; kernel TCP runs inside"

C=bhc$$
R=bhr$$
S=bhs$$
gone() { for n in "$C" "$R" "$S"; do ip netns del "$n" 2>/dev/null; done; cleanup; }
trap gone EXIT INT TERM
for n in "$C" "$R" "$S"; do ip netns add "$n" || fail "ip netns add $n"; done
# made inside the namespaces: no name is ever taken in the caller's
ip -n "$C" link add c0 type veth peer name r0 netns "$R" || fail "veth client-router"
ip -n "$R" link add r1 type veth peer name s0 netns "$S" || fail "veth router-server"
ip -n "$C" addr add 10.79.1.1/24 dev c0
ip -n "$R" addr add 10.79.1.2/24 dev r0
ip -n "$R" addr add 10.79.2.1/24 dev r1
ip -n "$S" addr add 10.79.2.2/24 dev s0
ip -n "$C" addr add fd79:1::1/64 dev c0 nodad
ip -n "$R" addr add fd79:1::2/64 dev r0 nodad
ip -n "$R" addr add fd79:2::1/64 dev r1 nodad
ip -n "$S" addr add fd79:2::2/64 dev s0 nodad
for n in "$C" "$R" "$S"; do ip -n "$n" link set lo up; done
ip -n "$C" link set c0 mtu 1500 up
ip -n "$R" link set r0 mtu 1500 up
ip -n "$R" link set r1 mtu 1280 up
ip -n "$S" link set s0 mtu 1500 up
ip -n "$C" route add default via 10.79.1.2
ip -n "$C" -6 route add default via fd79:1::2
ip -n "$S" route add default via 10.79.2.1
ip -n "$S" -6 route add default via fd79:2::1
ip netns exec "$R" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 ||
    fail "forwarding in the router"
ip netns exec "$C" sysctl -qw net.ipv4.tcp_mtu_probing=1 || fail "tcp_mtu_probing"
# Fragments (table bh): those arriving (before any reassembly) and those
# the router would make itself (after routing); its own ICMP (table
# bh_icmp): the output hook, whose rules each case sets (icmp_verdict).
ip netns exec "$R" nft -f - <<'EOF2' || fail "nft"
table inet bh {
  chain pre { type filter hook prerouting priority -450;
    ip frag-off & 0x3fff != 0 counter drop; exthdr frag exists counter drop; }
  chain post { type filter hook postrouting priority 0;
    ip frag-off & 0x3fff != 0 counter drop; exthdr frag exists counter drop; }
}
table inet bh_icmp {
  chain out { type filter hook output priority 0; }
}
EOF2
icmp_verdict() { # accept or drop: the router's "too big"
    ip netns exec "$R" nft flush chain inet bh_icmp out &&
        ip netns exec "$R" nft add rule inet bh_icmp out \
            icmp type destination-unreachable icmp code frag-needed counter "$1" &&
        ip netns exec "$R" nft add rule inet bh_icmp out icmpv6 type packet-too-big counter "$1" ||
        fail "nft: router's ICMP $1"
}
frags() { pm_packets bh "$R"; }      # fragments the router dropped so far
toobig() { pm_packets bh_icmp "$R"; } # its "too big" so far, sent or dropped
head -c 20000000 /dev/urandom >"$T/p20" || fail "payload"
head -c 60000000 /dev/urandom >"$T/p60" || fail "payload"

# run MODE ADDR FILE [RATE [SHRINK]]: one upload client -> server
# (pmlib.sh). SHRINK: the router's link toward the server goes from 1500
# to 1280 once 20 MB have arrived (pmlib.sh).
run() {
    # what the last run taught the client's kernel (a "too big" becomes a
    # route exception): each run starts from the device's MTU
    ip -n "$C" route flush cache 2>/dev/null || true
    ip -n "$C" -6 route flush cache 2>/dev/null || true
    if [ -n "${5:-}" ]; then
        ip -n "$R" link set r1 mtu 1500
        pm_upload "$1" "$S" "$C" "$2" "$3" "${4:-0}" ip -n "$R" link set r1 mtu 1280
    else
        ip -n "$R" link set r1 mtu 1280
        pm_upload "$1" "$S" "$C" "$2" "$3" "${4:-0}"
    fi
}
mss() { awk '/^mss / { print $2 }' "$T/tx.log"; }

for icmp in drop accept; do
    icmp_verdict "$icmp"
    case $icmp in drop) what="(a) router's ICMP dropped" ;; *) what="(b) router's ICMP allowed" ;; esac
    for case in "10.79.2.2 p20" "fd79:2::2 p20" "10.79.2.2 p60 12500000 shrink"; do
        set -- $case
        hdrs=28; case $1 in *:*) hdrs=48 ;; esac
        label="$what, to $1"
        [ -z "${3:-}" ] || label="$label, 60 MB paced at 100 Mbit/s, 1500 -> 1280 after 20 MB"
        run tcp "$1" "$T/$2" "${3:-0}" "${4:-}" || fail "kernel TCP, $label: not intact"
        echo "kernel TCP (tcp_mtu_probing=1), $label: $(grep '^sent' "$T/tx.log"), mss $(mss)"
        f0=$(frags)
        i0=$(toobig)
        run shim "$1" "$T/$2" "${3:-0}" "${4:-}" || fail "shim, $label: not intact"
        echo "shim, $label: $(grep '^sent' "$T/tx.log"), datagram size at the end $(mss)"
        grep 'pmtu:' "$T/tx.log"
        icmps=$(($(toobig) - i0))
        echo "  the router's 'too big' ($icmp): $icmps"
        [ "$(frags)" = "$f0" ] ||
            fail "$label: $(($(frags) - f0)) IP fragments at the router"
        [ "$icmps" -gt 0 ] || fail "$label: the router never objected (no 'too big' from it)"
        m=$(mss)
        [ -n "$m" ] && [ "$m" -ge 1200 ] && [ "$m" -le $((1280 - hdrs)) ] ||
            fail "$label: the datagram size ended at '$m', not within 1200..$((1280 - hdrs))"
        # from the start, sizes above the path were probed and refused;
        # across the shrink, (a) the black hole, (b) data the ICMP named
        [ -n "${4:-}" ] || [ "$(pm_counter 'or too big')" -gt 0 ] ||
            fail "$label: no probe above the path lost or refused"
        if [ "$icmp" = drop ]; then
            [ "$(pm_counter taken)" = 0 ] || fail "$label: a 'too big' taken, none was sent"
            if [ -n "${4:-}" ]; then
                [ "$(pm_counter suspected)" -gt 0 ] || fail "$label: the black hole never suspected"
                [ "$(pm_counter found)" -gt 0 ] || fail "$label: the black hole never found"
            fi
        else
            [ "$(pm_counter taken)" -gt 0 ] || fail "$label: no validated 'too big' taken"
            [ "$m" = $((1280 - hdrs)) ] || fail "$label: the size ended at $m, not the ICMP's"
            if [ -n "${4:-}" ]; then
                [ "$(pm_counter lowered)" -gt 0 ] || fail "$label: the size never lowered"
            fi
        fi
    done
done
echo "ok: intact through a router at 1280 that drops fragments, with and without its ICMP"
