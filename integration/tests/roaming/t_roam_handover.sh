#!/bin/sh
# Two paths (issue 48): a standby path takes over when the primary goes
# silent, and gives the connection back when the primary returns. Client
# namespace C and server namespace S joined by two veth pairs, two subnets,
# each 100 Mbit/s both ways (handlib.sh); the server listens on 10.201.9.1,
# an address of S on neither link, and the client connects to it, so the
# kernel's routes put the connection on link 1 (hc1), the primary; the
# shim keeps a standby socket of its own on link 2 (bound to hc2 and to
# 10.201.2.2). A 40 MB download from S (roamio.py at both ends, paced at
# 2.5 MB/s: 16 s). 1.5 s after the first bytes arrive, every packet
# arriving on link 1 is dropped at both ends (nftables in C and in S; no
# link or route changes: for the kernel, the primary is still there); 10 s
# later the rules go and the primary carries again, some 4.5 s of the
# download still to come. The client keeps the connection open after the
# last byte until it has moved back (10 s at most, --hold), then closes.
# Twice, a new pair of namespaces each, with the client's routing as a
# laptop with two uplinks has it: no rules (two default routes, metrics
# 100 and 200: what NetworkManager does), and source rules (from 10.201.2.2
# lookup 102, the main table's default on link 1 only).
#
# Asserts, under the shim (RUDP_FALLBACK=none; RUDP_MULTIPATH left to its
# default, handover), in both: the download completes intact (sha256
# equal); the cut fell mid-download and the primary came back before its
# end; nftables really dropped the download's packets arriving in C (what
# it dropped in S, the client's, is printed); the client's counters
# (RUDP_STATS) show it moved to its standby path and back to its primary
# ("handover: to standby N, back to primary M": N >= 1, M = N); the
# server's show the peer moved both ways ("path: peers moved N": N >= 2).
# Timing-free: when it moved is printed, never asserted: from the client's
# log (RUDP_LOG=info: "moves to its standby path", "moves back to its
# primary path"), the time from the cut to the move and from the
# primary's return to the move back, with the longest gap between two
# reads at the receiver across the cut and the bytes read during it.
#
# Beside that, at the same time in namespaces of its own (no rules), the
# same over kernel TCP, for information: its connection stays on link 1,
# stalls through the cut and resumes once its backed-off retransmission
# timer fires after the primary is back.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/tests/roaming/roamlib.sh"
. "$ROOT/integration/tests/roaming/handlib.sh"

SIZE=40000000
RATE=2500000
CUT_AFTER_MS=1500
CUT_MS=10000
BACK_WAIT=10
PORT=7480
hand_setup "$SIZE"

# run_handover VARIANT: one download under $ROAM_MODE in a new pair of
# namespaces, routed as VARIANT (hand_up), with the cut. Leaves
# roam_finish's results, AT and BACK_AT (bytes at the receiver when the
# primary was cut and when it came back; empty if it never was),
# HAND_DROPS_C/_S, and SUMMARY, one line saying what happened.
run_handover() {
    hand_up "$1"
    tag=$ROAM_MODE.$1
    hold=$T/hold.$tag
    hand_transfer "$tag" "$PORT" "$RATE" "$hold"
    AT="" BACK_AT="" HAND_DROPS_C=0 HAND_DROPS_S=0 STANDBY_MS="" PRIMARY_MS=""
    rc=0
    roam_wait_bytes "$T/prog" 1 "$ROAM_RECEIVER" || rc=$?
    if [ "$rc" = 0 ]; then
        roam_over_rudp b "$PORT"
        first=$(awk '{ print $1; exit }' "$T/prog")
        # The scenario's clock: the cut 1.5 s after the first bytes, for 10 s.
        hand_wait_until $((first + CUT_AFTER_MS)) "$ROAM_RECEIVER"
        hand_cut
        AT=$(hand_size "$T/out")
        hand_wait_until $((HAND_CUT_MS + CUT_MS)) "$ROAM_RECEIVER"
        hand_mend
        BACK_AT=$(hand_size "$T/out")
        echo "   $HAND_LABEL: primary cut $(secs $((HAND_CUT_MS - first))) after the first byte" \
            "(receiver at $(mb "$AT")), back after $(secs $((HAND_MEND_MS - HAND_CUT_MS)))" \
            "(receiver at $(mb "$BACK_AT"))"
        rc=0
        roam_wait_bytes "$T/out" "$SIZE" "$ROAM_RECEIVER" || rc=$?
        if [ "$rc" = 0 ] && [ "$ROAM_MODE" = shim ]; then
            hand_wait_log "$EMU_DIR/cli.$tag.log" "moves back to its primary path" \
                "$BACK_WAIT" "$ROAM_RECEIVER" || true
        fi
    fi
    : >"$hold"
    roam_finish
    if [ -n "$AT" ]; then
        cut=$HAND_CUT_MS mend=$HAND_MEND_MS
        SUMMARY="nftables dropped $HAND_DROPS_C packets arriving on link 1 in C, $HAND_DROPS_S in S;"
        during=$(awk -v s="$cut" -v e="$mend" '$1 <= s { b0 = $2 } $1 <= e { b1 = $2 }
            END { print b1 - b0 }' "$T/prog")
        SUMMARY="$SUMMARY $(mb "$during") read during the cut;"
        # The longest wait between two reads that overlaps the cut (a
        # silence from before the primary's return to the end: up to then).
        gap=$(awk -v s="$cut" -v e="$mend" '
            NR > 1 && $1 > s && p < e && $1 - p > g { g = $1 - p; at = p }
            { p = $1 }
            END { w = ""; if (p < e && e - p > g) { g = e - p; at = p; w = "at least " }
                  if (g) printf "%s%.1f s (from cut%+.1f s)", w, g / 1000, (at - s) / 1000 }' \
            "$T/prog")
        [ -z "$gap" ] || SUMMARY="$SUMMARY longest gap between reads across it $gap;"
        line=$(roam_first_after "$mend" "$T/prog")
        if [ -n "$line" ]; then
            SUMMARY="$SUMMARY first read $(secs $((${line%% *} - mend))) after the primary came back;"
        else
            SUMMARY="$SUMMARY nothing read after the primary came back;"
        fi
        if [ "$ROAM_MODE" = shim ]; then
            STANDBY_MS=$(hand_log_ms "$EMU_DIR/cli.$tag.log" "moves to its standby path")
            PRIMARY_MS=$(hand_log_ms "$EMU_DIR/cli.$tag.log" "moves back to its primary path")
            if [ -n "$STANDBY_MS" ]; then
                SUMMARY="$SUMMARY to the standby $(secs $((STANDBY_MS - cut))) after the cut,"
            else
                SUMMARY="$SUMMARY no move to the standby logged,"
            fi
            if [ -n "$PRIMARY_MS" ]; then
                SUMMARY="$SUMMARY back $(secs $((PRIMARY_MS - mend))) after the primary came back;"
            else
                SUMMARY="$SUMMARY no move back logged;"
            fi
        fi
    else
        SUMMARY="no cut: the download ended or stalled before its first byte;"
    fi
    SUMMARY="$SUMMARY $ROAM_OUTCOME"
    hand_down
}

# counters VARIANT: the client's "handover:" and the server's "path:"
# counter lines (RUDP_STATS at their exits), in HANDOVER and PATHS.
counters() {
    HANDOVER=$(hand_counter "$EMU_DIR/cli.shim.$1.log" "handover:")
    PATHS=$(hand_counter "$EMU_DIR/srv.shim.$1.log" "path:")
}

# check_shim: what run_handover and counters left, under the shim; prints
# each problem, one a line (nothing if none).
check_shim() {
    [ "$ROAM_OK" = 1 ] || echo "not intact: $ROAM_OUTCOME"
    if [ -z "$AT" ]; then
        echo "no cut: nothing arrived"
        return 0
    fi
    [ "$AT" -lt "$SIZE" ] || echo "the cut came after the whole download had arrived"
    [ "$BACK_AT" -lt "$SIZE" ] || echo "the primary came back after the whole download had arrived"
    # The download's data: S's count is the client's own (acknowledgments,
    # probes of the primary), which a client that heard nothing may not send.
    [ "$HAND_DROPS_C" -gt 0 ] || echo "nftables dropped nothing arriving on link 1 in C: the cut proves nothing"
    to=$(echo "$HANDOVER" | sed -n 's/^handover: to standby \([0-9]*\).*/\1/p')
    back=$(echo "$HANDOVER" | sed -n 's/^handover: .* back to primary \([0-9]*\).*/\1/p')
    [ "${to:-0}" -ge 1 ] || echo "the client's counters show no move to its standby path"
    [ "${back:-0}" -ge 1 ] || echo "the client's counters show no move back to its primary path"
    [ "${to:-0}" = "${back:-0}" ] ||
        echo "the client ends on its standby path: ${to:-0} moves there, ${back:-0} back"
    moved=$(echo "$PATHS" | sed -n 's/^path: peers moved \([0-9]*\).*/\1/p')
    [ "${moved:-0}" -ge 2 ] ||
        echo "the server's counters show the peer moved ${moved:-0} times, not both ways (2 or more)"
}

# The kernel TCP run (information) beside this one, in namespaces of its
# own: its connection never leaves link 1, so one routing is enough.
if roam_beside; then
    run_handover norules
    echo "kernel TCP, $HAND_LABEL: $SUMMARY"
    exit 0
fi

roam_mode shim
problems=""
for v in norules rules; do
    run_handover "$v"
    echo "under the shim, $HAND_LABEL: $SUMMARY"
    counters "$v"
    echo "   client: ${HANDOVER:-no 'handover:' counter line}"
    echo "   server: ${PATHS:-no 'path:' counter line}"
    check_shim >"$T/check"
    if [ -s "$T/check" ]; then
        sed 's/^/   FAIL: /' "$T/check"
        roam_show "$EMU_DIR/cli.shim.$v.log" "$EMU_DIR/srv.shim.$v.log"
        problems="$problems $v"
    fi
done
roam_beside_said
[ -z "$problems" ] || fail "under the shim, the handover failed in:$problems (above)"
echo "ok: under the shim, in both routings: intact through 10 s of a silent primary," \
    "to the standby and back (counters)"
