# Shared by the path MTU tests (sourced after lib.sh and shimlib.sh).
#
#   upload MODE RX_NS TX_NS ADDR FILE RATE [CMD...]
#       one connection: pmrx.py listening on ADDR port 9000 in namespace
#       RX_NS, pmtx.py sending FILE from TX_NS, paced at RATE bytes/s (0:
#       unpaced), both under the shim if MODE is shim, kernel TCP if tcp,
#       each with RUDP_STATS=1 and 90 s at most; CMD, if given, runs two
#       seconds in. The sender's log in $T/tx.log (its "sent ..." and
#       "mss N" lines, then the shim's counters), the receiver's in
#       $T/rx.log. False if what arrived is not FILE, else the sender's
#       exit status.
#   pm_counter NAME     the figure after NAME in the sender's log ("lowered",
#                       "found", "taken", "datagrams out"...)

PM_DIR=$(dirname "$0")

upload() {
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

pm_counter() {
    grep -o "$1 [0-9]*" "$T/tx.log" | head -1 | awk '{ print $NF }'
}
