# B22: two paths (issue 48, b22_hand.sh). Sourced by run.sh after its
# helpers and roamlib.sh (roam_mode, roam_finish, rec, meta, want...);
# POSIX sh. The topology is the handover tests' (handlib.sh, sourced here):
# client namespace C and server namespace S joined by two veth pairs,
# 100 Mbit/s each (tbf), no emulator; the client's routing has two default
# routes (metrics 100 and 200), no source rules.
#
#   B22-stall  40 MB from S to C (roamio.py, paced at 2.5 MB/s: 20 Mbit/s,
#              a fifth of either link); 1.5 s after the first byte every
#              packet arriving on link 1 (the primary) is dropped at both
#              ends for 10 s (nftables; no link or route change), then the
#              primary carries again. stall_s: the longest gap between two
#              reads at the receiver across the cut; rudp also move_s (the
#              cut to the client's move to its standby path, its log) and
#              back_s (the primary's return to the move back); complete.
#              Kernel TCP's connection has no second path: its stall is the
#              reference.
#   B22-cost   an idle connection (1 byte, then nothing) held for
#              B22_IDLE (45) s on the same topology, no cut: the datagrams
#              and bytes sent for the standby (RUDP_STATS "handover:" line,
#              client and server together; UDP payload, IP and UDP headers
#              not counted), and the same per hour (count x 3600 /
#              B22_IDLE: the first validation, once per connection, is in
#              the count). rudp only (kernel TCP has no standby), keyed and
#              unkeyed.
. "$ROOT/integration/tests/roaming/handlib.sh"

B22_IDLE=${B22_IDLE:-45}
meta desc_B22-stall "two veth pairs at 100 Mbit/s (tbf), two default routes at the client; 40 MB from the server paced at 20 Mbit/s; 1.5 s in, everything arriving on link 1 dropped at both ends for 10 s (nftables), no link or route change"
meta desc_B22-cost "the same topology, one idle connection held ${B22_IDLE} s: what the standby path costs (challenges at the keepalive interval, 15 s), client and server together"

# b22_env TR: roam_mode and ROAM_ENV for transport TR (rudp-CC[+key], tcp-*)
b22_env() {
    case "$1" in
        rudp-*+key) roam_mode shim >/dev/null || return 1
            _c=${1#rudp-}; ROAM_ENV="RUDP_CC=${_c%+key} RUDP_ACCEPT_TCP=0 RUDP_KEY_FILE=$KEYFILE" ;;
        rudp-*) roam_mode shim >/dev/null || return 1
            ROAM_ENV="RUDP_CC=${1#rudp-} RUDP_ACCEPT_TCP=0" ;;
        *) roam_mode tcp >/dev/null || return 1; ROAM_ENV="" ;;
    esac
}

# b22_stall TR: one cut download over TR in run $r (hand_run: the tests'
# download, 1.5 s in the cut for 10 s, quiet)
b22_stall() {
    _tr=$1
    b22_env "$_tr" || return 0
    hand_run -q norules "$_tr.$r" 7600 2500000
    _stall=NA _move=NA _back=NA
    if [ -n "$HAND_AT" ]; then
        _stall=$(awk -v g="$HAND_GAP_MS" 'BEGIN { printf "%.3f", g / 1000 }')
        [ -z "$HAND_STANDBY_MS" ] || _move=$(calc "($HAND_STANDBY_MS - $HAND_CUT_MS) / 1000")
        [ -z "$HAND_PRIMARY_MS" ] || _back=$(calc "($HAND_PRIMARY_MS - $HAND_MEND_MS) / 1000")
    fi
    for _f in cli srv; do
        cp "$EMU_DIR/$_f.$HAND_TAG.log" "$LOGS/B22-stall.$HAND_TAG.$_f" 2>/dev/null || true
    done
    rec B22-stall "$_tr" "$r" complete "$ROAM_OK"
    rec B22-stall "$_tr" "$r" stall_s "$_stall"
    case "$_tr" in rudp-*)
        rec B22-stall "$_tr" "$r" move_s "$_move"
        rec B22-stall "$_tr" "$r" back_s "$_back" ;;
    esac
    say "B22-stall run $r/$RUNS $_tr: longest gap across the cut $_stall s; to the standby $_move s after it, back $_back s after the primary's return; $ROAM_OUTCOME"
}

# b22_sum: the standby's datagrams (B22_DG) and bytes (B22_BY) in the
# "handover:" counter lines $_c and $_s (client, server; either may be
# empty: nothing was sent for it)
b22_sum() {
    B22_DG=0 B22_BY=0
    for _l in "$_c" "$_s"; do
        _d=$(echo "$_l" | sed -n 's/.*datagrams for it \([0-9]*\) (\([0-9]*\) bytes).*/\1 \2/p')
        [ -n "$_d" ] || continue
        B22_DG=$((B22_DG + ${_d% *})) B22_BY=$((B22_BY + ${_d#* }))
    done
}

# b22_cost TR: one idle connection over TR in run $r
b22_cost() {
    _tr=$1
    b22_env "$_tr" || return 0
    hand_up norules
    _tag=cost.$_tr.$r _hold=$T/b22hold
    rm -f "$_hold" "$T/out" "$T/prog"
    head -c 1 /dev/urandom >"$T/payload.one"
    roam_bg b "srv.$_tag" "$PY" "$ROAM_IO" listen 7601 --bind "$HAND_IP_S" \
        --send "$T/payload.one" --rate 0
    _srv=$LAST_PID
    roam_listening b 7601
    roam_bg a "cli.$_tag" "$PY" "$ROAM_IO" connect "$HAND_IP_S" 7601 \
        --recv "$T/out" --log "$T/prog" --rate 0 --hold "$_hold"
    _cli=$LAST_PID
    hand_wait_until $(($(ms_now) + B22_IDLE * 1000)) "$_cli"
    : >"$_hold"
    roam_wait_exit "$_cli" 30
    roam_wait_exit "$_srv" 30
    _c=$(hand_counter "$EMU_DIR/cli.$_tag.log" "handover:")
    _s=$(hand_counter "$EMU_DIR/srv.$_tag.log" "handover:")
    _dg=NA _by=NA
    if [ -n "$_c" ]; then
        b22_sum
        _dg=$B22_DG _by=$B22_BY
    fi
    for _f in cli srv; do cp "$EMU_DIR/$_f.$_tag.log" "$LOGS/B22-cost.$_tr.$r.$_f" 2>/dev/null || true; done
    rec B22-cost "$_tr" "$r" dgrams "$_dg"
    rec B22-cost "$_tr" "$r" bytes "$_by"
    if [ "$_dg" != NA ]; then
        rec B22-cost "$_tr" "$r" dgrams_h "$(calc "$_dg * 3600 / $B22_IDLE")"
        rec B22-cost "$_tr" "$r" kbytes_h "$(calc "$_by * 3600 / $B22_IDLE / 1000")"
    fi
    say "B22-cost run $r/$RUNS $_tr: ${B22_IDLE} s idle: $_dg datagrams, $_by bytes for the standby (client: ${_c:-no counter line}; server: ${_s:-none})"
    hand_down
}

if want B22; then
    if ! command -v nft >/dev/null 2>&1 || ! command -v tc >/dev/null 2>&1; then
        say "B22: skip: no nft or tc here (the cut and the links' shaping need them)"
    else
        EMU_DIR=$T
        head -c 40000000 /dev/urandom >"$T/payload"
        r=1
        while [ "$r" -le "$RUNS" ]; do
            for tr in $(rotate "$r" $TRS $KEY_TR); do
                b22_stall "$tr"
            done
            for tr in $(rotate "$r" $RUDP_TRS $KEY_TR); do
                b22_cost "$tr"
            done
            r=$((r + 1))
        done
    fi
fi
