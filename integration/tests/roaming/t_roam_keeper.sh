#!/bin/sh
# Roaming to a keeper (RUDP_ENGINES=2). A listener has one UDP socket per
# engine in a SO_REUSEPORT group, and the kernel picks the socket for each
# datagram by a hash of the peer's address and port: a client whose NAT
# re-mapped its port reaches either engine, and the one without its
# connection hands the datagram over (shim/ports/forward.c). In a keeper
# (the server's program has ended) an engine with no connection retires at
# once: it must not leave its socket in the group, read by nobody.
#
# 8 servers (8 processes, each a listener and one connection), 8 clients
# behind a NAT (namespace a): each client sends 100 kB and shuts down; each
# server reads to EOF (roamio.py --hold) and waits. Then the NAT forgets
# its mappings, and the servers close and exit: their FINs go to the old
# mappings and are lost, so each keeper carries its connection on (FIN
# unacknowledged, LAST_ACK). Each client, which had nothing more to send,
# speaks again at its keepalive (RUDP_KEEPALIVE=10s: after the servers'
# close) from a new port, which hashes to either of its keeper's sockets;
# the keeper validates the new address and sends its FIN again there.
#
# Asserts, unkeyed and with a RUDP_KEY_FILE at both ends: every server's
# connection went to a keeper (but for one whose client's keepalive came
# between the rebind and its server's end, said: its FIN was acknowledged
# before the end: CI on 584ebe6 failed once, by all signs so, when
# srv1..8 started one after the other and busy took 10 s; they start
# together now), every client finishes ("done", exit 0), and
# none moved to a new socket of its own (roam.c does that after 3 probe
# timeouts and 2 s with nothing heard: its keeper not answering).
# On 0b07638 (the retired engine's socket stayed in the group, unread) a
# client whose keepalive hashed to it heard nothing and moved to new
# sockets until one hashed to the other (all 8 pairs pass that way with a
# chance of 2^-8 per mode). Found as t_roam_engines' keyed half stalling
# for 30 s after a rebind that came as the transfer ended (t_roam_nat).
# Until linkemu had a NAT of its own, the emulator's (nftables on the
# server's namespace, translating its replies on its own output) lost the
# server's UDP GSO trains there (this kernel's checksums: docs/limits.md):
# a keeper whose FIN went with a PING as a train of two repeated it every
# second for 50 s while its single ACKs arrived, and its client read a
# reset at the linger's end (CI on 9ee6791; 2 runs in 20 here, loaded).
# Kernel TCP is not run: it is reset at the first rebind (t_roam_nat).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/tests/roaming/roamlib.sh"

PAIRS=8
BASE=7400
roam_setup 100000
make_key "$T/key"
export RUDP_ENGINES=2
echo "== kernel TCP: not run (it is reset at the first rebind: t_roam_nat)"
roam_mode shim

# waits (at most $2 s) until every log named srv1..srvN ($1: a pattern) matches
all_said() {
    _i=0
    while :; do
        _n=0
        for k in $(seq 1 "$PAIRS"); do
            grep -q "$1" "$EMU_DIR/srv$k.log" 2>/dev/null && _n=$((_n + 1))
        done
        [ "$_n" -lt "$PAIRS" ] || return 0
        _i=$((_i + 1))
        [ "$_i" -lt $(($2 * 20)) ] || return 1
        sleep 0.05
    done
}

for mode in unkeyed keyed; do
    ROAM_ENV="RUDP_KEEPALIVE=10s"
    [ "$mode" = unkeyed ] || ROAM_ENV="$ROAM_ENV RUDP_KEY_FILE=$T/key"
    rm -f "$T/flag"
    EMU_IPV6=0 emu_up roamkeep "delay=5" "delay=5"
    emu_nat_on a
    # Every server first, then every client at once: the transfers end
    # together, so no client's keepalive (10 s after) comes before the
    # rebind and the servers' ends below.
    for k in $(seq 1 "$PAIRS"); do
        roam_bg b "srv$k" "$PY" "$ROAM_IO" listen $((BASE + k)) --recv "$T/out$k" --hold "$T/flag"
    done
    for k in $(seq 1 "$PAIRS"); do roam_listening b $((BASE + k)); done
    CLIS=""
    for k in $(seq 1 "$PAIRS"); do
        roam_bg a "cli$k" "$PY" "$ROAM_IO" connect "$EMU_IP_B" $((BASE + k)) --send "$T/payload"
        CLIS="$CLIS $LAST_PID"
    done
    all_said '^eof' 30 || { roam_show "$EMU_DIR"/srv*.log; fail "$mode: not every server read to EOF in 30 s"; }
    # No client has anything to send now: the NAT forgets them, then the
    # servers close (their FINs go to the old mappings) and exit.
    emu_nat_rebind a
    touch "$T/flag"
    kept=$PAIRS
    if ! all_said 'keeper [0-9]* took over' 10; then
        # A client whose keepalive reached its server between the rebind
        # and the server's end (a machine slow enough that the transfers
        # ended 10 s apart) had its FIN acknowledged before the end: no
        # keeper was needed. Only a server without that is a failure.
        bad="" kept=0
        for k in $(seq 1 "$PAIRS"); do
            if grep -q 'keeper [0-9]* took over' "$EMU_DIR/srv$k.log"; then
                kept=$((kept + 1))
            elif grep -q '^[^ ]* rudp\[[0-9]*\] .*peer moved' "$EMU_DIR/srv$k.log"; then
                echo "note: $mode: srv$k's client spoke from its new port before the server ended: no keeper needed"
            else
                bad="$bad srv$k"
            fi
        done
        [ -z "$bad" ] || { roam_show "$EMU_DIR"/srv*.log; fail "$mode: not every server's connection went to a keeper:$bad"; }
        [ "$kept" -ge $((PAIRS / 2)) ] ||
            fail "$mode: only $kept of $PAIRS connections went to a keeper (the others' clients spoke before their servers ended: the transfers ended too far apart)"
    fi
    # The clients finish once their keepers answer (the keepalive comes
    # 10 s after each client last heard its server).
    k=0 bad="" badk="" ROAM_WATCH=""
    for p in $CLIS; do
        k=$((k + 1))
        roam_wait_exit "$p" 40 # ROAM_WATCH empty: stopped 40 s from now at most
        said=$(roam__said "cli$k")
        case "$ROAM_RC:$said" in
        0:done*) ;;
        124:*) bad="$bad cli$k: '$said' (stopped: still running 40 s on);" badk="$badk $k" ;;
        *) bad="$bad cli$k: '$said' (exit $ROAM_RC);" badk="$badk $k" ;;
        esac
        m=$(sed -n 's/.*path: .*connections moved to a new socket \([0-9]*\),.*/\1/p' "$EMU_DIR/cli$k.log" | tail -n 1)
        [ "${m:-x}" = 0 ] || bad="$bad cli$k moved to a new socket ${m:-?} times;"
    done
    if [ -n "$bad" ]; then
        # the first failing pair's logs (the end of the output is what CI shows)
        # shellcheck disable=SC2086 # the numbers, as words
        set -- $badk
        roam_show "$EMU_DIR/cli${1:-1}.log" "$EMU_DIR/srv${1:-1}.log"
        fail "$mode: $bad"
    fi
    emu_down 2>/dev/null
    echo "ok: $mode, RUDP_ENGINES=2: $PAIRS clients ($kept with a keeper) re-mapped by a NAT after their servers' FINs were lost reached their keepers, none moving to a new socket"
done
