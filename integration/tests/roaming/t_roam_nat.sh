#!/bin/sh
# Roaming (issue 15): a transfer lives through a NAT that re-maps the
# client's source port every second. Namespace a sits behind a NAT
# (emu_nat_on a: masquerade to a port the client's socket does not have);
# 7 MB go from a to b over one connection (roamio.py at both ends, the
# sender paced at 0.5 MB/s, so the transfer takes at least 14 s; 5 ms each
# way), and at each 16th of the bytes (about every second) the NAT forgets
# its mappings (emu_nat_rebind a):
# the next packet leaves from a new port, and what b still sends to the old
# one is dropped.
#
# Asserts, under the shim (RUDP_FALLBACK=none): both ends finish, nothing is
# lost (sha256 equal), at least 10 rebinds fell mid-transfer. Prints the
# goodput and, for each rebind, how long the receiver then waited for its
# next bytes.
#
# Beside that, at the same time on a link of its own, the same over kernel
# TCP, for information (the server takes a segment from a new port for a
# stranger's and resets it). A run with nothing arriving for $ROAM_STALL
# (30) seconds is stopped.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/tests/roaming/roamlib.sh"

RATE=500000
# The sender's pacing makes the transfer last at least SECS s. Rebind k
# falls when the receiver holds k/(SECS + 2) of the bytes (about one a
# second, and none before the path has carried bytes again since the last),
# so they fall mid-transfer however slowly a busy machine runs this loop:
# a schedule by the clock lost its tenth to a loaded CI machine.
SECS=${ROAM_SECS:-14}
SIZE=$((RATE * SECS))
PORT=7400
roam_setup "$SIZE"

# run_nat: one transfer under $ROAM_MODE with a rebind at each
# (SECS + 2)th of its bytes. Leaves roam_finish's results, REBINDS (how
# many fell mid-transfer), WAITS (for each, how long the receiver waited
# for its next bytes) and SUMMARY.
run_nat() {
    EMU_IPV6=0 emu_up roamnat "delay=5" "delay=5"
    emu_nat_on a
    roam_transfer a2b "$PORT" "$RATE"
    REBINDS=0 WAITS="" k=1 stop="" size=0 grew=$ROAM_T0
    while [ -z "$stop" ] && [ "$k" -le $((SECS + 1)) ]; do
        due=$((SIZE / (SECS + 2) * k))
        # Wait for the bytes of rebind k, unless the transfer is over or
        # stalled (then roam_finish stops it).
        while [ "$size" -lt "$due" ]; do
            roam__alive "$ROAM_SENDER" || { stop="sender ended"; break; }
            now=$(roam__size "$T/out")
            [ "$now" = "$size" ] || { size=$now grew=$(ms_now); }
            [ $(($(ms_now) - grew)) -lt $((ROAM_STALL * 1000)) ] || { stop=stalled; break; }
            [ "$size" -ge "$due" ] || sleep 0.05
        done
        [ -z "$stop" ] || break
        [ "$(roam__size "$T/out")" -lt "$SIZE" ] || break
        [ "$k" = 1 ] && roam_over_rudp b "$PORT"
        emu_nat_rebind a
        at=$(ms_now)
        REBINDS=$k
        WAITS="$WAITS $k:$at"
        k=$((k + 1))
    done
    roam_finish
    # Rebind k's wait: from it to the next read at the receiver.
    w=""
    for e in $WAITS; do
        line=$(roam_first_after "${e#*:}" "$T/prog")
        if [ -n "$line" ]; then w="$w #${e%%:*} $((${line%% *} - ${e#*:})) ms,"
        else w="$w #${e%%:*} none,"; fi
    done
    WAITS=${w%,}
    SUMMARY="$REBINDS rebinds mid-transfer; $ROAM_OUTCOME"
    [ "$REBINDS" = 0 ] || SUMMARY="$SUMMARY; the receiver's wait for its next bytes after each rebind:$WAITS"
    emu_down 2>/dev/null
}

# The kernel TCP run (information) beside this one, in namespaces of its own.
if roam_beside; then
    run_nat
    echo "kernel TCP: $SUMMARY"
    exit 0
fi

roam_mode shim
run_nat
roam_beside_said
if [ "$ROAM_OK" != 1 ]; then
    roam_show "$EMU_DIR/cli.log" "$EMU_DIR/srv.log"
    fail "under the shim: $SUMMARY"
fi
[ "$REBINDS" -ge 10 ] || fail "under the shim: only $REBINDS rebinds fell mid-transfer (10 wanted): $SUMMARY"
echo "ok: under the shim: $SUMMARY"
# RUDP_ENGINES > 1: what the server's engines handed each other, and
# whether the client had to look for a new path (t_roam_engines)
h=$(grep -o 'engines: datagrams handed.*' "$EMU_DIR/srv.log" | tail -n 1)
[ -z "$h" ] || echo "note: server $h"
h=$(grep -o 'path: .*' "$EMU_DIR/cli.log" | tail -n 1)
[ -z "$h" ] || echo "note: client $h"
