#!/bin/sh
# The calls rudp-supervise's filter reports beyond the set-up calls, and
# those it leaves to the kernel as the preload does (issue 35,
# docs/reach.md): each case of tests/prog_reachcalls runs as a static
# program over kernel TCP first ("plain": the preloaded echo server takes
# plain TCP clients too), then under rudp-supervise, where it must print
# the same line and make no TCP segment on the port (nftables, reachlib.sh):
#   ioctls       SIOCOUTQ, SIOCOUTQNSD (reported: the shim's answers),
#                SIOCINQ/FIONREAD and SIOCATMARK (the bridge's own);
#   oob          send(MSG_OOB), POLLPRI, SIOCATMARK, recv(MSG_OOB) between
#                two supervised ends (the bridge's own, as preloaded);
#   tfo, tfomsg  sendto()/sendmsg() with MSG_FASTOPEN (reported: a connect
#                over rudp, not a kernel TCP one);
#   tfo_kernel   the same to an address RUDP_REDIRECT leaves to kernel TCP:
#                sent and echoed over kernel TCP, under the supervisor;
#   tfolow       tfo from a socket at a number past RLIMIT_NOFILE, where no
#                bridge can go: as over TCP, kernel TCP then (the call once
#                waited for ever for an answer);
#   tforace      tfo on a blocking socket whose number the program gives
#                another socket while the call waits for its handshake
#                (held back by nftables dropping the UDP to the port): the
#                call's bytes go on the socket it was made on, as TCP's
#                (one lookup of the number, at the call), and the fresh
#                socket stays unconnected: no kernel TCP made on it; and
#                with the number closed instead, which stays closed (no
#                connection put there);
#   connrace     the same with a blocking connect() and no bytes.
. "$(dirname "$0")/../../lib/reachlib.sh"

need_static PROG prog_reachcalls
need_bin prog_reach
need_supervise

gap ioctls 1 ioctls 127.0.0.1 "$PORT"
gap oob 0 oob "$PORT"
gap tfo 1 tfo 127.0.0.1 "$PORT"
gap tfomsg 1 tfomsg 127.0.0.1 "$PORT"
# An address the settings leave to kernel TCP (RUDP_REDIRECT): the
# supervisor's own call makes the kernel's connect on the program's socket
# and sends the data on it, as the kernel's sendto would (not EISCONN).
reach_case tfo_kernel 1000 "sent 1000, echoed; connect after: .*already connected" \
    env RUDP_REDIRECT='!127.0.0.1' $SUP "$PROG" tfo 127.0.0.1 "$PORT"
[ "$TCP" -gt 0 ] || fail "tfo_kernel: no TCP segment: not left to the kernel"
for how in plain supervised; do
    _sup=
    [ "$how" = supervised ] && _sup=$SUP
    reach_case "tfolow.$how" 1000 "sent 1000, echoed" $_sup "$PROG" tfolow 127.0.0.1 "$PORT"
    [ "$TCP" -gt 0 ] || fail "tfolow ($how): no TCP segment: not kernel TCP"
done
# the program's line alike (the supervisor says why kernel TCP, once)
grep -v '^rudp-supervise: ' "$T/tfolow.supervised.client" | cmp -s "$T/tfolow.plain.client" - ||
    { show "$T/tfolow.plain.client" "$T/tfolow.supervised.client"
      fail "tfolow: the supervised program tells a difference"; }
echo "tfolow: $(tail -1 "$T/tfolow.supervised.client") (plain and supervised alike, kernel TCP)"

# race CASE BYTES [close]: the case, plain then supervised, its handshake
# held back (the UDP to the port dropped) until the number holds the
# fresh socket, or is closed; the program told when a datagram of it was
# dropped (go), so that it acts while the call waits; the sink must get
# BYTES
race() {
    _rn=$1${3:+.$3}
    for how in plain supervised; do
        _sup=
        [ "$how" = supervised ] && _sup=$SUP
        _d=$T/$_rn.$how.d
        mkdir "$_d"
        port_quiet
        start_bg "$_rn.$how.server" under_shim "$BIN/prog_reach" sink "$PORT"
        _srv=$LAST_PID
        wait_udp "$PORT"
        # after reachlib's chain (priority 0), which counts what it drops
        nft add table inet race
        nft add chain inet race out '{ type filter hook output priority 10; }'
        nft add rule inet race out udp dport "$PORT" drop
        _t0=$(tcp_now) _u0=$(udp_now)
        start_bg "$_rn.$how" $_sup "$PROG" "$1" 127.0.0.1 "$PORT" "$_d" ${3:-}
        _cli=$LAST_PID
        _i=0
        until [ -e "$_d/replaced" ] || [ "$_i" -ge 600 ] || ! running "$_cli"; do
            [ -e "$_d/go" ] || [ "$(udp_now)" -le "$_u0" ] || : >"$_d/go"
            sleep 0.05
            _i=$((_i + 1))
        done
        nft delete table inet race
        [ -e "$_d/replaced" ] || { show "$T/$_rn.$how.log"; fail "$_rn ($how): the number was never given another socket"; }
        wait_exit "$_cli" 40 || { show "$T/$_rn.$how.log" "$T/$_rn.$how.server.log"; fail "$_rn ($how): the program failed"; }
        wait_exit "$_srv" 30 || { show "$T/$_rn.$how.server.log"; fail "$_rn ($how): the sink failed"; }
        grep -qx "received $2" "$T/$_rn.$how.server.log" ||
            { show "$T/$_rn.$how.server.log"; fail "$_rn ($how): the sink did not get the call's $2 bytes"; }
        tcp_since "$_rn" "$how" "$_t0"
    done
    grep -v '^rudp-supervise: ' "$T/$_rn.supervised.log" | cmp -s "$T/$_rn.plain.log" - ||
        { show "$T/$_rn.plain.log" "$T/$_rn.supervised.log"
          fail "$_rn: the supervised program tells a difference"; }
    echo "$_rn: $(tail -1 "$T/$_rn.supervised.log") (plain and supervised alike, 0 TCP supervised)"
}
race tforace 1000
race connrace 0
race tforace 1000 close
race connrace 0 close
echo "ok"
