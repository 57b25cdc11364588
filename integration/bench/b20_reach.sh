# B20: what the supervisor costs (issue 35, "done when" 4). Sourced by
# run.sh after its helpers (emu_up, wait_port, reap, rec, want, say...).
#
# Loopback in a namespace of its own (B6's set-up, no emulator):
# tests/prog_reach's "connects" client makes REACH_N blocking connects in
# a row, each with a 1-byte echo and a close (connects per second from the
# whole cycle; connect()'s own mean time), then REACH_RR 1-byte round trips
# on one more connection (requests per second), against prog_reach's echo
# server. Rows, each a pair of programs, all in the same run:
#   kernel-tcp         the static client (prog_reach_static), a plain server
#   tcp+filter         the same under rudp-supervise --pass: kernel TCP, with
#                      the seccomp filter's round trip on each reported call
#   preload            the dynamic client and the server under the shim
#   supervised         the static client under rudp-supervise (connect and
#                      the socket options answered by the supervisor), the
#                      server under the shim
#   supervised-server  the static server under rudp-supervise (bind, listen,
#                      accept), the dynamic client under the shim
# The rows are not named tcp-* or rudp-*: they are not transports of the
# other scenarios (report.py's targets judge rudp-* rows).
REACH_N=${BENCH_REACH_N:-1000}
REACH_RR=${BENCH_REACH_RR:-10000}
meta desc_B20 "loopback 127.0.0.1, no emulator: $REACH_N connects in a row (connect, 1-byte echo, close), then $REACH_RR 1-byte round trips on one connection; tests/prog_reach"

# b20_row ROW PORT LOG: one row's programs. Records the row's figures
# (NA for a row that failed).
b20_row() {
    _row=$1 _port=$2 _l=$3
    _rudp="LD_PRELOAD=$LDP RUDP_FALLBACK=none RUDP_ACCEPT_TCP=0"
    _stat=$BIN/prog_reach_static _dyn=$BIN/prog_reach
    [ -x "$_stat" ] || _stat=$_dyn # kernel-tcp alone: no static libc here
    case "$_row" in
        kernel-tcp) _srv=$_dyn _cli=$_stat _wait=tcp ;;
        tcp+filter) _srv=$_dyn _cli="$SUP --pass $_stat" _wait=tcp ;;
        preload) _srv="$_rudp $_dyn" _cli="$_rudp $_dyn" _wait=rudp ;;
        supervised) _srv="$_rudp $_dyn" _cli="RUDP_FALLBACK=none $SUP $_stat" _wait=rudp ;;
        supervised-server) _srv="RUDP_ACCEPT_TCP=0 $SUP $_stat" _cli="$_rudp $_dyn" _wait=rudp ;;
    esac
    # shellcheck disable=SC2086 # _srv, _cli: words
    (nsa_env 300 $_srv server "$_port" $((REACH_N + 1))) >"$_l.srv" 2>&1 &
    _spid=$!
    EMU_BG_PIDS="$EMU_BG_PIDS $_spid"
    PIDS="$PIDS $_spid"
    _c=NA _cs=NA _rr=NA _rrs=NA
    if wait_port "$EMU_NS_A" "$_wait-" "$_port"; then
        _rc=0
        # shellcheck disable=SC2086
        (nsa_env 300 $_cli connects 127.0.0.1 "$_port" "$REACH_N" "$REACH_RR") >"$_l.cli" 2>&1 || _rc=$?
        [ "$_rc" = 0 ] || say "B20 $_row: the client exited $_rc (see $_l.cli)"
        _c=$(sed -n 's/^connects [0-9]*: connect() \([0-9.]*\) us, .* \([0-9.]*\) us (means)$/\1/p' "$_l.cli")
        _cs=$(sed -n 's/^connects [0-9]*: connect() \([0-9.]*\) us, .* \([0-9.]*\) us (means)$/\2/p' "$_l.cli")
        _rr=$(sed -n 's/^round trips [0-9]*: 1-byte write and echo \([0-9.]*\) us (mean)$/\1/p' "$_l.cli")
        [ "$_rc" = 0 ] && [ -n "$_c" ] && [ -n "$_cs" ] && [ -n "$_rr" ] || _c=NA _cs=NA _rr=NA
    fi
    reap "$_spid"
    rec B20 "$_row" "$r" connect_us "$_c"
    rec B20 "$_row" "$r" cycle_us "$_cs"
    rec B20 "$_row" "$r" rr_us "$_rr"
    [ "$_cs" = NA ] || _cs=$(calc "1e6 / $_cs")
    [ "$_rr" = NA ] || _rrs=$(calc "1e6 / $_rr")
    rec B20 "$_row" "$r" connects_s "$_cs"
    rec B20 "$_row" "$r" rr_s "$_rrs"
    say "B20 run $r/$RUNS $_row: connect() $_c us, $_cs connects/s, $_rrs round trips/s"
}

if want B20; then
    SUP=$TOOLS/rudp-supervise
    B20_ROWS="kernel-tcp tcp+filter preload supervised supervised-server"
    if [ ! -x "$SUP" ]; then
        say "B20: no $SUP: preload and kernel TCP only"
        B20_ROWS="kernel-tcp preload"
    elif [ ! -x "$BIN/prog_reach_static" ]; then
        say "B20: no static libc here (no $BIN/prog_reach_static): preload and kernel TCP only"
        B20_ROWS="kernel-tcp preload"
    elif ! _e=$(timeout 10 "$SUP" --pass true 2>&1); then
        say "B20: seccomp user notification unavailable here ($_e): preload and kernel TCP only"
        B20_ROWS="kernel-tcp preload"
    fi
    emu_up bnB20 "" "" 1
    r=1
    port=5301
    while [ "$r" -le "$RUNS" ]; do # no traced run: connects are not a flow
        # shellcheck disable=SC2086 # the rows: words
        for row in $(rotate "$r" $B20_ROWS); do
            b20_row "$row" "$port" "$LOGS/B20.$row.$r"
            port=$((port + 1)) # a fresh port: a keeper may hold the last one a while
        done
        r=$((r + 1))
    done
    emu_down 2>>"$LOGS/emu.log"
fi
