#!/bin/sh
# Path MTU (issue 44): two network namespaces over a veth pair whose
# receivers drop every IP fragment (nftables, before reassembly), a 20 MB
# upload each way of setting the MTU, kernel TCP first (its time printed,
# for reference), then under the shim (asserted):
#   - MTU 1280 over IPv4 and over IPv6: the upload arrives intact; no
#     fragment reached either side (rudp's datagrams carry don't-fragment
#     and fit the device) - before, every full datagram was 1,428 bytes on
#     the wire, fragmented and dropped, and nothing arrived;
#   - MTU 9000: intact, and rudp's datagrams average more than 3,000 bytes
#     of payload (the sender's own counters);
#   - MTU 1500 lowered to 1280 on both ends once 20 MB of a 60 MB upload
#     paced at 100 Mbit/s have arrived: intact, and the sender's counters
#     show the size lowered.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/tests/paths/pmlib.sh"
need_netns "two network namespaces joined by a veth pair"
command -v nft >/dev/null 2>&1 || skip "no nft (nftables) here"
[ "$SHIM_MODE" = shim ] || skip "the point is the shim's datagram size; kernel TCP runs inside"

A=pmta$$
B=pmtb$$
gone() { ip netns del "$A" 2>/dev/null; ip netns del "$B" 2>/dev/null; cleanup; }
trap gone EXIT INT TERM
pm_pair pmta pmtb 10.77.0 fd77
pm_nofrag pmtu_frags "$A" "$B"
mtu() { ip -n "$A" link set pmta mtu "$1" up && ip -n "$B" link set pmtb mtu "$1" up; }
frags() { pm_packets pmtu_frags "$A" "$B"; } # fragments dropped on both sides so far
head -c 20000000 /dev/urandom >"$T/p20" || fail "payload"

for case in "1280 10.77.0.2" "1280 fd77::2" "9000 10.77.0.2"; do
    set -- $case
    mtu "$1"
    pm_run tcp "$2" "$T/p20" || fail "kernel TCP at MTU $1 to $2: not intact"
    echo "kernel TCP, MTU $1, $2: $(grep '^sent' "$T/tx.log")"
    f0=$(frags)
    pm_run shim "$2" "$T/p20" || fail "shim at MTU $1 to $2: not intact"
    echo "shim, MTU $1, $2: $(grep '^sent' "$T/tx.log")"
    grep 'pmtu:' "$T/tx.log"
    [ "$(frags)" = "$f0" ] || fail "MTU $1 to $2: $(($(frags) - f0)) IP fragments"
    if [ "$1" = 9000 ]; then
        out=$(pm_counter "bytes out"); n=$(pm_counter "datagrams out")
        [ -n "$n" ] && [ "$n" -gt 0 ] || fail "no datagram counters"
        avg=$((out / n))
        echo "MTU 9000: $n datagrams, $avg bytes of payload on average"
        [ "$avg" -gt 3000 ] || fail "MTU 9000: datagrams average $avg bytes"
    fi
done

head -c 60000000 /dev/urandom >"$T/p60" || fail "payload"
mtu 1500
pm_run tcp 10.77.0.2 "$T/p60" 12500000 1280 || fail "kernel TCP, MTU 1500 -> 1280: not intact"
echo "kernel TCP, MTU 1500 -> 1280 after 20 MB, paced 100 Mbit/s: $(grep '^sent' "$T/tx.log")"
mtu 1500
pm_run shim 10.77.0.2 "$T/p60" 12500000 1280 || fail "shim, MTU 1500 -> 1280: not intact"
echo "shim, MTU 1500 -> 1280 after 20 MB, paced 100 Mbit/s: $(grep '^sent' "$T/tx.log")"
grep 'pmtu:' "$T/tx.log"
[ "$(pm_counter lowered)" -gt 0 ] || [ "$(pm_counter found)" -gt 0 ] || fail "the size was never lowered"
echo "ok: intact at MTU 1280 (IPv4, IPv6) and 9000 with fragments dropped, and across 1500 -> 1280"
