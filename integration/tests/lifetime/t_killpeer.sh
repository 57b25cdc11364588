#!/bin/sh
# A peer killed with SIGKILL in the middle of a transfer, both ends under the
# shim (kernel TCP with RUDP_NO_SHIM=1).  tests/prog_killpeer.c: the victim
# streams about 3 MB/s; once the survivor has 1 MiB we kill -9 the victim and
# the survivor's blocked read() must end within the bound, as an abort it can
# tell from a clean end (read() ECONNRESET/ETIMEDOUT, or EOF then SO_ERROR
# ECONNRESET/ETIMEDOUT).  Under the shim RUDP_EXPECT_ABORT=1 makes a plain
# EOF a failure; over kernel TCP a plain EOF is what a killed process's FIN
# gives, except in the third case, where the victim holds unread data and
# its kernel must reset.
#   1. the listening side is killed, the connecting side survives (IPv4)
#   2. the connecting side is killed, the listening side survives (IPv6)
#   3. as 1, the survivor having written bytes the victim never read
# Under the shim the dead peer is found by the shim's timeouts, shortened
# here (RUDP_IDLE_TIMEOUT, RUDP_KEEPALIVE, RUDP_USER_TIMEOUT, shim/base/config.c),
# so the bound is that timeout plus slack; the script also checks the
# survivor exits within bound + 2 s of the kill.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_killpeer
if [ "$SHIM_MODE" = shim ]; then
    export RUDP_IDLE_TIMEOUT=3s RUDP_KEEPALIVE=1s RUDP_USER_TIMEOUT=3s
    BOUND=${RUDP_KILL_BOUND:-6}
else
    BOUND=${RUDP_KILL_BOUND:-5}
fi

killcase() {
    kc=$1 victim=$2 addr=$3; shift 3
    P=$(free_port)
    if [ "$victim" = listen ]; then
        bg_app "$kc-victim" "$BIN/prog_killpeer" send listen "$addr" "$P"
        VPID=$LAST_PID
        wait_listen "$P"
        bg_app "$kc-survivor" "$BIN/prog_killpeer" recv connect "$addr" "$P" -b "$BOUND" "$@"
        SPID=$LAST_PID
    else
        bg_app "$kc-survivor" "$BIN/prog_killpeer" recv listen "$addr" "$P" -b "$BOUND" "$@"
        SPID=$LAST_PID
        wait_listen "$P"
        bg_app "$kc-victim" "$BIN/prog_killpeer" send connect "$addr" "$P"
        VPID=$LAST_PID
    fi
    wait_line "$T/$kc-survivor.log" '^recv: got' 20 ||
        { show "$T/$kc-survivor.log" "$T/$kc-victim.log"; fail "$kc: the transfer did not start"; }
    grep -q '^send: connected' "$T/$kc-victim.log" || fail "$kc: victim not connected"
    t0=$(ms_now)
    kill -9 "$VPID"
    rc=0
    wait_exit "$SPID" $((BOUND + 30)) || rc=$?
    ms=$(( $(ms_now) - t0 ))
    cat "$T/$kc-survivor.log"
    [ "$rc" != 124 ] || fail "$kc: the survivor still runs $ms ms after the kill: it hangs"
    [ "$rc" = 0 ] || fail "$kc: the survivor failed (exit $rc)"
    [ "$ms" -le $((BOUND * 1000 + 2000)) ] ||
        fail "$kc: the survivor took $ms ms after the kill, bound $((BOUND * 1000 + 2000))"
    echo "ok: $kc: the survivor saw the abort and exited $ms ms after the kill"
}

killcase listener-killed listen 127.0.0.1
if have_ipv6_lo; then
    killcase connector-killed connect ::1
else
    skip_ipv6 "connector-killed over ::1 (IPv4 instead)"
    killcase connector-killed connect 127.0.0.1
fi
killcase listener-killed-unread listen 127.0.0.1 -w
