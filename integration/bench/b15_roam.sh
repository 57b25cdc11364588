# B15, B16: roaming. Sourced by run.sh after its helpers and roamlib.sh
# (emu_up, emu_readdr, emu_blackout, roam_mode, rec, meta, want...);
# POSIX sh.
#
# Roaming (issue 15), with the roaming tests' helpers (roamlib.sh): one
# connection, roamio.py at both ends, SIZE random bytes from a to b, the
# sender unpaced, on B15's link. B15 moves a's address three times
# (emu_readdr), each time b holds another quarter; B16 silences the link
# both ways for 10 s (emu_blackout) once b holds a quarter. Kernel TCP
# runs the same transfers: how it fails is printed, never asserted. A
# transfer with no byte arriving for ROAM_STALL s is stopped.
#
# roam_row SC TR: one transfer of scenario SC over TR in run $r; records
# complete (0/1), total_s (connect to the last byte read, complete runs),
# goodput (Mbit/s over that time), got_mb, and B15: changes (made) and
# survived (changes after which bytes still arrived), B16: resume_s (the
# link's return to the next byte read) and down_mb (read meanwhile). The
# outcome in words goes to meta.tsv as outcome_SC_TR_RUN.
roam_row() {
    _sc=$1 _tr=$2
    case "$_tr" in
        rudp-*) roam_mode shim >/dev/null; ROAM_ENV="RUDP_CC=${_tr#rudp-} RUDP_ACCEPT_TCP=0" ;;
        *) roam_mode tcp >/dev/null || return 0; ROAM_ENV="" ;;
    esac
    EMU_IPV6=0 emu_up "bn$_sc" "$SPEC_B15" "$SPEC_B15" "$r"
    _size=$(stat -c %s "$T/payload")
    # shellcheck disable=SC2046
    roam_transfer a2b 7400 0 $(cc_opt "$_tr")
    _t0=$ROAM_T0 _made=0 _survived=0 _stop="" _times="" _resume=NA _down=NA
    if [ "$_sc" = B15 ]; then
        _k=1
        for _new in 10.99.0.11 10.99.0.12 10.99.0.13; do
            _rc=0
            roam_wait_bytes "$T/out" $((_size * _k / 4)) "$ROAM_SENDER" || _rc=$?
            case $_rc in
                1) _stop="the sender ended before change $_k" ;;
                2) _stop="nothing arrived for ${ROAM_STALL} s" ;;
            esac
            [ -z "$_stop" ] || break
            emu_readdr a "$_new" 2>>"$LOGS/emu.log"
            _times="$_times $(ms_now)"
            _made=$_k _k=$((_k + 1))
        done
    else
        _rc=0
        roam_wait_bytes "$T/out" $((_size / 4)) "$ROAM_SENDER" || _rc=$?
        case $_rc in
            0) emu_blackout 10 2>>"$LOGS/emu.log"; _times=$EMU_DOWN_END_MS _made=1 ;;
            1) _stop="the sender ended before the blackout" ;;
            2) _stop="nothing arrived for ${ROAM_STALL} s" ;;
        esac
    fi
    # A stalled transfer stops here, not after another ROAM_STALL.
    [ -z "$_stop" ] || roam_stop "$ROAM_SENDER"
    roam_finish
    _last=$(tail -n 1 "$T/prog" 2>/dev/null | cut -d' ' -f1)
    for _ch in $_times; do
        [ -z "$(roam_first_after "$_ch" "$T/prog")" ] || _survived=$((_survived + 1))
    done
    if [ "$_sc" = B16 ] && [ "$_made" = 1 ]; then
        _line=$(roam_first_after "$_times" "$T/prog")
        [ -z "$_line" ] || _resume=$(calc "(${_line%% *} - $_times) / 1000")
        _down=$(awk -v e="$_times" '$1 <= e - 10000 { b0 = $2 } $1 <= e { b1 = $2 }
            END { printf "%.1f", (b1 - b0) / 1e6 }' "$T/prog")
    fi
    _secs=NA _gp=NA
    if [ "$ROAM_OK" = 1 ]; then
        _secs=$(calc "($_last - $_t0) / 1000")
        _gp=$(calc "$_size * 8 / ($_last - $_t0) / 1000")
    fi
    _what="$ROAM_OUTCOME"
    if [ "$ROAM_OK" = 1 ]; then
        _what="complete in $(secs $((_last - _t0))), $(calc "$_size * 8 / ($_last - $_t0) / 1000" | cut -c1-5) Mbit/s"
    else
        # When the bytes stopped: after which change (or the blackout), how long in.
        if [ "$_made" = 0 ]; then _at="before the first change"
        elif [ "$_survived" -lt "$_made" ]; then _at="at change $((_survived + 1)) of 3"
        else _at="after the last change"; fi
        [ "$_sc" = B15 ] || _at=$(echo "$_at" | sed 's/the first change/the blackout/;
            s/change 1 of 3/the blackout/; s/the last change/the blackout/')
        _what="died $_at: ${_last:+last byte $(secs $((_last - _t0))) after connect; }${_stop:+$_stop, stopped; }$ROAM_OUTCOME"
    fi
    meta "outcome_${_sc}_${_tr}_$r" "$_what"
    for _f in cli srv; do cp "$EMU_DIR/$_f.log" "$LOGS/$_sc.$_tr.$r.$_f" 2>/dev/null || true; done
    cp "$T/prog" "$LOGS/$_sc.$_tr.$r.prog" 2>/dev/null || true
    rec "$_sc" "$_tr" "$r" complete "$ROAM_OK"
    rec "$_sc" "$_tr" "$r" total_s "$_secs"
    rec "$_sc" "$_tr" "$r" goodput "$_gp"
    rec "$_sc" "$_tr" "$r" got_mb "$(calc "$ROAM_GOT / 1e6")"
    if [ "$_sc" = B15 ]; then
        rec B15 "$_tr" "$r" changes "$_made"
        rec B15 "$_tr" "$r" survived "$_survived"
    else
        rec B16 "$_tr" "$r" resume_s "$_resume"
        rec B16 "$_tr" "$r" down_mb "$_down"
    fi
    [ "$_sc" = B15 ] || _what="resumed $_resume s after the link's return; $_what"
    say "$_sc run $r/$RUNS $_tr: $_what"
    emu_down 2>>"$LOGS/emu.log"
}

for sc in B15 B16; do
    want "$sc" || continue
    if [ "$sc" = B15 ]; then head -c 20000000 /dev/urandom >"$T/payload"
    else head -c 12000000 /dev/urandom >"$T/payload"; fi
    r=1
    while [ "$r" -le "$RUNS" ]; do # no traced run: roamio.py is not bulk
        for tr in $(rotate "$r" $TRS); do
            roam_row "$sc" "$tr"
        done
        r=$((r + 1))
    done
done
