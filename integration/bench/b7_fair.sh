# B7: one rudp flow and one kernel TCP cubic flow sharing B1's link for
# FAIR_TIME s: each one's goodput and rudp's share. Sourced by run.sh after
# its helpers (emu_up, srv, nsx, rec, want...); POSIX sh.

if want B7; then
    sc=B7
    r=1
    while [ "$r" -le "$LAST" ]; do
        for tr in $(run_trs "$r" $RUDP_TRS); do
            emu_up bnB7 "$SPEC_B1" "$SPEC_B1" "$r"
            l=$LOGS/B7.$tr.$r
            srv "$EMU_NS_B" tcp-cubic $((FAIR_TIME + 60)) "$l.cubic.recv" "$BIN/bulk" recv \
                --port 5301 --time "$FAIR_TIME" --once --cc cubic
            sc_pid=$SRV
            srv "$EMU_NS_B" "$tr" $((FAIR_TIME + 60)) "$l.rudp.recv" "$BIN/bulk" recv \
                --port 5302 --time "$FAIR_TIME" --once
            sr_pid=$SRV
            wait_port "$EMU_NS_B" tcp-cubic 5301 || true
            wait_port "$EMU_NS_B" "$tr" 5302 || true
            (nsx "$EMU_NS_A" tcp-cubic $((FAIR_TIME + 60)) "$BIN/bulk" send --to "$EMU_IP_B" \
                --port 5301 --timeout $((FAIR_TIME + 45)) --cc cubic) >"$l.cubic.send" 2>"$l.cubic.err" &
            c1=$!
            (nsx "$EMU_NS_A" "$tr" $((FAIR_TIME + 60)) "$BIN/bulk" send --to "$EMU_IP_B" \
                --port 5302 --timeout $((FAIR_TIME + 45))) >"$l.rudp.send" 2>"$l.rudp.err" &
            c2=$!
            PIDS="$PIDS $c1 $c2"
            wait "$c1" || say "B7 run $r: cubic sender failed (see $l.cubic.err)"
            wait "$c2" || say "B7 run $r: $tr sender failed (see $l.rudp.err)"
            reap "$sc_pid"
            reap "$sr_pid"
            emu_down 2>>"$LOGS/emu.log"
            gc=$($REPORT kv "$l.cubic.recv" bytes mbps | cut -d' ' -f2)
            gr=$($REPORT kv "$l.rudp.recv" bytes mbps | cut -d' ' -f2)
            rec B7 "$tr" "$r" rudp_goodput "$gr"
            rec B7 "$tr" "$r" cubic_goodput "$gc"
            share=NA
            [ "$gr" != NA ] && [ "$gc" != NA ] && share=$(calc "100 * $gr / ($gr + $gc)")
            rec B7 "$tr" "$r" rudp_share_pct "$share"
            say "B7 run $r/$RUNS $tr: rudp $gr Mbit/s, cubic $gc Mbit/s, rudp share $share %"
        done
        r=$((r + 1))
    done
fi
