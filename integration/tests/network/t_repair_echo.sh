#!/bin/sh
# Short writes on a lossy long link are repaired by their copies (issue 32):
# 300 sequential 100-byte echoes (integration/bench/rr.c) from namespace a
# to b over an emulated link of 20 ms each way with 5 % random loss in both
# directions, linkemu seed 1, both ends under the shim with the default
# RUDP_REPAIR (auto: a path of 5 ms or more, once a loss was seen). Passes
# when every echo came back and both ends' RUDP_STATS say copies of short
# writes' last packets were sent and at least one loss was repaired by its
# copy (the copy delivered the bytes; the original was still declared lost).
# Counters, not timings: the latency is the bench's (B5), beside kernel TCP.
# RUDP_FALLBACK=none: the subject is rudp, not a fallback to kernel TCP.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/emu/netns.sh"
need_netns "the link emulator's namespaces"
need_tun "the link emulator"

PORT=7100
COUNT=300
SPEC="delay=20,loss=5"
LDP=$(shim_preload)
export RUDP_FALLBACK=none
[ -f "$SHIM" ] || fail "shim not built: $SHIM"
[ -x "$BIN/rr" ] || fail "$BIN/rr not built (make)"

emu_up repair "$SPEC" "$SPEC" 1
echo "link: $SPEC both ways; $COUNT echoes of 100 bytes a -> b -> a"

(exec ip netns exec "$EMU_NS_B" timeout -k 5 120 env LD_PRELOAD="$LDP" RUDP_STATS=1 \
    "$BIN/rr" server --port "$PORT" --bind "$EMU_IP_B" --once) </dev/null >"$T/srv.out" 2>"$T/srv.log" &
SRV=$!
EMU_BG_PIDS="$EMU_BG_PIDS $SRV"
PIDS="$PIDS $SRV"
SS_NS=$EMU_NS_B wait_udp "$PORT"

rc=0
ip netns exec "$EMU_NS_A" timeout -k 5 100 env LD_PRELOAD="$LDP" RUDP_STATS=1 \
    "$BIN/rr" client --to "$EMU_IP_B" --port "$PORT" --size 100 --count "$COUNT" --warmup 0 \
    --timeout 90 >"$T/cli.out" 2>"$T/cli.log" || rc=$?
[ "$rc" = 0 ] || { cat "$T/cli.log" "$T/srv.log" >&2; fail "rr client exited $rc"; }
wait "$SRV" || true # --once: it exits when the client's connection ends

emu_stats
echo "linkemu: a->b $(emu_stat a2b_drop_loss) lost, b->a $(emu_stat b2a_drop_loss) lost"
echo "client: $(cat "$T/cli.out")"
for side in cli srv; do
    line=$(stats_lines "$T/$side.log" | grep '^repair:' | tail -1)
    echo "$side $line"
    [ -n "$line" ] || { cat "$T/$side.log" >&2; fail "$side: no repair line in RUDP_STATS"; }
    copies=$(echo "$line" | sed -n 's/.*last packet \([0-9]*\) .*/\1/p')
    repaired=$(echo "$line" | sed -n 's/.*losses they repaired \([0-9]*\).*/\1/p')
    [ "${copies:-0}" -gt 0 ] || fail "$side: no copy of a short write was sent ($line)"
    [ "${repaired:-0}" -gt 0 ] || fail "$side: no loss was repaired by a copy ($line)"
done
[ "$(emu_stat a2b_drop_loss)" -gt 0 ] && [ "$(emu_stat b2a_drop_loss)" -gt 0 ] ||
    fail "the link lost nothing"
echo "ok: $COUNT echoes at 5% loss both ways; both ends sent copies and had losses repaired by them"
