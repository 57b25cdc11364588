# The path MTU tests' upload (sourced by t_pmtu_*.sh after lib.sh; POSIX sh).
#
#   pm_run MODE ADDR FILE [RATE [MTU_AFTER_2S]]
#       one upload of FILE from namespace $A to ADDR port 9000 in namespace
#       $B (pmtx.py to pmrx.py), MODE tcp (kernel TCP) or shim (both ends
#       preloaded, RUDP_STATS=1, RUDP_FALLBACK=none), paced at RATE bytes/s
#       (0: unpaced); with MTU_AFTER_2S the caller's `mtu` function is called
#       with it two seconds in. True if what arrived is FILE and the sender
#       succeeded; the sender's output (its "sent" line, RUDP_STATS) in
#       $T/tx.log, the receiver's in $T/rx.log
#   pm_pair DEV_A DEV_B NET4 [NET6]
#       namespaces $A and $B, lo up in each, joined by a veth pair (DEV_A in
#       $A, DEV_B in $B, down): NET4.1/24 and NET4.2/24 on them, and NET6::1/64
#       and NET6::2/64 if given
#   pm_nofrag TABLE NS...
#       in each NS, nftables table inet TABLE drops every IP fragment (IPv4
#       and IPv6) as it arrives, before reassembly, and counts it
#   pm_frags TABLE NS...
#       the fragments those tables dropped so far, all NS together
#   pm_counter NAME
#       the number after NAME in the sender's log ("raised", "bytes out"...)
PM_RX="$ROOT/integration/tests/paths/pmrx.py"
PM_TX="$ROOT/integration/tests/paths/pmtx.py"

pm_run() {
    _ldp=""; [ "$1" = shim ] && _ldp="$(shim_preload)"
    rm -f "$T/out"
    ip netns exec "$B" env LD_PRELOAD="$_ldp" RUDP_FALLBACK=none RUDP_STATS=1 \
        timeout 90 python3 "$PM_RX" "$2" 9000 "$T/out" >"$T/rx.log" 2>&1 &
    _rx=$!
    PIDS="$PIDS $_rx"
    _i=0
    while ! ip netns exec "$B" ss -Hlntu | grep -q ':9000 '; do
        _i=$((_i + 1)); [ $_i -lt 500 ] || fail "no listener"; sleep 0.02
    done
    ip netns exec "$A" env LD_PRELOAD="$_ldp" RUDP_FALLBACK=none RUDP_STATS=1 \
        timeout 90 python3 "$PM_TX" "$2" 9000 "$3" "${4:-0}" >"$T/tx.log" 2>&1 &
    _tx=$!
    if [ -n "${5:-}" ]; then sleep 2; mtu "$5"; fi
    _rc=0
    wait $_tx || _rc=$?
    wait $_rx || true
    cmp -s "$T/out" "$3" || { tail -5 "$T/tx.log" "$T/rx.log" >&2; return 1; }
    return $_rc
}

pm_pair() {
    ip netns add "$A" && ip netns add "$B" || fail "ip netns add"
    ip link add "$1" netns "$A" type veth peer name "$2" netns "$B" || fail "veth"
    ip -n "$A" addr add "$3.1/24" dev "$1"
    ip -n "$B" addr add "$3.2/24" dev "$2"
    if [ -n "${4:-}" ]; then
        ip -n "$A" addr add "$4::1/64" dev "$1" nodad
        ip -n "$B" addr add "$4::2/64" dev "$2" nodad
    fi
    for _n in "$A" "$B"; do ip -n "$_n" link set lo up; done
}

pm_nofrag() {
    _tb=$1
    shift
    for _n in "$@"; do
        ip netns exec "$_n" nft -f - <<EOF || fail "nft in $_n"
table inet $_tb {
  chain pre { type filter hook prerouting priority -450;
    ip frag-off & 0x3fff != 0 counter drop; exthdr frag exists counter drop; }
}
EOF
    done
}

pm_frags() {
    _tb=$1
    shift
    for _n in "$@"; do ip netns exec "$_n" nft list table inet "$_tb"; done |
        awk '/counter packets/ { for (i = 1; i <= NF; i++) if ($i == "packets") s += $(i + 1) } END { print s + 0 }'
}

pm_counter() {
    grep -o "$1 [0-9]*" "$T/tx.log" | head -1 | awk '{ print $NF }'
}
