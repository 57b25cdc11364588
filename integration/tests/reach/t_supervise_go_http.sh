#!/bin/sh
# Go's net/http behaves over rudp, both ends under rudp-supervise, as over
# kernel TCP (issue 35, "done when" 3). Each case runs plain first (kernel
# TCP: the counters see it), then supervised: the same output, 0 TCP
# segments on the port, UDP datagrams to it.
#   1. keep-alive: a server (ListenAndServe, counting the connections it
#      accepts) and a client whose four requests ride one kept-alive
#      connection: every answer says connection 1, the server accepted
#      one; /quit's Shutdown ends the server; Go's RemoteAddr is the TCP one.
#   3. the pid `ss -tlnp` shows for the supervised server's port (the
#      serving process's: it holds the sockets) behaves like the program's
#      for SIGTERM and SIGHUP (issue 47): sent to it, the server ends by
#      that signal (Go's default for both), its status 128+N; rudp-stat of
#      that pid names the program it serves. (SIGINT: a
#      background job of a non-interactive shell starts with it ignored,
#      which Go keeps, over kernel TCP too: not played here.)
#   2. Shutdown with a request in flight (server and client in one
#      process, gohttp shutdown): the listener closes at once, so a new
#      connect is refused (ECONNREFUSED), Shutdown waits for the request,
#      which completes, then returns nil.
. "$(dirname "$0")/../../lib/reachlib.sh"
need_supervise

go_program gohttp "$T/gohttp"

# what kernel TCP says to the keep-alive client (gohttp client)
cp "$ROOT/integration/tests/reach/gohttp/keepalive.want" "$T/keepalive.want"
cat >"$T/shutdown.want" <<EOF
connect while shutting down: refused true
Shutdown waits for the request in flight
in flight: slow: done
Shutdown: <nil>
Serve: http: Server closed
EOF

# counts HOW: TCP and UDP since _t0 and _u0; fails unless they say kernel
# TCP (plain) or rudp (supervised)
counts() {
    TCP=$(( $(tcp_now) - _t0 )) UDP=$(( $(udp_now) - _u0 ))
    if [ "$1" = plain ]; then
        [ "$TCP" -gt 0 ] || fail "$_case ($1): no TCP segment counted (probe broken?)"
    else
        [ "$TCP" = 0 ] || fail "$_case ($1): $TCP TCP segments: not rudp"
        [ "$UDP" -gt 0 ] || fail "$_case ($1): no UDP datagram on the port"
    fi
}

# same HOW FILE WANT: FILE says WANT
same() {
    diff "$3" "$2" >"$T/diff" || { cat "$T/diff" >&2; show "$2"; fail "$_case ($1): not what kernel TCP says"; }
}

_case=keep-alive
for _how in plain supervised; do
    _sup=""
    [ "$_how" = plain ] || _sup=$RUNSUP
    # shellcheck disable=SC2086 # $_sup: a command or nothing
    start_bg "$_how.server" $_sup "$T/gohttp" server "$PORT"
    _srv=$LAST_PID
    if [ "$_how" = plain ]; then wait_tcp "$PORT"; else wait_udp "$PORT"; fi
    _t0=$(tcp_now) _u0=$(udp_now)
    # shellcheck disable=SC2086 # $_sup: a command or nothing
    timeout 60 $_sup "$T/gohttp" client "$PORT" >"$T/$_how.client" 2>&1 ||
        { show "$T/$_how.client" "$T/$_how.server.log"; fail "$_case ($_how): the client failed"; }
    wait_exit "$_srv" 30 || { show "$T/$_how.server.log"; fail "$_case ($_how): the server did not end by its Shutdown"; }
    counts "$_how"
    same "$_how" "$T/$_how.client" "$T/keepalive.want"
    grep -qx "server: http: Server closed" "$T/$_how.server.log" ||
        { show "$T/$_how.server.log"; fail "$_case ($_how): no Shutdown"; }
    [ "$(grep -c '^/[a-z]* from 127\.0\.0\.1:[0-9]*$' "$T/$_how.server.log")" = 4 ] ||
        { show "$T/$_how.server.log"; fail "$_case ($_how): RemoteAddr is not a TCP address"; }
    echo "$_case ($_how): 4 requests on 1 connection, Shutdown; TCP segments on port $PORT: $TCP, UDP datagrams to it: $UDP"
done

_case=shutdown
for _how in plain supervised; do
    _sup=""
    [ "$_how" = plain ] || _sup=$RUNSUP
    _t0=$(tcp_now) _u0=$(udp_now)
    # shellcheck disable=SC2086 # $_sup: a command or nothing
    timeout 60 $_sup "$T/gohttp" shutdown "$PORT" >"$T/$_how.shutdown" 2>"$T/$_how.shutdown.err" ||
        { show "$T/$_how.shutdown" "$T/$_how.shutdown.err"; fail "$_case ($_how): failed"; }
    counts "$_how"
    same "$_how" "$T/$_how.shutdown" "$T/shutdown.want"
    echo "$_case ($_how): new connect refused, the request in flight completed; TCP segments on port $PORT: $TCP, UDP datagrams to it: $UDP"
done
_case=signal
for _sig in TERM:15 HUP:1; do
    _num=${_sig#*:} _sig=${_sig%:*}
    port_quiet
    # shellcheck disable=SC2086 # $RUNSUP: a command and its options
    start_bg "sig$_sig.server" $RUNSUP "$T/gohttp" server "$PORT"
    _srv=$LAST_PID
    wait_tcp "$PORT"
    _sp=$(ss -Htlnp "sport = :$PORT" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)
    [ -n "$_sp" ] || fail "$_case: ss -tlnp names no process for port $PORT"
    _who=$(cat "/proc/$_sp/comm" 2>/dev/null)
    # rudp-stat of that pid names the program it serves
    "$TOOLS/rudp-stat" "$_sp" >"$T/sig$_sig.stat" 2>&1 || true
    grep -q "^process $_sp is rudp-supervise serving the program [0-9]* (gohttp):" "$T/sig$_sig.stat" ||
        { show "$T/sig$_sig.stat"; fail "$_case: rudp-stat $_sp does not name the program it serves"; }
    _rc=0
    kill "-$_sig" "$_sp"
    wait_exit "$_srv" 10 || _rc=$?
    _want=$((128 + _num))
    [ "$_rc" = "$_want" ] ||
        { show "$T/sig$_sig.server.log"; fail "$_case: SIG$_sig to pid $_sp (ss's for port $PORT): the server's status is $_rc, not $_want"; }
    # the program's own death by the signal, not the caller's SIGKILL after
    # the serving process died of it (whose status would be the same)
    ! grep -q "the serving process ended" "$T/sig$_sig.server.log" ||
        { show "$T/sig$_sig.server.log"; fail "$_case: SIG$_sig ended the serving process, not the program"; }
    echo "$_case: SIG$_sig to pid $_sp, $_who (what ss -tlnp shows for port $PORT), ended the server: status $_rc"
done
echo "ok"
