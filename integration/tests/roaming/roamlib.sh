# Helpers of the roaming tests (issue 15), sourced after lib.sh:
#
#   . "$(dirname "$0")/../../lib/lib.sh"
#   . "$ROOT/integration/tests/roaming/roamlib.sh"
#
# Each test runs its transfer twice, each on an emulated link of its own
# (netns.sh, also sourced here): over kernel TCP (information: how TCP fares,
# printed, never asserted) and under the shim (asserted), the two at once
# (roam_beside). roam_mode MODE picks one.
# ROAM_STALL (seconds, default 30): how long a transfer may go without a
# byte arriving before it is stopped and reported. ROAM_TCP_STALL (default
# ROAM_STALL), set by a test before roam_beside: the kernel TCP run's
# ROAM_STALL, for a test whose TCP connection cannot come back (the address
# it is bound to is gone): it is stopped sooner, its fate the same.
#
#   roam_setup SIZE          what every roaming test needs: root, linkemu built,
#                            deps.sh's test packages; and $T/payload, SIZE
#                            random bytes
#   roam_mode tcp|shim       ROAM_MODE for what follows; "shim" needs the shim.
#                            With ROAM_TCP=0 in the environment "tcp" says so
#                            and returns 1: the kernel TCP run is skipped
#   roam_beside              the kernel TCP run goes beside the shim run:
#                            in the test, it starts this script again with
#                            ROAM_ONLY=tcp (start_aside; not with ROAM_TCP=0,
#                            which roam_mode says) and is false; in that copy
#                            it is roam_mode tcp and true (ROAM_STALL there
#                            $ROAM_TCP_STALL, if set): the copy runs the
#                            kernel TCP part in namespaces of its own, prints
#                            what came of it and exits
#   roam_beside_said         waits for that copy and prints what it printed;
#                            fails if it failed (its set-up, as the test would)
#   roam_bg [-i FILE] a|b NAME CMD...
#                            emu_bg under the mode: under the shim with
#                            RUDP_FALLBACK=none (nothing may fall back to kernel
#                            TCP), RUDP_STATS=1 and RUDP_LOG=info (or $RUDP_LOG),
#                            and the words of $ROAM_ENV (e.g. RUDP_CC=bbr);
#                            stdin from FILE (default /dev/null), output to
#                            $EMU_DIR/NAME.log, LAST_PID is CMD's own PID
#   roam_listening b PORT    wait (10 s) until a server listens on PORT in b:
#                            its UDP port under the shim, TCP otherwise
#   roam_over_rudp b PORT    under the shim: fail if a TCP connection on PORT
#                            exists in b (the bytes must cross as rudp)
#   roam_wait_bytes FILE N PID [STALL]
#                            wait until FILE holds N bytes (0), PID has exited
#                            (1), or FILE has not grown for STALL seconds (2,
#                            default $ROAM_STALL=30); ROAM_SIZE is FILE's size
#   roam_wait_exit PID [STALL]  wait until PID exits or $ROAM_WATCH (a file)
#                            has not grown for STALL seconds: then PID is killed;
#                            ROAM_RC is its exit status, 124 if it was killed
#   roam_transfer a2b|b2a PORT RATE [OPTION...]
#                            $T/payload crosses one connection (roamio.py, under
#                            the mode, OPTIONs at both ends, e.g. --cc bbr): a
#                            connects to a listener in b on PORT,
#                            the sender paces at RATE bytes/s (0: unpaced); the
#                            receiver writes $T/out and logs each read to
#                            $T/prog. Returns once both run: ROAM_SENDER and
#                            ROAM_RECEIVER are their PIDs, ROAM_T0 the start
#   roam_finish              waits for the transfer's end (a side silent for
#                            $ROAM_STALL s is stopped) and says what came of it:
#                            ROAM_OK=1 if both ends said done and $T/out equals
#                            $T/payload (sha256); ROAM_GOT, bytes that arrived;
#                            ROAM_OUTCOME, one line (goodput at the receiver, or
#                            each end's error and what arrived)
#   roam_stop PID            end PID (TERM, then KILL after 5 s); emu_down ends
#                            what is left in the namespaces (forked children,
#                            keepers)
#   roam_first_after MS LOG  the first "MS TOTAL" line of roamio.py's receive
#                            log after wall-clock millisecond MS, or nothing
#   ms_now                   CLOCK_REALTIME in milliseconds (as roamio.py logs)
#   roam_show FILE...        the last 30 lines of each FILE, on stderr
#   mb BYTES                 BYTES as "12.3 MB" (10^6)
#   secs MS                  milliseconds as "12.3 s"
#   ROAM_IO                  integration/tests/roaming/roamio.py

. "$ROOT/integration/emu/netns.sh"

ROAM_IO=$ROOT/integration/tests/roaming/roamio.py
ROAM_STALL=${ROAM_STALL:-30}
ROAM_WATCH=""

roam_setup() {
    need_netns "network namespaces, nftables, raw sockets"
    need_tun "the link emulator"
    [ -x "$BIN/linkemu" ] || fail "linkemu not built: make $BIN/linkemu"
    timeout 900 "$ROOT/integration/deps.sh" test ||
        fail "cannot install the test packages (integration/deps.sh test)"
    head -c "$1" /dev/urandom >"$T/payload"
}

roam_mode() {
    ROAM_MODE=$1
    if [ "$1" = shim ]; then
        [ -f "$SHIM" ] || fail "shim not built: $SHIM"
        ROAM_LDP=$(shim_preload)
        echo "== under the shim (RUDP_FALLBACK=none)"
    elif [ "${ROAM_TCP:-1}" = 0 ]; then
        echo "== kernel TCP: skipped (ROAM_TCP=0)"
        return 1
    else
        echo "== kernel TCP (information: how TCP fares is printed, not asserted)"
    fi
}

ROAM_BESIDE=""
roam_beside() {
    if [ "${ROAM_ONLY:-}" = tcp ]; then
        roam_mode tcp
    elif [ "${ROAM_TCP:-1}" = 0 ]; then
        roam_mode tcp || true # says it is skipped
        return 1
    else
        start_aside beside env ROAM_ONLY=tcp "ROAM_STALL=${ROAM_TCP_STALL:-$ROAM_STALL}" sh "$0"
        ROAM_BESIDE=$LAST_PID
        return 1
    fi
}

roam_beside_said() {
    [ -n "$ROAM_BESIDE" ] || return 0
    _rc=0
    aside_wait "$ROAM_BESIDE" || _rc=$?
    ROAM_BESIDE=""
    cat "$T/beside.log"
    [ "$_rc" = 0 ] || fail "the kernel TCP run beside this one exited $_rc"
}

roam_bg() {
    _in=/dev/null
    if [ "$1" = -i ]; then _in=$2; shift 2; fi
    emu__side "$1" roam_bg
    _bgname=$2
    shift 2
    if [ "$ROAM_MODE" = shim ]; then
        # shellcheck disable=SC2086 # ROAM_ENV: words
        set -- env "LD_PRELOAD=$ROAM_LDP" "ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}" \
            RUDP_FALLBACK=none RUDP_STATS=1 "RUDP_LOG=${RUDP_LOG:-info}" ${ROAM_ENV:-} "$@"
    fi
    # As emu_bg does, with stdin: a background job's is /dev/null unless said.
    ip netns exec "$_ns" "$@" <"$_in" >"$EMU_DIR/$_bgname.log" 2>&1 &
    LAST_PID=$!
    EMU_BG_PIDS="$EMU_BG_PIDS $LAST_PID"
}

roam_listening() {
    emu__side "$1" roam_listening
    if [ "$ROAM_MODE" = shim ]; then _p=-uan; else _p=-tln; fi
    _i=0
    until ip netns exec "$_ns" ss -H -n "$_p" "sport = :$2" 2>/dev/null | grep -q .; do
        _i=$((_i + 1))
        [ "$_i" -lt 200 ] || fail "nothing listens on port $2 in $1 after 10 s ($ROAM_MODE)"
        sleep 0.05
    done
}

roam_over_rudp() {
    [ "$ROAM_MODE" = shim ] || return 0
    emu__side "$1" roam_over_rudp
    _tcp=$(ip netns exec "$_ns" ss -H -tn state established "( sport = :$2 or dport = :$2 )" 2>/dev/null)
    [ -z "$_tcp" ] || fail "under the shim a kernel TCP connection carries port $2: $_tcp"
}

roam_transfer() {
    rm -f "$T/out" "$T/prog"
    if [ "$1" = a2b ]; then _way_b="--recv $T/out --log $T/prog" _way_a="--send $T/payload"
    else _way_b="--send $T/payload" _way_a="--recv $T/out --log $T/prog"; fi
    _dir=$1 _port=$2 _rate=$3
    shift 3
    # shellcheck disable=SC2086
    roam_bg b srv "$PY" "$ROAM_IO" listen "$_port" $_way_b --rate "$_rate" "$@"
    _srv=$LAST_PID
    roam_listening b "$_port"
    ROAM_T0=$(ms_now)
    # shellcheck disable=SC2086
    roam_bg a cli "$PY" "$ROAM_IO" connect "$EMU_IP_B" "$_port" $_way_a --rate "$_rate" "$@"
    if [ "$_dir" = a2b ]; then ROAM_SENDER=$LAST_PID ROAM_RECEIVER=$_srv ROAM_SNAME=cli ROAM_RNAME=srv
    else ROAM_SENDER=$_srv ROAM_RECEIVER=$LAST_PID ROAM_SNAME=srv ROAM_RNAME=cli; fi
}

# The last line roamio.py printed in $EMU_DIR/NAME.log (not the shim's).
roam__said() { grep -E '^(done|error|listening|peer|local)' "$EMU_DIR/$1.log" 2>/dev/null | tail -n 1; }

# How a side ended: exit status $1, or if it was stopped ($1 = 124) why.
roam__rc() {
    if [ "$1" != 124 ]; then echo "exit $1"
    elif [ "$2" = "$ROAM_SENDER" ]; then echo "stopped: nothing arrived for ${ROAM_STALL} s"
    else echo "stopped: still waiting 5 s after the sender was gone"; fi
}

roam_finish() {
    ROAM_WATCH=$T/out
    roam_wait_exit "$ROAM_SENDER"
    _rs=$ROAM_RC
    # Once the sender has gone, the receiver has nothing more to wait for.
    roam_wait_exit "$ROAM_RECEIVER" 5
    _rr=$ROAM_RC
    ROAM_GOT=$(roam__size "$T/out")
    ROAM_OK=0
    if [ "$_rs" = 0 ] && [ "$_rr" = 0 ] && [ "$(sha "$T/out")" = "$(sha "$T/payload")" ]; then
        ROAM_OK=1
        ROAM_OUTCOME=$(awk 'NR == 1 { t0 = $1; b0 = $2 } { t = $1; b = $2 }
            END { printf "complete, sha256 equal: %.1f MB, goodput %.2f Mbit/s at the receiver (%.1f s)",
                  b / 1e6, (t > t0 ? (b - b0) * 8 / (t - t0) / 1000 : 0), (t - t0) / 1000 }' "$T/prog")
    else
        ROAM_OUTCOME="receiver: '$(roam__said "$ROAM_RNAME")' ($(roam__rc "$_rr" "$ROAM_RECEIVER")),"
        ROAM_OUTCOME="$ROAM_OUTCOME sender: '$(roam__said "$ROAM_SNAME")' ($(roam__rc "$_rs" "$ROAM_SENDER"));"
        ROAM_OUTCOME="$ROAM_OUTCOME $(mb "$ROAM_GOT") of"
        ROAM_OUTCOME="$ROAM_OUTCOME $(mb "$(roam__size "$T/payload")") arrived"
    fi
}

# True while PID runs (an exited child not yet reaped is a zombie).
roam__alive() {
    [ -r "/proc/$1/stat" ] && ! sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | grep -q '^[ZX]'
}

roam__size() { stat -c %s "$1" 2>/dev/null || echo 0; }

roam_wait_bytes() {
    _f=$1 _want=$2 _pid=$3 _stall=${4:-$ROAM_STALL}
    _last=-1 _still=0
    while :; do
        ROAM_SIZE=$(roam__size "$_f")
        [ "$ROAM_SIZE" -ge "$_want" ] && return 0
        roam__alive "$_pid" || return 1
        if [ "$ROAM_SIZE" = "$_last" ]; then
            _still=$((_still + 1))
            [ "$_still" -lt $((_stall * 20)) ] || return 2
        else
            _last=$ROAM_SIZE _still=0
        fi
        sleep 0.05
    done
}

roam_wait_exit() {
    _pid=$1 _stall=${2:-$ROAM_STALL}
    _last=-1 _still=0
    while roam__alive "$_pid"; do
        _now=$(roam__size "${ROAM_WATCH:-/dev/null}")
        if [ "$_now" = "$_last" ]; then
            _still=$((_still + 1))
            if [ "$_still" -ge $((_stall * 20)) ]; then
                roam_stop "$_pid"
                ROAM_RC=124
                return 0
            fi
        else
            _last=$_now _still=0
        fi
        sleep 0.05
    done
    ROAM_RC=0
    wait "$_pid" 2>/dev/null || ROAM_RC=$?
}

roam_stop() { emu__kill_pid "$1"; }

roam_first_after() {
    awk -v t="$1" '$1 > t { print; exit }' "$2" 2>/dev/null
}

roam_show() {
    for _f in "$@"; do
        echo "--- $_f" >&2
        tail -n 30 "$_f" >&2 2>/dev/null || true
    done
}

ms_now() { date +%s%3N; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
secs() { awk -v m="$1" 'BEGIN { printf "%.1f s", m / 1000 }'; }
