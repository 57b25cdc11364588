#!/bin/sh
# RUDP_REDIRECT: which destinations go over rudp and which stay kernel TCP.
# A plain kernel-TCP server (no shim) listens; a client under the shim with
# each rule either stays on TCP (and reaches it) or goes over rudp (and is
# refused: nothing listens there over rudp). Listening follows the rules too.
# RUDP_FALLBACK=none throughout: a fallback would carry a redirected connect
# on to the TCP server and hide which rule matched (t_fallback_refused.sh
# tests the fallback).
. "$(dirname "$0")/../../lib/lib.sh"
apart_netns
port=$(free_port)
start_bg tcpsrv python3 -c "
import socket
l = socket.socket(socket.AF_INET6); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
l.bind(('::', $port)); l.listen(64)
while True:
    c, _ = l.accept(); c.close()"
wait_tcp "$port"

check() { # RULES HOST WANT
    [ "$2" != ::1 ] || have_ipv6_lo || { skip_ipv6 "RUDP_REDIRECT='$1' to $2"; return 0; }
    # A bound for a hung client, not a timing: an ASan run on a busy
    # machine took 26 s for one python start. set -e would end the script
    # without a word on a failed substitution: say what failed instead.
    got=$(RUDP_FALLBACK=none RUDP_REDIRECT="$1" under_shim timeout 90 python3 \
        "$ROOT/integration/compat/transport.py" "$2" "$port") || got="transport.py exit $?"
    case "$3" in
    tcp) [ "$got" = "transport: tcp" ] || fail "RUDP_REDIRECT='$1' to $2: $got, want kernel TCP" ;;
    rudp) [ "$got" = "transport: refused" ] || fail "RUDP_REDIRECT='$1' to $2: $got, want rudp (refused: no rudp listener)" ;;
    esac
    echo "ok: RUDP_REDIRECT='$1' to $2 -> $3"
}
check "all" 127.0.0.1 rudp
check "none" 127.0.0.1 tcp
check "127.0.0.1" 127.0.0.1 rudp
check "127.0.0.2" 127.0.0.1 tcp
check "127.0.0.0/8" 127.0.0.1 rudp
check "10.0.0.0/8" 127.0.0.1 tcp
check ":$port" 127.0.0.1 rudp
check ":$((port + 1))-$((port + 9))" 127.0.0.1 tcp
check ":$((port - 1))-$((port + 1))" 127.0.0.1 rudp
check "127.0.0.1:$((port + 1))" 127.0.0.1 tcp
check "!127.0.0.1,all" 127.0.0.1 tcp
check "!127.0.0.1,all" ::1 rudp
check "[::1]" ::1 rudp
check "[::1]" 127.0.0.1 tcp
check "[::1]:$port" ::1 rudp
check "::1/128" ::1 rudp
check "::/0" 127.0.0.1 tcp

# Listening: a port outside the rules listens on kernel TCP.
lport=$(free_port)
# It listens until the test ends (cleanup kills it by PID), not for a while.
RUDP_REDIRECT=":$((lport + 1))" start_bg lsn under_shim python3 -c "
import signal, socket
l = socket.socket(); l.bind(('127.0.0.1', $lport)); l.listen(1)
while True: signal.pause()"
wait_tcp "$lport"
echo "ok: a listener outside RUDP_REDIRECT listens on kernel TCP"

# A bad rule is refused by name: TCP sockets fail with EACCES (exit 13).
rc=0; RUDP_REDIRECT="300.1.2.3" under_shim "$BIN/prog_tcpsocket" 2>"$T/err" || rc=$?
[ "$rc" = 13 ] && grep -q RUDP_REDIRECT "$T/err" || fail "bad rule: exit $rc, $(cat "$T/err")"
echo "ok: a bad rule is reported by name: $(head -c 120 "$T/err")"
