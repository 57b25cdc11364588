# B23: what each end of B1's transfer costs, the kernel's work for it
# included wherever the kernel ran it (issue 46). Sourced by run.sh after
# its helpers (emu_up, srv, nsx, wait_port, reap, rec, want...); POSIX sh.
#
# A process's CPU time leaves out what the kernel does for it in other
# contexts: kernel TCP takes ACKs, paces and sends from softirq, and over
# the emulator most of that runs inside linkemu's writes to the TUN
# devices (an ACK written into the sender's namespace by the b->a thread
# runs tcp_v4_rcv, tcp_ack and tcp_write_xmit there). B1's per-process
# figures (0.24 s per GB for kernel TCP's sender) are therefore not that
# end's cost. Here perf samples every CPU during each transfer (perf
# record -a -g), and report_ends.py gives each end its process's samples,
# the samples of the emulator thread delivering into it that are inside the
# kernel's receive path (what the packet set off: the protocol's work, not
# the link's), and those of the idle task or ksoftirqd inside TCP's sender
# or receiver timers; the rest of the emulator's threads is the link's, and
# network work in other contexts is no end's, both reported apart. Without
# perf, or where it cannot sample every CPU: skipped. Where kernel symbols
# do not resolve (no emulator sample inside the receive path) the figures
# are NA rather than a kernel TCP reference without its kernel share.

b23_thread() {
    for _t in /proc/"$EMU_PID"/task/*; do
        case "$(cat "$_t/comm" 2>/dev/null)" in *"$1") echo "${_t##*/}"; return ;; esac
    done
}

# b23_pid PATTERN: the bulk process whose command line matches PATTERN
# (not the timeout or ip netns exec holding the same words), or nothing.
b23_pid() {
    for _p in $(pgrep -f "$1" 2>/dev/null); do
        [ "$(cat /proc/"$_p"/comm 2>/dev/null)" = bulk ] && echo "$_p"
    done | tail -1
}

if want B23; then
    sc=B23
    if [ "${BENCH_PERF:-1}" = 0 ]; then
        say "B23 skip: perf off (BENCH_PERF=0)"
    elif ! command -v perf >/dev/null 2>&1; then
        say "B23 skip: no perf (linux-perf)"
    elif ! perf record -a -g -F "$B23_HZ" -o "$LOGS/B23.probe.data" -- true >/dev/null 2>&1; then
        rm -f "$LOGS/B23.probe.data"
        say "B23 skip: perf cannot sample every CPU here (perf record -a refused)"
    else
        rm -f "$LOGS/B23.probe.data"
        r=1
        while [ "$r" -le "$LAST" ]; do
            emu_up bnB23 "$SPEC_B1" "$SPEC_B1" "$r"
            a2b=$(b23_thread a2b) b2a=$(b23_thread b2a)
            port=5301
            for tr in $(rotate "$r" $(run_trs "$r" $(trs B23))); do
                l=$LOGS/B23.$tr.$r
                ROOM=$BUF
                # shellcheck disable=SC2046
                srv "$EMU_NS_B" "$tr" $((TIME + 60)) "$l.recv" "$BIN/bulk" recv --port "$port" \
                    --time "$TIME" --once $(cc_opt "$tr")
                spid=$SRV
                set -- NA NA NA NA NA NA
                g=NA
                if wait_port "$EMU_NS_B" "$tr" "$port"; then
                    rpid=$(b23_pid "bulk recv --port $port ")
                    # a bounded workload rather than a signal at the end: dash
                    # runs its own TERM trap when a waited-for child dies of
                    # SIGTERM. The transfer ends TIME s after its accept; the
                    # 5 s beyond cover a slow start under load, and samples
                    # after the end are the link's or idle, no end's.
                    perf record -a -g -F "$B23_HZ" -o "$l.data" -- sleep $((TIME + 5)) \
                        >/dev/null 2>"$l.perf.err" &
                    ppid=$!
                    sleep 0.3
                    rc=0
                    # shellcheck disable=SC2046
                    (nsx "$EMU_NS_A" "$tr" $((TIME + 60)) "$BIN/bulk" send --to "$EMU_IP_B" \
                        --port "$port" --timeout $((TIME + 45)) $(cc_opt "$tr")) \
                        >"$l.send" 2>"$l.err" &
                    cpid=$!
                    _i=0
                    while [ -z "${spid2:-}" ] && [ "$_i" -lt 50 ]; do
                        spid2=$(b23_pid "bulk send --to $EMU_IP_B --port $port ")
                        [ -n "$spid2" ] || sleep 0.1
                        _i=$((_i + 1))
                    done
                    wait "$cpid" || rc=$?
                    wait "$ppid" || say "B23 run $r $tr: perf record failed (see $l.perf.err)"
                    reap "$spid"
                    [ "$rc" = 0 ] || say "B23 run $r $tr: bulk sender exited $rc (see $l.err)"
                    bytes=$($REPORT kv "$l.recv" bytes | cut -d' ' -f1)
                    g=$($REPORT kv "$l.recv" mbps | cut -d' ' -f1)
                    if [ -n "$rpid" ] && [ -n "${spid2:-}" ] && [ -s "$l.data" ]; then
                        perf script -i "$l.data" -F comm,pid,tid,time,ip,sym >"$l.script" 2>/dev/null
                        # shellcheck disable=SC2046
                        set -- $($REPORT ends "$l.script" "$spid2" "$rpid" "$a2b" "$b2a" \
                            "$B23_HZ" "$bytes") NA NA NA NA NA NA # NA if it said nothing
                    fi
                    [ "${BENCH_B23_KEEP:-0}" = 1 ] || rm -f "$l.data" "$l.script"
                    spid2=""
                else
                    emu__kill_pid "$spid"
                fi
                ROOM=""
                rec B23 "$tr" "$r" goodput "$g"
                rec B23 "$tr" "$r" snd_proc_s_gb "$1"
                rec B23 "$tr" "$r" snd_s_gb "$2"
                rec B23 "$tr" "$r" rcv_proc_s_gb "$3"
                rec B23 "$tr" "$r" rcv_s_gb "$4"
                rec B23 "$tr" "$r" link_s_gb "$5"
                rec B23 "$tr" "$r" unattr_s_gb "$6"
                say "B23 run $r/$RUNS $tr: $g Mbit/s; CPU s/GB: sender $2 (process $1), receiver $4 (process $3), the link $5, unattributed $6"
                port=$((port + 1))
                sleep 0.5
            done
            emu_down 2>>"$LOGS/emu.log"
            r=$((r + 1))
        done
    fi
fi
