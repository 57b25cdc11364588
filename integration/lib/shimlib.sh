# Helpers for the integration scripts that run real programs and tests/prog_*
# both under the shim (the default) and, with RUDP_NO_SHIM=1, over plain
# kernel TCP -- which proves the scripts test TCP semantics, not our quirks.
# Sourced after lib.sh:
#
#   . "$(dirname "$0")/../../lib/lib.sh"
#   . "$ROOT/integration/lib/shimlib.sh"
#
#   run_app CMD...            run CMD in the foreground (under the shim unless
#                             RUDP_NO_SHIM=1), bounded by timeout 60 s
#   run_app_t SECS CMD...     the same with another bound
#   bg_app NAME CMD...        start_bg NAME with CMD as above (no timeout: lib.sh's
#                             cleanup ends it); LAST_PID is CMD's own PID, so it
#                             can be signalled (kill -9) directly
#   bg_app_io NAME IN OUT CMD...  the same with stdin from IN and stdout to OUT
#                             (stderr to $T/NAME.log): for nc, whose stdout is data
#   wait_exit PID [SECS]      wait (bounded, 60 s) for a background PID to exit;
#                             returns its exit status, 124 if it is still running
#   wait_line FILE ERE [SECS] wait (bounded, 10 s) until a line of FILE matches ERE
#   wait_listen PORT [SECS]   wait_udp under the shim, wait_tcp without it
#   assert_on_port PORT       while a connection on PORT is open: under the shim
#                             ss shows a UDP socket on PORT and no TCP connection
#                             with PORT at either end (a TCP listener is the dual
#                             listener's, for plain clients); without the shim a TCP
#                             connection on PORT, in any state but LISTEN (proves
#                             the probe itself sees a live transfer)
#   assert_transport FILE     FILE holds a prog_*'s output: its "transport:" lines
#                             must exist and, under the shim, never say tcp
#   run_both NAME CMD...      run CMD over kernel TCP (no preload), then as
#                             run_app does (under the shim); each must exit 0.
#                             Output in $T/NAME.tcp and $T/NAME.shim, printed;
#                             the shim run's "transport:" lines are checked
#                             (assert_transport). For the prog_* programs that
#                             must behave the same both ways.
#   run_shim NAME LABEL CMD... run CMD as run_app does (under the shim; set
#                             variables before the call for a variant): output
#                             in $T/NAME, printed with "shim, LABEL: " before
#                             each line; it must exit 0, and its "transport:"
#                             lines are checked (assert_transport)
#   need_bin NAME...          fail unless $BIN/NAME was built (a test program)
#   need_tool NAME...         fail unless $TOOLS/NAME was built (a user's tool)
#   ms_now                    CLOCK_REALTIME in milliseconds
#   capture_start NAME PORT   tshark capturing UDP PORT on loopback into
#                             $T/NAME.pcapng, returning once the file holds a
#                             first datagram sent to PORT (so nothing sent
#                             after is missed); its PID in $CAPTURE_PID;
#                             fails if tshark is missing
#   capture_stop FILE PORT PID
#                             end tshark PID capturing UDP PORT into FILE once
#                             FILE holds all it captured: a last datagram is
#                             sent to PORT and waited for. The two marks hold
#                             "rudp-capture-" (filter them out by it)
#   show FILE...              print files (a failing step's logs) to stderr
#   end_keepers               end (by PID) the keepers of the processes named
#                             by "pid: N" lines in $T/*.shim (rudp-stat: "keeper
#                             of pid N"): those a failure, or TIME_WAIT, left;
#                             for an EXIT trap: trap 'end_keepers; cleanup' ...
#   old_shim COMMIT           the shim of an earlier COMMIT, for tests of two
#                             builds on one wire: built from git history (make
#                             shim in a git archive of COMMIT, seconds on two
#                             cores) into $ROOT/build/compat/COMMIT/ the first
#                             time and reused after; its path in $OLD_SHIM.
#                             Skips the test without git or the commit (a
#                             tarball, a shallow clone)
#
# Under the shim the programs also get RUDP_EXPECT_ABORT=1: a killed or
# reset peer must then never look like a clean end (see tests/prog_killpeer.c).

if [ "${RUDP_NO_SHIM:-0}" = 1 ]; then
    SHIM_MODE=tcp
    echo "mode: kernel TCP (RUDP_NO_SHIM=1)"
else
    SHIM_MODE=shim
    # The preload line exactly as lib.sh's under_shim builds it (ASan/TSan
    # aware), read back once; programs are then started by env directly so
    # that start_bg's PID is the program's own (a backgrounded shell function
    # would put a subshell in between).
    APP_LDP=$(under_shim printenv LD_PRELOAD) || fail "cannot run under the shim ($SHIM)"
    APP_ASO=$(under_shim printenv ASAN_OPTIONS) || APP_ASO=""
    echo "mode: under the shim (LD_PRELOAD=$APP_LDP)"
fi

# curl deadlocks in setlocale() with libasan preloaded (shim or not): in an
# ASan run a command that runs curl (named anywhere in it: `env X=1 curl`,
# or a shell session that calls curl, APP_USES_CURL=1) gets the regular
# shim; its peers keep the ASan one.
app_ldp() {
    case "$SAN" in
    asan)
        for _a in "$@"; do
            if [ "${_a##*/}" = curl ] || [ "${APP_USES_CURL:-0}" = 1 ]; then
                echo "$ROOT/build/librudp_shim.so"
                return
            fi
        done ;;
    esac
    echo "$APP_LDP"
}

run_app_t() {
    _secs=$1; shift
    if [ "$SHIM_MODE" = shim ]; then
        timeout -k 5 "$_secs" env "LD_PRELOAD=$(app_ldp "$@")" "ASAN_OPTIONS=$APP_ASO" \
            RUDP_EXPECT_ABORT=1 "$@"
    else
        timeout -k 5 "$_secs" "$@"
    fi
}

# prog_both PROG TAG [ARG...]: $BIN/PROG with the ARGs over kernel TCP,
# then under the shim (RUDP_APP_RECV=1 RUDP_STATS=1): its output in
# $T/tcpTAG and $T/shimTAG, the counters in $T/statsTAG; fails if either
# run exits other than 0, or the shim's ran over no rudp.
prog_both() {
    _pb=$1 _tag=$2
    shift 2
    _rc=0
    timeout -k 5 180 "$BIN/$_pb" "$@" >"$T/tcp$_tag" 2>&1 || _rc=$?
    sed 's/^/tcp:  /' "$T/tcp$_tag"
    [ "$_rc" = 0 ] || fail "$_pb $* over kernel TCP exited $_rc"
    RUDP_APP_RECV=1 RUDP_STATS=1 run_app_t 180 "$BIN/$_pb" "$@" >"$T/shim$_tag" \
        2>"$T/stats$_tag" || _rc=$?
    sed 's/^/shim: /' "$T/shim$_tag"
    [ "$_rc" = 0 ] || { show "$T/stats$_tag"; fail "$_pb $* under the shim exited $_rc"; }
    assert_transport "$T/shim$_tag"
}

run_app() { run_app_t 60 "$@"; }

bg_app() {
    _name=$1; shift
    if [ "$SHIM_MODE" = shim ]; then
        start_bg "$_name" under_shim env RUDP_EXPECT_ABORT=1 "$@"
    else
        start_bg "$_name" "$@"
    fi
}

# A backgrounded simple command (not a function) so that $! is the program.
bg_app_io() {
    _name=$1 _in=$2 _out=$3; shift 3
    : >"$T/$_name.log" # now, as start_bg's
    [ ! -f "$_out" ] || : >"$_out"
    if [ "$SHIM_MODE" = shim ]; then
        env "LD_PRELOAD=$(app_ldp "$@")" "ASAN_OPTIONS=$APP_ASO" RUDP_EXPECT_ABORT=1 "$@" \
            <"$_in" >"$_out" 2>"$T/$_name.log" &
    else
        "$@" <"$_in" >"$_out" 2>"$T/$_name.log" &
    fi
    PIDS="$PIDS $!"
    LAST_PID=$!
}

wait_exit() {
    _pid=$1 _i=0 _n=$((${2:-60} * 20))
    while kill -0 "$_pid" 2>/dev/null; do
        # A zombie has exited; wait below reaps it.
        case "$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$_pid/status" 2>/dev/null)" in
            Z) break ;;
        esac
        [ "$_i" -lt "$_n" ] || return 124
        sleep 0.05
        _i=$((_i + 1))
    done
    _rc=0
    wait "$_pid" || _rc=$?
    return "$_rc"
}

wait_line() {
    _i=0 _n=$((${3:-10} * 20))
    while [ "$_i" -lt "$_n" ]; do
        if [ -f "$1" ] && grep -Eq -- "$2" "$1"; then return 0; fi
        sleep 0.05
        _i=$((_i + 1))
    done
    return 1
}

# stat_until FILE PATTERN ARGS...: rudp-stat ARGS into FILE (its errors
# into FILE.err) until a line matches PATTERN (grep -E), 10 s at most, or
# the test fails. An engine answers once it runs: a moment after the
# listener's UDP socket (which wait_udp sees) is bound.
stat_until() {
    _f=$1 _pat=$2; shift 2
    _i=0
    while :; do
        "$TOOLS/rudp-stat" "$@" >"$_f" 2>"$_f.err" || true
        grep -Eq -- "$_pat" "$_f" && return 0
        [ "$_i" -lt 100 ] || { show "$_f" "$_f.err"; fail "rudp-stat $*: no line '$_pat' in 10 s"; }
        sleep 0.1
        _i=$((_i + 1))
    done
}

wait_listen() {
    if [ "$SHIM_MODE" = shim ]; then wait_udp "$@"; else wait_tcp "$@"; fi
}

assert_on_port() {
    _p=$1
    _tcp=$(ss -H -tan "( sport = :$_p or dport = :$_p )" 2>/dev/null || true)
    if [ "$SHIM_MODE" = shim ]; then
        # A server's TCP listener is the dual listener for plain clients
        # (RUDP_ACCEPT_TCP): only a TCP connection would mean a shimmed
        # client's bytes went over kernel TCP.
        _tcp=$(echo "$_tcp" | grep -v '^LISTEN' || true)
        _udp=$(ss -H -uan "sport = :$_p" 2>/dev/null || true)
        [ -n "$_udp" ] || fail "no UDP socket on port $_p while a transfer runs"
        [ -z "$_tcp" ] || fail "TCP sockets on port $_p under the shim:
$_tcp"
        echo "ok: port $_p: UDP socket(s), no TCP connection:"
        echo "$_udp" | sed 's/^/    /'
    else
        # Any state but LISTEN: the server may have written everything and
        # closed its end already (FIN-WAIT-2 / CLOSE-WAIT) while curl reads.
        echo "$_tcp" | grep -qv '^LISTEN' || fail "no TCP connection on port $_p while a transfer runs"
        echo "ok: port $_p: kernel TCP connection seen (RUDP_NO_SHIM=1; the UDP check applies under the shim)"
    fi
}

assert_transport() {
    # a case that skipped before it made a connection ("skip: not root",
    # "skip: binfmt_misc not mounted and cannot be") has none to check
    if ! grep -q '^transport: ' "$1" && grep -q '^skip: ' "$1"; then
        echo "ok: no connection to check (the case skipped)"
        return 0
    fi
    grep -q '^transport: ' "$1" || fail "$1: no transport line"
    if [ "$SHIM_MODE" = shim ] && grep '^transport: ' "$1" | grep -qw tcp; then
        fail "$1: a connection fd is a kernel TCP socket under the shim: $(grep '^transport: ' "$1" | grep -w tcp | head -1)"
    fi
    echo "ok: $(grep '^transport: ' "$1" | sort | uniq -c | sed 's/^ *//' | tr '\n' ';')"
}

run_both() {
    _n=$1; shift
    _rc=0
    timeout -k 5 60 "$@" >"$T/$_n.tcp" 2>&1 || _rc=$?
    sed 's/^/tcp:  /' "$T/$_n.tcp"
    [ "$_rc" = 0 ] || fail "$_n over kernel TCP exited $_rc"
    run_app "$@" >"$T/$_n.shim" 2>&1 || _rc=$?
    sed 's/^/shim: /' "$T/$_n.shim"
    [ "$_rc" = 0 ] || fail "$_n under the shim exited $_rc"
    assert_transport "$T/$_n.shim"
}

run_shim() {
    _n=$1 _l=$2; shift 2
    _rc=0
    run_app "$@" >"$T/$_n" 2>&1 || _rc=$?
    sed "s/^/shim, $_l: /" "$T/$_n"
    [ "$_rc" = 0 ] || fail "$_n ($_l) exited $_rc"
    assert_transport "$T/$_n"
}

need_bin() {
    for _b in "$@"; do
        [ -x "$BIN/$_b" ] || fail "$BIN/$_b not built (make progs)"
    done
}

need_tool() {
    for _b in "$@"; do
        [ -x "$TOOLS/$_b" ] || fail "$TOOLS/$_b not built (make tools)"
    done
}

ms_now() { echo $(($(date +%s%N) / 1000000)); }

show() {
    for _f in "$@"; do
        echo "--- $_f" >&2
        tail -30 "$_f" >&2 2>/dev/null || true
    done
}

# capture_mark FILE PORT WHAT: sends datagram rudp-capture-WHAT-... to PORT
# until FILE holds it (dumpcap writes in order), 10 s at most.
capture_mark() {
    _mark="rudp-capture-$3-$$-$2"
    _k=0
    until grep -qa "$_mark" "$1" 2>/dev/null; do
        [ "$_k" -lt 200 ] || fail "the capture $1 never showed its $3 datagram"
        # again each time: one sent before dumpcap's filter was set is lost
        [ $((_k % 10)) != 0 ] || "$PY" -c 'import socket, sys
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(sys.argv[1].encode(), ("127.0.0.1", int(sys.argv[2])))' \
            "$_mark" "$2"
        sleep 0.05
        _k=$((_k + 1))
    done
}

capture_start() {
    command -v tshark >/dev/null || fail "tshark is missing (integration/deps.sh test installs it)"
    tshark -i lo -B 64 -f "udp port $2" -w "$T/$1.pcapng" >"$T/$1.tshark" 2>&1 &
    CAPTURE_PID=$!
    PIDS="$PIDS $CAPTURE_PID"
    wait_line "$T/$1.tshark" "Capturing on" 10 || fail "$1: tshark did not start: $(cat "$T/$1.tshark")"
    capture_mark "$T/$1.pcapng" "$2" start
}

capture_stop() {
    capture_mark "$1" "$2" end
    kill -INT "$3"
    wait_exit "$3" 10 || fail "tshark did not stop"
}

end_keepers() {
    cat "$T"/*.shim 2>/dev/null | sed -n 's/^pid: //p' | sort -u >"$T/children"
    [ -s "$T/children" ] || return 0
    timeout 10 "$TOOLS/rudp-stat" 2>/dev/null |
        sed -n 's/^pid \([0-9]*\) .* keeper of pid \([0-9]*\)$/\2 \1/p' |
        while read -r of pid; do
            if grep -qx "$of" "$T/children"; then kill "$pid" 2>/dev/null || true; fi
        done
}

old_shim() {
    _od=$ROOT/build/compat/$1
    OLD_SHIM=$_od/build/librudp_shim.so
    if [ -f "$OLD_SHIM" ]; then
        echo "the $1 shim: $OLD_SHIM (built before)"
        return 0
    fi
    command -v git >/dev/null 2>&1 || skip "no git to build the $1 shim from"
    git -C "$ROOT" cat-file -e "$1^{commit}" 2>/dev/null ||
        skip "no git history for $1 (a tarball or a shallow clone)"
    _ot=$(date +%s)
    mkdir -p "$ROOT/build/compat"
    rm -rf "$_od.$$"
    mkdir "$_od.$$"
    git -C "$ROOT" archive "$1" | tar -x -C "$_od.$$" || fail "git archive $1"
    # its own make, not the flags or variables of a make this test runs under
    timeout 600 env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
        make -C "$_od.$$" -j2 BUILD=build SAN= OPT=-O2 shim >"$T/old-$1.log" 2>&1 || {
        tail -20 "$T/old-$1.log" >&2
        rm -rf "$_od.$$"
        fail "building the $1 shim (make shim in a git archive of it)"
    }
    # in place in one step; should another run have put it there first, that one
    mv -T "$_od.$$" "$_od" 2>/dev/null || rm -rf "$_od.$$"
    echo "built the $1 shim in $(($(date +%s) - _ot)) s: $OLD_SHIM"
}
