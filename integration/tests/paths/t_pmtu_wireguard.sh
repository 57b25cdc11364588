#!/bin/sh
# Path MTU inside a real WireGuard tunnel (issue 44, done-when 3): two
# network namespaces joined by a veth pair (MTU 1500), Debian's
# wireguard-go in each making the tunnel's device (MTU 1420, its default:
# 1500 less the 80 bytes WireGuard adds over IPv6), keys from `wg genkey`,
# peers set with `wg set`. A 20 MB upload to the far end's tunnel address,
# over IPv4 and over IPv6 inside the tunnel, kernel TCP first (its time
# printed, for reference), then under the shim (asserted):
#   - the upload arrives intact;
#   - no IP fragment was made or reassembled in either namespace (Ip and
#     Ip6 FragCreates, FragOKs, ReasmReqds stay where they were): neither
#     rudp's datagrams inside the tunnel nor wireguard-go's own UDP outside
#     it (1420 + 80 fits the veth's 1500). Before issue 44 every full rudp
#     datagram was 1,428 bytes on the wire, larger than the tunnel: each
#     was cut in two, twice the packets, and the loss of either piece lost
#     both;
#   - the size grew past the 1,200-byte base toward what the tunnel carries
#     (1420 - 28 over IPv4, 1420 - 48 over IPv6): the sender's counters show
#     a size raised, and datagrams larger than the base reached the far
#     end's tunnel device whole (an nftables counter there).
# No figure of speed is asserted: goodput beside kernel TCP's is bench B21.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/tests/paths/pmlib.sh"
. "$ROOT/integration/lib/wglib.sh"
own_netns "two network namespaces joined by a veth pair, a WireGuard tunnel between them"
command -v nft >/dev/null 2>&1 || skip "no nft (nftables) here"
[ "$SHIM_MODE" = shim ] || skip "the point is the shim's datagram size; kernel TCP runs inside"

A=pwga$$
B=pwgb$$
# wireguard-go's control socket is /var/run/wireguard/DEV.sock, one
# directory for every namespace: the devices get names of this run's own
WA=wga$$
WB=wgb$$
gone() {
    wg_down
    ip netns del "$A" 2>/dev/null; ip netns del "$B" 2>/dev/null
    rm -f "/var/run/wireguard/$WA.sock" "/var/run/wireguard/$WB.sock"
    cleanup
}
trap gone EXIT INT TERM
pm_pair pwga pwgb 10.78.0
ip -n "$A" link set pwga mtu 1500 up
ip -n "$B" link set pwgb mtu 1500 up

wg_pair "$A" "$B" "$WA" "$WB" 10.78.0.1 10.78.0.2 || skip "$WG_ERR"
mtu=$(wg_mtu "$A" "$WA")
echo "tunnel: wireguard-go $(wireguard-go --version 2>/dev/null | sed -n 's/^wireguard-go //p'), $WA and $WB, MTU $mtu, over a veth of MTU 1500"
[ "$mtu" = 1420 ] || fail "the tunnel's MTU is $mtu, not wireguard-go's 1420"
# datagrams to the receiver's port larger than the base, as they reach the
# far end's tunnel device (after wireguard-go decrypted them)
ip netns exec "$B" nft -f - <<EOF || fail "nft"
table inet pmtu_wg {
  chain in { type filter hook prerouting priority -450;
    iifname "$WB" udp dport 9000 ip length > 1228 counter;
    iifname "$WB" udp dport 9000 ip6 length > 1208 counter; }
}
EOF
big() { pm_packets pmtu_wg "$B"; } # datagrams beyond the base that reached the far end so far
frags() { # fragments made, sent whole, reassembled, in both namespaces
    for n in "$A" "$B"; do ip netns exec "$n" cat /proc/net/snmp; done | awk '
        /^Ip: Forwarding/ { for (i = 2; i <= NF; i++) h[i] = $i; next }
        /^Ip: / { for (i = 2; i <= NF; i++) if (h[i] ~ /^(FragCreates|FragOKs|ReasmReqds)$/) s += $i }
        END { print s + 0 }'
    for n in "$A" "$B"; do ip netns exec "$n" cat /proc/net/snmp6; done |
        awk '$1 ~ /^Ip6(FragCreates|FragOKs|ReasmReqds)$/ { s += $2 } END { print s + 0 }'
}
head -c 20000000 /dev/urandom >"$T/p20" || fail "payload"

for case in "10.79.0.2 1392" "fd79::2 1372"; do
    set -- $case
    pm_run tcp "$1" "$T/p20" || fail "kernel TCP to $1 through the tunnel: not intact"
    echo "kernel TCP to $1: $(grep '^sent' "$T/tx.log")"
    f0=$(frags) b0=$(big)
    pm_run shim "$1" "$T/p20" || fail "shim to $1 through the tunnel: not intact"
    echo "shim to $1: $(grep '^sent' "$T/tx.log")"
    grep -E 'pmtu:|datagrams:' "$T/tx.log"
    f1=$(frags) b1=$(big)
    echo "IP fragments (Ip, Ip6: FragCreates + FragOKs + ReasmReqds, both namespaces): $(echo $f0) before, $(echo $f1) after"
    [ "$f1" = "$f0" ] || fail "to $1 through the tunnel: IP fragments made or reassembled"
    [ "$(pm_counter raised)" -gt 0 ] || fail "to $1: the size was never raised past the base"
    out=$(pm_counter "bytes out"); n=$(pm_counter "datagrams out")
    [ -n "$n" ] && [ "$n" -gt 0 ] || fail "no datagram counters"
    echo "to $1: $n datagrams, $((out / n)) bytes of payload on average (the tunnel carries $2); $((b1 - b0)) larger than the base reached $WB"
    [ $((b1 - b0)) -gt 1000 ] || fail "to $1: only $((b1 - b0)) datagrams beyond the base reached the far end"
    [ $((out / n)) -gt 1300 ] && [ $((out / n)) -le "$2" ] ||
        fail "to $1: datagrams average $((out / n)) bytes, not between 1300 and $2"
done
echo "ok: intact through WireGuard over IPv4 and IPv6, no IP fragment, datagrams beyond the base"
