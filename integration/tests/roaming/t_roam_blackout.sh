#!/bin/sh
# Roaming (issue 15): a transfer lives through a 10 s blackout. 6 MB from
# namespace a to namespace b over one connection (roamio.py at both ends,
# the sender paced at 1 MB/s; 5 ms each way); once b holds a quarter of it
# the link goes silent both ways for 10 s (emu_blackout: linkemu drops
# everything, the endpoints' sends still succeed), then carries again.
#
# Asserts, under the shim (RUDP_FALLBACK=none): both ends finish, all the
# bytes arrive (sha256 equal), the blackout fell mid-transfer and the link
# really dropped packets for it (drop_down). Prints the resume delay: from
# the end of the blackout to the first new bytes read at the receiver.
#
# Beside that, at the same time on a link of its own, the same over kernel
# TCP, for information (TCP rides out a silence this short; its
# retransmission timer has backed off meanwhile, which the resume delay
# shows). A run with nothing arriving for $ROAM_STALL (30) seconds is
# stopped.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/tests/roaming/roamlib.sh"

SIZE=6000000
RATE=1000000
BLACKOUT=10
PORT=7300
roam_setup "$SIZE"

# run_blackout: one transfer under $ROAM_MODE with the blackout. Leaves
# roam_finish's results, AT (bytes at the receiver when it began), DROPS
# (packets linkemu dropped for it), RESUME (ms from its end to the next
# bytes read, empty if none) and DURING (bytes read while it lasted).
run_blackout() {
    EMU_IPV6=0 emu_up roambo "delay=5" "delay=5"
    roam_transfer a2b "$PORT" "$RATE"
    AT="" DROPS="" RESUME="" DURING=""
    rc=0
    roam_wait_bytes "$T/out" $((SIZE / 4)) "$ROAM_SENDER" || rc=$?
    if [ "$rc" = 0 ]; then
        roam_over_rudp b "$PORT"
        AT=$ROAM_SIZE
        emu_blackout "$BLACKOUT"
        end=$EMU_DOWN_END_MS start=$((EMU_DOWN_END_MS - BLACKOUT * 1000))
        echo "   blackout at $(secs $((start - ROAM_T0))), receiver at $(mb "$AT"), for ${BLACKOUT} s"
    fi
    roam_finish
    if [ -n "$AT" ]; then
        emu_stats
        DROPS=$(($(emu_stat a2b_drop_down) + $(emu_stat b2a_drop_down)))
        line=$(roam_first_after "$end" "$T/prog")
        [ -z "$line" ] || RESUME=$((${line%% *} - end))
        DURING=$(awk -v s="$start" -v e="$end" '$1 <= s { b0 = $2 } $1 <= e { b1 = $2 }
            END { print b1 - b0 }' "$T/prog")
        SUMMARY="linkemu dropped $DROPS packets in the blackout; $(mb "$DURING") read during it;"
        if [ -n "$RESUME" ]; then
            SUMMARY="$SUMMARY resumed $(secs "$RESUME") after it ended"
        else
            SUMMARY="$SUMMARY nothing arrived after it"
        fi
    else
        SUMMARY="no blackout: the transfer ended or stalled before a quarter arrived"
    fi
    SUMMARY="$SUMMARY; $ROAM_OUTCOME"
    emu_down 2>/dev/null
}

# The kernel TCP run (information) beside this one, in namespaces of its own.
if roam_beside; then
    run_blackout
    echo "kernel TCP: $SUMMARY"
    exit 0
fi

roam_mode shim
run_blackout
roam_beside_said
if [ "$ROAM_OK" != 1 ] || [ -z "$AT" ]; then
    roam_show "$EMU_DIR/cli.log" "$EMU_DIR/srv.log"
    fail "under the shim: $SUMMARY"
fi
[ "$AT" -lt "$SIZE" ] || fail "under the shim: the blackout began after the whole file had arrived"
[ "$DROPS" -gt 0 ] || fail "under the shim: linkemu dropped nothing in the blackout: it proves nothing"
[ -n "$RESUME" ] || fail "under the shim: no byte arrived after the blackout, yet the transfer completed?"
echo "ok: under the shim: $SUMMARY"
