# The real-program battery (integration/tests/apps/t_*.sh that source this):
# each test runs its programs twice in one run, over kernel TCP first and
# then with both ends under the shim, and nftables counts the kernel TCP
# segments on the test's ports in each run.  Sourced after lib/lib.sh,
# lib/shimlib.sh and compat/compat.sh:
#
#   battery_deps                install the `battery` package group (bounded)
#   battery FUNC [EXPECT]       run FUNC over kernel TCP, then under the shim,
#                               each in a subshell of its own (SHIM_MODE tcp,
#                               then shim; T a directory of its own, $T/tcp,
#                               $T/shim; the test's own $T stays $BAT_TOP,
#                               for inputs both runs share; every process
#                               the run started is ended when FUNC returns
#                               or fails, as compat.sh's cleanup does).
#                               Then the segment counts: the kernel run's must
#                               be > 0 (the counter works), the shim run's 0;
#                               EXPECT=tcp says the shim run is documented to
#                               use kernel TCP (docs/design.md: the program's own UDP
#                               on its port) and wants > 0 there too
#   bat_port                    (in FUNC) print a free port and count the TCP
#                               segments to and from it in this run
#   bat_count PORT...           (in FUNC) count the segments of ports FUNC
#                               chose itself (a range: bat_range)
#   bat_no_asan WHY             in an ASan run (make asan), the test's programs
#                               get the regular shim: they do not run with
#                               libasan preloaded, shim or not (WHY says how)
#   bat_listen PID PORT [SECS]  (in FUNC) wait_listen PORT, but fail at once,
#                               showing its log, when PID (started by bg_app
#                               as NAME: $T/NAME.log) has ended
#   bat_range N                 (in FUNC) print the first of N consecutive free
#                               ports, counted as bat_port does
#
# The counter: table inet rudp_bat_$$ (made here, deleted on exit), a chain on
# the output hook (every segment on lo passes it once) with, per run, a named
# counter that every TCP segment whose source or destination port is one of
# the run's ports adds to (once, even when both ports are the run's).  Other
# tests' and helpers' traffic on the machine uses other ports and is not
# counted.  (A test killed with SIGKILL leaves its table: counters only,
# every packet accepted.)  The shim's TIME_WAIT hand-off at a server's exit
# (shim/ports/timewait.c: a loopback connection to 127.82.84.87, no byte of the
# program's) is counted apart, in c_tw, and printed.  Where nftables cannot run (no root, no nf_tables in a container)
# the test says "skip: ..." and exits 77.

BAT_TABLE=rudp_bat_$$
BAT_TOP=$T

battery_deps() {
    timeout 900 "$ROOT/integration/deps.sh" compat battery ||
        fail "cannot install the battery packages (integration/deps.sh compat battery)"
}

bat_nft_init() {
    command -v nft >/dev/null 2>&1 || fail "nft missing (integration/deps.sh test installs nftables)"
    _e=$(nft -f - 2>&1 <<NFT
table inet $BAT_TABLE {
    counter c_tcp { }
    counter c_shim { }
    counter c_tw { }
    set p_tcp { type inet_service; }
    set p_shim { type inet_service; }
    chain out {
        type filter hook output priority 0; policy accept;
        tcp sport @p_tcp counter name c_tcp
        tcp dport @p_tcp tcp sport != @p_tcp counter name c_tcp
        ip saddr 127.82.84.87 tcp dport @p_shim counter name c_tw
        ip daddr 127.82.84.87 tcp sport @p_shim counter name c_tw
        ip daddr 127.82.84.87 tcp dport @p_shim counter name c_tw
        ip saddr != 127.82.84.87 ip daddr != 127.82.84.87 tcp sport @p_shim counter name c_shim
        ip saddr != 127.82.84.87 ip daddr != 127.82.84.87 tcp dport @p_shim tcp sport != @p_shim counter name c_shim
        meta nfproto ipv6 tcp sport @p_shim counter name c_shim
        meta nfproto ipv6 tcp dport @p_shim tcp sport != @p_shim counter name c_shim
    }
}
NFT
) || { echo "skip: nftables cannot count TCP segments here: $_e"; exit 77; }
}

bat_nft_end() { nft delete table inet "$BAT_TABLE" 2>/dev/null || true; }

# bat_segments RUN: the packets counted for run RUN (tcp or shim).
bat_segments() {
    nft list counter inet "$BAT_TABLE" "c_$1" | sed -n 's/.*packets \([0-9]*\) .*/\1/p'
}

# bat_free PORT: nothing on PORT (TCP or UDP, any state), a TCP bind to it
# works, and no run of this test counted it before (a port of the kernel
# run is not taken again by the shim run: its TIME_WAIT may be the
# client's, which ss does not list by source port).
bat_free() {
    ! grep -qx "$1" "$BAT_USED" 2>/dev/null &&
        ! ss -H -n -ta "sport = :$1" | grep -q . && ! ss -H -n -ua "sport = :$1" | grep -q . &&
        "$PY" -c 'import socket, sys; socket.socket().bind(("", int(sys.argv[1])))' "$1" 2>/dev/null
}

bat_count() {
    for _bp in "$@"; do
        nft add element inet "$BAT_TABLE" "p_$SHIM_MODE" "{ $_bp }" ||
            fail "nft: cannot count port $_bp"
        echo "$_bp" >>"$BAT_USED"
    done
}

bat_port() { bat_range 1; }

bat_range() {
    _n=$1 _tries=0
    while [ "$_tries" -lt 200 ]; do
        # below the ephemeral ports, as lib.sh's free_port
        _b=$(( ($$ * 7919 + _tries * 104729) % 12000 + 20500 ))
        _k=0
        while [ "$_k" -lt "$_n" ] && bat_free $((_b + _k)); do _k=$((_k + 1)); done
        if [ "$_k" = "$_n" ]; then
            _k=0
            while [ "$_k" -lt "$_n" ]; do bat_count $((_b + _k)) >&2; _k=$((_k + 1)); done
            echo "$_b"
            return 0
        fi
        _tries=$((_tries + 1))
    done
    fail "no $_n consecutive free ports"
}

bat_no_asan() {
    [ "$ASAN_RUN" = 1 ] || return 0
    APP_LDP=$(regular_ldp)
    # bg_app's preload (lib.sh's shim_preload) follows BUILD and SAN
    BUILD=${BUILD%/asan} SAN=none SHIM=$APP_LDP
    echo "note: the programs under the regular shim ($APP_LDP) in an ASan run: $1"
}

bat_listen() {
    _lp=$1 _lport=$2 _li=0 _ln=$((${3:-20} * 20))
    while :; do
        if [ "$SHIM_MODE" = shim ]; then
            ss -H -n -ua "sport = :$_lport" 2>/dev/null | grep -q . && return 0
        else
            ss -H -n -tl "sport = :$_lport" 2>/dev/null | grep -q . && return 0
        fi
        if ! running "$_lp"; then
            for _lf in "$T"/*.log; do show "$_lf"; done
            fail "the server (pid $_lp) ended before it listened on port $_lport"
        fi
        [ "$_li" -lt "$_ln" ] || fail "nothing listens on port $_lport after ${3:-20} s"
        sleep 0.05
        _li=$((_li + 1))
    done
}

# A run ends every process it started, as the test's own exit would, but
# keeps its files for the test's end.
bat_run_end() {
    KEEP_TMP=1 compat_cleanup 2>/dev/null
}

battery() {
    _fn=$1 _expect=${2:-0}
    bat_nft_init
    trap 'bat_nft_end; compat_cleanup' EXIT
    trap 'exit 1' INT TERM
    if [ -z "${APP_LDP:-}" ]; then
        # RUDP_NO_SHIM=1 in the environment: the battery runs both ways anyway
        APP_LDP=$(under_shim printenv LD_PRELOAD) || fail "cannot run under the shim ($SHIM)"
        APP_ASO=$(under_shim printenv ASAN_OPTIONS) || APP_ASO=""
    fi
    echo "battery: over kernel TCP, then under the shim, in this run"
    _top=$T
    BAT_USED=$T/ports.counted
    for _m in tcp shim; do
        echo "=== $_m: $([ $_m = tcp ] && echo "kernel TCP, no preload" || echo "both ends under the shim ($APP_LDP)")"
        mkdir -p "$_top/$_m"
        _rc=0
        (
            SHIM_MODE=$_m T=$_top/$_m PIDS="" ASIDE="" KIDS_NOTED=""
            trap bat_run_end EXIT
            trap 'exit 1' INT TERM
            "$_fn"
        ) || _rc=$?
        [ "$_rc" = 0 ] || fail "the $_m run failed (exit $_rc)"
        echo "ok: the $_m run passed"
    done
    _nt=$(bat_segments tcp) _ns=$(bat_segments shim) _nw=$(bat_segments tw)
    echo "kernel TCP segments on the test's ports: $_nt over kernel TCP (reference), $_ns under the shim"
    # A server that closed a connection first leaves its port in a kernel
    # TIME_WAIT when it ends (shim/ports/timewait.c): one loopback connection to
    # the shim's own listener at 127.82.84.87, no byte of the program's.
    [ "${_nw:-0}" = 0 ] ||
        echo "info: $_nw segments of the shim's TIME_WAIT hand-off at exit (shim/ports/timewait.c), not counted"
    [ "${_nt:-0}" -gt 0 ] || fail "nftables counted no TCP segment in the kernel TCP run: the counter does not work"
    if [ "$_expect" = tcp ]; then
        [ "${_ns:-0}" -gt 0 ] ||
            fail "under the shim: no kernel TCP segment, where this program's listener is documented to be kernel TCP"
        echo "ok: under the shim the connections used kernel TCP, as documented for this program"
    else
        [ "${_ns:-1}" = 0 ] || fail "under the shim: $_ns kernel TCP segments on the test's ports, want 0"
        echo "ok: 0 kernel TCP segments under the shim"
    fi
}

# ab_check FILE N KEEPALIVE (t_lighttpd_ab, t_haproxy): ab's report says N complete, 0 failed, 0 non-2xx,
# and (KEEPALIVE=1) N keep-alive requests
ab_check() {
    _v() { sed -n "s/^$1:[[:space:]]*\([0-9]*\).*/\1/p" "$2"; }
    [ "$(_v 'Complete requests' "$1")" = "$2" ] || { show "$1"; fail "ab: not $2 complete requests"; }
    [ "$(_v 'Failed requests' "$1")" = 0 ] || { show "$1"; fail "ab: failed requests"; }
    ! grep -q '^Non-2xx responses' "$1" || { show "$1"; fail "ab: non-2xx responses"; }
    if [ "$3" = 1 ]; then
        [ "$(_v 'Keep-Alive requests' "$1")" = "$2" ] || { show "$1"; fail "ab -k: not $2 keep-alive requests"; }
    fi
    _k=""; [ "$3" = 0 ] || _k=" -k"
    echo "ok: ab$_k -n $2: $(_v 'Complete requests' "$1") complete, 0 failed, $(sed -n 's/^Requests per second:[[:space:]]*//p' "$1")"
}
