#!/bin/sh
# Receive moderation (shim/engine/rxmod.c), read from the engines' RUDP_STATS
# counters, never from timing. Over an emulated 100 Mbit/s link with a
# 10 ms round trip (B1's), both ends under the shim:
#   1. a bulk transfer (bulk.c, 3 s): the receiver's engine leaves the UDP
#      socket unwatched while the transfer arrives and reads it at its
#      wake-ups, several datagrams at once: fewer wake-ups than half its
#      datagrams (each woke it before), bytes arrived; the sender, which
#      only reads ACKs, never moderates as a receiver, but as a paced
#      sender: its ACKs are read at its pacer's wake-ups (most of them,
#      not a wake-up each), timed by their kernel receive time, and its
#      smallest RTT sample is still no less than the link's 10 ms (an
#      arrival time converted wrongly would make it so);
#   2. request/response (rr.c, 200 echoes of 100 bytes): each packet asks
#      for its ACK (ACK_NOW), nothing more is coming and no pacer holds
#      data back, so no socket is ever left unwatched: a request is read
#      when it comes;
#   3. 20 MB through nc, sha256 equal: nothing lost or reordered by the
#      reads at the wake-ups (the receiver's datagrams, the sender's
#      ACKs), and the transfer's tail (ACK_NOW) ends it;
#   4. the same with a shared key (RUDP_KEY_FILE): the flags moderation
#      reads are the sealed packets' own, once opened;
#   5. a sender that ends (_exit) right after its last write: its keeper
#      delivers the rest, moderating as it did, sha256 equal.
# (A receiver stopped while moderated: t_rx_moderation_stop.sh.)
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/lib/rxmodlib.sh" # the emulator too, or skip
need_bin bulk rr

LDP=$(shim_preload)
emu_up rxmod "delay=5,rate=100,queue=125k" "delay=5,rate=100,queue=125k" 1

# 1. bulk
bulk3 7300 # sets bytes
# shellcheck disable=SC2046 # word-split on purpose: three numbers
set -- $(mod "$T/bulk.recv")
on=$1 reads=$2 dgrams=$3
# shellcheck disable=SC2046 # word-split on purpose: three numbers
set -- $(udp "$T/bulk.recv")
wakes=$1 rcvd=$2
echo "bulk: $bytes bytes; receiver: $wakes wake-ups for $rcvd datagrams; moderation: unwatched $on time(s), $reads reads took $dgrams datagrams"
[ "$on" -ge 1 ] || { show "$T/bulk.recv"; fail "bulk over a 10 ms path: the receiver never left its socket unwatched"; }
[ "$dgrams" -gt "$reads" ] || { show "$T/bulk.recv"; fail "its reads at wake-ups took $dgrams datagrams in $reads reads: not several at once"; }
[ $((wakes * 2)) -lt "$rcvd" ] || { show "$T/bulk.recv"; fail "the receiver woke $wakes times for $rcvd datagrams"; }
# shellcheck disable=SC2046 # word-split on purpose: three numbers
set -- $(mod "$T/bulk.send")
[ "$1" = 0 ] || { show "$T/bulk.send"; fail "the sender, which reads only ACKs, left its socket unwatched as a receiver $1 time(s)"; }
echo "ok: a bulk transfer's datagrams are read several at a wake-up"
# shellcheck disable=SC2046 # word-split on purpose: five numbers
set -- $(txmod "$T/bulk.send")
acks=$(udp "$T/bulk.send" | cut -d' ' -f2)
minrtt=$(sed -n 's/.* min_rtt_ms=\([0-9.]*\) .*/\1/p' "$T/bulk.send")
echo "bulk sender: unwatched $1 time(s) while paced, $2 reads at wake-ups took $3 of its $acks datagrams, $4 timed by their arrival, $5 us before their read on average; smallest RTT ${minrtt:-none} ms"
[ "$1" -ge 1 ] || { show "$T/bulk.send"; fail "the paced sender never left its socket unwatched"; }
# a quarter at least (each woke it before; a loaded machine's late engine
# leaves the sender held by its window more often, which watches it)
[ $(($3 * 4)) -gt "$acks" ] || { show "$T/bulk.send"; fail "its reads at wake-ups took $3 of $acks ACKs: nearly all woke it"; }
# timed when they came, not at the read: ACKs that waited for the pacer's
# next burst came a good part of a burst's ~1 ms before it
[ $(($4 * 2)) -ge "$3" ] && [ "$5" -ge 100 ] ||
    { show "$T/bulk.send"; fail "$4 of the $3 ACKs read late were timed by their arrival, $5 us before their read on average"; }
[ -n "$minrtt" ] && awk -v m="$minrtt" 'BEGIN { exit !(m >= 9.9) }' ||
    { show "$T/bulk.send"; fail "the sender's smallest RTT sample ${minrtt:-none} ms is under the link's 10 ms"; }
echo "ok: a paced sender's ACKs are read at its pacer's wake-ups, timed by their arrival"

# 2. request/response
P=7301
(exec ip netns exec "$EMU_NS_B" timeout 60 env LD_PRELOAD="$LDP" RUDP_STATS=1 \
    "$BIN/rr" server --port "$P" --once) </dev/null >"$T/rr.srv" 2>&1 &
SRV=$!
EMU_BG_PIDS="$EMU_BG_PIDS $SRV"
PIDS="$PIDS $SRV"
SS_NS=$EMU_NS_B wait_udp "$P"
ip netns exec "$EMU_NS_A" timeout 60 env LD_PRELOAD="$LDP" RUDP_STATS=1 \
    "$BIN/rr" client --to "$EMU_IP_B" --port "$P" --size 100 --count 200 >"$T/rr.out" 2>"$T/rr.cli" ||
    { show "$T/rr.out" "$T/rr.cli"; fail "the echo client failed"; }
wait "$SRV" || { show "$T/rr.srv"; fail "the echo server failed"; }
grep -q '^count=200 ' "$T/rr.out" || { show "$T/rr.out"; fail "not 200 echoes"; }
# shellcheck disable=SC2046 # word-split on purpose: three numbers
set -- $(mod "$T/rr.srv")
s_on=$1
# shellcheck disable=SC2046 # word-split on purpose: three numbers
set -- $(mod "$T/rr.cli")
c_on=$1
s_tx=$(txmod "$T/rr.srv" | cut -d' ' -f1)
c_tx=$(txmod "$T/rr.cli" | cut -d' ' -f1)
echo "echoes: moderation at the server $s_on (as a sender $s_tx), at the client $c_on (as a sender $c_tx)"
[ "$s_on" = 0 ] && [ "$c_on" = 0 ] && [ "$s_tx" = 0 ] && [ "$c_tx" = 0 ] ||
    fail "a request/response exchange was moderated"
echo "ok: requests and answers are read when they come"

# 3. and 4. integrity through nc, without a key and with one
SIZE=20000000
head -c "$SIZE" /dev/urandom >"$T/in"
make_key "$T/key"
# nc_case NAME PORT [ENV...]: 20 MB a -> b through nc, both ends under the
# shim with ENV; the receiver must have moderated and the bytes be whole
nc_case() {
    _n=$1 _p=$2
    shift 2
    (exec ip netns exec "$EMU_NS_B" timeout 120 env LD_PRELOAD="$LDP" RUDP_STATS=1 "$@" \
        nc -l "$EMU_IP_B" "$_p") </dev/null >"$T/$_n.out" 2>"$T/$_n.srv" &
    RECV=$!
    EMU_BG_PIDS="$EMU_BG_PIDS $RECV"
    PIDS="$PIDS $RECV"
    SS_NS=$EMU_NS_B wait_udp "$_p"
    ip netns exec "$EMU_NS_A" timeout 120 env LD_PRELOAD="$LDP" RUDP_STATS=1 "$@" \
        nc -N "$EMU_IP_B" "$_p" <"$T/in" 2>"$T/$_n.cli" ||
        { show "$T/$_n.cli"; fail "$_n: the sending nc failed"; }
    wait "$RECV" || { show "$T/$_n.srv"; fail "$_n: the receiving nc failed"; }
    [ "$(sha "$T/$_n.out")" = "$(sha "$T/in")" ] || fail "$_n: sha256 differs"
    # shellcheck disable=SC2046 # word-split on purpose: three numbers
    set -- $(mod "$T/$_n.srv")
    echo "$_n: 20 MB, sha256 equal; moderation at the receiver: unwatched $1 time(s), $2 reads took $3 datagrams"
    [ "$1" -ge 1 ] || { show "$T/$_n.srv"; fail "$_n: the receiver never moderated"; }
    # shellcheck disable=SC2046 # word-split on purpose: five numbers
    set -- $(txmod "$T/$_n.cli")
    echo "$_n: moderation at the sender: unwatched $1 time(s), $2 reads took $3 datagrams, $4 timed by their arrival"
    [ "$1" -ge 1 ] && [ "$3" -ge 1 ] && [ "$4" -ge 1 ] ||
        { show "$T/$_n.cli"; fail "$_n: the sender never read its ACKs at its pacer's wake-ups"; }
    echo "ok: $_n: 20 MB through nc read at the wake-ups at both ends, sha256 equal"
}
nc_case nc 7302
nc_case keyed 7303 RUDP_KEY_FILE="$T/key"
grep -q 'keyed: handshakes rejected' "$T/keyed.srv" ||
    { show "$T/keyed.srv"; fail "keyed: the receiver's statistics have no keyed line: not keyed"; }

# 5. the sender ends (_exit) right after its last write, most of the 20 MB
# still to go: its keeper delivers them, moderating as the program's
# engine did, and they arrive whole
cat >"$T/snd.py" <<'PY'
import os, socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
s.sendall(open(sys.argv[3], 'rb').read())
os._exit(0)
PY
(exec ip netns exec "$EMU_NS_B" timeout 120 env LD_PRELOAD="$LDP" nc -l "$EMU_IP_B" 7304) \
    </dev/null >"$T/exit.out" 2>"$T/exit.srv" &
RECV=$!
EMU_BG_PIDS="$EMU_BG_PIDS $RECV"
PIDS="$PIDS $RECV"
SS_NS=$EMU_NS_B wait_udp 7304
ip netns exec "$EMU_NS_A" timeout 120 env LD_PRELOAD="$LDP" RUDP_STATS=1 python3 "$T/snd.py" \
    "$EMU_IP_B" 7304 "$T/in" >"$T/exit.cli" 2>&1 || { show "$T/exit.cli"; fail "exit: the sender failed"; }
wait "$RECV" || { show "$T/exit.srv"; fail "exit: the receiver failed"; }
[ "$(sha "$T/exit.out")" = "$(sha "$T/in")" ] ||
    { show "$T/exit.cli"; fail "exit: the receiver got $(wc -c <"$T/exit.out") bytes, sha256 not the sender's"; }
grep -q 'keeper of pid' "$T/exit.cli" || { show "$T/exit.cli"; fail "exit: no keeper delivered (the transfer was over before the program's end)"; }
# shellcheck disable=SC2046 # word-split on purpose: five numbers
set -- $(txmod "$T/exit.cli")
echo "exit: 20 MB, sha256 equal, delivered by the sender's keeper; moderation at the sender (program and keeper): unwatched $1 time(s), $3 datagrams read at wake-ups"
[ "$1" -ge 1 ] || { show "$T/exit.cli"; fail "exit: the sender never moderated"; }
echo "ok: a sender that ends mid-transfer: its keeper delivers every byte"
emu_down
