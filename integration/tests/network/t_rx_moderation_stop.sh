#!/bin/sh
# Receive moderation (shim/engine/rxmod.c) when the receiver falls behind,
# read from the engines' RUDP_STATS counters. Over an emulated 100 Mbit/s
# link with a 40 ms round trip, both ends under the shim, a bulk receiver
# (bulk.c, 5 s) is stopped (SIGSTOP) for 300 ms while its UDP socket is
# unwatched; the sender's window (about twice the path's 500 KB) piles up
# in the socket meanwhile. Then:
#   - the pile is read at the receiver's next wake-ups, a read taking all
#     one read takes (256 datagrams), and the next read comes at once, not
#     half a millisecond later: what waits in the socket stands there no
#     longer than it would watched;
#   - a large read does not end moderation (only an overflow of the
#     socket's buffer does): the transfer's wake-ups stay under half its
#     datagrams, and no overflow;
#   - the bytes arrive (bulk.c counts them).
# A link that ran too slow here to pile 256 up (the sender's window below
# that) cannot show it: skip, saying so.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/lib/rxmodlib.sh" # the emulator too, or skip
need_bin bulk

LDP=$(shim_preload)
emu_up rxstop "delay=20,rate=100,queue=500k" "delay=20,rate=100,queue=500k" 1

P=7305
receiver "$P" 5 "$T/stop.recv"
ip netns exec "$EMU_NS_A" timeout 60 env LD_PRELOAD="$LDP" RUDP_STATS=1 \
    "$BIN/bulk" send --to "$EMU_IP_B" --port "$P" --timeout 30 >"$T/stop.send" 2>&1 &
SEND=$!
PIDS="$PIDS $SEND"
sleep 2
# the receiver itself: timeout's child (ip netns exec and env exec)
rpid=$(pgrep -P "$RECV" -x bulk || :)
[ -n "$rpid" ] || fail "no bulk receiver under timeout ($RECV)"
kill -STOP "$rpid"
sleep 0.3
kill -CONT "$rpid"
wait "$SEND" || :
wait "$RECV" || { show "$T/stop.recv"; fail "the bulk receiver failed"; }
bytes=$(sed -n 's/^bytes=\([0-9]*\) .*/\1/p' "$T/stop.recv")
[ "${bytes:-0}" -gt 5000000 ] || { show "$T/stop.recv"; fail "${bytes:-0} bytes in 5 s at 100 Mbit/s"; }
# shellcheck disable=SC2046 # word-split on purpose: three numbers
set -- $(most "$T/stop.recv")
[ "$1" != none ] || { show "$T/stop.recv"; fail "no moderation figures in the receiver's statistics"; }
largest=$1 again=$2 over=$3
# shellcheck disable=SC2046 # word-split on purpose: two numbers
set -- $(udp "$T/stop.recv")
wakes=$1 rcvd=$2
echo "stop: $bytes bytes; $wakes wake-ups for $rcvd datagrams; the most in one moderated read $largest, reads of all a read takes $again; overflows $over"
[ "$over" = 0 ] || { show "$T/stop.recv"; fail "the receiver's socket overflowed ($over)"; }
[ "$largest" -ge 256 ] ||
    skip "the link ran slow here: the most one moderated read took was $largest datagrams, not the 256 a read takes"
[ "$again" -ge 1 ] || { show "$T/stop.recv"; fail "a read took $largest datagrams, yet none counted as all a read takes"; }
[ $((wakes * 2)) -lt "$rcvd" ] || { show "$T/stop.recv"; fail "the receiver woke $wakes times for $rcvd datagrams: moderation ended at the large read"; }
echo "ok: what piled up in a stop is read at once, and moderation stays on"
emu_down
