#!/bin/sh
# tests/prog_options.c over kernel TCP and then under the shim (run_both):
# the IP-, IPv6- and TCP-level options TCP keeps and reports (IP_TOS, IP_TTL,
# IPV6_TCLASS, IPV6_UNICAST_HOPS, TCP_MAXSEG, IP_MTU/IPV6_MTU, TCP_CONGESTION,
# TCP_NOTSENT_LOWAT, SO_PROTOCOL/DOMAIN/TYPE/ACCEPTCONN, unknown numbers),
# their defaults, inheritance by accept() and errnos, over IPv4 and IPv6;
# TCP_CONGESTION with each of rudp's own controllers, vegas ... cdg (the
# kernel's answer over kernel TCP, rudp's controllers under the shim) and
# a name rudp lacks (bpf_cubic: the kernel's answer both ways).
#
# Then, under the shim only, that the options take effect on rudp: one
# connection held by `prog_options hold PORT` (listener TCP_CONGESTION
# "cubic" and IP_TOS 0x28, client "reno" and IP_TOS 0xb9, set before
# listen/connect):
#  (where this process may not set cubic, a container's root without
#  CAP_NET_ADMIN, the listener runs bbr or reno, said in a skip line; a
#  controller the kernel has and refuses it is not tried on the live socket)
#  - rudp-stat shows the accepted connection running cubic and the client
#    newreno (rudp's name for Linux's reno);
#  - TCP_CONGESTION "bbr", then each of rudp's own ("vegas" ... "cdg", the
#    client_cc lines below) set on the connected client switches its live
#    connection to each (rudp's whether the kernel has the modules or
#    not); "reno" set on the listener after listen() gives a second
#    accepted connection newreno, while the first keeps cubic;
#  - a capture of the port (tshark) shows every datagram of the client with
#    TOS 0xb8 (TCP's IP_TOS without the ECN bits) until it sets IP_TOS 0x10
#    on the connected socket, and 0x10 from then on (the line it sends
#    after); of the second client (no IP_TOS) 0x00; of the server to the
#    first client 0x28 throughout (an accepted socket keeps what it had from
#    its listener, as TCP's does), to the second, accepted after IP_TOS 0x30
#    was set on the listener, 0x30.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_options
need_tool rudp-stat
run_both options "$BIN/prog_options"

[ "$SHIM_MODE" = shim ] || skip "rudp-stat and the capture need the shim"
command -v tshark >/dev/null || fail "tshark is missing (integration/deps.sh test installs it)"

P=$(free_port)
capture_start cap "$P"
ts=$CAPTURE_PID

mkfifo "$T/in"
bg_app_io hold "$T/in" "$T/hold.out" "$BIN/prog_options" hold "$P"
hold=$LAST_PID
exec 3>"$T/in"
wait_line "$T/hold.out" '^ready' 20 || { show "$T/hold.out" "$T/hold.log"; fail "hold: no connection"; }
# the listener's controller: cubic, unless this process may not set it (a
# container's root without CAP_NET_ADMIN, cubic not allowed): then bbr or
# reno (prog_options.c's listener_cc); rudp-stat says newreno for reno
lcc=$(sed -n 's/^ready listener-cc \([a-z]*\)$/\1/p' "$T/hold.out")
[ -n "$lcc" ] || { show "$T/hold.out"; fail "hold: no listener-cc on its ready line"; }
[ "$lcc" = cubic ] || echo "skip: cubic refused here (no CAP_NET_ADMIN, not in tcp_allowed_congestion_control): the listener runs $lcc"
lstat=$lcc
[ "$lcc" = reno ] && lstat=newreno

# stat: rudp-stat of the holder into $T/stat, its ESTAB and detail lines shown
stat() {
    "$TOOLS/rudp-stat" "$hold" >"$T/stat" 2>&1 || { cat "$T/stat"; fail "rudp-stat $hold failed"; }
    sed 's/^/rudp-stat: /' "$T/stat" | grep -E 'ESTAB|^rudp-stat:   [a-z]' || true
}
# ccs FROM TO: the controllers of the connections FROM > TO (extended
# regexps for the ports), in rudp-stat's order: each ESTAB line is
# followed by its detail line, which starts with the controller
ccs() {
    grep -A1 -E "^ESTAB 127\.0\.0\.1:$1 > 127\.0\.0\.1:$2 " "$T/stat" |
        sed -n 's/^  \([a-z]*\) .*/\1/p' | tr '\n' ' '
}
stat
[ "$(grep -c '^ESTAB ' "$T/stat")" = 2 ] || { cat "$T/stat"; fail "rudp-stat: not 2 connections"; }
[ "$(ccs "$P" '[0-9]+')" = "$lstat " ] || fail "accepted connection runs '$(ccs "$P" '[0-9]+')', want $lstat (set on the listener)"
[ "$(ccs '[0-9]+' "$P")" = "newreno " ] || fail "client runs '$(ccs '[0-9]+' "$P")', want newreno (TCP_CONGESTION reno)"
echo "ok: rudp-stat: the accepted connection runs $lstat, the client newreno"
cport=$(sed -n "s/^ESTAB 127\.0\.0\.1:\([0-9]*\) > 127\.0\.0\.1:$P .*/\1/p" "$T/stat")

# client_cc NAME: TCP_CONGESTION NAME on the connected client; rudp-stat
# must show its connection running NAME. A controller the kernel has and
# would refuse this process (EPERM, the shim's answer too: t_prog_options'
# first part checks it) is not tried.
client_cc() {
    ok=$("$BIN/prog_options" cc-ok "$1")
    [ "$ok" = "$1" ] || { echo "skip: TCP_CONGESTION $1 on the live socket: $ok"; return 0; }
    echo "cc $1" >&3
    wait_line "$T/hold.out" "^client cc $1" 20 || { show "$T/hold.out"; fail "hold: cc $1 not set"; }
    stat
    [ "$(ccs '[0-9]+' "$P")" = "$1 " ] || fail "client runs '$(ccs '[0-9]+' "$P")' after TCP_CONGESTION $1 on the live socket"
    echo "ok: rudp-stat: TCP_CONGESTION $1 on the connected client switched its connection to $1"
}
client_cc bbr
client_cc vegas # rudp's, whether this kernel has the module or not
client_cc htcp
client_cc scalable
client_cc westwood
client_cc highspeed
client_cc bic
client_cc veno
client_cc hybla
client_cc illinois
client_cc yeah
client_cc lp
client_cc nv
client_cc cdg
client_cc copa

echo "listener-tos 48" >&3
wait_line "$T/hold.out" '^listener tos 48' 20 || { show "$T/hold.out"; fail "hold: listener tos not set"; }
echo "listener-cc reno" >&3
wait_line "$T/hold.out" '^second connection' 20 || { show "$T/hold.out"; fail "hold: no second connection"; }
stat
[ "$(grep -c '^ESTAB ' "$T/stat")" = 4 ] || { cat "$T/stat"; fail "rudp-stat: not 4 connections"; }
acc=$(ccs "$P" '[0-9]+')
case "$acc" in
"$lstat newreno " | "newreno $lstat ") ;;
*) fail "accepted connections run '$acc', want $lstat (first) and newreno (after listener-cc reno)" ;;
esac
echo "ok: rudp-stat: TCP_CONGESTION reno on the listener after listen(): the next accepted connection runs newreno, the first keeps $lstat"

echo "tos 16" >&3
wait_line "$T/hold.out" '^client tos 16' 20 || { show "$T/hold.out"; fail "hold: tos not set"; }
echo "a line to capture" >&3
wait_line "$T/hold.out" '^sent ' 20 || { show "$T/hold.out"; fail "hold: line not sent"; }
exec 3>&-
rc=0
wait_exit "$hold" 20 || rc=$?
cat "$T/hold.out"
[ "$rc" = 0 ] || { show "$T/hold.log"; fail "prog_options hold exited $rc"; }

capture_stop "$T/cap.pcapng" "$P" "$ts"
tshark -r "$T/cap.pcapng" -Y '!(frame contains "rudp-capture-")' -T fields -e udp.srcport -e udp.dstport \
    -e ip.dsfield >"$T/tos" 2>/dev/null || fail "tshark could not read the capture"
# the first client (IP_TOS 0xb9 before connect) to the listener's port; the
# second (no IP_TOS) likewise; the listener's port (IP_TOS 0x28) to both
first_bad=0
first=$(awk -v p="$P" -v c="$cport" '$1 == c && $2 == p' "$T/tos" | wc -l)
# 0xb8 until IP_TOS 0x10 on the connected socket, 0x10 from then on
first_seq=$(awk -v p="$P" -v c="$cport" '$1 == c && $2 == p { print $3 }' "$T/tos" | uniq | tr '\n' ' ')
[ "$first_seq" = "0xb8 0x10 " ] || first_bad=1
second=$(awk -v p="$P" -v c="$cport" '$1 != c && $2 == p' "$T/tos" | wc -l)
second_bad=$(awk -v p="$P" -v c="$cport" '$1 != c && $2 == p && $3 != "0x00"' "$T/tos" | wc -l)
srv=$(awk -v p="$P" '$1 == p' "$T/tos" | wc -l)
srv_seq=$(awk -v p="$P" '$1 == p { print $3 }' "$T/tos" | uniq | tr '\n' ' ')
srv_first=$(awk -v p="$P" -v c="$cport" '$1 == p && $2 == c { print $3 }' "$T/tos" | sort -u | tr '\n' ' ')
srv_second=$(awk -v p="$P" -v c="$cport" '$1 == p && $2 != c { print $3 }' "$T/tos" | sort -u | tr '\n' ' ')
srv_bad=0
[ "$srv_first" = "0x28 " ] && [ "$srv_second" = "0x30 " ] || srv_bad=1
echo "capture: first client $first datagrams (TOS in turn: $first_seq), second client $second" \
    "($second_bad not 0x00), listener's port $srv (TOS in turn: $srv_seq; to the first client:" \
    "$srv_first, to the second: $srv_second)"
[ "$first" -ge 2 ] && [ "$second" -ge 2 ] && [ "$srv" -ge 4 ] ||
    { cat "$T/tos"; fail "too few datagrams captured"; }
[ "$first_bad" = 0 ] && [ "$second_bad" = 0 ] && [ "$srv_bad" = 0 ] ||
    { cat "$T/tos"; fail "datagrams with a TOS other than their socket's"; }
echo "ok: the first client's datagrams carry TOS 0xb8, then 0x10 once set after connect(); the second's 0x00; the server's 0x28 to the first, 0x30 (set on the listener before it) to the second"
