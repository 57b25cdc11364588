#!/bin/sh
# UDP GSO and GRO (shim/engine/udpio.c), read from the engine's RUDP_STATS counters,
# never from timing. Three parts, each a 20 MB nc transfer, sha256 equal:
#   1. loopback, 1400-byte datagrams (RUDP_DATAGRAM): the sender sends its
#      datagrams in GSO trains (far fewer calls than datagrams) and the
#      receiver gets them coalesced by GRO (fewer reads than datagrams);
#   2. the same with RUDP_OFFLOAD=0: no train, one read per datagram, all
#      delivered: the fallback path;
#   3. RUDP_DATAGRAM=2000 over an emulated MTU-1500 link: before path MTU
#      discovery (issue 44), 2000-byte datagrams left fragmented, and a GSO
#      train of them was refused (EINVAL), which turned GSO off. Now the
#      datagrams carry don't-fragment and fit the device (1472 bytes at
#      most: RUDP_DATAGRAM is a ceiling), so no train is refused, GSO stays
#      on, and the transfer completes. (A segment too big for the device is
#      the path MTU's business, not a GSO refusal: udpio.c, send_split.)
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/emu/netns.sh"
need_netns "the link emulator's namespaces"
need_tun "the link emulator"

SIZE=20000000
head -c "$SIZE" /dev/urandom >"$T/in"
LDP=$(shim_preload)

# stat FILE BEFORE AFTER: the number between BEFORE and AFTER in the
# engine's stats line (as in "datagrams sent N in C calls")
stat_of() {
    stats_lines "$1" | sed -n "s/^udp: .*$2 \\([0-9][0-9]*\\) $3.*/\\1/p" | head -1
}

transfer() { # NAME [ENV...]: loopback, 20 MB client -> server
    name=$1; shift
    P=$(free_port)
    (exec env "$@" RUDP_STATS=1 LD_PRELOAD="$LDP" timeout 120 nc -l 127.0.0.1 "$P") \
        </dev/null >"$T/$name.out" 2>"$T/$name.srv" &
    srv=$!
    PIDS="$PIDS $srv"
    wait_udp "$P"
    env "$@" RUDP_STATS=1 LD_PRELOAD="$LDP" timeout 120 nc -N 127.0.0.1 "$P" <"$T/in" \
        2>"$T/$name.cli" || fail "$name: the sending nc failed: $(tail -2 "$T/$name.cli")"
    wait "$srv" || fail "$name: the receiving nc failed: $(tail -2 "$T/$name.srv")"
    [ "$(sha "$T/$name.out")" = "$(sha "$T/in")" ] || fail "$name: sha256 differs"
    grep -q "^  udp:" "$T/$name.cli" || fail "$name: no engine stats from the sender"
}

transfer gso RUDP_DATAGRAM=1400
sent=$(stat_of "$T/gso.cli" "datagrams sent" in)
calls=$(stat_of "$T/gso.cli" "in" calls)
trains=$(stat_of "$T/gso.cli" "calls," "GSO trains")
rdg=$(stat_of "$T/gso.srv" "received" in)
reads=$(stat_of "$T/gso.srv" "in" reads)
echo "offload on: sender $sent datagrams in $calls calls ($trains trains); receiver $rdg datagrams in $reads reads"
grep -q "GSO on" "$T/gso.cli" || fail "GSO is not on: $(grep "^  udp:" "$T/gso.cli")"
[ "$trains" -gt 0 ] && [ $((calls * 4)) -lt "$sent" ] || fail "the sender did not send in trains"
[ $((reads * 2)) -lt "$rdg" ] || fail "the receiver's reads were not coalesced by GRO"
echo "ok: GSO trains out, GRO-coalesced in, sha256 equal"

transfer plain RUDP_DATAGRAM=1400 RUDP_OFFLOAD=0
sent=$(stat_of "$T/plain.cli" "datagrams sent" in)
trains=$(stat_of "$T/plain.cli" "calls," "GSO trains")
rdg=$(stat_of "$T/plain.srv" "received" in)
reads=$(stat_of "$T/plain.srv" "in" reads)
coal=$(stat_of "$T/plain.srv" "reads," "coalesced")
echo "offload off: sender $sent datagrams, $trains trains; receiver $rdg datagrams in $reads reads"
[ "$trains" = 0 ] && [ "$coal" = 0 ] && [ "$reads" = "$rdg" ] ||
    fail "RUDP_OFFLOAD=0 still used GSO or GRO: $(grep "^  udp:" "$T/plain.cli" "$T/plain.srv")"
echo "ok: RUDP_OFFLOAD=0: one datagram per message both ways, sha256 equal"

# Part 3: a refused train, over an emulated link.
emu_up gso "delay=1" "delay=1" 1
PORT=7100
(exec ip netns exec "$EMU_NS_B" timeout 120 env LD_PRELOAD="$LDP" RUDP_STATS=1 \
    RUDP_DATAGRAM=2000 nc -l "$EMU_IP_B" "$PORT") </dev/null >"$T/mtu.out" 2>"$T/mtu.srv" &
RECV=$!
EMU_BG_PIDS="$EMU_BG_PIDS $RECV"
PIDS="$PIDS $RECV"
SS_NS=$EMU_NS_B wait_udp "$PORT"
ip netns exec "$EMU_NS_A" timeout 120 env LD_PRELOAD="$LDP" RUDP_STATS=1 RUDP_DATAGRAM=2000 \
    nc -N "$EMU_IP_B" "$PORT" <"$T/in" 2>"$T/mtu.cli" || fail "MTU: the sending nc failed"
wait "$RECV" || fail "MTU: the receiving nc failed: $(tail -2 "$T/mtu.srv")"
[ "$(sha "$T/mtu.out")" = "$(sha "$T/in")" ] || fail "MTU: sha256 differs"
refused=$(sed -n 's/^  udp: .*refused \([0-9][0-9]*\)).*/\1/p' "$T/mtu.cli" | head -1)
echo "MTU 1500, RUDP_DATAGRAM=2000: $(sed -n 's/^  udp: //p' "$T/mtu.cli" | head -1)"
grep 'pmtu:' "$T/mtu.cli" || fail "no pmtu counters"
out=$(grep -o 'bytes out [0-9]*' "$T/mtu.cli" | head -1 | awk '{ print $3 }')
n=$(grep -o 'datagrams out [0-9]*' "$T/mtu.cli" | head -1 | awk '{ print $3 }')
[ "$refused" = 0 ] && ! grep -q "GSO off" "$T/mtu.cli" ||
    fail "a train was refused: datagrams larger than the device left"
[ "$((out / n))" -le 1472 ] || fail "datagrams average $((out / n)) bytes, over the device's 1472"
echo "ok: RUDP_DATAGRAM=2000 on an MTU-1500 link: datagrams fit the device, GSO on, sha256 equal"
emu_down
