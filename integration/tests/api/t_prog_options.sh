#!/bin/sh
# tests/prog_options.c over kernel TCP and then under the shim (run_both):
# the IP-, IPv6- and TCP-level options TCP keeps and reports (IP_TOS, IP_TTL,
# IPV6_TCLASS, IPV6_UNICAST_HOPS, TCP_MAXSEG, IP_MTU/IPV6_MTU, TCP_CONGESTION,
# TCP_NOTSENT_LOWAT, SO_PROTOCOL/DOMAIN/TYPE/ACCEPTCONN, unknown numbers),
# their defaults, inheritance by accept() and errnos, over IPv4 and IPv6.
#
# Then, under the shim only, that the options take effect on rudp: one
# connection held by `prog_options hold PORT` (listener TCP_CONGESTION
# "cubic" and IP_TOS 0x28, client "reno" and IP_TOS 0xb9, set before
# listen/connect):
#  - rudp-stat shows the accepted connection running cubic and the client
#    newreno (rudp's name for Linux's reno);
#  - a capture of the port (tshark) shows every datagram of the client with
#    TOS 0xb8 (TCP's IP_TOS without the ECN bits) and every datagram of the
#    server with 0x28.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_options rudp-stat
run_both options "$BIN/prog_options"

[ "$SHIM_MODE" = shim ] || { echo "skip: rudp-stat and the capture need the shim"; exit 0; }
command -v tshark >/dev/null || fail "tshark is missing (integration/deps.sh test installs it)"

P=$(free_port)
tshark -i lo -B 64 -f "udp port $P" -w "$T/cap.pcapng" >"$T/cap.tshark" 2>&1 &
ts=$!
PIDS="$PIDS $ts"
wait_line "$T/cap.tshark" "Capturing on" 10 || fail "tshark did not start: $(cat "$T/cap.tshark")"

mkfifo "$T/in"
bg_app_io hold "$T/in" "$T/hold.out" "$BIN/prog_options" hold "$P"
hold=$LAST_PID
exec 3>"$T/in"
wait_line "$T/hold.out" '^ready' 20 || { show "$T/hold.out" "$T/hold.log"; fail "hold: no connection"; }

"$BIN/rudp-stat" "$hold" >"$T/stat" 2>&1 || { cat "$T/stat"; fail "rudp-stat $hold failed"; }
sed 's/^/rudp-stat: /' "$T/stat" | grep -E 'ESTAB|^rudp-stat:   [a-z]' || true
[ "$(grep -c '^ESTAB ' "$T/stat")" = 2 ] || { cat "$T/stat"; fail "rudp-stat: not 2 connections"; }
grep -Eq "^ESTAB 127\.0\.0\.1:$P > " "$T/stat" || { cat "$T/stat"; fail "no accepted connection"; }
# each ESTAB line is followed by its detail line, which starts with the controller
acc_cc=$(grep -A1 -E "^ESTAB 127\.0\.0\.1:$P > " "$T/stat" | sed -n '2s/^  \([a-z]*\) .*/\1/p')
cli_cc=$(grep -A1 -E "^ESTAB 127\.0\.0\.1:[0-9]+ > 127\.0\.0\.1:$P " "$T/stat" | sed -n '2s/^  \([a-z]*\) .*/\1/p')
[ "$acc_cc" = cubic ] || fail "accepted connection runs '$acc_cc', want cubic (set on the listener)"
[ "$cli_cc" = newreno ] || fail "client connection runs '$cli_cc', want newreno (TCP_CONGESTION reno)"
echo "ok: rudp-stat: the accepted connection runs cubic, the client newreno"

echo "a line to capture" >&3
wait_line "$T/hold.out" '^sent ' 20 || { show "$T/hold.out"; fail "hold: line not sent"; }
exec 3>&-
rc=0
wait_exit "$hold" 20 || rc=$?
cat "$T/hold.out"
[ "$rc" = 0 ] || { show "$T/hold.log"; fail "prog_options hold exited $rc"; }

capture_stop "$T/cap.pcapng" "$P" "$ts"
mark=$CAPTURE_MARK
tshark -r "$T/cap.pcapng" -Y "!(frame contains \"$mark\")" -T fields -e udp.srcport -e udp.dstport \
    -e ip.dsfield >"$T/tos" 2>/dev/null || fail "tshark could not read the capture"
to_srv=$(awk -v p="$P" '$2 == p' "$T/tos" | wc -l)
from_srv=$(awk -v p="$P" '$1 == p' "$T/tos" | wc -l)
bad=$(awk -v p="$P" '($2 == p && $3 != "0xb8") || ($1 == p && $3 != "0x28")' "$T/tos" | wc -l)
echo "capture: $to_srv datagrams to the listener's port, $from_srv from it, $bad with another TOS"
[ "$to_srv" -ge 2 ] && [ "$from_srv" -ge 2 ] || { cat "$T/tos"; fail "too few datagrams captured"; }
[ "$bad" = 0 ] || { cat "$T/tos"; fail "datagrams with a TOS other than the socket's"; }
echo "ok: the client's datagrams carry TOS 0xb8, the server's 0x28"
