# B8: B1's link, bulk goodput without and with a spoofed-source SYN flood
# and a junk-datagram flood at the receiver's port. Sourced by run.sh after
# its helpers (emu_up, bulk_run, snap, srv, nsx, rec, want...); POSIX sh.
#
# The floods start in namespace b and go to b's own address, the
# receiver's port: they reach the server without crossing the emulated
# link, which would measure link sharing rather than the server. The SYN
# flood's sources are spoofed in FLOOD_NET, inside emub's /24: b routes
# its replies to them (rudp RETRY, TCP SYN-ACK) into the TUN, over the
# b->a direction of the link, and a, which does not forward, drops them
# (a's Ip InAddrErrors counts them). The junk flood comes from an ordinary
# UDP socket in b; replies to it stay on b's loopback.
FLOOD_NET=10.99.0.128/25

# bgx NS SECS LOG CMD...: CMD in namespace NS in the background, bounded
# by SECS, no shim; cleaned up by PID. Sets BGX.
bgx() {
    _bns=$1 _bsecs=$2 _blog=$3
    shift 3
    (exec ip netns exec "$_bns" timeout -k 5 "$_bsecs" "$@") >"$_blog" 2>&1 &
    BGX=$!
    EMU_BG_PIDS="$EMU_BG_PIDS $BGX"
    PIDS="$PIDS $BGX"
}

# b8_hook ready|done SPID: bulk_run's hook. "ready": the receiver listens
# on B8_PORT; starts the sampler of the receiver process (timeout's child),
# in a flood run both floods, waits until they send and 0.5 s more (so the
# handshake meets them too), then takes the first snapshot of the counters.
# "done": the sender has returned, i.e. the receiver's window is over; the
# second snapshot. The floods last FLOOD_TIME + 2 s from their start, past
# the window, so the snapshots bracket a transfer under flood throughout.
b8_hook() {
    if [ "$1" = "done" ]; then
        b8_snap 1
        return 0
    fi
    B8_RPID=$(cut -d' ' -f1 "/proc/$2/task/$2/children" 2>/dev/null || true)
    B8_SAMP="" B8_SYN="" B8_JUNK=""
    if [ -n "$B8_RPID" ]; then
        $REPORT sample "$B8_RPID" "$B8_L.sample" $((FLOOD_TIME + 60)) &
        B8_SAMP=$!
        PIDS="$PIDS $B8_SAMP"
    fi
    if [ "$B8_MODE" != base ]; then
        _fsecs=$((FLOOD_TIME + 2))
        # control: nothing listens on port 9 in b.
        _fport=$B8_PORT
        [ "$B8_MODE" = flood ] || _fport=9
        if [ "$FLOOD_SYN" != 0 ]; then
            _proto=""
            case "$B8_TR" in tcp-*) _proto=--tcp ;; esac
            bgx "$EMU_NS_B" $((_fsecs + 30)) "$B8_L.syn" "$PY" "$RAWPY" synflood "$EMU_IP_B" \
                "$_fport" --rate "$FLOOD_SYN" --seconds "$_fsecs" --src-net "$FLOOD_NET" $_proto
            B8_SYN=$BGX
        fi
        if [ "$FLOOD_JUNK" != 0 ]; then
            bgx "$EMU_NS_B" $((_fsecs + 30)) "$B8_L.junk" "$PY" "$RAWPY" junk "$EMU_IP_B" \
                "$_fport" --rate "$FLOOD_JUNK" --seconds "$_fsecs" --kind mix
            B8_JUNK=$BGX
        fi
        # Until both floods say they are sending (bounded), then 0.5 s more.
        _i=0
        while [ "$_i" -lt 200 ]; do
            _n=0
            for _f in "$B8_L.syn" "$B8_L.junk"; do
                [ ! -f "$_f" ] || grep -q '^flooding=' "$_f" || _n=1
            done
            [ "$_n" = 0 ] && break
            sleep 0.05
            _i=$((_i + 1))
        done
        [ "$_i" -lt 200 ] || say "B8: a flood did not start within 10 s (see $B8_L.syn, $B8_L.junk)"
        sleep 0.5
    fi
    b8_snap 0
}

# b8_snap N: linkemu's counters, a's and b's SNMP counters, as snapshot N.
b8_snap() {
    emu_stats
    cp "$EMU_STATS" "$B8_L.emu$1"
    snap "$EMU_NS_A" "$B8_L.snmpa$1"
    snap "$EMU_NS_B" "$B8_L.snmpb$1"
}

# b8 RUN TR PORT MODE: one B8 bulk run, MODE base (no flood), flood, or
# control (the floods at port 9, where nothing listens). Records every
# metric as NAME_MODE (the flood rates as syn_pps, junk_pps in a flood run,
# with _control appended in a control run); the link and SNMP counters cover the
# receiver's window (b8_hook's snapshots), the rudp counters the receiver's
# life, the flood rates the floods' own.
b8() {
    B8_TR=$2 B8_PORT=$3 B8_MODE=$4 B8_L=$LOGS/B8.$2.$1.$4
    rm -f "$B8_L.emu0" "$B8_L.emu1"
    BULK_HOOK=b8_hook
    bulk_run B8 "$1" "$2" "$EMU_NS_B" "$EMU_IP_B" "$3" "$FLOOD_TIME" "$B8_L"
    BULK_HOOK=""
    for _p in $B8_SAMP $B8_SYN $B8_JUNK; do reap "$_p" 30; done
    _m=$4
    rec B8 "$2" "$1" "goodput_$_m" "$G"
    retx B8 "$1" "$2" "$B8_L" "_$_m"
    # The sender's smoothed RTT (TCP_INFO; under the shim, rudp's): a queue
    # anywhere on the path, the receiver's socket and engine included.
    # shellcheck disable=SC2046
    set -- "$1" "$2" $($REPORT kv "$B8_L.send" srtt_mean_ms srtt_max_ms)
    rec B8 "$2" "$1" "srtt_ms_$_m" "$3"
    rec B8 "$2" "$1" "srtt_max_ms_$_m" "$4"
    set -- "$1" "$2"
    case "$2" in
        rudp-*)
            # shellcheck disable=SC2046
            set -- "$1" "$2" $($REPORT rudpstats "$B8_L.err")
            rec B8 "$2" "$1" "retx_pkts_$_m" "$5"
            set -- "$1" "$2"
            ;;
    esac
    eval "B8_G_$_m=\$G"
    if [ -f "$B8_L.emu0" ] && [ -f "$B8_L.emu1" ]; then
        _t0=$(emu_stat time_ns "$B8_L.emu0") _t1=$(emu_stat time_ns "$B8_L.emu1")
        _rb0=$(emu_stat b2a_in_bytes "$B8_L.emu0") _rb1=$(emu_stat b2a_in_bytes "$B8_L.emu1")
        _rq0=$(emu_stat b2a_drop_queue "$B8_L.emu0") _rq1=$(emu_stat b2a_drop_queue "$B8_L.emu1")
        _fq0=$(emu_stat a2b_drop_queue "$B8_L.emu0") _fq1=$(emu_stat a2b_drop_queue "$B8_L.emu1")
        _dt=$(calc "($_t1 - $_t0) / 1e9")
        # The reverse direction (b->a): ACKs, and replies to spoofed sources.
        rec B8 "$2" "$1" "b2a_kbps_$_m" "$(calc "($_rb1 - $_rb0) * 8 / 1000 / $_dt")"
        rec B8 "$2" "$1" "b2a_qdrops_$_m" $((_rq1 - _rq0))
        # The data direction's drop-tail losses (the link has no random loss).
        rec B8 "$2" "$1" "a2b_qdrops_$_m" $((_fq1 - _fq0))
        # shellcheck disable=SC2046
        set -- "$1" "$2" $($REPORT snmp "$B8_L.snmpa0" "$B8_L.snmpa1" Ip.InAddrErrors) \
            $($REPORT snmp "$B8_L.snmpb0" "$B8_L.snmpb1" Udp.RcvbufErrors TcpExt.SyncookiesSent \
                TcpExt.ListenDrops)
        rec B8 "$2" "$1" "spoof_replies_ps_$_m" "$(calc "$3 / $_dt")"
        rec B8 "$2" "$1" "rcvbuf_errs_$_m" "$4"
        rec B8 "$2" "$1" "syncookies_$_m" "$5"
        rec B8 "$2" "$1" "listen_drops_$_m" "$6"
    fi
    # shellcheck disable=SC2046
    set -- "$1" "$2" $($REPORT kv "$B8_L.sample" vmhwm_kb main_cpu_pct other_cpu_pct cpu_busy_pct)
    [ "$3" = NA ] || rec B8 "$2" "$1" "peak_rss_mb_$_m" "$(calc "$3 / 1024")"
    rec B8 "$2" "$1" "app_cpu_pct_$_m" "$4"
    rec B8 "$2" "$1" "engine_cpu_pct_$_m" "$5"
    rec B8 "$2" "$1" "busy_pct_$_m" "$6"
    _what=""
    if [ "$_m" != base ]; then
        _syn=$($REPORT kv "$B8_L.syn" rate) _junk=$($REPORT kv "$B8_L.junk" rate)
        _sfx=""
        [ "$_m" = flood ] || _sfx=_$_m
        rec B8 "$2" "$1" "syn_pps$_sfx" "$_syn"
        rec B8 "$2" "$1" "junk_pps$_sfx" "$_junk"
        rec B8 "$2" "$1" "junk_replies$_sfx" "$($REPORT kv "$B8_L.junk" replies)"
        _what=", SYN $_syn/s, junk $_junk/s"
    fi
    case "$2" in
        rudp-*)
            for _kv in $($REPORT rudpcounters "$B8_L.recv"); do
                rec B8 "$2" "$1" "${_kv%%=*}_$_m" "${_kv#*=}"
            done
            ;;
    esac
    say "B8 run $1/$RUNS $2 $_m: $G Mbit/s$_what"
    sleep 0.5 # the queues drain, the floods' last replies settle
}

if want B8; then
    sc=B8
    r=1
    while [ "$r" -le "$LAST" ]; do
        emu_up bnB8 "$SPEC_B1" "$SPEC_B1" "$r"
        port=5401
        for tr in $(rotate "$r" $(run_trs "$r" $TRS)); do
            # Alternate which comes first, so neither mode always meets a
            # machine just warmed (or just loaded) by the other.
            if [ $((r % 2)) = 1 ]; then modes="base flood"; else modes="flood base"; fi
            [ "$FLOOD_CONTROL" = 0 ] || modes="$modes control"
            B8_G_base=NA B8_G_flood=NA B8_G_control=NA
            for m in $modes; do
                b8 "$r" "$tr" "$port" "$m"
                port=$((port + 1))
            done
            ratio=NA
            [ "$B8_G_base" != NA ] && [ "$B8_G_flood" != NA ] && ratio=$(calc "$B8_G_flood / $B8_G_base")
            rec B8 "$tr" "$r" flood_ratio "$ratio"
            if [ "$FLOOD_CONTROL" != 0 ]; then
                ratio=NA
                [ "$B8_G_base" != NA ] && [ "$B8_G_control" != NA ] &&
                    ratio=$(calc "$B8_G_control / $B8_G_base")
                rec B8 "$tr" "$r" control_ratio "$ratio"
            fi
        done
        emu_down 2>>"$LOGS/emu.log"
        r=$((r + 1))
    done
fi
