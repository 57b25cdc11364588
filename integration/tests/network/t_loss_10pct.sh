#!/bin/sh
# A bulk transfer through the shim over a bad emulated link: 10 MB of random
# bytes from namespace a to namespace b with 10 % random loss, 2 % reordering
# and 2 % duplication in both directions (data and acknowledgements), 2 ms
# each way, no rate limit, linkemu seed 1. OpenBSD nc at both ends, both
# under the shim (the default controller, or RUDP_CC from the environment):
# `nc -N` sends and half-closes at EOF, `nc -l` receives to EOF. Passes when
# both exit 0 by themselves within the bound, the sha256 is equal, the
# sender's RUDP_STATS show the whole stream went over rudp, and linkemu
# really lost, reordered and duplicated packets. RUDP_FALLBACK=none: a SYN
# lost at these rates would, after the probe delay, race kernel TCP (which
# a dual listener takes), and the subject here is rudp's loss recovery.
#
# t_loss_30pct.sh runs this script with LOSS_PCT=30 and its own size and
# bound. Knobs: LOSS_PCT (10), LOSS_SIZE (bytes, 10000000), LOSS_LIMIT
# (seconds for the transfer, 90), LOSS_DELAY (ms each way, 2).
#
# The delay is short on purpose: at these loss rates the transfer is bound by
# loss recovery round trips and probe timeouts, so its time grows with the
# RTT. On a 2 vCPU VM, 20 MB took ~20 s with the default controller (bbr),
# ~35 s with RUDP_CC=newreno; at 10 ms each way NewReno took ~120 s. 10 MB
# (~11 s with bbr: some 7,000 datagrams each way, ~850 of them lost, ~120
# probe timeouts) keep make test within its budget; the size itself is not
# what the test asserts.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/emu/netns.sh"
need_netns "the link emulator's namespaces"
need_tun "the link emulator"

PCT=${LOSS_PCT:-10}
SIZE=${LOSS_SIZE:-10000000}
LIMIT=${LOSS_LIMIT:-90}
DELAY=${LOSS_DELAY:-2}
PORT=7000
SPEC="delay=$DELAY,loss=$PCT,reorder=2,dup=2"
LDP=$(shim_preload)
export RUDP_FALLBACK=none
[ -f "$SHIM" ] || fail "shim not built: $SHIM"

head -c "$SIZE" /dev/urandom >"$T/in"
emu_up loss "$SPEC" "$SPEC" 1
echo "link: $SPEC both ways; $SIZE bytes a -> b; RUDP_CC=${RUDP_CC:-default}"

# Receiver in b. Started as a subshell that execs, so the PID is the
# program's chain (ip netns exec -> timeout -> nc); emu_down kills it.
(exec ip netns exec "$EMU_NS_B" timeout -k 5 $((LIMIT + 30)) env LD_PRELOAD="$LDP" \
    RUDP_STATS=1 nc -l "$EMU_IP_B" "$PORT") </dev/null >"$T/out" 2>"$T/recv.log" &
RECV=$!
EMU_BG_PIDS="$EMU_BG_PIDS $RECV"
PIDS="$PIDS $RECV"
i=0
until ip netns exec "$EMU_NS_B" ss -H -n -ua "sport = :$PORT" | grep -q .; do
    i=$((i + 1))
    [ "$i" -lt 200 ] || { cat "$T/recv.log" >&2; fail "receiver not listening on UDP $PORT after 10 s"; }
    sleep 0.05
done

t0=$(date +%s%N)
rc=0
ip netns exec "$EMU_NS_A" timeout -k 5 "$LIMIT" env LD_PRELOAD="$LDP" RUDP_STATS=1 \
    nc -N "$EMU_IP_B" "$PORT" <"$T/in" >"$T/send.out" 2>"$T/send.log" || rc=$?
t1=$(date +%s%N)
[ "$rc" = 0 ] || { cat "$T/send.log" "$T/recv.log" >&2; fail "sending nc exited $rc after $(((t1 - t0) / 1000000)) ms (124: not done in ${LIMIT} s)"; }

# The receiver exits at the sender's FIN; give it a moment.
i=0
while kill -0 "$RECV" 2>/dev/null && [ "$i" -lt 300 ]; do
    sleep 0.05
    i=$((i + 1))
done
rc=0
wait "$RECV" || rc=$?
t2=$(date +%s%N)
[ "$rc" = 0 ] || { cat "$T/recv.log" >&2; fail "receiving nc exited $rc"; }

emu_stats
lost=$(emu_stat a2b_drop_loss) dup=$(emu_stat a2b_dup) reo=$(emu_stat a2b_reorder)
back=$(emu_stat b2a_drop_loss)
echo "linkemu a->b: $(emu_stat a2b_in_pkts) packets in, $lost lost, $dup duplicated, $reo reordered; b->a: $back lost"
echo "sender:   $(stats_lines "$T/send.log" | grep '^\(stream\|loss\)' || echo 'no stats line')"
echo "receiver: $(stats_lines "$T/recv.log" | grep '^\(stream\|loss\)' || echo 'no stats line')"

got=$(stat -c %s "$T/out")
[ "$(sha "$T/out")" = "$(sha "$T/in")" ] || fail "sha256 differs ($got of $SIZE bytes received)"
sent=$(sed -n 's/.*stream bytes sent \([0-9]*\),.*/\1/p' "$T/send.log" | head -1)
[ "${sent:-0}" -ge "$SIZE" ] || fail "sender's RUDP_STATS show ${sent:-no} stream bytes, not $SIZE: not over rudp?"
[ "$lost" -gt 0 ] && [ "$dup" -gt 0 ] && [ "$reo" -gt 0 ] && [ "$back" -gt 0 ] ||
    fail "the link did not impair the transfer (lost $lost, dup $dup, reordered $reo, lost b->a $back)"
echo "ok: $SIZE bytes at $PCT% loss, 2% reordering, 2% duplication: sha256 equal; sent in $(((t1 - t0) / 1000000)) ms, received to EOF in $(((t2 - t0) / 1000000)) ms"
