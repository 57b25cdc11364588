#!/bin/sh
# Two paths (issue 48): a standby path takes over when the primary goes
# silent, and gives the connection back when the primary returns. Client
# namespace C and server namespace S joined by two veth pairs, two subnets,
# each 100 Mbit/s both ways (handlib.sh); the server listens on 10.201.9.1,
# an address of S on neither link, and the client connects to it, so the
# kernel's routes put the connection on link 1 (hc1), the primary; the
# shim keeps a standby socket of its own on link 2 (bound to hc2 and to
# 10.201.2.2). A 40 MB download from S (roamio.py at both ends, paced at
# 2.5 MB/s: 16 s). 1.5 s after the first bytes arrive, every packet
# arriving on link 1 is dropped at both ends (nftables in C and in S; no
# link or route changes: for the kernel, the primary is still there); 10 s
# later the rules go and the primary carries again, some 4.5 s of the
# download still to come. The client keeps the connection open after the
# last byte until it has moved back (10 s at most, --hold), then closes.
# Twice, a new pair of namespaces each, with the client's routing as a
# laptop with two uplinks has it: no rules (two default routes, metrics
# 100 and 200: what NetworkManager does), and source rules (from 10.201.2.2
# lookup 102, the main table's default on link 1 only).
#
# Asserts, under the shim (RUDP_FALLBACK=none; RUDP_MULTIPATH left to its
# default, handover), in both: the download completes intact (sha256
# equal); the cut fell mid-download and the primary came back before its
# end; nftables really dropped the download's packets arriving in C (what
# it dropped in S, the client's, is printed); the client's counters
# (RUDP_STATS) show it moved to its standby path and back to its primary
# ("handover: to standby N, back to primary M": N >= 1, M = N); the
# server's show the peer moved both ways ("path: peers moved N": N >= 2).
# Timing-free: when it moved is printed, never asserted: from the client's
# log (RUDP_LOG=info: "moves to its standby path", "moves back to its
# primary path"), the time from the cut to the move and from the
# primary's return to the move back, with the longest gap between two
# reads at the receiver across the cut and the bytes read during it.
#
# Beside that, at the same time in namespaces of its own (no rules), the
# same over kernel TCP, for information: its connection stays on link 1,
# stalls through the cut and resumes once its backed-off retransmission
# timer fires after the primary is back.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/tests/roaming/roamlib.sh"
. "$ROOT/integration/tests/roaming/handlib.sh"

SIZE=40000000
RATE=2500000
PORT=7480
hand_setup "$SIZE"

# The kernel TCP run (information) beside this one, in namespaces of its
# own: its connection never leaves link 1, so one routing is enough.
if roam_beside; then
    hand_run norules "$ROAM_MODE.norules" "$PORT" "$RATE"
    echo "kernel TCP, $HAND_LABEL: $HAND_SUMMARY"
    exit 0
fi

roam_mode shim
problems=""
for v in norules rules; do
    hand_run "$v" "$ROAM_MODE.$v" "$PORT" "$RATE"
    echo "under the shim, $HAND_LABEL: $HAND_SUMMARY"
    hand_check || problems="$problems $v"
done
roam_beside_said
[ -z "$problems" ] || fail "under the shim, the handover failed in:$problems (above)"
echo "ok: under the shim, in both routings: intact through 10 s of a silent primary," \
    "to the standby and back (counters)"
