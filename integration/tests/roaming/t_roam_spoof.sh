#!/bin/sh
# Roaming (issue 15): an off-path attacker cannot move a live connection.
# A server in namespace b sends 8 MB to a client in namespace a (roamio.py
# at both ends, under the shim with RUDP_FALLBACK=none; the server paces at
# 1.5 MB/s; 5 ms each way). Once the client holds a quarter, the attacker
# claims the connection from a new address: $SPOOF_COUNT rudp DATA
# datagrams with a PING frame and packet numbers far above the client's,
# to the server's connection ID, from $SPOOF_SRC, which no host has.
#
# Where the attacker stands: it sends from namespace a through a raw socket
# (IP_HDRINCL, headers built by integration/tools/rudpraw.py's codec), so it
# can send from an address it does not own; everything sent to that address
# is dropped as it enters a (nftables, prerouting, priority raw: before any
# socket could see it), so it cannot receive what the server answers there.
# It knows the connection ID (from the server's RUDP_LOG=info line, as if
# it had once seen a packet), nothing else: no key, no packet of the
# connection.
#
# Asserts: the spoofed datagrams reached b (nftables counter in b); the
# transfer completes with every byte (sha256 equal): the server's traffic
# did not move to the attacker's address; what the server sent there is at
# most 3 times what the attacker sent (RFC 9000 §8.1's limit for an
# address not validated); the server's RUDP_STATS count the attempt in the
# line holding "$PATH_STAT" (a number >= 1 right after it). There is no
# kernel TCP run: the attack is on rudp's connection IDs.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/tests/roaming/roamlib.sh"

# The server's RUDP_STATS words for a failed path validation ("path:
# counter; adjust here if the name differs): the count follows them.
PATH_STAT="never answering"
SPOOF_SRC=10.99.0.66
SPOOF_PORT=40000
SPOOF_COUNT=10
SIZE=8000000
RATE=1500000
PORT=7500
roam_setup "$SIZE"

# nft_count NS TABLE CHAIN: "PACKETS BYTES" counted by CHAIN's one rule
nft_count() {
    ip netns exec "$1" nft list chain ip "$2" "$3" | sed -n "s/.*counter packets \([0-9]*\) bytes \([0-9]*\).*/\1 \2/p"
}

roam_mode shim
EMU_IPV6=0 emu_up roamsp "delay=5" "delay=5"
ip netns exec "$EMU_NS_A" nft -f - <<EOF || fail "nft in a"
table ip roamspoof {
    chain pre { type filter hook prerouting priority raw; policy accept;
        ip daddr $SPOOF_SRC counter drop
    }
}
EOF
ip netns exec "$EMU_NS_B" nft -f - <<EOF || fail "nft in b"
table ip roamspoof {
    chain pre { type filter hook prerouting priority raw; policy accept;
        ip saddr $SPOOF_SRC counter
    }
}
EOF
roam_transfer b2a "$PORT" "$RATE"
rc=0
roam_wait_bytes "$T/out" $((SIZE / 4)) "$ROAM_SENDER" || rc=$?
[ "$rc" = 0 ] || { roam_finish; roam_show "$EMU_DIR/cli.log" "$EMU_DIR/srv.log"; fail "before the attack: $ROAM_OUTCOME"; }
roam_over_rudp b "$PORT"
# the ID packets to the server carry (the name's "id" is the client's)
cid=$(sed -n "s/.*: accepted, .* the server's connection ID is \([0-9a-f]\{16\}\).*/\1/p" "$EMU_DIR/srv.log" | head -n 1)
[ -n "$cid" ] || { roam_show "$EMU_DIR/srv.log"; fail "no ': accepted, ... the server's connection ID is ...' line in the server's log (RUDP_LOG=info)"; }
at=$ROAM_SIZE
emu_a "$PY" "$ROAM_IO" spoof --src "$SPOOF_SRC" --sport "$SPOOF_PORT" --to "$EMU_IP_B" --port "$PORT" \
    --cid "$cid" --count "$SPOOF_COUNT" >"$T/spoof.out" 2>&1 || { cat "$T/spoof.out" >&2; fail "the attacker failed"; }
echo "   attack at $(mb "$at") at the client: $(cat "$T/spoof.out") from $SPOOF_SRC:$SPOOF_PORT to" \
    "connection $cid"
spoof_bytes=$(sed -n 's/.*datagrams, \([0-9]*\) bytes.*/\1/p' "$T/spoof.out")
roam_finish
set -- $(nft_count "$EMU_NS_B" roamspoof pre)
reached=$1
set -- $(nft_count "$EMU_NS_A" roamspoof pre)
back_pkts=$1 back_bytes=$2
echo "   the server sent $back_pkts datagrams ($back_bytes bytes of IP) to $SPOOF_SRC;" \
    "transfer: $ROAM_OUTCOME"

[ "$reached" = "$SPOOF_COUNT" ] ||
    fail "$reached of $SPOOF_COUNT spoofed datagrams reached b: the attack was not delivered"
echo "ok: all $SPOOF_COUNT spoofed datagrams reached b"
[ "$ROAM_OK" = 1 ] || { roam_show "$EMU_DIR/cli.log" "$EMU_DIR/srv.log"; fail "after the attack: $ROAM_OUTCOME"; }
echo "ok: the transfer completed on the old path: $ROAM_OUTCOME"
[ "$back_bytes" -le $((3 * spoof_bytes)) ] ||
    fail "the server sent $back_bytes bytes to $SPOOF_SRC, more than 3 x the $spoof_bytes the attacker sent"
echo "ok: the server sent $back_bytes bytes to the attacker's address (at most 3 x $spoof_bytes)"
line=$(stats_lines "$EMU_DIR/srv.log" | grep "$PATH_STAT" | tail -n 1)
if [ -z "$line" ]; then
    fail "the server's RUDP_STATS have no '$PATH_STAT' count; their lines naming a path: $(stats_lines "$EMU_DIR/srv.log" |
        grep 'path' | paste -sd '|' | grep . || echo none)"
fi
n=$(echo "$line" | sed -n "s/.*$PATH_STAT \([0-9][0-9]*\).*/\1/p")
[ "${n:-0}" -ge 1 ] || fail "the server's RUDP_STATS count ${n:-no number} for '$PATH_STAT': $line"
echo "ok: the server counted the attempt: $line"
emu_down 2>/dev/null
