#!/bin/sh
# Roaming (issue 30, finding 2): a transfer lives through a blackout after
# which the client's address is gone, as when Wi-Fi gives way to cellular.
# 50 MB (the issue's upload; ~4.5 s at 100 Mbit/s undisrupted) from
# namespace a to namespace b over one connection (roamio.py at both ends,
# unpaced), over a 100 Mbit/s link with 10 ms each way (20 ms RTT). Once b holds a quarter of it the link goes
# silent both ways for 10 s (emu_link_down: linkemu drops everything, the
# endpoints' sends still succeed); as it carries again, a's address
# 10.99.0.1 is replaced by 10.99.0.3 (emu_readdr: the new one added, the
# old one deleted): the new network is there, the old one gone.
#
# Asserts, under the shim (RUDP_FALLBACK=none): both ends finish, all the
# bytes arrive (sha256 equal), the blackout fell mid-transfer, the link
# really dropped packets for it, and the client moved to a socket on the
# new address because the kernel said its address went away (rtnetlink's
# RTM_DELADDR; its log: "moved to a new socket (its address went away):
# 10.99.0.1:P -> 10.99.0.3:Q"), not later, when a send failed or after
# several probe timeouts of silence (a1af020 moved only then: 1 s or more
# after the change).
# Prints the resume delay (from the address change to the first new bytes
# read at the receiver), the transfer's time, and, for comparison, the
# time of the same transfer on a link without disruption.
#
# Beside that, at the same time on a link of its own, the same over kernel
# TCP, for information (a TCP connection is bound to its address: it
# stalls, and is stopped after $ROAM_TCP_STALL (10) s without a byte; the
# address is gone, no wait brings it back, and the default 30 s, ~45 s
# with the wait's own overhead, made it the longest part of this test).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/tests/roaming/roamlib.sh"

SIZE=50000000
BLACKOUT=10
LINK="delay=10,rate=100"
NEWIP=10.99.0.3
PORT=7310
ROAM_TCP_STALL=10
roam_setup "$SIZE"

# run_readdr: one transfer under $ROAM_MODE with the blackout and the new
# address. Leaves roam_finish's results, AT (bytes at the receiver when it
# began), DROPS, RESUME (ms from the link's return to the next bytes read,
# empty if none), ELAPSED (ms from the first byte read to the last) and
# AFTER (goodput from the address change to the end).
run_readdr() {
    EMU_IPV6=0 emu_up roamra "$LINK" "$LINK"
    roam_transfer a2b "$PORT" 0
    AT="" DROPS="" RESUME="" AFTER=""
    rc=0
    roam_wait_bytes "$T/out" $((SIZE / 4)) "$ROAM_SENDER" || rc=$?
    if [ "$rc" = 0 ]; then
        roam_over_rudp b "$PORT"
        AT=$ROAM_SIZE
        emu_link_down
        start=$(ms_now)
        # The blackout is the scenario: the link is down for this long.
        sleep "$BLACKOUT"
        emu_link_up
        emu_readdr a "$NEWIP"
        end=$(ms_now)
        echo "   blackout at $(secs $((start - ROAM_T0))), receiver at $(mb "$AT"), for $(secs $((end - start)));" \
            "a's address then 10.99.0.1 -> $NEWIP"
    fi
    roam_finish
    ELAPSED=$(awk 'NR == 1 { t0 = $1 } { t = $1 } END { print t - t0 }' "$T/prog" 2>/dev/null)
    if [ -n "$AT" ]; then
        emu_stats
        DROPS=$(($(emu_stat a2b_drop_down) + $(emu_stat b2a_drop_down)))
        line=$(roam_first_after "$end" "$T/prog")
        [ -z "$line" ] || RESUME=$((${line%% *} - end))
        AFTER=$(awk -v e="$end" '$1 <= e { b0 = $2 } $1 > e { t = $1; b = $2 }
            END { if (t > e) printf "%.1f Mbit/s", (b - b0) * 8 / (t - e) / 1000 }' "$T/prog")
        SUMMARY="linkemu dropped $DROPS packets in the blackout;"
        if [ -n "$RESUME" ]; then
            SUMMARY="$SUMMARY resumed $RESUME ms after the address change, then $AFTER"
        else
            SUMMARY="$SUMMARY nothing arrived after it"
        fi
    else
        SUMMARY="no blackout: the transfer ended or stalled before a quarter arrived"
    fi
    SUMMARY="$SUMMARY; $ROAM_OUTCOME"
}

# The kernel TCP run (information) beside this one, in namespaces of its own.
if roam_beside; then
    run_readdr
    emu_down 2>/dev/null
    echo "kernel TCP: $SUMMARY"
    exit 0
fi

roam_mode shim
run_readdr
MOVED=$(grep -c "moved to a new socket (its address went away): 10\.99\.0\.1:[0-9]* -> $NEWIP:" "$EMU_DIR/cli.log" || true)
emu_down 2>/dev/null
roam_beside_said
if [ "$ROAM_OK" != 1 ] || [ -z "$AT" ]; then
    roam_show "$EMU_DIR/cli.log" "$EMU_DIR/srv.log"
    fail "under the shim: $SUMMARY"
fi
[ "$AT" -lt "$SIZE" ] || fail "under the shim: the blackout began after the whole file had arrived"
[ "$DROPS" -gt 0 ] || fail "under the shim: linkemu dropped nothing in the blackout: it proves nothing"
[ -n "$RESUME" ] || fail "under the shim: no byte arrived after the blackout, yet the transfer completed?"
if [ "$MOVED" != 1 ]; then
    grep 'moved to a new socket' "$EMU_DIR/cli.log" >&2 || true
    fail "under the shim: the client did not move to $NEWIP once because its address went away ($MOVED times)"
fi
echo "ok: under the shim: $SUMMARY"
echo "   with the disruption: $(secs "$ELAPSED") from the first byte read to the last"

# For comparison (printed): the same transfer, same link, nothing disrupted.
EMU_IPV6=0 emu_up roamrq "$LINK" "$LINK"
roam_transfer a2b "$PORT" 0
roam_finish
emu_down 2>/dev/null
[ "$ROAM_OK" = 1 ] || fail "under the shim, undisrupted: $ROAM_OUTCOME"
echo "   undisrupted: $ROAM_OUTCOME"
