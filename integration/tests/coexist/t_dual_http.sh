#!/bin/sh
# Dual listener (issue 14): python3 -m http.server under the shim, plain curl
# (no shim) fetching a 4 MiB file over kernel TCP from 127.0.0.1 and [::1]
# (the server binds :: dual-stack): sha256 equal. The plain client's peer
# address reaches the server as it is: the shim's info line for the
# connection names curl's own local port (curl -w %{local_port}) and
# http.server's access log names the client's address. Then curl under the
# shim fetches the same file over rudp, and the server's counters at exit
# (RUDP_STATS) say 2 plain TCP connections and 1 rudp connection.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
[ "$SHIM_MODE" = shim ] || skip "the dual listener is the shim's"

mkdir "$T/www"
head -c 4194304 /dev/urandom >"$T/www/f.bin"
want=$(sha "$T/www/f.bin")
P=$(free_port)
cd "$T/www"
bg_app http env RUDP_LOG=info RUDP_STATS=1 "$PY" -m http.server --bind :: "$P"
SRV=$LAST_PID
cd "$ROOT"
wait_udp "$P"
wait_tcp "$P"
echo "ok: port $P: $(ss -H -tln "sport = :$P" | awk '{print $1, $4}'), and UDP"

v6=1
have_ipv6_lo || v6=0
for host in 127.0.0.1 '[::1]'; do
    [ "$host" = 127.0.0.1 ] || [ "$v6" = 1 ] || { skip_ipv6 "plain curl to $host"; continue; }
    rc=0
    port=$(timeout 30 curl -g -sS --fail -o "$T/got" -w '%{local_port}' "http://$host:$P/f.bin" 2>"$T/curl.err") || rc=$?
    [ "$rc" = 0 ] || { show "$T/curl.err" "$T/http.log"; fail "plain curl to $host exited $rc"; }
    [ "$(sha "$T/got")" = "$want" ] || fail "plain curl to $host: sha256 differs"
    case "$host" in
    127.0.0.1) peer="\[?(::ffff:)?127\.0\.0\.1\]?:$port" ;;
    *) peer="\[?::1\]?:$port" ;;
    esac
    wait_line "$T/http.log" "info: fd [0-9]+: plain TCP connection from $peer \(kernel TCP, not rudp\)" 10 ||
        { show "$T/http.log"; fail "no plain TCP line for $host port $port"; }
    echo "ok: plain curl from $host port $port: 4 MiB, sha256 equal; $(grep -E "plain TCP connection from $peer" "$T/http.log" | sed 's/.*info: //')"
done
grep -Eq '^(::ffff:)?127\.0\.0\.1 - - .*"GET /f\.bin HTTP/1\.1" 200' "$T/http.log" &&
    { [ "$v6" = 0 ] || grep -Eq '^::1 - - .*"GET /f\.bin HTTP/1\.1" 200' "$T/http.log"; } ||
    { show "$T/http.log"; fail "http.server did not log both plain clients by their addresses"; }
echo "ok: http.server logged both plain clients by address"

rc=0
run_app curl -g -sS --fail -o "$T/got2" "http://127.0.0.1:$P/f.bin" 2>"$T/curl2.err" || rc=$?
[ "$rc" = 0 ] || { show "$T/curl2.err" "$T/http.log"; fail "curl under the shim exited $rc"; }
[ "$(sha "$T/got2")" = "$want" ] || fail "curl under the shim: sha256 differs"
grep -q 'accepted, handshake' "$T/http.log" || { show "$T/http.log"; fail "the shimmed curl's connection was not a rudp one"; }
echo "ok: curl under the shim: 4 MiB over rudp, sha256 equal"

kill -TERM "$SRV"
wait_exit "$SRV" 20 || true
plain=$((1 + v6))
stats_lines "$T/http.log" | grep -q "^plain TCP: connections accepted $plain (kernel TCP, not rudp)" &&
    stats_lines "$T/http.log" | grep -q '^connections: opened 0 accepted 1 ' ||
    { show "$T/http.log"; fail "the server's counters do not say $plain plain TCP and 1 rudp connection"; }
echo "ok: server's counters: $(grep -o 'plain TCP: connections accepted [0-9]*' "$T/http.log"); rudp $(grep -o 'connections: opened 0 accepted [0-9]*' "$T/http.log")"
