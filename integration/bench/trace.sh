# B18, B19: bulk over recorded LTE links (issue 32), with the delay a ping
# meets in the same queue. Sourced by run.sh after its helpers (emu_up,
# bulk_run, retx, limits, rec, meta, want, rotate, run_trs); POSIX sh.
#
#   B18  Verizon LTE (integration/bench/traces/Verizon-LTE-short.*)
#   B19  T-Mobile LTE (TMobile-LTE-short.*)
#
# The link: linkemu trace=X.down a -> b (the bulk data) and trace=X.up
# b -> a, a 500-packet drop-tail queue and 20 ms one-way delay each way
# (mahimahi's setting in issue 32's measurement). Each transport gets a
# fresh link (emu_up) so every one meets the same stretch of the trace
# from its start (the trace begins when linkemu does; the transfer starts
# ~0.5 s later, a little more under the shim, same for all).
#
# Per run: TRACE_TIME s bulk a -> b (bulk.c: goodput = bytes the receiving
# application read in that window) and, during it, linkemu probe: a 64-byte
# UDP datagram every TRACE_PING_MS ms a -> b, echoed by linkemu echo in b.
# The probe joins the a -> b queue behind the bulk data, so its round trip
# is the base RTT (40 ms) plus the queueing delay the transport builds;
# p50 and p95 of those round trips are the delay figures (nearest rank, of
# the probes that came back; a probe the full queue dropped is counted in
# ping loss %, not in the percentiles). Link figures from linkemu's
# counters over the same window: capacity (trace_offered_bytes: what the
# trace offered, used or wasted) and what left the queue.
#
# Transports: tcp-CC for each CC of BENCH_TRACE_TCP (default "cubic bbr")
# the kernel has, and rudp-CC for each CC of BENCH_TRACE_CC (default
# "bbr copa": today's default and the delay-aware mode) that RUDP_CC
# accepts.
TRACE_TIME=${BENCH_TRACE_TIME:-30}
TRACE_PING_MS=${BENCH_TRACE_PING_MS:-20}
TRACE_DIR=$ROOT/integration/bench/traces
TRACE_Q=${BENCH_TRACE_QUEUE:-500p}
TRACE_EMU=${LINKEMU:-$BIN/linkemu}
TRACE_TRS=""
for _cc in ${BENCH_TRACE_TCP-cubic bbr}; do
    grep -qw "$_cc" /proc/sys/net/ipv4/tcp_available_congestion_control && TRACE_TRS="$TRACE_TRS tcp-$_cc"
done
for _cc in ${BENCH_TRACE_CC:-bbr copa}; do
    env LD_PRELOAD="$LDP" RUDP_CC="$_cc" true 2>/dev/null && TRACE_TRS="$TRACE_TRS rudp-$_cc"
done
TRACE_B18=Verizon-LTE-short
TRACE_B19=TMobile-LTE-short

# trace_mean FILE: the trace's mean capacity in Mbit/s.
trace_mean() {
    awk '{ n++; t = $1 } END { printf "%.2f", n * 1500 * 8 / t / 1000 }' "$1"
}

# trace_bulk SC RUN TR PORT: one transport's run on a fresh link. Its
# variables are tb_*: srv, bulk_run and retx set _tr, _sc, _l and more.
trace_bulk() {
    tb_sc=$1 tb_r=$2 tb_tr=$3 tb_port=$4 tb_l=$LOGS/$1.$3.$2
    eval "tb_tf=\$TRACE_$tb_sc"
    emu_up "bt$tb_sc" "trace=$TRACE_DIR/$tb_tf.down,queue=$TRACE_Q,delay=20" \
        "trace=$TRACE_DIR/$tb_tf.up,queue=$TRACE_Q,delay=20" "$tb_r"
    srv "$EMU_NS_B" tcp-none $((TRACE_TIME + 90)) "$tb_l.echo" "$TRACE_EMU" echo --port $((tb_port + 1000))
    emu_stats
    tb_o0=$(emu_stat a2b_trace_offered_bytes) tb_b0=$(emu_stat a2b_out_bytes)
    tb_q0=$(emu_stat a2b_drop_queue) tb_n0=$(emu_stat time_ns)
    # The probe runs as long as the bulk window, plus the connection's set-up.
    tb_cnt=$(((TRACE_TIME * 1000 + 1000) / TRACE_PING_MS))
    (exec ip netns exec "$EMU_NS_A" timeout -k 5 $((TRACE_TIME + 60)) "$TRACE_EMU" probe \
        --to "$EMU_IP_B" --port $((tb_port + 1000)) --count "$tb_cnt" --interval "$TRACE_PING_MS" \
        --wait 3000) >"$tb_l.ping" 2>&1 &
    tb_ppid=$!
    PIDS="$PIDS $tb_ppid"
    bulk_run "$tb_sc" "$tb_r" "$tb_tr" "$EMU_NS_B" "$EMU_IP_B" "$tb_port" "$TRACE_TIME" "$tb_l"
    emu_stats
    tb_o1=$(emu_stat a2b_trace_offered_bytes) tb_b1=$(emu_stat a2b_out_bytes)
    tb_q1=$(emu_stat a2b_drop_queue) tb_n1=$(emu_stat time_ns)
    wait "$tb_ppid" || say "$tb_sc run $tb_r $tb_tr: probe exited $? (see $tb_l.ping)"
    rec "$tb_sc" "$tb_tr" "$tb_r" goodput "$G"
    rec "$tb_sc" "$tb_tr" "$tb_r" cap_mbps "$(calc "($tb_o1 - $tb_o0) * 8 / (($tb_n1 - $tb_n0) / 1e3)")"
    rec "$tb_sc" "$tb_tr" "$tb_r" link_mbps "$(calc "($tb_b1 - $tb_b0) * 8 / (($tb_n1 - $tb_n0) / 1e3)")"
    rec "$tb_sc" "$tb_tr" "$tb_r" qdrops "$((tb_q1 - tb_q0))"
    # shellcheck disable=SC2046
    set -- $($REPORT kv "$tb_l.ping" rtt_p50_ms rtt_p95_ms rtt_p99_ms loss_pct)
    rec "$tb_sc" "$tb_tr" "$tb_r" ping_p50_ms "$1"
    rec "$tb_sc" "$tb_tr" "$tb_r" ping_p95_ms "$2"
    rec "$tb_sc" "$tb_tr" "$tb_r" ping_p99_ms "$3"
    rec "$tb_sc" "$tb_tr" "$tb_r" ping_loss_pct "$4"
    costs "$tb_sc" "$tb_r" "$tb_tr" "$tb_l"
    say "$tb_sc run $tb_r/$RUNS $tb_tr: $G Mbit/s, ping p50 $1 p95 $2 ms, retx $RETX %"
    emu_down 2>>"$LOGS/emu.log"
}

want B18 || want B19 && say "B18, B19 transports:$TRACE_TRS (not the list above)"
for sc in B18 B19; do
    want "$sc" || continue
    eval "_tf=\$TRACE_$sc"
    meta "desc_$sc" "bulk over the recorded $_tf link (mahimahi trace, .down a -> b $(trace_mean "$TRACE_DIR/$_tf.down") Mbit/s mean, .up b -> a $(trace_mean "$TRACE_DIR/$_tf.up")), 20 ms each way, $TRACE_Q drop-tail queue each way; ${TRACE_TIME} s runs, a UDP ping every ${TRACE_PING_MS} ms through the same a -> b queue"
    r=1
    while [ "$r" -le "$LAST" ]; do
        port=5301
        for tr in $(rotate "$r" $(run_trs "$r" $TRACE_TRS)); do
            trace_bulk "$sc" "$r" "$tr" "$port"
            port=$((port + 1))
        done
        r=$((r + 1))
    done
done
