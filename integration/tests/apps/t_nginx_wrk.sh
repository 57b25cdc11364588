#!/bin/sh
# nginx (master + 2 workers: epoll, accept4, sendfile, writev) serving a
# 1 MiB file, loaded with `wrk -t2 -c100 -d10s --timeout 30s`, both ends
# under the shim (kernel TCP with RUDP_NO_SHIM=1).  Passes when wrk reports
# no socket errors (connect, read, write, timeout) and no non-2xx response
# and completed at least one response per connection, and nginx's access log
# agrees: every request it finished was a 200 with the whole file, at most
# one unfinished request per connection (those wrk abandons when its 10 s
# end), and at least as many finished as wrk counted.  Before the load, curl
# fetches a 10 MiB file with sha256 equal; nginx's error log holds no [alert],
# [crit] or [emerg]; nginx ends on SIGQUIT (graceful) with status 0, and its
# workers with it.
#
# wrk's default timeout (2 s per response) is a latency threshold, not a
# socket error: 100 connections sharing 10 MiB responses on 2 shared cores
# miss it over kernel TCP too (measured: 1.1 GB/s, 0.54 s mean, 1.95 s max,
# 6 "timeouts" in a run), so it is 30 s here; the latencies are printed.
# "One response per connection" says no connection starved; it must not
# say how fast the machine is. With 10 MiB responses it took ~100 MB/s in
# wrk's 10 s, and a loaded machine (both cores busy, a benchmark beside)
# gave 57-122 MB/s, 8d193eb included: the load uses a 1 MiB file, which
# needs ~10 MB/s.
. "$(dirname "$0")/../../lib/lib.sh"
apart_netns
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/compat/compat.sh"
compat_deps

SIZE=1048576      # each response under wrk's load
BIG=10485760      # the one curl fetches and checks
CONNS=100
P=$(free_port)
# Workers run as nobody (nginx's default when started as root): they must
# read the document root.
chmod 755 "$T"
mkdir -m 755 "$T/www" "$T/tmp"
head -c "$BIG" /dev/urandom >"$T/www/big.bin"
head -c "$SIZE" /dev/urandom >"$T/www/load.bin"
chmod 644 "$T/www/big.bin" "$T/www/load.bin"
want=$(sha "$T/www/big.bin")

nginx_conf "$P" "    tcp_nopush on;
    log_format done '\$status \$body_bytes_sent \$request_completion';
    access_log $T/access.log done;"
timeout 20 nginx -t -q -p "$T" -e "$T/error.log" -c "$T/nginx.conf" || { show "$T/error.log"; fail "nginx -t rejects the config"; }

nginx_start "$P"
assert_listener "$P"
echo "ok: nginx master $NGINX, workers: $(pgrep -P "$NGINX" | tr '\n' ' ')"

rc=0
run_app curl -sS --fail --max-time 50 -o "$T/got" "http://127.0.0.1:$P/big.bin" 2>"$T/curl.err" || rc=$?
[ "$rc" = 0 ] || { show "$T/curl.err" "$T/error.log"; fail "curl exited $rc"; }
[ "$(sha "$T/got")" = "$want" ] || fail "curl: sha256 differs ($(stat -c %s "$T/got") of $BIG bytes)"
echo "ok: curl: $BIG bytes, sha256 equal"
: >"$T/access.log"

t0=$(ms_now)
rc=0
run_app_t 60 wrk -t2 "-c$CONNS" -d10s --timeout 30s --latency "http://127.0.0.1:$P/load.bin" >"$T/wrk.out" 2>&1 || rc=$?
cat "$T/wrk.out"
[ "$rc" = 0 ] || { show "$T/error.log"; fail "wrk exited $rc"; }
echo "wrk ran $(( $(ms_now) - t0 )) ms"

if grep -q 'Socket errors' "$T/wrk.out"; then
    show "$T/error.log"
    fail "wrk: $(grep 'Socket errors' "$T/wrk.out" | sed 's/^ *//')"
fi
! grep -q 'Non-2xx' "$T/wrk.out" || fail "wrk: $(grep 'Non-2xx' "$T/wrk.out" | sed 's/^ *//')"
reqs=$(sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p' "$T/wrk.out")
[ -n "$reqs" ] || fail "wrk: no request count in its output"
[ "$reqs" -ge "$CONNS" ] || fail "wrk completed $reqs responses, fewer than one per connection ($CONNS)"

# nginx logs a request when it ends: finished (OK) or not (the client went).
rc=0
stop_app "$NGINX" 20 QUIT || rc=$?
[ "$rc" = 0 ] || { show "$T/error.log" "$T/nginx.log"
    fail "nginx exited $rc on SIGQUIT (124: still running after 20 s); master and children:
$(describe "$NGINX" $STOPPED_KIDS)"; }
# Every worker (and any other child of the master) ends with it.
i=0
while [ -n "$(survivors $STOPPED_KIDS)" ]; do
    [ "$i" -lt 100 ] || fail "nginx's children still running 5 s after the master exited:
$(describe $(survivors $STOPPED_KIDS))"
    sleep 0.05
    i=$((i + 1))
done
ok=$(grep -c "^200 $SIZE OK\$" "$T/access.log" || true)
bad=$(grep -v "^200 $SIZE OK\$" "$T/access.log" | grep -cv '^200 [0-9]* $' || true)
cut=$(grep -c '^200 [0-9]* $' "$T/access.log" || true)
echo "nginx: $ok complete $SIZE-byte responses, $cut cut short when wrk stopped, $bad other; wrk counted $reqs"
[ "$bad" = 0 ] || { grep -v "^200 $SIZE OK\$" "$T/access.log" | grep -v '^200 [0-9]* $' | sort | uniq -c | head >&2
    fail "nginx logged $bad requests that are neither complete nor cut at the end"; }
[ "$cut" -le "$CONNS" ] || fail "nginx logged $cut unfinished responses, more than the $CONNS connections open at the end"
[ "$ok" -ge "$reqs" ] || fail "nginx finished $ok responses but wrk counted $reqs"
if grep -E '\[(alert|crit|emerg)\]' "$T/error.log" >&2; then fail "nginx's error log holds alerts"; fi
echo "ok: no socket errors, $reqs responses of $SIZE bytes in 10 s, every finished one complete"
