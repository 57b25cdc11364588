# Shared by the path MTU tests (t_pmtu_paths.sh, t_pmtu_blackhole.sh,
# t_pmtu_wireguard.sh) and bench B21 (integration/bench/b21_mtu.sh).
# Sourced after lib.sh (and shimlib.sh where an upload runs under the
# shim); POSIX sh.
#
#   pm_upload MODE RX_NS TX_NS ADDR FILE RATE [CMD...]
#       one connection: pmrx.py listening on ADDR port 9000 in namespace
#       RX_NS, pmtx.py sending FILE from TX_NS, paced at RATE bytes/s (0:
#       unpaced), both under the shim if MODE is shim (RUDP_FALLBACK=none),
#       kernel TCP if tcp, each with RUDP_STATS=1 and 90 s at most; CMD, if
#       given, runs two seconds in. The sender waits until every byte is
#       acknowledged, then logs its final TCP_MAXSEG (under the shim:
#       rudp's datagram size). Its log in $T/tx.log ("sent ..." and
#       "mss N" lines, then the shim's counters), the receiver's in
#       $T/rx.log. False if what arrived is not FILE, else the sender's
#       exit status
#   pm_run MODE ADDR FILE [RATE [MTU_AFTER_2S]]
#       pm_upload from namespace $A to $B; with MTU_AFTER_2S the caller's
#       `mtu` function is called with it two seconds in
#   pm_pair DEV_A DEV_B NET4 [NET6]
#       namespaces $A and $B, lo up in each, joined by a veth pair (DEV_A in
#       $A, DEV_B in $B, down): NET4.1/24 and NET4.2/24 on them, and NET6::1/64
#       and NET6::2/64 if given
#   pm_nofrag TABLE NS...
#       in each NS, nftables table inet TABLE drops every IP fragment (IPv4
#       and IPv6) as it arrives, before reassembly, and counts it
#   pm_packets TABLE NS...
#       the packets the counters of table inet TABLE saw so far, all NS
#       together (for pm_nofrag's tables: the fragments dropped)
#   pm_counter NAME
#       the number after NAME in the sender's log ("raised", "lowered",
#       "found", "taken", "bytes out", "datagrams out"...)
PM_DIR="$ROOT/integration/tests/paths"

pm_upload() {
    _ldp=""; [ "$1" = shim ] && _ldp="$(shim_preload)"
    _rxns=$2 _txns=$3 _addr=$4 _file=$5 _rate=$6
    shift 6
    rm -f "$T/out"
    ip netns exec "$_rxns" env LD_PRELOAD="$_ldp" RUDP_FALLBACK=none RUDP_STATS=1 \
        timeout 90 "$PY" "$PM_DIR/pmrx.py" "$_addr" 9000 "$T/out" >"$T/rx.log" 2>&1 &
    _rx=$!
    PIDS="$PIDS $_rx"
    _w=0
    while ! ip netns exec "$_rxns" ss -Hlntu | grep -q ':9000 '; do
        _w=$((_w + 1)); [ $_w -lt 500 ] || fail "no listener"; sleep 0.02
    done
    ip netns exec "$_txns" env LD_PRELOAD="$_ldp" RUDP_FALLBACK=none RUDP_STATS=1 \
        timeout 90 "$PY" "$PM_DIR/pmtx.py" "$_addr" 9000 "$_file" "$_rate" >"$T/tx.log" 2>&1 &
    _tx=$!
    PIDS="$PIDS $_tx"
    if [ $# -gt 0 ]; then sleep 2; "$@"; fi
    _rc=0; wait $_tx || _rc=$?
    wait $_rx || true
    cmp -s "$T/out" "$_file" || { tail -5 "$T/tx.log" "$T/rx.log" >&2; return 1; }
    return $_rc
}

pm_run() {
    if [ -n "${5:-}" ]; then pm_upload "$1" "$B" "$A" "$2" "$3" "${4:-0}" mtu "$5"
    else pm_upload "$1" "$B" "$A" "$2" "$3" "${4:-0}"; fi
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

pm_packets() {
    _tb=$1
    shift
    for _n in "$@"; do ip netns exec "$_n" nft list table inet "$_tb"; done |
        awk '/counter packets/ { for (i = 1; i <= NF; i++) if ($i == "packets") s += $(i + 1) } END { print s + 0 }'
}

pm_counter() {
    grep -o "$1 [0-9]*" "$T/tx.log" | head -1 | awk '{ print $NF }'
}
