# B12: fan-in: FANIN connections opened at once by one process to one
# server over loopback (prog_many). Sourced by run.sh after its helpers
# (emu_up, snap, srv, nsx, rec, want...); POSIX sh.

if want B12; then
    sc=B12
    [ -x "$BIN/prog_many" ] || fail "$BIN/prog_many not built (make)"
    emu_up bnB12 veth veth 1 # a namespace of our own; only its loopback is used
    r=1
    while [ "$r" -le "$LAST" ]; do
        for tr in $(rotate "$r" $(run_trs "$r" $TRS)); do
            l=$LOGS/B12.$tr.$r
            srv "$EMU_NS_A" "$tr" 180 "$l.srv" "$BIN/prog_many" server "$FANIN" 1
            spid=$SRV
            _i=0
            until grep -q '^port ' "$l.srv" 2>/dev/null || [ "$_i" -ge 200 ]; do
                sleep 0.05
                _i=$((_i + 1))
            done
            port=$(sed -n 's/^port //p' "$l.srv")
            ms=NA cms=NA ccpu=NA scpu=NA ccs=NA scs=NA drops=NA retx=NA per=NA
            if [ -n "$port" ]; then
                snap "$EMU_NS_A" "$l.snmp0"
                rc=0
                (nsx "$EMU_NS_A" "$tr" 180 "$BIN/prog_many" client "$port" "$FANIN") \
                    </dev/null >"$l.cli" 2>"$l.clierr" || rc=$?
                reap "$spid" 60
                snap "$EMU_NS_A" "$l.snmp1"
                [ "$rc" = 0 ] || say "B12 run $r $tr: client exited $rc"
                ms=$(sed -n 's/^client: .* round trips in \([0-9]*\) ms/\1/p' "$l.cli")
                [ -n "$ms" ] || ms=NA
                # the part of it the client's connect() calls took, one
                # after another (its thread is the fan-in's critical path)
                cms=$(sed -n 's/^client: .* connects issued in \([0-9]*\) ms/\1/p' "$l.cli")
                [ -n "$cms" ] || cms=NA
                # each program's CPU for it, every thread's (getrusage: no
                # perf around the timed run, whose tracing cost rudp's many
                # system calls 13-17 % of B12's time), in us per connection
                set -- $(sed -n 's/^client: CPU \([0-9]*\) ms and \([0-9]*\) context switches .*/\1 \2/p' \
                    "$l.cli") NA NA
                [ "$1" != NA ] && ccpu=$(($1 * 1000 / FANIN)) && ccs=$(($2 * 100 / FANIN))
                set -- $(sed -n 's/^server: CPU \([0-9]*\) ms and \([0-9]*\) context switches .*/\1 \2/p' \
                    "$l.srv") NA NA
                [ "$1" != NA ] && scpu=$(($1 * 1000 / FANIN)) && scs=$(($2 * 100 / FANIN))
                per=$(sed -n 's/.*memory per connection \([0-9-]*\) bytes.*/\1/p' "$l.srv")
                [ -n "$per" ] || per=NA
                # shellcheck disable=SC2046
                set -- $($REPORT snmp "$l.snmp0" "$l.snmp1" Udp.RcvbufErrors Tcp.RetransSegs)
                drops=$1
                case "$tr" in
                    rudp-*)
                        # shellcheck disable=SC2046
                        set -- $($REPORT rudpstats "$l.srv") $($REPORT rudpstats "$l.clierr")
                        retx=$(($3 + $7)) # packets declared lost and resent, both ends
                        rec B12 "$tr" "$r" pto_all "$(($4 + $8))"
                        # the probe timeouts of the fan-in itself: the two
                        # programs' own figures, not their keepers' closing
                        # after them
                        # shellcheck disable=SC2046
                        set -- $($REPORT rudpstats --run "$l.srv") \
                            $($REPORT rudpstats --run "$l.clierr")
                        rec B12 "$tr" "$r" pto "$(($4 + $8))"
                        mv=0
                        for _f in "$l.srv" "$l.clierr"; do
                            for _kv in $($REPORT rudpcounters "$_f"); do
                                case "$_kv" in
                                    peers_moved=* | conns_moved=*) mv=$((mv + ${_kv#*=})) ;;
                                esac
                            done
                        done
                        rec B12 "$tr" "$r" moves "$mv"
                        ;;
                    *) retx=$2 ;;
                esac
            else
                emu__kill_pid "$spid"
            fi
            rec B12 "$tr" "$r" fanin_ms "$ms"
            rec B12 "$tr" "$r" connect_ms "$cms"
            rec B12 "$tr" "$r" cpu_us_conn_cli "$ccpu"
            rec B12 "$tr" "$r" cpu_us_conn_srv "$scpu"
            rec B12 "$tr" "$r" cs_100conn_cli "$ccs" # per 100 connections: integers
            rec B12 "$tr" "$r" cs_100conn_srv "$scs"
            rec B12 "$tr" "$r" rcvbuf_drops "$drops"
            rec B12 "$tr" "$r" retx_pkts "$retx"
            rec B12 "$tr" "$r" mem_per_conn "$per"
            say "B12 run $r/$RUNS $tr: all answered in $ms ms, drops $drops, retransmissions $retx"
        done
        r=$((r + 1))
    done
    emu_down 2>>"$LOGS/emu.log"
fi
