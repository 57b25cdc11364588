# Helpers for the receive moderation tests (integration/tests/network/
# t_rx_moderation*.sh), which source it after lib.sh and shimlib.sh. It
# sources the link emulator (emu/netns.sh) and skips where that cannot run
# (namespaces, TUN); the helpers read the engines' RUDP_STATS lines
# (stats_lines).
#
#   mod FILE        "N R D": sockets left unwatched, reads at the engine's
#                   wake-ups, datagrams so read (0 0 0 without the line)
#   most FILE       "L A O": the most datagrams one such read took, reads
#                   that took all a read takes (read again at once),
#                   sockets watched for good after an overflow ("none"
#                   without the line)
#   txmod FILE      "N R D S U": sockets left unwatched as a paced
#                   sender's, reads at the engine's wake-ups, datagrams so
#                   read, those timed by their kernel receive time and how
#                   long before their read they came on average, whole us
#                   ("0 0 0 0 0" without the line)
#   udp FILE        "W D": the engine's wake-ups and datagrams received
#   receiver PORT SECS OUT
#                   a bulk receiver (bulk.c) under the shim ($LDP) in
#                   $EMU_NS_B for SECS seconds, its output in OUT; RECV its
#                   pid (timeout's), listening on return
#   bulk3 PORT      a 3 s bulk transfer from $EMU_NS_A to it, both under the
#                   shim: the receiver's output in $T/bulk.recv, the
#                   sender's in $T/bulk.send; fails unless over 5 MB came
# POSIX sh.

. "$ROOT/integration/emu/netns.sh"
need_netns "the link emulator's namespaces"
need_tun "the link emulator"

mod() {
    _l=$(stats_lines "$1" | sed -n 's/^receive moderation: sockets left unwatched while a bulk transfer arrived \([0-9]*\), read at the engine.s wake-ups \([0-9]*\) times, datagrams so read \([0-9]*\),.*/\1 \2 \3/p' | head -1)
    echo "${_l:-0 0 0}"
}

# txmod FILE: "ON READS DGRAMS STAMPED US" of the moderation at the sender,
# US the mean time before their read the stamped datagrams came, whole us
# ("0 0 0 0 0" without the line)
txmod() {
    _l=$(stats_lines "$1" | sed -n 's/^moderation at the sender: sockets left unwatched while the pacer held data back \([0-9]*\), read at the engine.s wake-ups \([0-9]*\) times, datagrams so read \([0-9]*\), timed by their kernel receive time \([0-9]*\) (\([0-9]*\)\.[0-9] us before their read on average)$/\1 \2 \3 \4 \5/p' | head -1)
    echo "${_l:-0 0 0 0 0}"
}

most() {
    _l=$(stats_lines "$1" | sed -n 's/^receive moderation: .* the most in one read \([0-9]*\) (reads of all a read takes, read again at once: \([0-9]*\)); watched for good after an overflow \([0-9]*\)$/\1 \2 \3/p' | head -1)
    echo "${_l:-none}"
}

udp() {
    _w=$(stats_lines "$1" | sed -n 's/^engine: .* wake-ups \([0-9]*\) .*/\1/p' | head -1)
    _d=$(stats_lines "$1" | sed -n 's/^udp: .* received \([0-9]*\) in .*/\1/p' | head -1)
    echo "${_w:-0} ${_d:-0}"
}

receiver() {
    (exec ip netns exec "$EMU_NS_B" timeout 60 env LD_PRELOAD="$LDP" RUDP_STATS=1 \
        "$BIN/bulk" recv --port "$1" --time "$2" --once) </dev/null >"$3" 2>&1 &
    RECV=$!
    EMU_BG_PIDS="$EMU_BG_PIDS $RECV"
    PIDS="$PIDS $RECV"
    SS_NS=$EMU_NS_B wait_udp "$1"
}

bulk3() {
    receiver "$1" 3 "$T/bulk.recv"
    ip netns exec "$EMU_NS_A" timeout 60 env LD_PRELOAD="$LDP" RUDP_STATS=1 \
        "$BIN/bulk" send --to "$EMU_IP_B" --port "$1" --timeout 30 >"$T/bulk.send" 2>&1 || :
    wait "$RECV" || { show "$T/bulk.recv"; fail "the bulk receiver failed"; }
    bytes=$(sed -n 's/^bytes=\([0-9]*\) .*/\1/p' "$T/bulk.recv")
    [ "${bytes:-0}" -gt 5000000 ] || { show "$T/bulk.recv"; fail "bulk: ${bytes:-0} bytes in 3 s at 100 Mbit/s"; }
}
