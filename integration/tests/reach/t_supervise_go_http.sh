#!/bin/sh
# Go's net/http over rudp, both ends under rudp-supervise (issue 35): a
# server (ListenAndServe, Shutdown from a handler) and a client whose four
# requests ride one kept-alive connection. 0 TCP segments on the port,
# every answer back, all four from the same client port (keep-alive), and
# the server ends by its Shutdown.
. "$(dirname "$0")/../../lib/reachlib.sh"
need_supervise

go_program gohttp "$T/gohttp"

start_bg server "$SUP" "$T/gohttp" server "$PORT"
_srv=$LAST_PID
wait_udp "$PORT"
_t0=$(tcp_now) _u0=$(udp_now)
timeout 60 "$SUP" "$T/gohttp" client "$PORT" >"$T/client.out" 2>&1 ||
    { show "$T/client.out" "$T/server.log"; fail "client failed"; }
wait_exit "$_srv" 30 || { show "$T/server.log"; fail "the server did not end by its Shutdown"; }
cat "$T/client.out"
grep -qx "server: http: Server closed" "$T/server.log" || { show "$T/server.log"; fail "no Shutdown"; }
[ "$(grep -c '^hello /[a-z]* from 127\.0\.0\.1:[0-9]*$' "$T/client.out")" = 4 ] || fail "not 4 answers"
[ "$(sed -n 's/.* from //p' "$T/client.out" | sort -u | wc -l)" = 1 ] ||
    fail "the requests did not share one connection (keep-alive)"
TCP=$(( $(tcp_now) - _t0 )) UDP=$(( $(udp_now) - _u0 ))
echo "net/http: 4 requests on one connection, Shutdown; TCP segments on port $PORT: $TCP, UDP datagrams to it: $UDP"
[ "$TCP" = 0 ] || { show "$T/server.log" "$T/client.out"; fail "$TCP TCP segments: not rudp"; }
[ "$UDP" -gt 0 ] || fail "no UDP datagram on the port"
echo "ok"
