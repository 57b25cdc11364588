#!/bin/sh
# Two paths (issue 48, done-when 3): a client with one interface and a
# server with two addresses, the second offered in the handshake; the same
# silence on the first server address moves the connection to the second,
# and back when the first answers again. Client namespace C and server
# namespace S joined by one veth pair at 100 Mbit/s both ways (handlib.sh,
# hand_up offer); S holds 10.201.9.1 and 10.201.9.2 on its lo, and its
# listener is bound to 0.0.0.0 (the wildcard: a listener bound to one
# address hears no other) and started with RUDP_OFFER_ADDR=10.201.9.2, so
# it offers 10.201.9.2 (the same port) to the client, which connects to
# 10.201.9.1 and, having no second interface, keeps a standby socket of its
# own connected to 10.201.9.2 through its one interface. A 40 MB download
# from S (roamio.py at both ends, paced at 2.5 MB/s: 16 s). 1.5 s after the
# first bytes arrive, everything from 10.201.9.1 arriving in C and
# everything to it arriving in S is dropped (nftables; no link, address or
# route changes: for the kernel, 10.201.9.1 is still there, and 10.201.9.2
# carries as before); 10 s later the rules go and the first address answers
# again, some 4.5 s of the download still to come. The client keeps the
# connection open after the last byte until it has moved back (10 s at
# most, --hold), then closes.
#
# Asserts, under the shim (RUDP_FALLBACK=none; RUDP_MULTIPATH left to its
# default, handover): the download completes intact (sha256 equal); the
# cut fell mid-download and the first address came back before its end;
# nftables really dropped the download's packets from 10.201.9.1 arriving
# in C (what it dropped to it in S, the client's, is printed); the client's
# standby was the offered address (RUDP_LOG=info: "a standby path to
# 10.201.9.2:PORT, the server's other address"); the client's counters
# (RUDP_STATS) show it moved to its standby path and back to its primary
# ("handover: to standby N, back to primary M": N >= 1, M = N); the
# server's show the peer moved both ways ("path: peers moved N": N >= 2).
# Timing-free: when it moved is printed, never asserted: from the client's
# log ("moves to its standby path", "moves back to its primary path"), the
# time from the cut to the move and from the first address's return to
# the move back, with the longest gap between two reads at the receiver
# across the cut and the bytes read during it.
#
# Beside that, at the same time in namespaces of its own (the same one
# link, the same wildcard listener and cut), the same over kernel TCP, for
# information: its connection stays on 10.201.9.1, stalls through the cut
# and resumes once its backed-off retransmission timer fires after the
# address answers again.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/tests/roaming/roamlib.sh"
. "$ROOT/integration/tests/roaming/handlib.sh"

SIZE=40000000
RATE=2500000
PORT=7481
hand_setup "$SIZE"
# The server's only (hand_transfer); roam_bg passes it under the shim alone.
HAND_SRV_ENV="RUDP_OFFER_ADDR=$HAND_IP_S2"
OFFERED="a standby path to $HAND_IP_S2:$PORT, the server's other address"

# The kernel TCP run (information) beside this one, in namespaces of its
# own, the same topology and cut: its connection never leaves 10.201.9.1.
# The shim's moves and gaps are milliseconds: -m prints them so.
if roam_beside; then
    hand_run -w -m offer "$ROAM_MODE.offer" "$PORT" "$RATE"
    echo "kernel TCP, $HAND_LABEL: $HAND_SUMMARY"
    exit 0
fi

roam_mode shim
hand_run -w -m offer "$ROAM_MODE.offer" "$PORT" "$RATE"
echo "under the shim, $HAND_LABEL: $HAND_SUMMARY"
failed=""
hand_check "$OFFERED" || failed=1
roam_beside_said
[ -z "$failed" ] || fail "under the shim, the move to the server's other address failed (above)"
echo "ok: under the shim, intact through 10 s of a silent first server address," \
    "to the offered address and back (counters)"
