# B24: what the design change of issue 46 could reach at most. Sourced by
# run.sh after its helpers (emu_up, wait_port, reap, rec, want, say...).
#
# integration/bench/ceiling.c: redis-benchmark's GET shape (CONNS
# connections, one 37-byte request each outstanding, a 9-byte answer) in
# one single-threaded epoll loop at each end, loopback in a namespace of
# its own. Rows, all in the same run:
#   kernel-tcp         the program over kernel TCP
#   preload            the same program, both ends under the shim (today)
#   core-thread        the program driving libcore.a itself in its one
#                      thread on UDP sockets, one per client connection
#                      (the shim's shape): no engine thread, no bridge, no
#                      interposer, readiness from memory
#   core-thread-1sock  the same with the client's connections on one UDP
#                      socket (one sendmmsg a turn for all of them)
#   core-engine        the core on an engine thread of each program that
#                      owns the sockets and receives; a connection with
#                      events goes on a list in memory, the program's
#                      thread (woken by an eventfd only when it sleeps)
#                      reads and writes under the context's lock and sends
#                      its own writes: the bridge gone, the hand-off
#                      between threads kept
# The core-thread rows are no transport a user can run: they bound what
# running the protocol in the program's thread can give (docs/design.md,
# "The data path"). Not named tcp-* or rudp-* (report.py judges those).
CEIL_CONNS=${BENCH_CEIL_CONNS:-50}
meta desc_B24 "redis GET's shape (integration/bench/ceiling.c): $CEIL_CONNS connections, 37-byte requests, 9-byte answers, one epoll thread each end, ${APP_TIME} s, loopback in a fresh namespace"

# b24_row ROW PORT LOG: one row's two programs; records its figures (NA
# for a row that failed).
b24_row() {
    _row=$1 _port=$2 _l=$3
    _pre="" _tr=tcp _shared="" _wait=tcp-
    case "$_row" in
        preload) _pre="LD_PRELOAD=$LDP RUDP_FALLBACK=none RUDP_ACCEPT_TCP=0" _wait=rudp- ;;
        core-thread) _tr=rudp _wait=rudp- ;;
        core-thread-1sock) _tr=rudp _shared=shared _wait=rudp- ;;
        core-engine) _tr=rudp-engine _wait=rudp- ;;
    esac
    # shellcheck disable=SC2086 # _pre: words
    (nsa_env $((APP_TIME + 60)) $_pre "$BIN/ceiling" server "$_tr" "$_port" 37 9) >"$_l.srv" 2>&1 &
    _spid=$!
    EMU_BG_PIDS="$EMU_BG_PIDS $_spid"
    PIDS="$PIDS $_spid"
    _rps=NA _cu=NA _ccs=NA _su=NA _scs=NA
    if wait_port "$EMU_NS_A" "$_wait" "$_port"; then
        _rc=0
        # shellcheck disable=SC2086
        (nsa_env $((APP_TIME + 60)) $_pre "$BIN/ceiling" client "$_tr" "$_port" "$CEIL_CONNS" \
            "$APP_TIME" 37 9 $_shared) >"$_l.cli" 2>&1 || _rc=$?
        [ "$_rc" = 0 ] || say "B24 $_row: the client exited $_rc (see $_l.cli)"
        # shellcheck disable=SC2046 # three figures: words
        set -- $(sed -n 's/^client [^:]*: [0-9]* requests in [0-9.]* s, \([0-9]*\) per s, CPU \([0-9.]*\) us and \([0-9.]*\) context .*/\1 \2 \3/p' "$_l.cli") NA NA NA
        [ "$_rc" = 0 ] && _rps=$1 _cu=$2 _ccs=$3
    fi
    # SIGTERM: the server prints its CPU per request and exits
    kill -TERM "$_spid" 2>/dev/null || true
    reap "$_spid" 10
    # shellcheck disable=SC2046 # two figures: words
    set -- $(sed -n 's/^server [^:]*: [0-9]* requests, CPU \([0-9.]*\) us and \([0-9.]*\) context .*/\1 \2/p' "$_l.srv") NA NA
    [ "$_rps" = NA ] || _su=$1 _scs=$2
    rec B24 "$_row" "$r" rps "$_rps"
    rec B24 "$_row" "$r" cli_us "$_cu"
    rec B24 "$_row" "$r" srv_us "$_su"
    rec B24 "$_row" "$r" cli_cs "$_ccs"
    rec B24 "$_row" "$r" srv_cs "$_scs"
    say "B24 run $r/$RUNS $_row: $_rps requests/s, CPU $_cu / $_su us per request"
}

if want B24; then
    [ -x "$BIN/ceiling" ] || fail "$BIN/ceiling not built (make)"
    emu_up bnB24 "" "" 1
    r=1
    port=5401
    while [ "$r" -le "$RUNS" ]; do # no traced run
        for row in $(rotate "$r" kernel-tcp preload core-thread core-thread-1sock core-engine); do
            b24_row "$row" "$port" "$LOGS/B24.$row.$r"
            port=$((port + 1)) # a fresh port: a keeper may hold the last one a while
        done
        r=$((r + 1))
    done
    emu_down 2>>"$LOGS/emu.log"
fi
