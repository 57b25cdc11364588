# Shared by the path MTU tests (t_pmtu_paths.sh, t_pmtu_blackhole.sh,
# t_pmtu_wireguard.sh, t_pmtu_interop.sh) and bench B21
# (integration/bench/b21_mtu.sh). Sourced after lib.sh (and shimlib.sh
# where an upload runs under the shim); POSIX sh.
#
#   pm_upload MODE RX_NS TX_NS ADDR FILE RATE [CMD...]
#       one connection: pmrx.py listening on ADDR port 9000 in namespace
#       RX_NS, pmtx.py sending FILE from TX_NS, paced at RATE bytes/s (0:
#       unpaced), both under the shim if MODE is shim (RUDP_FALLBACK=none),
#       kernel TCP if tcp, each with RUDP_STATS=1 and 90 s at most; CMD, if
#       given, runs once 20 MB have arrived (1.6 s in at 100 Mbit/s: the
#       transfer's progress, not the clock, as a loaded machine may take
#       seconds to start the programs and CMD must find the connection at
#       its full size), or at once should the sender end first, 60 s at
#       most. The sender waits until every byte is
#       acknowledged, then logs its final TCP_MAXSEG (under the shim:
#       rudp's datagram size). Its log in $T/tx.log ("sent ..." and
#       "mss N" lines, then the shim's counters), the receiver's in
#       $T/rx.log ("received N" and "mss N": its own side's size, then
#       the counters). False if what arrived is not FILE, else the
#       sender's exit status
#   pm_transfer WAY L_NS L_LDP C_NS C_LDP ADDR FILE RATE [CMD...]
#       pm_upload with each side's LD_PRELOAD given (empty: kernel TCP),
#       for an older shim against this one: the listener in namespace L_NS
#       under L_LDP, the client in C_NS under C_LDP; the client sends FILE
#       if WAY is up, the listener if down. The logs are still the
#       sender's ($T/tx.log) and the receiver's ($T/rx.log)
#   pm_run MODE ADDR FILE [RATE [MTU_LATER]]
#       pm_upload from namespace $A to $B; with MTU_LATER the caller's
#       `mtu` function is called with it once 20 MB have arrived
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
    _rxns=$2 _txns=$3
    shift 3
    pm_transfer up "$_rxns" "$_ldp" "$_txns" "$_ldp" "$@"
}

# pm__side NS LDP LOG PROG ARG... (internal): PROG (pmtx.py, pmrx.py) in
# namespace NS under LD_PRELOAD=LDP, in the background, logging to
# $T/LOG.log; its pid in $_pid and $PIDS
pm__side() {
    _sns=$1 _sldp=$2 _slog=$3 _sprog=$4
    shift 4
    # emptied here, not by the background job's redirection, which may come
    # after pm_transfer's wait for "listening" has read the last run's log
    # (a client started before its listener: refused, or a hung transfer)
    : >"$T/$_slog.log"
    ip netns exec "$_sns" env LD_PRELOAD="$_sldp" RUDP_FALLBACK=none RUDP_STATS=1 \
        timeout 90 "$PY" "$PM_DIR/$_sprog" "$@" >"$T/$_slog.log" 2>&1 &
    _pid=$!
    PIDS="$PIDS $_pid"
}

pm_transfer() {
    _way=$1 _lns=$2 _lldp=$3 _cns=$4 _cldp=$5 _addr=$6 _file=$7 _rate=$8
    shift 8
    rm -f "$T/out"
    if [ "$_way" = up ]; then
        pm__side "$_lns" "$_lldp" rx pmrx.py "$_addr" 9000 "$T/out"
        _rx=$_pid _llog=$T/rx.log
    else
        pm__side "$_lns" "$_lldp" tx pmtx.py "$_addr" 9000 "$_file" "$_rate" listen
        _tx=$_pid _llog=$T/tx.log
    fi
    # The listener's own word, not a socket on port 9000: the previous
    # run's socket (a shim's UDP one, its close still being finished) may
    # hold the port for a moment, and a client started on its sight is
    # refused.
    _w=0
    while ! grep -q '^listening' "$_llog" 2>/dev/null; do
        kill -0 "$_pid" 2>/dev/null || { tail -n 5 "$_llog" >&2; fail "the listener exited"; }
        _w=$((_w + 1)); [ $_w -lt 500 ] || fail "no listener"; sleep 0.02
    done
    if [ "$_way" = up ]; then
        pm__side "$_cns" "$_cldp" tx pmtx.py "$_addr" 9000 "$_file" "$_rate"
        _tx=$_pid
    else
        pm__side "$_cns" "$_cldp" rx pmrx.py "$_addr" 9000 "$T/out" connect
        _rx=$_pid
    fi
    if [ $# -gt 0 ]; then
        _w=0
        while [ "$(stat -c %s "$T/out" 2>/dev/null || echo 0)" -lt 20000000 ] &&
            kill -0 "$_tx" 2>/dev/null && [ $_w -lt 3000 ]; do
            _w=$((_w + 1)); sleep 0.02
        done
        "$@"
    fi
    _rc=0; wait $_tx || _rc=$?
    wait $_rx || true
    # on a failure: the logs' ends (the counters) and any warning before
    # them (the engine's "no deadline" line: the notes of issue 46)
    cmp -s "$T/out" "$_file" || {
        tail -n 5 "$T/tx.log" "$T/rx.log" >&2
        grep -h ' warn: ' "$T/tx.log" "$T/rx.log" | head -n 5 >&2
        return 1
    }
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
