# B6: loopback, no emulator: bulk throughput for LO_TIME s and a 1-byte
# ping-pong round trip x PING_COUNT. Sourced by run.sh after its helpers
# (emu_up, bulk_run, srv, nsx, rec, want...); POSIX sh.

# rr_one_cpu TR PORT LOG [OPTION]: the 1-byte ping-pong with both ends on
# CPU 0 in namespace a; ONE its p50 in us (NA if it failed). RR_WRAP: a
# command both ends run under (dockerlike); kernel TCP then runs the
# kernel's default controller, as a container's program does (one outside
# net.ipv4.tcp_allowed_congestion_control needs CAP_NET_ADMIN).
rr_one_cpu() {
    _tr=$1 _port=$2 _l=$3
    shift 3
    _cc=$(cc_opt "$_tr")
    case "$_tr" in tcp-*) [ -z "${RR_WRAP:-}" ] || _cc="" ;; esac
    # shellcheck disable=SC2086 # word-split on purpose: RR_WRAP, the --cc option
    srv "$EMU_NS_A" "$_tr" 120 "$_l.srv" ${RR_WRAP:-} taskset -c 0 "$BIN/rr" server \
        --port "$_port" --bind 127.0.0.1 --once "$@" $_cc
    _spid=$SRV
    ONE=NA
    wait_port "$EMU_NS_A" "$_tr" "$_port" || return 0
    _rc=0
    # shellcheck disable=SC2086 # as above
    (nsx "$EMU_NS_A" "$_tr" 120 ${RR_WRAP:-} taskset -c 0 "$BIN/rr" client --to 127.0.0.1 \
        --port "$_port" --size 1 --count "$PING_COUNT" --warmup 200 "$@" $_cc) \
        >"$_l" 2>"$_l.err" || _rc=$?
    reap "$_spid"
    # shellcheck disable=SC2046
    set -- $($REPORT rr "$_l")
    [ "$1" = NA ] || ! keyed_ok "$_tr" "$_l.srv" "$_l.err" || ONE=$(calc "$1 * 1000")
    [ "$_rc" = 0 ] || say "B6 $_tr: rr on one CPU ($_l) exited $_rc"
}

# rr_two_cpus TR PORT LOG COUNT VAR: the 1-byte ping-pong x COUNT (200
# more to warm up) in namespace a, wherever the scheduler puts the ends,
# each end's costs to LOG.srv.perf and LOG.cli.perf through VAR (PSTAT, or
# PSTAT_SC: its files then LOG.*.perf.sc); RR_P50, RR_P99 and RR_MEAN in
# us (NA if it failed).
rr_two_cpus() {
    _tr=$1 _port=$2 _l=$3 _n=$4 _suf=""
    [ "$5" = PSTAT ] || _suf=.sc
    rm -f "$_l.srv.perf$_suf" "$_l.cli.perf$_suf"
    eval "$5=\$_l.srv.perf\$_suf"
    # shellcheck disable=SC2046
    srv "$EMU_NS_A" "$_tr" 120 "$_l.rrsrv$_suf" "$BIN/rr" server --port "$_port" --bind 127.0.0.1 \
        --once $(cc_opt "$_tr")
    PSTAT="" PSTAT_SC=""
    _spid=$SRV
    RR_P50=NA RR_P99=NA RR_MEAN=NA
    wait_port "$EMU_NS_A" "$_tr" "$_port" || return 0
    _rc=0
    # shellcheck disable=SC2046
    (eval "$5=\$_l.cli.perf\$_suf"; nsx "$EMU_NS_A" "$_tr" 120 "$BIN/rr" client --to 127.0.0.1 \
        --port "$_port" --size 1 --count "$_n" --warmup 200 $(cc_opt "$_tr")) \
        >"$_l.rr$_suf" 2>"$_l.rrerr$_suf" || _rc=$?
    reap "$_spid"
    # shellcheck disable=SC2046
    set -- $($REPORT rr "$_l.rr$_suf")
    [ "$1" = NA ] || ! keyed_ok "$_tr" "$_l.rrsrv$_suf" "$_l.rrerr$_suf" ||
        { RR_P50=$(calc "$1 * 1000"); RR_P99=$(calc "$2 * 1000"); RR_MEAN=$(calc "$4 * 1000"); }
    [ "$_rc" = 0 ] || say "B6 run $r $_tr: rr exited $_rc"
}

if want B6; then
    sc=B6
    # A namespace of our own (the link is idle), so nothing else on the
    # host's loopback shares the ports. Both ends in namespace a.
    emu_up bnB6 "" "" 1
    r=1
    while [ "$r" -le "$LAST" ]; do
        port=5201
        for tr in $(rotate "$r" $(run_trs "$r" $(trs B6))); do
            l=$LOGS/B6.$tr.$r
            bulk_run B6 "$r" "$tr" "$EMU_NS_A" 127.0.0.1 "$port" "$LO_TIME" "$l"
            g=$G
            rec B6 "$tr" "$r" goodput "$g"
            bulk_sc
            # CPU s/GB, for keyed against unkeyed
            [ "$UNKEYED" = 1 ] || limits B6 "$r" "$tr" "$l"
            port=$((port + 1))

            rr_two_cpus "$tr" "$port" "$l" "$PING_COUNT" PSTAT
            p50=$RR_P50 p99=$RR_P99 mean=$RR_MEAN
            rec B6 "$tr" "$r" rtt1_p50_us "$p50"
            rec B6 "$tr" "$r" rtt1_p99_us "$p99"
            rec B6 "$tr" "$r" rtt1_mean_us "$mean"
            # the system calls, in a pass of their own under perf stat
            n_sc=""
            if costpass "$r"; then
                port=$((port + 1))
                rr_two_cpus "$tr" "$port" "$l" 2000 PSTAT_SC
                n_sc=2200
            fi
            reqcost B6 "$tr" "$r" "$l" $((PING_COUNT + 200)) $n_sc # warm-up included
            port=$((port + 1))

            # The same ping-pong with both ends on one CPU (issue 46): the
            # work and hand-offs of a request, without the cost of waking
            # an idle CPU, which swamps every transport alike on this VM;
            # then with each read after a poll(), as curl, nc and ssh wait
            # (interpose/poll.c)
            rr_one_cpu "$tr" "$port" "$l.rr1"
            one=$ONE
            rec B6 "$tr" "$r" rtt1cpu_p50_us "$one"
            port=$((port + 1))
            rr_one_cpu "$tr" "$port" "$l.rrp" --poll
            rec B6 "$tr" "$r" rtt1cpu_poll_p50_us "$ONE"
            onep=$ONE
            # ... and in a container of Docker's defaults, both ends under
            # its capabilities and seccomp profile (build/progs/dockerlike):
            # a filter inherited over exec, which the app threads' paths
            # ask about once (shim/base/sandbox.c); kernel TCP under it too
            port=$((port + 1))
            RR_WRAP=$BIN/dockerlike rr_one_cpu "$tr" "$port" "$l.rrc"
            rec B6 "$tr" "$r" rtt1cpu_ctr_p50_us "$ONE"
            say "B6 run $r/$RUNS $tr: $g Mbit/s, 1-byte rtt p50 $p50 us, on one CPU $one us" \
                "($onep us with poll, $ONE us in a container)"
            port=$((port + 1))
        done
        r=$((r + 1))
    done
    emu_down 2>>"$LOGS/emu.log"
fi
