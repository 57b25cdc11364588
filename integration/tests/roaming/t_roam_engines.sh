#!/bin/sh
# Roaming with two engines (RUDP_ENGINES=2): the server's listener has one
# UDP socket per engine in a SO_REUSEPORT group, and the kernel picks the
# socket for each datagram by a hash of the client's address and port, so a
# client behind a NAT that re-maps its port lands, after about half of the
# rebinds, on the engine that does not hold its connection. That engine
# hands the datagram to the one whose index is in the connection ID
# (shim/ports/forward.c) instead of answering with a stateless reset (unkeyed) or
# dropping it (keyed).
#
# Runs t_roam_nat (a 7 MB transfer, 14 s at 0.5 MB/s, through a NAT
# re-mapping every second, at least 10 rebinds mid-transfer; under the shim
# only, ROAM_TCP=0) with RUDP_ENGINES=2, unkeyed and with a RUDP_KEY_FILE
# at both ends, the two at once (each makes namespaces of its own, named by
# its PID, and files of its own), and asserts each completes with sha256
# equal, that the server's engines handed datagrams over (the chance that
# 10 rebinds all hash to the first engine's socket is 2^-10), and that the
# client never had to move to a new socket of its own (shim/engine/roam.c does
# after 3 probe timeouts and 2 s with nothing heard: on a 10 ms path, only
# when its server is not answering).
# On main, unkeyed, the client is reset at the first rebind that changes
# engine ("Broken pipe after 4.4 s", 2.1 MB of 30 MB arrived); keyed, the
# datagrams are dropped until the client, hearing nothing, moves to a new
# socket whose port happens to hash to the right engine: waits of 2 to 18 s
# after a rebind, and a run that ended with 18.6 of 30 MB.
. "$(dirname "$0")/../../lib/lib.sh"
# The engine in the program's fd table whatever the hard fd limit here: this
# tests several engines, which a process whose engine keeps a table of its own
# does not run (RUDP_FD_TABLE).
export RUDP_FD_TABLE=shared

need_netns "two hosts in namespaces"
export RUDP_ENGINES=2 ROAM_TCP=0
make_key "$T/key"
NAT=$ROOT/integration/tests/roaming/t_roam_nat.sh
start_aside unkeyed sh "$NAT"
UNKEYED=$LAST_PID
start_aside keyed env ROAM_ENV="RUDP_KEY_FILE=$T/key" sh "$NAT"
KEYED=$LAST_PID
for mode in unkeyed keyed; do
    if [ "$mode" = keyed ]; then pid=$KEYED; else pid=$UNKEYED; fi
    rc=0
    aside_wait "$pid" || rc=$?
    # t_roam_nat skipped (exit 77: no ip netns exec in a chroot...): so does this
    [ "$rc" != 77 ] || skip "$mode: t_roam_nat: $(sed -n 's/^skip: //p' "$T/$mode.log" | head -1)"
    [ "$rc" = 0 ] || { tail -40 "$T/$mode.log" >&2; fail "$mode: t_roam_nat"; }
    grep '^ok' "$T/$mode.log" | sed "s/^/$mode: /"
    h=$(sed -n 's/^note: server engines: datagrams handed to the engine of their connection \([0-9]*\),.*/\1/p' \
        "$T/$mode.log")
    grep '^note: server engines' "$T/$mode.log" | sed "s/^/$mode: /"
    [ "${h:-0}" -gt 0 ] || fail "$mode: the server's engines handed no datagram over"
    grep '^note: client path' "$T/$mode.log" | sed "s/^/$mode: /"
    m=$(sed -n 's/^note: client path: .*connections moved to a new socket \([0-9]*\),.*/\1/p' \
        "$T/$mode.log")
    [ "$m" = 0 ] || fail "$mode: the client moved to a new socket ${m:-?} times (its server went silent)"
    echo "ok: $mode, RUDP_ENGINES=2: the transfer outlived every rebind, $h datagrams handed to their connection's engine, the client never looking for another path"
done
