# B5: RR_COUNT sequential 100-byte echoes (rr.c) over SPEC_B5 (40 ms RTT,
# 1 % loss), all transports at once on one link. Sourced by run.sh after
# its helpers (emu_up, srv, nsx, rec, want...); POSIX sh.

if want B5; then
    sc=B5
    r=1
    while [ "$r" -le "$LAST" ]; do
        emu_up bnB5 "$SPEC_B5" "$SPEC_B5" "$r"
        port=7001
        for tr in $(run_trs "$r" $(trs B5)); do
            rm -f "$LOGS/B5.$tr.$r.srv.perf.sc" "$LOGS/B5.$tr.$r.cli.perf.sc"
            # one pass, counted under perf stat (PSTAT_SC): what its calls
            # cost is microseconds against 40 ms round trips
            PSTAT_SC=$LOGS/B5.$tr.$r.srv.perf.sc
            # shellcheck disable=SC2046
            srv "$EMU_NS_B" "$tr" 600 "$LOGS/B5.$tr.$r.srv" "$BIN/rr" server --port "$port" --once $(cc_opt "$tr")
            PSTAT_SC=""
            port=$((port + 1))
        done
        port=7001
        for tr in $(run_trs "$r" $(trs B5)); do
            wait_port "$EMU_NS_B" "$tr" "$port" || true
            port=$((port + 1))
        done
        # All transports at once: each is one small request in flight, so
        # they do not compete for the 100 Mbit/s link.
        port=7001 cpids=""
        for tr in $(run_trs "$r" $(trs B5)); do
            # shellcheck disable=SC2046
            (PSTAT_SC=$LOGS/B5.$tr.$r.cli.perf.sc nsx "$EMU_NS_A" "$tr" 600 "$BIN/rr" client --to "$EMU_IP_B" --port "$port" \
                --size 100 --count "$RR_COUNT" $(cc_opt "$tr") \
                --samples "$LOGS/B5.$tr.$r.samples") >"$LOGS/B5.$tr.$r.out" 2>"$LOGS/B5.$tr.$r.err" &
            cpids="$cpids $!"
            PIDS="$PIDS $!"
            port=$((port + 1))
        done
        set -- $cpids
        for tr in $(run_trs "$r" $(trs B5)); do
            rc=0
            wait "$1" || rc=$?
            shift
            [ "$rc" = 0 ] || say "B5 run $r $tr: rr client exited $rc (see $LOGS/B5.$tr.$r.err)"
            # shellcheck disable=SC2046
            set -- $($REPORT rr "$LOGS/B5.$tr.$r.out") "$@"
            rec B5 "$tr" "$r" p50_ms "$1"
            rec B5 "$tr" "$r" p99_ms "$2"
            rec B5 "$tr" "$r" max_ms "$3"
            rec B5 "$tr" "$r" mean_ms "$4"
            say "B5 run $r/$RUNS $tr: p50 $1 ms, p99 $2 ms, max $3 ms"
            shift 4
            reqcost B5 "$tr" "$r" "$LOGS/B5.$tr.$r" "$RR_COUNT"
        done
        emu_down 2>>"$LOGS/emu.log"
        r=$((r + 1))
    done
fi
