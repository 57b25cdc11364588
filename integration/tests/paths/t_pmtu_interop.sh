#!/bin/sh
# Path MTU against an older peer (issue 44: "a 4fe1127 peer still
# interoperates at the smaller size"). 4fe1127 is the last commit before
# path MTU discovery. Its shim never probes: it sends at once at the
# smaller of its own offer and the peer's (take_peer_params, core/conn.c
# there), and offers 1,400 bytes of UDP payload from a client
# (core/config.c: max_datagram = 1400) but 65000 from a listener
# (shim/interpose/listen.c: loopback_datagram(), "an offer: remote clients
# offer less"). This shim's client offers at most 1,400 in its SYN, with
# RUDP_PKTF_PMTUD (ff213f1, core/wire.h), and its sending ceiling is the
# smaller of its device's (1,472 bytes on a 1500 veth over IPv4, 1,452 over
# IPv6) and the server's offer; a server of this shim probes up to the
# client's offer, or past a flagged 1,400 up to its own ceiling. So:
#   - a new client and an old server: the old server sends at the new
#     client's offer, 1,400, unprobed (before ff213f1 the offer was the
#     device's, 1,472 or 1,452, and an old server sent at that at once: a
#     path narrower than the client's device but wide enough for 1,400
#     stalled); the new client probes up to its own device's size;
#   - an old client and a new server: the new server probes up to the old
#     client's 1,400 (no flag) and never past it.
# The old shim is built from git history once, into build/compat/4fe1127/
# (shimlib.sh's old_shim), and reused; without the history (a shallow
# clone, an exported tarball) the test is skipped.
#
# Two network namespaces over a veth at MTU 1500 (pmlib.sh's pm_pair; not
# loopback: path MTU discovery is off there), every IP fragment dropped on
# arrival (pm_nofrag, as t_pmtu_paths.sh). A 20 MB upload and a 20 MB
# download, over IPv4 and over IPv6, for a new client with an old server
# and an old client with a new server, both ends with RUDP_FALLBACK=none.
# Asserted for each:
#   - what arrived is the file (cmp: byte for byte);
#   - it went over rudp: UDP datagrams arrived at both ends of the veth and
#     no TCP segment with port 9000 did (nftables counters; loopback is
#     not counted, where the old listener's shim sends TCP segments to port
#     9000 of its own); the new side's counters have a pmtu: line and the
#     old side's have none (the old build really ran);
#   - no IP fragment was made, reassembled or dropped in either namespace
#     (/proc/net/snmp, snmp6, pm_nofrag's drops): neither side sent more
#     than the veth carries;
#   - no datagram above 1,400 bytes of UDP payload reached the client
#     (nftables: UDP length above 1408), whichever side is old: the old
#     server's datagrams to a new client, a new server's to an old one;
#   - the new side's size (TCP_MAXSEG under the shim) ends within its
#     ceiling, and where the new side sent the file, at it, raised by a
#     probe: the device's for a new client (1,472 or 1,452, and datagrams
#     above 1,400 bytes reached the old server), 1,400 for a new server;
#     an old server's size is 1,400.
# And first, new with new on the same link (an upload, IPv4): datagrams
# above 1,400 bytes do arrive, so that check can fail.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/tests/paths/pmlib.sh"
OLD=4fe1127
need_netns "two network namespaces joined by a veth pair"
command -v nft >/dev/null 2>&1 || skip "no nft (nftables) here"
[ "$SHIM_MODE" = shim ] || skip "the point is two shims' datagram sizes; kernel TCP runs inside"
old_shim "$OLD"
OLD_LDP=$OLD_SHIM
NEW_LDP=$(shim_preload)

# pm_pair's $A and $B: the client's namespace and the server's
A=pmic$$
B=pmis$$
C=$A S=$B
gone() { ip netns del "$C" 2>/dev/null; ip netns del "$S" 2>/dev/null; cleanup; }
trap gone EXIT INT TERM
pm_pair pmic pmis 10.78.0 fd78
pm_nofrag interop_frags "$C" "$S"
# counted after pm_nofrag's drops (priority -450)
for n in "$C" "$S"; do
    ip netns exec "$n" nft -f - <<'EOF' || fail "nft in $n"
table inet interop {
  counter big {}
  counter udps {}
  counter tcps {}
  chain pre { type filter hook prerouting priority -440;
    iifname "lo" accept
    udp length > 1408 counter name "big"
    meta l4proto udp counter name "udps"
    tcp dport 9000 counter name "tcps"
    tcp sport 9000 counter name "tcps"
  }
}
EOF
done
# gso_max_segs 1: a GSO train is cut into its datagrams before the veth
# (which would carry it whole), so that nftables counts datagrams
ip -n "$C" link set pmic mtu 1500 gso_max_segs 1 up
ip -n "$S" link set pmis mtu 1500 gso_max_segs 1 up
head -c 20000000 /dev/urandom >"$T/p20" || fail "payload"

# packets NS NAME: what the counter NAME of NS's table has counted
packets() {
    ip netns exec "$1" nft list counter inet interop "$2" | awk '$1 == "packets" { print $2 }'
}
# kfrags NS: IP fragments the kernel of NS made or reassembled, v4 and v6
kfrags() {
    ip netns exec "$1" sh -c 'cat /proc/net/snmp /proc/net/snmp6' | awk '
        $1 == "Ip:" && !h { for (i = 2; i <= NF; i++) k[i] = $i; h = 1; next }
        $1 == "Ip:" { for (i = 2; i <= NF; i++) if (k[i] == "FragCreates" || k[i] == "ReasmReqds") s += $i }
        $1 == "Ip6FragCreates" || $1 == "Ip6ReasmReqds" { s += $2 }
        END { print s + 0 }'
}
reset() { for n in "$C" "$S"; do ip netns exec "$n" nft reset counters table inet interop >/dev/null; done; }
mss() { awk '$1 == "mss" { print $2 }' "$1"; }
# raised LOG: the sizes raised by a probe in LOG's pmtu: line
raised() { grep -o 'sizes raised [0-9]*' "$1" | head -1 | awk '{ print $3 }'; }

reset
pm_transfer up "$S" "$NEW_LDP" "$C" "$NEW_LDP" 10.78.0.2 "$T/p20" 0 || fail "new with new: not intact"
echo "new with new, upload, 10.78.0.2: $(grep '^sent' "$T/tx.log"), size $(mss "$T/tx.log"), $(packets "$S" big) datagrams above 1400 bytes"
[ "$(packets "$S" big)" -gt 0 ] || fail "new with new: no datagram above 1400 bytes: the check below proves nothing"

# one PAIR WAY ADDR: PAIR new-old (a new client, an old server) or
# old-new; WAY up (the client sends) or down
one() {
    if [ "$1" = new-old ]; then
        ldp_c=$NEW_LDP ldp_s=$OLD_LDP what="new client, old server"
        # the new client's ceiling: its device's less the headers (the old
        # listener offers 65000)
        case $3 in *:*) ceil=1452 ;; *) ceil=1472 ;; esac
    else
        # the new server's: the old client's offer, without the flag
        ldp_c=$OLD_LDP ldp_s=$NEW_LDP what="old client, new server" ceil=1400
    fi
    if [ "$2" = up ]; then what="$what, upload to $3"; else what="$what, download from $3"; fi
    if [ "$1:$2" = new-old:up ] || [ "$1:$2" = old-new:down ]; then
        new_log=$T/tx.log old_log=$T/rx.log
    else new_log=$T/rx.log old_log=$T/tx.log; fi
    reset
    pm_transfer "$2" "$S" "$ldp_s" "$C" "$ldp_c" "$3" "$T/p20" 0 || fail "$what: not intact"
    size=$(mss "$new_log") old_size=$(mss "$old_log")
    echo "$what: $(grep '^sent' "$T/tx.log"); sizes: new side $size (raised $(raised "$new_log")), old side $old_size; datagrams above 1400 bytes arriving at the client $(packets "$C" big), at the server $(packets "$S" big)"
    grep 'pmtu:' "$new_log" || fail "$what: no pmtu: line in the new side's counters"
    grep -q 'stats: the rudp engines' "$old_log" || fail "$what: no counters from the old side"
    ! grep -q 'pmtu:' "$old_log" || fail "$what: the old side has a pmtu: line: not the $OLD build"
    for n in "$C" "$S"; do
        [ "$(packets "$n" udps)" -gt 0 ] || fail "$what: no UDP datagram arrived in $n"
        [ "$(packets "$n" tcps)" = 0 ] || fail "$what: $(packets "$n" tcps) TCP segments on port 9000 in $n"
        [ "$(pm_packets interop_frags "$n")" = 0 ] || fail "$what: $(pm_packets interop_frags "$n") IP fragments dropped in $n"
        [ "$(kfrags "$n")" = 0 ] || fail "$what: the kernel of $n made or reassembled IP fragments"
    done
    big=$(packets "$C" big)
    [ "$big" = 0 ] || fail "$what: $big datagrams above 1400 bytes of payload reached the client"
    if [ "$1" = new-old ]; then
        [ "$old_size" = 1400 ] || fail "$what: the old server sent at ${old_size:-?} bytes, not the new client's offer of 1400"
    fi
    [ -n "$size" ] || fail "$what: no size from the new side"
    [ "$size" -le "$ceil" ] || fail "$what: the new side ended at $size bytes, past its ceiling of $ceil"
    if [ "$new_log" = "$T/tx.log" ]; then
        [ "$size" = "$ceil" ] || fail "$what: the new side sent at $size bytes, not its ceiling of $ceil"
        [ "$(raised "$new_log")" -gt 0 ] || fail "$what: the new side reached $size bytes without a probe"
    fi
    if [ "$1:$2" = new-old:up ]; then
        [ "$(packets "$S" big)" -gt 0 ] || fail "$what: no datagram above 1400 bytes reached the old server"
    fi
}

for pair in new-old old-new; do
    for addr in 10.78.0.2 fd78::2; do
        for way in up down; do one "$pair" "$way" "$addr"; done
    done
done
echo "ok: a $OLD shim and this one moved 20 MB each way, IPv4 and IPv6, intact, over rudp, unfragmented; nothing above 1400 bytes reached a client, the new side at its ceiling"
