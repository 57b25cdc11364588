#!/bin/sh
# Go's deadlines and a cancelled dial behave over rudp under rudp-supervise
# as over kernel TCP (issue 35, "done when" 3). The Go program is goclient/;
# each case runs plain first (kernel TCP), then supervised, and prints only
# what must be the same both ways: the two outputs must be what TCP gives.
#   1. deadline: against tests/prog_reach's echo server (preloaded), a read
#      past its SetReadDeadline and a write past its SetWriteDeadline fail
#      with os.ErrDeadlineExceeded (a net.Error whose Timeout() is true);
#      after SetDeadline extends them the connection is still usable (the
#      echo, then EOF after CloseWrite); supervised: 0 TCP segments.
#   2. dialcancel: DialContext to a port whose TCP segments and UDP
#      datagrams nftables drops (a peer that never answers), the context
#      cancelled after 300 ms: context.Canceled, no file left open in the
#      program, and no connection left trying: plain, no SYN-SENT socket
#      (ss); supervised, none in the supervisor's engine (rudp-stat), with
#      RUDP_CONNECT_TIMEOUT=5m so that only the cancel can have ended it.
. "$(dirname "$0")/../../lib/reachlib.sh"
need_supervise
need_tool rudp-stat

go_program goclient "$T/reachclient"

cat >"$T/deadline.want" <<EOF
read past its deadline: 0 bytes, ErrDeadlineExceeded true, Timeout() true
write past its deadline: 0 bytes, ErrDeadlineExceeded true, Timeout() true
deadline extended: echo "ping", <nil>
then: 0 EOF
EOF
for _how in plain supervised; do
    _sup=""
    [ "$_how" = plain ] || _sup=$RUNSUP
    # shellcheck disable=SC2086 # $_sup: a command or nothing
    reach_case "deadline.$_how" 4 "^deadline extended" $_sup "$T/reachclient" deadline "127.0.0.1:$PORT"
    diff "$T/deadline.want" "$T/deadline.$_how.client" >"$T/diff" ||
        { cat "$T/diff" >&2; fail "deadline ($_how): not what kernel TCP says"; }
    if [ "$_how" = plain ]; then
        [ "$TCP" -gt 0 ] || fail "deadline (plain): no TCP segment counted (probe broken?)"
    else
        [ "$TCP" = 0 ] || fail "deadline (supervised): $TCP TCP segments: not rudp"
    fi
done

# A peer that never answers: everything to port BH dropped on the way in.
BH=$((PORT + 1))
nft -f - <<NFT
table inet blackhole {
    chain in {
        type filter hook input priority -10;
        meta l4proto tcp th dport $BH counter drop comment "bh_tcp"
        meta l4proto udp th dport $BH counter drop comment "bh_udp"
    }
}
NFT
bh_now() {
    nft list chain inet blackhole in |
        awk -v c="\"bh_$1\"" '$0 ~ c { for (i = 1; i <= NF; i++) if ($i == "packets") print $(i + 1) }'
}
# left HOW PID: the connections to BH still there (kernel TCP sockets, or
# the supervisor PID's rudp connections), one a line
left() {
    if [ "$1" = plain ]; then
        ss -H -n -t state syn-sent "( dport = :$BH )"
    else
        "$TOOLS/rudp-stat" "$2" | grep ":$BH\b" || true
    fi
}
cat >"$T/dialcancel.want" <<EOF
dial: context.Canceled true
files open: as many as before true
waiting
EOF
for _how in plain supervised; do
    _sup=""
    [ "$_how" = plain ] || _sup=$RUNSUP
    _bt=$(bh_now tcp) _bu=$(bh_now udp)
    mkfifo "$T/in.$_how"
    # shellcheck disable=SC2086,SC2016 # $_sup: a command or nothing; sh's own $@
    start_bg "dialcancel.$_how" env RUDP_CONNECT_TIMEOUT=5m sh -c 'exec "$@" <"$0"' \
        "$T/in.$_how" $_sup "$T/reachclient" dialcancel "127.0.0.1:$BH"
    _pid=$LAST_PID
    exec 3>"$T/in.$_how" # the program's stdin: it ends when this closes
    _log=$T/dialcancel.$_how.log
    _i=0
    until grep -qx waiting "$_log"; do
        running "$_pid" || { show "$_log"; fail "dialcancel ($_how): the program ended"; }
        [ "$_i" -lt 600 ] || { show "$_log"; fail "dialcancel ($_how): the dial did not return in 60 s"; }
        sleep 0.1
        _i=$((_i + 1))
    done
    grep -v '^dialcancel: ' "$_log" >"$T/dialcancel.$_how.out"
    diff "$T/dialcancel.want" "$T/dialcancel.$_how.out" >"$T/diff" ||
        { cat "$T/diff" >&2; fail "dialcancel ($_how): not what kernel TCP says"; }
    # The engine ends a connection whose bridge the program closed on its
    # own time (it learns of the close from the bridge): waited for, 10 s
    # at most, far below the 5 minutes RUDP_CONNECT_TIMEOUT gives it.
    _i=0
    while [ -n "$(left "$_how" "$_pid")" ]; do
        [ "$_i" -lt 100 ] || { left "$_how" "$_pid"; fail "dialcancel ($_how): a connection to the dropped port is left"; }
        sleep 0.1
        _i=$((_i + 1))
    done
    _tcp=$(( $(bh_now tcp) - _bt )) _udp=$(( $(bh_now udp) - _bu ))
    if [ "$_how" = plain ]; then
        [ "$_tcp" -gt 0 ] || fail "dialcancel (plain): no SYN reached the dropping rule"
    else
        [ "$_tcp" = 0 ] || fail "dialcancel (supervised): $_tcp TCP segments: not rudp"
        [ "$_udp" -gt 0 ] || fail "dialcancel (supervised): no handshake datagram reached the dropping rule"
    fi
    exec 3>&-
    wait_exit "$_pid" 30 || { show "$_log"; fail "dialcancel ($_how): the program did not end"; }
    echo "dialcancel ($_how): $(sed -n 's/^dialcancel: //p' "$_log"); no file, no connection left; dropped: $_tcp TCP segments, $_udp UDP datagrams"
done
echo "ok"
