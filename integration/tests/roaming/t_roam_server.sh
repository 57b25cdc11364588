#!/bin/sh
# Roaming, the other end (issue 44): the server's address is replaced
# mid-transfer (a DHCP renewal, a failover), as the client's is in
# t_roam_readdr: 10.99.0.2 in namespace b gives way to 10.99.0.4 (emu_readdr:
# the new one added, the old one deleted) while a client in namespace a
# uploads 30 MB to it (roamio.py, a wildcard listener), over a 100 Mbit/s
# link with 10 ms each way.
#
# What happens: the server's engine hears from rtnetlink that the address
# went (RTM_DELADDR) and its connection sends from the new one
# (rudp_conn_move_local). The client's socket, connected to the old
# address, refuses what comes from elsewhere; once its data goes
# unanswered for a few probe timeouts it reopens the same port open to
# every address (shim/engine/roam.c), hears the server there, validates
# the new address with a challenge, moves, and connects its socket to it.
#
# Asserts, under the shim (RUDP_FALLBACK=none), unkeyed and with a
# RUDP_KEY_FILE at both ends (the challenge sealed): all the bytes arrive
# (sha256 equal); the server said it sends from the new address; the
# client's connection moved to the server's new address ("peer moved:
# 10.99.0.2:P -> 10.99.0.4:P") after the address answered the challenge
# (RUDP_STATS: "addresses validated" >= 1), and to nowhere else, while an
# observer in a sent bit-flipped copies of the server's datagrams from a
# third address, 10.99.0.66, which no host has (roamio.py flipcopy: at
# least 20 copies). Prints the resume delay.
#
# Beside it, for information, the same over kernel TCP: a TCP connection
# is bound to the server's address; it stalls and is stopped after
# $ROAM_TCP_STALL (10) s without a byte (the address is gone: no wait
# brings it back, and the default 30 s, ~45 s with the wait's own
# overhead, made it the longest part of this test).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/tests/roaming/roamlib.sh"

SIZE=30000000
LINK="delay=10,rate=100"
NEWIP=10.99.0.4
THIRD=10.99.0.66 # the observer's: no host has it
PORT=7320
ROAM_TCP_STALL=10
roam_setup "$SIZE"

run_server_readdr() {
    EMU_IPV6=0 emu_up roamsv "$LINK" "$LINK"
    roam_transfer a2b "$PORT" 0
    AT="" RESUME=""
    rc=0
    roam_wait_bytes "$T/out" $((SIZE / 4)) "$ROAM_SENDER" || rc=$?
    if [ "$rc" = 0 ]; then
        roam_over_rudp b "$PORT"
        AT=$ROAM_SIZE
        emu_readdr b "$NEWIP"
        end=$(ms_now)
        echo "   receiver at $(mb "$AT"): b's address 10.99.0.2 -> $NEWIP"
        FLIP=""
        if [ "$ROAM_MODE" = shim ]; then
            # an observer's bit-flipped copies of the server's datagrams,
            # from a third address, during the move
            emu_a "$PY" "$ROAM_IO" flipcopy --dev "$EMU_DEV_A" --from-port "$PORT" \
                --src "$THIRD" --secs 8 >"$T/flip.out" 2>&1 &
            FLIP=$!
        fi
    fi
    roam_finish
    if [ -n "${FLIP:-}" ]; then
        wait "$FLIP" || { cat "$T/flip.out" >&2; fail "the observer failed"; }
        FLIPPED=$(sed -n 's/^copied \([0-9]*\) datagrams.*/\1/p' "$T/flip.out")
    fi
    if [ -n "$AT" ]; then
        line=$(roam_first_after "$end" "$T/prog")
        [ -z "$line" ] || RESUME=$((${line%% *} - end))
        SUMMARY="${RESUME:+resumed $RESUME ms after the address change; }$ROAM_OUTCOME"
    else
        SUMMARY="no move: the transfer ended or stalled before a quarter arrived; $ROAM_OUTCOME"
    fi
}

if roam_beside; then
    run_server_readdr
    emu_down 2>/dev/null
    echo "kernel TCP: $SUMMARY"
    exit 0
fi

roam_mode shim
make_key "$T/key"
for mode in unkeyed keyed; do
    ROAM_ENV=""
    [ "$mode" = unkeyed ] || ROAM_ENV="RUDP_KEY_FILE=$T/key"
    run_server_readdr
    SAID=$(grep -c "our address went away; sending from 10\.99\.0\.2:[0-9]* -> $NEWIP:" \
        "$EMU_DIR/srv.log" || true)
    FOLLOWED=$(grep -c "peer moved: 10\.99\.0\.2:$PORT -> $NEWIP:$PORT" "$EMU_DIR/cli.log" || true)
    MOVES=$(grep -c "peer moved:" "$EMU_DIR/cli.log" || true)
    VALIDATED=$(sed -n 's/.*path: peers moved [0-9]* (addresses validated \([0-9]*\),.*/\1/p' \
        "$EMU_DIR/cli.log" | tail -n 1)
    if [ "$ROAM_OK" != 1 ] || [ -z "$AT" ]; then
        roam_show "$EMU_DIR/cli.log" "$EMU_DIR/srv.log"
        fail "$mode, under the shim: $SUMMARY"
    fi
    emu_down 2>/dev/null
    [ "$AT" -lt "$SIZE" ] || fail "$mode: the address changed after the whole file had arrived"
    [ "$SAID" -ge 1 ] || fail "$mode: the server did not say it sends from $NEWIP"
    [ "$FOLLOWED" = 1 ] && [ "$MOVES" = 1 ] ||
        fail "$mode: the client moved $MOVES times, $FOLLOWED of them to $NEWIP: $(grep 'peer moved:' "$EMU_DIR/cli.log")"
    [ "${VALIDATED:-0}" -ge 1 ] ||
        fail "$mode: the client moved without validating the address (${VALIDATED:-no} validated)"
    [ "${FLIPPED:-0}" -ge 20 ] ||
        fail "$mode: the observer copied ${FLIPPED:-no} datagrams: it proves nothing"
    echo "ok: $mode, under the shim: $SUMMARY; $FLIPPED bit-flipped copies from $THIRD moved nothing"
done
roam_beside_said
