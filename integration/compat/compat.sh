# Helpers for the compat scripts (integration/t_*.sh that run packaged
# servers: nginx, redis, socat, sshd, postgres, iperf3...).  Sourced after
# lib.sh and shimlib.sh:
#
#   compat_deps                 install the `compat` package group (bounded)
#   assert_listener PORT        under the shim: a UDP socket on PORT and no TCP
#                               listener; over kernel TCP: a TCP listener
#   stop_app PID [SECS] [SIG]   send SIG (default TERM) to PID, wait (bounded,
#                               default 20 s); returns its exit status, 124 if
#                               it is still running (cleanup then kills it)
#   secs_since MS               whole seconds since ms_now said MS

compat_deps() {
    timeout 900 "$ROOT/integration/deps.sh" compat ||
        fail "cannot install the compat packages (integration/deps.sh compat)"
}

assert_listener() {
    _tl=$(ss -H -tln "sport = :$1" 2>/dev/null || true)
    if [ "$SHIM_MODE" = shim ]; then
        ss -H -uan "sport = :$1" 2>/dev/null | grep -q . || fail "no UDP socket on port $1 under the shim"
        [ -z "$_tl" ] || fail "a kernel TCP listener on port $1 under the shim: $_tl"
        echo "ok: port $1: UDP socket, no TCP listener"
    else
        [ -n "$_tl" ] || fail "no TCP listener on port $1"
        echo "ok: port $1: kernel TCP listener (RUDP_NO_SHIM=1)"
    fi
}

stop_app() {
    kill "-${3:-TERM}" "$1" 2>/dev/null || true
    wait_exit "$1" "${2:-20}"
}

secs_since() { echo $(( ($(ms_now) - $1 + 500) / 1000 )); }
