#!/bin/sh
# A mixed nginx (issue 14): one nginx (master + 2 workers) under the shim,
# loaded at the same time by a plain wrk (kernel TCP, no shim) and a wrk
# under the shim, 20 connections each for 5 s, 64 KiB responses. Both must
# end with no socket error and no non-2xx response and at least one response
# per connection. Which transport each used is read from the engines'
# counters, by rudp-stat of the master while both still run: the shimmed
# wrk's 20 connections are rudp ones (ESTAB lines of nginx's engine, and
# wrk's own engine opened them), the plain wrk's are nginx's "plain TCP:
# connections accepted" (20, or 21: wrk first tries one connection), and
# the 20 kernel TCP connections on the port (ss).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/compat/compat.sh"
[ "$SHIM_MODE" = shim ] || skip "the dual listener is the shim's"
compat_deps
need_tool rudp-stat

CONNS=20
P=$(free_port)
chmod 755 "$T"
mkdir -m 755 "$T/www" "$T/tmp"
head -c 65536 /dev/urandom >"$T/www/load.bin"
chmod 644 "$T/www/load.bin"
nginx_conf "$P"
nginx_start "$P"
wait_tcp "$P"
echo "ok: nginx master $NGINX under the shim, TCP listener and UDP socket on port $P"

start_bg wrk-plain timeout -k 5 60 wrk -t1 "-c$CONNS" -d5s --timeout 30s "http://127.0.0.1:$P/load.bin"
PLAIN=$LAST_PID
bg_app wrk-shim env RUDP_STATS=1 timeout -k 5 60 wrk -t1 "-c$CONNS" -d5s --timeout 30s "http://127.0.0.1:$P/load.bin"
SHIMMED=$LAST_PID

# While both run: nginx's engine (in the master) has handed over every
# connection of both (bounded wait; wrk connects all at its start).
i=0
while :; do
    "$TOOLS/rudp-stat" --verbose "$NGINX" >"$T/stat.out" 2>&1 || true
    rudp=$(grep -Ec "^ESTAB 127\.0\.0\.1:$P > " "$T/stat.out" || true)
    tcp=$(sed -n 's/.*plain TCP: connections accepted \([0-9]*\).*/\1/p' "$T/stat.out")
    [ "$rudp" -lt "$CONNS" ] || [ "${tcp:-0}" -lt "$CONNS" ] || break
    [ "$i" -lt 100 ] || { cat "$T/stat.out"; fail "nginx's engine: $rudp rudp connections and ${tcp:-no} plain TCP ones, want $CONNS each"; }
    sleep 0.05
    i=$((i + 1))
done
ktcp=$(ss -H -tn state established "( sport = :$P )" | wc -l)
echo "ok: while both run, nginx's engine: $rudp rudp connections (ESTAB), $tcp plain TCP accepted; kernel TCP connections on port $P: $ktcp"
# wrk opens one connection more at its start, to see the server is there
[ "$tcp" -le $((CONNS + 1)) ] || fail "nginx accepted $tcp plain TCP connections, more than the plain wrk's $CONNS (+1)"
[ "$ktcp" = "$CONNS" ] || fail "$ktcp kernel TCP connections on port $P, want the plain wrk's $CONNS"
grep -q "^LISTEN 127\.0\.0\.1:$P engine 0 backlog [0-9]* +plain-tcp\$" "$T/stat.out" ||
    { cat "$T/stat.out"; fail "rudp-stat: no LISTEN line with +plain-tcp"; }

for w in plain:$PLAIN shim:$SHIMMED; do
    who=${w%%:*} pid=${w#*:}
    rc=0
    wait_exit "$pid" 60 || rc=$?
    cat "$T/wrk-$who.log"
    [ "$rc" = 0 ] || fail "wrk ($who) exited $rc"
    ! grep -q 'Socket errors' "$T/wrk-$who.log" || fail "wrk ($who): $(grep 'Socket errors' "$T/wrk-$who.log")"
    ! grep -q 'Non-2xx' "$T/wrk-$who.log" || fail "wrk ($who): $(grep 'Non-2xx' "$T/wrk-$who.log")"
    reqs=$(sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p' "$T/wrk-$who.log")
    [ -n "$reqs" ] && [ "$reqs" -ge "$CONNS" ] || fail "wrk ($who): ${reqs:-no} responses, fewer than one per connection"
    echo "ok: wrk ($who): $reqs responses, no socket error"
done
opened=$(stats_lines "$T/wrk-shim.log" | sed -n 's/^connections: opened \([0-9]*\) accepted 0 .*/\1/p' | tail -1)
[ -n "$opened" ] && [ "$opened" -ge "$CONNS" ] ||
    fail "the shimmed wrk's engine opened ${opened:-no} rudp connections, want $CONNS or more"
echo "ok: the shimmed wrk's engine opened $opened rudp connections; the plain wrk's were kernel TCP"
if grep -E '\[(alert|crit|emerg)\]' "$T/error.log" >&2; then fail "nginx's error log holds alerts"; fi
